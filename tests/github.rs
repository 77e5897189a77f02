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
