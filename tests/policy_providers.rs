//! Issue 26: the same retention policy and dataset as tests/policy.rs through the providers
//! whose APIs cannot run here, each a fake backed by the real registry: GitHub Packages,
//! GitLab, Harbor and DigitalOcean. Tags are removed from images that stay through each one's
//! own way (GHCR: a throw-away manifest with the same token, its version deleted; GitLab,
//! Harbor, DigitalOcean: their tag APIs), and every kept image stays whole.

mod common;

use common::retention::{policy, push_conventions};
use common::token::TokenServerOptions;
use common::{regsweep, RegistryOptions, Run, TestRegistry};

fn run(env: Vec<(&str, String)>) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    regsweep(&env, &[])
}

fn policy_file(registry: &TestRegistry, prefix: &str) -> String {
    let path = registry.storage().parent().unwrap().join("policy.yml");
    std::fs::write(&path, policy(prefix)).unwrap();
    path.display().to_string()
}

fn untagged_line(run: &Run) {
    assert!(
        run.stdout.contains("[untagged]") && run.stdout.contains("tag=sha-aaaaaa0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("untagged:     1 of 1 planned"),
        "{}",
        run.stdout
    );
}

#[test]
fn through_github_packages() {
    let registry = TestRegistry::start();
    let conventions = push_conventions(&registry, "acme/");
    let path = policy_file(&registry, "acme/");
    let fake = common::ghcr::FakeGhcr::start(&registry, Default::default());
    let real = run(fake.env(&registry, &[("REGSWEEP_POLICY", &path)]));
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    conventions.assert_applied(&registry, true, true);
    conventions.assert_no_throwaway_left(&registry);
    untagged_line(&real);
}

#[test]
fn through_gitlab() {
    let registry = TestRegistry::start_with(RegistryOptions {
        token_auth: Some(TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    });
    let mut conventions = push_conventions(&registry, "group/project/");
    // GitLab's created_at is the config's (1970 for reproducible builds) and it has no push
    // time: those images have no date there, and are left out of this run.
    conventions.leave_out(&conventions.reproducible.clone());
    let path = policy_file(&registry, "group/project/");
    let options = common::gitlab_api::FakeGitlabOptions::default();
    let fake = common::gitlab_api::FakeGitlab::start(&registry, options.clone());
    let repositories = "group/project/gh/app,group/project/flux/web,group/project/lib/core";
    let real = run(fake.env(
        &registry,
        &options,
        &[
            ("REGSWEEP_POLICY", &path),
            ("REGSWEEP_REPOSITORIES", repositories),
        ],
    ));
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    // GitLab lists and deletes tags only: manifests without tags are its own collection's.
    conventions.assert_applied(&registry, false, false);
    untagged_line(&real);
    let deleted = fake.state.lock().unwrap().deleted_tags.clone();
    assert!(deleted.contains(&("group/project/gh/app".into(), "sha-aaaaaa0".into())));
}

#[test]
fn through_harbor() {
    let registry = TestRegistry::start();
    let conventions = push_conventions(&registry, "library/");
    let path = policy_file(&registry, "library/");
    let fake = common::harbor::FakeHarbor::start(&registry, Default::default());
    let real = run(fake.env(
        common::harbor::ADMIN,
        &[("REGSWEEP_POLICY", &path), ("REGSWEEP_GC", "false")],
    ));
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    conventions.assert_applied(&registry, true, true);
    conventions.assert_no_throwaway_left(&registry);
    untagged_line(&real);
    assert_eq!(
        fake.state.lock().unwrap().deleted_tags,
        [("library/gh/app".to_string(), "sha-aaaaaa0".to_string())]
    );
}

#[test]
fn through_digitalocean() {
    let registry = TestRegistry::start();
    let conventions = push_conventions(&registry, "");
    let path = policy_file(&registry, "");
    let fake = common::digitalocean::FakeDo::start(&registry, Default::default());
    let real = run(fake.env(&registry, &[("REGSWEEP_POLICY", &path)]));
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    conventions.assert_applied(&registry, true, true);
    conventions.assert_no_throwaway_left(&registry);
    untagged_line(&real);
    assert_eq!(
        fake.state.lock().unwrap().deleted_tags,
        [("gh/app".to_string(), "sha-aaaaaa0".to_string())]
    );
}
