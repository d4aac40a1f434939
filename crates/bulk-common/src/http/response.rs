//! What comes back: headers, a whole response, a streamed one, and JSON decoding.

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};

/// Response headers.
#[derive(Clone, Default)]
pub struct Headers {
    pub(super) map: HeaderMap,
}

impl Headers {
    /// The first value of header `name` (case-insensitive), if present and valid text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether header `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold rotated tokens; names are enough to diagnose.
        f.debug_list().entries(self.map.keys()).finish()
    }
}

/// A complete HTTP response, body read into memory.
#[derive(Debug, Clone)]
pub struct Response {
    pub(super) status: u16,
    pub(super) headers: Headers,
    pub(super) body: Bytes,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Consumes the response, returning the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Decodes the body as JSON into `T`; a mismatch is an [`ErrorKind::Decode`] error carrying
    /// an excerpt of the body. [`RequestBuilder::send_json`](crate::RequestBuilder::send_json)
    /// decodes inside the retry loop.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        decode_json(&self.body)
    }
}

/// Decodes JSON bytes into `T`; a mismatch is an [`ErrorKind::Decode`] error carrying an excerpt
/// of the body (serde's explanation is its source, kept out of `Display`).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the reply is cut off (incomplete JSON)".to_owned(),
            serde_json::error::Category::Syntax => "the reply is not valid JSON".to_owned(),
            // serde names the field or the type by its short name, never a path.
            _ => format!("the reply is JSON, but not in the documented shape ({e})"),
        };
        Error::decode(what, e).with_body(body)
    })
}

/// A response whose body is read as a stream of chunks (downloads).
pub struct StreamingResponse {
    pub(super) status: u16,
    pub(super) headers: Headers,
    pub(super) stream: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl StreamingResponse {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body as a stream of chunks. A broken or stalled transfer ends with an error (the idle
    /// read timeout applies between chunks).
    pub fn into_stream(self) -> Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>> {
        self.stream
    }
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

pub(super) fn unreachable_streaming() -> Result<Response> {
    Err(Error::new(
        ErrorKind::Decode,
        "internal: a buffered request produced a stream",
    ))
}

pub(super) enum Sent {
    Full(Response),
    Streaming(StreamingResponse),
}

impl Sent {
    pub(super) fn status(&self) -> u16 {
        match self {
            Sent::Full(r) => r.status,
            Sent::Streaming(r) => r.status,
        }
    }
}
