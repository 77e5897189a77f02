//! file: reads a policy file (YAML) into a validated [`RetentionPolicy`]. Every mistake is
//! one line naming the file, the line and the column, and what a valid value looks like:
//! an unknown key, a bad pattern, a negative count, a duplicate rule name, a value of the
//! wrong shape. The YAML is read by `marked-yaml` (on `yaml-rust2`), which keeps the position
//! of every node; the shape is checked here, node by node, so that each error points at the
//! node it is about.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};

use super::pattern::{NameKind, Patterns};
use super::{parse_age, Keep, Origin, Ranked, RetentionPolicy, Rule, Sort, Untagged};

/// Why a policy file is refused: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy `{path}`, line {line}, column {column}: {message}")]
pub struct PolicyError {
    /// The file, as given.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, one line.
    pub message: String,
}

/// Where a node is: (line, column), 1-based.
type Position = (usize, usize);

fn position_of(node: &Node) -> Position {
    node.span()
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

/// Where a mapping is: its first key (a block mapping's own mark is past that key).
fn mapping_position(map: &MarkedMappingNode, node: &Node) -> Position {
    map.iter()
        .next()
        .map(|(key, _)| scalar_position(key))
        .unwrap_or_else(|| position_of(node))
}

fn scalar_position(node: &MarkedScalarNode) -> Position {
    node.span()
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

/// Builds errors for one file.
struct Errors<'a> {
    path: &'a str,
}

impl Errors<'_> {
    fn at(&self, (line, column): Position, message: impl Into<String>) -> PolicyError {
        PolicyError {
            path: self.path.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

const TOP_KEYS: [&str; 4] = ["repositories", "min-age", "untagged", "rules"];
const RULE_KEYS: [&str; 4] = ["name", "repositories", "tags", "keep"];
const KEEP_KEYS: [&str; 4] = ["newest", "younger-than", "sort", "group-by"];

/// Parses and validates the policy file `text` (`path` names it in errors).
pub fn parse(text: &str, path: &str) -> Result<RetentionPolicy, PolicyError> {
    let errors = Errors { path };
    if text.trim().is_empty() {
        return Err(errors.at(
            (1, 1),
            "the file is empty: a policy needs at least `rules:`",
        ));
    }
    let root = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default().error_on_duplicate_keys(true),
    )
    .map_err(|error| load_error(&errors, &error))?;
    let top = mapping(
        &errors,
        &root,
        "the policy",
        "a mapping of `repositories`, `min-age`, `untagged` and `rules`",
    )?;
    known_keys(&errors, top, &TOP_KEYS, "the policy")?;

    let repositories = match top.get_node("repositories") {
        Some(node) => patterns(&errors, node, "repositories", NameKind::Repository)?,
        None => Patterns::everything(),
    };
    let min_age = top
        .get_node("min-age")
        .map(|node| {
            let text = scalar(&errors, node, "min-age", "a duration like `2h`")?;
            parse_age(text)
                .map_err(|message| errors.at(position_of(node), format!("min-age: {message}")))
        })
        .transpose()?;
    let untagged = match top.get_node("untagged") {
        None => Untagged::Delete,
        Some(node) => match scalar(&errors, node, "untagged", "`delete` or `keep`")? {
            "delete" => Untagged::Delete,
            "keep" => Untagged::Keep,
            other => {
                return Err(errors.at(
                    position_of(node),
                    format!("untagged: `{other}` is neither `delete` nor `keep`"),
                ))
            }
        },
    };
    let rules_node = top.get_node("rules").ok_or_else(|| {
        errors.at(
            mapping_position(top, &root),
            "no `rules:`: a policy needs at least one rule",
        )
    })?;
    let listed = rules_node.as_sequence().ok_or_else(|| {
        errors.at(
            position_of(rules_node),
            "rules: expected a list of rules (`- name: …`)",
        )
    })?;
    if listed.is_empty() {
        return Err(errors.at(position_of(rules_node), "rules: the list is empty"));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(listed.len());
    let mut names: Vec<(String, Position)> = Vec::new();
    for (index, node) in listed.iter().enumerate() {
        let rule = rule(&errors, node, index)?;
        if let Some((_, first)) = names.iter().find(|(name, _)| *name == rule.name) {
            let at = node
                .as_mapping()
                .and_then(|m| m.get_node("name"))
                .map(position_of)
                .unwrap_or_else(|| position_of(node));
            return Err(errors.at(
                at,
                format!(
                    "rule name `{}` is used twice (first at line {}): names say in the report \
                     which rule decided a tag, so each must be unique",
                    rule.name, first.0
                ),
            ));
        }
        let at = node
            .as_mapping()
            .map(|m| mapping_position(m, node))
            .unwrap_or_else(|| position_of(node));
        names.push((rule.name.clone(), at));
        rules.push(rule);
    }
    Ok(RetentionPolicy {
        origin: Origin::File {
            path: path.to_string(),
            text: text.to_string(),
        },
        repositories,
        min_age,
        untagged,
        rules,
        untag: true,
    })
}

fn load_error(errors: &Errors<'_>, error: &marked_yaml::LoadError) -> PolicyError {
    use marked_yaml::LoadError::*;
    #[allow(deprecated)]
    let (marker, message) = match error {
        TopLevelMustBeMapping(m) => (
            Some(*m),
            "expected a mapping of `repositories`, `min-age`, `untagged` and `rules`".to_string(),
        ),
        TopLevelMustBeSequence(m) => (Some(*m), "expected a sequence".to_string()),
        UnexpectedAnchor(m) => (Some(*m), "anchors (`&name`) are not supported".to_string()),
        MappingKeyMustBeScalar(m) => (Some(*m), "keys must be plain names".to_string()),
        UnexpectedTag(m) => (
            Some(*m),
            "YAML tags (`!!str`) are not supported".to_string(),
        ),
        ScanError(m, scan) => (Some(*m), format!("not valid YAML: {}", scan.info())),
        DuplicateKey(inner) => (
            inner.key.span().start().copied(),
            format!(
                "`{}` is given twice (first at line {})",
                inner.key.as_str(),
                inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0)
            ),
        ),
    };
    let position = marker.map(|m| (m.line(), m.column())).unwrap_or((1, 1));
    errors.at(position, message)
}

fn mapping<'a>(
    errors: &Errors<'_>,
    node: &'a Node,
    what: &str,
    expected: &str,
) -> Result<&'a MarkedMappingNode, PolicyError> {
    node.as_mapping()
        .ok_or_else(|| errors.at(position_of(node), format!("{what}: expected {expected}")))
}

