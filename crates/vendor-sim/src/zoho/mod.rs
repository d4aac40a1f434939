//! Zoho: the accounts token endpoint and the Creator Bulk Read API, in both its forms.
//!
//! | Route | Behaviour |
//! |---|---|
//! | `POST /oauth/v2/token` | refresh grant (query or form; any other parameter: 400 `invalid_request`); at most `mint_cap` tokens per refresh token per window, else Zoho's "Access Denied" reply; counter `zoho.refreshes` |
//! | `POST {P}` | create a job (no body, `{"query": {fields, criteria, max_records}}` or `{"query": {"record_cursor"}}`); counter `zoho.jobs.created` |
//! | `GET {P}/{job_id}` | status (`In-progress`, `Completed`, `Failed`) with `result {count, download_url, record_cursor}` |
//! | `GET {P}/{job_id}/result` | a ZIP holding one CSV; `recordCursor` header while rows remain; counter `zoho.rows.served` |
//! | anything else | 404, code 1000 "Invalid API URL format." |
//!
//! `{P}` is `/api/bulk/v2/{owner}/{app}/report/{report}/read` (v2, seed 001) or
//! `/creator/v2.1/bulk/{owner}/{app}/report/{report}/read` (v2.1, Zoho's v2.1 bulk pages); a
//! status reply's `download_url` is under the form it was asked in, and its status spelled as
//! that form's pages spell it (`In-progress`/`Completed` for v2, `IN PROGRESS`/`COMPLETED` for v2.1).
//!
//! Jobs export the requested `fields` (all ten [`COLUMNS`] by default; follow-up jobs keep the
//! first job's fields); `criteria` is accepted but not evaluated. Every Creator reply carries
//! `code` (3000 on success). Tokens go in
//! `Authorization: Zoho-oauthtoken <token>`; an unknown or expired token gets HTTP 401 with code
//! 1030. The report's rows are generated from their number, with quoted commas, quotes, line
//! breaks and non-ASCII text, so tests can check every row arrived once and intact.
//!
//! **Strict on purpose.** A create body with an unknown key or a mistyped value gets Zoho's
//! "Invalid request parameter found" (HTTP 401, code 1060), a body without `query` "A mandatory
//! parameter is absent" (HTTP 401, code 1000), both from Zoho's status-code page. The real
//! server may well ignore an unknown key; that is exactly why the simulator must not: a
//! misspelt or misplaced field would otherwise pass every test and be dropped in production.

// Handlers return early with ready-made error replies; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod export;
mod jobs;
mod routes;
mod session;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};
use crate::zoho::export::{all_columns, build_zip, download, row_values};
use crate::zoho::jobs::{create_job, job_status};
use crate::zoho::routes::creator_error;
use crate::zoho::session::token;

/// The columns of every simulated report.
pub const COLUMNS: [&str; 10] = [
    "ID", "Email", "Name", "City", "Amount", "Status", "Notes", "Created", "Tags", "Score",
];

/// Settings of the Zoho simulator.
#[derive(Debug, Clone)]
pub struct ZohoConfig {
    /// The OAuth client id the accounts endpoint accepts.
    pub client_id: String,
    /// The OAuth client secret the accounts endpoint accepts.
    pub client_secret: String,
    /// A refresh token whose access tokens carry both bulk scopes.
    pub refresh_token: String,
    /// A refresh token whose access tokens carry only `ZohoCreator.bulk.READ`.
    pub read_refresh_token: String,
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// Access tokens one refresh token may mint per [`mint_window`](Self::mint_window).
    pub mint_cap: u32,
    /// The minting window.
    pub mint_window: Duration,
    /// The account owner in the paths.
    pub owner: String,
    /// The application link name in the paths.
    pub app: String,
    /// Reports and their row counts.
    pub reports: Vec<(String, u64)>,
    /// How long a job stays `In-progress`.
    pub job_duration: Duration,
    /// Job creations allowed per minute (Zoho: 5 per user).
    pub creates_per_minute: u32,
    /// Downloads allowed per minute (Zoho: 10 per user).
    pub downloads_per_minute: u32,
    /// Jobs allowed per day before code 4000 (with HTTP 200), if limited.
    pub daily_job_limit: Option<u32>,
    /// Which created jobs (1-based) end `Failed`.
    pub failing_jobs: Vec<u64>,
    /// Rows one job returns at most, below the requested `max_records` (for small, fast tests of
    /// record-cursor chaining; Zoho's own cap is `max_records`, at least 100,000).
    pub job_row_cap: Option<u64>,
}

