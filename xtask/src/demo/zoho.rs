//! The demo's Zoho section: a report of 250,000 rows (more than one job may return) exported as
//! one stream of rows, through a failed status call, a download cut short, and an access token
//! that expires between jobs. With `ZOHO_CLIENT_ID` and `ZOHO_DEMO_REPORT` in the environment it
//! exports that report from Zoho instead (read-only).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use vendor_sim::zoho::ZohoConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder};
use zoho_bulk::{Client, ExportEvent, ExportOptions, ReadQuery, SecretString};

use super::SummaryRow;
use crate::DynResult;

pub(crate) async fn run() -> DynResult<SummaryRow> {
    let started = Instant::now();
    if std::env::var_os("ZOHO_CLIENT_ID").is_some() {
        match std::env::var("ZOHO_DEMO_REPORT") {
            Ok(report) => return live(&report, started).await,
            Err(_) => {
                println!("  ZOHO_CLIENT_ID is set but ZOHO_DEMO_REPORT is not; using the simulator")
            }
        }
    }
    let cfg = ZohoConfig {
        job_duration: Duration::from_millis(1500),
        ..ZohoConfig::default()
    };
    let read = "/api/bulk/v2/{owner}/{app}/report/{report}/read";
    let (sim, zoho) = vendor_sim::zoho::start(
        SimBuilder::new("zoho")
            .seed(7)
            .fault(
                FaultRule::new(Fault::Status(502))
                    .path(&format!("{read}/{{job_id}}"))
                    .nth(1),
            )
            .fault(
                FaultRule::new(Fault::TruncatedBody)
                    .path(&format!("{read}/{{job_id}}/result"))
                    .nth(2),
            ),
        cfg.clone(),
    )
    .await?;
    let client = Client::builder()
        .creator_url(sim.base_url())
        .accounts_url(sim.base_url())
        .owner(cfg.owner.clone())
        .app(cfg.app.clone())
        .credentials(
            cfg.client_id.clone(),
            SecretString::from(cfg.client_secret.clone()),
            SecretString::from(cfg.refresh_token.clone()),
        )
        .poll_policy(
            bulk_common::poll::PollPolicy::default()
                .first_delay(Duration::from_millis(500))
                .deadline(Some(Duration::from_secs(120))),
        )
        .build()?;
    let expire = zoho.clone();
    let expired = std::sync::atomic::AtomicBool::new(false);
    let opts = ExportOptions::new().on_progress(move |e| match e {
        ExportEvent::JobCreated(job) => println!("  job {} created", job.id),
        ExportEvent::JobDownloaded { job, rows, bytes } => {
            println!(
                "  job {}: {} rows in a {} KiB ZIP",
                job.id,
                rows.unwrap_or(0),
                bytes / 1024
            );
            if !expired.swap(true, std::sync::atomic::Ordering::Relaxed) {
                expire.expire_tokens();
                println!("  (the simulator expires every access token now)");
            }
        }
        ExportEvent::Checkpoint(c) if c.rows_delivered > 0 && c.following.is_none() => {
            println!("  checkpoint: {} rows delivered", c.rows_delivered)
        }
        _ => {}
    });
    let rows = client
        .export_with("All_Orders", ReadQuery::new(), opts)
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    let jobs = sim.counters().get("zoho.jobs.created");
    println!(
        "  {rows} rows from {jobs} jobs; {} token refreshes; {} downloads for {jobs} results",
        sim.counters().get("zoho.refreshes"),
        sim.counters()
            .received(&format!("GET {read}/{{job_id}}/result"))
    );
    sim.shutdown().await;
    Ok(SummaryRow {
        vendor: "zoho",
        against: "simulator".into(),
        items: rows,
        jobs,
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}

async fn live(report: &str, started: Instant) -> DynResult<SummaryRow> {
    let client = Client::from_env()?;
    println!("  exporting {report} from Zoho");
    let rows = client
        .export(report, ReadQuery::new())
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    println!("  {rows} rows");
    Ok(SummaryRow {
        vendor: "zoho",
        against: "zoho (live)".into(),
        items: rows,
        jobs: 0,
        retries: 0,
        time: started.elapsed(),
    })
}
