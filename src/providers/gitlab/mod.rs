//! gitlab: a GitLab project's container registry through the GitLab REST API (v4).

use url::Url;

use crate::secret::SecretStringEq;

/// How a GitLab project's registry is used, from the options. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSettings {
    /// `CI_API_V4_URL` (`https://gitlab.com/api/v4`).
    pub api_url: Url,
    /// `CI_PROJECT_ID`, or a project path (`group/project`).
    pub project: String,
    /// The API token and how it is sent.
    pub token: GitlabToken,
}

/// A GitLab API token and the header it goes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitlabToken {
    /// `GITLAB_TOKEN` (personal, project or group token): `PRIVATE-TOKEN`.
    Private(SecretStringEq),
    /// `CI_JOB_TOKEN`: `JOB-TOKEN`.
    Job(SecretStringEq),
}
