//! Every literal request and reply example of seed 001 and Zoho's bulk-read, status-code and
//! OAuth pages, kept as JSON fixtures in `tests/fixtures/` with their source noted in each file:
//! each documented reply decodes into this crate's types, and for each documented request this
//! client's own request for the same operation is the same JSON (key order aside). httpmock on
//! loopback, real time.

#![allow(clippy::unwrap_used)]

use httpmock::prelude::*;
use serde_json::Value;
use zoho_bulk::{
    ApiVersion, Client, ErrorKind, JobHandle, JobStatus, MaxRecords, ReadQuery, SecretString,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const V2: &str = "/api/bulk/v2/jason18/zylker-store/report/All_Orders/read";
const V2_1: &str = "/creator/v2.1/bulk/jason18/zylker-store/report/All_Orders/read";

/// A fixture file: `{source, http_status?, body?, query?}`.
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        value["source"].as_str().is_some_and(|s| !s.is_empty()),
        "{name} names no source"
    );
    value
}

/// A mock server whose token endpoint expects the documented refresh request and answers the
/// seed's token reply.
async fn server() -> MockServer {
    let server = MockServer::start_async().await;
    let request = fixture("request_oauth_refresh.json");
    let reply = fixture("reply_oauth_refresh_seed001.json");
    server
        .mock_async(|mut when, then| {
            when = when.method(POST).path("/oauth/v2/token");
            for (k, v) in request["query"].as_object().unwrap() {
                when = when.query_param(k, v.as_str().unwrap());
            }
            let _ = when;
            then.status(200).json_body(reply["body"].clone());
        })
        .await;
    server
}

fn client(server: &MockServer, version: ApiVersion) -> Client {
    let request = fixture("request_oauth_refresh.json");
    let q = &request["query"];
    Client::builder()
        .creator_url(server.base_url())
        .accounts_url(server.base_url())
        .api_version(version)
        .owner("jason18")
        .app("zylker-store")
        .credentials(
            q["client_id"].as_str().unwrap(),
            SecretString::from(q["client_secret"].as_str().unwrap().to_owned()),
            SecretString::from(q["refresh_token"].as_str().unwrap().to_owned()),
        )
        .build()
        .unwrap()
}

/// The header carrying the seed's token reply's access token.
fn auth_header() -> String {
    let reply = fixture("reply_oauth_refresh_seed001.json");
    format!(
        "Zoho-oauthtoken {}",
        reply["body"]["access_token"].as_str().unwrap()
    )
}

