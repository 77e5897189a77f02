//! layout: reads the distribution registry's storage layout into an `Inventory`.
//!
//! Layout (under the storage root): `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`,
//! `docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link` and
//! `…/_manifests/tags/<tag>/current/link`. A folder holding `_manifests` is a repository; other
//! names starting with `_` are not; repositories nest (`team/app` and `team/app/api`).
//!
//! Fails closed: whatever cannot be read or understood becomes a problem of its repository, and
//! the planner deletes nothing in a repository with problems. Reads only; never deletes.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use super::driver::{StorageDriver, StorageError, Timed};
use crate::manifest::{manifest_from_document, parse_config, parse_document, with_parsed_config};
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

/// Characters a revision folder's name starts with: hex digits.
const HEX: &str = "0123456789abcdef";

/// Characters a tag starts with (`[A-Za-z0-9_]`, the distribution spec's tag grammar).
const TAG_START: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// The hex MD5 of a link file holding `digest`: what S3 gives as the ETag of such a file
/// uploaded in one part, as the registry writes them.
pub fn link_etag(digest: &Digest) -> String {
    use md5::Digest as _;
    md5::Md5::digest(digest.as_str().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `<name>/<link>` file of a folder, as listed.
struct LinkFile {
    /// The folder it is filed under (a tag, a revision's hex).
    name: String,
    /// Its path from the storage root.
    path: String,
    /// The store's ETag, when its listing gives one.
    etag: Option<String>,
    /// When it was written, when its listing says.
    modified: Option<DateTime<Utc>>,
}

/// What a link file holds.
enum LinkValue {
    /// A digest, and when the link was written.
    Digest(Digest, Option<DateTime<Utc>>),
    /// Nothing: the link is not there (a deleted revision, a tag without `current`).
    Gone,
    /// It cannot be read or is not a digest.
    Problem(String),
}

/// The `<name>/<link>` files of `folder`: in one listing with their ETags where the driver
/// has one (S3), else folder by folder. A missing folder has none.
async fn list_links<S: StorageDriver>(
    driver: &S,
    folder: &str,
    link: &str,
    alphabet: &str,
) -> Result<Vec<LinkFile>, StorageError> {
    let suffix = format!("/{link}");
    match driver.list_tree(folder, alphabet).await {
        Some(Ok(files)) => Ok(files
            .into_iter()
            .filter_map(|file| {
                let name = file.path.strip_suffix(&suffix)?;
                (!name.is_empty() && !name.contains('/')).then(|| LinkFile {
                    name: name.to_string(),
                    path: format!("{folder}/{}", file.path),
                    etag: file.etag,
                    modified: file.modified,
                })
            })
            .collect()),
        Some(Err(StorageError::NotFound { .. })) => Ok(Vec::new()),
        Some(Err(error)) => Err(error),
        None => match driver.list(folder).await {
            Ok(entries) => Ok(entries
                .into_iter()
                .filter(|e| e.is_folder)
                .map(|e| LinkFile {
                    path: format!("{folder}/{}/{link}", e.name),
                    name: e.name,
                    etag: None,
                    modified: None,
                })
                .collect()),
            Err(StorageError::NotFound { .. }) => Ok(Vec::new()),
            Err(error) => Err(error),
        },
    }
}

/// What each link file holds. A file whose ETag is the MD5 of a digest it may hold (as
/// `proves` finds) is not read: its listing proved its content. The rest are read in batches.
async fn resolve_links<S: StorageDriver>(
    driver: &S,
    files: Vec<LinkFile>,
    proves: impl Fn(&LinkFile, &str) -> Option<Digest>,
    concurrency: usize,
) -> Vec<(LinkFile, LinkValue)> {
    let mut resolved = Vec::with_capacity(files.len());
    let mut to_read = Vec::new();
    for file in files {
        match file.etag.as_deref().and_then(|etag| proves(&file, etag)) {
            Some(digest) => {
                let modified = file.modified;
                resolved.push((file, LinkValue::Digest(digest, modified)));
            }
            None => to_read.push(file),
        }
    }
    if to_read.iter().any(|f| f.etag.is_some()) {
        tracing::debug!(
            links = to_read.len(),
            first = %to_read[0].path,
            "reading link files whose ETag is not the MD5 of a digest they could hold \
             (a multipart upload, SSE-KMS encryption, a tag of a missing revision, or a \
             corrupt link)"
        );
    }
    let paths = to_read.iter().map(|f| f.path.clone()).collect();
    let reads = read_batched(driver, paths, concurrency).await;
    for (file, read) in to_read.into_iter().zip(reads) {
        let value = match read {
            Ok((bytes, modified)) => match parse_link(&bytes) {
                Ok(digest) => LinkValue::Digest(digest, modified),
                Err(e) => LinkValue::Problem(format!("`{}`: {e}", file.path)),
            },
            Err(StorageError::NotFound { .. }) => LinkValue::Gone,
            Err(error) => LinkValue::Problem(error.to_string()),
        };
        resolved.push((file, value));
    }
    resolved
}

/// Reads the tags of a repository: digest → tags. `likely` are the digests its tags probably
/// point at (its revisions): a tag link whose ETag is the MD5 of one of them is not read.
/// Tags whose `current/link` is missing are not tags (the registry answers 404 for them);
/// unreadable ones are reported in `problems`.
pub async fn read_tags<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    likely: &HashSet<Digest>,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> HashMap<Digest, BTreeSet<Tag>> {
    let tags_path = format!("{}/_manifests/tags", repository_path(name));
    let files = match list_links(driver, &tags_path, "current/link", TAG_START).await {
        Ok(files) => files,
        Err(error) => {
            problems.push(error.to_string());
            return HashMap::new();
        }
    };
    tags_from(driver, files, likely, concurrency, problems).await
}

async fn tags_from<S: StorageDriver>(
    driver: &S,
    files: Vec<LinkFile>,
    likely: &HashSet<Digest>,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> HashMap<Digest, BTreeSet<Tag>> {
    let by_etag: HashMap<String, &Digest> = if files.iter().any(|f| f.etag.is_some()) {
        likely.iter().map(|d| (link_etag(d), d)).collect()
    } else {
        HashMap::new()
    };
    let proves = |_: &LinkFile, etag: &str| by_etag.get(etag).map(|d| (*d).clone());
    let mut tags: HashMap<Digest, BTreeSet<Tag>> = HashMap::new();
    for (file, value) in resolve_links(driver, files, proves, concurrency).await {
        match value {
            LinkValue::Digest(digest, _) => {
                tags.entry(digest).or_default().insert(file.name);
            }
            LinkValue::Gone => {}
            LinkValue::Problem(message) => problems.push(format!("tag `{}`: {message}", file.name)),
        }
    }
    tags
}

/// The digest a revision folder's name says its link holds, if its ETag proves it.
fn revision_proved(file: &LinkFile, etag: &str) -> Option<Digest> {
    let digest: Digest = format!("sha256:{}", file.name).parse().ok()?;
    (link_etag(&digest) == etag).then_some(digest)
}

/// A revision found in a repository: its digest and when its link was written.
struct Revision {
    digest: Digest,
    pushed: Option<DateTime<Utc>>,
}

fn revisions_from(
    resolved: Vec<(LinkFile, LinkValue)>,
    problems: &mut Vec<String>,
) -> Vec<Revision> {
    let mut revisions = Vec::new();
    for (file, value) in resolved {
        match value {
            LinkValue::Digest(digest, pushed) if digest.hex() == file.name => {
                revisions.push(Revision { digest, pushed })
            }
            LinkValue::Digest(digest, _) => problems.push(format!(
                "`{}` names `{digest}`, not the revision it is filed under",
                file.path
            )),
            // The registry removes the link, not its folder, when a manifest is deleted: a
            // folder without a link is a deleted revision.
            LinkValue::Gone => {}
            LinkValue::Problem(message) => problems.push(message),
        }
    }
    revisions
}

fn revisions_path(name: &RepositoryName) -> String {
    format!("{}/_manifests/revisions/sha256", repository_path(name))
}

/// A repository's revisions and tags: both folders listed side by side, then the links
/// their listings do not prove read.
async fn read_repository<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    concurrency: usize,
) -> (Vec<Revision>, HashMap<Digest, BTreeSet<Tag>>, Vec<String>) {
    let revisions_path = revisions_path(name);
    let tags_path = format!("{}/_manifests/tags", repository_path(name));
    let (revision_files, tag_files) = futures::join!(
        list_links(driver, &revisions_path, "link", HEX),
        list_links(driver, &tags_path, "current/link", TAG_START),
    );
    let mut problems = Vec::new();
    let revisions = match revision_files {
        Ok(files) => {
            let resolved = resolve_links(driver, files, revision_proved, concurrency).await;
            revisions_from(resolved, &mut problems)
        }
        Err(error) => {
            problems.push(error.to_string());
            Vec::new()
        }
    };
    let likely: HashSet<Digest> = revisions.iter().map(|r| r.digest.clone()).collect();
    let tags = match tag_files {
        Ok(files) => tags_from(driver, files, &likely, concurrency, &mut problems).await,
        Err(error) => {
            problems.push(error.to_string());
            HashMap::new()
        }
    };
    (revisions, tags, problems)
}

/// Manifests a repository holds now that are not in `known`: revision folders whose digest is
/// unknown and whose `link` exists (the registry leaves the folder when it deletes a revision).
pub async fn new_revisions<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    known: &HashSet<Digest>,
    concurrency: usize,
) -> Result<Vec<Digest>, String> {
    let files = list_links(driver, &revisions_path(name), "link", HEX)
        .await
        .map_err(|e| e.to_string())?;
    let unknown: Vec<LinkFile> = files
        .into_iter()
        .filter(|f| {
            format!("sha256:{}", f.name)
                .parse::<Digest>()
                .is_ok_and(|d| !known.contains(&d))
        })
        .collect();
    let mut found = Vec::new();
    for (_, value) in resolve_links(driver, unknown, revision_proved, concurrency).await {
        match value {
            LinkValue::Digest(digest, _) => found.push(digest),
            LinkValue::Gone => {}
            LinkValue::Problem(message) => return Err(message),
        }
    }
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
    let batches: Vec<Vec<Digest>> = digests.chunks(BATCH).map(<[Digest]>::to_vec).collect();
    let parse = &parse;
    stream::iter(batches)
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
        .flat_map(stream::iter)
        .collect()
        .await
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
    HashMap<Digest, BTreeSet<Tag>>,
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

    // Every distinct manifest, once.
    let mut distinct: Vec<Digest> = listed
        .iter()
        .flat_map(|(_, revisions, _, _)| revisions.iter().map(|r| r.digest.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    distinct.sort_unstable();
    let reading = progress.phase("read", "manifests", distinct.len() as u64);
    let mut documents = read_blobs(
        driver,
        distinct,
        concurrency,
        |digest, read| {
            let bytes = read.map_err(|e| format!("manifest `{digest}`: {e}"))?;
            manifest_from_document(digest, &bytes)
        },
        &reading,
    )
    .await;
    reading.finish();
    // How many repositories still want each document: the last takes it, the others clone.
    let mut wanted: HashMap<Digest, usize> = HashMap::new();
    for (_, revisions, _, _) in &listed {
        for revision in revisions {
            *wanted.entry(revision.digest.clone()).or_default() += 1;
        }
    }

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
                Some(Ok((mut manifest, config))) => {
                    manifest.pushed = revision.pushed;
                    if let Some(tags) = tags.remove(&manifest.digest) {
                        manifest.tags = tags.into_iter().collect();
                    }
                    manifests.push((manifest, config));
                }
                Some(Err(problem)) => problems.push(problem),
                None => problems.push(format!("manifest `{}`: not read", revision.digest)),
            }
        }
        // Tags left over point at a digest with no revision: the registry itself answers
        // 404 for them, so they protect nothing and are not reported as problems.
        staged.push((name, manifests, problems));
    }
    let mut configs: Vec<Digest> = staged
        .iter()
        .flat_map(|(_, manifests, _)| {
            configs_needed(manifests)
                .into_iter()
                .zip(manifests.iter())
                .filter_map(|(needed, (_, config))| config.clone().filter(|_| needed))
                .collect::<Vec<_>>()
        })
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
        let needed = configs_needed(&manifests);
        let mut notes = Vec::new();
        let mut complete = Vec::with_capacity(manifests.len());
        for ((manifest, config), needed) in manifests.into_iter().zip(needed) {
            let read = match config.filter(|_| needed) {
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
