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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};

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

/// Attributes whose values must be ISO dates.
const DATE_ATTRIBUTES: &[&str] = &["start_date", "end_date", "signed_date", "notice_date"];

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

    /// Checks HTTP Basic: the key as user, an empty password.
    fn authorized(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.cfg.api_key))
        );
        match headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v == expected => Ok(()),
            Some(_) => Err(Box::new(unauthorized("Invalid username/password."))),
            None => Err(Box::new(unauthorized(
                "Authentication credentials were not provided.",
            ))),
        }
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

    /// Finishes every task whose run time has passed, applying its changes.
    fn settle(&mut self) {
        let now = Instant::now();
        let Inner {
            tasks, contracts, ..
        } = self;
        for task in tasks.iter_mut() {
            if task.finished || now < task.created + task.run_time {
                continue;
            }
            task.finished = true;
            if task.fail.is_some() {
                continue;
            }
            for id in &task.targets {
                let Some(c) = contracts.get_mut(id) else {
                    continue;
                };
                match &task.action {
                    Action::Update { attributes, status } => {
                        for (k, v) in attributes {
                            c.attributes.insert(k.clone(), v.clone());
                        }
                        if let Some(s) = status {
                            c.status = s.clone();
                        }
                    }
                    Action::Tag(tag) => {
                        c.tags.insert(tag.clone());
                    }
                }
            }
        }
    }

    fn matches(&self, c: &SimContract, params: &BTreeMap<String, String>) -> bool {
        let tag_names: Vec<&str> = c
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t).map(|t| t.name.as_str()))
            .collect();
        params.iter().all(|(k, v)| {
            let needle = v.to_lowercase();
            match k.as_str() {
                "q" | "q_main_documents" => c.title.to_lowercase().contains(&needle),
                "q_tags" => tag_names.iter().any(|n| n.to_lowercase().contains(&needle)),
                "tags" => v.split(',').all(|t| c.tags.contains(t.trim())),
                "status" => c.status == *v,
                // Other documented parameters are accepted and do not narrow the simulated set.
                _ => true,
            }
        })
    }

    fn select(&self, params: &BTreeMap<String, String>) -> Vec<String> {
        self.contracts
            .values()
            .filter(|c| self.matches(c, params))
            .map(|c| c.id.clone())
            .collect()
    }

    fn contract_json(&self, c: &SimContract) -> Value {
        let tags: Vec<Value> = c
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t))
            .map(|t| json!({ "id": t.id, "tag_name": t.name }))
            .collect();
        json!({
            "id": c.id,
            "title": c.title,
            "status": c.status,
            "tags": tags,
            "attributes": c.attributes,
        })
    }
}

impl SimTask {
    fn backend_status<'a>(&'a self, cfg: &'a ZefortConfig) -> (&'a str, &'a str) {
        match (&self.fail, self.finished) {
            (_, false) => {
                let running = &cfg.running_statuses;
                let status = match running.len() {
                    0 => "pending",
                    n => running[self.looks.saturating_sub(1) % n].as_str(),
                };
                (status, "")
            }
            (Some(info), true) => (cfg.failure_status.as_str(), info),
            (None, true) => ("done", ""),
        }
    }

    fn to_json(&self, cfg: &ZefortConfig) -> Value {
        let (status, info) = self.backend_status(cfg);
        let mut task = json!({
            "id": self.id,
            "description": "Contract Bulk operation",
            "details": { "query_params": {}, "data": self.body },
            "backend_status": status,
            "backend_status_info": info,
            "frontend_status": if self.frontend_done { "done" } else { "pending" },
        });
        if cfg.conflicting_status_field {
            // The opposite of the truth, so a client reading it gets the wrong answer.
            task["status"] = json!(if self.finished { "pending" } else { "done" });
        }
        task
    }
}

type St = State<Arc<ZState>>;

fn unauthorized(detail: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, Json(json!({ "detail": detail }))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"api\""),
    );
    r
}

fn bad_request(body: Value) -> Response {
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn not_found() -> Response {
    not_found_reply()
}

fn not_found_reply() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": "Not found." })),
    )
        .into_response()
}

fn query_map(raw: Option<String>) -> BTreeMap<String, String> {
    url_decode_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .collect()
}

