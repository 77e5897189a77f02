//! digitalocean: DigitalOcean Container Registry through the DigitalOcean API: repositories and
//! manifests listed (every page), deletions (`DELETE …/digests/<digest>`, 204) paced by the
//! `ratelimit-*` headers, and garbage collection of unreferenced blobs started and followed to
//! its end. Manifest contents (index children, configs, `subject`) come from the registry's own
//! API (`registry.digitalocean.com`), so multi-arch images and signatures are protected exactly
//! as on a self-hosted registry.

pub mod client;
pub mod gc;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use crate::control::Control;
use crate::model::{
    Digest, GarbageCollectionAdvice, GarbageCollectionRun, Inventory, Repository, RepositoryName,
    Tag,
};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{Collected, CurrentState, DeleteError, Deletion, DiscoveryError, Provider};
use crate::registry::reader::{self, Reader};
use crate::registry::rest::ApiError;
use crate::registry::{Http, RegistryClient};
use crate::secret::SecretStringEq;
use client::{DoApi, Registry};

/// How DigitalOcean is used, from the options. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalOceanSettings {
    /// `DIGITALOCEAN_ACCESS_TOKEN`.
    pub token: SecretStringEq,
    /// `REGSWEEP_DO_API_URL` (default `https://api.digitalocean.com`).
    pub api_url: Url,
    /// `REGSWEEP_DO_REGISTRY`, or the `REGISTRY_URL` path; else asked of the API.
    pub registry: Option<String>,
    /// `REGSWEEP_GC`: start garbage collection after a real run that deleted something.
    pub gc: bool,
    /// `REGSWEEP_GC_TIMEOUT`: how long to follow it.
    pub gc_timeout: Duration,
    /// `REGSWEEP_GC_POLL`: how often to look at it.
    pub gc_poll: Duration,
}

/// A DigitalOcean registry: tags and manifests from the DigitalOcean API, children from the
/// registry API, deletions and garbage collection through the DigitalOcean API.
#[derive(Debug)]
pub struct DigitalOcean {
    api: DoApi,
    registry: Registry,
    client: RegistryClient,
    concurrency: usize,
    options: DigitalOceanSettings,
    control: Control,
}

impl DigitalOcean {
    /// Opens the registry `options` name (or the account's only one) through the API at
    /// `options.api_url`, reading manifest contents through `client`.
    pub async fn open(
        http: Http,
        options: DigitalOceanSettings,
        client: RegistryClient,
        concurrency: usize,
    ) -> Result<DigitalOcean, DiscoveryError> {
        let control = http.control().clone();
        let api = DoApi::new(http, options.api_url.clone(), &options.token.0, concurrency);
        let registry = api.open(options.registry.as_deref()).await?;
        Ok(DigitalOcean {
            api,
            registry,
            client,
            concurrency: concurrency.max(1),
            options,
            control,
        })
    }

    /// The API client (its pacer's counts, for the benchmark and the log).
    pub fn api(&self) -> &DoApi {
        &self.api
    }

