//! regsweep: container-registry cleanup that never breaks an image someone can still pull.
//!
//! The pipeline: `discover` (an inventory from storage) → `plan` (pure decisions with reasons)
//! → `apply` (deletions through the registry API) → `report` (text, Markdown, JSON). `run`
//! wires them together for validated `Settings`; `main` only parses, runs and exits.

#![warn(missing_docs)]

pub mod apply;
pub mod auth;
pub mod bearer;
pub mod cli;
pub mod digitalocean;
pub mod discover;
pub mod distribution;
pub mod http;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod report;
pub mod secret;
pub mod settings;
pub mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use crate::apply::{Applied, Provider};
use crate::digitalocean::{DigitalOcean, DoApi, DoError};
use crate::discover::api::{self, ApiDiscoveryError};
use crate::discover::filesystem::FilesystemStorage;
use crate::discover::s3::S3Storage;
use crate::discover::storage::{self, LayoutError};
use crate::discover::StorageDriver;
use crate::distribution::{ApiOnly, Distribution};
use crate::http::{RegistryClient, RegistryError};
use crate::model::{Action, Inventory, Plan, RepositoryName, Tag};
use crate::plan::untagged::{self, UntaggedSweep};
use crate::progress::Progress;
use crate::report::{summarize, RunContext, Summary, Timings};
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
    /// The DigitalOcean API could not be used.
    #[error(transparent)]
    DigitalOcean(#[from] DoError),
    /// Discovery through the registry API could not start.
    #[error(transparent)]
    Api(#[from] ApiDiscoveryError),
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
    .map_err(RunError::Client)?
    .allow_insecure_http(settings.allow_insecure_http);
    // Fail fast on an unreachable registry or refused credentials, before reading storage.
    client.check().await?;
    let progress = Progress::new(settings.quiet).with_log_groups(settings.github.is_some());
    let only = &settings.policy.repositories;
    let concurrency = settings.concurrency;
    let started = Instant::now();
    match &settings.storage {
        StorageLocation::Filesystem(root) => {
            let driver = FilesystemStorage::new(root);
            from_storage(settings, &client, driver, started, &progress).await
        }
        StorageLocation::S3(location) => {
            let driver = S3Storage::connect(
                location.clone(),
                concurrency,
                settings.retry.attempts,
                settings.retry.attempt_timeout,
            )
            .await;
            from_storage(settings, &client, driver, started, &progress).await
        }
        StorageLocation::DigitalOcean(options) => {
            let api = DoApi::new(
                options.api_url.clone(),
                options.token.0.clone(),
                settings.retry.clone(),
            )
            .map_err(RunError::Client)?;
            let registry = api.registry_name(options.registry.as_deref()).await?;
            let inventory =
                digitalocean::discover(&api, &registry, &client, only, concurrency, &progress)
                    .await?;
            let provider = DigitalOcean::new(&api, registry.clone(), client.clone());
            let mut outcome =
                finish(settings, &client, inventory, &provider, started, &progress).await?;
            collect(settings, options, &api, &registry, &mut outcome).await;
            tracing::info!(
                requests = api.requests.load(std::sync::atomic::Ordering::Relaxed),
                waited_ms = api.waited_ms.load(std::sync::atomic::Ordering::Relaxed),
                "DigitalOcean API use"
            );
            Ok(outcome)
        }
        StorageLocation::Api(reason) => {
            tracing::info!(
                reason = reason.as_str(),
                "discovering through the registry API only"
            );
            let inventory = api::discover(&client, only, concurrency, &progress).await?;
            let provider = ApiOnly::new(client.clone(), concurrency);
            let mut outcome =
                finish(settings, &client, inventory, &provider, started, &progress).await?;
            outcome
                .summary
                .notices
                .push(format!("{} ({reason})", api::NOTICE));
            Ok(outcome)
        }
    }
}

/// A run whose inventory comes from the registry's storage (a folder or a bucket).
async fn from_storage<S: StorageDriver>(
    settings: &Settings,
    client: &RegistryClient,
    driver: S,
    started: Instant,
    progress: &Progress,
) -> Result<Outcome, RunError> {
    let only = &settings.policy.repositories;
    let inventory = storage::discover(&driver, only, settings.concurrency, progress).await?;
    let provider = Distribution::new(driver, client.clone(), settings.concurrency);
    finish(settings, client, inventory, &provider, started, progress).await
}

/// DigitalOcean's garbage collection after a real run that deleted something: started, followed
/// to its end, its result in the summary (a failure or a timeout makes the run incomplete).
async fn collect(
    settings: &Settings,
    options: &digitalocean::DigitalOceanSettings,
    api: &DoApi,
    registry: &str,
    outcome: &mut Outcome,
) {
    let (kind, why) = garbage_collection_type(settings.gc_include_untagged);
    let summary = &mut outcome.summary;
    summary.garbage_collection = summary.garbage_collection.take().map(|_| {
        let include_untagged = if kind == digitalocean::GC_TYPE {
            ""
        } else {
            " --include-untagged-manifests"
        };
        report::GarbageCollectionAdvice {
            command: format!(
                "doctl registry garbage-collection start {registry}{include_untagged}"
            ),
            warnings: vec![
                format!("type `{kind}`: {why}"),
                "the registry is read-only while garbage collection runs (pushes fail); \
                 waiting for write tokens to expire can take 15 minutes"
                    .to_string(),
            ],
        }
    });
    if settings.dry_run || !options.gc || summary.totals.deleted == 0 || summary.fatal.is_some() {
        return;
    }
    let collected =
        digitalocean::collect_garbage(api, registry, kind, options.gc_timeout, options.gc_poll)
            .await;
    match collected {
        Ok(Some(mut gc)) => {
            gc.kind = kind.to_string();
            gc.why = why.to_string();
            if gc.status != "succeeded" {
                summary.notices.push(format!(
                    "garbage collection {} ended `{}`: the space is not freed; start it again \
                     (the command above)",
                    gc.uuid, gc.status
                ));
                outcome.status = ExitStatus::Incomplete;
            }
            summary.garbage_collection_run = Some(gc);
        }
        Ok(None) => {
            summary.notices.push(format!(
                "garbage collection was still running after {} (REGSWEEP_GC_TIMEOUT); it goes \
                 on without regsweep",
                humantime::format_duration(options.gc_timeout)
            ));
            outcome.status = ExitStatus::Incomplete;
        }
        Err(error) => {
            summary
                .notices
                .push(format!("garbage collection could not be followed: {error}"));
            outcome.status = ExitStatus::Incomplete;
        }
    }
}

/// The garbage-collection type a run asks DigitalOcean for, and why. regsweep decides which
/// manifests go; the registry's garbage collection only collects unreferenced blobs, unless
/// the user opted into its untagged sweep (refused earlier while it would break a kept image).
fn garbage_collection_type(sweep: UntaggedSweep) -> (&'static str, &'static str) {
    match sweep {
        UntaggedSweep::Off => (
            digitalocean::GC_TYPE,
            "regsweep already deleted exactly the untagged manifests that are safe to delete; \
             the registry's untagged sweep would also delete the children of kept multi-arch \
             images and the signatures and SBOMs of kept images",
        ),
        UntaggedSweep::Requested => (
            digitalocean::GC_TYPE_WITH_UNTAGGED,
            "asked for with REGSWEEP_GC_INCLUDE_UNTAGGED=true; the plan keeps no manifest \
             without a tag of its own, so the untagged sweep breaks no kept image",
        ),
        UntaggedSweep::Forced => (
            digitalocean::GC_TYPE_WITH_UNTAGGED,
            "forced with REGSWEEP_GC_INCLUDE_UNTAGGED=force: the registry also deletes every \
             manifest without a tag of its own, the children and referrers the plan kept \
             included",
        ),
    }
}

/// Plan, apply (unless dry run), verify and summarise what `provider` discovered.
async fn finish<P: Provider>(
    settings: &Settings,
    client: &RegistryClient,
    inventory: Inventory,
    provider: &P,
    discovery_started: Instant,
    progress: &Progress,
) -> Result<Outcome, RunError> {
    let mut timings = Timings {
        discover_seconds: discovery_started.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    tracing::info!(
        repositories = inventory.repositories.len(),
        manifests = inventory
            .repositories
            .iter()
            .map(|r| r.manifests.len())
            .sum::<usize>(),
        "discovered"
    );
    let started = Instant::now();
    let plan = plan::plan(&inventory, &settings.policy, Utc::now());
    timings.plan_seconds = started.elapsed().as_secs_f64();
    tracing::info!(deletions = plan.deletion_count(), "planned");

    // An untagged sweep asked of the registry's garbage collection would delete what the plan
    // keeps without a tag of its own: refused before anything is deleted.
    let sweep_refusal = (settings.gc_include_untagged == UntaggedSweep::Requested)
        .then(|| untagged::untagged_sweep_breaks(&inventory, &plan))
        .filter(|endangered| !endangered.is_empty())
        .map(|endangered| untagged::refusal(&endangered, cli::env::GC_INCLUDE_UNTAGGED));

    let deletions = plan.deletion_count();
    let started = Instant::now();
    let applied = match settings.max_delete {
        _ if settings.dry_run => None,
        _ if sweep_refusal.is_some() => Some(Applied::refused(
            &plan,
            sweep_refusal.clone().unwrap_or_default(),
        )),
        Some(max) if deletions > max => Some(Applied::refused(
            &plan,
            format!(
                "refusing to delete {deletions} manifests: more than REGSWEEP_MAX_DELETE={max}; \
                 review the plan (DRY_RUN=true) and raise the limit"
            ),
        )),
        _ => {
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = tokio::spawn(stop_on_signal(stop.clone()));
            let concurrency = settings.concurrency;
            let applied =
                apply::apply(&plan, &inventory, provider, concurrency, &stop, progress).await;
            watcher.abort();
            Some(applied)
        }
    };
    timings.apply_seconds = started.elapsed().as_secs_f64();

    // Verification: after deleting, every kept tag must still be fully pullable.
    let started = Instant::now();
    let verification = match &applied {
        Some(applied) if settings.verify && applied.fatal.is_none() => {
            let tags = kept_tags(&inventory, &plan);
            Some(verify::verify(client, tags, settings.concurrency, progress).await)
        }
        _ => None,
    };
    timings.verify_seconds = started.elapsed().as_secs_f64();

    let storage_text = settings.storage.describe();
    let context = RunContext {
        registry: client.display(),
        storage: &storage_text,
        dry_run: settings.dry_run,
        registry_config: &settings.registry_config,
    };
    let mut summary = summarize(
        &inventory,
        &plan,
        &settings.policy,
        applied.as_ref(),
        &context,
    );
    summary.verification = verification;
    summary.timings = Some(timings);
    if let (true, Some(refusal)) = (settings.dry_run, sweep_refusal) {
        summary
            .notices
            .push(format!("a real run would stop here: {refusal}"));
    }
    let status = exit_status(&summary);
    Ok(Outcome { summary, status })
}

/// Every tag of every manifest the plan keeps: what verification re-resolves.
fn kept_tags(inventory: &Inventory, plan: &Plan) -> Vec<(RepositoryName, Tag)> {
    let repositories: HashMap<_, _> = inventory
        .repositories
        .iter()
        .map(|r| (&r.name, r))
        .collect();
    let mut tags = Vec::new();
    for repository_plan in &plan.repositories {
        let Some(repository) = repositories.get(&repository_plan.name) else {
            continue;
        };
        for (manifest, decision) in repository.manifests.iter().zip(&repository_plan.decisions) {
            if decision.action == Action::Keep {
                tags.extend(
                    manifest
                        .tags
                        .iter()
                        .map(|t| (repository.name.clone(), t.clone())),
                );
            }
        }
    }
    tags
}

/// The exit status `design.md` gives a run's summary.
fn exit_status(summary: &Summary) -> ExitStatus {
    let totals = &summary.totals;
    let verification_failed = summary
        .verification
        .as_ref()
        .is_some_and(|v| !v.failures.is_empty());
    if summary.fatal.is_some() && totals.deleted == 0 {
        ExitStatus::FailedBeforeDeleting
    } else if summary.fatal.is_some()
        || totals.failed > 0
        || totals.not_attempted > 0
        || totals.incomplete_repositories > 0
        || verification_failed
    {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Done
    }
}

/// Sets `stop` on SIGINT or SIGTERM, so that apply finishes what is in flight and stops.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
    }
    stop.store(true, Ordering::SeqCst);
    eprintln!("regsweep: stopping: letting deletions in flight finish, starting no more");
}
