//! Applying plans through a recording provider: order, races, stops.

use super::*;
use crate::model::{GarbageCollectionAdvice, Manifest, ManifestKind, Repository};
use crate::plan::untagged::UntaggedSweep;
use crate::plan::{plan, Policy};
use crate::providers::{CurrentTags, DeleteError, DiscoveryError};
use std::sync::Mutex as StdMutex;

fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

/// A provider that records deletions and can pretend tags appeared.
struct Recorder {
    tags: StdMutex<CurrentTags>,
    deleted: StdMutex<Vec<Digest>>,
    refuse_with_405: bool,
    /// Indexes "pushed during the run": digest → children.
    new_indexes: Vec<(Digest, Vec<Digest>)>,
    /// Deletions that fail (a 500 that outlasted the retries).
    failing: Vec<Digest>,
    /// Deletions the registry refuses by a rule of its own (GitHub's downloaded versions).
    refused: Vec<Digest>,
    /// Whether it can put back what was deleted (GHCR), and what it put back.
    undoes: bool,
    undone: StdMutex<Vec<Digest>>,
}

impl Provider for Recorder {
    fn source(&self) -> String {
        "a test".into()
    }
    async fn discover(
        &self,
        _: &[RepositoryName],
        _: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        Ok(inventory())
    }
    fn gc_advice(&self, _: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        None
    }
    async fn current_state(
        &self,
        _: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let live = self.new_indexes.iter().map(|(index, _)| index.clone());
        Ok(CurrentState {
            tags: self.tags.lock().unwrap().clone(),
            new_manifests: live.filter(|x| !known.contains(x)).collect(),
        })
    }
    async fn manifest_children(
        &self,
        _: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<Digest>, String> {
        Ok(self
            .new_indexes
            .iter()
            .filter(|(index, _)| index == digest)
            .flat_map(|(_, children)| children.clone())
            .collect())
    }
    async fn delete_manifest(
        &self,
        _: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deletion, DeleteError> {
        if self.refuse_with_405 {
            return Err(crate::registry::RegistryError::DeletionDisabled {
                registry: "http://r".into(),
            }
            .into());
        }
        if self.failing.contains(digest) {
            return Err(DeleteError::new(
                "500 Internal Server Error",
                Reach::Manifest,
            ));
        }
        if self.refused.contains(digest) {
            return Ok(Deletion::KeptByRegistry {
                reason: "downloaded too often".into(),
            });
        }
        self.deleted.lock().unwrap().push(digest.clone());
        Ok(Deletion::Deleted)
    }
    fn undoes_deletions(&self) -> bool {
        self.undoes
    }
    async fn undo_deletion(&self, _: &RepositoryName, digest: &Digest) -> Result<(), String> {
        self.undone.lock().unwrap().push(digest.clone());
        Ok(())
    }
}

fn inventory() -> Inventory {
    let mut old = Manifest::new(d("old"), ManifestKind::Image);
    old.tags = vec!["aaaaaaa".into()];
    let child = Manifest::new(d("child"), ManifestKind::Image);
    let mut index = Manifest::new(d("index"), ManifestKind::Index);
    index.children = vec![crate::model::ChildReference {
        digest: d("child"),
        platform: None,
    }];
    let mut manifests = vec![old, child, index];
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    Inventory {
        repositories: vec![Repository {
            name: "app".parse().unwrap(),
            manifests,
            problems: vec![],
            notes: vec![],
        }],
    }
}

fn recorder(tags: &[(&str, &str)], refuse: bool) -> Recorder {
    let mut map = CurrentTags::new();
    for (digest, tag) in tags {
        map.entry(d(digest)).or_default().insert(tag.to_string());
    }
    Recorder {
        tags: StdMutex::new(map),
        deleted: StdMutex::new(vec![]),
        refuse_with_405: refuse,
        new_indexes: vec![],
        failing: vec![],
        refused: vec![],
        undoes: false,
        undone: StdMutex::new(vec![]),
    }
}

/// An untagged image with a cosign signature (attachment tag) and an SBOM (subject): all
/// three doomed.
fn signed_image() -> Inventory {
    let mut signature = Manifest::new(d("signature"), ManifestKind::Image);
    signature.tags = vec![format!("sha256-{}.sig", d("image").hex())];
    let mut sbom = Manifest::new(d("sbom"), ManifestKind::Artifact);
    sbom.subject = Some(d("image"));
    let mut manifests = vec![
        Manifest::new(d("image"), ManifestKind::Image),
        signature,
        sbom,
    ];
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    Inventory {
        repositories: vec![Repository {
            name: "app".parse().unwrap(),
            manifests,
            problems: vec![],
            notes: vec![],
        }],
    }
}

/// Issue 25, defect 4: a tag pushed onto the image before its signature's turn keeps the
/// image (raced), so the signature and the SBOM, which go first, wait with it.
#[tokio::test]
async fn referrers_wait_while_their_image_gained_a_tag() {
    let inventory = signed_image();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    assert_eq!(plan.deletion_count(), 3);
    let provider = recorder(&[("image", "hotfix")], false);
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    for referrer in ["signature", "sbom"] {
        assert_eq!(
            applied.outcomes[&key(referrer)],
            DeletionOutcome::Held { behind: d("image") },
            "{referrer}"
        );
    }
    assert!(matches!(
        applied.outcomes[&key("image")],
        DeletionOutcome::SkippedRaced { .. }
    ));
    assert!(provider.deleted.lock().unwrap().is_empty());
}

/// Issue 25, defect 4: the registry keeps the image by a rule of its own after its referrers
/// went; a registry that can put them back does so at once.
#[tokio::test]
async fn referrers_are_put_back_when_their_image_stays() {
    let inventory = signed_image();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    let mut provider = recorder(&[], false);
    provider.refused = vec![d("image")];
    provider.undoes = true;
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    for referrer in ["signature", "sbom"] {
        assert_eq!(
            applied.outcomes[&key(referrer)],
            DeletionOutcome::Restored {
                because: d("image")
            },
            "{referrer}"
        );
    }
    let mut undone = provider.undone.lock().unwrap().clone();
    undone.sort();
    let mut expected = vec![d("signature"), d("sbom")];
    expected.sort();
    assert_eq!(undone, expected);
    // Without the power to put back, they stay deleted (the next run deletes the image).
    let mut provider = recorder(&[], false);
    provider.refused = vec![d("image")];
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    assert_eq!(
        applied.outcomes[&key("signature")],
        DeletionOutcome::Deleted
    );
}

async fn run(
    plan: &Plan,
    inventory: &Inventory,
    provider: &Recorder,
    concurrency: usize,
    stopped: bool,
) -> Applied {
    let control = Control::new(None);
    if stopped {
        control.stop();
    }
    apply(
        plan,
        inventory,
        provider,
        concurrency,
        &control,
        &Progress::hidden(),
    )
    .await
}

fn policy_keep_none() -> Policy {
    Policy {
        hash_tag_keep: 0,
        ..Policy::default()
    }
}

#[tokio::test]
async fn deletes_in_plan_order() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    let provider = recorder(&[("old", "aaaaaaa")], false);
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let deleted = provider.deleted.lock().unwrap().clone();
    assert_eq!(deleted.len(), 3);
    let pos = |n: &str| deleted.iter().position(|x| *x == d(n)).unwrap();
    assert!(pos("index") < pos("child"), "index before its child");
    assert_eq!(applied.deleted_count(), 3);
    assert!(applied.fatal.is_none());
}

#[tokio::test]
async fn a_tag_pushed_during_the_run_wins() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    // `old` still has its planned hash tag (fine) and a new `latest` (a race).
    let provider = recorder(
        &[("old", "aaaaaaa"), ("old", "latest"), ("child", "v2")],
        false,
    );
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    assert_eq!(
        applied.outcomes[&key("old")],
        DeletionOutcome::SkippedRaced {
            tags: vec!["latest".into()]
        }
    );
    assert_eq!(
        applied.outcomes[&key("child")],
        DeletionOutcome::SkippedRaced {
            tags: vec!["v2".into()]
        }
    );
    assert_eq!(applied.outcomes[&key("index")], DeletionOutcome::Deleted);
    assert_eq!(*provider.deleted.lock().unwrap(), vec![d("index")]);
}

