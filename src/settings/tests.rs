//! Settings from flags: every input validated, every error one line naming it.

use std::path::Path;

use chrono::Duration;
use clap::Parser;
use secrecy::ExposeSecret;

/// Settings from a command line, as `main` reads it: a refused value is the same one-line
/// error as a refused combination.
fn from_args(args: &[&str]) -> Result<Settings, SettingsError> {
    match parse_command_line(args) {
        Ok(cli) => Settings::from_cli(&cli),
        Err(CommandLineError::Input(error)) => Err(error),
        Err(CommandLineError::Clap(error)) => panic!("{args:?}: {error}"),
    }
}

use super::*;
use crate::providers::distribution::layout::LAYOUT_ROOT;

fn storage_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(LAYOUT_ROOT)).unwrap();
    dir
}

fn settings(args: &[&str]) -> Result<Settings, SettingsError> {
    let dir = storage_dir();
    let mut argv = vec!["regsweep", "--registry-dir", dir.path().to_str().unwrap()];
    argv.extend_from_slice(args);
    from_args(&argv)
}

#[test]
fn booleans_as_ci_writes_them() {
    for (text, expected) in [
        ("true", Some(true)),
        ("TRUE", Some(true)),
        ("Yes", Some(true)),
        ("1", Some(true)),
        ("false", Some(false)),
        ("No", Some(false)),
        ("0", Some(false)),
        ("", Some(false)),
        ("maybe", None),
    ] {
        assert_eq!(parse_bool(text), expected, "{text}");
    }
    let s = settings(&["--registry-url", "http://r", "--dry-run"]).unwrap();
    assert!(s.dry_run);
    let s = settings(&["--registry-url", "http://r", "--dry-run", "NO"]).unwrap();
    assert!(!s.dry_run);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0").unwrap(), Duration::zero());
    assert_eq!(parse_duration("0s").unwrap(), Duration::zero());
    assert_eq!(parse_duration("2h").unwrap(), Duration::hours(2));
    assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
    assert_eq!(parse_duration("1h 30m").unwrap(), Duration::minutes(90));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("-1h").is_err());
}

#[test]
fn each_bad_input_names_itself() {
    let cases: [(&[&str], &str); 10] = [
        (&[], "REGISTRY_URL"),
        (&["--registry-url", "registry:5000/x y"], "REGISTRY_URL"),
        (&["--registry-url", "ftp://r"], "REGISTRY_URL"),
        (
            &["--registry-url", "http://r", "--hash-tag-pattern", "["],
            "HASH_TAG_PATTERN",
        ),
        (
            &["--registry-url", "http://r", "--hash-tag-keep", "-1"],
            "HASH_TAG_KEEP",
        ),
        (
            &["--registry-url", "http://r", "--min-age", "soon"],
            "REGSWEEP_MIN_AGE",
        ),
        (
            &["--registry-url", "http://r", "--concurrency", "0"],
            "REGSWEEP_CONCURRENCY",
        ),
        (
            &["--registry-url", "http://r", "--output", "yaml"],
            "REGSWEEP_OUTPUT",
        ),
        (
            &["--registry-url", "http://r", "--repo-filter", "My App"],
            "REPO_FILTER",
        ),
        (
            &["--registry-url", "http://r", "--registry-auth", "nocolon"],
            "REGISTRY_AUTH",
        ),
    ];
    for (args, input) in cases {
        let error = settings(args).expect_err(&format!("{args:?} accepted"));
        assert_eq!(error.input, input, "{args:?}");
        let text = error.to_string();
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert!(text.contains(input), "{text}");
    }
}

