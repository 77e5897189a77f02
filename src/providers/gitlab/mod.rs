//! gitlab: a GitLab project's container registry through the GitLab REST API (v4): its
//! repositories and their tags (each tag's details give its digest), every page; manifest
//! contents (children, configs, `subject`) read from the registry itself with the job's
//! registry login, so the plan is the same closure as everywhere. GitLab's API lists and
//! deletes tags only: regsweep deletes the tags of what the plan deletes, and GitLab's
//! registry collects the manifests left untagged (the report says which). A protected tag is
//! kept, with GitLab's reason. The registry's catalog needs admin rights, so it is not used.

pub mod client;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use url::Url;

use crate::model::{Digest, GarbageCollectionAdvice, Inventory, Repository, RepositoryName, Tag};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{
    CurrentState, CurrentTags, DeleteError, Deletion, DiscoveryError, Provider,
};
use crate::registry::reader::{self, Reader};
use crate::registry::rest::ApiError;
use crate::registry::{Http, RegistryClient};
use crate::secret::SecretStringEq;
use client::{GitlabApi, GitlabRepository, TagDeleted};

/// What the report says about GitLab runs.
pub const NOTICE: &str = "GitLab's API lists and deletes tags only: regsweep deleted the tags \
of the manifests it planned to delete (marked untagged), and GitLab's registry removes \
manifests left untagged by its own garbage collection (on GitLab.com about a day later; a \
self-managed registry needs its metadata database or an offline garbage collection). Manifests \
that were untagged before this run are invisible to the API";

/// How a GitLab project's registry is used, from the options. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSettings {
    /// `CI_API_V4_URL` (`https://gitlab.com/api/v4`).
    pub api_url: Url,
    /// `CI_PROJECT_ID`, or a project path (`group/project`).
    pub project: String,
    /// The API token and how it is sent.
    pub token: GitlabToken,
}

/// A GitLab API token and the header it goes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitlabToken {
    /// `GITLAB_TOKEN` (personal, project or group token): `PRIVATE-TOKEN`.
    Private(SecretStringEq),
    /// `CI_JOB_TOKEN`: `JOB-TOKEN`.
    Job(SecretStringEq),
}

/// A GitLab project's registry.
#[derive(Debug)]
pub struct Gitlab {
    api: GitlabApi,
    project: String,
    client: RegistryClient,
    concurrency: usize,
    /// Per repository: GitLab's id for it, and each manifest's tags at discovery.
    known: Mutex<HashMap<RepositoryName, Discovered>>,
}

/// A repository as discovery found it: GitLab's id for it, and each manifest's tags.
type Discovered = (u64, HashMap<Digest, BTreeSet<Tag>>);

/// What became of one tag asked to go.
enum Removal {
    /// Deleted (or gone by the time of the DELETE).
    Deleted,
    /// Gone before it was asked.
    Gone,
    /// Names another manifest now: left.
    Moved(Digest),
    /// Protected: GitLab's words.
    Protected(String),
}

/// A tag as GitLab details it: its name, its manifest, when the image was built.
type TagNow = (Tag, Digest, Option<DateTime<Utc>>);

impl Gitlab {
    /// The project `settings` names, through the API at `settings.api_url`; manifests read
    /// through `client` (the project's registry).
    pub fn new(
        http: Http,
        settings: &GitlabSettings,
        client: RegistryClient,
        concurrency: usize,
    ) -> Gitlab {
        Gitlab {
            api: GitlabApi::new(
                http,
                settings.api_url.clone(),
                &settings.project,
                &settings.token,
                concurrency,
            ),
            project: settings.project.clone(),
            client,
            concurrency: concurrency.max(1),
            known: Mutex::default(),
        }
    }

