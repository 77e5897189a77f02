//! The planner with a policy file (`design.md` → "Retention policies", points 4 to 6), on
//! hand-built inventories with a fixed `now`, and property tests: a policy never deletes a
//! manifest carrying a kept tag, and never removes a tag no rule selects.

use std::sync::Arc;

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::model::{ChildReference, Manifest, TagAction};
use crate::policy::parse;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn image(name: &str, days: i64, tags: &[&str]) -> Manifest {
    let mut manifest = Manifest::new(d(name), ManifestKind::Image);
    manifest.created = Some(days_ago(days));
    manifest.pushed = Some(days_ago(days));
    manifest.tags = tags.iter().map(|t| t.to_string()).collect();
    manifest
}

fn inventory(name: &str, mut manifests: Vec<Manifest>) -> Inventory {
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    Inventory {
        repositories: vec![Repository {
            name: name.parse().unwrap(),
            manifests,
            problems: vec![],
            notes: vec![],
        }],
    }
}

fn policy(text: &str) -> Policy {
    Policy {
        file: Some(Arc::new(parse(text, "p.yml").unwrap())),
        ..Policy::default()
    }
}

fn decision<'a>(plan: &'a Plan, name: &str) -> &'a Decision {
    plan.repositories[0]
        .decisions
        .iter()
        .find(|x| x.digest == d(name))
        .unwrap_or_else(|| panic!("{name} not decided"))
}

fn tag<'a>(plan: &'a Plan, tag: &str) -> &'a TagDecision {
    plan.repositories[0]
        .tags
        .iter()
        .find(|t| t.tag == tag)
        .unwrap_or_else(|| panic!("no decision for {tag}"))
}

const PULL_REQUESTS: &str =
    "rules:\n  - name: pull requests\n    tags: ['pr-*']\n    keep: {newest: 1}\n";

#[test]
fn point_4_a_manifest_with_a_kept_tag_stays_and_one_with_none_goes_with_its_tags() {
    let plan = super::plan(
        &inventory(
            "app",
            vec![
                image("new", 1, &["pr-2"]),
                image("old", 9, &["pr-1"]),
                image("released", 30, &["pr-0", "v1"]),
            ],
        ),
        &policy(PULL_REQUESTS),
        now(),
    );
    assert_eq!(
        decision(&plan, "new").reason,
        Reason::TagKept {
            tag: "pr-2".into(),
            rule: Some("pull requests".into())
        }
    );
    assert_eq!(decision(&plan, "old").reason, Reason::TagsRemoved);
    assert_eq!(tag(&plan, "pr-1").action, TagAction::Delete);
    // `v1` no rule selects: its manifest stays, and `pr-0` on it is untagged (point 5).
    assert_eq!(
        decision(&plan, "released").reason,
        Reason::TagKept {
            tag: "v1".into(),
            rule: None
        }
    );
    assert_eq!(tag(&plan, "pr-0").action, TagAction::Untag);
    assert!(tag(&plan, "pr-0")
        .why
        .starts_with("removed by \"pull requests\": 3rd newest"));
    assert_eq!(tag(&plan, "v1").action, TagAction::Keep);
    assert_eq!(plan.untag_count(), 1);
}

#[test]
fn point_4_min_age_and_untagged_keep() {
    let mut index = Manifest::new(d("index"), ManifestKind::Index);
    index.tags = vec!["pr-9".into()];
    index.children = vec![ChildReference {
        digest: d("child"),
        platform: None,
    }];
    index.pushed = Some(days_ago(30));
    let mut young = image("young", 0, &["pr-0"]);
    young.created = Some(now() - Duration::minutes(5));
    young.pushed = young.created;
    let text = "min-age: 1h\nuntagged: keep\nrules:\n  - name: pull requests\n    tags: ['pr-*']\n    keep: none\n";
    let plan = super::plan(
        &inventory(
            "app",
            vec![
                index,
                image("child", 30, &[]),
                young,
                image("old", 30, &["pr-1"]),
            ],
        ),
        &policy(text),
        now(),
    );
    // Younger than min-age: the manifest stays; its tag, removed by the rules, is untagged.
    assert_eq!(decision(&plan, "young").reason, Reason::TooYoung);
    assert_eq!(tag(&plan, "pr-0").action, TagAction::Untag);
    // `untagged: keep` keeps every manifest without a tag, a deleted index's child too.
    assert_eq!(decision(&plan, "child").reason, Reason::UntaggedKept);
    assert_eq!(decision(&plan, "index").reason, Reason::TagsRemoved);
    assert_eq!(decision(&plan, "old").reason, Reason::TagsRemoved);
    assert_eq!(tag(&plan, "pr-1").action, TagAction::Delete);
}

