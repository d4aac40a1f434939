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

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};

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

type St = State<Arc<ZohoState>>;

fn creator_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn url_params(query: Option<String>, body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for text in [
        query.unwrap_or_default(),
        String::from_utf8_lossy(body).into_owned(),
    ] {
        let uri = format!("/?{text}");
        if let Ok(uri) = uri.parse::<axum::http::Uri>()
            && let Ok(q) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        {
            out.extend(q.0);
        }
    }
    out
}

async fn token(State(st): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let params = url_params(query, &body);
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let cfg = &st.cfg;
    // Strict, like the Creator routes: a parameter outside Zoho's refresh request (and the
    // optional `redirect_uri` and `scope` some clients add) is refused as RFC 6749's
    // `invalid_request`, so a misspelt parameter fails a test instead of being ignored.
    if params.keys().any(|k| {
        !matches!(
            k.as_str(),
            "grant_type"
                | "client_id"
                | "client_secret"
                | "refresh_token"
                | "redirect_uri"
                | "scope"
        )
    }) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    if get("grant_type") != "refresh_token" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if get("client_id") != cfg.client_id || get("client_secret") != cfg.client_secret {
        return Json(json!({"error": "invalid_client"})).into_response();
    }
    let refresh = get("refresh_token");
    let can_create = if refresh == cfg.refresh_token {
        true
    } else if refresh == cfg.read_refresh_token {
        false
    } else {
        return Json(json!({"error": "invalid_code"})).into_response();
    };
    let now = Instant::now();
    let mut inner = st.lock();
    let mints = inner.mints.entry(refresh.to_owned()).or_default();
    mints.retain(|t| now.saturating_duration_since(*t) < cfg.mint_window);
    if mints.len() >= cfg.mint_cap as usize {
        st.ctx.counters.incr("zoho.refreshes.refused");
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "Access Denied",
                "error_description": "You have made too many requests continuously. Please try again after some time."
            })),
        )
            .into_response();
    }
    mints.push(now);
    let n = st.next.fetch_add(1, Ordering::Relaxed);
    let access = format!("1000.simaccess{n:08}.simtoken");
    inner.tokens.insert(
        access.clone(),
        SimToken {
            expires: now + cfg.token_ttl,
            can_create,
        },
    );
    drop(inner);
    st.ctx.counters.incr("zoho.refreshes");
    Json(json!({
        "access_token": access,
        "expires_in": cfg.token_ttl.as_secs(),
        "api_domain": "https://www.zohoapis.com",
        "token_type": "Bearer",
    }))
    .into_response()
}