    /// One repository: its manifests from the DigitalOcean API, their contents from the
    /// registry. `None` for a name regsweep cannot use, or a listed repository gone since.
    async fn repository(
        &self,
        reader: &Reader<'_>,
        name: String,
        named: bool,
    ) -> Result<Option<Repository>, DiscoveryError> {
        let Ok(repository_name) = name.parse::<RepositoryName>() else {
            tracing::warn!(name, "the API lists a repository name regsweep cannot use");
            return Ok(None);
        };
        let mut repository = Repository {
            name: repository_name,
            manifests: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let listed = match self.api.manifests(&self.registry, &name).await {
            Ok(Some(listed)) => listed,
            Ok(None) if named => {
                return Err(DiscoveryError::RepositoryNotFound {
                    name: repository.name,
                    place: format!("registry `{}`", self.registry.name),
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
        let mut updated: HashMap<Digest, DateTime<Utc>> = HashMap::new();
        for manifest in listed {
            let Ok(digest) = manifest.digest.parse::<Digest>() else {
                repository.problems.push(format!(
                    "the API lists an invalid digest `{}`",
                    manifest.digest
                ));
                continue;
            };
            if let Some(date) = manifest
                .updated_at
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            {
                updated.insert(digest.clone(), date.with_timezone(&Utc));
            }
            tags_of
                .entry(digest.clone())
                .or_default()
                .extend(manifest.tags.unwrap_or_default());
            pending.push((digest, None));
        }
        reader
            .load(&mut repository, tags_of, pending, self.concurrency)
            .await;
        for manifest in &mut repository.manifests {
            manifest.pushed = updated.get(&manifest.digest).copied();
        }
        Ok(Some(repository))
    }
}

impl Provider for DigitalOcean {
    fn source(&self) -> String {
        format!("DigitalOcean API (registry `{}`)", self.registry.name)
    }

    /// Repositories side by side: the API's pacing and the reader's permits bound the
    /// requests.
    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        let names: Vec<String> = if only.is_empty() {
            self.api.repositories(&self.registry).await?
        } else {
            only.iter().map(ToString::to_string).collect()
        };
        let named = !only.is_empty();
        let reader = &Reader::new(&self.client, self.concurrency);
        let repositories =
            super::discover_each(names, "repositories", self.concurrency, progress, |name| {
                self.repository(reader, name, named)
            })
            .await?;
        if let Some(pacer) = self.api.pacer() {
            tracing::info!(
                requests = pacer.requests.load(std::sync::atomic::Ordering::Relaxed),
                waited_ms = pacer.waited_ms.load(std::sync::atomic::Ordering::Relaxed),
                "DigitalOcean API use while discovering"
            );
        }
        Ok(Inventory { repositories })
    }

    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let listed = self
            .api
            .manifests(&self.registry, repository.as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "repository `{repository}` is gone from registry `{}`",
                    self.registry.name
                )
            })?;
        let mut state = CurrentState::default();
        for manifest in listed {
            let Ok(digest) = manifest.digest.parse::<Digest>() else {
                continue;
            };
            let tags = manifest.tags.unwrap_or_default();
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
        match self
            .api
            .delete(&self.registry, repository.as_str(), digest)
            .await?
        {
            true => Ok(Deletion::Deleted),
            false => Ok(Deletion::AlreadyGone),
        }
    }

    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<crate::providers::Untagging, DeleteError> {
        let now = crate::registry::reader::resolve_tag(&self.client, repository, tag).await?;
        crate::providers::untag_by_name(now, digest, async {
            Ok(self
                .api
                .delete_tag(&self.registry, repository.as_str(), tag)
                .await?)
        })
        .await
    }

    fn gc_advice(&self, sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        let (kind, why) = gc::gc_type(sweep);
        let include_untagged = if kind == gc::GC_TYPE {
            ""
        } else {
            " --include-untagged-manifests"
        };
        Some(GarbageCollectionAdvice {
            command: format!(
                "doctl registry garbage-collection start {}{include_untagged}",
                self.registry.name
            ),
            warnings: vec![
                format!("type `{kind}`: {why}"),
                "the registry is read-only while garbage collection runs (pushes fail); \
                 waiting for write tokens to expire can take 15 minutes"
                    .to_string(),
            ],
        })
    }

    async fn collect_garbage(&self, sweep: UntaggedSweep) -> Collected {
        if !self.options.gc {
            return Collected::NotStarted;
        }
        let (kind, why) = gc::gc_type(sweep);
        let followed = gc::collect_garbage(
            &self.api,
            &self.registry,
            kind,
            self.options.gc_timeout,
            self.options.gc_poll,
            &self.control,
        )
        .await;
        match followed {
            Ok(Some(gc)) => Collected::Ran(GarbageCollectionRun {
                id: gc.uuid,
                status: gc.status,
                blobs_deleted: gc.blobs_deleted,
                freed_bytes: gc.freed_bytes,
                kind: kind.to_string(),
                why: why.to_string(),
            }),
            Ok(None) => Collected::StillRunning {
                after: format!(
                    "{} (REGSWEEP_GC_TIMEOUT)",
                    humantime::format_duration(self.options.gc_timeout)
                ),
            },
            Err(ApiError::Halted(halt)) => Collected::StillRunning {
                after: format!("the run ended ({halt})"),
            },
            Err(error) => Collected::Failed(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TlsOptions;
    use client::tests::quick;
    use secrecy::SecretString;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn provider(server: &MockServer) -> DigitalOcean {
        Mock::given(method("GET"))
            .and(path("/v2/registries/r"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"registry": {"name": "r"}})),
            )
            .mount(server)
            .await;
        let http = Http::new(&TlsOptions::default(), quick(), Control::default()).unwrap();
        let client = RegistryClient::new(http.clone(), server.uri().parse().unwrap(), None);
        let options = DigitalOceanSettings {
            token: SecretStringEq(SecretString::from("t")),
            api_url: server.uri().parse().unwrap(),
            registry: Some("r".into()),
            gc: true,
            gc_timeout: Duration::from_secs(1),
            gc_poll: Duration::from_millis(10),
        };
        DigitalOcean::open(http, options, client, 2).await.unwrap()
    }

    /// Issue 12, defect 4: during the pre-delete re-check an absent repository stops deletes
    /// in it; it does not read as empty.
    #[tokio::test]
    async fn an_absent_repository_fails_the_pre_delete_check() {
        let server = MockServer::start().await;
        let provider = provider(&server).await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(404).set_body_json(serde_json::json!({"id": "not_found"})),
            )
            .mount(&server)
            .await;
        let state = provider
            .current_state(&"app".parse().unwrap(), &HashSet::new())
            .await;
        assert!(
            state.unwrap_err().contains("is gone"),
            "an absent repository read as empty"
        );
    }

    /// Issue 12, defect 5: an error never carries a status that was not received.
    #[tokio::test]
    async fn a_failed_delete_reports_the_status_received() {
        let server = MockServer::start().await;
        let provider = provider(&server).await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let error = provider
            .delete_manifest(&"app".parse().unwrap(), &Digest::sha256_of(b"x"))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("500 Internal Server Error"), "{error}");
        assert!(!error.contains("502"), "a status never received: {error}");
    }
}
