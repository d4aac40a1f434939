//! Behaviour against the Zefort simulator on Tokio's paused clock: the user's job end to end,
//! throttling, server errors, a reply lost after the update was applied, a failed task, the
//! deadline, resuming, validation, tagging and paging.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::json;
use vendor_sim::zefort::{Zefort, ZefortConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};
use zefort_api::{
    BulkUpdate, Client, ClientBuilder, ContractId, ContractQuery, ContractStatus, ErrorKind,
    FrontendStatus, HttpOptions, JobHandle, PollPolicy, RetryPolicy, SecretString, TagOutcome,
    Target, WaitOptions,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TAG: &str = "contracts of service";

async fn start(rules: Vec<FaultRule>, cfg: ZefortConfig) -> (SimHandle, Zefort) {
    let mut builder = SimBuilder::new("zefort").seed(4);
    for r in rules {
        builder = builder.fault(r);
    }
    vendor_sim::zefort::start(builder, cfg).await.unwrap()
}

fn builder(sim: &SimHandle) -> ClientBuilder {
    let retry = RetryPolicy::default()
        .max_attempts(4)
        .initial_delay(Duration::from_millis(100))
        .jitter(bulk_common::Jitter::None);
    Client::builder()
        .api_key(SecretString::from(ZefortConfig::default().api_key))
        .base_url(&sim.base_url())
        .http_options(HttpOptions::default().retry(retry))
}

fn client(sim: &SimHandle) -> Client {
    builder(sim).build().unwrap()
}

fn the_update() -> BulkUpdate {
    BulkUpdate::new(Target::search(ContractQuery::new().q_tags(TAG)))
        .end_date("2023-02-15".parse().unwrap())
        .status(ContractStatus::Done)
}

/// Every tagged contract carries the new end date and status; the others are untouched.
fn assert_applied(z: &Zefort, all: &[String]) {
    let tagged = z.contracts_tagged(TAG);
    assert!(!tagged.is_empty());
    for id in all {
        let c = z.contract(id).unwrap();
        if tagged.contains(id) {
            assert_eq!(
                c.attributes.get("end_date"),
                Some(&json!("2023-02-15")),
                "{id}"
            );
            assert_eq!(c.status, "done", "{id}");
        } else {
            assert_eq!(c.attributes.get("end_date"), None, "{id}");
            assert_eq!(c.status, "review", "{id}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_users_job_runs_end_to_end_and_acknowledges_the_task() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    let all = z.seed(60, TAG, 3);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let options = WaitOptions::new()
        .on_progress(move |e| seen.lock().unwrap().push(e.progress.status.clone()));
    let task = client(&sim)
        .run_bulk_update(&the_update(), &options)
        .await?;

    assert!(task.is_done());
    assert_eq!(task.frontend_status, FrontendStatus::Done);
    assert_eq!(task.backend_status_info, "");
    assert_eq!(task.details.data, the_update().to_json()?);
    assert_applied(&z, &all);
    assert_eq!(sim.counters().get("tasks.created"), 1);
    assert_eq!(sim.counters().get("tasks.acknowledged"), 1);
    let events = events.lock().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|s| s.as_deref() == Some("pending")));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn acknowledgement_can_be_skipped() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(5, TAG, 1);
    let c = builder(&sim).acknowledge_finished(false).build()?;
    let task = c
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;
    assert!(task.is_done());
    assert_eq!(task.frontend_status, FrontendStatus::Pending);
    assert_eq!(sim.counters().received("PATCH /api/tasks/{id}/"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_watch_can_skip_or_ask_for_the_acknowledgement() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(5, TAG, 1);
    let c = client(&sim);
    let task = c.bulk_update(&the_update()).await?;
    let handle = JobHandle::from(&task);
    let watch = c.watch(&handle).acknowledge(false);
    assert_eq!(watch.handle(), handle);
    let done = watch.wait().await?;
    assert!(done.is_done());
    assert_eq!(done.frontend_status, FrontendStatus::Pending);
    assert_eq!(sim.counters().received("PATCH /api/tasks/{id}/"), 0);

    // A client that does not acknowledge by default, and one watch that does.
    let quiet = builder(&sim).acknowledge_finished(false).build()?;
    let acked = quiet.watch(&handle).acknowledge(true).wait().await?;
    assert_eq!(acked.frontend_status, FrontendStatus::Done);
    assert_eq!(sim.counters().get("tasks.acknowledged"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_acknowledgement_still_returns_the_finished_task() -> TestResult {
    // Every PATCH is refused: the contracts are changed all the same, so the wait yields the
    // finished task (still `pending` in the UI) instead of an error.
    let rule = FaultRule::new(Fault::Status(403))
        .method("PATCH")
        .path("/api/tasks/{id}/");
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    let all = z.seed(8, TAG, 2);
    let task = client(&sim)
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;
    assert!(task.is_done());
    assert_eq!(task.frontend_status, FrontendStatus::Pending);
    assert_applied(&z, &all);
    assert!(sim.faults().injected() >= 1);
    assert_eq!(sim.counters().get("tasks.acknowledged"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_resumed_wait_looks_at_once_with_zeforts_default_policy() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(5, TAG, 1);
    let c = client(&sim);
    let task = c
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;

    let wait = client(&sim).wait(&JobHandle::from(&task));
    assert_eq!(wait.effective_policy(), &Client::default_poll_policy());
    assert_eq!(Client::default_poll_policy(), PollPolicy::default());
    let looks = sim.counters().received("GET /api/tasks/{id}/");
    let started = tokio::time::Instant::now();
    let again = wait.await?;
    // The task finished long ago: one look, without the policy's first delay (1 s).
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sim.counters().received("GET /api/tasks/{id}/"), looks + 1);
    assert_eq!(again.id, task.id);
    assert_eq!(again.frontend_status, FrontendStatus::Done);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_throttled_submit_is_retried_after_retry_after() -> TestResult {
    let rule = FaultRule::new(Fault::TooManyRequests {
        retry_after: Some("2".into()),
    })
    .method("POST")
    .path("/api/contracts/bulk_update/")
    .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    let all = z.seed(12, TAG, 2);
    let started = tokio::time::Instant::now();
    let c = client(&sim);
    let task = c.bulk_update(&the_update()).await?;
    assert!(started.elapsed() >= Duration::from_secs(2));
    c.wait(&JobHandle::from(&task)).await?;
    assert_applied(&z, &all);
    let post = sim
        .counters()
        .route_counts("POST /api/contracts/bulk_update/");
    assert_eq!((post.received, post.handled), (2, 1));
    assert_eq!(sim.counters().get("tasks.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn server_errors_while_polling_are_retried() -> TestResult {
    let rule = FaultRule::new(Fault::Status(503))
        .method("GET")
        .path("/api/tasks/{id}/")
        .times(3);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    let all = z.seed(10, TAG, 2);
    let c = client(&sim);
    let task = c
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;
    assert!(task.is_done());
    assert_applied(&z, &all);
    assert!(c.stats().retries >= 3);
    assert_eq!(sim.faults().injected(), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_reset_after_the_update_was_applied_finds_the_task_instead_of_resubmitting() -> TestResult
{
    let rule = FaultRule::new(Fault::ResetAfterHandler)
        .method("POST")
        .path("/api/contracts/bulk_update/")
        .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    let all = z.seed(30, TAG, 3);
    let task = client(&sim)
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;
    assert!(task.is_done());
    assert_applied(&z, &all);
    let c = sim.counters();
    assert_eq!(
        c.received("POST /api/contracts/bulk_update/"),
        1,
        "never re-sent"
    );
    assert_eq!(c.get("tasks.created"), 1, "no second task");
    assert_eq!(sim.faults().injected(), 1, "the reply was lost");
    let tasks = z.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], json!(task.id.as_str()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_reply_to_the_update_finds_the_task_instead_of_failing() -> TestResult {
    let rule = FaultRule::new(Fault::MalformedBody)
        .method("POST")
        .path("/api/contracts/bulk_update/")
        .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    z.seed(6, TAG, 2);
    let task = client(&sim).bulk_update(&the_update()).await?;
    assert_eq!(z.tasks()[0]["id"], json!(task.id.as_str()));
    assert_eq!(sim.counters().get("tasks.created"), 1);
    // Without reconciliation the caller is told the outcome is unknown, not "bad JSON".
    sim.faults().push(
        FaultRule::new(Fault::MalformedBody)
            .method("POST")
            .path("/api/contracts/bulk_update/")
            .times(1),
    );
    let err = builder(&sim)
        .reconcile(false)
        .build()?
        .bulk_update(&the_update())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(sim.counters().get("tasks.created"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn reconciliation_ignores_an_older_identical_task() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(6, TAG, 2);
    let c = client(&sim);
    // An earlier, identical update, not acknowledged: it still echoes the same body.
    let older = c.bulk_update(&the_update()).await?;
    sim.faults().push(
        FaultRule::new(Fault::ResetAfterHandler)
            .method("POST")
            .path("/api/contracts/bulk_update/")
            .times(1),
    );
    let newer = c.bulk_update(&the_update()).await?;
    assert_ne!(newer.id, older.id);
    assert_eq!(sim.counters().get("tasks.created"), 2);
    assert_eq!(z.tasks()[1]["id"], json!(newer.id.as_str()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_server_error_on_submit_is_not_resubmitted_when_turned_off() -> TestResult {
    let rule = FaultRule::new(Fault::Status(502))
        .method("POST")
        .path("/api/contracts/bulk_update/")
        .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    z.seed(4, TAG, 1);
    let c = builder(&sim).resubmit_if_absent(false).build()?;
    let err = c.bulk_update(&the_update()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(err.status(), Some(502));
    assert!(
        err.to_string().contains("proves no task was created"),
        "{err}"
    );
    assert_eq!(
        sim.counters().received("POST /api/contracts/bulk_update/"),
        1
    );
    assert_eq!(sim.counters().get("tasks.created"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_server_error_on_submit_resubmits_once_when_no_task_exists() -> TestResult {
    let rule = FaultRule::new(Fault::Status(500))
        .method("POST")
        .path("/api/contracts/bulk_update/")
        .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    let all = z.seed(8, TAG, 2);
    let task = client(&sim)
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await?;
    assert!(task.is_done());
    assert_applied(&z, &all);
    assert_eq!(
        sim.counters().received("POST /api/contracts/bulk_update/"),
        2
    );
    assert_eq!(sim.counters().get("tasks.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn resubmissions_are_bounded_and_each_needs_its_own_proof() -> TestResult {
    let rule = FaultRule::new(Fault::ResetBeforeHandler)
        .method("POST")
        .path("/api/contracts/bulk_update/")
        .times(3);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    z.seed(4, TAG, 1);
    let err = client(&sim).bulk_update(&the_update()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert!(
        err.to_string().contains("none of the 3 submissions"),
        "{err}"
    );
    assert_eq!(
        sim.counters().received("POST /api/contracts/bulk_update/"),
        3
    );
    assert_eq!(sim.counters().get("tasks.created"), 0);
    // A lower bound stops earlier; the next submission then goes through.
    let c = builder(&sim).max_resubmissions(1).build()?;
    sim.faults().push(
        FaultRule::new(Fault::Status(503))
            .method("POST")
            .path("/api/contracts/bulk_update/")
            .times(2),
    );
    let err = c.bulk_update(&the_update()).await.unwrap_err();
    assert!(
        err.to_string().contains("none of the 2 submissions"),
        "{err}"
    );
    assert_eq!(
        sim.counters().received("POST /api/contracts/bulk_update/"),
        5
    );
    let task = c.bulk_update(&the_update()).await?;
    assert_eq!(sim.counters().get("tasks.created"), 1);
    assert_eq!(z.tasks()[0]["id"], json!(task.id.as_str()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ends_in_error_is_a_job_failure_with_its_info() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    let all = z.seed(9, TAG, 3);
    z.fail_next_task("Contract ct_x is locked for editing");
    let err = client(&sim)
        .run_bulk_update(&the_update(), &WaitOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    assert_eq!(
        err.vendor_message(),
        Some("Contract ct_x is locked for editing")
    );
    assert_eq!(err.vendor_code(), Some("error"));
    let details = err.details().unwrap();
    assert_eq!(details["backend_status"], "error");
    assert_eq!(
        details["backend_status_info"],
        "Contract ct_x is locked for editing"
    );
    // Nothing applied, and the failed task is left visible (not acknowledged).
    for id in &all {
        assert_eq!(z.contract(id).unwrap().status, "review");
    }
    assert_eq!(sim.counters().get("tasks.acknowledged"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_wait() -> TestResult {
    let cfg = ZefortConfig {
        task_base: Duration::from_secs(600),
        ..ZefortConfig::default()
    };
    let (sim, z) = start(vec![], cfg).await;
    z.seed(3, TAG, 1);
    let started = tokio::time::Instant::now();
    let options = WaitOptions::new()
        .policy(Client::default_poll_policy().deadline(Some(Duration::from_secs(20))));
    let err = client(&sim)
        .run_bulk_update(&the_update(), &options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(25),
        "{waited:?}"
    );
    assert_eq!(sim.counters().get("tasks.acknowledged"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_saved_handle_resumes_in_a_new_client() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    let all = z.seed(20, TAG, 4);
    let task = client(&sim).bulk_update(&the_update()).await?;
    let saved = serde_json::to_string(&JobHandle::from(&task))?;

    let handle: JobHandle = serde_json::from_str(&saved)?;
    let finished = client(&sim).wait(&handle).await?;
    assert_eq!(finished.id, task.id);
    assert!(finished.is_done());
    assert_applied(&z, &all);
    assert_eq!(sim.counters().get("tasks.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn field_errors_come_back_as_invalid_input_with_the_vendor_details() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(2, TAG, 1);
    let c = client(&sim);

    let bad_date = the_update().attribute("signed_date", "15.02.2023");
    let err = c.bulk_update(&bad_date).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.status(), Some(400));
    let msg = err.vendor_message().unwrap();
    assert!(
        msg.starts_with("attributes.signed_date: Date has wrong format"),
        "{msg}"
    );
    assert!(err.details().unwrap()["attributes"]["signed_date"].is_array());

    let unknown = BulkUpdate::new(Target::contracts(["ct_missing"])).status(ContractStatus::Done);
    let err = c.bulk_update(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.vendor_message().unwrap().contains("ct_missing"));

    // Refused before sending: nothing to set, or no contract.
    let nothing = BulkUpdate::new(Target::search(ContractQuery::new()));
    assert_eq!(
        c.bulk_update(&nothing).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let empty = BulkUpdate::new(Target::Contracts(Vec::new())).status(ContractStatus::Done);
    assert_eq!(
        c.bulk_update(&empty).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(sim.counters().get("tasks.created"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_is_an_auth_error() -> TestResult {
    let (sim, _) = start(vec![], ZefortConfig::default()).await;
    let c = Client::builder()
        .api_key(SecretString::from("wrong-key"))
        .base_url(&sim.base_url())
        .build()?;
    let err = c.task(&"task_1".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.vendor_message(), Some("Invalid username/password."));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn tagging_by_id_and_by_search() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    let all = z.seed(15, TAG, 5);
    let c = client(&sim);
    let tag = c.create_tag("renewal 2023", true).await?;
    assert!(tag.id.as_str().starts_with("tag_"));

    let outcome = c
        .tag_contracts(
            &tag.id,
            &Target::contracts([all[1].as_str(), all[2].as_str()]),
        )
        .await?;
    let TagOutcome::Task(task) = outcome else {
        return Err(format!("expected a task, got {outcome:?}").into());
    };
    c.wait(&JobHandle::from(&task)).await?;
    assert_eq!(
        z.contracts_tagged("renewal 2023"),
        vec![all[1].clone(), all[2].clone()]
    );

    let outcome = c
        .tag_contracts(&tag.id, &Target::search(ContractQuery::new().q_tags(TAG)))
        .await?;
    let TagOutcome::Task(task) = outcome else {
        return Err(format!("expected a task, got {outcome:?}").into());
    };
    c.wait(&JobHandle::from(&task)).await?;
    assert_eq!(z.contracts_tagged("renewal 2023").len(), 2 + 3);
    let tags: Vec<_> = c.tags().try_collect().await?;
    assert!(tags.iter().any(|t| t.tag_name == "renewal 2023"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn contract_search_streams_every_page_until_next_is_null() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    let all = z.seed(64, TAG, 2);
    let c = client(&sim);
    let query = ContractQuery::new().q_tags(TAG);
    let found: Vec<_> = c.search_contracts(&query, Some(7)).try_collect().await?;
    let expected: Vec<ContractId> = all.iter().step_by(2).map(|s| s.as_str().into()).collect();
    let ids: Vec<ContractId> = found.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, expected);
    assert_eq!(sim.counters().get("contracts.pages"), 32u64.div_ceil(7));

    let page = c.contracts_page(&query, 2, Some(10)).await?;
    assert_eq!(page.count, Some(32));
    assert_eq!(page.results.len(), 10);
    assert!(page.next.is_some() && page.previous.is_some());
    assert_eq!(page.last_page, Some(4));

    // Lazy: taking three items reads one page.
    let before = sim.counters().get("contracts.pages");
    let first: Vec<_> = futures::StreamExt::take(c.search_contracts(&query, Some(5)), 3)
        .try_collect()
        .await?;
    assert_eq!(first.len(), 3);
    assert_eq!(sim.counters().get("contracts.pages"), before + 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_examples_contract_search_reads_unreadable_pages_again() -> TestResult {
    // The example stopped here under malformed replies (issue 16): a page read is safe to
    // repeat, so a broken page is read again.
    let rule = FaultRule::new(Fault::MalformedBody)
        .method("GET")
        .path("/api/contracts/")
        .times(2);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    z.seed(30, TAG, 3);
    let query = ContractQuery::new().q_tags(TAG).minimal(true);
    let found: Vec<_> = client(&sim)
        .search_contracts(&query, Some(4))
        .try_collect()
        .await?;
    assert_eq!(found.len(), 10);
    assert_eq!(sim.faults().injected(), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn tasks_list_and_acknowledge() -> TestResult {
    let (sim, z) = start(vec![], ZefortConfig::default()).await;
    z.seed(3, TAG, 1);
    let c = client(&sim);
    let a = c.bulk_update(&the_update()).await?;
    let b = c
        .bulk_update(
            &BulkUpdate::new(Target::contracts([z.contracts_tagged(TAG)[0].as_str()]))
                .status(ContractStatus::Archived),
        )
        .await?;
    let listed: Vec<_> = c.tasks().try_collect().await?;
    let ids: Vec<_> = listed.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, vec![b.id.clone(), a.id.clone()], "newest first");
    let acked = c.acknowledge_task(&a.id).await?;
    assert_eq!(acked.frontend_status, FrontendStatus::Done);
    assert_eq!(c.task(&a.id).await?.frontend_status, FrontendStatus::Done);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_task_list_does_not_block_the_submission() -> TestResult {
    let rule = FaultRule::new(Fault::Status(404))
        .method("GET")
        .path("/api/tasks/")
        .times(1);
    let (sim, z) = start(vec![rule], ZefortConfig::default()).await;
    z.seed(4, TAG, 2);
    let task = client(&sim).bulk_update(&the_update()).await?;
    assert!(task.is_running());
    assert_eq!(sim.counters().get("tasks.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_simulator_answers_like_the_vendor_on_paths_and_auth() -> TestResult {
    let (sim, _) = start(vec![], ZefortConfig::default()).await;
    let raw = bulk_common::HttpClient::builder("zefort-tests/0")
        .base_url(&sim.base_url())
        .build()?;
    // No credentials: DRF's 401 with a Basic challenge.
    let err = raw
        .request(bulk_common::Method::Get, "/api/tasks/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    let authed = bulk_common::HttpClient::builder("zefort-tests/0")
        .base_url(&sim.base_url())
        .auth(bulk_common::Auth::basic(
            SecretString::from(ZefortConfig::default().api_key),
            None,
        )?)
        .build()?;
    authed
        .request(bulk_common::Method::Get, "/api/tasks/")
        .send()
        .await?;
    // Without the trailing slash the route does not exist.
    let err = authed
        .request(bulk_common::Method::Get, "/api/tasks")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_the_wait_and_leaves_the_task_running() -> TestResult {
    let cfg = ZefortConfig {
        task_base: Duration::from_secs(300),
        ..ZefortConfig::default()
    };
    let (sim, z) = start(vec![], cfg).await;
    z.seed(3, TAG, 1);
    let cancel = zefort_api::CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        trigger.cancel();
    });
    let err = client(&sim)
        .run_bulk_update(&the_update(), &WaitOptions::new().cancel_on(cancel))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(z.tasks()[0]["backend_status"], "pending");
    assert_eq!(sim.counters().get("tasks.acknowledged"), 0);
    Ok(())
}
