//! Issue 27: the maintenance window. `regsweep maintenance` refuses to start unless the
//! registry proves it is read-only (or is stopped and said to be), then deletes in storage and
//! collects garbage. The registry's own `garbage-collect` is the oracle: on two copies of the
//! same storage, one cleaned through the API and collected by the registry, the other by
//! `regsweep maintenance`, the same blobs, revisions and tags are left, on a disk and on S3,
//! and every kept image is pullable once the registry serves again.

mod common;

use std::collections::BTreeSet;

use common::fake::{run_registry_gc, GcTarget};
use common::proxy::{Fault, FaultProxy, Rule};
use common::scenario::{push_attested_releases, push_history, History};
use common::{finish, Backend, Image, TestRegistry};

/// The repositories the runs select: all but `outside/untouched`.
const SELECTED: &str = "demo/app,demo/legacy,team/app,team/app/api,multi,other/mirror";

/// The dataset: the common history (multi-arch indexes, referrers, cosign signatures, nested
/// names), attested multi-arch releases, an old image also pushed to another repository
/// (its blobs shared: deleted in one, kept in the other), and a repository outside the
/// selection with an untagged leftover.
fn push_dataset(registry: &TestRegistry) -> (History, History) {
    let history = push_history(registry);
    let releases = push_attested_releases(registry);
    // The oldest commit image of demo/app, deleted there, kept as `v1` in other/mirror.
    let (repository, doomed) = history
        .deleted
        .iter()
        .find(|(r, _)| r == "demo/app")
        .cloned()
        .unwrap();
    registry.copy_image(&repository, &doomed, "other/mirror", "v1");
    registry.push_image("outside/untouched", Some("v1"), &Image::new("outside", 90));
    registry.push_image(
        "outside/untouched",
        None,
        &Image::new("outside leftover", 90),
    );
    (history, releases.history)
}

/// Every blob data file, every revision link and every tag link below a storage root.
fn state_of(registry: &TestRegistry) -> (BTreeSet<String>, BTreeSet<String>) {
    let files: Vec<String> = registry
        .storage_files()
        .into_iter()
        .filter(|f| f.ends_with("/data") || f.ends_with("/link"))
        .collect();
    let blobs = files
        .iter()
        .filter(|f| f.contains("/blobs/"))
        .cloned()
        .collect();
    // Links, with their content: revisions and tags (current and index), but not `_layers`
    // (the registry's collection leaves them, and so does regsweep).
    let links = files
        .iter()
        .filter(|f| f.contains("/_manifests/"))
        .map(|f| {
            format!(
                "{f} -> {}",
                String::from_utf8_lossy(&registry.read_storage(f))
            )
        })
        .collect();
    (blobs, links)
}

/// The same blobs, revisions and tags in both storages; the differences named when not.
fn assert_same_state(maintained: &TestRegistry, oracle: &TestRegistry) {
    let (blobs, links) = state_of(maintained);
    let (oracle_blobs, oracle_links) = state_of(oracle);
    assert!(!blobs.is_empty());
    let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
        a.difference(b).cloned().collect()
    };
    assert_eq!(
        only(&blobs, &oracle_blobs),
        Vec::<String>::new(),
        "blobs regsweep kept that the registry's collection deleted"
    );
    assert_eq!(
        only(&oracle_blobs, &blobs),
        Vec::<String>::new(),
        "blobs regsweep deleted that the registry's collection kept"
    );
    assert_eq!(
        only(&links, &oracle_links),
        Vec::<String>::new(),
        "links regsweep left that the API removed"
    );
    assert_eq!(
        only(&oracle_links, &links),
        Vec::<String>::new(),
        "links regsweep removed that the API left"
    );
}

