//! rules: the text report's sections for a policy file, in the seed's format: what the rules
//! keep, what they remove with its manifest, and the tags they remove from images that stay;
//! one line per manifest and tag, each with its rule and why.

use std::fmt::Write;

use super::rows::{deletion_marker, matching, render_rows, row, Row};
use super::{ManifestSummary, Summary, TagSummary};
use crate::apply::UntagOutcome;
use crate::model::{Reason, TagAction};

/// One line per tag of `manifest` that `wanted` picks, with the tag's own why.
fn tag_rows<'a>(
    summary: &'a Summary,
    wanted: impl Fn(&Reason) -> bool + 'a,
    tags: impl Fn(&TagSummary) -> bool + Copy + 'a,
    marker: impl Fn(&ManifestSummary, &TagSummary) -> (String, Option<String>) + Copy + 'a,
) -> Vec<Row> {
    matching(summary, wanted)
        .flat_map(move |(repository, manifest)| {
            manifest
                .tags
                .iter()
                .filter(move |t| tags(t))
                .map(move |tag| {
                    let (mark, note) = marker(manifest, tag);
                    let why = tag.why.clone().unwrap_or_default();
                    let note = Some(match note {
                        Some(note) => format!("{why}; {note}"),
                        None => why,
                    });
                    row(&mark, repository, manifest, Some(tag.name.clone()), note)
                })
        })
        .collect()
}

/// What the rules keep: one line per kept tag, with the rule (or "no rule selects it").
pub(super) fn write_kept(summary: &Summary, out: &mut impl Write) {
    if let Some(file) = &summary.policy.file {
        let _ = writeln!(out, "Retention policy {file}:");
        for line in &summary.policy.rules {
            let _ = writeln!(out, "  {line}");
        }
        let _ = out.write_char('\n');
    }
    let _ = out.write_str("Kept by the retention policy (one line per tag):\n");
    let rows = tag_rows(
        summary,
        |r| matches!(r, Reason::TagKept { .. }),
        |t| t.action == Some(TagAction::Keep) && t.kind != "attachment",
        |_, _| ("[keep]".into(), None),
    );
    render_rows(out, &rows);
    let untagged: Vec<Row> = matching(summary, |r| *r == Reason::UntaggedKept)
        .map(|(r, m)| row("[keep]", r, m, None, None))
        .collect();
    if !untagged.is_empty() {
        let _ = out.write_str("\nUntagged manifests kept (untagged: keep):\n");
        render_rows(out, &untagged);
    }
}

/// What the rules remove with its manifest: one line per tag.
pub(super) fn write_removed(summary: &Summary, out: &mut impl Write) {
    let _ = out.write_str(
        "\nManifests to delete: every tag removed by the retention policy (one line per tag):\n",
    );
    let rows = tag_rows(
        summary,
        |r| *r == Reason::TagsRemoved,
        |t| t.kind != "attachment",
        |manifest, _| deletion_marker(summary, manifest),
    );
    render_rows(out, &rows);
}

/// The tags removed from images that stay, and what removing each came to.
pub(super) fn write_untags(summary: &Summary, out: &mut impl Write) {
    let rows = tag_rows(
        summary,
        |r| r.action() == crate::model::Action::Keep,
        |t| t.action == Some(TagAction::Untag),
        |_, tag| untag_marker(summary, tag),
    );
    if rows.is_empty() {
        return;
    }
    let _ =
        out.write_str("\nTags removed from images that stay (the image keeps its other tags):\n");
    render_rows(out, &rows);
}

/// The marker and note of an untag line.
fn untag_marker(summary: &Summary, tag: &TagSummary) -> (String, Option<String>) {
    if summary.dry_run {
        return ("DRY_RUN:".into(), None);
    }
    match &tag.untag {
        Some(UntagOutcome::Untagged) => ("[untagged]".into(), None),
        Some(UntagOutcome::AlreadyGone) => ("[untagged]".into(), Some("was already gone".into())),
        Some(UntagOutcome::Moved { now }) => (
            "[skipped]".into(),
            Some(format!(
                "now points at {} (pushed during the run): left",
                now.short()
            )),
        ),
        Some(UntagOutcome::Impossible { reason }) => (
            "[kept]".into(),
            Some(format!("cannot be removed: {reason}")),
        ),
        Some(UntagOutcome::Failed { error }) => ("[failed]".into(), Some(error.clone())),
        Some(UntagOutcome::NotAttempted) | None => {
            ("[not removed]".into(), Some("the run stopped first".into()))
        }
    }
}
