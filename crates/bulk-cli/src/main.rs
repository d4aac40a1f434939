//! `bulk`: bulk jobs against Zoho Creator, ChakraHQ, Zefort and Unicat from a shell or a cron
//! job, with progress on stderr, an optional JSON summary on stdout and exit codes that tell
//! success (0), error (1) and partial failure (2) apart. See the README and `bulk --help`.

// A command-line program: stdout is its output.
#![allow(clippy::print_stdout)]

mod chakra;
mod cli;
mod config;
mod context;
mod jobs;
mod outcome;
mod sim;
mod unicat;
mod zefort;
mod zoho;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, JobsCommand};
use crate::context::Ctx;
use crate::outcome::{Outcome, Status};

/// The exit code after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1 like every other error, so that 2 always means "partial".
            let code = if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    let json = cli.global.json;
    init_logging(cli.global.verbose);
    let resume = resume_hint(&cli.command);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async move {
                let interrupted = interrupt_signal()?;
                tokio::spawn(async move {
                    if interrupted.await {
                        // Exit at once, like the default SIGINT action: nothing is unwound, so
                        // the job file and any kept temporary file stay as they are.
                        eprintln!("\nbulk: interrupted. {}", resume.message());
                        std::process::exit(INTERRUPTED);
                    }
                });
                run(cli).await
            })
        });
    match result {
        Ok(outcome) => outcome.finish(json),
        Err(e) => {
            let message = error_message(&e);
            eprintln!("bulk: error: {message}");
            if json {
                let summary = serde_json::json!({ "status": "error", "error": message });
                let _ = writeln!(std::io::stdout().lock(), "{summary}");
            }
            ExitCode::from(Status::Error.code())
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let mut ctx = Ctx::new(cli.global)?;
    let outcome = match cli.command {
        Command::Zoho(cli::ZohoCommand::Export(args)) => zoho::export(&mut ctx, args).await,
        Command::Chakra(cli::ChakraCommand::Update(args)) => chakra::update(&mut ctx, args).await,
        Command::Zefort(cli::ZefortCommand::Update(args)) => zefort::update(&mut ctx, args).await,
        Command::Zefort(cli::ZefortCommand::Tag(args)) => zefort::tag(&mut ctx, args).await,
        Command::Unicat(cli::UnicatCommand::Delete(args)) => {
            unicat::mutate(&mut ctx, unicat::Op::Delete, args).await
        }
        Command::Unicat(cli::UnicatCommand::Undelete(args)) => {
            unicat::mutate(&mut ctx, unicat::Op::Undelete, args).await
        }
        Command::Unicat(cli::UnicatCommand::Get(args)) => unicat::get(&mut ctx, args).await,
        Command::Jobs(JobsCommand::Resume { job_file }) => jobs::resume(&mut ctx, &job_file).await,
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "bulk", &mut out);
            return Ok(Outcome::silent());
        }
        Command::Man => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            return Ok(Outcome::silent());
        }
    };
    ctx.shutdown().await;
    outcome
}

/// Resolves to `true` on Ctrl-C. On Unix the handler is installed before this returns, so a
/// Ctrl-C right after start is never lost to the default action.
fn interrupt_signal() -> anyhow::Result<impl std::future::Future<Output = bool> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt())?;
        Ok(async move { sigint.recv().await.is_some() })
    }
    #[cfg(not(unix))]
    {
        Ok(async { tokio::signal::ctrl_c().await.is_ok() })
    }
}

