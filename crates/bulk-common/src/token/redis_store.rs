//! A token store in Redis, shared by processes on any number of machines.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::error::{Error, ErrorKind, Result};
use crate::redis_conn::LazyRedis;
use crate::token::{StoreKey, StoreLease, StoredToken, TokenStore};

/// Deletes the lease only if it still holds this holder's value (it may have expired and been
/// taken by another process meanwhile).
const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"#;

/// A [`TokenStore`] in Redis (feature `redis`), for workers on several machines sharing one
/// refresh token.
///
/// - The access token and its refresh history live under `<prefix><key>`, where the key is
///   derived from the client id and a hash of the refresh token, never the secret itself.
/// - The refresh lease is `<prefix><key>:lease`, set with `SET NX PX` to a random value, so
///   exactly one process refreshes while the others wait and then read the new token. A holder
///   that crashes mid-refresh loses the lease when it expires ([`lease`](RedisStore::lease),
///   30 s by default); a live holder deletes it when done, and only if it is still its own.
/// - Every Redis call has a short timeout ([`op_timeout`](RedisStore::op_timeout), 1 s). When
///   Redis is down the calls fail fast, and `OAuthRefreshSource` refreshes locally with a
///   warning instead of failing requests; the shared rate limit then cannot be counted across
///   processes until Redis is back.
///
/// Which store to use:
///
/// | Store | Shares tokens between | Use when |
/// |---|---|---|
/// | [`MemoryStore`](crate::token::MemoryStore) | clients in one process | one process (the default) |
/// | [`FileStore`](crate::token::FileStore) | processes on one machine | cron jobs or workers on one host |
/// | `RedisStore` | processes on many machines | a fleet of workers on one refresh token |
///
/// ```no_run
/// use std::sync::Arc;
/// use bulk_common::token::RedisStore;
/// # fn run() -> bulk_common::Result<()> {
/// let store = Arc::new(RedisStore::new("redis://127.0.0.1:6379/")?.prefix("exports:"));
/// // A vendor client's builder takes it: `Client::builder()...token_store(store).build()?`
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    redis: LazyRedis,
    prefix: String,
    lease: Duration,
    op_timeout: Duration,
    lock_timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.redis)
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, or `rediss://` for TLS). Nothing is contacted
    /// until the store is used.
    pub fn new(url: &str) -> Result<Self> {
        Ok(RedisStore {
            redis: LazyRedis::open(url, "Redis token store")?,
            prefix: "bulk-token:".into(),
            lease: Duration::from_secs(30),
            op_timeout: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(60),
        })
    }

    /// A prefix for every key (default `bulk-token:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a refresh lease lasts if its holder never releases it (default 30 s; longer than
    /// a refresh request with its retries).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The timeout of each Redis call (default 1 s).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// How long [`lock`](TokenStore::lock) waits for another holder (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Runs one call with the timeout; a failure drops the connection so the next call reconnects.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.redis.call(what, self.op_timeout, f).await
    }

    fn token_key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredToken>> {
        let name = self.token_key(key);
        let bytes: Option<Vec<u8>> = self
            .call("reading a token", |mut c| async move { c.get(name).await })
            .await?;
        match bytes {
            None => Ok(None),
            // A damaged entry must not block refreshing: treat it as absent.
            Some(b) => Ok(StoredToken::from_json(&b).ok()),
        }
    }

    async fn save(&self, key: &StoreKey, entry: &StoredToken) -> Result<()> {
        let name = self.token_key(key);
        let bytes = entry.to_json()?;
        // Entries outlive their token by a day so the refresh history is kept for rate limits.
        let keep = Duration::from_secs(24 * 3600);
        self.call("saving a token", |mut c| async move {
            c.set_ex::<_, _, ()>(name, bytes, keep.as_secs()).await
        })
        .await
    }

    async fn lock(&self, key: &StoreKey) -> Result<StoreLease> {
        let name = format!("{}:lease", self.token_key(key));
        let holder: String = format!("{:032x}", rand::rng().random::<u128>());
        let lease_ms = self.lease.as_millis() as u64;
        let deadline = tokio::time::Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let (n, h) = (name.clone(), holder.clone());
            let taken: Option<String> = self
                .call("taking the refresh lease", |mut c| async move {
                    redis::cmd("SET")
                        .arg(&n)
                        .arg(&h)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if taken.is_some() {
                return Ok(StoreLease::new(Release {
                    store: self.clone(),
                    name,
                    holder,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "another process has held the refresh lease for over {:?}",
                        self.lock_timeout
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Releases the lease when dropped (in the background: dropping cannot wait).
struct Release {
    store: RedisStore,
    name: String,
    holder: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let (store, name, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let released = store
                    .call("releasing the refresh lease", |mut c| async move {
                        redis::Script::new(RELEASE)
                            .key(name)
                            .arg(holder)
                            .invoke_async::<i64>(&mut c)
                            .await
                    })
                    .await;
                if let Err(e) = released {
                    // The lease expires on its own.
                    tracing::warn!(error = %e, "could not release the refresh lease");
                }
            });
        }
    }
}