#[test]
fn registry_dir_must_be_registry_storage() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::try_parse_from([
        "regsweep",
        "--registry-url",
        "http://r",
        "--registry-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let error = Settings::from_cli(&cli).unwrap_err();
    assert_eq!(error.input, "REGISTRY_DIR");
    assert!(error.problem.contains("not registry storage"), "{error}");
}

/// Settings from exactly `args` (no storage folder added).
fn bare(args: &[&str]) -> Result<Settings, SettingsError> {
    let mut argv = vec!["regsweep", "--registry-url", "http://r"];
    argv.extend_from_slice(args);
    from_args(&argv)
}

#[test]
fn the_discovery_source() {
    let dir = storage_dir();
    let path = dir.path().to_str().unwrap();
    assert!(matches!(
        bare(&["--registry-dir", path]).unwrap().source,
        Source::Filesystem(_)
    ));
    assert!(matches!(
        bare(&["--registry-dir", path, "--registry-storage", "Filesystem"])
            .unwrap()
            .source,
        Source::Filesystem(_)
    ));
    // Storage given, API asked for: the API wins, by request.
    assert!(matches!(
        bare(&["--registry-dir", path, "--source", "API"])
            .unwrap()
            .source,
        Source::Api(_)
    ));
    // Nothing given (and no /registry here): the API, with the reason.
    if !Path::new(DEFAULT_REGISTRY_DIR).exists() {
        let Source::Api(reason) = bare(&[]).unwrap().source else {
            panic!("not API-only");
        };
        assert!(reason.contains("REGISTRY_DIR"), "{reason}");
        let error = bare(&["--source", "storage"]).unwrap_err();
        assert_eq!(error.input, "REGISTRY_DIR", "{error}");
    }
    for (args, input, text) in [
        (&["--source", "disk"][..], "REGSWEEP_SOURCE", "`disk`"),
        (
            &["--registry-storage", "azure"][..],
            "REGISTRY_STORAGE",
            "use `filesystem` or `s3`",
        ),
        (&["--registry-storage", "s3"][..], "BUCKET", "BUCKET"),
        (
            &[
                "--registry-storage",
                "s3",
                "--bucket",
                "b",
                "--access-key",
                "AKIA",
            ][..],
            "SECRET_KEY",
            "SECRET_KEY is not set",
        ),
        (
            &[
                "--registry-storage",
                "s3",
                "--bucket",
                "b",
                "--s3-endpoint",
                "minio:9000",
            ][..],
            "REGSWEEP_S3_ENDPOINT",
            "http(s)",
        ),
    ] {
        let error = bare(args).expect_err(&format!("{args:?} accepted"));
        assert_eq!(error.input, input, "{args:?}: {error}");
        let line = error.to_string();
        assert!(line.contains(text) && line.lines().count() == 1, "{line}");
    }
}

#[test]
fn the_untagged_sweep_is_refused_with_discovery_narrowed() {
    for narrowed in [
        ["--repositories", "team/app"],
        ["--repo-filter", "team/app"],
    ] {
        let mut args = vec![
            "regsweep",
            "--digitalocean-token",
            "dop_v1_x",
            "--gc-include-untagged",
            "true",
        ];
        args.extend(narrowed);
        let error = from_args(&args).unwrap_err();
        assert_eq!(error.input, "REGSWEEP_GC_INCLUDE_UNTAGGED");
        assert!(error
            .to_string()
            .contains(if narrowed[0] == "--repositories" {
                "REGSWEEP_REPOSITORIES"
            } else {
                "REPO_FILTER"
            }));
        args[4] = "force";
        assert!(from_args(&args).is_ok(), "force stays possible");
    }
    let harbor = from_args(&[
        "regsweep",
        "--provider",
        "harbor",
        "--registry-url",
        "https://harbor.example.com",
        "--harbor-project",
        "library",
        "--gc-include-untagged",
        "true",
    ])
    .unwrap_err();
    assert!(harbor.to_string().contains("HARBOR_PROJECT"), "{harbor}");
}

#[test]
fn the_untagged_sweep_is_opt_in_and_only_where_regsweep_starts_the_gc() {
    let on_digitalocean = |value: &str| {
        from_args(&[
            "regsweep",
            "--digitalocean-token",
            "dop_v1_x",
            "--gc-include-untagged",
            value,
        ])
    };
    assert_eq!(
        on_digitalocean("false").unwrap().gc_include_untagged,
        UntaggedSweep::Off
    );
    assert_eq!(
        on_digitalocean("TRUE").unwrap().gc_include_untagged,
        UntaggedSweep::Requested
    );
    assert_eq!(
        on_digitalocean("force").unwrap().gc_include_untagged,
        UntaggedSweep::Forced
    );
    let error = on_digitalocean("sometimes").unwrap_err();
    assert_eq!(error.input, "REGSWEEP_GC_INCLUDE_UNTAGGED");
    assert_eq!(
        settings(&["--registry-url", "http://r"])
            .unwrap()
            .gc_include_untagged,
        UntaggedSweep::Off
    );
    let error = settings(&["--registry-url", "http://r", "--gc-include-untagged"]).unwrap_err();
    assert_eq!(error.input, "REGSWEEP_GC_INCLUDE_UNTAGGED");
    assert!(error.problem.contains("digitalocean"), "{error}");
}

#[test]
fn the_digitalocean_provider() {
    let parse = |args: &[&str]| {
        let mut argv = vec!["regsweep"];
        argv.extend_from_slice(args);
        from_args(&argv)
    };
    let token = "dop_v1_secret";
    // `registry.digitalocean.com/<name>`, no scheme: DigitalOcean, registry from the path.
    let s = parse(&[
        "--registry-url",
        "registry.digitalocean.com/acme",
        "--digitalocean-token",
        token,
    ])
    .unwrap();
    let Source::DigitalOcean(d) = &s.source else {
        panic!("{:?}", s.source)
    };
    assert_eq!(d.registry.as_deref(), Some("acme"));
    assert_eq!(
        s.registry_url.as_str(),
        "https://registry.digitalocean.com/"
    );
    let credentials = s.credentials.as_ref().unwrap();
    assert_eq!(
        credentials.password.expose_secret(),
        token,
        "the token is the registry password"
    );
    assert!(d.gc && d.gc_timeout == std::time::Duration::from_secs(1800));
    assert!(!format!("{s:?}").contains(token), "Debug hides the token");
    // No REGISTRY_URL but a token: DigitalOcean, its registry asked of the API later.
    let s = parse(&["--digitalocean-token", token]).unwrap();
    let Source::DigitalOcean(d) = &s.source else {
        panic!()
    };
    assert_eq!(d.registry, None);
    // Another registry with a token around: distribution, unless asked.
    let dir = storage_dir();
    let path = dir.path().to_str().unwrap();
    let s = parse(&[
        "--registry-url",
        "https://r.example",
        "--registry-dir",
        path,
        "--digitalocean-token",
        token,
    ])
    .unwrap();
    assert!(matches!(s.source, Source::Filesystem(_)));
    let s = parse(&[
        "--registry-url",
        "http://127.0.0.1:5000",
        "--provider",
        "DigitalOcean",
        "--digitalocean-token",
        token,
        "--do-registry",
        "x",
    ])
    .unwrap();
    assert!(matches!(s.source, Source::DigitalOcean(_)));
    for (args, input) in [
        (
            &["--registry-url", "registry.digitalocean.com/acme"][..],
            "DIGITALOCEAN_ACCESS_TOKEN",
        ),
        (
            &["--provider", "gcr", "--registry-url", "https://r"][..],
            "REGISTRY_PROVIDER",
        ),
        (
            &["--digitalocean-token", token, "--gc-timeout", "soon"][..],
            "REGSWEEP_GC_TIMEOUT",
        ),
        (
            &[
                "--digitalocean-token",
                token,
                "--do-api-url",
                "api.digitalocean.com",
            ][..],
            "REGSWEEP_DO_API_URL",
        ),
    ] {
        let error = parse(args).expect_err(&format!("{args:?}"));
        assert_eq!(error.input, input, "{error}");
        assert!(!error.to_string().contains(token));
    }
}

#[test]
fn s3_options_and_their_secret() {
    let s = bare(&[
        "--registry-storage",
        "S3",
        "--bucket",
        "images",
        "--registry-dir",
        "/registry/",
        "--region",
        "eu-west-1",
        "--access-key",
        "AKIAEXAMPLE",
        "--secret-key",
        "wJalrXUtnFEMI",
        "--s3-endpoint",
        "http://127.0.0.1:9000",
    ])
    .unwrap();
    let Source::S3(location) = &s.source else {
        panic!("not S3: {:?}", s.source);
    };
    assert_eq!(location.bucket, "images");
    assert_eq!(location.root, "registry");
    assert_eq!(location.region.as_deref(), Some("eu-west-1"));
    assert!(
        location.path_style,
        "a custom endpoint defaults to path style"
    );
    assert_eq!(s.source.describe(), "s3://images/registry");
    let debug = format!("{s:?}");
    assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
    assert!(!debug.contains("AKIAEXAMPLE"), "{debug}");

    let s = bare(&["--registry-storage", "s3", "--bucket", "images"]).unwrap();
    let Source::S3(location) = &s.source else {
        panic!("not S3");
    };
    assert_eq!(location.root, "");
    assert_eq!(s.source.describe(), "s3://images");
    assert!(location.access_key.is_none(), "the SDK's credential chain");
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(!location.path_style, "AWS itself: virtual-hosted style");
    }
}

