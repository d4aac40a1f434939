//! Property tests: every place that turns a vendor's bytes (or a stored file's) into values
//! returns a typed error on garbage, never panics. Replies are served by a loopback server
//! ([`vendor_sim::canned`]) so the decoders run exactly as in production.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vendor_sim::arbitrary::{config, runtime};
use vendor_sim::canned::{Canned, Reply};

use crate::token::{
    AccessToken, FileStore, OAuthConfig, OAuthRefreshSource, RefreshRateLimit, StoreKey,
    StoredToken, TokenSource, TokenStore,
};
use crate::{
    ErrorKind, HttpClient, HttpOptions, Method, RetryPolicy, decode_json, parse_retry_after,
};

/// Statuses a vendor may answer with (no 204/304: their bodies are dropped by HTTP itself).
fn status() -> impl Strategy<Value = u16> {
    prop::sample::select(vec![
        200u16, 201, 202, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504,
    ])
}

/// Arbitrary JSON, to reach the decoders past the JSON syntax check.
fn json_value() -> impl Strategy<Value = Value> {
    vendor_sim::arbitrary::json_value(
        &[
            "error",
            "error_description",
            "access_token",
            "expires_in",
            "x",
        ],
        &[],
    )
}

/// A body: raw bytes, or JSON that may have the shape a decoder looks for.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn plain_client(base: &str) -> HttpClient {
    HttpClient::builder("proptest")
        .base_url(base)
        .options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(config(512))]

    /// `Retry-After` is whatever the vendor sends; it parses or is ignored, never panics.
    #[test]
    fn retry_after_never_panics(value in prop_oneof![
        ".*",
        "[ -]?[0-9]{1,400}(\\.[0-9]{0,6})?([eE][+-]?[0-9]{1,4})?",
        "(inf|NaN|-0|1e999|18446744073709551616)",
    ]) {
        let now = SystemTime::now();
        let parsed = parse_retry_after(&value, now);
        if let Ok(secs) = value.trim().parse::<u64>() {
            prop_assert_eq!(parsed, Some(Duration::from_secs(secs)));
        }
        if value.trim().starts_with('-') && value.trim().parse::<f64>().is_ok_and(|f| f < 0.0) {
            prop_assert_eq!(parsed, None);
        }
    }

    /// `decode_json` (behind `Response::json`) fails exactly when serde would, as `Decode`.
    #[test]
    fn decode_json_is_a_decode_error_on_garbage(body in body()) {
        let reference = serde_json::from_slice::<Value>(&body);
        match decode_json::<Value>(&body) {
            Ok(v) => prop_assert_eq!(Some(v), reference.ok()),
            Err(e) => {
                prop_assert!(reference.is_err());
                prop_assert_eq!(e.kind(), ErrorKind::Decode);
                prop_assert!(e.body_excerpt().is_some_and(|x| x.chars().count() <= 513));
            }
        }
    }

    /// A stored token record is parsed or refused as `Storage`, never panics.
    #[test]
    fn stored_token_from_garbage(body in body()) {
        if let Err(e) = StoredToken::from_json(&body) {
            prop_assert_eq!(e.kind(), ErrorKind::Storage);
        }
    }

    /// What `to_json` writes, `from_json` reads back identically.
    #[test]
    fn stored_token_roundtrip(
        secret in "[ -~]{1,40}",
        expires_ms in prop::option::of(0u64..=4_102_444_800_000),
        refreshes in prop::collection::vec(any::<u64>(), 0..6),
    ) {
        let expires_at = expires_ms.map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
        let entry = StoredToken {
            token: AccessToken::new(SecretString::from(secret.clone()), expires_at),
            refreshes: refreshes.clone(),
        };
        let back = StoredToken::from_json(&entry.to_json().unwrap()).unwrap();
        prop_assert_eq!(back.token.secret().expose_secret(), secret.as_str());
        prop_assert_eq!(back.token.expires_at(), expires_at);
        prop_assert_eq!(back.refreshes, refreshes);
    }
}

