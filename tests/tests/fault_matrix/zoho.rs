//! Zoho Creator: an export of a 25-row report with a per-job cap of 10 rows, so three jobs
//! chained by record cursors (`Client::export`), with OAuth token refresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use vendor_sim::zoho::{Zoho, ZohoConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};
use zoho_bulk::{Client, ClientBuilder, ErrorKind, ExportEvent, ExportOptions, ReadQuery, Record};

use crate::{bounded, on, server_errors, slow, throttled};

const REPORT: &str = "Orders";
const ROWS: u64 = 25;
const CAP: u64 = 10;
const READ: &str = "/api/bulk/v2/{owner}/{app}/report/{report}/read";

fn create() -> String {
    format!("POST {READ}")
}
fn status() -> String {
    format!("GET {READ}/{{job_id}}")
}
fn download() -> String {
    format!("GET {READ}/{{job_id}}/result")
}

fn config() -> ZohoConfig {
    ZohoConfig {
        reports: vec![(REPORT.into(), ROWS)],
        job_row_cap: Some(CAP),
        ..ZohoConfig::default()
    }
}

/// A client of the simulator's OAuth client and refresh token.
pub(crate) fn client_for(sim: &SimHandle, cfg: &ZohoConfig) -> ClientBuilder {
    Client::builder()
        .creator_url(sim.base_url())
        .accounts_url(sim.base_url())
        .owner(cfg.owner.clone())
        .app(cfg.app.clone())
        .credentials(
            cfg.client_id.clone(),
            cfg.client_secret.clone().into(),
            cfg.refresh_token.clone().into(),
        )
}

struct Run {
    rows: Vec<Record>,
    error: Option<zoho_bulk::Error>,
    sim: SimHandle,
    zoho: Zoho,
    client: Client,
}

async fn run(
    cfg: ZohoConfig,
    rules: Vec<FaultRule>,
    tune: impl FnOnce(ClientBuilder) -> ClientBuilder,
    on_event: impl Fn(&Zoho, &ExportEvent<'_>) + Send + Sync + 'static,
) -> Run {
    let mut builder = SimBuilder::new("zoho").seed(5);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, zoho) = vendor_sim::zoho::start(builder, cfg.clone()).await.unwrap();
    let client = tune(client_for(&sim, &cfg)).build().unwrap();
    let observed = zoho.clone();
    let opts = ExportOptions::new().on_progress(move |e| on_event(&observed, e));
    let mut export = client.export_with(REPORT, ReadQuery::new(), opts);
    let (rows, error) = bounded(async {
        let mut rows = Vec::new();
        while let Some(row) = export.next().await {
            match row {
                Ok(r) => rows.push(r),
                Err(e) => return (rows, Some(e)),
            }
        }
        (rows, None)
    })
    .await;
    Run {
        rows,
        error,
        sim,
        zoho,
        client,
    }
}

async fn plain(rules: Vec<FaultRule>) -> Run {
    run(config(), rules, |b| b, |_, _| {}).await
}

impl Run {
    fn jobs_created(&self) -> u64 {
        self.sim.counters().get("zoho.jobs.created")
    }

    /// The first `n` rows of the report, in order and intact.
    fn assert_rows(&self, n: u64) {
        assert_eq!(self.rows.len() as u64, n);
        for (i, row) in self.rows.iter().enumerate() {
            let values: Vec<&str> = row.values().collect();
            assert_eq!(values, Zoho::row(i as u64 + 1), "row {}", i + 1);
        }
    }

    /// Every row once, through exactly three jobs.
    fn assert_complete(&self) {
        if let Some(e) = &self.error {
            panic!("the export failed: {e}");
        }
        self.assert_rows(ROWS);
        assert_eq!(self.jobs_created(), 3, "one job per 10 rows, none twice");
    }