#[test]
fn repositories_from_both_options() {
    let s = settings(&[
        "--registry-url",
        "http://r",
        "--repo-filter",
        "team/app",
        "--repositories",
        " b/one, team/app ,a,",
    ])
    .unwrap();
    let names: Vec<String> = s
        .policy
        .repositories
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(names, ["a", "b/one", "team/app"]);
    let error =
        settings(&["--registry-url", "http://r", "--repositories", "ok,Not OK"]).unwrap_err();
    assert_eq!(error.input, "REGSWEEP_REPOSITORIES");
    assert!(error.to_string().contains("`Not OK`"), "{error}");
}

#[test]
fn credentials_in_the_url_are_moved_out_of_it() {
    let s = settings(&["--registry-url", "https://ci:s%40cret@r.example:5000/"]).unwrap();
    assert_eq!(s.registry_url.as_str(), "https://r.example:5000/");
    let credentials = s.credentials.unwrap();
    assert_eq!(credentials.username, "ci");
    assert_eq!(credentials.password.expose_secret(), "s@cret");
}

/// Issue 12, defect 1: a `+` in the URL's password is a plus, not a space (the user info
/// of a URL is percent-encoded, not form-encoded).
#[test]
fn a_plus_in_the_url_password_stays_a_plus() {
    for (url, user, password) in [
        ("https://u:p+q@r.example", "u", "p+q"),
        ("https://u%2Bv:p%2Bq%20x@r.example", "u+v", "p+q x"),
    ] {
        let s = settings(&["--registry-url", url]).unwrap();
        let credentials = s.credentials.unwrap();
        assert_eq!(credentials.username, user, "{url}");
        assert_eq!(credentials.password.expose_secret(), password, "{url}");
    }
}

