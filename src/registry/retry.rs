//! retry: when a failed request is worth another attempt, and how long to wait before it.
//! Pure: the waiting itself is the HTTP layer's, through the run's control.

use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

/// How often and how patiently to retry transient failures (connection errors, resets,
/// timeouts, 5xx, 429). Configuration, not a test switch: tests pass short delays.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time, with jitter.
    pub base_delay: Duration,
    /// Upper bound for any one retry delay, `Retry-After` included.
    pub max_delay: Duration,
    /// Upper bound for one request with all its retries.
    pub deadline: Duration,
    /// Upper bound for one attempt (connect, send, read the answer).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first): exponential, capped, with
    /// "equal jitter" (between half and all of it) so that many clients do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        exponential.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// The delay before retrying an answer that asks for one (`Retry-After`), else the
    /// backoff; never more than `max_delay`.
    pub fn delay(&self, retry: u32, headers: &HeaderMap) -> Duration {
        retry_after(headers)
            .unwrap_or_else(|| self.backoff(retry))
            .min(self.max_delay)
    }
}

/// Whether an answer is worth retrying: 429, 5xx but those that say "never" (501, 505), and
/// a 403 that is a rate limit (GitHub answers its secondary limits with 403 and
/// `retry-after`, or with `x-ratelimit-remaining: 0`).
pub fn is_transient(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
        || (status == StatusCode::FORBIDDEN && is_rate_limited(headers))
}

/// Whether the headers of a refusal say it is a rate limit, not a permission.
pub fn is_rate_limited(headers: &HeaderMap) -> bool {
    headers.contains_key(header::RETRY_AFTER)
        || headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0")
}

/// The `Retry-After` of an answer, relative to now.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
}

/// A `Retry-After` value: delay-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        date.with_timezone(&chrono::Utc)
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "past"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(
                first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
                "{first:?}"
            );
            let third = policy.backoff(3);
            assert!(
                third >= Duration::from_millis(200) && third <= Duration::from_millis(400),
                "{third:?}"
            );
            assert!(policy.backoff(30) <= Duration::from_secs(1));
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(policy.delay(1, &headers), Duration::from_secs(1), "capped");
    }

    #[test]
    fn what_is_worth_retrying() {
        let none = HeaderMap::new();
        assert!(is_transient(StatusCode::BAD_GATEWAY, &none));
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS, &none));
        assert!(!is_transient(StatusCode::NOT_IMPLEMENTED, &none));
        assert!(!is_transient(StatusCode::NOT_FOUND, &none));
        assert!(!is_transient(StatusCode::FORBIDDEN, &none), "a permission");
        let mut limited = HeaderMap::new();
        limited.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert!(
            is_transient(StatusCode::FORBIDDEN, &limited),
            "GitHub's limit"
        );
        let mut secondary = HeaderMap::new();
        secondary.insert(header::RETRY_AFTER, "60".parse().unwrap());
        assert!(is_transient(StatusCode::FORBIDDEN, &secondary));
    }
}
