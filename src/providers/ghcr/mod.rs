//! ghcr: GitHub Container Registry through the GitHub Packages REST API. Every manifest is a
//! package version (`name` is its digest, `metadata.container.tags` its tags, `id` what DELETE
//! takes), untagged index children and attestations included, so the inventory is complete.
//! Manifest contents (children, configs, `subject`) are read from ghcr.io itself; GHCR has no
//! referrers API, so `subject` and `sha256-*` tags give the attachments, and the same closure
//! keeps every kept image whole. Deletion is `DELETE …/versions/{id}` (204), never the
//! registry's own DELETE (ghcr.io answers 405); GitHub's rules (the last tagged version of a
//! package) keep what they keep, reported as such.

pub mod client;
pub mod journal;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use url::Url;

use crate::model::{Digest, GarbageCollectionAdvice, Inventory, Repository, RepositoryName, Tag};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{CurrentState, DeleteError, Deletion, DiscoveryError, Provider, Reach};
use crate::registry::reader::{self, Reader};
use crate::registry::rest::ApiError;
use crate::registry::{Http, RegistryClient};
use crate::secret::SecretStringEq;
use client::{GhcrApi, Owner, Version, VersionDeleted};

/// The GitHub Container Registry's host.
pub const GHCR_HOST: &str = "ghcr.io";

/// How GHCR is used, from the options. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhcrSettings {
    /// `GHCR_OWNER`, else `GITHUB_REPOSITORY_OWNER`: the user or organization.
    pub owner: String,
    /// `GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: Url,
    /// `GITHUB_TOKEN`.
    pub token: SecretStringEq,
    /// `REGSWEEP_JOURNAL`: where each deleted version is recorded as it goes.
    pub journal: std::path::PathBuf,
}

/// What the report says about GHCR runs.
pub const NOTICE: &str = "GitHub frees the space of deleted package versions itself; a deleted \
version can be restored for 30 days: `regsweep restore --from <this run's journal \
(REGSWEEP_JOURNAL) or JSON report>`";

/// A GitHub owner's container packages.
#[derive(Debug)]
pub struct Ghcr {
    api: GhcrApi,
    owner: Owner,
    client: RegistryClient,
    concurrency: usize,
    /// The version id of each manifest, per repository, from discovery.
    ids: Mutex<HashMap<RepositoryName, HashMap<Digest, u64>>>,
    /// The undo record, written as versions are deleted.
    journal: journal::Journal,
    /// Moves tags onto throw-away manifests (ghcr.io deletes no tag by name).
    untagger: crate::registry::untag::Untagger,
}

/// When a version was pushed: `updated_at`, else `created_at`.
fn pushed(version: &Version) -> Option<DateTime<Utc>> {
    version
        .updated_at
        .as_deref()
        .or(version.created_at.as_deref())
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc))
}

