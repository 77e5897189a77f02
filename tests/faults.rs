//! Faults, races, interruptions and limits, against the real registry: through a fault-
//! injecting proxy, a cleanup never breaks a kept image, and a second run always reaches the
//! state of a fault-free run.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Fault, FaultProxy, Rule};
use common::scenario::{push_churn, push_history};
use common::{finish, Image, TestRegistry};

fn quick(proxy: &FaultProxy) -> Vec<(&'static str, String)> {
    vec![
        ("REGISTRY_URL", proxy.url.clone()),
        ("REGSWEEP_RETRY_DELAY", "5ms".into()),
        ("REGSWEEP_HTTP_ATTEMPTS", "3".into()),
        ("REGSWEEP_HTTP_TIMEOUT", "2s".into()),
    ]
}

fn set(env: &mut Vec<(&'static str, String)>, key: &'static str, value: &str) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value.to_string()));
}

fn as_env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn seeded_faults_never_break_an_image_and_a_second_run_finishes() {
    for seed in [7_u64, 1234, 99_999] {
        let registry = TestRegistry::start();
        let history = push_history(&registry);
        let proxy = FaultProxy::start(&registry.url, seed);
        // A quarter of all requests fail in one of five ways.
        for fault in [
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            Fault::TooManyRequests(0),
            Fault::Drop,
        ] {
            proxy.add_rule(Rule {
                fraction: 0.06,
                ..Rule::always(fault)
            });
        }
        let env = quick(&proxy);
        let faulty = registry.sweep(&as_env(&env));
        assert!(
            [0, 1, 3].contains(&faulty.code),
            "seed {seed}: exit {}\n{}\n{}",
            faulty.code,
            faulty.stdout,
            faulty.stderr
        );
        assert!(
            proxy.faults_injected() > 0,
            "seed {seed}: no fault was injected"
        );
        history.assert_kept_pullable(&registry);

        proxy.clear_rules();
        let clean = registry.sweep(&as_env(&env));
        assert_eq!(
            clean.code, 0,
            "seed {seed}: {}\n{}",
            clean.stdout, clean.stderr
        );
        history.assert_applied(&registry);
    }
}

#[test]
fn an_image_whose_signature_could_not_be_deleted_waits_for_the_next_run() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    // `latest` v1 is deleted with its signature; make deleting the signature fail.
    let (repository, signature_tag) = history
        .deleted_tags
        .iter()
        .find(|(_, tag)| tag.ends_with(".sig"))
        .cloned()
        .expect("the history deletes a signed image");
    let signed = format!(
        "sha256:{}",
        &signature_tag["sha256-".len()..64 + "sha256-".len()]
    );
    let signed: regsweep::model::Digest = signed.parse().unwrap();
    let signature = registry
        .digest_of(&repository, &signature_tag)
        .expect("the signature is tagged");
    let proxy = FaultProxy::start(&registry.url, 1);
    proxy.add_rule(Rule {
        method: Some("DELETE".into()),
        path_contains: Some(signature.hex().to_string()),
        ..Rule::always(Fault::Status(500))
    });
    let env = quick(&proxy);
    let faulty = registry.sweep(&as_env(&env));
    assert_eq!(faulty.code, 3, "{}\n{}", faulty.stdout, faulty.stderr);
    // The signed image stays until its signature is gone: deleting it first would leave a
    // signature without its image, which every later run keeps.
    assert!(registry.exists(&repository, &signed), "{}", faulty.stdout);
    assert!(registry.exists(&repository, &signature));
    assert!(
        faulty
            .stdout
            .contains(&format!("waits for {}", signature.short())),
        "{}",
        faulty.stdout
    );
    assert!(
        faulty.stdout.contains("held back:    1"),
        "{}",
        faulty.stdout
    );
    history.assert_kept_pullable(&registry);

    proxy.clear_rules();
    let clean = registry.sweep(&as_env(&env));
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    history.assert_applied(&registry);
}

#[test]
fn stalled_and_dropped_deletes_are_retried() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let proxy = FaultProxy::start(&registry.url, 1);
    proxy.add_rule(Rule {
        method: Some("DELETE".into()),
        times: Some(1),
        ..Rule::always(Fault::Stall(Duration::from_secs(4)))
    });
    proxy.add_rule(Rule {
        method: Some("DELETE".into()),
        times: Some(2),
        ..Rule::always(Fault::Drop)
    });
    proxy.add_rule(Rule {
        method: Some("DELETE".into()),
        times: Some(2),
        ..Rule::always(Fault::Status(503))
    });
    let mut env = quick(&proxy);
    set(&mut env, "REGSWEEP_HTTP_ATTEMPTS", "5");
    set(&mut env, "REGSWEEP_HTTP_TIMEOUT", "1s");
    let run = registry.sweep(&as_env(&env));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(proxy.faults_injected(), 5);
    history.assert_applied(&registry);
}