/// The error for people: each layer's message once, down to the first error of the clients,
/// whose own message already says what the server answered; the transport errors below it
/// (reqwest, hyper, io) are implementation detail and are left out.
fn error_message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        // anyhow's context repeats nothing, but a client error wrapped twice would.
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        if cause.downcast_ref::<bulk_common::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// `-v`: this program's and the clients' debug logs on stderr; `-vv`: their trace logs and the
/// HTTP stack's info logs. `RUST_LOG` overrides both. The clients never log a secret (tokens
/// and keys are `secrecy` types, URLs are logged without their query).
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var_os("RUST_LOG").is_some();
    if verbose == 0 && !from_env {
        return;
    }
    let ours = [
        "bulk",
        "bulk_common",
        "zoho_bulk",
        "chakra_api",
        "zefort_api",
        "unicat_api",
    ];
    let (own, others) = if verbose >= 2 {
        ("trace", "info")
    } else {
        ("debug", "warn")
    };
    let default = std::iter::once(others.to_owned())
        .chain(ours.iter().map(|c| format!("{c}={own}")))
        .collect::<Vec<_>>()
        .join(",");
    let filter = if from_env {
        EnvFilter::from_default_env()
    } else {
        EnvFilter::new(default)
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// What Ctrl-C tells the user about finishing the work.
enum Resume {
    /// `bulk jobs resume FILE` (when the file exists by then).
    JobFile {
        path: std::path::PathBuf,
        otherwise: &'static str,
    },
    /// No job file: what to do instead.
    Advice(&'static str),
}

impl Resume {
    fn message(&self) -> String {
        match self {
            Resume::JobFile { path, otherwise } => {
                if Path::new(path).exists() {
                    format!(
                        "To finish the work, run: bulk jobs resume {}",
                        shell_quote(&path.display().to_string())
                    )
                } else {
                    (*otherwise).to_owned()
                }
            }
            Resume::Advice(text) => (*text).to_owned(),
        }
    }
}

fn resume_hint(command: &Command) -> Resume {
    const AGAIN: &str = "Nothing was saved to resume from yet: run the same command again.";
    const SUBMITTED: &str = "A job may already be running on the server. Run the same command \
        again, and give --job-file PATH so that an interrupted run can be resumed with \
        `bulk jobs resume PATH`.";
    let job_file = |file: &Option<std::path::PathBuf>, no_file: &'static str| match file {
        Some(path) => Resume::JobFile {
            path: path.clone(),
            otherwise: AGAIN,
        },
        None => Resume::Advice(no_file),
    };
    match command {
        Command::Zoho(cli::ZohoCommand::Export(a)) => job_file(
            &a.job_file,
            "The output file was not written. Run the same command again, with \
             --job-file PATH so that an interrupted export can be resumed with \
             `bulk jobs resume PATH`.",
        ),
        Command::Zefort(cli::ZefortCommand::Update(a)) => job_file(&a.job.job_file, SUBMITTED),
        Command::Zefort(cli::ZefortCommand::Tag(a)) => job_file(&a.job.job_file, SUBMITTED),
        Command::Unicat(cli::UnicatCommand::Delete(a) | cli::UnicatCommand::Undelete(a)) => {
            job_file(&a.job.job_file, SUBMITTED)
        }
        Command::Chakra(_) => Resume::Advice(
            "Items already sent may have been applied. Run the same command again to send \
             every item (an update sets the same values again).",
        ),
        Command::Unicat(cli::UnicatCommand::Get(_)) => {
            Resume::Advice("The output is incomplete: run the same command again.")
        }
        Command::Jobs(JobsCommand::Resume { job_file }) => Resume::JobFile {
            path: job_file.clone(),
            otherwise: "The job file is gone: the work was finished.",
        },
        Command::Completions { .. } | Command::Man => Resume::Advice(""),
    }
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_stops_at_the_client_error_and_leaves_transport_internals_out() {
        let io =
            std::io::Error::other("hyper::Error(Connect, ConnectError(\"tcp connect error\"))");
        let client = bulk_common::Error::new(
            bulk_common::ErrorKind::Transport,
            "GET /x: the connection broke",
        )
        .with_source(io);
        let e = anyhow::Error::new(client).context("job 7");
        let text = error_message(&e);
        assert!(
            text.starts_with("job 7: connection error: GET /x: the connection broke"),
            "{text}"
        );
        assert!(!text.contains("hyper"), "{text}");
    }

    #[test]
    fn a_plain_chain_is_shown_in_full() {
        let e = anyhow::anyhow!("the secret file key is empty").context("reading credentials");
        assert_eq!(
            error_message(&e),
            "reading credentials: the secret file key is empty"
        );
    }

    #[test]
    fn resume_paths_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("rows.job"), "rows.job");
        assert_eq!(shell_quote("my rows.job"), "'my rows.job'");
        assert_eq!(shell_quote("it's.job"), r"'it'\''s.job'");
    }
}
