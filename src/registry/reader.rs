//! reader: reads a registry through its API: the catalog, tags, manifests by tag and by
//! digest (all four manifest types accepted), the children of indexes, image configs and
//! referrers (`/v2/<name>/referrers/<digest>` where the registry has that API; elsewhere the
//! `sha256-<hex>` fallback tags are ordinary tags). Pages are followed through `Link` headers
//! only (a short page is never taken for the last one) and on the registry's origin only.
//! Reads only. Fails closed: whatever cannot be read is a problem of its repository.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};
use reqwest::{header, StatusCode};
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use crate::manifest::{manifest_from_document, with_config, MANIFEST_ACCEPT};
use crate::model::{Digest, Manifest, Repository, RepositoryName, Tag};
use crate::registry::client::RegistryClient;
use crate::registry::error::RegistryError;
use crate::registry::paging::{self, next_link, Page};
use crate::registry::token::{repository_scope, Action, CATALOG_SCOPE};

/// Entries asked for per page (`n`); the distribution spec lets servers return fewer.
pub const PAGE_SIZE: usize = 1000;

/// The most manifests one repository may hold before discovery gives up on it (fail closed).
const MAX_MANIFESTS: usize = 1_000_000;

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ReferrersPage {
    #[serde(default)]
    manifests: Vec<ReferrerDescriptor>,
}

#[derive(Deserialize)]
struct ReferrerDescriptor {
    digest: String,
}

/// Follows a listing's pages from `first`; `entries` takes one page's names out of its body.
/// `None` when the first page is 404 (the listing does not exist).
async fn paged(
    client: &RegistryClient,
    first: Url,
    scope: &str,
    what: &str,
    entries: fn(&[u8]) -> Result<Vec<String>, String>,
) -> Result<Option<Vec<String>>, RegistryError> {
    let invalid = |message: String| RegistryError::Invalid {
        registry: client.display().to_string(),
        action: what.to_string(),
        message,
    };
    paging::collect(first, |url, number| async move {
        let answer = client
            .get(url.clone(), Some("application/json"), scope)
            .await
            .map_err(PagedError::Registry)?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND if number == 1 => return Ok(None),
            _ => {
                return Err(PagedError::Registry(client.unexpected_answer(
                    what.to_string(),
                    &answer,
                    scope,
                )))
            }
        }
        let items = entries(&answer.body)
            .map_err(invalid)
            .map_err(PagedError::Registry)?;
        Ok(Some(Page {
            items,
            next: next_link(&answer.headers, &url),
        }))
    })
    .await
    .map_err(|error| match error {
        PagedError::Registry(error) => error,
        PagedError::Paging(error) => RegistryError::paging(client.display(), what, error),
    })
}

/// A registry error or a paging error, while pages are followed.
enum PagedError {
    Registry(RegistryError),
    Paging(paging::PagingError),
}

impl From<paging::PagingError> for PagedError {
    fn from(error: paging::PagingError) -> Self {
        PagedError::Paging(error)
    }
}

/// Every repository in `/v2/_catalog`, sorted.
pub async fn catalog(client: &RegistryClient) -> Result<Vec<RepositoryName>, RegistryError> {
    let mut url = client.url("/v2/_catalog");
    url.query_pairs_mut()
        .append_pair("n", &PAGE_SIZE.to_string());
    let names = paged(client, url, CATALOG_SCOPE, "GET /v2/_catalog", |body| {
        serde_json::from_slice::<CatalogPage>(body)
            .map(|page| page.repositories.unwrap_or_default())
            .map_err(|e| format!("not a catalog page: {e}"))
    })
    .await?
    .unwrap_or_default();
    let mut repositories = Vec::with_capacity(names.len());
    for name in names {
        match name.parse::<RepositoryName>() {
            Ok(name) => repositories.push(name),
            Err(error) => tracing::warn!(%error, "catalog lists an invalid repository name"),
        }
    }
    repositories.sort();
    repositories.dedup();
    Ok(repositories)
}

/// Every tag of `repository` through `tags/list`; `None` when the repository does not exist.
pub async fn list_tags(
    client: &RegistryClient,
    repository: &RepositoryName,
) -> Result<Option<Vec<Tag>>, RegistryError> {
    let mut url = client.url(&format!("/v2/{repository}/tags/list"));
    url.query_pairs_mut()
        .append_pair("n", &PAGE_SIZE.to_string());
    let scope = repository_scope(repository, Action::Pull);
    let what = format!("list the tags of `{repository}`");
    let tags = paged(client, url, &scope, &what, |body| {
        serde_json::from_slice::<TagsPage>(body)
            .map(|page| page.tags.unwrap_or_default())
            .map_err(|e| format!("not a tag list: {e}"))
    })
    .await?;
    Ok(tags.map(|mut tags| {
        tags.sort();
        tags.dedup();
        tags
    }))
}

