//! A Unicat simulator: API-key login with JWT rotation, a seeded catalogue of records, assets
//! and schema items, bulk endpoints that evaluate selections, background jobs reported through
//! the sync feed over (tokio) time, and bulk-get pages with opaque cursors.
//!
//! | Route | Behaviour |
//! |---|---|
//! | `POST /api/p/{project}/auth` | `{"api_key", "omit_extended_definitions"?}` → 200 with the JWT in the `Authorization` header and the documented init data (`result {user, user_projects, project, project_members, last_backed_up, "cc.version", "cc.cursor", cursor}`, `data {"cc.users", "cc.projects", "cc.projects_members", "cc.languages"}`); 400 without a key, 403 for a wrong key or project; counter `auth.logins` |
//! | `POST /api/p/{project}/{area}/bulk/get` | `{selection, "page.size"?, "page.cursor"?, language?, languages?}` (flat dotted keys) → `result {records\|assets\|schema_items, "<list>.size", "page.cursor"}`, data in `data` |
//! | `POST /api/p/{project}/{area}/bulk/{op}` | evaluates the selection (1006 on a bad one), queues a job → `result {"job.token"}`; counter `jobs.created` |
//! | `POST /sync/cursors` | `{}` → `result {"cc.cursor", cursor}` |
//! | `POST /sync/get` | `{cc_cursor, project?, cursor?}` → `result {sync: [items after the cursor]}` (at most `sync_page`, then `warning`) |
//!
//! Sources: seed 003 (bulk operations, the job report in the sync feed, cursor-paged bulk
//! get), docs.unicat.app/api/reference (`p/auth`, `p/records/bulk/*`, `sync`, `errors`), and the
//! official Python SDK `unicat` 0.7.18 (`api.py`: login, `prepare_for_job`, `track_job`,
//! `handle_sync_data`; `unicat.py`: the `page.size`/`page.cursor` loop). The SDK runs against
//! this simulator in `cargo xtask ci` (`tests/conformance/unicat_sdk.py`).
//!
//! # Strictness
//!
//! Every request body is checked against the documented parameters of its route: an unknown
//! key (such as a nested `page` object instead of `page.size`), a value of the wrong type or a
//! missing required parameter gets the documented `400 Bad request` error
//! (`{"success": false, "result": {"code": 400, "message", "info": {"field"}}}`). A real server
//! may well ignore an unknown key and carry on with its defaults; that is exactly how a
//! misspelt or misplaced field goes unnoticed (the size ignored, the cursor never sent, page 1
//! served forever), so the simulator refuses it instead.
//!
//! # Adversarial switches
//!
//! The docs leave some things open; [`UnicatConfig`] varies them so the clients cannot rely
//! on one reading: the job name in the feed ([`JobNames`]), other clients' jobs of the same
//! name interleaved with ours (`foreign_jobs`), the order of the items in a `/sync/get` reply
//! (`shuffle_sync`), and job reports without progress counts (`bare_info`).
//!
//! Every route but the login needs `Authorization: Bearer <JWT>`; a missing, unknown or expired
//! JWT is a 401 with `WWW-Authenticate` (counter `auth.refused`). After `rotate_every` requests
//! of a session the server mints a new JWT, sends it in the reply's `Authorization` header and
//! keeps the old one valid for `jwt_grace` (counter `auth.rotations`).
//!
//! Jobs wait `queue_delay`, then handle one item per `item_time`, publishing `queued`,
//! `processing` (with `info.total` / `info.remaining`) and `done` (with `info.failed` listing
//! items the operation could not apply, such as already deleted records in a delete) or
//! `rejected` (with `info.error`): a job over `max_job_items` items, or one set up with
//! [`Unicat::reject_next_job`], is rejected.

// Handlers pass ready replies up as errors; their size does not matter in a test server.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};

/// Settings of the Unicat simulator.
#[derive(Debug, Clone)]
pub struct UnicatConfig {
    /// The project gid.
    pub project: String,
    /// The API key the login accepts.
    pub api_key: String,
    /// Rotate a session's JWT after this many requests (0: never).
    pub rotate_every: u64,
    /// How long a rotated-out JWT stays valid.
    pub jwt_grace: Duration,
    /// How long a job stays `queued`.
    pub queue_delay: Duration,
    /// Time per item of a job.
    pub item_time: Duration,
    /// Jobs with more items are rejected.
    pub max_job_items: usize,
    /// Sync items per `/sync/get` reply.
    pub sync_page: usize,
    /// Unrelated `cc` sync items published with each job (other users' activity).
    pub noise_per_job: usize,
    /// Record folders under the root.
    pub folders: usize,
    /// Records per folder.
    pub per_folder: usize,
    /// Seed of job tokens and JWTs.
    pub seed: u64,
    /// How jobs are named in the feed (the docs show one example name only).
    pub job_names: JobNames,
    /// Jobs of other clients, with the same name and in the same project, published around
    /// each of ours (each runs to `done` over the same time).
    pub foreign_jobs: usize,
    /// Shuffle the items of each `/sync/get` reply (each keeps its own cursor).
    pub shuffle_sync: bool,
    /// Publish job reports without `info.total` / `info.remaining` (the docs call `info`
    /// job-dependent).
    pub bare_info: bool,
}

/// How the simulator names jobs in the feed's `data.job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JobNames {
    /// `bulk_{op}_{area}`, as seed 003's `bulk_delete_records`.
    #[default]
    Documented,
    /// Another spelling (`{area}.bulk.{op}`): a client must not rely on the name.
    Varied,
}

impl Default for UnicatConfig {
    fn default() -> Self {
        UnicatConfig {
            project: "p-7a1c9e52".into(),
            api_key: "sim-unicat-key-not-real".into(),
            rotate_every: 0,
            jwt_grace: Duration::from_secs(30),
            queue_delay: Duration::from_millis(300),
            item_time: Duration::from_millis(20),
            max_job_items: 10_000,
            sync_page: 20,
            noise_per_job: 2,
            folders: 4,
            per_folder: 25,
            seed: 7,
            job_names: JobNames::Documented,
            foreign_jobs: 0,
            shuffle_sync: false,
            bare_info: false,
        }
    }
}

/// Starts the Unicat simulator with `cfg`; returns the server and the handle on its state (the
/// same as `builder.serve::<Unicat>(cfg)`).
pub async fn start(builder: SimBuilder, cfg: UnicatConfig) -> std::io::Result<(SimHandle, Unicat)> {
    builder.serve::<Unicat>(cfg).await
}

