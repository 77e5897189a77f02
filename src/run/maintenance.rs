//! maintenance: `regsweep maintenance`, the window in which the registry is read-only or
//! stopped. The window proved, then the same discovery and plan as a run (every repository is
//! read: the collection needs all of them; only the selected ones are planned), the plan
//! carried out in storage (`maintenance::sweep`), and garbage collection at storage speed
//! (`maintenance::collect`), reported like a run. Storage on a disk or in S3 only.

use std::time::Instant;

use chrono::Utc;

use super::{clients, ExitStatus, Outcome, RunError};
use crate::apply::{Applied, DeletionOutcome, UntagOutcome};
use crate::control::Control;
use crate::maintenance::{collect, sweep, window};
use crate::model::RepositoryName;
use crate::plan as planner;
use crate::progress::Progress;
use crate::providers::distribution::driver::StorageWriter;
use crate::providers::distribution::filesystem::FilesystemStorage;
use crate::providers::distribution::layout::list_repositories;
use crate::providers::distribution::s3::S3Storage;
use crate::providers::distribution::Distribution;
use crate::providers::{DiscoveryError, Provider};
use crate::registry::RegistryClient;
use crate::report::{summarize, MaintenancePhases, MaintenanceReport, RunContext, Timings};
use crate::settings::{Settings, Source};

/// What to do before the registry serves again.
const NEXT: &str = "restart the registry (or clear its blob-descriptor cache) before it serves \
again: it may still believe deleted blobs exist; then turn read-only mode off";

/// `regsweep maintenance`: proves the window, plans, deletes in storage, collects garbage.
pub async fn maintenance(
    settings: &Settings,
    control: &Control,
    progress: &Progress,
    registry_stopped: bool,
) -> Result<Outcome, RunError> {
    let (_, client) = clients(settings, control)?;
    match &settings.source {
        Source::Filesystem(root) => {
            let driver = FilesystemStorage::new(root);
            window_then(
                settings,
                &client,
                driver,
                control,
                progress,
                registry_stopped,
            )
            .await
        }
        Source::S3(location) => {
            let driver = S3Storage::connect(
                location.clone(),
                settings.concurrency,
                settings.retry.attempts,
                settings.retry.attempt_timeout,
            )
            .await;
            window_then(
                settings,
                &client,
                driver,
                control,
                progress,
                registry_stopped,
            )
            .await
        }
        _ => Err(RunError::Usage(
            "maintenance changes the registry's storage: give it with REGISTRY_DIR (a disk) or \
             REGISTRY_STORAGE=s3 (a bucket), with the distribution provider"
                .into(),
        )),
    }
}

