//! Access tokens: where they come from, when they are refreshed, and where they are kept.
//!
//! - [`TokenSource`] is what an [`HttpClient`](crate::HttpClient) asks for a token before each
//!   request and tells after a 401.
//! - [`OAuthRefreshSource`] turns an OAuth refresh token into access tokens: refreshed ahead of
//!   expiry, once for any number of concurrent callers, within a vendor's refresh-rate limit.
//! - [`MintSource`] mints tokens with a closure (a login with an API key, say), one attempt for
//!   any number of concurrent callers, and takes over tokens a server rotates into its replies.
//! - [`TokenStore`] keeps access tokens where other clients and processes can reuse them:
//!   [`MemoryStore`] within a process, [`FileStore`] between processes of one machine, and
//!   `RedisStore` (feature `redis`) between processes on many machines.

mod mint;
mod oauth;
#[cfg(feature = "redis")]
mod redis_store;
mod store;

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::http::Headers;

pub use mint::{Mint, MintSource, MintSourceBuilder, Rotation};
pub use oauth::{
    OAuthConfig, OAuthErrorDecoder, OAuthErrorReply, OAuthRefreshSource, ParamsIn, RefreshRateLimit,
};
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use store::{FileStore, MemoryStore, StoreKey, StoreLease, StoredToken, TokenStore};

/// An access token and, when known, the time it expires.
///
/// `Debug` shows a short fingerprint, never the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<SystemTime>,
}

impl AccessToken {
    /// A token with an optional expiry time.
    pub fn new(secret: SecretString, expires_at: Option<SystemTime>) -> Self {
        AccessToken { secret, expires_at }
    }

    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the token expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the token is still usable `skew` from now (tokens without expiry always are).
    pub fn is_fresh(&self, skew: Duration) -> bool {
        match self.expires_at {
            Some(at) => crate::clock::wall_now() + skew < at,
            None => true,
        }
    }

    /// A short, non-reversible fingerprint of the token, for logs and comparisons.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.secret)
    }

    /// Whether both hold the same token.
    pub fn same_secret(&self, other: &AccessToken) -> bool {
        self.secret.expose_secret() == other.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("fingerprint", &self.fingerprint())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The first 12 hex digits of the SHA-256 of a secret: enough to tell tokens apart in logs,
/// useless to an attacker.
pub(crate) fn fingerprint(secret: &SecretString) -> String {
    hex12(&Sha256::digest(secret.expose_secret().as_bytes()))
}

pub(crate) fn hex12(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Supplies access tokens to an [`HttpClient`](crate::HttpClient).
///
/// Implementations are shared by every request of a client (and may be shared by several
/// clients), so they must be safe to call concurrently.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token that is valid now, refreshing it first if needed.
    async fn token(&self) -> Result<AccessToken>;

    /// Tells the source that the vendor refused `stale` (HTTP 401). The next [`token`] call must
    /// not return it again. Concurrent callers reporting the same stale token cause one refresh.
    ///
    /// [`token`]: TokenSource::token
    async fn invalidate(&self, stale: &AccessToken);

    /// Sees the headers of every reply to a request made with this source's tokens, so a vendor
    /// that rotates tokens in replies can be followed. The default does nothing.
    fn observe_response(&self, headers: &Headers) {
        let _ = headers;
    }
}

/// A fixed token that never refreshes: a 401 is final.
#[derive(Clone)]
pub struct StaticToken {
    token: AccessToken,
}

impl StaticToken {
    /// A source that always returns `secret`.
    pub fn new(secret: SecretString) -> Self {
        StaticToken {
            token: AccessToken::new(secret, None),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StaticToken").field(&self.token).finish()
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<AccessToken> {
        Ok(self.token.clone())
    }

    async fn invalidate(&self, _stale: &AccessToken) {}
}
