//! Zoho's reply codes: the `code` of every Creator reply, and the job details envelope.

use bulk_common::token::OAuthErrorReply;
use bulk_common::{Error, ErrorKind, Response, Result, VendorError};
use serde::Deserialize;

use crate::model::{Envelope, JobDetails};

pub(crate) fn details(reply: &Response) -> Result<JobDetails> {
    let missing = || {
        Error::new(
            ErrorKind::Decode,
            "Zoho replied with success but without job details",
        )
        .with_body(reply.body())
    };
    // serde's derive would also read a struct from a JSON array (`{"details": [[0]]}` as job
    // "0"); Zoho's details are always an object.
    let value: serde_json::Value = serde_json::from_slice(reply.body()).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            "Zoho's reply is not readable JSON (cut off or garbled)",
        )
        .with_body(reply.body())
        .with_source(e)
    })?;
    if !value
        .get("details")
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(missing());
    }
    let env: Envelope = serde_json::from_value(value).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            "Zoho's job details are not as documented",
        )
        .with_body(reply.body())
        .with_source(e)
    })?;
    env.details.ok_or_else(missing)
}

#[derive(Deserialize)]
struct CodeReply {
    code: Option<serde_json::Value>,
    message: Option<String>,
    description: Option<String>,
}

/// Reads Zoho's `code` from any JSON reply: 3000 is success; 4000 (sent with HTTP 200) is the
/// daily API limit; 1030 an invalid or expired token; anything else an error with its code.
///
/// A 401 is worth a token refresh only with code 1030 ("the access token is either invalid or
/// has expired", Zoho's status-code page). Zoho also answers 401 for a missing parameter (1000)
/// and an invalid one (1060), and the simulator for a token without the needed scope; a fresh
/// token cannot cure those, and every refresh spends one of the 10 Zoho mints per 10 minutes,
/// so they are final `Auth` errors. A 401 without a readable code is treated the same way.
pub(crate) fn decode_creator_error(reply: &Response) -> Option<VendorError> {
    match parse_code(reply.body()) {
        Some((code, message)) => Some(classify(code, message, reply.status())),
        None if reply.status() == 401 => Some(
            VendorError::new(None, None)
                .kind(ErrorKind::Auth)
                .stale_token(false),
        ),
        None => None,
    }
}

/// Zoho's code for an invalid or expired access token.
const TOKEN_EXPIRED: &str = "1030";
/// Zoho's code for success.
const SUCCESS: &str = "3000";
/// Zoho's code for the account's daily Developer API limit (sent with HTTP 200).
const DAILY_LIMIT: &str = "4000";

fn parse_code(body: &[u8]) -> Option<(String, Option<String>)> {
    let parsed: CodeReply = serde_json::from_slice(body).ok()?;
    let code = match parsed.code? {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    (code != SUCCESS).then(|| (code, parsed.message.or(parsed.description)))
}

fn classify(code: String, message: Option<String>, status: u16) -> VendorError {
    let kind = match code.as_str() {
        DAILY_LIMIT => Some(ErrorKind::QuotaExceeded),
        TOKEN_EXPIRED => Some(ErrorKind::Auth),
        _ if status == 401 || status == 403 => Some(ErrorKind::Auth),
        _ if status == 429 => Some(ErrorKind::RateLimited),
        _ if status < 300 => Some(ErrorKind::Http),
        _ => None,
    };
    let stale = code == TOKEN_EXPIRED;
    let mut vendor = VendorError::new(Some(code), message);
    if status == 401 {
        vendor = vendor.stale_token(stale);
    }
    match kind {
        // An error reported with a success status is final: repeating gets the same answer.
        Some(k) if status < 300 => vendor.kind(k).retryable(false),
        Some(k) => vendor.kind(k),
        None => vendor,
    }
}

/// The error for a download answered with JSON instead of a ZIP.
pub(crate) fn json_download_error(body: &[u8]) -> Error {
    match parse_code(body) {
        Some((code, message)) => {
            let kind = match code.as_str() {
                DAILY_LIMIT => ErrorKind::QuotaExceeded,
                TOKEN_EXPIRED => ErrorKind::Auth,
                _ => ErrorKind::Http,
            };
            Error::new(
                kind,
                "Zoho answered the download with an error instead of a ZIP",
            )
            .with_vendor(Some(code), message)
            .with_body(body)
        }
        None => Error::new(
            ErrorKind::Decode,
            "Zoho answered the download with JSON instead of a ZIP archive",
        )
        .with_body(body),
    }
}

/// Reads Zoho's accounts-server errors beyond the standard OAuth ones: a refresh past Zoho's cap
/// of 10 access tokens per refresh token per 10 minutes is answered `{"error": "Access
/// Denied", ...}` (with HTTP 200 or 400, depending on the data centre), which is a throttle, not
/// a refused grant. Everything else is left to bulk-common's standard reading.
pub(crate) fn decode_oauth_error(reply: &OAuthErrorReply<'_>) -> Option<ErrorKind> {
    reply
        .mentions("access denied")
        .then_some(ErrorKind::RateLimited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_is_a_throttle_and_other_oauth_errors_are_left_alone() {
        for status in [200, 400] {
            let reply = OAuthErrorReply::new(status, "Access Denied", None);
            assert_eq!(decode_oauth_error(&reply), Some(ErrorKind::RateLimited));
        }
        let described = OAuthErrorReply::new(
            400,
            "Access Denied",
            Some("You have made too many requests continuously. Please try again after some time."),
        );
        assert_eq!(decode_oauth_error(&described), Some(ErrorKind::RateLimited));
        for error in ["invalid_code", "invalid_client", "invalid_grant"] {
            let reply = OAuthErrorReply::new(400, error, None);
            assert_eq!(decode_oauth_error(&reply), None, "{error}");
        }
    }
}
