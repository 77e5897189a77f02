//! challenge: parses `WWW-Authenticate` challenges (RFC 7235 §4.1): which scheme a registry asks
//! for, and its parameters (`realm`, `service`, `scope`). Pure; never panics on any input.

use std::collections::BTreeMap;

/// One challenge: `Bearer realm="https://auth.example/token",service="registry"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased: `bearer`, `basic`.
    pub scheme: String,
    /// Parameters with lowercased names; quoted values unescaped.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn is_token_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"\"(),/:;<=>?@[\\]{}".contains(c)
}

/// A tiny cursor over the header value.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.bump();
        }
    }

    fn token(&mut self) -> &str {
        let start = self.at;
        while self.peek().is_some_and(is_token_char) {
            self.bump();
        }
        &self.text[start..self.at]
    }

    /// An unquoted value: up to the next comma or space (lenient: servers send bare URLs).
    fn bare_value(&mut self) -> &str {
        let start = self.at;
        while self.peek().is_some_and(|c| c != ',' && !c.is_whitespace()) {
            self.bump();
        }
        &self.text[start..self.at]
    }

    /// A quoted string after its opening quote; unterminated strings end at the end.
    fn quoted(&mut self) -> String {
        let mut value = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => {
                    if let Some(escaped) = self.bump() {
                        value.push(escaped);
                    }
                }
                other => value.push(other),
            }
        }
        value
    }

    /// Whether `name =` (a parameter, not a new challenge) comes next, without moving.
    fn parameter_follows(&self) -> bool {
        let mut probe = Cursor {
            text: self.text,
            at: self.at,
        };
        probe.skip_spaces();
        if probe.token().is_empty() {
            return false;
        }
        probe.skip_spaces();
        if probe.bump() != Some('=') {
            return false;
        }
        // `abc==` or a trailing `abc=` is token68 padding, not a parameter.
        probe.skip_spaces();
        !matches!(probe.peek(), None | Some('=') | Some(','))
    }
}

/// Parses every challenge in a `WWW-Authenticate` value. Unknown syntax is skipped, never an
/// error: the caller only needs to know what is clearly there.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut cursor = Cursor { text: value, at: 0 };
    let mut challenges = Vec::new();
    // Each round consumes at least one character or ends: bounded by the input's length.
    while cursor.peek().is_some() {
        let before = cursor.at;
        cursor.skip_spaces();
        while cursor.peek() == Some(',') {
            cursor.bump();
            cursor.skip_spaces();
        }
        let scheme = cursor.token().to_ascii_lowercase();
        if scheme.is_empty() {
            if cursor.at == before {
                cursor.bump();
            }
            continue;
        }
        let mut params = BTreeMap::new();
        loop {
            if !cursor.parameter_follows() {
                // token68 (`Basic dXNlcjpwYXNz`) or nothing: skip to the next comma.
                cursor.skip_spaces();
                while cursor.peek().is_some_and(|c| c != ',') {
                    cursor.bump();
                }
                break;
            }
            cursor.skip_spaces();
            let name = cursor.token().to_ascii_lowercase();
            cursor.skip_spaces();
            cursor.bump(); // '='
            cursor.skip_spaces();
            let value = if cursor.peek() == Some('"') {
                cursor.bump();
                cursor.quoted()
            } else {
                cursor.bare_value().to_string()
            };
            params.insert(name, value);
            cursor.skip_spaces();
            if cursor.peek() != Some(',') {
                break;
            }
            cursor.bump();
            if !cursor.parameter_follows() {
                break; // the comma separated two challenges
            }
        }
        challenges.push(Challenge { scheme, params });
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer_challenge() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(challenges.len(), 1);
        let bearer = &challenges[0];
        assert_eq!(bearer.scheme, "bearer");
        assert_eq!(bearer.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(bearer.param("service"), Some("registry.docker.io"));
        assert_eq!(
            bearer.param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
    }

    #[test]
    fn several_challenges_spaces_escapes_and_token68() {
        let challenges = parse_challenges(
            r#"Basic realm="regsweep \"test\"" , Bearer realm=https://h:5001/service/token, service = harbor-registry, Negotiate abc=="#,
        );
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(challenges[0].param("realm"), Some(r#"regsweep "test""#));
        assert_eq!(
            challenges[1].param("realm"),
            Some("https://h:5001/service/token")
        );
        assert_eq!(challenges[1].param("service"), Some("harbor-registry"));
        assert!(challenges[2].params.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer ,=,=",
            "é=ü",
            "Bearer realm=\u{1F600}",
        ] {
            let _ = parse_challenges(input);
        }
    }
}
