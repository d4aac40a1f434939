//! A simulator of the Zefort contract-management API (the routes `zefort-api` uses).
//!
//! | Route | Behaviour |
//! |---|---|
//! | `GET /api/contracts/` | paged list (`page`, `page_size`), filters `q`, `q_tags`, `tags`, `status`; other documented search parameters accepted |
//! | `POST /api/contracts/bulk_update/` | validates, creates a task (201); counter `tasks.created` |
//! | `GET /api/tasks/` | paged list of tasks, newest first (see [`TaskOrder`]) |
//! | `GET /api/tasks/{id}/` | one task; `backend_status` turns `done` (or `error`) after the task's run time |
//! | `PATCH /api/tasks/{id}/` | `{"frontend_status": "done"}`; counter `tasks.acknowledged` |
//! | `GET /api/tags/`, `POST /api/tags/` | list and create tags |
//! | `POST /api/tags/{id}/contracts/` | attach a tag by `contracts` or `search`; creates a task |
//!
//! Every route requires HTTP Basic with the configured API key as user and an empty password, and
//! every path ends with `/` (a path without it is a 404, as Django routing gives). Tasks run over
//! Tokio time (virtual in paused tests): a task changes the contracts when it finishes, so tests
//! can read the attributes back through [`Zefort`].
//!
//! # Strict about what it accepts
//!
//! Shapes come from Zefort's public docs (developers.zefort.com/docs: bulk operations, tags,
//! the API reference's contract list parameters) and the seed, never from `zefort-api`. A body
//! with a key the docs do not show for that call, a value of the wrong type, or a missing
//! required field is refused with a 400 in Django REST framework's shape: `{"field":
//! ["message"]}`, `{"non_field_errors": [..]}` or `{"detail": ".."}`; so is a query parameter
//! the docs do not list. The real server, a DRF application, may well ignore an unknown key or
//! parameter and carry on; that is exactly why the simulator must not: a misspelt or misplaced
//! field then fails a test instead of being silently dropped in production.
//!
//! # Switches for what the docs leave open
//!
//! The docs show one task and never the task list, nor a failed task. [`ZefortConfig`] varies
//! those behaviours so a client cannot lean on one guess: the list's order ([`TaskOrder`]), its
//! paging (a smaller page-size cap, `page_size` ignored), other users' tasks in the list
//! ([`ForeignTasks`]), the values `backend_status` takes while running and on failure, an extra
//! conflicting `status` field, and the HTTP status of the bulk update's reply.

mod apply;
mod jobs;
mod routes;
mod selection;
mod session;
mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};
use crate::zefort::apply::bulk_update;
use crate::zefort::jobs::{get_task, list_tasks, patch_task};
use crate::zefort::routes::not_found;
use crate::zefort::selection::list_contracts;
use crate::zefort::tags::{attach_tag, create_tag, list_tags};

/// Settings of the Zefort simulator.
#[derive(Debug, Clone)]
pub struct ZefortConfig {
    /// The API key accepted as the basic-auth user.
    pub api_key: String,
    /// Run time of every task, before the per-contract part.
    pub task_base: Duration,
    /// Extra run time per targeted contract.
    pub task_per_contract: Duration,
    /// Page size when the request gives none.
    pub default_page_size: u64,
    /// The largest page size served (default 100).
    pub max_page_size: u64,
    /// Whether `page_size` is ignored (every page has `default_page_size` items).
    pub ignore_page_size: bool,
    /// The order of `GET /api/tasks/`.
    pub task_order: TaskOrder,
    /// Other users' tasks in the task list.
    pub foreign_tasks: ForeignTasks,
    /// The `backend_status` values a running task shows, one per look in turn (default
    /// `["pending"]`, the documented value).
    pub running_statuses: Vec<String>,
    /// The `backend_status` of a failed task (not documented; default `error`).
    pub failure_status: String,
    /// Whether tasks also carry a `status` field that contradicts `backend_status`.
    pub conflicting_status_field: bool,
    /// The HTTP status of a successful bulk update or tag attachment (default 201).
    pub create_status: u16,
}

