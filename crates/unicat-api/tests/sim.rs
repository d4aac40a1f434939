//! Behaviour against the Unicat simulator, on tokio's paused clock: selections, jobs through
//! the sync feed, JWT rotation and re-login, bulk-get paging.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use futures::{Stream, TryStreamExt};
use serde::Deserialize;
use unicat_api::{
    ApiCode, CancellationToken, Children, Client, ErrorKind, Filter, JobHandle, PollPolicy,
    RecordSelection, Search, SecretString,
};
use vendor_sim::unicat::{JobNames, Unicat, UnicatConfig};
use vendor_sim::{SimBuilder, SimHandle};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn sim(cfg: UnicatConfig) -> (SimHandle, Unicat) {
    vendor_sim::unicat::start(SimBuilder::new("unicat").seed(11), cfg)
        .await
        .expect("simulator starts")
}

fn client(sim: &SimHandle, cfg: &UnicatConfig) -> Client {
    Client::builder()
        .project(cfg.project.clone())
        .api_key(SecretString::from(cfg.api_key.clone()))
        .base_url(sim.base_url())
        .poll_policy(
            PollPolicy::default()
                .first_delay(Duration::from_millis(200))
                .max_delay(Duration::from_secs(1))
                .deadline(Some(Duration::from_secs(60))),
        )
        .feed_interval(Duration::from_millis(100))
        .build()
        .unwrap()
}

