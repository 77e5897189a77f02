//! text: the terminal report, in the seed's format (`[keep]` / `DRY_RUN:` lines, short digests,
//! `repo=`, `tag=`, `created=`, platform), extended with sections for what is kept because
//! something references it, then totals and the next step.

use std::fmt::Write;

use super::rows::{
    deletion_marker, hash_rank, joined_tags, matching, plural, render_rows, row, Row,
};
use super::{human_bytes, reason_label_text, reason_text, RepositorySummary, Summary};
use crate::model::Reason;

/// Renders the whole report.
#[cfg(test)]
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    write(summary, &mut out);
    out
}

/// Writes the whole report to `out` as it goes (a large registry's report is not held as one
/// string first).
pub fn write(summary: &Summary, out: &mut impl Write) {
    let file = summary.policy.file.is_some();
    if file {
        super::rules::write_kept(summary, out);
    } else {
        write_seed_kept(summary, out);
    }
    write_kept_referenced(summary, out);
    if file {
        super::rules::write_removed(summary, out);
    } else {
        write_seed_removed(summary, out);
    }
    write_deleted_untagged(summary, out);
    if file {
        super::rules::write_untags(summary, out);
    }
    render_totals(out, summary);
}

/// The seed's sections of what stays: version tags, the newest hash tags.
fn write_seed_kept(summary: &Summary, out: &mut impl Write) {
    let keep = summary.policy.hash_tag_keep;
    // Seed section: version-tagged manifests, one line per tag.
    let _ = out.write_str("Version-tagged manifests (always kept):\n");
    let rows: Vec<Row> = matching(summary, |r| *r == Reason::VersionTag)
        .flat_map(|(r, m)| {
            m.tags
                .iter()
                .map(move |t| row("[keep]", r, m, Some(t.name.clone()), None))
        })
        .collect();
    render_rows(out, &rows);

    // Seed section: hash-tagged manifests kept.
    let _ = writeln!(
        out,
        "\nHash-tagged manifests (keeping {keep} most recent per repo):"
    );
    let mut recent: Vec<_> =
        matching(summary, |r| matches!(r, Reason::RecentHashTag { .. })).collect();
    recent.sort_by_key(|(r, m)| (&r.name, hash_rank(&m.reason)));
    let rows: Vec<Row> = recent
        .into_iter()
        .flat_map(|(r, m)| {
            m.tags
                .iter()
                .filter(|t| t.kind == "hash")
                .map(move |t| row("[keep]", r, m, Some(t.name.clone()), None))
        })
        .collect();
    render_rows(out, &rows);
}

/// What stays for another reason than its own tags (shared by both kinds of policy).
fn write_kept_referenced(summary: &Summary, out: &mut impl Write) {
    // Kept because something kept references them: where other tools break images.
    let referenced: Vec<Row> = matching(summary, |r| {
        matches!(
            r,
            Reason::ChildOfKeptIndex { .. }
                | Reason::ReferrerOfKept { .. }
                | Reason::AttachmentOfKept { .. }
        )
    })
    .map(|(r, m)| row("[keep]", r, m, joined_tags(m), Some(reason_text(&m.reason))))
    .collect();
    if !referenced.is_empty() {
        let _ = out.write_str("\nKept because a kept manifest references them (index children, referrers, attachments):\n");
        render_rows(out, &referenced);
    }

    let taking: Vec<Row> = matching(summary, |r| matches!(r, Reason::TakesKeptAlong { .. }))
        .map(|(r, m)| row("[keep]", r, m, joined_tags(m), Some(reason_text(&m.reason))))
        .collect();
    if !taking.is_empty() {
        let _ = out.write_str(
            "\nKept because the registry would delete a kept manifest with them (its untagged \
             children and accessories go with what it deletes):\n",
        );
        render_rows(out, &taking);
    }

    let young: Vec<Row> = matching(summary, |r| *r == Reason::TooYoung)
        .map(|(r, m)| row("[keep]", r, m, joined_tags(m), None))
        .collect();
    if !young.is_empty() {
        let age = humantime::format_duration(std::time::Duration::from_secs(
            summary.policy.min_age_seconds.max(0) as u64,
        ));
        let _ = writeln!(out, "\nKept because they are younger than {age}:");
        render_rows(out, &young);
    }

    let orphans: Vec<Row> = matching(summary, |r| {
        matches!(r, Reason::AttachmentTargetMissing { .. })
    })
    .map(|(r, m)| row("[keep]", r, m, joined_tags(m), Some(reason_text(&m.reason))))
    .collect();
    if !orphans.is_empty() {
        let _ =
            out.write_str("\nAttachments kept because their target is not in the repository:\n");
        render_rows(out, &orphans);
    }

    let incomplete: Vec<&RepositorySummary> = summary
        .repositories
        .iter()
        .filter(|r| !r.problems.is_empty())
        .collect();
    if !incomplete.is_empty() {
        let _ = out.write_str(
            "\nRepositories left untouched because they could not be read completely:\n",
        );
        for repository in incomplete {
            let _ = writeln!(
                out,
                "  repo={}  ({} kept)",
                repository.name,
                plural(repository.manifests.len(), "manifest", "manifests")
            );
            for problem in &repository.problems {
                let _ = writeln!(out, "    {problem}");
            }
        }
    }

    let notes: Vec<(&str, &String)> = summary
        .repositories
        .iter()
        .flat_map(|r| r.notes.iter().map(move |n| (r.name.as_str(), n)))
        .collect();
    if !notes.is_empty() {
        let _ = out.write_str("\nNotes:\n");
        for (repository, note) in notes {
            let _ = writeln!(out, "  repo={repository}  {note}");
        }
    }
}

