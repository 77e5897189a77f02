//! report: turns an inventory, its plan and what apply did into one `Summary`, and renders it
//! (`text` in the seed's format, `markdown`, `json`). Renders only; never prints or deletes.

pub mod json;
pub mod markdown;
mod rows;
mod rules;
pub mod text;
mod words;

pub use words::{describe_kind, format_date, human_bytes, reason_label_text, reason_text};

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::apply::{Applied, DeletionOutcome, UntagOutcome};
use crate::model::{
    Action, Digest, Inventory, ManifestKind, Plan, Reason, Repository, RepositoryName, TagAction,
    TagDecision,
};
pub use crate::model::{GarbageCollectionAdvice, GarbageCollectionRun};
use crate::plan::{classify_tag, Policy, TagKind};

/// The report format on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The seed's terminal format.
    Text,
    /// One JSON document.
    Json,
    /// GitHub-flavoured Markdown.
    Markdown,
}

/// Writes `summary` in `format` to `out` (JSON streamed, not held as one string).
pub fn write(
    format: OutputFormat,
    summary: &Summary,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => {
            let mut streamed = IoWriter {
                inner: out,
                error: None,
            };
            text::write(summary, &mut streamed);
            streamed.error.map_or(Ok(()), Err)
        }
        OutputFormat::Json => json::write(summary, out),
        OutputFormat::Markdown => out.write_all(markdown::render(summary).as_bytes()),
    }
}

/// `fmt::Write` over an `io::Write`, keeping the first error: the text report written as it
/// is rendered.
struct IoWriter<'a, W: std::io::Write> {
    inner: &'a mut W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> std::fmt::Write for IoWriter<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.inner.write_all(text.as_bytes()).map_err(|e| {
            self.error.get_or_insert(e);
            std::fmt::Error
        })
    }
}

/// The JSON report's schema version; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a report shows, in one serialisable value.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Schema version of this document.
    pub schema_version: u32,
    /// regsweep's version.
    pub regsweep_version: String,
    /// The registry's URL, without credentials.
    pub registry: String,
    /// Where manifests were discovered (storage path).
    pub storage: String,
    /// Whether this was a dry run (nothing deleted).
    pub dry_run: bool,
    /// The policy applied.
    pub policy: PolicySummary,
    /// Per repository, sorted by name.
    pub repositories: Vec<RepositorySummary>,
    /// Counts and the space estimate.
    pub totals: Totals,
    /// What frees the disk space, when something was (or would be) deleted.
    pub garbage_collection: Option<GarbageCollectionAdvice>,
    /// The error that stopped the run, if one did.
    pub fatal: Option<String>,
    /// The garbage collection this run started and followed (DigitalOcean, Harbor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage_collection_run: Option<GarbageCollectionRun>,
    /// Applying or writing a reviewed plan: the plan file's content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// What the reader must know about how far the run could see (an API-only run cannot
    /// see untagged manifests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// After a real run: whether every kept tag is still fully pullable.
    pub verification: Option<crate::verify::Verification>,
    /// How long each phase took, in seconds (absent in tests' fixed reports).
    pub timings: Option<Timings>,
    /// `regsweep maintenance`: what was removed in storage and collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceReport>,
}

/// What a maintenance window did (`regsweep maintenance`): the plan carried out in storage,
/// then the garbage collection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintenanceReport {
    /// How the window was proved (read-only, or stopped).
    pub window: String,
    /// Manifests whose revision link was removed (or would be, in a dry run).
    pub manifests_deleted: usize,
    /// Tags removed with them.
    pub tags_deleted: usize,
    /// Tags removed from manifests that stay.
    pub tags_untagged: usize,
    /// Tags naming no revision, left by a run stopped half-way, removed.
    pub dangling_tags: usize,
    /// Storage files removed below `_manifests/`.
    pub files_removed: usize,
    /// Blobs in storage before the collection.
    pub blobs: usize,
    /// Blobs something left references: kept.
    pub blobs_kept: usize,
    /// Blobs deleted (or that would be).
    pub blobs_deleted: usize,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Why the collection did not run, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_collected: Option<String>,
    /// How long each phase took.
    pub phases: MaintenancePhases,
    /// What to do before the registry serves again.
    pub next: String,
}

