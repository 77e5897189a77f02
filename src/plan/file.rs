//! file: a plan written to review, then applied exactly: what it was made for (registry,
//! provider, policy, when), what it saw (the inventory), what it decided (every decision with
//! its reason), and a content hash that a truncated or edited file fails. Checking a plan
//! against the registry as it is now is pure: a manifest whose tags changed since the plan
//! (a new tag, a tag re-pointed elsewhere) is not deleted. No I/O here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::model::attachment_target;
use crate::model::{Digest, Inventory, Plan, RepositoryName, Tag};

/// The format's name and version, first in every plan file.
pub const FORMAT: &str = "regsweep-plan/1";

/// The policy a plan was made with, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPolicy {
    /// `HASH_TAG_PATTERN`.
    pub hash_tag_pattern: String,
    /// `HASH_TAG_KEEP`.
    pub hash_tag_keep: usize,
    /// `REGSWEEP_MIN_AGE`, in seconds.
    pub min_age_seconds: i64,
    /// `REPO_FILTER` and `REGSWEEP_REPOSITORIES`.
    pub repositories: Vec<RepositoryName>,
    /// The policy file (`REGSWEEP_POLICY`) the plan was made with: its path and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PlannedPolicyFile>,
}

/// A policy file as a plan file carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPolicyFile {
    /// The path as given (or `REGSWEEP_POLICY (inline)`).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// Everything the hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBody {
    /// [`FORMAT`].
    pub format: String,
    /// When the plan was made.
    pub created_at: DateTime<Utc>,
    /// The regsweep that made it.
    pub regsweep_version: String,
    /// The registry's URL, without credentials.
    pub registry: String,
    /// `distribution`, `digitalocean`, `ghcr`, `gitlab` or `harbor`.
    pub provider: String,
    /// Where manifests were discovered.
    pub source: String,
    /// The policy that shaped it.
    pub policy: PlannedPolicy,
    /// What the registry held: every manifest with its tags, children, subject and dates.
    pub inventory: Inventory,
    /// Every decision with its reason, and the deletions in order.
    pub plan: Plan,
}

/// A plan file: its body and the body's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    /// What the hash covers.
    #[serde(flatten)]
    pub body: PlanBody,
    /// `sha256:<hex>` of the body as written.
    pub hash: String,
}

/// Why a plan file is refused. Each is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFileError {
    /// Not JSON, not a plan, or cut short.
    #[error("`{path}` is not a regsweep plan (truncated or not one): {detail}")]
    Unreadable {
        /// The file.
        path: String,
        /// The parser's words.
        detail: String,
    },
    /// The content does not match its hash.
    #[error(
        "`{path}` was changed since it was written: its content does not match its hash {hash}"
    )]
    Edited {
        /// The file.
        path: String,
        /// The hash it carries.
        hash: String,
    },
    /// Made for another registry or provider.
    #[error("`{path}` is a plan for {planned}, not {now}: refusing to apply it here")]
    Foreign {
        /// The file.
        path: String,
        /// `registry `…` through provider `…``, as planned.
        planned: String,
        /// The same, for this run.
        now: String,
    },
    /// Older than `REGSWEEP_PLAN_MAX_AGE`.
    #[error(
        "`{path}` was made {age} ago, more than REGSWEEP_PLAN_MAX_AGE ({max}): plan again \
         (`regsweep plan`) and review the new plan"
    )]
    Stale {
        /// The file.
        path: String,
        /// Its age, as a person reads it.
        age: String,
        /// The limit.
        max: String,
    },
}

