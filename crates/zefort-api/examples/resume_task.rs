//! The resume workflow: wait for a task that an earlier process submitted, from the handle it
//! saved (`{"task_id":"task_…"}`, as `update_contracts` prints it), and acknowledge it.
//!
//! ```text
//! ZEFORT_API_KEY=... ZEFORT_BASE_URL=sandbox \
//!   cargo run -p zefort-api --example resume_task -- '{"task_id":"task_123"}'
//! ```
//!
//! `ZEFORT_BASE_URL` is `sandbox`, `my`, `us`, or any URL speaking the Zefort API (`http://` on
//! loopback, such as the simulator `cargo xtask sim` serves).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use zefort_api::{Client, JobHandle};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(saved) = std::env::args().nth(1) else {
        eprintln!("usage: resume_task '{{\"task_id\":\"task_…\"}}'");
        return ExitCode::FAILURE;
    };
    let handle: JobHandle = match serde_json::from_str(&saved) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: {saved:?} is not a saved task handle: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&handle).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: task {}: {e}", handle.task_id());
            ExitCode::FAILURE
        }
    }
}

async fn run(handle: &JobHandle) -> zefort_api::Result<()> {
    let client = Client::from_env()?;
    // The first look is immediate: the task may have finished while nobody was waiting.
    let task = client
        .wait(handle)
        .on_progress(|e| println!("  task {} is {:?}", e.job, e.progress.status))
        .await?;
    println!(
        "finished: task {} backend_status={} frontend_status={} info=\"{}\"",
        task.id, task.backend_status, task.frontend_status, task.backend_status_info
    );
    Ok(())
}
