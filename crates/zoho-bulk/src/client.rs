//! The Zoho Creator bulk-read client and its builder.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::{PollPolicy, Wait};
use bulk_common::throttle::Throttle;
use bulk_common::token::{
    AccessToken, FileStore, OAuthConfig, OAuthRefreshSource, ParamsIn, RefreshRateLimit, TokenStore,
};
use bulk_common::{
    Auth, BaseUrl, Error, ErrorDecoder, ErrorKind, ExposeSecret, HttpClient, HttpOptions, Method,
    Response, Result, SecretString, TokenSource, VendorError, encode_segment,
};
use serde::Deserialize;

use crate::dc::{ApiVersion, DataCentre};
use crate::job::{JobHandle, ReadJob};
use crate::models::{CreateBody, CreateQuery, Envelope, JobDetails, ReadQuery};
use crate::rows::{Rows, read_zip, spool, verify_zip};

const PRODUCT: &str = concat!("zoho-bulk/", env!("CARGO_PKG_VERSION"));
/// The authorization scheme Zoho uses instead of `Bearer`.
const SCHEME: &str = "Zoho-oauthtoken";

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
    version: ApiVersion,
    create_auth: Auth,
    read_auth: Auth,
    pub(crate) poll: PollPolicy,
    create_throttle: Throttle,
    download_throttle: Throttle,
    spool_dir: Option<PathBuf>,
    pub(crate) download_attempts: u32,
    create_attempts: u32,
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

/// Builds a [`Client`]. Every secret is a [`SecretString`]; `Debug` never shows them.
#[must_use]
pub struct ClientBuilder {
    dc: Option<DataCentre>,
    version: Option<ApiVersion>,
    creator_url: Option<String>,
    accounts_url: Option<String>,
    owner: Option<String>,
    app: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    refresh_token: Option<SecretString>,
    read_refresh_token: Option<SecretString>,
    create_source: Option<Arc<dyn TokenSource>>,
    read_source: Option<Arc<dyn TokenSource>>,
    store: Option<Arc<dyn TokenStore>>,
    http: HttpOptions,
    poll: PollPolicy,
    refresh_limit: Option<RefreshRateLimit>,
    creates_per_minute: u32,
    downloads_per_minute: u32,
    spool_dir: Option<PathBuf>,
    download_attempts: u32,
    create_attempts: u32,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("dc", &self.dc)
            .field("version", &self.version)
            .field("creator_url", &self.creator_url)
            .field("accounts_url", &self.accounts_url)
            .field("owner", &self.owner)
            .field("app", &self.app)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The default poll policy of Zoho jobs: bulk-common's default (first look after 1 s, growing
/// ×1.5 up to 30 s) with a two-hour deadline. Zoho reports no progress, so a finish is noticed
/// within half the job's time so far, and within 30 s (`cargo xtask bench poll` measures it).
pub fn default_poll_policy() -> PollPolicy {
    PollPolicy::default()
        .max_delay(Duration::from_secs(30))
        .deadline(Some(Duration::from_secs(2 * 3600)))
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            dc: None,
            version: None,
            creator_url: None,
            accounts_url: None,
            owner: None,
            app: None,
            client_id: None,
            client_secret: None,
            refresh_token: None,
            read_refresh_token: None,
            create_source: None,
            read_source: None,
            store: None,
            http: HttpOptions::default(),
            poll: default_poll_policy(),
            refresh_limit: Some(RefreshRateLimit {
                max: 10,
                per: Duration::from_secs(600),
            }),
            creates_per_minute: 5,
            downloads_per_minute: 10,
            spool_dir: None,
            download_attempts: DEFAULT_DOWNLOAD_ATTEMPTS,
            create_attempts: DEFAULT_CREATE_ATTEMPTS,
        }
    }
}

/// Downloads of one result at most, by default: a cut-off or corrupt archive is fetched again.
const DEFAULT_DOWNLOAD_ATTEMPTS: u32 = 6;

