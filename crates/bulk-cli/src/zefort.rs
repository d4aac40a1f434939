//! `bulk zefort update` and `bulk zefort tag`: a bulk task submitted, waited for and
//! acknowledged.
//!
//! Exit status: 0 when the task finished `done`; 1 for anything else (a refused request, a task
//! that failed, an outcome the client could not resolve). A Zefort task has no per-item results,
//! so a partial outcome (2) cannot be told and is never reported.

use std::path::Path;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use serde_json::{Value, json};
use zefort_api::{
    BulkUpdate, Client, ContractQuery, ContractStatus, Date, Host, JobHandle, TagId, TagOutcome,
    Target, Task,
};

use crate::cli::{JobArgs, ZefortTag, ZefortTarget, ZefortUpdate};
use crate::context::Ctx;
use crate::jobs::JobFile;
use crate::outcome::{Outcome, Status};

/// A Zefort client from `--sim`, or from `ZEFORT_API_KEY` and `ZEFORT_BASE_URL`.
pub(crate) async fn client(ctx: &mut Ctx) -> anyhow::Result<Client> {
    let builder = if ctx.sim() {
        let (sim, cfg) = crate::sim::zefort().await?;
        let url = sim.base_url();
        ctx.keep(sim);
        Client::builder().api_key(cfg.api_key.into()).base_url(&url)
    } else {
        let mut b = Client::builder().api_key(ctx.settings.require_secret("ZEFORT_API_KEY")?);
        if let Some(url) = ctx.settings.value("ZEFORT_BASE_URL")? {
            let host: Host = url
                .parse()
                .map_err(|e: zefort_api::Error| e.context("ZEFORT_BASE_URL"))?;
            b = b.host(host);
        }
        b
    };
    Ok(builder.build()?)
}

fn target(t: ZefortTarget) -> Target {
    match (t.tag, t.contracts, t.search) {
        (Some(tag), _, _) => Target::search(ContractQuery::new().q_tags(tag)),
        (_, Some(ids), _) => Target::contracts(ids.into_iter().map(|i| i.trim().to_owned())),
        (_, _, Some(q)) => Target::search(ContractQuery::new().q(q)),
        // clap requires one of the three.
        (None, None, None) => Target::contracts(Vec::<String>::new()),
    }
}

fn status(text: &str) -> anyhow::Result<ContractStatus> {
    match ContractStatus::from(text) {
        ContractStatus::Other(s) => bail!(
            "unknown contract status {s:?} (expected archived, done, error, limited, processing, \
             queued or review)"
        ),
        known => Ok(known),
    }
}

fn date(flag: &str, text: &str) -> anyhow::Result<Date> {
    text.parse::<Date>()
        .with_context(|| format!("{flag} {text:?} is not a date (YYYY-MM-DD)"))
}

/// `NAME=VALUE`: a JSON number, boolean or null as such, anything else as text.
fn assignment(text: &str) -> anyhow::Result<(String, Value)> {
    let Some((name, value)) = text.split_once('=') else {
        bail!("--set {text:?} must be NAME=VALUE");
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("--set {text:?} has no attribute name");
    }
    let value = match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(value.to_owned()),
    };
    Ok((name.to_owned(), value))
}

pub(crate) async fn update(ctx: &mut Ctx, args: ZefortUpdate) -> anyhow::Result<Outcome> {
    let mut update = BulkUpdate::new(target(args.target));
    for set in &args.set {
        let (name, value) = assignment(set)?;
        update = match (name.as_str(), value) {
            ("end_date", Value::String(d)) => update.end_date(date("--set end_date", &d)?),
            (_, value) => update.attribute(name, value),
        };
    }
    if let Some(d) = &args.end_date {
        update = update.end_date(date("--end-date", d)?);
    }
    if let Some(d) = &args.start_date {
        update.attributes.start_date = Some(date("--start-date", d)?);
    }
    if let Some(s) = &args.status {
        update = update.status(status(s)?);
    }
    update.validate()?;
    let client = client(ctx).await?;
    let task = client.bulk_update(&update).await.map_err(|e| {
        if e.is_ambiguous() {
            // Say what to do next: the client could not settle it from the task list.
            anyhow::Error::new(e).context(
                "the bulk update may or may not have been applied; check the tasks in Zefort \
                 (the web UI's task list) before running it again",
            )
        } else {
            e.into()
        }
    })?;
    submitted(
        ctx,
        &client,
        &task,
        !args.no_acknowledge,
        &args.job,
        "zefort update",
    )
    .await
}

