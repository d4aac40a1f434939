//! Tasks: creating them (with the switches' foreign tasks), how they look over time, and the
//! task routes (list, look, acknowledge).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::zefort::routes::{
    St, bad_request, known_keys, known_params, not_found_reply, paged, parse_object, query_map,
    shuffle,
};
use crate::zefort::{Action, ForeignTasks, Inner, SimTask, TaskOrder, ZState, ZefortConfig};

impl SimTask {
    pub(super) fn backend_status<'a>(&'a self, cfg: &'a ZefortConfig) -> (&'a str, &'a str) {
        match (&self.fail, self.finished) {
            (_, false) => {
                let running = &cfg.running_statuses;
                let status = match running.len() {
                    0 => "pending",
                    n => running[self.looks.saturating_sub(1) % n].as_str(),
                };
                (status, "")
            }
            (Some(info), true) => (cfg.failure_status.as_str(), info),
            (None, true) => ("done", ""),
        }
    }

    pub(super) fn to_json(&self, cfg: &ZefortConfig) -> Value {
        let (status, info) = self.backend_status(cfg);
        let mut task = json!({
            "id": self.id,
            "description": "Contract Bulk operation",
            "details": { "query_params": {}, "data": self.body },
            "backend_status": status,
            "backend_status_info": info,
            "frontend_status": if self.frontend_done { "done" } else { "pending" },
        });
        if cfg.conflicting_status_field {
            // The opposite of the truth, so a client reading it gets the wrong answer.
            task["status"] = json!(if self.finished { "pending" } else { "done" });
        }
        task
    }
}

pub(super) fn create_task(
    st: &ZState,
    inner: &mut Inner,
    body: Value,
    action: Action,
    targets: Vec<String>,
) -> Value {
    match st.cfg.foreign_tasks {
        ForeignTasks::None => {}
        ForeignTasks::Different => {
            let id = inner.new_id("ct");
            foreign_task(
                st,
                inner,
                json!({ "status": "archived", "contracts": [id] }),
            );
        }
        ForeignTasks::Identical => foreign_task(st, inner, body.clone()),
    }
    let id = inner.new_id("task");
    let fail = if inner.fail_next.is_empty() {
        None
    } else {
        Some(inner.fail_next.remove(0))
    };
    let run_time = st.cfg.task_base + st.cfg.task_per_contract * targets.len() as u32;
    let task = SimTask {
        id,
        created: Instant::now(),
        run_time,
        body,
        action,
        targets,
        fail,
        finished: false,
        frontend_done: false,
        foreign: false,
        looks: 0,
    };
    let out = task.to_json(&st.cfg);
    inner.tasks.push(task);
    st.ctx.counters.incr("tasks.created");
    out
}

/// Another user's running task with `body`, created now; counter `tasks.foreign`.
pub(super) fn foreign_task(st: &ZState, inner: &mut Inner, body: Value) {
    let id = inner.new_id("task");
    inner.tasks.push(SimTask {
        id,
        created: Instant::now(),
        run_time: st.cfg.task_base,
        body,
        action: Action::Tag(String::new()),
        targets: Vec::new(),
        fail: None,
        finished: false,
        frontend_done: false,
        foreign: true,
        looks: 0,
    });
    st.ctx.counters.incr("tasks.foreign");
}

/// The HTTP status of a successful creation, as configured.
pub(super) fn created(st: &ZState) -> StatusCode {
    StatusCode::from_u16(st.cfg.create_status)
        .ok()
        .filter(StatusCode::is_success)
        .unwrap_or(StatusCode::CREATED)
}

pub(super) async fn list_tasks(
    State(st): St,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let query = query_map(raw);
    if let Err(r) = known_params(&query, &[]) {
        return *r;
    }
    let items = {
        let mut inner = st.lock();
        inner.settle();
        inner.list_reads += 1;
        let mut tasks: Vec<Value> = inner.tasks.iter().map(|t| t.to_json(&st.cfg)).collect();
        match st.cfg.task_order {
            TaskOrder::NewestFirst => tasks.reverse(),
            TaskOrder::OldestFirst => {}
            TaskOrder::Shuffled => shuffle(&mut tasks, inner.list_reads),
        }
        tasks
    };
    paged(&st, &headers, "/api/tasks/", &query, items)
}

pub(super) async fn get_task(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let mut inner = st.lock();
    inner.settle();
    match inner.tasks.iter_mut().find(|t| t.id == id) {
        Some(t) => {
            t.looks += 1;
            Json(t.to_json(&st.cfg)).into_response()
        }
        None => not_found_reply(),
    }
}

pub(super) async fn patch_task(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["frontend_status"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let done = match obj.get("frontend_status") {
        Some(Value::String(s)) if s == "done" => true,
        Some(Value::String(s)) if s == "pending" => false,
        Some(other) => {
            return bad_request(json!({
                "frontend_status": [format!("\"{}\" is not a valid choice.", other.as_str().unwrap_or("?"))]
            }));
        }
        None => return bad_request(json!({ "frontend_status": ["This field is required."] })),
    };
    let mut inner = st.lock();
    inner.settle();
    let Some(task) = inner.tasks.iter_mut().find(|t| t.id == id) else {
        return not_found_reply();
    };
    task.frontend_done = done;
    let foreign = task.foreign;
    let out = task.to_json(&st.cfg);
    drop(inner);
    if done {
        st.ctx.counters.incr(if foreign {
            "tasks.foreign_acknowledged"
        } else {
            "tasks.acknowledged"
        });
    }
    Json(out).into_response()
}
