//! Zefort: bulk update of every contract tagged "contracts of service" → task done →
//! acknowledged. Zefort authenticates with a fixed API key (HTTP Basic) and has no downloads,
//! so the token and truncation columns do not apply.

use vendor_sim::zefort::{Zefort, ZefortConfig};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};
use zefort_api::{
    BulkUpdate, Client, ContractQuery, ContractStatus, ErrorKind, Target, Task, WaitOptions,
};

use crate::{bounded, on, server_errors, slow, throttled, throttled_for_good};

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
    let mut builder = SimBuilder::new("zefort").seed(3);
    for r in rules {
        builder = builder.fault(r);
    }
    let (sim, zefort) = vendor_sim::zefort::start(builder, ZefortConfig::default())
        .await
        .unwrap();
    let ids = zefort.seed(12, TAG, 3);
    let tagged = zefort.contracts_tagged(TAG);
    let others = ids.into_iter().filter(|id| !tagged.contains(id)).collect();
    setup(&zefort);
    let client = Client::builder()
        .api_key(ZefortConfig::default().api_key.into())
        .base_url(&sim.base_url())
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
    // A 503 on the non-idempotent submission leaves its outcome unknown; reconciliation finds
    // no task (the handler did not run), so the ambiguity is reported, not resubmitted.
    let run = run(vec![on(CREATE, Fault::Status(503)).times(1)], |_| {}).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0);
    assert_eq!(run.sim.counters().received(CREATE), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_zefort_reset_before_apply() {
    let run = run(vec![on(CREATE, Fault::ResetBeforeHandler).times(1)], |_| {}).await;
    run.assert_error(ErrorKind::AmbiguousOutcome, 0);
    assert_eq!(run.sim.counters().received(CREATE), 1);
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
