//! The mint token source: one attempt for all concurrent callers, a shared failure, a fresh
//! attempt after it, rotated tokens, and expiry. All on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bulk_common::token::{AccessToken, MintSource, TokenSource};
use bulk_common::{Error, ErrorKind, ExposeSecret, SecretString};
use futures::future::join_all;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A login that takes a second and mints `token-1`, `token-2`, ... (or fails while `failing`
/// is set), counting its calls.
#[derive(Clone, Default)]
struct Login {
    calls: Arc<AtomicU64>,
    failing: Arc<AtomicBool>,
}

impl Login {
    fn source(&self) -> MintSource {
        let login = self.clone();
        MintSource::builder(move || {
            let login = login.clone();
            async move {
                let n = login.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                if login.failing.load(Ordering::SeqCst) {
                    return Err(Error::new(ErrorKind::Auth, format!("login {n} refused")));
                }
                Ok(AccessToken::new(
                    SecretString::from(format!("token-{n}")),
                    None,
                ))
            }
        })
        .label("test login")
        .build()
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn secret(t: &AccessToken) -> &str {
    t.secret().expose_secret()
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_callers_share_one_mint() -> TestResult {
    let login = Login::default();
    let source = login.source();
    let tokens = join_all((0..50).map(|_| source.token())).await;
    assert_eq!(login.calls(), 1, "one mint for 50 callers");
    assert_eq!(source.mints(), 1);
    for t in tokens {
        assert_eq!(secret(&t?), "token-1");
    }
    // The minted token is kept: no further mint.
    assert_eq!(secret(&source.token().await?), "token-1");
    assert_eq!(login.calls(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failed_mint_fails_every_waiter_once_and_the_next_call_tries_again() -> TestResult {
    let login = Login::default();
    login.failing.store(true, Ordering::SeqCst);
    let source = login.source();

    let results = join_all((0..20).map(|_| source.token())).await;
    assert_eq!(
        login.calls(),
        1,
        "20 queued callers share one failed attempt"
    );
    for r in &results {
        let err = r
            .as_ref()
            .err()
            .ok_or("a failed mint must fail its waiters")?;
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("login 1 refused"), "{err}");
    }

    // The failure is not cached: the next call makes a new attempt, which succeeds now.
    login.failing.store(false, Ordering::SeqCst);
    let token = source.token().await?;
    assert_eq!(login.calls(), 2);
    assert_eq!(secret(&token), "token-2");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn callers_arriving_after_a_failure_start_one_new_attempt_between_them() -> TestResult {
    let login = Login::default();
    login.failing.store(true, Ordering::SeqCst);
    let source = login.source();
    assert!(source.token().await.is_err());
    assert!(
        join_all((0..10).map(|_| source.token()))
            .await
            .iter()
            .all(Result::is_err)
    );
    assert_eq!(
        login.calls(),
        2,
        "one attempt per wave of callers, not per caller"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_minted_again_once_for_all_callers() -> TestResult {
    let login = Login::default();
    let source = login.source();
    let first = source.token().await?;

    // A hundred requests refused with the same token: one drop, one new mint.
    join_all((0..100).map(|_| source.invalidate(&first))).await;
    let tokens = join_all((0..100).map(|_| source.token())).await;
    assert_eq!(login.calls(), 2);
    for t in tokens {
        assert_eq!(secret(&t?), "token-2");
    }

    // A late report about the old token does not drop the new one.
    source.invalidate(&first).await;
    assert_eq!(secret(&source.token().await?), "token-2");
    assert_eq!(login.calls(), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_rotated_token_is_used_without_minting() -> TestResult {
    let login = Login::default();
    let source = login.source();
    source.token().await?;

    let rotated = AccessToken::new(SecretString::from("rotated"), None);
    assert!(source.store(rotated.clone()));
    assert!(
        !source.store(rotated.clone()),
        "the same token again is no rotation"
    );
    assert_eq!(source.rotations(), 1);
    assert_eq!(secret(&source.token().await?), "rotated");
    assert_eq!(login.calls(), 1);

    // A token stored before any call saves the login altogether.
    let fresh = Login::default();
    let source = fresh.source();
    source.store(rotated);
    assert_eq!(secret(&source.token().await?), "rotated");
    assert_eq!(fresh.calls(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_caller_dropped_mid_mint_does_not_cancel_the_attempt_for_the_others() -> TestResult {
    let login = Login::default();
    let source = login.source();
    // The first caller gives up half-way through the login.
    let gave_up = tokio::time::timeout(Duration::from_millis(500), source.token()).await;
    assert!(gave_up.is_err());
    // The next caller joins the same attempt instead of starting another.
    assert_eq!(secret(&source.token().await?), "token-1");
    assert_eq!(login.calls(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_token_close_to_its_expiry_is_minted_again() -> TestResult {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let source = MintSource::builder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let expires = bulk_common::clock::wall_now() + Duration::from_secs(600);
            Ok(AccessToken::new(
                SecretString::from(format!("token-{n}")),
                Some(expires),
            ))
        }
    })
    .skew(Duration::from_secs(120))
    .build();
    assert_eq!(secret(&source.token().await?), "token-1");
    tokio::time::advance(Duration::from_secs(400)).await;
    assert_eq!(
        secret(&source.token().await?),
        "token-1",
        "200 s left: kept"
    );
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(
        secret(&source.token().await?),
        "token-2",
        "100 s left: minted again"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn debug_never_shows_the_token() {
    let source =
        MintSource::new(|| async { Ok(AccessToken::new(SecretString::from("s3cret"), None)) });
    source.store(AccessToken::new(SecretString::from("s3cret-rotated"), None));
    let shown = format!("{source:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("MintSource"));
}
