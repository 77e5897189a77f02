//! A fake DigitalOcean API (on 127.0.0.1, tests/common/fake.rs) written from the public API reference,
//! serving a real registry started by the tests: the manifest list comes from that registry's
//! storage (untagged manifests included, as DigitalOcean lists them), and a DELETE through it
//! really deletes there. Paths `/v2/registries/{name}/…` (and the older `/v2/registry…`),
//! `page`/`per_page` with `links.pages.next`, `page_token` for `repositoriesV2`, 204 on
//! delete, garbage collections walking through their statuses, `ratelimit-*` headers on every
//! answer and 429 with `retry-after` when the budget is spent.
//!
//! Garbage collection is DigitalOcean's, which is distribution's: when it ends `succeeded` the
//! fake runs the test registry's own `garbage-collect` on its storage, with `--delete-untagged`
//! for the types that name untagged manifests. On distribution 2.x that flag deletes every
//! manifest without a tag of its own, the children of tagged multi-arch indexes and OCI 1.1
//! referrers included (distribution/distribution#3178), as DigitalOcean's does; blobs deleted
//! and bytes freed are what that run really removed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fake::{
    repositories_in, revisions_in, rfc3339, run_registry_gc, tags_in, Answer, FakeServer, GcTarget,
};
use super::TestRegistry;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeDoOptions {
    /// The account's registries; the first is backed by the test registry.
    pub registries: Vec<String>,
    /// Only the older single-registry paths exist (`/v2/registries…` answers 404).
    pub legacy_only: bool,
    /// Entries per page at most, whatever `per_page` asks (to force several pages).
    pub page_cap: usize,
    /// Requests allowed per window, and the window.
    pub rate_limit: (u64, Duration),
    /// The DELETE with this number (1-based) answers 429 with `retry-after: 1` once.
    pub throttle_delete: Option<usize>,
    /// How garbage collection ends: `succeeded` or `failed`.
    pub gc_outcome: String,
    /// Each DELETE takes this long to answer (a slow API).
    pub delete_delay: Option<Duration>,
}

impl Default for FakeDoOptions {
    fn default() -> Self {
        FakeDoOptions {
            registries: vec!["regsweep-test".into()],
            legacy_only: false,
            page_cap: 200,
            rate_limit: (250, Duration::from_secs(60)),
            throttle_delete: None,
            gc_outcome: "succeeded".into(),
            delete_delay: None,
        }
    }
}

/// The token the fake accepts.
pub const TOKEN: &str = "dop_v1_fake0123456789abcdef";

/// What the fake saw and holds.
#[derive(Debug, Default)]
pub struct FakeDoState {
    /// Every request: method and path with query.
    pub requests: Vec<(String, String)>,
    /// When each request came.
    pub times: Vec<Instant>,
    /// 429s it answered.
    pub throttled: usize,
    /// DELETEs it received.
    pub deletes: usize,
    /// Tags deleted by the tag API: (repository, tag).
    pub deleted_tags: Vec<(String, String)>,
    window_start: Option<Instant>,
    used: u64,
    delete_throttled: bool,
    gc_running: Option<RunningGc>,
    gc_history: Vec<Value>,
    /// The `type` of every garbage collection started, in order.
    pub gc_types: Vec<String>,
    /// What each garbage collection that ran freed: (blobs, bytes), in order.
    pub gc_results: Vec<(u64, u64)>,
}

/// A garbage collection in progress: its id, status step, how it ends and its type.
#[derive(Debug, Clone)]
struct RunningGc {
    uuid: String,
    step: usize,
    outcome: String,
    kind: String,
}

/// The garbage-collection types DigitalOcean accepts.
pub const GC_TYPES: [&str; 3] = [
    "untagged manifests only",
    "unreferenced blobs only",
    "untagged manifests and unreferenced blobs",
];

/// A running fake; stopped on drop.
pub struct FakeDo {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What it saw.
    pub state: Arc<Mutex<FakeDoState>>,
    _server: FakeServer,
}

const GC_STEPS: [&str; 4] = [
    "requested",
    "waiting for write JWTs to expire",
    "scanning manifests",
    "deleting unreferenced blobs",
];

fn manifests_in(storage: &Path, repository: &str) -> Vec<Value> {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tag, digest) in tags_in(storage, repository) {
        tags.entry(digest).or_default().push(tag);
    }
    let mut manifests = Vec::new();
    for (digest, stored) in revisions_in(storage, repository) {
        let mut item = json!({
            "registry_name": "regsweep-test",
            "repository": repository,
            "digest": digest,
            "compressed_size_bytes": 1234,
            "updated_at": rfc3339(stored),
            "tags": tags.get(&digest).cloned().unwrap_or_default(),
            "blobs": []
        });
        // The reference's example omits `size_bytes` at times: so does the fake.
        if manifests.len() % 2 == 0 {
            item["size_bytes"] = json!(2345);
        }
        manifests.push(item);
    }
    manifests
}

