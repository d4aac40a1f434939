//! Classification: a vendor's reading of its replies, and whether a failed attempt is retried,
//! replayed with a fresh token, or final.

use std::sync::Arc;

use tokio::time::error::Elapsed;

use crate::base_url::redact_url;
use crate::error::{Error, ErrorKind};
use crate::http::request::Attempt;
use crate::http::response::Response;
use crate::retry::{Idempotency, is_retryable_status, parse_retry_after};

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
    /// with no refresh and no replay: for vendors whose token refreshes are scarce (some mint
    /// 10 per 10 minutes) and whose other 401 codes a new token cannot cure.
    pub fn stale_token(mut self, stale: bool) -> Self {
        self.stale_token = Some(stale);
        self
    }
}

/// Reads a vendor's error code and message out of a reply. Called for every reply: returning
/// `Some` for a 2xx reply turns it into an error (for vendors that report failures with HTTP 200).
pub type ErrorDecoder = Arc<dyn Fn(&Response) -> Option<VendorError> + Send + Sync>;

pub(super) enum Failure {
    /// Worth another attempt under the retry policy.
    Retryable(Error),
    /// A 401 that a fresh token may cure.
    Unauthorized(Error),
    /// Final.
    Final(Error),
}

impl Failure {
    pub(super) fn error(&self) -> &Error {
        match self {
            Failure::Retryable(e) | Failure::Unauthorized(e) | Failure::Final(e) => e,
        }
    }
}

impl Attempt<'_> {
    /// Classifies a successful reply that could not be read: like a broken connection, it is
    /// worth another attempt only when the request is safe to repeat.
    pub(super) fn undecodable(&self, err: Error) -> Failure {
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
    pub(super) fn transport_failure(&self, e: reqwest::Error) -> Failure {
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

    /// Classifies an attempt whose reply did not arrive in time: like a broken connection, it
    /// is worth another attempt only when the request is safe to repeat.
    pub(super) fn timeout_failure(&self, elapsed: Elapsed) -> Failure {
        let err = Error::new(
            ErrorKind::Timeout,
            format!(
                "{} {}: timed out",
                self.method,
                redact_url(self.url).trim_end_matches('/')
            ),
        )
        .with_source(elapsed);
        if self.idempotency == Idempotency::Idempotent {
            Failure::Retryable(err)
        } else {
            Failure::Final(ambiguous(err))
        }
    }

    /// Builds the error for a reply with an error status (or a vendor error on 2xx).
    pub(super) fn status_failure(
        &self,
        response: Response,
        vendor: Option<VendorError>,
    ) -> Failure {
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

pub(super) fn classify_reqwest(e: &reqwest::Error, what: &str) -> Error {
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
