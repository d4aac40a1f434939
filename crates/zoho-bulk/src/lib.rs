//! A Zoho Creator **Bulk Read** client that actually returns the rows.
//!
//! A bulk read is a job: create it, wait for it, download a ZIP holding one CSV, and, when the
//! report has more rows than one job may return, create a follow-up job from the record cursor.
//! This crate does all of it as one stream of rows:
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use zoho_bulk::{Client, DataCentre, ReadQuery, SecretString};
//!
//! # async fn run() -> zoho_bulk::Result<()> {
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
//! let query = ReadQuery::new().criteria("Status == \"Open\"");
//! let mut rows = client.export("All_Orders", query);
//! let mut n = 0;
//! while let Some(row) = rows.try_next().await? {
//!     n += 1;
//!     let _email = row.get("Email");
//! }
//! println!("{n} rows");
//! # Ok(()) }
//! ```
//!
//! What it takes care of:
//!
//! - **Hosts per data centre** ([`DataCentre`]): the Creator and accounts hosts, never derived from
//!   a token reply's `api_domain`.
//! - **Tokens**: OAuth refresh through `bulk_common`'s refresh-token source: refreshed ahead of
//!   expiry, once for any number of concurrent calls, within Zoho's 10-per-10-minutes minting cap
//!   (optionally shared between processes with a token store); Zoho's invalid-token reply (1030)
//!   invalidates the token and the request is replayed once; a refresh refused as "too many
//!   requests" is a [`ErrorKind::RateLimited`] error, never a refresh loop. One grant with both
//!   scopes, or separate CREATE and READ grants.
//! - **Zoho's codes**: every reply's `code` is checked; the daily limit (4000, sent with HTTP 200)
//!   is [`ErrorKind::QuotaExceeded`].
//! - **Jobs**: created with validated queries ([`MaxRecords`]), polled with backoff and a deadline,
//!   status compared without case ([`JobStatus`]); a failed job is [`ErrorKind::JobFailed`]. Job
//!   handles and export checkpoints serialize, so an export resumes after a restart.
//! - **Rows**: the ZIP is spooled to a temporary file, its CSV read on a blocking thread and
//!   streamed; a truncated or corrupt archive, a missing CSV, a malformed row or a row count that
//!   differs from Zoho's is an [`ErrorKind::Decode`] error, never silently partial data.
//! - **Throttles**: job creations (5/min) and downloads (10/min) are paced client-side.

mod client;
mod dc;
mod export;
mod job;
mod models;
#[cfg(test)]
mod proptests;
mod rows;

/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{PollEvent, PollPolicy};
pub use bulk_common::{
    CancellationToken, Error, ErrorKind, ExposeSecret, HttpOptions, HttpStats, Jitter, Result,
    RetryEvent, RetryPolicy, SecretString,
};
pub use client::{Client, ClientBuilder, Download, default_poll_policy};
pub use dc::{ApiVersion, DataCentre};
pub use export::{Export, ExportCheckpoint, ExportEvent, ExportOptions, NextStep};
pub use job::{JobHandle, ReadJob};
pub use models::{JobDetails, JobResult, JobStatus, MaxRecords, ReadQuery};
pub use rows::{Record, Rows};
