//! Bulk updates: validating the body, and applying a task's change to the contracts when it
//! finishes.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::zefort::jobs::{create_task, created};
use crate::zefort::routes::{St, bad_request, known_keys, parse_object};
use crate::zefort::selection::targets;
use crate::zefort::{Action, CONTRACT_STATUSES, Inner};

/// Attributes whose values must be ISO dates.
pub(super) const DATE_ATTRIBUTES: &[&str] =
    &["start_date", "end_date", "signed_date", "notice_date"];

impl Inner {
    /// Finishes every task whose run time has passed, applying its changes.
    pub(super) fn settle(&mut self) {
        let now = Instant::now();
        let Inner {
            tasks, contracts, ..
        } = self;
        for task in tasks.iter_mut() {
            if task.finished || now < task.created + task.run_time {
                continue;
            }
            task.finished = true;
            if task.fail.is_some() {
                continue;
            }
            for id in &task.targets {
                let Some(c) = contracts.get_mut(id) else {
                    continue;
                };
                match &task.action {
                    Action::Update { attributes, status } => {
                        for (k, v) in attributes {
                            c.attributes.insert(k.clone(), v.clone());
                        }
                        if let Some(s) = status {
                            c.status = s.clone();
                        }
                    }
                    Action::Tag(tag) => {
                        c.tags.insert(tag.clone());
                    }
                }
            }
        }
    }
}

pub(super) fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    matches!(
        (num(0..4), num(5..7), num(8..10)),
        (Some(_), Some(m @ 1..=12), Some(d @ 1..=31)) if d <= days_in(m)
    )
}

pub(super) fn days_in(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The keys of a bulk update body (developers.zefort.com/docs/bulk-operations and seed 000:
/// `attributes`, `status`, and the target, `search` or `contracts`).
pub(super) const BULK_UPDATE_KEYS: &[&str] = &["attributes", "status", "search", "contracts"];

pub(super) async fn bulk_update(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let obj = match st
        .authorized(&headers)
        .and_then(|()| parse_object(&body))
        .and_then(|o| known_keys(&o, BULK_UPDATE_KEYS).map(|()| o))
    {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let mut errors = Map::new();
    let attributes = match obj.get("attributes") {
        None => Map::new(),
        Some(Value::Object(a)) => {
            let mut field_errors = Map::new();
            for name in DATE_ATTRIBUTES {
                if let Some(v) = a.get(*name)
                    && !v.as_str().is_some_and(is_iso_date)
                    && !v.is_null()
                {
                    field_errors.insert(
                        (*name).to_owned(),
                        json!([
                            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
                        ]),
                    );
                }
            }
            if !field_errors.is_empty() {
                errors.insert("attributes".into(), Value::Object(field_errors));
            }
            a.clone()
        }
        Some(_) => {
            errors.insert(
                "attributes".into(),
                json!(["Expected a dictionary of items but got another type."]),
            );
            Map::new()
        }
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if CONTRACT_STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(other) => {
            errors.insert(
                "status".into(),
                json!([format!(
                    "\"{}\" is not a valid choice.",
                    other.as_str().unwrap_or("?")
                )]),
            );
            None
        }
    };
    if !errors.is_empty() {
        return bad_request(Value::Object(errors));
    }
    if attributes.is_empty() && status.is_none() {
        return bad_request(json!({
            "non_field_errors": ["Nothing to update: give \"attributes\" or \"status\"."]
        }));
    }
    let mut inner = st.lock();
    inner.settle();
    let targets = match targets(&inner, &obj) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let task = create_task(
        &st,
        &mut inner,
        Value::Object(obj),
        Action::Update { attributes, status },
        targets,
    );
    (created(&st), Json(task)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert!(is_iso_date("2023-02-15"));
        assert!(!is_iso_date("2023-2-15"));
        assert!(!is_iso_date("2023-02-30"));
        assert!(!is_iso_date("15.02.2023"));
    }
}
