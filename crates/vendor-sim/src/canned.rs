//! A server that answers every request with one reply set by the test: arbitrary status,
//! headers and body bytes. Property tests use it to feed garbage to a client's decoders through
//! its public API.
//!
//! ```
//! use vendor_sim::canned::{Canned, Reply};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (sim, canned) = Canned::start().await?;
//! canned.set(Reply::new(200, b"not json".to_vec()).header("content-type", "application/json"));
//! println!("every request to {} now gets that reply", sim.base_url());
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use crate::server::{SimBuilder, SimContext, SimHandle, Simulator};

/// One reply: status, headers and body, sent as given (invalid header names or values are
/// skipped, an invalid status becomes 500).
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Reply {
    /// A reply with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header (its value as raw bytes).
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Handle on a running canned server: [`Canned::set`] changes the reply of the next requests.
#[derive(Debug, Clone)]
pub struct Canned {
    reply: Arc<Mutex<Reply>>,
}

impl Canned {
    /// Starts a canned server on a random loopback port, answering `200` with an empty body
    /// until [`Canned::set`] is called.
    pub async fn start() -> std::io::Result<(SimHandle, Canned)> {
        SimBuilder::new("canned")
            .serve::<Canned>(Reply::new(200, Vec::new()))
            .await
    }

    /// Sets the reply to every following request.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(|e| e.into_inner()) = reply;
    }
}

/// The configuration is the first reply, sent until [`Canned::set`] changes it.
impl Simulator for Canned {
    type Config = Reply;

    fn build(_ctx: SimContext, first: Reply) -> (Router, Self) {
        let canned = Canned {
            reply: Arc::new(Mutex::new(first)),
        };
        let router = Router::new().fallback(answer).with_state(canned.clone());
        (router, canned)
    }
}

async fn answer(State(canned): State<Canned>) -> Response {
    let reply = canned
        .reply
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_bytes(&value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}
