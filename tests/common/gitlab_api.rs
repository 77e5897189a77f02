//! A fake of GitLab's container registry API (v4), written from GitLab's API reference
//! (doc/api/container_registry.md) and source (lib/api/project_container_repositories.rb,
//! lib/api/entities/container_registry.rb, lib/gitlab/pagination/offset_header_builder.rb),
//! backed by the real test registry: the project's registry repositories are the registry's
//! repositories named `<project path>` or below it, their tags are the registry's tags, tag
//! details carry the manifest digest, and a tag DELETE removes that tag only, the way GitLab
//! does it on a registry without a tag-delete API (the tag is re-pointed to a throwaway
//! manifest, which is deleted by digest). Offset pages with `X-Page`, `X-Per-Page`,
//! `X-Next-Page` (empty on the last page), `X-Prev-Page`, `X-Total`, `X-Total-Pages` and `Link`
//! (prev, next, first, last); `RateLimit-*` headers; 429 with `Retry-After`; a protected tag
//! answers 403 "403 Forbidden - cannot delete protected tag(s)".

use std::sync::{Arc, Mutex};

use regex::Regex;
use serde_json::{json, Value};

use super::fake::{decode, page_of, repositories_in, tags_in, Answer, FakeServer, Request};
use super::registry::RegistryAccess;
use super::TestRegistry;

/// The private token the fake accepts.
pub const PRIVATE_TOKEN: &str = "glpat-fake0123456789abcdef";
/// The job token the fake accepts.
pub const JOB_TOKEN: &str = "glcbt-fake-job-token-0123456789";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeGitlabOptions {
    /// The project's id.
    pub project_id: u64,
    /// The project's path; its registry repositories are this path and those below it.
    pub project_path: String,
    /// Entries per page at most, whatever `per_page` asks.
    pub page_cap: usize,
    /// Protected tag patterns (RE2 syntax; these tests use plain regexes).
    pub protected: Vec<String>,
    /// The DELETE with this number (1-based) answers 429 with `Retry-After: 1` once.
    pub throttle_delete: Option<usize>,
    /// `(tag, to)`: a CI push "during the run": right after answering the second listing of
    /// the tags of the repository holding `tag` (the first is discovery), `tag` is pointed at
    /// what tag `to` points at.
    pub move_tag_after_second_listing: Option<(String, String)>,
}

impl Default for FakeGitlabOptions {
    fn default() -> Self {
        FakeGitlabOptions {
            project_id: 42,
            project_path: "group/project".into(),
            page_cap: 100,
            protected: Vec::new(),
            throttle_delete: None,
            move_tag_after_second_listing: None,
        }
    }
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct FakeGitlabState {
    /// Every request: method and path with query.
    pub requests: Vec<(String, String)>,
    /// The token header of every request: `private-token` or `job-token`.
    pub token_headers: Vec<String>,
    /// Tags deleted: (repository, tag).
    pub deleted_tags: Vec<(String, String)>,
    /// 429s answered.
    pub throttled: usize,
    /// Tags moved by `move_tag_after_second_listing`.
    pub moved: Vec<String>,
    deletes: usize,
    listings: std::collections::BTreeMap<String, usize>,
}

/// A running fake GitLab API.
pub struct FakeGitlab {
    /// `http://127.0.0.1:PORT/api/v4`: CI_API_V4_URL.
    pub api_url: String,
    /// What it saw.
    pub state: Arc<Mutex<FakeGitlabState>>,
    _server: FakeServer,
}

fn message(status: u16, text: &str) -> Answer {
    Answer::json(status, json!({ "message": text }))
}

/// Repositories of the project: the registry's repositories at or below its path, in a
/// stable order with their ids (1, 2, …).
fn project_repositories(
    registry: &RegistryAccess,
    storage: &std::path::Path,
    project: &str,
) -> Vec<(u64, String)> {
    let _ = registry;
    repositories_in(storage)
        .into_iter()
        .filter(|r| r == project || r.starts_with(&format!("{project}/")))
        .enumerate()
        .map(|(i, r)| (i as u64 + 1, r))
        .collect()
}

impl FakeGitlab {
    /// Starts the fake in front of `registry`.
    pub fn start(registry: &TestRegistry, options: FakeGitlabOptions) -> FakeGitlab {
        let state = Arc::new(Mutex::new(FakeGitlabState::default()));
        let shared = state.clone();
        let access = registry.access();
        let storage = registry.storage();
        let protected: Vec<Regex> = options
            .protected
            .iter()
            .map(|p| Regex::new(p).unwrap())
            .collect();
        let base = Arc::new(Mutex::new(String::new()));
        let base_for_server = base.clone();
        let server = FakeServer::start(move |request| {
            let base = base_for_server.lock().unwrap().clone();
            let mut state = shared.lock().unwrap();
            state
                .requests
                .push((request.method.clone(), request.path.clone()));
            let answer = answer(
                &options, &protected, &access, &storage, &base, &mut state, request,
            );
            let reset = chrono::Utc::now().timestamp() + 60;
            answer
                .with_header("ratelimit-name", "throttle_authenticated_api")
                .with_header("ratelimit-limit", 2000)
                .with_header("ratelimit-observed", 10)
                .with_header("ratelimit-remaining", 1990)
                .with_header("ratelimit-reset", reset)
        });
        *base.lock().unwrap() = server.url.clone();
        FakeGitlab {
            api_url: format!("{}/api/v4", server.url),
            state,
            _server: server,
        }
    }

