//! HTTP plumbing: one reused connection pool per client, timeouts, a user agent, credentials bound
//! to the configured origin, retries with backoff, and replay after a refused token.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::base_url::{BaseUrl, redact_url};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{Idempotency, RetryPolicy, is_retryable_status, parse_retry_after};
use crate::token::{AccessToken, TokenSource};

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
}

impl Method {
    /// The idempotency HTTP semantics give this method: GET, HEAD, PUT and DELETE are
    /// idempotent, POST and PATCH are not.
    pub fn default_idempotency(self) -> Idempotency {
        match self {
            Method::Post | Method::Patch => Idempotency::NonIdempotent,
            _ => Idempotency::Idempotent,
        }
    }

    /// The method's name, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }

    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Response headers.
#[derive(Clone, Default)]
pub struct Headers {
    map: HeaderMap,
}

impl Headers {
    /// The first value of header `name` (case-insensitive), if present and valid text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether header `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold rotated tokens; names are enough to diagnose.
        f.debug_list().entries(self.map.keys()).finish()
    }
}

/// A complete HTTP response, body read into memory.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Bytes,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Consumes the response, returning the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Decodes the body as JSON into `T`; a mismatch is an [`ErrorKind::Decode`] error carrying
    /// an excerpt of the body. [`RequestBuilder::send_json`] decodes inside the retry loop.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        decode_json(&self.body)
    }
}

/// Decodes JSON bytes into `T`; a mismatch is an [`ErrorKind::Decode`] error carrying an excerpt
/// of the body (serde's explanation is its source, kept out of `Display`).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the reply is cut off (incomplete JSON)".to_owned(),
            serde_json::error::Category::Syntax => "the reply is not valid JSON".to_owned(),
            // serde names the field or the type by its short name, never a path.
            _ => format!("the reply is JSON, but not in the documented shape ({e})"),
        };
        Error::decode(what, e).with_body(body)
    })
}

