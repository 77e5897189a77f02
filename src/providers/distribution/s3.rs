//! s3: a `StorageDriver` over the registry's S3 bucket (`REGISTRY_STORAGE=s3`), through
//! `aws-sdk-s3`. Keys are `<rootdirectory>/docker/registry/v2/…` as the registry's `s3` driver
//! writes them. A run reads only (list and get); the maintenance window (`StorageWriter`)
//! also deletes objects, 1,000 keys a `DeleteObjects` request.
//!
//! Every request holds a permit of one semaphore, so the whole run never has more than
//! `REGSWEEP_CONCURRENCY` S3 requests in flight, however discovery nests its concurrency.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

use super::driver::{Entry, Listed, StorageDriver, StorageError, StorageWriter, Timed, Tree};

/// Where the registry's storage is in S3, and how to reach it. `Debug` hides the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `BUCKET`.
    pub bucket: String,
    /// `REGISTRY_DIR`: the registry's `rootdirectory` inside the bucket, without leading or
    /// trailing slashes; empty for the bucket's root.
    pub root: String,
    /// `REGION`; the SDK's region chain (`AWS_REGION`, profile) when unset, else `us-east-1`.
    pub region: Option<String>,
    /// `REGSWEEP_S3_ENDPOINT` for S3-compatible stores (MinIO, Ceph, Spaces, R2); the SDK
    /// also reads `AWS_ENDPOINT_URL` itself.
    pub endpoint: Option<String>,
    /// Path-style addressing (`https://host/bucket/key`), which most S3-compatible stores need.
    pub path_style: bool,
    /// `ACCESS_KEY`; the SDK's default credential chain (environment, profile, web identity,
    /// instance role) when unset.
    pub access_key: Option<String>,
    /// `SECRET_KEY`.
    pub secret_key: Option<crate::secret::SecretStringEq>,
}

impl fmt::Debug for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key.as_ref().map(|_| "***"))
            .field("secret_key", &self.secret_key)
            .finish()
    }
}

impl S3Location {
    /// `s3://bucket/root`, for messages and reports.
    pub fn describe(&self) -> String {
        if self.root.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.root)
        }
    }
}

/// Registry storage in an S3 bucket.
#[derive(Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    location: S3Location,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("location", &self.location)
            .finish()
    }
}

/// The most pages one folder listing may take (1,000 keys a page): a bound on the loop, far
/// beyond any registry (a billion entries in one folder).
const MAX_PAGES: usize = 1_000_000;

/// Keys per listing page: S3's maximum (and default; other stores' defaults vary).
const PAGE_SIZE: i32 = 1_000;

impl S3Storage {
    /// A client for `location`, with the SDK's own retries (`attempts` in all, exponential
    /// backoff with jitter) and a per-attempt time limit. Makes no request.
    pub async fn connect(
        location: S3Location,
        concurrency: usize,
        attempts: u32,
        attempt_timeout: Duration,
    ) -> S3Storage {
        // rustls on ring, like reqwest: no aws-lc build, links statically.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // The loader's own default chains (region, credentials) get the same HTTP client.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(RetryConfig::standard().with_max_attempts(attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(attempt_timeout)
                    .build(),
            );
        if let (Some(access_key), Some(secret_key)) = (&location.access_key, &location.secret_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key.clone(),
                secret_key.0.expose_secret().to_string(),
                None,
                None,
                "regsweep-settings",
            ));
        }
        if let Some(endpoint) = &location.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(region) = &location.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(location.path_style);
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        let config = config.build();
        S3Storage {
            client: aws_sdk_s3::Client::from_conf(config),
            location,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// One of the run's request slots, held for the duration of a request.
    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    fn key(&self, path: &str) -> String {
        if self.location.root.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.location.root)
        }
    }

    /// [`Self::explain`] for a `DeleteObjects` that failed: a refusal names the permission
    /// removals need, even when the store's answer has no body to say why.
    fn explain_removal<E>(&self, path: &str, error: &SdkError<E>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let refused = matches!(error.code(), Some("AccessDenied") | Some("Forbidden"))
            || error
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 403);
        if refused {
            return StorageError::Unremovable {
                path: self.key(path),
                message: format!(
                    "bucket `{}` refused the removal (403): the credentials need \
                     s3:DeleteObject as well as s3:ListBucket and s3:GetObject",
                    self.location.bucket
                ),
            };
        }
        self.explain(path, error).removing()
    }

    /// A one-line explanation of an SDK error, with what to check for the usual ones.
    fn explain<E>(&self, path: &str, error: &SdkError<E>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = &self.location.bucket;
        let message = match error.code() {
            Some("NoSuchBucket") => format!(
                "bucket `{bucket}` does not exist (check BUCKET, REGION and REGSWEEP_S3_ENDPOINT)"
            ),
            Some("AccessDenied") | Some("Forbidden") => format!(
                "access to bucket `{bucket}` denied (check ACCESS_KEY and SECRET_KEY, or the \
                 role's s3:ListBucket and s3:GetObject permissions)"
            ),
            Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") => format!(
                "bucket `{bucket}` refused the credentials ({}): check ACCESS_KEY and SECRET_KEY",
                error.code().unwrap_or_default()
            ),
            _ => {
                let text = one_line(&DisplayErrorContext(error).to_string());
                // The SDK appends its whole error structure in parentheses: keep the sentence.
                let text = text.split(" (").next().unwrap_or_default().to_string();
                if text.contains("loading credentials") {
                    format!(
                        "no AWS credentials: set ACCESS_KEY and SECRET_KEY, or give the AWS \
                         default chain some (environment, profile, web identity, instance \
                         role); the chain said: {text}"
                    )
                } else {
                    text
                }
            }
        };
        StorageError::Unreadable {
            path: self.key(path),
            message,
        }
    }
}

