//! End-to-end: the real registry, a pushed history, the regsweep binary, and checks through the
//! registry's API that every kept tag is fully pullable and every planned deletion is gone.

mod common;

use common::scenario::{commit_tag, push_history};
use common::token::TokenServerOptions;
use common::{regsweep, Backend, Image, RegistryOptions, TestRegistry};
use regsweep::model::Digest;

/// Instantiates each scenario per storage kind and per authentication: the same pushes, the
/// same expectations, whether regsweep reads the registry's folder or its S3 bucket, and
/// whether the registry wants nothing or bearer tokens.
macro_rules! on_every_storage_kind {
    ($($scenario:ident),* $(,)?) => {
        mod filesystem {
            $(#[test] fn $scenario() { super::$scenario(super::RegistryOptions::default()) })*
        }
        mod s3 {
            $(#[test] fn $scenario() {
                super::$scenario(super::RegistryOptions {
                    backend: super::Backend::S3,
                    ..super::RegistryOptions::default()
                })
            })*
        }
        mod token_auth {
            $(#[test] fn $scenario() {
                super::$scenario(super::RegistryOptions {
                    token_auth: Some(super::TokenServerOptions::one_account()),
                    ..super::RegistryOptions::default()
                })
            })*
        }
    };
}

on_every_storage_kind!(
    real_run_deletes_the_plan_and_keeps_every_tag_pullable,
    dry_run_changes_nothing_and_shows_the_plan,
    repo_filter_touches_one_repository_only,
    hash_tag_keep_and_pattern_are_honoured,
    min_age_keeps_young_manifests,
    unreadable_manifest_leaves_its_repository_untouched,
    manifest_that_is_not_json_leaves_its_repository_untouched,
    corrupt_link_file_leaves_its_repository_untouched,
    json_output_carries_the_same_facts,
    config_without_created_is_ranked_by_push_time_and_noted,
    progress_goes_to_stderr_as_plain_lines_and_quiet_silences_it,
    tls_with_a_self_signed_certificate,
    deletion_disabled_explains_itself_and_exits_1,
);