/// Seconds each phase of a maintenance window took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintenancePhases {
    /// Reading storage into the inventory (every repository).
    pub discover_seconds: f64,
    /// Planning.
    pub plan_seconds: f64,
    /// Removing revision links and tags.
    pub delete_seconds: f64,
    /// Marking and deleting blobs.
    pub collect_seconds: f64,
}

impl MaintenancePhases {
    /// `discover 0.41 s, plan 0.02 s, delete 0.10 s, collect 0.33 s`.
    pub fn describe(&self) -> String {
        format!(
            "discover {:.2} s, plan {:.2} s, delete {:.2} s, collect {:.2} s",
            self.discover_seconds, self.plan_seconds, self.delete_seconds, self.collect_seconds
        )
    }
}

/// Seconds spent per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Reading storage into the inventory.
    pub discover_seconds: f64,
    /// Planning.
    pub plan_seconds: f64,
    /// Deleting (0 in a dry run).
    pub apply_seconds: f64,
    /// Verifying kept tags (0 when not run).
    pub verify_seconds: f64,
}

/// The policy, as the user gave it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    /// `HASH_TAG_PATTERN`.
    pub hash_tag_pattern: String,
    /// `HASH_TAG_KEEP`.
    pub hash_tag_keep: usize,
    /// `REGSWEEP_MIN_AGE`, in seconds.
    pub min_age_seconds: i64,
    /// `REPO_FILTER` and `REGSWEEP_REPOSITORIES`, comma-separated.
    pub repository_filter: Option<String>,
    /// The policy file (`REGSWEEP_POLICY`), when one replaced the hash-tag policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The policy file as understood, one line per setting and rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

/// One repository's manifests and problems.
#[derive(Debug, Clone, Serialize)]
pub struct RepositorySummary {
    /// The repository.
    pub name: String,
    /// Why discovery was incomplete (then nothing here is deleted).
    pub problems: Vec<String>,
    /// Observations that changed nothing (a config without `created`).
    pub notes: Vec<String>,
    /// Every manifest with its decision, sorted by digest.
    pub manifests: Vec<ManifestSummary>,
}

/// A tag and its kind.
#[derive(Debug, Clone, Serialize)]
pub struct TagSummary {
    /// The tag.
    pub name: String,
    /// `version`, `hash` or `attachment`; with a policy file `tag` or `attachment`.
    pub kind: &'static str,
    /// With a policy file: what becomes of it (`keep`, `untag`, `delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<TagAction>,
    /// With a policy file: the rule that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// With a policy file: why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What removing it from a manifest that stays came to (absent in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untag: Option<UntagOutcome>,
}

