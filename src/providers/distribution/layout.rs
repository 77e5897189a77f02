//! layout: reads the distribution registry's storage layout into an `Inventory`.
//!
//! Layout (under the storage root): `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`,
//! `docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link` and
//! `…/_manifests/tags/<tag>/current/link`. A folder holding `_manifests` is a repository; other
//! names starting with `_` are not; repositories nest (`team/app` and `team/app/api`).
//!
//! Fails closed: whatever cannot be read or understood becomes a problem of its repository, and
//! the planner deletes nothing in a repository with problems. Reads only; never deletes.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};

use super::driver::{StorageDriver, StorageError};
pub use super::links::LAYOUT_ROOT;
use super::links::{read_repository, repositories_path, repository_path, Revision, BATCH};
use crate::manifest::{manifest_from_document, parse_config, parse_document, with_parsed_config};
use crate::model::{Digest, Inventory, Manifest, Repository, RepositoryName, Tag};
use crate::progress::Progress;

/// Why storage cannot be used at all (as opposed to one repository being unreadable).
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// No `docker/registry/v2` below the root.
    #[error("`{root}` is not registry storage: it has no `{LAYOUT_ROOT}` folder")]
    NotRegistryStorage {
        /// Where we looked.
        root: String,
    },
    /// The filtered repository does not exist.
    #[error("repository `{name}` not found in `{root}`")]
    RepositoryNotFound {
        /// The repository asked for.
        name: RepositoryName,
        /// Where we looked.
        root: String,
    },
    /// Listing the repositories failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn blob_path(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{LAYOUT_ROOT}/blobs/{}/{}/{hex}/data",
        digest.algorithm(),
        &hex[..2.min(hex.len())]
    )
}

/// Checks that the storage holds a registry's layout.
pub async fn check_layout<S: StorageDriver>(driver: &S) -> Result<(), LayoutError> {
    match driver.list(LAYOUT_ROOT).await {
        Ok(_) => Ok(()),
        Err(StorageError::NotFound { .. }) => Err(LayoutError::NotRegistryStorage {
            root: driver.describe(),
        }),
        Err(other) => Err(other.into()),
    }
}

