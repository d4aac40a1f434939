//! unicat: the vendor's own client against vendor-sim's unicat simulator.

use crate::DynResult;
use crate::conformance::Venv;

/// Starts the simulator and runs the unicat conformance scripts against it.
pub(crate) async fn run(_venv: &Venv) -> DynResult {
    Ok(())
}
