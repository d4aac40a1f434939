//! Bulk items: the request-level shape check (HTTP 400), the per-item check (an `INVALID`
//! entry), and applying a valid item to its process.

use serde_json::{Value, json};

use crate::chakra::{ProcedureSpec, SimProcedure, pk_text};

/// Applies one validated item to its process.
pub(super) fn apply(proc: &mut SimProcedure, item: &Value, now_ms: i64) -> Result<(), String> {
    let obj = item.as_object().ok_or("not an object")?;
    let (key, value) = obj
        .iter()
        .find(|(k, _)| k.as_str() != "update")
        .ok_or("no identifier")?;
    let id = if key == "id" {
        value.as_str().unwrap_or_default().to_owned()
    } else {
        let pk = pk_text(value).unwrap_or_default();
        match proc.by_pk.get(&pk) {
            Some(id) => id.clone(),
            None => return Err(format!("no process with {key} = {pk}")),
        }
    };
    let Some(process) = proc.processes.get_mut(&id) else {
        return Err(format!("no process with id {id}"));
    };
    let update = &obj["update"];
    if let Some(data) = update.get("data").and_then(Value::as_object) {
        if let Some(v) = data.get(&proc.spec.primary_key) {
            let old = process["data"]
                .get(&proc.spec.primary_key)
                .and_then(pk_text);
            let new = pk_text(v).ok_or("primary key must be a string or number")?;
            if old.as_deref() != Some(new.as_str()) {
                if proc.by_pk.contains_key(&new) {
                    return Err(format!(
                        "another process already has {} = {new}",
                        proc.spec.primary_key
                    ));
                }
                if let Some(old) = old {
                    proc.by_pk.remove(&old);
                }
                proc.by_pk.insert(new, id.clone());
            }
        }
        let target = &mut process["data"];
        for (k, v) in data {
            target[k] = v.clone();
        }
    }
    for key in ["state", "status", "assignedTo", "isDeleted"] {
        if let Some(v) = update.get(key) {
            process[key] = v.clone();
        }
    }
    if let Some(v) = update.get("nextActionAt") {
        let ms = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        process["nextActionAt"] = json!(ms);
    }
    process["updatedAt"] = json!(now_ms);
    *proc.applied.entry(id).or_default() += 1;
    Ok(())
}

/// Checks one item; the error becomes an INVALID entry.
pub(super) fn check_item(spec: &ProcedureSpec, item: &Value) -> Result<(), String> {
    let obj = item.as_object().ok_or("an item must be an object")?;
    let idents: Vec<&String> = obj.keys().filter(|k| k.as_str() != "update").collect();
    match idents.as_slice() {
        [] => return Err("an identifier is required (id or the primary-key attribute)".into()),
        [k] if k.as_str() == "id" || **k == spec.primary_key => {
            let v = &obj[k.as_str()];
            if pk_text(v).is_none_or(|s| s.is_empty()) {
                return Err(format!("{k} must be a non-empty string or number"));
            }
        }
        [k] => {
            return Err(format!(
                "{k} is not an identifier (use id or {})",
                spec.primary_key
            ));
        }
        _ => return Err("exactly one identifier is allowed".into()),
    }
    let update = obj
        .get("update")
        .and_then(Value::as_object)
        .ok_or("update is required")?;
    if update.is_empty() {
        return Err("update is empty".into());
    }
    for (k, v) in update {
        match k.as_str() {
            "data" => {
                let data = v.as_object().ok_or("data must be an object")?;
                if !spec.attributes.is_empty() {
                    for key in data.keys() {
                        if *key != spec.primary_key && !spec.attributes.contains(key) {
                            return Err(format!("unknown attribute {key}"));
                        }
                    }
                }
            }
            "state" => {
                let s = v.as_str().unwrap_or_default();
                if !spec.states.iter().any(|x| x == s) {
                    return Err(format!("unknown state {v}"));
                }
            }
            "status" => {
                if !matches!(v.as_str(), Some("OPEN" | "COMPLETED" | "CANCELLED")) {
                    return Err(format!("invalid status {v}"));
                }
            }
            "assignedTo" => {
                let s = v.as_str().unwrap_or_default();
                if !spec.users.iter().any(|x| x == s) {
                    return Err(format!("unknown user {v}"));
                }
            }
            "nextActionAt" => {
                let ok =
                    v.as_i64().is_some() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                if !ok {
                    return Err(format!("nextActionAt must be epoch milliseconds, got {v}"));
                }
            }
            "isDeleted" => {
                if !v.is_boolean() {
                    return Err("isDeleted must be a boolean".into());
                }
            }
            other => return Err(format!("unknown field {other}")),
        }
    }
    Ok(())
}

/// The fields seed 002 lists under `update`, with the JSON type each takes.
pub(super) const UPDATE_FIELDS: [&str; 6] = [
    "data",
    "state",
    "status",
    "assignedTo",
    "nextActionAt",
    "isDeleted",
];

/// Checks an item's shape (not its meaning): an object whose `update` is an object of known
/// fields of the right types. A failure refuses the whole request with HTTP 400.
pub(super) fn check_shape(item: &Value) -> Result<(), String> {
    let obj = item.as_object().ok_or("an item must be an object")?;
    let update = match obj.get("update") {
        Some(Value::Object(u)) => u,
        Some(_) => return Err("`update` must be an object".into()),
        None => return Err("`update` is required".into()),
    };
    for (k, v) in update {
        let ok = match k.as_str() {
            "data" => v.is_object(),
            "state" | "status" | "assignedTo" => v.is_string(),
            "nextActionAt" => v.is_i64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
            "isDeleted" => v.is_boolean(),
            _ => {
                return Err(format!(
                    "unknown field `update.{k}` (expected one of {})",
                    UPDATE_FIELDS.join(", ")
                ));
            }
        };
        if !ok {
            return Err(format!("`update.{k}` has the wrong type: {v}"));
        }
    }
    Ok(())
}
