//! window: proves that the registry cannot write while storage is changed behind it. A
//! read-only registry (distribution's `storage.maintenance.readonly.enabled: true`) answers an
//! upload start (`POST /v2/<name>/blobs/uploads/`) with 405 and `Allow: GET, HEAD` (seen on
//! Debian's `docker-registry` 2.8); a writable one answers 202, and that upload is cancelled
//! at once. A registry that does not answer at all is accepted only when the user says it is
//! stopped (`--registry-stopped`). Reads nothing else, deletes nothing.

use reqwest::{header, Method, StatusCode};

use crate::model::RepositoryName;
use crate::registry::client::RegistryClient;
use crate::registry::error::RegistryError;
use crate::registry::token::{repository_scope, Action};

/// Why the window is open: what the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// It answered the upload start with its read-only refusal.
    ReadOnly,
    /// It did not answer, and the user said it is stopped.
    Stopped,
}

impl Window {
    /// For the report: how the window was proved.
    pub fn describe(&self, registry: &str) -> String {
        match self {
            Window::ReadOnly => format!(
                "{registry} is read-only: it answered an upload start with 405 Method Not \
                 Allowed"
            ),
            Window::Stopped => {
                format!("{registry} is stopped (--registry-stopped): it does not answer")
            }
        }
    }
}

/// Proves the window on `repository` (an existing one: a writable registry's cancelled
/// upload leaves nothing elsewhere). One line saying what to do when it cannot.
pub async fn prove(
    client: &RegistryClient,
    repository: &RepositoryName,
    registry_stopped: bool,
) -> Result<Window, String> {
    let url = client.url(&format!("/v2/{repository}/blobs/uploads/"));
    let scope = repository_scope(repository, Action::Push);
    let answer = match client
        .send_body(Method::POST, url, None, Some(&scope), None)
        .await
    {
        Ok(answer) => answer,
        Err(RegistryError::Unreachable { message, .. }) if registry_stopped => {
            tracing::info!(%message, "the registry does not answer: stopped, as said");
            return Ok(Window::Stopped);
        }
        Err(RegistryError::Unreachable { message, .. }) => {
            return Err(format!(
                "the registry at {} does not answer ({message}): if it is stopped, say so with \
                 --registry-stopped; if it runs, check REGISTRY_URL",
                client.display()
            ))
        }
        Err(error) => return Err(format!("cannot prove the registry is read-only: {error}")),
    };
    let readonly = |writes_allowed: bool| {
        format!(
            "the registry at {} {}: put it in read-only mode (storage.maintenance.readonly.enabled: \
             true in its config, then restart it) or stop it and pass --registry-stopped; \
             nothing was changed",
            client.display(),
            if writes_allowed {
                "accepts writes (an upload start answered 202 Accepted; that upload was cancelled)"
            } else {
                "answers"
            }
        )
    };
    match answer.status {
        StatusCode::METHOD_NOT_ALLOWED => Ok(Window::ReadOnly),
        StatusCode::ACCEPTED => {
            // Writable: cancel the upload just started, so nothing of the probe stays.
            if let Some(location) = answer.header(header::LOCATION) {
                if let Ok(url) = client.base().join(location) {
                    let _ = client
                        .send_body(Method::DELETE, url, None, Some(&scope), None)
                        .await;
                }
            }
            Err(readonly(true))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(format!(
            "cannot prove the registry at {} is read-only: the upload start was refused ({}); \
             give REGISTRY_AUTH an account with push rights, so that the registry's own answer \
             shows, or stop the registry and pass --registry-stopped",
            client.display(),
            answer.status
        )),
        status => Err(format!(
            "cannot prove the registry at {} is read-only: an upload start answered {status}; \
             {}",
            client.display(),
            readonly(false)
        )),
    }
}
