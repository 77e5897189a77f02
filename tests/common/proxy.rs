//! A fault-injecting HTTP proxy for tests, between regsweep and the real registry. It forwards
//! every request, except that rules (by method and path, a number of times or a seeded
//! fraction of requests) make it answer 5xx or 429, drop the connection, or stall. It can slow
//! DELETEs down and pause at the first DELETE until the test says go, so that a test can push
//! to the registry "during the run". Listens on 127.0.0.1 only; every loop is bounded by the
//! connections the client makes.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do instead of forwarding.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (500, 502, 503…).
    Status(u16),
    /// Answer 429 with `Retry-After: <seconds>`.
    TooManyRequests(u64),
    /// Close the connection without answering.
    Drop,
    /// Hold the connection this long, then close it without answering.
    Stall(Duration),
}

/// When to inject a fault.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Only requests with this method (`DELETE`), or any.
    pub method: Option<String>,
    /// Only requests whose path contains this, or any.
    pub path_contains: Option<String>,
    /// The fault.
    pub fault: Fault,
    /// How many more times it applies (`None`: always, within `fraction`).
    pub times: Option<usize>,
    /// The fraction of matching requests it applies to (1.0: all).
    pub fraction: f64,
}

impl Rule {
    /// A rule for every request, always.
    pub fn always(fault: Fault) -> Rule {
        Rule {
            method: None,
            path_contains: None,
            fault,
            times: None,
            fraction: 1.0,
        }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    rng: u64,
    counts: HashMap<String, usize>,
    faults_injected: usize,
}

/// The first DELETE's hold: "arrived" to the test, "go" from it.
type PauseSlot = Arc<Mutex<Option<(Sender<()>, Receiver<()>)>>>;

/// The proxy; stops accepting when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    delete_delay: Arc<Mutex<Duration>>,
    pause: PauseSlot,
    _listening: super::http1::Listening,
}

impl FaultProxy {
    /// A proxy in front of `upstream` (plain http), with a seed for the fraction rules.
    pub fn start(upstream: &str, seed: u64) -> FaultProxy {
        let state = Arc::new(Mutex::new(State {
            rng: seed.max(1),
            ..State::default()
        }));
        let delete_delay = Arc::new(Mutex::new(Duration::ZERO));
        let pause: PauseSlot = Arc::new(Mutex::new(None));
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let upstream = upstream.trim_end_matches('/').to_string();
        let listening = {
            let (state, delete_delay, pause) = (state.clone(), delete_delay.clone(), pause.clone());
            super::http1::listen(move |stream| {
                let _ = serve(stream, &state, &delete_delay, &pause, &client, &upstream);
            })
        };
        FaultProxy {
            url: listening.url.clone(),
            state,
            delete_delay,
            pause,
            _listening: listening,
        }
    }

    /// Adds a fault rule.
    pub fn add_rule(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Sleeps this long before forwarding each DELETE.
    pub fn slow_deletes(&self, delay: Duration) {
        *self.delete_delay.lock().unwrap() = delay;
    }

    /// Holds the first DELETE that arrives until `release` is called; returns a receiver that
    /// gets a message when it arrives.
    pub fn pause_at_first_delete(&self) -> PauseHandle {
        let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        *self.pause.lock().unwrap() = Some((arrived_tx, go_rx));
        PauseHandle {
            arrived: arrived_rx,
            go: go_tx,
        }
    }

    /// Requests seen, by method.
    pub fn count(&self, method: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> usize {
        self.state.lock().unwrap().faults_injected
    }
}

/// The test's side of a pause at the first DELETE.
pub struct PauseHandle {
    arrived: Receiver<()>,
    go: Sender<()>,
}

impl PauseHandle {
    /// Waits (at most 60 s) for the first DELETE to arrive.
    pub fn wait_for_first_delete(&self) {
        self.arrived
            .recv_timeout(Duration::from_secs(60))
            .expect("no DELETE reached the proxy within 60 s");
    }

    /// Lets the held DELETE (and all later ones) through.
    pub fn release(self) {
        let _ = self.go.send(());
    }
}

fn next_random(state: &mut State) -> f64 {
    // xorshift64: deterministic for a seed, good enough to pick requests.
    let mut x = state.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.rng = x;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn pick_fault(state: &mut State, method: &str, path: &str) -> Option<Fault> {
    *state.counts.entry(method.to_string()).or_default() += 1;
    for i in 0..state.rules.len() {
        let rule = &state.rules[i];
        let matches = rule.method.as_deref().is_none_or(|m| m == method)
            && rule
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && rule.times != Some(0);
        if !matches {
            continue;
        }
        let fraction = rule.fraction;
        if fraction < 1.0 && next_random(state) >= fraction {
            continue;
        }
        let rule = &mut state.rules[i];
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
        }
        state.faults_injected += 1;
        return Some(state.rules[i].fault.clone());
    }
    None
}

fn serve(
    stream: TcpStream,
    state: &Mutex<State>,
    delete_delay: &Mutex<Duration>,
    pause: &Mutex<Option<(Sender<()>, Receiver<()>)>>,
    client: &reqwest::blocking::Client,
    upstream: &str,
) -> std::io::Result<()> {
    let Some(request) = super::http1::read_request(&stream)? else {
        return Ok(());
    };
    let mut writer = stream;
    let super::http1::RawRequest {
        method,
        target,
        headers,
        body,
    } = request;

    let fault = pick_fault(&mut state.lock().unwrap(), &method, &target);
    match fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Stall(duration)) => {
            std::thread::sleep(duration);
            return Ok(());
        }
        Some(Fault::Status(status)) => {
            let body = br#"{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}"#;
            return super::http1::write_answer(
                &mut writer,
                status,
                &[("content-type".into(), "application/json".into())],
                body,
                None,
            );
        }
        Some(Fault::TooManyRequests(seconds)) => {
            return super::http1::write_answer(
                &mut writer,
                429,
                &[("retry-after".into(), seconds.to_string())],
                b"",
                None,
            );
        }
        None => {}
    }
    if method == "DELETE" {
        let held = pause.lock().unwrap().take();
        if let Some((arrived, go)) = held {
            let _ = arrived.send(());
            let _ = go.recv_timeout(Duration::from_secs(60));
        }
        let delay = *delete_delay.lock().unwrap();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }

    let mut request = client.request(method.parse().unwrap(), format!("{upstream}{target}"));
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        if !matches!(
            lower.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            request = request.header(name, value);
        }
    }
    let response = match request.body(body).send() {
        Ok(response) => response,
        Err(_) => {
            return super::http1::write_answer(&mut writer, 502, &[], b"upstream unreachable", None)
        }
    };
    let status = response.status().as_u16();
    let upstream_length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let forwarded: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "connection" | "content-length" | "transfer-encoding"
            )
        })
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let body = response.bytes().unwrap_or_default();
    let head_length = (method == "HEAD").then_some(upstream_length).flatten();
    super::http1::write_answer(&mut writer, status, &forwarded, &body, head_length)
}
