//! The Redis token store against a real `redis-server` (Debian package; `.ci/run` installs it),
//! started on a loopback port by the test and stopped when it ends. Real time: Redis's own
//! clock runs the lease.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulk_common::token::{OAuthConfig, OAuthRefreshSource, ParamsIn, RedisStore};
use bulk_common::{SecretString, TokenSource};
use futures::future::join_all;
use vendor_sim::SimBuilder;
use vendor_sim::zoho::ZohoConfig;

struct Redis {
    child: tokio::process::Child,
    url: String,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server; .ci/run does it)");
        // Wait until it accepts connections.
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

fn source(accounts: &str, redis: &str, cfg: &ZohoConfig) -> OAuthRefreshSource {
    let store = RedisStore::new(redis)
        .unwrap()
        .prefix("test:")
        .lease(Duration::from_millis(400))
        .op_timeout(Duration::from_millis(300));
    OAuthRefreshSource::new(
        OAuthConfig::new(
            format!("{accounts}/oauth/v2/token"),
            cfg.client_id.clone(),
            SecretString::from(cfg.client_secret.clone()),
            SecretString::from(cfg.refresh_token.clone()),
        )
        .params_in(ParamsIn::Query)
        .namespace("zoho")
        .store(Arc::new(store)),
    )
    .unwrap()
}

/// Fifty concurrent `token()` calls on each source.
async fn all(
    sources: &[OAuthRefreshSource],
) -> Vec<bulk_common::Result<bulk_common::token::AccessToken>> {
    join_all(sources.iter().flat_map(|s| (0..50).map(move |_| s.token()))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_with_fifty_callers_each_refresh_once_at_expiry() {
    let redis = Redis::start().await;
    let cfg = ZohoConfig::default();
    let (sim, _) = vendor_sim::zoho::start(SimBuilder::new("accounts"), cfg.clone())
        .await
        .unwrap();
    // Three independent clients, each with its own Redis connection.
    let sources: Vec<_> = (0..3)
        .map(|_| source(&sim.base_url(), &redis.url, &cfg))
        .collect();
    let first = all(&sources).await;
    assert!(first.iter().all(|t| t.is_ok()));
    assert_eq!(
        sim.counters().get("zoho.refreshes"),
        1,
        "150 callers, one refresh"
    );
    let token = first[0].as_ref().unwrap().clone();
    assert!(
        first
            .iter()
            .all(|t| t.as_ref().unwrap().same_secret(&token))
    );

    // The vendor refuses the token everywhere (it expired): 150 callers, one more refresh.
    for s in &sources {
        s.invalidate(&token).await;
    }
    let second = all(&sources).await;
    assert!(
        second
            .iter()
            .all(|t| t.as_ref().is_ok_and(|t| !t.same_secret(&token)))
    );
    assert_eq!(sim.counters().get("zoho.refreshes"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lease_expires_and_another_refreshes() {
    let redis = Redis::start().await;
    let cfg = ZohoConfig::default();
    let (sim, _) = vendor_sim::zoho::start(SimBuilder::new("accounts"), cfg.clone())
        .await
        .unwrap();
    let s = source(&sim.base_url(), &redis.url, &cfg);
    // A holder that took the lease and died: nobody will release it.
    let lease = format!("test:{}:lease", s.store_key());
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&lease)
        .arg("crashed-holder")
        .arg("PX")
        .arg(400)
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    s.token().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited for the lease"
    );
    assert_eq!(sim.counters().get("zoho.refreshes"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_tokens_are_refreshed_locally() {
    let mut redis = Redis::start().await;
    let cfg = ZohoConfig::default();
    let (sim, _) = vendor_sim::zoho::start(SimBuilder::new("accounts"), cfg.clone())
        .await
        .unwrap();
    let s = source(&sim.base_url(), &redis.url, &cfg);
    redis.child.kill().await.unwrap();
    let token = s.token().await.expect("a local refresh, not an error");
    assert_eq!(sim.counters().get("zoho.refreshes"), 1);
    // Still correct afterwards: the token is cached, not refreshed on every call.
    assert!(s.token().await.unwrap().same_secret(&token));
    assert_eq!(sim.counters().get("zoho.refreshes"), 1);
}
