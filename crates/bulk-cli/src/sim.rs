//! The embedded simulators behind `--sim`: vendor-sim started in-process on a loopback port,
//! seeded with demo data, with jobs that take milliseconds.

use std::time::Duration;

use serde_json::json;
use vendor_sim::SimBuilder;
use vendor_sim::chakra::{ChakraConfig, ProcedureSpec};
use vendor_sim::unicat::UnicatConfig;
use vendor_sim::zefort::ZefortConfig;
use vendor_sim::zoho::ZohoConfig;

/// Zoho: `All_Orders` (120,000 rows: two bulk-read jobs) and `Small` (25 rows).
pub(crate) async fn zoho() -> anyhow::Result<(vendor_sim::SimHandle, ZohoConfig)> {
    let cfg = ZohoConfig {
        reports: vec![("All_Orders".into(), 120_000), ("Small".into(), 25)],
        job_duration: Duration::from_millis(50),
        creates_per_minute: 1000,
        downloads_per_minute: 1000,
        ..ZohoConfig::default()
    };
    let (sim, _) = vendor_sim::zoho::start(SimBuilder::new("zoho"), cfg.clone()).await?;
    Ok((sim, cfg))
}

/// The ChakraHQ token the simulator accepts.
pub(crate) const CHAKRA_TOKEN: &str = "sim-chakra-token";

/// ChakraHQ: procedure `lead` (primary key `lead_id`) with processes `L-1` to `L-1000`, states
/// NEW, IN_PROGRESS, QUALIFIED, DONE.
pub(crate) async fn chakra() -> anyhow::Result<vendor_sim::SimHandle> {
    let cfg = ChakraConfig {
        token: CHAKRA_TOKEN.into(),
        start_delay: Duration::from_millis(5),
        item_time: Duration::from_micros(20),
        ..ChakraConfig::default()
    };
    let (sim, chakra) = vendor_sim::chakra::start(SimBuilder::new("chakra"), cfg).await?;
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 1..=1000 {
        chakra.add_process("lead", json!({"lead_id": format!("L-{i}"), "city": "Pune"}));
    }
    Ok(sim)
}

/// Zefort: 120 contracts, every third tagged "contracts of service", the others "purchasing".
pub(crate) async fn zefort() -> anyhow::Result<(vendor_sim::SimHandle, ZefortConfig)> {
    let cfg = ZefortConfig {
        task_base: Duration::from_millis(30),
        task_per_contract: Duration::from_micros(200),
        ..ZefortConfig::default()
    };
    let (sim, zefort) = vendor_sim::zefort::start(SimBuilder::new("zefort"), cfg.clone()).await?;
    zefort.seed(120, "contracts of service", 3);
    Ok((sim, cfg))
}

/// Unicat: a catalogue `r-root` with folders `r-f1`..`r-f4` of 25 records each
/// (`r-f1-001`...; every fifth title says "obsolete").
pub(crate) async fn unicat() -> anyhow::Result<(vendor_sim::SimHandle, UnicatConfig)> {
    let cfg = UnicatConfig {
        queue_delay: Duration::from_millis(10),
        item_time: Duration::from_micros(200),
        ..UnicatConfig::default()
    };
    let (sim, _) = vendor_sim::unicat::start(SimBuilder::new("unicat"), cfg.clone()).await?;
    Ok((sim, cfg))
}
