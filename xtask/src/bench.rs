//! `cargo xtask bench [NAME]`: benchmarks measured side by side in one run, printed as a table
//! and merged into `target/bench/results.json` (a JSON list of
//! `{"name", "metric", "value", "unit", "target", "holds"}`; rows of other benchmarks are kept).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bulk_common::{HttpClient, Method};
use serde::{Deserialize, Serialize};

use crate::{DynResult, cargo, root};

/// One measured value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    name: String,
    metric: String,
    value: f64,
    unit: String,
    /// The target, such as `"<= 1.10"`, or `null` for an informational row.
    target: Option<String>,
    holds: bool,
}

impl Row {
    fn info(name: &str, metric: &str, value: f64, unit: &str) -> Self {
        Row {
            name: name.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            target: None,
            holds: true,
        }
    }
}

const BENCHES: &[&str] = &["overhead"];

pub(crate) fn run(name: Option<&str>) -> DynResult {
    if let Some(n) = name
        && !BENCHES.contains(&n)
    {
        return Err(format!("unknown benchmark {n:?}; known: {}", BENCHES.join(", ")).into());
    }
    // Timings of an unoptimised build mean nothing: run the optimised build of this command.
    if cfg!(debug_assertions) {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "bench",
        ]);
        if let Some(n) = name {
            cmd.arg(n);
        }
        let status = cmd.status()?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("benchmarks failed ({status})").into())
        };
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    if name.is_none_or(|n| n == "overhead") {
        rows.extend(rt.block_on(overhead())?);
    }
    print_table(&rows);
    let path = write_results(&rows)?;
    println!("\nwritten: {}", path.display());
    Ok(())
}

const REQUESTS: usize = 5_000;
const ROUNDS: usize = 5;

/// The same small GETs through a bare `reqwest::Client` and through `bulk_common::HttpClient`,
/// alternating rounds so both see the same machine state; the ratio of the medians.
async fn overhead() -> DynResult<Vec<Row>> {
    let (sim, _g) = vendor_sim::start_generic(
        vendor_sim::SimBuilder::new("bench"),
        vendor_sim::generic::GenericConfig::default(),
    )
    .await?;
    let base = sim.base_url();
    let url = format!("{base}/items/1");
    let bare = reqwest::Client::new();
    let ours = HttpClient::builder("bench/0").base_url(&base).build()?;

    let bare_run = |n: usize| {
        let bare = bare.clone();
        let url = url.clone();
        async move {
            let t = Instant::now();
            for _ in 0..n {
                let r = bare.get(&url).send().await?.error_for_status()?;
                std::hint::black_box(r.bytes().await?);
            }
            Ok::<Duration, reqwest::Error>(t.elapsed())
        }
    };
    let ours_run = |n: usize| {
        let ours = ours.clone();
        async move {
            let t = Instant::now();
            for _ in 0..n {
                let r = ours.request(Method::Get, "/items/1").send().await?;
                std::hint::black_box(r.into_body());
            }
            Ok::<Duration, bulk_common::Error>(t.elapsed())
        }
    };
    // Warm both connection pools and the allocator.
    bare_run(500).await?;
    ours_run(500).await?;
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first so neither always gets the warmer machine.
        if round % 2 == 0 {
            b.push(bare_run(REQUESTS).await?);
            o.push(ours_run(REQUESTS).await?);
        } else {
            o.push(ours_run(REQUESTS).await?);
            b.push(bare_run(REQUESTS).await?);
        }
    }
    sim.shutdown().await;
    let (bm, om) = (median(&mut b), median(&mut o));
    let ratio = om.as_secs_f64() / bm.as_secs_f64();
    let per_req = |d: Duration| d.as_secs_f64() * 1e6 / REQUESTS as f64;
    Ok(vec![
        Row::info(
            "overhead",
            "bare_reqwest_median_run",
            bm.as_secs_f64() * 1e3,
            "ms",
        ),
        Row::info(
            "overhead",
            "bulk_common_median_run",
            om.as_secs_f64() * 1e3,
            "ms",
        ),
        Row::info("overhead", "bare_reqwest_per_request", per_req(bm), "us"),
        Row::info("overhead", "bulk_common_per_request", per_req(om), "us"),
        Row {
            name: "overhead".into(),
            metric: "ratio_bulk_common_to_bare".into(),
            value: (ratio * 1000.0).round() / 1000.0,
            unit: "x".into(),
            target: Some("<= 1.10".into()),
            holds: ratio <= 1.10,
        },
    ])
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<10} {:<28} {:>12} {:<5} {:<9} holds",
        "bench", "metric", "value", "unit", "target"
    );
    println!("{}", "-".repeat(74));
    for r in rows {
        println!(
            "{:<10} {:<28} {:>12.3} {:<5} {:<9} {}",
            r.name,
            r.metric,
            r.value,
            r.unit,
            r.target.as_deref().unwrap_or("-"),
            if r.holds { "yes" } else { "NO" }
        );
    }
}

/// Merges `rows` into `target/bench/results.json`, replacing rows of the same name and metric.
fn write_results(rows: &[Row]) -> DynResult<PathBuf> {
    let dir = root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("results.json");
    let mut all: Vec<Row> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    all.retain(|old| {
        !rows
            .iter()
            .any(|new| new.name == old.name && new.metric == old.metric)
    });
    all.extend(rows.iter().cloned());
    std::fs::write(&path, serde_json::to_vec_pretty(&all)?)?;
    Ok(path)
}
