//! distribution: the providers for a registry speaking the distribution API. `Distribution`
//! reads its storage, which tells what exists (the API cannot list untagged manifests);
//! `ApiOnly` has nothing but the API. The API does every deletion (storage is never written).

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use crate::apply::{CurrentState, CurrentTags, Provider};
use crate::discover::api;
use crate::discover::storage::{new_revisions, read_children, read_tags};
use crate::discover::StorageDriver;
use crate::http::{Deleted, RegistryClient, RegistryError};
use crate::model::{Digest, RepositoryName, Tag};

/// Storage for reading, the registry's API for deleting.
#[derive(Debug)]
pub struct Distribution<S> {
    storage: S,
    client: RegistryClient,
    concurrency: usize,
}

impl<S: StorageDriver> Distribution<S> {
    /// A provider over `storage` and `client`, reading with at most `concurrency` in flight.
    pub fn new(storage: S, client: RegistryClient, concurrency: usize) -> Self {
        Distribution {
            storage,
            client,
            concurrency,
        }
    }

    /// The storage, for discovery.
    pub fn storage(&self) -> &S {
        &self.storage
    }
}

impl<S: StorageDriver> Provider for Distribution<S> {
    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let mut problems = Vec::new();
        let tags = read_tags(&self.storage, repository, self.concurrency, &mut problems).await;
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let new_manifests =
            new_revisions(&self.storage, repository, known, self.concurrency).await?;
        Ok(CurrentState {
            tags,
            new_manifests,
        })
    }

    async fn manifest_children(
        &self,
        _repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<Digest>, String> {
        read_children(&self.storage, digest).await
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deleted, RegistryError> {
        self.client.delete_manifest(repository, digest).await
    }
}

/// The provider for a registry known only through its API (`REGSWEEP_SOURCE=api`): the
/// pre-delete checks read tags and indexes through the API as well.
#[derive(Debug)]
pub struct ApiOnly {
    client: RegistryClient,
    concurrency: usize,
}

impl ApiOnly {
    /// A provider over `client`, reading with at most `concurrency` requests in flight.
    pub fn new(client: RegistryClient, concurrency: usize) -> Self {
        ApiOnly {
            client,
            concurrency: concurrency.max(1),
        }
    }

    async fn read_tags(&self, repository: &RepositoryName) -> Result<CurrentTags, String> {
        let tags = api::list_tags(&self.client, repository)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let resolved: Vec<(Tag, Result<Option<Digest>, RegistryError>)> = stream::iter(tags)
            .map(|tag| async move {
                let digest = api::resolve_tag(&self.client, repository, &tag).await;
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
        api::manifest_children(&self.client, repository, digest).await
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deleted, RegistryError> {
        self.client.delete_manifest(repository, digest).await
    }
}
