//! providers: one per kind of registry, each behind the `Provider` trait: how regsweep sees a
//! registry (discover), re-reads it just before deleting (current state), deletes from it, and
//! frees its space (garbage collection, or the advice to run it). Each registry's quirks (paths,
//! paging formats, status codes, limits) stay inside its provider; the planner and the report
//! know nothing of them.
//!
//! The rules every provider follows are in docs/providers.md. The first of them: regsweep
//! decides which manifests go and deletes them by digest; a registry's garbage collection, where
//! a provider starts one, is only ever asked to collect unreferenced blobs (DigitalOcean:
//! `unreferenced blobs only`; Harbor: `delete_untagged: false`). A registry's "untagged
//! manifests" sweep deletes every manifest without a tag of its own, which on
//! distribution-based registries includes the children of kept multi-arch images and the
//! referrers of kept images (distribution/distribution#3178). The opt-in
//! (`REGSWEEP_GC_INCLUDE_UNTAGGED`) is checked against the plan by `plan::untagged` before
//! anything is deleted.

pub mod digitalocean;
pub mod distribution;
pub mod ghcr;
pub mod gitlab;
pub mod harbor;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;

use crate::control::Halt;
use crate::model::{
    Digest, GarbageCollectionAdvice, GarbageCollectionRun, Inventory, Repository, RepositoryName,
    Tag,
};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::distribution::layout::LayoutError;
use crate::registry::rest::ApiError;
pub use crate::registry::untag::Untagging;
use crate::registry::RegistryError;

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

impl CurrentState {
    /// Records a manifest the registry lists now with its `tags`: the tags join the state,
    /// and the manifest is new unless `known` holds it.
    pub fn record(
        &mut self,
        digest: Digest,
        tags: impl IntoIterator<Item = Tag>,
        known: &HashSet<Digest>,
    ) {
        let mut tags = tags.into_iter().peekable();
        if tags.peek().is_some() {
            self.tags.entry(digest.clone()).or_default().extend(tags);
        }
        if !known.contains(&digest) {
            self.new_manifests.push(digest);
        }
    }
}

/// What a deletion achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted now.
    Deleted,
    /// It was already gone (another run, a retry of ours that had succeeded).
    AlreadyGone,
    /// The registry deleted it together with `parent`, which this run deleted (Harbor takes
    /// an index's untagged children and a subject's accessories along).
    DeletedWith {
        /// The manifest whose deletion took it along.
        parent: Digest,
    },
    /// The registry keeps it by a rule of its own (GitHub's last tagged version, a GitLab
    /// protected tag): reported as kept, with the reason, and not a failure.
    KeptByRegistry {
        /// The registry's reason.
        reason: String,
    },
    /// The API deletes tags only (GitLab): these tags were deleted, and the registry's own
    /// garbage collection removes the manifest they left untagged.
    Untagged {
        /// The tags deleted (empty: it had none, and is collected once nothing lists it).
        tags: Vec<Tag>,
    },
    /// The API deletes tags only (GitLab), and a tag of the manifest was pushed onto another
    /// manifest during the run: that tag is the other manifest's now and was left alone.
    TagMoved {
        /// The tag that moved.
        tag: Tag,
        /// The manifest it points at now.
        now: Digest,
        /// The manifest's other tags, deleted.
        deleted: Vec<Tag>,
    },
}

/// What a registry's tag API did with one tag (DigitalOcean, GitLab, Harbor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagGone {
    /// Deleted now.
    Now,
    /// It was gone already (404).
    Already,
    /// Refused by a rule of the registry's (a GitLab protected tag) or the account's rights:
    /// the registry's words.
    Refused(String),
}

