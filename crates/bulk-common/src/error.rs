//! The one error type of every bulk-API client in this workspace.
//!
//! [`Error`] is opaque: callers ask it questions ([`Error::kind`], [`Error::is_retryable`],
//! [`Error::status`], [`Error::vendor_code`], [`Error::retry_after`], ...) instead of matching on
//! its insides, so new context can be added without breaking anyone. Vendor crates build errors
//! through [`Error::new`] and the `with_*` methods.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// More kinds may be added in later minor releases, so a `match` needs a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A builder or configuration value is missing or wrong (empty credential, bad URL, `http://`
    /// to a remote host, ...). Fix the configuration; retrying cannot help.
    Config,
    /// Input given to an operation was refused before anything was sent (or the vendor refused
    /// it as invalid). The error's details name the offending items.
    InvalidInput,
    /// The vendor refused the credentials (HTTP 401/403, a refused token refresh, ...).
    Auth,
    /// The vendor throttled the request. [`Error::retry_after`] tells how long to wait, if known.
    RateLimited,
    /// A quota that does not reset soon (for example a daily API limit) is exhausted.
    QuotaExceeded,
    /// The vendor answered with an HTTP error status not covered by a more specific kind.
    Http,
    /// The request did not complete in time (connect, read or total timeout).
    Timeout,
    /// The connection failed or broke (refused, reset, TLS, DNS).
    Transport,
    /// The vendor's reply could not be decoded (bad JSON, unexpected shape, broken archive).
    Decode,
    /// The vendor ran the job and reports that it failed or was rejected.
    JobFailed,
    /// A poll loop or operation reached its deadline before the job finished.
    DeadlineExceeded,
    /// The caller cancelled the operation.
    Cancelled,
    /// A request that is not safe to repeat may or may not have been applied by the vendor (the
    /// connection broke after it was sent). It was not re-sent; reconcile before retrying.
    AmbiguousOutcome,
    /// A local storage operation (for example the token file store) failed.
    Storage,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Config => "invalid configuration",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Auth => "authentication failed",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Http => "HTTP error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Transport => "connection error",
            ErrorKind::Decode => "could not decode the response",
            ErrorKind::JobFailed => "job failed",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::AmbiguousOutcome => "outcome unknown",
            ErrorKind::Storage => "storage error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error of every operation in this workspace.
///
/// It is cheap to clone (the source is shared) so that one failed token refresh can be handed
/// to every caller that waited for it. It never contains a secret: messages are written by this
/// workspace, and response bodies are kept only as a short excerpt of the vendor's error reply.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    vendor_code: Option<String>,
    vendor_message: Option<String>,
    body_excerpt: Option<String>,
    retry_after: Option<Duration>,
    details: Option<serde_json::Value>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
    retryable: Option<bool>,
}

/// How many characters of a vendor's error body an [`Error`] keeps.
pub const BODY_EXCERPT_CHARS: usize = 512;

