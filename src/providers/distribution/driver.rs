//! driver: access to a registry's storage, whatever holds it. `layout` understands what the
//! distribution registry writes (`docker/registry/v2/…`) over any `StorageDriver`, which only
//! lists folders and reads files (`filesystem`, `s3`). `StorageWriter` adds the removal of
//! files, for the maintenance window alone; a run never writes storage.

use std::future::Future;

use chrono::{DateTime, Utc};

/// One entry of a storage folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (no slashes).
    pub name: String,
    /// Whether it is a folder (a common prefix, on object stores).
    pub is_folder: bool,
}

/// Why a storage path could not be read (or, in the maintenance window, removed).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The path does not exist.
    #[error("`{path}` does not exist")]
    NotFound {
        /// The path, relative to the storage root.
        path: String,
    },
    /// Any other failure.
    #[error("cannot read `{path}`: {message}")]
    Unreadable {
        /// The path, relative to the storage root.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A removal failed (the maintenance window only).
    #[error("cannot remove `{path}`: {message}")]
    Unremovable {
        /// The path, relative to the storage root (S3: the key).
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl StorageError {
    /// The same failure, met while removing `path`.
    pub fn removing(self) -> StorageError {
        match self {
            StorageError::Unreadable { path, message } => {
                StorageError::Unremovable { path, message }
            }
            other => other,
        }
    }
}

/// Read-only access to registry storage, with paths relative to the storage root and `/` as
/// the separator. Implementations must be cheap to share across concurrent tasks.
pub trait StorageDriver: Send + Sync {
    /// The immediate entries of a folder, in any order.
    fn list(&self, path: &str) -> impl Future<Output = Result<Vec<Entry>, StorageError>> + Send;
    /// A file's whole content.
    fn read(&self, path: &str) -> impl Future<Output = Result<Vec<u8>, StorageError>> + Send;
    /// A file's content and last modification time.
    fn read_with_time(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<u8>, Option<DateTime<Utc>>), StorageError>> + Send;
    /// A description of where the storage is, for messages (`/srv/registry`, `s3://bucket/root`).
    fn describe(&self) -> String;

    /// Every file below `path`, at any depth, in any order, with what the store says about
    /// each unasked (S3's ETag and time); `None` (the default) when listing folder by folder
    /// and reading cost the same (a local disk), so callers read instead. `alphabet` holds the
    /// characters names below `path` usually start with: a large listing is split at them into
    /// key ranges listed side by side (every key is still covered exactly once).
    fn list_tree(
        &self,
        path: &str,
        alphabet: &str,
    ) -> impl Future<Output = Option<Result<Vec<Listed>, StorageError>>> + Send {
        let _ = (path, alphabet);
        async { None }
    }

    /// Reads many files with their modification times, results in the order of `paths`.
    /// The default reads them one by one, `concurrency` at a time; a driver with a cheaper
    /// bulk path (the filesystem: one blocking task for many reads) overrides it.
    fn read_many(
        &self,
        paths: Vec<String>,
        concurrency: usize,
    ) -> impl Future<Output = Vec<Result<Timed, StorageError>>> + Send {
        use futures::stream::{self, StreamExt};
        async move {
            stream::iter(paths)
                .map(|path| async move { self.read_with_time(&path).await })
                .buffered(concurrency.max(1))
                .collect()
                .await
        }
    }
}

/// A file's content and its modification time.
pub type Timed = (Vec<u8>, Option<DateTime<Utc>>);

/// A file found by listing a whole subtree, with what the store says about it unasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its path below the listed folder (`<name>/current/link`).
    pub path: String,
    /// The store's entity tag, unquoted: for an object uploaded in one part without
    /// server-side encryption by KMS, S3's is the hex MD5 of the content.
    pub etag: Option<String>,
    /// When it was last written.
    pub modified: Option<DateTime<Utc>>,
    /// Its size in bytes.
    pub size: u64,
}

/// What is below a storage folder, at any depth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Every file, as its path below the folder (`ab/ab…/data`), with its size in bytes.
    pub files: Vec<(String, u64)>,
    /// Every folder with nothing in it, as its path below the folder: what a removal stopped
    /// half-way leaves on a disk (an object store has none).
    pub empty_folders: Vec<String>,
}

/// Write access to registry storage, for the maintenance window only (`regsweep
/// maintenance`, with the registry read-only or stopped): every file below a folder, and the
/// removal of files. Nothing else in regsweep writes storage.
pub trait StorageWriter: StorageDriver {
    /// Every file and every empty folder below `path`, at any depth; a folder that does not
    /// exist has none. `alphabet` as for [`StorageDriver::list_tree`].
    fn files_below(
        &self,
        path: &str,
        alphabet: &str,
    ) -> impl Future<Output = Result<Tree, StorageError>> + Send;

    /// Removes the files `paths` (from the storage root), `concurrency` at a time or in
    /// batches (S3: `DeleteObjects`, 1,000 keys a request); a file already gone is no error.
    /// On a store with folders, each removal also takes the folders it leaves empty, up to
    /// (not including) the nearest folder of `prune_below` above the file; a file below none
    /// of them leaves its folders. The first failure stops it.
    fn remove_files(
        &self,
        paths: Vec<String>,
        prune_below: &[String],
        concurrency: usize,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Removes the folders `paths` where they are empty, then their parents up to (not
    /// including) the nearest folder of `prune_below`, while those are empty: what a removal
    /// stopped half-way left. An object store has no folders: nothing to do.
    fn prune_folders(
        &self,
        paths: Vec<String>,
        prune_below: &[String],
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        let _ = (paths, prune_below);
        async { Ok(()) }
    }
}
