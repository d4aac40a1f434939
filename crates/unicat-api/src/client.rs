//! The client, its builder, and the bulk operations of each area.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulk_common::poll::{JobWait, PollPolicy};
use bulk_common::token::MintSource;
use bulk_common::{
    Auth, BaseUrl, Error, ErrorKind, HttpClient, HttpOptions, Method, Result, RetryPolicy,
    SecretString, encode_segment,
};
use serde_json::{Map, Value, json};

use crate::auth::jwt_source;
use crate::get::BulkGet;
use crate::job::{Feed, JobHandle, JobReport, JobWatch};
use crate::model::{Gid, JobToken, JobTokenResult, envelope, error_decoder};
use crate::selection::{Assets, Kind, Records, Schema, Selection};

const PRODUCT: &str = concat!("unicat-api/", env!("CARGO_PKG_VERSION"));

/// The public Unicat service.
pub const DEFAULT_BASE_URL: &str = "https://unicat.app";

/// A Unicat client for one project.
///
/// It is cheap to clone: clones share the connection pool, the JWT (one login for all of them)
/// and the sync-feed reader. Build it with [`Client::builder`] or [`Client::from_env`].
///
/// ```no_run
/// use unicat_api::{Client, RecordSelection, SecretString};
/// # async fn run() -> unicat_api::Result<()> {
/// let client = Client::builder()
///     .project("3f6a...project-gid")
///     .api_key(SecretString::from("my-api-key"))
///     .build()?;
/// let job = client.records().delete(&RecordSelection::new().gid("r-1")).await?;
/// let report = client.wait(&job).await?;
/// println!("{} items", report.total.unwrap_or(0));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    project: String,
    jwt: MintSource,
    feed: Arc<Feed>,
    poll: PollPolicy,
    settle: Duration,
    located: AtomicU64,
    resubmitted: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("project", &self.inner.project)
            .field("http", &self.inner.http)
            .field("jwt", &self.inner.jwt)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
#[must_use]
pub struct ClientBuilder {
    project: Option<String>,
    api_key: Option<SecretString>,
    base_url: String,
    options: HttpOptions,
    poll: PollPolicy,
    feed_interval: Duration,
    settle: Option<Duration>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("project", &self.project)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            project: None,
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            options: Client::default_http_options(),
            poll: Client::default_poll_policy(),
            feed_interval: Duration::from_millis(250),
            settle: None,
        }
    }
}

impl ClientBuilder {
    /// The project gid (required).
    pub fn project(mut self, gid: impl Into<String>) -> Self {
        self.project = Some(gid.into());
        self
    }

    /// The API key (required).
    pub fn api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Scheme and host (and port), without the `/api` prefix; default `https://unicat.app`.
    /// Plain `http://` is accepted for loopback hosts only.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Timeouts and retry policy of every request (default: [`Client::default_http_options`]).
    ///
    /// These options replace the defaults whole, retry policy included: start from
    /// [`Client::default_http_options`] to keep Unicat's retry budget.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.options = options;
        self
    }

    /// The policy of this client's job waits (default: [`Client::default_poll_policy`]); a
    /// single wait can still override it.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// The shortest time between two reads of the sync feed, whatever the number of jobs
    /// waited for (default 250 ms).
    pub fn feed_interval(mut self, interval: Duration) -> Self {
        self.feed_interval = interval;
        self
    }

    /// How long to keep looking for a job in the sync feed after a bulk mutation whose
    /// outcome is unknown, before concluding that the server never received it and submitting
    /// it again. The default is the request timeout of the [`HttpOptions`] (60 s): a server
    /// slow enough to time a request out is given that long again to show its job. See
    /// [`RecordsApi::delete`].
    pub fn settle_time(mut self, settle: Duration) -> Self {
        self.settle = Some(settle);
        self
    }

    /// Builds the client. Nothing is sent until the first call (which logs in).
    pub fn build(self) -> Result<Client> {
        let project = self
            .project
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| Error::config("no Unicat project gid was configured"))?;
        let api_key = self
            .api_key
            .filter(|k| {
                !bulk_common::ExposeSecret::expose_secret(k)
                    .trim()
                    .is_empty()
            })
            .ok_or_else(|| Error::config("no Unicat API key was configured"))?;
        let settle = self
            .settle
            .unwrap_or_else(|| self.options.get_request_timeout());
        let base = BaseUrl::parse(&self.base_url)?;
        if !base.as_url().path().trim_matches('/').is_empty() {
            return Err(Error::config(format!(
                "the base URL {} has a path; give scheme and host only (such as \
                 https://unicat.app): the client adds /api and /sync itself",
                self.base_url
            )));
        }
        let login = HttpClient::builder(PRODUCT)
            .base(base.clone())
            .options(self.options.clone())
            .error_decoder(error_decoder())
            .build()?;
        let jwt = jwt_source(login, project.clone(), api_key);
        let http = HttpClient::builder(PRODUCT)
            .base(base)
            .options(self.options)
            .auth(Auth::token_source(Arc::new(jwt.clone()), "Bearer"))
            .error_decoder(error_decoder())
            .build()?;
        let feed = Arc::new(Feed::new(http.clone(), self.feed_interval));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                project,
                jwt,
                feed,
                poll: self.poll,
                settle,
                located: AtomicU64::new(0),
                resubmitted: AtomicU64::new(0),
            }),
        })
    }
}

