//! model: the vocabulary of the pipeline (digests, tags, manifests, inventories, plans).
//!
//! Types here parse at the edge (`Digest::from_str`, `RepositoryName::from_str`) so that the
//! planner never sees malformed input. Nothing here performs I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A content digest, `sha256:<64 lowercase hex>` (or `sha512:<128 hex>`). Shared, not copied,
/// when cloned: the plan and the report refer to every digest several times.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(std::sync::Arc<str>);

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a digest (expected `sha256:` followed by 64 lowercase hex digits)")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The algorithm part: `sha256`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or_default()
    }

    /// The hex part after the colon.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or_default()
    }

    /// The first 12 hex digits with the algorithm, as the seed prints them: `sha256:f7da6fb39403`.
    ///
    /// ```
    /// let digest: regsweep::model::Digest = format!("sha256:f7da6fb39403{}", "0".repeat(52)).parse().unwrap();
    /// assert_eq!(digest.short(), "sha256:f7da6fb39403");
    /// ```
    pub fn short(&self) -> String {
        let hex = self.hex();
        format!("{}:{}", self.algorithm(), &hex[..hex.len().min(12)])
    }

    /// The full digest text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest of `bytes` under sha256.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for byte in hash {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
        }
        Digest(format!("sha256:{hex}").into())
    }

    /// Whether `bytes` hash to this digest. Digests of an algorithm this tool cannot compute
    /// are accepted as they are.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.algorithm() != "sha256" || Digest::sha256_of(bytes) == *self
    }
}

/// The digest an attachment tag (`sha256-<hex>`, `sha256-<hex>.sig`) names, if it is one.
///
/// ```
/// use regsweep::model::attachment_target;
/// let hex = "a".repeat(64);
/// let target = attachment_target(&format!("sha256-{hex}.sig")).unwrap();
/// assert_eq!(target.to_string(), format!("sha256:{hex}"));
/// assert!(attachment_target("latest").is_none());
/// assert!(attachment_target("sha256-abc.sig").is_none());
/// ```
pub fn attachment_target(tag: &str) -> Option<Digest> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = match rest.split_once('.') {
        Some((hex, suffix)) => (hex, Some(suffix)),
        None => (rest, None),
    };
    if suffix.is_some_and(str::is_empty) {
        return None;
    }
    format!("sha256:{hex}").parse().ok()
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDigest(text.to_string());
        let (algorithm, hex) = text.split_once(':').ok_or_else(invalid)?;
        let expected_len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(invalid()),
        };
        let is_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != expected_len || !is_hex {
            return Err(invalid());
        }
        Ok(Digest(text.into()))
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidDigest;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository name as the distribution spec defines it: lowercase path components separated
/// by `/`, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryName(String);

/// Why a string is not a repository name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a repository name (lowercase letters, digits, `.`, `_`, `-` and `/`)")]
pub struct InvalidRepositoryName(pub String);

impl RepositoryName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepositoryName {
    type Err = InvalidRepositoryName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let component_ok = |c: &str| {
            let bytes = c.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            !bytes.is_empty()
                && alnum(&bytes[0])
                && alnum(&bytes[bytes.len() - 1])
                && bytes
                    .iter()
                    .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        };
        if text.len() > 255 || text.is_empty() || !text.split('/').all(component_ok) {
            return Err(InvalidRepositoryName(text.to_string()));
        }
        Ok(RepositoryName(text.to_string()))
    }
}

