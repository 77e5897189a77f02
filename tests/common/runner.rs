//! runner: runs the `regsweep` binary with exactly the environment a test gives it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::registry::{Backend, TestRegistry};
use super::s3;

/// What one regsweep run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output (the report).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The regsweep binary next to this test (or example) executable.
pub fn regsweep_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_regsweep") {
        return PathBuf::from(path);
    }
    // Examples live in target/<profile>/examples/, the binary in target/<profile>/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("regsweep")
}

/// Starts regsweep with exactly these environment variables (plus PATH) and arguments, its
/// output piped; `finish` collects it.
pub fn spawn_regsweep(env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut command = Command::new(regsweep_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    // Debugging a test: REGSWEEP_TEST_LOG=debug gives every run that log level (printed
    // by `finish`).
    if let Some(level) = std::env::var_os("REGSWEEP_TEST_LOG") {
        command.env("REGSWEEP_LOG", level);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regsweep binary runs")
}

/// Runs regsweep with exactly these environment variables (plus PATH) and arguments.
pub fn regsweep(env: &[(&str, &str)], args: &[&str]) -> Run {
    finish(spawn_regsweep(env, args))
}

/// Waits for a spawned regsweep and collects its output.
pub fn finish(mut child: Child) -> Run {
    let mut stdout = String::new();
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let _ = out.read_to_string(&mut stdout);
    let stderr = reader.join().unwrap();
    let status = child.wait().unwrap();
    if std::env::var_os("REGSWEEP_TEST_LOG").is_some() {
        eprintln!("--- regsweep stdout ---\n{stdout}\n--- regsweep stderr ---\n{stderr}");
    }
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

impl TestRegistry {
    /// The environment for a regsweep run against this registry and its storage.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("REGISTRY_URL", self.url.clone()),
            (
                "REGSWEEP_REGISTRY_CONFIG",
                self.config_path().display().to_string(),
            ),
        ];
        match (self.backend, &self.s3) {
            (Backend::S3, Some(server)) => env.extend(s3::storage_env(&server.url)),
            // Nothing about storage; explicit, in case this machine has a `/registry`.
            (Backend::ApiOnly, _) => env.push(("REGSWEEP_SOURCE", "api".to_string())),
            _ => env.push(("REGISTRY_DIR", self.storage().display().to_string())),
        }
        if let Some((user, password)) = &self.auth {
            env.push(("REGISTRY_AUTH", format!("{user}:{password}")));
        }
        env
    }

    /// Runs regsweep against this registry with extra environment variables.
    pub fn sweep(&self, extra: &[(&str, &str)]) -> Run {
        finish(self.spawn_sweep(extra))
    }

    /// Starts regsweep against this registry with extra environment variables (which
    /// override the defaults, `REGISTRY_URL` included: point it at a proxy).
    pub fn spawn_sweep(&self, extra: &[(&str, &str)]) -> Child {
        self.spawn_sweep_with(extra, &[])
    }

    /// Runs regsweep with arguments (a subcommand) against this registry.
    pub fn sweep_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Run {
        finish(self.spawn_sweep_with(extra, args))
    }

    /// Starts regsweep with extra environment variables and arguments.
    pub fn spawn_sweep_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Child {
        let base = self.env();
        let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, value));
        }
        spawn_regsweep(&env, args)
    }
}
