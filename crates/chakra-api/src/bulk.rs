//! Bulk updates of any size: chunking, bounded concurrency, job tracking and a per-item report.
//!
//! # How a run works
//! Items are pulled from the input one at a time and checked with
//! [`ProcessUpdate::validate`]; an invalid item is reported as [`Outcome::Invalid`] and never
//! sent. Valid items are grouped into chunks of [`chunk_size`](BulkUpdate::chunk_size) (1,000 by
//! default; the API documents no maximum). At most [`concurrency`](BulkUpdate::concurrency)
//! chunks are being sent at once (4 by default); each accepted chunk becomes a background job
//! that is tracked to its end with the shared poll driver, beside the sending, so waiting for
//! jobs does not slow the sending down. At most
//! [`max_pending_chunks`](BulkUpdate::max_pending_chunks) chunks are sent-or-tracked at once, which
//! bounds memory. When the server answers 413 (or a size error in `_errors`) the chunk is split
//! in two halves that are sent again, and later chunks use the smaller size.
//!
//! # What is kept in memory
//! - Items in flight: at most `(max_pending_chunks + 1) × chunk_size` updates (one chunk is read
//!   ahead; each update is held whole, so that failed ones can be handed back for resending).
//! - Per finished item that succeeded: nothing but a counter, unless
//!   [`keep_successes`](BulkUpdate::keep_successes) is on (then its index and identifier, about
//!   40 bytes plus the identifier's text).
//! - Per item that did not succeed: an [`ItemResult`] with its index, identifier, message, job id
//!   and the update itself (so [`BulkReport::failed`] can return it).
//!
//! So a streamed input of any length runs in memory bounded by the chunking settings and the
//! number of failures. [`BulkUpdate::on_item`] sees every item's outcome as it is known, for
//! callers who want to write a full log without holding it.
//!
//! # Unknown outcomes are resolved by reading the processes back
//! The bulk PATCH is not safe to repeat blindly: a second job would set the values twice, which
//! is harmless for plain assignments but not for state changes that trigger automations. So an
//! item whose outcome is unknown is first **read back**, never guessed:
//! - a chunk whose request may have reached the server without a usable reply (a reset after
//!   sending, a 5xx, a timeout, an unreadable reply): no job id is known;
//! - an item of a finished job that none of its entries can be trusted for: entries are matched
//!   by their `index` or by the identifier they echo (both undocumented), **never by their
//!   order**, and not at all when they disagree with the job's counts;
//! - an item of a job that could not be followed to its end (it stalled, passed the deadline,
//!   polling kept failing, or the vendor failed the job outright).
//!
//! After the run, those items' processes are read (by id, or by primary key through the list
//! endpoint). An item whose process already holds every requested value counts as applied. The
//! others are sent again, in at most [`Reconcile::rounds`] rounds, but only when that is safe: the
//! request was ambiguous (then the read-back waits [`Reconcile::settle`] first, so a job created
//! by the lost request can finish) or the item's job is known to have ended. Items of a job that
//! may still be running are never sent again: they stay [`Outcome::Unknown`] (or
//! [`Outcome::Error`] for a job the vendor failed). Pending items that update the same process
//! are settled in input order (an earlier one whose values were overwritten by a later one stays
//! unknown); an update that changes the identifying attribute, and a delete whose process is not
//! listed, cannot be settled by reading back and stay unknown. [`BulkProgress::read_back`],
//! [`BulkProgress::found_applied`] and [`BulkProgress::resent`] say what was done.
//! [`BulkUpdate::reconcile`] turns this off (unknown items are then reported as they are).
//! [`AmbiguousPolicy::Resend`] instead resends an ambiguous chunk once, blindly, for callers
//! whose updates are plain assignments. A 429 refusal is not ambiguous (nothing was done) and is
//! retried by the HTTP layer; a refused chunk (4xx, or `_errors` on 2xx) gives
//! [`Outcome::Error`] to each item.
//!
//! # Whole-run failures
//! A refusal that every later request would get too (401/403, or 404 on the bulk path: the
//! procedure does not exist) and a job the vendor failed outright stop the run:
//! [`BulkReport::stopped_early`] holds that one error, no more input is read, and the items not
//! sent are [`Outcome::Error`] "not sent".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::{PollPolicy, Wait};
use bulk_common::{CancellationToken, Method, encode_segment};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::envelope::{Envelope, is_size_error};
use crate::job::{BackgroundJob, EntryStatus, JobEntry, JobId};
use crate::model::{Identifier, Process, ProcessUpdate, Query, Update};
use crate::process::MAX_LIST_LIMIT;
use crate::{Client, Error, ErrorKind, Result};

/// Default items per request.
pub const DEFAULT_CHUNK_SIZE: usize = 1000;
/// Default requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What happens to a chunk whose request's outcome is unknown. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AmbiguousPolicy {
    /// Do not resend blindly: read the chunk's items back and resend only those not applied,
    /// as the [module docs](self) describe (the default; with reconciliation off, the items are
    /// reported as [`Outcome::Unknown`]).
    #[default]
    Report,
    /// Resend the chunk once (it may then be applied twice, by two jobs).
    Resend,
}

/// How one item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Applied.
    Success,
    /// Processed by the server and failed (for example: no such process), or the chunk was
    /// refused; safe to fix and resend.
    Error(String),
    /// Rejected as invalid, by this client before sending or by the server; fix and resend.
    Invalid(String),
    /// Unknown: the chunk's request may or may not have been applied, or its job could not be
    /// followed to the end. Reconcile before resending.
    Unknown(String),
}

impl Outcome {
    /// The message, for anything but success.
    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Success => None,
            Outcome::Error(m) | Outcome::Invalid(m) | Outcome::Unknown(m) => Some(m),
        }
    }

    /// A short label: `success`, `error`, `invalid`, `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error(_) => "error",
            Outcome::Invalid(_) => "invalid",
            Outcome::Unknown(_) => "unknown",
        }
    }
}

/// One input item's result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ItemResult {
    /// The item's position in the input (0 for the first).
    pub index: u64,
    /// Its identifier (`None` when it had none or several).
    pub identifier: Option<Identifier>,
    /// How it ended.
    pub outcome: Outcome,
    /// The background job that carried it, if one was created.
    pub job: Option<JobId>,
    /// The update itself (kept for items that did not succeed).
    pub update: Option<ProcessUpdate>,
}