fn scalar<'a>(
    errors: &Errors<'_>,
    node: &'a Node,
    what: &str,
    expected: &str,
) -> Result<&'a str, PolicyError> {
    node.as_scalar()
        .map(|s| s.as_str())
        .ok_or_else(|| errors.at(position_of(node), format!("{what}: expected {expected}")))
}

/// Refuses a key the mapping may not have, naming those it may.
fn known_keys(
    errors: &Errors<'_>,
    map: &MarkedMappingNode,
    known: &[&str],
    what: &str,
) -> Result<(), PolicyError> {
    for (key, _) in map.iter() {
        if !known.contains(&key.as_str()) {
            return Err(errors.at(
                scalar_position(key),
                format!(
                    "unknown key `{}` in {what}; expected one of `{}`",
                    key.as_str(),
                    known.join("`, `")
                ),
            ));
        }
    }
    Ok(())
}

/// A list of patterns (a single string is a list of one).
fn patterns(
    errors: &Errors<'_>,
    node: &Node,
    what: &str,
    kind: NameKind,
) -> Result<Patterns, PolicyError> {
    let entries: Vec<(String, Position)> = match node {
        Node::Scalar(s) => vec![(s.as_str().to_string(), scalar_position(s))],
        Node::Sequence(list) => list
            .iter()
            .map(|entry| {
                scalar(errors, entry, what, "a list of patterns")
                    .map(|text| (text.to_string(), position_of(entry)))
            })
            .collect::<Result<_, _>>()?,
        Node::Mapping(_) => {
            return Err(errors.at(
                position_of(node),
                format!("{what}: expected a list of patterns, like ['v*', '!v*-rc*']"),
            ))
        }
    };
    if entries.is_empty() {
        return Err(errors.at(
            position_of(node),
            format!("{what}: the list is empty (leave it out to select everything)"),
        ));
    }
    let texts: Vec<String> = entries.iter().map(|(text, _)| text.clone()).collect();
    Patterns::new(&texts, kind).map_err(|error| {
        let at = entries
            .get(error.index)
            .map(|(_, position)| *position)
            .unwrap_or_else(|| position_of(node));
        errors.at(at, format!("{what}: {}", error.message))
    })
}

