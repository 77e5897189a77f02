//! run: the pipeline for validated settings: choose the provider, discover, plan, apply
//! (unless dry run), verify, collect garbage, summarise. Prints nothing but progress and
//! status lines on stderr; `main` renders the report and publishes it.

use std::collections::HashMap;
use std::time::Instant;

use chrono::Utc;

use std::path::PathBuf;

use crate::apply::{self, Applied, DeletionOutcome};
use crate::cli::env;
use crate::control::Control;
use crate::model::{Action, Inventory, Plan, RepositoryName, Tag};
use crate::plan as planner;
use crate::plan::file::{PlanFile, PlanFileError};
use crate::plan::untagged::{self, UntaggedSweep};
use crate::progress::Progress;
use crate::providers::digitalocean::DigitalOcean;
use crate::providers::distribution::api::ApiOnly;
use crate::providers::distribution::filesystem::FilesystemStorage;
use crate::providers::distribution::s3::S3Storage;
use crate::providers::distribution::Distribution;
use crate::providers::ghcr::Ghcr;
use crate::providers::gitlab::Gitlab;
use crate::providers::harbor::Harbor;
use crate::providers::{Collected, DiscoveryError, Provider};
use crate::registry::{Http, RegistryClient, RegistryError};
use crate::report::{summarize, RunContext, Summary, Timings};
use crate::settings::{Settings, Source};
use crate::verify;

mod maintenance;
mod plans;
mod restore;

pub use maintenance::maintenance;
pub use plans::load_plan;
use plans::{planned_policy, write_plan};
pub use restore::restore;

/// The process exit status, as `design.md` defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything planned is done (or would be, in a dry run).
    Done = 0,
    /// Failed before deleting anything.
    FailedBeforeDeleting = 1,
    /// Bad usage: an invalid option.
    BadUsage = 2,
    /// Some deletions failed, were not attempted (a signal, the time budget) or some
    /// repositories were left untouched; a second run finishes.
    Incomplete = 3,
}

/// Why a run stopped before it had a summary.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The registry could not be used.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Discovery could not start or finish.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// A command that cannot run as asked (a report that cannot be read, the wrong provider).
    #[error("{0}")]
    Usage(String),
    /// A plan that cannot be applied.
    #[error(transparent)]
    Plan(#[from] PlanFileError),
}

impl RunError {
    /// How the process exits: 3 when a signal stopped the run before it deleted anything
    /// (nothing is lost: the next run re-plans), 1 otherwise.
    pub fn exit_status(&self) -> ExitStatus {
        let halted = match self {
            RunError::Registry(RegistryError::Halted(_)) => true,
            RunError::Discovery(error) => error.halt().is_some(),
            _ => false,
        };
        if halted {
            ExitStatus::Incomplete
        } else {
            ExitStatus::FailedBeforeDeleting
        }
    }
}

/// What a run produced: the summary to render and the exit status.
#[derive(Debug)]
pub struct Outcome {
    /// The report's content.
    pub summary: Summary,
    /// How the process should exit.
    pub status: ExitStatus,
}

/// The run's HTTP layer and its registry client, as the settings say.
fn clients(settings: &Settings, control: &Control) -> Result<(Http, RegistryClient), RunError> {
    let http = Http::new(&settings.tls, settings.retry.clone(), control.clone())
        .map_err(RunError::Client)?;
    let client = RegistryClient::new(
        http.clone(),
        settings.registry_url.clone(),
        settings.credentials.clone(),
    )
    .allow_insecure_http(settings.allow_insecure_http);
    Ok((http, client))
}