/// Counts reported while a bulk update runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkProgress {
    /// Items taken from the input.
    pub read: u64,
    /// Items sent in accepted requests.
    pub sent: u64,
    /// Items whose outcome is known.
    pub finished: u64,
    /// Items applied.
    pub succeeded: u64,
    /// Items that failed (error or invalid).
    pub failed: u64,
    /// Items whose outcome is unknown.
    pub unknown: u64,
    /// Requests accepted (jobs created).
    pub jobs: u64,
    /// The chunk size now in use (smaller after a size error).
    pub chunk_size: usize,
    /// Items whose process was read back after an unknown outcome (counted per read).
    pub read_back: u64,
    /// Items found applied by reading their process back.
    pub found_applied: u64,
    /// Items sent again after the read-back showed they were not applied.
    pub resent: u64,
}

/// How unknown outcomes are resolved after a run (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconcile {
    /// How many times items may be sent again (default 8); reads back happen once more.
    pub rounds: u32,
    /// How long to wait before reading back items whose request was ambiguous, so that a job
    /// created by the lost request can finish first (default 30 s).
    pub settle: Duration,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            rounds: 8,
            settle: Duration::from_secs(30),
        }
    }
}

impl Reconcile {
    /// Sets [`rounds`](Self::rounds).
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds;
        self
    }

    /// Sets [`settle`](Self::settle).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }
}

/// The result of a bulk update: every input item's outcome.
///
/// Successes are counted, not stored (unless [`BulkUpdate::keep_successes`] was set), so
/// [`outcome`](Self::outcome) answers "success" for any index below [`total`](Self::total) that
/// is not among the [`failures`](Self::failures).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BulkReport {
    total: u64,
    progress: BulkProgress,
    failures: Vec<ItemResult>,
    successes: Option<Vec<(u64, Option<Identifier>)>>,
    jobs: Vec<JobId>,
    stopped: Option<Error>,
}

impl BulkReport {
    /// Items taken from the input.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Items applied.
    pub fn succeeded(&self) -> u64 {
        self.progress.succeeded
    }

    /// Items with [`Outcome::Error`].
    pub fn errors(&self) -> u64 {
        self.count(|o| matches!(o, Outcome::Error(_)))
    }

    /// Items with [`Outcome::Invalid`].
    pub fn invalid(&self) -> u64 {
        self.count(|o| matches!(o, Outcome::Invalid(_)))
    }

    /// Items with [`Outcome::Unknown`].
    pub fn unknown_count(&self) -> u64 {
        self.progress.unknown
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> u64 {
        self.failures.iter().filter(|r| f(&r.outcome)).count() as u64
    }

    /// Every item that did not succeed, in input order.
    pub fn failures(&self) -> &[ItemResult] {
        &self.failures
    }

    /// The outcome of input item `index` (`None` past the end of the input).
    pub fn outcome(&self, index: u64) -> Option<&Outcome> {
        const SUCCESS: &Outcome = &Outcome::Success;
        if index >= self.total {
            return None;
        }
        match self.failures.binary_search_by_key(&index, |r| r.index) {
            Ok(i) => Some(&self.failures[i].outcome),
            Err(_) => Some(SUCCESS),
        }
    }

    /// The updates to fix and resend: items with [`Outcome::Error`] or [`Outcome::Invalid`],
    /// in input order.
    pub fn failed(&self) -> Vec<ProcessUpdate> {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Error(_) | Outcome::Invalid(_)))
            .filter_map(|r| r.update.clone())
            .collect()
    }

    /// The updates whose outcome is unknown (reconcile before resending them).
    pub fn unknown(&self) -> Vec<ProcessUpdate> {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Unknown(_)))
            .filter_map(|r| r.update.clone())
            .collect()
    }

    /// Indexes and identifiers of applied items, when [`BulkUpdate::keep_successes`] was set.
    pub fn successes(&self) -> Option<&[(u64, Option<Identifier>)]> {
        self.successes.as_deref()
    }

    /// The background jobs created, in the order they were accepted.
    pub fn jobs(&self) -> &[JobId] {
        &self.jobs
    }

    /// The final counts.
    pub fn progress(&self) -> &BulkProgress {
        &self.progress
    }

    /// True when every item was applied and the whole input was read.
    pub fn is_complete_success(&self) -> bool {
        self.failures.is_empty() && self.stopped.is_none()
    }

    /// The error that stopped the run early (for example a rejected token), after which no more
    /// input was read; items already read are in the report.
    pub fn stopped_early(&self) -> Option<&Error> {
        self.stopped.as_ref()
    }
}

type ProgressFn = Arc<dyn Fn(&BulkProgress) + Send + Sync>;
type ItemFn = Arc<dyn Fn(&ItemResult) + Send + Sync>;

/// A configured bulk update of one procedure's processes. Made by
/// [`Client::bulk_update`](crate::Client::bulk_update).
///
/// ```no_run
/// # async fn run(client: chakra_api::Client) -> chakra_api::Result<()> {
/// use chakra_api::{ProcessStatus, ProcessUpdate};
/// let updates = (0..10_000).map(|i| {
///     ProcessUpdate::by_key("lead_id", format!("L-{i}")).status(ProcessStatus::Completed)
/// });
/// let report = client
///     .bulk_update("lead")
///     .on_progress(|p| eprintln!("{} sent, {} finished", p.sent, p.finished))
///     .run(updates)
///     .await?;
/// for item in report.failures() {
///     eprintln!("item {}: {:?}", item.index, item.outcome);
/// }
/// let to_resend = report.failed();
/// # Ok(()) }
/// ```
#[must_use = "a BulkUpdate does nothing until run"]
pub struct BulkUpdate {
    client: Client,
    procedure: Arc<str>,
    chunk_size: usize,
    concurrency: usize,
    max_pending: Option<usize>,
    poll: PollPolicy,
    ambiguous: AmbiguousPolicy,
    reconcile: Option<Reconcile>,
    stall_timeout: Option<Duration>,
    keep_successes: bool,
    on_progress: Option<ProgressFn>,
    on_item: Option<ItemFn>,
    cancel: Option<CancellationToken>,
}

impl fmt::Debug for BulkUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkUpdate")
            .field("procedure", &self.procedure)
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .field("max_pending_chunks", &self.pending_limit())
            .field("poll", &self.poll)
            .field("ambiguous", &self.ambiguous)
            .field("reconcile", &self.reconcile)
            .field("stall_timeout", &self.stall_timeout)
            .finish_non_exhaustive()
    }
}

