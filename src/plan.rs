//! plan: decides what to keep and what to delete, and why. Never deletes, never reads a clock.
//!
//! `plan(&Inventory, &Policy, now) -> Plan` is a pure function: the same inputs always give the
//! same plan. The semantics are those of `design.md` → "Policy semantics" and "Retention
//! policies": the rule language (`crate::policy`) decides every tag; then a mark phase from
//! roots (manifests with a kept tag, young manifests, untagged ones the policy keeps, orphaned
//! attachments) along edges (index → children, subject → referrers, target → attachments),
//! then everything unmarked is deleted, in an order where nothing is deleted before what
//! references it, and a tag the rules remove from a kept manifest is untagged.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use regex::Regex;

pub mod file;
pub mod order;
pub mod untagged;

use crate::model::{
    attachment_target, Action, Decision, Digest, Inventory, Manifest, ManifestKind, Plan, Reason,
    Repository, RepositoryName, RepositoryPlan, TagAction, TagDecision,
};
use crate::policy::decide::{decide, Image};
use crate::policy::{RetentionPolicy, Untagged};

/// The default `HASH_TAG_PATTERN`.
pub const DEFAULT_HASH_TAG_PATTERN: &str = "^[0-9a-f]{7,12}$";
/// The default `HASH_TAG_KEEP`.
pub const DEFAULT_HASH_TAG_KEEP: usize = 10;

/// The user's retention rules, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Tags matching this are hash tags.
    pub hash_tag_pattern: Regex,
    /// How many hash-tagged manifests to keep per repository.
    pub hash_tag_keep: usize,
    /// Manifests younger than this are kept. Zero disables the rule.
    pub min_age: Duration,
    /// Only plan these repositories (`REPO_FILTER`, `REGSWEEP_REPOSITORIES`); empty: all.
    pub repositories: Vec<RepositoryName>,
    /// The policy file's rules (`--policy`), when one was given: then `hash_tag_pattern` and
    /// `hash_tag_keep` play no part (giving both is refused before a run).
    pub file: Option<std::sync::Arc<RetentionPolicy>>,
    /// The registry deletes a manifest's untagged children and its accessories (referrers,
    /// signatures) together with it (Harbor): a manifest is then kept while the plan keeps
    /// something it would take along. Not the user's choice: the provider's nature.
    pub takes_along: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            hash_tag_pattern: Regex::new(DEFAULT_HASH_TAG_PATTERN)
                .expect("default pattern is valid"),
            hash_tag_keep: DEFAULT_HASH_TAG_KEEP,
            min_age: Duration::zero(),
            repositories: Vec::new(),
            file: None,
            takes_along: false,
        }
    }
}

impl Policy {
    /// The rules that decide tags: the policy file's, or the seed's made of
    /// `HASH_TAG_PATTERN` and `HASH_TAG_KEEP`.
    pub fn retention(&self) -> std::borrow::Cow<'_, RetentionPolicy> {
        match &self.file {
            Some(file) => std::borrow::Cow::Borrowed(file.as_ref()),
            None => std::borrow::Cow::Owned(RetentionPolicy::seed(
                &self.hash_tag_pattern,
                self.hash_tag_keep,
            )),
        }
    }

    /// The minimum age: the policy file's `min-age:` when it says one, else
    /// `REGSWEEP_MIN_AGE`.
    pub fn min_age(&self) -> Duration {
        self.file
            .as_ref()
            .and_then(|f| f.min_age)
            .unwrap_or(self.min_age)
    }

    /// Whether the repository is one to plan: named by the options (when they name any) and
    /// selected by the policy file's `repositories` (when it has them).
    pub fn selects(&self, repository: &RepositoryName) -> bool {
        (self.repositories.is_empty() || self.repositories.contains(repository))
            && self
                .file
                .as_ref()
                .is_none_or(|f| f.repositories.selects(repository.as_str()))
    }
}

/// The three kinds of tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKind {
    /// Any tag that is neither of the others: always protects its manifest.
    Version,
    /// Matches `HASH_TAG_PATTERN`.
    Hash,
    /// `sha256-<64 hex>` with an optional `.suffix`: attached to `sha256:<hex>`.
    Attachment {
        /// The manifest it is attached to.
        target: Digest,
    },
}

