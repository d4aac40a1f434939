//! Unicat: a combined-selection delete → job done (tracked through the sync feed), then a bulk
//! get reading back what is left. A bulk mutation whose outcome is unknown is reconciled as the
//! crate documents (`Client::jobs_since`), never blindly re-sent.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::TryStreamExt;
use unicat_api::{
    Children, Client, ErrorKind, Filter, JobHandle, JobReport, PollPolicy, RecordSelection, Search,
};
use vendor_sim::unicat::{Unicat, UnicatConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

use crate::{bounded, on, server_errors, slow, throttled, throttled_for_good};

/// The bulk routes share one template, which the counters use; rules name the paths.
const BULK: &str = "POST /api/p/{project}/{area}/bulk/{op}";
const DELETE: &str = "POST /api/p/p-7a1c9e52/records/bulk/delete";
const GET: &str = "POST /api/p/p-7a1c9e52/records/bulk/get";
const SYNC: &str = "POST /sync/get";

struct Run {
    outcome: unicat_api::Result<(JobReport, Vec<String>)>,
    /// Whether the submission ended ambiguous and was reconciled through the feed.
    reconciled: bool,
    sim: SimHandle,
    unicat: Unicat,
    client: Client,
}

fn selection() -> RecordSelection {
    RecordSelection::new()
        .children(Children::of("r-f2").exclude(["r-f2-003", "r-f2-004"]))
        .search(
            Search::new()
                .q("obsolete")
                .filter(Filter::new("definition", "is", "d-article")),
        )
}

/// What the selection deletes: folder 2 but two children, and every "obsolete" article
/// (i % 5 == 0 and not a d-spec, i % 4 == 0) elsewhere.
fn expected(unicat: &Unicat) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = unicat
        .children("r-f2")
        .into_iter()
        .filter(|g| g != "r-f2-003" && g != "r-f2-004")
        .collect();
    for f in [1, 3, 4] {
        for i in [5, 10, 15, 25] {
            out.insert(format!("r-f{f}-{i:03}"));
        }
    }
    out
}

/// Submits the delete; after an ambiguous outcome, looks for the job in the feed (as the
/// crate's docs show) and submits again only if the feed proves it never arrived.
async fn submit(client: &Client, reconciled: &mut bool) -> unicat_api::Result<JobHandle> {
    let sel = selection();
    match client.records().delete(&sel).await {
        Ok(job) => Ok(job),
        Err(e) if e.kind() == ErrorKind::AmbiguousOutcome => {
            *reconciled = true;
            let details = e.details().cloned().unwrap_or_default();
            let cursor = details["cc_cursor"].as_u64().unwrap();
            let found = client.jobs_since(cursor).await?;
            match found.iter().find(|r| r.job == details["job"]) {
                Some(r) => Ok(JobHandle::new(r.token.clone(), cursor, "records/delete")),
                None => client.records().delete(&sel).await,
            }
        }
        Err(e) => Err(e),
    }
}

async fn run(
    cfg: UnicatConfig,
    rules: Vec<FaultRule>,
    before: impl FnOnce(&Unicat),
    mid_run: impl FnOnce(&Unicat),
) -> Run {
    let mut builder = SimBuilder::new("unicat").seed(11);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, unicat) = vendor_sim::unicat::start(builder, cfg.clone())
        .await
        .unwrap();
    before(&unicat);
    let client = Client::builder()
        .project(cfg.project.clone())
        .api_key(cfg.api_key.clone().into())
        .base_url(sim.base_url())
        .poll_policy(
            PollPolicy::default()
                .first_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(1))
                .deadline(Some(Duration::from_secs(120))),
        )
        .feed_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut reconciled = false;
    let outcome = bounded(async {
        let job = submit(&client, &mut reconciled).await?;
        mid_run(&unicat);
        let report = client.wait(&job).await?;
        let left: Vec<String> = client
            .records()
            .get(&RecordSelection::new().children(Children::of("r-f2")))
            .page_size(1)
            .stream::<serde_json::Value>()
            .map_ok(|item| item.gid.to_string())
            .try_collect()
            .await?;
        Ok((report, left))
    })
    .await;
    Run {
        outcome,
        reconciled,
        sim,
        unicat,
        client,
    }
}

async fn plain(rules: Vec<FaultRule>) -> Run {
    run(UnicatConfig::default(), rules, |_| {}, |_| {}).await
}

impl Run {
    fn jobs_created(&self) -> u64 {
        self.sim.counters().get("jobs.created")
    }

