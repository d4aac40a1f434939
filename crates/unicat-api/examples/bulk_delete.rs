//! Deletes the records of a selection and waits for the job.
//!
//! ```sh
//! export UNICAT_API_KEY=... UNICAT_PROJECT=... # UNICAT_BASE_URL=http://127.0.0.1:PORT
//! cargo run -p unicat-api --example bulk_delete -- selection.json [job.json]
//! ```
//!
//! `selection.json` holds the selection list in the API's JSON form, for example
//! `["r-1", {"children": "r-f2", "exclude": ["r-f2-003"]}, {"search": {"q": "obsolete"}}]`.
//! Progress goes to stderr; the exit status is non-zero, with the vendor's reason, when the job
//! is rejected or its report lists errors (the items not applied are printed). With a second
//! argument, the job handle is saved there first, for the `resume` example.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use unicat_api::{Client, ErrorKind, RecordSelection};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulk_delete: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: bulk_delete <selection.json> [job.json]")?;
    let save = std::env::args().nth(2);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let selection: RecordSelection =
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;

    let client = Client::from_env()?;
    let job = client.records().delete(&selection).await?;
    eprintln!(
        "submitted job {} (feed cursor {})",
        job.token(),
        job.cursor()
    );
    if let Some(save) = &save {
        std::fs::write(save, serde_json::to_string(&job)?).map_err(|e| format!("{save}: {e}"))?;
        eprintln!("saved the handle to {save}");
    }
    let outcome = client
        .wait(&job)
        .on_progress(|e| {
            let p = &e.progress;
            match (p.total, p.remaining) {
                (Some(total), Some(left)) => eprintln!(
                    "  {}: {}/{total} done",
                    p.status.as_deref().unwrap_or("?"),
                    total - left.min(total)
                ),
                _ => eprintln!("  {}", p.status.as_deref().unwrap_or("waiting")),
            }
        })
        .await;
    match outcome {
        Ok(report) => {
            println!(
                "{}",
                serde_json::json!({
                    "job": report.token, "status": report.status.as_str(),
                    "total": report.total, "failed": [],
                })
            );
            Ok(())
        }
        // Rejected, or done with errors in its info: not done. The details list the items
        // that were not applied, when the job says which.
        Err(e) if e.kind() == ErrorKind::JobFailed => {
            let details = e.details().cloned().unwrap_or_default();
            println!(
                "{}",
                serde_json::json!({
                    "job": job.token(), "status": details["status"],
                    "total": details["total"], "failed": details["failed"],
                })
            );
            Err(format!(
                "job {} did not finish cleanly: {}",
                job.token(),
                e.vendor_message().unwrap_or("no reason given")
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}
