//! client: the GitHub Packages REST API for container packages, typed, over the one REST layer:
//! the token, GitHub's rate limits (the primary limit from `x-ratelimit-*`, the secondary 900
//! points a minute per endpoint kept locally, DELETE costing 5), pages through `Link` on the
//! API's own origin, package names with `/` sent as `%2F`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::registry::http::Http;
use crate::registry::pacing::{Limits, Pacer};
use crate::registry::rest::{next_from_link, whole_body, ApiError, RestApi};

/// Entries asked for per page (the API's maximum).
pub const PER_PAGE: usize = 100;

/// GitHub's secondary limit: points a minute per endpoint.
pub const POINTS_PER_MINUTE: u64 = 900;

/// A request's endpoint and its cost in points: reads 1, writes 5 (GitHub's secondary limit
/// counts "most" GET requests as 1 point and POST, PATCH, PUT, DELETE as 5). Every package
/// request of one method counts against one endpoint, whatever the package or version: the
/// cautious reading of "per endpoint", as snok/container-retention-policy keeps it too.
fn cost(method: &Method, url: &Url) -> (String, u64) {
    let area = if url.path().contains("/packages") {
        "packages"
    } else {
        url.path()
    };
    let points = if method == Method::GET || method == Method::HEAD {
        1
    } else {
        5
    };
    (format!("{method} {area}"), points)
}

/// GitHub's limits as regsweep keeps them.
pub fn limits() -> Limits {
    Limits {
        api: "GitHub",
        quota: "primary rate limit",
        header_prefix: "x-ratelimit-",
        window: Some((POINTS_PER_MINUTE, Duration::from_secs(60))),
        cost,
    }
}

/// Who owns the packages: an organization or a user (their paths differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// `/orgs/{org}/…`.
    Organization,
    /// `/users/{user}/…`.
    User,
}

/// A package's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The login, as GitHub spells it.
    pub login: String,
    /// Organization or user.
    pub kind: OwnerKind,
}

impl Owner {
    /// `/orgs/{org}` or `/users/{user}`.
    fn prefix(&self) -> String {
        match self.kind {
            OwnerKind::Organization => format!("/orgs/{}", self.login),
            OwnerKind::User => format!("/users/{}", self.login),
        }
    }
}

/// A package version as the API lists it: one manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    /// What DELETE and restore take.
    pub id: u64,
    /// The manifest's digest.
    pub name: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it was last updated (a tag pushed onto it).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Its tags, under `metadata.container.tags`.
    #[serde(default)]
    pub metadata: Option<VersionMetadata>,
}

impl Version {
    /// The version's tags (empty when untagged).
    pub fn tags(&self) -> Vec<String> {
        self.metadata
            .as_ref()
            .and_then(|m| m.container.as_ref())
            .map(|c| c.tags.clone())
            .unwrap_or_default()
    }
}

/// `metadata` of a version.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionMetadata {
    /// `container` for container packages.
    #[serde(default)]
    pub container: Option<ContainerMetadata>,
}

/// `metadata.container` of a version.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerMetadata {
    /// The tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
}

#[derive(Deserialize)]
struct Account {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// What a version delete achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionDeleted {
    /// 204.
    Now,
    /// 404: gone already.
    Already,
    /// 400 with GitHub's own rule (the last tagged version of a package, a public version
    /// with too many downloads): kept, with GitHub's words.
    Refused(String),
}

/// `<name>` with `/` sent as `%2F`, as the API wants package names.
pub fn encode_package(name: &str) -> String {
    name.replace('/', "%2F")
}

/// The GitHub Packages client.
#[derive(Debug)]
pub struct GhcrApi {
    rest: RestApi,
}

impl GhcrApi {
    /// A client for the API at `base` (`https://api.github.com`) with `token`.
    pub fn new(http: Http, base: Url, token: &SecretString, concurrency: usize) -> GhcrApi {
        let bearer = SecretString::from(format!("Bearer {}", token.expose_secret()));
        let rest = RestApi::new("GitHub API", http, base)
            .with_authorization(header::AUTHORIZATION, bearer)
            .with_refusal_hint(
                "GITHUB_TOKEN needs `packages: write` (read:packages and delete:packages for a \
                 personal token), and a workflow's repository needs the Admin role under the \
                 package's Manage Actions access",
            )
            .with_pacer(Arc::new(Pacer::new(limits())))
            .with_concurrency(concurrency);
        GhcrApi { rest }
    }

