//! Bulk-read jobs: the strict create body, creating a job (first or by record cursor, under
//! the daily and per-minute limits), and its status as each API form spells it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use crate::zoho::export::all_columns;
use crate::zoho::routes::{St, check_app, creator_error, read_access, within};
use crate::zoho::session::authorize;
use crate::zoho::{COLUMNS, Inner, SimCursor, SimJob, ZohoState};

/// The create body's query, read strictly.
#[derive(Default)]
pub(super) struct CreateQuery {
    fields: Option<Vec<String>>,
    criteria: Option<String>,
    max_records: Option<u64>,
    record_cursor: Option<String>,
}

/// Zoho's reply to a request parameter it does not know, or of the wrong type ("Invalid
/// request parameter found - paramname": HTTP 401, code 1060, on Zoho's status-code page).
pub(super) fn invalid_parameter(name: &str) -> Response {
    creator_error(
        StatusCode::UNAUTHORIZED,
        1060,
        &format!("Invalid request parameter found - {name}"),
    )
}

/// Reads a create-job body strictly: no body (every field, every record), or
/// `{"query": {fields?, criteria?, max_records?, record_cursor?}}` with those types.
///
/// A real server may ignore an unknown key or coerce a wrong type; the simulator refuses them
/// with Zoho's documented codes (1060 for an unknown or mistyped parameter, 1000 for a missing
/// one), so that a misspelt or misplaced field fails a test instead of being silently dropped.
pub(super) fn parse_create(body: &[u8]) -> Result<CreateQuery, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateQuery::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        creator_error(
            StatusCode::BAD_REQUEST,
            2945,
            "Invalid JSON in the request body",
        )
    })?;
    let Some(top) = value.as_object() else {
        return Err(invalid_parameter("the body must be a JSON object"));
    };
    if let Some(key) = top.keys().find(|k| *k != "query") {
        return Err(invalid_parameter(key));
    }
    let Some(query) = top.get("query") else {
        return Err(creator_error(
            StatusCode::UNAUTHORIZED,
            1000,
            "A mandatory parameter - 'query' is either absent or has been used twice. Please check and try again.",
        ));
    };
    let Some(query) = query.as_object() else {
        return Err(invalid_parameter("query"));
    };
    let mut out = CreateQuery::default();
    for (key, v) in query {
        match key.as_str() {
            "fields" => {
                let fields = v
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|f| f.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| invalid_parameter("fields"))?;
                out.fields = Some(fields);
            }
            "criteria" => {
                out.criteria = Some(
                    v.as_str()
                        .ok_or_else(|| invalid_parameter("criteria"))?
                        .to_owned(),
                );
            }
            "max_records" => {
                out.max_records = Some(v.as_u64().ok_or_else(|| invalid_parameter("max_records"))?);
            }
            "record_cursor" => {
                out.record_cursor = Some(
                    v.as_str()
                        .ok_or_else(|| invalid_parameter("record_cursor"))?
                        .to_owned(),
                );
            }
            other => return Err(invalid_parameter(other)),
        }
    }
    Ok(out)
}