fn rule(errors: &Errors<'_>, node: &Node, index: usize) -> Result<Rule, PolicyError> {
    let map = mapping(
        errors,
        node,
        &format!("rule {}", index + 1),
        "a mapping with `tags` and `keep`",
    )?;
    known_keys(errors, map, &RULE_KEYS, &format!("rule {}", index + 1))?;
    let name = match map.get_node("name") {
        Some(name) => {
            let text = scalar(errors, name, "name", "a name")?.trim().to_string();
            if text.is_empty() {
                return Err(errors.at(position_of(name), "name: empty"));
            }
            text
        }
        None => format!("rule {}", index + 1),
    };
    let what = |key: &str| format!("rule `{name}`: {key}");
    let repositories = match map.get_node("repositories") {
        Some(node) => patterns(errors, node, &what("repositories"), NameKind::Repository)?,
        None => Patterns::everything(),
    };
    let tags = match map.get_node("tags") {
        Some(node) => patterns(errors, node, &what("tags"), NameKind::Tag)?,
        None => Patterns::everything(),
    };
    let keep_node = map.get_node("keep").ok_or_else(|| {
        errors.at(
            mapping_position(map, node),
            format!(
                "rule `{name}` has no `keep:` (all, none, or {{newest: N, younger-than: 14d, \
                 sort: date|semver|tag, group-by: /…(…)…/}})"
            ),
        )
    })?;
    let keep = keep(errors, keep_node, &name)?;
    Ok(Rule {
        name,
        repositories,
        tags,
        keep,
    })
}

