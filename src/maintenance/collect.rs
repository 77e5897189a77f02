//! collect: the registry's garbage collection, done at storage speed and to the same result.
//! Mark, as distribution's `garbage-collect` does (without `--delete-untagged`): for every
//! manifest revision left in every repository, the manifest's own blob and what it references
//! (an image's config and layers, an index's manifests; not a referrer's `subject`, which is a
//! revision of its own when it is there). Sweep: every blob under `blobs/` not marked goes,
//! with the folders it leaves empty. A repository that could not be read completely stops the
//! collection: what it references is unknown, and a blob is never deleted on a guess.

use std::collections::HashSet;

use crate::model::{Digest, Inventory, Plan};
use crate::providers::distribution::driver::{StorageError, StorageWriter};
use crate::providers::distribution::layout::LAYOUT_ROOT;
use crate::providers::distribution::links::HEX;

/// What the collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs in storage before.
    pub blobs: usize,
    /// Blobs something left references.
    pub marked: usize,
    /// Blobs deleted.
    pub deleted: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Why the collection did not run.
#[derive(Debug, thiserror::Error)]
pub enum NotCollected {
    /// A repository's discovery was incomplete.
    #[error(
        "repository `{repository}` could not be read completely ({problem}): what it references \
         is unknown, so no blob was deleted; mend it and run again"
    )]
    Incomplete {
        /// The repository.
        repository: String,
        /// Its first problem.
        problem: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Every blob something in `inventory` references once `plan`'s deletions are gone.
pub fn mark(inventory: &Inventory, plan: &Plan) -> Result<HashSet<Digest>, NotCollected> {
    let mut marked = HashSet::new();
    for repository in &inventory.repositories {
        if let Some(problem) = repository.problems.first() {
            return Err(NotCollected::Incomplete {
                repository: repository.name.to_string(),
                problem: problem.clone(),
            });
        }
        let deleted: HashSet<&Digest> = plan
            .repositories
            .iter()
            .find(|r| r.name == repository.name)
            .map(|r| r.deletions().collect())
            .unwrap_or_default();
        for manifest in repository
            .manifests
            .iter()
            .filter(|m| !deleted.contains(&m.digest))
        {
            marked.insert(manifest.digest.clone());
            marked.extend(manifest.blobs.iter().map(|b| b.digest.clone()));
            marked.extend(manifest.children.iter().map(|c| c.digest.clone()));
        }
    }
    Ok(marked)
}

/// Deletes every blob not in `marked`, `concurrency` requests at a time; in a dry run, counts.
pub async fn collect<W: StorageWriter>(
    writer: &W,
    marked: &HashSet<Digest>,
    concurrency: usize,
    dry_run: bool,
) -> Result<Collected, NotCollected> {
    let root = format!("{LAYOUT_ROOT}/blobs");
    let mut collected = Collected::default();
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for algorithm in ["sha256", "sha512"] {
        let folder = format!("{root}/{algorithm}");
        let tree = writer.files_below(&folder, HEX).await?;
        // Folders a stopped run emptied go now.
        folders.extend(
            tree.empty_folders
                .iter()
                .map(|empty| format!("{folder}/{empty}")),
        );
        let listed = tree.files;
        // A blob is `<2 hex>/<hex>/data`; anything else in its folder goes with it.
        let blob_of = |path: &str| -> Option<(String, Digest)> {
            let mut parts = path.splitn(3, '/');
            let (prefix, hex) = (parts.next()?, parts.next()?);
            let digest = format!("{algorithm}:{hex}").parse().ok()?;
            Some((format!("{prefix}/{hex}"), digest))
        };
        let mut doomed: HashSet<String> = HashSet::new();
        for (path, size) in &listed {
            let Some((blob, digest)) = blob_of(path) else {
                continue;
            };
            if !path.ends_with("/data") || path.matches('/').count() != 2 {
                continue;
            }
            collected.blobs += 1;
            if marked.contains(&digest) {
                collected.marked += 1;
            } else {
                collected.deleted += 1;
                collected.bytes += size;
                doomed.insert(blob);
            }
        }
        for (path, _) in listed {
            if let Some((blob, _)) = blob_of(&path) {
                if doomed.contains(&blob) {
                    files.push(format!("{folder}/{path}"));
                }
            }
        }
    }
    if dry_run {
        return Ok(collected);
    }
    let stops = [format!("{root}/sha256"), format!("{root}/sha512")];
    writer.remove_files(files, &stops, concurrency).await?;
    writer.prune_folders(folders, &stops).await?;
    Ok(collected)
}
