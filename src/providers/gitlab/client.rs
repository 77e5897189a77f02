//! client: GitLab's container registry API (v4), typed, over the one REST layer: the token in
//! `PRIVATE-TOKEN` or `JOB-TOKEN`, pacing by the `RateLimit-*` headers and `Retry-After`, pages
//! through `Link` or `X-Next-Page` on the API's own origin, the project by id or `%2F`-encoded
//! path. Never the bulk tag delete (asynchronous, once an hour, its own ordering).

use std::sync::Arc;

use reqwest::header::HeaderName;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::GitlabToken;
use crate::registry::http::Http;
use crate::registry::pacing::{one_point, Limits, Pacer};
use crate::registry::rest::{next_from_link_or_page_header, whole_body, ApiError, RestApi};

/// Entries asked for per page (the API's maximum).
pub const PER_PAGE: usize = 100;

/// GitLab's limits: what the `RateLimit-*` headers say (per minute on GitLab.com).
pub fn limits() -> Limits {
    Limits {
        api: "GitLab",
        quota: "rate limit",
        header_prefix: "ratelimit-",
        window: None,
        cost: one_point,
    }
}

/// A repository of the project's registry.
#[derive(Debug, Clone, Deserialize)]
pub struct GitlabRepository {
    /// The id the tag endpoints take.
    pub id: u64,
    /// The registry repository's name (`group/project/releases`).
    pub path: String,
}

#[derive(Deserialize)]
struct TagEntry {
    name: String,
}

/// A tag's details.
#[derive(Debug, Clone, Deserialize)]
pub struct TagDetails {
    /// The tag.
    pub name: String,
    /// The manifest's digest (`sha256:…`).
    #[serde(default)]
    pub digest: Option<String>,
    /// When the image was built (its config's `created`).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// What a tag delete achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagDeleted {
    /// 200.
    Now,
    /// 404: gone already.
    Already,
    /// 403 for a protected tag: kept, with GitLab's words.
    Protected(String),
}

/// The GitLab API client for one project.
#[derive(Debug)]
pub struct GitlabApi {
    rest: RestApi,
    /// The project as the paths take it: an id, or a path with `/` as `%2F`.
    project: String,
}

/// A project id or path as GitLab's paths take it (`group%2Fproject`).
pub fn encode_project(project: &str) -> String {
    project.replace('/', "%2F")
}

/// A tag name as a path segment.
fn encode_tag(tag: &str) -> String {
    percent_encoding::utf8_percent_encode(tag, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl GitlabApi {
    /// A client for `project` at `base` (`https://gitlab.com/api/v4`) with `token`.
    pub fn new(
        http: Http,
        base: Url,
        project: &str,
        token: &GitlabToken,
        concurrency: usize,
    ) -> GitlabApi {
        let (header, value) = match token {
            GitlabToken::Private(token) => ("private-token", token.0.clone()),
            GitlabToken::Job(token) => ("job-token", token.0.clone()),
        };
        let rest = RestApi::new("GitLab API", http, base)
            .with_authorization(HeaderName::from_static(header), value)
            .with_refusal_hint(
                "GITLAB_TOKEN needs the `api` scope and the Developer role on the project (a \
                 job token the Developer role of the pipeline's user)",
            )
            .with_pacer(Arc::new(Pacer::new(limits())))
            .with_concurrency(concurrency);
        GitlabApi {
            rest,
            project: encode_project(project),
        }
    }

    fn repositories_path(&self) -> String {
        format!("/projects/{}/registry/repositories", self.project)
    }

    /// Every repository of the project's registry; `None` when the project is unknown.
    pub async fn repositories(&self) -> Result<Option<Vec<GitlabRepository>>, ApiError> {
        let first = self.rest.url(&format!(
            "{}?per_page={PER_PAGE}&page=1",
            self.repositories_path()
        ));
        self.rest
            .pages(
                first,
                "listing the project's registry repositories",
                whole_body,
                next_from_link_or_page_header,
            )
            .await
    }

    /// Every tag name of repository `id`; `None` when it is gone.
    pub async fn tags(&self, id: u64) -> Result<Option<Vec<String>>, ApiError> {
        let first = self.rest.url(&format!(
            "{}/{id}/tags?per_page={PER_PAGE}&page=1",
            self.repositories_path()
        ));
        let tags: Option<Vec<TagEntry>> = self
            .rest
            .pages(
                first,
                &format!("listing the tags of registry repository {id}"),
                whole_body,
                next_from_link_or_page_header,
            )
            .await?;
        Ok(tags.map(|tags| tags.into_iter().map(|t| t.name).collect()))
    }

    /// A tag's details (its digest); `None` when it is gone.
    pub async fn tag(&self, id: u64, tag: &str) -> Result<Option<TagDetails>, ApiError> {
        let url = self.rest.url(&format!(
            "{}/{id}/tags/{}",
            self.repositories_path(),
            encode_tag(tag)
        ));
        self.rest
            .get(
                url,
                &format!("reading tag `{tag}` of registry repository {id}"),
            )
            .await
    }

    /// Deletes tag `tag` of repository `id` (only that tag: GitLab re-points it to a
    /// throwaway manifest it deletes).
    pub async fn delete_tag(&self, id: u64, tag: &str) -> Result<TagDeleted, ApiError> {
        let action = format!("deleting tag `{tag}` of registry repository {id}");
        let url = self.rest.url(&format!(
            "{}/{id}/tags/{}",
            self.repositories_path(),
            encode_tag(tag)
        ));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        let message = answer.body["message"].as_str().unwrap_or_default();
        match answer.status {
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => Ok(TagDeleted::Now),
            StatusCode::NOT_FOUND if message.contains("Tag") || message.is_empty() => {
                Ok(TagDeleted::Already)
            }
            // "403 Forbidden - cannot delete protected tag(s)": GitLab's own rule.
            StatusCode::FORBIDDEN if message.contains("protected") => {
                Ok(TagDeleted::Protected(message.to_string()))
            }
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_and_tags_in_paths() {
        assert_eq!(encode_project("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode_project("42"), "42");
        assert_eq!(encode_tag("v1.0+build"), "v1%2E0%2Bbuild");
    }
}
