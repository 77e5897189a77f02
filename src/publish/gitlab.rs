//! gitlab: one sticky merge-request note per registry in GitLab CI (`GITLAB_CI=true`, a
//! merge-request pipeline, and `REGSWEEP_GITLAB_TOKEN`: a token with `api` scope, since
//! `CI_JOB_TOKEN` cannot post notes), through the GitLab REST API (v4): found by a hidden marker
//! and by its author being the token's own user, updated in place (PUT), created once (POST).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::comment::marker;
use super::fit;
use crate::report::{markdown, Summary};

/// GitLab's limit for a note's body (characters; bytes bound them).
pub const NOTE_LIMIT: usize = 1_000_000;

/// The most note pages read (100 a page): a bound on the loop.
const MAX_PAGES: u32 = 100;

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

struct Api<'a> {
    http: reqwest::Client,
    base: &'a str,
    token: &'a SecretString,
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        match response.status() {
            status if status.is_success() => Ok(response),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(format!(
                "GitLab answered {} to {method} {path} (REGSWEEP_GITLAB_TOKEN needs the `api` \
                 scope and at least Reporter access; CI_JOB_TOKEN cannot post notes)",
                response.status()
            )),
            status => Err(format!("GitLab answered {status} to {method} {path}")),
        }
    }
}

/// Creates or updates this registry's note on `merge_request`.
pub async fn note(
    summary: &Summary,
    merge_request: &MergeRequest,
    token: &SecretString,
    whole_report: &str,
) -> Result<Noted, String> {
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?,
        base: &merge_request.api_url,
        token,
    };
    let me: User = api
        .call(Method::GET, "/user", None)
        .await?
        .json()
        .await
        .map_err(|e| format!("GET /user: {e}"))?;
    let project = merge_request.project_id.replace('/', "%2F");
    let notes_path = format!(
        "/projects/{project}/merge_requests/{}/notes",
        merge_request.iid
    );
    let marker = marker(&summary.registry);
    let mut existing = None;
    let mut page = 1;
    for _ in 0..MAX_PAGES {
        let response = api
            .call(
                Method::GET,
                &format!("{notes_path}?per_page=100&page={page}&sort=asc&order_by=created_at"),
                None,
            )
            .await?;
        let next = response
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let notes: Vec<Note> = response
            .json()
            .await
            .map_err(|e| format!("GET {notes_path}: {e}"))?;
        existing = notes
            .iter()
            .find(|n| !n.system && n.author.id == me.id && n.body.contains(&marker))
            .map(|n| n.id);
        match next {
            Some(next) if existing.is_none() && next > page => page = next,
            _ => break,
        }
    }
    let budget = NOTE_LIMIT.saturating_sub(marker.len() + 1);
    let body = serde_json::json!({
        "body": format!("{marker}\n{}", fit(&markdown::render(summary), budget, whole_report))
    });
    match existing {
        Some(id) => {
            api.call(Method::PUT, &format!("{notes_path}/{id}"), Some(&body))
                .await?;
            Ok(Noted::Updated(id))
        }
        None => {
            let created: Note = api
                .call(Method::POST, &notes_path, Some(&body))
                .await?
                .json()
                .await
                .map_err(|e| format!("POST {notes_path}: {e}"))?;
            Ok(Noted::Created(created.id))
        }
    }
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
