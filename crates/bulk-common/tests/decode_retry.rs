//! A successful reply that cannot be read is retried like a broken connection when the request
//! is safe to repeat, and is an ambiguous outcome when it is not (Tokio's paused clock).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bulk_common::{ErrorKind, HttpClient, HttpOptions, Idempotency, Method, Response, RetryPolicy};
use common::{TestResult, client, fixed_policy, sim};
use httpmock::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use vendor_sim::{Fault, FaultRule};

#[derive(Debug, Deserialize)]
struct Item {
    id: u64,
}

fn malformed(path: &str, times: Option<u32>) -> FaultRule {
    let rule = FaultRule::new(Fault::MalformedBody).path(path);
    match times {
        Some(n) => rule.times(n),
        None => rule,
    }
}

#[tokio::test(start_paused = true)]
async fn malformed_replies_to_a_get_are_retried_until_one_decodes() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", Some(2))]).await;
    let client = client(&sim.base_url(), fixed_policy(4, Duration::from_secs(1)));
    let started = Instant::now();
    let item: Item = client.request(Method::Get, "/items/7").send_json().await?;
    assert_eq!(item.id, 7);
    assert_eq!(sim.counters().received("GET /items/{id}"), 3);
    // Backoff applies as for any retry: 1 s, then 2 s.
    assert_eq!(started.elapsed().as_secs(), 3);
    assert_eq!(client.stats().retries, 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_stays_unreadable_is_a_decode_error_once_the_budget_is_spent() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", None)]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_millis(100)));
    let err = client
        .request(Method::Get, "/items/7")
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(sim.counters().received("GET /items/{id}"), 3);
    let text = err.to_string();
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert!(!text.contains("::"), "no Rust type paths: {text}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_time_budget_also_bounds_decode_retries() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", None)]).await;
    let policy = fixed_policy(100, Duration::from_secs(1))
        .max_delay(Duration::from_secs(1))
        .budget(Some(Duration::from_secs(5)));
    let client = client(&sim.base_url(), policy);
    let err = client
        .request(Method::Get, "/items/7")
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    let received = sim.counters().received("GET /items/{id}");
    assert!((5..=6).contains(&received), "{received} attempts");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_reply_to_a_post_is_ambiguous_and_not_resent() -> TestResult {
    let (sim, generic) = sim(vec![malformed("/items", Some(1))]).await;
    let client = client(&sim.base_url(), fixed_policy(5, Duration::from_millis(100)));
    let err = client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({"n": 1}))
        .send_json::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert!(!err.is_retryable());
    assert_eq!(sim.counters().received("POST /items"), 1);
    assert_eq!(generic.items().len(), 1, "the server applied it once");
    assert!(err.to_string().contains("not re-sent"), "{err}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_post_declared_idempotent_is_retried_after_an_unreadable_reply() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", Some(1))]).await;
    let client = client(&sim.base_url(), fixed_policy(3, Duration::from_millis(100)));
    // GET is idempotent by default; declaring it otherwise makes the reply ambiguous.
    let err = client
        .request(Method::Get, "/items/3")
        .idempotency(Idempotency::NonIdempotent)
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert!(err.is_ambiguous());
    let item: Item = client.request(Method::Get, "/items/3").send_json().await?;
    assert_eq!(item.id, 3);
    Ok(())
}

#[tokio::test]
async fn an_html_page_with_status_200_is_retried_then_reported_without_type_names() -> TestResult {
    let server = MockServer::start_async().await;
    let page = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/job");
            then.status(200)
                .header("content-type", "text/html")
                .body("<html><body>Service temporarily unavailable</body></html>");
        })
        .await;
    let client =
        HttpClient::builder("t/0")
            .base_url(&server.base_url())
            .options(HttpOptions::default().retry(
                fixed_policy(3, Duration::from_millis(1)).max_delay(Duration::from_millis(1)),
            ))
            .build()?;
    let err = client
        .request(Method::Get, "/v1/job")
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert_eq!(page.calls_async().await, 3);
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.status(), Some(200));
    let text = err.to_string();
    assert!(!text.contains("::") && !text.contains("Item"), "{text}");
    assert!(err.body_excerpt().unwrap().contains("<html>"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_custom_decoder_runs_inside_the_retry_loop() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", Some(1))]).await;
    let client = client(&sim.base_url(), fixed_policy(2, Duration::from_millis(100)));
    let id = client
        .request(Method::Get, "/items/9")
        .send_decoded(|r: &Response| Ok(r.json::<Item>()?.id))
        .await?;
    assert_eq!(id, 9);
    // A decoder's other errors are final.
    let err = client
        .request(Method::Get, "/items/9")
        .send_decoded(|_: &Response| -> bulk_common::Result<()> {
            Err(bulk_common::Error::invalid_input("refused by the caller"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(sim.counters().received("GET /items/{id}"), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn plain_send_still_hands_back_the_raw_reply() -> TestResult {
    let (sim, _) = sim(vec![malformed("/items/{id}", Some(1))]).await;
    let client = client(&sim.base_url(), RetryPolicy::none());
    let reply = client.request(Method::Get, "/items/1").send().await?;
    assert!(reply.json::<Value>().is_err());
    Ok(())
}