impl Ghcr {
    /// Opens `settings.owner` (organization or user) through the API, reading manifests
    /// through `client` (ghcr.io).
    pub async fn open(
        http: Http,
        settings: &GhcrSettings,
        client: RegistryClient,
        concurrency: usize,
    ) -> Result<Ghcr, DiscoveryError> {
        let api = GhcrApi::new(
            http,
            settings.api_url.clone(),
            &settings.token.0,
            concurrency,
        );
        let owner = api.owner(&settings.owner).await?.ok_or_else(|| {
            DiscoveryError::Choice(format!(
                "GitHub account `{}` not found (check GHCR_OWNER)",
                settings.owner
            ))
        })?;
        Ok(Ghcr {
            api,
            owner,
            client,
            concurrency: concurrency.max(1),
            ids: Mutex::default(),
            untagger: Default::default(),
            journal: journal::Journal::new(
                settings.journal.clone(),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        })
    }

    /// The API client (its pacer's counts, for the benchmark).
    pub fn api(&self) -> &GhcrApi {
        &self.api
    }

    /// The owner, as GitHub spells it and whether organization or user.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The registry repository of `package`: `<owner>/<package>`, lowercase as ghcr.io
    /// names are.
    pub fn repository_of(&self, package: &str) -> Option<RepositoryName> {
        format!("{}/{}", self.owner.login, package)
            .to_ascii_lowercase()
            .parse()
            .ok()
    }

    /// The package of a registry repository (`<owner>/<package>`), or of a bare name.
    pub fn package_of(&self, repository: &str) -> String {
        let prefix = format!("{}/", self.owner.login.to_ascii_lowercase());
        repository
            .strip_prefix(&prefix)
            .unwrap_or(repository)
            .to_string()
    }

    async fn repository(
        &self,
        reader: &Reader<'_>,
        package: String,
        named: bool,
    ) -> Result<Option<Repository>, DiscoveryError> {
        let Some(name) = self.repository_of(&package) else {
            tracing::warn!(
                package,
                "a package name regsweep cannot use as a repository"
            );
            return Ok(None);
        };
        let mut repository = Repository {
            name: name.clone(),
            manifests: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let versions = match self.api.versions(&self.owner, &package).await {
            Ok(Some(versions)) => versions,
            Ok(None) if named => {
                return Err(DiscoveryError::RepositoryNotFound {
                    name,
                    place: format!("the container packages of `{}`", self.owner.login),
                })
            }
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
        let mut ids = HashMap::new();
        let mut dates = HashMap::new();
        for version in &versions {
            let Ok(digest) = version.name.parse::<Digest>() else {
                repository.problems.push(format!(
                    "version {} is named `{}`, not a digest",
                    version.id, version.name
                ));
                continue;
            };
            ids.insert(digest.clone(), version.id);
            if let Some(date) = pushed(version) {
                dates.insert(digest.clone(), date);
            }
            tags_of
                .entry(digest.clone())
                .or_default()
                .extend(version.tags());
            pending.push((digest, None));
        }
        reader
            .load(&mut repository, tags_of, pending, self.concurrency)
            .await;
        for manifest in &mut repository.manifests {
            manifest.pushed = dates.get(&manifest.digest).copied();
            manifest.provider_id = ids.get(&manifest.digest).map(u64::to_string);
        }
        self.ids
            .lock()
            .expect("the id lock is never poisoned")
            .insert(name, ids);
        Ok(Some(repository))
    }
}

/// One version a run deleted, as its JSON report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedVersion {
    /// The registry repository (`<owner>/<package>`).
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// The package version id.
    pub id: u64,
}

/// The versions a run deleted, from its JSON report: manifests with outcome `deleted` and a
/// provider id. Errors say what is wrong with the file.
pub fn deleted_versions(report: &serde_json::Value) -> Result<Vec<DeletedVersion>, String> {
    let repositories = report["repositories"]
        .as_array()
        .ok_or("it is not a regsweep JSON report (no `repositories`)")?;
    let mut found = Vec::new();
    for repository in repositories {
        let name = repository["name"].as_str().unwrap_or_default();
        for manifest in repository["manifests"].as_array().into_iter().flatten() {
            if manifest["outcome"]["outcome"].as_str() != Some("deleted") {
                continue;
            }
            let digest = manifest["digest"].as_str().unwrap_or_default();
            let id = manifest["provider_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| {
                    format!(
                        "`{name}@{digest}` has no package version id: the report is not from \
                         a GHCR run"
                    )
                })?;
            // Restored in the reverse of the deletion order: images and artifacts first, then
            // indexes (an index is refused while its children are missing), inner ones first.
            let rank = match (manifest["kind"].as_str(), manifest["reason"].as_str()) {
                (Some("index"), Some("child_of_deleted_index")) => 1,
                (Some("index"), _) => 2,
                _ => 0,
            };
            found.push((
                rank,
                DeletedVersion {
                    repository: name.to_string(),
                    digest: digest.to_string(),
                    id,
                },
            ));
        }
    }
    found.sort_by_key(|(rank, _)| *rank);
    Ok(found.into_iter().map(|(_, version)| version).collect())
}

impl Ghcr {
    /// The package version id of `digest`, from discovery.
    fn version_id(&self, repository: &RepositoryName, digest: &Digest) -> Result<u64, DeleteError> {
        self.ids
            .lock()
            .expect("the id lock is never poisoned")
            .get(repository)
            .and_then(|ids| ids.get(digest))
            .copied()
            .ok_or_else(|| {
                DeleteError::new(
                    format!("no package version is known for `{digest}`"),
                    Reach::Manifest,
                )
            })
    }