impl Simulator for Unicat {
    type Config = UnicatConfig;

    fn build(ctx: SimContext, cfg: UnicatConfig) -> (Router, Self) {
        let sim = Unicat::new(ctx, cfg);
        (sim.router(), sim)
    }
}

/// Handle on the simulator's state: seed, inspect and steer it while it runs.
#[derive(Clone)]
pub struct Unicat {
    state: Arc<St>,
}

impl std::fmt::Debug for Unicat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unicat").finish_non_exhaustive()
    }
}

struct St {
    cfg: UnicatConfig,
    ctx: SimContext,
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Clone)]
struct Rec {
    gid: String,
    parent: Option<String>,
    definition: String,
    classes: Vec<String>,
    channels: Vec<String>,
    title: String,
    deleted: bool,
}

#[derive(Clone)]
struct SchemaItem {
    gid: String,
    ty: &'static str,
    name: String,
    committed: bool,
}

struct Session {
    current: String,
    since_rotation: u64,
}

struct SimJob {
    token: String,
    name: String,
    area: String,
    op: String,
    targets: Vec<String>,
    param: Option<String>,
    created: Instant,
    processed: usize,
    failed: Vec<String>,
    status: &'static str,
    reject: Option<String>,
    hidden: bool,
    /// Another client's job (the `foreign_jobs` switch): reported, but it changes nothing.
    foreign: bool,
    published_remaining: Option<usize>,
}

struct Inner {
    rng: StdRng,
    jwts: HashMap<String, (u64, Option<Instant>)>,
    sessions: HashMap<u64, Session>,
    next_session: u64,
    /// Records and assets share one shape; each list keeps insertion order.
    records: Vec<Rec>,
    assets: Vec<Rec>,
    schema: Vec<SchemaItem>,
    feed: Vec<Value>,
    jobs: Vec<SimJob>,
    copies: u64,
    reject_next: Option<String>,
    hide_next: bool,
    rotate_every: u64,
}

impl Inner {
    fn list(&mut self, area: &str) -> &mut Vec<Rec> {
        if area == "assets" {
            &mut self.assets
        } else {
            &mut self.records
        }
    }

    fn uuid(&mut self) -> String {
        let a: u32 = self.rng.random();
        let b: u16 = self.rng.random();
        let c: u16 = self.rng.random::<u16>() & 0x0fff;
        let d: u16 = self.rng.random::<u16>() & 0x3fff;
        let e: u64 = self.rng.random::<u64>() & 0xffff_ffff_ffff;
        format!("{a:08x}-{b:04x}-4{c:03x}-{:04x}-{e:012x}", 0x8000 | d)
    }
}

fn seed_catalogue(cfg: &UnicatConfig) -> (Vec<Rec>, Vec<Rec>, Vec<SchemaItem>) {
    let rec = |gid: String, parent: Option<&str>, def: &str, title: String| Rec {
        gid,
        parent: parent.map(str::to_owned),
        definition: def.into(),
        classes: Vec::new(),
        channels: vec!["web".into()],
        title,
        deleted: false,
    };
    let mut records = vec![rec("r-root".into(), None, "d-folder", "Catalogue".into())];
    for f in 1..=cfg.folders {
        let folder = format!("r-f{f}");
        records.push(rec(
            folder.clone(),
            Some("r-root"),
            "d-folder",
            format!("Folder {f}"),
        ));
        for i in 1..=cfg.per_folder {
            let mut r = rec(
                format!("r-f{f}-{i:03}"),
                Some(&folder),
                if i % 4 == 0 { "d-spec" } else { "d-article" },
                format!("Product {f}-{i:03}"),
            );
            if i % 5 == 0 {
                r.title.push_str(" obsolete");
            }
            if i % 3 == 0 {
                r.classes.push("article".into());
            }
            if i % 2 == 0 {
                r.channels.push("print".into());
            }
            records.push(r);
        }
    }
    let mut assets = vec![rec("a-root".into(), None, "folder", "Assets".into())];
    for (folder, kind, n) in [("a-img", "image", 20), ("a-docs", "pdf", 10)] {
        assets.push(rec(folder.into(), Some("a-root"), "folder", folder.into()));
        for i in 1..=n {
            assets.push(rec(
                format!("{folder}-{i:02}"),
                Some(folder),
                kind,
                format!("{kind} {i:02}"),
            ));
        }
    }
    let schema = [
        ("d-folder", "definition", true),
        ("d-article", "definition", true),
        ("d-spec", "definition", false),
        ("c-article", "class", true),
        ("c-price", "class", false),
        ("f-title", "field", true),
        ("f-price", "field", false),
        ("f-sku", "field", true),
    ]
    .into_iter()
    .map(|(gid, ty, committed)| SchemaItem {
        gid: gid.into(),
        ty,
        name: gid[2..].into(),
        committed,
    })
    .collect();
    (records, assets, schema)
}

type Sel = State<Arc<St>>;

fn ok(result: Value, data: Value) -> Response {
    Json(json!({ "success": true, "result": result, "data": data })).into_response()
}

fn fail(status: u16, code: i64, message: &str, info: Value) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        st,
        Json(json!({
            "success": false,
            "result": { "code": code, "message": message, "info": info },
            "data": {},
        })),
    )
        .into_response();
    if status == 401 {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"unicat\""),
        );
    }
    resp
}

/// The documented `400 Bad request` for a body that does not match the route's parameters.
fn bad_request(message: impl Into<String>, field: &str) -> Response {
    fail(400, 400, &message.into(), json!({ "field": field }))
}

/// The type a body parameter must have.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    List,
    StrList,
    Any,
}

impl Ty {
    fn check(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_u64(),
            Ty::Bool => v.is_boolean(),
            Ty::List => v.is_array(),
            Ty::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "a non-negative integer",
            Ty::Bool => "a boolean",
            Ty::List => "a list",
            Ty::StrList => "a list of strings",
            Ty::Any => "any value",
        }
    }
}