/// Any reply to a plain request: 2xx gives the body back unchanged, anything else an error of
/// the status's kind carrying the status, and `Retry-After` read as `parse_retry_after` reads it.
#[test]
fn http_replies_become_responses_or_typed_errors() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let client = plain_client(&sim.base_url());
    proptest!(config(256), |(status in status(), body in body(), retry_after in prop::option::of(prop_oneof!["[0-9]{1,25}", ".{0,20}"]))| {
        let mut reply = Reply::new(status, body.clone());
        if let Some(v) = &retry_after {
            reply = reply.header("retry-after", v.as_bytes());
        }
        canned.set(reply);
        let result = rt.block_on(client.request(Method::Get, "/anything").send());
        match result {
            Ok(resp) => {
                prop_assert!((200..300).contains(&status));
                prop_assert_eq!(resp.status(), status);
                prop_assert_eq!(resp.body().as_ref(), body.as_slice());
                let reference = serde_json::from_slice::<Value>(&body);
                match resp.json::<Value>() {
                    Ok(v) => prop_assert_eq!(Some(v), reference.ok()),
                    Err(e) => {
                        prop_assert!(reference.is_err());
                        prop_assert_eq!(e.kind(), ErrorKind::Decode);
                    }
                }
            }
            Err(e) => {
                prop_assert!(status >= 400, "status {} gave {}", status, e);
                prop_assert_eq!(e.status(), Some(status));
                let kind = match status {
                    401 | 403 => ErrorKind::Auth,
                    429 => ErrorKind::RateLimited,
                    408 | 504 => ErrorKind::Timeout,
                    _ => ErrorKind::Http,
                };
                prop_assert_eq!(e.kind(), kind);
                let digits = retry_after
                    .as_deref()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
                if let Some(secs) = digits.and_then(|v| v.parse::<u64>().ok()) {
                    prop_assert_eq!(e.retry_after(), Some(Duration::from_secs(secs)));
                }
            }
        }
    });
}

fn oauth(
    base: &str,
    store: Option<Arc<dyn TokenStore>>,
    limit: Option<RefreshRateLimit>,
) -> OAuthRefreshSource {
    let mut cfg = OAuthConfig::new(
        format!("{base}/oauth/token"),
        "client",
        SecretString::from("secret"),
        SecretString::from("refresh"),
    )
    .http_options(HttpOptions::default().retry(RetryPolicy::none()))
    .rate_limit(limit);
    if let Some(store) = store {
        cfg = cfg.store(store);
    }
    OAuthRefreshSource::new(cfg).unwrap()
}