/// The seed's section of hash tags beyond the newest N.
fn write_seed_removed(summary: &Summary, out: &mut impl Write) {
    let keep = summary.policy.hash_tag_keep;
    // Seed section: hash-tagged manifests beyond the newest N.
    let _ = writeln!(
        out,
        "\nHash-tagged manifests to delete (beyond {keep} most recent per repo):"
    );
    let mut old: Vec<_> = matching(summary, |r| matches!(r, Reason::OldHashTag { .. })).collect();
    old.sort_by_key(|(r, m)| (&r.name, hash_rank(&m.reason)));
    let rows: Vec<Row> = old
        .into_iter()
        .map(|(r, m)| {
            let (marker, note) = deletion_marker(summary, m);
            row(&marker, r, m, joined_tags(m), note)
        })
        .collect();
    render_rows(out, &rows);
}

/// Untagged manifests deleted, and what goes with deleted manifests (shared).
fn write_deleted_untagged(summary: &Summary, out: &mut impl Write) {
    // Seed section: untagged manifests, with its `Cleaning i of n` lines.
    let untagged: Vec<_> = matching(summary, |r| *r == Reason::Untagged).collect();
    let total = untagged.len();
    let _ = writeln!(out, "\nUntagged manifests to delete ({total} in registry):");
    for (i, (r, m)) in untagged.into_iter().enumerate() {
        if summary.dry_run {
            let _ = writeln!(
                out,
                "  Cleaning {} of {total} ..not really, due to dry-run mode",
                i + 1
            );
        } else {
            let _ = writeln!(out, "  Cleaning {} of {total}", i + 1);
        }
        let (marker, note) = deletion_marker(summary, m);
        render_rows(out, &[row(&marker, r, m, None, note)]);
    }

    let followers: Vec<Row> = matching(summary, |r| {
        matches!(
            r,
            Reason::ChildOfDeletedIndex { .. }
                | Reason::ReferrerOfDeleted { .. }
                | Reason::AttachmentOfDeleted { .. }
        )
    })
    .map(|(r, m)| {
        let (marker, note) = deletion_marker(summary, m);
        let why = reason_text(&m.reason);
        let note = Some(note.map_or(why.clone(), |n| format!("{why}; {n}")));
        row(&marker, r, m, joined_tags(m), note)
    })
    .collect();
    if !followers.is_empty() {
        let _ = out.write_str(
            "\nManifests to delete with what references them (children, referrers, attachments):\n",
        );
        render_rows(out, &followers);
    }
}

fn by_reason(counts: &std::collections::BTreeMap<&'static str, usize>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(label, n)| format!("{} {n}", reason_label_text(label)))
        .collect();
    format!("  ({})", parts.join(", "))
}

