//! Bulk requests: which contracts they change ([`Target`]) and what they set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{ContractId, ContractQuery, ContractStatus, Date, to_value};
use crate::{Error, Result};

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
