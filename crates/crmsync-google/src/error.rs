//! Google's error envelopes, classified into [`crmsync_core::Error`] in one function,
//! [`classify`].
//!
//! Calendar answers with the legacy envelope
//! `{"error":{"errors":[{"domain","reason","message",…}],"code","message"}}`; People
//! and newer APIs with google.rpc `{"error":{"code","message","status","details":[{"reason"}]}}`.
//!
//! | answer | kind |
//! |---|---|
//! | 401 | `ReauthorizationRequired` |
//! | 403 `rateLimitExceeded` / `userRateLimitExceeded`, 429, `RESOURCE_EXHAUSTED` | `RateLimited` (with `Retry-After` when sent) |
//! | 403 `insufficientPermissions`, `ACCESS_TOKEN_SCOPE_INSUFFICIENT`, other 403 | `AccessDenied` |
//! | 404, 410 `deleted` | `NotFound` |
//! | 410 (`fullSyncRequired`, `updatedMinTooLongAgo`, no reason) | `CursorExpired` |
//! | 400 with `EXPIRED_SYNC_TOKEN` | `CursorExpired` |
//! | 409 | `Conflict` |
//! | 412 `conditionNotMet`, 400 `FAILED_PRECONDITION` | `PreconditionFailed` |
//! | other 400 | `InvalidRecord` (the field Google names, when it names one) |
//! | 5xx and anything else | `Provider` |

use std::time::Duration;

use crmsync_core::{Error, ErrorKind};
use crmsync_http::HttpResponse;
use serde_json::Value;

/// One reason of a Google error body (legacy `errors[]` or google.rpc `details[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Reason {
    domain: String,
    reason: String,
    location: Option<String>,
}

/// A Google error body, read leniently: an unreadable body is an envelope with no reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Envelope {
    /// `error.errors[]` (Calendar).
    Legacy {
        message: String,
        reasons: Vec<Reason>,
    },
    /// google.rpc `error.status` and `error.details[]` (People).
    Rpc {
        message: String,
        status: String,
        reasons: Vec<Reason>,
    },
    /// Not JSON, or not an error envelope.
    #[default]
    Unreadable,
}