fn render_totals(out: &mut impl Write, summary: &Summary) {
    let totals = &summary.totals;
    let _ = out.write_str("\nTotals:\n");
    let _ = writeln!(
        out,
        "  manifests:    {} in {}",
        totals.manifests,
        plural(totals.repositories, "repository", "repositories")
    );
    let _ = writeln!(
        out,
        "  kept:         {}{}",
        totals.kept,
        by_reason(&totals.kept_by_reason)
    );
    if summary.dry_run {
        let _ = writeln!(
            out,
            "  to delete:    {}{}  (dry run: nothing was deleted)",
            totals.planned_deletions,
            by_reason(&totals.deleted_by_reason)
        );
    } else {
        let _ = writeln!(
            out,
            "  deleted:      {} of {} planned{}",
            totals.deleted,
            totals.planned_deletions,
            by_reason(&totals.deleted_by_reason)
        );
        if totals.skipped > 0 {
            let _ = writeln!(
                out,
                "  skipped:      {} (tagged or referenced since the plan was made)",
                totals.skipped
            );
        }
        if totals.failed > 0 {
            let _ = writeln!(
                out,
                "  failed:       {} (run again to finish the job)",
                totals.failed
            );
        }
        if totals.not_attempted > 0 {
            let _ = writeln!(
                out,
                "  not deleted:  {} (the run stopped first)",
                totals.not_attempted
            );
        }
        if totals.held > 0 {
            let _ = writeln!(
                out,
                "  held back:    {} (linked to a deletion that did not happen; see above)",
                totals.held
            );
        }
        if totals.kept_by_registry > 0 {
            let _ = writeln!(
                out,
                "  kept by the registry: {} (its own rules; see above)",
                totals.kept_by_registry
            );
        }
    }
    if totals.planned_untags > 0 {
        if summary.dry_run {
            let _ = writeln!(
                out,
                "  to untag:     {} (removed from images that stay)",
                totals.planned_untags
            );
        } else {
            let left = if totals.untags_left > 0 {
                format!("; {} left (see above)", totals.untags_left)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  untagged:     {} of {} planned (removed from images that stay){left}",
                totals.untagged, totals.planned_untags
            );
        }
    }
    if let Some(hash) = &summary.plan_hash {
        let _ = writeln!(out, "  plan:         {hash}");
    }
    let bound = if totals.reclaimable_is_upper_bound {
        "at most "
    } else {
        "about "
    };
    let _ = writeln!(
        out,
        "  reclaimable:  {bound}{} (blobs only deleted manifests use; garbage collection frees them)",
        human_bytes(totals.reclaimable_bytes)
    );
    if totals.incomplete_repositories > 0 {
        let _ = writeln!(
            out,
            "  untouched:    {} could not be read completely (see above)",
            plural(totals.incomplete_repositories, "repository", "repositories")
        );
    }
    for notice in &summary.notices {
        let _ = writeln!(out, "\nNote: {notice}.");
    }
    if let Some(fatal) = &summary.fatal {
        let _ = writeln!(out, "\nStopped: {fatal}");
    }
    if let Some(verification) = &summary.verification {
        if verification.failures.is_empty() {
            let _ = writeln!(
                out,
                "\nVerified: all {} kept tags are fully pullable (manifests, children, configs, layers).",
                verification.checked_tags
            );
        } else {
            let _ = writeln!(
                out,
                "\nVERIFICATION FAILED: {} problems with kept tags after the run:",
                verification.failures.len()
            );
            for failure in &verification.failures {
                let _ = writeln!(out, "  BROKEN {failure}");
            }
        }
    }
    if let Some(maintenance) = &summary.maintenance {
        render_maintenance(out, summary.dry_run, maintenance);
    }
    if let Some(run) = &summary.garbage_collection_run {
        let _ = writeln!(
            out,
            "\nGarbage collection {}: {}, {} blobs deleted, {} freed (the registry was read-only \
             while it ran).",
            run.id,
            run.status,
            run.blobs_deleted.unwrap_or(0),
            human_bytes(run.freed_bytes.unwrap_or(0))
        );
        if !run.kind.is_empty() {
            let _ = writeln!(out, "  Type: {}: {}.", run.kind, run.why);
        }
    } else if let Some(gc) = &summary.garbage_collection {
        let when = if summary.dry_run {
            "After a real run, free"
        } else {
            "Next step: free"
        };
        let _ = writeln!(
            out,
            "\n{when} the disk space with the registry's garbage collector:"
        );
        let _ = writeln!(out, "  {}", gc.command);
        for warning in &gc.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
}

/// The maintenance window's block: what was removed in storage and collected, and the next
/// step.
fn render_maintenance(out: &mut impl Write, dry_run: bool, m: &super::MaintenanceReport) {
    let would = if dry_run { "would be " } else { "" };
    let _ = writeln!(out, "\nMaintenance window: {}.", m.window);
    let _ = writeln!(
        out,
        "  storage:    {} {}removed with {}, {} removed from images that stay{} ({} files)",
        plural(m.manifests_deleted, "manifest", "manifests"),
        would,
        plural(m.tags_deleted, "tag", "tags"),
        plural(m.tags_untagged, "tag", "tags"),
        if m.dangling_tags > 0 {
            format!(
                ", {} naming no manifest",
                plural(m.dangling_tags, "tag", "tags")
            )
        } else {
            String::new()
        },
        m.files_removed
    );
    match &m.not_collected {
        Some(why) => {
            let _ = writeln!(out, "  collected:  nothing: {why}");
        }
        None => {
            let _ = writeln!(
                out,
                "  collected:  {} of {} blobs {}deleted, {} {}freed ({} referenced: kept)",
                m.blobs_deleted,
                m.blobs,
                would,
                human_bytes(m.bytes_freed),
                if dry_run { "would be " } else { "" },
                m.blobs_kept
            );
        }
    }
    let _ = writeln!(out, "  phases:     {}", m.phases.describe());
    if !dry_run {
        let _ = writeln!(out, "\nNext step: {}.", m.next);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;

    #[test]
    fn dry_run_report() {
        insta::assert_snapshot!(super::render(&fixtures::summary(true)));
    }

    #[test]
    fn real_run_report() {
        insta::assert_snapshot!(super::render(&fixtures::summary(false)));
    }
}
