//! The benchmark behind `bench/run.sh`: starts the real registry on 127.0.0.1, populates it
//! through its HTTP API with a CI-like history, and measures regsweep:
//!
//! 1. discovery + plan over filesystem storage: seconds (median of runs, after one unmeasured run) and peak memory;
//! 2. the same over S3 storage: the same files uploaded to a local S3 endpoint (moto), read
//!    through `REGISTRY_STORAGE=s3`, next to the filesystem figure;
//! 3. apply: deletions per second of a real run, next to the registry's own DELETE capacity
//!    (a tight concurrent loop of the same DELETEs against an identical copy of the storage);
//! 4. the DigitalOcean path against the fake DigitalOcean API with its rate limit (250 a minute,
//!    as 125 per 30 s windows): requests sent while deleting, as a share of the allowed
//!    rate, and 429s (none allowed).
//! 5. the GitHub Container Registry path against the fake GitHub Packages API at GitHub's
//!    secondary limit (900 points a minute per endpoint, a DELETE costs 5: 180 deletions a
//!    minute), once, on its own history of `--ghcr-deletions` deletions (default 540, three
//!    windows; 0 skips it): deletions a minute, their share of what the limit allows in the
//!    same time, and the 403/429 answers (none allowed);
//! 6. the maintenance window (`regsweep maintenance`, the registry read-only) with about 90 %
//!    of the manifests to delete: plan + delete + collect on a copy of the storage, next to the
//!    API path (a run's deletions through the registry, then its own `garbage-collect`) and to
//!    `garbage-collect` alone, on identical copies, checking that both leave the same blobs;
//!    on S3 (two buckets on local endpoints) against `garbage-collect` on the same data, with
//!    the requests the endpoint answered next to the budget of 1.2 per manifest plus one per
//!    1,000 deleted keys. Up to `--maintenance-up-to` (default 100,000) manifests, the API
//!    path up to `--maintenance-api-up-to` (default 100,000: at that scale it takes the
//!    registry most of an hour) and S3 up to `--maintenance-s3-up-to` (default 10,000).
//!
//! Prints one table and writes the figures as JSON.
//!
//! Usage: bench [--manifests N[,N…]] [--repositories N] [--runs N]
//! [--apply-concurrency N[,N…]] [--apply-up-to N] [--s3-up-to N] [--do-up-to N]
//! [--ghcr-deletions N] [--keep-storage DIR] [--storage DIR] [--write-above N]
//! [--maintenance-up-to N] [--maintenance-api-up-to N] [--maintenance-s3-up-to N] [--out PATH].
//! Apply is measured at scales up to `--apply-up-to` (default 20,000): each measurement
//! deletes two copies of the dataset; S3 up to `--s3-up-to` (default 20,000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{regsweep_binary, RegistryOptions, TestRegistry};
use regsweep::model::Digest;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Configs per repository and architecture; images share them, annotations make each
/// manifest unique, so that a manifest costs one PUT.
const CONFIGS: usize = 48;
/// Manifests per group: 2 children + 1 index (`latest`, overwritten), 12 hash-tagged images,
/// 2 referrers of a hash-tagged image, 3 untagged leftovers.
const GROUP: usize = 20;
/// The benchmark's 6-rule policy: the conventions of README "Retention policies", with the
/// dataset's commit tags decided by the last rule (keep 10, as the seed's default) and
/// `latest` by the first, so that it plans exactly what the seed's policy plans.
const SIX_RULES: &str = r#"rules:
  - name: releases
    tags: ['v*', '!v*-rc*', latest]
    keep: all
  - name: pull requests
    tags: ['pr-*']
    keep: {newest: 3, younger-than: 14d}
  - name: nightlies
    tags: ['/^nightly-[0-9]{8}$/']
    keep: {newest: 7, sort: tag}
  - name: branches
    tags: ['/^[a-z0-9-]+-[0-9a-f]{7}-[0-9]{10}$/']
    keep: {newest: 2, group-by: '/^([a-z0-9-]+)-[0-9a-f]{7}-[0-9]{10}$/'}
  - name: library versions
    tags: ['/^v?[0-9]+[.][0-9]+[.][0-9]+/']
    keep: {newest: 5, sort: semver}
  - name: commits
    tags: ['/^[0-9a-f]{7,12}$/']
    keep: {newest: 10}
"#;

/// regsweep's default `REGSWEEP_CONCURRENCY`: the S3 dry run runs at it, and the endpoint's
/// capacity is measured at it.
fn default_concurrency() -> usize {
    regsweep::cli::DEFAULT_CONCURRENCY
        .parse()
        .expect("a number")
}

struct Options {
    scales: Vec<usize>,
    repositories: usize,
    runs: usize,
    apply_concurrency: Vec<usize>,
    apply_up_to: usize,
    s3_up_to: usize,
    do_up_to: usize,
    ghcr_deletions: usize,
    keep_storage: Option<PathBuf>,
    storage: Option<PathBuf>,
    write_above: usize,
    maintenance_up_to: usize,
    maintenance_api_up_to: usize,
    maintenance_s3_up_to: usize,
    out: PathBuf,
}

