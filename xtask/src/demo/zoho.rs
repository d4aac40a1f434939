//! The demo's Zoho section: a report of 250,000 rows (more than one job may return) exported as
//! one stream of rows, through a failed status call, a download cut short, and an access token
//! that expires between jobs. With Zoho credentials in the environment (`ZOHO_CLIENT_ID`,
//! `ZOHO_REFRESH_TOKEN`, ... as `Client::from_env` reads them) it runs against Zoho instead,
//! read-only: it exports the report named by `ZOHO_DEMO_REPORT` (a bulk read changes nothing).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use vendor_sim::zoho::ZohoConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder};
use zoho_bulk::{Client, ExportEvent, ExportOptions, ReadQuery, SecretString};

use super::SummaryRow;
use super::progress::Bar;
use crate::DynResult;

pub(crate) async fn run() -> DynResult<SummaryRow> {
    let started = Instant::now();
    if super::live(&["ZOHO_CLIENT_ID", "ZOHO_REFRESH_TOKEN"]) {
        return live(started).await;
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
    super::announce(&format!("simulator {}", sim.base_url()), "All_Orders");
    let expire = zoho.clone();
    let expired = std::sync::atomic::AtomicBool::new(false);
    let bar = Bar::new("rows", Some(0), "rows");
    let opts = ExportOptions::new().on_progress({
        let bar = bar.clone();
        move |e| {
            show_event(&bar, e);
            if let ExportEvent::JobDownloaded { .. } = e
                && !expired.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                expire.expire_tokens();
                bar.println("  (the simulator expires every access token now)");
            }
        }
    });
    let rows = count_rows(
        client.export_with("All_Orders", ReadQuery::new(), opts),
        &bar,
    )
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

/// Shows an export's events on `bar`: its length grows by each downloaded job's rows.
fn show_event(bar: &Bar, e: &ExportEvent<'_>) {
    match e {
        ExportEvent::JobCreated(job) => bar.println(format!("  job {} created", job.id())),
        ExportEvent::JobPending { job, status, polls } => {
            bar.update(
                bar.position(),
                format!("job {}: {status} (look {polls})", job.id()),
            );
        }
        ExportEvent::JobDownloaded { job, rows, bytes } => {
            bar.set_len(bar.length() + rows.unwrap_or(0));
            bar.println(format!(
                "  job {}: {} rows in a {} KiB ZIP",
                job.id(),
                rows.unwrap_or(0),
                bytes / 1024
            ));
        }
        ExportEvent::Checkpoint(c) if c.rows_delivered > 0 && c.following.is_none() => {
            bar.println(format!("  checkpoint: {} rows delivered", c.rows_delivered));
        }
        _ => {}
    }
}

/// Consumes an export's rows, counting them on `bar`.
async fn count_rows(
    rows: impl futures::Stream<Item = zoho_bulk::Result<zoho_bulk::Record>>,
    bar: &Bar,
) -> DynResult<u64> {
    let mut rows = std::pin::pin!(rows);
    let mut n = 0u64;
    while rows.try_next().await?.is_some() {
        n += 1;
        if n.is_multiple_of(1000) {
            bar.update(n, "");
        }
    }
    bar.update(n, "");
    bar.finish("rows streamed");
    Ok(n)
}

/// Against Zoho: export the report named by `ZOHO_DEMO_REPORT` (read-only).
async fn live(started: Instant) -> DynResult<SummaryRow> {
    let client = Client::from_env()?;
    let Ok(report) = std::env::var("ZOHO_DEMO_REPORT") else {
        super::announce(
            "Zoho (credentials are set)",
            "read-only; set ZOHO_DEMO_REPORT to a report's link name to export it; skipped",
        );
        return Ok(SummaryRow {
            vendor: "zoho",
            against: "zoho (skipped)".into(),
            items: 0,
            jobs: 0,
            retries: 0,
            time: started.elapsed(),
        });
    };
    super::announce(
        "Zoho (credentials are set)",
        &format!("read-only: a bulk read of {report}"),
    );
    let bar = Bar::new("rows", Some(0), "rows");
    let jobs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let opts = ExportOptions::new().on_progress({
        let bar = bar.clone();
        let jobs = jobs.clone();
        move |e| {
            if let ExportEvent::JobCreated(_) = e {
                jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            show_event(&bar, e);
        }
    });
    let rows = count_rows(client.export_with(&report, ReadQuery::new(), opts), &bar).await?;
    println!("  {rows} rows");
    Ok(SummaryRow {
        vendor: "zoho",
        against: "zoho (live)".into(),
        items: rows,
        jobs: jobs.load(std::sync::atomic::Ordering::Relaxed),
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}