#[tokio::test]
async fn the_documented_create_reply_decodes_and_the_token_reply_is_used() -> TestResult {
    let server = server().await;
    let reply = fixture("reply_create_seed001.json");
    let create = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(V2)
                .header("authorization", auth_header());
            then.status(200).json_body(reply["body"].clone());
        })
        .await;
    let job = client(&server, ApiVersion::V2)
        .create_job("All_Orders", &ReadQuery::new())
        .await?;
    assert_eq!(
        job.id().as_str(),
        reply["body"]["details"]["id"].as_str().unwrap()
    );
    assert_eq!(create.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn the_documented_status_replies_decode() -> TestResult {
    for (name, version, prefix) in [
        ("reply_status_in_progress_seed001.json", ApiVersion::V2, V2),
        ("reply_status_completed_seed001.json", ApiVersion::V2, V2),
        (
            "reply_status_completed_v2_1_fields.json",
            ApiVersion::V2_1,
            V2_1,
        ),
    ] {
        let server = server().await;
        let reply = fixture(name);
        let want = &reply["body"]["details"];
        let id = want["id"].as_str().unwrap();
        server
            .mock_async(|when, then| {
                when.method(GET).path(format!("{prefix}/{id}"));
                then.status(200).json_body(reply["body"].clone());
            })
            .await;
        let got = client(&server, version)
            .job_status(&JobHandle::new("All_Orders", id))
            .await?;
        assert_eq!(got.id.as_str(), id, "{name}");
        assert_eq!(
            got.status,
            JobStatus::from(want["status"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            got.created_by.as_deref(),
            want["created_by"].as_str(),
            "{name}"
        );
        assert_eq!(
            got.created_time.as_deref(),
            want["created_time"].as_str(),
            "{name}"
        );
        assert_eq!(got.operation.as_deref(), Some("read"), "{name}");
        match want.get("result") {
            None => {
                assert_eq!(got.status, JobStatus::InProgress, "{name}");
                assert!(got.result.is_none(), "{name}");
            }
            Some(result) => {
                assert_eq!(got.status, JobStatus::Completed, "{name}");
                let r = got.result.as_ref().unwrap();
                assert_eq!(r.count, result["count"].as_u64(), "{name}");
                assert_eq!(
                    r.download_url.as_deref(),
                    result["download_url"].as_str(),
                    "{name}"
                );
                assert_eq!(
                    r.record_cursor.as_deref(),
                    result["record_cursor"].as_str(),
                    "{name}"
                );
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_v2_1_download_uses_the_documented_path_not_a_v2_style_sample_url() -> TestResult {
    // The v2.1 status page's download_url sample (`/api/bulk/v2.1/...`) is not under the v2.1
    // layout: the client downloads from `<read path>/<job_id>/result` instead.
    let server = server().await;
    let reply = fixture("reply_status_completed_v2_1_fields.json");
    let id = reply["body"]["details"]["id"].as_str().unwrap().to_owned();
    server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{V2_1}/{id}"));
            then.status(200).json_body(reply["body"].clone());
        })
        .await;
    let zip = vendor_sim::zoho::Zoho::zip_rows(1, 3);
    let download = server
        .mock_async(|when, then| {
            when.method(GET).path(format!("{V2_1}/{id}/result"));
            then.status(200)
                .header("content-type", "application/zip")
                .body(&zip);
        })
        .await;
    let client = client(&server, ApiVersion::V2_1);
    let job = JobHandle::new("All_Orders", id);
    let details = client.job_status(&job).await?;
    client.download(&job, Some(&details)).await?;
    assert_eq!(download.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn the_documented_error_replies_become_typed_errors() -> TestResult {
    for (name, kind, calls) in [
        // The only code a fresh token may cure: one refresh, one replay.
        ("reply_error_1030.json", ErrorKind::Auth, 2),
        ("reply_error_1060.json", ErrorKind::Auth, 1),
        ("reply_error_1000_mandatory.json", ErrorKind::Auth, 1),
        ("reply_error_1000_url.json", ErrorKind::Http, 1),
        ("reply_error_1040.json", ErrorKind::Http, 1),
        ("reply_error_4000.json", ErrorKind::QuotaExceeded, 1),
    ] {
        let server = server().await;
        let reply = fixture(name);
        let status = reply["http_status"].as_u64().unwrap() as u16;
        let mock = server
            .mock_async(|when, then| {
                when.method(GET).path(format!("{V2}/1"));
                then.status(status).json_body(reply["body"].clone());
            })
            .await;
        let err = client(&server, ApiVersion::V2)
            .job_status(&JobHandle::new("All_Orders", "1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert_eq!(
            err.vendor_code(),
            Some(reply["body"]["code"].to_string().as_str()),
            "{name}"
        );
        assert_eq!(
            err.vendor_message(),
            reply["body"]["message"].as_str(),
            "{name}"
        );
        assert_eq!(mock.calls_async().await, calls, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn the_clients_create_requests_equal_the_documented_ones() -> TestResult {
    let server = server().await;
    let with_query = fixture("request_create_query.json");
    let with_cursor = fixture("request_create_cursor.json");
    let created = fixture("reply_create_seed001.json");
    let q = &with_query["body"]["query"];
    let first = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(V2)
                .json_body(with_query["body"].clone());
            then.status(200).json_body(created["body"].clone());
        })
        .await;
    let next = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(V2)
                .json_body(with_cursor["body"].clone());
            then.status(200).json_body(created["body"].clone());
        })
        .await;
    let client = client(&server, ApiVersion::V2);
    let query = ReadQuery::new()
        .fields(
            q["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned()),
        )
        .criteria(q["criteria"].as_str().unwrap())
        .max_records(MaxRecords::new(q["max_records"].as_u64().unwrap() as u32)?);
    client.create_job("All_Orders", &query).await?;
    client
        .create_next_job(
            "All_Orders",
            with_cursor["body"]["query"]["record_cursor"]
                .as_str()
                .unwrap(),
        )
        .await?;
    assert_eq!(first.calls_async().await, 1);
    assert_eq!(next.calls_async().await, 1);
    Ok(())
}

#[tokio::test]
async fn a_default_query_sends_no_body_as_the_seed_does() -> TestResult {
    let server = server().await;
    let none = fixture("request_create_none_seed001.json");
    assert!(none["body"].is_null());
    let created = fixture("reply_create_seed001.json");
    for (version, path) in [(ApiVersion::V2, V2), (ApiVersion::V2_1, V2_1)] {
        let mock = server
            .mock_async(|when, then| {
                when.method(POST).path(path).body("");
                then.status(200).json_body(created["body"].clone());
            })
            .await;
        client(&server, version)
            .create_job("All_Orders", &ReadQuery::new())
            .await?;
        assert_eq!(mock.calls_async().await, 1, "{version}");
    }
    Ok(())
}
