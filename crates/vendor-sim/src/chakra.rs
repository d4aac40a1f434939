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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

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

    fn advance_all(&self, inner: &mut Inner) {
        let ids: Vec<String> = inner
            .jobs
            .iter()
            .filter(|(_, j)| j.completed_ms == 0)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.advance(inner, &id);
        }
    }

    /// Processes the job's entries that are due.
    fn advance(&self, inner: &mut Inner, job_id: &str) {
        let now = Instant::now();
        let now_ms = self.now_ms();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return;
        };
        let Some(proc) = inner.procedures.get_mut(&job.procedure) else {
            return;
        };
        let mut applied = 0;
        if self.cfg.quirks.fail_jobs {
            let started = job.entries.first().is_none_or(|e| e.due <= now);
            if started && !job.failed {
                job.failed = true;
                job.completed_ms = now_ms;
            }
            return;
        }
        let limit = self
            .cfg
            .quirks
            .stall_after
            .map_or(job.entries.len(), |n| n.min(job.entries.len()));
        while job.cursor < limit {
            let entry = &mut job.entries[job.cursor];
            if entry.status == "NOT_STARTED" {
                if entry.due > now {
                    break;
                }
                match apply(proc, &entry.payload, now_ms) {
                    Ok(()) => {
                        entry.status = "SUCCESS";
                        applied += 1;
                    }
                    Err(msg) => {
                        entry.status = "ERROR";
                        entry.message = Some(msg);
                    }
                }
            }
            job.cursor += 1;
        }
        if job.cursor == job.entries.len() && job.completed_ms == 0 {
            job.completed_ms = now_ms;
        }
        self.ctx.counters.add("chakra.items.applied", applied);
    }
}

/// Applies one validated item to its process.
fn apply(proc: &mut SimProcedure, item: &Value, now_ms: i64) -> Result<(), String> {
    let obj = item.as_object().ok_or("not an object")?;
    let (key, value) = obj
        .iter()
        .find(|(k, _)| k.as_str() != "update")
        .ok_or("no identifier")?;
    let id = if key == "id" {
        value.as_str().unwrap_or_default().to_owned()
    } else {
        let pk = pk_text(value).unwrap_or_default();
        match proc.by_pk.get(&pk) {
            Some(id) => id.clone(),
            None => return Err(format!("no process with {key} = {pk}")),
        }
    };
    let Some(process) = proc.processes.get_mut(&id) else {
        return Err(format!("no process with id {id}"));
    };
    let update = &obj["update"];
    if let Some(data) = update.get("data").and_then(Value::as_object) {
        if let Some(v) = data.get(&proc.spec.primary_key) {
            let old = process["data"]
                .get(&proc.spec.primary_key)
                .and_then(pk_text);
            let new = pk_text(v).ok_or("primary key must be a string or number")?;
            if old.as_deref() != Some(new.as_str()) {
                if proc.by_pk.contains_key(&new) {
                    return Err(format!(
                        "another process already has {} = {new}",
                        proc.spec.primary_key
                    ));
                }
                if let Some(old) = old {
                    proc.by_pk.remove(&old);
                }
                proc.by_pk.insert(new, id.clone());
            }
        }
        let target = &mut process["data"];
        for (k, v) in data {
            target[k] = v.clone();
        }
    }
    for key in ["state", "status", "assignedTo", "isDeleted"] {
        if let Some(v) = update.get(key) {
            process[key] = v.clone();
        }
    }
    if let Some(v) = update.get("nextActionAt") {
        let ms = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        process["nextActionAt"] = json!(ms);
    }
    process["updatedAt"] = json!(now_ms);
    *proc.applied.entry(id).or_default() += 1;
    Ok(())
}

