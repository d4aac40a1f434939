//! Waiting for vendor jobs: one driver for every vendor.
//!
//! A vendor crate implements [`Job`] ("look at the job once"); [`Wait`] does the rest: growing
//! intervals up to a cap, earlier looks when progress predicts an earlier finish, a deadline,
//! cancellation, progress events, and tolerance for a few transient polling errors.
//!
//! ```
//! use std::time::Duration;
//! use bulk_common::poll::{Job, JobState, PollPolicy, Progress, Wait};
//!
//! struct Countdown(std::sync::atomic::AtomicU64);
//!
//! impl Job for Countdown {
//!     type Output = &'static str;
//!     async fn poll(&self) -> bulk_common::Result<JobState<Self::Output>> {
//!         let left = self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
//!         Ok(if left <= 1 {
//!             JobState::Done("finished")
//!         } else {
//!             JobState::Pending(Progress::new().total(3).remaining(left - 1))
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> bulk_common::Result<()> {
//! let job = Countdown(3.into());
//! let policy = PollPolicy::default().deadline(Some(Duration::from_secs(600)));
//! let out = Wait::new(&job)
//!     .policy(policy)
//!     .on_progress(|e| eprintln!("{:?} after {} polls", e.progress.remaining, e.polls))
//!     .run()
//!     .await?;
//! assert_eq!(out, "finished");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};

/// What one look at a job found.
#[derive(Debug, Clone)]
pub enum JobState<T> {
    /// Still running.
    Pending(Progress),
    /// Finished successfully with this output.
    Done(T),
    /// Finished unsuccessfully (failed or rejected by the vendor).
    Failed(JobFailure),
}

/// How far a job has come, as far as the vendor tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Items in the job, if known.
    pub total: Option<u64>,
    /// Items still to do, if known.
    pub remaining: Option<u64>,
    /// The vendor's status text (`queued`, `In-progress`, ...).
    pub status: Option<String>,
    /// When the vendor suggests looking again.
    pub next_poll_hint: Option<Duration>,
}

impl Progress {
    /// No information.
    pub fn new() -> Self {
        Progress::default()
    }

    /// Sets the total item count.
    pub fn total(mut self, total: u64) -> Self {
        self.total = Some(total);
        self
    }

    /// Sets the remaining item count.
    pub fn remaining(mut self, remaining: u64) -> Self {
        self.remaining = Some(remaining);
        self
    }

    /// Sets the vendor's status text.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Sets the vendor's hint for the next look.
    pub fn next_poll_hint(mut self, hint: Duration) -> Self {
        self.next_poll_hint = Some(hint);
        self
    }

    /// Items done, when both counts are known.
    pub fn done(&self) -> Option<u64> {
        Some(self.total?.saturating_sub(self.remaining?))
    }
}

/// Why a job failed, as the vendor reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobFailure {
    /// The vendor's explanation.
    pub message: String,
    /// The vendor's status or error code, if any.
    pub code: Option<String>,
    /// Everything else the vendor said (info objects, per-item errors).
    pub details: Option<serde_json::Value>,
}

impl JobFailure {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        JobFailure {
            message: message.into(),
            code: None,
            details: None,
        }
    }

    /// Sets the vendor's code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets structured details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The [`ErrorKind::JobFailed`] error for this failure.
    pub fn into_error(self, job: &str) -> Error {
        let mut err = Error::new(ErrorKind::JobFailed, format!("job {job} failed"))
            .with_vendor(self.code, Some(self.message).filter(|m| !m.is_empty()));
        if let Some(d) = self.details {
            err = err.with_details(d);
        }
        err
    }
}

/// One look at a vendor job. Vendor job handles implement this (and are `Serialize` +
/// `Deserialize`, so a process can resume waiting on a job started by an earlier one).
pub trait Job: Send + Sync {
    /// What a finished job yields.
    type Output: Send;

    /// Looks at the job once.
    fn poll(&self) -> impl Future<Output = Result<JobState<Self::Output>>> + Send;

    /// A short name for logs and errors (the job id).
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }
}

