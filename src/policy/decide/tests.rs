//! The rules of `design.md` → "Retention policies", points 1 to 3, one test each, on
//! hand-built images with a fixed `now`.

use chrono::TimeZone;

use super::*;
use crate::policy::parse;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> Option<DateTime<Utc>> {
    Some(now() - Duration::days(days))
}

/// An image by name, its tags, and its age in days (none: unknown).
struct Given {
    digests: Vec<Digest>,
    tags: Vec<Vec<Tag>>,
    dates: Vec<Option<DateTime<Utc>>>,
}

fn given(images: &[(&str, &[&str], Option<i64>)]) -> Given {
    Given {
        digests: images
            .iter()
            .map(|(name, _, _)| Digest::sha256_of(name.as_bytes()))
            .collect(),
        tags: images
            .iter()
            .map(|(_, tags, _)| tags.iter().map(|t| t.to_string()).collect())
            .collect(),
        dates: images
            .iter()
            .map(|(_, _, days)| days.and_then(days_ago))
            .collect(),
    }
}

impl Given {
    fn images(&self) -> Vec<Image<'_>> {
        (0..self.digests.len())
            .map(|i| Image {
                digest: &self.digests[i],
                tags: &self.tags[i],
                date: self.dates[i],
                date_is_push_time: false,
            })
            .collect()
    }

    /// The verdict on `tag`, wherever it is.
    fn verdict<'a>(&self, decided: &'a Decided, tag: &str) -> &'a TagVerdict {
        for (i, tags) in self.tags.iter().enumerate() {
            if let Some(position) = tags.iter().position(|t| t == tag) {
                return decided.tags[i][position]
                    .as_ref()
                    .unwrap_or_else(|| panic!("{tag} has no verdict"));
            }
        }
        panic!("no tag {tag}")
    }

    fn kept(&self, decided: &Decided) -> Vec<String> {
        let mut kept = Vec::new();
        for (i, tags) in self.tags.iter().enumerate() {
            for (position, tag) in tags.iter().enumerate() {
                if decided.tags[i][position].as_ref().is_some_and(|v| v.kept) {
                    kept.push(tag.clone());
                }
            }
        }
        kept.sort();
        kept
    }
}

fn run(policy: &str, repository: &str, images: &Given) -> Decided {
    let policy = parse(policy, "p.yml").unwrap();
    decide(
        &policy,
        &repository.parse().unwrap(),
        &images.images(),
        now(),
    )
}

#[test]
fn point_1_attachment_tags_are_never_selected() {
    let signature = format!("sha256-{}.sig", "a".repeat(64));
    let images = given(&[("signature", &[signature.as_str()], Some(9))]);
    let decided = run("rules:\n  - keep: none\n", "app", &images);
    assert_eq!(decided.tags[0], vec![None], "it follows its target");
    assert_eq!(decided.rule_used, [false]);
}

#[test]
fn point_2_the_first_rule_that_selects_a_tag_decides_it_and_none_keeps_it() {
    let policy = "rules:\n  - name: releases\n    tags: ['v*', '!v*-rc*']\n    keep: all\n  \
                  - name: everything v\n    tags: ['v*']\n    keep: none\n";
    let images = given(&[("a", &["v1.0.0", "v1.1.0-rc1", "main"], Some(3))]);
    let decided = run(policy, "app", &images);
    let release = images.verdict(&decided, "v1.0.0");
    assert_eq!((release.rule, release.kept), (Some(0), true));
    assert_eq!(release.why, "kept by \"releases\": keeps all");
    let candidate = images.verdict(&decided, "v1.1.0-rc1");
    assert_eq!((candidate.rule, candidate.kept), (Some(1), false));
    assert_eq!(candidate.why, "removed by \"everything v\": keeps none");
    // Forgetting a rule never deletes anything.
    let main = images.verdict(&decided, "main");
    assert_eq!((main.rule, main.kept), (None, true));
    assert_eq!(main.why, "kept: no rule selects it");
}

