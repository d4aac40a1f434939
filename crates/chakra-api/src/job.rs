//! Background jobs: the handle a bulk update returns, its entry counts, its entries, and the
//! [`Job`] implementation the shared poll driver runs.
//!
//! The job-level terminal status is undocumented, so completion is judged from the entry
//! counts in `_meta.bjEntryCompletionStatusVsCount`: the job is done when no entry is
//! `NOT_STARTED` and the counted entries cover every submitted item, or when `completedAt` is
//! set (non-zero).

use std::collections::BTreeMap;
use std::fmt;

use bulk_common::paginate::{Page, paginate};
use bulk_common::poll::{Job, JobState, PollPolicy, Progress, Wait};
use bulk_common::{Method, encode_segment};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::Envelope;
use crate::model::Timestamp;
use crate::{Client, Error, ErrorKind, Result};

/// A background job id (a UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A submitted bulk update: its job id and how many items it carried. Serializable, so a
/// process can resume waiting on a job an earlier run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackgroundJob {
    /// The job id.
    pub id: JobId,
    /// Items in the request that created it.
    pub submitted: u64,
}

impl BackgroundJob {
    /// A handle on job `id` that carried `submitted` items.
    pub fn new(id: impl Into<String>, submitted: u64) -> Self {
        BackgroundJob {
            id: JobId(id.into()),
            submitted,
        }
    }
}

/// How a job entry (one submitted item) ended, or that it has not yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryStatus {
    /// Rejected as invalid, never processed.
    Invalid,
    /// Waiting.
    NotStarted,
    /// Processed.
    Success,
    /// Processed, and failed.
    Error,
    /// A value this crate does not know.
    Other(String),
}

impl EntryStatus {
    /// Parses a status case-insensitively.
    pub fn parse(s: &str) -> EntryStatus {
        match s.trim().to_ascii_uppercase().as_str() {
            "INVALID" => EntryStatus::Invalid,
            "NOT_STARTED" => EntryStatus::NotStarted,
            "SUCCESS" => EntryStatus::Success,
            "ERROR" => EntryStatus::Error,
            _ => EntryStatus::Other(s.to_owned()),
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
            let slot = match EntryStatus::parse(k) {
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
    pub completion_status: Option<String>,
    /// `statusMessage`, when sent.
    pub status_message: Option<String>,
    /// `completedAt` (absent or zero while running).
    pub completed_at: Option<Timestamp>,
    /// Entries per status.
    pub counts: EntryCounts,
}

impl JobStatus {
    /// Whether the job is over for a request of `submitted` items: no entry waits and all are
    /// counted, or `completedAt` is set.
    pub fn is_complete(&self, submitted: u64) -> bool {
        let counted = self.counts.not_started == 0 && self.counts.finished() >= submitted;
        let stamped = self.completed_at.is_some_and(|t| t.as_millis() > 0);
        counted || stamped
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobData {
    id: Option<String>,
    #[serde(default)]
    completion_status: Option<String>,
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
        let status = get(&["status", "completionStatus", "entryStatus", "state"])
            .and_then(|v| v.as_str().map(EntryStatus::parse))
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
    format!("/v1/ext/background-job/{}", encode_segment(&id.0))
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
            id: env.data.id.map(JobId).unwrap_or_else(|| id.clone()),
            completion_status: env.data.completion_status,
            status_message: env.data.status_message,
            completed_at: env.data.completed_at,
            counts: EntryCounts::from_meta(env.meta.as_ref()),
        })
    }

    /// Waits for a job to finish under `policy` (its deadline included) with the shared poll
    /// driver, and returns its final look.
    pub async fn wait(&self, job: &BackgroundJob, policy: PollPolicy) -> Result<JobStatus> {
        Wait::new(&self.watch(job)).policy(policy).run().await
    }

    /// A [`Job`] for the shared poll driver ([`bulk_common::poll::Wait`]), for callers who want
    /// events or cancellation.
    pub fn watch<'a>(&'a self, job: &'a BackgroundJob) -> JobWatch<'a> {
        JobWatch { client: self, job }
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

/// A background job as the shared poll driver sees it.
#[derive(Debug)]
pub struct JobWatch<'a> {
    client: &'a Client,
    job: &'a BackgroundJob,
}

impl Job for JobWatch<'_> {
    type Output = JobStatus;

    async fn poll(&self) -> Result<JobState<JobStatus>> {
        let status = self.client.job_status(&self.job.id).await?;
        if status.is_complete(self.job.submitted) {
            return Ok(JobState::Done(status));
        }
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
            progress = progress.status(s.clone());
        }
        Ok(JobState::Pending(progress))
    }

    fn describe(&self) -> String {
        self.job.id.0.clone()
    }
}
