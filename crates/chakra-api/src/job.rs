//! Background jobs: the handle a bulk update returns, its entry counts, its entries, and the
//! [`Job`] implementation the shared poll driver runs.
//!
//! The job's documented `completionStatus` is read first: `IN_PROGRESS` (the only value the
//! docs show) means running, whatever else the reply says; a value naming a failure (`FAILED`,
//! `ERROR`, ...) ends the wait with [`ErrorKind::JobFailed`]; a value naming an end
//! (`COMPLETED`, ...) ends it. The terminal values are not documented, so when the field is
//! absent (the docs' fetch sample omits it) or holds a value this crate does not know,
//! completion is judged from the entry counts in `_meta.bjEntryCompletionStatusVsCount`: the job
//! is done when no entry is `NOT_STARTED` and the counted entries cover every submitted item,
//! or when `completedAt` is set (non-zero).
//!
//! A job whose counts stop moving for the [stall timeout](JobWatch::stall_timeout) (10 minutes
//! by default) ends the wait with [`ErrorKind::DeadlineExceeded`], its counts in the error's
//! details, instead of waiting out the whole deadline.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use bulk_common::paginate::{Page, paginate};
use bulk_common::poll::{Job, JobFailure, JobState, JobWait, PollPolicy, Progress};
use bulk_common::{Method, encode_segment};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::envelope::Envelope;
use crate::model::Timestamp;
use crate::{Client, Error, ErrorKind, Result};

bulk_common::id_type!(
    /// A background job id (a UUID).
    JobId
);

/// A submitted bulk update: its job id and how many items it carried.
///
/// Serializable, so a process can save it and resume waiting on the job in a later run:
///
/// ```no_run
/// # async fn run(client: chakra_api::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use chakra_api::JobHandle;
/// let saved = std::fs::read_to_string("job.json")?;
/// let handle: JobHandle = serde_json::from_str(&saved)?;
/// let status = client.wait(&handle).poll_immediately(true).await?;
/// println!("{}", status.counts);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    id: JobId,
    submitted: u64,
}

impl JobHandle {
    /// A handle on job `id` that carried `submitted` items.
    pub fn new(id: impl Into<JobId>, submitted: u64) -> Self {
        JobHandle {
            id: id.into(),
            submitted,
        }
    }

    /// The job id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Items in the request that created the job.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }
}

bulk_common::open_enum!(
    /// How a job entry (one submitted item) ended, or that it has not yet: an entry's
    /// `completionStatus`, and the keys of `_meta.bjEntryCompletionStatusVsCount`.
    EntryStatus {
        /// Rejected as invalid, never processed.
        Invalid = "INVALID",
        /// Waiting.
        NotStarted = "NOT_STARTED",
        /// Processed.
        Success = "SUCCESS",
        /// Processed, and failed.
        Error = "ERROR",
    }
);

bulk_common::open_enum!(
    /// A job's `completionStatus`. Only `IN_PROGRESS` is documented; the other values are the
    /// words a job system may use, grouped by what they mean for a wait.
    CompletionStatus {
        /// Running (`IN_PROGRESS`, the documented value).
        InProgress = "IN_PROGRESS" | "RUNNING" | "STARTED" | "PROCESSING",
        /// Accepted, not started yet.
        NotStarted = "NOT_STARTED" | "PENDING" | "QUEUED" | "SCHEDULED",
        /// Over.
        Completed = "COMPLETED" | "COMPLETE" | "SUCCESS" | "DONE" | "FINISHED",
        /// Failed as a whole.
        Failed = "FAILED" | "FAILURE" | "ERROR",
        /// Aborted.
        Aborted = "ABORTED",
        /// Cancelled.
        Cancelled = "CANCELLED" | "CANCELED",
    }
);

impl CompletionStatus {
    fn phase(&self) -> JobPhase {
        match self {
            CompletionStatus::InProgress | CompletionStatus::NotStarted => JobPhase::Running,
            CompletionStatus::Completed => JobPhase::Finished,
            CompletionStatus::Failed | CompletionStatus::Aborted | CompletionStatus::Cancelled => {
                JobPhase::Failed
            }
            CompletionStatus::Other(_) => JobPhase::Unknown,
        }
    }
}

