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
        Fault::MalformedBody,
        Fault::HtmlPage,
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
                .send_json::<serde_json::Value>()
                .await;
            if matches!(&r, Err(e) if e.is_ambiguous()) {
                ambiguous_posts += 1;
            }
            r.map(|_| i)
        } else {
            // Decoded inside the retry loop: an unreadable 200 is read again.
            client
                .request(Method::Get, format!("/items/{i}"))
                .send_json::<serde_json::Value>()
                .await
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
    eprintln!(
        "storm 2026: {gets_ok}/100 reads ok, {created} creates applied, {ambiguous} ambiguous"
    );
    assert!(
        gets_ok >= 95,
        "idempotent reads recover by retrying: {gets_ok}/100"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_storm() {
    assert_eq!(storm(7).await, storm(7).await);
}

/// Unreadable 200 replies only (cut-off JSON, an HTML page), on every route.
async fn unreadable_storm(seed: u64) -> (vendor_sim::SimHandle, vendor_sim::generic::Generic) {
    let builder = SimBuilder::new("unreadable")
        .seed(seed)
        .fault(FaultRule::new(Fault::MalformedBody).probability(0.25))
        .fault(FaultRule::new(Fault::HtmlPage).probability(0.25));
    start_generic(builder, GenericConfig::default())
        .await
        .unwrap()
}

fn patient_client(base: &str) -> HttpClient {
    HttpClient::builder("storm/0")
        .base_url(base)
        .options(HttpOptions::default().retry(RetryPolicy::default().max_attempts(12).budget(None)))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn unreadable_replies_to_reads_are_read_again_until_they_decode() {
    let (sim, _) = unreadable_storm(2026).await;
    let client = patient_client(&sim.base_url());
    for i in 0..100u64 {
        let item: serde_json::Value = client
            .request(Method::Get, format!("/items/{i}"))
            .send_json()
            .await
            .unwrap_or_else(|e| panic!("read {i}: {e}"));
        assert_eq!(item["id"], i);
    }
    let route = sim.counters().route_counts("GET /items/{id}");
    eprintln!(
        "100 reads: {} unreadable replies read again, all 100 items right",
        route.faulted
    );
    // About half the replies were unreadable, and every read still ended with its item.
    assert!(route.faulted >= 60, "{} unreadable replies", route.faulted);
    assert_eq!(route.received, 100 + route.faulted);
    assert_eq!(client.stats().retries, route.faulted);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_reply_to_a_create_is_ambiguous_and_never_resent() {
    let (sim, generic) = unreadable_storm(7).await;
    let client = patient_client(&sim.base_url());
    let (mut ok, mut ambiguous) = (0u64, 0u64);
    for i in 0..60u64 {
        match client
            .request(Method::Post, "/items")
            .json(&serde_json::json!({ "n": i }))
            .send_json::<serde_json::Value>()
            .await
        {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::AmbiguousOutcome, "create {i}: {e}");
                ambiguous += 1;
            }
        }
    }
    let route = sim.counters().route_counts("POST /items");
    assert_eq!(route.received, 60, "no create was sent twice");
    assert_eq!(ambiguous, route.faulted);
    assert!(ambiguous >= 15, "{ambiguous} ambiguous creates");
    // A cut-off reply came after the create was applied; an HTML page from a proxy before.
    let applied = generic.items().len() as u64;
    eprintln!("60 creates: {ok} ok, {ambiguous} ambiguous, {applied} applied, none sent twice");
    assert!(applied >= ok && applied <= ok + ambiguous);
    assert_eq!(applied, sim.counters().get("items.created"));
    assert_eq!(applied, route.handled);
}