#[test]
fn point_2_a_rule_s_repositories_limit_where_it_decides() {
    let policy = "rules:\n  - name: apps\n    repositories: ['apps/*']\n    keep: none\n";
    let images = given(&[("a", &["x"], Some(3))]);
    assert!(
        !run(policy, "apps/web", &images).tags[0][0]
            .as_ref()
            .unwrap()
            .kept
    );
    assert!(
        run(policy, "apps/web/api", &images).tags[0][0]
            .as_ref()
            .unwrap()
            .kept
    );
    assert!(
        run(policy, "team/app", &images).tags[0][0]
            .as_ref()
            .unwrap()
            .kept
    );
}

#[test]
fn point_3_newest_ranks_images_not_tags_by_date() {
    // Five pull requests, one image carrying two of them: images are ranked, not tags.
    let images = given(&[
        ("pr 5", &["pr-5"], Some(1)),
        ("pr 4 and 3", &["pr-4", "pr-3"], Some(2)),
        ("pr 2", &["pr-2"], Some(21)),
        ("pr 1", &["pr-1"], Some(30)),
    ]);
    let policy = "rules:\n  - name: pull requests\n    tags: ['pr-*']\n    keep: {newest: 2}\n";
    let decided = run(policy, "app", &images);
    assert_eq!(images.kept(&decided), ["pr-3", "pr-4", "pr-5"]);
    assert_eq!(
        images.verdict(&decided, "pr-2").why,
        "removed by \"pull requests\": 3rd newest of pr-*, 21 days old (keeps 2)"
    );
    assert_eq!(decided.rank, [Some(1), Some(2), Some(3), Some(4)]);
}

#[test]
fn point_3_younger_than_or_newest_either_suffices() {
    let images = given(&[
        ("a", &["pr-1"], Some(1)),
        ("b", &["pr-2"], Some(2)),
        ("c", &["pr-3"], Some(10)),
        ("d", &["pr-4"], Some(20)),
        ("e", &["pr-5"], None),
    ]);
    let both = "rules:\n  - name: pull requests\n    tags: ['pr-*']\n    keep: {newest: 1, younger-than: 14d}\n";
    let decided = run(both, "app", &images);
    assert_eq!(images.kept(&decided), ["pr-1", "pr-2", "pr-3"]);
    assert_eq!(
        images.verdict(&decided, "pr-3").why,
        "kept by \"pull requests\": 3rd newest of pr-*, 10 days old (keeps 1, or younger than 14d)"
    );
    // An unknown date is never young, and ranks last.
    assert_eq!(
        images.verdict(&decided, "pr-5").why,
        "removed by \"pull requests\": 5th newest of pr-*, age unknown (keeps 1, or younger than 14d)"
    );
    let age_only = "rules:\n  - tags: ['pr-*']\n    keep: {younger-than: 14d}\n";
    let decided = run(age_only, "app", &images);
    assert_eq!(images.kept(&decided), ["pr-1", "pr-2", "pr-3"]);
}

#[test]
fn point_3_group_by_ranks_each_group_and_an_image_can_be_in_several() {
    // Flux: `<branch>-<sha>-<timestamp>`, newest 2 per branch.
    let images = given(&[
        ("main 1", &["main-aaaaaaa-1733400001"], Some(5)),
        ("main 2", &["main-bbbbbbb-1733400002"], Some(4)),
        ("main 3", &["main-ccccccc-1733400003"], Some(3)),
        ("feature 1", &["feature-x-ddddddd-1733400004"], Some(6)),
        // The same image built for both branches.
        (
            "both",
            &["main-eeeeeee-1733400005", "feature-x-eeeeeee-1733400005"],
            Some(1),
        ),
    ]);
    let policy =
        "rules:\n  - name: branches\n    tags: ['/^[a-z0-9-]+-[0-9a-f]{7}-[0-9]{10}$/']\n    \
                  keep: {newest: 2, group-by: '/^([a-z0-9-]+)-[0-9a-f]{7}-[0-9]{10}$/'}\n";
    let decided = run(policy, "apps/web", &images);
    assert_eq!(
        images.kept(&decided),
        [
            "feature-x-ddddddd-1733400004",
            "feature-x-eeeeeee-1733400005",
            "main-ccccccc-1733400003",
            "main-eeeeeee-1733400005",
        ]
    );
    assert_eq!(
        images.verdict(&decided, "main-aaaaaaa-1733400001").why,
        "removed by \"branches\": 4th newest of group \"main\", 5 days old (keeps 2 per group)"
    );
}

