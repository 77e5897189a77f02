//! Issue 17: review a plan, then apply exactly that plan. On the real registry: `regsweep plan`
//! deletes nothing and writes the plan; what changed since (a tag pushed onto a planned digest,
//! a tag re-pointed away from one) is kept and reported by `regsweep apply`; the rest goes, and
//! every kept image stays pullable. A plan for another registry, a stale, edited or cut plan,
//! and a missing file are each refused with one line, exit 1, nothing deleted.

mod common;

use std::path::{Path, PathBuf};

use common::scenario::commit_tag;
use common::{Image, Pushed, Run, TestRegistry};

/// `app`: four hash-tagged images (two beyond `HASH_TAG_KEEP=2`) and `latest` pushed three
/// times (two untagged manifests left behind). The plan deletes four manifests.
struct Pushes {
    hashes: Vec<(String, Pushed)>,
    untagged: Vec<Pushed>,
    latest: Pushed,
}

fn push(registry: &TestRegistry) -> Pushes {
    let hashes = (0..4)
        .map(|i| {
            let tag = commit_tag(&format!("commit {i}"));
            let image = registry.push_image("app", Some(&tag), &Image::new(&tag, 40 - i));
            (tag, image)
        })
        .collect();
    let mut latest: Vec<Pushed> = (0..3)
        .map(|i| registry.push_image("app", Some("latest"), &Image::new(&format!("l{i}"), 20 - i)))
        .collect();
    let newest = latest.pop().unwrap();
    Pushes {
        hashes,
        untagged: latest,
        latest: newest,
    }
}

const POLICY: [(&str, &str); 1] = [("HASH_TAG_KEEP", "2")];

fn plan_path(registry: &TestRegistry) -> PathBuf {
    registry.storage().parent().unwrap().join("plan.json")
}

fn show(run: &Run) -> String {
    format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr)
}

fn plan(registry: &TestRegistry, path: &Path) -> Run {
    let run = registry.sweep_with(&POLICY, &["plan", "--out", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", show(&run));
    run
}

fn apply(registry: &TestRegistry, extra: &[(&str, &str)], path: &Path) -> Run {
    registry.sweep_with(extra, &["apply", path.to_str().unwrap()])
}

fn hash_line(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("plan:"))
        .unwrap_or_else(|| panic!("no plan hash in the report:\n{}", run.stdout))
        .trim()
        .to_string()
}

#[test]
fn apply_deletes_the_plan_less_what_changed_since_and_keeps_every_image_pullable() {
    let registry = TestRegistry::start();
    let pushed = push(&registry);
    let path = plan_path(&registry);
    let before = registry.storage_snapshot();

    let planned = plan(&registry, &path);
    assert!(
        registry.storage_snapshot() == before,
        "planning deleted something"
    );
    assert!(
        planned.stdout.contains("to delete:    4"),
        "{}",
        show(&planned)
    );
    assert!(
        planned.stderr.contains("plan written to"),
        "{}",
        show(&planned)
    );
    let hash = hash_line(&planned);
    assert!(hash.starts_with("plan:         sha256:"), "{hash}");

    // The file: registry, provider, policy, every decision with its reason, and each
    // deletion's digest, repository and tags.
    let text = std::fs::read_to_string(&path).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["format"], "regsweep-plan/1");
    assert_eq!(file["registry"], registry.url.as_str());
    assert_eq!(file["provider"], "distribution");
    assert_eq!(file["policy"]["hash_tag_keep"], 2);
    assert_eq!(
        format!("plan:         {}", file["hash"].as_str().unwrap()),
        hash
    );
    let oldest = &pushed.hashes[0];
    assert!(text.contains(oldest.1.digest.as_str()) && text.contains(&oldest.0));
    assert!(text.contains("\"reason\""), "decisions carry their reasons");

    // Since the plan: a tag pushed onto a planned untagged manifest, and the oldest hash tag
    // re-pointed to the newest image.
    let rescued = &pushed.untagged[0];
    registry.tag("app", &rescued.digest, "rescued");
    registry.tag("app", &pushed.hashes[3].1.digest, &oldest.0);

    let applied = apply(&registry, &[], &path);
    assert_eq!(applied.code, 0, "{}", show(&applied));
    assert_eq!(
        hash_line(&applied),
        hash,
        "apply reports the same plan hash"
    );
    for (digest, change) in [
        (
            &rescued.digest,
            "tag `rescued` was pushed onto it".to_string(),
        ),
        (
            &oldest.1.digest,
            format!("tag `{}` now points elsewhere", oldest.0),
        ),
    ] {
        let line = applied
            .stdout
            .lines()
            // The text report shows digests shortened to 12 hex digits.
            .find(|l| l.contains(&digest.as_str()[..19]) && l.contains("[skipped]"))
            .unwrap_or_else(|| panic!("{digest} not reported skipped:\n{}", applied.stdout));
        assert!(line.contains(&change), "{line}");
        assert!(registry.exists("app", digest), "{digest} was deleted");
    }
    assert!(
        applied.stdout.contains("skipped:      2"),
        "{}",
        show(&applied)
    );
    // The rest of the plan is gone.
    for gone in [&pushed.untagged[1].digest, &pushed.hashes[1].1.digest] {
        assert!(!registry.exists("app", gone), "{gone} was not deleted");
    }
    // Every kept image is pullable: tags, the rescued one, the one its tag left.
    let mut tags = vec!["latest".to_string(), "rescued".to_string()];
    tags.extend(pushed.hashes[2..].iter().map(|(t, _)| t.clone()));
    tags.push(oldest.0.clone());
    for tag in &tags {
        assert!(
            registry.pull_problems("app", tag).is_empty(),
            "app:{tag} broken"
        );
    }
    assert!(registry
        .pull_problems("app", oldest.1.digest.as_str())
        .is_empty());
    assert_eq!(
        registry.digest_of("app", "latest"),
        Some(pushed.latest.digest.clone())
    );
}

