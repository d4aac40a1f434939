//! A vendor-neutral simulator: items, an OAuth token endpoint, a protected route, jobs that
//! progress over time, and cursor pages. It exercises `bulk-common` before (and beside) the
//! vendor simulators, and backs the overhead benchmark.
//!
//! | Route | Behaviour |
//! |---|---|
//! | `GET /items/{id}` | `{"id": id, "name": "item-<id>"}` |
//! | `POST /items` | stores the JSON body, `201 {"id": n, "item": body}`; counter `items.created` |
//! | `POST /oauth/token` | refresh-token grant (form body or query); counter `oauth.refreshes` |
//! | `GET /protected` | `Authorization: Bearer <live token>` or 401 |
//! | `POST /jobs` | `{"total", "duration_ms", "fail"?}` → `{"id"}`; counter `jobs.created` |
//! | `GET /jobs/{id}` | `{"id", "status": running/done/failed, "total", "remaining", "error"?}` |
//! | `GET /download/{size}` | `size` bytes of `0123456789` repeated, as `application/octet-stream` |
//! | `GET /pages?cursor=&size=` | `{"items": [..], "next": cursor or null}` over `page_items` numbers |

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::server::{SimContext, Simulator};

/// Settings of the generic simulator.
#[derive(Debug, Clone)]
pub struct GenericConfig {
    /// The OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// The OAuth client secret the token endpoint accepts.
    pub client_secret: String,
    /// The refresh token the token endpoint accepts.
    pub refresh_token: String,
    /// Lifetime of minted access tokens.
    pub token_ttl: Duration,
    /// How many numbers `/pages` serves.
    pub page_items: u64,
}

impl Default for GenericConfig {
    fn default() -> Self {
        GenericConfig {
            client_id: "sim-client".into(),
            client_secret: "sim-secret-not-real".into(),
            refresh_token: "sim-refresh-not-real".into(),
            token_ttl: Duration::from_secs(3600),
            page_items: 250,
        }
    }
}

/// Handle on the generic simulator's state, for tests that change it while it runs.
#[derive(Clone)]
pub struct Generic {
    state: Arc<GenericState>,
}

impl std::fmt::Debug for Generic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generic").finish_non_exhaustive()
    }
}

struct GenericState {
    cfg: GenericConfig,
    ctx: SimContext,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, Instant>,
    jobs: HashMap<String, SimJob>,
    items: HashMap<u64, Value>,
    throttle_refresh: bool,
}

struct SimJob {
    created: Instant,
    total: u64,
    duration: Duration,
    fail: bool,
}

impl Generic {
    /// A simulator with `cfg`, reporting to `ctx`'s counters.
    pub fn new(ctx: SimContext, cfg: GenericConfig) -> Self {
        Generic {
            state: Arc::new(GenericState {
                cfg,
                ctx,
                next_id: AtomicU64::new(1),
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/items", post(create_item))
            .route("/items/{id}", get(get_item))
            .route("/oauth/token", post(token))
            .route("/protected", get(protected))
            .route("/jobs", post(create_job))
            .route("/jobs/{id}", get(job_status))
            .route("/pages", get(pages))
            .route("/download/{size}", get(download))
            .with_state(self.state.clone())
    }

    /// Makes every access token minted so far invalid (as a vendor revoking them would).
    pub fn revoke_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// Makes the token endpoint answer like a throttled vendor (HTTP 200, OAuth error body).
    pub fn throttle_refresh(&self, on: bool) {
        self.state.lock().throttle_refresh = on;
    }

    /// The items created through `POST /items`.
    pub fn items(&self) -> Vec<Value> {
        let inner = self.state.lock();
        let mut ids: Vec<_> = inner.items.keys().copied().collect();
        ids.sort_unstable();
        ids.iter().map(|id| inner.items[id].clone()).collect()
    }
}

impl Simulator for Generic {
    type Config = GenericConfig;

    fn build(ctx: SimContext, cfg: GenericConfig) -> (Router, Self) {
        let sim = Generic::new(ctx, cfg);
        (sim.router(), sim)
    }
}

impl GenericState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type St = State<Arc<GenericState>>;

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

async fn get_item(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "id": id, "name": format!("item-{id}") }))
}

