//! The Zefort API's data: ids, dates, contract queries, bulk requests, tasks, tags and pages.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as the vendor writes it.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }
    };
}

id_type!(
    /// A contract id (`ct_…`).
    ContractId
);
id_type!(
    /// A task id (`task_…`).
    TaskId
);
id_type!(
    /// A tag id (`tag_…`).
    TagId
);

/// A calendar date, written `YYYY-MM-DD` as the API expects.
///
/// ```
/// use zefort_api::Date;
/// let d: Date = "2023-02-15".parse()?;
/// assert_eq!(d.to_string(), "2023-02-15");
/// assert!("2023-02-30".parse::<Date>().is_err());
/// # Ok::<(), zefort_api::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A date from its parts; an impossible date is [`crate::ErrorKind::InvalidInput`].
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if year == 0 || year > 9999 || day == 0 || day > days {
            return Err(Error::invalid_input(format!(
                "{year:04}-{month:02}-{day:02} is not a calendar date"
            )));
        }
        Ok(Date { year, month, day })
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month (1–12).
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid_input(format!("{s:?} is not a date in the form YYYY-MM-DD"));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let part = |r: std::ops::Range<usize>| {
            s.get(r)
                .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(bad)
        };
        let (y, m, d) = (part(0..4)?, part(5..7)?, part(8..10)?);
        Date::new(y, m as u8, d as u8)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Defines an open vendor enum: known variants plus `Other(String)`, (de)serialized as text and
/// matched case-insensitively.
macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this crate does not know (kept as the vendor wrote it).
            Other(String),
        }

        impl $name {
            /// The value as the API writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($text) {
                    return $name::$variant;
                })+
                $name::Other(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

open_enum!(
    /// A contract's status. In a bulk update it is the status to set (`Done` marks a contract
    /// reviewed); in a [`ContractQuery`] it filters.
    ContractStatus {
        /// `archived`
        Archived = "archived",
        /// `done`: reviewed.
        Done = "done",
        /// `error`
        Error = "error",
        /// `limited`
        Limited = "limited",
        /// `processing`
        Processing = "processing",
        /// `queued`
        Queued = "queued",
        /// `review`: waiting for review.
        Review = "review",
    }
);

open_enum!(
    /// A contract's e-signature status (a [`ContractQuery`] filter).
    EsignStatus {
        /// `canceled`
        Canceled = "canceled",
        /// `completed`
        Completed = "completed",
        /// `declined`
        Declined = "declined",
        /// `draft`
        Draft = "draft",
        /// `expired`
        Expired = "expired",
        /// `failed`
        Failed = "failed",
        /// `pending`
        Pending = "pending",
    }
);

open_enum!(
    /// A task's server-side status. Only `pending` and `done` are documented; the vendor reports a
    /// failure with another value (the simulator uses `error`) and explains it in
    /// [`Task::backend_status_info`].
    BackendStatus {
        /// Still running.
        Pending = "pending",
        /// Finished successfully.
        Done = "done",
        /// Finished with an error (value assumed, not documented).
        Error = "error",
    }
);

open_enum!(
    /// Whether a task still shows in the web UI's pending-task list (`pending`) or was
    /// acknowledged (`done`).
    FrontendStatus {
        /// Shown as pending in the UI.
        Pending = "pending",
        /// Acknowledged.
        Done = "done",
    }
);

impl BackendStatus {
    /// Whether the task is still running.
    ///
    /// `pending` is, and so are undocumented values that name a running state (`queued`,
    /// `processing`, `running`, `started`, `in_progress`); every other value is final.
    pub fn is_running(&self) -> bool {
        match self {
            BackendStatus::Pending => true,
            BackendStatus::Other(s) => matches!(
                s.to_ascii_lowercase().as_str(),
                "queued" | "processing" | "running" | "started" | "in_progress"
            ),
            _ => false,
        }
    }

    /// Whether the task finished successfully.
    pub fn is_done(&self) -> bool {
        *self == BackendStatus::Done
    }
}

/// Contract search parameters, used both as the query string of the contract list and as the
/// `search` object of bulk operations.
///
/// ```
/// use zefort_api::{ContractQuery, ContractStatus};
/// let q = ContractQuery::new().q_tags("contracts of service").status(ContractStatus::Review);
/// # let _ = q;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContractQuery {
    /// Full-text query over everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Full-text query over main documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_main_documents: Option<String>,
    /// Full-text query over attachments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_attachments: Option<String>,
    /// Full-text query over parties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_parties: Option<String>,
    /// Full-text query over notes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_notes: Option<String>,
    /// Full-text query over tag names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_tags: Option<String>,
    /// Full-text query over e-mails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_emails: Option<String>,
    /// Exact tag filter (tag ids, comma separated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Owner filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Binder filter (`bnd_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binder: Option<String>,
    /// Whether a binder filter includes sub-binders (vendor default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    /// Language filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Contract status filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ContractStatus>,
    /// E-signature status filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esign_status: Option<EsignStatus>,
    /// Receive-time range, in the vendor's range syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_time: Option<String>,
    /// Thin results (ids and titles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimal: Option<bool>,
    /// Ordering, overriding the vendor's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// Any other documented parameter (`num_files`, `activities_times`, …), sent as given.
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

impl ContractQuery {
    /// An empty query (every contract).
    pub fn new() -> Self {
        ContractQuery::default()
    }

    /// Sets [`q`](Self::q).
    pub fn q(mut self, text: impl Into<String>) -> Self {
        self.q = Some(text.into());
        self
    }

    /// Sets [`q_tags`](Self::q_tags).
    pub fn q_tags(mut self, text: impl Into<String>) -> Self {
        self.q_tags = Some(text.into());
        self
    }

    /// Sets [`q_parties`](Self::q_parties).
    pub fn q_parties(mut self, text: impl Into<String>) -> Self {
        self.q_parties = Some(text.into());
        self
    }

    /// Sets [`tags`](Self::tags) to one tag id.
    pub fn tag(mut self, tag: &TagId) -> Self {
        self.tags = Some(tag.to_string());
        self
    }

    /// Sets [`binder`](Self::binder).
    pub fn binder(mut self, binder: impl Into<String>) -> Self {
        self.binder = Some(binder.into());
        self
    }

    /// Sets [`recursive`](Self::recursive).
    pub fn recursive(mut self, yes: bool) -> Self {
        self.recursive = Some(yes);
        self
    }

    /// Sets [`owner`](Self::owner).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets [`language`](Self::language).
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets [`esign_status`](Self::esign_status).
    pub fn esign_status(mut self, status: EsignStatus) -> Self {
        self.esign_status = Some(status);
        self
    }

    /// Sets [`receive_time`](Self::receive_time).
    pub fn receive_time(mut self, range: impl Into<String>) -> Self {
        self.receive_time = Some(range.into());
        self
    }

    /// Sets [`status`](Self::status).
    pub fn status(mut self, status: ContractStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets [`minimal`](Self::minimal).
    pub fn minimal(mut self, yes: bool) -> Self {
        self.minimal = Some(yes);
        self
    }

    /// Sets [`sort`](Self::sort).
    pub fn sort(mut self, sort: impl Into<String>) -> Self {
        self.sort = Some(sort.into());
        self
    }

    /// Sets any other parameter by name.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.other.insert(name.into(), value.into());
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        for reserved in ["page", "page_size"] {
            if self.other.contains_key(reserved) {
                return Err(Error::invalid_input(format!(
                    "{reserved:?} is set by the pager, not by the query"
                )));
            }
        }
        Ok(())
    }
}

/// Which contracts a bulk operation changes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// Every contract the search matches (sent as `search`).
    Search(Box<ContractQuery>),
    /// These contracts (sent as `contracts`).
    Contracts(Vec<ContractId>),
}

