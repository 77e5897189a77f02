//! GitHub Container Registry: discovery, deletion and restore through the GitHub Packages API,
//! against a fake of that API (tests/common/ghcr.rs) backed by the real registry: the common
//! push history (multi-arch OCI and Docker lists, BuildKit attestations, cosign signatures,
//! SBOM referrers, overwritten tags) ends with every kept image fully pullable and every
//! doomed version gone; GitHub's own rule (the last tagged version) is reported as kept; a
//! restore puts the run's deletions back.

mod common;

use common::ghcr::{version_id, FakeGhcr, FakeGhcrOptions, POPULAR, TOKEN};
use common::scenario::{push_attested_releases_in, push_history_under};
use common::{regsweep, Image, Run, TestRegistry};

fn run(registry: &TestRegistry, fake: &FakeGhcr, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let env = fake.env(registry, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    regsweep(&env, args)
}

#[test]
fn versions_go_through_the_packages_api_and_every_kept_image_stays_whole() {
    let registry = TestRegistry::start();
    let history = push_history_under(&registry, "acme/");
    let releases = push_attested_releases_in(&registry, "acme/multi");
    // A package whose only tagged version is a signature of an untagged image: the plan
    // deletes both, GitHub keeps the last tagged version, and so the image stays with it.
    let lonely = registry.push_image("acme/lonely", None, &Image::new("lonely", 30));
    let signature = registry.push_signature("acme/lonely", &lonely.digest);
    let fake = FakeGhcr::start(
        &registry,
        FakeGhcrOptions {
            page_cap: 3,              // several pages of packages and versions
            throttle_delete: Some(2), // a secondary-limit 403 with retry-after mid-run
            ..FakeGhcrOptions::default()
        },
    );

    let dry = run(
        &registry,
        &fake,
        &[("DRY_RUN", "true"), ("REGSWEEP_LOG", "trace")],
        &[],
    );
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    assert!(fake
        .requests_to("")
        .iter()
        .all(|(method, _)| method == "GET"));
    for text in [&dry.stdout, &dry.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked at trace level");
    }

    let folder = tempfile::tempdir().unwrap();
    let report = folder.path().join("report.json");
    let real = run(
        &registry,
        &fake,
        &[("REGSWEEP_JSON_FILE", report.to_str().unwrap())],
        &[],
    );
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    history.assert_applied(&registry);
    releases.history.assert_applied(&registry);
    releases
        .history
        .assert_kept_resolve(&registry, &releases.tagged);
    // GitHub's rule keeps the last tagged version, reported as kept, not a failure.
    // The signed image waits with its signature: deleting it would leave a signature of
    // nothing.
    assert!(registry.exists("acme/lonely", &signature.digest));
    assert!(registry.exists("acme/lonely", &lonely.digest));
    assert!(
        real.stdout
            .contains(&format!("waits for {}", signature.digest.short())),
        "{}",
        real.stdout
    );
    assert!(
        real.stdout.contains(
            "the registry keeps it: You cannot delete the last tagged version of a package"
        ),
        "{}",
        real.stdout
    );
    // Pages followed, nested package names sent as %2F, the throttled DELETE retried, and no
    // avoidable rate-limit answer.
    assert!(!fake.requests_to("page=2").is_empty());
    assert!(!fake
        .requests_to("/orgs/acme/packages/container/team%2Fapp%2Fapi/versions")
        .is_empty());
    let state = fake.state.lock().unwrap();
    assert_eq!(state.scripted, 1);
    assert_eq!(state.over_limit, 0, "an avoidable secondary-limit answer");
    let deleted = state.deleted.clone();
    drop(state);
    // The JSON report names each deleted version's id.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let ids: Vec<u64> = json["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["manifests"].as_array().unwrap().iter())
        .filter(|m| m["outcome"]["outcome"] == "deleted")
        .map(|m| m["provider_id"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_deleted = deleted.clone();
    sorted_deleted.sort();
    assert_eq!(
        sorted_ids, sorted_deleted,
        "the report's deleted versions are the API's"
    );
    for (repository, digest) in &history.deleted {
        assert!(
            ids.contains(&version_id(digest.as_str())),
            "{repository}@{digest} not in the report's ids"
        );
    }

    // Restore undoes the run: every deleted version is back, with its tags.
    let restored = run(
        &registry,
        &fake,
        &[],
        &["restore", "--from", report.to_str().unwrap()],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    assert!(
        restored.stdout.contains(&format!(
            "restored: {} of {} deleted versions",
            deleted.len(),
            deleted.len()
        )),
        "{}",
        restored.stdout
    );
    for (repository, digest) in history.deleted.iter().chain(&releases.history.deleted) {
        assert!(
            registry.exists(repository, digest),
            "{repository}@{digest} not restored"
        );
    }
    for (repository, tag) in &history.deleted_tags {
        assert!(
            registry.tags(repository).contains(tag),
            "{repository}:{tag} not restored"
        );
    }
}

#[test]
fn a_user_s_packages_named_when_the_token_may_not_list_them() {
    let registry = TestRegistry::start();
    let old = registry.push_image("octo/app", Some("latest"), &Image::new("old", 3));
    registry.push_image("octo/app", Some("latest"), &Image::new("new", 1));
    let fake = FakeGhcr::start(
        &registry,
        FakeGhcrOptions {
            owner: "octo".into(),
            kind: "User".into(),
            listing_refused: true,
            ..FakeGhcrOptions::default()
        },
    );
    // A workflow token cannot list packages: one line saying what to do, nothing deleted.
    let refused = run(&registry, &fake, &[], &[]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot list the container packages of `octo`")
            && refused.stderr.contains("REGSWEEP_REPOSITORIES"),
        "{}",
        refused.stderr
    );
    assert!(registry.exists("octo/app", &old.digest));
    // Named: the user's paths, the old version gone, the new one whole.
    let named = run(&registry, &fake, &[("REGSWEEP_REPOSITORIES", "app")], &[]);
    assert_eq!(named.code, 0, "{}\n{}", named.stdout, named.stderr);
    assert!(!registry.exists("octo/app", &old.digest));
    assert!(registry.pull_problems("octo/app", "latest").is_empty());
    assert!(!fake
        .requests_to("/users/octo/packages/container/app/versions")
        .is_empty());
}

/// Issue 25, defect 4 (a refusal): GitHub refuses to delete a public version downloaded more
/// than 5,000 times. The image then stays, and the signature deleted before it (signatures go
/// first) is restored at once, so the image keeps it.
#[test]
fn a_signature_comes_back_when_github_keeps_its_image() {
    let registry = TestRegistry::start();
    let popular = registry.push_image("acme/app", Some("aaaaaaa1"), &Image::new("popular", 30));
    let signature = registry.push_signature("acme/app", &popular.digest);
    registry.push_image("acme/app", Some("bbbbbbb2"), &Image::new("new", 1));
    let fake = FakeGhcr::start(
        &registry,
        FakeGhcrOptions {
            popular: vec![popular.digest.to_string()],
            ..FakeGhcrOptions::default()
        },
    );
    let real = run(&registry, &fake, &[("HASH_TAG_KEEP", "1")], &[]);
    assert!(
        registry.exists("acme/app", &popular.digest),
        "{}",
        real.stdout
    );
    assert!(
        registry.exists("acme/app", &signature.digest),
        "the signature of an image GitHub keeps is gone\n{}",
        real.stdout
    );
    assert_eq!(
        registry.digest_of("acme/app", &format!("sha256-{}.sig", popular.digest.hex())),
        Some(signature.digest.clone())
    );
    assert!(real.stdout.contains(POPULAR), "{}", real.stdout);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
}

/// Issue 25, defect 8 (a lost answer): a DELETE whose answer is lost (504) is retried and
/// answered 404; the version is gone because of this run, so the run records it as deleted
/// and `regsweep restore` brings it back.
#[test]
fn a_delete_whose_answer_was_lost_is_restored_too() {
    let registry = TestRegistry::start();
    let old = registry.push_image("acme/app", Some("latest"), &Image::new("old", 3));
    registry.push_image("acme/app", Some("latest"), &Image::new("new", 1));
    let fake = FakeGhcr::start(
        &registry,
        FakeGhcrOptions {
            lost_delete_answers: 1,
            ..FakeGhcrOptions::default()
        },
    );
    let folder = tempfile::tempdir().unwrap();
    let report = folder.path().join("report.json");
    let real = run(
        &registry,
        &fake,
        &[
            ("REGSWEEP_JSON_FILE", report.to_str().unwrap()),
            ("REGSWEEP_RETRY_DELAY", "10ms"),
        ],
        &[],
    );
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    assert_eq!(fake.state.lock().unwrap().lost, 1);
    assert!(!registry.exists("acme/app", &old.digest));
    let restored = run(
        &registry,
        &fake,
        &[],
        &["restore", "--from", report.to_str().unwrap()],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    assert!(
        registry.exists("acme/app", &old.digest),
        "not restored\n{}",
        restored.stdout
    );
    assert_eq!(
        fake.state.lock().unwrap().restored,
        [version_id(old.digest.as_str())]
    );
}

/// Issue 25, defect 8 (a kill): the undo record is written as deletions happen (a line per
/// deleted version, fsynced), so a run killed half-way can still be undone.
#[test]
fn a_killed_run_can_still_be_undone_from_its_journal() {
    let registry = TestRegistry::start();
    let doomed: Vec<_> = (0..6)
        .map(|i| {
            registry.push_image(
                "acme/app",
                Some(&format!("aaaaaa{i:02}")),
                &Image::new(&format!("old {i}"), 30 + i),
            )
        })
        .collect();
    registry.push_image("acme/app", Some("latest"), &Image::new("new", 1));
    let fake = FakeGhcr::start(
        &registry,
        FakeGhcrOptions {
            delete_delay: Some(std::time::Duration::from_millis(400)),
            ..FakeGhcrOptions::default()
        },
    );
    let env = fake.env(
        &registry,
        &[("HASH_TAG_KEEP", "0"), ("REGSWEEP_CONCURRENCY", "1")],
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = common::spawn_regsweep(&env, &[]);
    let started = std::time::Instant::now();
    while fake.state.lock().unwrap().deleted.len() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no deletions"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let deleted = fake.state.lock().unwrap().deleted.clone();
    assert!(
        deleted.len() < doomed.len(),
        "the run finished before the kill"
    );
    let journal = fake.journal.clone();
    assert!(journal.exists(), "no journal at {}", journal.display());
    let restored = run(
        &registry,
        &fake,
        &[],
        &["restore", "--from", journal.to_str().unwrap()],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    let mut back = fake.state.lock().unwrap().restored.clone();
    back.sort();
    // Every version the fake deleted before the kill, except one whose DELETE was on the
    // wire when the kill came (deleted by GitHub, not yet known to regsweep).
    let mut expected = deleted.clone();
    expected.sort();
    assert!(
        back == expected
            || (back.len() + 1 == expected.len() && back.iter().all(|id| expected.contains(id))),
        "restored {back:?}, deleted {expected:?}\n{}",
        restored.stdout
    );
}

/// Issue 25: a version the Packages API lists but whose manifest the registry answers 404
/// for is not dropped in silence: the package is incomplete and nothing in it is deleted.
#[test]
fn a_listed_manifest_the_registry_does_not_have_leaves_the_package_untouched() {
    let registry = TestRegistry::start();
    let old = registry.push_image("acme/app", Some("latest"), &Image::new("old", 3));
    registry.push_image("acme/app", Some("latest"), &Image::new("new", 1));
    // A revision link whose manifest blob is missing: the fake lists it, the registry
    // answers 404 for it.
    let phantom = regsweep::model::Digest::sha256_of(b"a manifest nobody stored");
    registry.write_storage(
        &format!(
            "docker/registry/v2/repositories/acme/app/_manifests/revisions/sha256/{}/link",
            phantom.hex()
        ),
        phantom.as_str().as_bytes(),
    );
    let fake = FakeGhcr::start(&registry, FakeGhcrOptions::default());
    let real = run(&registry, &fake, &[], &[]);
    assert!(registry.exists("acme/app", &old.digest), "{}", real.stdout);
    assert!(fake.state.lock().unwrap().deleted.is_empty());
    assert!(
        real.stdout.contains(&phantom.to_string()) && real.stdout.contains("404"),
        "{}",
        real.stdout
    );
    assert_eq!(real.code, 3, "{}\n{}", real.stdout, real.stderr);
}
