//! A fake GitHub Packages REST API for container packages, written from GitHub's REST reference
//! (api.github.com.2022-11-28: `users/get-by-username`, `packages/list-packages-for-*`,
//! `packages/get-all-package-versions-for-package-owned-by-*`,
//! `packages/delete-package-version-for-*`, `packages/restore-package-version-for-*`) and the
//! behaviour GitHub is seen to have, backed by the real test registry: the owner's packages
//! are the registry's repositories `<owner>/<package>`, a package's versions are the manifest
//! revisions in its storage (untagged index children included, as GHCR lists them), a DELETE
//! deletes the manifest through the registry (with all its tags), a restore puts it and its
//! tags back. GitHub's rules: 400 "You cannot delete the last tagged version of a package…",
//! pages of at most 100 with `Link`, `x-ratelimit-*` on every answer, the secondary limit
//! (900 points a minute per endpoint, DELETE 5 points) answered 403 with `retry-after`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fake::{page_of, revisions_in, rfc3339, tags_in, Answer, FakeServer, Request};
use super::TestRegistry;

/// The token the fake accepts.
pub const TOKEN: &str = "ghp_fake0123456789abcdefghijklmnopqrstu";

/// What GitHub answers for the last tagged version of a container package.
pub const LAST_TAGGED: &str =
    "You cannot delete the last tagged version of a package. You must delete the package instead.";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeGhcrOptions {
    /// The owner's login.
    pub owner: String,
    /// `Organization` or `User`.
    pub kind: String,
    /// Entries per page at most, whatever `per_page` asks (to force several pages).
    pub page_cap: usize,
    /// Listing the owner's packages answers 400 "Invalid argument." (as for a workflow's
    /// GITHUB_TOKEN).
    pub listing_refused: bool,
    /// The secondary limit: points per window per endpoint.
    pub secondary_limit: (u64, Duration),
    /// The DELETE with this number (1-based) answers a secondary-limit 403 with
    /// `retry-after: 1` once, whatever the points (GitHub's limits are not all public).
    pub throttle_delete: Option<usize>,
    /// Versions (digests) public and downloaded more than 5,000 times: GitHub refuses to
    /// delete them.
    pub popular: Vec<String>,
    /// The first this many DELETEs that delete a version lose their answer: the version is
    /// gone, and the client gets a 504 from GitHub's edge.
    pub lost_delete_answers: usize,
    /// Each DELETE takes this long (a slow API, for killing a run half-way).
    pub delete_delay: Option<Duration>,
}

/// What GitHub answers for a public version downloaded more than 5,000 times.
pub const POPULAR: &str = "Publicly visible package versions with more than 5000 downloads cannot be deleted. Contact GitHub support for further assistance.";

impl Default for FakeGhcrOptions {
    fn default() -> Self {
        FakeGhcrOptions {
            owner: "acme".into(),
            kind: "Organization".into(),
            page_cap: 100,
            listing_refused: false,
            secondary_limit: (900, Duration::from_secs(60)),
            throttle_delete: None,
            popular: Vec::new(),
            lost_delete_answers: 0,
            delete_delay: None,
        }
    }
}

