//! Job handles: plain data that serializes, so a later process can wait on a job (results stay
//! downloadable for 24 hours).

use bulk_common::Result;
use bulk_common::poll::{Job, JobFailure, JobState, Progress};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::models::{JobDetails, JobStatus};

/// A bulk-read job: the report and Zoho's job id.
///
/// ```
/// let job = zoho_bulk::JobHandle::new("All_Orders", "2000000018003");
/// let saved = serde_json::to_string(&job)?;
/// let back: zoho_bulk::JobHandle = serde_json::from_str(&saved)?;
/// assert_eq!(back, job);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    /// The report's link name.
    pub report: String,
    /// Zoho's job id.
    pub id: String,
}

impl JobHandle {
    /// A handle for job `id` of `report`.
    pub fn new(report: impl Into<String>, id: impl Into<String>) -> Self {
        JobHandle {
            report: report.into(),
            id: id.into(),
        }
    }
}

/// A job joined to a client: what `bulk_common::poll::Wait` polls.
#[derive(Debug, Clone)]
pub struct ReadJob {
    client: Client,
    handle: JobHandle,
}

impl ReadJob {
    pub(crate) fn new(client: Client, handle: JobHandle) -> Self {
        ReadJob { client, handle }
    }

    /// The handle.
    pub fn handle(&self) -> &JobHandle {
        &self.handle
    }
}

impl Job for ReadJob {
    type Output = JobDetails;

    async fn poll(&self) -> Result<JobState<JobDetails>> {
        let details = self.client.job_status(&self.handle).await?;
        Ok(match &details.status {
            JobStatus::Completed => JobState::Done(details),
            JobStatus::Failed => JobState::Failed(
                JobFailure::new(format!(
                    "Zoho reports bulk-read job {} as failed",
                    self.handle.id
                ))
                .code("FAILED"),
            ),
            other => JobState::Pending(Progress::new().status(other.to_string())),
        })
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.handle.report, self.handle.id)
    }
}
