//! A separate process that takes an access token through a shared file store, for the
//! cross-process token-sharing test. Arguments: token URL, store directory. Prints the token's
//! fingerprint.

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use bulk_common::token::{FileStore, OAuthConfig, OAuthRefreshSource};
use bulk_common::{SecretString, TokenSource};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: token-worker <token-url> <store-dir>".into());
    };
    let cfg = vendor_sim::generic::GenericConfig::default();
    let source = OAuthRefreshSource::new(
        OAuthConfig::new(
            url,
            cfg.client_id,
            SecretString::from(cfg.client_secret),
            SecretString::from(cfg.refresh_token),
        )
        .store(Arc::new(FileStore::new(dir)?)),
    )?;
    let token = source.token().await?;
    println!("{}", token.fingerprint());
    Ok(())
}
