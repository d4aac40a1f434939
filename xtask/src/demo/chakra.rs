//! The ChakraHQ section: a bulk update of 5,000 processes with some unknown and invalid items,
//! against the embedded simulator with a per-request cap (413, chunks halved), throttling,
//! server errors while polling and one connection reset after a chunk was applied (an ambiguous
//! outcome, reconciled by reading back). With `CHAKRA_TOKEN` set it runs against ChakraHQ
//! instead: read-only (a first page of the processes of `CHAKRA_DEMO_PROCEDURE`), or with
//! `BULK_DEMO_LIVE_WRITE=1` also a bulk update of the items in the JSON Lines file
//! `CHAKRA_DEMO_UPDATES` (one update a line, in the API's wire shape).

use std::time::{Duration, Instant};

use chakra_api::{BulkProgress, Client, Outcome, ProcessUpdate, Query, Reconcile, SecretString};
use futures::StreamExt;
use serde_json::json;
use vendor_sim::chakra::{ChakraConfig, ProcedureSpec};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

use super::SummaryRow;
use super::progress::Bar;
use crate::DynResult;

/// The token the simulator accepts.
pub(crate) const SIM_TOKEN: &str = "sim-chakra-token";

const PROCESSES: usize = 5000;

/// Starts the simulator with a `lead` procedure (primary key `lead_id`) of 1,000 processes
/// `L-0` .. `L-999`, for `cargo xtask sim`.
pub(crate) async fn serve(addr: std::net::SocketAddr) -> DynResult<SimHandle> {
    let (sim, chakra) = vendor_sim::chakra::start(
        SimBuilder::new("chakra").addr(addr),
        ChakraConfig::default(),
    )
    .await?;
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 0..1000 {
        chakra.add_process("lead", json!({"lead_id": format!("L-{i}"), "city": "Pune"}));
    }
    Ok(sim)
}

pub(crate) async fn run() -> DynResult<SummaryRow> {
    let started = Instant::now();
    if super::live(&["CHAKRA_TOKEN"]) {
        return against_vendor(started).await;
    }
    let cfg = ChakraConfig {
        max_items_per_request: 600,
        item_time: Duration::from_micros(200),
        ..ChakraConfig::default()
    };
    let builder = SimBuilder::new("chakra")
        .seed(6)
        .fault(
            FaultRule::new(Fault::TooManyRequests {
                retry_after: Some("1".into()),
            })
            .method("PATCH")
            .nth(4),
        )
        .fault(
            FaultRule::new(Fault::Status(503))
                .path("/v1/ext/background-job/{id}")
                .probability(0.15),
        )
        .fault(
            FaultRule::new(Fault::ResetAfterHandler)
                .method("PATCH")
                .nth(7),
        );
    let (sim, chakra) = vendor_sim::chakra::start(builder, cfg).await?;
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 0..PROCESSES {
        chakra.add_process("lead", json!({"lead_id": format!("L-{i}"), "city": "Pune"}));
    }
    super::announce(
        &format!("simulator {}", sim.base_url()),
        &format!("lead: {PROCESSES} processes, at most 600 items per request"),
    );
    let client = Client::builder()
        .base_url(sim.base_url())
        .token(SecretString::from(SIM_TOKEN))
        .build()?;

    // 5,000 updates; every 500th names a process that does not exist, every 1,000th has a bad
    // status (caught before sending), and one moves to a state the procedure does not have.
    let updates = (0..PROCESSES).map(|i| {
        if i % 1000 == 999 {
            ProcessUpdate::from_wire(
                json!({"lead_id": format!("L-{i}"), "update": {"status": "DONE"}}),
            )
        } else if i % 500 == 499 {
            ProcessUpdate::by_key("lead_id", format!("X-{i}")).state("QUALIFIED")
        } else if i == 1234 {
            ProcessUpdate::by_key("lead_id", "L-1234").state("ARCHIVED")
        } else {
            ProcessUpdate::by_key("lead_id", format!("L-{i}"))
                .state("QUALIFIED")
                .data("score", i % 100)
                .assigned_to("asha")
        }
    });
    let bar = Bar::new("update", Some(PROCESSES as u64), "items");
    let report = client
        .bulk_update("lead")
        .poll_policy(Client::default_poll_policy().first_delay(Duration::from_millis(200)))
        // The simulator's jobs take milliseconds: a lost reply's job has settled within 1 s.
        .reconcile_with(Reconcile::default().settle(Duration::from_secs(1)))
        .on_progress(uploading(&bar))
        .run(updates)
        .await?;
    bar.finish(format!("{} jobs", report.jobs().len()));
    println!(
        "report: {} items, {} applied, {} errors, {} invalid, {} unknown, {} jobs",
        report.total(),
        report.succeeded(),
        report.errors(),
        report.invalid(),
        report.unknown_count(),
        report.jobs().len()
    );
    for f in report
        .failures()
        .iter()
        .filter(|f| !matches!(f.outcome, Outcome::Unknown(_)))
        .take(4)
    {
        println!(
            "  item {} {}: {} ({})",
            f.index,
            f.identifier
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            f.outcome.label(),
            f.outcome.message().unwrap_or_default()
        );
    }
    println!(
        "  report.failed(): {} updates to fix and resend",
        report.failed().len()
    );

    // The ambiguous chunk was reconciled by the library: read back, resent only what had not
    // been applied.
    let p = report.progress();
    println!(
        "  unknown outcomes resolved by reading back: {} read, {} already applied, {} sent again",
        p.read_back, p.found_applied, p.resent
    );
    let resent = p.resent;
    let qualified = client
        .list_processes("lead", Query::new().eq("state", "QUALIFIED"), 100)
        .count()
        .await;
    println!(
        "read back: {qualified} processes QUALIFIED (expected {}); {} jobs, {} requests retried",
        PROCESSES - 5 - 5 - 1,
        chakra.jobs_created(),
        client.stats().retries
    );
    let row = SummaryRow {
        vendor: "chakra",
        against: "simulator".into(),
        items: report.total() + resent,
        jobs: chakra.jobs_created() as u64,
        retries: client.stats().retries,
        time: started.elapsed(),
    };
    sim.shutdown().await;
    Ok(row)
}

