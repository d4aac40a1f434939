//! unicat: the vendor's own client (the `unicat` SDK) against vendor-sim's unicat simulator.
//!
//! `tests/conformance/unicat_sdk.py` connects, walks a search over several pages with the
//! SDK's own `page.size` / `page.cursor` loop, deletes and restores a folder's records with
//! jobs tracked by the SDK's tracker through the sync feed, all while the simulator rotates
//! the JWT every few requests. Afterwards the simulator's counters must show one login, many
//! rotations, no refused JWT and exactly the two jobs.

use std::time::Duration;

use vendor_sim::SimBuilder;
use vendor_sim::unicat::UnicatConfig;

use crate::DynResult;
use crate::conformance::Venv;

/// Records per folder: 4 folders of 80 make 320 products, four pages of the SDK's 100.
const PER_FOLDER: usize = 80;

/// Starts the simulator and runs the unicat conformance script against it.
pub(crate) async fn run(venv: &Venv) -> DynResult {
    let cfg = UnicatConfig {
        per_folder: PER_FOLDER,
        // Small, so the JWT rotates many times during the script.
        rotate_every: 3,
        queue_delay: Duration::from_millis(50),
        item_time: Duration::from_millis(1),
        ..UnicatConfig::default()
    };
    let (sim, unicat) = vendor_sim::unicat::start(SimBuilder::new("unicat"), cfg.clone()).await?;
    let env = [
        ("UNICAT_BASE_URL", sim.base_url()),
        ("UNICAT_PROJECT", cfg.project.clone()),
        ("UNICAT_API_KEY", cfg.api_key.clone()),
        ("EXPECT_RECORDS", (4 * PER_FOLDER).to_string()),
        ("PER_FOLDER", PER_FOLDER.to_string()),
    ];
    // The script blocks this thread; the simulator runs on the runtime's other workers.
    tokio::task::block_in_place(|| venv.run("unicat_sdk.py", &env))?;

    let counters = sim.counters();
    let (logins, rotations, refused) = (
        counters.get("auth.logins"),
        counters.get("auth.rotations"),
        counters.get("auth.refused"),
    );
    if logins != 1 || rotations < 5 || refused != 0 {
        return Err(format!(
            "unicat: the SDK logged in {logins} time(s), saw {rotations} JWT rotation(s) and \
             {refused} refused JWT(s); expected 1, at least 5, and 0"
        )
        .into());
    }
    let jobs = unicat.job_tokens().len();
    if jobs != 2 || counters.get("jobs.done") != 2 {
        return Err(format!("unicat: {jobs} job(s) created, expected 2 done").into());
    }
    println!(
        "  unicat: SDK ok ({} bulk-get pages, {rotations} JWT rotations, {} sync reads)",
        counters.get("bulk.get.pages"),
        counters.get("sync.gets")
    );
    sim.shutdown().await;
    Ok(())
}
