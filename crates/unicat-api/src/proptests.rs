//! Property tests: Unicat replies (login JWTs in the `Authorization` header, the result-code
//! envelope, sync-feed reports), whatever the vendor sends, decode or fail with a typed error;
//! never a panic.

use proptest::prelude::*;
use serde_json::Value;
use vendor_sim::arbitrary::config;
use vendor_sim::canned::{Canned, Reply};

use crate::{Client, ErrorKind, HttpOptions, RetryPolicy, SecretString};

const KEYS: &[&str] = &[
    "success",
    "result",
    "data",
    "code",
    "message",
    "info",
    "cursor",
    "cc_cursor",
    "items",
    "cursors",
    "job",
    "token",
    "status",
    "type",
    "progress",
    "output",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    vendor_sim::arbitrary::json_value(KEYS, &["jobs", "done", "queued", "0", "sync", ""])
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// Every reply, the login's included, is the canned one, with an arbitrary `Authorization`
/// header (the JWT the server hands out or rotates in).
#[test]
fn replies_and_tokens_decode_or_fail_typed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let status = prop::sample::select(vec![200u16, 400, 401, 403, 404, 429, 500, 503]);
    let jwt = prop::option::of(prop_oneof![
        ".{0,40}",
        "Bearer [A-Za-z0-9._-]{0,40}",
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]);
    // One client for every case (building one per case is slow): the JWT it adopted from an
    // earlier reply is part of the input too.
    let client = Client::builder()
        .project("p")
        .api_key(SecretString::from("k"))
        .base_url(sim.base_url())
        .http_options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap();
    proptest!(config(128), |(status in status, body in body(), jwt in jwt, cursor in any::<u64>(), which in any::<bool>())| {
        let mut reply = Reply::new(status, body.clone()).header("content-type", "application/json");
        if let Some(jwt) = &jwt {
            reply = reply.header("authorization", jwt.as_bytes());
        }
        canned.set(reply);
        let result = rt.block_on(async {
            if which {
                client.cc_cursor().await.map(drop)
            } else {
                client.jobs_since(cursor).await.map(drop)
            }
        });
        match result {
            Ok(()) => {
                prop_assert!((200..300).contains(&status));
                prop_assert!(serde_json::from_slice::<Value>(&body).is_ok());
            }
            Err(e) => prop_assert!(
                !matches!(e.kind(), ErrorKind::Config | ErrorKind::Storage | ErrorKind::Cancelled),
                "{:?}: {}", e.kind(), e
            ),
        }
    });
}
