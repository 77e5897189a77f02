//! A fake Harbor, written from Harbor's swagger (api/v2.0/swagger.yaml) and source
//! (src/pkg/artifact/dao/dao.go, src/controller/artifact/controller.go,
//! src/server/v2.0/handler/{artifact,gc,base}.go), backed by the real test registry and serving
//! its `/v2/` API on the same origin (passed through). Projects are the first segment of the
//! registry's repositories. The artifact list follows Harbor's rules: tagged artifacts and
//! untagged ones no index lists, accessories (a manifest with a `subject`, a cosign `.sig`)
//! only inside their subject with `with_accessory=true`; pages of at most 100 (`X-Total-Count`,
//! relative `Link` joined by " , "); repository names encoded twice. DELETE answers 412
//! `VIOLATE_FOREIGN_KEY_CONSTRAINT` for an artifact an index still lists and otherwise deletes
//! deeply, as Harbor does: hard accessories and the untagged children no other index lists go
//! with it. GC (`POST /system/gc/schedule`, admin only: a robot gets 403) runs the registry's
//! own `garbage-collect` and reports `freed_space` and `purged_blobs` in `job_parameters`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::fake::{
    decode, page_of, revisions_in, rfc3339, run_registry_gc, tags_in, Answer, FakeServer, GcTarget,
    Request,
};
use super::registry::RegistryAccess;
use super::TestRegistry;

/// The system administrator.
pub const ADMIN: (&str, &str) = ("admin", "Harbor12345");
/// A project robot of `library`: lists and deletes artifacts, may not start GC.
pub const ROBOT: (&str, &str) = ("robot$library+cleaner", "Robot-Secret-0123");

/// How the fake behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeHarborOptions {
    /// Entries per page at most (Harbor's default page size is 10).
    pub page_cap: usize,
    /// Artifacts Harbor believes an index lists that the registry does not show (its
    /// database and the plan disagree): deleting them answers 412.
    pub foreign_parents: Vec<String>,
    /// How garbage collection ends: `Success` (default) or `Error`.
    pub gc_outcome: Option<String>,
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct FakeHarborState {
    /// Every API request (not `/v2/`): method and path with query.
    pub requests: Vec<(String, String)>,
    /// Artifacts deleted by a DELETE of their own: (repository, digest).
    pub deleted: Vec<(String, String)>,
    /// Artifacts deleted along with another: (repository, digest, parent).
    pub cascaded: Vec<(String, String, String)>,
    /// Tags deleted by the tag API: (repository, tag).
    pub deleted_tags: Vec<(String, String)>,
    /// `delete_untagged` of every garbage collection started.
    pub gc_untagged: Vec<bool>,
    gc: BTreeMap<u64, (bool, usize)>,
}

/// A running fake Harbor.
pub struct FakeHarbor {
    /// `http://127.0.0.1:PORT`: REGISTRY_URL.
    pub url: String,
    /// What it saw.
    pub state: Arc<Mutex<FakeHarborState>>,
    _server: FakeServer,
}

/// An artifact's id: stable, from its digest.
fn artifact_id(digest: &str) -> u64 {
    let hex = digest.trim_start_matches("sha256:");
    u64::from_str_radix(&hex[..10.min(hex.len())], 16).unwrap_or(0)
}

fn error(status: u16, code: &str, text: &str) -> Answer {
    Answer::json(status, json!({"errors": [{"code": code, "message": text}]}))
}

