//! Login with an API key, and the JWT that the server may rotate on any reply.

use std::fmt;
use std::sync::Arc;

use bulk_common::token::{AccessToken, MintSource};
use bulk_common::{
    Error, ErrorKind, ExposeSecret, Headers, HttpClient, Idempotency, Method, Result, SecretString,
    encode_segment,
};
use serde_json::json;

/// The JWT source of a client: bulk-common's [`MintSource`] around a login with the API key.
///
/// It logs in when there is no JWT (one login for any number of concurrent callers, whose
/// failure they all share; the next call logs in again), adopts a JWT rotated into any reply's
/// `Authorization` header, and drops a JWT the server refused (bulk-common then replays the
/// request once with a fresh login).
pub(crate) fn jwt_source(http: HttpClient, project: String, api_key: SecretString) -> MintSource {
    let label = format!("unicat login ({project})");
    let login = Arc::new(Login {
        http,
        project,
        api_key,
    });
    MintSource::builder(move || {
        let login = login.clone();
        async move { login.log_in().await }
    })
    .label(label)
    .rotation(rotated)
    .build()
}

/// The login call (`POST /api/p/{project}/auth`), on a client without credentials.
struct Login {
    http: HttpClient,
    project: String,
    api_key: SecretString,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("project", &self.project)
            .field("api_key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl Login {
    async fn log_in(&self) -> Result<AccessToken> {
        let path = format!("/api/p/{}/auth", encode_segment(&self.project));
        tracing::debug!(project = %self.project, "logging in with the API key");
        let reply = self
            .http
            .request(Method::Post, path)
            // Logging in has no side effect worth protecting: a repeat only mints another JWT.
            .idempotency(Idempotency::Idempotent)
            .json(&json!({ "api_key": self.api_key.expose_secret() }))
            .send()
            .await
            .map_err(|e| e.context("logging in to Unicat"))?;
        let jwt = reply
            .headers()
            .get("authorization")
            .map(strip_bearer)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Auth,
                    "the login reply carried no JWT in its Authorization header",
                )
            })?;
        // The JWT's lifetime is not documented: it is used until the server refuses it.
        Ok(AccessToken::new(SecretString::from(jwt.to_owned()), None))
    }
}

/// A JWT the server rotated into a reply's `Authorization` header (reference `p/auth`,
/// "auto-refresh"; SDK `api.py` `_call`).
fn rotated(headers: &Headers) -> Option<AccessToken> {
    let jwt = strip_bearer(headers.get("authorization")?);
    (!jwt.is_empty()).then(|| AccessToken::new(SecretString::from(jwt.to_owned()), None))
}

fn strip_bearer(value: &str) -> &str {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}
