//! The one public error type of crmsync.
//!
//! Every store, state backend and provider reports failures as an [`Error`] whose
//! [`ErrorKind`] is stable and matchable. Provider-specific errors stay private to their
//! crates and are classified into a kind at the boundary, in one function per provider.
//! Each kind knows whether retrying can help ([`Error::is_retryable`]) and what a person
//! should do about it ([`Error::remedy`]).

use std::fmt;
use std::time::Duration;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a stable, matchable category.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record, collection or link does not exist (or no longer exists).
    NotFound,
    /// No calendar with this name exists in the account (or none the user may write to).
    CalendarNotFound {
        /// The name that was looked for.
        name: String,
    },
    /// The configuration names no calendar, and one is needed.
    CalendarNameMissing,
    /// The account has no calendar the user may write to.
    NoCalendars,
    /// The account's authorisation is gone: the user must sign in again.
    ReauthorizationRequired {
        /// Why, as the provider told it (e.g. "Token has been expired or revoked.").
        cause: String,
    },
    /// The credentials are valid but lack a permission or scope.
    AccessDenied,
    /// The provider asked us to slow down.
    RateLimited {
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The change-feed cursor (sync token, delta link) is no longer accepted; a full
    /// listing reconciled against the links is needed.
    CursorExpired,
    /// A write carried a version (etag, change key) that is no longer current.
    PreconditionFailed,
    /// The write conflicts with existing data (e.g. the id or name is taken).
    Conflict,
    /// A record, or one of its fields, is not valid.
    InvalidRecord {
        /// The field at fault, when one is (its snake_case name).
        field: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The store cannot do this operation; the engine plans around it.
    Unsupported,
    /// A cap was reached (records per collection, batch size, request budget).
    LimitReached,
    /// The network or the connection failed before an answer came.
    Transport,
    /// The provider answered with an error we could not classify more precisely.
    Provider,
    /// The sync state could not be read or written.
    State,
    /// The configuration or an argument is not valid.
    InvalidInput,
}

impl ErrorKind {
    /// A short sentence naming the category, used when no message is given.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::CalendarNotFound { .. } => "calendar not found",
            ErrorKind::CalendarNameMissing => "no calendar name configured",
            ErrorKind::NoCalendars => "the account has no writable calendar",
            ErrorKind::ReauthorizationRequired { .. } => "the account must be authorised again",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::RateLimited { .. } => "rate limited by the provider",
            ErrorKind::CursorExpired => "the sync cursor expired",
            ErrorKind::PreconditionFailed => "the record changed since it was read",
            ErrorKind::Conflict => "conflict with existing data",
            ErrorKind::InvalidRecord { .. } => "invalid record",
            ErrorKind::Unsupported => "operation not supported by this store",
            ErrorKind::LimitReached => "limit reached",
            ErrorKind::Transport => "network error",
            ErrorKind::Provider => "provider error",
            ErrorKind::State => "sync state error",
            ErrorKind::InvalidInput => "invalid input",
        }
    }
}

