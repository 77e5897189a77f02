//! api: the provider for a registry known only through its API (`REGSWEEP_SOURCE=api`, or
//! neither `REGISTRY_DIR` nor `REGISTRY_STORAGE`): the catalog (or the repositories named in
//! `REPO_FILTER` / `REGSWEEP_REPOSITORIES`), every tag and everything it reaches. The API
//! cannot list a manifest no tag reaches: untagged manifests stay invisible, so an API-only run
//! deletes expired tags' manifests and nothing untagged, and the report says so. The
//! pre-delete checks read tags and indexes through the API as well.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use super::{delete_through_api, self_hosted_gc_advice};
use crate::model::{Digest, GarbageCollectionAdvice, Inventory, RepositoryName, Tag};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{
    CurrentState, CurrentTags, DeleteError, Deletion, DiscoveryError, Provider,
};
use crate::registry::reader::{self, Reader};
use crate::registry::{RegistryClient, RegistryError};

/// What the report says about an API-only run.
pub const NOTICE: &str = "discovered through the registry API only: untagged manifests are \
invisible to the API and were neither counted nor deleted; give regsweep the registry's storage \
(REGISTRY_DIR, or REGISTRY_STORAGE=s3) to find and delete them";

/// The registry's API and nothing else.
#[derive(Debug)]
pub struct ApiOnly {
    client: RegistryClient,
    concurrency: usize,
    /// Why this source was chosen, for the report.
    reason: String,
    registry_config: String,
    untagger: crate::registry::untag::Untagger,
}

impl ApiOnly {
    /// A provider over `client`, reading with at most `concurrency` requests in flight;
    /// `reason` says why the API alone is used.
    pub fn new(
        client: RegistryClient,
        concurrency: usize,
        reason: String,
        registry_config: String,
    ) -> Self {
        ApiOnly {
            client,
            concurrency: concurrency.max(1),
            reason,
            registry_config,
            untagger: Default::default(),
        }
    }

    async fn read_tags(&self, repository: &RepositoryName) -> Result<CurrentTags, String> {
        let tags = reader::list_tags(&self.client, repository)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("repository `{repository}` is gone"))?;
        let resolved: Vec<(Tag, Result<Option<Digest>, RegistryError>)> = stream::iter(tags)
            .map(|tag| async move {
                let digest = reader::resolve_tag(&self.client, repository, &tag).await;
                (tag, digest)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut current = CurrentTags::new();
        for (tag, digest) in resolved {
            match digest {
                Ok(Some(digest)) => {
                    current.entry(digest).or_default().insert(tag);
                }
                Ok(None) => {}
                Err(error) => return Err(format!("tag `{tag}`: {error}")),
            }
        }
        Ok(current)
    }
}

impl Provider for ApiOnly {
    fn source(&self) -> String {
        "none (registry API only)".to_string()
    }

    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        tracing::info!(
            reason = self.reason.as_str(),
            "discovering through the registry API only"
        );
        let concurrency = self.concurrency;
        let client = &self.client;
        let named = !only.is_empty();
        let names = if named {
            only.to_vec()
        } else {
            reader::catalog(client)
                .await
                .map_err(DiscoveryError::Catalog)?
        };
        let reader = &Reader::new(client, concurrency);
        let repositories = crate::providers::discover_each(
            names,
            "repositories",
            concurrency,
            progress,
            |name| async move {
                match reader.repository(name.clone(), concurrency).await {
                    Ok(None) if named => Err(DiscoveryError::RepositoryNotFound {
                        name,
                        place: format!("registry `{}`", client.display()),
                    }),
                    // Listed by the catalog, gone since: nothing to do.
                    Ok(found) => Ok(found),
                    Err(error) => Err(error.into()),
                }
            },
        )
        .await?;
        Ok(Inventory { repositories })
    }