/// Entries per status, from `_meta.bjEntryCompletionStatusVsCount`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryCounts {
    /// `INVALID` entries.
    pub invalid: u64,
    /// `NOT_STARTED` entries.
    pub not_started: u64,
    /// `SUCCESS` entries.
    pub success: u64,
    /// `ERROR` entries.
    pub error: u64,
    /// Counts under statuses this crate does not know.
    pub other: BTreeMap<String, u64>,
}

impl EntryCounts {
    pub(crate) fn from_meta(meta: Option<&Value>) -> EntryCounts {
        let mut counts = EntryCounts::default();
        let Some(map) = meta
            .and_then(|m| m.get("bjEntryCompletionStatusVsCount"))
            .and_then(Value::as_object)
        else {
            return counts;
        };
        for (k, v) in map {
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
            // Several spellings may name one status; the vendor's counts may be absurd: add
            // without overflowing.
            let slot = match EntryStatus::from(k.as_str()) {
                EntryStatus::Invalid => &mut counts.invalid,
                EntryStatus::NotStarted => &mut counts.not_started,
                EntryStatus::Success => &mut counts.success,
                EntryStatus::Error => &mut counts.error,
                EntryStatus::Other(s) => counts.other.entry(s).or_default(),
            };
            *slot = slot.saturating_add(n);
        }
        counts
    }

    /// Entries that reached an end (invalid, success, error).
    pub fn finished(&self) -> u64 {
        self.invalid
            .saturating_add(self.success)
            .saturating_add(self.error)
    }

    /// Every counted entry.
    pub fn total(&self) -> u64 {
        self.other
            .values()
            .fold(self.finished().saturating_add(self.not_started), |a, &n| {
                a.saturating_add(n)
            })
    }
}

/// A look at a background job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobStatus {
    /// The job id.
    pub id: JobId,
    /// `completionStatus`, when sent (only `IN_PROGRESS` is documented).
    pub completion_status: Option<CompletionStatus>,
    /// `statusMessage`, when sent.
    pub status_message: Option<String>,
    /// `completedAt` (absent or zero while running).
    pub completed_at: Option<Timestamp>,
    /// Entries per status.
    pub counts: EntryCounts,
}

impl JobStatus {
    /// Whether the job is over for a request of `submitted` items. The documented
    /// `completionStatus` is read first: a running value means not over, an ending or failing
    /// value means over. Without one this crate knows: no entry waits and all are counted, or
    /// `completedAt` is set.
    pub fn is_complete(&self, submitted: u64) -> bool {
        match self.phase() {
            JobPhase::Running => false,
            JobPhase::Finished | JobPhase::Failed => true,
            JobPhase::Unknown => {
                let counted = self.counts.not_started == 0 && self.counts.finished() >= submitted;
                let stamped = self.completed_at.is_some_and(|t| t.as_millis() > 0);
                counted || stamped
            }
        }
    }

    /// Whether `completionStatus` names a failure of the whole job (`FAILED`, `ERROR`,
    /// `ABORTED`, `CANCELLED`; undocumented values, matched case-insensitively).
    pub fn is_failed(&self) -> bool {
        self.phase() == JobPhase::Failed
    }

    fn phase(&self) -> JobPhase {
        self.completion_status
            .as_ref()
            .map_or(JobPhase::Unknown, CompletionStatus::phase)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobPhase {
    Running,
    Finished,
    Failed,
    Unknown,
}

impl EntryCounts {
    /// The counts as JSON, for error details.
    pub fn to_json(&self) -> Value {
        json!({
            "INVALID": self.invalid, "NOT_STARTED": self.not_started,
            "SUCCESS": self.success, "ERROR": self.error, "other": self.other,
        })
    }
}

impl fmt::Display for EntryCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} success, {} error, {} invalid, {} not started",
            self.success, self.error, self.invalid, self.not_started
        )?;
        for (k, n) in &self.other {
            write!(f, ", {n} {k}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobData {
    id: Option<String>,
    #[serde(default)]
    completion_status: Option<CompletionStatus>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    completed_at: Option<Timestamp>,
}

/// One entry of a background job: one submitted item and how it ended. The entry shape is not
/// documented, so fields are read leniently and the raw entry is kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobEntry {
    /// The entry's status.
    pub status: EntryStatus,
    /// Why it failed, when it did.
    pub message: Option<String>,
    /// The item's position in the request, when the server says (`index`).
    pub position: Option<u64>,
    /// The item as submitted, when the server echoes it (`payload` / `input`).
    pub payload: Option<Value>,
    /// The entry as received.
    pub raw: Value,
}

