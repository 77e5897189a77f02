//! The command line: `--help` documents every option, and every bad input stops the run with
//! one line naming it, exit status 2, before any connection to the registry.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::regsweep;

#[test]
fn help_documents_every_option_with_its_variable_and_default() {
    let run = regsweep(&[], &["--help"]);
    assert_eq!(run.code, 0);
    for variable in [
        "REGISTRY_URL",
        "REGISTRY_DIR",
        "SELF_SIGNED_CERT",
        "REGISTRY_AUTH",
        "DRY_RUN",
        "REPO_FILTER",
        "HASH_TAG_PATTERN",
        "HASH_TAG_KEEP",
        "REGSWEEP_CA_CERT",
        "REGSWEEP_MIN_AGE",
        "REGSWEEP_CONCURRENCY",
        "REGSWEEP_OUTPUT",
        "REGSWEEP_REGISTRY_CONFIG",
        "REGISTRY_STORAGE",
        "REGSWEEP_VERIFY",
        "REGSWEEP_MAX_DELETE",
        "REGSWEEP_ALLOW_INSECURE_HTTP",
        "REGSWEEP_HTTP_TIMEOUT",
        "REGSWEEP_HTTP_ATTEMPTS",
        "REGSWEEP_RETRY_DELAY",
        "REGSWEEP_LOG",
        "REGSWEEP_SOURCE",
        "REGSWEEP_REPOSITORIES",
        "ACCESS_KEY",
        "SECRET_KEY",
        "BUCKET",
        "REGION",
        "REGSWEEP_S3_ENDPOINT",
        "REGSWEEP_S3_PATH_STYLE",
    ] {
        assert!(
            run.stdout.contains(&format!("[env: {variable}")),
            "{variable} missing:\n{}",
            run.stdout
        );
    }
    for default in [
        "[default: auto]",
        "[default: ^[0-9a-f]{7,12}$]",
        "[default: 10]",
        "[default: 0s]",
        "[default: text]",
    ] {
        assert!(
            run.stdout.contains(default),
            "{default} missing:\n{}",
            run.stdout
        );
    }
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn version_prints_the_crate_version() {
    let run = regsweep(&[], &["--version"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout.trim(),
        format!("regsweep {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A listener that counts connections, to prove that bad input makes no request.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (url, count)
}

#[test]
fn bad_input_fails_before_any_request_with_one_line_naming_it() {
    let (url, connections) = counting_listener();
    let storage = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(storage.path().join("docker/registry/v2")).unwrap();
    let not_storage = tempfile::tempdir().unwrap();
    let dir = storage.path().display().to_string();
    let bad_dir = not_storage.path().display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("REGISTRY_DIR", &dir)], "REGISTRY_URL"),
        (
            vec![
                ("REGISTRY_URL", "registry.example.com:5000"),
                ("REGISTRY_DIR", &dir),
            ],
            "REGISTRY_URL",
        ),
        (
            vec![("REGISTRY_URL", "http://"), ("REGISTRY_DIR", &dir)],
            "REGISTRY_URL",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("HASH_TAG_PATTERN", "([0-9a-f]"),
            ],
            "HASH_TAG_PATTERN",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("HASH_TAG_KEEP", "-1"),
            ],
            "HASH_TAG_KEEP",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("HASH_TAG_KEEP", "ten"),
            ],
            "HASH_TAG_KEEP",
        ),
        (
            vec![("REGISTRY_URL", &url), ("REGISTRY_DIR", &bad_dir)],
            "REGISTRY_DIR",
        ),
        (
            vec![("REGISTRY_URL", &url), ("REGISTRY_DIR", "/does/not/exist")],
            "REGISTRY_DIR",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("DRY_RUN", "perhaps"),
            ],
            "DRY_RUN",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGSWEEP_MIN_AGE", "2 fortnights"),
            ],
            "REGSWEEP_MIN_AGE",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGSWEEP_CA_CERT", "/does/not/exist.pem"),
            ],
            "REGSWEEP_CA_CERT",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGSWEEP_OUTPUT", "yaml"),
            ],
            "REGSWEEP_OUTPUT",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REPO_FILTER", "Bad Name"),
            ],
            "REPO_FILTER",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGISTRY_AUTH", "no-colon-secret"),
            ],
            "REGISTRY_AUTH",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGISTRY_STORAGE", "gcs"),
            ],
            "REGISTRY_STORAGE",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGSWEEP_MAX_DELETE", "-1"),
            ],
            "REGSWEEP_MAX_DELETE",
        ),
        (
            vec![
                ("REGISTRY_URL", &url),
                ("REGISTRY_DIR", &dir),
                ("REGSWEEP_LOG", "loud"),
            ],
            "REGSWEEP_LOG",
        ),
    ];
    for (env, input) in cases {
        let run = regsweep(&env, &[]);
        assert_eq!(run.code, 2, "{env:?}: {}", run.stderr);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "one line for {input}: {}",
            run.stderr
        );
        assert!(run.stderr.starts_with("error: invalid "), "{}", run.stderr);
        assert!(
            run.stderr.contains(input),
            "{input} not named: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
        assert!(
            !run.stderr.contains("no-colon-secret"),
            "a secret was echoed"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "bad input reached the network"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    // CI systems pass unset inputs as empty strings.
    let storage = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(storage.path().join("docker/registry/v2")).unwrap();
    let dir = storage.path().display().to_string();
    let run = regsweep(
        &[
            ("REGISTRY_URL", ""),
            ("REGISTRY_DIR", &dir),
            ("HASH_TAG_KEEP", ""),
            ("DRY_RUN", ""),
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("REGISTRY_URL (--registry-url): it is required"),
        "{}",
        run.stderr
    );
}

#[test]
fn unreachable_registry_fails_with_exit_1_and_says_so() {
    let storage = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(storage.path().join("docker/registry/v2")).unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = storage.path().display().to_string();
    let run = regsweep(
        &[
            ("REGISTRY_URL", &url),
            ("REGISTRY_DIR", &dir),
            ("REGSWEEP_RETRY_DELAY", "10ms"),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot reach registry `{url}`")),
        "{}",
        run.stderr
    );
}
