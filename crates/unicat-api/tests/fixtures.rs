//! The documented examples, kept as JSON fixtures in `tests/fixtures/` (sources in its
//! README): every documented request equals (as JSON, key order aside) what the client sends
//! for the same operation, and every documented reply is read by the client.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::TryStreamExt;
use httpmock::Method::POST;
use httpmock::MockServer;
use serde_json::{Value, json};
use unicat_api::{
    ApiCode, Children, Client, ErrorKind, Filter, HttpOptions, JobStatus, PollPolicy,
    RecordSelection, RetryPolicy, SchemaSelection, Search, SecretString,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PROJECT: &str = "<project gid>";
/// The project as it appears in paths (the client percent-encodes the gid).
const PROJECT_PATH: &str = "%3Cproject%20gid%3E";
const KEY: &str = "<your-api_key-here>";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn client(server: &MockServer) -> Client {
    Client::builder()
        .project(PROJECT)
        .api_key(SecretString::from(KEY))
        .base_url(server.base_url())
        .http_options(
            HttpOptions::default().retry(
                RetryPolicy::default()
                    .max_attempts(2)
                    .initial_delay(Duration::ZERO),
            ),
        )
        .poll_policy(
            PollPolicy::default()
                .first_delay(Duration::ZERO)
                .min_delay(Duration::ZERO)
                .max_delay(Duration::ZERO)
                .deadline(Some(Duration::from_secs(5))),
        )
        .build()
        .unwrap()
}

/// The documented login: request `docs_auth.request.json`, reply `docs_auth.reply.json` with
/// the JWT in the `Authorization` header (no `Bearer` prefix, as documented).
async fn login(server: &MockServer) -> httpmock::Mock<'_> {
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT_PATH}/auth"))
                .json_body(fixture("docs_auth.request.json"));
            then.status(200)
                .header("Authorization", "jwt-from-docs")
                .json_body(fixture("docs_auth.reply.json"));
        })
        .await
}

async fn cursors(server: &MockServer) -> httpmock::Mock<'_> {
    server
        .mock_async(|when, then| {
            when.method(POST).path("/sync/cursors").json_body(json!({}));
            then.status(200).json_body(json!({
                "success": true, "result": {"cc.cursor": 4132, "cursor": 7864}, "data": {}
            }));
        })
        .await
}

#[tokio::test]
async fn the_documented_delete_requests_are_what_the_client_sends() -> TestResult {
    let search = || {
        Search::new()
            .language("nl")
            .q("+cms 225")
            .filter(Filter::new("definition", "is", "<definition-gid>"))
            .exclude(["<gid-a>", "<gid-b>", "<gid-c>"])
    };
    let children = || Children::of("<gid-9>").exclude(["<gid-x>", "<gid-y>", "<gid-z>"]);
    let cases = [
        (
            "seed003_delete_gids.request.json",
            RecordSelection::new().gids(["<gid-1>", "<gid-2>", "<gid-3>"]),
        ),
        (
            "seed003_delete_children.request.json",
            RecordSelection::new().children(children()),
        ),
        (
            "seed003_delete_search.request.json",
            RecordSelection::new().search(search()),
        ),
        (
            "seed003_delete_combined.request.json",
            RecordSelection::new()
                .gids(["<gid-1>", "<gid-2>", "<gid-3>"])
                .children(children())
                .gids(["<gid-4>", "<gid-5>"])
                .search(search())
                .children(Children::of("<gid-o>")),
        ),
    ];
    for (name, selection) in cases {
        let server = MockServer::start_async().await;
        login(&server).await;
        cursors(&server).await;
        let delete = server
            .mock_async(|when, then| {
                when.method(POST)
                    .path(format!("/api/p/{PROJECT_PATH}/records/bulk/delete"))
                    .header("authorization", "Bearer jwt-from-docs")
                    .json_body(fixture(name));
                then.status(200)
                    .json_body(fixture("seed003_bulk.reply.json"));
            })
            .await;
        let job = client(&server).records().delete(&selection).await?;
        delete.assert_async().await;
        // The documented reply: the job token read from `result["job.token"]`.
        assert_eq!(
            job.token().as_str(),
            "7c136ddb-4dfa-4ec1-bad4-15067cbf80d9",
            "{name}"
        );
        assert_eq!(job.cursor(), 4132);
    }
    Ok(())
}

#[tokio::test]
async fn the_documented_job_report_in_the_sync_feed_is_read() -> TestResult {
    let server = MockServer::start_async().await;
    login(&server).await;
    let item = fixture("seed003_sync_job.item.json");
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/sync/get")
                .json_body(json!({"cc_cursor": 4132}));
            then.status(200).json_body(json!({
                "success": true, "result": {"sync": [item]}, "data": {}
            }));
        })
        .await;
    let reports = client(&server).jobs_since(4132).await?;
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.token.as_str(), "7c136ddb-4dfa-4ec1-bad4-15067cbf80d9");
    assert_eq!(r.job, "bulk_delete_records");
    assert_eq!(r.status, JobStatus::Processing);
    assert_eq!((r.total, r.remaining), (Some(120), Some(26)));
    assert_eq!(r.cursor, 4133);
    assert!(r.errors().is_none());
    Ok(())
}

