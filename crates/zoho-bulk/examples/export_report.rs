//! Exports every row of a Zoho Creator report.
//!
//! ```text
//! cargo run -p zoho-bulk --example export_report -- <report> [--criteria EXPR] [--fields A,B]
//!     [--max-records N] [--out rows.csv|rows.jsonl]
//! ```
//!
//! Configuration comes from the environment (see `Client::from_env`): `ZOHO_CLIENT_ID`,
//! `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN`, `ZOHO_DC` (or `ZOHO_CREATOR_URL` and
//! `ZOHO_ACCOUNTS_URL`), `ZOHO_OWNER`, `ZOHO_APP`. Progress goes to stderr; without `--out`
//! the rows are only counted.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use futures::TryStreamExt;
use zoho_bulk::{Client, ExportEvent, ExportOptions, MaxRecords, ReadQuery};

struct Args {
    report: String,
    query: ReadQuery,
    out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut report = None;
    let mut query = ReadQuery::new();
    let mut out = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--criteria" => query = query.criteria(value("--criteria")?),
            "--fields" => {
                query = query.fields(
                    value("--fields")?
                        .split(',')
                        .map(str::trim)
                        .map(String::from),
                )
            }
            "--max-records" => {
                let n: u32 = value("--max-records")?
                    .parse()
                    .map_err(|e| format!("--max-records: {e}"))?;
                query = query.max_records(MaxRecords::new(n).map_err(|e| e.to_string())?);
            }
            "--out" => out = Some(value("--out")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            name if report.is_none() => report = Some(name.to_owned()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    let report = report.ok_or("usage: export_report <report> [--criteria EXPR] [--fields A,B] [--max-records N] [--out rows.csv|rows.jsonl]")?;
    Ok(Args { report, query, out })
}

enum Sink {
    None,
    Csv(Box<csv::Writer<std::fs::File>>, bool),
    Jsonl(std::io::BufWriter<std::fs::File>),
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
    let args = parse_args()?;
    let client = Client::from_env()?;
    let mut sink = match args.out.as_deref() {
        None => Sink::None,
        Some(path) if path.ends_with(".jsonl") => {
            Sink::Jsonl(std::io::BufWriter::new(std::fs::File::create(path)?))
        }
        Some(path) if path.ends_with(".csv") => {
            Sink::Csv(Box::new(csv::Writer::from_path(path)?), false)
        }
        Some(other) => return Err(format!("--out must end in .csv or .jsonl, not {other}").into()),
    };
    let started = Instant::now();
    let opts = ExportOptions::new().on_progress(|e| match e {
        ExportEvent::JobCreated(job) => eprintln!("job {} created", job.id()),
        ExportEvent::JobPending { job, status, polls } => {
            eprintln!("job {}: {status} (look {polls})", job.id())
        }
        ExportEvent::JobDownloaded { job, rows, bytes } => eprintln!(
            "job {}: {} rows downloaded ({} KiB)",
            job.id(),
            rows.map_or("?".into(), |r| r.to_string()),
            bytes / 1024
        ),
        ExportEvent::Checkpoint(c) => eprintln!("{} rows delivered so far", c.rows_delivered),
        ExportEvent::JobsRecreated { orphaned_jobs } => eprintln!(
            "a job creation had an unknown outcome; created again ({orphaned_jobs} possible \
             orphan(s) so far: they cost API quota, not data)"
        ),
        _ => {}
    });
    let mut rows = client.export_with(&args.report, args.query, opts);
    let mut n: u64 = 0;
    while let Some(row) = rows.try_next().await? {
        n += 1;
        match &mut sink {
            Sink::None => {}
            Sink::Csv(w, header_written) => {
                if !*header_written {
                    w.write_record(row.columns())?;
                    *header_written = true;
                }
                w.write_record(row.values())?;
            }
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, &row.to_json())?;
                w.write_all(b"\n")?;
            }
        }
    }
    match &mut sink {
        Sink::None => {}
        Sink::Csv(w, _) => w.flush()?,
        Sink::Jsonl(w) => w.flush()?,
    }
    println!(
        "{n} rows exported from {} in {:.1} s",
        args.report,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
