//! Planner tests on hand-built inventories with a fixed `now`.

use super::*;
use crate::model::{ChildReference, Manifest};
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

/// A digest made from a short readable name, so tests can say `d("app-v1")`.
fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn attachment_tag(target: &str, suffix: &str) -> String {
    format!("sha256-{}{suffix}", d(target).hex())
}

struct Repo {
    name: &'static str,
    manifests: Vec<Manifest>,
    problems: Vec<String>,
}

fn repo(name: &'static str) -> Repo {
    Repo {
        name,
        manifests: Vec::new(),
        problems: Vec::new(),
    }
}

impl Repo {
    fn image(mut self, name: &str, created: Option<DateTime<Utc>>, tags: &[&str]) -> Self {
        let mut m = Manifest::new(d(name), ManifestKind::Image);
        m.created = created;
        m.pushed = Some(days_ago(400));
        m.tags = tags.iter().map(|t| t.to_string()).collect();
        self.manifests.push(m);
        self
    }

    fn index(mut self, name: &str, children: &[&str], tags: &[&str]) -> Self {
        let mut m = Manifest::new(d(name), ManifestKind::Index);
        m.pushed = Some(days_ago(400));
        m.children = children
            .iter()
            .map(|c| ChildReference {
                digest: d(c),
                platform: None,
            })
            .collect();
        m.tags = tags.iter().map(|t| t.to_string()).collect();
        self.manifests.push(m);
        self
    }

    fn referrer(mut self, name: &str, subject: &str) -> Self {
        let mut m = Manifest::new(d(name), ManifestKind::Artifact);
        m.pushed = Some(days_ago(400));
        m.subject = Some(d(subject));
        self.manifests.push(m);
        self
    }

    fn with(mut self, edit: impl FnOnce(&mut Manifest)) -> Self {
        edit(self.manifests.last_mut().expect("a manifest to edit"));
        self
    }

    fn problem(mut self, text: &str) -> Self {
        self.problems.push(text.to_string());
        self
    }

    fn build(mut self) -> Repository {
        self.manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        Repository {
            name: self.name.parse().unwrap(),
            manifests: self.manifests,
            problems: self.problems,
            notes: Vec::new(),
        }
    }
}

fn inventory(repos: Vec<Repo>) -> Inventory {
    Inventory {
        repositories: repos.into_iter().map(Repo::build).collect(),
    }
}

fn policy(keep: usize) -> Policy {
    Policy {
        hash_tag_keep: keep,
        ..Policy::default()
    }
}

/// The reason given to manifest `name` in repository `repo`.
fn reason(plan: &Plan, repo: &str, name: &str) -> Reason {
    plan.repositories
        .iter()
        .find(|r| r.name.as_str() == repo)
        .unwrap_or_else(|| panic!("repository {repo} not planned"))
        .decisions
        .iter()
        .find(|x| x.digest == d(name))
        .unwrap_or_else(|| panic!("{name} not decided"))
        .reason
        .clone()
}

fn deleted(plan: &Plan) -> BTreeSet<Digest> {
    plan.repositories
        .iter()
        .flat_map(|r| &r.decisions)
        .filter(|x| x.action == Action::Delete)
        .map(|x| x.digest.clone())
        .collect()
}

fn run(repos: Vec<Repo>, policy: &Policy) -> Plan {
    super::plan(&inventory(repos), policy, now())
}

