//! A typed async client for the [Zefort](https://zefort.com) contract-management API: bulk
//! updates and tagging of contracts, task polling and acknowledgement, and contract search.
//!
//! # Build from the environment
//!
//! [`Client::from_env`] reads `ZEFORT_API_KEY` and, optionally, `ZEFORT_BASE_URL` (`sandbox`,
//! `my`, `us` or a URL); [`Client::builder`] sets the same and more in code.
//!
//! ```no_run
//! use zefort_api::Client;
//! # fn run() -> zefort_api::Result<()> {
//! let client = Client::from_env()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! # Submit
//!
//! [`Client::bulk_update`] sends the update and returns the task it started. It is never re-sent
//! blindly: a lost reply is reconciled from the task list ("Reconciliation" below).
//!
//! ```no_run
//! use zefort_api::{BulkUpdate, Client, ContractQuery, ContractStatus, JobHandle, Target};
//! # async fn run(client: Client) -> zefort_api::Result<()> {
//! let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags("contracts of service")))
//!     .end_date("2023-02-15".parse()?)
//!     .status(ContractStatus::Done);
//! let task = client.bulk_update(&update).await?;
//! let handle = JobHandle::from(&task);
//! # let _ = handle; Ok(()) }
//! ```
//!
//! # Wait with progress
//!
//! [`Client::wait`] returns a [`JobWait`]: await it as it is, or set a policy (default
//! [`Client::default_poll_policy`]), a cancellation token or a progress observer first. When
//! the task is `done` the wait acknowledges it (`frontend_status = done`, so it leaves the web
//! UI's pending list); turn that off for a client ([`ClientBuilder::acknowledge_finished`]) or one
//! watch ([`JobWatch::acknowledge`]).
//!
//! ```no_run
//! # use zefort_api::{Client, JobHandle};
//! # async fn run(client: Client, handle: JobHandle) -> zefort_api::Result<()> {
//! let task = client
//!     .wait(&handle)
//!     .on_progress(|e| eprintln!("task {} is {:?} after {:?}", e.job, e.progress.status, e.elapsed))
//!     .await?;
//! # let _ = task; Ok(()) }
//! ```
//!
//! [`Client::run_bulk_update`] does both steps in one call, with [`WaitOptions`].
//!
//! # Read the result
//!
//! The finished [`Task`] says how it ended (`backend_status`, `backend_status_info`), whether it
//! was acknowledged (`frontend_status`) and what it did (`details.data` echoes the request). A
//! task that ends in any status other than `done` is an [`ErrorKind::JobFailed`] error instead,
//! whose [`vendor_message`](Error::vendor_message) is the task's `backend_status_info`. The
//! contracts themselves are read back with [`Client::search_contracts`], a lazy stream over
//! pages.
//!
//! ```no_run
//! # use futures::TryStreamExt;
//! # use zefort_api::{Client, ContractQuery, Task};
//! # async fn run(client: Client, task: Task) -> zefort_api::Result<()> {
//! println!("task {} is {} ({})", task.id, task.backend_status, task.frontend_status);
//! let query = ContractQuery::new().q_tags("contracts of service");
//! let mut contracts = std::pin::pin!(client.search_contracts(&query, Some(100)));
//! while let Some(contract) = contracts.try_next().await? {
//!     println!("{} {:?}", contract.id, contract.status);
//! }
//! # Ok(()) }
//! ```
//!
//! # Resume from a saved handle
//!
//! A [`JobHandle`] serializes (`{"task_id":"task_…"}`), so another process can wait for the
//! task; the wait's first look is immediate, since the task may have finished long ago.
//!
//! ```no_run
//! # use zefort_api::{Client, JobHandle};
//! # async fn run(client: Client, handle: JobHandle) -> Result<(), Box<dyn std::error::Error>> {
//! let saved = serde_json::to_string(&handle)?;
//! // ... later, in another process:
//! let resumed: JobHandle = serde_json::from_str(&saved)?;
//! let task = client.wait(&resumed).await?;
//! # let _ = task; Ok(()) }
//! ```
//!
//! # Every call and its source
//!
//! Sources: seed 000 (`../shared/seeds/000_fcff8919401f34a3.txt`, the project's primary
//! source, identical to developers.zefort.com/docs/bulk-operations/), the docs' tags page
//! (developers.zefort.com/docs/tags/), introduction (hosts, auth) and API reference (the
//! contract list's query parameters). Auth is the same for every call: HTTP Basic, the API key
//! as user and an empty password (introduction, "Authentication"); every path keeps its
//! trailing slash, as every documented example does. The documented examples are test fixtures
//! (`tests/fixtures/`, checked by `tests/fixtures.rs`).
//!
//! | Call | Body sent | Reply fields read | Source | Assumed where the docs are silent, and why it stays safe |
//! |---|---|---|---|---|
//! | `POST /api/contracts/bulk_update/` ([`Client::bulk_update`]) | `attributes` (object; `end_date` etc. as `YYYY-MM-DD`), `status` (value to set), and `search` (object of contract-list parameters) or `contracts` (ids) | the task: `id`, `backend_status`, `backend_status_info`, `frontend_status`, `description`, `details.data`, `details.query_params` | seed 000 §1 / bulk-operations §1 (request and reply) | `contracts` as a target is shown on the tag and binder pages and in a task's `details.data`, not in a bulk-update request. The reply's HTTP status is not shown: any 2xx is read as the task (the simulator varies 200/201/202). An unreadable or lost reply is reconciled (below), never re-sent blindly. |
//! | `GET /api/tasks/{id}/` ([`Client::task`], [`Client::wait`]) | none | `backend_status`, `backend_status_info`, `frontend_status`, `id` | seed 000 §2 / bulk-operations §2 | Only `pending` and `done` are documented. `pending` and running-sounding values (`queued`, `processing`, `running`, `started`, `in_progress`) keep waiting; `done` is success; any other value is a failure ([`ErrorKind::JobFailed`] carrying the value and `backend_status_info`), never a success, so a wrong guess costs an error, not a wrong result. Only `backend_status` is read: another status-like field is ignored. |
//! | `PATCH /api/tasks/{id}/` ([`Client::acknowledge_task`]) | `frontend_status: "done"` | the task | seed 000 §3 / bulk-operations §3 | Sent only after `done` (failed tasks stay visible to people). Setting it twice is harmless, so it is retried like a read; if it still fails, the finished task is returned with a warning, since the contracts are already changed. |
//! | `GET /api/tasks/?page=N&page_size=M` ([`Client::tasks_page`], reconciliation) | none | `count`, `next`, `results[].id`, `results[].details.data` | seed 000 ends with a bare mention of `/tasks/`; the envelope is the contract list's (API reference) | Not documented at all: order, paging, whose tasks it lists. Reconciliation uses it only in ways that fail safe (below); a bare JSON array is read as one page. |
//! | `GET /api/contracts/?…&page=N&page_size=M` ([`Client::search_contracts`], [`Client::contracts_page`]) | none | `next`, `results[].id`, `title`, `status`; other fields kept as JSON | API reference, "Trash > List" parameters (the contract list shares them) | The envelope (`count`, `next`, `previous`, `results`, …) is assumed; paging stops when `next` is null or missing, so an unexpected envelope ends the stream early with a decode error rather than looping. |
//! | `POST /api/tags/` ([`Client::create_tag`]) | `tag_name`, `active` | `id`, `tag_name`, `active`, `num_contracts` | tags §1 (request and reply) | — |
//! | `GET /api/tags/` ([`Client::tags`]) | none | `results[]` as tags, `next` | tags page mentions tags by id; list envelope as above | Same envelope assumption as the contract list. |
//! | `POST /api/tags/{id}/contracts/` ([`Client::tag_contracts`]) | `contracts` (ids) or `search` | a task if the reply is one, else the JSON as is ([`TagOutcome`]) | tags §2 (requests only; no reply printed) | Attaching a tag twice leaves the same result, so the request is retried like a read. |
//!
//! **Throttling (assumed).** The docs describe no rate-limit reply. The client acts only on HTTP
//! 429 and its `Retry-After` (RFC 9110: seconds or a date), never on a body; reads are retried,
//! and a bulk update is re-sent only after a 429, which means it was refused. The simulator's 429
//! body (a generic `{"error": "too_many_requests"}`) is an assumption that the client does not read.
//!
//! # Workflows
//!
//! Each runs against the simulator (`cargo xtask sim` prints the `ZEFORT_BASE_URL` and
//! `ZEFORT_API_KEY` to export) or against Zefort with real credentials.
//!
//! | Workflow | Calls | Example |
//! |---|---|---|
//! | Update contracts found by a search: new end date, reviewed | [`Client::search_contracts`], [`Client::bulk_update`], [`Client::wait`] (or [`Client::run_bulk_update`]) | `examples/update_contracts.rs` |
//! | Tag contracts (creating the tag if missing) | [`Client::tags`], [`Client::create_tag`], [`Client::tag_contracts`], [`Client::wait`] | `examples/tag_contracts.rs` |
//! | Resume waiting for a task another process started | [`Client::wait`] on a deserialized [`JobHandle`] | `examples/resume_task.rs` |
//!
//! Also: [`Client::task`], [`Client::tasks`] / [`Client::tasks_page`] and
//! [`Client::acknowledge_task`] for tasks one by one, [`Client::watch`] for bulk-common's poll
//! driver, and [`Client::contracts_page`] for one page of a search. Authentication is HTTP
//! Basic with the API key as user and an empty password ([`ClientBuilder::api_key`]; the key is
//! a [`SecretString`] and never printed); hosts are [`Host`]s; vendor error bodies in Django
//! REST framework style (`{"detail": ..}`, `{"field": ["message"]}`) become the error's vendor
//! message and details, and a 400 with field errors is [`ErrorKind::InvalidInput`].
//!
//! # Reconciliation
//!
//! A bulk update is not idempotent, so it is never re-sent blindly: after a throttle (429) it is
//! retried, but if the connection breaks after the request was sent, the reply times out, the
//! server answers 5xx, or its success reply cannot be read, the outcome is unknown. [`Client::bulk_update`] then reconciles, from the task list:
//!
//! 1. Before sending, it reads the most recent tasks (`GET /api/tasks/`, up to
//!    [`ClientBuilder::reconcile_scan_limit`], 200 by default): the ids it sees, their order, the
//!    list's `count`, whether it reached the end, and which tasks already echo the same body in
//!    `details.data`.
//! 2. After an ambiguous outcome it reads the list again (and once more 2 s later, for a server
//!    still busy with the request). Exactly one task that echoes the body (compared as JSON
//!    values) and was not there before is this submission's task: it is returned as if the reply
//!    had arrived. Two or more are a typed error: which one is ours cannot be told, so none is
//!    adopted.
//! 3. If none echoes the body and every task created since step 1 was seen (the list was read to
//!    its end, or the new ids seen account for all of `count`'s growth), nothing was created:
//!    the update is submitted again, after a fresh step 1. Each resubmission needs its own proof,
//!    and there are at most [`ClientBuilder::max_resubmissions`] (2 by default; turn it off with
//!    [`ClientBuilder::resubmit_if_absent`]).
//! 4. Otherwise the [`ErrorKind::AmbiguousOutcome`] error is returned, saying why the outcome
//!    could not be settled.
//!
//! What this assumes about the task list, which the docs never show, and what happens if the
//! assumption is wrong:
//!
//! - **The task echoes the request body in `details.data`** (documented). If the server
//!   normalised the echo, no task would match: the request would look absent and be sent again,
//!   at most twice more. A bulk update sets values, so a repeat changes nothing more; the cost is
//!   an extra task.
//! - **The list's order.** Newest first is expected. If the list is longer than the scan window,
//!   a task new to the window counts as new only when both reads keep one order (the tasks they
//!   share in the same order, new ones at one end); a shuffled list gives a typed error, and an
//!   oldest-first list hides the new task, which is an error too (the list grew by tasks not
//!   seen), never a duplicate.
//! - **Paging.** `page_size` may be ignored or capped: the scan follows `next` whatever the page
//!   size. A list without `count` that is longer than the window cannot prove absence: an error.
//! - **Tasks are not deleted from the list, and it lists a task as soon as the request returns.**
//!   If not, a proof of absence may be wrong, leading to one more submission of the same update
//!   (same data, an extra task).
//! - **Other users' tasks.** If the list shows them, older identical ones are ignored (they were
//!   there before), and one sent at the same moment as ours makes two candidates: an error. The
//!   one case the rule cannot tell apart: our request created nothing and, within the same
//!   seconds, someone else sent a byte-identical update; that task would be taken for ours. It
//!   makes the very same change, so the contracts end right, but the task waited for and
//!   acknowledged is theirs.
//!
//! The snapshot costs one extra `GET /api/tasks/` per bulk update (three rounds of the retry
//! policy at most); if it cannot be read, the update is still sent, but an ambiguous outcome is
//! then returned unreconciled. Disable the whole rule with [`ClientBuilder::reconcile`]`(false)`.
//!
//! # Errors
//!
//! Every operation returns [`Result`], whose [`Error`] is bulk-common's opaque error; ask it
//! [`Error::kind`], [`Error::status`], [`Error::vendor_message`] or [`Error::details`].

mod client;
mod job;
mod model;
#[cfg(test)]
mod proptests;
mod reconcile;

/// The shared runtime this crate is built on, for the rarer types not re-exported below.
pub use bulk_common;
pub use bulk_common::poll::{JobWait, PollEvent, PollPolicy, Progress, WaitOptions};
pub use bulk_common::{CancellationToken, Error, ErrorKind, Result};
pub use bulk_common::{
    ExposeSecret, HttpOptions, HttpStats, Jitter, RetryEvent, RetryPolicy, SecretString,
};
pub use client::{Client, ClientBuilder, Host};
pub use job::{BackendStatus, JobHandle, JobWatch};
pub use model::{
    BulkUpdate, Contract, ContractAttributes, ContractId, ContractQuery, ContractStatus, Date,
    EsignStatus, FrontendStatus, Page, Tag, TagId, TagOutcome, Target, Task, TaskDetails, TaskId,
};