impl JobEntry {
    pub(crate) fn from_raw(raw: Value) -> JobEntry {
        let get = |keys: &[&str]| keys.iter().find_map(|k| raw.get(*k)).cloned();
        // `completionStatus` is the documented name (the job's counts are "grouped by their
        // completion status"); it wins over any other status-like field an entry may carry.
        let status = get(&["completionStatus", "status", "entryStatus"])
            .and_then(|v| v.as_str().map(EntryStatus::from))
            .unwrap_or_else(|| EntryStatus::Other("missing".into()));
        let message = get(&[
            "statusMessage",
            "message",
            "error",
            "errorMessage",
            "reason",
        ])
        .and_then(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Object(_) => crate::envelope::error_parts(&v).1,
            other => Some(other.to_string()),
        });
        let position = get(&["index", "position", "seq"]).and_then(|v| v.as_u64());
        let payload = get(&["payload", "input", "request", "data"]).filter(|v| v.is_object());
        JobEntry {
            status,
            message,
            position,
            payload,
            raw,
        }
    }
}

fn job_path(id: &JobId) -> String {
    format!("/v1/ext/background-job/{}", encode_segment(id.as_str()))
}

fn next_page_path(meta: Option<&Value>) -> Option<String> {
    let meta = meta?;
    let next = [
        "nextPage",
        "next",
        "nextPagePath",
        "nextPageUrl",
        "next_page",
    ]
    .iter()
    .find_map(|k| meta.get(*k).and_then(Value::as_str))?;
    let next = next.trim();
    if next.is_empty() {
        None
    } else if next.starts_with('/') || next.contains("://") {
        Some(next.to_owned())
    } else {
        Some(format!("/{next}"))
    }
}

impl Client {
    /// Looks at a background job once.
    pub async fn job_status(&self, id: &JobId) -> Result<JobStatus> {
        let env = self
            .http
            .request(Method::Get, job_path(id))
            .send_decoded(|r| Envelope::<JobData>::from_response(r, "a background job"))
            .await?;
        Ok(JobStatus {
            id: env.data.id.map(JobId::new).unwrap_or_else(|| id.clone()),
            completion_status: env.data.completion_status,
            status_message: env.data.status_message,
            completed_at: env.data.completed_at,
            counts: EntryCounts::from_meta(env.meta.as_ref()),
        })
    }

    /// The poll defaults for this vendor's background jobs: first look after 500 ms, growing
    /// ×1.5 up to 10 s, never closer than 100 ms, a one-hour deadline per job. The one place
    /// these defaults live; [`wait`](Self::wait) and [`BulkUpdate`](crate::BulkUpdate) use them
    /// unless told otherwise.
    pub fn default_poll_policy() -> PollPolicy {
        PollPolicy::default()
            .first_delay(Duration::from_millis(500))
            .max_delay(Duration::from_secs(10))
            .min_delay(Duration::from_millis(100))
            .deadline(Some(Duration::from_secs(3600)))
    }

    /// Waits for a job to finish, with the shared poll driver, and returns its final look.
    ///
    /// Await it directly (with [`default_poll_policy`](Self::default_poll_policy) and the
    /// [default stall timeout](DEFAULT_STALL_TIMEOUT)), or set options first:
    ///
    /// ```no_run
    /// # async fn run(client: chakra_api::Client, handle: chakra_api::JobHandle) -> chakra_api::Result<()> {
    /// use chakra_api::{CancellationToken, PollPolicy};
    /// let stop = CancellationToken::new();
    /// let status = client
    ///     .wait(&handle)
    ///     .on_progress(|e| eprintln!("{:?} of {:?} left", e.progress.remaining, e.progress.total))
    ///     .cancel_on(stop.clone())
    ///     .await?;
    /// println!("{}", status.counts);
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, job: &JobHandle) -> JobWait<JobWatch> {
        JobWait::new(self.watch(job), Client::default_poll_policy())
    }

    /// The job as a [`Job`] of the shared poll driver: owned (it holds a clone of the client),
    /// so it can be moved into a task or handed to [`JobWait`] with a
    /// [stall timeout](JobWatch::stall_timeout) of its own.
    pub fn watch(&self, job: &JobHandle) -> JobWatch {
        JobWatch {
            client: self.clone(),
            job: job.clone(),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            last_change: Mutex::new(None),
        }
    }

    /// The job's entries, as a lazy stream that follows the next-page path in `_meta`.
    pub fn job_entries(&self, id: &JobId) -> impl Stream<Item = Result<JobEntry>> + Send + 'static {
        let client = self.clone();
        let first = format!("{}/entries", job_path(id));
        paginate(first, move |path: String| {
            let client = client.clone();
            async move {
                let env = client
                    .http
                    .request(Method::Get, path)
                    .send_decoded(|r| Envelope::<Vec<Value>>::from_response(r, "job entries"))
                    .await?;
                let next = next_page_path(env.meta.as_ref());
                let items = env.data.into_iter().map(JobEntry::from_raw).collect();
                Ok(Page::new(items, next))
            }
        })
    }
}

