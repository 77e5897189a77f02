//! The `regsweep` binary: parse flags, validate, run, print the report, exit with its status.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use regsweep::cli::Cli;
use regsweep::publish::{comment, github, gitlab};
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
            let files: [(_, fn(&_) -> String); 2] = [
                (&settings.markdown_file, markdown::render),
                (&settings.json_file, json::render),
            ];
            for (path, render) in files {
                if let Some(path) = path {
                    if let Err(error) = std::fs::write(path, render(&outcome.summary)) {
                        eprintln!(
                            "warning: cannot write the report to `{}`: {error}",
                            path.display()
                        );
                    }
                }
            }
            if let (Some(merge_request), Some(token)) = (&settings.gitlab, &settings.gitlab_token) {
                let whole = match &settings.json_file {
                    Some(path) => format!("the job's artifact `{}`", path.display()),
                    None => "in the job log".to_string(),
                };
                match runtime.block_on(gitlab::note(&outcome.summary, merge_request, token, &whole))
                {
                    Ok(gitlab::Noted::Created(id)) => eprintln!(
                        "regsweep: noted on merge request !{} (note {id})",
                        merge_request.iid
                    ),
                    Ok(gitlab::Noted::Updated(id)) => eprintln!(
                        "regsweep: updated its note on merge request !{} (note {id})",
                        merge_request.iid
                    ),
                    Err(error) => eprintln!(
                        "warning: cannot note on merge request !{}: {error}; the report is in \
                         the job log and artifacts",
                        merge_request.iid
                    ),
                }
            }
            if let Some(target) = &settings.github {
                for line in github::annotations(&outcome.summary) {
                    eprintln!("{line}");
                }
                let mut problems = github::publish(&outcome.summary, target);
                match (&target.pull_request, &settings.github_token) {
                    _ if !settings.comment_on_pr => {}
                    (Some(pull_request), Some(token)) => {
                        let commented = runtime.block_on(comment::comment(
                            &outcome.summary,
                            pull_request,
                            token,
                            &target.report_json,
                        ));
                        match commented {
                            Ok(comment::Commented::Created(id)) => {
                                eprintln!(
                                    "regsweep: commented on pull request #{} ({id})",
                                    pull_request.number
                                )
                            }
                            Ok(comment::Commented::Updated(id)) => eprintln!(
                                "regsweep: updated its comment on pull request #{} ({id})",
                                pull_request.number
                            ),
                            Err(error) => {
                                problems.push(format!("{error}; the report is in the job summary"))
                            }
                        }
                    }
                    (Some(_), None) => problems.push(
                        "REGSWEEP_COMMENT_ON_PR needs GITHUB_TOKEN (env: GITHUB_TOKEN: \
                         ${{ github.token }}); the report is in the job summary"
                            .to_string(),
                    ),
                    (None, _) => {}
                }
                for problem in problems {
                    eprintln!(
                        "::warning title=regsweep: not published::{}",
                        github::escape_data(&problem)
                    );
                }
            }
            exit(outcome.status)
        }
        Err(error) => {
            eprintln!("error: {error}");
            if settings.github.is_some() {
                eprintln!(
                    "::error title=regsweep::{}",
                    github::escape_data(&error.to_string())
                );
            }
            exit(ExitStatus::FailedBeforeDeleting)
        }
    }
}
