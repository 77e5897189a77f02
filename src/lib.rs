//! regsweep: container-registry cleanup that never breaks an image someone can still pull.
//!
//! The pipeline: `discover` (an inventory from storage) → `plan` (pure decisions with reasons)
//! → `apply` (deletions through the registry API) → `report` (text, Markdown, JSON). `run`
//! wires them together for validated `Settings`; `main` only parses, runs and exits.

pub mod apply;
pub mod cli;
pub mod discover;
pub mod distribution;
pub mod http;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod report;
pub mod settings;

use chrono::Utc;

use crate::discover::filesystem::FilesystemStorage;
use crate::discover::storage::{self, LayoutError};
use crate::distribution::Distribution;
use crate::http::{RegistryClient, RegistryError};
use crate::report::{summarize, RunContext, Summary};
use crate::settings::{Settings, StorageLocation};

/// The process exit status, as `design.md` defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything planned is done (or would be, in a dry run).
    Done = 0,
    /// Failed before deleting anything.
    FailedBeforeDeleting = 1,
    /// Bad usage: an invalid option.
    BadUsage = 2,
    /// Some deletions failed or some repositories were left untouched; a second run finishes.
    Incomplete = 3,
}

/// Why a run stopped before deleting anything.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The registry could not be used.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The storage could not be used.
    #[error(transparent)]
    Storage(#[from] LayoutError),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// What a run produced: the summary to render and the exit status.
#[derive(Debug)]
pub struct Outcome {
    /// The report's content.
    pub summary: Summary,
    /// How the process should exit.
    pub status: ExitStatus,
}

/// Runs discover → plan → apply (unless dry run) → summary.
pub async fn run(settings: &Settings) -> Result<Outcome, RunError> {
    let client = RegistryClient::new(
        settings.registry_url.clone(),
        settings.credentials.clone(),
        &settings.tls,
        settings.retry.clone(),
    )
    .map_err(RunError::Client)?;
    // Fail fast on an unreachable registry or refused credentials, before reading storage.
    client.check().await?;

    let StorageLocation::Filesystem(root) = &settings.storage;
    let provider = Distribution::new(
        FilesystemStorage::new(root),
        client.clone(),
        settings.concurrency,
    );
    let inventory = storage::discover(
        provider.storage(),
        settings.policy.repository_filter.as_ref(),
        settings.concurrency,
    )
    .await?;
    let plan = plan::plan(&inventory, &settings.policy, Utc::now());

    let applied = if settings.dry_run {
        None
    } else {
        Some(apply::apply(&plan, &inventory, &provider, settings.concurrency).await)
    };

    let storage_text = settings.storage.describe();
    let context = RunContext {
        registry: client.display(),
        storage: &storage_text,
        dry_run: settings.dry_run,
        registry_config: &settings.registry_config,
    };
    let summary = summarize(
        &inventory,
        &plan,
        &settings.policy,
        applied.as_ref(),
        &context,
    );
    let totals = &summary.totals;
    let status = if summary.fatal.is_some() && totals.deleted == 0 {
        ExitStatus::FailedBeforeDeleting
    } else if summary.fatal.is_some()
        || totals.failed > 0
        || totals.not_attempted > 0
        || totals.incomplete_repositories > 0
    {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Done
    };
    Ok(Outcome { summary, status })
}
