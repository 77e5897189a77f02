//! settings: turns raw flags into validated `Settings` before any request is made: URLs parsed,
//! regexes compiled, storage checked, credentials split. Every error names the input it is
//! about and says what a valid value looks like; secrets are never echoed.

use std::path::{Path, PathBuf};

use chrono::Duration;
use regex::Regex;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::cli::{env, Cli};
use crate::discover::s3::S3Location;
use crate::discover::storage::LAYOUT_ROOT;
use crate::http::{Credentials, RetryPolicy, TlsOptions};
use crate::model::RepositoryName;
use crate::plan::untagged::UntaggedSweep;
use crate::plan::Policy;
use crate::secret::SecretStringEq;

/// An input that is not valid. Displayed as one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {input} (--{flag}): {problem}")]
pub struct SettingsError {
    /// The environment variable name.
    pub input: &'static str,
    /// The flag name, without dashes.
    pub flag: &'static str,
    /// What is wrong, and what would be right.
    pub problem: String,
}

/// The report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The seed's terminal format.
    Text,
    /// One JSON document.
    Json,
    /// GitHub-flavoured Markdown.
    Markdown,
}

/// Where manifests are discovered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A local folder holding `docker/registry/v2`.
    Filesystem(PathBuf),
    /// The registry's S3 bucket.
    S3(S3Location),
    /// A DigitalOcean registry, through the DigitalOcean API.
    DigitalOcean(crate::digitalocean::DigitalOceanSettings),
    /// No storage: the registry's API alone (catalog, tags, manifests, referrers), which
    /// cannot see untagged manifests. The text says why this source was chosen.
    Api(String),
}

/// The default storage folder (`REGISTRY_DIR`), where the seed's Docker image mounts it.
pub const DEFAULT_REGISTRY_DIR: &str = "/registry";