fn query(url: &str) -> BTreeMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn page(
    items: Vec<Value>,
    field: &str,
    page: usize,
    per_page: usize,
    base: &str,
    path: &str,
) -> Value {
    let total = items.len();
    let start = (page - 1) * per_page;
    let slice: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let last_page = total.div_ceil(per_page).max(1);
    let mut pages = serde_json::Map::new();
    if page < last_page {
        pages.insert(
            "next".into(),
            json!(format!(
                "{base}{path}?page={}&per_page={per_page}",
                page + 1
            )),
        );
        pages.insert(
            "last".into(),
            json!(format!("{base}{path}?page={last_page}&per_page={per_page}")),
        );
    }
    if page > 1 {
        pages.insert(
            "first".into(),
            json!(format!("{base}{path}?page=1&per_page={per_page}")),
        );
        pages.insert(
            "prev".into(),
            json!(format!(
                "{base}{path}?page={}&per_page={per_page}",
                page - 1
            )),
        );
    }
    json!({ field: slice, "links": {"pages": pages}, "meta": {"total": total} })
}

impl FakeDo {
    /// Starts the fake in front of `registry` (its API, its storage, its config for garbage
    /// collection).
    pub fn start(registry: &TestRegistry, options: FakeDoOptions) -> FakeDo {
        let registry_url = registry.url.clone();
        let storage = registry.storage();
        let gc_target = GcTarget::of(registry);
        let state = Arc::new(Mutex::new(FakeDoState::default()));
        // The server's own URL, for the pages' links: known once it listens.
        let base = Arc::new(Mutex::new(String::new()));
        let (thread_state, thread_base) = (state.clone(), base.clone());
        let http = reqwest::blocking::Client::new();
        let access = registry.access();
        let server = FakeServer::start(move |request| {
            let base = thread_base.lock().unwrap().clone();
            let method = request.method.clone();
            let full = request.target.clone();
            let path = request.path.clone();
            let params = query(&full);
            let body = request.body.clone();
            let authorized =
                request.header("authorization") == Some(format!("Bearer {TOKEN}").as_str());
            let mut state = thread_state.lock().unwrap();
            state.requests.push((method.clone(), full.clone()));
            state.times.push(Instant::now());
            // The rate limit: a fixed window.
            let now = Instant::now();
            let window = options.rate_limit.1;
            if state
                .window_start
                .is_none_or(|s| now.duration_since(s) >= window)
            {
                state.window_start = Some(now);
                state.used = 0;
            }
            state.used += 1;
            let reset_in = window.saturating_sub(now.duration_since(state.window_start.unwrap()));
            let reset_epoch = (chrono::Utc::now() + chrono::Duration::from_std(reset_in).unwrap())
                .timestamp()
                + 1;
            let remaining = options.rate_limit.0.saturating_sub(state.used);
            let over = state.used > options.rate_limit.0;
            let is_delete = method == "DELETE";
            if is_delete {
                state.deletes += 1;
            }
            let throttle_this_delete = is_delete
                && !state.delete_throttled
                && options.throttle_delete == Some(state.deletes);
            if throttle_this_delete {
                state.delete_throttled = true;
            }
            let throttle = over || throttle_this_delete;
            let (status, answer): (u16, Value) = if !authorized {
                (
                    401,
                    json!({"id": "unauthorized", "message": "Unable to authenticate you."}),
                )
            } else if throttle {
                state.throttled += 1;
                if is_delete {
                    // A throttled DELETE did nothing: let its retry count as new.
                    state.deletes -= 1;
                }
                (
                    429,
                    json!({"id": "too_many_requests", "message": "API Rate limit exceeded."}),
                )
            } else {
                drop(state);
                let answer = handle(
                    &options,
                    &registry_url,
                    &storage,
                    &gc_target,
                    &base,
                    (&http, &access),
                    (&method, &path, &params, &body),
                    &thread_state,
                );
                state = thread_state.lock().unwrap();
                answer
            };
            drop(state);
            let mut response = Answer {
                status,
                headers: Vec::new(),
                body: if answer.is_null() {
                    Vec::new()
                } else {
                    answer.to_string().into_bytes()
                },
            }
            .with_header("content-type", "application/json")
            .with_header("ratelimit-limit", options.rate_limit.0)
            .with_header("ratelimit-remaining", remaining)
            .with_header("ratelimit-reset", reset_epoch);
            if status == 429 {
                let wait = if over { reset_in.as_secs() + 1 } else { 1 };
                response = response.with_header("retry-after", wait);
            }
            response
        });
        *base.lock().unwrap() = server.url.clone();
        FakeDo {
            url: server.url.clone(),
            state,
            _server: server,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    options: &FakeDoOptions,
    registry_url: &str,
    storage: &Path,
    gc_target: &GcTarget,
    base: &str,
    (http, access): (&reqwest::blocking::Client, &super::registry::RegistryAccess),
    (method, path, params, body): (&str, &str, &BTreeMap<String, String>, &str),
    state: &Arc<Mutex<FakeDoState>>,
) -> (u16, Value) {
    let registry_json = |name: &str| {
        json!({"name": name, "created_at": "2026-01-01T00:00:00Z", "region": "fra1",
               "storage_usage_bytes": 0, "storage_usage_bytes_updated_at": "2026-01-01T00:00:00Z",
               "subscription": {"tier": {"slug": "basic"}}})
    };
    let not_found = (
        404,
        json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
    );
    if path == "/v2/registries" {
        if options.legacy_only {
            return not_found;
        }
        let registries: Vec<Value> = options
            .registries
            .iter()
            .map(|n| registry_json(n))
            .collect();
        return (
            200,
            json!({"registries": registries, "total_storage_usage_bytes": 0}),
        );
    }
    if path == "/v2/registry" {
        if options.registries.len() > 1 {
            return (
                412,
                json!({"id": "precondition_failed", "message": "this account has multiple registries; use the /v2/registries endpoints"}),
            );
        }
        return (
            200,
            json!({"registry": registry_json(&options.registries[0])}),
        );
    }
    let rest = if let Some(rest) = path.strip_prefix("/v2/registries/") {
        if options.legacy_only {
            return not_found;
        }
        rest
    } else if let Some(rest) = path.strip_prefix("/v2/registry/") {
        rest
    } else {
        return not_found;
    };
    let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if name != options.registries[0] {
        return not_found;
    }
    let per_page = params
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 200)
        .min(options.page_cap);
    let page_number = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let prefix = path
        .strip_suffix(rest)
        .unwrap_or(path)
        .trim_end_matches('/')
        .to_string();
    match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
        // `GET /v2/registries/{registry_name}` (the older API has no such path).
        ("GET", [""]) if prefix.starts_with("/v2/registries/") => {
            (200, json!({ "registry": registry_json(name) }))
        }
        ("GET", ["repositoriesV2"]) => {
            // `page_token` is an opaque cursor: here the index of the first entry.
            let start: usize = params
                .get("page_token")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let names = repositories_in(storage);
            let total = names.len();
            let slice: Vec<Value> = names
                .iter()
                .skip(start)
                .take(per_page)
                .map(|n| json!({"registry_name": name, "name": n, "tag_count": 1, "manifest_count": 1,
                                "latest_manifest": {"digest": "sha256:00", "registry_name": name, "repository": n,
                                                    "compressed_size_bytes": 0, "size_bytes": 0,
                                                    "updated_at": "2026-01-01T00:00:00Z", "tags": [], "blobs": []}}))
                .collect();
            let mut pages = serde_json::Map::new();
            if start + per_page < total {
                pages.insert(
                    "next".into(),
                    json!(format!(
                        "{base}{prefix}/repositoriesV2?page_token={}&per_page={per_page}",
                        start + per_page
                    )),
                );
            }
            (
                200,
                json!({"repositories": slice, "links": {"pages": pages}, "meta": {"total": total}}),
            )
        }
        // `DELETE …/repositories/{repository_name}/tags/{repository_tag}`: the tag only (204).
        ("DELETE", ["repositories", repository, "tags", tag]) => {
            let repository = repository.replace("%2F", "/").replace("%2f", "/");
            let tag = super::fake::decode(tag);
            if !tags_in(storage, &repository).contains_key(&tag) {
                return not_found;
            }
            if !super::fake::delete_tag_only(access, &repository, &tag) {
                return (
                    500,
                    json!({"id": "server_error", "message": "tag not deleted"}),
                );
            }
            state.lock().unwrap().deleted_tags.push((repository, tag));
            (204, Value::Null)
        }
        ("GET", ["repositories", repository, "digests"]) => {
            let repository = repository.replace("%2F", "/").replace("%2f", "/");
            if !repositories_in(storage).contains(&repository) {
                return not_found;
            }
            let items = manifests_in(storage, &repository);
            let path = format!(
                "{prefix}/repositories/{}/digests",
                repository.replace('/', "%2F")
            );
            (
                200,
                page(items, "manifests", page_number, per_page, base, &path),
            )
        }
        ("DELETE", ["repositories", repository, "digests", digest]) => {
            if let Some(delay) = options.delete_delay {
                std::thread::sleep(delay);
            }
            let repository = repository.replace("%2F", "/").replace("%2f", "/");
            let status = http
                .delete(format!("{registry_url}/v2/{repository}/manifests/{digest}"))
                .send()
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            match status {
                202 => (204, Value::Null),
                404 => not_found,
                other => (
                    500,
                    json!({"id": "server_error", "message": format!("registry answered {other}")}),
                ),
            }
        }
        ("POST", ["garbage-collection"]) => {
            let kind = serde_json::from_str::<Value>(body).unwrap_or_default()["type"]
                .as_str()
                .unwrap_or("unreferenced blobs only")
                .to_string();
            if !GC_TYPES.contains(&kind.as_str()) {
                return (
                    422,
                    json!({"id": "unprocessable_entity", "message": format!("invalid garbage collection type `{kind}`")}),
                );
            }
            let mut state = state.lock().unwrap();
            if state.gc_running.is_some() {
                return (
                    409,
                    json!({"id": "conflict", "message": "a garbage collection is already running"}),
                );
            }
            let uuid = format!("gc-{}", state.gc_history.len() + 1);
            state.gc_types.push(kind.clone());
            let running = RunningGc {
                uuid,
                step: 0,
                outcome: options.gc_outcome.clone(),
                kind,
            };
            let answer = gc_json(name, &running, GC_STEPS[0], None);
            state.gc_running = Some(running);
            (201, json!({ "garbage_collection": answer }))
        }
        ("GET", ["garbage-collection"]) => {
            let mut state = state.lock().unwrap();
            let Some(mut running) = state.gc_running.clone() else {
                return not_found;
            };
            // Each look moves it one status on, then to its end.
            running.step += 1;
            if running.step < GC_STEPS.len() {
                let answer = gc_json(name, &running, GC_STEPS[running.step], None);
                state.gc_running = Some(running);
                (200, json!({ "garbage_collection": answer }))
            } else {
                let freed = (running.outcome == "succeeded").then(|| {
                    run_registry_gc(gc_target, running.kind.contains("untagged manifests"))
                });
                state.gc_results.extend(freed);
                let done = gc_json(name, &running, &running.outcome, freed);
                state.gc_running = None;
                state.gc_history.insert(0, done.clone());
                (200, json!({"garbage_collection": done}))
            }
        }
        ("GET", ["garbage-collections"]) => {
            let history = state.lock().unwrap().gc_history.clone();
            (
                200,
                page(
                    history,
                    "garbage_collections",
                    page_number,
                    per_page,
                    base,
                    &format!("{prefix}/garbage-collections"),
                ),
            )
        }
        _ => not_found,
    }
}