async fn create_item(State(st): St, body: Bytes) -> Response {
    let Ok(item) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let id = st.next_id.fetch_add(1, Ordering::Relaxed);
    st.lock().items.insert(id, item.clone());
    st.ctx.counters.incr("items.created");
    (StatusCode::CREATED, Json(json!({ "id": id, "item": item }))).into_response()
}

async fn token(State(st): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let mut params: HashMap<String, String> = HashMap::new();
    for source in [query.unwrap_or_default().into_bytes(), body.to_vec()] {
        params.extend(url_pairs(&source));
    }
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if st.lock().throttle_refresh {
        return Json(json!({
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. Please try again after some time."
        }))
        .into_response();
    }
    if get("grant_type") != "refresh_token" {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let cfg = &st.cfg;
    if get("client_id") != cfg.client_id || get("client_secret") != cfg.client_secret {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if get("refresh_token") != cfg.refresh_token {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let n = st.next_id.fetch_add(1, Ordering::Relaxed);
    let token = format!("sim-access-{n}");
    st.lock()
        .tokens
        .insert(token.clone(), Instant::now() + cfg.token_ttl);
    st.ctx.counters.incr("oauth.refreshes");
    Json(json!({
        "access_token": token,
        "expires_in": cfg.token_ttl.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

fn url_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    serde_urlencoded_pairs(&text)
}

/// Minimal `application/x-www-form-urlencoded` decoding through axum's `Query` machinery.
fn serde_urlencoded_pairs(text: &str) -> Vec<(String, String)> {
    let uri = format!("/?{text}");
    let Ok(uri) = uri.parse::<axum::http::Uri>() else {
        return Vec::new();
    };
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

async fn protected(State(st): St, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let live = token.is_some_and(|t| {
        st.lock()
            .tokens
            .get(t)
            .is_some_and(|exp| *exp > Instant::now())
    });
    if live {
        Json(json!({ "ok": true })).into_response()
    } else {
        let mut resp = error(StatusCode::UNAUTHORIZED, "invalid_token");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"sim\""),
        );
        resp
    }
}

#[derive(Deserialize)]
struct NewJob {
    total: u64,
    duration_ms: u64,
    #[serde(default)]
    fail: bool,
}

async fn create_job(State(st): St, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewJob>(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_job");
    };
    let id = format!("job-{}", st.next_id.fetch_add(1, Ordering::Relaxed));
    st.lock().jobs.insert(
        id.clone(),
        SimJob {
            created: Instant::now(),
            total: new.total,
            duration: Duration::from_millis(new.duration_ms),
            fail: new.fail,
        },
    );
    st.ctx.counters.incr("jobs.created");
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn job_status(State(st): St, Path(id): Path<String>) -> Response {
    let inner = st.lock();
    let Some(job) = inner.jobs.get(&id) else {
        return error(StatusCode::NOT_FOUND, "no_such_job");
    };
    let elapsed = job.created.elapsed();
    let finished = elapsed >= job.duration;
    let remaining = if finished || job.duration.is_zero() {
        0
    } else {
        let frac = elapsed.as_secs_f64() / job.duration.as_secs_f64();
        job.total - ((job.total as f64 * frac).floor() as u64).min(job.total)
    };
    let status = match (finished, job.fail) {
        (false, _) => "running",
        (true, false) => "done",
        (true, true) => "failed",
    };
    let mut body =
        json!({ "id": id, "status": status, "total": job.total, "remaining": remaining });
    if finished && job.fail {
        body["error"] = json!("simulated job failure");
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    size: Option<u64>,
}

async fn pages(State(st): St, Query(q): Query<PageQuery>) -> Response {
    let start = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => match c.strip_prefix("c-").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "bad_cursor"),
        },
    };
    let size = q.size.unwrap_or(100).clamp(1, 1000);
    let end = (start + size).min(st.cfg.page_items);
    let items: Vec<u64> = (start..end).collect();
    let next = (end < st.cfg.page_items).then(|| format!("c-{end}"));
    st.ctx.counters.add("pages.items", items.len() as u64);
    Json(json!({ "items": items, "next": next })).into_response()
}

async fn download(Path(size): Path<usize>) -> Response {
    let size = size.min(64 << 20);
    let body: Vec<u8> = (0..size).map(|i| b'0' + (i % 10) as u8).collect();
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}
