//! decide: how a policy's rules decide every tag of one repository (`design.md` →
//! "Retention policies", points 1 to 3). Attachment tags are never selected: they follow the
//! manifest they name. Every other tag is decided by the first rule whose repositories and
//! tags select it; a tag no rule selects is kept. A ranked rule splits the images carrying
//! its tags into groups, ranks each group, and keeps a tag whose image ranks within `newest`
//! or is younger than `younger-than`. Every verdict says why, in words. Pure: `now` is given.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use super::{Keep, Ranked, RetentionPolicy, Sort};
use crate::model::{attachment_target, Digest, RepositoryName, Tag};

/// What the policy knows of one image (manifest) of the repository.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// Its digest (ties are broken by it).
    pub digest: &'a Digest,
    /// Its tags.
    pub tags: &'a [Tag],
    /// Its date (`design.md`, point 6), if known.
    pub date: Option<DateTime<Utc>>,
    /// Whether that date is the push time (the config had no date).
    pub date_is_push_time: bool,
}

/// The verdict on one tag that is not an attachment tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVerdict {
    /// The rule that decided it (its index in the policy), or none: no rule selects it.
    pub rule: Option<usize>,
    /// Whether it is kept.
    pub kept: bool,
    /// Why, in words: `removed by "pull requests": 5th newest of pr-*, 21 days old (keeps 3,
    /// or younger than 14d)`.
    pub why: String,
}

/// Every tag of a repository decided.
#[derive(Debug, Clone, Default)]
pub struct Decided {
    /// Per image (in the order given), per tag (in its order): the verdict, or none for an
    /// attachment tag (it follows its target).
    pub tags: Vec<Vec<Option<TagVerdict>>>,
    /// Per image, its rank in the first group that ranks it (1 = first), if any: what the
    /// seed's reasons show (`hash tag, #3 newest`).
    pub rank: Vec<Option<usize>>,
    /// Per rule: whether it selected any tag here (a rule that selects nothing anywhere is
    /// worth a warning).
    pub rule_used: Vec<bool>,
}

/// Decides every tag of `images`, the manifests of `repository`, at `now`.
pub fn decide(
    policy: &RetentionPolicy,
    repository: &RepositoryName,
    images: &[Image<'_>],
    now: DateTime<Utc>,
) -> Decided {
    let applicable: Vec<usize> = (0..policy.rules.len())
        .filter(|&r| policy.rules[r].repositories.selects(repository.as_str()))
        .collect();
    let mut decided = Decided {
        tags: images.iter().map(|i| vec![None; i.tags.len()]).collect(),
        rank: vec![None; images.len()],
        rule_used: vec![false; policy.rules.len()],
    };
    // Which rule decides each tag: the first that selects it.
    let mut by_rule: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (image, facts) in images.iter().enumerate() {
        for (position, tag) in facts.tags.iter().enumerate() {
            if attachment_target(tag).is_some() {
                continue;
            }
            match applicable
                .iter()
                .copied()
                .find(|&r| policy.rules[r].tags.selects(tag))
            {
                Some(rule) => by_rule.entry(rule).or_default().push((image, position)),
                None => {
                    decided.tags[image][position] = Some(TagVerdict {
                        rule: None,
                        kept: true,
                        why: "kept: no rule selects it".into(),
                    })
                }
            }
        }
    }
    for (rule_index, tags) in by_rule {
        decided.rule_used[rule_index] = true;
        let rule = &policy.rules[rule_index];
        let verdict = |kept: bool, why: String| TagVerdict {
            rule: Some(rule_index),
            kept,
            why,
        };
        match &rule.keep {
            Keep::All | Keep::None => {
                let kept = matches!(rule.keep, Keep::All);
                let why = format!(
                    "{} by \"{}\": {}",
                    if kept { "kept" } else { "removed" },
                    rule.name,
                    rule.keep.describe()
                );
                for (image, position) in tags {
                    decided.tags[image][position] = Some(verdict(kept, why.clone()));
                }
            }
            Keep::Ranked(ranked) => {
                let label = rule.tags.describe();
                for (group, members) in groups(ranked, images, &tags) {
                    let order = rank(ranked, images, members);
                    let tie = boundary_tie(ranked, images, &order);
                    for (place, member) in order.iter().enumerate() {
                        let position_in_group = place + 1;
                        let image = member.image;
                        if decided.rank[image].is_none() {
                            decided.rank[image] = Some(position_in_group);
                        }
                        let facts = &images[image];
                        let within_newest = ranked.newest.is_some_and(|n| position_in_group <= n);
                        let young = ranked
                            .younger_than
                            .zip(facts.date)
                            .is_some_and(|(age, date)| now.signed_duration_since(date) < age);
                        let kept = within_newest || young;
                        let of = match &group {
                            Some(name) => format!("group \"{name}\""),
                            None => label.clone(),
                        };
                        let key = match ranked.sort {
                            Sort::Date => String::new(),
                            Sort::Semver => match &member.version {
                                Some(version) => format!(" (version {version})"),
                                None => " (no semantic version: ranked below, by date)".into(),
                            },
                            Sort::Tag => format!(" (tag {})", member.greatest),
                        };
                        let mut why = format!(
                            "{} by \"{}\": {} {} of {}{key}, {} ({})",
                            if kept { "kept" } else { "removed" },
                            rule.name,
                            ordinal(position_in_group),
                            ranked.sort.ranked_as(),
                            of,
                            age(facts, now),
                            rule.keep.describe()
                        );
                        if let Some((inside, outside)) = tie {
                            if place == inside || place == outside {
                                let other = if place == inside { outside } else { inside };
                                why.push_str(&format!(
                                    "; tied with {} at the boundary, broken by digest",
                                    images[order[other].image].digest.short()
                                ));
                            }
                        }
                        for &position in &member.positions {
                            decided.tags[image][position] = Some(verdict(kept, why.clone()));
                        }
                    }
                }
            }
        }
    }
    decided
}

/// One image of a group: its tags there and what it is ranked by.
struct Member<'a> {
    image: usize,
    positions: Vec<usize>,
    /// Its highest semantic version among those tags (`sort: semver`).
    version: Option<semver::Version>,
    /// Its greatest tag among them (`sort: tag`).
    greatest: &'a str,
}

