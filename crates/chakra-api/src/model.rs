//! Process models: the update item of the bulk PATCH, its identifier, statuses, timestamps and
//! the process read back.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

bulk_common::id_type!(
    /// A process id (a UUID in the API's replies; kept as text because the docs also show ids
    /// such as `LEAD-001`).
    ProcessId
);

/// How an update names its process: by process id, or by the procedure's primary-key attribute
/// and its value. Exactly one per update.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Identifier {
    /// The process id (`"id"` on the wire).
    Id(ProcessId),
    /// The primary-key attribute's shortId and the process's value of it, e.g.
    /// `lead_id = "L-1"`.
    PrimaryKey {
        /// The attribute shortId (`lead_id`, `phone_number`).
        key: String,
        /// Its value (a string or a number).
        value: Value,
    },
}

impl Identifier {
    /// The key this identifier uses on the wire (`id` or the attribute shortId).
    pub fn key(&self) -> &str {
        match self {
            Identifier::Id(_) => "id",
            Identifier::PrimaryKey { key, .. } => key,
        }
    }

    /// The identifier's value as JSON.
    pub fn value(&self) -> Value {
        match self {
            Identifier::Id(id) => Value::String(id.to_string()),
            Identifier::PrimaryKey { value, .. } => value.clone(),
        }
    }

    pub(crate) fn from_pair(key: &str, value: Value) -> Identifier {
        match (key, value) {
            ("id", Value::String(s)) => Identifier::Id(ProcessId::new(s)),
            (key, value) => Identifier::PrimaryKey {
                key: key.to_owned(),
                value,
            },
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Id(id) => write!(f, "id={id}"),
            Identifier::PrimaryKey { key, value } => match value {
                Value::String(s) => write!(f, "{key}={s}"),
                other => write!(f, "{key}={other}"),
            },
        }
    }
}

bulk_common::open_enum!(
    /// A process status. Sent only as one of the three documented values; read back with a
    /// catch-all for anything newer (parsed ignoring case: `"open"` is [`ProcessStatus::Open`]).
    ProcessStatus {
        /// `OPEN`.
        Open = "OPEN",
        /// `COMPLETED`.
        Completed = "COMPLETED",
        /// `CANCELLED`.
        Cancelled = "CANCELLED" | "CANCELED",
    }
);

/// A point in time, as epoch milliseconds on the wire (`nextActionAt`).
///
/// Built from a [`SystemTime`] (`Timestamp::from(SystemTime::now() + hour)`) or from
/// milliseconds. Read from an integer or a numeric string, since the docs show both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from epoch milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Epoch milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Timestamp)
                .ok_or_else(|| de::Error::custom("timestamp out of range")),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Timestamp)
                .map_err(|_| de::Error::custom(format!("not epoch milliseconds: {s:?}"))),
            other => Err(de::Error::custom(format!(
                "expected epoch milliseconds, found {other}"
            ))),
        }
    }
}

/// The fields an update changes (the `update` object on the wire). Unset fields are left as
/// they are on the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Update {
    /// Attribute values by attribute shortId.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
    /// The state shortId to move to (`IN_PROGRESS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The new status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProcessStatus>,
    /// The assignee's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// When the next action is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<Timestamp>,
    /// `true` soft-deletes the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_deleted: Option<bool>,
    /// Fields this crate does not know; validation rejects an update that has any.
    #[serde(flatten, skip_serializing)]
    unknown: Map<String, Value>,
}

impl Update {
    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.state.is_none()
            && self.status.is_none()
            && self.assigned_to.is_none()
            && self.next_action_at.is_none()
            && self.is_deleted.is_none()
            && self.unknown.is_empty()
    }
}

/// The update keys that the docs' "flat" examples put directly on the item.
const FLAT_KEYS: [&str; 6] = [
    "data",
    "state",
    "status",
    "assignedTo",
    "nextActionAt",
    "isDeleted",
];

/// One item of a bulk update: which process, and what to change.
///
/// Build one with [`ProcessUpdate::by_id`] or [`ProcessUpdate::by_key`] and the chaining
/// setters, or read one in the API's own wire shape with [`ProcessUpdate::from_wire`] (also its
/// `Deserialize`). Items read from the wire may be malformed (no identifier, two identifiers, a
/// bad status); they are kept as they are and rejected by [`validate`](Self::validate) before
/// anything is sent, so a whole file can be checked and every bad line reported.
///
/// It is always sent in the nested form `{"<key>": value, "update": {...}}`.
///
/// ```
/// use chakra_api::{ProcessStatus, ProcessUpdate};
/// let u = ProcessUpdate::by_key("lead_id", "L-1")
///     .data("city", "Pune")
///     .status(ProcessStatus::Completed);
/// assert!(u.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUpdate {
    identifiers: Vec<(String, Value)>,
    update: Update,
    problem: Option<String>,
}

