//! `overhead`: the same small GETs against one loopback server through a bare `reqwest::Client`
//! and through `bulk_common::HttpClient`, side by side in one run; target ratio <= 1.10.

use std::time::{Duration, Instant};

use bulk_common::{HttpClient, Method};

use super::Row;
use crate::DynResult;

const REQUESTS: usize = 5_000;
const ROUNDS: usize = 5;

/// The same small GETs through a bare `reqwest::Client` and through `bulk_common::HttpClient`,
/// alternating rounds so both see the same machine state; the ratio of the medians.
pub(crate) async fn run() -> DynResult<Vec<Row>> {
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
        Row::target(
            "overhead",
            "ratio_bulk_common_to_bare",
            (ratio * 1000.0).round() / 1000.0,
            "x",
            "<= 1.10",
            ratio <= 1.10,
        ),
    ])
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}
