//! Client-wide rate control against the generic simulator's server-side limits, on Tokio's
//! paused clock.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulk_common::rate::{Adaptive, LocalLimiter, Quota, RateControl, RateEvent, RouteClass};
use bulk_common::{HttpClient, HttpOptions, Method, RetryPolicy};
use futures::future::join_all;
use tokio::time::Instant;
use vendor_sim::generic::GenericConfig;
use vendor_sim::{ServerLimits, SimBuilder};

async fn limited_sim(limits: ServerLimits) -> vendor_sim::SimHandle {
    let (sim, _) = vendor_sim::start_generic(
        SimBuilder::new("generic").limits(limits),
        GenericConfig::default(),
    )
    .await
    .unwrap();
    sim
}

fn client(base: &str, control: RateControl) -> HttpClient {
    HttpClient::builder("rate-test/0")
        .base_url(base)
        .options(
            HttpOptions::default()
                .retry(RetryPolicy::default().max_attempts(10))
                .rate_control(control),
        )
        .build()
        .unwrap()
}

/// `workers` tasks each sending `each` requests, one after another.
async fn load(client: &HttpClient, workers: usize, each: usize) -> usize {
    join_all((0..workers).map(|_| async {
        let mut ok = 0;
        for _ in 0..each {
            let sent = client
                .request(Method::Get, "/pages")
                .query("size", 1)
                .send()
                .await;
            ok += usize::from(sent.is_ok());
        }
        ok
    }))
    .await
    .into_iter()
    .sum()
}

#[tokio::test(start_paused = true)]
async fn a_fixed_limit_at_the_vendors_rate_is_never_refused() {
    let sim = limited_sim(ServerLimits::new().rate(10.0, 1)).await;
    let control = RateControl::builder()
        .class(
            RouteClass::new("pages").method(Method::Get).path("/pages"),
            LocalLimiter::new(Quota::per_second(10.0)),
        )
        .build();
    let client = client(&sim.base_url(), control.clone());
    let started = Instant::now();
    assert_eq!(load(&client, 4, 10).await, 40);
    assert_eq!(sim.counters().get("limits.refused"), 0);
    // 40 requests at 10/s: the first at once, then one each 100 ms.
    assert!(started.elapsed() >= Duration::from_millis(3900));
    let stats = control.stats();
    assert_eq!(stats.permits, 40);
    assert_eq!(stats.throttled, 0);
    assert!(stats.waits >= 36, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_limit_slows_the_whole_client_and_keeps_refusals_rare() {
    let sim = limited_sim(ServerLimits::new().rate(10.0, 2)).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let control = RateControl::builder()
        .adaptive(Adaptive::default())
        .on_event(move |e| seen.lock().unwrap().push(e.clone()))
        .build();
    let client = client(&sim.base_url(), control.clone());
    assert_eq!(control.concurrency(8), 8, "unlimited until throttled");
    assert_eq!(
        load(&client, 8, 40).await,
        320,
        "every request ends applied"
    );
    let refused = sim.counters().get("limits.refused");
    let events = events.lock().unwrap();
    let throttles: Vec<&RateEvent> = events
        .iter()
        .filter(|e| matches!(e, RateEvent::Throttled { .. }))
        .collect();
    assert!(!throttles.is_empty());
    // The first burst of eight meets the limit; after that the client keeps under it.
    assert!(
        refused <= 32,
        "{refused} of {} requests refused",
        320 + refused
    );
    // Every throttle carried the vendor's Retry-After; the whole client paused, if ever, for
    // exactly that (only refusals in a row pause it; one refusal pauses the refused request).
    assert!(throttles.iter().all(|e| matches!(
        e,
        RateEvent::Throttled {
            retry_after: Some(r),
            pause,
            ..
        } if *r == Duration::from_secs(1) && pause.is_none_or(|p| p == *r)
    )));
    let rate = control.current_rate().unwrap();
    assert!((1.0..=20.0).contains(&rate), "rate {rate}");
    assert!(
        control.concurrency(8) < 8,
        "fewer requests in flight once limited"
    );
    assert!(events.iter().any(|e| matches!(e, RateEvent::Waited { .. })));
}

#[tokio::test(start_paused = true)]
async fn without_rate_control_the_same_load_meets_many_refusals() {
    // The baseline of the test above: each request retries its own 429s.
    let sim = limited_sim(ServerLimits::new().rate(10.0, 2)).await;
    let client = HttpClient::builder("rate-test/0")
        .base_url(&sim.base_url())
        .options(
            HttpOptions::default().retry(RetryPolicy::default().max_attempts(100).budget(None)),
        )
        .build()
        .unwrap();
    // Each refused request waits out the same one-second Retry-After and comes back with the
    // others: a herd that the burst of two lets through two at a time, so some requests run
    // out of attempts.
    let ok = load(&client, 8, 40).await;
    let refused = sim.counters().get("limits.refused");
    eprintln!("without rate control: {ok} of 320 applied, {refused} refused");
    assert!(refused > 100, "{refused} refused");
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_answers_429_with_retry_after_and_counts() {
    let sim = limited_sim(ServerLimits::new().concurrency(1)).await;
    sim.faults().push(
        vendor_sim::FaultRule::new(vendor_sim::Fault::Delay(Duration::from_millis(500)))
            .path("/pages"),
    );
    let client = HttpClient::builder("rate-test/0")
        .base_url(&sim.base_url())
        .options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap();
    let (a, b) = tokio::join!(client.request(Method::Get, "/pages").send(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.request(Method::Get, "/pages").send().await
    });
    assert!(a.is_ok());
    let err = b.unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(sim.counters().get("limits.refused.concurrency"), 1);
}
