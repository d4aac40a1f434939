//! The `bulk` binary end to end: against its embedded simulators (`--sim`), and against a
//! simulator started here for the commands that span two processes (`jobs resume`). Jobs in
//! the simulators take milliseconds and the CLI looks every few milliseconds (`--poll-ms`), so
//! no test waits real seconds.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// The binary, isolated from the caller's environment and config file.
fn bulk(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("bulk").unwrap();
    cmd.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env("HOME", dir)
        .env_remove("ZOHO_CLIENT_ID")
        .env_remove("CHAKRA_TOKEN")
        .env_remove("ZEFORT_API_KEY")
        .env_remove("UNICAT_API_KEY")
        .timeout(Duration::from_secs(60));
    cmd
}

/// The `--json` summary: the last line of stdout.
fn json_summary(assert: assert_cmd::assert::Assert) -> Value {
    json_of(&assert.get_output().stdout)
}

fn json_of(output: &[u8]) -> Value {
    let text = String::from_utf8_lossy(output);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn zoho_export_writes_csv_and_jsonl_through_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let summary = json_summary(
        bulk(dir.path())
            .args([
                "--sim", "--json", "zoho", "export", "Small", "--out", "rows.csv",
            ])
            .assert()
            .success(),
    );
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["rows"], 25);
    let mut csv = csv::Reader::from_path(dir.path().join("rows.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..2], ["ID", "Email"]);
    assert_eq!(csv.records().map(Result::unwrap).count(), 25);
    assert!(!dir.path().join(".rows.csv.partial").exists());

    bulk(dir.path())
        .args([
            "--sim", "-q", "zoho", "export", "Small", "--fields", "ID,Email",
        ])
        .args(["--criteria", "Status == \"Open\"", "--out", "rows.jsonl"])
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
    let jsonl = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["Email", "ID"]
    );
}

#[test]
fn zoho_export_refuses_an_unknown_format_and_report_without_leaving_files() {
    let dir = tempfile::tempdir().unwrap();
    bulk(dir.path())
        .args(["--sim", "zoho", "export", "Small", "--out", "rows.xlsx"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot tell the format of rows.xlsx",
        ));
    bulk(dir.path())
        .args([
            "--sim",
            "zoho",
            "export",
            "No_Such_Report",
            "--out",
            "rows.csv",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "bulk: error: the export of No_Such_Report",
        ));
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| {
        let name = e.unwrap().file_name();
        name == "no-config" || !name.to_string_lossy().contains("rows")
    }));
}

const CSV: &str =
    "lead_id,state,data.score\nL-1,QUALIFIED,80\nL-2,NO_SUCH_STATE,10\nL-999999,DONE,5\nL-3,,\n";

#[test]
fn chakra_update_reports_partial_failure_with_a_failed_out_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("updates.csv"), CSV).unwrap();
    let summary = json_summary(
        bulk(dir.path())
            .args(["--sim", "--json", "chakra", "update", "lead", "updates.csv"])
            .args(["--key", "lead_id", "--failed-out", "failed.jsonl"])
            .assert()
            .code(2),
    );
    assert_eq!(summary["status"], "partial");
    assert_eq!(summary["items"], 4);
    assert_eq!(summary["succeeded"], 1);
    let failed = std::fs::read_to_string(dir.path().join("failed.jsonl")).unwrap();
    let failed: Vec<Value> = failed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.iter().any(|f| f["lead_id"] == "L-999999"));

    // The fixed items go through.
    std::fs::write(
        dir.path().join("fixed.jsonl"),
        "{\"lead_id\": \"L-2\", \"update\": {\"state\": \"DONE\"}}\n",
    )
    .unwrap();
    bulk(dir.path())
        .args(["--sim", "chakra", "update", "lead", "fixed.jsonl"])
        .assert()
        .success()
        .stderr(predicate::str::contains("1 applied"));
}