/// One manifest with its decision and outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestSummary {
    /// Full digest.
    pub digest: Digest,
    /// `image`, `index` or `artifact`.
    pub kind: ManifestKind,
    /// Media type of the manifest.
    pub media_type: std::borrow::Cow<'static, str>,
    /// Tags, sorted.
    pub tags: Vec<TagSummary>,
    /// The date it was ranked by (config `created`, newest child's, or push time).
    pub created: Option<DateTime<Utc>>,
    /// Platform of an image (`linux/arm64/v8`).
    pub platform: Option<String>,
    /// Platforms an index lists.
    pub platforms: Vec<String>,
    /// How many manifests an index lists.
    pub children: usize,
    /// An artifact's type.
    pub artifact_type: Option<String>,
    /// `keep` or `delete`.
    pub action: Action,
    /// Why, with the digest it depends on where there is one.
    #[serde(flatten)]
    pub reason: Reason,
    /// What apply did (absent in a dry run and for kept manifests).
    pub outcome: Option<DeletionOutcome>,
    /// The provider's own id for it (a GitHub package version id: what restore takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// Counts and the reclaimable-space estimate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Repositories planned.
    pub repositories: usize,
    /// Manifests planned.
    pub manifests: usize,
    /// Manifests kept.
    pub kept: usize,
    /// Manifests the plan deletes.
    pub planned_deletions: usize,
    /// Deleted by this run (or found already gone).
    pub deleted: usize,
    /// Deletions that failed.
    pub failed: usize,
    /// Deletions skipped because a push during the run made them wrong (a new tag, or a new
    /// index listing the manifest).
    pub skipped: usize,
    /// Deletions not attempted because the run stopped.
    pub not_attempted: usize,
    /// Deletions held back because a linked deletion before them did not happen.
    #[serde(default)]
    pub held: usize,
    /// Planned deletions the registry refused by a rule of its own (GitHub's last tagged
    /// version, a GitLab protected tag): kept, not failed.
    #[serde(default)]
    pub kept_by_registry: usize,
    /// Of `deleted`: manifests whose tags were deleted, left untagged for the registry's own
    /// garbage collection (GitLab's API deletes tags only).
    #[serde(default)]
    pub left_untagged: usize,
    /// Kept, by reason label.
    pub kept_by_reason: BTreeMap<&'static str, usize>,
    /// Planned deletions, by reason label.
    pub deleted_by_reason: BTreeMap<&'static str, usize>,
    /// Bytes of blobs that only deleted manifests reference: what garbage collection frees.
    pub reclaimable_bytes: u64,
    /// True when some repositories were not read (REPO_FILTER), so shared blobs may be
    /// counted that another repository still uses.
    pub reclaimable_is_upper_bound: bool,
    /// Repositories left untouched because discovery was incomplete.
    pub incomplete_repositories: usize,
    /// Tags the plan removes from manifests that stay (a policy file).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub planned_untags: usize,
    /// Of those, removed by this run (or gone already).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untagged: usize,
    /// Of those, left: moved during the run, impossible, failed or not attempted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untags_left: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Facts about the run that are not in the plan.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    /// The registry URL as shown.
    pub registry: &'a str,
    /// The storage as shown.
    pub storage: &'a str,
    /// Dry run?
    pub dry_run: bool,
}

fn tag_kind_label(kind: &TagKind) -> &'static str {
    match kind {
        TagKind::Version => "version",
        TagKind::Hash => "hash",
        TagKind::Attachment { .. } => "attachment",
    }
}

/// What became of a run's untags: the outcomes, the repository and the manifest asked about.
type UntagsOf<'a> = (
    &'a BTreeMap<crate::apply::TagKey, UntagOutcome>,
    &'a RepositoryName,
    &'a Digest,
);

/// A manifest's tags for the report: their kind, and with a policy file each one's decision,
/// rule, why, and what untagging it came to (counted in `totals`).
fn tag_summaries(
    tags: Vec<crate::model::Tag>,
    decisions: Option<&[&TagDecision]>,
    policy: &Policy,
    untags: Option<UntagsOf<'_>>,
    totals: &mut Totals,
) -> Vec<TagSummary> {
    tags.into_iter()
        .map(|name| {
            let decision = decisions.and_then(|d| d.iter().find(|d| d.tag == name));
            let kind = match (decision, crate::model::attachment_target(&name)) {
                (_, Some(_)) => "attachment",
                (Some(_), None) => "tag",
                (None, None) => tag_kind_label(&classify_tag(&name, policy)),
            };
            let untag = match decision {
                Some(d) if d.action == TagAction::Untag => {
                    totals.planned_untags += 1;
                    let outcome = untags.and_then(|(outcomes, repository, digest)| {
                        outcomes
                            .get(&(repository.clone(), digest.clone(), name.clone()))
                            .cloned()
                    });
                    match &outcome {
                        Some(o) if o.is_done() => totals.untagged += 1,
                        Some(_) => totals.untags_left += 1,
                        None => {}
                    }
                    outcome
                }
                _ => None,
            };
            TagSummary {
                kind,
                action: decision.map(|d| d.action),
                rule: decision.and_then(|d| d.rule.clone()),
                why: decision.map(|d| d.why.clone()),
                untag,
                name,
            }
        })
        .collect()
}

