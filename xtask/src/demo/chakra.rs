//! The ChakraHQ section: a bulk update of 5,000 processes with some unknown and invalid items,
//! against the embedded simulator with a per-request cap (413, chunks halved), throttling,
//! server errors while polling and one connection reset after a chunk was applied (an ambiguous
//! outcome, reconciled by reading back). With `CHAKRA_TOKEN` and `CHAKRA_DEMO_PROCEDURE` set,
//! it only reads from the real vendor (a first page of processes).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chakra_api::{Client, Outcome, ProcessUpdate, Query, SecretString, default_poll_policy};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use vendor_sim::chakra::{ChakraConfig, ProcedureSpec};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

use super::SummaryRow;
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
    if std::env::var_os("CHAKRA_TOKEN").is_some() {
        if let Ok(procedure) = std::env::var("CHAKRA_DEMO_PROCEDURE") {
            return read_only(&procedure, started).await;
        }
        println!("note: CHAKRA_TOKEN is set but CHAKRA_DEMO_PROCEDURE is not; using the simulator");
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
    println!(
        "simulator: {} (lead: {PROCESSES} processes, at most 600 items per request)",
        sim.base_url()
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
    let last = Mutex::new(0u64);
    let report = client
        .bulk_update("lead")
        .poll_policy(default_poll_policy().first_delay(Duration::from_millis(200)))
        .on_progress(move |p| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if p.finished >= *last + 1000 || p.finished == p.read && p.finished > *last {
                *last = p.finished;
                println!(
                    "  progress: sent {:>5}, finished {:>5} (ok {}, failed {}, unknown {}), chunk size {}",
                    p.sent, p.finished, p.succeeded, p.failed, p.unknown, p.chunk_size
                );
            }
        })
        .run(updates)
        .await?;
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

    // Reconcile the ambiguous chunk by reading back: resend only what did not apply.
    let unknown = report.unknown();
    let mut resent = 0;
    if !unknown.is_empty() {
        let keys: Vec<serde_json::Value> = unknown
            .iter()
            .filter_map(|u| u.identifier().map(|id| id.value()))
            .collect();
        let applied: Vec<String> = client
            .list_processes(
                "lead",
                Query::new()
                    .any_of("lead_id", keys)
                    .eq("state", "QUALIFIED"),
                100,
            )
            .map_ok(|p| p.data["lead_id"].as_str().unwrap_or_default().to_owned())
            .try_collect()
            .await?;
        let missing: Vec<ProcessUpdate> = unknown
            .into_iter()
            .filter(|u| {
                u.identifier()
                    .is_some_and(|id| !applied.iter().any(|a| id.value() == json!(a)))
            })
            .collect();
        println!(
            "  reconcile: {} unknown items read back, {} already applied, {} to resend",
            report.unknown_count(),
            applied.len(),
            missing.len()
        );
        resent = missing.len();
        if !missing.is_empty() {
            let again = client.bulk_update("lead").run(missing).await?;
            println!(
                "  resent: {} applied, {} failed again (see report.failed())",
                again.succeeded(),
                again.failed().len()
            );
        }
    }
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
        items: report.total() + resent as u64,
        jobs: chakra.jobs_created() as u64,
        retries: client.stats().retries,
        time: started.elapsed(),
    };
    sim.shutdown().await;
    Ok(row)
}

async fn read_only(procedure: &str, started: Instant) -> DynResult<SummaryRow> {
    let client = Client::from_env()?;
    println!("reading from {} (read-only)", client.base_url().as_url());
    let (page, more) = client
        .list_processes_page(procedure, &Query::new(), 0, 10)
        .await?;
    println!("  {} processes on the first page, more: {more}", page.len());
    Ok(SummaryRow {
        vendor: "chakra",
        against: client
            .base_url()
            .as_url()
            .host_str()
            .unwrap_or("vendor")
            .to_owned(),
        items: page.len() as u64,
        jobs: 0,
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}
