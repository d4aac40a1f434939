//! zoho: the vendor's own client against vendor-sim's zoho simulator.
//!
//! - `zoho_oauth.py`: the `zoho-creator-sdk`'s own OAuth refresh (`OAuth2AuthHandler`) against
//!   the simulator's accounts endpoint, and its token accepted by the bulk endpoints;
//! - `zoho_bulk_read.py`: seed 001's bulk-read calls with plain `requests`, in both API forms
//!   (v2 and v2.1): create, status, download the ZIP, parse the CSV, follow the record cursor
//!   over several jobs.

use std::time::Duration;

use vendor_sim::SimBuilder;
use vendor_sim::zoho::ZohoConfig;

use crate::DynResult;
use crate::conformance::Venv;

/// The report the scripts read: 25 rows, 10 per job, so three jobs chained by cursors.
const REPORT: &str = "Orders";
const ROWS: u64 = 25;
const CAP: u64 = 10;

/// Starts the simulator and runs the zoho conformance scripts against it.
pub(crate) async fn run(venv: &Venv) -> DynResult {
    let cfg = ZohoConfig {
        reports: vec![(REPORT.into(), ROWS)],
        job_row_cap: Some(CAP),
        // Real time here: short jobs, and room for both API forms' jobs within a minute.
        job_duration: Duration::from_millis(500),
        creates_per_minute: 60,
        downloads_per_minute: 60,
        ..ZohoConfig::default()
    };
    let (sim, _) = vendor_sim::zoho::start(SimBuilder::new("zoho"), cfg.clone()).await?;
    let env = [
        ("ZOHO_SIM_URL", sim.base_url()),
        ("ZOHO_CLIENT_ID", cfg.client_id.clone()),
        ("ZOHO_CLIENT_SECRET", cfg.client_secret.clone()),
        ("ZOHO_REFRESH_TOKEN", cfg.refresh_token.clone()),
        ("ZOHO_OWNER", cfg.owner.clone()),
        ("ZOHO_APP", cfg.app.clone()),
        ("ZOHO_REPORT", REPORT.to_owned()),
        ("ZOHO_REPORT_ROWS", ROWS.to_string()),
        ("ZOHO_JOB_ROW_CAP", CAP.to_string()),
    ];
    // The scripts block; the simulator keeps serving on the runtime's other threads.
    let result = tokio::task::block_in_place(|| {
        venv.run("zoho_oauth.py", &env)?;
        venv.run("zoho_bulk_read.py", &env)
    });
    sim.shutdown().await;
    result
}