impl StorageLocation {
    /// For messages and reports.
    pub fn describe(&self) -> String {
        match self {
            StorageLocation::Filesystem(path) => path.display().to_string(),
            StorageLocation::S3(location) => location.describe(),
            StorageLocation::Api(_) => "none (registry API only)".to_string(),
            StorageLocation::DigitalOcean(d) => match &d.registry {
                Some(name) => format!("DigitalOcean API (registry `{name}`)"),
                None => "DigitalOcean API".to_string(),
            },
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Chooses and checks the discovery source: `REGSWEEP_SOURCE`, `REGISTRY_STORAGE`,
/// `REGISTRY_DIR` and the S3 options.
fn source(cli: &Cli) -> Result<StorageLocation, SettingsError> {
    let kind = non_empty(&cli.registry_storage).map(str::to_ascii_lowercase);
    let wanted = cli.source.trim().to_ascii_lowercase();
    match wanted.as_str() {
        "api" => return Ok(StorageLocation::Api(format!("{}=api", env::SOURCE))),
        "" | "auto" | "storage" => {}
        other => {
            return Err(error(
                env::SOURCE,
                "source",
                format!("`{other}` is not one of `auto`, `storage`, `api`"),
            ))
        }
    }
    match kind.as_deref() {
        Some("s3") => return s3_location(cli).map(StorageLocation::S3),
        Some("filesystem") | Some("local") => {
            return storage(non_empty(&cli.registry_dir).unwrap_or(DEFAULT_REGISTRY_DIR))
        }
        Some(other) => {
            return Err(error(
                env::REGISTRY_STORAGE,
                "registry-storage",
                format!("`{other}` is not a storage kind (use `filesystem` or `s3`)"),
            ))
        }
        None => {}
    }
    match non_empty(&cli.registry_dir) {
        // Named explicitly: it must be registry storage (a typo must not silently turn the
        // run into an API-only one).
        Some(dir) => storage(dir),
        None if wanted == "storage" || Path::new(DEFAULT_REGISTRY_DIR).exists() => {
            storage(DEFAULT_REGISTRY_DIR)
        }
        None => Ok(StorageLocation::Api(format!(
            "neither {} nor {} is set and `{DEFAULT_REGISTRY_DIR}` does not exist",
            env::REGISTRY_STORAGE,
            env::REGISTRY_DIR
        ))),
    }
}

/// A duration above zero (`30s`, `30m`), for the time limits.
fn positive_duration(
    text: &str,
    input: &'static str,
    flag: &'static str,
) -> Result<std::time::Duration, SettingsError> {
    parse_duration(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            error(
                input,
                flag,
                format!("`{text}` is not a duration above zero like `30s`"),
            )
        })
}

/// The DigitalOcean registry host.
pub const DIGITALOCEAN_REGISTRY_HOST: &str = "registry.digitalocean.com";

/// The DigitalOcean choice (`REGSWEEP_PROVIDER`, `DIGITALOCEAN_ACCESS_TOKEN`, `REGISTRY_URL`):
/// `Some` with the registry URL to use when DigitalOcean is the provider.
fn digitalocean(
    cli: &Cli,
) -> Result<Option<(crate::digitalocean::DigitalOceanSettings, Url)>, SettingsError> {
    let token = non_empty(&cli.digitalocean_token);
    let raw_url = non_empty(&cli.registry_url);
    // `registry.digitalocean.com/<name>` without a scheme is how DigitalOcean writes it.
    let url_text = raw_url.map(|u| {
        if u.contains("://") {
            u.to_string()
        } else {
            format!("https://{u}")
        }
    });
    let on_digitalocean = url_text
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .is_some_and(|u| u.host_str() == Some(DIGITALOCEAN_REGISTRY_HOST));
    let chosen = match cli.provider.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => on_digitalocean || (raw_url.is_none() && token.is_some()),
        "digitalocean" | "do" => true,
        "distribution" => false,
        other => {
            return Err(error(
                env::PROVIDER,
                "provider",
                format!("`{other}` is not one of `auto`, `distribution`, `digitalocean`"),
            ))
        }
    };
    if !chosen {
        return Ok(None);
    }
    let token = token.ok_or_else(|| {
        error(
            env::DIGITALOCEAN_TOKEN,
            "digitalocean-token",
            "the DigitalOcean provider needs an API token in DIGITALOCEAN_ACCESS_TOKEN",
        )
    })?;
    let url_text = url_text.unwrap_or_else(|| format!("https://{DIGITALOCEAN_REGISTRY_HOST}"));
    let mut registry_url = Url::parse(&url_text)
        .map_err(|e| error(env::REGISTRY_URL, "registry-url", format!("not a URL: {e}")))?;
    let from_path = registry_url
        .path_segments()
        .and_then(|mut s| s.next().map(str::to_string))
        .filter(|s| !s.is_empty());
    if registry_url.host_str() == Some(DIGITALOCEAN_REGISTRY_HOST) {
        registry_url.set_path("/");
    }
    let api_url = Url::parse(cli.do_api_url.trim())
        .map_err(|e| error(env::DO_API_URL, "do-api-url", format!("not a URL: {e}")))?;
    if !matches!(api_url.scheme(), "http" | "https") || api_url.host_str().is_none() {
        return Err(error(env::DO_API_URL, "do-api-url", "use an http(s) URL"));
    }
    Ok(Some((
        crate::digitalocean::DigitalOceanSettings {
            token: SecretStringEq(SecretString::from(token.to_string())),
            api_url,
            registry: non_empty(&cli.do_registry)
                .map(str::to_string)
                .or(from_path),
            gc: boolean(&cli.gc, env::GC, "gc")?,
            gc_timeout: positive_duration(&cli.gc_timeout, env::GC_TIMEOUT, "gc-timeout")?,
            gc_poll: positive_duration(&cli.gc_poll, env::GC_POLL, "gc-poll")?,
        },
        registry_url,
    )))
}

/// The S3 options, checked.
fn s3_location(cli: &Cli) -> Result<S3Location, SettingsError> {
    let bucket = non_empty(&cli.bucket).ok_or_else(|| {
        error(
            env::BUCKET,
            "bucket",
            "REGISTRY_STORAGE=s3 needs the bucket's name in BUCKET",
        )
    })?;
    let endpoint = match non_empty(&cli.s3_endpoint) {
        None => None,
        Some(text) => {
            let url = Url::parse(text).map_err(|e| {
                error(
                    env::S3_ENDPOINT,
                    "s3-endpoint",
                    format!("`{text}` is not a URL: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(error(
                    env::S3_ENDPOINT,
                    "s3-endpoint",
                    format!("`{text}` is not an http(s) URL"),
                ));
            }
            Some(text.to_string())
        }
    };
    let custom_endpoint =
        endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty());
    let path_style = match non_empty(&cli.s3_path_style) {
        None => custom_endpoint,
        Some(text) => boolean(text, env::S3_PATH_STYLE, "s3-path-style")?,
    };
    let access_key = non_empty(&cli.access_key).map(str::to_string);
    let secret_key = non_empty(&cli.secret_key).map(str::to_string);
    if access_key.is_some() != secret_key.is_some() {
        let (input, flag, missing) = if access_key.is_some() {
            (env::SECRET_KEY, "secret-key", "SECRET_KEY")
        } else {
            (env::ACCESS_KEY, "access-key", "ACCESS_KEY")
        };
        return Err(error(
            input,
            flag,
            format!(
                "{missing} is not set: give both ACCESS_KEY and SECRET_KEY, or neither to use \
                 the AWS default credential chain"
            ),
        ));
    }
    Ok(S3Location {
        bucket: bucket.to_string(),
        root: non_empty(&cli.registry_dir)
            .unwrap_or_default()
            .trim_matches('/')
            .to_string(),
        region: non_empty(&cli.region).map(str::to_string),
        endpoint,
        path_style,
        access_key,
        secret_key: secret_key.map(|s| SecretStringEq(SecretString::from(s))),
    })
}

/// Everything a run needs, validated. `Debug` never shows secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The registry API's base URL, without credentials.
    pub registry_url: Url,
    /// Basic-auth credentials.
    pub credentials: Option<Credentials>,
    /// Certificate trust.
    pub tls: TlsOptions,
    /// Where manifests are listed from.
    pub storage: StorageLocation,
    /// Retention rules.
    pub policy: Policy,
    /// Delete nothing.
    pub dry_run: bool,
    /// Requests and reads in flight at once.
    pub concurrency: usize,
    /// Report format.
    pub output: OutputFormat,
    /// The registry's config file path, for the garbage-collection advice.
    pub registry_config: String,
    /// Retries of transient HTTP failures, and per-attempt time limit.
    pub retry: RetryPolicy,
    /// Verify kept tags after a real run.
    pub verify: bool,
    /// Refuse plans deleting more than this many manifests.
    pub max_delete: Option<usize>,
    /// Log level for regsweep's own messages on stderr.
    pub log_level: tracing::level_filters::LevelFilter,
    /// No progress output.
    pub quiet: bool,
    /// Credentials may go over plain http to a host that is not loopback (token servers too).
    pub allow_insecure_http: bool,
    /// Comment on the pull request (with `github` and a token).
    pub comment_on_pr: bool,
    /// The token for pull-request comments (`GITHUB_TOKEN`).
    pub github_token: Option<SecretString>,
    /// The merge request of a GitLab merge-request pipeline, to note on with `gitlab_token`.
    pub gitlab: Option<crate::publish::gitlab::MergeRequest>,
    /// A GitLab token with `api` scope.
    pub gitlab_token: Option<SecretString>,
    /// Also write the Markdown report here.
    pub markdown_file: Option<PathBuf>,
    /// Also write the JSON report here.
    pub json_file: Option<PathBuf>,
    /// Where to publish inside GitHub Actions; `None` elsewhere or with
    /// `REGSWEEP_GITHUB_SUMMARY=false`.
    pub github: Option<crate::publish::github::GithubActions>,
    /// Whether the registry's garbage collection may delete untagged manifests.
    pub gc_include_untagged: UntaggedSweep,
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn error(input: &'static str, flag: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        input,
        flag,
        problem: problem.into(),
    }
}

