//! The Zefort section: "set every contract tagged *contracts of service* to end on 2023-02-15 and
//! mark it reviewed, then know when it is finished", against the embedded simulator with a
//! throttle, a reply lost after the update was applied, and server errors while polling; then a
//! task that fails. With `ZEFORT_API_KEY` in the environment it runs against the vendor instead:
//! read-only calls, or with `BULK_DEMO_LIVE_WRITE=1` the bulk update itself.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use vendor_sim::zefort::ZefortConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder};
use zefort_api::{
    BulkUpdate, Client, ContractQuery, ContractStatus, ErrorKind, HttpOptions, PollEvent,
    PollPolicy, RetryPolicy, SecretString, Target, WaitOptions,
};

use super::SummaryRow;
use super::progress::Bar;
use crate::DynResult;

const TAG: &str = "contracts of service";

pub(crate) async fn run() -> DynResult<SummaryRow> {
    if super::live(&["ZEFORT_API_KEY"]) {
        return against_vendor().await;
    }
    let started = Instant::now();
    let builder = SimBuilder::new("zefort")
        .seed(2026)
        .fault(
            FaultRule::new(Fault::TooManyRequests {
                retry_after: Some("1".into()),
            })
            .method("POST")
            .path("/api/contracts/bulk_update/")
            .nth(1),
        )
        .fault(
            FaultRule::new(Fault::ResetAfterHandler)
                .method("POST")
                .path("/api/contracts/bulk_update/")
                .nth(2),
        )
        .fault(
            FaultRule::new(Fault::Status(503))
                .method("GET")
                .path("/api/tasks/{id}/")
                .nth(2),
        );
    let cfg = ZefortConfig::default();
    let (sim, zefort) = vendor_sim::zefort::start(builder, cfg.clone()).await?;
    let all = zefort.seed(120, TAG, 3);
    super::announce(
        &format!("simulator {}", sim.base_url()),
        &format!("{} contracts", all.len()),
    );

    let retry = RetryPolicy::default()
        .initial_delay(Duration::from_millis(200))
        .max_attempts(4);
    let client = Client::builder()
        .api_key(SecretString::from(cfg.api_key.clone()))
        .base_url(&sim.base_url())
        .http_options(HttpOptions::default().retry(retry))
        .on_retry(|e| println!("   retry: {e}"))
        .build()?;

    let query = ContractQuery::new().q_tags(TAG);
    let tagged = client
        .search_contracts(&query.clone().minimal(true), Some(25))
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    println!(
        "1. search (pages of 25): {tagged} contracts tagged {TAG:?}, {} page requests",
        sim.counters().get("contracts.pages")
    );

    println!(
        "2. bulk update: end_date = 2023-02-15, status = done \
         (faults: 429 on the first POST, connection reset after the second was applied, \
         503 on a poll)"
    );
    let update = BulkUpdate::new(Target::search(query))
        .end_date("2023-02-15".parse()?)
        .status(ContractStatus::Done);
    let bar = Bar::new("task", None, "looks");
    let options = WaitOptions::new()
        .policy(
            Client::default_poll_policy()
                .first_delay(Duration::from_millis(300))
                .deadline(Some(Duration::from_secs(30))),
        )
        .on_progress(waiting(&bar));
    // The first attempt is throttled and retried; the 429 is safe to repeat. The second reply
    // is lost after the server created the task: the client finds that task instead of
    // submitting again.
    let task = client.run_bulk_update(&update, &options).await?;
    bar.finish(format!("task {}: {}", task.id, task.backend_status));
    let c = sim.counters();
    println!(
        "   task {}: backend_status={} frontend_status={} | POSTs received {}, tasks created {}",
        task.id,
        task.backend_status,
        task.frontend_status,
        c.received("POST /api/contracts/bulk_update/"),
        c.get("tasks.created")
    );
    let changed = all
        .iter()
        .filter_map(|id| zefort.contract(id))
        .filter(|ct| {
            ct.status == "done"
                && ct.attributes.get("end_date") == Some(&serde_json::json!("2023-02-15"))
        })
        .count() as u64;
    println!("   read back: {changed} contracts now end on 2023-02-15 and are reviewed");
    if changed != tagged || c.get("tasks.created") != 1 {
        return Err(format!(
            "expected {tagged} changed contracts and one task, got {changed} and {}",
            c.get("tasks.created")
        )
        .into());
    }

    println!("3. a task the vendor fails: the error carries backend_status_info");
    zefort.fail_next_task("Contract is locked for editing by another user");
    let archive =
        BulkUpdate::new(Target::contracts([all[1].as_str()])).status(ContractStatus::Archived);
    match client
        .run_bulk_update(&archive, &WaitOptions::new().policy(quick_policy()))
        .await
    {
        Err(e) if e.kind() == ErrorKind::JobFailed => println!("   {e}"),
        Err(e) => return Err(format!("expected a failed task, got another error: {e}").into()),
        Ok(task) => {
            return Err(format!(
                "expected a failed task, but task {} ended {}",
                task.id, task.backend_status
            )
            .into());
        }
    }

    let row = SummaryRow {
        vendor: "zefort",
        against: "simulator".into(),
        items: changed,
        jobs: sim.counters().get("tasks.created"),
        retries: client.stats().retries,
        time: started.elapsed(),
    };
    sim.shutdown().await;
    Ok(row)
}

