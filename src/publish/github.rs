//! github: what a run publishes inside GitHub Actions (`GITHUB_ACTIONS=true`), whether regsweep
//! runs from the Action or from a plain `run:` step: the Markdown report appended to the job
//! summary (`$GITHUB_STEP_SUMMARY`, kept under GitHub's 1 MiB), the step outputs
//! (`$GITHUB_OUTPUT`, each value in a heredoc with a random delimiter), the JSON report as a
//! file, and `::warning::` annotations for what the user should know.
//!
//! Workflow commands go to standard error: the runner reads both streams, and standard output
//! carries the report (which may be JSON piped to a file).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::fit;
use crate::apply::DeletionOutcome;
use crate::model::Reason;
use crate::report::{json, Summary};

/// GitHub drops a step summary larger than this entirely.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Where a GitHub Actions step wants its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubActions {
    /// `$GITHUB_STEP_SUMMARY`.
    pub step_summary: Option<PathBuf>,
    /// `$GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// Where the JSON report is written: `$RUNNER_TEMP/regsweep-report-<step>.json`.
    pub report_json: PathBuf,
    /// The pull request the workflow runs for (`pull_request` events), if any.
    pub pull_request: Option<PullRequest>,
}

/// A pull request to comment on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// `$GITHUB_API_URL` (`https://api.github.com`, or a GitHub Enterprise Server's).
    pub api_url: String,
    /// The repository's owner.
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// The pull request's number.
    pub number: u64,
}

impl PullRequest {
    /// From the workflow's event: `pull_request` or `pull_request_target`, whose payload
    /// (`$GITHUB_EVENT_PATH`) names the pull request.
    fn from_env(value: &impl Fn(&str) -> Option<String>) -> Option<PullRequest> {
        let event = value("GITHUB_EVENT_NAME")?;
        if event != "pull_request" && event != "pull_request_target" {
            return None;
        }
        let payload = std::fs::read(value("GITHUB_EVENT_PATH")?).ok()?;
        let payload: serde_json::Value = serde_json::from_slice(&payload).ok()?;
        let number = payload["pull_request"]["number"]
            .as_u64()
            .or_else(|| payload["number"].as_u64())?;
        let (owner, repo) = value("GITHUB_REPOSITORY")?
            .split_once('/')
            .map(|(o, r)| (o.to_string(), r.to_string()))?;
        Some(PullRequest {
            api_url: value("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            owner,
            repo,
            number,
        })
    }
}

impl GithubActions {
    /// The step's files, read from the environment through `lookup`; `None` outside GitHub
    /// Actions (`GITHUB_ACTIONS` is not `true`).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<GithubActions> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if value("GITHUB_ACTIONS").as_deref().map(str::trim) != Some("true") {
            return None;
        }
        let folder = value("RUNNER_TEMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        // One file per step, so that two regsweep steps (two registries) keep both reports.
        let step: String = value("GITHUB_ACTION")
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = if step.is_empty() {
            "regsweep-report.json".to_string()
        } else {
            format!("regsweep-report-{step}.json")
        };
        Some(GithubActions {
            step_summary: value("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: value("GITHUB_OUTPUT").map(PathBuf::from),
            report_json: folder.join(name),
            pull_request: PullRequest::from_env(&value),
        })
    }
}

/// Escapes the data of a workflow command (`%`, CR and LF, as the runner decodes them).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The `::warning::` lines for what the user should know: repositories left untouched,
/// deletions skipped because of a push during the run, failed deletions, attachments whose
/// target is missing, and the run's notices.
pub fn annotations(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    for repository in &summary.repositories {
        if !repository.problems.is_empty() {
            lines.push(format!(
                "::warning title=regsweep: repository left untouched::`{}` could not be read completely, so nothing in it was deleted: {}",
                repository.name,
                repository.problems.join("; ")
            ));
        }
        for manifest in &repository.manifests {
            let at = format!("`{}@{}`", repository.name, manifest.digest.short());
            match (&manifest.outcome, &manifest.reason) {
                (Some(DeletionOutcome::SkippedRaced { tags }), _) => lines.push(format!(
                    "::warning title=regsweep: deletion skipped::{at} was not deleted: tag `{}` was pushed onto it during the run",
                    tags.join(",")
                )),
                (Some(DeletionOutcome::SkippedChanged { change }), _) => lines.push(format!(
                    "::warning title=regsweep: deletion skipped::{at} was not deleted: it changed since the plan ({change})"
                )),
                (Some(DeletionOutcome::SkippedReferenced { index }), _) => lines.push(format!(
                    "::warning title=regsweep: deletion skipped::{at} was not deleted: index `{}` pushed during the run lists it",
                    index.short()
                )),
                (Some(DeletionOutcome::KeptByRegistry { reason }), _) => lines.push(format!(
                    "::notice title=regsweep: kept by the registry::{at} was not deleted: {reason}"
                )),
                (Some(DeletionOutcome::Failed { error }), _) => lines.push(format!(
                    "::warning title=regsweep: deletion failed::{at}: {error}"
                )),
                (_, Reason::AttachmentTargetMissing { target }) => lines.push(format!(
                    "::warning title=regsweep: attachment without its target::{at} (tag {}) is attached to `{}`, which is not in the repository; kept",
                    manifest
                        .tags
                        .iter()
                        .map(|t| format!("`{}`", t.name))
                        .collect::<Vec<_>>()
                        .join(" "),
                    target.short()
                )),
                _ => {}
            }
        }
    }
    for notice in &summary.notices {
        lines.push(format!("::warning title=regsweep::{notice}"));
    }
    if let Some(fatal) = &summary.fatal {
        lines.push(format!("::error title=regsweep: stopped::{fatal}"));
    }
    if let Some(verification) = &summary.verification {
        for failure in &verification.failures {
            lines.push(format!(
                "::error title=regsweep: kept tag broken::{failure}"
            ));
        }
    }
    lines
        .into_iter()
        .map(|line| match line.split_once("::") {
            // Escape the message only (after the second `::`), not the command and title.
            Some(("", rest)) => match rest.split_once("::") {
                Some((command, message)) => format!("::{command}::{}", escape_data(message)),
                None => line,
            },
            _ => line,
        })
        .collect()
}

/// `markdown`, cut at a line boundary so that, appended to a summary file already `used`
/// bytes long, it stays under GitHub's limit; the cut says how many lines are left out and
/// where the whole report is.
pub fn fit_summary(markdown: &str, used: usize, report_json: &Path) -> String {
    fit(
        markdown,
        SUMMARY_LIMIT.saturating_sub(used),
        &json_pointer(report_json),
    )
}

/// Where the whole report is, inside GitHub Actions.
pub fn json_pointer(report_json: &Path) -> String {
    format!(
        "the JSON file `{}` (step output `report-json`)",
        report_json.display()
    )
}

/// The `$GITHUB_OUTPUT` text for `outputs`: `name<<DELIMITER`, the value, the delimiter, with
/// a delimiter that occurs in no value.
pub fn outputs_text(outputs: &[(&str, String)], delimiter: &str) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        let _ = write!(text, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
    }
    text
}