#[test]
fn point_4_a_kept_index_keeps_its_children_and_their_removed_tags_are_untagged() {
    let mut index = Manifest::new(d("index"), ManifestKind::Index);
    index.tags = vec!["v1".into()];
    index.children = vec![ChildReference {
        digest: d("child"),
        platform: None,
    }];
    let plan = super::plan(
        &inventory(
            "app",
            vec![
                index,
                image("child", 3, &["pr-1"]),
                image("new", 1, &["pr-2"]),
            ],
        ),
        &policy(PULL_REQUESTS),
        now(),
    );
    assert_eq!(
        decision(&plan, "child").reason,
        Reason::ChildOfKeptIndex { index: d("index") }
    );
    assert_eq!(tag(&plan, "pr-1").action, TagAction::Untag);
}

#[test]
fn point_4_attachments_follow_their_target() {
    let signature = format!("sha256-{}.sig", d("old").hex());
    let kept_signature = format!("sha256-{}.sig", d("new").hex());
    let plan = super::plan(
        &inventory(
            "app",
            vec![
                image("old", 9, &["pr-1"]),
                image("new", 1, &["pr-2"]),
                image("signature", 9, &[&signature]),
                image("kept signature", 1, &[&kept_signature]),
            ],
        ),
        &policy(PULL_REQUESTS),
        now(),
    );
    assert_eq!(
        decision(&plan, "signature").reason,
        Reason::AttachmentOfDeleted { target: d("old") }
    );
    assert_eq!(tag(&plan, &signature).action, TagAction::Delete);
    assert_eq!(
        decision(&plan, "kept signature").reason,
        Reason::AttachmentOfKept { target: d("new") }
    );
    assert_eq!(tag(&plan, &kept_signature).action, TagAction::Keep);
}

#[test]
fn point_6_the_date_used_is_said() {
    // No config date: the push time ranks it, and the reason says so.
    let mut pushed_only = image("pushed only", 5, &["pr-1"]);
    pushed_only.created = None;
    let plan = super::plan(
        &inventory("app", vec![pushed_only, image("new", 1, &["pr-2"])]),
        &policy(PULL_REQUESTS),
        now(),
    );
    assert!(
        tag(&plan, "pr-1").why.contains("5 days old by push time"),
        "{}",
        tag(&plan, "pr-1").why
    );
}

#[test]
fn the_policy_s_repositories_select_what_is_planned_and_unused_rules_are_named() {
    let text = "repositories: ['team/**', '!team/legacy']\nrules:\n  - name: used\n    tags: ['pr-*']\n    keep: all\n  - name: unused\n    tags: ['nothing-*']\n    keep: none\n";
    let mut inventory = inventory("team/app", vec![image("a", 1, &["pr-1"])]);
    for name in ["team/legacy", "other"] {
        inventory.repositories.push(Repository {
            name: name.parse().unwrap(),
            manifests: vec![image("b", 9, &[])],
            problems: vec![],
            notes: vec![],
        });
    }
    let plan = super::plan(&inventory, &policy(text), now());
    let planned: Vec<&str> = plan.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(planned, ["team/app"]);
    let unselected: Vec<&str> = plan.unselected.iter().map(|r| r.as_str()).collect();
    assert_eq!(unselected, ["team/legacy", "other"]);
    assert_eq!(plan.unused_rules, ["unused"]);
}

/// The seed's policy through the rule engine gives the seed's reasons and no tag decisions.
#[test]
fn without_a_file_the_seed_reasons_stay() {
    let plan = super::plan(
        &inventory(
            "app",
            vec![
                image("old", 9, &["aaaaaaa"]),
                image("new", 1, &["bbbbbbb"]),
                image("released", 30, &["ccccccc", "v1"]),
            ],
        ),
        &Policy {
            hash_tag_keep: 1,
            ..Policy::default()
        },
        now(),
    );
    assert_eq!(
        decision(&plan, "new").reason,
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        decision(&plan, "old").reason,
        Reason::OldHashTag { rank: 2 }
    );
    assert_eq!(decision(&plan, "released").reason, Reason::VersionTag);
    assert!(plan.repositories[0].tags.is_empty());
    assert_eq!(plan.untag_count(), 0);
}

