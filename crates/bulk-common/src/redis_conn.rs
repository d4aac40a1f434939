//! One Redis connection made on first use, with a timeout on every call: shared by the Redis
//! token store and the fleet rate limiter (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// A Redis client whose connection is made on first use and made again after a failed call.
#[derive(Clone)]
pub(crate) struct LazyRedis {
    client: redis::Client,
    conn: Arc<Mutex<Option<ConnectionManager>>>,
    /// What the connection serves, for messages ("Redis token store").
    what: &'static str,
}

impl fmt::Debug for LazyRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info may hold a password: show only the address.
        let info = self.client.get_connection_info();
        f.write_str(&info.addr.to_string())
    }
}

impl LazyRedis {
    /// A client for `url`; nothing is contacted yet.
    pub(crate) fn open(url: &str, what: &'static str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::config("the Redis URL is not valid").with_source(e))?;
        Ok(LazyRedis {
            client,
            conn: Arc::new(Mutex::new(None)),
            what,
        })
    }

    fn error(&self, doing: &str, e: redis::RedisError) -> Error {
        Error::new(ErrorKind::Storage, format!("{}: {doing}", self.what)).with_source(e)
    }

    /// The connection, made within `timeout` if there is none.
    async fn connection(&self, timeout: Duration) -> Result<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(0);
        let conn = tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Storage,
                format!("{}: connecting timed out", self.what),
            )
        })?
        .map_err(|e| self.error("could not connect", e))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one call (`doing` names it in errors) within `timeout`; a failure drops the
    /// connection, so the next call reconnects.
    pub(crate) async fn call<T, F, Fut>(&self, doing: &str, timeout: Duration, f: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection(timeout).await?;
        let err = match tokio::time::timeout(timeout, f(conn)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => self.error(doing, e),
            Err(_) => Error::new(
                ErrorKind::Storage,
                format!("{}: {doing} timed out", self.what),
            ),
        };
        *self.conn.lock().await = None;
        Err(err)
    }
}
