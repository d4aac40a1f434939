//! Background jobs: queueing one for a bulk operation (with the switches' foreign jobs and
//! noise), and moving every job forward over (Tokio) time.

use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::unicat::apply::apply;
use crate::unicat::feed::{publish, publish_job};
use crate::unicat::routes::{fail, ok};
use crate::unicat::selection::Slot;
use crate::unicat::{Inner, JobNames, SimJob, St};

/// Queues the job of bulk operation `op` over the evaluated selection and publishes it.
pub(super) fn queue_job(
    st: &St,
    inner: &mut Inner,
    area: &str,
    op: &str,
    body: &Map<String, Value>,
    slots: Vec<Slot>,
) -> Response {
    let param = body
        .get("parent")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if matches!(op, "link" | "shallow_copy" | "move") && param.is_none() {
        return fail(422, 1001, "parent is required", json!({"field": "parent"}));
    }
    let targets: Vec<String> = slots.into_iter().flatten().collect();
    let token = inner.uuid();
    let mut reject = inner.reject_next.take();
    if reject.is_none() && targets.len() > st.cfg.max_job_items {
        reject = Some(format!(
            "the selection holds {} items; at most {} are allowed in one job",
            targets.len(),
            st.cfg.max_job_items
        ));
    }
    let hidden = std::mem::take(&mut inner.hide_next);
    let name = match st.cfg.job_names {
        JobNames::Documented => format!("bulk_{op}_{area}"),
        JobNames::Varied => format!("{area}.bulk.{op}"),
    };
    let foreign = |inner: &mut Inner, n: usize| SimJob {
        token: inner.uuid(),
        name: name.clone(),
        area: area.to_owned(),
        op: op.to_owned(),
        targets: (0..n).map(|i| format!("r-foreign-{i}")).collect(),
        param: None,
        created: Instant::now(),
        processed: 0,
        failed: Vec::new(),
        status: "queued",
        reject: None,
        hidden: false,
        foreign: true,
        published_remaining: None,
    };
    // Other clients' jobs of the same name, half before ours and half after.
    let n = targets.len();
    for _ in 0..st.cfg.foreign_jobs / 2 {
        let job = foreign(inner, n);
        inner.jobs.push(job);
        let idx = inner.jobs.len() - 1;
        publish_job(st, inner, idx, "INSERT");
    }
    inner.jobs.push(SimJob {
        token: token.clone(),
        name: name.clone(),
        area: area.to_owned(),
        op: op.to_owned(),
        targets,
        param,
        created: Instant::now(),
        processed: 0,
        failed: Vec::new(),
        status: "queued",
        reject,
        hidden,
        foreign: false,
        published_remaining: None,
    });
    st.ctx.counters.incr("jobs.created");
    let idx = inner.jobs.len() - 1;
    publish_job(st, inner, idx, "INSERT");
    for _ in st.cfg.foreign_jobs / 2..st.cfg.foreign_jobs {
        let job = foreign(inner, n);
        inner.jobs.push(job);
        let idx = inner.jobs.len() - 1;
        publish_job(st, inner, idx, "INSERT");
    }
    for n in 0..st.cfg.noise_per_job {
        // Another user's activity: `cc.users`, a data type the SDK keeps (api.py
        // `handle_sync_data` indexes its stores by `data_type`).
        let item = json!({"type": "cc", "action": "UPDATE", "data_type": "cc.users",
                          "data_key": format!("u-noise-{n}"), "data": {}});
        publish(st, inner, item);
    }
    ok(json!({ "job.token": token }), json!({}))
}

/// Moves every job forward to the present.
pub(super) fn tick(st: &St, inner: &mut Inner) {
    let now = Instant::now();
    for idx in 0..inner.jobs.len() {
        let job = &inner.jobs[idx];
        if matches!(job.status, "done" | "rejected") {
            continue;
        }
        let elapsed = now.duration_since(job.created);
        if elapsed < st.cfg.queue_delay {
            continue;
        }
        if job.reject.is_some() {
            inner.jobs[idx].status = "rejected";
            st.ctx.counters.incr("jobs.rejected");
            publish_job(st, inner, idx, "UPDATE");
            continue;
        }
        let total = job.targets.len();
        let due = if st.cfg.item_time.is_zero() {
            total
        } else {
            let n = (elapsed - st.cfg.queue_delay).as_nanos() / st.cfg.item_time.as_nanos();
            (n as usize).min(total)
        };
        while inner.jobs[idx].processed < due {
            let job = &inner.jobs[idx];
            let (area, op, gid, param) = (
                job.area.clone(),
                job.op.clone(),
                job.targets[job.processed].clone(),
                job.param.clone(),
            );
            if !inner.jobs[idx].foreign && !apply(inner, &area, &op, &gid, param.as_deref()) {
                inner.jobs[idx].failed.push(gid);
            }
            inner.jobs[idx].processed += 1;
        }
        let job = &mut inner.jobs[idx];
        if job.processed == total {
            job.status = "done";
            if !job.foreign {
                st.ctx.counters.incr("jobs.done");
            }
            publish_job(st, inner, idx, "UPDATE");
        } else if job.published_remaining != Some(total - job.processed) {
            job.status = "processing";
            job.published_remaining = Some(total - job.processed);
            publish_job(st, inner, idx, "UPDATE");
        }
    }
}