#[test]
fn tag_classification() {
    let p = Policy::default();
    assert_eq!(classify_tag("latest", &p), TagKind::Version);
    assert_eq!(classify_tag("3.16", &p), TagKind::Version);
    assert_eq!(classify_tag("3f33a785", &p), TagKind::Hash);
    assert_eq!(classify_tag("3f33a78", &p), TagKind::Hash);
    assert_eq!(
        classify_tag("3f33a785abcd1", &p),
        TagKind::Version,
        "13 hex digits"
    );
    assert_eq!(classify_tag("3F33A785", &p), TagKind::Version, "uppercase");
    let sig = attachment_tag("x", ".sig");
    assert_eq!(
        classify_tag(&sig, &p),
        TagKind::Attachment { target: d("x") }
    );
    let bare = attachment_tag("x", "");
    assert_eq!(
        classify_tag(&bare, &p),
        TagKind::Attachment { target: d("x") }
    );
    assert_eq!(
        classify_tag(&attachment_tag("x", "."), &p),
        TagKind::Version
    );
    assert_eq!(classify_tag("sha256-abc.sig", &p), TagKind::Version);
    let everything = Policy {
        hash_tag_pattern: Regex::new(".*").unwrap(),
        ..Policy::default()
    };
    assert_eq!(classify_tag("latest", &everything), TagKind::Hash);
    assert_eq!(
        classify_tag(&sig, &everything),
        TagKind::Attachment { target: d("x") },
        "attachments are never hash tags, even with `.*`"
    );
}

#[test]
fn untagged_is_deleted_and_version_tag_protects() {
    let plan = run(
        vec![repo("app").image("old", Some(days_ago(30)), &[]).image(
            "current",
            Some(days_ago(1)),
            &["latest"],
        )],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "app", "old"), Reason::Untagged);
    assert_eq!(reason(&plan, "app", "current"), Reason::VersionTag);
    assert_eq!(plan.repositories[0].deletion_batches, vec![vec![d("old")]]);
}

#[test]
fn newest_hash_tags_kept_counted_per_manifest() {
    // Five hash-tagged manifests; the newest carries two hash tags and still counts once.
    let plan = run(
        vec![repo("app")
            .image("h1", Some(days_ago(1)), &["aaaaaaa", "bbbbbbb"])
            .image("h2", Some(days_ago(2)), &["ccccccc"])
            .image("h3", Some(days_ago(3)), &["ddddddd"])
            .image("h4", Some(days_ago(4)), &["eeeeeee"])
            .image("h5", Some(days_ago(5)), &["fffffff"])],
        &policy(3),
    );
    assert_eq!(
        reason(&plan, "app", "h1"),
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        reason(&plan, "app", "h2"),
        Reason::RecentHashTag { rank: 2 }
    );
    assert_eq!(
        reason(&plan, "app", "h3"),
        Reason::RecentHashTag { rank: 3 }
    );
    assert_eq!(reason(&plan, "app", "h4"), Reason::OldHashTag { rank: 4 });
    assert_eq!(reason(&plan, "app", "h5"), Reason::OldHashTag { rank: 5 });
}

#[test]
fn keep_zero_deletes_every_hash_tag_but_not_version_tags() {
    let plan = run(
        vec![repo("app")
            .image("h1", Some(days_ago(1)), &["aaaaaaa"])
            .image("both", Some(days_ago(2)), &["bbbbbbb", "main"])],
        &policy(0),
    );
    assert_eq!(reason(&plan, "app", "h1"), Reason::OldHashTag { rank: 1 });
    assert_eq!(reason(&plan, "app", "both"), Reason::VersionTag);
}

#[test]
fn manifest_with_hash_and_version_tag_is_kept_and_takes_a_slot() {
    let plan = run(
        vec![repo("app")
            .image("old-release", Some(days_ago(50)), &["1111111", "v1.0"])
            .image("h1", Some(days_ago(1)), &["aaaaaaa"])
            .image("h2", Some(days_ago(2)), &["bbbbbbb"])],
        &policy(2),
    );
    assert_eq!(reason(&plan, "app", "old-release"), Reason::VersionTag);
    assert_eq!(
        reason(&plan, "app", "h1"),
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        reason(&plan, "app", "h2"),
        Reason::RecentHashTag { rank: 2 }
    );

    // When the version-tagged one is among the newest it uses a slot.
    let plan = run(
        vec![repo("app")
            .image("release", Some(days_ago(1)), &["1111111", "v1.0"])
            .image("h2", Some(days_ago(2)), &["bbbbbbb"])
            .image("h3", Some(days_ago(3)), &["ccccccc"])],
        &policy(2),
    );
    assert_eq!(reason(&plan, "app", "release"), Reason::VersionTag);
    assert_eq!(
        reason(&plan, "app", "h2"),
        Reason::RecentHashTag { rank: 2 }
    );
    assert_eq!(reason(&plan, "app", "h3"), Reason::OldHashTag { rank: 3 });
}

