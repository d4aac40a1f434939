//! The SDK conformance step of `cargo xtask ci`: the vendors' own clients (the official
//! `unicat` SDK, `zoho-creator-sdk`, and seed 001's calls made with plain `requests`) run
//! against vendor-sim. When an SDK and a simulator disagree, the simulator is wrong.
//!
//! The Python packages go into a venv under `target/conformance-venv`, pinned below. A machine
//! without `python3 -m venv`, or without access to PyPI, skips the step and says so.

mod unicat;
mod zoho;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{DynResult, root};

/// The Python packages the step installs, pinned so a run is repeatable.
const PACKAGES: &[&str] = &["unicat==0.7.18", "zoho-creator-sdk==0.3.1", "requests"];

/// A Python virtual environment with the packages installed.
pub(crate) struct Venv {
    python: PathBuf,
}

impl Venv {
    /// Runs `tests/conformance/<script>` with this venv's Python and the given environment;
    /// a non-zero exit fails the step.
    pub(crate) fn run(&self, script: &str, env: &[(&str, String)]) -> DynResult {
        let path = root().join("tests/conformance").join(script);
        println!("  -> {script}");
        let status = Command::new(&self.python)
            .arg(&path)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(root())
            .status()?;
        if !status.success() {
            return Err(format!("conformance script {script} failed ({status})").into());
        }
        Ok(())
    }
}

/// Why the step cannot run on this machine, if it cannot.
fn missing_python() -> Option<String> {
    match Command::new("python3")
        .args(["-m", "venv", "--help"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(_) => Some("python3 has no venv module (Debian: apt-get install python3-venv)".into()),
        Err(_) => {
            Some("python3 is not installed (Debian: apt-get install python3 python3-venv)".into())
        }
    }
}

/// Creates the venv (once) and installs the pinned packages into it.
fn ensure_venv(dir: &Path) -> DynResult<Venv> {
    let python = dir.join("bin/python");
    let stamp = dir.join(".installed");
    let wanted = PACKAGES.join(" ");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(Venv { python });
    }
    let status = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(dir)
        .status()?;
    if !status.success() {
        return Err(format!("python3 -m venv {} failed ({status})", dir.display()).into());
    }
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES)
        .status()?;
    if !status.success() {
        return Err(format!("pip install {wanted} failed ({status})").into());
    }
    std::fs::write(&stamp, wanted)?;
    Ok(Venv { python })
}

/// Runs the step. Returns its duration, or `None` (after saying why) when it was skipped.
pub(crate) fn run() -> DynResult<Option<f64>> {
    println!("\n==> SDK conformance (official vendor clients against vendor-sim)");
    let started = Instant::now();
    if let Some(why) = missing_python() {
        println!("<== SDK conformance: SKIPPED: {why}");
        return Ok(None);
    }
    let venv = ensure_venv(&root().join("target/conformance-venv"))?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        unicat::run(&venv).await?;
        zoho::run(&venv).await
    })?;
    let secs = started.elapsed().as_secs_f64();
    println!("<== SDK conformance: ok in {secs:.1} s");
    Ok(Some(secs))
}
