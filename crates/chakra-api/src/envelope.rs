//! The `{ "_data", "_meta", "_errors" }` envelope of every reply, and the error decoder that
//! turns a non-empty `_errors` (even on HTTP 2xx) into a typed error.

use std::sync::Arc;

use bulk_common::{Error, ErrorDecoder, ErrorKind, Response, VendorError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Result;

/// A reply: the payload, the metadata and the errors.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Envelope<T> {
    /// The payload.
    #[serde(rename = "_data")]
    pub data: T,
    /// Metadata (paging, counts), when the endpoint sends any.
    #[serde(rename = "_meta", default)]
    pub meta: Option<Value>,
    /// Errors; the client has already turned a non-empty list into an error, so a decoded
    /// envelope normally has none.
    #[serde(rename = "_errors", default, deserialize_with = "null_as_empty")]
    pub errors: Vec<Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default())
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Decodes a reply's envelope.
    pub(crate) fn from_response(resp: &Response, what: &str) -> Result<Self> {
        // serde's derive would also read the envelope from a JSON array (`[{}]`); it is always
        // an object.
        let first = resp.body().iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("decoding {what}: the reply is not a JSON object"),
            )
            .with_body(resp.body()));
        }
        resp.json::<Envelope<T>>()
            .map_err(|e| e.context(format!("decoding {what}")))
    }
}

/// Reads the code and message of an `_errors` item, whose shape is undocumented: an object with
/// `code`/`errorCode`/`type` and `message`/`msg`/`detail`, or a bare string.
pub(crate) fn error_parts(item: &Value) -> (Option<String>, Option<String>) {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match item {
        Value::Object(m) => {
            let code = ["code", "errorCode", "type", "name"]
                .iter()
                .find_map(|k| m.get(*k).and_then(text));
            let message = ["message", "msg", "detail", "description", "error"]
                .iter()
                .find_map(|k| m.get(*k).and_then(text));
            (code, message)
        }
        Value::String(s) => (None, Some(s.clone())),
        Value::Null => (None, None),
        other => (None, Some(other.to_string())),
    }
}

/// True when an error says the request was too large: HTTP 413 only. ChakraHQ documents no
/// size error code, and a word such as "payload" in a message is not evidence: a validation
/// error that mentions it must not make the client split and resend a chunk.
pub(crate) fn is_size_error(err: &crate::Error) -> bool {
    err.status() == Some(413)
}

/// The decoder given to the HTTP client: `_errors` non-empty means failure, whatever the status.
pub(crate) fn decoder() -> ErrorDecoder {
    Arc::new(|resp: &Response| {
        let body: Value = serde_json::from_slice(resp.body()).ok()?;
        let errors = body.get("_errors")?.as_array()?;
        let first = errors.first()?;
        let (code, message) = error_parts(first);
        let message = if errors.len() > 1 {
            Some(format!(
                "{} (and {} more errors)",
                message.unwrap_or_default(),
                errors.len() - 1
            ))
        } else {
            message
        };
        let mut vendor =
            VendorError::new(code.clone(), message).details(Value::Array(errors.clone()));
        let status = resp.status();
        if (200..300).contains(&status) {
            // A failure reported with HTTP 2xx: nothing was accepted, and repeating the same
            // request would only fail again.
            vendor = vendor.retryable(false);
            let code = code.unwrap_or_default().to_ascii_uppercase();
            if code.contains("VALIDATION") || code.contains("INVALID") || code.contains("BAD") {
                vendor = vendor.kind(ErrorKind::InvalidInput);
            }
        }
        Some(vendor)
    })
}
