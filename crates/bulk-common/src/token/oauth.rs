//! The OAuth 2 refresh-token grant as a [`TokenSource`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::base_url::BaseUrl;
use crate::clock::{unix_millis, wall_now};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpClient, HttpOptions, Method, Response, VendorError};
use crate::retry::Idempotency;
use crate::token::{AccessToken, MemoryStore, StoreKey, StoredToken, TokenSource, TokenStore};

/// Where the refresh request carries its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParamsIn {
    /// An `application/x-www-form-urlencoded` body (RFC 6749; the default).
    #[default]
    Body,
    /// The query string (as some vendors document). Secrets then travel in the URL, which this
    /// crate never logs.
    Query,
}

/// A vendor's limit on how many access tokens a refresh token may mint: at most `max` in any
/// window of `per`. A refresh that would exceed it fails with [`ErrorKind::RateLimited`] (with
/// the wait in [`Error::retry_after`]) instead of being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRateLimit {
    /// Refreshes allowed per window.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

/// A token endpoint's error reply (`{"error": ..., "error_description": ...}`), as an
/// [`OAuthErrorDecoder`] sees it: the status and the two fields, never the rest of the body
/// (a token reply holds the access token).
#[derive(Debug, Clone, Copy)]
pub struct OAuthErrorReply<'a> {
    status: u16,
    error: &'a str,
    description: Option<&'a str>,
}

impl<'a> OAuthErrorReply<'a> {
    /// A reply with this status, `error` and `error_description` (for testing a decoder).
    pub fn new(status: u16, error: &'a str, description: Option<&'a str>) -> Self {
        OAuthErrorReply {
            status,
            error,
            description,
        }
    }

    /// The HTTP status (some vendors send their OAuth errors with 200).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `error` field.
    pub fn error(&self) -> &'a str {
        self.error
    }

    /// The `error_description` field, if any.
    pub fn description(&self) -> Option<&'a str> {
        self.description
    }

    /// Whether the `error` or `error_description` contains `needle`, ignoring ASCII case.
    pub fn mentions(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        [Some(self.error), self.description]
            .into_iter()
            .flatten()
            .any(|text| text.to_ascii_lowercase().contains(&needle))
    }
}