#[test]
fn ties_broken_by_digest() {
    let same = Some(days_ago(3));
    let names = ["t1", "t2", "t3", "t4"];
    let mut r = repo("app");
    for (i, name) in names.iter().enumerate() {
        r = r.image(name, same, &[&format!("{i}aaaaaa")]);
    }
    let plan = run(vec![r], &policy(2));
    let mut sorted: Vec<Digest> = names.iter().map(|n| d(n)).collect();
    sorted.sort();
    let kept: Vec<Digest> = plan.repositories[0]
        .decisions
        .iter()
        .filter(|x| x.action == Action::Keep)
        .map(|x| x.digest.clone())
        .collect();
    assert_eq!(
        kept,
        sorted[..2].to_vec(),
        "the two smallest digests win a tie"
    );
    // And the same inputs always give the same plan.
    let again = run(
        vec![{
            let mut r = repo("app");
            for (i, name) in names.iter().enumerate().rev() {
                r = r.image(name, same, &[&format!("{i}aaaaaa")]);
            }
            r
        }],
        &policy(2),
    );
    assert_eq!(plan, again);
}

#[test]
fn unknown_dates_rank_last() {
    let plan = run(
        vec![repo("app")
            .image("dated", Some(days_ago(900)), &["aaaaaaa"])
            .image("undated", None, &["bbbbbbb"])
            .with(|m| m.pushed = None)],
        &policy(1),
    );
    assert_eq!(
        reason(&plan, "app", "dated"),
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        reason(&plan, "app", "undated"),
        Reason::OldHashTag { rank: 2 }
    );
}

#[test]
fn epoch_created_falls_back_to_push_time() {
    // Discovery turns an epoch `created` into `None`; the push time then ranks it.
    let plan = run(
        vec![repo("app")
            .image("reproducible", None, &["aaaaaaa"])
            .with(|m| m.pushed = Some(days_ago(1)))
            .image("older", Some(days_ago(10)), &["bbbbbbb"])],
        &policy(1),
    );
    assert_eq!(
        reason(&plan, "app", "reproducible"),
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        reason(&plan, "app", "older"),
        Reason::OldHashTag { rank: 2 }
    );
    let decision = &plan.repositories[0].decisions;
    let reproducible = decision
        .iter()
        .find(|x| x.digest == d("reproducible"))
        .unwrap();
    assert_eq!(reproducible.effective_date, Some(days_ago(1)));
}

#[test]
fn children_of_kept_docker_list_oci_index_and_nested_index_are_kept() {
    let plan = run(
        vec![repo("app")
            .image("amd64", Some(days_ago(5)), &[])
            .image("arm64", Some(days_ago(5)), &[])
            .index("list", &["amd64", "arm64"], &["latest"])
            .with(|m| m.media_type = crate::manifest::DOCKER_MANIFEST_LIST.into())
            .image("oci-child", Some(days_ago(5)), &[])
            .index("oci", &["oci-child"], &["1.0"])
            .with(|m| m.media_type = crate::manifest::OCI_INDEX.into())
            .image("leaf", Some(days_ago(5)), &[])
            .index("inner", &["leaf"], &[])
            .index("outer", &["inner"], &["nested"])],
        &Policy::default(),
    );
    assert_eq!(
        reason(&plan, "app", "amd64"),
        Reason::ChildOfKeptIndex { index: d("list") }
    );
    assert_eq!(
        reason(&plan, "app", "arm64"),
        Reason::ChildOfKeptIndex { index: d("list") }
    );
    assert_eq!(
        reason(&plan, "app", "oci-child"),
        Reason::ChildOfKeptIndex { index: d("oci") }
    );
    assert_eq!(
        reason(&plan, "app", "inner"),
        Reason::ChildOfKeptIndex { index: d("outer") }
    );
    assert_eq!(
        reason(&plan, "app", "leaf"),
        Reason::ChildOfKeptIndex { index: d("inner") }
    );
    assert!(deleted(&plan).is_empty());
}

