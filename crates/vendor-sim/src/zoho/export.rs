//! Downloads: the report's rows, generated from their number, and the ZIP of one CSV that
//! holds a job's rows (with the `recordCursor` header while rows remain).

use std::io::Write;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::zoho::COLUMNS;
use crate::zoho::jobs::{cursor_after, status_of};
use crate::zoho::routes::{St, creator_error, read_access, within};

pub(super) async fn download(
    State(st): St,
    Path((owner, app, report, id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let total = match read_access(&st, &owner, &app, &headers, &report) {
        Ok(total) => total,
        Err(r) => return r,
    };
    let (key, cached) = {
        let mut inner = st.lock();
        if !within(&mut inner.downloads, st.cfg.downloads_per_minute) {
            st.ctx.counters.incr("zoho.throttled.download");
            return creator_error(
                StatusCode::TOO_MANY_REQUESTS,
                2955,
                "Download limit reached; try after a minute",
            );
        }
        let Some(job) = inner.jobs.get(&id).filter(|j| j.report == report) else {
            return creator_error(StatusCode::NOT_FOUND, 2893, "No job with this id");
        };
        if status_of(&st, job) != "Completed" {
            return creator_error(StatusCode::BAD_REQUEST, 2951, "The job has not completed");
        }
        let key = (job.first_row, job.count, job.columns.clone());
        let cached = inner.zips.get(&key).cloned();
        (key, cached)
    };
    let zip = match cached {
        Some(z) => z,
        None => {
            let name = format!("{report}.csv");
            let (first, count, columns) = key.clone();
            let built =
                tokio::task::spawn_blocking(move || build_zip(&name, first, count, &columns))
                    .await
                    .unwrap_or_default();
            st.lock().zips.insert(key.clone(), built.clone());
            built
        }
    };
    let count = key.1;
    let cursor = {
        let mut inner = st.lock();
        inner.rows_served += count;
        cursor_after(&mut inner, &id, total)
    };
    st.ctx.counters.add("zoho.rows.served", count);
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"result.zip\"",
            ),
        ],
        zip,
    )
        .into_response();
    if let Some(c) = cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert("recordCursor", c);
    }
    resp
}

pub(super) const CITIES: [&str; 6] = [
    "Zürich",
    "São Paulo",
    "東京",
    "Kraków",
    "Reykjavík",
    "Austin",
];

pub(super) fn row_values(n: u64) -> Vec<String> {
    let name = if n.is_multiple_of(7) {
        format!("O\"Brien {n}")
    } else {
        format!("Customer {n}")
    };
    let notes = if n.is_multiple_of(11) {
        format!("first line, with a comma\nsecond line of {n}")
    } else if n.is_multiple_of(5) {
        "needs \"follow-up\", soon".to_owned()
    } else {
        String::new()
    };
    vec![
        format!("{}", 3_000_000_000_000 + n),
        format!("user{n}@example.com"),
        name,
        CITIES[(n % 6) as usize].to_owned(),
        format!("{}.{:02}", n % 10_000, n % 100),
        ["Open", "Shipped", "Closed"][(n % 3) as usize].to_owned(),
        notes,
        format!(
            "2024-{:02}-{:02} 10:{:02}:00",
            n % 12 + 1,
            n % 28 + 1,
            n % 60
        ),
        if n.is_multiple_of(13) {
            "vip,🚀".to_owned()
        } else {
            "standard".to_owned()
        },
        format!("{}", (n * 37) % 101),
    ]
}

pub(super) fn all_columns() -> Vec<usize> {
    (0..COLUMNS.len()).collect()
}

pub(super) fn build_zip(name: &str, first: u64, count: u64, columns: &[usize]) -> Bytes {
    let mut csv_bytes = Vec::with_capacity(count as usize * 16 * columns.len());
    {
        let mut w = csv::Writer::from_writer(&mut csv_bytes);
        let _ = w.write_record(columns.iter().map(|&i| COLUMNS[i]));
        for n in first..first + count {
            let values = row_values(n);
            let _ = w.write_record(columns.iter().map(|&i| &values[i]));
        }
        let _ = w.flush();
    }
    let mut out = std::io::Cursor::new(Vec::with_capacity(csv_bytes.len() / 3));
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        let _ = zip.start_file(name, options);
        let _ = zip.write_all(&csv_bytes);
        let _ = zip.finish();
    }
    Bytes::from(out.into_inner())
}
