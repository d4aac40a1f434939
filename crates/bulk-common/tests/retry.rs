//! Retry behaviour against the generic simulator, on Tokio's paused clock.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulk_common::{ErrorKind, HttpClient, HttpOptions, Jitter, Method, RetryPolicy};
use common::{TestResult, client, fixed_policy, sim};
use tokio::time::Instant;
use vendor_sim::{Fault, FaultRule, SimBuilder};

fn throttle(retry_after: &str) -> FaultRule {
    FaultRule::new(Fault::TooManyRequests {
        retry_after: Some(retry_after.into()),
    })
    .path("/items/{id}")
    .times(1)
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_waited_out_before_the_next_attempt() -> TestResult {
    let (sim, _) = sim(vec![throttle("3")]).await;
    // The policy's own delay (10 s, no jitter) would be longer: the vendor's 3 s must win.
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_secs(10)));
    let started = Instant::now();
    let reply = client.request(Method::Get, "/items/1").send().await?;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        started.elapsed().as_secs(),
        3,
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(sim.counters().received("GET /items/{id}"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_honoured() -> TestResult {
    let when = bulk_common::clock::wall_now() + Duration::from_secs(5);
    let (sim, _) = sim(vec![throttle(&httpdate::fmt_http_date(when))]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_secs(60)));
    let started = Instant::now();
    client.request(Method::Get, "/items/1").send().await?;
    // An HTTP date has one-second resolution.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited <= Duration::from_secs(5),
        "waited {waited:?}"
    );
    Ok(())
}