impl S3Storage {
    /// The keys of `prefix` after `after` (exclusive; the start when empty) up to `upto`
    /// (inclusive; the end when `None`), at most `pages` pages; and whether the range was
    /// listed to its end.
    async fn list_range(
        &self,
        path: &str,
        prefix: &str,
        after: &str,
        upto: Option<&str>,
        pages: usize,
    ) -> Result<(Vec<Listed>, bool), StorageError> {
        let mut files = Vec::new();
        let mut continuation: Option<String> = None;
        for _page in 0..pages.min(MAX_PAGES) {
            let _permit = self.permit().await;
            let first = continuation.is_none();
            let answer = self
                .client
                .list_objects_v2()
                .bucket(&self.location.bucket)
                .prefix(prefix)
                .max_keys(PAGE_SIZE)
                .set_start_after((first && !after.is_empty()).then(|| after.to_string()))
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|e| self.explain(path, &e))?;
            for object in answer.contents() {
                let Some(key) = object.key() else { continue };
                if upto.is_some_and(|upto| key > upto) {
                    return Ok((files, true));
                }
                if let Some(relative) = key.strip_prefix(prefix).filter(|r| !r.is_empty()) {
                    files.push(Listed {
                        path: relative.to_string(),
                        size: object.size().unwrap_or_default().max(0) as u64,
                        etag: object
                            .e_tag()
                            .map(|e| e.trim_matches('"').to_ascii_lowercase()),
                        modified: to_chrono(object.last_modified()),
                    });
                }
            }
            match answer.next_continuation_token() {
                Some(token) if answer.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string())
                }
                _ => return Ok((files, true)),
            }
        }
        Ok((files, false))
    }
}

/// The key ranges left after a first page ending at `last`: `(last, b1]`, `(b1, b2]`, …,
/// `(bn, end)`, with a boundary `<prefix><c>` for each character `c` of `alphabet` sorting
/// after `last`. Every key after `last` is in exactly one range, whatever it starts with.
fn ranges_after(prefix: &str, last: &str, alphabet: &str) -> Vec<(String, Option<String>)> {
    let mut characters: Vec<char> = alphabet.chars().collect();
    characters.sort_unstable();
    characters.dedup();
    let bounds: Vec<String> = characters
        .into_iter()
        .map(|c| format!("{prefix}{c}"))
        .filter(|bound| bound.as_str() > last)
        .collect();
    let lowers: Vec<String> = std::iter::once(last.to_string())
        .chain(bounds.iter().cloned())
        .collect();
    let uppers = bounds.into_iter().map(Some).chain(std::iter::once(None));
    lowers.into_iter().zip(uppers).collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_missing_key<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    matches!(error.code(), Some("NoSuchKey") | Some("NotFound"))
        || error
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 404 && error.code() != Some("NoSuchBucket"))
}

