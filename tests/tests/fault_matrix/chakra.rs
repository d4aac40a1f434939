//! ChakraHQ: a bulk update of 13 items, mixed good and bad (per-item results), in chunks of 4
//! sent one at a time, so three background jobs. ChakraHQ tokens are fixed bearer tokens with
//! no refresh or rotation protocol, and replies are small JSON pages rather than downloads.

use std::time::Duration;

use chakra_api::{BulkReport, Client, ErrorKind, Outcome, PollPolicy, ProcessUpdate};
use serde_json::json;
use vendor_sim::chakra::{Chakra, ChakraConfig, ProcedureSpec};
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle};

use crate::{bounded, on, server_errors, slow, throttled, throttled_for_good};

const PATCH: &str = "PATCH /v1/ext/procedure/{proc}/process";
const JOB: &str = "GET /v1/ext/background-job/{id}";
const ENTRIES: &str = "GET /v1/ext/background-job/{id}/entries";
const GOOD: usize = 10;

struct Run {
    report: chakra_api::Result<BulkReport>,
    sim: SimHandle,
    chakra: Chakra,
}

/// Items 0-9 qualify L-0..L-9; 10: no such process (the job fails it); 11: an unknown state
/// (the server marks it invalid); 12: an empty update (refused by the client, never sent).
fn items() -> Vec<ProcessUpdate> {
    let mut items: Vec<ProcessUpdate> = (0..GOOD)
        .map(|i| {
            ProcessUpdate::by_key("lead_id", format!("L-{i}"))
                .state("QUALIFIED")
                .data("score", i)
        })
        .collect();
    items.push(ProcessUpdate::by_key("lead_id", "L-999").state("QUALIFIED"));
    items.push(ProcessUpdate::by_key("lead_id", "L-3").state("BOGUS"));
    items.push(ProcessUpdate::by_key("lead_id", "L-5"));
    items
}

async fn run(rules: Vec<FaultRule>) -> Run {
    let mut builder = SimBuilder::new("chakra").seed(11);
    for r in rules {
        builder = builder.fault(r);
    }
    let cfg = ChakraConfig::default();
    let (sim, chakra) = vendor_sim::chakra::start(builder, cfg.clone())
        .await
        .unwrap();
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 0..GOOD {
        chakra
            .add_process("lead", json!({"lead_id": format!("L-{i}")}))
            .unwrap();
    }
    let client = Client::builder()
        .base_url(sim.base_url())
        .token(cfg.token.clone().into())
        .build()
        .unwrap();
    let report = bounded(
        client
            .bulk_update("lead")
            .chunk_size(4)
            .concurrency(1)
            .poll_policy(
                PollPolicy::default()
                    .first_delay(Duration::from_millis(200))
                    .min_delay(Duration::from_millis(100))
                    .max_delay(Duration::from_secs(2))
                    .deadline(Some(Duration::from_secs(600))),
            )
            .run(items()),
    )
    .await;
    Run {
        report,
        sim,
        chakra,
    }
}

impl Run {
    fn report(&self) -> &BulkReport {
        self.report.as_ref().unwrap()
    }

    fn jobs_created(&self) -> u64 {
        self.sim.counters().get("chakra.jobs.created")
    }

    /// Whether item `i` (< 10) was applied, asserting it was applied at most once.
    fn applied(&self, i: usize) -> bool {
        let p = self
            .chakra
            .process_by_key("lead", &format!("L-{i}"))
            .unwrap();
        let id = p["id"].as_str().unwrap();
        let times = self.chakra.times_applied("lead", id);
        assert!(times <= 1, "L-{i} applied {times} times");
        if times == 1 {
            assert_eq!(p["state"], "QUALIFIED");
            assert_eq!(p["data"]["score"], i);
        } else {
            assert_eq!(p["state"], "NEW");
        }
        times == 1
    }

    /// Every item's exact outcome, every good item applied once, three jobs.
    fn assert_complete(&self) {
        let r = self.report();
        assert_eq!(r.total(), 13);
        assert_eq!(r.succeeded(), GOOD as u64);
        assert_eq!(r.errors(), 1);
        assert_eq!(r.invalid(), 2);
        assert_eq!(r.unknown_count(), 0);
        assert!(matches!(r.outcome(10), Some(Outcome::Error(_))));
        assert!(matches!(r.outcome(11), Some(Outcome::Invalid(_))));
        assert!(matches!(r.outcome(12), Some(Outcome::Invalid(_))));
        assert_eq!(r.failed().len(), 3);
        assert!(r.stopped_early().is_none());
        for i in 0..GOOD {
            assert!(self.applied(i), "L-{i}");
        }
        assert_eq!(self.jobs_created(), 3, "no duplicate job");
    }