/// Checks the `Zoho-oauthtoken` header; `Err` is the reply to send.
fn authorize(st: &ZohoState, headers: &HeaderMap, create: bool) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "));
    let inner = st.lock();
    match token.and_then(|t| inner.tokens.get(t)) {
        Some(t) if t.expires > Instant::now() => {
            if create && !t.can_create {
                Err(creator_error(
                    StatusCode::UNAUTHORIZED,
                    2945,
                    "INVALID_OAUTHSCOPE: ZohoCreator.bulk.CREATE is required",
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(creator_error(
            StatusCode::UNAUTHORIZED,
            1030,
            "Invalid OAuthtoken or OAuthtoken expired",
        )),
    }
}

fn check_app(st: &ZohoState, owner: &str, app: &str) -> Result<(), Response> {
    if owner != st.cfg.owner {
        return Err(creator_error(
            StatusCode::NOT_FOUND,
            1040,
            "No such account owner",
        ));
    }
    if app != st.cfg.app {
        return Err(creator_error(
            StatusCode::NOT_FOUND,
            1000,
            "No application named so",
        ));
    }
    Ok(())
}

/// Counts one use of a throttled operation; `false` when the minute's allowance is spent.
fn within(recent: &mut Vec<Instant>, per_minute: u32) -> bool {
    let now = Instant::now();
    recent.retain(|t| now.saturating_duration_since(*t) < Duration::from_secs(60));
    if recent.len() >= per_minute as usize {
        return false;
    }
    recent.push(now);
    true
}

/// The create body's query, read strictly.
#[derive(Default)]
struct CreateQuery {
    fields: Option<Vec<String>>,
    criteria: Option<String>,
    max_records: Option<u64>,
    record_cursor: Option<String>,
}

/// Zoho's reply to a request parameter it does not know, or of the wrong type ("Invalid
/// request parameter found - paramname": HTTP 401, code 1060, on Zoho's status-code page).
fn invalid_parameter(name: &str) -> Response {
    creator_error(
        StatusCode::UNAUTHORIZED,
        1060,
        &format!("Invalid request parameter found - {name}"),
    )
}

/// Reads a create-job body strictly: no body (every field, every record), or
/// `{"query": {fields?, criteria?, max_records?, record_cursor?}}` with those types.
///
/// A real server may ignore an unknown key or coerce a wrong type; the simulator refuses them
/// with Zoho's documented codes (1060 for an unknown or mistyped parameter, 1000 for a missing
/// one), so that a misspelt or misplaced field fails a test instead of being silently dropped.
fn parse_create(body: &[u8]) -> Result<CreateQuery, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateQuery::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        creator_error(
            StatusCode::BAD_REQUEST,
            2945,
            "Invalid JSON in the request body",
        )
    })?;
    let Some(top) = value.as_object() else {
        return Err(invalid_parameter("the body must be a JSON object"));
    };
    if let Some(key) = top.keys().find(|k| *k != "query") {
        return Err(invalid_parameter(key));
    }
    let Some(query) = top.get("query") else {
        return Err(creator_error(
            StatusCode::UNAUTHORIZED,
            1000,
            "A mandatory parameter - 'query' is either absent or has been used twice. Please check and try again.",
        ));
    };
    let Some(query) = query.as_object() else {
        return Err(invalid_parameter("query"));
    };
    let mut out = CreateQuery::default();
    for (key, v) in query {
        match key.as_str() {
            "fields" => {
                let fields = v
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|f| f.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| invalid_parameter("fields"))?;
                out.fields = Some(fields);
            }
            "criteria" => {
                out.criteria = Some(
                    v.as_str()
                        .ok_or_else(|| invalid_parameter("criteria"))?
                        .to_owned(),
                );
            }
            "max_records" => {
                out.max_records = Some(v.as_u64().ok_or_else(|| invalid_parameter("max_records"))?);
            }
            "record_cursor" => {
                out.record_cursor = Some(
                    v.as_str()
                        .ok_or_else(|| invalid_parameter("record_cursor"))?
                        .to_owned(),
                );
            }
            other => return Err(invalid_parameter(other)),
        }
    }
    Ok(out)
}