/// The digest a tag points at now (`HEAD`, `Docker-Content-Digest`; a `GET` when the registry
/// does not send that header). `None` when the tag does not exist.
pub async fn resolve_tag(
    client: &RegistryClient,
    repository: &RepositoryName,
    tag: &str,
) -> Result<Option<Digest>, RegistryError> {
    let scope = repository_scope(repository, Action::Pull);
    let url = client.url(&format!("/v2/{repository}/manifests/{tag}"));
    let answer = client.head(url, Some(MANIFEST_ACCEPT), &scope).await?;
    match answer.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Ok(None),
        _ => {
            return Err(client.unexpected_answer(
                format!("resolve tag `{tag}` of `{repository}`"),
                &answer,
                &scope,
            ))
        }
    }
    if let Some(digest) = answer
        .header(header::HeaderName::from_static("docker-content-digest"))
        .and_then(|v| v.trim().parse::<Digest>().ok())
    {
        return Ok(Some(digest));
    }
    Ok(client
        .get_manifest(repository, tag)
        .await?
        .map(|bytes| Digest::sha256_of(&bytes)))
}

/// The manifests referring to `digest` (OCI 1.1 referrers API), following pages. `None` when
/// the registry has no referrers API (it answers 404, which the spec forbids a registry that
/// has one to do).
pub async fn referrers(
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Option<Vec<Digest>>, RegistryError> {
    let url = client.url(&format!("/v2/{repository}/referrers/{digest}"));
    let scope = repository_scope(repository, Action::Pull);
    let what = format!("list the referrers of `{digest}` in `{repository}`");
    let Some(found) = paged(client, url, &scope, &what, |body| {
        let page: ReferrersPage =
            serde_json::from_slice(body).map_err(|e| format!("not an image index: {e}"))?;
        Ok(page.manifests.into_iter().map(|d| d.digest).collect())
    })
    .await?
    else {
        return Ok(None);
    };
    let mut digests = Vec::with_capacity(found.len());
    for text in found {
        digests.push(text.parse::<Digest>().map_err(|e| RegistryError::Invalid {
            registry: client.display().to_string(),
            action: what.clone(),
            message: format!("invalid digest `{text}`: {e}"),
        })?);
    }
    Ok(Some(digests))
}

/// A blob's content (`GET /v2/<name>/blobs/<digest>`), checked against its digest.
async fn get_blob(
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<u8>, String> {
    let scope = repository_scope(repository, Action::Pull);
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let answer = client
        .get(url, None, &scope)
        .await
        .map_err(|e| e.to_string())?;
    match answer.status {
        StatusCode::OK if digest.matches(&answer.body) => Ok(answer.body.to_vec()),
        StatusCode::OK => Err("content does not match its digest".into()),
        StatusCode::NOT_FOUND => Err("not found in the registry".into()),
        _ => Err(client
            .unexpected_answer(format!("read blob `{digest}`"), &answer, &scope)
            .to_string()),
    }
}

/// Reads through the API, with at most `concurrency` requests in flight in the whole run and
/// the referrers API given up on after the registry's first 404.
pub struct Reader<'a> {
    client: &'a RegistryClient,
    permits: Semaphore,
    referrers_api: AtomicBool,
}

/// A manifest read by digest, with the referrers found for it.
type Fetched = (Digest, Result<Option<bytes::Bytes>, String>, Vec<Digest>);

impl<'a> Reader<'a> {
    /// A reader with at most `concurrency` requests in flight.
    pub fn new(client: &'a RegistryClient, concurrency: usize) -> Self {
        Reader {
            client,
            permits: Semaphore::new(concurrency.max(1)),
            referrers_api: AtomicBool::new(true),
        }
    }

    async fn fetch(
        &self,
        repository: &RepositoryName,
        digest: Digest,
        known: Option<bytes::Bytes>,
    ) -> Fetched {
        let bytes = match known {
            Some(bytes) => Ok(Some(bytes)),
            None => {
                let _permit = self.permits.acquire().await;
                client_manifest(self.client, repository, &digest).await
            }
        };
        let mut found = Vec::new();
        if self.referrers_api.load(Ordering::Relaxed) && matches!(bytes, Ok(Some(_))) {
            let _permit = self.permits.acquire().await;
            match referrers(self.client, repository, &digest).await {
                Ok(Some(digests)) => found = digests,
                Ok(None) => {
                    tracing::info!("no referrers API (404): referrers are found by their tags");
                    self.referrers_api.store(false, Ordering::Relaxed);
                }
                Err(error) => {
                    let problem = format!("referrers of `{digest}`: {error}");
                    return (digest, Err(problem), Vec::new());
                }
            }
        }
        (digest, bytes, found)
    }

    async fn tagged(
        &self,
        repository: &RepositoryName,
        tag: Tag,
    ) -> (Tag, Result<Option<bytes::Bytes>, String>) {
        let _permit = self.permits.acquire().await;
        let read = self
            .client
            .get_manifest(repository, &tag)
            .await
            .map_err(|e| format!("tag `{tag}`: {e}"));
        (tag, read)
    }

    async fn config(
        &self,
        repository: &RepositoryName,
        index: usize,
        config: Digest,
    ) -> (usize, Digest, Result<Vec<u8>, String>) {
        let _permit = self.permits.acquire().await;
        let read = get_blob(self.client, repository, &config).await;
        (index, config, read)
    }

    /// One repository: its tags, their manifests and everything those reach; `None` when it
    /// does not exist. Errors that every further request would repeat (refused credentials,
    /// a stopped run) end the reading; any other becomes a problem of the repository.
    pub async fn repository(
        &self,
        name: RepositoryName,
        concurrency: usize,
    ) -> Result<Option<Repository>, RegistryError> {
        let mut repository = Repository {
            name: name.clone(),
            manifests: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let listed = {
            let _permit = self.permits.acquire().await;
            list_tags(self.client, &name).await
        };
        let tags = match listed {
            Ok(Some(tags)) => tags,
            Ok(None) => return Ok(None),
            Err(error) if error.is_fatal() || matches!(error, RegistryError::Halted(_)) => {
                return Err(error)
            }
            Err(error) => {
                repository.problems.push(error.to_string());
                return Ok(Some(repository));
            }
        };

        // Every tag's manifest, grouped by digest.
        let reads: Vec<_> = stream::iter(tags)
            .map(|tag| self.tagged(&name, tag))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut tags_of: HashMap<Digest, BTreeSet<Tag>> = HashMap::new();
        let mut pending: Vec<(Digest, Option<bytes::Bytes>)> = Vec::new();
        let concurrency = concurrency.max(1);
        for (tag, read) in reads {
            match read {
                Ok(Some(bytes)) => {
                    let digest = Digest::sha256_of(&bytes);
                    let tags = tags_of.entry(digest.clone()).or_default();
                    if tags.is_empty() {
                        pending.push((digest, Some(bytes)));
                    }
                    tags.insert(tag);
                }
                // Deleted since the listing: not a tag any more.
                Ok(None) => {}
                Err(problem) => repository.problems.push(problem),
            }
        }

        self.load(&mut repository, tags_of, pending, concurrency)
            .await;
        Ok(Some(repository))
    }

    /// Reads the manifests in `pending` (their bytes when already fetched), everything they
    /// reach (children, referrers) and the image configs into `repository`, tagged as
    /// `tags_of` says. Whatever cannot be read becomes a problem of the repository, and so
    /// does a manifest of `pending` the registry answers 404 for: the provider listed it, so
    /// the listing and the registry disagree (a child an index lists that is not there is
    /// nothing to protect, and is skipped).
    pub async fn load(
        &self,
        repository: &mut Repository,
        tags_of: HashMap<Digest, BTreeSet<Tag>>,
        pending: Vec<(Digest, Option<bytes::Bytes>)>,
        concurrency: usize,
    ) {
        self.load_waves(repository, tags_of, pending, true, concurrency)
            .await
    }

    /// Adds the manifests in `digests` to `repository` (untagged, with everything they
    /// reach), where the registry has them: for manifests a provider's listing cannot show
    /// (GitLab lists tags only, so an untagged image a signature names). One the registry
    /// does not have is skipped.
    pub async fn load_unlisted(
        &self,
        repository: &mut Repository,
        digests: Vec<Digest>,
        concurrency: usize,
    ) {
        let known: HashSet<&Digest> = repository.manifests.iter().map(|m| &m.digest).collect();
        let pending: Vec<(Digest, Option<bytes::Bytes>)> = digests
            .into_iter()
            .filter(|d| !known.contains(d))
            .map(|d| (d, None))
            .collect();
        if pending.is_empty() {
            return;
        }
        self.load_waves(repository, HashMap::new(), pending, false, concurrency)
            .await
    }

    async fn load_waves(
        &self,
        repository: &mut Repository,
        mut tags_of: HashMap<Digest, BTreeSet<Tag>>,
        mut pending: Vec<(Digest, Option<bytes::Bytes>)>,
        listed: bool,
        concurrency: usize,
    ) {
        let name = repository.name.clone();
        let listed: HashSet<Digest> = if listed {
            pending.iter().map(|(d, _)| d.clone()).collect()
        } else {
            HashSet::new()
        };
        // The listed manifests, then what they reach (children, referrers), wave by wave;
        // each digest once, so the loop ends. What the repository already holds is known.
        let mut seen: HashSet<Digest> = pending
            .iter()
            .map(|(d, _)| d.clone())
            .chain(repository.manifests.iter().map(|m| m.digest.clone()))
            .collect();
        let mut staged: Vec<(Manifest, Option<Digest>)> = Vec::new();
        // What the referrers API listed each referrer for. A manifest without a `subject`
        // of its own (a cosign `.sig` or `.att`, which Harbor lists as an accessory and whose
        // `sha256-…` tag it hides) belongs to what it was listed for: without that link a
        // signature of a kept index's child would look like a loose untagged manifest.
        let mut referrer_of: HashMap<Digest, Digest> = HashMap::new();
        while !pending.is_empty() {
            let wave = std::mem::take(&mut pending);
            let fetched: Vec<Fetched> = stream::iter(wave)
                .map(|(digest, bytes)| self.fetch(&name, digest, bytes))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for (digest, read, found) in fetched {
                let bytes = match read {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) if listed.contains(&digest) => {
                        repository.problems.push(format!(
                            "manifest `{digest}`: listed, but the registry answers 404 \
                             (manifest unknown): the listing and the registry disagree"
                        ));
                        continue;
                    }
                    // A child the index lists is not in the registry: nothing to protect.
                    Ok(None) => continue,
                    Err(problem) => {
                        repository.problems.push(problem);
                        continue;
                    }
                };
                let (manifest, config) = match manifest_from_document(&digest, &bytes) {
                    Ok(staged) => staged,
                    Err(problem) => {
                        repository.problems.push(problem);
                        continue;
                    }
                };
                for referrer in &found {
                    if *referrer != digest {
                        referrer_of
                            .entry(referrer.clone())
                            .or_insert_with(|| digest.clone());
                    }
                }
                let reached = manifest.children.iter().map(|c| c.digest.clone());
                for next in reached.chain(found) {
                    if seen.insert(next.clone()) {
                        pending.push((next, None));
                    }
                }
                staged.push((manifest, config));
            }
            if seen.len() > MAX_MANIFESTS {
                repository.problems.push(format!(
                    "more than {MAX_MANIFESTS} manifests reachable from its tags; not read further"
                ));
                break;
            }
        }

        // Image configs: when each image was built, and for which platform.
        let wanted: Vec<(usize, Digest)> = staged
            .iter()
            .enumerate()
            .filter_map(|(i, (_, config))| config.clone().map(|c| (i, c)))
            .collect();
        let mut configs: HashMap<usize, (Digest, Result<Vec<u8>, String>)> = stream::iter(wanted)
            .map(|(index, config)| self.config(&name, index, config))
            .buffer_unordered(concurrency)
            .map(|(index, config, read)| (index, (config, read)))
            .collect()
            .await;
        for (index, (mut manifest, _)) in staged.into_iter().enumerate() {
            if let Some((config, read)) = configs.remove(&index) {
                match with_config(manifest, &config, read) {
                    Ok((completed, note)) => {
                        manifest = completed;
                        repository.notes.extend(note);
                    }
                    Err(problem) => {
                        repository.problems.push(problem);
                        continue;
                    }
                }
            }
            if let Some(tags) = tags_of.remove(&manifest.digest) {
                manifest.tags = tags.into_iter().collect();
            }
            if manifest.subject.is_none() {
                manifest.subject = referrer_of.get(&manifest.digest).cloned();
            }
            repository.manifests.push(manifest);
        }
        repository.manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        repository.problems.sort();
        repository.notes.sort();
    }
}

/// `GET` of a manifest by digest, checked against it; `None` on 404.
async fn client_manifest(
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Option<bytes::Bytes>, String> {
    match client.get_manifest(repository, digest.as_str()).await {
        Ok(Some(bytes)) if digest.matches(&bytes) => Ok(Some(bytes)),
        Ok(Some(_)) => Err(format!(
            "manifest `{digest}`: the registry's answer does not match its digest"
        )),
        Ok(None) => Ok(None),
        Err(error) => Err(format!("manifest `{digest}`: {error}")),
    }
}

/// The children a manifest lists now, read through the API (empty when it is gone).
pub async fn manifest_children(
    client: &RegistryClient,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<Digest>, String> {
    let Some(bytes) = client_manifest(client, repository, digest).await? else {
        return Ok(Vec::new());
    };
    let (manifest, _) = manifest_from_document(digest, &bytes)?;
    Ok(manifest.children.into_iter().map(|c| c.digest).collect())
}

#[cfg(test)]
mod tests;