/// A version the fake deleted, kept for a restore.
#[derive(Debug, Clone)]
struct Removed {
    repository: String,
    digest: String,
    media_type: String,
    bytes: Vec<u8>,
    tags: Vec<String>,
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct FakeGhcrState {
    /// Every request: method and path with query.
    pub requests: Vec<(String, String)>,
    /// When each DELETE came.
    pub delete_times: Vec<Instant>,
    /// 403s for going over the secondary limit: avoidable by pacing.
    pub over_limit: usize,
    /// Scripted secondary-limit answers (`throttle_delete`).
    pub scripted: usize,
    /// Versions deleted (ids).
    pub deleted: Vec<u64>,
    /// Versions restored (ids).
    pub restored: Vec<u64>,
    /// DELETE answers lost (`lost_delete_answers`).
    pub lost: usize,
    removed: HashMap<u64, Removed>,
    points: HashMap<String, VecDeque<(Instant, u64)>>,
    deletes: usize,
    throttled_once: bool,
}

/// A running fake GitHub API.
pub struct FakeGhcr {
    /// `http://127.0.0.1:PORT`: GITHUB_API_URL.
    pub url: String,
    /// What it saw.
    pub state: Arc<Mutex<FakeGhcrState>>,
    /// The owner.
    pub owner: String,
    /// Where runs against it write their undo journal (REGSWEEP_JOURNAL).
    pub journal: PathBuf,
    _journal_dir: tempfile::TempDir,
    _server: FakeServer,
}

/// A version's id: stable, from its digest (what GitHub's ids are not, but tests need
/// nothing more).
pub fn version_id(digest: &str) -> u64 {
    let hex = digest.trim_start_matches("sha256:");
    u64::from_str_radix(&hex[..12.min(hex.len())], 16).unwrap_or(0)
}

struct Backing {
    registry_url: String,
    storage: PathBuf,
    http: reqwest::blocking::Client,
}

impl Backing {
    fn versions(&self, repository: &str) -> Vec<Value> {
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tag, digest) in tags_in(&self.storage, repository) {
            tags.entry(digest).or_default().push(tag);
        }
        let mut versions: Vec<Value> = revisions_in(&self.storage, repository)
            .into_iter()
            .map(|(digest, stored)| {
                let id = version_id(&digest);
                json!({
                    "id": id,
                    "name": digest,
                    "url": format!("https://api.github.com/versions/{id}"),
                    "package_html_url": "https://github.com/orgs/acme/packages/container/package/x",
                    "created_at": rfc3339(stored),
                    "updated_at": rfc3339(stored),
                    "html_url": format!("https://github.com/acme/packages/{id}"),
                    "metadata": {"package_type": "container",
                                 "container": {"tags": tags.get(&digest).cloned().unwrap_or_default()}}
                })
            })
            .collect();
        // Newest first, as GitHub lists them.
        versions.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
        versions
    }

    fn manifest(&self, repository: &str, digest: &str) -> Option<(String, Vec<u8>)> {
        let response = self
            .http
            .get(format!(
                "{}/v2/{repository}/manifests/{digest}",
                self.registry_url
            ))
            .header("accept", super::media::ACCEPT_ALL)
            .send()
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let media_type = response.headers()["content-type"]
            .to_str()
            .ok()?
            .to_string();
        Some((media_type, response.bytes().ok()?.to_vec()))
    }

    fn put(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) -> bool {
        self.http
            .put(format!(
                "{}/v2/{repository}/manifests/{reference}",
                self.registry_url
            ))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .is_ok_and(|r| r.status().as_u16() == 201)
    }
}

fn message(status: u16, text: &str) -> Answer {
    Answer::json(
        status,
        json!({"message": text, "documentation_url": "https://docs.github.com/rest/packages/packages",
               "status": status.to_string()}),
    )
}

impl FakeGhcr {
    /// Starts the fake in front of `registry`.
    pub fn start(registry: &TestRegistry, options: FakeGhcrOptions) -> FakeGhcr {
        let state = Arc::new(Mutex::new(FakeGhcrState::default()));
        let shared = state.clone();
        let backing = Backing {
            registry_url: registry.url.clone(),
            storage: registry.storage(),
            http: reqwest::blocking::Client::new(),
        };
        let owner = options.owner.clone();
        let base = Arc::new(Mutex::new(String::new()));
        let base_for_server = base.clone();
        let server = FakeServer::start(move |request| {
            let base = base_for_server.lock().unwrap().clone();
            let mut state = shared.lock().unwrap();
            let full = format!(
                "{}{}",
                request.path,
                if request.query.is_empty() {
                    String::new()
                } else {
                    format!(
                        "?{}",
                        url::form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(&request.query)
                            .finish()
                    )
                }
            );
            state.requests.push((request.method.clone(), full));
            let answer = answer(&options, &backing, &base, &mut state, request);
            // The primary limit, generous and never spent here.
            let reset = chrono::Utc::now().timestamp() + 3600;
            answer
                .with_header("x-ratelimit-limit", 5000)
                .with_header("x-ratelimit-remaining", 4000)
                .with_header("x-ratelimit-used", 1000)
                .with_header("x-ratelimit-reset", reset)
                .with_header("x-ratelimit-resource", "core")
        });
        *base.lock().unwrap() = server.url.clone();
        let journal_dir = tempfile::tempdir().unwrap();
        FakeGhcr {
            url: server.url.clone(),
            state,
            owner,
            journal: journal_dir.path().join("regsweep-journal.jsonl"),
            _journal_dir: journal_dir,
            _server: server,
        }
    }

