//! The runner: reads the input in chunks, sends them with bounded concurrency, and tracks each
//! chunk's job to its end.

use std::collections::VecDeque;

use bulk_common::CancellationToken;
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;

use crate::bulk::entries::track;
use crate::bulk::{
    AmbiguousPolicy, BulkProgress, BulkReport, BulkUpdate, DEFAULT_CHUNK_SIZE, ItemResult, Outcome,
};
use crate::envelope::is_size_error;
use crate::job::{JobHandle, JobId};
use crate::model::ProcessUpdate;
use crate::{Error, ErrorKind, Result};

pub(super) struct Chunk {
    pub(super) items: Vec<(u64, ProcessUpdate)>,
    pub(super) resends: u32,
}

enum Done {
    Submitted(Chunk, Result<JobHandle>),
    Tracked(Chunk, JobHandle, Result<Vec<Option<Outcome>>>),
}

/// An item whose outcome is not known yet, waiting to be read back.
pub(super) struct Unresolved {
    pub(super) index: u64,
    pub(super) update: ProcessUpdate,
    pub(super) job: Option<JobId>,
    /// Whether the item may be sent again when the read-back shows that its values are not
    /// there: true when no job was created for it as far as we know, or its job has ended.
    /// False while its job may still apply it (stalled, past the deadline, not followable).
    pub(super) resend: bool,
    /// How the item ends when nothing better is learnt.
    pub(super) fallback: Outcome,
    /// Not yet read back since it became unresolved (a fresh ambiguous request may still be
    /// applied by a job we never heard of, so the read-back waits for it to settle).
    pub(super) fresh: bool,
    /// Its job could not be followed because looking at it failed: look again before reading
    /// the item back.
    pub(super) retrack: bool,
}

pub(super) struct Runner {
    pub(super) cfg: BulkUpdate,
    pub(super) report: BulkReport,
    pub(super) chunk_size: usize,
    pub(super) unresolved: Vec<Unresolved>,
}

impl Runner {
    pub(super) fn new(cfg: BulkUpdate) -> Self {
        let chunk_size = cfg.chunk_size;
        let report = BulkReport {
            successes: cfg.keep_successes.then(Vec::new),
            progress: BulkProgress {
                chunk_size,
                ..BulkProgress::default()
            },
            ..BulkReport::default()
        };
        Runner {
            cfg,
            report,
            chunk_size,
            unresolved: Vec::new(),
        }
    }