    /// Exactly the selected records deleted by one job; the excluded ones read back.
    fn assert_complete(&self) {
        let (report, left) = match &self.outcome {
            Ok(out) => out,
            Err(e) => panic!("the workflow failed: {e}"),
        };
        let expected = expected(&self.unicat);
        let deleted: BTreeSet<String> = self.unicat.deleted_records().into_iter().collect();
        assert_eq!(deleted, expected);
        assert_eq!(report.total, Some(expected.len() as u64));
        assert_eq!(report.job, "bulk_delete_records");
        assert_eq!(*left, ["r-f2-003", "r-f2-004"]);
        assert_eq!(self.jobs_created(), 1, "no duplicate job");
    }

    fn assert_error(&self, kind: ErrorKind, jobs: u64) {
        let err = self.outcome.as_ref().unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(self.jobs_created(), jobs);
        if jobs == 0 {
            assert!(self.unicat.deleted_records().is_empty());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_no_fault() {
    let run = plain(vec![]).await;
    run.assert_complete();
    assert!(!run.reconciled);
    assert_eq!(run.sim.counters().get("auth.logins"), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_429_retry_after() {
    let run = plain(vec![on(DELETE, throttled()).times(2)]).await;
    run.assert_complete();
    assert!(!run.reconciled);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_5xx_on_poll() {
    plain(server_errors(SYNC)).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_5xx_on_create() {
    // Ambiguous; the feed shows no job, so the delete is submitted once more.
    let run = plain(vec![on(DELETE, Fault::Status(503)).nth(1)]).await;
    run.assert_complete();
    assert!(run.reconciled);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_reset_before_apply() {
    let run = plain(vec![on(DELETE, Fault::ResetBeforeHandler).nth(1)]).await;
    run.assert_complete();
    assert!(run.reconciled);
    assert_eq!(run.sim.counters().received(BULK), 2 + 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_reset_after_apply() {
    // Ambiguous; the job is found in the feed and waited for, not submitted again.
    let run = plain(vec![on(DELETE, Fault::ResetAfterHandler).nth(1)]).await;
    run.assert_complete();
    assert!(run.reconciled);
    assert_eq!(run.sim.counters().received(BULK), 1 + 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_reset_on_poll() {
    plain(vec![
        on(SYNC, Fault::ResetBeforeHandler).nth(1),
        on(SYNC, Fault::ResetAfterHandler).nth(3),
    ])
    .await
    .assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_slow_reply() {
    plain(vec![on(SYNC, slow()).nth(2)]).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_malformed_json_on_create() {
    // The job was created but its token is unreadable: ambiguous, then found in the feed.
    let run = plain(vec![on(DELETE, Fault::MalformedBody).nth(1)]).await;
    run.assert_complete();
    assert!(run.reconciled);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_malformed_json_on_poll() {
    // A feed read is safe to repeat: the unreadable reply is read again (issue 16 §1).
    let run = plain(vec![on(SYNC, Fault::MalformedBody).nth(1)]).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_truncated_bulk_get_page() {
    // The bulk get's second page is cut off and read again.
    let run = plain(vec![on(GET, Fault::TruncatedBody).nth(2)]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().route_counts(BULK).faulted, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_token_expiry_mid_run() {
    let run = run(UnicatConfig::default(), vec![], |_| {}, Unicat::expire_jwts).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("auth.logins"), 2);
    assert_eq!(run.client.stats().logins, 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_jwt_rotation() {
    let cfg = UnicatConfig {
        rotate_every: 2,
        ..UnicatConfig::default()
    };
    let run = run(cfg, vec![], |_| {}, |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().get("auth.rotations"), 3);
    assert_eq!(run.client.stats().rotations, 3);
    assert_eq!(run.sim.counters().get("auth.logins"), 1);
    assert_eq!(run.sim.counters().get("auth.refused"), 0);
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_job_rejected() {
    let run = run(
        UnicatConfig::default(),
        vec![],
        |u| u.reject_next_job("selection too large for this plan"),
        |_| {},
    )
    .await;
    run.assert_error(ErrorKind::JobFailed, 1);
    let err = run.outcome.as_ref().unwrap_err();
    assert_eq!(
        err.vendor_message(),
        Some("selection too large for this plan")
    );
    assert!(run.unicat.deleted_records().is_empty());
}

#[tokio::test(start_paused = true)]
async fn matrix_unicat_vendor_throttle() {
    let run = plain(vec![on(DELETE, throttled_for_good())]).await;
    run.assert_error(ErrorKind::RateLimited, 0);
}
