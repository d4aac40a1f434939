//! `bulk unicat delete|undelete|get`: selections of records, jobs followed through the sync
//! feed, bulk get as JSON lines.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use serde_json::{Value, json};
use unicat_api::{Children, Client, ErrorKind, Filter, JobHandle, RecordSelection, Search};

use crate::cli::{UnicatGet, UnicatMutation, UnicatSelectionArgs};
use crate::context::Ctx;
use crate::jobs::JobFile;
use crate::outcome::{Outcome, Status};

/// A bulk mutation of records.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Delete,
    Undelete,
}

/// A Unicat client from `--sim`, or from `UNICAT_API_KEY`, `UNICAT_PROJECT` and
/// `UNICAT_BASE_URL`.
pub(crate) async fn client(ctx: &mut Ctx) -> anyhow::Result<Client> {
    let poll = ctx.poll(Client::default_poll_policy());
    let mut builder = if ctx.sim() {
        let (sim, cfg) = crate::sim::unicat().await?;
        let url = sim.base_url();
        ctx.keep(sim);
        Client::builder()
            .project(cfg.project)
            .api_key(cfg.api_key.into())
            .base_url(url)
    } else {
        let s = &ctx.settings;
        let mut b = Client::builder()
            .project(s.require("UNICAT_PROJECT")?)
            .api_key(s.require_secret("UNICAT_API_KEY")?);
        if let Some(url) = s.value("UNICAT_BASE_URL")? {
            b = b.base_url(url);
        }
        b
    };
    if ctx.sim() || ctx.global.poll_ms.is_some() {
        builder = builder.feed_interval(std::time::Duration::from_millis(
            ctx.global.poll_ms.unwrap_or(20),
        ));
    }
    Ok(builder.poll_policy(poll).build()?)
}

/// The selection the flags describe.
fn selection(args: &UnicatSelectionArgs) -> anyhow::Result<RecordSelection> {
    let flags_given = !args.gids.is_empty() || args.children.is_some() || args.search.is_some();
    if let Some(path) = &args.selection_file {
        if flags_given {
            bail!("--selection-file cannot be combined with --gids, --children or --search");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a Unicat selection", path.display()));
    }
    if !flags_given {
        bail!("select records with --gids, --children, --search or --selection-file");
    }
    if !args.exclude.is_empty() && args.children.is_none() && args.search.is_none() {
        bail!("--exclude needs --children or --search");
    }
    let mut sel = RecordSelection::new();
    let gids: Vec<&str> = args
        .gids
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    if !gids.is_empty() {
        sel = sel.gids(gids);
    }
    if let Some(parent) = &args.children {
        sel = sel.children(Children::of(parent.as_str()).exclude(args.exclude.iter().cloned()));
    }
    if let Some(q) = &args.search {
        let mut search = Search::new().q(q.as_str());
        for f in &args.filter {
            let mut parts = f.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(field), Some(op), Some(value)) if !field.is_empty() && !op.is_empty() => {
                    search = search.filter(Filter::new(field, op, value));
                }
                (Some(field), Some(op), None) if !field.is_empty() && !op.is_empty() => {
                    search = search.filter(Filter::unary(field, op));
                }
                _ => bail!("--filter {f:?} must be FIELD:OP:VALUE (or FIELD:OP)"),
            }
        }
        if !args.exclude.is_empty() {
            search = search.exclude(args.exclude.iter().cloned());
        }
        sel = sel.search(search);
    }
    Ok(sel)
}

pub(crate) async fn mutate(ctx: &mut Ctx, op: Op, args: UnicatMutation) -> anyhow::Result<Outcome> {
    let sel = selection(&args.selection)?;
    let command = match op {
        Op::Delete => "unicat delete",
        Op::Undelete => "unicat undelete",
    };
    let client = client(ctx).await?;
    let job = match op {
        Op::Delete => client.records().delete(&sel).await?,
        Op::Undelete => client.records().undelete(&sel).await?,
    };
    if let Some(file) = &args.job.job_file {
        JobFile::Unicat { job: job.clone() }.save(file)?;
    }
    if args.job.no_wait {
        let file = args
            .job
            .job_file
            .as_deref()
            .unwrap_or(Path::new("JOB_FILE"));
        ctx.note(format!(
            "job {} submitted; finish it with `bulk jobs resume {}`",
            job.token(),
            file.display()
        ));
        return Ok(Outcome::new(
            Status::Ok,
            command,
            json!({ "job": job.token(), "submitted": true, "job_file": file }),
        ));
    }
    ctx.note(format!("job {} submitted", job.token()));
    finish(ctx, &client, &job, args.job.job_file.as_deref(), command).await
}

