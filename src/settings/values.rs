//! values: turns one raw input into a value, or into one line that names the input and says
//! what a valid value looks like. Pure; secrets are never echoed.

use secrecy::SecretString;
use url::Url;

use crate::cli::env;
use crate::registry::Credentials;

/// An input that is not valid. Displayed as one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {input} (--{flag}): {problem}")]
pub struct SettingsError {
    /// The environment variable name.
    pub input: String,
    /// The flag name, without dashes.
    pub flag: String,
    /// What is wrong, and what would be right.
    pub problem: String,
}

impl SettingsError {
    /// The one line for a value a clap value parser refused, naming the environment variable
    /// and the flag of `command`'s argument; `None` for other clap errors (help, version,
    /// unknown flags), which clap prints itself.
    pub fn from_clap(error: &clap::Error, command: &clap::Command) -> Option<SettingsError> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if !matches!(
            error.kind(),
            ErrorKind::ValueValidation | ErrorKind::InvalidValue
        ) {
            return None;
        }
        let shown = match error.get(ContextKind::InvalidArg)? {
            ContextValue::String(text) => text.clone(),
            _ => return None,
        };
        let long = shown
            .trim_start_matches('-')
            .split([' ', '=', '<', '['])
            .next()
            .unwrap_or_default()
            .to_string();
        let argument = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))?;
        let input = argument
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("--{long}"));
        let problem = std::error::Error::source(error)
            .map(ToString::to_string)
            .or_else(|| match error.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(value)) => Some(format!("`{value}` is not valid")),
                _ => None,
            })
            .unwrap_or_else(|| "not a valid value".to_string());
        Some(SettingsError {
            input,
            flag: long,
            problem: one_line(&problem),
        })
    }
}

/// The value of an optional input, trimmed; `None` when unset or empty (an empty variable
/// counts as unset).
pub fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The error for `input` (`--flag`) with what is wrong.
pub fn error(input: &str, flag: &str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        input: input.to_string(),
        flag: flag.to_string(),
        problem: problem.into(),
    }
}

/// The last line of a multi-line error (the regex crate's parse errors draw a caret diagram).
pub fn one_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

pub fn registry_url(raw: Option<&str>) -> Result<(Url, Option<Credentials>), SettingsError> {
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

pub fn credentials(raw: Option<&str>) -> Result<Option<Credentials>, SettingsError> {
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