/// One repository as Harbor models it, from the registry's storage.
struct Model {
    /// digest → (its document, when stored).
    manifests: BTreeMap<String, (Value, String)>,
    /// digest → tags.
    tags: BTreeMap<String, Vec<String>>,
    /// child → the indexes listing it.
    parents: BTreeMap<String, BTreeSet<String>>,
    /// accessory → (its subject, its type).
    accessory_of: BTreeMap<String, (String, &'static str)>,
}

impl Model {
    fn read(storage: &std::path::Path, repository: &str) -> Model {
        let mut manifests = BTreeMap::new();
        for (digest, stored) in revisions_in(storage, repository) {
            let hex = digest.trim_start_matches("sha256:");
            let document: Value = std::fs::read(storage.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            )))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
            manifests.insert(digest, (document, rfc3339(stored)));
        }
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tag, digest) in tags_in(storage, repository) {
            tags.entry(digest).or_default().push(tag);
        }
        let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut accessory_of = BTreeMap::new();
        for (digest, (document, _)) in &manifests {
            for child in document["manifests"].as_array().into_iter().flatten() {
                if let Some(child) = child["digest"].as_str() {
                    parents
                        .entry(child.to_string())
                        .or_default()
                        .insert(digest.clone());
                }
            }
            if let Some(subject) = document["subject"]["digest"].as_str() {
                if manifests.contains_key(subject) {
                    accessory_of.insert(digest.clone(), (subject.to_string(), "subject.accessory"));
                }
            }
            for tag in tags.get(digest).into_iter().flatten() {
                let Some(target) = tag
                    .strip_prefix("sha256-")
                    .and_then(|t| t.strip_suffix(".sig"))
                    .map(|hex| format!("sha256:{hex}"))
                else {
                    continue;
                };
                if manifests.contains_key(&target) {
                    accessory_of.insert(digest.clone(), (target, "signature.cosign"));
                }
            }
        }
        Model {
            manifests,
            tags,
            parents,
            accessory_of,
        }
    }

    fn tagged(&self, digest: &str) -> bool {
        self.tags.get(digest).is_some_and(|t| !t.is_empty())
    }

    /// Harbor's list: tagged, or listed by no index; never an accessory.
    fn listed(&self) -> Vec<&String> {
        self.manifests
            .keys()
            .filter(|d| !self.accessory_of.contains_key(*d))
            .filter(|d| self.tagged(d) || !self.parents.contains_key(*d))
            .collect()
    }

    fn artifact(&self, digest: &str, with_accessory: bool) -> Value {
        let (document, pushed) = &self.manifests[digest];
        let tags: Vec<Value> = self
            .tags
            .get(digest)
            .into_iter()
            .flatten()
            .map(|t| json!({"id": artifact_id(digest) + 1, "name": t, "push_time": pushed, "immutable": false}))
            .collect();
        let references: Vec<Value> = document["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                json!({"parent_id": artifact_id(digest), "child_id": artifact_id(c["digest"].as_str().unwrap_or_default()),
                       "child_digest": c["digest"], "platform": c["platform"]})
            })
            .collect();
        let mut artifact = json!({
            "id": artifact_id(digest), "type": "IMAGE", "digest": digest,
            "media_type": document["config"]["mediaType"], "manifest_media_type": document["mediaType"],
            "size": 1234, "push_time": pushed, "pull_time": "0001-01-01T00:00:00.000Z",
            "tags": if tags.is_empty() { Value::Null } else { Value::Array(tags) },
            "references": if references.is_empty() { Value::Null } else { Value::Array(references) },
        });
        if with_accessory {
            let accessories: Vec<Value> = self
                .accessory_of
                .iter()
                .filter(|(_, (subject, _))| subject == digest)
                .map(|(accessory, (_, kind))| {
                    json!({"id": artifact_id(accessory) + 7, "artifact_id": artifact_id(accessory),
                           "subject_artifact_digest": digest, "digest": accessory, "type": kind, "size": 99})
                })
                .collect();
            artifact["accessories"] = if accessories.is_empty() {
                Value::Null
            } else {
                Value::Array(accessories)
            };
        }
        artifact
    }
}

impl FakeHarbor {
    /// Starts the fake in front of `registry`.
    pub fn start(registry: &TestRegistry, options: FakeHarborOptions) -> FakeHarbor {
        let state = Arc::new(Mutex::new(FakeHarborState::default()));
        let shared = state.clone();
        let access = registry.access();
        let gc = GcTarget::of(registry);
        let server = FakeServer::start(move |request| {
            let account = account(request);
            if request.path.starts_with("/v2/") {
                if let Some(answer) = referrers(&gc.storage, account, request) {
                    return answer;
                }
                return pass_through(&access, account, request);
            }
            let mut state = shared.lock().unwrap();
            state.requests.push((
                request.method.clone(),
                format!(
                    "{}?{}",
                    request.path,
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&request.query)
                        .finish()
                ),
            ));
            api(&options, &access, &gc, account, &mut state, request)
        });
        FakeHarbor {
            url: server.url.clone(),
            state,
            _server: server,
        }
    }

    /// The environment of a regsweep run against this Harbor as `account`.
    pub fn env<'a>(
        &self,
        account: (&str, &str),
        extra: &[(&'a str, &str)],
    ) -> Vec<(&'a str, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("REGISTRY_PROVIDER", "harbor".into()),
            ("REGISTRY_URL", self.url.clone()),
            ("REGISTRY_AUTH", format!("{}:{}", account.0, account.1)),
            ("HARBOR_PROJECT", "library".into()),
            ("REGSWEEP_GC_POLL", "50ms".into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }
}

/// Which account a request authenticates as: admin, robot, or anonymous (bad credentials
/// are anonymous in Harbor too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Account {
    Admin,
    Robot,
    Anonymous,
}

