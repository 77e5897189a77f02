//! publish: puts a run's results where a team already looks, beyond the report on standard
//! output: report files (REGSWEEP_MARKDOWN_FILE, REGSWEEP_JSON_FILE), GitHub Actions (job
//! summary, step outputs, annotations, the pull-request comment) and the GitLab merge-request
//! note. Publishing never changes what a run did or its exit status: what cannot be published is
//! a warning on standard error.

pub mod comment;
pub mod github;
pub mod gitlab;

use std::fmt::Write as _;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::cli::Cli;
use crate::registry::Http;
use crate::report::{json, markdown, Summary};
use crate::settings::{non_empty, SettingsError};

/// Where a run's results go beyond standard output: from the options and the CI environment.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Also write the Markdown report here.
    pub markdown_file: Option<PathBuf>,
    /// Also write the JSON report here.
    pub json_file: Option<PathBuf>,
    /// Where to publish inside GitHub Actions; `None` elsewhere or with
    /// `REGSWEEP_GITHUB_SUMMARY=false`.
    pub github: Option<github::GithubActions>,
    /// Comment on the pull request (with `github` and a token).
    pub comment_on_pr: bool,
    /// The token for pull-request comments (`GITHUB_TOKEN`).
    pub github_token: Option<SecretString>,
    /// The merge request of a GitLab merge-request pipeline, to note on with `gitlab_token`.
    pub gitlab: Option<gitlab::MergeRequest>,
    /// A GitLab token with `api` scope.
    pub gitlab_token: Option<SecretString>,
}

impl Targets {
    /// The targets the options and the environment (`GITHUB_ACTIONS`, `GITLAB_CI`, …) name.
    pub fn from_cli(cli: &Cli) -> Result<Targets, SettingsError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let summary = cli.github_summary;
        Ok(Targets {
            markdown_file: non_empty(&cli.markdown_file).map(PathBuf::from),
            json_file: non_empty(&cli.json_file).map(PathBuf::from),
            github: summary
                .then(|| github::GithubActions::from_env(lookup))
                .flatten(),
            comment_on_pr: cli.comment_on_pr,
            github_token: non_empty(&cli.github_token).map(|t| SecretString::from(t.to_string())),
            gitlab: gitlab::MergeRequest::from_env(lookup),
            gitlab_token: non_empty(&cli.gitlab_token).map(|t| SecretString::from(t.to_string())),
        })
    }
}

/// Publishes `summary` everywhere `targets` asks for, through `http` (the run's HTTP layer);
/// messages go to standard error. The Markdown report is rendered once for all of them.
pub async fn publish(targets: &Targets, summary: &Summary, http: &Http) {
    let markdown = markdown::render(summary);
    if let Some(path) = &targets.markdown_file {
        if let Err(error) = std::fs::write(path, &markdown) {
            eprintln!(
                "warning: cannot write the report to `{}`: {error}",
                path.display()
            );
        }
    }
    // Streamed: a large registry's JSON report is never held in memory as one string.
    if let Some(path) = &targets.json_file {
        if let Err(problem) = json::write_file(summary, path) {
            eprintln!("warning: the JSON report: {problem}");
        }
    }
    if let (Some(merge_request), Some(token)) = (&targets.gitlab, &targets.gitlab_token) {
        let whole = match &targets.json_file {
            Some(path) => format!("the job's artifact `{}`", path.display()),
            None => "in the job log".to_string(),
        };
        let noted = gitlab::note(
            &markdown,
            &summary.registry,
            merge_request,
            token,
            &whole,
            http,
        )
        .await;
        match noted {
            Ok(gitlab::Noted::Created(id)) => eprintln!(
                "regsweep: noted on merge request !{} (note {id})",
                merge_request.iid
            ),
            Ok(gitlab::Noted::Updated(id)) => eprintln!(
                "regsweep: updated its note on merge request !{} (note {id})",
                merge_request.iid
            ),
            Err(error) => eprintln!(
                "warning: cannot note on merge request !{}: {error}; the report is in \
                 the job log and artifacts",
                merge_request.iid
            ),
        }
    }
    if let Some(target) = &targets.github {
        for line in github::annotations(summary) {
            eprintln!("{line}");
        }
        let mut problems = github::publish(summary, &markdown, target);
        match (&target.pull_request, &targets.github_token) {
            _ if !targets.comment_on_pr => {}
            (Some(pull_request), Some(token)) => {
                let commented = comment::comment(
                    &markdown,
                    &summary.registry,
                    pull_request,
                    token,
                    &target.report_json,
                    http,
                )
                .await;
                match commented {
                    Ok(comment::Commented::Created(id)) => {
                        eprintln!(
                            "regsweep: commented on pull request #{} ({id})",
                            pull_request.number
                        )
                    }
                    Ok(comment::Commented::Updated(id)) => eprintln!(
                        "regsweep: updated its comment on pull request #{} ({id})",
                        pull_request.number
                    ),
                    Err(error) => {
                        problems.push(format!("{error}; the report is in the job summary"))
                    }
                }
            }
            (Some(_), None) => problems.push(
                "REGSWEEP_COMMENT_ON_PR needs GITHUB_TOKEN (env: GITHUB_TOKEN: \
                 ${{ github.token }}); the report is in the job summary"
                    .to_string(),
            ),
            (None, _) => {}
        }
        for problem in problems {
            eprintln!(
                "::warning title=regsweep: not published::{}",
                github::escape_data(&problem)
            );
        }
    }
}

/// A run that stopped before it had a summary: an error annotation in GitHub Actions.
pub fn failed(targets: &Targets, error: &str) {
    if targets.github.is_some() {
        eprintln!("::error title=regsweep::{}", github::escape_data(error));
    }
}

/// `markdown` cut at a line boundary to at most `budget` bytes, saying what was left out and
/// that the whole report is at `whole`.
pub fn fit(markdown: &str, budget: usize, whole: &str) -> String {
    if markdown.len() <= budget {
        return markdown.to_string();
    }
    let note_room = 512 + whole.len();
    let room = budget.saturating_sub(note_room);
    let mut kept = String::new();
    let mut lines = markdown.lines();
    let mut left_out = 0;
    for line in lines.by_ref() {
        if kept.len() + line.len() + 1 > room {
            left_out = 1;
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    left_out += lines.count();
    if kept.matches("<details>").count() > kept.matches("</details>").count() {
        kept.push_str("\n</details>\n");
    }
    let _ = write!(
        kept,
        "\n… and {left_out} more lines: cut to stay under the size limit; the whole report is \
         {whole}.\n"
    );
    kept
}
