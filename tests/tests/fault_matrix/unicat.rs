//! Unicat: a combined-selection delete → job done (tracked through the sync feed), then a bulk
//! get reading back what is left. A bulk mutation whose outcome is unknown is reconciled by the
//! client through the sync feed (found there, or sent again only when the feed shows it never
//! arrived), never blindly re-sent.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::TryStreamExt;
use unicat_api::{
    Children, Client, ErrorKind, Filter, HttpOptions, JobReport, PollPolicy, RecordSelection,
    RetryPolicy, Search,
};
use vendor_sim::unicat::{JobNames, Unicat, UnicatConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

use crate::{
    MIXED_RATE, MIXED_RUNS, bounded, mixed_faults, on, server_errors, slow, throttled,
    throttled_for_good,
};

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

async fn run(
    cfg: UnicatConfig,
    rules: Vec<FaultRule>,
    before: impl FnOnce(&Unicat),
    mid_run: impl FnOnce(&Unicat),
) -> Run {
    run_seeded(
        11,
        Duration::from_secs(120),
        None,
        cfg,
        rules,
        before,
        mid_run,
    )
    .await
}

/// One run of the seed workflow; `retry` replaces the client's default retry policy.
async fn run_seeded(
    seed: u64,
    deadline: Duration,
    retry: Option<RetryPolicy>,
    cfg: UnicatConfig,
    rules: Vec<FaultRule>,
    before: impl FnOnce(&Unicat),
    mid_run: impl FnOnce(&Unicat),
) -> Run {
    let mut builder = SimBuilder::new("unicat").seed(seed);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, unicat) = vendor_sim::unicat::start(builder, cfg.clone())
        .await
        .unwrap();
    before(&unicat);
    let mut client = Client::builder()
        .project(cfg.project.clone())
        .api_key(cfg.api_key.clone().into())
        .base_url(sim.base_url())
        .poll_policy(
            PollPolicy::default()
                .first_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(1))
                .deadline(Some(deadline)),
        )
        .feed_interval(Duration::from_millis(100));
    if let Some(retry) = retry {
        client = client.http_options(HttpOptions::default().retry(retry));
    }
    let client = client.build().unwrap();
    let outcome = bounded(async {
        let job = client.records().delete(&selection()).await?;
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
    let stats = client.stats();
    let reconciled = stats.located + stats.resubmitted > 0;
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
        assert_eq!(*left, ["r-f2-003", "r-f2-004"]);
        assert_eq!(self.jobs_created(), 1, "no duplicate job");
        // The report is our job's, not a look-alike's.
        assert_eq!(self.unicat.job_tokens(), [report.token.as_str()]);
    }

    /// Whether the run ended with exactly the expected data (read back from the simulator)
    /// and a report that is our job's. Panics on a wrong success: a run that says it
    /// succeeded while the data or the attribution is wrong.
    fn correct(&self) -> bool {
        let Ok((report, left)) = &self.outcome else {
            return false;
        };
        let deleted: BTreeSet<String> = self.unicat.deleted_records().into_iter().collect();
        let ours = self.unicat.job_tokens();
        assert_eq!(deleted, expected(&self.unicat), "a wrong success: data");
        assert_eq!(
            *left,
            ["r-f2-003", "r-f2-004"],
            "a wrong success: read back"
        );
        assert!(
            ours.iter().any(|t| t == report.token.as_str()),
            "a wrong success: not our job"
        );
        true
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

/// The seed workflow under each switch for what the docs leave open (job names, other
/// clients' jobs of the same name, the order of the feed, bare job reports), with and without
/// an ambiguous create: the data right and our own job's report, or a typed error; never a
/// report pinned on the wrong job.
#[tokio::test(start_paused = true)]
async fn matrix_unicat_adversarial_feed() {
    let switches = [
        UnicatConfig {
            job_names: JobNames::Varied,
            ..UnicatConfig::default()
        },
        UnicatConfig {
            foreign_jobs: 3,
            ..UnicatConfig::default()
        },
        UnicatConfig {
            shuffle_sync: true,
            sync_page: 3,
            ..UnicatConfig::default()
        },
        UnicatConfig {
            bare_info: true,
            ..UnicatConfig::default()
        },
    ];
    for cfg in switches {
        let clean = run(cfg.clone(), vec![], |_| {}, |_| {}).await;
        assert!(
            clean.correct(),
            "{cfg:?}: {:?}",
            clean.outcome.as_ref().err()
        );
        assert_eq!(clean.jobs_created(), 1);

        let ambiguous = run(
            cfg.clone(),
            vec![on(DELETE, Fault::ResetAfterHandler).nth(1)],
            |_| {},
            |_| {},
        )
        .await;
        assert_eq!(ambiguous.jobs_created(), 1, "{cfg:?}: never sent twice");
        let look_alikes = cfg.foreign_jobs > 0 || cfg.job_names == JobNames::Varied;
        if look_alikes {
            // Our job cannot be told from the others (or from its unexpected name): a typed
            // error naming the candidates, not a guess.
            ambiguous.assert_error(ErrorKind::AmbiguousOutcome, 1);
            let err = ambiguous.outcome.as_ref().unwrap_err();
            let candidates = err.details().unwrap()["candidates"].as_array().unwrap();
            assert_eq!(candidates.len(), cfg.foreign_jobs + 1, "{cfg:?}");
        } else {
            assert!(
                ambiguous.correct(),
                "{cfg:?}: {:?}",
                ambiguous.outcome.as_ref().err()
            );
        }
    }
}

/// Issue 16's check: the seed workflow in `MIXED_RUNS` seeded runs under every fault kind at
/// `MIXED_RATE` each. At least 95 % end with the data right; every other run ends with a typed
/// error, never a wrong success (checked in `Run::correct`).
#[tokio::test(start_paused = true)]
async fn matrix_unicat_mixed() {
    let mut good = 0;
    let mut failures = Vec::new();
    for seed in 0..MIXED_RUNS {
        let run = run_seeded(
            1000 + seed,
            Duration::from_secs(20 * 60),
            // The client's own retry policy (`Client::default_retry_policy`: 10 attempts within
            // 10 minutes). With eight fault kinds at 10 % each, more than half of all requests
            // meet one, and a slow reply costs a whole 60 s request timeout: bulk-common's
            // default (5 attempts within 2 minutes) got 14/20 here.
            None,
            UnicatConfig::default(),
            mixed_faults(MIXED_RATE),
            |_| {},
            |_| {},
        )
        .await;
        if run.correct() {
            good += 1;
        } else {
            let err = run.outcome.as_ref().unwrap_err();
            failures.push(format!("seed {}: {:?}: {err}", 1000 + seed, err.kind()));
        }
    }
    eprintln!("matrix_unicat_mixed: {good}/{MIXED_RUNS} runs ended with correct data");
    for f in &failures {
        eprintln!("  {f}");
    }
    assert!(
        good * 20 >= MIXED_RUNS * 19,
        "{good}/{MIXED_RUNS}: {failures:#?}"
    );
}