fn gc_json(registry: &str, gc: &RunningGc, status: &str, freed: Option<(u64, u64)>) -> Value {
    let (blobs, bytes) = freed.unwrap_or_default();
    json!({
        "uuid": gc.uuid, "registry_name": registry, "status": status,
        "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:05Z",
        "blobs_deleted": blobs, "freed_bytes": bytes, "type": gc.kind
    })
}

impl FakeDo {
    /// The environment of a regsweep run against this fake, with `registry` standing in for
    /// registry.digitalocean.com; `extra` adds or overrides variables.
    pub fn env<'a>(
        &self,
        registry: &TestRegistry,
        extra: &[(&'a str, &str)],
    ) -> Vec<(&'a str, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("REGSWEEP_PROVIDER", "digitalocean".into()),
            ("DIGITALOCEAN_ACCESS_TOKEN", TOKEN.into()),
            ("REGSWEEP_DO_API_URL", self.url.clone()),
            ("REGISTRY_URL", registry.url.clone()),
            ("REGISTRY_AUTH", "anonymous:unused".into()),
            ("REGSWEEP_GC_POLL", "50ms".into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }

    /// What each garbage collection that ran freed: (blobs, bytes).
    pub fn gc_results(&self) -> Vec<(u64, u64)> {
        self.state.lock().unwrap().gc_results.clone()
    }

    /// Requests seen whose path contains `part`.
    pub fn requests_to(&self, part: &str) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(_, p)| p.contains(part))
            .cloned()
            .collect()
    }
}