fn oracle_and_maintenance(backend: Backend) {
    let mut registry = TestRegistry::start_on(backend);
    let (history, releases) = push_dataset(&registry);

    // The oracle: a copy of the storage, cleaned through the API with the same selection,
    // then collected by the registry's own garbage-collect with the registry stopped.
    let mut oracle = registry.copy();
    let api = oracle.sweep(&[("REGSWEEP_REPOSITORIES", SELECTED)]);
    assert_eq!(api.code, 0, "{}\n{}", api.stdout, api.stderr);
    oracle.stop();
    run_registry_gc(&GcTarget::of(&oracle), false);

    // regsweep's maintenance window on the original, the registry read-only.
    registry.restart(true);
    let dry = registry.sweep_with(
        &[("REGSWEEP_REPOSITORIES", SELECTED), ("DRY_RUN", "true")],
        &["maintenance"],
    );
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains("blobs would be deleted"),
        "{}",
        dry.stdout
    );
    let reports = tempfile::tempdir().unwrap();
    let json_file = reports.path().join("report.json");
    let markdown_file = reports.path().join("report.md");
    let maintained = registry.sweep_with(
        &[
            ("REGSWEEP_REPOSITORIES", SELECTED),
            ("REGSWEEP_JSON_FILE", json_file.to_str().unwrap()),
            ("REGSWEEP_MARKDOWN_FILE", markdown_file.to_str().unwrap()),
        ],
        &["maintenance"],
    );
    assert_eq!(
        maintained.code, 0,
        "{}\n{}",
        maintained.stdout, maintained.stderr
    );
    assert!(
        maintained
            .stdout
            .contains("is read-only: it answered an upload start with 405")
            && maintained.stdout.contains("phases:     discover ")
            && maintained
                .stdout
                .contains("Next step: restart the registry"),
        "{}",
        maintained.stdout
    );
    // The reports carry the window like a run's: what went, what it freed, how long.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let window = &json["maintenance"];
    assert!(
        window["manifests_deleted"].as_u64().unwrap() > 0,
        "{window}"
    );
    assert!(window["blobs_deleted"].as_u64().unwrap() > 0, "{window}");
    assert!(window["bytes_freed"].as_u64().unwrap() > 0, "{window}");
    assert!(window["phases"]["collect_seconds"].is_f64(), "{window}");
    assert!(window["next"]
        .as_str()
        .unwrap()
        .contains("restart the registry"));
    assert_eq!(
        json["totals"]["deleted"], window["manifests_deleted"],
        "{}",
        json["totals"]
    );
    let markdown = std::fs::read_to_string(&markdown_file).unwrap();
    assert!(
        markdown.contains("### Maintenance window") && markdown.contains("| Collection | "),
        "{markdown}"
    );

    assert_same_state(&registry, &oracle);

    // Served again: every kept image whole, every deleted one gone, the outside untouched.
    registry.restart(false);
    history.assert_applied(&registry);
    releases.assert_applied(&registry);
    assert!(registry.pull_problems("other/mirror", "v1").is_empty());
    assert!(registry.pull_problems("outside/untouched", "v1").is_empty());
    assert_eq!(registry.revisions("outside/untouched").len(), 2);
    // A second window finds nothing more to do.
    registry.restart(true);
    let again = registry.sweep_with(&[("REGSWEEP_REPOSITORIES", SELECTED)], &["maintenance"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("collected:  0 of"),
        "{}",
        again.stdout
    );
}

#[test]
fn on_a_disk_regsweep_leaves_what_the_registry_s_own_collection_leaves() {
    oracle_and_maintenance(Backend::Filesystem);
}

#[test]
fn on_s3_regsweep_leaves_what_the_registry_s_own_collection_leaves() {
    oracle_and_maintenance(Backend::S3);
}

/// The storage's files and contents, less the upload folders a refused probe may leave.
fn storage_without_uploads(registry: &TestRegistry) -> Vec<(String, Vec<u8>)> {
    registry
        .storage_snapshot()
        .into_iter()
        .filter(|(path, _)| !path.contains("/_uploads/"))
        .collect()
}

#[test]
fn the_window_is_proved_or_nothing_changes() {
    let mut registry = TestRegistry::start();
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let before = registry.storage_snapshot();

    // Writable: refused, the probe's upload cancelled, storage byte for byte the same.
    let writable = registry.sweep_with(&[], &["maintenance"]);
    assert_eq!(writable.code, 1, "{}\n{}", writable.stdout, writable.stderr);
    assert!(
        writable.stderr.contains("accepts writes")
            && writable
                .stderr
                .contains("storage.maintenance.readonly.enabled: true"),
        "{}",
        writable.stderr
    );
    // Even said to be stopped: it answers, and accepts writes.
    let said_stopped =
        registry.sweep_with(&[("REGSWEEP_REGISTRY_STOPPED", "true")], &["maintenance"]);
    assert_eq!(said_stopped.code, 1, "{}", said_stopped.stderr);
    let after = storage_without_uploads(&registry);
    assert_eq!(after, before, "a refused window changed storage");

    // Stopped and not said to be: refused; said to be: done.
    registry.stop();
    let quick = [
        ("REGSWEEP_HTTP_ATTEMPTS", "1"),
        ("REGSWEEP_HTTP_TIMEOUT", "2s"),
    ];
    let unreachable = registry.sweep_with(&quick, &["maintenance"]);
    assert_eq!(unreachable.code, 1, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains("--registry-stopped"),
        "{}",
        unreachable.stderr
    );
    let mut stopped_env = quick.to_vec();
    stopped_env.push(("REGSWEEP_REGISTRY_STOPPED", "true"));
    // The run's own limit holds in the window too: nothing removed, one line, exit 1.
    let mut limited_env = stopped_env.clone();
    limited_env.push(("REGSWEEP_MAX_DELETE", "0"));
    let limited = registry.sweep_with(&limited_env, &["maintenance"]);
    assert_eq!(limited.code, 1, "{}\n{}", limited.stdout, limited.stderr);
    let errors: Vec<&str> = limited
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert!(
        errors.len() == 1
            && errors[0].contains("REGSWEEP_MAX_DELETE=0")
            && errors[0].contains("nothing was removed"),
        "{}",
        limited.stderr
    );
    let unchanged = storage_without_uploads(&registry);
    assert_eq!(unchanged, before, "a refused plan changed storage");
    // A spent time budget stops it between steps: here before the first, so nothing changes.
    let mut budget_env = stopped_env.clone();
    budget_env.push(("REGSWEEP_MAX_DURATION", "1ms"));
    let spent = registry.sweep_with(&budget_env, &["maintenance"]);
    assert_eq!(spent.code, 3, "{}\n{}", spent.stdout, spent.stderr);
    assert!(
        spent
            .stderr
            .contains("error: time budget spent before deleting in storage; nothing was removed"),
        "{}",
        spent.stderr
    );
    let unchanged = storage_without_uploads(&registry);
    assert_eq!(unchanged, before, "a spent budget changed storage");
    let stopped = registry.sweep_with(&stopped_env, &["maintenance"]);
    assert_eq!(stopped.code, 0, "{}\n{}", stopped.stdout, stopped.stderr);
    assert!(stopped.stdout.contains("is stopped"), "{}", stopped.stdout);
    registry.restart(false);
    assert!(!registry.exists("app", &old.digest));
    assert!(registry.pull_problems("app", "latest").is_empty());
    // Not on a provider without storage.
    let no_storage = registry.sweep_with(&[("REGSWEEP_SOURCE", "api")], &["maintenance"]);
    assert_eq!(no_storage.code, 1, "{}", no_storage.stderr);
    assert!(
        no_storage.stderr.contains("REGISTRY_DIR"),
        "{}",
        no_storage.stderr
    );
}

