//! A client for the ChakraHQ external API: bulk process updates of any size, with an outcome for
//! every item, so that only the failed ones need fixing and resending.
//!
//! One bulk-update request becomes one background job; [`BulkUpdate`] does the whole run
//! (chunking, bounded concurrency, tracking, a per-item report, read-back of unknown outcomes),
//! and each step stays available on its own, as below.
//!
//! # Build from the environment
//! ```no_run
//! # fn run() -> chakra_api::Result<()> {
//! use chakra_api::Client;
//! let client = Client::from_env()?; // CHAKRA_TOKEN, optional CHAKRA_BASE_URL
//! # Ok(()) }
//! ```
//!
//! # Submit
//! One request of updates (checked with [`validate`] first) becomes a background job; its
//! [`JobHandle`] is the job id and the number of items sent.
//! ```no_run
//! # async fn run(client: chakra_api::Client) -> chakra_api::Result<()> {
//! use chakra_api::{ProcessStatus, ProcessUpdate, validate};
//! let updates = vec![
//!     ProcessUpdate::by_key("lead_id", "L-1").state("QUALIFIED").data("score", 80),
//!     ProcessUpdate::by_key("lead_id", "L-2").status(ProcessStatus::Cancelled),
//! ];
//! validate(&updates)?;
//! let job = client.submit_updates("lead", &updates).await?;
//! println!("job {} carries {} items", job.id(), job.submitted());
//! # Ok(()) }
//! ```
//!
//! # Wait with progress
//! [`Client::wait`] is awaitable, and takes a policy, a cancellation token and a progress
//! observer first if wanted ([`Client::default_poll_policy`] otherwise).
//! ```no_run
//! # async fn run(client: chakra_api::Client, job: chakra_api::JobHandle) -> chakra_api::Result<()> {
//! let status = client
//!     .wait(&job)
//!     .on_progress(|e| eprintln!("{:?} of {:?} items left", e.progress.remaining, e.progress.total))
//!     .await?;
//! println!("{}", status.counts); // "2 success, 0 error, 0 invalid, 0 not started"
//! # Ok(()) }
//! ```
//!
//! # Read the result
//! The job's entries say how each item ended ([`Client::job_entries`], a lazy stream).
//! [`BulkUpdate`] attributes them to its input items for you, in a [`BulkReport`].
//! ```no_run
//! # async fn run(client: chakra_api::Client, job: chakra_api::JobHandle) -> chakra_api::Result<()> {
//! use chakra_api::EntryStatus;
//! use futures::TryStreamExt;
//! let entries: Vec<_> = client.job_entries(job.id()).try_collect().await?;
//! for entry in entries.iter().filter(|e| e.status != EntryStatus::Success) {
//!     println!("{:?}: {}", entry.status, entry.message.as_deref().unwrap_or("no message"));
//! }
//! # Ok(()) }
//! ```
//!
//! # Resume from a saved handle
//! A [`JobHandle`] is `Serialize` + `Deserialize`: save it, and wait for the job in another
//! process (looking at once, since it may have finished long ago).
//! ```no_run
//! # async fn run(client: chakra_api::Client, job: chakra_api::JobHandle) -> Result<(), Box<dyn std::error::Error>> {
//! use chakra_api::JobHandle;
//! std::fs::write("job.json", serde_json::to_string(&job)?)?;
//! // ... later, in another process:
//! let saved: JobHandle = serde_json::from_str(&std::fs::read_to_string("job.json")?)?;
//! let status = client.wait(&saved).poll_immediately(true).await?;
//! println!("{}", status.counts);
//! # Ok(()) }
//! ```
//!
//! # The whole run in one call
//! ```no_run
//! use chakra_api::{Client, ProcessStatus, ProcessUpdate};
//! # async fn run() -> chakra_api::Result<()> {
//! let client = Client::from_env()?;
//! let updates = (1..=10_000).map(|i| {
//!     ProcessUpdate::by_key("lead_id", format!("L-{i}")).state("QUALIFIED").data("score", 80)
//! });
//! let report = client.bulk_update("lead").run(updates).await?; // chunked, 4 at a time
//! println!("{} applied, {} failed", report.succeeded(), report.failures().len());
//! for item in report.failures() {
//!     let id = item.identifier.as_ref().map(ToString::to_string).unwrap_or_default();
//!     let why = item.outcome.message().unwrap_or_default();
//!     println!("item {} ({id}): {}: {why}", item.index, item.outcome.label());
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
//!   and unknown outcomes resolved by reading the processes back (see the [`bulk`] module).
//! - [`TableLayout`]: updates read from table rows (a CSV file's header and records).
//! - Reads: [`Client::get_process`], [`Client::list_processes`] (a stream).
//! - Jobs: [`Client::submit_updates`], [`Client::wait`], [`Client::watch`] (an owned
//!   [`bulk_common::poll::Job`]), [`Client::job_status`], [`Client::job_entries`].
//!
//! # Every call and its source
//!
//! Auth on every call: `Authorization: Bearer <access token of an API key>` (seed 002's curl example;
//! docs.chakrahq.com "API keys"). Every reply is the envelope `{"_data", "_meta", "_errors"}` (seed 002,
//! docs "Response Format"); a non-empty `_errors` is a failure even on HTTP 2xx. The `_errors` item shape
//! is not documented: the code is read from `code`/`errorCode`/`type`/`name` and the message from
//! `message`/`msg`/`detail`/…, and an item that has neither still fails the call.
//!
//! | Call | Method, path | Body sent | Reply fields read | Source | Where the docs are silent: the assumption, and why a wrong one stays safe |
//! |---|---|---|---|---|---|
//! | Bulk update (`submit_updates`, `BulkUpdate`) | `PATCH /v1/ext/procedure/{procedure id or shortId}/process` | `{"processes": [{"<id or primary-key attribute>": value, "update": {"data", "state", "status", "assignedTo", "nextActionAt", "isDeleted"}}]}` | `_data.id` (the background job) | seed 002 (curl example, "Request Body"); docs.chakrahq.com "Bulk Update Process API"; apidocs "Bulk Update Process API" | The seed's prose says `/v1/procedure/…`, its curl `/v1/ext/…`: `/v1/ext` is used; if wrong, the 404 stops the run with one error. Always the nested `update` form the text specifies (two seed examples are flat; they are read, never sent). `nextActionAt` is sent as integer ms (the field text; one example has a string). No maximum per request is documented: chunks of 1,000, halved only on HTTP 413 (no size error code is documented, and words in a message are ignored). The PATCH is not idempotent: it is never retried once it may have reached the server; its items are read back instead. |
//! | Job status (`job_status`, `wait`) | `GET /v1/ext/background-job/{id}` | — | `_data.completionStatus` first, `statusMessage`, `completedAt`; `_meta.bjEntryCompletionStatusVsCount` (`INVALID`, `NOT_STARTED`, `SUCCESS`, `ERROR`) | docs.chakrahq.com "Fetch Background Job"; apidocs api-11531337 | Only `IN_PROGRESS` is documented. It is trusted to mean running; `FAILED`/`ERROR`/`ABORTED`/`CANCELLED` end the wait as a failed job; without a known value, the job is over when the counts cover every item with none `NOT_STARTED`, or `completedAt > 0`. A job that never leaves `IN_PROGRESS`, or whose counts stop moving, ends after the stall timeout (10 min) with a typed error carrying the counts; its items are read back and never sent again. |
//! | Job entries (`job_entries`) | `GET /v1/ext/background-job/{id}/entries`, then the next-page path in `_meta` | — | per entry: `completionStatus` (before any other status field), `statusMessage`, `index`, `payload`; `_meta`: next-page path | apidocs api-11531427 ("array of background job entries", `_meta` "total entries and the path for the next page") | Entry fields are not documented. `completionStatus` is the name the counts are "grouped by"; `index` (position in the request) and `payload` (the echoed item) are guesses. Entries are attributed only by `index` (checked against the echoed identifier) or by an echoed identifier unique in the chunk, never by their order; when their statuses disagree with the job's counts none is used; an item no entry can be trusted for is read back. |
//! | Fetch a process (`get_process`, read-back by id) | `GET /v1/ext/procedure/{procedure}/process/{id}` | — | `_data`: `id`, `data`, `state`, `status`, `assignedTo`, `nextActionAt`, `isDeleted` | apidocs "Fetch Process By Id"; field names as in the update (seed 002) | Process field names are assumed equal to the update's. A read-back only says "applied" when every requested value is there; a missing field means "not there", which leads to a resend (the server's own answer) or to "unknown", never to a wrong "applied". |
//! | List processes (`list_processes`, read-back by primary key) | `POST /v1/ext/procedure/{procedure}/process/list` | `{"where": {<key>: value \| [values] \| {op: value}, "and"/"or": [...]}, "skip", "limit" ≤ 100}` | `_data` (processes), `_meta.hasMore` | apidocs "List Processes" | `{key: [values]}` is read as "any of". A soft-deleted process may not be listed: a not-found process is sent again rather than reported failed, and one whose update deletes or restores it stays unknown; several processes with one key value stay unknown. |
//!
//! **Throttling (assumed shape).** The rate-limit page could not be read, so the client acts only
//! on HTTP 429 and its `Retry-After` (RFC 9110), never on the body. The simulator's `_errors:
//! [{code: "TOO_MANY_REQUESTS"}]` in the documented envelope is an assumption the client does not
//! read.
//!
//! # Workflows
//! Both run against ChakraHQ with `CHAKRA_TOKEN`, or against the simulator: `cargo xtask sim`
//! prints the `CHAKRA_BASE_URL` and `CHAKRA_TOKEN` to export.
//!
//! | Workflow | Example |
//! |---|---|
//! | Update the processes of a procedure from a JSONL or CSV file of any size, writing the items to fix and resend | `examples/update_processes.rs`: `cargo run -p chakra-api --example update_processes -- lead updates.jsonl` |
//! | Submit one request, save its job handle, wait with progress, read the entries; resume the wait from the saved handle | `examples/track_job.rs`: `cargo run -p chakra-api --example track_job -- lead updates.jsonl`, then `-- --resume updates.jsonl.job.json` |

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
};
/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{JobWait, PollEvent, PollPolicy, Progress, WaitOptions};
pub use bulk_common::{
    CancellationToken, Error, ErrorKind, ExposeSecret, HttpOptions, HttpStats, Jitter, Result,
    RetryEvent, RetryPolicy, SecretString,
};
pub use client::{Client, ClientBuilder, DEFAULT_BASE_URL};
pub use envelope::Envelope;
pub use job::{
    CompletionStatus, DEFAULT_STALL_TIMEOUT, EntryCounts, EntryStatus, JobEntry, JobHandle, JobId,
    JobStatus, JobWatch,
};
pub use model::{
    Identifier, Process, ProcessId, ProcessStatus, ProcessUpdate, Query, Timestamp, Update,
    validate,
};
pub use process::MAX_LIST_LIMIT;
pub use table::TableLayout;
