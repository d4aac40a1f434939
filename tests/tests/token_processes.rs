//! Several processes sharing one file token store refresh once between them.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use vendor_sim::generic::GenericConfig;
use vendor_sim::{SimBuilder, start_generic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_with_one_file_store_refresh_once() {
    let (sim, _) = start_generic(SimBuilder::new("accounts"), GenericConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/oauth/token", sim.base_url());
    let children: Vec<_> = (0..3)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_token-worker"))
                .args([url.as_str(), dir.path().to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut fingerprints = Vec::new();
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fingerprints.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    assert_eq!(sim.counters().get("oauth.refreshes"), 1, "{fingerprints:?}");
    assert!(fingerprints.iter().all(|f| f == &fingerprints[0]));
}
