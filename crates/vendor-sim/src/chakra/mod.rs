//! A ChakraHQ simulator: procedures with a primary-key attribute, a process store, the bulk
//! PATCH with a per-request item cap and per-item validation, background jobs whose entries are
//! processed over (Tokio) time, entry paging by a next-page path, and process reads.
//!
//! | Route | Behaviour |
//! |---|---|
//! | `PATCH /v1/ext/procedure/{proc}/process` | `{"processes": [..]}` → job ack; 413 above the cap |
//! | `GET /v1/ext/background-job/{id}` | job, `_meta.bjEntryCompletionStatusVsCount` |
//! | `GET /v1/ext/background-job/{id}/entries?skip=&limit=` | entries, `_meta.nextPage` |
//! | `GET /v1/ext/procedure/{proc}/process/{id}` | one process |
//! | `POST /v1/ext/procedure/{proc}/process/list` | `{where, skip, limit ≤ 100}`, `_meta.hasMore` |
//!
//! Every reply uses the `{_data, _meta, _errors}` envelope (seed 002, docs.chakrahq.com
//! "Response format"); errors are `_errors: [{"code", "message"}]` (the item shape is not
//! documented: the client reads it leniently). Every route wants `Authorization: Bearer <token>`.
//! Counters: `chakra.jobs.created`, `chakra.items.received`, `chakra.items.applied`.
//!
//! # Strict about what it accepts
//! A request body with an unknown key, a value of the wrong type, or a missing required field
//! gets HTTP 400 with `_errors: [{"code": "VALIDATION_ERROR", "message"}]`, naming the field:
//! on the bulk PATCH the top level (`processes` only), each item's shape and its `update`
//! object (`data`, `state`, `status`, `assignedTo`, `nextActionAt`, `isDeleted`, as seed 002
//! lists them); on the list endpoint `where`, `skip` and `limit`. A real server may well
//! ignore a field it does not know, and that is exactly why the simulator must not: a
//! misspelt or misplaced field would otherwise pass every test here and be silently dropped
//! in production. What the docs describe as per-entry problems (an unknown state or user, no
//! identifier, no such process) stay per-entry `INVALID` / `ERROR` results of the job.
//!
//! # Switches for what the docs leave open
//! The entries' fields and order are not documented, nor are the job's terminal statuses.
//! [`ChakraConfig::quirks`] varies them so that a client cannot lean on a guess: entries
//! without `index` or without the echoed item, entries in shuffled order, an extra `status`
//! field that contradicts the documented `completionStatus`, jobs whose counts stop moving, and
//! jobs that the vendor fails outright.

mod apply;
mod jobs;
mod routes;
mod selection;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::chakra::jobs::{bulk_update, get_entries, get_job};
use crate::chakra::selection::{get_process, list};
use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};

/// A made-up epoch (ms) for the simulator's clock: timestamps are this plus Tokio time elapsed.
const EPOCH_MS: i64 = 1_764_000_000_000;

/// Settings of the ChakraHQ simulator.
#[derive(Debug, Clone)]
pub struct ChakraConfig {
    /// The bearer token every route accepts.
    pub token: String,
    /// The most items one bulk PATCH may carry; more gives HTTP 413.
    pub max_items_per_request: usize,
    /// Delay before a job starts processing entries.
    pub start_delay: Duration,
    /// Processing time per entry (entries are processed one after another).
    pub item_time: Duration,
    /// Entries per page of `/entries` when the client asks for none.
    pub entries_page: usize,
    /// Behaviour where the docs are silent (all off by default).
    pub quirks: ChakraQuirks,
}

/// Variations of what the docs leave open, to test that a client does not rely on a guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChakraQuirks {
    /// Entries carry no `index` field.
    pub entries_without_index: bool,
    /// Entries do not echo the submitted item (`payload`).
    pub entries_without_payload: bool,
    /// Entries are listed in a shuffled order (fixed per job), not in request order.
    pub shuffled_entries: bool,
    /// Entries and jobs carry an extra `status` field that contradicts `completionStatus`.
    pub conflicting_status: bool,
    /// Each job processes this many entries, then its counts stop moving for good.
    pub stall_after: Option<usize>,
    /// Every job is failed outright by the vendor once it starts: `completionStatus`
    /// `FAILED`, a `statusMessage`, nothing applied.
    pub fail_jobs: bool,
}

impl Default for ChakraConfig {
    fn default() -> Self {
        ChakraConfig {
            token: "sim-chakra-token".into(),
            max_items_per_request: 1000,
            start_delay: Duration::from_millis(100),
            item_time: Duration::from_millis(1),
            entries_page: 100,
            quirks: ChakraQuirks::default(),
        }
    }
}

/// A procedure to create in the simulator.
#[derive(Debug, Clone)]
pub struct ProcedureSpec {
    /// The shortId (`lead`).
    pub short_id: String,
    /// The primary-key attribute's shortId (`lead_id`).
    pub primary_key: String,
    /// Valid state shortIds.
    pub states: Vec<String>,
    /// Valid assignee usernames.
    pub users: Vec<String>,
    /// Valid attribute shortIds besides the primary key (empty: any attribute is accepted).
    pub attributes: Vec<String>,
}

impl ProcedureSpec {
    /// A procedure with a few states and users and any attributes.
    pub fn new(short_id: &str, primary_key: &str) -> Self {
        ProcedureSpec {
            short_id: short_id.into(),
            primary_key: primary_key.into(),
            states: ["NEW", "IN_PROGRESS", "QUALIFIED", "DONE"]
                .map(String::from)
                .to_vec(),
            users: ["asha", "ravi", "meera"].map(String::from).to_vec(),
            attributes: Vec::new(),
        }
    }
}