impl Default for ZefortConfig {
    fn default() -> Self {
        ZefortConfig {
            api_key: "sim-zefort-key-not-real".into(),
            task_base: Duration::from_secs(1),
            task_per_contract: Duration::from_millis(20),
            default_page_size: 25,
            max_page_size: 100,
            ignore_page_size: false,
            task_order: TaskOrder::NewestFirst,
            foreign_tasks: ForeignTasks::None,
            running_statuses: vec!["pending".into()],
            failure_status: "error".into(),
            conflicting_status_field: false,
            create_status: 201,
        }
    }
}

/// The order of the task list, which the docs do not state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TaskOrder {
    /// Newest first (the default, like the web UI's task list).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
    /// A different order on every read (seeded, repeatable).
    Shuffled,
}

/// Tasks of other users of the account, listed with the API user's own (the docs do not say
/// whether the list is per user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForeignTasks {
    /// Only the API user's tasks.
    #[default]
    None,
    /// Each bulk update is preceded by another user's task with a different body.
    Different,
    /// Each bulk update is preceded by another user's task with the very same body (the same
    /// change, requested at the same moment by someone else).
    Identical,
}

/// The contract statuses the simulator accepts (the vendor's documented enum).
pub const CONTRACT_STATUSES: &[&str] = &[
    "archived",
    "done",
    "error",
    "limited",
    "processing",
    "queued",
    "review",
];

/// The search parameters the vendor documents (accepted in `search` objects).
pub const SEARCH_PARAMS: &[&str] = &[
    "q",
    "q_main_documents",
    "q_attachments",
    "q_parties",
    "q_notes",
    "q_tags",
    "q_emails",
    "tags",
    "owner",
    "binder",
    "recursive",
    "language",
    "num_files",
    "num_main_pages",
    "num_activities",
    "num_emails",
    "num_signed_documents",
    "receive_time",
    "activities_times",
    "pending_activities_times",
    "minimal",
    "status",
    "cover_document_docai_task_status",
    "esign_status",
    "sort",
];

/// Handle on the simulator's state: seed contracts, read them back, script task failures.
#[derive(Clone)]
pub struct Zefort {
    state: Arc<ZState>,
}

impl std::fmt::Debug for Zefort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zefort").finish_non_exhaustive()
    }
}

struct ZState {
    cfg: ZefortConfig,
    ctx: SimContext,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    contracts: BTreeMap<String, SimContract>,
    tags: BTreeMap<String, SimTag>,
    tasks: Vec<SimTask>,
    fail_next: Vec<String>,
    /// Reads of the task list so far (the shuffled order's seed).
    list_reads: u64,
}

/// A contract as the simulator stores it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimContract {
    /// `ct_…`
    pub id: String,
    /// Title.
    pub title: String,
    /// Contract status (`review`, `done`, …).
    pub status: String,
    /// Tag ids.
    pub tags: BTreeSet<String>,
    /// Metadata attributes (`end_date`, …).
    pub attributes: Map<String, Value>,
}

struct SimTag {
    id: String,
    name: String,
    active: bool,
}

enum Action {
    Update {
        attributes: Map<String, Value>,
        status: Option<String>,
    },
    Tag(String),
}

struct SimTask {
    id: String,
    created: Instant,
    run_time: Duration,
    body: Value,
    action: Action,
    targets: Vec<String>,
    fail: Option<String>,
    finished: bool,
    frontend_done: bool,
    /// Another user's task: listed, but it changes nothing this simulator tracks.
    foreign: bool,
    /// Looks at this task through `GET /api/tasks/{id}/` so far.
    looks: usize,
}

