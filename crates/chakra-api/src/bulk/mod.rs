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

mod entries;
mod reconcile;
mod report;
mod runner;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::{PollPolicy, WaitOptions};
use bulk_common::{CancellationToken, Method, encode_segment};
use futures::Stream;
use serde::Serialize;
use serde::ser::Serializer;

#[cfg(test)]
pub(crate) use crate::bulk::entries::map_entries;
pub use crate::bulk::report::{BulkProgress, BulkReport, ItemResult, Outcome};
use crate::bulk::runner::Runner;
use crate::envelope::Envelope;
use crate::job::JobHandle;
use crate::model::ProcessUpdate;
use crate::{Client, Error, Result};

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
    wait: WaitOptions,
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
            .field("wait", &self.wait)
            .field("ambiguous", &self.ambiguous)
            .field("reconcile", &self.reconcile)
            .field("stall_timeout", &self.stall_timeout)
            .finish_non_exhaustive()
    }
}

impl BulkUpdate {
    pub(crate) fn new(client: Client, procedure: String) -> Self {
        BulkUpdate {
            client,
            procedure: procedure.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            max_pending: None,
            wait: WaitOptions::new(),
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

    /// How each chunk's job is polled (default [`Client::default_poll_policy`]); its deadline
    /// applies per job, and items of a job still running at the deadline are reported as
    /// unknown.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.wait = self.wait.policy(policy);
        self
    }

    /// How each chunk's job is waited for, as any vendor's wait takes it: the policy (as
    /// [`poll_policy`](Self::poll_policy)), a progress observer called after each look at any
    /// chunk's job, whether the first look comes at once, and a cancellation token (as
    /// [`cancel_on`](Self::cancel_on): it also stops reading input). What `options` leaves unset
    /// keeps what was set before.
    pub fn wait_options(mut self, options: WaitOptions) -> Self {
        if let Some(token) = options.cancel_token() {
            self.cancel = Some(token.clone());
        }
        self.wait = options.or(&self.wait);
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

    /// Checks every item first and fails with one [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error listing each
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
    ) -> Result<JobHandle> {
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
    ) -> Result<JobHandle> {
        self.submit_body(procedure, &ChunkBody(items), items.len())
            .await
    }

    async fn submit_body<B: Serialize + ?Sized>(
        &self,
        procedure: &str,
        body: &B,
        n: usize,
    ) -> Result<JobHandle> {
        let path = format!("/v1/ext/procedure/{}/process", encode_segment(procedure));
        let resp = self
            .http
            .request(Method::Patch, path)
            .json(body)
            .send()
            .await?;
        let env = Envelope::<JobAck>::from_response(&resp, "the bulk-update acknowledgement")?;
        Ok(JobHandle::new(env.data.id, n as u64))
    }
}
