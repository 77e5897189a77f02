//! The registry client against scripted answers: status mapping, retries, refusals explained.

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

use crate::control::Control;
use crate::registry::http::TlsOptions;
use crate::registry::retry::RetryPolicy;
use std::time::Duration;
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

fn client(server: &MockServer, user: Option<&str>) -> RegistryClient {
    let credentials = user.map(|u| Credentials {
        username: u.into(),
        username_is_secret: false,
        password: SecretString::from("pw"),
    });
    let http = Http::new(&TlsOptions::default(), quick_retries(), Control::default()).unwrap();
    RegistryClient::new(http, server.uri().parse().unwrap(), credentials)
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
) -> (Result<Gone, RegistryError>, usize) {
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
        (Ok(Gone::Now), 1)
    ));
    assert!(matches!(
        delete_answered(&[404], None).await,
        (Ok(Gone::Already), 1)
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
        text.contains("refused to delete manifests in `team/app`: 401 Unauthorized for user `ci`"),
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
        (Ok(Gone::Now), 3)
    ));
    // A retried DELETE whose first attempt had in fact succeeded answers 404: success.
    assert!(matches!(
        delete_answered(&[502, 404], None).await,
        (Ok(Gone::Already), 2)
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
    assert!(matches!(result, Ok(Gone::Now)), "{result:?}");
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
