//! Exact request shapes with httpmock (real time, loopback).

#![allow(clippy::unwrap_used)]

use futures::TryStreamExt;
use httpmock::prelude::*;
use serde_json::json;
use zoho_bulk::{
    Client, ErrorKind, JobHandle, JobStatus, MaxRecords, ReadQuery, Record, SecretString,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SECRET: &str = "zoho-secret-that-must-not-leak";
const REFRESH: &str = "1000.refresh-that-must-not-leak";
const READ: &str = "/api/bulk/v2/acme/orders-app/report/All_Orders/read";

async fn server_with_token() -> MockServer {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/v2/token")
                .query_param("grant_type", "refresh_token")
                .query_param("client_id", "1000.CLIENT")
                .query_param("client_secret", SECRET)
                .query_param("refresh_token", REFRESH);
            then.status(200).json_body(json!({
                "access_token": "1000.access", "expires_in": 3600,
                "api_domain": "https://www.zohoapis.com", "token_type": "Bearer"
            }));
        })
        .await;
    server
}

fn client(server: &MockServer) -> Client {
    Client::builder()
        .creator_url(server.base_url())
        .accounts_url(server.base_url())
        .owner("acme")
        .app("orders-app")
        .credentials(
            "1000.CLIENT",
            SecretString::from(SECRET),
            SecretString::from(REFRESH),
        )
        .build()
        .unwrap()
}

fn details(status: &str) -> serde_json::Value {
    json!({"code": 3000, "details": {
        "id": 2000000018003u64, "operation": "read", "created_by": "x",
        "created_time": "03-Sep-2021 14:55:46", "status": status
    }})
}

#[tokio::test]
async fn creating_a_job_sends_the_query_with_the_zoho_token_header() -> TestResult {
    let server = server_with_token().await;
    let create = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(READ)
                .header("authorization", "Zoho-oauthtoken 1000.access")
                .header("content-type", "application/json")
                .json_body(json!({"query": {
                    "fields": ["Email", "Name"],
                    "criteria": "Status == \"Open\"",
                    "max_records": 200000
                }}));
            then.status(200).json_body(details("In-progress"));
        })
        .await;
    let query = ReadQuery::new()
        .fields(["Email", "Name"])
        .criteria("Status == \"Open\"")
        .max_records(MaxRecords::MAX);
    let job = client(&server).create_job("All_Orders", &query).await?;
    assert_eq!(job, JobHandle::new("All_Orders", "2000000018003"));
    create.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_default_query_sends_no_body_and_a_follow_up_sends_only_the_cursor() -> TestResult {
    let server = server_with_token().await;
    let first = server
        .mock_async(|when, then| {
            when.method(POST).path(READ).body("");
            then.status(200).json_body(details("In-progress"));
        })
        .await;
    let next = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(READ)
                .json_body(json!({"query": {"record_cursor": "cursor-123"}}));
            then.status(200).json_body(details("In-progress"));
        })
        .await;
    let c = client(&server);
    c.create_job("All_Orders", &ReadQuery::new()).await?;
    c.create_next_job("All_Orders", "cursor-123").await?;
    first.assert_async().await;
    next.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn status_strings_are_read_case_insensitively() -> TestResult {
    let server = server_with_token().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{READ}/2000000018003"));
            then.status(200).json_body(details("IN PROGRESS"));
        })
        .await;
    let d = client(&server)
        .job_status(&JobHandle::new("All_Orders", "2000000018003"))
        .await?;
    assert_eq!(d.status, JobStatus::InProgress);
    Ok(())
}

#[tokio::test]
async fn the_download_is_a_zip_whose_csv_rows_stream_with_the_header_cursor() -> TestResult {
    let server = server_with_token().await;
    let zip = vendor_sim::zoho::Zoho::zip_rows(1, 3);
    let download = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{READ}/2000000018003/result"))
                .header("authorization", "Zoho-oauthtoken 1000.access");
            then.status(200)
                .header("content-type", "application/zip")
                .header("recordCursor", "next-cursor")
                .body(&zip);
        })
        .await;
    let result = client(&server)
        .download(&JobHandle::new("All_Orders", "2000000018003"), None)
        .await?;
    assert_eq!(result.record_cursor.as_deref(), Some("next-cursor"));
    let rows: Vec<Record> = result.rows.try_collect().await?;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].get("Email"), Some("user2@example.com"));
    download.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn zohos_access_denied_refresh_reply_is_a_throttle_not_a_refused_grant() -> TestResult {
    // The wording alone marks it: no 429, no "too many requests" in the reply.
    let server = MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/v2/token");
            then.status(200)
                .json_body(json!({"error": "Access Denied"}));
        })
        .await;
    let err = client(&server)
        .create_job("All_Orders", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.vendor_code(), Some("Access Denied"));
    assert_eq!(
        token.calls_async().await,
        1,
        "a throttle is not retried at once"
    );
    Ok(())
}

