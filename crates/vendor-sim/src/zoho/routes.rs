//! What the Creator routes share: the error reply, the owner/app check, the per-minute
//! allowances, and the access check of the status and download calls.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use crate::zoho::ZohoState;
use crate::zoho::session::authorize;

pub(super) type St = State<Arc<ZohoState>>;

pub(super) fn creator_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

pub(super) fn check_app(st: &ZohoState, owner: &str, app: &str) -> Result<(), Response> {
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
pub(super) fn within(recent: &mut Vec<Instant>, per_minute: u32) -> bool {
    let now = Instant::now();
    recent.retain(|t| now.saturating_duration_since(*t) < Duration::from_secs(60));
    if recent.len() >= per_minute as usize {
        return false;
    }
    recent.push(now);
    true
}

/// Checks the app and a READ token for a status or download call; the report's row count.
pub(super) fn read_access(
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
