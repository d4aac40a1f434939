//! The seeded catalogue (records, assets, schema items), the shapes they take in the replies'
//! side-stores, and the `bulk/get` pages that read them.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::unicat::routes::{bad_request, ok};
use crate::unicat::selection::Slot;
use crate::unicat::{Inner, Rec, SchemaItem, St, UnicatConfig};

pub(super) fn seed_catalogue(cfg: &UnicatConfig) -> (Vec<Rec>, Vec<Rec>, Vec<SchemaItem>) {
    let rec = |gid: String, parent: Option<&str>, def: &str, title: String| Rec {
        gid,
        parent: parent.map(str::to_owned),
        definition: def.into(),
        classes: Vec::new(),
        channels: vec!["web".into()],
        title,
        deleted: false,
    };
    let mut records = vec![rec("r-root".into(), None, "d-folder", "Catalogue".into())];
    for f in 1..=cfg.folders {
        let folder = format!("r-f{f}");
        records.push(rec(
            folder.clone(),
            Some("r-root"),
            "d-folder",
            format!("Folder {f}"),
        ));
        for i in 1..=cfg.per_folder {
            let mut r = rec(
                format!("r-f{f}-{i:03}"),
                Some(&folder),
                if i % 4 == 0 { "d-spec" } else { "d-article" },
                format!("Product {f}-{i:03}"),
            );
            if i % 5 == 0 {
                r.title.push_str(" obsolete");
            }
            if i % 3 == 0 {
                r.classes.push("article".into());
            }
            if i % 2 == 0 {
                r.channels.push("print".into());
            }
            records.push(r);
        }
    }
    let mut assets = vec![rec("a-root".into(), None, "folder", "Assets".into())];
    for (folder, kind, n) in [("a-img", "image", 20), ("a-docs", "pdf", 10)] {
        assets.push(rec(folder.into(), Some("a-root"), "folder", folder.into()));
        for i in 1..=n {
            assets.push(rec(
                format!("{folder}-{i:02}"),
                Some(folder),
                kind,
                format!("{kind} {i:02}"),
            ));
        }
    }
    let schema = [
        ("d-folder", "definition", true),
        ("d-article", "definition", true),
        ("d-spec", "definition", false),
        ("c-article", "class", true),
        ("c-price", "class", false),
        ("f-title", "field", true),
        ("f-price", "field", false),
        ("f-sku", "field", true),
    ]
    .into_iter()
    .map(|(gid, ty, committed)| SchemaItem {
        gid: gid.into(),
        ty,
        name: gid[2..].into(),
        committed,
    })
    .collect();
    (records, assets, schema)
}

/// The fields each definition has (by field gid); a record carries a value for each.
pub(super) fn definition_fields(definition: &str) -> &'static [&'static str] {
    match definition {
        "d-article" => &["f-title", "f-sku"],
        "d-spec" => &["f-title", "f-price"],
        _ => &["f-title"],
    }
}

/// A schema item as the side-store holds it. Definitions and fields carry the keys the SDK
/// reads when it builds a record (`UnicatDefinition.all_fields`, `UnicatField.name`).
pub(super) fn schema_json(s: &SchemaItem) -> Value {
    let mut v = json!({
        "gid": s.gid, "name": s.name, "label": {"en": s.name}, "original": null,
        "is_new": false, "is_working_copy": !s.committed, "is_committed": s.committed,
        "is_extended": false, "metadata": {},
    });
    match s.ty {
        "definition" => {
            v["is_base"] = json!(false);
            v["classes"] = json!([]);
            v["fields"] = json!(definition_fields(&s.gid));
            v["titlefield"] = json!("f-title");
            v["fieldlists"] = json!({});
            v["layout"] = Value::Null;
            v["childdefinitions"] = json!([]);
        }
        "class" => v["fields"] = json!([]),
        _ => v["type"] = json!("text"),
    }
    v
}

/// The `definitions`, `classes` and `fields` side-stores of the whole schema.
pub(super) fn schema_data(schema: &[SchemaItem]) -> Map<String, Value> {
    let mut data = Map::new();
    for (ty, store) in [
        ("definition", "definitions"),
        ("class", "classes"),
        ("field", "fields"),
    ] {
        let items: Map<String, Value> = schema
            .iter()
            .filter(|s| s.ty == ty)
            .map(|s| (s.gid.clone(), schema_json(s)))
            .collect();
        data.insert(store.into(), Value::Object(items));
    }
    data
}