/// Creations of one read job at most, by default, when their outcome is unknown.
const DEFAULT_CREATE_ATTEMPTS: u32 = 10;

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
                    self.read_path(&job.report),
                    encode_segment(&job.id)
                ),
            )
            .auth(self.inner.read_auth.clone())
            .send_decoded(details)
            .await
            .map_err(|e| e.context(format!("reading the status of job {}", job.id)))
    }

    /// Waits for a job to complete, with the client's poll policy (deadline included), and
    /// returns its final details. A failed job is an [`ErrorKind::JobFailed`] error.
    pub async fn wait(&self, job: &JobHandle) -> Result<JobDetails> {
        Wait::new(&self.watch(job.clone()))
            .policy(self.inner.poll.clone())
            .run()
            .await
    }

    /// A job handle joined to this client, for waiting with your own
    /// [`Wait`] options (cancellation, progress events, another policy).
    pub fn watch(&self, job: JobHandle) -> ReadJob {
        ReadJob::new(self.clone(), job)
    }

    /// Downloads a completed job's result to a temporary file and returns its rows, with the
    /// cursor for the next batch if Zoho sent one.
    ///
    /// A transfer that breaks off is downloaded again (the result stays available for a day);
    /// `details` (from [`Client::wait`]) supplies the download URL and the row count, which the
    /// rows are checked against.
    pub async fn download(
        &self,
        job: &JobHandle,
        details: Option<&JobDetails>,
    ) -> Result<Download> {
        let result = details.and_then(|d| d.result.as_ref());
        // Zoho's download_url is relative to the API host. It is used when it lies under this
        // form's own prefix; otherwise (a v2.1 sample shows a v2-style `/api/bulk/v2.1/...`
        // path) the documented `<read path>/<job_id>/result` is built, as seed 001's second
        // method does.
        let prefix = format!("{}/", self.inner.version.path_prefix());
        let path = result
            .and_then(|r| r.download_url.clone())
            .filter(|url| url.starts_with(&prefix))
            .unwrap_or_else(|| {
                format!(
                    "{}/{}/result",
                    self.read_path(&job.report),
                    encode_segment(&job.id)
                )
            });
        // A broken transfer, or a complete reply whose archive is not whole, is downloaded
        // again (Zoho keeps a result for 24 hours), with the retry policy's backoff between
        // attempts and at most `download_attempts` in all.
        let attempts = self.inner.download_attempts.max(1);
        let policy = self.inner.http.options().get_retry().clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.inner.download_throttle.acquire().await;
            let outcome = match self.download_once(&path).await {
                Ok((file, bytes, cursor)) => verify_zip(file).await.map(|f| (f, bytes, cursor)),
                Err(e) => Err(e),
            };
            match outcome {
                Ok((file, bytes, header_cursor)) => {
                    tracing::info!(job = %job.id, bytes, attempt, "result downloaded and verified");
                    let record_cursor =
                        header_cursor.or_else(|| result.and_then(|r| r.record_cursor.clone()));
                    return Ok(Download {
                        rows: read_zip(file, result.and_then(|r| r.count)),
                        record_cursor,
                        bytes,
                    });
                }
                Err(e) if e.is_retryable() && attempt < attempts => {
                    let delay = policy.backoff(attempt);
                    tracing::warn!(
                        job = %job.id, error = %e, attempt, delay_ms = delay.as_millis() as u64,
                        "download broke off or is incomplete; downloading again"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let e = if e.kind() == ErrorKind::Decode {
                        e.with_retryable(false)
                    } else {
                        e
                    };
                    return Err(e.context(format!(
                        "downloading the result of job {} ({attempt} attempt{})",
                        job.id,
                        if attempt == 1 { "" } else { "s" }
                    )));
                }
            }
        }
    }

    async fn download_once(&self, path: &str) -> Result<(std::fs::File, u64, Option<String>)> {
        let reply = self
            .inner
            .http
            .request(Method::Get, path)
            .auth(self.inner.read_auth.clone())
            .send_streaming()
            .await?;
        let cursor = reply
            .headers()
            .get("recordCursor")
            .map(str::to_owned)
            .filter(|c| !c.is_empty());
        let looks_like_json = reply
            .headers()
            .get("content-type")
            .is_some_and(|t| t.contains("json"));
        let (file, bytes) = spool(reply.into_stream(), self.inner.spool_dir.as_deref()).await?;
        if looks_like_json {
            // A JSON reply with a success status is Zoho reporting an error (the daily limit,
            // say) where a ZIP was expected.
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 * 1024), &mut text)
                .map_err(|e| {
                    Error::new(ErrorKind::Storage, "could not read the download").with_source(e)
                })?;
            return Err(json_download_error(&text));
        }
        Ok((file, bytes, cursor))
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

/// A downloaded result: its rows and the cursor of the next batch.
#[derive(Debug)]
#[non_exhaustive]
pub struct Download {
    /// The rows, streamed from the spooled file.
    pub rows: Rows,
    /// The cursor for the next job, absent on the last batch.
    pub record_cursor: Option<String>,
    /// The size of the ZIP archive.
    pub bytes: u64,
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "the {what} link name is empty"
        )));
    }
    Ok(())
}

