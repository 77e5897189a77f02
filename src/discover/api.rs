//! api: discovery through the registry's HTTP API alone, for registries whose storage
//! regsweep cannot read (`REGSWEEP_SOURCE=api`, or neither `REGISTRY_DIR` nor
//! `REGISTRY_STORAGE`). Reads only.
//!
//! `/v2/_catalog` (or the repositories named in `REPO_FILTER` / `REGSWEEP_REPOSITORIES`), every
//! tag through `tags/list`, each tag's manifest with all four manifest types accepted, the
//! children of indexes by digest, image configs for `created` and platform, and referrers
//! through `/v2/<name>/referrers/<digest>` where the registry has that API (elsewhere the
//! `sha256-<hex>` fallback tags are ordinary tags and are found with the rest). Pages are
//! followed through `Link` headers only: a short page is never taken for the last one.
//!
//! The API cannot list a manifest no tag reaches: untagged manifests stay invisible, so an
//! API-only run deletes expired tags' manifests and nothing untagged (the report says so).
//! Fails closed like storage discovery: whatever cannot be read is a problem of its repository.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};
use reqwest::{header, StatusCode};
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use super::storage::{manifest_from_document, with_config};
use crate::bearer::{repository_scope, Action, CATALOG_SCOPE};
use crate::http::{RegistryClient, RegistryError};
use crate::manifest::MANIFEST_ACCEPT;
use crate::model::{Digest, Inventory, Manifest, Repository, RepositoryName, Tag};
use crate::progress::Progress;

/// What the report says about an API-only run.
pub const NOTICE: &str = "discovered through the registry API only: untagged manifests are \
invisible to the API and were neither counted nor deleted; give regsweep the registry's storage \
(REGISTRY_DIR, or REGISTRY_STORAGE=s3) to find and delete them";

/// Entries asked for per page (`n`); the distribution spec lets servers return fewer.
pub const PAGE_SIZE: usize = 1000;

/// The most pages one listing may take: a bound on every paging loop.
const MAX_PAGES: usize = 100_000;

/// The most manifests one repository may hold before discovery gives up on it (fail closed).
const MAX_MANIFESTS: usize = 1_000_000;

/// Why API discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiDiscoveryError {
    /// The catalog could not be listed (many hosted registries do not offer it).
    #[error(
        "cannot list the registry's repositories: {0}; name them in REGSWEEP_REPOSITORIES \
         (comma-separated) or REPO_FILTER instead"
    )]
    Catalog(RegistryError),
    /// A repository named in the options does not exist.
    #[error("repository `{name}` not found in registry `{registry}`")]
    RepositoryNotFound {
        /// The repository asked for.
        name: RepositoryName,
        /// The registry's URL.
        registry: String,
    },
    /// Reading failed in a way every further request would repeat (refused credentials).
    #[error(transparent)]
    Registry(RegistryError),
}

/// The `rel="next"` target of a `Link` header, resolved against the URL that was requested
/// (registries send relative links: `</v2/_catalog?last=a&n=1000>; rel="next"`).
pub fn next_link(headers: &header::HeaderMap, request: &Url) -> Option<Url> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once('>')?;
            let target = target.trim().strip_prefix('<')?;
            let is_next = params.split(';').any(|param| {
                param.trim().split_once('=').is_some_and(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
            });
            is_next.then(|| request.join(target).ok()).flatten()
        })
}

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
    let mut found = Vec::new();
    let mut visited = HashSet::new();
    let mut next = Some(first);
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES || !visited.insert(url.clone()) {
            return Err(unexpected_body(
                client,
                what,
                format!("its pages do not end (page {pages}, `{}`)", url.path()),
            ));
        }
        let answer = client
            .get(url.clone(), Some("application/json"), scope)
            .await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND if pages == 1 => return Ok(None),
            _ => return Err(client.unexpected_answer(what.to_string(), &answer, scope)),
        }
        found.extend(entries(&answer.body).map_err(|e| unexpected_body(client, what, e))?);
        next = next_link(&answer.headers, &url);
        // Pages stay on the registry's origin: credentials go nowhere else.
        if let Some(other) = next.as_ref().filter(|n| n.origin() != url.origin()) {
            return Err(unexpected_body(
                client,
                what,
                format!(
                    "its next page is on another host `{}`; regsweep follows pages on the \
                     registry's own origin only",
                    host_of(other)
                ),
            ));
        }
    }
    Ok(Some(found))
}

