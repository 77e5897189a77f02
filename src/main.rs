//! The `regsweep` binary: parse flags, validate, run, print the report, exit with its status.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use regsweep::cli::Cli;
use regsweep::publish;
use regsweep::report::{json, markdown, text};
use regsweep::settings::{OutputFormat, Settings};
use regsweep::ExitStatus;

fn exit(status: ExitStatus) -> ExitCode {
    ExitCode::from(status as u8)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_cli(&cli) {
        Ok(settings) => settings,
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
    match runtime.block_on(regsweep::run(&settings)) {
        Ok(outcome) => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is not worth a panic; the exit status still tells.
            let _ = match settings.output {
                OutputFormat::Text => stdout.write_all(text::render(&outcome.summary).as_bytes()),
                OutputFormat::Json => json::write(&outcome.summary, &mut stdout),
                OutputFormat::Markdown => {
                    stdout.write_all(markdown::render(&outcome.summary).as_bytes())
                }
            };
            let _ = stdout.flush();
            if let Some(fatal) = &outcome.summary.fatal {
                eprintln!("error: {fatal}");
            }
            runtime.block_on(publish::publish(&settings, &outcome.summary));
            exit(outcome.status)
        }
        Err(error) => {
            eprintln!("error: {error}");
            publish::failed(&settings, &error.to_string());
            exit(ExitStatus::FailedBeforeDeleting)
        }
    }
}