impl Error {
    /// Creates an error of `kind` with a message saying what was being done and what failed.
    ///
    /// Meant for vendor crates; applications normally only inspect errors.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                status: None,
                vendor_code: None,
                vendor_message: None,
                body_excerpt: None,
                retry_after: None,
                details: None,
                source: None,
                retryable: None,
            }),
        }
    }

    /// Shorthand for [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Decode`] with the decoder's error as source.
    pub fn decode(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Decode, message).with_source(source)
    }

    /// Attaches the underlying cause. It is reachable through [`std::error::Error::source`] and is
    /// not repeated by `Display`.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Records the HTTP status of the vendor's reply.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Records the vendor's own error code and message.
    pub fn with_vendor(mut self, code: Option<String>, message: Option<String>) -> Self {
        self.inner.vendor_code = code;
        self.inner.vendor_message = message;
        self
    }

    /// Keeps a short excerpt of the vendor's reply body (at most [`BODY_EXCERPT_CHARS`]).
    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.inner.body_excerpt = Some(excerpt(body));
        self
    }

    /// Records how long the vendor asked the caller to wait.
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.inner.retry_after = delay;
        self
    }

    /// Attaches structured details (per-item problems, the vendor's `info` object, ...).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.inner.details = Some(details);
        self
    }

    /// Overrides whether [`Error::is_retryable`] answers yes, when the kind alone does not say.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = Some(retryable);
        self
    }

    /// Changes the kind, keeping every other field (used when a lower layer's error gets a
    /// more precise meaning higher up, such as a transport error on a request that may have been
    /// applied becoming [`ErrorKind::AmbiguousOutcome`]).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    /// Prefixes the message with what was being attempted.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.inner.message = format!("{what}: {}", self.inner.message);
        self
    }

    pub(crate) fn append_message(mut self, more: &str) -> Self {
        self.inner.message = format!("{}; {more}", self.inner.message);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, without the kind prefix that `Display` adds.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status of the vendor's reply, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The vendor's own error code, if the reply carried one.
    pub fn vendor_code(&self) -> Option<&str> {
        self.inner.vendor_code.as_deref()
    }

    /// The vendor's own error message, if the reply carried one.
    pub fn vendor_message(&self) -> Option<&str> {
        self.inner.vendor_message.as_deref()
    }

    /// The start of the vendor's reply body, for diagnosis.
    pub fn body_excerpt(&self) -> Option<&str> {
        self.inner.body_excerpt.as_deref()
    }

    /// How long the vendor asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Structured details, such as per-item validation problems or a failed job's info.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.inner.details.as_ref()
    }

    /// Whether trying the same operation again later may succeed.
    ///
    /// Throttling, timeouts, broken connections and 5xx replies are retryable; invalid input,
    /// refused credentials, exhausted quotas, failed jobs and ambiguous outcomes are not.
    pub fn is_retryable(&self) -> bool {
        if let Some(explicit) = self.inner.retryable {
            return explicit;
        }
        match self.inner.kind {
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Transport => true,
            ErrorKind::Http => matches!(self.inner.status, Some(408 | 500..=599)),
            _ => false,
        }
    }

    /// What the reader can do next, in a few words (`Display` ends with it), or `None` when the
    /// message already says all there is (a failed job, a cancellation).
    pub fn hint(&self) -> Option<&'static str> {
        let inner = &self.inner;
        Some(match inner.kind {
            ErrorKind::Config => "fix the configuration and run again",
            ErrorKind::InvalidInput => "fix the input and run again",
            ErrorKind::Auth => "check the credentials and what they are allowed to do",
            ErrorKind::RateLimited => "wait a while and run again",
            ErrorKind::QuotaExceeded => "wait until the vendor's quota resets, then run again",
            ErrorKind::Http => match inner.status {
                Some(404) => "check the names and ids in the request",
                Some(500..=599) => "the server failed; try again later",
                _ => return None,
            },
            ErrorKind::Timeout | ErrorKind::Transport => {
                "check the network and the server's status, then try again"
            }
            ErrorKind::Decode => {
                "the reply was not understood; try again later, and report it if it persists"
            }
            ErrorKind::DeadlineExceeded => "the job may still finish: wait longer, or resume it",
            ErrorKind::AmbiguousOutcome => {
                "check whether the server applied it before sending it again"
            }
            ErrorKind::Storage => "check the file or store named above",
            _ => return None,
        })
    }

    /// Whether this is [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether this is [`ErrorKind::Auth`].
    pub fn is_auth(&self) -> bool {
        self.inner.kind == ErrorKind::Auth
    }

    /// Whether this is [`ErrorKind::RateLimited`].
    pub fn is_rate_limited(&self) -> bool {
        self.inner.kind == ErrorKind::RateLimited
    }

    /// Whether this is [`ErrorKind::AmbiguousOutcome`].
    pub fn is_ambiguous(&self) -> bool {
        self.inner.kind == ErrorKind::AmbiguousOutcome
    }

    /// Whether this is [`ErrorKind::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.inner.kind == ErrorKind::Cancelled
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        write!(f, "{}: {}", inner.kind, inner.message)?;
        if let Some(status) = inner.status {
            write!(f, " (HTTP {status}")?;
            if let Some(code) = &inner.vendor_code {
                write!(f, ", code {code}")?;
            }
            f.write_str(")")?;
        } else if let Some(code) = &inner.vendor_code {
            write!(f, " (code {code})")?;
        }
        if let Some(msg) = &inner.vendor_message {
            write!(f, ": {msg}")?;
        } else if let Some(answer) = inner.body_excerpt.as_deref().and_then(answer_excerpt) {
            write!(f, "; the server answered: {answer}")?;
        }
        if let Some(delay) = inner.retry_after {
            write!(f, "; retry after {} s", delay.as_secs_f64())?;
        }
        if let Some(hint) = self.hint() {
            write!(f, ". Next: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &inner.kind)
            .field("message", &inner.message);
        if let Some(s) = inner.status {
            d.field("status", &s);
        }
        if let Some(c) = &inner.vendor_code {
            d.field("vendor_code", c);
        }
        if let Some(m) = &inner.vendor_message {
            d.field("vendor_message", m);
        }
        if let Some(r) = inner.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(b) = &inner.body_excerpt {
            d.field("body_excerpt", b);
        }
        if let Some(x) = &inner.details {
            d.field("details", x);
        }
        if let Some(s) = &inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn StdError + 'static))
    }
}

