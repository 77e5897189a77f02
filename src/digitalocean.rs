//! digitalocean: DigitalOcean Container Registry through the DigitalOcean API: repositories and
//! manifests listed (every page), deletions (`DELETE …/digests/<digest>`, 204) paced by the
//! `ratelimit-*` headers, and garbage collection started and followed to its end. Manifest
//! contents (index children, configs, `subject`) come from the registry's own API
//! (`registry.digitalocean.com`), so multi-arch images and signatures are protected exactly as on
//! a self-hosted registry.
//!
//! Paths use the multi-registry form `/v2/registries/<name>/…` and fall back to the older
//! `/v2/registry/<name>/…` when the API does not know the newer one (404).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::apply::{CurrentState, Provider};
use crate::discover::api::{self, Reader};
use crate::http::{
    is_transient, parse_retry_after, Deleted, RegistryClient, RegistryError, RetryPolicy,
};
use crate::model::{Digest, Inventory, Repository, RepositoryName, Tag};
use crate::progress::Progress;

/// The garbage-collection type regsweep asks for: what its deletions left, and nothing else.
/// DigitalOcean's garbage collection is distribution's; its untagged types delete every
/// manifest without a tag of its own, the children of kept multi-arch indexes and the referrers
/// of kept images included (distribution/distribution#3178). regsweep has already deleted, by
/// digest, exactly the untagged manifests that are safe to delete.
pub const GC_TYPE: &str = "unreferenced blobs only";

/// The type that also sweeps untagged manifests (`REGSWEEP_GC_INCLUDE_UNTAGGED`).
pub const GC_TYPE_WITH_UNTAGGED: &str = "untagged manifests and unreferenced blobs";

/// Entries asked for per page (the API's maximum).
pub const PER_PAGE: usize = 200;

/// The most pages one listing may take: a bound on every paging loop.
const MAX_PAGES: usize = 100_000;

/// The longest `retry-after` honoured as given (DigitalOcean's window is a minute).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How DigitalOcean is used, from the options. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalOceanSettings {
    /// `DIGITALOCEAN_ACCESS_TOKEN`.
    pub token: crate::secret::SecretStringEq,
    /// `REGSWEEP_DO_API_URL` (default `https://api.digitalocean.com`).
    pub api_url: Url,
    /// `REGSWEEP_DO_REGISTRY`, or the `REGISTRY_URL` path; else asked of the API.
    pub registry: Option<String>,
    /// `REGSWEEP_GC`: start garbage collection after a real run that deleted something.
    pub gc: bool,
    /// `REGSWEEP_GC_TIMEOUT`: how long to follow it.
    pub gc_timeout: Duration,
    /// `REGSWEEP_GC_POLL`: how often to look at it.
    pub gc_poll: Duration,
}

/// What went wrong with the DigitalOcean API.
#[derive(Debug, thiserror::Error)]
pub enum DoError {
    /// 401/403: the token is refused or lacks a scope.
    #[error("the DigitalOcean API refused {action}: {status} (check DIGITALOCEAN_ACCESS_TOKEN and its registry scopes)")]
    Refused {
        /// What was asked.
        action: String,
        /// The status.
        status: StatusCode,
    },
    /// Any other answer, or none.
    #[error("the DigitalOcean API {message} ({action})")]
    Failed {
        /// What was asked.
        action: String,
        /// What happened.
        message: String,
    },
    /// The registry to clean cannot be chosen.
    #[error("{0}")]
    Registry(String),
}

/// The rate-limit budget as the answers give it.
#[derive(Debug, Default)]
struct Budget {
    /// `ratelimit-limit`.
    limit: Option<u64>,
    /// `ratelimit-remaining` of the newest answer of the current window.
    remaining: Option<u64>,
    /// `ratelimit-reset` (Unix seconds) of that answer.
    reset_epoch: Option<u64>,
    reset_at: Option<Instant>,
    /// Requests sent since that answer, or in flight when it came (counted as spent).
    spent_since: u64,
    /// Requests sent and not answered yet.
    in_flight: u64,
    /// When the last requests were sent, for the per-minute limit.
    recent: std::collections::VecDeque<Instant>,
}

/// DigitalOcean's per-minute limit (the headers tell the hourly one).
pub const PER_MINUTE: usize = 250;