#[test]
fn children_of_deleted_index_deleted_unless_referenced_by_something_kept() {
    let plan = run(
        vec![repo("app")
            .image("shared", Some(days_ago(5)), &[])
            .image("only-old", Some(days_ago(5)), &[])
            .index("old", &["shared", "only-old"], &[])
            .index("new", &["shared"], &["latest"])],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "app", "old"), Reason::Untagged);
    assert_eq!(
        reason(&plan, "app", "only-old"),
        Reason::ChildOfDeletedIndex { index: d("old") }
    );
    assert_eq!(
        reason(&plan, "app", "shared"),
        Reason::ChildOfKeptIndex { index: d("new") }
    );
    // The index goes before its child.
    assert_eq!(
        plan.repositories[0].deletion_batches,
        vec![vec![d("old")], vec![d("only-old")]]
    );
}

#[test]
fn hash_tagged_index_beyond_keep_takes_its_children_along() {
    let plan = run(
        vec![repo("app")
            .image("c-old", Some(days_ago(9)), &[])
            .index("i-old", &["c-old"], &["aaaaaaa"])
            .image("c-new", Some(days_ago(1)), &[])
            .index("i-new", &["c-new"], &["bbbbbbb"])],
        &policy(1),
    );
    // An index's date is its newest child's.
    assert_eq!(
        reason(&plan, "app", "i-new"),
        Reason::RecentHashTag { rank: 1 }
    );
    assert_eq!(
        reason(&plan, "app", "i-old"),
        Reason::OldHashTag { rank: 2 }
    );
    assert_eq!(
        reason(&plan, "app", "c-old"),
        Reason::ChildOfDeletedIndex { index: d("i-old") }
    );
    assert_eq!(
        reason(&plan, "app", "c-new"),
        Reason::ChildOfKeptIndex { index: d("i-new") }
    );
}

#[test]
fn referrers_and_attachments_follow_their_subject() {
    let sig_of_kept = attachment_tag("kept", ".sig");
    let sig_of_old = attachment_tag("old", ".sig");
    let plan = run(
        vec![repo("app")
            .image("kept", Some(days_ago(1)), &["latest"])
            .image("old", Some(days_ago(9)), &[])
            .referrer("sbom-of-kept", "kept")
            .referrer("sbom-of-old", "old")
            .referrer("sig-of-sbom-of-old", "sbom-of-old")
            .image("cosign-kept", None, &[&sig_of_kept])
            .image("cosign-old", None, &[&sig_of_old])],
        &Policy::default(),
    );
    assert_eq!(
        reason(&plan, "app", "sbom-of-kept"),
        Reason::ReferrerOfKept { subject: d("kept") }
    );
    assert_eq!(
        reason(&plan, "app", "cosign-kept"),
        Reason::AttachmentOfKept { target: d("kept") }
    );
    assert_eq!(reason(&plan, "app", "old"), Reason::Untagged);
    assert_eq!(
        reason(&plan, "app", "sbom-of-old"),
        Reason::ReferrerOfDeleted { subject: d("old") }
    );
    assert_eq!(
        reason(&plan, "app", "sig-of-sbom-of-old"),
        Reason::ReferrerOfDeleted {
            subject: d("sbom-of-old")
        }
    );
    assert_eq!(
        reason(&plan, "app", "cosign-old"),
        Reason::AttachmentOfDeleted { target: d("old") }
    );
    // Referrers of referrers first, then referrers and attachments, then the image.
    assert_eq!(
        plan.repositories[0].deletion_batches,
        vec![
            {
                let mut v = vec![d("cosign-old"), d("sig-of-sbom-of-old")];
                v.sort();
                v
            },
            vec![d("sbom-of-old")],
            vec![d("old")],
        ]
    );
}