#[tokio::test]
async fn the_daily_limit_reply_with_http_200_is_a_typed_error() -> TestResult {
    let server = server_with_token().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(READ);
            then.status(200)
                .json_body(json!({"code": 4000, "message": "Developer API limit reached"}));
        })
        .await;
    let err = client(&server)
        .create_job("All_Orders", &ReadQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.vendor_code(), Some("4000"));
    assert_eq!(err.vendor_message(), Some("Developer API limit reached"));
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_request_replayed_once() -> TestResult {
    let server = server_with_token().await;
    let refused = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{READ}/1"))
                .header("authorization", "Zoho-oauthtoken 1000.access");
            then.status(401)
                .json_body(json!({"code": 1030, "message": "Invalid OAuthtoken"}));
        })
        .await;
    let err = client(&server)
        .job_status(&JobHandle::new("All_Orders", "1"))
        .await
        .unwrap_err();
    // The mock refuses every token, so: the original and exactly one replay.
    assert_eq!(refused.calls_async().await, 2);
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_code(), Some("1030"));
    Ok(())
}

#[tokio::test]
async fn a_401_with_another_code_is_an_error_without_a_refresh() -> TestResult {
    // Zoho's status-code page lists 401 with 1000 (a mandatory parameter absent) and 1060 (an
    // invalid parameter); a fresh token cures neither, and each refresh costs one of 10 per
    // 10 minutes. The same for a 401 without a readable code.
    for body in [
        json!({"code": 1060, "message": "Invalid request parameter found - foo"}),
        json!({"code": 1000, "message": "A mandatory parameter - 'x' is either absent"}),
        json!({"unexpected": true}),
    ] {
        let server = server_with_token().await;
        let refused = server
            .mock_async(|when, then| {
                when.method(GET).path(format!("{READ}/1"));
                then.status(401).json_body(body.clone());
            })
            .await;
        let err = client(&server)
            .job_status(&JobHandle::new("All_Orders", "1"))
            .await
            .unwrap_err();
        assert_eq!(refused.calls_async().await, 1, "{body}");
        assert_eq!(err.kind(), ErrorKind::Auth, "{body}");
        assert_eq!(
            err.vendor_code(),
            body.get("code").map(|c| c.to_string()).as_deref()
        );
    }
    Ok(())
}

#[test]
fn configuration_errors_are_clear_and_secrets_stay_hidden() {
    let shown = format!(
        "{:?}",
        Client::builder()
            .owner("acme")
            .app("a")
            .credentials(
                "id",
                SecretString::from(SECRET),
                SecretString::from(REFRESH)
            )
            .data_centre(zoho_bulk::DataCentre::Eu)
            .build()
            .unwrap()
    );
    assert!(
        !shown.contains(SECRET) && !shown.contains(REFRESH),
        "{shown}"
    );
    assert!(shown.contains("creator.zoho.eu"));

    let no_owner = Client::builder()
        .app("a")
        .data_centre(zoho_bulk::DataCentre::Eu)
        .build()
        .unwrap_err();
    assert!(no_owner.to_string().contains("owner"), "{no_owner}");
    let plain_http = Client::builder()
        .owner("o")
        .app("a")
        .creator_url("http://creator.example.com")
        .accounts_url("https://accounts.example.com")
        .credentials("id", SecretString::from("s"), SecretString::from("r"))
        .build()
        .unwrap_err();
    assert_eq!(plain_http.kind(), ErrorKind::Config);
    let no_secret = Client::builder()
        .owner("o")
        .app("a")
        .data_centre(zoho_bulk::DataCentre::Us)
        .credentials("id", SecretString::from(""), SecretString::from("r"))
        .build()
        .unwrap_err();
    assert!(
        no_secret.to_string().contains("client secret is empty"),
        "{no_secret}"
    );
}
