//! sources: where a run looks and which provider it uses: a storage folder, an S3 bucket, the
//! registry API alone, or a provider's REST API (DigitalOcean), chosen from the options and
//! checked (the folder is registry storage, the bucket named, the token given).

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use url::Url;

use super::values::{error, non_empty, registry_url, SettingsError};
use crate::cli::{env, Cli};
use crate::providers::digitalocean::DigitalOceanSettings;
use crate::providers::distribution::layout::LAYOUT_ROOT;
use crate::providers::distribution::s3::S3Location;
use crate::providers::ghcr::{GhcrSettings, GHCR_HOST};
use crate::providers::gitlab::{GitlabSettings, GitlabToken};
use crate::providers::harbor::HarborSettings;
use crate::registry::Credentials;
use crate::secret::SecretStringEq;

/// Where manifests are discovered from, and through which provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local folder holding `docker/registry/v2`.
    Filesystem(PathBuf),
    /// The registry's S3 bucket.
    S3(S3Location),
    /// A DigitalOcean registry, through the DigitalOcean API.
    DigitalOcean(DigitalOceanSettings),
    /// GitHub Container Registry, through the GitHub Packages API.
    Ghcr(GhcrSettings),
    /// A GitLab project's container registry, through the GitLab API.
    Gitlab(GitlabSettings),
    /// Harbor, through its API.
    Harbor(HarborSettings),
    /// No storage: the registry's API alone (catalog, tags, manifests, referrers), which
    /// cannot see untagged manifests. The text says why this source was chosen.
    Api(String),
}

/// The default storage folder (`REGISTRY_DIR`), where the seed's Docker image mounts it.
pub const DEFAULT_REGISTRY_DIR: &str = "/registry";

impl Source {
    /// For messages and reports.
    pub fn describe(&self) -> String {
        match self {
            Source::Filesystem(path) => path.display().to_string(),
            Source::S3(location) => location.describe(),
            Source::Api(_) => "none (registry API only)".to_string(),
            Source::DigitalOcean(d) => match &d.registry {
                Some(name) => format!("DigitalOcean API (registry `{name}`)"),
                None => "DigitalOcean API".to_string(),
            },
            Source::Ghcr(g) => format!("GitHub Packages (`{}`)", g.owner),
            Source::Gitlab(g) => format!("GitLab API (project `{}`)", g.project),
            Source::Harbor(h) if h.projects.is_empty() => "Harbor API".to_string(),
            Source::Harbor(h) => format!("Harbor API (projects {})", h.projects.join(", ")),
        }
    }

    /// The provider's name, as plans record it.
    pub fn provider_name(&self) -> &'static str {
        match self {
            Source::Filesystem(_) | Source::S3(_) | Source::Api(_) => "distribution",
            Source::DigitalOcean(_) => "digitalocean",
            Source::Ghcr(_) => "ghcr",
            Source::Gitlab(_) => "gitlab",
            Source::Harbor(_) => "harbor",
        }
    }

    /// Whether this provider starts the registry's garbage collection.
    pub fn collects_garbage(&self) -> bool {
        matches!(self, Source::DigitalOcean(_) | Source::Harbor(_))
    }
}

/// What the options choose: where to look, the registry API's URL, the credentials in that
/// URL, and those the provider brings (DigitalOcean's token, GHCR's owner and token, GitLab
/// CI's registry login), used when REGISTRY_AUTH is unset.
pub(super) struct Chosen {
    pub(super) source: Source,
    pub(super) registry_url: Url,
    pub(super) url_credentials: Option<Credentials>,
    pub(super) provider_credentials: Option<Credentials>,
}

/// Chooses the provider (`REGISTRY_PROVIDER`) and where it looks.
pub(super) fn choose(cli: &Cli) -> Result<Chosen, SettingsError> {
    if let Some((settings, url)) = digitalocean(cli)? {
        // DigitalOcean's registry takes the API token as user name and password.
        let provider_credentials = Some(Credentials {
            username: secrecy::ExposeSecret::expose_secret(&settings.token.0).to_string(),
            password: settings.token.0.clone(),
            username_is_secret: true,
        });
        return Ok(Chosen {
            source: Source::DigitalOcean(settings),
            registry_url: url,
            url_credentials: None,
            provider_credentials,
        });
    }
    let kind = cli.provider.trim().to_ascii_lowercase();
    let raw_url = non_empty(&cli.registry_url);
    let on_ghcr = raw_url
        .and_then(|u| Url::parse(u).ok())
        .is_some_and(|u| u.host_str() == Some(GHCR_HOST));
    match kind.as_str() {
        "ghcr" => ghcr(cli),
        "" | "auto" if on_ghcr => ghcr(cli),
        "gitlab" => gitlab(cli),
        "harbor" => harbor(cli),
        _ => {
            let (registry_url, url_credentials) = registry_url(raw_url)?;
            Ok(Chosen {
                source: source(cli)?,
                registry_url,
                url_credentials,
                provider_credentials: None,
            })
        }
    }
}

