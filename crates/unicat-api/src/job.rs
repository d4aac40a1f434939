//! Background jobs, tracked through the sync feed.
//!
//! Unicat has no job-status endpoint: a job reports its progress as `cc` sync items whose
//! `data_key` is the job token. A [`Client`](crate::Client) reads the feed with ONE reader,
//! shared by every job it waits for: concurrent waits ask the reader to look, and a look that
//! happened a moment ago (or is under way) serves them all.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bulk_common::poll::{Job, JobFailure, JobState, PollEvent, PollPolicy, Progress, Wait};
use bulk_common::{CancellationToken, HttpClient, Idempotency, Method, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::model::envelope;

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
    token: String,
    cursor: u64,
    operation: String,
}

impl JobHandle {
    /// A handle for a job token, to be looked for in the feed after `cursor`.
    pub fn new(token: impl Into<String>, cursor: u64, operation: impl Into<String>) -> Self {
        JobHandle {
            token: token.into(),
            cursor,
            operation: operation.into(),
        }
    }

    /// The job token (`result["job.token"]`).
    pub fn token(&self) -> &str {
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

/// A job's status in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting to start.
    Queued,
    /// Running.
    Processing,
    /// Finished.
    Done,
    /// Refused or failed (`info.error` says why).
    Rejected,
    /// A status this crate does not know yet.
    Other(String),
}

impl JobStatus {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "queued" => JobStatus::Queued,
            "processing" => JobStatus::Processing,
            "done" => JobStatus::Done,
            "rejected" => JobStatus::Rejected,
            _ => JobStatus::Other(s.to_owned()),
        }
    }

    /// The status as the API spells it.
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Rejected => "rejected",
            JobStatus::Other(s) => s,
        }
    }
}

/// The latest report of a job in the sync feed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobReport {
    /// The job token.
    pub token: String,
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
    pub project_gid: Option<String>,
    /// The feed cursor of this report.
    pub cursor: u64,
}

impl JobReport {
    fn from_item(item: &SyncItem) -> Option<Self> {
        let data = item.data.as_object()?;
        let info = data.get("info").cloned().unwrap_or(Value::Null);
        let count = |k: &str| info.get(k).and_then(Value::as_u64);
        Some(JobReport {
            token: item.data_key.clone()?,
            job: data
                .get("job")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            status: JobStatus::parse(data.get("status").and_then(Value::as_str)?),
            total: count("total"),
            remaining: count("remaining"),
            error: info.get("error").filter(|e| !e.is_null()).cloned(),
            project_gid: data
                .get("project_gid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            info,
            cursor: item.cursor,
        })
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
    jobs: HashMap<String, JobReport>,
    /// Tokens being waited for (with the number of waits), whose reports are never evicted.
    waiting: HashMap<String, usize>,
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
        let mut old: Vec<(u64, String)> = self
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

    fn watch(&self, token: &str, on: bool) {
        let mut st = self.state();
        let n = st.waiting.entry(token.to_owned()).or_default();
        if on {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.waiting.remove(token);
            }
        }
    }

    fn report(&self, token: &str) -> Option<JobReport> {
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
        let mut order: Vec<String> = Vec::new();
        let mut latest: HashMap<String, JobReport> = HashMap::new();
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

/// One job, looked at through the client's feed reader.
pub(crate) struct Tracked {
    feed: Arc<Feed>,
    handle: JobHandle,
}

impl Job for Tracked {
    type Output = JobReport;

    async fn poll(&self) -> Result<JobState<JobReport>> {
        self.feed.refresh().await?;
        let Some(report) = self.feed.report(&self.handle.token) else {
            return Ok(JobState::Pending(
                Progress::new().status("not yet in the feed"),
            ));
        };
        Ok(match (&report.status, &report.error) {
            (JobStatus::Rejected, _) | (JobStatus::Done, Some(_)) => {
                let message = match &report.error {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => "the job was rejected".to_owned(),
                };
                JobState::Failed(
                    JobFailure::new(message)
                        .code(report.status.as_str())
                        .details(json!({
                            "job": report.job,
                            "token": report.token,
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

/// Ends a wait's claim on its job's report, also when the wait is dropped.
struct Unwatch {
    feed: Arc<Feed>,
    token: String,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        self.feed.watch(&self.token, false);
    }
}

type Observer = Arc<dyn Fn(&PollEvent) + Send + Sync>;

/// Waits for one job; build it with [`Client::wait`](crate::Client::wait).
#[must_use = "a JobWait does nothing until run or awaited"]
pub struct JobWait {
    tracked: Tracked,
    policy: PollPolicy,
    cancel: Option<CancellationToken>,
    observer: Option<Observer>,
}

impl fmt::Debug for JobWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobWait")
            .field("job", &self.tracked.handle)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JobWait {
    pub(crate) fn new(feed: Arc<Feed>, handle: JobHandle, policy: PollPolicy) -> Self {
        feed.register(handle.cursor);
        JobWait {
            tracked: Tracked { feed, handle },
            policy,
            cancel: None,
            observer: None,
        }
    }

    /// Overrides the client's poll policy (intervals and deadline).
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Stops waiting with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) when `token` is
    /// cancelled.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called after each look at the pending job (`total`/`remaining` in `progress`).
    pub fn on_progress(mut self, observer: impl Fn(&PollEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Waits for `done` (the final report), `rejected` ([`ErrorKind::JobFailed`] whose vendor
    /// message is `info.error`, details holding the job's `info`), the deadline
    /// ([`ErrorKind::DeadlineExceeded`], also when the job never appears in the feed) or
    /// cancellation.
    ///
    /// [`ErrorKind::JobFailed`]: crate::ErrorKind::JobFailed
    /// [`ErrorKind::DeadlineExceeded`]: crate::ErrorKind::DeadlineExceeded
    pub async fn run(self) -> Result<JobReport> {
        let mut wait = Wait::new(&self.tracked).policy(self.policy.clone());
        if let Some(c) = &self.cancel {
            wait = wait.cancel_on(c.clone());
        }
        if let Some(o) = &self.observer {
            let o = o.clone();
            wait = wait.on_progress(move |e| o(e));
        }
        let feed = self.tracked.feed.clone();
        let token = self.tracked.handle.token.clone();
        feed.watch(&token, true);
        let _unwatch = Unwatch { feed, token };
        wait.run().await
    }
}

impl std::future::IntoFuture for JobWait {
    type Output = Result<JobReport>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<JobReport>>;

    /// `client.wait(&job).await` is `client.wait(&job).run().await`.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(token: String, cursor: u64, status: JobStatus) -> JobReport {
        JobReport {
            token,
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
    fn eviction_keeps_running_and_awaited_jobs() {
        let mut st = FeedState::default();
        for c in 0..(MAX_REPORTS as u64 + 5) {
            st.jobs
                .insert(format!("t{c}"), report(format!("t{c}"), c, JobStatus::Done));
        }
        st.jobs.insert(
            "running".into(),
            report("running".into(), 0, JobStatus::Processing),
        );
        st.waiting.insert("t1".into(), 1);
        st.evict();
        assert_eq!(st.jobs.len(), MAX_REPORTS);
        assert!(st.jobs.contains_key("running"));
        assert!(st.jobs.contains_key("t1"));
        assert!(!st.jobs.contains_key("t0"));
        assert!(st.jobs.contains_key(&format!("t{}", MAX_REPORTS + 4)));
    }
}