/// Killed at any point, a second window finishes the job and nothing kept is lost.
#[test]
fn killed_at_any_point_a_second_window_finishes() {
    let mut registry = TestRegistry::start();
    let churn = common::scenario::push_churn(&registry, 3, 30);
    let mut oracle = registry.copy();
    let api = oracle.sweep(&[]);
    assert_eq!(api.code, 0, "{}", api.stderr);
    oracle.stop();
    run_registry_gc(&GcTarget::of(&oracle), false);
    registry.restart(true);
    // Killed ever later, until a window finishes before its kill: every stop leaves the
    // kept images whole, and some leave storage half-cleaned.
    let mut seen = BTreeSet::from([registry.storage_files().len()]);
    let mut delay_ms = 10;
    for _attempt in 0..40 {
        let mut child =
            registry.spawn_sweep_with(&[("REGSWEEP_CONCURRENCY", "1")], &["maintenance"]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = finish(child);
        churn.history.assert_kept_pullable(&registry);
        seen.insert(registry.storage_files().len());
        eprintln!(
            "killed after {delay_ms} ms: {} files",
            registry.storage_files().len()
        );
        if finished {
            break;
        }
        delay_ms = delay_ms * 5 / 4 + 5;
    }
    // The first state, the last, and at least one in between.
    assert!(seen.len() >= 3, "no kill landed half-way: {seen:?}");
    let last = registry.sweep_with(&[], &["maintenance"]);
    assert_eq!(last.code, 0, "{}\n{}", last.stdout, last.stderr);
    assert_same_state(&registry, &oracle);
    registry.restart(false);
    churn.history.assert_applied(&registry);
}

/// A storage failure while deleting stops the window with one clear line and exit 1;
/// nothing kept is touched, and the next window finishes.
#[test]
fn a_storage_error_stops_the_window_with_one_line() {
    let mut registry = TestRegistry::start_on(Backend::S3);
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    registry.restart(true);
    let before = registry.storage_files();
    let s3 = registry.s3.as_ref().unwrap().url.clone();
    // Every DeleteObjects (`POST /bucket?delete`) refused by the store.
    let proxy = FaultProxy::start(&s3, 7);
    proxy.add_rule(Rule {
        method: Some("POST".into()),
        path_contains: Some("delete".into()),
        ..Rule::always(Fault::Status(403))
    });
    let failed = registry.sweep_with(
        &[("REGSWEEP_S3_ENDPOINT", proxy.url.as_str())],
        &["maintenance"],
    );
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let errors: Vec<&str> = failed
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", failed.stderr);
    assert!(
        errors[0].contains("storage failed while deleting: cannot remove")
            && errors[0].contains("s3:DeleteObject")
            && errors[0].contains("run again"),
        "{}",
        errors[0]
    );
    assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);
    assert_eq!(
        registry.storage_files(),
        before,
        "a refused deletion changed storage"
    );

    let again = registry.sweep_with(&[], &["maintenance"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    registry.restart(false);
    assert!(!registry.exists("app", &old.digest));
    assert!(registry.pull_problems("app", "latest").is_empty());
}