    pub(super) async fn run<S>(mut self, updates: S) -> Result<BulkReport>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        let cancel = self.cfg.cancel.clone().unwrap_or_default();
        self.drive(updates, VecDeque::new(), &cancel).await?;
        if self.cfg.reconcile.is_some() && !cancel.is_cancelled() {
            self.reconcile(&cancel).await?;
        }
        for u in std::mem::take(&mut self.unresolved) {
            let outcome = u.fallback.clone();
            self.settle_item(u, outcome);
        }
        let mut report = self.report;
        report.failures.sort_by_key(|r| r.index);
        if let Some(s) = report.successes.as_mut() {
            s.sort_by_key(|(i, _)| *i);
        }
        Ok(report)
    }

    /// Sends the input (and the chunks already queued) and tracks every job to its end.
    pub(super) async fn drive<S>(
        &mut self,
        updates: S,
        mut requeue: VecDeque<Chunk>,
        cancel: &CancellationToken,
    ) -> Result<()>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        // Fused: an input that has ended is never polled again (some streams panic if it is).
        let mut input = std::pin::pin!(updates.fuse());
        let mut input_done = false;
        // One chunk read ahead while requests are in flight, so a free slot never waits for
        // the input (at most one chunk more in memory).
        let mut ready: Option<Chunk> = None;
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let (mut sending, mut tracking) = (0usize, 0usize);
        let limit = self.cfg.pending_limit();
        loop {
            while sending < self.concurrency() && sending + tracking < limit {
                let stop = self.report.stopped.is_some() || cancel.is_cancelled();
                let chunk = match requeue.pop_front() {
                    Some(c) if !stop => c,
                    Some(c) => {
                        let msg = "not sent: the run was stopped early";
                        self.finish_chunk(c, None, |_| Outcome::Error(msg.into()));
                        continue;
                    }
                    None if stop => {
                        if let Some(c) = ready.take() {
                            let msg = "not sent: the run was stopped early";
                            self.finish_chunk(c, None, |_| Outcome::Error(msg.into()));
                        }
                        break;
                    }
                    None => match ready.take() {
                        Some(c) => c,
                        None if input_done => break,
                        None => match self.next_chunk(&mut input).await {
                            Some(c) => c,
                            None => {
                                input_done = true;
                                break;
                            }
                        },
                    },
                };
                sending += 1;
                self.spawn_submit(&mut tasks, chunk);
            }
            // A task that already finished is handled (and its slot refilled) before the next
            // chunk is read ahead, so reading never delays a free slot.
            let mut finished = tasks.try_join_next();
            if finished.is_none()
                && ready.is_none()
                && !input_done
                && self.report.stopped.is_none()
                && !cancel.is_cancelled()
            {
                ready = self.next_chunk(&mut input).await;
                input_done = ready.is_none();
            }
            if finished.is_none() {
                finished = tasks.join_next().await;
            }
            let Some(joined) = finished else {
                if requeue.is_empty() && ready.is_none() {
                    break;
                }
                continue;
            };
            let done = joined.map_err(|e| {
                Error::new(
                    ErrorKind::Cancelled,
                    format!("a bulk task ended abnormally: {e}"),
                )
            })?;
            match done {
                Done::Submitted(chunk, result) => {
                    sending -= 1;
                    match result {
                        Ok(job) => {
                            tracking += 1;
                            self.report.progress.sent += chunk.items.len() as u64;
                            self.report.progress.jobs += 1;
                            self.report.jobs.push(job.id().clone());
                            self.emit_progress();
                            self.spawn_track(&mut tasks, chunk, job, cancel.clone());
                        }
                        Err(e) => self.submit_failed(chunk, e, &mut requeue),
                    }
                }
                Done::Tracked(chunk, job, result) => {
                    tracking -= 1;
                    self.tracked(chunk, &job, result, true);
                    self.emit_progress();
                }
            }
        }
        Ok(())
    }

    /// Records a tracked chunk: the entries the job attributed, and the rest as unresolved.
    pub(super) fn tracked(
        &mut self,
        chunk: Chunk,
        job: &JobHandle,
        result: Result<Vec<Option<Outcome>>>,
        may_retrack: bool,
    ) {
        match result {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for (index, update) in chunk.items {
                    match outcomes.next().flatten() {
                        Some(outcome) => self.record_item(index, update, Some(job.id()), outcome),
                        // The job has ended but did not say (in a way we can trust) how this
                        // item went: read it back, and send it again if it is not there.
                        None => self.unresolve(Unresolved {
                            index,
                            update,
                            job: Some(job.id().clone()),
                            resend: true,
                            fallback: Outcome::Unknown(format!(
                                "job {} ended, but none of its entries could be matched to \
                                 this item",
                                job.id()
                            )),
                            fresh: true,
                            retrack: false,
                        }),
                    }
                }
            }
            Err(e) => {
                // The job may still be running (stalled, past the deadline, not followable):
                // read its items back, but never send them again while it may apply them.
                let retrack = may_retrack
                    && !matches!(
                        e.kind(),
                        ErrorKind::JobFailed | ErrorKind::DeadlineExceeded | ErrorKind::Cancelled
                    );
                let fallback = if e.kind() == ErrorKind::JobFailed {
                    if self.report.stopped.is_none() {
                        self.report.stopped = Some(e.clone());
                    }
                    Outcome::Error(format!("{e}"))
                } else {
                    Outcome::Unknown(format!(
                        "job {} could not be followed to its end ({e}); it may still apply this \
                         item",
                        job.id()
                    ))
                };
                for (index, update) in chunk.items {
                    self.unresolve(Unresolved {
                        index,
                        update,
                        job: Some(job.id().clone()),
                        resend: false,
                        fallback: fallback.clone(),
                        fresh: true,
                        retrack,
                    });
                }
            }
        }
    }

    pub(super) fn unresolve(&mut self, u: Unresolved) {
        self.report.progress.unknown += 1;
        self.unresolved.push(u);
    }

    /// Records the final outcome of an item that was unresolved.
    pub(super) fn settle_item(&mut self, u: Unresolved, outcome: Outcome) {
        self.report.progress.unknown -= 1;
        self.record_item(u.index, u.update, u.job.as_ref(), outcome);
    }

    pub(super) fn record_item(
        &mut self,
        index: u64,
        update: ProcessUpdate,
        job: Option<&JobId>,
        outcome: Outcome,
    ) {
        let keep = !matches!(outcome, Outcome::Success);
        self.record(ItemResult {
            index,
            identifier: update.identifier(),
            outcome,
            job: job.cloned(),
            update: keep.then_some(update),
        });
    }

    /// Chunks to keep being sent: the configured concurrency, lowered to what the client's
    /// adaptive rate can use while the vendor throttles (see `bulk_common::rate`).
    fn concurrency(&self) -> usize {
        match self.cfg.client.http().options().get_rate_control() {
            Some(rate) => rate.concurrency(self.cfg.concurrency),
            None => self.cfg.concurrency,
        }
    }

    /// Pulls the next chunk of valid items, reporting invalid ones on the way.
    async fn next_chunk<S>(&mut self, input: &mut std::pin::Pin<&mut S>) -> Option<Chunk>
    where
        S: Stream<Item = ProcessUpdate> + Send,
    {
        let mut items = Vec::with_capacity(self.chunk_size.min(DEFAULT_CHUNK_SIZE));
        while items.len() < self.chunk_size {
            let Some(update) = input.next().await else {
                break;
            };
            let index = self.report.total;
            self.report.total += 1;
            self.report.progress.read += 1;
            match update.validate() {
                Ok(()) => items.push((index, update)),
                Err(msg) => self.record(ItemResult {
                    index,
                    identifier: update.identifier(),
                    outcome: Outcome::Invalid(format!("{msg} (not sent)")),
                    job: None,
                    update: Some(update),
                }),
            }
        }
        (!items.is_empty()).then_some(Chunk { items, resends: 0 })
    }

    fn spawn_submit(&self, tasks: &mut JoinSet<Done>, chunk: Chunk) {
        let client = self.cfg.client.clone();
        let procedure = self.cfg.procedure.clone();
        tasks.spawn(async move {
            let result = client.submit_chunk(&procedure, &chunk.items).await;
            Done::Submitted(chunk, result)
        });
    }

    fn spawn_track(
        &self,
        tasks: &mut JoinSet<Done>,
        chunk: Chunk,
        job: JobHandle,
        cancel: CancellationToken,
    ) {
        let client = self.cfg.client.clone();
        let wait = self.cfg.wait.clone();
        let stall = self.cfg.stall_timeout;
        tasks.spawn(async move {
            let result = track(&client, &job, &chunk.items, wait, stall, cancel).await;
            Done::Tracked(chunk, job, result)
        });
    }

    fn submit_failed(&mut self, mut chunk: Chunk, e: Error, requeue: &mut VecDeque<Chunk>) {
        let n = chunk.items.len();
        if is_size_error(&e) && n > 1 {
            let half = n.div_ceil(2);
            tracing::info!(
                items = n,
                half,
                "the server refused the chunk as too large; halving it"
            );
            self.chunk_size = self.chunk_size.min(half);
            self.report.progress.chunk_size = self.chunk_size;
            let second = chunk.items.split_off(half);
            requeue.push_front(Chunk {
                items: second,
                resends: chunk.resends,
            });
            requeue.push_front(chunk);
            return;
        }
        let ambiguous = e.kind() == ErrorKind::AmbiguousOutcome || e.kind() == ErrorKind::Decode;
        if ambiguous {
            if self.cfg.ambiguous == AmbiguousPolicy::Resend && chunk.resends == 0 {
                tracing::warn!(items = n, error = %e, "chunk outcome unknown; resending it once as configured");
                chunk.resends += 1;
                requeue.push_back(chunk);
                return;
            }
            let msg =
                format!("the request carrying this item may or may not have been applied ({e})");
            for (index, update) in chunk.items {
                self.unresolve(Unresolved {
                    index,
                    update,
                    job: None,
                    resend: true,
                    fallback: Outcome::Unknown(msg.clone()),
                    fresh: true,
                    retrack: false,
                });
            }
        } else {
            // A refusal of the whole request, not of its items: the credentials, the
            // configuration, or the procedure itself (404 on the bulk path, whose only
            // variable part is the procedure). Every later request would be refused alike.
            if (matches!(e.kind(), ErrorKind::Auth | ErrorKind::Config) || e.status() == Some(404))
                && self.report.stopped.is_none()
            {
                self.report.stopped = Some(e.clone());
            }
            let msg = format!("the request carrying this item was refused: {e}");
            self.finish_chunk(chunk, None, |_| Outcome::Error(msg.clone()));
        }
        self.emit_progress();
    }

    fn finish_chunk(
        &mut self,
        chunk: Chunk,
        job: Option<&JobId>,
        mut outcome: impl FnMut(u64) -> Outcome,
    ) {
        for (index, update) in chunk.items {
            let outcome = outcome(index);
            self.record_item(index, update, job, outcome);
        }
    }

    fn record(&mut self, result: ItemResult) {
        if let Some(f) = &self.cfg.on_item {
            f(&result);
        }
        let p = &mut self.report.progress;
        p.finished += 1;
        match result.outcome {
            Outcome::Success => {
                p.succeeded += 1;
                if let Some(s) = self.report.successes.as_mut() {
                    s.push((result.index, result.identifier));
                }
            }
            Outcome::Unknown(_) => {
                p.unknown += 1;
                self.report.failures.push(result);
            }
            Outcome::Error(_) | Outcome::Invalid(_) => {
                p.failed += 1;
                self.report.failures.push(result);
            }
        }
    }

    pub(super) fn emit_progress(&self) {
        if let Some(f) = &self.cfg.on_progress {
            f(&self.report.progress);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_413_is_a_size_error() {
        let words = Error::new(ErrorKind::InvalidInput, "refused")
            .with_status(400)
            .with_vendor(
                Some("PAYLOAD_TOO_LARGE".into()),
                Some("payload too large".into()),
            );
        assert!(!is_size_error(&words));
        assert!(is_size_error(
            &Error::new(ErrorKind::Http, "x").with_status(413)
        ));
    }
}