impl Zefort {
    /// A simulator with `cfg`, reporting to `ctx`'s counters.
    pub fn new(ctx: SimContext, cfg: ZefortConfig) -> Self {
        Zefort {
            state: Arc::new(ZState {
                cfg,
                ctx,
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/contracts/", get(list_contracts))
            .route("/api/contracts/bulk_update/", post(bulk_update))
            .route("/api/tasks/", get(list_tasks))
            .route("/api/tasks/{id}/", get(get_task).patch(patch_task))
            .route("/api/tags/", get(list_tags).post(create_tag))
            .route("/api/tags/{id}/contracts/", post(attach_tag))
            .fallback(not_found)
            .with_state(self.state.clone())
    }

    /// Adds a contract with `title` and tags named `tags` (created when new); returns its id.
    pub fn add_contract(&self, title: &str, tags: &[&str]) -> String {
        let mut inner = self.state.lock();
        let id = inner.new_id("ct");
        let tag_ids = tags.iter().map(|t| inner.tag_by_name(t)).collect();
        inner.contracts.insert(
            id.clone(),
            SimContract {
                id: id.clone(),
                title: title.to_owned(),
                status: "review".into(),
                tags: tag_ids,
                attributes: Map::new(),
            },
        );
        id
    }

    /// Seeds `n` contracts; every `every`-th one (the first included) is tagged `tag`.
    pub fn seed(&self, n: usize, tag: &str, every: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                if i % every.max(1) == 0 {
                    self.add_contract(&format!("Service agreement {i:04}"), &[tag])
                } else {
                    self.add_contract(&format!("Purchase order {i:04}"), &["purchasing"])
                }
            })
            .collect()
    }

    /// A contract as stored now (finished tasks applied).
    pub fn contract(&self, id: &str) -> Option<SimContract> {
        let mut inner = self.state.lock();
        inner.settle();
        inner.contracts.get(id).cloned()
    }

    /// Ids of the contracts carrying the tag named `tag`.
    pub fn contracts_tagged(&self, tag: &str) -> Vec<String> {
        let mut inner = self.state.lock();
        inner.settle();
        let Some(tag_id) = inner
            .tags
            .values()
            .find(|t| t.name == tag)
            .map(|t| t.id.clone())
        else {
            return Vec::new();
        };
        inner
            .contracts
            .values()
            .filter(|c| c.tags.contains(&tag_id))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Makes the next task created end with `backend_status: "error"` and this info text.
    pub fn fail_next_task(&self, info: &str) {
        self.state.lock().fail_next.push(info.to_owned());
    }

    /// Every task, oldest first, as the API shows it.
    pub fn tasks(&self) -> Vec<Value> {
        let mut inner = self.state.lock();
        inner.settle();
        inner
            .tasks
            .iter()
            .map(|t| t.to_json(&self.state.cfg))
            .collect()
    }

    /// Adds another user's finished task whose request body was `body` (an identical update
    /// made earlier by someone else, for instance). It changes no contract.
    pub fn add_foreign_task(&self, body: Value) -> String {
        let mut inner = self.state.lock();
        let id = inner.new_id("task");
        inner.tasks.push(SimTask {
            id: id.clone(),
            created: Instant::now(),
            run_time: Duration::ZERO,
            body,
            action: Action::Tag(String::new()),
            targets: Vec::new(),
            fail: None,
            finished: true,
            frontend_done: false,
            foreign: true,
            looks: 0,
        });
        id
    }
}

impl ZState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:08x}", 0x5eed_0000_u64 + self.next_id * 7919)
    }

    fn tag_by_name(&mut self, name: &str) -> String {
        if let Some(t) = self.tags.values().find(|t| t.name == name) {
            return t.id.clone();
        }
        let id = self.new_id("tag");
        self.tags.insert(
            id.clone(),
            SimTag {
                id: id.clone(),
                name: name.to_owned(),
                active: true,
            },
        );
        id
    }
}

/// Starts the Zefort simulator with `cfg`; returns the server and the handle on its state (the
/// same as `builder.serve::<Zefort>(cfg)`).
pub async fn start(builder: SimBuilder, cfg: ZefortConfig) -> std::io::Result<(SimHandle, Zefort)> {
    builder.serve::<Zefort>(cfg).await
}

impl Simulator for Zefort {
    type Config = ZefortConfig;

    fn build(ctx: SimContext, cfg: ZefortConfig) -> (Router, Self) {
        let sim = Zefort::new(ctx, cfg);
        (sim.router(), sim)
    }
}
