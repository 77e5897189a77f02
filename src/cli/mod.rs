//! cli: every flag, with its environment variable, default and documentation. Typed values
//! (booleans, numbers, durations) are parsed by the value parsers of `parse`; the rest stay
//! strings that `settings` validates together (URLs, credentials, the choice of source).

pub mod parse;

use std::time::Duration;

use clap::Parser;

use crate::plan::untagged::UntaggedSweep;

/// Environment variable names, each declared once. The seed's names are kept unchanged so
/// that a user of either seed only swaps the image or binary.
pub mod env {
    /// The registry's URL.
    pub const REGISTRY_URL: &str = "REGISTRY_URL";
    /// The folder holding `docker/registry/v2`.
    pub const REGISTRY_DIR: &str = "REGISTRY_DIR";
    /// Where the registry's storage is: a local folder (default) or S3.
    pub const REGISTRY_STORAGE: &str = "REGISTRY_STORAGE";
    /// Accept any TLS certificate.
    pub const SELF_SIGNED_CERT: &str = "SELF_SIGNED_CERT";
    /// `user:password` for basic auth.
    pub const REGISTRY_AUTH: &str = "REGISTRY_AUTH";
    /// Show what would happen, delete nothing.
    pub const DRY_RUN: &str = "DRY_RUN";
    /// Only this repository.
    pub const REPO_FILTER: &str = "REPO_FILTER";
    /// What a commit-hash tag looks like.
    pub const HASH_TAG_PATTERN: &str = "HASH_TAG_PATTERN";
    /// How many hash-tagged manifests to keep per repository.
    pub const HASH_TAG_KEEP: &str = "HASH_TAG_KEEP";
    /// A PEM bundle of certificates to trust.
    pub const CA_CERT: &str = "REGSWEEP_CA_CERT";
    /// Keep everything younger than this.
    pub const MIN_AGE: &str = "REGSWEEP_MIN_AGE";
    /// Requests and file reads in flight at once.
    pub const CONCURRENCY: &str = "REGSWEEP_CONCURRENCY";
    /// Report format.
    pub const OUTPUT: &str = "REGSWEEP_OUTPUT";
    /// The registry's config file, for the garbage-collection command shown.
    pub const REGISTRY_CONFIG: &str = "REGSWEEP_REGISTRY_CONFIG";
    /// Check every kept tag after a real run.
    pub const VERIFY: &str = "REGSWEEP_VERIFY";
    /// Refuse plans deleting more than this.
    pub const MAX_DELETE: &str = "REGSWEEP_MAX_DELETE";
    /// The run's time budget.
    pub const MAX_DURATION: &str = "REGSWEEP_MAX_DURATION";
    /// What to do: `run`, `plan` or `apply` (for CI wrappers, which set variables).
    pub const MODE: &str = "REGSWEEP_MODE";
    /// The plan file `plan` writes and `apply` reads.
    pub const PLAN: &str = "REGSWEEP_PLAN";
    /// How old a plan `apply` still takes.
    pub const PLAN_MAX_AGE: &str = "REGSWEEP_PLAN_MAX_AGE";
    /// Allow credentials over plain HTTP to a host that is not loopback.
    pub const ALLOW_INSECURE_HTTP: &str = "REGSWEEP_ALLOW_INSECURE_HTTP";
    /// Time limit for one HTTP attempt.
    pub const HTTP_TIMEOUT: &str = "REGSWEEP_HTTP_TIMEOUT";
    /// Attempts per HTTP request, the first included.
    pub const HTTP_ATTEMPTS: &str = "REGSWEEP_HTTP_ATTEMPTS";
    /// First retry delay (doubles each retry).
    pub const RETRY_DELAY: &str = "REGSWEEP_RETRY_DELAY";
    /// S3 access key (with `REGISTRY_STORAGE=s3`).
    pub const ACCESS_KEY: &str = "ACCESS_KEY";
    /// S3 secret key.
    pub const SECRET_KEY: &str = "SECRET_KEY";
    /// The registry's S3 bucket.
    pub const BUCKET: &str = "BUCKET";
    /// The bucket's region.
    pub const REGION: &str = "REGION";
    /// An S3-compatible endpoint.
    pub const S3_ENDPOINT: &str = "REGSWEEP_S3_ENDPOINT";
    /// Path-style S3 addressing.
    pub const S3_PATH_STYLE: &str = "REGSWEEP_S3_PATH_STYLE";
    /// Where manifests are discovered: storage or the API alone.
    pub const SOURCE: &str = "REGSWEEP_SOURCE";
    /// Repositories to clean, for accounts without catalog access.
    pub const REPOSITORIES: &str = "REGSWEEP_REPOSITORIES";
    /// Log verbosity on standard error.
    pub const LOG: &str = "REGSWEEP_LOG";
    /// No progress output.
    pub const QUIET: &str = "REGSWEEP_QUIET";
    /// Publish to the GitHub Actions job summary and step outputs.
    pub const GITHUB_SUMMARY: &str = "REGSWEEP_GITHUB_SUMMARY";
    /// Comment the report on the pull request (GitHub Actions, `pull_request` events).
    pub const COMMENT_ON_PR: &str = "REGSWEEP_COMMENT_ON_PR";
    /// The token for pull-request comments: the standard Actions variable.
    pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
    /// A GitLab token with `api` scope, for the merge-request note.
    pub const GITLAB_TOKEN: &str = "REGSWEEP_GITLAB_TOKEN";
    /// Which kind of registry: `auto`, `distribution`, `digitalocean`, `ghcr`, `gitlab`,
    /// `harbor`.
    pub const PROVIDER: &str = "REGISTRY_PROVIDER";
    /// The older name of `REGISTRY_PROVIDER`, still read when it is unset.
    pub const PROVIDER_ALIAS: &str = "REGSWEEP_PROVIDER";
    /// The older name of `REGSWEEP_REPOSITORIES` as the provider issues write it.
    pub const REPOSITORIES_ALIAS: &str = "REPOSITORIES";
    /// GHCR: the user or organization that owns the packages.
    pub const GHCR_OWNER: &str = "GHCR_OWNER";
    /// GitHub Actions: the owner of the workflow's repository.
    pub const GITHUB_REPOSITORY_OWNER: &str = "GITHUB_REPOSITORY_OWNER";
    /// The GitHub REST API's URL (GitHub Actions sets it).
    pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
    /// GitLab: the REST API's URL (GitLab CI sets it).
    pub const GITLAB_API_URL: &str = "CI_API_V4_URL";
    /// GitLab: the project, by id or path (GitLab CI sets the id).
    pub const GITLAB_PROJECT: &str = "CI_PROJECT_ID";
    /// GitLab: a personal, project or group token, sent as `PRIVATE-TOKEN`.
    pub const GITLAB_API_TOKEN: &str = "GITLAB_TOKEN";
    /// GitLab: the job's token, sent as `JOB-TOKEN`.
    pub const GITLAB_JOB_TOKEN: &str = "CI_JOB_TOKEN";
    /// GitLab: the registry's host (GitLab CI sets it).
    pub const GITLAB_REGISTRY: &str = "CI_REGISTRY";
    /// GitLab: the registry user (GitLab CI sets it: `gitlab-ci-token`).
    pub const GITLAB_REGISTRY_USER: &str = "CI_REGISTRY_USER";
    /// GitLab: the registry password (GitLab CI sets it: the job token).
    pub const GITLAB_REGISTRY_PASSWORD: &str = "CI_REGISTRY_PASSWORD";
    /// Harbor: the projects to clean, comma-separated.
    pub const HARBOR_PROJECT: &str = "HARBOR_PROJECT";
    /// The DigitalOcean API token (the seed's name).
    pub const DIGITALOCEAN_TOKEN: &str = "DIGITALOCEAN_ACCESS_TOKEN";
    /// The DigitalOcean registry's name.
    pub const DO_REGISTRY: &str = "REGSWEEP_DO_REGISTRY";
    /// The DigitalOcean API's URL.
    pub const DO_API_URL: &str = "REGSWEEP_DO_API_URL";
    /// Start garbage collection after a real run (DigitalOcean).
    pub const GC: &str = "REGSWEEP_GC";
    /// Let the registry's garbage collection also delete untagged manifests.
    pub const GC_INCLUDE_UNTAGGED: &str = "REGSWEEP_GC_INCLUDE_UNTAGGED";
    /// How long to follow garbage collection.
    pub const GC_TIMEOUT: &str = "REGSWEEP_GC_TIMEOUT";
    /// How often to look at garbage collection.
    pub const GC_POLL: &str = "REGSWEEP_GC_POLL";
    /// Also write the Markdown report to this file.
    pub const MARKDOWN_FILE: &str = "REGSWEEP_MARKDOWN_FILE";
    /// Also write the JSON report to this file.
    pub const JSON_FILE: &str = "REGSWEEP_JSON_FILE";
    /// GHCR: the undo journal, one line per deleted version as it goes.
    pub const JOURNAL: &str = "REGSWEEP_JOURNAL";
    /// The retention policy file (or its YAML text).
    pub const POLICY: &str = "REGSWEEP_POLICY";
    /// Maintenance: the registry is stopped.
    pub const REGISTRY_STOPPED: &str = "REGSWEEP_REGISTRY_STOPPED";
}