/// Handle on the simulator's state: seed procedures and processes, read them back.
#[derive(Clone)]
pub struct Chakra {
    state: Arc<ChakraState>,
}

impl std::fmt::Debug for Chakra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chakra").finish_non_exhaustive()
    }
}

struct ChakraState {
    cfg: ChakraConfig,
    ctx: SimContext,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    procedures: HashMap<String, SimProcedure>,
    /// Procedure UUID → shortId.
    proc_ids: HashMap<String, String>,
    jobs: HashMap<String, SimJob>,
    next: u64,
}

struct SimProcedure {
    id: String,
    spec: ProcedureSpec,
    /// Processes by id (ids sort in creation order).
    processes: BTreeMap<String, Value>,
    /// Primary-key value (as text) → process id.
    by_pk: HashMap<String, String>,
    /// How many times a bulk entry was applied to each process.
    applied: HashMap<String, u32>,
}

struct SimJob {
    procedure: String,
    created_ms: i64,
    completed_ms: i64,
    entries: Vec<SimEntry>,
    /// Entries before this index are no longer NOT_STARTED.
    cursor: usize,
    /// The order in which `/entries` lists the entries.
    order: Vec<usize>,
    /// `FAILED` when the vendor failed the job outright.
    failed: bool,
}

struct SimEntry {
    status: &'static str,
    message: Option<String>,
    payload: Value,
    due: Instant,
}

fn uuid_like(kind: u64, n: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn pk_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Chakra {
    /// A simulator with `cfg`, reporting to `ctx`'s counters.
    pub fn new(ctx: SimContext, cfg: ChakraConfig) -> Self {
        Chakra {
            state: Arc::new(ChakraState {
                cfg,
                ctx,
                epoch: Instant::now(),
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/ext/procedure/{proc}/process", patch(bulk_update))
            .route("/v1/ext/procedure/{proc}/process/list", post(list))
            .route("/v1/ext/procedure/{proc}/process/{id}", get(get_process))
            .route("/v1/ext/background-job/{id}", get(get_job))
            .route("/v1/ext/background-job/{id}/entries", get(get_entries))
            .with_state(self.state.clone())
    }

    /// Creates a procedure; returns its UUID.
    pub fn add_procedure(&self, spec: ProcedureSpec) -> String {
        let mut inner = self.state.lock();
        inner.next += 1;
        let id = uuid_like(0xc0de, inner.next);
        inner.proc_ids.insert(id.clone(), spec.short_id.clone());
        inner.procedures.insert(
            spec.short_id.clone(),
            SimProcedure {
                id: id.clone(),
                spec,
                processes: BTreeMap::new(),
                by_pk: HashMap::new(),
                applied: HashMap::new(),
            },
        );
        id
    }

    /// Creates a process with attribute values `data` (which must hold the primary key) in
    /// state `NEW`, status `OPEN`; returns its id, or `None` for an unknown procedure or a
    /// missing or duplicate primary key.
    pub fn add_process(&self, procedure: &str, data: Value) -> Option<String> {
        let now = self.state.now_ms();
        let mut inner = self.state.lock();
        inner.next += 1;
        let id = uuid_like(0x9e0c, inner.next);
        let p = inner.procedures.get_mut(procedure)?;
        let pk = pk_text(data.get(&p.spec.primary_key)?)?;
        if p.by_pk.contains_key(&pk) {
            return None;
        }
        p.by_pk.insert(pk, id.clone());
        let process = json!({
            "id": id, "procedure": p.id, "data": data, "state": "NEW", "status": "OPEN",
            "assignedTo": null, "nextActionAt": null, "isDeleted": false,
            "createdAt": now, "updatedAt": now,
        });
        p.processes.insert(id.clone(), process);
        Some(id)
    }

    /// A process by id, with pending job entries applied first.
    pub fn process(&self, procedure: &str, id: &str) -> Option<Value> {
        let mut inner = self.state.lock();
        self.state.advance_all(&mut inner);
        inner.procedures.get(procedure)?.processes.get(id).cloned()
    }

    /// A process by its primary-key value.
    pub fn process_by_key(&self, procedure: &str, value: &str) -> Option<Value> {
        let mut inner = self.state.lock();
        self.state.advance_all(&mut inner);
        let p = inner.procedures.get(procedure)?;
        p.processes.get(p.by_pk.get(value)?).cloned()
    }

    /// How many times bulk entries were applied to process `id`.
    pub fn times_applied(&self, procedure: &str, id: &str) -> u32 {
        let mut inner = self.state.lock();
        self.state.advance_all(&mut inner);
        inner
            .procedures
            .get(procedure)
            .and_then(|p| p.applied.get(id).copied())
            .unwrap_or(0)
    }

    /// Jobs created so far.
    pub fn jobs_created(&self) -> usize {
        self.state.lock().jobs.len()
    }

    /// Processes of `procedure` (deleted ones included).
    pub fn process_count(&self, procedure: &str) -> usize {
        self.state
            .lock()
            .procedures
            .get(procedure)
            .map_or(0, |p| p.processes.len())
    }
}

/// Starts the ChakraHQ simulator with `cfg`; returns the server and the handle on its state (the
/// same as `builder.serve::<Chakra>(cfg)`).
pub async fn start(builder: SimBuilder, cfg: ChakraConfig) -> std::io::Result<(SimHandle, Chakra)> {
    builder.serve::<Chakra>(cfg).await
}

impl Simulator for Chakra {
    type Config = ChakraConfig;

    fn build(ctx: SimContext, cfg: ChakraConfig) -> (Router, Self) {
        let sim = Chakra::new(ctx, cfg);
        (sim.router(), sim)
    }
}

impl ChakraState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> i64 {
        EPOCH_MS + i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(0)
    }
}
