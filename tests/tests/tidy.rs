//! Tidy checks over the workspace's source, run as ordinary tests (as rust-analyzer's
//! `tidy.rs` does): the shared runtime names no vendor, the four vendor crates keep one file
//! layout, and doc examples never `unwrap()`.

use std::fs;
use std::path::{Path, PathBuf};

const VENDORS: [&str; 4] = ["zefort", "zoho", "chakra", "unicat"];
const VENDOR_CRATES: [&str; 4] = ["zefort-api", "zoho-bulk", "chakra-api", "unicat-api"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every file under `dir` whose name ends with `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn report(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}:\n  {}\n",
        problems.join("\n  ")
    );
}

/// bulk-common is the vendor-free runtime: a vendor's rule belongs in its crate, behind one of
/// bulk-common's hooks (error decoders, OAuth decoders, route classes).
#[test]
fn bulk_common_names_no_vendor() {
    let root = workspace();
    let mut problems = Vec::new();
    for path in files(&root.join("crates/bulk-common/src"), ".rs") {
        for (n, line) in read(&path).lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = VENDORS.iter().find(|v| lower.contains(*v)) {
                problems.push(format!(
                    "{}:{}: names {v}: {}",
                    path.strip_prefix(&root).unwrap_or(&path).display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    report("crates/bulk-common/src names a vendor", &problems);
}

/// The four vendor crates have one shape: a reader who knows one knows where to look in the
/// others.
#[test]
fn vendor_crates_share_one_layout() {
    let root = workspace();
    let mut problems = Vec::new();
    for krate in VENDOR_CRATES {
        let dir = root.join("crates").join(krate);
        for module in ["client", "model", "job"] {
            let file = dir.join(format!("src/{module}.rs"));
            let folder = dir.join(format!("src/{module}/mod.rs"));
            if !file.is_file() && !folder.is_file() {
                problems.push(format!(
                    "{krate}: no src/{module}.rs (or src/{module}/mod.rs)"
                ));
            }
        }
        for test in ["shapes", "sim"] {
            if !dir.join(format!("tests/{test}.rs")).is_file() {
                problems.push(format!("{krate}: no tests/{test}.rs"));
            }
        }
    }
    report("a vendor crate lacks the common layout", &problems);
}

/// Doc examples are what users copy: they use `?`, never `unwrap()`.
#[test]
fn doc_examples_do_not_unwrap() {
    let root = workspace();
    let mut problems = Vec::new();
    let mut sources = files(&root.join("crates"), ".rs");
    sources.retain(|p| p.components().any(|c| c.as_os_str() == "src"));
    for path in sources {
        for (n, line) in read(&path).lines().enumerate() {
            let t = line.trim_start();
            let is_doc = t.starts_with("///") || t.starts_with("//!");
            if is_doc && t.contains(".unwrap()") {
                problems.push(format!(
                    "{}:{}: {}",
                    path.strip_prefix(&root).unwrap_or(&path).display(),
                    n + 1,
                    t
                ));
            }
        }
    }
    let mut readmes = files(&root.join("crates"), "README.md");
    readmes.push(root.join("README.md"));
    for path in readmes {
        let mut in_code = false;
        for (n, line) in read(&path).lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            } else if in_code && line.contains(".unwrap()") {
                problems.push(format!(
                    "{}:{}: {}",
                    path.strip_prefix(&root).unwrap_or(&path).display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    report("a doc example uses unwrap()", &problems);
}
