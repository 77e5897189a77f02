//! http: the one client that talks to a registry's HTTP API: TLS, credentials, retries, and
//! registry refusals turned into errors that say what to do. Knows nothing of plans.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{header, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::bearer::{parse_token, repository_scope, Action, Realm, TokenCache};
use crate::manifest::MANIFEST_ACCEPT;
use crate::model::{Digest, RepositoryName};

/// A user name and password for HTTP basic auth. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The account.
    pub username: String,
    /// The password or token.
    pub password: SecretString,
    /// The user name is itself a secret (DigitalOcean's registry takes the API token as user
    /// name and password): messages and `Debug` never show it.
    pub username_is_secret: bool,
}

impl Credentials {
    /// The account as messages may show it.
    pub fn account(&self) -> &str {
        if self.username_is_secret {
            "(the API token)"
        } else {
            &self.username
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.account())
            .field("password", &"***")
            .finish()
    }
}

/// How to trust the registry's certificate.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// `SELF_SIGNED_CERT`: accept any certificate (no verification at all).
    pub accept_invalid_certificates: bool,
    /// `REGSWEEP_CA_CERT`: PEM certificates to trust in addition to the built-in roots.
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "accept_invalid_certificates",
                &self.accept_invalid_certificates,
            )
            .field(
                "extra_roots_pem",
                &self.extra_roots_pem.as_ref().map(|p| p.len()),
            )
            .finish()
    }
}

/// How often and how patiently to retry transient failures (connection errors, resets,
/// timeouts, 5xx, 429). Configuration, not a test switch: tests pass short delays.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time, with jitter.
    pub base_delay: Duration,
    /// Upper bound for any one delay, `Retry-After` included.
    pub max_delay: Duration,
    /// Upper bound for one request with all its retries.
    pub deadline: Duration,
    /// Upper bound for one attempt (connect, send, read the answer).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first): exponential, capped, with
    /// "equal jitter" (between half and all of it) so that many clients do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        exponential.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Whether an answer is worth retrying: 429, and 5xx but those that say "never" (501, 505).
pub fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// A `Retry-After` value: delay-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        date.with_timezone(&chrono::Utc)
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP answer at all (connection refused, TLS failure, timeout).
    #[error("cannot reach registry `{registry}`: {message}")]
    Unreachable {
        /// The registry's URL, without credentials.
        registry: String,
        /// The cause, innermost detail included.
        message: String,
    },
    /// 401 or 403.
    #[error("registry `{registry}` refused to {action}: {status}{account}; {hint}")]
    Unauthorized {
        /// The registry's URL.
        registry: String,
        /// What was refused: `delete manifests in \`app\``.
        action: String,
        /// `401 Unauthorized` or `403 Forbidden`.
        status: StatusCode,
        /// ` for user \`ci\`` when credentials were sent.
        account: String,
        /// What to do about it.
        hint: String,
    },
    /// The registry asks for bearer tokens from a realm that cannot be used.
    #[error("cannot authenticate to registry `{registry}`: {message}")]
    TokenRealm {
        /// The registry's URL.
        registry: String,
        /// What is wrong with its token realm or the token server's answer.
        message: String,
    },
    /// 405 on DELETE: the registry has deletion turned off.
    #[error(
        "deletion is disabled on this registry (set REGISTRY_STORAGE_DELETE_ENABLED=true): \
         `{registry}` answered 405 to DELETE"
    )]
    DeletionDisabled {
        /// The registry's URL.
        registry: String,
    },
    /// Any other unexpected answer.
    #[error("registry `{registry}` answered {status} to {action}{detail}")]
    Unexpected {
        /// The registry's URL.
        registry: String,
        /// What was asked.
        action: String,
        /// The status.
        status: StatusCode,
        /// `: CODE message` from the OCI error body, when there is one.
        detail: String,
    },
}

impl RegistryError {
    /// Whether this error will be the same for every further request (stop the run).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. }
                | RegistryError::DeletionDisabled { .. }
                | RegistryError::TokenRealm { .. }
        )
    }
}

/// What a DELETE achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// 202: deleted now.
    Now,
    /// 404: it was already gone (another run, or a retry of ours that had succeeded).
    AlreadyGone,
}

