//! Request shapes (httpmock), configuration rules, secret hygiene, decoding, streaming and
//! pagination.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bulk_common::paginate::{Page, paginate};
use bulk_common::token::{AccessToken, OAuthConfig, OAuthRefreshSource, ParamsIn, StaticToken};
use bulk_common::{
    Auth, BaseUrl, Error, ErrorKind, HttpClient, HttpOptions, Method, Response, RetryPolicy,
    SecretString, VendorError,
};
use common::{TestResult, client, fixed_policy, sim};
use futures::{StreamExt, TryStreamExt};
use httpmock::prelude::*;
use serde_json::json;
use vendor_sim::{Fault, FaultRule};

const SECRET: &str = "s3cr3t-value-that-must-not-leak";

fn mock_client(server: &MockServer, auth: Auth) -> HttpClient {
    HttpClient::builder("my-vendor/1.2.3")
        .base_url(&server.base_url())
        .auth(auth)
        .options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn json_request_shape_user_agent_and_bearer() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/v1/items")
                .query_param("dry_run", "true")
                .query_param("q", "a b&c")
                .header("user-agent", "my-vendor/1.2.3")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-type", "application/json")
                .json_body(json!({"name": "x", "n": 1}));
            then.status(201).json_body(json!({"id": 7}));
        })
        .await;
    let client = mock_client(&server, Auth::bearer(SecretString::from(SECRET))?);
    let reply = client
        .request(Method::Post, "/v1/items")
        .query("dry_run", true)
        .query("q", "a b&c")
        .json(&json!({"name": "x", "n": 1}))
        .send()
        .await?;
    assert_eq!(reply.status(), 201);
    assert_eq!(reply.json::<serde_json::Value>()?["id"], 7);
    mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn basic_auth_sends_the_key_as_user_with_an_empty_password() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            // base64("test-key:")
            when.method(GET)
                .path("/api/tasks/")
                .header("authorization", "Basic dGVzdC1rZXk6");
            then.status(200).json_body(json!([]));
        })
        .await;
    let auth = Auth::basic(SecretString::from("test-key"), None)?;
    mock_client(&server, auth)
        .request(Method::Get, "/api/tasks/")
        .send()
        .await?;
    mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn a_user_agent_prefix_goes_in_front() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.header("user-agent", "nightly-export/2 my-vendor/1.2.3");
            then.status(204);
        })
        .await;
    let client = HttpClient::builder("my-vendor/1.2.3")
        .base_url(&server.base_url())
        .options(HttpOptions::default().user_agent_prefix("nightly-export/2"))
        .build()?;
    client.request(Method::Get, "/").send().await?;
    mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn oauth_refresh_request_shape_in_the_form_body() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/v2/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .form_urlencoded_tuple("grant_type", "refresh_token")
                .form_urlencoded_tuple("client_id", "1000.CLIENT")
                .form_urlencoded_tuple("client_secret", SECRET)
                .form_urlencoded_tuple("refresh_token", "refresh-xyz")
                .form_urlencoded_tuple("scope", "ZohoCreator.bulk.CREATE");
            then.status(200).json_body(json!({
                "access_token": "new-access", "expires_in": 3600, "token_type": "Bearer"
            }));
        })
        .await;
    let config = OAuthConfig::new(
        server.url("/oauth/v2/token"),
        "1000.CLIENT",
        SecretString::from(SECRET),
        SecretString::from("refresh-xyz"),
    )
    .scope("ZohoCreator.bulk.CREATE");
    let source = OAuthRefreshSource::new(config)?;
    use bulk_common::TokenSource;
    let token = source.token().await?;
    assert!(token.same_secret(&AccessToken::new(SecretString::from("new-access"), None)));
    mock.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn oauth_refresh_parameters_in_the_query_when_the_vendor_wants_that() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/v2/token")
                .query_param("grant_type", "refresh_token")
                .query_param("client_secret", SECRET);
            then.status(400).json_body(json!({"error": "invalid_code"}));
        })
        .await;
    let config = OAuthConfig::new(
        server.url("/oauth/v2/token"),
        "id",
        SecretString::from(SECRET),
        SecretString::from("refresh-xyz"),
    )
    .params_in(ParamsIn::Query);
    use bulk_common::TokenSource;
    let err = OAuthRefreshSource::new(config)?.token().await.unwrap_err();
    mock.assert_async().await;
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.vendor_code(), Some("invalid_code"));
    // The URL carried the secret; the error must not.
    assert!(!format!("{err} {err:?}").contains(SECRET), "{err:?}");
    assert!(!format!("{err:?}").contains("refresh-xyz"));
    Ok(())
}

