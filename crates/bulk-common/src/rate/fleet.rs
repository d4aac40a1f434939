//! A rate limit shared by every process of a fleet through Redis (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{LocalLimiter, Quota, RateLimiter};
use crate::error::Result;
use crate::redis_conn::LazyRedis;
use async_trait::async_trait;

/// GCRA in one atomic step, on Redis's clock (`TIME`, so the machines' clocks do not matter).
/// KEYS[1]: the key holding the theoretical arrival time (µs). ARGV: interval and tolerance (µs).
/// Returns how long the caller waits before its permit (µs); the permit is taken either way.
const GCRA: &str = r#"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local start = tat - tolerance
if start < now then start = now end
local next_tat = tat + interval
redis.call("SET", KEYS[1], string.format("%.0f", next_tat), "PX", math.ceil((next_tat - now) / 1000) + 1000)
return start - now
"#;

/// While Redis is unreachable, how long the local fallback is used before Redis is tried again.
const RETRY_REDIS: Duration = Duration::from_secs(1);

/// A [`RateLimiter`] whose budget is shared by every process using the same Redis key: N
/// processes on one vendor account together stay under the account's limit (job creations,
/// downloads, token refreshes).
///
/// - One Lua script reserves each permit atomically (GCRA), timed by Redis's own clock.
/// - Every Redis call has a timeout ([`op_timeout`](Self::op_timeout), 500 ms). When Redis is
///   unreachable the limiter falls back to a local limit of the quota ÷
///   [`fleet_size`](Self::fleet_size) (the process's fair share), with a tracing warning, tries
///   Redis again a second later, and goes back to it when it answers.
///
/// ```no_run
/// use std::sync::Arc;
/// use bulk_common::rate::{Quota, RateControl, RedisLimiter, RouteClass};
/// use bulk_common::Method;
/// # fn run() -> bulk_common::Result<()> {
/// let creates = RedisLimiter::new("redis://127.0.0.1:6379/", "acme:acct-1:create", Quota::per_minute(5.0))?
///     .fleet_size(3);
/// let control = RateControl::builder()
///     .class(RouteClass::new("create").method(Method::Post), creates)
///     .build();
/// # let _ = control; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    redis: LazyRedis,
    key: String,
    quota: Quota,
    fleet_size: u32,
    fallback: LocalLimiter,
    op_timeout: Duration,
    degraded: Arc<AtomicBool>,
    /// While degraded, Redis is tried again only after this (not on every request).
    retry_at: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("addr", &self.redis)
            .field("key", &self.key)
            .field("quota", &self.quota)
            .field("fleet_size", &self.fleet_size)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter of `quota` under `key` at `url` (`redis://host:port/db`, or `rediss://`).
    /// Nothing is contacted until the first permit.
    pub fn new(url: &str, key: impl Into<String>, quota: Quota) -> Result<Self> {
        Ok(RedisLimiter {
            redis: LazyRedis::open(url, "Redis rate limiter")?,
            key: key.into(),
            quota,
            fleet_size: 1,
            fallback: LocalLimiter::new(quota),
            op_timeout: Duration::from_millis(500),
            degraded: Arc::new(AtomicBool::new(false)),
            retry_at: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// How many processes share the quota (default 1): while Redis is unreachable each takes
    /// this share of it.
    pub fn fleet_size(mut self, n: u32) -> Self {
        self.fleet_size = n.max(1);
        self.fallback = LocalLimiter::new(self.quota.share(self.fleet_size));
        self
    }

    /// The timeout of each Redis call (default 500 ms).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// Whether the last permit came from the local fallback (Redis unreachable).
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Reserves one permit in Redis; returns the wait before it.
    async fn reserve(&self) -> Result<Duration> {
        let script = redis::Script::new(GCRA);
        let mut invocation = script.key(&self.key);
        invocation
            .arg(self.quota.interval().as_micros() as u64)
            .arg(self.quota.tolerance().as_micros() as u64);
        let micros = self
            .redis
            .call(
                "the permit script",
                self.op_timeout,
                |mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await },
            )
            .await?;
        Ok(Duration::from_micros(micros.max(0) as u64))
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn acquire(&self) -> Duration {
        let now = tokio::time::Instant::now();
        if super::lock(&self.retry_at).is_some_and(|at| now < at) {
            return self.fallback.acquire().await;
        }
        match self.reserve().await {
            Ok(wait) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(key = %self.key, "Redis is reachable again; the shared rate limit is back");
                }
                tokio::time::sleep(wait).await;
                wait
            }
            Err(e) => {
                *super::lock(&self.retry_at) = Some(now + RETRY_REDIS);
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        key = %self.key,
                        error = %e,
                        fleet_size = self.fleet_size,
                        "Redis is unreachable; limiting this process to 1/{} of the shared rate until it is back",
                        self.fleet_size
                    );
                }
                self.fallback.acquire().await
            }
        }
    }

    fn rate(&self) -> f64 {
        if self.is_degraded() {
            self.fallback.rate()
        } else {
            self.quota.get_per_second()
        }
    }
}