/// Classifies a tag. Attachment tags are recognised first, so that a permissive
/// `HASH_TAG_PATTERN` (`.*`) does not turn signatures into hash tags.
///
/// ```
/// use regsweep::plan::{classify_tag, Policy, TagKind};
/// let policy = Policy::default();
/// assert_eq!(classify_tag("3f33a785", &policy), TagKind::Hash);
/// assert_eq!(classify_tag("latest", &policy), TagKind::Version);
/// ```
pub fn classify_tag(tag: &str, policy: &Policy) -> TagKind {
    if let Some(target) = attachment_target(tag) {
        return TagKind::Attachment { target };
    }
    if policy.hash_tag_pattern.is_match(tag) {
        TagKind::Hash
    } else {
        TagKind::Version
    }
}

/// Plans every repository of `inventory` that passes the policy's repository filter.
pub fn plan(inventory: &Inventory, policy: &Policy, now: DateTime<Utc>) -> Plan {
    let retention = policy.retention();
    let mut rule_used = vec![false; retention.rules.len()];
    let mut unselected = Vec::new();
    let mut repositories = Vec::new();
    for repository in &inventory.repositories {
        if !policy.selects(&repository.name) {
            if policy.repositories.is_empty() || policy.repositories.contains(&repository.name) {
                unselected.push(repository.name.clone());
            }
            continue;
        }
        repositories.push(plan_repository(
            repository,
            policy,
            &retention,
            &mut rule_used,
            now,
        ));
    }
    // A rule that selects no tag anywhere is worth a warning (a typo in its patterns): said
    // of a policy file only, and only when some repository was read completely.
    let unused_rules = if retention.is_seed() || repositories.is_empty() {
        Vec::new()
    } else {
        retention
            .rules
            .iter()
            .zip(&rule_used)
            .filter(|(_, used)| !**used)
            .map(|(rule, _)| rule.name.clone())
            .collect()
    };
    Plan {
        repositories,
        unused_rules,
        unselected,
    }
}

/// Per-repository lookups the planner needs, built once (linear in the repository's size).
struct Graph<'a> {
    manifests: &'a [Manifest],
    position: HashMap<&'a Digest, usize>,
    /// Per manifest: the manifests it references (children, subject, attachment target).
    references: Vec<Vec<usize>>,
    /// Per manifest: the manifests that reference it, with the edge's kind.
    referenced_by: Vec<Vec<(usize, Edge)>>,
    /// Per manifest: whether it carries an attachment tag (`sha256-<hex>…`).
    attached: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// An index lists the manifest.
    Child,
    /// A referrer's `subject` is the manifest.
    Subject,
    /// An attachment tag names the manifest.
    Attachment,
}

impl<'a> Graph<'a> {
    fn new(repository: &'a Repository) -> Graph<'a> {
        let manifests = repository.manifests.as_slice();
        let position: HashMap<&Digest, usize> = manifests
            .iter()
            .enumerate()
            .map(|(i, m)| (&m.digest, i))
            .collect();
        let mut references = vec![Vec::new(); manifests.len()];
        let mut referenced_by = vec![Vec::new(); manifests.len()];
        let mut attached = Vec::with_capacity(manifests.len());
        for (i, manifest) in manifests.iter().enumerate() {
            let targets: Vec<Digest> = manifest
                .tags
                .iter()
                .filter_map(|t| attachment_target(t))
                .collect();
            let mut add = |target: &Digest, edge: Edge| {
                if let Some(&j) = position.get(target) {
                    if j != i {
                        references[i].push(j);
                        referenced_by[j].push((i, edge));
                    }
                }
            };
            for child in &manifest.children {
                add(&child.digest, Edge::Child);
            }
            if let Some(subject) = &manifest.subject {
                add(subject, Edge::Subject);
            }
            for target in &targets {
                add(target, Edge::Attachment);
            }
            attached.push(!targets.is_empty());
        }
        for list in referenced_by.iter_mut() {
            list.sort_by(|a, b| manifests[a.0].digest.cmp(&manifests[b.0].digest));
            list.dedup();
        }
        Graph {
            manifests,
            position,
            references,
            referenced_by,
            attached,
        }
    }

    /// The creation date: config `created`; for an index the newest of its children's.
    fn created(
        &self,
        i: usize,
        memo: &mut Vec<Option<Option<DateTime<Utc>>>>,
    ) -> Option<DateTime<Utc>> {
        if let Some(known) = memo[i] {
            return known;
        }
        // Mark before recursing: content addressing makes index cycles impossible, but a
        // corrupt store must not make the planner loop.
        memo[i] = Some(None);
        let manifest = &self.manifests[i];
        let created = match manifest.kind {
            ManifestKind::Index => manifest
                .children
                .iter()
                .filter_map(|c| self.position.get(&c.digest).copied())
                .filter_map(|j| self.created(j, memo))
                .max()
                .or(manifest.created),
            _ => manifest.created,
        };
        memo[i] = Some(created);
        created
    }
}

fn plan_repository(
    repository: &Repository,
    policy: &Policy,
    retention: &RetentionPolicy,
    rule_used: &mut [bool],
    now: DateTime<Utc>,
) -> RepositoryPlan {
    let graph = Graph::new(repository);
    let count = repository.manifests.len();
    let mut memo = vec![None; count];
    // The image date (`design.md`, retention policies, point 6): the config's `created` (an
    // index: its newest child's), else the time it was pushed.
    let created: Vec<Option<DateTime<Utc>>> =
        (0..count).map(|i| graph.created(i, &mut memo)).collect();
    let effective: Vec<Option<DateTime<Utc>>> = (0..count)
        .map(|i| created[i].or(repository.manifests[i].pushed))
        .collect();

    if !repository.problems.is_empty() {
        let decisions = repository
            .manifests
            .iter()
            .enumerate()
            .map(|(i, m)| Decision {
                digest: m.digest.clone(),
                action: Action::Keep,
                reason: Reason::DiscoveryIncomplete,
                effective_date: effective[i],
            })
            .collect();
        return RepositoryPlan {
            name: repository.name.clone(),
            decisions,
            deletion_batches: Vec::new(),
            tags: Vec::new(),
        };
    }

    // Every tag decided by the rules.
    let images: Vec<Image<'_>> = repository
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| Image {
            digest: &m.digest,
            tags: &m.tags,
            date: effective[i],
            date_is_push_time: created[i].is_none() && effective[i].is_some(),
        })
        .collect();
    let decided = decide(retention, &repository.name, &images, now);
    for (used, here) in rule_used.iter_mut().zip(&decided.rule_used) {
        *used |= *here;
    }
    let seed = retention.is_seed();

