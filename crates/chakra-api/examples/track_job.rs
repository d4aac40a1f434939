//! Submits the updates of a JSONL file as one bulk-update request, saves its job handle, waits
//! for the job with progress and prints the entries that did not succeed; or resumes waiting on
//! a job from a saved handle (in another process, after a restart).
//!
//! ```sh
//! CHAKRA_TOKEN=... cargo run -p chakra-api --example track_job -- <procedure> <updates.jsonl>
//! CHAKRA_TOKEN=... cargo run -p chakra-api --example track_job -- --resume <updates.jsonl.job.json>
//! ```
//!
//! One item per line in the API's wire shape, e.g.
//! `{"lead_id": "L-1", "update": {"state": "QUALIFIED", "data": {"score": 80}}}`; one request
//! carries them all, so keep the file to a chunk's size (1,000 lines): the `update_processes`
//! example streams files of any size. Environment: `CHAKRA_TOKEN`, `CHAKRA_BASE_URL` (optional;
//! `http://` on loopback only).

#![allow(clippy::print_stdout)]

use std::io::BufRead;

use chakra_api::{Client, EntryStatus, JobHandle, ProcessUpdate, validate};
use futures::TryStreamExt;

type DynResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    let client = Client::from_env()?;
    let (job, resumed) = match args.as_slice() {
        [flag, saved] if flag == "--resume" => {
            let job: JobHandle = serde_json::from_str(&std::fs::read_to_string(saved)?)?;
            println!("resuming job {} ({} items)", job.id(), job.submitted());
            (job, true)
        }
        [procedure, file] => {
            let updates = read_updates(file)?;
            // Every bad line is reported at once, before anything is sent.
            validate(&updates)?;
            let job = client.submit_updates(procedure, &updates).await?;
            let saved = format!("{file}.job.json");
            std::fs::write(&saved, serde_json::to_string(&job)?)?;
            println!(
                "job {} accepted {} items; handle saved to {saved}",
                job.id(),
                job.submitted()
            );
            (job, false)
        }
        _ => {
            eprintln!(
                "usage: track_job <procedure> <updates.jsonl> | track_job --resume <job.json>"
            );
            std::process::exit(2);
        }
    };

    // A resumed job may have finished long ago: look at once.
    let status = client
        .wait(&job)
        .poll_immediately(resumed)
        .on_progress(|e| {
            println!(
                "progress: {} of {} items left after {:.1} s",
                e.progress.remaining.unwrap_or_default(),
                e.progress.total.unwrap_or_default(),
                e.elapsed.as_secs_f64()
            );
        })
        .await?;
    println!("job {} done: {}", job.id(), status.counts);

    if status.counts.success < job.submitted() {
        let entries: Vec<_> = client.job_entries(job.id()).try_collect().await?;
        for entry in entries.iter().filter(|e| e.status != EntryStatus::Success) {
            println!(
                "  item {}: {}: {}",
                entry
                    .position
                    .map_or_else(|| "?".to_owned(), |p| p.to_string()),
                entry.status,
                entry.message.as_deref().unwrap_or("no message")
            );
        }
    }
    Ok(())
}

/// The file's updates, one JSON object a line (blank lines skipped). A line that is not JSON
/// is kept as a malformed item, so that [`validate`] names it.
fn read_updates(path: &str) -> DynResult<Vec<ProcessUpdate>> {
    let mut updates = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line)
            .unwrap_or_else(|e| serde_json::Value::String(format!("not JSON ({e})")));
        updates.push(ProcessUpdate::from_wire(value));
    }
    Ok(updates)
}
