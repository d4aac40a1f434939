//! `bulk chakra update`: process updates from a CSV or JSONL file, checked whole before
//! anything is sent, with the failed items written out to fix and resend.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chakra_api::{BulkProgress, Client, ProcessUpdate, TableLayout};
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

/// Checks the whole file (readable, well-formed rows, known columns) and counts its items,
/// so that a bad file stops the command before anything is sent.
fn check(path: &Path, format: Format) -> anyhow::Result<u64> {
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
            TableLayout::new(&header).with_context(|| format!("{}", path.display()))?;
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
) -> anyhow::Result<Box<dyn Iterator<Item = ProcessUpdate> + Send>> {
    let file = open(path)?;
    Ok(match format {
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(BufReader::new(file));
            let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
            let layout = TableLayout::new(&header)?;
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

pub(crate) async fn update(ctx: &mut Ctx, args: ChakraUpdate) -> anyhow::Result<Outcome> {
    let format = Format::of(&args.file, args.format)?;
    let total = check(&args.file, format)?;
    let client = client(ctx).await?;
    let bar = ctx.bar(total, "items");
    let mut bulk = client
        .bulk_update(args.procedure.as_str())
        .poll_policy(ctx.poll(chakra_api::default_poll_policy()))
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
    let result = bulk.run(items(&args.file, format)?).await;
    bar.finish_and_clear();
    let report = result?;

    let mut written = Vec::new();
    if let Some(path) = &args.failed_out {
        let failed = report.failed();
        let unknown = report.unknown();
        if !failed.is_empty() || unknown.is_empty() {
            // Always written, so a clean run leaves an empty file rather than a stale one.
            write_jsonl(path, &failed)?;
            written.push(path.clone());
        }
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
    for f in report.failures().iter().take(10) {
        let id = f.identifier.as_ref().map(ToString::to_string);
        ctx.note(format!(
            "  item {} ({}): {}: {}",
            f.index,
            id.as_deref().unwrap_or("no identifier"),
            f.outcome.label(),
            f.outcome.message().unwrap_or_default()
        ));
    }
    if report.failures().len() > 10 {
        ctx.note(format!("  ... and {} more", report.failures().len() - 10));
    }
    ctx.note(format!(
        "{} items: {} applied, {} errors, {} invalid, {} unknown ({} jobs)",
        report.total(),
        report.succeeded(),
        report.errors(),
        report.invalid(),
        report.unknown_count(),
        report.jobs().len()
    ));
    if !report.failures().is_empty() {
        if written.is_empty() {
            ctx.note("give --failed-out FILE to keep the failed items, to fix and send again");
        } else {
            let list: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            ctx.note(format!(
                "failed items written to {} (items with an unknown outcome: reconcile before \
                 resending)",
                list.join(" and ")
            ));
        }
    }
    if let Some(e) = report.stopped_early() {
        bail!(
            "the update stopped early after {} items: {e}",
            report.progress().finished
        );
    }
    let status = if report.failures().is_empty() {
        Status::Ok
    } else {
        Status::Partial
    };
    Ok(Outcome::new(
        status,
        "chakra update",
        json!({
            "procedure": args.procedure,
            "items": report.total(),
            "succeeded": report.succeeded(),
            "errors": report.errors(),
            "invalid": report.invalid(),
            "unknown": report.unknown_count(),
            "jobs": report.jobs().len(),
            "failed_out": written,
            "failures": failures,
        }),
    ))
}