    // Roots, in order of precedence.
    let mut reasons: Vec<Option<Reason>> = Vec::with_capacity(count);
    for (i, manifest) in graph.manifests.iter().enumerate() {
        let verdicts = || manifest.tags.iter().zip(&decided.tags[i]);
        let unselected = verdicts().find(|(_, v)| v.as_ref().is_some_and(|v| v.rule.is_none()));
        let kept = verdicts().find(|(_, v)| v.as_ref().is_some_and(|v| v.kept));
        let reason = if seed {
            // The seed's reasons, as its report has always shown them.
            if unselected.is_some() {
                Some(Reason::VersionTag)
            } else if kept.is_some() {
                Some(Reason::RecentHashTag {
                    rank: decided.rank[i].unwrap_or_default(),
                })
            } else {
                None
            }
        } else {
            kept.map(|(tag, verdict)| Reason::TagKept {
                tag: tag.clone(),
                rule: verdict
                    .as_ref()
                    .and_then(|v| v.rule)
                    .map(|r| retention.rules[r].name.clone()),
            })
        }
        .or_else(|| is_too_young(manifest, effective[i], policy, now).then_some(Reason::TooYoung))
        .or_else(|| {
            (manifest.tags.is_empty() && retention.untagged == Untagged::Keep)
                .then_some(Reason::UntaggedKept)
        })
        .or_else(|| {
            manifest
                .tags
                .iter()
                .find_map(|tag| match attachment_target(tag) {
                    Some(target) if !graph.position.contains_key(&target) => {
                        Some(Reason::AttachmentTargetMissing { target })
                    }
                    _ => None,
                })
        });
        reasons.push(reason);
    }

    // Mark: everything reachable from a root is kept.
    let mut queue: VecDeque<usize> = (0..count).filter(|&i| reasons[i].is_some()).collect();
    mark(&graph, &mut reasons, &mut queue);
    if policy.takes_along {
        keep_what_takes_kept_along(&graph, &mut reasons);
    }

