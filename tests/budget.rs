//! Issue 20: a run that fits its time. `REGSWEEP_MAX_DURATION` ends a run cleanly (exit 3)
//! before a deletion or a wait would cross it; every wait (the hourly quota here) is cut short
//! by a signal and shown as one line in a log; a second signal exits at once. Against the fake
//! DigitalOcean API over the real registry. No sleep in these tests is longer than a few
//! seconds: a run that waited for the quota would fail them by the time it took.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::digitalocean::{FakeDo, FakeDoOptions};
use common::scenario::push_history;
use common::{regsweep, spawn_regsweep, Image, TestRegistry};

/// `app`: `latest` pushed six times; five untagged manifests to delete.
fn six_pushes(registry: &TestRegistry) {
    for i in 0..6 {
        registry.push_image("app", Some("latest"), &Image::new(&format!("v{i}"), 10 - i));
    }
}

/// An hourly quota of five requests: discovery (three) and the re-check and one deletion
/// spend it, and the next request would have to wait an hour.
fn quota_of_five() -> FakeDoOptions {
    FakeDoOptions {
        rate_limit: (5, Duration::from_secs(3600)),
        ..FakeDoOptions::default()
    }
}

fn as_refs<'a>(env: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Standard error, line by line as it comes, on a channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits up to `within` for a line containing `text`; every line read on the way is kept.
fn wait_for(lines: &mpsc::Receiver<String>, text: &str, within: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
            let found = line.contains(text);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!(
        "no line with `{text}` within {within:?}:\n{}",
        seen.join("\n")
    );
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits up to `within` for the child to exit; its exit code.
fn exit_within(child: &mut Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("regsweep did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_spent_quota_beyond_the_budget_ends_the_run_now_and_says_when_it_resets() {
    let registry = TestRegistry::start();
    six_pushes(&registry);
    let fake = FakeDo::start(&registry, quota_of_five());
    let env = fake.env(
        &registry,
        &[("REGSWEEP_MAX_DURATION", "3s"), ("REGSWEEP_GC", "false")],
    );
    let started = Instant::now();
    let run = regsweep(&as_refs(&env), &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: time budget spent: "))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains("4 of 5 deletions left; the next run goes on")
            && line.contains("DigitalOcean's hourly quota (resets "),
        "{line}"
    );
    // The report says what is done and what is left, and the image is whole.
    assert!(
        run.stdout.contains("deleted:      1 of 5 planned"),
        "{}",
        run.stdout
    );
    assert!(registry.pull_problems("app", "latest").is_empty());
    assert_eq!(
        fake.state.lock().unwrap().throttled,
        0,
        "no request past the quota"
    );
}

#[test]
fn a_signal_ends_a_quota_wait_at_once_and_the_wait_is_one_line() {
    let registry = TestRegistry::start();
    six_pushes(&registry);
    let fake = FakeDo::start(&registry, quota_of_five());
    let env = fake.env(&registry, &[("REGSWEEP_GC", "false")]);
    let mut child = spawn_regsweep(&as_refs(&env), &[]);
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    wait_for(
        &lines,
        "regsweep: waiting ",
        Duration::from_secs(30),
        &mut seen,
    );
    let wait = seen.last().unwrap().clone();
    assert!(
        wait.contains(" for DigitalOcean's hourly quota (resets ") && wait.ends_with(" UTC)"),
        "{wait}"
    );
    let signalled = Instant::now();
    signal(&child, "TERM");
    let code = exit_within(&mut child, Duration::from_secs(2));
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(code, 3);
    seen.extend(lines.try_iter());
    let waits = seen
        .iter()
        .filter(|l| l.contains("regsweep: waiting "))
        .count();
    assert_eq!(waits, 1, "one line per wait:\n{}", seen.join("\n"));
    assert!(
        seen.iter()
            .any(|l| l.contains("interrupted: deletions in flight finished")),
        "{}",
        seen.join("\n")
    );
    assert!(registry.pull_problems("app", "latest").is_empty());
}

#[test]
fn a_second_signal_during_a_slow_request_exits_at_once() {
    let registry = TestRegistry::start();
    six_pushes(&registry);
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            delete_delay: Some(Duration::from_secs(6)),
            ..FakeDoOptions::default()
        },
    );
    let env = fake.env(&registry, &[("REGSWEEP_GC", "false")]);
    let mut child = spawn_regsweep(&as_refs(&env), &[]);
    let lines = stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.state.lock().unwrap().deletes == 0 {
        assert!(Instant::now() < deadline, "no DELETE reached the API");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "TERM");
    let mut seen = Vec::new();
    wait_for(
        &lines,
        "regsweep: stopping",
        Duration::from_secs(5),
        &mut seen,
    );
    // The first signal lets the slow request finish; the second does not wait for it.
    let second = Instant::now();
    signal(&child, "INT");
    let code = exit_within(&mut child, Duration::from_secs(2));
    assert!(second.elapsed() < Duration::from_secs(2));
    assert_eq!(code, 130, "{}", seen.join("\n"));
}

#[test]
fn a_backlog_drains_over_budgeted_runs_to_the_end_state_of_one_run() {
    let registry = TestRegistry::start();
    let history = push_history(&registry);
    let fake = FakeDo::start(
        &registry,
        FakeDoOptions {
            delete_delay: Some(Duration::from_millis(500)),
            ..FakeDoOptions::default()
        },
    );
    let budgeted = fake.env(
        &registry,
        &[
            ("REGSWEEP_MAX_DURATION", "3s"),
            ("REGSWEEP_GC", "false"),
            ("REGSWEEP_CONCURRENCY", "2"),
        ],
    );
    let mut left_after = Vec::new();
    for night in 1..=2 {
        let run = regsweep(&as_refs(&budgeted), &[]);
        history.assert_kept_pullable(&registry);
        if run.code == 0 {
            left_after.push(0);
            continue;
        }
        assert_eq!(run.code, 3, "night {night}: {}\n{}", run.stdout, run.stderr);
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error: time budget spent"))
            .unwrap_or_else(|| panic!("night {night}: {}", run.stderr));
        assert!(line.contains("the next run goes on"), "{line}");
        left_after.push(
            history
                .deleted
                .iter()
                .filter(|(r, d)| registry.exists(r, d))
                .count(),
        );
    }
    assert!(
        left_after[0] > 0,
        "the first budgeted run deleted everything: the backlog was not larger than the budget"
    );
    let unbudgeted = fake.env(&registry, &[("REGSWEEP_GC", "false")]);
    let last = regsweep(&as_refs(&unbudgeted), &[]);
    assert_eq!(last.code, 0, "{}\n{}", last.stdout, last.stderr);
    history.assert_applied(&registry);
}
