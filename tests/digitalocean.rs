//! DigitalOcean Container Registry: discovery, deletion and garbage collection through the
//! DigitalOcean API, against a fake of that API (tests/common/digitalocean.rs) serving the real
//! registry: the same end-state checks as the core suite (every kept tag fully pullable, every
//! planned deletion gone).

mod common;

use common::digitalocean::{FakeDo, FakeDoOptions, TOKEN};
use common::scenario::{push_attested_releases, push_history};
use common::{regsweep, Image, TestRegistry};

fn run(registry: &TestRegistry, fake: &FakeDo, extra: &[(&str, &str)]) -> common::Run {
    let env = fake.env(registry, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    regsweep(&env, &[])
}

#[test]
fn deletes_through_the_api_paced_and_collects_garbage() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            page_cap: 3,              // several pages everywhere
            throttle_delete: Some(3), // a 429 in the middle of deletion
            ..FakeDoOptions::default()
        },
    );

    let dry = run(
        &registry,
        &fake,
        &[("DRY_RUN", "true"), ("REGSWEEP_LOG", "trace")],
    );
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    assert!(
        dry.stderr.contains("TRACE") || dry.stderr.contains("DEBUG"),
        "{}",
        dry.stderr
    );
    for text in [&dry.stdout, &dry.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked at trace level");
    }
    assert!(
        dry.stdout
            .contains(&format!("to delete:    {}", history.deleted.len())),
        "{}",
        dry.stdout
    );
    assert!(
        fake.requests_to("garbage-collection").is_empty(),
        "no GC in a dry run"
    );
    assert!(
        dry.stdout
            .contains("doctl registry garbage-collection start regsweep-test"),
        "{}",
        dry.stdout
    );

    let real = run(&registry, &fake, &[]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    history.assert_applied(&registry);
    assert!(
        real.stdout.contains(&format!(
            "deleted:      {} of {} planned",
            history.deleted.len(),
            history.deleted.len()
        )),
        "{}",
        real.stdout
    );
    // Pages followed, repository names with `/` sent as %2F, the throttled DELETE retried.
    assert!(!fake.requests_to("repositoriesV2?page_token=").is_empty());
    assert!(!fake
        .requests_to("/repositories/team%2Fapp%2Fapi/digests")
        .is_empty());
    assert!(
        !fake.requests_to("digests?page=2").is_empty(),
        "a second page of manifests"
    );
    assert_eq!(fake.state.lock().unwrap().throttled, 1);
    // Garbage collection started once, followed through its statuses to the end.
    assert_eq!(
        fake.requests_to("garbage-collection")
            .iter()
            .filter(|(m, _)| m == "POST")
            .count(),
        1
    );
    for status in [
        "scanning manifests",
        "deleting unreferenced blobs",
        "succeeded",
    ] {
        assert!(
            real.stderr
                .contains(&format!("garbage collection: {status}")),
            "{}",
            real.stderr
        );
    }
    let (blobs, bytes) = fake.gc_results()[0];
    assert!(blobs > 0, "the garbage collection freed nothing");
    assert!(
        real.stdout.contains(&format!(
            "Garbage collection gc-1: succeeded, {blobs} blobs deleted, {} freed",
            regsweep::report::human_bytes(bytes)
        )),
        "{}",
        real.stdout
    );
    for text in [&real.stdout, &real.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked");
    }

    // Nothing left to delete: no second garbage collection.
    let again = run(&registry, &fake, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("deleted:      0 of 0 planned"),
        "{}",
        again.stdout
    );
    assert_eq!(
        fake.requests_to("garbage-collection")
            .iter()
            .filter(|(m, _)| m == "POST")
            .count(),
        1
    );
}

#[test]
fn a_failed_garbage_collection_fails_the_run() {
    let registry = TestRegistry::start();
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            gc_outcome: "failed".into(),
            ..FakeDoOptions::default()
        },
    );
    let run = run(&registry, &fake, &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(!registry.exists("app", &old.digest));
    assert!(
        run.stdout.contains("Garbage collection gc-1: failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("the space is not freed"),
        "{}",
        run.stdout
    );
}

#[test]
fn unreadable_contents_leave_the_repository_untouched() {
    let registry = TestRegistry::start();
    let broken_old = registry.push_image("broken", Some("latest"), &Image::new("old", 5));
    let broken_new = registry.push_image("broken", Some("latest"), &Image::new("new", 1));
    let fine_old = registry.push_image("fine", Some("latest"), &Image::new("fine old", 5));
    registry.push_image("fine", Some("latest"), &Image::new("fine new", 1));
    let hex = broken_new.digest.hex();
    registry.write_storage(
        &format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]),
        b"{ not a manifest",
    );
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    let run = run(&registry, &fake, &[("REGSWEEP_GC", "false")]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(registry.exists("broken", &broken_old.digest), "fail closed");
    assert!(!registry.exists("fine", &fine_old.digest));
    assert!(
        run.stdout.contains("could not be read completely"),
        "{}",
        run.stdout
    );
    assert!(
        fake.requests_to("garbage-collection").is_empty(),
        "REGSWEEP_GC=false"
    );
}

