//! Zefort: bulk update of every contract tagged "contracts of service" → task done →
//! acknowledged. Zefort authenticates with a fixed API key (HTTP Basic) and has no downloads,
//! so the token and truncation columns do not apply.
//!
//! The `matrix_zefort_listing_*` and `matrix_zefort_status_*` cells run the workflow under the
//! simulator's switches for what the docs leave open (the task list's order, paging and other
//! users' tasks; undocumented `backend_status` values): correct data or a typed error, and never
//! someone else's task taken for ours.

use vendor_sim::zefort::{ForeignTasks, TaskOrder, Zefort, ZefortConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};
use zefort_api::{
    BulkUpdate, Client, ClientBuilder, ContractQuery, ContractStatus, ErrorKind, Target, Task,
    WaitOptions,
};

use crate::{
    MIXED_RATE, MIXED_RUNS, bounded, mixed_faults, on, server_errors, slow, throttled,
    throttled_for_good,
};

const TAG: &str = "contracts of service";
const CREATE: &str = "POST /api/contracts/bulk_update/";
const TASK: &str = "GET /api/tasks/{id}/";

struct Run {
    result: zefort_api::Result<Task>,
    sim: SimHandle,
    zefort: Zefort,
    tagged: Vec<String>,
    others: Vec<String>,
}

async fn run(rules: Vec<FaultRule>, setup: impl FnOnce(&Zefort)) -> Run {
    run_with(3, rules, ZefortConfig::default(), |b| b, setup).await
}

/// One run of the seed workflow with the fault plan's `seed`, `rules`, simulator `cfg`, client
/// settings and a `setup` of the simulator's state.
async fn run_with(
    seed: u64,
    rules: Vec<FaultRule>,
    cfg: ZefortConfig,
    client: impl FnOnce(ClientBuilder) -> ClientBuilder,
    setup: impl FnOnce(&Zefort),
) -> Run {
    let mut builder = SimBuilder::new("zefort").seed(seed);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, zefort) = vendor_sim::zefort::start(builder, cfg).await.unwrap();
    let ids = zefort.seed(12, TAG, 3);
    let tagged = zefort.contracts_tagged(TAG);
    let others = ids.into_iter().filter(|id| !tagged.contains(id)).collect();
    setup(&zefort);
    let client = client(
        Client::builder()
            .api_key(ZefortConfig::default().api_key.into())
            .base_url(&sim.base_url()),
    )
    .build()
    .unwrap();
    let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags(TAG)))
        .end_date("2023-02-15".parse().unwrap())
        .status(ContractStatus::Done);
    let result = bounded(client.run_bulk_update(&update, &WaitOptions::new())).await;
    Run {
        result,
        sim,
        zefort,
        tagged,
        others,
    }
}

impl Run {
    fn tasks_created(&self) -> u64 {
        self.sim.counters().get("tasks.created")
    }

    /// Whether exactly the tagged contracts changed, as asked.
    fn data_correct(&self) -> bool {
        let changed = self.tagged.iter().all(|id| {
            let c = self.zefort.contract(id).unwrap();
            c.status == "done" && c.attributes.get("end_date") == Some(&"2023-02-15".into())
        });
        let untouched = self.others.iter().all(|id| {
            let c = self.zefort.contract(id).unwrap();
            c.status == "review" && c.attributes.is_empty()
        });
        changed && untouched
    }

    /// The task finished and was acknowledged; exactly the tagged contracts changed, once.
    fn assert_complete(&self) {
        let task = self.result.as_ref().unwrap();
        assert_eq!(task.backend_status.as_str(), "done");
        assert_eq!(task.frontend_status, zefort_api::FrontendStatus::Done);
        assert_eq!(self.tasks_created(), 1, "no duplicate task");
        assert_eq!(self.sim.counters().get("tasks.acknowledged"), 1);
        assert_eq!(self.tagged.len(), 4);
        for id in &self.tagged {
            let c = self.zefort.contract(id).unwrap();
            assert_eq!(c.status, "done", "{id}");
            assert_eq!(c.attributes["end_date"], "2023-02-15", "{id}");
        }
        self.assert_others_untouched();
    }

    fn assert_others_untouched(&self) {
        for id in &self.others {
            let c = self.zefort.contract(id).unwrap();
            assert_eq!(c.status, "review", "{id}");
            assert!(c.attributes.is_empty(), "{id}");
        }
    }

