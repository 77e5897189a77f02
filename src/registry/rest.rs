//! rest: a JSON REST API client over the one HTTP layer, for the providers' APIs (DigitalOcean,
//! GitHub Packages, GitLab, Harbor) and the publishers (GitHub, GitLab): a base URL, an
//! authorization header, the API's pacing, JSON answers, pages on the API's own origin, and
//! errors that name the API and what was asked. Typed clients are thin wrappers over it.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::control::Halt;
use crate::registry::error::error_detail;
use crate::registry::http::{Http, HttpError, Request};
use crate::registry::pacing::Pacer;
use crate::registry::paging::{self, Page, PagingError};

/// What went wrong with a REST API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 401 or 403 (not a rate limit): the credentials lack a right.
    #[error("the {api} refused {action}: {status}{detail}; {hint}")]
    Refused {
        /// The API: `DigitalOcean API`.
        api: &'static str,
        /// What was asked.
        action: String,
        /// The status.
        status: StatusCode,
        /// `: message` from the body.
        detail: String,
        /// Which credentials, which right.
        hint: &'static str,
    },
    /// Any other answer that was not expected.
    #[error("the {api} answered {status} to {action}{detail}")]
    Unexpected {
        /// The API.
        api: &'static str,
        /// What was asked.
        action: String,
        /// The status, as received.
        status: StatusCode,
        /// `: message` from the body.
        detail: String,
    },
    /// No answer at all, after retries.
    #[error("cannot reach the {api} ({action}): {message}")]
    Unreachable {
        /// The API.
        api: &'static str,
        /// What was asked.
        action: String,
        /// The cause.
        message: String,
    },
    /// An answer regsweep cannot use, or pages it cannot follow.
    #[error("the {api} gave an answer regsweep cannot use ({action}): {message}")]
    Invalid {
        /// The API.
        api: &'static str,
        /// What was asked.
        action: String,
        /// What is wrong.
        message: String,
    },
    /// The run's control stopped the request before it was sent.
    #[error(transparent)]
    Halted(#[from] Halt),
}

impl ApiError {
    /// Whether every further request would fail the same way (stop the run).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ApiError::Refused { .. })
    }

    /// The status the API answered, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Refused { status, .. } | ApiError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An answer: status, headers, the JSON body (`null` when empty or not JSON) and the URL
/// that was asked (to resolve relative links against).
#[derive(Debug)]
pub struct Json {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
    /// The URL asked.
    pub url: Url,
    /// Which attempt the answer came to (1: the first; see `http::Answer::attempt`).
    pub attempt: u32,
}

impl Json {
    /// The API's own words about an error: `: message` (`{"message": …}`, or the OCI-style
    /// `{"errors": [{"code", "message"}]}` Harbor sends), or nothing.
    pub fn detail(&self) -> String {
        let oci = error_detail(self.body.to_string().as_bytes());
        if !oci.is_empty() {
            return oci;
        }
        // GitLab's messages often just repeat the status (`403 Forbidden`): nothing to add.
        match self.body["message"].as_str().map(str::trim) {
            Some(message) if !message.is_empty() && message != self.status.to_string() => {
                format!(": {message}")
            }
            _ => String::new(),
        }
    }
}

/// One REST API: its base URL, credentials and pacing. Cheap to share by reference.
pub struct RestApi {
    name: &'static str,
    http: Http,
    base: Url,
    authorization: Option<(HeaderName, SecretString)>,
    refusal_hint: &'static str,
    pacer: Option<Arc<Pacer>>,
    /// Requests in flight at once, at most (`REGSWEEP_CONCURRENCY`).
    permits: Option<Arc<tokio::sync::Semaphore>>,
}

