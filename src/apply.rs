//! apply: carries out a plan's deletions through a provider, in the plan's order, with bounded
//! concurrency. Decides nothing: it only re-checks, just before each delete, that no new tag
//! points at the digest (a push raced the run), and stops on errors that would repeat.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::http::{Deleted, RegistryError};
use crate::model::{Action, Digest, Inventory, Plan, RepositoryName, Tag};

/// Tags of a repository as they are now: digest → tags.
pub type CurrentTags = HashMap<Digest, BTreeSet<Tag>>;

/// What apply needs from a registry.
pub trait Provider: Send + Sync {
    /// The repository's tags right now, for the pre-delete race check.
    fn current_tags(
        &self,
        repository: &RepositoryName,
    ) -> impl Future<Output = Result<CurrentTags, String>> + Send;
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
    /// An error that stopped the run (deletion disabled, credentials refused).
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
}

/// How long a snapshot of a repository's tags is trusted before it is read again.
const TAG_SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

/// One repository's tags as last read, and when.
type Snapshot = Arc<Mutex<Option<(Instant, Arc<CurrentTags>)>>>;

struct TagSnapshots {
    snapshots: Mutex<HashMap<RepositoryName, Snapshot>>,
}

impl TagSnapshots {
    async fn get<P: Provider>(
        &self,
        provider: &P,
        repository: &RepositoryName,
    ) -> Result<Arc<CurrentTags>, String> {
        let slot = {
            let mut snapshots = self.snapshots.lock().await;
            snapshots.entry(repository.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some((taken, tags)) = slot.as_ref() {
            if taken.elapsed() < TAG_SNAPSHOT_MAX_AGE {
                return Ok(tags.clone());
            }
        }
        let tags = Arc::new(provider.current_tags(repository).await?);
        *slot = Some((Instant::now(), tags.clone()));
        Ok(tags)
    }
}

/// Deletes what `plan` says, batch after batch (all repositories' first batches, then their
/// second, …), each batch with at most `concurrency` requests in flight.
pub async fn apply<P: Provider>(
    plan: &Plan,
    inventory: &Inventory,
    provider: &P,
    concurrency: usize,
) -> Applied {
    // The tags each doomed digest had when planned: those may still point at it (a hash tag
    // beyond the newest N is deleted with its manifest); any other tag means a push raced us.
    let mut planned_tags: HashMap<(&RepositoryName, &Digest), BTreeSet<&Tag>> = HashMap::new();
    for repository in &inventory.repositories {
        for manifest in &repository.manifests {
            planned_tags.insert(
                (&repository.name, &manifest.digest),
                manifest.tags.iter().collect(),
            );
        }
    }

    let steps = plan
        .repositories
        .iter()
        .map(|r| r.deletion_batches.len())
        .max()
        .unwrap_or(0);
    let snapshots = TagSnapshots {
        snapshots: Mutex::new(HashMap::new()),
    };
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<String>> = Mutex::new(None);
    let mut outcomes = BTreeMap::new();

    for step in 0..steps {
        let work: Vec<(&RepositoryName, &Digest)> = plan
            .repositories
            .iter()
            .filter_map(|r| r.deletion_batches.get(step).map(|batch| (&r.name, batch)))
            .flat_map(|(name, batch)| batch.iter().map(move |digest| (name, digest)))
            .collect();
        let results: Vec<((RepositoryName, Digest), DeletionOutcome)> = stream::iter(work)
            .map(|(repository, digest)| {
                let snapshots = &snapshots;
                let stop = &stop;
                let fatal = &fatal;
                let planned = planned_tags.get(&(repository, digest));
                async move {
                    let key = (repository.clone(), digest.clone());
                    if stop.load(Ordering::SeqCst) {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    let current = match snapshots.get(provider, repository).await {
                        Ok(current) => current,
                        Err(error) => {
                            let error = format!("cannot re-check tags before deleting: {error}");
                            return (key, DeletionOutcome::Failed { error });
                        }
                    };
                    let new_tags: Vec<Tag> = current
                        .get(digest)
                        .into_iter()
                        .flatten()
                        .filter(|t| planned.is_none_or(|p| !p.contains(t)))
                        .cloned()
                        .collect();
                    if !new_tags.is_empty() {
                        return (key, DeletionOutcome::SkippedRaced { tags: new_tags });
                    }
                    if stop.load(Ordering::SeqCst) {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    let outcome = match provider.delete_manifest(repository, digest).await {
                        Ok(Deleted::Now) => DeletionOutcome::Deleted,
                        Ok(Deleted::AlreadyGone) => DeletionOutcome::AlreadyGone,
                        Err(error) => {
                            if error.is_fatal() {
                                stop.store(true, Ordering::SeqCst);
                                fatal.lock().await.get_or_insert_with(|| error.to_string());
                            }
                            DeletionOutcome::Failed {
                                error: error.to_string(),
                            }
                        }
                    };
                    (key, outcome)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        outcomes.extend(results);
    }

    // Anything planned that no step reached (cannot happen unless a batch was skipped) is
    // reported rather than silently dropped.
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
    Applied {
        outcomes,
        fatal: fatal.into_inner(),
    }
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
    }

    impl Provider for Recorder {
        async fn current_tags(&self, _: &RepositoryName) -> Result<CurrentTags, String> {
            Ok(self.tags.lock().unwrap().clone())
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
        }
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
        let applied = apply(&plan, &inventory, &provider, 4).await;
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
        let applied = apply(&plan, &inventory, &provider, 4).await;
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
    async fn deletion_disabled_stops_the_run() {
        let inventory = inventory();
        let plan = plan(&inventory, &policy_keep_none(), chrono::Utc::now());
        let provider = recorder(&[], true);
        let applied = apply(&plan, &inventory, &provider, 1).await;
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