/// Waits for a job through the sync feed and removes its job file once the job has ended.
///
/// Exit codes: 0 when the job is `done` with nothing reported in its `info`; 2 when its `info`
/// lists items that were not applied while others were; 1 (an error) when nothing was applied
/// (every item failed, the job was rejected, or its `info` reports an error).
pub(crate) async fn finish(
    ctx: &Ctx,
    client: &Client,
    job: &JobHandle,
    job_file: Option<&Path>,
    command: &str,
) -> anyhow::Result<Outcome> {
    let bar = ctx.bar(0, "items");
    bar.set_message(format!("job {}: waiting", job.token()));
    let wait = client.wait(job).on_progress({
        let bar = bar.clone();
        move |e| {
            let p = &e.progress;
            if let Some(total) = p.total {
                bar.set_length(total);
                bar.set_position(total - p.remaining.unwrap_or(total).min(total));
            }
            bar.set_message(p.status.clone().unwrap_or_default());
        }
    });
    let result = wait.await;
    bar.finish_and_clear();
    let (status, total, failed) = match result {
        Ok(report) => (report.status.as_str().to_owned(), report.total, Vec::new()),
        // The job ended with errors: partial when its info lists the items that were not
        // applied and others were; otherwise nothing is known to be applied.
        Err(e) if e.kind() == ErrorKind::JobFailed => {
            let details = e.details().cloned().unwrap_or_default();
            let failed = details["failed"].as_array().cloned().unwrap_or_default();
            let total = details["total"].as_u64();
            let partial = details["status"] == "done"
                && !failed.is_empty()
                && total.is_some_and(|t| t > failed.len() as u64);
            if let Some(file) = job_file {
                // The job has ended: resuming it would only report the same.
                let _ = std::fs::remove_file(file);
            }
            if !partial {
                return Err(anyhow::Error::new(e).context(format!("job {}", job.token())));
            }
            ("done".to_owned(), total, failed)
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("job {}", job.token())));
        }
    };
    if let Some(file) = job_file {
        let _ = std::fs::remove_file(file);
    }
    let total = total.unwrap_or(0);
    let outcome = if failed.is_empty() {
        Status::Ok
    } else {
        Status::Partial
    };
    let listed = failed
        .iter()
        .take(10)
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect::<Vec<_>>()
        .join(", ");
    ctx.note(format!(
        "job {} {status}: {} applied, {} not applied{}",
        job.token(),
        total.saturating_sub(failed.len() as u64),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else if failed.len() > 10 {
            format!(" ({listed}, ...)")
        } else {
            format!(" ({listed})")
        }
    ));
    Ok(Outcome::new(
        outcome,
        command,
        json!({
            "job": job.token(),
            "job_status": status,
            "total": total,
            "failed": failed,
        }),
    ))
}

pub(crate) async fn get(ctx: &mut Ctx, args: UnicatGet) -> anyhow::Result<Outcome> {
    let sel = selection(&args.selection)?;
    if args.page_size == 0 || args.page_size > unicat_api::MAX_PAGE_SIZE {
        bail!(
            "--page-size must be from 1 to {}",
            unicat_api::MAX_PAGE_SIZE
        );
    }
    if ctx.global.json && args.out.is_none() {
        bail!("--json needs --out: without it the records go to stdout");
    }
    let temp = match &args.out {
        Some(out) => {
            let name = out
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} is not a file name", out.display()))?;
            Some(out.with_file_name(format!(".{name}.partial")))
        }
        None => None,
    };
    let client = client(ctx).await?;
    let mut records = client
        .records()
        .get(&sel)
        .page_size(args.page_size)
        .stream::<Value>();
    let bar = ctx.spinner("records");
    let mut out: Box<dyn Write> = match &temp {
        Some(temp) => Box::new(BufWriter::new(
            std::fs::File::create(temp)
                .with_context(|| format!("cannot create {}", temp.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut n = 0u64;
    let result: anyhow::Result<()> = async {
        while let Some(record) = records.try_next().await? {
            let line = json!({ "gid": record.gid, "data": record.data });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
            n += 1;
            bar.set_position(n);
            if let Some(size) = records.size() {
                bar.set_message(format!("of {size}"));
            }
        }
        out.flush()?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    drop(out);
    if let Err(e) = result {
        if let Some(temp) = &temp {
            let _ = std::fs::remove_file(temp);
        }
        return Err(e.context(format!("the bulk get stopped after {n} records")));
    }
    if let (Some(temp), Some(out)) = (&temp, &args.out) {
        std::fs::rename(temp, out)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), out.display()))?;
    }
    ctx.note(format!(
        "{n} records{}",
        args.out
            .as_ref()
            .map(|o| format!(" written to {}", o.display()))
            .unwrap_or_default()
    ));
    Ok(Outcome::new(
        Status::Ok,
        "unicat get",
        json!({ "records": n, "out": args.out }),
    ))
}