/// The tags a rule decides, by group (none without `group-by`; a tag the expression does not
/// match is in the group ""), each image once with its tags there. Linear in the tags.
fn groups<'a>(
    ranked: &Ranked,
    images: &[Image<'a>],
    tags: &[(usize, usize)],
) -> BTreeMap<Option<String>, Vec<Member<'a>>> {
    // Per group: its members, and where each image is among them.
    type Building<'a> = (Vec<Member<'a>>, HashMap<usize, usize>);
    let mut groups: BTreeMap<Option<String>, Building<'a>> = BTreeMap::new();
    for &(image, position) in tags {
        let tag: &'a str = images[image].tags[position].as_str();
        let group = ranked.group_by.as_ref().map(|expression| {
            expression
                .captures(tag)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default()
        });
        let (members, index) = groups.entry(group).or_default();
        let slot = *index.entry(image).or_insert_with(|| {
            members.push(Member {
                image,
                positions: Vec::new(),
                version: None,
                greatest: tag,
            });
            members.len() - 1
        });
        let member = &mut members[slot];
        member.positions.push(position);
        member.greatest = member.greatest.max(tag);
        if ranked.sort == Sort::Semver {
            if let Some(found) = version(tag) {
                let higher = member
                    .version
                    .as_ref()
                    .is_none_or(|v| found.cmp_precedence(v) == Ordering::Greater);
                if higher {
                    member.version = Some(found);
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|(group, (members, _))| (group, members))
        .collect()
}

/// A tag as a semantic version, a leading `v` allowed.
fn version(tag: &str) -> Option<semver::Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(text).ok()
}

/// Newest dates first, unknown dates last.
fn by_date(a: &Image<'_>, b: &Image<'_>) -> Ordering {
    b.date.cmp(&a.date)
}

/// The comparison of two images, without the digest that breaks the last ties.
fn compare(ranked: &Ranked, images: &[Image<'_>], a: &Member<'_>, b: &Member<'_>) -> Ordering {
    match ranked.sort {
        Sort::Date => by_date(&images[a.image], &images[b.image]),
        Sort::Semver => match (&a.version, &b.version) {
            (Some(x), Some(y)) => y.cmp_precedence(x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| by_date(&images[a.image], &images[b.image])),
        Sort::Tag => b.greatest.cmp(a.greatest),
    }
}

/// The group's images, first to last; ties broken by digest.
fn rank<'a>(
    ranked: &Ranked,
    images: &[Image<'_>],
    mut members: Vec<Member<'a>>,
) -> Vec<Member<'a>> {
    members.sort_by(|a, b| {
        compare(ranked, images, a, b)
            .then_with(|| images[a.image].digest.cmp(images[b.image].digest))
    });
    members
}

/// The places (0-based) on either side of the `newest` boundary, when only their digests
/// tell the two images apart.
fn boundary_tie(
    ranked: &Ranked,
    images: &[Image<'_>],
    order: &[Member<'_>],
) -> Option<(usize, usize)> {
    let newest = ranked.newest?;
    if newest == 0 || newest >= order.len() {
        return None;
    }
    (compare(ranked, images, &order[newest - 1], &order[newest]) == Ordering::Equal)
        .then_some((newest - 1, newest))
}

/// `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `21 days old`, `3 hours old by push time`, `age unknown`.
fn age(image: &Image<'_>, now: DateTime<Utc>) -> String {
    let Some(date) = image.date else {
        return "age unknown".into();
    };
    let elapsed = now.signed_duration_since(date).max(Duration::zero());
    let text = if elapsed >= Duration::days(2) {
        format!("{} days old", elapsed.num_days())
    } else if elapsed >= Duration::hours(2) {
        format!("{} hours old", elapsed.num_hours())
    } else {
        format!("{} minutes old", elapsed.num_minutes())
    };
    if image.date_is_push_time {
        format!("{text} by push time")
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
