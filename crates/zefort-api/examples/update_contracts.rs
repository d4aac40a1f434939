//! The user's job: set every contract tagged "contracts of service" to end on 2023-02-15 and
//! mark it reviewed, then know when it is finished.
//!
//! ```text
//! ZEFORT_API_KEY=... ZEFORT_BASE_URL=sandbox cargo run -p zefort-api --example update_contracts
//! ```
//!
//! `ZEFORT_BASE_URL` is `sandbox`, `my`, `us`, or any URL speaking the Zefort API (`http://` on
//! loopback, such as the simulator `cargo xtask sim` serves).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use futures::TryStreamExt;
use zefort_api::{
    BulkUpdate, Client, ContractQuery, ContractStatus, JobHandle, Target, WaitOptions,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Display, not Debug: the message says what was being done and what the server
            // answered, without Rust type names.
            eprintln!("error: {e}");
            if e.is_ambiguous() {
                eprintln!(
                    "the bulk update may or may not have been applied; look for its task in \
                     Zefort's task list before running this again"
                );
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> zefort_api::Result<()> {
    let client = Client::from_env()?;
    println!("Zefort at {}", client.base_url());

    let query = ContractQuery::new().q_tags("contracts of service");
    let matching: Vec<_> = client
        .search_contracts(&query.clone().minimal(true), Some(100))
        .try_collect()
        .await?;
    println!(
        "{} contract(s) tagged \"contracts of service\"",
        matching.len()
    );

    let update = BulkUpdate::new(Target::search(query))
        .end_date("2023-02-15".parse()?)
        .status(ContractStatus::Done);
    let task = client.bulk_update(&update).await?;
    println!(
        "submitted: task {} (resume later with {})",
        task.id,
        serde_json::to_string(&JobHandle::from(&task)).unwrap_or_default()
    );

    let options = WaitOptions::new()
        .policy(
            Client::default_poll_policy()
                .first_delay(Duration::from_millis(500))
                .deadline(Some(Duration::from_secs(30 * 60))),
        )
        .on_progress(|e| {
            println!(
                "  {:>5.1} s: task {} is {} (next look in {:.1} s)",
                e.elapsed.as_secs_f64(),
                e.job,
                e.progress.status.as_deref().unwrap_or("?"),
                e.next_poll_in.as_secs_f64()
            );
        });
    let done = client
        .wait(&JobHandle::from(&task))
        .options(options)
        .await?;
    println!(
        "finished: task {} backend_status={} frontend_status={} info=\"{}\"",
        done.id, done.backend_status, done.frontend_status, done.backend_status_info
    );
    println!("({} HTTP retries)", client.stats().retries);
    Ok(())
}