/// An http(s) URL option, checked.
fn api_url(text: &str, input: &'static str, flag: &'static str) -> Result<Url, SettingsError> {
    let url = Url::parse(text.trim())
        .map_err(|e| error(input, flag, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(error(
            input,
            flag,
            format!("`{text}` is not an http(s) URL"),
        ));
    }
    Ok(url)
}

/// The registry URL of a hosted provider: REGISTRY_URL, else the provider's default.
fn hosted_registry_url(
    cli: &Cli,
    default: Option<String>,
    provider: &str,
) -> Result<(Url, Option<Credentials>), SettingsError> {
    let given = non_empty(&cli.registry_url).map(str::to_string).or(default);
    let Some(text) = given else {
        return Err(error(
            env::REGISTRY_URL,
            "registry-url",
            format!("the {provider} provider needs the registry's URL"),
        ));
    };
    let text = if text.contains("://") {
        text
    } else {
        format!("https://{text}")
    };
    registry_url(Some(&text))
}

/// GHCR: `GHCR_OWNER` (else `GITHUB_REPOSITORY_OWNER`), `GITHUB_API_URL`, `GITHUB_TOKEN`;
/// the registry at `REGISTRY_URL` (default `https://ghcr.io`) with `<owner>:<token>`.
fn ghcr(cli: &Cli) -> Result<Chosen, SettingsError> {
    let owner = non_empty(&cli.ghcr_owner)
        .or(non_empty(&cli.github_repository_owner))
        .ok_or_else(|| {
            error(
                env::GHCR_OWNER,
                "ghcr-owner",
                "the ghcr provider needs the packages' owner in GHCR_OWNER (in GitHub Actions \
                 GITHUB_REPOSITORY_OWNER is the default)",
            )
        })?;
    if !owner
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(error(
            env::GHCR_OWNER,
            "ghcr-owner",
            format!("`{owner}` is not a GitHub user or organization name"),
        ));
    }
    let token = non_empty(&cli.github_token).ok_or_else(|| {
        error(
            env::GITHUB_TOKEN,
            "github-token",
            "the ghcr provider needs a token in GITHUB_TOKEN (packages: write)",
        )
    })?;
    let api_url = api_url(&cli.github_api_url, env::GITHUB_API_URL, "github-api-url")?;
    let (registry_url, url_credentials) =
        hosted_registry_url(cli, Some(format!("https://{GHCR_HOST}")), "ghcr")?;
    let token = SecretString::from(token.to_string());
    Ok(Chosen {
        provider_credentials: Some(Credentials {
            username: owner.to_string(),
            password: token.clone(),
            username_is_secret: false,
        }),
        source: Source::Ghcr(GhcrSettings {
            owner: owner.to_string(),
            api_url,
            token: SecretStringEq(token),
            journal: cli.journal.clone(),
        }),
        registry_url,
        url_credentials,
    })
}

