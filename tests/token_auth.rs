//! Bearer-token registries: the real registry with `auth: token` and the tests' token server
//! (tests/common/token.rs). The core scenarios themselves run over token auth in
//! tests/cleanup.rs; these check the token protocol: scopes, caching, both answer spellings,
//! and refusals that name the scope and the account.

mod common;

use std::collections::HashMap;

use common::scenario::push_history;
use common::token::{Grant, TokenServerOptions};
use common::{Image, RegistryOptions, TestRegistry};

const PASSWORD: &str = "t0ken-Pa55word";
const READER_PASSWORD: &str = "r3ader-Pa55word";

fn token_registry(oauth_spelling: bool, expires_in: Option<u64>) -> TestRegistry {
    let accounts = HashMap::from([
        ("ci".to_string(), (PASSWORD.to_string(), Grant::All)),
        (
            "robot$team+reader".to_string(),
            (READER_PASSWORD.to_string(), Grant::PullOnly),
        ),
    ]);
    TestRegistry::start_with(RegistryOptions {
        token_auth: Some(TokenServerOptions {
            accounts,
            oauth_spelling,
            expires_in,
        }),
        ..RegistryOptions::default()
    })
}

#[test]
fn asks_for_exactly_the_scopes_needed_and_caches_them() {
    let registry = token_registry(false, Some(300));
    let history = push_history(&registry);
    let run = registry.sweep(&[]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    history.assert_applied(&registry);

    let server = registry.token_server.as_ref().unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|r| r.account.as_deref() == Some("ci")
        && r.service.as_deref() == Some(common::token::SERVICE)));
    let asked = server.scopes_asked();
    // `/v2/` first (no scope), then per repository `pull` (reads, the pre-delete checks go
    // through storage) and `delete`, each once: tokens are cached per scope.
    assert_eq!(asked[0], "", "{asked:?}");
    let mut sorted = asked.clone();
    sorted.sort();
    let mut unique = sorted.clone();
    unique.dedup();
    assert_eq!(sorted, unique, "a scope was asked for twice: {asked:?}");
    for repository in ["demo/app", "demo/legacy", "team/app", "team/app/api"] {
        assert!(
            asked.contains(&format!("repository:{repository}:delete")),
            "{asked:?}"
        );
    }
    assert!(
        asked.iter().all(|s| s.is_empty()
            || s.ends_with(":pull")
            || s.ends_with(":delete")
            || s == "registry:catalog:*"),
        "{asked:?}"
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD));
    }
}

#[test]
fn access_token_spelling_and_default_lifetime_work() {
    let registry = token_registry(true, None);
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let run = registry.sweep(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!registry.exists("app", &old.digest));
    assert!(registry.pull_problems("app", "latest").is_empty());
}

#[test]
fn a_token_without_delete_is_explained_naming_scope_and_account() {
    let registry = token_registry(false, Some(300));
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let auth = format!("robot$team+reader:{READER_PASSWORD}");
    let run = registry.sweep(&[("REGISTRY_AUTH", &auth)]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("refused to delete manifests in `app`")
            && run.stderr.contains("scope `repository:app:delete`")
            && run.stderr.contains("account `robot$team+reader`"),
        "{}",
        run.stderr
    );
    assert!(registry.exists("app", &old.digest));
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(READER_PASSWORD));
    }
}

#[test]
fn wrong_credentials_are_refused_by_the_token_server() {
    let registry = token_registry(false, Some(300));
    registry.push_image("app", Some("latest"), &Image::new("one", 1));
    let run = registry.sweep(&[("REGISTRY_AUTH", "ci:not-the-password")]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("refused to issue a token for scope")
            && run.stderr.contains("401 Unauthorized for user `ci`")
            && run.stderr.contains("REGISTRY_AUTH"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-the-password"));
}