    /// Items 0-3 (the first chunk) ended `label`; the rest as in a clean run.
    fn assert_first_chunk(&self, label: &str, applied: bool, jobs: u64) {
        let r = self.report();
        for i in 0..4 {
            assert_eq!(r.outcome(i).unwrap().label(), label, "item {i}");
            assert_eq!(self.applied(i as usize), applied, "L-{i}");
        }
        for i in 4..GOOD {
            assert_eq!(r.outcome(i as u64), Some(&Outcome::Success));
            assert!(self.applied(i), "L-{i}");
        }
        assert!(matches!(r.outcome(10), Some(Outcome::Error(_))));
        assert!(matches!(r.outcome(11), Some(Outcome::Invalid(_))));
        assert_eq!(self.jobs_created(), jobs);
    }
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_no_fault() {
    run(vec![]).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_429_retry_after() {
    let run = run(vec![on(PATCH, throttled()).times(2)]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().received(PATCH), 5);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_5xx_on_poll() {
    run(server_errors(JOB)).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_5xx_on_create() {
    // Not resent: its items are unknown (here: not applied, since the handler did not run).
    let run = run(vec![on(PATCH, Fault::Status(503)).nth(1)]).await;
    run.assert_first_chunk("unknown", false, 2);
    assert_eq!(run.report().unknown().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_reset_before_apply() {
    let run = run(vec![on(PATCH, Fault::ResetBeforeHandler).nth(1)]).await;
    run.assert_first_chunk("unknown", false, 2);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_reset_after_apply() {
    // Applied once by the server, reported unknown (to reconcile by reading back), not resent.
    let run = run(vec![on(PATCH, Fault::ResetAfterHandler).nth(1)]).await;
    run.assert_first_chunk("unknown", true, 3);
    assert_eq!(run.sim.counters().received(PATCH), 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_reset_on_poll() {
    run(vec![on(JOB, Fault::ResetAfterHandler).times(2)])
        .await
        .assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_slow_reply() {
    run(vec![on(JOB, slow()).nth(1)]).await.assert_complete();
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_malformed_json_on_create() {
    // The job was created but its id is unreadable: the chunk's items are unknown.
    let run = run(vec![on(PATCH, Fault::MalformedBody).nth(1)]).await;
    run.assert_first_chunk("unknown", true, 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_malformed_json_on_poll() {
    // A status read is safe to repeat: the unreadable reply is read again (issue 16 §1).
    let run = run(vec![on(JOB, Fault::MalformedBody).nth(1)]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().route_counts(JOB).faulted, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_truncated_entries_page() {
    let run = run(vec![on(ENTRIES, Fault::TruncatedBody).nth(1)]).await;
    run.assert_complete();
    assert_eq!(run.sim.counters().route_counts(ENTRIES).faulted, 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_token_refused_mid_run() {
    // A fixed token that stops working: the chunk is refused, the run stops reading input, and
    // the report says why.
    let run = run(vec![on(PATCH, Fault::Status(401)).nth(2)]).await;
    let r = run.report();
    let stopped = r.stopped_early().expect("the run stops");
    assert_eq!(stopped.kind(), ErrorKind::Auth);
    for i in 0..4 {
        assert_eq!(r.outcome(i), Some(&Outcome::Success));
    }
    for i in 4..8 {
        assert_eq!(r.outcome(i).unwrap().label(), "error", "item {i}");
        assert!(!run.applied(i as usize));
    }
    assert_eq!(run.jobs_created(), 1);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_request_rejected() {
    // A chunk refused with 422: nothing was done, so its items are errors, safe to resend.
    let run = run(vec![on(PATCH, Fault::Status(422)).nth(1)]).await;
    run.assert_first_chunk("error", false, 2);
    assert_eq!(run.report().failed().len(), 4 + 3);
}

#[tokio::test(start_paused = true)]
async fn matrix_chakra_vendor_throttle() {
    let run = run(vec![on(PATCH, throttled_for_good())]).await;
    let r = run.report();
    assert_eq!(r.succeeded(), 0);
    for i in 0..12 {
        assert_ne!(r.outcome(i).unwrap().label(), "unknown", "item {i}");
    }
    let refused = r
        .failures()
        .iter()
        .filter(|f| {
            f.outcome
                .message()
                .is_some_and(|m| m.contains("rate limited"))
        })
        .count();
    assert_eq!(refused, 12);
    assert_eq!(run.jobs_created(), 0);
}