/// A vendor's reading of its token endpoint's errors: `Some(kind)` classifies the reply (for
/// example [`ErrorKind::RateLimited`] for a vendor's own throttle wording), `None` leaves it to
/// the standard reading (a 429, "too many requests" or "rate limit" is a throttle; a 5xx an
/// [`ErrorKind::Http`] error left to the retry policy; anything else [`ErrorKind::Auth`]).
///
/// ```
/// use bulk_common::ErrorKind;
/// use bulk_common::token::{OAuthConfig, OAuthErrorReply};
/// use bulk_common::SecretString;
///
/// // A vendor whose accounts server says "slow_down" when a client refreshes too often.
/// let config = OAuthConfig::new(
///     "https://accounts.example.com/oauth/token",
///     "client-id",
///     SecretString::from("client-secret"),
///     SecretString::from("refresh-token"),
/// )
/// .error_decoder(|reply: &OAuthErrorReply<'_>| {
///     reply.mentions("slow_down").then_some(ErrorKind::RateLimited)
/// });
/// # let _ = config;
/// ```
pub type OAuthErrorDecoder = Arc<dyn Fn(&OAuthErrorReply<'_>) -> Option<ErrorKind> + Send + Sync>;

/// Settings of an [`OAuthRefreshSource`]. `Debug` never shows the secrets.
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthConfig {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    refresh_token: SecretString,
    scope: Option<String>,
    params_in: ParamsIn,
    skew: Duration,
    default_lifetime: Duration,
    rate_limit: Option<RefreshRateLimit>,
    rate_cooldown: Duration,
    store: Option<Arc<dyn TokenStore>>,
    namespace: String,
    http: HttpOptions,
    error_decoder: Option<OAuthErrorDecoder>,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("scope", &self.scope)
            .field("params_in", &self.params_in)
            .field("skew", &self.skew)
            .field("rate_limit", &self.rate_limit)
            .field("store", &self.store)
            .field("error_decoder", &self.error_decoder.is_some())
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// A configuration for the token endpoint `token_url` (for example
    /// `https://accounts.example.eu/oauth/v2/token`) and the grant's client id, client secret and
    /// refresh token.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        OAuthConfig {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret,
            refresh_token,
            scope: None,
            params_in: ParamsIn::Body,
            skew: Duration::from_secs(300),
            default_lifetime: Duration::from_secs(3600),
            rate_limit: None,
            rate_cooldown: Duration::from_secs(60),
            store: None,
            namespace: "oauth".into(),
            http: HttpOptions::default(),
            error_decoder: None,
        }
    }

    /// A `scope` parameter to send with each refresh.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Where the parameters travel (default: form body).
    pub fn params_in(mut self, params_in: ParamsIn) -> Self {
        self.params_in = params_in;
        self
    }

    /// How long before expiry a token is refreshed (default 5 minutes; at most half a token's
    /// lifetime).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// The lifetime assumed when a reply has no `expires_in` (default 1 hour).
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// The vendor's refresh-rate limit, enforced before sending.
    pub fn rate_limit(mut self, limit: Option<RefreshRateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// After the vendor refuses a refresh for rate reasons, how long every caller gets that
    /// error without a new refresh being sent (default 60 s).
    pub fn rate_cooldown(mut self, cooldown: Duration) -> Self {
        self.rate_cooldown = cooldown;
        self
    }

    /// A store shared with other sources (default: a private [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The prefix of the store key (default `oauth`); see [`StoreKey::derive`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Timeouts and retry policy of the refresh requests.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// The vendor's reading of its token endpoint's errors, consulted before the standard one;
    /// see [`OAuthErrorDecoder`].
    pub fn error_decoder(
        mut self,
        decoder: impl Fn(&OAuthErrorReply<'_>) -> Option<ErrorKind> + Send + Sync + 'static,
    ) -> Self {
        self.error_decoder = Some(Arc::new(decoder));
        self
    }
}

/// Access tokens from an OAuth 2 refresh token.
///
/// - Refreshes ahead of expiry (the configured skew), so requests rarely meet a 401.
/// - Single flight: any number of concurrent callers share one refresh request, and share its
///   failure too; the next call after a failure tries again, so one failed refresh never
///   poisons the source.
/// - Uses a [`TokenStore`]: before refreshing it reloads the store under the store's lock, so
///   clients and processes sharing the store refresh once between them.
/// - Enforces the vendor's [`RefreshRateLimit`] (counted in the store) and backs off after the
///   vendor refuses a refresh for rate reasons; it never loops on refreshes.
/// - A refused grant (`invalid_grant`, `invalid_client`, ...) is an [`ErrorKind::Auth`] error.
///
/// The refresh request is treated as idempotent: repeating it after a broken connection only
/// mints another token, which the rate limit accounts for.
///
/// Cloning is cheap and clones share everything.
#[derive(Clone)]
pub struct OAuthRefreshSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: OAuthConfig,
    http: HttpClient,
    path: String,
    key: StoreKey,
    store: Arc<dyn TokenStore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: Option<AccessToken>,
    /// Fingerprint of the last token the vendor refused, so it is not taken from the store again.
    rejected: Option<String>,
    inflight: Option<Shared<BoxFuture<'static, Result<AccessToken>>>>,
    cooldown: Option<(tokio::time::Instant, Error)>,
    skew: Option<Duration>,
}