/// `sha256:<hex>` of `body` as serialized.
pub fn hash_of(body: &PlanBody) -> String {
    let bytes = serde_json::to_vec(body).expect("a plan body always serializes");
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl PlanFile {
    /// A plan file for `body`, hashed.
    pub fn new(body: PlanBody) -> PlanFile {
        let hash = hash_of(&body);
        PlanFile { body, hash }
    }

    /// The file's text: pretty JSON and a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan always serializes");
        text.push('\n');
        text
    }

    /// Reads a plan file's text (`path` names it in errors), checking its hash.
    pub fn from_json(text: &str, path: &str) -> Result<PlanFile, PlanFileError> {
        let file: PlanFile = serde_json::from_str(text).map_err(|e| PlanFileError::Unreadable {
            path: path.to_string(),
            detail: e.to_string(),
        })?;
        if file.body.format != FORMAT {
            return Err(PlanFileError::Unreadable {
                path: path.to_string(),
                detail: format!("format `{}`, not `{FORMAT}`", file.body.format),
            });
        }
        if hash_of(&file.body) != file.hash {
            return Err(PlanFileError::Edited {
                path: path.to_string(),
                hash: file.hash,
            });
        }
        Ok(file)
    }

    /// Refuses a plan made for another registry or provider, or older than `max_age` at
    /// `now`.
    pub fn check(
        &self,
        path: &str,
        registry: &str,
        provider: &str,
        now: DateTime<Utc>,
        max_age: std::time::Duration,
    ) -> Result<(), PlanFileError> {
        let body = &self.body;
        if body.registry != registry || body.provider != provider {
            return Err(PlanFileError::Foreign {
                path: path.to_string(),
                planned: format!(
                    "registry `{}` through provider `{}`",
                    body.registry, body.provider
                ),
                now: format!("registry `{registry}` through provider `{provider}`"),
            });
        }
        let age = now
            .signed_duration_since(body.created_at)
            .to_std()
            .unwrap_or_default();
        if age > max_age {
            return Err(PlanFileError::Stale {
                path: path.to_string(),
                age: humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
                    .to_string(),
                max: humantime::format_duration(max_age).to_string(),
            });
        }
        Ok(())
    }
}

/// A planned deletion that is not carried out because the manifest changed since the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Its repository.
    pub repository: RepositoryName,
    /// The manifest.
    pub digest: Digest,
    /// What changed, in words (`tag \`v2\` was pushed onto it`).
    pub change: String,
}

