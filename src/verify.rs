//! verify: after a real run, re-resolves every kept tag through the registry API and checks
//! that its manifest, children (recursively), config and layers can all be pulled. Reads only.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::manifest::parse_manifest;
use crate::model::{Digest, RepositoryName, Tag};
use crate::progress::Progress;
use crate::registry::RegistryClient;

/// Upper bound on manifests followed from one tag (nested indexes), so a loop cannot hang us.
const MAX_MANIFESTS_PER_TAG: usize = 10_000;

/// What verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Tags checked.
    pub checked_tags: usize,
    /// Everything that could not be pulled, one line each.
    pub failures: Vec<String>,
}

/// Checks that each `(repository, tag)` is fully pullable.
pub async fn verify(
    client: &RegistryClient,
    tags: Vec<(RepositoryName, Tag)>,
    concurrency: usize,
    progress: &Progress,
) -> Verification {
    let phase = progress.phase("verify", "tags", tags.len() as u64);
    let phase = &phase;
    // Blobs and manifests already confirmed, per repository: kept tags share most of them.
    let confirmed: Mutex<HashSet<(RepositoryName, Digest)>> = Mutex::new(HashSet::new());
    let checked_tags = tags.len();
    let failures: Vec<Vec<String>> = stream::iter(tags)
        .map(|(repository, tag)| {
            let confirmed = &confirmed;
            async move {
                let failures = verify_tag(client, &repository, &tag, confirmed).await;
                phase.inc(1);
                failures
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failures: Vec<String> = failures.into_iter().flatten().collect();
    failures.sort();
    Verification {
        checked_tags,
        failures,
    }
}

async fn verify_tag(
    client: &RegistryClient,
    repository: &RepositoryName,
    tag: &str,
    confirmed: &Mutex<HashSet<(RepositoryName, Digest)>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut pending: Vec<String> = vec![tag.to_string()];
    let mut followed = 0;
    while let Some(reference) = pending.pop() {
        followed += 1;
        if followed > MAX_MANIFESTS_PER_TAG {
            failures.push(format!("`{repository}:{tag}`: more than {MAX_MANIFESTS_PER_TAG} manifests, not followed further"));
            break;
        }
        let what = if reference == tag {
            format!("`{repository}:{tag}`")
        } else {
            format!("`{repository}:{tag}` → `{reference}`")
        };
        let bytes = match client.get_manifest(repository, &reference).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                failures.push(format!("{what}: manifest not found"));
                continue;
            }
            Err(error) => {
                failures.push(format!("{what}: {error}"));
                continue;
            }
        };
        let parsed = match parse_manifest(&bytes, None) {
            Ok(parsed) => parsed,
            Err(error) => {
                failures.push(format!("{what}: {error}"));
                continue;
            }
        };
        pending.extend(parsed.children.iter().map(|c| c.digest.to_string()));
        for blob in parsed.config.iter().chain(parsed.layers.iter()) {
            let key = (repository.clone(), blob.digest.clone());
            if confirmed.lock().await.contains(&key) {
                continue;
            }
            match client.blob_exists(repository, &blob.digest).await {
                Ok(true) => {
                    confirmed.lock().await.insert(key);
                }
                Ok(false) => failures.push(format!("{what}: blob `{}` not found", blob.digest)),
                Err(error) => failures.push(format!("{what}: {error}")),
            }
        }
    }
    failures
}
