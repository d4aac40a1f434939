//! Stateful simulators of the workspace's vendor APIs, served on loopback with seeded faults.
//!
//! Each simulator is an axum [`Router`](axum::Router) served by [`SimBuilder`], in-process on a
//! random loopback port (tests, the demo, benchmarks) or standalone (`cargo xtask sim`). A fault
//! layer in front of every route injects throttling, server errors, connection resets before or
//! after the handler ran, delays, malformed and truncated bodies, under a seed, and counts what
//! each route saw so tests can prove "the handler ran once".
//!
//! ```
//! use vendor_sim::{Fault, FaultRule, SimBuilder, generic::{Generic, GenericConfig}};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sim = SimBuilder::new("generic")
//!     .seed(7)
//!     .fault(FaultRule::new(Fault::Status(503)).path("/items/{id}").times(1))
//!     .start(|ctx| Generic::new(ctx, GenericConfig::default()).router())
//!     .await?;
//! println!("serving on {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#[cfg(feature = "proptest")]
pub mod arbitrary;
pub mod canned;
pub mod chakra;
mod counters;
mod fault;
pub mod generic;
mod limits;
mod server;
pub mod unicat;
pub mod zefort;
pub mod zoho;

pub use counters::{Counters, RouteCounts};
pub use fault::{Fault, FaultRule, Faults, Schedule};
pub use limits::{LimitReply, ServerLimits};
pub use server::{SimBuilder, SimContext, SimHandle};

/// Starts the [`generic`] simulator with `cfg` and its handle.
pub async fn start_generic(
    builder: SimBuilder,
    cfg: generic::GenericConfig,
) -> std::io::Result<(SimHandle, generic::Generic)> {
    let mut handle = None;
    let sim = builder
        .start(|ctx| {
            let g = generic::Generic::new(ctx, cfg);
            let router = g.router();
            handle = Some(g);
            router
        })
        .await?;
    let generic = handle.ok_or_else(|| std::io::Error::other("simulator did not build"))?;
    Ok((sim, generic))
}
