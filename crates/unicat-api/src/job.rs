//! Background jobs, tracked through the sync feed.
//!
//! Unicat has no job-status endpoint: a job reports its progress as `cc` sync items whose
//! `data_key` is the job token. A [`Client`] reads the feed with ONE reader,
//! shared by every job it waits for: concurrent waits ask the reader to look, and a look that
//! happened a moment ago (or is under way) serves them all.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bulk_common::poll::{Job, JobFailure, JobState, Progress};
use bulk_common::{HttpClient, Idempotency, Method, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::Client;
use crate::model::{Gid, JobToken, envelope};

/// A submitted job: its token and the `cc` feed cursor read just before it was submitted.
///
/// It serializes, so a process can wait for a job that an earlier one started:
///
/// ```
/// # use unicat_api::JobHandle;
/// let handle: JobHandle = serde_json::from_str(
///     r#"{"token":"7c136ddb-0000-4000-8000-000000000000","cursor":1520,"operation":"records/delete"}"#,
/// )?;
/// assert_eq!(handle.cursor(), 1520);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    token: JobToken,
    cursor: u64,
    operation: String,
}

impl JobHandle {
    /// A handle for a job token, to be looked for in the feed after `cursor`.
    pub fn new(token: impl Into<JobToken>, cursor: u64, operation: impl Into<String>) -> Self {
        JobHandle {
            token: token.into(),
            cursor,
            operation: operation.into(),
        }
    }

    /// The job token (`result["job.token"]`).
    pub fn token(&self) -> &JobToken {
        &self.token
    }

    /// The `cc` cursor read before the job was submitted.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The operation that started the job (`records/delete`, ...).
    pub fn operation(&self) -> &str {
        &self.operation
    }
}

bulk_common::open_enum!(
    /// A job's status in the feed (`data.status` of its `cc` reports).
    JobStatus {
        /// Waiting to start.
        Queued = "queued",
        /// Running.
        Processing = "processing",
        /// Finished.
        Done = "done",
        /// Refused or failed (`info.error` says why).
        Rejected = "rejected",
    }
);

/// The latest report of a job in the sync feed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobReport {
    /// The job token.
    pub token: JobToken,
    /// The job's name (`bulk_delete_records`, ...).
    pub job: String,
    /// Its status.
    pub status: JobStatus,
    /// `info.total`, if reported.
    pub total: Option<u64>,
    /// `info.remaining`, if reported.
    pub remaining: Option<u64>,
    /// `info.error`, set on a rejected job.
    pub error: Option<Value>,
    /// The whole `info` object (job-specific; may be `{}`).
    pub info: Value,
    /// The project, or `None` for a global job.
    pub project_gid: Option<Gid>,
    /// The feed cursor of this report.
    pub cursor: u64,
}

impl JobReport {
    fn from_item(item: &SyncItem) -> Option<Self> {
        let data = item.data.as_object()?;
        let info = data.get("info").cloned().unwrap_or(Value::Null);
        let count = |k: &str| info.get(k).and_then(Value::as_u64);
        Some(JobReport {
            token: JobToken::new(item.data_key.clone()?),
            job: data
                .get("job")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            status: JobStatus::from(data.get("status").and_then(Value::as_str)?),
            total: count("total"),
            remaining: count("remaining"),
            error: info.get("error").filter(|e| !e.is_null()).cloned(),
            project_gid: data
                .get("project_gid")
                .and_then(Value::as_str)
                .map(Gid::from),
            info,
            cursor: item.cursor,
        })
    }

    /// What the job's `info` reports as errors, if anything: `info.error` (documented for
    /// rejected jobs; the SDK also refuses a `done` job carrying it) and, because `info` is
    /// job-dependent and undocumented beyond that, any non-empty `errors`, `failed` or
    /// `failures` entry too. A report with errors is never taken for a clean `done`.
    pub fn errors(&self) -> Option<Value> {
        let mut found = serde_json::Map::new();
        for key in ERROR_KEYS {
            if let Some(v) = self.info.get(key).filter(|v| reports_something(v)) {
                found.insert((*key).to_owned(), v.clone());
            }
        }
        (!found.is_empty()).then_some(Value::Object(found))
    }