impl TryFrom<String> for RepositoryName {
    type Error = InvalidRepositoryName;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RepositoryName> for String {
    fn from(name: RepositoryName) -> String {
        name.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first day a container image could have been built (Docker's first release,
/// 2013-03-20): an earlier date in a config or an API is no date, but the Unix epoch or the
/// 1980 of reproducible builds (Jib, ko, Bazel, `SOURCE_DATE_EPOCH=0`), or Go's zero time.
pub fn earliest_image_date() -> DateTime<Utc> {
    DateTime::from_timestamp(1_363_737_600, 0).expect("2013-03-20 is a valid date")
}

/// `date` when it can be a real build or push date (see [`earliest_image_date`]), else none.
///
/// ```
/// use regsweep::model::plausible_date;
/// let epoch = chrono::DateTime::from_timestamp(0, 0);
/// assert_eq!(plausible_date(epoch), None);
/// let recent = chrono::DateTime::from_timestamp(1_733_400_000, 0);
/// assert_eq!(plausible_date(recent), recent);
/// ```
pub fn plausible_date(date: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    date.filter(|d| *d >= earliest_image_date())
}

/// A tag name (`latest`, `3f33a785`, `sha256-<hex>.sig`).
pub type Tag = String;

/// (De)serializes a shared platform as the platform itself.
mod shared_platform {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Platform;

    pub fn serialize<S: Serializer>(
        platform: &Option<Arc<Platform>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        platform.as_deref().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<Platform>>, D::Error> {
        Ok(Option::<Platform>::deserialize(deserializer)?.map(Arc::new))
    }
}

/// An OS/architecture pair with optional variant: `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// What kind of thing a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestKind {
    /// A single-platform image (Docker schema2 or OCI image manifest with an image config).
    Image,
    /// A Docker manifest list or OCI image index.
    Index,
    /// An OCI artifact: an `artifactType`, or a config that is not an image config.
    Artifact,
}

/// A reference from an index to one of its manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildReference {
    /// The child's digest.
    pub digest: Digest,
    /// The platform the index declares for it, when it declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A blob a manifest references (config or layer), for the reclaimable-space estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobReference {
    /// The blob's digest.
    pub digest: Digest,
    /// The size its descriptor declares.
    pub size: u64,
}

/// One manifest revision in a repository, with everything the planner needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Content digest.
    pub digest: Digest,
    /// The manifest's own media type (the well-known ones shared, not copied per manifest).
    pub media_type: std::borrow::Cow<'static, str>,
    /// Image, index or artifact.
    pub kind: ManifestKind,
    /// Tags pointing at this manifest now, sorted.
    pub tags: Vec<Tag>,
    /// Size of the manifest document in bytes.
    pub size: u64,
    /// Config and layer blobs it references.
    pub blobs: Vec<BlobReference>,
    /// The image config's `created`, when present and a plausible date (see
    /// [`plausible_date`]: not the epoch or the 1980 of reproducible builds).
    pub created: Option<DateTime<Utc>>,
    /// When the registry stored it (storage modification time, or a provider's `updated_at`).
    pub pushed: Option<DateTime<Utc>>,
    /// The image's platform (from its config), shared by every image of that config.
    #[serde(default, with = "shared_platform")]
    pub platform: Option<std::sync::Arc<Platform>>,
    /// For an index: the manifests it lists.
    pub children: Vec<ChildReference>,
    /// For an OCI 1.1 referrer: the manifest it refers to.
    pub subject: Option<Digest>,
    /// For an artifact: its `artifactType` or config media type.
    pub artifact_type: Option<String>,
    /// The provider's own id for it, where deletes take one (a GitHub package version id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

impl Manifest {
    /// A manifest with only a digest and kind; the rest empty. Handy for tests and for
    /// providers that fill fields in as they learn them.
    pub fn new(digest: Digest, kind: ManifestKind) -> Manifest {
        Manifest {
            digest,
            media_type: std::borrow::Cow::Borrowed(""),
            kind,
            tags: Vec::new(),
            size: 0,
            blobs: Vec::new(),
            created: None,
            pushed: None,
            platform: None,
            children: Vec::new(),
            subject: None,
            artifact_type: None,
            provider_id: None,
        }
    }
}

/// A repository as discovered: its manifests, and any problem that made discovery incomplete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// The repository's name.
    pub name: RepositoryName,
    /// Every manifest revision found, sorted by digest.
    pub manifests: Vec<Manifest>,
    /// What could not be read. When not empty the planner deletes nothing here (fail closed).
    pub problems: Vec<String>,
    /// Observations that change nothing but the user should know (a config without
    /// `created`, ranked by push time instead).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Everything discovered, the planner's input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Repositories sorted by name.
    pub repositories: Vec<Repository>,
}

/// Keep or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave it in the registry.
    Keep,
    /// Delete it through the registry API.
    Delete,
}

/// Why a manifest is kept or deleted. Every decision carries one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Carries a version tag (`latest`, `3.16`): always kept.
    VersionTag,
    /// Among the `HASH_TAG_KEEP` most recent hash-tagged manifests; `rank` counts from 1.
    RecentHashTag {
        /// 1 for the newest.
        rank: usize,
    },
    /// Younger than the minimum age.
    TooYoung,
    /// An attachment (`sha256-<hex>.sig`) whose target is not in the repository.
    AttachmentTargetMissing {
        /// The digest the tag names.
        target: Digest,
    },
    /// Listed by a kept index.
    ChildOfKeptIndex {
        /// The index that keeps it.
        index: Digest,
    },
    /// An OCI referrer whose subject is kept.
    ReferrerOfKept {
        /// The kept subject.
        subject: Digest,
    },
    /// An attachment-tagged manifest whose target is kept.
    AttachmentOfKept {
        /// The kept target.
        target: Digest,
    },
    /// The repository's discovery was incomplete: nothing in it is deleted.
    DiscoveryIncomplete,
    /// Carries a tag the retention policy keeps (a policy file): `rule` kept it, or no rule
    /// selects it (none).
    TagKept {
        /// The tag.
        tag: Tag,
        /// The rule that keeps it; none: no rule selects the tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// Untagged, and the policy file says `untagged: keep`.
    UntaggedKept,
    /// The registry deletes a manifest's untagged children and accessories with it (Harbor),
    /// and `kept`, which the plan keeps, is one of them: deleting this one would take it.
    TakesKeptAlong {
        /// The kept manifest it would take along.
        kept: Digest,
    },
    /// No tag points at it and nothing kept references it.
    Untagged,
    /// Hash-tagged, but older than the `HASH_TAG_KEEP` most recent; `rank` counts from 1.
    OldHashTag {
        /// Its position among the hash-tagged manifests, newest first.
        rank: usize,
    },
    /// Every tag it carries is removed by the retention policy's rules (a policy file), and
    /// nothing kept references it.
    TagsRemoved,
    /// Untagged child of an index that is deleted, and nothing kept references it.
    ChildOfDeletedIndex {
        /// One index that listed it.
        index: Digest,
    },
    /// An OCI referrer whose subject is deleted.
    ReferrerOfDeleted {
        /// The deleted subject.
        subject: Digest,
    },
    /// An attachment-tagged manifest whose target is deleted.
    AttachmentOfDeleted {
        /// The deleted target.
        target: Digest,
    },
}

impl Reason {
    /// The action this reason justifies.
    pub fn action(&self) -> Action {
        match self {
            Reason::VersionTag
            | Reason::RecentHashTag { .. }
            | Reason::TooYoung
            | Reason::AttachmentTargetMissing { .. }
            | Reason::ChildOfKeptIndex { .. }
            | Reason::ReferrerOfKept { .. }
            | Reason::AttachmentOfKept { .. }
            | Reason::DiscoveryIncomplete
            | Reason::TakesKeptAlong { .. }
            | Reason::TagKept { .. }
            | Reason::UntaggedKept => Action::Keep,
            Reason::Untagged
            | Reason::OldHashTag { .. }
            | Reason::TagsRemoved
            | Reason::ChildOfDeletedIndex { .. }
            | Reason::ReferrerOfDeleted { .. }
            | Reason::AttachmentOfDeleted { .. } => Action::Delete,
        }
    }

