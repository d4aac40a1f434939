//! Selections: evaluating a bulk route's `selection` (gids, children, search with filters,
//! exclusions) into the items it names.

use std::collections::HashSet;

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::unicat::routes::{bad_request, fail};
use crate::unicat::{Inner, Rec, SchemaItem};

pub(super) fn selection_error(message: impl Into<String>, info: Value) -> Response {
    fail(422, 1006, &message.into(), info)
}

/// One slot of an evaluated selection: an item's gid, or `None` for a gid naming nothing.
pub(super) type Slot = Option<String>;

pub(super) struct Want {
    pub(super) area: String,
    /// Include deleted items (undelete, permanent_delete) instead of live ones.
    pub(super) deleted: bool,
    /// A read: deleted and unknown gids take an empty slot.
    pub(super) read: bool,
}

pub(super) fn words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .map(|w| w.trim_start_matches(['+', '-']).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

pub(super) fn rec_matches(
    r: &Rec,
    area: &str,
    filter: Option<&Value>,
    q: &[String],
) -> Result<bool, Response> {
    let title = r.title.to_lowercase();
    if !q.iter().all(|w| title.contains(w)) {
        return Ok(false);
    }
    let Some(f) = filter else {
        return Ok(true);
    };
    let (Some(field), Some(op)) = (
        f.get(0).and_then(Value::as_str),
        f.get(1).and_then(Value::as_str),
    ) else {
        return Err(selection_error(
            "a filter is [field, op, value]",
            json!({"filter": f}),
        ));
    };
    let value = f.get(2).and_then(Value::as_str).unwrap_or_default();
    Ok(match (area, field, op) {
        ("records", "definition", "is") => r.definition == value,
        ("records", "classes", "has") => r.classes.iter().any(|c| c == value),
        ("records", "channels", "has") => r.channels.iter().any(|c| c == value),
        ("assets", "type", "is") => r.definition == value,
        _ => {
            return Err(selection_error(
                format!("unsupported filter {field} {op}"),
                json!({"filter": f}),
            ));
        }
    })
}

pub(super) fn schema_matches(
    s: &SchemaItem,
    filter: Option<&Value>,
    q: &[String],
) -> Result<bool, Response> {
    if !q.iter().all(|w| s.name.contains(w.as_str())) {
        return Ok(false);
    }
    let Some(f) = filter else {
        return Ok(true);
    };
    let field = f.get(0).and_then(Value::as_str).unwrap_or_default();
    let op = f.get(1).and_then(Value::as_str).unwrap_or_default();
    let value = f.get(2).and_then(Value::as_str).unwrap_or_default();
    Ok(match (field, op) {
        ("type", "is") => s.ty == value,
        ("is_committed", "is_false") => !s.committed,
        ("is_committed", "is_true") => s.committed,
        _ => {
            return Err(selection_error(
                format!("unsupported filter {field} {op}"),
                json!({"filter": f}),
            ));
        }
    })
}

pub(super) fn exclude_list(
    entry: &Map<String, Value>,
    idx: usize,
) -> Result<HashSet<String>, Response> {
    match entry.get("exclude") {
        None | Some(Value::Null) => Ok(HashSet::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|g| g.as_str().map(str::to_owned))
            .collect::<Option<HashSet<_>>>()
            .ok_or_else(|| selection_error("exclude must list gids", json!({"entry": idx}))),
        Some(_) => Err(selection_error(
            "exclude must list gids",
            json!({"entry": idx}),
        )),
    }
}

/// Evaluates a selection into slots (deduplicated; a repeat takes an empty slot).
pub(super) fn evaluate(
    inner: &Inner,
    want: &Want,
    selection: Option<&Value>,
) -> Result<Vec<Slot>, Response> {
    let Some(Value::Array(entries)) = selection else {
        return Err(fail(
            400,
            400,
            "selection must be a list",
            json!({"field": "selection"}),
        ));
    };
    let schema = want.area == "schema";
    let list: &[Rec] = if want.area == "assets" {
        &inner.assets
    } else {
        &inner.records
    };
    let state_ok = |deleted: bool| deleted == want.deleted;
    let mut seen = HashSet::new();
    let mut slots = Vec::new();
    for (idx, entry) in entries.iter().enumerate() {
        let mut found: Vec<Slot> = Vec::new();
        match entry {
            Value::String(g) => {
                let hit = if schema {
                    inner.schema.iter().any(|s| &s.gid == g)
                } else {
                    list.iter()
                        .any(|r| &r.gid == g && (!want.read || state_ok(r.deleted)))
                };
                found.push(hit.then(|| g.clone()));
            }
            Value::Object(m) if m.contains_key("children") => {
                // channel and ordering apply to records only (bulk/get reference pages).
                let allowed: &[&str] = if want.area == "records" {
                    &["children", "exclude", "channel", "ordering"]
                } else {
                    &["children", "exclude"]
                };
                if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(bad_request(
                        format!("unknown key {k} in selection entry {idx}"),
                        "selection",
                    ));
                }
                if schema {
                    return Err(selection_error(
                        "schema selections cannot use children",
                        json!({"entry": idx}),
                    ));
                }
                let Some(parent) = m["children"].as_str() else {
                    return Err(selection_error(
                        "children must be a gid",
                        json!({"entry": idx}),
                    ));
                };
                if !list.iter().any(|r| r.gid == parent) {
                    return Err(selection_error(
                        format!("parent {parent} not found"),
                        json!({"entry": idx, "gid": parent}),
                    ));
                }
                let exclude = exclude_list(m, idx)?;
                let channel = m.get("channel").and_then(Value::as_str);
                for r in list.iter().filter(|r| r.parent.as_deref() == Some(parent)) {
                    let in_channel = channel.is_none_or(|c| r.channels.iter().any(|x| x == c));
                    // A read lists only items in the wanted state; a mutation takes them all, so
                    // that items in the wrong state fail one by one.
                    if in_channel
                        && !exclude.contains(&r.gid)
                        && (!want.read || state_ok(r.deleted))
                    {
                        found.push(Some(r.gid.clone()));
                    }
                }
            }
            Value::Object(m) if m.contains_key("search") => {
                if let Some(k) = m
                    .keys()
                    .find(|k| !["search", "exclude"].contains(&k.as_str()))
                {
                    return Err(bad_request(
                        format!("unknown key {k} in selection entry {idx}"),
                        "selection",
                    ));
                }
                if let Some(k) = m["search"].as_object().and_then(|o| {
                    o.keys()
                        .find(|k| !["language", "q", "filter"].contains(&k.as_str()))
                }) {
                    return Err(bad_request(
                        format!("unknown key {k} in the search of selection entry {idx}"),
                        "selection",
                    ));
                }
                let exclude = exclude_list(m, idx)?;
                let Some(search) = m["search"].as_object() else {
                    return Err(selection_error(
                        "search must be an object",
                        json!({"entry": idx}),
                    ));
                };
                let q = words(search.get("q").and_then(Value::as_str).unwrap_or_default());
                let filter = search.get("filter").filter(|f| !f.is_null());
                if q.is_empty() && filter.is_none() {
                    return Err(selection_error(
                        "a search needs q or a filter",
                        json!({"entry": idx}),
                    ));
                }
                if schema {
                    for s in &inner.schema {
                        if schema_matches(s, filter, &q)? && !exclude.contains(&s.gid) {
                            found.push(Some(s.gid.clone()));
                        }
                    }
                } else {
                    for r in list {
                        if state_ok(r.deleted)
                            && rec_matches(r, &want.area, filter, &q)?
                            && !exclude.contains(&r.gid)
                        {
                            found.push(Some(r.gid.clone()));
                        }
                    }
                }
            }
            _ => {
                return Err(selection_error(
                    "a selection entry is a gid, a children or a search object",
                    json!({"entry": idx}),
                ));
            }
        }
        for slot in found {
            match slot {
                Some(g) if seen.insert(g.clone()) => slots.push(Some(g)),
                _ => slots.push(None),
            }
        }
    }
    Ok(slots)
}