fn details(reply: &Response) -> Result<JobDetails> {
    let missing = || {
        Error::new(
            ErrorKind::Decode,
            "Zoho replied with success but without job details",
        )
        .with_body(reply.body())
    };
    // serde's derive would also read a struct from a JSON array (`{"details": [[0]]}` as job
    // "0"); Zoho's details are always an object.
    let value: serde_json::Value = serde_json::from_slice(reply.body()).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            "Zoho's reply is not readable JSON (cut off or garbled)",
        )
        .with_body(reply.body())
        .with_source(e)
    })?;
    if !value
        .get("details")
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(missing());
    }
    let env: Envelope = serde_json::from_value(value).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            "Zoho's job details are not as documented",
        )
        .with_body(reply.body())
        .with_source(e)
    })?;
    env.details.ok_or_else(missing)
}

#[derive(Deserialize)]
struct CodeReply {
    code: Option<serde_json::Value>,
    message: Option<String>,
    description: Option<String>,
}

/// Reads Zoho's `code` from any JSON reply: 3000 is success; 4000 (sent with HTTP 200) is the
/// daily API limit; 1030 an invalid or expired token; anything else an error with its code.
///
/// A 401 is worth a token refresh only with code 1030 ("the access token is either invalid or
/// has expired", Zoho's status-code page). Zoho also answers 401 for a missing parameter (1000)
/// and an invalid one (1060), and the simulator for a token without the needed scope; a fresh
/// token cannot cure those, and every refresh spends one of the 10 Zoho mints per 10 minutes,
/// so they are final `Auth` errors. A 401 without a readable code is treated the same way.
fn decode_creator_error(reply: &Response) -> Option<VendorError> {
    match parse_code(reply.body()) {
        Some((code, message)) => Some(classify(code, message, reply.status())),
        None if reply.status() == 401 => Some(
            VendorError::new(None, None)
                .kind(ErrorKind::Auth)
                .stale_token(false),
        ),
        None => None,
    }
}

/// Zoho's code for an invalid or expired access token.
const TOKEN_EXPIRED: &str = "1030";