/// Counters of a client's authentication and feed traffic (shared by its clones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Logins with the API key.
    pub logins: u64,
    /// JWTs adopted from replies.
    pub rotations: u64,
    /// `/sync/get` calls made by the feed reader.
    pub feed_reads: u64,
    /// HTTP retries.
    pub retries: u64,
    /// Replays after a refused JWT.
    pub auth_replays: u64,
    /// Bulk mutations whose outcome was unknown and whose job was then found in the feed.
    pub located: u64,
    /// Bulk mutations submitted again because the feed showed the first never arrived.
    pub resubmitted: u64,
}

impl Client {
    /// Starts a builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from `UNICAT_API_KEY`, `UNICAT_PROJECT` and optional `UNICAT_BASE_URL`.
    pub fn from_env() -> Result<Client> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let key =
            var("UNICAT_API_KEY").ok_or_else(|| Error::config("UNICAT_API_KEY is not set"))?;
        let project =
            var("UNICAT_PROJECT").ok_or_else(|| Error::config("UNICAT_PROJECT is not set"))?;
        let mut b = Client::builder()
            .project(project)
            .api_key(SecretString::from(key));
        if let Some(url) = var("UNICAT_BASE_URL") {
            b = b.base_url(url);
        }
        b.build()
    }

    /// The project gid.
    pub fn project(&self) -> &str {
        &self.inner.project
    }

    /// Bulk operations on records.
    pub fn records(&self) -> RecordsApi<'_> {
        RecordsApi { client: self }
    }

    /// Bulk operations on assets.
    pub fn assets(&self) -> AssetsApi<'_> {
        AssetsApi { client: self }
    }

    /// Bulk operations on schema items.
    pub fn schema(&self) -> SchemaApi<'_> {
        SchemaApi { client: self }
    }

    /// Unicat's defaults for job waits: first look after 0.5 s, then up to 10 s apart, a
    /// one-hour deadline (the rest as [`PollPolicy::default`]).
    ///
    /// Looks are cheap: every wait of a client is served by one feed reader, which reads
    /// `/sync/get` at most every [`ClientBuilder::feed_interval`] whatever the number of waits.
    pub fn default_poll_policy() -> PollPolicy {
        PollPolicy::default()
            .first_delay(Duration::from_millis(500))
            .max_delay(Duration::from_secs(10))
            .deadline(Some(Duration::from_secs(3600)))
    }

    /// Unicat's default retry policy of every request: 10 attempts within 10 minutes (the rest
    /// as [`RetryPolicy::default`]: 500 ms doubling to a 30 s cap, full jitter).
    ///
    /// Why more than bulk-common's default (5 attempts within 2 minutes): a Unicat workflow is
    /// a chain of reads that are all safe to repeat (login, the feed cursor, every feed read
    /// while a job runs, every page of a bulk get), and one read that gives up ends the whole
    /// workflow, often after the mutation was applied. A slow reply costs a whole request
    /// timeout (60 s), so two minutes cover only two of them. Mutations are unaffected: they are
    /// never blindly re-sent, whatever the policy (see [`RecordsApi::delete`]).
    pub fn default_retry_policy() -> RetryPolicy {
        RetryPolicy::default()
            .max_attempts(10)
            .budget(Some(Duration::from_secs(600)))
    }

    /// Unicat's default HTTP options: bulk-common's timeouts (10 s connect, 60 s per request)
    /// with [`Client::default_retry_policy`].
    pub fn default_http_options() -> HttpOptions {
        HttpOptions::default().retry(Client::default_retry_policy())
    }

    /// Waits for a job (also one started by another process: handles deserialize), with the
    /// client's poll policy ([`Client::default_poll_policy`] unless the builder set another).
    ///
    /// Await it directly, or set its policy, cancellation, progress observer or
    /// [`WaitOptions`](crate::WaitOptions) first:
    ///
    /// ```no_run
    /// # use unicat_api::{CancellationToken, Client, JobHandle};
    /// # async fn run(client: Client, job: JobHandle, stop: CancellationToken) -> unicat_api::Result<()> {
    /// let report = client
    ///     .wait(&job)
    ///     .on_progress(|e| eprintln!("{:?} left", e.progress.remaining))
    ///     .cancel_on(stop)
    ///     .await?;
    /// println!("{} items", report.total.unwrap_or(0));
    /// # Ok(()) }
    /// ```
    ///
    /// It ends with the final report of a `done` job; with [`ErrorKind::JobFailed`] for a
    /// `rejected` job or a `done` one with errors in its `info` (the vendor message is
    /// `info.error` or a count of the items not applied; the details hold `job`, `token`,
    /// `status`, `total`, `failed` (the items `info` lists as not applied) and the whole
    /// `info`); with [`ErrorKind::DeadlineExceeded`] at the deadline (also when the job never
    /// appears in the feed); or with [`ErrorKind::Cancelled`].
    pub fn wait(&self, job: &JobHandle) -> JobWait<JobWatch> {
        JobWait::new(self.watch(job), self.inner.poll.clone())
    }

    /// The job as an owned [`poll::Job`](bulk_common::poll::Job), looked at through this
    /// client's feed reader; [`Client::wait`] drives one. See [`JobWatch`].
    pub fn watch(&self, job: &JobHandle) -> JobWatch {
        JobWatch::new(self.clone(), job.clone())
    }

    /// The current `cc` cursor of the sync feed (`POST /sync/cursors`).
    pub async fn cc_cursor(&self) -> Result<u64> {
        self.inner.feed.cc_cursor().await
    }

    /// The latest report of every job that appears in the sync feed after `cursor`, in order
    /// of appearance.
    ///
    /// Bulk mutations already use it to reconcile an unknown outcome (see
    /// [`RecordsApi::delete`]); when even that cannot tell, the
    /// [`ErrorKind::AmbiguousOutcome`] error's details hold the `cc_cursor` read before the
    /// submission and the `candidates` seen, for a person to decide.
    ///
    /// ```no_run
    /// # use unicat_api::Client;
    /// # async fn run(client: Client) -> unicat_api::Result<()> {
    /// for report in client.jobs_since(1520).await? {
    ///     println!("{} {} {}", report.token, report.job, report.status.as_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn jobs_since(&self, cursor: u64) -> Result<Vec<JobReport>> {
        self.inner.feed.jobs_since(cursor).await
    }

    /// Authentication and feed counters.
    pub fn stats(&self) -> ClientStats {
        let http = self.inner.http.stats();
        ClientStats {
            logins: self.inner.jwt.mints(),
            rotations: self.inner.jwt.rotations(),
            feed_reads: self.inner.feed.reads(),
            retries: http.retries,
            auth_replays: http.auth_replays,
            located: self.inner.located.load(Ordering::Relaxed),
            resubmitted: self.inner.resubmitted.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    pub(crate) fn feed(&self) -> &Arc<Feed> {
        &self.inner.feed
    }

    pub(crate) fn bulk_path<K: Kind>(&self, op: &str) -> String {
        format!(
            "/api/p/{}/{}/bulk/{op}",
            encode_segment(&self.inner.project),
            K::AREA
        )
    }

    /// Reads the feed cursor, then submits the mutation (never blindly re-sent after it may
    /// have reached the server), and returns the job.
    ///
    /// When the outcome is unknown (a reset, a timeout, a 5xx, an unreadable reply), the job is
    /// looked for in the sync feed after the cursor: exactly one new job of this project, with
    /// the expected name, is ours; no new job at all (after `settle`) means the request never
    /// arrived, and it is submitted again (at most [`MAX_SUBMISSIONS`] times in all); anything
    /// else (several candidates, a job with another name) cannot be attributed safely and ends
    /// in [`ErrorKind::AmbiguousOutcome`] naming the candidates.
    async fn submit<K: Kind>(
        &self,
        op: &str,
        selection: &Selection<K>,
        extra: Map<String, Value>,
    ) -> Result<JobHandle> {
        if selection.is_empty() {
            return Err(Error::invalid_input("the selection is empty"));
        }
        let cursor = self.cc_cursor().await?;
        let mut body = extra;
        body.insert("selection".into(), selection.to_json());
        let operation = format!("{}/{op}", K::AREA);
        // The name seed 003 shows for records/bulk/delete (`bulk_delete_records`), extended
        // to the other operations: an assumption, checked below.
        let name = format!("bulk_{op}_{}", K::AREA);
        let details = |candidates: &[JobReport]| {
            json!({
                "cc_cursor": cursor,
                "operation": operation,
                "job": name,
                "candidates": candidates
                    .iter()
                    .map(|r| json!({"token": r.token, "job": r.job, "status": r.status.as_str()}))
                    .collect::<Vec<_>>(),
            })
        };
        let mut last = None;
        for attempt in 1..=MAX_SUBMISSIONS {
            let err = match self.post_once::<K>(op, &body).await {
                Ok(token) => {
                    tracing::info!(op, area = K::AREA, %token, cursor, "bulk job submitted");
                    return Ok(JobHandle::new(token, cursor, operation));
                }
                Err(e) if e.kind() == ErrorKind::AmbiguousOutcome => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(
                op,
                area = K::AREA,
                attempt,
                "bulk request outcome unknown: {err}"
            );
            // Reading the feed is safe to repeat: a failed scan is tried again before the
            // outcome is handed to the caller as unknown.
            let mut scan = self.locate(cursor, &name).await;
            for _ in 1..LOCATE_TRIES {
                if scan.is_ok() {
                    break;
                }
                tokio::time::sleep(self.inner.settle / 3).await;
                scan = self.locate(cursor, &name).await;
            }
            let found = match scan {
                Ok(found) => found,
                Err(feed) => {
                    return Err(err.with_details(details(&[])).context(format!(
                        "the sync feed could not be read to find the job ({feed})"
                    )));
                }
            };
            match found {
                Located::Ours(report) => {
                    self.inner.located.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(op, area = K::AREA, token = %report.token, "job found in the sync feed");
                    return Ok(JobHandle::new(report.token, cursor, operation));
                }
                Located::Nothing => {
                    if attempt < MAX_SUBMISSIONS {
                        self.inner.resubmitted.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            op,
                            area = K::AREA,
                            "no job in the sync feed: submitting again"
                        );
                    }
                    last = Some(err);
                }
                Located::Unclear(candidates) => {
                    return Err(err.with_details(details(&candidates)).context(format!(
                        "{} job(s) appeared in the sync feed and none can be told to be this \
                         request's; check them before submitting again",
                        candidates.len()
                    )));
                }
            }
        }
        let err = last.unwrap_or_else(|| Error::new(ErrorKind::AmbiguousOutcome, "no reply"));
        Err(err.with_details(details(&[])).context(format!(
            "{MAX_SUBMISSIONS} submissions ended without a reply and no job appeared in the sync feed"
        )))
    }

    /// One submission: the job token, or an error ([`ErrorKind::AmbiguousOutcome`] when the
    /// request may have reached the server).
    async fn post_once<K: Kind>(&self, op: &str, body: &Map<String, Value>) -> Result<JobToken> {
        let reply = self
            .http()
            .request(Method::Post, self.bulk_path::<K>(op))
            .json(body)
            .send()
            .await?;
        // A success reply that cannot be read: the job exists, but its token is unknown.
        let (r, _): (JobTokenResult, Value) = envelope(&reply).map_err(|e| {
            if e.kind() == ErrorKind::Decode {
                e.with_kind(ErrorKind::AmbiguousOutcome)
                    .with_retryable(false)
                    .context("the bulk request was accepted, but its reply is unreadable")
            } else {
                e
            }
        })?;
        Ok(r.token)
    }

    /// Looks for the job of a submission with an unknown outcome in the feed after `cursor`:
    /// at once, then three more times over the settle time while nothing shows up.
    async fn locate(&self, cursor: u64, name: &str) -> Result<Located> {
        const LOOKS: u32 = 4;
        for look in 0..LOOKS {
            if look > 0 {
                tokio::time::sleep(self.inner.settle / (LOOKS - 1)).await;
            }
            let project = self.inner.project.as_str();
            // Jobs of other projects cannot be ours (the request named this project).
            let new: Vec<JobReport> = self
                .jobs_since(cursor)
                .await?
                .into_iter()
                .filter(|r| r.project_gid.as_ref().is_none_or(|p| p.as_str() == project))
                .collect();
            match new.as_slice() {
                [] => continue,
                [one] if one.job == name => return Ok(Located::Ours(one.clone())),
                _ => return Ok(Located::Unclear(new)),
            }
        }
        Ok(Located::Nothing)
    }
}

/// The most times one bulk mutation is submitted when the feed shows that earlier
/// submissions never arrived.
pub const MAX_SUBMISSIONS: u32 = 5;

/// Scans of the feed (each with its own retries) before an unknown outcome is given up on.
const LOCATE_TRIES: u32 = 3;

/// What the feed says about a submission with an unknown outcome.
enum Located {
    /// Exactly one new job, with the expected name.
    Ours(JobReport),
    /// No new job in this project.
    Nothing,
    /// Jobs that cannot be attributed safely.
    Unclear(Vec<JobReport>),
}

fn opt(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}

/// Where `link` and `shallow_copy` put the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    parent: Gid,
    before_record: Option<Gid>,
    ordering: Option<String>,
}

