//! Bulk Read request and reply types.

use bulk_common::Error;
use serde::{Deserialize, Serialize};

use crate::job::JobStatus;

bulk_common::id_type!(
    /// A bulk-read job's id, as Zoho writes it (a numeric string in every documented sample; a
    /// JSON number is read as its text).
    ///
    /// ```
    /// use zoho_bulk::JobId;
    /// let id: JobId = serde_json::from_str("2000000018003")?;
    /// assert_eq!(id, JobId::new("2000000018003"));
    /// assert_eq!(serde_json::to_string(&id)?, r#""2000000018003""#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    JobId
);

/// Rows per job: 100,000 to 200,000 in steps of 1,000 (Zoho's documented bounds).
///
/// ```
/// use zoho_bulk::MaxRecords;
/// assert!(MaxRecords::new(200_000).is_ok());
/// assert!(MaxRecords::new(150_500).is_err());
/// assert!(MaxRecords::new(50_000).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxRecords(u32);

impl MaxRecords {
    /// The smallest (and Zoho's default) job size.
    pub const MIN: MaxRecords = MaxRecords(100_000);
    /// The largest job size.
    pub const MAX: MaxRecords = MaxRecords(200_000);

    /// Validates a job size.
    pub fn new(n: u32) -> Result<Self, Error> {
        if (100_000..=200_000).contains(&n) && n.is_multiple_of(1000) {
            Ok(MaxRecords(n))
        } else {
            Err(Error::invalid_input(format!(
                "max_records {n} is invalid: Zoho accepts multiples of 1000 from 100000 to 200000"
            )))
        }
    }

    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for MaxRecords {
    type Error = Error;
    fn try_from(n: u32) -> Result<Self, Error> {
        MaxRecords::new(n)
    }
}

impl From<MaxRecords> for u32 {
    fn from(m: MaxRecords) -> u32 {
        m.0
    }
}

/// What a bulk read exports: fields, criteria and job size. Empty means every field of every
/// record, 100,000 rows per job.
///
/// ```
/// use zoho_bulk::{MaxRecords, ReadQuery};
/// let q = ReadQuery::new()
///     .fields(["Email", "Name"])
///     .criteria("Status == \"Open\"")
///     .max_records(MaxRecords::MAX);
/// # let _ = q;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReadQuery {
    /// Field link names to export (all when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// A Creator criteria string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criteria: Option<String>,
    /// Rows per job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_records: Option<MaxRecords>,
}

impl ReadQuery {
    /// Every field, every record, default job size.
    pub fn new() -> Self {
        ReadQuery::default()
    }

    /// Exports only these fields.
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Exports only records matching a Creator criteria string.
    pub fn criteria(mut self, criteria: impl Into<String>) -> Self {
        self.criteria = Some(criteria.into());
        self
    }

    /// Sets the rows per job.
    pub fn max_records(mut self, max: MaxRecords) -> Self {
        self.max_records = Some(max);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(fields) = &self.fields {
            if fields.is_empty() {
                return Err(Error::invalid_input(
                    "the field list is empty; leave it unset to export every field",
                ));
            }
            if let Some(bad) = fields.iter().find(|f| f.trim().is_empty()) {
                return Err(Error::invalid_input(format!("field name {bad:?} is blank")));
            }
        }
        if self
            .criteria
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(Error::invalid_input(
                "the criteria string is blank; leave it unset to export every record",
            ));
        }
        Ok(())
    }
}

/// The body of a job-creation request: a first query, or a record cursor alone (Zoho refuses
/// follow-up jobs that repeat fields, criteria or size).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CreateBody<'a> {
    pub(crate) query: CreateQuery<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum CreateQuery<'a> {
    First(&'a ReadQuery),
    Cursor { record_cursor: &'a str },
}

/// A job as Zoho describes it (`details` of the create and status replies).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct JobDetails {
    /// The job id (a numeric string; a number is read as its text).
    pub id: JobId,
    /// `read`.
    #[serde(default)]
    pub operation: Option<String>,
    /// Who created it.
    #[serde(default)]
    pub created_by: Option<String>,
    /// When, as Zoho writes it (`03-Sep-2021 14:55:46`, no time zone).
    #[serde(default)]
    pub created_time: Option<String>,
    /// The status (older replies call it `state`).
    #[serde(alias = "state", default = "in_progress")]
    pub status: JobStatus,
    /// Present once the job completed.
    #[serde(default)]
    pub result: Option<JobResult>,
}

fn in_progress() -> JobStatus {
    JobStatus::InProgress
}

/// The result of a completed job.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct JobResult {
    /// Rows in the result.
    #[serde(default)]
    pub count: Option<u64>,
    /// Where to download it (relative to the Creator host).
    #[serde(default)]
    pub download_url: Option<String>,
    /// The cursor for the next batch, absent on the last one.
    #[serde(default)]
    pub record_cursor: Option<String>,
}

/// The envelope of Creator replies.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) details: Option<JobDetails>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_match_the_documented_shapes() {
        let q = ReadQuery::new()
            .fields(["Email"])
            .criteria("a == 1")
            .max_records(MaxRecords::MAX);
        let first = serde_json::to_value(CreateBody {
            query: CreateQuery::First(&q),
        })
        .unwrap_or_default();
        assert_eq!(
            first,
            serde_json::json!({"query": {"fields": ["Email"], "criteria": "a == 1", "max_records": 200000}})
        );
        let next = serde_json::to_value(CreateBody {
            query: CreateQuery::Cursor {
                record_cursor: "abc",
            },
        })
        .unwrap_or_default();
        assert_eq!(next, serde_json::json!({"query": {"record_cursor": "abc"}}));
    }

    #[test]
    fn max_records_bounds() {
        assert!(MaxRecords::new(100_000).is_ok());
        assert!(MaxRecords::new(99_000).is_err());
        assert!(MaxRecords::new(201_000).is_err());
        assert!(MaxRecords::new(100_500).is_err());
        assert!(serde_json::from_str::<MaxRecords>("123").is_err());
    }
}
