//! The accounts token endpoint (refresh grant, mint cap, Zoho's "Access Denied") and the
//! `Zoho-oauthtoken` check.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use crate::zoho::routes::{St, creator_error};
use crate::zoho::{SimToken, ZohoState};

pub(super) fn url_params(query: Option<String>, body: &[u8]) -> HashMap<String, String> {
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

pub(super) async fn token(State(st): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
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
pub(super) fn authorize(st: &ZohoState, headers: &HeaderMap, create: bool) -> Result<(), Response> {
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
