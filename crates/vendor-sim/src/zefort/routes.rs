//! The HTTP surface shared by every route: DRF-style error replies, query and body checks
//! against the documented parameters, and the paged list envelope.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::zefort::ZState;

pub(super) type St = State<Arc<ZState>>;

pub(super) fn bad_request(body: Value) -> Response {
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(super) async fn not_found() -> Response {
    not_found_reply()
}

pub(super) fn not_found_reply() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": "Not found." })),
    )
        .into_response()
}

pub(super) fn query_map(raw: Option<String>) -> BTreeMap<String, String> {
    url_decode_pairs(raw.as_deref().unwrap_or(""))
        .into_iter()
        .collect()
}

pub(super) fn url_decode_pairs(text: &str) -> Vec<(String, String)> {
    let Ok(uri) = format!("/?{text}").parse::<axum::http::Uri>() else {
        return Vec::new();
    };
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Slices `items` into one page and wraps it in the vendor's envelope.
pub(super) fn paged(
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

pub(super) fn enc(s: &str) -> String {
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
pub(super) fn shuffle(items: &mut [Value], seed: u64) {
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
pub(super) fn known_params(
    query: &BTreeMap<String, String>,
    allowed: &[&str],
) -> Result<(), Box<Response>> {
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
pub(super) fn known_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Box<Response>> {
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

pub(super) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
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
