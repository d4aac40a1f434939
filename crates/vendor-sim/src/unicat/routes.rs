//! The HTTP surface: the reply envelopes, the documented parameters of each route and the
//! checks against them, and the bulk route that dispatches to reads and jobs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::unicat::St;
use crate::unicat::catalogue::bulk_get;
use crate::unicat::jobs::{queue_job, tick};
use crate::unicat::selection::{Want, evaluate};
use crate::unicat::session::{authorize, with_jwt};

pub(super) type Sel = State<Arc<St>>;

pub(super) fn ok(result: Value, data: Value) -> Response {
    Json(json!({ "success": true, "result": result, "data": data })).into_response()
}

pub(super) fn fail(status: u16, code: i64, message: &str, info: Value) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        st,
        Json(json!({
            "success": false,
            "result": { "code": code, "message": message, "info": info },
            "data": {},
        })),
    )
        .into_response();
    if status == 401 {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"unicat\""),
        );
    }
    resp
}

/// The documented `400 Bad request` for a body that does not match the route's parameters.
pub(super) fn bad_request(message: impl Into<String>, field: &str) -> Response {
    fail(400, 400, &message.into(), json!({ "field": field }))
}

/// The type a body parameter must have.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Str,
    Int,
    Bool,
    List,
    StrList,
    Any,
}

impl Ty {
    fn check(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_u64(),
            Ty::Bool => v.is_boolean(),
            Ty::List => v.is_array(),
            Ty::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "a non-negative integer",
            Ty::Bool => "a boolean",
            Ty::List => "a list",
            Ty::StrList => "a list of strings",
            Ty::Any => "any value",
        }
    }
}

