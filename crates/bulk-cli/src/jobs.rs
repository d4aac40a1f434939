//! Job files: what a command submitted and what is left to do, so that `bulk jobs resume` can
//! finish the work after the first process stopped (a restart, a timeout, `--no-wait`).

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::outcome::Outcome;
use crate::zoho::ExportJob;

/// A job file's content: the vendor, the job's handle and what to do once it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "vendor", rename_all = "lowercase")]
pub(crate) enum JobFile {
    /// A Zoho export: continue from the checkpoint into the temporary file, then rename it.
    Zoho(Box<ExportJob>),
    /// A Zefort task: wait for it, then acknowledge it (unless `acknowledge` is false).
    Zefort {
        /// The task.
        task: zefort_api::JobHandle,
        /// Acknowledge the finished task.
        acknowledge: bool,
    },
    /// A Unicat job: wait for it through the sync feed.
    Unicat {
        /// The job.
        job: unicat_api::JobHandle,
    },
}

impl JobFile {
    /// Writes the file atomically (a temporary file beside it, then a rename).
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("job");
        let temp = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&temp, text + "\n")
            .with_context(|| format!("cannot write the job file {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot write the job file {}", path.display()))?;
        Ok(())
    }

    fn load(path: &Path) -> anyhow::Result<JobFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the job file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a bulk job file", path.display()))
    }
}

/// `bulk jobs resume <file>`.
pub(crate) async fn resume(ctx: &mut Ctx, path: &Path) -> anyhow::Result<Outcome> {
    if ctx.sim() {
        bail!(
            "jobs resume cannot use --sim: the embedded simulators live only as long as one command"
        );
    }
    match JobFile::load(path)? {
        JobFile::Zoho(job) => {
            let job = *job;
            let Some(cp) = &job.checkpoint else {
                bail!("{} holds no checkpoint to resume from", path.display());
            };
            let (report, query) = (cp.report.clone(), cp.query.clone());
            let client = crate::zoho::client(ctx).await?;
            crate::zoho::run(ctx, &client, &report, query, job, Some(path.to_owned())).await
        }
        JobFile::Zefort { task, acknowledge } => {
            let client = crate::zefort::client(ctx).await?;
            crate::zefort::finish(ctx, &client, &task, acknowledge, Some(path), "jobs resume").await
        }
        JobFile::Unicat { job } => {
            let client = crate::unicat::client(ctx).await?;
            crate::unicat::finish(ctx, &client, &job, Some(path), "jobs resume").await
        }
    }
}
