//! The Zoho Creator bulk-read client: jobs (create, status, wait) and the one-job workflow.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::{JobWait, PollPolicy};
use bulk_common::throttle::Throttle;
use bulk_common::token::FileStore;
use bulk_common::{
    Auth, Error, ErrorKind, HttpClient, Method, Result, SecretString, encode_segment,
};

use crate::builder::ClientBuilder;
use crate::codes::details;
use crate::dc::ApiVersion;
use crate::download::Download;
use crate::job::{JobHandle, JobWatch};
use crate::model::{CreateBody, CreateQuery, JobDetails, ReadQuery};

/// A Zoho Creator Bulk Read client for one application.
///
/// Cheap to clone: clones share the connection pool, the token sources and the throttles.
///
/// ```no_run
/// use futures::TryStreamExt;
/// use zoho_bulk::{Client, ReadQuery};
/// # async fn run() -> zoho_bulk::Result<()> {
/// let client = Client::from_env()?;
/// let mut rows = Box::pin(client.export("All_Orders", ReadQuery::new()));
/// while let Some(row) = rows.try_next().await? {
///     println!("{:?}", row.get("Email"));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    pub(crate) owner: String,
    pub(crate) app: String,
    pub(crate) version: ApiVersion,
    pub(crate) create_auth: Auth,
    pub(crate) read_auth: Auth,
    pub(crate) poll: PollPolicy,
    pub(crate) create_throttle: Throttle,
    pub(crate) download_throttle: Throttle,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) download_attempts: u32,
    pub(crate) create_attempts: u32,
    /// Row batch buffers reused across this client's downloads.
    pub(crate) spares: crate::rows::Spares,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("creator", self.inner.http.base_url())
            .field("owner", &self.inner.owner)
            .field("app", &self.inner.app)
            .field("version", &self.inner.version)
            .field("create_auth", &self.inner.create_auth)
            .field("read_auth", &self.inner.read_auth)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String> {
    env(name).ok_or_else(|| Error::config(format!("environment variable {name} is not set")))
}

impl Client {
    /// Starts a builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The poll policy of Zoho jobs, used unless the builder's
    /// [`poll_policy`](ClientBuilder::poll_policy) or a wait's options set another:
    /// bulk-common's default (first look after 1 s, growing ×1.5 up to 30 s) with a two-hour
    /// deadline. Zoho reports no progress, so a finish is noticed within half the job's time so
    /// far, and within 30 s (`cargo xtask bench poll` measures it).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = zoho_bulk::Client::default_poll_policy();
    /// assert_eq!(policy.delay(100), Duration::from_secs(30));
    /// ```
    pub fn default_poll_policy() -> PollPolicy {
        PollPolicy::default()
            .max_delay(Duration::from_secs(30))
            .deadline(Some(Duration::from_secs(2 * 3600)))
    }

