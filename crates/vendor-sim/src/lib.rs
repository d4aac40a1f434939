//! Stateful simulators of the workspace's vendor APIs, served on loopback with seeded faults.
//!
//! Each simulator is a [`Simulator`]: an axum [`Router`](axum::Router) and a handle on its
//! state, started by [`SimBuilder::serve`] in-process on a random loopback port (tests, the
//! demo, benchmarks) or standalone (`cargo xtask sim`). A fault layer in front of every route injects throttling, server errors, connection resets before or
//! after the handler ran, delays, malformed and truncated bodies, under a seed, and counts what
//! each route saw so tests can prove "the handler ran once".
//!
//! ```
//! use vendor_sim::{Fault, FaultRule, SimBuilder, generic::{Generic, GenericConfig}};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (sim, generic) = SimBuilder::new("generic")
//!     .seed(7)
//!     .fault(FaultRule::new(Fault::Status(503)).path("/items/{id}").times(1))
//!     .serve::<Generic>(GenericConfig::default())
//!     .await?;
//! println!("serving on {}; {} items so far", sim.base_url(), generic.items().len());
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
pub use server::{SimBuilder, SimContext, SimHandle, Simulator};

/// Starts the [`generic`] simulator with `cfg`; returns the server and the handle on its state
/// (the same as `builder.serve::<Generic>(cfg)`).
pub async fn start_generic(
    builder: SimBuilder,
    cfg: generic::GenericConfig,
) -> std::io::Result<(SimHandle, generic::Generic)> {
    builder.serve::<generic::Generic>(cfg).await
}
