//! untagged: what a registry's own untagged-manifest sweep would break in a plan. Computes only.
//!
//! A registry's garbage collection asked to delete "untagged manifests" (DigitalOcean's
//! `untagged manifests …` types, distribution's `garbage-collect --delete-untagged`, Harbor's
//! `delete_untagged`) deletes every manifest without a tag of its own. On distribution 2.x that
//! includes the platform and attestation children of tagged multi-arch indexes and the OCI 1.1
//! referrers (signatures, SBOMs) of kept images (distribution/distribution#3178). regsweep has
//! already deleted, by digest, exactly the untagged manifests that are safe to delete, so such a
//! sweep can only take what the plan keeps: this module names what that would be.

use std::collections::HashMap;

use crate::model::{Action, Digest, Inventory, Manifest, Plan, Reason, RepositoryName};

/// Whether the registry's garbage collection may delete untagged manifests
/// (`REGSWEEP_GC_INCLUDE_UNTAGGED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UntaggedSweep {
    /// Never (the default): garbage collection collects unreferenced blobs only.
    #[default]
    Off,
    /// Asked for: refused while the plan keeps a manifest without a tag of its own.
    Requested,
    /// Asked for with `force`: run even though it breaks what the plan keeps.
    Forced,
}

/// A kept manifest without a tag of its own, which an untagged sweep would delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endangered {
    /// Its repository.
    pub repository: RepositoryName,
    /// The manifest.
    pub digest: Digest,
    /// Why the plan keeps it (a reason label, or why it is not planned at all).
    pub why: String,
    /// The image that would break: `repository:tag` of the tagged manifest that keeps it
    /// (through index → child and subject → referrer edges), else `repository@digest`.
    pub image: String,
}

/// Every kept manifest of `plan` that has no tag of its own, with the image it belongs to,
/// in plan order (repository, then digest).
pub fn untagged_sweep_breaks(inventory: &Inventory, plan: &Plan) -> Vec<Endangered> {
    let repositories: HashMap<&RepositoryName, _> = inventory
        .repositories
        .iter()
        .map(|r| (&r.name, r))
        .collect();
    let mut endangered = Vec::new();
    // A repository read but not planned (the policy file's `repositories` leaves it out):
    // everything in it stays, and the registry's sweep would take its untagged manifests.
    let planned: std::collections::HashSet<&RepositoryName> =
        plan.repositories.iter().map(|r| &r.name).collect();
    for repository in inventory
        .repositories
        .iter()
        .filter(|r| !planned.contains(&r.name) && plan.unselected.contains(&r.name))
    {
        for manifest in repository.manifests.iter().filter(|m| m.tags.is_empty()) {
            endangered.push(Endangered {
                repository: repository.name.clone(),
                digest: manifest.digest.clone(),
                why: "not selected by the policy's repositories".into(),
                image: format!("{}@{}", repository.name, manifest.digest.short()),
            });
        }
    }
    for repository_plan in &plan.repositories {
        let Some(repository) = repositories.get(&repository_plan.name) else {
            continue;
        };
        let decided: HashMap<&Digest, (&Manifest, &Reason)> = repository
            .manifests
            .iter()
            .zip(&repository_plan.decisions)
            .map(|(manifest, decision)| (&manifest.digest, (manifest, &decision.reason)))
            .collect();
        for (manifest, decision) in repository.manifests.iter().zip(&repository_plan.decisions) {
            if decision.action != Action::Keep || !manifest.tags.is_empty() {
                continue;
            }
            endangered.push(Endangered {
                repository: repository.name.clone(),
                digest: manifest.digest.clone(),
                why: decision.reason.label().to_string(),
                image: image_of(&repository.name, &manifest.digest, &decided),
            });
        }
    }
    endangered
}

/// The tagged manifest that keeps `digest`, followed through the reasons that name what keeps
/// a manifest (its index, its subject); bounded by the repository's size.
fn image_of(
    repository: &RepositoryName,
    digest: &Digest,
    decided: &HashMap<&Digest, (&Manifest, &Reason)>,
) -> String {
    let mut current = digest;
    for _ in 0..=decided.len() {
        let Some((manifest, reason)) = decided.get(current) else {
            break;
        };
        if let Some(tag) = manifest.tags.iter().min() {
            return format!("{repository}:{tag}");
        }
        current = match reason {
            Reason::ChildOfKeptIndex { index } => index,
            Reason::ReferrerOfKept { subject } => subject,
            _ => break,
        };
    }
    format!("{repository}@{}", digest.short())
}

