//! Resumes waiting for a job from a handle saved by an earlier process (`bulk_delete`'s second
//! argument, or `serde_json::to_string(&job)`).
//!
//! ```sh
//! export UNICAT_API_KEY=... UNICAT_PROJECT=... # UNICAT_BASE_URL=http://127.0.0.1:PORT
//! cargo run -p unicat-api --example bulk_delete -- selection.json job.json   # Ctrl-C while it waits
//! cargo run -p unicat-api --example resume -- job.json
//! ```
//!
//! The first look comes at once (the job may have finished long ago); the feed reader goes back
//! to the cursor saved in the handle, so a finished job is still found.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use unicat_api::{Client, JobHandle};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resume: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: resume <job.json>")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let job: JobHandle = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;

    let client = Client::from_env()?;
    eprintln!("waiting for job {} ({})", job.token(), job.operation());
    let report = client
        .wait(&job)
        .poll_immediately(true)
        .on_progress(|e| eprintln!("  {}", e.progress.status.as_deref().unwrap_or("waiting")))
        .await?;
    println!(
        "{}",
        serde_json::json!({
            "job": report.token, "status": report.status.as_str(), "total": report.total,
        })
    );
    Ok(())
}
