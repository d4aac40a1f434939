//! Process reads: one process by id, and the list endpoint with its `where` query.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::chakra::routes::{St, bad_request, check_auth, envelope_error, ok, resolve_proc};

pub(super) async fn get_process(
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

pub(super) async fn list(
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
pub(super) fn matches(process: &Value, query: &Value) -> bool {
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

pub(super) fn compare_rhs(value: &Value, rhs: &Value) -> bool {
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
