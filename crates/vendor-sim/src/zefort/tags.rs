//! Tags: listing and creating them, and attaching one to contracts (a task).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::zefort::Action;
use crate::zefort::jobs::{create_task, created};
use crate::zefort::routes::{
    St, bad_request, known_keys, known_params, not_found_reply, paged, parse_object, query_map,
};
use crate::zefort::selection::targets;

pub(super) async fn list_tags(
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
    let items =
        {
            let mut inner = st.lock();
            inner.settle();
            inner
            .tags
            .values()
            .map(|t| {
                let n = inner.contracts.values().filter(|c| c.tags.contains(&t.id)).count();
                json!({ "id": t.id, "tag_name": t.name, "active": t.active, "num_contracts": n })
            })
            .collect()
        };
    paged(&st, &headers, "/api/tags/", &query, items)
}

pub(super) async fn create_tag(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["tag_name", "active"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let name = match obj.get("tag_name") {
        None | Some(Value::Null) => {
            return bad_request(json!({ "tag_name": ["This field is required."] }));
        }
        Some(Value::String(n)) if n.trim().is_empty() => {
            return bad_request(json!({ "tag_name": ["This field may not be blank."] }));
        }
        Some(Value::String(n)) => n.as_str(),
        Some(_) => return bad_request(json!({ "tag_name": ["Not a valid string."] })),
    };
    let active = match obj.get("active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request(json!({ "active": ["Must be a valid boolean."] })),
    };
    let mut inner = st.lock();
    if inner.tags.values().any(|t| t.name == name) {
        return bad_request(json!({ "tag_name": ["Tag with this tag name already exists."] }));
    }
    let id = inner.tag_by_name(name);
    if let Some(t) = inner.tags.get_mut(&id) {
        t.active = active;
    }
    st.ctx.counters.incr("tags.created");
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "tag_name": name, "active": active, "num_contracts": 0 })),
    )
        .into_response()
}

pub(super) async fn attach_tag(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, &["search", "contracts"]).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut inner = st.lock();
    inner.settle();
    if !inner.tags.contains_key(&id) {
        return not_found_reply();
    }
    let targets = match targets(&inner, &obj) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let task = create_task(
        &st,
        &mut inner,
        Value::Object(obj),
        Action::Tag(id),
        targets,
    );
    (created(&st), Json(task)).into_response()
}