/// Checks one item; the error becomes an INVALID entry.
fn check_item(spec: &ProcedureSpec, item: &Value) -> Result<(), String> {
    let obj = item.as_object().ok_or("an item must be an object")?;
    let idents: Vec<&String> = obj.keys().filter(|k| k.as_str() != "update").collect();
    match idents.as_slice() {
        [] => return Err("an identifier is required (id or the primary-key attribute)".into()),
        [k] if k.as_str() == "id" || **k == spec.primary_key => {
            let v = &obj[k.as_str()];
            if pk_text(v).is_none_or(|s| s.is_empty()) {
                return Err(format!("{k} must be a non-empty string or number"));
            }
        }
        [k] => {
            return Err(format!(
                "{k} is not an identifier (use id or {})",
                spec.primary_key
            ));
        }
        _ => return Err("exactly one identifier is allowed".into()),
    }
    let update = obj
        .get("update")
        .and_then(Value::as_object)
        .ok_or("update is required")?;
    if update.is_empty() {
        return Err("update is empty".into());
    }
    for (k, v) in update {
        match k.as_str() {
            "data" => {
                let data = v.as_object().ok_or("data must be an object")?;
                if !spec.attributes.is_empty() {
                    for key in data.keys() {
                        if *key != spec.primary_key && !spec.attributes.contains(key) {
                            return Err(format!("unknown attribute {key}"));
                        }
                    }
                }
            }
            "state" => {
                let s = v.as_str().unwrap_or_default();
                if !spec.states.iter().any(|x| x == s) {
                    return Err(format!("unknown state {v}"));
                }
            }
            "status" => {
                if !matches!(v.as_str(), Some("OPEN" | "COMPLETED" | "CANCELLED")) {
                    return Err(format!("invalid status {v}"));
                }
            }
            "assignedTo" => {
                let s = v.as_str().unwrap_or_default();
                if !spec.users.iter().any(|x| x == s) {
                    return Err(format!("unknown user {v}"));
                }
            }
            "nextActionAt" => {
                let ok =
                    v.as_i64().is_some() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                if !ok {
                    return Err(format!("nextActionAt must be epoch milliseconds, got {v}"));
                }
            }
            "isDeleted" => {
                if !v.is_boolean() {
                    return Err("isDeleted must be a boolean".into());
                }
            }
            other => return Err(format!("unknown field {other}")),
        }
    }
    Ok(())
}

type St = State<Arc<ChakraState>>;

fn bad_request(message: &str) -> Response {
    envelope_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// The fields seed 002 lists under `update`, with the JSON type each takes.
const UPDATE_FIELDS: [&str; 6] = [
    "data",
    "state",
    "status",
    "assignedTo",
    "nextActionAt",
    "isDeleted",
];

/// Checks an item's shape (not its meaning): an object whose `update` is an object of known
/// fields of the right types. A failure refuses the whole request with HTTP 400.
fn check_shape(item: &Value) -> Result<(), String> {
    let obj = item.as_object().ok_or("an item must be an object")?;
    let update = match obj.get("update") {
        Some(Value::Object(u)) => u,
        Some(_) => return Err("`update` must be an object".into()),
        None => return Err("`update` is required".into()),
    };
    for (k, v) in update {
        let ok = match k.as_str() {
            "data" => v.is_object(),
            "state" | "status" | "assignedTo" => v.is_string(),
            "nextActionAt" => v.is_i64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
            "isDeleted" => v.is_boolean(),
            _ => {
                return Err(format!(
                    "unknown field `update.{k}` (expected one of {})",
                    UPDATE_FIELDS.join(", ")
                ));
            }
        };
        if !ok {
            return Err(format!("`update.{k}` has the wrong type: {v}"));
        }
    }
    Ok(())
}

/// A fixed shuffle of `order` for job number `seed` (xorshift; repeatable).
fn shuffle(order: &mut [usize], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

fn envelope_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "_data": null, "_meta": {}, "_errors": [{ "code": code, "message": message }] })),
    )
        .into_response()
}

fn ok(data: Value, meta: Value) -> Response {
    Json(json!({ "_data": data, "_meta": meta, "_errors": [] })).into_response()
}

fn check_auth(st: &ChakraState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (given != Some(st.cfg.token.as_str())).then(|| {
        envelope_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or invalid access token",
        )
    })
}

/// The procedure's shortId for a path key that is its UUID or shortId.
fn resolve_proc(inner: &Inner, key: &str) -> Option<String> {
    if inner.procedures.contains_key(key) {
        return Some(key.to_owned());
    }
    inner.proc_ids.get(key).cloned()
}

