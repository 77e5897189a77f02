//! control: the run's stop signal and time budget. Every request and every wait of the HTTP
//! layer (rate-limit pacing, `Retry-After`, backoff, garbage-collection polling) asks it first;
//! it sends nothing and decides nothing about the plan.
//!
//! Stop: the first SIGINT/SIGTERM sets it. A request not yet sent is not sent, a wait ends at
//! once; requests already on the wire finish (bounded by the HTTP timeout).
//!
//! Budget (`REGSWEEP_MAX_DURATION`): counted from the start of the run. Discovery and planning
//! send their requests whatever it says; once deleting starts (`enforce`), a request that would
//! end after the deadline (judged by how long requests have been taking) is not started. In
//! every phase, a wait that would end after the deadline ends the run instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Why a request or a wait did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    /// A signal asked the run to stop.
    #[error("stopped by a signal")]
    Stopped,
    /// The time budget is spent, or a wait would end after it.
    #[error("time budget spent{}", waiting_for.as_ref().map(|w| format!(" (it would have waited for {w})")).unwrap_or_default())]
    OutOfTime {
        /// What the run would have had to wait for, with when it ends.
        waiting_for: Option<String>,
    },
}

/// A wait, as shown to the person watching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// What it waits for: `DigitalOcean's hourly quota (resets 15:57 UTC)`.
    pub reason: String,
    /// How long.
    pub duration: Duration,
    /// When it ends.
    pub until: DateTime<Utc>,
}

impl Wait {
    /// `waiting 58m for DigitalOcean's hourly quota (resets 15:57 UTC)`.
    pub fn describe(&self) -> String {
        // A quota's reason names its reset already; any other says when the wait ends.
        let until = if self.reason.contains("(resets ") {
            String::new()
        } else {
            format!(" (until {})", self.until.format("%H:%M:%S UTC"))
        };
        format!(
            "waiting {} for {}{until}",
            short_duration(self.duration),
            self.reason
        )
    }
}

/// `58m`, `1h 5m`, `12s`, `450ms`: a duration as a person reads it.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{}ms", duration.as_millis()),
        1..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m", seconds.div_ceil(60)),
        _ => {
            let minutes = seconds.div_ceil(60);
            format!("{}h {}m", minutes / 60, minutes % 60)
        }
    }
}

/// Told when a wait starts (`Some`) and ends (`None`).
pub type WaitObserver = Arc<dyn Fn(Option<&Wait>) + Send + Sync>;

struct Inner {
    stopped: AtomicBool,
    notify: Notify,
    started: Instant,
    budget: Option<Duration>,
    enforcing: AtomicBool,
    observer: Mutex<Option<WaitObserver>>,
    /// How long a request has been taking (a moving average), to judge whether the next one
    /// would end after the deadline.
    typical_request: Mutex<Option<Duration>>,
    /// The first halt handed out, so that a caller whose error lost it can still tell.
    halted: Mutex<Option<Halt>>,
}

/// The run's control, shared by every client and task (clones share it).
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("stopped", &self.is_stopped())
            .field("budget", &self.inner.budget)
            .finish()
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new(None)
    }
}

impl Control {
    /// A control whose budget (if any) counts from now.
    pub fn new(budget: Option<Duration>) -> Control {
        Control {
            inner: Arc::new(Inner {
                stopped: AtomicBool::new(false),
                notify: Notify::new(),
                started: Instant::now(),
                budget,
                enforcing: AtomicBool::new(false),
                observer: Mutex::new(None),
                typical_request: Mutex::new(None),
                halted: Mutex::new(None),
            }),
        }
    }

    /// Asks everything to stop: no request is started and every wait ends.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Resolves when stop is asked (at once if it was).
    pub async fn stopped(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }

    /// From now on the budget applies (deleting starts).
    pub fn enforce(&self) {
        self.inner.enforcing.store(true, Ordering::SeqCst);
    }

    /// The configured budget.
    pub fn budget(&self) -> Option<Duration> {
        self.inner.budget
    }

    /// What is left of the budget; `None` without one.
    pub fn remaining(&self) -> Option<Duration> {
        let budget = self.inner.budget?;
        Some(budget.saturating_sub(self.inner.started.elapsed()))
    }

    /// Whether the next request would end after the deadline (checked once deleting starts).
    pub fn is_out_of_time(&self) -> bool {
        if !self.inner.enforcing.load(Ordering::SeqCst) {
            return false;
        }
        let typical = self
            .inner
            .typical_request
            .lock()
            .expect("the timing lock is never poisoned")
            .unwrap_or_default();
        self.remaining().is_some_and(|left| left <= typical)
    }

    /// Records how long a request took, for judging the next one.
    pub fn request_took(&self, took: Duration) {
        let mut typical = self
            .inner
            .typical_request
            .lock()
            .expect("the timing lock is never poisoned");
        *typical = Some(match *typical {
            None => took,
            Some(before) => (before * 3 + took) / 4,
        });
    }

