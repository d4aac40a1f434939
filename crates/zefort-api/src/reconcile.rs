//! Finding the task of a bulk update whose reply was lost, instead of submitting it twice; and
//! submitting once more when the task list proves that nothing was created.
//!
//! The rule (also in the crate docs): before sending, the client reads the most recent tasks
//! (a *listing*: the ids it saw, the tasks echoing the same body, the list's `count`, whether it
//! reached the end). After an ambiguous outcome it reads them again and compares:
//!
//! - exactly one task echoing the body that was not there before: it is this submission's task;
//! - several: which one is ours cannot be told, so none is adopted (a typed error);
//! - none, and every task created since the first listing was seen (the list was read to its
//!   end, or the growth of `count` equals the new ids seen): nothing was created, so the update
//!   is sent once more (bounded: two submissions at most);
//! - none, without that proof (a long list in another order, no `count`): the ambiguity is
//!   returned as an error, never resolved by guessing.
//!
//! A listing that contradicts itself (more new ids than `count` grew by, `count` shrinking) is
//! treated as unreadable for attribution: nothing is adopted and nothing is re-sent.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::client::Client;
use crate::model::{Task, TaskId};
use crate::{ErrorKind, Result};

/// The pause before the second look at the task list: a server still busy with a request whose
/// reply timed out may list the task a moment later.
const RELOOK_DELAY: Duration = Duration::from_secs(2);

/// The most rounds of reading the task list for one decision.
const LIST_ROUNDS: u32 = 3;

/// What one read of the task list showed.
#[derive(Debug, Default)]
struct Listing {
    /// Every task id seen.
    ids: BTreeSet<TaskId>,
    /// The same ids in listing order.
    order: Vec<TaskId>,
    /// The tasks whose `details.data` equals the body, in listing order.
    matching: Vec<Task>,
    /// Whether the list was read to its end (`next` null).
    complete: bool,
    /// The list's `count` on its first page, or the number of tasks when read to the end.
    count: Option<u64>,
}

/// What a look after an ambiguous outcome concluded.
enum Verdict {
    /// The submission's task.
    Found(Task),
    /// Proven: no task was created; the listing becomes the next submission's snapshot.
    Absent(Listing),
    /// Not provable either way (the message says why).
    Unknown(String),
}

/// Submits a bulk update body, reconciling an ambiguous outcome.
pub(crate) async fn submit_bulk_update(client: &Client, body: &Value) -> Result<Task> {
    let settings = &client.settings;
    if !settings.reconcile {
        return client.post_bulk_update(body).await;
    }
    // A failed snapshot does not stop the submission; it only leaves nothing to compare with.
    let mut before: Option<Listing> = match list_patiently(client, body).await {
        Ok(listing) => Some(listing),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the task list before a bulk update");
            None
        }
    };
    let mut submission = 1u32;
    loop {
        let err = match client.post_bulk_update(body).await {
            Ok(task) => return Ok(task),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(e),
        };
        let Some(snapshot) = before.take() else {
            return Err(err.context(
                "the task list could not be read before sending, so the outcome cannot be \
                 reconciled",
            ));
        };
        tracing::warn!(error = %err, submission, "bulk update outcome unknown; looking for its task");
        match reconcile(client, body, &snapshot).await {
            Ok(Verdict::Found(task)) => {
                tracing::info!(task = %task.id, "found the task the bulk update created");
                return Ok(task);
            }
            Ok(Verdict::Absent(listing)) if submission <= settings.resubmissions => {
                tracing::info!("the task list proves no task was created; submitting once more");
                before = Some(listing);
                submission += 1;
            }
            Ok(Verdict::Absent(_)) => {
                let why = if settings.resubmissions > 0 {
                    format!(
                        "the task list proves that none of the {submission} submissions created \
                         a task (nothing was applied); not submitted again"
                    )
                } else {
                    "the task list proves no task was created (nothing was applied); not \
                     resubmitted, as configured"
                        .to_owned()
                };
                return Err(err.context(why));
            }
            Ok(Verdict::Unknown(why)) => return Err(err.context(why)),
            Err(scan) => {
                return Err(err.context(format!(
                    "and the task list could not be read to reconcile ({scan})"
                )));
            }
        }
    }
}

/// Looks (twice, [`RELOOK_DELAY`] apart, unless the first look decides) for the task that the
/// submission after `before` created.
async fn reconcile(client: &Client, body: &Value, before: &Listing) -> Result<Verdict> {
    let mut verdict = Verdict::Unknown(String::new());
    for look in 0..2 {
        if look > 0 {
            tokio::time::sleep(RELOOK_DELAY).await;
        }
        let after = list_patiently(client, body).await?;
        verdict = judge(before, after, client.settings.scan_limit);
        if !matches!(verdict, Verdict::Absent(_)) {
            return Ok(verdict);
        }
    }
    Ok(verdict)
}