    /// New manifests are the tagged ones not in `known`: the API shows nothing untagged, and
    /// a new index that matters (one that could list a planned deletion) is tagged.
    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let tags = self.read_tags(repository).await?;
        let new_manifests = tags
            .keys()
            .filter(|d| !known.contains(d))
            .cloned()
            .collect();
        Ok(CurrentState {
            tags,
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

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deletion, DeleteError> {
        delete_through_api(&self.client, repository, digest).await
    }

    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<crate::providers::Untagging, DeleteError> {
        super::untag_through_api(&self.untagger, &self.client, repository, digest, tag).await
    }

    fn notices(&self) -> Vec<String> {
        vec![format!("{NOTICE} ({})", self.reason)]
    }

    fn gc_advice(&self, _sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        Some(self_hosted_gc_advice(&self.registry_config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Control;
    use crate::manifest::MANIFEST_ACCEPT;
    use crate::registry::{Http, RetryPolicy, TlsOptions};
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn provider(server: &MockServer, concurrency: usize) -> ApiOnly {
        let retry = RetryPolicy {
            attempts: 2,
            base_delay: std::time::Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let http = Http::new(&TlsOptions::default(), retry, Control::default()).unwrap();
        let client = RegistryClient::new(http, server.uri().parse().unwrap(), None);
        ApiOnly::new(client, concurrency, "a test".into(), "config.yml".into())
    }

    #[tokio::test]
    async fn a_refused_catalog_says_to_name_the_repositories() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                json!({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}),
            ))
            .mount(&server)
            .await;
        let error = provider(&server, 2)
            .discover(&[], &Progress::hidden())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot list the registry's repositories")
                && error.contains("403 Forbidden")
                && error.contains("REGSWEEP_REPOSITORIES"),
            "{error}"
        );
    }

    /// A registry with the OCI 1.1 referrers API: the untagged referrer is found through it.
    #[tokio::test]
    async fn referrers_come_from_the_referrers_api_where_there_is_one() {
        let server = MockServer::start().await;
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z"
        }))
        .unwrap();
        let config_digest = Digest::sha256_of(&config);
        let image = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "config": {"mediaType": crate::manifest::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": []
        }))
        .unwrap();
        let image_digest = Digest::sha256_of(&image);
        let sbom = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::sha256_of(b"{}"), "size": 2},
            "layers": [],
            "subject": {"mediaType": crate::manifest::OCI_MANIFEST, "digest": image_digest, "size": image.len()}
        }))
        .unwrap();
        let sbom_digest = Digest::sha256_of(&sbom);
        let manifest = |body: &[u8]| {
            ResponseTemplate::new(200).set_body_raw(body.to_vec(), crate::manifest::OCI_MANIFEST)
        };
        Mock::given(method("GET"))
            .and(path("/v2/app/tags/list"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"name": "app", "tags": ["v1"]})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/app/manifests/v1"))
            .respond_with(manifest(&image))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/manifests/{sbom_digest}")))
            .respond_with(manifest(&sbom))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/blobs/{config_digest}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(config.clone(), "application/octet-stream"),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/referrers/{image_digest}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "schemaVersion": 2,
                "mediaType": crate::manifest::OCI_INDEX,
                "manifests": [{"mediaType": crate::manifest::OCI_MANIFEST, "digest": sbom_digest, "size": sbom.len(), "artifactType": "application/spdx+json"}]
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/referrers/{sbom_digest}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "schemaVersion": 2, "mediaType": crate::manifest::OCI_INDEX, "manifests": []
            })))
            .mount(&server)
            .await;
        let inventory = provider(&server, 4)
            .discover(&["app".parse().unwrap()], &Progress::hidden())
            .await
            .unwrap();
        let repository = &inventory.repositories[0];
        assert!(repository.problems.is_empty(), "{:?}", repository.problems);
        assert_eq!(repository.manifests.len(), 2);
        let image = repository
            .manifests
            .iter()
            .find(|m| m.digest == image_digest)
            .unwrap();
        assert_eq!(image.tags, ["v1"]);
        assert_eq!(
            image.created.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
        assert_eq!(image.platform.as_ref().unwrap().to_string(), "linux/amd64");
        let sbom = repository
            .manifests
            .iter()
            .find(|m| m.digest == sbom_digest)
            .unwrap();
        assert_eq!(sbom.subject.as_ref(), Some(&image_digest));
        assert!(sbom.tags.is_empty());
        // Every request asked for all four manifest types where it fetched a manifest.
        for request in server.received_requests().await.unwrap() {
            if request.url.path().contains("/manifests/") {
                let accept = request.headers.get("accept").unwrap().to_str().unwrap();
                assert_eq!(accept, MANIFEST_ACCEPT);
            }
        }
    }
}