/// A response whose body is read as a stream of chunks (downloads).
pub struct StreamingResponse {
    status: u16,
    headers: Headers,
    stream: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl StreamingResponse {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body as a stream of chunks. A broken or stalled transfer ends with an error (the idle
    /// read timeout applies between chunks).
    pub fn into_stream(self) -> Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>> {
        self.stream
    }
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// How a client authenticates. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Auth {
    kind: AuthKind,
}

#[derive(Clone)]
enum AuthKind {
    None,
    Basic {
        username: SecretString,
        password: Option<SecretString>,
    },
    Header {
        name: HeaderName,
        prefix: String,
        value: SecretString,
    },
    Source {
        source: Arc<dyn TokenSource>,
        scheme: String,
    },
}

impl Auth {
    /// No credentials.
    pub fn none() -> Self {
        Auth {
            kind: AuthKind::None,
        }
    }

    /// HTTP Basic authentication. An empty username is refused.
    pub fn basic(username: SecretString, password: Option<SecretString>) -> Result<Self> {
        if username.expose_secret().trim().is_empty() {
            return Err(Error::config("the API key (basic-auth user) is empty"));
        }
        Ok(Auth {
            kind: AuthKind::Basic { username, password },
        })
    }

    /// A fixed bearer token: `Authorization: Bearer <token>`. An empty token is refused.
    pub fn bearer(token: SecretString) -> Result<Self> {
        Auth::header("authorization", "Bearer ", token)
    }

    /// A fixed secret header such as `Authorization: Token <value>` or `X-Api-Key: <value>`.
    pub fn header(name: &str, prefix: &str, value: SecretString) -> Result<Self> {
        if value.expose_secret().trim().is_empty() {
            return Err(Error::config(format!(
                "the credential for header {name} is empty"
            )));
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(format!("{name:?} is not a valid header name")))?;
        secret_header(prefix, &value)?;
        Ok(Auth {
            kind: AuthKind::Header {
                name,
                prefix: prefix.to_owned(),
                value,
            },
        })
    }

    /// Tokens from a [`TokenSource`], sent as `Authorization: <scheme> <token>` (for example
    /// `Bearer` or `Zoho-oauthtoken`). After a 401 the token is invalidated and the request is
    /// replayed once with a fresh one.
    pub fn token_source(source: Arc<dyn TokenSource>, scheme: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::Source {
                source,
                scheme: scheme.into(),
            },
        }
    }

    fn source(&self) -> Option<&Arc<dyn TokenSource>> {
        match &self.kind {
            AuthKind::Source { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AuthKind::None => f.write_str("Auth::None"),
            AuthKind::Basic { .. } => f.write_str("Auth::Basic([REDACTED])"),
            AuthKind::Header { name, .. } => write!(f, "Auth::Header({name}: [REDACTED])"),
            AuthKind::Source { source, scheme } => {
                write!(f, "Auth::TokenSource({scheme}, {source:?})")
            }
        }
    }
}

fn secret_header(prefix: &str, value: &SecretString) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("{prefix}{}", value.expose_secret()))
        .map_err(|_| Error::config("the credential contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Timeouts and retry defaults of an [`HttpClient`].
///
/// The defaults are safe for production: 10 s to connect, 60 s for a whole request, 60 s of
/// silence before a streaming download is abandoned, and [`RetryPolicy::default`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    connect_timeout: Duration,
    request_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
    user_agent: Option<String>,
    rate: Option<crate::rate::RateControl>,
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

/// A vendor's reading of one of its replies, produced by an [`ErrorDecoder`].
#[derive(Debug, Clone, Default)]
pub struct VendorError {
    kind: Option<ErrorKind>,
    code: Option<String>,
    message: Option<String>,
    details: Option<serde_json::Value>,
    retryable: Option<bool>,
    stale_token: Option<bool>,
}

impl VendorError {
    /// A vendor error with its code and message.
    pub fn new(code: Option<String>, message: Option<String>) -> Self {
        VendorError {
            code,
            message,
            ..VendorError::default()
        }
    }

    /// Overrides the error kind the HTTP status would give (for example
    /// [`ErrorKind::QuotaExceeded`] for a daily limit, or [`ErrorKind::RateLimited`] for a
    /// throttle reported with HTTP 200).
    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Structured details from the reply.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Overrides whether the client may retry (for example `false` for a throttle that locks
    /// the caller out for a long window, where retrying would only extend the lock-out).
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// Whether a 401 reply means the access token is stale, so that a fresh token may cure it
    /// (by default every 401 does). `false` makes the 401 a final [`ErrorKind::Auth`] error,
    /// with no refresh and no replay: for vendors whose token refreshes are scarce (Zoho mints
    /// 10 per 10 minutes) and whose other 401 codes a new token cannot cure.
    pub fn stale_token(mut self, stale: bool) -> Self {
        self.stale_token = Some(stale);
        self
    }
}

/// Reads a vendor's error code and message out of a reply. Called for every reply: returning
/// `Some` for a 2xx reply turns it into an error (for vendors that report failures with HTTP 200).
pub type ErrorDecoder = Arc<dyn Fn(&Response) -> Option<VendorError> + Send + Sync>;

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

type RetryObserver = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

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
struct Counters {
    attempts: AtomicU64,
    retries: AtomicU64,
    auth_replays: AtomicU64,
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
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    base: BaseUrl,
    auth: Auth,
    options: HttpOptions,
    error_decoder: Option<ErrorDecoder>,
    on_retry: Option<RetryObserver>,
    counters: Counters,
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
    /// (for example `concat!("zoho-bulk/", env!("CARGO_PKG_VERSION"))`).
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
        RequestBuilder {
            client: self.clone(),
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            idempotency: None,
            timeout: None,
            retry: None,
            auth: None,
            deferred: None,
        }
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
            .read_timeout(self.options.read_timeout)
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

#[derive(Clone)]
enum Body {
    Bytes { bytes: Bytes, content_type: String },
}

/// A request being built; finish it with [`send`](Self::send) or
/// [`send_streaming`](Self::send_streaming).
#[must_use]
pub struct RequestBuilder {
    client: HttpClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Body>,
    idempotency: Option<Idempotency>,
    timeout: Option<Option<Duration>>,
    retry: Option<RetryPolicy>,
    auth: Option<Auth>,
    deferred: Option<Error>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    /// Adds query parameters from a serializable value (a struct or map of scalars).
    pub fn query_pairs<T: Serialize + ?Sized>(mut self, params: &T) -> Self {
        match serde_json::to_value(params) {
            Ok(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    match v {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(s) => self.query.push((k, s)),
                        other => self.query.push((k, other.to_string())),
                    }
                }
            }
            Ok(_) => {
                self.deferred = Some(Error::invalid_input("query parameters must be an object"))
            }
            Err(e) => {
                self.deferred = Some(Error::invalid_input("bad query parameters").with_source(e))
            }
        }
        self
    }

    /// Adds a header. Invalid names or values are reported by `send`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ => self.deferred = Some(Error::invalid_input(format!("invalid header {name:?}"))),
        }
        self
    }

    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(Body::Bytes {
                    bytes: bytes.into(),
                    content_type: "application/json".into(),
                })
            }
            Err(e) => {
                self.deferred =
                    Some(Error::invalid_input("could not encode the request body").with_source(e))
            }
        }
        self
    }

    /// Sends `pairs` as an `application/x-www-form-urlencoded` body.
    pub fn form<'p>(mut self, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        self.body = Some(Body::Bytes {
            bytes: ser.finish().into(),
            content_type: "application/x-www-form-urlencoded".into(),
        });
        self
    }

    /// Sends raw bytes with the given content type.
    pub fn body(mut self, bytes: impl Into<Bytes>, content_type: &str) -> Self {
        self.body = Some(Body::Bytes {
            bytes: bytes.into(),
            content_type: content_type.into(),
        });
        self
    }

    /// Declares whether the request may be sent twice (default: from the method).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// Overrides the whole-request timeout (`None`: only the idle read timeout applies).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the client's retry policy for this request.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Overrides the client's credentials for this request (for example a token with another
    /// scope).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sends the request with retries and reads the whole body.
    ///
    /// A non-2xx reply (or one the vendor's error decoder flags) is an error carrying the status,
    /// the vendor's code and message and a body excerpt.
    pub async fn send(self) -> Result<Response> {
        self.execute(false, |sent| match sent {
            Sent::Full(r) => Ok(r),
            Sent::Streaming(_) => unreachable_streaming(),
        })
        .await
    }

    /// Sends the request and decodes a successful reply as JSON into `T`, retrying a reply that
    /// cannot be decoded; see [`send_decoded`](Self::send_decoded).
    pub async fn send_json<T: DeserializeOwned + Send>(self) -> Result<T> {
        self.send_decoded(Response::json::<T>).await
    }

    /// Sends the request and reads a successful reply with `decode`, inside the retry loop.
    ///
    /// A reply that `decode` cannot read (it returns an [`ErrorKind::Decode`] error: malformed or
    /// cut-off JSON, an HTML page from a proxy, an unexpected shape) is treated like a broken
    /// connection: an idempotent request is sent again under the [`RetryPolicy`], and only when
    /// the policy's attempts or budget are spent does the last decode error come back. For a
    /// request that is not idempotent the server did accept it, but what it answered is unknown,
    /// so the result is an [`ErrorKind::AmbiguousOutcome`] error and nothing is re-sent. Any
    /// other error `decode` returns is final.
    ///
    /// ```no_run
    /// use bulk_common::{HttpClient, Method, Response};
    /// # async fn run(client: HttpClient) -> bulk_common::Result<()> {
    /// let count: u64 = client
    ///     .request(Method::Get, "/v1/items/count")
    ///     .send_decoded(|reply: &Response| {
    ///         let v: serde_json::Value = reply.json()?;
    ///         v["count"].as_u64().ok_or_else(|| {
    ///             bulk_common::Error::new(bulk_common::ErrorKind::Decode, "the reply has no count")
    ///         })
    ///     })
    ///     .await?;
    /// # let _ = count; Ok(()) }
    /// ```
    pub async fn send_decoded<T, F>(self, decode: F) -> Result<T>
    where
        T: Send,
        F: Fn(&Response) -> Result<T> + Send + Sync,
    {
        self.execute(false, |sent| match sent {
            Sent::Full(r) => decode(&r),
            Sent::Streaming(_) => unreachable_streaming().and_then(|r| decode(&r)),
        })
        .await
    }

    /// Sends the request with retries and returns as soon as a successful status and headers
    /// arrive; the body is read as a stream. Only the idle read timeout applies to the body.
    pub async fn send_streaming(self) -> Result<StreamingResponse> {
        self.execute(true, |sent| {
            Ok(match sent {
                Sent::Streaming(r) => r,
                Sent::Full(r) => StreamingResponse {
                    status: r.status,
                    headers: r.headers,
                    stream: Box::pin(futures::stream::once(async move { Ok(r.body) })),
                },
            })
        })
        .await
    }

    /// Sends with retries; `finish` turns a successful reply into the result, and a
    /// [`ErrorKind::Decode`] error from it is retried like a broken connection.
    async fn execute<T>(
        self,
        streaming: bool,
        finish: impl Fn(Sent) -> Result<T> + Send + Sync,
    ) -> Result<T> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let client = self.client;
        let inner = &client.inner;
        let mut url = inner.base.resolve(&self.path)?;
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        let path = url.path().to_owned();
        let policy = self.retry.as_ref().unwrap_or(&inner.options.retry);
        let idempotency = self
            .idempotency
            .unwrap_or_else(|| self.method.default_idempotency());
        let auth = self.auth.as_ref().unwrap_or(&inner.auth);
        let timeout = match self.timeout {
            Some(t) => t,
            None if streaming => None,
            None => Some(inner.options.request_timeout),
        };
        let span = tracing::debug_span!(
            "http.request",
            method = %self.method,
            path = %path,
            attempt = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let attempt_ctx = Attempt {
            inner,
            method: self.method,
            url: &url,
            headers: &self.headers,
            body: self.body.as_ref(),
            timeout,
            idempotency,
            streaming,
        };
        async move {
            let started = tokio::time::Instant::now();
            let mut attempt: u32 = 0;
            let mut replayed = false;
            loop {
                attempt += 1;
                tracing::Span::current().record("attempt", attempt);
                inner.counters.attempts.fetch_add(1, Ordering::Relaxed);
                let token = auth_token(auth).await?;
                let permit = match &inner.options.rate {
                    Some(rate) => Some(rate.acquire(self.method, &path).await),
                    None => None,
                };
                let outcome = attempt_ctx.run(auth, token.as_ref()).await;
                if let (Some(rate), Some(permit)) = (&inner.options.rate, permit) {
                    rate.observe(permit, outcome.as_ref().err().map(Failure::error));
                }
                let outcome = outcome.and_then(|sent| {
                    let status = sent.status();
                    match finish(sent) {
                        Ok(done) => Ok(done),
                        Err(e) if e.kind() == ErrorKind::Decode => {
                            let e = if e.status().is_none() {
                                e.with_status(status)
                            } else {
                                e
                            };
                            Err(attempt_ctx.undecodable(e))
                        }
                        Err(e) => Err(Failure::Final(e)),
                    }
                });
                let err = match outcome {
                    Ok(done) => return Ok(done),
                    Err(Failure::Unauthorized(err)) => {
                        if let (Some(source), Some(stale), false) = (auth.source(), &token, replayed)
                        {
                            replayed = true;
                            inner.counters.auth_replays.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("token refused; invalidating and replaying once");
                            source.invalidate(stale).await;
                            attempt -= 1;
                            continue;
                        }
                        return Err(err);
                    }
                    Err(Failure::Final(err)) => return Err(err),
                    Err(Failure::Retryable(err)) => err,
                };
                let delay = match retry_delay(policy, attempt, started, &err) {
                    Some(d) => d,
                    None if attempt > 1 => {
                        return Err(err.append_message(&format!("gave up after {attempt} attempts")));
                    }
                    None => return Err(err),
                };
                inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
                if let Some(observer) = &inner.on_retry {
                    observer(&RetryEvent {
                        method: self.method,
                        path: &path,
                        attempt,
                        delay,
                        error: &err,
                    });
                }
                tokio::time::sleep(delay).await;
            }
        }
        .instrument(span)
        .await
    }
}

