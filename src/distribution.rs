//! distribution: the provider for a registry speaking the distribution API whose storage
//! regsweep can read. Storage tells what exists (the API cannot list untagged manifests); the
//! API does every deletion (storage is never written).

use crate::apply::{CurrentTags, Provider};
use std::collections::HashSet;

use crate::discover::storage::{new_revisions, read_children, read_tags};
use crate::discover::StorageDriver;
use crate::http::{Deleted, RegistryClient, RegistryError};
use crate::model::{Digest, RepositoryName};

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
    async fn current_tags(&self, repository: &RepositoryName) -> Result<CurrentTags, String> {
        let mut problems = Vec::new();
        let tags = read_tags(&self.storage, repository, self.concurrency, &mut problems).await;
        if problems.is_empty() {
            Ok(tags)
        } else {
            Err(problems.join("; "))
        }
    }

    async fn new_manifests(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<Vec<Digest>, String> {
        new_revisions(&self.storage, repository, known, self.concurrency).await
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
