//! `bulk zoho export`: a report streamed to a CSV or JSONL file, through a temporary file that
//! is renamed into place at the end, with checkpoints in a job file for `bulk jobs resume`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use futures::TryStreamExt;
use indicatif::ProgressBar;
use serde_json::json;
use zoho_bulk::{
    Client, ExportCheckpoint, ExportEvent, ExportOptions, MaxRecords, ReadQuery, Record,
};

use crate::cli::{Format, ZohoExport};
use crate::context::Ctx;
use crate::jobs::JobFile;
use crate::outcome::{Outcome, Status};

/// A Zoho client from `--sim`, or from the settings (`ZOHO_*`, see `zoho_bulk::Client::from_env`).
pub(crate) async fn client(ctx: &mut Ctx) -> anyhow::Result<Client> {
    let poll = ctx.poll(
        bulk_common::poll::PollPolicy::default()
            .first_delay(std::time::Duration::from_secs(2))
            .max_delay(std::time::Duration::from_secs(30))
            .deadline(Some(std::time::Duration::from_secs(2 * 3600))),
    );
    let builder = if ctx.sim() {
        let (sim, cfg) = crate::sim::zoho().await?;
        let url = sim.base_url();
        ctx.keep(sim);
        Client::builder()
            .creator_url(url.clone())
            .accounts_url(url)
            .owner(cfg.owner)
            .app(cfg.app)
            .credentials(
                cfg.client_id,
                cfg.client_secret.into(),
                cfg.refresh_token.into(),
            )
            .throttles(1000, 1000)
    } else {
        let s = &ctx.settings;
        let mut b = Client::builder()
            .owner(s.require("ZOHO_OWNER")?)
            .app(s.require("ZOHO_APP")?)
            .credentials(
                s.require("ZOHO_CLIENT_ID")?,
                s.require_secret("ZOHO_CLIENT_SECRET")?,
                s.require_secret("ZOHO_REFRESH_TOKEN")?,
            );
        if let Some(read) = s.secret("ZOHO_READ_REFRESH_TOKEN")? {
            b = b.read_refresh_token(read);
        }
        // v2 (creator.zoho.<dc>/api/bulk/v2, the default) or v2.1 (www.zohoapis.<dc>/creator/v2.1/bulk).
        if let Some(version) = s.value("ZOHO_API_VERSION")? {
            b = b.api_version(version.parse()?);
        }
        match (
            s.value("ZOHO_CREATOR_URL")?,
            s.value("ZOHO_ACCOUNTS_URL")?,
            s.value("ZOHO_DC")?,
        ) {
            (Some(creator), Some(accounts), _) => b = b.creator_url(creator).accounts_url(accounts),
            (None, None, Some(dc)) => b = b.data_centre(dc.parse()?),
            (None, None, None) => bail!(
                "ZOHO_DC is not set (us, eu, in, au, jp, ca, sa, cn), nor ZOHO_CREATOR_URL and \
                 ZOHO_ACCOUNTS_URL; or try the command with --sim"
            ),
            _ => bail!("ZOHO_CREATOR_URL and ZOHO_ACCOUNTS_URL must be set together"),
        }
        if let Some(dir) = s.value("ZOHO_TOKEN_DIR")? {
            b = b.token_store(Arc::new(bulk_common::token::FileStore::new(dir)?));
        }
        b
    };
    Ok(builder.poll_policy(poll).build()?)
}

/// The temporary file beside `out`: `.<name>.partial`.
fn temp_path(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} is not a file name", out.display()))?;
    Ok(out.with_file_name(format!(".{name}.partial")))
}

/// Where an export writes and how far it got: what a job file keeps.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExportJob {
    /// The export's checkpoint (`None` before the first one).
    pub(crate) checkpoint: Option<ExportCheckpoint>,
    /// The target file.
    pub(crate) out: PathBuf,
    /// The temporary file rows are written to.
    pub(crate) temp: PathBuf,
    /// The format.
    pub(crate) format: Format,
    /// Bytes of the temporary file that hold the checkpoint's rows.
    pub(crate) offset: u64,
    /// The fields asked for, for the header of an empty CSV export.
    #[serde(default)]
    pub(crate) fields: Option<Vec<String>>,
}