/// Tag names the property tests draw from: conventions the rules select, and others.
const NAMES: [&str; 12] = [
    "pr-1",
    "pr-2",
    "pr-3",
    "sha-aaa",
    "sha-bbb",
    "v1.0.0",
    "v1.2.0",
    "v2.0.0-rc1",
    "main",
    "latest",
    "nightly-20261201",
    "nightly-20261130",
];

const POLICIES: [&str; 4] = [
    "rules:\n  - tags: ['pr-*']\n    keep: {newest: 1}\n  - tags: ['sha-*']\n    keep: none\n",
    "untagged: keep\nrules:\n  - tags: ['v*', '!v*-rc*']\n    keep: {newest: 1, sort: semver}\n  - tags: ['/^nightly-/']\n    keep: {newest: 1, sort: tag}\n",
    "rules:\n  - tags: ['/^[a-z]+-/']\n    keep: {newest: 1, group-by: '/^([a-z]+)-/'}\n",
    "min-age: 3d\nrules:\n  - tags: ['*', '!latest']\n    keep: {younger-than: 5d}\n",
];

fn arbitrary_inventory() -> impl Strategy<Value = Inventory> {
    // Up to 8 images, each with up to 3 tags (a tag on one image at most), a date, and
    // maybe a child of another, or a signature of another.
    prop::collection::vec(
        (
            prop::collection::btree_set(0..NAMES.len(), 0..3),
            0i64..20,
            prop::option::of(0usize..8),
            any::<bool>(),
        ),
        1..8,
    )
    .prop_map(|drawn| {
        let mut taken = std::collections::HashSet::new();
        let mut manifests: Vec<Manifest> = Vec::new();
        for (i, (tags, days, link, as_signature)) in drawn.iter().enumerate() {
            let tags: Vec<&str> = tags
                .iter()
                .filter(|t| taken.insert(**t))
                .map(|t| NAMES[*t])
                .collect();
            let mut manifest = image(&format!("image {i}"), *days, &tags);
            if let Some(other) = link.filter(|o| *o != i && *o < drawn.len()) {
                if *as_signature {
                    manifest
                        .tags
                        .push(format!("sha256-{}.sig", d(&format!("image {other}")).hex()));
                } else {
                    manifest.kind = ManifestKind::Index;
                    manifest.children = vec![ChildReference {
                        digest: d(&format!("image {other}")),
                        platform: None,
                    }];
                }
            }
            manifests.push(manifest);
        }
        inventory("app", manifests)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A policy never deletes a manifest carrying a kept tag, and never removes a tag no rule
    /// selects; every deletion takes its tags, every untag is of a manifest that stays.
    #[test]
    fn a_policy_never_deletes_a_kept_tag_nor_removes_an_unselected_one(
        inventory in arbitrary_inventory(),
        which in 0..POLICIES.len(),
    ) {
        let policy = policy(POLICIES[which]);
        let plan = super::plan(&inventory, &policy, now());
        let repository = &plan.repositories[0];
        for decision in &repository.tags {
            let manifest = repository
                .decisions
                .iter()
                .find(|m| m.digest == decision.digest)
                .unwrap();
            match decision.action {
                TagAction::Keep => prop_assert_eq!(manifest.action, Action::Keep, "{:?}", decision),
                TagAction::Untag => {
                    prop_assert_eq!(manifest.action, Action::Keep);
                    prop_assert!(decision.rule.is_some(), "an unselected tag removed: {:?}", decision);
                }
                TagAction::Delete => prop_assert_eq!(manifest.action, Action::Delete),
            }
            if decision.rule.is_none() && crate::model::attachment_target(&decision.tag).is_none() {
                prop_assert_eq!(decision.action, TagAction::Keep, "{:?}", decision);
            }
        }
        // Nothing deleted is listed by a kept index, or names a kept manifest as subject.
        let kept: std::collections::HashSet<&Digest> = repository
            .decisions
            .iter()
            .filter(|x| x.action == Action::Keep)
            .map(|x| &x.digest)
            .collect();
        for manifest in &inventory.repositories[0].manifests {
            if kept.contains(&manifest.digest) {
                for child in &manifest.children {
                    let child_deleted = repository
                        .decisions
                        .iter()
                        .any(|x| x.digest == child.digest && x.action == Action::Delete);
                    prop_assert!(!child_deleted, "a kept index lost a child");
                }
            }
        }
    }
}