impl Placement {
    /// Under `parent`, at the end.
    pub fn under(parent: impl Into<Gid>) -> Self {
        Placement {
            parent: parent.into(),
            before_record: None,
            ordering: None,
        }
    }

    /// Before this sibling.
    pub fn before(mut self, record: impl Into<Gid>) -> Self {
        self.before_record = Some(record.into());
        self
    }

    /// In this ordering.
    pub fn ordering(mut self, ordering: impl Into<String>) -> Self {
        self.ordering = Some(ordering.into());
        self
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("parent".into(), json!(self.parent.as_str()));
        opt(
            &mut m,
            "before_record",
            self.before_record.as_ref().map(Gid::as_str),
        );
        opt(&mut m, "ordering", self.ordering.as_deref());
        m
    }
}

/// Bulk operations on records (`/api/p/{project}/records/bulk/...`).
#[derive(Debug, Clone, Copy)]
pub struct RecordsApi<'c> {
    client: &'c Client,
}

impl RecordsApi<'_> {
    /// `bulk/get`: the selected records as a stream; see [`BulkGet`].
    pub fn get(&self, selection: &Selection<Records>) -> BulkGet<Records> {
        BulkGet::new(self.client.clone(), selection.clone())
    }

    /// `bulk/delete`: moves the selected records (and their subtrees) to the trash.
    ///
    /// Like every bulk mutation, it is never blindly re-sent. When its outcome is unknown, the
    /// job is looked for in the sync feed after the cursor read before sending: exactly one new
    /// job of this project named `bulk_delete_records` is taken as ours; an empty feed (after
    /// [`ClientBuilder::settle_time`]) means the request never arrived, and it is sent again
    /// (at most [`MAX_SUBMISSIONS`] times); anything else ends in
    /// [`ErrorKind::AmbiguousOutcome`] with the candidate jobs in its details.
    pub async fn delete(&self, selection: &Selection<Records>) -> Result<JobHandle> {
        self.client.submit("delete", selection, Map::new()).await
    }

    /// `bulk/undelete`: restores the selected records (and their subtrees).
    pub async fn undelete(&self, selection: &Selection<Records>) -> Result<JobHandle> {
        self.client.submit("undelete", selection, Map::new()).await
    }

    /// `bulk/permanent_delete`: destroys the selected (already deleted) records and their links.
    pub async fn permanent_delete(&self, selection: &Selection<Records>) -> Result<JobHandle> {
        self.client
            .submit("permanent_delete", selection, Map::new())
            .await
    }

    /// `bulk/duplicate`, optionally in an ordering.
    pub async fn duplicate(
        &self,
        selection: &Selection<Records>,
        ordering: Option<&str>,
    ) -> Result<JobHandle> {
        let mut m = Map::new();
        opt(&mut m, "ordering", ordering);
        self.client.submit("duplicate", selection, m).await
    }

    /// `bulk/link`: links the selected records under another parent.
    pub async fn link(
        &self,
        selection: &Selection<Records>,
        placement: &Placement,
    ) -> Result<JobHandle> {
        self.client
            .submit("link", selection, placement.to_map())
            .await
    }

    /// `bulk/shallow_copy`: copies the selected records under another parent.
    pub async fn shallow_copy(
        &self,
        selection: &Selection<Records>,
        placement: &Placement,
    ) -> Result<JobHandle> {
        self.client
            .submit("shallow_copy", selection, placement.to_map())
            .await
    }
}

