//! The client: options, builder, traffic counters and retry events.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::base_url::BaseUrl;
use crate::error::{Error, Result};
use crate::http::auth::Auth;
use crate::http::classify::ErrorDecoder;
use crate::http::request::{Method, RequestBuilder};
use crate::retry::RetryPolicy;

/// Timeouts and retry defaults of an [`HttpClient`].
///
/// The defaults are safe for production: 10 s to connect, 60 s for a whole request, 60 s of
/// silence before a streaming download is abandoned, and [`RetryPolicy::default`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) read_timeout: Duration,
    pub(super) retry: RetryPolicy,
    user_agent: Option<String>,
    pub(super) rate: Option<crate::rate::RateControl>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            user_agent: None,
            rate: None,
        }
    }
}

impl HttpOptions {
    /// Time allowed to open a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole request (send, wait, read the body). Streaming downloads use
    /// the idle [`read_timeout`](Self::read_timeout) instead.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Longest silence allowed while reading a response.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The default retry policy of every request (overridable per request).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A product token put in front of the `User-Agent` (for example `my-app/1.2`).
    pub fn user_agent_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.user_agent = Some(prefix.into());
        self
    }

    /// Rate limits every attempt of the client's requests waits for (clones of the control
    /// share one budget); see [`crate::rate`].
    pub fn rate_control(mut self, control: crate::rate::RateControl) -> Self {
        self.rate = Some(control);
        self
    }

    /// The rate control, if any.
    pub fn get_rate_control(&self) -> Option<&crate::rate::RateControl> {
        self.rate.as_ref()
    }

    /// The retry policy.
    pub fn get_retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The whole-request timeout.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// What a retry observer is told before the client waits and tries again.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The request's method.
    pub method: Method,
    /// The request's path (no query: it may hold secrets).
    pub path: &'a str,
    /// The attempt that just failed (1 for the first).
    pub attempt: u32,
    /// How long the client waits before the next attempt.
    pub delay: Duration,
    /// Why the attempt failed.
    pub error: &'a Error,
}

impl fmt::Display for RetryEvent<'_> {
    /// `GET /v1/items attempt 1 failed (rate limited, HTTP 429); waiting 1.00 s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} attempt {} failed ({}",
            self.method,
            self.path,
            self.attempt,
            self.error.kind()
        )?;
        if let Some(status) = self.error.status() {
            write!(f, ", HTTP {status}")?;
        }
        write!(f, "); waiting {:.2} s", self.delay.as_secs_f64())
    }
}

pub(super) type RetryObserver = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// Counters of a client's traffic since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpStats {
    /// HTTP attempts sent (retries and replays included).
    pub attempts: u64,
    /// Retries after a transient failure.
    pub retries: u64,
    /// Replays after a 401 with a fresh token.
    pub auth_replays: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) attempts: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) auth_replays: AtomicU64,
}

/// An HTTP client bound to one vendor origin.
///
/// It is cheap to clone: clones share one connection pool, credentials and counters. Build it
/// with [`HttpClient::builder`].
///
/// ```no_run
/// use bulk_common::{HttpClient, Auth, Method, SecretString};
/// # async fn run() -> bulk_common::Result<()> {
/// let client = HttpClient::builder("my-vendor-client/0.1")
///     .base_url("https://api.example.com")
///     .auth(Auth::bearer(SecretString::from("token"))?)
///     .build()?;
/// let items: serde_json::Value = client
///     .request(Method::Get, "/v1/items")
///     .query("page", "2")
///     .send_json()
///     .await?;
/// # let _ = items; Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    pub(super) inner: Arc<ClientInner>,
}

pub(super) struct ClientInner {
    pub(super) http: reqwest::Client,
    pub(super) base: BaseUrl,
    pub(super) auth: Auth,
    pub(super) options: HttpOptions,
    pub(super) error_decoder: Option<ErrorDecoder>,
    pub(super) on_retry: Option<RetryObserver>,
    pub(super) counters: Counters,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.inner.base)
            .field("auth", &self.inner.auth)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpClient`].
#[must_use]
pub struct HttpClientBuilder {
    product: String,
    base: Option<std::result::Result<BaseUrl, Error>>,
    auth: Auth,
    options: HttpOptions,
    error_decoder: Option<ErrorDecoder>,
    on_retry: Option<RetryObserver>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("product", &self.product)
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts a builder. `product` names the calling crate and version for the `User-Agent`
    /// (for example `concat!("acme-bulk/", env!("CARGO_PKG_VERSION"))`).
    pub fn builder(product: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            product: product.into(),
            base: None,
            auth: Auth::none(),
            options: HttpOptions::default(),
            error_decoder: None,
            on_retry: None,
        }
    }

    /// The configured origin.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// The client's options.
    pub fn options(&self) -> &HttpOptions {
        &self.inner.options
    }

    /// Traffic counters since the client was built (shared by its clones).
    pub fn stats(&self) -> HttpStats {
        let c = &self.inner.counters;
        HttpStats {
            attempts: c.attempts.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            auth_replays: c.auth_replays.load(Ordering::Relaxed),
        }
    }

    /// Starts a request to `path` (absolute path like `/v1/items`, or a URL of the same origin
    /// as returned by the vendor).
    pub fn request(&self, method: Method, path: impl Into<String>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, path.into())
    }
}

impl HttpClientBuilder {
    /// The vendor origin, such as `https://api.example.com` (`http://` only for loopback).
    pub fn base_url(mut self, url: &str) -> Self {
        self.base = Some(BaseUrl::parse(url));
        self
    }

    /// An already validated origin.
    pub fn base(mut self, base: BaseUrl) -> Self {
        self.base = Some(Ok(base));
        self
    }

    /// The default credentials of every request.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Timeouts, retry policy and user agent.
    pub fn options(mut self, options: HttpOptions) -> Self {
        self.options = options;
        self
    }

    /// Reads vendor error codes out of replies; see [`ErrorDecoder`].
    pub fn error_decoder(mut self, decoder: ErrorDecoder) -> Self {
        self.error_decoder = Some(decoder);
        self
    }

    /// Called before every retry wait (for metrics and progress displays).
    pub fn on_retry(mut self, observer: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(observer));
        self
    }

    /// Builds the client; fails on a missing or invalid base URL.
    pub fn build(self) -> Result<HttpClient> {
        let base = self
            .base
            .ok_or_else(|| Error::config("no base URL was configured"))??;
        let product = self.product.trim();
        let ua = match &self.options.user_agent {
            Some(prefix) => format!("{prefix} {product}"),
            None => product.to_owned(),
        };
        let http = reqwest::Client::builder()
            .user_agent(ua)
            .connect_timeout(self.options.connect_timeout)
            // The idle read timeout and the whole-request timeout are applied per attempt by
            // the request, which needs one timer where reqwest would arm three.
            // Redirects are not followed: a redirect could carry credentials off the origin, and
            // vendors in this workspace do not use them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::config("could not build the HTTP client").with_source(e))?;
        Ok(HttpClient {
            inner: Arc::new(ClientInner {
                http,
                base,
                auth: self.auth,
                options: self.options,
                error_decoder: self.error_decoder,
                on_retry: self.on_retry,
                counters: Counters::default(),
            }),
        })
    }
}
