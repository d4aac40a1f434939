//! The Zefort simulator against the vendor's documented examples (zefort-api's fixtures), and
//! its strictness: unknown keys, wrong types and missing fields are 400s in DRF's shape.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use vendor_sim::SimBuilder;
use vendor_sim::zefort::{Zefort, ZefortConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Sim {
    base: String,
    http: reqwest::Client,
    zefort: Zefort,
    _handle: vendor_sim::SimHandle,
}

async fn sim() -> Sim {
    let (handle, zefort) =
        vendor_sim::zefort::start(SimBuilder::new("zefort"), ZefortConfig::default())
            .await
            .unwrap();
    Sim {
        base: handle.base_url(),
        http: reqwest::Client::new(),
        zefort,
        _handle: handle,
    }
}

impl Sim {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(ZefortConfig::default().api_key, Some(""));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A documented example from zefort-api's fixtures.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../zefort-api/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn the_documented_requests_are_accepted_and_answered_in_the_documented_shapes() -> TestResult
{
    let s = sim().await;
    s.zefort.seed(4, "contracts of service", 2);
    let req = fixture("bulk_update.request.json");
    let (status, task) = s
        .send(
            "POST",
            req["path"].as_str().unwrap(),
            Some(req["body"].clone()),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {task}");
    let documented = fixture("bulk_update.reply.json")["body"].clone();
    assert_eq!(keys(&task), keys(&documented));
    assert_eq!(keys(&task["details"]), keys(&documented["details"]));
    assert_eq!(task["details"]["data"], req["body"]);
    assert_eq!(task["backend_status"], "pending");

    let id = task["id"].as_str().unwrap();
    let ack = fixture("task_acknowledge.request.json")["body"].clone();
    let (status, acked) = s
        .send("PATCH", &format!("/api/tasks/{id}/"), Some(ack))
        .await;
    assert_eq!(status, 200);
    assert_eq!(acked["frontend_status"], "done");
    assert_eq!(
        keys(&acked),
        keys(&fixture("task_acknowledge.reply.json")["body"])
    );

    let req = fixture("tag_create.request.json");
    let (status, tag) = s
        .send("POST", "/api/tags/", Some(req["body"].clone()))
        .await;
    assert_eq!(status, 201);
    assert_eq!(keys(&tag), keys(&fixture("tag_create.reply.json")["body"]));
    let tag_id = tag["id"].as_str().unwrap();
    let search = fixture("tag_attach_search.request.json")["body"].clone();
    let (status, _) = s
        .send(
            "POST",
            &format!("/api/tags/{tag_id}/contracts/"),
            Some(search),
        )
        .await;
    assert!((200..300).contains(&status));
    Ok(())
}

#[tokio::test]
async fn unknown_keys_wrong_types_and_missing_fields_are_400s() -> TestResult {
    let s = sim().await;
    s.zefort.seed(4, "contracts of service", 2);
    let search = json!({"q_tags": "contracts of service"});
    let cases = [
        // A misspelt key the real server might silently ignore.
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"attribute": {"end_date": "2023-02-15"}, "search": search}),
            "attribute",
        ),
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"status": "done", "search": search, "page": {"size": 2}}),
            "page",
        ),
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"status": "done", "search": {"q_tag": "x"}}),
            "search",
        ),
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"status": 5, "search": search}),
            "status",
        ),
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"attributes": [], "search": search}),
            "attributes",
        ),
        (
            "POST",
            "/api/contracts/bulk_update/",
            json!({"status": "done"}),
            "non_field_errors",
        ),
        (
            "POST",
            "/api/tags/",
            json!({"tag_name": "x", "active": "yes"}),
            "active",
        ),
        ("POST", "/api/tags/", json!({"active": true}), "tag_name"),
        (
            "POST",
            "/api/tags/",
            json!({"name": "x", "tag_name": "y"}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, reply) = s.send(method, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(reply.get(field).is_some(), "{body}: {reply}");
    }
    let (_, task) = s
        .send(
            "POST",
            "/api/contracts/bulk_update/",
            Some(json!({"status": "done", "search": search})),
        )
        .await;
    let id = task["id"].as_str().unwrap();
    let (status, reply) = s
        .send(
            "PATCH",
            &format!("/api/tasks/{id}/"),
            Some(json!({"frontend_status": "done", "seen": true})),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply, json!({"seen": ["Unknown field."]}));
    let (status, reply) = s
        .send("PATCH", &format!("/api/tasks/{id}/"), Some(json!({})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply,
        json!({"frontend_status": ["This field is required."]})
    );
    // Query parameters the docs do not list for the route.
    let (status, reply) = s.send("GET", "/api/tasks/?ordering=-id", None).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.get("ordering").is_some());
    let (status, _) = s.send("GET", "/api/contracts/?q_tag=x", None).await;
    assert_eq!(status, 400);
    assert_eq!(
        s.zefort.tasks().len(),
        1,
        "no refused request created a task"
    );
    Ok(())
}