impl fmt::Debug for RestApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestApi")
            .field("api", &self.name)
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl RestApi {
    /// The API `name` (`DigitalOcean API`) at `base` (`https://api.digitalocean.com`, or with a
    /// path prefix: `https://gitlab.example.com/api/v4`), through `http`.
    pub fn new(name: &'static str, http: Http, base: Url) -> RestApi {
        RestApi {
            name,
            http,
            base,
            authorization: None,
            refusal_hint: "check the token and its rights",
            pacer: None,
            permits: None,
        }
    }

    /// At most `concurrency` requests to this API in flight at once, however the callers
    /// nest their own concurrency.
    pub fn with_concurrency(mut self, concurrency: usize) -> RestApi {
        self.permits = Some(Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))));
        self
    }

    /// Sends `header: value` with every request (never printed).
    pub fn with_authorization(mut self, header: HeaderName, value: SecretString) -> RestApi {
        self.authorization = Some((header, value));
        self
    }

    /// What a 401/403 tells the user to check.
    pub fn with_refusal_hint(mut self, hint: &'static str) -> RestApi {
        self.refusal_hint = hint;
        self
    }

    /// Paces every request by `pacer`.
    pub fn with_pacer(mut self, pacer: Arc<Pacer>) -> RestApi {
        self.pacer = Some(pacer);
        self
    }

    /// The API's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The pacer, for the benchmark's counts.
    pub fn pacer(&self) -> Option<&Pacer> {
        self.pacer.as_deref()
    }

    /// The HTTP layer.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// `path_and_query` (starting `/`) below the base, its path prefix kept.
    pub fn url(&self, path_and_query: &str) -> Url {
        let text = format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        );
        // Only our own paths reach here; a failure would be a bug in a caller.
        Url::parse(&text).unwrap_or_else(|_| self.base.clone())
    }

    /// One request; any status is an answer (the caller decides what it means).
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        action: &str,
    ) -> Result<Json, ApiError> {
        let mut request =
            Request::new(method, url.clone()).header(reqwest::header::ACCEPT, "application/json");
        if let Some((header, value)) = &self.authorization {
            request = request.secret_header(header.clone(), value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let _permit = match &self.permits {
            Some(permits) => permits.acquire().await.ok(),
            None => None,
        };
        let answer = self
            .http
            .send(&request, self.pacer.as_deref())
            .await
            .map_err(|error| match error {
                HttpError::Halted(halt) => ApiError::Halted(halt),
                HttpError::Unreachable { message } => ApiError::Unreachable {
                    api: self.name,
                    action: action.to_string(),
                    message,
                },
            })?;
        let body = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
        };
        Ok(Json {
            status: answer.status,
            headers: answer.headers,
            body,
            url,
            attempt: answer.attempt,
        })
    }

    /// The error for an answer that was not expected: 401/403 explained, anything else with
    /// the API's own words.
    pub fn unexpected(&self, action: &str, answer: &Json) -> ApiError {
        match answer.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Refused {
                api: self.name,
                action: action.to_string(),
                status: answer.status,
                detail: answer.detail(),
                hint: self.refusal_hint,
            },
            status => ApiError::Unexpected {
                api: self.name,
                action: action.to_string(),
                status,
                detail: answer.detail(),
            },
        }
    }

    /// A body regsweep cannot use.
    pub fn invalid(&self, action: &str, message: impl fmt::Display) -> ApiError {
        ApiError::Invalid {
            api: self.name,
            action: action.to_string(),
            message: message.to_string(),
        }
    }

    /// `GET url` expecting 200 with a JSON body of type `T`; `None` on 404.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        action: &str,
    ) -> Result<Option<T>, ApiError> {
        let answer = self.call(Method::GET, url, None, action).await?;
        match answer.status {
            StatusCode::OK => serde_json::from_value(answer.body)
                .map(Some)
                .map_err(|e| self.invalid(action, e)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.unexpected(action, &answer)),
        }
    }

    /// Every item of a listing from `first`, page after page: `items` takes a page's array
    /// out of its body, `next` says where the next page is. `None` when the first page is
    /// 404 (the listing does not exist).
    pub async fn pages<T: DeserializeOwned>(
        &self,
        first: Url,
        action: &str,
        items: fn(&Value) -> Option<&Vec<Value>>,
        next: fn(&Json) -> Option<Url>,
    ) -> Result<Option<Vec<T>>, ApiError> {
        paging::collect(first, |url, number| async move {
            let answer = self
                .call(Method::GET, url, None, action)
                .await
                .map_err(PagesError::Api)?;
            match answer.status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if number == 1 => return Ok(None),
                _ => return Err(PagesError::Api(self.unexpected(action, &answer))),
            }
            let page = items(&answer.body)
                .ok_or_else(|| self.invalid(action, "the page holds no list"))
                .and_then(|list| {
                    list.iter()
                        .map(|item| serde_json::from_value::<T>(item.clone()))
                        .collect::<Result<Vec<T>, _>>()
                        .map_err(|e| {
                            self.invalid(action, format!("an entry regsweep cannot read: {e}"))
                        })
                })
                .map_err(PagesError::Api)?;
            Ok(Some(Page {
                items: page,
                next: next(&answer),
            }))
        })
        .await
        .map_err(|error| match error {
            PagesError::Api(error) => error,
            PagesError::Paging(error) => self.invalid(action, error),
        })
    }
}

