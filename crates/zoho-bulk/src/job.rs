//! Job handles, the job status, and the owned watch the shared poll driver looks at.
//!
//! A [`JobHandle`] is plain data that serializes, so a later process can wait on a job (Zoho
//! keeps results downloadable for 24 hours).

use bulk_common::Result;
use bulk_common::poll::{Job, JobFailure, JobState, Progress};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::model::{JobDetails, JobId};

bulk_common::open_enum!(
    /// A bulk-read job's status. Zoho spells it inconsistently (`In-progress`, `IN PROGRESS`,
    /// `IN_PROGRESS`); it is compared without case or punctuation, and an unknown value is kept
    /// in [`JobStatus::Other`] (treated as still running).
    ///
    /// ```
    /// use zoho_bulk::JobStatus;
    /// assert_eq!(JobStatus::from("IN PROGRESS"), JobStatus::InProgress);
    /// assert_eq!(JobStatus::InProgress.to_string(), "In-progress");
    /// assert_eq!(JobStatus::from("Queued"), JobStatus::Other("Queued".into()));
    /// ```
    JobStatus {
        /// Still running.
        InProgress = "In-progress",
        /// Finished; the result can be downloaded for 24 hours.
        Completed = "Completed",
        /// Failed.
        Failed = "Failed",
    }
);

/// A bulk-read job: the report and Zoho's job id. Save it (it serializes) to wait for the job
/// in another process.
///
/// ```
/// let job = zoho_bulk::JobHandle::new("All_Orders", "2000000018003");
/// assert_eq!(job.report(), "All_Orders");
/// assert_eq!(job.id().as_str(), "2000000018003");
/// let saved = serde_json::to_string(&job)?;
/// let back: zoho_bulk::JobHandle = serde_json::from_str(&saved)?;
/// assert_eq!(back, job);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    report: String,
    id: JobId,
}

impl JobHandle {
    /// A handle for job `id` of `report` (its link name).
    pub fn new(report: impl Into<String>, id: impl Into<JobId>) -> Self {
        JobHandle {
            report: report.into(),
            id: id.into(),
        }
    }

    /// The report's link name.
    pub fn report(&self) -> &str {
        &self.report
    }

    /// Zoho's job id.
    pub fn id(&self) -> &JobId {
        &self.id
    }
}

/// A job joined to a client: what the shared poll driver looks at. Owned and cheap to clone (it
/// holds a clone of the client), so it can move into a task; from [`Client::watch`].
#[derive(Debug, Clone)]
pub struct JobWatch {
    client: Client,
    handle: JobHandle,
}

impl JobWatch {
    pub(crate) fn new(client: Client, handle: JobHandle) -> Self {
        JobWatch { client, handle }
    }

    /// The handle.
    pub fn handle(&self) -> &JobHandle {
        &self.handle
    }
}

impl Job for JobWatch {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spellings_are_normalised() {
        for (text, want) in [
            ("In-progress", JobStatus::InProgress),
            ("IN PROGRESS", JobStatus::InProgress),
            ("in_progress", JobStatus::InProgress),
            ("Completed", JobStatus::Completed),
            ("COMPLETED", JobStatus::Completed),
            ("failed", JobStatus::Failed),
            ("Queued", JobStatus::Other("Queued".into())),
        ] {
            assert_eq!(JobStatus::from(text), want, "{text}");
        }
    }
}