/// Shows a bulk update's progress on `bar`: items finished, and those sent.
fn uploading(bar: &Bar) -> impl Fn(&BulkProgress) + Send + Sync + 'static {
    let bar = bar.clone();
    move |p| {
        bar.update(
            p.finished,
            format!(
                "sent {}, ok {}, failed {}, unknown {}, chunk size {}",
                p.sent, p.succeeded, p.failed, p.unknown, p.chunk_size
            ),
        );
    }
}

/// Against ChakraHQ: a first page of processes, and only with `BULK_DEMO_LIVE_WRITE=1` a bulk
/// update of the items in `CHAKRA_DEMO_UPDATES`.
async fn against_vendor(started: Instant) -> DynResult<SummaryRow> {
    let client = Client::from_env()?;
    let host = super::host(client.base_url());
    let write = super::live_write();
    let Ok(procedure) = std::env::var("CHAKRA_DEMO_PROCEDURE") else {
        super::announce(
            &format!("{host} (CHAKRA_TOKEN is set)"),
            "set CHAKRA_DEMO_PROCEDURE to a procedure's name to read its processes; skipped",
        );
        return Ok(SummaryRow {
            vendor: "chakra",
            against: format!("{host} (skipped)"),
            items: 0,
            jobs: 0,
            retries: 0,
            time: started.elapsed(),
        });
    };
    let updates = std::env::var_os("CHAKRA_DEMO_UPDATES").filter(|_| write);
    super::announce(
        &format!("{host} (CHAKRA_TOKEN is set)"),
        if updates.is_some() {
            "BULK_DEMO_LIVE_WRITE=1: the updates in CHAKRA_DEMO_UPDATES are applied"
        } else {
            "read-only; set BULK_DEMO_LIVE_WRITE=1 and CHAKRA_DEMO_UPDATES to run a bulk update"
        },
    );
    let (page, more) = client
        .list_processes_page(&procedure, &Query::new(), 0, 10)
        .await?;
    println!(
        "  {procedure}: {} processes on the first page, more: {more}",
        page.len()
    );
    let (mut items, mut jobs) = (page.len() as u64, 0);
    if let Some(path) = updates {
        let text = std::fs::read_to_string(&path)?;
        let updates = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map(ProcessUpdate::from_wire))
            .collect::<Result<Vec<_>, _>>()?;
        let bar = Bar::new("update", Some(updates.len() as u64), "items");
        let report = client
            .bulk_update(procedure)
            .on_progress(uploading(&bar))
            .run(updates)
            .await?;
        bar.finish(format!("{} jobs", report.jobs().len()));
        println!(
            "  {} applied, {} failed, {} unknown",
            report.succeeded(),
            report.failed().len(),
            report.unknown_count()
        );
        items = report.total();
        jobs = report.jobs().len() as u64;
    } else {
        println!("  nothing was changed");
    }
    Ok(SummaryRow {
        vendor: "chakra",
        against: host,
        items,
        jobs,
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}