async fn create_job(
    State(st): St,
    Path((owner, app, report)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check_app(&st, &owner, &app).and_then(|()| authorize(&st, &headers, true)) {
        return r;
    }
    let Some(total) = st.cfg.reports.iter().find(|r| r.0 == report).map(|r| r.1) else {
        return creator_error(StatusCode::NOT_FOUND, 2894, "No report named so");
    };
    let q = match parse_create(&body) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let mut inner = st.lock();
    if let Some(limit) = st.cfg.daily_job_limit
        && inner.jobs_today >= limit
    {
        return creator_error(
            StatusCode::OK,
            4000,
            "Developer API limit for the day has been reached",
        );
    }
    if !within(&mut inner.creates, st.cfg.creates_per_minute) {
        st.ctx.counters.incr("zoho.throttled.create");
        return creator_error(
            StatusCode::TOO_MANY_REQUESTS,
            2955,
            "Bulk read job creation limit reached; try after a minute",
        );
    }
    let (first_row, max_records, columns) = match &q.record_cursor {
        Some(cursor) => {
            if q.fields.is_some() || q.criteria.is_some() || q.max_records.is_some() {
                return creator_error(
                    StatusCode::BAD_REQUEST,
                    2946,
                    "record_cursor must be sent alone",
                );
            }
            let Some(c) = inner.cursors.get(cursor) else {
                return creator_error(StatusCode::BAD_REQUEST, 2947, "Invalid record_cursor");
            };
            if c.report != report {
                return creator_error(StatusCode::BAD_REQUEST, 2947, "Invalid record_cursor");
            }
            if c.issued.elapsed() > Duration::from_secs(15 * 60) {
                return creator_error(StatusCode::BAD_REQUEST, 2948, "record_cursor expired");
            }
            (c.next_row, c.max_records, c.columns.clone())
        }
        None => {
            let max = q.max_records.unwrap_or(100_000);
            if !(100_000..=200_000).contains(&max) || !max.is_multiple_of(1000) {
                return creator_error(
                    StatusCode::BAD_REQUEST,
                    2949,
                    "max_records must be a multiple of 1000 between 100000 and 200000",
                );
            }
            let columns = match &q.fields {
                None => all_columns(),
                Some(fields) => {
                    let mut columns = Vec::new();
                    for f in fields {
                        match COLUMNS.iter().position(|c| c == f) {
                            Some(i) => columns.push(i),
                            None => {
                                return creator_error(
                                    StatusCode::BAD_REQUEST,
                                    2950,
                                    &format!("Unknown field {f}"),
                                );
                            }
                        }
                    }
                    columns
                }
            };
            (1, max, columns)
        }
    };
    let cap = st
        .cfg
        .job_row_cap
        .map_or(max_records, |c| c.clamp(1, max_records));
    let count = cap.min(total.saturating_sub(first_row - 1));
    inner.jobs_today += 1;
    let number = st.next.fetch_add(1, Ordering::Relaxed);
    let id = format!("2000000{number:06}");
    let created_jobs = st.ctx.counters.get("zoho.jobs.created") + 1;
    inner.jobs.insert(
        id.clone(),
        SimJob {
            number: created_jobs,
            report: report.clone(),
            created: Instant::now(),
            first_row,
            count,
            max_records,
            columns,
        },
    );
    drop(inner);
    st.ctx.counters.incr("zoho.jobs.created");
    Json(json!({
        "code": 3000,
        "details": {
            "id": id,
            "operation": "read",
            "created_by": "sim.user",
            "created_time": "03-Sep-2021 14:55:46",
            "status": spelled(&uri, "In-progress"),
        }
    }))
    .into_response()
}

/// A status as each form's pages write it: seed 001 and the v2 samples say `In-progress` and
/// `Completed`; the v2.1 status page lists `IN PROGRESS`, `COMPLETED`, `FAILED`. Clients must
/// compare without case or punctuation.
fn spelled(uri: &axum::http::Uri, status: &'static str) -> &'static str {
    if !uri.path().starts_with("/creator/v2.1/") {
        return status;
    }
    match status {
        "In-progress" => "IN PROGRESS",
        "Completed" => "COMPLETED",
        "Failed" => "FAILED",
        other => other,
    }
}

fn status_of(st: &ZohoState, job: &SimJob) -> &'static str {
    if job.created.elapsed() < st.cfg.job_duration {
        "In-progress"
    } else if st.cfg.failing_jobs.contains(&job.number) {
        "Failed"
    } else {
        "Completed"
    }
}

/// The cursor for the rows after `job`, minted when first asked for.
fn cursor_after(inner: &mut Inner, id: &str, total: u64) -> Option<String> {
    let job = inner.jobs.get(id)?;
    let next_row = job.first_row + job.count;
    if next_row > total {
        return None;
    }
    let cursor = format!("{}x{}", 7_000_000 + next_row, id);
    let report = job.report.clone();
    let max_records = job.max_records;
    let columns = job.columns.clone();
    inner.cursors.entry(cursor.clone()).or_insert(SimCursor {
        report,
        next_row,
        max_records,
        columns,
        issued: Instant::now(),
    });
    Some(cursor)
}

/// Checks the app and a READ token for a status or download call; the report's row count.
fn read_access(
    st: &ZohoState,
    owner: &str,
    app: &str,
    headers: &HeaderMap,
    report: &str,
) -> Result<u64, Response> {
    check_app(st, owner, app)?;
    authorize(st, headers, false)?;
    Ok(st
        .cfg
        .reports
        .iter()
        .find(|r| r.0 == report)
        .map_or(0, |r| r.1))
}

async fn job_status(
    State(st): St,
    Path((owner, app, report, id)): Path<(String, String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let total = match read_access(&st, &owner, &app, &headers, &report) {
        Ok(total) => total,
        Err(r) => return r,
    };
    let mut inner = st.lock();
    let Some(job) = inner.jobs.get(&id).filter(|j| j.report == report) else {
        return creator_error(StatusCode::NOT_FOUND, 2893, "No job with this id");
    };
    let status = status_of(&st, job);
    let count = job.count;
    let mut details = json!({
        "id": id,
        "operation": "read",
        "created_by": "sim.user",
        "created_time": "03-Sep-2021 14:55:46",
        "status": spelled(&uri, status),
    });
    if status == "Completed" {
        let mut result = json!({
            "count": count,
            // Relative to the API host, under the form (v2 or v2.1) the status was asked in.
            "download_url": format!("{}/result", uri.path().trim_end_matches('/')),
        });
        if let Some(cursor) = cursor_after(&mut inner, &id, total) {
            result["record_cursor"] = json!(cursor);
        }
        details["result"] = result;
    }
    Json(json!({ "code": 3000, "details": details })).into_response()
}

async fn download(
    State(st): St,
    Path((owner, app, report, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let total = match read_access(&st, &owner, &app, &headers, &report) {
        Ok(total) => total,
        Err(r) => return r,
    };
    let (key, cached) = {
        let mut inner = st.lock();
        if !within(&mut inner.downloads, st.cfg.downloads_per_minute) {
            st.ctx.counters.incr("zoho.throttled.download");
            return creator_error(
                StatusCode::TOO_MANY_REQUESTS,
                2955,
                "Download limit reached; try after a minute",
            );
        }
        let Some(job) = inner.jobs.get(&id).filter(|j| j.report == report) else {
            return creator_error(StatusCode::NOT_FOUND, 2893, "No job with this id");
        };
        if status_of(&st, job) != "Completed" {
            return creator_error(StatusCode::BAD_REQUEST, 2951, "The job has not completed");
        }
        let key = (job.first_row, job.count, job.columns.clone());
        let cached = inner.zips.get(&key).cloned();
        (key, cached)
    };
    let zip = match cached {
        Some(z) => z,
        None => {
            let name = format!("{report}.csv");
            let (first, count, columns) = key.clone();
            let built =
                tokio::task::spawn_blocking(move || build_zip(&name, first, count, &columns))
                    .await
                    .unwrap_or_default();
            st.lock().zips.insert(key.clone(), built.clone());
            built
        }
    };
    let count = key.1;
    let cursor = {
        let mut inner = st.lock();
        inner.rows_served += count;
        cursor_after(&mut inner, &id, total)
    };
    st.ctx.counters.add("zoho.rows.served", count);
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"result.zip\"",
            ),
        ],
        zip,
    )
        .into_response();
    if let Some(c) = cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert("recordCursor", c);
    }
    resp
}