impl ProcessUpdate {
    /// An update of the process with this id.
    pub fn by_id(id: impl Into<ProcessId>) -> Self {
        Self::with_identifier(Identifier::Id(id.into()))
    }

    /// An update of the process whose primary-key attribute `key` has `value`.
    pub fn by_key(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::with_identifier(Identifier::PrimaryKey {
            key: key.into(),
            value: value.into(),
        })
    }

    /// An update of the process named by `identifier`.
    pub fn with_identifier(identifier: Identifier) -> Self {
        ProcessUpdate {
            identifiers: vec![(identifier.key().to_owned(), identifier.value())],
            update: Update::default(),
            problem: None,
        }
    }

    /// Reads an item in the API's wire shape: the identifier key and value plus `update`. The
    /// flat form some doc examples show (`state`, `status`, ... beside the identifier) is folded
    /// into `update`. Never fails: a malformed item is kept and fails [`validate`](Self::validate).
    pub fn from_wire(value: Value) -> Self {
        let mut out = ProcessUpdate {
            identifiers: Vec::new(),
            update: Update::default(),
            problem: None,
        };
        let Value::Object(map) = value else {
            out.problem = Some(format!("an item must be a JSON object, found {value}"));
            return out;
        };
        let mut update = Map::new();
        let mut nested = None;
        for (key, value) in map {
            if key == "update" {
                nested = Some(value);
            } else if FLAT_KEYS.contains(&key.as_str()) {
                update.insert(key, value);
            } else {
                out.identifiers.push((key, value));
            }
        }
        match nested {
            Some(Value::Object(fields)) => {
                for (k, v) in fields {
                    if update.insert(k.clone(), v).is_some() {
                        out.problem = Some(format!("`{k}` is given both flat and in `update`"));
                    }
                }
            }
            Some(other) => out.problem = Some(format!("`update` must be an object, found {other}")),
            None => {}
        }
        match serde_json::from_value::<Update>(Value::Object(update)) {
            Ok(u) => out.update = u,
            Err(e) => {
                out.problem.get_or_insert(format!("bad update: {e}"));
            }
        }
        out
    }

    /// Sets attribute `key` to `value`.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.update.data.insert(key.into(), value.into());
        self
    }

    /// Moves the process to state `state` (a state shortId).
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.update.state = Some(state.into());
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: ProcessStatus) -> Self {
        self.update.status = Some(status);
        self
    }

    /// Assigns the process to `username`.
    pub fn assigned_to(mut self, username: impl Into<String>) -> Self {
        self.update.assigned_to = Some(username.into());
        self
    }

    /// Sets when the next action is due (a [`SystemTime`] or a [`Timestamp`]).
    pub fn next_action_at(mut self, at: impl Into<Timestamp>) -> Self {
        self.update.next_action_at = Some(at.into());
        self
    }

    /// Soft-deletes (`true`) or restores (`false`) the process.
    pub fn deleted(mut self, deleted: bool) -> Self {
        self.update.is_deleted = Some(deleted);
        self
    }

    /// The changes.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The changes, to edit in place.
    pub fn update_mut(&mut self) -> &mut Update {
        &mut self.update
    }

    /// The identifier, when the item has exactly one.
    pub fn identifier(&self) -> Option<Identifier> {
        match self.identifiers.as_slice() {
            [(k, v)] => Some(Identifier::from_pair(k, v.clone())),
            _ => None,
        }
    }

    /// Checks the item without sending it: exactly one identifier with a string or number value,
    /// a non-empty update, a documented status, no unknown fields. The error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        match self.identifiers.as_slice() {
            [] => return Err("no identifier (`id` or the primary-key attribute)".into()),
            [(k, v)] => match v {
                Value::String(s) if s.is_empty() => return Err(format!("`{k}` is empty")),
                Value::String(_) => {}
                Value::Number(_) if k != "id" => {}
                other => {
                    return Err(format!(
                        "identifier `{k}` must be a {}, found {other}",
                        if k == "id" {
                            "string"
                        } else {
                            "string or number"
                        }
                    ));
                }
            },
            many => {
                let keys: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
                return Err(format!(
                    "more than one identifier ({}); give exactly one",
                    keys.join(", ")
                ));
            }
        }
        let u = &self.update;
        if let Some(k) = u.unknown.keys().next() {
            return Err(format!("unknown update field `{k}`"));
        }
        if u.is_empty() {
            return Err("the update changes nothing".into());
        }
        if let Some(ProcessStatus::Other(s)) = &u.status {
            return Err(format!(
                "bad status {s:?} (expected OPEN, COMPLETED or CANCELLED)"
            ));
        }
        if u.state.as_deref() == Some("") {
            return Err("`state` is empty".into());
        }
        if u.assigned_to.as_deref() == Some("") {
            return Err("`assignedTo` is empty".into());
        }
        Ok(())
    }
}

