//! Seeded fault injection in front of every simulated route.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::server::{ConnectionKill, SimContext};

/// A failure the simulator can inject.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429 with an optional `Retry-After` value (seconds or an HTTP date), handler not run.
    TooManyRequests {
        /// The `Retry-After` header value, if any.
        retry_after: Option<String>,
    },
    /// This HTTP status with a small JSON body, handler not run.
    Status(u16),
    /// The connection is dropped before the handler runs: nothing was applied.
    ResetBeforeHandler,
    /// The handler runs (its effects stay), then the connection is dropped without a reply.
    ResetAfterHandler,
    /// The reply is delayed this long (on Tokio's clock), then the handler runs normally.
    Delay(Duration),
    /// The handler runs, and its reply body is replaced by broken JSON (status kept).
    MalformedBody,
    /// The handler runs, and its reply body stops half-way with a broken connection.
    TruncatedBody,
    /// The handler runs, and its reply is sent complete and well-formed as HTTP, but with only
    /// the first half of its body (`Content-Length` says so): the transfer succeeds, the
    /// content (a ZIP archive, a JSON document) is cut off.
    CutBody,
    /// HTTP 200 with an HTML page (a proxy's or captive portal's), handler not run: a reply
    /// with a success status that is not the API's.
    HtmlPage,
}

/// Which requests a rule fires on, among those that match it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Schedule {
    /// Every matching request.
    Always,
    /// The next `n` matching requests.
    Times(u32),
    /// Only the `n`-th matching request (1 for the first).
    Nth(u32),
    /// Each matching request with this probability, drawn from the plan's seeded generator.
    Probability(f64),
}

/// A fault, the requests it applies to, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    fault: Fault,
    method: Option<String>,
    path: Option<String>,
    schedule: Schedule,
}

impl FaultRule {
    /// A rule that injects `fault` into every request.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            method: None,
            path: None,
            schedule: Schedule::Always,
        }
    }

    /// Only requests with this method (`"POST"`).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose route template (`/jobs/{id}`) or path (`/jobs/7`) equals `path`, or
    /// starts with it when it ends in `*`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.schedule = Schedule::Times(n);
        self
    }

    /// Only the `n`-th matching request.
    pub fn nth(mut self, n: u32) -> Self {
        self.schedule = Schedule::Nth(n);
        self
    }

    /// Each matching request with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.schedule = Schedule::Probability(p);
        self
    }

    fn matches(&self, method: &str, template: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        match &self.path {
            None => true,
            Some(p) => match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix) || template.starts_with(prefix),
                None => p == path || p == template,
            },
        }
    }
}

struct ActiveRule {
    rule: FaultRule,
    seen: u32,
    fired: u32,
}

struct PlanState {
    rules: Vec<ActiveRule>,
    rng: StdRng,
}

/// The live fault plan of a simulator: deterministic for a given seed and request order.
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<PlanState>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_list()
            .entries(st.rules.iter().map(|r| &r.rule))
            .finish()
    }
}

impl Faults {
    pub(crate) fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        let faults = Faults {
            state: Arc::new(Mutex::new(PlanState {
                rules: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
            })),
        };
        for r in rules {
            faults.push(r);
        }
        faults
    }

    fn lock(&self) -> MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule while the server runs. Rules are tried in the order added; the first that
    /// fires wins.
    pub fn push(&self, rule: FaultRule) {
        self.lock().rules.push(ActiveRule {
            rule,
            seen: 0,
            fired: 0,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many faults have been injected so far.
    pub fn injected(&self) -> u32 {
        self.lock().rules.iter().map(|r| r.fired).sum()
    }

    /// Picks the fault for one request, if any. Every matching rule counts the request (so
    /// `nth(2)` means the second matching request, whatever earlier rules did with the first);
    /// the first rule that fires wins.
    pub fn pick(&self, method: &str, template: &str, path: &str) -> Option<Fault> {
        let mut st = self.lock();
        let PlanState { rules, rng } = &mut *st;
        let mut chosen = None;
        for active in rules.iter_mut() {
            if !active.rule.matches(method, template, path) {
                continue;
            }
            active.seen += 1;
            if chosen.is_some() {
                continue;
            }
            let fire = match active.rule.schedule {
                Schedule::Always => true,
                Schedule::Times(n) => active.fired < n,
                Schedule::Nth(n) => active.seen == n,
                Schedule::Probability(p) => rng.random_bool(p.clamp(0.0, 1.0)),
            };
            if fire {
                active.fired += 1;
                chosen = Some(active.rule.fault.clone());
            }
        }
        chosen
    }
}

/// The middleware that counts every request and injects the planned faults.
pub(crate) async fn fault_layer(
    State(ctx): State<SimContext>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let route = format!("{method} {template}");
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    let fault = ctx.faults.pick(&method, &template, &path);
    ctx.counters.route(&route, |c| {
        c.received += 1;
        if fault.is_some() {
            c.faulted += 1;
        }
    });
    let Some(fault) = fault else {
        ctx.counters.route(&route, |c| c.handled += 1);
        return next.run(request).await;
    };
    tracing::debug!(%route, ?fault, "injecting fault");
    let handled = |ctx: &SimContext| ctx.counters.route(&route, |c| c.handled += 1);
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"error":"too_many_requests","message":"Simulated throttle"}"#,
            )
                .into_response();
            if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::Status(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"error":"simulated","status":{status}}}"#),
        )
            .into_response(),
        Fault::ResetBeforeHandler => reset(kill).await,
        Fault::ResetAfterHandler => {
            handled(&ctx);
            drop(next.run(request).await);
            reset(kill).await
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            handled(&ctx);
            next.run(request).await
        }
        Fault::MalformedBody => {
            handled(&ctx);
            let resp = next.run(request).await;
            let (mut parts, _) = resp.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(r#"{"truncated": [1, 2,"#))
        }
        Fault::HtmlPage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\n<body><h1>We'll be \
             back soon</h1></body></html>\n",
        )
            .into_response(),
        Fault::TruncatedBody => {
            handled(&ctx);
            let (mut parts, bytes) = buffered(next.run(request).await).await;
            let half = bytes.slice(..bytes.len() / 2);
            // Announce the full length, so the client can tell the body was cut short.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            // The pause lets the first half reach the client before the connection breaks.
            let chunks = futures::stream::iter([Ok::<Bytes, std::io::Error>(half)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(std::io::Error::other("simulated truncation"))
                }),
            );
            Response::from_parts(parts, Body::from_stream(chunks))
        }
        Fault::CutBody => {
            handled(&ctx);
            let (mut parts, bytes) = buffered(next.run(request).await).await;
            let half = bytes.slice(..bytes.len() / 2);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(half.len()));
            Response::from_parts(parts, Body::from(half))
        }
    }
}

async fn reset(kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(kill) => {
            kill.kill();
            // The connection task drops the connection; this reply is never written.
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A reply's head and its whole body (empty if the handler's body fails).
async fn buffered(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}
