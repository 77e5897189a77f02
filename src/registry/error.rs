//! error: what went wrong talking to a registry, in words that say what to do about it.

use reqwest::StatusCode;
use serde::Deserialize;

use crate::control::Halt;
use crate::registry::paging::PagingError;

/// What went wrong talking to the registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP answer at all (connection refused, TLS failure, timeout).
    #[error("cannot reach registry `{registry}`: {message}")]
    Unreachable {
        /// The registry's URL, without credentials.
        registry: String,
        /// The cause, innermost detail included.
        message: String,
    },
    /// 401 or 403.
    #[error("registry `{registry}` refused to {action}: {status}{account}; {hint}")]
    Unauthorized {
        /// The registry's URL.
        registry: String,
        /// What was refused: `delete manifests in \`app\``.
        action: String,
        /// `401 Unauthorized` or `403 Forbidden`.
        status: StatusCode,
        /// ` for user \`ci\`` when credentials were sent.
        account: String,
        /// What to do about it.
        hint: String,
    },
    /// The registry asks for bearer tokens from a realm that cannot be used.
    #[error("cannot authenticate to registry `{registry}`: {message}")]
    TokenRealm {
        /// The registry's URL.
        registry: String,
        /// What is wrong with its token realm or the token server's answer.
        message: String,
    },
    /// 405 on DELETE: the registry has deletion turned off.
    #[error(
        "deletion is disabled on this registry (set REGISTRY_STORAGE_DELETE_ENABLED=true): \
         `{registry}` answered 405 to DELETE"
    )]
    DeletionDisabled {
        /// The registry's URL.
        registry: String,
    },
    /// Any other unexpected answer.
    #[error("registry `{registry}` answered {status} to {action}{detail}")]
    Unexpected {
        /// The registry's URL.
        registry: String,
        /// What was asked.
        action: String,
        /// The status.
        status: StatusCode,
        /// `: CODE message` from the OCI error body, when there is one.
        detail: String,
    },
    /// An answer whose body regsweep cannot use, or a listing it cannot follow.
    #[error("registry `{registry}`: cannot {action}: {message}")]
    Invalid {
        /// The registry's URL.
        registry: String,
        /// What was asked.
        action: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The run's control stopped the request before it was sent.
    #[error(transparent)]
    Halted(#[from] Halt),
}

impl RegistryError {
    /// Whether this error will be the same for every further request (stop the run).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. }
                | RegistryError::DeletionDisabled { .. }
                | RegistryError::TokenRealm { .. }
        )
    }

    /// A listing whose pages could not be followed.
    pub fn paging(registry: &str, action: &str, error: PagingError) -> RegistryError {
        RegistryError::Invalid {
            registry: registry.to_string(),
            action: action.to_string(),
            message: error.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct OciErrors {
    #[serde(default)]
    errors: Vec<OciError>,
}

#[derive(Deserialize)]
struct OciError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `: CODE message` from an OCI error body (Harbor's API uses the same shape), or nothing.
pub fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<OciErrors>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let text: Vec<String> = parsed
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect();
            format!(": {}", text.join("; "))
        }
        _ => String::new(),
    }
}

/// The `code` of the first error in an OCI error body (`UNSUPPORTED`, `NAME_UNKNOWN`).
pub fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<OciErrors>(body)
        .ok()?
        .errors
        .into_iter()
        .next()
        .map(|e| e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_error_bodies() {
        let body =
            br#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#;
        assert_eq!(
            error_detail(body),
            ": UNSUPPORTED The operation is unsupported."
        );
        assert_eq!(error_code(body).as_deref(), Some("UNSUPPORTED"));
        assert_eq!(error_detail(b"<html>"), "");
        assert_eq!(error_code(b"<html>"), None);
    }
}
