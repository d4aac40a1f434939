//! Property tests: Zefort replies (task, task pages, contract pages), whatever the vendor sends,
//! decode or fail with a typed error carrying the status; never a panic.

use proptest::prelude::*;
use serde_json::Value;
use vendor_sim::arbitrary::config;
use vendor_sim::canned::{Canned, Reply};

use crate::{Client, ContractQuery, ErrorKind, HttpOptions, RetryPolicy, SecretString, TaskId};

const KEYS: &[&str] = &[
    "id",
    "status",
    "type",
    "progress",
    "created_at",
    "results",
    "count",
    "next",
    "previous",
    "detail",
    "errors",
    "title",
    "tags",
    "acknowledged",
    "data",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    vendor_sim::arbitrary::json_value(
        KEYS,
        &[
            "done",
            "running",
            "failed",
            "task_1",
            "ct_1",
            "2024-01-01",
            "",
        ],
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// One property per decoder, checked against the same loopback server.
#[test]
fn replies_decode_or_fail_typed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let client = Client::builder()
        .api_key(SecretString::from("k"))
        .base_url(&sim.base_url())
        .http_options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap();
    let status = prop::sample::select(vec![200u16, 201, 400, 401, 404, 422, 429, 500, 503]);
    proptest!(config(256), |(status in status, body in body(), which in 0u8..3)| {
        canned.set(Reply::new(status, body.clone()).header("content-type", "application/json"));
        let result = rt.block_on(async {
            match which {
                0 => client.task(&TaskId::from("task_1")).await.map(drop),
                1 => client.tasks_page(1, Some(10)).await.map(drop),
                _ => client.contracts_page(&ContractQuery::default(), 1, None).await.map(drop),
            }
        });
        let json = serde_json::from_slice::<Value>(&body).is_ok();
        match result {
            Ok(()) => prop_assert!((200..300).contains(&status) && json),
            Err(e) => {
                if (200..300).contains(&status) && !json {
                    prop_assert_eq!(e.kind(), ErrorKind::Decode);
                }
                if !(200..300).contains(&status) {
                    prop_assert_eq!(e.status(), Some(status));
                }
            }
        }
    });
}
