//! Shared plumbing for the workspace's SaaS bulk-API clients.
//!
//! Every vendor crate of the workspace is built on these pieces, and re-exports [`Error`] and
//! [`Result`]. Nothing here knows a vendor: a vendor's rules reach it through hooks (error
//! decoders, OAuth reply decoders, route classes), and a tidy test keeps it so.
//!
//! - [`HttpClient`]: one connection pool per client, timeouts on every call, a `User-Agent`,
//!   credentials sent only to the configured origin over HTTPS (plain HTTP only on loopback),
//!   retries with capped, jittered backoff that honour `Retry-After`, and no blind re-sending
//!   of requests that are not idempotent ([`ErrorKind::AmbiguousOutcome`]).
//! - [`poll`]: the one job-polling driver and the one waiting surface every vendor's
//!   `Client::wait` returns ([`poll::JobWait`], [`poll::WaitOptions`]): deadlines, cancellation,
//!   progress events, and intervals that follow the job's progress.
//! - [`token`]: access tokens refreshed before expiry, once for all callers, shared through a
//!   [`TokenStore`] between clients and processes.
//! - [`paginate`]: cursor or page-number pagination as lazy streams.
//! - [`rate`]: client-side rate control: fixed limits per route class, an adaptive limit that
//!   follows the vendor's throttling, and limits shared by a fleet through Redis.
//! - [`throttle`]: client-side rate limits, to stay under a vendor's published request rates.
//! - [`id_type!`] and [`open_enum!`]: vendor ids and open status enums, one shape in every
//!   crate.
//! - [`Error`]: one opaque error whose [`ErrorKind`] a caller can act on.
//!
//! ```no_run
//! use std::time::Duration;
//! use bulk_common::{Auth, HttpClient, HttpOptions, Method, RetryPolicy, SecretString};
//!
//! # async fn run() -> bulk_common::Result<()> {
//! let client = HttpClient::builder("my-client/0.1")
//!     .base_url("https://api.example.com")
//!     .auth(Auth::bearer(SecretString::from("token"))?)
//!     .options(HttpOptions::default().retry(RetryPolicy::default().max_attempts(4)))
//!     .build()?;
//! let job: serde_json::Value = client
//!     .request(Method::Get, "/v1/jobs/42")
//!     .timeout(Some(Duration::from_secs(20)))
//!     // Decoded inside the retry loop: an unreadable reply to a GET is read again.
//!     .send_json()
//!     .await?;
//! # let _ = job; Ok(()) }
//! ```

mod base_url;
pub mod clock;
mod error;
mod http;
mod macros;
pub mod paginate;
pub mod poll;
#[cfg(test)]
mod proptests;
pub mod rate;
#[cfg(feature = "redis")]
mod redis_conn;
mod retry;
pub mod throttle;
pub mod token;

pub use base_url::{BaseUrl, encode_segment};
pub use error::{BODY_EXCERPT_CHARS, Error, ErrorKind, Result};
pub use http::{
    Auth, ErrorDecoder, Headers, HttpClient, HttpClientBuilder, HttpOptions, HttpStats, Method,
    RequestBuilder, Response, RetryEvent, StreamingResponse, VendorError, decode_json,
};
pub use retry::{Idempotency, Jitter, RetryPolicy, parse_retry_after};
pub use token::{TokenSource, TokenStore};

#[doc(hidden)]
pub use macros::__private;
pub use secrecy::{ExposeSecret, SecretString};
pub use tokio_util::sync::CancellationToken;
