//! client: the OCI distribution / Docker Registry v2 client: credentials, the bearer-token
//! dance (challenge, realm, scoped tokens), the manifest, tag and blob requests, and registry
//! refusals turned into errors that say what to do. Sends through the one HTTP layer; knows
//! nothing of plans or providers.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use reqwest::{header, Method, StatusCode};
use secrecy::SecretString;
use url::Url;

use crate::manifest::MANIFEST_ACCEPT;
use crate::model::{Digest, RepositoryName};
use crate::registry::challenge::parse_challenges;
use crate::registry::error::{error_detail, RegistryError};
use crate::registry::http::{is_loopback, Answer, Http, HttpError, Request};
use crate::registry::token::{parse_token, repository_scope, Action, Realm, TokenCache};

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

/// What a DELETE achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// 202: deleted now.
    Now,
    /// 404: it was already gone (another run, or a retry of ours that had succeeded).
    Already,
}

/// Client for one registry's `/v2/` API.
#[derive(Clone)]
pub struct RegistryClient {
    base: Url,
    display: String,
    http: Http,
    credentials: Option<Credentials>,
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

impl RegistryClient {
    /// A client for the registry at `base`, sending through `http`.
    pub fn new(http: Http, base: Url, credentials: Option<Credentials>) -> RegistryClient {
        let display = base.as_str().trim_end_matches('/').to_string();
        RegistryClient {
            base,
            display,
            http,
            credentials,
            tokens: Arc::default(),
            allow_insecure_http: false,
        }
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

    /// The registry's base URL.
    pub fn base(&self) -> &Url {
        &self.base
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
        self.send_body(method, url, accept, scope, None).await
    }

    /// [`RegistryClient::send`] with a body (`content type`, bytes): an upload, a manifest
    /// put. A request with a body is sent again as a whole when it is retried.
    pub async fn send_body(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        scope: Option<&str>,
        body: Option<(&str, &[u8])>,
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
                .exchange(method.clone(), url.clone(), accept, &authorization, body)
                .await?;
            if answer.status != StatusCode::UNAUTHORIZED || renewed {
                return Ok(answer);
            }
            // 401: the registry wants a (new) bearer token. Learn its realm, or renew a token
            // it no longer accepts (expired early, revoked), once.
            let Some(challenge) = answer
                .header(header::WWW_AUTHENTICATE)
                .map(parse_challenges)
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
            && !is_loopback(&url)
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
            .exchange(
                Method::GET,
                url,
                Some("application/json"),
                &authorization,
                None,
            )
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

    /// One request through the HTTP layer (which retries transient failures).
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        authorization: &Authorization<'_>,
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, RegistryError> {
        let mut request = Request::new(method, url);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        if let Some((content_type, bytes)) = body {
            request = request.body(content_type, bytes.to_vec());
        }
        request = match authorization {
            Authorization::None => request,
            Authorization::Basic(credentials) => {
                request.basic(&credentials.username, &credentials.password)
            }
            Authorization::Bearer(token) => request.bearer(token),
        };
        self.http
            .send(&request, None)
            .await
            .map_err(|error| match error {
                HttpError::Halted(halt) => RegistryError::Halted(halt),
                HttpError::Unreachable { message } => RegistryError::Unreachable {
                    registry: self.display.clone(),
                    message,
                },
            })
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
    ) -> Result<Gone, RegistryError> {
        let url = manifest_url(&self.base, repository, digest.as_str());
        let scope = repository_scope(repository, Action::Delete);
        let answer = self
            .send(Method::DELETE, url, Some(MANIFEST_ACCEPT), Some(&scope))
            .await?;
        match answer.status {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => Ok(Gone::Now),
            StatusCode::NOT_FOUND => Ok(Gone::Already),
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
mod tests;
