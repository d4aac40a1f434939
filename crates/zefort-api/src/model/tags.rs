//! Tags: their ids, the tag itself, and what attaching one returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Task;

bulk_common::id_type!(
    /// A tag id (`tag_…`).
    TagId
);

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