/// Removes a tag through a registry's tag API: `now` is what the tag names just before (read
/// by the caller); a tag gone or moved is left, else `delete` runs.
pub async fn untag_by_name(
    now: Option<Digest>,
    digest: &Digest,
    delete: impl Future<Output = Result<TagGone, DeleteError>>,
) -> Result<Untagging, DeleteError> {
    match now {
        None => Ok(Untagging::Gone),
        Some(now) if &now != digest => Ok(Untagging::Moved { now }),
        Some(_) => Ok(match delete.await? {
            TagGone::Now => Untagging::Untagged,
            TagGone::Already => Untagging::Gone,
            TagGone::Refused(reason) => Untagging::Impossible { reason },
        }),
    }
}

/// How far a failed deletion reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// This manifest only: the next ones are tried.
    Manifest,
    /// The repository: the plan and the registry disagree there; nothing more is deleted in it.
    Repository,
    /// The run: every further request would fail the same way (refused credentials, deletion
    /// disabled), or the run was stopped.
    Run,
}

/// A deletion that failed, and how far the failure reaches.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeleteError {
    /// What happened, for the report.
    pub message: String,
    /// How far it reaches.
    pub reach: Reach,
    /// The run's control stopped it before it was sent (not a failure: not attempted).
    pub halt: Option<Halt>,
}

impl DeleteError {
    /// A failure of this `reach`.
    pub fn new(message: impl Into<String>, reach: Reach) -> DeleteError {
        DeleteError {
            message: message.into(),
            reach,
            halt: None,
        }
    }
}

impl DeleteError {
    /// A failure that every further request would repeat reaches the run; one the control
    /// caused (stop, time budget) is not a failure at all.
    fn from_failure(message: String, fatal: bool, halt: Option<Halt>) -> DeleteError {
        let reach = if fatal || halt.is_some() {
            Reach::Run
        } else {
            Reach::Manifest
        };
        DeleteError {
            message,
            reach,
            halt,
        }
    }
}

impl From<RegistryError> for DeleteError {
    fn from(error: RegistryError) -> Self {
        let halt = match &error {
            RegistryError::Halted(halt) => Some(halt.clone()),
            _ => None,
        };
        DeleteError::from_failure(error.to_string(), error.is_fatal(), halt)
    }
}

impl From<ApiError> for DeleteError {
    fn from(error: ApiError) -> Self {
        let halt = match &error {
            ApiError::Halted(halt) => Some(halt.clone()),
            _ => None,
        };
        DeleteError::from_failure(error.to_string(), error.is_fatal(), halt)
    }
}

/// Why discovery could not start or finish (a repository that cannot be read is not this:
/// it becomes a problem of that repository, and nothing in it is deleted).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The registry API failed in a way every further request would repeat.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A provider's REST API failed in a way every further request would repeat.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The storage cannot be used.
    #[error(transparent)]
    Storage(#[from] LayoutError),
    /// The registry's catalog cannot be listed.
    #[error(
        "cannot list the registry's repositories: {0}; name them in REGSWEEP_REPOSITORIES \
         (comma-separated) or REPO_FILTER instead"
    )]
    Catalog(RegistryError),
    /// A repository named in the options does not exist.
    #[error("repository `{name}` not found in {place}")]
    RepositoryNotFound {
        /// The repository asked for.
        name: RepositoryName,
        /// Where it was looked for.
        place: String,
    },
    /// What to clean cannot be decided (several registries, no project).
    #[error("{0}")]
    Choice(String),
}

impl DiscoveryError {
    /// The run was stopped while discovering.
    pub fn halt(&self) -> Option<&Halt> {
        match self {
            DiscoveryError::Registry(RegistryError::Halted(halt))
            | DiscoveryError::Api(ApiError::Halted(halt)) => Some(halt),
            _ => None,
        }
    }
}

/// What became of the registry's garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// This provider starts none (the report shows its advice instead).
    NotStarted,
    /// It ran to its end (well or not: see its status).
    Ran(GarbageCollectionRun),
    /// Still running when regsweep stopped following it.
    StillRunning {
        /// What regsweep waited, for the message.
        after: String,
    },
    /// It could not be started (a right is missing): what to do instead. Not a failure.
    NotAllowed {
        /// The exact permission or command needed.
        hint: String,
    },
    /// Following it failed.
    Failed(String),
}