impl fmt::Debug for OAuthRefreshSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthRefreshSource")
            .field("token_url", &self.inner.config.token_url)
            .field("client_id", &self.inner.config.client_id)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl OAuthRefreshSource {
    /// Validates `config` and creates the source. No request is sent until a token is needed.
    pub fn new(config: OAuthConfig) -> Result<Self> {
        if config.client_id.trim().is_empty() {
            return Err(Error::config("the OAuth client id is empty"));
        }
        if config.client_secret.expose_secret().trim().is_empty() {
            return Err(Error::config("the OAuth client secret is empty"));
        }
        if config.refresh_token.expose_secret().trim().is_empty() {
            return Err(Error::config("the OAuth refresh token is empty"));
        }
        let url = Url::parse(config.token_url.trim()).map_err(|e| {
            Error::config(format!(
                "the OAuth token URL {:?} is not a valid URL: {e}",
                config.token_url
            ))
        })?;
        let mut origin = url.clone();
        origin.set_path("");
        let base = BaseUrl::from_url(origin)?;
        let vendor = config.error_decoder.clone();
        let decoder: crate::http::ErrorDecoder =
            Arc::new(move |reply: &Response| decode_oauth_error(reply, vendor.as_ref()));
        let http = HttpClient::builder(concat!("bulk-common/", env!("CARGO_PKG_VERSION")))
            .base(base)
            .options(config.http.clone())
            .error_decoder(decoder)
            .build()?;
        let key = StoreKey::derive(&config.namespace, &config.client_id, &config.refresh_token);
        let store = config
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        Ok(OAuthRefreshSource {
            inner: Arc::new(Inner {
                path: url.path().to_owned(),
                config,
                http,
                key,
                store,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The key under which this source's token is stored.
    pub fn store_key(&self) -> &StoreKey {
        &self.inner.key
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panicking holder could break half-way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn skew(&self) -> Duration {
        self.state().skew.unwrap_or(self.config.skew)
    }

    fn usable(&self, token: &AccessToken, skew: Duration, rejected: Option<&str>) -> bool {
        token.is_fresh(skew) && rejected != Some(token.fingerprint().as_str())
    }

    async fn refresh_flow(self: Arc<Self>) -> Result<AccessToken> {
        let result = self.refresh_shared().await;
        let mut st = self.state();
        st.inflight = None;
        match &result {
            Ok(token) => st.cached = Some(token.clone()),
            Err(e) if e.kind() == ErrorKind::RateLimited => {
                let until = e.retry_after().unwrap_or(self.config.rate_cooldown);
                st.cooldown = Some((tokio::time::Instant::now() + until, e.clone()));
            }
            Err(_) => {}
        }
        result
    }

    /// Takes a token from the store if someone else refreshed, else refreshes under the lease.
    async fn refresh_shared(&self) -> Result<AccessToken> {
        let skew = self.skew();
        let rejected = self.state().rejected.clone();
        let from_store = |entry: &Option<StoredToken>| {
            entry
                .as_ref()
                .filter(|e| self.usable(&e.token, skew, rejected.as_deref()))
                .map(|e| e.token.clone())
        };
        let entry = self.load().await;
        if let Some(token) = from_store(&entry) {
            return Ok(token);
        }
        let _lease = match self.store.lock(&self.key).await {
            Ok(lease) => Some(lease),
            Err(e) => {
                tracing::warn!(error = %e, "token store lock unavailable; refreshing without it");
                None
            }
        };
        let entry = self.load().await;
        if let Some(token) = from_store(&entry) {
            return Ok(token);
        }
        let now_ms = unix_millis();
        let mut refreshes = entry.map(|e| e.refreshes).unwrap_or_default();
        if let Some(limit) = self.config.rate_limit {
            let window_ms = limit.per.as_millis() as u64;
            // Stamps come from a shared store that may be corrupt: keep only those inside the
            // window (a little into the future for clock skew), without overflowing.
            refreshes.retain(|&t| {
                t.saturating_add(window_ms) > now_ms && t <= now_ms.saturating_add(window_ms)
            });
            if refreshes.len() >= limit.max as usize {
                let oldest = refreshes.first().copied().unwrap_or(now_ms);
                let wait =
                    Duration::from_millis(oldest.saturating_add(window_ms).saturating_sub(now_ms));
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "not refreshing the access token: {} refreshes in the last {} s already \
                         reach the vendor's limit",
                        refreshes.len(),
                        limit.per.as_secs()
                    ),
                )
                .with_retry_after(Some(wait)));
            }
        } else {
            refreshes.clear();
        }
        let token = self.request_token().await?;
        refreshes.push(now_ms);
        let lifetime = token
            .expires_at()
            .and_then(|at| at.duration_since(wall_now()).ok());
        if let Some(lifetime) = lifetime {
            self.state().skew = Some(self.config.skew.min(lifetime / 2));
        }
        let entry = StoredToken {
            token: token.clone(),
            refreshes,
        };
        if let Err(e) = self.store.save(&self.key, &entry).await {
            tracing::warn!(error = %e, "could not save the refreshed token; continuing");
        }
        Ok(token)
    }

    async fn load(&self) -> Option<StoredToken> {
        match self.store.load(&self.key).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "token store unavailable; refreshing locally");
                None
            }
        }
    }

    async fn request_token(&self) -> Result<AccessToken> {
        let c = &self.config;
        let mut params: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("client_id", &c.client_id),
            ("client_secret", c.client_secret.expose_secret()),
            ("refresh_token", c.refresh_token.expose_secret()),
        ];
        if let Some(scope) = &c.scope {
            params.push(("scope", scope));
        }
        let mut req = self
            .http
            .request(Method::Post, self.path.clone())
            .idempotency(Idempotency::Idempotent);
        req = match c.params_in {
            ParamsIn::Body => req.form(params),
            ParamsIn::Query => {
                let mut r = req;
                for (k, v) in params {
                    r = r.query(k, v);
                }
                r
            }
        };
        tracing::debug!(key = %self.key, "refreshing access token");
        // Decoded inside the retry loop (a refresh is safe to repeat), without the generic
        // decoder: its error would keep a body excerpt, and this body holds the access token.
        let body = req
            .send_decoded(decode_token_reply)
            .await
            .map_err(|e| e.context("refreshing the OAuth access token"))?;
        let access = body.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorKind::Auth,
                "the token endpoint replied without an access_token",
            )
        })?;
        let lifetime = body
            .expires_in
            .as_ref()
            .and_then(seconds)
            .unwrap_or(c.default_lifetime);
        // An absurd lifetime (`expires_in` near u64::MAX) must not overflow the clock.
        let now = wall_now();
        let expires_at = now
            .checked_add(lifetime)
            .or_else(|| now.checked_add(c.default_lifetime));
        Ok(AccessToken::new(SecretString::from(access), expires_at))
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

