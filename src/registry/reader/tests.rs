//! Reading through the API: pages, loops, origins, missing listings.

use super::*;

use crate::control::Control;
use crate::registry::http::{Http, TlsOptions};
use crate::registry::retry::RetryPolicy;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> RegistryClient {
    let retry = RetryPolicy {
        attempts: 2,
        base_delay: std::time::Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let http = Http::new(&TlsOptions::default(), retry, Control::default()).unwrap();
    RegistryClient::new(http, server.uri().parse().unwrap(), None)
}

#[tokio::test]
async fn catalog_follows_every_link_and_never_trusts_a_short_page() {
    let server = MockServer::start().await;
    // Page 1 is short (1 of n=1000) yet has a next link; page 2 links with an absolute
    // URL; page 3 has no link and ends the listing.
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("n", "1000"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"repositories": ["b"]}))
                .insert_header("link", r#"</v2/_catalog?last=b&n=1000&page=2>; rel="next""#),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"repositories": ["a/x", "c"]}))
                .insert_header(
                    "link",
                    format!(
                        r#"<{}/v2/_catalog?last=c&page=3>; rel="next""#,
                        server.uri()
                    ),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .and(query_param("page", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"repositories": []})))
        .mount(&server)
        .await;
    let names: Vec<String> = catalog(&client(&server))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["a/x", "b", "c"]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

/// Issue 12, defect 2: a `Link` to another origin is an error naming the host; the
/// credentials never go there.
#[tokio::test]
async fn a_next_page_on_another_host_is_refused_and_gets_no_credentials() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/_catalog"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"repositories": ["a"]}))
                .insert_header(
                    "link",
                    format!(r#"<{}/v2/_catalog?last=a>; rel="next""#, foreign.uri()),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"repositories": ["b"]})))
        .mount(&foreign)
        .await;
    let retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    let credentials = crate::registry::client::Credentials {
        username: "ci".into(),
        password: secrecy::SecretString::from("pw"),
        username_is_secret: false,
    };
    let http = Http::new(&TlsOptions::default(), retry, Control::default()).unwrap();
    let client = RegistryClient::new(http, server.uri().parse().unwrap(), Some(credentials));
    let error = catalog(&client).await.unwrap_err().to_string();
    let foreign_host = foreign.uri().trim_start_matches("http://").to_string();
    assert!(
        error.contains(&format!("`{foreign_host}`")) && error.contains("another host"),
        "{error}"
    );
    assert!(
        foreign.received_requests().await.unwrap().is_empty(),
        "a request (with credentials) went to the other host"
    );
}

#[tokio::test]
async fn a_link_loop_is_an_error_not_a_hang() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"name": "app", "tags": ["a"]}))
                .insert_header("link", r#"</v2/app/tags/list?n=1000>; rel="next""#),
        )
        .mount(&server)
        .await;
    let error = list_tags(&client(&server), &"app".parse().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("its pages do not end"), "{error}");
}

#[tokio::test]
async fn tags_null_and_missing_repositories() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/empty/tags/list"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"name": "empty", "tags": null})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/gone/tags/list"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}),
        ))
        .mount(&server)
        .await;
    let client = client(&server);
    assert_eq!(
        list_tags(&client, &"empty".parse().unwrap()).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(
        list_tags(&client, &"gone".parse().unwrap()).await.unwrap(),
        None
    );
}