/// How many characters of a reply `Display` quotes.
const ANSWER_CHARS: usize = 100;

/// The start of a reply for `Display`: whitespace and control characters collapsed, quoted,
/// at most [`ANSWER_CHARS`] characters; `None` for an empty reply.
fn answer_excerpt(body: &str) -> Option<String> {
    let words: Vec<&str> = body
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let text = words.join(" ");
    let mut out: String = text.chars().take(ANSWER_CHARS).collect();
    if text.chars().nth(ANSWER_CHARS).is_some() {
        out.push('…');
    }
    Some(format!("{out:?}"))
}

/// The first [`BODY_EXCERPT_CHARS`] characters of a body, lossily decoded.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
    if text.chars().nth(BODY_EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_status_and_vendor_code_without_source() {
        let io = std::io::Error::other("socket closed");
        let err = Error::new(ErrorKind::Http, "creating job")
            .with_status(422)
            .with_vendor(Some("1006".into()), Some("bad selection".into()))
            .with_source(io);
        assert_eq!(
            err.to_string(),
            "HTTP error: creating job (HTTP 422, code 1006): bad selection"
        );
        assert!(err.hint().is_none());
        assert!(err.source().is_some());
        assert!(!err.is_retryable());
    }

    #[test]
    fn retryability_follows_kind_and_status() {
        assert!(
            Error::new(ErrorKind::Http, "x")
                .with_status(503)
                .is_retryable()
        );
        assert!(
            !Error::new(ErrorKind::Http, "x")
                .with_status(404)
                .is_retryable()
        );
        assert!(Error::new(ErrorKind::RateLimited, "x").is_retryable());
        assert!(!Error::new(ErrorKind::QuotaExceeded, "x").is_retryable());
        assert!(!Error::new(ErrorKind::AmbiguousOutcome, "x").is_retryable());
        assert!(
            !Error::new(ErrorKind::Transport, "x")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn display_quotes_the_reply_and_says_what_to_do_next() {
        let err = Error::new(
            ErrorKind::Decode,
            "reading job 7: the reply is not valid JSON",
        )
        .with_status(200)
        .with_body(b"<html>\n  <body>Service\tunavailable</body>\n</html>");
        assert_eq!(
            err.to_string(),
            "could not decode the response: reading job 7: the reply is not valid JSON \
             (HTTP 200); the server answered: \"<html> <body>Service unavailable</body> </html>\". \
             Next: the reply was not understood; try again later, and report it if it persists"
        );
        let long = "x".repeat(300);
        let err = Error::new(ErrorKind::Http, "GET /v1 was refused")
            .with_status(404)
            .with_body(long.as_bytes());
        let text = err.to_string();
        assert!(
            text.contains(&format!("\"{}…\"", "x".repeat(ANSWER_CHARS))),
            "{text}"
        );
        assert!(text.ends_with("Next: check the names and ids in the request"));
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "é".repeat(BODY_EXCERPT_CHARS * 2);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