    /// Restores `version` (POST `…/versions/{id}/restore`).
    pub async fn restore(&self, version: &DeletedVersion) -> Result<(), ApiError> {
        let package = self.package_of(&version.repository);
        self.api.restore(&self.owner, &package, version.id).await
    }
}

impl Provider for Ghcr {
    fn source(&self) -> String {
        format!("GitHub Packages (`{}`)", self.owner.login)
    }

    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        let named = !only.is_empty();
        let packages: Vec<String> = if named {
            only.iter().map(|r| self.package_of(r.as_str())).collect()
        } else {
            self.api
                .packages(&self.owner)
                .await
                .map_err(|error| match error {
                    ApiError::Halted(_) => DiscoveryError::Api(error),
                    error => DiscoveryError::Choice(format!(
                        "cannot list the container packages of `{}`: {error}; a workflow's \
                     GITHUB_TOKEN may not list packages: name them in REGSWEEP_REPOSITORIES \
                     (comma-separated package names)",
                        self.owner.login
                    )),
                })?
        };
        let reader = &Reader::new(&self.client, self.concurrency);
        let mut repositories = super::discover_each(
            packages,
            "packages",
            self.concurrency,
            progress,
            |package| self.repository(reader, package, named),
        )
        .await?;
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Inventory { repositories })
    }

    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let package = self.package_of(repository.as_str());
        let versions = self
            .api
            .versions(&self.owner, &package)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("package `{package}` is gone"))?;
        let mut state = CurrentState::default();
        for version in versions {
            let Ok(digest) = version.name.parse::<Digest>() else {
                continue;
            };
            let tags = version.tags();
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
        let id = self.version_id(repository, digest)?;
        let package = self.package_of(repository.as_str());
        match self.api.delete(&self.owner, &package, id).await? {
            VersionDeleted::Now => {
                // Recorded before the run goes on: the journal is what `restore` reads when
                // the run is killed before its report.
                self.journal
                    .record("deleted", repository.as_str(), digest.as_str(), id)
                    .map_err(|e| {
                        DeleteError::new(
                            format!("`{digest}` was deleted, but {e}; stopping"),
                            Reach::Run,
                        )
                    })?;
                Ok(Deletion::Deleted)
            }
            VersionDeleted::Already => Ok(Deletion::AlreadyGone),
            VersionDeleted::Refused(reason) => Ok(Deletion::KeptByRegistry { reason }),
        }
    }

    /// ghcr.io deletes no tag by name (405): the tag is moved onto a throw-away manifest with
    /// the same token (which then needs `packages: write`), and that version is deleted
    /// through the Packages API at once.
    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<crate::providers::Untagging, DeleteError> {
        use crate::registry::untag::Step;
        let placeholder = match self
            .untagger
            .untag(&self.client, repository, digest, tag)
            .await?
        {
            Step::Done(done) => return Ok(done),
            Step::Placeholder(placeholder) => placeholder,
        };
        let package = self.package_of(repository.as_str());
        let left = |why: String| {
            DeleteError::new(
                format!(
                    "tag `{tag}` was moved onto the throw-away version {placeholder}, which \
                     could not be deleted ({why}); delete that version in the package's settings"
                ),
                Reach::Manifest,
            )
        };
        let versions = self
            .api
            .versions(&self.owner, &package)
            .await
            .map_err(|e| left(e.to_string()))?
            .unwrap_or_default();
        let id = versions
            .iter()
            .find(|v| v.name == placeholder.as_str())
            .map(|v| v.id)
            .ok_or_else(|| left("GitHub does not list it".into()))?;
        match self
            .api
            .delete(&self.owner, &package, id)
            .await
            .map_err(|e| left(e.to_string()))?
        {
            VersionDeleted::Now | VersionDeleted::Already => {
                Ok(crate::providers::Untagging::Untagged)
            }
            VersionDeleted::Refused(reason) => Err(left(reason)),
        }
    }

    fn prepare_to_delete(&self) -> Result<(), String> {
        self.journal.open()
    }

    fn undoes_deletions(&self) -> bool {
        true
    }

    async fn undo_deletion(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), String> {
        let id = self
            .version_id(repository, digest)
            .map_err(|e| e.to_string())?;
        let package = self.package_of(repository.as_str());
        self.api
            .restore(&self.owner, &package, id)
            .await
            .map_err(|e| e.to_string())?;
        self.journal
            .record("restored", repository.as_str(), digest.as_str(), id)
    }

    fn notices(&self) -> Vec<String> {
        vec![NOTICE.to_string()]
    }

    fn gc_advice(&self, _sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        None
    }
}