#[test]
fn the_registry_is_chosen_or_the_choice_explained() {
    let registry = TestRegistry::start();
    registry.push_image("app", Some("latest"), &Image::new("one", 1));
    // One registry: found through the API.
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    let found = run(&registry, &fake, &[("DRY_RUN", "true")]);
    assert_eq!(found.code, 0, "{}", found.stderr);
    assert!(!fake
        .requests_to("/v2/registries/regsweep-test/repositoriesV2")
        .is_empty());

    // Several: the new endpoint lists them, and the user must choose.
    let several = FakeDoOptions {
        registries: vec!["regsweep-test".into(), "other".into()],
        ..FakeDoOptions::default()
    };
    let fake = FakeDo::start(&registry, several.clone());
    let refused = run(&registry, &fake, &[("DRY_RUN", "true")]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("several registries (regsweep-test, other)"),
        "{}",
        refused.stderr
    );
    let named = run(
        &registry,
        &fake,
        &[
            ("DRY_RUN", "true"),
            ("REGSWEEP_DO_REGISTRY", "regsweep-test"),
        ],
    );
    assert_eq!(named.code, 0, "{}", named.stderr);

    // An API with only the older paths: 412 with several registries, else those paths.
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            legacy_only: true,
            ..several
        },
    );
    let refused = run(&registry, &fake, &[("DRY_RUN", "true")]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the account has several registries"),
        "{}",
        refused.stderr
    );
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            legacy_only: true,
            ..FakeDoOptions::default()
        },
    );
    let legacy = run(&registry, &fake, &[("DRY_RUN", "true")]);
    assert_eq!(legacy.code, 0, "{}", legacy.stderr);
    assert!(!fake
        .requests_to("/v2/registry/regsweep-test/repositoriesV2")
        .is_empty());
    // Named registry and repositories skip both listings: the older paths are found anyway.
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            legacy_only: true,
            ..FakeDoOptions::default()
        },
    );
    let named = run(
        &registry,
        &fake,
        &[
            ("DRY_RUN", "true"),
            ("REGSWEEP_DO_REGISTRY", "regsweep-test"),
            ("REGSWEEP_REPOSITORIES", "app"),
        ],
    );
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert!(!fake
        .requests_to("/v2/registry/regsweep-test/repositories/app/digests")
        .is_empty());
    let missing = run(
        &registry,
        &fake,
        &[
            ("DRY_RUN", "true"),
            ("REGSWEEP_DO_REGISTRY", "regsweep-test"),
            ("REGSWEEP_REPOSITORIES", "nope"),
        ],
    );
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("repository `nope` not found"),
        "{}",
        missing.stderr
    );

    // A wrong token: one clear line, exit 1.
    let wrong = run(
        &registry,
        &fake,
        &[("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_wrong")],
    );
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("DIGITALOCEAN_ACCESS_TOKEN"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("dop_v1_wrong"));
}

