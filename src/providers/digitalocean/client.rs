//! client: the DigitalOcean API's container-registry endpoints, typed, over the one REST layer:
//! the bearer token, pacing by the `ratelimit-*` headers (the hourly quota) and the 250
//! requests a minute no header shows, pages through `links.pages.next` (`page_token` for
//! `repositoriesV2`), names with `/` sent as `%2F`.
//!
//! Paths are `/v2/registries/<name>/…`, or the older `/v2/registry/<name>/…` where the API has
//! only those; which one is decided once per registry, when it is opened, and never switched
//! by what a single repository answers.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::model::Digest;
use crate::providers::DiscoveryError;
use crate::registry::http::Http;
use crate::registry::pacing::{one_point, Limits, Pacer};
use crate::registry::rest::{ApiError, Json, RestApi};

/// Entries asked for per page (the API's maximum).
pub const PER_PAGE: usize = 200;

/// DigitalOcean's per-minute limit (the headers tell the hourly one).
pub const PER_MINUTE: u64 = 250;

/// The API's limits: the hourly quota from the headers, 250 requests a minute kept locally.
pub fn limits() -> Limits {
    Limits {
        api: "DigitalOcean",
        quota: "hourly quota",
        header_prefix: "ratelimit-",
        window: Some((PER_MINUTE, Duration::from_secs(60))),
        cost: one_point,
    }
}

/// A manifest as the DigitalOcean API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct DoManifest {
    /// Its digest.
    pub digest: String,
    /// Its tags (empty when untagged).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// When it was last updated.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A garbage collection as the API reports it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GarbageCollection {
    /// Its id.
    #[serde(default)]
    pub uuid: String,
    /// `requested`, `scanning manifests`, …, `succeeded`, `failed`, `cancelled`.
    #[serde(default)]
    pub status: String,
    /// Blobs it deleted.
    #[serde(default)]
    pub blobs_deleted: Option<u64>,
    /// Bytes it freed.
    #[serde(default)]
    pub freed_bytes: Option<u64>,
}

impl GarbageCollection {
    /// Whether it has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// `<name>` with `/` sent as `%2F`, as the API wants repository names.
pub fn encode_repository(name: &str) -> String {
    name.replace('/', "%2F")
}

/// An opened registry: its name and the path prefix its API answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The registry's name.
    pub name: String,
    /// `/v2/registries/<name>`, or `/v2/registry/<name>` on an API with the older paths only.
    prefix: String,
}

/// The DigitalOcean API client.
#[derive(Debug)]
pub struct DoApi {
    rest: RestApi,
}

/// `links.pages.next` of a listing, as given.
fn next_page(answer: &Json) -> Option<Url> {
    let next = answer.body["links"]["pages"]["next"].as_str()?;
    answer.url.join(next).ok()
}

impl DoApi {
    /// A client for the API at `base` with `token`, through `http`.
    pub fn new(http: Http, base: Url, token: &SecretString, concurrency: usize) -> DoApi {
        let bearer = SecretString::from(format!("Bearer {}", token.expose_secret()));
        let rest = RestApi::new("DigitalOcean API", http, base)
            .with_authorization(header::AUTHORIZATION, bearer)
            .with_refusal_hint(
                "check DIGITALOCEAN_ACCESS_TOKEN: it needs read and write access to the registry",
            )
            .with_pacer(Arc::new(Pacer::new(limits())))
            .with_concurrency(concurrency);
        DoApi { rest }
    }

    /// The pacer, for the benchmark's and the log's counts.
    pub fn pacer(&self) -> Option<&Pacer> {
        self.rest.pacer()
    }