#[test]
fn password_may_contain_colons_and_never_shows_in_errors_or_debug() {
    let s = settings(&["--registry-url", "https://r", "--registry-auth", "u:pa:ss"]).unwrap();
    assert_eq!(
        s.credentials.as_ref().unwrap().password.expose_secret(),
        "pa:ss"
    );
    assert!(!format!("{s:?}").contains("pa:ss"));
    let error = settings(&[
        "--registry-url",
        "http://r",
        "--registry-auth",
        "secretvalue",
    ])
    .unwrap_err();
    assert!(!error.to_string().contains("secretvalue"));
}

#[test]
fn credentials_over_plain_http_only_to_loopback_unless_allowed() {
    let remote = [
        "--registry-url",
        "http://registry.example.com",
        "--registry-auth",
        "u:p",
    ];
    let error = settings(&remote).unwrap_err();
    assert_eq!(error.input, "REGISTRY_URL");
    assert!(
        error.problem.contains("REGSWEEP_ALLOW_INSECURE_HTTP"),
        "{error}"
    );
    let mut allowed = remote.to_vec();
    allowed.extend(["--allow-insecure-http", "true"]);
    assert!(settings(&allowed).is_ok());
    for local in [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://[::1]:5000",
        "https://registry.example.com",
    ] {
        assert!(
            settings(&["--registry-url", local, "--registry-auth", "u:p"]).is_ok(),
            "{local}"
        );
    }
    assert!(
        settings(&["--registry-url", "http://registry.example.com"]).is_ok(),
        "no credentials"
    );
}