fn set(items: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

#[tokio::test(start_paused = true)]
async fn a_combined_selection_deletes_exactly_the_expected_records() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    let selection = RecordSelection::new()
        .gid("r-f1-001")
        .children(Children::of("r-f2").exclude(["r-f2-003", "r-f2-004"]))
        .search(
            Search::new()
                .language("en")
                .q("+obsolete")
                .filter(Filter::new("definition", "is", "d-article"))
                .exclude(["r-f3-005"]),
        );
    let job = client.records().delete(&selection).await?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let report = client
        .wait(&job)
        .on_progress(move |e| seen.lock().unwrap().push(e.progress.clone()))
        .run()
        .await?;

    // Folder 2 minus two, r-f1-001, and every "obsolete" article (i % 5 == 0 and not a
    // d-spec, i % 4 == 0) outside folder 2, minus r-f3-005.
    let mut expected = set(["r-f1-001"]);
    expected.extend(
        unicat
            .children("r-f2")
            .into_iter()
            .filter(|g| g != "r-f2-003" && g != "r-f2-004"),
    );
    for f in [1, 3, 4] {
        for i in [5, 10, 15, 25] {
            expected.insert(format!("r-f{f}-{i:03}"));
        }
    }
    expected.remove("r-f3-005");
    assert_eq!(set(unicat.deleted_records()), expected);
    assert_eq!(report.total, Some(expected.len() as u64));
    assert_eq!(report.remaining, Some(0));
    assert_eq!(report.job, "bulk_delete_records");

    let progress = events.lock().unwrap().clone();
    assert!(
        progress
            .iter()
            .any(|p| p.status.as_deref() == Some("processing") && p.remaining > Some(0)),
        "progress reported while processing: {progress:?}"
    );

    // Read back through the API: the excluded children are all that is left of folder 2.
    let left: Vec<String> = client
        .records()
        .get(&RecordSelection::new().children(Children::of("r-f2")))
        .stream::<serde_json::Value>()
        .map_ok(|item| item.gid.to_string())
        .try_collect()
        .await?;
    assert_eq!(left, ["r-f2-003", "r-f2-004"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rejected_job_ends_with_its_error() -> TestResult {
    let cfg = UnicatConfig {
        max_job_items: 10,
        ..UnicatConfig::default()
    };
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    let job = client
        .records()
        .delete(&RecordSelection::new().children(Children::of("r-f1")))
        .await?;
    let err = client.wait(&job).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    assert_eq!(err.vendor_code(), Some("rejected"));
    assert!(
        err.vendor_message().unwrap().contains("at most 10"),
        "{err}"
    );
    assert_eq!(err.details().unwrap()["info"]["total"], 25);
    assert!(unicat.deleted_records().is_empty());

    unicat.reject_next_job("the project is read-only");
    let job = client
        .records()
        .delete(&RecordSelection::new().gid("r-f1-001"))
        .await?;
    let err = client.wait(&job).run().await.unwrap_err();
    assert_eq!(err.vendor_message(), Some("the project is read-only"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_job_that_never_appears_ends_at_the_deadline_and_a_wait_can_be_cancelled() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    unicat.hide_next_job();
    let job = client
        .records()
        .delete(&RecordSelection::new().gid("r-f1-001"))
        .await?;
    let started = tokio::time::Instant::now();
    let err = client
        .wait(&job)
        .policy(PollPolicy::default().deadline(Some(Duration::from_secs(20))))
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert!(started.elapsed() <= Duration::from_secs(21));

    let cancel = CancellationToken::new();
    let job = client
        .records()
        .delete(&RecordSelection::new().gid("r-f1-002"))
        .await?;
    let waiting = client.wait(&job).cancel_on(cancel.clone()).run();
    cancel.cancel();
    assert_eq!(waiting.await.unwrap_err().kind(), ErrorKind::Cancelled);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn jwts_rotated_mid_run_are_adopted_without_a_new_login() -> TestResult {
    // The old JWT dies the moment a new one is issued: a client that missed a rotation would
    // be refused and log in again.
    let cfg = UnicatConfig {
        rotate_every: 3,
        jwt_grace: Duration::ZERO,
        ..UnicatConfig::default()
    };
    let (sim, _unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    let job = client
        .records()
        .delete(&RecordSelection::new().children(Children::of("r-f4")))
        .await?;
    client.wait(&job).run().await?;
    let n = client
        .records()
        .get(&RecordSelection::new().children(Children::of("r-f1")))
        .page_size(5)
        .stream::<serde_json::Value>()
        .try_fold(0, |n, _| async move { Ok(n + 1) })
        .await?;
    assert_eq!(n, 25);

    let c = sim.counters();
    assert_eq!(c.get("auth.logins"), 1);
    assert_eq!(c.get("auth.refused"), 0);
    assert!(c.get("auth.rotations") >= 3, "{c:?}");
    assert_eq!(client.stats().rotations, c.get("auth.rotations"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refused_jwt_causes_one_login_and_a_replay() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    client.cc_cursor().await?;
    unicat.expire_jwts();
    client.cc_cursor().await?;
    assert_eq!(sim.counters().get("auth.logins"), 2);
    assert_eq!(sim.counters().get("auth.refused"), 1);
    assert_eq!(client.stats().auth_replays, 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_calls_share_one_login() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.cc_cursor().await }
    });
    for r in join_all(calls).await {
        r?;
    }
    assert_eq!(sim.counters().get("auth.logins"), 1);

    // All 100 refused at once: still one new login.
    unicat.expire_jwts();
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.cc_cursor().await }
    });
    for r in join_all(calls).await {
        r?;
    }
    assert_eq!(sim.counters().get("auth.logins"), 2);
    assert_eq!(client.stats().logins, 2);
    Ok(())
}

/// Issue 17: a failed login is shared by the callers that waited for it (one login, not one per
/// queued caller), and the next call logs in again.
#[tokio::test(start_paused = true)]
async fn a_refused_login_fails_every_waiting_caller_once() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, _unicat) = sim(cfg.clone()).await;
    let wrong = UnicatConfig {
        api_key: "not-the-key".into(),
        ..cfg.clone()
    };
    let client = client(&sim, &wrong);
    const LOGIN: &str = "POST /api/p/{project}/auth";

    let calls = (0..50).map(|_| {
        let client = client.clone();
        async move { client.cc_cursor().await }
    });
    for r in join_all(calls).await {
        let err = r.expect_err("a wrong API key cannot log in");
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    }
    assert_eq!(sim.counters().received(LOGIN), 1, "50 callers, one login");
    assert_eq!(client.stats().logins, 1);
    assert_eq!(sim.counters().received("POST /sync/cursors"), 0);

    // The failure is not kept: the next call tries again.
    assert!(client.cc_cursor().await.is_err());
    assert_eq!(sim.counters().received(LOGIN), 2);
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Product {
    title: String,
    parent: Option<String>,
}

#[tokio::test(start_paused = true)]
async fn bulk_get_over_many_pages_returns_every_record_once() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, _unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    // Eight gids that name nothing come first: the first two pages are empty, later ones
    // short, and only the null cursor ends the stream.
    let selection = RecordSelection::new()
        .gids((1..=8).map(|i| format!("r-missing-{i}")))
        .gid("r-f1-001")
        .children(Children::of("r-f2"))
        .gid("r-f1-002")
        .children(Children::of("r-f3").exclude(["r-f3-001"]));
    let mut stream = client
        .records()
        .get(&selection)
        .page_size(4)
        .stream::<Product>();
    assert_eq!(stream.size(), None);
    let mut gids = Vec::new();
    let mut first = true;
    while let Some(item) = stream.try_next().await? {
        if first {
            assert_eq!(stream.size(), Some(2 + 25 + 24));
            assert_eq!(stream.size_hint(), (0, Some(50)));
            first = false;
        }
        assert!(item.data.title.starts_with("Product"));
        assert!(item.data.parent.is_some());
        gids.push(item.gid.to_string());
    }
    let unique: HashSet<_> = gids.iter().collect();
    assert_eq!(gids.len(), 51);
    assert_eq!(unique.len(), 51);
    // 8 + 1 + 25 + 1 + 24 = 59 slots in pages of 4.
    assert_eq!(sim.counters().get("bulk.get.pages"), 15);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn many_waiting_jobs_share_one_feed_reader() -> TestResult {
    let cfg = UnicatConfig {
        sync_page: 500,
        ..UnicatConfig::default()
    };
    let (sim, _unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    let mut jobs = Vec::new();
    for i in 1..=10 {
        let sel = RecordSelection::new().children(Children::of(format!("r-f{}", 1 + i % 4)));
        // Deleting the same children twice fails item by item in the later jobs; the jobs
        // still finish.
        jobs.push(
            client
                .records()
                .delete(&sel.gid(format!("r-f1-{i:03}")))
                .await?,
        );
    }
    let started = tokio::time::Instant::now();
    let waits = jobs.iter().map(|j| client.wait(j).run());
    for r in join_all(waits).await {
        match r {
            Ok(_) => {}
            // A later job finds some of its items already deleted: a typed error, not "done".
            Err(e) if e.kind() == ErrorKind::JobFailed => {}
            Err(e) => return Err(e.into()),
        }
    }
    let elapsed = started.elapsed();
    let reads = sim.counters().get("sync.gets");
    assert_eq!(reads, client.stats().feed_reads);
    // One reader, at most one read per feed interval, however many jobs wait.
    let bound = (elapsed.as_millis() / 100) as u64 + 1;
    assert!(reads <= bound, "{reads} reads in {elapsed:?}");
    assert!(reads < 10, "{reads} reads for 10 jobs");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_serialized_handle_is_resumed_by_another_client() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let first = client(&sim, &cfg);
    let job = first
        .records()
        .delete(&RecordSelection::new().gid("r-f4-007"))
        .await?;
    let saved = serde_json::to_string(&job)?;

    // Meanwhile a second client's job has moved its own reader past the first job's items.
    let second = client(&sim, &cfg);
    let other = second
        .records()
        .delete(&RecordSelection::new().gid("r-f4-008"))
        .await?;
    second.wait(&other).run().await?;

    let resumed: JobHandle = serde_json::from_str(&saved)?;
    assert_eq!(resumed, job);
    let report = second.wait(&resumed).run().await?;
    assert_eq!(&report.token, job.token());
    assert_eq!(set(unicat.deleted_records()), set(["r-f4-007", "r-f4-008"]));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn already_deleted_items_fail_alone_the_job_is_not_done_and_bad_selections_are_typed_errors()
-> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);

    unicat.trash(&["r-f1-002"]);
    let job = client
        .records()
        .delete(&RecordSelection::new().gids(["r-f1-001", "r-f1-002"]))
        .await?;
    // A job whose info reports errors is not "done": a typed error naming the items.
    let err = client.wait(&job).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    let details = err.details().unwrap();
    assert_eq!(details["failed"], serde_json::json!(["r-f1-002"]));
    assert_eq!(details["total"], 2);
    assert_eq!(details["status"], "done");
    assert!(err.to_string().contains("1 of 2 items"), "{err}");
    assert_eq!(set(unicat.deleted_records()), set(["r-f1-001", "r-f1-002"]));

    let err = client
        .records()
        .delete(&RecordSelection::new().children(Children::of("r-nowhere")))
        .await
        .unwrap_err();
    assert_eq!(ApiCode::of(&err), Some(ApiCode::BulkSelection));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.status(), Some(422));
    assert_eq!(err.details().unwrap()["gid"], "r-nowhere");
    // Refused before any job: nothing was queued.
    assert_eq!(sim.counters().get("jobs.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_submission_is_not_resent_but_found_in_the_feed() -> TestResult {
    // A reply lost after the job was created, or one that arrived unreadable.
    for fault in [
        vendor_sim::Fault::ResetAfterHandler,
        vendor_sim::Fault::MalformedBody,
    ] {
        let cfg = UnicatConfig::default();
        let (sim, unicat) = sim(cfg.clone()).await;
        let client = client(&sim, &cfg);
        let path = format!("/api/p/{}/records/bulk/delete", cfg.project);
        sim.faults()
            .push(vendor_sim::FaultRule::new(fault).path(&path).times(1));

        let job = client
            .records()
            .delete(&RecordSelection::new().gid("r-f2-010"))
            .await?;
        assert_eq!(
            sim.counters().get("jobs.created"),
            1,
            "sent once, never re-sent"
        );
        assert_eq!(unicat.job_tokens(), [job.token().as_str()]);
        assert_eq!(client.stats().located, 1);
        assert_eq!(client.stats().resubmitted, 0);
        client.wait(&job).run().await?;
        assert_eq!(unicat.deleted_records(), ["r-f2-010"]);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_submission_that_never_arrived_is_sent_again() -> TestResult {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);
    let path = format!("/api/p/{}/records/bulk/delete", cfg.project);
    // A 503 (the handler did not run) and a reset before the handler: nothing in the feed.
    sim.faults().push(
        vendor_sim::FaultRule::new(vendor_sim::Fault::Status(503))
            .path(&path)
            .times(1),
    );
    sim.faults().push(
        vendor_sim::FaultRule::new(vendor_sim::Fault::ResetBeforeHandler)
            .path(&path)
            .times(1),
    );
    let job = client
        .records()
        .delete(&RecordSelection::new().gid("r-f2-011"))
        .await?;
    assert_eq!(client.stats().resubmitted, 2);
    assert_eq!(unicat.job_tokens(), [job.token().as_str()]);
    client.wait(&job).run().await?;
    assert_eq!(unicat.deleted_records(), ["r-f2-011"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_submission_among_look_alike_jobs_is_a_typed_error_not_a_guess() -> TestResult
{
    // Other clients' jobs of the same name, or our job under another name than the one
    // assumed: the feed cannot tell which job is ours.
    for cfg in [
        UnicatConfig {
            foreign_jobs: 2,
            ..UnicatConfig::default()
        },
        UnicatConfig {
            job_names: JobNames::Varied,
            ..UnicatConfig::default()
        },
    ] {
        let (sim, unicat) = sim(cfg.clone()).await;
        let client = client(&sim, &cfg);
        let path = format!("/api/p/{}/records/bulk/delete", cfg.project);
        sim.faults().push(
            vendor_sim::FaultRule::new(vendor_sim::Fault::ResetAfterHandler)
                .path(&path)
                .times(1),
        );
        let err = client
            .records()
            .delete(&RecordSelection::new().gid("r-f2-012"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome, "{err}");
        let candidates = err.details().unwrap()["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), cfg.foreign_jobs + 1);
        assert_eq!(sim.counters().get("jobs.created"), 1, "not sent again");
        assert_eq!(unicat.job_tokens().len(), 1);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_bulk_get_of_40_records_in_pages_of_7_makes_6_calls() -> TestResult {
    let cfg = UnicatConfig {
        per_folder: 40,
        ..UnicatConfig::default()
    };
    let (sim, _unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);
    let got: Vec<_> = client
        .records()
        .get(&RecordSelection::new().children(Children::of("r-f1")))
        .page_size(7)
        .stream::<serde_json::Value>()
        .try_collect()
        .await?;
    assert_eq!(got.len(), 40);
    assert_eq!(set(got.iter().map(|i| i.gid.to_string())).len(), 40);
    // The simulator reads only the documented flat keys (`page.size`, `page.cursor`) and
    // refuses any other, so these counts hold against any server that speaks the API.
    assert_eq!(sim.counters().get("bulk.get.pages"), 6);
    assert_eq!(
        sim.counters()
            .handled("POST /api/p/{project}/{area}/bulk/{op}"),
        6
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_through_frequent_rotations_need_no_new_login() -> TestResult {
    // Rotated-out JWTs stay valid for the grace period, as on the real service.
    let cfg = UnicatConfig {
        rotate_every: 5,
        ..UnicatConfig::default()
    };
    let (sim, _unicat) = sim(cfg.clone()).await;
    let client = client(&sim, &cfg);
    for _ in 0..3 {
        let calls = (0..100).map(|_| {
            let client = client.clone();
            async move { client.cc_cursor().await }
        });
        for r in join_all(calls).await {
            r?;
        }
    }
    let c = sim.counters();
    assert_eq!(c.get("auth.logins"), 1);
    assert_eq!(c.get("auth.refused"), 0);
    assert!(c.get("auth.rotations") >= 50, "{c:?}");
    Ok(())
}
