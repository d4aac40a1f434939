//! Rows of a downloaded result: spooled to a temporary file, read from the ZIP's one CSV on a
//! blocking thread, and handed over in batches as a stream.

use std::fmt;
use std::io::{Seek, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bulk_common::{Error, ErrorKind, Result};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

/// Rows handed over per batch between the reader thread and the stream.
const BATCH: usize = 512;
/// Batches buffered ahead of the consumer (memory: about `BATCH × QUEUE` rows).
const QUEUE: usize = 4;

/// The rows of one batch in one allocation: every field's text back to back, where each field
/// ends, and where each row's fields start. Rows share their batch, so reading a row allocates
/// nothing, and a batch is freed (once) when its last row is dropped: its buffers then go back
/// to the client's [`Spares`] for a later batch.
struct Batch {
    header: Arc<csv::StringRecord>,
    text: String,
    /// End offset in `text` of every field, row after row.
    ends: Vec<usize>,
    /// Index in `ends` of each row's first field, plus one past the last row's last field.
    rows: Vec<usize>,
    spares: Spares,
}

impl Batch {
    fn new(header: Arc<csv::StringRecord>, spares: &Spares) -> Self {
        let (text, ends, rows) = spares.take().unwrap_or_else(|| {
            let fields = header.len().max(1);
            (
                String::with_capacity(BATCH * 24 * fields),
                Vec::with_capacity(BATCH * fields),
                Vec::with_capacity(BATCH + 1),
            )
        });
        let mut batch = Batch {
            header,
            text,
            ends,
            rows,
            spares: spares.clone(),
        };
        batch.rows.push(0);
        batch
    }

    /// Appends a row: its fields' bytes in one copy once they prove to be UTF-8 text.
    fn push(&mut self, record: &csv::ByteRecord) -> std::result::Result<(), std::str::Utf8Error> {
        let text = std::str::from_utf8(record.as_slice())?;
        let base = self.text.len();
        self.text.push_str(text);
        let mut end = base;
        for field in record.iter() {
            end += field.len();
            self.ends.push(end);
        }
        self.rows.push(self.ends.len());
        Ok(())
    }

    fn len(&self) -> usize {
        self.rows.len() - 1
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.spares.put(
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.ends),
            std::mem::take(&mut self.rows),
        );
    }
}

/// Buffers kept for reuse across one client's downloads: the row batches whose rows were all
/// dropped, and the spool's two write buffers.
///
/// Reusing them keeps a client's memory flat across the jobs of an export. Fresh buffers for
/// every job would come from whichever thread's allocator arena is at hand (glibc keeps one
/// per thread, and keeps what was freed in it for later), and the gaps they leave between
/// longer-lived allocations add up job after job. At most [`SPARES`] batch sets are kept, none
/// with text larger than [`SPARE_TEXT`].
#[derive(Clone, Default)]
pub(crate) struct Spares(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    batches: Vec<Buffers>,
    spool: Vec<Vec<u8>>,
}

type Buffers = (String, Vec<usize>, Vec<usize>);

/// Buffer sets kept: the batches in flight (queued, being filled, being read) and a few more.
const SPARES: usize = QUEUE + 4;
/// A batch's text larger than this (rows with very long fields) is freed, not kept.
const SPARE_TEXT: usize = 1 << 20;

impl Spares {
    fn take(&self) -> Option<Buffers> {
        self.0.lock().ok()?.batches.pop()
    }

    fn put(&self, mut text: String, mut ends: Vec<usize>, mut rows: Vec<usize>) {
        if text.capacity() > SPARE_TEXT {
            return;
        }
        if let Ok(mut kept) = self.0.lock()
            && kept.batches.len() < SPARES
        {
            text.clear();
            ends.clear();
            rows.clear();
            kept.batches.push((text, ends, rows));
        }
    }

    /// An empty spool buffer of [`SPOOL_BUFFER`] bytes' capacity.
    fn spool_buffer(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut kept| kept.spool.pop())
            .unwrap_or_else(|| Vec::with_capacity(SPOOL_BUFFER))
    }

    fn put_spool_buffer(&self, mut buffer: Vec<u8>) {
        if let Ok(mut kept) = self.0.lock()
            && kept.spool.len() < 2
        {
            buffer.clear();
            kept.spool.push(buffer);
        }
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
    pending: Option<(std::fs::File, Option<u64>, Spares)>,
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
        if let Some((file, expected, spares)) = self.pending.take() {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = read_into(file, expected, &spares, &tx) {
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
///
/// The body's chunks are copied into two fixed buffers: one fills while a blocking task writes
/// the other out. The chunks are released at once (so the HTTP client can reuse its read
/// buffer), no buffer grows with a chunk's size, and the transfer waits when the disk falls
/// behind. Each write is a short blocking task, so none outlives the data it was given (a task
/// waiting for more would also hold back Tokio's paused clock in tests).
pub(crate) async fn spool<S>(
    mut body: S,
    dir: Option<&Path>,
    spares: &Spares,
) -> Result<(std::fs::File, u64)>
where
    S: Stream<Item = Result<bytes::Bytes>> + Unpin,
{
    let file = match dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }
    .map_err(|e| storage("could not create a temporary file for the download", e))?;
    let mut writer = Writer {
        file: Some(file),
        writing: None,
        spares,
    };
    let mut bytes = 0u64;
    let mut current = spares.spool_buffer();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let n = rest.len().min(SPOOL_BUFFER - current.len());
            current.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if current.len() == SPOOL_BUFFER {
                current = writer.write(current).await?;
            }
        }
    }
    let last = if current.is_empty() {
        current
    } else {
        writer.write(current).await?
    };
    spares.put_spool_buffer(last);
    let mut file = writer.finish().await?;
    file.rewind()
        .map_err(|e| storage("could not rewind the spooled download", e))?;
    Ok((file, bytes))
}

