//! token: bearer tokens for registries that answer `401` with a `WWW-Authenticate: Bearer` challenge
//! (distribution with `auth: token`, Harbor, most hosted registries). Knows the token
//! protocol (<https://distribution.github.io/distribution/spec/auth/token/>): which scope a
//! request needs, how to ask the realm for it, how long a token lives. Sends nothing itself:
//! `client` does the requests and decides when to ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::model::RepositoryName;
use crate::registry::challenge::Challenge;

/// The scope that lists repositories (`/v2/_catalog`).
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

/// How long a token lives when the token server does not say (`expires_in` absent): the
/// token specification's default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The longest lifetime believed (a day): a token server may say anything in `expires_in`,
/// and `Instant` arithmetic must not overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// What a request does to a repository, for its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, tags, blobs, referrers.
    Pull,
    /// Delete manifests.
    Delete,
    /// Push blobs and manifests (and read them: `pull,push`), to move a tag.
    Push,
}

/// The scope `repository:<name>:<action>`: exactly what one request needs, never more.
pub fn repository_scope(repository: &RepositoryName, action: Action) -> String {
    let action = match action {
        Action::Pull => "pull",
        Action::Delete => "delete",
        Action::Push => "pull,push",
    };
    format!("repository:{repository}:{action}")
}

/// The token endpoint a registry named in its challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    /// Where to ask for tokens (`https://auth.example.com/token`, Harbor's `/service/token`).
    pub url: Url,
    /// The `service` parameter to send back (`registry.docker.io`, `harbor-registry`).
    pub service: Option<String>,
}

impl Realm {
    /// The realm of a `Bearer` challenge, or why it cannot be used.
    pub fn from_challenge(challenge: &Challenge) -> Result<Realm, String> {
        let realm = challenge
            .param("realm")
            .ok_or("its Bearer challenge names no `realm`")?;
        let url = Url::parse(realm)
            .map_err(|e| format!("its token realm `{realm}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("its token realm `{realm}` is not an http(s) URL"));
        }
        Ok(Realm {
            url,
            service: challenge.param("service").map(str::to_string),
        })
    }

    /// The token request URL for `scope` (none: a token for `/v2/` alone).
    pub fn token_url(&self, scope: Option<&str>) -> Url {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &self.service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
        }
        url
    }
}

/// A token server's answer. Docker's servers say `token`, OAuth-style ones `access_token`;
/// some send both (the same value).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    /// The bearer token. Never printed.
    pub value: SecretString,
    /// When to ask for a new one (a little before it really expires).
    pub renew_at: Instant,
}

/// Parses a token server's JSON answer received at `now`.
pub fn parse_token(body: &[u8], now: Instant) -> Result<Token, String> {
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("the token server's answer is not the expected JSON: {e}"))?;
    let value = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("the token server's answer has neither `token` nor `access_token`")?;
    let lifetime = answer
        .expires_in
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_LIFETIME);
    // Renew ahead of expiry by a tenth of the lifetime (at most 30 s): a request must not
    // reach the registry with a token that expired on the way.
    let margin = (lifetime / 10).min(Duration::from_secs(30));
    Ok(Token {
        value: SecretString::from(value),
        renew_at: now + lifetime - margin,
    })
}

/// One slot per scope; its async lock makes concurrent requests for the same scope wait for
/// one token request instead of each asking.
type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// The realm a registry uses, and the tokens obtained from it, per scope. Shared by every
/// clone of the HTTP client.
#[derive(Default)]
pub struct TokenCache {
    realm: Mutex<Option<Realm>>,
    slots: Mutex<HashMap<String, Slot>>,
}

impl TokenCache {
    /// The realm, once a challenge has named it.
    pub fn realm(&self) -> Option<Realm> {
        self.realm
            .lock()
            .expect("the realm lock is never poisoned")
            .clone()
    }

    /// Remembers the realm a challenge named.
    pub fn set_realm(&self, realm: Realm) {
        *self.realm.lock().expect("the realm lock is never poisoned") = Some(realm);
    }