    /// Who hears of waits (the progress display).
    pub fn observe_waits(&self, observer: WaitObserver) {
        *self
            .inner
            .observer
            .lock()
            .expect("the observer lock is never poisoned") = Some(observer);
    }

    fn observer(&self) -> Option<WaitObserver> {
        self.inner
            .observer
            .lock()
            .expect("the observer lock is never poisoned")
            .clone()
    }

    /// The first halt this control handed out, if any (a request or a wait it refused).
    pub fn halted(&self) -> Option<Halt> {
        self.inner
            .halted
            .lock()
            .expect("the halt lock is never poisoned")
            .clone()
    }

    fn halt(&self, halt: Halt) -> Halt {
        self.inner
            .halted
            .lock()
            .expect("the halt lock is never poisoned")
            .get_or_insert(halt)
            .clone()
    }

    /// Before a request: `Err` when it must not be sent.
    pub fn check(&self) -> Result<(), Halt> {
        if self.is_stopped() {
            return Err(self.halt(Halt::Stopped));
        }
        if self.is_out_of_time() {
            return Err(self.halt(Halt::OutOfTime { waiting_for: None }));
        }
        Ok(())
    }

    /// Waits `duration` for `reason` (shown to the user), unless stop is asked meanwhile or
    /// the wait would end after the budget: then `Err` at once.
    pub async fn wait(&self, duration: Duration, reason: &str) -> Result<(), Halt> {
        self.check()?;
        if duration.is_zero() {
            return Ok(());
        }
        let wait = Wait {
            reason: reason.to_string(),
            duration,
            until: Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default(),
        };
        if self.remaining().is_some_and(|left| duration > left) {
            return Err(self.halt(Halt::OutOfTime {
                waiting_for: Some(wait.reason),
            }));
        }
        let observer = self.observer();
        if let Some(observer) = &observer {
            observer(Some(&wait));
        }
        let ended = tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.stopped() => Err(self.halt(Halt::Stopped)),
        };
        if let Some(observer) = &observer {
            observer(None);
        }
        ended
    }
}

/// `15:57 UTC`, for a reset time in a message.
pub fn clock(time: DateTime<Utc>) -> String {
    time.format("%H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_read_them() {
        assert_eq!(short_duration(Duration::from_millis(450)), "450ms");
        assert_eq!(short_duration(Duration::from_secs(12)), "12s");
        assert_eq!(short_duration(Duration::from_secs(58 * 60 - 10)), "58m");
        assert_eq!(short_duration(Duration::from_secs(3900)), "1h 5m");
    }

    #[tokio::test]
    async fn a_stop_ends_a_wait_at_once() {
        let control = Control::new(None);
        let stopper = control.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopper.stop();
        });
        let started = Instant::now();
        let waited = control.wait(Duration::from_secs(60), "a test").await;
        assert_eq!(waited, Err(Halt::Stopped));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(control.check(), Err(Halt::Stopped));
    }

    #[tokio::test]
    async fn the_budget_refuses_waits_past_it_and_requests_once_enforced() {
        let control = Control::new(Some(Duration::from_secs(2)));
        assert!(control.remaining().unwrap() <= Duration::from_secs(2));
        // Requests that would end after the deadline are refused once deleting starts.
        control.request_took(Duration::from_secs(5));
        assert_eq!(control.check(), Ok(()), "discovery sends its requests");
        control.enforce();
        assert_eq!(control.check(), Err(Halt::OutOfTime { waiting_for: None }));
        // A wait past the deadline ends the run at once, naming what it waited for.
        let control = Control::new(Some(Duration::from_secs(2)));
        let started = Instant::now();
        let waited = control
            .wait(
                Duration::from_secs(3600),
                "the hourly quota (resets 15:57 UTC)",
            )
            .await;
        assert_eq!(
            waited,
            Err(Halt::OutOfTime {
                waiting_for: Some("the hourly quota (resets 15:57 UTC)".into())
            })
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once"
        );
        assert!(control
            .wait(Duration::from_millis(10), "short")
            .await
            .is_ok());
    }

    fn seen_until(seen: &Arc<Mutex<Vec<Option<String>>>>) -> String {
        let first = seen.lock().unwrap()[0].clone().unwrap();
        first
            .rsplit("until ")
            .next()
            .unwrap()
            .trim_end_matches(')')
            .to_string()
    }

    #[tokio::test]
    async fn waits_are_told_to_the_observer() {
        let control = Control::new(None);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        control.observe_waits(Arc::new(move |wait: Option<&Wait>| {
            log.lock().unwrap().push(wait.map(Wait::describe));
        }));
        control
            .wait(Duration::from_millis(5), "a test")
            .await
            .unwrap();
        let until = seen_until(&seen);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Some(format!("waiting 5ms for a test (until {until})")),
                None
            ]
        );
    }
}
