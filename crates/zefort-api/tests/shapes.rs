//! Exact request shapes (httpmock, real time): paths with their trailing slash, the basic-auth
//! header, JSON bodies and query strings; configuration rules and secret hygiene.

#![allow(clippy::unwrap_used)]

use futures::TryStreamExt;
use httpmock::prelude::*;
use serde_json::{Value, json};
use zefort_api::{
    BackendStatus, BulkUpdate, Client, ContractAttributes, ContractQuery, ContractStatus, Date,
    ErrorKind, Host, HttpOptions, JobHandle, RetryPolicy, SecretString, TagOutcome, Target,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "zf-key-that-must-not-leak";
/// `Basic base64("zf-key-that-must-not-leak:")`: the key as user, an empty password.
const AUTH: &str = "Basic emYta2V5LXRoYXQtbXVzdC1ub3QtbGVhazo=";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(SecretString::from(KEY))
        .base_url(&server.base_url())
        .http_options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap()
}

fn task_json(id: &str, status: &str, data: Value) -> Value {
    json!({
        "id": id,
        "description": "Contract Bulk operation",
        "details": {"query_params": {}, "data": data},
        "backend_status": status,
        "backend_status_info": "",
        "frontend_status": "pending"
    })
}

fn empty_page() -> Value {
    json!({"count": 0, "next": null, "previous": null, "results": [], "page": 1, "page_size": 100, "last_page": 1})
}

#[tokio::test]
async fn bulk_update_posts_the_documented_body_with_basic_auth() -> TestResult {
    let server = MockServer::start_async().await;
    let body = json!({
        "attributes": {"end_date": "2023-02-15", "notice_period": 3},
        "status": "done",
        "search": {"q_tags": "contracts of service", "recursive": true}
    });
    let snapshot = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/tasks/")
                .query_param("page", "1")
                .query_param("page_size", "100")
                .header("authorization", AUTH);
            then.status(200).json_body(empty_page());
        })
        .await;
    let post = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/contracts/bulk_update/")
                .header("authorization", AUTH)
                .header("content-type", "application/json")
                .header_exists("user-agent")
                .json_body(body.clone());
            then.status(201)
                .json_body(task_json("task_1", "pending", body.clone()));
        })
        .await;
    let query = ContractQuery::new()
        .q_tags("contracts of service")
        .recursive(true);
    let update = BulkUpdate::new(Target::search(query))
        .attributes(
            ContractAttributes::new()
                .end_date(Date::new(2023, 2, 15)?)
                .set("notice_period", 3),
        )
        .status(ContractStatus::Done);
    let task = client(&server).bulk_update(&update).await?;
    assert_eq!(task.id.as_str(), "task_1");
    assert_eq!(task.backend_status, BackendStatus::Pending);
    assert_eq!(task.details.data, body);
    snapshot.assert_async().await;
    post.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn bulk_update_by_ids_sends_contracts_and_no_reconcile_read_when_disabled() -> TestResult {
    let server = MockServer::start_async().await;
    let body = json!({"status": "archived", "contracts": ["ct_1", "ct_2"]});
    let post = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/contracts/bulk_update/")
                .json_body(body.clone());
            then.status(200)
                .json_body(task_json("task_2", "pending", body.clone()));
        })
        .await;
    let c = Client::builder()
        .api_key(SecretString::from(KEY))
        .base_url(&server.base_url())
        .reconcile(false)
        .build()?;
    let update =
        BulkUpdate::new(Target::contracts(["ct_1", "ct_2"])).status(ContractStatus::Archived);
    c.bulk_update(&update).await?;
    post.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn task_get_and_acknowledge_keep_the_trailing_slash() -> TestResult {
    let server = MockServer::start_async().await;
    let get = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/tasks/task_9/")
                .header("authorization", AUTH);
            then.status(200)
                .json_body(task_json("task_9", "done", json!({})));
        })
        .await;
    let patch = server
        .mock_async(|when, then| {
            when.method(PATCH)
                .path("/api/tasks/task_9/")
                .header("authorization", AUTH)
                .json_body(json!({"frontend_status": "done"}));
            let mut t = task_json("task_9", "done", json!({}));
            t["frontend_status"] = json!("done");
            then.status(200).json_body(t);
        })
        .await;
    let c = client(&server);
    let task = c.wait(&JobHandle::new("task_9")).await?;
    assert!(task.is_done());
    assert_eq!(task.frontend_status, zefort_api::FrontendStatus::Done);
    get.assert_async().await;
    patch.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn tagging_sends_contract_ids_or_a_search_object() -> TestResult {
    let server = MockServer::start_async().await;
    let create = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/tags/")
                .json_body(json!({"tag_name": "renewal", "active": true}));
            then.status(201).json_body(
                json!({"id": "tag_7", "tag_name": "renewal", "active": true, "num_contracts": 0}),
            );
        })
        .await;
    let by_ids = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/tags/tag_7/contracts/")
                .header("authorization", AUTH)
                .json_body(json!({"contracts": ["ct_1", "ct_2"]}));
            then.status(200).json_body(json!({"added": 2}));
        })
        .await;
    let by_search = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/tags/tag_7/contracts/")
                .json_body(json!({"search": {"q": "service"}}));
            then.status(201)
                .json_body(task_json("task_3", "pending", json!({})));
        })
        .await;
    let c = client(&server);
    let tag = c.create_tag("renewal", true).await?;
    let out = c
        .tag_contracts(&tag.id, &Target::contracts(["ct_1", "ct_2"]))
        .await?;
    assert_eq!(out, TagOutcome::Other(json!({"added": 2})));
    let out = c
        .tag_contracts(&tag.id, &Target::search(ContractQuery::new().q("service")))
        .await?;
    assert!(matches!(out, TagOutcome::Task(t) if t.id.as_str() == "task_3"));
    create.assert_async().await;
    by_ids.assert_async().await;
    by_search.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn contract_search_sends_the_query_and_follows_pages_until_next_is_null() -> TestResult {
    let server = MockServer::start_async().await;
    let next = format!("{}/api/contracts/?page=2", server.base_url());
    let page1 = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/contracts/")
                .query_param("q_tags", "contracts of service")
                .query_param("status", "review")
                .query_param("minimal", "true")
                .query_param("num_files", "2")
                .query_param("page", "1")
                .query_param("page_size", "2")
                .header("authorization", AUTH);
            then.status(200).json_body(json!({
                "count": 3, "next": next, "previous": null, "page": 1, "page_size": 2, "last_page": 2,
                "results": [{"id": "ct_1", "title": "A"}, {"id": "ct_2", "title": "B", "status": "review"}]
            }));
        })
        .await;
    let page2 = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/contracts/")
                .query_param("q_tags", "contracts of service")
                .query_param("page", "2");
            then.status(200).json_body(json!({
                "count": 3, "next": null, "previous": "x", "page": 2, "page_size": 2, "last_page": 2,
                "results": [{"id": "ct_3", "weird_field": 1}]
            }));
        })
        .await;
    let query = ContractQuery::new()
        .q_tags("contracts of service")
        .status(ContractStatus::Review)
        .minimal(true)
        .param("num_files", "2");
    let found: Vec<_> = client(&server)
        .search_contracts(&query, Some(2))
        .try_collect()
        .await?;
    let ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["ct_1", "ct_2", "ct_3"]);
    assert_eq!(found[1].status, Some(ContractStatus::Review));
    assert_eq!(found[2].other["weird_field"], json!(1));
    page1.assert_async().await;
    page2.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn drf_errors_become_typed_errors() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/tasks/task_404/");
            then.status(404).json_body(json!({"detail": "Not found."}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(PATCH).path("/api/tasks/task_bad/");
            then.status(400)
                .json_body(json!({"frontend_status": ["\"x\" is not a valid choice."]}));
        })
        .await;
    let c = client(&server);
    let err = c.task(&"task_404".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Http);
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.vendor_message(), Some("Not found."));
    let err = c.acknowledge_task(&"task_bad".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.vendor_message(),
        Some("frontend_status: \"x\" is not a valid choice.")
    );
    Ok(())
}

