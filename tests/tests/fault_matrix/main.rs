//! The end-to-end fault matrix: each vendor's seed workflow against its simulator under each
//! kind of fault, and the concurrency checks of token refresh and login.
//!
//! Every cell is one test named `matrix_<vendor>_<fault>`, so `cargo test` output reads as the
//! matrix (the table with the expected outcomes is in `tests/README.md`). Each cell runs on
//! Tokio's paused clock with the simulator in-process, inside a bound of virtual time, and
//! asserts one exact outcome: the complete, correct result read back from the simulator's
//! state, or a typed error naming the cause. The simulators' counters prove that no job was
//! created twice.

#![allow(clippy::unwrap_used)]

mod chakra;
mod concurrency;
mod unicat;
mod zefort;
mod zoho;

use std::future::Future;
use std::time::Duration;

use vendor_sim::{Fault, FaultRule};

/// The most virtual time any cell may take: every workflow either finishes or fails well
/// within it, so hitting it means a hang.
const CELL_BOUND: Duration = Duration::from_secs(30 * 60);

/// Runs one cell under the virtual-time bound; a cell that exceeds it fails the test.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    match tokio::time::timeout(CELL_BOUND, work).await {
        Ok(out) => out,
        Err(_) => panic!("the cell did not finish within {CELL_BOUND:?} of virtual time"),
    }
}

/// A rule for one route (`"POST /path/{param}"`).
fn on(route: &str, fault: Fault) -> FaultRule {
    let (method, path) = route.split_once(' ').unwrap();
    FaultRule::new(fault).method(method).path(path)
}

/// 429 with `Retry-After: 3`.
fn throttled() -> Fault {
    Fault::TooManyRequests {
        retry_after: Some("3".into()),
    }
}

/// 429 without `Retry-After`, on every request: a throttle that does not lift.
fn throttled_for_good() -> Fault {
    Fault::TooManyRequests { retry_after: None }
}

/// A 500, a 502 and a 503 on the first three requests of `route`.
fn server_errors(route: &str) -> Vec<FaultRule> {
    [500, 502, 503]
        .into_iter()
        .enumerate()
        .map(|(i, s)| on(route, Fault::Status(s)).nth(i as u32 + 1))
        .collect()
}

/// A reply slower than the client's 60 s request timeout.
fn slow() -> Fault {
    Fault::Delay(Duration::from_secs(90))
}

/// Seeded runs per vendor under the mixed fault rate; at least 95 % must end with correct data
/// and no unknown item, and none with a wrong success.
const MIXED_RUNS: u64 = 20;

/// The chance of each fault kind on every request in the mixed cells: about 10 % each, as in
/// the outside check that found the gaps (429, 500, 503, resets before and after the handler,
/// slow replies, malformed 200 replies, truncated bodies).
const MIXED_RATE: f64 = 0.10;

/// Every fault kind at once, each with probability `rate` on every request, drawn from the
/// simulator's seeded generator (set the seed with `SimBuilder::seed`).
fn mixed_faults(rate: f64) -> Vec<FaultRule> {
    [
        throttled(),
        Fault::Status(500),
        Fault::Status(503),
        Fault::ResetBeforeHandler,
        Fault::ResetAfterHandler,
        Fault::Delay(Duration::from_secs(90)),
        Fault::MalformedBody,
        Fault::TruncatedBody,
    ]
    .into_iter()
    .map(|f| FaultRule::new(f).probability(rate))
    .collect()
}
