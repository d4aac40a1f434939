//! Bulk-updates the processes of a procedure from a JSONL or CSV file, printing progress and a
//! summary, and writing the items that failed to files next to the input.
//!
//! ```sh
//! CHAKRA_TOKEN=... cargo run -p chakra-api --example update_processes -- <procedure> <updates.jsonl|updates.csv>
//! ```
//!
//! - JSONL: one item per line in the API's wire shape,
//!   `{"lead_id": "L-1", "update": {"state": "QUALIFIED", "data": {"score": 80}}}`.
//! - CSV: an identifier column (`id`, or the primary-key attribute such as `lead_id`) plus any of
//!   `data.<attribute>`, `state`, `status`, `assignedTo`, `nextActionAt` (epoch ms), `isDeleted`.
//!   Empty cells are left out.
//!
//! Environment: `CHAKRA_TOKEN`, `CHAKRA_BASE_URL` (optional; `http://` on loopback only), and
//! optionally `CHAKRA_CHUNK_SIZE`, `CHAKRA_CONCURRENCY`, `CHAKRA_MAX_PENDING_CHUNKS`,
//! `CHAKRA_FIRST_POLL_MS`.
//!
//! Output: `<input>.failed.jsonl` (the updates to fix and resend, in the input's wire shape),
//! `<input>.unknown.jsonl` (updates whose outcome is unknown: reconcile before resending), and
//! `<input>.outcomes.jsonl` (index, identifier, outcome and message of each of those). The last
//! line printed is `summary: {...}` in JSON.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chakra_api::{BulkProgress, Client, PollPolicy, ProcessUpdate, TableLayout};
use futures::Stream;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

type DynResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors are shown with Display (what went wrong and what to do), not Debug.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> DynResult {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (procedure, file, key) = match args.as_slice() {
        [p, f] => (p, f, None),
        [p, f, k] => (p, f, Some(k.as_str())),
        _ => {
            eprintln!(
                "usage: update_processes <procedure> <updates.jsonl|updates.csv> [primary-key attribute of the CSV]"
            );
            std::process::exit(2);
        }
    };
    let client = Client::from_env()?;
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut poll: PollPolicy = Client::default_poll_policy();
    if let Some(ms) = env_num("CHAKRA_FIRST_POLL_MS") {
        poll = poll
            .first_delay(Duration::from_millis(ms))
            .min_delay(Duration::from_millis(ms.min(100)));
    }
    let last_print = Mutex::new(Instant::now());
    let mut bulk = client
        .bulk_update(procedure.as_str())
        .poll_policy(poll)
        .on_progress(move |p: &BulkProgress| {
            let mut last = last_print.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= Duration::from_secs(1) {
                *last = Instant::now();
                println!(
                    "progress: read {} sent {} finished {} (ok {}, failed {}, unknown {}) jobs {}",
                    p.read, p.sent, p.finished, p.succeeded, p.failed, p.unknown, p.jobs
                );
            }
        });
    if let Some(n) = env_num("CHAKRA_CHUNK_SIZE") {
        bulk = bulk.chunk_size(n as usize);
    }
    if let Some(n) = env_num("CHAKRA_CONCURRENCY") {
        bulk = bulk.concurrency(n as usize);
    }
    if let Some(n) = env_num("CHAKRA_MAX_PENDING_CHUNKS") {
        bulk = bulk.max_pending_chunks(n as usize);
    }
    println!(
        "updating {procedure} from {file} at {}",
        client.base_url().as_url()
    );
    let started = Instant::now();
    let report = if file.ends_with(".csv") {
        bulk.run(csv_items(Path::new(file), key)?).await?
    } else {
        bulk.run_stream(jsonl_items(Path::new(file)).await?).await?
    };
    let elapsed = started.elapsed();

    let out = |suffix: &str| PathBuf::from(format!("{file}.{suffix}"));
    write_jsonl(&out("failed.jsonl"), report.failed().iter())?;
    write_jsonl(&out("unknown.jsonl"), report.unknown().iter())?;
    let outcomes = report.failures().iter().map(|f| {
        json!({
            "index": f.index,
            "identifier": f.identifier.as_ref().map(ToString::to_string),
            "outcome": f.outcome.label(),
            "message": f.outcome.message(),
            "job": f.job.as_ref().map(ToString::to_string),
        })
    });
    write_jsonl(&out("outcomes.jsonl"), outcomes)?;
    for f in report.failures().iter().take(10) {
        let id = f.identifier.as_ref().map(ToString::to_string);
        println!(
            "  item {} ({}): {}: {}",
            f.index,
            id.as_deref().unwrap_or("no identifier"),
            f.outcome.label(),
            f.outcome.message().unwrap_or_default()
        );
    }
    if report.failures().len() > 10 {
        println!("  ... and {} more", report.failures().len() - 10);
    }
    let p = report.progress();
    if p.read_back > 0 {
        println!(
            "unknown outcomes resolved by reading back: {} read, {} found applied, {} sent again",
            p.read_back, p.found_applied, p.resent
        );
    }
    if let Some(e) = report.stopped_early() {
        println!("stopped early: {e}");
    }
    println!(
        "done in {:.2} s: {} items, {} applied, {} errors, {} invalid, {} unknown, {} jobs",
        elapsed.as_secs_f64(),
        report.total(),
        report.succeeded(),
        report.errors(),
        report.invalid(),
        report.unknown_count(),
        report.jobs().len()
    );
    if !report.failures().is_empty() {
        println!(
            "failed items: {} (resend after fixing), {} (reconcile first), reasons in {}",
            out("failed.jsonl").display(),
            out("unknown.jsonl").display(),
            out("outcomes.jsonl").display()
        );
    }
    let summary = json!({
        "items": report.total(),
        "succeeded": report.succeeded(),
        "errors": report.errors(),
        "invalid": report.invalid(),
        "unknown": report.unknown_count(),
        "jobs": report.jobs().len(),
        "read_back": p.read_back,
        "found_applied": p.found_applied,
        "resent": p.resent,
        "elapsed_ms": elapsed.as_secs_f64() * 1e3,
    });
    println!("summary: {summary}");
    Ok(())
}

/// The JSONL file as a stream of updates, read line by line (never held whole).
async fn jsonl_items(path: &Path) -> DynResult<impl Stream<Item = ProcessUpdate> + Send> {
    let file = tokio::fs::File::open(path).await?;
    let lines = tokio::io::BufReader::with_capacity(1 << 18, file).lines();
    Ok(futures::stream::unfold(lines, |mut lines| async move {
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => {
                    let bad = Value::String(format!("unreadable line: {e}"));
                    return Some((ProcessUpdate::from_wire(bad), lines));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|e| Value::String(format!("not JSON ({e})")));
            return Some((ProcessUpdate::from_wire(value), lines));
        }
    }))
}

/// The CSV file as a lazy iterator of updates (columns as [`TableLayout`] reads them).
fn csv_items(
    path: &Path,
    key: Option<&str>,
) -> DynResult<impl Iterator<Item = ProcessUpdate> + Send> {
    let mut reader = csv::Reader::from_path(path)?;
    let headers: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let layout = match key {
        Some(key) => TableLayout::with_primary_key(&headers, key)?,
        None => TableLayout::new(&headers)?,
    };
    Ok(reader.into_records().map(move |record| match record {
        Ok(r) => layout.update(&r.iter().collect::<Vec<_>>()),
        Err(e) => ProcessUpdate::from_wire(Value::String(format!("bad CSV row: {e}"))),
    }))
}

fn write_jsonl<T: serde::Serialize>(path: &Path, items: impl Iterator<Item = T>) -> DynResult {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for item in items {
        serde_json::to_writer(&mut out, &item)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