    /// The pacer, for the benchmark's and the log's counts.
    pub fn pacer(&self) -> Option<&Pacer> {
        self.rest.pacer()
    }

    /// The owner and whether it is an organization or a user.
    pub async fn owner(&self, login: &str) -> Result<Option<Owner>, ApiError> {
        let action = format!("reading the account `{login}`");
        let account: Option<Account> = self
            .rest
            .get(self.rest.url(&format!("/users/{login}")), &action)
            .await?;
        Ok(account.map(|a| Owner {
            kind: if a.kind.eq_ignore_ascii_case("Organization") {
                OwnerKind::Organization
            } else {
                OwnerKind::User
            },
            login: a.login,
        }))
    }

    /// Every container package of `owner`, by name.
    pub async fn packages(&self, owner: &Owner) -> Result<Vec<String>, ApiError> {
        let action = format!("listing the container packages of `{}`", owner.login);
        let first = self.rest.url(&format!(
            "{}/packages?package_type=container&per_page={PER_PAGE}&page=1",
            owner.prefix()
        ));
        let packages: Vec<Package> = self
            .rest
            .pages(first, &action, whole_body, next_from_link)
            .await?
            .unwrap_or_default();
        let mut names: Vec<String> = packages.into_iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn versions_path(owner: &Owner, package: &str) -> String {
        format!(
            "{}/packages/container/{}/versions",
            owner.prefix(),
            encode_package(package)
        )
    }

    /// Every version of `package`; `None` when the package does not exist.
    pub async fn versions(
        &self,
        owner: &Owner,
        package: &str,
    ) -> Result<Option<Vec<Version>>, ApiError> {
        let action = format!("listing the versions of package `{package}`");
        let first = self.rest.url(&format!(
            "{}?per_page={PER_PAGE}&page=1",
            Self::versions_path(owner, package)
        ));
        self.rest
            .pages(first, &action, whole_body, next_from_link)
            .await
    }

    /// Deletes version `id` of `package` (the manifest with all its tags).
    pub async fn delete(
        &self,
        owner: &Owner,
        package: &str,
        id: u64,
    ) -> Result<VersionDeleted, ApiError> {
        let action = format!("deleting version {id} of package `{package}`");
        let url = self
            .rest
            .url(&format!("{}/{id}", Self::versions_path(owner, package)));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(VersionDeleted::Now),
            // A retry answered 404: an earlier attempt was sent and its answer lost (a
            // timeout, a 5xx from GitHub's edge), and most likely deleted the version. It is
            // recorded as this run's deletion, so that `regsweep restore` puts it back.
            StatusCode::NOT_FOUND if answer.attempt > 1 => Ok(VersionDeleted::Now),
            StatusCode::NOT_FOUND => Ok(VersionDeleted::Already),
            // GitHub's own rules answer 400: "You cannot delete the last tagged version of a
            // package…", "Publicly visible package versions with more than 5000 downloads…".
            StatusCode::BAD_REQUEST => match answer.body["message"].as_str() {
                Some(message) if !message.is_empty() => {
                    Ok(VersionDeleted::Refused(message.trim().to_string()))
                }
                _ => Err(self.rest.unexpected(&action, &answer)),
            },
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }

    /// Restores deleted version `id` of `package` (GitHub keeps it 30 days).
    pub async fn restore(&self, owner: &Owner, package: &str, id: u64) -> Result<(), ApiError> {
        let action = format!("restoring version {id} of package `{package}`");
        let url = self.rest.url(&format!(
            "{}/{id}/restore",
            Self::versions_path(owner, package)
        ));
        let answer = self.rest.call(Method::POST, url, None, &action).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_cost_five_points_on_one_endpoint_per_template() {
        let one: Url = "https://api.github.com/orgs/o/packages/container/app/versions/17"
            .parse()
            .unwrap();
        let other: Url = "https://api.github.com/orgs/o/packages/container/app/versions/42"
            .parse()
            .unwrap();
        let (endpoint, points) = cost(&Method::DELETE, &one);
        assert_eq!(points, 5);
        assert_eq!(cost(&Method::DELETE, &other).0, endpoint);
        assert_eq!(endpoint, "DELETE packages");
        assert_eq!(cost(&Method::GET, &one).1, 1);
        assert_eq!(encode_package("team/app"), "team%2Fapp");
    }
}
