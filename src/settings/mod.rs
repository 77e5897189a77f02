//! settings: turns raw flags into validated `Settings` before any request is made: URLs parsed,
//! regexes compiled, storage checked, credentials split. Every error names the input it is
//! about and says what a valid value looks like; secrets are never echoed. `values` parses
//! single inputs, `sources` chooses where to look and which provider to use.

mod sources;
mod values;

use url::Url;

pub use crate::cli::parse::{parse_bool, parse_duration};
pub use sources::{Source, DEFAULT_REGISTRY_DIR, DIGITALOCEAN_REGISTRY_HOST};
pub use values::{error, non_empty, SettingsError};

use crate::cli::{env, Cli};
use crate::model::RepositoryName;
use crate::plan::untagged::UntaggedSweep;
use crate::plan::Policy;
use crate::registry::http::is_loopback;
use crate::registry::{Credentials, RetryPolicy, TlsOptions};
use crate::report::OutputFormat;
use values::{credentials, one_line};

/// Why the command line could not be read.
#[derive(Debug)]
pub enum CommandLineError {
    /// A value one of the inputs refused: one line naming it.
    Input(SettingsError),
    /// Anything clap itself reports (help, version, an unknown flag): clap prints it.
    Clap(clap::Error),
}

/// Parses `args` (the first is the program's name) into the command line; a value an input's
/// parser refuses becomes one line naming the input (`invalid DRY_RUN (--dry-run): …`).
pub fn parse_command_line<I, T>(args: I) -> Result<Cli, CommandLineError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory as _, FromArgMatches as _};
    // An empty variable counts as unset: its argument forgets the variable, so that the
    // default applies (clap would hand the empty text to the value parser).
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let command = Cli::command().mut_args(|argument| {
        let Some(name) = argument.get_env().map(|n| n.to_string_lossy().into_owned()) else {
            return argument;
        };
        // The older names, read when the current one is unset.
        let alias = match name.as_str() {
            env::PROVIDER => Some(env::PROVIDER_ALIAS),
            env::REPOSITORIES => Some(env::REPOSITORIES_ALIAS),
            _ => None,
        };
        match alias {
            Some(alias) if !set(&name) && set(alias) => argument.env(alias),
            _ if std::env::var_os(&name).is_some_and(|value| value.is_empty()) => {
                argument.env(None::<&str>)
            }
            _ => argument,
        }
    });
    let refused = |error: clap::Error| match SettingsError::from_clap(&error, &Cli::command()) {
        Some(input) => CommandLineError::Input(input),
        None => CommandLineError::Clap(error),
    };
    let matches = command.try_get_matches_from(args).map_err(refused)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(refused)?;
    // An option given by flag or variable, not by its default: HASH_TAG_PATTERN and
    // HASH_TAG_KEEP may not be given with a policy file.
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
    };
    for (id, input) in [
        ("hash_tag_pattern", env::HASH_TAG_PATTERN),
        ("hash_tag_keep", env::HASH_TAG_KEEP),
    ] {
        if given(id) {
            cli.hash_tags_given.push(input);
        }
    }
    Ok(cli)
}

/// Reads a policy: `value` is a file's path, or its YAML text when it spans lines (a CI
/// variable, an Action input). One line naming the file, line and column when it is wrong.
pub fn load_policy(value: &str) -> Result<crate::policy::RetentionPolicy, String> {
    let (text, path) = if value.contains('\n') {
        (value.to_string(), format!("{} (inline)", env::POLICY))
    } else {
        let path = value.trim();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the policy file `{path}`: {e}"))?;
        (text, path.to_string())
    };
    crate::policy::parse(&text, &path).map_err(|e| e.to_string())
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
    /// Where manifests are listed from, and through which provider.
    pub source: Source,
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
    /// The run's time budget (`REGSWEEP_MAX_DURATION`).
    pub max_duration: Option<std::time::Duration>,
    /// How old a plan `apply` still takes (`REGSWEEP_PLAN_MAX_AGE`).
    pub plan_max_age: std::time::Duration,
    /// Log level for regsweep's own messages on stderr.
    pub log_level: tracing::level_filters::LevelFilter,
    /// No progress output.
    pub quiet: bool,
    /// Credentials may go over plain http to a host that is not loopback (token servers too).
    pub allow_insecure_http: bool,
    /// Whether the registry's garbage collection may delete untagged manifests.
    pub gc_include_untagged: UntaggedSweep,
}

impl Settings {
    /// Why a plan deleting `deletions` manifests is refused: more than `REGSWEEP_MAX_DELETE`.
    pub fn max_delete_refusal(&self, deletions: usize) -> Option<String> {
        self.max_delete.filter(|max| deletions > *max).map(|max| {
            format!(
                "refusing to delete {deletions} manifests: more than REGSWEEP_MAX_DELETE={max}; \
                 review the plan (DRY_RUN=true) and raise the limit"
            )
        })
    }

