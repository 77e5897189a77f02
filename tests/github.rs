//! Inside GitHub Actions (`GITHUB_ACTIONS=true`) the binary itself publishes: the Markdown
//! report appended to `$GITHUB_STEP_SUMMARY`, the step outputs in `$GITHUB_OUTPUT`, the JSON
//! report as a file, annotations and log groups on stderr. Against the real registry.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::scenario::push_history;
use common::TestRegistry;

/// Parses `$GITHUB_OUTPUT` (`name<<DELIMITER`, value lines, `DELIMITER`).
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("name<<DELIMITER");
        assert!(delimiter.starts_with("ghadelimiter_"), "{delimiter}");
        let mut value = Vec::new();
        for line in lines.by_ref() {
            if line == delimiter {
                break;
            }
            value.push(line);
        }
        outputs.insert(name.to_string(), value.join("\n"));
    }
    outputs
}

fn github_env(folder: &Path) -> Vec<(String, String)> {
    vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        (
            "GITHUB_STEP_SUMMARY".into(),
            folder.join("summary.md").display().to_string(),
        ),
        (
            "GITHUB_OUTPUT".into(),
            folder.join("output").display().to_string(),
        ),
        ("RUNNER_TEMP".into(), folder.display().to_string()),
        ("GITHUB_ACTION".into(), "regsweep".into()),
    ]
}

