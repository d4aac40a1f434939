//! A user who depends on one vendor crate pulls in no other vendor's code: `cargo tree` of each
//! vendor crate's normal and build dependencies (all features on) names none of the other
//! vendor crates and not the simulators.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const VENDOR_CRATES: [&str; 4] = ["zefort-api", "zoho-bulk", "chakra-api", "unicat-api"];

/// Package names in the dependency tree of `package` (itself included).
fn tree(package: &str, features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "-p", package, "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn each_vendor_crate_pulls_in_no_other_vendor() {
    for vendor in VENDOR_CRATES {
        for features in [
            &[][..],
            &["--all-features"][..],
            &["--no-default-features"][..],
        ] {
            let deps = tree(vendor, features);
            assert!(deps.contains(vendor), "{vendor} missing from its own tree");
            assert!(
                deps.contains("bulk-common"),
                "{vendor} {features:?}: bulk-common missing"
            );
            for other in VENDOR_CRATES.iter().filter(|o| **o != vendor) {
                assert!(
                    !deps.contains(*other),
                    "{vendor} {features:?} pulls in {other}"
                );
            }
            for tool in ["vendor-sim", "bulk-cli", "axum", "httpmock"] {
                assert!(
                    !deps.contains(tool),
                    "{vendor} {features:?} pulls in {tool}"
                );
            }
        }
    }
}

#[test]
fn bulk_common_names_no_vendor() {
    let deps = tree("bulk-common", &["--all-features"]);
    for vendor in VENDOR_CRATES.iter().chain(&["vendor-sim"]) {
        assert!(!deps.contains(*vendor), "bulk-common pulls in {vendor}");
    }
}
