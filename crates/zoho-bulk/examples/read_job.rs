//! Reads one bulk-read job step by step: create it (or take a saved handle), wait with
//! progress, download its rows, and print the cursor of the next batch.
//!
//! ```text
//! cargo run -p zoho-bulk --example read_job -- <report> [--criteria EXPR] [--save job.json]
//! cargo run -p zoho-bulk --example read_job -- --resume job.json
//! ```
//!
//! `--save` writes the job's handle before waiting, so a run that is stopped can be finished
//! by another with `--resume` (Zoho keeps a result for 24 hours). Configuration comes from the
//! environment (see `Client::from_env`): `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`,
//! `ZOHO_REFRESH_TOKEN`, `ZOHO_DC` (or `ZOHO_CREATOR_URL` and `ZOHO_ACCOUNTS_URL`), `ZOHO_OWNER`,
//! `ZOHO_APP`; `cargo xtask sim` prints a simulator's. Progress goes to stderr.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use futures::TryStreamExt;
use zoho_bulk::{Client, JobHandle, ReadQuery};

enum Start {
    Create {
        report: String,
        query: ReadQuery,
        save: Option<String>,
    },
    Resume(String),
}

fn parse_args() -> Result<Start, String> {
    let usage =
        "usage: read_job <report> [--criteria EXPR] [--save job.json] | read_job --resume job.json";
    let mut args = std::env::args().skip(1);
    let mut report = None;
    let mut query = ReadQuery::new();
    let mut save = None;
    let mut resume = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--criteria" => query = query.criteria(value("--criteria")?),
            "--save" => save = Some(value("--save")?),
            "--resume" => resume = Some(value("--resume")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            name if report.is_none() => report = Some(name.to_owned()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    match (report, resume) {
        (Some(report), None) => Ok(Start::Create {
            report,
            query,
            save,
        }),
        (None, Some(path)) => Ok(Start::Resume(path)),
        _ => Err(usage.into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let start = parse_args()?;
    // 1. Build from the environment.
    let client = Client::from_env()?;
    // 2. Submit, or take the handle an earlier run saved.
    let (job, resumed) = match start {
        Start::Create {
            report,
            query,
            save,
        } => {
            let job = client.create_job(&report, &query).await?;
            eprintln!("job {} created", job.id());
            if let Some(path) = save {
                std::fs::write(&path, serde_json::to_string_pretty(&job)?)?;
                eprintln!("handle saved to {path}");
            }
            (job, false)
        }
        Start::Resume(path) => {
            let job: JobHandle = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            eprintln!("resuming job {} of {}", job.id(), job.report());
            (job, true)
        }
    };
    // 3. Wait with progress; a resumed job may have finished long ago, so look at once.
    let details = client
        .wait(&job)
        .poll_immediately(resumed)
        .on_progress(|e| {
            eprintln!(
                "job {}: {} (look {}, next in {:?})",
                e.job,
                e.progress.status.as_deref().unwrap_or("?"),
                e.polls,
                e.next_poll_in
            )
        })
        .await?;
    // 4. Read the result: a stream of rows from the spooled archive.
    let download = client.download(&job, Some(&details)).await?;
    let mut rows = download.rows;
    let mut n: u64 = 0;
    while let Some(row) = rows.try_next().await? {
        n += 1;
        if n <= 3 {
            println!("{}", serde_json::Value::Object(row.to_json()));
        }
    }
    println!("{n} rows in job {} of {}", job.id(), job.report());
    if let Some(cursor) = download.record_cursor {
        println!(
            "more rows follow: create the next job from record cursor {cursor} within 15 minutes"
        );
    }
    Ok(())
}