pub(super) async fn create_job(
    State(st): St,
    Path((owner, app, report)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check_app(&st, &owner, &app).and_then(|()| authorize(&st, &headers, true)) {
        return r;
    }
    let Some(total) = st.cfg.reports.iter().find(|r| r.0 == report).map(|r| r.1) else {
        return creator_error(StatusCode::NOT_FOUND, 2894, "No report named so");
    };
    let q = match parse_create(&body) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let mut inner = st.lock();
    if let Some(limit) = st.cfg.daily_job_limit
        && inner.jobs_today >= limit
    {
        return creator_error(
            StatusCode::OK,
            4000,
            "Developer API limit for the day has been reached",
        );
    }
    if !within(&mut inner.creates, st.cfg.creates_per_minute) {
        st.ctx.counters.incr("zoho.throttled.create");
        return creator_error(
            StatusCode::TOO_MANY_REQUESTS,
            2955,
            "Bulk read job creation limit reached; try after a minute",
        );
    }
    let (first_row, max_records, columns) = match &q.record_cursor {
        Some(cursor) => {
            if q.fields.is_some() || q.criteria.is_some() || q.max_records.is_some() {
                return creator_error(
                    StatusCode::BAD_REQUEST,
                    2946,
                    "record_cursor must be sent alone",
                );
            }
            let Some(c) = inner.cursors.get(cursor) else {
                return creator_error(StatusCode::BAD_REQUEST, 2947, "Invalid record_cursor");
            };
            if c.report != report {
                return creator_error(StatusCode::BAD_REQUEST, 2947, "Invalid record_cursor");
            }
            if c.issued.elapsed() > Duration::from_secs(15 * 60) {
                return creator_error(StatusCode::BAD_REQUEST, 2948, "record_cursor expired");
            }
            (c.next_row, c.max_records, c.columns.clone())
        }
        None => {
            let max = q.max_records.unwrap_or(100_000);
            if !(100_000..=200_000).contains(&max) || !max.is_multiple_of(1000) {
                return creator_error(
                    StatusCode::BAD_REQUEST,
                    2949,
                    "max_records must be a multiple of 1000 between 100000 and 200000",
                );
            }
            let columns = match &q.fields {
                None => all_columns(),
                Some(fields) => {
                    let mut columns = Vec::new();
                    for f in fields {
                        match COLUMNS.iter().position(|c| c == f) {
                            Some(i) => columns.push(i),
                            None => {
                                return creator_error(
                                    StatusCode::BAD_REQUEST,
                                    2950,
                                    &format!("Unknown field {f}"),
                                );
                            }
                        }
                    }
                    columns
                }
            };
            (1, max, columns)
        }
    };
    let cap = st
        .cfg
        .job_row_cap
        .map_or(max_records, |c| c.clamp(1, max_records));
    let count = cap.min(total.saturating_sub(first_row - 1));
    inner.jobs_today += 1;
    let number = st.next.fetch_add(1, Ordering::Relaxed);
    let id = format!("2000000{number:06}");
    let created_jobs = st.ctx.counters.get("zoho.jobs.created") + 1;
    inner.jobs.insert(
        id.clone(),
        SimJob {
            number: created_jobs,
            report: report.clone(),
            created: Instant::now(),
            first_row,
            count,
            max_records,
            columns,
        },
    );
    drop(inner);
    st.ctx.counters.incr("zoho.jobs.created");
    Json(json!({
        "code": 3000,
        "details": {
            "id": id,
            "operation": "read",
            "created_by": "sim.user",
            "created_time": "03-Sep-2021 14:55:46",
            "status": spelled(&uri, "In-progress"),
        }
    }))
    .into_response()
}

/// A status as each form's pages write it: seed 001 and the v2 samples say `In-progress` and
/// `Completed`; the v2.1 status page lists `IN PROGRESS`, `COMPLETED`, `FAILED`. Clients must
/// compare without case or punctuation.
pub(super) fn spelled(uri: &axum::http::Uri, status: &'static str) -> &'static str {
    if !uri.path().starts_with("/creator/v2.1/") {
        return status;
    }
    match status {
        "In-progress" => "IN PROGRESS",
        "Completed" => "COMPLETED",
        "Failed" => "FAILED",
        other => other,
    }
}

pub(super) fn status_of(st: &ZohoState, job: &SimJob) -> &'static str {
    if job.created.elapsed() < st.cfg.job_duration {
        "In-progress"
    } else if st.cfg.failing_jobs.contains(&job.number) {
        "Failed"
    } else {
        "Completed"
    }
}

/// The cursor for the rows after `job`, minted when first asked for.
pub(super) fn cursor_after(inner: &mut Inner, id: &str, total: u64) -> Option<String> {
    let job = inner.jobs.get(id)?;
    let next_row = job.first_row + job.count;
    if next_row > total {
        return None;
    }
    let cursor = format!("{}x{}", 7_000_000 + next_row, id);
    let report = job.report.clone();
    let max_records = job.max_records;
    let columns = job.columns.clone();
    inner.cursors.entry(cursor.clone()).or_insert(SimCursor {
        report,
        next_row,
        max_records,
        columns,
        issued: Instant::now(),
    });
    Some(cursor)
}

pub(super) async fn job_status(
    State(st): St,
    Path((owner, app, report, id)): Path<(String, String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let total = match read_access(&st, &owner, &app, &headers, &report) {
        Ok(total) => total,
        Err(r) => return r,
    };
    let mut inner = st.lock();
    let Some(job) = inner.jobs.get(&id).filter(|j| j.report == report) else {
        return creator_error(StatusCode::NOT_FOUND, 2893, "No job with this id");
    };
    let status = status_of(&st, job);
    let count = job.count;
    let mut details = json!({
        "id": id,
        "operation": "read",
        "created_by": "sim.user",
        "created_time": "03-Sep-2021 14:55:46",
        "status": spelled(&uri, status),
    });
    if status == "Completed" {
        let mut result = json!({
            "count": count,
            // Relative to the API host, under the form (v2 or v2.1) the status was asked in.
            "download_url": format!("{}/result", uri.path().trim_end_matches('/')),
        });
        if let Some(cursor) = cursor_after(&mut inner, &id, total) {
            result["record_cursor"] = json!(cursor);
        }
        details["result"] = result;
    }
    Json(json!({ "code": 3000, "details": details })).into_response()
}