    /// The items the job's `info` lists as not applied (`failed`, `failures` or `errors`
    /// when they are lists), as given.
    pub fn failed_items(&self) -> Vec<Value> {
        ["failed", "failures", "errors"]
            .iter()
            .filter_map(|k| self.info.get(k).and_then(Value::as_array))
            .flatten()
            .cloned()
            .collect()
    }

    fn progress(&self) -> Progress {
        let mut p = Progress::new().status(self.status.as_str());
        if let Some(t) = self.total {
            p = p.total(t);
        }
        if let Some(r) = self.remaining {
            p = p.remaining(r);
        }
        p
    }
}

/// The `info` keys read as error reports (see [`JobReport::errors`]).
const ERROR_KEYS: &[&str] = &["error", "errors", "failed", "failures"];

/// Whether an `info` value reports something (not null, false, 0 or empty).
fn reports_something(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[derive(Debug, Deserialize)]
struct SyncItem {
    #[serde(default, rename = "type")]
    kind: String,
    cursor: u64,
    #[serde(default)]
    data_type: String,
    #[serde(default)]
    data_key: Option<String>,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
struct SyncResult {
    #[serde(default)]
    sync: Vec<SyncItem>,
    #[serde(default)]
    warning: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CursorsResult {
    #[serde(rename = "cc.cursor")]
    cc_cursor: u64,
}

/// The one feed reader of a client.
///
/// It never has more than one `/sync/get` in flight (reads are serialized on `reading`), so it
/// has nothing to gain from following the rate control's `concurrency()` hint as the bulk
/// runners do: its reads pass the client-wide limiter like every request, which is what slows
/// it down after a throttle, and `min_interval` bounds its pace when nothing is throttled.
pub(crate) struct Feed {
    http: HttpClient,
    min_interval: Duration,
    state: Mutex<FeedState>,
    /// Held while reading the feed: concurrent waits queue here and reuse the fresh result.
    reading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct FeedState {
    /// Where the next read starts (`None` until a job is registered).
    position: Option<u64>,
    /// The lowest cursor read from, so a resumed older job makes the reader go back.
    low: Option<u64>,
    /// The latest report of every job seen.
    jobs: HashMap<JobToken, JobReport>,
    /// Tokens being waited for (with the number of waits), whose reports are never evicted.
    waiting: HashMap<JobToken, usize>,
    last_read: Option<Instant>,
    reads: u64,
}

impl FeedState {
    /// Keeps memory bounded in a long-lived client: drops the oldest reports of jobs that are
    /// finished and not waited for.
    fn evict(&mut self) {
        if self.jobs.len() <= MAX_REPORTS {
            return;
        }
        let mut old: Vec<(u64, JobToken)> = self
            .jobs
            .values()
            .filter(|r| {
                matches!(r.status, JobStatus::Done | JobStatus::Rejected)
                    && !self.waiting.contains_key(&r.token)
            })
            .map(|r| (r.cursor, r.token.clone()))
            .collect();
        old.sort_unstable();
        let excess = self.jobs.len() - MAX_REPORTS;
        for (_, token) in old.into_iter().take(excess) {
            self.jobs.remove(&token);
        }
    }
}

/// The most `/sync/get` calls in one look when the server keeps saying more is pending.
const MAX_CALLS_PER_LOOK: u32 = 50;

/// Reports of finished jobs nobody waits for are evicted (oldest first) beyond this many.
const MAX_REPORTS: usize = 10_000;

impl Feed {
    pub(crate) fn new(http: HttpClient, min_interval: Duration) -> Self {
        Feed {
            http,
            min_interval,
            state: Mutex::new(FeedState::default()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn reads(&self) -> u64 {
        self.state().reads
    }

    /// `POST /sync/cursors`: the current `cc` cursor.
    pub(crate) async fn cc_cursor(&self) -> Result<u64> {
        let (r, _) = self
            .http
            .request(Method::Post, "/sync/cursors")
            .idempotency(Idempotency::Idempotent)
            .json(&json!({}))
            .send_decoded(envelope::<CursorsResult>)
            .await?;
        Ok(r.cc_cursor)
    }

    /// Makes sure the reader covers the feed from `cursor` on.
    fn register(&self, cursor: u64) {
        let mut st = self.state();
        if st.low.is_none_or(|low| cursor < low) {
            st.low = Some(cursor);
            // Go back (or start): reports are kept per job by cursor, so reading again is safe.
            st.position = Some(st.position.map_or(cursor, |p| p.min(cursor)));
        }
    }

    fn watch(&self, token: &JobToken, on: bool) {
        let mut st = self.state();
        let n = st.waiting.entry(token.clone()).or_default();
        if on {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.waiting.remove(token);
            }
        }
    }

    fn report(&self, token: &JobToken) -> Option<JobReport> {
        self.state().jobs.get(token).cloned()
    }

    /// One `/sync/get` call from `position`: every item's cursor with its job report (if it is
    /// one), and whether the server says more is pending.
    async fn read(&self, position: u64) -> Result<(Vec<(u64, Option<JobReport>)>, bool)> {
        let (r, _) = self
            .http
            .request(Method::Post, "/sync/get")
            .idempotency(Idempotency::Idempotent)
            .json(&json!({ "cc_cursor": position }))
            .send_decoded(envelope::<SyncResult>)
            .await?;
        let items = r
            .sync
            .iter()
            .map(|item| {
                let job = (item.kind == "cc" && item.data_type == "jobs")
                    .then(|| JobReport::from_item(item))
                    .flatten();
                (item.cursor, job)
            })
            .collect();
        Ok((items, r.warning.is_some()))
    }

    /// The latest report of every job in the feed after `cursor`, in order of appearance (a
    /// one-off scan, independent of the waits).
    pub(crate) async fn jobs_since(&self, cursor: u64) -> Result<Vec<JobReport>> {
        let mut position = cursor;
        let mut order: Vec<JobToken> = Vec::new();
        let mut latest: HashMap<JobToken, JobReport> = HashMap::new();
        for _ in 0..MAX_CALLS_PER_LOOK {
            let (items, more) = self.read(position).await?;
            self.state().reads += 1;
            let before = position;
            for (c, report) in items {
                position = position.max(c);
                if let Some(r) = report {
                    if !latest.contains_key(&r.token) {
                        order.push(r.token.clone());
                    }
                    latest.insert(r.token.clone(), r);
                }
            }
            if !more || position == before {
                break;
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|t| latest.remove(&t))
            .collect())
    }

    /// Reads the feed unless a read finished less than `min_interval` ago or is under way (then
    /// its result is used).
    async fn refresh(&self) -> Result<()> {
        let asked = Instant::now();
        let _reading = self.reading.lock().await;
        let position = {
            let st = self.state();
            if st
                .last_read
                .is_some_and(|t| t >= asked || t + self.min_interval > Instant::now())
            {
                return Ok(());
            }
            match st.position {
                Some(p) => p,
                None => return Ok(()),
            }
        };
        let mut position = position;
        for _ in 0..MAX_CALLS_PER_LOOK {
            let (items, more) = self.read(position).await?;
            let before = position;
            let mut st = self.state();
            st.reads += 1;
            for (cursor, report) in items {
                position = position.max(cursor);
                let Some(report) = report else { continue };
                let newer = st
                    .jobs
                    .get(&report.token)
                    .is_none_or(|old| old.cursor <= report.cursor);
                if newer {
                    st.jobs.insert(report.token.clone(), report);
                }
            }
            st.position = Some(st.position.map_or(position, |p| p.max(position)));
            st.last_read = Some(Instant::now());
            st.evict();
            drop(st);
            if !more || position == before {
                break;
            }
        }
        Ok(())
    }
}

/// One job, looked at through its client's feed reader: what [`Client::wait`] polls, and an
/// owned [`poll::Job`](Job) for a driver of your own. Build it with [`Client::watch`].
///
/// While a watch (or any clone of it) lives, the reader keeps the job's report however many
/// other jobs pass through the feed; dropping the last clone releases it.
///
/// ```no_run
/// use unicat_api::bulk_common::poll::{Job, JobState};
/// # async fn run(client: unicat_api::Client, handle: unicat_api::JobHandle) -> unicat_api::Result<()> {
/// let watch = client.watch(&handle);
/// if let JobState::Pending(progress) = watch.poll().await? {
///     println!("{:?} of {:?} left", progress.remaining, progress.total);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JobWatch {
    client: Client,
    handle: JobHandle,
    _claim: Arc<Claim>,
}

impl fmt::Debug for JobWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobWatch")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl JobWatch {
    /// Registers the job with the client's feed reader: the reader covers the feed from the
    /// handle's cursor on, and keeps the job's report until the watch is dropped.
    pub(crate) fn new(client: Client, handle: JobHandle) -> Self {
        let feed = client.feed().clone();
        feed.register(handle.cursor);
        feed.watch(&handle.token, true);
        let claim = Arc::new(Claim {
            feed,
            token: handle.token.clone(),
        });
        JobWatch {
            client,
            handle,
            _claim: claim,
        }
    }

    /// The job watched.
    pub fn handle(&self) -> &JobHandle {
        &self.handle
    }
}

impl Job for JobWatch {
    type Output = JobReport;

    async fn poll(&self) -> Result<JobState<JobReport>> {
        let feed = self.client.feed();
        feed.refresh().await?;
        let Some(report) = feed.report(&self.handle.token) else {
            return Ok(JobState::Pending(
                Progress::new().status("not yet in the feed"),
            ));
        };
        let errors = report.errors();
        Ok(match (&report.status, &errors) {
            (JobStatus::Rejected, _) | (JobStatus::Done, Some(_)) => {
                let failed = report.failed_items();
                let message = match &report.error {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None if report.status == JobStatus::Rejected => {
                        "the job was rejected".to_owned()
                    }
                    None if !failed.is_empty() => format!(
                        "the job finished, but {} of {} items were not applied",
                        failed.len(),
                        report
                            .total
                            .map_or_else(|| "its".to_owned(), |t| t.to_string())
                    ),
                    None => format!(
                        "the job finished with errors: {}",
                        errors.clone().unwrap_or_default()
                    ),
                };
                JobState::Failed(
                    JobFailure::new(message)
                        .code(report.status.as_str())
                        .details(json!({
                            "job": report.job,
                            "token": report.token,
                            "status": report.status.as_str(),
                            "total": report.total,
                            "failed": failed,
                            "info": report.info,
                        })),
                )
            }
            (JobStatus::Done, None) => JobState::Done(report),
            _ => JobState::Pending(report.progress()),
        })
    }

    fn describe(&self) -> String {
        format!("{} {}", self.handle.operation, self.handle.token)
    }
}

/// A watch's claim on its job's report, released when the last clone of the watch is dropped.
struct Claim {
    feed: Arc<Feed>,
    token: JobToken,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.feed.watch(&self.token, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(token: String, cursor: u64, status: JobStatus) -> JobReport {
        JobReport {
            token: JobToken::new(token),
            job: "bulk_delete_records".into(),
            status,
            total: None,
            remaining: None,
            error: None,
            info: Value::Null,
            project_gid: None,
            cursor,
        }
    }

    #[test]
    fn a_watch_claims_its_job_until_its_last_clone_is_dropped() -> Result<()> {
        let client = Client::builder()
            .project("p-1")
            .api_key(bulk_common::SecretString::from("key"))
            .base_url("http://127.0.0.1:9")
            .build()?;
        let token = JobToken::new("t-1");
        let claims = || client.feed().state().waiting.get(&token).copied();
        let handle = JobHandle::new(token.clone(), 40, "records/delete");

        let watch = client.watch(&handle);
        assert_eq!(claims(), Some(1), "registered when created");
        assert_eq!(client.feed().state().position, Some(40));
        let clone = watch.clone();
        let wait = client.wait(&handle);
        assert_eq!(
            claims(),
            Some(2),
            "one claim per watch, shared by its clones"
        );
        drop(watch);
        drop(wait);
        assert_eq!(claims(), Some(1));
        drop(clone);
        assert_eq!(claims(), None, "released when the last clone is dropped");
        Ok(())
    }

    #[test]
    fn eviction_keeps_running_and_awaited_jobs() {
        let mut st = FeedState::default();
        for c in 0..(MAX_REPORTS as u64 + 5) {
            st.jobs.insert(
                JobToken::new(format!("t{c}")),
                report(format!("t{c}"), c, JobStatus::Done),
            );
        }
        st.jobs.insert(
            JobToken::new("running"),
            report("running".into(), 0, JobStatus::Processing),
        );
        st.waiting.insert("t1".into(), 1);
        st.evict();
        assert_eq!(st.jobs.len(), MAX_REPORTS);
        assert!(st.jobs.contains_key(&JobToken::new("running")));
        assert!(st.jobs.contains_key(&JobToken::new("t1")));
        assert!(!st.jobs.contains_key(&JobToken::new("t0")));
        assert!(
            st.jobs
                .contains_key(&JobToken::new(format!("t{}", MAX_REPORTS + 4)))
        );
    }
}
