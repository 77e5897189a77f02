//! rows: the text report's lines, shared by the seed's sections (`text`) and a policy file's
//! (`rules`): a row per manifest or tag, its marker (`[keep]`, `DRY_RUN:`, `[deleted]`…), and
//! their rendering in aligned columns.

use std::fmt::Write;

use super::{describe_kind, format_date, ManifestSummary, RepositorySummary, Summary};
use crate::apply::DeletionOutcome;
use crate::model::Reason;

/// One printed line before column alignment.
pub(super) struct Row {
    pub(super) marker: String,
    pub(super) digest: String,
    pub(super) repository: String,
    pub(super) tag: Option<String>,
    pub(super) created: String,
    pub(super) kind: String,
    pub(super) note: Option<String>,
}

pub(super) fn render_rows(out: &mut impl Write, rows: &[Row]) {
    let repository_width = rows.iter().map(|r| r.repository.len()).max().unwrap_or(0);
    let tag_width = rows
        .iter()
        .filter_map(|r| r.tag.as_ref().map(String::len))
        .max()
        .unwrap_or(0);
    let marker_width = rows.iter().map(|r| r.marker.len()).max().unwrap_or(0);
    for row in rows {
        let _ = write!(
            out,
            "  {:<marker_width$} {}  repo={:<repository_width$}  ",
            row.marker, row.digest, row.repository
        );
        if tag_width > 0 {
            let tag = row.tag.as_deref().unwrap_or("-");
            let _ = write!(out, "tag={tag:<tag_width$}  ");
        }
        let _ = write!(out, "created={}  {}", row.created, row.kind);
        if let Some(note) = &row.note {
            let _ = write!(out, "  ({note})");
        }
        let _ = out.write_char('\n');
    }
}

/// Attachment tags carry a 64-digit hex digest; shown whole they would push every other
/// column off the screen. `sha256-1bc04b5291c2…sig`; the JSON report has them whole.
fn display_tag(tag: &str) -> String {
    match crate::model::attachment_target(tag) {
        Some(target) => {
            let suffix = tag.split_once('.').map(|(_, s)| s).unwrap_or("");
            format!("sha256-{}…{suffix}", &target.hex()[..12])
        }
        None => tag.to_string(),
    }
}

pub(super) fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

pub(super) fn row(
    marker: &str,
    repository: &RepositorySummary,
    manifest: &ManifestSummary,
    tag: Option<String>,
    note: Option<String>,
) -> Row {
    Row {
        marker: marker.to_string(),
        digest: manifest.digest.short(),
        repository: repository.name.clone(),
        tag: tag.map(|t| t.split(',').map(display_tag).collect::<Vec<_>>().join(",")),
        created: format_date(manifest.created),
        kind: describe_kind(manifest),
        note,
    }
}

pub(super) fn matching<'a>(
    summary: &'a Summary,
    wanted: impl Fn(&Reason) -> bool + 'a,
) -> impl Iterator<Item = (&'a RepositorySummary, &'a ManifestSummary)> + 'a {
    summary
        .repositories
        .iter()
        .flat_map(|r| r.manifests.iter().map(move |m| (r, m)))
        .filter(move |(_, m)| wanted(&m.reason))
}

/// The hash-tag rank of a decision, for listing hash-tagged manifests newest first.
pub(super) fn hash_rank(reason: &Reason) -> usize {
    match reason {
        Reason::RecentHashTag { rank } | Reason::OldHashTag { rank } => *rank,
        _ => 0,
    }
}

pub(super) fn joined_tags(manifest: &ManifestSummary) -> Option<String> {
    (!manifest.tags.is_empty()).then(|| {
        manifest
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The marker and note of a deletion line: `DRY_RUN:` in a dry run, else what happened.
pub(super) fn deletion_marker(
    summary: &Summary,
    manifest: &ManifestSummary,
) -> (String, Option<String>) {
    if summary.dry_run {
        return ("DRY_RUN:".into(), None);
    }
    match &manifest.outcome {
        Some(DeletionOutcome::Deleted) => ("[deleted]".into(), None),
        Some(DeletionOutcome::AlreadyGone) => ("[deleted]".into(), Some("was already gone".into())),
        Some(DeletionOutcome::DeletedWith { parent }) => (
            "[deleted]".into(),
            Some(format!("by the registry, with {}", parent.short())),
        ),
        Some(DeletionOutcome::SkippedRaced { tags }) => (
            "[skipped]".into(),
            Some(format!("tag `{}` pushed during the run", tags.join("`, `"))),
        ),
        Some(DeletionOutcome::SkippedChanged { change }) => (
            "[skipped]".into(),
            Some(format!("changed since the plan: {change}")),
        ),
        Some(DeletionOutcome::SkippedReferenced { index }) => (
            "[skipped]".into(),
            Some(format!(
                "listed by index {} pushed during the run",
                index.short()
            )),
        ),
        Some(DeletionOutcome::KeptByRegistry { reason }) => (
            "[kept]".into(),
            Some(format!("the registry keeps it: {reason}")),
        ),
        Some(DeletionOutcome::Untagged { tags }) if tags.is_empty() => (
            "[untagged]".into(),
            Some("already untagged: the registry's garbage collection removes it".into()),
        ),
        Some(DeletionOutcome::Untagged { tags }) => (
            "[untagged]".into(),
            Some(format!(
                "tag `{}` deleted: the registry's garbage collection removes the manifest",
                tags.join("`, `")
            )),
        ),
        Some(DeletionOutcome::TagMoved { tag, now, deleted }) => (
            "[skipped]".into(),
            Some(format!(
                "tag `{tag}` now points at {} (pushed during the run): left{}",
                now.short(),
                if deleted.is_empty() {
                    String::new()
                } else {
                    format!("; tag `{}` deleted", deleted.join("`, `"))
                }
            )),
        ),
        Some(DeletionOutcome::Failed { error }) => ("[failed]".into(), Some(error.clone())),
        Some(DeletionOutcome::Held { behind }) => (
            "[not deleted]".into(),
            Some(format!(
                "waits for {}, which was not deleted (see there)",
                behind.short()
            )),
        ),
        Some(DeletionOutcome::Restored { because }) => (
            "[restored]".into(),
            Some(format!(
                "deleted before {}, which stays (see there): put back",
                because.short()
            )),
        ),
        Some(DeletionOutcome::NotAttempted) | None => {
            ("[not deleted]".into(), Some("the run stopped first".into()))
        }
    }
}
