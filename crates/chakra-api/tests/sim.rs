//! Behaviour against the ChakraHQ simulator on Tokio's paused clock: mixed batches, size errors,
//! faults, ambiguous outcomes, deadlines, bounded memory for streams, reads.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chakra_api::{
    AmbiguousPolicy, Client, ErrorKind, Outcome, PollPolicy, ProcessStatus, ProcessUpdate, Query,
    SecretString,
};
use futures::TryStreamExt;
use serde_json::json;
use vendor_sim::chakra::{Chakra, ChakraConfig, ProcedureSpec};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PATCH: &str = "PATCH /v1/ext/procedure/{proc}/process";

async fn start(cfg: ChakraConfig, rules: Vec<FaultRule>, processes: usize) -> (SimHandle, Chakra) {
    let mut builder = SimBuilder::new("chakra").seed(11);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, chakra) = vendor_sim::chakra::start(builder, cfg).await.unwrap();
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 0..processes {
        chakra
            .add_process("lead", json!({"lead_id": format!("L-{i}"), "city": "Pune"}))
            .unwrap();
    }
    (sim, chakra)
}

fn client(sim: &SimHandle) -> Client {
    Client::builder()
        .base_url(sim.base_url())
        .token(SecretString::from("sim-chakra-token"))
        .build()
        .unwrap()
}

fn fast_poll() -> PollPolicy {
    PollPolicy::default()
        .first_delay(Duration::from_millis(200))
        .min_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(2))
        .deadline(Some(Duration::from_secs(600)))
}

fn qualify(i: usize) -> ProcessUpdate {
    ProcessUpdate::by_key("lead_id", format!("L-{i}"))
        .state("QUALIFIED")
        .data("score", i)
}