#[tokio::test]
async fn the_seeds_two_page_bulk_get_is_sent_and_read_as_documented() -> TestResult {
    let server = MockServer::start_async().await;
    login(&server).await;
    let pages: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| {
            (
                fixture(&format!("seed003_get_page{n}.request.json")),
                fixture(&format!("seed003_get_page{n}.reply.json")),
            )
        })
        .collect();
    let mut mocks = Vec::new();
    for (request, reply) in &pages {
        mocks.push(
            server
                .mock_async(|when, then| {
                    when.method(POST)
                        .path(format!("/api/p/{PROJECT_PATH}/records/bulk/get"))
                        .json_body(request.clone());
                    then.status(200).json_body(reply.clone());
                })
                .await,
        );
    }
    let client = client(&server);
    let mut stream = client
        .records()
        .get(&RecordSelection::new().search(Search::new().language("nl").q("+cms 225")))
        .language("nl")
        .page_size(10)
        .stream::<Value>();
    let mut gids = Vec::new();
    while let Some(item) = stream.try_next().await? {
        gids.push(item.gid.to_string());
    }
    assert_eq!(
        gids,
        [
            "96ec02b2-fb8d-4fb4-b952-fad0c4b88a74",
            "10886fb0-5cc9-43b4-8d3d-8de601f14423"
        ]
    );
    assert_eq!(stream.size(), Some(17));
    for m in mocks {
        m.assert_async().await;
    }
    Ok(())
}

/// A reference page's request is a later page's: the first request is the same without
/// `page.cursor`, and its reply hands over the cursor the page shows.
async fn two_pages<'a>(
    server: &'a MockServer,
    path: &str,
    request: &Value,
    reply: &Value,
) -> (httpmock::Mock<'a>, httpmock::Mock<'a>) {
    let cursor = request["page.cursor"].clone();
    let mut first_request = request.clone();
    first_request.as_object_mut().unwrap().remove("page.cursor");
    let list_key = if path.contains("schema") {
        "schema_items"
    } else {
        "records"
    };
    let first = server
        .mock_async(|when, then| {
            when.method(POST).path(path).json_body(first_request);
            then.status(200).json_body(json!({
                "success": true,
                "result": {list_key: [], format!("{list_key}.size"): 17, "page.cursor": cursor},
                "data": {}
            }));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(POST).path(path).json_body(request.clone());
            then.status(200).json_body(reply.clone());
        })
        .await;
    (first, second)
}

#[tokio::test]
async fn the_reference_pages_bulk_gets_are_sent_and_read_as_documented() -> TestResult {
    let server = MockServer::start_async().await;
    login(&server).await;
    let client = client(&server);

    let (first, second) = two_pages(
        &server,
        &format!("/api/p/{PROJECT_PATH}/records/bulk/get"),
        &fixture("docs_records_bulk_get.request.json"),
        &fixture("docs_records_bulk_get.reply.json"),
    )
    .await;
    let selection = RecordSelection::new()
        .gids(["<gid-1>", "<gid-2>", "<gid-3>"])
        .children(
            Children::of("<gid-9>")
                .channel("<channel key>")
                .ordering("<ordering key>")
                .exclude(["<gid-x>", "<gid-y>", "<gid-z>"]),
        )
        .search(
            Search::new()
                .language("nl")
                .q("+cms 225")
                .filter(Filter::new("classes", "has", "article"))
                .exclude(["<gid-a>", "<gid-b>", "<gid-c>"]),
        );
    let records: Vec<_> = client
        .records()
        .get(&selection)
        .stream::<Value>()
        .try_collect()
        .await?;
    assert_eq!(records.len(), 3);
    first.assert_async().await;
    second.assert_async().await;

    let (first, second) = two_pages(
        &server,
        &format!("/api/p/{PROJECT_PATH}/schema/bulk/get"),
        &fixture("docs_schema_bulk_get.request.json"),
        &fixture("docs_schema_bulk_get.reply.json"),
    )
    .await;
    let selection = SchemaSelection::new()
        .gids(["<gid-1>", "<gid-2>", "<gid-3>"])
        .search(
            Search::new()
                .language("nl")
                .q("+cms 225")
                .filter(Filter::unary("is_committed", "is_false"))
                .exclude(["<gid-a>", "<gid-b>", "<gid-c>"]),
        );
    let items: Vec<_> = client
        .schema()
        .get(&selection)
        .stream::<Value>()
        .try_collect()
        .await?;
    let types: Vec<_> = items
        .iter()
        .map(|i| i.schema_type.as_deref().unwrap())
        .collect();
    assert_eq!(types, ["definition", "definition", "class", "field"]);
    first.assert_async().await;
    second.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn the_documented_error_replies_are_typed_errors() -> TestResult {
    let server = MockServer::start_async().await;
    login(&server).await;
    cursors(&server).await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT_PATH}/records/bulk/delete"));
            then.status(422)
                .json_body(fixture("docs_errors_1001.reply.json"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT_PATH}/records/bulk/get"));
            then.status(401)
                .header("WWW-Authenticate", "Bearer realm=\"JWT access to Unicat.\"")
                .json_body(fixture("docs_errors_401.reply.json"));
        })
        .await;
    let client = client(&server);
    let sel = RecordSelection::new().gid("<gid-1>");

    let err = client.records().delete(&sel).await.unwrap_err();
    assert_eq!(ApiCode::of(&err), Some(ApiCode::Validation));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.vendor_message(), Some("Validation error"));

    let err = client
        .records()
        .get(&sel)
        .stream::<Value>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(ApiCode::of(&err), Some(ApiCode::Http(401)));
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_message(), Some("Permission denied"));
    Ok(())
}