#[test]
fn the_mode_variable_does_what_the_subcommands_do() {
    let registry = TestRegistry::start();
    let pushed = push(&registry);
    let path = plan_path(&registry);
    let file = path.to_str().unwrap();
    let mut env = POLICY.to_vec();
    env.extend([("REGSWEEP_MODE", "plan"), ("REGSWEEP_PLAN", file)]);
    let planned = registry.sweep(&env);
    assert_eq!(planned.code, 0, "{}", show(&planned));
    assert!(path.exists());
    assert!(registry.exists("app", &pushed.untagged[0].digest));

    // A subcommand and a different mode: refused, not guessed.
    let mixed = registry.sweep_with(&[("REGSWEEP_MODE", "plan")], &["apply", file]);
    assert_eq!(mixed.code, 2, "{}", show(&mixed));
    assert!(registry.exists("app", &pushed.untagged[0].digest));

    let applied = registry.sweep(&[("REGSWEEP_MODE", "apply"), ("REGSWEEP_PLAN", file)]);
    assert_eq!(applied.code, 0, "{}", show(&applied));
    assert!(
        applied.stdout.contains("deleted:      4 of 4 planned"),
        "{}",
        show(&applied)
    );
    assert!(!registry.exists("app", &pushed.untagged[0].digest));
}

/// Refused: one line on stderr naming the problem, exit 1, the registry untouched.
fn assert_refused(
    registry: &TestRegistry,
    run: &Run,
    words: &str,
    untouched: &[(String, Vec<u8>)],
) {
    assert_eq!(run.code, 1, "{}", show(run));
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{}", run.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(words),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("nothing was deleted"), "{}", lines[0]);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        registry.storage_snapshot() == untouched,
        "something was deleted"
    );
}

#[test]
fn a_foreign_stale_edited_cut_or_missing_plan_is_refused_in_one_line() {
    let registry = TestRegistry::start();
    push(&registry);
    let path = plan_path(&registry);
    plan(&registry, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    let untouched = registry.storage_snapshot();
    let quiet = [("REGSWEEP_QUIET", "true")];

    // Another registry: the same plan, given a registry URL it was not made for.
    let other = TestRegistry::start();
    let mut env = vec![("REGISTRY_URL", other.url.as_str())];
    env.extend(quiet);
    let foreign = apply(&registry, &env, &path);
    assert_refused(
        &registry,
        &foreign,
        &format!("is a plan for registry `{}`", registry.url),
        &untouched,
    );

    // Older than REGSWEEP_PLAN_MAX_AGE.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stale = apply(
        &registry,
        &[("REGSWEEP_PLAN_MAX_AGE", "1s"), quiet[0]],
        &path,
    );
    assert_refused(
        &registry,
        &stale,
        "more than REGSWEEP_PLAN_MAX_AGE (1s)",
        &untouched,
    );

    // Edited: a deletion's decision turned into another digest; or a keep turned into a delete.
    let edited_path = path.with_file_name("edited.json");
    std::fs::write(&edited_path, text.replace("\"keep\"", "\"delete\"")).unwrap();
    assert_ne!(std::fs::read_to_string(&edited_path).unwrap(), text);
    let edited = apply(&registry, &quiet, &edited_path);
    assert_refused(
        &registry,
        &edited,
        "was changed since it was written",
        &untouched,
    );

    // Cut short, as by a failed upload.
    let cut_path = path.with_file_name("cut.json");
    std::fs::write(&cut_path, &text[..text.len() / 2]).unwrap();
    let cut = apply(&registry, &quiet, &cut_path);
    assert_refused(&registry, &cut, "is not a regsweep plan", &untouched);

    // Missing.
    let missing = apply(&registry, &quiet, &path.with_file_name("nowhere.json"));
    assert_refused(&registry, &missing, "cannot read the plan", &untouched);

    // And the untouched plan still applies.
    let applied = apply(&registry, &quiet, &path);
    assert_eq!(applied.code, 0, "{}", show(&applied));
}

/// Issue 25, defect 5: a reviewed plan deletes an image X, its SBOM R (subject X) and R's
/// signature R2 (subject R). X gains a tag before `apply`: X stays, so R stays with it, and so
/// must R2 (dropping follows referrer chains).
#[test]
fn a_kept_sbom_keeps_its_own_signature_when_a_plan_is_applied() {
    let registry = TestRegistry::start();
    let image = registry.push_image("app", None, &Image::new("old", 30));
    registry.push_image("app", Some("latest"), &Image::new("current", 1));
    let sbom = registry.push_referrer("app", &image, "application/spdx+json", "sbom");
    let sbom_signature = registry.push_referrer(
        "app",
        &sbom,
        "application/vnd.dev.sigstore.bundle+json",
        "sig",
    );
    let path = plan_path(&registry);
    let planned = plan(&registry, &path);
    assert!(
        planned.stdout.contains(&sbom_signature.digest.short()),
        "{}",
        show(&planned)
    );
    registry.tag("app", &image.digest, "pinned");
    let applied = apply(&registry, &POLICY, &path);
    for (what, pushed) in [
        ("image", &image),
        ("SBOM", &sbom),
        ("SBOM's signature", &sbom_signature),
    ] {
        assert!(
            registry.exists("app", &pushed.digest),
            "the {what} was deleted\n{}",
            show(&applied)
        );
    }
    assert!(registry.pull_problems("app", "pinned").is_empty());
}