#[tokio::test(start_paused = true)]
async fn a_mixed_batch_gets_the_right_outcome_per_item_and_the_rest_is_applied() -> TestResult {
    let (sim, chakra) = start(ChakraConfig::default(), vec![], 20).await;
    let client = client(&sim);
    let due = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000);
    let mut items: Vec<ProcessUpdate> = (0..20)
        .map(|i| qualify(i).assigned_to("asha").next_action_at(due))
        .collect();
    // 20: no such process (processed, fails). 21: unknown state (the server marks it invalid).
    items.push(qualify(999));
    items.push(ProcessUpdate::by_key("lead_id", "L-3").state("BOGUS"));
    // 22-24: caught by the client: no identifier, a bad status, an empty update.
    items.push(ProcessUpdate::from_wire(
        json!({"update": {"state": "DONE"}}),
    ));
    items.push(ProcessUpdate::from_wire(
        json!({"lead_id": "L-4", "update": {"status": "FINISHED"}}),
    ));
    items.push(ProcessUpdate::by_key("lead_id", "L-5"));

    let report = client
        .bulk_update("lead")
        .chunk_size(7)
        .concurrency(2)
        .poll_policy(fast_poll())
        .keep_successes(true)
        .run(items.clone())
        .await?;

    assert_eq!(report.total(), 25);
    assert_eq!(report.succeeded(), 20);
    for i in 0..20 {
        assert_eq!(report.outcome(i), Some(&Outcome::Success), "item {i}");
    }
    assert!(matches!(report.outcome(20), Some(Outcome::Error(m)) if m.contains("no process")));
    assert!(matches!(report.outcome(21), Some(Outcome::Invalid(m)) if m.contains("unknown state")));
    for i in 22..25 {
        assert!(
            matches!(report.outcome(i), Some(Outcome::Invalid(m)) if m.contains("not sent")),
            "item {i}: {:?}",
            report.outcome(i)
        );
    }
    assert_eq!(report.outcome(25), None);
    let failed = report.failed();
    assert_eq!(
        failed,
        items[20..].to_vec(),
        "failed() hands back exactly the failed updates"
    );
    let successes = report.successes().unwrap();
    assert_eq!(successes.len(), 20);
    assert_eq!(successes[7].1.as_ref().unwrap().to_string(), "lead_id=L-7");
    // Four chunks of at most 7 valid items.
    assert_eq!(sim.counters().get("chakra.jobs.created"), 4);
    assert_eq!(report.jobs().len(), 4);

    // Read back through the API: every valid update was applied, the invalid one was not.
    let qualified: Vec<_> = client
        .list_processes("lead", Query::new().eq("state", "QUALIFIED"), 6)
        .try_collect()
        .await?;
    assert_eq!(qualified.len(), 20);
    let l7 = qualified
        .iter()
        .find(|p| p.data["lead_id"] == "L-7")
        .unwrap();
    assert_eq!(l7.data["score"], 7);
    assert_eq!(l7.assigned_to.as_deref(), Some("asha"));
    assert_eq!(l7.next_action_at.unwrap().to_system_time(), due);
    let one = client.get_process("lead", l7.id.as_str()).await?;
    assert_eq!(&one, l7);
    let l3 = chakra.process_by_key("lead", "L-3").unwrap();
    assert_eq!(l3["state"], "QUALIFIED", "the BOGUS state was not applied");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn run_checked_rejects_the_batch_listing_every_bad_item_and_sends_nothing() -> TestResult {
    let (sim, _chakra) = start(ChakraConfig::default(), vec![], 5).await;
    let items = vec![
        qualify(0),
        ProcessUpdate::from_wire(json!({"id": "p", "lead_id": "L-1", "update": {"state": "NEW"}})),
        qualify(2),
        ProcessUpdate::from_wire(json!({"lead_id": "L-3", "update": {"status": "DONE"}})),
        ProcessUpdate::by_id("p-4"),
    ];
    let err = client(&sim)
        .bulk_update("lead")
        .run_checked(items)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    for needle in ["item 1", "item 3", "item 4", "3 of 5"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert!(
        !text.contains("item 0") && !text.contains("item 2"),
        "{text}"
    );
    let details = err.details().unwrap().as_array().unwrap().clone();
    assert_eq!(details.len(), 3);
    assert_eq!(sim.counters().received(PATCH), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_size_error_halves_the_chunk_and_entries_are_paged() -> TestResult {
    let cfg = ChakraConfig {
        max_items_per_request: 300,
        ..ChakraConfig::default()
    };
    let (sim, chakra) = start(cfg, vec![], 1000).await;
    let client = client(&sim);
    // Five unknown keys, so that chunks with failures are read entry by entry (several pages).
    let items = (0..1000).map(|i| {
        if i % 200 == 199 {
            qualify(5000 + i)
        } else {
            qualify(i)
        }
    });
    let report = client
        .bulk_update("lead")
        .poll_policy(fast_poll())
        .run(items)
        .await?;
    assert_eq!(report.total(), 1000);
    assert_eq!(report.succeeded(), 995);
    let failed: Vec<u64> = report.failures().iter().map(|f| f.index).collect();
    assert_eq!(failed, [199, 399, 599, 799, 999]);
    assert!(
        report
            .failures()
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Error(_)))
    );
    assert_eq!(report.progress().chunk_size, 250);
    // 1000 → 413; 500 + 500 → 413 each; then 250-item chunks: four jobs.
    assert_eq!(chakra.jobs_created(), 4);
    assert_eq!(sim.counters().received(PATCH), 7);
    assert!(
        sim.counters()
            .received("GET /v1/ext/background-job/{id}/entries")
            >= 12
    );
    assert_eq!(sim.counters().get("chakra.items.applied"), 995);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn throttling_server_errors_and_a_slow_job_lose_nothing_and_duplicate_nothing() -> TestResult
{
    let cfg = ChakraConfig {
        item_time: Duration::from_millis(40),
        ..ChakraConfig::default()
    };
    let rules = vec![
        FaultRule::new(Fault::TooManyRequests {
            retry_after: Some("2".into()),
        })
        .method("PATCH")
        .times(3),
        FaultRule::new(Fault::Status(503))
            .path("/v1/ext/background-job/{id}")
            .probability(0.3),
        FaultRule::new(Fault::ResetBeforeHandler)
            .path("/v1/ext/background-job/{id}")
            .nth(4),
    ];
    let (sim, chakra) = start(cfg, rules, 400).await;
    let client = client(&sim);
    let report = client
        .bulk_update("lead")
        .chunk_size(50)
        .concurrency(3)
        .poll_policy(fast_poll())
        .run((0..400).map(qualify))
        .await?;
    assert!(
        report.is_complete_success(),
        "{:?}",
        report.failures().first()
    );
    assert_eq!(report.succeeded(), 400);
    assert_eq!(chakra.jobs_created(), 8, "no chunk was sent twice");
    for i in 0..400 {
        let p = chakra.process_by_key("lead", &format!("L-{i}")).unwrap();
        assert_eq!(chakra.times_applied("lead", p["id"].as_str().unwrap()), 1);
        assert_eq!(p["data"]["score"], i);
    }
    assert!(client.stats().retries >= 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_reconciliation_off_an_ambiguous_chunk_is_reported_unknown_and_not_resent()
-> TestResult {
    let rules = vec![
        // The first request never reaches the handler (503 from a proxy): not applied.
        FaultRule::new(Fault::Status(503)).method("PATCH").nth(1),
        // The third is applied, then the connection drops before the reply.
        FaultRule::new(Fault::ResetAfterHandler)
            .method("PATCH")
            .nth(3),
    ];
    let (sim, chakra) = start(ChakraConfig::default(), rules, 40).await;
    let client = client(&sim);
    let report = client
        .bulk_update("lead")
        .chunk_size(10)
        .concurrency(1)
        .reconcile(false)
        .poll_policy(fast_poll())
        .run((0..40).map(qualify))
        .await?;
    assert_eq!(report.total(), 40);
    assert_eq!(report.succeeded(), 20);
    assert_eq!(report.unknown_count(), 20);
    assert!(
        report.failed().is_empty(),
        "unknown items are not offered for blind resending"
    );
    let unknown = report.unknown();
    assert_eq!(unknown.len(), 20);
    let unknown_idx: Vec<u64> = report.failures().iter().map(|f| f.index).collect();
    assert_eq!(unknown_idx, (0..10).chain(20..30).collect::<Vec<u64>>());
    assert!(
        report.failures()[0]
            .outcome
            .message()
            .unwrap()
            .contains("may or may not have been applied")
    );
    // Four requests, three of which reached the handler; nothing was sent twice.
    assert_eq!(sim.counters().received(PATCH), 4);
    assert_eq!(chakra.jobs_created(), 3);
    let applied = |i: usize| {
        let p = chakra.process_by_key("lead", &format!("L-{i}")).unwrap();
        chakra.times_applied("lead", p["id"].as_str().unwrap())
    };
    assert_eq!(applied(0), 0, "the refused chunk was not applied");
    assert_eq!(
        applied(25),
        1,
        "the reset chunk was applied once, by the server"
    );
    assert_eq!(applied(35), 1);

    // The caller reconciles by reading back: the reset chunk's processes show the new state.
    let done: Vec<_> = client
        .list_processes("lead", Query::new().eq("state", "QUALIFIED"), 100)
        .try_collect()
        .await?;
    assert_eq!(done.len(), 30);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn ambiguous_chunks_are_read_back_and_only_the_unapplied_one_is_sent_again() -> TestResult {
    let rules = vec![
        // Not applied: read back, then sent again.
        FaultRule::new(Fault::Status(503)).method("PATCH").nth(1),
        // Applied, reply lost: read back and found applied, not sent again.
        FaultRule::new(Fault::ResetAfterHandler)
            .method("PATCH")
            .nth(3),
    ];
    let (sim, chakra) = start(ChakraConfig::default(), rules, 40).await;
    let report = client(&sim)
        .bulk_update("lead")
        .chunk_size(10)
        .concurrency(1)
        .poll_policy(fast_poll())
        .run((0..40).map(qualify))
        .await?;
    assert!(
        report.is_complete_success(),
        "{:?}",
        report.failures().first()
    );
    assert_eq!(report.succeeded(), 40);
    let p = report.progress();
    assert_eq!((p.read_back, p.found_applied, p.resent), (20, 10, 10));
    assert_eq!(chakra.jobs_created(), 4);
    for i in 0..40 {
        let p = chakra.process_by_key("lead", &format!("L-{i}")).unwrap();
        assert_eq!(
            chakra.times_applied("lead", p["id"].as_str().unwrap()),
            1,
            "L-{i}"
        );
        assert_eq!(p["state"], "QUALIFIED");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_resend_policy_resends_an_ambiguous_chunk_once() -> TestResult {
    let rules = vec![
        FaultRule::new(Fault::ResetAfterHandler)
            .method("PATCH")
            .nth(2),
    ];
    let (sim, chakra) = start(ChakraConfig::default(), rules, 30).await;
    let report = client(&sim)
        .bulk_update("lead")
        .chunk_size(10)
        .concurrency(1)
        .ambiguous(AmbiguousPolicy::Resend)
        .poll_policy(fast_poll())
        .run((0..30).map(qualify))
        .await?;
    assert!(report.is_complete_success());
    assert_eq!(sim.counters().received(PATCH), 4);
    assert_eq!(chakra.jobs_created(), 4);
    let p = chakra.process_by_key("lead", "L-15").unwrap();
    assert_eq!(
        chakra.times_applied("lead", p["id"].as_str().unwrap()),
        2,
        "the documented cost: the ambiguous chunk was applied twice"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_job_still_running_at_the_deadline_leaves_its_items_unknown() -> TestResult {
    let cfg = ChakraConfig {
        item_time: Duration::from_secs(10),
        ..ChakraConfig::default()
    };
    let (sim, _chakra) = start(cfg, vec![], 5).await;
    let report = client(&sim)
        .bulk_update("lead")
        .reconcile(false)
        .poll_policy(fast_poll().deadline(Some(Duration::from_secs(20))))
        .run((0..5).map(qualify))
        .await?;
    assert_eq!(report.unknown_count(), 5);
    let first = &report.failures()[0];
    let job = first.job.as_ref().unwrap();
    assert!(first.outcome.message().unwrap().contains(job.as_str()));

    // With reconciliation, the items the job applied so far are found applied; the others
    // stay unknown and are not sent again while the job may still apply them.
    let (sim, chakra) = start(cfg_slow(), vec![], 5).await;
    let report = client(&sim)
        .bulk_update("lead")
        .poll_policy(fast_poll().deadline(Some(Duration::from_secs(20))))
        .run((0..5).map(qualify))
        .await?;
    assert_eq!(report.succeeded(), 1);
    assert_eq!(report.unknown_count(), 4);
    assert_eq!(report.progress().resent, 0);
    assert_eq!(chakra.jobs_created(), 1);
    assert!(
        report.failures()[0]
            .outcome
            .message()
            .unwrap()
            .contains("does not hold")
    );
    Ok(())
}

fn cfg_slow() -> ChakraConfig {
    ChakraConfig {
        item_time: Duration::from_secs(10),
        ..ChakraConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_counts_stall_ends_with_a_typed_error_carrying_the_counts() -> TestResult {
    let cfg = ChakraConfig {
        item_time: Duration::from_secs(3600),
        ..ChakraConfig::default()
    };
    let (sim, _chakra) = start(cfg, vec![], 3).await;
    let client = client(&sim);
    let job = client
        .submit_updates("lead", &(0..3).map(qualify).collect::<Vec<_>>())
        .await?;
    let started = tokio::time::Instant::now();
    let err = client
        .wait(&job)
        .policy(fast_poll().deadline(Some(Duration::from_secs(7200))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert!(err.to_string().contains("no progress"), "{err}");
    assert_eq!(err.details().unwrap()["counts"]["NOT_STARTED"], 3);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(700),
        "{waited:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_stops_the_run_and_reports_what_was_read() -> TestResult {
    let (sim, _chakra) = start(ChakraConfig::default(), vec![], 5).await;
    let client = Client::builder()
        .base_url(sim.base_url())
        .token(SecretString::from("wrong"))
        .build()?;
    let report = client
        .bulk_update("lead")
        .chunk_size(2)
        .concurrency(1)
        .run((0..100).map(qualify))
        .await?;
    let stop = report.stopped_early().unwrap();
    assert_eq!(stop.kind(), ErrorKind::Auth);
    assert_eq!(stop.vendor_code(), Some("UNAUTHORIZED"));
    assert!(
        report.total() < 10,
        "input stops being read: {}",
        report.total()
    );
    assert_eq!(report.failed().len() as u64, report.total());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_pulled_lazily_with_bounded_items_in_flight() -> TestResult {
    let cfg = ChakraConfig {
        item_time: Duration::from_millis(2),
        ..ChakraConfig::default()
    };
    let (sim, _chakra) = start(cfg, vec![], 3000).await;
    let in_flight = Arc::new(Mutex::new(0u64));
    let seen = in_flight.clone();
    let stream = futures::stream::iter((0..3000).map(qualify));
    let report = client(&sim)
        .bulk_update("lead")
        .chunk_size(100)
        .concurrency(2)
        .max_pending_chunks(3)
        .poll_policy(fast_poll())
        .on_progress(move |p| {
            let mut max = seen.lock().unwrap();
            *max = (*max).max(p.read - p.finished);
        })
        .run_stream(stream)
        .await?;
    assert!(report.is_complete_success());
    assert_eq!(report.succeeded(), 3000);
    let max = *in_flight.lock().unwrap();
    assert!(
        max <= 400,
        "at most (max_pending_chunks + 1) × chunk_size held: {max}"
    );
    assert!(max >= 100);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn deletion_status_and_procedure_uuid_work_end_to_end() -> TestResult {
    let (sim, chakra) = start(ChakraConfig::default(), vec![], 3).await;
    let client = client(&sim);
    let proc_id = chakra.add_procedure(ProcedureSpec::new("deal", "deal_no"));
    let id = chakra.add_process("deal", json!({"deal_no": 7})).unwrap();
    let report = client
        .bulk_update(proc_id.as_str())
        .poll_policy(fast_poll())
        .run(vec![
            ProcessUpdate::by_key("deal_no", 7).status(ProcessStatus::Completed),
        ])
        .await?;
    assert!(report.is_complete_success());
    assert_eq!(
        client.get_process("deal", &id).await?.status,
        Some(ProcessStatus::Completed)
    );
    let report = client
        .bulk_update("lead")
        .poll_policy(fast_poll())
        .run(vec![ProcessUpdate::by_key("lead_id", "L-1").deleted(true)])
        .await?;
    assert!(report.is_complete_success());
    let left: Vec<_> = client
        .list_processes("lead", Query::new(), 100)
        .try_collect()
        .await?;
    assert_eq!(left.len(), 2, "a soft-deleted process is not listed");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_ended_stream_is_never_polled_again() -> TestResult {
    let (sim, _chakra) = start(ChakraConfig::default(), vec![], 5).await;
    // `unfold` panics when polled after it ended; the last chunk here is a partial one.
    let stream =
        futures::stream::unfold(
            0usize,
            |i| async move { (i < 5).then(|| (qualify(i), i + 1)) },
        );
    let report = client(&sim)
        .bulk_update("lead")
        .chunk_size(2)
        .poll_policy(fast_poll())
        .run_stream(stream)
        .await?;
    assert!(report.is_complete_success());
    assert_eq!(report.succeeded(), 5);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_simulator_refuses_unknown_misplaced_and_mistyped_fields_with_400() -> TestResult {
    use chakra_api::bulk_common::{Idempotency, Method};
    let (sim, chakra) = start(ChakraConfig::default(), vec![], 2).await;
    let client = client(&sim);
    let patch = "/v1/ext/procedure/lead/process";
    let cases = [
        (patch, json!({"processes": [], "dryRun": true}), "dryRun"),
        (
            patch,
            json!({"process": [{"id": "x", "update": {"state": "NEW"}}]}),
            "process",
        ),
        (patch, json!({"processes": {"id": "x"}}), "processes"),
        (
            patch,
            json!({"processes": [{"lead_id": "L-1", "state": "DONE"}]}),
            "update",
        ),
        (
            patch,
            json!({"processes": [{"lead_id": "L-1", "update": {"stat": "DONE"}}]}),
            "update.stat",
        ),
        (
            patch,
            json!({"processes": [{"lead_id": "L-1", "update": {"isDeleted": "yes"}}]}),
            "isDeleted",
        ),
        (
            patch,
            json!({"processes": [{"lead_id": "L-1", "update": {"nextActionAt": "soon"}}]}),
            "nextActionAt",
        ),
        (
            "/v1/ext/procedure/lead/process/list",
            json!({"where": {}, "limt": 10}),
            "limt",
        ),
        (
            "/v1/ext/procedure/lead/process/list",
            json!({"skip": "0"}),
            "skip",
        ),
    ];
    for (path, body, field) in cases {
        let method = if path.ends_with("/list") {
            Method::Post
        } else {
            Method::Patch
        };
        let err = client
            .http()
            .request(method, path)
            .idempotency(Idempotency::Idempotent)
            .json(&body)
            .send()
            .await
            .err()
            .unwrap_or_else(|| panic!("{body} was accepted"));
        assert_eq!(err.status(), Some(400), "{body}: {err}");
        assert_eq!(err.vendor_code(), Some("VALIDATION_ERROR"), "{body}");
        assert!(err.to_string().contains(field), "{body}: {err}");
    }
    assert_eq!(chakra.jobs_created(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_saved_handle_resumes_the_wait_in_a_fresh_client_with_progress_events() -> TestResult {
    let cfg = ChakraConfig {
        item_time: Duration::from_millis(500),
        ..ChakraConfig::default()
    };
    let (sim, chakra) = start(cfg, vec![], 6).await;
    let job = client(&sim)
        .submit_updates("lead", &(0..6).map(qualify).collect::<Vec<_>>())
        .await?;
    // Saved as JSON (private fields, stable names), read back in "another process".
    let saved = serde_json::to_string(&job)?;
    let resumed: chakra_api::JobHandle = serde_json::from_str(&saved)?;
    assert_eq!(resumed, job);
    assert_eq!(resumed.submitted(), 6);

    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let status = client(&sim)
        .wait(&resumed)
        .policy(fast_poll())
        .poll_immediately(true)
        .on_progress(move |e| seen.lock().unwrap().push(e.progress.remaining))
        .await?;
    assert!(status.is_complete(6));
    assert_eq!(status.counts.success, 6);
    let events = events.lock().unwrap();
    assert!(!events.is_empty(), "a pending job reports progress");
    assert!(events.windows(2).all(|w| w[0] >= w[1]), "{events:?}");
    assert_eq!(
        chakra.process_by_key("lead", "L-5").unwrap()["state"],
        json!("QUALIFIED")
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_owned_watch_moves_into_a_task_and_a_cancelled_wait_stops() -> TestResult {
    let (sim, _chakra) = start(cfg_slow(), vec![], 3).await;
    let client = client(&sim);
    let job = client
        .submit_updates("lead", &(0..3).map(qualify).collect::<Vec<_>>())
        .await?;
    let watch = client.watch(&job);
    assert_eq!(watch.handle(), &job);
    let stop = chakra_api::CancellationToken::new();
    let wait = chakra_api::JobWait::new(watch.clone(), Client::default_poll_policy())
        .cancel_on(stop.clone());
    let task = tokio::spawn(std::future::IntoFuture::into_future(wait));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let err = task.await?.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_bulk_update_takes_the_shared_wait_options_for_its_jobs() -> TestResult {
    let cfg = ChakraConfig {
        item_time: Duration::from_millis(200),
        ..ChakraConfig::default()
    };
    let (sim, _chakra) = start(cfg, vec![], 40).await;
    let looks = Arc::new(Mutex::new(Vec::new()));
    let seen = looks.clone();
    let report = client(&sim)
        .bulk_update("lead")
        .chunk_size(10)
        .wait_options(
            chakra_api::WaitOptions::new()
                .policy(fast_poll())
                .on_progress(move |e| seen.lock().unwrap().push(e.job.clone())),
        )
        .run((0..40).map(qualify))
        .await?;
    assert!(report.is_complete_success(), "{:?}", report.failures());
    assert_eq!(report.succeeded(), 40);
    let looks = looks.lock().unwrap();
    // Every chunk's job (2 s of work) was looked at while pending, and reported to the observer.
    for job in report.jobs() {
        assert!(
            looks.iter().any(|j| j == job.as_str()),
            "{job} in {looks:?}"
        );
    }
    Ok(())
}
