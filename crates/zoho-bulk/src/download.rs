//! Downloading a completed job's result: the ZIP spooled to disk, verified, and read as rows.

use std::sync::atomic::{AtomicU32, Ordering};

use bulk_common::{Error, ErrorKind, Method, Result, encode_segment};

use crate::client::Client;
use crate::codes::json_download_error;
use crate::job::JobHandle;
use crate::model::JobDetails;
use crate::rows::{Rows, read_zip, spool, verify_zip};

impl Client {
    /// Downloads a completed job's result to a temporary file and returns its rows, with the
    /// cursor for the next batch if Zoho sent one.
    ///
    /// A transfer that breaks off is downloaded again (the result stays available for a day);
    /// `details` (from [`Client::wait`]) supplies the download URL and the row count, which the
    /// rows are checked against.
    pub async fn download(
        &self,
        job: &JobHandle,
        details: Option<&JobDetails>,
    ) -> Result<Download> {
        let result = details.and_then(|d| d.result.as_ref());
        // Zoho's download_url is relative to the API host. It is used when it lies under this
        // form's own prefix; otherwise (a v2.1 sample shows a v2-style `/api/bulk/v2.1/...`
        // path) the documented `<read path>/<job_id>/result` is built, as seed 001's second
        // method does.
        let prefix = format!("{}/", self.inner.version.path_prefix());
        let path = result
            .and_then(|r| r.download_url.clone())
            .filter(|url| url.starts_with(&prefix))
            .unwrap_or_else(|| {
                format!(
                    "{}/{}/result",
                    self.read_path(job.report()),
                    encode_segment(job.id().as_str())
                )
            });
        // A broken transfer, or a complete reply whose archive is not whole, is downloaded
        // again (Zoho keeps a result for 24 hours), with the HTTP retry policy's backoff (and
        // jitter) between attempts and at most `download_attempts` in all. Its time budget is
        // for single requests: one large download may outlast it, so none applies here.
        let policy = self
            .inner
            .http
            .options()
            .get_retry()
            .clone()
            .max_attempts(self.inner.download_attempts.max(1))
            .budget(None);
        let attempts = AtomicU32::new(0);
        let outcome = policy
            .retry(
                |attempt| {
                    attempts.store(attempt, Ordering::Relaxed);
                    self.download_verified(job, &path)
                },
                Error::is_retryable,
            )
            .await;
        let attempt = attempts.load(Ordering::Relaxed);
        match outcome {
            Ok((file, bytes, header_cursor)) => {
                tracing::info!(job = %job.id(), bytes, attempt, "result downloaded and verified");
                let record_cursor =
                    header_cursor.or_else(|| result.and_then(|r| r.record_cursor.clone()));
                Ok(Download {
                    rows: read_zip(
                        file,
                        result.and_then(|r| r.count),
                        self.inner.spares.clone(),
                    ),
                    record_cursor,
                    bytes,
                })
            }
            Err(e) => {
                let e = if e.kind() == ErrorKind::Decode {
                    e.with_retryable(false)
                } else {
                    e
                };
                Err(e.context(format!(
                    "downloading the result of job {} ({attempt} attempt{})",
                    job.id(),
                    if attempt == 1 { "" } else { "s" }
                )))
            }
        }
    }

    /// One download under the download throttle, its archive checked whole.
    async fn download_verified(
        &self,
        job: &JobHandle,
        path: &str,
    ) -> Result<(std::fs::File, u64, Option<String>)> {
        self.inner.download_throttle.acquire().await;
        let (file, bytes, cursor) = self.download_once(path).await?;
        match verify_zip(file).await {
            Ok(file) => Ok((file, bytes, cursor)),
            Err(e) => {
                tracing::warn!(job = %job.id(), error = %e, "the downloaded archive is incomplete");
                Err(e)
            }
        }
    }

    async fn download_once(&self, path: &str) -> Result<(std::fs::File, u64, Option<String>)> {
        let reply = self
            .inner
            .http
            .request(Method::Get, path)
            .auth(self.inner.read_auth.clone())
            .send_streaming()
            .await?;
        let cursor = reply
            .headers()
            .get("recordCursor")
            .map(str::to_owned)
            .filter(|c| !c.is_empty());
        let looks_like_json = reply
            .headers()
            .get("content-type")
            .is_some_and(|t| t.contains("json"));
        let (file, bytes) = spool(
            reply.into_stream(),
            self.inner.spool_dir.as_deref(),
            &self.inner.spares,
        )
        .await?;
        if looks_like_json {
            // A JSON reply with a success status is Zoho reporting an error (the daily limit,
            // say) where a ZIP was expected.
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 * 1024), &mut text)
                .map_err(|e| {
                    Error::new(ErrorKind::Storage, "could not read the download").with_source(e)
                })?;
            return Err(json_download_error(&text));
        }
        Ok((file, bytes, cursor))
    }
}

/// A downloaded result: its rows and the cursor of the next batch.
#[derive(Debug)]
#[non_exhaustive]
pub struct Download {
    /// The rows, streamed from the spooled file.
    pub rows: Rows,
    /// The cursor for the next job, absent on the last batch.
    pub record_cursor: Option<String>,
    /// The size of the ZIP archive.
    pub bytes: u64,
}
