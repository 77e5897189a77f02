//! apply: carries out a plan's deletions through a provider, in the plan's order, with bounded
//! concurrency. Decides nothing new: just before each delete it re-reads what the registry
//! holds (at the start of every batch, and at most a second before any delete) and skips a
//! deletion that a concurrent push made wrong: a new tag on the digest, or a new index that
//! lists it. It stops on errors that would repeat, in a repository where the registry and the
//! plan disagree, when asked to (SIGINT/SIGTERM) and when the time budget is spent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::control::{Control, Halt};
use crate::model::{Action, Digest, Inventory, Manifest, Plan, RepositoryName, Tag};
use crate::plan::order::links;
use crate::progress::{thousands, Progress};
use crate::providers::{CurrentState, CurrentTags, Deletion, Provider, Reach, Untagging};

/// What happened to one planned deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeletionOutcome {
    /// Deleted by this run.
    Deleted,
    /// Already gone when we asked (404).
    AlreadyGone,
    /// Deleted by the registry together with `parent`, which this run deleted.
    DeletedWith {
        /// The manifest whose deletion took it along.
        parent: Digest,
    },
    /// Not deleted: a tag now points at it that did not when the plan was made.
    SkippedRaced {
        /// The new tags.
        tags: Vec<Tag>,
    },
    /// Not deleted: applying a reviewed plan, the manifest had changed since the plan (a tag
    /// pushed onto it or moved elsewhere, or a manifest the plan does not delete now refers to
    /// it).
    SkippedChanged {
        /// What changed.
        change: String,
    },
    /// Not deleted: an index pushed during the run lists it (directly or through another).
    SkippedReferenced {
        /// The new index.
        index: Digest,
    },
    /// Not deleted: the registry keeps it by a rule of its own (GitHub's last tagged version,
    /// a GitLab protected tag). Not a failure.
    KeptByRegistry {
        /// The registry's reason.
        reason: String,
    },
    /// Its tags were deleted (an API that deletes tags only: GitLab); the registry's own
    /// garbage collection removes the untagged manifest.
    Untagged {
        /// The tags deleted (empty: it had none).
        tags: Vec<Tag>,
    },
    /// The registry refused or failed; a later run can retry.
    Failed {
        /// Why.
        error: String,
    },
    /// Not deleted: the registry deletes tags only (GitLab), and `tag` was pushed onto
    /// manifest `now` during the run, so it was left; `deleted` are the manifest's other tags,
    /// deleted.
    TagMoved {
        /// The tag that moved.
        tag: Tag,
        /// The manifest it points at now.
        now: Digest,
        /// The other tags, deleted.
        deleted: Vec<Tag>,
    },
    /// Deleted before what it belongs to (a signature before its image, in the
    /// referrers-first order), which then stayed (the registry kept it by a rule of its own,
    /// or a push raced the run): put back at once, where the registry can (GHCR).
    Restored {
        /// What it belongs to, which stayed.
        because: Digest,
    },
    /// Not attempted: the run stopped first.
    NotAttempted,
    /// Not attempted: the plan deletes it only after `behind` (an index that lists it, or a
    /// referrer or attachment of it, or the other way round for a registry that deletes
    /// parents first), and `behind` was not deleted. Deleting it anyway could break `behind`
    /// or leave an attachment whose image is gone, which every later run would keep.
    Held {
        /// The linked manifest that had to go first.
        behind: Digest,
    },
}

impl DeletionOutcome {
    /// Whether the manifest is gone (or, for a registry that deletes tags only, untagged).
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            DeletionOutcome::Deleted
                | DeletionOutcome::AlreadyGone
                | DeletionOutcome::DeletedWith { .. }
                | DeletionOutcome::Untagged { .. }
        )
    }
}

/// What happened to one tag the plan removes from a manifest that stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UntagOutcome {
    /// Removed; the manifest stays.
    Untagged,
    /// It points at another manifest now (a push raced the run): left alone.
    Moved {
        /// What it points at now.
        now: Digest,
    },
    /// It was gone already.
    AlreadyGone,
    /// The registry gives no way to remove it, or the account may not: it stays.
    Impossible {
        /// Why, and what would make it possible.
        reason: String,
    },
    /// The registry refused or failed; a later run can retry.
    Failed {
        /// Why.
        error: String,
    },
    /// Not attempted: the run stopped first.
    NotAttempted,
}