/// Runs discover → plan → apply (unless dry run) → verify → collect → summary, with every
/// request and wait under `control` (a signal, the time budget).
pub async fn run(
    settings: &Settings,
    mode: &Mode,
    control: &Control,
    progress: &Progress,
) -> Result<Outcome, RunError> {
    let (http, client) = clients(settings, control)?;
    // Fail fast on an unreachable registry or refused credentials, before reading storage.
    client.check().await?;
    let concurrency = settings.concurrency;
    let config = settings.registry_config.clone();
    let pipeline = Pipeline {
        settings,
        client: &client,
        control,
        progress,
        mode,
    };
    match &settings.source {
        Source::Filesystem(root) => {
            let driver = FilesystemStorage::new(root);
            let provider = Distribution::new(driver, client.clone(), concurrency, config);
            pipeline.run(&provider).await
        }
        Source::S3(location) => {
            let driver = S3Storage::connect(
                location.clone(),
                concurrency,
                settings.retry.attempts,
                settings.retry.attempt_timeout,
            )
            .await;
            let provider = Distribution::new(driver, client.clone(), concurrency, config);
            pipeline.run(&provider).await
        }
        Source::Api(reason) => {
            let provider = ApiOnly::new(client.clone(), concurrency, reason.clone(), config);
            pipeline.run(&provider).await
        }
        Source::DigitalOcean(options) => {
            let provider =
                DigitalOcean::open(http.clone(), options.clone(), client.clone(), concurrency)
                    .await?;
            pipeline.run(&provider).await
        }
        Source::Ghcr(options) => {
            let provider = Ghcr::open(http.clone(), options, client.clone(), concurrency).await?;
            pipeline.run(&provider).await
        }
        Source::Gitlab(options) => {
            let provider = Gitlab::new(http.clone(), options, client.clone(), concurrency);
            pipeline.run(&provider).await
        }
        Source::Harbor(options) => {
            let provider = Harbor::new(
                http.clone(),
                options,
                client.clone(),
                settings.credentials.as_ref(),
                concurrency,
            );
            pipeline.run(&provider).await
        }
    }
}

/// What a run does with its plan.
#[derive(Debug)]
pub enum Mode {
    /// Discover, plan, delete (unless DRY_RUN), report.
    Run,
    /// Discover, plan, write the plan to `out` for review, delete nothing.
    Plan {
        /// Where the plan goes.
        out: PathBuf,
    },
    /// Delete what a reviewed plan lists, less what changed since it was made.
    Apply {
        /// The plan, read and checked.
        file: Box<PlanFile>,
    },
}

/// What every step of one run shares.
struct Pipeline<'a> {
    settings: &'a Settings,
    client: &'a RegistryClient,
    control: &'a Control,
    progress: &'a Progress,
    mode: &'a Mode,
}

