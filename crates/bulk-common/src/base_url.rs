//! Validated base URLs: where a client may send credentials.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use crate::error::{Error, Result};

/// The origin (scheme, host, port, and an optional path prefix) a client talks to.
///
/// Parsing enforces the workspace's transport rules: `https` is required unless the host is a
/// loopback address (`localhost`, `127.0.0.0/8`, `[::1]`), the URL carries no user info, query or
/// fragment, and it has a host. Credentials are attached only to URLs of this origin: an absolute
/// URL returned by a vendor (a download link, a next-page link) is accepted by
/// [`BaseUrl::resolve`] only if it points at the same origin.
///
/// ```
/// use bulk_common::BaseUrl;
/// let base = BaseUrl::parse("https://api.example.com")?;
/// assert_eq!(base.join("/v1/items")?.as_str(), "https://api.example.com/v1/items");
/// assert!(BaseUrl::parse("http://api.example.com").is_err());
/// assert!(BaseUrl::parse("http://127.0.0.1:8080").is_ok());
/// let err = BaseUrl::parse("api.example.com").err().map(|e| e.to_string()).unwrap_or_default();
/// assert!(err.contains("no scheme and host"), "{err}");
/// # Ok::<(), bulk_common::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Url,
}

impl BaseUrl {
    /// Parses and validates a base URL such as `https://api.example.com` or `http://127.0.0.1:9000`.
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        if input.is_empty() {
            return Err(Error::config("the base URL is empty"));
        }
        let url = Url::parse(input).map_err(|e| {
            // Text that failed to parse may still hold `user:password@`.
            let shown = if input.contains('@') {
                "(not shown: it may hold credentials)".to_owned()
            } else {
                format!("{input:?}")
            };
            let why = match e {
                url::ParseError::RelativeUrlWithoutBase => "it has no scheme and host".to_owned(),
                other => other.to_string(),
            };
            Error::config(format!(
                "the base URL {shown} is not a full URL ({why}); give one such as \
                 https://api.example.com"
            ))
        })?;
        BaseUrl::from_url(url)
    }

    /// Validates an already parsed URL; see [`BaseUrl::parse`].
    pub fn from_url(mut url: Url) -> Result<Self> {
        let shown = redact_url(&url);
        if url.cannot_be_a_base() || url.host().is_none() {
            // `user:pw@host` reads as scheme `user` and path `pw@host`: show the scheme only.
            return Err(Error::config(format!(
                "the base URL has no host (it reads as a {}: URL); give one such as \
                 https://api.example.com",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                "the base URL must not carry credentials; configure them on the client builder",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "the base URL {shown} must not have a query or fragment"
            )));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Error::config(format!(
                    "refusing plain http:// to {shown}: credentials would travel unencrypted; \
                     use https:// (http is allowed only for loopback hosts)"
                )));
            }
            other => {
                return Err(Error::config(format!(
                    "the base URL scheme {other:?} is not supported; use https://"
                )));
            }
        }
        // Store the prefix without a trailing slash so that `join` can always append "/...".
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        Ok(BaseUrl { url })
    }

    /// The validated URL.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// Whether the host is a loopback address.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }

    /// Appends an absolute path (`/api/...`) to the base, keeping any base path prefix.
    ///
    /// The path may contain a query string. Percent-encode path segments that hold user data
    /// (see [`encode_segment`]).
    pub fn join(&self, path: &str) -> Result<Url> {
        if !path.starts_with('/') {
            return Err(Error::invalid_input(format!(
                "request path {path:?} must start with '/'"
            )));
        }
        let joined = format!("{}{}", self.url.as_str().trim_end_matches('/'), path);
        Url::parse(&joined)
            .map_err(|e| Error::invalid_input(format!("bad request path {path:?}: {e}")))
    }

    /// Resolves a path or a vendor-supplied URL against the base, refusing any other origin.
    ///
    /// A relative reference (`/api/x/result`) is joined to the base; an absolute URL must have the
    /// same scheme, host and port, or the call fails with [`crate::ErrorKind::InvalidInput`] so that no
    /// credential leaves the configured origin.
    pub fn resolve(&self, path_or_url: &str) -> Result<Url> {
        if path_or_url.starts_with('/') && !path_or_url.starts_with("//") {
            return self.join(path_or_url);
        }
        let url = Url::parse(path_or_url).map_err(|e| {
            Error::invalid_input(format!("the vendor returned an unusable URL: {e}"))
        })?;
        if !self.same_origin(&url) {
            return Err(Error::invalid_input(format!(
                "refusing to send credentials to {}, which is not the configured origin {}",
                redact_url(&url),
                self.origin_string()
            )));
        }
        Ok(url)
    }

    /// Whether `url` has this base's scheme, host and port.
    pub fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.url.origin()
    }

    fn origin_string(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.url)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BaseUrl::parse(s)
    }
}

/// Percent-encodes one path segment (an id, a name), so it cannot change the path's shape.
///
/// ```
/// assert_eq!(bulk_common::encode_segment("a b/c"), "a%20b%2Fc");
/// ```
pub fn encode_segment(segment: &str) -> String {
    // `byte_serialize` leaves only `A-Za-z0-9*-._` as is and writes a space as '+'; a literal
    // '+' comes out as "%2B", so turning '+' into "%20" is exact.
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A URL as it may be shown in errors and logs: no user info, no query (it may hold secrets).
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