/// What regsweep does besides a run.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Plan as a run would, delete nothing, and write the plan to review: every decision with
    /// its reason, what the registry held, and a content hash (the report shows it)
    Plan {
        /// Where to write the plan [default: --plan-file]
        #[arg(long, value_name = "PLAN.json")]
        out: Option<std::path::PathBuf>,
    },
    /// Delete exactly what a reviewed plan lists, and nothing whose tags changed since:
    /// refused for another registry or provider, an edited or cut file, or a plan older than
    /// REGSWEEP_PLAN_MAX_AGE
    Apply {
        /// The plan `regsweep plan` wrote [default: --plan-file]
        #[arg(value_name = "PLAN.json")]
        plan: Option<std::path::PathBuf>,
    },
    /// Maintenance window: with the registry read-only (storage.maintenance.readonly.enabled)
    /// or stopped (--registry-stopped), plan as a run, delete in storage and collect garbage at
    /// storage speed, to the registry's own garbage-collect's result (REGISTRY_DIR or
    /// REGISTRY_STORAGE=s3)
    Maintenance,
    /// Retention policies: `regsweep policy check FILE` validates a policy file without a
    /// registry and prints its rules as understood
    Policy {
        /// What to do with the policy.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// GHCR: restore the package versions a run deleted, from its journal (the newest run in
    /// it) or its JSON report (GitHub keeps deleted versions for 30 days). Takes the same GHCR
    /// options as the run
    Restore {
        /// The run's journal (REGSWEEP_JOURNAL) or JSON report (REGSWEEP_JSON_FILE, or
        /// --output json)
        #[arg(long, value_name = "REPORT.json")]
        from: std::path::PathBuf,
    },
}

