//! A finished job's entries, attributed to the items of its chunk.

use std::collections::HashMap;
use std::time::Duration;

use bulk_common::CancellationToken;
use bulk_common::poll::{JobWait, WaitOptions};
use futures::TryStreamExt;
use serde_json::Value;

use crate::bulk::Outcome;
use crate::bulk::reconcile::value_text;
use crate::job::{EntryStatus, JobEntry, JobHandle};
use crate::model::ProcessUpdate;
use crate::{Client, Result};

/// Waits for a chunk's job and attributes its entries to the chunk's items (in chunk order);
/// `None` for an item no entry could be trusted for. An error when the job was not followed
/// to its end.
pub(super) async fn track(
    client: &Client,
    job: &JobHandle,
    items: &[(u64, ProcessUpdate)],
    wait: WaitOptions,
    stall: Option<Duration>,
    cancel: CancellationToken,
) -> Result<Vec<Option<Outcome>>> {
    let watch = client.watch(job).stall_timeout(stall);
    let status = JobWait::new(watch, Client::default_poll_policy())
        .options(wait)
        .cancel_on(cancel)
        .run()
        .await?;
    let n = items.len() as u64;
    if status.counts.success == n && status.counts.finished() == n && status.counts.total() == n {
        // Every entry succeeded: no need to page through them.
        return Ok(vec![Some(Outcome::Success); items.len()]);
    }
    let entries: Vec<JobEntry> = match client.job_entries(job.id()).try_collect().await {
        Ok(entries) => entries,
        Err(e) => {
            // The job has ended; its items will be read back instead.
            tracing::warn!(job = %job.id(), error = %e, "could not read the job's entries");
            return Ok(vec![None; items.len()]);
        }
    };
    // The entries must tell the same story as the job's counts; if they do not, none of them
    // is trusted (a wrong attribution is worse than a read-back).
    let tally = |s: EntryStatus| entries.iter().filter(|e| e.status == s).count() as u64;
    if tally(EntryStatus::Success) != status.counts.success
        || tally(EntryStatus::Error) != status.counts.error
        || tally(EntryStatus::Invalid) != status.counts.invalid
    {
        tracing::warn!(job = %job.id(), counts = %status.counts, "the job's entries disagree with its counts; reading the items back instead");
        return Ok(vec![None; items.len()]);
    }
    Ok(map_entries(items, &entries))
}

pub(super) fn identity_key(key: &str, value: &Value) -> String {
    format!("{key}\u{1f}{}", value_text(value))
}

/// The identifier keys of an echoed item (every key but `update` and the flat update fields).
fn payload_identities(payload: &Value) -> Vec<String> {
    payload
        .as_object()
        .map(|obj| {
            obj.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "update"
                            | "data"
                            | "state"
                            | "status"
                            | "assignedTo"
                            | "nextActionAt"
                            | "isDeleted"
                    )
                })
                .map(|(k, v)| identity_key(k, v))
                .collect()
        })
        .unwrap_or_default()
}

