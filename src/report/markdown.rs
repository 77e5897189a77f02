//! markdown: the report for a CI job summary or a pull/merge-request comment: a headline,
//! then one table per decision, long tables folded in `<details>`.

use std::fmt::Write as _;

use super::{
    describe_kind, format_date, human_bytes, reason_label_text, reason_text, ManifestSummary,
    RepositorySummary, Summary,
};
use crate::apply::DeletionOutcome;
use crate::model::Action;

/// Tables longer than this are folded.
const FOLD_AFTER_ROWS: usize = 10;
/// Rows shown per table at most; the rest are counted ("… and N more").
const MAX_ROWS: usize = 500;

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn result_text(summary: &Summary, manifest: &ManifestSummary) -> String {
    if manifest.action == Action::Keep {
        return "kept".into();
    }
    if summary.dry_run {
        return "would delete".into();
    }
    match &manifest.outcome {
        Some(DeletionOutcome::Deleted) => "deleted".into(),
        Some(DeletionOutcome::AlreadyGone) => "deleted (was already gone)".into(),
        Some(DeletionOutcome::DeletedWith { parent }) => {
            format!("deleted with `{}` by the registry", parent.short())
        }
        Some(DeletionOutcome::SkippedRaced { tags }) => {
            format!("skipped: `{}` pushed during the run", tags.join(","))
        }
        Some(DeletionOutcome::SkippedChanged { change }) => {
            format!("skipped: changed since the plan ({})", escape(change))
        }
        Some(DeletionOutcome::SkippedReferenced { index }) => {
            format!(
                "skipped: listed by index `{}` pushed during the run",
                index.short()
            )
        }
        Some(DeletionOutcome::KeptByRegistry { reason }) => {
            format!("kept by the registry: {}", escape(reason))
        }
        Some(DeletionOutcome::Untagged { tags }) if tags.is_empty() => {
            "left untagged for the registry's garbage collection".into()
        }
        Some(DeletionOutcome::Untagged { tags }) => format!(
            "untagged (`{}` deleted); the registry's garbage collection removes it",
            escape(&tags.join("`, `"))
        ),
        Some(DeletionOutcome::TagMoved { tag, now, .. }) => format!(
            "skipped: tag `{}` now points at `{}` (pushed during the run)",
            escape(tag),
            now.short()
        ),
        Some(DeletionOutcome::Failed { error }) => format!("**failed**: {}", escape(error)),
        Some(DeletionOutcome::Held { behind }) => format!(
            "not deleted: waits for `{}`, which was not deleted",
            behind.short()
        ),
        Some(DeletionOutcome::Restored { because }) => format!(
            "deleted, then put back: `{}`, which it belongs to, stays",
            because.short()
        ),
        Some(DeletionOutcome::NotAttempted) | None => "not deleted: the run stopped".into(),
    }
}

/// A table's heading with its row count; a long table folds behind `<details>` (returns
/// whether it did, so that the caller closes it).
fn heading(out: &mut String, title: &str, count: usize, noun: &str) -> bool {
    let fold = count > FOLD_AFTER_ROWS;
    let _ = writeln!(out, "### {title} ({count})\n");
    if fold {
        let _ = writeln!(out, "<details><summary>Show {count} {noun}</summary>\n");
    }
    fold
}

/// A table's end: how many rows were left out, and the fold closed.
fn footer(out: &mut String, count: usize, fold: bool) {
    if count > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n… and {} more (see the JSON report for all of them)",
            count - MAX_ROWS
        );
    }
    if fold {
        out.push_str("\n</details>\n");
    }
    out.push('\n');
}

fn table(
    out: &mut String,
    title: &str,
    summary: &Summary,
    rows: &[(&RepositorySummary, &ManifestSummary)],
) {
    if rows.is_empty() {
        return;
    }
    let fold = heading(out, title, rows.len(), "manifests");
    out.push_str("| Repository | Digest | Tags | Created | Kind | Reason | Result |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (repository, manifest) in rows.iter().take(MAX_ROWS) {
        let tags: Vec<String> = manifest
            .tags
            .iter()
            .map(|t| format!("`{}`", escape(&t.name)))
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | {} | {} | {} |",
            escape(&repository.name),
            manifest.digest.short(),
            tags.join(" "),
            format_date(manifest.created),
            escape(&describe_kind(manifest)),
            escape(&reason_text(&manifest.reason)),
            result_text(summary, manifest),
        );
    }
    footer(out, rows.len(), fold);
}

