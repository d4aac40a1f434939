//! Requests: the builder, the retry loop, and one attempt on the wire.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio::time::error::Elapsed;
use tracing::Instrument;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::auth::{Auth, AuthKind, auth_token, secret_header};
use crate::http::classify::{Failure, classify_reqwest};
use crate::http::client::{ClientInner, HttpClient, RetryEvent};
use crate::http::response::{Headers, Response, Sent, StreamingResponse, unreachable_streaming};
use crate::retry::{Idempotency, RetryPolicy};
use crate::token::AccessToken;

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
    pub(super) fn new(client: HttpClient, method: Method, path: String) -> Self {
        RequestBuilder {
            client,
            method,
            path,
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
        let path = url.path();
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
                    Some(rate) => Some(rate.acquire(self.method, path).await),
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
                        path,
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

pub(super) struct Attempt<'a> {
    pub(super) inner: &'a ClientInner,
    pub(super) method: Method,
    pub(super) url: &'a Url,
    headers: &'a [(HeaderName, HeaderValue)],
    body: Option<&'a Body>,
    timeout: Option<Duration>,
    pub(super) idempotency: Idempotency,
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
        // The timeouts are kept here rather than in reqwest, which arms up to three timers per
        // request (the whole request, the wait for headers, and one reset per body chunk). When
        // the whole-request deadline comes before the idle one could, which is the default for
        // buffered requests, one timer bounds the whole exchange.
        let started = tokio::time::Instant::now();
        let limits = Limits {
            total: self.timeout.map(|t| started + t),
            idle: self.inner.options.read_timeout,
        };
        let whole = limits
            .total
            .filter(|deadline| *deadline <= started + limits.idle);
        // Boxed: the exchange holds reqwest's futures, and a caller's future embeds this one.
        let exchange = Box::pin(self.exchange(req, limits, started, whole.is_none()));
        let exchanged = match whole {
            Some(deadline) => match tokio::time::timeout_at(deadline, exchange).await {
                Ok(exchanged) => exchanged,
                Err(elapsed) => Err(Exchange::TimedOut(elapsed)),
            },
            None => exchange.await,
        };
        let (status, headers, body) = match exchanged {
            Ok(parts) => parts,
            Err(Exchange::Failed(e)) => return Err(self.transport_failure(e)),
            Err(Exchange::TimedOut(elapsed)) => return Err(self.timeout_failure(elapsed)),
        };
        let headers = Headers { map: headers };
        if let Some(source) = auth.source() {
            source.observe_response(&headers);
        }
        let success = (200..300).contains(&status);
        let body = match body {
            Received::Read(bytes) => bytes,
            Received::Unread(resp) => {
                return Ok(Sent::Streaming(StreamingResponse {
                    status,
                    headers,
                    stream: Box::pin(limited_stream(resp, limits)),
                }));
            }
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
}

/// The deadlines of one attempt.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// When the whole attempt must be over, if it has a whole-request timeout.
    total: Option<Instant>,
    /// The longest silence allowed while waiting for the reply (the idle read timeout).
    idle: Duration,
}

impl Limits {
    /// The deadline of a wait that begins at `from`.
    fn next(&self, from: Instant) -> Instant {
        let idle = from + self.idle;
        match self.total {
            Some(total) if total < idle => total,
            _ => idle,
        }
    }
}

/// Why an exchange ended without a reply.
enum Exchange {
    Failed(reqwest::Error),
    TimedOut(Elapsed),
}

/// A reply's body: read whole, or left for the caller to stream.
enum Received {
    Read(Bytes),
    Unread(reqwest::Response),
}

impl Attempt<'_> {
    /// Sends `req` and reads its reply. With `timed`, every wait is bounded by `limits`;
    /// without, the caller bounds the whole exchange.
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        limits: Limits,
        started: Instant,
        timed: bool,
    ) -> std::result::Result<(u16, HeaderMap, Received), Exchange> {
        let mut resp = within(timed.then(|| limits.next(started)), req.send())
            .await?
            .map_err(Exchange::Failed)?;
        let status = resp.status().as_u16();
        tracing::Span::current().record("status", status);
        tracing::debug!(status, "reply received");
        // Taken rather than cloned: reading the body does not consult them.
        let headers = std::mem::take(resp.headers_mut());
        if self.streaming && (200..300).contains(&status) {
            return Ok((status, headers, Received::Unread(resp)));
        }
        let body = if timed {
            read_body(resp, limits).await?
        } else {
            resp.bytes().await.map_err(Exchange::Failed)?
        };
        Ok((status, headers, Received::Read(body)))
    }
}

/// Awaits `f`, before `deadline` if there is one.
async fn within<F: Future>(
    deadline: Option<Instant>,
    f: F,
) -> std::result::Result<F::Output, Exchange> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, f)
            .await
            .map_err(Exchange::TimedOut),
        None => Ok(f.await),
    }
}

/// Reads a whole body, each chunk within the idle timeout and all of it before the total
/// deadline. A body that arrives in one chunk is returned without a copy.
async fn read_body(
    mut resp: reqwest::Response,
    limits: Limits,
) -> std::result::Result<Bytes, Exchange> {
    let mut single: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(chunk) = within(Some(limits.next(Instant::now())), resp.chunk())
        .await?
        .map_err(Exchange::Failed)?
    {
        match single.take() {
            None if joined.is_empty() => single = Some(chunk),
            Some(first) => {
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&chunk);
            }
            None => joined.extend_from_slice(&chunk),
        }
    }
    Ok(single.unwrap_or_else(|| Bytes::from(joined)))
}

/// A download's chunks, each within the idle timeout and all before the total deadline; a
/// stall ends the stream with an [`ErrorKind::Timeout`] error.
fn limited_stream(
    resp: reqwest::Response,
    limits: Limits,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let chunks = Box::pin(resp.bytes_stream());
    futures::stream::unfold(Some(chunks), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout_at(limits.next(Instant::now()), chunks.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
            Ok(Some(Err(e))) => {
                let err = classify_reqwest(&e, "the download broke off").with_source(e);
                Some((Err(err), Some(chunks)))
            }
            Ok(None) => None,
            Err(elapsed) => {
                let err = Error::new(ErrorKind::Timeout, "the download broke off: timed out")
                    .with_source(elapsed);
                Some((Err(err), None))
            }
        }
    })
}
