//! In a GitLab merge-request pipeline with `REGSWEEP_GITLAB_TOKEN`, one note per registry on
//! the merge request, updated in place: against the real registry and a fake GitLab REST API
//! (v4, from its reference: `GET /user`, merge-request notes paged by `X-Next-Page`,
//! `POST` 201, `PUT` 200, `PRIVATE-TOKEN` authentication).

mod common;

use common::scenario::push_history;
use common::TestRegistry;
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "glpat-FakeProjectToken123";
const BOT: u64 = 5;
const NOTES: &str = "/api/v4/projects/42/merge_requests/7/notes";

fn note(id: u64, author: u64, body: &str, system: bool) -> Value {
    json!({
        "id": id, "type": null, "body": body, "attachment": null,
        "author": {"id": author, "username": format!("user{author}"), "name": "User",
                   "state": "active", "avatar_url": null, "web_url": "https://gitlab.example.com/u"},
        "created_at": "2026-11-20T10:00:00.000Z", "updated_at": "2026-11-20T10:00:00.000Z",
        "system": system, "noteable_id": 1, "noteable_type": "MergeRequest",
        "project_id": 42, "noteable_iid": 7, "resolvable": false, "confidential": false,
        "internal": false
    })
}

/// The API with page 1 of the notes linking to page 2 (`X-Next-Page`).
async fn gitlab(page_one: Vec<Value>, page_two: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/user"))
        .and(header("PRIVATE-TOKEN", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": BOT, "username": "project_42_bot_1", "name": "regsweep", "bot": true}),
        ))
        .mount(&server)
        .await;
    for (page, notes, next) in [(1, page_one, "2"), (2, page_two, "")] {
        Mock::given(method("GET"))
            .and(path(NOTES))
            .and(query_param("page", page.to_string()))
            .and(header("PRIVATE-TOKEN", TOKEN))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(Value::Array(notes))
                    .insert_header("x-next-page", next)
                    .insert_header("x-page", page.to_string().as_str())
                    .insert_header("x-per-page", "100"),
            )
            .mount(&server)
            .await;
    }
    server
}

#[test]
fn a_merge_request_gets_one_note_per_registry_updated_in_place() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let registry = TestRegistry::start();
    push_history(&registry);
    let marker = format!("<!-- regsweep: {} -->", registry.url);
    let sweep = |api: &str| {
        let api = format!("{api}/api/v4");
        registry.sweep(&[
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", &api),
            ("CI_PROJECT_ID", "42"),
            ("CI_MERGE_REQUEST_IID", "7"),
            ("REGSWEEP_GITLAB_TOKEN", TOKEN),
            ("DRY_RUN", "true"),
        ])
    };

    // First run: a system note and another user's marked note are not ours: create one.
    let server = runtime.block_on(async {
        let server = gitlab(
            vec![note(1, 9, "added 1 commit", true)],
            vec![note(2, 9, &format!("{marker}\nnot ours"), false)],
        )
        .await;
        Mock::given(method("POST"))
            .and(path(NOTES))
            .and(body_string_contains(marker.as_str()))
            .and(body_string_contains("## regsweep: "))
            .respond_with(ResponseTemplate::new(201).set_body_json(note(77, BOT, "x", false)))
            .expect(1)
            .mount(&server)
            .await;
        server
    });
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("noted on merge request !7 (note 77)"),
        "{}",
        run.stderr
    );
    runtime.block_on(server.verify());

    // Second run: our note (page 2) is updated with PUT; nothing is created.
    let server = runtime.block_on(async {
        let server = gitlab(
            vec![note(1, 9, "added 1 commit", true)],
            vec![note(77, BOT, &format!("{marker}\nold"), false)],
        )
        .await;
        Mock::given(method("PUT"))
            .and(path(format!("{NOTES}/77")))
            .and(body_string_contains(marker.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(note(77, BOT, "x", false)))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        server
    });
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("updated its note on merge request !7 (note 77)"),
        "{}",
        run.stderr
    );
    runtime.block_on(server.verify());

    // A token without the right: 403, a warning, the run's outcome unchanged.
    let server = runtime.block_on(async {
        let server = gitlab(vec![], vec![]).await;
        Mock::given(method("POST"))
            .and(path(NOTES))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(json!({"message": "403 Forbidden"})),
            )
            .mount(&server)
            .await;
        server
    });
    let run = sweep(&server.uri());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: cannot note on merge request !7: the GitLab API refused creating the note: 403 Forbidden;")
            && run.stderr.contains("`api` scope"),
        "{}",
        run.stderr
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    }
}
