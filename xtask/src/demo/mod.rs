//! `cargo xtask demo`: the main job. Each section runs one workflow end to end, against the
//! embedded simulators (or, for a vendor whose credentials are in the environment, against the
//! vendor), and reports one row of the closing summary table.

pub(crate) mod chakra;
pub(crate) mod generic;
mod progress;
mod unicat;
mod zefort;
mod zoho;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::DynResult;

/// One line of the closing summary.
#[derive(Debug, Clone)]
pub(crate) struct SummaryRow {
    /// Vendor or section name.
    pub(crate) vendor: &'static str,
    /// What the section ran against: `simulator` or the vendor's host.
    pub(crate) against: String,
    /// Items (records, rows, contracts, processes) moved or changed.
    pub(crate) items: u64,
    /// Vendor jobs submitted.
    pub(crate) jobs: u64,
    /// HTTP retries the clients made.
    pub(crate) retries: u64,
    /// Wall time of the section.
    pub(crate) time: Duration,
}

/// Whether the vendor's credentials (the variables its client's `from_env` reads) are in the
/// environment: then its section runs against the vendor.
pub(crate) fn live(vars: &[&str]) -> bool {
    vars.iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Whether `BULK_DEMO_LIVE_WRITE=1`: only then may a section change data at a vendor.
pub(crate) fn live_write() -> bool {
    std::env::var("BULK_DEMO_LIVE_WRITE").is_ok_and(|v| v == "1")
}

/// The host of a vendor client's base URL, for the summary table.
pub(crate) fn host(url: &bulk_common::BaseUrl) -> String {
    url.as_url().host_str().unwrap_or("vendor").to_owned()
}

/// Says what a section runs against, in the same words for every section.
pub(crate) fn announce(against: &str, what: &str) {
    println!("against: {against} ({what})");
}

type StartSection = fn() -> Pin<Box<dyn Future<Output = DynResult<SummaryRow>>>>;

/// The sections, in order. A vendor crate adds its own line here.
const SECTIONS: &[(&str, StartSection)] = &[
    ("shared machinery (generic simulator)", || {
        Box::pin(generic::run())
    }),
    ("Zefort: contract bulk update", || Box::pin(zefort::run())),
    (
        "Zoho: a report larger than one job, exported as one stream of rows",
        || Box::pin(zoho::run()),
    ),
    ("ChakraHQ: bulk process update", || Box::pin(chakra::run())),
    (
        "Unicat: bulk get and a bulk delete tracked through the sync feed",
        || Box::pin(unicat::run()),
    ),
];

pub(crate) async fn run() -> DynResult {
    let started = Instant::now();
    let mut rows = Vec::new();
    for (title, section) in SECTIONS {
        println!("\n=== {title} ===");
        rows.push(section().await?);
    }
    println!("\n=== summary ===");
    println!(
        "{:<10} {:<24} {:>9} {:>6} {:>8} {:>9}",
        "vendor", "against", "items", "jobs", "retries", "time"
    );
    for r in &rows {
        println!(
            "{:<10} {:<24} {:>9} {:>6} {:>8} {:>8.1}s",
            r.vendor,
            r.against,
            r.items,
            r.jobs,
            r.retries,
            r.time.as_secs_f64()
        );
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