impl Pipeline<'_> {
    /// A dry run, or a plan being written: nothing is deleted.
    fn deletes_nothing(&self) -> bool {
        self.settings.dry_run || matches!(self.mode, Mode::Plan { .. })
    }

    /// The whole pipeline over one provider.
    async fn run<P: Provider>(&self, provider: &P) -> Result<Outcome, RunError> {
        let settings = self.settings;
        let started = Instant::now();
        // Applying a reviewed plan: discovery sees what the plan saw (its repositories), and
        // the plan's own policy is the one reported.
        let planned = match self.mode {
            Mode::Apply { file } => Some(file),
            _ => None,
        };
        let filter = match planned {
            Some(file) => file.body.policy.repositories.clone(),
            None => settings.policy.repositories.clone(),
        };
        let current = provider.discover(&filter, self.progress).await?;
        let mut timings = Timings {
            discover_seconds: started.elapsed().as_secs_f64(),
            ..Timings::default()
        };
        tracing::info!(
            repositories = current.repositories.len(),
            manifests = current
                .repositories
                .iter()
                .map(|r| r.manifests.len())
                .sum::<usize>(),
            "discovered"
        );
        let started = Instant::now();
        let (inventory, plan, policy, to_apply, changed) = match planned {
            Some(file) => {
                // What may still go: the plan, less what changed since it was made.
                let (to_apply, changed) = planner::file::still_valid(file, &current);
                let policy = planned_policy(file).map_err(RunError::Usage)?;
                let inventory = file.body.inventory.clone();
                let plan = file.body.plan.clone();
                (inventory, plan, policy, Some(to_apply), changed)
            }
            None => {
                // What is applied is the plan itself (`None`): not a copy of it. A registry
                // that takes children and accessories along with what it deletes keeps what
                // would take a kept manifest along.
                let mut policy = settings.policy.clone();
                policy.takes_along = provider.takes_along();
                let plan = planner::plan(&current, &policy, Utc::now());
                (current, plan, policy, None, Vec::new())
            }
        };
        timings.plan_seconds = started.elapsed().as_secs_f64();
        tracing::info!(deletions = plan.deletion_count(), "planned");
        let plan_hash = match self.mode {
            Mode::Plan { out } => Some(write_plan(settings, provider, out, &inventory, &plan)?),
            Mode::Apply { file } => Some(file.hash.clone()),
            Mode::Run => None,
        };

        // An untagged sweep asked of the registry's garbage collection would delete what the
        // plan keeps without a tag of its own: refused before anything is deleted.
        let sweep_refusal = (settings.gc_include_untagged == UntaggedSweep::Requested)
            .then(|| untagged::untagged_sweep_breaks(&inventory, &plan))
            .filter(|endangered| !endangered.is_empty())
            .map(|endangered| untagged::refusal(&endangered, env::GC_INCLUDE_UNTAGGED));

        let started = Instant::now();
        let mut applied = self
            .apply(
                to_apply.as_ref().unwrap_or(&plan),
                &inventory,
                provider,
                sweep_refusal.clone(),
            )
            .await;
        if let Some(applied) = &mut applied {
            for change in changed {
                applied.outcomes.insert(
                    (change.repository, change.digest),
                    DeletionOutcome::SkippedChanged {
                        change: change.change,
                    },
                );
            }
        }
        timings.apply_seconds = started.elapsed().as_secs_f64();

        // Verification: after deleting, every kept tag must still be fully pullable.
        let started = Instant::now();
        let verification = match &applied {
            Some(applied) if settings.verify && applied.fatal.is_none() => {
                let tags = kept_tags(&inventory, &plan, applied);
                Some(verify::verify(self.client, tags, settings.concurrency, self.progress).await)
            }
            _ => None,
        };
        timings.verify_seconds = started.elapsed().as_secs_f64();
        let dry_run = self.deletes_nothing();

        let source = provider.source();
        let context = RunContext {
            registry: self.client.display(),
            storage: &source,
            dry_run,
        };
        let mut summary = summarize(inventory, &plan, &policy, applied.as_ref(), &context);
        summary.plan_hash = plan_hash;
        summary.verification = verification;
        summary.timings = Some(timings);
        summary.notices.extend(provider.notices());
        if !plan.unused_rules.is_empty() {
            summary.notices.push(format!(
                "rule `{}` of the policy selects no tag in any repository read: check its \
                 `tags` and `repositories` patterns",
                plan.unused_rules.join("`, `")
            ));
        }
        if !plan.unselected.is_empty() {
            let names: Vec<&str> = plan.unselected.iter().map(|r| r.as_str()).collect();
            summary.notices.push(format!(
                "{} not selected by the policy's `repositories`, left untouched: {}",
                if names.len() == 1 {
                    "1 repository".to_string()
                } else {
                    format!("{} repositories", names.len())
                },
                names.join(", ")
            ));
        }
        if let (true, Some(refusal)) = (dry_run, sweep_refusal) {
            summary
                .notices
                .push(format!("a real run would stop here: {refusal}"));
        }
        if let Some(applied) = &applied {
            for (repository, why) in &applied.stopped_repositories {
                summary.notices.push(format!(
                    "deleting stopped in `{repository}`: the registry and the plan disagree \
                     ({why}); nothing more was deleted there"
                ));
            }
        }
        if summary.totals.planned_deletions > 0 {
            summary.garbage_collection = provider.gc_advice(settings.gc_include_untagged);
        }
        let mut status = exit_status(&summary);
        // Stopped by a signal or the time budget: not a failure; the next run goes on.
        if applied.as_ref().is_some_and(|a| a.halt.is_some()) {
            status = ExitStatus::Incomplete;
        }
        if !dry_run && summary.totals.deleted > 0 && summary.fatal.is_none() {
            status = collect(provider, settings.gc_include_untagged, &mut summary, status).await;
        }
        Ok(Outcome { summary, status })
    }

    /// Applies the plan, unless this is a dry run or a guard refuses it.
    async fn apply<P: Provider>(
        &self,
        plan: &Plan,
        inventory: &Inventory,
        provider: &P,
        sweep_refusal: Option<String>,
    ) -> Option<Applied> {
        let settings = self.settings;
        let deletions = plan.deletion_count();
        if self.deletes_nothing() {
            return None;
        }
        if let Some(refusal) = sweep_refusal {
            return Some(Applied::refused(plan, refusal));
        }
        if let Some(refusal) = settings.max_delete_refusal(deletions) {
            return Some(Applied::refused(plan, refusal));
        }
        // A registry that takes children and accessories along deletes parents first.
        let reordered;
        let plan = if provider.deletes_subjects_first() {
            reordered = subjects_first(plan, inventory);
            &reordered
        } else {
            plan
        };
        if let Err(reason) = provider.prepare_to_delete() {
            return Some(Applied::refused(plan, reason));
        }
        // Discovery and planning ran in full; from here on the time budget applies.
        self.control.enforce();
        Some(
            apply::apply(
                plan,
                inventory,
                provider,
                settings.concurrency,
                self.control,
                self.progress,
            )
            .await,
        )
    }
}

