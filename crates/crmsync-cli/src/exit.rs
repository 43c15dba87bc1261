//! Exit codes, and the error type of commands.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (a cap reached is a warning in the report) |
//! | 1 | some records failed (they are in the report, and retried next run) |
//! | 2 | configuration or usage error |
//! | 3 | re-authorisation needed (`crmsync auth <account>`) |
//! | 4 | a guard stopped the run (mass deletion) |

use std::fmt;

use crmsync_core::engine::SyncReport;
use crmsync_core::{Error, ErrorKind};

/// Everything went through.
pub const SUCCESS: u8 = 0;
/// Some records failed.
pub const RECORDS_FAILED: u8 = 1;
/// A configuration or usage error (also clap's code for bad arguments).
pub const USAGE: u8 = 2;
/// The account must be authorised again.
pub const REAUTHORIZE: u8 = 3;
/// A guard (mass deletion) stopped the run before writing.
pub const GUARD: u8 = 4;

/// The exit code for a library error that stopped a command.
///
/// Re-authorisation → 3; configuration problems (an invalid input, a calendar that does
/// not resolve, none configured) → 2; anything else (network, provider, state) → 1.
pub fn code_for_error(error: &Error) -> u8 {
    match error.kind() {
        ErrorKind::ReauthorizationRequired { .. } => REAUTHORIZE,
        ErrorKind::InvalidInput
        | ErrorKind::CalendarNotFound { .. }
        | ErrorKind::CalendarNameMissing
        | ErrorKind::NoCalendars => USAGE,
        _ => RECORDS_FAILED,
    }
}

/// The exit code of a finished run: 4 when a guard stopped it, 3 when records failed
/// because the account must sign in again, 1 when records failed otherwise, else 0 (a cap
/// reached is only a warning).
pub fn code_for_report(report: &SyncReport) -> u8 {
    let reauthorize = ErrorKind::ReauthorizationRequired {
        cause: String::new(),
    };
    if report.guard.is_some() {
        GUARD
    } else if report.errors.iter().any(|e| e.kind == reauthorize.as_str()) {
        REAUTHORIZE
    } else if !report.errors.is_empty() {
        RECORDS_FAILED
    } else {
        SUCCESS
    }
}

/// The code of several outcomes: the most serious one (2, then 3, then 4, then 1, then 0).
pub fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    let rank = |c: u8| match c {
        USAGE => 4,
        REAUTHORIZE => 3,
        GUARD => 2,
        SUCCESS => 0,
        _ => 1,
    };
    codes
        .into_iter()
        .max_by_key(|&c| rank(c))
        .unwrap_or(SUCCESS)
}

/// Why a command stopped: a message, what to do about it, and the exit code.
#[derive(Debug, Clone)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub remedy: Option<String>,
}

impl CliError {
    /// A configuration error (exit code 2).
    pub fn config(message: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            message: message.into(),
            remedy: None,
        }
    }

    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::config(message)
    }

    /// Adds the remedy.
    #[must_use]
    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }

    /// A library error met while doing `context`, with its remedy and exit code.
    pub fn from_error(context: &str, error: &Error) -> Self {
        CliError {
            code: code_for_error(error),
            message: format!("{context}: {error}"),
            remedy: Some(error.remedy().to_owned()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(remedy) = &self.remedy {
            write!(f, "\n  what to do: {remedy}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_prefers_configuration_then_reauthorisation() {
        assert_eq!(worst([0, 1, 4]), GUARD);
        assert_eq!(worst([1, 3, 4]), REAUTHORIZE);
        assert_eq!(worst([2, 3]), USAGE);
        assert_eq!(worst([]), SUCCESS);
    }
}
