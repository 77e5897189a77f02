//! filesystem: a `StorageDriver` over a local folder (`REGISTRY_DIR`). Reads only.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::driver::{Entry, StorageDriver, StorageError, Timed};

/// Registry storage on a local disk, rooted at the folder that holds `docker/registry/v2`.
#[derive(Debug, Clone)]
pub struct FilesystemStorage {
    root: PathBuf,
}

impl FilesystemStorage {
    /// Storage rooted at `root`. Call `storage::check_layout` to see whether it is one.
    pub fn new(root: impl Into<PathBuf>) -> FilesystemStorage {
        FilesystemStorage { root: root.into() }
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

fn storage_error(path: &str, error: io::Error) -> StorageError {
    if error.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound {
            path: path.to_string(),
        }
    } else {
        StorageError::Unreadable {
            path: path.to_string(),
            message: error.to_string(),
        }
    }
}

fn list_folder(folder: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let is_folder = entry.file_type()?.is_dir();
        if let Ok(name) = entry.file_name().into_string() {
            entries.push(Entry { name, is_folder });
        }
    }
    Ok(entries)
}

impl StorageDriver for FilesystemStorage {
    async fn list(&self, path: &str) -> Result<Vec<Entry>, StorageError> {
        let folder = self.full(path);
        tokio::task::spawn_blocking(move || list_folder(&folder))
            .await
            .map_err(|e| StorageError::Unreadable {
                path: path.to_string(),
                message: e.to_string(),
            })?
            .map_err(|e| storage_error(path, e))
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, StorageError> {
        tokio::fs::read(self.full(path))
            .await
            .map_err(|e| storage_error(path, e))
    }

    async fn read_with_time(
        &self,
        path: &str,
    ) -> Result<(Vec<u8>, Option<DateTime<Utc>>), StorageError> {
        let file = self.full(path);
        tokio::task::spawn_blocking(move || -> io::Result<_> {
            let bytes = std::fs::read(&file)?;
            let modified = std::fs::metadata(&file)?
                .modified()
                .ok()
                .map(DateTime::<Utc>::from);
            Ok((bytes, modified))
        })
        .await
        .map_err(|e| StorageError::Unreadable {
            path: path.to_string(),
            message: e.to_string(),
        })?
        .map_err(|e| storage_error(path, e))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    /// Reads a batch of files in one blocking task: a plain `read` and `stat` each, instead of
    /// a thread hand-off per file (which costs more CPU than the read itself).
    async fn read_many(
        &self,
        paths: Vec<String>,
        _concurrency: usize,
    ) -> Vec<Result<Timed, StorageError>> {
        let root = self.root.clone();
        let count = paths.len();
        let read = tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .map(|path| {
                    let file = root.join(&path);
                    std::fs::read(&file)
                        .map(|bytes| {
                            let modified = std::fs::metadata(&file)
                                .ok()
                                .and_then(|m| m.modified().ok())
                                .map(DateTime::<Utc>::from);
                            (bytes, modified)
                        })
                        .map_err(|e| storage_error(&path, e))
                })
                .collect::<Vec<_>>()
        })
        .await;
        read.unwrap_or_else(|e| {
            (0..count)
                .map(|_| {
                    Err(StorageError::Unreadable {
                        path: String::new(),
                        message: e.to_string(),
                    })
                })
                .collect()
        })
    }
}