/// The default poll policy for bulk jobs: first look after 500 ms, growing ×1.5 up to 10 s,
/// a one-hour deadline per job.
pub fn default_poll_policy() -> PollPolicy {
    PollPolicy::default()
        .first_delay(Duration::from_millis(500))
        .max_delay(Duration::from_secs(10))
        .min_delay(Duration::from_millis(100))
        .deadline(Some(Duration::from_secs(3600)))
}

impl BulkUpdate {
    pub(crate) fn new(client: Client, procedure: String) -> Self {
        BulkUpdate {
            client,
            procedure: procedure.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            max_pending: None,
            poll: default_poll_policy(),
            ambiguous: AmbiguousPolicy::default(),
            reconcile: Some(Reconcile::default()),
            stall_timeout: Some(crate::job::DEFAULT_STALL_TIMEOUT),
            keep_successes: false,
            on_progress: None,
            on_item: None,
            cancel: None,
        }
    }

    /// Items per request (at least 1; default 1,000).
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n.max(1);
        self
    }

    /// Requests being sent at once (at least 1; default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Chunks being sent or tracked at once (default 4 × concurrency). This bounds memory:
    /// at most this many chunks of updates, plus one read ahead, are held.
    pub fn max_pending_chunks(mut self, n: usize) -> Self {
        self.max_pending = Some(n.max(1));
        self
    }

    /// How each chunk's job is polled (see [`default_poll_policy`]); its deadline applies per
    /// job, and items of a job still running at the deadline are reported as unknown.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// What to do with a chunk whose outcome is unknown (default: report, do not resend).
    pub fn ambiguous(mut self, policy: AmbiguousPolicy) -> Self {
        self.ambiguous = policy;
        self
    }

    /// Whether and how unknown outcomes are resolved by reading the processes back and sending
    /// the items not applied again (default: on, [`Reconcile::default`]). `false` turns it off.
    pub fn reconcile(mut self, on: bool) -> Self {
        self.reconcile = on.then(|| self.reconcile.take().unwrap_or_default());
        self
    }

    /// Resolves unknown outcomes with these settings (turns reconciliation on).
    pub fn reconcile_with(mut self, settings: Reconcile) -> Self {
        self.reconcile = Some(settings);
        self
    }

    /// How long a job's entry counts may stay unchanged before its items are treated as not
    /// followable (default 10 minutes; `None`: until the poll deadline). See
    /// [`JobWatch::stall_timeout`](crate::JobWatch::stall_timeout).
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Keeps the index and identifier of every applied item in the report (memory grows with
    /// the input; off by default).
    pub fn keep_successes(mut self, yes: bool) -> Self {
        self.keep_successes = yes;
        self
    }

    /// Called with the counts after each chunk is accepted and after each chunk finishes.
    pub fn on_progress(mut self, f: impl Fn(&BulkProgress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Called with every item's result as soon as it is known (in completion order).
    pub fn on_item(mut self, f: impl Fn(&ItemResult) + Send + Sync + 'static) -> Self {
        self.on_item = Some(Arc::new(f));
        self
    }

    /// Stops reading input when `token` is cancelled; jobs being tracked stop being followed
    /// and their items are reported as unknown.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    fn pending_limit(&self) -> usize {
        self.max_pending
            .unwrap_or(self.concurrency * 4)
            .max(self.concurrency)
    }

    /// Checks every item first and fails with one [`ErrorKind::InvalidInput`] error listing each
    /// bad item by index, before anything is sent; then runs like [`run`](Self::run). For inputs
    /// held in memory.
    pub async fn run_checked(self, updates: Vec<ProcessUpdate>) -> Result<BulkReport> {
        crate::model::validate(&updates)?;
        self.run(updates).await
    }

    /// Runs over an iterator of any length (pulled lazily). Invalid items are reported as
    /// [`Outcome::Invalid`] without being sent.
    pub async fn run<I>(self, updates: I) -> Result<BulkReport>
    where
        I: IntoIterator<Item = ProcessUpdate>,
        I::IntoIter: Send,
    {
        self.run_stream(futures::stream::iter(updates)).await
    }

    /// Runs over a stream of any length (pulled lazily, memory bounded). Invalid items are
    /// reported as [`Outcome::Invalid`] without being sent.
    ///
    /// Returns `Err` only for a configuration problem found before anything was sent; failures
    /// during the run are in the report (see [`BulkReport::stopped_early`]).
    pub async fn run_stream<S>(self, updates: S) -> Result<BulkReport>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        if self.procedure.trim().is_empty() {
            return Err(Error::invalid_input("the procedure id or shortId is empty"));
        }
        Runner::new(self).run(updates).await
    }
}

struct Chunk {
    items: Vec<(u64, ProcessUpdate)>,
    resends: u32,
}

enum Done {
    Submitted(Chunk, Result<BackgroundJob>),
    Tracked(Chunk, BackgroundJob, Result<Vec<Option<Outcome>>>),
}

/// An item whose outcome is not known yet, waiting to be read back.
struct Unresolved {
    index: u64,
    update: ProcessUpdate,
    job: Option<JobId>,
    /// Whether the item may be sent again when the read-back shows that its values are not
    /// there: true when no job was created for it as far as we know, or its job has ended.
    /// False while its job may still apply it (stalled, past the deadline, not followable).
    resend: bool,
    /// How the item ends when nothing better is learnt.
    fallback: Outcome,
    /// Not yet read back since it became unresolved (a fresh ambiguous request may still be
    /// applied by a job we never heard of, so the read-back waits for it to settle).
    fresh: bool,
    /// Its job could not be followed because looking at it failed: look again before reading
    /// the item back.
    retrack: bool,
}

struct Runner {
    cfg: BulkUpdate,
    report: BulkReport,
    chunk_size: usize,
    unresolved: Vec<Unresolved>,
}

impl Runner {
    fn new(cfg: BulkUpdate) -> Self {
        let chunk_size = cfg.chunk_size;
        let report = BulkReport {
            successes: cfg.keep_successes.then(Vec::new),
            progress: BulkProgress {
                chunk_size,
                ..BulkProgress::default()
            },
            ..BulkReport::default()
        };
        Runner {
            cfg,
            report,
            chunk_size,
            unresolved: Vec::new(),
        }
    }