fn account(request: &Request) -> Account {
    use base64::Engine as _;
    let Some(basic) = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Account::Anonymous;
    };
    if basic == format!("{}:{}", ADMIN.0, ADMIN.1) {
        Account::Admin
    } else if basic == format!("{}:{}", ROBOT.0, ROBOT.1) {
        Account::Robot
    } else {
        Account::Anonymous
    }
}

/// `/v2/` on Harbor's origin: basic auth accepted, the registry answers.
fn pass_through(registry: &RegistryAccess, account: Account, request: &Request) -> Answer {
    if account == Account::Anonymous {
        return error(401, "UNAUTHORIZED", "unauthorized")
            .with_header("www-authenticate", r#"Basic realm="harbor""#)
            .with_header("docker-distribution-api-version", "registry/2.0");
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&request.query)
        .finish();
    let path = if query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{query}", request.path)
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut forwarded = registry.request(method, &path);
    if let Some(accept) = request.header("accept") {
        forwarded = forwarded.header("accept", accept);
    }
    let Ok(response) = forwarded.send() else {
        return error(500, "UNKNOWN", "internal server error");
    };
    let mut answer = Answer::empty(response.status().as_u16());
    for name in [
        "content-type",
        "docker-content-digest",
        "link",
        "content-length",
    ] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            if name != "content-length" {
                answer = answer.with_header(name, value);
            }
        }
    }
    answer.body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
    answer
}

/// Harbor's referrers API (`GET /v2/<name>/referrers/<digest>`, src/server/registry/
/// referrers.go): every accessory whose subject is the manifest, cosign signatures included
/// (which have no `subject` field of their own), as an OCI index; an unknown manifest gives an
/// empty index. `None` for any other `/v2/` request.
fn referrers(storage: &std::path::Path, account: Account, request: &Request) -> Option<Answer> {
    let rest = request.path.strip_prefix("/v2/")?;
    let (repository, digest) = rest.rsplit_once("/referrers/")?;
    if account == Account::Anonymous {
        return Some(
            error(401, "UNAUTHORIZED", "unauthorized")
                .with_header("www-authenticate", r#"Basic realm="harbor""#),
        );
    }
    let model = Model::read(storage, repository);
    let manifests: Vec<Value> = model
        .accessory_of
        .iter()
        .filter(|(_, (subject, _))| subject == digest)
        .map(|(accessory, _)| {
            let (document, _) = &model.manifests[accessory];
            json!({"mediaType": document["mediaType"], "digest": accessory, "size": 1234,
                   "artifactType": document["config"]["mediaType"]})
        })
        .collect();
    let count = manifests.len();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests});
    Some(
        Answer {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            body: index.to_string().into_bytes(),
        }
        .with_header("x-total-count", count),
    )
}