/// Attributes entries to items. An entry is placed only on evidence: its `index` (checked
/// against the identifier it echoes, when it echoes one), or the identifier it echoes when
/// exactly one item of the chunk has it (else the whole echoed item when exactly one is equal).
/// Entries are **never** matched by their order in the list, which is undocumented. An item
/// that no entry claims, or that two entries claim, gets `None` (to be read back).
pub(crate) fn map_entries(
    items: &[(u64, ProcessUpdate)],
    entries: &[JobEntry],
) -> Vec<Option<Outcome>> {
    let n = items.len();
    let mut by_ident: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, u)) in items.iter().enumerate() {
        if let Some(id) = u.identifier() {
            by_ident
                .entry(identity_key(id.key(), &id.value()))
                .or_default()
                .push(i);
        }
    }
    let mut slots: Vec<Option<Outcome>> = vec![None; n];
    let mut claimed = vec![0u32; n];
    for entry in entries {
        let position = entry
            .position
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p < n);
        // Items the echoed identifier points at (None: the entry echoes no identifier).
        let candidates: Option<Vec<usize>> = entry.payload.as_ref().and_then(|payload| {
            let idents = payload_identities(payload);
            if idents.is_empty() {
                return None;
            }
            let mut c: Vec<usize> = idents
                .iter()
                .filter_map(|k| by_ident.get(k))
                .flatten()
                .copied()
                .collect();
            c.sort_unstable();
            c.dedup();
            if c.len() > 1 {
                let equal: Vec<usize> = c
                    .iter()
                    .copied()
                    .filter(|&i| serde_json::to_value(&items[i].1).ok().as_ref() == Some(payload))
                    .collect();
                if equal.len() == 1 {
                    return Some(equal);
                }
            }
            Some(c)
        });
        let target = match (position, candidates) {
            (Some(p), None) => Some(p),
            (Some(p), Some(c)) => c.contains(&p).then_some(p),
            (None, Some(c)) if c.len() == 1 => Some(c[0]),
            _ => None,
        };
        let Some(t) = target else {
            continue;
        };
        claimed[t] += 1;
        slots[t] = entry_outcome(entry);
    }
    slots
        .into_iter()
        .zip(claimed)
        .map(|(s, c)| if c == 1 { s } else { None })
        .collect()
}

/// An entry's outcome, when it has ended (`None` for one not started or in a status this crate
/// does not know: the item is read back).
fn entry_outcome(entry: &JobEntry) -> Option<Outcome> {
    let msg = |default: &str| entry.message.clone().unwrap_or_else(|| default.to_owned());
    match &entry.status {
        EntryStatus::Success => Some(Outcome::Success),
        EntryStatus::Error => Some(Outcome::Error(msg("processing failed (no message)"))),
        EntryStatus::Invalid => Some(Outcome::Invalid(msg("rejected as invalid (no message)"))),
        EntryStatus::NotStarted | EntryStatus::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn items() -> Vec<(u64, ProcessUpdate)> {
        (0..3)
            .map(|i| {
                (
                    i,
                    ProcessUpdate::by_key("lead_id", format!("L-{i}")).state("DONE"),
                )
            })
            .collect()
    }

    fn entry(raw: Value) -> JobEntry {
        JobEntry::from_raw(raw)
    }

    #[test]
    fn entries_without_index_or_identifier_are_never_matched_by_order() {
        let entries: Vec<JobEntry> = ["SUCCESS", "ERROR", "SUCCESS"]
            .iter()
            .map(|s| entry(json!({ "completionStatus": s })))
            .collect();
        assert_eq!(map_entries(&items(), &entries), vec![None, None, None]);
    }

    #[test]
    fn entries_are_matched_by_index_or_by_a_unique_echoed_identifier() {
        let entries = vec![
            entry(
                json!({"completionStatus": "ERROR", "payload": {"lead_id": "L-2", "update": {}}}),
            ),
            entry(json!({"completionStatus": "SUCCESS", "index": 0})),
        ];
        let out = map_entries(&items(), &entries);
        assert_eq!(out[0], Some(Outcome::Success));
        assert_eq!(out[1], None);
        assert!(matches!(out[2], Some(Outcome::Error(_))));
    }

    #[test]
    fn an_index_contradicted_by_the_echoed_identifier_or_claimed_twice_is_not_trusted() {
        let entries = vec![
            entry(
                json!({"completionStatus": "SUCCESS", "index": 0, "payload": {"lead_id": "L-1"}}),
            ),
            entry(json!({"completionStatus": "SUCCESS", "index": 2})),
            entry(json!({"completionStatus": "ERROR", "index": 2})),
        ];
        assert_eq!(map_entries(&items(), &entries), vec![None, None, None]);
    }

    #[test]
    fn completion_status_wins_over_any_other_status_field() {
        let e = entry(json!({"status": "SUCCESS", "completionStatus": "ERROR", "index": 0}));
        assert_eq!(e.status, EntryStatus::Error);
    }
}