/// When to look at a job, and for how long.
///
/// Delays start at [`first_delay`](Self::first_delay) and grow by
/// [`multiplier`](Self::multiplier) up to [`max_delay`](Self::max_delay). When progress (total
/// and remaining items) predicts the finish, the next look is at the predicted finish (never
/// sooner than [`min_delay`](Self::min_delay)), however far the growing delay would have been;
/// a prediction may push the look beyond the growing delay by at most
/// [`eta_lookahead`](Self::eta_lookahead) times the time progress has been watched, so a wrong
/// early estimate costs little. A vendor hint sets the next delay outright. The wait ends with
/// [`ErrorKind::DeadlineExceeded`] at the [`deadline`](Self::deadline), after one last look.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PollPolicy {
    first_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    min_delay: Duration,
    deadline: Option<Duration>,
    max_consecutive_errors: u32,
    eta_lookahead: f64,
}

impl Default for PollPolicy {
    /// First look after 1 s, ×1.5 per look up to 30 s, never closer than 250 ms, a one-hour
    /// deadline, up to 3 transient polling errors in a row tolerated, and a predicted finish
    /// trusted up to twice as far ahead as progress has been watched.
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_secs(1),
            multiplier: 1.5,
            max_delay: Duration::from_secs(30),
            min_delay: Duration::from_millis(250),
            deadline: Some(Duration::from_secs(3600)),
            max_consecutive_errors: 3,
            eta_lookahead: 2.0,
        }
    }
}

impl PollPolicy {
    /// Delay before the first look.
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }

    /// Growth factor between looks (at least 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = crate::retry::sane_multiplier(multiplier);
        self
    }

    /// The longest delay between looks.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The shortest delay between looks, whatever progress predicts.
    pub fn min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// How long to wait in all (`None`: no deadline; use with cancellation).
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many transient polling errors in a row (retryable errors, and status replies that
    /// could not be read) are tolerated before the wait fails.
    pub fn max_consecutive_errors(mut self, n: u32) -> Self {
        self.max_consecutive_errors = n;
        self
    }

    /// How far beyond the growing delay a predicted finish may put the next look, as a multiple
    /// of the time over which progress has been watched (0: predictions only shorten delays; at
    /// most 1000).
    ///
    /// With the default 2, a 10-minute job that reports progress is looked at about 7 times
    /// (1, 3, 9, 27, 81, 243 s, then at the predicted finish) instead of about 27 times.
    pub fn eta_lookahead(mut self, factor: f64) -> Self {
        self.eta_lookahead = if factor.is_nan() {
            0.0
        } else {
            factor.clamp(0.0, 1000.0)
        };
        self
    }

    /// The delay before look number `n + 1` without progress information (`n` = 0 is the first).
    pub fn delay(&self, n: u32) -> Duration {
        crate::retry::exponential(self.first_delay, self.multiplier, n, self.max_delay)
            .max(self.min_delay)
    }
}

/// What a progress observer is told after each look at a pending job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollEvent {
    /// The job's [`Job::describe`].
    pub job: String,
    /// Looks so far.
    pub polls: u32,
    /// Time since the wait began.
    pub elapsed: Duration,
    /// The job's progress.
    pub progress: Progress,
    /// When the driver looks next.
    pub next_poll_in: Duration,
}

/// A progress observer: called after each look at a pending job. The one observer type of the
/// workspace's waits.
pub type Observer = Arc<dyn Fn(&PollEvent) + Send + Sync>;

