//! Authentication: HTTP Basic with the API key as user and an empty password, and the 401 reply.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use crate::zefort::ZState;

impl ZState {
    /// Checks HTTP Basic: the key as user, an empty password.
    pub(super) fn authorized(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.cfg.api_key))
        );
        match headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v == expected => Ok(()),
            Some(_) => Err(Box::new(unauthorized("Invalid username/password."))),
            None => Err(Box::new(unauthorized(
                "Authentication credentials were not provided.",
            ))),
        }
    }
}

pub(super) fn unauthorized(detail: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, Json(json!({ "detail": detail }))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"api\""),
    );
    r
}
