//! apply: carries out a plan's deletions through a provider, in the plan's order, with bounded
//! concurrency. Decides nothing new: just before each delete it re-reads what the registry
//! holds (at the start of every batch, and at most a second before any delete) and skips a
//! deletion that a concurrent push made wrong: a new tag on the digest, or a new index that
//! lists it. It stops on errors that would repeat, and when asked to (SIGINT/SIGTERM).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::http::{Deleted, RegistryError};
use crate::model::{Action, Digest, Inventory, Manifest, Plan, RepositoryName, Tag};
use crate::progress::Progress;

/// Tags of a repository as they are now: digest → tags.
pub type CurrentTags = HashMap<Digest, BTreeSet<Tag>>;

/// What a repository holds right now, for the pre-delete race check.
#[derive(Debug, Clone, Default)]
pub struct CurrentState {
    /// Its tags.
    pub tags: CurrentTags,
    /// The manifests it holds that the plan did not know (pushed since the plan was made).
    pub new_manifests: Vec<Digest>,
}

/// What apply needs from a registry.
///
/// The rule every provider follows: regsweep decides which manifests go, and deletes them by
/// digest; a registry's garbage collection, where a provider starts one, is only ever asked
/// to collect unreferenced blobs (DigitalOcean: `unreferenced blobs only`; Harbor:
/// `delete_untagged: false`). A registry's own "untagged manifests" sweep deletes every
/// manifest without a tag of its own, which on distribution-based registries includes the
/// children of kept multi-arch images and the referrers of kept images
/// (distribution/distribution#3178). The opt-in (`REGSWEEP_GC_INCLUDE_UNTAGGED`) is checked
/// against the plan by `plan::untagged` before anything is deleted. See docs/providers.md.
pub trait Provider: Send + Sync {
    /// The repository's tags right now and the manifests it holds that are not in `known`,
    /// from one reading (an API provider lists the repository once for both).
    fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> impl Future<Output = Result<CurrentState, String>> + Send;
    /// The manifests that manifest `digest` lists (empty unless it is an index), read now.
    fn manifest_children(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> impl Future<Output = Result<Vec<Digest>, String>> + Send;
    /// Deletes one manifest through the registry's API.
    fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> impl Future<Output = Result<Deleted, RegistryError>> + Send;
}

/// What happened to one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeletionOutcome {
    /// Deleted by this run.
    Deleted,
    /// Already gone when we asked (404).
    AlreadyGone,
    /// Not deleted: a tag now points at it that did not when the plan was made.
    SkippedRaced {
        /// The new tags.
        tags: Vec<Tag>,
    },
    /// Not deleted: an index pushed during the run lists it (directly or through another).
    SkippedReferenced {
        /// The new index.
        index: Digest,
    },
    /// The registry refused or failed; a later run can retry.
    Failed {
        /// Why.
        error: String,
    },
    /// Not attempted: the run stopped first.
    NotAttempted,
}

/// The result of applying a plan.
#[derive(Debug, Default)]
pub struct Applied {
    /// Per repository and digest.
    pub outcomes: BTreeMap<(RepositoryName, Digest), DeletionOutcome>,
    /// Why the run stopped early (deletion disabled, credentials refused, interrupted).
    pub fatal: Option<String>,
}

impl Applied {
    /// How many manifests this run really deleted (or found gone).
    pub fn deleted_count(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, DeletionOutcome::Deleted | DeletionOutcome::AlreadyGone))
            .count()
    }

    /// Every planned deletion marked not attempted, with `reason` as the fatal error: for a
    /// plan that is refused as a whole.
    pub fn refused(plan: &Plan, reason: String) -> Applied {
        let mut outcomes = BTreeMap::new();
        for repository in &plan.repositories {
            for decision in repository
                .decisions
                .iter()
                .filter(|d| d.action == Action::Delete)
            {
                outcomes.insert(
                    (repository.name.clone(), decision.digest.clone()),
                    DeletionOutcome::NotAttempted,
                );
            }
        }
        Applied {
            outcomes,
            fatal: Some(reason),
        }
    }
}

/// How long a reading of what a repository holds is trusted before it is read again (it is
/// also read again at the start of every batch).
const GUARD_MAX_AGE: Duration = Duration::from_secs(1);

