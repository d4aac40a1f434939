//! Search: which contracts a set of documented search parameters selects, the contract list,
//! and the `search` / `contracts` target of a bulk call.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::zefort::routes::{St, bad_request, known_params, paged, query_map};
use crate::zefort::{CONTRACT_STATUSES, Inner, SEARCH_PARAMS, SimContract};

impl Inner {
    pub(super) fn matches(&self, c: &SimContract, params: &BTreeMap<String, String>) -> bool {
        let tag_names: Vec<&str> = c
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t).map(|t| t.name.as_str()))
            .collect();
        params.iter().all(|(k, v)| {
            let needle = v.to_lowercase();
            match k.as_str() {
                "q" | "q_main_documents" => c.title.to_lowercase().contains(&needle),
                "q_tags" => tag_names.iter().any(|n| n.to_lowercase().contains(&needle)),
                "tags" => v.split(',').all(|t| c.tags.contains(t.trim())),
                "status" => c.status == *v,
                // Other documented parameters are accepted and do not narrow the simulated set.
                _ => true,
            }
        })
    }

    pub(super) fn select(&self, params: &BTreeMap<String, String>) -> Vec<String> {
        self.contracts
            .values()
            .filter(|c| self.matches(c, params))
            .map(|c| c.id.clone())
            .collect()
    }

    pub(super) fn contract_json(&self, c: &SimContract) -> Value {
        let tags: Vec<Value> = c
            .tags
            .iter()
            .filter_map(|t| self.tags.get(t))
            .map(|t| json!({ "id": t.id, "tag_name": t.name }))
            .collect();
        json!({
            "id": c.id,
            "title": c.title,
            "status": c.status,
            "tags": tags,
            "attributes": c.attributes,
        })
    }
}

pub(super) async fn list_contracts(
    State(st): St,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = st.authorized(&headers) {
        return *r;
    }
    let query = query_map(raw);
    if let Err(r) = known_params(&query, SEARCH_PARAMS) {
        return *r;
    }
    if let Some(s) = query.get("status")
        && !CONTRACT_STATUSES.contains(&s.as_str())
    {
        return bad_request(json!({
            "status": [format!("Select a valid choice. {s} is not one of the available choices.")]
        }));
    }
    let items = {
        let mut inner = st.lock();
        inner.settle();
        let filters: BTreeMap<String, String> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "page_size")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let minimal = filters.get("minimal").is_some_and(|m| m == "true");
        inner
            .select(&filters)
            .iter()
            .filter_map(|id| inner.contracts.get(id))
            .map(|c| {
                if minimal {
                    json!({ "id": c.id, "title": c.title })
                } else {
                    inner.contract_json(c)
                }
            })
            .collect()
    };
    st.ctx.counters.incr("contracts.pages");
    paged(&st, &headers, "/api/contracts/", &query, items)
}

/// Reads `search` or `contracts` from a body: the contract ids it targets, or a DRF error body.
pub(super) fn targets(inner: &Inner, body: &Map<String, Value>) -> Result<Vec<String>, Value> {
    match (body.get("search"), body.get("contracts")) {
        (Some(_), Some(_)) | (None, None) => Err(json!({
            "non_field_errors": ["Give exactly one of \"search\" or \"contracts\"."]
        })),
        (Some(Value::Object(search)), None) => {
            let mut params = BTreeMap::new();
            let mut errors = Map::new();
            for (k, v) in search {
                if !SEARCH_PARAMS.contains(&k.as_str()) {
                    errors.insert(k.clone(), json!(["Unknown search parameter."]));
                    continue;
                }
                if k == "status" && !v.as_str().is_some_and(|s| CONTRACT_STATUSES.contains(&s)) {
                    errors.insert(
                        k.clone(),
                        json!([format!("\"{v}\" is not a valid choice.")]),
                    );
                    continue;
                }
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        errors.insert(k.clone(), json!(["Expected a string, number or boolean."]));
                        continue;
                    }
                };
                params.insert(k.clone(), text);
            }
            if !errors.is_empty() {
                return Err(json!({ "search": errors }));
            }
            Ok(inner.select(&params))
        }
        (Some(_), None) => Err(json!({
            "search": ["Expected a dictionary of items but got another type."]
        })),
        (None, Some(Value::Array(ids))) => {
            if ids.is_empty() {
                return Err(json!({ "contracts": ["This list may not be empty."] }));
            }
            let mut out = Vec::new();
            for id in ids {
                match id.as_str() {
                    Some(id) if inner.contracts.contains_key(id) => out.push(id.to_owned()),
                    Some(id) => {
                        return Err(json!({
                            "contracts": [format!("Invalid pk \"{id}\" - object does not exist.")]
                        }));
                    }
                    None => {
                        return Err(json!({ "contracts": ["Incorrect type. Expected pk value."] }));
                    }
                }
            }
            Ok(out)
        }
        (None, Some(_)) => Err(json!({
            "contracts": ["Expected a list of items but got another type."]
        })),
    }
}
