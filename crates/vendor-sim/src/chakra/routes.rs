//! The HTTP surface shared by every route: the `{_data, _meta, _errors}` envelope, the bearer
//! check, and resolving a procedure from its path key.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::chakra::{ChakraState, Inner};

pub(super) type St = State<Arc<ChakraState>>;

pub(super) fn bad_request(message: &str) -> Response {
    envelope_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

pub(super) fn envelope_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "_data": null, "_meta": {}, "_errors": [{ "code": code, "message": message }] })),
    )
        .into_response()
}

pub(super) fn ok(data: Value, meta: Value) -> Response {
    Json(json!({ "_data": data, "_meta": meta, "_errors": [] })).into_response()
}

pub(super) fn check_auth(st: &ChakraState, headers: &HeaderMap) -> Option<Response> {
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
pub(super) fn resolve_proc(inner: &Inner, key: &str) -> Option<String> {
    if inner.procedures.contains_key(key) {
        return Some(key.to_owned());
    }
    inner.proc_ids.get(key).cloned()
}