fn quick_policy() -> PollPolicy {
    Client::default_poll_policy()
        .first_delay(Duration::from_millis(300))
        .deadline(Some(Duration::from_secs(30)))
}

/// Shows each look at a task on `bar`.
fn waiting(bar: &Bar) -> impl Fn(&PollEvent) + Send + Sync + 'static {
    let bar = bar.clone();
    move |e| {
        bar.update(
            e.polls.into(),
            format!(
                "task {} {}",
                e.job,
                e.progress.status.as_deref().unwrap_or("?")
            ),
        );
    }
}

/// Against the vendor named by the environment: read-only calls, then (only with
/// `BULK_DEMO_LIVE_WRITE=1`) the bulk update of the contracts tagged [`TAG`].
async fn against_vendor() -> DynResult<SummaryRow> {
    let started = Instant::now();
    let client = Client::from_env()?;
    let host = super::host(client.base_url());
    let write = super::live_write();
    super::announce(
        &format!("{host} (ZEFORT_API_KEY is set)"),
        if write {
            "BULK_DEMO_LIVE_WRITE=1: the bulk update runs for real"
        } else {
            "read-only; set BULK_DEMO_LIVE_WRITE=1 to run the bulk update"
        },
    );
    let tasks = client.tasks_page(1, Some(10)).await?;
    println!(
        "recent tasks: {} listed (of {})",
        tasks.results.len(),
        tasks
            .count
            .map_or_else(|| "an unstated number".to_owned(), |n| n.to_string())
    );
    for t in tasks.results.iter().take(5) {
        println!("  {} {} {}", t.id, t.backend_status, t.description);
    }
    let query = ContractQuery::new().q_tags(TAG);
    let tagged = client
        .search_contracts(&query.clone().minimal(true), Some(100))
        .take(1000)
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    println!("contracts tagged {TAG:?}: {tagged} (first 1000 at most)");
    let mut jobs = 0;
    if write {
        let update = BulkUpdate::new(Target::search(query))
            .end_date("2023-02-15".parse()?)
            .status(ContractStatus::Done);
        let bar = Bar::new("task", None, "looks");
        let task = client
            .run_bulk_update(&update, &WaitOptions::new().on_progress(waiting(&bar)))
            .await?;
        bar.finish(format!("task {}: {}", task.id, task.backend_status));
        jobs = 1;
    } else {
        println!("nothing was changed");
    }
    Ok(SummaryRow {
        vendor: "zefort",
        against: host,
        items: tagged,
        jobs,
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}
