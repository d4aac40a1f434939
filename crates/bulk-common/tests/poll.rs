//! The poll driver on Tokio's paused clock: completion, deadline, cancellation, interval growth,
//! progress events and progress-aware timing, and a job handle that survives serialization.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulk_common::poll::{Job, JobFailure, JobState, PollPolicy, Progress, Wait};
use bulk_common::{CancellationToken, ErrorKind, HttpClient, Method, Result};
use common::{TestResult, client, fixed_policy, sim};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use vendor_sim::{Fault, FaultRule};

/// A job that finishes `duration` after `started`, working through `total` items evenly.
struct TimedJob {
    started: Instant,
    duration: Duration,
    total: u64,
    fail: bool,
    looks: Mutex<Vec<Duration>>,
}

impl TimedJob {
    fn new(duration: Duration, total: u64) -> Self {
        TimedJob {
            started: Instant::now(),
            duration,
            total,
            fail: false,
            looks: Mutex::new(Vec::new()),
        }
    }

    fn looks(&self) -> Vec<Duration> {
        self.looks.lock().unwrap().clone()
    }
}

impl Job for TimedJob {
    type Output = u64;

    async fn poll(&self) -> Result<JobState<u64>> {
        let elapsed = self.started.elapsed();
        self.looks.lock().unwrap().push(elapsed);
        if elapsed >= self.duration {
            return Ok(if self.fail {
                JobState::Failed(JobFailure::new("the vendor gave up").code("error"))
            } else {
                JobState::Done(self.total)
            });
        }
        let frac = elapsed.as_secs_f64() / self.duration.as_secs_f64();
        let remaining = self.total - (self.total as f64 * frac) as u64;
        Ok(JobState::Pending(
            Progress::new().total(self.total).remaining(remaining),
        ))
    }
}

/// A job that never reports progress and never ends.
struct Forever(Mutex<Vec<Duration>>, Instant);

impl Job for Forever {
    type Output = ();
    async fn poll(&self) -> Result<JobState<()>> {
        self.0.lock().unwrap().push(self.1.elapsed());
        Ok(JobState::Pending(Progress::new().status("queued")))
    }
}

