//! The release checks of `cargo xtask ci`: feature combinations, the declared MSRV, and
//! `cargo package` of every publishable crate.

use serde::Deserialize;

use crate::{DynResult, cargo, step};

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    version: String,
    rust_version: Option<String>,
    /// `None`: publishable anywhere; `Some([])`: `publish = false`.
    publish: Option<Vec<String>>,
    features: std::collections::BTreeMap<String, Vec<String>>,
}

fn metadata() -> DynResult<Metadata> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--locked",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The workspace's publishable packages.
fn publishable(meta: &Metadata) -> Vec<&Package> {
    meta.packages
        .iter()
        .filter(|p| meta.workspace_members.contains(&p.id))
        .filter(|p| p.publish.as_ref().is_none_or(|to| !to.is_empty()))
        .collect()
}

fn parse_version(v: &str) -> Vec<u64> {
    v.split('.').filter_map(|part| part.parse().ok()).collect()
}

/// Every publishable crate builds without default features (no TLS stack chosen: the caller
/// picks one) and with native TLS instead of rustls.
pub(crate) fn features() -> DynResult<f64> {
    let meta = metadata()?;
    let mut secs = 0.0;
    for package in publishable(&meta) {
        if !package.features.contains_key("rustls") {
            continue;
        }
        let name = &package.name;
        secs += step(
            &format!("{name}: --no-default-features"),
            cargo().args(["check", "--locked", "-p", name, "--no-default-features"]),
        )?;
        if package.features.contains_key("native-tls") {
            secs += step(
                &format!("{name}: native TLS instead of rustls"),
                cargo().args([
                    "check",
                    "--locked",
                    "-p",
                    name,
                    "--no-default-features",
                    "--features",
                    "native-tls",
                ]),
            )?;
        }
    }
    Ok(secs)
}

/// The MSRV check that this machine allows. Only one toolchain can be installed here, so the
/// workspace cannot be built with the declared `rust-version` itself. Instead: every package in
/// the lock file (all features) must declare a `rust-version` no newer than ours (Cargo's
/// MSRV-aware resolver, `resolver = "3"`, picks such versions), and clippy's `incompatible_msrv`
/// lint, denied in the clippy step, rejects standard-library APIs newer than ours.
pub(crate) fn msrv() -> DynResult<f64> {
    println!("\n==> MSRV: dependencies' rust-version against ours");
    let started = std::time::Instant::now();
    let meta = metadata()?;
    let ours = publishable(&meta)
        .iter()
        .filter_map(|p| p.rust_version.clone())
        .max_by_key(|v| parse_version(v))
        .ok_or("no publishable crate declares rust-version")?;
    let too_new: Vec<String> = meta
        .packages
        .iter()
        .filter_map(|p| {
            let theirs = p.rust_version.as_deref()?;
            (parse_version(theirs) > parse_version(&ours))
                .then(|| format!("{} {} needs Rust {theirs}", p.name, p.version))
        })
        .collect();
    if !too_new.is_empty() {
        return Err(format!(
            "dependencies newer than our rust-version {ours}:\n  {}",
            too_new.join("\n  ")
        )
        .into());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "<== MSRV: {} packages, none needs more than Rust {ours} ({secs:.1} s)",
        meta.packages.len()
    );
    Ok(secs)
}

/// `cargo package` of every publishable crate, verified: each is built from its packaged sources
/// against the others' packages, as crates.io would see them.
pub(crate) fn package() -> DynResult<f64> {
    let meta = metadata()?;
    let mut cmd = cargo();
    cmd.args(["package", "--locked"]);
    for package in publishable(&meta) {
        cmd.args(["-p", &package.name]);
    }
    step("cargo package (publishable crates, verified)", &mut cmd)
}