/// A token endpoint's reply, whatever it is: a token only from a 2xx reply with a non-empty
/// `access_token` string; otherwise an error of a kind a caller can act on.
#[test]
fn oauth_token_replies_never_panic() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let base = sim.base_url();
    let reply_body = prop_oneof![
        body(),
        (".{0,8}", json_value(), prop::option::of(".{0,8}")).prop_map(|(token, expires, error)| {
            let mut m = serde_json::Map::new();
            m.insert("access_token".into(), json!(token));
            m.insert("expires_in".into(), expires);
            if let Some(e) = error {
                m.insert("error".into(), json!(e));
            }
            Value::Object(m).to_string().into_bytes()
        }),
        any::<u64>()
            .prop_map(|n| format!(r#"{{"access_token":"t","expires_in":{n}}}"#).into_bytes()),
        any::<u64>()
            .prop_map(|n| format!(r#"{{"access_token":"t","expires_in":"{n}"}}"#).into_bytes()),
    ];
    proptest!(config(64), |(status in status(), body in reply_body)| {
        canned.set(Reply::new(status, body.clone()).header("content-type", "application/json"));
        let source = oauth(&base, None, None);
        match rt.block_on(source.token()) {
            Ok(token) => {
                prop_assert!((200..300).contains(&status));
                let v: Value = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(v["access_token"].as_str(), Some(token.secret().expose_secret()));
                prop_assert!(v.get("error").is_none_or(|e| !e.is_string()));
                prop_assert!(token.expires_at().is_some());
            }
            Err(e) => prop_assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Auth | ErrorKind::RateLimited | ErrorKind::Http
                        | ErrorKind::Decode | ErrorKind::Timeout
                ),
                "unexpected kind {:?}: {}", e.kind(), e
            ),
        }
    });
}

/// A corrupt token file is treated as absent (refreshing replaces it), never a panic or an
/// error; and corrupt refresh stamps in it cannot overflow the rate-limit arithmetic.
#[test]
fn file_store_survives_corrupt_files() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    canned.set(Reply::new(
        200,
        br#"{"access_token":"fresh","expires_in":3600}"#.to_vec(),
    ));
    let base = sim.base_url();
    let dir = tempfile::tempdir().unwrap();
    let file_body = prop_oneof![
        body(),
        (
            prop::option::of(any::<u64>()),
            prop::collection::vec(prop_oneof![Just(u64::MAX), any::<u64>(), Just(0u64)], 0..8)
        )
            .prop_map(|(expires, refreshes)| json!({
                "access_token": "stale",
                "expires_at_ms": expires,
                "refreshes_ms": refreshes,
            })
            .to_string()
            .into_bytes()),
    ];
    proptest!(config(48), |(bytes in file_body)| {
        let store = FileStore::new(dir.path()).unwrap();
        let source = oauth(&base, Some(Arc::new(store.clone())), Some(RefreshRateLimit { max: 2, per: Duration::from_secs(60) }));
        let key: &StoreKey = source.store_key();
        std::fs::write(dir.path().join(format!("{key}.token.json")), &bytes).unwrap();
        let loaded = rt.block_on(store.load(key));
        prop_assert!(loaded.is_ok());
        prop_assert_eq!(
            loaded.unwrap().is_some(),
            StoredToken::from_json(&bytes).is_ok()
        );
        match rt.block_on(source.token()) {
            Ok(_) => {}
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::RateLimited);
                prop_assert!(e.retry_after().is_some_and(|d| d <= Duration::from_secs(120)));
            }
        }
    });
}

/// The corrupt record that overflowed `t + window` in the refresh-rate check.
#[test]
fn refresh_stamps_at_u64_max_do_not_overflow() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    canned.set(Reply::new(
        200,
        br#"{"access_token":"fresh","expires_in":3600}"#.to_vec(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path()).unwrap();
    let source = oauth(
        &sim.base_url(),
        Some(Arc::new(store)),
        Some(RefreshRateLimit {
            max: 1,
            per: Duration::from_secs(60),
        }),
    );
    let record = json!({"access_token": "stale", "expires_at_ms": 0, "refreshes_ms": [u64::MAX]});
    let key = source.store_key().to_string();
    std::fs::write(
        dir.path().join(format!("{key}.token.json")),
        record.to_string(),
    )
    .unwrap();
    let token = rt.block_on(source.token()).unwrap();
    assert_eq!(token.secret().expose_secret(), "fresh");
}

/// `expires_in` of u64::MAX seconds overflowed the wall clock when the token was minted.
#[test]
fn huge_expires_in_does_not_overflow() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    canned.set(Reply::new(
        200,
        format!(r#"{{"access_token":"t","expires_in":{}}}"#, u64::MAX).into_bytes(),
    ));
    let token = rt
        .block_on(oauth(&sim.base_url(), None, None).token())
        .unwrap();
    assert!(token.expires_at().is_some());
}

/// A `Retry-After` of `1e300` seconds overflowed `Duration::from_secs_f64`.
#[test]
fn huge_fractional_retry_after_is_ignored() {
    assert_eq!(parse_retry_after("1e300", SystemTime::now()), None);
    assert_eq!(
        parse_retry_after("1.5", SystemTime::now()),
        Some(Duration::from_millis(1500))
    );
}

/// A stored expiry beyond what the platform's clock holds is a corrupt record, not a panic.
#[test]
fn stored_expiry_at_u64_max_is_handled() {
    let record = json!({"access_token": "t", "expires_at_ms": u64::MAX});
    match StoredToken::from_json(record.to_string().as_bytes()) {
        Ok(entry) => assert!(entry.token.expires_at().is_some()),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Storage),
    }
}