/// One documented parameter: name, type, required.
pub(super) type Param = (&'static str, Ty, bool);

/// Refuses unknown keys, wrong types and missing required parameters (see the module docs).
pub(super) fn check_params(body: &Map<String, Value>, params: &[Param]) -> Result<(), Response> {
    for key in body.keys() {
        if !params.iter().any(|(k, _, _)| k == key) {
            return Err(bad_request(format!("unknown parameter {key}"), key));
        }
    }
    for (key, ty, required) in params {
        match body.get(*key) {
            None if *required => {
                return Err(bad_request(format!("{key} is required"), key));
            }
            Some(v) if !ty.check(v) => {
                return Err(bad_request(format!("{key} must be {}", ty.name()), key));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The documented parameters of a bulk route.
pub(super) fn bulk_params(area: &str, op: &str) -> Vec<Param> {
    let mut p: Vec<Param> = vec![("selection", Ty::List, true)];
    match (area, op) {
        (_, "get") => {
            p.push(("page.size", Ty::Int, false));
            p.push(("page.cursor", Ty::Any, false));
            if area == "records" {
                p.push(("language", Ty::Str, false));
                p.push(("languages", Ty::StrList, false));
            }
        }
        ("records", "duplicate") => p.push(("ordering", Ty::Str, false)),
        ("records", "link" | "shallow_copy") => {
            p.push(("parent", Ty::Str, true));
            p.push(("before_record", Ty::Str, false));
            p.push(("ordering", Ty::Str, false));
        }
        ("assets", "move") => p.push(("parent", Ty::Str, true)),
        _ => {}
    }
    p
}

pub(super) fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(fail(400, 400, "the body is not a JSON object", json!({}))),
    }
}

pub(super) async fn bulk(
    State(st): Sel,
    Path((project, area, op)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let jwt = match authorize(&st, &headers) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let resp = bulk_inner(&st, &project, &area, &op, &body);
    with_jwt(resp, jwt)
}

pub(super) fn bulk_inner(
    st: &Arc<St>,
    project: &str,
    area: &str,
    op: &str,
    body: &Bytes,
) -> Response {
    if project != st.cfg.project {
        return fail(403, 403, "not a member of this project", json!({}));
    }
    let allowed: &[&str] = match area {
        "records" => &[
            "get",
            "delete",
            "undelete",
            "permanent_delete",
            "duplicate",
            "link",
            "shallow_copy",
        ],
        "assets" => &["get", "delete", "undelete", "move"],
        "schema" => &["get", "copy", "commit", "revert", "save_as_new"],
        _ => &[],
    };
    if !allowed.contains(&op) {
        return fail(
            404,
            404,
            "no such bulk operation",
            json!({"area": area, "op": op}),
        );
    }
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_params(&body, &bulk_params(area, op)) {
        return r;
    }
    let mut inner = st.lock();
    tick(st, &mut inner);
    let want = Want {
        area: area.to_owned(),
        deleted: matches!(op, "undelete" | "permanent_delete"),
        read: op == "get",
    };
    let slots = match evaluate(&inner, &want, body.get("selection")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if op == "get" {
        return bulk_get(st, &inner, area, &body, &slots);
    }
    queue_job(st, &mut inner, area, op, &body, slots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use crate::SimBuilder;
    use crate::unicat::{UnicatConfig, start};

    async fn post(url: String, jwt: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
        // reqwest is built without its `json` feature here.
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(j) = jwt {
            req = req.header("Authorization", format!("Bearer {j}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let jwt = resp
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.bytes().await.unwrap();
        (status, jwt, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_are_checked_against_the_documented_parameters() {
        let cfg = UnicatConfig::default();
        let (sim, _) = start(SimBuilder::new("unicat"), cfg.clone()).await.unwrap();
        let base = sim.base_url();
        let p = &cfg.project;

        // The login reply is shaped as the API's: cc.-prefixed side-stores, a version string.
        let (status, _, body) = post(
            format!("{base}/api/p/{p}/auth"),
            None,
            json!({"api_key": cfg.api_key, "typo": 1}),
        )
        .await;
        assert_eq!(
            (status, &body["result"]["info"]["field"]),
            (400, &json!("typo"))
        );
        let (status, jwt, body) = post(
            format!("{base}/api/p/{p}/auth"),
            None,
            json!({"api_key": cfg.api_key, "omit_extended_definitions": false}),
        )
        .await;
        assert_eq!(status, 200);
        let jwt = jwt.unwrap();
        assert!(body["data"]["cc.projects"][p].is_object());
        assert!(body["data"]["cc.users"].is_object());
        assert!(body["data"]["cc.projects_members"].is_array());
        assert!(body["result"]["cc.version"].is_string());
        assert!(body["data"].get("projects").is_none());

        let get = format!("{base}/api/p/{p}/records/bulk/get");
        let refused = [
            // A nested page object: a real server may ignore it; the simulator refuses it.
            (json!({"selection": ["r-f1"], "page": {"size": 2}}), "page"),
            (
                json!({"selection": ["r-f1"], "page.size": "2"}),
                "page.size",
            ),
            (json!({"page.size": 2}), "selection"),
            (
                json!({"selection": [{"children": "r-f1", "chanel": "web"}]}),
                "selection",
            ),
            (
                json!({"selection": [{"search": {"q": "x", "lang": "nl"}}]}),
                "selection",
            ),
        ];
        for (body, field) in refused {
            let (status, _, reply) = post(get.clone(), Some(&jwt), body.clone()).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(reply["success"], false);
            assert_eq!(reply["result"]["code"], 400);
            assert_eq!(reply["result"]["info"]["field"], field, "{body}");
        }
        let (status, _, reply) = post(
            get,
            Some(&jwt),
            json!({"selection": [{"children": "r-f1"}], "page.size": 2}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"]["records"].as_array().unwrap().len(), 2);
        assert_eq!(reply["result"]["page.cursor"], json!([0, 2]));

        let (status, _, _) = post(
            format!("{base}/api/p/{p}/records/bulk/delete"),
            Some(&jwt),
            json!({"selection": ["r-f1-001"], "page.size": 2}),
        )
        .await;
        assert_eq!(status, 400, "bulk/delete takes no page.size");
        let (status, _, _) = post(format!("{base}/sync/get"), Some(&jwt), json!({})).await;
        assert_eq!(status, 400, "cc_cursor is required");
        let (status, _, _) =
            post(format!("{base}/sync/cursors"), Some(&jwt), json!({"x": 1})).await;
        assert_eq!(status, 400);
        sim.shutdown().await;
    }
}