#[tokio::test]
async fn a_vendor_error_reported_with_http_200_is_an_error() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/report");
            then.status(200)
                .json_body(json!({"code": 4000, "message": "Daily API limit reached"}));
        })
        .await;
    let decoder: bulk_common::ErrorDecoder = Arc::new(|r: &Response| {
        let v: serde_json::Value = serde_json::from_slice(r.body()).ok()?;
        let code = v["code"].as_i64()?;
        (code != 3000).then(|| {
            VendorError::new(
                Some(code.to_string()),
                v["message"].as_str().map(Into::into),
            )
            .kind(ErrorKind::QuotaExceeded)
        })
    });
    let client = HttpClient::builder("t/0")
        .base_url(&server.base_url())
        .error_decoder(decoder)
        .build()?;
    let err = client
        .request(Method::Get, "/report")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.vendor_code(), Some("4000"));
    assert_eq!(err.status(), Some(200));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Daily API limit reached"), "{err}");
    Ok(())
}

#[tokio::test]
async fn urls_of_another_origin_are_refused_before_sending() -> TestResult {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|_, then| {
            then.status(200);
        })
        .await;
    let client = mock_client(&server, Auth::bearer(SecretString::from(SECRET))?);
    for other in [
        "https://evil.example.com/result",
        "http://127.0.0.2:1/x",
        "//evil.example.com/x",
    ] {
        let err = client.request(Method::Get, other).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{other}: {err}");
    }
    // A same-origin absolute URL (a vendor download link) is fine.
    client
        .request(Method::Get, server.url("/api/x/result"))
        .send()
        .await?;
    assert_eq!(any.calls_async().await, 1);
    Ok(())
}

#[test]
fn base_urls_require_https_except_on_loopback() {
    let err = BaseUrl::parse("http://api.example.com").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("https"), "{err}");
    for ok in [
        "https://api.example.com",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:3000",
        "http://[::1]:9000",
        "https://on-prem.example.com:8443/creator",
    ] {
        assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
    }
    for (bad, says) in [
        ("", "empty"),
        ("not a url", "not a full URL"),
        ("eu", "no scheme and host"),
        ("user:pw@host", "no host"),
        ("ftp://example.com", "not supported"),
        ("https://user:pw@example.com", "credentials"),
        ("https://example.com/?token=1", "query"),
        ("http://10.0.0.1", "plain http"),
    ] {
        let err = BaseUrl::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        assert!(err.to_string().contains(says), "{bad}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}

#[test]
fn a_base_path_prefix_is_kept() -> TestResult {
    let base = BaseUrl::parse("https://on-prem.example.com:8443/creator/")?;
    assert_eq!(
        base.join("/api/v2/x")?.as_str(),
        "https://on-prem.example.com:8443/creator/api/v2/x"
    );
    Ok(())
}

#[test]
fn builders_refuse_empty_credentials_and_missing_urls_clearly() {
    let cases: Vec<(Error, &str)> = vec![
        (
            Auth::basic(SecretString::from(""), None).unwrap_err(),
            "empty",
        ),
        (Auth::bearer(SecretString::from("  ")).unwrap_err(), "empty"),
        (
            Auth::bearer(SecretString::from("bad\nvalue")).unwrap_err(),
            "not allowed in a header",
        ),
        (
            HttpClient::builder("t/0").build().unwrap_err(),
            "no base URL",
        ),
        (
            HttpClient::builder("t/0")
                .base_url("https://")
                .build()
                .unwrap_err(),
            "not a full URL",
        ),
        (
            OAuthRefreshSource::new(OAuthConfig::new(
                "https://accounts.example.com/token",
                "",
                SecretString::from("s"),
                SecretString::from("r"),
            ))
            .unwrap_err(),
            "client id is empty",
        ),
        (
            OAuthRefreshSource::new(OAuthConfig::new(
                "https://accounts.example.com/token",
                "id",
                SecretString::from(""),
                SecretString::from("r"),
            ))
            .unwrap_err(),
            "client secret is empty",
        ),
        (
            OAuthRefreshSource::new(OAuthConfig::new(
                "https://accounts.example.com/token",
                "id",
                SecretString::from("s"),
                SecretString::from(""),
            ))
            .unwrap_err(),
            "refresh token is empty",
        ),
        (
            OAuthRefreshSource::new(OAuthConfig::new(
                "http://accounts.example.com/token",
                "id",
                SecretString::from("s"),
                SecretString::from("r"),
            ))
            .unwrap_err(),
            "plain http",
        ),
    ];
    for (err, says) in cases {
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains(says), "expected {says:?} in {err}");
    }
}

#[test]
fn debug_output_never_shows_secrets() -> TestResult {
    let auth = Auth::basic(SecretString::from(SECRET), Some(SecretString::from(SECRET)))?;
    let bearer = Auth::bearer(SecretString::from(SECRET))?;
    let config = OAuthConfig::new(
        "https://accounts.example.com/token",
        "client-id",
        SecretString::from(SECRET),
        SecretString::from(SECRET),
    );
    let source = OAuthRefreshSource::new(config.clone())?;
    let token = AccessToken::new(SecretString::from(SECRET), None);
    let client = HttpClient::builder("t/0")
        .base_url("https://api.example.com")
        .auth(Auth::token_source(
            Arc::new(StaticToken::new(SecretString::from(SECRET))),
            "Bearer",
        ))
        .build()?;
    let shown = format!(
        "{auth:?} {bearer:?} {config:?} {source:?} {token:?} {client:?} {:?}",
        HttpClient::builder("t/0").auth(bearer.clone())
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("REDACTED"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn malformed_json_is_a_decode_error_with_an_excerpt() -> TestResult {
    let (sim, _) = sim(vec![
        FaultRule::new(Fault::MalformedBody).path("/items/{id}"),
    ])
    .await;
    let client = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(1)));
    let reply = client.request(Method::Get, "/items/3").send().await?;
    let err = reply.json::<serde_json::Value>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.body_excerpt().unwrap().starts_with("{\"truncated\""));
    assert!(std::error::Error::source(&err).is_some());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn downloads_stream_and_a_truncated_body_is_an_error() -> TestResult {
    let (sim, _) = sim(vec![
        FaultRule::new(Fault::TruncatedBody)
            .path("/download/{size}")
            .nth(2),
    ])
    .await;
    let client = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(1)));
    let whole = client
        .request(Method::Get, "/download/300000")
        .send_streaming()
        .await?;
    let chunks: Vec<_> = whole.into_stream().try_collect().await?;
    assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 300_000);

    let cut = client
        .request(Method::Get, "/download/300000")
        .send_streaming()
        .await?;
    let results: Vec<_> = cut.into_stream().collect().await;
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("the cut is reported");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let got: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|c| c.len())
        .sum();
    assert!(got < 300_000);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn pagination_streams_every_item_one_page_at_a_time() -> TestResult {
    let (sim, _) = sim(vec![]).await;
    let client = client(&sim.base_url(), fixed_policy(1, Duration::from_millis(1)));
    #[derive(serde::Deserialize)]
    struct Reply {
        items: Vec<u64>,
        next: Option<String>,
    }
    let stream = paginate(None::<String>, |cursor| {
        let client = client.clone();
        async move {
            let mut req = client.request(Method::Get, "/pages").query("size", 100);
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let r: Reply = req.send().await?.json()?;
            Ok(Page::new(r.items, r.next.map(Some)))
        }
    });
    futures::pin_mut!(stream);
    // Taking the first item fetches only the first page.
    assert_eq!(stream.next().await.transpose()?, Some(0));
    assert_eq!(sim.counters().received("GET /pages"), 1);
    let rest: Vec<u64> = stream.try_collect().await?;
    assert_eq!(rest.len(), 249);
    assert_eq!(rest.last(), Some(&249));
    assert_eq!(sim.counters().received("GET /pages"), 3);
    Ok(())
}

