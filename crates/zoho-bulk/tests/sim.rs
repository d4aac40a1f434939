//! zoho-bulk against the Zoho simulator, on Tokio's paused clock.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulk_common::poll::{Job, JobState};
use futures::TryStreamExt;
use serde_json::json;
use vendor_sim::zoho::{Zoho, ZohoConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};
use zoho_bulk::{
    CancellationToken, Client, ErrorKind, ExportCheckpoint, ExportEvent, ExportOptions, JobHandle,
    JobStatus, MaxRecords, NextStep, ReadQuery, Record, SecretString, WaitOptions,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIG: &str = "Big";
const BIG_ROWS: u64 = 230_001;

fn config() -> ZohoConfig {
    ZohoConfig {
        reports: vec![("Small".into(), 25), (BIG.into(), BIG_ROWS)],
        ..ZohoConfig::default()
    }
}

async fn sim(cfg: ZohoConfig, faults: Vec<FaultRule>) -> (SimHandle, Zoho) {
    let mut b = SimBuilder::new("zoho").seed(5);
    for f in faults {
        b = b.fault(f);
    }
    vendor_sim::zoho::start(b, cfg).await.unwrap()
}

fn client_for(sim: &SimHandle, cfg: &ZohoConfig) -> zoho_bulk::ClientBuilder {
    Client::builder()
        .creator_url(sim.base_url())
        .accounts_url(sim.base_url())
        .owner(cfg.owner.clone())
        .app(cfg.app.clone())
        .credentials(
            cfg.client_id.clone(),
            SecretString::from(cfg.client_secret.clone()),
            SecretString::from(cfg.refresh_token.clone()),
        )
}

/// `fault` on the `n`-th job creation.
fn on_create(fault: Fault, n: u32) -> FaultRule {
    FaultRule::new(fault)
        .method("POST")
        .path("/api/bulk/v2/{owner}/{app}/report/{report}/read")
        .nth(n)
}

/// Reads an export that must fail: the rows before the error, and the error.
async fn rows_then_error(export: &mut zoho_bulk::Export) -> (u64, zoho_bulk::Error) {
    let mut n = 0u64;
    loop {
        match export.try_next().await {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("the export must not end quietly"),
            Err(e) => return (n, e),
        }
    }
}

fn id(row: &Record) -> u64 {
    row.get("ID").unwrap().parse::<u64>().unwrap() - 3_000_000_000_000
}

/// Checks that `rows` are exactly rows `1..=n`, in order and intact.
fn assert_all_rows(rows: &[Record], n: u64) {
    assert_eq!(rows.len() as u64, n);
    for (i, row) in rows.iter().enumerate() {
        let want = i as u64 + 1;
        assert_eq!(id(row), want);
        if want.is_multiple_of(997) || want < 30 {
            let values: Vec<&str> = row.values().collect();
            assert_eq!(values, Zoho::row(want), "row {want}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_seed_flow_create_poll_download_returns_the_rows() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let download = client.read_report("Small", &ReadQuery::new()).await?;
    assert_eq!(download.record_cursor, None);
    let rows: Vec<Record> = download.rows.try_collect().await?;
    assert_all_rows(&rows, 25);
    // Quotes, commas, line breaks and non-ASCII text survive.
    assert_eq!(rows[6].get("Name"), Some("O\"Brien 7"));
    assert_eq!(
        rows[10].get("Notes"),
        Some("first line, with a comma\nsecond line of 11")
    );
    assert_eq!(rows[12].get("Tags"), Some("vip,🚀"));
    assert_eq!(rows[0].get("City"), Some("São Paulo"));
    assert_eq!(sim.counters().get("zoho.refreshes"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_saved_handle_is_waited_for_by_another_client_with_progress() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let job = client_for(&sim, &cfg)
        .build()?
        .create_job("Small", &ReadQuery::new())
        .await?;
    let saved = serde_json::to_string(&job)?;

    // Another process: a new client, and the handle read back from JSON.
    let client = client_for(&sim, &cfg).build()?;
    let handle: JobHandle = serde_json::from_str(&saved)?;
    assert_eq!(handle, job);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let details = client
        .wait(&handle)
        .poll_immediately(true)
        .on_progress(move |e| sink.lock().unwrap().push(e.progress.status.clone()))
        .await?;
    assert_eq!(details.status, JobStatus::Completed);
    assert_eq!(&details.id, handle.id());
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty(),
        "the first look, at once, finds the job running"
    );
    for status in seen {
        assert_eq!(
            JobStatus::from(status.unwrap().as_str()),
            JobStatus::InProgress
        );
    }

    // The watch is owned: it moves into a task.
    let watch = client.watch(&handle);
    let look = tokio::spawn(async move { watch.poll().await }).await??;
    assert!(matches!(look, JobState::Done(d) if d.status == JobStatus::Completed));

    // A cancelled wait ends with `Cancelled`, through the builder or shared options.
    let next = client.create_job("Small", &ReadQuery::new()).await?;
    let stop = CancellationToken::new();
    stop.cancel();
    let err = client
        .wait(&next)
        .cancel_on(stop.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    let err = client
        .wait(&next)
        .options(WaitOptions::new().cancel_on(stop))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_exports_wait_options_reach_every_job_wait() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let looks = Arc::new(Mutex::new(Vec::new()));
    let pending = Arc::new(Mutex::new(0usize));
    let (sink, count) = (looks.clone(), pending.clone());
    // Every 0.5 s instead of the client's growing delays.
    let every_half_second = Client::default_poll_policy()
        .first_delay(Duration::from_millis(500))
        .multiplier(1.0)
        .max_delay(Duration::from_millis(500));
    let opts = ExportOptions::new()
        .on_progress(move |e| {
            if let ExportEvent::JobPending { .. } = e {
                *count.lock().unwrap() += 1;
            }
        })
        .wait_options(
            WaitOptions::new()
                .policy(every_half_second)
                .on_progress(move |e| sink.lock().unwrap().push(e.job.clone())),
        );
    let rows: Vec<Record> = client
        .export_with(BIG, ReadQuery::new().max_records(MaxRecords::MIN), opts)
        .try_collect()
        .await?;
    assert_all_rows(&rows, BIG_ROWS);
    let looks = looks.lock().unwrap().clone();
    assert_eq!(
        looks.len(),
        *pending.lock().unwrap(),
        "both observers see each look"
    );
    let mut jobs = looks.clone();
    jobs.dedup();
    assert_eq!(jobs.len(), 3, "{looks:?}");
    // A 3 s job looked at every 0.5 s is seen running about 5 times; the client's default
    // policy (1 s, growing ×1.5) would see it twice.
    assert!(looks.len() >= 3 * 4, "{looks:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_export_chains_jobs_through_the_record_cursor() -> TestResult {
    let cfg = config();
    let (sim, zoho) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let rows: Vec<Record> = client
        .export(BIG, ReadQuery::new().max_records(MaxRecords::MIN))
        .try_collect()
        .await?;
    assert_all_rows(&rows, BIG_ROWS);
    assert_eq!(sim.counters().get("zoho.jobs.created"), 3);
    assert_eq!(zoho.rows_served(), BIG_ROWS);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_export_survives_throttling_errors_a_truncated_zip_and_token_expiry() -> TestResult {
    let cfg = config();
    let read = "/api/bulk/v2/{owner}/{app}/report/{report}/read";
    let (sim, zoho) = sim(
        cfg.clone(),
        vec![
            FaultRule::new(Fault::TooManyRequests {
                retry_after: Some("2".into()),
            })
            .method("POST")
            .path(read)
            .nth(2),
            FaultRule::new(Fault::Status(503))
                .path(&format!("{read}/{{job_id}}"))
                .nth(2),
            FaultRule::new(Fault::TruncatedBody)
                .path(&format!("{read}/{{job_id}}/result"))
                .nth(1),
        ],
    )
    .await;
    let client = client_for(&sim, &cfg).build()?;
    let expire = zoho.clone();
    let opts = ExportOptions::new().on_progress(move |e| {
        if let ExportEvent::JobDownloaded { .. } = e {
            expire.expire_tokens();
        }
    });
    let rows: Vec<Record> = client
        .export_with(BIG, ReadQuery::new(), opts)
        .try_collect()
        .await?;
    assert_all_rows(&rows, BIG_ROWS);
    assert_eq!(
        sim.counters().get("zoho.jobs.created"),
        3,
        "no duplicate job"
    );
    assert!(
        sim.counters().get("zoho.refreshes") >= 2,
        "refreshed after expiry"
    );
    assert_eq!(
        sim.counters()
            .received(&format!("GET {read}/{{job_id}}/result")),
        4,
        "the truncated download was fetched again"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn client_throttles_keep_job_creation_under_the_vendor_limit() -> TestResult {
    let cfg = ZohoConfig {
        creates_per_minute: 2,
        job_duration: Duration::from_millis(500),
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).throttles(2, 10).build()?;
    let started = tokio::time::Instant::now();
    let n = client
        .export(BIG, ReadQuery::new())
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    assert_eq!(n, BIG_ROWS);
    assert_eq!(sim.counters().get("zoho.throttled.create"), 0);
    assert!(started.elapsed() >= Duration::from_secs(60));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_ends_the_export_with_a_typed_error_after_the_rows_before_it() -> TestResult {
    let cfg = ZohoConfig {
        failing_jobs: vec![2],
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let mut export = client.export(BIG, ReadQuery::new());
    let (n, err) = rows_then_error(&mut export).await;
    assert_eq!(n, 100_000);
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_daily_limit_sent_with_http_200_is_a_quota_error() -> TestResult {
    let cfg = ZohoConfig {
        daily_job_limit: Some(0),
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let err = client
        .create_job("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.vendor_code(), Some("4000"));
    assert_eq!(err.status(), Some(200));
    assert!(!err.is_retryable());
    assert_eq!(
        sim.counters()
            .received("POST /api/bulk/v2/{owner}/{app}/report/{report}/read"),
        1
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refresh_refused_for_rate_reasons_is_a_typed_error_not_a_loop() -> TestResult {
    let cfg = ZohoConfig {
        mint_cap: 1,
        ..config()
    };
    let (sim, zoho) = sim(cfg.clone(), vec![]).await;
    // The local cap is off, so the vendor's refusal is what the client meets.
    let client = client_for(&sim, &cfg).refresh_limit(None).build()?;
    client.create_job("Small", &ReadQuery::new()).await?;
    zoho.expire_tokens();
    let err = client
        .create_job("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.vendor_code(), Some("Access Denied"));
    let _ = client.create_job("Small", &ReadQuery::new()).await;
    assert_eq!(sim.counters().received("POST /oauth/v2/token"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_local_minting_cap_stops_refreshes_before_zoho_would() -> TestResult {
    let cfg = config();
    let (sim, zoho) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    for _ in 0..10 {
        client.create_job("Small", &ReadQuery::new()).await?;
        zoho.expire_tokens();
        tokio::time::advance(Duration::from_secs(13)).await;
    }
    let err = client
        .create_job("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.retry_after().is_some());
    assert_eq!(sim.counters().get("zoho.refreshes"), 10);
    assert_eq!(sim.counters().get("zoho.refreshes.refused"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_export_resumes_from_a_checkpoint_without_a_new_first_job() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let checkpoints = Arc::new(Mutex::new(Vec::<ExportCheckpoint>::new()));
    let sink = checkpoints.clone();
    let first = client_for(&sim, &cfg).build()?;
    let mut export = first.export_with(
        BIG,
        ReadQuery::new(),
        ExportOptions::new().on_progress(move |e| {
            if let ExportEvent::Checkpoint(c) = e {
                sink.lock().unwrap().push((*c).clone());
            }
        }),
    );
    // Consume the first job's rows and one more, which moves the export to its second job.
    let mut seen = Vec::new();
    for _ in 0..100_001 {
        seen.push(id(&export.try_next().await?.unwrap()));
    }
    drop(export);
    let saved = serde_json::to_string(checkpoints.lock().unwrap().last().unwrap())?;
    let checkpoint: ExportCheckpoint = serde_json::from_str(&saved)?;
    assert_eq!(checkpoint.rows_delivered, 100_000);
    assert!(matches!(checkpoint.next, NextStep::Job(_)));

    // "After a restart": a new client finishes the export from the checkpoint.
    let second = client_for(&sim, &cfg).build()?;
    let rest: Vec<u64> = second
        .resume_export(checkpoint, ExportOptions::new())
        .map_ok(|r| id(&r))
        .try_collect()
        .await?;
    assert_eq!(rest.first(), Some(&100_001));
    assert_eq!(rest.last(), Some(&BIG_ROWS));
    assert_eq!(100_000 + rest.len() as u64, BIG_ROWS);
    assert_eq!(sim.counters().get("zoho.jobs.created"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_archive_is_a_decode_error_not_partial_data() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(
        cfg.clone(),
        vec![
            FaultRule::new(Fault::MalformedBody)
                .path("/api/bulk/v2/{owner}/{app}/report/{report}/read/{job_id}/result"),
        ],
    )
    .await;
    let client = client_for(&sim, &cfg).build()?;
    // The archive is checked before any row is handed over; every attempt gets garbage.
    let err = client
        .read_report("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("ZIP"), "{err}");
    assert!(err.to_string().contains("6 attempts"), "{err}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn separate_create_and_read_grants_each_mint_once() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg)
        .read_refresh_token(SecretString::from(cfg.read_refresh_token.clone()))
        .build()?;
    let rows: Vec<Record> = client
        .read_report("Small", &ReadQuery::new())
        .await?
        .rows
        .try_collect()
        .await?;
    assert_eq!(rows.len(), 25);
    assert_eq!(sim.counters().get("zoho.refreshes"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_read_only_grant_cannot_create_jobs_and_says_so() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg)
        .credentials(
            cfg.client_id.clone(),
            SecretString::from(cfg.client_secret.clone()),
            SecretString::from(cfg.read_refresh_token.clone()),
        )
        .build()?;
    let err = client
        .create_job("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_code(), Some("2945"));
    Ok(())
}

#[derive(serde::Deserialize)]
struct Order {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(rename = "Email")]
    email: String,
    #[serde(rename = "Score")]
    score: u32,
}

#[tokio::test(start_paused = true)]
async fn rows_decode_into_user_types() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let orders: Vec<Order> = client
        .export_as::<Order>("Small", ReadQuery::new())
        .try_collect()
        .await?;
    assert_eq!(orders.len(), 25);
    assert_eq!(orders[2].id, 3_000_000_000_003);
    assert_eq!(orders[2].email, "user3@example.com");
    assert_eq!(orders[2].score, (3 * 37) % 101);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn invalid_queries_are_refused_before_sending() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    for query in [
        ReadQuery::new().fields(Vec::<String>::new()),
        ReadQuery::new().criteria("  "),
    ] {
        let err = client.create_job("Small", &query).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    let err = client.create_job(" ", &ReadQuery::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(sim.counters().routes().is_empty(), "nothing was sent");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn only_the_requested_fields_are_exported_across_every_job() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg).build()?;
    let rows: Vec<Record> = client
        .export(BIG, ReadQuery::new().fields(["ID", "Notes"]))
        .try_collect()
        .await?;
    assert_eq!(rows.len() as u64, BIG_ROWS);
    for row in [&rows[0], &rows[150_000], &rows[229_999]] {
        assert_eq!(row.columns().collect::<Vec<_>>(), ["ID", "Notes"]);
    }
    assert_eq!(
        rows[109].get("Notes"),
        Some("first line, with a comma\nsecond line of 110")
    );
    let err = client
        .create_job(BIG, &ReadQuery::new().fields(["Nope"]))
        .await
        .unwrap_err();
    assert_eq!(err.vendor_code(), Some("2950"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_follow_up_job_whose_creation_is_ambiguous_is_created_again() -> TestResult {
    // Three jobs of 10 rows; the reply creating the second is lost after Zoho created it. A
    // read job changes nothing, so it is created again from the same cursor: one orphan.
    let cfg = ZohoConfig {
        job_row_cap: Some(10),
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![on_create(Fault::ResetAfterHandler, 2)]).await;
    let client = client_for(&sim, &cfg).build()?;
    let orphans = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = orphans.clone();
    let opts = zoho_bulk::ExportOptions::new().on_progress(move |e| {
        if let zoho_bulk::ExportEvent::Checkpoint(c) = e {
            seen.store(c.orphaned_jobs, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let rows: Vec<Record> = client
        .export_with("Small", ReadQuery::new(), opts)
        .try_collect()
        .await?;
    assert_all_rows(&rows, 25);
    assert_eq!(
        sim.counters().get("zoho.jobs.created"),
        4,
        "3 jobs + 1 orphan"
    );
    assert_eq!(orphans.load(std::sync::atomic::Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_one_create_attempt_an_ambiguous_creation_is_reported() -> TestResult {
    let cfg = ZohoConfig {
        job_row_cap: Some(10),
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![on_create(Fault::ResetAfterHandler, 2)]).await;
    let client = client_for(&sim, &cfg).create_attempts(1).build()?;
    let mut export = client.export("Small", ReadQuery::new());
    let (n, err) = rows_then_error(&mut export).await;
    assert_eq!(n, 10, "the first batch is delivered");
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(sim.counters().get("zoho.jobs.created"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_complete_reply_with_a_cut_off_zip_is_downloaded_again() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(
        cfg.clone(),
        vec![
            FaultRule::new(Fault::CutBody)
                .path("/api/bulk/v2/{owner}/{app}/report/{report}/read/{job_id}/result")
                .times(2),
        ],
    )
    .await;
    let client = client_for(&sim, &cfg).build()?;
    let rows: Vec<Record> = client
        .read_report("Small", &ReadQuery::new())
        .await?
        .rows
        .try_collect()
        .await?;
    assert_all_rows(&rows, 25);
    assert_eq!(
        sim.counters()
            .received("GET /api/bulk/v2/{owner}/{app}/report/{report}/read/{job_id}/result"),
        3
    );
    // Always cut off: a bounded number of attempts, then a Decode error.
    sim.faults().push(
        FaultRule::new(Fault::CutBody)
            .path("/api/bulk/v2/{owner}/{app}/report/{report}/read/{job_id}/result"),
    );
    let err = client_for(&sim, &cfg)
        .download_attempts(3)
        .build()?
        .read_report("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("3 attempts"), "{err}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_job_creation_reply_is_an_ambiguous_outcome() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![on_create(Fault::MalformedBody, 1)]).await;
    let client = client_for(&sim, &cfg).build()?;
    let err = client
        .create_job("Small", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert!(!err.is_retryable());
    assert_eq!(sim.counters().get("zoho.jobs.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_v2_1_form_exports_through_its_own_paths() -> TestResult {
    let cfg = ZohoConfig {
        job_row_cap: Some(10),
        ..config()
    };
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    let client = client_for(&sim, &cfg)
        .api_version(zoho_bulk::ApiVersion::V2_1)
        .build()?;
    let rows: Vec<Record> = client
        .export("Small", ReadQuery::new())
        .try_collect()
        .await?;
    assert_all_rows(&rows, 25);
    let v21 = "/creator/v2.1/bulk/{owner}/{app}/report/{report}/read";
    assert_eq!(sim.counters().received(&format!("POST {v21}")), 3);
    assert_eq!(
        sim.counters()
            .received(&format!("GET {v21}/{{job_id}}/result")),
        3
    );
    assert_eq!(
        sim.counters()
            .received("POST /api/bulk/v2/{owner}/{app}/report/{report}/read"),
        0
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_simulator_refuses_wrong_paths_and_loose_bodies() -> TestResult {
    let cfg = config();
    let (sim, _) = sim(cfg.clone(), vec![]).await;
    use zoho_bulk::bulk_common::{Auth, HttpClient, Method};
    let http = HttpClient::builder("sim-test")
        .base_url(&sim.base_url())
        .build()?;
    let token: serde_json::Value = http
        .request(Method::Post, "/oauth/v2/token")
        .form([
            ("grant_type", "refresh_token"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("refresh_token", cfg.refresh_token.as_str()),
        ])
        .send()
        .await?
        .json()?;
    // A misspelt refresh parameter is refused, not ignored.
    let err = http
        .request(Method::Post, "/oauth/v2/token")
        .form([
            ("grant_type", "refresh_token"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("refresh_tokn", cfg.refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.body_excerpt()
            .unwrap_or_default()
            .contains("invalid_request"),
        "{err}"
    );
    let auth = Auth::header(
        "authorization",
        "Zoho-oauthtoken ",
        SecretString::from(token["access_token"].as_str().unwrap().to_owned()),
    )?;
    let refused = |e: zoho_bulk::Error| -> (u16, serde_json::Value) {
        let body = e.body_excerpt().unwrap_or_default();
        (
            e.status().unwrap_or_default(),
            serde_json::from_str(body).unwrap_or_default(),
        )
    };
    // A v2.1 path under the v2 layout (as an old v2.1 sample shows it) is not a route.
    let err = http
        .request(
            Method::Post,
            "/api/bulk/v2.1/acme/orders-app/report/Small/read",
        )
        .auth(auth.clone())
        .send()
        .await
        .unwrap_err();
    let (status, body) = refused(err);
    assert_eq!(status, 404);
    assert_eq!(body["code"], 1000);
    let read = "/api/bulk/v2/acme/orders-app/report/Small/read";
    for (sent, code, what) in [
        (json!({"query": {"feilds": ["Email"]}}), 1060, "feilds"),
        (
            json!({"query": {"max_records": "100000"}}),
            1060,
            "max_records",
        ),
        (json!({"query": {"fields": "Email"}}), 1060, "fields"),
        (json!({"fields": ["Email"]}), 1060, "fields"),
        (json!({}), 1000, "query"),
    ] {
        let err = http
            .request(Method::Post, read)
            .auth(auth.clone())
            .json(&sent)
            .send()
            .await
            .unwrap_err();
        let (status, body) = refused(err);
        assert_eq!(status, 401, "{sent}");
        assert_eq!(body["code"], code, "{sent}");
        assert!(
            body["message"].as_str().unwrap_or_default().contains(what),
            "{sent}: {body}"
        );
    }
    assert_eq!(sim.counters().get("zoho.jobs.created"), 0);
    Ok(())
}
