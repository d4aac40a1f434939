//! `chakra`: 100,000 process updates streamed from a JSONL file into the ChakraHQ simulator with
//! 50 ms added to every request.
//!
//! - The bulk update runs in a child process, the `update_processes` example (release build), so its
//!   peak resident set is the client's alone; the simulator runs here. This process measures the
//!   child from outside: its `VmHWM` from `/proc/<pid>/status`, read every 5 ms while it runs,
//!   and its CPU time from `/proc/<pid>/stat` once it has exited and before it is reaped. It
//!   runs once over 10,000 and once over 100,000 lines: the ratio of the peaks shows whether
//!   memory depends on input size (target <= 1.25).
//! - Throughput of the 100,000-line run (the child's own timing of the bulk update, from the
//!   first item read to the report) as a ratio to a bare `reqwest` client replaying the same
//!   request schedule (chunks of 1,000 lines, 4 PATCHes in flight and at most 16 chunks pending,
//!   each PATCH followed by status requests 50 ms apart until the job is done) against the same
//!   simulator in the same run, also in a child process (`xtask __chakra-bare`), so the ratio
//!   measures the client's overhead, not the machine's load (target >= 0.85). The old ideal
//!   (concurrency × chunk ÷ latency, which counts neither the status requests nor the CPU the
//!   simulator shares the two cores with) is kept as an informational row.
//! - Side by side, in this process, the sequential baseline: one chunk at a time, each submitted,
//!   waited for and checked before the next, through the crate's step functions.
//!
//! Settings: chunk 1,000, concurrency 4, default 16 chunks sent-or-tracked at once, first poll
//! after 50 ms (the library default is 500 ms, meant for the real vendor). CPU rows: the child's
//! user + system time, and this process's (the simulator's) during the 100k run.
//!
//! Measured on a shared 2-core machine the ratio to the old ideal was 0.63 to 0.77 from run to
//! run without any code change (hence the bare-client denominator): each 1,000-item request
//! costs about 10 to 20 ms of processing beyond the added 50 ms
//! (JSON encoding in the client, parsing, validation and applying in the simulator, on the same
//! two cores), and the ideal counts none of it nor the last jobs' tracking. The sequential loop
//! shows the same per-request overhead (about 168 ms per chunk for two 50 ms requests and a
//! 50 ms poll delay). The 10k run has only 10 chunks, so it never fills the 17-chunk pipeline
//! the 100k run fills; that, not the input size, is most of the RSS difference.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chakra_api::{Client, PollPolicy, ProcessUpdate, SecretString};
use serde_json::{Value, json};
use vendor_sim::chakra::{ChakraConfig, ProcedureSpec};
use vendor_sim::{Fault, FaultRule, SimBuilder};

use super::Row;
use crate::{DynResult, cargo, root};

const BIG: usize = 100_000;
const SMALL: usize = 10_000;
const CHUNK: usize = 1000;
const CONCURRENCY: usize = 4;
const LATENCY: Duration = Duration::from_millis(50);
const FIRST_POLL_MS: u64 = 50;
const TOKEN: &str = "sim-chakra-token";

