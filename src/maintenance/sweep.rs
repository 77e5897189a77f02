//! sweep: removes from storage exactly what the registry's API would for a plan: for each
//! manifest it deletes, its revision link (distribution's `manifests.Delete` removes the
//! `link` file and leaves its folder) and every tag whose `current/link` names it (the tag's
//! whole folder, `index/` included, as `tags.Untag` does); for each tag it removes from a
//! manifest that stays, that tag's folder. Revision links go first, in the plan's deletion
//! batches (referrers and attachments, then indexes, then images, as a run through the API
//! deletes them), so that a run killed half-way never leaves a signature whose image is gone
//! (kept forever as an attachment without a target) or an index missing a child; then tags:
//! a run killed in between leaves tags that name no revision, which the registry answers 404
//! for and which the next run removes (a *dangling* tag). Nothing outside
//! `docker/registry/v2/repositories/<name>/_manifests/` is touched.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::model::{Action, Digest, Inventory, Plan, RepositoryName, Tag};
use crate::providers::distribution::driver::{StorageError, StorageWriter};
use crate::providers::distribution::links::{parse_link, repository_path, TAG_START};

/// What the storage step removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Manifests whose revision link was removed.
    pub manifests: usize,
    /// Tags removed with their manifests.
    pub tags: usize,
    /// Tags removed from manifests that stay.
    pub untagged: usize,
    /// Tags left naming no revision (by an earlier run stopped half-way), removed.
    pub dangling: usize,
    /// Files removed.
    pub files: usize,
}

fn manifests_folder(repository: &RepositoryName) -> String {
    format!("{}/_manifests", repository_path(repository))
}

fn revision_link(repository: &RepositoryName, digest: &Digest) -> String {
    format!(
        "{}/revisions/{}/{}/link",
        manifests_folder(repository),
        digest.algorithm(),
        digest.hex()
    )
}

/// Per repository: the tags to remove.
type Work = BTreeMap<RepositoryName, BTreeSet<Tag>>;

/// Removes what `plan` deletes and untags from the storage `inventory` was read from (every
/// repository, to find dangling tags), `concurrency` requests at a time; in a dry run, counts.
pub async fn sweep<W: StorageWriter>(
    writer: &W,
    inventory: &Inventory,
    plan: &Plan,
    concurrency: usize,
    dry_run: bool,
) -> Result<Swept, StorageError> {
    let mut swept = Swept::default();
    let mut work: Work = BTreeMap::new();
    // The revision links, batch by batch: batch `i` of every repository together.
    let mut batches: Vec<Vec<String>> = Vec::new();
    for repository_plan in &plan.repositories {
        let Some(repository) = inventory
            .repositories
            .iter()
            .find(|r| r.name == repository_plan.name)
        else {
            continue;
        };
        let tags = work.entry(repository.name.clone()).or_default();
        for (manifest, decision) in repository.manifests.iter().zip(&repository_plan.decisions) {
            if decision.action == Action::Delete {
                swept.manifests += 1;
                swept.tags += manifest.tags.len();
                tags.extend(manifest.tags.iter().cloned());
            }
        }
        for (i, batch) in repository_plan.deletion_batches.iter().enumerate() {
            if batches.len() <= i {
                batches.resize_with(i + 1, Vec::new);
            }
            batches[i].extend(batch.iter().map(|d| revision_link(&repository.name, d)));
        }
        for untag in repository_plan.untags() {
            swept.untagged += 1;
            tags.insert(untag.tag.clone());
        }
    }
    // Every repository's tag files, in one listing each: dangling tags are found in them,
    // and the files of the tags to remove.
    // Per repository: the files below `tags/`, and its empty folders.
    let mut tag_files: BTreeMap<RepositoryName, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for repository in &inventory.repositories {
        let folder = format!("{}/tags", manifests_folder(&repository.name));
        let tree = writer.files_below(&folder, TAG_START).await?;
        let listed: Vec<String> = tree.files.into_iter().map(|(path, _)| path).collect();
        // Dangling: a tag whose current link names no revision of its repository (the
        // registry answers 404 for it; a run stopped between revisions and tags leaves one).
        let revisions: HashSet<&Digest> = repository.manifests.iter().map(|m| &m.digest).collect();
        let tagged: BTreeSet<&str> = repository
            .manifests
            .iter()
            .flat_map(|m| m.tags.iter().map(String::as_str))
            .collect();
        // A tag folder without a current link (a run stopped while removing a tag's files
        // leaves one) is listed by the registry yet never resolves: dangling too.
        let current: BTreeSet<&str> = listed
            .iter()
            .filter_map(|path| path.strip_suffix("/current/link"))
            .collect();
        let tag_of = |path: &'_ str| path.split('/').next().unwrap_or_default().to_string();
        for tag in listed
            .iter()
            .map(|path| tag_of(path))
            .chain(tree.empty_folders.iter().map(|path| tag_of(path)))
            .filter(|tag| !current.contains(tag.as_str()) && !tagged.contains(tag.as_str()))
            .collect::<BTreeSet<_>>()
        {
            swept.dangling += 1;
            work.entry(repository.name.clone())
                .or_default()
                .insert(tag.to_string());
        }
        let candidates: Vec<&str> = current
            .iter()
            .copied()
            .filter(|tag| !tag.contains('/') && !tagged.contains(tag))
            .collect();
        for tag in candidates {
            let link = format!("{folder}/{tag}/current/link");
            let named = writer
                .read(&link)
                .await
                .ok()
                .and_then(|bytes| parse_link(&bytes).ok());
            // A link that cannot be read or names a revision that is there is left alone.
            if named.is_some_and(|digest| !revisions.contains(&digest)) {
                swept.dangling += 1;
                work.entry(repository.name.clone())
                    .or_default()
                    .insert(tag.to_string());
            }
        }
        tag_files.insert(repository.name.clone(), (listed, tree.empty_folders));
    }
    if dry_run {
        return Ok(swept);
    }

    // Revision links first, every repository's, one batch after the other; their folders
    // stay, as the registry's own deletion leaves them.
    for links in batches {
        swept.files += links.len();
        writer.remove_files(links, &[], concurrency).await?;
    }

    // Then the tags of every repository together: their files (from the listing above) and
    // the folders they leave, and the folders a stopped run left empty.
    let mut files = Vec::new();
    let mut empty_folders = Vec::new();
    let mut stops = Vec::new();
    for (repository, tags) in &work {
        if tags.is_empty() {
            continue;
        }
        let folder = format!("{}/tags", manifests_folder(repository));
        let (listed, empty) = tag_files.remove(repository).unwrap_or_default();
        let of_a_tag = |path: &String| tags.contains(path.split('/').next().unwrap_or_default());
        files.extend(
            listed
                .into_iter()
                .filter(of_a_tag)
                .map(|path| format!("{folder}/{path}")),
        );
        empty_folders.extend(
            empty
                .iter()
                .filter(|p| of_a_tag(p))
                .map(|p| format!("{folder}/{p}")),
        );
        stops.push(folder);
    }
    swept.files += files.len();
    // The current links last: a tag stopped half-way still names its (gone) revision, and
    // the next run finds it dangling.
    let (current, others): (Vec<String>, Vec<String>) = files
        .into_iter()
        .partition(|file| file.ends_with("/current/link"));
    writer.remove_files(others, &stops, concurrency).await?;
    writer.remove_files(current, &stops, concurrency).await?;
    writer.prune_folders(empty_folders, &stops).await?;
    Ok(swept)
}