impl UntagOutcome {
    /// Whether the tag is off the manifest.
    pub fn is_done(&self) -> bool {
        matches!(self, UntagOutcome::Untagged | UntagOutcome::AlreadyGone)
    }
}

/// A tag of a repository's manifest: what untag outcomes are keyed by.
pub type TagKey = (RepositoryName, Digest, Tag);

/// The result of applying a plan.
#[derive(Debug, Default)]
pub struct Applied {
    /// Per repository and digest.
    pub outcomes: BTreeMap<(RepositoryName, Digest), DeletionOutcome>,
    /// Per tag removed from a manifest that stays.
    pub untags: BTreeMap<TagKey, UntagOutcome>,
    /// Why the run stopped early (deletion disabled, credentials refused, interrupted, time
    /// budget spent).
    pub fatal: Option<String>,
    /// Repositories where deleting stopped because the registry and the plan disagree, and
    /// why.
    pub stopped_repositories: BTreeMap<RepositoryName, String>,
    /// The control's halt that ended the run early (a signal, the time budget), if any.
    pub halt: Option<Halt>,
}

impl Applied {
    /// How many manifests this run really deleted (or found gone).
    pub fn deleted_count(&self) -> usize {
        self.outcomes.values().filter(|o| o.is_gone()).count()
    }

    /// Every planned deletion marked not attempted, with `reason` as the fatal error: for a
    /// plan that is refused as a whole.
    pub fn refused(plan: &Plan, reason: String) -> Applied {
        Applied::uniform(
            plan,
            DeletionOutcome::NotAttempted,
            UntagOutcome::NotAttempted,
            Some(reason),
        )
    }