fn unreachable_streaming() -> Result<Response> {
    Err(Error::new(
        ErrorKind::Decode,
        "internal: a buffered request produced a stream",
    ))
}

enum Sent {
    Full(Response),
    Streaming(StreamingResponse),
}

impl Sent {
    fn status(&self) -> u16 {
        match self {
            Sent::Full(r) => r.status,
            Sent::Streaming(r) => r.status,
        }
    }
}

enum Failure {
    /// Worth another attempt under the retry policy.
    Retryable(Error),
    /// A 401 that a fresh token may cure.
    Unauthorized(Error),
    /// Final.
    Final(Error),
}

impl Failure {
    fn error(&self) -> &Error {
        match self {
            Failure::Retryable(e) | Failure::Unauthorized(e) | Failure::Final(e) => e,
        }
    }
}

async fn auth_token(auth: &Auth) -> Result<Option<AccessToken>> {
    match &auth.kind {
        AuthKind::Source { source, .. } => source.token().await.map(Some),
        _ => Ok(None),
    }
}

/// Decides whether and how long to wait before retrying, or `None` to give up.
fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    started: tokio::time::Instant,
    err: &Error,
) -> Option<Duration> {
    if attempt >= policy.get_max_attempts() {
        return None;
    }
    let delay = match err.retry_after() {
        Some(after) if after > policy.get_max_retry_after() => return None,
        Some(after) => after,
        None => policy.backoff(attempt),
    };
    if let Some(budget) = policy.get_budget()
        && started.elapsed() + delay > budget
    {
        return None;
    }
    Some(delay)
}

