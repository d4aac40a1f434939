//! Property tests: Creator replies and downloaded ZIP/CSV results, whatever their bytes, decode
//! or fail with a typed error; never a panic, never rows silently dropped.

use std::io::{Seek, Write};
use std::sync::Arc;

use bulk_common::token::StaticToken;
use bulk_common::{ErrorKind, HttpOptions, RetryPolicy, SecretString};
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::Value;
use vendor_sim::arbitrary::{config, runtime};
use vendor_sim::canned::{Canned, Reply};

use crate::rows::read_zip;
use crate::{Client, JobHandle, JobStatus};

/// What the rows stream yields, read to its end.
type Read = Vec<Result<Vec<String>, crate::Error>>;

fn read(rt: &tokio::runtime::Runtime, zip: &[u8], expected: Option<u64>) -> Read {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(zip).unwrap();
    file.rewind().unwrap();
    rt.block_on(
        read_zip(file, expected, Default::default())
            .map(|r| r.map(|rec| rec.values().map(str::to_owned).collect()))
            .collect(),
    )
}

fn zip_of(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(contents).unwrap();
    zip.finish().unwrap().into_inner()
}

fn csv_of(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).unwrap();
    for row in rows {
        w.write_record(row).unwrap();
    }
    w.into_inner().unwrap()
}

/// CSV text with the characters that need quoting (no BOM: the csv crate strips a leading
/// U+FEFF from the first header name, as a reader of Zoho's files should).
fn field() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9 ,\"\r\n]{0,8}", "[^\u{feff}]{0,6}",]
}

/// A header and rows of its width.
fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    (1usize..5).prop_flat_map(|width| {
        (
            prop::collection::vec(field(), width),
            prop::collection::vec(prop::collection::vec(field(), width), 0..20),
        )
    })
}

/// The reference decode: the csv crate straight on the bytes, as `StringRecord`s.
fn reference(csv_bytes: &[u8]) -> Result<Vec<Vec<String>>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_bytes);
    reader.headers()?;
    reader
        .records()
        .map(|r| r.map(|rec| rec.iter().map(str::to_owned).collect()))
        .collect()
}

fn ends_in_decode_error(out: &Read) -> bool {
    matches!(out.last(), Some(Err(e)) if e.kind() == ErrorKind::Decode)
        && out[..out.len() - 1].iter().all(Result::is_ok)
}

#[test]
fn rows_roundtrip_through_zip() {
    let rt = runtime().unwrap();
    proptest!(config(64), |((header, rows) in table())| {
        let zip = zip_of("Report.csv", &csv_of(&header, &rows));
        let out = read(&rt, &zip, Some(rows.len() as u64));
        let got: Vec<Vec<String>> = out.into_iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got, rows.clone());
        // A count that differs from Zoho's is an error, not a short (or long) result.
        let out = read(&rt, &zip, Some(rows.len() as u64 + 1));
        prop_assert!(ends_in_decode_error(&out));
    });
}

#[test]
fn arbitrary_csv_in_a_valid_zip_matches_the_csv_crate() {
    let rt = runtime().unwrap();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(prop::sample::select(b"ab,\"\r\n\xff\xc3".to_vec()), 0..200),
    ];
    proptest!(config(64), |(csv_bytes in bytes)| {
        let out = read(&rt, &zip_of("r.csv", &csv_bytes), None);
        match reference(&csv_bytes) {
            Ok(rows) => {
                let got: Vec<Vec<String>> = out.into_iter().collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(got, rows);
            }
            // Ragged rows and invalid UTF-8 end the stream with an error, never skipped.
            Err(_) => prop_assert!(ends_in_decode_error(&out), "{:?}", out),
        }
    });
}