fn secs(d: &[Duration]) -> Vec<f64> {
    d.iter()
        .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_wait_ends_when_the_job_is_done() -> TestResult {
    let job = TimedJob::new(Duration::from_secs(5), 10);
    let out = Wait::new(&job).run().await?;
    assert_eq!(out, 10);
    let last = *job.looks().last().unwrap();
    assert!(
        last >= Duration::from_secs(5) && last <= Duration::from_secs(6),
        "{last:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_is_a_typed_error_carrying_the_vendor_reason() -> TestResult {
    let mut job = TimedJob::new(Duration::from_secs(2), 1);
    job.fail = true;
    let err = Wait::new(&job).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    assert_eq!(err.vendor_code(), Some("error"));
    assert_eq!(err.vendor_message(), Some("the vendor gave up"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_the_wait_with_its_own_error() -> TestResult {
    let job = Forever(Mutex::default(), Instant::now());
    let started = Instant::now();
    let policy = PollPolicy::default().deadline(Some(Duration::from_secs(60)));
    let err = Wait::new(&job).policy(policy).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    assert_eq!(
        *job.0.lock().unwrap().last().unwrap(),
        Duration::from_secs(60),
        "one last look at the deadline"
    );
    assert_eq!(err.details().unwrap()["status"], "queued");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_the_wait_within_one_interval() -> TestResult {
    let job = Forever(Mutex::default(), Instant::now());
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let policy = PollPolicy::default().max_delay(Duration::from_secs(30));
    let err = Wait::new(&job)
        .policy(policy)
        .cancel_on(cancel)
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "not at the next look"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn intervals_grow_to_the_cap() -> TestResult {
    let job = Forever(Mutex::default(), Instant::now());
    let policy = PollPolicy::default()
        .first_delay(Duration::from_secs(1))
        .multiplier(2.0)
        .max_delay(Duration::from_secs(8))
        .deadline(Some(Duration::from_secs(40)));
    let _ = Wait::new(&job).policy(policy).run().await;
    let looks = job.0.lock().unwrap().clone();
    let gaps: Vec<Duration> = looks.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(secs(&looks[..1]), vec![1.0]);
    assert_eq!(secs(&gaps[..6]), vec![2.0, 4.0, 8.0, 8.0, 8.0, 8.0]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn progress_events_arrive_in_order() -> TestResult {
    let job = TimedJob::new(Duration::from_secs(30), 300);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    Wait::new(&job)
        .on_progress(move |e| sink.lock().unwrap().push((e.polls, e.progress.remaining)))
        .run()
        .await?;
    let events = events.lock().unwrap().clone();
    assert!(events.len() >= 3, "{events:?}");
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0 + 1,
            "poll numbers in order: {events:?}"
        );
        assert!(pair[1].1 < pair[0].1, "remaining falls: {events:?}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_progress_it_looks_again_no_later_than_the_estimated_finish() -> TestResult {
    // Without progress the looks would be at 1, 3, 7, 15 and 31 s, noticing the finish 11 s late.
    let job = TimedJob::new(Duration::from_secs(20), 1000);
    let policy = PollPolicy::default()
        .first_delay(Duration::from_secs(1))
        .multiplier(2.0)
        .max_delay(Duration::from_secs(60));
    Wait::new(&job).policy(policy).run().await?;
    let last = *job.looks().last().unwrap();
    assert!(
        last <= Duration::from_millis(20_500),
        "finished at 20 s, noticed at {last:?}; looks {:?}",
        secs(&job.looks())
    );
    assert!(job.looks().len() <= 6, "{:?}", secs(&job.looks()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_long_job_with_progress_is_looked_at_a_few_times_and_noticed_at_once() -> TestResult {
    // Growing delays alone would look about 27 times (every 30 s after the first minute).
    let job = TimedJob::new(Duration::from_secs(600), 10_000);
    Wait::new(&job).run().await?;
    let looks = job.looks();
    let last = *looks.last().unwrap();
    assert!(
        last >= Duration::from_secs(600) && last <= Duration::from_secs(601),
        "{:?}",
        secs(&looks)
    );
    assert!(looks.len() <= 8, "{:?}", secs(&looks));
    // A lookahead of 0 restores growing delays that predictions can only shorten.
    let job = TimedJob::new(Duration::from_secs(600), 10_000);
    Wait::new(&job)
        .policy(PollPolicy::default().eta_lookahead(0.0))
        .run()
        .await?;
    assert!(job.looks().len() >= 20, "{:?}", secs(&job.looks()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn time_spent_queued_does_not_slow_the_prediction() -> TestResult {
    /// Queued (nothing done) for 60 s, then 1,000 items in 60 s.
    struct Queued(Instant, Mutex<Vec<Duration>>);
    impl Job for Queued {
        type Output = ();
        async fn poll(&self) -> Result<JobState<()>> {
            let t = self.0.elapsed();
            self.1.lock().unwrap().push(t);
            let working = t.saturating_sub(Duration::from_secs(60)).as_secs_f64();
            if working >= 60.0 {
                return Ok(JobState::Done(()));
            }
            let remaining = 1000 - (working / 60.0 * 1000.0) as u64;
            Ok(JobState::Pending(
                Progress::new().total(1000).remaining(remaining),
            ))
        }
    }
    let job = Queued(Instant::now(), Mutex::default());
    Wait::new(&job).run().await?;
    let last = *job.1.lock().unwrap().last().unwrap();
    // Counting the queued minute as work would predict 227 s more at 75 s, and look at 225 s.
    assert!(
        last <= Duration::from_secs(130),
        "finished at 120 s, noticed at {last:?}; looks {:?}",
        secs(&job.1.lock().unwrap())
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn absurd_counts_from_the_vendor_do_not_break_the_wait() -> TestResult {
    struct Absurd(Mutex<u64>);
    impl Job for Absurd {
        type Output = ();
        async fn poll(&self) -> Result<JobState<()>> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            Ok(match *n {
                1 => JobState::Pending(Progress::new().total(u64::MAX).remaining(u64::MAX - 1)),
                2 => JobState::Pending(Progress::new().total(u64::MAX).remaining(u64::MAX - 2)),
                _ => JobState::Done(()),
            })
        }
    }
    let policy = PollPolicy::default().eta_lookahead(f64::INFINITY);
    Wait::new(&Absurd(Mutex::new(0)))
        .policy(policy)
        .run()
        .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_vendor_hint_sets_the_next_look() -> TestResult {
    struct Hinted(Mutex<u32>);
    impl Job for Hinted {
        type Output = ();
        async fn poll(&self) -> Result<JobState<()>> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            Ok(if *n == 3 {
                JobState::Done(())
            } else {
                JobState::Pending(Progress::new().next_poll_hint(Duration::from_secs(7)))
            })
        }
    }
    let started = Instant::now();
    Wait::new(&Hinted(Mutex::new(0))).run().await?;
    assert_eq!(started.elapsed(), Duration::from_secs(1 + 7 + 7));
    Ok(())
}

/// A job handle as a vendor crate would write it: plain data that serializes, plus a client.
#[derive(Serialize, Deserialize)]
struct SimJobHandle {
    id: String,
    #[serde(skip)]
    client: Option<HttpClient>,
}

#[derive(Deserialize)]
struct SimJobStatus {
    status: String,
    total: u64,
    remaining: u64,
    error: Option<String>,
}

impl Job for SimJobHandle {
    type Output = u64;

    async fn poll(&self) -> Result<JobState<u64>> {
        let client = self.client.as_ref().expect("attached");
        let s: SimJobStatus = client
            .request(Method::Get, format!("/jobs/{}", self.id))
            .send_json()
            .await?;
        Ok(match s.status.as_str() {
            "done" => JobState::Done(s.total),
            "failed" => JobState::Failed(JobFailure::new(s.error.unwrap_or_default())),
            other => JobState::Pending(
                Progress::new()
                    .total(s.total)
                    .remaining(s.remaining)
                    .status(other),
            ),
        })
    }

    fn describe(&self) -> String {
        self.id.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn a_serialized_job_handle_resumes_waiting_in_a_new_client() -> TestResult {
    let (sim, _) = sim(vec![
        // Two transient failures while polling are tolerated.
        FaultRule::new(Fault::Status(503))
            .path("/jobs/{id}")
            .times(2),
    ])
    .await;
    let first = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(10)));
    let created: serde_json::Value = first
        .request(Method::Post, "/jobs")
        .json(&serde_json::json!({"total": 50, "duration_ms": 12_000}))
        .send()
        .await?
        .json()?;
    let handle = SimJobHandle {
        id: created["id"].as_str().unwrap().to_owned(),
        client: Some(first),
    };
    let saved = serde_json::to_string(&handle)?;
    drop(handle);

    // "After a restart": a new client, the handle read back.
    let mut resumed: SimJobHandle = serde_json::from_str(&saved)?;
    resumed.client = Some(client(
        &sim.base_url(),
        fixed_policy(1, Duration::from_millis(10)),
    ));
    let total = Wait::new(&resumed).poll_immediately(true).run().await?;
    assert_eq!(total, 50);
    assert_eq!(sim.counters().get("jobs.created"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn persistent_polling_errors_end_the_wait() -> TestResult {
    let (sim, _) = sim(vec![FaultRule::new(Fault::Status(500)).path("/jobs/{id}")]).await;
    let c = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(10)));
    let job = SimJobHandle {
        id: "job-1".into(),
        client: Some(c),
    };
    let policy = PollPolicy::default().max_consecutive_errors(2);
    let err = Wait::new(&job).policy(policy).run().await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(sim.counters().received("GET /jobs/{id}"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn unreadable_status_replies_are_transient_polling_errors() -> TestResult {
    // Every status reply is broken twice in a row: the client gives up on each after one
    // attempt, and the driver looks again instead of failing the wait.
    let (sim, _) = sim(vec![
        FaultRule::new(Fault::MalformedBody)
            .path("/jobs/{id}")
            .times(2),
    ])
    .await;
    let c = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(10)));
    let created: serde_json::Value = c
        .request(Method::Post, "/jobs")
        .json(&serde_json::json!({"total": 5, "duration_ms": 1_000}))
        .send_json()
        .await?;
    let job = SimJobHandle {
        id: created["id"].as_str().unwrap().to_owned(),
        client: Some(c),
    };
    let total = Wait::new(&job).run().await?;
    assert_eq!(total, 5);
    assert_eq!(sim.counters().received("GET /jobs/{id}"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_status_reply_that_stays_unreadable_ends_the_wait_with_a_decode_error() -> TestResult {
    let (sim, _) = sim(vec![
        FaultRule::new(Fault::MalformedBody).path("/jobs/{id}"),
    ])
    .await;
    let c = client(&sim.base_url(), fixed_policy(2, Duration::from_millis(10)));
    let created: serde_json::Value = c
        .request(Method::Post, "/jobs")
        .json(&serde_json::json!({"total": 5, "duration_ms": 1_000}))
        .send_json()
        .await?;
    let job = SimJobHandle {
        id: created["id"].as_str().unwrap().to_owned(),
        client: Some(c),
    };
    let policy = PollPolicy::default().max_consecutive_errors(2);
    let err = Wait::new(&job).policy(policy).run().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    // Three looks of two attempts each.
    assert_eq!(sim.counters().received("GET /jobs/{id}"), 6);
    Ok(())
}

/// `JobWait` (what every vendor's `Client::wait` returns): awaited directly, it uses the vendor's
/// default policy; options set later override only what they set.
#[tokio::test(start_paused = true)]
async fn job_wait_is_awaitable_and_merges_options() -> TestResult {
    use bulk_common::poll::{JobWait, WaitOptions};

    let start = Instant::now();
    let vendor_default = PollPolicy::default()
        .first_delay(Duration::from_secs(5))
        .multiplier(1.0)
        .max_delay(Duration::from_secs(5));
    let out = JobWait::new(
        TimedJob::new(Duration::from_secs(12), 10),
        vendor_default.clone(),
    )
    .await?;
    assert_eq!(out, 10);
    // Looks at 5 and 10 s find it pending; progress then predicts the finish, which is
    // looked at before the 5 s step would have come.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(12) && took < Duration::from_secs(15),
        "{took:?}"
    );

    let events = Arc::new(Mutex::new(0u32));
    let seen = events.clone();
    let options = WaitOptions::new().on_progress(move |_| *seen.lock().unwrap() += 1);
    let wait = JobWait::new(TimedJob::new(Duration::from_secs(3600), 10), vendor_default)
        .policy(
            PollPolicy::default()
                .first_delay(Duration::from_secs(1))
                .multiplier(1.0)
                .max_delay(Duration::from_secs(1))
                .eta_lookahead(0.0)
                .deadline(Some(Duration::from_secs(3))),
        )
        .options(options);
    // The later options() set no policy, so the earlier policy (3 s deadline) stays.
    assert_eq!(wait.effective_policy().delay(0), Duration::from_secs(1));
    let err = wait.await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert!(*events.lock().unwrap() >= 2);

    let stop = CancellationToken::new();
    stop.cancel();
    let err = JobWait::new(
        TimedJob::new(Duration::from_secs(60), 1),
        PollPolicy::default(),
    )
    .options(WaitOptions::new().cancel_on(stop))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    Ok(())
}