fn url_decode_pairs(text: &str) -> Vec<(String, String)> {
    let Ok(uri) = format!("/?{text}").parse::<axum::http::Uri>() else {
        return Vec::new();
    };
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Slices `items` into one page and wraps it in the vendor's envelope.
fn paged(
    st: &ZState,
    headers: &HeaderMap,
    path: &str,
    query: &BTreeMap<String, String>,
    items: Vec<Value>,
) -> Response {
    let page: u64 = match query.get("page").map(|p| p.parse::<u64>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"detail": "Invalid page."})),
            )
                .into_response();
        }
    };
    let page_size: u64 = match query.get("page_size").map(|p| p.parse::<u64>()) {
        None => st.cfg.default_page_size,
        Some(Ok(n)) if n >= 1 => n,
        _ => return bad_request(json!({ "page_size": ["A valid integer is required."] })),
    };
    let page_size = if st.cfg.ignore_page_size {
        st.cfg.default_page_size
    } else {
        page_size
    }
    .clamp(1, st.cfg.max_page_size.max(1));
    let count = items.len() as u64;
    let last_page = count.div_ceil(page_size).max(1);
    if page > last_page {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"detail": "Invalid page."})),
        )
            .into_response();
    }
    let start = ((page - 1) * page_size) as usize;
    let results: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(page_size as usize)
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let link = |p: u64| {
        let mut q = query.clone();
        q.insert("page".into(), p.to_string());
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        format!("http://{host}{path}?{}", qs.join("&"))
    };
    let next = (page < last_page).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    Json(json!({
        "count": count,
        "next": next,
        "previous": previous,
        "results": results,
        "page": page,
        "page_size": page_size,
        "last_page": last_page,
    }))
    .into_response()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A repeatable shuffle (Fisher-Yates over a small linear congruential generator).
fn shuffle(items: &mut [Value], seed: u64) {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    for i in (1..items.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((x >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Refuses a query parameter the docs do not list for the route (`page` and `page_size` are
/// always allowed).
fn known_params(query: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), Box<Response>> {
    let unknown: Map<String, Value> = query
        .keys()
        .filter(|k| !matches!(k.as_str(), "page" | "page_size") && !allowed.contains(&k.as_str()))
        .map(|k| (k.clone(), json!(["Unknown query parameter."])))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Box::new(bad_request(Value::Object(unknown))))
    }
}

/// Refuses body keys outside `allowed`, DRF-style.
fn known_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Box<Response>> {
    let unknown: Map<String, Value> = body
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| (k.clone(), json!(["Unknown field."])))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Box::new(bad_request(Value::Object(unknown))))
    }
}

async fn list_contracts(State(st): St, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let query = query_map(raw);
    if let Err(r) = known_params(&query, SEARCH_PARAMS) {
        return *r;
    }
    if let Some(s) = query.get("status")
        && !CONTRACT_STATUSES.contains(&s.as_str())
    {
        return bad_request(json!({
            "status": [format!("Select a valid choice. {s} is not one of the available choices.")]
        }));
    }
    let items = {
        let mut inner = st.lock();
        inner.settle();
        let filters: BTreeMap<String, String> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "page_size")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let minimal = filters.get("minimal").is_some_and(|m| m == "true");
        inner
            .select(&filters)
            .iter()
            .filter_map(|id| inner.contracts.get(id))
            .map(|c| {
                if minimal {
                    json!({ "id": c.id, "title": c.title })
                } else {
                    inner.contract_json(c)
                }
            })
            .collect()
    };
    st.ctx.counters.incr("contracts.pages");
    paged(&st, &headers, "/api/contracts/", &query, items)
}

/// Reads `search` or `contracts` from a body: the contract ids it targets, or a DRF error body.
fn targets(inner: &Inner, body: &Map<String, Value>) -> Result<Vec<String>, Value> {
    match (body.get("search"), body.get("contracts")) {
        (Some(_), Some(_)) | (None, None) => Err(json!({
            "non_field_errors": ["Give exactly one of \"search\" or \"contracts\"."]
        })),
        (Some(Value::Object(search)), None) => {
            let mut params = BTreeMap::new();
            let mut errors = Map::new();
            for (k, v) in search {
                if !SEARCH_PARAMS.contains(&k.as_str()) {
                    errors.insert(k.clone(), json!(["Unknown search parameter."]));
                    continue;
                }
                if k == "status" && !v.as_str().is_some_and(|s| CONTRACT_STATUSES.contains(&s)) {
                    errors.insert(
                        k.clone(),
                        json!([format!("\"{v}\" is not a valid choice.")]),
                    );
                    continue;
                }
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        errors.insert(k.clone(), json!(["Expected a string, number or boolean."]));
                        continue;
                    }
                };
                params.insert(k.clone(), text);
            }
            if !errors.is_empty() {
                return Err(json!({ "search": errors }));
            }
            Ok(inner.select(&params))
        }
        (Some(_), None) => Err(json!({
            "search": ["Expected a dictionary of items but got another type."]
        })),
        (None, Some(Value::Array(ids))) => {
            if ids.is_empty() {
                return Err(json!({ "contracts": ["This list may not be empty."] }));
            }
            let mut out = Vec::new();
            for id in ids {
                match id.as_str() {
                    Some(id) if inner.contracts.contains_key(id) => out.push(id.to_owned()),
                    Some(id) => {
                        return Err(json!({
                            "contracts": [format!("Invalid pk \"{id}\" - object does not exist.")]
                        }));
                    }
                    None => {
                        return Err(json!({ "contracts": ["Incorrect type. Expected pk value."] }));
                    }
                }
            }
            Ok(out)
        }
        (None, Some(_)) => Err(json!({
            "contracts": ["Expected a list of items but got another type."]
        })),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Box::new(bad_request(json!({
            "non_field_errors": ["Invalid data. Expected a dictionary, but got another type."]
        })))),
        Err(e) => Err(Box::new(bad_request(
            json!({ "detail": format!("JSON parse error - {e}") }),
        ))),
    }
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    matches!(
        (num(0..4), num(5..7), num(8..10)),
        (Some(_), Some(m @ 1..=12), Some(d @ 1..=31)) if d <= days_in(m)
    )
}