#[test]
fn ragged_rows_and_invalid_utf8_are_errors() {
    let rt = runtime().unwrap();
    proptest!(config(32), |((header, rows) in table(), at in any::<prop::sample::Index>(), invalid in any::<bool>())| {
        prop_assume!(!rows.is_empty());
        let mut csv_bytes = csv_of(&header, &rows);
        let i = at.index(rows.len());
        let good = csv_of(&header, &rows[..i]);
        let bad_row: &[u8] = if invalid { b"\xff\xfe\n" } else { b"x,y,z,w,v,u\n" };
        let mut bad = good.clone();
        bad.extend_from_slice(bad_row);
        bad.extend_from_slice(&csv_bytes.split_off(good.len()));
        let out = read(&rt, &zip_of("r.csv", &bad), None);
        if !invalid && header.len() == 6 {
            return Ok(());
        }
        prop_assert!(ends_in_decode_error(&out), "{:?}", out);
        // Whatever came before the error is a prefix of the good rows.
        let before: Vec<Vec<String>> = out[..out.len() - 1].iter().map(|r| r.as_ref().unwrap().clone()).collect();
        prop_assert_eq!(before.as_slice(), &rows[..before.len()]);
    });
}

#[test]
fn truncated_zips_are_decode_errors() {
    let rt = runtime().unwrap();
    proptest!(config(48), |((header, rows) in table(), at in any::<prop::sample::Index>())| {
        let zip = zip_of("Report.csv", &csv_of(&header, &rows));
        let cut = at.index(zip.len());
        let out = read(&rt, &zip[..cut], Some(rows.len() as u64));
        prop_assert!(ends_in_decode_error(&out), "cut at {} of {}: {:?}", cut, zip.len(), out);
    });
}

#[test]
fn arbitrary_bytes_are_not_a_zip() {
    let rt = runtime().unwrap();
    proptest!(config(64), |(bytes in prop::collection::vec(any::<u8>(), 0..512))| {
        let out = read(&rt, &bytes, None);
        prop_assert!(ends_in_decode_error(&out), "{:?}", out);
        prop_assert_eq!(out.len(), 1);
    });
}

fn json_value() -> impl Strategy<Value = Value> {
    vendor_sim::arbitrary::json_value(
        &[
            "code",
            "details",
            "id",
            "status",
            "state",
            "result",
            "count",
            "download_url",
            "record_cursor",
            "message",
        ],
        &["3000", "4000", "1030", "Completed", "In-progress", "x"],
    )
}

/// Creator replies to a status request: details only from a 2xx JSON reply that has them and
/// no error code; anything else a typed error with the status.
#[test]
fn job_status_replies_never_panic() {
    let rt = runtime().unwrap();
    let (sim, canned) = rt.block_on(Canned::start()).unwrap();
    let client = Client::builder()
        .creator_url(sim.base_url())
        .owner("owner")
        .app("app")
        .token_sources(Arc::new(StaticToken::new(SecretString::from("t"))), None)
        .http_options(HttpOptions::default().retry(RetryPolicy::none()))
        .build()
        .unwrap();
    let job = JobHandle::new("Report", "1");
    let status = prop::sample::select(vec![200u16, 201, 400, 401, 404, 429, 500, 503]);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), prop::option::of(json_value())).prop_map(|(details, code)| {
            let mut m = serde_json::Map::new();
            m.insert("details".into(), details);
            if let Some(c) = code {
                m.insert("code".into(), c);
            }
            Value::Object(m).to_string().into_bytes()
        }),
    ];
    proptest!(config(256), |(status in status, body in body)| {
        canned.set(Reply::new(status, body.clone()).header("content-type", "application/json"));
        match rt.block_on(client.job_status(&job)) {
            Ok(details) => {
                prop_assert!((200..300).contains(&status));
                let v: Value = serde_json::from_slice(&body).unwrap();
                // Only an object with an object `details` is a job.
                prop_assert!(v.is_object() && v["details"].is_object());
                let code = &v["code"];
                prop_assert!(code.is_null() || code == "3000" || code == 3000 || !(code.is_string() || code.is_number()));
                if let Some(s) = v["details"]["status"].as_str().or(v["details"]["state"].as_str()) {
                    prop_assert_eq!(details.status.clone(), JobStatus::from(s));
                }
            }
            Err(e) => {
                if (200..300).contains(&status) && serde_json::from_slice::<Value>(&body).is_err() {
                    prop_assert_eq!(e.kind(), ErrorKind::Decode);
                }
                if !(200..300).contains(&status) {
                    prop_assert_eq!(e.status(), Some(status));
                }
            }
        }
    });
}