    async fn run<S>(mut self, updates: S) -> Result<BulkReport>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        let cancel = self.cfg.cancel.clone().unwrap_or_default();
        self.drive(updates, VecDeque::new(), &cancel).await?;
        if self.cfg.reconcile.is_some() && !cancel.is_cancelled() {
            self.reconcile(&cancel).await?;
        }
        for u in std::mem::take(&mut self.unresolved) {
            let outcome = u.fallback.clone();
            self.settle_item(u, outcome);
        }
        let mut report = self.report;
        report.failures.sort_by_key(|r| r.index);
        if let Some(s) = report.successes.as_mut() {
            s.sort_by_key(|(i, _)| *i);
        }
        Ok(report)
    }

    /// Sends the input (and the chunks already queued) and tracks every job to its end.
    async fn drive<S>(
        &mut self,
        updates: S,
        mut requeue: VecDeque<Chunk>,
        cancel: &CancellationToken,
    ) -> Result<()>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        // Fused: an input that has ended is never polled again (some streams panic if it is).
        let mut input = std::pin::pin!(updates.fuse());
        let mut input_done = false;
        // One chunk read ahead while requests are in flight, so a free slot never waits for
        // the input (at most one chunk more in memory).
        let mut ready: Option<Chunk> = None;
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let (mut sending, mut tracking) = (0usize, 0usize);
        let limit = self.cfg.pending_limit();
        loop {
            while sending < self.concurrency() && sending + tracking < limit {
                let stop = self.report.stopped.is_some() || cancel.is_cancelled();
                let chunk = match requeue.pop_front() {
                    Some(c) if !stop => c,
                    Some(c) => {
                        let msg = "not sent: the run was stopped early";
                        self.finish_chunk(c, None, |_| Outcome::Error(msg.into()));
                        continue;
                    }
                    None if stop => {
                        if let Some(c) = ready.take() {
                            let msg = "not sent: the run was stopped early";
                            self.finish_chunk(c, None, |_| Outcome::Error(msg.into()));
                        }
                        break;
                    }
                    None => match ready.take() {
                        Some(c) => c,
                        None if input_done => break,
                        None => match self.next_chunk(&mut input).await {
                            Some(c) => c,
                            None => {
                                input_done = true;
                                break;
                            }
                        },
                    },
                };
                sending += 1;
                self.spawn_submit(&mut tasks, chunk);
            }
            // A task that already finished is handled (and its slot refilled) before the next
            // chunk is read ahead, so reading never delays a free slot.
            let mut finished = tasks.try_join_next();
            if finished.is_none()
                && ready.is_none()
                && !input_done
                && self.report.stopped.is_none()
                && !cancel.is_cancelled()
            {
                ready = self.next_chunk(&mut input).await;
                input_done = ready.is_none();
            }
            if finished.is_none() {
                finished = tasks.join_next().await;
            }
            let Some(joined) = finished else {
                if requeue.is_empty() && ready.is_none() {
                    break;
                }
                continue;
            };
            let done = joined.map_err(|e| {
                Error::new(
                    ErrorKind::Cancelled,
                    format!("a bulk task ended abnormally: {e}"),
                )
            })?;
            match done {
                Done::Submitted(chunk, result) => {
                    sending -= 1;
                    match result {
                        Ok(job) => {
                            tracking += 1;
                            self.report.progress.sent += chunk.items.len() as u64;
                            self.report.progress.jobs += 1;
                            self.report.jobs.push(job.id.clone());
                            self.emit_progress();
                            self.spawn_track(&mut tasks, chunk, job, cancel.clone());
                        }
                        Err(e) => self.submit_failed(chunk, e, &mut requeue),
                    }
                }
                Done::Tracked(chunk, job, result) => {
                    tracking -= 1;
                    self.tracked(chunk, &job, result, true);
                    self.emit_progress();
                }
            }
        }
        Ok(())
    }

    /// Records a tracked chunk: the entries the job attributed, and the rest as unresolved.
    fn tracked(
        &mut self,
        chunk: Chunk,
        job: &BackgroundJob,
        result: Result<Vec<Option<Outcome>>>,
        may_retrack: bool,
    ) {
        match result {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (index, update) in chunk.items {
                    match outcomes.next().flatten() {
                        Some(outcome) => self.record_item(index, update, Some(&job.id), outcome),
                        // The job has ended but did not say (in a way we can trust) how this
                        // item went: read it back, and send it again if it is not there.
                        None => self.unresolve(Unresolved {
                            index,
                            update,
                            job: Some(job.id.clone()),
                            resend: true,
                            fallback: Outcome::Unknown(format!(
                                "job {} ended, but none of its entries could be matched to \
                                 this item",
                                job.id
                            )),
                            fresh: true,
                            retrack: false,
                        }),
                    }
                }
            }
            Err(e) => {
                // The job may still be running (stalled, past the deadline, not followable):
                // read its items back, but never send them again while it may apply them.
                let retrack = may_retrack
                    && !matches!(
                        e.kind(),
                        ErrorKind::JobFailed | ErrorKind::DeadlineExceeded | ErrorKind::Cancelled
                    );
                let fallback = if e.kind() == ErrorKind::JobFailed {
                    if self.report.stopped.is_none() {
                        self.report.stopped = Some(e.clone());
                    }
                    Outcome::Error(format!("{e}"))
                } else {
                    Outcome::Unknown(format!(
                        "job {} could not be followed to its end ({e}); it may still apply this \
                         item",
                        job.id
                    ))
                };
                for (index, update) in chunk.items {
                    self.unresolve(Unresolved {
                        index,
                        update,
                        job: Some(job.id.clone()),
                        resend: false,
                        fallback: fallback.clone(),
                        fresh: true,
                        retrack,
                    });
                }
            }
        }
    }

    /// Reads back the unresolved items' processes: those holding the requested values were
    /// applied; the others are sent again where that is safe, in bounded rounds.
    async fn reconcile(&mut self, cancel: &CancellationToken) -> Result<()> {
        let Some(settings) = self.cfg.reconcile.clone() else {
            return Ok(());
        };
        let mut round = 0;
        while !self.unresolved.is_empty() && !cancel.is_cancelled() {
            if self.unresolved.iter().any(|u| u.fresh && u.job.is_none())
                && !settings.settle.is_zero()
            {
                // A request whose reply was lost may have created a job that is still
                // working: give it time before looking, so a resend does not race it.
                tokio::select! {
                    () = tokio::time::sleep(settings.settle) => {}
                    () = cancel.cancelled() => break,
                }
            }
            self.retrack(cancel).await;
            if self.unresolved.is_empty() {
                break;
            }
            let pool = std::mem::take(&mut self.unresolved);
            let looks = read_back(
                &self.cfg.client,
                &self.cfg.procedure,
                &pool,
                self.cfg.concurrency,
            )
            .await;
            let looks = settle_duplicates(&pool, looks);
            let may_resend =
                round < settings.rounds && self.report.stopped.is_none() && !cancel.is_cancelled();
            let mut resend = Vec::new();
            for (mut u, look) in pool.into_iter().zip(looks) {
                self.report.progress.read_back += 1;
                match look {
                    Look::Held => {
                        self.report.progress.found_applied += 1;
                        self.settle_item(u, Outcome::Success);
                    }
                    Look::NotHeld | Look::Missing if u.resend && may_resend => resend.push(u),
                    Look::NotHeld | Look::Missing => {
                        let what = if matches!(look, Look::Missing) {
                            "no such process was found"
                        } else {
                            "the process does not hold the requested values"
                        };
                        let outcome = with_note(&u.fallback, &format!("read back: {what}"));
                        self.settle_item(u, outcome);
                    }
                    Look::Unsound(why) => {
                        let outcome = with_note(&u.fallback, &format!("not read back: {why}"));
                        self.settle_item(u, outcome);
                    }
                    Look::Later | Look::Unreadable(_) if round < settings.rounds => {
                        u.fresh = false;
                        self.unresolved.push(u);
                    }
                    Look::Later => {
                        let outcome = with_note(
                            &u.fallback,
                            "an earlier update of the same process was still unresolved",
                        );
                        self.settle_item(u, outcome);
                    }
                    Look::Unreadable(why) => {
                        let outcome =
                            with_note(&u.fallback, &format!("reading it back failed: {why}"));
                        self.settle_item(u, outcome);
                    }
                }
            }
            self.emit_progress();
            if !resend.is_empty() {
                tracing::info!(
                    items = resend.len(),
                    round,
                    "sending again the items that were not applied"
                );
                self.report.progress.resent += resend.len() as u64;
                let mut chunks = VecDeque::new();
                let mut items = Vec::new();
                for u in resend {
                    self.report.progress.unknown -= 1;
                    items.push((u.index, u.update));
                    if items.len() == self.chunk_size {
                        chunks.push_back(Chunk {
                            items: std::mem::take(&mut items),
                            resends: 1,
                        });
                    }
                }
                if !items.is_empty() {
                    chunks.push_back(Chunk { items, resends: 1 });
                }
                self.drive(futures::stream::empty(), chunks, cancel).await?;
            }
            round += 1;
            if round > settings.rounds {
                break;
            }
        }
        Ok(())
    }

    /// Looks again at the jobs that could not be followed because looking failed, and
    /// attributes their entries as after a normal wait.
    async fn retrack(&mut self, cancel: &CancellationToken) {
        let (again, rest): (Vec<Unresolved>, Vec<Unresolved>) =
            std::mem::take(&mut self.unresolved)
                .into_iter()
                .partition(|u| u.retrack && u.job.is_some());
        self.unresolved = rest;
        // A job's items were unresolved together and in request order: regroup them.
        let mut jobs: Vec<(JobId, Vec<Unresolved>)> = Vec::new();
        for u in again {
            let id = u.job.clone().unwrap_or_else(|| JobId(String::new()));
            match jobs.last_mut() {
                Some((last, items)) if *last == id => items.push(u),
                _ => jobs.push((id, vec![u])),
            }
        }
        for (id, items) in jobs {
            let job = BackgroundJob::new(id.0.clone(), items.len() as u64);
            let mut chunk = Chunk {
                items: Vec::with_capacity(items.len()),
                resends: 0,
            };
            for u in items {
                self.report.progress.unknown -= 1;
                chunk.items.push((u.index, u.update));
            }
            let result = track(
                &self.cfg.client,
                &job,
                &chunk.items,
                self.cfg.poll.clone(),
                self.cfg.stall_timeout,
                cancel.clone(),
            )
            .await;
            self.tracked(chunk, &job, result, false);
        }
    }

    fn unresolve(&mut self, u: Unresolved) {
        self.report.progress.unknown += 1;
        self.unresolved.push(u);
    }

    /// Records the final outcome of an item that was unresolved.
    fn settle_item(&mut self, u: Unresolved, outcome: Outcome) {
        self.report.progress.unknown -= 1;
        self.record_item(u.index, u.update, u.job.as_ref(), outcome);
    }

    fn record_item(
        &mut self,
        index: u64,
        update: ProcessUpdate,
        job: Option<&JobId>,
        outcome: Outcome,
    ) {
        let keep = !matches!(outcome, Outcome::Success);
        self.record(ItemResult {
            index,
            identifier: update.identifier(),
            outcome,
            job: job.cloned(),
            update: keep.then_some(update),
        });
    }

    /// Chunks to keep being sent: the configured concurrency, lowered to what the client's
    /// adaptive rate can use while the vendor throttles (see `bulk_common::rate`).
    fn concurrency(&self) -> usize {
        match self.cfg.client.http().options().get_rate_control() {
            Some(rate) => rate.concurrency(self.cfg.concurrency),
            None => self.cfg.concurrency,
        }
    }

    /// Pulls the next chunk of valid items, reporting invalid ones on the way.
    async fn next_chunk<S>(&mut self, input: &mut std::pin::Pin<&mut S>) -> Option<Chunk>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        let mut items = Vec::with_capacity(self.chunk_size.min(DEFAULT_CHUNK_SIZE));
        while items.len() < self.chunk_size {
            let Some(update) = input.next().await else {
                break;
            };
            let index = self.report.total;
            self.report.total += 1;
            self.report.progress.read += 1;
            match update.validate() {
                Ok(()) => items.push((index, update)),
                Err(msg) => self.record(ItemResult {
                    index,
                    identifier: update.identifier(),
                    outcome: Outcome::Invalid(format!("{msg} (not sent)")),
                    job: None,
                    update: Some(update),
                }),
            }
        }
        (!items.is_empty()).then_some(Chunk { items, resends: 0 })
    }

    fn spawn_submit(&self, tasks: &mut JoinSet<Done>, chunk: Chunk) {
        let client = self.cfg.client.clone();
        let procedure = self.cfg.procedure.clone();
        tasks.spawn(async move {
            let result = client.submit_chunk(&procedure, &chunk.items).await;
            Done::Submitted(chunk, result)
        });
    }

    fn spawn_track(
        &self,
        tasks: &mut JoinSet<Done>,
        chunk: Chunk,
        job: BackgroundJob,
        cancel: CancellationToken,
    ) {
        let client = self.cfg.client.clone();
        let policy = self.cfg.poll.clone();
        let stall = self.cfg.stall_timeout;
        tasks.spawn(async move {
            let result = track(&client, &job, &chunk.items, policy, stall, cancel).await;
            Done::Tracked(chunk, job, result)
        });
    }

    fn submit_failed(&mut self, mut chunk: Chunk, e: Error, requeue: &mut VecDeque<Chunk>) {
        let n = chunk.items.len();
        if is_size_error(&e) && n > 1 {
            let half = n.div_ceil(2);
            tracing::info!(
                items = n,
                half,
                "the server refused the chunk as too large; halving it"
            );
            self.chunk_size = self.chunk_size.min(half);
            self.report.progress.chunk_size = self.chunk_size;
            let second = chunk.items.split_off(half);
            requeue.push_front(Chunk {
                items: second,
                resends: chunk.resends,
            });
            requeue.push_front(chunk);
            return;
        }
        let ambiguous = e.kind() == ErrorKind::AmbiguousOutcome || e.kind() == ErrorKind::Decode;
        if ambiguous {
            if self.cfg.ambiguous == AmbiguousPolicy::Resend && chunk.resends == 0 {
                tracing::warn!(items = n, error = %e, "chunk outcome unknown; resending it once as configured");
                chunk.resends += 1;
                requeue.push_back(chunk);
                return;
            }
            let msg =
                format!("the request carrying this item may or may not have been applied ({e})");
            for (index, update) in chunk.items {
                self.unresolve(Unresolved {
                    index,
                    update,
                    job: None,
                    resend: true,
                    fallback: Outcome::Unknown(msg.clone()),
                    fresh: true,
                    retrack: false,
                });
            }
        } else {
            // A refusal of the whole request, not of its items: the credentials, the
            // configuration, or the procedure itself (404 on the bulk path, whose only
            // variable part is the procedure). Every later request would be refused alike.
            if (matches!(e.kind(), ErrorKind::Auth | ErrorKind::Config) || e.status() == Some(404))
                && self.report.stopped.is_none()
            {
                self.report.stopped = Some(e.clone());
            }
            let msg = format!("the request carrying this item was refused: {e}");
            self.finish_chunk(chunk, None, |_| Outcome::Error(msg.clone()));
        }
        self.emit_progress();
    }

    fn finish_chunk(
        &mut self,
        chunk: Chunk,
        job: Option<&JobId>,
        mut outcome: impl FnMut(u64) -> Outcome,
    ) {
        for (index, update) in chunk.items {
            let outcome = outcome(index);
            self.record_item(index, update, job, outcome);
        }
    }

    fn record(&mut self, result: ItemResult) {
        if let Some(f) = &self.cfg.on_item {
            f(&result);
        }
        let p = &mut self.report.progress;
        p.finished += 1;
        match result.outcome {
            Outcome::Success => {
                p.succeeded += 1;
                if let Some(s) = self.report.successes.as_mut() {
                    s.push((result.index, result.identifier));
                }
            }
            Outcome::Unknown(_) => {
                p.unknown += 1;
                self.report.failures.push(result);
            }
            Outcome::Error(_) | Outcome::Invalid(_) => {
                p.failed += 1;
                self.report.failures.push(result);
            }
        }
    }

    fn emit_progress(&self) {
        if let Some(f) = &self.cfg.on_progress {
            f(&self.report.progress);
        }
    }
}

