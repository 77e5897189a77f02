//! The `regsweep` binary: parse flags, validate, run, print the report, publish it, exit with
//! its status. Nothing else.

use std::io::Write as _;
use std::process::ExitCode;

use regsweep::cli::Action;
use regsweep::control::Control;
use regsweep::progress::Progress;
use regsweep::publish::{self, Targets};
use regsweep::registry::{Http, TlsOptions};
use regsweep::settings::{parse_command_line, CommandLineError, Settings};
use regsweep::{report, run, ExitStatus};

fn exit(status: ExitStatus) -> ExitCode {
    ExitCode::from(status as u8)
}

fn main() -> ExitCode {
    let cli = match parse_command_line(std::env::args_os()) {
        Ok(cli) => cli,
        Err(CommandLineError::Input(error)) => {
            eprintln!("error: {error}");
            return exit(ExitStatus::BadUsage);
        }
        Err(CommandLineError::Clap(error)) => error.exit(),
    };
    // `regsweep policy check` needs no registry: before the run's settings.
    if let Ok(Action::CheckPolicy(value)) = cli.action() {
        return match regsweep::settings::load_policy(&value) {
            Ok(policy) => {
                let mut out = std::io::stdout().lock();
                let shown = if value.contains('\n') {
                    "the policy (inline)".to_string()
                } else {
                    format!("policy `{}`", value.trim())
                };
                let _ = writeln!(out, "{shown} is valid; as understood:");
                for line in policy.describe() {
                    let _ = writeln!(out, "  {line}");
                }
                exit(ExitStatus::Done)
            }
            Err(error) => {
                eprintln!("error: {error}");
                exit(ExitStatus::BadUsage)
            }
        };
    }
    let parsed = Settings::from_cli(&cli)
        .map_err(|e| e.to_string())
        .and_then(|s| Ok((s, Targets::from_cli(&cli).map_err(|e| e.to_string())?)))
        .and_then(|(s, t)| Ok((s, t, cli.action()?)));
    let (settings, targets, action) = match parsed {
        Ok(all) => all,
        Err(error) => {
            eprintln!("error: {error}");
            return exit(ExitStatus::BadUsage);
        }
    };
    // regsweep's own messages only: dependencies may log request internals.
    let filter =
        tracing_subscriber::filter::Targets::new().with_target("regsweep", settings.log_level);
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(filter)
        .init();
    tracing::debug!(?settings, "settings");

    // Storage reads run on tokio's blocking pool; unbounded, nested streams of them grow it to
    // hundreds of threads (and their memory). The configured concurrency is the useful bound.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(settings.concurrency.max(2))
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return exit(ExitStatus::FailedBeforeDeleting);
        }
    };
    let control = Control::new(settings.max_duration);
    let progress = Progress::new(settings.quiet).with_log_groups(targets.github.is_some());
    progress.show_waits(&control);
    runtime.spawn(run::watch_signals(control.clone()));
    // A run's pipeline in one of its modes, or (None) the maintenance window.
    let mode = match action {
        Action::Run => Some(run::Mode::Run),
        Action::Plan(out) => Some(run::Mode::Plan { out }),
        Action::Apply(path) => match run::load_plan(&settings, &path) {
            Ok(file) => Some(run::Mode::Apply {
                file: Box::new(file),
            }),
            Err(error) => {
                eprintln!("error: {error}; nothing was deleted");
                return exit(error.exit_status());
            }
        },
        Action::CheckPolicy(_) => unreachable!("checked before the settings"),
        Action::Maintenance => None,
        Action::Restore(from) => {
            return match runtime.block_on(run::restore(&settings, &control, &from)) {
                Ok(status) => exit(status),
                Err(error) => {
                    eprintln!("error: {error}");
                    exit(error.exit_status())
                }
            };
        }
    };
    let outcome = match mode {
        Some(mode) => runtime.block_on(run::run(&settings, &mode, &control, &progress)),
        None => runtime.block_on(run::maintenance(
            &settings,
            &control,
            &progress,
            cli.registry_stopped,
        )),
    };
    // Publishing is not the run: it goes on after a first signal, under its own control, and
    // trusts the registry's CA bundle but never skips certificate checks for GitHub or GitLab.
    let publishing = TlsOptions {
        accept_invalid_certificates: false,
        extra_roots_pem: settings.tls.extra_roots_pem.clone(),
    };
    let http = Http::new(&publishing, settings.retry.clone(), Control::default());
    match outcome {
        Ok(outcome) => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is not worth a panic; the exit status still tells.
            let _ = report::write(settings.output, &outcome.summary, &mut stdout);
            let _ = stdout.flush();
            if let Some(fatal) = &outcome.summary.fatal {
                eprintln!("error: {fatal}");
            }
            match http {
                Ok(http) => runtime.block_on(publish::publish(&targets, &outcome.summary, &http)),
                Err(error) => eprintln!("warning: cannot publish the report: {error}"),
            }
            exit(outcome.status)
        }
        Err(error) => {
            let status = error.exit_status();
            let line = match status {
                // Stopped (a signal, the time budget) before anything was deleted.
                ExitStatus::Incomplete => {
                    format!("{error}; nothing was deleted; the next run goes on")
                }
                _ => error.to_string(),
            };
            eprintln!("error: {line}");
            publish::failed(&targets, &line);
            exit(status)
        }
    }
}
