//! Whole-report exports: one stream of rows over as many jobs as the record cursor needs.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bulk_common::poll::WaitOptions;
use bulk_common::{CancellationToken, Result};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::download::Download;
use crate::job::JobHandle;
use crate::job::JobStatus;
use crate::model::{JobDetails, ReadQuery};
use crate::rows::Record;

/// What an export does next; part of an [`ExportCheckpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NextStep {
    /// Create the first job from the query.
    Start,
    /// Wait for (or download) this job, which Zoho keeps for 24 hours.
    Job(JobHandle),
    /// Create a follow-up job from this cursor, which Zoho keeps for 15 minutes.
    Cursor {
        /// The record cursor.
        record_cursor: String,
    },
    /// Nothing left.
    Done,
}

/// Where an export stands between two jobs: every row of the completed jobs has been handed to
/// the consumer. Save it (it serializes) to resume with [`Client::resume_export`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportCheckpoint {
    /// The report's link name.
    pub report: String,
    /// The export's query.
    pub query: ReadQuery,
    /// What comes next.
    pub next: NextStep,
    /// The job after [`next`](Self::next), when it was already created from the cursor (it is
    /// created as soon as a batch is downloaded, before that batch's rows are consumed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<JobHandle>,
    /// Jobs whose rows were all delivered.
    pub jobs_completed: u32,
    /// Rows delivered so far.
    pub rows_delivered: u64,
    /// Job creations whose outcome was unknown (a lost reply, a 5xx, an unreadable success)
    /// and that were therefore made again: each may have left an orphaned job on Zoho, which
    /// cost quota but no data.
    #[serde(default)]
    pub orphaned_jobs: u32,
}

/// Progress of an export, as reported to [`ExportOptions::on_progress`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportEvent<'a> {
    /// A job was created.
    JobCreated(&'a JobHandle),
    /// A job was polled and is still running.
    JobPending {
        /// The job.
        job: &'a JobHandle,
        /// Zoho's status text.
        status: String,
        /// Looks so far.
        polls: u32,
    },
    /// A job's result was downloaded.
    JobDownloaded {
        /// The job.
        job: &'a JobHandle,
        /// Rows Zoho reports in it.
        rows: Option<u64>,
        /// Size of the ZIP archive.
        bytes: u64,
    },
    /// Every row before this point has been delivered.
    Checkpoint(&'a ExportCheckpoint),
    /// Job creations whose outcome was unknown were made again; `orphaned_jobs` is the
    /// export's total so far (as in [`ExportCheckpoint::orphaned_jobs`]).
    JobsRecreated {
        /// Creations so far that may each have left an orphaned job on Zoho.
        orphaned_jobs: u32,
    },
}

/// An export's progress observer (told about jobs and checkpoints; the waits' own
/// [`PollEvent`](bulk_common::poll::PollEvent) observer is [`bulk_common::poll::Observer`]).
type ExportObserver = Arc<dyn Fn(&ExportEvent<'_>) + Send + Sync>;

/// Options of an export: its progress events, and how each of its jobs is waited for.
///
/// ```
/// use std::time::Duration;
/// use zoho_bulk::{CancellationToken, Client, ExportOptions, PollPolicy, WaitOptions};
///
/// let stop = CancellationToken::new();
/// let opts = ExportOptions::new()
///     .on_progress(|e| eprintln!("{e:?}"))
///     .wait_options(
///         WaitOptions::new()
///             .policy(Client::default_poll_policy().max_delay(Duration::from_secs(10)))
///             .cancel_on(stop.clone()),
///     );
/// # let _ = opts;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ExportOptions {
    on_progress: Option<ExportObserver>,
    wait: WaitOptions,
}

impl fmt::Debug for ExportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportOptions")
            .field("on_progress", &self.on_progress.is_some())
            .field("wait", &self.wait)
            .finish()
    }
}

impl ExportOptions {
    /// Default options: no observer, the client's poll policy, no cancellation token (dropping
    /// the stream stops it).
    pub fn new() -> Self {
        ExportOptions::default()
    }