/// `outcome` with `note` added to its message (a success stays a success).
fn with_note(outcome: &Outcome, note: &str) -> Outcome {
    match outcome {
        Outcome::Success => Outcome::Success,
        Outcome::Error(m) => Outcome::Error(format!("{m}; {note}")),
        Outcome::Invalid(m) => Outcome::Invalid(format!("{m}; {note}")),
        Outcome::Unknown(m) => Outcome::Unknown(format!("{m}; {note}")),
    }
}

/// What reading an item's process back showed.
enum Look {
    /// The process holds every value the update asks for.
    Held,
    /// The process exists and does not hold them.
    NotHeld,
    /// No process has the identifier.
    Missing,
    /// A read-back cannot settle this item (why).
    Unsound(String),
    /// The read failed (why); it may be tried again.
    Unreadable(String),
    /// An earlier pending update of the same process goes first; look again next round.
    Later,
}

/// Pending items that update the same process. When one of them holds its values, the earlier
/// ones (in input order) that do not may have been overwritten by it, and sending them again
/// could undo it: they cannot be settled; the later ones may be sent again, after it as in the
/// input. When none holds, none was applied (the last one applied would show), so the earliest
/// goes first and the others wait for the next round.
fn settle_duplicates(pool: &[Unresolved], mut looks: Vec<Look>) -> Vec<Look> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, u) in pool.iter().enumerate() {
        if let Some(id) = u.update.identifier() {
            groups
                .entry(identity_key(id.key(), &id.value()))
                .or_default()
                .push(i);
        }
    }
    for members in groups.into_values().filter(|m| m.len() > 1) {
        if members
            .iter()
            .any(|&i| matches!(looks[i], Look::Unreadable(_)))
        {
            continue;
        }
        let last_held = members
            .iter()
            .copied()
            .filter(|&i| matches!(looks[i], Look::Held))
            .map(|i| pool[i].index)
            .max();
        if let Some(last_held) = last_held {
            // Later updates than the one that shows may be sent again: they come after it in
            // the input, as they would have. Earlier ones may have been overwritten by it.
            for &i in &members {
                if pool[i].index < last_held && matches!(looks[i], Look::NotHeld | Look::Missing) {
                    looks[i] = Look::Unsound(
                        "another update of the same process, whose outcome was also unknown, \
                         is there instead"
                            .into(),
                    );
                }
            }
            continue;
        }
        let first = members.iter().copied().min_by_key(|&i| pool[i].index);
        for &i in &members {
            if Some(i) != first && matches!(looks[i], Look::NotHeld | Look::Missing) {
                looks[i] = Look::Later;
            }
        }
    }
    looks
}

