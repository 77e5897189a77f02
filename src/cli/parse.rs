//! parse: clap value parsers for the typed options: booleans as CI systems write them, whole
//! numbers in range, durations, the untagged-sweep choice. Each error says what a valid value
//! looks like; `settings` turns it into one line naming the input.

use std::time::Duration;

use crate::plan::untagged::UntaggedSweep;

/// A boolean as CI systems write them: true/false, 1/0, yes/no, on/off, any case; empty is
/// false.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "n" | "" => Some(false),
        _ => None,
    }
}

/// A boolean option.
pub fn boolean(text: &str) -> Result<bool, String> {
    parse_bool(text)
        .ok_or_else(|| format!("`{text}` is not a boolean (use true/false, 1/0 or yes/no)"))
}

/// A duration: `0`, `90s`, `30m`, `2h`, `7d`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(chrono::Duration::zero());
    }
    let std = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like `30m`, `2h` or `7d` ({e})"))?;
    chrono::Duration::from_std(std).map_err(|_| format!("`{text}` is too long"))
}

/// A duration, zero allowed (`REGSWEEP_MIN_AGE`, `REGSWEEP_RETRY_DELAY`).
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)?
        .to_std()
        .map_err(|_| format!("`{text}` is not a duration like `500ms`"))
}

/// A duration above zero (`30s`, `30m`): the time limits.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration above zero like `30s`"))
}

/// A whole number of 0 or more.
pub fn count(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of 0 or more"))
}

fn between(text: &str, low: u32, high: u32) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| format!("`{text}` is not a number from {low} to {high}"))
}

/// Requests in flight at once: 1 to 256.
pub fn concurrency(text: &str) -> Result<usize, String> {
    between(text, 1, 256).map(|n| n as usize)
}

/// Attempts per request: 1 to 20.
pub fn attempts(text: &str) -> Result<u32, String> {
    between(text, 1, 20)
}

/// `REGSWEEP_GC_INCLUDE_UNTAGGED`: a boolean, or `force`.
pub fn untagged_sweep(text: &str) -> Result<UntaggedSweep, String> {
    if text.trim().eq_ignore_ascii_case("force") {
        return Ok(UntaggedSweep::Forced);
    }
    match parse_bool(text) {
        Some(true) => Ok(UntaggedSweep::Requested),
        Some(false) => Ok(UntaggedSweep::Off),
        None => Err(format!("`{text}` is not true, false or force")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_ci_writes_them() {
        for (text, expected) in [
            ("true", Some(true)),
            ("TRUE", Some(true)),
            ("Yes", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            ("No", Some(false)),
            ("0", Some(false)),
            ("", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(parse_bool(text), expected, "{text}");
        }
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("0").unwrap(), chrono::Duration::zero());
        assert_eq!(parse_duration("2h").unwrap(), chrono::Duration::hours(2));
        assert_eq!(parse_duration("7d").unwrap(), chrono::Duration::days(7));
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(positive_duration("0s").is_err());
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert_eq!(concurrency("256"), Ok(256));
        assert!(concurrency("0").unwrap_err().contains("from 1 to 256"));
        assert!(count("-1").unwrap_err().contains("0 or more"));
        assert_eq!(untagged_sweep("Force"), Ok(UntaggedSweep::Forced));
    }
}