#[test]
fn a_run_in_github_actions_publishes_summary_outputs_and_annotations() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let folder = tempfile::tempdir().unwrap();
    let env = github_env(folder.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The summary file already holds an earlier step's text: regsweep appends.
    std::fs::write(folder.path().join("summary.md"), "earlier step\n").unwrap();

    let run = registry.sweep(&env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let summary = std::fs::read_to_string(folder.path().join("summary.md")).unwrap();
    let deleted = history.deleted.len();
    assert!(
        summary.starts_with(&format!(
            "earlier step\n## regsweep: {deleted} manifests deleted,"
        )),
        "{summary}"
    );
    assert!(summary.contains("| Repository | Digest |"), "{summary}");

    let outputs = parse_outputs(&std::fs::read_to_string(folder.path().join("output")).unwrap());
    assert_eq!(outputs["deleted"], deleted.to_string());
    assert_eq!(outputs["planned"], deleted.to_string());
    let report_path = &outputs["report-json"];
    assert_eq!(
        Path::new(report_path),
        folder.path().join("regsweep-report-regsweep.json")
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_path).unwrap()).unwrap();
    assert_eq!(report["totals"]["deleted"], deleted);
    assert_eq!(outputs["kept"], report["totals"]["kept"].to_string());
    assert_eq!(
        outputs["reclaimable-bytes"],
        report["totals"]["reclaimable_bytes"].to_string()
    );

    // Annotations and log groups on stderr; the text report alone on stdout.
    assert!(
        run.stderr
            .contains("::warning title=regsweep: attachment without its target::"),
        "{}",
        run.stderr
    );
    for phase in ["discover", "read", "delete", "verify"] {
        assert!(
            run.stderr.contains(&format!("::group::regsweep {phase}")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        run.stderr.matches("::group::").count(),
        run.stderr.matches("::endgroup::").count()
    );
    assert!(!run.stdout.contains("::"), "{}", run.stdout);
}

#[test]
fn publishing_is_off_outside_github_actions_or_when_disabled() {
    let registry = TestRegistry::start();
    push_history(&registry);
    let folder = tempfile::tempdir().unwrap();
    let mut env = github_env(folder.path());
    env.push(("REGSWEEP_GITHUB_SUMMARY".into(), "false".into()));
    env.push(("DRY_RUN".into(), "true".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = registry.sweep(&env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_dir(folder.path()).unwrap().next().is_none());
    assert!(!run.stderr.contains("::"), "{}", run.stderr);

    let not_github: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != "GITHUB_ACTIONS" && *k != "REGSWEEP_GITHUB_SUMMARY")
        .copied()
        .collect();
    let run = registry.sweep(&not_github);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_dir(folder.path()).unwrap().next().is_none());
}

#[test]
fn a_failed_run_is_an_error_annotation() {
    let folder = tempfile::tempdir().unwrap();
    let env = github_env(folder.path());
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Nothing listens there: the run fails before deleting anything.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    env.push(("REGISTRY_URL", &url));
    env.push(("REGSWEEP_SOURCE", "api"));
    env.push(("REGSWEEP_HTTP_ATTEMPTS", "1"));
    let run = common::regsweep(&env, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("::error title=regsweep::cannot reach registry"),
        "{}",
        run.stderr
    );
}

/// The environment of a `pull_request` run against the fake GitHub API at `api`.
fn pull_request_env(folder: &Path, api: &str) -> Vec<(String, String)> {
    let event = folder.join("event.json");
    std::fs::write(
        &event,
        r#"{"action":"synchronize","number":7,"pull_request":{"number":7}}"#,
    )
    .unwrap();
    let mut env = github_env(folder);
    env.extend([
        ("GITHUB_EVENT_NAME".to_string(), "pull_request".to_string()),
        ("GITHUB_EVENT_PATH".into(), event.display().to_string()),
        ("GITHUB_REPOSITORY".into(), "o/r".into()),
        ("GITHUB_API_URL".into(), api.to_string()),
        ("GITHUB_TOKEN".into(), TOKEN.into()),
        ("REGSWEEP_COMMENT_ON_PR".into(), "true".into()),
        ("DRY_RUN".into(), "true".into()),
    ]);
    env
}

const TOKEN: &str = "ghs_FakeInstallationToken123";

#[test]
fn a_pull_request_gets_one_comment_per_registry_updated_in_place() {
    use common::github::{self, ACTIONS_BOT};
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, ResponseTemplate};

    // The fake API runs on this runtime; the registry harness and regsweep are synchronous.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let registry = TestRegistry::start();
    push_history(&registry);
    let folder = tempfile::tempdir().unwrap();
    let sweep = |api: &str| {
        let env = pull_request_env(folder.path(), api);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        registry.sweep(&env)
    };
    let marker = format!("<!-- regsweep: {} -->", registry.url);

    // First run: someone else's comment and a marked comment by another account (not ours,
    // left alone) across two pages; regsweep creates its own.
    let server = runtime.block_on(async {
        let server = github::server(
            vec![github::comment(1, "octocat", "LGTM")],
            vec![github::comment(2, "mallory", &format!("{marker}\nfake"))],
        )
        .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/issues/7/comments"))
            .and(body_string_contains(marker.as_str()))
            .and(body_string_contains("## regsweep: "))
            .respond_with(ResponseTemplate::new(201).set_body_json(github::comment(
                99,
                ACTIONS_BOT,
                "new",
            )))
            .expect(1)
            .mount(&server)
            .await;
        server
    });
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("commented on pull request #7 (99)"),
        "{}",
        run.stderr
    );
    let requests = runtime.block_on(server.received_requests()).unwrap();
    assert!(requests.iter().all(|r| r
        .headers
        .get("authorization")
        .is_some_and(|v| v == format!("Bearer {TOKEN}").as_str())));
    runtime.block_on(server.verify());

    // Second run: our comment is found (on page 2) and patched; nothing is created.
    let server = runtime.block_on(async {
        let server = github::server(
            vec![github::comment(1, "octocat", "LGTM")],
            vec![github::comment(
                99,
                ACTIONS_BOT,
                &format!("{marker}\nold report"),
            )],
        )
        .await;
        Mock::given(method("PATCH"))
            .and(path("/repos/o/r/issues/comments/99"))
            .and(body_string_contains(marker.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(github::comment(
                99,
                ACTIONS_BOT,
                "new",
            )))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        server
    });
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("updated its comment on pull request #7 (99)"),
        "{}",
        run.stderr
    );
    runtime.block_on(server.verify());

    // A fork's read-only token: 403, a warning, the job summary still written, exit 0.
    let server = runtime.block_on(async {
        let server = github::server(vec![], vec![]).await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/issues/7/comments"))
            .respond_with(github::forbidden())
            .mount(&server)
            .await;
        server
    });
    let summary_before = std::fs::read_to_string(folder.path().join("summary.md")).unwrap();
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "::warning title=regsweep: not published::cannot comment on pull request #7: GitHub answered 403 Forbidden"
        ) && run.stderr.contains("the report is in the job summary"),
        "{}",
        run.stderr
    );
    let summary_after = std::fs::read_to_string(folder.path().join("summary.md")).unwrap();
    assert!(
        summary_after.len() > summary_before.len(),
        "the job summary got the report"
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    }
}
