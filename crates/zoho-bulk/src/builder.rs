//! The client's builder, and the OAuth token source that waits out brief refresh throttles.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulk_common::poll::PollPolicy;
use bulk_common::throttle::Throttle;
use bulk_common::token::{
    AccessToken, OAuthConfig, OAuthRefreshSource, ParamsIn, RefreshRateLimit, TokenStore,
};
use bulk_common::{
    Auth, BaseUrl, Error, ErrorDecoder, ErrorKind, ExposeSecret, HttpClient, HttpOptions, Result,
    SecretString, TokenSource,
};

use crate::client::{Client, Inner};
use crate::codes::{decode_creator_error, decode_oauth_error};
use crate::dc::{ApiVersion, DataCentre};

const PRODUCT: &str = concat!("zoho-bulk/", env!("CARGO_PKG_VERSION"));
/// The authorization scheme Zoho uses instead of `Bearer`.
const SCHEME: &str = "Zoho-oauthtoken";

/// Builds a [`Client`]. Every secret is a [`SecretString`]; `Debug` never shows them.
#[must_use]
pub struct ClientBuilder {
    dc: Option<DataCentre>,
    version: Option<ApiVersion>,
    creator_url: Option<String>,
    accounts_url: Option<String>,
    owner: Option<String>,
    app: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    refresh_token: Option<SecretString>,
    read_refresh_token: Option<SecretString>,
    create_source: Option<Arc<dyn TokenSource>>,
    read_source: Option<Arc<dyn TokenSource>>,
    store: Option<Arc<dyn TokenStore>>,
    http: HttpOptions,
    poll: PollPolicy,
    refresh_limit: Option<RefreshRateLimit>,
    creates_per_minute: u32,
    downloads_per_minute: u32,
    spool_dir: Option<PathBuf>,
    download_attempts: u32,
    create_attempts: u32,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("dc", &self.dc)
            .field("version", &self.version)
            .field("creator_url", &self.creator_url)
            .field("accounts_url", &self.accounts_url)
            .field("owner", &self.owner)
            .field("app", &self.app)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            dc: None,
            version: None,
            creator_url: None,
            accounts_url: None,
            owner: None,
            app: None,
            client_id: None,
            client_secret: None,
            refresh_token: None,
            read_refresh_token: None,
            create_source: None,
            read_source: None,
            store: None,
            http: HttpOptions::default(),
            poll: Client::default_poll_policy(),
            refresh_limit: Some(RefreshRateLimit {
                max: 10,
                per: Duration::from_secs(600),
            }),
            creates_per_minute: 5,
            downloads_per_minute: 10,
            spool_dir: None,
            download_attempts: DEFAULT_DOWNLOAD_ATTEMPTS,
            create_attempts: DEFAULT_CREATE_ATTEMPTS,
        }
    }
}

/// Downloads of one result at most, by default: a cut-off or corrupt archive is fetched again.
const DEFAULT_DOWNLOAD_ATTEMPTS: u32 = 6;

/// Creations of one read job at most, by default, when their outcome is unknown.
const DEFAULT_CREATE_ATTEMPTS: u32 = 10;

impl ClientBuilder {
    /// The data centre; sets both the Creator and the accounts hosts.
    pub fn data_centre(mut self, dc: DataCentre) -> Self {
        self.dc = Some(dc);
        self
    }

    /// The API form (default [`ApiVersion::V2`], or `ZOHO_API_VERSION` with
    /// [`Client::from_env`]): it picks the path prefix, and with a data centre the host.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// An explicit API base URL (scheme + host + port, e.g. `https://creator.zoho.eu`, or
    /// `https://www.zohoapis.eu` for v2.1), for on-premise hosts or tests. Overrides the data
    /// centre's.
    pub fn creator_url(mut self, url: impl Into<String>) -> Self {
        self.creator_url = Some(url.into());
        self
    }

    /// An explicit accounts (OAuth) base URL (e.g. `https://accounts.zoho.eu`).
    pub fn accounts_url(mut self, url: impl Into<String>) -> Self {
        self.accounts_url = Some(url.into());
        self
    }