/// Reads back the processes of `pool`: by id one at a time (the documented fetch by id), by
/// primary key through the list endpoint, up to 100 values per query (`{key: [values]}`).
async fn read_back(
    client: &Client,
    procedure: &str,
    pool: &[Unresolved],
    concurrency: usize,
) -> Vec<Look> {
    let mut looks: Vec<Option<Look>> = pool.iter().map(|_| None).collect();
    let mut by_id = Vec::new();
    let mut by_key: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    for (i, u) in pool.iter().enumerate() {
        let Some(ident) = u.update.identifier() else {
            looks[i] = Some(Look::Unsound("the item has no single identifier".into()));
            continue;
        };
        match ident {
            Identifier::Id(id) => by_id.push((i, id)),
            Identifier::PrimaryKey { key, value } => {
                if u.update
                    .update()
                    .data
                    .get(&key)
                    .is_some_and(|v| !same_value(v, &value))
                {
                    looks[i] = Some(Look::Unsound(format!(
                        "the update changes {key}, so the process cannot be found by it"
                    )));
                    continue;
                }
                by_key.entry(key).or_default().push((i, value));
            }
        }
    }
    let fetched: Vec<(usize, Result<Process>)> = futures::stream::iter(by_id)
        .map(|(i, id)| async move { (i, client.get_process(procedure, &id.0).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (i, result) in fetched {
        looks[i] = Some(match result {
            Ok(p) => compare(&p, pool[i].update.update()),
            Err(e) if e.status() == Some(404) => missing(pool[i].update.update()),
            Err(e) => Look::Unreadable(e.to_string()),
        });
    }
    for (key, items) in by_key {
        for group in items.chunks(MAX_LIST_LIMIT as usize) {
            let values: Vec<Value> = group.iter().map(|(_, v)| v.clone()).collect();
            let query = Query::new().any_of(key.clone(), values);
            let found: Result<Vec<Process>> = client
                .list_processes(procedure, query, MAX_LIST_LIMIT)
                .try_collect()
                .await;
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    for (i, _) in group {
                        looks[*i] = Some(Look::Unreadable(e.to_string()));
                    }
                    continue;
                }
            };
            let mut by_value: HashMap<String, Vec<&Process>> = HashMap::new();
            for p in &found {
                if let Some(v) = p.data.get(&key) {
                    by_value.entry(value_text(v)).or_default().push(p);
                }
            }
            for (i, value) in group {
                let update = pool[*i].update.update();
                looks[*i] = Some(match by_value.get(&value_text(value)).map(Vec::as_slice) {
                    None | Some([]) => missing(update),
                    Some([p]) => compare(p, update),
                    Some(_) => Look::Unsound(format!("several processes have {key} = {value}")),
                });
            }
        }
    }
    looks
        .into_iter()
        .map(|l| l.unwrap_or_else(|| Look::Unreadable("not read".into())))
        .collect()
}

/// A process that was not found: a missing process for a plain update, but an update that
/// deletes or restores one may just not be listed.
fn missing(update: &Update) -> Look {
    if update.is_deleted.is_some() {
        Look::Unsound("the process was not found, which may mean it is deleted".into())
    } else {
        Look::Missing
    }
}

/// Whether `process` holds every value `update` asks for.
fn compare(process: &Process, update: &Update) -> Look {
    let data = update
        .data
        .iter()
        .all(|(k, v)| process.data.get(k).is_some_and(|have| same_value(have, v)));
    let held = data
        && update
            .state
            .as_ref()
            .is_none_or(|s| process.state.as_ref() == Some(s))
        && update
            .status
            .as_ref()
            .is_none_or(|s| process.status.as_ref() == Some(s))
        && update
            .assigned_to
            .as_ref()
            .is_none_or(|a| process.assigned_to.as_ref() == Some(a))
        && update
            .next_action_at
            .is_none_or(|t| process.next_action_at == Some(t))
        && update
            .is_deleted
            .is_none_or(|d| process.is_deleted.unwrap_or(false) == d);
    if held { Look::Held } else { Look::NotHeld }
}

/// JSON equality, with numbers compared by value (`1` and `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A primary-key value as text, so `"7"` and `7` find the same process.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Waits for a chunk's job and attributes its entries to the chunk's items (in chunk order);
/// `None` for an item no entry could be trusted for. An error when the job was not followed
/// to its end.
async fn track(
    client: &Client,
    job: &BackgroundJob,
    items: &[(u64, ProcessUpdate)],
    policy: PollPolicy,
    stall: Option<Duration>,
    cancel: CancellationToken,
) -> Result<Vec<Option<Outcome>>> {
    let watch = client.watch(job).stall_timeout(stall);
    let status = Wait::new(&watch)
        .policy(policy)
        .cancel_on(cancel)
        .run()
        .await?;
    let n = items.len() as u64;
    if status.counts.success == n && status.counts.finished() == n && status.counts.total() == n {
        // Every entry succeeded: no need to page through them.
        return Ok(vec![Some(Outcome::Success); items.len()]);
    }
    let entries: Vec<JobEntry> = match client.job_entries(&job.id).try_collect().await {
        Ok(entries) => entries,
        Err(e) => {
            // The job has ended; its items will be read back instead.
            tracing::warn!(job = %job.id, error = %e, "could not read the job's entries");
            return Ok(vec![None; items.len()]);
        }
    };
    // The entries must tell the same story as the job's counts; if they do not, none of them
    // is trusted (a wrong attribution is worse than a read-back).
    let tally = |s: EntryStatus| entries.iter().filter(|e| e.status == s).count() as u64;
    if tally(EntryStatus::Success) != status.counts.success
        || tally(EntryStatus::Error) != status.counts.error
        || tally(EntryStatus::Invalid) != status.counts.invalid
    {
        tracing::warn!(job = %job.id, counts = %status.counts, "the job's entries disagree with its counts; reading the items back instead");
        return Ok(vec![None; items.len()]);
    }
    Ok(map_entries(items, &entries))
}

fn identity_key(key: &str, value: &Value) -> String {
    format!("{key}\u{1f}{}", value_text(value))
}

/// The identifier keys of an echoed item (every key but `update` and the flat update fields).
fn payload_identities(payload: &Value) -> Vec<String> {
    payload
        .as_object()
        .map(|obj| {
            obj.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "update"
                            | "data"
                            | "state"
                            | "status"
                            | "assignedTo"
                            | "nextActionAt"
                            | "isDeleted"
                    )
                })
                .map(|(k, v)| identity_key(k, v))
                .collect()
        })
        .unwrap_or_default()
}

