//! Sessions: the API-key login and its init data, JWT checks, and rotation with a grace period.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::unicat::catalogue::schema_data;
use crate::unicat::feed::cc_cursor;
use crate::unicat::routes::{Sel, Ty, check_params, fail, ok, parse_body};
use crate::unicat::{Inner, Session, St, UnicatConfig};

pub(super) fn new_jwt(inner: &mut Inner, session: u64) -> String {
    let n: u64 = inner.rng.random();
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.s{session}.{n:016x}");
    inner.jwts.insert(jwt.clone(), (session, None));
    jwt
}

/// Checks the bearer JWT; returns the JWT to put in the reply's `Authorization` header (a
/// rotated or newer one), or the 401 reply.
pub(super) fn authorize(st: &Arc<St>, headers: &HeaderMap) -> Result<Option<String>, Response> {
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

pub(super) fn with_jwt(mut resp: Response, jwt: Option<String>) -> Response {
    if let Some(v) = jwt.and_then(|j| HeaderValue::from_str(&j).ok()) {
        resp.headers_mut().insert(header::AUTHORIZATION, v);
    }
    resp
}

pub(super) async fn auth(State(st): Sel, Path(project): Path<String>, body: Bytes) -> Response {
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
pub(super) const API_USER: &str = "u-api-0000";
/// The project owner's gid.
pub(super) const OWNER: &str = "u-owner-0000";

/// `result` of the login reply, shaped as docs.unicat.app/api/reference/p/auth shows it.
pub(super) fn login_result(cfg: &UnicatConfig, cc: u64) -> Value {
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
pub(super) fn login_data(cfg: &UnicatConfig) -> Value {
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