#[test]
fn a_tag_pushed_between_plan_and_apply_survives() {
    let registry = TestRegistry::start();
    let repository = "race";
    // `old` is the untagged child of an untagged index: it is deleted in a later batch than
    // the index, so a tag pushed when the first DELETE arrives is seen before it goes.
    let old = registry.push_image(repository, None, &Image::new("old child", 9));
    registry.push_index(
        repository,
        Some("latest"),
        &[(&old, Some(("amd64", None)))],
        false,
    );
    let new = registry.push_image(repository, None, &Image::new("new child", 1));
    registry.push_index(
        repository,
        Some("latest"),
        &[(&new, Some(("amd64", None)))],
        false,
    );

    let proxy = FaultProxy::start(&registry.url, 1);
    let pause = proxy.pause_at_first_delete();
    let env = quick(&proxy);
    let child = registry.spawn_sweep(&as_env(&env));
    pause.wait_for_first_delete();
    registry.tag(repository, &old.digest, "hotfix");
    pause.release();
    let run = finish(child);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        registry.exists(repository, &old.digest),
        "the raced tag lost its image"
    );
    assert!(registry.pull_problems(repository, "hotfix").is_empty());
    assert!(
        run.stdout.contains("tag `hotfix` pushed during the run"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("skipped:      1"), "{}", run.stdout);
}

#[test]
fn an_index_pushed_during_the_run_protects_the_manifests_it_lists() {
    let registry = TestRegistry::start();
    let repository = "race";
    // `orphan` is untagged and signed: the signature goes first, then `orphan`.
    let orphan = registry.push_image(repository, None, &Image::new("orphan", 9));
    registry.push_signature(repository, &orphan.digest);
    registry.push_image(repository, Some("latest"), &Image::new("current", 1));

    let proxy = FaultProxy::start(&registry.url, 1);
    let pause = proxy.pause_at_first_delete();
    let env = quick(&proxy);
    let child = registry.spawn_sweep(&as_env(&env));
    pause.wait_for_first_delete();
    registry.push_index(
        repository,
        Some("rescue"),
        &[(&orphan, Some(("amd64", None)))],
        false,
    );
    pause.release();
    let run = finish(child);

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        registry.exists(repository, &orphan.digest),
        "the new index lost its child"
    );
    assert!(registry.pull_problems(repository, "rescue").is_empty());
    assert!(
        run.stdout.contains("pushed during the run"),
        "{}",
        run.stdout
    );
}

fn wait_for_deletes(proxy: &FaultProxy, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.count("DELETE") < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} DELETEs after 120 s",
            proxy.count("DELETE")
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn sigterm_and_sigint_stop_new_deletions_and_print_a_partial_report() {
    for name in ["TERM", "INT"] {
        interrupted_run_prints_a_partial_report(name);
    }
}

fn interrupted_run_prints_a_partial_report(name: &str) {
    let registry = TestRegistry::start();
    let churn = push_churn(&registry, 1, 20);
    let proxy = FaultProxy::start(&registry.url, 1);
    proxy.slow_deletes(Duration::from_millis(100));
    let mut env = quick(&proxy);
    set(&mut env, "REGSWEEP_CONCURRENCY", "1");
    let child = registry.spawn_sweep(&as_env(&env));
    wait_for_deletes(&proxy, 3);
    signal(&child, name);
    let run = finish(child);

    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Stopped: interrupted"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[not deleted]"), "{}", run.stdout);
    assert!(run.stderr.contains("stopping"), "{}", run.stderr);
    churn.history.assert_kept_pullable(&registry);

    proxy.slow_deletes(Duration::ZERO);
    let again = registry.sweep(&as_env(&quick(&proxy)));
    assert_eq!(again.code, 0, "{}", again.stderr);
    churn.history.assert_applied(&registry);
}

