//! publish: puts a run's results where a team already looks, beyond the report on standard
//! output: report files (REGSWEEP_MARKDOWN_FILE, REGSWEEP_JSON_FILE), GitHub Actions (job
//! summary, step outputs, annotations, the pull-request comment) and the GitLab merge-request
//! note. Publishing never changes what a run did or its exit status: what cannot be published is
//! a warning on standard error.

pub mod comment;
pub mod github;
pub mod gitlab;

use std::fmt::Write as _;

use crate::report::{json, markdown, Summary};
use crate::settings::Settings;

/// Publishes `summary` everywhere `settings` asks for; messages go to standard error.
pub async fn publish(settings: &Settings, summary: &Summary) {
    let files: [(_, fn(&_) -> String); 2] = [
        (&settings.markdown_file, markdown::render),
        (&settings.json_file, json::render),
    ];
    for (path, render) in files {
        if let Some(path) = path {
            if let Err(error) = std::fs::write(path, render(summary)) {
                eprintln!(
                    "warning: cannot write the report to `{}`: {error}",
                    path.display()
                );
            }
        }
    }
    if let (Some(merge_request), Some(token)) = (&settings.gitlab, &settings.gitlab_token) {
        let whole = match &settings.json_file {
            Some(path) => format!("the job's artifact `{}`", path.display()),
            None => "in the job log".to_string(),
        };
        match gitlab::note(summary, merge_request, token, &whole).await {
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
    if let Some(target) = &settings.github {
        for line in github::annotations(summary) {
            eprintln!("{line}");
        }
        let mut problems = github::publish(summary, target);
        match (&target.pull_request, &settings.github_token) {
            _ if !settings.comment_on_pr => {}
            (Some(pull_request), Some(token)) => {
                let commented =
                    comment::comment(summary, pull_request, token, &target.report_json).await;
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
pub fn failed(settings: &Settings, error: &str) {
    if settings.github.is_some() {
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