#[test]
fn limits_and_http_tuning() {
    let s = settings(&[
        "--registry-url",
        "http://r",
        "--max-delete",
        "50",
        "--http-timeout",
        "5s",
        "--retry-delay",
        "10ms",
        "--http-attempts",
        "2",
    ])
    .unwrap();
    assert_eq!(s.max_delete, Some(50));
    assert_eq!(s.retry.attempt_timeout, std::time::Duration::from_secs(5));
    assert_eq!(s.retry.base_delay, std::time::Duration::from_millis(10));
    assert_eq!(s.retry.attempts, 2);
    assert!(s.verify);
    for (args, input) in [
        (["--max-delete", "-1"], "REGSWEEP_MAX_DELETE"),
        (["--http-timeout", "0s"], "REGSWEEP_HTTP_TIMEOUT"),
        (["--http-attempts", "0"], "REGSWEEP_HTTP_ATTEMPTS"),
        (["--retry-delay", "later"], "REGSWEEP_RETRY_DELAY"),
        (["--verify", "sometimes"], "REGSWEEP_VERIFY"),
    ] {
        let mut all = vec!["--registry-url", "http://r"];
        all.extend(args);
        assert_eq!(settings(&all).unwrap_err().input, input);
    }
}

#[test]
fn regex_errors_fit_on_one_line() {
    let error = settings(&["--registry-url", "http://r", "--hash-tag-pattern", "(a"]).unwrap_err();
    assert_eq!(error.to_string().lines().count(), 1);
    assert!(error.to_string().contains("unclosed group"), "{error}");
}

#[test]
fn the_ghcr_provider() {
    let parse = |args: &[&str]| {
        let mut argv = vec!["regsweep", "--provider", "ghcr"];
        argv.extend_from_slice(args);
        from_args(&argv)
    };
    let token = "ghp_secret";
    let s = parse(&[
        "--github-repository-owner",
        "Acme",
        "--github-token",
        token,
        "--repositories",
        "app,acme/tools/builder",
    ])
    .unwrap();
    let Source::Ghcr(g) = &s.source else {
        panic!("{:?}", s.source)
    };
    assert_eq!(g.owner, "Acme");
    assert_eq!(g.api_url.as_str(), "https://api.github.com/");
    assert_eq!(s.registry_url.as_str(), "https://ghcr.io/");
    let credentials = s.credentials.as_ref().unwrap();
    assert_eq!(credentials.username, "Acme");
    assert_eq!(credentials.password.expose_secret(), token);
    let names: Vec<&str> = s.policy.repositories.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        ["acme/app", "acme/tools/builder"],
        "package names get the owner"
    );
    assert!(!format!("{s:?}").contains(token), "Debug hides the token");
    // GHCR_OWNER wins over the workflow's owner; ghcr.io picks the provider by itself.
    let s = from_args(&[
        "regsweep",
        "--registry-url",
        "https://ghcr.io",
        "--ghcr-owner",
        "other",
        "--github-repository-owner",
        "acme",
        "--github-token",
        token,
    ])
    .unwrap();
    assert!(matches!(&s.source, Source::Ghcr(g) if g.owner == "other"));
    // What is missing is named.
    let error = parse(&["--github-token", token]).unwrap_err();
    assert_eq!(error.input, "GHCR_OWNER");
    let error = parse(&["--ghcr-owner", "acme"]).unwrap_err();
    assert_eq!(error.input, "GITHUB_TOKEN");
    let error = parse(&["--ghcr-owner", "a/b", "--github-token", token]).unwrap_err();
    assert_eq!(error.input, "GHCR_OWNER");
}

