//! One client, 100 concurrent operations: they share one OAuth refresh (Zoho) or one login
//! (Unicat), whether they start with no token or with one the server no longer accepts.

use futures::TryStreamExt;
use futures::future::join_all;
use unicat_api::{Children, RecordSelection};
use vendor_sim::SimBuilder;
use vendor_sim::unicat::UnicatConfig;
use vendor_sim::zoho::ZohoConfig;
use zoho_bulk::ReadQuery;

use crate::bounded;

const CALLS: usize = 100;

fn zoho_client(sim: &vendor_sim::SimHandle, cfg: &ZohoConfig) -> zoho_bulk::Client {
    crate::zoho::client_for(sim, cfg).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn concurrency_zoho_100_calls_share_one_token_refresh() {
    let cfg = ZohoConfig {
        reports: vec![("Orders".into(), 25)],
        ..ZohoConfig::default()
    };
    let (sim, zoho) = vendor_sim::zoho::start(SimBuilder::new("zoho"), cfg.clone())
        .await
        .unwrap();
    let refreshes = || sim.counters().get("zoho.refreshes");
    // Another client creates the job, so the client under test starts with no token.
    let job = zoho_client(&sim, &cfg)
        .create_job("Orders", &ReadQuery::new())
        .await
        .unwrap();
    assert_eq!(refreshes(), 1);
    let client = zoho_client(&sim, &cfg);

    let statuses = bounded(join_all((0..CALLS).map(|_| client.job_status(&job)))).await;
    assert!(statuses.iter().all(Result::is_ok));
    assert_eq!(refreshes(), 2, "100 callers without a token: one refresh");

    zoho.expire_tokens();
    let statuses = bounded(join_all((0..CALLS).map(|_| client.job_status(&job)))).await;
    assert!(statuses.iter().all(Result::is_ok));
    assert_eq!(refreshes(), 3, "100 callers refused at once: one refresh");
    assert_eq!(client.stats().auth_replays, CALLS as u64);
    assert_eq!(sim.counters().get("zoho.refreshes.refused"), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrency_unicat_100_calls_share_one_login() {
    let cfg = UnicatConfig::default();
    let (sim, unicat) = vendor_sim::unicat::start(SimBuilder::new("unicat"), cfg.clone())
        .await
        .unwrap();
    let client = unicat_api::Client::builder()
        .project(cfg.project.clone())
        .api_key(cfg.api_key.clone().into())
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let logins = || sim.counters().get("auth.logins");
    // Half read the feed cursor, half read a folder through bulk get.
    let round = || {
        join_all((0..CALLS).map(|i| {
            let client = client.clone();
            async move {
                if i % 2 == 0 {
                    client.cc_cursor().await.map(|_| 1)
                } else {
                    let items: Vec<serde_json::Value> = client
                        .records()
                        .get(&RecordSelection::new().children(Children::of("r-f1")))
                        .stream::<serde_json::Value>()
                        .map_ok(|item| item.data)
                        .try_collect()
                        .await?;
                    Ok(items.len())
                }
            }
        }))
    };

    let first = bounded(round()).await;
    assert!(first.iter().all(Result::is_ok));
    assert_eq!(logins(), 1, "100 callers without a JWT: one login");

    unicat.expire_jwts();
    let second = bounded(round()).await;
    assert!(second.iter().all(Result::is_ok));
    assert_eq!(logins(), 2, "100 callers refused at once: one login");
    assert_eq!(client.stats().logins, 2);
}