/// A page of `items` as Harbor pages: `X-Total-Count`, relative `Link` with sorted keys.
fn paged(request: &Request, items: &[Value], cap: usize) -> Answer {
    let page_size = request.number("page_size", 10);
    if page_size > 100 {
        return error(
            422,
            "UNPROCESSABLE_ENTITY",
            "validation failure list:\npage_size in query should be less than or equal to 100",
        );
    }
    let per_page = page_size.max(1).min(if cap == 0 { 100 } else { cap });
    let page = request.number("page", 1).max(1);
    let (slice, more) = page_of(items, page, per_page);
    let link = |page: usize| {
        let mut query: BTreeMap<String, String> = request.query.clone().into_iter().collect();
        query.insert("page".into(), page.to_string());
        query.insert("page_size".into(), per_page.to_string());
        let text: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("<{}?{}>", request.path, text.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(r#"{}; rel="prev""#, link(page - 1)));
    }
    if more {
        links.push(format!(r#"{}; rel="next""#, link(page + 1)));
    }
    let mut answer =
        Answer::json(200, Value::Array(slice)).with_header("x-total-count", items.len());
    if !links.is_empty() {
        answer = answer.with_header("link", links.join(" , "));
    }
    answer
}

fn projects_of(storage: &std::path::Path) -> BTreeSet<String> {
    super::fake::repositories_in(storage)
        .iter()
        .filter_map(|r| r.split('/').next().map(str::to_string))
        .collect()
}

fn api(
    options: &FakeHarborOptions,
    registry: &RegistryAccess,
    gc: &GcTarget,
    account: Account,
    state: &mut FakeHarborState,
    request: &Request,
) -> Answer {
    let segments = request.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ["api", "v2.0", rest @ ..] = parts.as_slice() else {
        return error(404, "NOT_FOUND", "not found");
    };
    let visible = |project: &str| match account {
        Account::Admin => true,
        Account::Robot => project == "library",
        Account::Anonymous => false,
    };
    match (request.method.as_str(), rest) {
        ("GET", ["projects"]) => {
            let items: Vec<Value> = projects_of(&gc.storage)
                .into_iter()
                .filter(|p| visible(p))
                .enumerate()
                .map(|(i, name)| json!({"project_id": i + 1, "name": name, "metadata": {"public": "false"}}))
                .collect();
            paged(request, &items, options.page_cap)
        }
        ("GET", ["projects", project, "repositories"]) => {
            if !visible(project) || !projects_of(&gc.storage).contains(*project) {
                return if account == Account::Anonymous {
                    error(401, "UNAUTHORIZED", "unauthorized")
                } else {
                    error(403, "FORBIDDEN", "forbidden")
                };
            }
            let items: Vec<Value> = super::fake::repositories_in(&gc.storage)
                .into_iter()
                .filter(|r| r.starts_with(&format!("{project}/")))
                .map(|name| json!({"id": artifact_id(&name), "name": name, "artifact_count": 1}))
                .collect();
            paged(request, &items, options.page_cap)
        }
        (method, ["projects", project, "repositories", name, "artifacts", tail @ ..]) => {
            if !visible(project) {
                return error(403, "FORBIDDEN", "forbidden");
            }
            // The repository name is encoded twice: `segments` decoded it once.
            let repository = format!("{project}/{}", decode(name));
            artifacts(
                options,
                registry,
                gc,
                state,
                request,
                method,
                &repository,
                tail,
            )
        }
        ("POST", ["system", "gc", "schedule"]) => {
            if account != Account::Admin {
                return error(403, "FORBIDDEN", "forbidden");
            }
            let body: Value = serde_json::from_str(&request.body).unwrap_or_default();
            let untagged = body["parameters"]["delete_untagged"]
                .as_bool()
                .unwrap_or(true);
            let id = state.gc.len() as u64 + 1;
            state.gc.insert(id, (untagged, 0));
            state.gc_untagged.push(untagged);
            Answer::empty(201).with_header("location", format!("/api/v2.0/system/gc/{id}"))
        }
        ("GET", ["system", "gc", id]) => {
            if account != Account::Admin {
                return error(403, "FORBIDDEN", "forbidden");
            }
            let Some((untagged, looks)) = id.parse().ok().and_then(|id: u64| state.gc.get_mut(&id))
            else {
                return error(404, "NOT_FOUND", "garbage collection execution not found");
            };
            *looks += 1;
            let untagged = *untagged;
            let (status, freed) = if *looks < 2 {
                ("Running", None)
            } else {
                match options.gc_outcome.as_deref().unwrap_or("Success") {
                    "Success" => ("Success", Some(run_registry_gc(gc, untagged))),
                    other => (other, None),
                }
            };
            let (blobs, bytes) = freed.unwrap_or_default();
            let parameters = json!({"delete_untagged": untagged, "dry_run": false, "time_window": 2,
                                    "workers": 1, "freed_space": bytes, "purged_blobs": blobs,
                                    "purged_manifests": 0});
            Answer::json(
                200,
                json!({"id": id.parse::<u64>().unwrap_or(0), "job_name": "GARBAGE_COLLECTION", "job_kind": "MANUAL",
                       "job_parameters": parameters.to_string(), "job_status": status,
                       "schedule": {"type": "Manual"}, "deleted": false,
                       "creation_time": "2026-12-01T00:00:00.000Z", "update_time": "2026-12-01T00:00:05.000Z"}),
            )
        }
        _ => error(404, "NOT_FOUND", "not found"),
    }
}

#[allow(clippy::too_many_arguments)]
fn artifacts(
    options: &FakeHarborOptions,
    registry: &RegistryAccess,
    gc: &GcTarget,
    state: &mut FakeHarborState,
    request: &Request,
    method: &str,
    repository: &str,
    tail: &[&str],
) -> Answer {
    let model = Model::read(&gc.storage, repository);
    match (method, tail) {
        ("GET", []) => {
            let with_accessory =
                request.query.get("with_accessory").map(String::as_str) == Some("true");
            let mut listed = model.listed();
            // Newest first (push time, then id), as Harbor sorts by default.
            listed.sort_by(|a, b| {
                model.manifests[*b]
                    .1
                    .cmp(&model.manifests[*a].1)
                    .then(b.cmp(a))
            });
            let items: Vec<Value> = listed
                .into_iter()
                .map(|d| model.artifact(d, with_accessory))
                .collect();
            paged(request, &items, options.page_cap)
        }
        // `DELETE …/artifacts/{reference}/tags/{tag_name}`: the tag only; the artifact stays.
        ("DELETE", [reference, "tags", tag]) => {
            let tag = decode(tag);
            let points_here = model
                .tags
                .get(*reference)
                .is_some_and(|tags| tags.contains(&tag));
            if !points_here {
                return error(404, "NOT_FOUND", &format!("tag {tag} not found"));
            }
            if !super::fake::delete_tag_only(registry, repository, &tag) {
                return error(500, "UNKNOWN", "internal server error");
            }
            state.deleted_tags.push((repository.to_string(), tag));
            Answer::empty(200)
        }
        ("DELETE", [reference]) => {
            let digest = if reference.starts_with("sha256:") {
                reference.to_string()
            } else {
                match model
                    .tags
                    .iter()
                    .find(|(_, t)| t.iter().any(|t| t == reference))
                {
                    Some((digest, _)) => digest.clone(),
                    None => String::new(),
                }
            };
            if !model.manifests.contains_key(&digest) {
                return error(
                    404,
                    "NOT_FOUND",
                    &format!("artifact {repository}@{digest} not found"),
                );
            }
            if model.parents.contains_key(&digest) || options.foreign_parents.contains(&digest) {
                return error(
                    412,
                    "VIOLATE_FOREIGN_KEY_CONSTRAINT",
                    "the deleting artifact is referenced by others",
                );
            }
            let mut gone = HashSet::new();
            if !delete_deeply(
                registry, &model, repository, &digest, true, &mut gone, state, None,
            ) {
                return error(500, "UNKNOWN", "internal server error");
            }
            state.deleted.push((repository.to_string(), digest));
            Answer::empty(200)
        }
        _ => error(404, "NOT_FOUND", "not found"),
    }
}

/// Harbor's `deleteDeeply`: hard accessories always, untagged children with no other parent
/// left, then the artifact itself.
#[allow(clippy::too_many_arguments)]
fn delete_deeply(
    registry: &RegistryAccess,
    model: &Model,
    repository: &str,
    digest: &str,
    root: bool,
    gone: &mut HashSet<String>,
    state: &mut FakeHarborState,
    parent: Option<&str>,
) -> bool {
    if !root && model.tagged(digest) {
        return true;
    }
    if !root {
        let others = model
            .parents
            .get(digest)
            .into_iter()
            .flatten()
            .any(|p| !gone.contains(p) && Some(p.as_str()) != parent);
        if others {
            return true;
        }
    }
    gone.insert(digest.to_string());
    let accessories: Vec<String> = model
        .accessory_of
        .iter()
        .filter(|(_, (subject, _))| subject == digest)
        .map(|(accessory, _)| accessory.clone())
        .collect();
    for accessory in accessories {
        if !delete_deeply(
            registry,
            model,
            repository,
            &accessory,
            true,
            gone,
            state,
            Some(digest),
        ) {
            return false;
        }
        state
            .cascaded
            .push((repository.to_string(), accessory, digest.to_string()));
    }
    let children: Vec<String> = model.manifests[digest].0["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["digest"].as_str().map(str::to_string))
        .collect();
    for child in children {
        if gone.contains(&child) || !model.manifests.contains_key(&child) {
            continue;
        }
        let before = gone.len();
        if !delete_deeply(
            registry,
            model,
            repository,
            &child,
            false,
            gone,
            state,
            Some(digest),
        ) {
            return false;
        }
        if gone.len() > before {
            state
                .cascaded
                .push((repository.to_string(), child, digest.to_string()));
        }
    }
    registry
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/{repository}/manifests/{digest}"),
        )
        .send()
        .is_ok_and(|r| r.status().as_u16() == 202)
}