impl Envelope {
    fn parse(body: &[u8]) -> Envelope {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Envelope::Unreadable;
        };
        let Some(error) = v.get("error").filter(|e| e.is_object()) else {
            return Envelope::Unreadable;
        };
        let message = error["message"].as_str().unwrap_or_default().to_owned();
        let text = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(errors) = error.get("errors").and_then(Value::as_array) {
            return Envelope::Legacy {
                message,
                reasons: errors
                    .iter()
                    .map(|e| Reason {
                        domain: text(e, "domain"),
                        reason: text(e, "reason"),
                        location: e.get("location").and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect(),
            };
        }
        let reasons = error
            .get("details")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter(|x| x.get("reason").is_some())
                    .map(|x| Reason {
                        domain: text(x, "domain"),
                        reason: text(x, "reason"),
                        location: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Envelope::Rpc {
            message,
            status: text(error, "status"),
            reasons,
        }
    }

    fn message(&self) -> &str {
        match self {
            Envelope::Legacy { message, .. } | Envelope::Rpc { message, .. } => message,
            Envelope::Unreadable => "",
        }
    }

    fn reasons(&self) -> &[Reason] {
        match self {
            Envelope::Legacy { reasons, .. } | Envelope::Rpc { reasons, .. } => reasons,
            Envelope::Unreadable => &[],
        }
    }

    fn status(&self) -> &str {
        match self {
            Envelope::Rpc { status, .. } => status,
            _ => "",
        }
    }

    fn has_reason(&self, wanted: &[&str]) -> bool {
        self.reasons()
            .iter()
            .any(|r| wanted.iter().any(|w| r.reason.eq_ignore_ascii_case(w)))
    }
}

/// The crmsync error of a Google error answer. `what` names the call ("listing events of
/// calendar …") for the message; the body's own message is quoted (Google's error
/// messages hold no secrets), the body itself never is.
pub(crate) fn classify(response: &HttpResponse, what: &str) -> Error {
    let retry_after = crmsync_http::retry::retry_after(response.headers(), chrono::Utc::now());
    classify_parts(
        response.status().as_u16(),
        retry_after,
        response.body(),
        what,
    )
}

/// [`classify`] on the parts of an answer (batch parts have no `HttpResponse`).
pub(crate) fn classify_parts(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    what: &str,
) -> Error {
    let envelope = Envelope::parse(body);
    let said = match envelope.message() {
        "" => String::new(),
        m => format!(": {m}"),
    };
    let reason = envelope
        .reasons()
        .first()
        .map(|r| format!(" ({}/{})", r.domain, r.reason))
        .unwrap_or_default();
    let detail = format!("{what} failed with HTTP {status}{reason}{said}");
    let rate_limited = status == 429
        || envelope.status() == "RESOURCE_EXHAUSTED"
        || envelope.has_reason(&[
            "rateLimitExceeded",
            "userRateLimitExceeded",
            "RATE_LIMIT_EXCEEDED",
        ]);
    let kind = match status {
        401 => ErrorKind::ReauthorizationRequired {
            cause: if envelope.message().is_empty() {
                "Google refused the access token".to_owned()
            } else {
                envelope.message().to_owned()
            },
        },
        403 | 429 if rate_limited => ErrorKind::RateLimited { retry_after },
        403 if envelope.has_reason(&["quotaExceeded", "dailyLimitExceeded"]) => {
            // Daily quotas: retrying within minutes cannot help.
            ErrorKind::RateLimited {
                retry_after: retry_after.or(Some(Duration::from_secs(3600))),
            }
        }
        403 => {
            let scope = envelope
                .has_reason(&["insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"])
                || envelope
                    .message()
                    .contains("insufficient authentication scopes");
            let hint = if scope {
                "; the grant lacks a scope: sign in again and accept every permission asked \
                 (https://www.googleapis.com/auth/calendar and …/auth/contacts)"
            } else {
                ""
            };
            return Error::new(ErrorKind::AccessDenied, format!("{detail}{hint}"));
        }
        429 => ErrorKind::RateLimited { retry_after },
        404 => ErrorKind::NotFound,
        410 if envelope.has_reason(&["deleted"]) => ErrorKind::NotFound,
        410 => ErrorKind::CursorExpired,
        400 if envelope.has_reason(&["EXPIRED_SYNC_TOKEN"]) => ErrorKind::CursorExpired,
        400 if envelope.status() == "FAILED_PRECONDITION" => ErrorKind::PreconditionFailed,
        409 => ErrorKind::Conflict,
        412 => ErrorKind::PreconditionFailed,
        400 => {
            let field = envelope
                .reasons()
                .iter()
                .find_map(|r| r.location.clone())
                .filter(|l| !l.is_empty());
            ErrorKind::InvalidRecord {
                field,
                reason: if envelope.message().is_empty() {
                    "Google refused the request as invalid".to_owned()
                } else {
                    envelope.message().to_owned()
                },
            }
        }
        _ => ErrorKind::Provider,
    };
    Error::new(kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_parts(status, None, body.as_bytes(), "test")
            .kind()
            .clone()
    }

    fn legacy(code: u16, domain: &str, reason: &str, message: &str) -> String {
        serde_json::json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message}], "code": code, "message": message}}).to_string()
    }

    #[test]
    fn legacy_envelope_kinds() {
        assert!(matches!(
            kind(
                401,
                &legacy(401, "global", "authError", "Invalid Credentials")
            ),
            ErrorKind::ReauthorizationRequired { .. }
        ));
        assert_eq!(
            kind(
                403,
                &legacy(
                    403,
                    "usageLimits",
                    "rateLimitExceeded",
                    "Rate Limit Exceeded"
                )
            ),
            ErrorKind::RateLimited { retry_after: None }
        );
        assert_eq!(
            kind(
                403,
                &legacy(403, "usageLimits", "userRateLimitExceeded", "x")
            ),
            ErrorKind::RateLimited { retry_after: None }
        );
        assert_eq!(
            kind(403, &legacy(403, "global", "insufficientPermissions", "x")),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            kind(404, &legacy(404, "global", "notFound", "Not Found")),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                410,
                &legacy(
                    410,
                    "calendar",
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required."
                )
            ),
            ErrorKind::CursorExpired
        );
        assert_eq!(kind(410, "{}"), ErrorKind::CursorExpired);
        assert_eq!(
            kind(
                410,
                &legacy(410, "global", "deleted", "Resource has been deleted")
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                409,
                &legacy(
                    409,
                    "global",
                    "duplicate",
                    "The requested identifier already exists."
                )
            ),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(
                412,
                &legacy(412, "global", "conditionNotMet", "Precondition Failed")
            ),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            kind(500, &legacy(500, "global", "backendError", "Backend Error")),
            ErrorKind::Provider
        );
        assert_eq!(kind(503, "<html>"), ErrorKind::Provider);
        assert!(matches!(
            kind(
                400,
                &legacy(
                    400,
                    "calendar",
                    "timeRangeEmpty",
                    "The specified time range is empty."
                )
            ),
            ErrorKind::InvalidRecord { .. }
        ));
    }

    #[test]
    fn scope_error_says_what_to_do() {
        let e = classify_parts(
            403,
            None,
            legacy(
                403,
                "global",
                "insufficientPermissions",
                "Insufficient Permission",
            )
            .as_bytes(),
            "listing",
        );
        assert_eq!(e.kind(), &ErrorKind::AccessDenied);
        assert!(e.to_string().contains("sign in again"), "{e}");
    }

    #[test]
    fn rpc_envelope_kinds() {
        let expired = r#"{"error":{"code":400,"message":"Sync token is expired. Clear local cache and retry call without the sync token.","status":"FAILED_PRECONDITION","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"EXPIRED_SYNC_TOKEN","domain":"people.googleapis.com"}]}}"#;
        assert_eq!(kind(400, expired), ErrorKind::CursorExpired);
        let stale = r#"{"error":{"code":400,"message":"Request person.etag is different than the current person.etag. Clear local cache and get the latest person.","status":"FAILED_PRECONDITION"}}"#;
        assert_eq!(kind(400, stale), ErrorKind::PreconditionFailed);
        let limited = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            classify_parts(429, Some(Duration::from_secs(7)), limited.as_bytes(), "x").kind(),
            &ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let scope = r#"{"error":{"code":403,"message":"Request had insufficient authentication scopes.","status":"PERMISSION_DENIED","details":[{"reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;
        assert_eq!(kind(403, scope), ErrorKind::AccessDenied);
    }
}
