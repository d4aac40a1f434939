//! A client for bulk operations of the [Unicat](https://unicat.app) PIM API.
//!
//! - [`Client`]: logs in with the project's API key, sends the JWT as a bearer token, adopts
//!   a JWT the server rotates into any reply, and logs in again (once, for all concurrent
//!   callers) and replays the request when the JWT is refused.
//! - [`Selection`]: typed selections of records, assets or schema items: gids, the children of
//!   an item, search results, minus exclusions, in any combination.
//! - Bulk mutations ([`RecordsApi`], [`AssetsApi`], [`SchemaApi`]) return a [`JobHandle`];
//!   [`Client::wait`] follows the job through the sync feed (one feed reader per client, for
//!   any number of waits) to `done`, `rejected` (an [`ErrorKind::JobFailed`] error carrying
//!   `info.error`), the deadline or cancellation.
//! - Bulk get is a [`Stream`](futures::Stream) of [`Item`]s, page by page, following the
//!   opaque page cursor until it is null.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use unicat_api::{Children, Client, Filter, RecordSelection, Search};
//!
//! # async fn run() -> unicat_api::Result<()> {
//! let client = Client::from_env()?; // UNICAT_API_KEY, UNICAT_PROJECT, UNICAT_BASE_URL
//! let selection = RecordSelection::new()
//!     .children(Children::of("r-discontinued").exclude(["r-keep"]))
//!     .search(Search::new().q("obsolete").filter(Filter::new("definition", "is", "d-article")));
//!
//! let mut records = client.records().get(&selection).page_size(500).stream::<serde_json::Value>();
//! while let Some(record) = records.try_next().await? {
//!     println!("about to delete {}", record.gid);
//! }
//!
//! let job = client.records().delete(&selection).await?;
//! let report = client
//!     .wait(&job)
//!     .on_progress(|e| eprintln!("{:?} left", e.progress.remaining))
//!     .run()
//!     .await?;
//! println!("deleted {} records", report.total.unwrap_or(0));
//! # Ok(()) }
//! ```
//!
//! Errors are [`bulk_common::Error`]s: a `success: false` reply carries `result.code` as
//! [`Error::vendor_code`] (read it as an [`ApiCode`]; 1006 is a bulk selection error),
//! `result.message` as [`Error::vendor_message`] and `result.info` as [`Error::details`].
//! Bulk mutations are never re-sent after they may have reached the server
//! ([`ErrorKind::AmbiguousOutcome`]); bulk get and the feed reads are retried.

mod auth;
mod client;
mod get;
pub mod job;
mod model;
#[cfg(test)]
mod proptests;
pub mod selection;

/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{PollEvent, PollPolicy};
pub use bulk_common::{
    CancellationToken, Error, ErrorKind, ExposeSecret, HttpOptions, HttpStats, Jitter, Result,
    RetryEvent, RetryPolicy, SecretString,
};
pub use client::{
    AssetsApi, Client, ClientBuilder, ClientStats, DEFAULT_BASE_URL, MAX_SUBMISSIONS, Placement,
    RecordsApi, SchemaApi,
};
pub use get::{BulkGet, DEFAULT_PAGE_SIZE, Item, ItemStream, MAX_PAGE_SIZE};
pub use job::{JobHandle, JobReport, JobStatus, JobWait};
pub use model::{ApiCode, Gid};
pub use selection::{
    AssetSelection, Children, Filter, RecordSelection, SchemaSelection, Search, Selection,
};