    /// The environment of a regsweep run as GitLab CI gives it, with the test registry as
    /// CI_REGISTRY (REGISTRY_URL set too: the test registry speaks plain http);
    /// `extra` adds or overrides variables.
    pub fn env<'a>(
        &self,
        registry: &TestRegistry,
        options: &FakeGitlabOptions,
        extra: &[(&'a str, &str)],
    ) -> Vec<(&'a str, String)> {
        let (user, password) = registry.auth.clone().unwrap_or_default();
        let mut env: Vec<(&str, String)> = vec![
            ("GITLAB_CI", "true".into()),
            ("REGISTRY_PROVIDER", "gitlab".into()),
            ("CI_API_V4_URL", self.api_url.clone()),
            ("CI_PROJECT_ID", options.project_id.to_string()),
            ("CI_JOB_TOKEN", JOB_TOKEN.into()),
            (
                "CI_REGISTRY",
                registry.url.trim_start_matches("http://").to_string(),
            ),
            ("REGISTRY_URL", registry.url.clone()),
            ("CI_REGISTRY_USER", user),
            ("CI_REGISTRY_PASSWORD", password),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }
}

/// A page of `items` with GitLab's offset-pagination headers.
fn paged(request: &Request, base: &str, items: &[Value], cap: usize) -> Answer {
    let per_page = request.number("per_page", 20).clamp(1, 100).min(cap);
    let page = request.number("page", 1).max(1);
    let (slice, more) = page_of(items, page, per_page);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let link = |page: usize| {
        let mut query = request.query.clone();
        query.insert("page".into(), page.to_string());
        query.insert("per_page".into(), per_page.to_string());
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        format!("<{base}{}?{encoded}>", request.path)
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(r#"{}; rel="prev""#, link(page - 1)));
    }
    if more {
        links.push(format!(r#"{}; rel="next""#, link(page + 1)));
    }
    links.push(format!(r#"{}; rel="first""#, link(1)));
    links.push(format!(r#"{}; rel="last""#, link(total_pages)));
    Answer::json(200, Value::Array(slice))
        .with_header("x-page", page)
        .with_header("x-per-page", per_page)
        .with_header(
            "x-next-page",
            if more {
                (page + 1).to_string()
            } else {
                String::new()
            },
        )
        .with_header(
            "x-prev-page",
            if page > 1 {
                (page - 1).to_string()
            } else {
                String::new()
            },
        )
        .with_header("x-total", items.len())
        .with_header("x-total-pages", total_pages)
        .with_header("link", links.join(", "))
}

#[allow(clippy::too_many_arguments)]
fn answer(
    options: &FakeGitlabOptions,
    protected: &[Regex],
    registry: &RegistryAccess,
    storage: &std::path::Path,
    base: &str,
    state: &mut FakeGitlabState,
    request: &Request,
) -> Answer {
    let header = if request.header("private-token") == Some(PRIVATE_TOKEN) {
        "private-token"
    } else if request.header("job-token") == Some(JOB_TOKEN) {
        "job-token"
    } else {
        return message(401, "401 Unauthorized");
    };
    state.token_headers.push(header.to_string());
    if request.method == "DELETE" {
        state.deletes += 1;
        if options.throttle_delete == Some(state.deletes) {
            state.throttled += 1;
            return Answer {
                status: 429,
                headers: vec![
                    ("retry-after".into(), "1".into()),
                    (
                        "ratelimit-resettime".into(),
                        chrono::Utc::now().to_rfc2822(),
                    ),
                ],
                body: b"Retry later".to_vec(),
            };
        }
    }
    // `:id` is matched as one segment (`[^/]+`): a raw `/` in a path never matches.
    let raw: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let ["api", "v4", "projects", id, "registry", "repositories", rest @ ..] = raw.as_slice()
    else {
        return message(404, "404 Not Found");
    };
    let id = decode(id);
    if id != options.project_id.to_string() && id != options.project_path {
        return message(404, "404 Project Not Found");
    }
    let repositories = project_repositories(registry, storage, &options.project_path);
    let repository = |rid: &str| {
        repositories
            .iter()
            .find(|(id, _)| id.to_string() == rid)
            .map(|(_, path)| path.clone())
    };
    match (request.method.as_str(), rest) {
        ("GET", []) => {
            let items: Vec<Value> = repositories
                .iter()
                .map(|(id, path)| {
                    let name = path
                        .strip_prefix(&options.project_path)
                        .unwrap_or_default()
                        .trim_start_matches('/');
                    json!({"id": id, "name": name, "path": path, "project_id": options.project_id,
                           "location": format!("{}/{path}", registry.url.trim_start_matches("http://")),
                           "created_at": "2026-01-10T13:38:57.391Z",
                           "cleanup_policy_started_at": null, "status": null})
                })
                .collect();
            paged(request, base, &items, options.page_cap)
        }
        ("GET", [rid, "tags"]) => {
            let Some(path) = repository(rid) else {
                return message(404, "404 Not found");
            };
            let tags = tags_in(storage, &path);
            let items: Vec<Value> = tags
                .keys()
                .map(|tag| {
                    json!({"name": tag, "path": format!("{path}:{tag}"),
                           "location": format!("{}/{path}:{tag}", registry.url.trim_start_matches("http://"))})
                })
                .collect();
            let answer = paged(request, base, &items, options.page_cap);
            if let Some((tag, to)) = &options.move_tag_after_second_listing {
                let first_page = request.number("page", 1) == 1;
                if first_page && tags.contains_key(tag) {
                    let seen = state.listings.entry(path.clone()).or_default();
                    *seen += 1;
                    if *seen == 2 {
                        let target = tags[to].clone();
                        registry.retag(&path, &target, tag);
                        state.moved.push(tag.clone());
                    }
                }
            }
            answer
        }
        ("GET", [rid, "tags", tag]) => {
            let Some(path) = repository(rid) else {
                return message(404, "404 Not found");
            };
            let tag = decode(tag);
            let Some(digest) = tags_in(storage, &path).get(&tag).cloned() else {
                return message(404, "404 Tag Not Found");
            };
            let hex = digest.trim_start_matches("sha256:");
            let document = std::fs::read(storage.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            )))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or_default();
            let revision = document["config"]["digest"]
                .as_str()
                .map(|d| d.trim_start_matches("sha256:").to_string());
            // Without GitLab's metadata database, `created_at` is the image config's `created`
            // (null when the config has none): for reproducible builds, 1970.
            let created_at = revision
                .as_ref()
                .and_then(|hex| {
                    std::fs::read(storage.join(format!(
                        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                        &hex[..2]
                    )))
                    .ok()
                })
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .map(|config| config["created"].clone())
                .unwrap_or(Value::Null);
            Answer::json(
                200,
                json!({"name": tag, "path": format!("{path}:{tag}"),
                       "location": format!("{}/{path}:{tag}", registry.url.trim_start_matches("http://")),
                       "revision": revision,
                       "short_revision": revision.as_ref().map(|r| r[..9].to_string()),
                       "digest": digest, "created_at": created_at,
                       "total_size": 1234}),
            )
        }
        ("DELETE", [rid, "tags", tag]) => {
            let Some(path) = repository(rid) else {
                return message(404, "404 Not found");
            };
            let tag = decode(tag);
            if !tags_in(storage, &path).contains_key(&tag) {
                return message(404, "404 Tag Not Found");
            }
            if protected.iter().any(|p| p.is_match(&tag)) {
                return message(403, "403 Forbidden - cannot delete protected tag(s)");
            }
            if !super::fake::delete_tag_only(registry, &path, &tag) {
                return message(400, "400 Bad request");
            }
            state.deleted_tags.push((path, tag));
            Answer::json(200, Value::Null)
        }
        ("DELETE", [_, "tags"]) => message(
            400,
            "regsweep never uses the bulk delete: this fake refuses it",
        ),
        _ => message(404, "404 Not Found"),
    }
}