#[test]
fn the_gitlab_provider() {
    let parse = |args: &[&str]| {
        let mut argv = vec![
            "regsweep",
            "--provider",
            "gitlab",
            "--gitlab-api-url",
            "https://gitlab.example.com/api/v4",
            "--gitlab-project",
            "42",
            "--gitlab-registry",
            "registry.example.com",
            "--gitlab-registry-user",
            "gitlab-ci-token",
            "--gitlab-registry-password",
            "job-secret",
        ];
        argv.extend_from_slice(args);
        from_args(&argv)
    };
    // The job token alone: sent as JOB-TOKEN; the registry at https://$CI_REGISTRY.
    let s = parse(&["--gitlab-job-token", "job-secret"]).unwrap();
    let Source::Gitlab(g) = &s.source else {
        panic!("{:?}", s.source)
    };
    assert!(matches!(
        g.token,
        crate::providers::gitlab::GitlabToken::Job(_)
    ));
    assert_eq!(g.project, "42");
    assert_eq!(s.registry_url.as_str(), "https://registry.example.com/");
    assert_eq!(s.credentials.as_ref().unwrap().username, "gitlab-ci-token");
    // A project token wins, sent as PRIVATE-TOKEN.
    let s = parse(&[
        "--gitlab-job-token",
        "job-secret",
        "--gitlab-api-token",
        "glpat-x",
    ])
    .unwrap();
    assert!(
        matches!(&s.source, Source::Gitlab(g) if matches!(g.token, crate::providers::gitlab::GitlabToken::Private(_)))
    );
    assert!(!format!("{s:?}").contains("glpat-x"));
    // No token at all: one line naming GITLAB_TOKEN.
    assert_eq!(parse(&[]).unwrap_err().input, "GITLAB_TOKEN");
}

#[test]
fn the_harbor_provider() {
    let s = from_args(&[
        "regsweep",
        "--provider",
        "harbor",
        "--registry-url",
        "https://harbor.example.com",
        "--registry-auth",
        "robot$library+cleaner:s3cret",
        "--harbor-project",
        "library, team ,library",
        "--gc-include-untagged",
        "force",
    ])
    .unwrap();
    let Source::Harbor(h) = &s.source else {
        panic!("{:?}", s.source)
    };
    assert_eq!(h.projects, ["library", "team"]);
    assert!(h.gc);
    assert_eq!(
        s.credentials.as_ref().unwrap().username,
        "robot$library+cleaner"
    );
    let error = from_args(&["regsweep", "--provider", "harbor"]).unwrap_err();
    assert_eq!(error.input, "REGISTRY_URL");
    let error = from_args(&[
        "regsweep",
        "--provider",
        "harbor",
        "--registry-url",
        "https://h",
        "--harbor-project",
        "Not Valid",
    ])
    .unwrap_err();
    assert_eq!(error.input, "HARBOR_PROJECT");
}

#[test]
fn the_action_comes_from_the_subcommand_or_the_mode_and_they_must_agree() {
    use crate::cli::Action;
    let action = |args: &[&str]| {
        let mut argv = vec!["regsweep"];
        argv.extend_from_slice(args);
        match parse_command_line(argv) {
            Ok(cli) => cli.action(),
            Err(_) => panic!("{args:?}"),
        }
    };
    assert_eq!(action(&[]), Ok(Action::Run));
    assert_eq!(
        action(&["plan"]),
        Ok(Action::Plan("regsweep-plan.json".into()))
    );
    assert_eq!(
        action(&["plan", "--out", "p.json"]),
        Ok(Action::Plan("p.json".into()))
    );
    assert_eq!(
        action(&["--plan-file", "q.json", "apply"]),
        Ok(Action::Apply("q.json".into()))
    );
    assert_eq!(
        action(&["apply", "a.json", "--plan-file", "q.json"]),
        Ok(Action::Apply("a.json".into()))
    );
    assert_eq!(
        action(&["--mode", "apply", "--plan-file", "q.json"]),
        Ok(Action::Apply("q.json".into()))
    );
    assert_eq!(
        action(&["--mode", "plan", "plan", "--out", "p.json"]),
        Ok(Action::Plan("p.json".into()))
    );
    let mixed = action(&["--mode", "plan", "apply", "p.json"]).unwrap_err();
    assert!(mixed.contains("REGSWEEP_MODE"), "{mixed}");
    assert!(action(&["--mode", "apply", "restore", "--from", "r.json"]).is_err());
}
