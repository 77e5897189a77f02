//! harbor: Harbor through its REST API (`/api/v2.0`, on the registry's own origin). Harbor's
//! artifact list shows tagged artifacts and untagged ones no index lists, with their
//! accessories (signatures, SBOMs, any OCI 1.1 referrer) inside; the registry API (`/v2/`, the
//! same origin) gives the manifests, their children and configs, so the plan is the same
//! closure as everywhere. Deletes go by digest, parents before children and subjects before
//! their accessories, since Harbor deletes an index's untagged children and a subject's
//! accessories with it (a later 404 for those is done); a 412 means Harbor and the plan
//! disagree, and nothing more is deleted in that repository. Garbage collection is started
//! with `delete_untagged: false` (see docs/providers.md) and followed to its end.

pub mod client;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use crate::control::Control;
use crate::model::{
    Digest, GarbageCollectionAdvice, GarbageCollectionRun, Inventory, Repository, RepositoryName,
    Tag,
};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{
    Collected, CurrentState, DeleteError, Deletion, DiscoveryError, Provider, Reach,
};
use crate::registry::reader::{self, Reader};
use crate::registry::rest::ApiError;
use crate::registry::{Http, RegistryClient};
use client::{Artifact, ArtifactDeleted, GcJob, GcStarted, HarborApi};

/// How Harbor is used, from the options: its API is on the registry's own origin
/// (`/api/v2.0`), with the registry's credentials (a user or a robot account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborSettings {
    /// `HARBOR_PROJECT`: the projects to clean; empty: every project the credentials list.
    pub projects: Vec<String>,
    /// `REGSWEEP_GC`: start garbage collection after a real run that deleted something.
    pub gc: bool,
    /// `REGSWEEP_GC_TIMEOUT`: how long to follow it.
    pub gc_timeout: std::time::Duration,
    /// `REGSWEEP_GC_POLL`: how often to look at it.
    pub gc_poll: std::time::Duration,
}

/// What a project robot (or any account without the right) gets told about garbage collection.
pub const GC_HINT: &str = "the account may not start Harbor's garbage collection (a project \
robot never may): a Harbor system administrator runs it under Administration > Clean Up, or \
with a system robot account that has the `garbage-collection` permission: `curl -u \
'<admin>' -X POST <harbor>/api/v2.0/system/gc/schedule -H 'Content-Type: application/json' -d \
'{\"schedule\":{\"type\":\"Manual\"},\"parameters\":{\"delete_untagged\":false,\"dry_run\":false,\"workers\":1}}'`";

/// Why regsweep asks for `delete_untagged: false`, or what the opt-in means.
fn gc_type(sweep: UntaggedSweep) -> (bool, &'static str, &'static str) {
    match sweep {
        UntaggedSweep::Off => (
            false,
            "delete_untagged: false",
            "regsweep already deleted exactly the untagged artifacts that are safe to delete; \
             Harbor's untagged sweep deletes every artifact without a tag of its own",
        ),
        UntaggedSweep::Requested => (
            true,
            "delete_untagged: true",
            "asked for with REGSWEEP_GC_INCLUDE_UNTAGGED=true; the plan keeps no manifest \
             without a tag of its own",
        ),
        UntaggedSweep::Forced => (
            true,
            "delete_untagged: true",
            "forced with REGSWEEP_GC_INCLUDE_UNTAGGED=force: Harbor also deletes every \
             artifact without a tag of its own",
        ),
    }
}

/// A Harbor's projects.
#[derive(Debug)]
pub struct Harbor {
    api: HarborApi,
    client: RegistryClient,
    settings: HarborSettings,
    concurrency: usize,
    control: Control,
    /// What Harbor takes along when it deletes a manifest: child or accessory → its parent.
    parents: Mutex<HashMap<(RepositoryName, Digest), Digest>>,
    /// What this run deleted, to tell a 404 Harbor caused from one it did not.
    deleted: Mutex<HashSet<(RepositoryName, Digest)>>,
}

/// `<project>/<name>` → the project.
fn project_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

impl Harbor {
    /// The Harbor behind `client` (its registry URL and credentials), through `http`.
    pub fn new(
        http: Http,
        settings: &HarborSettings,
        client: RegistryClient,
        credentials: Option<&crate::registry::Credentials>,
        concurrency: usize,
    ) -> Harbor {
        let control = http.control().clone();
        Harbor {
            api: HarborApi::new(http, client.base(), credentials, concurrency),
            client,
            settings: settings.clone(),
            concurrency: concurrency.max(1),
            control,
            parents: Mutex::default(),
            deleted: Mutex::default(),
        }
    }

