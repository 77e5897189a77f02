//! journal: GHCR's undo record, written as deletions happen. GitHub keeps a deleted package
//! version for 30 days and `regsweep restore` puts it back by its id; the report written at
//! the end of a run is not enough for that (a second signal or a kill writes no report). So
//! each deleted version is appended to a file as one JSON line and synced to disk before the
//! run goes on, and so is each version put back. Only the file's I/O lives here.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::DeletedVersion;

/// What happened to a version, as one journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The run: when it started (RFC 3339), the same on each of its lines.
    pub run: String,
    /// `deleted` or `restored`.
    pub event: String,
    /// The registry repository (`<owner>/<package>`).
    pub repository: String,
    /// The manifest's digest.
    pub digest: String,
    /// The package version id.
    pub id: u64,
}

/// An append-only journal file, opened on the first line written.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    run: String,
    file: Mutex<Option<std::fs::File>>,
}

impl Journal {
    /// The journal at `path` for the run that started at `run` (RFC 3339).
    pub fn new(path: PathBuf, run: String) -> Journal {
        Journal {
            path,
            run,
            file: Mutex::new(None),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creates) the file for appending, so that a journal that cannot be written stops
    /// the run before its first deletion.
    pub fn open(&self) -> Result<(), String> {
        let mut file = self
            .file
            .lock()
            .expect("the journal lock is never poisoned");
        if file.is_none() {
            *file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(|e| self.error(&e))?,
            );
        }
        Ok(())
    }

    /// Appends one line and syncs it to disk.
    pub fn record(
        &self,
        event: &str,
        repository: &str,
        digest: &str,
        id: u64,
    ) -> Result<(), String> {
        self.open()?;
        let entry = Entry {
            run: self.run.clone(),
            event: event.to_string(),
            repository: repository.to_string(),
            digest: digest.to_string(),
            id,
        };
        let mut line = serde_json::to_string(&entry).expect("an entry always serializes");
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .expect("the journal lock is never poisoned");
        let file = file.as_mut().expect("opened above");
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| self.error(&e))
    }

    fn error(&self, error: &std::io::Error) -> String {
        format!(
            "cannot write the undo journal `{}` (REGSWEEP_JOURNAL): {error}",
            self.path.display()
        )
    }
}

/// The versions the newest run in a journal deleted and did not put back, in the order it
/// deleted them, and that run's id. A line that is not an entry (a cut last line of a killed
/// run) is skipped.
pub fn deleted_versions(text: &str) -> Result<(String, Vec<DeletedVersion>), String> {
    let entries: Vec<Entry> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let run = entries
        .iter()
        .map(|e| e.run.clone())
        .max()
        .ok_or("it holds no journal entry")?;
    // Per version, its last event in that run; the order of first deletion kept.
    let mut last: BTreeMap<u64, (usize, &Entry)> = BTreeMap::new();
    for (position, entry) in entries.iter().enumerate().filter(|(_, e)| e.run == run) {
        let first = last.get(&entry.id).map_or(position, |(first, _)| *first);
        last.insert(entry.id, (first, entry));
    }
    let mut deleted: Vec<(usize, DeletedVersion)> = last
        .into_values()
        .filter(|(_, entry)| entry.event == "deleted")
        .map(|(first, entry)| {
            (
                first,
                DeletedVersion {
                    repository: entry.repository.clone(),
                    digest: entry.digest.clone(),
                    id: entry.id,
                },
            )
        })
        .collect();
    // Restored in the reverse of the deletion order: what was deleted last (an index, after
    // its children in the referrers-first order) comes back last.
    deleted.sort_by_key(|(first, _)| std::cmp::Reverse(*first));
    Ok((run, deleted.into_iter().map(|(_, v)| v).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_run_s_deletions_less_what_was_put_back() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("journal.jsonl");
        let old = Journal::new(path.clone(), "2026-12-01T00:00:00Z".into());
        old.record("deleted", "acme/app", "sha256:old", 1).unwrap();
        let run = Journal::new(path.clone(), "2026-12-06T00:00:00Z".into());
        run.record("deleted", "acme/app", "sha256:a", 2).unwrap();
        run.record("deleted", "acme/app", "sha256:b", 3).unwrap();
        run.record("restored", "acme/app", "sha256:a", 2).unwrap();
        run.record("deleted", "acme/app", "sha256:c", 4).unwrap();
        // A kill cut the last line short.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"run\":\"2026-12-06T00:00:00Z\",\"ev");
        let (newest, versions) = deleted_versions(&text).unwrap();
        assert_eq!(newest, "2026-12-06T00:00:00Z");
        let ids: Vec<u64> = versions.iter().map(|v| v.id).collect();
        assert_eq!(ids, [4, 3]);
        assert!(deleted_versions("").is_err());
    }
}