/// Attributes entries to items. An entry is placed only on evidence: its `index` (checked
/// against the identifier it echoes, when it echoes one), or the identifier it echoes when
/// exactly one item of the chunk has it (else the whole echoed item when exactly one is equal).
/// Entries are **never** matched by their order in the list, which is undocumented. An item
/// that no entry claims, or that two entries claim, gets `None` (to be read back).
pub(crate) fn map_entries(
    items: &[(u64, ProcessUpdate)],
    entries: &[JobEntry],
) -> Vec<Option<Outcome>> {
    let n = items.len();
    let mut by_ident: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, u)) in items.iter().enumerate() {
        if let Some(id) = u.identifier() {
            by_ident
                .entry(identity_key(id.key(), &id.value()))
                .or_default()
                .push(i);
        }
    }
    let mut slots: Vec<Option<Outcome>> = vec![None; n];
    let mut claimed = vec![0u32; n];
    for entry in entries {
        let position = entry
            .position
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p < n);
        // Items the echoed identifier points at (None: the entry echoes no identifier).
        let candidates: Option<Vec<usize>> = entry.payload.as_ref().and_then(|payload| {
            let idents = payload_identities(payload);
            if idents.is_empty() {
                return None;
            }
            let mut c: Vec<usize> = idents
                .iter()
                .filter_map(|k| by_ident.get(k))
                .flatten()
                .copied()
                .collect();
            c.sort_unstable();
            c.dedup();
            if c.len() > 1 {
                let equal: Vec<usize> = c
                    .iter()
                    .copied()
                    .filter(|&i| serde_json::to_value(&items[i].1).ok().as_ref() == Some(payload))
                    .collect();
                if equal.len() == 1 {
                    return Some(equal);
                }
            }
            Some(c)
        });
        let target = match (position, candidates) {
            (Some(p), None) => Some(p),
            (Some(p), Some(c)) => c.contains(&p).then_some(p),
            (None, Some(c)) if c.len() == 1 => Some(c[0]),
            _ => None,
        };
        let Some(t) = target else {
            continue;
        };
        claimed[t] += 1;
        slots[t] = entry_outcome(entry);
    }
    slots
        .into_iter()
        .zip(claimed)
        .map(|(s, c)| if c == 1 { s } else { None })
        .collect()
}

