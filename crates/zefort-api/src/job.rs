//! Waiting for a task: the serializable [`JobHandle`], the task's [`BackendStatus`], and
//! [`JobWatch`], the task as a [`Job`] for bulk-common's poll driver.

use bulk_common::poll::{Job, JobFailure, JobState, JobWait, Progress};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Result;
use crate::client::Client;
use crate::model::{FrontendStatus, Task, TaskId};

/// A task to wait for, which can be saved and resumed by another process.
///
/// It serializes as `{"task_id": ".."}`:
///
/// ```
/// use zefort_api::JobHandle;
/// let handle = JobHandle::new("task_123");
/// let saved = serde_json::to_string(&handle)?;
/// assert_eq!(saved, r#"{"task_id":"task_123"}"#);
/// let resumed: JobHandle = serde_json::from_str(&saved)?;
/// assert_eq!(resumed, handle);
/// assert_eq!(resumed.task_id().as_str(), "task_123");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobHandle {
    task_id: TaskId,
}

impl JobHandle {
    /// A handle on task `id`.
    pub fn new(id: impl Into<TaskId>) -> Self {
        JobHandle { task_id: id.into() }
    }

    /// The task's id.
    pub fn task_id(&self) -> &TaskId {
        &self.task_id
    }
}

impl From<&Task> for JobHandle {
    fn from(task: &Task) -> Self {
        JobHandle::new(task.id.clone())
    }
}

bulk_common::open_enum!(
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

impl BackendStatus {
    /// Whether the task is still running.
    ///
    /// `pending` is, and so are undocumented values that name a running state (`queued`,
    /// `processing`, `running`, `started`, `in_progress`, in any case and punctuation, as
    /// `open_enum!` parses); every other value is final.
    ///
    /// ```
    /// use zefort_api::BackendStatus;
    /// assert!(BackendStatus::from("pending").is_running());
    /// assert!(BackendStatus::from("In-Progress").is_running());
    /// assert!(!BackendStatus::from("scheduled").is_running());
    /// assert!(!BackendStatus::from("done").is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        match self {
            BackendStatus::Pending => true,
            BackendStatus::Other(s) => RunningWord::from(s.as_str()).is_known(),
            _ => false,
        }
    }

    /// Whether the task finished successfully.
    pub fn is_done(&self) -> bool {
        *self == BackendStatus::Done
    }
}

bulk_common::open_enum!(
    /// Undocumented `backend_status` values that name a running state, parsed like every other
    /// status word (ASCII case and punctuation ignored).
    RunningWord {
        /// `queued`
        Queued = "queued",
        /// `processing`
        Processing = "processing",
        /// `running`
        Running = "running",
        /// `started`
        Started = "started",
        /// `in_progress`
        InProgress = "in_progress",
    }
);

/// One task, watched: a [`Job`] for bulk-common's poll driver, made by [`Client::watch`].
///
/// `pending` (and running-sounding values, see [`BackendStatus::is_running`]) is running,
/// `done` is finished, and any other status fails with [`crate::ErrorKind::JobFailed`] whose
/// vendor message is the task's `backend_status_info` and vendor code its `backend_status`.
///
/// When a look finds the task `done`, the watch acknowledges it (`frontend_status = done`, see
/// [`Client::acknowledge_task`]) unless told not to ([`acknowledge`](Self::acknowledge), or the
/// client's [`ClientBuilder::acknowledge_finished`](crate::ClientBuilder::acknowledge_finished)),
/// and yields the acknowledged task. The contracts are changed by then, so if the
/// acknowledgement fails the finished task is still yielded (its `frontend_status` stays
/// `pending`) and a warning is logged.
///
/// It owns a clone of the client, so it can be moved into a task:
///
/// ```no_run
/// use zefort_api::{Client, JobHandle};
/// # async fn run(client: Client) -> zefort_api::Result<()> {
/// let watch = client.watch(&JobHandle::new("task_123")).acknowledge(false);
/// let task = watch.wait().on_progress(|e| eprintln!("{:?}", e.progress.status)).await?;
/// println!("task {} is {}, not acknowledged", task.id, task.backend_status);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JobWatch {
    client: Client,
    id: TaskId,
    acknowledge: bool,
}

impl JobWatch {
    pub(crate) fn new(client: Client, handle: &JobHandle, acknowledge: bool) -> Self {
        JobWatch {
            client,
            id: handle.task_id.clone(),
            acknowledge,
        }
    }

    /// Whether to acknowledge the task when a look finds it `done` (the default is the
    /// client's [`ClientBuilder::acknowledge_finished`](crate::ClientBuilder::acknowledge_finished),
    /// itself on by default).
    pub fn acknowledge(mut self, yes: bool) -> Self {
        self.acknowledge = yes;
        self
    }

    /// The handle of the watched task.
    pub fn handle(&self) -> JobHandle {
        JobHandle::new(self.id.clone())
    }

    /// Waits for this task with Zefort's defaults, as [`Client::wait`] does: the policy of
    /// [`Client::default_poll_policy`], and a first look at once.
    pub fn wait(self) -> JobWait<JobWatch> {
        // The first look is immediate: a waited-for task was submitted a moment ago or is
        // resumed from a saved handle, and may have finished long ago.
        JobWait::new(self, Client::default_poll_policy()).poll_immediately(true)
    }

    /// Acknowledges a finished task, keeping the finished task if that fails.
    async fn acknowledged(&self, task: Task) -> Task {
        if !self.acknowledge || task.frontend_status == FrontendStatus::Done {
            return task;
        }
        match self.client.acknowledge_task(&task.id).await {
            Ok(acked) => acked,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not acknowledge the finished task");
                task
            }
        }
    }
}

impl Job for JobWatch {
    type Output = Task;

    async fn poll(&self) -> Result<JobState<Task>> {
        let task = self.client.task(&self.id).await?;
        Ok(match task_state(task) {
            JobState::Done(task) => JobState::Done(self.acknowledged(task).await),
            other => other,
        })
    }

    fn describe(&self) -> String {
        self.id.to_string()
    }
}

fn task_state(task: Task) -> JobState<Task> {
    if task.is_done() {
        return JobState::Done(task);
    }
    if task.is_running() {
        return JobState::Pending(Progress::new().status(task.backend_status.as_str()));
    }
    let info = if task.backend_status_info.is_empty() {
        format!(
            "the task ended with status {:?}",
            task.backend_status.as_str()
        )
    } else {
        task.backend_status_info.clone()
    };
    JobState::Failed(
        JobFailure::new(info)
            .code(task.backend_status.as_str())
            .details(json!({
                "task_id": task.id,
                "backend_status": task.backend_status,
                "backend_status_info": task.backend_status_info,
                "description": task.description,
            })),
    )
}
