//! The documented examples (seed 002 and ChakraHQ's public docs) as fixtures: each documented
//! reply decodes into the client's types, and for each documented request the client's own
//! request for the same operation is the same JSON (key order ignored). Sources are listed in
//! `tests/fixtures/README.md`.

#![allow(clippy::unwrap_used)]

use chakra_api::{
    Client, JobHandle, JobId, PollPolicy, ProcessStatus, ProcessUpdate, RetryPolicy, SecretString,
    Timestamp, Update,
};
use httpmock::prelude::*;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn client(server: &MockServer) -> Client {
    Client::builder()
        .base_url(server.base_url())
        .token(SecretString::from("tok"))
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// The two updates of seed 002's curl example, built with the client's own API.
fn curl_updates() -> Vec<ProcessUpdate> {
    vec![
        ProcessUpdate::by_key("lead_id", "EXT-TEST-143").data("score", "105"),
        ProcessUpdate::by_id("1e50dd73-9ce6-405b-932a-9c4c5e7b5599")
            .data("city", "Goa")
            .state("IN_PROGRESS"),
    ]
}

#[tokio::test]
async fn the_seed_curl_request_is_the_clients_own_request() -> TestResult {
    let server = MockServer::start_async().await;
    let patch = server
        .mock_async(|when, then| {
            when.method("PATCH")
                .path("/v1/ext/procedure/tele_sales/process")
                .json_body(fixture("seed002_bulk_update_curl.request.json"));
            then.status(200)
                .json_body(fixture("docs_bulk_update_ack.reply.json"));
        })
        .await;
    let job = client(&server)
        .submit_updates("tele_sales", &curl_updates())
        .await?;
    assert_eq!(
        job.id(),
        &JobId::new("19632427-908f-4bf3-a6f5-69b9a0bbfc63")
    );
    assert_eq!(job.submitted(), 2);

    // The bulk runner sends the same body.
    let polled = server
        .mock_async(|when, then| {
            when.method("GET")
                .path("/v1/ext/background-job/19632427-908f-4bf3-a6f5-69b9a0bbfc63");
            then.status(200).json_body(json!({
                "_data": {"id": "19632427-908f-4bf3-a6f5-69b9a0bbfc63", "completionStatus": "COMPLETED"},
                "_meta": {"bjEntryCompletionStatusVsCount": {"SUCCESS": 2}}
            }));
        })
        .await;
    let report = client(&server)
        .bulk_update("tele_sales")
        .poll_policy(PollPolicy::default().first_delay(std::time::Duration::from_millis(10)))
        .run(curl_updates())
        .await?;
    assert!(report.is_complete_success());
    patch.assert_calls_async(2).await;
    polled.assert_calls_async(1).await;
    Ok(())
}

#[test]
fn the_seeds_flat_examples_are_read_and_sent_in_the_nested_form() {
    let nested = [
        json!({"processes": [{
            "id": "46ce67e5-684e-4cfc-b47e-345a485d1cdd",
            "update": {
                "state": "IN_PROGRESS", "status": "OPEN", "assignedTo": "shane.warne",
                "nextActionAt": 1_616_253_910_842i64,
                "data": {"first_name": "shane", "last_name": "warne"}
            }
        }]}),
        json!({"processes": [{
            "lead_id": "LEAD-910",
            "update": {"data": {"country": "Japan", "city": "Tokyo"}}
        }]}),
    ];
    let files = [
        "seed002_valid_example_1_flat.request.json",
        "seed002_valid_example_2_flat.request.json",
    ];
    for (file, expected) in files.iter().zip(nested) {
        let items: Vec<ProcessUpdate> =
            serde_json::from_value(fixture(file)["processes"].clone()).unwrap();
        assert!(chakra_api::validate(&items).is_ok(), "{file}");
        assert_eq!(json!({ "processes": items }), expected, "{file}");
    }
    // The same update built with the client's API.
    let built = ProcessUpdate::by_id("46ce67e5-684e-4cfc-b47e-345a485d1cdd")
        .state("IN_PROGRESS")
        .status(ProcessStatus::Open)
        .assigned_to("shane.warne")
        .next_action_at(Timestamp::from_millis(1_616_253_910_842))
        .data("first_name", "shane")
        .data("last_name", "warne");
    let read: Vec<ProcessUpdate> = serde_json::from_value(
        fixture("seed002_valid_example_1_flat.request.json")["processes"].clone(),
    )
    .unwrap();
    assert_eq!(read[0], built);
}

#[test]
fn the_seeds_example_without_identifier_is_refused_before_sending() {
    let items: Vec<ProcessUpdate> = serde_json::from_value(
        fixture("seed002_valid_example_3_no_identifier.request.json")["processes"].clone(),
    )
    .unwrap();
    let err = chakra_api::validate(&items).unwrap_err();
    assert!(err.to_string().contains("no identifier"), "{err}");
}

#[test]
fn the_seeds_update_field_examples_decode_into_update() {
    let built = [
        ProcessUpdate::by_id("p")
            .data("score", 42)
            .data("city", "Bangalore")
            .data("name", "Shane Warne"),
        ProcessUpdate::by_id("p").state("IN_PROGRESS"),
        ProcessUpdate::by_id("p").status(ProcessStatus::Cancelled),
        ProcessUpdate::by_id("p").assigned_to("shane.warne"),
        ProcessUpdate::by_id("p").next_action_at(Timestamp::from_millis(1_616_253_910_842)),
        ProcessUpdate::by_id("p").deleted(true),
    ];
    let examples = fixture("seed002_update_fields.json");
    let examples = examples.as_array().unwrap();
    assert_eq!(examples.len(), built.len());
    for (example, built) in examples.iter().zip(&built) {
        let decoded: Update = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(&decoded, built.update(), "{example}");
        assert_eq!(&serde_json::to_value(built.update()).unwrap(), example);
    }
}

#[tokio::test]
async fn the_documented_job_reply_decodes() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method("GET")
                .path("/v1/ext/background-job/19632427-908f-4bf3-a6f5-69b9a0bbfc63");
            then.status(200)
                .json_body(fixture("docs_fetch_background_job.reply.json"));
        })
        .await;
    let job = JobHandle::new("19632427-908f-4bf3-a6f5-69b9a0bbfc63", 612);
    let status = client(&server).job_status(job.id()).await?;
    assert_eq!(&status.id, job.id());
    let c = &status.counts;
    assert_eq!(
        (c.invalid, c.not_started, c.success, c.error),
        (100, 120, 389, 3)
    );
    assert_eq!(status.completion_status, None);
    assert!(
        !status.is_complete(job.submitted()),
        "120 entries not started"
    );
    Ok(())
}