    /// The registry to clean (the configured one, or the account's only one), and which
    /// paths its API answers on, decided once.
    pub async fn open(&self, configured: Option<&str>) -> Result<Registry, DiscoveryError> {
        let action = "listing the account's registries";
        if let Some(name) = configured {
            let modern = format!("/v2/registries/{name}");
            let found = self
                .rest
                .call(Method::GET, self.rest.url(&modern), None, action)
                .await?;
            match found.status {
                StatusCode::OK => {
                    return Ok(Registry {
                        name: name.to_string(),
                        prefix: modern,
                    })
                }
                StatusCode::NOT_FOUND => {}
                _ => return Err(self.rest.unexpected(action, &found).into()),
            }
            // An API with the older single-registry paths only, or no such registry.
            return match self.legacy_registry(action).await? {
                Some(legacy) if legacy == name => Ok(Registry {
                    name: legacy.clone(),
                    prefix: format!("/v2/registry/{legacy}"),
                }),
                _ => Err(DiscoveryError::Choice(format!(
                    "registry `{name}` not found (check REGSWEEP_DO_REGISTRY and the token's \
                     account)"
                ))),
            };
        }
        let listed = self
            .rest
            .call(Method::GET, self.rest.url("/v2/registries"), None, action)
            .await?;
        let (names, legacy) = match listed.status {
            // The reference's schema names the array `registry`; the API answers `registries`.
            StatusCode::OK => {
                let names: Vec<String> = listed.body["registries"]
                    .as_array()
                    .or_else(|| listed.body["registry"].as_array())
                    .map(|r| {
                        r.iter()
                            .filter_map(|r| r["name"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                (names, false)
            }
            StatusCode::NOT_FOUND => (
                self.legacy_registry(action).await?.into_iter().collect(),
                true,
            ),
            _ => return Err(self.rest.unexpected(action, &listed).into()),
        };
        match names.as_slice() {
            [one] => Ok(Registry {
                name: one.clone(),
                prefix: if legacy {
                    format!("/v2/registry/{one}")
                } else {
                    format!("/v2/registries/{one}")
                },
            }),
            [] => Err(DiscoveryError::Choice(
                "the account has no container registry".into(),
            )),
            several => Err(DiscoveryError::Choice(format!(
                "the account has several registries ({}): name one in REGSWEEP_DO_REGISTRY or \
                 REGISTRY_URL=registry.digitalocean.com/<name>",
                several.join(", ")
            ))),
        }
    }

    /// The older single-registry endpoint: the account's registry, `None` when there is none;
    /// 412 when the account has several.
    async fn legacy_registry(&self, action: &str) -> Result<Option<String>, DiscoveryError> {
        let answer = self
            .rest
            .call(Method::GET, self.rest.url("/v2/registry"), None, action)
            .await?;
        match answer.status {
            StatusCode::OK => Ok(answer.body["registry"]["name"].as_str().map(String::from)),
            StatusCode::PRECONDITION_FAILED => Err(DiscoveryError::Choice(
                "the account has several registries: name one in REGSWEEP_DO_REGISTRY or \
                 REGISTRY_URL=registry.digitalocean.com/<name>"
                    .into(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.rest.unexpected(action, &answer).into()),
        }
    }

    /// Every repository of `registry`, sorted.
    pub async fn repositories(&self, registry: &Registry) -> Result<Vec<String>, ApiError> {
        let action = format!("listing the repositories of `{}`", registry.name);
        let first = self.rest.url(&format!(
            "{}/repositoriesV2?per_page={PER_PAGE}",
            registry.prefix
        ));
        let items: Vec<Value> = self
            .rest
            .pages(first, &action, |b| b["repositories"].as_array(), next_page)
            .await?
            .ok_or_else(|| {
                self.rest
                    .invalid(&action, "the registry's repository listing is not found")
            })?;
        let mut names: Vec<String> = items
            .iter()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Every manifest of `repository`; `None` when the repository does not exist.
    pub async fn manifests(
        &self,
        registry: &Registry,
        repository: &str,
    ) -> Result<Option<Vec<DoManifest>>, ApiError> {
        let action = format!("listing the manifests of `{repository}`");
        let first = self.rest.url(&format!(
            "{}/repositories/{}/digests?per_page={PER_PAGE}&page=1",
            registry.prefix,
            encode_repository(repository)
        ));
        self.rest
            .pages(first, &action, |b| b["manifests"].as_array(), next_page)
            .await
    }

    /// Deletes a manifest: `true` when deleted now (204), `false` when already gone (404).
    pub async fn delete(
        &self,
        registry: &Registry,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, ApiError> {
        let action = format!("deleting `{digest}` from `{repository}`");
        let url = self.rest.url(&format!(
            "{}/repositories/{}/digests/{digest}",
            registry.prefix,
            encode_repository(repository)
        ));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }

    /// Deletes tag `tag` of `repository` only (`DELETE …/repositories/<repo>/tags/<tag>`).
    pub async fn delete_tag(
        &self,
        registry: &Registry,
        repository: &str,
        tag: &str,
    ) -> Result<crate::providers::TagGone, ApiError> {
        use crate::providers::TagGone;
        let action = format!("deleting tag `{tag}` of `{repository}`");
        let url = self.rest.url(&format!(
            "{}/repositories/{}/tags/{}",
            registry.prefix,
            encode_repository(repository),
            percent_encoding::utf8_percent_encode(tag, percent_encoding::NON_ALPHANUMERIC)
        ));
        let answer = self.rest.call(Method::DELETE, url, None, &action).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::ACCEPTED => Ok(TagGone::Now),
            StatusCode::NOT_FOUND => Ok(TagGone::Already),
            StatusCode::FORBIDDEN => Ok(TagGone::Refused(format!(
                "the token may not delete tags{}",
                answer.detail()
            ))),
            _ => Err(self.rest.unexpected(&action, &answer)),
        }
    }

    /// The running garbage collection, if any.
    pub async fn active_gc(
        &self,
        registry: &Registry,
    ) -> Result<Option<GarbageCollection>, ApiError> {
        let action = "reading the active garbage collection";
        let url = self
            .rest
            .url(&format!("{}/garbage-collection", registry.prefix));
        Ok(self
            .rest
            .get::<Value>(url, action)
            .await?
            .and_then(|body| serde_json::from_value(body["garbage_collection"].clone()).ok()))
    }

    /// A garbage collection by id, from the list of past ones.
    pub async fn find_gc(
        &self,
        registry: &Registry,
        uuid: &str,
    ) -> Result<Option<GarbageCollection>, ApiError> {
        let action = "listing garbage collections";
        let first = self.rest.url(&format!(
            "{}/garbage-collections?per_page=20&page=1",
            registry.prefix
        ));
        let items: Vec<GarbageCollection> = self
            .rest
            .pages(
                first,
                action,
                |b| b["garbage_collections"].as_array(),
                next_page,
            )
            .await?
            .unwrap_or_default();
        Ok(items.into_iter().find(|g| g.uuid == uuid))
    }

    /// Starts a garbage collection of type `kind`; `None` when one is already running.
    pub async fn start_gc(
        &self,
        registry: &Registry,
        kind: &str,
    ) -> Result<Option<GarbageCollection>, ApiError> {
        let action = "starting garbage collection";
        let url = self
            .rest
            .url(&format!("{}/garbage-collection", registry.prefix));
        let body = serde_json::json!({ "type": kind });
        let answer = self
            .rest
            .call(Method::POST, url, Some(&body), action)
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                Ok(serde_json::from_value(answer.body["garbage_collection"].clone()).ok())
            }
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Ok(None),
            _ => Err(self.rest.unexpected(action, &answer)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::control::Control;
    use crate::registry::{RetryPolicy, TlsOptions};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    pub(crate) fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(50),
            deadline: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn api(server: &MockServer) -> DoApi {
        let http = Http::new(&TlsOptions::default(), quick(), Control::default()).unwrap();
        DoApi::new(
            http,
            server.uri().parse().unwrap(),
            &SecretString::from("t"),
            4,
        )
    }

    #[test]
    fn repository_names_are_encoded() {
        assert_eq!(encode_repository("team/app/api"), "team%2Fapp%2Fapi");
        assert_eq!(encode_repository("app"), "app");
    }

    #[test]
    fn garbage_collection_end_states() {
        for (status, done) in [
            ("requested", false),
            ("waiting for write JWTs to expire", false),
            ("scanning manifests", false),
            ("deleting unreferenced blobs", false),
            ("cancelling", false),
            ("failed", true),
            ("succeeded", true),
            ("cancelled", true),
        ] {
            let gc = GarbageCollection {
                status: status.into(),
                ..GarbageCollection::default()
            };
            assert_eq!(gc.is_done(), done, "{status}");
        }
    }

    fn listing(digest: &Digest) -> Value {
        serde_json::json!({"manifests": [{"digest": digest, "tags": ["latest"],
            "updated_at": "2026-01-01T00:00:00Z"}], "links": {}, "meta": {"total": 1}})
    }

    /// Issue 12, defect 4: a missing repository must not switch the paths of a repository
    /// listed at the same time (the switch was process-wide).
    #[tokio::test]
    async fn one_missing_repository_does_not_hide_another() {
        let server = MockServer::start().await;
        let digest = Digest::sha256_of(b"app");
        for prefix in ["/v2/registries/r", "/v2/registry/r"] {
            Mock::given(method("GET"))
                .and(path(format!("{prefix}/repositories/gone/digests")))
                .respond_with(
                    ResponseTemplate::new(404)
                        .set_delay(Duration::from_millis(300))
                        .set_body_json(serde_json::json!({"id": "not_found"})),
                )
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/v2/registries/r/repositories/app/digests"))
            .respond_with(ResponseTemplate::new(200).set_body_json(listing(&digest)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/registries/r"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"registry": {"name": "r"}})),
            )
            .mount(&server)
            .await;
        let api = api(&server);
        let registry = api.open(Some("r")).await.unwrap();
        let (gone, app) = tokio::join!(api.manifests(&registry, "gone"), async {
            tokio::time::sleep(Duration::from_millis(350)).await;
            api.manifests(&registry, "app").await
        });
        assert!(gone.unwrap().is_none());
        assert_eq!(
            app.unwrap().map(|m: Vec<DoManifest>| m.len()),
            Some(1),
            "`app` read as absent"
        );
    }

    /// Issue 12, defect 5: retries stay within the policy's deadline and delays (a
    /// `retry-after` of an hour on a 503 is not slept).
    #[tokio::test]
    async fn retries_keep_the_deadline() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3600"))
            .mount(&server)
            .await;
        let api = api(&server);
        let registry = Registry {
            name: "r".into(),
            prefix: "/v2/registries/r".into(),
        };
        let digest = Digest::sha256_of(b"x");
        let deleted = tokio::time::timeout(
            Duration::from_secs(5),
            api.delete(&registry, "app", &digest),
        )
        .await
        .expect("the retry loop slept past the deadline");
        let error = deleted.unwrap_err();
        assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    }
}