/// `host` or `host:port` of a URL, for messages.
fn host_of(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

fn unexpected_body(client: &RegistryClient, what: &str, message: String) -> RegistryError {
    RegistryError::Unexpected {
        registry: client.display().to_string(),
        action: what.to_string(),
        status: StatusCode::OK,
        detail: format!(": {message}"),
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
        digests.push(text.parse::<Digest>().map_err(|e| {
            unexpected_body(client, &what, format!("invalid digest `{text}`: {e}"))
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
pub(crate) struct Reader<'a> {
    client: &'a RegistryClient,
    permits: Semaphore,
    referrers_api: AtomicBool,
}

/// A manifest read by digest, with the referrers found for it.
type Fetched = (Digest, Result<Option<bytes::Bytes>, String>, Vec<Digest>);

impl<'a> Reader<'a> {
    /// A reader with at most `concurrency` requests in flight.
    pub(crate) fn new(client: &'a RegistryClient, concurrency: usize) -> Self {
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

    /// One repository: its tags, their manifests and everything those reach.
    async fn repository(
        &self,
        name: RepositoryName,
        named: bool,
        concurrency: usize,
    ) -> Result<Repository, ApiDiscoveryError> {
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
            Ok(None) if named => {
                return Err(ApiDiscoveryError::RepositoryNotFound {
                    name,
                    registry: self.client.display().to_string(),
                })
            }
            // Listed by the catalog, gone since: nothing to do.
            Ok(None) => Vec::new(),
            Err(error) if error.is_fatal() => return Err(ApiDiscoveryError::Registry(error)),
            Err(error) => {
                repository.problems.push(error.to_string());
                return Ok(repository);
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
        Ok(repository)
    }

    /// Reads the manifests in `pending` (their bytes when already fetched), everything they
    /// reach (children, referrers) and the image configs into `repository`, tagged as
    /// `tags_of` says. Whatever cannot be read becomes a problem of the repository.
    pub(crate) async fn load(
        &self,
        repository: &mut Repository,
        mut tags_of: HashMap<Digest, BTreeSet<Tag>>,
        mut pending: Vec<(Digest, Option<bytes::Bytes>)>,
        concurrency: usize,
    ) {
        let name = repository.name.clone();
        // The listed manifests, then what they reach (children, referrers), wave by wave;
        // each digest once, so the loop ends.
        let mut seen: HashSet<Digest> = pending.iter().map(|(d, _)| d.clone()).collect();
        let mut staged: Vec<(Manifest, Option<Digest>)> = Vec::new();
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

/// Discovers the repositories in `only` (or every repository in the catalog) through the
/// registry's API, at most `concurrency` requests in flight.
pub async fn discover(
    client: &RegistryClient,
    only: &[RepositoryName],
    concurrency: usize,
    progress: &Progress,
) -> Result<Inventory, ApiDiscoveryError> {
    let concurrency = concurrency.max(1);
    let named = !only.is_empty();
    let names = if named {
        only.to_vec()
    } else {
        catalog(client).await.map_err(ApiDiscoveryError::Catalog)?
    };
    let reader = Reader::new(client, concurrency);
    let reader = &reader;
    let discovering = progress.phase("discover", "repositories", names.len() as u64);
    let phase = &discovering;
    let results: Vec<Result<Repository, ApiDiscoveryError>> = stream::iter(names)
        .map(|name| async move {
            let repository = reader.repository(name, named, concurrency).await;
            phase.inc(1);
            repository
        })
        .buffered(concurrency)
        .collect()
        .await;
    discovering.finish();
    let repositories = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(Inventory { repositories })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> header::HeaderMap {
        let mut map = header::HeaderMap::new();
        for value in values {
            map.append(header::LINK, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn next_links_resolve_against_the_request() {
        let request: Url = "https://r.example/prefix/v2/_catalog?n=1000"
            .parse()
            .unwrap();
        let cases = [
            (
                vec![r#"</v2/_catalog?last=b&n=1000>; rel="next""#],
                Some("https://r.example/v2/_catalog?last=b&n=1000"),
            ),
            (
                vec![r#"<_catalog?last=b&n=1000>; rel=next"#],
                Some("https://r.example/prefix/v2/_catalog?last=b&n=1000"),
            ),
            // Resolved as written; the paging loop then refuses another origin (tested in
            // `a_next_page_on_another_host_is_refused_and_gets_no_credentials`).
            (
                vec![r#"<https://other.example/v2/_catalog?last=c>; rel="next""#],
                Some("https://other.example/v2/_catalog?last=c"),
            ),
            (
                vec![r#"</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=z>; rel="next""#],
                Some("https://r.example/v2/_catalog?last=z"),
            ),
            (
                vec![
                    r#"</v2/_catalog?last=a>; rel="prev""#,
                    r#"</v2/x?last=q>; REL="Next""#,
                ],
                Some("https://r.example/v2/x?last=q"),
            ),
            (vec![r#"</v2/_catalog?last=a>; rel="prev""#], None),
            (vec!["garbage"], None),
            (vec![], None),
        ];
        for (values, expected) in cases {
            assert_eq!(
                next_link(&headers(&values), &request).map(|u| u.to_string()),
                expected.map(str::to_string),
                "{values:?}"
            );
        }
    }

    use crate::http::{RetryPolicy, TlsOptions};
    use serde_json::json;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn client(server: &MockServer) -> RegistryClient {
        let retry = RetryPolicy {
            attempts: 2,
            base_delay: std::time::Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        RegistryClient::new(
            server.uri().parse().unwrap(),
            None,
            &TlsOptions::default(),
            retry,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn catalog_follows_every_link_and_never_trusts_a_short_page() {
        let server = MockServer::start().await;
        // Page 1 is short (1 of n=1000) yet has a next link; page 2 links with an absolute
        // URL; page 3 has no link and ends the listing.
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .and(query_param("n", "1000"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"repositories": ["b"]}))
                    .insert_header("link", r#"</v2/_catalog?last=b&n=1000&page=2>; rel="next""#),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .and(query_param("page", "2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"repositories": ["a/x", "c"]}))
                    .insert_header(
                        "link",
                        format!(
                            r#"<{}/v2/_catalog?last=c&page=3>; rel="next""#,
                            server.uri()
                        ),
                    ),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .and(query_param("page", "3"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"repositories": []})))
            .mount(&server)
            .await;
        let names: Vec<String> = catalog(&client(&server))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["a/x", "b", "c"]);
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    /// Issue 12, defect 2: a `Link` to another origin is an error naming the host; the
    /// credentials never go there.
    #[tokio::test]
    async fn a_next_page_on_another_host_is_refused_and_gets_no_credentials() {
        let server = MockServer::start().await;
        let foreign = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"repositories": ["a"]}))
                    .insert_header(
                        "link",
                        format!(r#"<{}/v2/_catalog?last=a>; rel="next""#, foreign.uri()),
                    ),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"repositories": ["b"]})))
            .mount(&foreign)
            .await;
        let retry = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        let credentials = crate::http::Credentials {
            username: "ci".into(),
            password: secrecy::SecretString::from("pw"),
            username_is_secret: false,
        };
        let client = RegistryClient::new(
            server.uri().parse().unwrap(),
            Some(credentials),
            &TlsOptions::default(),
            retry,
        )
        .unwrap();
        let error = catalog(&client).await.unwrap_err().to_string();
        let foreign_host = foreign.uri().trim_start_matches("http://").to_string();
        assert!(
            error.contains(&format!("`{foreign_host}`")) && error.contains("another host"),
            "{error}"
        );
        assert!(
            foreign.received_requests().await.unwrap().is_empty(),
            "a request (with credentials) went to the other host"
        );
    }

    #[tokio::test]
    async fn a_refused_catalog_says_to_name_the_repositories() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/_catalog"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                json!({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}),
            ))
            .mount(&server)
            .await;
        let error = discover(&client(&server), &[], 2, &Progress::new(true))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot list the registry's repositories")
                && error.contains("403 Forbidden")
                && error.contains("REGSWEEP_REPOSITORIES"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_link_loop_is_an_error_not_a_hang() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/app/tags/list"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"name": "app", "tags": ["a"]}))
                    .insert_header("link", r#"</v2/app/tags/list?n=1000>; rel="next""#),
            )
            .mount(&server)
            .await;
        let error = list_tags(&client(&server), &"app".parse().unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("its pages do not end"), "{error}");
    }

    #[tokio::test]
    async fn tags_null_and_missing_repositories() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/empty/tags/list"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"name": "empty", "tags": null})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/gone/tags/list"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}),
            ))
            .mount(&server)
            .await;
        let client = client(&server);
        assert_eq!(
            list_tags(&client, &"empty".parse().unwrap()).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(
            list_tags(&client, &"gone".parse().unwrap()).await.unwrap(),
            None
        );
    }

    /// A registry with the OCI 1.1 referrers API: the untagged referrer is found through it.
    #[tokio::test]
    async fn referrers_come_from_the_referrers_api_where_there_is_one() {
        let server = MockServer::start().await;
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z"
        }))
        .unwrap();
        let config_digest = Digest::sha256_of(&config);
        let image = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "config": {"mediaType": crate::manifest::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": []
        }))
        .unwrap();
        let image_digest = Digest::sha256_of(&image);
        let sbom = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::sha256_of(b"{}"), "size": 2},
            "layers": [],
            "subject": {"mediaType": crate::manifest::OCI_MANIFEST, "digest": image_digest, "size": image.len()}
        }))
        .unwrap();
        let sbom_digest = Digest::sha256_of(&sbom);
        let manifest = |body: &[u8]| {
            ResponseTemplate::new(200).set_body_raw(body.to_vec(), crate::manifest::OCI_MANIFEST)
        };
        Mock::given(method("GET"))
            .and(path("/v2/app/tags/list"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"name": "app", "tags": ["v1"]})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/app/manifests/v1"))
            .respond_with(manifest(&image))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/manifests/{sbom_digest}")))
            .respond_with(manifest(&sbom))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/blobs/{config_digest}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(config.clone(), "application/octet-stream"),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/referrers/{image_digest}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "schemaVersion": 2,
                "mediaType": crate::manifest::OCI_INDEX,
                "manifests": [{"mediaType": crate::manifest::OCI_MANIFEST, "digest": sbom_digest, "size": sbom.len(), "artifactType": "application/spdx+json"}]
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/referrers/{sbom_digest}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "schemaVersion": 2, "mediaType": crate::manifest::OCI_INDEX, "manifests": []
            })))
            .mount(&server)
            .await;
        let inventory = discover(
            &client(&server),
            &["app".parse().unwrap()],
            4,
            &Progress::new(true),
        )
        .await
        .unwrap();
        let repository = &inventory.repositories[0];
        assert!(repository.problems.is_empty(), "{:?}", repository.problems);
        assert_eq!(repository.manifests.len(), 2);
        let image = repository
            .manifests
            .iter()
            .find(|m| m.digest == image_digest)
            .unwrap();
        assert_eq!(image.tags, ["v1"]);
        assert_eq!(
            image.created.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
        assert_eq!(image.platform.as_ref().unwrap().to_string(), "linux/amd64");
        let sbom = repository
            .manifests
            .iter()
            .find(|m| m.digest == sbom_digest)
            .unwrap();
        assert_eq!(sbom.subject.as_ref(), Some(&image_digest));
        assert!(sbom.tags.is_empty());
        // Every request asked for all four manifest types where it fetched a manifest.
        for request in server.received_requests().await.unwrap() {
            if request.url.path().contains("/manifests/") {
                let accept = request.headers.get("accept").unwrap().to_str().unwrap();
                assert_eq!(accept, MANIFEST_ACCEPT);
            }
        }
    }
}