/// What must not be deleted in a repository right now, as last read.
#[derive(Debug, Default)]
struct Guard {
    tags: CurrentTags,
    /// Manifests listed by an index that was not there when the plan was made → that index.
    listed_by_new_index: HashMap<Digest, Digest>,
}

type GuardSlot = Arc<Mutex<Option<(usize, Instant, Arc<Guard>)>>>;

/// What the plan knew of one repository: manifests by digest, and the digests as a set.
type Known<'a> = (HashMap<&'a Digest, &'a Manifest>, HashSet<Digest>);

struct Guards<'a> {
    slots: Mutex<HashMap<RepositoryName, GuardSlot>>,
    known: &'a HashMap<&'a RepositoryName, Known<'a>>,
}

impl Guards<'_> {
    async fn get<P: Provider>(
        &self,
        provider: &P,
        repository: &RepositoryName,
        step: usize,
    ) -> Result<Arc<Guard>, String> {
        let slot = {
            let mut slots = self.slots.lock().await;
            slots.entry(repository.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some((taken_in, taken_at, guard)) = slot.as_ref() {
            if *taken_in == step && taken_at.elapsed() < GUARD_MAX_AGE {
                return Ok(guard.clone());
            }
        }
        let empty = (HashMap::new(), HashSet::new());
        let known = self.known.get(repository).unwrap_or(&empty);
        let guard = Arc::new(read_guard(provider, repository, known).await?);
        *slot = Some((step, Instant::now(), guard.clone()));
        Ok(guard)
    }
}

/// Reads a repository's tags, and the closure of what indexes pushed since the plan list.
async fn read_guard<P: Provider>(
    provider: &P,
    repository: &RepositoryName,
    (known, known_set): &Known<'_>,
) -> Result<Guard, String> {
    let CurrentState {
        tags,
        new_manifests: mut new,
    } = provider.current_state(repository, known_set).await?;
    new.sort();
    let mut listed_by_new_index = HashMap::new();
    let mut pending: Vec<(Digest, Digest)> = new.into_iter().map(|d| (d.clone(), d)).collect();
    let mut seen = HashSet::new();
    // Bounded: every digest is expanded once, and there are finitely many.
    while let Some((digest, new_index)) = pending.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let children: Vec<Digest> = match known.get(&digest) {
            Some(manifest) => manifest.children.iter().map(|c| c.digest.clone()).collect(),
            None => provider.manifest_children(repository, &digest).await?,
        };
        for child in children {
            listed_by_new_index
                .entry(child.clone())
                .or_insert_with(|| new_index.clone());
            pending.push((child, new_index.clone()));
        }
    }
    Ok(Guard {
        tags,
        listed_by_new_index,
    })
}

