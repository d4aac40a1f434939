//! `bulk chakra update`: process updates from a CSV or JSONL file, checked whole before
//! anything is sent, with every item not applied written out to fix and resend.
//!
//! Exit codes: 0 when every item was applied; 2 when some were applied and some not; 1 when
//! nothing was applied (a refused file, a refused token, an unknown procedure, a job the
//! vendor failed outright), with that one error shown once rather than once per item.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chakra_api::{BulkProgress, BulkReport, Client, ProcessUpdate, TableLayout};
use serde_json::{Value, json};

use crate::cli::{ChakraUpdate, Format};
use crate::context::Ctx;
use crate::outcome::{Outcome, Status};

/// A ChakraHQ client from `--sim`, or from `CHAKRA_TOKEN` and `CHAKRA_BASE_URL`.
async fn client(ctx: &mut Ctx) -> anyhow::Result<Client> {
    let builder = if ctx.sim() {
        let sim = crate::sim::chakra().await?;
        let url = sim.base_url();
        ctx.keep(sim);
        Client::builder()
            .token(crate::sim::CHAKRA_TOKEN.to_owned().into())
            .base_url(url)
    } else {
        let mut b = Client::builder().token(ctx.settings.require_secret("CHAKRA_TOKEN")?);
        if let Some(url) = ctx.settings.value("CHAKRA_BASE_URL")? {
            b = b.base_url(url);
        }
        b
    };
    Ok(builder.build()?)
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// The CSV header's layout: `id`, or the primary key given with `--key`.
fn layout(header: &[String], key: Option<&str>) -> chakra_api::Result<TableLayout> {
    match key {
        Some(key) => TableLayout::with_primary_key(header, key),
        None => TableLayout::new(header),
    }
}

/// Checks the whole file (readable, well-formed rows, known columns) and counts its items,
/// so that a bad file stops the command before anything is sent.
fn check(path: &Path, format: Format, key: Option<&str>) -> anyhow::Result<u64> {
    let file = open(path)?;
    let mut n = 0;
    match format {
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(BufReader::new(file));
            let header: Vec<String> = reader
                .headers()
                .with_context(|| format!("{}: cannot read the header row", path.display()))?
                .iter()
                .map(str::to_owned)
                .collect();
            layout(&header, key).with_context(|| format!("{}", path.display()))?;
            let mut record = csv::StringRecord::new();
            while reader
                .read_record(&mut record)
                .with_context(|| format!("{}: malformed row", path.display()))?
            {
                n += 1;
            }
        }
        Format::Jsonl => {
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                serde_json::from_str::<Value>(&line)
                    .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))?;
                n += 1;
            }
        }
    }
    if n == 0 {
        bail!("{} holds no updates", path.display());
    }
    Ok(n)
}

/// The file's items, read lazily (the file was checked first).
fn items(
    path: &Path,
    format: Format,
    key: Option<&str>,
) -> anyhow::Result<Box<dyn Iterator<Item = ProcessUpdate> + Send>> {
    let file = open(path)?;
    Ok(match format {
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(BufReader::new(file));
            let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
            let layout = layout(&header, key)?;
            Box::new(reader.into_records().map(move |record| match record {
                Ok(r) => layout.update(&r.iter().collect::<Vec<_>>()),
                Err(e) => ProcessUpdate::from_wire(Value::String(format!("bad CSV row: {e}"))),
            }))
        }
        Format::Jsonl => Box::new(
            BufReader::new(file)
                .lines()
                .filter_map(|line| {
                    let line = match line {
                        Ok(l) if l.trim().is_empty() => return None,
                        Ok(l) => l,
                        Err(e) => return Some(Value::String(format!("unreadable line: {e}"))),
                    };
                    Some(
                        serde_json::from_str::<Value>(&line)
                            .unwrap_or_else(|e| Value::String(format!("not JSON ({e})"))),
                    )
                })
                .map(ProcessUpdate::from_wire),
        ),
    })
}

/// `failed.jsonl` → `failed.unknown.jsonl`.
fn unknown_path(failed: &Path) -> PathBuf {
    let stem = failed
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("failed");
    let ext = failed
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or("jsonl");
    failed.with_file_name(format!("{stem}.unknown.{ext}"))
}