/// With a policy file: every tag's decision, its rule and why, and what became of it.
fn tag_table(out: &mut String, summary: &Summary) {
    let rows: Vec<(&RepositorySummary, &ManifestSummary, &super::TagSummary)> = summary
        .repositories
        .iter()
        .flat_map(|r| r.manifests.iter().map(move |m| (r, m)))
        .flat_map(|(r, m)| m.tags.iter().map(move |t| (r, m, t)))
        .filter(|(_, _, t)| t.why.is_some() && t.kind != "attachment")
        .collect();
    if rows.is_empty() {
        return;
    }
    let fold = heading(out, "Tags", rows.len(), "tags");
    out.push_str("| Repository | Tag | Digest | Decision | Why | Result |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (repository, manifest, tag) in rows.iter().take(MAX_ROWS) {
        let decision = match tag.action {
            Some(crate::model::TagAction::Keep) => "kept",
            Some(crate::model::TagAction::Untag) => "untagged (image stays)",
            Some(crate::model::TagAction::Delete) => "deleted with its image",
            None => "",
        };
        let result = match (&tag.untag, tag.action) {
            (_, Some(crate::model::TagAction::Keep)) => "kept".to_string(),
            (_, Some(crate::model::TagAction::Delete)) => result_text(summary, manifest),
            (_, _) if summary.dry_run => "would untag".to_string(),
            (Some(outcome), _) => untag_text(outcome),
            (None, _) => "not removed: the run stopped".to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` | {decision} | {} | {} |",
            escape(&repository.name),
            escape(&tag.name),
            manifest.digest.short(),
            escape(tag.why.as_deref().unwrap_or_default()),
            result,
        );
    }
    footer(out, rows.len(), fold);
}

fn untag_text(outcome: &crate::apply::UntagOutcome) -> String {
    use crate::apply::UntagOutcome;
    match outcome {
        UntagOutcome::Untagged => "untagged".into(),
        UntagOutcome::AlreadyGone => "untagged (was already gone)".into(),
        UntagOutcome::Moved { now } => format!(
            "skipped: now points at `{}` (pushed during the run)",
            now.short()
        ),
        UntagOutcome::Impossible { reason } => format!("kept: {}", escape(reason)),
        UntagOutcome::Failed { error } => format!("**failed**: {}", escape(error)),
        UntagOutcome::NotAttempted => "not removed: the run stopped".into(),
    }
}

/// Renders the summary as GitHub-flavoured Markdown.
pub fn render(summary: &Summary) -> String {
    let totals = &summary.totals;
    let mut out = String::new();
    let verb = if summary.dry_run {
        "to delete"
    } else {
        "deleted"
    };
    let deleted = if summary.dry_run {
        totals.planned_deletions
    } else {
        totals.deleted
    };
    let _ = writeln!(
        out,
        "## regsweep: {deleted} manifests {verb}, {} kept, {} reclaimable\n",
        totals.kept,
        human_bytes(totals.reclaimable_bytes)
    );
    if summary.dry_run {
        out.push_str("_Dry run: nothing was deleted._\n\n");
    }
    if let Some(hash) = &summary.plan_hash {
        let _ = writeln!(out, "Plan `{hash}`\n");
    }
    let policy = match &summary.policy.file {
        Some(file) => format!(
            "the retention policy `{}` ({} rules)",
            escape(file),
            summary
                .policy
                .rules
                .iter()
                .filter(|l| l.starts_with("rule "))
                .count()
        ),
        None => format!(
            "keep the {} newest hash tags (`{}`) per repository",
            summary.policy.hash_tag_keep,
            escape(&summary.policy.hash_tag_pattern)
        ),
    };
    let _ = writeln!(
        out,
        "Registry `{}`: {} manifests in {} repositories. Policy: {policy}{}.\n",
        summary.registry,
        totals.manifests,
        totals.repositories,
        if summary.policy.min_age_seconds > 0 {
            format!(
                ", and everything younger than {}",
                humantime::format_duration(std::time::Duration::from_secs(
                    summary.policy.min_age_seconds as u64
                ))
            )
        } else {
            String::new()
        },
    );
    for notice in &summary.notices {
        let _ = writeln!(out, "> [!NOTE]\n> {}.\n", escape(notice));
    }
    if let Some(fatal) = &summary.fatal {
        let _ = writeln!(out, "> [!CAUTION]\n> Stopped: {}\n", escape(fatal));
    }
    if let Some(verification) = summary
        .verification
        .as_ref()
        .filter(|v| !v.failures.is_empty())
    {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> Verification failed: {} problems with kept tags after the run.\n",
            verification.failures.len()
        );
        for failure in &verification.failures {
            let _ = writeln!(out, "- BROKEN {}", escape(failure));
        }
        out.push('\n');
    }
    if totals.failed > 0 || totals.skipped > 0 || totals.incomplete_repositories > 0 {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> Failed deletions: {}. Skipped (a tag was pushed during the run): {}. \
             Repositories left untouched (not fully readable): {}. A second run finishes the job.\n",
            totals.failed, totals.skipped, totals.incomplete_repositories
        );
    }

    if totals.held > 0 {
        let _ = writeln!(
            out,
            "> [!NOTE]\n> Held back: {} deletions wait for a linked deletion that did not happen \
             (an index still there, a signature or referrer still there); see the table.\n",
            totals.held
        );
    }

    out.push_str("| | Manifests | Why |\n|---|---|---|\n");
    let reasons = |counts: &std::collections::BTreeMap<&'static str, usize>| {
        counts
            .iter()
            .map(|(label, n)| format!("{} {n}", reason_label_text(label)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "| Kept | {} | {} |",
        totals.kept,
        reasons(&totals.kept_by_reason)
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} |",
        if summary.dry_run {
            "To delete"
        } else {
            "Deleted"
        },
        deleted,
        reasons(&totals.deleted_by_reason)
    );
    if totals.planned_untags > 0 {
        let _ = writeln!(
            out,
            "| {} | {} tags | removed from images that stay{} |",
            if summary.dry_run {
                "To untag"
            } else {
                "Untagged"
            },
            if summary.dry_run {
                totals.planned_untags
            } else {
                totals.untagged
            },
            if totals.untags_left > 0 {
                format!("; {} left (see the tags)", totals.untags_left)
            } else {
                String::new()
            }
        );
    }
    out.push('\n');

    let all: Vec<(&RepositorySummary, &ManifestSummary)> = summary
        .repositories
        .iter()
        .flat_map(|r| r.manifests.iter().map(move |m| (r, m)))
        .collect();
    let deletions: Vec<_> = all
        .iter()
        .copied()
        .filter(|(_, m)| m.action == Action::Delete)
        .collect();
    let kept: Vec<_> = all
        .iter()
        .copied()
        .filter(|(_, m)| m.action == Action::Keep)
        .collect();
    table(
        &mut out,
        if summary.dry_run {
            "To delete"
        } else {
            "Planned deletions"
        },
        summary,
        &deletions,
    );
    table(&mut out, "Kept", summary, &kept);
    if summary.policy.file.is_some() {
        tag_table(&mut out, summary);
    }

    for repository in summary
        .repositories
        .iter()
        .filter(|r| !r.problems.is_empty())
    {
        let _ = writeln!(out, "### Untouched: `{}`\n", escape(&repository.name));
        for problem in &repository.problems {
            let _ = writeln!(out, "- {}", escape(problem));
        }
        out.push('\n');
    }
    let notes: Vec<String> = summary
        .repositories
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .map(move |n| format!("- `{}`: {}", escape(&r.name), escape(n)))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "### Notes\n\n{}\n", notes.join("\n"));
    }
    if let Some(m) = &summary.maintenance {
        let would = if summary.dry_run { "would be " } else { "" };
        let _ = writeln!(
            out,
            "### Maintenance window\n\n{}.\n\n| Step | Result |\n|---|---|\n\
             | Storage | {} manifests {would}removed with {} tags, {} tags removed from images \
             that stay, {} dangling tags ({} files) |",
            escape(&m.window),
            m.manifests_deleted,
            m.tags_deleted,
            m.tags_untagged,
            m.dangling_tags,
            m.files_removed
        );
        match &m.not_collected {
            Some(why) => {
                let _ = writeln!(out, "| Collection | not run: {} |", escape(why));
            }
            None => {
                let _ = writeln!(
                    out,
                    "| Collection | {} of {} blobs {would}deleted, {} {would}freed |",
                    m.blobs_deleted,
                    m.blobs,
                    human_bytes(m.bytes_freed)
                );
            }
        }
        let _ = writeln!(out, "| Phases | {} |\n", m.phases.describe());
        if !summary.dry_run {
            let _ = writeln!(out, "> [!IMPORTANT]\n> Next: {}.\n", escape(&m.next));
        }
    }
    if let Some(run) = &summary.garbage_collection_run {
        let _ = writeln!(
            out,
            "### Garbage collection\n\n`{}`: **{}**, {} blobs deleted, {} freed.\n",
            run.id,
            escape(&run.status),
            run.blobs_deleted.unwrap_or(0),
            human_bytes(run.freed_bytes.unwrap_or(0))
        );
        if !run.kind.is_empty() {
            let _ = writeln!(out, "Type `{}`: {}.\n", escape(&run.kind), escape(&run.why));
        }
    } else if let Some(gc) = &summary.garbage_collection {
        out.push_str("### Free the space\n\n```sh\n");
        let _ = writeln!(out, "{}", gc.command);
        out.push_str("```\n\n");
        for warning in &gc.warnings {
            let _ = writeln!(out, "- {warning}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(super::render(&fixtures::summary(false)));
    }
}
