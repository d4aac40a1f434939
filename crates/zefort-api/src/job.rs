//! Waiting for tasks: a serializable handle, the poll-driver job, and the one-call flows.

use std::fmt;
use std::sync::Arc;

use bulk_common::CancellationToken;
use bulk_common::poll::{Job, JobFailure, JobState, PollEvent, PollPolicy, Progress, Wait};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Result;
use crate::client::Client;
use crate::model::{BulkUpdate, Task, TaskId};

/// A task to wait for, which can be stored and resumed by another process.
///
/// ```
/// use zefort_api::TaskHandle;
/// let handle = TaskHandle::new("task_123");
/// let saved = serde_json::to_string(&handle)?;
/// assert_eq!(saved, r#"{"task_id":"task_123"}"#);
/// let resumed: TaskHandle = serde_json::from_str(&saved)?;
/// assert_eq!(resumed, handle);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskHandle {
    /// The task's id.
    pub task_id: TaskId,
}

impl TaskHandle {
    /// A handle on task `id`.
    pub fn new(id: impl Into<TaskId>) -> Self {
        TaskHandle { task_id: id.into() }
    }
}

impl From<&Task> for TaskHandle {
    fn from(task: &Task) -> Self {
        TaskHandle::new(task.id.clone())
    }
}

type Observer = Arc<dyn Fn(&PollEvent) + Send + Sync>;

/// How to wait for a task.
///
/// The default: bulk-common's [`PollPolicy::default`] (first look after 1 s, growing to 30 s,
/// a one-hour deadline), acknowledge the task when it finishes successfully, no cancellation,
/// no progress callback.
#[derive(Clone)]
#[non_exhaustive]
pub struct WaitOptions {
    policy: PollPolicy,
    acknowledge: bool,
    cancel: Option<CancellationToken>,
    on_progress: Option<Observer>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            policy: PollPolicy::default(),
            acknowledge: true,
            cancel: None,
            on_progress: None,
        }
    }
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("policy", &self.policy)
            .field("acknowledge", &self.acknowledge)
            .field("cancel", &self.cancel.is_some())
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl WaitOptions {
    /// The default options.
    pub fn new() -> Self {
        WaitOptions::default()
    }

    /// The polling policy (intervals and deadline).
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Whether to acknowledge a successfully finished task (`frontend_status = done`), so it
    /// leaves the web UI's pending list. Default: yes. Failed tasks are left for people to see.
    pub fn acknowledge(mut self, yes: bool) -> Self {
        self.acknowledge = yes;
        self
    }

    /// Stops waiting with [`crate::ErrorKind::Cancelled`] when `token` is cancelled.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called after each look at a running task.
    pub fn on_progress(mut self, f: impl Fn(&PollEvent) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }
}

/// One task as a [`Job`] for bulk-common's poll driver: `pending` is running, `done` is
/// finished, and any other final status fails with [`crate::ErrorKind::JobFailed`] whose
/// vendor message is the task's `backend_status_info` and vendor code its `backend_status`.
#[derive(Debug, Clone)]
pub struct TaskJob {
    client: Client,
    id: TaskId,
}

impl Job for TaskJob {
    type Output = Task;

    async fn poll(&self) -> Result<JobState<Task>> {
        let task = self.client.task(&self.id).await?;
        Ok(task_state(task))
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

impl Client {
    /// The poll-driver job of a task, for callers that drive [`Wait`] themselves.
    pub fn watch(&self, handle: &TaskHandle) -> TaskJob {
        TaskJob {
            client: self.clone(),
            id: handle.task_id.clone(),
        }
    }

    /// Waits for a task to finish, then acknowledges it (unless opted out) and returns it.
    ///
    /// A failed task is a [`crate::ErrorKind::JobFailed`] error carrying `backend_status_info`;
    /// the deadline is [`crate::ErrorKind::DeadlineExceeded`]. The first look is immediate, so
    /// this also resumes a task started by an earlier process. If the acknowledgement fails, the
    /// finished task is still returned (its `frontend_status` stays `pending`) and a warning is
    /// logged: the work itself is done.
    pub async fn wait(&self, handle: &TaskHandle, options: &WaitOptions) -> Result<Task> {
        let job = self.watch(handle);
        let mut wait = Wait::new(&job)
            .policy(options.policy.clone())
            .poll_immediately(true);
        if let Some(token) = &options.cancel {
            wait = wait.cancel_on(token.clone());
        }
        if let Some(observer) = &options.on_progress {
            let observer = observer.clone();
            wait = wait.on_progress(move |e| observer(e));
        }
        let task = wait.run().await?;
        if !options.acknowledge || task.frontend_status == crate::FrontendStatus::Done {
            return Ok(task);
        }
        match self.acknowledge_task(&task.id).await {
            Ok(acked) => Ok(acked),
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not acknowledge the finished task");
                Ok(task)
            }
        }
    }

    /// The whole bulk update: submit (reconciling a lost reply, see the crate docs), wait with
    /// progress and a deadline, acknowledge unless opted out, and return the finished task.
    ///
    /// ```no_run
    /// use zefort_api::{BulkUpdate, Client, ContractQuery, ContractStatus, Target, WaitOptions};
    /// # async fn run() -> zefort_api::Result<()> {
    /// let client = Client::from_env()?;
    /// let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags("contracts of service")))
    ///     .end_date("2023-02-15".parse()?)
    ///     .status(ContractStatus::Done);
    /// let task = client.run_bulk_update(&update, &WaitOptions::new()).await?;
    /// println!("{} finished: {}", task.id, task.backend_status);
    /// # Ok(()) }
    /// ```
    pub async fn run_bulk_update(
        &self,
        update: &BulkUpdate,
        options: &WaitOptions,
    ) -> Result<Task> {
        let task = self.bulk_update(update).await?;
        tracing::info!(task = %task.id, "bulk update submitted");
        self.wait(&TaskHandle::from(&task), options).await
    }
}