fn real_run_deletes_the_plan_and_keeps_every_tag_pullable(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let history = push_history(&registry);

    let run = registry.sweep(&[]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    history.assert_applied(&registry);

    // The report names what it did, in the seed's format.
    let deleted_count = history.deleted.len();
    assert!(
        run.stdout
            .contains("Version-tagged manifests (always kept):"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("Hash-tagged manifests (keeping 10 most recent per repo):"));
    assert!(
        run.stdout.contains(&format!(
            "deleted:      {deleted_count} of {deleted_count} planned"
        )),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("Attachments kept because their target is not in the repository:"));
    assert!(run.stdout.contains(&format!(
        "registry garbage-collect {}",
        registry.config_path().display()
    )));
    assert!(run.stdout.contains("[deleted] sha256:"));
    assert!(!run.stdout.contains("DRY_RUN"));

    // A second run finds nothing more to do.
    let again = registry.sweep(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("deleted:      0 of 0 planned"),
        "{}",
        again.stdout
    );
    history.assert_applied(&registry);
}

fn dry_run_changes_nothing_and_shows_the_plan(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let history = push_history(&registry);
    let before = registry.storage_snapshot();

    for value in ["true", "TRUE", "1", "yes"] {
        let run = registry.sweep(&[("DRY_RUN", value)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("..not really, due to dry-run mode"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains(&format!("to delete:    {}", history.deleted.len())),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("  DRY_RUN: sha256:"));
    }
    assert!(
        registry.storage_snapshot() == before,
        "a dry run changed storage"
    );
    for (repository, digest) in &history.deleted {
        assert!(registry.exists(repository, digest));
    }
}

fn repo_filter_touches_one_repository_only(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let history = push_history(&registry);

    let run = registry.sweep(&[("REPO_FILTER", "team/app")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (repository, digest) in &history.deleted {
        assert_eq!(
            registry.exists(repository, digest),
            repository != "team/app",
            "{repository}@{digest}"
        );
    }
    assert!(run.stdout.contains("1 repository"), "{}", run.stdout);

    let missing = registry.sweep(&[("REPO_FILTER", "no/such/repo")]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("repository `no/such/repo` not found"),
        "{}",
        missing.stderr
    );
}

fn hash_tag_keep_and_pattern_are_honoured(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let repository = "svc";
    let mut pushed = Vec::new();
    for i in 0..5 {
        let tag = format!("build-{i}");
        let image = registry.push_image(repository, Some(&tag), &Image::new(&tag, 10 - i));
        pushed.push((tag, image));
    }
    registry.push_image(repository, Some("release"), &Image::new("release", 30));

    let run = registry.sweep(&[
        ("HASH_TAG_PATTERN", "^build-[0-9]+$"),
        ("HASH_TAG_KEEP", "2"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(registry.tags(repository), ["build-3", "build-4", "release"]);
    assert!(run.stdout.contains("keeping 2 most recent per repo"));
}

fn min_age_keeps_young_manifests(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let repository = "young";
    let old = registry.push_image(repository, Some("latest"), &Image::new("old", 3));
    registry.push_image(repository, Some("latest"), &Image::new("new", 0));
    // `old` was pushed seconds ago: a minimum age of one hour protects it.
    let run = registry.sweep(&[("REGSWEEP_MIN_AGE", "1h")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(registry.exists(repository, &old.digest));
    assert!(
        run.stdout
            .contains("Kept because they are younger than 1h:"),
        "{}",
        run.stdout
    );
    let run = registry.sweep(&[("REGSWEEP_MIN_AGE", "0s")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!registry.exists(repository, &old.digest));
}

fn deletion_disabled_explains_itself_and_exits_1(options: RegistryOptions) {
    let registry = TestRegistry::start_with(RegistryOptions {
        deletion_disabled: true,
        ..options
    });
    let history = push_history(&registry);
    let run = registry.sweep(&[]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(
            "deletion is disabled on this registry (set REGISTRY_STORAGE_DELETE_ENABLED=true)"
        ),
        "{}",
        run.stderr
    );
    for (repository, digest) in &history.deleted {
        assert!(registry.exists(repository, digest));
    }
}

#[test]
fn basic_auth_works_and_refusals_are_explained_without_the_password() {
    let password = "s3cret-Pa55word";
    let registry = TestRegistry::start_with(RegistryOptions {
        basic_auth: Some(("ci".into(), password.into())),
        ..RegistryOptions::default()
    });
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 3));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));

    let wrong = registry.sweep(&[("REGISTRY_AUTH", "ci:wrong-password")]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("401 Unauthorized for user `ci`"),
        "{}",
        wrong.stderr
    );
    assert!(wrong.stderr.contains("REGISTRY_AUTH"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("wrong-password") && !wrong.stdout.contains("wrong-password"));

    let base = registry.env();
    let anonymous: Vec<(&str, &str)> = base
        .iter()
        .filter(|(k, _)| *k != "REGISTRY_AUTH")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let run = regsweep(&anonymous, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("set REGISTRY_AUTH"), "{}", run.stderr);

    let run = registry.sweep(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!registry.exists("app", &old.digest));
    assert!(registry.pull_problems("app", "latest").is_empty());
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(password), "the password leaked: {text}");
    }
}

fn tls_with_a_self_signed_certificate(options: RegistryOptions) {
    let registry = TestRegistry::start_with(RegistryOptions {
        tls: true,
        ..options
    });
    let first = registry.push_image("app", Some("latest"), &Image::new("first", 3));
    let second = registry.push_image("app", Some("latest"), &Image::new("second", 2));
    registry.push_image("app", Some("latest"), &Image::new("third", 1));

    let untrusted = registry.sweep(&[]);
    assert_eq!(untrusted.code, 1);
    assert!(
        untrusted.stderr.contains("cannot reach registry"),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr
    );

    let certificate = registry.certificate.as_ref().unwrap().display().to_string();
    let run = registry.sweep(&[("REGSWEEP_CA_CERT", &certificate)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!registry.exists("app", &first.digest));

    registry.push_image("app", Some("latest"), &Image::new("fourth", 0));
    let run = registry.sweep(&[("SELF_SIGNED_CERT", "true")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!registry.exists("app", &second.digest));
    assert!(registry.pull_problems("app", "latest").is_empty());
}

fn unreadable_manifest_leaves_its_repository_untouched(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let broken_old = registry.push_image("broken", Some("latest"), &Image::new("broken old", 5));
    let broken_new = registry.push_image("broken", Some("latest"), &Image::new("broken new", 1));
    let fine_old = registry.push_image("fine", Some("latest"), &Image::new("fine old", 5));
    registry.push_image("fine", Some("latest"), &Image::new("fine new", 1));

    // Corrupt the stored manifest of the tagged image in `broken`: its content no longer
    // matches its digest, so regsweep cannot know what it references.
    let hex = broken_new.digest.hex();
    registry.write_storage(
        &format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]),
        b"{ not a manifest",
    );

    let run = registry.sweep(&[]);
    assert_eq!(
        run.code, 3,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(registry.exists("broken", &broken_old.digest), "fail closed");
    assert!(!registry.exists("fine", &fine_old.digest));
    assert!(run
        .stdout
        .contains("Repositories left untouched because they could not be read completely:"));
    assert!(
        run.stdout.contains("content does not match its digest"),
        "{}",
        run.stdout
    );
}

fn manifest_that_is_not_json_leaves_its_repository_untouched(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 5));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    // A revision whose blob is not JSON (but matches its digest), written behind the API.
    let garbage = b"this is not a manifest";
    let digest = Digest::sha256_of(garbage);
    let hex = digest.hex();
    registry.write_storage(
        &format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]),
        garbage,
    );
    registry.write_storage(
        &format!("docker/registry/v2/repositories/app/_manifests/revisions/sha256/{hex}/link"),
        digest.as_str().as_bytes(),
    );

    let run = registry.sweep(&[]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("manifest `{digest}`: manifest is not valid JSON")),
        "{}",
        run.stdout
    );
    assert!(registry.exists("app", &old.digest), "fail closed");
}

fn corrupt_link_file_leaves_its_repository_untouched(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let old = registry.push_image("app", Some("latest"), &Image::new("old", 5));
    registry.push_image("app", Some("latest"), &Image::new("new", 1));
    let link = format!(
        "docker/registry/v2/repositories/app/_manifests/revisions/sha256/{}/link",
        old.digest.hex()
    );
    registry.write_storage(&link, b"garbage");
    let run = registry.sweep(&[]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.contains("is not a digest"), "{}", run.stdout);
    registry.write_storage(&link, old.digest.as_str().as_bytes());
    assert!(registry.exists("app", &old.digest));
}

fn json_output_carries_the_same_facts(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let history = push_history(&registry);
    let run = registry.sweep(&[("REGSWEEP_OUTPUT", "json"), ("DRY_RUN", "true")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["totals"]["planned_deletions"], history.deleted.len());
    assert_eq!(report["totals"]["deleted"], 0);
    let planned: std::collections::BTreeSet<(String, String)> = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let name = r["name"].as_str().unwrap().to_string();
            r["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["action"] == "delete")
                .map(move |m| (name.clone(), m["digest"].as_str().unwrap().to_string()))
        })
        .collect();
    let expected: std::collections::BTreeSet<(String, String)> = history
        .deleted
        .iter()
        .map(|(r, d)| (r.clone(), d.to_string()))
        .collect();
    assert_eq!(planned, expected);

    let markdown = registry.sweep(&[("REGSWEEP_OUTPUT", "markdown"), ("DRY_RUN", "true")]);
    assert_eq!(markdown.code, 0);
    assert!(
        markdown.stdout.starts_with("## regsweep: "),
        "{}",
        markdown.stdout
    );
}

#[test]
fn a_seed_user_changes_nothing_but_the_binary() {
    // The seed README's variables, as its examples pass them (trailing slash, string booleans).
    let registry = TestRegistry::start();
    let old = registry.push_image("myapp", Some("latest"), &Image::new("old", 5));
    registry.push_image("myapp", Some("latest"), &Image::new("new", 1));
    let tag = commit_tag("seed");
    registry.push_image("myapp", Some(&tag), &Image::new("seed", 2));
    let url = format!("{}/", registry.url);
    let dir = registry.storage().display().to_string();
    let run = regsweep(
        &[
            ("REGISTRY_URL", &url),
            ("REGISTRY_DIR", &dir),
            ("DRY_RUN", "true"),
            ("REPO_FILTER", "myapp"),
            ("HASH_TAG_PATTERN", "^[0-9a-f]{8}$"),
            ("HASH_TAG_KEEP", "5"),
            ("SELF_SIGNED_CERT", "false"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("tag={tag}")), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("DRY_RUN: {}", old.digest.short())),
        "{}",
        run.stdout
    );
}

#[test]
fn a_seed_user_of_s3_storage_changes_nothing_but_the_binary() {
    // The seed README's S3 variables, with the SDK's standard AWS_ENDPOINT_URL for the local
    // endpoint (path-style addressing follows from a custom endpoint).
    let registry = TestRegistry::start_on(Backend::S3);
    let old = registry.push_image("myapp", Some("latest"), &Image::new("old", 5));
    registry.push_image("myapp", Some("latest"), &Image::new("new", 1));
    let endpoint = registry.s3.as_ref().unwrap().url.clone();
    let root = format!("/{}", common::s3::ROOT);
    let run = regsweep(
        &[
            ("REGISTRY_URL", &registry.url),
            ("REGISTRY_STORAGE", "S3"),
            ("ACCESS_KEY", common::s3::ACCESS_KEY),
            ("SECRET_KEY", common::s3::SECRET_KEY),
            ("BUCKET", common::s3::BUCKET),
            ("REGION", common::s3::REGION),
            ("REGISTRY_DIR", &root),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("DRY_RUN", "false"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!registry.exists("myapp", &old.digest));
    assert!(registry.pull_problems("myapp", "latest").is_empty());
}

#[test]
fn s3_listings_follow_every_page() {
    // 1,200 tags in one folder: more than one ListObjectsV2 page (1,000 keys at most).
    let registry = TestRegistry::start_on(Backend::S3);
    let image = registry.push_image("app", Some("v0"), &Image::new("one", 1));
    for i in 1..1200 {
        registry.write_storage(
            &format!("docker/registry/v2/repositories/app/_manifests/tags/v{i}/current/link"),
            image.digest.as_str().as_bytes(),
        );
    }
    let run = registry.sweep(&[("DRY_RUN", "true"), ("REGSWEEP_OUTPUT", "json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tags = report["repositories"][0]["manifests"][0]["tags"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tags, 1200);
}

#[test]
fn s3_discovery_reads_no_link_and_each_blob_once() {
    // Issue 16: link files are proved by their listed ETag (the MD5 of `sha256:<hex>`), not
    // read; a manifest stored in two repositories and a config shared by many images are each
    // read once; untagged images' configs not at all. Plus a corrupt tag link, which its
    // ETag cannot prove: read, and reported.
    let registry = TestRegistry::start_on(Backend::S3);
    let history = push_history(&registry);
    // One image, byte for byte, in two repositories.
    let config = br#"{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z"}"#;
    let copies = ["copies/a", "copies/b"].map(|repository| {
        let layer = registry.push_blob(repository, b"a shared layer");
        let config_digest = registry.push_blob(repository, config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer.to_string(), "size": 14}],
        });
        registry.put_manifest(
            repository,
            Some("v1"),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
    });
    assert_eq!(copies[0].digest, copies[1].digest);
    // 1,100 tags of one image in a single repository: a listing split into key ranges.
    let many = registry.push_image("many", Some("v0"), &Image::new("many", 2));
    for i in 1..1100 {
        let tag = match i % 4 {
            0 => format!("A{i}"),
            1 => format!("_{i}"),
            2 => format!("{i}"),
            _ => format!("z{i}"),
        };
        registry.write_storage(
            &format!("docker/registry/v2/repositories/many/_manifests/tags/{tag}/current/link"),
            many.digest.as_str().as_bytes(),
        );
    }
    let s3 = registry.s3.as_ref().unwrap();
    let before = s3.requests().len();
    let run = registry.sweep(&[("DRY_RUN", "true"), ("REGSWEEP_OUTPUT", "json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests: Vec<String> = s3.requests().split_off(before);
    let link_reads: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.split('?').next().unwrap().ends_with("/link"))
        .collect();
    assert!(link_reads.is_empty(), "link files read: {link_reads:?}");
    let blob_reads: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.split('?').next().unwrap().ends_with("/data"))
        .collect();
    let distinct: std::collections::HashSet<&&String> = blob_reads.iter().collect();
    assert_eq!(distinct.len(), blob_reads.len(), "a blob read twice");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let manifests = report["totals"]["manifests"].as_u64().unwrap() as usize;
    // Fewer blob reads than manifests plus their configs: shared blobs once, untagged
    // images' configs skipped.
    assert!(
        blob_reads.len() < manifests * 2,
        "{} blob reads",
        blob_reads.len()
    );
    let many_tags = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "many")
        .unwrap()["manifests"][0]["tags"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(many_tags, 1100, "every tag of the split listing found once");
    // The same facts as from the filesystem would give: the plan deletes what it must.
    assert_eq!(
        report["totals"]["planned_deletions"].as_u64().unwrap() as usize,
        history.deleted.len()
    );

    // A corrupt tag link: its ETag proves nothing, so it is read, and is a problem.
    registry.write_storage(
        "docker/registry/v2/repositories/copies/a/_manifests/tags/v1/current/link",
        b"sha256:not-a-digest",
    );
    let before = s3.requests().len();
    let run = registry.sweep(&[("DRY_RUN", "true")]);
    let requests: Vec<String> = s3.requests().split_off(before);
    assert!(
        requests.iter().any(|r| r.starts_with("GET ")
            && r.split('?')
                .next()
                .unwrap()
                .ends_with("copies/a/_manifests/tags/v1/current/link")),
        "{requests:?}"
    );
    assert!(
        run.stdout.contains("tag `v1`") && run.stdout.contains("copies/a"),
        "{}",
        run.stdout
    );
}

#[test]
fn report_files_are_written_besides_stdout() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let folder = tempfile::tempdir().unwrap();
    let markdown = folder.path().join("report.md");
    let json = folder.path().join("report.json");
    let run = registry.sweep(&[
        ("DRY_RUN", "true"),
        ("REGSWEEP_MARKDOWN_FILE", markdown.to_str().unwrap()),
        ("REGSWEEP_JSON_FILE", json.to_str().unwrap()),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Totals:"),
        "stdout keeps the text report"
    );
    let markdown = std::fs::read_to_string(markdown).unwrap();
    assert!(markdown.starts_with(&format!(
        "## regsweep: {} manifests to delete",
        history.deleted.len()
    )));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(json["totals"]["planned_deletions"], history.deleted.len());
}

#[test]
fn digest_helper_matches_registry() {
    // Guards the test harness itself: the digest we compute is the one the registry stores.
    let registry = TestRegistry::start();
    let pushed = registry.push_image("x", Some("t"), &Image::new("x", 1));
    assert!(registry.exists("x", &pushed.digest));
    assert!(!registry.exists("x", &Digest::sha256_of(b"nope")));
}

fn config_without_created_is_ranked_by_push_time_and_noted(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let mut image = Image::new("undated", 0);
    image.created = None;
    let undated = registry.push_image("app", Some(&commit_tag("undated")), &image);
    let run = registry.sweep(&[("DRY_RUN", "true")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "manifest `{}`: its config has no `created`; ranked by the time it was pushed",
            undated.digest
        )),
        "{}",
        run.stdout
    );
    // The push time stands in for the date: today.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        run.stdout.contains(&format!("created={today}")),
        "{}",
        run.stdout
    );
}

fn progress_goes_to_stderr_as_plain_lines_and_quiet_silences_it(options: RegistryOptions) {
    let registry = TestRegistry::start_with(options);
    let history = push_history(&registry);
    let run = registry.sweep(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let total: usize = history.kept_tags.len();
    // Not a terminal here: one plain line per phase, nothing that redraws.
    for prefix in [
        "discover: 4/4 repositories in ",
        "read: 39/39 manifests in ",
        "delete: 11/11 manifests in ",
    ] {
        assert!(
            run.stderr.contains(prefix),
            "no `{prefix}` in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains(&format!("verify: {total}/{total} tags in ")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\r'), "a plain log must not redraw");
    assert!(
        !run.stdout.contains("manifests in "),
        "progress never goes to stdout"
    );

    let quiet = registry.sweep(&[("REGSWEEP_QUIET", "true"), ("DRY_RUN", "true")]);
    assert_eq!(quiet.code, 0);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
}