/// An API error or a paging error, while pages are followed.
enum PagesError {
    Api(ApiError),
    Paging(PagingError),
}

impl From<PagingError> for PagesError {
    fn from(error: PagingError) -> Self {
        PagesError::Paging(error)
    }
}

/// The next page from a `Link` header (GitHub, GitLab, Harbor).
pub fn next_from_link(answer: &Json) -> Option<Url> {
    paging::next_link(&answer.headers, &answer.url)
}

/// The next page from a `Link` header, else from `X-Next-Page` (GitLab's page number,
/// empty on the last page).
pub fn next_from_link_or_page_header(answer: &Json) -> Option<Url> {
    if let Some(next) = next_from_link(answer) {
        return Some(next);
    }
    match answer
        .headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some("") => None,
        Some(page) => {
            let page: u64 = page.parse().ok()?;
            let mut url = answer.url.clone();
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair("page", &page.to_string());
            Some(url)
        }
        None => None,
    }
}

/// The whole body is the page's list (GitHub, GitLab, Harbor).
pub fn whole_body(body: &Value) -> Option<&Vec<Value>> {
    body.as_array()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Control;
    use crate::registry::http::TlsOptions;
    use crate::registry::retry::RetryPolicy;
    use serde_json::json;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn api(server: &MockServer) -> RestApi {
        let http = Http::new(
            &TlsOptions::default(),
            RetryPolicy {
                attempts: 1,
                ..RetryPolicy::default()
            },
            Control::default(),
        )
        .unwrap();
        RestApi::new(
            "Test API",
            http,
            format!("{}/api/v4", server.uri()).parse().unwrap(),
        )
        .with_authorization(
            HeaderName::from_static("private-token"),
            SecretString::from("s3cret"),
        )
        .with_refusal_hint("check REGSWEEP_TEST_TOKEN")
    }

    #[tokio::test]
    async fn pages_follow_links_below_the_base_with_the_credentials() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v4/things"))
            .and(query_param("page", "2"))
            .and(header("private-token", "s3cret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([3])))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v4/things"))
            .and(header("private-token", "s3cret"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([1, 2]))
                    .insert_header("link", r#"</api/v4/things?page=2>; rel="next""#),
            )
            .mount(&server)
            .await;
        let api = api(&server);
        let all: Option<Vec<u32>> = api
            .pages(
                api.url("/things"),
                "listing things",
                whole_body,
                next_from_link,
            )
            .await
            .unwrap();
        assert_eq!(all, Some(vec![1, 2, 3]));
    }

    #[tokio::test]
    async fn refusals_name_the_api_the_action_and_the_hint() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                json!({"message": "403 Forbidden - cannot delete protected tag(s)"}),
            ))
            .mount(&server)
            .await;
        let api = api(&server);
        let error = api
            .get::<Value>(api.url("/x"), "reading x")
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            error.to_string(),
            "the Test API refused reading x: 403 Forbidden: 403 Forbidden - cannot delete \
             protected tag(s); check REGSWEEP_TEST_TOKEN"
        );
        assert!(!format!("{api:?}").contains("s3cret"));
    }
}