/// How to wait for a job: the policy, cancellation and a progress observer.
///
/// Every field is optional; what is left unset keeps the vendor's default (the policy from
/// each vendor's `Client::default_poll_policy()`, no cancellation, no observer). The same
/// options can be handed to any vendor's wait:
///
/// ```
/// use std::time::Duration;
/// use bulk_common::CancellationToken;
/// use bulk_common::poll::{PollPolicy, WaitOptions};
///
/// let stop = CancellationToken::new();
/// let options = WaitOptions::new()
///     .policy(PollPolicy::default().deadline(Some(Duration::from_secs(900))))
///     .cancel_on(stop.clone())
///     .on_progress(|e| eprintln!("{}: {:?} left", e.job, e.progress.remaining));
/// assert!(options.policy_ref().is_some());
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct WaitOptions {
    policy: Option<PollPolicy>,
    cancel: Option<CancellationToken>,
    observer: Option<Observer>,
    poll_immediately: Option<bool>,
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("policy", &self.policy)
            .field("cancel", &self.cancel.is_some())
            .field("on_progress", &self.observer.is_some())
            .field("poll_immediately", &self.poll_immediately)
            .finish()
    }
}

impl WaitOptions {
    /// No options set: the vendor's defaults.
    pub fn new() -> Self {
        WaitOptions::default()
    }

    /// The polling policy (intervals and deadline), instead of the vendor's default.
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Stops the wait with [`ErrorKind::Cancelled`] as soon as `token` is cancelled.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called after each look at a pending job, in order.
    pub fn on_progress(mut self, observer: impl Fn(&PollEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The same as [`on_progress`](Self::on_progress), with an observer already shared.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Whether the first look comes at once instead of after the policy's first delay (for a
    /// job resumed from a saved handle, which may have finished long ago).
    pub fn poll_immediately(mut self, yes: bool) -> Self {
        self.poll_immediately = Some(yes);
        self
    }

    /// The policy set here, if any.
    pub fn policy_ref(&self) -> Option<&PollPolicy> {
        self.policy.as_ref()
    }

    /// The cancellation token set here, if any.
    pub fn cancel_token(&self) -> Option<&CancellationToken> {
        self.cancel.as_ref()
    }

    /// The progress observer set here, if any.
    pub fn observer_ref(&self) -> Option<&Observer> {
        self.observer.as_ref()
    }

    /// These options, with every field that is unset here taken from `base`.
    pub fn or(self, base: &WaitOptions) -> WaitOptions {
        WaitOptions {
            policy: self.policy.or_else(|| base.policy.clone()),
            cancel: self.cancel.or_else(|| base.cancel.clone()),
            observer: self.observer.or_else(|| base.observer.clone()),
            poll_immediately: self.poll_immediately.or(base.poll_immediately),
        }
    }
}

/// Waits for one vendor job; every vendor's `Client::wait(&JobHandle)` returns one.
///
/// Await it directly, or set options first. It owns its [`Job`] (the vendor's `JobWatch`), so it
/// can be moved into a task:
///
/// ```
/// # use std::time::Duration;
/// # use bulk_common::poll::{Job, JobState, JobWait, PollPolicy, Progress};
/// # struct Quick;
/// # impl Job for Quick {
/// #     type Output = u32;
/// #     async fn poll(&self) -> bulk_common::Result<JobState<u32>> { Ok(JobState::Done(7)) }
/// # }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> bulk_common::Result<()> {
/// // What a vendor's `client.wait(&handle)` builds:
/// let wait = JobWait::new(Quick, PollPolicy::default());
/// let out = wait
///     .policy(PollPolicy::default().deadline(Some(Duration::from_secs(60))))
///     .on_progress(|e| eprintln!("{e:?}"))
///     .await?;
/// assert_eq!(out, 7);
/// # Ok(()) }
/// ```
#[must_use = "a JobWait does nothing until awaited or run"]
pub struct JobWait<J: Job> {
    job: J,
    default_policy: PollPolicy,
    options: WaitOptions,
}

impl<J: Job> fmt::Debug for JobWait<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobWait")
            .field("job", &self.job.describe())
            .field("default_policy", &self.default_policy)
            .field("options", &self.options)
            .finish()
    }
}

impl<J: Job> JobWait<J> {
    /// A wait on `job` with the vendor's `default_policy` and no other options.
    pub fn new(job: J, default_policy: PollPolicy) -> Self {
        JobWait {
            job,
            default_policy,
            options: WaitOptions::default(),
        }
    }

    /// Sets every option at once; what `options` leaves unset keeps what was set before.
    pub fn options(mut self, options: WaitOptions) -> Self {
        self.options = options.or(&self.options);
        self
    }