pub(crate) async fn export(ctx: &mut Ctx, args: ZohoExport) -> anyhow::Result<Outcome> {
    let format = Format::of(&args.out, args.format)?;
    let mut query = ReadQuery::new();
    if let Some(c) = args.criteria {
        query = query.criteria(c);
    }
    if let Some(fields) = &args.fields {
        query = query.fields(fields.iter().map(|f| f.trim().to_owned()));
    }
    if let Some(n) = args.max_records {
        query = query.max_records(MaxRecords::new(n)?);
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("the directory of {} does not exist", args.out.display());
    }
    let job = ExportJob {
        checkpoint: None,
        temp: temp_path(&args.out)?,
        out: args.out,
        format,
        offset: 0,
        fields: args.fields,
    };
    let client = client(ctx).await?;
    run(ctx, &client, &args.report, query, job, args.job_file).await
}

/// Runs (or resumes) an export into `job.temp`, then renames it to `job.out`.
pub(crate) async fn run(
    ctx: &Ctx,
    client: &Client,
    report: &str,
    query: ReadQuery,
    job: ExportJob,
    job_file: Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let resumed = job.checkpoint.is_some();
    let sink = Sink::open(&job)?;
    let rows_before = job.checkpoint.as_ref().map_or(0, |c| c.rows_delivered);
    let bar = ctx.spinner("rows");
    bar.set_position(rows_before);
    let saver = Arc::new(Saver {
        sink: Mutex::new(sink),
        job: Mutex::new(job.clone()),
        job_file: job_file.clone(),
        error: Mutex::new(None),
        orphaned_jobs: std::sync::atomic::AtomicU32::new(
            job.checkpoint.as_ref().map_or(0, |c| c.orphaned_jobs),
        ),
    });
    let opts = ExportOptions::new().on_progress({
        let saver = saver.clone();
        let bar = bar.clone();
        move |e| on_progress(&saver, &bar, e)
    });
    let mut rows = match job.checkpoint {
        Some(cp) => client.resume_export(cp, opts),
        None => client.export_with(report, query, opts),
    };
    let mut written = rows_before;
    let result: anyhow::Result<()> = async {
        while let Some(row) = rows.try_next().await? {
            if let Some(e) = saver.take_error() {
                return Err(e);
            }
            saver.lock_sink().write(&row)?;
            written += 1;
            bar.set_position(written);
        }
        if let Some(e) = saver.take_error() {
            return Err(e);
        }
        Ok(())
    }
    .await;
    drop(rows);
    bar.finish_and_clear();
    let temp = job.temp.clone();
    if let Err(e) = result {
        return Err(match &job_file {
            Some(file) => {
                // The job file's offset marks the rows that count; the rest is cut on resume.
                let _ = saver.lock_sink().flush_len();
                e.context(format!(
                    "the export of {report} stopped after {written} rows; the rows so far are kept \
                     in {}: continue with `bulk jobs resume {}`",
                    temp.display(),
                    file.display()
                ))
            }
            None => {
                let _ = std::fs::remove_file(&temp);
                e.context(format!(
                    "the export of {report} stopped after {written} rows"
                ))
            }
        });
    }
    saver.lock_sink().finish(job.fields.as_deref())?;
    std::fs::rename(&temp, &job.out)
        .with_context(|| format!("cannot rename {} to {}", temp.display(), job.out.display()))?;
    if let Some(file) = &job_file {
        let _ = std::fs::remove_file(file);
    }
    let orphaned = saver
        .orphaned_jobs
        .load(std::sync::atomic::Ordering::Relaxed);
    ctx.note(format!(
        "{written} rows of {report} written to {}{}",
        job.out.display(),
        if resumed { " (resumed)" } else { "" }
    ));
    if orphaned > 0 {
        // Zoho cannot list jobs: a creation whose reply was lost was made again. The orphans
        // cost Developer API quota, not data; say so once.
        let s = if orphaned == 1 { "" } else { "s" };
        ctx.note(format!(
            "{orphaned} bulk-read job creation{s} had an unknown outcome and {} made again; \
             Zoho may hold up to {orphaned} unused job{s}, which cost API quota, not data",
            if orphaned == 1 { "was" } else { "were" },
        ));
    }
    let stats = client.stats();
    Ok(Outcome::new(
        Status::Ok,
        "zoho export",
        json!({
            "report": report,
            "rows": written,
            "out": job.out,
            "resumed": resumed,
            "retries": stats.retries,
            "orphaned_jobs": orphaned,
        }),
    ))
}

