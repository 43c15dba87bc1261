//! Microsoft's error bodies, classified into [`crmsync_core::Error`] in one function,
//! [`classify`] (and [`classify_parts`] for `$batch` members).
//!
//! Graph answers with the OData envelope `{"error":{"code","message","innerError":{…}}}`;
//! the identity platform with `{"error","error_description":"AADSTSnnnn: …",…}`.
//!
//! | answer | kind |
//! |---|---|
//! | 401 | `ReauthorizationRequired` |
//! | identity `invalid_grant`, `interaction_required`, `consent_required`, `login_required` | `ReauthorizationRequired` (the AADSTS description as cause) |
//! | identity `invalid_client`, `unauthorized_client`, `invalid_scope`, `access_denied`, `authorization_declined` | `AccessDenied` |
//! | 403 | `AccessDenied` |
//! | 404 | `NotFound` |
//! | 409 | `Conflict` |
//! | 410 (`syncStateNotFound`, `resyncRequired`, …) | `CursorExpired` |
//! | 412 | `PreconditionFailed` |
//! | 429, 503 (`ApplicationThrottled`, `MailboxConcurrency`, …) | `RateLimited` (with `Retry-After` when sent) |
//! | 400 about the URL rather than the body (`ErrorInvalidUrlQuery…`, `ErrorInvalidIdMalformed`, a `$filter` refused) | `Provider`: the server refused our query, nothing a record can fix |
//! | other 400 | `InvalidRecord` |
//! | anything else | `Provider` |
//!
//! Messages quote Graph's `code` and `message` (they hold no secrets), never the body.

use std::time::Duration;

use crmsync_core::{Error, ErrorKind};
use crmsync_http::HttpResponse;
use serde_json::Value;

/// An error body, read leniently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Envelope {
    /// Graph's OData envelope.
    Graph { code: String, message: String },
    /// The identity platform's OAuth error.
    Identity { error: String, description: String },
    /// Not JSON, or neither envelope.
    #[default]
    Unreadable,
}

impl Envelope {
    fn parse(body: &[u8]) -> Envelope {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Envelope::Unreadable;
        };
        let text = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match v.get("error") {
            Some(error @ Value::Object(_)) => Envelope::Graph {
                code: text(error, "code"),
                message: text(error, "message"),
            },
            Some(Value::String(error)) => Envelope::Identity {
                error: error.clone(),
                description: text(&v, "error_description"),
            },
            _ => Envelope::Unreadable,
        }
    }
}

/// The crmsync error of an error answer. `what` names the call ("listing calendars") for
/// the message.
pub(crate) fn classify(response: &HttpResponse, what: &str) -> Error {
    let retry_after = crmsync_http::retry::retry_after(response.headers(), chrono::Utc::now());
    classify_parts(
        response.status().as_u16(),
        retry_after,
        response.body(),
        what,
    )
}

/// [`classify`] on the parts of an answer.
pub(crate) fn classify_parts(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    what: &str,
) -> Error {
    match Envelope::parse(body) {
        Envelope::Identity { error, description } => {
            identity_error(status, &error, &description, what)
        }
        Envelope::Graph { code, message } => {
            graph_error(status, retry_after, &code, &message, what)
        }
        Envelope::Unreadable => graph_error(status, retry_after, "", "", what),
    }
}

fn graph_error(
    status: u16,
    retry_after: Option<Duration>,
    code: &str,
    message: &str,
    what: &str,
) -> Error {
    let code_text = if code.is_empty() {
        String::new()
    } else {
        format!(" ({code})")
    };
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    let detail = format!("{what} failed with HTTP {status}{code_text}{said}");
    let kind = match status {
        401 => ErrorKind::ReauthorizationRequired {
            cause: if message.is_empty() {
                "Microsoft Graph refused the access token".to_owned()
            } else {
                message.to_owned()
            },
        },
        403 => {
            return Error::new(
                ErrorKind::AccessDenied,
                format!(
                    "{detail}; check that the grant includes Calendars.ReadWrite and \
                     Contacts.ReadWrite (sign in again to consent), and that the mailbox is \
                     the signed-in user's"
                ),
            );
        }
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        410 => ErrorKind::CursorExpired,
        412 => ErrorKind::PreconditionFailed,
        429 | 503 => ErrorKind::RateLimited { retry_after },
        // A refused query (a `$filter` the server does not take, an id it cannot parse) is
        // not the record's fault: "fix the field named in the message" would mislead.
        400 if is_query_refusal(code) => ErrorKind::Provider,
        400 => ErrorKind::InvalidRecord {
            field: None,
            reason: if message.is_empty() {
                "Microsoft Graph refused the request as invalid".to_owned()
            } else {
                format!("{code}: {message}")
            },
        },
        _ => ErrorKind::Provider,
    };
    Error::new(kind, detail)
}