fn keep(errors: &Errors<'_>, node: &Node, rule: &str) -> Result<Keep, PolicyError> {
    let what = |key: &str| format!("rule `{rule}`: keep{key}");
    let map = match node {
        Node::Scalar(word) => {
            return match word.as_str() {
                "all" => Ok(Keep::All),
                "none" => Ok(Keep::None),
                other => Err(errors.at(
                    position_of(node),
                    format!(
                        "{}: `{other}` is not `all`, `none` or a mapping like {{newest: 3}}",
                        what("")
                    ),
                )),
            }
        }
        Node::Sequence(_) => {
            return Err(errors.at(
                position_of(node),
                format!(
                    "{}: expected `all`, `none` or a mapping like {{newest: 3}}",
                    what("")
                ),
            ))
        }
        Node::Mapping(map) => map,
    };
    known_keys(errors, map, &KEEP_KEYS, &what(""))?;
    let newest = map
        .get_node("newest")
        .map(|node| {
            let text = scalar(errors, node, &what(".newest"), "a whole number")?;
            match text.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as usize),
                Ok(n) => Err(errors.at(
                    position_of(node),
                    format!(
                        "{}: {n} is negative; it counts images to keep (0 or more)",
                        what(".newest")
                    ),
                )),
                Err(_) => Err(errors.at(
                    position_of(node),
                    format!("{}: `{text}` is not a whole number", what(".newest")),
                )),
            }
        })
        .transpose()?;
    let younger_than = map
        .get_node("younger-than")
        .map(|node| {
            let text = scalar(
                errors,
                node,
                &what(".younger-than"),
                "a duration like `14d`",
            )?;
            if text.trim_start().starts_with('-') {
                return Err(errors.at(
                    position_of(node),
                    format!("{}: `{text}` is negative", what(".younger-than")),
                ));
            }
            parse_age(text)
                .map(|age| (age, text.trim().to_string()))
                .map_err(|message| {
                    errors.at(
                        position_of(node),
                        format!("{}: {message}", what(".younger-than")),
                    )
                })
        })
        .transpose()?;
    let sort = match map.get_node("sort") {
        None => Sort::Date,
        Some(node) => match scalar(errors, node, &what(".sort"), "`date`, `semver` or `tag`")? {
            "date" => Sort::Date,
            "semver" => Sort::Semver,
            "tag" => Sort::Tag,
            other => {
                return Err(errors.at(
                    position_of(node),
                    format!(
                        "{}: `{other}` is not `date`, `semver` or `tag`",
                        what(".sort")
                    ),
                ))
            }
        },
    };
    let group_by = map
        .get_node("group-by")
        .map(|node| {
            let text = scalar(
                errors,
                node,
                &what(".group-by"),
                "a regular expression `/…(…)…/`",
            )?;
            let expression = text
                .strip_prefix('/')
                .and_then(|t| t.strip_suffix('/'))
                .filter(|_| text.len() >= 2)
                .unwrap_or(text);
            let regex = regex::Regex::new(expression).map_err(|e| {
                errors.at(
                    position_of(node),
                    format!(
                        "{}: `{text}` is not a regular expression: {}",
                        what(".group-by"),
                        e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                )
            })?;
            if regex.captures_len() < 2 {
                return Err(errors.at(
                    position_of(node),
                    format!(
                        "{}: `{text}` has no capture group: the text of its first `(…)` names \
                         the group",
                        what(".group-by")
                    ),
                ));
            }
            Ok(regex)
        })
        .transpose()?;
    if newest.is_none() && younger_than.is_none() {
        return Err(errors.at(
            position_of(node),
            format!(
                "{}: says neither `newest` nor `younger-than`: what to keep? (`all` keeps every \
                 tag, `none` none)",
                what("")
            ),
        ));
    }
    let (younger_than, younger_than_text) = match younger_than {
        Some((age, text)) => (Some(age), Some(text)),
        None => (None, None),
    };
    Ok(Keep::Ranked(Ranked {
        newest,
        younger_than,
        younger_than_text,
        sort,
        group_by,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `design.md`, "Retention policies".
    pub const DESIGN_EXAMPLE: &str = r#"repositories: ['team/**', '!team/legacy']   # which repositories to clean; default: all
min-age: 2h                                 # nothing younger is deleted (default REGSWEEP_MIN_AGE)
untagged: delete                            # delete (default) | keep
rules:                                      # the first rule that selects a tag decides it
  - name: releases
    tags: ['v*', '!v*-rc*', latest]
    keep: all
  - name: pull requests
    tags: ['pr-*']
    keep: {newest: 3, younger-than: 14d}
  - name: commits
    tags: ['sha-*']
    keep: {newest: 20}
  - name: nightlies
    tags: ['/^nightly-[0-9]{8}$/']
    keep: {newest: 7, sort: tag}
  - name: branches
    repositories: [apps/*]
    tags: ['/^[a-z0-9-]+-[0-9a-f]{7}-[0-9]{10}$/']
    keep: {newest: 2, group-by: '/^([a-z0-9-]+)-[0-9a-f]{7}-[0-9]{10}$/'}
  - name: library versions
    tags: ['/^v?[0-9]+[.][0-9]+[.][0-9]+/']
    keep: {newest: 5, sort: semver}
"#;

    #[test]
    fn the_design_example_reads_as_written() {
        let policy = parse(DESIGN_EXAMPLE, "policy.yml").unwrap();
        assert_eq!(policy.rules.len(), 6);
        assert_eq!(policy.min_age, Some(chrono::Duration::hours(2)));
        assert_eq!(policy.untagged, Untagged::Delete);
        assert!(policy.untag);
        assert!(policy.repositories.selects("team/app"));
        assert!(!policy.repositories.selects("team/legacy"));
        let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "releases",
                "pull requests",
                "commits",
                "nightlies",
                "branches",
                "library versions"
            ]
        );
        assert!(matches!(policy.rules[0].keep, Keep::All));
        let Keep::Ranked(pulls) = &policy.rules[1].keep else {
            panic!("pull requests are ranked")
        };
        assert_eq!(pulls.newest, Some(3));
        assert_eq!(pulls.younger_than, Some(chrono::Duration::days(14)));
        assert_eq!(
            policy.rules[1].keep.describe(),
            "keeps 3, or younger than 14d"
        );
        let Keep::Ranked(branches) = &policy.rules[4].keep else {
            panic!("branches are ranked")
        };
        assert!(branches.group_by.is_some());
        assert!(policy.rules[4].repositories.selects("apps/web"));
        assert!(!policy.rules[4].repositories.selects("team/app"));
        let Keep::Ranked(library) = &policy.rules[5].keep else {
            panic!("library versions are ranked")
        };
        assert_eq!(library.sort, Sort::Semver);
        let described = policy.describe().join("\n");
        assert!(
            described.contains("rule 2 \"pull requests\": tags pr-*: keeps 3, or younger than 14d"),
            "{described}"
        );
    }

    /// Each mistake: one line with the file, the line and the column of what is wrong.
    #[test]
    fn mistakes_name_the_file_the_line_and_the_column() {
        let cases: [(&str, (usize, usize), &str); 13] = [
            (
                "rules:\n  - tags: [x]\n    keeep: all\n",
                (3, 5),
                "unknown key `keeep`",
            ),
            ("rulez: []\n", (1, 1), "unknown key `rulez`"),
            (
                "rules:\n  - tags: ['/(/']\n    keep: all\n",
                (2, 12),
                "not a regular expression",
            ),
            (
                "rules:\n  - tags: ['[']\n    keep: all\n",
                (2, 12),
                "not a glob",
            ),
            (
                "rules:\n  - keep: {newest: -3}\n",
                (2, 20),
                "-3 is negative",
            ),
            (
                "rules:\n  - keep: {newest: three}\n",
                (2, 20),
                "not a whole number",
            ),
            (
                "rules:\n  - name: a\n    keep: all\n  - name: a\n    keep: none\n",
                (4, 11),
                "rule name `a` is used twice (first at line 2)",
            ),
            ("rules:\n  - tags: [x]\n", (2, 5), "has no `keep:`"),
            (
                "rules:\n  - keep: sometimes\n",
                (2, 11),
                "`sometimes` is not `all`, `none`",
            ),
            (
                "rules:\n  - keep: {sort: size, newest: 1}\n",
                (2, 18),
                "`size` is not `date`",
            ),
            (
                "rules:\n  - keep: {newest: 1, group-by: '/[a-z]+/'}\n",
                (2, 33),
                "no capture group",
            ),
            ("min-age: soon\nrules:\n  - keep: all\n", (1, 10), "min-age"),
            (
                "rules:\n  - keep: {}\n",
                (2, 11),
                "neither `newest` nor `younger-than`",
            ),
        ];
        for (text, (line, column), words) in cases {
            let error = parse(text, "p.yml").unwrap_err();
            let shown = error.to_string();
            assert!(shown.contains(words), "{text:?}: {shown}");
            assert_eq!(
                (error.line, error.column),
                (line, column),
                "{text:?}: {shown}"
            );
            assert!(shown.starts_with("policy `p.yml`, line "), "{shown}");
            assert_eq!(shown.lines().count(), 1, "{shown}");
        }
        for text in [
            "",
            "rules: []\n",
            "untagged: maybe\nrules:\n  - keep: all\n",
            "- a\n",
            "rules: {a: 1}\n",
            "rules:\n  - keep: all\nrules:\n  - keep: none\n",
            "rules: [\n",
        ] {
            let error = parse(text, "p.yml").unwrap_err();
            assert_eq!(error.to_string().lines().count(), 1, "{text:?}");
        }
    }
}
