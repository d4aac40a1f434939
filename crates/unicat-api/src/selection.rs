//! Typed selections: which records, assets or schema items a bulk operation acts on.
//!
//! A selection is a list mixing gids, the children of an item (records and assets only) and
//! search results, each of the last two minus an `exclude` list. It serializes exactly as the
//! Unicat API expects:
//!
//! ```
//! use unicat_api::{Children, Filter, RecordSelection, Search};
//!
//! let selection = RecordSelection::new()
//!     .gid("r-1")
//!     .children(Children::of("r-parent").exclude(["r-keep"]).channel("web"))
//!     .search(
//!         Search::new()
//!             .language("nl")
//!             .q("+cms 225")
//!             .filter(Filter::new("definition", "is", "d-article"))
//!             .exclude(["r-9"]),
//!     );
//! assert_eq!(
//!     serde_json::to_value(&selection)?,
//!     serde_json::json!([
//!         "r-1",
//!         {"children": "r-parent", "exclude": ["r-keep"], "channel": "web"},
//!         {"search": {"language": "nl", "q": "+cms 225", "filter": ["definition", "is", "d-article"]},
//!          "exclude": ["r-9"]}
//!     ])
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Schema items have no children, so a [`SchemaSelection`] has no `children` method:
//!
//! ```compile_fail
//! use unicat_api::{Children, SchemaSelection};
//! let s = SchemaSelection::new().children(Children::of("d-1"));
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::Gid;

/// Marker for selections of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {}
/// Marker for selections of assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assets {}
/// Marker for selections of schema items (definitions, classes, fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Records {}
    impl Sealed for super::Assets {}
    impl Sealed for super::Schema {}
}

/// The kind of item a selection picks (sealed: [`Records`], [`Assets`], [`Schema`]).
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// The API's name of the area (`records`, `assets`, `schema`).
    const AREA: &'static str;
    /// Whether the children form is allowed.
    const HAS_CHILDREN: bool;
}

/// Kinds whose items form a tree, so that "the children of an item" is a selection.
pub trait Tree: Kind {}

impl Kind for Records {
    const AREA: &'static str = "records";
    const HAS_CHILDREN: bool = true;
}
impl Kind for Assets {
    const AREA: &'static str = "assets";
    const HAS_CHILDREN: bool = true;
}
impl Kind for Schema {
    const AREA: &'static str = "schema";
    const HAS_CHILDREN: bool = false;
}
impl Tree for Records {}
impl Tree for Assets {}

/// A selection of records.
pub type RecordSelection = Selection<Records>;
/// A selection of assets.
pub type AssetSelection = Selection<Assets>;
/// A selection of schema items (no children form).
pub type SchemaSelection = Selection<Schema>;

/// An ordered list of selection entries for items of kind `K`.
///
/// Build it with the chaining methods, or deserialize it from the API's JSON form (a schema
/// selection holding a `children` entry is refused with a clear error).
pub struct Selection<K> {
    entries: Vec<Entry>,
    kind: PhantomData<fn() -> K>,
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Gid(Gid),
    Children(ChildrenSpec),
    Search { search: Search, exclude: Vec<Gid> },
}

#[derive(Debug, Clone, PartialEq)]
struct ChildrenSpec {
    parent: Gid,
    exclude: Vec<Gid>,
    channel: Option<String>,
    ordering: Option<String>,
}

impl<K> Clone for Selection<K> {
    fn clone(&self) -> Self {
        Selection {
            entries: self.entries.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Selection<K> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<K: Kind> fmt::Debug for Selection<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selection")
            .field("area", &K::AREA)
            .field("entries", &self.entries)
            .finish()
    }
}

impl<K: Kind> Default for Selection<K> {
    fn default() -> Self {
        Selection::new()
    }
}

impl<K: Kind> Selection<K> {
    /// An empty selection.
    pub fn new() -> Self {
        Selection {
            entries: Vec::new(),
            kind: PhantomData,
        }
    }

    /// Adds one item by gid.
    pub fn gid(mut self, gid: impl Into<Gid>) -> Self {
        self.entries.push(Entry::Gid(gid.into()));
        self
    }

    /// Adds items by gid.
    pub fn gids<G: Into<Gid>>(mut self, gids: impl IntoIterator<Item = G>) -> Self {
        self.entries
            .extend(gids.into_iter().map(|g| Entry::Gid(g.into())));
        self
    }