    /// A client configured from the environment:
    ///
    /// - `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN` (a grant with both
    ///   `ZohoCreator.bulk.CREATE` and `ZohoCreator.bulk.READ`, or CREATE only when
    ///   `ZOHO_READ_REFRESH_TOKEN` holds a separate READ grant);
    /// - `ZOHO_DC` (`us`, `eu`, `in`, `au`, `jp`, `ca`, `sa`, `cn`), or `ZOHO_CREATOR_URL` and
    ///   `ZOHO_ACCOUNTS_URL`;
    /// - `ZOHO_OWNER` and `ZOHO_APP` (the account owner and application link names);
    /// - optional `ZOHO_API_VERSION`: `v2` (the default: `creator.zoho.<dc>/api/bulk/v2`) or
    ///   `v2.1` (`www.zohoapis.<dc>/creator/v2.1/bulk`), see [`ApiVersion`];
    /// - optional `ZOHO_TOKEN_DIR`: a directory where processes on this machine share access
    ///   tokens, or `ZOHO_TOKEN_REDIS` (feature `redis`): a Redis URL where workers on many
    ///   machines share them.
    pub fn from_env() -> Result<Client> {
        let mut b = Client::builder()
            .owner(required("ZOHO_OWNER")?)
            .app(required("ZOHO_APP")?)
            .credentials(
                required("ZOHO_CLIENT_ID")?,
                SecretString::from(required("ZOHO_CLIENT_SECRET")?),
                SecretString::from(required("ZOHO_REFRESH_TOKEN")?),
            );
        if let Some(read) = env("ZOHO_READ_REFRESH_TOKEN") {
            b = b.read_refresh_token(SecretString::from(read));
        }
        if let Some(version) = env("ZOHO_API_VERSION") {
            b = b.api_version(version.parse()?);
        }
        match (
            env("ZOHO_CREATOR_URL"),
            env("ZOHO_ACCOUNTS_URL"),
            env("ZOHO_DC"),
        ) {
            (Some(creator), Some(accounts), _) => b = b.creator_url(creator).accounts_url(accounts),
            (None, None, Some(dc)) => b = b.data_centre(dc.parse()?),
            (None, None, None) => {
                return Err(Error::config(
                    "set ZOHO_DC, or both ZOHO_CREATOR_URL and ZOHO_ACCOUNTS_URL",
                ));
            }
            _ => {
                return Err(Error::config(
                    "ZOHO_CREATOR_URL and ZOHO_ACCOUNTS_URL must be set together",
                ));
            }
        }
        if let Some(dir) = env("ZOHO_TOKEN_DIR") {
            b = b.token_store(Arc::new(FileStore::new(dir)?));
        }
        if let Some(url) = env("ZOHO_TOKEN_REDIS") {
            #[cfg(feature = "redis")]
            {
                b = b.token_store(Arc::new(bulk_common::token::RedisStore::new(&url)?));
            }
            #[cfg(not(feature = "redis"))]
            {
                let _ = url;
                return Err(Error::config(
                    "ZOHO_TOKEN_REDIS is set, but zoho-bulk was built without its `redis` feature",
                ));
            }
        }
        b.build()
    }

    /// Traffic counters of the Creator API client (attempts, retries, replays after a 401).
    pub fn stats(&self) -> bulk_common::HttpStats {
        self.inner.http.stats()
    }

    /// Creates a bulk-read job for `report` (its link name).
    ///
    /// Job creation is not idempotent; it is retried only when Zoho throttled it or the
    /// connection could not be opened. After a broken connection, a 5xx or a success reply that
    /// cannot be read, the error is [`ErrorKind::AmbiguousOutcome`]: Zoho offers no way to list
    /// jobs, so the caller decides whether to create another (an orphaned job costs quota, not
    /// data). [`Client::export`] and [`Client::read_report`] do create another.
    pub async fn create_job(&self, report: &str, query: &ReadQuery) -> Result<JobHandle> {
        query.validate()?;
        let body = CreateBody {
            query: CreateQuery::First(query),
        };
        let empty = query == &ReadQuery::default();
        self.create(report, if empty { None } else { Some(&body) })
            .await
    }

    /// Creates the follow-up job that reads the rows after `record_cursor` (which Zoho keeps
    /// for 15 minutes).
    pub async fn create_next_job(&self, report: &str, record_cursor: &str) -> Result<JobHandle> {
        if record_cursor.trim().is_empty() {
            return Err(Error::invalid_input("the record cursor is empty"));
        }
        let body = CreateBody {
            query: CreateQuery::Cursor { record_cursor },
        };
        self.create(report, Some(&body)).await
    }

