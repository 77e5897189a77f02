//! A fake GitHub REST API (wiremock) for the pull-request comment, from the REST reference:
//! `GET /user`, `GET /repos/{owner}/{repo}/issues/{number}/comments` (paged with `Link`),
//! `POST …/issues/{number}/comments` (201), `PATCH /repos/{owner}/{repo}/issues/comments/{id}`.
//! The repository is `o/r`, the pull request #7.

use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The account GITHUB_TOKEN comments as.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// A user as the REST API returns it.
pub fn user(login: &str, id: u64) -> Value {
    let base = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": "https://avatars.githubusercontent.com/u/1", "gravatar_id": "",
        "url": base, "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{base}/followers"),
        "following_url": format!("{base}/following{{/other_user}}"),
        "gists_url": format!("{base}/gists{{/gist_id}}"),
        "starred_url": format!("{base}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{base}/subscriptions"),
        "organizations_url": format!("{base}/orgs"), "repos_url": format!("{base}/repos"),
        "events_url": format!("{base}/events{{/privacy}}"),
        "received_events_url": format!("{base}/received_events"),
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" }, "site_admin": false
    })
}

/// An issue comment as the REST API returns it.
pub fn comment(id: u64, login: &str, body: &str) -> Value {
    json!({
        "id": id, "node_id": format!("IC_{id}"),
        "url": format!("https://api.github.com/repos/o/r/issues/comments/{id}"),
        "html_url": format!("https://github.com/o/r/pull/7#issuecomment-{id}"),
        "issue_url": "https://api.github.com/repos/o/r/issues/7",
        "body": body, "user": user(login, id + 1000), "author_association": "NONE",
        "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:00:00Z"
    })
}

/// GitHub's 403 body.
pub fn forbidden() -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest"
    }))
}

/// A fake API where `GET /user` is refused (as for GITHUB_TOKEN), page 1 of the comments
/// holds `page_one` and links to page 2, which holds `page_two`.
pub async fn server(page_one: Vec<Value>, page_two: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(forbidden())
        .mount(&server)
        .await;
    let page_two_url = format!(
        "{}/repos/o/r/issues/7/comments?per_page=100&page=2",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues/7/comments"))
        .and(query_param("page", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(Value::Array(page_one))
                .insert_header(
                    "link",
                    format!(r#"<{page_two_url}>; rel="next", <{page_two_url}>; rel="last""#),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues/7/comments"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(Value::Array(page_two)))
        .mount(&server)
        .await;
    server
}