/// Keeps the job file in step with the rows written: called from the export's events, which
/// arrive while the rows stream is polled (never while a row is being written).
struct Saver {
    sink: Mutex<Sink>,
    job: Mutex<ExportJob>,
    job_file: Option<PathBuf>,
    error: Mutex<Option<anyhow::Error>>,
    /// Job creations made again after an unknown outcome (the export's count so far).
    orphaned_jobs: std::sync::atomic::AtomicU32,
}

impl Saver {
    fn lock_sink(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_error(&self) -> Option<anyhow::Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Flushes the rows written so far (all rows before `cp`) and saves `cp` with their length.
    fn save(&self, cp: &ExportCheckpoint) -> anyhow::Result<()> {
        let Some(file) = &self.job_file else {
            return Ok(());
        };
        let offset = self.lock_sink().flush_len()?;
        let mut job = self.job.lock().unwrap_or_else(|e| e.into_inner());
        job.checkpoint = Some(cp.clone());
        job.offset = offset;
        JobFile::Zoho(Box::new(job.clone())).save(file)
    }
}

fn on_progress(saver: &Saver, bar: &ProgressBar, e: &ExportEvent<'_>) {
    match e {
        ExportEvent::JobCreated(job) => bar.set_message(format!("job {} created", job.id())),
        ExportEvent::JobPending { job, status, polls } => {
            bar.set_message(format!("job {}: {status} (look {polls})", job.id()))
        }
        ExportEvent::JobDownloaded { job, rows, bytes } => bar.set_message(format!(
            "job {}: {} rows downloaded ({} KiB)",
            job.id(),
            rows.map_or("?".into(), |r| r.to_string()),
            bytes / 1024
        )),
        ExportEvent::JobsRecreated { orphaned_jobs } => {
            saver
                .orphaned_jobs
                .store(*orphaned_jobs, std::sync::atomic::Ordering::Relaxed);
            bar.set_message("a job creation had an unknown outcome; creating the job again")
        }
        ExportEvent::Checkpoint(cp) => {
            saver
                .orphaned_jobs
                .store(cp.orphaned_jobs, std::sync::atomic::Ordering::Relaxed);
            if let Err(err) = saver.save(cp) {
                let mut slot = saver.error.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(err);
            }
        }
        _ => {}
    }
}

/// The temporary file being written.
enum Sink {
    Csv {
        writer: Box<csv::Writer<File>>,
        header: bool,
    },
    Jsonl(BufWriter<File>),
}

impl Sink {
    /// Opens `job.temp`: new, or cut back to the checkpoint's length when resuming.
    fn open(job: &ExportJob) -> anyhow::Result<Sink> {
        let file = if job.checkpoint.is_some() {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&job.temp)
                .with_context(|| {
                    format!(
                        "cannot reopen the partial export {} (was it removed?)",
                        job.temp.display()
                    )
                })?;
            file.set_len(job.offset)?;
            let mut file = file;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
            file
        } else {
            File::create(&job.temp)
                .with_context(|| format!("cannot create {}", job.temp.display()))?
        };
        Ok(match job.format {
            Format::Csv => Sink::Csv {
                writer: Box::new(csv::Writer::from_writer(file)),
                header: job.offset > 0,
            },
            Format::Jsonl => Sink::Jsonl(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    fn write(&mut self, row: &Record) -> anyhow::Result<()> {
        match self {
            Sink::Csv { writer, header } => {
                if !*header {
                    writer.write_record(row.columns())?;
                    *header = true;
                }
                writer.write_record(row.values())?;
            }
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, &row.to_json())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the file's length.
    fn flush_len(&mut self) -> anyhow::Result<u64> {
        let file = match self {
            Sink::Csv { writer, .. } => {
                writer.flush()?;
                writer.get_ref()
            }
            Sink::Jsonl(w) => {
                w.flush()?;
                w.get_ref()
            }
        };
        Ok(file.metadata()?.len())
    }

    /// Flushes and syncs the file; an empty CSV export still gets its header when the fields
    /// are known.
    fn finish(&mut self, fields: Option<&[String]>) -> anyhow::Result<()> {
        if let (Sink::Csv { writer, header }, Some(fields)) = (&mut *self, fields)
            && !*header
        {
            writer.write_record(fields)?;
        }
        self.flush_len()?;
        let file = match &*self {
            Sink::Csv { writer, .. } => writer.get_ref(),
            Sink::Jsonl(w) => w.get_ref(),
        };
        file.sync_all()?;
        Ok(())
    }
}
