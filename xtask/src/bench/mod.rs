//! `cargo xtask bench [NAME]`: benchmarks measured side by side in one run, printed as a table
//! and merged into `target/bench/results.json` (a JSON list of
//! `{"name", "metric", "value", "unit", "target", "holds"}`; rows of other benchmarks are kept).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::{DynResult, cargo, root};

/// One measured value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    /// The target, such as `"<= 1.10"`, or `null` for an informational row.
    pub(crate) target: Option<String>,
    pub(crate) holds: bool,
}

impl Row {
    /// A row with a target; `holds` says whether the value meets it.
    pub(crate) fn target(
        name: &str,
        metric: &str,
        value: f64,
        unit: &str,
        target: &str,
        holds: bool,
    ) -> Self {
        Row {
            name: name.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            target: Some(target.into()),
            holds,
        }
    }

    /// An informational row.
    pub(crate) fn info(name: &str, metric: &str, value: f64, unit: &str) -> Self {
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

pub(crate) mod chakra;
pub(crate) mod limits;
mod overhead;
mod poll;
pub(crate) mod zoho;

/// The benchmarks: a name for `cargo xtask bench NAME`, and what runs it. A vendor crate adds
/// its own line here.
const BENCHES: &[(&str, StartBench)] = &[
    ("overhead", || Box::pin(overhead::run())),
    ("chakra", || Box::pin(chakra::run())),
    ("zoho", || Box::pin(zoho::run())),
    ("poll", || Box::pin(poll::run())),
    ("limits", || Box::pin(limits::run())),
];

type StartBench = fn() -> Pin<Box<dyn Future<Output = DynResult<Vec<Row>>>>>;

pub(crate) fn run(name: Option<&str>) -> DynResult {
    if let Some(n) = name
        && !BENCHES.iter().any(|(b, _)| *b == n)
    {
        let known: Vec<&str> = BENCHES.iter().map(|(b, _)| *b).collect();
        return Err(format!("unknown benchmark {n:?}; known: {}", known.join(", ")).into());
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
    for (bench, start) in BENCHES {
        if name.is_none_or(|n| n == *bench) {
            println!("running {bench} ...");
            rows.extend(rt.block_on(start())?);
        }
    }
    print_table(&rows);
    let path = write_results(&rows)?;
    println!("\nwritten: {}", path.display());
    Ok(())
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