/// Finds every repository (or only those in `only`, each of which must exist), sorted.
pub async fn list_repositories<S: StorageDriver>(
    driver: &S,
    only: &[RepositoryName],
) -> Result<Vec<RepositoryName>, LayoutError> {
    check_layout(driver).await?;
    if !only.is_empty() {
        let mut found = Vec::new();
        for name in only {
            match driver
                .list(&format!("{}/_manifests", repository_path(name)))
                .await
            {
                Ok(_) => found.push(name.clone()),
                Err(StorageError::NotFound { .. }) => {
                    return Err(LayoutError::RepositoryNotFound {
                        name: name.clone(),
                        root: driver.describe(),
                    })
                }
                Err(other) => return Err(other.into()),
            }
        }
        found.sort();
        found.dedup();
        return Ok(found);
    }
    let mut found = Vec::new();
    // Breadth-first over folders; bounded by the folder tree itself.
    let mut pending: Vec<String> = vec![String::new()];
    while let Some(prefix) = pending.pop() {
        let path = if prefix.is_empty() {
            repositories_path()
        } else {
            format!("{}/{prefix}", repositories_path())
        };
        let entries = match driver.list(&path).await {
            Ok(entries) => entries,
            // A registry nobody has pushed to yet has no `repositories` folder.
            Err(StorageError::NotFound { .. }) if prefix.is_empty() => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        for entry in entries.iter().filter(|e| e.is_folder) {
            if entry.name == "_manifests" {
                if let Ok(name) = prefix.parse::<RepositoryName>() {
                    found.push(name);
                }
            } else if !entry.name.starts_with('_') {
                pending.push(if prefix.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{prefix}/{}", entry.name)
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The manifests that manifest `digest` lists (empty unless it is an index).
pub async fn read_children<S: StorageDriver>(
    driver: &S,
    digest: &Digest,
) -> Result<Vec<Digest>, String> {
    let bytes = driver
        .read(&blob_path(digest))
        .await
        .map_err(|e| format!("manifest `{digest}`: {e}"))?;
    let parsed = parse_document(digest, &bytes)?;
    Ok(parsed.children.into_iter().map(|c| c.digest).collect())
}

/// Reads each of `digests` once, in batches, `concurrency` batches at a time, each turned
/// into what `parse` makes of it (parsed as its batch arrives: the bytes are not kept).
async fn read_blobs<S: StorageDriver, T>(
    driver: &S,
    digests: Vec<Digest>,
    concurrency: usize,
    parse: impl Fn(&Digest, Result<Vec<u8>, StorageError>) -> T,
    progress: &crate::progress::Phase,
) -> HashMap<Digest, T> {
    let mut read = HashMap::with_capacity(digests.len());
    let batches: Vec<Vec<Digest>> = digests.chunks(BATCH).map(<[Digest]>::to_vec).collect();
    let parse = &parse;
    let mut parsed = stream::iter(batches)
        .map(|batch| async move {
            let paths = batch.iter().map(blob_path).collect();
            let reads = driver.read_many(paths, 1).await;
            progress.inc(batch.len() as u64);
            batch
                .into_iter()
                .zip(reads)
                .map(|(digest, read)| {
                    let value = parse(&digest, read.map(|(bytes, _)| bytes));
                    (digest, value)
                })
                .collect::<Vec<_>>()
        })
        .buffer_unordered(concurrency.max(1))
        .flat_map(stream::iter);
    // Sized once: a million entries grown by doubling would hold two tables at the peak.
    while let Some((digest, value)) = parsed.next().await {
        read.insert(digest, value);
    }
    read
}

/// One shared copy of each blob digest: a million manifests name a few hundred configs and
/// layers, and each would otherwise hold its own copy of their digests.
#[derive(Default)]
struct Interner(std::sync::Mutex<HashSet<Digest>>);

impl Interner {
    fn intern(&self, digest: &mut Digest) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(digest) {
            Some(shared) => *digest = shared.clone(),
            None => {
                known.insert(digest.clone());
            }
        }
    }
}

/// The image manifests of a repository whose config is worth reading: those with a tag, and
/// those a tagged index lists (at any depth), whose dates rank hash tags. An untagged
/// manifest's config changes no decision: it is judged by when it was pushed.
fn configs_needed(manifests: &[(Manifest, Option<Digest>)]) -> Vec<bool> {
    let position: HashMap<&Digest, usize> = manifests
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (&m.digest, i))
        .collect();
    let mut needed = vec![false; manifests.len()];
    let mut queue: Vec<usize> = (0..manifests.len())
        .filter(|&i| !manifests[i].0.tags.is_empty())
        .collect();
    while let Some(i) = queue.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        for child in &manifests[i].0.children {
            if let Some(&j) = position.get(&child.digest) {
                if !needed[j] {
                    queue.push(j);
                }
            }
        }
    }
    needed
}

/// A repository's revisions, tags and problems, before manifests are read.
type Listing = (
    RepositoryName,
    Vec<Revision>,
    HashMap<Digest, Vec<Tag>>,
    Vec<String>,
);

/// Discovers every repository (or only those in `only`) from storage. Each manifest and
/// config blob is read once however many repositories hold it, and a config only when a
/// decision may depend on it (see [`configs_needed`]).
pub async fn discover<S: StorageDriver>(
    driver: &S,
    only: &[RepositoryName],
    concurrency: usize,
    progress: &Progress,
) -> Result<Inventory, LayoutError> {
    let names = list_repositories(driver, only).await?;
    let concurrency = concurrency.max(1);
    let listing_phase = progress.phase("discover", "repositories", names.len() as u64);
    let listing = &listing_phase;

    // Revisions and tags of every repository, repositories side by side.
    let listed: Vec<Listing> = stream::iter(names.into_iter().map(|name| async move {
        let (revisions, tags, problems) = read_repository(driver, &name, concurrency).await;
        listing.inc(1);
        (name, revisions, tags, problems)
    }))
    .buffered(concurrency)
    .collect()
    .await;
    listing_phase.finish();

    // Every distinct manifest, once, with how many repositories want it (the last to stage
    // it takes it, the others clone).
    let mut wanted: HashMap<Digest, usize> = HashMap::new();
    for (_, revisions, _, _) in &listed {
        for revision in revisions {
            *wanted.entry(revision.digest.clone()).or_default() += 1;
        }
    }
    let mut distinct: Vec<Digest> = wanted.keys().cloned().collect();
    distinct.sort_unstable();
    let reading = progress.phase("read", "manifests", distinct.len() as u64);
    let blobs = Interner::default();
    let mut documents = read_blobs(
        driver,
        distinct,
        concurrency,
        |digest, read| {
            let bytes = read.map_err(|e| format!("manifest `{digest}`: {e}"))?;
            let (mut manifest, mut config) = manifest_from_document(digest, &bytes)?;
            for blob in &mut manifest.blobs {
                blobs.intern(&mut blob.digest);
            }
            if let Some(config) = &mut config {
                blobs.intern(config);
            }
            // Boxed: the map's slots stay small, each manifest takes only its own size.
            Ok(Box::new((manifest, config)))
        },
        &reading,
    )
    .await;
    reading.finish();

    // Manifests per repository, tagged; then the configs their decisions need, each once.
    type Staged = Vec<(Manifest, Option<Digest>)>;
    let mut staged: Vec<(RepositoryName, Staged, Vec<String>)> = Vec::with_capacity(listed.len());
    for (name, revisions, mut tags, mut problems) in listed {
        let mut manifests = Vec::with_capacity(revisions.len());
        for revision in revisions {
            let left = wanted.get_mut(&revision.digest).expect("counted above");
            *left -= 1;
            let document = if *left == 0 {
                documents.remove(&revision.digest)
            } else {
                documents.get(&revision.digest).cloned()
            };
            match document {
                Some(Ok(document)) => {
                    let (mut manifest, config) = *document;
                    manifest.pushed = revision.pushed;
                    if let Some(mut tags) = tags.remove(&manifest.digest) {
                        tags.sort_unstable();
                        tags.dedup();
                        manifest.tags = tags;
                    }
                    manifests.push((manifest, config));
                }
                Some(Err(problem)) => problems.push(problem),
                None => problems.push(format!("manifest `{}`: not read", revision.digest)),
            }
        }
        // Tags left over point at a digest with no revision: the registry itself answers
        // 404 for them, so they protect nothing and are not reported as problems.
        // A config no decision needs is forgotten here, so it is neither read nor applied.
        let needed = configs_needed(&manifests);
        for ((_, config), needed) in manifests.iter_mut().zip(needed) {
            if !needed {
                *config = None;
            }
        }
        staged.push((name, manifests, problems));
    }
    let mut configs: Vec<Digest> = staged
        .iter()
        .flat_map(|(_, manifests, _)| manifests.iter().filter_map(|(_, config)| config.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    configs.sort_unstable();
    let reading = progress.phase("read", "configs", configs.len() as u64);
    let parsed = read_blobs(
        driver,
        configs,
        concurrency,
        |_, read| {
            read.map_err(|e| e.to_string())
                .and_then(|bytes| parse_config(&bytes).map_err(|e| e.to_string()))
        },
        &reading,
    )
    .await;
    reading.finish();

    let mut repositories = Vec::with_capacity(staged.len());
    for (name, manifests, mut problems) in staged {
        let mut notes = Vec::new();
        let mut complete = Vec::with_capacity(manifests.len());
        for (manifest, config) in manifests {
            let read = match config {
                None => Ok((manifest, None)),
                Some(config) => match parsed.get(&config) {
                    Some(facts) => with_parsed_config(manifest, &config, facts),
                    None => Err(format!("config `{config}`: not read")),
                },
            };
            match read {
                Ok((manifest, note)) => {
                    complete.push(manifest);
                    notes.extend(note);
                }
                Err(problem) => problems.push(problem),
            }
        }
        complete.sort_by(|a, b| a.digest.cmp(&b.digest));
        problems.sort();
        notes.sort();
        repositories.push(Repository {
            name,
            manifests: complete,
            problems,
            notes,
        });
    }
    Ok(Inventory { repositories })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths() {
        let digest: Digest = format!("sha256:ab{}", "c".repeat(62)).parse().unwrap();
        assert_eq!(
            blob_path(&digest),
            format!(
                "docker/registry/v2/blobs/sha256/ab/ab{}/data",
                "c".repeat(62)
            )
        );
    }
}