/// Reads `items` (repositories, packages) side by side, at most `concurrency` at once, under
/// one progress phase counting `unit`s: the repositories found, in the order of `items`. The
/// first error ends discovery.
pub async fn discover_each<T, F, Fut>(
    items: Vec<T>,
    unit: &'static str,
    concurrency: usize,
    progress: &Progress,
    read: F,
) -> Result<Vec<Repository>, DiscoveryError>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<Option<Repository>, DiscoveryError>>,
{
    use futures::stream::{self, StreamExt};
    let discovering = progress.phase("discover", unit, items.len() as u64);
    let phase = &discovering;
    let read = &read;
    let results: Vec<Result<Option<Repository>, DiscoveryError>> = stream::iter(items)
        .map(|item| async move {
            let repository = read(item).await;
            phase.inc(1);
            repository
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    discovering.finish();
    let mut repositories = Vec::new();
    for result in results {
        repositories.extend(result?);
    }
    Ok(repositories)
}

/// One kind of registry, as the pipeline uses it.
pub trait Provider: Send + Sync {
    /// Where manifests are discovered, for the report (`/srv/registry`, `DigitalOcean API
    /// (registry \`acme\`)`).
    fn source(&self) -> String;

    /// Every manifest of the repositories in `only` (all when empty), with tags, children,
    /// subjects and dates. What cannot be read becomes a problem of its repository.
    fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> impl Future<Output = Result<Inventory, DiscoveryError>> + Send;

    /// The repository's tags right now and the manifests it holds that are not in `known`,
    /// from one reading. An absent repository is an error (deletes there stop), not empty.
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
    ) -> impl Future<Output = Result<Deletion, DeleteError>> + Send;

    /// Whether deletions go parents and subjects first instead of the planner's
    /// referrers-first order: the registry takes children and accessories along (Harbor), or
    /// may keep a manifest by a rule of its own after its signature is gone (GitLab's
    /// protected tags), so a referrer or attachment must wait until what it belongs to went.
    fn deletes_subjects_first(&self) -> bool {
        false
    }

    /// Whether the registry deletes an index's untagged children and a subject's
    /// accessories together with it (Harbor): the plan then keeps what would take a kept
    /// manifest along.
    fn takes_along(&self) -> bool {
        false
    }

    /// Removes `tag` from manifest `digest`, which stays: read again just before (a tag that
    /// moved is left), then through the registry's tag API where it has one, else moved onto a
    /// throw-away manifest deleted at once. The default: this registry cannot.
    fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> impl Future<Output = Result<Untagging, DeleteError>> + Send {
        let _ = (repository, digest, tag);
        async {
            Ok(Untagging::Impossible {
                reason: "this registry gives no way to remove a tag alone".into(),
            })
        }
    }

    /// Gets ready for the first deletion (GHCR opens its undo journal), so that what would
    /// stop the run stops it before anything is deleted.
    fn prepare_to_delete(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether [`Provider::undo_deletion`] can put back what this run deleted (GitHub keeps
    /// deleted package versions for 30 days). In the referrers-first order a signature goes
    /// before its image; when the image then stays (the registry keeps it by a rule of its
    /// own, or a push raced), the signature is put back at once.
    fn undoes_deletions(&self) -> bool {
        false
    }

    /// Puts back a manifest this run deleted (see [`Provider::undoes_deletions`]).
    fn undo_deletion(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = (repository, digest);
        async { Err("this registry cannot put back what was deleted".to_string()) }
    }

    /// What the report must say about what this provider cannot see or do.
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }

    /// How to free the space after deletions, as the report shows it.
    fn gc_advice(&self, sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice>;

    /// Starts the registry's garbage collection of unreferenced blobs (and untagged manifests
    /// only when `sweep` says so), follows it to its end, and says how it went. Called after
    /// a real run that deleted something.
    fn collect_garbage(&self, sweep: UntaggedSweep) -> impl Future<Output = Collected> + Send {
        let _ = sweep;
        async { Collected::NotStarted }
    }
}
