//! gitlab: one sticky merge-request note per registry in GitLab CI (`GITLAB_CI=true`, a
//! merge-request pipeline, and `REGSWEEP_GITLAB_TOKEN`: a token with `api` scope, since
//! `CI_JOB_TOKEN` cannot post notes), through the GitLab REST API (v4): found by a hidden marker
//! and by its author being the token's own user, updated in place (PUT), created once (POST).

use reqwest::header::HeaderName;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::comment::marker;
use super::fit;
use crate::registry::rest::{next_from_link_or_page_header, whole_body, RestApi};
use crate::registry::Http;

/// GitLab's limit for a note's body (characters; bytes bound them).
pub const NOTE_LIMIT: usize = 1_000_000;

/// A merge request to note on, from GitLab's predefined CI variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    /// `$CI_API_V4_URL` (`https://gitlab.com/api/v4`).
    pub api_url: String,
    /// `$CI_PROJECT_ID`.
    pub project_id: String,
    /// `$CI_MERGE_REQUEST_IID`.
    pub iid: u64,
}

impl MergeRequest {
    /// The merge request of a merge-request pipeline in GitLab CI; `None` elsewhere.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<MergeRequest> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if value("GITLAB_CI").as_deref() != Some("true") {
            return None;
        }
        Some(MergeRequest {
            api_url: value("CI_API_V4_URL")?.trim_end_matches('/').to_string(),
            project_id: value("CI_PROJECT_ID")?,
            iid: value("CI_MERGE_REQUEST_IID")?.trim().parse().ok()?,
        })
    }
}

/// What happened to the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noted {
    /// A new note.
    Created(u64),
    /// The earlier note, updated in place.
    Updated(u64),
}

#[derive(Deserialize)]
struct User {
    id: u64,
}

#[derive(Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    system: bool,
    author: User,
}

/// Creates or updates this registry's note on `merge_request` with `markdown` (the report),
/// through the GitLab REST API over the run's HTTP layer.
pub async fn note(
    markdown: &str,
    registry: &str,
    merge_request: &MergeRequest,
    token: &SecretString,
    whole_report: &str,
    http: &Http,
) -> Result<Noted, String> {
    let base = Url::parse(&merge_request.api_url).map_err(|e| {
        format!(
            "CI_API_V4_URL `{}` is not a URL: {e}",
            merge_request.api_url
        )
    })?;
    let api = RestApi::new("GitLab API", http.clone(), base)
        .with_authorization(HeaderName::from_static("private-token"), token.clone())
        .with_refusal_hint(
            "REGSWEEP_GITLAB_TOKEN needs the `api` scope and at least Reporter access; \
             CI_JOB_TOKEN cannot post notes",
        );
    let me: User = api
        .get(api.url("/user"), "reading the token's user")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("GET /user: not found")?;
    let project = merge_request.project_id.replace('/', "%2F");
    let notes_path = format!(
        "/projects/{project}/merge_requests/{}/notes",
        merge_request.iid
    );
    let marker = marker(registry);
    let first = api.url(&format!(
        "{notes_path}?per_page=100&page=1&sort=asc&order_by=created_at"
    ));
    let notes: Vec<Note> = api
        .pages(
            first,
            "listing the merge request's notes",
            whole_body,
            next_from_link_or_page_header,
        )
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let existing = notes
        .iter()
        .find(|n| !n.system && n.author.id == me.id && n.body.contains(&marker))
        .map(|n| n.id);
    let budget = NOTE_LIMIT.saturating_sub(marker.len() + 1);
    let body = serde_json::json!({
        "body": format!("{marker}\n{}", fit(markdown, budget, whole_report))
    });
    let (method, url, action, expected) = match existing {
        Some(id) => (
            Method::PUT,
            api.url(&format!("{notes_path}/{id}")),
            "updating the note",
            StatusCode::OK,
        ),
        None => (
            Method::POST,
            api.url(&notes_path),
            "creating the note",
            StatusCode::CREATED,
        ),
    };
    let answer = api
        .call(method, url, Some(&body), action)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != expected {
        return Err(api.unexpected(action, &answer).to_string());
    }
    Ok(match existing {
        Some(id) => Noted::Updated(id),
        None => Noted::Created(answer.body["id"].as_u64().unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_in_merge_request_pipelines() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |name: &str| map.get(name).cloned()
        };
        let full = [
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", "https://gitlab.example.com/api/v4/"),
            ("CI_PROJECT_ID", "42"),
            ("CI_MERGE_REQUEST_IID", "7"),
        ];
        assert_eq!(
            MergeRequest::from_env(env(&full)),
            Some(MergeRequest {
                api_url: "https://gitlab.example.com/api/v4".into(),
                project_id: "42".into(),
                iid: 7
            })
        );
        assert_eq!(
            MergeRequest::from_env(env(&full[..3])),
            None,
            "a branch pipeline"
        );
        assert_eq!(
            MergeRequest::from_env(env(&full[1..])),
            None,
            "not GitLab CI"
        );
    }
}