/// What `regsweep policy` does.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (no registry needed) and print its rules as understood; a
    /// mistake is one line with the file, line and column (exit 2)
    Check {
        /// The policy file [default: --policy]
        #[arg(value_name = "POLICY.yml")]
        file: Option<String>,
    },
}

/// Where a GHCR run records what it deleted when neither `--journal` nor REGSWEEP_JOURNAL says.
pub const DEFAULT_JOURNAL: &str = "regsweep-journal.jsonl";

/// Where `plan` writes and `apply` reads when neither the command line nor REGSWEEP_PLAN says.
pub const DEFAULT_PLAN_FILE: &str = "regsweep-plan.json";

/// What one invocation does, from the subcommand or, for CI wrappers, REGSWEEP_MODE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Discover, plan, delete (unless DRY_RUN), report.
    Run,
    /// Plan and write the plan to this file; delete nothing.
    Plan(std::path::PathBuf),
    /// Delete what the plan in this file lists.
    Apply(std::path::PathBuf),
    /// Restore the GHCR versions deleted by the run this JSON report describes.
    Restore(std::path::PathBuf),
    /// Check this policy file (a path, or YAML text) and print its rules.
    CheckPolicy(String),
    /// The maintenance window: plan, delete in storage, collect garbage.
    Maintenance,
}