    /// The tags of repository `id` now, with the digest each points at.
    async fn tags_now(&self, id: u64) -> Result<Option<Vec<TagNow>>, ApiError> {
        let Some(names) = self.api.tags(id).await? else {
            return Ok(None);
        };
        let details: Vec<Result<Option<client::TagDetails>, ApiError>> = stream::iter(names)
            .map(|tag| async move { self.api.tag(id, &tag).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut tags = Vec::new();
        for detail in details {
            // A tag deleted since the listing is no tag any more.
            let Some(detail) = detail? else { continue };
            let Some(digest) = detail.digest.as_deref().and_then(|d| d.parse().ok()) else {
                continue;
            };
            // Without GitLab's metadata database `created_at` is the image config's `created`:
            // the epoch or 1980 for reproducible builds, which is no date.
            let created = crate::model::plausible_date(
                detail
                    .created_at
                    .as_deref()
                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                    .map(|d| d.with_timezone(&Utc)),
            );
            tags.push((detail.name, digest, created));
        }
        Ok(Some(tags))
    }

    async fn repository(
        &self,
        reader: &Reader<'_>,
        listed: GitlabRepository,
    ) -> Result<Option<Repository>, DiscoveryError> {
        let Ok(name) = listed.path.parse::<RepositoryName>() else {
            tracing::warn!(path = listed.path, "a repository path regsweep cannot use");
            return Ok(None);
        };
        let mut repository = Repository {
            name: name.clone(),
            manifests: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let tags = match self.tags_now(listed.id).await {
            Ok(Some(tags)) => tags,
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
        let mut created = HashMap::new();
        for (tag, digest, date) in tags {
            if let Some(date) = date {
                created.insert(digest.clone(), date);
            }
            let entry = tags_of.entry(digest.clone()).or_default();
            if entry.is_empty() {
                pending.push((digest, None));
            }
            entry.insert(tag);
        }
        self.known
            .lock()
            .expect("the lock is never poisoned")
            .insert(name, (listed.id, tags_of.clone()));
        reader
            .load(&mut repository, tags_of, pending, self.concurrency)
            .await;
        // The API lists tags only: the untagged image a signature or attestation
        // (`sha256-<hex>.sig`) is attached to is not listed. Ask the registry for it: when it
        // is there, the plan sees it (untagged, and deleted with its signature unless
        // something keeps it); when it is not, the signature is kept and reported, as before.
        let targets: Vec<Digest> = repository
            .manifests
            .iter()
            .flat_map(|m| m.tags.iter())
            .filter_map(|tag| crate::model::attachment_target(tag))
            .collect();
        reader
            .load_unlisted(&mut repository, targets, self.concurrency)
            .await;
        for manifest in &mut repository.manifests {
            // GitLab's `created_at` is the image config's `created`: the pushed date where the
            // config has none.
            if manifest.pushed.is_none() {
                manifest.pushed = created.get(&manifest.digest).copied();
            }
        }
        Ok(Some(repository))
    }

    /// Deletes tag `tag` of repository `id` while it still names `digest`: GitLab deletes a
    /// tag by name, and CI may have pushed it onto a new image since the plan; deleting it
    /// then would untag that image, which GitLab's garbage collection then removes.
    async fn remove_tag(
        &self,
        id: u64,
        digest: &Digest,
        tag: &str,
    ) -> Result<Removal, DeleteError> {
        let now = self
            .api
            .tag(id, tag)
            .await?
            .and_then(|detail| detail.digest)
            .and_then(|d| d.parse::<Digest>().ok());
        match now {
            None => return Ok(Removal::Gone),
            Some(now) if &now != digest => return Ok(Removal::Moved(now)),
            Some(_) => {}
        }
        Ok(match self.api.delete_tag(id, tag).await? {
            TagDeleted::Now | TagDeleted::Already => Removal::Deleted,
            TagDeleted::Protected(message) => Removal::Protected(message),
        })
    }

    fn id_of(&self, repository: &RepositoryName) -> Option<u64> {
        self.known
            .lock()
            .expect("the lock is never poisoned")
            .get(repository)
            .map(|(id, _)| *id)
    }
}

impl Provider for Gitlab {
    fn source(&self) -> String {
        format!("GitLab API (project `{}`)", self.project)
    }

    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        let mut listed = self.api.repositories().await?.ok_or_else(|| {
            DiscoveryError::Choice(format!(
                "GitLab project `{}` not found, or its registry not visible to the token (check \
                 CI_PROJECT_ID and the token's access)",
                self.project
            ))
        })?;
        if !only.is_empty() {
            for name in only {
                if !listed.iter().any(|r| r.path == name.as_str()) {
                    return Err(DiscoveryError::RepositoryNotFound {
                        name: name.clone(),
                        place: format!("the registry of GitLab project `{}`", self.project),
                    });
                }
            }
            listed.retain(|r| only.iter().any(|n| n.as_str() == r.path));
        }
        let reader = &Reader::new(&self.client, self.concurrency);
        let mut repositories = super::discover_each(
            listed,
            "repositories",
            self.concurrency,
            progress,
            |listed| self.repository(reader, listed),
        )
        .await?;
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Inventory { repositories })
    }

    /// New manifests are the tagged ones not in `known`: the API shows nothing untagged.
    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let id = self
            .id_of(repository)
            .ok_or_else(|| format!("repository `{repository}` was not discovered"))?;
        let tags = self
            .tags_now(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("repository `{repository}` is gone"))?;
        let mut current = CurrentTags::new();
        for (tag, digest, _) in tags {
            current.entry(digest).or_default().insert(tag);
        }
        let new_manifests = current
            .keys()
            .filter(|d| !known.contains(*d))
            .cloned()
            .collect();
        Ok(CurrentState {
            tags: current,
            new_manifests,
        })
    }

    async fn manifest_children(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<Digest>, String> {
        reader::manifest_children(&self.client, repository, digest).await
    }

    /// Deletes the manifest's tags, one by one (GitLab deletes only the tag named, never the
    /// manifest's other tags); the registry collects the manifest once it is untagged.
    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deletion, DeleteError> {
        let (id, tags) = {
            let known = self.known.lock().expect("the lock is never poisoned");
            let (id, tags_of) = known.get(repository).ok_or_else(|| {
                DeleteError::new(
                    format!("repository `{repository}` was not discovered"),
                    crate::providers::Reach::Repository,
                )
            })?;
            (*id, tags_of.get(digest).cloned().unwrap_or_default())
        };
        let mut deleted = Vec::new();
        let mut protected = Vec::new();
        let mut moved = Vec::new();
        for tag in tags {
            match self.remove_tag(id, digest, &tag).await? {
                Removal::Deleted => deleted.push(tag),
                Removal::Gone => {}
                Removal::Moved(now) => moved.push((tag, now)),
                Removal::Protected(message) => protected.push((tag, message)),
            }
        }
        if let Some((tag, message)) = protected.first() {
            let rest = if deleted.is_empty() {
                String::new()
            } else {
                format!("; tag `{}` deleted", deleted.join("`, `"))
            };
            return Ok(Deletion::KeptByRegistry {
                reason: format!("tag `{tag}` is protected ({message}){rest}"),
            });
        }
        if let Some((tag, now)) = moved.into_iter().next() {
            return Ok(Deletion::TagMoved { tag, now, deleted });
        }
        Ok(Deletion::Untagged { tags: deleted })
    }

    /// A protected tag keeps its manifest after its signature's tag would be gone: the
    /// signature waits for its image (issue 25, defect 4). A signature left by a run that
    /// stopped between the two is deleted by the next (its untagged target is found in the
    /// registry).
    fn deletes_subjects_first(&self) -> bool {
        true
    }

    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<crate::providers::Untagging, DeleteError> {
        use crate::providers::Untagging;
        let id = self.id_of(repository).ok_or_else(|| {
            DeleteError::new(
                format!("repository `{repository}` was not discovered"),
                crate::providers::Reach::Repository,
            )
        })?;
        Ok(match self.remove_tag(id, digest, tag).await? {
            Removal::Deleted => Untagging::Untagged,
            Removal::Gone => Untagging::Gone,
            Removal::Moved(now) => Untagging::Moved { now },
            Removal::Protected(message) => Untagging::Impossible {
                reason: format!("the tag is protected ({message})"),
            },
        })
    }

    fn notices(&self) -> Vec<String> {
        vec![NOTICE.to_string()]
    }

    fn gc_advice(&self, _sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        None
    }
}