#[test]
fn referrer_keeps_nothing_of_its_subject() {
    // A signature that is itself version-tagged does not keep the image it signs.
    let plan = run(
        vec![repo("app")
            .image("old", Some(days_ago(9)), &[])
            .referrer("sig", "old")
            .with(|m| m.tags = vec!["signed".into()])],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "app", "sig"), Reason::VersionTag);
    assert_eq!(reason(&plan, "app", "old"), Reason::Untagged);
}

#[test]
fn attachments_whose_target_is_absent_are_kept_and_reported() {
    let orphan = attachment_tag("not-here", ".att");
    let plan = run(
        vec![repo("app").image("att", None, &[&orphan])],
        &Policy::default(),
    );
    assert_eq!(
        reason(&plan, "app", "att"),
        Reason::AttachmentTargetMissing {
            target: d("not-here")
        }
    );
}

#[test]
fn minimum_age_keeps_young_manifests() {
    let p = Policy {
        min_age: Duration::hours(2),
        ..Policy::default()
    };
    let plan = run(
        vec![repo("app")
            .image("just-pushed", Some(days_ago(30)), &[])
            .with(|m| m.pushed = Some(now() - Duration::minutes(5)))
            .image("young", Some(now() - Duration::hours(1)), &[])
            .image("old", Some(days_ago(1)), &[])
            .image("undated", None, &[])
            .with(|m| m.pushed = None)
            .image("young-child", Some(now() - Duration::minutes(1)), &[])
            .index("young-index", &["young-child"], &[])],
        &p,
    );
    assert_eq!(
        reason(&plan, "app", "just-pushed"),
        Reason::TooYoung,
        "push time counts"
    );
    assert_eq!(reason(&plan, "app", "young"), Reason::TooYoung);
    assert_eq!(
        reason(&plan, "app", "undated"),
        Reason::TooYoung,
        "unknown age is kept"
    );
    assert_eq!(reason(&plan, "app", "young-index"), Reason::TooYoung);
    assert_eq!(reason(&plan, "app", "old"), Reason::Untagged);
    // Without a minimum age the same young manifests go.
    let plan = run(
        vec![repo("app").image("young", Some(now() - Duration::hours(1)), &[])],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "app", "young"), Reason::Untagged);
}

#[test]
fn repository_filter_plans_one_repository_only() {
    let p = Policy {
        repositories: vec!["team/app".parse().unwrap()],
        ..Policy::default()
    };
    let plan = run(
        vec![
            repo("team/app").image("a", None, &[]),
            repo("team/app/api").image("b", None, &[]),
            repo("other").image("c", None, &[]),
        ],
        &p,
    );
    let names: Vec<&str> = plan.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["team/app"]);
    assert_eq!(deleted(&plan), BTreeSet::from([d("a")]));
}

#[test]
fn incomplete_discovery_deletes_nothing_in_that_repository() {
    let plan = run(
        vec![
            repo("broken")
                .image("a", None, &[])
                .problem("cannot read manifest"),
            repo("fine").image("b", None, &[]),
        ],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "broken", "a"), Reason::DiscoveryIncomplete);
    assert!(plan.repositories[0].deletion_batches.is_empty());
    assert_eq!(reason(&plan, "fine", "b"), Reason::Untagged);
}