/// A manifest as the DigitalOcean API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct DoManifest {
    /// Its digest.
    pub digest: String,
    /// Its tags (empty when untagged).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// When it was last updated.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A garbage collection as the API reports it.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct GarbageCollection {
    /// Its id.
    #[serde(default)]
    pub uuid: String,
    /// `requested`, `scanning manifests`, …, `succeeded`, `failed`, `cancelled`.
    #[serde(default)]
    pub status: String,
    /// Blobs it deleted.
    #[serde(default)]
    pub blobs_deleted: Option<u64>,
    /// Bytes it freed.
    #[serde(default)]
    pub freed_bytes: Option<u64>,
    /// The type that ran (`unreferenced blobs only`, …).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Why regsweep asked for that type (set by regsweep, not the API).
    #[serde(default, skip_deserializing)]
    pub why: String,
}

impl GarbageCollection {
    /// Whether it has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// The DigitalOcean API client: bearer token, pacing by the rate-limit headers, retries.
#[derive(Debug)]
pub struct DoApi {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    retry: RetryPolicy,
    budget: Mutex<Budget>,
    legacy_paths: AtomicBool,
    /// An answer on the older paths showed they are the ones to use.
    legacy_confirmed: AtomicBool,
    /// Requests sent, for the benchmark and the log.
    pub requests: AtomicU64,
    /// Seconds spent waiting for the budget (never while there was budget).
    pub waited_ms: AtomicU64,
}

/// `<name>` with `/` sent as `%2F`, as the API wants repository names.
pub fn encode_repository(name: &str) -> String {
    name.replace('/', "%2F")
}

fn header_u64(headers: &header::HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

impl DoApi {
    /// A client for the API at `base` with `token`.
    /// Retries follow `retry` (REGSWEEP_HTTP_ATTEMPTS, REGSWEEP_RETRY_DELAY,
    /// REGSWEEP_HTTP_TIMEOUT), like the registry client's.
    pub fn new(base: Url, token: SecretString, retry: RetryPolicy) -> Result<DoApi, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("regsweep/", env!("CARGO_PKG_VERSION")))
            .timeout(retry.attempt_timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(DoApi {
            http,
            base,
            token,
            retry,
            budget: Mutex::default(),
            legacy_paths: AtomicBool::new(false),
            legacy_confirmed: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        })
    }

    /// `/v2/registries/<name>` (or the older `/v2/registry/<name>`).
    fn registry_path(&self, registry: &str) -> String {
        if self.legacy_paths.load(Ordering::Relaxed) {
            format!("/v2/registry/{registry}")
        } else {
            format!("/v2/registries/{registry}")
        }
    }

    /// Waits only when the budget is spent: the headers' hourly budget (until its reset) or
    /// the 250 requests a minute (until the oldest is a minute old). Never while there is some.
    async fn pace(&self) {
        loop {
            let wait = {
                let mut budget = self.budget.lock().await;
                let now = Instant::now();
                while budget
                    .recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
                {
                    budget.recent.pop_front();
                }
                let hourly = match (budget.remaining, budget.reset_at) {
                    (Some(remaining), Some(reset_at))
                        if budget.spent_since >= remaining && reset_at > now =>
                    {
                        Some(reset_at - now)
                    }
                    (Some(remaining), Some(_)) if budget.spent_since >= remaining => {
                        // The window has reset since: the whole limit again.
                        budget.remaining = budget.limit;
                        budget.spent_since = budget.in_flight;
                        None
                    }
                    _ => None,
                };
                let minute = (budget.recent.len() >= PER_MINUTE)
                    .then(|| {
                        budget
                            .recent
                            .front()
                            .map(|t| Duration::from_secs(60) - now.duration_since(*t))
                    })
                    .flatten();
                match hourly.max(minute) {
                    Some(wait) => wait,
                    None => {
                        budget.spent_since += 1;
                        budget.in_flight += 1;
                        budget.recent.push_back(now);
                        return;
                    }
                }
            };
            tracing::info!(
                ?wait,
                "DigitalOcean rate limit budget spent: waiting for its reset"
            );
            self.waited_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait + Duration::from_millis(50)).await;
        }
    }

    /// A request ended without an answer.
    async fn settle(&self) {
        let mut budget = self.budget.lock().await;
        budget.in_flight = budget.in_flight.saturating_sub(1);
    }

