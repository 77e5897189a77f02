//! client: Harbor's REST API (`/api/v2.0` on the registry's own origin), typed, over the one
//! REST layer: basic auth with the registry's account (a user, or a robot account
//! `robot$<project>+<name>`), no cookie kept (a session cookie would bring Harbor's CSRF check
//! onto every DELETE), pages of 100 through `Link` headers whose URLs are relative, repository
//! names with `/` encoded twice (`a/b` → `a%252Fb`), errors in the OCI shape
//! (`{"errors":[{"code","message"}]}`).

use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::registry::http::Http;
use crate::registry::rest::{next_from_link, whole_body, ApiError, Json, RestApi};
use crate::registry::Credentials;

/// Entries asked for per page (the API's maximum: more is a 422).
pub const PAGE_SIZE: usize = 100;

/// A repository name as Harbor's paths take it: `/` encoded twice (`a%252Fb`).
pub fn encode_repository(name: &str) -> String {
    name.replace('/', "%252F")
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// A tag of an artifact.
#[derive(Debug, Clone, Deserialize)]
pub struct ArtifactTag {
    /// The tag.
    pub name: String,
}

/// An accessory of an artifact (a signature, an SBOM, any OCI 1.1 referrer).
#[derive(Debug, Clone, Deserialize)]
pub struct Accessory {
    /// The accessory's own manifest.
    pub digest: String,
    /// `signature.cosign`, `subject.accessory`, …
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// A child an index lists.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// The child's digest.
    pub child_digest: String,
}

/// An artifact as Harbor lists it: tagged ones, untagged ones no index lists; accessories
/// inside their subject, children inside their index.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    /// The manifest's digest.
    pub digest: String,
    /// When it was pushed.
    #[serde(default)]
    pub push_time: Option<String>,
    /// Its tags (null when none).
    #[serde(default)]
    pub tags: Option<Vec<ArtifactTag>>,
    /// Its accessories (with `with_accessory=true`; null when none).
    #[serde(default)]
    pub accessories: Option<Vec<Accessory>>,
    /// The children an index lists (null when none).
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
}

/// What an artifact delete achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactDeleted {
    /// 200.
    Now,
    /// 404: gone (another run, or Harbor took it along with its parent).
    Gone,
}

/// A garbage collection as Harbor reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GcJob {
    /// Its id.
    #[serde(default)]
    pub id: u64,
    /// `Pending`, `Running`, `Success`, `Error`, `Stopped`, …
    #[serde(default)]
    pub job_status: String,
    /// A JSON string: Harbor 2.9+ adds `freed_space` (bytes) and `purged_blobs`.
    #[serde(default)]
    pub job_parameters: Option<String>,
}

impl GcJob {
    /// Whether it has ended.
    pub fn is_done(&self) -> bool {
        matches!(
            self.job_status.to_ascii_lowercase().as_str(),
            "success" | "error" | "stopped" | "skipped"
        )
    }

    /// `job_parameters`, parsed.
    fn parameters(&self) -> Value {
        self.job_parameters
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }

    /// Bytes freed, when Harbor says (2.9+).
    pub fn freed_bytes(&self) -> Option<u64> {
        self.parameters()["freed_space"].as_u64()
    }

    /// Blobs deleted, when Harbor says (2.9+).
    pub fn blobs_deleted(&self) -> Option<u64> {
        self.parameters()["purged_blobs"].as_u64()
    }
}

/// What starting a garbage collection achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcStarted {
    /// Started: its id.
    Started(u64),
    /// 409: one is running.
    Busy,
    /// 403: the account has no right to (a project robot).
    Forbidden,
}

/// The Harbor API client.
#[derive(Debug)]
pub struct HarborApi {
    rest: RestApi,
}

