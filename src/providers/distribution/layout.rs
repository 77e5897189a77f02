//! layout: reads the distribution registry's storage layout into an `Inventory`.
//!
//! Layout (under the storage root): `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`,
//! `docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link` and
//! `…/_manifests/tags/<tag>/current/link`. A folder holding `_manifests` is a repository; other
//! names starting with `_` are not; repositories nest (`team/app` and `team/app/api`).
//!
//! Fails closed: whatever cannot be read or understood becomes a problem of its repository, and
//! the planner deletes nothing in a repository with problems. Reads only; never deletes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use super::driver::{StorageDriver, StorageError, Timed};
use crate::manifest::{manifest_from_document, parse_document, with_config, ManifestRead};
use crate::model::{Digest, Inventory, Manifest, Repository, RepositoryName, Tag};
use crate::progress::Progress;

/// The registry's own prefix below the storage root.
pub const LAYOUT_ROOT: &str = "docker/registry/v2";

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

fn repositories_path() -> String {
    format!("{LAYOUT_ROOT}/repositories")
}

fn repository_path(name: &RepositoryName) -> String {
    format!("{LAYOUT_ROOT}/repositories/{name}")
}

fn blob_path(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{LAYOUT_ROOT}/blobs/{}/{}/{hex}/data",
        digest.algorithm(),
        &hex[..2.min(hex.len())]
    )
}

/// Files read per batch: large enough that per-batch costs vanish, small enough that
/// batches spread over the workers.
const BATCH: usize = 256;