    /// The polling policy (intervals and deadline), instead of the vendor's default.
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.options = self.options.policy(policy);
        self
    }

    /// Stops the wait with [`ErrorKind::Cancelled`] as soon as `token` is cancelled.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.options = self.options.cancel_on(token);
        self
    }

    /// Called after each look at the pending job, in order.
    pub fn on_progress(mut self, observer: impl Fn(&PollEvent) + Send + Sync + 'static) -> Self {
        self.options = self.options.on_progress(observer);
        self
    }

    /// Whether the first look comes at once (see [`WaitOptions::poll_immediately`]).
    pub fn poll_immediately(mut self, yes: bool) -> Self {
        self.options = self.options.poll_immediately(yes);
        self
    }

    /// The job being waited for.
    pub fn job(&self) -> &J {
        &self.job
    }

    /// The policy this wait will use.
    pub fn effective_policy(&self) -> &PollPolicy {
        self.options.policy_ref().unwrap_or(&self.default_policy)
    }

    /// Runs the wait to the job's end, the deadline, or cancellation.
    pub async fn run(self) -> Result<J::Output> {
        let policy = self.effective_policy().clone();
        Wait::new(&self.job)
            .policy(policy)
            .with_options(&self.options)
            .run()
            .await
    }
}

impl<J> std::future::IntoFuture for JobWait<J>
where
    J: Job + 'static,
    J::Output: 'static,
{
    type Output = Result<J::Output>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Result<J::Output>> + Send>>;

    /// `wait.await` is `wait.run().await`.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Waits for a [`Job`] to finish. Dropping the future stops the wait too.
#[must_use = "a Wait does nothing until run"]
pub struct Wait<'a, J: Job> {
    job: &'a J,
    policy: PollPolicy,
    cancel: Option<CancellationToken>,
    observer: Option<Observer>,
    poll_first: bool,
}

