//! The Unicat section: a bulk get over many short pages, a combined-selection bulk delete
//! followed through the sync feed with progress, a rejected job, an ambiguous submission that
//! is not re-sent, and JWT rotation, against the embedded simulator; or, with `UNICAT_API_KEY`
//! (and `UNICAT_PROJECT`) set, against Unicat itself: read-only, or with
//! `BULK_DEMO_LIVE_WRITE=1` also a bulk delete of the selection in `UNICAT_DEMO_SELECTION`.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use unicat_api::{
    Children, Client, ErrorKind, Filter, HttpOptions, JobHandle, JobReport, PollPolicy,
    RecordSelection, RetryPolicy, Search, SecretString,
};
use vendor_sim::unicat::UnicatConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder};

use super::SummaryRow;
use super::progress::Bar;
use crate::DynResult;

pub(crate) async fn run() -> DynResult<SummaryRow> {
    if super::live(&["UNICAT_API_KEY"]) {
        return against_unicat().await;
    }
    let started = Instant::now();
    let cfg = UnicatConfig {
        rotate_every: 7,
        jwt_grace: Duration::ZERO,
        max_job_items: 60,
        item_time: Duration::from_millis(60),
        ..UnicatConfig::default()
    };
    let get_path = format!("/api/p/{}/records/bulk/get", cfg.project);
    let delete_path = format!("/api/p/{}/records/bulk/delete", cfg.project);
    let builder = SimBuilder::new("unicat")
        .seed(2026)
        .fault(FaultRule::new(Fault::Status(503)).path(&get_path).nth(2))
        .fault(
            FaultRule::new(Fault::TooManyRequests {
                retry_after: Some("1".into()),
            })
            .path("/sync/get")
            .nth(2),
        )
        .fault(
            FaultRule::new(Fault::ResetAfterHandler)
                .path(&delete_path)
                .nth(3),
        );
    let (sim, unicat) = vendor_sim::unicat::start(builder, cfg.clone()).await?;
    super::announce(
        &format!("simulator {}", sim.base_url()),
        "JWT rotated every 7 requests, old one dies at once",
    );
    let client = Client::builder()
        .project(cfg.project.clone())
        .api_key(SecretString::from(cfg.api_key.clone()))
        .base_url(sim.base_url())
        .http_options(
            HttpOptions::default().retry(
                RetryPolicy::default()
                    .initial_delay(Duration::from_millis(200))
                    .max_attempts(4),
            ),
        )
        .poll_policy(
            PollPolicy::default()
                .first_delay(Duration::from_millis(250))
                .max_delay(Duration::from_secs(1))
                .deadline(Some(Duration::from_secs(30))),
        )
        .build()?;

    println!(
        "\n1. Bulk get: 3 unknown gids + folders 1 and 2, pages of 10 (a 503 on page 2 is retried)"
    );
    let selection = RecordSelection::new()
        .gids(["r-gone-1", "r-gone-2", "r-gone-3"])
        .children(Children::of("r-f1"))
        .children(Children::of("r-f2"));
    let mut stream = client
        .records()
        .get(&selection)
        .page_size(10)
        .stream::<serde_json::Value>();
    let mut fetched = 0u64;
    while let Some(record) = stream.try_next().await? {
        fetched += 1;
        if fetched == 1 {
            println!("  first: {} {}", record.gid, record.data["title"]);
        }
    }
    println!(
        "  {fetched} records (server count {}), {} pages, short ones included",
        stream.size().unwrap_or(0),
        sim.counters().get("bulk.get.pages")
    );

    println!("\n2. Bulk delete of a combined selection, followed through the sync feed");
    let selection = RecordSelection::new()
        .gid("r-f1-001")
        .children(Children::of("r-f2").exclude(["r-f2-003", "r-f2-004"]))
        .search(
            Search::new()
                .q("obsolete")
                .filter(Filter::new("definition", "is", "d-article"))
                .exclude(["r-f3-005"]),
        );
    let job = client.records().delete(&selection).await?;
    println!("  job {} (feed cursor {})", job.token(), job.cursor());
    let report = wait_for_delete(&client, &job).await?;
    let deleted = unicat.deleted_records().len() as u64;
    println!(
        "  {}: {} items; the simulator's trash now holds {deleted} records",
        report.status.as_str(),
        report.total.unwrap_or(0)
    );

    println!("\n3. A job the server rejects (more than 60 items)");
    let job = client
        .records()
        .delete(
            &RecordSelection::new()
                .children(Children::of("r-root"))
                .search(Search::new().q("product")),
        )
        .await?;
    match client.wait(&job).await {
        Err(e) if e.kind() == ErrorKind::JobFailed => println!(
            "  rejected, as expected: {}",
            e.vendor_message().unwrap_or("?")
        ),
        Err(e) => return Err(format!("expected a rejected job, got: {e}").into()),
        Ok(r) => return Err(format!("expected a rejected job, got {}", r.status.as_str()).into()),
    }

    println!("\n4. A delete whose connection breaks after the server took it");
    // The client does not send it again: it finds the job in the sync feed and follows it.
    let job = client
        .records()
        .delete(&RecordSelection::new().gid("r-f4-001"))
        .await?;
    let report = client.wait(&job).await?;
    let created = sim.counters().get("jobs.created");
    println!(
        "  found in the sync feed ({} found this way, {created} {} created in all): {} {}",
        client.stats().located,
        if created == 1 { "job" } else { "jobs" },
        report.token,
        report.status.as_str()
    );

    let stats = client.stats();
    println!(
        "\n  logins {}, rotated JWTs adopted {}, refused JWTs {}, feed reads {}, retries {}",
        stats.logins,
        stats.rotations,
        sim.counters().get("auth.refused"),
        stats.feed_reads,
        stats.retries
    );
    let row = SummaryRow {
        vendor: "unicat",
        against: "simulator".into(),
        items: fetched + deleted,
        jobs: sim.counters().get("jobs.created"),
        retries: stats.retries,
        time: started.elapsed(),
    };
    sim.shutdown().await;
    Ok(row)
}