    /// The account owner's link name.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The application's link name.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// The OAuth client and a refresh token granted `ZohoCreator.bulk.CREATE` and
    /// `ZohoCreator.bulk.READ` (or CREATE only, with [`read_refresh_token`](Self::read_refresh_token)).
    pub fn credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(client_secret);
        self.refresh_token = Some(refresh_token);
        self
    }

    /// A separate refresh token with the READ scope, for status and downloads. One grant with
    /// both scopes is better: each refresh token counts against Zoho's 20-per-user cap.
    pub fn read_refresh_token(mut self, token: SecretString) -> Self {
        self.read_refresh_token = Some(token);
        self
    }

    /// Your own token sources instead of the OAuth refresh grant (CREATE, then READ).
    pub fn token_sources(
        mut self,
        create: Arc<dyn TokenSource>,
        read: Option<Arc<dyn TokenSource>>,
    ) -> Self {
        self.create_source = Some(create);
        self.read_source = read;
        self
    }

    /// Shares access tokens through `store`, so that workers do not each mint their own against
    /// Zoho's cap of 10 per 10 minutes: a [`FileStore`](bulk_common::token::FileStore) for
    /// processes on one machine, or a `RedisStore` (feature `redis`) for a fleet.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # fn run() -> zoho_bulk::Result<()> {
    /// use std::sync::Arc;
    /// use bulk_common::token::RedisStore;
    /// use zoho_bulk::{Client, DataCentre, SecretString};
    ///
    /// let client = Client::builder()
    ///     .data_centre(DataCentre::Eu)
    ///     .owner("acme")
    ///     .app("orders-app")
    ///     .credentials(
    ///         "1000.CLIENTID",
    ///         SecretString::from(std::env::var("ZOHO_CLIENT_SECRET").unwrap_or_default()),
    ///         SecretString::from(std::env::var("ZOHO_REFRESH_TOKEN").unwrap_or_default()),
    ///     )
    ///     .token_store(Arc::new(RedisStore::new("redis://tokens.internal:6379/")?))
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Zoho's cap on access tokens per refresh token (default 10 per 10 minutes); `None` turns
    /// the local check off.
    pub fn refresh_limit(mut self, limit: Option<RefreshRateLimit>) -> Self {
        self.refresh_limit = limit;
        self
    }

    /// Timeouts and retry policy.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// How jobs are polled unless a wait's options say otherwise (default:
    /// [`Client::default_poll_policy`]).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// Client-side throttles (default: Zoho's 5 job creations and 10 downloads per minute).
    pub fn throttles(mut self, creates_per_minute: u32, downloads_per_minute: u32) -> Self {
        self.creates_per_minute = creates_per_minute;
        self.downloads_per_minute = downloads_per_minute;
        self
    }

    /// Where downloads are spooled (default: the system's temporary directory).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Downloads of one result at most (default 6), when transfers break off or archives
    /// arrive incomplete; the delays between them follow the HTTP retry policy's backoff.
    pub fn download_attempts(mut self, attempts: u32) -> Self {
        self.download_attempts = attempts.max(1);
        self
    }

    /// Creations of one read job at most (default 10) by [`Client::export`] and
    /// [`Client::read_report`], when a creation's outcome is unknown (a lost reply, a 5xx, an
    /// unreadable success): each may leave an orphaned job on Zoho, which costs quota and
    /// counts against the 5-per-minute creation throttle, never data. `1` turns re-creation off.
    pub fn create_attempts(mut self, attempts: u32) -> Self {
        self.create_attempts = attempts.max(1);
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<Client> {
        let owner = self
            .owner
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| Error::config("the account owner name is missing"))?;
        let app = self
            .app
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| Error::config("the application link name is missing"))?;
        let version = self.version.unwrap_or_default();
        let creator = match (&self.creator_url, self.dc) {
            (Some(url), _) => url.clone(),
            (None, Some(dc)) => version.base_url(dc),
            (None, None) => {
                return Err(Error::config(
                    "set a data centre or an explicit Creator base URL",
                ));
            }
        };
        let creator = BaseUrl::parse(&creator)?;
        let (create_source, read_source) = match self.create_source {
            Some(create) => (create.clone(), self.read_source.unwrap_or(create)),
            None => {
                let accounts = match (&self.accounts_url, self.dc) {
                    (Some(url), _) => url.clone(),
                    (None, Some(dc)) => dc.accounts_url(),
                    (None, None) => {
                        return Err(Error::config(
                            "set a data centre or an explicit accounts base URL",
                        ));
                    }
                };
                let accounts = BaseUrl::parse(&accounts)?;
                let client_id = self
                    .client_id
                    .ok_or_else(|| Error::config("the OAuth client id is missing"))?;
                let secret = self
                    .client_secret
                    .ok_or_else(|| Error::config("the OAuth client secret is missing"))?;
                let refresh = self
                    .refresh_token
                    .ok_or_else(|| Error::config("the OAuth refresh token is missing"))?;
                let token_url = format!("{accounts}/oauth/v2/token");
                let source = |refresh: SecretString| -> Result<Arc<dyn TokenSource>> {
                    let mut cfg = OAuthConfig::new(
                        token_url.clone(),
                        client_id.clone(),
                        SecretString::from(secret.expose_secret().to_owned()),
                        refresh,
                    )
                    // Zoho documents the refresh parameters in the query string.
                    .params_in(ParamsIn::Query)
                    .namespace("zoho")
                    // "Access Denied" is Zoho's refresh throttle, not a refused grant.
                    .error_decoder(decode_oauth_error)
                    .rate_limit(self.refresh_limit)
                    .http_options(self.http.clone());
                    if let Some(store) = &self.store {
                        cfg = cfg.store(store.clone());
                    }
                    Ok(Arc::new(Patient {
                        inner: Arc::new(OAuthRefreshSource::new(cfg)?),
                    }))
                };
                let create = source(refresh)?;
                let read = match self.read_refresh_token {
                    Some(read) => source(read)?,
                    None => create.clone(),
                };
                (create, read)
            }
        };
        let decoder: ErrorDecoder = Arc::new(decode_creator_error);
        let http = HttpClient::builder(PRODUCT)
            .base(creator)
            .options(self.http)
            .error_decoder(decoder)
            .build()?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                owner,
                app,
                version,
                create_auth: Auth::token_source(create_source, SCHEME),
                read_auth: Auth::token_source(read_source, SCHEME),
                poll: self.poll,
                create_throttle: Throttle::new(self.creates_per_minute, Duration::from_secs(60)),
                download_throttle: Throttle::new(
                    self.downloads_per_minute,
                    Duration::from_secs(60),
                ),
                spool_dir: self.spool_dir,
                download_attempts: self.download_attempts,
                create_attempts: self.create_attempts,
                spares: Default::default(),
            }),
        })
    }
}