/// Reads a token reply. The error keeps neither a body excerpt nor serde's message (which may
/// quote a value): either could hold the access token.
fn decode_token_reply(reply: &Response) -> Result<TokenReply> {
    serde_json::from_slice(reply.body()).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "cut off",
            serde_json::error::Category::Syntax => "not valid JSON",
            _ => "not in the documented shape",
        };
        Error::new(
            ErrorKind::Decode,
            format!(
                "the token endpoint's reply is {what} (its content is not shown: it may hold a \
                 token)"
            ),
        )
    })
}

fn seconds(v: &serde_json::Value) -> Option<Duration> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs),
        serde_json::Value::String(s) => s.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads an OAuth error (`{"error": ..., "error_description": ...}`), which some vendors send
/// with HTTP 200: the vendor's [`OAuthErrorDecoder`] first, then the standard reading, where a
/// throttle (a 429, "too many requests", "rate limit") becomes [`ErrorKind::RateLimited`], a 5xx
/// [`ErrorKind::Http`], anything else [`ErrorKind::Auth`].
fn decode_oauth_error(reply: &Response, vendor: Option<&OAuthErrorDecoder>) -> Option<VendorError> {
    let parsed: OAuthErrorBody = serde_json::from_slice(reply.body()).ok()?;
    let code = parsed.error?;
    let description = parsed.error_description;
    let seen = OAuthErrorReply {
        status: reply.status(),
        error: &code,
        description: description.as_deref(),
    };
    let kind = vendor
        .and_then(|decode| decode(&seen))
        .unwrap_or_else(|| standard_kind(&seen));
    // A refused refresh is never retried by the HTTP layer: a throttled grant stays locked out
    // for a window (retrying extends it), and a refused grant stays refused. Server errors
    // without a throttle are left to the retry policy.
    let vendor = VendorError::new(Some(code), description).kind(kind);
    Some(if kind == ErrorKind::Http {
        vendor
    } else {
        vendor.retryable(false)
    })
}

/// The reading of an OAuth error that holds for any vendor.
fn standard_kind(reply: &OAuthErrorReply<'_>) -> ErrorKind {
    let throttled =
        reply.status == 429 || reply.mentions("too many") || reply.mentions("rate limit");
    if throttled {
        ErrorKind::RateLimited
    } else if reply.status >= 500 {
        ErrorKind::Http
    } else {
        ErrorKind::Auth
    }
}

#[async_trait]
impl TokenSource for OAuthRefreshSource {
    async fn token(&self) -> Result<AccessToken> {
        let flight = {
            let mut st = self.inner.state();
            let skew = st.skew.unwrap_or(self.inner.config.skew);
            if let Some(t) = &st.cached
                && t.is_fresh(skew)
            {
                return Ok(t.clone());
            }
            if let Some((until, err)) = &st.cooldown {
                if tokio::time::Instant::now() < *until {
                    return Err(err.clone());
                }
                st.cooldown = None;
            }
            match &st.inflight {
                Some(flight) => flight.clone(),
                None => {
                    let flight = self.inner.clone().refresh_flow().boxed().shared();
                    st.inflight = Some(flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    async fn invalidate(&self, stale: &AccessToken) {
        let mut st = self.inner.state();
        if st.cached.as_ref().is_some_and(|t| t.same_secret(stale)) {
            st.cached = None;
        }
        st.rejected = Some(stale.fingerprint());
    }
}
