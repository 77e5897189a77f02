//! distribution: the providers for a registry speaking the distribution API (Docker's
//! `registry`, Debian's `docker-registry`, anything OCI). `Distribution` reads the registry's
//! storage, which tells what exists (the API cannot list untagged manifests); `ApiOnly` (in
//! `api`) has nothing but the API. The API does every deletion: storage is never written.

pub mod api;
pub mod driver;
pub mod filesystem;
pub mod layout;
pub mod links;
pub mod s3;

use std::collections::HashSet;

use crate::model::{Digest, GarbageCollectionAdvice, Inventory, RepositoryName};
use crate::plan::untagged::UntaggedSweep;
use crate::progress::Progress;
use crate::providers::{
    CurrentState, DeleteError, Deletion, DiscoveryError, Provider, Reach, Untagging,
};
use crate::registry::untag::{Step, Untagger};
use crate::registry::{Gone, RegistryClient};
use driver::StorageDriver;
use layout::read_children;
use links::{new_revisions, read_tags};

/// Deletes a manifest through the registry's API: 202 deleted, 404 already gone.
pub(crate) async fn delete_through_api(
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Deletion, DeleteError> {
    match client.delete_manifest(repository, digest).await? {
        Gone::Now => Ok(Deletion::Deleted),
        Gone::Already => Ok(Deletion::AlreadyGone),
    }
}

/// Removes a tag through the registry's API (`registry::untag`), deleting the throw-away
/// manifest it was moved onto, if any, by digest.
pub(crate) async fn untag_through_api(
    untagger: &Untagger,
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
    tag: &str,
) -> Result<Untagging, DeleteError> {
    match untagger.untag(client, repository, digest, tag).await? {
        Step::Done(done) => Ok(done),
        Step::Placeholder(placeholder) => {
            client
                .delete_manifest(repository, &placeholder)
                .await
                .map_err(|error| {
                    DeleteError::new(
                        format!(
                            "tag `{tag}` was moved onto the throw-away manifest {placeholder}, \
                             which could not be deleted ({error}); delete it: DELETE \
                             /v2/{repository}/manifests/{placeholder}"
                        ),
                        Reach::Manifest,
                    )
                })?;
            Ok(Untagging::Untagged)
        }
    }
}

/// The command that frees a self-hosted registry's space, and its cautions. Never with
/// `--delete-untagged`: on registry 2.x that deletes the untagged children of multi-arch
/// images (distribution/distribution#3004), and even 3.x deletes OCI 1.1 referrers.
pub fn self_hosted_gc_advice(registry_config: &str) -> GarbageCollectionAdvice {
    GarbageCollectionAdvice {
        command: format!("registry garbage-collect {registry_config}"),
        warnings: vec![
            "run it with the registry stopped or in read-only mode \
             (storage.maintenance.readonly.enabled: true)"
                .to_string(),
            "do not add --delete-untagged on registry 2.x: it deletes the untagged children \
             of multi-arch images (distribution/distribution#3004)"
                .to_string(),
            "Debian's package names the binary `docker-registry`; the official image `registry`"
                .to_string(),
        ],
    }
}

/// Storage for reading, the registry's API for deleting.
#[derive(Debug)]
pub struct Distribution<S> {
    storage: S,
    client: RegistryClient,
    concurrency: usize,
    registry_config: String,
    untagger: Untagger,
}

impl<S: StorageDriver> Distribution<S> {
    /// A provider over `storage` and `client`, reading with at most `concurrency` in flight;
    /// `registry_config` is named in the garbage-collection advice.
    pub fn new(
        storage: S,
        client: RegistryClient,
        concurrency: usize,
        registry_config: String,
    ) -> Self {
        Distribution {
            storage,
            client,
            concurrency,
            registry_config,
            untagger: Untagger::default(),
        }
    }
}

impl<S> Distribution<S> {
    /// The storage it reads (the maintenance window also writes it).
    pub fn storage(&self) -> &S {
        &self.storage
    }
}

impl<S: StorageDriver> Provider for Distribution<S> {
    fn source(&self) -> String {
        self.storage.describe()
    }

    async fn discover(
        &self,
        only: &[RepositoryName],
        progress: &Progress,
    ) -> Result<Inventory, DiscoveryError> {
        Ok(layout::discover(&self.storage, only, self.concurrency, progress).await?)
    }

    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let mut problems = Vec::new();
        let tags = read_tags(
            &self.storage,
            repository,
            known,
            self.concurrency,
            &mut problems,
        )
        .await;
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
    ) -> Result<Deletion, DeleteError> {
        delete_through_api(&self.client, repository, digest).await
    }

    async fn untag(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<Untagging, DeleteError> {
        untag_through_api(&self.untagger, &self.client, repository, digest, tag).await
    }

    fn gc_advice(&self, _sweep: UntaggedSweep) -> Option<GarbageCollectionAdvice> {
        Some(self_hosted_gc_advice(&self.registry_config))
    }
}