/// Parses a boolean as CI systems write them: true/false, 1/0, yes/no, on/off, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "n" | "" => Some(false),
        _ => None,
    }
}

fn boolean(text: &str, input: &'static str, flag: &'static str) -> Result<bool, SettingsError> {
    parse_bool(text).ok_or_else(|| {
        error(
            input,
            flag,
            format!("`{text}` is not a boolean (use true/false, 1/0 or yes/no)"),
        )
    })
}

/// Parses a duration: `0`, `90s`, `30m`, `2h`, `7d`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::zero());
    }
    let std = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like `30m`, `2h` or `7d` ({e})"))?;
    Duration::from_std(std).map_err(|_| format!("`{text}` is too long"))
}

/// The last line of a multi-line error (the regex crate's parse errors draw a caret diagram).
fn one_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

fn registry_url(raw: Option<&str>) -> Result<(Url, Option<Credentials>), SettingsError> {
    let input = env::REGISTRY_URL;
    let flag = "registry-url";
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            error(
                input,
                flag,
                "it is required, e.g. `https://registry.example.com:5000`",
            )
        })?;
    let mut url = Url::parse(raw).map_err(|e| {
        let hint = if !raw.contains("://") {
            " (start it with `https://` or `http://`)"
        } else {
            ""
        };
        error(input, flag, format!("not a URL: {e}{hint}"))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(error(
            input,
            flag,
            format!(
                "scheme `{}` is not supported (use `https://` or `http://`)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error(input, flag, "the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error(
            input,
            flag,
            "the URL must not have a query or fragment",
        ));
    }
    // Credentials inside the URL are taken out so that the URL can be shown safely.
    let credentials = if !url.username().is_empty() {
        let username = percent_decode(url.username());
        let password = percent_decode(url.password().unwrap_or_default());
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(Credentials {
            username,
            password: SecretString::from(password),
            username_is_secret: false,
        })
    } else {
        None
    };
    Ok((url, credentials))
}

/// The user info of a URL is percent-encoded (RFC 3986 §3.2.1), not form-encoded: `+` is a
/// plus sign.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn credentials(raw: Option<&str>) -> Result<Option<Credentials>, SettingsError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let (username, password) = raw.split_once(':').ok_or_else(|| {
        error(
            env::REGISTRY_AUTH,
            "registry-auth",
            "expected `user:password` (the value is not shown)",
        )
    })?;
    if username.is_empty() {
        return Err(error(
            env::REGISTRY_AUTH,
            "registry-auth",
            "the user name before `:` is empty",
        ));
    }
    Ok(Some(Credentials {
        username: username.to_string(),
        password: SecretString::from(password.to_string()),
        username_is_secret: false,
    }))
}