/// Client for one registry's `/v2/` API.
#[derive(Clone)]
pub struct RegistryClient {
    base: Url,
    display: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
    /// The bearer realm and tokens, once the registry asked for them; shared by clones.
    tokens: Arc<TokenCache>,
    allow_insecure_http: bool,
}

/// What a request carries to prove who sends it.
enum Authorization<'a> {
    /// Nothing (anonymous).
    None,
    /// HTTP basic auth.
    Basic(&'a Credentials),
    /// A bearer token from the registry's token server.
    Bearer(SecretString),
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.display)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// The URL of `path` (starting `/v2/`) below `base`, keeping a path prefix of the base
/// (a registry behind `https://host/proxy/`).
pub fn url_below(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url
}

/// The URL of `/v2/<name>/manifests/<reference>` below `base` (which may carry a path prefix).
pub fn manifest_url(base: &Url, repository: &RepositoryName, reference: &str) -> Url {
    url_below(base, &format!("/v2/{repository}/manifests/{reference}"))
}

/// The URL of the API root `/v2/`.
pub fn api_root_url(base: &Url) -> Url {
    url_below(base, "/v2/")
}

/// The text of an error and all its causes: reqwest hides the interesting part (a refused
/// connection, an unknown certificate authority) in `source()`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Whether a transport error is a TLS certificate problem (untrusted, expired, wrong name):
/// permanent, so not worth retrying. rustls reports these as `invalid peer certificate`.
fn is_certificate_error(error: &reqwest::Error) -> bool {
    error_chain(error)
        .to_ascii_lowercase()
        .contains("certificate")
}

#[derive(Deserialize)]
struct OciErrors {
    #[serde(default)]
    errors: Vec<OciError>,
}

#[derive(Deserialize)]
struct OciError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `: CODE message` from an OCI error body, or nothing.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<OciErrors>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let text: Vec<String> = parsed
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            format!(": {}", text.join("; "))
        }
        _ => String::new(),
    }
}

/// A whole answer: status, headers and body, read inside the retry loop so that a connection
/// reset halfway through a body is retried like any other transient failure.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: header::HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

impl Answer {
    /// A header's value, when present and text.
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl RegistryClient {
    /// A client for the registry at `base`. Fails when the CA bundle is not valid PEM.
    pub fn new(
        base: Url,
        credentials: Option<Credentials>,
        tls: &TlsOptions,
        retry: RetryPolicy,
    ) -> Result<RegistryClient, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("regsweep/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(retry.attempt_timeout))
            .timeout(retry.attempt_timeout)
            .redirect(reqwest::redirect::Policy::limited(5));
        if tls.accept_invalid_certificates {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &tls.extra_roots_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
            if certificates.is_empty() {
                return Err("no PEM certificate found in the file".into());
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| error_chain(&e))?;
        let display = base.as_str().trim_end_matches('/').to_string();
        Ok(RegistryClient {
            base,
            display,
            http,
            credentials,
            retry,
            tokens: Arc::default(),
            allow_insecure_http: false,
        })
    }

    /// Allows sending credentials to a plain-http token server that is not loopback
    /// (`REGSWEEP_ALLOW_INSECURE_HTTP`); the registry URL itself is checked by `settings`.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The registry's URL as shown to users (never with credentials).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Sends a request authorised for `scope` (`repository:<name>:pull`…; `None` for
    /// `/v2/`), retrying transient failures within the policy's bounds. On a registry that
    /// asks for bearer tokens, the token for the scope is obtained first (cached until it
    /// expires) and renewed once when the registry answers 401. Retrying a DELETE is safe: if
    /// an earlier attempt did delete, the retry answers 404, which callers treat as success.
    async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        let mut renewed = false;
        loop {
            let authorization = match self.tokens.realm() {
                Some(realm) => Authorization::Bearer(self.token(&realm, scope).await?),
                None => match &self.credentials {
                    Some(credentials) => Authorization::Basic(credentials),
                    None => Authorization::None,
                },
            };
            let answer = self
                .exchange(method.clone(), url.clone(), accept, &authorization)
                .await?;
            if answer.status != StatusCode::UNAUTHORIZED || renewed {
                return Ok(answer);
            }
            // 401: the registry wants a (new) bearer token. Learn its realm, or renew a token
            // it no longer accepts (expired early, revoked), once.
            let Some(challenge) = answer
                .header(header::WWW_AUTHENTICATE)
                .map(crate::auth::parse_challenges)
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.scheme == "bearer")
            else {
                return Ok(answer);
            };
            let realm =
                Realm::from_challenge(&challenge).map_err(|message| RegistryError::TokenRealm {
                    registry: self.display.clone(),
                    message,
                })?;
            self.tokens.set_realm(realm);
            self.tokens.forget(scope.unwrap_or_default());
            renewed = true;
        }
    }

