//! A client for bulk operations of the [Unicat](https://unicat.app) PIM API.
//!
//! - [`Client`]: logs in with the project's API key, sends the JWT as a bearer token, adopts
//!   a JWT the server rotates into any reply, and logs in again (once, for all concurrent
//!   callers, who share its failure too) and replays the request when the JWT is refused.
//! - [`Selection`]: typed selections of records, assets or schema items: gids, the children of
//!   an item, search results, minus exclusions, in any combination.
//! - Bulk mutations ([`RecordsApi`], [`AssetsApi`], [`SchemaApi`]) return a [`JobHandle`];
//!   [`Client::wait`] follows the job through the sync feed (one feed reader per client, for
//!   any number of waits) to `done`, `rejected` (an [`ErrorKind::JobFailed`] error carrying
//!   `info.error`), the deadline or cancellation.
//! - Bulk get is a [`Stream`](futures::Stream) of [`Item`]s, page by page, following the
//!   opaque page cursor until it is null.
//!
//! # Build from the environment
//!
//! ```no_run
//! # fn run() -> unicat_api::Result<()> {
//! // UNICAT_API_KEY, UNICAT_PROJECT, and optionally UNICAT_BASE_URL.
//! let client = unicat_api::Client::from_env()?;
//! # Ok(()) }
//! ```
//!
//! [`Client::builder`] sets the same (and the poll policy, [`Client::default_poll_policy`],
//! and the HTTP options, [`Client::default_http_options`]) in code.
//!
//! # Submit
//!
//! ```no_run
//! use unicat_api::{Children, Filter, RecordSelection, Search};
//! # async fn run(client: unicat_api::Client) -> unicat_api::Result<()> {
//! let selection = RecordSelection::new()
//!     .children(Children::of("r-discontinued").exclude(["r-keep"]))
//!     .search(Search::new().q("obsolete").filter(Filter::new("definition", "is", "d-article")));
//! let job = client.records().delete(&selection).await?;
//! println!("job {} (feed cursor {})", job.token(), job.cursor());
//! # Ok(()) }
//! ```
//!
//! # Wait with progress
//!
//! ```no_run
//! # async fn run(client: unicat_api::Client, job: unicat_api::JobHandle) -> unicat_api::Result<()> {
//! let report = client
//!     .wait(&job)
//!     .on_progress(|e| eprintln!("{:?} left", e.progress.remaining))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Client::wait`] returns a [`JobWait`]: set `.policy(..)`, `.cancel_on(..)` or a whole
//! [`WaitOptions`] before awaiting it. [`Client::watch`] gives the job as an owned
//! [`poll::Job`](bulk_common::poll::Job) instead.
//!
//! # Read the result
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use unicat_api::{Children, RecordSelection};
//! # async fn run(client: unicat_api::Client, report: unicat_api::JobReport) -> unicat_api::Result<()> {
//! println!("{} {}: {} items", report.job, report.status, report.total.unwrap_or(0));
//! // What is left under the folder, read back with a bulk get.
//! let left = RecordSelection::new().children(Children::of("r-discontinued"));
//! let mut records = client.records().get(&left).page_size(500).stream::<serde_json::Value>();
//! while let Some(record) = records.try_next().await? {
//!     println!("kept {}", record.gid);
//! }
//! # Ok(()) }
//! ```
//!
//! # Resume from a saved handle
//!
//! ```no_run
//! # async fn run(client: unicat_api::Client, job: unicat_api::JobHandle) -> Result<(), Box<dyn std::error::Error>> {
//! std::fs::write("job.json", serde_json::to_string(&job)?)?;
//! // ... later, in another process:
//! let saved: unicat_api::JobHandle = serde_json::from_str(&std::fs::read_to_string("job.json")?)?;
//! let report = client.wait(&saved).poll_immediately(true).await?;
//! # Ok(()) }
//! ```
//!
//! A resumed handle makes the feed reader go back to the cursor read before the job was
//! submitted, so a job that finished long ago is still found.
//!
//! Errors are [`bulk_common::Error`]s: a `success: false` reply carries `result.code` as
//! [`Error::vendor_code`] (read it as an [`ApiCode`]; 1006 is a bulk selection error),
//! `result.message` as [`Error::vendor_message`] and `result.info` as [`Error::details`].
//! Bulk mutations are never blindly re-sent after they may have reached the server: their job
//! is looked for in the sync feed, and only an empty feed lets them be sent again (see
//! [`RecordsApi::delete`]); bulk get and the feed reads are retried.
//!
//! # Every call and its source
//!
//! Sources: **seed 003** (`../shared/seeds/003_18abbd0c56901d52.txt`, sections named), the
//! **reference** pages under `docs.unicat.app/api/reference/`, and the official Python **SDK**
//! `unicat` 0.7.18 (file named). Every body and reply shape below is checked against the
//! documented examples (`tests/fixtures/`), and the SDK itself runs against the simulator in
//! `cargo xtask ci`.
//!
//! | Call | Auth | Body sent | Reply read | Source |
//! |---|---|---|---|---|
//! | `POST /api/p/{project}/auth` | none | `api_key` | the JWT in the reply's `Authorization` header (with or without `Bearer `); nothing from the body | reference `p/auth`; SDK `api.py` `connect`, `_call` |
//! | `POST /sync/cursors` | `Bearer <JWT>` | `{}` | `result["cc.cursor"]` | reference `sync` ("fetch the latest cc and current cursors"); SDK `api.py` `prepare_for_job` |
//! | `POST /api/p/{project}/{records,assets,schema}/bulk/get` | `Bearer <JWT>` | `selection`, `page.size`, `page.cursor` (absent on the first call, then echoed exactly), records also `language` / `languages` — flat dotted keys | `result.{records,assets,schema_items}`, `result["{list}.size"]`, `result["page.cursor"]` (null ends), `data.{records,assets,definitions,classes,fields}[gid]` | seed 003 "bulk get"; reference `p/records/bulk/get`, `p/assets/bulk/get`, `p/schema/bulk/get`; SDK `unicat.py` `walk_*_query` |
//! | `POST /api/p/{project}/records/bulk/{delete,undelete,permanent_delete}`, `assets/bulk/{delete,undelete}`, `schema/bulk/{copy,commit,revert,save_as_new}` | `Bearer <JWT>` | `selection` | `result["job.token"]` | seed 003 "The selection parameter", "The response"; reference per-endpoint pages |
//! | `POST …/records/bulk/duplicate` | `Bearer <JWT>` | `selection`, `ordering`? | `result["job.token"]` | reference `p/records/bulk/duplicate` |
//! | `POST …/records/bulk/{link,shallow_copy}` | `Bearer <JWT>` | `selection`, `parent`, `before_record`?, `ordering`? | `result["job.token"]` | reference `p/records/bulk/link`, `…/shallow_copy` |
//! | `POST …/assets/bulk/move` | `Bearer <JWT>` | `selection`, `parent` | `result["job.token"]` | reference `p/assets/bulk/move` |
//! | `POST /sync/get` | `Bearer <JWT>` | `cc_cursor` | `result.sync[]`: `type`, `cursor`, `data_type`, `data_key`, and for `type: cc`, `data_type: jobs`: `data.{job, status, info, project_gid}`; `result.warning` (more pending) | seed 003 (job report); reference `sync`; SDK `api.py` `_new_job_sync_events`, `track_job`, `sync` |
//! | any reply | — | — | a new JWT in `Authorization` is adopted; `success: false` → `result.{code, message, info}` | reference `p/auth` ("auto-refresh"), `errors`; SDK `api.py` `_call` |
//!
//! Where the sources are silent, what is assumed, and how a wrong assumption stays safe:
//!
//! - **Job names.** Seed 003 shows one job name, `bulk_delete_records` for a records bulk delete.
//!   The client assumes `bulk_{op}_{area}` for every operation, and uses the name only to find the
//!   job of a submission whose outcome is unknown: it takes a job as its own only when it is the
//!   one new job of the project in the feed since the cursor read before sending, with that name.
//!   A job under another name, or several jobs, end in `AmbiguousOutcome` listing the candidates
//!   (never a guess); the simulator's `JobNames::Varied` and `foreign_jobs` switches test both.
//! - **A job that never shows up.** After an unknown outcome, an empty feed for the settle time
//!   (default: the request timeout) is taken as "never arrived" and the request is sent again, at
//!   most [`MAX_SUBMISSIONS`] times in all. If the server published a job later than that, two jobs
//!   would run; for delete/undelete the second one finds its items already done and reports them
//!   as failed — a false failure, never a false success.
//! - **Errors in `info`.** Only `info.error` is documented (rejected jobs; the SDK also refuses a
//!   `done` job carrying it). `info` is "job-dependent", so `error`, `errors`, `failed` and
//!   `failures` are all read as errors when not empty: such a job is never reported `done`
//!   ([`ErrorKind::JobFailed`], with the listed items in the details).
//! - **Terminal states.** `done` and `rejected` are documented; any other status is waited on until
//!   the deadline (a typed [`ErrorKind::DeadlineExceeded`], never a success).
//! - **Feed order and progress.** Reports are kept per job by their `cursor`, so a reply listing
//!   items in another order does not roll a job back; `info.total` / `info.remaining` are optional.
//! - **The cursor.** "A tuple with selection index and some additional cursor value": treated as
//!   opaque JSON, echoed exactly, and only `null` (or absence) ends the stream — short or empty
//!   pages do not (reference `p/assets/bulk/get` note on invalid gids).
//! - **Rate limits.** A per-member `rate_limit_per_second` exists (reference `init`), its error is
//!   undocumented: 429 and 5xx are retried for reads (with `Retry-After`), never for mutations.
//!
//! # Workflows
//!
//! One runnable example per workflow, in `examples/` (against the simulator of
//! `cargo xtask sim`, or real credentials in `UNICAT_*`):
//!
//! | Workflow | Example |
//! |---|---|
//! | Bulk get: read a selection as JSON lines | `bulk_get -- selection.json --page-size 250` |
//! | Bulk delete: submit, wait with progress, exit 1 if rejected (and save the handle) | `bulk_delete -- selection.json [job.json]` |
//! | Resume a wait from a saved handle | `resume -- job.json` |

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
pub use bulk_common::poll::{JobWait, PollEvent, PollPolicy, Progress, WaitOptions};
pub use bulk_common::{CancellationToken, Error, ErrorKind, Result};
pub use bulk_common::{
    ExposeSecret, HttpOptions, HttpStats, Jitter, RetryEvent, RetryPolicy, SecretString,
};
pub use client::{
    AssetsApi, Client, ClientBuilder, ClientStats, DEFAULT_BASE_URL, MAX_SUBMISSIONS, Placement,
    RecordsApi, SchemaApi,
};
pub use get::{BulkGet, DEFAULT_PAGE_SIZE, Item, ItemStream, MAX_PAGE_SIZE};
pub use job::{JobHandle, JobReport, JobStatus, JobWatch};
pub use model::{ApiCode, Gid, JobToken};
pub use selection::{
    AssetSelection, Children, Filter, RecordSelection, SchemaSelection, Search, Selection,
};