const CITIES: [&str; 6] = [
    "Zürich",
    "São Paulo",
    "東京",
    "Kraków",
    "Reykjavík",
    "Austin",
];

fn row_values(n: u64) -> Vec<String> {
    let name = if n.is_multiple_of(7) {
        format!("O\"Brien {n}")
    } else {
        format!("Customer {n}")
    };
    let notes = if n.is_multiple_of(11) {
        format!("first line, with a comma\nsecond line of {n}")
    } else if n.is_multiple_of(5) {
        "needs \"follow-up\", soon".to_owned()
    } else {
        String::new()
    };
    vec![
        format!("{}", 3_000_000_000_000 + n),
        format!("user{n}@example.com"),
        name,
        CITIES[(n % 6) as usize].to_owned(),
        format!("{}.{:02}", n % 10_000, n % 100),
        ["Open", "Shipped", "Closed"][(n % 3) as usize].to_owned(),
        notes,
        format!(
            "2024-{:02}-{:02} 10:{:02}:00",
            n % 12 + 1,
            n % 28 + 1,
            n % 60
        ),
        if n.is_multiple_of(13) {
            "vip,🚀".to_owned()
        } else {
            "standard".to_owned()
        },
        format!("{}", (n * 37) % 101),
    ]
}

fn all_columns() -> Vec<usize> {
    (0..COLUMNS.len()).collect()
}

fn build_zip(name: &str, first: u64, count: u64, columns: &[usize]) -> Bytes {
    let mut csv_bytes = Vec::with_capacity(count as usize * 16 * columns.len());
    {
        let mut w = csv::Writer::from_writer(&mut csv_bytes);
        let _ = w.write_record(columns.iter().map(|&i| COLUMNS[i]));
        for n in first..first + count {
            let values = row_values(n);
            let _ = w.write_record(columns.iter().map(|&i| &values[i]));
        }
        let _ = w.flush();
    }
    let mut out = std::io::Cursor::new(Vec::with_capacity(csv_bytes.len() / 3));
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        let _ = zip.start_file(name, options);
        let _ = zip.write_all(&csv_bytes);
        let _ = zip.finish();
    }
    Bytes::from(out.into_inner())
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