/// The plan restricted to what may still be deleted given what the registry holds now
/// (`current`): a deletion whose manifest is still there with exactly the tags it had when
/// planned stays; one whose tags changed (a tag added, or moved away), that a manifest
/// the plan keeps or never saw now refers to (an index listing it, a referrer of it), or
/// that belongs to (as a referrer or attachment of) a manifest no longer deleted, is dropped
/// and returned as changed, round after round, so that whole chains stay together. A manifest gone since is left in (its delete answers 404:
/// done).
pub fn still_valid(file: &PlanFile, current: &Inventory) -> (Plan, Vec<Changed>) {
    let planned = &file.body.inventory;
    let mut plan = file.body.plan.clone();
    let mut changed = Vec::new();
    for repository_plan in &mut plan.repositories {
        let tags_then = |digest: &Digest| -> Vec<Tag> {
            planned
                .repositories
                .iter()
                .find(|r| r.name == repository_plan.name)
                .and_then(|r| r.manifests.iter().find(|m| &m.digest == digest))
                .map(|m| m.tags.clone())
                .unwrap_or_default()
        };
        let now = current
            .repositories
            .iter()
            .find(|r| r.name == repository_plan.name);
        // Until nothing more is dropped: a dropped deletion stays, so what it lists or is
        // attached to must stay too (bounded: each round drops one more, or ends).
        let mut dropped: Vec<Digest> = Vec::new();
        loop {
            let deleting: Vec<&Digest> = repository_plan
                .deletions()
                .filter(|d| !dropped.contains(d))
                .collect();
            let mut more = Vec::new();
            for digest in &deleting {
                let Some(manifest) =
                    now.and_then(|r| r.manifests.iter().find(|m| m.digest == **digest))
                else {
                    continue;
                };
                let mut then = tags_then(digest);
                let mut tags_now = manifest.tags.clone();
                then.sort();
                tags_now.sort();
                // Pushed since the plan and not deleted by it: an index listing this manifest,
                // or a referrer naming it as its subject. Deleting it would break that image.
                let referrers: Vec<&Digest> = now
                    .map(|r| r.manifests.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .filter(|m| !deleting.contains(&&m.digest))
                    .filter(|m| {
                        m.children.iter().any(|c| &c.digest == *digest)
                            || m.subject.as_ref() == Some(*digest)
                    })
                    .map(|m| &m.digest)
                    .collect();
                // What it belongs to (its `subject`, or what its attachment tag names), when
                // that is still there and no longer deleted: a signature or SBOM of an image
                // that stays stays with it, and so does a signature of that SBOM (the rounds
                // follow the chain).
                let in_repository =
                    |d: &Digest| now.is_some_and(|r| r.manifests.iter().any(|m| &m.digest == d));
                let belongs_to: Vec<Digest> = manifest
                    .subject
                    .iter()
                    .cloned()
                    .chain(manifest.tags.iter().filter_map(|t| attachment_target(t)))
                    .filter(|d| d != *digest && !deleting.contains(&d) && in_repository(d))
                    .collect();
                if then == tags_now && referrers.is_empty() && belongs_to.is_empty() {
                    continue;
                }
                let added: Vec<&Tag> = tags_now.iter().filter(|t| !then.contains(t)).collect();
                let moved: Vec<&Tag> = then.iter().filter(|t| !tags_now.contains(t)).collect();
                // `a`, `b`: how each kind of change lists its names.
                let listed = |names: Vec<&str>| names.join("`, `");
                let mut words = Vec::new();
                if !referrers.is_empty() {
                    let names = referrers.iter().map(|d| d.as_str()).collect();
                    words.push(format!("`{}` now refers to it", listed(names)));
                }
                if !belongs_to.is_empty() {
                    let names = belongs_to.iter().map(|d| d.as_str()).collect();
                    words.push(format!("`{}`, which it belongs to, stays", listed(names)));
                }
                if !added.is_empty() {
                    let names = added.iter().map(|t| t.as_str()).collect();
                    words.push(format!("tag `{}` was pushed onto it", listed(names)));
                }
                if !moved.is_empty() {
                    let names = moved.iter().map(|t| t.as_str()).collect();
                    words.push(format!("tag `{}` now points elsewhere", listed(names)));
                }
                changed.push(Changed {
                    repository: repository_plan.name.clone(),
                    digest: (*digest).clone(),
                    change: words.join("; "),
                });
                more.push((*digest).clone());
            }
            if more.is_empty() {
                break;
            }
            dropped.extend(more);
        }
        for batch in &mut repository_plan.deletion_batches {
            batch.retain(|d| !dropped.contains(d));
        }
        repository_plan.deletion_batches.retain(|b| !b.is_empty());
    }
    (plan, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Manifest, ManifestKind, Repository};
    use crate::plan::{plan, Policy};

    fn d(name: &str) -> Digest {
        Digest::sha256_of(name.as_bytes())
    }

    #[test]
    fn what_a_dropped_deletion_lists_is_dropped_with_it() {
        // Planned: an untagged index and its child deleted, with an old hash tag.
        let with_index = |index_tags: &[&str]| {
            let mut inventory = inventory(&[
                ("old", &["aaaaaaa"]),
                ("new", &["bbbbbbb"]),
                ("child", &[]),
                ("index", index_tags),
            ]);
            for manifest in &mut inventory.repositories[0].manifests {
                if manifest.digest == d("index") {
                    manifest.kind = ManifestKind::Index;
                    manifest.children = vec![crate::model::ChildReference {
                        digest: d("child"),
                        platform: None,
                    }];
                }
            }
            inventory
        };
        let planned = file(with_index(&[]));
        assert_eq!(planned.body.plan.deletion_count(), 3);
        // Now the index is tagged: it stays, and so must the child it lists.
        let (plan, changed) = still_valid(&planned, &with_index(&["multi"]));
        let left: Vec<&Digest> = plan.repositories[0]
            .deletion_batches
            .iter()
            .flatten()
            .collect();
        assert_eq!(left, vec![&d("old")]);
        let words: Vec<(Digest, String)> =
            changed.into_iter().map(|c| (c.digest, c.change)).collect();
        assert!(words.contains(&(d("index"), "tag `multi` was pushed onto it".into())));
        assert!(words.contains(&(d("child"), format!("`{}` now refers to it", d("index")))));
    }

    #[test]
    fn a_dropped_deletion_keeps_its_referrer_chain() {
        // Planned: `old` (a hash tag beyond the newest), its SBOM (subject `old`) and the
        // SBOM's signature (subject the SBOM), all deleted.
        let with_chain = |old_tags: &[&str]| {
            let mut inventory = inventory(&[("old", old_tags), ("new", &["bbbbbbb"])]);
            let mut sbom = Manifest::new(d("sbom"), ManifestKind::Artifact);
            sbom.subject = Some(d("old"));
            let mut signature = Manifest::new(d("sbom signature"), ManifestKind::Artifact);
            signature.subject = Some(d("sbom"));
            let manifests = &mut inventory.repositories[0].manifests;
            manifests.extend([sbom, signature]);
            manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
            inventory
        };
        let planned = file(with_chain(&["aaaaaaa"]));
        assert_eq!(planned.body.plan.deletion_count(), 3);
        // `old` gains a tag: it stays, and so do its SBOM and the SBOM's signature.
        let (plan, changed) = still_valid(&planned, &with_chain(&["aaaaaaa", "pinned"]));
        assert_eq!(
            plan.repositories[0]
                .deletion_batches
                .iter()
                .flatten()
                .count(),
            0,
            "{changed:?}"
        );
        let words: Vec<(Digest, String)> =
            changed.into_iter().map(|c| (c.digest, c.change)).collect();
        assert!(words.contains(&(
            d("sbom signature"),
            format!("`{}`, which it belongs to, stays", d("sbom"))
        )));
    }

    fn inventory(tags: &[(&str, &[&str])]) -> Inventory {
        let mut manifests: Vec<Manifest> = tags
            .iter()
            .enumerate()
            .map(|(i, (name, tags))| {
                let mut manifest = Manifest::new(d(name), ManifestKind::Image);
                manifest.tags = tags.iter().map(|t| t.to_string()).collect();
                manifest.created = Some(chrono::Utc::now() - chrono::Duration::days(10 - i as i64));
                manifest
            })
            .collect();
        manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
        Inventory {
            repositories: vec![Repository {
                name: "app".parse().unwrap(),
                manifests,
                problems: vec![],
                notes: vec![],
            }],
        }
    }

    fn file(inventory: Inventory) -> PlanFile {
        let policy = Policy {
            hash_tag_keep: 1,
            ..Policy::default()
        };
        let plan = plan(&inventory, &policy, chrono::Utc::now());
        PlanFile::new(PlanBody {
            format: FORMAT.into(),
            created_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            regsweep_version: "0.1.0".into(),
            registry: "https://r.example".into(),
            provider: "distribution".into(),
            source: "/srv/registry".into(),
            policy: PlannedPolicy {
                hash_tag_pattern: policy.hash_tag_pattern.to_string(),
                hash_tag_keep: 1,
                min_age_seconds: 0,
                repositories: vec![],
                file: None,
            },
            inventory,
            plan,
        })
    }

    #[test]
    fn a_plan_reads_back_and_refuses_an_edit_a_cut_a_foreign_registry_and_age() {
        let planned = file(inventory(&[("old", &["aaaaaaa"]), ("new", &["bbbbbbb"])]));
        let text = planned.to_json();
        assert_eq!(PlanFile::from_json(&text, "p.json").unwrap(), planned);
        let edited = text.replace("aaaaaaa", "ccccccc");
        assert!(matches!(
            PlanFile::from_json(&edited, "p.json"),
            Err(PlanFileError::Edited { .. })
        ));
        let cut = &text[..text.len() / 2];
        let error = PlanFile::from_json(cut, "p.json").unwrap_err();
        assert!(matches!(error, PlanFileError::Unreadable { .. }));
        assert_eq!(error.to_string().lines().count(), 1);
        let now: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let week = std::time::Duration::from_secs(7 * 24 * 3600);
        assert_eq!(
            planned.check("p.json", "https://r.example", "distribution", now, week),
            Ok(())
        );
        let foreign = planned
            .check("p.json", "https://other.example", "distribution", now, week)
            .unwrap_err()
            .to_string();
        assert!(foreign.contains("registry `https://r.example` through provider `distribution`"));
        let stale = planned
            .check(
                "p.json",
                "https://r.example",
                "distribution",
                now,
                std::time::Duration::from_secs(3600),
            )
            .unwrap_err()
            .to_string();
        assert!(
            stale.contains("made 1day ago") && stale.contains("REGSWEEP_PLAN_MAX_AGE"),
            "{stale}"
        );
    }

    #[test]
    fn a_deletion_whose_tags_changed_is_dropped_and_said_so() {
        // Planned: `old` (aaaaaaa) and `older` (ddddddd) deleted, `new` kept.
        let planned = file(inventory(&[
            ("older", &["ddddddd"]),
            ("old", &["aaaaaaa"]),
            ("new", &["bbbbbbb"]),
        ]));
        assert_eq!(planned.body.plan.deletion_count(), 2);
        // Now: `latest` pushed onto `old`; `ddddddd` moved to `new`.
        let now = inventory(&[
            ("older", &[]),
            ("old", &["aaaaaaa", "latest"]),
            ("new", &["bbbbbbb", "ddddddd"]),
        ]);
        let (plan, changed) = still_valid(&planned, &now);
        assert_eq!(
            plan.repositories[0]
                .deletion_batches
                .iter()
                .flatten()
                .count(),
            0
        );
        let words: Vec<(Digest, String)> =
            changed.into_iter().map(|c| (c.digest, c.change)).collect();
        assert!(words.contains(&(d("old"), "tag `latest` was pushed onto it".into())));
        assert!(words.contains(&(d("older"), "tag `ddddddd` now points elsewhere".into())));
        // Unchanged: nothing dropped.
        let same = inventory(&[
            ("older", &["ddddddd"]),
            ("old", &["aaaaaaa"]),
            ("new", &["bbbbbbb"]),
        ]);
        let (plan, changed) = still_valid(&planned, &same);
        assert!(changed.is_empty());
        assert_eq!(plan, planned.body.plan);
    }

    #[test]
    fn a_deletion_a_new_index_or_referrer_now_uses_is_dropped() {
        let planned = file(inventory(&[
            ("older", &["ddddddd"]),
            ("old", &["aaaaaaa"]),
            ("new", &["bbbbbbb"]),
        ]));
        let mut now = inventory(&[
            ("older", &["ddddddd"]),
            ("old", &["aaaaaaa"]),
            ("new", &["bbbbbbb"]),
        ]);
        // Pushed since: an index listing `old`, and a signature of `older`.
        let mut index = Manifest::new(d("index"), ManifestKind::Index);
        index.tags = vec!["multi".to_string()];
        index.children = vec![crate::model::ChildReference {
            digest: d("old"),
            platform: None,
        }];
        let mut signature = Manifest::new(d("signature"), ManifestKind::Image);
        signature.subject = Some(d("older"));
        now.repositories[0].manifests.extend([index, signature]);
        let (plan, changed) = still_valid(&planned, &now);
        assert_eq!(
            plan.repositories[0]
                .deletion_batches
                .iter()
                .flatten()
                .count(),
            0
        );
        let words: Vec<(Digest, String)> =
            changed.into_iter().map(|c| (c.digest, c.change)).collect();
        assert!(words.contains(&(d("old"), format!("`{}` now refers to it", d("index")))));
        assert!(words.contains(&(d("older"), format!("`{}` now refers to it", d("signature")))));
    }
}