/// One documented parameter: name, type, required.
type Param = (&'static str, Ty, bool);

/// Refuses unknown keys, wrong types and missing required parameters (see the module docs).
fn check_params(body: &Map<String, Value>, params: &[Param]) -> Result<(), Response> {
    for key in body.keys() {
        if !params.iter().any(|(k, _, _)| k == key) {
            return Err(bad_request(format!("unknown parameter {key}"), key));
        }
    }
    for (key, ty, required) in params {
        match body.get(*key) {
            None if *required => {
                return Err(bad_request(format!("{key} is required"), key));
            }
            Some(v) if !ty.check(v) => {
                return Err(bad_request(format!("{key} must be {}", ty.name()), key));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The documented parameters of a bulk route.
fn bulk_params(area: &str, op: &str) -> Vec<Param> {
    let mut p: Vec<Param> = vec![("selection", Ty::List, true)];
    match (area, op) {
        (_, "get") => {
            p.push(("page.size", Ty::Int, false));
            p.push(("page.cursor", Ty::Any, false));
            if area == "records" {
                p.push(("language", Ty::Str, false));
                p.push(("languages", Ty::StrList, false));
            }
        }
        ("records", "duplicate") => p.push(("ordering", Ty::Str, false)),
        ("records", "link" | "shallow_copy") => {
            p.push(("parent", Ty::Str, true));
            p.push(("before_record", Ty::Str, false));
            p.push(("ordering", Ty::Str, false));
        }
        ("assets", "move") => p.push(("parent", Ty::Str, true)),
        _ => {}
    }
    p
}

fn selection_error(message: impl Into<String>, info: Value) -> Response {
    fail(422, 1006, &message.into(), info)
}

impl Unicat {
    /// A simulator with `cfg`, reporting to `ctx`'s counters.
    pub fn new(ctx: SimContext, cfg: UnicatConfig) -> Self {
        let (records, assets, schema) = seed_catalogue(&cfg);
        let inner = Inner {
            rng: StdRng::seed_from_u64(cfg.seed),
            jwts: HashMap::new(),
            sessions: HashMap::new(),
            next_session: 1,
            records,
            assets,
            schema,
            // Earlier activity, so cursors do not start at zero.
            feed: (1..=5)
                .map(|c| {
                    json!({"type": "cc", "cursor": 1000 + c, "action": "UPDATE",
                               "data_type": "cc.users", "data_key": format!("u-{c}"), "data": {}})
                })
                .collect(),
            jobs: Vec::new(),
            copies: 0,
            reject_next: None,
            hide_next: false,
            rotate_every: cfg.rotate_every,
        };
        Unicat {
            state: Arc::new(St {
                cfg,
                ctx,
                started: Instant::now(),
                inner: Mutex::new(inner),
            }),
        }
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/p/{project}/auth", post(auth))
            .route("/api/p/{project}/{area}/bulk/{op}", post(bulk))
            .route("/sync/cursors", post(cursors))
            .route("/sync/get", post(sync_get))
            .with_state(self.state.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &UnicatConfig {
        &self.state.cfg
    }

    /// Makes every JWT invalid (the next request of every client gets a 401).
    pub fn expire_jwts(&self) {
        self.state.lock().jwts.clear();
    }

    /// Rotates sessions' JWTs every `n` requests from now on (0: never).
    pub fn set_rotate_every(&self, n: u64) {
        let mut inner = self.state.lock();
        for s in inner.sessions.values_mut() {
            s.since_rotation = 0;
        }
        inner.rotate_every = n;
    }

    /// The next job will be rejected with `reason` once it leaves the queue.
    pub fn reject_next_job(&self, reason: &str) {
        self.state.lock().reject_next = Some(reason.to_owned());
    }

    /// The next job is accepted but never reported in the feed.
    pub fn hide_next_job(&self) {
        self.state.lock().hide_next = true;
    }

    /// Gids of the records that are not deleted, in catalogue order.
    pub fn live_records(&self) -> Vec<String> {
        let inner = self.state.lock();
        inner
            .records
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| r.gid.clone())
            .collect()
    }

    /// Gids of the records in the trash, in catalogue order.
    pub fn deleted_records(&self) -> Vec<String> {
        let inner = self.state.lock();
        inner
            .records
            .iter()
            .filter(|r| r.deleted)
            .map(|r| r.gid.clone())
            .collect()
    }

    /// Gids of the direct children of a record (deleted or not), in catalogue order.
    pub fn children(&self, parent: &str) -> Vec<String> {
        let inner = self.state.lock();
        inner
            .records
            .iter()
            .filter(|r| r.parent.as_deref() == Some(parent))
            .map(|r| r.gid.clone())
            .collect()
    }

    /// Gids of live records whose title contains `word` (case-insensitive).
    pub fn records_titled(&self, word: &str) -> Vec<String> {
        let word = word.to_lowercase();
        let inner = self.state.lock();
        inner
            .records
            .iter()
            .filter(|r| !r.deleted && r.title.to_lowercase().contains(&word))
            .map(|r| r.gid.clone())
            .collect()
    }

    /// Moves records to the trash directly (to set up a test).
    pub fn trash(&self, gids: &[&str]) {
        let mut inner = self.state.lock();
        for r in inner.records.iter_mut() {
            if gids.contains(&r.gid.as_str()) {
                r.deleted = true;
            }
        }
    }

    /// The tokens of the jobs clients created (not the `foreign_jobs` of the switch), in order.
    pub fn job_tokens(&self) -> Vec<String> {
        let inner = self.state.lock();
        inner
            .jobs
            .iter()
            .filter(|j| !j.foreign)
            .map(|j| j.token.clone())
            .collect()
    }

    /// The last status published for a job token.
    pub fn job_status(&self, token: &str) -> Option<String> {
        let inner = self.state.lock();
        inner
            .jobs
            .iter()
            .find(|j| j.token == token)
            .map(|j| j.status.to_owned())
    }
}

impl St {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn secs(&self, at: Instant) -> f64 {
        1_767_000_000.0 + at.duration_since(self.started).as_secs_f64()
    }
}

fn new_jwt(inner: &mut Inner, session: u64) -> String {
    let n: u64 = inner.rng.random();
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.s{session}.{n:016x}");
    inner.jwts.insert(jwt.clone(), (session, None));
    jwt
}

/// Checks the bearer JWT; returns the JWT to put in the reply's `Authorization` header (a
/// rotated or newer one), or the 401 reply.
fn authorize(st: &Arc<St>, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = Instant::now();
    let mut inner = st.lock();
    let rotate_every = inner.rotate_every;
    let Some((session, expires)) = jwt.and_then(|j| inner.jwts.get(j).copied()) else {
        st.ctx.counters.incr("auth.refused");
        return Err(fail(401, 401, "missing or invalid JWT", json!({})));
    };
    if expires.is_some_and(|e| e <= now) {
        st.ctx.counters.incr("auth.refused");
        return Err(fail(401, 401, "the JWT has expired", json!({})));
    }
    if expires.is_some() {
        st.ctx.counters.incr("auth.grace_uses");
    }
    let Some(s) = inner.sessions.get_mut(&session) else {
        return Err(fail(401, 401, "no such session", json!({})));
    };
    s.since_rotation += 1;
    let rotate = rotate_every > 0 && s.since_rotation >= rotate_every;
    let current = s.current.clone();
    if rotate {
        let fresh = new_jwt(&mut inner, session);
        let grace = now + st.cfg.jwt_grace;
        if let Some(old) = inner.jwts.get_mut(&current) {
            old.1 = Some(grace);
        }
        if let Some(s) = inner.sessions.get_mut(&session) {
            s.current = fresh.clone();
            s.since_rotation = 0;
        }
        st.ctx.counters.incr("auth.rotations");
        return Ok(Some(fresh));
    }
    // A caller still on a rotated-out JWT is handed the session's current one.
    Ok((Some(current.as_str()) != jwt).then_some(current))
}

fn with_jwt(mut resp: Response, jwt: Option<String>) -> Response {
    if let Some(v) = jwt.and_then(|j| HeaderValue::from_str(&j).ok()) {
        resp.headers_mut().insert(header::AUTHORIZATION, v);
    }
    resp
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(fail(400, 400, "the body is not a JSON object", json!({}))),
    }
}

async fn auth(State(st): Sel, Path(project): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The SDK also sends `omit_extended_definitions` (api.py `connect`).
    if let Err(r) = check_params(
        &body,
        &[
            ("api_key", Ty::Str, true),
            ("omit_extended_definitions", Ty::Bool, false),
        ],
    ) {
        return r;
    }
    let Some(key) = body.get("api_key").and_then(Value::as_str) else {
        return fail(400, 400, "api_key is required", json!({"field": "api_key"}));
    };
    if key != st.cfg.api_key || project != st.cfg.project {
        return fail(
            403,
            403,
            "unknown user or not a member of this project",
            json!({}),
        );
    }
    st.ctx.counters.incr("auth.logins");
    let mut inner = st.lock();
    let session = inner.next_session;
    inner.next_session += 1;
    let jwt = new_jwt(&mut inner, session);
    inner.sessions.insert(
        session,
        Session {
            current: jwt.clone(),
            since_rotation: 0,
        },
    );
    let cc = cc_cursor(&inner);
    let inner_schema = inner.schema.clone();
    drop(inner);
    let mut data = login_data(&st.cfg);
    if let Value::Object(d) = &mut data {
        // The project's initial data (p/auth: "initial data for the current project").
        d.extend(schema_data(&inner_schema));
    }
    let resp = ok(login_result(&st.cfg, cc), data);
    with_jwt(resp, Some(jwt))
}

/// The API user's gid.
const API_USER: &str = "u-api-0000";
/// The project owner's gid.
const OWNER: &str = "u-owner-0000";

/// `result` of the login reply, shaped as docs.unicat.app/api/reference/p/auth shows it.
fn login_result(cfg: &UnicatConfig, cc: u64) -> Value {
    json!({
        "user": API_USER,
        "user_projects": { cfg.project.clone(): ["member"] },
        "project": cfg.project,
        "project_members": [OWNER, API_USER],
        "last_backed_up": 1_767_000_000.5,
        // A version string: the SDK compares it with "2026.09.001" (utils.py `Features`).
        "cc.version": "2026.01.001",
        "cc.cursor": cc,
        "cursor": cc,
    })
}

/// `data` of the login reply: the `cc.`-prefixed side-stores the SDK reads (api.py keeps one
/// dict per key and raises `KeyError` on any other key).
fn login_data(cfg: &UnicatConfig) -> Value {
    let member = |user: &str, roles: &[&str]| {
        json!({
            "project_gid": cfg.project, "user_gid": user, "status": "active", "roles": roles,
            "options": {"notifications": {"email": null, "events": ["all"],
                        "frequency": "immediate"}, "rate_limit_per_second": null},
        })
    };
    json!({
        "cc.users": {
            API_USER: {"gid": API_USER, "username": "api-user", "name": "API user",
                       "avatar": null, "status": "active",
                       "options": {"language": "en", "timezone": "Europe/Amsterdam"}},
            OWNER: {"gid": OWNER, "username": "owner", "name": "Owner", "avatar": null,
                    "status": "active", "options": {}},
        },
        "cc.projects": {
            cfg.project.clone(): {"gid": cfg.project, "name": "Simulated catalogue",
                                  "icon": null, "owner": OWNER, "status": "active"},
        },
        "cc.projects_members": [member(OWNER, &["owner"]), member(API_USER, &["member"])],
        "cc.languages": {"en": "English", "nl": "Dutch"},
    })
}

fn cc_cursor(inner: &Inner) -> u64 {
    inner
        .feed
        .last()
        .and_then(|i| i["cursor"].as_u64())
        .unwrap_or(1000)
}

fn publish(st: &St, inner: &mut Inner, item: Value) {
    let cursor = cc_cursor(inner) + 1;
    let mut item = item;
    item["cursor"] = json!(cursor);
    inner.feed.push(item);
    st.ctx.counters.incr("sync.items");
}

fn publish_job(st: &St, inner: &mut Inner, idx: usize, action: &str) {
    let now = Instant::now();
    let job = &inner.jobs[idx];
    if job.hidden {
        return;
    }
    let total = job.targets.len();
    let mut info = if st.cfg.bare_info {
        json!({})
    } else {
        json!({ "total": total, "remaining": total - job.processed })
    };
    if let Some(reason) = &job.reject
        && job.status == "rejected"
    {
        info["error"] = json!(reason);
    }
    if job.status == "done" && !job.failed.is_empty() {
        info["failed"] = json!(job.failed);
    }
    let item = json!({
        "type": "cc", "action": action, "data_type": "jobs", "data_key": job.token,
        "data": {
            "project_gid": st.cfg.project, "job": job.name, "status": job.status, "info": info,
            "created_on": st.secs(job.created), "updated_on": st.secs(now),
        },
    });
    publish(st, inner, item);
}

/// Moves every job forward to the present.
fn tick(st: &St, inner: &mut Inner) {
    let now = Instant::now();
    for idx in 0..inner.jobs.len() {
        let job = &inner.jobs[idx];
        if matches!(job.status, "done" | "rejected") {
            continue;
        }
        let elapsed = now.duration_since(job.created);
        if elapsed < st.cfg.queue_delay {
            continue;
        }
        if job.reject.is_some() {
            inner.jobs[idx].status = "rejected";
            st.ctx.counters.incr("jobs.rejected");
            publish_job(st, inner, idx, "UPDATE");
            continue;
        }
        let total = job.targets.len();
        let due = if st.cfg.item_time.is_zero() {
            total
        } else {
            let n = (elapsed - st.cfg.queue_delay).as_nanos() / st.cfg.item_time.as_nanos();
            (n as usize).min(total)
        };
        while inner.jobs[idx].processed < due {
            let job = &inner.jobs[idx];
            let (area, op, gid, param) = (
                job.area.clone(),
                job.op.clone(),
                job.targets[job.processed].clone(),
                job.param.clone(),
            );
            if !inner.jobs[idx].foreign && !apply(inner, &area, &op, &gid, param.as_deref()) {
                inner.jobs[idx].failed.push(gid);
            }
            inner.jobs[idx].processed += 1;
        }
        let job = &mut inner.jobs[idx];
        if job.processed == total {
            job.status = "done";
            if !job.foreign {
                st.ctx.counters.incr("jobs.done");
            }
            publish_job(st, inner, idx, "UPDATE");
        } else if job.published_remaining != Some(total - job.processed) {
            job.status = "processing";
            job.published_remaining = Some(total - job.processed);
            publish_job(st, inner, idx, "UPDATE");
        }
    }
}

fn subtree(list: &[Rec], root: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut frontier = vec![root.to_owned()];
    while let Some(g) = frontier.pop() {
        for (i, r) in list.iter().enumerate() {
            if r.gid == g {
                out.push(i);
            }
            if r.parent.as_deref() == Some(g.as_str()) {
                frontier.push(r.gid.clone());
            }
        }
    }
    out
}

/// Applies one item of a job; `false` when it fails for this item.
fn apply(inner: &mut Inner, area: &str, op: &str, gid: &str, param: Option<&str>) -> bool {
    if area == "schema" {
        let Some(pos) = inner.schema.iter().position(|s| s.gid == gid) else {
            return false;
        };
        match op {
            "commit" | "revert" => inner.schema[pos].committed = true,
            _ => {
                inner.copies += 1;
                let mut copy = inner.schema[pos].clone();
                copy.gid = format!("{gid}-copy{}", inner.copies);
                copy.committed = false;
                inner.schema.push(copy);
            }
        }
        return true;
    }
    inner.copies += 1;
    let copies = inner.copies;
    let list = inner.list(area);
    let Some(pos) = list.iter().position(|r| r.gid == gid) else {
        return false;
    };
    match op {
        "delete" | "undelete" => {
            let deleting = op == "delete";
            if list[pos].deleted == deleting {
                return false;
            }
            for i in subtree(list, gid) {
                list[i].deleted = deleting;
            }
        }
        "permanent_delete" => {
            if !list[pos].deleted {
                return false;
            }
            let mut doomed = subtree(list, gid);
            doomed.sort_unstable();
            for i in doomed.into_iter().rev() {
                list.remove(i);
            }
        }
        "move" => list[pos].parent = param.map(str::to_owned),
        _ => {
            // duplicate, link, shallow_copy: a copy, under `param` when given.
            let mut copy = list[pos].clone();
            copy.gid = format!("{gid}-copy{copies}");
            if let Some(p) = param {
                copy.parent = Some(p.to_owned());
            }
            list.push(copy);
        }
    }
    true
}

async fn cursors(State(st): Sel, headers: HeaderMap, body: Bytes) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    // The SDK (`prepare_for_job`) and the client send `{}`.
    if let Err(r) = parse_body(&body).and_then(|b| check_params(&b, &[])) {
        return with_jwt(r, jwt);
    }
    let mut inner = st.lock();
    tick(&st, &mut inner);
    let cc = cc_cursor(&inner);
    drop(inner);
    with_jwt(ok(json!({ "cc.cursor": cc, "cursor": cc }), json!({})), jwt)
}

async fn sync_get(State(st): Sel, headers: HeaderMap, body: Bytes) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return with_jwt(r, jwt),
    };
    // `cc_cursor` alone (the SDK's job tracker), or with the project cursor (its `sync`).
    if let Err(r) = check_params(
        &body,
        &[
            ("cc_cursor", Ty::Int, true),
            ("project", Ty::Str, false),
            ("cursor", Ty::Int, false),
        ],
    ) {
        return with_jwt(r, jwt);
    }
    let Some(from) = body.get("cc_cursor").and_then(Value::as_u64) else {
        return with_jwt(
            fail(
                400,
                400,
                "cc_cursor is required",
                json!({"field": "cc_cursor"}),
            ),
            jwt,
        );
    };
    st.ctx.counters.incr("sync.gets");
    let mut inner = st.lock();
    tick(&st, &mut inner);
    let after: Vec<&Value> = inner
        .feed
        .iter()
        .filter(|i| i["cursor"].as_u64().is_some_and(|c| c > from))
        .collect();
    let more = after.len() > st.cfg.sync_page;
    let mut items: Vec<Value> = after.into_iter().take(st.cfg.sync_page).cloned().collect();
    if st.cfg.shuffle_sync {
        use rand::seq::SliceRandom;
        items.shuffle(&mut inner.rng);
    }
    let mut result = json!({ "sync": items });
    if more {
        result["warning"] = json!("more sync items pending");
    }
    drop(inner);
    with_jwt(ok(result, json!({})), jwt)
}

/// One slot of an evaluated selection: an item's gid, or `None` for a gid naming nothing.
type Slot = Option<String>;

struct Want {
    area: String,
    /// Include deleted items (undelete, permanent_delete) instead of live ones.
    deleted: bool,
    /// A read: deleted and unknown gids take an empty slot.
    read: bool,
}

fn words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .map(|w| w.trim_start_matches(['+', '-']).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn rec_matches(
    r: &Rec,
    area: &str,
    filter: Option<&Value>,
    q: &[String],
) -> Result<bool, Response> {
    let title = r.title.to_lowercase();
    if !q.iter().all(|w| title.contains(w)) {
        return Ok(false);
    }
    let Some(f) = filter else {
        return Ok(true);
    };
    let (Some(field), Some(op)) = (
        f.get(0).and_then(Value::as_str),
        f.get(1).and_then(Value::as_str),
    ) else {
        return Err(selection_error(
            "a filter is [field, op, value]",
            json!({"filter": f}),
        ));
    };
    let value = f.get(2).and_then(Value::as_str).unwrap_or_default();
    Ok(match (area, field, op) {
        ("records", "definition", "is") => r.definition == value,
        ("records", "classes", "has") => r.classes.iter().any(|c| c == value),
        ("records", "channels", "has") => r.channels.iter().any(|c| c == value),
        ("assets", "type", "is") => r.definition == value,
        _ => {
            return Err(selection_error(
                format!("unsupported filter {field} {op}"),
                json!({"filter": f}),
            ));
        }
    })
}

fn schema_matches(s: &SchemaItem, filter: Option<&Value>, q: &[String]) -> Result<bool, Response> {
    if !q.iter().all(|w| s.name.contains(w.as_str())) {
        return Ok(false);
    }
    let Some(f) = filter else {
        return Ok(true);
    };
    let field = f.get(0).and_then(Value::as_str).unwrap_or_default();
    let op = f.get(1).and_then(Value::as_str).unwrap_or_default();
    let value = f.get(2).and_then(Value::as_str).unwrap_or_default();
    Ok(match (field, op) {
        ("type", "is") => s.ty == value,
        ("is_committed", "is_false") => !s.committed,
        ("is_committed", "is_true") => s.committed,
        _ => {
            return Err(selection_error(
                format!("unsupported filter {field} {op}"),
                json!({"filter": f}),
            ));
        }
    })
}

fn exclude_list(entry: &Map<String, Value>, idx: usize) -> Result<HashSet<String>, Response> {
    match entry.get("exclude") {
        None | Some(Value::Null) => Ok(HashSet::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|g| g.as_str().map(str::to_owned))
            .collect::<Option<HashSet<_>>>()
            .ok_or_else(|| selection_error("exclude must list gids", json!({"entry": idx}))),
        Some(_) => Err(selection_error(
            "exclude must list gids",
            json!({"entry": idx}),
        )),
    }
}

/// Evaluates a selection into slots (deduplicated; a repeat takes an empty slot).
fn evaluate(inner: &Inner, want: &Want, selection: Option<&Value>) -> Result<Vec<Slot>, Response> {
    let Some(Value::Array(entries)) = selection else {
        return Err(fail(
            400,
            400,
            "selection must be a list",
            json!({"field": "selection"}),
        ));
    };
    let schema = want.area == "schema";
    let list: &[Rec] = if want.area == "assets" {
        &inner.assets
    } else {
        &inner.records
    };
    let state_ok = |deleted: bool| deleted == want.deleted;
    let mut seen = HashSet::new();
    let mut slots = Vec::new();
    for (idx, entry) in entries.iter().enumerate() {
        let mut found: Vec<Slot> = Vec::new();
        match entry {
            Value::String(g) => {
                let hit = if schema {
                    inner.schema.iter().any(|s| &s.gid == g)
                } else {
                    list.iter()
                        .any(|r| &r.gid == g && (!want.read || state_ok(r.deleted)))
                };
                found.push(hit.then(|| g.clone()));
            }
            Value::Object(m) if m.contains_key("children") => {
                // channel and ordering apply to records only (bulk/get reference pages).
                let allowed: &[&str] = if want.area == "records" {
                    &["children", "exclude", "channel", "ordering"]
                } else {
                    &["children", "exclude"]
                };
                if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(bad_request(
                        format!("unknown key {k} in selection entry {idx}"),
                        "selection",
                    ));
                }
                if schema {
                    return Err(selection_error(
                        "schema selections cannot use children",
                        json!({"entry": idx}),
                    ));
                }
                let Some(parent) = m["children"].as_str() else {
                    return Err(selection_error(
                        "children must be a gid",
                        json!({"entry": idx}),
                    ));
                };
                if !list.iter().any(|r| r.gid == parent) {
                    return Err(selection_error(
                        format!("parent {parent} not found"),
                        json!({"entry": idx, "gid": parent}),
                    ));
                }
                let exclude = exclude_list(m, idx)?;
                let channel = m.get("channel").and_then(Value::as_str);
                for r in list.iter().filter(|r| r.parent.as_deref() == Some(parent)) {
                    let in_channel = channel.is_none_or(|c| r.channels.iter().any(|x| x == c));
                    // A read lists only items in the wanted state; a mutation takes them all, so
                    // that items in the wrong state fail one by one.
                    if in_channel
                        && !exclude.contains(&r.gid)
                        && (!want.read || state_ok(r.deleted))
                    {
                        found.push(Some(r.gid.clone()));
                    }
                }
            }
            Value::Object(m) if m.contains_key("search") => {
                if let Some(k) = m
                    .keys()
                    .find(|k| !["search", "exclude"].contains(&k.as_str()))
                {
                    return Err(bad_request(
                        format!("unknown key {k} in selection entry {idx}"),
                        "selection",
                    ));
                }
                if let Some(k) = m["search"].as_object().and_then(|o| {
                    o.keys()
                        .find(|k| !["language", "q", "filter"].contains(&k.as_str()))
                }) {
                    return Err(bad_request(
                        format!("unknown key {k} in the search of selection entry {idx}"),
                        "selection",
                    ));
                }
                let exclude = exclude_list(m, idx)?;
                let Some(search) = m["search"].as_object() else {
                    return Err(selection_error(
                        "search must be an object",
                        json!({"entry": idx}),
                    ));
                };
                let q = words(search.get("q").and_then(Value::as_str).unwrap_or_default());
                let filter = search.get("filter").filter(|f| !f.is_null());
                if q.is_empty() && filter.is_none() {
                    return Err(selection_error(
                        "a search needs q or a filter",
                        json!({"entry": idx}),
                    ));
                }
                if schema {
                    for s in &inner.schema {
                        if schema_matches(s, filter, &q)? && !exclude.contains(&s.gid) {
                            found.push(Some(s.gid.clone()));
                        }
                    }
                } else {
                    for r in list {
                        if state_ok(r.deleted)
                            && rec_matches(r, &want.area, filter, &q)?
                            && !exclude.contains(&r.gid)
                        {
                            found.push(Some(r.gid.clone()));
                        }
                    }
                }
            }
            _ => {
                return Err(selection_error(
                    "a selection entry is a gid, a children or a search object",
                    json!({"entry": idx}),
                ));
            }
        }
        for slot in found {
            match slot {
                Some(g) if seen.insert(g.clone()) => slots.push(Some(g)),
                _ => slots.push(None),
            }
        }
    }
    Ok(slots)
}

async fn bulk(
    State(st): Sel,
    Path((project, area, op)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let resp = bulk_inner(&st, &project, &area, &op, &body);
    with_jwt(resp, jwt)
}

fn bulk_inner(st: &Arc<St>, project: &str, area: &str, op: &str, body: &Bytes) -> Response {
    if project != st.cfg.project {
        return fail(403, 403, "not a member of this project", json!({}));
    }
    let allowed: &[&str] = match area {
        "records" => &[
            "get",
            "delete",
            "undelete",
            "permanent_delete",
            "duplicate",
            "link",
            "shallow_copy",
        ],
        "assets" => &["get", "delete", "undelete", "move"],
        "schema" => &["get", "copy", "commit", "revert", "save_as_new"],
        _ => &[],
    };
    if !allowed.contains(&op) {
        return fail(
            404,
            404,
            "no such bulk operation",
            json!({"area": area, "op": op}),
        );
    }
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_params(&body, &bulk_params(area, op)) {
        return r;
    }
    let mut inner = st.lock();
    tick(st, &mut inner);
    let want = Want {
        area: area.to_owned(),
        deleted: matches!(op, "undelete" | "permanent_delete"),
        read: op == "get",
    };
    let slots = match evaluate(&inner, &want, body.get("selection")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if op == "get" {
        return bulk_get(st, &inner, area, &body, &slots);
    }
    let param = body
        .get("parent")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if matches!(op, "link" | "shallow_copy" | "move") && param.is_none() {
        return fail(422, 1001, "parent is required", json!({"field": "parent"}));
    }
    let targets: Vec<String> = slots.into_iter().flatten().collect();
    let token = inner.uuid();
    let mut reject = inner.reject_next.take();
    if reject.is_none() && targets.len() > st.cfg.max_job_items {
        reject = Some(format!(
            "the selection holds {} items; at most {} are allowed in one job",
            targets.len(),
            st.cfg.max_job_items
        ));
    }
    let hidden = std::mem::take(&mut inner.hide_next);
    let name = match st.cfg.job_names {
        JobNames::Documented => format!("bulk_{op}_{area}"),
        JobNames::Varied => format!("{area}.bulk.{op}"),
    };
    let foreign = |inner: &mut Inner, n: usize| SimJob {
        token: inner.uuid(),
        name: name.clone(),
        area: area.to_owned(),
        op: op.to_owned(),
        targets: (0..n).map(|i| format!("r-foreign-{i}")).collect(),
        param: None,
        created: Instant::now(),
        processed: 0,
        failed: Vec::new(),
        status: "queued",
        reject: None,
        hidden: false,
        foreign: true,
        published_remaining: None,
    };
    // Other clients' jobs of the same name, half before ours and half after.
    let n = targets.len();
    for _ in 0..st.cfg.foreign_jobs / 2 {
        let job = foreign(&mut inner, n);
        inner.jobs.push(job);
        let idx = inner.jobs.len() - 1;
        publish_job(st, &mut inner, idx, "INSERT");
    }
    inner.jobs.push(SimJob {
        token: token.clone(),
        name: name.clone(),
        area: area.to_owned(),
        op: op.to_owned(),
        targets,
        param,
        created: Instant::now(),
        processed: 0,
        failed: Vec::new(),
        status: "queued",
        reject,
        hidden,
        foreign: false,
        published_remaining: None,
    });
    st.ctx.counters.incr("jobs.created");
    let idx = inner.jobs.len() - 1;
    publish_job(st, &mut inner, idx, "INSERT");
    for _ in st.cfg.foreign_jobs / 2..st.cfg.foreign_jobs {
        let job = foreign(&mut inner, n);
        inner.jobs.push(job);
        let idx = inner.jobs.len() - 1;
        publish_job(st, &mut inner, idx, "INSERT");
    }
    for n in 0..st.cfg.noise_per_job {
        // Another user's activity: `cc.users`, a data type the SDK keeps (api.py
        // `handle_sync_data` indexes its stores by `data_type`).
        let item = json!({"type": "cc", "action": "UPDATE", "data_type": "cc.users",
                          "data_key": format!("u-noise-{n}"), "data": {}});
        publish(st, &mut inner, item);
    }
    ok(json!({ "job.token": token }), json!({}))
}

/// The fields each definition has (by field gid); a record carries a value for each.
fn definition_fields(definition: &str) -> &'static [&'static str] {
    match definition {
        "d-article" => &["f-title", "f-sku"],
        "d-spec" => &["f-title", "f-price"],
        _ => &["f-title"],
    }
}

/// A schema item as the side-store holds it. Definitions and fields carry the keys the SDK
/// reads when it builds a record (`UnicatDefinition.all_fields`, `UnicatField.name`).
fn schema_json(s: &SchemaItem) -> Value {
    let mut v = json!({
        "gid": s.gid, "name": s.name, "label": {"en": s.name}, "original": null,
        "is_new": false, "is_working_copy": !s.committed, "is_committed": s.committed,
        "is_extended": false, "metadata": {},
    });
    match s.ty {
        "definition" => {
            v["is_base"] = json!(false);
            v["classes"] = json!([]);
            v["fields"] = json!(definition_fields(&s.gid));
            v["titlefield"] = json!("f-title");
            v["fieldlists"] = json!({});
            v["layout"] = Value::Null;
            v["childdefinitions"] = json!([]);
        }
        "class" => v["fields"] = json!([]),
        _ => v["type"] = json!("text"),
    }
    v
}

/// The `definitions`, `classes` and `fields` side-stores of the whole schema.
fn schema_data(schema: &[SchemaItem]) -> Map<String, Value> {
    let mut data = Map::new();
    for (ty, store) in [
        ("definition", "definitions"),
        ("class", "classes"),
        ("field", "fields"),
    ] {
        let items: Map<String, Value> = schema
            .iter()
            .filter(|s| s.ty == ty)
            .map(|s| (s.gid.clone(), schema_json(s)))
            .collect();
        data.insert(store.into(), Value::Object(items));
    }
    data
}

/// A record (or asset) as the side-store holds it: the keys the SDK's `UnicatRecord` reads
/// (`definition`, `fields` per language with a value for every field of the definition,
/// `status`, ...), plus the simulator's own short forms (`title`, `is_deleted`, `classes`).
fn rec_json(r: &Rec) -> Value {
    let values: Map<String, Value> = definition_fields(&r.definition)
        .iter()
        .map(|f| {
            let value = match *f {
                "f-title" => json!(r.title),
                "f-sku" => json!(format!("SKU-{}", r.gid)),
                _ => Value::Null,
            };
            (f[2..].to_owned(), value)
        })
        .collect();
    json!({
        "gid": r.gid, "canonical": r.gid, "parent": r.parent, "backlinks": [], "is_link": false,
        "status": if r.deleted { "deleted" } else { "published" },
        "definition": r.definition, "classes": r.classes, "channels": r.channels,
        "orderings": [], "childcount": 0, "title": r.title, "is_deleted": r.deleted,
        "fields": {"en": values},
        "created_on": 1_767_000_000.0, "updated_on": 1_767_000_000.0,
    })
}

fn bulk_get(
    st: &St,
    inner: &Inner,
    area: &str,
    body: &Map<String, Value>,
    slots: &[Slot],
) -> Response {
    // Flat dotted keys (seed 003, the bulk/get reference, the SDK's paging loop).
    let size = body
        .get("page.size")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 1000) as usize;
    // "A cursor value is a tuple with selection index and some additional cursor value"
    // (seed 003); here `[0, <next slot>]`, echoed back as given.
    let start = match body.get("page.cursor") {
        None | Some(Value::Null) => 0,
        Some(c) => match c.as_array().map(Vec::as_slice) {
            Some([Value::Number(i), Value::Number(n)])
                if i.as_u64() == Some(0)
                    && n.as_u64().is_some_and(|n| n as usize <= slots.len()) =>
            {
                n.as_u64().unwrap_or_default() as usize
            }
            _ => return bad_request("invalid page.cursor", "page.cursor"),
        },
    };
    let end = (start + size).min(slots.len());
    let chosen: Vec<&String> = slots
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .flatten()
        .collect();
    let next = if end < slots.len() {
        json!([0, end])
    } else {
        Value::Null
    };
    let total = slots.iter().flatten().count();
    st.ctx.counters.add("bulk.get.items", chosen.len() as u64);
    st.ctx.counters.incr("bulk.get.pages");
    let mut result = Map::new();
    let mut data = Map::new();
    if area == "schema" {
        let mut entries = Vec::new();
        let mut stores: HashMap<&str, Map<String, Value>> = HashMap::new();
        for g in chosen {
            if let Some(s) = inner.schema.iter().find(|s| &s.gid == g) {
                entries.push(json!({"type": s.ty, "item": s.gid}));
                let store = match s.ty {
                    "definition" => "definitions",
                    "class" => "classes",
                    _ => "fields",
                };
                stores
                    .entry(store)
                    .or_default()
                    .insert(s.gid.clone(), schema_json(s));
            }
        }
        result.insert("schema_items".into(), json!(entries));
        result.insert("schema_items.size".into(), json!(total));
        for (k, v) in stores {
            data.insert(k.into(), Value::Object(v));
        }
    } else {
        let list = if area == "assets" {
            &inner.assets
        } else {
            &inner.records
        };
        let mut store = Map::new();
        for g in &chosen {
            if let Some(r) = list.iter().find(|r| &&r.gid == g) {
                let mut item = rec_json(r);
                if area == "assets" {
                    // The SDK indexes assets by `pathname` (api.py `_json_response`).
                    item["pathname"] = json!(format!("/{}", r.title));
                }
                store.insert(r.gid.clone(), item);
            }
        }
        result.insert(area.into(), json!(chosen));
        result.insert(format!("{area}.size"), json!(total));
        data.insert(area.into(), Value::Object(store));
    }
    result.insert("page.cursor".into(), next);
    ok(Value::Object(result), Value::Object(data))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;

    async fn post(url: String, jwt: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
        // reqwest is built without its `json` feature here.
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(j) = jwt {
            req = req.header("Authorization", format!("Bearer {j}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let jwt = resp
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.bytes().await.unwrap();
        (status, jwt, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_are_checked_against_the_documented_parameters() {
        let cfg = UnicatConfig::default();
        let (sim, _) = start(SimBuilder::new("unicat"), cfg.clone()).await.unwrap();
        let base = sim.base_url();
        let p = &cfg.project;

        // The login reply is shaped as the API's: cc.-prefixed side-stores, a version string.
        let (status, _, body) = post(
            format!("{base}/api/p/{p}/auth"),
            None,
            json!({"api_key": cfg.api_key, "typo": 1}),
        )
        .await;
        assert_eq!(
            (status, &body["result"]["info"]["field"]),
            (400, &json!("typo"))
        );
        let (status, jwt, body) = post(
            format!("{base}/api/p/{p}/auth"),
            None,
            json!({"api_key": cfg.api_key, "omit_extended_definitions": false}),
        )
        .await;
        assert_eq!(status, 200);
        let jwt = jwt.unwrap();
        assert!(body["data"]["cc.projects"][p].is_object());
        assert!(body["data"]["cc.users"].is_object());
        assert!(body["data"]["cc.projects_members"].is_array());
        assert!(body["result"]["cc.version"].is_string());
        assert!(body["data"].get("projects").is_none());

        let get = format!("{base}/api/p/{p}/records/bulk/get");
        let refused = [
            // A nested page object: a real server may ignore it; the simulator refuses it.
            (json!({"selection": ["r-f1"], "page": {"size": 2}}), "page"),
            (
                json!({"selection": ["r-f1"], "page.size": "2"}),
                "page.size",
            ),
            (json!({"page.size": 2}), "selection"),
            (
                json!({"selection": [{"children": "r-f1", "chanel": "web"}]}),
                "selection",
            ),
            (
                json!({"selection": [{"search": {"q": "x", "lang": "nl"}}]}),
                "selection",
            ),
        ];
        for (body, field) in refused {
            let (status, _, reply) = post(get.clone(), Some(&jwt), body.clone()).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(reply["success"], false);
            assert_eq!(reply["result"]["code"], 400);
            assert_eq!(reply["result"]["info"]["field"], field, "{body}");
        }
        let (status, _, reply) = post(
            get,
            Some(&jwt),
            json!({"selection": [{"children": "r-f1"}], "page.size": 2}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"]["records"].as_array().unwrap().len(), 2);
        assert_eq!(reply["result"]["page.cursor"], json!([0, 2]));

        let (status, _, _) = post(
            format!("{base}/api/p/{p}/records/bulk/delete"),
            Some(&jwt),
            json!({"selection": ["r-f1-001"], "page.size": 2}),
        )
        .await;
        assert_eq!(status, 400, "bulk/delete takes no page.size");
        let (status, _, _) = post(format!("{base}/sync/get"), Some(&jwt), json!({})).await;
        assert_eq!(status, 400, "cc_cursor is required");
        let (status, _, _) =
            post(format!("{base}/sync/cursors"), Some(&jwt), json!({"x": 1})).await;
        assert_eq!(status, 400);
        sim.shutdown().await;
    }
}
