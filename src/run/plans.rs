//! plans: the plan files of `regsweep plan` and `regsweep apply`: written for review, read
//! back and checked (registry, provider, age, hash), and the policy they were made with.

use std::path::Path;

use chrono::Utc;

use super::RunError;
use crate::model::{Inventory, Plan};
use crate::plan::file::{PlanBody, PlanFile, PlannedPolicy, PlannedPolicyFile};
use crate::plan::{self as planner, Policy};
use crate::providers::Provider;
use crate::settings::Settings;

/// The policy a plan file was made with, as the report shows it.
pub(super) fn planned_policy(file: &PlanFile) -> Result<Policy, String> {
    let planned = &file.body.policy;
    let policy_file = planned
        .file
        .as_ref()
        .map(|f| {
            crate::policy::parse(&f.text, &f.path)
                .map(std::sync::Arc::new)
                .map_err(|e| format!("the plan's policy file does not read back: {e}"))
        })
        .transpose()?;
    Ok(Policy {
        hash_tag_pattern: regex::Regex::new(&planned.hash_tag_pattern)
            .map_err(|e| format!("the plan's HASH_TAG_PATTERN does not compile: {e}"))?,
        hash_tag_keep: planned.hash_tag_keep,
        min_age: chrono::Duration::seconds(planned.min_age_seconds),
        repositories: planned.repositories.clone(),
        file: policy_file,
        // The plan was made with it already.
        takes_along: false,
    })
}

/// Writes the plan file for review; its hash.
pub(super) fn write_plan<P: Provider>(
    settings: &Settings,
    provider: &P,
    out: &Path,
    inventory: &Inventory,
    plan: &Plan,
) -> Result<String, RunError> {
    let file = PlanFile::new(PlanBody {
        format: planner::file::FORMAT.to_string(),
        created_at: Utc::now(),
        regsweep_version: env!("CARGO_PKG_VERSION").to_string(),
        registry: registry_display(&settings.registry_url),
        provider: settings.source.provider_name().to_string(),
        source: provider.source(),
        policy: PlannedPolicy {
            hash_tag_pattern: settings.policy.hash_tag_pattern.as_str().to_string(),
            hash_tag_keep: settings.policy.hash_tag_keep,
            min_age_seconds: settings.policy.min_age().num_seconds(),
            repositories: settings.policy.repositories.clone(),
            file: settings.policy.file.as_ref().and_then(|f| match &f.origin {
                crate::policy::Origin::File { path, text } => Some(PlannedPolicyFile {
                    path: path.clone(),
                    text: text.clone(),
                }),
                crate::policy::Origin::Seed => None,
            }),
        },
        inventory: inventory.clone(),
        plan: plan.clone(),
    });
    // Written aside, then renamed: a plan cut short by a full disk or a kill never replaces a
    // good one under its name.
    let partial = out.with_extension("json.partial");
    std::fs::write(&partial, file.to_json())
        .and_then(|()| std::fs::rename(&partial, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            RunError::Usage(format!("cannot write the plan to `{}`: {e}", out.display()))
        })?;
    eprintln!(
        "regsweep: plan written to `{}` ({})",
        out.display(),
        file.hash
    );
    Ok(file.hash)
}

/// The registry's URL as reports and plans show it.
fn registry_display(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

/// Reads the plan at `path` and checks it was made for this registry and provider, recently
/// enough (`REGSWEEP_PLAN_MAX_AGE`), and not changed since.
pub fn load_plan(settings: &Settings, path: &Path) -> Result<PlanFile, RunError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| RunError::Usage(format!("cannot read the plan `{shown}`: {e}")))?;
    let file = PlanFile::from_json(&text, &shown)?;
    file.check(
        &shown,
        &registry_display(&settings.registry_url),
        settings.source.provider_name(),
        Utc::now(),
        settings.plan_max_age,
    )?;
    Ok(file)
}