struct Attempt<'a> {
    inner: &'a ClientInner,
    method: Method,
    url: &'a Url,
    headers: &'a [(HeaderName, HeaderValue)],
    body: Option<&'a Body>,
    timeout: Option<Duration>,
    idempotency: Idempotency,
    streaming: bool,
}

impl Attempt<'_> {
    async fn run(
        &self,
        auth: &Auth,
        token: Option<&AccessToken>,
    ) -> std::result::Result<Sent, Failure> {
        let mut req = self
            .inner
            .http
            .request(self.method.to_reqwest(), self.url.clone());
        for (name, value) in self.headers {
            req = req.header(name, value);
        }
        req = match (&auth.kind, token) {
            (AuthKind::Basic { username, password }, _) => req.basic_auth(
                username.expose_secret(),
                password.as_ref().map(|p| p.expose_secret()),
            ),
            (
                AuthKind::Header {
                    name,
                    prefix,
                    value,
                },
                _,
            ) => req.header(name, secret_header(prefix, value).map_err(Failure::Final)?),
            (AuthKind::Source { scheme, .. }, Some(token)) => req.header(
                header::AUTHORIZATION,
                secret_header(&format!("{scheme} "), token.secret()).map_err(Failure::Final)?,
            ),
            _ => req,
        };
        if let Some(Body::Bytes {
            bytes,
            content_type,
        }) = self.body
        {
            req = req
                .header(header::CONTENT_TYPE, content_type.as_str())
                .body(bytes.clone());
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(e)),
        };
        let status = resp.status().as_u16();
        tracing::Span::current().record("status", status);
        tracing::debug!(status, "reply received");
        let headers = Headers {
            map: resp.headers().clone(),
        };
        if let Some(source) = auth.source() {
            source.observe_response(&headers);
        }
        let success = (200..300).contains(&status);
        if success && self.streaming {
            let stream = resp.bytes_stream().map(|chunk| {
                chunk.map_err(|e| classify_reqwest(&e, "the download broke off").with_source(e))
            });
            return Ok(Sent::Streaming(StreamingResponse {
                status,
                headers,
                stream: Box::pin(stream),
            }));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport_failure(e)),
        };
        let response = Response {
            status,
            headers,
            body,
        };
        let vendor = self
            .inner
            .error_decoder
            .as_ref()
            .and_then(|decode| decode(&response));
        if success && vendor.is_none() {
            return Ok(Sent::Full(response));
        }
        Err(self.status_failure(response, vendor))
    }

    /// Classifies a successful reply that could not be read: like a broken connection, it is
    /// worth another attempt only when the request is safe to repeat.
    fn undecodable(&self, err: Error) -> Failure {
        if self.idempotency == Idempotency::Idempotent {
            Failure::Retryable(err)
        } else {
            Failure::Final(
                err.with_kind(ErrorKind::AmbiguousOutcome)
                    .with_retryable(false)
                    .append_message(
                        "the server accepted the request but its reply is unreadable; the \
                         request is not safe to repeat, so it was not re-sent",
                    ),
            )
        }
    }

    /// Classifies an error raised before a complete reply arrived.
    fn transport_failure(&self, e: reqwest::Error) -> Failure {
        let never_sent = e.is_connect();
        let what = format!(
            "{} {}",
            self.method,
            redact_url(self.url).trim_end_matches('/')
        );
        let err = classify_reqwest(&e, &what).with_source(e);
        if never_sent || self.idempotency == Idempotency::Idempotent {
            Failure::Retryable(err)
        } else {
            Failure::Final(ambiguous(err))
        }
    }

    /// Builds the error for a reply with an error status (or a vendor error on 2xx).
    fn status_failure(&self, response: Response, vendor: Option<VendorError>) -> Failure {
        let status = response.status;
        let retry_after = response
            .headers
            .get("retry-after")
            .and_then(|v| parse_retry_after(v, crate::clock::wall_now()));
        let vendor = vendor.unwrap_or_default();
        let stale_token = vendor.stale_token.unwrap_or(true);
        let kind = vendor.kind.unwrap_or(match status {
            401 | 403 => ErrorKind::Auth,
            429 => ErrorKind::RateLimited,
            408 | 504 => ErrorKind::Timeout,
            _ => ErrorKind::Http,
        });
        let mut err = Error::new(
            kind,
            format!(
                "{} {} was refused",
                self.method,
                redact_url(self.url).trim_end_matches('/')
            ),
        )
        .with_status(status)
        .with_vendor(vendor.code, vendor.message)
        .with_body(&response.body)
        .with_retry_after(retry_after);
        if let Some(details) = vendor.details {
            err = err.with_details(details);
        }
        // A 401 may be cured by a fresh token, unless the vendor's error says otherwise.
        if status == 401 && stale_token {
            return Failure::Unauthorized(err);
        }
        if let Some(retryable) = vendor.retryable {
            err = err.with_retryable(retryable);
            if !retryable {
                return Failure::Final(err);
            }
        }
        let throttled = kind == ErrorKind::RateLimited;
        let transient = throttled || (kind != ErrorKind::Auth && is_retryable_status(status));
        match self.idempotency {
            // A throttled request was refused before any work was done: safe to repeat.
            _ if throttled => Failure::Retryable(err),
            Idempotency::Idempotent if transient => Failure::Retryable(err),
            // A server error on a request that is not safe to repeat leaves its outcome unknown.
            Idempotency::NonIdempotent if status >= 500 => Failure::Final(ambiguous(err)),
            _ => Failure::Final(err),
        }
    }
}

fn ambiguous(err: Error) -> Error {
    err.with_kind(ErrorKind::AmbiguousOutcome)
        .with_retryable(false)
        .append_message(
            "the request is not safe to repeat and may have been applied, so it was not re-sent",
        )
}

fn classify_reqwest(e: &reqwest::Error, what: &str) -> Error {
    if e.is_timeout() {
        Error::new(ErrorKind::Timeout, format!("{what}: timed out"))
    } else if e.is_connect() {
        Error::new(ErrorKind::Transport, format!("{what}: could not connect"))
    } else if e.is_body() || e.is_decode() {
        Error::new(
            ErrorKind::Transport,
            format!("{what}: the body was cut off"),
        )
    } else {
        Error::new(
            ErrorKind::Transport,
            format!("{what}: the connection broke"),
        )
    }
}
