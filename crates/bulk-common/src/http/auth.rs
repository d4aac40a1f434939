//! Credentials: how a client authenticates, with secrets kept out of `Debug`.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::token::{AccessToken, TokenSource};

/// How a client authenticates. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Auth {
    pub(super) kind: AuthKind,
}

#[derive(Clone)]
pub(super) enum AuthKind {
    None,
    Basic {
        username: SecretString,
        password: Option<SecretString>,
    },
    Header {
        name: HeaderName,
        prefix: String,
        value: SecretString,
    },
    Source {
        source: Arc<dyn TokenSource>,
        scheme: String,
    },
}

impl Auth {
    /// No credentials.
    pub fn none() -> Self {
        Auth {
            kind: AuthKind::None,
        }
    }

    /// HTTP Basic authentication. An empty username is refused.
    pub fn basic(username: SecretString, password: Option<SecretString>) -> Result<Self> {
        if username.expose_secret().trim().is_empty() {
            return Err(Error::config("the API key (basic-auth user) is empty"));
        }
        Ok(Auth {
            kind: AuthKind::Basic { username, password },
        })
    }

    /// A fixed bearer token: `Authorization: Bearer <token>`. An empty token is refused.
    pub fn bearer(token: SecretString) -> Result<Self> {
        Auth::header("authorization", "Bearer ", token)
    }

    /// A fixed secret header such as `Authorization: Token <value>` or `X-Api-Key: <value>`.
    pub fn header(name: &str, prefix: &str, value: SecretString) -> Result<Self> {
        if value.expose_secret().trim().is_empty() {
            return Err(Error::config(format!(
                "the credential for header {name} is empty"
            )));
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(format!("{name:?} is not a valid header name")))?;
        secret_header(prefix, &value)?;
        Ok(Auth {
            kind: AuthKind::Header {
                name,
                prefix: prefix.to_owned(),
                value,
            },
        })
    }

    /// Tokens from a [`TokenSource`], sent as `Authorization: <scheme> <token>` (for example
    /// `Bearer`, or a vendor's own scheme). After a 401 the token is invalidated and the request is
    /// replayed once with a fresh one.
    pub fn token_source(source: Arc<dyn TokenSource>, scheme: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::Source {
                source,
                scheme: scheme.into(),
            },
        }
    }

    pub(super) fn source(&self) -> Option<&Arc<dyn TokenSource>> {
        match &self.kind {
            AuthKind::Source { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AuthKind::None => f.write_str("Auth::None"),
            AuthKind::Basic { .. } => f.write_str("Auth::Basic([REDACTED])"),
            AuthKind::Header { name, .. } => write!(f, "Auth::Header({name}: [REDACTED])"),
            AuthKind::Source { source, scheme } => {
                write!(f, "Auth::TokenSource({scheme}, {source:?})")
            }
        }
    }
}

pub(super) fn secret_header(prefix: &str, value: &SecretString) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("{prefix}{}", value.expose_secret()))
        .map_err(|_| Error::config("the credential contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

pub(super) async fn auth_token(auth: &Auth) -> Result<Option<AccessToken>> {
    match &auth.kind {
        AuthKind::Source { source, .. } => source.token().await.map(Some),
        _ => Ok(None),
    }
}
