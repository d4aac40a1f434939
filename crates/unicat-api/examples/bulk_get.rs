//! Prints every record of a selection as one JSON line on stdout.
//!
//! ```sh
//! export UNICAT_API_KEY=... UNICAT_PROJECT=... # UNICAT_BASE_URL=http://127.0.0.1:PORT
//! cargo run -p unicat-api --example bulk_get -- selection.json --page-size 250
//! ```
//!
//! `selection.json` holds the selection list in the API's JSON form. Pages are fetched as the
//! output is written, so memory stays bounded whatever the selection's size.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;

use futures::TryStreamExt;
use unicat_api::{Client, DEFAULT_PAGE_SIZE, RecordSelection};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulk_get: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: bulk_get <selection.json> [--page-size N]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, page_size) = match args.as_slice() {
        [path] => (path, DEFAULT_PAGE_SIZE),
        [path, flag, n] if flag == "--page-size" => (path, n.parse()?),
        _ => return Err(USAGE.into()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let selection: RecordSelection =
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;

    let client = Client::from_env()?;
    let mut records = client
        .records()
        .get(&selection)
        .page_size(page_size)
        .stream::<serde_json::Value>();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut n = 0u64;
    while let Some(record) = records.try_next().await? {
        let line = serde_json::json!({ "gid": record.gid, "data": record.data });
        writeln!(out, "{line}")?;
        n += 1;
    }
    out.flush()?;
    eprintln!(
        "{n} records (the server counted {})",
        records.size().unwrap_or(n)
    );
    Ok(())
}
