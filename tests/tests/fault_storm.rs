//! bulk-common against the simulator under a seeded storm of mixed faults: every request ends
//! in its correct result or a typed error, never a panic or a hang, and a non-idempotent
//! request is never applied twice. The vendor fault matrices join this crate with their issues.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bulk_common::{ErrorKind, HttpClient, HttpOptions, Method, RetryPolicy};
use vendor_sim::generic::GenericConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder, start_generic};

async fn storm(seed: u64) -> (Vec<Result<u64, ErrorKind>>, u64, usize) {
    let mut builder = SimBuilder::new("storm").seed(seed);
    for fault in [
        Fault::TooManyRequests {
            retry_after: Some("2".into()),
        },
        Fault::Status(503),
        Fault::Status(500),
        Fault::ResetBeforeHandler,
        Fault::ResetAfterHandler,
        Fault::Delay(Duration::from_secs(90)),
    ] {
        builder = builder.fault(FaultRule::new(fault).probability(0.06));
    }
    let (sim, generic) = start_generic(builder, GenericConfig::default())
        .await
        .unwrap();
    let client = HttpClient::builder("storm/0")
        .base_url(&sim.base_url())
        .options(
            HttpOptions::default()
                .request_timeout(Duration::from_secs(30))
                .retry(RetryPolicy::default().max_attempts(6).budget(None)),
        )
        .build()
        .unwrap();
    let mut outcomes = Vec::new();
    let mut ambiguous_posts = 0;
    for i in 0..150u64 {
        let outcome = if i % 3 == 0 {
            let r = client
                .request(Method::Post, "/items")
                .json(&serde_json::json!({ "n": i }))
                .send()
                .await;
            if matches!(&r, Err(e) if e.is_ambiguous()) {
                ambiguous_posts += 1;
            }
            r.map(|_| i)
        } else {
            client
                .request(Method::Get, format!("/items/{i}"))
                .send()
                .await
                .and_then(|r| r.json::<serde_json::Value>())
                .map(|v| v["id"].as_u64().unwrap())
        };
        outcomes.push(outcome.map_err(|e| e.kind()));
    }
    let created = sim.counters().get("items.created");
    assert_eq!(created as usize, generic.items().len());
    (outcomes, created, ambiguous_posts)
}

#[tokio::test(start_paused = true)]
async fn a_seeded_fault_storm_never_corrupts_and_never_duplicates() {
    let (outcomes, created, ambiguous) = storm(2026).await;
    let posts_ok = outcomes
        .iter()
        .enumerate()
        .filter(|(i, o)| i % 3 == 0 && o.is_ok())
        .count();
    // Every POST the client saw succeed was applied once; an ambiguous one at most once.
    assert!(created as usize >= posts_ok);
    assert!(created as usize <= posts_ok + ambiguous);
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(kind) => assert!(
                matches!(
                    kind,
                    ErrorKind::AmbiguousOutcome
                        | ErrorKind::Http
                        | ErrorKind::Timeout
                        | ErrorKind::Transport
                        | ErrorKind::RateLimited
                        | ErrorKind::Decode
                ),
                "request {i}: unexpected {kind:?}"
            ),
        }
    }
    let gets_ok = outcomes
        .iter()
        .enumerate()
        .filter(|(i, o)| i % 3 != 0 && o.is_ok())
        .count();
    assert!(
        gets_ok >= 95,
        "idempotent reads recover by retrying: {gets_ok}/100"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_storm() {
    assert_eq!(storm(7).await, storm(7).await);
}
