//! A Zoho Creator **Bulk Read** client that actually returns the rows.
//!
//! A bulk read is a job: create it, wait for it, download a ZIP holding one CSV, and, when the
//! report has more rows than one job may return, create a follow-up job from the record cursor.
//! [`Client::export`] does all of it as one stream of rows; each step is also a call of its own:
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use zoho_bulk::{Client, ReadQuery};
//!
//! # async fn run() -> zoho_bulk::Result<()> {
//! let client = Client::from_env()?;
//! let mut rows = client.export("All_Orders", ReadQuery::new().criteria("Status == \"Open\""));
//! while let Some(row) = rows.try_next().await? {
//!     println!("{:?}", row.get("Email"));
//! }
//! # Ok(()) }
//! ```
//!
//! # Build from the environment
//!
//! [`Client::from_env`] reads `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN`,
//! `ZOHO_DC` (or `ZOHO_CREATOR_URL` and `ZOHO_ACCOUNTS_URL`), `ZOHO_OWNER` and `ZOHO_APP`;
//! [`Client::builder`] sets the same in code (and the throttles, retry and poll policies).
//!
//! ```no_run
//! use zoho_bulk::{Client, DataCentre, SecretString};
//!
//! # fn run() -> zoho_bulk::Result<()> {
//! let client = Client::from_env()?;
//! // Or, in code:
//! let client = Client::builder()
//!     .data_centre(DataCentre::Eu)
//!     .owner("acme")
//!     .app("orders-app")
//!     .credentials(
//!         "1000.CLIENTID",
//!         SecretString::from(std::env::var("ZOHO_CLIENT_SECRET").unwrap_or_default()),
//!         SecretString::from(std::env::var("ZOHO_REFRESH_TOKEN").unwrap_or_default()),
//!     )
//!     .build()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! # Submit
//!
//! [`Client::create_job`] creates a bulk-read job and returns its [`JobHandle`], which
//! serializes: save it to wait for the job in another process.
//!
//! ```no_run
//! use zoho_bulk::{Client, ReadQuery};
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let query = ReadQuery::new().fields(["ID", "Email"]).criteria("Status == \"Open\"");
//! let job = client.create_job("All_Orders", &query).await?;
//! std::fs::write("job.json", serde_json::to_string(&job)?)?;
//! # Ok(()) }
//! ```
//!
//! # Wait with progress
//!
//! [`Client::wait`] is awaitable, with options first if needed: a progress observer,
//! cancellation, another [`PollPolicy`] (the default is [`Client::default_poll_policy`]), or a
//! whole [`WaitOptions`]. A failed job is [`ErrorKind::JobFailed`]; one still running at the
//! deadline [`ErrorKind::DeadlineExceeded`].
//!
//! ```no_run
//! use zoho_bulk::{CancellationToken, Client, JobHandle};
//!
//! # async fn run(client: Client, job: JobHandle) -> zoho_bulk::Result<()> {
//! let stop = CancellationToken::new();
//! let details = client
//!     .wait(&job)
//!     .on_progress(|e| eprintln!("{}: {:?} (look {})", e.job, e.progress.status, e.polls))
//!     .cancel_on(stop.clone())
//!     .await?;
//! # let _ = details; Ok(()) }
//! ```
//!
//! # Read the result
//!
//! [`Client::download`] spools the ZIP to a temporary file, checks it whole, and returns its rows
//! as a stream ([`Rows`]) with the cursor of the next batch; [`Client::create_next_job`] starts
//! that batch.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use zoho_bulk::{Client, JobDetails, JobHandle};
//!
//! # async fn run(client: Client, job: JobHandle, details: JobDetails) -> zoho_bulk::Result<()> {
//! let download = client.download(&job, Some(&details)).await?;
//! let mut rows = download.rows;
//! while let Some(row) = rows.try_next().await? {
//!     println!("{:?}", row.get("Email"));
//! }
//! if let Some(cursor) = download.record_cursor {
//!     let next = client.create_next_job(job.report(), &cursor).await?;
//!     # let _ = next;
//! }
//! # Ok(()) }
//! ```
//!
//! # Resume from a saved handle
//!
//! A later process reads the handle back and waits again, looking at once (the job may have
//! finished long ago). Whole exports resume the same way from their [`ExportCheckpoint`]s with
//! [`Client::resume_export`].
//!
//! ```no_run
//! use zoho_bulk::{Client, JobHandle};
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let job: JobHandle = serde_json::from_str(&std::fs::read_to_string("job.json")?)?;
//! let details = client.wait(&job).poll_immediately(true).await?;
//! let download = client.download(&job, Some(&details)).await?;
//! # let _ = download; Ok(()) }
//! ```
//!
//! # Every call and its source
//!
//! `{P}` is `/api/bulk/v2/{owner}/{app}/report/{report}/read` on `creator.zoho.<dc>` (v2, the
//! default) or `/creator/v2.1/bulk/{owner}/{app}/report/{report}/read` on `www.zohoapis.<dc>`
//! (v2.1); see [`ApiVersion`]. `T` is `Authorization: Zoho-oauthtoken <access token>`.
//!
//! | Call | Method, path, auth | Body sent | Reply fields read | Source |
//! |---|---|---|---|---|
//! | refresh a token | `POST {accounts}/oauth/v2/token`, no auth | query: `grant_type=refresh_token`, `client_id`, `client_secret`, `refresh_token` | `access_token`, `expires_in`; an `error` (+ `error_description`) | seed 001 (settings, token dicts); Zoho's OAuth refresh page; zoho-creator-sdk `auth.py` (same fields, as a form) |
//! | create a read job | `POST {P}`, `T` with `ZohoCreator.bulk.CREATE` | none (default query, as seed 001), or `{"query": {fields?, criteria?, max_records?}}`; follow-up jobs `{"query": {"record_cursor"}}` alone | `code`; `details.id` | seed 001 (create); Zoho's v2/v2.1 create-bulk-read-job pages; limitations page (cursor alone, 100,000–200,000 by 1,000) |
//! | job status | `GET {P}/{job_id}`, `T` with `ZohoCreator.bulk.READ` | none | `code`; `details.{id, status, operation, created_by, created_time}`; `details.result.{count, download_url, record_cursor}` | seed 001 (status, first method); Zoho's v2/v2.1 status pages |
//! | download | `GET {download_url}` when it lies under `{P}`, else `GET {P}/{job_id}/result`; `T` with READ | none | a ZIP with one CSV; header `recordCursor`; a JSON body means an error (`code`) | seed 001 (first and second method); Zoho's v2/v2.1 download pages |
//! | any Creator reply | | | `code` (3000 success; 4000 daily limit, even with HTTP 200; 1030 with 401: refresh once and replay; any other code: typed error) and `message` | Zoho's status-code page |
//!
//! Where the sources are silent, the client assumes, and stays safe if wrong:
//!
//! - **Status spellings** (`In-progress`, `IN PROGRESS`, `Completed`, `COMPLETED`): compared without
//!   case or punctuation; an unknown value counts as still running, so a wrong guess costs a poll
//!   until the deadline, never a download of an unfinished job.
//! - **`details.id` type**: a string in every sample; a number is accepted as text.
//! - **`download_url` host**: relative to the API host (the docs say "your api domain"; seed 001
//!   prefixes the Creator host). A URL outside the form's own prefix (the v2.1 page's sample shows
//!   `/api/bulk/v2.1/...`) is replaced by the documented `{P}/{job_id}/result`.
//! - **Cursor in the header or in the status reply**: the header wins, the status's
//!   `result.record_cursor` is the fallback; both absent means the last batch, as the download page
//!   says. Each batch's rows are checked against the `count` Zoho reports for it.
//! - **401 codes other than 1030** (1000, 1060 on the status-code page; anything unreadable): a
//!   typed `Auth` error without a refresh, since each refresh spends one of Zoho's 10 per 10
//!   minutes and a new token cannot cure them.
//! - **An ambiguous job creation** (lost reply, 5xx, unreadable success): Zoho cannot list jobs;
//!   a read job changes no data, so it is created again (bounded by `create_attempts`, counted
//!   in [`ExportCheckpoint::orphaned_jobs`]); the orphan costs quota only.
//! - **A result's archive**: checked whole (every entry read to its end, CRCs included) before
//!   any row is handed over; an incomplete one is downloaded again (Zoho keeps results 24 hours),
//!   at most `download_attempts` times.
//! - **v2.1 hosts** for Canada, Saudi Arabia and China (`www.zohoapis.ca`, `.sa`, `.com.cn`): taken
//!   from the zoho-creator-sdk's table (Canada) or the domain; an explicit `creator_url`
//!   overrides them.
//!
//! **Throttling (assumed shape).** Zoho publishes its limits (5 job creations and 10 downloads a
//! minute, 10 token refreshes per 10 minutes: `vendors.md`) but no general throttle reply for the
//! bulk API. The client acts on HTTP 429 and its `Retry-After` (RFC 9110), and on the token
//! endpoint's documented "Access Denied" throttle (`codes.rs`). The simulator's code 2955 in its
//! 429 body is borrowed from the documented creation throttle and is not read by the client.
//!
//! # Workflows
//!
//! | Workflow | Calls | Example |
//! |---|---|---|
//! | Export a whole report, across as many jobs as it needs, with checkpoints | [`Client::export_with`], [`Client::resume_export`] | `examples/export_report.rs` |
//! | Read one job step by step, resumable from a saved handle | [`Client::create_job`], [`Client::wait`], [`Client::download`] | `examples/read_job.rs` |
//!
//! Both run against the simulator (`cargo xtask sim` prints the environment to export) or real
//! credentials:
//!
//! ```text
//! cargo run -p zoho-bulk --example export_report -- All_Orders --out rows.csv
//! cargo run -p zoho-bulk --example read_job -- All_Orders --save job.json
//! cargo run -p zoho-bulk --example read_job -- --resume job.json
//! ```
//!
//! # What it takes care of
//!
//!
//! - **Hosts per data centre** ([`DataCentre`]): the API and accounts hosts, never derived from
//!   a token reply's `api_domain`; both API forms ([`ApiVersion`]: v2 on `creator.zoho.<dc>`, the
//!   default, or v2.1 on `www.zohoapis.<dc>`), chosen with a builder method or
//!   `ZOHO_API_VERSION`.
//! - **Unknown outcomes, resolved**: a read-job creation whose reply was lost is made again (an
//!   orphan costs quota, not data; counted in [`ExportCheckpoint::orphaned_jobs`]); a download
//!   whose archive is incomplete or fails its CRC is fetched again with backoff.
//! - **Tokens**: OAuth refresh through `bulk_common`'s refresh-token source: refreshed ahead of
//!   expiry, once for any number of concurrent calls, within Zoho's 10-per-10-minutes minting cap
//!   (optionally shared between processes with a token store); Zoho's invalid-token reply (1030)
//!   invalidates the token and the request is replayed once (no other 401 code does: each
//!   refresh is scarce); a refresh refused as "too many
//!   requests" is a [`ErrorKind::RateLimited`] error, never a refresh loop. One grant with both
//!   scopes, or separate CREATE and READ grants.
//! - **Zoho's codes**: every reply's `code` is checked; the daily limit (4000, sent with HTTP 200)
//!   is [`ErrorKind::QuotaExceeded`].
//! - **Jobs**: created with validated queries ([`MaxRecords`]), polled with backoff and a deadline,
//!   status compared without case ([`JobStatus`]); a failed job is [`ErrorKind::JobFailed`]. Job
//!   handles and export checkpoints serialize, so an export resumes after a restart.
//! - **Rows**: the ZIP is spooled to a temporary file, its CSV read on a blocking thread and
//!   streamed in batches whose buffers (like the spool's) the client reuses from job to job, so
//!   memory stays flat however many jobs an export chains; a truncated or corrupt archive, a missing CSV, a malformed row or a row count that
//!   differs from Zoho's is an [`ErrorKind::Decode`] error, never silently partial data.
//! - **Throttles**: job creations (5/min) and downloads (10/min) are paced client-side.

mod builder;
mod client;
mod codes;
mod dc;
mod download;
mod export;
mod job;
mod model;
#[cfg(test)]
mod proptests;
mod rows;

pub use builder::ClientBuilder;
/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{JobWait, PollEvent, PollPolicy, Progress, WaitOptions};
pub use bulk_common::{CancellationToken, Error, ErrorKind, Result};
pub use bulk_common::{
    ExposeSecret, HttpOptions, HttpStats, Jitter, RetryEvent, RetryPolicy, SecretString,
};
pub use client::Client;
pub use dc::{ApiVersion, DataCentre};
pub use download::Download;
pub use export::{Export, ExportCheckpoint, ExportEvent, ExportOptions, NextStep};
pub use job::{JobHandle, JobStatus, JobWatch};
pub use model::{JobDetails, JobId, JobResult, MaxRecords, ReadQuery};
pub use rows::{Record, Rows};
