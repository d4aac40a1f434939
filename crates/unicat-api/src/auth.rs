//! Login with an API key, and the JWT that the server may rotate on any reply.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bulk_common::token::{AccessToken, TokenSource};
use bulk_common::{
    Error, ErrorKind, ExposeSecret, Headers, HttpClient, Idempotency, Method, Result, SecretString,
    encode_segment,
};
use serde_json::json;

/// Holds the current JWT, logs in when there is none (once for any number of concurrent
/// callers), adopts a JWT rotated into any reply's `Authorization` header, and drops a JWT the
/// server refused (bulk-common then replays the request once with a fresh login).
pub(crate) struct JwtSource {
    /// A client without credentials, for the login call only.
    login: HttpClient,
    project: String,
    api_key: SecretString,
    current: Mutex<Option<SecretString>>,
    /// Serializes logins: whoever holds it logs in; the others wait and reuse the result.
    flight: tokio::sync::Mutex<()>,
    logins: AtomicU64,
    rotations: AtomicU64,
}

impl fmt::Debug for JwtSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSource")
            .field("project", &self.project)
            .field("api_key", &"[REDACTED]")
            .field("logins", &self.logins.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl JwtSource {
    pub(crate) fn new(login: HttpClient, project: String, api_key: SecretString) -> Self {
        JwtSource {
            login,
            project,
            api_key,
            current: Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
            logins: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<SecretString>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> Option<AccessToken> {
        self.slot()
            .as_ref()
            .map(|s| AccessToken::new(s.clone(), None))
    }

    pub(crate) fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    pub(crate) fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    async fn log_in(&self) -> Result<SecretString> {
        let path = format!("/api/p/{}/auth", encode_segment(&self.project));
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(project = %self.project, "logging in with the API key");
        let reply = self
            .login
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
        Ok(SecretString::from(jwt.to_owned()))
    }
}

fn strip_bearer(value: &str) -> &str {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}

#[async_trait]
impl TokenSource for JwtSource {
    async fn token(&self) -> Result<AccessToken> {
        if let Some(t) = self.current() {
            return Ok(t);
        }
        let _flight = self.flight.lock().await;
        // Someone else may have logged in (or a reply rotated a JWT in) while we waited.
        if let Some(t) = self.current() {
            return Ok(t);
        }
        let jwt = self.log_in().await?;
        *self.slot() = Some(jwt.clone());
        Ok(AccessToken::new(jwt, None))
    }

    async fn invalidate(&self, stale: &AccessToken) {
        let mut slot = self.slot();
        // Only the refused JWT is dropped: a newer one (rotated in or freshly minted by a
        // concurrent caller) stays, so 100 callers refused at once cause one login.
        if slot
            .as_ref()
            .is_some_and(|c| c.expose_secret() == stale.secret().expose_secret())
        {
            *slot = None;
        }
    }

    fn observe_response(&self, headers: &Headers) {
        let Some(value) = headers.get("authorization") else {
            return;
        };
        let jwt = strip_bearer(value);
        if jwt.is_empty() {
            return;
        }
        let mut slot = self.slot();
        if slot.as_ref().is_none_or(|c| c.expose_secret() != jwt) {
            tracing::debug!("adopting a rotated JWT");
            self.rotations.fetch_add(1, Ordering::Relaxed);
            *slot = Some(SecretString::from(jwt.to_owned()));
        }
    }
}