    /// A short stable label for totals and JSON (`version_tag`, `untagged`, …).
    pub fn label(&self) -> &'static str {
        match self {
            Reason::VersionTag => "version_tag",
            Reason::RecentHashTag { .. } => "recent_hash_tag",
            Reason::TooYoung => "too_young",
            Reason::AttachmentTargetMissing { .. } => "attachment_target_missing",
            Reason::ChildOfKeptIndex { .. } => "child_of_kept_index",
            Reason::ReferrerOfKept { .. } => "referrer_of_kept",
            Reason::AttachmentOfKept { .. } => "attachment_of_kept",
            Reason::DiscoveryIncomplete => "discovery_incomplete",
            Reason::TakesKeptAlong { .. } => "takes_kept_along",
            Reason::TagKept { .. } => "tag_kept",
            Reason::UntaggedKept => "untagged_kept",
            Reason::TagsRemoved => "tags_removed",
            Reason::Untagged => "untagged",
            Reason::OldHashTag { .. } => "old_hash_tag",
            Reason::ChildOfDeletedIndex { .. } => "child_of_deleted_index",
            Reason::ReferrerOfDeleted { .. } => "referrer_of_deleted",
            Reason::AttachmentOfDeleted { .. } => "attachment_of_deleted",
        }
    }
}

/// The decision about one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The manifest decided about.
    pub digest: Digest,
    /// Keep or delete.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The date used to rank it: `created`, else for an index its newest child's, else `pushed`.
    pub effective_date: Option<DateTime<Utc>>,
}

/// What becomes of one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagAction {
    /// It stays.
    Keep,
    /// Removed from a manifest that stays (the manifest is kept for another reason).
    Untag,
    /// Deleted with its manifest.
    Delete,
}

