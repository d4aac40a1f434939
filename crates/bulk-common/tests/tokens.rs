//! OAuth refresh: single flight, early refresh, failure recovery, replay after 401, shared stores.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bulk_common::token::{
    FileStore, OAuthRefreshSource, RefreshRateLimit, TokenSource, TokenStore,
};
use bulk_common::{ErrorKind, ExposeSecret, HttpOptions, Method, RetryPolicy};
use common::{TestResult, oauth_client, oauth_config, sim, sim_with};
use futures::future::join_all;
use vendor_sim::canned::{Canned, Reply};
use vendor_sim::generic::GenericConfig;
use vendor_sim::{Fault, FaultRule};

const REFRESHES: &str = "oauth.refreshes";

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_callers_with_an_expired_token_cause_one_refresh() -> TestResult {
    let (sim, _) = sim(vec![]).await;
    let source = OAuthRefreshSource::new(oauth_config(&sim))?;
    let client = oauth_client(&sim, source);
    client.request(Method::Get, "/protected").send().await?;
    assert_eq!(sim.counters().get(REFRESHES), 1);

    tokio::time::advance(Duration::from_secs(3601)).await;
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.request(Method::Get, "/protected").send().await }
    });
    for reply in join_all(calls).await {
        assert_eq!(reply?.status(), 200);
    }
    assert_eq!(
        sim.counters().get(REFRESHES),
        2,
        "one refresh for 100 callers"
    );
    assert_eq!(sim.counters().received("POST /oauth/token"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_token_within_the_skew_is_refreshed_before_use() -> TestResult {
    let (sim, _) = sim(vec![]).await;
    let source = OAuthRefreshSource::new(oauth_config(&sim).skew(Duration::from_secs(300)))?;
    let first = source.token().await?;

    tokio::time::advance(Duration::from_secs(3000)).await;
    let still = source.token().await?;
    assert!(still.same_secret(&first), "10 minutes left: keep the token");

    tokio::time::advance(Duration::from_secs(301)).await;
    let renewed = source.token().await?;
    assert!(
        !renewed.same_secret(&first),
        "inside the 5-minute skew: refresh"
    );
    assert_eq!(sim.counters().get(REFRESHES), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_is_shared_by_waiting_callers_and_does_not_poison_later_ones() -> TestResult
{
    let rule = FaultRule::new(Fault::Status(500))
        .method("POST")
        .path("/oauth/token")
        .times(1);
    let (sim, _) = sim(vec![rule]).await;
    let config = oauth_config(&sim).http_options(HttpOptions::default().retry(RetryPolicy::none()));
    let source = OAuthRefreshSource::new(config)?;

    let attempts = join_all((0..10).map(|_| source.token())).await;
    for attempt in &attempts {
        let err = attempt.as_ref().unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert!(err.is_retryable());
    }
    assert_eq!(
        sim.counters().received("POST /oauth/token"),
        1,
        "single flight"
    );

    source.token().await?;
    assert_eq!(sim.counters().received("POST /oauth/token"), 2);
    assert_eq!(sim.counters().get(REFRESHES), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_transient_refresh_failure_is_retried_by_the_policy() -> TestResult {
    let rule = FaultRule::new(Fault::Status(503))
        .path("/oauth/token")
        .times(1);
    let (sim, _) = sim(vec![rule]).await;
    let source = OAuthRefreshSource::new(oauth_config(&sim))?;
    source.token().await?;
    assert_eq!(sim.counters().received("POST /oauth/token"), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_401_invalidates_the_token_and_replays_once() -> TestResult {
    let (sim, generic) = sim(vec![]).await;
    let client = oauth_client(&sim, OAuthRefreshSource::new(oauth_config(&sim))?);
    client.request(Method::Get, "/protected").send().await?;
    generic.revoke_tokens();

    let reply = client.request(Method::Get, "/protected").send().await?;
    assert_eq!(reply.status(), 200);
    assert_eq!(sim.counters().received("GET /protected"), 3);
    assert_eq!(sim.counters().get(REFRESHES), 2);
    assert_eq!(client.stats().auth_replays, 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_second_401_is_an_auth_error() -> TestResult {
    let rule = FaultRule::new(Fault::Status(401)).path("/protected");
    let (sim, _) = sim(vec![rule]).await;
    let client = oauth_client(&sim, OAuthRefreshSource::new(oauth_config(&sim))?);
    let err = client
        .request(Method::Get, "/protected")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        sim.counters().received("GET /protected"),
        2,
        "original + one replay"
    );
    assert_eq!(sim.counters().get(REFRESHES), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn two_sources_sharing_a_file_store_refresh_once_between_them() -> TestResult {
    let (sim, _) = sim(vec![]).await;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens"))?);
    let a = OAuthRefreshSource::new(oauth_config(&sim).store(store.clone()))?;
    let b = OAuthRefreshSource::new(
        oauth_config(&sim).store(Arc::new(FileStore::new(dir.path().join("tokens"))?)),
    )?;
    let (ta, tb) = tokio::join!(a.token(), b.token());
    let (ta, tb) = (ta?, tb?);
    assert!(ta.same_secret(&tb));
    assert_eq!(sim.counters().get(REFRESHES), 1);

    // The record on disk carries the token and the refresh history, not the refresh token.
    let files: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with(".token.json")),
        "{files:?}"
    );
    let stored = store.load(a.store_key()).await?.expect("stored");
    assert_eq!(stored.refreshes.len(), 1);
    let record = std::fs::read_to_string(
        dir.path()
            .join("tokens")
            .join(format!("{}.token.json", a.store_key())),
    )?;
    assert!(!record.contains(&GenericConfig::default().refresh_token));
    assert!(record.contains(ta.secret().expose_secret()));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_refresh_rate_limit_is_enforced_before_sending() -> TestResult {
    let (sim, _) = sim(vec![]).await;
    let limit = RefreshRateLimit {
        max: 2,
        per: Duration::from_secs(600),
    };
    let source = OAuthRefreshSource::new(oauth_config(&sim).rate_limit(Some(limit)))?;
    let t1 = source.token().await?;
    source.invalidate(&t1).await;
    let t2 = source.token().await?;
    source.invalidate(&t2).await;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let wait = err.retry_after().expect("says how long");
    assert!(wait <= Duration::from_secs(600) && wait > Duration::from_secs(590));
    assert_eq!(
        sim.counters().get(REFRESHES),
        2,
        "the third refresh was never sent"
    );

    tokio::time::advance(wait).await;
    source.token().await?;
    assert_eq!(sim.counters().get(REFRESHES), 3);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_vendor_throttle_on_refresh_is_a_typed_error_without_a_refresh_loop() -> TestResult {
    let (sim, generic) = sim(vec![]).await;
    generic.throttle_refresh(true);
    let source = OAuthRefreshSource::new(oauth_config(&sim))?;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.vendor_code(), Some("Access Denied"));
    // Callers during the cooldown get the same error without another request.
    for _ in 0..5 {
        assert_eq!(
            source.token().await.unwrap_err().kind(),
            ErrorKind::RateLimited
        );
    }
    assert_eq!(sim.counters().received("POST /oauth/token"), 1);

    generic.throttle_refresh(false);
    tokio::time::advance(Duration::from_secs(61)).await;
    source.token().await?;
    assert_eq!(sim.counters().received("POST /oauth/token"), 2);
    Ok(())
}

fn oauth_reply(status: u16, body: serde_json::Value) -> Reply {
    Reply::new(status, body.to_string().into_bytes()).header("content-type", "application/json")
}

#[tokio::test(start_paused = true)]
async fn a_vendor_error_decoder_reads_its_own_throttle_wording() -> TestResult {
    // A vendor whose accounts server answers a too-frequent refresh with 400 `slow_down`: the
    // standard reading takes that for a refused grant.
    let (sim, canned) = Canned::start().await?;
    let slow_down = serde_json::json!({"error": "slow_down", "error_description": "wait a bit"});
    canned.set(oauth_reply(400, slow_down));
    let plain = OAuthRefreshSource::new(oauth_config(&sim))?;
    assert_eq!(plain.token().await.unwrap_err().kind(), ErrorKind::Auth);

    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let config = oauth_config(&sim).error_decoder(move |reply| {
        sink.lock().unwrap().push((
            reply.status(),
            reply.error().to_owned(),
            reply.description().map(str::to_owned),
        ));
        (reply.error() == "slow_down").then_some(ErrorKind::RateLimited)
    });
    let source = OAuthRefreshSource::new(config)?;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.vendor_code(), Some("slow_down"));
    assert!(
        !err.is_retryable(),
        "a throttled grant is not asked again at once"
    );
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![(400, "slow_down".to_owned(), Some("wait a bit".to_owned()))]
    );

    // What the vendor's decoder leaves alone keeps the standard reading.
    canned.set(oauth_reply(
        400,
        serde_json::json!({"error": "invalid_grant"}),
    ));
    tokio::time::advance(Duration::from_secs(61)).await;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_code(), Some("invalid_grant"));
    canned.set(oauth_reply(429, serde_json::json!({"error": "busy"})));
    assert_eq!(
        source.token().await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refused_grant_is_an_auth_error() -> TestResult {
    let cfg = GenericConfig {
        refresh_token: "another".into(),
        ..GenericConfig::default()
    };
    let (sim, _) = sim_with(vec![], cfg).await;
    let source = OAuthRefreshSource::new(oauth_config(&sim))?;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_code(), Some("invalid_grant"));
    assert!(!err.is_retryable());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn short_lived_tokens_are_not_refreshed_on_every_call() -> TestResult {
    // A 60 s token with the default 5-minute skew would look stale at once; the skew is capped
    // at half the lifetime.
    let cfg = GenericConfig {
        token_ttl: Duration::from_secs(60),
        ..GenericConfig::default()
    };
    let (sim, _) = sim_with(vec![], cfg).await;
    let source = OAuthRefreshSource::new(oauth_config(&sim))?;
    for _ in 0..5 {
        source.token().await?;
    }
    assert_eq!(sim.counters().get(REFRESHES), 1);
    Ok(())
}

#[tokio::test]
async fn an_unreadable_token_reply_is_retried_and_its_body_is_never_kept() -> TestResult {
    use httpmock::prelude::*;
    const TOKEN: &str = "at-0123456789-must-not-leak";
    let server = MockServer::start_async().await;
    // A token reply cut off in the middle: it holds the access token but is not valid JSON.
    let cut = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(200)
                .header("content-type", "application/json")
                .body(format!(r#"{{"access_token":"{TOKEN}","expires_in":"#));
        })
        .await;
    let config = bulk_common::token::OAuthConfig::new(
        format!("{}/oauth/token", server.base_url()),
        "client",
        bulk_common::SecretString::from("client-secret"),
        bulk_common::SecretString::from("refresh-token"),
    )
    .http_options(
        HttpOptions::default().retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(1)),
        ),
    );
    let source = OAuthRefreshSource::new(config)?;
    let err = source.token().await.unwrap_err();
    assert_eq!(cut.calls_async().await, 3, "a refresh is safe to repeat");
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.body_excerpt().is_none());
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("token endpoint"), "{shown}");
    Ok(())
}
