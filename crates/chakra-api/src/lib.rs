//! A client for the ChakraHQ external API: bulk process updates of any size, with an outcome for
//! every item, so that only the failed ones need fixing and resending.
//!
//! ```no_run
//! use chakra_api::{Client, ProcessStatus, ProcessUpdate};
//! # async fn run() -> chakra_api::Result<()> {
//! let client = Client::from_env()?; // CHAKRA_TOKEN, optional CHAKRA_BASE_URL
//! let updates = vec![
//!     ProcessUpdate::by_key("lead_id", "L-1").state("QUALIFIED").data("score", 80),
//!     ProcessUpdate::by_key("lead_id", "L-2").status(ProcessStatus::Cancelled),
//! ];
//! let report = client.bulk_update("lead").run_checked(updates).await?;
//! println!("{} applied, {} failed", report.succeeded(), report.failures().len());
//! for item in report.failures() {
//!     println!("item {} ({:?}): {:?}", item.index, item.identifier, item.outcome);
//! }
//! let resend = report.failed(); // fix these and send them again
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: bearer-token client ([`Client::from_env`], [`Client::builder`]); every reply's
//!   `{_data, _meta, _errors}` envelope is decoded, and a non-empty `_errors` becomes an
//!   [`Error`] carrying the vendor's code and message, even on HTTP 2xx.
//! - [`ProcessUpdate`]: one item (an [`Identifier`] and an [`Update`]), always sent in the
//!   nested `update` form, checked by [`validate`] before anything is sent.
//! - [`BulkUpdate`]: chunking, bounded concurrency, job tracking, the per-item [`BulkReport`],
//!   and what happens after an ambiguous outcome (see the [`bulk`] module).
//! - [`TableLayout`]: updates read from table rows (a CSV file's header and records).
//! - Reads: [`Client::get_process`], [`Client::list_processes`] (a stream).
//! - Steps on their own: [`Client::submit_updates`], [`Client::wait`],
//!   [`Client::job_entries`].

pub mod bulk;
mod client;
mod envelope;
pub mod job;
mod model;
mod process;
#[cfg(test)]
mod proptests;
mod table;

pub use bulk::{
    AmbiguousPolicy, BulkProgress, BulkReport, BulkUpdate, ItemResult, Outcome, Reconcile,
    default_poll_policy,
};
/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{PollEvent, PollPolicy};
pub use bulk_common::{
    CancellationToken, Error, ErrorKind, ExposeSecret, HttpOptions, HttpStats, Jitter, Result,
    RetryEvent, RetryPolicy, SecretString,
};
pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use envelope::Envelope;
pub use job::{
    BackgroundJob, DEFAULT_STALL_TIMEOUT, EntryCounts, EntryStatus, JobEntry, JobId, JobStatus,
    JobWatch,
};
pub use model::{
    Identifier, Process, ProcessId, ProcessStatus, ProcessUpdate, Query, Timestamp, Update,
    validate,
};
pub use process::MAX_LIST_LIMIT;
pub use table::TableLayout;
