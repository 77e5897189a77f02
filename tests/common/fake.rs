//! fake: what the fake provider APIs share: a small HTTP server on 127.0.0.1 whose handler
//! answers each request, and reads of the real test registry's storage (repositories, their
//! manifest revisions and tags) that back the fakes' listings, so that what a fake lists is
//! what the real registry holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::registry::RegistryAccess;

/// A request as a fake's handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `DELETE`, …
    pub method: String,
    /// The path, still percent-encoded as sent.
    pub path: String,
    /// The path and query as sent (a query may repeat a key: `scope=…&scope=…`).
    pub target: String,
    /// The query's pairs, decoded.
    pub query: BTreeMap<String, String>,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments, each percent-decoded once.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(decode)
            .collect()
    }

    /// A query parameter as a number, or `default`.
    pub fn number(&self, name: &str, default: usize) -> usize {
        self.query
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// A fake's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// `status` with `value` as a JSON body.
    pub fn json(status: u16, value: Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// `status` with no body.
    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// With one more header.
    pub fn with_header(mut self, name: &str, value: impl ToString) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A running fake; stopped on drop.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _listening: super::http1::Listening,
}

impl FakeServer {
    /// Serves every request with `handle`, one at a time (whatever the connections), until
    /// dropped.
    pub fn start(handle: impl FnMut(&Request) -> Answer + Send + 'static) -> FakeServer {
        let handle = std::sync::Mutex::new(handle);
        let listening = super::http1::listen(move |mut stream| {
            let Ok(Some(raw)) = super::http1::read_request(&stream) else {
                return;
            };
            let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
            let request = Request {
                method: raw.method.clone(),
                path: path.to_string(),
                target: raw.target.clone(),
                query: url::form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
                headers: raw
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                    .collect(),
                body: String::from_utf8_lossy(&raw.body).into_owned(),
            };
            let answer = {
                let mut handle = handle.lock().unwrap_or_else(|e| e.into_inner());
                handle(&request)
            };
            let head_length = (request.method == "HEAD").then(|| {
                answer
                    .headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .map(|(_, value)| value.clone())
                    .unwrap_or_else(|| answer.body.len().to_string())
            });
            let body: &[u8] = if request.method == "HEAD" {
                &[]
            } else {
                &answer.body
            };
            let _ = super::http1::write_answer(
                &mut stream,
                answer.status,
                &answer.headers,
                body,
                head_length,
            );
        });
        FakeServer {
            url: listening.url.clone(),
            _listening: listening,
        }
    }
}

/// A path segment percent-decoded once.
pub fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Every repository in the registry's storage (any folder holding `_manifests`), sorted.
pub fn repositories_in(storage: &Path) -> Vec<String> {
    let root = storage.join("docker/registry/v2/repositories");
    let mut found = Vec::new();
    let mut pending = vec![(root, String::new())];
    while let Some((folder, name)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file == "_manifests" {
                found.push(name.clone());
            } else if !file.starts_with('_') && entry.path().is_dir() {
                let child = if name.is_empty() {
                    file
                } else {
                    format!("{name}/{file}")
                };
                pending.push((entry.path(), child));
            }
        }
    }
    found.sort();
    found
}

/// The tags of `repository` now: tag → digest, sorted by tag.
pub fn tags_in(storage: &Path, repository: &str) -> BTreeMap<String, String> {
    let base = storage.join(format!(
        "docker/registry/v2/repositories/{repository}/_manifests/tags"
    ));
    let mut tags = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            if let Ok(digest) = std::fs::read_to_string(entry.path().join("current/link")) {
                tags.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    digest.trim().to_string(),
                );
            }
        }
    }
    tags
}

/// The manifests `repository` holds (its revision links), with when each was stored,
/// sorted by digest. A deleted revision keeps its folder but loses its link.
pub fn revisions_in(storage: &Path, repository: &str) -> Vec<(String, SystemTime)> {
    let base = storage.join(format!(
        "docker/registry/v2/repositories/{repository}/_manifests/revisions/sha256"
    ));
    let mut revisions = Vec::new();
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let link = entry.path().join("link");
            let Ok(digest) = std::fs::read_to_string(&link) else {
                continue;
            };
            let stored = std::fs::metadata(&link)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            revisions.push((digest.trim().to_string(), stored));
        }
    }
    revisions.sort();
    revisions
}