pub(crate) async fn run() -> DynResult<Vec<Row>> {
    let status = cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "chakra-api",
            "--example",
            "update_processes",
        ])
        .status()?;
    if !status.success() {
        return Err("building the update_processes example failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let exe = target
        .join("release")
        .join("examples")
        .join("update_processes");
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir)?;
    let big = dir.join("chakra-100k.jsonl");
    let small = dir.join("chakra-10k.jsonl");
    write_updates(&big, BIG)?;
    write_updates(&small, SMALL)?;

    let cfg = ChakraConfig {
        max_items_per_request: CHUNK,
        start_delay: Duration::ZERO,
        item_time: Duration::from_micros(1),
        ..ChakraConfig::default()
    };
    let builder = SimBuilder::new("chakra-bench").fault(FaultRule::new(Fault::Delay(LATENCY)));
    let (sim, chakra) = vendor_sim::chakra::start(builder, cfg).await?;
    chakra.add_procedure(ProcedureSpec::new("lead", "lead_id"));
    for i in 0..BIG {
        chakra.add_process("lead", json!({"lead_id": format!("L-{i}"), "city": "Pune"}));
    }
    let base = sim.base_url();

    println!("  chakra: 10k run (child process)");
    let small_run = child(&exe, &base, &small).await?;
    println!("  chakra: 100k run (child process)");
    let sim_cpu_before = own_cpu_ms();
    let big_run = child(&exe, &base, &big).await?;
    let sim_cpu = own_cpu_ms()
        .zip(sim_cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    println!("  chakra: 100k bare reqwest replay (child process)");
    let bare_run = bare_child(&base, &big)?;
    println!("  chakra: 100k sequential baseline");
    let seq = sequential(&base, &big).await?;
    sim.shutdown().await;

    for (name, run) in [("10k", &small_run), ("100k", &big_run)] {
        if run.succeeded != run.items {
            return Err(format!("{name} run: {} of {} applied", run.succeeded, run.items).into());
        }
    }
    let ideal = (CONCURRENCY * CHUNK) as f64 / LATENCY.as_secs_f64();
    let throughput = BIG as f64 / big_run.elapsed.as_secs_f64();
    let seq_throughput = BIG as f64 / seq.as_secs_f64();
    let ratio = throughput / ideal;
    let bare_throughput = BIG as f64 / bare_run.as_secs_f64();
    let bare_ratio = throughput / bare_throughput;
    let rss_ratio = big_run.peak_rss_kib as f64 / small_run.peak_rss_kib as f64;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(vec![
        Row::info("chakra", "ideal_items_per_s", ideal, "it/s"),
        Row::info(
            "chakra",
            "concurrent_items_per_s",
            round(throughput),
            "it/s",
        ),
        Row::info(
            "chakra",
            "concurrent_100k_time",
            round(big_run.elapsed.as_secs_f64()),
            "s",
        ),
        Row::info(
            "chakra",
            "client_cpu_100k",
            round(big_run.cpu_ms / 1e3),
            "s",
        ),
        Row::info(
            "chakra",
            "simulator_cpu_100k",
            sim_cpu.map_or(f64::NAN, |ms| ms as f64 / 1e3),
            "s",
        ),
        Row::info("chakra", "throughput_ratio_to_ideal", round(ratio), "x"),
        Row::info(
            "chakra",
            "bare_reqwest_items_per_s",
            round(bare_throughput),
            "it/s",
        ),
        Row::target(
            "chakra",
            "throughput_vs_bare_reqwest",
            round(bare_ratio),
            "x",
            ">= 0.85",
            bare_ratio >= 0.85,
        ),
        Row::info(
            "chakra",
            "sequential_items_per_s",
            round(seq_throughput),
            "it/s",
        ),
        Row::info(
            "chakra",
            "sequential_100k_time",
            round(seq.as_secs_f64()),
            "s",
        ),
        Row::info(
            "chakra",
            "speedup_vs_sequential",
            round(throughput / seq_throughput),
            "x",
        ),
        Row::info(
            "chakra",
            "peak_rss_10k",
            round(small_run.peak_rss_kib as f64 / 1024.0),
            "MiB",
        ),
        Row::info(
            "chakra",
            "peak_rss_100k",
            round(big_run.peak_rss_kib as f64 / 1024.0),
            "MiB",
        ),
        Row::target(
            "chakra",
            "peak_rss_ratio_100k_to_10k",
            round(rss_ratio),
            "x",
            "<= 1.25",
            rss_ratio <= 1.25,
        ),
    ])
}

fn write_updates(path: &Path, n: usize) -> DynResult {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        serde_json::to_writer(&mut out, &update_line(i))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The `i`-th benchmark update, as a JSONL line's object (shared with the `limits` bench).
pub(crate) fn update_line(i: usize) -> serde_json::Value {
    json!({
        "lead_id": format!("L-{i}"),
        "update": {
            "state": "QUALIFIED",
            "assignedTo": "asha",
            "nextActionAt": 1_800_000_000_000i64 + i as i64,
            "data": {"score": i % 100, "note": "benchmark update"},
        },
    })
}

struct ChildRun {
    items: u64,
    succeeded: u64,
    elapsed: Duration,
    peak_rss_kib: u64,
    cpu_ms: f64,
}

/// Runs the example over `file`, measures it (see [`measure`]) and reads its summary line.
async fn child(exe: &Path, base: &str, file: &Path) -> DynResult<ChildRun> {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("lead")
        .arg(file)
        .env("CHAKRA_BASE_URL", base)
        .env("CHAKRA_TOKEN", TOKEN)
        .env("CHAKRA_CHUNK_SIZE", CHUNK.to_string())
        .env("CHAKRA_CONCURRENCY", CONCURRENCY.to_string())
        .env("CHAKRA_FIRST_POLL_MS", FIRST_POLL_MS.to_string());
    let (output, usage) = tokio::task::spawn_blocking(move || measure(cmd)).await??;
    if !output.status.success() {
        return Err(format!(
            "update_processes failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let summary: Value = output
        .stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("summary: ").map(str::to_owned))
        .ok_or("the example printed no summary")
        .and_then(|s| serde_json::from_str(&s).map_err(|_| "unreadable summary"))?;
    let num = |k: &str| summary[k].as_f64().ok_or(format!("summary lacks {k}"));
    Ok(ChildRun {
        items: num("items")? as u64,
        succeeded: num("succeeded")? as u64,
        elapsed: Duration::from_secs_f64(num("elapsed_ms")? / 1e3),
        peak_rss_kib: usage
            .peak_rss_kib
            .ok_or("could not read the child's VmHWM")?,
        cpu_ms: usage.cpu_ms.map_or(f64::NAN, |ms| ms as f64),
    })
}

/// What [`measure`] saw of a child process.
struct Usage {
    peak_rss_kib: Option<u64>,
    cpu_ms: Option<u64>,
}

/// Runs `cmd` to its end like `Command::output`, measuring it from outside (Linux `/proc`):
/// the peak resident set (`VmHWM`, read every 5 ms while it runs, since an exited process has
/// none), and the CPU time (user + system) read once it has exited and before it is reaped.
fn measure(mut cmd: std::process::Command) -> std::io::Result<(std::process::Output, Usage)> {
    use std::io::Read;
    use std::process::Stdio;

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = child.id().to_string();
    let mut usage = Usage {
        peak_rss_kib: None,
        cpu_ms: None,
    };
    loop {
        // Until it is reaped (below), the exited child stays readable as a zombie.
        match proc_state(&pid) {
            Some('Z') | None => break,
            Some(_) => {
                if let Some(kib) = peak_rss_kib(&pid) {
                    usage.peak_rss_kib = usage.peak_rss_kib.max(Some(kib));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    usage.cpu_ms = cpu_ms(&pid);
    let status = child.wait()?;
    let joined = |t: std::thread::JoinHandle<Vec<u8>>| {
        t.join()
            .map_err(|_| std::io::Error::other("reading the child's output failed"))
    };
    let stdout = joined(out)?;
    let stderr = joined(err)?;
    Ok((
        std::process::Output {
            status,
            stdout,
            stderr,
        },
        usage,
    ))
}

/// The fields of `/proc/<pid>/stat` after the command name (the state is the first).
fn proc_stat(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The process's state letter (`R`, `S`, `Z`, ...).
fn proc_state(pid: &str) -> Option<char> {
    proc_stat(pid)?.first()?.chars().next()
}

/// A process's peak resident set so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of a process (`self` for this one), in ms (100 ticks per second).
fn cpu_ms(pid: &str) -> Option<u64> {
    let fields = proc_stat(pid)?;
    // After the command name: utime and stime are the 12th and 13th fields.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10)
}

/// One chunk at a time: submit, wait for the job, check its counts, then the next chunk.
async fn sequential(base: &str, file: &Path) -> DynResult<Duration> {
    let client = Client::builder()
        .base_url(base)
        .token(SecretString::from(TOKEN))
        .build()?;
    let policy = PollPolicy::default()
        .first_delay(Duration::from_millis(FIRST_POLL_MS))
        .min_delay(Duration::from_millis(FIRST_POLL_MS.min(100)));
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let mut lines = reader.lines();
    let started = Instant::now();
    let mut applied = 0;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for line in lines.by_ref().take(CHUNK) {
            chunk.push(ProcessUpdate::from_wire(serde_json::from_str(&line?)?));
        }
        if chunk.is_empty() {
            break;
        }
        let job = client.submit_updates("lead", &chunk).await?;
        let status = client.wait(&job).policy(policy.clone()).await?;
        applied += status.counts.success;
    }
    let elapsed = started.elapsed();
    if applied != BIG as u64 {
        return Err(format!("sequential run: {applied} of {BIG} applied").into());
    }
    Ok(elapsed)
}

/// CPU time (user + system) of this process (the simulator's side), in ms.
fn own_cpu_ms() -> Option<u64> {
    cpu_ms("self")
}

/// Runs `xtask __chakra-bare BASE FILE` and returns its own timing.
fn bare_child(base: &str, file: &Path) -> DynResult<Duration> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("__chakra-bare")
        .arg(base)
        .arg(file)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "the bare replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let applied: u64 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("no count")?;
    let ms: f64 = parts.next().and_then(|v| v.parse().ok()).ok_or("no time")?;
    if applied != BIG as u64 {
        return Err(format!("bare replay: {applied} of {BIG} applied").into());
    }
    Ok(Duration::from_secs_f64(ms / 1e3))
}

/// The child side of [`bare_child`]: the minimal client a user could write with `reqwest`
/// alone, replaying the runner's request schedule (no validation, retries or per-item report).
/// Prints the items the jobs applied and the elapsed milliseconds.
pub(crate) fn bare(args: &[String]) -> DynResult {
    let [base, file] = args else {
        return Err("usage: __chakra-bare BASE FILE".into());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (applied, elapsed) = rt.block_on(bare_replay(base, Path::new(file)))?;
    println!("{applied} {}", elapsed.as_secs_f64() * 1e3);
    Ok(())
}

async fn bare_replay(base: &str, file: &Path) -> DynResult<(u64, Duration)> {
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    type Task = Result<u64, String>;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut lines = std::io::BufReader::new(std::fs::File::open(file)?).lines();
    let sending = Arc::new(Semaphore::new(CONCURRENCY));
    let pending = Arc::new(Semaphore::new(CONCURRENCY * 4));
    let mut tasks: tokio::task::JoinSet<Task> = tokio::task::JoinSet::new();
    let mut applied = 0u64;
    loop {
        let mut body = String::from(r#"{"processes":["#);
        let mut n = 0;
        for line in lines.by_ref().take(CHUNK) {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&line?);
            n += 1;
        }
        if n == 0 {
            break;
        }
        body.push_str("]}");
        let pend = pending.clone().acquire_owned().await?;
        let slot = sending.clone().acquire_owned().await?;
        let (http, base) = (http.clone(), base.to_owned());
        tasks.spawn(async move {
            let get = |resp: reqwest::Response| async move {
                let bytes = resp.error_for_status()?.bytes().await?;
                Ok::<Value, Box<dyn std::error::Error + Send + Sync>>(serde_json::from_slice(
                    &bytes,
                )?)
            };
            let run = async {
                let ack = get(http
                    .patch(format!("{base}/v1/ext/procedure/lead/process"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?)
                .await?;
                drop(slot);
                let id = ack["_data"]["id"].as_str().ok_or("no job id")?.to_owned();
                loop {
                    tokio::time::sleep(Duration::from_millis(FIRST_POLL_MS)).await;
                    let status = get(http
                        .get(format!("{base}/v1/ext/background-job/{id}"))
                        .bearer_auth(TOKEN)
                        .send()
                        .await?)
                    .await?;
                    if status["_data"]["completionStatus"] == "COMPLETED" {
                        drop(pend);
                        let counts = &status["_meta"]["bjEntryCompletionStatusVsCount"];
                        return Ok(counts["SUCCESS"].as_u64().unwrap_or(0));
                    }
                }
            };
            run.await
                .map_err(|e: Box<dyn std::error::Error + Send + Sync>| e.to_string())
        });
        while let Some(done) = tasks.try_join_next() {
            applied += done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        applied += done??;
    }
    Ok((applied, started.elapsed()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn measure_sees_a_child_s_peak_memory_cpu_time_and_output() -> DynResult {
        // The shell holds a 32 MiB string and burns some CPU before it prints and exits.
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(
            "x=$(head -c 33554432 /dev/zero | tr '\\0' a); i=0; \
             while [ $i -lt 20000 ]; do i=$((i+1)); done; echo \"summary: ${#x}\"",
        );
        let (output, usage) = measure(cmd)?;
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "summary: 33554432\n"
        );
        let peak = usage.peak_rss_kib.ok_or("no peak")?;
        assert!(peak >= 32 * 1024, "peak {peak} KiB");
        assert!(usage.cpu_ms.is_some());
        Ok(())
    }
}
