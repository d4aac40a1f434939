//! Retry policy: which failures are retried, how long to wait, and when to give up.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::error::{Error, Result};

/// Whether the vendor may safely see a request twice.
///
/// Idempotent requests are retried after any transient failure. A non-idempotent request (job
/// creation, bulk update) is retried only when it surely never reached the server (the connection
/// could not be opened); any later failure becomes [`crate::ErrorKind::AmbiguousOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotency {
    /// Safe to send more than once (reads, PUT, DELETE, token refresh, ...).
    Idempotent,
    /// Not safe to send twice: a duplicate would repeat a side effect.
    NonIdempotent,
}

/// The delay randomisation applied to computed backoff delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// "Full jitter": a uniformly random delay between zero and the computed delay, so that many
    /// clients failing together do not retry together.
    Full,
    /// No randomisation (mostly for tests and reproducible tools).
    None,
}

/// How a client retries transient failures.
///
/// Delays grow exponentially from [`initial_delay`](Self::initial_delay) by
/// [`multiplier`](Self::multiplier), are capped at [`max_delay`](Self::max_delay), and are
/// randomised by [`jitter`](Self::jitter). A vendor's `Retry-After` replaces the computed delay.
/// Retrying stops after [`max_attempts`](Self::max_attempts) attempts in all, or when the next
/// wait would cross the [`budget`](Self::budget) measured from the first attempt; then the last
/// error is returned (with its `retry_after`, for throttling).
///
/// ```
/// use std::time::Duration;
/// use bulk_common::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .max_attempts(8)
///     .initial_delay(Duration::from_millis(200))
///     .budget(Some(Duration::from_secs(60)));
/// assert_eq!(policy.get_max_attempts(), 8);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    jitter: Jitter,
    budget: Option<Duration>,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 500 ms doubling to a 30 s cap with full jitter, a two-minute budget, and
    /// vendor `Retry-After` values honoured up to two minutes.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Full,
            budget: Some(Duration::from_secs(120)),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (one attempt).
    pub fn none() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// Total attempts, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Delay before the first retry, before jitter.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Growth factor between retries (values below 1 are treated as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = sane_multiplier(multiplier);
        self
    }

    /// Upper bound of a computed delay.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Delay randomisation.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Total time allowed for one operation's attempts and waits, or `None` for no limit.
    pub fn budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    /// The longest vendor `Retry-After` this policy waits out; a longer one (a quota reset, say)
    /// ends the retries at once and the error carries the delay for the caller to schedule.
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.max_retry_after = delay;
        self
    }

    /// Total attempts allowed.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The total time budget, if any.
    pub fn get_budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The longest `Retry-After` waited out.
    pub fn get_max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The delay before retry number `retry` (1 for the first retry), before the vendor's
    /// `Retry-After` is considered.
    pub fn backoff(&self, retry: u32) -> Duration {
        let capped = exponential(
            self.initial_delay,
            self.multiplier,
            retry.saturating_sub(1),
            self.max_delay,
        )
        .as_secs_f64();
        let secs = match self.jitter {
            Jitter::None => capped,
            Jitter::Full if capped > 0.0 => rand::rng().random_range(0.0..=capped),
            Jitter::Full => 0.0,
        };
        Duration::from_secs_f64(secs)
    }
}

impl RetryPolicy {
    /// Runs an operation of several requests (a download and its checks, say) under this
    /// policy: `op` is called with the attempt number (1 for the first) until it succeeds, until
    /// `retry_on` says its error is not worth another attempt, or until the policy runs out.
    ///
    /// Between attempts it waits the policy's backoff (with its jitter), or the error's
    /// `Retry-After` when it has one; a `Retry-After` beyond
    /// [`max_retry_after`](Self::max_retry_after) ends the retries at once. It stops after
    /// [`max_attempts`](Self::max_attempts) attempts, or when the next wait would cross the
    /// [`budget`](Self::budget) measured from the first attempt, and returns the last error as
    /// it is. Waits run on Tokio's clock, so paused time in tests skips them.
    ///
    /// Only use it for operations that are safe to repeat: the HTTP client already retries
    /// single requests; this is for a sequence whose outcome is checked as a whole.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bulk_common::{Error, ErrorKind, Jitter, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> bulk_common::Result<()> {
    /// let policy = RetryPolicy::default().max_attempts(4).jitter(Jitter::None);
    /// let archive = policy
    ///     .retry(
    ///         |attempt| async move {
    ///             if attempt < 3 {
    ///                 Err(Error::new(ErrorKind::Transport, "the transfer broke off"))
    ///             } else {
    ///                 Ok("a whole archive")
    ///             }
    ///         },
    ///         Error::is_retryable,
    ///     )
    ///     .await?;
    /// assert_eq!(archive, "a whole archive");
    /// # Ok(()) }
    /// ```
    pub async fn retry<T, F, Fut, C>(&self, mut op: F, mut retry_on: C) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
        C: FnMut(&Error) -> bool,
    {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if attempt >= self.max_attempts || !retry_on(&err) {
                return Err(err);
            }
            let delay = match err.retry_after() {
                Some(wait) if wait > self.max_retry_after => return Err(err),
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            if self
                .budget
                .is_some_and(|budget| started.elapsed() + delay > budget)
            {
                return Err(err);
            }
            tracing::warn!(
                error = %err,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "the operation failed; trying again"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// A growth factor of at least 1 (anything else, NaN included, becomes 1).
pub(crate) fn sane_multiplier(multiplier: f64) -> f64 {
    if multiplier.is_finite() && multiplier >= 1.0 {
        multiplier
    } else {
        1.0
    }
}

/// `initial × multiplier^n`, capped at `cap` (shared by retry backoff and poll intervals).
pub(crate) fn exponential(initial: Duration, multiplier: f64, n: u32, cap: Duration) -> Duration {
    let secs = initial.as_secs_f64() * multiplier.powi(n.min(64) as i32);
    Duration::from_secs_f64(secs.min(cap.as_secs_f64()))
}

/// HTTP statuses retried on idempotent requests: throttling, timeouts and transient server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Parses a `Retry-After` value: delay-seconds (`"3"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        // `try_from`: a delay too large for a `Duration` ("1e300") is no delay we can honour.
        return (secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_grows_and_caps_without_jitter() {
        let p = RetryPolicy::default()
            .jitter(Jitter::None)
            .initial_delay(Duration::from_secs(1))
            .max_delay(Duration::from_secs(5));
        let delays: Vec<u64> = (1..=5).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn full_jitter_stays_below_the_computed_delay() {
        let p = RetryPolicy::default()
            .initial_delay(Duration::from_secs(1))
            .max_delay(Duration::from_secs(4));
        for n in 1..20 {
            assert!(p.backoff(n) <= Duration::from_secs(4));
        }
        assert!(p.backoff(1) <= Duration::from_secs(1));
    }
}