/// The error of every crmsync operation: a stable [`ErrorKind`], a message with context and,
/// where there is one, the underlying cause.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of this kind with a message giving the context.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Shorthand for an [`ErrorKind::InvalidRecord`] error.
    pub fn invalid_record(field: Option<&str>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let message = match field {
            Some(f) => format!("invalid field `{f}`: {reason}"),
            None => format!("invalid record: {reason}"),
        };
        Error::new(
            ErrorKind::InvalidRecord {
                field: field.map(str::to_owned),
                reason,
            },
            message,
        )
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::State`] error.
    pub fn state(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::State, message)
    }

    /// The stable category of this error.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The context message (without the cause).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same request may succeed if tried again later (rate limits, network
    /// failures, provider outages). Preconditions, conflicts and invalid records are not
    /// retryable as such: they need a fresh read or a fix first.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited { .. } | ErrorKind::Transport | ErrorKind::Provider
        )
    }

    /// How long the provider asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// The sentence a person should act on to fix this.
    pub fn remedy(&self) -> &'static str {
        match &self.kind {
            ErrorKind::NotFound => {
                "the record was deleted on the other side; the next sync reconciles it"
            }
            ErrorKind::CalendarNotFound { .. } => {
                "check the calendar's name in the provider's calendar app (it is case-sensitive) and that the user may write to it"
            }
            ErrorKind::CalendarNameMissing => {
                "set the name of the calendar to sync in the account's configuration"
            }
            ErrorKind::NoCalendars => {
                "create a calendar in the account, or grant the user write access to one"
            }
            ErrorKind::ReauthorizationRequired { .. } => {
                "sign in again (`crmsync auth <account>`); if the app is in testing mode, add this user to the OAuth consent screen's test users or publish the app"
            }
            ErrorKind::AccessDenied => {
                "grant the missing permission or scope to the app, then sign in again"
            }
            ErrorKind::RateLimited { .. } => {
                "wait and run again; if it persists, lower the sync frequency or ask the provider for a higher quota"
            }
            ErrorKind::CursorExpired => {
                "nothing to do: the next run reconciles a full listing against the links"
            }
            ErrorKind::PreconditionFailed => {
                "nothing to do: the record is read again and merged on the next run"
            }
            ErrorKind::Conflict => {
                "an item with the same id or name already exists; reset the link or rename the item"
            }
            ErrorKind::InvalidRecord { .. } => {
                "fix the field named in the message in the record, then sync again"
            }
            ErrorKind::Unsupported => {
                "this provider cannot do this; change the field policy to skip it"
            }
            ErrorKind::LimitReached => {
                "narrow the sync window or raise the cap in the configuration"
            }
            ErrorKind::Transport => "check the network connection and run again",
            ErrorKind::Provider => {
                "the provider failed; run again later, and report it if it persists"
            }
            ErrorKind::State => {
                "check that the state database is reachable and writable, then run again"
            }
            ErrorKind::InvalidInput => "fix the configuration or argument named in the message",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl Clone for Error {
    /// Clones the kind and message; the cause is kept as its text.
    fn clone(&self) -> Self {
        Error {
            kind: self.kind.clone(),
            message: self.message.clone(),
            source: self
                .source
                .as_ref()
                .map(|s| Box::new(SourceText(s.to_string())) as _),
        }
    }
}

#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(Error::new(ErrorKind::Transport, "x").is_retryable());
        assert!(
            Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_secs(3))
                },
                "x"
            )
            .is_retryable()
        );
        assert!(!Error::new(ErrorKind::PreconditionFailed, "x").is_retryable());
        assert!(!Error::invalid_record(Some("title"), "too long").is_retryable());
    }

    #[test]
    fn invalid_record_names_the_field() {
        let e = Error::invalid_record(Some("start"), "impossible date");
        assert_eq!(e.to_string(), "invalid field `start`: impossible date");
        assert!(
            matches!(e.kind(), ErrorKind::InvalidRecord { field: Some(f), .. } if f == "start")
        );
    }

    #[test]
    fn every_kind_has_a_remedy() {
        let kinds = [
            ErrorKind::NotFound,
            ErrorKind::CalendarNotFound { name: "x".into() },
            ErrorKind::CalendarNameMissing,
            ErrorKind::NoCalendars,
            ErrorKind::ReauthorizationRequired { cause: "x".into() },
            ErrorKind::AccessDenied,
            ErrorKind::RateLimited { retry_after: None },
            ErrorKind::CursorExpired,
            ErrorKind::PreconditionFailed,
            ErrorKind::Conflict,
            ErrorKind::InvalidRecord {
                field: None,
                reason: "x".into(),
            },
            ErrorKind::Unsupported,
            ErrorKind::LimitReached,
            ErrorKind::Transport,
            ErrorKind::Provider,
            ErrorKind::State,
            ErrorKind::InvalidInput,
        ];
        for kind in kinds {
            let e = Error::new(kind, "");
            assert!(!e.remedy().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