fn days_in(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn create_task(
    st: &ZState,
    inner: &mut Inner,
    body: Value,
    action: Action,
    targets: Vec<String>,
) -> Value {
    match st.cfg.foreign_tasks {
        ForeignTasks::None => {}
        ForeignTasks::Different => {
            let id = inner.new_id("ct");
            foreign_task(
                st,
                inner,
                json!({ "status": "archived", "contracts": [id] }),
            );
        }
        ForeignTasks::Identical => foreign_task(st, inner, body.clone()),
    }
    let id = inner.new_id("task");
    let fail = if inner.fail_next.is_empty() {
        None
    } else {
        Some(inner.fail_next.remove(0))
    };
    let run_time = st.cfg.task_base + st.cfg.task_per_contract * targets.len() as u32;
    let task = SimTask {
        id,
        created: Instant::now(),
        run_time,
        body,
        action,
        targets,
        fail,
        finished: false,
        frontend_done: false,
        foreign: false,
        looks: 0,
    };
    let out = task.to_json(&st.cfg);
    inner.tasks.push(task);
    st.ctx.counters.incr("tasks.created");
    out
}

/// Another user's running task with `body`, created now; counter `tasks.foreign`.
fn foreign_task(st: &ZState, inner: &mut Inner, body: Value) {
    let id = inner.new_id("task");
    inner.tasks.push(SimTask {
        id,
        created: Instant::now(),
        run_time: st.cfg.task_base,
        body,
        action: Action::Tag(String::new()),
        targets: Vec::new(),
        fail: None,
        finished: false,
        frontend_done: false,
        foreign: true,
        looks: 0,
    });
    st.ctx.counters.incr("tasks.foreign");
}

/// The keys of a bulk update body (developers.zefort.com/docs/bulk-operations and seed 000:
/// `attributes`, `status`, and the target, `search` or `contracts`).
const BULK_UPDATE_KEYS: &[&str] = &["attributes", "status", "search", "contracts"];

/// The HTTP status of a successful creation, as configured.
fn created(st: &ZState) -> StatusCode {
    StatusCode::from_u16(st.cfg.create_status)
        .ok()
        .filter(StatusCode::is_success)
        .unwrap_or(StatusCode::CREATED)
}

async fn bulk_update(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, BULK_UPDATE_KEYS).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut errors = Map::new();
    let attributes = match obj.get("attributes") {
        None => Map::new(),
        Some(Value::Object(a)) => {
            let mut field_errors = Map::new();
            for name in DATE_ATTRIBUTES {
                if let Some(v) = a.get(*name)
                    && !v.as_str().is_some_and(is_iso_date)
                    && !v.is_null()
                {
                    field_errors.insert(
                        (*name).to_owned(),
                        json!([
                            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
                        ]),
                    );
                }
            }
            if !field_errors.is_empty() {
                errors.insert("attributes".into(), Value::Object(field_errors));
            }
            a.clone()
        }
        Some(_) => {
            errors.insert(
                "attributes".into(),
                json!(["Expected a dictionary of items but got another type."]),
            );
            Map::new()
        }
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if CONTRACT_STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(other) => {
            errors.insert(
                "status".into(),
                json!([format!(
                    "\"{}\" is not a valid choice.",
                    other.as_str().unwrap_or("?")
                )]),
            );
            None
        }
    };
    if !errors.is_empty() {
        return bad_request(Value::Object(errors));
    }
    if attributes.is_empty() && status.is_none() {
        return bad_request(json!({
            "non_field_errors": ["Nothing to update: give \"attributes\" or \"status\"."]
        }));
    }
    let mut inner = st.lock();
    inner.settle();
    let targets = match targets(&inner, &obj) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let task = create_task(
        &st,
        &mut inner,
        Value::Object(obj),
        Action::Update { attributes, status },
        targets,
    );
    (created(&st), Json(task)).into_response()
}