impl Target {
    /// The contracts a search matches.
    pub fn search(query: ContractQuery) -> Self {
        Target::Search(Box::new(query))
    }

    /// These contracts.
    pub fn contracts<I, C>(ids: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<ContractId>,
    {
        Target::Contracts(ids.into_iter().map(Into::into).collect())
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self {
            Target::Search(q) => q.check(),
            Target::Contracts(ids) if ids.is_empty() => Err(Error::invalid_input(
                "the contract id list is empty: nothing to change",
            )),
            Target::Contracts(ids) => match ids.iter().find(|id| id.as_str().trim().is_empty()) {
                Some(_) => Err(Error::invalid_input("a contract id is empty")),
                None => Ok(()),
            },
        }
    }

    pub(crate) fn write(&self, body: &mut Map<String, Value>) -> Result<()> {
        let (key, value) = match self {
            Target::Search(q) => ("search", to_value(q.as_ref())?),
            Target::Contracts(ids) => ("contracts", to_value(ids)?),
        };
        body.insert(key.into(), value);
        Ok(())
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::invalid_input("could not encode the request").with_source(e))
}

/// Contract metadata to set: the documented fields typed, any other attribute by name.
///
/// Only `end_date` appears in the vendor's bulk-update example; `start_date` and `title` follow
/// the same naming and are typed for convenience. Anything else goes through
/// [`set`](Self::set) and is sent as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContractAttributes {
    /// The contract's start date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<Date>,
    /// The contract's end date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<Date>,
    /// The contract's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Other attributes, by their API names.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ContractAttributes {
    /// No attributes.
    pub fn new() -> Self {
        ContractAttributes::default()
    }

    /// Sets the end date.
    pub fn end_date(mut self, date: Date) -> Self {
        self.end_date = Some(date);
        self
    }

    /// Sets the start date.
    pub fn start_date(mut self, date: Date) -> Self {
        self.start_date = Some(date);
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets any other attribute by its API name.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.other.insert(name.into(), value.into());
        self
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.start_date.is_none()
            && self.end_date.is_none()
            && self.title.is_none()
            && self.other.is_empty()
    }
}