/// Bulk operations on assets (`/api/p/{project}/assets/bulk/...`).
#[derive(Debug, Clone, Copy)]
pub struct AssetsApi<'c> {
    client: &'c Client,
}

impl AssetsApi<'_> {
    /// `bulk/get`: the selected assets as a stream; see [`BulkGet`].
    pub fn get(&self, selection: &Selection<Assets>) -> BulkGet<Assets> {
        BulkGet::new(self.client.clone(), selection.clone())
    }

    /// `bulk/delete`.
    pub async fn delete(&self, selection: &Selection<Assets>) -> Result<JobHandle> {
        self.client.submit("delete", selection, Map::new()).await
    }

    /// `bulk/undelete`.
    pub async fn undelete(&self, selection: &Selection<Assets>) -> Result<JobHandle> {
        self.client.submit("undelete", selection, Map::new()).await
    }

    /// `bulk/move`: moves the selected assets under `parent`.
    pub async fn move_to(
        &self,
        selection: &Selection<Assets>,
        parent: impl Into<Gid>,
    ) -> Result<JobHandle> {
        let mut m = Map::new();
        m.insert("parent".into(), json!(parent.into().as_str()));
        self.client.submit("move", selection, m).await
    }
}

/// Bulk operations on schema items (`/api/p/{project}/schema/bulk/...`).
#[derive(Debug, Clone, Copy)]
pub struct SchemaApi<'c> {
    client: &'c Client,
}

impl SchemaApi<'_> {
    /// `bulk/get`: the selected schema items as a stream; see [`BulkGet`].
    pub fn get(&self, selection: &Selection<Schema>) -> BulkGet<Schema> {
        BulkGet::new(self.client.clone(), selection.clone())
    }

    /// `bulk/copy`.
    pub async fn copy(&self, selection: &Selection<Schema>) -> Result<JobHandle> {
        self.client.submit("copy", selection, Map::new()).await
    }

    /// `bulk/commit` (committing can drop record data of removed fields).
    pub async fn commit(&self, selection: &Selection<Schema>) -> Result<JobHandle> {
        self.client.submit("commit", selection, Map::new()).await
    }

    /// `bulk/revert`.
    pub async fn revert(&self, selection: &Selection<Schema>) -> Result<JobHandle> {
        self.client.submit("revert", selection, Map::new()).await
    }

    /// `bulk/save_as_new`.
    pub async fn save_as_new(&self, selection: &Selection<Schema>) -> Result<JobHandle> {
        self.client
            .submit("save_as_new", selection, Map::new())
            .await
    }
}