#[test]
fn point_3_semver_precedence_with_a_leading_v_and_non_versions_below() {
    // 1.10.0 is newer than 1.2.0; a hotfix 1.0.1 built last is not the newest; a leading `v`
    // is allowed; a pre-release ranks below its release.
    let images = given(&[
        ("1.2.0", &["1.2.0"], Some(30)),
        ("1.10.0", &["v1.10.0"], Some(20)),
        ("1.0.1", &["1.0.1"], Some(1)),
        ("2.0.0-rc.1", &["2.0.0-rc.1"], Some(2)),
        ("2.0.0", &["2.0.0"], Some(3)),
        ("nightly", &["1.x"], Some(0)),
    ]);
    let policy = "rules:\n  - name: library\n    tags: ['/^v?[0-9]/']\n    keep: {newest: 3, sort: semver}\n";
    let decided = run(policy, "lib", &images);
    assert_eq!(images.kept(&decided), ["2.0.0", "2.0.0-rc.1", "v1.10.0"]);
    assert_eq!(
        images.verdict(&decided, "1.0.1").why,
        "removed by \"library\": 5th highest version of /^v?[0-9]/ (version 1.0.1), 1 days old \
         (keeps 3 by semver)"
            .replace("1 days old", "24 hours old")
    );
    assert!(images.verdict(&decided, "1.x").why.contains(
        "6th highest version of /^v?[0-9]/ (no semantic version: ranked below, by date)"
    ));
}

#[test]
fn point_3_sort_by_tag_is_byte_order() {
    let images = given(&[
        ("1", &["nightly-20261130"], Some(1)),
        ("2", &["nightly-20261201"], Some(9)),
        ("3", &["nightly-20261129"], Some(0)),
    ]);
    let policy = "rules:\n  - name: nightlies\n    tags: ['/^nightly-[0-9]{8}$/']\n    keep: {newest: 2, sort: tag}\n";
    let decided = run(policy, "app", &images);
    assert_eq!(
        images.kept(&decided),
        ["nightly-20261130", "nightly-20261201"]
    );
    assert!(images
        .verdict(&decided, "nightly-20261129")
        .why
        .contains("3rd greatest tag of /^nightly-[0-9]{8}$/ (tag nightly-20261129)"));
}

#[test]
fn point_3_ties_at_the_boundary_are_broken_by_digest_and_said() {
    let images = given(&[
        ("a", &["pr-1"], Some(3)),
        ("b", &["pr-2"], Some(3)),
        ("c", &["pr-3"], Some(1)),
    ]);
    let policy = "rules:\n  - name: pr\n    tags: ['pr-*']\n    keep: {newest: 2}\n";
    let decided = run(policy, "app", &images);
    let (first, second) = if images.digests[0] < images.digests[1] {
        ("pr-1", "pr-2")
    } else {
        ("pr-2", "pr-1")
    };
    let kept = images.verdict(&decided, first);
    let removed = images.verdict(&decided, second);
    assert!(kept.kept && !removed.kept);
    assert!(
        kept.why.contains("tied with") && kept.why.contains("broken by digest"),
        "{}",
        kept.why
    );
    assert!(removed.why.contains("tied with"), "{}", removed.why);
    assert!(!images.verdict(&decided, "pr-3").why.contains("tied"));
}

#[test]
fn the_seed_policy_is_one_rule_of_hash_tags() {
    let seed = RetentionPolicy::seed(&regex::Regex::new("^[0-9a-f]{7,12}$").unwrap(), 1);
    let images = given(&[
        ("old", &["aaaaaaa"], Some(9)),
        ("new", &["bbbbbbb", "latest"], Some(1)),
    ]);
    let decided = decide(&seed, &"app".parse().unwrap(), &images.images(), now());
    assert_eq!(images.kept(&decided), ["bbbbbbb", "latest"]);
    assert_eq!(images.verdict(&decided, "latest").rule, None);
    assert!(!seed.untag);
}

#[test]
fn ordinals() {
    let words: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
        .iter()
        .map(|n| ordinal(*n))
        .collect();
    assert_eq!(
        words,
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    );
}