impl Cli {
    /// The action asked for. A subcommand and a different REGSWEEP_MODE together are refused
    /// rather than one silently winning: a plan-only job must never delete.
    pub fn action(&self) -> Result<Action, String> {
        let file = |given: &Option<std::path::PathBuf>| {
            given.clone().unwrap_or_else(|| self.plan_file.clone())
        };
        let from_command = match &self.command {
            None => None,
            Some(Command::Plan { out }) => Some(Action::Plan(file(out))),
            Some(Command::Apply { plan }) => Some(Action::Apply(file(plan))),
            Some(Command::Restore { from }) => Some(Action::Restore(from.clone())),
            Some(Command::Maintenance) => Some(Action::Maintenance),
            Some(Command::Policy {
                command: PolicyCommand::Check { file },
            }) => {
                let file = file
                    .clone()
                    .or_else(|| self.policy.clone())
                    .filter(|f| !f.trim().is_empty())
                    .ok_or("`regsweep policy check` needs a policy file (or --policy)")?;
                Some(Action::CheckPolicy(file))
            }
        };
        let from_mode = match self.mode.as_str() {
            "plan" => Action::Plan(file(&None)),
            "apply" => Action::Apply(file(&None)),
            "maintenance" => Action::Maintenance,
            _ => Action::Run,
        };
        match from_command {
            None => Ok(from_mode),
            Some(action) => {
                let agrees = matches!(
                    (&action, &from_mode),
                    (_, Action::Run)
                        | (Action::Plan(_), Action::Plan(_))
                        | (Action::Apply(_), Action::Apply(_))
                        | (Action::Maintenance, Action::Maintenance)
                );
                if agrees {
                    Ok(action)
                } else {
                    Err(format!(
                        "the subcommand and {} (`{}`) ask for different things; give one",
                        env::MODE,
                        self.mode
                    ))
                }
            }
        }
    }
}

/// The default `REGSWEEP_CONCURRENCY`.
pub const DEFAULT_CONCURRENCY: &str = "8";