fn storage(raw: &str) -> Result<StorageLocation, SettingsError> {
    let input = env::REGISTRY_DIR;
    let flag = "registry-dir";
    let root = Path::new(raw);
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(error(input, flag, format!("`{raw}` is not a folder"))),
        Err(e) => {
            return Err(error(
                input,
                flag,
                format!(
                    "cannot read `{raw}`: {e} (point it at the folder holding `{LAYOUT_ROOT}`, \
                     e.g. the registry's `rootdirectory`)"
                ),
            ))
        }
    }
    let layout = root.join(LAYOUT_ROOT);
    if !layout.is_dir() {
        return Err(error(
            input,
            flag,
            format!(
                "`{raw}` is not registry storage: it has no `{LAYOUT_ROOT}` folder (point it at \
                 the registry's `rootdirectory`)"
            ),
        ));
    }
    if let Err(e) = std::fs::read_dir(&layout) {
        return Err(error(
            input,
            flag,
            format!("cannot read `{}`: {e}", layout.display()),
        ));
    }
    Ok(StorageLocation::Filesystem(root.to_path_buf()))
}

impl Settings {
    /// Validates every input. Touches only the local filesystem (storage folder, CA file).
    pub fn from_cli(cli: &Cli) -> Result<Settings, SettingsError> {
        let digitalocean = digitalocean(cli)?;
        let (registry_url, url_credentials) = match &digitalocean {
            Some((_, url)) => (url.clone(), None),
            None => registry_url(cli.registry_url.as_deref())?,
        };
        // DigitalOcean's registry takes the API token as user name and password.
        let token_credentials = digitalocean.as_ref().map(|(d, _)| Credentials {
            username: d.token.0.expose_secret().to_string(),
            password: d.token.0.clone(),
            username_is_secret: true,
        });
        let credentials = credentials(cli.registry_auth.as_deref())?
            .or(url_credentials)
            .or(token_credentials);

        let accept_invalid_certificates = boolean(
            &cli.self_signed_cert,
            env::SELF_SIGNED_CERT,
            "self-signed-cert",
        )?;
        let extra_roots_pem = match cli.ca_cert.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    error(
                        env::CA_CERT,
                        "ca-cert",
                        format!("cannot read `{path}`: {e}"),
                    )
                })?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certificates) if !certificates.is_empty() => {}
                    _ => {
                        return Err(error(
                            env::CA_CERT,
                            "ca-cert",
                            format!("`{path}` holds no PEM certificate"),
                        ))
                    }
                }
                Some(pem)
            }
        };

        let storage = match digitalocean {
            Some((settings, _)) => StorageLocation::DigitalOcean(settings),
            None => source(cli)?,
        };
        let gc_include_untagged = match cli.gc_include_untagged.trim() {
            text if text.eq_ignore_ascii_case("force") => UntaggedSweep::Forced,
            text => match parse_bool(text) {
                Some(true) => UntaggedSweep::Requested,
                Some(false) => UntaggedSweep::Off,
                None => {
                    return Err(error(
                        env::GC_INCLUDE_UNTAGGED,
                        "gc-include-untagged",
                        format!("`{text}` is not true, false or force"),
                    ))
                }
            },
        };
        if gc_include_untagged != UntaggedSweep::Off
            && !matches!(storage, StorageLocation::DigitalOcean(_))
        {
            return Err(error(
                env::GC_INCLUDE_UNTAGGED,
                "gc-include-untagged",
                "only a provider that starts the registry's garbage collection (digitalocean) \
                 takes it; for a self-hosted registry regsweep prints the command instead",
            ));
        }
        let dry_run = boolean(&cli.dry_run, env::DRY_RUN, "dry-run")?;

        let mut repositories = Vec::new();
        if let Some(name) = non_empty(&cli.repo_filter) {
            repositories.push(
                name.trim_matches('/')
                    .parse::<RepositoryName>()
                    .map_err(|e| error(env::REPO_FILTER, "repo-filter", e.to_string()))?,
            );
        }
        for name in non_empty(&cli.repositories)
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().trim_matches('/'))
            .filter(|n| !n.is_empty())
        {
            let name = name
                .parse::<RepositoryName>()
                .map_err(|e| error(env::REPOSITORIES, "repositories", format!("`{name}`: {e}")))?;
            if !repositories.contains(&name) {
                repositories.push(name);
            }
        }
        repositories.sort();
        let hash_tag_pattern = Regex::new(&cli.hash_tag_pattern).map_err(|e| {
            error(
                env::HASH_TAG_PATTERN,
                "hash-tag-pattern",
                format!(
                    "`{}` is not a regular expression: {}",
                    cli.hash_tag_pattern,
                    one_line(&e.to_string())
                ),
            )
        })?;
        let hash_tag_keep = cli.hash_tag_keep.trim().parse::<usize>().map_err(|_| {
            error(
                env::HASH_TAG_KEEP,
                "hash-tag-keep",
                format!("`{}` is not a whole number of 0 or more", cli.hash_tag_keep),
            )
        })?;
        let min_age =
            parse_duration(&cli.min_age).map_err(|e| error(env::MIN_AGE, "min-age", e))?;
        let concurrency = cli
            .concurrency
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                error(
                    env::CONCURRENCY,
                    "concurrency",
                    format!("`{}` is not a number from 1 to 256", cli.concurrency),
                )
            })?;
        let output = match cli.output.trim().to_ascii_lowercase().as_str() {
            "text" | "" => OutputFormat::Text,
            "json" => OutputFormat::Json,
            "markdown" | "md" => OutputFormat::Markdown,
            other => {
                return Err(error(
                    env::OUTPUT,
                    "output",
                    format!("`{other}` is not one of `text`, `json`, `markdown`"),
                ))
            }
        };

        let allow_insecure_http = boolean(
            &cli.allow_insecure_http,
            env::ALLOW_INSECURE_HTTP,
            "allow-insecure-http",
        )?;
        if credentials.is_some()
            && registry_url.scheme() == "http"
            && !is_loopback(&registry_url)
            && !allow_insecure_http
        {
            return Err(error(
                env::REGISTRY_URL,
                "registry-url",
                format!(
                    "credentials would be sent unencrypted to `{}` over plain http; use \
                     https, or set {}=true if the network is trusted",
                    registry_url.host_str().unwrap_or_default(),
                    env::ALLOW_INSECURE_HTTP
                ),
            ));
        }
        let verify = boolean(&cli.verify, env::VERIFY, "verify")?;
        let max_delete = match non_empty(&cli.max_delete) {
            None => None,
            Some(text) => Some(text.parse::<usize>().map_err(|_| {
                error(
                    env::MAX_DELETE,
                    "max-delete",
                    format!("`{text}` is not a whole number of 0 or more"),
                )
            })?),
        };
        let attempt_timeout =
            positive_duration(&cli.http_timeout, env::HTTP_TIMEOUT, "http-timeout")?;
        let base_delay = parse_duration(&cli.retry_delay)
            .ok()
            .and_then(|d| d.to_std().ok())
            .ok_or_else(|| {
                error(
                    env::RETRY_DELAY,
                    "retry-delay",
                    format!("`{}` is not a duration like `500ms`", cli.retry_delay),
                )
            })?;
        let attempts = cli
            .http_attempts
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=20).contains(n))
            .ok_or_else(|| {
                error(
                    env::HTTP_ATTEMPTS,
                    "http-attempts",
                    format!("`{}` is not a number from 1 to 20", cli.http_attempts),
                )
            })?;

        let log_level = cli
            .log
            .trim()
            .parse::<tracing::level_filters::LevelFilter>()
            .map_err(|_| {
                error(
                    env::LOG,
                    "log",
                    format!(
                        "`{}` is not one of off, error, warn, info, debug, trace",
                        cli.log
                    ),
                )
            })?;

        Ok(Settings {
            registry_url,
            credentials,
            tls: TlsOptions {
                accept_invalid_certificates,
                extra_roots_pem,
            },
            storage,
            policy: Policy {
                hash_tag_pattern,
                hash_tag_keep,
                min_age,
                repositories,
            },
            dry_run,
            concurrency,
            output,
            registry_config: cli.registry_config.clone(),
            retry: RetryPolicy {
                attempts,
                base_delay,
                attempt_timeout,
                ..RetryPolicy::default()
            },
            verify,
            max_delete,
            log_level,
            quiet: boolean(&cli.quiet, env::QUIET, "quiet")?,
            allow_insecure_http,
            comment_on_pr: boolean(&cli.comment_on_pr, env::COMMENT_ON_PR, "comment-on-pr")?,
            github_token: non_empty(&cli.github_token).map(|t| SecretString::from(t.to_string())),
            gitlab: crate::publish::gitlab::MergeRequest::from_env(|name| std::env::var(name).ok()),
            gitlab_token: non_empty(&cli.gitlab_token).map(|t| SecretString::from(t.to_string())),
            markdown_file: non_empty(&cli.markdown_file).map(PathBuf::from),
            json_file: non_empty(&cli.json_file).map(PathBuf::from),
            github: if boolean(&cli.github_summary, env::GITHUB_SUMMARY, "github-summary")? {
                crate::publish::github::GithubActions::from_env(|name| std::env::var(name).ok())
            } else {
                None
            },
            gc_include_untagged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;

    fn storage_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(LAYOUT_ROOT)).unwrap();
        dir
    }

    fn settings(args: &[&str]) -> Result<Settings, SettingsError> {
        let dir = storage_dir();
        let mut argv = vec!["regsweep", "--registry-dir", dir.path().to_str().unwrap()];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        Settings::from_cli(&cli)
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
        Settings::from_cli(&Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn the_discovery_source() {
        let dir = storage_dir();
        let path = dir.path().to_str().unwrap();
        assert!(matches!(
            bare(&["--registry-dir", path]).unwrap().storage,
            StorageLocation::Filesystem(_)
        ));
        assert!(matches!(
            bare(&["--registry-dir", path, "--registry-storage", "Filesystem"])
                .unwrap()
                .storage,
            StorageLocation::Filesystem(_)
        ));
        // Storage given, API asked for: the API wins, by request.
        assert!(matches!(
            bare(&["--registry-dir", path, "--source", "API"])
                .unwrap()
                .storage,
            StorageLocation::Api(_)
        ));
        // Nothing given (and no /registry here): the API, with the reason.
        if !Path::new(DEFAULT_REGISTRY_DIR).exists() {
            let StorageLocation::Api(reason) = bare(&[]).unwrap().storage else {
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
    fn the_untagged_sweep_is_opt_in_and_only_where_regsweep_starts_the_gc() {
        let on_digitalocean = |value: &str| {
            Settings::from_cli(
                &Cli::try_parse_from([
                    "regsweep",
                    "--digitalocean-token",
                    "dop_v1_x",
                    "--gc-include-untagged",
                    value,
                ])
                .unwrap(),
            )
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
            Settings::from_cli(&Cli::try_parse_from(argv).unwrap())
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
        let StorageLocation::DigitalOcean(d) = &s.storage else {
            panic!("{:?}", s.storage)
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
        let StorageLocation::DigitalOcean(d) = &s.storage else {
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
        assert!(matches!(s.storage, StorageLocation::Filesystem(_)));
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
        assert!(matches!(s.storage, StorageLocation::DigitalOcean(_)));
        for (args, input) in [
            (
                &["--registry-url", "registry.digitalocean.com/acme"][..],
                "DIGITALOCEAN_ACCESS_TOKEN",
            ),
            (
                &["--provider", "gcr", "--registry-url", "https://r"][..],
                "REGSWEEP_PROVIDER",
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
        let StorageLocation::S3(location) = &s.storage else {
            panic!("not S3: {:?}", s.storage);
        };
        assert_eq!(location.bucket, "images");
        assert_eq!(location.root, "registry");
        assert_eq!(location.region.as_deref(), Some("eu-west-1"));
        assert!(
            location.path_style,
            "a custom endpoint defaults to path style"
        );
        assert_eq!(s.storage.describe(), "s3://images/registry");
        let debug = format!("{s:?}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(!debug.contains("AKIAEXAMPLE"), "{debug}");

        let s = bare(&["--registry-storage", "s3", "--bucket", "images"]).unwrap();
        let StorageLocation::S3(location) = &s.storage else {
            panic!("not S3");
        };
        assert_eq!(location.root, "");
        assert_eq!(s.storage.describe(), "s3://images");
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
        let error =
            settings(&["--registry-url", "http://r", "--hash-tag-pattern", "(a"]).unwrap_err();
        assert_eq!(error.to_string().lines().count(), 1);
        assert!(error.to_string().contains("unclosed group"), "{error}");
    }
}