    /// The environment of a regsweep run against this fake, with `registry` standing in for
    /// ghcr.io; `extra` adds or overrides variables.
    pub fn env<'a>(
        &self,
        registry: &TestRegistry,
        extra: &[(&'a str, &str)],
    ) -> Vec<(&'a str, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("REGISTRY_PROVIDER", "ghcr".into()),
            ("GITHUB_TOKEN", TOKEN.into()),
            ("GITHUB_API_URL", self.url.clone()),
            ("GITHUB_REPOSITORY_OWNER", self.owner.clone()),
            ("REGISTRY_URL", registry.url.clone()),
            ("REGSWEEP_JOURNAL", self.journal.display().to_string()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
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

/// Spends `points` of the secondary limit on `endpoint`; the wait until they fit when over.
fn spend(
    state: &mut FakeGhcrState,
    limit: (u64, Duration),
    endpoint: &str,
    points: u64,
) -> Option<Duration> {
    let now = Instant::now();
    let window = state.points.entry(endpoint.to_string()).or_default();
    while window
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) >= limit.1)
    {
        window.pop_front();
    }
    let spent: u64 = window.iter().map(|(_, p)| p).sum();
    if spent + points > limit.0 {
        let oldest = window.front().map(|(t, _)| *t).unwrap_or(now);
        return Some(limit.1.saturating_sub(now.duration_since(oldest)));
    }
    window.push_back((now, points));
    None
}

fn answer(
    options: &FakeGhcrOptions,
    backing: &Backing,
    base: &str,
    state: &mut FakeGhcrState,
    request: &Request,
) -> Answer {
    if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return message(401, "Bad credentials");
    }
    let method = request.method.as_str();
    let is_delete = method == "DELETE";
    if is_delete {
        state.deletes += 1;
        state.delete_times.push(Instant::now());
        if options.throttle_delete == Some(state.deletes) && !state.throttled_once {
            state.throttled_once = true;
            state.scripted += 1;
            return message(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
                .with_header("retry-after", 1);
        }
    }
    let points = if method == "GET" { 1 } else { 5 };
    if let Some(wait) = spend(state, options.secondary_limit, method, points) {
        state.over_limit += 1;
        return message(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
            .with_header("retry-after", wait.as_secs() + 1);
    }
    let segments = request.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let owner_path = if options.kind == "Organization" {
        "orgs"
    } else {
        "users"
    };
    match (method, parts.as_slice()) {
        ("GET", ["users", login]) if *login == options.owner => Answer::json(
            200,
            json!({"login": options.owner, "id": 4242, "type": options.kind,
                   "html_url": format!("https://github.com/{}", options.owner)}),
        ),
        ("GET", ["users", _]) => message(404, "Not Found"),
        ("GET", [kind, login, "packages"]) if *kind == owner_path && *login == options.owner => {
            if options.listing_refused {
                return message(400, "Invalid argument.");
            }
            if request.query.get("package_type").map(String::as_str) != Some("container") {
                return message(400, "Invalid argument.");
            }
            let prefix = format!("{}/", options.owner);
            let names: Vec<String> = super::fake::repositories_in(&backing.storage)
                .into_iter()
                .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
                .collect();
            let items: Vec<Value> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    json!({"id": 1000 + i, "name": name, "package_type": "container",
                           "visibility": "private", "version_count": 1,
                           "url": "https://api.github.com/x", "html_url": "https://github.com/x",
                           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                           "owner": {"login": options.owner, "type": options.kind}})
                })
                .collect();
            paged(request, base, &items, options.page_cap)
        }
        (_, [kind, login, "packages", "container", package, rest @ ..])
            if *kind == owner_path && *login == options.owner =>
        {
            let repository = format!("{}/{package}", options.owner);
            if super::fake::revisions_in(&backing.storage, &repository).is_empty()
                && !state.removed.values().any(|r| r.repository == repository)
            {
                return message(404, "Package not found.");
            }
            versions(options, backing, base, state, request, &repository, rest)
        }
        _ => message(404, "Not Found"),
    }
}

fn paged(request: &Request, base: &str, items: &[Value], cap: usize) -> Answer {
    let per_page = request.number("per_page", 30).clamp(1, 100).min(cap);
    let page = request.number("page", 1).max(1);
    let (slice, more) = page_of(items, page, per_page);
    let mut answer = Answer::json(200, Value::Array(slice));
    if more {
        let mut query = request.query.clone();
        query.insert("page".into(), (page + 1).to_string());
        query.insert("per_page".into(), per_page.to_string());
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        answer = answer.with_header(
            "link",
            format!(r#"<{base}{}?{encoded}>; rel="next""#, request.path),
        );
    }
    answer
}

fn versions(
    options: &FakeGhcrOptions,
    backing: &Backing,
    base: &str,
    state: &mut FakeGhcrState,
    request: &Request,
    repository: &str,
    rest: &[&str],
) -> Answer {
    match (request.method.as_str(), rest) {
        ("GET", ["versions"]) => {
            let items = backing.versions(repository);
            paged(request, base, &items, options.page_cap)
        }
        ("DELETE", ["versions", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return message(404, "Not Found");
            };
            let versions = backing.versions(repository);
            let Some(version) = versions.iter().find(|v| v["id"].as_u64() == Some(id)) else {
                return message(404, "Package version not found.");
            };
            let tags: Vec<String> = version["metadata"]["container"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            let tagged_versions = versions
                .iter()
                .filter(|v| {
                    v["metadata"]["container"]["tags"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty())
                })
                .count();
            if !tags.is_empty() && tagged_versions == 1 {
                return message(400, LAST_TAGGED);
            }
            let digest = version["name"].as_str().unwrap_or_default().to_string();
            if options.popular.contains(&digest) {
                return message(400, POPULAR);
            }
            if let Some(delay) = options.delete_delay {
                std::thread::sleep(delay);
            }
            let Some((media_type, bytes)) = backing.manifest(repository, &digest) else {
                return message(404, "Package version not found.");
            };
            let deleted = backing
                .http
                .delete(format!(
                    "{}/v2/{repository}/manifests/{digest}",
                    backing.registry_url
                ))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 202);
            if !deleted {
                return message(500, "Server Error");
            }
            state.deleted.push(id);
            state.removed.insert(
                id,
                Removed {
                    repository: repository.to_string(),
                    digest,
                    media_type,
                    bytes,
                    tags,
                },
            );
            if state.lost < options.lost_delete_answers {
                state.lost += 1;
                return message(504, "We couldn't respond to your request in time.");
            }
            Answer::empty(204)
        }
        ("POST", ["versions", id, "restore"]) => {
            let Some((id, removed)) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| state.removed.get(&id).map(|r| (id, r.clone())))
            else {
                return message(404, "Package version not found.");
            };
            let put = |reference: &str| {
                backing.put(
                    &removed.repository,
                    reference,
                    &removed.media_type,
                    &removed.bytes,
                )
            };
            // An index whose children are missing is refused by the registry: GitHub answers
            // such a restore with an error, and the version stays restorable.
            if !put(&removed.digest) || !removed.tags.iter().all(|t| put(t)) {
                return message(422, "The package version could not be restored.");
            }
            state.removed.remove(&id);
            state.restored.push(id);
            Answer::empty(204)
        }
        _ => message(404, "Not Found"),
    }
}
