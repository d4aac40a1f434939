//! Unknown outcomes resolved by reading the processes back, and the items not applied sent
//! again (see the [module docs](crate::bulk)).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bulk_common::CancellationToken;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use crate::bulk::Outcome;
use crate::bulk::entries::{identity_key, track};
use crate::bulk::runner::{Chunk, Runner, Unresolved};
use crate::job::{JobHandle, JobId};
use crate::model::{Identifier, Process, Query, Update};
use crate::process::MAX_LIST_LIMIT;
use crate::{Client, Result};

impl Runner {
    /// Reads back the unresolved items' processes: those holding the requested values were
    /// applied; the others are sent again where that is safe, in bounded rounds.
    pub(super) async fn reconcile(&mut self, cancel: &CancellationToken) -> Result<()> {
        let Some(settings) = self.cfg.reconcile.clone() else {
            return Ok(());
        };
        let mut round = 0;
        while !self.unresolved.is_empty() && !cancel.is_cancelled() {
            if self.unresolved.iter().any(|u| u.fresh && u.job.is_none())
                && !settings.settle.is_zero()
            {
                // A request whose reply was lost may have created a job that is still
                // working: give it time before looking, so a resend does not race it.
                tokio::select! {
                    () = tokio::time::sleep(settings.settle) => {}
                    () = cancel.cancelled() => break,
                }
            }
            self.retrack(cancel).await;
            if self.unresolved.is_empty() {
                break;
            }
            let pool = std::mem::take(&mut self.unresolved);
            let looks = read_back(
                &self.cfg.client,
                &self.cfg.procedure,
                &pool,
                self.cfg.concurrency,
            )
            .await;
            let looks = settle_duplicates(&pool, looks);
            let may_resend =
                round < settings.rounds && self.report.stopped.is_none() && !cancel.is_cancelled();
            let mut resend = Vec::new();
            for (mut u, look) in pool.into_iter().zip(looks) {
                self.report.progress.read_back += 1;
                match look {
                    Look::Held => {
                        self.report.progress.found_applied += 1;
                        self.settle_item(u, Outcome::Success);
                    }
                    Look::NotHeld | Look::Missing if u.resend && may_resend => resend.push(u),
                    Look::NotHeld | Look::Missing => {
                        let what = if matches!(look, Look::Missing) {
                            "no such process was found"
                        } else {
                            "the process does not hold the requested values"
                        };
                        let outcome = with_note(&u.fallback, &format!("read back: {what}"));
                        self.settle_item(u, outcome);
                    }
                    Look::Unsound(why) => {
                        let outcome = with_note(&u.fallback, &format!("not read back: {why}"));
                        self.settle_item(u, outcome);
                    }
                    Look::Later | Look::Unreadable(_) if round < settings.rounds => {
                        u.fresh = false;
                        self.unresolved.push(u);
                    }
                    Look::Later => {
                        let outcome = with_note(
                            &u.fallback,
                            "an earlier update of the same process was still unresolved",
                        );
                        self.settle_item(u, outcome);
                    }
                    Look::Unreadable(why) => {
                        let outcome =
                            with_note(&u.fallback, &format!("reading it back failed: {why}"));
                        self.settle_item(u, outcome);
                    }
                }
            }
            self.emit_progress();
            if !resend.is_empty() {
                tracing::info!(
                    items = resend.len(),
                    round,
                    "sending again the items that were not applied"
                );
                self.report.progress.resent += resend.len() as u64;
                let mut chunks = VecDeque::new();
                let mut items = Vec::new();
                for u in resend {
                    self.report.progress.unknown -= 1;
                    items.push((u.index, u.update));
                    if items.len() == self.chunk_size {
                        chunks.push_back(Chunk {
                            items: std::mem::take(&mut items),
                            resends: 1,
                        });
                    }
                }
                if !items.is_empty() {
                    chunks.push_back(Chunk { items, resends: 1 });
                }
                self.drive(futures::stream::empty(), chunks, cancel).await?;
            }
            round += 1;
            if round > settings.rounds {
                break;
            }
        }
        Ok(())
    }

