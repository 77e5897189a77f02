//! pacing: keeps a REST API's rate limits so that it never has to say 429. Learns the quota
//! from the answers' `*-limit`/`*-remaining`/`*-reset` headers (DigitalOcean and GitLab
//! `ratelimit-*`, GitHub `x-ratelimit-*`), keeps the limits no header shows (DigitalOcean's 250
//! requests a minute, GitHub's 900 points a minute per endpoint) with a local sliding window,
//! and holds every request back while a `retry-after` runs. It waits only when a budget is
//! spent, and every wait goes through the run's control (stop signal, time budget, shown).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use crate::control::{clock, Control, Halt};
use crate::registry::retry::{is_rate_limited, retry_after};

/// How an API limits its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The API, for messages: `DigitalOcean`, `GitHub`.
    pub api: &'static str,
    /// The quota its headers describe, for messages: `hourly quota`.
    pub quota: &'static str,
    /// The headers' prefix: `ratelimit-` or `x-ratelimit-`.
    pub header_prefix: &'static str,
    /// A limit no header shows, kept locally: points per window, per endpoint.
    pub window: Option<(u64, Duration)>,
    /// A request's endpoint (what a window counts per) and its cost in points.
    pub cost: fn(&Method, &Url) -> (String, u64),
}

/// Every request is one point against one endpoint (DigitalOcean's 250 a minute).
pub fn one_point(_: &Method, _: &Url) -> (String, u64) {
    (String::new(), 1)
}

#[derive(Debug, Default)]
struct State {
    /// `*-limit`.
    limit: Option<u64>,
    /// `*-remaining` of the newest answer of the current window.
    remaining: Option<u64>,
    /// `*-reset` (Unix seconds) of that answer.
    reset_epoch: Option<u64>,
    reset_at: Option<Instant>,
    /// Requests sent since that answer, or in flight when it came (counted as spent).
    spent_since: u64,
    /// Requests sent and not answered yet.
    in_flight: u64,
    /// Points spent per endpoint by answered requests, with when the answer came, for the
    /// local window. The server counted each request somewhere between its sending and its
    /// answer: counting from the answer keeps the local window behind the server's, never
    /// ahead of it, however long requests queue on the way.
    recent: HashMap<String, VecDeque<(Instant, u64)>>,
    /// Points of requests sent and not answered yet, per endpoint: in the window until
    /// their answer moves them to `recent`.
    pending: HashMap<String, u64>,
    /// No request before this (a `retry-after` is running).
    blocked_until: Option<Instant>,
}

/// One API's pacing, shared by every request to it.
#[derive(Debug)]
pub struct Pacer {
    limits: Limits,
    state: Mutex<State>,
    /// Requests sent, for the benchmark and the log.
    pub requests: AtomicU64,
    /// Milliseconds spent waiting for the budget (never while there was some).
    pub waited_ms: AtomicU64,
}

/// How long to wait when only answers still to come can free the window.
const PENDING_POLL: Duration = Duration::from_millis(100);

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn wall_clock(at: Instant) -> DateTime<Utc> {
    let ahead = at.saturating_duration_since(Instant::now());
    Utc::now() + chrono::Duration::from_std(ahead).unwrap_or_default()
}