    /// Records what an answer says of the budget. An answer of the current window that shows
    /// more budget than a newer one already did (answers overtake each other) is ignored.
    async fn observe(&self, headers: &header::HeaderMap) {
        let limit = header_u64(headers, "ratelimit-limit");
        let remaining = header_u64(headers, "ratelimit-remaining");
        let reset = header_u64(headers, "ratelimit-reset");
        let mut budget = self.budget.lock().await;
        budget.in_flight = budget.in_flight.saturating_sub(1);
        let (Some(remaining), Some(reset)) = (remaining, reset) else {
            return;
        };
        let same_window = budget.reset_epoch == Some(reset);
        if same_window && budget.remaining.is_some_and(|r| remaining >= r) {
            return;
        }
        let now_epoch = Utc::now().timestamp().max(0) as u64;
        budget.limit = limit.or(budget.limit);
        budget.remaining = Some(remaining);
        budget.reset_epoch = Some(reset);
        budget.reset_at =
            Some(Instant::now() + Duration::from_secs(reset.saturating_sub(now_epoch)));
        budget.spent_since = budget.in_flight;
    }

    /// One request with pacing and retries; returns status, headers and body.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        action: &str,
    ) -> Result<(StatusCode, Value), DoError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pace().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.token.expose_secret());
            if let Some(body) = body {
                request = request.json(body);
            }
            // The whole answer inside the retry loop: a body cut halfway is retried too.
            let answer = async {
                let response = request.send().await?;
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, bytes))
            }
            .await;
            let (status, headers, bytes) = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    self.settle().await;
                    if attempt < self.retry.attempts {
                        tracing::info!(%error, "DigitalOcean API: no whole answer, retrying");
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(DoError::Failed {
                        action: action.into(),
                        message: format!("gave no whole answer: {error}"),
                    });
                }
            };
            self.observe(&headers).await;
            if is_transient(status) && attempt < self.retry.attempts {
                let wait = match headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, Utc::now()))
                {
                    Some(wait) => wait.min(MAX_RETRY_AFTER),
                    None => self.retry.backoff(attempt),
                };
                tracing::info!(%status, ?wait, "DigitalOcean API: retrying");
                self.waited_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                continue;
            }
            let json = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            return match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(DoError::Refused {
                    action: action.into(),
                    status,
                }),
                _ => Ok((status, json)),
            };
        }
    }

    fn url(&self, path_and_query: &str) -> Url {
        let mut url = self.base.clone();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        url.set_path(path);
        url.set_query((!query.is_empty()).then_some(query));
        url
    }

    fn unexpected(action: &str, status: StatusCode, json: &Value) -> DoError {
        let detail = json["message"].as_str().unwrap_or_default();
        DoError::Failed {
            action: action.into(),
            message: format!("answered {status} {detail}").trim().to_string(),
        }
    }

    /// The `next` page of a listing, as given, but only on the API's own host (the token
    /// goes nowhere else).
    fn next_page(&self, json: &Value) -> Option<Url> {
        let next = json["links"]["pages"]["next"].as_str()?;
        let url = self.base.join(next).ok()?;
        (url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default())
        .then_some(url)
    }

    /// Follows a listing's pages from `first`, collecting `field`'s items.
    async fn paged(
        &self,
        first: Url,
        field: &str,
        action: &str,
    ) -> Result<Option<Vec<Value>>, DoError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut seen = HashSet::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES || !seen.insert(url.clone()) {
                return Err(DoError::Failed {
                    action: action.into(),
                    message: "gave pages that do not end".into(),
                });
            }
            let (status, json) = self.call(Method::GET, url, None, action).await?;
            match status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if pages == 1 => return Ok(None),
                _ => return Err(Self::unexpected(action, status, &json)),
            }
            if let Some(page) = json[field].as_array() {
                items.extend(page.iter().cloned());
            }
            next = self.next_page(&json);
        }
        Ok(Some(items))
    }

    /// The registry to clean: the configured one, or the account's only one.
    pub async fn registry_name(&self, configured: Option<&str>) -> Result<String, DoError> {
        if let Some(name) = configured {
            return Ok(name.to_string());
        }
        let action = "listing the account's registries";
        let (status, json) = self
            .call(Method::GET, self.url("/v2/registries"), None, action)
            .await?;
        let names: Vec<String> = match status {
            // The reference's schema names the array `registry`; the API answers `registries`.
            StatusCode::OK => json["registries"]
                .as_array()
                .or_else(|| json["registry"].as_array())
                .map(|r| {
                    r.iter()
                        .filter_map(|r| r["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            StatusCode::NOT_FOUND => {
                // The older single-registry endpoint (412 when the account has several).
                let (status, json) = self
                    .call(Method::GET, self.url("/v2/registry"), None, action)
                    .await?;
                match status {
                    StatusCode::OK => json["registry"]["name"].as_str().map(String::from).into_iter().collect(),
                    StatusCode::PRECONDITION_FAILED => {
                        return Err(DoError::Registry(
                            "the account has several registries: name one in REGSWEEP_DO_REGISTRY or REGISTRY_URL=registry.digitalocean.com/<name>".into(),
                        ))
                    }
                    StatusCode::NOT_FOUND => Vec::new(),
                    _ => return Err(Self::unexpected(action, status, &json)),
                }
            }
            _ => return Err(Self::unexpected(action, status, &json)),
        };
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(DoError::Registry("the account has no container registry".into())),
            several => Err(DoError::Registry(format!(
                "the account has several registries ({}): name one in REGSWEEP_DO_REGISTRY or REGISTRY_URL=registry.digitalocean.com/<name>",
                several.join(", ")
            ))),
        }
    }

    /// Every repository of `registry`.
    pub async fn repositories(&self, registry: &str) -> Result<Vec<String>, DoError> {
        let action = format!("listing the repositories of `{registry}`");
        for _ in 0..2 {
            let first = self.url(&format!(
                "{}/repositoriesV2?per_page={PER_PAGE}",
                self.registry_path(registry)
            ));
            match self.paged(first, "repositories", &action).await? {
                Some(items) => {
                    if self.legacy_paths.load(Ordering::Relaxed) {
                        self.legacy_confirmed.store(true, Ordering::Relaxed);
                    }
                    let mut names: Vec<String> = items
                        .iter()
                        .filter_map(|r| r["name"].as_str().map(String::from))
                        .collect();
                    names.sort();
                    names.dedup();
                    return Ok(names);
                }
                None if !self.legacy_paths.swap(true, Ordering::Relaxed) => continue,
                None => break,
            }
        }
        Err(DoError::Registry(format!(
            "registry `{registry}` not found (check REGSWEEP_DO_REGISTRY and the token's account)"
        )))
    }

    /// Every manifest of `repository`; `None` when the repository does not exist.
    pub async fn manifests(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Vec<DoManifest>>, DoError> {
        let action = format!("listing the manifests of `{repository}`");
        let mut listed = None;
        // A 404 on the newer path may mean an API that only has the older one: try it once.
        for _ in 0..2 {
            let first = self.url(&format!(
                "{}/repositories/{}/digests?per_page={PER_PAGE}&page=1",
                self.registry_path(registry),
                encode_repository(repository)
            ));
            listed = self.paged(first, "manifests", &action).await?;
            if listed.is_some() || self.legacy_paths.load(Ordering::Relaxed) {
                break;
            }
            self.legacy_paths.store(true, Ordering::Relaxed);
        }
        let Some(items) = listed else {
            // Neither path knows it: a missing repository. The newer paths stay the default
            // unless the registry itself was only found on the older ones.
            if self.legacy_paths.load(Ordering::Relaxed)
                && !self.legacy_confirmed.load(Ordering::Relaxed)
            {
                self.legacy_paths.store(false, Ordering::Relaxed);
            }
            return Ok(None);
        };
        if self.legacy_paths.load(Ordering::Relaxed) {
            self.legacy_confirmed.store(true, Ordering::Relaxed);
        }
        items
            .into_iter()
            .map(|item| {
                serde_json::from_value::<DoManifest>(item).map_err(|e| DoError::Failed {
                    action: action.clone(),
                    message: format!("listed a manifest regsweep cannot read: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Deletes a manifest: 204 deleted, 404 already gone.
    pub async fn delete(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Deleted, DoError> {
        let action = format!("deleting `{digest}` from `{repository}`");
        let url = self.url(&format!(
            "{}/repositories/{}/digests/{digest}",
            self.registry_path(registry),
            encode_repository(repository)
        ));
        let (status, json) = self.call(Method::DELETE, url, None, &action).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => Ok(Deleted::Now),
            StatusCode::NOT_FOUND => Ok(Deleted::AlreadyGone),
            _ => Err(Self::unexpected(&action, status, &json)),
        }
    }

    /// The running garbage collection, if any.
    pub async fn active_gc(&self, registry: &str) -> Result<Option<GarbageCollection>, DoError> {
        let action = "reading the active garbage collection";
        let url = self.url(&format!(
            "{}/garbage-collection",
            self.registry_path(registry)
        ));
        let (status, json) = self.call(Method::GET, url, None, action).await?;
        match status {
            StatusCode::OK => Ok(serde_json::from_value(json["garbage_collection"].clone()).ok()),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::unexpected(action, status, &json)),
        }
    }

    /// A garbage collection by id, from the list of past ones.
    pub async fn find_gc(
        &self,
        registry: &str,
        uuid: &str,
    ) -> Result<Option<GarbageCollection>, DoError> {
        let action = "listing garbage collections";
        let first = self.url(&format!(
            "{}/garbage-collections?per_page=20&page=1",
            self.registry_path(registry)
        ));
        let items = self
            .paged(first, "garbage_collections", action)
            .await?
            .unwrap_or_default();
        Ok(items
            .into_iter()
            .filter_map(|g| serde_json::from_value::<GarbageCollection>(g).ok())
            .find(|g| g.uuid == uuid))
    }

    /// Starts a garbage collection of type `kind`; `None` when one is already running.
    pub async fn start_gc(
        &self,
        registry: &str,
        kind: &str,
    ) -> Result<Option<GarbageCollection>, DoError> {
        let action = "starting garbage collection";
        let url = self.url(&format!(
            "{}/garbage-collection",
            self.registry_path(registry)
        ));
        let body = serde_json::json!({ "type": kind });
        let (status, json) = self.call(Method::POST, url, Some(&body), action).await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                Ok(serde_json::from_value(json["garbage_collection"].clone()).ok())
            }
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Ok(None),
            _ => Err(Self::unexpected(action, status, &json)),
        }
    }
}

/// Starts a garbage collection of type `kind` and follows it until it ends or `timeout`
/// passes, printing status changes; waits first for one already running. `None` when the time
/// ran out.
pub async fn collect_garbage(
    api: &DoApi,
    registry: &str,
    kind: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<Option<GarbageCollection>, DoError> {
    let deadline = Instant::now() + timeout;
    let mut last_status = String::new();
    let mut started: Option<GarbageCollection> = None;
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let current = match &started {
            None => match api.start_gc(registry, kind).await? {
                Some(gc) => {
                    eprintln!("regsweep: garbage collection {} ({kind}) started; the registry is read-only until it ends", gc.uuid);
                    started = Some(gc.clone());
                    Some(gc)
                }
                None => {
                    // Someone else's is running: wait for it, then start ours.
                    let running = api.active_gc(registry).await?;
                    if let Some(gc) = &running {
                        if gc.status != last_status {
                            eprintln!("regsweep: waiting for the garbage collection already running ({}: {})", gc.uuid, gc.status);
                            last_status = gc.status.clone();
                        }
                    }
                    tokio::time::sleep(poll).await;
                    continue;
                }
            },
            Some(ours) => match api.active_gc(registry).await? {
                Some(gc) if gc.uuid == ours.uuid => Some(gc),
                // No longer active: its end state is in the list.
                _ => api.find_gc(registry, &ours.uuid).await?,
            },
        };
        if let Some(gc) = current {
            if gc.status != last_status {
                eprintln!("regsweep: garbage collection: {}", gc.status);
                last_status = gc.status.clone();
            }
            if gc.is_done() {
                return Ok(Some(gc));
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Discovers the repositories in `only` (or all of them) through the DigitalOcean API, with
/// manifest contents from the registry API.
pub async fn discover(
    api: &DoApi,
    registry: &str,
    client: &RegistryClient,
    only: &[RepositoryName],
    concurrency: usize,
    progress: &Progress,
) -> Result<Inventory, DoError> {
    let names: Vec<String> = if only.is_empty() {
        api.repositories(registry).await?
    } else {
        only.iter().map(ToString::to_string).collect()
    };
    let named = !only.is_empty();
    let reader = &Reader::new(client, concurrency);
    let discovering = progress.phase("discover", "repositories", names.len() as u64);
    let phase = &discovering;
    // Repositories side by side: the API's pacing and the reader's permits bound the requests.
    let results: Vec<Result<Option<Repository>, DoError>> = stream::iter(names)
        .map(|name| async move {
            let repository = repository(api, registry, reader, name, named, concurrency).await;
            phase.inc(1);
            repository
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    discovering.finish();
    let repositories = results
        .into_iter()
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Inventory { repositories })
}

/// One repository: its manifests from the DigitalOcean API, their contents from the registry.
/// `None` for a name regsweep cannot use, or a listed repository gone since.
async fn repository(
    api: &DoApi,
    registry: &str,
    reader: &Reader<'_>,
    name: String,
    named: bool,
    concurrency: usize,
) -> Result<Option<Repository>, DoError> {
    let Ok(repository_name) = name.parse::<RepositoryName>() else {
        tracing::warn!(name, "the API lists a repository name regsweep cannot use");
        return Ok(None);
    };
    let mut repository = Repository {
        name: repository_name,
        manifests: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let listed = match api.manifests(registry, &name).await {
        Ok(Some(listed)) => listed,
        Ok(None) if named => {
            return Err(DoError::Registry(format!(
                "repository `{name}` not found in registry `{registry}`"
            )))
        }
        Ok(None) => return Ok(None),
        Err(error @ DoError::Refused { .. }) => return Err(error),
        Err(error) => {
            repository.problems.push(error.to_string());
            return Ok(Some(repository));
        }
    };
    let mut tags_of: HashMap<Digest, BTreeSet<Tag>> = HashMap::new();
    let mut pending = Vec::new();
    let mut updated: HashMap<Digest, DateTime<Utc>> = HashMap::new();
    for manifest in listed {
        let Ok(digest) = manifest.digest.parse::<Digest>() else {
            repository.problems.push(format!(
                "the API lists an invalid digest `{}`",
                manifest.digest
            ));
            continue;
        };
        if let Some(date) = manifest
            .updated_at
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        {
            updated.insert(digest.clone(), date.with_timezone(&Utc));
        }
        tags_of
            .entry(digest.clone())
            .or_default()
            .extend(manifest.tags.unwrap_or_default());
        pending.push((digest, None));
    }
    reader
        .load(&mut repository, tags_of, pending, concurrency)
        .await;
    for manifest in &mut repository.manifests {
        manifest.pushed = updated.get(&manifest.digest).copied();
    }
    Ok(Some(repository))
}

/// Apply's view of a DigitalOcean registry: tags and manifests from the DigitalOcean API,
/// children from the registry API, deletions through the DigitalOcean API.
#[derive(Debug)]
pub struct DigitalOcean<'a> {
    api: &'a DoApi,
    registry: String,
    client: RegistryClient,
}

impl<'a> DigitalOcean<'a> {
    /// A provider for `registry` through `api` and the registry API `client`.
    pub fn new(api: &'a DoApi, registry: String, client: RegistryClient) -> Self {
        DigitalOcean {
            api,
            registry,
            client,
        }
    }

    async fn listed(&self, repository: &RepositoryName) -> Result<Vec<DoManifest>, String> {
        Ok(self
            .api
            .manifests(&self.registry, repository.as_str())
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default())
    }
}

impl Provider for DigitalOcean<'_> {
    async fn current_state(
        &self,
        repository: &RepositoryName,
        known: &HashSet<Digest>,
    ) -> Result<CurrentState, String> {
        let mut state = CurrentState::default();
        for manifest in self.listed(repository).await? {
            let Ok(digest) = manifest.digest.parse::<Digest>() else {
                continue;
            };
            let tags = manifest.tags.unwrap_or_default();
            if !tags.is_empty() {
                state.tags.entry(digest.clone()).or_default().extend(tags);
            }
            if !known.contains(&digest) {
                state.new_manifests.push(digest);
            }
        }
        Ok(state)
    }

    async fn manifest_children(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<Digest>, String> {
        api::manifest_children(&self.client, repository, digest).await
    }

    async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deleted, RegistryError> {
        self.api
            .delete(&self.registry, repository.as_str(), digest)
            .await
            .map_err(|error| match error {
                DoError::Refused { action, status } => RegistryError::Unauthorized {
                    registry: "the DigitalOcean API".into(),
                    action,
                    status,
                    account: String::new(),
                    hint: "check DIGITALOCEAN_ACCESS_TOKEN: it needs write access to the registry"
                        .into(),
                },
                other => RegistryError::Unexpected {
                    registry: "the DigitalOcean API".into(),
                    action: format!("DELETE of `{digest}` in `{repository}`"),
                    status: StatusCode::BAD_GATEWAY,
                    detail: format!(": {other}"),
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_encoded() {
        assert_eq!(encode_repository("team/app/api"), "team%2Fapp%2Fapi");
        assert_eq!(encode_repository("app"), "app");
    }

    #[test]
    fn garbage_collection_end_states() {
        for (status, done) in [
            ("requested", false),
            ("waiting for write JWTs to expire", false),
            ("scanning manifests", false),
            ("deleting unreferenced blobs", false),
            ("cancelling", false),
            ("failed", true),
            ("succeeded", true),
            ("cancelled", true),
        ] {
            let gc = GarbageCollection {
                status: status.into(),
                ..GarbageCollection::default()
            };
            assert_eq!(gc.is_done(), done, "{status}");
        }
    }
}