    /// Creates a read job (from `record_cursor` when given, else from `query`), and creates it
    /// again after an [`ErrorKind::AmbiguousOutcome`]: Zoho cannot list jobs, and a read job
    /// changes no data, so a second one costs only quota (and a place under the creation
    /// throttle, which every attempt waits for). `orphans` counts the creations that may have
    /// left a job behind. At most `create_attempts` creations; the delays between them follow
    /// the HTTP retry policy's backoff.
    pub(crate) async fn create_settled(
        &self,
        report: &str,
        query: &ReadQuery,
        record_cursor: Option<&str>,
        orphans: &mut u32,
    ) -> Result<JobHandle> {
        let attempts = self.inner.create_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let created = match record_cursor {
                Some(cursor) => self.create_next_job(report, cursor).await,
                None => self.create_job(report, query).await,
            };
            match created {
                Err(e) if e.kind() == ErrorKind::AmbiguousOutcome && attempt < attempts => {
                    *orphans += 1;
                    let delay = self.inner.http.options().get_retry().backoff(attempt);
                    tracing::warn!(
                        report, error = %e, attempt,
                        "the job creation may or may not have happened; creating the read job again \
                         (an orphaned job costs quota, not data)"
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn create(&self, report: &str, body: Option<&CreateBody<'_>>) -> Result<JobHandle> {
        check_name("report", report)?;
        self.inner.create_throttle.acquire().await;
        let mut req = self
            .inner
            .http
            .request(Method::Post, self.read_path(report))
            .auth(self.inner.create_auth.clone());
        if let Some(body) = body {
            req = req.json(body);
        }
        let reply = req
            .send()
            .await
            .map_err(|e| e.context(format!("creating a bulk-read job for {report}")))?;
        // Zoho accepted the request, so a job exists, but without its id the outcome is as
        // unknown as after a lost reply: creating another job is the caller's decision.
        let details = details(&reply).map_err(|e| {
            e.with_kind(ErrorKind::AmbiguousOutcome)
                .with_retryable(false)
                .context(format!(
                    "a bulk-read job for {report} was accepted, but its reply is unreadable"
                ))
        })?;
        tracing::info!(report, job = %details.id, "bulk-read job created");
        Ok(JobHandle::new(report, details.id))
    }

    /// Looks at a job once.
    pub async fn job_status(&self, job: &JobHandle) -> Result<JobDetails> {
        self.inner
            .http
            .request(
                Method::Get,
                format!(
                    "{}/{}",
                    self.read_path(job.report()),
                    encode_segment(job.id().as_str())
                ),
            )
            .auth(self.inner.read_auth.clone())
            .send_decoded(details)
            .await
            .map_err(|e| e.context(format!("reading the status of job {}", job.id())))
    }

    /// Waits for a job to complete and returns its final details: await it directly, or set
    /// options first (`.on_progress(..)`, `.cancel_on(..)`, `.policy(..)`, `.options(..)`). The
    /// client's poll policy applies unless the options set another; a failed job is an
    /// [`ErrorKind::JobFailed`] error, a job still running at the deadline
    /// [`ErrorKind::DeadlineExceeded`].
    ///
    /// ```no_run
    /// use zoho_bulk::{Client, JobHandle};
    /// # async fn run(client: Client, job: JobHandle) -> zoho_bulk::Result<()> {
    /// let details = client
    ///     .wait(&job)
    ///     .on_progress(|e| eprintln!("{}: {:?} (look {})", e.job, e.progress.status, e.polls))
    ///     .await?;
    /// println!("{:?} rows", details.result.and_then(|r| r.count));
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, job: &JobHandle) -> JobWait<JobWatch> {
        JobWait::new(self.watch(job), self.inner.poll.clone())
    }

    /// The job joined to this client: an owned [`bulk_common::poll::Job`] for your own poll
    /// driver (or [`JobWait::new`]).
    pub fn watch(&self, job: &JobHandle) -> JobWatch {
        JobWatch::new(self.clone(), job.clone())
    }

    /// The seed workflow for one job: create, wait, download, and the rows. A creation whose
    /// outcome is unknown is made again (see [`ClientBuilder::create_attempts`]).
    pub async fn read_report(&self, report: &str, query: &ReadQuery) -> Result<Download> {
        let mut orphans = 0;
        let job = self
            .create_settled(report, query, None, &mut orphans)
            .await?;
        let details = self.wait(&job).await?;
        self.download(&job, Some(&details)).await
    }

    pub(crate) fn read_path(&self, report: &str) -> String {
        format!(
            "{}/{}/{}/report/{}/read",
            self.inner.version.path_prefix(),
            encode_segment(&self.inner.owner),
            encode_segment(&self.inner.app),
            encode_segment(report)
        )
    }

    /// The API form this client speaks.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
    }
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "the {what} link name is empty"
        )));
    }
    Ok(())
}