/// The size of the spool's two buffers: under glibc's initial mmap threshold (128 KiB).
const SPOOL_BUFFER: usize = 64 * 1024;

/// The spool's file, and the blocking write in progress, which holds the file while it runs.
struct Writer<'a> {
    file: Option<std::fs::File>,
    writing: Option<Writing>,
    spares: &'a Spares,
}

type Writing = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

impl Writer<'_> {
    /// Starts writing `full` once the previous write ended, and returns that write's buffer,
    /// emptied, for the next bytes (a new one the first time).
    async fn write(&mut self, full: Vec<u8>) -> Result<Vec<u8>> {
        let spare = match self.writing.take() {
            Some(writing) => {
                let (file, mut spare) = joined(writing).await?;
                self.file = Some(file);
                spare.clear();
                spare
            }
            None => self.spares.spool_buffer(),
        };
        let mut file = self.file.take().ok_or_else(lost)?;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            file.write_all(&full)?;
            Ok((file, full))
        }));
        Ok(spare)
    }

    /// Waits for the last write and returns the file.
    async fn finish(mut self) -> Result<std::fs::File> {
        if let Some(writing) = self.writing.take() {
            let (file, buffer) = joined(writing).await?;
            self.spares.put_spool_buffer(buffer);
            self.file = Some(file);
        }
        self.file.ok_or_else(lost)
    }
}

async fn joined(writing: Writing) -> Result<(std::fs::File, Vec<u8>)> {
    writing
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Storage, "the download's writer stopped").with_source(e)
        })?
        .map_err(|e| storage("could not write the download to disk", e))
}

fn lost() -> Error {
    Error::new(ErrorKind::Storage, "internal: the spool lost its file")
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
/// Batches take their buffers from `spares` when it has some.
pub(crate) fn read_zip(file: std::fs::File, expected: Option<u64>, spares: Spares) -> Rows {
    Rows {
        pending: Some((file, expected, spares)),
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
    spares: &Spares,
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
    let mut batch = Batch::new(header.clone(), spares);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(corrupt("has a malformed CSV row", e)),
        }
        rows += 1;
        if let Err(e) = batch.push(&record) {
            return Err(corrupt(
                &format!("has a row (row {rows}) that is not UTF-8 text"),
                e,
            ));
        }
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Batch::new(header.clone(), spares));
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use futures::TryStreamExt;

    use super::*;

    fn body(chunks: Vec<Result<Vec<u8>>>) -> impl Stream<Item = Result<bytes::Bytes>> + Unpin {
        futures::stream::iter(chunks.into_iter().map(|c| c.map(bytes::Bytes::from)))
    }

    #[tokio::test]
    async fn spool_writes_every_byte_in_order_across_buffer_boundaries() {
        let spares = Spares::default();
        let sizes = [
            1,
            SPOOL_BUFFER - 1,
            SPOOL_BUFFER + 1,
            3 * SPOOL_BUFFER + 7,
            0,
            5,
        ];
        let chunks: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let expected: Vec<u8> = chunks.concat();
        for _ in 0..2 {
            let (mut file, bytes) = spool(
                body(chunks.iter().cloned().map(Ok).collect()),
                None,
                &spares,
            )
            .await
            .unwrap();
            assert_eq!(bytes, expected.len() as u64);
            let mut written = Vec::new();
            file.read_to_end(&mut written).unwrap();
            assert!(
                written == expected,
                "the spooled file differs from the body"
            );
        }
        // Both write buffers went back for the next download, and no more than two are kept.
        assert_eq!(spares.0.lock().unwrap().spool.len(), 2);
    }

    #[tokio::test]
    async fn spool_reports_a_broken_body() {
        let chunks = vec![
            Ok(vec![7; 3 * SPOOL_BUFFER]),
            Err(Error::new(ErrorKind::Transport, "connection reset")),
            Ok(vec![1; 10]),
        ];
        let err = spool(body(chunks), None, &Spares::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
    }

    #[tokio::test]
    async fn row_batches_return_their_buffers_to_the_client() {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("r.csv", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"a,b\n").unwrap();
        for i in 0..(3 * BATCH + 1) {
            writeln!(zip, "{i},x").unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let spares = Spares::default();
        for _ in 0..3 {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&bytes).unwrap();
            file.rewind().unwrap();
            let rows: Vec<Record> = read_zip(file, Some(3 * BATCH as u64 + 1), spares.clone())
                .try_collect()
                .await
                .unwrap();
            assert_eq!(rows.len(), 3 * BATCH + 1);
            assert_eq!(rows[BATCH].get("a"), Some(BATCH.to_string().as_str()));
            drop(rows);
            // All four batches were freed into the spares; later jobs take them from there.
            assert_eq!(spares.0.lock().unwrap().batches.len(), 4);
        }
    }
}