fn parse_options() -> Options {
    let mut options = Options {
        scales: vec![20_000],
        repositories: 50,
        runs: 3,
        apply_concurrency: vec![8],
        apply_up_to: 20_000,
        s3_up_to: 20_000,
        do_up_to: 2_000,
        ghcr_deletions: 540,
        keep_storage: None,
        storage: None,
        write_above: 100_000,
        maintenance_up_to: 100_000,
        maintenance_api_up_to: 100_000,
        maintenance_s3_up_to: 10_000,
        out: PathBuf::from("bench/results.json"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = |v: &str| -> Vec<usize> {
        v.split(',')
            .map(|n| n.trim().parse().expect("a number"))
            .collect()
    };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--manifests" => options.scales = list(&value),
            "--repositories" => options.repositories = value.parse().expect("a number"),
            "--runs" => options.runs = value.parse().expect("a number"),
            "--apply-concurrency" => options.apply_concurrency = list(&value),
            "--apply-up-to" => options.apply_up_to = value.parse().expect("a number"),
            "--s3-up-to" => options.s3_up_to = value.parse().expect("a number"),
            "--do-up-to" => options.do_up_to = value.parse().expect("a number"),
            "--ghcr-deletions" => options.ghcr_deletions = value.parse().expect("a number"),
            "--keep-storage" => options.keep_storage = Some(PathBuf::from(value)),
            "--storage" => options.storage = Some(PathBuf::from(value)),
            "--write-above" => options.write_above = value.parse().expect("a number"),
            "--maintenance-up-to" => options.maintenance_up_to = value.parse().expect("a number"),
            "--maintenance-api-up-to" => {
                options.maintenance_api_up_to = value.parse().expect("a number")
            }
            "--maintenance-s3-up-to" => {
                options.maintenance_s3_up_to = value.parse().expect("a number")
            }
            "--out" => options.out = PathBuf::from(value),
            other => {
                panic!("unknown argument `{other}` (see the doc comment of examples/bench.rs)")
            }
        }
        i += 2;
    }
    options
}

/// Per repository: configs and layers uploaded, and how many manifests pushed so far.
struct RepositoryState {
    name: String,
    configs: Vec<[(Digest, usize); 2]>,
    layers: [(Digest, usize); 2],
    pushed: usize,
}

fn descriptor(media_type: &str, digest: &Digest, size: usize) -> Value {
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
}

fn prepare(registry: &TestRegistry, name: &str) -> RepositoryState {
    let now = chrono::Utc::now();
    let mut layers = Vec::new();
    for arch in ["amd64", "arm64"] {
        let bytes = format!("layer {arch} {name}").into_bytes();
        layers.push((registry.push_blob(name, &bytes), bytes.len()));
    }
    let mut configs = Vec::new();
    for i in 0..CONFIGS {
        let created = (now - chrono::Duration::hours(6 * i as i64 + 1)).to_rfc3339();
        let mut pair = Vec::new();
        for arch in ["amd64", "arm64"] {
            let config = json!({"created": created, "os": "linux", "architecture": arch,
                "rootfs": {"type": "layers", "diff_ids": []}});
            let bytes = serde_json::to_vec(&config).unwrap();
            pair.push((registry.push_blob(name, &bytes), bytes.len()));
        }
        configs.push([pair[0].clone(), pair[1].clone()]);
    }
    RepositoryState {
        name: name.to_string(),
        configs,
        layers: [layers[0].clone(), layers[1].clone()],
        pushed: 0,
    }
}

/// Pushes manifests into one repository until it holds `target`.
/// With `write`, the manifests' storage files are written as the registry writes them
/// instead of pushed through its API (see `TestRegistry::write_manifest`).
fn populate(registry: &TestRegistry, state: &mut RepositoryState, target: usize, write: bool) {
    let put = |name: &str, tag: Option<&str>, media_type: &str, body: &Value| {
        if write {
            registry.write_manifest(name, tag, media_type, body)
        } else {
            registry.put_manifest(name, tag, media_type, body)
        }
    };
    let mut children: Vec<common::Pushed> = Vec::new();
    let mut subject: Option<common::Pushed> = None;
    while state.pushed < target {
        let j = state.pushed;
        let (group, slot) = (j / GROUP, j % GROUP);
        let config = &state.configs[(group * 7 + slot) % CONFIGS];
        let arch = if slot == 1 { 1 } else { 0 };
        let image = |annotation: String| {
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, &config[arch].0, config[arch].1),
                "layers": [descriptor(OCI_LAYER, &state.layers[arch].0, state.layers[arch].1)],
                "annotations": {"bench": annotation},
            })
        };
        let name = state.name.as_str();
        let id = format!("{name}/{j}");
        match slot {
            0 | 1 => {
                if slot == 0 {
                    children.clear();
                }
                children.push(put(name, None, OCI_MANIFEST, &image(id)));
            }
            2 => {
                let manifests: Vec<Value> = children
                    .iter()
                    .zip(["amd64", "arm64"])
                    .map(|(c, arch)| {
                        let mut d = descriptor(OCI_MANIFEST, &c.digest, c.size as usize);
                        d["platform"] = json!({"os": "linux", "architecture": arch});
                        d
                    })
                    .collect();
                let index =
                    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
                put(name, Some("latest"), OCI_INDEX, &index);
            }
            3..=14 => {
                let tag = Digest::sha256_of(id.as_bytes()).hex()[..8].to_string();
                let pushed = put(name, Some(&tag), OCI_MANIFEST, &image(id));
                if slot == 3 {
                    subject = Some(pushed);
                }
            }
            15 | 16 => {
                let subject = subject.as_ref().expect("slot 3 comes first");
                let mut referrer = image(id);
                referrer["artifactType"] = json!("application/spdx+json");
                referrer["subject"] =
                    descriptor(OCI_MANIFEST, &subject.digest, subject.size as usize);
                put(name, None, OCI_MANIFEST, &referrer);
            }
            _ => {
                put(name, None, OCI_MANIFEST, &image(id));
            }
        }
        state.pushed += 1;
    }
}

