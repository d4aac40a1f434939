//! The Zoho Creator bulk-read client and its builder.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::{PollPolicy, Wait};
use bulk_common::throttle::Throttle;
use bulk_common::token::{
    FileStore, OAuthConfig, OAuthRefreshSource, ParamsIn, RefreshRateLimit, TokenStore,
};
use bulk_common::{
    Auth, BaseUrl, Error, ErrorDecoder, ErrorKind, ExposeSecret, HttpClient, HttpOptions, Method,
    Response, Result, SecretString, TokenSource, VendorError, encode_segment,
};
use serde::Deserialize;

use crate::dc::DataCentre;
use crate::job::{JobHandle, ReadJob};
use crate::models::{CreateBody, CreateQuery, Envelope, JobDetails, ReadQuery};
use crate::rows::{Rows, read_zip, spool};

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
    create_auth: Auth,
    read_auth: Auth,
    pub(crate) poll: PollPolicy,
    create_throttle: Throttle,
    download_throttle: Throttle,
    spool_dir: Option<PathBuf>,
    pub(crate) download_attempts: u32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("creator", self.inner.http.base_url())
            .field("owner", &self.inner.owner)
            .field("app", &self.inner.app)
            .field("create_auth", &self.inner.create_auth)
            .field("read_auth", &self.inner.read_auth)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]. Every secret is a [`SecretString`]; `Debug` never shows them.
#[must_use]
pub struct ClientBuilder {
    dc: Option<DataCentre>,
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
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("dc", &self.dc)
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
        }
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

    /// A client configured from the environment:
    ///
    /// - `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN` (a grant with both
    ///   `ZohoCreator.bulk.CREATE` and `ZohoCreator.bulk.READ`, or CREATE only when
    ///   `ZOHO_READ_REFRESH_TOKEN` holds a separate READ grant);
    /// - `ZOHO_DC` (`us`, `eu`, `in`, `au`, `jp`, `ca`, `sa`, `cn`), or `ZOHO_CREATOR_URL` and
    ///   `ZOHO_ACCOUNTS_URL`;
    /// - `ZOHO_OWNER` and `ZOHO_APP` (the account owner and application link names);
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
    /// jobs, so the caller decides
    /// whether to create another (an orphaned job costs quota, not data).
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
        let path = result
            .and_then(|r| r.download_url.clone())
            .unwrap_or_else(|| {
                format!(
                    "{}/{}/result",
                    self.read_path(&job.report),
                    encode_segment(&job.id)
                )
            });
        let attempts = self.inner.download_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.inner.download_throttle.acquire().await;
            match self.download_once(&path).await {
                Ok((file, bytes, header_cursor)) => {
                    tracing::info!(job = %job.id, bytes, "result downloaded");
                    let record_cursor =
                        header_cursor.or_else(|| result.and_then(|r| r.record_cursor.clone()));
                    return Ok(Download {
                        rows: read_zip(file, result.and_then(|r| r.count)),
                        record_cursor,
                        bytes,
                    });
                }
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::warn!(job = %job.id, error = %e, "download broke off; downloading again");
                }
                Err(e) => {
                    return Err(e.context(format!("downloading the result of job {}", job.id)));
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

    /// The seed workflow for one job: create, wait, download, and the rows.
    pub async fn read_report(&self, report: &str, query: &ReadQuery) -> Result<Download> {
        let job = self.create_job(report, query).await?;
        let details = self.wait(&job).await?;
        self.download(&job, Some(&details)).await
    }

    pub(crate) fn read_path(&self, report: &str) -> String {
        format!(
            "/api/bulk/v2/{}/{}/report/{}/read",
            encode_segment(&self.inner.owner),
            encode_segment(&self.inner.app),
            encode_segment(report)
        )
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
    let value: serde_json::Value = reply.json()?;
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
fn decode_creator_error(reply: &Response) -> Option<VendorError> {
    let (code, message) = parse_code(reply.body())?;
    Some(classify(code, message, reply.status()))
}

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
        "1030" => Some(ErrorKind::Auth),
        _ if status == 429 => Some(ErrorKind::RateLimited),
        _ if status < 300 => Some(ErrorKind::Http),
        _ => None,
    };
    let vendor = VendorError::new(Some(code), message);
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
                "1030" => ErrorKind::Auth,
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

    /// An explicit Creator base URL (scheme + host + port, e.g. `https://creator.zoho.eu`), for
    /// on-premise hosts or tests. Overrides the data centre's.
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
        let creator = match (&self.creator_url, self.dc) {
            (Some(url), _) => url.clone(),
            (None, Some(dc)) => dc.creator_url(),
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
                    Ok(Arc::new(OAuthRefreshSource::new(cfg)?))
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
                create_auth: Auth::token_source(create_source, SCHEME),
                read_auth: Auth::token_source(read_source, SCHEME),
                poll: self.poll,
                create_throttle: Throttle::new(self.creates_per_minute, Duration::from_secs(60)),
                download_throttle: Throttle::new(
                    self.downloads_per_minute,
                    Duration::from_secs(60),
                ),
                spool_dir: self.spool_dir,
                download_attempts: 3,
            }),
        })
    }
}