fn to_chrono(time: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    let time = time?;
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

impl StorageDriver for S3Storage {
    async fn list(&self, path: &str) -> Result<Vec<Entry>, StorageError> {
        let prefix = format!("{}/", self.key(path));
        let mut entries = Vec::new();
        let mut continuation: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let _permit = self.permit().await;
            let answer = self
                .client
                .list_objects_v2()
                .bucket(&self.location.bucket)
                .prefix(&prefix)
                .delimiter("/")
                .max_keys(PAGE_SIZE)
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|e| self.explain(path, &e))?;
            for common in answer.common_prefixes() {
                if let Some(name) = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(&prefix))
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|n| !n.is_empty())
                {
                    entries.push(Entry {
                        name: name.to_string(),
                        is_folder: true,
                    });
                }
            }
            for object in answer.contents() {
                if let Some(name) = object
                    .key()
                    .and_then(|k| k.strip_prefix(&prefix))
                    .filter(|n| !n.is_empty() && !n.contains('/'))
                {
                    entries.push(Entry {
                        name: name.to_string(),
                        is_folder: false,
                    });
                }
            }
            match answer.next_continuation_token() {
                Some(token) if answer.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string())
                }
                _ => break,
            }
        }
        // Object stores have no empty folders: a prefix with nothing below does not exist.
        if entries.is_empty() {
            return Err(StorageError::NotFound {
                path: path.to_string(),
            });
        }
        Ok(entries)
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, StorageError> {
        self.read_with_time(path).await.map(|(bytes, _)| bytes)
    }

    async fn list_tree(
        &self,
        path: &str,
        alphabet: &str,
    ) -> Option<Result<Vec<Listed>, StorageError>> {
        let prefix = format!("{}/", self.key(path));
        let listing = async {
            // One page first: most folders fit in it. The rest of a larger one is split into
            // key ranges at `alphabet`, listed side by side (each request holds a permit).
            let (mut files, complete) = self.list_range(path, &prefix, "", None, 1).await?;
            if complete {
                return Ok(files);
            }
            let last = match files.last() {
                Some(file) => format!("{prefix}{}", file.path),
                // A truncated page without keys: list it all in one sequence.
                None => return Ok(self.list_range(path, &prefix, "", None, MAX_PAGES).await?.0),
            };
            let ranges = ranges_after(&prefix, &last, alphabet);
            let rest = futures::future::try_join_all(ranges.iter().map(|(after, upto)| {
                self.list_range(path, &prefix, after, upto.as_deref(), MAX_PAGES)
            }))
            .await?;
            for (range, _) in rest {
                files.extend(range);
            }
            Ok(files)
        };
        Some(listing.await)
    }

    async fn read_with_time(&self, path: &str) -> Result<Timed, StorageError> {
        let _permit = self.permit().await;
        let answer = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.key(path))
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) if is_missing_key(&error) => {
                return Err(StorageError::NotFound {
                    path: path.to_string(),
                })
            }
            Err(error) => return Err(self.explain(path, &error)),
        };
        let modified = to_chrono(answer.last_modified());
        let bytes = answer
            .body
            .collect()
            .await
            .map_err(|e| StorageError::Unreadable {
                path: self.key(path),
                message: one_line(&e.to_string()),
            })?
            .into_bytes()
            .to_vec();
        Ok((bytes, modified))
    }

    fn describe(&self) -> String {
        self.location.describe()
    }
}

/// Keys a `DeleteObjects` request takes at most (S3's limit).
const DELETE_BATCH: usize = 1_000;

impl StorageWriter for S3Storage {
    async fn files_below(&self, path: &str, alphabet: &str) -> Result<Tree, StorageError> {
        let files = match self.list_tree(path, alphabet).await {
            Some(Ok(files)) => files.into_iter().map(|f| (f.path, f.size)).collect(),
            Some(Err(StorageError::NotFound { .. })) | None => Vec::new(),
            Some(Err(error)) => return Err(error),
        };
        // An object store has no folders, empty or not.
        Ok(Tree {
            files,
            empty_folders: Vec::new(),
        })
    }

    async fn remove_files(
        &self,
        paths: Vec<String>,
        _prune_below: &[String],
        concurrency: usize,
    ) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        use futures::stream::{self, StreamExt, TryStreamExt};
        let batches: Vec<Vec<String>> =
            paths.chunks(DELETE_BATCH).map(<[String]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| async move {
                let first = batch.first().cloned().unwrap_or_default();
                let objects = batch
                    .iter()
                    .map(|path| ObjectIdentifier::builder().key(self.key(path)).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StorageError::Unremovable {
                        path: first.clone(),
                        message: e.to_string(),
                    })?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| StorageError::Unremovable {
                        path: first.clone(),
                        message: e.to_string(),
                    })?;
                let _permit = self.permit().await;
                let answer = self
                    .client
                    .delete_objects()
                    .bucket(&self.location.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| self.explain_removal(&first, &e))?;
                // A quiet DeleteObjects lists only the keys it could not delete.
                match answer.errors().first() {
                    None => Ok(()),
                    Some(error) => Err(StorageError::Unremovable {
                        path: error.key().unwrap_or_default().to_string(),
                        message: format!(
                            "not deleted: {} {}",
                            error.code().unwrap_or_default(),
                            error.message().unwrap_or_default()
                        ),
                    }),
                }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_after_a_first_page_cover_every_later_key_once() {
        let prefix = "r/tags/";
        let ranges = ranges_after(prefix, "r/tags/m9/current/link", "0a_zZm-");
        assert_eq!(
            ranges,
            vec![
                (
                    "r/tags/m9/current/link".to_string(),
                    Some("r/tags/z".to_string())
                ),
                ("r/tags/z".to_string(), None),
            ]
        );
        // Any key after the first page falls in exactly one range.
        let keys = [
            "r/tags/m9/index/x",
            "r/tags/n",
            "r/tags/z",
            "r/tags/za",
            "r/tags/\u{e9}",
        ];
        for key in keys {
            let holding = ranges
                .iter()
                .filter(|(after, upto)| {
                    key > after.as_str() && upto.as_deref().is_none_or(|u| key <= u)
                })
                .count();
            assert_eq!(holding, 1, "{key}");
        }
    }
}
