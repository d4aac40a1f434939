//! Rows of a downloaded result: spooled to a temporary file, read from the ZIP's one CSV on a
//! blocking thread, and handed over in batches as a stream.

use std::fmt;
use std::io::Seek;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bulk_common::{Error, ErrorKind, Result};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Rows handed over per batch between the reader thread and the stream.
const BATCH: usize = 512;
/// Batches buffered ahead of the consumer (memory: about `BATCH × QUEUE` rows).
const QUEUE: usize = 4;

/// The rows of one batch in one allocation: every field's text back to back, where each field
/// ends, and where each row's fields start. Rows share their batch, so reading a row allocates
/// nothing, and a batch is freed (once) when its last row is dropped.
struct Batch {
    header: Arc<csv::StringRecord>,
    text: String,
    /// End offset in `text` of every field, row after row.
    ends: Vec<usize>,
    /// Index in `ends` of each row's first field, plus one past the last row's last field.
    rows: Vec<usize>,
}

impl Batch {
    fn new(header: Arc<csv::StringRecord>) -> Self {
        let fields = header.len().max(1);
        Batch {
            header,
            text: String::with_capacity(BATCH * 24 * fields),
            ends: Vec::with_capacity(BATCH * fields),
            rows: vec![0],
        }
    }

    fn push(&mut self, record: &csv::StringRecord) {
        for field in record.iter() {
            self.text.push_str(field);
            self.ends.push(self.text.len());
        }
        self.rows.push(self.ends.len());
    }

    fn len(&self) -> usize {
        self.rows.len() - 1
    }
}

/// One row of a report: values keyed by the CSV header. Cheap to clone; a row shares storage
/// with the rows read with it (up to 512), which stays allocated while any of them is kept.
#[derive(Clone)]
pub struct Record {
    batch: Arc<Batch>,
    row: usize,
}

impl Record {
    fn field(&self, global: usize) -> &str {
        let b = &self.batch;
        let start = if global == 0 { 0 } else { b.ends[global - 1] };
        &b.text[start..b.ends[global]]
    }

    /// The value of `column`, if the export has that column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.batch.header.iter().position(|h| h == column)?;
        (i < self.len()).then(|| self.field(self.batch.rows[self.row] + i))
    }

    /// The column names, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.batch.header.iter()
    }

    /// The values, in column order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let b = &self.batch;
        (b.rows[self.row]..b.rows[self.row + 1]).map(|g| self.field(g))
    }

    /// `(column, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.columns().zip(self.values())
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.batch.rows[self.row + 1] - self.batch.rows[self.row]
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the row into `T` by column name (serde, as the `csv` crate does).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        let values: csv::StringRecord = self.values().collect();
        values.deserialize(Some(&self.batch.header)).map_err(|e| {
            // The csv error names the column and the value; a Rust type path would not help.
            Error::decode(format!("a row does not fit the requested fields: {e}"), e)
        })
    }

    /// The row as a JSON object of strings.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The rows of one job's result, in order. Ends with an error, never silently short, if the ZIP
/// is truncated or corrupt, holds no CSV or more than one, a row does not match the header, or
/// the row count differs from the count Zoho reported.
pub struct Rows {
    /// The spooled file and Zoho's row count, until the first poll starts the reader. Starting
    /// lazily keeps the reader thread (and its buffered batches) from existing before anyone
    /// reads, for example while an export creates the next job.
    pending: Option<(std::fs::File, Option<u64>)>,
    rx: Option<mpsc::Receiver<Result<Batch>>>,
    batch: Option<Arc<Batch>>,
    next: usize,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows").finish_non_exhaustive()
    }
}

impl Stream for Rows {
    type Item = Result<Record>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some((file, expected)) = self.pending.take() {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = read_into(file, expected, &tx) {
                    let _ = tx.blocking_send(Err(e));
                }
            });
            self.rx = Some(rx);
        }
        loop {
            if let Some(batch) = &self.batch
                && self.next < batch.len()
            {
                let record = Record {
                    batch: batch.clone(),
                    row: self.next,
                };
                self.next += 1;
                return Poll::Ready(Some(Ok(record)));
            }
            let Some(rx) = self.rx.as_mut() else {
                return Poll::Ready(None);
            };
            match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(batch))) => {
                    self.batch = Some(Arc::new(batch));
                    self.next = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn storage(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Storage, what.to_owned()).with_source(e)
}

