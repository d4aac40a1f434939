//! Identifiers, the `{success, result, data}` envelope, and the vendor's error codes.

use std::sync::Arc;

use bulk_common::{Error, ErrorDecoder, ErrorKind, Response, Result, VendorError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

bulk_common::id_type!(
    /// A Unicat gid (a UUID string naming a project, record, asset or schema item).
    Gid
);

impl From<&String> for Gid {
    fn from(s: &String) -> Self {
        Gid::new(s.as_str())
    }
}

impl From<&Gid> for Gid {
    fn from(g: &Gid) -> Self {
        g.clone()
    }
}

bulk_common::id_type!(
    /// The token of a background job (`result["job.token"]` of a bulk mutation, and the
    /// `data_key` of the job's reports in the sync feed).
    JobToken
);

/// The vendor's error codes (`result.code` of a `success: false` reply), read from an [`Error`]
/// with [`ApiCode::of`].
///
/// ```
/// use unicat_api::ApiCode;
/// assert_eq!(ApiCode::from_code(1006), ApiCode::BulkSelection);
/// assert_eq!(ApiCode::from_code(401), ApiCode::Http(401));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiCode {
    /// 1000: an unexpected error.
    Unexpected,
    /// 1001: validation failed (details in `info`).
    Validation,
    /// 1002: the search backend failed.
    SearchBackend,
    /// 1003: an external process failed.
    ExternalProcess,
    /// 1004: the invitation is invalid.
    InviteInvalid,
    /// 1005: an Excel import failed.
    ExcelImport,
    /// 1006: the bulk selection is invalid.
    BulkSelection,
    /// An HTTP-class code (400, 401, 403, 422, 500, 501), equal to the HTTP status.
    Http(u16),
    /// A code this crate does not know yet.
    Other(i64),
}

impl ApiCode {
    /// The code for a numeric `result.code`.
    pub fn from_code(code: i64) -> Self {
        match code {
            1000 => ApiCode::Unexpected,
            1001 => ApiCode::Validation,
            1002 => ApiCode::SearchBackend,
            1003 => ApiCode::ExternalProcess,
            1004 => ApiCode::InviteInvalid,
            1005 => ApiCode::ExcelImport,
            1006 => ApiCode::BulkSelection,
            c @ 100..=599 => ApiCode::Http(c as u16),
            c => ApiCode::Other(c),
        }
    }

    /// The vendor code carried by `err`, if the error came from a `success: false` reply.
    pub fn of(err: &Error) -> Option<Self> {
        err.vendor_code()?
            .parse::<i64>()
            .ok()
            .map(ApiCode::from_code)
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    success: Option<bool>,
    #[serde(default)]
    result: Value,
}

/// Turns every `success: false` reply (whatever its HTTP status) into an error carrying
/// `result.code`, `result.message` and `result.info`.
pub(crate) fn error_decoder() -> ErrorDecoder {
    Arc::new(|resp: &Response| decode_vendor_error(resp.status(), resp.body()))
}

fn decode_vendor_error(status: u16, body: &[u8]) -> Option<VendorError> {
    let env: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    if env.success != Some(false) {
        return None;
    }
    let code = match env.result.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let message = env
        .result
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut err = VendorError::new(code.map(|c| c.to_string()), message);
    if let Some(info) = env.result.get("info").filter(|i| !i.is_null()) {
        err = err.details(info.clone());
    }
    let kind = match code.map(ApiCode::from_code) {
        Some(ApiCode::Validation | ApiCode::BulkSelection | ApiCode::Http(400)) => {
            Some(ErrorKind::InvalidInput)
        }
        Some(ApiCode::Http(401 | 403)) => Some(ErrorKind::Auth),
        _ if (200..300).contains(&status) => Some(ErrorKind::Http),
        _ => None,
    };
    if let Some(kind) = kind {
        err = err.kind(kind);
    }
    // A refused request (4xx other than 401, which is cured by a fresh login, and 408/429) will
    // be refused again.
    if (400..500).contains(&status) && ![401, 408, 429].contains(&status) {
        err = err.retryable(false);
    }
    Some(err)
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
    #[serde(default)]
    data: Value,
}

/// Reads `result` (as `T`) and the `data` side-store of a successful reply.
pub(crate) fn envelope<T: DeserializeOwned>(resp: &Response) -> Result<(T, Value)> {
    let env: Envelope<T> = resp.json()?;
    Ok((env.result, env.data))
}

/// The `result["job.token"]` of a bulk mutation.
#[derive(Deserialize)]
pub(crate) struct JobTokenResult {
    #[serde(rename = "job.token")]
    pub(crate) token: JobToken,
}

/// Converts a decode error about a missing field into a clearer one.
pub(crate) fn missing(what: &str) -> Error {
    Error::new(ErrorKind::Decode, format!("the reply has no {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_false_becomes_a_vendor_error_even_with_http_200() {
        let body = br#"{"success":false,"result":{"code":1006,"message":"bad selection","info":{"entry":1}},"data":{}}"#;
        assert!(decode_vendor_error(200, body).is_some());
        assert!(decode_vendor_error(200, br#"{"success":true,"result":{}}"#).is_none());
        assert!(decode_vendor_error(502, b"<html>").is_none());
    }
}