fn recorded_delays(base: &str, policy: RetryPolicy) -> (HttpClient, Arc<Mutex<Vec<Duration>>>) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let sink = delays.clone();
    let client = HttpClient::builder("t/0")
        .base_url(base)
        .options(HttpOptions::default().retry(policy))
        .on_retry(move |e| sink.lock().unwrap().push(e.delay))
        .build()
        .unwrap();
    (client, delays)
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_growing_capped_delays() -> TestResult {
    let rule = FaultRule::new(Fault::Status(503))
        .path("/items/{id}")
        .times(4);
    let (sim, _) = sim(vec![rule]).await;
    let policy = fixed_policy(5, Duration::from_secs(1)).max_delay(Duration::from_secs(3));
    let (client, delays) = recorded_delays(&sim.base_url(), policy);
    let started = Instant::now();
    client.request(Method::Get, "/items/1").send().await?;
    let delays = delays.lock().unwrap().clone();
    let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
    assert_eq!(
        secs,
        vec![1, 2, 3, 3],
        "grow by the multiplier, capped at 3 s"
    );
    assert_eq!(started.elapsed().as_secs(), 9);
    assert_eq!(sim.counters().received("GET /items/{id}"), 5);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_the_growing_bound() -> TestResult {
    let rule = FaultRule::new(Fault::Status(503))
        .path("/items/{id}")
        .times(5);
    let (sim, _) = sim(vec![rule]).await;
    let policy = RetryPolicy::default()
        .max_attempts(6)
        .initial_delay(Duration::from_secs(1))
        .max_delay(Duration::from_secs(4))
        .jitter(Jitter::Full)
        .budget(None);
    let (client, delays) = recorded_delays(&sim.base_url(), policy);
    client.request(Method::Get, "/items/1").send().await?;
    let delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 5);
    for (i, d) in delays.iter().enumerate() {
        let bound = Duration::from_secs((1u64 << i).min(4));
        assert!(*d <= bound, "retry {} waited {d:?} > {bound:?}", i + 1);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() -> TestResult {
    for status in [400u16, 401, 403, 404, 422] {
        let rule = FaultRule::new(Fault::Status(status)).path("/items/{id}");
        let (sim, _) = sim(vec![rule]).await;
        let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(10)));
        let err = client
            .request(Method::Get, "/items/1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable(), "{status} must not be retryable");
        let expected = if matches!(status, 401 | 403) {
            ErrorKind::Auth
        } else {
            ErrorKind::Http
        };
        assert_eq!(err.kind(), expected, "{status}");
        assert_eq!(sim.counters().received("GET /items/{id}"), 1, "{status}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_attempt_cap_holds() -> TestResult {
    let rule = FaultRule::new(Fault::Status(502)).path("/items/{id}");
    let (sim, _) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_millis(100)));
    let err = client
        .request(Method::Get, "/items/1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.is_retryable());
    assert_eq!(sim.counters().received("GET /items/{id}"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_policy_is_returned_not_waited() -> TestResult {
    let (sim, _) = sim(vec![throttle("86400")]).await;
    let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(100)));
    let started = Instant::now();
    let err = client
        .request(Method::Get, "/items/1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(86400)));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(sim.counters().received("GET /items/{id}"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_post_reset_after_the_handler_ran_is_not_resent() -> TestResult {
    let rule = FaultRule::new(Fault::ResetAfterHandler)
        .method("POST")
        .path("/items")
        .times(1);
    let (sim, generic) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(100)));
    let err = client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({"name": "once"}))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome, "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(sim.counters().handled("POST /items"), 1);
    assert_eq!(sim.counters().received("POST /items"), 1);
    assert_eq!(generic.items().len(), 1, "applied exactly once");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_post_reset_before_the_handler_is_still_ambiguous_to_the_client() -> TestResult {
    let rule = FaultRule::new(Fault::ResetBeforeHandler)
        .method("POST")
        .path("/items")
        .times(1);
    let (sim, generic) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(100)));
    let err = client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap_err();
    // The client cannot tell a reset before the handler from one after it.
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(sim.counters().handled("POST /items"), 0);
    assert_eq!(generic.items().len(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_post_that_gets_a_gateway_error_is_ambiguous_not_retried() -> TestResult {
    let rule = FaultRule::new(Fault::Status(502))
        .method("POST")
        .path("/items");
    let (sim, _) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(100)));
    let err = client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(err.status(), Some(502));
    assert_eq!(sim.counters().received("POST /items"), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_throttled_post_is_retried_because_it_was_refused_before_any_work() -> TestResult {
    let rule = FaultRule::new(Fault::TooManyRequests {
        retry_after: Some("1".into()),
    })
    .method("POST")
    .path("/items")
    .times(1);
    let (sim, generic) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_millis(100)));
    client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({}))
        .send()
        .await?;
    assert_eq!(sim.counters().received("POST /items"), 2);
    assert_eq!(generic.items().len(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_get_reset_mid_flight_is_retried() -> TestResult {
    let rule = FaultRule::new(Fault::ResetAfterHandler)
        .path("/items/{id}")
        .times(2);
    let (sim, _) = sim(vec![rule]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_millis(100)));
    let reply = client.request(Method::Get, "/items/9").send().await?;
    assert_eq!(reply.json::<serde_json::Value>()?["id"], 9);
    assert_eq!(sim.counters().handled("GET /items/{id}"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_post_refused_at_connect_is_retried() -> TestResult {
    // A bound socket that does not listen refuses connections; it starts listening after the
    // client has seen the refusal, so the retry reaches the server.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let addr = socket.local_addr()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = HttpClient::builder("t/0")
        .base_url(&format!("http://{addr}"))
        .options(HttpOptions::default().retry(fixed_policy(3, Duration::from_secs(1))))
        .on_retry(move |e| {
            let _ = tx.send(e.error.kind());
        })
        .build()?;
    let request = tokio::spawn(async move {
        client
            .request(Method::Post, "/items")
            .json(&serde_json::json!({"name": "after refusal"}))
            .send()
            .await
    });
    let first_failure = rx.recv().await.expect("one retry is announced");
    assert_eq!(first_failure, ErrorKind::Transport);
    let listener = socket.listen(64)?;
    let mut generic = None;
    let sim = SimBuilder::new("late").start_on(listener, |ctx| {
        let g = vendor_sim::generic::Generic::new(ctx, Default::default());
        let router = g.router();
        generic = Some(g);
        router
    })?;
    let reply = request.await??;
    assert_eq!(reply.status(), 201);
    assert_eq!(sim.counters().handled("POST /items"), 1);
    assert_eq!(generic.unwrap().items().len(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_slow_reply_times_out_and_is_retried_when_idempotent() -> TestResult {
    let rule = FaultRule::new(Fault::Delay(Duration::from_secs(120)))
        .path("/items/{id}")
        .times(1);
    let (sim, _) = sim(vec![rule]).await;
    let client = HttpClient::builder("t/0")
        .base_url(&sim.base_url())
        .options(
            HttpOptions::default()
                .request_timeout(Duration::from_secs(5))
                .retry(fixed_policy(2, Duration::from_secs(1))),
        )
        .build()?;
    let started = Instant::now();
    client.request(Method::Get, "/items/1").send().await?;
    assert_eq!(started.elapsed().as_secs(), 6, "5 s timeout + 1 s backoff");
    let stats = client.stats();
    assert_eq!((stats.attempts, stats.retries), (2, 1));
    Ok(())
}

// `RetryPolicy::retry`: an operation of several requests retried as a whole.

/// When each attempt began: (attempt, time since the start).
type Attempts = Arc<Mutex<Vec<(u32, Duration)>>>;

/// An operation failing with `errors` in turn, then succeeding; records when each attempt began.
fn scripted(
    errors: Vec<bulk_common::Error>,
) -> (
    Attempts,
    impl FnMut(u32) -> std::future::Ready<bulk_common::Result<u32>>,
) {
    let started = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let mut errors = errors.into_iter();
    let op = move |attempt| {
        sink.lock().unwrap().push((attempt, started.elapsed()));
        std::future::ready(match errors.next() {
            Some(e) => Err(e),
            None => Ok(attempt),
        })
    };
    (log, op)
}

fn broken() -> bulk_common::Error {
    bulk_common::Error::new(ErrorKind::Transport, "the transfer broke off")
}

fn secs(log: &Mutex<Vec<(u32, Duration)>>) -> Vec<u64> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(_, at)| at.as_secs())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_operation_is_retried_with_the_policys_growing_capped_backoff() -> TestResult {
    let policy = fixed_policy(5, Duration::from_secs(1)).max_delay(Duration::from_secs(3));
    let (log, op) = scripted(vec![broken(), broken(), broken(), broken()]);
    let attempt = policy.retry(op, bulk_common::Error::is_retryable).await?;
    assert_eq!(attempt, 5);
    // Waits of 1, 2, 3 (capped) and 3 s.
    assert_eq!(secs(&log), vec![0, 1, 3, 6, 9]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts_and_return_the_last_error() -> TestResult {
    let policy = fixed_policy(3, Duration::from_secs(1));
    let errors = (1..=5)
        .map(|n| broken().context(format!("attempt {n}")))
        .collect();
    let (log, op) = scripted(errors);
    let err = policy
        .retry(op, bulk_common::Error::is_retryable)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attempt 3"), "{err}");
    assert_eq!(log.lock().unwrap().len(), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_error_the_caller_does_not_retry_ends_at_once() -> TestResult {
    let policy = fixed_policy(5, Duration::from_secs(1));
    let refused = bulk_common::Error::new(ErrorKind::Auth, "refused");
    let (log, op) = scripted(vec![refused]);
    let err = policy
        .retry(op, bulk_common::Error::is_retryable)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(secs(&log), vec![0]);

    // The caller's rule decides, not the error's own flag.
    let (log, op) = scripted(vec![broken(), broken()]);
    let err = policy.retry(op, |_| false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(log.lock().unwrap().len(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_whose_wait_would_cross_it() -> TestResult {
    let policy = fixed_policy(10, Duration::from_secs(10)).budget(Some(Duration::from_secs(25)));
    let (log, op) = scripted((0..10).map(|_| broken()).collect());
    policy
        .retry(op, bulk_common::Error::is_retryable)
        .await
        .unwrap_err();
    // At 0 and 10 s; the next wait (20 s) would end at 30 s, past the 25 s budget.
    assert_eq!(secs(&log), vec![0, 10]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_backoff_and_a_long_one_ends_the_retries() -> TestResult {
    let policy = fixed_policy(5, Duration::from_secs(10)).max_retry_after(Duration::from_secs(60));
    let throttled = |s| {
        bulk_common::Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Some(Duration::from_secs(s)))
    };
    let (log, op) = scripted(vec![throttled(3)]);
    policy.retry(op, |_| true).await?;
    assert_eq!(secs(&log), vec![0, 3]);

    let (log, op) = scripted(vec![throttled(3600)]);
    let err = policy.retry(op, |_| true).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(secs(&log), vec![0]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_waits_are_jittered_below_the_computed_delay() -> TestResult {
    let policy = RetryPolicy::default()
        .max_attempts(6)
        .initial_delay(Duration::from_secs(4))
        .max_delay(Duration::from_secs(4))
        .budget(None);
    let (log, op) = scripted((0..5).map(|_| broken()).collect());
    policy.retry(op, bulk_common::Error::is_retryable).await?;
    let times: Vec<Duration> = log.lock().unwrap().iter().map(|(_, at)| *at).collect();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] <= Duration::from_secs(4), "{times:?}");
    }
    assert!(
        times[5] < Duration::from_secs(20),
        "five full 4 s waits are all but impossible with full jitter: {times:?}"
    );
    Ok(())
}