    /// Validates every input. Touches only the local filesystem (storage folder, CA file).
    pub fn from_cli(cli: &Cli) -> Result<Settings, SettingsError> {
        let sources::Chosen {
            source,
            registry_url,
            url_credentials,
            provider_credentials,
        } = sources::choose(cli)?;
        let credentials = credentials(cli.registry_auth.as_deref())?
            .or(url_credentials)
            .or(provider_credentials);

        let accept_invalid_certificates = cli.self_signed_cert;
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

        let gc_include_untagged = cli.gc_include_untagged;
        if gc_include_untagged != UntaggedSweep::Off && !source.collects_garbage() {
            return Err(error(
                env::GC_INCLUDE_UNTAGGED,
                "gc-include-untagged",
                "only a provider that starts the registry's garbage collection (digitalocean, \
                 harbor) takes it; for a self-hosted registry regsweep prints the command instead",
            ));
        }
        let dry_run = cli.dry_run;

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
        // GHCR: packages may be named without their owner (`app` is `<owner>/app`).
        if let Source::Ghcr(ghcr) = &source {
            let owner = format!("{}/", ghcr.owner.to_ascii_lowercase());
            for name in &mut repositories {
                if !name.as_str().starts_with(&owner) {
                    *name = format!("{owner}{name}").parse().map_err(|e| {
                        error(env::REPOSITORIES, "repositories", format!("`{name}`: {e}"))
                    })?;
                }
            }
        }
        repositories.sort();
        repositories.dedup();
        // The registry's garbage collection sweeps every repository, not the selected ones:
        // the check that its untagged sweep breaks no kept image can only see what was
        // discovered (issue 25, defect 3).
        if gc_include_untagged == UntaggedSweep::Requested {
            let narrowed = [
                (non_empty(&cli.repo_filter).is_some(), env::REPO_FILTER),
                (non_empty(&cli.repositories).is_some(), env::REPOSITORIES),
                (
                    matches!(&source, Source::Harbor(h) if !h.projects.is_empty()),
                    env::HARBOR_PROJECT,
                ),
            ];
            if let Some((_, input)) = narrowed.iter().find(|(set, _)| *set) {
                return Err(error(
                    env::GC_INCLUDE_UNTAGGED,
                    "gc-include-untagged",
                    format!(
                        "`true` with {input} set: the registry's untagged sweep runs over every \
                         repository, and regsweep can check only the repositories it reads that \
                         the sweep breaks no kept image; leave {input} unset, leave \
                         REGSWEEP_GC_INCLUDE_UNTAGGED off (regsweep deletes what is safe to \
                         delete), or set it to `force`"
                    ),
                ));
            }
        }
        let hash_tag_pattern = regex::Regex::new(&cli.hash_tag_pattern).map_err(|e| {
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
        let hash_tag_keep = cli.hash_tag_keep;
        // Not trimmed: the positions of inline YAML count from its first character.
        let file = match cli.policy.as_deref().filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(value) => {
                if let Some(input) = cli.hash_tags_given.first() {
                    return Err(error(
                        env::POLICY,
                        "policy",
                        format!(
                            "{input} is given too: a policy file's rules replace HASH_TAG_PATTERN \
                             and HASH_TAG_KEEP; give one (the seed's rule in a file is \
                             `{{tags: ['/<pattern>/'], keep: {{newest: <keep>}}}}`)"
                        ),
                    ));
                }
                Some(std::sync::Arc::new(
                    load_policy(value).map_err(|problem| error(env::POLICY, "policy", problem))?,
                ))
            }
        };
        let min_age = chrono::Duration::from_std(cli.min_age)
            .map_err(|_| error(env::MIN_AGE, "min-age", "too long"))?;
        let concurrency = cli.concurrency;
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

        let allow_insecure_http = cli.allow_insecure_http;
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
        let verify = cli.verify;
        let max_delete = cli.max_delete;
        let attempt_timeout = cli.http_timeout;
        let base_delay = cli.retry_delay;
        let attempts = cli.http_attempts;

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
            source,
            policy: Policy {
                hash_tag_pattern,
                hash_tag_keep,
                min_age,
                repositories,
                file,
                // The provider's nature, set by the run once the provider is open.
                takes_along: false,
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
            max_duration: cli.max_duration,
            plan_max_age: cli.plan_max_age,
            log_level,
            quiet: cli.quiet,
            allow_insecure_http,
            gc_include_untagged,
        })
    }
}

#[cfg(test)]
mod tests;