    /// Adds the results of a search (with its own `exclude` list).
    pub fn search(mut self, search: Search) -> Self {
        let exclude = search.exclude.clone();
        self.entries.push(Entry::Search {
            search: Search {
                exclude: Vec::new(),
                ..search
            },
            exclude,
        });
        self
    }

    /// The number of entries (not of the items they expand to).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the selection has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The selection as the API's JSON list.
    pub fn to_json(&self) -> Value {
        Value::Array(self.entries.iter().map(entry_json).collect())
    }

    /// Parses the API's JSON list form (a file written for the API, for example).
    ///
    /// Unknown keys are refused, and so is a `children` entry in a schema selection or a
    /// `channel`/`ordering` on assets.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Array(items) = value else {
            return Err("a selection is a JSON list".into());
        };
        let entries = items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_entry::<K>(v).map_err(|e| format!("selection entry {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selection {
            entries,
            kind: PhantomData,
        })
    }
}

impl<K: Tree> Selection<K> {
    /// Adds the children of an item, minus its `exclude` list.
    pub fn children(mut self, children: Children<K>) -> Self {
        self.entries.push(Entry::Children(children.spec));
        self
    }
}

impl<K: Kind> Serialize for Selection<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de, K: Kind> Deserialize<'de> for Selection<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Selection::from_json(&value).map_err(D::Error::custom)
    }
}

/// The children of one item, for records and assets.
pub struct Children<K> {
    spec: ChildrenSpec,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Children<K> {
    fn clone(&self) -> Self {
        Children {
            spec: self.spec.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Children<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

impl<K: Tree> Children<K> {
    /// The children of `parent`.
    pub fn of(parent: impl Into<Gid>) -> Self {
        Children {
            spec: ChildrenSpec {
                parent: parent.into(),
                exclude: Vec::new(),
                channel: None,
                ordering: None,
            },
            kind: PhantomData,
        }
    }

    /// Leaves these children out.
    pub fn exclude<G: Into<Gid>>(mut self, gids: impl IntoIterator<Item = G>) -> Self {
        self.spec.exclude.extend(gids.into_iter().map(Into::into));
        self
    }
}

impl Children<Records> {
    /// Only the children visible in this channel (a channel key).
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.spec.channel = Some(channel.into());
        self
    }

    /// Children in this ordering (an ordering key).
    pub fn ordering(mut self, ordering: impl Into<String>) -> Self {
        self.spec.ordering = Some(ordering.into());
        self
    }
}

/// A search: a query string and/or a filter, in a language, minus an `exclude` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    language: Option<String>,
    q: Option<String>,
    filter: Option<Filter>,
    exclude: Vec<Gid>,
}

impl Search {
    /// An empty search (add a query, a filter or both).
    pub fn new() -> Self {
        Search::default()
    }

    /// The language to search in (`"nl"`, `"en"`, ...).
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// The query string (`"+cms 225"`).
    pub fn q(mut self, q: impl Into<String>) -> Self {
        self.q = Some(q.into());
        self
    }

    /// The filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Leaves these results out.
    pub fn exclude<G: Into<Gid>>(mut self, gids: impl IntoIterator<Item = G>) -> Self {
        self.exclude.extend(gids.into_iter().map(Into::into));
        self
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(l) = &self.language {
            m.insert("language".into(), Value::String(l.clone()));
        }
        if let Some(q) = &self.q {
            m.insert("q".into(), Value::String(q.clone()));
        }
        if let Some(f) = &self.filter {
            m.insert("filter".into(), f.0.clone());
        }
        Value::Object(m)
    }
}

/// A search filter, `[field, operator, value]`, such as `["definition", "is", gid]`,
/// `["classes", "has", "article"]` or `["is_committed", "is_false", null]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Value);

impl Filter {
    /// `[field, op, value]`.
    pub fn new(field: &str, op: &str, value: impl Into<Value>) -> Self {
        Filter(Value::Array(vec![field.into(), op.into(), value.into()]))
    }

    /// `[field, op, null]` for operators without a value (`is_false`, `is_true`, ...).
    pub fn unary(field: &str, op: &str) -> Self {
        Filter::new(field, op, Value::Null)
    }

    /// Any filter expression the API accepts, passed through as is.
    pub fn raw(value: Value) -> Self {
        Filter(value)
    }

    /// The filter's JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

fn gids_json(gids: &[Gid]) -> Value {
    Value::Array(
        gids.iter()
            .map(|g| Value::String(g.as_str().to_owned()))
            .collect(),
    )
}

fn entry_json(entry: &Entry) -> Value {
    match entry {
        Entry::Gid(g) => Value::String(g.as_str().to_owned()),
        Entry::Children(c) => {
            let mut m = Map::new();
            m.insert(
                "children".into(),
                Value::String(c.parent.as_str().to_owned()),
            );
            if !c.exclude.is_empty() {
                m.insert("exclude".into(), gids_json(&c.exclude));
            }
            if let Some(ch) = &c.channel {
                m.insert("channel".into(), Value::String(ch.clone()));
            }
            if let Some(o) = &c.ordering {
                m.insert("ordering".into(), Value::String(o.clone()));
            }
            Value::Object(m)
        }
        Entry::Search { search, exclude } => {
            let mut m = Map::new();
            m.insert("search".into(), search.to_json());
            if !exclude.is_empty() {
                m.insert("exclude".into(), gids_json(exclude));
            }
            Value::Object(m)
        }
    }
}

fn parse_gids(v: Option<&Value>) -> Result<Vec<Gid>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|g| match g {
                Value::String(s) => Ok(Gid::from(s.as_str())),
                other => Err(format!("exclude holds {other}, not a gid string")),
            })
            .collect(),
        Some(other) => Err(format!("exclude is {other}, not a list of gids")),
    }
}

fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key} is {other}, not a string")),
    }
}

fn parse_entry<K: Kind>(v: &Value) -> Result<Entry, String> {
    let m = match v {
        Value::String(s) => return Ok(Entry::Gid(Gid::from(s.as_str()))),
        Value::Object(m) => m,
        other => return Err(format!("{other} is neither a gid nor an object")),
    };
    if let Some(parent) = m.get("children") {
        if !K::HAS_CHILDREN {
            return Err(format!(
                "{} selections cannot use the children form",
                K::AREA
            ));
        }
        let Value::String(parent) = parent else {
            return Err("children must be a parent gid".into());
        };
        let allowed: &[&str] = if K::AREA == "records" {
            &["children", "exclude", "channel", "ordering"]
        } else {
            &["children", "exclude"]
        };
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unexpected key {k:?} in a children entry of a {} selection",
                K::AREA
            ));
        }
        return Ok(Entry::Children(ChildrenSpec {
            parent: Gid::from(parent.as_str()),
            exclude: parse_gids(m.get("exclude"))?,
            channel: opt_string(m, "channel")?,
            ordering: opt_string(m, "ordering")?,
        }));
    }
    if let Some(s) = m.get("search") {
        if let Some(k) = m
            .keys()
            .find(|k| !["search", "exclude"].contains(&k.as_str()))
        {
            return Err(format!("unexpected key {k:?} in a search entry"));
        }
        let Value::Object(sm) = s else {
            return Err("search must be an object".into());
        };
        if let Some(k) = sm
            .keys()
            .find(|k| !["language", "q", "filter"].contains(&k.as_str()))
        {
            return Err(format!("unexpected key {k:?} in a search"));
        }
        let search = Search {
            language: opt_string(sm, "language")?,
            q: opt_string(sm, "q")?,
            filter: sm
                .get("filter")
                .filter(|f| !f.is_null())
                .map(|f| Filter(f.clone())),
            exclude: Vec::new(),
        };
        return Ok(Entry::Search {
            search,
            exclude: parse_gids(m.get("exclude"))?,
        });
    }
    Err("an object entry needs a children or a search key".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trips_and_schema_refuses_children() {
        let v = json!(["a", {"children": "p", "exclude": ["x"], "ordering": "o"},
                       {"search": {"q": "cms"}, "exclude": ["y"]}]);
        let sel = RecordSelection::from_json(&v).map(|s| s.to_json());
        assert_eq!(sel, Ok(v.clone()));
        let err = SchemaSelection::from_json(&json!([{"children": "d"}]));
        assert!(err.is_err_and(|e| e.contains("cannot use the children form")));
        let err = AssetSelection::from_json(&json!([{"children": "d", "channel": "c"}]));
        assert!(err.is_err_and(|e| e.contains("\"channel\"")));
    }
}