/// A bulk update: `POST /api/contracts/bulk_update/`.
///
/// ```
/// use zefort_api::{BulkUpdate, ContractQuery, ContractStatus, Target};
/// let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags("contracts of service")))
///     .end_date("2023-02-15".parse()?)
///     .status(ContractStatus::Done);
/// assert_eq!(
///     update.to_json()?,
///     serde_json::json!({
///         "attributes": {"end_date": "2023-02-15"},
///         "status": "done",
///         "search": {"q_tags": "contracts of service"}
///     })
/// );
/// # Ok::<(), zefort_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BulkUpdate {
    /// The contracts to change.
    pub target: Target,
    /// Metadata to set.
    pub attributes: ContractAttributes,
    /// The contract status to set, if any.
    pub status: Option<ContractStatus>,
}

impl BulkUpdate {
    /// An update of `target` that sets nothing yet.
    pub fn new(target: Target) -> Self {
        BulkUpdate {
            target,
            attributes: ContractAttributes::default(),
            status: None,
        }
    }

    /// Replaces the attributes to set.
    pub fn attributes(mut self, attributes: ContractAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets the end date.
    pub fn end_date(mut self, date: Date) -> Self {
        self.attributes.end_date = Some(date);
        self
    }

    /// Sets any attribute by name.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.other.insert(name.into(), value.into());
        self
    }

    /// Sets the contract status (`Done` marks the contracts reviewed).
    pub fn status(mut self, status: ContractStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Checks the request without sending it.
    pub fn validate(&self) -> Result<()> {
        if self.attributes.is_empty() && self.status.is_none() {
            return Err(Error::invalid_input(
                "the bulk update sets nothing: give attributes or a status",
            ));
        }
        self.target.check()
    }

    /// The JSON body sent to the API (and echoed in the task's `details.data`).
    pub fn to_json(&self) -> Result<Value> {
        self.validate()?;
        let mut body = Map::new();
        if !self.attributes.is_empty() {
            body.insert("attributes".into(), to_value(&self.attributes)?);
        }
        if let Some(status) = &self.status {
            body.insert("status".into(), Value::String(status.as_str().to_owned()));
        }
        self.target.write(&mut body)?;
        Ok(Value::Object(body))
    }
}

/// What a task says about the request that created it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskDetails {
    /// Query parameters of the request.
    #[serde(default)]
    pub query_params: Value,
    /// The request body, echoed.
    #[serde(default)]
    pub data: Value,
}

/// A background task (`task_…`), as returned by bulk operations and `GET /api/tasks/{id}/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// The task id.
    pub id: TaskId,
    /// What the task does ("Contract Bulk operation").
    #[serde(default)]
    pub description: String,
    /// The request that created it.
    #[serde(default)]
    pub details: TaskDetails,
    /// Server-side progress: `pending`, then `done` (or a failure value).
    pub backend_status: BackendStatus,
    /// The vendor's explanation of the status (empty on success).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub backend_status_info: String,
    /// Whether the task still shows as pending in the web UI.
    #[serde(default = "frontend_pending")]
    pub frontend_status: FrontendStatus,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn frontend_pending() -> FrontendStatus {
    FrontendStatus::Pending
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Task {
    /// Whether the task finished successfully.
    pub fn is_done(&self) -> bool {
        self.backend_status.is_done()
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        self.backend_status.is_running()
    }

    /// Whether the task ended with a failure status.
    pub fn is_failed(&self) -> bool {
        !self.is_done() && !self.is_running()
    }
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tag {
    /// `tag_…`
    pub id: TagId,
    /// The tag's name.
    pub tag_name: String,
    /// Whether the tag is active.
    #[serde(default)]
    pub active: bool,
    /// How many contracts carry it.
    #[serde(default)]
    pub num_contracts: Option<u64>,
}

/// What attaching a tag returned: a task (as bulk updates do) or another reply, kept as JSON
/// because the documentation does not show it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TagOutcome {
    /// The vendor started a task.
    Task(Task),
    /// Any other reply.
    Other(Value),
}

/// A contract in search results (`minimal` results carry little more than the id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Contract {
    /// `ct_…`
    pub id: ContractId,
    /// The title, if the result carries it.
    #[serde(default)]
    pub title: Option<String>,
    /// The status, if the result carries it.
    #[serde(default)]
    pub status: Option<ContractStatus>,
    /// Every other field, as the vendor sent it.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One page of a list: the vendor's paging envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// Items in the whole list, if given.
    #[serde(default)]
    pub count: Option<u64>,
    /// URL of the next page; `None` on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// URL of the previous page.
    #[serde(default)]
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
    /// This page's number (from 1), if given.
    #[serde(default)]
    pub page: Option<u64>,
    /// The page size, if given.
    #[serde(default)]
    pub page_size: Option<u64>,
    /// The last page's number, if given.
    #[serde(default)]
    pub last_page: Option<u64>,
}
