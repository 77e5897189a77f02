//! Harbor: artifacts through Harbor's API, manifests through `/v2/` on the same origin,
//! deletions by digest parents first (what Harbor takes along answers 404: done), a 412 stops
//! the repository, garbage collection with `delete_untagged: false` followed to its end, and a
//! robot account without the right to start it told what to do. Against a fake Harbor
//! (tests/common/harbor.rs) backed by the real registry.

mod common;

use common::harbor::{FakeHarbor, FakeHarborOptions, ADMIN, ROBOT};
use common::scenario::{push_attested_releases_in, push_history_under};
use common::{regsweep, Image, Run, TestRegistry};

fn run(fake: &FakeHarbor, account: (&str, &str), extra: &[(&str, &str)]) -> Run {
    let env = fake.env(account, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    regsweep(&env, &[])
}

#[test]
fn artifacts_go_parents_first_and_garbage_collection_keeps_what_the_plan_kept() {
    let registry = TestRegistry::start();
    let history = push_history_under(&registry, "library/");
    let releases = push_attested_releases_in(&registry, "library/multi");
    let fake = FakeHarbor::start(
        &registry,
        FakeHarborOptions {
            page_cap: 3, // several pages everywhere
            ..FakeHarborOptions::default()
        },
    );
    let dry = run(&fake, ADMIN, &[("DRY_RUN", "true")]);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    assert!(fake.state.lock().unwrap().deleted.is_empty());
    assert!(dry.stdout.contains("Clean Up"), "{}", dry.stdout);

    let real = run(&fake, ADMIN, &[]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    history.assert_applied(&registry);
    releases.history.assert_applied(&registry);
    releases
        .history
        .assert_kept_resolve(&registry, &releases.tagged);
    // Harbor took the old release's children and signature along with its index.
    let state = fake.state.lock().unwrap();
    assert!(!state.cascaded.is_empty());
    assert!(
        real.stdout.contains("[deleted]") && real.stdout.contains("by the registry, with"),
        "{}",
        real.stdout
    );
    // Pages followed (relative Link), names with `/` encoded twice.
    assert!(state.requests.iter().any(|(_, p)| p.contains("page=2")));
    assert!(state
        .requests
        .iter()
        .any(|(_, p)| p.contains("/repositories/team%252Fapp%252Fapi/artifacts")));
    // Garbage collection: unreferenced blobs only, and the blobs of what went are gone.
    assert_eq!(state.gc_untagged, [false]);
    drop(state);
    releases.history.assert_collected(&registry);
    assert!(
        real.stdout.contains("Type: delete_untagged: false"),
        "{}",
        real.stdout
    );
}

#[test]
fn a_robot_without_gc_rights_is_told_what_to_do_and_a_disagreement_stops_the_repository() {
    let registry = TestRegistry::start();
    let old = registry.push_image("library/app", Some("latest"), &Image::new("old", 5));
    registry.push_image("library/app", Some("latest"), &Image::new("new", 1));
    let robot = FakeHarbor::start(&registry, FakeHarborOptions::default());
    let run_robot = run(&robot, ROBOT, &[]);
    assert_eq!(
        run_robot.code, 0,
        "{}\n{}",
        run_robot.stdout, run_robot.stderr
    );
    assert!(!registry.exists("library/app", &old.digest));
    assert!(
        run_robot.stdout.contains(
            "garbage collection not started: the account may not start Harbor's garbage collection"
        ) && run_robot.stdout.contains("/api/v2.0/system/gc/schedule"),
        "{}",
        run_robot.stdout
    );
    assert!(robot.state.lock().unwrap().gc_untagged.is_empty());

    // Harbor knows a parent of this artifact that the registry does not show: 412, and
    // nothing more is deleted in that repository.
    let stale = registry.push_image("library/other", Some("v1"), &Image::new("stale", 9));
    registry.push_image("library/other", Some("v1"), &Image::new("current", 1));
    let disagreeing = FakeHarbor::start(
        &registry,
        FakeHarborOptions {
            foreign_parents: vec![stale.digest.to_string()],
            ..FakeHarborOptions::default()
        },
    );
    let refused = run(
        &disagreeing,
        ADMIN,
        &[("REGSWEEP_REPOSITORIES", "library/other")],
    );
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);
    assert!(registry.exists("library/other", &stale.digest));
    assert!(
        refused
            .stdout
            .contains("deleting stopped in `library/other`")
            && refused.stdout.contains("412 Precondition Failed")
            && refused.stdout.contains("VIOLATE_FOREIGN_KEY_CONSTRAINT"),
        "{}",
        refused.stdout
    );
}

/// Issue 25, defect 1: Harbor's referrers API lists the cosign signatures of a multi-arch
/// image's platform manifests (`cosign sign --recursive`); they have no `subject` and Harbor
/// hides their `sha256-…` tags, so only "referrer of X" ties them to X. They belong to the
/// kept index's children and stay.
#[test]
fn signatures_of_a_kept_index_s_platform_images_stay() {
    let registry = TestRegistry::start();
    let repo = "library/multi";
    let amd64 = registry.push_image(repo, None, &Image::new("amd64", 3));
    let arm64 = registry.push_image(
        repo,
        None,
        &Image::new("arm64", 3).arch("arm64", Some("v8")),
    );
    let index = registry.push_index(
        repo,
        Some("1.0"),
        &[
            (&amd64, Some(("amd64", None))),
            (&arm64, Some(("arm64", Some("v8")))),
        ],
        false,
    );
    let signatures: Vec<_> = [&index, &amd64, &arm64]
        .iter()
        .map(|signed| registry.push_signature(repo, &signed.digest))
        .collect();
    let fake = FakeHarbor::start(&registry, FakeHarborOptions::default());
    let real = run(&fake, ADMIN, &[("REGSWEEP_GC", "false")]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    for signature in &signatures {
        assert!(
            registry.exists(repo, &signature.digest),
            "the signature {} was deleted\n{}",
            signature.digest,
            real.stdout
        );
    }
    assert!(
        fake.state.lock().unwrap().deleted.is_empty(),
        "{}",
        real.stdout
    );
    assert!(registry.pull_problems(repo, "1.0").is_empty());
}

/// Issue 25, defect 7: Harbor deletes an artifact's untagged children (and accessories) with
/// it. An old untagged index whose child the plan keeps (its age is unknown, so
/// REGSWEEP_MIN_AGE keeps it) must stay too, or Harbor takes the kept child along.
#[test]
fn an_untagged_index_stays_while_the_plan_keeps_its_child() {
    let registry = TestRegistry::start();
    let repo = "library/app";
    registry.push_image(repo, Some("latest"), &Image::new("current", 1));
    // A child whose config has no `created`, and which Harbor never lists (it has a
    // parent): its age is unknown, so the minimum age keeps it.
    let child = registry.push_image(
        repo,
        None,
        &Image {
            created: None,
            ..Image::new("child", 0)
        },
    );
    let index = registry.push_index(repo, None, &[(&child, Some(("amd64", None)))], false);
    // The index was pushed ten days ago (Harbor's push_time comes from the revision).
    registry.age_revision(
        repo,
        &index.digest,
        std::time::Duration::from_secs(10 * 86_400),
    );
    let fake = FakeHarbor::start(&registry, FakeHarborOptions::default());
    let real = run(
        &fake,
        ADMIN,
        &[("REGSWEEP_MIN_AGE", "1h"), ("REGSWEEP_GC", "false")],
    );
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    assert!(
        registry.exists(repo, &child.digest),
        "the child the plan keeps was taken along with its index\n{}",
        real.stdout
    );
    assert!(registry.exists(repo, &index.digest), "{}", real.stdout);
    assert!(
        real.stdout.contains("the registry would delete kept"),
        "{}",
        real.stdout
    );
}
