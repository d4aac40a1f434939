//! The sync feed: publishing items (job reports among them) and the `/sync` routes that read it.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::unicat::jobs::tick;
use crate::unicat::routes::{Sel, Ty, check_params, fail, ok, parse_body};
use crate::unicat::session::{authorize, with_jwt};
use crate::unicat::{Inner, St};

pub(super) fn cc_cursor(inner: &Inner) -> u64 {
    inner
        .feed
        .last()
        .and_then(|i| i["cursor"].as_u64())
        .unwrap_or(1000)
}

pub(super) fn publish(st: &St, inner: &mut Inner, item: Value) {
    let cursor = cc_cursor(inner) + 1;
    let mut item = item;
    item["cursor"] = json!(cursor);
    inner.feed.push(item);
    st.ctx.counters.incr("sync.items");
}

pub(super) fn publish_job(st: &St, inner: &mut Inner, idx: usize, action: &str) {
    let now = Instant::now();
    let job = &inner.jobs[idx];
    if job.hidden {
        return;
    }
    let total = job.targets.len();
    let mut info = if st.cfg.bare_info {
        json!({})
    } else {
        json!({ "total": total, "remaining": total - job.processed })
    };
    if let Some(reason) = &job.reject
        && job.status == "rejected"
    {
        info["error"] = json!(reason);
    }
    if job.status == "done" && !job.failed.is_empty() {
        info["failed"] = json!(job.failed);
    }
    let item = json!({
        "type": "cc", "action": action, "data_type": "jobs", "data_key": job.token,
        "data": {
            "project_gid": st.cfg.project, "job": job.name, "status": job.status, "info": info,
            "created_on": st.secs(job.created), "updated_on": st.secs(now),
        },
    });
    publish(st, inner, item);
}

pub(super) async fn cursors(State(st): Sel, headers: HeaderMap, body: Bytes) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    // The SDK (`prepare_for_job`) and the client send `{}`.
    if let Err(r) = parse_body(&body).and_then(|b| check_params(&b, &[])) {
        return with_jwt(r, jwt);
    }
    let mut inner = st.lock();
    tick(&st, &mut inner);
    let cc = cc_cursor(&inner);
    drop(inner);
    with_jwt(ok(json!({ "cc.cursor": cc, "cursor": cc }), json!({})), jwt)
}

pub(super) async fn sync_get(State(st): Sel, headers: HeaderMap, body: Bytes) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return with_jwt(r, jwt),
    };
    // `cc_cursor` alone (the SDK's job tracker), or with the project cursor (its `sync`).
    if let Err(r) = check_params(
        &body,
        &[
            ("cc_cursor", Ty::Int, true),
            ("project", Ty::Str, false),
            ("cursor", Ty::Int, false),
        ],
    ) {
        return with_jwt(r, jwt);
    }
    let Some(from) = body.get("cc_cursor").and_then(Value::as_u64) else {
        return with_jwt(
            fail(
                400,
                400,
                "cc_cursor is required",
                json!({"field": "cc_cursor"}),
            ),
            jwt,
        );
    };
    st.ctx.counters.incr("sync.gets");
    let mut inner = st.lock();
    tick(&st, &mut inner);
    let after: Vec<&Value> = inner
        .feed
        .iter()
        .filter(|i| i["cursor"].as_u64().is_some_and(|c| c > from))
        .collect();
    let more = after.len() > st.cfg.sync_page;
    let mut items: Vec<Value> = after.into_iter().take(st.cfg.sync_page).cloned().collect();
    if st.cfg.shuffle_sync {
        use rand::seq::SliceRandom;
        items.shuffle(&mut inner.rng);
    }
    let mut result = json!({ "sync": items });
    if more {
        result["warning"] = json!("more sync items pending");
    }
    drop(inner);
    with_jwt(ok(result, json!({})), jwt)
}
