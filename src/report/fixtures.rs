//! A small registry as the report tests see it: a multi-arch image with a signature, hash
//! tags, untagged leftovers, and a repository that could not be read.

use chrono::{TimeZone, Utc};

use super::{summarize, RunContext, Summary};
use crate::apply::{Applied, DeletionOutcome};
use crate::model::{
    BlobReference, ChildReference, Digest, Inventory, Manifest, ManifestKind, Platform, Repository,
};
use crate::plan::{plan, Policy};

/// Bytes the dry-run fixture frees: h2 (400 + 100 + 8000), u (400 + 100 + 16000),
/// u2 (400 + 100 + 32000); `shared-layer` stays because kept images use it.
pub const EXPECTED_RECLAIMABLE: u64 = 8500 + 16500 + 32500;

fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn blob(name: &str, size: u64) -> BlobReference {
    BlobReference {
        digest: d(name),
        size,
    }
}

fn image(
    name: &str,
    created: (i32, u32, u32, u32, u32, u32),
    arch: &str,
    tags: &[&str],
    layers: &[(&str, u64)],
) -> Manifest {
    let mut m = Manifest::new(d(name), ManifestKind::Image);
    m.media_type = crate::manifest::OCI_MANIFEST.into();
    let (y, mo, da, h, mi, s) = created;
    m.created = Some(Utc.with_ymd_and_hms(y, mo, da, h, mi, s).unwrap());
    m.platform = Some(std::sync::Arc::new(Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    }));
    m.tags = tags.iter().map(|t| t.to_string()).collect();
    m.size = if tags.is_empty() && name.starts_with("amd") {
        500
    } else {
        400
    };
    m.blobs = std::iter::once(blob(&format!("config-{name}"), 100))
        .chain(layers.iter().map(|(n, s)| blob(n, *s)))
        .collect();
    m
}

/// The fixture inventory.
pub fn inventory() -> Inventory {
    let amd64 = image(
        "amd64",
        (2026, 2, 17, 10, 23, 39),
        "amd64",
        &[],
        &[("shared-layer", 1000), ("amd64-layer", 2000)],
    );
    let arm64 = image(
        "arm64",
        (2026, 2, 17, 10, 23, 39),
        "arm64",
        &[],
        &[("shared-layer", 1000), ("arm64-layer", 2000)],
    );
    let mut index = Manifest::new(d("index"), ManifestKind::Index);
    index.media_type = crate::manifest::OCI_INDEX.into();
    index.tags = vec!["3.16".into(), "latest".into()];
    index.size = 300;
    index.children = [("amd64", "amd64"), ("arm64", "arm64")]
        .iter()
        .map(|(n, arch)| ChildReference {
            digest: d(n),
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.to_string(),
                variant: None,
            }),
        })
        .collect();
    let h1 = image(
        "h1",
        (2025, 12, 1, 8, 15, 44),
        "amd64",
        &["3f33a785"],
        &[("shared-layer", 1000), ("h1-layer", 4000)],
    );
    let h2 = image(
        "h2",
        (2023, 4, 3, 11, 24, 28),
        "amd64",
        &["2e8f2a86"],
        &[("shared-layer", 1000), ("h2-layer", 8000)],
    );
    let u = image(
        "u",
        (2023, 9, 12, 10, 5, 33),
        "amd64",
        &[],
        &[("u-layer", 16000)],
    );
    let u2 = image(
        "u2",
        (2023, 9, 13, 10, 5, 33),
        "amd64",
        &[],
        &[("u2-layer", 32000)],
    );
    let mut signature = Manifest::new(d("signature"), ManifestKind::Artifact);
    signature.media_type = crate::manifest::OCI_MANIFEST.into();
    signature.artifact_type = Some("application/vnd.dev.cosign.simplesigning.v1+json".into());
    signature.tags = vec![format!("sha256-{}.sig", d("index").hex())];
    signature.size = 200;
    signature.blobs = vec![blob("sig-layer", 50)];
    let mut manifests = vec![amd64, arm64, index, h1, h2, u, u2, signature];
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));

    let mut unreadable = image("t", (2024, 1, 1, 0, 0, 0), "amd64", &[], &[]);
    unreadable.tags = vec![];
    Inventory {
        repositories: vec![
            Repository {
                name: "myapp".parse().unwrap(),
                manifests,
                problems: vec![],
                notes: vec![format!(
                    "manifest `{}`: its config has no `created`; ranked by the time it was pushed",
                    d("signature")
                )],
            },
            Repository {
                name: "other/tool".parse().unwrap(),
                manifests: vec![unreadable],
                problems: vec![format!(
                    "manifest `{}`: manifest is not valid JSON: expected value at line 1 column 1",
                    d("broken")
                )],
                notes: vec![],
            },
        ],
    }
}

/// The fixture's summary, as a dry run or after a real run in which `u2` was raced.
pub fn summary(dry_run: bool) -> Summary {
    let inventory = inventory();
    let policy = Policy {
        hash_tag_keep: 1,
        ..Policy::default()
    };
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let plan = plan(&inventory, &policy, now);
    let applied = (!dry_run).then(|| {
        let mut applied = Applied::default();
        let repo = || "myapp".parse().unwrap();
        applied
            .outcomes
            .insert((repo(), d("h2")), DeletionOutcome::Deleted);
        applied
            .outcomes
            .insert((repo(), d("u")), DeletionOutcome::Deleted);
        applied.outcomes.insert(
            (repo(), d("u2")),
            DeletionOutcome::SkippedRaced {
                tags: vec!["hotfix".into()],
            },
        );
        applied
    });
    let context = RunContext {
        registry: "http://registry.example:5000",
        storage: "/registry",
        dry_run,
    };
    let mut summary = summarize(inventory, &plan, &policy, applied.as_ref(), &context);
    summary.garbage_collection = Some(crate::providers::distribution::self_hosted_gc_advice(
        "/etc/docker/registry/config.yml",
    ));
    summary
}
