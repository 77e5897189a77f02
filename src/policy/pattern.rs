//! pattern: the lists of patterns a policy selects repositories and tags with. An entry
//! selects a name when it matches it, an entry starting with `!` excludes it, and an exclude
//! wins; a list without a selecting entry selects everything it does not exclude, and no list
//! at all selects everything. `/…/` is a regular expression, searched as written (anchor it
//! yourself, as with `HASH_TAG_PATTERN`); anything else is a glob over the whole name (`*` any
//! characters, `?` one, `[…]` a class; in repository names `*` stays within one path segment
//! and `**` crosses them). Compiled once into sets, so a name is matched in one pass.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::RegexSet;

/// What the names are: the globs of repository names treat `/` as a separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Repository names (`team/app`): `*` stays within a segment, `**` crosses them.
    Repository,
    /// Tags (`v1.2.0`): no separators.
    Tag,
}

/// Globs and regular expressions, compiled together.
#[derive(Debug, Clone)]
struct Matchers {
    globs: GlobSet,
    regexes: RegexSet,
}

impl Matchers {
    fn is_match(&self, name: &str) -> bool {
        self.globs.is_match(name) || self.regexes.is_match(name)
    }
}

/// A compiled list of patterns, with the entries as written (for reports).
#[derive(Debug, Clone)]
pub struct Patterns {
    entries: Vec<String>,
    selecting: Option<Matchers>,
    excluding: Option<Matchers>,
}

/// Why one entry of a list is not a pattern: its position in the list and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The entry's index in its list.
    pub index: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl Patterns {
    /// The list that selects everything (no list given).
    pub fn everything() -> Patterns {
        Patterns {
            entries: Vec::new(),
            selecting: None,
            excluding: None,
        }
    }

    /// Compiles `entries` for names of `kind`.
    pub fn new(entries: &[String], kind: NameKind) -> Result<Patterns, PatternError> {
        let mut sides = [
            (GlobSetBuilder::new(), Vec::new(), false),
            (GlobSetBuilder::new(), Vec::new(), false),
        ];
        for (index, entry) in entries.iter().enumerate() {
            let error = |message: String| PatternError { index, message };
            let (exclude, pattern) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, entry.as_str()),
            };
            if pattern.is_empty() {
                return Err(error(format!("`{entry}` is empty")));
            }
            let (globs, regexes, used) = &mut sides[usize::from(exclude)];
            *used = true;
            match pattern
                .strip_prefix('/')
                .and_then(|p| p.strip_suffix('/'))
                .filter(|_| pattern.len() >= 2)
            {
                Some(expression) => {
                    regex::Regex::new(expression).map_err(|e| {
                        error(format!(
                            "`{entry}` is not a regular expression: {}",
                            one_line(&e.to_string())
                        ))
                    })?;
                    regexes.push(expression.to_string());
                }
                None => {
                    let glob = GlobBuilder::new(pattern)
                        .literal_separator(kind == NameKind::Repository)
                        .backslash_escape(true)
                        .build()
                        .map_err(|e| error(format!("`{entry}` is not a glob: {}", e.kind())))?;
                    globs.add(glob);
                }
            }
        }
        let [(include_globs, include_regexes, any_include), (exclude_globs, exclude_regexes, any_exclude)] =
            sides;
        let build =
            |globs: GlobSetBuilder, regexes: Vec<String>| -> Result<Matchers, PatternError> {
                Ok(Matchers {
                    globs: globs.build().map_err(|e| PatternError {
                        index: 0,
                        message: e.to_string(),
                    })?,
                    regexes: RegexSet::new(&regexes).map_err(|e| PatternError {
                        index: 0,
                        message: one_line(&e.to_string()),
                    })?,
                })
            };
        Ok(Patterns {
            entries: entries.to_vec(),
            selecting: any_include
                .then(|| build(include_globs, include_regexes))
                .transpose()?,
            excluding: any_exclude
                .then(|| build(exclude_globs, exclude_regexes))
                .transpose()?,
        })
    }

    /// Whether the list selects `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.selecting.as_ref().is_none_or(|m| m.is_match(name))
            && !self.excluding.as_ref().is_some_and(|m| m.is_match(name))
    }

    /// Whether the list selects every name (no entries).
    pub fn is_everything(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The entries as the reports show them: `v*, !v*-rc*, latest`, or `*` for everything.
    pub fn describe(&self) -> String {
        if self.entries.is_empty() {
            "*".to_string()
        } else {
            self.entries.join(", ")
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(entries: &[&str], kind: NameKind) -> Patterns {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        Patterns::new(&entries, kind).unwrap()
    }

    #[test]
    fn globs_regexes_and_excludes() {
        let tags = patterns(&["v*", "!v*-rc*", "latest"], NameKind::Tag);
        for (tag, selected) in [
            ("v1.2.0", true),
            ("v1.2.0-rc1", false),
            ("latest", true),
            ("latest-1", false),
            ("main", false),
        ] {
            assert_eq!(tags.selects(tag), selected, "{tag}");
        }
        // A regular expression is searched as written: anchored only where it says so.
        let unanchored = patterns(&["/[0-9]{8}/"], NameKind::Tag);
        assert!(unanchored.selects("nightly-20261201"));
        let anchored = patterns(&["/^nightly-[0-9]{8}$/"], NameKind::Tag);
        assert!(anchored.selects("nightly-20261201"));
        assert!(!anchored.selects("nightly-20261201-1"));
        // `?` is one character, `[…]` a class.
        let classes = patterns(&["pr-?", "[ab]x"], NameKind::Tag);
        assert!(classes.selects("pr-1") && !classes.selects("pr-12"));
        assert!(classes.selects("bx") && !classes.selects("cx"));
        // Excludes only: everything else.
        let not_legacy = patterns(&["!legacy"], NameKind::Tag);
        assert!(not_legacy.selects("main") && !not_legacy.selects("legacy"));
        assert!(Patterns::everything().selects("anything"));
    }

    #[test]
    fn repository_globs_stay_within_a_segment_unless_doubled() {
        let repositories = patterns(&["team/**", "!team/legacy", "apps/*"], NameKind::Repository);
        for (name, selected) in [
            ("team/app", true),
            ("team/app/api", true),
            ("team/legacy", false),
            ("apps/web", true),
            ("apps/web/api", false),
            ("other", false),
        ] {
            assert_eq!(repositories.selects(name), selected, "{name}");
        }
    }

    #[test]
    fn bad_entries_name_their_index() {
        let entries = vec!["ok".to_string(), "/(/".to_string()];
        let error = Patterns::new(&entries, NameKind::Tag).unwrap_err();
        assert_eq!(error.index, 1);
        assert!(
            error.message.contains("not a regular expression"),
            "{error:?}"
        );
        let entries = vec!["[".to_string()];
        let error = Patterns::new(&entries, NameKind::Tag).unwrap_err();
        assert!(error.message.contains("not a glob"), "{error:?}");
        let entries = vec!["!".to_string()];
        assert!(Patterns::new(&entries, NameKind::Tag).is_err());
    }
}