    /// Looks again at the jobs that could not be followed because looking failed, and
    /// attributes their entries as after a normal wait.
    pub(super) async fn retrack(&mut self, cancel: &CancellationToken) {
        let (again, rest): (Vec<Unresolved>, Vec<Unresolved>) =
            std::mem::take(&mut self.unresolved)
                .into_iter()
                .partition(|u| u.retrack && u.job.is_some());
        self.unresolved = rest;
        // A job's items were unresolved together and in request order: regroup them.
        let mut jobs: Vec<(JobId, Vec<Unresolved>)> = Vec::new();
        for u in again {
            let id = u.job.clone().unwrap_or_else(|| JobId::new(""));
            match jobs.last_mut() {
                Some((last, items)) if *last == id => items.push(u),
                _ => jobs.push((id, vec![u])),
            }
        }
        for (id, items) in jobs {
            let job = JobHandle::new(id.clone(), items.len() as u64);
            let mut chunk = Chunk {
                items: Vec::with_capacity(items.len()),
                resends: 0,
            };
            for u in items {
                self.report.progress.unknown -= 1;
                chunk.items.push((u.index, u.update));
            }
            let result = track(
                &self.cfg.client,
                &job,
                &chunk.items,
                self.cfg.wait.clone(),
                self.cfg.stall_timeout,
                cancel.clone(),
            )
            .await;
            self.tracked(chunk, &job, result, false);
        }
    }
}

/// `outcome` with `note` added to its message (a success stays a success).
fn with_note(outcome: &Outcome, note: &str) -> Outcome {
    match outcome {
        Outcome::Success => Outcome::Success,
        Outcome::Error(m) => Outcome::Error(format!("{m}; {note}")),
        Outcome::Invalid(m) => Outcome::Invalid(format!("{m}; {note}")),
        Outcome::Unknown(m) => Outcome::Unknown(format!("{m}; {note}")),
    }
}

/// What reading an item's process back showed.
enum Look {
    /// The process holds every value the update asks for.
    Held,
    /// The process exists and does not hold them.
    NotHeld,
    /// No process has the identifier.
    Missing,
    /// A read-back cannot settle this item (why).
    Unsound(String),
    /// The read failed (why); it may be tried again.
    Unreadable(String),
    /// An earlier pending update of the same process goes first; look again next round.
    Later,
}

/// Pending items that update the same process. When one of them holds its values, the earlier
/// ones (in input order) that do not may have been overwritten by it, and sending them again
/// could undo it: they cannot be settled; the later ones may be sent again, after it as in the
/// input. When none holds, none was applied (the last one applied would show), so the earliest
/// goes first and the others wait for the next round.
fn settle_duplicates(pool: &[Unresolved], mut looks: Vec<Look>) -> Vec<Look> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, u) in pool.iter().enumerate() {
        if let Some(id) = u.update.identifier() {
            groups
                .entry(identity_key(id.key(), &id.value()))
                .or_default()
                .push(i);
        }
    }
    for members in groups.into_values().filter(|m| m.len() > 1) {
        if members
            .iter()
            .any(|&i| matches!(looks[i], Look::Unreadable(_)))
        {
            continue;
        }
        let last_held = members
            .iter()
            .copied()
            .filter(|&i| matches!(looks[i], Look::Held))
            .map(|i| pool[i].index)
            .max();
        if let Some(last_held) = last_held {
            // Later updates than the one that shows may be sent again: they come after it in
            // the input, as they would have. Earlier ones may have been overwritten by it.
            for &i in &members {
                if pool[i].index < last_held && matches!(looks[i], Look::NotHeld | Look::Missing) {
                    looks[i] = Look::Unsound(
                        "another update of the same process, whose outcome was also unknown, \
                         is there instead"
                            .into(),
                    );
                }
            }
            continue;
        }
        let first = members.iter().copied().min_by_key(|&i| pool[i].index);
        for &i in &members {
            if Some(i) != first && matches!(looks[i], Look::NotHeld | Look::Missing) {
                looks[i] = Look::Later;
            }
        }
    }
    looks
}