    /// The slot of `scope` (`""` for none).
    pub fn slot(&self, scope: &str) -> Slot {
        self.slots
            .lock()
            .expect("the token lock is never poisoned")
            .entry(scope.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the token of `scope`, so that the next request asks for a new one.
    pub fn forget(&self, scope: &str) {
        self.slots
            .lock()
            .expect("the token lock is never poisoned")
            .remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::challenge::parse_challenges;
    use secrecy::ExposeSecret;

    #[test]
    fn scopes_are_exactly_what_a_request_needs() {
        let name: RepositoryName = "team/app".parse().unwrap();
        assert_eq!(
            repository_scope(&name, Action::Pull),
            "repository:team/app:pull"
        );
        assert_eq!(
            repository_scope(&name, Action::Delete),
            "repository:team/app:delete"
        );
    }

    #[test]
    fn token_url_carries_service_and_scope_encoded() {
        let challenge = &parse_challenges(
            r#"Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:library/app:pull""#,
        )[0];
        let realm = Realm::from_challenge(challenge).unwrap();
        assert_eq!(realm.service.as_deref(), Some("harbor-registry"));
        assert_eq!(
            realm.token_url(Some("repository:library/app:pull")).as_str(),
            "https://harbor.example.com/service/token?service=harbor-registry&scope=repository%3Alibrary%2Fapp%3Apull"
        );
        assert_eq!(
            realm.token_url(None).as_str(),
            "https://harbor.example.com/service/token?service=harbor-registry"
        );
    }

    #[test]
    fn realms_that_cannot_be_used_are_explained() {
        for (header, expected) in [
            ("Bearer service=\"x\"", "names no `realm`"),
            ("Bearer realm=\"not a url\"", "is not a URL"),
            ("Bearer realm=\"ftp://x/token\"", "not an http(s) URL"),
        ] {
            let error = Realm::from_challenge(&parse_challenges(header)[0]).unwrap_err();
            assert!(error.contains(expected), "{header}: {error}");
        }
    }

    #[test]
    fn token_answers_in_both_spellings_with_default_lifetime() {
        let now = Instant::now();
        let token = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(token.value.expose_secret(), "abc");
        assert_eq!(token.renew_at, now + Duration::from_secs(270));
        let token = parse_token(br#"{"access_token":"xyz"}"#, now).unwrap();
        assert_eq!(token.value.expose_secret(), "xyz");
        assert_eq!(token.renew_at, now + Duration::from_secs(54));
        let token = parse_token(br#"{"token":"t","expires_in":7200}"#, now).unwrap();
        assert_eq!(token.renew_at, now + Duration::from_secs(7170));
        assert!(parse_token(br#"{"expires_in":60}"#, now).is_err());
        assert!(parse_token(br#"{"token":""}"#, now).is_err());
        assert!(parse_token(b"<html>", now).is_err());
    }

    /// Issue 12, defect 3: a huge `expires_in` must not overflow `Instant` arithmetic.
    #[test]
    fn a_huge_lifetime_is_clamped_not_a_panic() {
        let now = Instant::now();
        let token = parse_token(br#"{"token":"t","expires_in":18446744073709551615}"#, now)
            .expect("a token");
        assert_eq!(token.renew_at, now + MAX_LIFETIME - Duration::from_secs(30));
    }

    #[test]
    fn forgetting_a_scope_drops_its_token_only() {
        let cache = TokenCache::default();
        let now = Instant::now();
        *cache.slot("a").try_lock().unwrap() = Some(parse_token(br#"{"token":"1"}"#, now).unwrap());
        *cache.slot("b").try_lock().unwrap() = Some(parse_token(br#"{"token":"2"}"#, now).unwrap());
        cache.forget("a");
        assert!(cache.slot("a").try_lock().unwrap().is_none());
        assert!(cache.slot("b").try_lock().unwrap().is_some());
    }
}