/// A random heredoc delimiter that none of `values` contains.
fn delimiter(values: &[(&str, String)]) -> String {
    loop {
        let candidate = format!(
            "ghadelimiter_{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if !values.iter().any(|(_, v)| v.contains(&candidate)) {
            return candidate;
        }
    }
}

/// The step outputs of a run.
pub fn outputs(summary: &Summary, report_json: &Path) -> Vec<(&'static str, String)> {
    let totals = &summary.totals;
    [
        ("deleted", totals.deleted.to_string()),
        ("planned", totals.planned_deletions.to_string()),
        ("kept", totals.kept.to_string()),
        ("reclaimable-bytes", totals.reclaimable_bytes.to_string()),
        ("report-json", report_json.display().to_string()),
    ]
    .into_iter()
    .chain(
        summary
            .garbage_collection_run
            .as_ref()
            .and_then(|gc| gc.freed_bytes)
            .map(|freed| ("freed-bytes", freed.to_string())),
    )
    .chain(
        summary
            .plan_hash
            .as_ref()
            .map(|hash| ("plan-hash", hash.clone())),
    )
    .collect()
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Writes the JSON report, the job summary (`markdown`, the report rendered once) and the step
/// outputs. Returns what could not be written, as warnings for the log (publishing never
/// changes the run's outcome).
pub fn publish(summary: &Summary, markdown: &str, target: &GithubActions) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(problem) = json::write_file(summary, &target.report_json) {
        problems.push(problem);
    }
    if let Some(path) = &target.step_summary {
        let used = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let text = fit_summary(markdown, used, &target.report_json);
        if let Err(problem) = append(path, &text) {
            problems.push(problem);
        }
    }
    if let Some(path) = &target.output {
        let values = outputs(summary, &target.report_json);
        if let Err(problem) = append(path, &outputs_text(&values, &delimiter(&values))) {
            problems.push(problem);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn only_inside_github_actions() {
        assert_eq!(GithubActions::from_env(env(&[])), None);
        assert_eq!(
            GithubActions::from_env(env(&[("GITHUB_ACTIONS", "false")])),
            None
        );
        let target = GithubActions::from_env(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", "/w/_temp/summary"),
            ("GITHUB_OUTPUT", "/w/_temp/output"),
            ("RUNNER_TEMP", "/w/_temp"),
            ("GITHUB_ACTION", "clean up/registry"),
        ]))
        .unwrap();
        assert_eq!(
            target.step_summary.as_deref(),
            Some(Path::new("/w/_temp/summary"))
        );
        assert_eq!(target.output.as_deref(), Some(Path::new("/w/_temp/output")));
        assert_eq!(
            target.report_json,
            Path::new("/w/_temp/regsweep-report-clean_up_registry.json")
        );
    }

    #[test]
    fn workflow_command_data_is_escaped() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        let summary = fixtures::summary(false);
        let lines = annotations(&summary);
        for line in &lines {
            assert!(!line.contains('\n'), "{line}");
            assert!(
                line.starts_with("::warning ") || line.starts_with("::error "),
                "{line}"
            );
        }
        insta::assert_snapshot!("annotations", lines.join("\n"));
    }

    #[test]
    fn the_job_summary_and_outputs_as_written() {
        let folder = tempfile::tempdir().unwrap();
        let target = GithubActions {
            step_summary: Some(folder.path().join("summary.md")),
            output: Some(folder.path().join("output")),
            report_json: folder.path().join("report.json"),
            pull_request: None,
        };
        let summary = fixtures::summary(false);
        let markdown = crate::report::markdown::render(&summary);
        assert!(publish(&summary, &markdown, &target).is_empty());
        let written = std::fs::read_to_string(folder.path().join("summary.md")).unwrap();
        insta::assert_snapshot!("job_summary", written);
        let outputs = std::fs::read_to_string(folder.path().join("output")).unwrap();
        let delimiter = outputs.lines().next().unwrap().split_once("<<").unwrap().1;
        let outputs = outputs
            .replace(delimiter, "DELIMITER")
            .replace(&folder.path().display().to_string(), "$RUNNER_TEMP");
        insta::assert_snapshot!("github_output", outputs);
    }

    #[test]
    fn outputs_use_a_delimiter_no_value_contains() {
        let values = vec![
            ("deleted", "3".to_string()),
            ("report-json", "/tmp/r.json".into()),
        ];
        insta::assert_snapshot!(outputs_text(&values, "ghadelimiter_fixed"), @r"
        deleted<<ghadelimiter_fixed
        3
        ghadelimiter_fixed
        report-json<<ghadelimiter_fixed
        /tmp/r.json
        ghadelimiter_fixed
        ");
        let random = delimiter(&values);
        assert!(
            random.starts_with("ghadelimiter_") && random.len() == 45,
            "{random}"
        );
        assert_ne!(random, delimiter(&values));
    }

    #[test]
    fn a_long_summary_is_cut_under_the_limit_and_says_so() {
        let row = "| `app` | `sha256:0123456789ab` | `v1` | 2026-01-01 | image | old | deleted |\n";
        let mut long = String::from("## regsweep: …\n\n<details><summary>Show</summary>\n\n");
        while long.len() < 2 * SUMMARY_LIMIT {
            long.push_str(row);
        }
        let json = Path::new("/w/_temp/regsweep-report.json");
        let used = 10_000;
        let cut = fit_summary(&long, used, json);
        assert!(used + cut.len() <= SUMMARY_LIMIT, "{}", cut.len());
        assert!(cut.starts_with("## regsweep: …"));
        assert!(cut.contains("</details>"), "folded details are closed");
        let ending = cut.lines().last().unwrap();
        assert!(
            ending.starts_with("… and ") && ending.contains("/w/_temp/regsweep-report.json"),
            "{ending}"
        );
        let short = "## regsweep: 1 deleted\n";
        assert_eq!(fit_summary(short, used, json), short);
    }
}