impl HarborApi {
    /// A client for the Harbor at `registry` (the API at `/api/v2.0` below it) with the
    /// registry's `credentials`.
    pub fn new(
        http: Http,
        registry: &Url,
        credentials: Option<&Credentials>,
        concurrency: usize,
    ) -> HarborApi {
        let mut base = registry.clone();
        base.set_path(&format!(
            "{}/api/v2.0",
            registry.path().trim_end_matches('/')
        ));
        let mut rest = RestApi::new("Harbor API", http, base)
            .with_refusal_hint(
                "REGISTRY_AUTH needs a Harbor user or robot account allowed to list and delete \
                 artifacts in the project",
            )
            .with_concurrency(concurrency);
        if let Some(credentials) = credentials {
            use base64::Engine as _;
            let pair = format!(
                "{}:{}",
                credentials.username,
                credentials.password.expose_secret()
            );
            let value = SecretString::from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ));
            rest = rest.with_authorization(header::AUTHORIZATION, value);
        }
        HarborApi { rest }
    }

    /// Every project the credentials can list, by name.
    pub async fn projects(&self) -> Result<Vec<String>, ApiError> {
        let first = self
            .rest
            .url(&format!("/projects?page=1&page_size={PAGE_SIZE}"));
        let projects: Vec<Named> = self
            .rest
            .pages(first, "listing the projects", whole_body, next_from_link)
            .await?
            .unwrap_or_default();
        let mut names: Vec<String> = projects.into_iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The repositories of `project` (`<project>/<name>`); `None` when the project is not
    /// visible (Harbor answers 403 or 404 for a project it will not show).
    pub async fn repositories(&self, project: &str) -> Result<Option<Vec<String>>, ApiError> {
        let first = self.rest.url(&format!(
            "/projects/{project}/repositories?page=1&page_size={PAGE_SIZE}"
        ));
        let action = format!("listing the repositories of project `{project}`");
        match self
            .rest
            .pages::<Named>(first, &action, whole_body, next_from_link)
            .await
        {
            Ok(listed) => Ok(listed.map(|r| r.into_iter().map(|r| r.name).collect())),
            Err(ApiError::Refused { status, .. }) if status == StatusCode::FORBIDDEN => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn artifacts_path(project: &str, repository: &str) -> String {
        let inner = repository
            .strip_prefix(&format!("{project}/"))
            .unwrap_or(repository);
        format!(
            "/projects/{project}/repositories/{}/artifacts",
            encode_repository(inner)
        )
    }

    /// The artifacts of `repository` in `project`, tags and accessories with them; `None`
    /// when the repository is gone.
    pub async fn artifacts(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<Option<Vec<Artifact>>, ApiError> {
        let first = self.rest.url(&format!(
            "{}?page=1&page_size={PAGE_SIZE}&with_tag=true&with_accessory=true",
            Self::artifacts_path(project, repository)
        ));
        self.rest
            .pages(
                first,
                &format!("listing the artifacts of `{repository}`"),
                whole_body,
                next_from_link,
            )
            .await
    }

    /// Deletes the artifact `digest` (never by tag: that deletes the whole artifact too, but
    /// says nothing of which). A 412 is an error: Harbor and the plan disagree.
    pub async fn delete(
        &self,
        project: &str,
        repository: &str,
        digest: &str,
    ) -> Result<ArtifactDeleted, ApiError> {
        let action = format!("deleting `{digest}` from `{repository}`");
        let url = self.rest.url(&format!(
            "{}/{digest}",
            Self::artifacts_path(project, repository)
        ));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        match answer.status {
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {
                Ok(ArtifactDeleted::Now)
            }
            StatusCode::NOT_FOUND => Ok(ArtifactDeleted::Gone),
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }

    /// Deletes tag `tag` of artifact `digest` only (`DELETE …/artifacts/<digest>/tags/<tag>`);
    /// the artifact stays.
    pub async fn delete_tag(
        &self,
        project: &str,
        repository: &str,
        digest: &str,
        tag: &str,
    ) -> Result<crate::providers::TagGone, ApiError> {
        use crate::providers::TagGone;
        let action = format!("deleting tag `{tag}` of `{repository}`");
        let url = self.rest.url(&format!(
            "{}/{digest}/tags/{}",
            Self::artifacts_path(project, repository),
            percent_encoding::utf8_percent_encode(tag, percent_encoding::NON_ALPHANUMERIC)
        ));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        match answer.status {
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => Ok(TagGone::Now),
            StatusCode::NOT_FOUND => Ok(TagGone::Already),
            // An immutable tag (a tag immutability rule) or an account without the right.
            StatusCode::FORBIDDEN | StatusCode::PRECONDITION_FAILED => Ok(TagGone::Refused(
                format!("Harbor refused{}", answer.detail()),
            )),
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }

    /// Starts a garbage collection (`delete_untagged` only when the user opted in).
    pub async fn start_gc(&self, delete_untagged: bool) -> Result<GcStarted, ApiError> {
        let action = "starting garbage collection";
        let body = serde_json::json!({
            "schedule": {"type": "Manual"},
            "parameters": {"delete_untagged": delete_untagged, "dry_run": false, "workers": 1}
        });
        let url = self.rest.url("/system/gc/schedule");
        let answer = self
            .rest
            .call(Method::POST, url, Some(&body), action)
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => location_id(&answer)
                .map(GcStarted::Started)
                .ok_or_else(|| self.rest.invalid(action, "no `Location` with the job's id")),
            StatusCode::CONFLICT => Ok(GcStarted::Busy),
            StatusCode::FORBIDDEN => Ok(GcStarted::Forbidden),
            _ => Err(self.rest.unexpected(action, &answer)),
        }
    }

    /// A garbage collection by id.
    pub async fn gc(&self, id: u64) -> Result<Option<GcJob>, ApiError> {
        self.rest
            .get(
                self.rest.url(&format!("/system/gc/{id}")),
                "reading the garbage collection",
            )
            .await
    }
}

/// The id at the end of a `Location` header (`/api/v2.0/system/gc/12`).
fn location_id(answer: &Json) -> Option<u64> {
    answer
        .headers
        .get(header::LOCATION)?
        .to_str()
        .ok()?
        .trim_end_matches('/')
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_jobs() {
        assert_eq!(encode_repository("team/app"), "team%252Fapp");
        assert_eq!(
            HarborApi::artifacts_path("library", "library/team/app"),
            "/projects/library/repositories/team%252Fapp/artifacts"
        );
        let job = GcJob {
            id: 3,
            job_status: "Success".into(),
            job_parameters: Some(
                r#"{"delete_untagged":false,"freed_space":1234,"purged_blobs":3}"#.into(),
            ),
        };
        assert!(job.is_done());
        assert_eq!(job.freed_bytes(), Some(1234));
        assert_eq!(job.blobs_deleted(), Some(3));
    }
}