    /// Called with progress events and checkpoints.
    pub fn on_progress(mut self, f: impl Fn(&ExportEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// How each job is waited for: the poll policy (default: the client's), cancellation, and a
    /// [`PollEvent`](bulk_common::poll::PollEvent) observer (called before the
    /// [`ExportEvent::JobPending`] event). What `options` leaves unset keeps what was set before.
    pub fn wait_options(mut self, options: WaitOptions) -> Self {
        self.wait = options.or(&self.wait);
        self
    }

    /// Stops waiting for jobs when `token` is cancelled (the same as
    /// `wait_options(WaitOptions::new().cancel_on(token))`).
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.wait = self.wait.cancel_on(token);
        self
    }
}

/// The rows of an export, in order, across all its jobs. Ends after the last row, or with the
/// first error (which ends the export; resume from the last checkpoint).
pub struct Export {
    inner: Pin<Box<dyn Stream<Item = Result<Record>> + Send>>,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

impl Stream for Export {
    type Item = Result<Record>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct State {
    client: Client,
    checkpoint: ExportCheckpoint,
    delivered: Arc<AtomicU64>,
    opts: ExportOptions,
    prefetch: Option<Prefetch>,
    /// An error met while creating the follow-up job, reported once this batch's rows are out.
    failed: Option<bulk_common::Error>,
}

/// The next job, waited for and downloaded in the background while the consumer reads the
/// current one's rows. Aborted if the export is dropped.
struct Prefetch {
    job: JobHandle,
    task: tokio::task::JoinHandle<Result<(JobDetails, Download)>>,
}

impl Prefetch {
    fn spawn(client: Client, job: JobHandle, opts: ExportOptions) -> Self {
        let handle = job.clone();
        Prefetch {
            job,
            task: tokio::spawn(async move { fetch(&client, &handle, &opts).await }),
        }
    }