#[tokio::test]
async fn unknown_task_fields_and_statuses_decode() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/tasks/task_x/");
            then.status(200).json_body(json!({
                "id": "task_x", "backend_status": "Cancelled", "backend_status_info": null,
                "frontend_status": "hidden", "created": "2026-01-01T00:00:00Z"
            }));
        })
        .await;
    let task = client(&server).task(&"task_x".into()).await?;
    assert_eq!(
        task.backend_status,
        BackendStatus::Other("Cancelled".into())
    );
    assert!(task.is_failed());
    assert_eq!(task.backend_status_info, "");
    assert_eq!(
        task.frontend_status,
        zefort_api::FrontendStatus::Other("hidden".into())
    );
    assert_eq!(task.other["created"], json!("2026-01-01T00:00:00Z"));
    Ok(())
}

#[test]
fn hosts_and_configuration_rules() -> TestResult {
    assert_eq!("sandbox".parse::<Host>()?, Host::Sandbox);
    assert_eq!("MY".parse::<Host>()?, Host::My);
    assert_eq!("eu".parse::<Host>()?, Host::My);
    assert_eq!("us".parse::<Host>()?, Host::Us);
    assert_eq!(Host::Us.base_url()?.to_string(), "https://us.zefort.com");
    let custom: Host = "https://zefort.example.com/api/".parse()?;
    assert_eq!(custom.base_url()?.to_string(), "https://zefort.example.com");
    assert!("http://zefort.example.com".parse::<Host>().is_err());
    assert!("http://127.0.0.1:8080".parse::<Host>().is_ok());
    // A misspelt name lists the accepted ones instead of a URL parser's complaint.
    for bad in ["sandbx", "zefort.example.com", "EU1"] {
        let err = bad.parse::<Host>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let text = err.to_string();
        assert!(text.contains("sandbox, my (or eu), us"), "{text}");
        assert!(!text.contains("relative URL"), "{text}");
    }

    let err = Client::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Client::builder()
        .api_key(SecretString::from(" "))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Client::builder()
        .api_key(SecretString::from(KEY))
        .base_url("http://example.com")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let c = Client::builder().api_key(SecretString::from(KEY)).build()?;
    assert_eq!(c.base_url().to_string(), "https://my.zefort.com");
    Ok(())
}

#[test]
fn debug_output_never_shows_the_key() -> TestResult {
    let builder = Client::builder()
        .api_key(SecretString::from(KEY))
        .host(Host::Sandbox);
    let shown = format!("{builder:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("REDACTED"));
    let client = builder.build()?;
    let shown = format!("{client:?} {client:#?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains("emYta2V5"), "{shown}");
    Ok(())
}

#[test]
fn dates_and_queries_validate_before_sending() {
    assert!("2024-02-29".parse::<Date>().is_ok());
    assert!("2023-02-29".parse::<Date>().is_err());
    assert!("2023-13-01".parse::<Date>().is_err());
    assert!("2023-1-011".parse::<Date>().is_err());
    assert_eq!(
        serde_json::to_value(Date::new(2023, 2, 15).unwrap()).unwrap(),
        json!("2023-02-15")
    );
    let update = BulkUpdate::new(Target::search(ContractQuery::new().param("page", "2")))
        .status(ContractStatus::Done);
    assert_eq!(
        update.validate().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
