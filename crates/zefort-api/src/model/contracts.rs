//! Contracts: their ids and statuses, the search query, and search results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::TagId;
use crate::{Error, Result};

bulk_common::id_type!(
    /// A contract id (`ct_…`).
    ContractId
);

bulk_common::open_enum!(
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

bulk_common::open_enum!(
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