/// Compares the listing after an ambiguous submission with the one before it.
fn judge(before: &Listing, after: Listing, scan_limit: usize) -> Verdict {
    let new_ids: BTreeSet<&TaskId> = after.ids.difference(&before.ids).collect();
    // How many tasks were created since the snapshot, when both listings say.
    let growth = match (before.count, after.count) {
        (Some(b), Some(a)) if a < b => {
            return Verdict::Unknown(format!(
                "the task list shrank from {b} to {a} tasks between two reads, so it cannot \
                 tell which task is this request's"
            ));
        }
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    // When both listings were read to their end, every new id is a new task. Otherwise more new
    // ids than the list grew by means the window moved (another order, tasks shuffled), and a
    // task "new" to this window may be an old one.
    let both_complete = before.complete && after.complete;
    if !both_complete && growth.is_some_and(|g| (new_ids.len() as u64) > g) {
        return Verdict::Unknown(format!(
            "the task list showed {} tasks not seen before while it grew by {}: its order or \
             paging is not stable, so no task can be attributed to this request",
            new_ids.len(),
            growth.unwrap_or_default()
        ));
    }
    // Unless the first listing held every task, an id new to the window is new to the list
    // only if the list keeps a stable order: the tasks both listings show in the same order,
    // the first listing's tail dropped, and the new ids all at one end.
    if !before.complete && !stable_order(before, &after) {
        return Verdict::Unknown(
            "the task list's order changed between two reads, so no task can be attributed to \
             this request"
                .to_owned(),
        );
    }
    if !both_complete && growth.is_none() {
        return Verdict::Unknown(format!(
            "the task list gives no count and is longer than the {scan_limit} tasks read, so \
             whether this request created a task cannot be told"
        ));
    }
    let mut candidates: Vec<Task> = after
        .matching
        .iter()
        .filter(|t| !before.ids.contains(&t.id))
        .cloned()
        .collect();
    candidates.dedup_by(|a, b| a.id == b.id);
    match candidates.len() {
        1 => return Verdict::Found(candidates.remove(0)),
        0 => {}
        n => {
            let ids: Vec<&str> = candidates.iter().map(|t| t.id.as_str()).collect();
            return Verdict::Unknown(format!(
                "{n} new tasks echo this request ({}), so which one it created cannot be told; \
                 none was adopted",
                ids.join(", ")
            ));
        }
    }
    // Proof of absence: every task created since the snapshot was seen, and none echoes the body.
    let all_new_seen = both_complete || growth.is_some_and(|g| new_ids.len() as u64 == g);
    if all_new_seen {
        Verdict::Absent(after)
    } else {
        Verdict::Unknown(format!(
            "no new task echoing this request was found among the {scan_limit} most recent \
             tasks, but the list grew by {} tasks that were not all seen (it may list oldest \
             first), so the request may still have been applied",
            growth.unwrap_or_default()
        ))
    }
}

/// Whether `after` reads like `before` with new tasks added at one end (newest first: at the
/// front, pushing the tail out of the window; oldest first: at the back).
fn stable_order(before: &Listing, after: &Listing) -> bool {
    let kept_after: Vec<&TaskId> = after
        .order
        .iter()
        .filter(|id| before.ids.contains(*id))
        .collect();
    let kept_before: Vec<&TaskId> = before
        .order
        .iter()
        .filter(|id| after.ids.contains(*id))
        .collect();
    let prefix = before.order.iter().zip(&kept_before).all(|(a, b)| a == *b);
    if kept_after != kept_before || !prefix {
        return false;
    }
    let new: Vec<bool> = after
        .order
        .iter()
        .map(|id| !before.ids.contains(id))
        .collect();
    let total = new.iter().filter(|n| **n).count();
    let front = new.iter().take_while(|n| **n).count();
    let back = new.iter().rev().take_while(|n| **n).count();
    front == total || back == total
}

/// Reads the task list, in up to [`LIST_ROUNDS`] rounds of the client's retry policy: the
/// listing decides whether a task is adopted or the update sent again, and reading it is safe
/// to repeat, so a transient failure (or an unreadable reply) is worth a few more seconds.
async fn list_patiently(client: &Client, body: &Value) -> Result<Listing> {
    let mut round = 1;
    loop {
        match list(client, body).await {
            Ok(listing) => return Ok(listing),
            Err(e)
                if round < LIST_ROUNDS && (e.is_retryable() || e.kind() == ErrorKind::Decode) =>
            {
                tracing::warn!(error = %e, round, "could not read the task list; trying again");
                tokio::time::sleep(RELOOK_DELAY * round).await;
                round += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads up to `scan_limit` tasks of the task list.
async fn list(client: &Client, body: &Value) -> Result<Listing> {
    let limit = client.settings.scan_limit;
    let page_size = limit.min(100) as u64;
    let mut out = Listing::default();
    let mut seen = 0usize;
    let mut page = 1u64;
    loop {
        let p = client.tasks_page(page, Some(page_size)).await?;
        if page == 1 {
            out.count = p.count;
        }
        let n = p.results.len();
        for task in p.results.into_iter().take(limit - seen) {
            if task.details.data == *body {
                out.matching.push(task.clone());
            }
            if out.ids.insert(task.id.clone()) {
                out.order.push(task.id);
            }
        }
        seen += n;
        if p.next.is_none() || n == 0 {
            out.complete = true;
            // Read to the end: the count is what was seen, whatever the envelope said.
            let total = out.ids.len() as u64;
            if out.count.is_some_and(|c| c != total) {
                tracing::debug!(
                    count = ?out.count,
                    total,
                    "the task list's count differs from the tasks read"
                );
            }
            out.count = Some(total);
            return Ok(out);
        }
        if seen >= limit {
            return Ok(out);
        }
        page += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, data: Value) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": id, "backend_status": "pending", "details": {"query_params": {}, "data": data}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn listing(tasks: &[(&str, bool)], complete: bool, count: Option<u64>) -> Listing {
        let body = serde_json::json!({"status": "done"});
        let mut l = Listing {
            complete,
            count,
            ..Listing::default()
        };
        for (id, same) in tasks {
            l.ids.insert(TaskId::new(*id));
            l.order.push(TaskId::new(*id));
            if *same {
                l.matching.push(task(id, body.clone()));
            }
        }
        l
    }

    #[test]
    fn one_new_echo_is_adopted_two_are_not() {
        let before = listing(&[("t1", true)], true, Some(1));
        let after = listing(&[("t2", true), ("t1", true)], true, Some(2));
        assert!(matches!(judge(&before, after, 200), Verdict::Found(t) if t.id.as_str() == "t2"));
        let after = listing(&[("t3", true), ("t2", true), ("t1", true)], true, Some(3));
        assert!(matches!(judge(&before, after, 200), Verdict::Unknown(_)));
    }

    #[test]
    fn absence_needs_every_new_task_seen() {
        // Long list, newest first: the one new task was seen and is someone else's.
        let before = listing(&[("t1", false)], false, Some(500));
        let after = listing(&[("t9", false)], false, Some(501));
        assert!(matches!(judge(&before, after, 1), Verdict::Absent(_)));
        // Oldest first: the list grew but the new task is beyond the window.
        let before = listing(&[("t1", false)], false, Some(500));
        let after = listing(&[("t1", false)], false, Some(501));
        assert!(matches!(judge(&before, after, 1), Verdict::Unknown(_)));
        // No count and not read to the end: nothing can be proven.
        let before = listing(&[("t1", false)], false, None);
        let after = listing(&[("t1", false)], false, None);
        assert!(matches!(judge(&before, after, 1), Verdict::Unknown(_)));
    }

    #[test]
    fn an_unstable_window_attributes_nothing() {
        // Shuffled: two ids new to the window, one task created; one of them echoes the body
        // but may be an old task from outside the first window.
        let before = listing(&[("t1", false), ("t2", false)], false, Some(50));
        let after = listing(&[("t7", true), ("t8", false)], false, Some(51));
        assert!(matches!(judge(&before, after, 2), Verdict::Unknown(_)));
        // Shuffled again: one id new to the window, as many as the list grew by, but the kept
        // tasks changed places, so the "new" one may be old.
        let before = listing(
            &[("t1", false), ("t2", false), ("t3", false)],
            false,
            Some(50),
        );
        let after = listing(
            &[("t7", true), ("t2", false), ("t1", false)],
            false,
            Some(51),
        );
        assert!(matches!(judge(&before, after, 3), Verdict::Unknown(_)));
        // The same with a stable order (newest first) is adopted.
        let after = listing(
            &[("t7", true), ("t1", false), ("t2", false)],
            false,
            Some(51),
        );
        assert!(matches!(judge(&before, after, 3), Verdict::Found(_)));
        let before = listing(&[("t1", false)], false, Some(50));
        let after = listing(&[("t1", false)], false, Some(49));
        assert!(matches!(judge(&before, after, 2), Verdict::Unknown(_)));
    }
}