/// Every manifest of a report with its tags, action and reason, without dates.
fn decisions(report: &Value) -> Vec<Value> {
    report["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["manifests"].as_array().into_iter().flatten())
        .map(|m| json!([m["digest"], m["tags"], m["action"], m["reason"]]))
        .collect()
}

/// The high-water resident memory of a running process, in KiB (`VmHWM`), or 0 once gone.
fn high_water_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs regsweep, returns (wall seconds, peak RSS in KiB, JSON report).
///
/// Peak memory is sampled from `/proc/<pid>/status` (`VmHWM`, the high-water mark of the
/// address space regsweep got at exec) every few milliseconds until it exits. Not from
/// `wait4`'s `ru_maxrss`: Linux records in it the *parent's* high-water mark at exec, which
/// here would be this benchmark's own memory.
/// Owned variables as the `(name, value)` pairs `run_regsweep` takes.
fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn run_regsweep(env: &[(&str, &str)]) -> (f64, u64, Value) {
    run_regsweep_with(env, &[])
}

/// [`run_regsweep`] with arguments (a subcommand).
fn run_regsweep_with(env: &[(&str, &str)], args: &[&str]) -> (f64, u64, Value) {
    let out_path = std::env::temp_dir().join(format!("regsweep-bench-{}.json", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let started = Instant::now();
    let mut command = Command::new(regsweep_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .args(args)
        .env("REGSWEEP_OUTPUT", "json")
        .env("REGSWEEP_QUIET", "true")
        .stdout(out)
        .spawn()
        .expect("regsweep runs");
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(high_water_kib(pid));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let seconds = started.elapsed().as_secs_f64();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap())
        .unwrap_or_else(|e| panic!("regsweep printed no JSON report ({status}): {e}"));
    let _ = std::fs::remove_file(out_path);
    (seconds, peak, report)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn copy_storage(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a failed");
}

/// Every file below a storage folder.
fn storage_files(storage: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![storage.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A runtime and a client that the local S3 endpoint takes as the bucket's owner.
fn s3_client() -> (tokio::runtime::Runtime, reqwest::Client) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .default_headers(common::s3::owner_headers())
        .build()
        .unwrap();
    (runtime, client)
}

/// Uploads every file of a filesystem storage to the S3 endpoint, below the test root, so
/// that S3 discovery reads exactly the dataset the filesystem run read.
fn upload_storage(storage: &Path, s3: &common::s3::MotoServer) -> usize {
    use futures::StreamExt;
    let files = storage_files(storage);
    let (runtime, client) = s3_client();
    let count = files.len();
    runtime.block_on(async {
        futures::stream::iter(files.into_iter().map(|path| {
            let relative = path.strip_prefix(storage).unwrap().display().to_string();
            let url = format!(
                "{}/{}/{}/{relative}",
                s3.url,
                common::s3::BUCKET,
                common::s3::ROOT
            );
            let body = std::fs::read(&path).unwrap();
            let request = client.put(url).body(body);
            async move {
                let status = request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                assert_eq!(status, 200, "uploading {relative}");
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    });
    count
}

/// Requests the S3 endpoint has answered so far (moto logs one line per request).
fn endpoint_requests(s3: &common::s3::MotoServer) -> usize {
    s3.requests()
        .iter()
        .filter(|r| r.starts_with("GET ") || r.starts_with("HEAD "))
        .count()
}

/// The S3 endpoint's own GET capacity: up to 5,000 of the uploaded objects fetched in a tight
/// loop, `concurrency` in flight (regsweep's own).
fn endpoint_capacity(s3: &common::s3::MotoServer, storage: &Path, concurrency: usize) -> f64 {
    use futures::StreamExt;
    let keys: Vec<String> = storage_files(storage)
        .iter()
        .take(5_000)
        .map(|path| path.strip_prefix(storage).unwrap().display().to_string())
        .collect();
    let (runtime, client) = s3_client();
    runtime.block_on(async {
        let started = Instant::now();
        let count = keys.len();
        futures::stream::iter(keys.into_iter().map(|key| {
            let request = client.get(format!(
                "{}/{}/{}/{key}",
                s3.url,
                common::s3::BUCKET,
                common::s3::ROOT
            ));
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().is_success());
                let _ = response.bytes().await;
            }
        }))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
        count as f64 / started.elapsed().as_secs_f64()
    })
}

/// The registry's own DELETE capacity: the same DELETEs, as fast as it takes them.
fn delete_capacity(url: &str, deletions: &[(String, String)], concurrency: usize) -> f64 {
    use futures::StreamExt;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let statuses: Vec<u16> =
            futures::stream::iter(deletions.iter().map(|(repository, digest)| {
                let request = client
                    .delete(format!("{url}/v2/{repository}/manifests/{digest}"))
                    .header("accept", common::media::ACCEPT_ALL);
                async move {
                    request
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                }
            }))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let seconds = started.elapsed().as_secs_f64();
        let ok = statuses.iter().filter(|s| **s == 202).count();
        assert_eq!(
            ok,
            deletions.len(),
            "the capacity loop's DELETEs did not all succeed"
        );
        deletions.len() as f64 / seconds
    })
}

fn planned_deletions(report: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for repository in report["repositories"].as_array().unwrap() {
        let name = repository["name"].as_str().unwrap();
        for manifest in repository["manifests"].as_array().unwrap() {
            if manifest["action"] == "delete" {
                out.push((
                    name.to_string(),
                    manifest["digest"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// Every blob data file below a storage folder (relative paths), for comparing collections.
fn blob_files(storage: &Path) -> std::collections::BTreeSet<String> {
    storage_files(&storage.join("docker/registry/v2/blobs"))
        .into_iter()
        .filter(|f| f.ends_with("data"))
        .map(|f| f.strip_prefix(storage).unwrap().display().to_string())
        .collect()
}

/// Runs the registry's own `garbage-collect` (no `--delete-untagged`) with `config`; seconds.
fn registry_gc(config: &Path) -> f64 {
    let started = Instant::now();
    let output = Command::new(common::registry_binary())
        .arg("garbage-collect")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "garbage-collect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed().as_secs_f64()
}

/// The hash tags to keep per repository so that about 90 % of `per_repository` manifests go:
/// each kept hash tag keeps its image (and, one in twelve, two referrers), `latest` keeps an
/// index and its two children.
fn keep_for_ninety_percent(per_repository: usize) -> usize {
    let kept = per_repository as f64 / 10.0 - 3.0;
    (kept * 12.0 / 14.0).round().max(1.0) as usize
}

/// 6. The maintenance window, see the module's doc comment. Returns the figures.
fn bench_maintenance(
    registry: &TestRegistry,
    states: &[RepositoryState],
    manifests: u64,
    with_api: bool,
    with_s3: bool,
    table: &mut Vec<String>,
) -> Value {
    let per_repository = states.iter().map(|s| s.pushed).max().unwrap_or(0);
    let keep = keep_for_ninety_percent(per_repository).to_string();
    let scratch = tempfile::tempdir().unwrap();
    let (window_dir, api_dir) = (scratch.path().join("window"), scratch.path().join("api"));
    copy_storage(&registry.storage(), &window_dir);
    copy_storage(&registry.storage(), &api_dir);

    // regsweep maintenance, the registry read-only; a dry run first warms the page cache.
    let window = TestRegistry::start_with(RegistryOptions {
        storage: Some(window_dir.clone()),
        read_only: true,
        ..RegistryOptions::default()
    });
    let window_text = window_dir.display().to_string();
    let mut env = vec![
        ("REGISTRY_URL", window.url.as_str()),
        ("REGISTRY_DIR", window_text.as_str()),
        ("HASH_TAG_KEEP", keep.as_str()),
        ("DRY_RUN", "true"),
    ];
    let (dry_wall, _, dry) = run_regsweep_with(&env, &["maintenance"]);
    env.retain(|(k, _)| *k != "DRY_RUN");
    let (wall, peak, report) = run_regsweep_with(&env, &["maintenance"]);
    let m = &report["maintenance"];
    assert!(
        m.is_object() && report["fatal"].is_null(),
        "the maintenance window failed: {}",
        report["fatal"]
    );
    assert_eq!(dry["maintenance"]["blobs_deleted"], m["blobs_deleted"]);
    let planned = report["totals"]["planned_deletions"].as_u64().unwrap();
    let share = planned as f64 / manifests as f64;
    let phases = &m["phases"];
    let phase = |name: &str| phases[name].as_f64().unwrap();
    eprintln!(
        "maintenance at {manifests} ({planned} deletions, {:.0} %): {wall:.2}s (discover {:.2}, plan {:.2}, delete {:.2}, collect {:.2}), {} blobs deleted, peak {} MiB; dry run {dry_wall:.2}s",
        100.0 * share,
        phase("discover_seconds"),
        phase("plan_seconds"),
        phase("delete_seconds"),
        phase("collect_seconds"),
        m["blobs_deleted"],
        peak / 1024
    );

    let row = |table: &mut Vec<String>, what: &str, value: String, unit: &str| {
        table.push(format!("{what:<44} {manifests:>12} {value:>12} {unit:>12}"));
    };
    row(
        table,
        "maintenance: plan + delete + collect",
        format!("{wall:.2}"),
        "s",
    );
    row(
        table,
        "  manifests deleted",
        format!("{:.0}", 100.0 * share),
        "%",
    );
    row(
        table,
        "  peak memory",
        format!("{:.1}", peak as f64 / 1024.0),
        "MiB",
    );
    let mut figures = json!({
        "hash_tag_keep": keep,
        "planned_deletions": planned,
        "share_deleted": share,
        "seconds": wall,
        "dry_run_seconds": dry_wall,
        "phases": phases,
        "blobs_deleted": m["blobs_deleted"],
        "bytes_freed": m["bytes_freed"],
        "peak_rss_mib": peak as f64 / 1024.0,
    });
    // The S3 comparison needs the storage as the API path left it, before any collection.
    if !(with_api || with_s3) {
        return figures;
    }

    // The API path on an identical copy: a run's deletions, then the registry's collection.
    let mut api = TestRegistry::start_with(RegistryOptions {
        storage: Some(api_dir.clone()),
        ..RegistryOptions::default()
    });
    let api_text = api_dir.display().to_string();
    let (api_wall, _, api_report) = run_regsweep(&[
        ("REGISTRY_URL", api.url.as_str()),
        ("REGISTRY_DIR", api_text.as_str()),
        ("HASH_TAG_KEEP", keep.as_str()),
        ("REGSWEEP_VERIFY", "false"),
    ]);
    assert_eq!(
        api_report["totals"]["deleted"].as_u64().unwrap(),
        planned,
        "the API run did not delete the plan"
    );
    api.stop();
    let before_gc = scratch.path().join("before-gc");
    if with_s3 {
        copy_storage(&api_dir, &before_gc);
    }
    let gc_wall = registry_gc(&api.config_path());
    assert!(
        blob_files(&window_dir) == blob_files(&api_dir),
        "regsweep's collection and the registry's left different blobs"
    );
    let api_total = api_wall + gc_wall;
    eprintln!(
        "API path at {manifests}: run {api_wall:.1}s + garbage-collect {gc_wall:.1}s = {api_total:.1}s ({:.1}x the window); garbage-collect alone {:.1}x",
        api_total / wall,
        gc_wall / wall
    );
    row(
        table,
        "  API path (run + garbage-collect)",
        format!("{api_total:.1}"),
        "s",
    );
    row(
        table,
        "  API path / maintenance",
        format!("{:.1}", api_total / wall),
        "x",
    );
    row(
        table,
        "  registry garbage-collect alone",
        format!("{gc_wall:.1}"),
        "s",
    );
    row(
        table,
        "  garbage-collect / maintenance",
        format!("{:.1}", gc_wall / wall),
        "x",
    );
    figures["api_run_seconds"] = json!(api_wall);
    figures["registry_gc_seconds"] = json!(gc_wall);
    figures["api_path_ratio"] = json!(api_total / wall);
    figures["registry_gc_ratio"] = json!(gc_wall / wall);
    figures["same_blobs_as_registry_gc"] = json!(true);

    if with_s3 {
        figures["s3"] = bench_maintenance_s3(registry, &before_gc, &keep, manifests, table);
    }
    figures
}

/// 6b. The maintenance window on S3 against `garbage-collect` on the same data: two buckets,
/// one with the storage as pushed (regsweep plans, deletes and collects), one as the API path
/// left it (the registry collects).
fn bench_maintenance_s3(
    registry: &TestRegistry,
    before_gc: &Path,
    keep: &str,
    manifests: u64,
    table: &mut Vec<String>,
) -> Value {
    let start = |read_only| {
        TestRegistry::start_with(RegistryOptions {
            backend: common::Backend::S3,
            read_only,
            ..RegistryOptions::default()
        })
    };
    let window = start(true);
    let mut collected = start(false);
    let window_s3 = window.s3.as_ref().unwrap();
    // Held here, so that the registry can be stopped while its endpoint serves on.
    let collected_s3 = collected.s3.take().unwrap();
    upload_storage(&registry.storage(), window_s3);
    upload_storage(before_gc, &collected_s3);
    let storage = common::s3::storage_env(&window_s3.url);
    let mut env = borrowed(&storage);
    env.extend([
        ("REGISTRY_URL", window.url.as_str()),
        ("HASH_TAG_KEEP", keep),
    ]);
    let before = window_s3.requests().len();
    let (wall, _, report) = run_regsweep_with(&env, &["maintenance"]);
    let answered: Vec<String> = window_s3.requests().split_off(before);
    let requests = answered.len();
    // What they were: listings, manifest and config reads, DeleteObjects.
    let listings = answered.iter().filter(|r| r.contains("list-type=")).count();
    let removals = answered
        .iter()
        .filter(|r| r.starts_with("POST ") && r.contains("delete"))
        .count();
    let reads = answered
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
        .count();
    let m = &report["maintenance"];
    assert!(
        m.is_object() && report["fatal"].is_null(),
        "the maintenance window failed on S3: {}",
        report["fatal"]
    );
    // Every removed link and every blob's `data` is one key.
    let deleted_keys = m["files_removed"].as_u64().unwrap() + m["blobs_deleted"].as_u64().unwrap();
    let budget = 1.2 * manifests as f64 + deleted_keys as f64 / 1000.0;

    collected.stop();
    let before = collected_s3.requests().len();
    let gc_wall = registry_gc(&collected.config_path());
    let gc_requests = collected_s3.requests().len() - before;
    let blobs = |s3: &common::s3::MotoServer| -> Vec<String> {
        s3.keys()
            .into_iter()
            .filter(|k| k.contains("/blobs/") && k.ends_with("/data"))
            .collect()
    };
    assert!(
        blobs(window_s3) == blobs(&collected_s3),
        "on S3, regsweep's collection and the registry's left different blobs"
    );
    eprintln!(
        "maintenance on S3 at {manifests}: {wall:.1}s, {requests} requests (budget {budget:.0}: {:.2} per manifest), {deleted_keys} keys deleted; garbage-collect {gc_wall:.1}s, {gc_requests} requests: {:.1}x",
        requests as f64 / manifests as f64,
        gc_wall / wall
    );
    let row = |table: &mut Vec<String>, what: &str, value: String, unit: &str| {
        table.push(format!("{what:<44} {manifests:>12} {value:>12} {unit:>12}"));
    };
    row(
        table,
        "maintenance on S3 (local moto)",
        format!("{wall:.1}"),
        "s",
    );
    row(table, "  S3 requests", requests.to_string(), "requests");
    row(
        table,
        "    blob reads (manifests, configs)",
        reads.to_string(),
        "requests",
    );
    row(table, "    listings", listings.to_string(), "requests");
    row(table, "    DeleteObjects", removals.to_string(), "requests");
    row(
        table,
        "  budget: 1.2/manifest + 1/1,000 keys",
        format!("{budget:.0}"),
        "requests",
    );
    row(
        table,
        "  registry garbage-collect on S3",
        format!("{gc_wall:.1}"),
        "s",
    );
    row(
        table,
        "  garbage-collect requests",
        gc_requests.to_string(),
        "requests",
    );
    row(
        table,
        "  garbage-collect / maintenance",
        format!("{:.1}", gc_wall / wall),
        "x",
    );
    json!({
        "seconds": wall,
        "requests": requests,
        "blob_reads": reads,
        "listings": listings,
        "delete_objects": removals,
        "deleted_keys": deleted_keys,
        "request_budget": budget,
        "requests_per_manifest": requests as f64 / manifests as f64,
        "registry_gc_seconds": gc_wall,
        "registry_gc_requests": gc_requests,
        "registry_gc_ratio": gc_wall / wall,
        "same_blobs_as_registry_gc": true,
    })
}

/// GitHub's secondary limit as the fake keeps it: DELETEs a minute (900 points, 5 each).
const GHCR_DELETES_PER_MINUTE: usize = 180;

/// The GitHub Container Registry path at GitHub's own limits: three packages of the bench's
/// history under the owner `acme`, with `HASH_TAG_KEEP=2` so that about `deletions` versions
/// go, deleted through the fake GitHub Packages API (backed by the real registry). The limit
/// is a sliding window, so the fastest a client may go is a window's worth at once, then the
/// next as the first leaves the window: N deletions need at least 60 s × ⌊(N − 1) / 180⌋.
/// The share is that least time over the time regsweep took, first DELETE to last.
fn bench_ghcr(deletions: usize) -> (Vec<String>, Value) {
    let registry = TestRegistry::start();
    let packages = 3;
    let per_package = deletions.div_ceil(packages) + 7;
    eprintln!("GitHub Container Registry: pushing {packages} packages of {per_package} versions…");
    for p in 0..packages {
        let mut state = prepare(&registry, &format!("acme/bench-{p}"));
        populate(&registry, &mut state, per_package, false);
    }
    let fake = common::ghcr::FakeGhcr::start(&registry, common::ghcr::FakeGhcrOptions::default());
    let env = fake.env(
        &registry,
        &[
            ("REGSWEEP_GC", "false"),
            ("REGSWEEP_VERIFY", "false"),
            ("HASH_TAG_KEEP", "2"),
        ],
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, _, report) = run_regsweep(&env);
    let deleted = report["totals"]["deleted"].as_u64().unwrap() as usize;
    assert!(
        deleted > GHCR_DELETES_PER_MINUTE,
        "the GHCR run deleted {deleted}, not more than a window's worth: {} / {}",
        report["fatal"],
        report["totals"]
    );
    let state = fake.state.lock().unwrap();
    let sent = state.delete_times.len();
    let (first, last) = (state.delete_times[0], *state.delete_times.last().unwrap());
    let seconds = last.duration_since(first).as_secs_f64().max(1e-3);
    let least = 60.0 * ((sent - 1) / GHCR_DELETES_PER_MINUTE) as f64;
    let share = least / seconds;
    let per_minute = sent as f64 / seconds * 60.0;
    let refused = state.over_limit;
    eprintln!(
        "GitHub Container Registry: {deleted} deletions, {sent} DELETEs in {seconds:.1}s ({per_minute:.0}/min; the limit allows them in {least:.0}s at the fastest: {:.0} %), {refused} secondary-limit 403s",
        100.0 * share
    );
    let rows = vec![
        format!(
            "{:<44} {:>12} {:>12.0} {:>12}",
            "GHCR: deletions a minute", deleted, per_minute, "/min"
        ),
        format!(
            "{:<44} {:>12} {:>12.0} {:>12}",
            "  share of what 180/min allows",
            deleted,
            100.0 * share,
            "%"
        ),
        format!(
            "{:<44} {:>12} {:>12} {:>12}",
            "  403/429 answers (avoidable)", deleted, refused, "count"
        ),
    ];
    let figures = json!({
        "deletions": deleted,
        "delete_requests": sent,
        "seconds_first_to_last_delete": seconds,
        "deletions_per_minute": per_minute,
        "least_seconds_the_limit_allows": least,
        "share_of_allowed_rate": share,
        "secondary_limit": {"points": 900, "window_seconds": 60, "delete_points": 5},
        "over_limit_403": refused,
    });
    (rows, figures)
}

fn main() {
    let options = parse_options();
    let mut results = BTreeMap::new();
    let mut table = vec![format!(
        "{:<44} {:>12} {:>12} {:>12}",
        "measurement", "manifests", "value", "unit"
    )];
    // `--storage DIR`: the registry writes there (an empty folder), and it stays for
    // measuring by hand (`/usr/bin/time -v regsweep` with REGISTRY_DIR=DIR, DRY_RUN=true).
    let registry = TestRegistry::start_with(RegistryOptions {
        storage: options.storage.clone(),
        ..RegistryOptions::default()
    });
    let names: Vec<String> = (0..options.repositories)
        .map(|r| format!("bench/r{r:03}"))
        .collect();
    eprintln!("preparing {} repositories…", names.len());
    let mut states: Vec<RepositoryState> = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(names.len().div_ceil(8).max(1))
            .map(|chunk| {
                let registry = &registry;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|n| prepare(registry, n))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });

    for &scale in &options.scales {
        let per_repository = scale.div_ceil(options.repositories);
        // The API fills about 300 manifests a second on the reference machine: a million
        // would take an hour. Above `--write-above`, the same manifests are written to
        // storage as the registry would write them; the registry then serves them (checked).
        let write = scale > options.write_above;
        let started = Instant::now();
        std::thread::scope(|scope| {
            let chunks = states.chunks_mut(options.repositories.div_ceil(8));
            for chunk in chunks {
                let registry = &registry;
                scope.spawn(move || {
                    for state in chunk {
                        populate(registry, state, per_repository, write);
                    }
                });
            }
        });
        if write {
            for state in &states {
                let problems = registry.pull_problems(&state.name, "latest");
                assert!(
                    problems.is_empty(),
                    "written storage not served: {problems:?}"
                );
            }
        }
        let total: usize = states.iter().map(|s| s.pushed).sum();
        eprintln!(
            "populated {total} manifests in {:.1}s",
            started.elapsed().as_secs_f64()
        );

        // 1. Discovery + plan over filesystem storage (dry run), median of runs.
        let storage = registry.storage().display().to_string();
        let env = [
            ("REGISTRY_URL", registry.url.as_str()),
            ("REGISTRY_DIR", storage.as_str()),
            ("DRY_RUN", "true"),
        ];
        let mut walls = Vec::new();
        let mut phases = Vec::new();
        let mut peak = 0;
        let mut report = Value::Null;
        // A first run unmeasured: the storage a registry just wrote may not all be in the page
        // cache yet, and the README's figures are with metadata cached.
        run_regsweep(&env);
        for _ in 0..options.runs {
            let (wall, rss, r) = run_regsweep(&env);
            let t = &r["timings"];
            phases.push(
                t["discover_seconds"].as_f64().unwrap() + t["plan_seconds"].as_f64().unwrap(),
            );
            walls.push(wall);
            peak = peak.max(rss);
            report = r;
        }
        let manifests = report["totals"]["manifests"].as_u64().unwrap();
        let (phase, wall) = (median(phases), median(walls));
        eprintln!(
            "discovery+plan at {manifests}: {phase:.2}s (process {wall:.2}s), peak {} MiB",
            peak / 1024
        );
        table.push(format!(
            "{:<44} {:>12} {:>12.2} {:>12}",
            "discovery + plan (filesystem, dry run)", manifests, phase, "s"
        ));
        table.push(format!(
            "{:<44} {:>12} {:>12.2} {:>12}",
            "dry run, whole process", manifests, wall, "s"
        ));
        table.push(format!(
            "{:<44} {:>12} {:>12.1} {:>12}",
            "peak memory (dry run)",
            manifests,
            peak as f64 / 1024.0,
            "MiB"
        ));
        // 1b. The same with a 6-rule policy file (the commit tags decided by the last rule,
        // so every tag is matched against all six), next to the seed's policy.
        let policy_path =
            std::env::temp_dir().join(format!("regsweep-bench-policy-{}.yml", std::process::id()));
        std::fs::write(&policy_path, SIX_RULES).unwrap();
        let policy_path = policy_path.display().to_string();
        let mut policy_env = env.to_vec();
        policy_env.push(("REGSWEEP_POLICY", policy_path.as_str()));
        let mut policy_phases = Vec::new();
        for _ in 0..options.runs {
            let (_, _, r) = run_regsweep(&policy_env);
            assert_eq!(
                r["totals"]["planned_deletions"], report["totals"]["planned_deletions"],
                "the 6-rule policy plans what the seed's does on this dataset"
            );
            let t = &r["timings"];
            policy_phases.push(
                t["discover_seconds"].as_f64().unwrap() + t["plan_seconds"].as_f64().unwrap(),
            );
        }
        let policy_phase = median(policy_phases);
        eprintln!(
            "discovery+plan with a 6-rule policy at {manifests}: {policy_phase:.2}s ({:+.1}% of the seed's {phase:.2}s)",
            100.0 * (policy_phase / phase - 1.0)
        );
        table.push(format!(
            "{:<44} {:>12} {:>12.2} {:>12}",
            "discovery + plan, 6-rule policy file", manifests, policy_phase, "s"
        ));
        table.push(format!(
            "{:<44} {:>12} {:>12.1} {:>12}",
            "  6-rule policy / seed policy",
            manifests,
            100.0 * policy_phase / phase,
            "%"
        ));
        let mut entry = json!({
            "manifests": manifests,
            "planned_deletions": report["totals"]["planned_deletions"],
            "discover_plan_seconds_median": phase,
            "dry_run_wall_seconds_median": wall,
            "policy_discover_plan_seconds_median": policy_phase,
            "peak_rss_mib": peak as f64 / 1024.0,
            "runs": options.runs,
        });

        // 2. The same over S3: the same files in a bucket on the local endpoint.
        if scale <= options.s3_up_to {
            let scratch = tempfile::tempdir().unwrap();
            let s3 = common::s3::MotoServer::start(scratch.path().join("moto.log"));
            let started = Instant::now();
            let files = upload_storage(&registry.storage(), &s3);
            eprintln!(
                "uploaded {files} storage files to the local S3 endpoint in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            let storage = common::s3::storage_env(&s3.url);
            let mut env = borrowed(&storage);
            env.extend([("REGISTRY_URL", registry.url.as_str()), ("DRY_RUN", "true")]);
            let mut s3_phases = Vec::new();
            let mut s3_peak = 0;
            let mut s3_requests = 0;
            for _ in 0..options.runs {
                let before = endpoint_requests(&s3);
                let (_, rss, r) = run_regsweep(&env);
                s3_requests = endpoint_requests(&s3) - before;
                assert_eq!(
                    r["totals"]["manifests"].as_u64().unwrap(),
                    manifests,
                    "S3 discovery found a different dataset"
                );
                assert_eq!(
                    r["totals"]["planned_deletions"], report["totals"]["planned_deletions"],
                    "S3 discovery planned differently"
                );
                // The same decisions for the same manifests. Dates may differ: the bucket's
                // objects were written by the upload above, not by the pushes.
                assert!(
                    decisions(&r) == decisions(&report),
                    "S3 discovery saw the storage differently from the filesystem"
                );
                let t = &r["timings"];
                s3_phases.push(
                    t["discover_seconds"].as_f64().unwrap() + t["plan_seconds"].as_f64().unwrap(),
                );
                s3_peak = s3_peak.max(rss);
            }
            let s3_phase = median(s3_phases);
            let concurrency = default_concurrency();
            let capacity = endpoint_capacity(&s3, &registry.storage(), concurrency);
            let rate = s3_requests as f64 / s3_phase;
            let per_manifest = s3_requests as f64 / manifests as f64;
            let manifest_rate = manifests as f64 / s3_phase;
            eprintln!(
                "S3 requests per run: {s3_requests} ({rate:.0}/s); the endpoint's own GET capacity: {capacity:.0}/s"
            );
            eprintln!(
                "discovery+plan over S3 at {manifests}: {s3_phase:.2}s ({:.1}x filesystem), peak {} MiB",
                s3_phase / phase,
                s3_peak / 1024
            );
            table.push(format!(
                "{:<44} {:>12} {:>12.2} {:>12}",
                "discovery + plan (S3 on local moto, dry run)", manifests, s3_phase, "s"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.1} {:>12}",
                "  S3 / filesystem",
                manifests,
                s3_phase / phase,
                "x"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12} {:>12}",
                "  S3 requests per run", manifests, s3_requests, "requests"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.0} {:>12}",
                "  regsweep's S3 request rate", manifests, rate, "requests/s"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.0} {:>12}",
                format!("  endpoint GET capacity ({concurrency} in flight)"),
                manifests,
                capacity,
                "requests/s"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.0} {:>12}",
                "  request rate / endpoint GET capacity",
                manifests,
                100.0 * rate / capacity,
                "%"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.2} {:>12}",
                "  S3 requests per manifest", manifests, per_manifest, "requests"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12.0} {:>12}",
                "  manifests discovered per second", manifests, manifest_rate, "manifests/s"
            ));
            entry["s3"] = json!({
                "storage_files": files,
                "discover_plan_seconds_median": s3_phase,
                "peak_rss_mib": s3_peak as f64 / 1024.0,
                "ratio_to_filesystem": s3_phase / phase,
                "requests": s3_requests,
                "requests_per_second": rate,
                "requests_per_manifest": per_manifest,
                "manifests_per_second": manifest_rate,
                "endpoint_get_capacity_per_second": capacity,
                "endpoint_concurrency": concurrency,
                "rate_to_capacity": rate / capacity,
            });
        }

        // 4. DigitalOcean: deletions through the fake API at its (scaled) rate limit.
        if scale <= options.do_up_to {
            let scratch = tempfile::tempdir().unwrap();
            let copy = scratch.path().join("do");
            copy_storage(&registry.storage(), &copy);
            let backing = TestRegistry::start_with(RegistryOptions {
                storage: Some(copy.clone()),
                ..RegistryOptions::default()
            });
            let (limit, window) = (125u64, std::time::Duration::from_secs(30));
            let fake = common::digitalocean::FakeDo::start(
                &backing,
                common::digitalocean::FakeDoOptions {
                    rate_limit: (limit, window),
                    ..Default::default()
                },
            );
            let (_, _, report) = run_regsweep(&[
                ("REGSWEEP_PROVIDER", "digitalocean"),
                ("DIGITALOCEAN_ACCESS_TOKEN", common::digitalocean::TOKEN),
                ("REGSWEEP_DO_API_URL", fake.url.as_str()),
                ("REGISTRY_URL", backing.url.as_str()),
                ("REGISTRY_AUTH", "bench:unused"),
                ("REGSWEEP_GC", "false"),
                ("REGSWEEP_VERIFY", "false"),
                // More to delete per repository than the default policy leaves at small scales.
                ("HASH_TAG_KEEP", "2"),
            ]);
            let deleted = report["totals"]["deleted"].as_u64().unwrap();
            assert!(
                deleted > 0,
                "the DigitalOcean run deleted nothing: {} / {}",
                report["fatal"],
                report["totals"]
            );
            let state = fake.state.lock().unwrap();
            let deletes: Vec<usize> = state
                .requests
                .iter()
                .enumerate()
                .filter(|(_, (m, _))| m == "DELETE")
                .map(|(i, _)| i)
                .collect();
            let (first, last) = (deletes[0], *deletes.last().unwrap());
            let seconds = state.times[last]
                .duration_since(state.times[first])
                .as_secs_f64()
                .max(1e-3);
            let sent = (last - first + 1) as f64;
            let allowed_per_second = limit as f64 / window.as_secs_f64();
            let used = sent / seconds / allowed_per_second;
            let throttled = state.throttled;
            eprintln!(
                "DigitalOcean: {deleted} deletions, {sent} requests in {seconds:.1}s while deleting: {:.0} % of the allowed rate, {throttled} 429s",
                100.0 * used
            );
            table.push(format!(
                "{:<44} {:>12} {:>12.0} {:>12}",
                "DigitalOcean: share of the allowed rate",
                manifests,
                100.0 * used,
                "%"
            ));
            table.push(format!(
                "{:<44} {:>12} {:>12} {:>12}",
                "  429 answers", manifests, throttled, "count"
            ));
            entry["digitalocean"] = json!({
                "deletions": deleted,
                "requests_while_deleting": sent,
                "seconds_while_deleting": seconds,
                "rate_limit": {"requests": limit, "window_seconds": window.as_secs()},
                "share_of_allowed_rate": used,
                "throttled_429": throttled,
            });
        }

        // 3. Apply, against the registry's own capacity on an identical copy.
        if scale <= options.apply_up_to {
            let deletions = planned_deletions(&report);
            let mut apply_rows = Vec::new();
            for &concurrency in &options.apply_concurrency {
                let scratch = tempfile::tempdir().unwrap();
                let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
                copy_storage(&registry.storage(), &a);
                copy_storage(&registry.storage(), &b);
                let registry_a = TestRegistry::start_with(RegistryOptions {
                    storage: Some(a.clone()),
                    ..RegistryOptions::default()
                });
                let registry_b = TestRegistry::start_with(RegistryOptions {
                    storage: Some(b.clone()),
                    ..RegistryOptions::default()
                });
                let capacity = delete_capacity(&registry_b.url, &deletions, 32);
                let a_text = a.display().to_string();
                let concurrency_text = concurrency.to_string();
                let (_, _, real) = run_regsweep(&[
                    ("REGISTRY_URL", registry_a.url.as_str()),
                    ("REGISTRY_DIR", a_text.as_str()),
                    ("REGSWEEP_VERIFY", "false"),
                    ("REGSWEEP_CONCURRENCY", concurrency_text.as_str()),
                ]);
                let deleted = real["totals"]["deleted"].as_u64().unwrap();
                assert_eq!(
                    deleted as usize,
                    deletions.len(),
                    "the real run did not delete the plan"
                );
                let rate = deleted as f64 / real["timings"]["apply_seconds"].as_f64().unwrap();
                eprintln!("apply at concurrency {concurrency}: {rate:.0}/s; registry capacity {capacity:.0}/s ({:.0} %)", 100.0 * rate / capacity);
                table.push(format!(
                    "{:<44} {:>12} {:>12.0} {:>12}",
                    format!("apply, regsweep at concurrency {concurrency}"),
                    manifests,
                    rate,
                    "deletes/s"
                ));
                table.push(format!(
                    "{:<44} {:>12} {:>12.0} {:>12}",
                    "  registry capacity (32 in flight)", manifests, capacity, "deletes/s"
                ));
                table.push(format!(
                    "{:<44} {:>12} {:>12.0} {:>12}",
                    "  regsweep / capacity",
                    manifests,
                    100.0 * rate / capacity,
                    "%"
                ));
                apply_rows.push(json!({"concurrency": concurrency, "deletions": deleted, "regsweep_deletes_per_second": rate, "registry_capacity_deletes_per_second": capacity, "ratio": rate / capacity}));
            }
            entry["apply"] = json!(apply_rows);
        }
        if scale <= options.maintenance_up_to {
            let api = scale <= options.maintenance_api_up_to;
            let s3 = scale <= options.maintenance_s3_up_to;
            entry["maintenance"] =
                bench_maintenance(&registry, &states, manifests, api, s3, &mut table);
        }
        results.insert(manifests.to_string(), entry);
    }

    if options.ghcr_deletions > 0 {
        let (rows, figures) = bench_ghcr(options.ghcr_deletions);
        table.extend(rows);
        results.insert("ghcr".to_string(), figures);
    }

    if let Some(keep) = &options.keep_storage {
        copy_storage(&registry.storage(), keep);
        eprintln!("storage kept in {}", keep.display());
    }
    println!();
    for line in &table {
        println!("{line}");
    }
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "regsweep": env!("CARGO_PKG_VERSION"),
        "date": chrono::Utc::now().to_rfc3339(),
    });
    let document =
        json!({"machine": machine, "repositories": options.repositories, "results": results});
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(
        &options.out,
        serde_json::to_string_pretty(&document).unwrap(),
    )
    .unwrap();
    println!("\nfigures written to {}", options.out.display());
}
