//! A typed async client for the [Zefort](https://zefort.com) contract-management API: bulk
//! updates and tagging of contracts, task polling and acknowledgement, and contract search.
//!
//! ```no_run
//! use zefort_api::{BulkUpdate, Client, ContractQuery, ContractStatus, Target, WaitOptions};
//!
//! # async fn run() -> zefort_api::Result<()> {
//! // ZEFORT_API_KEY, and optionally ZEFORT_BASE_URL (sandbox | my | us | a URL).
//! let client = Client::from_env()?;
//! let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags("contracts of service")))
//!     .end_date("2023-02-15".parse()?)
//!     .status(ContractStatus::Done);
//! let options = WaitOptions::new()
//!     .on_progress(|e| eprintln!("still {} after {:?}", e.progress.status.as_deref().unwrap_or("?"), e.elapsed));
//! let task = client.run_bulk_update(&update, &options).await?;
//! println!("task {} is {}", task.id, task.backend_status);
//! # Ok(()) }
//! ```
//!
//! # What it does
//!
//! - Authenticates with HTTP Basic: the API key as user, an empty password
//!   ([`ClientBuilder::api_key`]); the key is a [`SecretString`] and never printed.
//! - Talks to `https://sandbox.zefort.com`, `https://my.zefort.com`, `https://us.zefort.com` or
//!   any origin ([`Host`]); every path keeps the vendor's trailing slash (`/api/tasks/{id}/`).
//! - Bulk operations: [`Client::bulk_update`], [`Client::tag_contracts`], [`Client::create_tag`].
//! - Tasks: [`Client::task`], [`Client::tasks`], [`Client::tasks_page`],
//!   [`Client::acknowledge_task`]; waiting with bulk-common's poll driver
//!   ([`Client::wait`], [`TaskJob`]) with progress events, a deadline and cancellation;
//!   [`TaskHandle`] serializes so another process can resume waiting.
//! - The whole job in one call: [`Client::run_bulk_update`] submits, waits, acknowledges (opt out
//!   with [`WaitOptions::acknowledge`]) and returns the finished [`Task`]; a task that ends in a
//!   status other than `done` is an [`ErrorKind::JobFailed`] error whose
//!   [`vendor_message`](Error::vendor_message) is the task's `backend_status_info`.
//! - Contract search as a lazy stream over pages: [`Client::search_contracts`] (the stream ends
//!   after the page whose `next` is null).
//! - Vendor error bodies in Django REST framework style (`{"detail": ..}`,
//!   `{"field": ["message"]}`) become the error's vendor message and details; a 400 with field
//!   errors is [`ErrorKind::InvalidInput`].
//!
//! # Reconciliation
//!
//! A bulk update is not idempotent, so it is never re-sent blindly: after a throttle (429) it is
//! retried, but if the connection breaks after the request was sent, the reply times out, the
//! server answers 5xx, or its success reply cannot be read, the outcome is unknown. [`Client::bulk_update`] then reconciles:
//!
//! 1. Before sending, it reads the most recent tasks (`GET /api/tasks/`, up to
//!    [`ClientBuilder::reconcile_scan_limit`], 200 by default) and notes those whose
//!    `details.data` already equals the request body.
//! 2. After an ambiguous outcome it reads them again. A task whose `details.data` equals the body
//!    (compared as JSON values) and that was not there before was created by this submission:
//!    it is returned as if the reply had arrived. If none is listed yet, it looks once more
//!    after 2 s (a server still busy with a timed-out request may list the task late).
//! 3. If there is none, the [`ErrorKind::AmbiguousOutcome`] error is returned (the request was
//!    probably not applied), or, with [`ClientBuilder::resubmit_if_absent`], the request is sent
//!    once more.
//!
//! Limits: the rule needs one extra `GET /api/tasks/` per bulk update; if that read fails, the
//! update is still sent, but an ambiguous outcome is then returned as an error, unreconciled. It relies on the vendor
//! echoing the body in `details.data` (documented) and listing new tasks among the first
//! `reconcile_scan_limit` (assumed newest first; if the vendor lists oldest first and has more
//! tasks than the limit, the task is not found and the error is returned, never a duplicate
//! submission). If another client submits an identical body between steps 1 and 2, its task may
//! be returned instead; it makes the same change. The task list may lag behind the reply: with
//! `resubmit_if_absent` a slow listing can lead to a second task (harmless for the contracts,
//! since setting the same values twice changes nothing more). Disable the whole rule with
//! [`ClientBuilder::reconcile`]`(false)`.
//!
//! # Errors
//!
//! Every operation returns [`Result`], whose [`Error`] is bulk-common's opaque error; ask it
//! [`Error::kind`], [`Error::status`], [`Error::vendor_message`] or [`Error::details`].

mod client;
mod job;
mod models;
#[cfg(test)]
mod proptests;
mod reconcile;

/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{PollEvent, PollPolicy};
pub use bulk_common::{
    CancellationToken, Error, ErrorKind, ExposeSecret, HttpOptions, HttpStats, Jitter, Result,
    RetryEvent, RetryPolicy, SecretString,
};
pub use client::{Client, ClientBuilder, Host};
pub use job::{TaskHandle, TaskJob, WaitOptions};
pub use models::{
    BackendStatus, BulkUpdate, Contract, ContractAttributes, ContractId, ContractQuery,
    ContractStatus, Date, EsignStatus, FrontendStatus, Page, Tag, TagId, TagOutcome, Target, Task,
    TaskDetails, TaskId,
};