impl<J: Job> fmt::Debug for Wait<'_, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("job", &self.job.describe())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<'a, J: Job> Wait<'a, J> {
    /// A wait with [`PollPolicy::default`].
    pub fn new(job: &'a J) -> Self {
        Wait {
            job,
            policy: PollPolicy::default(),
            cancel: None,
            observer: None,
            poll_first: false,
        }
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Stops the wait with [`ErrorKind::Cancelled`] as soon as `token` is cancelled.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called after each look at a pending job, in order.
    pub fn on_progress(mut self, observer: impl Fn(&PollEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Looks at the job at once instead of after the first delay (for resumed jobs).
    pub fn poll_immediately(mut self, yes: bool) -> Self {
        self.poll_first = yes;
        self
    }

    /// Applies what `options` sets: its policy, cancellation, observer and first-look choice.
    pub fn with_options(mut self, options: &WaitOptions) -> Self {
        if let Some(policy) = &options.policy {
            self.policy = policy.clone();
        }
        if let Some(token) = &options.cancel {
            self.cancel = Some(token.clone());
        }
        if let Some(observer) = &options.observer {
            self.observer = Some(observer.clone());
        }
        if let Some(yes) = options.poll_immediately {
            self.poll_first = yes;
        }
        self
    }

    /// Runs the wait to the job's end, the deadline, or cancellation.
    pub async fn run(self) -> Result<J::Output> {
        let name = self.job.describe();
        let span = tracing::info_span!("job.wait", job = %name, polls = tracing::field::Empty);
        let cancel = self.cancel.clone().unwrap_or_default();
        async move {
            tokio::select! {
                biased;
                () = cancel.cancelled() => Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("waiting for job {name} was cancelled"),
                )),
                out = self.drive(&name) => out,
            }
        }
        .instrument(span)
        .await
    }

    async fn drive(&self, name: &str) -> Result<J::Output> {
        let policy = &self.policy;
        let started = Instant::now();
        let deadline = policy.deadline.map(|d| started + d);
        let mut eta = Eta::new(started);
        let mut polls: u32 = 0;
        let mut errors: u32 = 0;
        let mut next = if self.poll_first {
            Duration::ZERO
        } else {
            policy.delay(0)
        };
        loop {
            let mut wake = Instant::now() + next;
            let last_look = match deadline {
                Some(d) if wake >= d => {
                    wake = d;
                    true
                }
                _ => false,
            };
            tokio::time::sleep_until(wake).await;
            polls += 1;
            tracing::Span::current().record("polls", polls);
            let progress = match self.job.poll().await {
                Ok(JobState::Done(out)) => {
                    tracing::info!(
                        polls,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "job done"
                    );
                    return Ok(out);
                }
                Ok(JobState::Failed(failure)) => return Err(failure.into_error(name)),
                Ok(JobState::Pending(progress)) => {
                    errors = 0;
                    Some(progress)
                }
                Err(e) if is_transient(&e) && errors < policy.max_consecutive_errors => {
                    errors += 1;
                    tracing::warn!(error = %e, errors, "polling failed; will look again");
                    None
                }
                Err(e) => return Err(e.context(format!("polling job {name}"))),
            };
            if last_look {
                let mut err = Error::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "job {name} was still running after {:?} ({polls} looks)",
                        started.elapsed()
                    ),
                );
                if let Some(p) = &progress {
                    err = err.with_details(serde_json::json!({
                        "total": p.total, "remaining": p.remaining, "status": p.status,
                    }));
                }
                return Err(err);
            }
            let mut delay = policy.delay(polls);
            if let Some(p) = &progress {
                if let Some((predicted, watched)) = eta.observe(p) {
                    let horizon = delay
                        .max(watched.mul_f64(policy.eta_lookahead))
                        .max(policy.min_delay);
                    delay = predicted.clamp(policy.min_delay, horizon);
                }
                if let Some(hint) = p.next_poll_hint {
                    delay = hint.clamp(policy.min_delay, policy.max_delay.max(policy.min_delay));
                }
                if let Some(observer) = &self.observer {
                    observer(&PollEvent {
                        job: name.to_owned(),
                        polls,
                        elapsed: started.elapsed(),
                        progress: p.clone(),
                        next_poll_in: delay,
                    });
                }
            }
            next = delay;
        }
    }
}

/// Whether a failed look is worth another one: a retryable error, or a status reply that could
/// not be read (the HTTP client already retried it; the job itself is unaffected).
fn is_transient(e: &Error) -> bool {
    e.is_retryable() || e.kind() == ErrorKind::Decode
}

/// Predicts a job's finish from how fast `remaining` falls.
struct Eta {
    started: Instant,
    first: Option<(Instant, u64)>,
}

impl Eta {
    fn new(started: Instant) -> Self {
        Eta {
            started,
            first: None,
        }
    }

    /// Time until the predicted finish, and the time over which the prediction was made. The
    /// reference point is the start of the wait with `total` items to do when the total is known
    /// (a fresh job), else the first observation; it moves on while nothing gets done, so time a
    /// job spends queued does not slow the predicted rate.
    fn observe(&mut self, p: &Progress) -> Option<(Duration, Duration)> {
        let remaining = p.remaining?;
        let now = Instant::now();
        let (t0, r0) = match self.first {
            Some(first) => first,
            None => {
                let first = match p.total {
                    Some(total) if total >= remaining => (self.started, total),
                    _ => (now, remaining),
                };
                self.first = Some(first);
                first
            }
        };
        if remaining > r0 {
            // The count went up (a new phase, or a different counter): start over.
            self.first = Some((now, remaining));
            return None;
        }
        let done = r0 - remaining;
        if done == 0 {
            self.first = Some((now, remaining));
            return None;
        }
        let elapsed = now.saturating_duration_since(t0);
        if elapsed.is_zero() {
            return None;
        }
        let per_item = elapsed.as_secs_f64() / done as f64;
        // A vendor's absurd count must not overflow the duration.
        let predicted =
            Duration::try_from_secs_f64(per_item * remaining as f64).unwrap_or(Duration::MAX);
        Some((predicted, elapsed))
    }
}