/// Whether a 400's Graph code says the URL (query options, an id in the path) was refused.
fn is_query_refusal(code: &str) -> bool {
    code.starts_with("ErrorInvalidUrlQuery")
        || code == "ErrorInvalidIdMalformed"
        || code == "ErrorInvalidUrl"
        || code == "Request_UnsupportedQuery"
}

/// The AADSTS description without its trace, correlation and timestamp tail.
fn short_description(description: &str) -> &str {
    description
        .split(" Trace ID:")
        .next()
        .unwrap_or(description)
        .trim()
}

fn identity_error(status: u16, error: &str, description: &str, what: &str) -> Error {
    let description = short_description(description);
    let text = if description.is_empty() {
        error.to_owned()
    } else {
        format!("{error}: {description}")
    };
    match error {
        "invalid_grant"
        | "interaction_required"
        | "consent_required"
        | "login_required"
        | "expired_token" => Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: if description.is_empty() {
                    error.to_owned()
                } else {
                    description.to_owned()
                },
            },
            format!("{what} was refused ({text}); the account must sign in again"),
        ),
        "invalid_client"
        | "unauthorized_client"
        | "invalid_scope"
        | "access_denied"
        | "authorization_declined" => Error::new(
            ErrorKind::AccessDenied,
            format!(
                "{what} was refused ({text}); check the app registration (a public client: \
                 \"Allow public client flows\" on, no secret) and its API permissions"
            ),
        ),
        _ => Error::new(
            ErrorKind::Provider,
            format!("{what} failed with HTTP {status} ({text})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_parts(status, None, body.as_bytes(), "test")
            .kind()
            .clone()
    }

    fn odata(code: &str, message: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-01-05T09:00:00", "request-id": "r", "client-request-id": "c"}}})
        .to_string()
    }

    #[test]
    fn odata_envelope_kinds() {
        assert!(matches!(
            kind(
                401,
                &odata("InvalidAuthenticationToken", "Access token has expired.")
            ),
            ErrorKind::ReauthorizationRequired { .. }
        ));
        assert_eq!(
            kind(403, &odata("ErrorAccessDenied", "Access is denied.")),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            kind(404, &odata("ErrorItemNotFound", "x")),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(409, &odata("ErrorFolderExists", "x")),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(410, &odata("syncStateNotFound", "x")),
            ErrorKind::CursorExpired
        );
        assert_eq!(
            kind(412, &odata("ErrorIrresolvableConflict", "x")),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            classify_parts(
                429,
                Some(Duration::from_secs(3)),
                odata("ApplicationThrottled", "x").as_bytes(),
                "x"
            )
            .kind(),
            &ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            kind(503, &odata("MailboxConcurrency", "x")),
            ErrorKind::RateLimited { retry_after: None }
        );
        assert!(matches!(
            kind(400, &odata("ErrorInvalidParameter", "x")),
            ErrorKind::InvalidRecord { .. }
        ));
        assert_eq!(kind(500, "<html>"), ErrorKind::Provider);
    }

    #[test]
    fn aadsts_errors_need_a_new_sign_in_with_the_cause() {
        for error in ["invalid_grant", "interaction_required", "consent_required"] {
            let body = serde_json::json!({"error": error,
                "error_description": "AADSTS70000: The grant is expired. Trace ID: t Correlation ID: c Timestamp: x"})
            .to_string();
            match kind(400, &body) {
                ErrorKind::ReauthorizationRequired { cause } => {
                    assert_eq!(cause, "AADSTS70000: The grant is expired.", "{error}")
                }
                other => panic!("{error}: {other:?}"),
            }
        }
        let declined = serde_json::json!({"error": "authorization_declined"}).to_string();
        assert_eq!(kind(400, &declined), ErrorKind::AccessDenied);
        // A refused query is the server's answer to our URL, not an invalid record.
        assert_eq!(
            kind(
                400,
                &odata("ErrorInvalidUrlQueryFilter", "The $filter is not supported")
            ),
            ErrorKind::Provider
        );
        assert_eq!(
            kind(400, &odata("ErrorInvalidIdMalformed", "Id is malformed.")),
            ErrorKind::Provider
        );
    }
}