/// The registry's garbage collection after a real run that deleted something, when the
/// provider starts one: its result in the summary (a failure or a timeout makes the run
/// incomplete; a missing right only says what to do).
async fn collect<P: Provider>(
    provider: &P,
    sweep: UntaggedSweep,
    summary: &mut Summary,
    status: ExitStatus,
) -> ExitStatus {
    match provider.collect_garbage(sweep).await {
        Collected::NotStarted => status,
        Collected::Ran(run) => {
            let ended_well = run.succeeded();
            if !ended_well {
                summary.notices.push(format!(
                    "garbage collection {} ended `{}`: the space is not freed; start it again \
                     (the command above)",
                    run.id, run.status
                ));
            }
            summary.garbage_collection_run = Some(run);
            if ended_well {
                status
            } else {
                ExitStatus::Incomplete
            }
        }
        Collected::StillRunning { after } => {
            summary.notices.push(format!(
                "garbage collection was still running after {after}; it goes on without regsweep"
            ));
            ExitStatus::Incomplete
        }
        Collected::NotAllowed { hint } => {
            summary.notices.push(format!(
                "garbage collection not started: {hint}; the blobs stay until it runs"
            ));
            status
        }
        Collected::Failed(error) => {
            summary
                .notices
                .push(format!("garbage collection could not be followed: {error}"));
            ExitStatus::Incomplete
        }
    }
}

/// `plan` with each repository's deletions in parents-and-subjects-first batches.
fn subjects_first(plan: &Plan, inventory: &Inventory) -> Plan {
    let mut reordered = plan.clone();
    for repository_plan in &mut reordered.repositories {
        if let Some(repository) = inventory
            .repositories
            .iter()
            .find(|r| r.name == repository_plan.name)
        {
            repository_plan.deletion_batches =
                planner::order::subjects_first(repository, repository_plan);
        }
    }
    reordered
}

/// Every tag of every manifest the plan keeps, less those this run removed from it: what
/// verification re-resolves.
fn kept_tags(inventory: &Inventory, plan: &Plan, applied: &Applied) -> Vec<(RepositoryName, Tag)> {
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
                let removed = |tag: &Tag| {
                    applied
                        .untags
                        .get(&(
                            repository.name.clone(),
                            manifest.digest.clone(),
                            tag.clone(),
                        ))
                        .is_some_and(crate::apply::UntagOutcome::is_done)
                };
                tags.extend(
                    manifest
                        .tags
                        .iter()
                        .filter(|t| !removed(t))
                        .map(|t| (repository.name.clone(), t.clone())),
                );
            }
        }
    }
    tags
}

/// Whether a tag the plan removes from an image that stays failed to go, or was not tried
/// (a moved tag, or one the registry gives no way to remove, is not a failure).
fn summary_untags_failed(summary: &Summary) -> bool {
    summary
        .repositories
        .iter()
        .flat_map(|r| &r.manifests)
        .flat_map(|m| &m.tags)
        .any(|t| {
            matches!(
                t.untag,
                Some(
                    crate::apply::UntagOutcome::Failed { .. }
                        | crate::apply::UntagOutcome::NotAttempted
                )
            )
        })
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
        || summary_untags_failed(summary)
        || totals.not_attempted > 0
        || totals.incomplete_repositories > 0
        || verification_failed
    {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Done
    }
}

/// Signals as cargo and uv handle them: the first SIGINT or SIGTERM stops the run's control
/// (no request is started, waits end, requests on the wire finish; the run reports and exits
/// 3); a second one exits at once (130 for SIGINT, 143 for SIGTERM).
pub async fn watch_signals(control: Control) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut received = 0;
        loop {
            let code = tokio::select! {
                _ = interrupt.recv() => 130,
                _ = terminate.recv() => 143,
            };
            received += 1;
            if received > 1 {
                eprintln!("regsweep: stopped at once");
                std::process::exit(code);
            }
            control.stop();
            eprintln!(
                "regsweep: stopping: no new requests, waits cut short, requests on the wire \
                 finish; a second signal exits at once"
            );
        }
    }
    #[cfg(not(unix))]
    {
        let mut received = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            received += 1;
            if received > 1 {
                std::process::exit(130);
            }
            control.stop();
            eprintln!("regsweep: stopping: no new requests; a second Ctrl-C exits at once");
        }
    }
}
