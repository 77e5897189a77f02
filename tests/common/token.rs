//! A token server for the tests, as the distribution registry's `auth: token` expects one
//! (<https://distribution.github.io/distribution/spec/auth/token/>): `GET /token?service=…&
//! scope=…` with optional basic auth answers a JWT (ES256, the signing certificate in `x5c`;
//! the registry trusts it through `rootcertbundle`) granting the intersection of the scopes
//! asked for and what the account may do, silently, like real token servers. Listens on
//! 127.0.0.1 only and records every request so that tests can check the scopes asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// The `service` the registry is configured with.
pub const SERVICE: &str = "regsweep-test-registry";
/// The `issuer` the registry is configured with.
pub const ISSUER: &str = "regsweep-test-issuer";

/// What an account may do in any repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// pull, push, delete, and the catalog.
    All,
    /// pull and the catalog only: asking for `delete` silently gets nothing more.
    PullOnly,
}

/// One token request as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The basic-auth user, if any.
    pub account: Option<String>,
    /// Every `scope` parameter.
    pub scopes: Vec<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// The `Authorization` header exactly as sent (for secret checks).
    pub authorization: Option<String>,
}

/// Signs tokens: an ECDSA P-256 key and its self-signed certificate.
pub struct Signer {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    /// The certificate, PEM, for the registry's `rootcertbundle`.
    pub certificate_pem: String,
}

impl Signer {
    /// A fresh key and certificate.
    pub fn new() -> Signer {
        let key_pair = rcgen::KeyPair::generate().expect("a P-256 key");
        let certificate = rcgen::CertificateParams::new(vec!["regsweep-test-token-issuer".into()])
            .expect("certificate parameters")
            .self_signed(&key_pair)
            .expect("a self-signed certificate");
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("rcgen's default key is ECDSA P-256 in PKCS#8");
        assert!(!key.public_key().as_ref().is_empty());
        Signer {
            key,
            certificate_der: certificate.der().to_vec(),
            certificate_pem: certificate.pem(),
        }
    }

    /// A JWT for `subject` granting `access` (`[{"type","name","actions"}]`), valid 5 minutes.
    pub fn mint(&self, subject: &str, access: Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.certificate_der)]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{:x}", fastrand::u64(..)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("ECDSA signing");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// The `access` claim for every action on `repository` (the test harness's own pushes).
pub fn full_access(repository: &str) -> Value {
    json!([
        {"type": "repository", "name": repository, "actions": ["pull", "push", "delete"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ])
}

/// How the server answers.
#[derive(Debug, Clone)]
pub struct TokenServerOptions {
    /// Accounts: user → (password, grant).
    pub accounts: HashMap<String, (String, Grant)>,
    /// Answer `access_token` (OAuth spelling) instead of `token`.
    pub oauth_spelling: bool,
    /// `expires_in`, or none (the client must assume 60 s).
    pub expires_in: Option<u64>,
}

impl TokenServerOptions {
    /// One account allowed everything, tokens valid five minutes: what the core scenarios
    /// run with over token auth.
    pub fn one_account() -> TokenServerOptions {
        TokenServerOptions {
            accounts: HashMap::from([(
                "ci-bot".to_string(),
                ("t0ken-Secret-5cenario".to_string(), Grant::All),
            )]),
            oauth_spelling: false,
            expires_in: Some(300),
        }
    }
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    /// The realm: `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// Every request so far.
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// The signer, shared with the test harness.
    pub signer: Arc<Signer>,
    _server: super::fake::FakeServer,
}

fn granted(scope: &str, grant: Option<Grant>) -> Option<Value> {
    // `repository:<name>:<actions>`; a name may hold `:` (a registry port), so split at the
    // first and the last colon only.
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let grant = grant?;
    let allowed: Vec<&str> = actions
        .split(',')
        .filter(|action| match (kind, grant) {
            ("registry", _) => name == "catalog" && *action == "*",
            ("repository", Grant::All) => matches!(*action, "pull" | "push" | "delete" | "*"),
            ("repository", Grant::PullOnly) => *action == "pull",
            _ => false,
        })
        .collect();
    (!allowed.is_empty()).then(|| json!({"type": kind, "name": name, "actions": allowed}))
}

impl TokenServer {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start(options: TokenServerOptions) -> TokenServer {
        let signer = Arc::new(Signer::new());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let (signer, requests) = (signer.clone(), requests.clone());
            super::fake::FakeServer::start(move |request| {
                answer(request, &options, &signer, &requests)
            })
        };
        TokenServer {
            realm: format!("{}/token", server.url),
            requests,
            signer,
            _server: server,
        }
    }

    /// The scopes asked for so far, in order, one entry per request (joined by spaces).
    pub fn scopes_asked(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.scopes.join(" "))
            .collect()
    }
}

fn answer(
    request: &super::fake::Request,
    options: &TokenServerOptions,
    signer: &Signer,
    requests: &Mutex<Vec<TokenRequest>>,
) -> super::fake::Answer {
    use super::fake::Answer;
    let json = |status: u16, body: &str| Answer {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    };
    let url = url::Url::parse(&format!("http://token{}", request.target)).unwrap();
    let scopes: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let service = url
        .query_pairs()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.to_string());
    let authorization = request.header("authorization").map(str::to_string);
    let basic = authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    requests.lock().unwrap().push(TokenRequest {
        account: basic.as_ref().map(|(u, _)| u.clone()),
        scopes: scopes.clone(),
        service: service.clone(),
        authorization: authorization.clone(),
    });
    if url.path() != "/token" || service.as_deref() != Some(SERVICE) {
        return json(404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#);
    }
    let grant = match &basic {
        None => None,
        Some((user, password)) => match options.accounts.get(user) {
            Some((expected, grant)) if expected == password => Some(*grant),
            _ => {
                return json(
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication failed"}]}"#,
                );
            }
        },
    };
    let access: Vec<Value> = scopes.iter().filter_map(|s| granted(s, grant)).collect();
    let subject = basic.map(|(u, _)| u).unwrap_or_default();
    let token = signer.mint(&subject, Value::Array(access));
    let field = if options.oauth_spelling {
        "access_token"
    } else {
        "token"
    };
    let mut body = json!({ field: token });
    if let Some(expires_in) = options.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    json(200, &body.to_string())
}
