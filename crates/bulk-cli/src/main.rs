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

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, JobsCommand};
use crate::context::Ctx;
use crate::outcome::{Outcome, Status};

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
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(outcome) => outcome.finish(json),
        Err(e) => {
            let message = format!("{e:#}");
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