impl Default for ZohoConfig {
    fn default() -> Self {
        ZohoConfig {
            client_id: "1000.SIMCLIENT".into(),
            client_secret: "sim-zoho-secret-not-real".into(),
            refresh_token: "1000.sim-refresh-not-real".into(),
            read_refresh_token: "1000.sim-read-refresh-not-real".into(),
            token_ttl: Duration::from_secs(3600),
            mint_cap: 10,
            mint_window: Duration::from_secs(600),
            owner: "acme".into(),
            app: "orders-app".into(),
            reports: vec![("All_Orders".into(), 250_000), ("Small".into(), 25)],
            job_duration: Duration::from_secs(3),
            creates_per_minute: 5,
            downloads_per_minute: 10,
            daily_job_limit: None,
            failing_jobs: Vec::new(),
            job_row_cap: None,
        }
    }
}

/// Handle on the Zoho simulator's state.
#[derive(Clone)]
pub struct Zoho {
    state: Arc<ZohoState>,
}

impl std::fmt::Debug for Zoho {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zoho").finish_non_exhaustive()
    }
}

struct ZohoState {
    cfg: ZohoConfig,
    ctx: SimContext,
    next: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, SimToken>,
    mints: HashMap<String, Vec<Instant>>,
    jobs: HashMap<String, SimJob>,
    cursors: HashMap<String, SimCursor>,
    creates: Vec<Instant>,
    downloads: Vec<Instant>,
    jobs_today: u32,
    rows_served: u64,
    /// Built archives by (first row, count): jobs over the same rows reuse them.
    zips: HashMap<(u64, u64, Vec<usize>), Bytes>,
}

struct SimToken {
    expires: Instant,
    can_create: bool,
}

struct SimCursor {
    report: String,
    next_row: u64,
    max_records: u64,
    columns: Vec<usize>,
    issued: Instant,
}

struct SimJob {
    number: u64,
    report: String,
    created: Instant,
    first_row: u64,
    count: u64,
    max_records: u64,
    /// Indices into [`COLUMNS`] of the exported fields.
    columns: Vec<usize>,
}

/// The path prefixes of a report's bulk-read routes: v2 (seed 001) and v2.1 (Zoho's v2.1 bulk
/// pages). Both are served on one origin; anything else is refused as Zoho does (404, code
/// 1000 "Invalid API URL format.").
const READ_PREFIXES: [&str; 2] = [
    "/api/bulk/v2/{owner}/{app}/report/{report}/read",
    "/creator/v2.1/bulk/{owner}/{app}/report/{report}/read",
];

impl Zoho {
    /// A simulator with `cfg`, reporting to `ctx`'s counters.
    pub fn new(ctx: SimContext, cfg: ZohoConfig) -> Self {
        Zoho {
            state: Arc::new(ZohoState {
                cfg,
                ctx,
                next: AtomicU64::new(1),
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// The routes: the accounts endpoint and the Creator bulk endpoints on one origin.
    pub fn router(&self) -> Router {
        let mut router = Router::new().route("/oauth/v2/token", post(token));
        for prefix in READ_PREFIXES {
            router = router
                .route(prefix, post(create_job))
                .route(&format!("{prefix}/{{job_id}}"), get(job_status))
                .route(&format!("{prefix}/{{job_id}}/result"), get(download));
        }
        router
            .fallback(|| async {
                creator_error(StatusCode::NOT_FOUND, 1000, "Invalid API URL format.")
            })
            .with_state(self.state.clone())
    }

    /// Expires every access token minted so far (as Zoho would after an hour).
    pub fn expire_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// Rows served by downloads so far.
    pub fn rows_served(&self) -> u64 {
        self.state.lock().rows_served
    }

    /// The CSV values of row `n` (1-based), as the simulator writes them.
    pub fn row(n: u64) -> Vec<String> {
        row_values(n)
    }

    /// A ZIP holding one CSV of rows `first..first + count` (for benchmarks and tests).
    pub fn zip_rows(first: u64, count: u64) -> Bytes {
        build_zip("report.csv", first, count, &all_columns())
    }
}

impl ZohoState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the Zoho simulator with `cfg`; returns the server and the handle on its state (the
/// same as `builder.serve::<Zoho>(cfg)`).
pub async fn start(builder: SimBuilder, cfg: ZohoConfig) -> std::io::Result<(SimHandle, Zoho)> {
    builder.serve::<Zoho>(cfg).await
}

impl Simulator for Zoho {
    type Config = ZohoConfig;

    fn build(ctx: SimContext, cfg: ZohoConfig) -> (Router, Self) {
        let sim = Zoho::new(ctx, cfg);
        (sim.router(), sim)
    }
}