/// Deletes what `plan` says, batch after batch (all repositories' first batches, then their
/// second, …), each batch with at most `concurrency` requests in flight. Setting `stop`
/// (a signal handler does) lets requests in flight finish and attempts no more.
pub async fn apply<P: Provider>(
    plan: &Plan,
    inventory: &Inventory,
    provider: &P,
    concurrency: usize,
    stop: &AtomicBool,
    progress: &Progress,
) -> Applied {
    let phase = progress.phase("delete", "manifests", plan.deletion_count() as u64);
    let phase = &phase;
    let known: HashMap<&RepositoryName, Known<'_>> = inventory
        .repositories
        .iter()
        .map(|r| {
            let by_digest = r.manifests.iter().map(|m| (&m.digest, m)).collect();
            let set = r.manifests.iter().map(|m| m.digest.clone()).collect();
            (&r.name, (by_digest, set))
        })
        .collect();
    // The tags each doomed digest had when planned: those may still point at it (a hash tag
    // beyond the newest N is deleted with its manifest); any other tag means a push raced us.
    let planned_tags = |repository: &RepositoryName, digest: &Digest| -> Option<BTreeSet<Tag>> {
        known
            .get(repository)
            .and_then(|(m, _)| m.get(digest))
            .map(|m| m.tags.iter().cloned().collect())
    };

    let steps = plan
        .repositories
        .iter()
        .map(|r| r.deletion_batches.len())
        .max()
        .unwrap_or(0);
    let guards = Guards {
        slots: Mutex::new(HashMap::new()),
        known: &known,
    };
    let halted = AtomicBool::new(false);
    let fatal: Mutex<Option<String>> = Mutex::new(None);
    let mut outcomes = BTreeMap::new();
    let stopped = || stop.load(Ordering::SeqCst) || halted.load(Ordering::SeqCst);

    for step in 0..steps {
        let work: Vec<(&RepositoryName, &Digest)> = plan
            .repositories
            .iter()
            .filter_map(|r| r.deletion_batches.get(step).map(|batch| (&r.name, batch)))
            .flat_map(|(name, batch)| batch.iter().map(move |digest| (name, digest)))
            .collect();
        let results: Vec<((RepositoryName, Digest), DeletionOutcome)> = stream::iter(work)
            .map(|(repository, digest)| {
                let guards = &guards;
                let halted = &halted;
                let fatal = &fatal;
                let planned = planned_tags(repository, digest);
                async move {
                    let key = (repository.clone(), digest.clone());
                    if stopped() {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    let guard = match guards.get(provider, repository, step).await {
                        Ok(guard) => guard,
                        Err(error) => {
                            let error =
                                format!("cannot re-check the repository before deleting: {error}");
                            return (key, DeletionOutcome::Failed { error });
                        }
                    };
                    let new_tags: Vec<Tag> = guard
                        .tags
                        .get(digest)
                        .into_iter()
                        .flatten()
                        .filter(|t| planned.as_ref().is_none_or(|p| !p.contains(*t)))
                        .cloned()
                        .collect();
                    if !new_tags.is_empty() {
                        return (key, DeletionOutcome::SkippedRaced { tags: new_tags });
                    }
                    if let Some(index) = guard.listed_by_new_index.get(digest) {
                        let index = index.clone();
                        return (key, DeletionOutcome::SkippedReferenced { index });
                    }
                    if stopped() {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    let outcome = match provider.delete_manifest(repository, digest).await {
                        Ok(Deleted::Now) => DeletionOutcome::Deleted,
                        Ok(Deleted::AlreadyGone) => DeletionOutcome::AlreadyGone,
                        Err(error) => {
                            if error.is_fatal() {
                                halted.store(true, Ordering::SeqCst);
                                fatal.lock().await.get_or_insert_with(|| error.to_string());
                            }
                            DeletionOutcome::Failed {
                                error: error.to_string(),
                            }
                        }
                    };
                    tracing::debug!(repository = %key.0, digest = %key.1, ?outcome, "delete");
                    phase.inc(1);
                    (key, outcome)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        outcomes.extend(results);
    }

    // Anything planned that no step reached is reported rather than silently dropped.
    for repository in &plan.repositories {
        for decision in repository
            .decisions
            .iter()
            .filter(|d| d.action == Action::Delete)
        {
            outcomes
                .entry((repository.name.clone(), decision.digest.clone()))
                .or_insert(DeletionOutcome::NotAttempted);
        }
    }
    let mut fatal = fatal.into_inner();
    let interrupted = stop.load(Ordering::SeqCst)
        && outcomes
            .values()
            .any(|o| *o == DeletionOutcome::NotAttempted);
    if fatal.is_none() && interrupted {
        fatal = Some(
            "interrupted: deletions in flight finished, the rest were not attempted; \
             run again to finish"
                .to_string(),
        );
    }
    Applied { outcomes, fatal }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Manifest, ManifestKind, Repository};
    use crate::plan::{plan, Policy};
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
    }

    impl Provider for Recorder {
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
        ) -> Result<Deleted, RegistryError> {
            if self.refuse_with_405 {
                return Err(RegistryError::DeletionDisabled {
                    registry: "http://r".into(),
                });
            }
            self.deleted.lock().unwrap().push(digest.clone());
            Ok(Deleted::Now)
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
        }
    }

    async fn run(
        plan: &Plan,
        inventory: &Inventory,
        provider: &Recorder,
        concurrency: usize,
        stopped: bool,
    ) -> Applied {
        let stop = AtomicBool::new(stopped);
        apply(
            plan,
            inventory,
            provider,
            concurrency,
            &stop,
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
}