#[tokio::test]
async fn an_index_pushed_during_the_run_protects_what_it_lists() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    // A new index lists a new inner index that lists `child`, a doomed manifest.
    let mut provider = recorder(&[("old", "aaaaaaa")], false);
    provider.new_indexes = vec![
        (d("new-outer"), vec![d("new-inner")]),
        (d("new-inner"), vec![d("child")]),
    ];
    let applied = run(&plan, &inventory, &provider, 2, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    assert_eq!(
        applied.outcomes[&key("child")],
        DeletionOutcome::SkippedReferenced {
            index: d("new-outer")
        }
    );
    assert_eq!(applied.outcomes[&key("index")], DeletionOutcome::Deleted);
    assert_eq!(applied.outcomes[&key("old")], DeletionOutcome::Deleted);
}

#[tokio::test]
async fn a_stop_request_attempts_nothing_more() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    let provider = recorder(&[], false);
    let applied = run(&plan, &inventory, &provider, 1, true).await;
    assert_eq!(applied.deleted_count(), 0);
    assert!(provider.deleted.lock().unwrap().is_empty());
    assert!(applied.fatal.unwrap().starts_with("interrupted"));
}

#[tokio::test]
async fn deletion_disabled_stops_the_run() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    let provider = recorder(&[], true);
    let applied = run(&plan, &inventory, &provider, 1, false).await;
    assert!(applied
        .fatal
        .as_ref()
        .unwrap()
        .contains("REGISTRY_STORAGE_DELETE_ENABLED=true"));
    assert_eq!(applied.deleted_count(), 0);
    assert!(applied
        .outcomes
        .values()
        .any(|o| *o == DeletionOutcome::NotAttempted));
}