    async fn repository(
        &self,
        reader: &Reader<'_>,
        name: String,
    ) -> Result<Option<Repository>, DiscoveryError> {
        let Ok(repository_name) = name.parse::<RepositoryName>() else {
            tracing::warn!(name, "a repository name regsweep cannot use");
            return Ok(None);
        };
        let mut repository = Repository {
            name: repository_name.clone(),
            manifests: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let artifacts = match self.api.artifacts(project_of(&name), &name).await {
            Ok(Some(artifacts)) => artifacts,
            Ok(None) => return Ok(None),
            Err(error @ (ApiError::Refused { .. } | ApiError::Halted(_))) => {
                return Err(error.into())
            }
            Err(error) => {
                repository.problems.push(error.to_string());
                return Ok(Some(repository));
            }
        };
        let mut tags_of: HashMap<Digest, BTreeSet<Tag>> = HashMap::new();
        let mut pending = Vec::new();
        let mut pushed = HashMap::new();
        let mut parents = Vec::new();
        let mut accessory_of = HashMap::new();
        for artifact in &artifacts {
            let Some(digest) = listed_digest(&artifact.digest, &mut repository) else {
                continue;
            };
            if let Some(date) = artifact
                .push_time
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            {
                pushed.insert(digest.clone(), date.with_timezone(&Utc));
            }
            let tags = tags_of.entry(digest.clone()).or_default();
            tags.extend(artifact.tags.iter().flatten().map(|t| t.name.clone()));
            pending.push((digest.clone(), None));
            for accessory in artifact.accessories.iter().flatten() {
                if let Some(taken) = listed_digest(&accessory.digest, &mut repository) {
                    parents.push((taken.clone(), digest.clone()));
                    accessory_of.insert(taken.clone(), digest.clone());
                    tags_of.entry(taken.clone()).or_default();
                    pending.push((taken, None));
                }
            }
            for child in artifact.references.iter().flatten() {
                if let Some(taken) = listed_digest(&child.child_digest, &mut repository) {
                    parents.push((taken, digest.clone()));
                }
            }
        }
        pending.sort();
        pending.dedup_by(|a, b| a.0 == b.0);
        {
            let mut known = self.parents.lock().expect("the lock is never poisoned");
            for (taken, parent) in parents {
                known.insert((repository_name.clone(), taken), parent);
            }
        }
        reader
            .load(&mut repository, tags_of, pending, self.concurrency)
            .await;
        for manifest in &mut repository.manifests {
            manifest.pushed = pushed.get(&manifest.digest).copied().or(manifest.pushed);
            // Harbor shows an accessory (a cosign signature has no `subject` of its own, and
            // its tag is not listed) only inside its subject: that is the edge that keeps it
            // with the subject, and deletes it with it.
            if manifest.subject.is_none() {
                manifest.subject = accessory_of.get(&manifest.digest).cloned();
            }
        }
        Ok(Some(repository))
    }

    /// The projects to clean: those named, else every project the account lists.
    async fn projects(&self) -> Result<Vec<String>, DiscoveryError> {
        if !self.settings.projects.is_empty() {
            return Ok(self.settings.projects.clone());
        }
        Ok(self.api.projects().await?)
    }

    async fn follow_gc(&self, id: u64) -> Result<Option<GcJob>, ApiError> {
        let deadline = Instant::now() + self.settings.gc_timeout;
        let mut last = String::new();
        loop {
            if let Some(job) = self.api.gc(id).await? {
                if job.job_status != last {
                    eprintln!("regsweep: garbage collection: {}", job.job_status);
                    last = job.job_status.clone();
                }
                if job.is_done() {
                    return Ok(Some(job));
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.control
                .wait(self.settings.gc_poll, "Harbor's garbage collection to end")
                .await?;
        }
    }
}

/// A listed digest, or a problem of the repository when it is not one.
fn listed_digest(text: &str, repository: &mut Repository) -> Option<Digest> {
    match text.parse() {
        Ok(digest) => Some(digest),
        Err(_) => {
            repository
                .problems
                .push(format!("Harbor lists an invalid digest `{text}`"));
            None
        }
    }
}

impl Provider for Harbor {
    fn source(&self) -> String {
        if self.settings.projects.is_empty() {
            "Harbor API".to_string()
        } else {
            format!(
                "Harbor API (projects {})",
                self.settings.projects.join(", ")
            )
        }
    }

    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        let mut names = Vec::new();
        for project in self.projects().await? {
            let listed = self.api.repositories(&project).await?.ok_or_else(|| {
                DiscoveryError::Choice(format!(
                    "Harbor project `{project}` not found, or not visible to the account \
                     (check HARBOR_PROJECT and REGISTRY_AUTH)"
                ))
            })?;
            names.extend(listed);
        }
        names.sort();
        names.dedup();
        if !only.is_empty() {
            for name in only {
                if !names.iter().any(|n| n == name.as_str()) {
                    return Err(DiscoveryError::RepositoryNotFound {
                        name: name.clone(),
                        place: "the Harbor projects listed".into(),
                    });
                }
            }
            names.retain(|n| only.iter().any(|o| o.as_str() == n));
        }
        let reader = &Reader::new(&self.client, self.concurrency);
        let repositories =
            super::discover_each(names, "repositories", self.concurrency, progress, |name| {
                self.repository(reader, name)
            })
            .await?;
        Ok(Inventory { repositories })
    }

    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let name = repository.as_str();
        let artifacts: Vec<Artifact> = self
            .api
            .artifacts(project_of(name), name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("repository `{repository}` is gone"))?;
        let mut state = CurrentState::default();
        for artifact in artifacts {
            let Ok(digest) = artifact.digest.parse::<Digest>() else {
                continue;
            };
            let tags: Vec<Tag> = artifact
                .tags
                .into_iter()
                .flatten()
                .map(|t| t.name)
                .collect();
            state.record(digest, tags, known);
        }
        Ok(state)
    }

    async fn manifest_children(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<Digest>, String> {
        reader::manifest_children(&self.client, repository, digest).await
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deletion, DeleteError> {
        let name = repository.as_str();
        let deleted = self
            .api
            .delete(project_of(name), name, digest.as_str())
            .await
            .map_err(|error| match error.status() {
                // The plan and Harbor disagree (a parent Harbor knows and the plan does not):
                // nothing more is deleted in this repository.
                Some(StatusCode::PRECONDITION_FAILED) => DeleteError::new(
                    format!("Harbor refused to delete `{digest}`: {error}"),
                    Reach::Repository,
                ),
                _ => error.into(),
            })?;
        let key = (repository.clone(), digest.clone());
        match deleted {
            ArtifactDeleted::Now => {
                self.deleted
                    .lock()
                    .expect("the lock is never poisoned")
                    .insert(key);
                Ok(Deletion::Deleted)
            }
            ArtifactDeleted::Gone => {
                let parent = self
                    .parents
                    .lock()
                    .expect("the lock is never poisoned")
                    .get(&key)
                    .cloned();
                let taken_along = parent.filter(|p| {
                    self.deleted
                        .lock()
                        .expect("the lock is never poisoned")
                        .contains(&(repository.clone(), p.clone()))
                });
                Ok(match taken_along {
                    Some(parent) => Deletion::DeletedWith { parent },
                    None => Deletion::AlreadyGone,
                })
            }
        }
    }

    fn deletes_subjects_first(&self) -> bool {
        true
    }

    fn takes_along(&self) -> bool {
        true
    }

    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<crate::providers::Untagging, DeleteError> {
        let name = repository.as_str();
        let now = reader::resolve_tag(&self.client, repository, tag).await?;
        crate::providers::untag_by_name(now, digest, async {
            Ok(self
                .api
                .delete_tag(project_of(name), name, digest.as_str(), tag)
                .await?)
        })
        .await
    }

    fn gc_advice(&self, sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        let (untagged, kind, why) = gc_type(sweep);
        Some(GarbageCollectionAdvice {
            command: format!(
                "Harbor: Administration > Clean Up > GC Now (Allow garbage collection on \
                 untagged artifacts: {})",
                if untagged { "on" } else { "off" }
            ),
            warnings: vec![
                format!("`{kind}`: {why}"),
                "Harbor does not collect blobs changed in the last 2 hours (its time window): a \
                 collection right after the run may free less"
                    .to_string(),
            ],
        })
    }

    async fn collect_garbage(&self, sweep: UntaggedSweep) -> Collected {
        if !self.settings.gc {
            return Collected::NotStarted;
        }
        let (untagged, kind, why) = gc_type(sweep);
        let deadline = Instant::now() + self.settings.gc_timeout;
        let id = loop {
            match self.api.start_gc(untagged).await {
                Ok(GcStarted::Started(id)) => break id,
                Ok(GcStarted::Forbidden) => {
                    return Collected::NotAllowed {
                        hint: GC_HINT.to_string(),
                    }
                }
                Ok(GcStarted::Busy) if Instant::now() < deadline => {
                    eprintln!("regsweep: waiting for the garbage collection already running");
                    if let Err(halt) = self
                        .control
                        .wait(
                            self.settings.gc_poll,
                            "the garbage collection already running",
                        )
                        .await
                    {
                        return Collected::StillRunning {
                            after: format!("the run ended ({halt})"),
                        };
                    }
                }
                Ok(GcStarted::Busy) => {
                    return Collected::StillRunning {
                        after: "another garbage collection (REGSWEEP_GC_TIMEOUT)".into(),
                    }
                }
                Err(error) => return Collected::Failed(error.to_string()),
            }
        };
        eprintln!("regsweep: garbage collection {id} ({kind}) started");
        match self.follow_gc(id).await {
            Ok(Some(job)) => Collected::Ran(GarbageCollectionRun {
                id: id.to_string(),
                status: match job.job_status.to_ascii_lowercase().as_str() {
                    "success" => "succeeded".into(),
                    "error" => "failed".into(),
                    "stopped" => "cancelled".into(),
                    other => other.to_string(),
                },
                blobs_deleted: job.blobs_deleted(),
                freed_bytes: job.freed_bytes(),
                kind: kind.to_string(),
                why: why.to_string(),
            }),
            Ok(None) => Collected::StillRunning {
                after: format!(
                    "{} (REGSWEEP_GC_TIMEOUT)",
                    humantime::format_duration(self.settings.gc_timeout)
                ),
            },
            Err(ApiError::Halted(halt)) => Collected::StillRunning {
                after: format!("the run ended ({halt})"),
            },
            Err(error) => Collected::Failed(error.to_string()),
        }
    }
}
