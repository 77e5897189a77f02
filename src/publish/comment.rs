//! comment: one sticky pull-request comment per registry (`REGSWEEP_COMMENT_ON_PR=true` on a
//! `pull_request` event), through the GitHub REST API with `octocrab`. The comment is found by
//! a hidden marker naming the registry and by its author being the token's own account, then
//! updated in place (PATCH); it is created only when there is none. A read-only token (a pull
//! request from a fork) answers 403: the caller falls back to the job summary with a warning.

use std::path::Path;

use octocrab::models::CommentId;
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};

use super::fit;
use super::github::{json_pointer, PullRequest};
use crate::report::{markdown, Summary};

/// GitHub refuses comments longer than this (characters; bytes bound them).
pub const COMMENT_LIMIT: usize = 65_536;

/// The account `GITHUB_TOKEN` comments as (it may not read `/user`).
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// The most comment pages read (100 a page): a bound on the loop.
const MAX_PAGES: u32 = 100;

/// What happened to the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commented {
    /// A new comment.
    Created(u64),
    /// The run's earlier comment, updated in place.
    Updated(u64),
}

/// Why the comment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    /// 403: the token may not write (a fork's pull request gets a read-only token).
    #[error(
        "cannot comment on pull request #{number}: GitHub answered 403 Forbidden (a pull \
         request from a fork gets a read-only token; grant `pull-requests: write`)"
    )]
    Forbidden {
        /// The pull request.
        number: u64,
    },
    /// Anything else.
    #[error("cannot comment on pull request #{number}: {message}")]
    Failed {
        /// The pull request.
        number: u64,
        /// What went wrong.
        message: String,
    },
}

/// The hidden marker that identifies this registry's comment.
pub fn marker(registry: &str) -> String {
    format!("<!-- regsweep: {} -->", registry.replace("--", "- -"))
}

/// The comment's body: the marker, then the Markdown report cut to GitHub's limit.
pub fn body(summary: &Summary, report_json: &Path) -> String {
    let marker = marker(&summary.registry);
    let budget = COMMENT_LIMIT.saturating_sub(marker.len() + 1);
    format!(
        "{marker}\n{}",
        fit(
            &markdown::render(summary),
            budget,
            &json_pointer(report_json)
        )
    )
}

fn status_of(error: &octocrab::Error) -> Option<u16> {
    match error {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// An octocrab error in one line: GitHub's status and message, or the cause.
fn describe(error: &octocrab::Error) -> String {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            format!("GitHub answered {}: {}", source.status_code, source.message)
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(inner) = cause {
                text.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            text
        }
    }
}

/// Creates or updates this registry's comment on `pull_request`.
pub async fn comment(
    summary: &Summary,
    pull_request: &PullRequest,
    token: &SecretString,
    report_json: &Path,
) -> Result<Commented, CommentError> {
    let number = pull_request.number;
    let failed = |error: octocrab::Error| match status_of(&error) {
        Some(403) => CommentError::Forbidden { number },
        _ => CommentError::Failed {
            number,
            message: describe(&error),
        },
    };
    let github = Octocrab::builder()
        .base_uri(pull_request.api_url.as_str())
        .map_err(failed)?
        .personal_token(token.expose_secret().to_string())
        .build()
        .map_err(failed)?;
    // A personal or app token can say who it is; GITHUB_TOKEN cannot (403) and is the bot.
    let me = match github.current().user().await {
        Ok(user) => user.login,
        Err(_) => ACTIONS_BOT.to_string(),
    };
    let marker = marker(&summary.registry);
    let issues = github.issues(&pull_request.owner, &pull_request.repo);
    let mut existing: Option<CommentId> = None;
    for page in 1..=MAX_PAGES {
        let comments = issues
            .list_comments(number)
            .per_page(100)
            .page(page)
            .send()
            .await
            .map_err(failed)?;
        existing = comments
            .items
            .iter()
            .find(|c| c.user.login == me && c.body.as_deref().is_some_and(|b| b.contains(&marker)))
            .map(|c| c.id);
        if existing.is_some() || comments.next.is_none() {
            break;
        }
    }
    let body = body(summary, report_json);
    match existing {
        Some(id) => {
            // PATCH, as the REST reference gives it (octocrab's `update_comment` POSTs).
            let route = format!(
                "/repos/{}/{}/issues/comments/{id}",
                pull_request.owner, pull_request.repo
            );
            let _: octocrab::models::issues::Comment = github
                .patch(route, Some(&serde_json::json!({ "body": body })))
                .await
                .map_err(failed)?;
            Ok(Commented::Updated(id.0))
        }
        None => {
            let created = issues.create_comment(number, body).await.map_err(failed)?;
            Ok(Commented::Created(created.id.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    // Creating, updating, paging and 403 are tested end to end against a fake GitHub API in
    // tests/github.rs.

    #[test]
    fn the_body_carries_the_marker_and_fits() {
        let summary = fixtures::summary(false);
        let body = body(&summary, Path::new("/tmp/r.json"));
        assert!(body.starts_with(&marker(&summary.registry)));
        assert!(body.len() <= COMMENT_LIMIT);
        assert_eq!(marker("https://r--x"), "<!-- regsweep: https://r- -x -->");
    }
}