/// GitLab: `CI_API_V4_URL`, `CI_PROJECT_ID` (or a path), `GITLAB_TOKEN` (else
/// `CI_JOB_TOKEN`); the registry at `REGISTRY_URL` (default `https://$CI_REGISTRY`) with
/// `CI_REGISTRY_USER:CI_REGISTRY_PASSWORD`.
fn gitlab(cli: &Cli) -> Result<Chosen, SettingsError> {
    let api = non_empty(&cli.gitlab_api_url).ok_or_else(|| {
        error(
            env::GITLAB_API_URL,
            "gitlab-api-url",
            "the gitlab provider needs the API's URL (GitLab CI sets CI_API_V4_URL)",
        )
    })?;
    let api_url = api_url(api, env::GITLAB_API_URL, "gitlab-api-url")?;
    let project = non_empty(&cli.gitlab_project)
        .ok_or_else(|| {
            error(
                env::GITLAB_PROJECT,
                "gitlab-project",
                "the gitlab provider needs the project (GitLab CI sets CI_PROJECT_ID)",
            )
        })?
        .trim_matches('/')
        .to_string();
    let token = match (
        non_empty(&cli.gitlab_api_token),
        non_empty(&cli.gitlab_job_token),
    ) {
        (Some(token), _) => {
            GitlabToken::Private(SecretStringEq(SecretString::from(token.to_string())))
        }
        (None, Some(token)) => {
            GitlabToken::Job(SecretStringEq(SecretString::from(token.to_string())))
        }
        (None, None) => {
            return Err(error(
                env::GITLAB_API_TOKEN,
                "gitlab-api-token",
                "the gitlab provider needs GITLAB_TOKEN (a token with `api` scope) or GitLab \
                 CI's CI_JOB_TOKEN",
            ))
        }
    };
    let (registry_url, url_credentials) = hosted_registry_url(
        cli,
        non_empty(&cli.gitlab_registry).map(str::to_string),
        "gitlab",
    )?;
    let provider_credentials = match (
        non_empty(&cli.gitlab_registry_user),
        non_empty(&cli.gitlab_registry_password),
    ) {
        (Some(user), Some(password)) => Some(Credentials {
            username: user.to_string(),
            password: SecretString::from(password.to_string()),
            username_is_secret: false,
        }),
        _ => None,
    };
    Ok(Chosen {
        source: Source::Gitlab(GitlabSettings {
            api_url,
            project,
            token,
        }),
        registry_url,
        url_credentials,
        provider_credentials,
    })
}

/// Harbor: `REGISTRY_URL` is Harbor's (the API is on the same origin), `HARBOR_PROJECT`
/// names the projects (default: all the credentials list).
fn harbor(cli: &Cli) -> Result<Chosen, SettingsError> {
    let (registry_url, url_credentials) = hosted_registry_url(cli, None, "harbor")?;
    let mut projects: Vec<String> = non_empty(&cli.harbor_project)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    projects.sort();
    projects.dedup();
    for project in &projects {
        if !project
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            return Err(error(
                env::HARBOR_PROJECT,
                "harbor-project",
                format!("`{project}` is not a Harbor project name"),
            ));
        }
    }
    Ok(Chosen {
        source: Source::Harbor(HarborSettings {
            projects,
            gc: cli.gc,
            gc_timeout: cli.gc_timeout,
            gc_poll: cli.gc_poll,
        }),
        registry_url,
        url_credentials,
        provider_credentials: None,
    })
}

/// Chooses and checks the discovery source: `REGSWEEP_SOURCE`, `REGISTRY_STORAGE`,
/// `REGISTRY_DIR` and the S3 options.
pub(super) fn source(cli: &Cli) -> Result<Source, SettingsError> {
    let kind = non_empty(&cli.registry_storage).map(str::to_ascii_lowercase);
    let wanted = cli.source.trim().to_ascii_lowercase();
    match wanted.as_str() {
        "api" => return Ok(Source::Api(format!("{}=api", env::SOURCE))),
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
        Some("s3") => return s3_location(cli).map(Source::S3),
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
        None => Ok(Source::Api(format!(
            "neither {} nor {} is set and `{DEFAULT_REGISTRY_DIR}` does not exist",
            env::REGISTRY_STORAGE,
            env::REGISTRY_DIR
        ))),
    }
}

/// The DigitalOcean registry host.
pub const DIGITALOCEAN_REGISTRY_HOST: &str = "registry.digitalocean.com";

/// The DigitalOcean choice (`REGSWEEP_PROVIDER`, `DIGITALOCEAN_ACCESS_TOKEN`, `REGISTRY_URL`):
/// `Some` with the registry URL to use when DigitalOcean is the provider.
pub(super) fn digitalocean(
    cli: &Cli,
) -> Result<Option<(DigitalOceanSettings, Url)>, SettingsError> {
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
        "distribution" | "ghcr" | "gitlab" | "harbor" => false,
        other => {
            return Err(error(
                env::PROVIDER,
                "provider",
                format!(
                    "`{other}` is not one of `auto`, `distribution`, `digitalocean`, `ghcr`, \
                     `gitlab`, `harbor`"
                ),
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
        DigitalOceanSettings {
            token: SecretStringEq(SecretString::from(token.to_string())),
            api_url,
            registry: non_empty(&cli.do_registry)
                .map(str::to_string)
                .or(from_path),
            gc: cli.gc,
            gc_timeout: cli.gc_timeout,
            gc_poll: cli.gc_poll,
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
    let path_style = cli.s3_path_style.unwrap_or(custom_endpoint);
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

fn storage(raw: &str) -> Result<Source, SettingsError> {
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
    Ok(Source::Filesystem(root.to_path_buf()))
}