/// Reads back the processes of `pool`: by id one at a time (the documented fetch by id), by
/// primary key through the list endpoint, up to 100 values per query (`{key: [values]}`).
async fn read_back(
    client: &Client,
    procedure: &str,
    pool: &[Unresolved],
    concurrency: usize,
) -> Vec<Look> {
    let mut looks: Vec<Option<Look>> = pool.iter().map(|_| None).collect();
    let mut by_id = Vec::new();
    let mut by_key: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    for (i, u) in pool.iter().enumerate() {
        let Some(ident) = u.update.identifier() else {
            looks[i] = Some(Look::Unsound("the item has no single identifier".into()));
            continue;
        };
        match ident {
            Identifier::Id(id) => by_id.push((i, id)),
            Identifier::PrimaryKey { key, value } => {
                if u.update
                    .update()
                    .data
                    .get(&key)
                    .is_some_and(|v| !same_value(v, &value))
                {
                    looks[i] = Some(Look::Unsound(format!(
                        "the update changes {key}, so the process cannot be found by it"
                    )));
                    continue;
                }
                by_key.entry(key).or_default().push((i, value));
            }
        }
    }
    let fetched: Vec<(usize, Result<Process>)> = futures::stream::iter(by_id)
        .map(|(i, id)| async move { (i, client.get_process(procedure, id.as_str()).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (i, result) in fetched {
        looks[i] = Some(match result {
            Ok(p) => compare(&p, pool[i].update.update()),
            Err(e) if e.status() == Some(404) => missing(pool[i].update.update()),
            Err(e) => Look::Unreadable(e.to_string()),
        });
    }
    for (key, items) in by_key {
        for group in items.chunks(MAX_LIST_LIMIT as usize) {
            let values: Vec<Value> = group.iter().map(|(_, v)| v.clone()).collect();
            let query = Query::new().any_of(key.clone(), values);
            let found: Result<Vec<Process>> = client
                .list_processes(procedure, query, MAX_LIST_LIMIT)
                .try_collect()
                .await;
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    for (i, _) in group {
                        looks[*i] = Some(Look::Unreadable(e.to_string()));
                    }
                    continue;
                }
            };
            let mut by_value: HashMap<String, Vec<&Process>> = HashMap::new();
            for p in &found {
                if let Some(v) = p.data.get(&key) {
                    by_value.entry(value_text(v)).or_default().push(p);
                }
            }
            for (i, value) in group {
                let update = pool[*i].update.update();
                looks[*i] = Some(match by_value.get(&value_text(value)).map(Vec::as_slice) {
                    None | Some([]) => missing(update),
                    Some([p]) => compare(p, update),
                    Some(_) => Look::Unsound(format!("several processes have {key} = {value}")),
                });
            }
        }
    }
    looks
        .into_iter()
        .map(|l| l.unwrap_or_else(|| Look::Unreadable("not read".into())))
        .collect()
}

/// A process that was not found: a missing process for a plain update, but an update that
/// deletes or restores one may just not be listed.
fn missing(update: &Update) -> Look {
    if update.is_deleted.is_some() {
        Look::Unsound("the process was not found, which may mean it is deleted".into())
    } else {
        Look::Missing
    }
}

/// Whether `process` holds every value `update` asks for.
fn compare(process: &Process, update: &Update) -> Look {
    let data = update
        .data
        .iter()
        .all(|(k, v)| process.data.get(k).is_some_and(|have| same_value(have, v)));
    let held = data
        && update
            .state
            .as_ref()
            .is_none_or(|s| process.state.as_ref() == Some(s))
        && update
            .status
            .as_ref()
            .is_none_or(|s| process.status.as_ref() == Some(s))
        && update
            .assigned_to
            .as_ref()
            .is_none_or(|a| process.assigned_to.as_ref() == Some(a))
        && update
            .next_action_at
            .is_none_or(|t| process.next_action_at == Some(t))
        && update
            .is_deleted
            .is_none_or(|d| process.is_deleted.unwrap_or(false) == d);
    if held { Look::Held } else { Look::NotHeld }
}

/// JSON equality, with numbers compared by value (`1` and `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A primary-key value as text, so `"7"` and `7` find the same process.
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
