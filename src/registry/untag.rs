//! untag: removes one tag from a manifest that stays, through the distribution API. The tag
//! is read again just before; a tag that moved is left. Where the registry deletes a tag by
//! name (`DELETE /v2/<name>/manifests/<tag>`, distribution 3.x) that is all; distribution 2.x
//! answers it 400 `DIGEST_INVALID`, so the tag is moved onto a throw-away manifest, which the
//! caller deletes by digest at once (and with it, that tag). Moving a tag needs push rights;
//! without them the tag stays and the caller says why.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use reqwest::{header, Method, StatusCode};

use crate::manifest::MANIFEST_ACCEPT;
use crate::model::{Digest, RepositoryName};
use crate::registry::client::{manifest_url, RegistryClient};
use crate::registry::error::RegistryError;
use crate::registry::reader::resolve_tag;
use crate::registry::token::{repository_scope, Action};

/// The media type of the throw-away manifest: an OCI image manifest.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Its config: the empty JSON object, which every registry takes as an image config.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";

/// What removing a tag came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagging {
    /// The tag is gone; the manifest stays.
    Untagged,
    /// The tag points at another manifest now (a push raced the run): left alone.
    Moved {
        /// What it points at now.
        now: Digest,
    },
    /// The tag was gone already.
    Gone,
    /// The registry gives no way to remove it, or the account may not: the tag stays.
    Impossible {
        /// Why, and what would make it possible.
        reason: String,
    },
}

/// Where a tag removal stands after the registry API did its part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Finished.
    Done(Untagging),
    /// The tag was moved onto this throw-away manifest: delete it by digest now, which
    /// removes the tag with it.
    Placeholder(Digest),
}

/// Tag removal through one registry, remembering what it learnt (whether the registry
/// deletes tags by name; in which repositories the empty config blob is already there).
#[derive(Debug, Default)]
pub struct Untagger {
    no_tag_delete: AtomicBool,
    config_pushed: Mutex<HashSet<RepositoryName>>,
}