async fn bulk_update(
    State(st): St,
    Path(proc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => body,
        _ => return bad_request("the body must be a JSON object"),
    };
    if let Some(k) = body.keys().find(|k| k.as_str() != "processes") {
        return bad_request(&format!("unknown field `{k}` (expected only `processes`)"));
    }
    let items = match body.get("processes") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        Some(Value::Array(_)) => return bad_request("`processes` is empty"),
        Some(_) => return bad_request("`processes` must be an array"),
        None => return bad_request("`processes` is required"),
    };
    for (i, item) in items.iter().enumerate() {
        if let Err(msg) = check_shape(item) {
            return bad_request(&format!("processes[{i}]: {msg}"));
        }
    }
    if items.len() > st.cfg.max_items_per_request {
        return envelope_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!(
                "at most {} processes per request, got {}",
                st.cfg.max_items_per_request,
                items.len()
            ),
        );
    }
    let received = items.len() as u64;
    let now = Instant::now();
    let now_ms = st.now_ms();
    let (short, spec) = {
        let inner = st.lock();
        let Some(short) = resolve_proc(&inner, &proc) else {
            return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such procedure");
        };
        let spec = inner.procedures[&short].spec.clone();
        (short, spec)
    };
    // Validation happens outside the lock, so other requests are not held up by it.
    let mut due = now + st.cfg.start_delay;
    let entries: Vec<SimEntry> = items
        .into_iter()
        .map(|item| match check_item(&spec, &item) {
            Ok(()) => {
                due += st.cfg.item_time;
                SimEntry {
                    status: "NOT_STARTED",
                    message: None,
                    payload: item,
                    due,
                }
            }
            Err(msg) => SimEntry {
                status: "INVALID",
                message: Some(msg),
                payload: item,
                due: now,
            },
        })
        .collect();
    let mut inner = st.lock();
    inner.next += 1;
    let id = uuid_like(0x0b0b, inner.next);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    if st.cfg.quirks.shuffled_entries {
        shuffle(&mut order, inner.next);
    }
    inner.jobs.insert(
        id.clone(),
        SimJob {
            procedure: short,
            created_ms: now_ms,
            completed_ms: 0,
            entries,
            cursor: 0,
            order,
            failed: false,
        },
    );
    st.ctx.counters.incr("chakra.jobs.created");
    st.ctx.counters.add("chakra.items.received", received);
    ok(
        json!({
            "id": id, "createdAt": now_ms, "updatedAt": now_ms, "startedAt": now_ms,
            "completedAt": 0, "completionStatus": "IN_PROGRESS", "statusMessage": null,
            "team": uuid_like(0x7ea3, 1), "type": uuid_like(0x7e9e, 1),
        }),
        json!({}),
    )
}

async fn get_job(State(st): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let mut inner = st.lock();
    st.advance(&mut inner, &id);
    let Some(job) = inner.jobs.get(&id) else {
        return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such background job");
    };
    let mut counts: BTreeMap<&str, u64> = [
        ("INVALID", 0),
        ("NOT_STARTED", 0),
        ("SUCCESS", 0),
        ("ERROR", 0),
    ]
    .into();
    for e in &job.entries {
        *counts.entry(e.status).or_default() += 1;
    }
    let done = job.completed_ms != 0;
    let status = match (job.failed, done) {
        (true, _) => "FAILED",
        (false, true) => "COMPLETED",
        (false, false) => "IN_PROGRESS",
    };
    let mut data = json!({
        "id": id, "createdAt": job.created_ms, "updatedAt": st.now_ms(),
        "startedAt": job.created_ms, "completedAt": job.completed_ms,
        "completionStatus": status,
        "statusMessage": job.failed.then_some("the background job failed"),
        "team": uuid_like(0x7ea3, 1), "type": "bulk_api_job",
    });
    if st.cfg.quirks.conflicting_status {
        data["status"] = json!(if done { "IN_PROGRESS" } else { "COMPLETED" });
    }
    ok(data, json!({ "bjEntryCompletionStatusVsCount": counts }))
}

#[derive(Deserialize)]
struct PageQuery {
    skip: Option<usize>,
    limit: Option<usize>,
}

