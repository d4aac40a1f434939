//! Finding the task of a bulk update whose reply was lost, instead of submitting it twice.
//!
//! The rule (also in the crate docs): before sending, the client notes which of the most recent
//! tasks already echo the same request body in `details.data`. After an ambiguous outcome it
//! reads the recent tasks again; a task whose `details.data` equals the body (as JSON values) and
//! that was not in the first listing was created by this submission, and is returned.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::Result;
use crate::client::Client;
use crate::models::{Task, TaskId};

/// The pause before the second look at the task list.
const RELOOK_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Submits a bulk update body, reconciling an ambiguous outcome.
pub(crate) async fn submit_bulk_update(client: &Client, body: &Value) -> Result<Task> {
    let settings = &client.settings;
    if !settings.reconcile {
        return client.post_bulk_update(body).await;
    }
    // A failed snapshot does not stop the submission; it only leaves nothing to compare with.
    let before: Option<BTreeSet<TaskId>> = match matching_tasks(client, body).await {
        Ok(tasks) => Some(tasks.into_iter().map(|t| t.id).collect()),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the task list before a bulk update");
            None
        }
    };
    let err = match client.post_bulk_update(body).await {
        Ok(task) => return Ok(task),
        Err(e) if e.is_ambiguous() => e,
        Err(e) => return Err(e),
    };
    let Some(before) = before else {
        return Err(err.context(
            "the task list could not be read before sending, so the outcome cannot be reconciled",
        ));
    };
    tracing::warn!(error = %err, "bulk update outcome unknown; looking for its task");
    // Two looks: a server still busy with the request (the reply timed out) may list the task a
    // moment later.
    for look in 0..2 {
        if look > 0 {
            tokio::time::sleep(RELOOK_DELAY).await;
        }
        let after = match matching_tasks(client, body).await {
            Ok(tasks) => tasks,
            Err(scan) => {
                return Err(err.context(format!(
                    "and the task list could not be read to reconcile ({scan})"
                )));
            }
        };
        if let Some(task) = after.into_iter().find(|t| !before.contains(&t.id)) {
            tracing::info!(task = %task.id, "found the task the bulk update created");
            return Ok(task);
        }
    }
    if settings.resubmit_if_absent {
        tracing::info!("no matching task found; submitting once more");
        return client.post_bulk_update(body).await;
    }
    Err(err.context(format!(
        "no new task echoing this request was found among the {} most recent tasks \
         (it was probably not applied)",
        settings.scan_limit
    )))
}

/// The tasks among the most recent `scan_limit` whose `details.data` equals `body`.
async fn matching_tasks(client: &Client, body: &Value) -> Result<Vec<Task>> {
    let limit = client.settings.scan_limit;
    let page_size = limit.min(100) as u64;
    let mut seen = 0usize;
    let mut page = 1u64;
    let mut out = Vec::new();
    loop {
        let p = client.tasks_page(page, Some(page_size)).await?;
        let n = p.results.len();
        for task in p.results.into_iter().take(limit - seen) {
            if task.details.data == *body {
                out.push(task);
            }
        }
        seen += n;
        if p.next.is_none() || n == 0 || seen >= limit {
            return Ok(out);
        }
        page += 1;
    }
}