impl Untagger {
    /// Removes `tag` from manifest `digest` of `repository`, or moves it onto a throw-away
    /// manifest for the caller to delete.
    pub async fn untag(
        &self,
        client: &RegistryClient,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<Step, RegistryError> {
        // Just before: the tag must still name the manifest the plan untags.
        match resolve_tag(client, repository, tag).await? {
            None => return Ok(Step::Done(Untagging::Gone)),
            Some(now) if &now != digest => return Ok(Step::Done(Untagging::Moved { now })),
            Some(_) => {}
        }
        if !self.no_tag_delete.load(Ordering::Relaxed) {
            let url = manifest_url(client.base(), repository, tag);
            let scope = repository_scope(repository, Action::Delete);
            let answer = client
                .send_body(
                    Method::DELETE,
                    url,
                    Some(MANIFEST_ACCEPT),
                    Some(&scope),
                    None,
                )
                .await?;
            match answer.status {
                StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => {
                    return Ok(Step::Done(Untagging::Untagged))
                }
                // distribution 2.x: 400 DIGEST_INVALID (a tag is not a digest); others 404 or
                // 405 UNSUPPORTED for what they do not do: move the tag instead, from now on.
                StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::info!(status = %answer.status, "the registry deletes no tag by name: tags are moved onto a throw-away manifest");
                    self.no_tag_delete.store(true, Ordering::Relaxed);
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {}
                _ => {
                    return Err(client.unexpected_answer(
                        format!("delete tag `{tag}` of `{repository}`"),
                        &answer,
                        &scope,
                    ))
                }
            }
        }
        self.move_to_placeholder(client, repository, digest, tag)
            .await
    }

    /// Points `tag` at a new throw-away manifest (unique to this tag and moment).
    async fn move_to_placeholder(
        &self,
        client: &RegistryClient,
        repository: &RepositoryName,
        digest: &Digest,
        tag: &str,
    ) -> Result<Step, RegistryError> {
        let scope = repository_scope(repository, Action::Push);
        let refused = |what: &str| {
            Step::Done(Untagging::Impossible {
                reason: format!(
                    "the registry deletes no tag by name, and the account may not {what} in \
                     `{repository}`: removing a tag alone moves it onto a throw-away manifest, \
                     which needs push and delete rights"
                ),
            })
        };
        let config = Digest::sha256_of(EMPTY_CONFIG);
        let pushed = self
            .config_pushed
            .lock()
            .expect("the lock is never poisoned")
            .contains(repository);
        if !pushed {
            match self
                .push_config(client, repository, &config, &scope)
                .await?
            {
                Some(status) if is_refusal(status) => return Ok(refused("push")),
                Some(status) => {
                    return Err(RegistryError::Unexpected {
                        registry: client.display().to_string(),
                        action: format!("upload of an empty config to `{repository}`"),
                        status,
                        detail: String::new(),
                    })
                }
                None => {
                    self.config_pushed
                        .lock()
                        .expect("the lock is never poisoned")
                        .insert(repository.clone());
                }
            }
        }
        let nonce = format!(
            "{}-{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            fastrand::u64(..)
        );
        let placeholder = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": EMPTY_CONFIG.len()},
            "layers": [],
            "annotations": {
                "org.opencontainers.image.description": format!(
                    "regsweep: removes tag `{tag}` from {digest}; deleted at once"
                ),
                "dev.regsweep.untag": nonce,
            },
        });
        let bytes = serde_json::to_vec(&placeholder).expect("a manifest always serializes");
        let placeholder_digest = Digest::sha256_of(&bytes);
        // Just before moving it: the tag still names the manifest.
        match resolve_tag(client, repository, tag).await? {
            None => return Ok(Step::Done(Untagging::Gone)),
            Some(now) if &now != digest => return Ok(Step::Done(Untagging::Moved { now })),
            Some(_) => {}
        }
        let url = manifest_url(client.base(), repository, tag);
        let answer = client
            .send_body(
                Method::PUT,
                url,
                None,
                Some(&scope),
                Some((OCI_MANIFEST, &bytes)),
            )
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => Ok(Step::Placeholder(placeholder_digest)),
            status if is_refusal(status) => Ok(refused("push manifests")),
            _ => Err(client.unexpected_answer(
                format!("move tag `{tag}` of `{repository}` onto a throw-away manifest"),
                &answer,
                &scope,
            )),
        }
    }

    /// Uploads the empty config blob unless the repository has it; the status of a refusal.
    async fn push_config(
        &self,
        client: &RegistryClient,
        repository: &RepositoryName,
        config: &Digest,
        scope: &str,
    ) -> Result<Option<StatusCode>, RegistryError> {
        if client
            .blob_exists(repository, config)
            .await
            .unwrap_or(false)
        {
            return Ok(None);
        }
        let start = client.url(&format!("/v2/{repository}/blobs/uploads/"));
        let answer = client
            .send_body(Method::POST, start, None, Some(scope), None)
            .await?;
        if answer.status != StatusCode::ACCEPTED {
            return Ok(Some(answer.status));
        }
        let Some(location) = answer.header(header::LOCATION).map(str::to_string) else {
            return Ok(Some(StatusCode::BAD_GATEWAY));
        };
        let mut url = client
            .base()
            .join(&location)
            .map_err(|e| RegistryError::Invalid {
                registry: client.display().to_string(),
                action: "start an upload".into(),
                message: format!("`{location}` is not a URL: {e}"),
            })?;
        url.query_pairs_mut().append_pair("digest", config.as_str());
        let answer = client
            .send_body(
                Method::PUT,
                url,
                None,
                Some(scope),
                Some(("application/octet-stream", EMPTY_CONFIG)),
            )
            .await?;
        Ok(match answer.status {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => None,
            status => Some(status),
        })
    }
}

/// 401, 403, and 405 (a read-only or pull-through registry): the account or the registry
/// refuses writes.
fn is_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED
    )
}
