//! comment: one sticky pull-request comment per registry (`REGSWEEP_COMMENT_ON_PR=true` on a
//! `pull_request` event), through the GitHub REST API over the run's HTTP layer (its retries
//! and GitHub's rate limits, like every other request). The comment is found by
//! a hidden marker naming the registry and by its author being the token's own account, then
//! updated in place (PATCH); it is created only when there is none. A read-only token (a pull
//! request from a fork) answers 403: the caller falls back to the job summary with a warning.

use std::path::Path;

use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::fit;
use super::github::{json_pointer, PullRequest};
use crate::registry::rest::{next_from_link, whole_body, ApiError, RestApi};
use crate::registry::Http;

/// GitHub refuses comments longer than this (characters; bytes bound them).
pub const COMMENT_LIMIT: usize = 65_536;

/// The account `GITHUB_TOKEN` comments as (it may not read `/user`).
pub const ACTIONS_BOT: &str = "github-actions[bot]";

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
pub fn body(markdown: &str, registry: &str, report_json: &Path) -> String {
    let marker = marker(registry);
    let budget = COMMENT_LIMIT.saturating_sub(marker.len() + 1);
    format!(
        "{marker}\n{}",
        fit(markdown, budget, &json_pointer(report_json))
    )
}

/// Creates or updates this registry's comment on `pull_request` with `markdown` (the report),
/// through the GitHub REST API over the run's HTTP layer.
pub async fn comment(
    markdown: &str,
    registry: &str,
    pull_request: &PullRequest,
    token: &SecretString,
    report_json: &Path,
    http: &Http,
) -> Result<Commented, CommentError> {
    let number = pull_request.number;
    let failed = |error: ApiError| match error.status() {
        Some(StatusCode::FORBIDDEN) => CommentError::Forbidden { number },
        _ => CommentError::Failed {
            number,
            message: error.to_string(),
        },
    };
    let base = Url::parse(&pull_request.api_url).map_err(|e| CommentError::Failed {
        number,
        message: format!(
            "GITHUB_API_URL `{}` is not a URL: {e}",
            pull_request.api_url
        ),
    })?;
    let bearer = SecretString::from(format!("Bearer {}", token.expose_secret()));
    let github = RestApi::new("GitHub API", http.clone(), base)
        .with_authorization(header::AUTHORIZATION, bearer)
        .with_refusal_hint("the token needs `pull-requests: write`");
    // A personal or app token can say who it is; GITHUB_TOKEN cannot (403) and is the bot.
    let me = match github
        .get::<Login>(github.url("/user"), "reading the token's user")
        .await
    {
        Ok(Some(user)) => user.login,
        _ => ACTIONS_BOT.to_string(),
    };
    let marker = marker(registry);
    let repository = format!("/repos/{}/{}", pull_request.owner, pull_request.repo);
    let first = github.url(&format!(
        "{repository}/issues/{number}/comments?per_page=100&page=1"
    ));
    let comments: Vec<IssueComment> = github
        .pages(
            first,
            "listing the pull request's comments",
            whole_body,
            next_from_link,
        )
        .await
        .map_err(failed)?
        .unwrap_or_default();
    let existing = comments
        .iter()
        .find(|c| c.user.login == me && c.body.as_deref().is_some_and(|b| b.contains(&marker)))
        .map(|c| c.id);
    let body = serde_json::json!({ "body": body(markdown, registry, report_json) });
    match existing {
        Some(id) => {
            // PATCH, as the REST reference gives it.
            let url = github.url(&format!("{repository}/issues/comments/{id}"));
            let action = "updating the comment";
            let answer = github
                .call(Method::PATCH, url, Some(&body), action)
                .await
                .map_err(failed)?;
            if answer.status != StatusCode::OK {
                return Err(failed(github.unexpected(action, &answer)));
            }
            Ok(Commented::Updated(id))
        }
        None => {
            let url = github.url(&format!("{repository}/issues/{number}/comments"));
            let action = "creating the comment";
            let answer = github
                .call(Method::POST, url, Some(&body), action)
                .await
                .map_err(failed)?;
            if answer.status != StatusCode::CREATED {
                return Err(failed(github.unexpected(action, &answer)));
            }
            let id = answer.body["id"].as_u64().unwrap_or_default();
            Ok(Commented::Created(id))
        }
    }
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: Login,
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
        let markdown = crate::report::markdown::render(&summary);
        let body = body(&markdown, &summary.registry, Path::new("/tmp/r.json"));
        assert!(body.starts_with(&marker(&summary.registry)));
        assert!(body.len() <= COMMENT_LIMIT);
        assert_eq!(marker("https://r--x"), "<!-- regsweep: https://r- -x -->");
    }
}