async fn get_entries(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let mut inner = st.lock();
    st.advance(&mut inner, &id);
    let Some(job) = inner.jobs.get(&id) else {
        return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such background job");
    };
    let skip = q.skip.unwrap_or(0);
    let limit = q.limit.unwrap_or(st.cfg.entries_page).clamp(1, 100);
    let end = (skip + limit).min(job.entries.len());
    let quirks = &st.cfg.quirks;
    let data: Vec<Value> = job
        .order
        .get(skip..end)
        .unwrap_or_default()
        .iter()
        .map(|&i| {
            let e = &job.entries[i];
            // `completionStatus` is the name the docs give the entry statuses
            // ("grouped by their completion status").
            let mut entry = json!({
                "id": uuid_like(0xe417, i as u64), "completionStatus": e.status,
                "statusMessage": e.message,
            });
            if !quirks.entries_without_index {
                entry["index"] = json!(i);
            }
            if !quirks.entries_without_payload {
                entry["payload"] = e.payload.clone();
            }
            if quirks.conflicting_status {
                entry["status"] = json!(if e.status == "SUCCESS" {
                    "ERROR"
                } else {
                    "SUCCESS"
                });
            }
            entry
        })
        .collect();
    let next = (end < job.entries.len())
        .then(|| format!("/v1/ext/background-job/{id}/entries?skip={end}&limit={limit}"));
    ok(
        json!(data),
        json!({ "total": job.entries.len(), "nextPage": next }),
    )
}

async fn get_process(
    State(st): St,
    Path((proc, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let mut inner = st.lock();
    st.advance_all(&mut inner);
    let process = resolve_proc(&inner, &proc)
        .and_then(|s| inner.procedures.get(&s))
        .and_then(|p| p.processes.get(&id));
    match process {
        Some(p) => ok(p.clone(), json!({})),
        None => envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such process"),
    }
}

async fn list(
    State(st): St,
    Path(proc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => body,
        _ => return bad_request("the body must be a JSON object"),
    };
    if let Some(k) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "where" | "skip" | "limit"))
    {
        return bad_request(&format!(
            "unknown field `{k}` (expected `where`, `skip`, `limit`)"
        ));
    }
    let number = |key: &str, default: u64| match body.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    };
    let (skip, limit) = match (number("skip", 0), number("limit", 10)) {
        (Ok(s), Ok(l)) => (s as usize, l as usize),
        (Err(m), _) | (_, Err(m)) => return bad_request(&m),
    };
    if body.get("where").is_some_and(|w| !w.is_object()) {
        return bad_request("`where` must be an object");
    }
    if limit == 0 || limit > 100 {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "limit must be 1 to 100",
        );
    }
    let query = body.get("where").cloned().unwrap_or_else(|| json!({}));
    let mut inner = st.lock();
    st.advance_all(&mut inner);
    let Some(p) = resolve_proc(&inner, &proc).and_then(|s| inner.procedures.get(&s)) else {
        return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such procedure");
    };
    let mut matching = p
        .processes
        .values()
        .filter(|p| p["isDeleted"] != json!(true) && matches(p, &query));
    let page: Vec<Value> = matching.by_ref().skip(skip).take(limit).cloned().collect();
    let has_more = matching.next().is_some();
    ok(json!(page), json!({ "hasMore": has_more }))
}

/// Evaluates a list `where` query against a process.
fn matches(process: &Value, query: &Value) -> bool {
    let Some(q) = query.as_object() else {
        return true;
    };
    q.iter().all(|(key, rhs)| match key.as_str() {
        "or" => rhs
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| matches(process, q))),
        "and" => rhs
            .as_array()
            .is_none_or(|qs| qs.iter().all(|q| matches(process, q))),
        _ => {
            let value = match key.as_str() {
                "status" | "state" | "assignedTo" | "createdAt" | "id" => process.get(key),
                _ => process["data"].get(key),
            };
            let value = value.unwrap_or(&Value::Null);
            compare_rhs(value, rhs)
        }
    })
}

fn compare_rhs(value: &Value, rhs: &Value) -> bool {
    match rhs {
        Value::Array(options) => options.iter().any(|o| o == value),
        Value::Object(ops) => ops.iter().all(|(op, v)| {
            let ord = match (value.as_f64(), v.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => match (value.as_str(), v.as_str()) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
            };
            use std::cmp::Ordering::*;
            match op.as_str() {
                "=" => value == v,
                "!=" => value != v,
                ">" => ord == Some(Greater),
                ">=" => matches!(ord, Some(Greater | Equal)),
                "<" => ord == Some(Less),
                "<=" => matches!(ord, Some(Less | Equal)),
                _ => false,
            }
        }),
        other => value == other,
    }
}
