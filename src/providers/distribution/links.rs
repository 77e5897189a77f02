//! Where the registry keeps things below the storage root, and its link files: tag and
//! revision links, proved by the ETag their listing gives (S3) or read, in batches.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use super::driver::{StorageDriver, StorageError, Timed};
use crate::model::{Digest, RepositoryName, Tag};

/// The registry's own prefix below the storage root.
pub const LAYOUT_ROOT: &str = "docker/registry/v2";

/// Where the repositories are.
pub(super) fn repositories_path() -> String {
    format!("{LAYOUT_ROOT}/repositories")
}

/// Where repository `name` is.
pub(crate) fn repository_path(name: &RepositoryName) -> String {
    format!("{LAYOUT_ROOT}/repositories/{name}")
}

/// Files read per batch: large enough that per-batch costs vanish, small enough that
/// batches spread over the workers.
pub(super) const BATCH: usize = 256;

/// Reads `paths` in batches, `concurrency` batches at a time; results in the order of `paths`.
async fn read_batched<S: StorageDriver>(
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

/// Parses a `link` file: exactly a digest (a trailing newline is tolerated).
pub fn parse_link(bytes: &[u8]) -> Result<Digest, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "link file is not text".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.parse::<Digest>().map_err(|e| e.to_string())
}

/// Characters a revision or blob folder's name starts with: hex digits.
pub(crate) const HEX: &str = "0123456789abcdef";

/// Characters a tag starts with (`[A-Za-z0-9_]`, the distribution spec's tag grammar).
pub(crate) const TAG_START: &str =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// The hex MD5 of a link file holding `digest`: what S3 gives as the ETag of such a file
/// uploaded in one part, as the registry writes them.
fn link_etag(digest: &Digest) -> String {
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
    tags_from(driver, files, likely, concurrency, problems)
        .await
        .into_iter()
        .map(|(digest, tags)| (digest, tags.into_iter().collect()))
        .collect()
}

async fn tags_from<S: StorageDriver>(
    driver: &S,
    files: Vec<LinkFile>,
    likely: &HashSet<Digest>,
    concurrency: usize,
    problems: &mut Vec<String>,
) -> HashMap<Digest, Vec<Tag>> {
    let by_etag: HashMap<String, &Digest> = if files.iter().any(|f| f.etag.is_some()) {
        likely.iter().map(|d| (link_etag(d), d)).collect()
    } else {
        HashMap::new()
    };
    let proves = |_: &LinkFile, etag: &str| by_etag.get(etag).map(|d| (*d).clone());
    // A Vec per digest, not a set: a folder listing names each tag once, and most manifests
    // have one tag (a set's node would be ten times its size).
    let mut tags: HashMap<Digest, Vec<Tag>> = HashMap::new();
    for (file, value) in resolve_links(driver, files, proves, concurrency).await {
        match value {
            LinkValue::Digest(digest, _) => {
                // The revision's own copy of the digest, not one more per tag.
                let digest = likely.get(&digest).cloned().unwrap_or(digest);
                tags.entry(digest)
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(file.name);
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
pub(super) struct Revision {
    /// Its digest.
    pub(super) digest: Digest,
    /// When its link was written, when the storage says.
    pub(super) pushed: Option<DateTime<Utc>>,
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
pub(super) async fn read_repository<S: StorageDriver>(
    driver: &S,
    name: &RepositoryName,
    concurrency: usize,
) -> (Vec<Revision>, HashMap<Digest, Vec<Tag>>, Vec<String>) {
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
}