/// The one-line refusal of an untagged sweep that would break `endangered` (not empty).
pub fn refusal(endangered: &[Endangered], input: &str) -> String {
    let first = &endangered[0];
    let others = match endangered.len() - 1 {
        0 => String::new(),
        1 => " and 1 other kept manifest".to_string(),
        n => format!(" and {n} other kept manifests"),
    };
    format!(
        "refusing {input}=true: the registry's untagged sweep would break `{}` (it deletes \
         `{}`, kept as {}){others} without a tag of its own; leave it off (regsweep already \
         deleted what is safe to delete) or set {input}=force",
        first.image,
        first.digest.short(),
        first.why
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChildReference, Manifest, ManifestKind, Repository};
    use crate::plan::{plan, Policy};

    fn d(name: &str) -> Digest {
        Digest::sha256_of(name.as_bytes())
    }

    fn inventory() -> Inventory {
        let mut child = Manifest::new(d("amd64"), ManifestKind::Image);
        child.created = Some(chrono::Utc::now());
        let mut index = Manifest::new(d("index"), ManifestKind::Index);
        index.tags = vec!["1.0".into(), "latest".into()];
        index.children = vec![ChildReference {
            digest: d("amd64"),
            platform: None,
        }];
        let mut sbom = Manifest::new(d("sbom"), ManifestKind::Artifact);
        sbom.subject = Some(d("amd64"));
        let leftover = Manifest::new(d("leftover"), ManifestKind::Image);
        let mut plain = Manifest::new(d("plain"), ManifestKind::Image);
        plain.tags = vec!["v2".into()];
        let mut manifests = vec![child, index, sbom, leftover, plain];
        manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        Inventory {
            repositories: vec![Repository {
                name: "team/app".parse().unwrap(),
                manifests,
                problems: vec![],
                notes: vec![],
            }],
        }
    }

    #[test]
    fn kept_children_and_referrers_name_their_tagged_image() {
        let inventory = inventory();
        let plan = plan(&inventory, &Policy::default(), chrono::Utc::now());
        let endangered = untagged_sweep_breaks(&inventory, &plan);
        let found: Vec<(Digest, &str)> = endangered
            .iter()
            .map(|e| (e.digest.clone(), e.image.as_str()))
            .collect();
        // The child of the tagged index, and the SBOM of that child (through the child to
        // the index); the untagged leftover is deleted, the tagged manifests have tags.
        let mut expected = vec![(d("amd64"), "team/app:1.0"), (d("sbom"), "team/app:1.0")];
        expected.sort();
        let mut found = found;
        found.sort();
        assert_eq!(found, expected);
        let line = refusal(&endangered, "REGSWEEP_GC_INCLUDE_UNTAGGED");
        assert_eq!(line.lines().count(), 1);
        assert!(line.contains("`team/app:1.0`"), "{line}");
        assert!(line.contains("and 1 other kept manifest "), "{line}");
        assert!(
            line.contains("REGSWEEP_GC_INCLUDE_UNTAGGED=force"),
            "{line}"
        );
    }

    #[test]
    fn nothing_kept_untagged_endangers_nothing() {
        let mut plain = Manifest::new(d("plain"), ManifestKind::Image);
        plain.tags = vec!["v2".into()];
        let inventory = Inventory {
            repositories: vec![Repository {
                name: "app".parse().unwrap(),
                manifests: vec![plain, Manifest::new(d("gone"), ManifestKind::Image)],
                problems: vec![],
                notes: vec![],
            }],
        };
        let plan = plan(&inventory, &Policy::default(), chrono::Utc::now());
        assert!(untagged_sweep_breaks(&inventory, &plan).is_empty());
    }

    #[test]
    fn a_young_untagged_manifest_is_named_by_its_digest() {
        let mut young = Manifest::new(d("young"), ManifestKind::Image);
        young.created = Some(chrono::Utc::now());
        let inventory = Inventory {
            repositories: vec![Repository {
                name: "app".parse().unwrap(),
                manifests: vec![young],
                problems: vec![],
                notes: vec![],
            }],
        };
        let policy = Policy {
            min_age: chrono::Duration::hours(1),
            ..Policy::default()
        };
        let plan = plan(&inventory, &policy, chrono::Utc::now());
        let endangered = untagged_sweep_breaks(&inventory, &plan);
        assert_eq!(endangered.len(), 1);
        assert_eq!(endangered[0].image, format!("app@{}", d("young").short()));
    }
}
