//! Exact request shapes (httpmock, real time): the bulk PATCH, job polling and entry paging,
//! the list endpoint, `_errors` on 2xx, configuration and secret hygiene.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use chakra_api::{
    Client, EntryStatus, ErrorKind, JobHandle, JobId, PollPolicy, ProcessStatus, ProcessUpdate,
    Query, RetryPolicy, SecretString, Timestamp,
};
use futures::TryStreamExt;
use httpmock::prelude::*;
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "tok-3f9a-do-not-leak";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .base_url(server.base_url())
        .token(SecretString::from(TOKEN))
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_bulk_patch_sends_the_nested_form_with_bearer_auth() -> TestResult {
    let server = MockServer::start_async().await;
    let due = SystemTime::UNIX_EPOCH + Duration::from_millis(1_616_253_910_842);
    let mock = server
        .mock_async(|when, then| {
            when.method("PATCH")
                .path("/v1/ext/procedure/tele%20sales/process")
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .json_body(json!({"processes": [
                    {"id": "6f1c-1", "update": {"status": "COMPLETED", "nextActionAt": 1_616_253_910_842i64}},
                    {"phone_number": "+91 98", "update": {
                        "data": {"city": "Pune", "score": 3},
                        "state": "IN_PROGRESS", "assignedTo": "asha", "isDeleted": false
                    }},
                ]}));
            then.status(200).json_body(json!({
                "_data": {"id": "job-1", "createdAt": 1, "completedAt": 0, "completionStatus": "IN_PROGRESS"},
                "_meta": {}, "_errors": []
            }));
        })
        .await;
    let updates = vec![
        ProcessUpdate::by_id("6f1c-1")
            .status(ProcessStatus::Completed)
            .next_action_at(due),
        ProcessUpdate::by_key("phone_number", "+91 98")
            .data("city", "Pune")
            .data("score", 3)
            .state("IN_PROGRESS")
            .assigned_to("asha")
            .deleted(false),
    ];
    let job = client(&server)
        .submit_updates("tele sales", &updates)
        .await?;
    assert_eq!(job, JobHandle::new("job-1", 2));
    mock.assert_async().await;
    Ok(())
}

#[test]
fn the_flat_doc_form_and_string_timestamps_are_read_and_resent_nested() -> TestResult {
    let item: ProcessUpdate = serde_json::from_value(json!({
        "lead_id": 42, "state": "NEW", "update": {"nextActionAt": "1616253910842"}
    }))?;
    assert!(item.validate().is_ok());
    assert_eq!(
        serde_json::to_value(&item)?,
        json!({"lead_id": 42, "update": {"state": "NEW", "nextActionAt": 1_616_253_910_842i64}})
    );
    assert_eq!(
        item.update().next_action_at,
        Some(Timestamp::from_millis(1_616_253_910_842))
    );
    // The doc example with no identifier at all is rejected before sending.
    let no_id = ProcessUpdate::from_wire(json!({"status": "COMPLETED"}));
    assert!(no_id.validate().unwrap_err().contains("no identifier"));
    let two =
        ProcessUpdate::from_wire(json!({"id": "a", "lead_id": "b", "update": {"state": "X"}}));
    assert!(
        two.validate()
            .unwrap_err()
            .contains("more than one identifier")
    );
    let unknown = ProcessUpdate::from_wire(json!({"id": "a", "update": {"priority": 1}}));
    assert!(
        unknown
            .validate()
            .unwrap_err()
            .contains("unknown update field")
    );
    Ok(())
}

#[tokio::test]
async fn errors_in_the_envelope_fail_the_call_even_on_http_200() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method("PATCH").path("/v1/ext/procedure/lead/process");
            then.status(200).json_body(json!({
                "_data": null, "_meta": {},
                "_errors": [{"code": "VALIDATION_ERROR", "message": "processes must be an array"}]
            }));
        })
        .await;
    let err = client(&server)
        .submit_updates("lead", &[ProcessUpdate::by_id("p").state("NEW")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.status(), Some(200));
    assert_eq!(err.vendor_code(), Some("VALIDATION_ERROR"));
    assert_eq!(err.vendor_message(), Some("processes must be an array"));
    assert!(!err.is_retryable());
    Ok(())
}

