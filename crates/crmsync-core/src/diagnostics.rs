//! What a provider's "Test" button reports: one [`Finding`] per check (credentials, scopes,
//! API reachability, the calendar name), each with its remedy when something is wrong.
//!
//! Providers build a [`Diagnosis`] from their own checks; the command-line tool's `doctor`
//! prints it and turns [`Diagnosis::worst`] into an exit code.
//!
//! ```
//! use crmsync_core::diagnostics::{Diagnosis, Finding, Severity};
//! use crmsync_core::{Error, ErrorKind};
//!
//! let mut diagnosis = Diagnosis::default();
//! diagnosis.push(Finding::ok("token", "the access token is valid"));
//! diagnosis.push(Finding::from_error(
//!     "calendar",
//!     &Error::new(
//!         ErrorKind::CalendarNotFound { name: "Work".into() },
//!         "no calendar named \"Work\"",
//!     ),
//! ));
//! assert_eq!(diagnosis.worst(), Severity::Error);
//! assert!(!diagnosis.is_healthy());
//! assert!(diagnosis.to_string().contains("remedy:"));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Syncing works, but something deserves attention.
    Warning,
    /// Syncing will fail until the remedy is applied.
    Error,
}

impl Severity {
    /// `ok`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// A short, stable name of the check (`token`, `scopes`, `calendar_api`, `calendar`…).
    pub check: String,
    /// How bad it is.
    pub severity: Severity,
    /// What was found, for a person.
    pub message: String,
    /// The error kind behind a failed check ([`ErrorKind::as_str`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<String>,
    /// What to do about it; `None` when the check passed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remedy: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn ok(check: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            severity: Severity::Ok,
            message: message.into(),
            kind: None,
            remedy: None,
        }
    }

    /// A warning, with what to do about it.
    pub fn warning(
        check: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            severity: Severity::Warning,
            message: message.into(),
            kind: None,
            remedy: Some(remedy.into()),
        }
    }

    /// A failed check, from the typed error that failed it (its kind and remedy).
    pub fn from_error(check: impl Into<String>, error: &Error) -> Self {
        Finding {
            check: check.into(),
            severity: Severity::Error,
            message: error.to_string(),
            kind: Some(error.kind().as_str().to_owned()),
            remedy: Some(error.remedy().to_owned()),
        }
    }

    /// Whether the failure was a missing or revoked authorisation.
    pub fn needs_reauthorization(&self) -> bool {
        self.severity == Severity::Error
            && self.kind.as_deref()
                == Some(
                    ErrorKind::ReauthorizationRequired {
                        cause: String::new(),
                    }
                    .as_str(),
                )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.severity.as_str(),
            self.check,
            self.message
        )?;
        if let Some(remedy) = &self.remedy {
            write!(f, " (remedy: {remedy})")?;
        }
        Ok(())
    }
}

/// Every finding of one provider account's checks, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// Adds a finding.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// The worst severity found ([`Severity::Ok`] when there is no finding).
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// Whether no check failed (warnings allowed).
    pub fn is_healthy(&self) -> bool {
        self.worst() < Severity::Error
    }

    /// The failed checks.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reauthorization_is_recognised_and_is_the_worst() {
        let e = Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: "Token has been expired or revoked.".into(),
            },
            "refresh failed",
        );
        let finding = Finding::from_error("token", &e);
        assert!(finding.needs_reauthorization());
        assert_eq!(finding.kind.as_deref(), Some(e.kind().as_str()));
        assert_eq!(finding.remedy.as_deref(), Some(e.remedy()));
        let mut d = Diagnosis::default();
        d.push(Finding::warning(
            "scopes",
            "contacts scope missing",
            "sign in again",
        ));
        assert!(d.is_healthy());
        assert_eq!(d.worst(), Severity::Warning);
        d.push(finding);
        assert_eq!(d.errors().count(), 1);
        assert!(!d.is_healthy());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["findings"][1]["severity"], "error");
        assert!(json["findings"][0].get("kind").is_none());
    }

    #[test]
    fn an_empty_diagnosis_is_healthy() {
        assert_eq!(Diagnosis::default().worst(), Severity::Ok);
        assert!(!Finding::ok("token", "valid").needs_reauthorization());
    }
}
