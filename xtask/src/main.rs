//! Workspace automation, run as `cargo xtask <command>`:
//!
//! - `ci`: formatting, lints, tests, docs, feature, MSRV and package checks, exactly as CI
//!   runs them;
//! - `demo`: the main job, against the embedded simulators;
//! - `sim`: serve the simulators on loopback and print their URLs;
//! - `bench [NAME]`: benchmarks, printed as a table and written to `target/bench/results.json`.

#![allow(clippy::print_stdout)]

mod bench;
mod conformance;
mod demo;
mod release;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

type DynResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci            fmt --check, clippy -D warnings, tests, docs, SDK conformance, feature/MSRV/package checks (what CI runs)
  demo          the main job against the embedded simulators
  sim [--port N]  serve the simulators on loopback until Ctrl-C
  bench [NAME]  run benchmarks (all, or NAME: overhead, chakra, zoho, poll, limits); writes target/bench/results.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => runtime().and_then(|rt| rt.block_on(demo::run())),
        Some("sim") => runtime().and_then(|rt| rt.block_on(sim(&args[1..]))),
        Some("bench") => bench::run(args.get(1).map(String::as_str)),
        // The SDK conformance step alone (hidden; `ci` runs it too).
        Some("__conformance") => conformance::run().map(|_| ()),
        // The benchmarks' child process (peak memory is measured per process).
        Some("__zoho-consume") => bench::zoho::consume(&args[1..]),
        Some("__chakra-bare") => bench::chakra::bare(&args[1..]),
        Some("__fleet-worker") => bench::limits::fleet_worker(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> DynResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs one step, failing the whole command if it fails.
fn step(name: &str, cmd: &mut Command) -> DynResult<f64> {
    println!("\n==> {name}");
    let started = Instant::now();
    let status = cmd.status()?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("step '{name}' failed ({status}) after {secs:.1} s").into());
    }
    println!("<== {name}: ok in {secs:.1} s");
    Ok(secs)
}

fn ci() -> DynResult {
    let started = Instant::now();
    let timings = [
        (
            "fmt",
            step(
                "cargo fmt --check",
                cargo().args(["fmt", "--all", "--", "--check"]),
            )?,
        ),
        (
            "clippy",
            step(
                "cargo clippy (all targets, warnings denied)",
                cargo().args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ]),
            )?,
        ),
        (
            "test",
            step(
                "cargo test --workspace",
                cargo().args(["test", "--workspace", "--locked"]),
            )?,
        ),
        (
            "doc",
            step(
                "cargo doc (warnings denied)",
                cargo()
                    .args(["doc", "--workspace", "--no-deps", "--locked"])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )?,
        ),
        ("sdk", conformance::run()?.unwrap_or_default()),
        ("features", release::features()?),
        ("msrv", release::msrv()?),
        ("package", release::package()?),
    ];
    println!(
        "\nci: all steps passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (name, secs) in timings {
        println!("  {name:<8} {secs:>7.1} s");
    }
    Ok(())
}

/// A simulator started by `cargo xtask sim`, with the environment that points a client at it.
struct Served {
    handle: vendor_sim::SimHandle,
    env: Vec<(&'static str, String)>,
}

async fn sim(args: &[String]) -> DynResult {
    let port: u16 = match args {
        [] => 0,
        [flag, value] if flag == "--port" => value.parse()?,
        _ => return Err(format!("unexpected arguments {args:?}\n{USAGE}").into()),
    };
    // With --port N the simulators take N, N+1, ... in the order below; else random ports.
    let addr =
        |i: u16| std::net::SocketAddr::from(([127, 0, 0, 1], if port == 0 { 0 } else { port + i }));
    let mut served = Vec::new();
    let (generic, _) = vendor_sim::start_generic(
        vendor_sim::SimBuilder::new("generic").addr(addr(0)),
        vendor_sim::generic::GenericConfig::default(),
    )
    .await?;
    served.push(Served {
        env: vec![],
        handle: generic,
    });
    // Vendor simulators: one entry each, added with their crates.
    let unicat_cfg = vendor_sim::unicat::UnicatConfig {
        rotate_every: 25,
        ..Default::default()
    };
    let (unicat, _) = vendor_sim::unicat::start(
        vendor_sim::SimBuilder::new("unicat").addr(addr(served.len() as u16)),
        unicat_cfg.clone(),
    )
    .await?;
    served.push(Served {
        env: vec![
            ("UNICAT_BASE_URL", unicat.base_url()),
            ("UNICAT_PROJECT", unicat_cfg.project),
            ("UNICAT_API_KEY", unicat_cfg.api_key),
        ],
        handle: unicat,
    });
    let zoho_cfg = vendor_sim::zoho::ZohoConfig::default();
    let (zoho, _) = vendor_sim::zoho::start(
        vendor_sim::SimBuilder::new("zoho").addr(addr(served.len() as u16)),
        zoho_cfg.clone(),
    )
    .await?;
    served.push(Served {
        env: vec![
            ("ZOHO_CREATOR_URL", zoho.base_url()),
            ("ZOHO_ACCOUNTS_URL", zoho.base_url()),
            ("ZOHO_CLIENT_ID", zoho_cfg.client_id),
            ("ZOHO_CLIENT_SECRET", zoho_cfg.client_secret),
            ("ZOHO_REFRESH_TOKEN", zoho_cfg.refresh_token),
            ("ZOHO_OWNER", zoho_cfg.owner),
            ("ZOHO_APP", zoho_cfg.app),
        ],
        handle: zoho,
    });
    let (zefort, zefort_state) = vendor_sim::zefort::start(
        vendor_sim::SimBuilder::new("zefort").addr(addr(served.len() as u16)),
        vendor_sim::zefort::ZefortConfig::default(),
    )
    .await?;
    zefort_state.seed(120, "contracts of service", 3);
    served.push(Served {
        env: vec![
            ("ZEFORT_BASE_URL", zefort.base_url()),
            (
                "ZEFORT_API_KEY",
                vendor_sim::zefort::ZefortConfig::default().api_key,
            ),
        ],
        handle: zefort,
    });
    let chakra = demo::chakra::serve(addr(served.len() as u16)).await?;
    served.push(Served {
        env: vec![
            ("CHAKRA_BASE_URL", chakra.base_url()),
            ("CHAKRA_TOKEN", demo::chakra::SIM_TOKEN.into()),
        ],
        handle: chakra,
    });

    println!("simulators listening on loopback (Ctrl-C to stop):");
    for s in &served {
        println!("  {:<10} {}", s.handle.name(), s.handle.base_url());
        for (k, v) in &s.env {
            println!("      export {k}={v}");
        }
    }
    tokio::signal::ctrl_c().await?;
    println!("\nrequests seen:");
    for s in served {
        for (route, counts) in s.handle.counters().routes() {
            println!(
                "  {:<10} {route:<40} {:>6}",
                s.handle.name(),
                counts.received
            );
        }
        s.handle.shutdown().await;
    }
    Ok(())
}
