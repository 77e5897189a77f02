//! Issue 26: retention policies on the real registry. One dataset with the tag conventions CI
//! systems write (tests/common/retention.rs) and one policy file: every tag kept, removed with
//! its manifest or removed from a manifest that stays, every manifest kept or deleted, every
//! kept image pullable, no throw-away manifest left. Then the policy file's checks: `regsweep
//! policy check`, mistakes at their line and column, a policy with HASH_TAG_* refused, a rule
//! that selects nothing warned of, and a reviewed plan that carries every tag's decision.

mod common;

use common::retention::{policy, push_conventions};
use common::{Image, TestRegistry};

fn write_policy(registry: &TestRegistry, text: &str) -> std::path::PathBuf {
    let path = registry.storage().parent().unwrap().join("policy.yml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_policy_per_tag_convention_keeps_removes_and_untags_exactly() {
    let registry = TestRegistry::start();
    let conventions = push_conventions(&registry, "");
    let path = write_policy(&registry, &policy(""));
    let path = path.to_str().unwrap();

    let dry = registry.sweep(&[("REGSWEEP_POLICY", path), ("DRY_RUN", "true")]);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    // Every tag's decision names its rule and why.
    for line in [
        "removed by \"pull requests\": 4th newest of pr-*, 25 days old (keeps 1, or younger than 14d)",
        "kept by \"pull requests\": 2nd newest of pr-*, 3 days old (keeps 1, or younger than 14d)",
        "removed by \"commits\": 5th newest of sha-*, 60 days old (keeps 2)",
        "removed by \"library versions\": 4th highest version of /^v?[0-9]+[.][0-9]+[.][0-9]+/ (version 1.0.1)",
        "removed by \"branches\": 3rd newest of group \"main\"",
        "removed by \"nightlies\": 3rd greatest tag of /^nightly-[0-9]{8}$/ (tag nightly-20261201)",
        "kept: no rule selects it",
        "by push time",
    ] {
        assert!(dry.stdout.contains(line), "missing {line:?}\n{}", dry.stdout);
    }
    assert!(dry.stdout.contains("DRY_RUN:"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(
            "1 repository not selected by the policy's `repositories`, left untouched: legacy/old"
        ),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("to untag:     1"), "{}", dry.stdout);

    let folder = tempfile::tempdir().unwrap();
    let report = folder.path().join("report.json");
    let real = registry.sweep(&[
        ("REGSWEEP_POLICY", path),
        ("REGSWEEP_JSON_FILE", report.to_str().unwrap()),
    ]);
    assert_eq!(real.code, 0, "{}\n{}", real.stdout, real.stderr);
    conventions.assert_applied(&registry, true, true);
    conventions.assert_no_throwaway_left(&registry);
    assert!(
        real.stdout.contains("[untagged]") && real.stdout.contains("sha-aaaaaa0"),
        "{}",
        real.stdout
    );
    assert!(
        real.stdout.contains("untagged:     1 of 1 planned"),
        "{}",
        real.stdout
    );
    assert!(real.stdout.contains("Verified: all"), "{}", real.stdout);
    // The JSON report has every tag's decision too.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let tags: Vec<&serde_json::Value> = json["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["manifests"].as_array().unwrap())
        .flat_map(|m| m["tags"].as_array().unwrap())
        .collect();
    let untagged = tags
        .iter()
        .find(|t| t["name"] == "sha-aaaaaa0")
        .expect("the untagged tag is in the report");
    assert_eq!(untagged["action"], "untag");
    assert_eq!(untagged["rule"], "commits");
    assert_eq!(untagged["untag"]["outcome"], "untagged");
    assert!(tags
        .iter()
        .filter(|t| t["kind"] != "attachment")
        .all(|t| t["why"].is_string()));
    assert!(json["policy"]["file"].is_string());

    // A second run finds nothing more to do.
    let again = registry.sweep(&[("REGSWEEP_POLICY", path)]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("deleted:      0 of 0 planned"),
        "{}",
        again.stdout
    );
    conventions.assert_applied(&registry, true, true);
}

#[test]
fn policy_check_and_mistakes_in_one_line_with_nothing_deleted() {
    let registry = TestRegistry::start();
    let old = registry.push_image("app", Some("pr-1"), &Image::new("old", 30));
    registry.push_image("app", Some("pr-2"), &Image::new("new", 1));
    let good = write_policy(&registry, &policy(""));
    let checked = common::regsweep(&[], &["policy", "check", good.to_str().unwrap()]);
    assert_eq!(checked.code, 0, "{}\n{}", checked.stdout, checked.stderr);
    assert!(
        checked
            .stdout
            .contains("rule 2 \"pull requests\": tags pr-*: keeps 1, or younger than 14d"),
        "{}",
        checked.stdout
    );

    let folder = tempfile::tempdir().unwrap();
    for (text, words) in [
        (
            "rules:\n  - tags: ['pr-*']\n    keeep: all\n",
            "line 3, column 5: unknown key `keeep`",
        ),
        (
            "rules:\n  - tags: ['/(/']\n    keep: all\n",
            "line 2, column 12",
        ),
        (
            "rules:\n  - keep: {newest: -3}\n",
            "line 2, column 20: rule `rule 1`: keep.newest: -3 is negative",
        ),
        (
            "rules:\n  - name: a\n    keep: all\n  - name: a\n    keep: none\n",
            "line 4, column 11: rule name `a` is used twice",
        ),
    ] {
        let path = folder.path().join("bad.yml");
        std::fs::write(&path, text).unwrap();
        let run = registry.sweep(&[("REGSWEEP_POLICY", path.to_str().unwrap())]);
        assert_eq!(run.code, 2, "{text:?}\n{}\n{}", run.stdout, run.stderr);
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(lines.len(), 1, "{}", run.stderr);
        assert!(
            lines[0].contains(&format!("policy `{}`, {words}", path.display())),
            "{text:?}: {}",
            lines[0]
        );
        let check = common::regsweep(&[], &["policy", "check", path.to_str().unwrap()]);
        assert_eq!(check.code, 2, "{}", check.stderr);
        assert!(
            registry.exists("app", &old.digest),
            "deleted after a bad policy"
        );
    }
    // A policy together with HASH_TAG_PATTERN or HASH_TAG_KEEP: refused, nothing deleted.
    for extra in [("HASH_TAG_KEEP", "3"), ("HASH_TAG_PATTERN", "^x$")] {
        let run = registry.sweep(&[("REGSWEEP_POLICY", good.to_str().unwrap()), extra]);
        assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&format!("{} is given too", extra.0)),
            "{}",
            run.stderr
        );
        assert!(registry.exists("app", &old.digest));
    }
    // Inline YAML (an Action input, a CI variable) works as a file does.
    let inline = "rules:\n  - name: pull requests\n    tags: ['pr-*']\n    keep: {newest: 1}\n  - name: typo\n    tags: ['nightlyy-*']\n    keep: none\n";
    let run = registry.sweep(&[("REGSWEEP_POLICY", inline)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!registry.exists("app", &old.digest));
    // A rule that selects no tag anywhere: a warning in the report.
    assert!(
        run.stdout
            .contains("rule `typo` of the policy selects no tag in any repository read"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_reviewed_plan_carries_every_tag_s_decision_and_apply_rechecks_untags() {
    let registry = TestRegistry::start();
    let release = registry.push_image("app", Some("v1"), &Image::new("release", 30));
    registry.tag("app", &release.digest, "sha-aaaaaa1");
    let moved = registry.push_image("app", Some("v2"), &Image::new("release 2", 20));
    registry.tag("app", &moved.digest, "sha-aaaaaa2");
    registry.push_image("app", Some("sha-aaaaaa3"), &Image::new("commit", 1));
    let path = write_policy(
        &registry,
        "rules:\n  - name: releases\n    tags: ['v*']\n    keep: all\n  - name: commits\n    tags: ['sha-*']\n    keep: {newest: 1}\n",
    );
    let plan_file = registry.storage().parent().unwrap().join("plan.json");
    let env = [("REGSWEEP_POLICY", path.to_str().unwrap())];
    let planned = registry.sweep_with(&env, &["plan", "--out", plan_file.to_str().unwrap()]);
    assert_eq!(planned.code, 0, "{}\n{}", planned.stdout, planned.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let tags: Vec<&serde_json::Value> = plan["plan"]["repositories"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(tags.len(), 5);
    assert!(tags
        .iter()
        .any(|t| t["tag"] == "sha-aaaaaa1" && t["action"] == "untag" && t["rule"] == "commits"));
    assert!(plan["policy"]["file"]["text"]
        .as_str()
        .unwrap()
        .contains("commits"));
    // Before apply, CI moves `sha-aaaaaa2` to the newest image: apply leaves it there.
    let newest = registry.digest_of("app", "sha-aaaaaa3").unwrap();
    registry.tag("app", &newest, "sha-aaaaaa2");
    let applied = registry.sweep_with(&env, &["apply", plan_file.to_str().unwrap()]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(registry.digest_of("app", "sha-aaaaaa1").is_none());
    assert_eq!(registry.digest_of("app", "sha-aaaaaa2"), Some(newest));
    assert_eq!(
        registry.digest_of("app", "v1"),
        Some(release.digest.clone())
    );
    assert!(
        applied.stdout.contains("sha-aaaaaa2")
            && applied.stdout.contains("pushed during the run): left"),
        "{}",
        applied.stdout
    );
}
