//! Background jobs: the bulk PATCH that creates one, its entries processed over (Tokio) time,
//! and the job and entry-page routes.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::chakra::apply::{apply, check_item, check_shape};
use crate::chakra::routes::{St, bad_request, check_auth, envelope_error, ok, resolve_proc};
use crate::chakra::{ChakraState, Inner, SimEntry, SimJob, uuid_like};

impl ChakraState {
    pub(super) fn advance_all(&self, inner: &mut Inner) {
        let ids: Vec<String> = inner
            .jobs
            .iter()
            .filter(|(_, j)| j.completed_ms == 0)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.advance(inner, &id);
        }
    }

    /// Processes the job's entries that are due.
    pub(super) fn advance(&self, inner: &mut Inner, job_id: &str) {
        let now = Instant::now();
        let now_ms = self.now_ms();
        let Some(job) = inner.jobs.get_mut(job_id) else {
            return;
        };
        let Some(proc) = inner.procedures.get_mut(&job.procedure) else {
            return;
        };
        let mut applied = 0;
        if self.cfg.quirks.fail_jobs {
            let started = job.entries.first().is_none_or(|e| e.due <= now);
            if started && !job.failed {
                job.failed = true;
                job.completed_ms = now_ms;
            }
            return;
        }
        let limit = self
            .cfg
            .quirks
            .stall_after
            .map_or(job.entries.len(), |n| n.min(job.entries.len()));
        while job.cursor < limit {
            let entry = &mut job.entries[job.cursor];
            if entry.status == "NOT_STARTED" {
                if entry.due > now {
                    break;
                }
                match apply(proc, &entry.payload, now_ms) {
                    Ok(()) => {
                        entry.status = "SUCCESS";
                        applied += 1;
                    }
                    Err(msg) => {
                        entry.status = "ERROR";
                        entry.message = Some(msg);
                    }
                }
            }
            job.cursor += 1;
        }
        if job.cursor == job.entries.len() && job.completed_ms == 0 {
            job.completed_ms = now_ms;
        }
        self.ctx.counters.add("chakra.items.applied", applied);
    }
}

/// A fixed shuffle of `order` for job number `seed` (xorshift; repeatable).
pub(super) fn shuffle(order: &mut [usize], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

pub(super) async fn bulk_update(
    State(st): St,
    Path(proc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(body)) => body,
        _ => return bad_request("the body must be a JSON object"),
    };
    if let Some(k) = body.keys().find(|k| k.as_str() != "processes") {
        return bad_request(&format!("unknown field `{k}` (expected only `processes`)"));
    }
    let items = match body.get("processes") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        Some(Value::Array(_)) => return bad_request("`processes` is empty"),
        Some(_) => return bad_request("`processes` must be an array"),
        None => return bad_request("`processes` is required"),
    };
    for (i, item) in items.iter().enumerate() {
        if let Err(msg) = check_shape(item) {
            return bad_request(&format!("processes[{i}]: {msg}"));
        }
    }
    if items.len() > st.cfg.max_items_per_request {
        return envelope_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!(
                "at most {} processes per request, got {}",
                st.cfg.max_items_per_request,
                items.len()
            ),
        );
    }
    let received = items.len() as u64;
    let now = Instant::now();
    let now_ms = st.now_ms();
    let (short, spec) = {
        let inner = st.lock();
        let Some(short) = resolve_proc(&inner, &proc) else {
            return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such procedure");
        };
        let spec = inner.procedures[&short].spec.clone();
        (short, spec)
    };
    // Validation happens outside the lock, so other requests are not held up by it.
    let mut due = now + st.cfg.start_delay;
    let entries: Vec<SimEntry> = items
        .into_iter()
        .map(|item| match check_item(&spec, &item) {
            Ok(()) => {
                due += st.cfg.item_time;
                SimEntry {
                    status: "NOT_STARTED",
                    message: None,
                    payload: item,
                    due,
                }
            }
            Err(msg) => SimEntry {
                status: "INVALID",
                message: Some(msg),
                payload: item,
                due: now,
            },
        })
        .collect();
    let mut inner = st.lock();
    inner.next += 1;
    let id = uuid_like(0x0b0b, inner.next);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    if st.cfg.quirks.shuffled_entries {
        shuffle(&mut order, inner.next);
    }
    inner.jobs.insert(
        id.clone(),
        SimJob {
            procedure: short,
            created_ms: now_ms,
            completed_ms: 0,
            entries,
            cursor: 0,
            order,
            failed: false,
        },
    );
    st.ctx.counters.incr("chakra.jobs.created");
    st.ctx.counters.add("chakra.items.received", received);
    ok(
        json!({
            "id": id, "createdAt": now_ms, "updatedAt": now_ms, "startedAt": now_ms,
            "completedAt": 0, "completionStatus": "IN_PROGRESS", "statusMessage": null,
            "team": uuid_like(0x7ea3, 1), "type": uuid_like(0x7e9e, 1),
        }),
        json!({}),
    )
}

