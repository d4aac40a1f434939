//! The harness itself: counters, each fault kind, seeded determinism, shutdown.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use vendor_sim::generic::GenericConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder, SimHandle, start_generic};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(builder: SimBuilder) -> SimHandle {
    start_generic(builder, GenericConfig::default())
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn counters_track_routes_by_template_and_named_events() -> TestResult {
    let sim = start(SimBuilder::new("t")).await;
    let http = reqwest::Client::new();
    for id in [1, 2, 3] {
        http.get(format!("{}/items/{id}", sim.base_url()))
            .send()
            .await?;
    }
    http.post(format!("{}/items", sim.base_url()))
        .body("{}")
        .send()
        .await?;
    let c = sim.counters();
    assert_eq!(c.received("GET /items/{id}"), 3);
    assert_eq!(c.handled("GET /items/{id}"), 3);
    assert_eq!(c.handled("POST /items"), 1);
    assert_eq!(c.get("items.created"), 1);
    assert_eq!(c.get("never.touched"), 0);
    c.reset();
    assert_eq!(c.received("GET /items/{id}"), 0);
    Ok(())
}

#[tokio::test]
async fn status_faults_carry_retry_after_and_skip_the_handler() -> TestResult {
    let sim = start(
        SimBuilder::new("t")
            .fault(
                FaultRule::new(Fault::TooManyRequests {
                    retry_after: Some("7".into()),
                })
                .method("POST")
                .times(1),
            )
            .fault(FaultRule::new(Fault::Status(503)).path("/items*").nth(2)),
    )
    .await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/items", sim.base_url()))
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = http
        .get(format!("{}/items/5", sim.base_url()))
        .send()
        .await?;
    assert_eq!(r.status(), 503, "second request matching /items*");
    let r = http
        .get(format!("{}/items/5", sim.base_url()))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let counts = sim.counters().route_counts("POST /items");
    assert_eq!((counts.received, counts.handled, counts.faulted), (1, 0, 1));
    assert_eq!(sim.faults().injected(), 2);
    Ok(())
}

#[tokio::test]
async fn resets_happen_before_or_after_the_handler() -> TestResult {
    let sim = start(
        SimBuilder::new("t")
            .fault(FaultRule::new(Fault::ResetBeforeHandler).nth(1))
            .fault(FaultRule::new(Fault::ResetAfterHandler).nth(2)),
    )
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/items", sim.base_url());
    assert!(http.post(&url).body("{}").send().await.is_err());
    assert_eq!(sim.counters().get("items.created"), 0);
    assert!(http.post(&url).body("{}").send().await.is_err());
    assert_eq!(
        sim.counters().get("items.created"),
        1,
        "applied, then reset"
    );
    assert!(
        http.post(&url)
            .body("{}")
            .send()
            .await?
            .status()
            .is_success()
    );
    Ok(())
}

#[tokio::test]
async fn malformed_and_truncated_bodies() -> TestResult {
    let sim = start(
        SimBuilder::new("t")
            .fault(FaultRule::new(Fault::MalformedBody).path("/items/{id}"))
            .fault(FaultRule::new(Fault::TruncatedBody).path("/download/{size}")),
    )
    .await;
    let http = reqwest::Client::new();
    let body = http
        .get(format!("{}/items/1", sim.base_url()))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "{body}"
    );
    let cut = http
        .get(format!("{}/download/100000", sim.base_url()))
        .send()
        .await?
        .bytes()
        .await;
    assert!(cut.is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn delays_follow_tokio_time() -> TestResult {
    let sim = start(
        SimBuilder::new("t").fault(FaultRule::new(Fault::Delay(Duration::from_secs(42))).times(1)),
    )
    .await;
    let started = tokio::time::Instant::now();
    reqwest::Client::new()
        .get(format!("{}/items/1", sim.base_url()))
        .send()
        .await?;
    assert_eq!(started.elapsed().as_secs(), 42);
    Ok(())
}

async fn pattern(seed: u64) -> Vec<u16> {
    let sim = start(
        SimBuilder::new("t")
            .seed(seed)
            .fault(FaultRule::new(Fault::Status(500)).probability(0.3)),
    )
    .await;
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..40 {
        let r = http
            .get(format!("{}/items/1", sim.base_url()))
            .send()
            .await
            .unwrap();
        out.push(r.status().as_u16());
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let a = pattern(11).await;
    assert_eq!(a, pattern(11).await);
    assert_ne!(a, pattern(12).await);
    let faulted = a.iter().filter(|s| **s == 500).count();
    assert!((4..=20).contains(&faulted), "{faulted} of 40 at p = 0.3");
}

#[tokio::test]
async fn shutdown_closes_the_port() -> TestResult {
    let sim = start(SimBuilder::new("t")).await;
    let addr = sim.addr();
    reqwest::get(format!("http://{addr}/items/1")).await?;
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}