#[tokio::test]
async fn a_child_waits_for_its_index_that_failed_to_go() {
    let inventory = inventory();
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    let mut provider = recorder(&[("old", "aaaaaaa")], false);
    provider.failing = vec![d("index")];
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    assert!(matches!(
        applied.outcomes[&key("index")],
        DeletionOutcome::Failed { .. }
    ));
    // The index is still there: deleting its child would break it.
    assert_eq!(
        applied.outcomes[&key("child")],
        DeletionOutcome::Held { behind: d("index") }
    );
    assert_eq!(applied.outcomes[&key("old")], DeletionOutcome::Deleted);
    assert_eq!(*provider.deleted.lock().unwrap(), vec![d("old")]);
}

#[tokio::test]
async fn an_image_waits_for_its_signature_and_referrer_that_failed_to_go() {
    // An untagged image with a signature (attachment tag) and an SBOM (subject), a second
    // untagged image with a signature: all doomed. The first image's signature fails.
    let mut manifests = vec![
        Manifest::new(d("image"), ManifestKind::Image),
        Manifest::new(d("other"), ManifestKind::Image),
    ];
    let mut signature = Manifest::new(d("signature"), ManifestKind::Image);
    signature.tags = vec![format!("sha256-{}.sig", d("image").hex())];
    let mut sbom = Manifest::new(d("sbom"), ManifestKind::Artifact);
    sbom.subject = Some(d("image"));
    let mut other_signature = Manifest::new(d("other signature"), ManifestKind::Image);
    other_signature.tags = vec![format!("sha256-{}.sig", d("other").hex())];
    manifests.extend([signature, sbom, other_signature]);
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    let inventory = Inventory {
        repositories: vec![Repository {
            name: "app".parse().unwrap(),
            manifests,
            problems: vec![],
            notes: vec![],
        }],
    };
    let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    assert_eq!(plan.deletion_count(), 5);
    let mut provider = recorder(&[], false);
    provider.failing = vec![d("signature")];
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    // Deleting the image would leave its signature without a target, which every later
    // run keeps ("attachment without its target"): the image waits for a later run.
    assert_eq!(
        applied.outcomes[&key("image")],
        DeletionOutcome::Held {
            behind: d("signature")
        }
    );
    assert_eq!(applied.outcomes[&key("sbom")], DeletionOutcome::Deleted);
    assert_eq!(applied.outcomes[&key("other")], DeletionOutcome::Deleted);
    assert_eq!(
        applied.outcomes[&key("other signature")],
        DeletionOutcome::Deleted
    );

    // The next run, without the fault, deletes both.
    let provider = recorder(&[], false);
    let left = Inventory {
        repositories: vec![Repository {
            manifests: inventory.repositories[0]
                .manifests
                .iter()
                .filter(|m| [d("image"), d("signature")].contains(&m.digest))
                .cloned()
                .collect(),
            ..inventory.repositories[0].clone()
        }],
    };
    let second = crate::plan::plan(&left, &policy_keep_none(), chrono::Utc::now());
    let applied = run(&second, &left, &provider, 4, false).await;
    assert_eq!(applied.deleted_count(), 2);
}

#[tokio::test]
async fn a_child_waits_for_its_index_that_a_reviewed_plan_dropped() {
    // Applying a reviewed plan: the index changed since (a tag pushed onto it), so it was
    // dropped from the batches; its child must not go without it.
    let inventory = inventory();
    let mut plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
    for batch in &mut plan.repositories[0].deletion_batches {
        batch.retain(|digest| *digest != d("index"));
    }
    plan.repositories[0]
        .deletion_batches
        .retain(|b| !b.is_empty());
    let provider = recorder(&[("old", "aaaaaaa")], false);
    let applied = run(&plan, &inventory, &provider, 4, false).await;
    let key = |n: &str| ("app".parse().unwrap(), d(n));
    assert_eq!(
        applied.outcomes[&key("child")],
        DeletionOutcome::Held { behind: d("index") }
    );
    assert_eq!(*provider.deleted.lock().unwrap(), vec![d("old")]);
}
