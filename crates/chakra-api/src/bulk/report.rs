//! The report of a bulk update: every item's outcome, and the counts.

use crate::Error;
use crate::job::JobId;
use crate::model::{Identifier, ProcessUpdate};

/// How one item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Applied.
    Success,
    /// Processed by the server and failed (for example: no such process), or the chunk was
    /// refused; safe to fix and resend.
    Error(String),
    /// Rejected as invalid, by this client before sending or by the server; fix and resend.
    Invalid(String),
    /// Unknown: the chunk's request may or may not have been applied, or its job could not be
    /// followed to the end. Reconcile before resending.
    Unknown(String),
}

impl Outcome {
    /// The message, for anything but success.
    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Success => None,
            Outcome::Error(m) | Outcome::Invalid(m) | Outcome::Unknown(m) => Some(m),
        }
    }

    /// A short label: `success`, `error`, `invalid`, `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error(_) => "error",
            Outcome::Invalid(_) => "invalid",
            Outcome::Unknown(_) => "unknown",
        }
    }
}

/// One input item's result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ItemResult {
    /// The item's position in the input (0 for the first).
    pub index: u64,
    /// Its identifier (`None` when it had none or several).
    pub identifier: Option<Identifier>,
    /// How it ended.
    pub outcome: Outcome,
    /// The background job that carried it, if one was created.
    pub job: Option<JobId>,
    /// The update itself (kept for items that did not succeed).
    pub update: Option<ProcessUpdate>,
}

/// Counts reported while a bulk update runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkProgress {
    /// Items taken from the input.
    pub read: u64,
    /// Items sent in accepted requests.
    pub sent: u64,
    /// Items whose outcome is known.
    pub finished: u64,
    /// Items applied.
    pub succeeded: u64,
    /// Items that failed (error or invalid).
    pub failed: u64,
    /// Items whose outcome is unknown.
    pub unknown: u64,
    /// Requests accepted (jobs created).
    pub jobs: u64,
    /// The chunk size now in use (smaller after a size error).
    pub chunk_size: usize,
    /// Items whose process was read back after an unknown outcome (counted per read).
    pub read_back: u64,
    /// Items found applied by reading their process back.
    pub found_applied: u64,
    /// Items sent again after the read-back showed they were not applied.
    pub resent: u64,
}

/// The result of a bulk update: every input item's outcome.
///
/// Successes are counted, not stored (unless [`BulkUpdate::keep_successes`](crate::BulkUpdate::keep_successes) was set), so
/// [`outcome`](Self::outcome) answers "success" for any index below [`total`](Self::total) that
/// is not among the [`failures`](Self::failures).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BulkReport {
    pub(super) total: u64,
    pub(super) progress: BulkProgress,
    pub(super) failures: Vec<ItemResult>,
    pub(super) successes: Option<Vec<(u64, Option<Identifier>)>>,
    pub(super) jobs: Vec<JobId>,
    pub(super) stopped: Option<Error>,
}

impl BulkReport {
    /// Items taken from the input.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Items applied.
    pub fn succeeded(&self) -> u64 {
        self.progress.succeeded
    }

    /// Items with [`Outcome::Error`].
    pub fn errors(&self) -> u64 {
        self.count(|o| matches!(o, Outcome::Error(_)))
    }

    /// Items with [`Outcome::Invalid`].
    pub fn invalid(&self) -> u64 {
        self.count(|o| matches!(o, Outcome::Invalid(_)))
    }

    /// Items with [`Outcome::Unknown`].
    pub fn unknown_count(&self) -> u64 {
        self.progress.unknown
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> u64 {
        self.failures.iter().filter(|r| f(&r.outcome)).count() as u64
    }

    /// Every item that did not succeed, in input order.
    pub fn failures(&self) -> &[ItemResult] {
        &self.failures
    }

    /// The outcome of input item `index` (`None` past the end of the input).
    pub fn outcome(&self, index: u64) -> Option<&Outcome> {
        const SUCCESS: &Outcome = &Outcome::Success;
        if index >= self.total {
            return None;
        }
        match self.failures.binary_search_by_key(&index, |r| r.index) {
            Ok(i) => Some(&self.failures[i].outcome),
            Err(_) => Some(SUCCESS),
        }
    }

    /// The updates to fix and resend: items with [`Outcome::Error`] or [`Outcome::Invalid`],
    /// in input order.
    pub fn failed(&self) -> Vec<ProcessUpdate> {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Error(_) | Outcome::Invalid(_)))
            .filter_map(|r| r.update.clone())
            .collect()
    }

    /// The updates whose outcome is unknown (reconcile before resending them).
    pub fn unknown(&self) -> Vec<ProcessUpdate> {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Unknown(_)))
            .filter_map(|r| r.update.clone())
            .collect()
    }

    /// Indexes and identifiers of applied items, when [`BulkUpdate::keep_successes`](crate::BulkUpdate::keep_successes) was set.
    pub fn successes(&self) -> Option<&[(u64, Option<Identifier>)]> {
        self.successes.as_deref()
    }

    /// The background jobs created, in the order they were accepted.
    pub fn jobs(&self) -> &[JobId] {
        &self.jobs
    }

    /// The final counts.
    pub fn progress(&self) -> &BulkProgress {
        &self.progress
    }

    /// True when every item was applied and the whole input was read.
    pub fn is_complete_success(&self) -> bool {
        self.failures.is_empty() && self.stopped.is_none()
    }

    /// The error that stopped the run early (for example a rejected token), after which no more
    /// input was read; items already read are in the report.
    pub fn stopped_early(&self) -> Option<&Error> {
        self.stopped.as_ref()
    }
}