/// An entry's outcome, when it has ended (`None` for one not started or in a status this crate
/// does not know: the item is read back).
fn entry_outcome(entry: &JobEntry) -> Option<Outcome> {
    let msg = |default: &str| entry.message.clone().unwrap_or_else(|| default.to_owned());
    match &entry.status {
        EntryStatus::Success => Some(Outcome::Success),
        EntryStatus::Error => Some(Outcome::Error(msg("processing failed (no message)"))),
        EntryStatus::Invalid => Some(Outcome::Invalid(msg("rejected as invalid (no message)"))),
        EntryStatus::NotStarted | EntryStatus::Other(_) => None,
    }
}

/// Serializes `(index, update)` pairs as the request's `processes` array.
struct ChunkBody<'a>(&'a [(u64, ProcessUpdate)]);

impl Serialize for ChunkBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Items<'a>(&'a [(u64, ProcessUpdate)]);
        impl Serialize for Items<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|(_, u)| u))
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("processes", &Items(self.0))?;
        map.end()
    }
}

#[derive(serde::Deserialize)]
struct JobAck {
    id: String,
}

impl Client {
    /// Sends one bulk-update request (`PATCH /v1/ext/procedure/{procedure}/process`) and returns
    /// its background job. No chunking, validation or tracking: the building block under
    /// [`BulkUpdate`]. The request is not retried once it may have reached the server (see the
    /// [bulk module docs](crate::bulk)).
    pub async fn submit_updates(
        &self,
        procedure: &str,
        updates: &[ProcessUpdate],
    ) -> Result<BackgroundJob> {
        if updates.is_empty() {
            return Err(Error::invalid_input("no updates to send"));
        }
        self.submit_body(
            procedure,
            &serde_json::json!({ "processes": updates }),
            updates.len(),
        )
        .await
    }

    pub(crate) async fn submit_chunk(
        &self,
        procedure: &str,
        items: &[(u64, ProcessUpdate)],
    ) -> Result<BackgroundJob> {
        self.submit_body(procedure, &ChunkBody(items), items.len())
            .await
    }

    async fn submit_body<B: Serialize + ?Sized>(
        &self,
        procedure: &str,
        body: &B,
        n: usize,
    ) -> Result<BackgroundJob> {
        let path = format!("/v1/ext/procedure/{}/process", encode_segment(procedure));
        let resp = self
            .http
            .request(Method::Patch, path)
            .json(body)
            .send()
            .await?;
        let env = Envelope::<JobAck>::from_response(&resp, "the bulk-update acknowledgement")?;
        Ok(BackgroundJob::new(env.data.id, n as u64))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items() -> Vec<(u64, ProcessUpdate)> {
        (0..3)
            .map(|i| {
                (
                    i,
                    ProcessUpdate::by_key("lead_id", format!("L-{i}")).state("DONE"),
                )
            })
            .collect()
    }

    fn entry(raw: Value) -> JobEntry {
        JobEntry::from_raw(raw)
    }

    #[test]
    fn entries_without_index_or_identifier_are_never_matched_by_order() {
        let entries: Vec<JobEntry> = ["SUCCESS", "ERROR", "SUCCESS"]
            .iter()
            .map(|s| entry(json!({ "completionStatus": s })))
            .collect();
        assert_eq!(map_entries(&items(), &entries), vec![None, None, None]);
    }

    #[test]
    fn entries_are_matched_by_index_or_by_a_unique_echoed_identifier() {
        let entries = vec![
            entry(
                json!({"completionStatus": "ERROR", "payload": {"lead_id": "L-2", "update": {}}}),
            ),
            entry(json!({"completionStatus": "SUCCESS", "index": 0})),
        ];
        let out = map_entries(&items(), &entries);
        assert_eq!(out[0], Some(Outcome::Success));
        assert_eq!(out[1], None);
        assert!(matches!(out[2], Some(Outcome::Error(_))));
    }

    #[test]
    fn an_index_contradicted_by_the_echoed_identifier_or_claimed_twice_is_not_trusted() {
        let entries = vec![
            entry(
                json!({"completionStatus": "SUCCESS", "index": 0, "payload": {"lead_id": "L-1"}}),
            ),
            entry(json!({"completionStatus": "SUCCESS", "index": 2})),
            entry(json!({"completionStatus": "ERROR", "index": 2})),
        ];
        assert_eq!(map_entries(&items(), &entries), vec![None, None, None]);
    }

    #[test]
    fn completion_status_wins_over_any_other_status_field() {
        let e = entry(json!({"status": "SUCCESS", "completionStatus": "ERROR", "index": 0}));
        assert_eq!(e.status, EntryStatus::Error);
    }

    #[test]
    fn only_http_413_is_a_size_error() {
        let words = Error::new(ErrorKind::InvalidInput, "refused")
            .with_status(400)
            .with_vendor(
                Some("PAYLOAD_TOO_LARGE".into()),
                Some("payload too large".into()),
            );
        assert!(!is_size_error(&words));
        assert!(is_size_error(
            &Error::new(ErrorKind::Http, "x").with_status(413)
        ));
    }
}