/// A record (or asset) as the side-store holds it: the keys the SDK's `UnicatRecord` reads
/// (`definition`, `fields` per language with a value for every field of the definition,
/// `status`, ...), plus the simulator's own short forms (`title`, `is_deleted`, `classes`).
pub(super) fn rec_json(r: &Rec) -> Value {
    let values: Map<String, Value> = definition_fields(&r.definition)
        .iter()
        .map(|f| {
            let value = match *f {
                "f-title" => json!(r.title),
                "f-sku" => json!(format!("SKU-{}", r.gid)),
                _ => Value::Null,
            };
            (f[2..].to_owned(), value)
        })
        .collect();
    json!({
        "gid": r.gid, "canonical": r.gid, "parent": r.parent, "backlinks": [], "is_link": false,
        "status": if r.deleted { "deleted" } else { "published" },
        "definition": r.definition, "classes": r.classes, "channels": r.channels,
        "orderings": [], "childcount": 0, "title": r.title, "is_deleted": r.deleted,
        "fields": {"en": values},
        "created_on": 1_767_000_000.0, "updated_on": 1_767_000_000.0,
    })
}

pub(super) fn bulk_get(
    st: &St,
    inner: &Inner,
    area: &str,
    body: &Map<String, Value>,
    slots: &[Slot],
) -> Response {
    // Flat dotted keys (seed 003, the bulk/get reference, the SDK's paging loop).
    let size = body
        .get("page.size")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 1000) as usize;
    // "A cursor value is a tuple with selection index and some additional cursor value"
    // (seed 003); here `[0, <next slot>]`, echoed back as given.
    let start = match body.get("page.cursor") {
        None | Some(Value::Null) => 0,
        Some(c) => match c.as_array().map(Vec::as_slice) {
            Some([Value::Number(i), Value::Number(n)])
                if i.as_u64() == Some(0)
                    && n.as_u64().is_some_and(|n| n as usize <= slots.len()) =>
            {
                n.as_u64().unwrap_or_default() as usize
            }
            _ => return bad_request("invalid page.cursor", "page.cursor"),
        },
    };
    let end = (start + size).min(slots.len());
    let chosen: Vec<&String> = slots
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .flatten()
        .collect();
    let next = if end < slots.len() {
        json!([0, end])
    } else {
        Value::Null
    };
    let total = slots.iter().flatten().count();
    st.ctx.counters.add("bulk.get.items", chosen.len() as u64);
    st.ctx.counters.incr("bulk.get.pages");
    let mut result = Map::new();
    let mut data = Map::new();
    if area == "schema" {
        let mut entries = Vec::new();
        let mut stores: HashMap<&str, Map<String, Value>> = HashMap::new();
        for g in chosen {
            if let Some(s) = inner.schema.iter().find(|s| &s.gid == g) {
                entries.push(json!({"type": s.ty, "item": s.gid}));
                let store = match s.ty {
                    "definition" => "definitions",
                    "class" => "classes",
                    _ => "fields",
                };
                stores
                    .entry(store)
                    .or_default()
                    .insert(s.gid.clone(), schema_json(s));
            }
        }
        result.insert("schema_items".into(), json!(entries));
        result.insert("schema_items.size".into(), json!(total));
        for (k, v) in stores {
            data.insert(k.into(), Value::Object(v));
        }
    } else {
        let list = if area == "assets" {
            &inner.assets
        } else {
            &inner.records
        };
        let mut store = Map::new();
        for g in &chosen {
            if let Some(r) = list.iter().find(|r| &&r.gid == g) {
                let mut item = rec_json(r);
                if area == "assets" {
                    // The SDK indexes assets by `pathname` (api.py `_json_response`).
                    item["pathname"] = json!(format!("/{}", r.title));
                }
                store.insert(r.gid.clone(), item);
            }
        }
        result.insert(area.into(), json!(chosen));
        result.insert(format!("{area}.size"), json!(total));
        data.insert(area.into(), Value::Object(store));
    }
    result.insert("page.cursor".into(), next);
    ok(Value::Object(result), Value::Object(data))
}