#[test]
fn the_seed_policy_keeps_only_the_newest_manifest_of_each_repository() {
    // The seed script's policy, as the README's recipe gives it.
    let registry = TestRegistry::start();
    let mut pushed = Vec::new();
    for (i, tag) in ["build-1", "build-2", "build-3"].iter().enumerate() {
        pushed.push(registry.push_image("app", Some(tag), &Image::new(tag, 10 - i as i64)));
    }
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    let run = run(
        &registry,
        &fake,
        &[
            ("HASH_TAG_PATTERN", ".*"),
            ("HASH_TAG_KEEP", "1"),
            ("REGSWEEP_GC", "false"),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(registry.tags("app"), ["build-3"]);
    assert!(!registry.exists("app", &pushed[0].digest));
    assert!(registry.pull_problems("app", "build-3").is_empty());
}

#[test]
fn the_rate_limit_headers_prevent_every_429() {
    // A tight budget (8 requests per 2 s window): regsweep must wait for the reset whenever
    // the headers say it is spent, and never be answered 429.
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            rate_limit: (8, std::time::Duration::from_secs(2)),
            ..FakeDoOptions::default()
        },
    );
    let run = run(&registry, &fake, &[("REGSWEEP_GC", "false")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    history.assert_applied(&registry);
    let state = fake.state.lock().unwrap();
    assert!(
        state.requests.len() > 16,
        "the budget was spent more than once: {} requests",
        state.requests.len()
    );
    assert_eq!(state.throttled, 0, "a 429 the headers could have prevented");
}

#[test]
fn a_garbage_collection_already_running_is_waited_for() {
    let registry = TestRegistry::start();
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    // Someone else's garbage collection is running when regsweep wants to start its own.
    let started = reqwest::blocking::Client::new()
        .post(format!(
            "{}/v2/registries/regsweep-test/garbage-collection",
            fake.url
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"type": "unreferenced blobs only"}))
        .send()
        .unwrap();
    assert_eq!(started.status().as_u16(), 201);
    let run = run(&registry, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!registry.exists("app", &old.digest));
    assert!(
        run.stderr
            .contains("waiting for the garbage collection already running (gc-1"),
        "{}",
        run.stderr
    );
    // Then its own, started after the other ended.
    assert!(
        run.stdout.contains("Garbage collection gc-2: succeeded"),
        "{}",
        run.stdout
    );
}

/// Issue 19: DigitalOcean's garbage collection is distribution's. Asked to sweep untagged
/// manifests, it deletes the platform and attestation children of the kept multi-arch index
/// and the referrers of kept images (the fake runs the registry's own `garbage-collect
/// --delete-untagged`, as distribution 2.8 does it). regsweep asks for unreferenced blobs only.
#[test]
fn garbage_collection_never_deletes_what_the_plan_kept() {
    let registry = TestRegistry::start();
    let releases = push_attested_releases(&registry);
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    let run = run(&registry, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    releases
        .history
        .assert_kept_resolve(&registry, &releases.tagged);
    releases.history.assert_applied(&registry);
    releases.history.assert_collected(&registry);
    assert_eq!(
        fake.state.lock().unwrap().gc_types,
        ["unreferenced blobs only"],
        "the garbage collection type asked for"
    );
    // The report says which type ran and why.
    assert!(
        run.stdout
            .contains("Type: unreferenced blobs only: regsweep already deleted exactly the untagged manifests that are safe to delete"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_registry_untagged_sweep_is_opt_in_and_refused_while_it_would_break_a_kept_image() {
    let registry = TestRegistry::start();
    let releases = push_attested_releases(&registry);
    let fake = FakeDo::start(&registry, FakeDoOptions::default());

    // Asked for: refused before anything is deleted, naming the image it would break.
    let refused = run(
        &registry,
        &fake,
        &[("REGSWEEP_GC_INCLUDE_UNTAGGED", "true")],
    );
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let line = refused
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", refused.stderr));
    assert!(
        line.contains("refusing REGSWEEP_GC_INCLUDE_UNTAGGED=true")
            && line.contains("would break `multi:1.0`")
            && line.contains("REGSWEEP_GC_INCLUDE_UNTAGGED=force"),
        "{line}"
    );
    for (repository, digest) in &releases.history.deleted {
        assert!(registry.exists(repository, digest), "deleted while refused");
    }
    assert!(fake.requests_to("garbage-collection").is_empty());
    // A dry run says a real run would stop.
    let dry = run(
        &registry,
        &fake,
        &[
            ("REGSWEEP_GC_INCLUDE_UNTAGGED", "true"),
            ("DRY_RUN", "true"),
        ],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("a real run would stop here: refusing"),
        "{}",
        dry.stdout
    );

    // Forced: the run deletes what it planned and the registry's untagged sweep runs, as the
    // report says; it does take the kept children, which is what the refusal warned of.
    let forced = run(
        &registry,
        &fake,
        &[("REGSWEEP_GC_INCLUDE_UNTAGGED", "force")],
    );
    assert_eq!(forced.code, 0, "{}\n{}", forced.stdout, forced.stderr);
    assert_eq!(
        fake.state.lock().unwrap().gc_types,
        ["untagged manifests and unreferenced blobs"]
    );
    assert!(
        forced.stdout.contains(
            "Type: untagged manifests and unreferenced blobs: forced with REGSWEEP_GC_INCLUDE_UNTAGGED=force"
        ),
        "{}",
        forced.stdout
    );
    let (repository, child) = &releases.history.kept_untagged[0];
    assert_eq!(
        registry.manifest_status(repository, child.as_str()),
        404,
        "the fake's garbage collection sweeps untagged children as distribution 2.8 does"
    );
}

/// Issue 25, defect 3: DigitalOcean's garbage collection sweeps the whole registry, not the
/// repositories a run selected; the check that its untagged sweep breaks no kept image must
/// not look at the selected repositories only. With discovery narrowed, `true` is refused.
#[test]
fn the_untagged_sweep_is_refused_when_discovery_was_narrowed() {
    let registry = TestRegistry::start();
    let releases = push_attested_releases(&registry);
    registry.push_image("plain", Some("latest"), &Image::new("current", 1));
    let old = registry.push_image("plain", None, &Image::new("old", 30));
    let fake = FakeDo::start(&registry, FakeDoOptions::default());
    for narrowed in [("REGSWEEP_REPOSITORIES", "plain"), ("REPO_FILTER", "plain")] {
        let refused = run(
            &registry,
            &fake,
            &[("REGSWEEP_GC_INCLUDE_UNTAGGED", "true"), narrowed],
        );
        assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
        let line = refused
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{}", refused.stderr));
        assert!(
            line.contains("REGSWEEP_GC_INCLUDE_UNTAGGED") && line.contains(narrowed.0),
            "{line}"
        );
    }
    assert!(
        registry.exists("plain", &old.digest),
        "deleted while refused"
    );
    assert!(fake.requests_to("garbage-collection").is_empty());
    releases.history.assert_kept_pullable(&registry);
}