/// The retention policy's decision about one tag, with the rule and why (`pr-12`: removed by
/// "pull requests": 5th newest of pr-*, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDecision {
    /// The manifest it points at.
    pub digest: Digest,
    /// The tag.
    pub tag: Tag,
    /// What becomes of it.
    pub action: TagAction,
    /// The rule that decided it (none: no rule selects it, or an attachment tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in words.
    pub why: String,
}

/// The plan for one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryPlan {
    /// The repository.
    pub name: RepositoryName,
    /// One decision per manifest, in the inventory's order (by digest).
    pub decisions: Vec<Decision>,
    /// Deletions in batches: each batch may run concurrently, batches run in order, so that
    /// nothing is deleted before whatever references it.
    pub deletion_batches: Vec<Vec<Digest>>,
    /// With a policy file: every tag's decision, manifest by manifest (the seed's policy has
    /// none: it never removes a tag from an image it keeps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagDecision>,
}

/// The planner's output: a decision for every manifest of every repository it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Per repository, sorted by name.
    pub repositories: Vec<RepositoryPlan>,
    /// Rules of the policy file that select no tag in any repository planned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unused_rules: Vec<String>,
    /// Repositories read but not selected by the policy file's `repositories`: untouched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unselected: Vec<RepositoryName>,
}

impl RepositoryPlan {
    /// The tags this plan removes from manifests that stay.
    pub fn untags(&self) -> impl Iterator<Item = &TagDecision> {
        self.tags.iter().filter(|t| t.action == TagAction::Untag)
    }

    /// The digests this plan deletes, in decision order (by digest).
    pub fn deletions(&self) -> impl Iterator<Item = &Digest> {
        self.decisions
            .iter()
            .filter(|d| d.action == Action::Delete)
            .map(|d| &d.digest)
    }
}

impl Plan {
    /// How many tags the plan removes from manifests that stay.
    pub fn untag_count(&self) -> usize {
        self.repositories.iter().map(|r| r.untags().count()).sum()
    }

    /// How many manifests the plan deletes.
    pub fn deletion_count(&self) -> usize {
        self.repositories
            .iter()
            .flat_map(|r| &r.decisions)
            .filter(|d| d.action == Action::Delete)
            .count()
    }
}

/// How to free the space after deleting manifests, as the report shows it. Comes from the
/// provider: each registry has its own way (a command, an API call regsweep makes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarbageCollectionAdvice {
    /// The command to run.
    pub command: String,
    /// What to be careful about.
    pub warnings: Vec<String>,
}

/// A garbage collection the run started and followed (DigitalOcean, Harbor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarbageCollectionRun {
    /// The registry's id for it.
    #[serde(rename = "uuid")]
    pub id: String,
    /// How it ended: `succeeded`, `failed`, `cancelled`, …
    pub status: String,
    /// Blobs it deleted, when the registry says.
    pub blobs_deleted: Option<u64>,
    /// Bytes it freed, when the registry says.
    pub freed_bytes: Option<u64>,
    /// The type that ran (`unreferenced blobs only`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Why regsweep asked for that type.
    pub why: String,
}

impl GarbageCollectionRun {
    /// Whether it ended well.
    pub fn succeeded(&self) -> bool {
        self.status.eq_ignore_ascii_case("succeeded") || self.status.eq_ignore_ascii_case("success")
    }
}

/// Counts by label, for totals.
pub type Counts = BTreeMap<&'static str, usize>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parses_and_rejects() {
        let hex = "a".repeat(64);
        let digest: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(digest.hex(), hex);
        assert_eq!(digest.short(), "sha256:aaaaaaaaaaaa");
        for bad in [
            "sha256:abc",
            "md5:aaaa",
            "sha256",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}\n", "a".repeat(64)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn digest_of_bytes() {
        let digest = Digest::sha256_of(b"");
        assert_eq!(
            digest.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest.matches(b""));
        assert!(!digest.matches(b"x"));
    }

    #[test]
    fn repository_names() {
        for good in ["app", "team/app/api", "a.b_c__d-e", "x9/y-1"] {
            assert!(good.parse::<RepositoryName>().is_ok(), "{good} rejected");
        }
        for bad in [
            "", "App", "/app", "app/", "a//b", "-app", "app-", "_uploads", "a b",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn platform_display() {
        let platform = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(platform.to_string(), "linux/arm64/v8");
    }
}