/// Longest `Retry-After` on a refused token refresh that is waited out before asking again.
const REFRESH_WAIT_MAX: Duration = Duration::from_secs(30);
/// Refreshes at most per token request when the accounts server throttles briefly.
const REFRESH_ATTEMPTS: u32 = 4;

/// The OAuth refresh source, waiting out a refresh that the accounts server throttled with a
/// short `Retry-After` (a 429 before anything was minted) instead of failing the call, and
/// asking again after a token reply that could not be read or a connection that kept breaking.
///
/// A throttle without `Retry-After`, or with a long one (Zoho's "Access Denied" after 10
/// tokens in 10 minutes locks the grant for the rest of the window), still fails at once: the
/// refresh source's cooldown stands, and asking again would only extend the lock-out.
#[derive(Debug)]
struct Patient {
    inner: Arc<dyn TokenSource>,
}

#[async_trait::async_trait]
impl TokenSource for Patient {
    async fn token(&self) -> Result<AccessToken> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.token().await {
                // An unreadable token reply, or a refresh whose connection kept breaking through
                // the HTTP retries: the request is safe to repeat (at worst it mints one more
                // token, well within the cap for these few attempts).
                Err(e)
                    if attempt < REFRESH_ATTEMPTS
                        && (e.kind() == ErrorKind::Decode
                            || (e.is_retryable() && e.kind() != ErrorKind::RateLimited)) =>
                {
                    tracing::warn!(error = %e, "the token refresh failed; refreshing again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e)
                    if e.kind() == ErrorKind::RateLimited
                        && attempt < REFRESH_ATTEMPTS
                        && e.retry_after().is_some_and(|d| d <= REFRESH_WAIT_MAX) =>
                {
                    let wait = e.retry_after().unwrap_or(REFRESH_WAIT_MAX);
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "the token refresh was throttled briefly; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn invalidate(&self, stale: &AccessToken) {
        self.inner.invalidate(stale).await;
    }

    fn observe_response(&self, headers: &bulk_common::Headers) {
        self.inner.observe_response(headers);
    }
}
