//! words: how reports say things: sizes, dates, reasons, kinds of manifest. Wording only.

use chrono::{DateTime, Utc};

use super::ManifestSummary;
use crate::model::{ManifestKind, Reason};

/// `1.5 MiB`, `312 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A human description of a reason label (`child_of_kept_index` → `child of a kept index`).
pub fn reason_label_text(label: &str) -> &'static str {
    match label {
        "version_tag" => "version tag",
        "recent_hash_tag" => "recent hash tag",
        "too_young" => "younger than the minimum age",
        "attachment_target_missing" => "attachment without its target",
        "child_of_kept_index" => "child of a kept index",
        "referrer_of_kept" => "referrer of a kept manifest",
        "attachment_of_kept" => "attachment of a kept manifest",
        "discovery_incomplete" => "repository not fully readable",
        "takes_kept_along" => "the registry would delete a kept manifest with it",
        "tag_kept" => "tag kept by the policy",
        "untagged_kept" => "untagged, kept by the policy",
        "tags_removed" => "every tag removed by the policy",
        "untagged" => "untagged",
        "old_hash_tag" => "old hash tag",
        "child_of_deleted_index" => "child of a deleted index",
        "referrer_of_deleted" => "referrer of a deleted manifest",
        "attachment_of_deleted" => "attachment of a deleted manifest",
        _ => "other",
    }
}

/// The reason as a short sentence for one manifest (`child of sha256:1234…`).
pub fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::VersionTag => "version tag".into(),
        Reason::RecentHashTag { rank } => format!("hash tag, #{rank} newest"),
        Reason::TooYoung => "younger than the minimum age".into(),
        Reason::AttachmentTargetMissing { target } => {
            format!(
                "attached to {}, which is not in the repository",
                target.short()
            )
        }
        Reason::ChildOfKeptIndex { index } => format!("child of kept index {}", index.short()),
        Reason::ReferrerOfKept { subject } => format!("referrer of kept {}", subject.short()),
        Reason::AttachmentOfKept { target } => format!("attached to kept {}", target.short()),
        Reason::DiscoveryIncomplete => "repository not fully readable".into(),
        Reason::TagKept {
            tag,
            rule: Some(rule),
        } => format!("tag `{tag}` kept by \"{rule}\""),
        Reason::TagKept { tag, rule: None } => format!("tag `{tag}`: no rule selects it"),
        Reason::UntaggedKept => "untagged: the policy keeps untagged manifests".into(),
        Reason::TagsRemoved => "every tag removed by the policy's rules".into(),
        Reason::TakesKeptAlong { kept } => {
            format!("the registry would delete kept {} with it", kept.short())
        }
        Reason::Untagged => "untagged".into(),
        Reason::OldHashTag { rank } => format!("hash tag, #{rank} newest"),
        Reason::ChildOfDeletedIndex { index } => {
            format!("child of deleted index {}", index.short())
        }
        Reason::ReferrerOfDeleted { subject } => format!("referrer of deleted {}", subject.short()),
        Reason::AttachmentOfDeleted { target } => {
            format!("attached to deleted {}", target.short())
        }
    }
}

/// `linux/amd64`, `index [linux/amd64, linux/arm64]`, `artifact application/…`.
pub fn describe_kind(manifest: &ManifestSummary) -> String {
    match manifest.kind {
        ManifestKind::Index if manifest.platforms.is_empty() => {
            let count = manifest.children;
            format!(
                "index [{count} manifest{}]",
                if count == 1 { "" } else { "s" }
            )
        }
        ManifestKind::Index => format!("index [{}]", manifest.platforms.join(", ")),
        ManifestKind::Artifact => format!(
            "artifact {}",
            manifest
                .artifact_type
                .as_deref()
                .unwrap_or("(unknown type)")
        ),
        ManifestKind::Image => manifest.platform.clone().unwrap_or_else(|| "image".into()),
    }
}

/// `2026-02-17 10:23:39`, or `unknown`.
pub fn format_date(date: Option<DateTime<Utc>>) -> String {
    date.map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "unknown".into())
}
