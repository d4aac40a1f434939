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

mod apply;
mod catalogue;
mod feed;
mod jobs;
mod routes;
mod selection;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};
use crate::unicat::catalogue::seed_catalogue;
use crate::unicat::feed::{cursors, sync_get};
use crate::unicat::routes::bulk;
use crate::unicat::session::auth;

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