    async fn join(mut self) -> Result<(JobDetails, Download)> {
        (&mut self.task).await.map_err(|e| {
            bulk_common::Error::new(
                bulk_common::ErrorKind::Cancelled,
                "the background download of the next job stopped",
            )
            .with_source(e)
        })?
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl State {
    fn emit(&self, event: ExportEvent<'_>) {
        if let Some(f) = &self.opts.on_progress {
            f(&event);
        }
    }
}

impl Client {
    /// Exports every row of `report` matching `query`, across as many jobs as Zoho's row cap
    /// requires.
    ///
    /// Follow-up jobs send only the record cursor and are created as soon as a batch is
    /// downloaded, well within the cursor's 15-minute life and while the batch's rows are being
    /// consumed. Job creations and downloads respect the client's throttles; a broken download
    /// is fetched again; a batch whose rows do not match Zoho's count ends the stream with an
    /// error rather than silently short. A job whose creation may or may not have happened
    /// ([`ErrorKind::AmbiguousOutcome`](crate::ErrorKind::AmbiguousOutcome)) is created again,
    /// within [`ClientBuilder::create_attempts`](crate::ClientBuilder::create_attempts): a read
    /// job changes nothing, so an orphan costs quota, not data; the checkpoints count them
    /// ([`ExportCheckpoint::orphaned_jobs`]).
    pub fn export(&self, report: &str, query: ReadQuery) -> Export {
        self.export_with(report, query, ExportOptions::new())
    }

    /// [`Client::export`] with progress events, checkpoints and cancellation.
    pub fn export_with(&self, report: &str, query: ReadQuery, opts: ExportOptions) -> Export {
        let checkpoint = ExportCheckpoint {
            report: report.to_owned(),
            query,
            next: NextStep::Start,
            following: None,
            jobs_completed: 0,
            rows_delivered: 0,
            orphaned_jobs: 0,
        };
        self.resume_export(checkpoint, opts)
    }

    /// Continues an export from a checkpoint saved by an earlier run: waits for (or downloads)
    /// the pending job, or creates the follow-up job from the saved cursor if it is still
    /// fresh. Rows of the job that was being consumed when the earlier run stopped are
    /// delivered again from its start (at-least-once within that job).
    pub fn resume_export(&self, checkpoint: ExportCheckpoint, opts: ExportOptions) -> Export {
        let delivered = Arc::new(AtomicU64::new(checkpoint.rows_delivered));
        let state = State {
            client: self.clone(),
            checkpoint,
            delivered: delivered.clone(),
            opts,
            prefetch: None,
            failed: None,
        };
        let stream = futures::stream::try_unfold(state, step)
            .map_ok(move |rows| {
                let delivered = delivered.clone();
                rows.inspect_ok(move |_| {
                    delivered.fetch_add(1, Ordering::Relaxed);
                })
            })
            .try_flatten();
        Export {
            inner: Box::pin(stream),
        }
    }

    /// [`Client::export`] decoding each row into `T` by column name.
    pub fn export_as<T: DeserializeOwned + Send + 'static>(
        &self,
        report: &str,
        query: ReadQuery,
    ) -> impl Stream<Item = Result<T>> + Send + Unpin + 'static {
        self.export(report, query)
            .map(|row| row.and_then(|r| r.deserialize::<T>()))
    }
}

/// One job of an export: make sure the job exists, wait, download, create the next job, and
/// hand over this job's rows. Called again only after the previous job's rows were consumed.
async fn step(mut st: State) -> Result<Option<(crate::rows::Rows, State)>> {
    st.checkpoint.rows_delivered = st.delivered.load(Ordering::Relaxed);
    st.emit(ExportEvent::Checkpoint(&st.checkpoint));
    if let Some(e) = st.failed.take() {
        return Err(e);
    }
    let report = st.checkpoint.report.clone();
    let job = match std::mem::replace(&mut st.checkpoint.next, NextStep::Done) {
        NextStep::Done => return Ok(None),
        NextStep::Start => {
            let query = st.checkpoint.query.clone();
            let job = create(&mut st, &report, &query, None).await?;
            st.emit(ExportEvent::JobCreated(&job));
            job
        }
        NextStep::Cursor { record_cursor } => {
            let query = st.checkpoint.query.clone();
            let job = create(&mut st, &report, &query, Some(&record_cursor)).await?;
            st.emit(ExportEvent::JobCreated(&job));
            job
        }
        NextStep::Job(job) => job,
    };
    st.checkpoint.next = NextStep::Job(job.clone());
    let (details, download) = match st.prefetch.take() {
        Some(prefetch) if prefetch.job == job => prefetch.join().await?,
        _ => fetch(&st.client, &job, &st.opts).await?,
    };
    st.emit(ExportEvent::JobDownloaded {
        job: &job,
        rows: details.result.as_ref().and_then(|r| r.count),
        bytes: download.bytes,
    });
    let following = st.checkpoint.following.take();
    let next = match (download.record_cursor, following) {
        (None, _) => NextStep::Done,
        // A resumed export already created this follow-up job before it stopped.
        (Some(_), Some(prefetched)) => {
            st.prefetch = Some(Prefetch::spawn(
                st.client.clone(),
                prefetched.clone(),
                st.opts.clone(),
            ));
            NextStep::Job(prefetched)
        }
        (Some(record_cursor), None) => {
            let query = st.checkpoint.query.clone();
            match create(&mut st, &report, &query, Some(&record_cursor)).await {
                Ok(next) => {
                    st.emit(ExportEvent::JobCreated(&next));
                    // Until this batch's rows are consumed, a resume must still start from
                    // this job, but must reuse the follow-up job rather than create another.
                    st.checkpoint.following = Some(next.clone());
                    st.checkpoint.rows_delivered = st.delivered.load(Ordering::Relaxed);
                    st.emit(ExportEvent::Checkpoint(&st.checkpoint));
                    st.checkpoint.following = None;
                    st.prefetch = Some(Prefetch::spawn(
                        st.client.clone(),
                        next.clone(),
                        st.opts.clone(),
                    ));
                    NextStep::Job(next)
                }
                Err(e) => {
                    // This batch's rows come first. A creation that surely did nothing (a
                    // throttle, say) is tried again after them; one that stayed ambiguous
                    // through every attempt is reported after them.
                    tracing::warn!(error = %e, "could not create the follow-up job yet");
                    if !e.is_retryable() {
                        st.failed = Some(e);
                    }
                    NextStep::Cursor { record_cursor }
                }
            }
        }
    };
    st.checkpoint.next = next;
    st.checkpoint.jobs_completed += 1;
    Ok(Some((download.rows, st)))
}

/// Creates a read job, again after an unknown outcome, counting the possible orphans.
async fn create(
    st: &mut State,
    report: &str,
    query: &ReadQuery,
    record_cursor: Option<&str>,
) -> Result<JobHandle> {
    let mut orphans = 0;
    let created = st
        .client
        .create_settled(report, query, record_cursor, &mut orphans)
        .await;
    if orphans > 0 {
        st.checkpoint.orphaned_jobs += orphans;
        st.emit(ExportEvent::JobsRecreated {
            orphaned_jobs: st.checkpoint.orphaned_jobs,
        });
    }
    created
}

/// Waits for a job (reporting progress) and downloads its result.
async fn fetch(
    client: &Client,
    job: &JobHandle,
    opts: &ExportOptions,
) -> Result<(JobDetails, Download)> {
    let mut wait = client.wait(job).options(opts.wait.clone());
    if opts.on_progress.is_some() || opts.wait.observer_ref().is_some() {
        let (user, f) = (opts.wait.observer_ref().cloned(), opts.on_progress.clone());
        let handle = job.clone();
        wait = wait.on_progress(move |e| {
            if let Some(user) = &user {
                user(e);
            }
            if let Some(f) = &f {
                f(&ExportEvent::JobPending {
                    job: &handle,
                    status: e
                        .progress
                        .status
                        .clone()
                        .unwrap_or_else(|| JobStatus::InProgress.to_string()),
                    polls: e.polls,
                });
            }
        });
    }
    let details = wait.await?;
    let download = client.download(job, Some(&details)).await?;
    Ok((details, download))
}