    // Sweep: everything unmarked is deleted, with the most specific reason.
    for (i, slot) in reasons.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        let manifest = &graph.manifests[i];
        let removed_by_rules = decided.tags[i].iter().any(Option::is_some);
        let reason = if seed && decided.rank[i].is_some() {
            Reason::OldHashTag {
                rank: decided.rank[i].unwrap_or_default(),
            }
        } else if !seed && removed_by_rules {
            Reason::TagsRemoved
        } else if let Some(subject) = manifest
            .subject
            .as_ref()
            .filter(|s| graph.position.contains_key(s))
        {
            Reason::ReferrerOfDeleted {
                subject: subject.clone(),
            }
        } else if let Some(target) = manifest
            .tags
            .iter()
            .filter_map(|t| attachment_target(t))
            .find(|target| graph.position.contains_key(target))
        {
            Reason::AttachmentOfDeleted { target }
        } else if let Some(&(index, _)) = graph.referenced_by[i]
            .iter()
            .find(|(_, e)| *e == Edge::Child)
        {
            Reason::ChildOfDeletedIndex {
                index: graph.manifests[index].digest.clone(),
            }
        } else {
            Reason::Untagged
        };
        *slot = Some(reason);
    }

    let decisions: Vec<Decision> = reasons
        .into_iter()
        .enumerate()
        .map(|(i, reason)| {
            let reason = reason.expect("every manifest has a reason after the sweep");
            Decision {
                digest: graph.manifests[i].digest.clone(),
                action: reason.action(),
                reason,
                effective_date: effective[i],
            }
        })
        .collect();
    let deletion_batches = deletion_batches(&graph, &decisions);
    let tags = if seed {
        // The seed never removes a tag from an image it keeps, and its report has no
        // per-tag lines.
        Vec::new()
    } else {
        tag_decisions(retention, repository, &decided, &decisions)
    };
    RepositoryPlan {
        name: repository.name.clone(),
        decisions,
        deletion_batches,
        tags,
    }
}

/// Every tag's decision for the plan and the reports: kept, untagged (removed from a manifest
/// that stays) or deleted with its manifest, with its rule and why.
fn tag_decisions(
    retention: &RetentionPolicy,
    repository: &Repository,
    decided: &crate::policy::decide::Decided,
    decisions: &[Decision],
) -> Vec<TagDecision> {
    let mut tags = Vec::new();
    for ((manifest, verdicts), decision) in repository
        .manifests
        .iter()
        .zip(&decided.tags)
        .zip(decisions)
    {
        let stays = decision.action == Action::Keep;
        for (tag, verdict) in manifest.tags.iter().zip(verdicts) {
            let (action, rule, why) = match verdict {
                // An attachment tag follows the manifest it names.
                None => (
                    if stays {
                        TagAction::Keep
                    } else {
                        TagAction::Delete
                    },
                    None,
                    format!(
                        "attachment: {} with {}",
                        if stays { "kept" } else { "deleted" },
                        attachment_target(tag)
                            .map(|t| t.short())
                            .unwrap_or_default()
                    ),
                ),
                Some(verdict) => {
                    let action = match (verdict.kept, stays) {
                        (true, _) => TagAction::Keep,
                        (false, true) if retention.untag => TagAction::Untag,
                        (false, true) => TagAction::Keep,
                        (false, false) => TagAction::Delete,
                    };
                    let rule = verdict.rule.map(|r| retention.rules[r].name.clone());
                    (action, rule, verdict.why.clone())
                }
            };
            tags.push(TagDecision {
                digest: manifest.digest.clone(),
                tag: tag.clone(),
                action,
                rule,
                why,
            });
        }
    }
    tags
}

/// Keeps everything reachable from the manifests in `queue` (already kept): an index's
/// children, a manifest's referrers (by `subject`) and its attachments (by attachment tag).
fn mark(graph: &Graph<'_>, reasons: &mut [Option<Reason>], queue: &mut VecDeque<usize>) {
    while let Some(i) = queue.pop_front() {
        let digest = &graph.manifests[i].digest;
        let mut keep = |j: usize, reason: Reason, reasons: &mut [Option<Reason>]| {
            if reasons[j].is_none() {
                reasons[j] = Some(reason);
                queue.push_back(j);
            }
        };
        for &j in &graph.references[i] {
            if graph.manifests[i]
                .children
                .iter()
                .any(|c| c.digest == graph.manifests[j].digest)
            {
                keep(
                    j,
                    Reason::ChildOfKeptIndex {
                        index: digest.clone(),
                    },
                    reasons,
                );
            }
        }
        for &(j, edge) in &graph.referenced_by[i] {
            match edge {
                Edge::Subject => keep(
                    j,
                    Reason::ReferrerOfKept {
                        subject: digest.clone(),
                    },
                    reasons,
                ),
                Edge::Attachment => keep(
                    j,
                    Reason::AttachmentOfKept {
                        target: digest.clone(),
                    },
                    reasons,
                ),
                Edge::Child => {}
            }
        }
    }
}

