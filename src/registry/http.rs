//! http: the one HTTP layer every caller uses: the registry client, the providers' REST
//! clients and the GitHub and GitLab publishers. TLS (CA bundle, self-signed), timeouts,
//! retries of transient failures (backoff with jitter, `Retry-After` capped by the policy's
//! max delay, all within its deadline), a REST API's pacing, and the run's control (a stopped
//! or out-of-time run sends nothing more and waits no longer). Knows nothing of registries.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::control::{Control, Halt};
use crate::registry::pacing::Pacer;
use crate::registry::retry::{is_transient, RetryPolicy};

/// How to trust a server's certificate.
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

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `host` or `host:port` of a URL, for messages.
pub fn host_of(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

/// The text of an error and all its causes: reqwest hides the interesting part (a refused
/// connection, an unknown certificate authority) in `source()`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// A whole answer: status, headers and body, read inside the retry loop so that a connection
/// reset halfway through a body is retried like any other transient failure.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
    /// Which attempt this answer came to (1: the first). A later attempt means earlier ones
    /// were sent and may have done their work (a DELETE whose answer was lost): a 404 to the
    /// retry of a DELETE is then most likely this run's own deletion.
    pub attempt: u32,
}

impl Answer {
    /// A header's value, when present and text.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request to send, as often as it takes: everything needed to build it again.
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers may carry credentials: only the method and URL.
        write!(f, "{} {}", self.method, self.url)
    }
}

impl Request {
    /// `method url`, no headers, no body.
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// With a header (invalid values are dropped: they come from our own constants).
    pub fn header(mut self, name: impl Into<HeaderName>, value: &str) -> Request {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name.into(), value);
        }
        self
    }

    /// With a secret header (never printed, marked sensitive for HTTP/2 compression).
    pub fn secret_header(mut self, name: impl Into<HeaderName>, value: &SecretString) -> Request {
        if let Ok(mut value) = HeaderValue::from_str(value.expose_secret()) {
            value.set_sensitive(true);
            self.headers.insert(name.into(), value);
        }
        self
    }

    /// With `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &SecretString) -> Request {
        let value = SecretString::from(format!("Bearer {}", token.expose_secret()));
        self.secret_header(header::AUTHORIZATION, &value)
    }

    /// With HTTP basic auth.
    pub fn basic(self, username: &str, password: &SecretString) -> Request {
        use base64::Engine as _;
        let pair = format!("{username}:{}", password.expose_secret());
        let value = SecretString::from(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ));
        self.secret_header(header::AUTHORIZATION, &value)
    }

    /// With a body of `content_type`.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.body = Some(body);
        self.header(header::CONTENT_TYPE, content_type)
    }

    /// With a JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Request {
        self.body = Some(body.to_string().into_bytes());
        self.header(header::CONTENT_TYPE, "application/json")
    }
}

/// Why a request got no answer worth returning.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The run's control would not let it go (stopped, or the time budget is spent).
    #[error(transparent)]
    Halted(#[from] Halt),
    /// No HTTP answer at all (connection refused, TLS failure, timeout), after retries.
    #[error("{message}")]
    Unreachable {
        /// The cause, innermost detail included.
        message: String,
    },
}

/// The HTTP layer: one connection pool, the run's retry policy and control. Cheap to clone.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    control: Control,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").field("retry", &self.retry).finish()
    }
}

impl Http {
    /// A client trusting certificates as `tls` says, retrying by `retry`, controlled by
    /// `control`. Fails when the CA bundle is not valid PEM.
    pub fn new(tls: &TlsOptions, retry: RetryPolicy, control: Control) -> Result<Http, String> {
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
        let client = builder.build().map_err(|e| error_chain(&e))?;
        Ok(Http {
            client,
            retry,
            control,
        })
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The run's control.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The same client under another control (publishing after a stopped run).
    pub fn with_control(&self, control: Control) -> Http {
        Http {
            control,
            ..self.clone()
        }
    }

    async fn exchange(&self, request: &Request) -> Result<Answer, reqwest::Error> {
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Answer {
            status,
            headers,
            body,
            attempt: 1,
        })
    }

    /// Sends `request`, paced by `pacer` when the API has limits, retrying transient
    /// failures within the policy's attempts and deadline. Every attempt asks the control
    /// first and every wait is the control's. Returns the last answer as received (a
    /// status is never made up), or why there is none.
    pub async fn send(
        &self,
        request: &Request,
        pacer: Option<&Pacer>,
    ) -> Result<Answer, HttpError> {
        let started = Instant::now();
        let (method, url) = (&request.method, &request.url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.control.check()?;
            if let Some(pacer) = pacer {
                pacer.acquire(method, url, &self.control).await?;
            }
            let sent = Instant::now();
            let result = self.exchange(request).await;
            self.control.request_took(sent.elapsed());
            if let Some(pacer) = pacer {
                match &result {
                    Ok(answer) => {
                        pacer
                            .observe(method, url, answer.status, &answer.headers)
                            .await
                    }
                    Err(_) => pacer.settle(method, url).await,
                }
            }
            let retry_in = match &result {
                Ok(answer) if is_transient(answer.status, &answer.headers) => {
                    Some(self.retry.delay(attempt, &answer.headers))
                }
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
                (Some(delay), result) if attempt < self.retry.attempts && !out_of_time => {
                    let what = match &result {
                        Ok(answer) => answer.status.to_string(),
                        Err(_) => "no answer".to_string(),
                    };
                    tracing::info!(%method, %url, attempt, ?delay, "transient failure, retrying");
                    let reason = format!(
                        "a retry of {method} on {} ({what}, attempt {attempt} of {})",
                        host_of(url),
                        self.retry.attempts
                    );
                    self.control.wait(delay, &reason).await?;
                }
                (_, Ok(mut answer)) => {
                    answer.attempt = attempt;
                    return Ok(answer);
                }
                (_, Err(error)) => {
                    return Err(HttpError::Unreachable {
                        message: error_chain(&error),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            deadline: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn transient_answers_are_retried_and_the_last_returned_as_received() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "3600"))
            .mount(&server)
            .await;
        let http = Http::new(&TlsOptions::default(), quick(), Control::default()).unwrap();
        let request = Request::new(Method::GET, server.uri().parse().unwrap());
        let started = Instant::now();
        let answer = http.send(&request, None).await.unwrap();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "retry-after capped"
        );
    }

    #[tokio::test]
    async fn a_stopped_run_sends_nothing() {
        let server = MockServer::start().await;
        let control = Control::default();
        control.stop();
        let http = Http::new(&TlsOptions::default(), quick(), control).unwrap();
        let request = Request::new(Method::DELETE, server.uri().parse().unwrap());
        assert!(matches!(
            http.send(&request, None).await,
            Err(HttpError::Halted(Halt::Stopped))
        ));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[test]
    fn requests_never_print_their_credentials() {
        let request = Request::new(Method::GET, "https://r.example/v2/".parse().unwrap())
            .basic("ci", &SecretString::from("hunter2"))
            .bearer(&SecretString::from("t0ken"));
        let text = format!("{request:?}");
        assert_eq!(text, "GET https://r.example/v2/");
        assert!(request.headers[header::AUTHORIZATION].is_sensitive());
    }
}
