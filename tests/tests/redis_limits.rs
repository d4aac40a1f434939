//! The fleet-wide rate limiter against a real `redis-server` (Debian package; `.ci/run` installs
//! it), started on a loopback port by each test and stopped when it ends. Skipped, with a
//! message, when `redis-server` is not installed. Real time: Redis's own clock runs the limit.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use bulk_common::rate::{Quota, RateControl, RateLimiter, RedisLimiter, RouteClass};
use bulk_common::{HttpClient, HttpOptions, Method, RetryPolicy};
use futures::future::join_all;
use vendor_sim::generic::GenericConfig;
use vendor_sim::{ServerLimits, SimBuilder};

struct Redis {
    child: tokio::process::Child,
    url: String,
}

impl Redis {
    /// A fresh server, or `None` (with a message) when `redis-server` is not installed.
    async fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!(
                    "SKIPPED: redis-server could not be started ({e}); install it with \
                     `apt-get install redis-server` (.ci/run does) to run the Redis limiter tests"
                );
                return None;
            }
        };
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
        Some(Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_budget() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    // Three limiters, each with its own connection, as three processes would have.
    let quota = Quota::per_second(50.0);
    let limiters: Vec<RedisLimiter> = (0..3)
        .map(|_| RedisLimiter::new(&redis.url, "test:acct:create", quota).unwrap())
        .collect();
    let started = Instant::now();
    join_all(limiters.iter().map(|l| async move {
        for _ in 0..20 {
            l.acquire().await;
        }
    }))
    .await;
    let elapsed = started.elapsed();
    // 60 permits at 50/s: the first at once, then one each 20 ms.
    assert!(
        elapsed >= Duration::from_millis(1150),
        "60 permits at 50/s came in {elapsed:?}: the budget was not shared"
    );
    assert!(elapsed < Duration::from_secs(4), "too slow: {elapsed:?}");
    assert!(limiters.iter().all(|l| !l.is_degraded()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_one_limiter_stays_under_the_account_limit() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    // The vendor allows 40 requests a second per credential (a small burst for network jitter).
    let (sim, _) = vendor_sim::start_generic(
        SimBuilder::new("generic").limits(ServerLimits::new().rate(40.0, 4)),
        GenericConfig::default(),
    )
    .await
    .unwrap();
    let clients: Vec<HttpClient> = (0..3)
        .map(|_| {
            let limiter = RedisLimiter::new(&redis.url, "test:acct:all", Quota::per_second(40.0))
                .unwrap()
                .fleet_size(3);
            let control = RateControl::builder()
                .class(RouteClass::new("all"), limiter)
                .build();
            HttpClient::builder("fleet-test/0")
                .base_url(&sim.base_url())
                .options(
                    HttpOptions::default()
                        .retry(RetryPolicy::none())
                        .rate_control(control),
                )
                .build()
                .unwrap()
        })
        .collect();
    let results = join_all(clients.iter().map(|c| async move {
        let mut ok = 0;
        for _ in 0..20 {
            if c.request(Method::Get, "/pages")
                .query("size", 1)
                .send()
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        ok
    }))
    .await;
    assert_eq!(sim.counters().get("limits.refused"), 0);
    assert_eq!(results, vec![20, 20, 20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_each_process_takes_its_share_locally() {
    let Some(mut redis) = Redis::start().await else {
        return;
    };
    let limiter = RedisLimiter::new(&redis.url, "test:acct:dl", Quota::per_second(20.0))
        .unwrap()
        .fleet_size(4)
        .op_timeout(Duration::from_millis(200));
    limiter.acquire().await;
    assert!(!limiter.is_degraded());
    redis.child.kill().await.unwrap();
    let started = Instant::now();
    for _ in 0..6 {
        limiter.acquire().await;
    }
    let elapsed = started.elapsed();
    assert!(limiter.is_degraded());
    assert!((limiter.rate() - 5.0).abs() < 1e-9, "a quarter of 20/s");
    // Six permits at 5/s: the first at once, then one each 200 ms.
    assert!(
        elapsed >= Duration::from_millis(950),
        "the fallback did not limit: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "too slow: {elapsed:?}");
}