/// For a registry that deletes an index's untagged children and a subject's accessories with
/// it (Harbor): keeps every manifest the plan deletes that would take a kept one along (an
/// index listing a kept untagged child, the subject of a kept referrer or attachment), and
/// what that keeps, until nothing more changes (bounded: each round keeps one more, or ends).
fn keep_what_takes_kept_along(graph: &Graph<'_>, reasons: &mut [Option<Reason>]) {
    loop {
        let mut queue = VecDeque::new();
        for taken in 0..graph.manifests.len() {
            if reasons[taken].is_none() {
                continue;
            }
            // An untagged child goes with the last index listing it: when every index that
            // lists it is deleted, one of them (the first by digest) stays.
            // `referenced_by[taken]` holds what lists `taken` (Child) and what names it as
            // subject or target (its own accessories, which do not take it along).
            let untagged = graph.manifests[taken].tags.is_empty();
            let mut parents = graph.referenced_by[taken]
                .iter()
                .filter(|(_, edge)| *edge == Edge::Child)
                .map(|(parent, _)| *parent)
                .peekable();
            let first = parents.peek().copied();
            let all_deleted = parents.all(|parent| reasons[parent].is_none());
            if let (true, true, Some(parent)) = (untagged, all_deleted, first) {
                reasons[parent] = Some(Reason::TakesKeptAlong {
                    kept: graph.manifests[taken].digest.clone(),
                });
                queue.push_back(parent);
            }
            for &subject in &graph.references[taken] {
                let accessory_of_subject = graph.referenced_by[subject]
                    .iter()
                    .any(|&(j, edge)| j == taken && edge != Edge::Child);
                if accessory_of_subject && reasons[subject].is_none() {
                    reasons[subject] = Some(Reason::TakesKeptAlong {
                        kept: graph.manifests[taken].digest.clone(),
                    });
                    queue.push_back(subject);
                }
            }
        }
        if queue.is_empty() {
            return;
        }
        mark(graph, reasons, &mut queue);
    }
}

fn is_too_young(
    manifest: &Manifest,
    effective: Option<DateTime<Utc>>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> bool {
    let min_age = policy.min_age();
    if min_age <= Duration::zero() {
        return false;
    }
    // The newest date known: a rebuilt image can carry an old `created` yet have been pushed
    // a second ago, and a push in progress is what this rule guards.
    match effective.max(manifest.pushed) {
        Some(date) => now.signed_duration_since(date) < min_age,
        // Age unknown: keep it, the rule exists to avoid deleting what may be brand new.
        None => true,
    }
}

/// Orders the deletions: a manifest is deleted only after everything (deleted) that references
/// it, and within each step referrers and attachments go first, then indexes, then the rest.
fn deletion_batches(graph: &Graph<'_>, decisions: &[Decision]) -> Vec<Vec<Digest>> {
    let deleted: Vec<bool> = decisions
        .iter()
        .map(|d| d.action == Action::Delete)
        .collect();
    let count = deleted.len();
    // Number of deleted manifests that reference each one, still to be deleted.
    let mut pending: Vec<usize> = vec![0; count];
    for i in (0..count).filter(|&i| deleted[i]) {
        for &j in &graph.references[i] {
            if deleted[j] {
                pending[j] += 1;
            }
        }
    }
    let class = |i: usize| -> u8 {
        let manifest = &graph.manifests[i];
        if manifest.subject.is_some() || graph.attached[i] {
            0
        } else if manifest.kind == ManifestKind::Index {
            1
        } else {
            2
        }
    };
    let mut done = vec![false; count];
    let mut batches = Vec::new();
    let mut remaining = deleted.iter().filter(|d| **d).count();
    while remaining > 0 {
        let mut level: Vec<usize> = (0..count)
            .filter(|&i| deleted[i] && !done[i] && pending[i] == 0)
            .collect();
        if level.is_empty() {
            // Only a cycle of attachment tags can get here; delete the rest together.
            level = (0..count).filter(|&i| deleted[i] && !done[i]).collect();
        }
        let mut by_class: BTreeMap<u8, BTreeSet<Digest>> = BTreeMap::new();
        for &i in &level {
            by_class
                .entry(class(i))
                .or_default()
                .insert(graph.manifests[i].digest.clone());
            done[i] = true;
            remaining -= 1;
            for &j in &graph.references[i] {
                if deleted[j] && pending[j] > 0 {
                    pending[j] -= 1;
                }
            }
        }
        batches.extend(by_class.into_values().map(|set| set.into_iter().collect()));
    }
    batches
}

#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod tests;