#[test]
fn killed_at_any_point_a_rerun_ends_in_the_fault_free_state() {
    let registry = TestRegistry::start();
    let churn = push_churn(&registry, 3, 30);
    assert!(churn.history.deleted.len() > 300);
    let proxy = FaultProxy::start(&registry.url, 1);
    proxy.slow_deletes(Duration::from_millis(3));
    let mut env = quick(&proxy);
    set(&mut env, "REGSWEEP_CONCURRENCY", "4");

    for kill_after in [1, 25, 90, 200] {
        let before = proxy.count("DELETE");
        let mut child = registry.spawn_sweep(&as_env(&env));
        wait_for_deletes(&proxy, before + kill_after);
        signal(&child, "KILL");
        let _ = child.wait();
        // Never an index pointing at a missing child, whatever was deleted so far.
        for (repository, index, children) in &churn.indexes {
            if registry.exists(repository, index) {
                for child in children {
                    assert!(
                        registry.exists(repository, child),
                        "killed after {kill_after}: index {index} lost child {child}"
                    );
                }
            }
        }
        churn.history.assert_kept_pullable(&registry);
    }
    proxy.slow_deletes(Duration::ZERO);
    let run = registry.sweep(&as_env(&env));
    assert_eq!(run.code, 0, "{}", run.stderr);
    churn.history.assert_applied(&registry);
}

#[test]
fn max_delete_refuses_a_big_plan_and_still_shows_it() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let planned = history.deleted.len();
    let run = registry.sweep(&[("REGSWEEP_MAX_DELETE", "2")]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "refusing to delete {planned} manifests: more than REGSWEEP_MAX_DELETE=2"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("[not deleted]"));
    for (repository, digest) in &history.deleted {
        assert!(registry.exists(repository, digest));
    }
    let limit = planned.to_string();
    let run = registry.sweep(&[("REGSWEEP_MAX_DELETE", &limit)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    history.assert_applied(&registry);
}

#[test]
fn verification_fails_loudly_when_a_kept_tag_is_broken() {
    let registry = TestRegistry::start();
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 5));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let broken = registry.push_image("app", Some("v1"), &Image::new("broken", 3));
    // Remove the layer of `v1` from the blob store behind the registry's back.
    let response: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(registry.storage().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &broken.digest.hex()[..2],
            broken.digest.hex()
        )))
        .unwrap(),
    )
    .unwrap();
    let layer = response["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::remove_dir_all(registry.storage().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{layer}",
        &layer[..2]
    )))
    .unwrap();

    let run = registry.sweep(&[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(!registry.exists("app", &old.digest));
    assert!(run.stdout.contains("VERIFICATION FAILED"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("BROKEN `app:v1`: blob `sha256:{layer}` not found")),
        "{}",
        run.stdout
    );

    let unverified = registry.sweep(&[("REGSWEEP_VERIFY", "false")]);
    assert_eq!(unverified.code, 0, "{}", unverified.stderr);
}

/// Issue 25, defect 4 (a race): signatures go before their image, and a signature's own
/// re-check once looked at its own tags only. When the image it belongs to gains a tag during
/// the run (it is then kept as raced), the signature must stay with it: it is held.
#[test]
fn a_signature_waits_while_its_image_may_still_stay() {
    let registry = TestRegistry::start();
    // First in the run's order (repositories by name): an unrelated deletion, where the run
    // is paused while CI tags the signed image.
    let unrelated = registry.push_image("a/other", None, &Image::new("unrelated", 30));
    registry.push_image("a/other", Some("latest"), &Image::new("current", 1));
    let signed = registry.push_image("b/app", Some("aaaaaaa1"), &Image::new("old", 30));
    let signature = registry.push_signature("b/app", &signed.digest);
    registry.push_image("b/app", Some("bbbbbbb2"), &Image::new("new", 1));
    let proxy = FaultProxy::start(&registry.url, 1);
    let pause = proxy.pause_at_first_delete();
    let mut env = quick(&proxy);
    set(&mut env, "HASH_TAG_KEEP", "1");
    set(&mut env, "REGSWEEP_CONCURRENCY", "1");
    let child = registry.spawn_sweep(&as_env(&env));
    pause.wait_for_first_delete();
    registry.tag("b/app", &signed.digest, "release-candidate");
    pause.release();
    let run = finish(child);
    assert!(
        !registry.exists("a/other", &unrelated.digest),
        "{}",
        run.stdout
    );
    assert!(registry.exists("b/app", &signed.digest), "{}", run.stdout);
    assert!(
        registry.exists("b/app", &signature.digest),
        "the signature of an image that stays was deleted\n{}",
        run.stdout
    );
    assert!(registry
        .pull_problems("b/app", "release-candidate")
        .is_empty());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}
