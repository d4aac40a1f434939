//! Exact request shapes (method, path, headers, body) against httpmock, with real time.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::TryStreamExt;
use httpmock::Method::POST;
use httpmock::MockServer;
use serde_json::json;
use unicat_api::{
    ApiCode, Children, Client, ErrorKind, Filter, HttpOptions, JobHandle, PollPolicy,
    RecordSelection, RetryPolicy, SchemaSelection, Search, SecretString,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PROJECT: &str = "p-5e1f";
const KEY: &str = "key-for-shape-tests";

fn client(server: &MockServer) -> Client {
    Client::builder()
        .project(PROJECT)
        .api_key(SecretString::from(KEY))
        .base_url(server.base_url())
        .http_options(
            HttpOptions::default().retry(
                RetryPolicy::default()
                    .max_attempts(3)
                    // Real time here (httpmock): no backoff wait at all.
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
        // Real time here: the feed is looked at again after an unknown outcome without delay.
        .settle_time(Duration::from_millis(30))
        .build()
        .unwrap()
}

async fn login_mock<'a>(server: &'a MockServer, jwt: &str) -> httpmock::Mock<'a> {
    let jwt = jwt.to_owned();
    server
        .mock_async(move |when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/auth"))
                .header_missing("authorization")
                .header("content-type", "application/json")
                .json_body(json!({ "api_key": KEY }));
            then.status(200)
                .header("Authorization", jwt)
                .json_body(json!({"success": true, "result": {"cc.cursor": 10}, "data": {}}));
        })
        .await
}

fn combined() -> RecordSelection {
    RecordSelection::new()
        .gids(["r-1", "r-2"])
        .children(
            Children::of("r-parent")
                .exclude(["r-3"])
                .channel("c-web")
                .ordering("o-default"),
        )
        .search(
            Search::new()
                .language("nl")
                .q("+cms 225")
                .filter(Filter::new("classes", "has", "article"))
                .exclude(["r-4"]),
        )
        .search(Search::new().filter(Filter::unary("is_committed", "is_false")))
}

fn combined_json() -> serde_json::Value {
    json!([
        "r-1",
        "r-2",
        {"children": "r-parent", "exclude": ["r-3"], "channel": "c-web", "ordering": "o-default"},
        {"search": {"language": "nl", "q": "+cms 225", "filter": ["classes", "has", "article"]},
         "exclude": ["r-4"]},
        {"search": {"filter": ["is_committed", "is_false", null]}}
    ])
}

#[tokio::test]
async fn a_delete_logs_in_reads_the_cursor_adopts_a_rotated_jwt_and_posts_the_selection()
-> TestResult {
    let server = MockServer::start_async().await;
    let login = login_mock(&server, "jwt-1").await;
    let cursors = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/sync/cursors")
                .header("authorization", "Bearer jwt-1")
                .json_body(json!({}));
            then.status(200)
                // The server rotates the JWT in this reply.
                .header("Authorization", "jwt-2")
                .json_body(json!({"success": true, "result": {"cc.cursor": 1520, "cursor": 77}, "data": {}}));
        })
        .await;
    let delete = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/delete"))
                .header("authorization", "Bearer jwt-2")
                .header("content-type", "application/json")
                .json_body(json!({ "selection": combined_json() }));
            then.status(200).json_body(json!({
                "success": true,
                "result": {"job.token": "06715cb7-aaaa-4bbb-8ccc-000000000001"},
                "data": {}
            }));
        })
        .await;

    let client = client(&server);
    let job = client.records().delete(&combined()).await?;
    assert_eq!(job.token().as_str(), "06715cb7-aaaa-4bbb-8ccc-000000000001");
    assert_eq!(job.cursor(), 1520);
    assert_eq!(job.operation(), "records/delete");
    login.assert_async().await;
    cursors.assert_async().await;
    delete.assert_async().await;
    assert_eq!(client.stats().rotations, 1);
    Ok(())
}