/// Reads `paths` in batches, `concurrency` batches at a time; results in the order of `paths`.
pub async fn read_batched<S: StorageDriver>(
    driver: &S,
    paths: Vec<String>,
    concurrency: usize,
) -> Vec<Result<Timed, StorageError>> {
    let batches: Vec<Vec<String>> = paths.chunks(BATCH).map(<[String]>::to_vec).collect();
    stream::iter(batches)
        .map(|batch| driver.read_many(batch, 1))
        .buffered(concurrency.max(1))
        .flat_map(stream::iter)
        .collect()
        .await
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

/// Parses a `link` file: exactly a digest (a trailing newline is tolerated).
pub fn parse_link(bytes: &[u8]) -> Result<Digest, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "link file is not text".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.parse::<Digest>().map_err(|e| e.to_string())
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

/// Reads the tags of a repository: digest → tags. Tags whose `current/link` is missing are
/// not tags (the registry answers 404 for them); unreadable ones are reported in `problems`.
pub async fn read_tags<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> HashMap<Digest, BTreeSet<Tag>> {
    let tags_path = format!("{}/_manifests/tags", repository_path(name));
    let links = read_links(driver, &tags_path, "current/link", concurrency, problems).await;
    let results = links.into_iter().map(|(tag, path, read)| {
        let result = match read {
            Ok((bytes, _)) => parse_link(&bytes).map_err(|e| format!("`{path}`: {e}")),
            Err(StorageError::NotFound { .. }) => Err(String::new()),
            Err(error) => Err(error.to_string()),
        };
        (tag, result)
    });
    let mut tags: HashMap<Digest, BTreeSet<Tag>> = HashMap::new();
    for (tag, result) in results {
        match result {
            Ok(digest) => {
                tags.entry(digest).or_default().insert(tag);
            }
            Err(message) if message.is_empty() => {}
            Err(message) => problems.push(format!("tag `{tag}`: {message}")),
        }
    }
    tags
}

/// For every sub-folder of `folder`: its name, the path of `<name>/<link>`, and that file read
/// (in batches). A missing folder has no entries; an unreadable one is a problem.
async fn read_links<S: StorageDriver>(
    driver: &S,
    folder: &str,
    link: &str,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> Vec<(String, String, Result<Timed, StorageError>)> {
    let entries = match driver.list(folder).await {
        Ok(entries) => entries,
        Err(StorageError::NotFound { .. }) => Vec::new(),
        Err(error) => {
            problems.push(error.to_string());
            return Vec::new();
        }
    };
    let names: Vec<String> = entries
        .into_iter()
        .filter(|e| e.is_folder)
        .map(|e| e.name)
        .collect();
    let paths: Vec<String> = names
        .iter()
        .map(|n| format!("{folder}/{n}/{link}"))
        .collect();
    let reads = read_batched(driver, paths.clone(), concurrency).await;
    names
        .into_iter()
        .zip(paths)
        .zip(reads)
        .map(|((name, path), read)| (name, path, read))
        .collect()
}

/// A revision found in a repository: its digest and when its link was written.
struct Revision {
    digest: Digest,
    pushed: Option<DateTime<Utc>>,
}

async fn read_revisions<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> Vec<Revision> {
    let revisions_path = format!("{}/_manifests/revisions/sha256", repository_path(name));
    let links = read_links(driver, &revisions_path, "link", concurrency, problems).await;
    let results = links.into_iter().map(|(name, path, read)| match read {
        Ok((bytes, pushed)) => {
            let digest = parse_link(&bytes).map_err(|e| format!("`{path}`: {e}"))?;
            if digest.hex() != name {
                return Err(format!(
                    "`{path}` names `{digest}`, not the revision it is filed under"
                ));
            }
            Ok(Some(Revision { digest, pushed }))
        }
        // The registry removes the link, not its folder, when a manifest is deleted: a
        // folder without a link is a deleted revision.
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.to_string()),
    });
    let mut revisions = Vec::new();
    for result in results {
        match result {
            Ok(Some(revision)) => revisions.push(revision),
            Ok(None) => {}
            Err(message) => problems.push(message),
        }
    }
    revisions
}

/// Manifests a repository holds now that are not in `known`: revision folders whose digest is
/// unknown and whose `link` exists (the registry leaves the folder when it deletes a revision).
pub async fn new_revisions<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    known: &HashSet<Digest>,
    concurrency: usize,
) -> Result<Vec<Digest>, String> {
    let revisions_path = format!("{}/_manifests/revisions/sha256", repository_path(name));
    let entries = match driver.list(&revisions_path).await {
        Ok(entries) => entries,
        Err(StorageError::NotFound { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(error.to_string()),
    };
    let paths: Vec<String> = entries
        .into_iter()
        .filter(|e| {
            e.is_folder
                && format!("sha256:{}", e.name)
                    .parse::<Digest>()
                    .is_ok_and(|d| !known.contains(&d))
        })
        .map(|e| format!("{revisions_path}/{}/link", e.name))
        .collect();
    let reads = read_batched(driver, paths.clone(), concurrency).await;
    let results: Vec<Result<Option<Digest>, String>> = paths
        .iter()
        .zip(reads)
        .map(|(path, read)| match read {
            Ok((bytes, _)) => parse_link(&bytes)
                .map(Some)
                .map_err(|e| format!("`{path}`: {e}")),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.to_string()),
        })
        .collect();
    results.into_iter().filter_map(Result::transpose).collect()
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

/// A manifest from its revision and stored document, before its config is read.
fn manifest_from(
    revision: &Revision,
    read: Result<Timed, StorageError>,
) -> Result<(Manifest, Option<Digest>), String> {
    let digest = &revision.digest;
    let (bytes, _) = read.map_err(|e| format!("manifest `{digest}`: {e}"))?;
    let mut staged = manifest_from_document(digest, &bytes)?;
    staged.0.pushed = revision.pushed;
    Ok(staged)
}

/// Reads a batch of manifests and then their configs, two bulk reads in all.
async fn read_manifests<S: StorageDriver>(
    driver: &S,
    revisions: &[&Revision],
) -> Vec<ManifestRead> {
    let paths = revisions.iter().map(|r| blob_path(&r.digest)).collect();
    let documents = driver.read_many(paths, 1).await;
    let staged: Vec<Result<(Manifest, Option<Digest>), String>> = revisions
        .iter()
        .zip(documents)
        .map(|(r, read)| manifest_from(r, read))
        .collect();
    let config_paths = staged
        .iter()
        .filter_map(|s| s.as_ref().ok().and_then(|(_, c)| c.as_ref()).map(blob_path))
        .collect();
    let mut configs = driver.read_many(config_paths, 1).await.into_iter();
    staged
        .into_iter()
        .map(|staged| match staged? {
            (manifest, None) => Ok((manifest, None)),
            (manifest, Some(config)) => {
                let read = configs.next().unwrap_or_else(|| {
                    Err(StorageError::Unreadable {
                        path: blob_path(&config),
                        message: "not read".into(),
                    })
                });
                let read = read.map(|(bytes, _)| bytes).map_err(|e| e.to_string());
                with_config(manifest, &config, read)
            }
        })
        .collect()
}

/// A repository's revisions, tags and problems, before manifests are read.
type Listing = (
    RepositoryName,
    Vec<Revision>,
    HashMap<Digest, BTreeSet<Tag>>,
    Vec<String>,
);

/// Discovers every repository (or only those in `only`) from storage.
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
        let mut problems = Vec::new();
        let revisions = read_revisions(driver, &name, concurrency, &mut problems).await;
        let tags = read_tags(driver, &name, concurrency, &mut problems).await;
        listing.inc(1);
        (name, revisions, tags, problems)
    }))
    .buffered(concurrency)
    .collect()
    .await;

    listing_phase.finish();
    let reading = progress.phase(
        "read",
        "manifests",
        listed
            .iter()
            .map(|(_, revisions, _, _)| revisions.len() as u64)
            .sum(),
    );
    let reading = &reading;

    // Manifest and config blobs, all repositories in one bounded stream of batches. The
    // batches name revisions by position, not by reference: a stream over borrowed items is
    // not provably `Send` for every lifetime (rust-lang/rust#102211), which the provider's
    // `discover` future must be.
    let all: Vec<(usize, usize)> = listed
        .iter()
        .enumerate()
        .flat_map(|(index, (_, revisions, _, _))| (0..revisions.len()).map(move |r| (index, r)))
        .collect();
    let batches: Vec<Vec<(usize, usize)>> = all.chunks(BATCH).map(<[_]>::to_vec).collect();
    let listed_ref = &listed;
    let results: Vec<(usize, ManifestRead)> = stream::iter(batches)
        .map(|batch| async move {
            let revisions: Vec<&Revision> = batch
                .iter()
                .map(|(index, r)| &listed_ref[*index].1[*r])
                .collect();
            let reads = read_manifests(driver, &revisions).await;
            reading.inc(batch.len() as u64);
            batch
                .iter()
                .map(|(index, _)| *index)
                .zip(reads)
                .collect::<Vec<_>>()
        })
        .buffered(concurrency)
        .flat_map(stream::iter)
        .collect()
        .await;
    let mut manifests_by_repository: BTreeMap<usize, Vec<Manifest>> = BTreeMap::new();
    let mut extra_problems: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut notes_by_repository: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (index, result) in results {
        match result {
            Ok((manifest, note)) => {
                manifests_by_repository
                    .entry(index)
                    .or_default()
                    .push(manifest);
                notes_by_repository.entry(index).or_default().extend(note);
            }
            Err(problem) => extra_problems.entry(index).or_default().push(problem),
        }
    }

    let mut repositories = Vec::with_capacity(listed.len());
    for (index, (name, _, mut tags, mut problems)) in listed.into_iter().enumerate() {
        let mut manifests = manifests_by_repository.remove(&index).unwrap_or_default();
        for manifest in &mut manifests {
            if let Some(tags) = tags.remove(&manifest.digest) {
                manifest.tags = tags.into_iter().collect();
            }
        }
        // Tags left over point at a digest with no revision: the registry itself answers
        // 404 for them, so they protect nothing and are not reported as problems.
        manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        problems.extend(extra_problems.remove(&index).unwrap_or_default());
        problems.sort();
        let mut notes = notes_by_repository.remove(&index).unwrap_or_default();
        notes.sort();
        repositories.push(Repository {
            name,
            manifests,
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
    fn link_files() {
        let hex = "a".repeat(64);
        assert_eq!(
            parse_link(format!("sha256:{hex}").as_bytes())
                .unwrap()
                .hex(),
            hex
        );
        assert!(parse_link(format!("sha256:{hex}\n").as_bytes()).is_ok());
        assert!(parse_link(b"").is_err());
        assert!(parse_link(b"sha256:zz").is_err());
        assert!(parse_link(&[0xff, 0xfe]).is_err());
    }

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