async fn window_then<W: StorageWriter>(
    settings: &Settings,
    client: &RegistryClient,
    driver: W,
    control: &Control,
    progress: &Progress,
    registry_stopped: bool,
) -> Result<Outcome, RunError> {
    // Probed on a repository that exists, so that a writable registry's cancelled upload
    // leaves nothing elsewhere.
    let repositories = list_repositories(&driver, &[])
        .await
        .map_err(DiscoveryError::from)?;
    let probe: RepositoryName = repositories
        .first()
        .cloned()
        .unwrap_or_else(|| "regsweep-maintenance-probe".parse().expect("a valid name"));
    let window = window::prove(client, &probe, registry_stopped)
        .await
        .map_err(RunError::Usage)?;
    eprintln!("regsweep: {}", window.describe(client.display()));
    let concurrency = settings.concurrency;
    let dry_run = settings.dry_run;
    let provider = Distribution::new(
        driver,
        client.clone(),
        concurrency,
        settings.registry_config.clone(),
    );
    let mut phases = MaintenancePhases::default();

    let started = Instant::now();
    let inventory = provider.discover(&[], progress).await?;
    phases.discover_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let plan = planner::plan(&inventory, &settings.policy, Utc::now());
    phases.plan_seconds = started.elapsed().as_secs_f64();

    let mut report = MaintenanceReport {
        window: window.describe(client.display()),
        next: NEXT.into(),
        ..MaintenanceReport::default()
    };
    let writer = provider.storage();
    // The same limits as a run: REGSWEEP_MAX_DELETE, a signal, the time budget (from here on;
    // the steps below are not cut in the middle, a killed one is finished by the next window).
    control.enforce();
    let refusal = settings
        .max_delete_refusal(plan.deletion_count())
        .filter(|_| !dry_run);
    let mut fatal = match refusal {
        Some(refusal) => Some(format!("{refusal}; nothing was removed")),
        None => control
            .check()
            .err()
            .map(|halt| format!("{halt} before deleting in storage; nothing was removed")),
    };
    let swept = match fatal {
        Some(_) => Err(None),
        None => {
            let started = Instant::now();
            let swept = sweep::sweep(writer, &inventory, &plan, concurrency, dry_run).await;
            phases.delete_seconds = started.elapsed().as_secs_f64();
            swept.map_err(Some)
        }
    };
    match &swept {
        Ok(swept) => {
            report.manifests_deleted = swept.manifests;
            report.tags_deleted = swept.tags;
            report.tags_untagged = swept.untagged;
            report.dangling_tags = swept.dangling;
            report.files_removed = swept.files;
        }
        Err(Some(error)) => {
            fatal = Some(format!("storage failed while deleting: {error}; run again"))
        }
        Err(None) => {}
    }
    if fatal.is_none() {
        fatal = control.check().err().map(|halt| {
            format!("{halt} after deleting in storage, before collecting garbage; run again to collect it")
        });
    }
    if fatal.is_none() {
        let started = Instant::now();
        let collected = match collect::mark(&inventory, &plan) {
            Ok(marked) => collect::collect(writer, &marked, concurrency, dry_run).await,
            Err(error) => Err(error),
        };
        phases.collect_seconds = started.elapsed().as_secs_f64();
        match collected {
            Ok(collected) => {
                report.blobs = collected.blobs;
                report.blobs_kept = collected.marked;
                report.blobs_deleted = collected.deleted;
                report.bytes_freed = collected.bytes;
            }
            Err(collect::NotCollected::Storage(error)) => {
                fatal = Some(format!(
                    "storage failed while collecting garbage: {error}; run again"
                ))
            }
            Err(error) => report.not_collected = Some(error.to_string()),
        }
    }

    // What was done, in a run's terms: each planned deletion and untag done (the window
    // rules out races), unless storage failed.
    let applied = (!dry_run).then(|| match swept {
        Ok(_) => Applied::uniform(
            &plan,
            DeletionOutcome::Deleted,
            UntagOutcome::Untagged,
            fatal.clone(),
        ),
        Err(_) => Applied::uniform(
            &plan,
            DeletionOutcome::NotAttempted,
            UntagOutcome::NotAttempted,
            fatal.clone(),
        ),
    });
    let source = provider.source();
    let context = RunContext {
        registry: client.display(),
        storage: &source,
        dry_run,
    };
    let mut summary = summarize(
        inventory,
        &plan,
        &settings.policy,
        applied.as_ref(),
        &context,
    );
    summary.timings = Some(Timings {
        discover_seconds: phases.discover_seconds,
        plan_seconds: phases.plan_seconds,
        apply_seconds: phases.delete_seconds + phases.collect_seconds,
        verify_seconds: 0.0,
    });
    report.phases = phases;
    if let Some(why) = &report.not_collected {
        summary
            .notices
            .push(format!("garbage collection not run: {why}"));
    }
    summary.maintenance = Some(report);
    summary.fatal = fatal;
    // A signal or the budget: partly done (3), as in a run; REGSWEEP_MAX_DELETE or a storage
    // failure before anything was removed: failed (1).
    let status = if summary.fatal.is_some() {
        if control.halted().is_some() || swept.as_ref().is_ok_and(|s| s.files > 0) {
            ExitStatus::Incomplete
        } else {
            ExitStatus::FailedBeforeDeleting
        }
    } else if summary
        .maintenance
        .as_ref()
        .is_some_and(|m| m.not_collected.is_some())
        || summary.totals.incomplete_repositories > 0
    {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Done
    };
    Ok(Outcome { summary, status })
}