fn parse_code(body: &[u8]) -> Option<(String, Option<String>)> {
    let parsed: CodeReply = serde_json::from_slice(body).ok()?;
    let code = match parsed.code? {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    (code != "3000").then(|| (code, parsed.message.or(parsed.description)))
}

fn classify(code: String, message: Option<String>, status: u16) -> VendorError {
    let kind = match code.as_str() {
        "4000" => Some(ErrorKind::QuotaExceeded),
        TOKEN_EXPIRED => Some(ErrorKind::Auth),
        _ if status == 401 || status == 403 => Some(ErrorKind::Auth),
        _ if status == 429 => Some(ErrorKind::RateLimited),
        _ if status < 300 => Some(ErrorKind::Http),
        _ => None,
    };
    let stale = code == TOKEN_EXPIRED;
    let mut vendor = VendorError::new(Some(code), message);
    if status == 401 {
        vendor = vendor.stale_token(stale);
    }
    match kind {
        // An error reported with a success status is final: repeating gets the same answer.
        Some(k) if status < 300 => vendor.kind(k).retryable(false),
        Some(k) => vendor.kind(k),
        None => vendor,
    }
}

/// The error for a download answered with JSON instead of a ZIP.
fn json_download_error(body: &[u8]) -> Error {
    match parse_code(body) {
        Some((code, message)) => {
            let kind = match code.as_str() {
                "4000" => ErrorKind::QuotaExceeded,
                TOKEN_EXPIRED => ErrorKind::Auth,
                _ => ErrorKind::Http,
            };
            Error::new(
                kind,
                "Zoho answered the download with an error instead of a ZIP",
            )
            .with_vendor(Some(code), message)
            .with_body(body)
        }
        None => Error::new(
            ErrorKind::Decode,
            "Zoho answered the download with JSON instead of a ZIP archive",
        )
        .with_body(body),
    }
}

impl ClientBuilder {
    /// The data centre; sets both the Creator and the accounts hosts.
    pub fn data_centre(mut self, dc: DataCentre) -> Self {
        self.dc = Some(dc);
        self
    }

    /// The API form (default [`ApiVersion::V2`], or `ZOHO_API_VERSION` with
    /// [`Client::from_env`]): it picks the path prefix, and with a data centre the host.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// An explicit API base URL (scheme + host + port, e.g. `https://creator.zoho.eu`, or
    /// `https://www.zohoapis.eu` for v2.1), for on-premise hosts or tests. Overrides the data
    /// centre's.
    pub fn creator_url(mut self, url: impl Into<String>) -> Self {
        self.creator_url = Some(url.into());
        self
    }

    /// An explicit accounts (OAuth) base URL (e.g. `https://accounts.zoho.eu`).
    pub fn accounts_url(mut self, url: impl Into<String>) -> Self {
        self.accounts_url = Some(url.into());
        self
    }

    /// The account owner's link name.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The application's link name.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// The OAuth client and a refresh token granted `ZohoCreator.bulk.CREATE` and
    /// `ZohoCreator.bulk.READ` (or CREATE only, with [`read_refresh_token`](Self::read_refresh_token)).
    pub fn credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(client_secret);
        self.refresh_token = Some(refresh_token);
        self
    }

    /// A separate refresh token with the READ scope, for status and downloads. One grant with
    /// both scopes is better: each refresh token counts against Zoho's 20-per-user cap.
    pub fn read_refresh_token(mut self, token: SecretString) -> Self {
        self.read_refresh_token = Some(token);
        self
    }

    /// Your own token sources instead of the OAuth refresh grant (CREATE, then READ).
    pub fn token_sources(
        mut self,
        create: Arc<dyn TokenSource>,
        read: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        self.create_source = Some(create);
        self.read_source = read;
        self
    }

    /// Shares access tokens through `store`, so that workers do not each mint their own against
    /// Zoho's cap of 10 per 10 minutes: a [`FileStore`] for processes on one machine, or a
    /// `RedisStore` (feature `redis`) for a fleet.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # fn run() -> zoho_bulk::Result<()> {
    /// use std::sync::Arc;
    /// use bulk_common::token::RedisStore;
    /// use zoho_bulk::{Client, DataCentre, SecretString};
    ///
    /// let client = Client::builder()
    ///     .data_centre(DataCentre::Eu)
    ///     .owner("acme")
    ///     .app("orders-app")
    ///     .credentials(
    ///         "1000.CLIENTID",
    ///         SecretString::from(std::env::var("ZOHO_CLIENT_SECRET").unwrap_or_default()),
    ///         SecretString::from(std::env::var("ZOHO_REFRESH_TOKEN").unwrap_or_default()),
    ///     )
    ///     .token_store(Arc::new(RedisStore::new("redis://tokens.internal:6379/")?))
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Zoho's cap on access tokens per refresh token (default 10 per 10 minutes); `None` turns
    /// the local check off.
    pub fn refresh_limit(mut self, limit: Option<RefreshRateLimit>) -> Self {
        self.refresh_limit = limit;
        self
    }

    /// Timeouts and retry policy.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// How jobs are polled (default: first look after 2 s, growing to 30 s, deadline 2 h).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// Client-side throttles (default: Zoho's 5 job creations and 10 downloads per minute).
    pub fn throttles(mut self, creates_per_minute: u32, downloads_per_minute: u32) -> Self {
        self.creates_per_minute = creates_per_minute;
        self.downloads_per_minute = downloads_per_minute;
        self
    }

    /// Where downloads are spooled (default: the system's temporary directory).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Downloads of one result at most (default 6), when transfers break off or archives
    /// arrive incomplete; the delays between them follow the HTTP retry policy's backoff.
    pub fn download_attempts(mut self, attempts: u32) -> Self {
        self.download_attempts = attempts.max(1);
        self
    }

    /// Creations of one read job at most (default 10) by [`Client::export`] and
    /// [`Client::read_report`], when a creation's outcome is unknown (a lost reply, a 5xx, an
    /// unreadable success): each may leave an orphaned job on Zoho, which costs quota and
    /// counts against the 5-per-minute creation throttle, never data. `1` turns re-creation off.
    pub fn create_attempts(mut self, attempts: u32) -> Self {
        self.create_attempts = attempts.max(1);
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<Client> {
        let owner = self
            .owner
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| Error::config("the account owner name is missing"))?;
        let app = self
            .app
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| Error::config("the application link name is missing"))?;
        let version = self.version.unwrap_or_default();
        let creator = match (&self.creator_url, self.dc) {
            (Some(url), _) => url.clone(),
            (None, Some(dc)) => version.base_url(dc),
            (None, None) => {
                return Err(Error::config(
                    "set a data centre or an explicit Creator base URL",
                ));
            }
        };
        let creator = BaseUrl::parse(&creator)?;
        let (create_source, read_source) = match self.create_source {
            Some(create) => (create.clone(), self.read_source.unwrap_or(create)),
            None => {
                let accounts = match (&self.accounts_url, self.dc) {
                    (Some(url), _) => url.clone(),
                    (None, Some(dc)) => dc.accounts_url(),
                    (None, None) => {
                        return Err(Error::config(
                            "set a data centre or an explicit accounts base URL",
                        ));
                    }
                };
                let accounts = BaseUrl::parse(&accounts)?;
                let client_id = self
                    .client_id
                    .ok_or_else(|| Error::config("the OAuth client id is missing"))?;
                let secret = self
                    .client_secret
                    .ok_or_else(|| Error::config("the OAuth client secret is missing"))?;
                let refresh = self
                    .refresh_token
                    .ok_or_else(|| Error::config("the OAuth refresh token is missing"))?;
                let token_url = format!("{accounts}/oauth/v2/token");
                let source = |refresh: SecretString| -> Result<Arc<dyn TokenSource>> {
                    let mut cfg = OAuthConfig::new(
                        token_url.clone(),
                        client_id.clone(),
                        SecretString::from(secret.expose_secret().to_owned()),
                        refresh,
                    )
                    // Zoho documents the refresh parameters in the query string.
                    .params_in(ParamsIn::Query)
                    .namespace("zoho")
                    .rate_limit(self.refresh_limit)
                    .http_options(self.http.clone());
                    if let Some(store) = &self.store {
                        cfg = cfg.store(store.clone());
                    }
                    Ok(Arc::new(Patient {
                        inner: Arc::new(OAuthRefreshSource::new(cfg)?),
                    }))
                };
                let create = source(refresh)?;
                let read = match self.read_refresh_token {
                    Some(read) => source(read)?,
                    None => create.clone(),
                };
                (create, read)
            }
        };
        let decoder: ErrorDecoder = Arc::new(decode_creator_error);
        let http = HttpClient::builder(PRODUCT)
            .base(creator)
            .options(self.http)
            .error_decoder(decoder)
            .build()?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                owner,
                app,
                version,
                create_auth: Auth::token_source(create_source, SCHEME),
                read_auth: Auth::token_source(read_source, SCHEME),
                poll: self.poll,
                create_throttle: Throttle::new(self.creates_per_minute, Duration::from_secs(60)),
                download_throttle: Throttle::new(
                    self.downloads_per_minute,
                    Duration::from_secs(60),
                ),
                spool_dir: self.spool_dir,
                download_attempts: self.download_attempts,
                create_attempts: self.create_attempts,
            }),
        })
    }
}