    /// `rows` rows delivered, then an error of `kind`, after `jobs` jobs were created.
    fn assert_error(&self, kind: ErrorKind, rows: u64, jobs: u64) {
        let err = self.error.as_ref().expect("the export should fail");
        assert_eq!(err.kind(), kind, "{err}");
        self.assert_rows(rows);
        assert_eq!(self.jobs_created(), jobs);
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_no_fault() {
    let run = plain(vec![]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("zoho.refreshes"), 1);
    assert_eq!(run.zoho.rows_served(), ROWS);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_429_retry_after() {
    let run = plain(vec![on(&create(), throttled()).nth(2)]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(&create()), 4);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_5xx_on_poll() {
    let run = plain(server_errors(&status())).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_5xx_on_create() {
    // Zoho cannot list jobs, so an unknown outcome is reported, never re-sent.
    let run = plain(vec![on(&create(), Fault::Status(503)).nth(1)]).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0, 0);
    assert_eq!(run.sim.counters().received(&create()), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_reset_before_apply() {
    let run = plain(vec![on(&create(), Fault::ResetBeforeHandler).nth(1)]).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0, 0);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_reset_after_apply() {
    let run = plain(vec![on(&create(), Fault::ResetAfterHandler).nth(1)]).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_reset_after_apply_of_follow_up_job() {
    // The follow-up job was created but its reply lost: the first batch's rows are delivered,
    // then the export ends with the ambiguity instead of creating a second follow-up job from
    // the same cursor.
    let run = plain(vec![on(&create(), Fault::ResetAfterHandler).nth(2)]).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, CAP, 2);
    assert_eq!(run.sim.counters().received(&create()), 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_reset_on_poll_and_download() {
    let run = plain(vec![
        on(&status(), Fault::ResetBeforeHandler).nth(1),
        on(&download(), Fault::ResetAfterHandler).nth(2),
    ])
    .await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_slow_reply() {
    let run = plain(vec![on(&status(), slow()).nth(1)]).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_malformed_json_on_create() {
    // The job was created, but its id is unreadable: an unknown outcome, not a plain decode
    // error that a caller might answer by creating another job.
    let run = plain(vec![on(&create(), Fault::MalformedBody).nth(1)]).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_malformed_json_on_poll() {
    // A status read is safe to repeat: the unreadable reply is read again (issue 16 §1).
    let run = plain(vec![on(&status(), Fault::MalformedBody).nth(1)]).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_truncated_download() {
    let run = plain(vec![on(&download(), Fault::TruncatedBody).nth(2)]).await;
    run.assert_complete();
    // The cut-off batch was downloaded again.
    assert_eq!(run.sim.counters().received(&download()), 4);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_token_expiry_mid_run() {
    let once = Arc::new(AtomicBool::new(false));
    let run = run(
        config(),
        vec![],
        |b| b,
        move |zoho, e| {
            if matches!(e, ExportEvent::JobDownloaded { .. }) && !once.swap(true, Ordering::SeqCst)
            {
                zoho.expire_tokens();
            }
        },
    )
    .await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("zoho.refreshes"), 2);
    assert_eq!(run.client.stats().auth_replays, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_token_refresh_ahead_of_expiry() {
    // Tokens live 8 s; the export takes longer, so tokens are refreshed before they expire and
    // no request meets a 401.
    let cfg = ZohoConfig {
        token_ttl: Duration::from_secs(8),
        ..config()
    };
    let run = run(cfg, vec![], |b| b, |_, _| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("zoho.refreshes"), 4);
    assert_eq!(run.client.stats().auth_replays, 0);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_job_failed() {
    let cfg = ZohoConfig {
        failing_jobs: vec![2],
        ..config()
    };
    let run = run(cfg, vec![], |b| b, |_, _| {}).await;
    run.assert_error(ErrorKind::JobFailed, CAP, 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_vendor_throttle_paced() {
    // Zoho allows two job creations a minute here; a client paced to match never meets the
    // throttle and finishes after the window reopens.
    let cfg = ZohoConfig {
        creates_per_minute: 2,
        ..config()
    };
    let started = tokio::time::Instant::now();
    let run = run(cfg, vec![], |b| b.throttles(2, 10), |_, _| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("zoho.throttled.create"), 0);
    assert!(started.elapsed() >= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn matrix_zoho_vendor_throttle_token_minting() {
    // Zoho mints one token per window here; after tokens expire mid-run, the refresh is refused
    // as "too many requests": a rate-limit error, not a refresh loop.
    let cfg = ZohoConfig {
        mint_cap: 1,
        ..config()
    };
    let run = run(
        cfg,
        vec![],
        |b| b,
        |zoho, e| {
            if matches!(e, ExportEvent::JobDownloaded { .. }) {
                zoho.expire_tokens();
            }
        },
    )
    .await;
    // The first batch's rows are delivered; the follow-up job cannot be created.
    run.assert_error(ErrorKind::RateLimited, CAP, 1);
    assert_eq!(run.sim.counters().get("zoho.refreshes"), 1);
    // Zoho refused one refresh; the client did not ask again.
    assert_eq!(run.sim.counters().get("zoho.refreshes.refused"), 1);
}