#[tokio::test]
async fn a_repeated_cursor_ends_the_stream_with_an_error() {
    let items: Vec<_> = paginate(1u32, |c| async move { Ok(Page::new(vec![c], Some(c))) })
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind(), ErrorKind::Decode);
}

/// A loopback server that answers every connection with `head` (status line, headers and the
/// start of a body) and then stays silent, holding the connection open.
async fn stalling_server(head: &'static str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            // Read the request's head first: a client does not expect a reply before it.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if socket.write_all(head.as_bytes()).await.is_ok() {
                open.push(socket);
            }
        }
    });
    Ok(base)
}

fn idle_client(base: &str, request: Duration, read: Duration) -> HttpClient {
    HttpClient::builder("t/0")
        .base_url(base)
        .options(
            HttpOptions::default()
                .request_timeout(request)
                .read_timeout(read)
                .retry(RetryPolicy::none()),
        )
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_never_comes_times_out_after_the_idle_read_timeout() -> TestResult {
    let base = stalling_server("").await?;
    let client = idle_client(&base, Duration::from_secs(300), Duration::from_secs(20));
    let started = tokio::time::Instant::now();
    let err = client
        .request(Method::Get, "/items/1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(started.elapsed().as_secs(), 20);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_is_cut_by_the_idle_timeout_before_the_request_timeout() -> TestResult {
    let base = stalling_server("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"a\":").await?;
    let client = idle_client(&base, Duration::from_secs(300), Duration::from_secs(30));
    let started = tokio::time::Instant::now();
    let err = client
        .request(Method::Get, "/items/1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed().as_secs(), 30);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_request_timeout_bounds_a_body_that_trickles_within_the_idle_timeout() -> TestResult {
    let base = stalling_server("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"a\":").await?;
    let client = idle_client(&base, Duration::from_secs(5), Duration::from_secs(30));
    let started = tokio::time::Instant::now();
    let err = client
        .request(Method::Get, "/items/1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed().as_secs(), 5);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stalled_download_ends_with_a_timeout_after_the_idle_read_timeout() -> TestResult {
    let base = stalling_server("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789").await?;
    // A streaming download has no whole-request timeout by default: only silence ends it.
    let client = idle_client(&base, Duration::from_secs(5), Duration::from_secs(40));
    let started = tokio::time::Instant::now();
    let reply = client
        .request(Method::Get, "/download/100")
        .send_streaming()
        .await?;
    assert_eq!(reply.status(), 200);
    let results: Vec<_> = reply.into_stream().collect().await;
    let got: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|c| c.len())
        .sum();
    assert_eq!(got, 10);
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("the stall is reported");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed().as_secs(), 40);
    Ok(())
}