/// RFC 3339 in whole seconds, as the APIs write dates.
pub fn rfc3339(time: SystemTime) -> String {
    let time: chrono::DateTime<chrono::Utc> = time.into();
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A page of `items` (1-based `page`, `per_page` each) and whether another follows.
pub fn page_of<T: Clone>(items: &[T], page: usize, per_page: usize) -> (Vec<T>, bool) {
    let per_page = per_page.max(1);
    let start = page.max(1).saturating_sub(1) * per_page;
    let slice: Vec<T> = items.iter().skip(start).take(per_page).cloned().collect();
    (slice, start + per_page < items.len())
}

/// Runs the registry's own garbage collector over the test registry's storage, with
/// `--delete-untagged` when `untagged` (distribution 2.x then deletes every manifest without a
/// tag of its own, index children and referrers included). Returns the blobs it deleted and
/// their bytes (read before they go, from a dry run).
pub fn run_registry_gc(registry: &GcTarget, untagged: bool) -> (u64, u64) {
    let run = |dry_run: bool| {
        let mut command = std::process::Command::new(super::registry_binary());
        command.arg("garbage-collect");
        if untagged {
            command.arg("--delete-untagged");
        }
        if dry_run {
            command.arg("--dry-run");
        }
        let output = command.arg(&registry.config).output().unwrap();
        assert!(
            output.status.success(),
            "garbage-collect failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let eligible: Vec<String> = run(true)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("blob eligible for deletion: "))
        .map(str::to_string)
        .collect();
    let bytes = eligible
        .iter()
        .filter_map(|digest| {
            let hex = digest.strip_prefix("sha256:")?;
            let data = registry.storage.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            ));
            std::fs::metadata(data).ok().map(|m| m.len())
        })
        .sum();
    run(false);
    (eligible.len() as u64, bytes)
}

/// What the fake's garbage collection works on: the test registry's storage and config.
#[derive(Debug, Clone)]
pub struct GcTarget {
    /// The storage root.
    pub storage: PathBuf,
    /// The registry's config file.
    pub config: PathBuf,
}

impl GcTarget {
    /// The test registry's storage and config.
    pub fn of(registry: &super::TestRegistry) -> GcTarget {
        GcTarget {
            storage: registry.storage(),
            config: registry.config_path(),
        }
    }
}

/// Deletes `tag` only, the way GitLab, DigitalOcean and Harbor do it on a registry without a
/// tag-delete API: re-points it to a throwaway manifest, then deletes that by digest (the
/// registry removes the tags of a deleted manifest: here only the throwaway's).
pub fn delete_tag_only(registry: &RegistryAccess, repository: &str, tag: &str) -> bool {
    let config = b"{}";
    let config_digest = regsweep::model::Digest::sha256_of(config);
    let upload = registry
        .request(
            reqwest::Method::POST,
            &format!("/v2/{repository}/blobs/uploads/"),
        )
        .send();
    let Ok(upload) = upload else { return false };
    let Some(location) = upload
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
    else {
        return false;
    };
    let location = if location.starts_with('/') {
        format!("{}{location}", registry.url)
    } else {
        location.to_string()
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let stored = registry
        .request(
            reqwest::Method::PUT,
            &format!("{location}{separator}digest={config_digest}"),
        )
        .header("content-type", "application/octet-stream")
        .body(config.to_vec())
        .send()
        .is_ok_and(|r| r.status().as_u16() == 201);
    if !stored {
        return false;
    }
    let throwaway = json!({
        "schemaVersion": 2,
        "mediaType": super::media::OCI_MANIFEST,
        "config": {"mediaType": super::media::OCI_CONFIG, "digest": config_digest.to_string(), "size": 2},
        "layers": [],
        "annotations": {"fake.dummy": format!("{repository}:{tag}:{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default())}
    });
    let bytes = serde_json::to_vec(&throwaway).unwrap();
    let digest = regsweep::model::Digest::sha256_of(&bytes);
    let pointed = registry
        .request(
            reqwest::Method::PUT,
            &format!("/v2/{repository}/manifests/{tag}"),
        )
        .header("content-type", super::media::OCI_MANIFEST)
        .body(bytes)
        .send()
        .is_ok_and(|r| r.status().as_u16() == 201);
    pointed
        && registry
            .request(
                reqwest::Method::DELETE,
                &format!("/v2/{repository}/manifests/{digest}"),
            )
            .send()
            .is_ok_and(|r| r.status().as_u16() == 202)
}
