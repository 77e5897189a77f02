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
use common::{regsweep, Image, RegistryOptions, Run, TestRegistry};

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
    // The expired, unprotected tag, and the signature of the overwritten `latest`: GitLab
    // does not list that untagged image, but the registry has it (issue 25, defect 9).
    let signatures: Vec<(String, String)> = history
        .deleted_tags
        .iter()
        .filter(|(repository, tag)| repository == app && tag.ends_with(".sig"))
        .cloned()
        .collect();
    assert_eq!(signatures.len(), 1, "{:?}", history.deleted_tags);
    let mut expected = vec![(app.to_string(), expired.clone())];
    expected.extend(signatures);
    expected.sort();
    let mut deleted = fake.state.lock().unwrap().deleted_tags.clone();
    deleted.sort();
    assert_eq!(
        deleted, expected,
        "exactly the expired, unprotected tag and the signature of an untagged image"
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

fn token_registry() -> TestRegistry {
    TestRegistry::start_with(RegistryOptions {
        token_auth: Some(TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    })
}

/// Issue 25, defect 2: the plan deletes an old image by deleting its tags; when CI re-pushes
/// one of those tags onto a new image during the run, that tag is the new image's now and is
/// left alone (GitLab's garbage collection would take the new image's manifest otherwise).
#[test]
fn a_tag_that_moved_to_a_new_image_is_not_deleted_by_name() {
    let registry = token_registry();
    let repo = "group/project/app";
    registry.push_image(repo, Some("aaaaaaa1"), &Image::new("old", 30));
    registry.push_image(repo, Some("bbbbbbb2"), &Image::new("middle", 20));
    let newest = registry.push_image(repo, Some("ccccccc3"), &Image::new("newest", 1));
    let options = FakeGitlabOptions {
        move_tag_after_second_listing: Some(("aaaaaaa1".into(), "ccccccc3".into())),
        ..FakeGitlabOptions::default()
    };
    let fake = FakeGitlab::start(&registry, options.clone());
    let real = run(&registry, &fake, &options, &[("HASH_TAG_KEEP", "2")]);
    assert_eq!(
        fake.state.lock().unwrap().moved,
        ["aaaaaaa1"],
        "the move happened\n{}",
        real.stdout
    );
    assert_eq!(
        registry.digest_of(repo, "aaaaaaa1"),
        Some(newest.digest.clone()),
        "the moved tag was deleted\n{}",
        real.stdout
    );
    assert!(
        fake.state.lock().unwrap().deleted_tags.is_empty(),
        "{}",
        real.stdout
    );
    assert!(
        real.stdout.contains("tag `aaaaaaa1` now points at"),
        "{}",
        real.stdout
    );
    assert!(registry.pull_problems(repo, "aaaaaaa1").is_empty());
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
}

/// Issue 25, defect 6: without GitLab's metadata database a tag's `created_at` is the image
/// config's `created`, 1970 for reproducible builds (Jib, ko, Bazel): no date, as everywhere
/// else, so REGSWEEP_MIN_AGE does not see a 56-year-old image.
#[test]
fn a_reproducible_build_s_1970_date_is_no_date() {
    let registry = token_registry();
    let repo = "group/project/app";
    let epoch = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let reproducible = registry.push_image(
        repo,
        Some("aaaaaaa1"),
        &Image {
            created: Some(epoch),
            ..Image::new("reproducible", 0)
        },
    );
    registry.push_image(repo, Some("bbbbbbb2"), &Image::new("dated", 1));
    let options = FakeGitlabOptions::default();
    let fake = FakeGitlab::start(&registry, options.clone());
    let real = run(
        &registry,
        &fake,
        &options,
        &[("HASH_TAG_KEEP", "1"), ("REGSWEEP_MIN_AGE", "1h")],
    );
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    assert_eq!(
        registry.digest_of(repo, "aaaaaaa1"),
        Some(reproducible.digest.clone()),
        "an image of unknown age was deleted under REGSWEEP_MIN_AGE\n{}",
        real.stdout
    );
    assert!(!real.stdout.contains("1970-01-01"), "{}", real.stdout);
}

/// Issue 25, defect 9: GitLab's API lists tags only, so the untagged image a cosign
/// signature (`sha256-<hex>.sig`) is attached to is not listed; the registry is asked for it,
/// and an untagged image nothing keeps goes with its signature.
#[test]
fn the_signature_of_an_untagged_image_goes_with_it() {
    let registry = token_registry();
    let repo = "group/project/app";
    let current = registry.push_image(repo, Some("latest"), &Image::new("current", 1));
    let current_signature = registry.push_signature(repo, &current.digest);
    let untagged = registry.push_image(repo, None, &Image::new("old", 30));
    let signature = registry.push_signature(repo, &untagged.digest);
    let options = FakeGitlabOptions::default();
    let fake = FakeGitlab::start(&registry, options.clone());
    let real = run(&registry, &fake, &options, &[]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    let signature_tag = format!("sha256-{}.sig", untagged.digest.hex());
    assert_eq!(
        fake.state.lock().unwrap().deleted_tags,
        [(repo.to_string(), signature_tag.clone())],
        "{}",
        real.stdout
    );
    assert!(registry.digest_of(repo, &signature_tag).is_none());
    assert_eq!(
        registry.digest_of(repo, &format!("sha256-{}.sig", current.digest.hex())),
        Some(current_signature.digest.clone())
    );
    let _ = signature;
}