#[tokio::test]
async fn other_operations_send_their_extra_fields() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/sync/cursors");
            then.status(200)
                .json_body(json!({"success": true, "result": {"cc.cursor": 5}, "data": {}}));
        })
        .await;
    let reply = json!({"success": true, "result": {"job.token": "t"}, "data": {}});
    let shallow = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/shallow_copy"))
                .json_body(json!({"selection": ["r-1"], "parent": "r-p", "before_record": "r-b", "ordering": "o"}));
            then.status(200).json_body(reply.clone());
        })
        .await;
    let mv = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/assets/bulk/move"))
                .json_body(json!({"selection": [{"children": "a-1", "exclude": ["a-2"]}], "parent": "a-p"}));
            then.status(200).json_body(reply.clone());
        })
        .await;
    let commit = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/schema/bulk/commit"))
                .json_body(
                    json!({"selection": ["d-1", {"search": {"filter": ["type", "is", "field"]}}]}),
                );
            then.status(200).json_body(reply.clone());
        })
        .await;

    let client = client(&server);
    client
        .records()
        .shallow_copy(
            &RecordSelection::new().gid("r-1"),
            &unicat_api::Placement::under("r-p")
                .before("r-b")
                .ordering("o"),
        )
        .await?;
    client
        .assets()
        .move_to(
            &unicat_api::AssetSelection::new().children(Children::of("a-1").exclude(["a-2"])),
            "a-p",
        )
        .await?;
    client
        .schema()
        .commit(
            &SchemaSelection::new()
                .gid("d-1")
                .search(Search::new().filter(Filter::new("type", "is", "field"))),
        )
        .await?;
    shallow.assert_async().await;
    mv.assert_async().await;
    commit.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn success_false_is_a_typed_error_whatever_the_status() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/sync/cursors");
            then.status(200)
                .json_body(json!({"success": true, "result": {"cc.cursor": 5}, "data": {}}));
        })
        .await;
    let refused = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/delete"));
            then.status(422).json_body(json!({
                "success": false,
                "result": {"code": 1006, "message": "Bulk selection error", "info": {"entry": 2}},
                "data": {}
            }));
        })
        .await;
    let ok_but_not = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/undelete"));
            then.status(200).json_body(json!({
                "success": false,
                "result": {"code": 1001, "message": "Validation error", "info": {"field": "selection"}},
                "data": {}
            }));
        })
        .await;

    let client = client(&server);
    let sel = RecordSelection::new().gid("r-1");
    let err = client.records().delete(&sel).await.unwrap_err();
    assert_eq!(ApiCode::of(&err), Some(ApiCode::BulkSelection));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.status(), Some(422));
    assert_eq!(err.vendor_message(), Some("Bulk selection error"));
    assert_eq!(err.details(), Some(&json!({"entry": 2})));
    refused.assert_async().await;

    let err = client.records().undelete(&sel).await.unwrap_err();
    assert_eq!(ApiCode::of(&err), Some(ApiCode::Validation));
    assert_eq!(err.status(), Some(200));
    ok_but_not.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_mutation_is_never_resent_but_a_bulk_get_is_retried() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/sync/cursors");
            then.status(200)
                .json_body(json!({"success": true, "result": {"cc.cursor": 5}, "data": {}}));
        })
        .await;
    let delete = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/delete"));
            then.status(503);
        })
        .await;
    let get = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/get"));
            then.status(503);
        })
        .await;

    let client = client(&server);
    let sel = RecordSelection::new().gid("r-1");
    // The feed cannot be read here (no /sync/get), so nothing proves the delete never
    // arrived: it stays unknown and is not sent again.
    let err = client.records().delete(&sel).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AmbiguousOutcome);
    assert_eq!(delete.calls_async().await, 1);

    let err = client
        .records()
        .get(&sel)
        .stream::<serde_json::Value>()
        .try_next()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(get.calls_async().await, 3);
    Ok(())
}

#[tokio::test]
async fn bulk_get_echoes_the_opaque_cursor_and_stops_only_on_null() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    let selection = json!([{"children": "r-root"}]);
    let cursor = json!({"opaque": [1, "x", {"n": 2.5}]});
    let first = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/get"))
                .header("authorization", "Bearer jwt-1")
                .json_body(json!({"selection": selection, "language": "nl", "page.size": 2}));
            then.status(200).json_body(json!({
                "success": true,
                "result": {"records": ["r-a"], "records.size": 3, "page.cursor": cursor},
                "data": {"records": {"r-a": {"gid": "r-a", "title": "A"}}}
            }));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/records/bulk/get"))
                .json_body(json!({"selection": selection, "language": "nl",
                                  "page.size": 2, "page.cursor": cursor}));
            then.status(200).json_body(json!({
                "success": true,
                "result": {"records": ["r-b", "r-c"], "records.size": 3, "page.cursor": null},
                "data": {"records": {"r-b": {"title": "B"}, "r-c": {"title": "C"}}}
            }));
        })
        .await;

    let client = client(&server);
    let items: Vec<_> = client
        .records()
        .get(&RecordSelection::new().children(Children::of("r-root")))
        .language("nl")
        .page_size(2)
        .stream::<serde_json::Value>()
        .try_collect()
        .await?;
    let gids: Vec<_> = items.iter().map(|i| i.gid.as_str()).collect();
    assert_eq!(gids, ["r-a", "r-b", "r-c"]);
    assert_eq!(items[2].data["title"], "C");
    first.assert_async().await;
    second.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn schema_get_decodes_typed_items() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(format!("/api/p/{PROJECT}/schema/bulk/get"))
                .json_body(json!({"selection": ["d-1", "f-1"], "page.size": 100}));
            then.status(200).json_body(json!({
                "success": true,
                "result": {"schema_items": [{"type": "definition", "item": "d-1"}, {"type": "field", "item": "f-1"}],
                           "schema_items.size": 2, "page.cursor": null},
                "data": {"definitions": {"d-1": {"name": "article"}}, "fields": {"f-1": {"name": "sku"}}}
            }));
        })
        .await;
    let client = client(&server);
    let items: Vec<_> = client
        .schema()
        .get(&SchemaSelection::new().gids(["d-1", "f-1"]))
        .stream::<serde_json::Value>()
        .try_collect()
        .await?;
    assert_eq!(items[0].schema_type.as_deref(), Some("definition"));
    assert_eq!(items[1].data["name"], "sku");
    Ok(())
}

