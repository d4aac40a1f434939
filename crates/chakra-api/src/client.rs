//! The client and its builder.

use std::fmt;

use bulk_common::{Auth, BaseUrl, HttpClient, HttpOptions, HttpStats, RetryPolicy, SecretString};

use crate::bulk::BulkUpdate;
use crate::envelope;
use crate::{Error, Result};

/// The production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.chakrahq.com";

const PRODUCT: &str = concat!("chakra-api/", env!("CARGO_PKG_VERSION"));

/// A ChakraHQ API client. Cheap to clone: clones share one connection pool (an `Arc` inside).
///
/// ```no_run
/// # async fn run() -> chakra_api::Result<()> {
/// use chakra_api::{Client, SecretString};
/// let client = Client::builder()
///     .token(SecretString::from("access-token-of-an-api-key"))
///     .build()?;
/// let process = client.get_process("lead", "6f1c...").await?;
/// println!("{:?}", process.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) http: HttpClient,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.http.base_url().as_url().as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; a token is required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from the environment: `CHAKRA_TOKEN` (required) and `CHAKRA_BASE_URL`
    /// (optional, default [`DEFAULT_BASE_URL`]; `http://` is accepted on loopback only).
    pub fn from_env() -> Result<Client> {
        let token = std::env::var("CHAKRA_TOKEN").map_err(|_| {
            Error::config("CHAKRA_TOKEN is not set (the access token of an API key)")
        })?;
        let mut builder = Client::builder().token(SecretString::from(token));
        if let Ok(base) = std::env::var("CHAKRA_BASE_URL")
            && !base.trim().is_empty()
        {
            builder = builder.base_url(base.trim());
        }
        builder.build()
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &BaseUrl {
        self.http.base_url()
    }

    /// Request counts so far (attempts, retries), shared by clones.
    pub fn stats(&self) -> HttpStats {
        self.http.stats()
    }

    /// A bulk update of the processes of `procedure` (its UUID or shortId): configure it, then
    /// [`run`](BulkUpdate::run) it over an iterator or [`run_stream`](BulkUpdate::run_stream)
    /// over a stream.
    pub fn bulk_update(&self, procedure: impl Into<String>) -> BulkUpdate {
        BulkUpdate::new(self.clone(), procedure.into())
    }

    /// The underlying HTTP client, for endpoints this crate does not wrap.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// Builds a [`Client`].
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    token: Option<SecretString>,
    base_url: Option<String>,
    options: Option<HttpOptions>,
    retry: Option<RetryPolicy>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The access token of an API key (sent as `Authorization: Bearer <token>`).
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Scheme, host and port, without the `/v1/ext` prefix (default [`DEFAULT_BASE_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Timeouts and the default retry policy.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The retry policy (overrides the one in [`http_options`](Self::http_options)).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let token = self
            .token
            .ok_or_else(|| Error::config("a ChakraHQ access token is required"))?;
        let base = BaseUrl::parse(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        if !base.as_url().path().trim_end_matches('/').is_empty() {
            return Err(Error::config(format!(
                "the base URL must be scheme, host and port only, without a path such as /v1/ext (got {})",
                base.as_url()
            )));
        }
        let mut options = self.options.unwrap_or_default();
        if let Some(retry) = self.retry {
            options = options.retry(retry);
        }
        let http = HttpClient::builder(PRODUCT)
            .base(base)
            .auth(Auth::bearer(token)?)
            .options(options)
            .error_decoder(envelope::decoder())
            .build()?;
        Ok(Client { http })
    }
}