impl Pacer {
    /// A pacer for an API limited as `limits` says.
    pub fn new(limits: Limits) -> Pacer {
        Pacer {
            limits,
            state: Mutex::default(),
            requests: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// What the wait before a request to `endpoint` costing `points` is, and why; `None`
    /// books the request.
    fn next_wait(
        &self,
        state: &mut State,
        endpoint: &str,
        points: u64,
    ) -> Option<(Duration, String)> {
        let now = Instant::now();
        let api = self.limits.api;
        let mut waits: Vec<(Duration, String)> = Vec::new();
        if let Some(until) = state.blocked_until.filter(|u| *u > now) {
            waits.push((until - now, format!("{api}'s retry-after")));
        }
        match (state.remaining, state.reset_at) {
            (Some(remaining), Some(reset_at))
                if state.spent_since >= remaining && reset_at > now =>
            {
                waits.push((
                    reset_at - now,
                    format!(
                        "{api}'s {} (resets {})",
                        self.limits.quota,
                        clock(wall_clock(reset_at))
                    ),
                ));
            }
            (Some(remaining), Some(_)) if state.spent_since >= remaining => {
                // The quota has reset since: the whole limit again.
                state.remaining = state.limit;
                state.spent_since = state.in_flight;
            }
            _ => {}
        }
        if let Some((limit, period)) = self.limits.window {
            let recent = state.recent.entry(endpoint.to_string()).or_default();
            while recent
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= period)
            {
                recent.pop_front();
            }
            let pending = state.pending.get(endpoint).copied().unwrap_or(0);
            let spent: u64 = recent.iter().map(|(_, p)| p).sum::<u64>() + pending;
            if spent + points > limit {
                // Until enough of the oldest answered points leave the window; when only
                // answers still to come can free enough, a moment for them to come.
                let mut freed = 0;
                let until = recent.iter().find_map(|(t, p)| {
                    freed += p;
                    (spent - freed + points <= limit).then_some(*t + period)
                });
                let per = if endpoint.is_empty() {
                    String::new()
                } else {
                    format!(" for {endpoint}")
                };
                waits.push((
                    until.map_or(PENDING_POLL, |u| u.saturating_duration_since(now)),
                    format!("{api}'s limit of {limit} a minute{per}"),
                ));
            }
        }
        let longest = waits.into_iter().max_by_key(|(d, _)| *d);
        if longest.is_none() {
            state.spent_since += 1;
            state.in_flight += 1;
            if self.limits.window.is_some() {
                *state.pending.entry(endpoint.to_string()).or_default() += points;
            }
        }
        longest
    }

    /// Waits until a request may go without crossing a limit, then books it. The wait is
    /// the control's: cut short by stop, refused past the budget, shown to the user.
    pub async fn acquire(&self, method: &Method, url: &Url, control: &Control) -> Result<(), Halt> {
        let (endpoint, points) = (self.limits.cost)(method, url);
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                self.next_wait(&mut state, &endpoint, points)
            };
            let Some((wait, reason)) = wait else {
                self.requests.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            };
            tracing::info!(?wait, reason, "rate limit: waiting");
            self.waited_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            // A little past the reset: the server's clock counts whole seconds.
            control
                .wait(wait + Duration::from_millis(50), &reason)
                .await?;
        }
    }

    /// A request to `url` ended, answered or not: its points count in the local window
    /// from now on.
    fn answered(&self, state: &mut State, method: &Method, url: &Url) {
        state.in_flight = state.in_flight.saturating_sub(1);
        if self.limits.window.is_some() {
            let (endpoint, points) = (self.limits.cost)(method, url);
            if let Some(pending) = state.pending.get_mut(&endpoint) {
                *pending = pending.saturating_sub(points);
            }
            state
                .recent
                .entry(endpoint)
                .or_default()
                .push_back((Instant::now(), points));
        }
    }

    /// A request ended without an answer (the server may still have counted it).
    pub async fn settle(&self, method: &Method, url: &Url) {
        let mut state = self.state.lock().await;
        self.answered(&mut state, method, url);
    }

    /// Records what an answer says of the limits. An answer of the current window that
    /// shows more budget than a newer one already did (answers overtake each other) is
    /// ignored; a 429 (or a rate-limit 403) holds every request back for its `retry-after`.
    pub async fn observe(
        &self,
        method: &Method,
        url: &Url,
        status: StatusCode,
        headers: &HeaderMap,
    ) {
        let prefix = self.limits.header_prefix;
        let limit = header_u64(headers, &format!("{prefix}limit"));
        let remaining = header_u64(headers, &format!("{prefix}remaining"));
        let reset = header_u64(headers, &format!("{prefix}reset"));
        let mut state = self.state.lock().await;
        self.answered(&mut state, method, url);
        let limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && is_rate_limited(headers));
        if limited {
            if let Some(wait) = retry_after(headers) {
                let until = Instant::now() + wait;
                state.blocked_until = Some(state.blocked_until.map_or(until, |b| b.max(until)));
            }
        }
        let (Some(remaining), Some(reset)) = (remaining, reset) else {
            return;
        };
        let same_window = state.reset_epoch == Some(reset);
        if same_window && state.remaining.is_some_and(|r| remaining >= r) {
            return;
        }
        let now_epoch = Utc::now().timestamp().max(0) as u64;
        state.limit = limit.or(state.limit);
        state.remaining = Some(remaining);
        state.reset_epoch = Some(reset);
        state.reset_at =
            Some(Instant::now() + Duration::from_secs(reset.saturating_sub(now_epoch)));
        state.spent_since = state.in_flight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(window: Option<(u64, Duration)>) -> Limits {
        Limits {
            api: "Test",
            quota: "hourly quota",
            header_prefix: "ratelimit-",
            window,
            cost: |method, _| {
                if method == Method::DELETE {
                    ("DELETE".into(), 5)
                } else {
                    ("GET".into(), 1)
                }
            },
        }
    }

    fn url() -> Url {
        "http://x/a".parse().unwrap()
    }

    fn headers(remaining: u64, reset_in: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", "100".parse().unwrap());
        headers.insert(
            "ratelimit-remaining",
            remaining.to_string().parse().unwrap(),
        );
        let reset = Utc::now().timestamp() + reset_in;
        headers.insert("ratelimit-reset", reset.to_string().parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn a_spent_quota_is_waited_for_and_named() {
        let pacer = Pacer::new(limits(None));
        let mut state = State::default();
        assert!(
            pacer.next_wait(&mut state, "", 1).is_none(),
            "no answer yet"
        );
        drop(state);
        pacer
            .observe(&Method::GET, &url(), StatusCode::OK, &headers(0, 3600))
            .await;
        let mut state = pacer.state.lock().await;
        let (wait, reason) = pacer.next_wait(&mut state, "", 1).unwrap();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(
            reason.starts_with("Test's hourly quota (resets "),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn points_per_endpoint_fill_the_window() {
        let pacer = Pacer::new(limits(Some((10, Duration::from_secs(60)))));
        let delete: Url = "http://x/a".parse().unwrap();
        let mut state = pacer.state.lock().await;
        assert!(pacer.next_wait(&mut state, "DELETE", 5).is_none());
        assert!(pacer.next_wait(&mut state, "DELETE", 5).is_none());
        // Both in flight: only their answers can free the window, so a short wait.
        let (wait, _) = pacer.next_wait(&mut state, "DELETE", 5).unwrap();
        assert_eq!(wait, PENDING_POLL);
        // Answered: they count for a whole window from their answers.
        pacer.answered(&mut state, &Method::DELETE, &delete);
        pacer.answered(&mut state, &Method::DELETE, &delete);
        let (wait, reason) = pacer.next_wait(&mut state, "DELETE", 5).unwrap();
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        assert!(
            reason.contains("limit of 10 a minute for DELETE"),
            "{reason}"
        );
        // Another endpoint has its own window.
        assert!(pacer.next_wait(&mut state, "GET", 1).is_none());
        drop(state);
        let control = Control::new(None);
        control.stop();
        assert_eq!(
            pacer.acquire(&Method::DELETE, &delete, &control).await,
            Err(Halt::Stopped)
        );
    }

    /// GitHub's primary limit (`x-ratelimit-remaining: 0`) follows the same rule as
    /// DigitalOcean's hourly quota: waited for when the budget allows, else the run ends now,
    /// naming when the limit resets.
    #[tokio::test]
    async fn a_spent_primary_limit_past_the_budget_ends_the_run_with_its_reset() {
        let pacer = Pacer::new(Limits {
            api: "GitHub",
            quota: "primary rate limit",
            header_prefix: "x-ratelimit-",
            window: None,
            cost: one_point,
        });
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", "5000".parse().unwrap());
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = Utc::now().timestamp() + 1800;
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        pacer
            .observe(&Method::GET, &url(), StatusCode::OK, &headers)
            .await;
        let control = Control::new(Some(Duration::from_secs(60)));
        let url: Url = "https://api.github.com/user".parse().unwrap();
        let refused = pacer.acquire(&Method::GET, &url, &control).await;
        let Err(Halt::OutOfTime {
            waiting_for: Some(reason),
        }) = refused
        else {
            panic!("{refused:?}");
        };
        assert!(
            reason.starts_with("GitHub's primary rate limit (resets "),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_retry_after_holds_every_request() {
        let pacer = Pacer::new(limits(None));
        let mut limited = HeaderMap::new();
        limited.insert("retry-after", "30".parse().unwrap());
        pacer
            .observe(
                &Method::GET,
                &url(),
                StatusCode::TOO_MANY_REQUESTS,
                &limited,
            )
            .await;
        let mut state = pacer.state.lock().await;
        let (wait, reason) = pacer.next_wait(&mut state, "", 1).unwrap();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        assert_eq!(reason, "Test's retry-after");
    }
}
