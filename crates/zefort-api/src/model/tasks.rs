//! Tasks: the background work a bulk operation starts, and its statuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::job::BackendStatus;

bulk_common::id_type!(
    /// A task id (`task_…`).
    TaskId
);

bulk_common::open_enum!(
    /// Whether a task still shows in the web UI's pending-task list (`pending`) or was
    /// acknowledged (`done`).
    FrontendStatus {
        /// Shown as pending in the UI.
        Pending = "pending",
        /// Acknowledged.
        Done = "done",
    }
);

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
