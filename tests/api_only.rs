//! Without storage access: discovery through the registry's API alone (`REGSWEEP_SOURCE=api`,
//! or neither `REGISTRY_DIR` nor `REGISTRY_STORAGE`), against the real registry. The API shows
//! only what tags reach, so such a run prunes expired hash tags, protects what they reach, and
//! leaves every untagged manifest alone, saying so.

mod common;

use common::scenario::{commit_tag, push_history};
use common::token::TokenServerOptions;
use common::{regsweep, Backend, Image, RegistryOptions, TestRegistry};

fn api_only_prunes_hash_tags_and_nothing_untagged(options: RegistryOptions) {
    let registry = TestRegistry::start_with(RegistryOptions {
        backend: Backend::ApiOnly,
        ..options
    });
    let history = push_history(&registry);
    // What the API can see to delete: the two oldest of the twelve hash tags in demo/app.
    let expired: Vec<String> = (0..2).map(|i| commit_tag(&format!("commit {i}"))).collect();
    let expired_digests: Vec<_> = expired
        .iter()
        .map(|tag| registry.digest_of("demo/app", tag).unwrap())
        .collect();

    let dry = registry.sweep(&[("DRY_RUN", "true")]);
    assert_eq!(
        dry.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        dry.stdout, dry.stderr
    );
    assert!(dry.stdout.contains("to delete:    2"), "{}", dry.stdout);
    assert!(
        dry.stdout
            .contains("untagged manifests are invisible to the API"),
        "{}",
        dry.stdout
    );

    let run = registry.sweep(&[]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("deleted:      2 of 2 planned"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Verified: all"), "{}", run.stdout);
    let tags = registry.tags("demo/app");
    for tag in &expired {
        assert!(!tags.contains(tag), "{tag} survived: {tags:?}");
    }
    // Every kept tag is still pullable, and every untagged manifest is still there, the
    // ones a storage-backed run deletes included: the API cannot tell they are unreachable.
    history.assert_kept_pullable(&registry);
    for (repository, digest) in &history.deleted {
        let gone = repository == "demo/app" && expired_digests.contains(digest);
        assert_eq!(
            registry.exists(repository, digest),
            !gone,
            "{repository}@{digest}"
        );
    }

    let markdown = registry.sweep(&[("REGSWEEP_OUTPUT", "markdown"), ("DRY_RUN", "true")]);
    assert!(markdown.stdout.contains("> [!NOTE]"), "{}", markdown.stdout);
    let json = registry.sweep(&[("REGSWEEP_OUTPUT", "json"), ("DRY_RUN", "true")]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        report["notices"][0]
            .as_str()
            .unwrap()
            .contains("untagged manifests are invisible"),
        "{report}"
    );
    assert_eq!(report["storage"], "none (registry API only)");
}

#[test]
fn api_only_prunes_hash_tags_and_nothing_untagged_anonymous() {
    api_only_prunes_hash_tags_and_nothing_untagged(RegistryOptions::default());
}

#[test]
fn api_only_prunes_hash_tags_and_nothing_untagged_over_token_auth() {
    api_only_prunes_hash_tags_and_nothing_untagged(RegistryOptions {
        token_auth: Some(TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    });
}

#[test]
fn over_token_auth_the_catalog_scope_is_asked_for() {
    let registry = TestRegistry::start_with(RegistryOptions {
        backend: Backend::ApiOnly,
        token_auth: Some(TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    });
    registry.push_image("app", Some("latest"), &Image::new("one", 1));
    let run = registry.sweep(&[("DRY_RUN", "true")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let asked = registry.token_server.as_ref().unwrap().scopes_asked();
    assert!(
        asked.contains(&"registry:catalog:*".to_string()),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"repository:app:pull".to_string()),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|s| s.ends_with(":delete")),
        "a dry run: {asked:?}"
    );
}

#[test]
fn named_repositories_skip_the_catalog_and_must_exist() {
    let registry = TestRegistry::start_on(Backend::ApiOnly);
    let mut old = Vec::new();
    for repository in ["one", "two", "three"] {
        for i in 0..3 {
            let image = Image::new(&format!("{repository} {i}"), 10 - i);
            old.push((
                repository,
                registry.push_image(
                    repository,
                    Some(&commit_tag(&format!("{repository}{i}"))),
                    &image,
                ),
            ));
        }
    }
    let run = registry.sweep(&[
        ("REGSWEEP_REPOSITORIES", "one, three"),
        ("HASH_TAG_KEEP", "1"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("deleted:      4 of 4 planned"),
        "{}",
        run.stdout
    );
    for (repository, pushed) in &old {
        let kept = *repository == "two"
            || pushed.digest
                == old
                    .iter()
                    .rev()
                    .find(|(r, _)| r == repository)
                    .unwrap()
                    .1
                    .digest;
        assert_eq!(
            registry.exists(repository, &pushed.digest),
            kept,
            "{repository}@{}",
            pushed.digest
        );
    }

    let missing = registry.sweep(&[("REGSWEEP_REPOSITORIES", "one,nope")]);
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing
            .stderr
            .contains("repository `nope` not found in registry"),
        "{}",
        missing.stderr
    );
}

#[test]
fn without_any_storage_option_the_api_is_used_and_the_reason_given() {
    // Assumes no `/registry` folder on the machine (there is none on a fresh CI machine).
    let registry = TestRegistry::start_on(Backend::ApiOnly);
    registry.push_image("app", Some("latest"), &Image::new("one", 1));
    let run = regsweep(&[("REGISTRY_URL", &registry.url), ("DRY_RUN", "true")], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("neither REGISTRY_STORAGE nor REGISTRY_DIR is set"),
        "{}",
        run.stdout
    );
}