#[tokio::test]
async fn the_feed_is_read_from_the_jobs_cursor_and_a_rejection_carries_info_error() -> TestResult {
    let server = MockServer::start_async().await;
    login_mock(&server, "jwt-1").await;
    let feed = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/sync/get")
                .header("authorization", "Bearer jwt-1")
                .json_body(json!({"cc_cursor": 1520}));
            then.status(200).json_body(json!({
                "success": true,
                "result": {"sync": [
                    {"type": "cc", "cursor": 1521, "action": "UPDATE", "data_type": "users",
                     "data_key": "tok", "data": {}},
                    {"type": "cc", "cursor": 1522, "action": "UPDATE", "data_type": "jobs",
                     "data_key": "tok", "data": {"project_gid": null, "job": "bulk_delete_records",
                     "status": "rejected", "info": {"total": 3, "remaining": 3,
                     "error": "Selection too large"}, "created_on": 1.5, "updated_on": 2.5}}
                ]},
                "data": {}
            }));
        })
        .await;
    let client = client(&server);
    let err = client
        .wait(&JobHandle::new("tok", 1520, "records/delete"))
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JobFailed);
    assert_eq!(err.vendor_message(), Some("Selection too large"));
    assert_eq!(err.details().unwrap()["info"]["total"], 3);
    feed.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_jwt_is_replaced_by_one_new_login() -> TestResult {
    let server = MockServer::start_async().await;
    let login = login_mock(&server, "jwt-1").await;
    let good = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/sync/cursors")
                .header("authorization", "Bearer jwt-1");
            then.status(200)
                .header("Authorization", "Bearer jwt-revoked")
                .json_body(json!({"success": true, "result": {"cc.cursor": 1}, "data": {}}));
        })
        .await;
    let refused = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/sync/cursors")
                .header("authorization", "Bearer jwt-revoked");
            then.status(401)
                .header("WWW-Authenticate", "Bearer realm=\"unicat\"")
                .json_body(json!({"success": false,
                    "result": {"code": 401, "message": "JWT expired", "info": {}}, "data": {}}));
        })
        .await;
    let client = client(&server);
    client.cc_cursor().await?; // logs in, adopts jwt-revoked
    client.cc_cursor().await?; // refused, logs in again, replays with jwt-1
    assert_eq!(login.calls_async().await, 2);
    assert_eq!(refused.calls_async().await, 1);
    assert_eq!(good.calls_async().await, 2);
    Ok(())
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_and_secrets_stay_out_of_debug() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(format!("/api/p/{PROJECT}/auth"));
            then.status(403).json_body(json!({"success": false,
                "result": {"code": 403, "message": "Not a member", "info": {}}, "data": {}}));
        })
        .await;
    let client = client(&server);
    let err = client.cc_cursor().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_message(), Some("Not a member"));
    let shown = format!("{client:?} {err:?} {err}");
    assert!(!shown.contains(KEY), "{shown}");
    let builder = Client::builder().api_key(SecretString::from(KEY));
    assert!(!format!("{builder:?}").contains(KEY));
    Ok(())
}

#[test]
fn the_builder_refuses_bad_configuration() {
    let base = |url: &str| {
        Client::builder()
            .project(PROJECT)
            .api_key(SecretString::from(KEY))
            .base_url(url)
            .build()
    };
    assert!(base("https://unicat.app").is_ok());
    let err = base("https://unicat.app/api").unwrap_err();
    assert!(err.to_string().contains("scheme and host only"), "{err}");
    assert!(base("http://unicat.app").is_err());
    let err = Client::builder()
        .api_key(SecretString::from(KEY))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(Client::builder().project(PROJECT).build().is_err());
}

#[test]
fn the_selection_serializes_exactly_as_documented() {
    assert_eq!(serde_json::to_value(combined()).unwrap(), combined_json());
    let parsed: RecordSelection = serde_json::from_value(combined_json()).unwrap();
    assert_eq!(parsed, combined());
    let err = serde_json::from_value::<SchemaSelection>(json!([{"children": "d-1"}])).unwrap_err();
    assert!(err.to_string().contains("cannot use the children form"));
}