/// Writes a download to an anonymous temporary file (removed when closed) and rewinds it.
pub(crate) async fn spool<S>(mut body: S, dir: Option<&Path>) -> Result<(std::fs::File, u64)>
where
    S: Stream<Item = Result<bytes::Bytes>> + Unpin,
{
    let file = match dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }
    .map_err(|e| storage("could not create a temporary file for the download", e))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 18, tokio::fs::File::from_std(file));
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(|e| storage("could not write the download to disk", e))?;
    }
    out.flush()
        .await
        .map_err(|e| storage("could not write the download to disk", e))?;
    let mut file = out.into_inner().into_std().await;
    file.rewind()
        .map_err(|e| storage("could not rewind the spooled download", e))?;
    Ok((file, bytes))
}

/// Checks that a spooled download is a complete ZIP archive whose every entry reads to its end
/// with a matching CRC (the `zip` crate checks it at the end of each entry), and rewinds it.
///
/// An HTTP reply can be complete and well-formed while its body is not (a proxy or the server
/// cut it off, with a `Content-Length` that matches); reading the archive through is the only
/// proof that it is whole. A failure is a [`ErrorKind::Decode`] error marked retryable: Zoho
/// keeps a result for 24 hours, so the caller downloads it again.
pub(crate) async fn verify_zip(file: std::fs::File) -> Result<std::fs::File> {
    tokio::task::spawn_blocking(move || verify_blocking(file))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                "the check of the downloaded archive stopped",
            )
            .with_source(e)
        })?
        .map_err(|e| e.with_retryable(true))
}

fn verify_blocking(mut file: std::fs::File) -> Result<std::fs::File> {
    {
        let mut archive = zip::ZipArchive::new(&mut file)
            .map_err(|e| corrupt("is not a complete ZIP archive (cut off or corrupt)", e))?;
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| corrupt("has an unreadable entry", e))?;
            std::io::copy(&mut entry, &mut std::io::sink())
                .map_err(|e| corrupt("has an entry that is cut off or fails its CRC check", e))?;
        }
    }
    file.rewind()
        .map_err(|e| storage("could not rewind the spooled download", e))?;
    Ok(file)
}

/// Reads the ZIP's one CSV on a blocking thread; `expected` is Zoho's row count, if known.
pub(crate) fn read_zip(file: std::fs::File, expected: Option<u64>) -> Rows {
    Rows {
        pending: Some((file, expected)),
        rx: None,
        batch: None,
        next: 0,
    }
}

fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::decode(format!("the downloaded result {what}"), e)
}

fn read_into(
    file: std::fs::File,
    expected: Option<u64>,
    tx: &mpsc::Sender<Result<Batch>>,
) -> Result<()> {
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| corrupt("is not a readable ZIP archive (truncated or corrupt)", e))?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let csvs: Vec<usize> = (0..archive.len())
        .filter(|&i| {
            archive
                .name_for_index(i)
                .is_some_and(|n| n.is_ok_and(|n| n.to_ascii_lowercase().ends_with(".csv")))
        })
        .collect();
    let index = match csvs.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("the downloaded ZIP holds no CSV file (entries: {names:?})"),
            ));
        }
        many => {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "the downloaded ZIP holds {} CSV files; expected exactly one",
                    many.len()
                ),
            ));
        }
    };
    let entry = archive
        .by_index(index)
        .map_err(|e| corrupt("has an unreadable CSV entry", e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(entry);
    let header = Arc::new(
        reader
            .headers()
            .map_err(|e| corrupt("has an unreadable CSV header", e))?
            .clone(),
    );
    let mut rows = 0u64;
    let mut batch = Batch::new(header.clone());
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(corrupt("has a malformed CSV row", e)),
        }
        rows += 1;
        batch.push(&record);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Batch::new(header.clone()));
            if tx.blocking_send(Ok(full)).is_err() {
                // The consumer dropped the stream: stop reading.
                return Ok(());
            }
        }
    }
    if batch.len() > 0 && tx.blocking_send(Ok(batch)).is_err() {
        return Ok(());
    }
    match expected {
        Some(expected) if expected != rows => Err(Error::new(
            ErrorKind::Decode,
            format!("the downloaded CSV has {rows} rows but Zoho reported {expected}"),
        )),
        _ => Ok(()),
    }
}