    /// A typed error of `kind`, `created` tasks, nothing acknowledged.
    fn assert_error(&self, kind: ErrorKind, created: u64) {
        let err = self.result.as_ref().unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(self.tasks_created(), created);
        assert_eq!(self.sim.counters().get("tasks.acknowledged"), 0);
        if created == 0 {
            for id in &self.tagged {
                assert_eq!(self.zefort.contract(id).unwrap().status, "review");
            }
        }
        self.assert_others_untouched();
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_no_fault() {
    run(vec![], |_| {}).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_429_retry_after() {
    let run = run(vec![on(CREATE, throttled()).times(2)], |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_5xx_on_poll() {
    let run = run(server_errors(TASK), |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().route_counts(TASK).faulted, 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_5xx_on_create() {
    // A 503 on the non-idempotent submission leaves its outcome unknown; the task list proves
    // no task was created (the handler did not run), so the update is submitted once more.
    let run = run(vec![on(CREATE, Fault::Status(503)).times(1)], |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_reset_before_apply() {
    let run = run(vec![on(CREATE, Fault::ResetBeforeHandler).times(1)], |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_reset_before_apply_every_time() {
    // Bounded: after the third proof that nothing was created, the error is reported.
    let run = run(vec![on(CREATE, Fault::ResetBeforeHandler)], |_| {}).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0);
    assert_eq!(run.sim.counters().received(CREATE), 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_reset_after_apply() {
    // The task exists but its reply was lost: reconciliation finds it in the task list.
    let run = run(vec![on(CREATE, Fault::ResetAfterHandler).times(1)], |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_reset_on_poll() {
    let run = run(vec![on(TASK, Fault::ResetAfterHandler).times(2)], |_| {}).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_slow_reply() {
    let run = run(
        vec![
            on(CREATE, Fault::Delay(std::time::Duration::from_secs(20))).times(1),
            on(TASK, slow()).times(1),
        ],
        |_| {},
    )
    .await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_malformed_json_on_create() {
    // The task was created but the reply cannot be read: as unknown as a lost reply, so the
    // task is found by reconciliation rather than reported as a decode failure.
    let run = run(vec![on(CREATE, Fault::MalformedBody).times(1)], |_| {}).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_malformed_json_on_poll() {
    // A task read is safe to repeat: the unreadable reply is read again (issue 16 §1).
    let run = run(vec![on(TASK, Fault::MalformedBody).times(1)], |_| {}).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_job_failed() {
    let run = run(vec![], |z| z.fail_next_task("Search index unavailable")).await;
    run.assert_error(ErrorKind::JobFailed, 1);
    let err = run.result.as_ref().unwrap_err();
    assert_eq!(err.vendor_message(), Some("Search index unavailable"));
    for id in &run.tagged {
        assert_eq!(run.zefort.contract(id).unwrap().status, "review");
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_vendor_throttle() {
    let run = run(vec![on(CREATE, throttled_for_good())], |_| {}).await;
    run.assert_error(ErrorKind::RateLimited, 0);
    // The default policy's five attempts, then the throttle is reported.
    assert_eq!(run.sim.counters().received(CREATE), 5);
}

/// The body of the seed's bulk update, as another user would send it.
fn seed_body() -> serde_json::Value {
    serde_json::json!({
        "attributes": {"end_date": "2023-02-15"},
        "status": "done",
        "search": {"q_tags": TAG}
    })
}

/// `n` older tasks of other users, every third one the very same update as ours.
fn older_foreign_tasks(z: &Zefort, n: usize) {
    for i in 0..n {
        let body = if i % 3 == 0 {
            seed_body()
        } else {
            serde_json::json!({"status": "archived", "contracts": [format!("ct_other_{i}")]})
        };
        z.add_foreign_task(body);
    }
}

impl Run {
    /// Someone else's task was never acknowledged as ours.
    fn assert_no_foreign_adopted(&self) {
        assert_eq!(self.sim.counters().get("tasks.foreign_acknowledged"), 0);
        if let Ok(task) = &self.result {
            let ours: Vec<String> = self
                .zefort
                .tasks()
                .iter()
                .filter(|t| t["id"] == task.id.as_str())
                .map(|t| t["id"].to_string())
                .collect();
            assert_eq!(ours.len(), 1);
        }
    }
}

fn config(f: impl FnOnce(&mut ZefortConfig)) -> ZefortConfig {
    let mut cfg = ZefortConfig::default();
    f(&mut cfg);
    cfg
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_oldest_first_reset_after_apply() {
    // Oldest first and longer than the scan window: the new task is beyond it. Whether the
    // request created it cannot be told, so it is a typed error; never a second task.
    let cfg = config(|c| c.task_order = TaskOrder::OldestFirst);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b.reconcile_scan_limit(5),
        |z| older_foreign_tasks(z, 8),
    )
    .await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 1);
    assert_eq!(run.sim.counters().received(CREATE), 1);
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_oldest_first_reset_before_apply() {
    // The list's count did not grow: nothing was created, whatever the order, so the update is
    // submitted once more.
    let cfg = config(|c| c.task_order = TaskOrder::OldestFirst);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetBeforeHandler).times(1)],
        cfg,
        |b| b.reconcile_scan_limit(5),
        |z| older_foreign_tasks(z, 8),
    )
    .await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(CREATE), 2);
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_shuffled_short_list() {
    // Shuffled, but read to its end both times: the one new echoing task is ours, and older
    // identical tasks of other users are ignored.
    let cfg = config(|c| c.task_order = TaskOrder::Shuffled);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b,
        |z| older_foreign_tasks(z, 8),
    )
    .await;
    run.assert_complete();
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_shuffled_long_list() {
    // Shuffled and longer than the window: an old identical task may look new, so nothing is
    // adopted (typed error), never an older task of someone else.
    let cfg = config(|c| c.task_order = TaskOrder::Shuffled);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b.reconcile_scan_limit(5),
        |z| older_foreign_tasks(z, 12),
    )
    .await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 1);
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_small_pages_and_page_size_ignored() {
    let cfg = config(|c| {
        c.default_page_size = 2;
        c.max_page_size = 2;
        c.ignore_page_size = true;
    });
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b,
        |z| older_foreign_tasks(z, 7),
    )
    .await;
    run.assert_complete();
    assert!(run.sim.counters().received("GET /api/tasks/") >= 8, "paged");
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_other_users_tasks() {
    // Another user's task with a different body appears with ours: ours is found.
    let cfg = config(|c| c.foreign_tasks = ForeignTasks::Different);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b,
        |_| {},
    )
    .await;
    run.assert_complete();
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_listing_other_users_identical_task() {
    // Another user sent the very same update at the same moment: two new tasks echo the body,
    // so which one is ours cannot be told. Neither is adopted: a typed error.
    let cfg = config(|c| c.foreign_tasks = ForeignTasks::Identical);
    let run = run_with(
        3,
        vec![on(CREATE, Fault::ResetAfterHandler).times(1)],
        cfg,
        |b| b,
        |_| {},
    )
    .await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 1);
    assert!(
        run.result
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("2 new tasks")
    );
    run.assert_no_foreign_adopted();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_status_undocumented_running_values() {
    let cfg = config(|c| c.running_statuses = vec!["queued".into(), "processing".into()]);
    let run = run_with(3, vec![], cfg, |b| b, |_| {}).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_status_unknown_running_value() {
    // A value that names no known state is not taken for success: a typed failure naming it.
    let cfg = config(|c| c.running_statuses = vec!["scheduled".into()]);
    let run = run_with(3, vec![], cfg, |b| b, |_| {}).await;
    let err = run.result.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed, "{err}");
    assert_eq!(err.vendor_code(), Some("scheduled"));
    assert_eq!(run.sim.counters().get("tasks.acknowledged"), 0);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_status_undocumented_failure_value() {
    let cfg = config(|c| c.failure_status = "failed".into());
    let run = run_with(
        3,
        vec![],
        cfg,
        |b| b,
        |z| z.fail_next_task("Quota exceeded"),
    )
    .await;
    run.assert_error(ErrorKind::JobFailed, 1);
    let err = run.result.as_ref().unwrap_err();
    assert_eq!(err.vendor_code(), Some("failed"));
    assert_eq!(err.vendor_message(), Some("Quota exceeded"));
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_status_conflicting_field() {
    // Tasks also carry a `status` that contradicts `backend_status`; only the documented field
    // is read.
    let cfg = config(|c| c.conflicting_status_field = true);
    let run = run_with(3, vec![], cfg, |b| b, |_| {}).await;
    run.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_create_reply_status_200_or_202() {
    for status in [200, 202] {
        let cfg = config(|c| c.create_status = status);
        let run = run_with(3, vec![], cfg, |b| b, |_| {}).await;
        run.assert_complete();
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_mixed() {
    let mut correct = 0;
    let mut failures = Vec::new();
    for seed in 1..=MIXED_RUNS {
        let run = run_with(
            seed,
            mixed_faults(MIXED_RATE),
            ZefortConfig::default(),
            |b| b,
            |_| {},
        )
        .await;
        let tasks = run.tasks_created();
        match &run.result {
            Ok(task) => {
                // A success must be a true one: the task done, the data right, one task.
                assert!(task.is_done(), "seed {seed}: {task:?}");
                assert!(run.data_correct(), "seed {seed}: wrong success");
                assert_eq!(tasks, 1, "seed {seed}: duplicate task");
                correct += 1;
            }
            Err(e) => {
                // A failure must be a definite typed error, not a hang or a panic.
                assert!(
                    !matches!(e.kind(), ErrorKind::Config | ErrorKind::InvalidInput),
                    "seed {seed}: {e}"
                );
                failures.push(format!("seed {seed}: {} ({e})", e.kind()));
            }
        }
    }
    eprintln!("matrix_zefort_mixed: {correct}/{MIXED_RUNS} runs correct; others: {failures:#?}");
    assert!(correct * 100 >= MIXED_RUNS * 95, "{correct}/{MIXED_RUNS}");
}
