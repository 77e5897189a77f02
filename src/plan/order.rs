//! order: the deletion order for a registry that deletes a subject together with its
//! accessories and an index together with its untagged children (Harbor): parents before
//! children, subjects before their referrers and attachments. Computes only.
//!
//! The planner's own order (referrers and attachments first, then indexes, then images) suits
//! every registry, since a run stopped half-way never leaves a kept index without a child.
//! Harbor deletes the children and hard accessories of what it deletes in one transaction, and
//! answers 412 to deleting a child an index still lists, so there the parent goes first and
//! what it took along answers 404 (done).

use std::collections::{BTreeSet, HashMap};

use crate::model::attachment_target;
use crate::model::{Digest, Repository, RepositoryPlan};

/// The links between the manifests in `doomed`, as (parent, dependent) pairs: an index and
/// a child it lists, a subject and a referrer or attachment (by `subject` or by attachment
/// tag) of it. Both orders of deletion follow these links, in one direction or the other.
pub fn links<'a>(
    repository: &'a Repository,
    doomed: &BTreeSet<&'a Digest>,
) -> Vec<(&'a Digest, &'a Digest)> {
    let mut links = Vec::new();
    for manifest in repository
        .manifests
        .iter()
        .filter(|m| doomed.contains(&m.digest))
    {
        for child in &manifest.children {
            if let Some(child) = doomed.get(&child.digest) {
                links.push((&manifest.digest, *child));
            }
        }
        let parents = manifest
            .subject
            .iter()
            .cloned()
            .chain(manifest.tags.iter().filter_map(|t| attachment_target(t)));
        for parent in parents {
            if let Some(parent) = doomed.get(&parent) {
                links.push((*parent, &manifest.digest));
            }
        }
    }
    links
}

/// The deletions of `plan` (for `repository`) in batches: each manifest after every deleted
/// manifest that lists it as a child, is its `subject`, or is named by its attachment tag.
/// A cycle (only attachment tags can make one) ends in one last batch.
pub fn subjects_first(repository: &Repository, plan: &RepositoryPlan) -> Vec<Vec<Digest>> {
    // The batches, not the decisions: applying a reviewed plan drops from its batches what
    // changed since, and that must stay dropped.
    let doomed: BTreeSet<&Digest> = plan.deletion_batches.iter().flatten().collect();
    // For each doomed manifest: the doomed manifests that must go before it.
    let mut before: HashMap<&Digest, BTreeSet<&Digest>> =
        doomed.iter().map(|d| (*d, BTreeSet::new())).collect();
    for (parent, dependent) in links(repository, &doomed) {
        before
            .get_mut(dependent)
            .expect("every doomed manifest has an entry")
            .insert(parent);
    }
    let mut batches = Vec::new();
    let mut done: BTreeSet<&Digest> = BTreeSet::new();
    while done.len() < doomed.len() {
        let mut ready: Vec<Digest> = doomed
            .iter()
            .filter(|d| !done.contains(*d) && before[*d].iter().all(|p| done.contains(p)))
            .map(|d| (*d).clone())
            .collect();
        if ready.is_empty() {
            ready = doomed
                .iter()
                .filter(|d| !done.contains(*d))
                .map(|d| (*d).clone())
                .collect();
        }
        for digest in &ready {
            done.insert(doomed.get(digest).expect("ready digests are doomed"));
        }
        batches.push(ready);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChildReference, Inventory, Manifest, ManifestKind};
    use crate::plan::{plan, Policy};

    fn d(name: &str) -> Digest {
        Digest::sha256_of(name.as_bytes())
    }

    #[test]
    fn parents_and_subjects_go_before_what_they_take_along() {
        // An untagged index of two images, a referrer of the index, a signature of one image,
        // and a nested index: all deleted (nothing tagged keeps them).
        let mut index = Manifest::new(d("index"), ManifestKind::Index);
        index.children = vec![
            ChildReference {
                digest: d("amd64"),
                platform: None,
            },
            ChildReference {
                digest: d("inner"),
                platform: None,
            },
        ];
        let mut inner = Manifest::new(d("inner"), ManifestKind::Index);
        inner.children = vec![ChildReference {
            digest: d("arm64"),
            platform: None,
        }];
        let mut sbom = Manifest::new(d("sbom"), ManifestKind::Artifact);
        sbom.subject = Some(d("index"));
        let mut signature = Manifest::new(d("signature"), ManifestKind::Image);
        signature.tags = vec![format!("sha256-{}.sig", d("amd64").hex())];
        let mut manifests = vec![
            index,
            inner,
            sbom,
            signature,
            Manifest::new(d("amd64"), ManifestKind::Image),
            Manifest::new(d("arm64"), ManifestKind::Image),
        ];
        manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        let inventory = Inventory {
            repositories: vec![Repository {
                name: "app".parse().unwrap(),
                manifests,
                problems: vec![],
                notes: vec![],
            }],
        };
        let plan = plan(&inventory, &Policy::default(), chrono::Utc::now());
        assert_eq!(plan.deletion_count(), 6);
        let batches = subjects_first(&inventory.repositories[0], &plan.repositories[0]);
        let position = |name: &str| {
            batches
                .iter()
                .position(|b| b.contains(&d(name)))
                .unwrap_or_else(|| panic!("{name} not planned"))
        };
        assert_eq!(position("index"), 0);
        assert!(position("inner") > position("index"));
        assert!(position("arm64") > position("inner"));
        assert!(position("amd64") > position("index"));
        assert!(position("sbom") > position("index"));
        assert!(position("signature") > position("amd64"));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 6);

        // Applying a reviewed plan that dropped the SBOM (it changed since): it stays dropped.
        let mut reviewed = plan.repositories[0].clone();
        for batch in &mut reviewed.deletion_batches {
            batch.retain(|digest| *digest != d("sbom"));
        }
        let batches = subjects_first(&inventory.repositories[0], &reviewed);
        assert!(batches.iter().flatten().all(|digest| *digest != d("sbom")));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 5);
    }
}
