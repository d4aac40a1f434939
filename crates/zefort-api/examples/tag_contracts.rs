//! The tagging workflow: attach the tag "renewal 2023" (created if missing) to every contract
//! tagged "contracts of service", and wait for the task when the vendor starts one.
//!
//! ```text
//! ZEFORT_API_KEY=... ZEFORT_BASE_URL=sandbox cargo run -p zefort-api --example tag_contracts
//! ```
//!
//! `ZEFORT_BASE_URL` is `sandbox`, `my`, `us`, or any URL speaking the Zefort API (`http://` on
//! loopback, such as the simulator `cargo xtask sim` serves).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use futures::TryStreamExt;
use zefort_api::{Client, ContractQuery, JobHandle, TagId, TagOutcome, Target};

const NEW_TAG: &str = "renewal 2023";

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

async fn run() -> zefort_api::Result<()> {
    // 1. Build from the environment.
    let client = Client::from_env()?;
    println!("Zefort at {}", client.base_url());

    // 2. Submit: find or create the tag, then attach it to the search's contracts. Attaching
    // twice leaves the same result, so this request is retried like a read.
    let tag = find_or_create(&client, NEW_TAG).await?;
    let target = Target::search(ContractQuery::new().q_tags("contracts of service"));
    let task = match client.tag_contracts(&tag, &target).await? {
        TagOutcome::Task(task) => task,
        TagOutcome::Other(reply) => {
            println!("tag {tag} attached: {reply}");
            return Ok(());
        }
        // A kind of reply this example does not know: report it rather than guess.
        other => {
            println!("tag {tag}: unexpected reply {other:?}");
            return Ok(());
        }
    };
    println!("tagging: task {}", task.id);

    // 3. Wait with progress.
    let done = client
        .wait(&JobHandle::from(&task))
        .on_progress(|e| println!("  task {} is {:?}", e.job, e.progress.status))
        .await?;

    // 4. Read the result: the tag now lists its contracts.
    let tags: Vec<_> = client.tags().try_collect().await?;
    let count = tags
        .iter()
        .find(|t| t.id == tag)
        .and_then(|t| t.num_contracts);
    println!(
        "finished: task {} backend_status={}; {NEW_TAG:?} is on {} contract(s)",
        done.id,
        done.backend_status,
        count.map_or_else(|| "?".to_owned(), |n| n.to_string())
    );
    Ok(())
}

/// The id of the tag called `name`, creating the tag when there is none.
async fn find_or_create(client: &Client, name: &str) -> zefort_api::Result<TagId> {
    let mut tags = std::pin::pin!(client.tags());
    while let Some(tag) = tags.try_next().await? {
        if tag.tag_name == name {
            return Ok(tag.id);
        }
    }
    Ok(client.create_tag(name, true).await?.id)
}
