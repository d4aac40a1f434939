//! The documented examples (`tests/fixtures/`, each with its source): every reply decodes into
//! this crate's types, and for every request the client's own request for the same operation
//! is the same JSON (httpmock compares parsed JSON, so key order does not matter).

#![allow(clippy::unwrap_used)]

use httpmock::prelude::*;
use serde_json::{Value, json};
use zefort_api::{
    BackendStatus, BulkUpdate, Client, ContractQuery, ContractStatus, FrontendStatus, HttpOptions,
    RetryPolicy, SecretString, Tag, TagId, TagOutcome, Target, Task, TaskId,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A fixture file: its `source`, and for requests the method and path.
struct Fixture {
    method: Option<String>,
    path: Option<String>,
    body: Value,
}

fn fixture(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["source"].as_str().is_some_and(|s| !s.is_empty()),
        "{name} names no source"
    );
    Fixture {
        method: v["method"].as_str().map(str::to_owned),
        path: v["path"].as_str().map(str::to_owned),
        body: v["body"].clone(),
    }
}

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(SecretString::from("ySLE1mhh6lfRsYa"))
        .base_url(&server.base_url())
        .http_options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap()
}

fn empty_task_list() -> Value {
    json!({"count": 0, "next": null, "previous": null, "results": []})
}

#[test]
fn every_fixture_names_its_source_and_every_reply_decodes() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut replies = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        let f = fixture(&name);
        if name.starts_with("tag_create.reply") {
            let _: Tag = serde_json::from_value(f.body).unwrap();
            replies += 1;
        } else if name.ends_with(".reply.json") {
            let _: Task = serde_json::from_value(f.body).unwrap();
            replies += 1;
        } else {
            assert!(name.ends_with(".request.json"), "{name}");
            assert!(f.method.is_some() && f.path.is_some(), "{name}");
        }
    }
    assert_eq!(replies, 4);
}

#[test]
fn the_documented_tasks_decode_field_by_field() {
    let t: Task = serde_json::from_value(fixture("bulk_update.reply.json").body).unwrap();
    assert_eq!(t.id, TaskId::new("task_1JgdgKhoZqSWVUIzgL"));
    assert_eq!(t.backend_status, BackendStatus::Pending);
    assert!(t.is_running());
    assert_eq!(t.frontend_status, FrontendStatus::Pending);
    assert_eq!(t.description, "Contract Bulk operation");
    assert_eq!(t.details.data, fixture("bulk_update.request.json").body);
    assert_eq!(t.details.query_params, json!({}));
    assert!(t.other.is_empty(), "every documented field is modelled");

    let t: Task = serde_json::from_value(fixture("task_poll.reply.json").body).unwrap();
    assert!(t.is_done());
    assert_eq!(t.backend_status_info, "");
    assert_eq!(
        t.details.data["contracts"],
        json!(["ct_1KmjVahd4Hg6W7l18c", "ct_1JXncwxR5skmpC4dDB"])
    );
    let t: Task = serde_json::from_value(fixture("task_acknowledge.reply.json").body).unwrap();
    assert_eq!(t.frontend_status, FrontendStatus::Done);

    let tag: Tag = serde_json::from_value(fixture("tag_create.reply.json").body).unwrap();
    assert_eq!(tag.id, TagId::new("tag_1KYjSqmiPdCtXdtq5J"));
    assert_eq!(tag.tag_name, "employment-contracts");
    assert!(tag.active);
    assert_eq!(tag.num_contracts, Some(0));
}

/// A mock for a documented request: its method, path and exact JSON body.
async fn expect<'a>(server: &'a MockServer, req: &Fixture, reply: Value) -> httpmock::Mock<'a> {
    let method = req.method.clone().unwrap();
    let path = req.path.clone().unwrap();
    let body = req.body.clone();
    server
        .mock_async(move |when, then| {
            when.method(method.as_str())
                .path(path)
                .header("content-type", "application/json")
                .json_body(body);
            then.status(200).json_body(reply);
        })
        .await
}

#[tokio::test]
async fn the_bulk_update_is_the_documented_request() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/tasks/");
            then.status(200).json_body(empty_task_list());
        })
        .await;
    let req = fixture("bulk_update.request.json");
    let post = expect(&server, &req, fixture("bulk_update.reply.json").body).await;
    let update = BulkUpdate::new(Target::search(
        ContractQuery::new().q_tags("contracts of service"),
    ))
    .end_date("2023-02-15".parse()?)
    .status(ContractStatus::Done);
    assert_eq!(update.to_json()?, req.body);
    let task = client(&server).bulk_update(&update).await?;
    post.assert_async().await;
    assert_eq!(task.id.as_str(), "task_1JgdgKhoZqSWVUIzgL");
    Ok(())
}

#[tokio::test]
async fn polling_and_acknowledging_are_the_documented_requests() -> TestResult {
    let server = MockServer::start_async().await;
    let poll = fixture("task_poll.reply.json");
    let get = server
        .mock_async(|when, then| {
            when.method(GET).path(poll.path.clone().unwrap());
            then.status(200).json_body(poll.body.clone());
        })
        .await;
    let req = fixture("task_acknowledge.request.json");
    let patch = expect(&server, &req, fixture("task_acknowledge.reply.json").body).await;
    let c = client(&server);
    let id = TaskId::new("task_1K8WmjFq1eqaeawrUi");
    assert!(c.task(&id).await?.is_done());
    let acked = c.acknowledge_task(&id).await?;
    assert_eq!(acked.frontend_status, FrontendStatus::Done);
    get.assert_async().await;
    patch.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn tag_creation_and_attachment_are_the_documented_requests() -> TestResult {
    let server = MockServer::start_async().await;
    let create = expect(
        &server,
        &fixture("tag_create.request.json"),
        fixture("tag_create.reply.json").body,
    )
    .await;
    // The docs print no reply for attaching: any JSON is accepted and kept.
    let by_search = expect(
        &server,
        &fixture("tag_attach_search.request.json"),
        json!({}),
    )
    .await;
    let by_ids = expect(&server, &fixture("tag_attach_ids.request.json"), json!({})).await;
    let c = client(&server);
    let tag = c.create_tag("employment-contracts", true).await?;
    assert_eq!(tag.id.as_str(), "tag_1KYjSqmiPdCtXdtq5J");
    let out = c
        .tag_contracts(
            &tag.id,
            &Target::search(ContractQuery::new().q("Contract-to")),
        )
        .await?;
    assert_eq!(out, TagOutcome::Other(json!({})));
    c.tag_contracts(&tag.id, &Target::contracts(["ct_123", "ct_124", "ct_125"]))
        .await?;
    create.assert_async().await;
    by_search.assert_async().await;
    by_ids.assert_async().await;
    Ok(())
}