/// Waits for a delete job, showing its progress as the sync feed reports it on a bar.
async fn wait_for_delete(client: &Client, job: &JobHandle) -> DynResult<JobReport> {
    let bar = Bar::new("delete", None, "records");
    let events = bar.clone();
    let report = client
        .wait(job)
        .on_progress(move |e| {
            let p = &e.progress;
            if let Some(total) = p.total {
                events.set_len(total);
            }
            events.update(
                p.done().unwrap_or(0),
                p.status.as_deref().unwrap_or("?").to_owned(),
            );
        })
        .await?;
    let total = report.total.unwrap_or(0);
    bar.set_len(total);
    bar.update(total, "");
    bar.finish(report.status.as_str().to_owned());
    Ok(report)
}

/// Against Unicat: log in, read the feed cursor, and (with `UNICAT_DEMO_SELECTION` naming a
/// file holding a selection) count the selected records; only with `BULK_DEMO_LIVE_WRITE=1`
/// delete them too.
async fn against_unicat() -> DynResult<SummaryRow> {
    let started = Instant::now();
    let client = Client::from_env()?;
    let selection = std::env::var_os("UNICAT_DEMO_SELECTION");
    let write = super::live_write() && selection.is_some();
    super::announce(
        &format!(
            "Unicat project {} (UNICAT_API_KEY is set)",
            client.project()
        ),
        if write {
            "BULK_DEMO_LIVE_WRITE=1: the records of UNICAT_DEMO_SELECTION are deleted"
        } else {
            "read-only; set BULK_DEMO_LIVE_WRITE=1 and UNICAT_DEMO_SELECTION to run a bulk delete"
        },
    );
    println!("  feed cursor: {}", client.cc_cursor().await?);
    let (mut items, mut jobs) = (0, 0);
    if let Some(path) = selection {
        let selection: RecordSelection = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let mut stream = client
            .records()
            .get(&selection)
            .page_size(500)
            .stream::<serde_json::Value>();
        let bar = Bar::new("get", None, "records");
        while stream.try_next().await?.is_some() {
            items += 1;
            bar.update(items, "");
        }
        bar.finish("");
        println!("  {items} records in the selection");
        if write {
            let job = client.records().delete(&selection).await?;
            jobs = 1;
            let report = wait_for_delete(&client, &job).await?;
            println!(
                "  {}: {} records deleted",
                report.status.as_str(),
                report.total.unwrap_or(0)
            );
        }
    }
    if !write {
        println!("  nothing was changed");
    }
    Ok(SummaryRow {
        vendor: "unicat",
        against: "unicat (live)".into(),
        items,
        jobs,
        retries: client.stats().retries,
        time: started.elapsed(),
    })
}