pub(crate) async fn tag(ctx: &mut Ctx, args: ZefortTag) -> anyhow::Result<Outcome> {
    let target = match (args.contracts, args.search) {
        (Some(ids), _) => Target::contracts(ids.into_iter().map(|i| i.trim().to_owned())),
        (None, Some(q)) => Target::search(ContractQuery::new().q(q)),
        (None, None) => bail!("give --contracts or --search"),
    };
    let client = client(ctx).await?;
    let tag = resolve_tag(&client, &args.tag, args.create).await?;
    match client.tag_contracts(&tag, &target).await? {
        TagOutcome::Task(task) => {
            submitted(ctx, &client, &task, true, &args.job, "zefort tag").await
        }
        TagOutcome::Other(reply) => {
            ctx.note(format!("tag {} attached", tag.as_str()));
            Ok(Outcome::new(
                Status::Ok,
                "zefort tag",
                json!({ "tag": tag.as_str(), "reply": reply }),
            ))
        }
        // `TagOutcome` is non-exhaustive; a future kind of reply is reported, not guessed at.
        _ => bail!("the tagging request got a reply this version of bulk does not understand"),
    }
}

/// A tag id (`tag_...`) as given, or the id of the tag with this name.
async fn resolve_tag(client: &Client, tag: &str, create: bool) -> anyhow::Result<TagId> {
    if tag.starts_with("tag_") {
        return Ok(TagId::new(tag));
    }
    let mut tags = Box::pin(client.tags());
    while let Some(t) = tags.try_next().await? {
        if t.tag_name.eq_ignore_ascii_case(tag) {
            return Ok(t.id);
        }
    }
    if create {
        return Ok(client.create_tag(tag, true).await?.id);
    }
    bail!("there is no tag named {tag:?} (give --create to create it)")
}

/// After a task was submitted: save the job file, and wait unless `--no-wait`.
async fn submitted(
    ctx: &Ctx,
    client: &Client,
    task: &Task,
    acknowledge: bool,
    job: &JobArgs,
    command: &str,
) -> anyhow::Result<Outcome> {
    let handle = JobHandle::from(task);
    if let Some(file) = &job.job_file {
        JobFile::Zefort {
            task: handle.clone(),
            acknowledge,
        }
        .save(file)?;
    }
    if job.no_wait {
        let file = job.job_file.as_deref().unwrap_or(Path::new("JOB_FILE"));
        ctx.note(format!(
            "task {} submitted; finish it with `bulk jobs resume {}`",
            task.id,
            file.display()
        ));
        return Ok(Outcome::new(
            Status::Ok,
            command,
            json!({ "task": task.id, "submitted": true, "job_file": file }),
        ));
    }
    ctx.note(format!("task {} submitted", task.id));
    finish(
        ctx,
        client,
        &handle,
        acknowledge,
        job.job_file.as_deref(),
        command,
    )
    .await
}

/// Waits for a task (acknowledging it when asked) and removes its job file.
pub(crate) async fn finish(
    ctx: &Ctx,
    client: &Client,
    handle: &JobHandle,
    acknowledge: bool,
    job_file: Option<&Path>,
    command: &str,
) -> anyhow::Result<Outcome> {
    let bar = ctx.spinner("looks");
    let wait = client
        .watch(handle)
        .acknowledge(acknowledge)
        .wait()
        .policy(ctx.poll(Client::default_poll_policy()))
        .on_progress({
            let bar = bar.clone();
            move |e| {
                bar.set_position(u64::from(e.polls));
                bar.set_message(format!(
                    "task {}: {}",
                    e.job,
                    e.progress.status.as_deref().unwrap_or("pending")
                ));
            }
        });
    let result = wait.await;
    bar.finish_and_clear();
    let task = result.with_context(|| format!("task {}", handle.task_id()))?;
    if let Some(file) = job_file {
        let _ = std::fs::remove_file(file);
    }
    ctx.note(format!(
        "task {} finished: {}{}",
        task.id,
        task.backend_status,
        if task.frontend_status == zefort_api::FrontendStatus::Done {
            ", acknowledged"
        } else {
            ""
        }
    ));
    Ok(Outcome::new(
        Status::Ok,
        command,
        json!({
            "task": task.id,
            "backend_status": task.backend_status,
            "frontend_status": task.frontend_status,
            "info": task.backend_status_info,
        }),
    ))
}