fn write_jsonl(path: &Path, items: &[ProcessUpdate]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for item in items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes the input items whose index is in `wanted` or at least `from` (items never read),
/// in input order: JSONL lines exactly as they were in the file (a line that could not be read
/// as an update is kept verbatim, never rewritten), CSV rows as JSONL updates.
fn write_not_applied(
    out_path: &Path,
    input: &Path,
    format: Format,
    key: Option<&str>,
    wanted: &BTreeSet<u64>,
    from: u64,
) -> anyhow::Result<u64> {
    let mut out = BufWriter::new(
        File::create(out_path).with_context(|| format!("cannot create {}", out_path.display()))?,
    );
    let take = |i: u64| i >= from || wanted.contains(&i);
    let mut written = 0;
    match format {
        Format::Jsonl => {
            // Indexes count the non-empty lines, as the reader does.
            let lines = BufReader::new(open(input)?)
                .split(b'\n')
                .map(|l| {
                    l.map(|mut l| {
                        if l.last() == Some(&b'\r') {
                            l.pop();
                        }
                        l
                    })
                })
                .filter(|l| {
                    !l.as_ref()
                        .is_ok_and(|l| l.iter().all(u8::is_ascii_whitespace))
                });
            for (i, line) in (0u64..).zip(lines) {
                let line = line.with_context(|| format!("cannot read {}", input.display()))?;
                if take(i) {
                    out.write_all(&line)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
        }
        Format::Csv => {
            for (i, item) in (0u64..).zip(items(input, format, key)?) {
                if take(i) {
                    serde_json::to_writer(&mut out, &item)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(written)
}

/// The exit status: 0 all applied, 2 some applied and some not, 1 nothing applied.
fn status(report: &BulkReport) -> Status {
    if report.is_complete_success() {
        Status::Ok
    } else if report.succeeded() > 0 {
        Status::Partial
    } else {
        Status::Error
    }
}

pub(crate) async fn update(ctx: &mut Ctx, args: ChakraUpdate) -> anyhow::Result<Outcome> {
    let format = Format::of(&args.file, args.format)?;
    let key = args.key.as_deref();
    let total = check(&args.file, format, key)?;
    let client = client(ctx).await?;
    let bar = ctx.bar(total, "items");
    let mut bulk = client
        .bulk_update(args.procedure.as_str())
        .poll_policy(ctx.poll(chakra_api::Client::default_poll_policy()))
        .reconcile(!args.no_reconcile)
        .on_progress({
            let bar = bar.clone();
            move |p: &BulkProgress| {
                bar.set_position(p.finished);
                bar.set_message(format!(
                    "sent {}, ok {}, failed {}, unknown {}",
                    p.sent, p.succeeded, p.failed, p.unknown
                ));
            }
        });
    if let Some(n) = args.chunk_size {
        bulk = bulk.chunk_size(n);
    }
    if let Some(n) = args.concurrency {
        bulk = bulk.concurrency(n);
    }
    let result = bulk.run(items(&args.file, format, key)?).await;
    bar.finish_and_clear();
    let report = result?;

    // Every item not applied: failed, invalid, not sent, and never read (after a stop).
    let not_applied: BTreeSet<u64> = report
        .failures()
        .iter()
        .filter(|f| f.outcome.label() != "unknown")
        .map(|f| f.index)
        .collect();
    let never_read = total.saturating_sub(report.total());
    let mut written = Vec::new();
    if let Some(path) = &args.failed_out {
        // Always written, so a clean run leaves an empty file rather than a stale one.
        write_not_applied(path, &args.file, format, key, &not_applied, report.total())?;
        written.push(path.clone());
        let unknown = report.unknown();
        if !unknown.is_empty() {
            let path = unknown_path(path);
            write_jsonl(&path, &unknown)?;
            written.push(path);
        }
    }
    let failures: Vec<Value> = report
        .failures()
        .iter()
        .take(20)
        .map(|f| {
            json!({
                "index": f.index,
                "identifier": f.identifier.as_ref().map(ToString::to_string),
                "outcome": f.outcome.label(),
                "message": f.outcome.message(),
            })
        })
        .collect();
    let stopped = report.stopped_early();
    // After a whole-run failure, the items it refused all carry that one error: it is shown
    // once below, and only the items that failed on their own are listed.
    let stop_text = stopped.map(ToString::to_string);
    let listed: Vec<_> = report
        .failures()
        .iter()
        .filter(|f| {
            let Some(stop) = &stop_text else {
                return true;
            };
            let m = f.outcome.message().unwrap_or_default();
            f.outcome.label() != "error"
                || !(m.contains(stop.as_str()) || m.starts_with("not sent"))
        })
        .collect();
    for f in listed.iter().take(10) {
        let id = f.identifier.as_ref().map(ToString::to_string);
        ctx.note(format!(
            "  item {} ({}): {}: {}",
            f.index,
            id.as_deref().unwrap_or("no identifier"),
            f.outcome.label(),
            f.outcome.message().unwrap_or_default()
        ));
    }
    if listed.len() > 10 {
        ctx.note(format!("  ... and {} more", listed.len() - 10));
    }
    let p = report.progress();
    if p.read_back > 0 {
        ctx.note(format!(
            "unknown outcomes resolved by reading the processes back: {} read, {} found \
             applied, {} sent again",
            p.read_back, p.found_applied, p.resent
        ));
    }
    ctx.note(format!(
        "{} items: {} applied, {} errors, {} invalid, {} unknown, {} not read ({} jobs)",
        total,
        report.succeeded(),
        report.errors(),
        report.invalid(),
        report.unknown_count(),
        never_read,
        report.jobs().len()
    ));
    if !report.is_complete_success() {
        if written.is_empty() {
            ctx.note("give --failed-out FILE to keep the items not applied, to fix and send again");
        } else {
            let list: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            ctx.note(format!(
                "items not applied written to {} (items with an unknown outcome: check them \
                 before resending)",
                list.join(" and ")
            ));
        }
    }
    let status = status(&report);
    if let Some(e) = stopped {
        if status == Status::Error {
            bail!("nothing was applied: {e}");
        }
        ctx.note(format!(
            "the update stopped early after {} of {total} items: {e}",
            report.total()
        ));
    }
    Ok(Outcome::new(
        status,
        "chakra update",
        json!({
            "procedure": args.procedure,
            "items": total,
            "succeeded": report.succeeded(),
            "errors": report.errors(),
            "invalid": report.invalid(),
            "unknown": report.unknown_count(),
            "not_read": never_read,
            "jobs": report.jobs().len(),
            "read_back": p.read_back,
            "found_applied": p.found_applied,
            "resent": p.resent,
            "stopped": stopped.map(ToString::to_string),
            "failed_out": written,
            "failures": failures,
        }),
    ))
}