/// regsweep deletes what nobody can pull by tag any more (untagged manifests) and commit-hash
/// tags beyond the newest N, through the registry's own API, without breaking an image that
/// can still be pulled: children of multi-arch images, signatures and referrers of kept images
/// are kept. Then it says how to free the disk space.
///
/// Every option is also an environment variable (shown in brackets); an empty variable counts
/// as unset. Booleans accept true/false, 1/0, yes/no in any case.
#[derive(Debug, Parser)]
#[command(name = "regsweep", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// What to do; without one, a run: discover, plan, delete (unless DRY_RUN), report.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// URL of the registry's API, e.g. `https://registry.example.com:5000` (required).
    #[arg(long, global = true, env = env::REGISTRY_URL, value_name = "URL", hide_env_values = true)]
    pub registry_url: Option<String>,

    /// Folder holding the registry's storage (the one containing `docker/registry/v2`)
    /// [default: /registry]. With `REGISTRY_STORAGE=s3`: the registry's `rootdirectory`
    /// inside the bucket [default: the bucket's root]. When it is not given and `/registry`
    /// does not exist, regsweep works from the API alone (see --source).
    #[arg(long, global = true, env = env::REGISTRY_DIR, value_name = "PATH")]
    pub registry_dir: Option<String>,

    /// Kind of storage the registry uses: `filesystem` (the folder in --registry-dir) or `s3`
    /// (case-insensitive) [default: filesystem].
    #[arg(long, global = true, env = env::REGISTRY_STORAGE, value_name = "KIND")]
    pub registry_storage: Option<String>,

    /// Where manifests are discovered: `storage` (REGISTRY_DIR or S3; finds untagged
    /// manifests), `api` (catalog, tags, manifests, referrers through the registry API alone;
    /// cannot see untagged manifests), or `auto`: storage when REGISTRY_STORAGE is set or
    /// the storage folder exists, else the API.
    #[arg(long, global = true, env = env::SOURCE, value_name = "SOURCE", default_value = "auto")]
    pub source: String,

    /// Only these repositories, comma-separated (`team/app,team/api`): for accounts that may
    /// not list the catalog. Combines with --repo-filter.
    #[arg(long, global = true, env = env::REPOSITORIES, value_name = "NAMES")]
    pub repositories: Option<String>,

    /// S3 access key ID; when unset, the AWS SDK's default credential chain (environment,
    /// profile, web identity, instance role). Never printed.
    #[arg(long, global = true, env = env::ACCESS_KEY, value_name = "KEY", hide_env_values = true)]
    pub access_key: Option<String>,

    /// S3 secret access key, with --access-key. Never printed.
    #[arg(long, global = true, env = env::SECRET_KEY, value_name = "SECRET", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// The S3 bucket holding the registry's storage (required with `REGISTRY_STORAGE=s3`).
    #[arg(long, global = true, env = env::BUCKET, value_name = "NAME")]
    pub bucket: Option<String>,

    /// The bucket's region [default: AWS_REGION or the profile's, else us-east-1].
    #[arg(long, global = true, env = env::REGION, value_name = "REGION")]
    pub region: Option<String>,

    /// Endpoint of an S3-compatible store (MinIO, Ceph, DigitalOcean Spaces, Cloudflare R2),
    /// e.g. `https://minio.example.com:9000`; the SDK's AWS_ENDPOINT_URL works too.
    #[arg(long, global = true, env = env::S3_ENDPOINT, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Path-style S3 addressing (`https://host/bucket/key`) [default: true with a custom
    /// endpoint, false for AWS].
    #[arg(long, global = true, env = env::S3_PATH_STYLE, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = parse::boolean)]
    pub s3_path_style: Option<bool>,

    /// Accept the registry's TLS certificate without verifying it. Prefer --ca-cert.
    #[arg(long, global = true, env = env::SELF_SIGNED_CERT, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub self_signed_cert: bool,

    /// Basic-auth credentials as `user:password`. Never printed.
    #[arg(long, global = true, env = env::REGISTRY_AUTH, value_name = "USER:PASSWORD", hide_env_values = true)]
    pub registry_auth: Option<String>,

    /// Show what would be deleted; delete nothing.
    #[arg(long, global = true, env = env::DRY_RUN, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub dry_run: bool,

    /// Clean only this repository (exact name, e.g. `team/app`).
    #[arg(long, global = true, env = env::REPO_FILTER, value_name = "NAME")]
    pub repo_filter: Option<String>,

    /// A retention policy file (YAML: rules per tag convention, see the README's "Retention
    /// policies"), or its text when the value spans lines. Replaces HASH_TAG_PATTERN and
    /// HASH_TAG_KEEP, which may not be given with it. Default: the seed's policy made of those
    #[arg(long, global = true, env = env::POLICY, value_name = "FILE")]
    pub policy: Option<String>,

    /// Which of HASH_TAG_PATTERN and HASH_TAG_KEEP were given (not defaulted): they may not be
    /// given with a policy file.
    #[arg(skip)]
    pub hash_tags_given: Vec<&'static str>,

    /// Regular expression for commit-hash tags; other tags (except `sha256-…` attachments) are
    /// version tags and always protect their image.
    #[arg(long, global = true, env = env::HASH_TAG_PATTERN, value_name = "REGEX", default_value = crate::plan::DEFAULT_HASH_TAG_PATTERN)]
    pub hash_tag_pattern: String,

    /// How many hash-tagged images to keep per repository, newest by creation date.
    #[arg(long, global = true, env = env::HASH_TAG_KEEP, value_name = "N", default_value = "10", allow_hyphen_values = true, value_parser = parse::count)]
    pub hash_tag_keep: usize,

    /// PEM file of certificates to trust for the registry (a private CA or a self-signed
    /// certificate), in addition to the built-in roots.
    #[arg(long, global = true, env = env::CA_CERT, value_name = "PATH")]
    pub ca_cert: Option<String>,

    /// Keep every manifest younger than this (`30m`, `2h`, `7d`); guards pushes in progress.
    #[arg(long, global = true, env = env::MIN_AGE, value_name = "DURATION", default_value = "0s", value_parser = parse::duration)]
    pub min_age: Duration,

    /// Requests and storage reads in flight at once.
    #[arg(long, global = true, env = env::CONCURRENCY, value_name = "N", default_value = DEFAULT_CONCURRENCY, value_parser = parse::concurrency)]
    pub concurrency: usize,

    /// Report format on standard output: `text`, `json` or `markdown`.
    #[arg(long, global = true, env = env::OUTPUT, value_name = "FORMAT", default_value = "text")]
    pub output: String,

    /// After a real run, re-resolve every kept tag and check its manifest, children, config and
    /// layers can be pulled; a failure fails the run.
    #[arg(long, global = true, env = env::VERIFY, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = parse::boolean)]
    pub verify: bool,

    /// Refuse to delete anything when the plan deletes more than N manifests (the report still
    /// shows the plan). A guard for first runs. Default: no limit.
    #[arg(long, global = true, env = env::MAX_DELETE, value_name = "N", allow_hyphen_values = true, value_parser = parse::count)]
    pub max_delete: Option<usize>,

    /// What to do, for CI wrappers that set variables: `run` (discover, plan, delete),
    /// `plan` (write the plan to REGSWEEP_PLAN, delete nothing), `apply` (delete what the
    /// plan in REGSWEEP_PLAN lists) or `maintenance` (the maintenance window). The `plan`,
    /// `apply` and `maintenance` subcommands do the same
    #[arg(long, global = true, env = env::MODE, value_name = "MODE", default_value = "run", value_parser = ["run", "plan", "apply", "maintenance"])]
    pub mode: String,

    /// The plan file: where `plan` writes it and `apply` reads it
    #[arg(long, global = true, env = env::PLAN, value_name = "PATH", default_value = DEFAULT_PLAN_FILE)]
    pub plan_file: std::path::PathBuf,

    /// How old a plan `apply` still takes (`7d`, `12h`)
    #[arg(long, global = true, env = env::PLAN_MAX_AGE, value_name = "DURATION", default_value = "7d", value_parser = parse::positive_duration)]
    pub plan_max_age: Duration,

    /// Maintenance: the registry is stopped, so it cannot answer the read-only check (a
    /// registry that answers must still prove it is read-only)
    #[arg(long, global = true, env = env::REGISTRY_STOPPED, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub registry_stopped: bool,

    /// The run's time budget (`25m`, `2h`). Discovery and planning run in full; deletions go
    /// in the plan's order until the next one, or a wait (rate limit, retry, garbage
    /// collection), would end after it; then the run stops cleanly, reports what is done and
    /// left, and exits 3: the next run goes on. Default: no limit
    #[arg(long, global = true, env = env::MAX_DURATION, value_name = "DURATION", value_parser = parse::positive_duration)]
    pub max_duration: Option<Duration>,

    /// Allow sending credentials over plain `http://` to a host that is not loopback.
    #[arg(long, global = true, env = env::ALLOW_INSECURE_HTTP, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub allow_insecure_http: bool,

    /// Time limit for one HTTP attempt (connect, send, read the answer).
    #[arg(long, global = true, env = env::HTTP_TIMEOUT, value_name = "DURATION", default_value = "60s", value_parser = parse::positive_duration)]
    pub http_timeout: Duration,

    /// Attempts per HTTP request, the first included; connection errors, 5xx and 429 are
    /// retried with exponential backoff and jitter, honouring `Retry-After`.
    #[arg(long, global = true, env = env::HTTP_ATTEMPTS, value_name = "N", default_value = "5", value_parser = parse::attempts)]
    pub http_attempts: u32,

    /// Delay before the first retry; it doubles with each retry, up to 30s.
    #[arg(long, global = true, env = env::RETRY_DELAY, value_name = "DURATION", default_value = "500ms", value_parser = parse::duration)]
    pub retry_delay: Duration,

    /// No progress output on standard error (bars on a terminal, a line every few seconds
    /// elsewhere). The report is unchanged.
    #[arg(short, long, global = true, env = env::QUIET, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub quiet: bool,

    /// Log detail on standard error: `off`, `error`, `warn`, `info`, `debug` or `trace`. Logs
    /// never contain passwords or tokens, at any level.
    #[arg(long, global = true, env = env::LOG, value_name = "LEVEL", default_value = "warn")]
    pub log: String,

    /// Which kind of registry: `distribution` (any OCI registry), `digitalocean`, `ghcr`
    /// (GitHub Container Registry), `gitlab` (a GitLab project's registry), `harbor`, or
    /// `auto`: DigitalOcean when REGISTRY_URL is on registry.digitalocean.com (or unset while
    /// DIGITALOCEAN_ACCESS_TOKEN is set), GHCR when it is on ghcr.io, else distribution.
    /// REGSWEEP_PROVIDER, its older name, is read when it is unset
    #[arg(long, global = true, env = env::PROVIDER, value_name = "PROVIDER", default_value = "auto")]
    pub provider: String,

    /// GHCR: the user or organization owning the packages [default: GITHUB_REPOSITORY_OWNER]
    #[arg(long, global = true, env = env::GHCR_OWNER, value_name = "OWNER")]
    pub ghcr_owner: Option<String>,

    /// GitHub Actions' owner of the workflow's repository (the default GHCR owner)
    #[arg(long, global = true, env = env::GITHUB_REPOSITORY_OWNER, value_name = "OWNER", hide = true)]
    pub github_repository_owner: Option<String>,

    /// GHCR: the GitHub REST API (GitHub Enterprise, a test server)
    #[arg(long, global = true, env = env::GITHUB_API_URL, value_name = "URL", default_value = "https://api.github.com")]
    pub github_api_url: String,

    /// GitLab: the REST API [default: CI_API_V4_URL, which GitLab CI sets]
    #[arg(long, global = true, env = env::GITLAB_API_URL, value_name = "URL")]
    pub gitlab_api_url: Option<String>,

    /// GitLab: the project, by id or by path (`group/project`) [default: CI_PROJECT_ID]
    #[arg(long, global = true, env = env::GITLAB_PROJECT, value_name = "ID")]
    pub gitlab_project: Option<String>,

    /// GitLab: a personal, project or group access token with `api` scope, sent as
    /// PRIVATE-TOKEN; without it the job's CI_JOB_TOKEN is used. Never printed
    #[arg(long, global = true, env = env::GITLAB_API_TOKEN, value_name = "TOKEN", hide_env_values = true)]
    pub gitlab_api_token: Option<String>,

    /// GitLab CI's job token, sent as JOB-TOKEN when GITLAB_TOKEN is unset. Never printed
    #[arg(long, global = true, env = env::GITLAB_JOB_TOKEN, value_name = "TOKEN", hide_env_values = true, hide = true)]
    pub gitlab_job_token: Option<String>,

    /// GitLab CI's registry host (the default REGISTRY_URL with the gitlab provider)
    #[arg(long, global = true, env = env::GITLAB_REGISTRY, value_name = "HOST", hide = true)]
    pub gitlab_registry: Option<String>,

    /// GitLab CI's registry user (with CI_REGISTRY_PASSWORD, the default REGISTRY_AUTH)
    #[arg(long, global = true, env = env::GITLAB_REGISTRY_USER, value_name = "USER", hide = true)]
    pub gitlab_registry_user: Option<String>,

    /// GitLab CI's registry password. Never printed
    #[arg(long, global = true, env = env::GITLAB_REGISTRY_PASSWORD, value_name = "PASSWORD", hide_env_values = true, hide = true)]
    pub gitlab_registry_password: Option<String>,

    /// Harbor: the projects to clean, comma-separated [default: every project the
    /// credentials can list]
    #[arg(long, global = true, env = env::HARBOR_PROJECT, value_name = "NAMES")]
    pub harbor_project: Option<String>,

    /// DigitalOcean API token (read and write access to the registry). Never printed
    #[arg(long, global = true, env = env::DIGITALOCEAN_TOKEN, value_name = "TOKEN", hide_env_values = true)]
    pub digitalocean_token: Option<String>,

    /// The DigitalOcean registry's name [default: the REGISTRY_URL path, or the account's only
    /// registry]
    #[arg(long, global = true, env = env::DO_REGISTRY, value_name = "NAME")]
    pub do_registry: Option<String>,

    /// The DigitalOcean API (a proxy, a test server)
    #[arg(long, global = true, env = env::DO_API_URL, value_name = "URL", default_value = "https://api.digitalocean.com")]
    pub do_api_url: String,

    /// DigitalOcean: after a real run that deleted something, start garbage collection of
    /// unreferenced blobs only and follow it to its end. The registry is read-only while it
    /// runs
    #[arg(long, global = true, env = env::GC, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = parse::boolean)]
    pub gc: bool,

    /// Let the registry's garbage collection also delete every manifest without a tag of its
    /// own (DigitalOcean's `untagged manifests and unreferenced blobs`). On distribution-based
    /// registries that deletes the children of kept multi-arch images and the signatures and
    /// SBOMs of kept images, so `true` is refused while the plan keeps any such manifest;
    /// `force` runs it anyway
    #[arg(long, global = true, env = env::GC_INCLUDE_UNTAGGED, value_name = "BOOL|force", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::untagged_sweep)]
    pub gc_include_untagged: UntaggedSweep,

    /// How long to follow garbage collection before reporting it as still running
    #[arg(long, global = true, env = env::GC_TIMEOUT, value_name = "DURATION", default_value = "30m", value_parser = parse::positive_duration)]
    pub gc_timeout: Duration,

    /// How often to look at a running garbage collection
    #[arg(long, global = true, env = env::GC_POLL, value_name = "DURATION", default_value = "10s", value_parser = parse::positive_duration)]
    pub gc_poll: Duration,

    /// Also write the Markdown report to this file (a CI artifact, a merge-request note),
    /// whatever --output prints
    #[arg(long, global = true, env = env::MARKDOWN_FILE, value_name = "PATH")]
    pub markdown_file: Option<String>,

    /// Also write the JSON report to this file, whatever --output prints
    #[arg(long, global = true, env = env::JSON_FILE, value_name = "PATH")]
    pub json_file: Option<String>,

    /// GHCR: append each package version to this file as it is deleted (one JSON line,
    /// synced to disk): the undo record `regsweep restore --from` takes, even when the run is
    /// killed before its report. Keep it with the run's logs (30 days)
    #[arg(long, global = true, env = env::JOURNAL, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
    pub journal: std::path::PathBuf,

    /// Inside GitHub Actions (`GITHUB_ACTIONS=true`): append the Markdown report to the job
    /// summary, write the step outputs and the JSON report file, annotate warnings
    #[arg(long, global = true, env = env::GITHUB_SUMMARY, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = parse::boolean)]
    pub github_summary: bool,

    /// On a `pull_request` event in GitHub Actions: one comment per registry on the pull
    /// request with the Markdown report, updated in place by later runs (needs GITHUB_TOKEN
    /// with `pull-requests: write`; a read-only token falls back to the job summary)
    #[arg(long, global = true, env = env::COMMENT_ON_PR, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse::boolean)]
    pub comment_on_pr: bool,

    /// Token for pull-request comments. Never printed
    #[arg(long, global = true, env = env::GITHUB_TOKEN, value_name = "TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,

    /// In a GitLab merge-request pipeline: a token with `api` scope (CI_JOB_TOKEN cannot post
    /// notes) for one note per registry with the Markdown report, updated in place by later
    /// runs. Never printed
    #[arg(long, global = true, env = env::GITLAB_TOKEN, value_name = "TOKEN", hide_env_values = true)]
    pub gitlab_token: Option<String>,

    /// The registry's config file, named in the garbage-collection command the report shows.
    #[arg(long, global = true, env = env::REGISTRY_CONFIG, value_name = "PATH", default_value = "/etc/docker/registry/config.yml")]
    pub registry_config: String,
}