/// How long a job's entry counts may stay the same before the wait ends (10 minutes).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(600);

/// A background job as the shared poll driver sees it (made by [`Client::watch`]). Owned and
/// `Clone`; a clone starts its stall clock afresh.
#[derive(Debug)]
pub struct JobWatch {
    client: Client,
    job: JobHandle,
    stall_timeout: Option<Duration>,
    /// The counts last seen and when they last changed.
    last_change: Mutex<Option<(EntryCounts, Instant)>>,
}

impl Clone for JobWatch {
    fn clone(&self) -> Self {
        JobWatch {
            client: self.client.clone(),
            job: self.job.clone(),
            stall_timeout: self.stall_timeout,
            last_change: Mutex::new(None),
        }
    }
}

impl JobWatch {
    /// The job being watched.
    pub fn handle(&self) -> &JobHandle {
        &self.job
    }

    /// How long the entry counts may stay unchanged before the wait ends with
    /// [`ErrorKind::DeadlineExceeded`] carrying the counts (default
    /// [`DEFAULT_STALL_TIMEOUT`]; `None`: wait to the poll deadline).
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Notes the counts; an error when they have not moved for the stall timeout.
    fn check_stall(&self, counts: &EntryCounts) -> Result<()> {
        let now = Instant::now();
        let mut last = self.last_change.lock().unwrap_or_else(|p| p.into_inner());
        match last.as_ref() {
            Some((seen, since)) if seen == counts => {
                if let Some(limit) = self.stall_timeout
                    && now.duration_since(*since) >= limit
                {
                    return Err(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!(
                            "job {} made no progress for {} s (entries: {counts}); it may still \
                             finish later",
                            self.job.id,
                            limit.as_secs()
                        ),
                    )
                    .with_details(json!({
                        "job": self.job.id.as_str(), "submitted": self.job.submitted,
                        "counts": counts.to_json(), "stalled_for_secs": limit.as_secs(),
                    })));
                }
            }
            _ => *last = Some((counts.clone(), now)),
        }
        Ok(())
    }
}

impl Job for JobWatch {
    type Output = JobStatus;

    async fn poll(&self) -> Result<JobState<JobStatus>> {
        let status = self.client.job_status(&self.job.id).await?;
        if status.is_failed() {
            let mut failure = JobFailure::new(status.status_message.clone().unwrap_or_else(|| {
                format!(
                    "the job ended with completionStatus {:?}",
                    status
                        .completion_status
                        .as_ref()
                        .map(CompletionStatus::as_str)
                )
            }))
            .details(json!({ "counts": status.counts.to_json() }));
            if let Some(code) = &status.completion_status {
                failure = failure.code(code.as_str());
            }
            return Ok(JobState::Failed(failure));
        }
        if status.is_complete(self.job.submitted) {
            return Ok(JobState::Done(status));
        }
        self.check_stall(&status.counts)?;
        let counted = status.counts.total();
        if counted > self.job.submitted.saturating_mul(2) + 10 {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "job {} counts {counted} entries for {} submitted items",
                    self.job.id, self.job.submitted
                ),
            ));
        }
        let remaining = self
            .job
            .submitted
            .saturating_sub(status.counts.finished())
            .max(status.counts.not_started);
        let mut progress = Progress::new()
            .total(self.job.submitted)
            .remaining(remaining);
        if let Some(s) = &status.completion_status {
            progress = progress.status(s.as_str());
        }
        Ok(JobState::Pending(progress))
    }

    fn describe(&self) -> String {
        self.job.id.to_string()
    }
}
