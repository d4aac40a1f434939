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
//! # Ambiguous outcomes: the bulk PATCH is not safe to repeat
//! When a chunk's request may have reached the server but no usable reply came back (a
//! connection reset after sending, a 5xx, a timeout, an unreadable reply), the chunk may or may
//! not have been applied, and the job that would say so is unknown. Resending it would create a
//! second job; the values would be set twice, which is harmless for plain assignments but not
//! for state changes that trigger automations, or when another writer changed the process in
//! between. So by default ([`AmbiguousPolicy::Report`]) such a chunk is **not** resent: each of
//! its items is reported as [`Outcome::Unknown`], returned by [`BulkReport::unknown`], for the
//! caller to reconcile (read the processes back with
//! [`Client::get_process`](crate::Client::get_process) or
//! [`Client::list_processes`](crate::Client::list_processes), or resend knowingly).
//! [`AmbiguousPolicy::Resend`] resends such a chunk once instead, for callers whose updates are
//! plain assignments. A 429 refusal is not ambiguous (nothing was done) and is retried by the
//! HTTP layer; a refused chunk (4xx, or `_errors` on 2xx) gives [`Outcome::Error`] to each item.

use std::collections::{HashMap, VecDeque};
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
use crate::model::{Identifier, ProcessUpdate};
use crate::{Client, Error, ErrorKind, Result};

/// Default items per request.
pub const DEFAULT_CHUNK_SIZE: usize = 1000;
/// Default requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What happens to a chunk whose request's outcome is unknown. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AmbiguousPolicy {
    /// Do not resend; report the chunk's items as [`Outcome::Unknown`] (the default).
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
    Tracked(Chunk, BackgroundJob, Result<Vec<Outcome>>),
}

struct Runner {
    cfg: BulkUpdate,
    report: BulkReport,
    chunk_size: usize,
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
        }
    }

    async fn run<S>(mut self, updates: S) -> Result<BulkReport>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        // Fused: an input that has ended is never polled again (some streams panic if it is).
        let mut input = std::pin::pin!(updates.fuse());
        let mut input_done = false;
        // One chunk read ahead while requests are in flight, so a free slot never waits for
        // the input (at most one chunk more in memory).
        let mut ready: Option<Chunk> = None;
        let mut requeue: VecDeque<Chunk> = VecDeque::new();
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let (mut sending, mut tracking) = (0usize, 0usize);
        let cancel = self.cfg.cancel.clone().unwrap_or_default();
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
                    match result {
                        Ok(outcomes) => {
                            let mut outcomes = outcomes.into_iter();
                            self.finish_chunk(chunk, Some(&job.id), |_| {
                                outcomes.next().unwrap_or_else(|| {
                                    Outcome::Unknown(
                                        "the job reported no entry for this item".into(),
                                    )
                                })
                            });
                        }
                        Err(e) => {
                            let msg = format!(
                                "job {} could not be followed to its end ({e}); it may still apply this item",
                                job.id
                            );
                            self.finish_chunk(chunk, Some(&job.id), |_| {
                                Outcome::Unknown(msg.clone())
                            });
                        }
                    }
                    self.emit_progress();
                }
            }
        }
        let mut report = self.report;
        report.failures.sort_by_key(|r| r.index);
        if let Some(s) = report.successes.as_mut() {
            s.sort_by_key(|(i, _)| *i);
        }
        Ok(report)
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
        tasks.spawn(async move {
            let result = track(&client, &job, &chunk.items, policy, cancel).await;
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
            let msg = format!(
                "the request carrying this item may or may not have been applied ({e}); it was not resent"
            );
            self.finish_chunk(chunk, None, |_| Outcome::Unknown(msg.clone()));
        } else {
            if matches!(e.kind(), ErrorKind::Auth | ErrorKind::Config)
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
            let keep = !matches!(outcome, Outcome::Success);
            self.record(ItemResult {
                index,
                identifier: update.identifier(),
                outcome,
                job: job.cloned(),
                update: keep.then_some(update),
            });
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

/// Waits for a chunk's job and maps its entries back to the chunk's items (in chunk order).
async fn track(
    client: &Client,
    job: &BackgroundJob,
    items: &[(u64, ProcessUpdate)],
    policy: PollPolicy,
    cancel: CancellationToken,
) -> Result<Vec<Outcome>> {
    let watch = client.watch(job);
    let status = Wait::new(&watch)
        .policy(policy)
        .cancel_on(cancel)
        .run()
        .await?;
    let n = items.len() as u64;
    if status.counts.success == n && status.counts.not_started == 0 {
        // Every entry succeeded: no need to page through them.
        return Ok(vec![Outcome::Success; items.len()]);
    }
    let entries: Vec<JobEntry> = client.job_entries(&job.id).try_collect().await?;
    Ok(map_entries(items, entries))
}

fn identity_key(key: &str, value: &Value) -> String {
    match value {
        Value::String(s) => format!("{key}\u{1f}{s}"),
        other => format!("{key}\u{1f}{other}"),
    }
}

/// Matches entries to items: by position when the entry says, else by the identifier in the
/// echoed payload, else by order. Items without an entry come out as unknown.
pub(crate) fn map_entries(items: &[(u64, ProcessUpdate)], entries: Vec<JobEntry>) -> Vec<Outcome> {
    let mut slots: Vec<Option<Outcome>> = vec![None; items.len()];
    let mut by_ident: Option<HashMap<String, VecDeque<usize>>> = None;
    let mut unplaced = Vec::new();
    for entry in entries {
        let outcome = entry_outcome(&entry);
        if let Some(p) = entry.position.and_then(|p| usize::try_from(p).ok())
            && p < slots.len()
            && slots[p].is_none()
        {
            slots[p] = Some(outcome);
            continue;
        }
        let placed = entry.payload.as_ref().and_then(|payload| {
            let map = by_ident.get_or_insert_with(|| {
                let mut m: HashMap<String, VecDeque<usize>> = HashMap::new();
                for (i, (_, u)) in items.iter().enumerate() {
                    if let Some(id) = u.identifier() {
                        m.entry(identity_key(id.key(), &id.value()))
                            .or_default()
                            .push_back(i);
                    }
                }
                m
            });
            let obj = payload.as_object()?;
            obj.iter()
                .filter(|(k, _)| k.as_str() != "update")
                .find_map(|(k, v)| {
                    let queue = map.get_mut(&identity_key(k, v))?;
                    while let Some(i) = queue.pop_front() {
                        if slots[i].is_none() {
                            return Some(i);
                        }
                    }
                    None
                })
        });
        match placed {
            Some(i) => slots[i] = Some(outcome),
            None => unplaced.push(outcome),
        }
    }
    // Entries that said neither position nor identifier fill the remaining items in order.
    let mut rest = unplaced.into_iter();
    slots
        .into_iter()
        .map(|s| {
            s.or_else(|| rest.next()).unwrap_or_else(|| {
                Outcome::Unknown("the job reported no entry for this item".into())
            })
        })
        .collect()
}

fn entry_outcome(entry: &JobEntry) -> Outcome {
    let msg = |default: &str| entry.message.clone().unwrap_or_else(|| default.to_owned());
    match &entry.status {
        EntryStatus::Success => Outcome::Success,
        EntryStatus::Error => Outcome::Error(msg("processing failed (no message)")),
        EntryStatus::Invalid => Outcome::Invalid(msg("rejected as invalid (no message)")),
        EntryStatus::NotStarted => {
            Outcome::Unknown("the job ended with this item not started".into())
        }
        EntryStatus::Other(s) => {
            Outcome::Unknown(format!("the job reported status {s:?} for this item"))
        }
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
