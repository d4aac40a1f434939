//! Server-side limits: a request rate and a number of requests in flight per credential, beyond
//! which the simulator answers 429 with `Retry-After` in the vendor's reply shape.
//!
//! Refusals are counted under the named counters `limits.refused`, `limits.refused.rate` and
//! `limits.refused.concurrency`. In [count-only mode](ServerLimits::count_only) nothing is
//! refused and the same counters tell how many requests a real vendor would have refused.
//!
//! ```
//! use vendor_sim::{ServerLimits, SimBuilder};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sim = SimBuilder::new("generic")
//!     .limits(ServerLimits::new().rate(20.0, 5).concurrency(4))
//!     .start(|ctx| vendor_sim::generic::Generic::new(ctx, Default::default()).router())
//!     .await?;
//! assert_eq!(sim.counters().get("limits.refused"), 0);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::server::SimContext;

/// The reply to a refused request: its content type and body.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitReply {
    content_type: String,
    body: String,
}

impl LimitReply {
    /// A reply with this content type and body.
    pub fn new(content_type: &str, body: &str) -> Self {
        LimitReply {
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// A plain JSON error (`{"error":"too_many_requests",...}`), for vendors whose throttle
    /// body is not documented.
    pub fn generic() -> Self {
        LimitReply::new(
            "application/json",
            r#"{"error":"too_many_requests","message":"Rate limit exceeded"}"#,
        )
    }

    /// ChakraHQ's `{_data, _meta, _errors}` envelope with one error. The vendor's rate-limit
    /// page could not be read: the code and message are assumed; the envelope is documented.
    pub fn chakra() -> Self {
        LimitReply::new(
            "application/json",
            r#"{"_data":null,"_meta":{},"_errors":[{"code":"TOO_MANY_REQUESTS","message":"Rate limit exceeded, retry later"}]}"#,
        )
    }

    /// Zoho Creator's `{code, message}` error shape. The code of a general API throttle is not
    /// documented; 2955 is the documented bulk-read creation throttle, used here as the closest.
    pub fn zoho() -> Self {
        LimitReply::new(
            "application/json",
            r#"{"code":2955,"message":"Too many requests; try again later"}"#,
        )
    }
}

/// Limits enforced per credential (the `Authorization` header's value; requests without one
/// share one budget).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ServerLimits {
    rate: Option<(f64, u32)>,
    concurrency: Option<usize>,
    count_only: bool,
    reply: LimitReply,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::new()
    }
}

impl ServerLimits {
    /// No limits yet, the [generic](LimitReply::generic) reply.
    pub fn new() -> Self {
        ServerLimits {
            rate: None,
            concurrency: None,
            count_only: false,
            reply: LimitReply::generic(),
        }
    }

    /// At most `per_second` requests a second on average, `burst` at once after a quiet spell
    /// (GCRA on Tokio's clock).
    pub fn rate(mut self, per_second: f64, burst: u32) -> Self {
        if per_second.is_finite() && per_second > 0.0 {
            self.rate = Some((per_second, burst.max(1)));
        }
        self
    }

    /// At most `n` requests in flight.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Refuses nothing; only counts the requests that would have been refused.
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// The reply to a refused request.
    pub fn reply(mut self, reply: LimitReply) -> Self {
        self.reply = reply;
        self
    }
}

#[derive(Default)]
struct Credential {
    /// GCRA: the theoretical arrival time of the next request.
    tat: Option<Instant>,
    in_flight: usize,
}

/// The limits and their per-credential state.
#[derive(Clone)]
pub(crate) struct LimitState {
    limits: Arc<ServerLimits>,
    credentials: Arc<Mutex<HashMap<String, Credential>>>,
    ctx: SimContext,
}

impl LimitState {
    pub(crate) fn new(limits: ServerLimits, ctx: SimContext) -> Self {
        LimitState {
            limits: Arc::new(limits),
            credentials: Arc::default(),
            ctx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Credential>> {
        self.credentials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a request now, or says how long until it would be admitted.
    fn admit(&self, key: &str) -> Result<(), (Duration, &'static str)> {
        let now = Instant::now();
        let mut creds = self.lock();
        let cred = creds.entry(key.to_owned()).or_default();
        if let Some(max) = self.limits.concurrency
            && cred.in_flight >= max
        {
            return Err((Duration::from_secs(1), "concurrency"));
        }
        if let Some((per_second, burst)) = self.limits.rate {
            let interval = Duration::from_secs_f64(1.0 / per_second);
            let tolerance = interval * (burst - 1);
            let tat = cred.tat.map_or(now, |t| t.max(now));
            let allowed_at = tat.checked_sub(tolerance).unwrap_or(now);
            if allowed_at > now {
                return Err((allowed_at - now, "rate"));
            }
            cred.tat = Some(tat + interval);
        }
        cred.in_flight += 1;
        Ok(())
    }

    fn release(&self, key: &str) {
        if let Some(cred) = self.lock().get_mut(key) {
            cred.in_flight = cred.in_flight.saturating_sub(1);
        }
    }
}

/// Gives a request's in-flight slot back when the handler is done (or dropped).
struct Slot<'a> {
    state: &'a LimitState,
    key: &'a str,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.state.release(self.key);
    }
}

/// The middleware that applies the limits.
pub(crate) async fn limit_layer(
    State(state): State<LimitState>,
    request: Request,
    next: Next,
) -> Response {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    match state.admit(&key) {
        Ok(()) => {
            let _slot = Slot {
                state: &state,
                key: &key,
            };
            next.run(request).await
        }
        Err((wait, why)) => {
            let counters = &state.ctx.counters;
            if state.limits.count_only {
                counters.incr("limits.would_refuse");
                counters.incr(&format!("limits.would_refuse.{why}"));
                return next.run(request).await;
            }
            counters.incr("limits.refused");
            counters.incr(&format!("limits.refused.{why}"));
            // Delay-seconds, as vendors send them: whole seconds, rounded up.
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let reply = &state.limits.reply;
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                Body::from(reply.body.clone()),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::fault::Faults;

    fn state(limits: ServerLimits) -> LimitState {
        LimitState::new(
            limits,
            SimContext {
                counters: Counters::default(),
                faults: Faults::new(0, Vec::new()),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_per_credential_with_a_burst() {
        let s = state(ServerLimits::new().rate(10.0, 2));
        assert!(s.admit("a").is_ok());
        assert!(s.admit("a").is_ok());
        let Err((wait, why)) = s.admit("a") else {
            panic!("the third request in a burst of two was admitted");
        };
        assert_eq!((wait, why), (Duration::from_millis(100), "rate"));
        assert!(
            s.admit("b").is_ok(),
            "another credential has its own budget"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(s.admit("a").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_limit_frees_slots_as_requests_end() {
        let s = state(ServerLimits::new().concurrency(1));
        assert!(s.admit("a").is_ok());
        assert_eq!(s.admit("a"), Err((Duration::from_secs(1), "concurrency")));
        s.release("a");
        assert!(s.admit("a").is_ok());
    }
}