    /// Every planned deletion with the outcome `deletion`, every planned untag with `untag`:
    /// for a plan carried out (or not) as a whole, as in the maintenance window.
    pub fn uniform(
        plan: &Plan,
        deletion: DeletionOutcome,
        untag: UntagOutcome,
        fatal: Option<String>,
    ) -> Applied {
        let outcomes = plan
            .repositories
            .iter()
            .flat_map(|r| r.deletions().map(move |d| (r.name.clone(), d.clone())))
            .map(|key| (key, deletion.clone()))
            .collect();
        let untags = plan
            .repositories
            .iter()
            .flat_map(|r| {
                r.untags().map(|t| {
                    (
                        (r.name.clone(), t.digest.clone(), t.tag.clone()),
                        untag.clone(),
                    )
                })
            })
            .collect();
        Applied {
            outcomes,
            untags,
            fatal,
            ..Applied::default()
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
/// second, …), each batch with at most `concurrency` requests in flight. A manifest linked
/// to one of an earlier batch (index and child, subject and referrer or attachment) waits
/// for it: when that one was not deleted, this one is held back. When `control` is
/// stopped (a signal) or its time budget is spent, requests in flight finish and no more are
/// attempted.
pub async fn apply<P: Provider>(
    plan: &Plan,
    inventory: &Inventory,
    provider: &P,
    concurrency: usize,
    control: &Control,
    progress: &Progress,
) -> Applied {
    // Without untags (the seed's policy) the count is of manifests alone, as it always was.
    let unit = if plan.untag_count() == 0 {
        "manifests"
    } else {
        "manifests and tags"
    };
    let phase = progress.phase(
        "delete",
        unit,
        (plan.deletion_count() + plan.untag_count()) as u64,
    );
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
    let stops = Stops {
        control,
        halted: AtomicBool::new(false),
        fatal: Mutex::new(None),
        halt: Mutex::new(None),
        repositories: Mutex::default(),
    };
    let mut outcomes = BTreeMap::new();
    let order = Order::of(plan, inventory);
    let referrers_first = !provider.deletes_subjects_first();

    for step in 0..steps {
        let work: Vec<(&RepositoryName, &Digest, Option<Digest>)> = plan
            .repositories
            .iter()
            .filter_map(|r| r.deletion_batches.get(step).map(|batch| (&r.name, batch)))
            .flat_map(|(name, batch)| batch.iter().map(move |digest| (name, digest)))
            .map(|(name, digest)| (name, digest, order.held_behind(name, digest, &outcomes)))
            .collect();
        let attempted: Vec<(&RepositoryName, &Digest)> = work
            .iter()
            .map(|(name, digest, _)| (*name, *digest))
            .collect();
        let results: Vec<((RepositoryName, Digest), DeletionOutcome)> = stream::iter(work)
            .map(|(repository, digest, held)| {
                let guards = &guards;
                let stops = &stops;
                let order = &order;
                let planned_tags = &planned_tags;
                let planned = planned_tags(repository, digest);
                async move {
                    let key = (repository.clone(), digest.clone());
                    if stops.blocked(repository).await {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    if let Some(behind) = held {
                        return (key, DeletionOutcome::Held { behind });
                    }
                    let guard = match guards.get(provider, repository, step).await {
                        Ok(guard) => guard,
                        // The re-check was stopped (a signal, the time budget): not a failure.
                        Err(_) if stops.control.halted().is_some() => {
                            stops.blocked(repository).await;
                            return (key, DeletionOutcome::NotAttempted);
                        }
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
                    // Referrers and attachments go before what they belong to: one waits
                    // while that is not certain to go (a tag pushed onto it, or an index
                    // pushed that lists it, keeps it; issue 25, defect 4).
                    if referrers_first {
                        let raced = order.ancestors(repository, digest).into_iter().find(|p| {
                            let planned = planned_tags(repository, p);
                            let tagged = guard.tags.get(*p).into_iter().flatten().any(|t| {
                                planned.as_ref().is_none_or(|planned| !planned.contains(t))
                            });
                            tagged || guard.listed_by_new_index.contains_key(*p)
                        });
                        if let Some(behind) = raced {
                            let behind = behind.clone();
                            return (key, DeletionOutcome::Held { behind });
                        }
                    }
                    if stops.blocked(repository).await {
                        return (key, DeletionOutcome::NotAttempted);
                    }
                    let outcome = match provider.delete_manifest(repository, digest).await {
                        Ok(Deletion::Deleted) => DeletionOutcome::Deleted,
                        Ok(Deletion::AlreadyGone) => DeletionOutcome::AlreadyGone,
                        Ok(Deletion::DeletedWith { parent }) => {
                            DeletionOutcome::DeletedWith { parent }
                        }
                        Ok(Deletion::KeptByRegistry { reason }) => {
                            DeletionOutcome::KeptByRegistry { reason }
                        }
                        Ok(Deletion::Untagged { tags }) => DeletionOutcome::Untagged { tags },
                        Ok(Deletion::TagMoved { tag, now, deleted }) => {
                            DeletionOutcome::TagMoved { tag, now, deleted }
                        }
                        Err(error) => {
                            if let Some(reason) = error.halt {
                                stops.halt.lock().await.get_or_insert(reason);
                                return (key, DeletionOutcome::NotAttempted);
                            }
                            stops.failed(repository, &error).await;
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
        if referrers_first && provider.undoes_deletions() && control.halted().is_none() {
            let stayed: Vec<(&RepositoryName, &Digest)> = attempted
                .into_iter()
                .filter(|(name, digest)| {
                    !outcomes
                        .get(&((*name).clone(), (*digest).clone()))
                        .is_some_and(DeletionOutcome::is_gone)
                })
                .collect();
            put_back(provider, &order, &stayed, &mut outcomes).await;
        }
    }

    // Last, the tags the plan removes from manifests that stay.
    let untags = untag(plan, provider, concurrency, &stops, phase).await;

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
    let mut fatal = stops.fatal.into_inner();
    let halt = stops.halt.into_inner();
    let left = outcomes
        .values()
        .filter(|o| **o == DeletionOutcome::NotAttempted)
        .count();
    if fatal.is_none() && left > 0 {
        fatal = halt
            .as_ref()
            .map(|halt| halted_message(halt, left, outcomes.len()));
    }
    Applied {
        outcomes,
        untags,
        fatal,
        stopped_repositories: stops.repositories.into_inner(),
        halt,
    }
}

/// Removes every tag the plan removes from a manifest that stays, at most `concurrency` at
/// once; the provider reads each again just before, and leaves one that moved.
async fn untag<P: Provider>(
    plan: &Plan,
    provider: &P,
    concurrency: usize,
    stops: &Stops<'_>,
    phase: &crate::progress::Phase,
) -> BTreeMap<TagKey, UntagOutcome> {
    let work: Vec<(&RepositoryName, &crate::model::TagDecision)> = plan
        .repositories
        .iter()
        .flat_map(|r| r.untags().map(move |t| (&r.name, t)))
        .collect();
    stream::iter(work)
        .map(|(repository, decision)| async move {
            let key = (
                repository.clone(),
                decision.digest.clone(),
                decision.tag.clone(),
            );
            if stops.blocked(repository).await {
                return (key, UntagOutcome::NotAttempted);
            }
            let outcome = match provider
                .untag(repository, &decision.digest, &decision.tag)
                .await
            {
                Ok(Untagging::Untagged) => UntagOutcome::Untagged,
                Ok(Untagging::Moved { now }) => UntagOutcome::Moved { now },
                Ok(Untagging::Gone) => UntagOutcome::AlreadyGone,
                Ok(Untagging::Impossible { reason }) => UntagOutcome::Impossible { reason },
                Err(error) => {
                    if let Some(reason) = error.halt {
                        stops.halt.lock().await.get_or_insert(reason);
                        return (key, UntagOutcome::NotAttempted);
                    }
                    stops.failed(repository, &error).await;
                    UntagOutcome::Failed {
                        error: error.to_string(),
                    }
                }
            };
            tracing::debug!(repository = %key.0, tag = %key.2, ?outcome, "untag");
            phase.inc(1);
            (key, outcome)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// The plan's order as links between deletions: for each planned deletion, its batch and the
/// planned deletions linked to it.
struct Order<'a> {
    step: HashMap<(&'a RepositoryName, &'a Digest), usize>,
    linked: HashMap<(&'a RepositoryName, &'a Digest), Vec<&'a Digest>>,
    /// Per planned deletion, the planned deletions it belongs to: the index that lists it,
    /// the subject or target of a referrer or attachment.
    parents: HashMap<(&'a RepositoryName, &'a Digest), Vec<&'a Digest>>,
    /// The other way: per planned deletion, what belongs to it.
    dependents: HashMap<(&'a RepositoryName, &'a Digest), Vec<&'a Digest>>,
}

impl<'a> Order<'a> {
    fn of(plan: &'a Plan, inventory: &'a Inventory) -> Order<'a> {
        let mut order = Order {
            step: HashMap::new(),
            linked: HashMap::new(),
            parents: HashMap::new(),
            dependents: HashMap::new(),
        };
        for repository_plan in &plan.repositories {
            let name = &repository_plan.name;
            for (step, batch) in repository_plan.deletion_batches.iter().enumerate() {
                for digest in batch {
                    order.step.insert((name, digest), step);
                }
            }
            let Some(repository) = inventory.repositories.iter().find(|r| &r.name == name) else {
                continue;
            };
            let doomed: BTreeSet<&Digest> = repository_plan.deletions().collect();
            for (parent, dependent) in links(repository, &doomed) {
                order
                    .linked
                    .entry((name, parent))
                    .or_default()
                    .push(dependent);
                order
                    .linked
                    .entry((name, dependent))
                    .or_default()
                    .push(parent);
                order
                    .parents
                    .entry((name, dependent))
                    .or_default()
                    .push(parent);
                order
                    .dependents
                    .entry((name, parent))
                    .or_default()
                    .push(dependent);
            }
        }
        order
    }

    /// What `digest` belongs to, transitively (its index, its subject or target, theirs):
    /// each once, so the walk ends.
    fn ancestors(&self, repository: &'a RepositoryName, digest: &'a Digest) -> Vec<&'a Digest> {
        self.walk(&self.parents, repository, digest)
    }

    /// What belongs to `digest`, transitively.
    fn descendants(&self, repository: &'a RepositoryName, digest: &'a Digest) -> Vec<&'a Digest> {
        self.walk(&self.dependents, repository, digest)
    }

    fn walk(
        &self,
        edges: &HashMap<(&'a RepositoryName, &'a Digest), Vec<&'a Digest>>,
        repository: &'a RepositoryName,
        digest: &'a Digest,
    ) -> Vec<&'a Digest> {
        let mut found: Vec<&Digest> = Vec::new();
        let mut pending = vec![digest];
        while let Some(next) = pending.pop() {
            for other in edges.get(&(repository, next)).into_iter().flatten() {
                if *other != digest && !found.contains(other) {
                    found.push(other);
                    pending.push(other);
                }
            }
        }
        found
    }

    /// The linked deletion of an earlier batch that did not happen, or that a reviewed plan
    /// dropped (in no batch), if any: `digest` must then wait for a later run.
    fn held_behind(
        &self,
        repository: &'a RepositoryName,
        digest: &'a Digest,
        outcomes: &BTreeMap<(RepositoryName, Digest), DeletionOutcome>,
    ) -> Option<Digest> {
        let step = self.step.get(&(repository, digest))?;
        self.linked
            .get(&(repository, digest))?
            .iter()
            // A linked deletion in no batch was dropped from a reviewed plan (it changed
            // since): it stays, so what is linked to it waits too.
            .filter(|other| {
                self.step
                    .get(&(repository, **other))
                    .is_none_or(|s| s < step)
            })
            .find(|other| {
                let outcome = outcomes.get(&(repository.clone(), (**other).clone()));
                // One that waited for this very manifest (a referrer held while its image
                // was not certain to go) does not hold it in turn: the image answers for
                // itself, and the referrer follows it next run.
                let waited_for_this =
                    matches!(outcome, Some(DeletionOutcome::Held { behind }) if behind == digest);
                !waited_for_this && !outcome.is_some_and(DeletionOutcome::is_gone)
            })
            .map(|other| (*other).clone())
    }
}

/// For each of `stayed` (planned deletions of this step that did not happen): what belongs
/// to it and this run deleted in an earlier step (its signatures, attestations, referrers,
/// which go first) is put back, so that an image that stays keeps them.
async fn put_back<'a, P: Provider>(
    provider: &P,
    order: &Order<'a>,
    stayed: &[(&'a RepositoryName, &'a Digest)],
    outcomes: &mut BTreeMap<(RepositoryName, Digest), DeletionOutcome>,
) {
    for &(repository, digest) in stayed {
        for dependent in order.descendants(repository, digest) {
            let key = (repository.clone(), dependent.clone());
            if outcomes.get(&key) != Some(&DeletionOutcome::Deleted) {
                continue;
            }
            let outcome = match provider.undo_deletion(repository, dependent).await {
                Ok(()) => DeletionOutcome::Restored {
                    because: digest.clone(),
                },
                Err(error) => DeletionOutcome::Failed {
                    error: format!(
                        "deleted before {}, which stays; putting it back failed: {error} \
                         (`regsweep restore` with this run's journal puts it back)",
                        digest.short()
                    ),
                },
            };
            tracing::info!(repository = %repository, digest = %dependent, ?outcome, "put back");
            outcomes.insert(key, outcome);
        }
    }
}

/// Why deleting stops: the run's control (a signal, the time budget), a failure every further
/// request would repeat, a repository where the registry and the plan disagree.
struct Stops<'a> {
    control: &'a Control,
    /// A failure that reaches the whole run happened.
    halted: AtomicBool,
    /// That failure.
    fatal: Mutex<Option<String>>,
    /// The control's halt, once seen.
    halt: Mutex<Option<Halt>>,
    /// Repositories where deleting stopped, and why.
    repositories: Mutex<BTreeMap<RepositoryName, String>>,
}

impl Stops<'_> {
    /// Whether a deletion in `repository` must not be attempted now.
    async fn blocked(&self, repository: &RepositoryName) -> bool {
        if let Some(reason) = self.control.check().err().or_else(|| self.control.halted()) {
            self.halt.lock().await.get_or_insert(reason);
            return true;
        }
        self.halted.load(Ordering::SeqCst)
            || self.repositories.lock().await.contains_key(repository)
    }

    /// Records how far a failed deletion reaches.
    async fn failed(&self, repository: &RepositoryName, error: &crate::providers::DeleteError) {
        match error.reach {
            Reach::Run => {
                self.halted.store(true, Ordering::SeqCst);
                self.fatal
                    .lock()
                    .await
                    .get_or_insert_with(|| error.to_string());
            }
            Reach::Repository => {
                self.repositories
                    .lock()
                    .await
                    .entry(repository.clone())
                    .or_insert_with(|| error.to_string());
            }
            Reach::Manifest => {}
        }
    }
}

/// The one line that says why a run stopped deleting early: `time budget spent: 1,204 of
/// 9,880 deletions left; the next run goes on`.
pub fn halted_message(halt: &Halt, left: usize, planned: usize) -> String {
    let counts = format!(
        "{} of {} deletions left",
        thousands(left as u64),
        thousands(planned as u64)
    );
    match halt {
        Halt::Stopped => {
            format!("interrupted: deletions in flight finished, {counts}; the next run goes on")
        }
        Halt::OutOfTime { waiting_for: None } => {
            format!("time budget spent: {counts}; the next run goes on")
        }
        Halt::OutOfTime {
            waiting_for: Some(reason),
        } => format!(
            "time budget spent: {counts}; the next run goes on (the next step would wait for \
             {reason})"
        ),
    }
}

#[cfg(test)]
mod tests;
