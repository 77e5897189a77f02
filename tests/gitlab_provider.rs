//! GitLab's container registry: discovery through the GitLab API (repositories, tags, tag
//! details), manifests read from the registry over bearer tokens with the job's registry
//! login, tag deletes through the API. Against a fake of GitLab's API (tests/common/gitlab_api.rs)
//! backed by the real registry with a token server: on the common push history every kept tag
//! still points at the same digest and stays fully pullable, the expired tags are gone, a
//! protected tag is reported and not fatal, and both token headers work.

mod common;

use common::gitlab_api::{FakeGitlab, FakeGitlabOptions, PRIVATE_TOKEN};
use common::scenario::{commit_tag, push_history_under};
use common::token::TokenServerOptions;
use common::{regsweep, RegistryOptions, Run, TestRegistry};

fn run(
    registry: &TestRegistry,
    fake: &FakeGitlab,
    options: &FakeGitlabOptions,
    extra: &[(&str, &str)],
) -> Run {
    let env = fake.env(registry, options, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    regsweep(&env, &[])
}

#[test]
fn tags_go_through_the_gitlab_api_and_every_kept_image_stays_whole() {
    let registry = TestRegistry::start_with(RegistryOptions {
        token_auth: Some(TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    });
    let history = push_history_under(&registry, "group/project/");
    // The two oldest commit tags expire; the older one is protected in GitLab.
    let (protected, expired) = (commit_tag("commit 0"), commit_tag("commit 1"));
    let options = FakeGitlabOptions {
        page_cap: 3,
        protected: vec![format!("^{protected}$")],
        throttle_delete: Some(1),
        ..FakeGitlabOptions::default()
    };
    let fake = FakeGitlab::start(&registry, options.clone());
    let before: Vec<_> = history
        .kept_tags
        .iter()
        .map(|(repository, tag)| registry.digest_of(repository, tag))
        .collect();

    // A dry run with a project token (PRIVATE-TOKEN) and the project's path for its id.
    let dry = run(
        &registry,
        &fake,
        &options,
        &[
            ("DRY_RUN", "true"),
            ("GITLAB_TOKEN", PRIVATE_TOKEN),
            ("CI_PROJECT_ID", "group/project"),
        ],
    );
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    assert!(fake.state.lock().unwrap().deleted_tags.is_empty());

    // The real run with the job token (JOB-TOKEN).
    let real = run(&registry, &fake, &options, &[]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    let app = "group/project/demo/app";
    assert_eq!(
        fake.state.lock().unwrap().deleted_tags,
        [(app.to_string(), expired.clone())],
        "exactly the expired, unprotected tag"
    );
    let tags = registry.tags(app);
    assert!(!tags.contains(&expired));
    assert!(tags.contains(&protected), "the protected tag stays");
    assert!(
        real.stdout.contains(&format!(
            "the registry keeps it: tag `{protected}` is protected (403 Forbidden - cannot delete protected tag(s))"
        )),
        "{}",
        real.stdout
    );
    assert!(
        real.stdout.contains(&format!(
            "tag `{expired}` deleted: the registry's garbage collection removes the manifest"
        )),
        "{}",
        real.stdout
    );
    assert!(
        real.stdout
            .contains("GitLab's API lists and deletes tags only"),
        "{}",
        real.stdout
    );
    // Every kept tag points where it did and is whole.
    for ((repository, tag), digest) in history.kept_tags.iter().zip(&before) {
        assert_eq!(
            &registry.digest_of(repository, tag),
            digest,
            "{repository}:{tag} moved"
        );
        let problems = registry.pull_problems(repository, tag);
        assert!(problems.is_empty(), "{repository}:{tag}: {problems:?}");
    }
    let state = fake.state.lock().unwrap();
    assert!(state.token_headers.iter().any(|h| h == "private-token"));
    assert!(state.token_headers.iter().any(|h| h == "job-token"));
    assert_eq!(state.throttled, 1, "a 429 with Retry-After, waited for");
    assert!(
        state
            .requests
            .iter()
            .any(|(_, p)| p.contains("/projects/group%2Fproject/")),
        "the project's path as its id, %2F-encoded"
    );
    for text in [&dry.stdout, &dry.stderr, &real.stdout, &real.stderr] {
        assert!(!text.contains(PRIVATE_TOKEN), "the token leaked");
    }
}