pub(super) async fn get_job(State(st): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let mut inner = st.lock();
    st.advance(&mut inner, &id);
    let Some(job) = inner.jobs.get(&id) else {
        return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such background job");
    };
    let mut counts: BTreeMap<&str, u64> = [
        ("INVALID", 0),
        ("NOT_STARTED", 0),
        ("SUCCESS", 0),
        ("ERROR", 0),
    ]
    .into();
    for e in &job.entries {
        *counts.entry(e.status).or_default() += 1;
    }
    let done = job.completed_ms != 0;
    let status = match (job.failed, done) {
        (true, _) => "FAILED",
        (false, true) => "COMPLETED",
        (false, false) => "IN_PROGRESS",
    };
    let mut data = json!({
        "id": id, "createdAt": job.created_ms, "updatedAt": st.now_ms(),
        "startedAt": job.created_ms, "completedAt": job.completed_ms,
        "completionStatus": status,
        "statusMessage": job.failed.then_some("the background job failed"),
        "team": uuid_like(0x7ea3, 1), "type": "bulk_api_job",
    });
    if st.cfg.quirks.conflicting_status {
        data["status"] = json!(if done { "IN_PROGRESS" } else { "COMPLETED" });
    }
    ok(data, json!({ "bjEntryCompletionStatusVsCount": counts }))
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    skip: Option<usize>,
    limit: Option<usize>,
}

pub(super) async fn get_entries(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    let mut inner = st.lock();
    st.advance(&mut inner, &id);
    let Some(job) = inner.jobs.get(&id) else {
        return envelope_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such background job");
    };
    let skip = q.skip.unwrap_or(0);
    let limit = q.limit.unwrap_or(st.cfg.entries_page).clamp(1, 100);
    let end = (skip + limit).min(job.entries.len());
    let quirks = &st.cfg.quirks;
    let data: Vec<Value> = job
        .order
        .get(skip..end)
        .unwrap_or_default()
        .iter()
        .map(|&i| {
            let e = &job.entries[i];
            // `completionStatus` is the name the docs give the entry statuses
            // ("grouped by their completion status").
            let mut entry = json!({
                "id": uuid_like(0xe417, i as u64), "completionStatus": e.status,
                "statusMessage": e.message,
            });
            if !quirks.entries_without_index {
                entry["index"] = json!(i);
            }
            if !quirks.entries_without_payload {
                entry["payload"] = e.payload.clone();
            }
            if quirks.conflicting_status {
                entry["status"] = json!(if e.status == "SUCCESS" {
                    "ERROR"
                } else {
                    "SUCCESS"
                });
            }
            entry
        })
        .collect();
    let next = (end < job.entries.len())
        .then(|| format!("/v1/ext/background-job/{id}/entries?skip={end}&limit={limit}"));
    ok(
        json!(data),
        json!({ "total": job.entries.len(), "nextPage": next }),
    )
}