/// Builds the summary of a run. `applied` is `None` in a dry run (or when apply never ran).
pub fn summarize(
    inventory: Inventory,
    plan: &Plan,
    policy: &Policy,
    applied: Option<&Applied>,
    context: &RunContext<'_>,
) -> Summary {
    let mut totals = Totals {
        repositories: plan.repositories.len(),
        ..Totals::default()
    };
    // The inventory is taken apart repository by repository as the summary grows, so that
    // a large registry is not held twice.
    let mut by_name: HashMap<RepositoryName, Repository> = inventory
        .repositories
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let mut repositories = Vec::with_capacity(plan.repositories.len());
    // Blobs still referenced by something kept (in any repository read), and blobs of
    // manifests that are (or would be) gone.
    let mut kept_blobs: HashSet<Digest> = HashSet::new();
    let mut gone_blobs: HashMap<Digest, u64> = HashMap::new();
    let planned_names: HashSet<_> = plan.repositories.iter().map(|r| &r.name).collect();
    for repository in by_name.values() {
        if !planned_names.contains(&repository.name) {
            for manifest in &repository.manifests {
                kept_blobs.insert(manifest.digest.clone());
                kept_blobs.extend(manifest.blobs.iter().map(|b| b.digest.clone()));
            }
        }
    }

    for repository_plan in &plan.repositories {
        let Some(repository) = by_name.remove(&repository_plan.name) else {
            continue;
        };
        if !repository.problems.is_empty() {
            totals.incomplete_repositories += 1;
        }
        let mut manifests = Vec::with_capacity(repository.manifests.len());
        // With a policy file: each tag's decision, by manifest (in the plan's tag order).
        let mut tag_decisions: HashMap<&Digest, Vec<&TagDecision>> = HashMap::new();
        for decision in &repository_plan.tags {
            tag_decisions
                .entry(&decision.digest)
                .or_default()
                .push(decision);
        }
        for (manifest, decision) in repository
            .manifests
            .into_iter()
            .zip(&repository_plan.decisions)
        {
            debug_assert_eq!(manifest.digest, decision.digest);
            let outcome = applied.and_then(|a| {
                a.outcomes
                    .get(&(repository.name.clone(), manifest.digest.clone()))
                    .cloned()
            });
            totals.manifests += 1;
            let gone = match decision.action {
                Action::Keep => {
                    totals.kept += 1;
                    *totals
                        .kept_by_reason
                        .entry(decision.reason.label())
                        .or_default() += 1;
                    false
                }
                Action::Delete => {
                    totals.planned_deletions += 1;
                    *totals
                        .deleted_by_reason
                        .entry(decision.reason.label())
                        .or_default() += 1;
                    match &outcome {
                        Some(
                            DeletionOutcome::Deleted
                            | DeletionOutcome::AlreadyGone
                            | DeletionOutcome::DeletedWith { .. },
                        ) => {
                            totals.deleted += 1;
                            true
                        }
                        Some(DeletionOutcome::Untagged { .. }) => {
                            totals.deleted += 1;
                            totals.left_untagged += 1;
                            true
                        }
                        Some(DeletionOutcome::Failed { .. }) => {
                            totals.failed += 1;
                            false
                        }
                        Some(
                            DeletionOutcome::SkippedRaced { .. }
                            | DeletionOutcome::SkippedChanged { .. }
                            | DeletionOutcome::SkippedReferenced { .. }
                            | DeletionOutcome::TagMoved { .. },
                        ) => {
                            totals.skipped += 1;
                            false
                        }
                        Some(DeletionOutcome::NotAttempted) => {
                            totals.not_attempted += 1;
                            false
                        }
                        Some(DeletionOutcome::Held { .. } | DeletionOutcome::Restored { .. }) => {
                            totals.held += 1;
                            false
                        }
                        Some(DeletionOutcome::KeptByRegistry { .. }) => {
                            totals.kept_by_registry += 1;
                            false
                        }
                        None => applied.is_none(),
                    }
                }
            };
            if gone {
                gone_blobs.insert(manifest.digest.clone(), manifest.size);
                for blob in &manifest.blobs {
                    gone_blobs.insert(blob.digest.clone(), blob.size);
                }
            } else {
                kept_blobs.insert(manifest.digest.clone());
                kept_blobs.extend(manifest.blobs.iter().map(|b| b.digest.clone()));
            }
            manifests.push(ManifestSummary {
                digest: manifest.digest.clone(),
                kind: manifest.kind,
                media_type: manifest.media_type,
                tags: tag_summaries(
                    manifest.tags,
                    tag_decisions.get(&manifest.digest).map(Vec::as_slice),
                    policy,
                    applied.map(|a| (&a.untags, &repository.name, &manifest.digest)),
                    &mut totals,
                ),
                created: decision.effective_date,
                platform: manifest.platform.as_ref().map(ToString::to_string),
                platforms: manifest
                    .children
                    .iter()
                    .filter_map(|c| c.platform.as_ref().map(ToString::to_string))
                    .collect(),
                children: manifest.children.len(),
                artifact_type: manifest.artifact_type,
                action: decision.action,
                reason: decision.reason.clone(),
                outcome,
                provider_id: manifest.provider_id,
            });
        }
        repositories.push(RepositorySummary {
            name: repository.name.to_string(),
            problems: repository.problems,
            notes: repository.notes,
            manifests,
        });
    }
    totals.reclaimable_bytes = gone_blobs
        .iter()
        .filter(|(digest, _)| !kept_blobs.contains(*digest))
        .map(|(_, size)| *size)
        .sum();
    totals.reclaimable_is_upper_bound = !policy.repositories.is_empty();
    let file = policy.file.as_ref().and_then(|f| match &f.origin {
        crate::policy::Origin::File { path, .. } => Some(path.clone()),
        crate::policy::Origin::Seed => None,
    });

    Summary {
        schema_version: SCHEMA_VERSION,
        regsweep_version: env!("CARGO_PKG_VERSION").to_string(),
        registry: context.registry.to_string(),
        storage: context.storage.to_string(),
        dry_run: context.dry_run,
        policy: PolicySummary {
            hash_tag_pattern: policy.hash_tag_pattern.as_str().to_string(),
            hash_tag_keep: policy.hash_tag_keep,
            min_age_seconds: policy.min_age().num_seconds(),
            repository_filter: (!policy.repositories.is_empty()).then(|| {
                let names: Vec<String> = policy
                    .repositories
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                names.join(",")
            }),
            rules: policy
                .file
                .as_ref()
                .map(|f| f.describe())
                .unwrap_or_default(),
            file,
        },
        repositories,
        totals,
        garbage_collection: None,
        fatal: applied.and_then(|a| a.fatal.clone()),
        notices: Vec::new(),
        plan_hash: None,
        garbage_collection_run: None,
        verification: None,
        timings: None,
        maintenance: None,
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_humans() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn reclaimable_counts_only_blobs_nothing_kept_uses() {
        let summary = fixtures::summary(true);
        // The fixture's deleted manifests share the layer `shared-layer` with a kept one.
        assert_eq!(
            summary.totals.reclaimable_bytes,
            fixtures::EXPECTED_RECLAIMABLE
        );
    }
}