impl Serialize for ProcessUpdate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.identifiers.len() + 1))?;
        for (k, v) in &self.identifiers {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("update", &self.update)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ProcessUpdate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ProcessUpdate::from_wire(Value::deserialize(d)?))
    }
}

/// A process as the API returns it. Fields the API adds later are kept in
/// [`extra`](Self::extra).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Process {
    /// The process id.
    pub id: ProcessId,
    /// Attribute values by shortId.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// The current state shortId.
    #[serde(default)]
    pub state: Option<String>,
    /// The status.
    #[serde(default)]
    pub status: Option<ProcessStatus>,
    /// The assignee's username.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// When the next action is due.
    #[serde(default)]
    pub next_action_at: Option<Timestamp>,
    /// Whether the process is soft-deleted.
    #[serde(default)]
    pub is_deleted: Option<bool>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `where` filter of the list endpoint: `{key: value}`, `{key: [values]}`,
/// `{key: {op: value}}` with ops `= != > >= < <=`, combined with `and` / `or`.
///
/// ```
/// use chakra_api::Query;
/// let q = Query::new().eq("status", "OPEN").op("amount", ">=", 100);
/// assert_eq!(q.to_json()["amount"][">="], 100);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Query(Map<String, Value>);

impl Query {
    /// Matches everything.
    pub fn new() -> Self {
        Query::default()
    }

    /// `key` equals `value` (a root field such as `status`, or an attribute shortId).
    pub fn eq(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// `key` is one of `values`.
    pub fn any_of(mut self, key: impl Into<String>, values: Vec<Value>) -> Self {
        self.0.insert(key.into(), Value::Array(values));
        self
    }

    /// `key op value`, with `op` one of `= != > >= < <=`.
    pub fn op(mut self, key: impl Into<String>, op: &str, value: impl Into<Value>) -> Self {
        let mut m = Map::new();
        m.insert(op.to_owned(), value.into());
        self.0.insert(key.into(), Value::Object(m));
        self
    }

    /// Any of `queries` matches.
    pub fn or(mut self, queries: Vec<Query>) -> Self {
        self.0.insert(
            "or".into(),
            Value::Array(queries.into_iter().map(|q| Value::Object(q.0)).collect()),
        );
        self
    }

    /// All of `queries` match.
    pub fn and(mut self, queries: Vec<Query>) -> Self {
        self.0.insert(
            "and".into(),
            Value::Array(queries.into_iter().map(|q| Value::Object(q.0)).collect()),
        );
        self
    }

    /// The query as JSON.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Checks every item and returns one [`InvalidInput`](crate::ErrorKind::InvalidInput) error
/// that lists each offending item by its index, or `Ok` when all are valid.
///
/// ```
/// use chakra_api::{ProcessUpdate, validate};
/// let items = vec![ProcessUpdate::by_id("p1").state("DONE"), ProcessUpdate::by_id("p2")];
/// let result = validate(&items);
/// assert!(result.is_err_and(|e| e.to_string().contains("item 1")));
/// ```
pub fn validate(items: &[ProcessUpdate]) -> crate::Result<()> {
    let bad: Vec<Value> = items
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            u.validate()
                .err()
                .map(|m| serde_json::json!({"index": i, "message": m}))
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let mut text: Vec<String> = bad
        .iter()
        .take(20)
        .map(|b| {
            format!(
                "item {}: {}",
                b["index"],
                b["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if bad.len() > 20 {
        text.push(format!("and {} more", bad.len() - 20));
    }
    Err(crate::Error::invalid_input(format!(
        "{} of {} updates are invalid; nothing was sent: {}",
        bad.len(),
        items.len(),
        text.join("; ")
    ))
    .with_details(Value::Array(bad)))
}
