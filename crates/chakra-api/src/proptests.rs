//! Property tests: ChakraHQ replies (envelopes, job looks, entry pages) and the mapping of
//! entries to submitted items, whatever the vendor sends; typed errors, never a panic, and
//! every submitted item accounted for.

use futures::StreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use vendor_sim::arbitrary::{config, runtime};
use vendor_sim::canned::{Canned, Reply};

use crate::bulk::map_entries;
use crate::job::{EntryCounts, JobEntry, JobId};
use crate::model::ProcessUpdate;
use crate::{Client, ErrorKind, RetryPolicy, SecretString};

const KEYS: &[&str] = &[
    "_data",
    "_meta",
    "_errors",
    "id",
    "completionStatus",
    "statusMessage",
    "completedAt",
    "bjEntryCompletionStatusVsCount",
    "SUCCESS",
    "success",
    "ERROR",
    "INVALID",
    "NOT_STARTED",
    "status",
    "message",
    "index",
    "position",
    "payload",
    "code",
    "nextPage",
    "processId",
];

fn json_value() -> impl Strategy<Value = Value> {
    vendor_sim::arbitrary::json_value(
        KEYS,
        &[
            "SUCCESS",
            "ERROR",
            "VALIDATION",
            "x",
            "",
            "/next",
            "18446744073709551615",
        ],
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), json_value(), json_value()).prop_map(|(d, m, e)| {
            json!({"_data": d, "_meta": m, "_errors": e})
                .to_string()
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Entry counts of any shape (absurd numbers included) add up without overflowing.
    #[test]
    fn entry_counts_never_overflow(meta in json_value(), counts in prop::collection::btree_map(
        prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
        prop_oneof![any::<u64>().prop_map(|n| json!(n)), Just(json!(u64::MAX)), Just(json!("18446744073709551615"))],
        0..6,
    )) {
        for m in [meta, json!({"bjEntryCompletionStatusVsCount": counts})] {
            let c = EntryCounts::from_meta(Some(&m));
            prop_assert!(c.total() >= c.finished());
            prop_assert!(c.finished() >= c.success);
        }
    }

    /// Whatever entries the job reports, every submitted item gets exactly one outcome.
    #[test]
    fn every_item_gets_an_outcome(n in 0usize..8, entries in prop::collection::vec(json_value(), 0..12)) {
        let items: Vec<(u64, ProcessUpdate)> = (0..n)
            .map(|i| (i as u64, ProcessUpdate::by_key("processId", json!(i))))
            .collect();
        let entries: Vec<JobEntry> = entries.into_iter().map(JobEntry::from_raw).collect();
        prop_assert_eq!(map_entries(&items, &entries).len(), n);
    }
}

fn client(base: &str) -> Client {
    Client::builder()
        .token(SecretString::from("t"))
        .base_url(base)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// A job look from any reply: only a 2xx JSON envelope with `_data` and no `_errors` decodes.
#[test]
fn job_status_replies_never_panic() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let client = client(&sim.base_url());
    let status = prop::sample::select(vec![200u16, 201, 400, 401, 404, 413, 429, 500, 503]);
    proptest!(config(256), |(status in status, body in body())| {
        canned.set(Reply::new(status, body.clone()).header("content-type", "application/json"));
        match rt.block_on(client.job_status(&JobId::new("1"))) {
            Ok(_) => {
                prop_assert!((200..300).contains(&status));
                let v: Value = serde_json::from_slice(&body).unwrap();
                prop_assert!(v.get("_data").is_some());
                prop_assert!(v["_errors"].as_array().is_none_or(Vec::is_empty));
            }
            Err(e) => {
                let json = serde_json::from_slice::<Value>(&body).is_ok();
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

/// Entry pages from any reply: the stream ends (a repeated next-page path is an error, not a
/// loop), and a last page yields exactly its entries.
#[test]
fn job_entries_replies_never_panic_or_loop() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let client = client(&sim.base_url());
    let status = prop::sample::select(vec![200u16, 400, 500]);
    proptest!(config(128), |(status in status, body in body())| {
        canned.set(Reply::new(status, body.clone()).header("content-type", "application/json"));
        let out: Vec<_> = rt.block_on(client.job_entries(&JobId::new("1")).take(1000).collect());
        prop_assert!(out.len() < 1000);
        let errors = out.iter().filter(|r| r.is_err()).count();
        prop_assert!(errors <= 1);
        if errors == 0 {
            let v: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(Some(out.len()), v["_data"].as_array().map(Vec::len));
        }
    });
}

/// `bjEntryCompletionStatusVsCount` with two spellings of one status at u64::MAX overflowed.
#[test]
fn entry_counts_at_u64_max_saturate() {
    let meta =
        json!({"bjEntryCompletionStatusVsCount": {"SUCCESS": u64::MAX, "success": 1, "ERROR": 5}});
    let c = EntryCounts::from_meta(Some(&meta));
    assert_eq!(c.success, u64::MAX);
    assert_eq!(c.total(), u64::MAX);
}
