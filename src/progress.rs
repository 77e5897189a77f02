//! progress: tells a person how far long work has got, on stderr, never mixed into the report.
//! On a terminal: an indicatif bar per phase with rate and ETA. Elsewhere (CI logs): a plain
//! line per phase every few seconds and one when it ends, nothing that redraws. Silent with
//! `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::control::{Control, Wait};

/// Waits at least this long get a line of their own in a log (shorter ones would be noise).
const WAIT_LINE_AFTER: Duration = Duration::from_secs(5);

/// The bar on screen now, and the unit it shows when not waiting.
type CurrentBar = Arc<Mutex<Option<(indicatif::ProgressBar, &'static str)>>>;

/// How often a plain progress line is printed.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Bars,
    Lines,
}

/// Creates one progress display per phase.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
    /// Fold each phase's lines into a GitHub Actions log group (`::group::`).
    groups: bool,
    /// The bar of the phase under way (terminal only), where waits show.
    current: CurrentBar,
}

impl Progress {
    /// Bars on a terminal, lines elsewhere, nothing when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            groups: false,
            current: CurrentBar::default(),
        }
    }

    /// No output at all (library use, tests).
    pub fn hidden() -> Progress {
        Progress {
            mode: Mode::Off,
            groups: false,
            current: CurrentBar::default(),
        }
    }

    /// Shows the control's waits (rate limits, `Retry-After`, backoff, garbage collection):
    /// on a terminal as the bar's message, saying what it waits for and until when; in a log,
    /// one plain line for each wait longer than 5 s. Nothing with `--quiet`.
    pub fn show_waits(&self, control: &Control) {
        let mode = self.mode;
        let current = self.current.clone();
        // Tasks waiting side by side for the same thing (one quota) are one wait to a reader.
        let last_line: Mutex<Option<Wait>> = Mutex::new(None);
        control.observe_waits(Arc::new(move |wait: Option<&Wait>| {
            let bar = current
                .lock()
                .expect("the progress lock is never poisoned")
                .clone();
            match (mode, wait, bar) {
                (Mode::Bars, Some(wait), Some((bar, _))) => bar.set_message(wait.describe()),
                (Mode::Bars, None, Some((bar, unit))) => bar.set_message(unit),
                (Mode::Bars | Mode::Lines, Some(wait), _) if wait.duration >= WAIT_LINE_AFTER => {
                    let mut last = last_line
                        .lock()
                        .expect("the progress lock is never poisoned");
                    let same = last.as_ref().is_some_and(|before| {
                        before.reason == wait.reason
                            && (before.until - wait.until).num_seconds().abs() <= 2
                    });
                    if !same {
                        eprintln!("regsweep: {}", wait.describe());
                        *last = Some(wait.clone());
                    }
                }
                _ => {}
            }
        }));
    }

    /// In a GitHub Actions log (plain lines), each phase becomes a collapsible log group.
    pub fn with_log_groups(mut self, groups: bool) -> Progress {
        self.groups = groups && self.mode == Mode::Lines;
        self
    }

    /// Starts a phase: `name` (`discover`), the `unit` counted (`manifests`), the total if known.
    pub fn phase(&self, name: &'static str, unit: &'static str, total: u64) -> Phase {
        let state = Arc::new(State {
            done: AtomicU64::new(0),
            total: AtomicU64::new(total),
            finished: AtomicBool::new(false),
            started: Instant::now(),
            name,
            unit,
        });
        let mut phase = Phase {
            state: state.clone(),
            bar: None,
            ticker: None,
            group: self.groups,
        };
        match self.mode {
            Mode::Off => {}
            Mode::Bars => {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>9} [{bar:30}] {human_pos}/{human_len} {msg} ({rate}, eta {eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .with_key(
                        "rate",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}/s", thousands(state.per_sec().round() as u64));
                        },
                    )
                    .progress_chars("=> "),
                );
                bar.set_prefix(name);
                bar.set_message(unit);
                *self
                    .current
                    .lock()
                    .expect("the progress lock is never poisoned") = Some((bar.clone(), unit));
                phase.bar = Some(bar);
            }
            Mode::Lines => {
                if self.groups {
                    eprintln!("::group::regsweep {name}");
                }
                // A plain thread, not a task: progress must not depend on the runtime's load.
                let ticker_state = state.clone();
                phase.ticker = Some(std::thread::spawn(move || {
                    let mut last = Instant::now();
                    while !ticker_state.finished.load(Ordering::SeqCst) {
                        // Woken at once by `end`, so finishing a phase costs no waiting.
                        std::thread::park_timeout(Duration::from_millis(250));
                        if last.elapsed() >= LINE_INTERVAL {
                            last = Instant::now();
                            eprintln!("{}", ticker_state.line(false));
                        }
                    }
                }));
            }
        }
        phase
    }
}

#[derive(Debug)]
struct State {
    done: AtomicU64,
    total: AtomicU64,
    finished: AtomicBool,
    started: Instant,
    name: &'static str,
    unit: &'static str,
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl State {
    fn line(&self, done: bool) -> String {
        let count = self.done.load(Ordering::SeqCst);
        let total = self.total.load(Ordering::SeqCst);
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            (count as f64 / seconds).round() as u64
        } else {
            0
        };
        let timing = if done {
            format!(" in {seconds:.1}s")
        } else {
            String::new()
        };
        format!(
            "{}: {}/{} {}{timing} ({}/s)",
            self.name,
            thousands(count),
            thousands(total),
            self.unit,
            thousands(rate)
        )
    }
}

/// One phase's progress. Cheap to share between tasks by reference.
#[derive(Debug)]
pub struct Phase {
    state: Arc<State>,
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
    group: bool,
}

impl Phase {
    /// Counts `n` more units done.
    pub fn inc(&self, n: u64) {
        self.state.done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Adds to the total (when work is discovered as it goes).
    pub fn grow(&self, n: u64) {
        let total = self.state.total.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Ends the phase: the bar is cleared, a plain final line printed in line mode.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if self.state.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(ticker) = self.ticker.take() {
            ticker.thread().unpark();
            let _ = ticker.join();
            eprintln!("{}", self.state.line(true));
            if self.group {
                eprintln!("::endgroup::");
            }
        }
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn plain_lines_say_phase_count_total_unit_and_rate() {
        let phase = Progress::hidden().phase("discover", "manifests", 20_000);
        phase.inc(12_345);
        let line = phase.state.line(false);
        assert!(
            line.starts_with("discover: 12,345/20,000 manifests ("),
            "{line}"
        );
        assert!(line.ends_with("/s)"), "{line}");
        phase.grow(5);
        assert!(phase.state.line(true).contains("/20,005 manifests in "));
    }
}
