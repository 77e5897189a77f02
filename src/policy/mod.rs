//! policy: the rule language of retention policies (`design.md` → "Retention policies"): what
//! a policy file says (`file`), the patterns it selects repositories and tags with
//! (`pattern`), and how its rules decide every tag of a repository (`decide`). Decides tags
//! only; which manifests that keeps, and the closure over indexes, referrers and attachments,
//! is the planner's. No I/O, no clock: `now` is given.
//!
//! Without a policy file, `HASH_TAG_PATTERN` and `HASH_TAG_KEEP` make the seed's policy: one
//! rule `{tags: ['/HASH_TAG_PATTERN/'], keep: {newest: HASH_TAG_KEEP}}`, untagged manifests
//! deleted, and no untagging ([`RetentionPolicy::seed`]).

pub mod decide;
pub mod file;
pub mod pattern;

use chrono::Duration;
use regex::Regex;

pub use file::{parse, PolicyError};
use pattern::Patterns;

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `HASH_TAG_PATTERN` and `HASH_TAG_KEEP`: the seed's policy.
    Seed,
    /// A policy file (`--policy`, `REGSWEEP_POLICY`).
    File {
        /// The path as given.
        path: String,
        /// Its text, as read (a plan file carries it, so `apply` can show it).
        text: String,
    },
}

/// What happens to manifests without a tag (`untagged:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untagged {
    /// Deleted, unless something kept references them (the default).
    Delete,
    /// Kept.
    Keep,
}

/// How a rule ranks the images it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By the image date, newest first (the default).
    Date,
    /// By the highest semantic version among the image's tags in the group (semver 2.0
    /// precedence, a leading `v` allowed); images without one rank below, by date.
    Semver,
    /// By the greatest tag (byte order).
    Tag,
}

impl Sort {
    /// `newest`, `highest version`, `greatest tag`: how a rank reads.
    pub fn ranked_as(&self) -> &'static str {
        match self {
            Sort::Date => "newest",
            Sort::Semver => "highest version",
            Sort::Tag => "greatest tag",
        }
    }

    /// The word the policy file uses.
    pub fn name(&self) -> &'static str {
        match self {
            Sort::Date => "date",
            Sort::Semver => "semver",
            Sort::Tag => "tag",
        }
    }
}

/// A ranked keep: the newest N images of each group, or those younger than an age, or either.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// Keep the images ranked within this many, per group.
    pub newest: Option<usize>,
    /// Keep the images whose date is within this of now.
    pub younger_than: Option<Duration>,
    /// `younger-than` as written (`14d`), for reports.
    pub younger_than_text: Option<String>,
    /// How images are ranked.
    pub sort: Sort,
    /// Splits the images by the first capture group of this expression in their tags.
    pub group_by: Option<Regex>,
}

/// What a rule keeps of the tags it decides.
#[derive(Debug, Clone)]
pub enum Keep {
    /// Every tag.
    All,
    /// No tag.
    None,
    /// Ranked, per group.
    Ranked(Ranked),
}

impl Keep {
    /// `keeps all`, `keeps none`, `keeps 3, or younger than 14d`, `keeps 5 by semver per
    /// group`: what the rule keeps, as reports say it.
    pub fn describe(&self) -> String {
        match self {
            Keep::All => "keeps all".into(),
            Keep::None => "keeps none".into(),
            Keep::Ranked(ranked) => {
                let mut parts = Vec::new();
                if let Some(newest) = ranked.newest {
                    let mut part = format!("keeps {newest}");
                    if ranked.sort != Sort::Date {
                        part.push_str(&format!(" by {}", ranked.sort.name()));
                    }
                    if ranked.group_by.is_some() {
                        part.push_str(" per group");
                    }
                    parts.push(part);
                }
                if let Some(age) = &ranked.younger_than_text {
                    parts.push(if parts.is_empty() {
                        format!("keeps those younger than {age}")
                    } else {
                        format!("or younger than {age}")
                    });
                }
                parts.join(", ")
            }
        }
    }
}

/// One rule: which tags of which repositories it decides, and what it keeps of them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (`rule 3` when the file gives none).
    pub name: String,
    /// The repositories it applies to (every one when not given).
    pub repositories: Patterns,
    /// The tags it decides (every one not decided by an earlier rule when not given).
    pub tags: Patterns,
    /// What it keeps.
    pub keep: Keep,
}

/// A validated retention policy.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Where it came from.
    pub origin: Origin,
    /// Which repositories to clean (every one when not given).
    pub repositories: Patterns,
    /// `min-age:`, when the file gives one (else `REGSWEEP_MIN_AGE` applies).
    pub min_age: Option<Duration>,
    /// What happens to untagged manifests.
    pub untagged: Untagged,
    /// The rules, in order: the first that selects a tag decides it.
    pub rules: Vec<Rule>,
    /// Whether a tag to remove from a kept manifest is removed (untagged): a policy file's
    /// rule; the seed never removes a tag from an image it keeps.
    pub untag: bool,
}

impl RetentionPolicy {
    /// The seed's policy: hash tags (`pattern`) ranked by date, the newest `keep` kept,
    /// every other tag kept, untagged manifests deleted, no untagging.
    pub fn seed(pattern: &Regex, keep: usize) -> RetentionPolicy {
        let tags = Patterns::new(&[format!("/{}/", pattern.as_str())], pattern::NameKind::Tag)
            .expect("a compiled regular expression compiles again");
        RetentionPolicy {
            origin: Origin::Seed,
            repositories: Patterns::everything(),
            min_age: None,
            untagged: Untagged::Delete,
            rules: vec![Rule {
                name: "hash tags".into(),
                repositories: Patterns::everything(),
                tags,
                keep: Keep::Ranked(Ranked {
                    newest: Some(keep),
                    younger_than: None,
                    younger_than_text: None,
                    sort: Sort::Date,
                    group_by: None,
                }),
            }],
            untag: false,
        }
    }

    /// Whether this is the seed's policy (no file).
    pub fn is_seed(&self) -> bool {
        self.origin == Origin::Seed
    }

    /// The policy as understood, one line per setting and rule: what `regsweep policy check`
    /// prints and the reports summarise.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!("repositories: {}", self.repositories.describe()),
            format!(
                "min-age: {}",
                self.min_age
                    .and_then(|age| age.to_std().ok())
                    .map(|age| humantime::format_duration(age).to_string())
                    .unwrap_or_else(|| "REGSWEEP_MIN_AGE".into())
            ),
            format!(
                "untagged: {}",
                match self.untagged {
                    Untagged::Delete => "delete",
                    Untagged::Keep => "keep",
                }
            ),
        ];
        for (number, rule) in self.rules.iter().enumerate() {
            let mut line = format!(
                "rule {} \"{}\": tags {}",
                number + 1,
                rule.name,
                rule.tags.describe()
            );
            if !rule.repositories.is_everything() {
                line.push_str(&format!(" in {}", rule.repositories.describe()));
            }
            line.push_str(&format!(": {}", rule.keep.describe()));
            if let Keep::Ranked(Ranked {
                group_by: Some(group_by),
                ..
            }) = &rule.keep
            {
                line.push_str(&format!(", grouped by /{}/", group_by.as_str()));
            }
            lines.push(line);
        }
        lines.push("any other tag: kept (no rule selects it)".into());
        lines.push("attachment tags (sha256-<hex>…): follow the manifest they name".into());
        lines
    }
}

/// `2h`, `14d` as a duration (humantime's units), zero allowed.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::zero());
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like `30m`, `2h` or `14d` ({e})"))
        .and_then(|d| Duration::from_std(d).map_err(|_| format!("`{text}` is too long")))
}