#[tokio::test]
async fn a_job_is_judged_by_its_entry_counts_and_entries_follow_the_next_page_path() -> TestResult {
    let server = MockServer::start_async().await;
    let job_mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/ext/background-job/j-1");
            // No completionStatus, completedAt 0: only the counts say it is over.
            then.status(200).json_body(json!({
                "_data": {"id": "j-1", "type": "bulk_api_job", "completedAt": 0},
                "_meta": {"bjEntryCompletionStatusVsCount": {"INVALID": 1, "NOT_STARTED": 0, "SUCCESS": 1, "ERROR": 1}},
                "_errors": []
            }));
        })
        .await;
    let page1 = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/ext/background-job/j-1/entries")
                .query_param_missing("cursor");
            then.status(200).json_body(json!({
                "_data": [{"status": "SUCCESS", "index": 0}, {"status": "ERROR", "statusMessage": "no such process", "index": 1}],
                "_meta": {"total": 3, "nextPage": "/v1/ext/background-job/j-1/entries?cursor=abc"}
            }));
        })
        .await;
    let page2 = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/ext/background-job/j-1/entries")
                .query_param("cursor", "abc");
            then.status(200).json_body(json!({
                "_data": [{"status": "INVALID", "message": "bad state", "index": 2}],
                "_meta": {"total": 3, "nextPage": null}
            }));
        })
        .await;
    let client = client(&server);
    let job = JobHandle::new("j-1", 3);
    let status = client
        .wait(&job)
        // Real time here (httpmock): look at once, no wait.
        .policy(
            PollPolicy::default()
                .first_delay(Duration::ZERO)
                .min_delay(Duration::ZERO),
        )
        .await?;
    assert!(status.is_complete(3));
    assert_eq!(status.counts.error, 1);
    let entries: Vec<_> = client.job_entries(&JobId::new("j-1")).try_collect().await?;
    let statuses: Vec<_> = entries.iter().map(|e| e.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            EntryStatus::Success,
            EntryStatus::Error,
            EntryStatus::Invalid
        ]
    );
    assert_eq!(entries[1].message.as_deref(), Some("no such process"));
    job_mock.assert_async().await;
    page1.assert_async().await;
    page2.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn listing_posts_where_skip_limit_and_pages_while_has_more() -> TestResult {
    let server = MockServer::start_async().await;
    let process = |id: &str| json!({"id": id, "data": {"lead_id": id}, "status": "OPEN", "nextActionAt": "5"});
    let first = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/ext/procedure/lead/process/list")
                .header("authorization", format!("Bearer {TOKEN}"))
                .json_body(
                    json!({"where": {"status": "OPEN", "score": {">=": 5}}, "skip": 0, "limit": 2}),
                );
            then.status(200).json_body(json!({
                "_data": [process("a"), process("b")], "_meta": {"hasMore": true}, "_errors": []
            }));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/ext/procedure/lead/process/list")
                .json_body(
                    json!({"where": {"status": "OPEN", "score": {">=": 5}}, "skip": 2, "limit": 2}),
                );
            then.status(200).json_body(json!({
                "_data": [process("c")], "_meta": {"hasMore": false}, "_errors": []
            }));
        })
        .await;
    let query = Query::new().eq("status", "OPEN").op("score", ">=", 5);
    let all: Vec<_> = client(&server)
        .list_processes("lead", query, 2)
        .try_collect()
        .await?;
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(all[0].status, Some(ProcessStatus::Open));
    assert_eq!(all[0].next_action_at, Some(Timestamp::from_millis(5)));
    first.assert_async().await;
    second.assert_async().await;
    let err = client(&server)
        .list_processes_page("lead", &Query::new(), 0, 101)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    Ok(())
}

#[tokio::test]
async fn get_process_reads_the_envelope() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/ext/procedure/lead/process/p%2F1");
            then.status(200).json_body(json!({
                "_data": {"id": "p/1", "status": "on_hold", "data": {}, "isDeleted": true, "custom": 1},
                "_meta": {}, "_errors": []
            }));
        })
        .await;
    let p = client(&server).get_process("lead", "p/1").await?;
    assert_eq!(p.status, Some(ProcessStatus::Other("on_hold".into())));
    assert_eq!(p.is_deleted, Some(true));
    assert_eq!(p.extra["custom"], 1);
    Ok(())
}

#[test]
fn configuration_is_checked_and_secrets_never_print() -> TestResult {
    let no_token = Client::builder().build().unwrap_err();
    assert_eq!(no_token.kind(), ErrorKind::Config);
    let with_path = Client::builder()
        .token(SecretString::from(TOKEN))
        .base_url("https://api.chakrahq.com/v1/ext")
        .build()
        .unwrap_err();
    assert_eq!(with_path.kind(), ErrorKind::Config);
    assert!(
        Client::builder()
            .token(SecretString::from(TOKEN))
            .base_url("http://api.chakrahq.com")
            .build()
            .is_err(),
        "plain http only on loopback"
    );
    let builder = Client::builder().token(SecretString::from(TOKEN));
    assert!(!format!("{builder:?}").contains(TOKEN));
    let client = builder.build()?;
    assert!(!format!("{client:?}").contains(TOKEN));
    assert_eq!(
        client.base_url().as_url().as_str(),
        "https://api.chakrahq.com/"
    );
    let bulk = client.bulk_update("lead");
    assert!(!format!("{bulk:?}").contains(TOKEN));
    Ok(())
}

#[test]
fn statuses_parse_through_the_shared_open_enums_and_keep_unknown_words() {
    use chakra_api::CompletionStatus;
    assert_eq!(EntryStatus::from("not-started"), EntryStatus::NotStarted);
    assert_eq!(EntryStatus::from("success"), EntryStatus::Success);
    assert_eq!(
        EntryStatus::from("SKIPPED"),
        EntryStatus::Other("SKIPPED".into())
    );
    assert_eq!(
        CompletionStatus::from("In-progress"),
        CompletionStatus::InProgress
    );
    assert_eq!(
        CompletionStatus::from("canceled"),
        CompletionStatus::Cancelled
    );
    assert!(!CompletionStatus::from("PAUSED").is_known());
    assert_eq!(ProcessStatus::from("open"), ProcessStatus::Open);
    assert_eq!(ProcessStatus::Cancelled.to_string(), "CANCELLED");
}

#[test]
fn a_job_handle_round_trips_through_json_with_its_field_names()
-> Result<(), Box<dyn std::error::Error>> {
    let job = JobHandle::new("j-1", 3);
    let text = serde_json::to_string(&job)?;
    assert_eq!(text, r#"{"id":"j-1","submitted":3}"#);
    assert_eq!(serde_json::from_str::<JobHandle>(&text)?, job);
    // Ids written as numbers are read too.
    let numeric: JobHandle = serde_json::from_str(r#"{"id":42,"submitted":1}"#)?;
    assert_eq!(numeric.id().as_str(), "42");
    Ok(())
}
