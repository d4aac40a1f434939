//! The demo's first section: a short, visible run of the shared machinery against the embedded
//! generic simulator: retries under throttling, server errors and an unreadable reply, a request
//! that is not safe to repeat, OAuth refresh ahead of expiry and after a revoked token, and a polled job with
//! progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulk_common::poll::{Job, JobFailure, JobState, PollPolicy, Progress, Wait};
use bulk_common::token::{OAuthConfig, OAuthRefreshSource};
use bulk_common::{
    Auth, ErrorKind, HttpClient, HttpOptions, Method, Result, RetryPolicy, SecretString,
};
use serde::Deserialize;
use vendor_sim::generic::GenericConfig;
use vendor_sim::{Fault, FaultRule, SimBuilder};

use super::SummaryRow;
use super::progress::Bar;
use crate::DynResult;

const PRODUCT: &str = concat!("bulk-demo/", env!("CARGO_PKG_VERSION"));

pub(crate) async fn run() -> DynResult<SummaryRow> {
    let started = Instant::now();
    let cfg = GenericConfig {
        token_ttl: Duration::from_secs(4),
        ..GenericConfig::default()
    };
    let builder = SimBuilder::new("generic")
        .seed(2026)
        .fault(
            FaultRule::new(Fault::TooManyRequests {
                retry_after: Some("1".into()),
            })
            .path("/items/{id}")
            .nth(1),
        )
        .fault(
            FaultRule::new(Fault::Status(503))
                .path("/items/{id}")
                .nth(2),
        )
        .fault(
            FaultRule::new(Fault::MalformedBody)
                .path("/items/{id}")
                .nth(3),
        )
        .fault(
            FaultRule::new(Fault::ResetAfterHandler)
                .method("POST")
                .path("/items")
                .nth(1),
        );
    let (sim, generic) = vendor_sim::start_generic(builder, cfg.clone()).await?;
    super::announce(
        &format!("simulator {}", sim.base_url()),
        "the shared machinery has no vendor",
    );

    let retry = RetryPolicy::default()
        .initial_delay(Duration::from_millis(200))
        .max_attempts(4);
    let client = HttpClient::builder(PRODUCT)
        .base_url(&sim.base_url())
        .options(HttpOptions::default().retry(retry.clone()))
        .on_retry(|e| println!("  retry: {e}"))
        .build()?;

    println!(
        "\n1. A read under throttling, a server error and a cut-off 200 reply (each retried: a \
         GET is safe to repeat; Retry-After honoured)"
    );
    let item: serde_json::Value = client.request(Method::Get, "/items/1").send_json().await?;
    println!("  got {item}");

    println!("\n2. A create that is not safe to repeat, cut off after the server applied it");
    match client
        .request(Method::Post, "/items")
        .json(&serde_json::json!({"name": "invoice-42"}))
        .send()
        .await
    {
        Err(e) if e.kind() == ErrorKind::AmbiguousOutcome => {
            println!("  not re-sent: {e}");
            let ran = sim.counters().handled("POST /items");
            println!(
                "  server side: handler ran {ran} {}, items stored: {}",
                if ran == 1 { "time" } else { "times" },
                generic.items().len()
            );
        }
        Err(e) => return Err(format!("expected an ambiguous outcome, got: {e}").into()),
        Ok(reply) => {
            return Err(format!(
                "expected an ambiguous outcome, got a reply with HTTP {}",
                reply.status()
            )
            .into());
        }
    }

    println!(
        "\n3. OAuth: refresh ahead of expiry, and once more after the vendor revokes the token"
    );
    let oauth = OAuthRefreshSource::new(OAuthConfig::new(
        format!("{}/oauth/token", sim.base_url()),
        cfg.client_id.clone(),
        SecretString::from(cfg.client_secret.clone()),
        SecretString::from(cfg.refresh_token.clone()),
    ))?;
    let authed = HttpClient::builder(PRODUCT)
        .base_url(&sim.base_url())
        .auth(Auth::token_source(Arc::new(oauth), "Bearer"))
        .build()?;
    let calls = (0..20).map(|_| authed.request(Method::Get, "/protected").send());
    for r in futures::future::join_all(calls).await {
        r?;
    }
    println!(
        "  20 concurrent calls: {} refresh",
        sim.counters().get("oauth.refreshes")
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    authed.request(Method::Get, "/protected").send().await?;
    println!(
        "  token 2.1 s from expiry (skew = half its 4 s life): refreshed early, refreshes = {}",
        sim.counters().get("oauth.refreshes")
    );
    generic.revoke_tokens();
    authed.request(Method::Get, "/protected").send().await?;
    println!(
        "  after revocation: 401, invalidate, replay once: refreshes = {}, replays = {}",
        sim.counters().get("oauth.refreshes"),
        authed.stats().auth_replays
    );

    println!("\n4. A job of 500 items lasting 3 s, polled with progress-aware timing");
    let created: serde_json::Value = client
        .request(Method::Post, "/jobs")
        .json(&serde_json::json!({"total": 500, "duration_ms": 3000}))
        .send_json()
        .await?;
    let job = GenericJob {
        id: created["id"].as_str().unwrap_or_default().to_owned(),
        client: client.clone(),
        progress: true,
    };
    let policy = PollPolicy::default()
        .first_delay(Duration::from_millis(300))
        .deadline(Some(Duration::from_secs(30)));
    let waited = Instant::now();
    let bar = Bar::new("job", Some(500), "items");
    let events = bar.clone();
    let total = Wait::new(&job)
        .policy(policy)
        .on_progress(move |e| {
            events.update(
                e.progress.done().unwrap_or(0),
                format!(
                    "poll {}, next look in {:.2} s",
                    e.polls,
                    e.next_poll_in.as_secs_f64()
                ),
            );
        })
        .run()
        .await?;
    let calls = sim.counters().received("GET /jobs/{id}");
    bar.update(total, "");
    bar.finish(format!("done, {calls} status calls"));
    println!(
        "  done: {total} items after {:.2} s, {calls} status calls",
        waited.elapsed().as_secs_f64(),
    );

    let row = SummaryRow {
        vendor: "generic",
        against: "simulator".into(),
        items: total,
        jobs: sim.counters().get("jobs.created"),
        retries: client.stats().retries + authed.stats().retries,
        time: started.elapsed(),
    };
    sim.shutdown().await;
    Ok(row)
}

/// A job on the generic simulator (also the poll benchmark's).
pub(crate) struct GenericJob {
    pub(crate) id: String,
    pub(crate) client: HttpClient,
    /// Whether progress (total, remaining) is passed on; without it the driver cannot predict.
    pub(crate) progress: bool,
}

#[derive(Deserialize)]
struct Status {
    status: String,
    total: u64,
    remaining: u64,
    error: Option<String>,
}

impl Job for GenericJob {
    type Output = u64;

    async fn poll(&self) -> Result<JobState<u64>> {
        let s: Status = self
            .client
            .request(Method::Get, format!("/jobs/{}", self.id))
            .send_json()
            .await?;
        Ok(match s.status.as_str() {
            "done" => JobState::Done(s.total),
            "failed" => JobState::Failed(JobFailure::new(s.error.unwrap_or_default())),
            other if self.progress => JobState::Pending(
                Progress::new()
                    .total(s.total)
                    .remaining(s.remaining)
                    .status(other),
            ),
            other => JobState::Pending(Progress::new().status(other)),
        })
    }

    fn describe(&self) -> String {
        self.id.clone()
    }
}
