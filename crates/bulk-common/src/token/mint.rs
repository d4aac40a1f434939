//! Tokens minted on demand (a login with an API key, say), one attempt for all concurrent
//! callers, and tokens a server rotates into its replies.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::error::Result;
use crate::http::Headers;
use crate::token::{AccessToken, TokenSource};

/// Mints a fresh access token, for example by logging in with an API key.
///
/// Any `Fn() -> impl Future<Output = Result<AccessToken>>` that is `Send + Sync + 'static` is a
/// `Mint`; the future must own what it needs (clone an `Arc` into it), since it may outlive the
/// caller that started it.
pub trait Mint: Send + Sync + 'static {
    /// Starts one attempt to mint a token.
    fn mint(&self) -> BoxFuture<'static, Result<AccessToken>>;
}

impl<F, Fut> Mint for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken>> + Send + 'static,
{
    fn mint(&self) -> BoxFuture<'static, Result<AccessToken>> {
        Box::pin(self())
    }
}

/// Reads a token that the server rotated into a reply's headers, if there is one.
pub type Rotation = Arc<dyn Fn(&Headers) -> Option<AccessToken> + Send + Sync>;

type Flight = Shared<BoxFuture<'static, Result<AccessToken>>>;

/// A [`TokenSource`] whose tokens come from a [`Mint`] (a login), with one flight for all
/// callers.
///
/// - Single flight: any number of concurrent callers without a usable token share one mint
///   attempt, and share its failure too: a failed attempt fails every caller that waited for it
///   once, and the next call starts a new attempt, so one failure never poisons the source and
///   never turns into one attempt per queued caller.
/// - A token the server refused ([`invalidate`](TokenSource::invalidate)) is dropped only when it
///   is still the current one, so a hundred callers refused at once cause one new mint.
/// - A token the server rotates into a reply is taken over with [`store`](Self::store), or
///   automatically with a [`rotation`](MintSourceBuilder::rotation) reader that sees every reply.
/// - A token with a known expiry is minted again `skew` before it expires (default 60 s).
///
/// Cloning is cheap and clones share everything.
///
/// ```
/// use bulk_common::token::{AccessToken, MintSource, TokenSource};
/// use bulk_common::SecretString;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bulk_common::Result<()> {
/// // A login would send the API key here and read the token from the reply.
/// let source = MintSource::new(|| async {
///     Ok(AccessToken::new(SecretString::from("minted"), None))
/// });
/// let token = source.token().await?;
/// assert_eq!(source.mints(), 1);
/// assert!(source.token().await?.same_secret(&token));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MintSource {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    mint: Box<dyn Mint>,
    rotation: Option<Rotation>,
    skew: Duration,
    state: Mutex<State>,
    mints: AtomicU64,
    rotations: AtomicU64,
}

#[derive(Default)]
struct State {
    current: Option<AccessToken>,
    inflight: Option<Flight>,
}

/// Builds a [`MintSource`].
#[must_use]
pub struct MintSourceBuilder {
    label: String,
    mint: Box<dyn Mint>,
    rotation: Option<Rotation>,
    skew: Duration,
}

impl fmt::Debug for MintSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintSourceBuilder")
            .field("label", &self.label)
            .field("rotation", &self.rotation.is_some())
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl MintSourceBuilder {
    /// A name for logs and `Debug` (default `mint`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Reads a token the server rotated into a reply; every reply made with this source's
    /// tokens is shown to it, and a token it returns is [`store`](MintSource::store)d.
    pub fn rotation(
        mut self,
        rotation: impl Fn(&Headers) -> Option<AccessToken> + Send + Sync + 'static,
    ) -> Self {
        self.rotation = Some(Arc::new(rotation));
        self
    }

    /// How long before a known expiry a token is minted again (default 60 s).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// The source. Nothing is minted until the first [`token`](TokenSource::token) call.
    pub fn build(self) -> MintSource {
        MintSource {
            inner: Arc::new(Inner {
                label: self.label,
                mint: self.mint,
                rotation: self.rotation,
                skew: self.skew,
                state: Mutex::new(State::default()),
                mints: AtomicU64::new(0),
                rotations: AtomicU64::new(0),
            }),
        }
    }
}

impl fmt::Debug for MintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state();
        f.debug_struct("MintSource")
            .field("label", &self.inner.label)
            .field("token", &st.current)
            .field("minting", &st.inflight.is_some())
            .field("mints", &self.mints())
            .field("rotations", &self.rotations())
            .finish_non_exhaustive()
    }
}

impl MintSource {
    /// A source with the default options; see [`builder`](Self::builder) for the others.
    pub fn new(mint: impl Mint) -> Self {
        MintSource::builder(mint).build()
    }

    /// Starts a builder around `mint`.
    pub fn builder(mint: impl Mint) -> MintSourceBuilder {
        MintSourceBuilder {
            label: "mint".to_owned(),
            mint: Box::new(mint),
            rotation: None,
            skew: Duration::from_secs(60),
        }
    }

    /// Takes over a token the server handed out (a rotated token): later calls use it instead
    /// of minting. Returns whether it differs from the current token.
    pub fn store(&self, token: AccessToken) -> bool {
        let mut st = self.inner.state();
        if st.current.as_ref().is_some_and(|c| c.same_secret(&token)) {
            return false;
        }
        tracing::debug!(source = %self.inner.label, token = %token.fingerprint(), "taking over a rotated token");
        st.current = Some(token);
        self.inner.rotations.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Mint attempts started so far (failed ones included).
    pub fn mints(&self) -> u64 {
        self.inner.mints.load(Ordering::Relaxed)
    }

    /// Tokens taken over with [`store`](Self::store) (or the rotation reader) so far.
    pub fn rotations(&self) -> u64 {
        self.inner.rotations.load(Ordering::Relaxed)
    }

    /// The flight under way, or a new one.
    fn flight(&self, st: &mut State) -> Flight {
        if let Some(flight) = &st.inflight {
            return flight.clone();
        }
        self.inner.mints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(source = %self.inner.label, "minting a token");
        let attempt = self.inner.mint.mint();
        // The flight holds the source weakly: a source dropped mid-flight is freed, not kept
        // alive by its own flight.
        let source: Weak<Inner> = Arc::downgrade(&self.inner);
        let flight = async move {
            let result = attempt.await;
            if let Some(inner) = source.upgrade() {
                let mut st = inner.state();
                // Cleared on failure too: the callers that waited share this failure, and the
                // next call starts a new attempt.
                st.inflight = None;
                if let Ok(token) = &result {
                    st.current = Some(token.clone());
                }
            }
            result
        }
        .boxed()
        .shared();
        st.inflight = Some(flight.clone());
        flight
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panicking holder could break half-way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl TokenSource for MintSource {
    async fn token(&self) -> Result<AccessToken> {
        let flight = {
            let mut st = self.inner.state();
            if let Some(t) = &st.current
                && t.is_fresh(self.inner.skew)
            {
                return Ok(t.clone());
            }
            self.flight(&mut st)
        };
        flight.await
    }

    async fn invalidate(&self, stale: &AccessToken) {
        let mut st = self.inner.state();
        // Only the refused token is dropped: a newer one (rotated in, or minted for a concurrent
        // caller) stays.
        if st.current.as_ref().is_some_and(|c| c.same_secret(stale)) {
            st.current = None;
        }
    }

    fn observe_response(&self, headers: &Headers) {
        if let Some(token) = self.inner.rotation.as_ref().and_then(|read| read(headers)) {
            self.store(token);
        }
    }
}
