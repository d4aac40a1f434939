//! HTTP plumbing: one reused connection pool per client, timeouts, a user agent, credentials bound
//! to the configured origin, retries with backoff, and replay after a refused token.
//!
//! - `client`: [`HttpClient`], its builder and options, traffic counters, retry events;
//! - `request`: [`RequestBuilder`], the retry loop and one attempt on the wire;
//! - `response`: [`Response`], [`StreamingResponse`], [`Headers`], JSON decoding;
//! - `auth`: [`Auth`], credentials that never show in `Debug`;
//! - `classify`: the vendor's reading of a reply ([`ErrorDecoder`]) and whether a failure is
//!   retried, replayed with a fresh token, or final.

mod auth;
mod classify;
mod client;
mod request;
mod response;

pub use auth::Auth;
pub use classify::{ErrorDecoder, VendorError};
pub use client::{HttpClient, HttpClientBuilder, HttpOptions, HttpStats, RetryEvent};
pub use request::{Method, RequestBuilder};
pub use response::{Headers, Response, StreamingResponse, decode_json};