async fn list_tasks(State(st): St, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let query = query_map(raw);
    if let Err(r) = known_params(&query, &[]) {
        return *r;
    }
    let items = {
        let mut inner = st.lock();
        inner.settle();
        inner.list_reads += 1;
        let mut tasks: Vec<Value> = inner.tasks.iter().map(|t| t.to_json(&st.cfg)).collect();
        match st.cfg.task_order {
            TaskOrder::NewestFirst => tasks.reverse(),
            TaskOrder::OldestFirst => {}
            TaskOrder::Shuffled => shuffle(&mut tasks, inner.list_reads),
        }
        tasks
    };
    paged(&st, &headers, "/api/tasks/", &query, items)
}

async fn get_task(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let mut inner = st.lock();
    inner.settle();
    match inner.tasks.iter_mut().find(|t| t.id == id) {
        Some(t) => {
            t.looks += 1;
            Json(t.to_json(&st.cfg)).into_response()
        }
        None => not_found_reply(),
    }
}

async fn patch_task(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["frontend_status"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let done = match obj.get("frontend_status") {
        Some(Value::String(s)) if s == "done" => true,
        Some(Value::String(s)) if s == "pending" => false,
        Some(other) => {
            return bad_request(json!({
                "frontend_status": [format!("\"{}\" is not a valid choice.", other.as_str().unwrap_or("?"))]
            }));
        }
        None => return bad_request(json!({ "frontend_status": ["This field is required."] })),
    };
    let mut inner = st.lock();
    inner.settle();
    let Some(task) = inner.tasks.iter_mut().find(|t| t.id == id) else {
        return not_found_reply();
    };
    task.frontend_done = done;
    let foreign = task.foreign;
    let out = task.to_json(&st.cfg);
    drop(inner);
    if done {
        st.ctx.counters.incr(if foreign {
            "tasks.foreign_acknowledged"
        } else {
            "tasks.acknowledged"
        });
    }
    Json(out).into_response()
}

async fn list_tags(State(st): St, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let query = query_map(raw);
    if let Err(r) = known_params(&query, &[]) {
        return *r;
    }
    let items =
        {
            let mut inner = st.lock();
            inner.settle();
            inner
            .tags
            .values()
            .map(|t| {
                let n = inner.contracts.values().filter(|c| c.tags.contains(&t.id)).count();
                json!({ "id": t.id, "tag_name": t.name, "active": t.active, "num_contracts": n })
            })
            .collect()
        };
    paged(&st, &headers, "/api/tags/", &query, items)
}

async fn create_tag(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["tag_name", "active"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let name = match obj.get("tag_name") {
        None | Some(Value::Null) => {
            return bad_request(json!({ "tag_name": ["This field is required."] }));
        }
        Some(Value::String(n)) if n.trim().is_empty() => {
            return bad_request(json!({ "tag_name": ["This field may not be blank."] }));
        }
        Some(Value::String(n)) => n.as_str(),
        Some(_) => return bad_request(json!({ "tag_name": ["Not a valid string."] })),
    };
    let active = match obj.get("active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request(json!({ "active": ["Must be a valid boolean."] })),
    };
    let mut inner = st.lock();
    if inner.tags.values().any(|t| t.name == name) {
        return bad_request(json!({ "tag_name": ["Tag with this tag name already exists."] }));
    }
    let id = inner.tag_by_name(name);
    if let Some(t) = inner.tags.get_mut(&id) {
        t.active = active;
    }
    st.ctx.counters.incr("tags.created");
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "tag_name": name, "active": active, "num_contracts": 0 })),
    )
        .into_response()
}

async fn attach_tag(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["search", "contracts"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut inner = st.lock();
    inner.settle();
    if !inner.tags.contains_key(&id) {
        return not_found_reply();
    }
    let targets = match targets(&inner, &obj) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let task = create_task(
        &st,
        &mut inner,
        Value::Object(obj),
        Action::Tag(id),
        targets,
    );
    (created(&st), Json(task)).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert!(is_iso_date("2023-02-15"));
        assert!(!is_iso_date("2023-2-15"));
        assert!(!is_iso_date("2023-02-30"));
        assert!(!is_iso_date("15.02.2023"));
    }
}
