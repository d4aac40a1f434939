//! Helpers shared by the integration tests: a generic simulator and clients pointed at it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bulk_common::token::{OAuthConfig, OAuthRefreshSource};
use bulk_common::{Auth, HttpClient, HttpOptions, Jitter, RetryPolicy, SecretString};
use vendor_sim::generic::{Generic, GenericConfig};
use vendor_sim::{FaultRule, SimBuilder, SimHandle};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(crate) async fn sim(rules: Vec<FaultRule>) -> (SimHandle, Generic) {
    sim_with(rules, GenericConfig::default()).await
}

pub(crate) async fn sim_with(rules: Vec<FaultRule>, cfg: GenericConfig) -> (SimHandle, Generic) {
    let mut builder = SimBuilder::new("generic").seed(42);
    for r in rules {
        builder = builder.fault(r);
    }
    vendor_sim::start_generic(builder, cfg)
        .await
        .expect("simulator starts")
}

/// A retry policy with fixed, predictable delays.
pub(crate) fn fixed_policy(attempts: u32, initial: Duration) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .initial_delay(initial)
        .jitter(Jitter::None)
        .budget(None)
}

pub(crate) fn client(base: &str, retry: RetryPolicy) -> HttpClient {
    HttpClient::builder("bulk-common-tests/0")
        .base_url(base)
        .options(HttpOptions::default().retry(retry))
        .build()
        .expect("client builds")
}

pub(crate) fn oauth_config(sim: &SimHandle) -> OAuthConfig {
    let cfg = GenericConfig::default();
    OAuthConfig::new(
        format!("{}/oauth/token", sim.base_url()),
        cfg.client_id,
        SecretString::from(cfg.client_secret),
        SecretString::from(cfg.refresh_token),
    )
}

pub(crate) fn oauth_client(sim: &SimHandle, source: OAuthRefreshSource) -> HttpClient {
    HttpClient::builder("bulk-common-tests/0")
        .base_url(&sim.base_url())
        .auth(Auth::token_source(Arc::new(source), "Bearer"))
        .build()
        .expect("client builds")
}