    /// The cached token for `scope`, or a new one from the realm.
    async fn token(
        &self,
        realm: &Realm,
        scope: Option<&str>,
    ) -> Result<SecretString, RegistryError> {
        let slot = self.tokens.slot(scope.unwrap_or_default());
        let mut token = slot.lock().await;
        if let Some(current) = token.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(current.value.clone());
        }
        let url = realm.token_url(scope);
        if self.credentials.is_some()
            && url.scheme() == "http"
            && !crate::settings::is_loopback(&url)
            && !self.allow_insecure_http
        {
            return Err(RegistryError::TokenRealm {
                registry: self.display.clone(),
                message: format!(
                    "its token server `{}` is plain http: the credentials would be sent \
                     unencrypted; set REGSWEEP_ALLOW_INSECURE_HTTP=true if the network is trusted",
                    realm.url.host_str().unwrap_or_default()
                ),
            });
        }
        let authorization = match &self.credentials {
            Some(credentials) => Authorization::Basic(credentials),
            None => Authorization::None,
        };
        let scope_text = scope.unwrap_or("(none)");
        let answer = self
            .exchange(Method::GET, url, Some("application/json"), &authorization)
            .await?;
        let realm_text = realm.url.as_str();
        match answer.status {
            StatusCode::OK => {
                let fresh = parse_token(&answer.body, Instant::now()).map_err(|message| {
                    RegistryError::TokenRealm {
                        registry: self.display.clone(),
                        message: format!("token server `{realm_text}`: {message}"),
                    }
                })?;
                tracing::debug!(scope = scope_text, realm = realm_text, "new bearer token");
                let value = fresh.value.clone();
                *token = Some(fresh);
                Ok(value)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let (account, hint) = match &self.credentials {
                    Some(c) => (
                        format!(" for user `{}`", c.account()),
                        "check the user and password (or robot-account secret) in REGISTRY_AUTH"
                            .to_string(),
                    ),
                    None => (
                        String::new(),
                        "set REGISTRY_AUTH to `user:password` of an account allowed to do this"
                            .to_string(),
                    ),
                };
                Err(RegistryError::Unauthorized {
                    registry: realm_text.to_string(),
                    action: format!("issue a token for scope `{scope_text}`"),
                    status: answer.status,
                    account,
                    hint,
                })
            }
            status => Err(RegistryError::Unexpected {
                registry: realm_text.to_string(),
                action: format!("the token request for scope `{scope_text}`"),
                status,
                detail: error_detail(&answer.body),
            }),
        }
    }

    /// One request with retries of transient failures, bounded in attempts and time.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        authorization: &Authorization<'_>,
    ) -> Result<Answer, RegistryError> {
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            request = match authorization {
                Authorization::None => request,
                Authorization::Basic(credentials) => request.basic_auth(
                    &credentials.username,
                    Some(credentials.password.expose_secret()),
                ),
                Authorization::Bearer(token) => request.bearer_auth(token.expose_secret()),
            };
            let result = async {
                let response = request.send().await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    headers,
                    body,
                })
            }
            .await;
            let retry_in = match &result {
                Ok(answer) if is_transient(answer.status) => Some(
                    answer
                        .header(header::RETRY_AFTER)
                        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
                        .unwrap_or_else(|| self.retry.backoff(attempt))
                        .min(self.retry.max_delay),
                ),
                Ok(_) => None,
                // Anything that went wrong on the wire (refused, reset, timed out, cut body)
                // is retried; a request we could not build, or a certificate we do not
                // trust, would fail the same way again.
                Err(error) if !error.is_builder() && !is_certificate_error(error) => {
                    Some(self.retry.backoff(attempt))
                }
                Err(_) => None,
            };
            match &result {
                Ok(answer) => {
                    tracing::debug!(%method, %url, status = answer.status.as_u16(), attempt, "answer")
                }
                Err(error) => {
                    tracing::debug!(%method, %url, attempt, error = %error_chain(error), "no answer")
                }
            }
            let out_of_time =
                started.elapsed() + retry_in.unwrap_or_default() > self.retry.deadline;
            match (retry_in, result) {
                (Some(delay), _) if attempt < self.retry.attempts && !out_of_time => {
                    tracing::info!(%method, %url, attempt, ?delay, "transient failure, retrying");
                    tokio::time::sleep(delay).await;
                }
                (_, Ok(answer)) => return Ok(answer),
                (_, Err(error)) => {
                    return Err(RegistryError::Unreachable {
                        registry: self.display.clone(),
                        message: error_chain(&error),
                    })
                }
            }
        }
    }

    /// A 401/403 from the registry, explained: who was refused what, and what to do. With
    /// bearer tokens, the token server issued a token without the scope (servers grant
    /// silently only what the account may do), so the scope and account are named.
    fn refused(&self, action: String, status: StatusCode, scope: Option<&str>) -> RegistryError {
        let account = match &self.credentials {
            Some(c) => format!(" for user `{}`", c.account()),
            None => String::new(),
        };
        let hint = match (self.tokens.realm(), &self.credentials, status) {
            (Some(realm), credentials, _) => format!(
                "the token server `{}` gave {} a token without scope `{}`: grant the account \
                 that permission{}",
                realm.url,
                credentials
                    .as_ref()
                    .map(|c| format!("account `{}`", c.account()))
                    .unwrap_or_else(|| "anonymous access".into()),
                scope.unwrap_or("(none)"),
                if credentials.is_none() {
                    ", or set REGISTRY_AUTH to `user:password` of an account that has it"
                } else {
                    ""
                },
            ),
            (None, None, _) => {
                "set REGISTRY_AUTH to `user:password` of an account allowed to do this".to_string()
            }
            (None, Some(_), StatusCode::UNAUTHORIZED) => {
                "check the user and password in REGISTRY_AUTH".to_string()
            }
            (None, Some(_), _) => {
                "the account is known but lacks permission: grant it delete rights".to_string()
            }
        };
        RegistryError::Unauthorized {
            registry: self.display.clone(),
            action,
            status,
            account,
            hint,
        }
    }

    /// `GET /v2/`: checks that the registry answers and accepts the credentials.
    pub async fn check(&self) -> Result<(), RegistryError> {
        let answer = self
            .send(Method::GET, api_root_url(&self.base), None, None)
            .await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(self.refused("access its API".into(), answer.status, None))
            }
            status => Err(RegistryError::Unexpected {
                registry: self.display.clone(),
                action: "GET /v2/ (is this a registry?)".into(),
                status,
                detail: error_detail(&answer.body),
            }),
        }
    }

    fn unexpected(&self, action: String, answer: &Answer, scope: Option<&str>) -> RegistryError {
        match answer.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.refused(action, answer.status, scope)
            }
            status => RegistryError::Unexpected {
                registry: self.display.clone(),
                action,
                status,
                detail: error_detail(&answer.body),
            },
        }
    }

    /// A URL below the base: `path` starts with `/v2/`; a path prefix of the base is kept.
    pub fn url(&self, path: &str) -> Url {
        url_below(&self.base, path)
    }

    /// `GET url` authorised for `scope`, with retries; for the API readers of `discover`.
    pub async fn get(
        &self,
        url: Url,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<Answer, RegistryError> {
        self.send(Method::GET, url, accept, Some(scope)).await
    }

    /// `HEAD url` authorised for `scope`, with retries.
    pub async fn head(
        &self,
        url: Url,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<Answer, RegistryError> {
        self.send(Method::HEAD, url, accept, Some(scope)).await
    }

    /// The error for an answer a reader did not expect: 401/403 explained, anything else
    /// with the registry's own error text.
    pub fn unexpected_answer(&self, action: String, answer: &Answer, scope: &str) -> RegistryError {
        self.unexpected(action, answer, Some(scope))
    }

    /// `GET /v2/<name>/manifests/<reference>` with every manifest type accepted. `None` on 404.
    pub async fn get_manifest(
        &self,
        repository: &RepositoryName,
        reference: &str,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        let url = manifest_url(&self.base, repository, reference);
        let scope = repository_scope(repository, Action::Pull);
        let answer = self
            .send(Method::GET, url, Some(MANIFEST_ACCEPT), Some(&scope))
            .await?;
        match answer.status {
            StatusCode::OK => Ok(Some(answer.body)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.unexpected(
                format!("read manifest `{reference}` of `{repository}`"),
                &answer,
                Some(&scope),
            )),
        }
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the blob can be pulled.
    pub async fn blob_exists(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let scope = repository_scope(repository, Action::Pull);
        let answer = self.send(Method::HEAD, url, None, Some(&scope)).await?;
        match answer.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.unexpected(
                format!("check blob `{digest}` of `{repository}`"),
                &answer,
                Some(&scope),
            )),
        }
    }

    /// `DELETE /v2/<name>/manifests/<digest>`. 202 is success, 404 means already gone.
    pub async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Deleted, RegistryError> {
        let url = manifest_url(&self.base, repository, digest.as_str());
        let scope = repository_scope(repository, Action::Delete);
        let answer = self
            .send(Method::DELETE, url, Some(MANIFEST_ACCEPT), Some(&scope))
            .await?;
        match answer.status {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => Ok(Deleted::Now),
            StatusCode::NOT_FOUND => Ok(Deleted::AlreadyGone),
            StatusCode::METHOD_NOT_ALLOWED => Err(RegistryError::DeletionDisabled {
                registry: self.display.clone(),
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.refused(
                format!("delete manifests in `{repository}`"),
                answer.status,
                Some(&scope),
            )),
            status => Err(RegistryError::Unexpected {
                registry: self.display.clone(),
                action: format!("DELETE of `{digest}` in `{repository}`"),
                status,
                detail: error_detail(&answer.body),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_path_prefix() {
        let repository: RepositoryName = "team/app".parse().unwrap();
        let cases = [
            (
                "http://r:5000",
                "http://r:5000/v2/team/app/manifests/latest",
            ),
            (
                "http://r:5000/",
                "http://r:5000/v2/team/app/manifests/latest",
            ),
            (
                "https://r/proxy/",
                "https://r/proxy/v2/team/app/manifests/latest",
            ),
            (
                "https://r/proxy",
                "https://r/proxy/v2/team/app/manifests/latest",
            ),
        ];
        for (base, expected) in cases {
            let base: Url = base.parse().unwrap();
            assert_eq!(
                manifest_url(&base, &repository, "latest").as_str(),
                expected
            );
        }
        assert_eq!(
            api_root_url(&"https://r/proxy/".parse().unwrap()).as_str(),
            "https://r/proxy/v2/"
        );
    }

    #[test]
    fn oci_error_bodies() {
        let body =
            br#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#;
        assert_eq!(
            error_detail(body),
            ": UNSUPPORTED The operation is unsupported."
        );
        assert_eq!(error_detail(b"<html>"), "");
    }

    use wiremock::matchers::{header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn quick_retries() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            deadline: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "past"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(
                first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
                "{first:?}"
            );
            let third = policy.backoff(3);
            assert!(
                third >= Duration::from_millis(200) && third <= Duration::from_millis(400),
                "{third:?}"
            );
            assert!(policy.backoff(30) <= Duration::from_secs(1));
        }
        assert!(
            is_transient(StatusCode::BAD_GATEWAY) && is_transient(StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(!is_transient(StatusCode::NOT_IMPLEMENTED) && !is_transient(StatusCode::NOT_FOUND));
    }

    fn client(server: &MockServer, user: Option<&str>) -> RegistryClient {
        let credentials = user.map(|u| Credentials {
            username: u.into(),
            username_is_secret: false,
            password: SecretString::from("pw"),
        });
        RegistryClient::new(
            server.uri().parse().unwrap(),
            credentials,
            &TlsOptions::default(),
            quick_retries(),
        )
        .unwrap()
    }

    fn digest() -> Digest {
        Digest::sha256_of(b"m")
    }

    fn delete_path() -> String {
        format!("/v2/team/app/manifests/{}", digest())
    }

    async fn delete_answered(
        statuses: &[u16],
        user: Option<&str>,
    ) -> (Result<Deleted, RegistryError>, usize) {
        let server = MockServer::start().await;
        for (i, status) in statuses.iter().enumerate() {
            let mock = Mock::given(method("DELETE"))
                .and(path(delete_path()))
                .respond_with(ResponseTemplate::new(*status).insert_header("retry-after", "0"));
            if i + 1 < statuses.len() {
                mock.up_to_n_times(1).mount(&server).await;
            } else {
                mock.mount(&server).await;
            }
        }
        let result = client(&server, user)
            .delete_manifest(&"team/app".parse().unwrap(), &digest())
            .await;
        let requests = server.received_requests().await.unwrap().len();
        (result, requests)
    }

    #[tokio::test]
    async fn delete_status_mapping() {
        assert!(matches!(
            delete_answered(&[202], None).await,
            (Ok(Deleted::Now), 1)
        ));
        assert!(matches!(
            delete_answered(&[404], None).await,
            (Ok(Deleted::AlreadyGone), 1)
        ));
        let (result, _) = delete_answered(&[405], None).await;
        let text = result.unwrap_err().to_string();
        assert!(
            text.starts_with(
                "deletion is disabled on this registry (set REGISTRY_STORAGE_DELETE_ENABLED=true)"
            ),
            "{text}"
        );
        let (result, _) = delete_answered(&[401], Some("ci")).await;
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains(
                "refused to delete manifests in `team/app`: 401 Unauthorized for user `ci`"
            ),
            "{text}"
        );
        let (result, _) = delete_answered(&[403], Some("ci")).await;
        let error = result.unwrap_err();
        assert!(error.is_fatal());
        assert!(error.to_string().contains("lacks permission"), "{error}");
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_bounded() {
        // 503 then 429 (Retry-After: 0) then success: three requests, success.
        assert!(matches!(
            delete_answered(&[503, 429, 202], None).await,
            (Ok(Deleted::Now), 3)
        ));
        // A retried DELETE whose first attempt had in fact succeeded answers 404: success.
        assert!(matches!(
            delete_answered(&[502, 404], None).await,
            (Ok(Deleted::AlreadyGone), 2)
        ));
        // Always 500: gives up after the policy's attempts with the registry's answer.
        let (result, requests) = delete_answered(&[500], None).await;
        assert_eq!(requests, 3);
        let error = result.unwrap_err();
        assert!(!error.is_fatal());
        assert!(
            error.to_string().contains("500 Internal Server Error"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn delete_sends_every_manifest_type_and_credentials() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(delete_path()))
            .and(header_exists("authorization"))
            .respond_with(ResponseTemplate::new(202))
            .mount(&server)
            .await;
        let result = client(&server, Some("ci"))
            .delete_manifest(&"team/app".parse().unwrap(), &digest())
            .await;
        assert!(matches!(result, Ok(Deleted::Now)), "{result:?}");
        let requests = server.received_requests().await.unwrap();
        let accept = requests[0].headers.get("accept").unwrap().to_str().unwrap();
        assert_eq!(accept, MANIFEST_ACCEPT);
        for media_type in [
            crate::manifest::DOCKER_MANIFEST,
            crate::manifest::DOCKER_MANIFEST_LIST,
            crate::manifest::OCI_MANIFEST,
            crate::manifest::OCI_INDEX,
        ] {
            assert!(MANIFEST_ACCEPT.contains(media_type));
        }
    }

    #[tokio::test]
    async fn check_explains_refusals() {
        // A bearer registry whose token server refuses anonymous access.
        let server = MockServer::start().await;
        let realm = format!("{}/token", server.uri());
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(r#"Bearer realm="{realm}",service="registry""#),
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let error = client(&server, None).check().await.unwrap_err().to_string();
        assert!(error.contains("set REGISTRY_AUTH"), "{error}");
        assert!(
            error.contains(&format!("`{realm}` refused to issue a token")),
            "{error}"
        );

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(ResponseTemplate::new(404).set_body_string("not here"))
            .mount(&server)
            .await;
        let error = client(&server, None).check().await.unwrap_err().to_string();
        assert!(error.contains("is this a registry?"), "{error}");
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = Credentials {
            username: "ci".into(),
            username_is_secret: false,
            password: SecretString::from("hunter2"),
        };
        let text = format!("{credentials:?}");
        assert!(text.contains("ci") && !text.contains("hunter2"), "{text}");
    }
}