/// Longest `Retry-After` on a refused token refresh that is waited out before asking again.
const REFRESH_WAIT_MAX: Duration = Duration::from_secs(30);
/// Refreshes at most per token request when the accounts server throttles briefly.
const REFRESH_ATTEMPTS: u32 = 4;

/// The OAuth refresh source, waiting out a refresh that the accounts server throttled with a
/// short `Retry-After` (a 429 before anything was minted) instead of failing the call, and
/// asking again after a token reply that could not be read or a connection that kept breaking.
///
/// A throttle without `Retry-After`, or with a long one (Zoho's "Access Denied" after 10
/// tokens in 10 minutes locks the grant for the rest of the window), still fails at once: the
/// refresh source's cooldown stands, and asking again would only extend the lock-out.
#[derive(Debug)]
struct Patient {
    inner: Arc<dyn TokenSource>,
}

#[async_trait::async_trait]
impl TokenSource for Patient {
    async fn token(&self) -> Result<AccessToken> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.token().await {
                // An unreadable token reply, or a refresh whose connection kept breaking through
                // the HTTP retries: the request is safe to repeat (at worst it mints one more
                // token, well within the cap for these few attempts).
                Err(e)
                    if attempt < REFRESH_ATTEMPTS
                        && (e.kind() == ErrorKind::Decode
                            || (e.is_retryable() && e.kind() != ErrorKind::RateLimited)) =>
                {
                    tracing::warn!(error = %e, "the token refresh failed; refreshing again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e)
                    if e.kind() == ErrorKind::RateLimited
                        && attempt < REFRESH_ATTEMPTS
                        && e.retry_after().is_some_and(|d| d <= REFRESH_WAIT_MAX) =>
                {
                    let wait = e.retry_after().unwrap_or(REFRESH_WAIT_MAX);
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "the token refresh was throttled briefly; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn invalidate(&self, stale: &AccessToken) {
        self.inner.invalidate(stale).await;
    }

    fn observe_response(&self, headers: &bulk_common::Headers) {
        self.inner.observe_response(headers);
    }
}