#[test]
fn chakra_update_stops_on_a_bad_file_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    bulk(dir.path())
        .args(["--sim", "chakra", "update", "lead", "missing.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot open missing.csv"));
    write("ragged.csv", "lead_id,state\nL-1,DONE\nL-2,DONE,extra\n");
    bulk(dir.path())
        .args([
            "--sim",
            "chakra",
            "update",
            "lead",
            "ragged.csv",
            "--key",
            "lead_id",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ragged.csv: malformed row"))
        .stderr(predicate::str::contains("line: 3"));
    write("typo.csv", "lead_id,stat\nL-1,DONE\n");
    bulk(dir.path())
        .args([
            "--sim", "chakra", "update", "lead", "typo.csv", "--key", "lead_id",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown columns"))
        .stderr(predicate::str::contains("`stat`"));
    // No identifier column: a lone unknown column is not taken for one.
    write("nokey.csv", "leadid,state\nL-1,DONE\n");
    bulk(dir.path())
        .args(["--sim", "chakra", "update", "lead", "nokey.csv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown columns: `leadid`"))
        .stderr(predicate::str::contains("--key"));
    write(
        "bad.jsonl",
        "{\"lead_id\": \"L-1\", \"update\": {\"state\": \"DONE\"}}\n{oops\n",
    );
    bulk(dir.path())
        .args(["--sim", "--json", "chakra", "update", "lead", "bad.jsonl"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("\"status\":\"error\""))
        .stderr(predicate::str::contains("bad.jsonl: line 2 is not JSON"));
}

#[test]
fn chakra_update_of_an_unknown_procedure_is_one_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..30)
        .map(|i| format!("{{\"lead_id\": \"L-{i}\", \"update\": {{\"state\": \"DONE\"}}}}\n"))
        .collect();
    std::fs::write(dir.path().join("u.jsonl"), &lines).unwrap();
    let out = bulk(dir.path())
        .args(["--sim", "chakra", "update", "no_such_procedure", "u.jsonl"])
        .args(["--chunk-size", "5", "--failed-out", "failed.jsonl"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing was applied"))
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(stderr.matches("HTTP 404").count(), 1, "{stderr}");
    assert!(!stderr.contains("  item "), "no per-item lines: {stderr}");
    // Every item is kept to send again, as it was in the file.
    let failed = std::fs::read_to_string(dir.path().join("failed.jsonl")).unwrap();
    assert_eq!(failed, lines);
}

#[test]
fn chakra_failed_out_keeps_unreadable_lines_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let input = "{\"lead_id\": \"L-1\", \"update\": {\"state\": \"DONE\"}}\n[1, 2]\n\n\"just text\"\n{\"lead_id\": \"L-2\", \"update\": {}}\n";
    std::fs::write(dir.path().join("u.jsonl"), input).unwrap();
    let summary = json_summary(
        bulk(dir.path())
            .args(["--sim", "--json", "chakra", "update", "lead", "u.jsonl"])
            .args(["--failed-out", "failed.jsonl"])
            .assert()
            .code(2),
    );
    assert_eq!(summary["succeeded"], 1);
    let failed = std::fs::read_to_string(dir.path().join("failed.jsonl")).unwrap();
    assert_eq!(
        failed,
        "[1, 2]\n\"just text\"\n{\"lead_id\": \"L-2\", \"update\": {}}\n"
    );
}

#[test]
fn chakra_failed_out_holds_items_never_sent_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg = vendor_sim::chakra::ChakraConfig {
        start_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let builder = vendor_sim::SimBuilder::new("chakra").fault(
        vendor_sim::FaultRule::new(vendor_sim::Fault::Status(401))
            .method("PATCH")
            .nth(2),
    );
    let (sim, chakra) = rt
        .block_on(vendor_sim::chakra::start(builder, cfg.clone()))
        .unwrap();
    chakra.add_procedure(vendor_sim::chakra::ProcedureSpec::new("lead", "lead_id"));
    for i in 0..12 {
        chakra
            .add_process("lead", serde_json::json!({"lead_id": format!("L-{i}")}))
            .unwrap();
    }
    let lines: Vec<String> = (0..12)
        .map(|i| format!("{{\"lead_id\": \"L-{i}\", \"update\": {{\"state\": \"DONE\"}}}}"))
        .collect();
    std::fs::write(dir.path().join("u.jsonl"), lines.join("\n") + "\n").unwrap();
    let out = bulk(dir.path())
        .env("CHAKRA_BASE_URL", sim.base_url())
        .env("CHAKRA_TOKEN", &cfg.token)
        .args(["--poll-ms", "5", "chakra", "update", "lead", "u.jsonl"])
        .args(["--chunk-size", "2", "--concurrency", "1"])
        .args(["--failed-out", "failed.jsonl"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(stderr.matches("HTTP 401").count(), 1, "{stderr}");
    let failed = std::fs::read_to_string(dir.path().join("failed.jsonl")).unwrap();
    assert_eq!(
        failed,
        lines[2..].join("\n") + "\n",
        "every item not applied"
    );
}

#[test]
fn zefort_update_and_tag_finish_their_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let summary = json_summary(
        bulk(dir.path())
            .args([
                "--sim",
                "--json",
                "zefort",
                "update",
                "--tag",
                "contracts of service",
            ])
            .args([
                "--end-date",
                "2023-02-15",
                "--status",
                "done",
                "--set",
                "priority=2",
            ])
            .assert()
            .success(),
    );
    assert_eq!(summary["backend_status"], "done");
    assert_eq!(summary["frontend_status"], "done", "acknowledged");

    bulk(dir.path())
        .args([
            "--sim", "zefort", "tag", "reviewed", "--search", "Service", "--create",
        ])
        .assert()
        .success();
    bulk(dir.path())
        .args([
            "--sim",
            "zefort",
            "tag",
            "no such tag",
            "--search",
            "Service",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no tag named \"no such tag\""));
    bulk(dir.path())
        .args([
            "--sim",
            "zefort",
            "update",
            "--contracts",
            "ct_1",
            "--end-date",
            "2023-02-30",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--end-date \"2023-02-30\" is not a date",
        ));
}

#[test]
fn unicat_get_delete_and_undelete() {
    let dir = tempfile::tempdir().unwrap();
    let got = bulk(dir.path())
        .args([
            "--sim",
            "-q",
            "unicat",
            "get",
            "--children",
            "r-f1",
            "--exclude",
            "r-f1-001",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<Value> = String::from_utf8_lossy(&got)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    assert!(lines.iter().all(|l| l["gid"] != "r-f1-001"));

    let summary = json_summary(
        bulk(dir.path())
            .args([
                "--sim", "--json", "unicat", "delete", "--search", "obsolete",
            ])
            .assert()
            .success(),
    );
    assert_eq!(summary["job_status"], "done");
    assert_eq!(summary["total"], 20, "{summary}");

    // Deleting a folder, then one of its records (already gone with the folder): that one
    // fails alone, a partial failure.
    let summary = json_summary(
        bulk(dir.path())
            .args([
                "--sim",
                "--json",
                "unicat",
                "delete",
                "--gids",
                "r-f1,r-f1-001",
            ])
            .assert()
            .code(2),
    );
    assert_eq!(summary["status"], "partial");
    assert_eq!(
        summary["failed"],
        serde_json::json!(["r-f1-001"]),
        "{summary}"
    );

    // Restoring live records only: every item fails, nothing was done.
    bulk(dir.path())
        .args(["--sim", "unicat", "undelete", "--gids", "r-f1-001,r-f1-002"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("2 of 2 items were not applied"));

    bulk(dir.path())
        .args(["--sim", "unicat", "delete"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("select records with"));
}

#[test]
fn usage_errors_exit_1_and_help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    bulk(dir.path())
        .args([
            "zoho",
            "export",
            "All_Orders",
            "--out",
            "x.csv",
            "--no-such-flag",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--no-such-flag"));
    bulk(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("partial failure"))
        .stdout(predicate::str::contains("bulk --sim zoho export"));
}

#[test]
fn missing_credentials_are_named_and_never_taken_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    bulk(dir.path())
        .args([
            "zefort",
            "update",
            "--contracts",
            "ct_1",
            "--status",
            "done",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ZEFORT_API_KEY is not set"));
    std::fs::write(dir.path().join("key"), "").unwrap();
    bulk(dir.path())
        .args([
            "--zefort-api-key-file",
            "key",
            "zefort",
            "update",
            "--contracts",
            "ct_1",
        ])
        .args(["--status", "done"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the secret file key is empty"));
}

#[test]
fn completions_and_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        bulk(dir.path())
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("bulk"));
    }
    bulk(dir.path())
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH bulk"));
}

/// A Zefort and a Unicat simulator served from this test's runtime, for commands that span two
/// processes.
struct Sims {
    rt: tokio::runtime::Runtime,
    zefort: vendor_sim::SimHandle,
    unicat: vendor_sim::SimHandle,
    unicat_cfg: vendor_sim::unicat::UnicatConfig,
}

fn sims() -> Sims {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (zefort, unicat, unicat_cfg) = rt.block_on(async {
        let cfg = vendor_sim::zefort::ZefortConfig {
            task_base: Duration::from_millis(30),
            ..Default::default()
        };
        let (zefort, state) = vendor_sim::zefort::start(vendor_sim::SimBuilder::new("zefort"), cfg)
            .await
            .unwrap();
        state.seed(12, "contracts of service", 3);
        let ucfg = vendor_sim::unicat::UnicatConfig {
            queue_delay: Duration::from_millis(10),
            item_time: Duration::from_micros(200),
            ..Default::default()
        };
        let (unicat, _) =
            vendor_sim::unicat::start(vendor_sim::SimBuilder::new("unicat"), ucfg.clone())
                .await
                .unwrap();
        (zefort, unicat, ucfg)
    });
    Sims {
        rt,
        zefort,
        unicat,
        unicat_cfg,
    }
}

#[test]
fn jobs_resume_finishes_a_job_submitted_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let s = sims();
    let key_file = dir.path().join("zefort.key");
    std::fs::write(&key_file, "sim-zefort-key-not-real\n").unwrap();
    let zefort = |cmd: &mut Command| {
        cmd.env("ZEFORT_BASE_URL", s.zefort.base_url())
            .arg("--zefort-api-key-file")
            .arg(&key_file)
            .args(["--poll-ms", "5"]);
    };
    let mut submit = bulk(dir.path());
    zefort(&mut submit);
    submit
        .args([
            "zefort",
            "update",
            "--tag",
            "contracts of service",
            "--status",
            "done",
        ])
        .args(["--no-wait", "--job-file", "fix.job"])
        .assert()
        .success()
        .stderr(predicate::str::contains("bulk jobs resume fix.job"));
    let job: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("fix.job")).unwrap())
            .unwrap();
    assert_eq!(job["vendor"], "zefort");
    assert_eq!(job["acknowledge"], true);
    let mut resume = bulk(dir.path());
    zefort(&mut resume);
    let summary = json_summary(
        resume
            .args(["--json", "jobs", "resume", "fix.job"])
            .assert()
            .success(),
    );
    assert_eq!(summary["frontend_status"], "done");
    assert!(
        !dir.path().join("fix.job").exists(),
        "removed once finished"
    );

    let unicat = |cmd: &mut Command| {
        cmd.env("UNICAT_BASE_URL", s.unicat.base_url())
            .env("UNICAT_PROJECT", &s.unicat_cfg.project)
            .env("UNICAT_API_KEY", &s.unicat_cfg.api_key)
            .args(["--poll-ms", "5"]);
    };
    let mut submit = bulk(dir.path());
    unicat(&mut submit);
    submit
        .args([
            "unicat",
            "delete",
            "--children",
            "r-f2",
            "--no-wait",
            "--job-file",
            "del.job",
        ])
        .assert()
        .success();
    let mut resume = bulk(dir.path());
    unicat(&mut resume);
    let summary = json_summary(
        resume
            .args(["--json", "jobs", "resume", "del.job"])
            .assert()
            .success(),
    );
    assert_eq!(summary["total"], 25);
    bulk(dir.path())
        .args(["jobs", "resume", "del.job"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read the job file del.job"));
    drop(s.rt);
}

#[test]
fn jobs_resume_continues_a_broken_zoho_export_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg = vendor_sim::zoho::ZohoConfig {
        reports: vec![("Big".into(), 130_000)],
        job_duration: Duration::from_millis(20),
        ..Default::default()
    };
    // The second job's download fails once: the export stops after the first job's rows.
    let result = "/api/bulk/v2/{owner}/{app}/report/{report}/read/{job_id}/result";
    let builder = vendor_sim::SimBuilder::new("zoho").fault(
        vendor_sim::FaultRule::new(vendor_sim::Fault::Status(400))
            .path(result)
            .nth(2),
    );
    let (sim, _) = rt
        .block_on(vendor_sim::zoho::start(builder, cfg.clone()))
        .unwrap();
    let zoho = |cmd: &mut Command| {
        cmd.env("ZOHO_CREATOR_URL", sim.base_url())
            .env("ZOHO_ACCOUNTS_URL", sim.base_url())
            .env("ZOHO_CLIENT_ID", &cfg.client_id)
            .env("ZOHO_CLIENT_SECRET", &cfg.client_secret)
            .env("ZOHO_REFRESH_TOKEN", &cfg.refresh_token)
            .env("ZOHO_OWNER", &cfg.owner)
            .env("ZOHO_APP", &cfg.app)
            .args(["--poll-ms", "5"]);
    };
    let mut first = bulk(dir.path());
    zoho(&mut first);
    first
        .args([
            "zoho", "export", "Big", "--fields", "ID", "--out", "ids.csv",
        ])
        .args(["--job-file", "ids.job"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("stopped after 100000 rows"))
        .stderr(predicate::str::contains("bulk jobs resume ids.job"));
    assert!(
        !dir.path().join("ids.csv").exists(),
        "no file that looks complete"
    );
    assert!(dir.path().join(".ids.csv.partial").exists());
    let job: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ids.job")).unwrap())
            .unwrap();
    assert_eq!(job["vendor"], "zoho");
    assert_eq!(job["checkpoint"]["rows_delivered"], 100_000);

    let mut resume = bulk(dir.path());
    zoho(&mut resume);
    let summary = json_summary(
        resume
            .args(["--json", "jobs", "resume", "ids.job"])
            .assert()
            .success(),
    );
    assert_eq!(summary["rows"], 130_000);
    assert_eq!(summary["resumed"], true);
    let mut csv = csv::Reader::from_path(dir.path().join("ids.csv")).unwrap();
    let ids: Vec<u64> = csv
        .records()
        .map(|r| r.unwrap()[0].parse::<u64>().unwrap())
        .collect();
    assert_eq!(ids.len(), 130_000, "every row once");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none repeated"
    );
    assert!(!dir.path().join("ids.job").exists());
    drop(sim);
}

#[test]
fn chakra_update_whose_job_the_vendor_fails_is_one_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg = vendor_sim::chakra::ChakraConfig {
        start_delay: Duration::from_millis(5),
        quirks: vendor_sim::chakra::ChakraQuirks {
            fail_jobs: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (sim, chakra) = rt
        .block_on(vendor_sim::chakra::start(
            vendor_sim::SimBuilder::new("chakra"),
            cfg.clone(),
        ))
        .unwrap();
    chakra.add_procedure(vendor_sim::chakra::ProcedureSpec::new("lead", "lead_id"));
    for i in 0..20 {
        chakra
            .add_process("lead", serde_json::json!({"lead_id": format!("L-{i}")}))
            .unwrap();
    }
    let lines: String = (0..20)
        .map(|i| format!("{{\"lead_id\": \"L-{i}\", \"update\": {{\"state\": \"DONE\"}}}}\n"))
        .collect();
    std::fs::write(dir.path().join("u.jsonl"), &lines).unwrap();
    let out = bulk(dir.path())
        .env("CHAKRA_BASE_URL", sim.base_url())
        .env("CHAKRA_TOKEN", &cfg.token)
        .args(["--poll-ms", "5", "chakra", "update", "lead", "u.jsonl"])
        .args(["--failed-out", "failed.jsonl"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(stderr.matches("bulk: error").count(), 1, "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    assert_eq!(stderr.matches("  item ").count(), 0, "{stderr}");
    let failed = std::fs::read_to_string(dir.path().join("failed.jsonl")).unwrap();
    assert_eq!(failed, lines);
}

#[test]
fn help_has_no_escaped_quotes_and_documents_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 12] = [
        &[],
        &["zoho", "export"],
        &["chakra", "update"],
        &["zefort", "update"],
        &["zefort", "tag"],
        &["unicat", "delete"],
        &["unicat", "undelete"],
        &["unicat", "get"],
        &["unicat"],
        &["jobs", "resume"],
        &["completions"],
        &["man"],
    ];
    for args in commands {
        for flag in ["-h", "--help"] {
            let out = bulk(dir.path()).args(args).arg(flag).assert().success();
            let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
            assert!(!text.contains("\\\""), "{args:?} {flag}: {text}");
        }
    }
    bulk(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("130"))
        .stdout(predicate::str::contains("-v, --verbose"));
}

#[test]
fn progress_reaches_a_non_terminal_stderr_as_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = bulk(dir.path())
        .args([
            "--sim",
            "--progress-ms",
            "5",
            "zoho",
            "export",
            "All_Orders",
        ])
        .args(["--out", "rows.csv"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("[00:0") && l.contains(" rows"))
        .collect();
    assert!(!lines.is_empty(), "{err}");
    // Plain text: no terminal control sequences.
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // And nothing at all with --quiet.
    bulk(dir.path())
        .args([
            "--sim",
            "-q",
            "--progress-ms",
            "5",
            "zoho",
            "export",
            "Small",
        ])
        .args(["--out", "small.csv"])
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
}

#[test]
fn verbose_logs_requests_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = bulk(dir.path())
        .args([
            "--sim",
            "-vv",
            "zefort",
            "update",
            "--tag",
            "contracts of service",
        ])
        .args(["--status", "done"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("reply received"), "{err}");
    assert!(err.contains("/api/contracts/bulk_update/"), "{err}");
    assert!(!err.contains("sim-zefort-key-not-real"), "{err}");
    // The key as sent (HTTP Basic, base64 of "key:").
    assert!(!err.contains("c2ltLXplZm9ydC1rZXktbm90LXJlYWw6"), "{err}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_says_how_to_finish_the_work() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bulk"))
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("no-config"))
        .args([
            "--sim",
            "--progress-ms",
            "5",
            "zoho",
            "export",
            "All_Orders",
        ])
        .args(["--out", "rows.csv", "--job-file", "rows.job"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The first progress line shows the command is running (and its handler installed).
    let mut line = String::new();
    while !line.starts_with('[') {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no progress line");
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("bulk: interrupted."), "{rest}");
    assert!(
        rest.contains("bulk jobs resume rows.job") || rest.contains("run the same command again"),
        "{rest}"
    );
    assert!(!dir.path().join("rows.csv").exists());
}