#[test]
fn same_digest_in_two_repositories_is_decided_separately() {
    let plan = run(
        vec![
            repo("a").image("shared", None, &["latest"]),
            repo("b").image("shared", None, &[]),
        ],
        &Policy::default(),
    );
    assert_eq!(reason(&plan, "a", "shared"), Reason::VersionTag);
    assert_eq!(reason(&plan, "b", "shared"), Reason::Untagged);
}

#[test]
fn attachment_cycle_still_gets_an_order() {
    let plan = run(
        vec![repo("app")
            .image("x", None, &[&attachment_tag("y", ".sig")])
            .image("y", None, &[&attachment_tag("x", ".sig")])],
        &Policy::default(),
    );
    let batches = &plan.repositories[0].deletion_batches;
    assert_eq!(batches.iter().flatten().count(), 2);
}

#[test]
fn every_decision_reason_matches_its_action_and_batches_cover_deletions() {
    // A mixed repository; checks the invariants that hold for every plan.
    let plan = run(
        vec![repo("app")
            .image("c1", Some(days_ago(9)), &[])
            .image("c2", Some(days_ago(9)), &[])
            .index("i", &["c1", "c2"], &["aaaaaaa"])
            .image("h", Some(days_ago(1)), &["bbbbbbb"])
            .referrer("r", "i")
            .image("u", None, &[])
            .image("v", None, &["stable"])],
        &policy(1),
    );
    for repository in &plan.repositories {
        for decision in &repository.decisions {
            assert_eq!(decision.action, decision.reason.action());
        }
        let batched: BTreeSet<Digest> = repository
            .deletion_batches
            .iter()
            .flatten()
            .cloned()
            .collect();
        let deleted: BTreeSet<Digest> = repository
            .decisions
            .iter()
            .filter(|x| x.action == Action::Delete)
            .map(|x| x.digest.clone())
            .collect();
        assert_eq!(batched, deleted);
    }
    assert_eq!(plan.deletion_count(), 5);
    let order: Vec<Digest> = plan.repositories[0].deletion_batches.concat();
    let pos = |n: &str| order.iter().position(|x| *x == d(n)).unwrap();
    assert!(pos("r") < pos("i") && pos("i") < pos("c1") && pos("i") < pos("c2"));
}

/// Issue 25, defect 7: a registry that takes an index's untagged children and a subject's
/// accessories along (Harbor) keeps what would take a kept manifest with it.
#[test]
fn a_registry_that_takes_children_along_keeps_their_last_index() {
    let takes_along = Policy {
        min_age: Duration::hours(1),
        takes_along: true,
        ..policy(1)
    };
    let repos = || {
        vec![repo("app")
            // An old untagged index whose child's age is unknown (kept by the minimum age).
            .image("young child", None, &[])
            .with(|m| m.pushed = None)
            .index("old index", &["young child"], &[])
            // A child shared with a kept index: the registry keeps it for that index.
            .image("shared", Some(days_ago(30)), &[])
            .index("old multi", &["shared"], &[])
            .index("new multi", &["shared"], &["latest"])
            // A young signature of an old untagged image.
            .image("old image", Some(days_ago(30)), &[])
            .image(
                "young signature",
                None,
                &[&attachment_tag("old image", ".sig")],
            )
            .with(|m| m.pushed = Some(now()))]
    };
    let plan = run(repos(), &takes_along);
    assert_eq!(
        reason(&plan, "app", "old index"),
        Reason::TakesKeptAlong {
            kept: d("young child")
        }
    );
    assert_eq!(
        reason(&plan, "app", "old image"),
        Reason::TakesKeptAlong {
            kept: d("young signature")
        }
    );
    assert_eq!(reason(&plan, "app", "old multi"), Reason::Untagged);
    // Without the registry's rule, both would go.
    let plan = run(
        repos(),
        &Policy {
            takes_along: false,
            ..takes_along
        },
    );
    assert_eq!(reason(&plan, "app", "old index"), Reason::Untagged);
    assert_eq!(reason(&plan, "app", "old image"), Reason::Untagged);
}
