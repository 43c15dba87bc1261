//! The exit-code mapping, including what the memory provider cannot produce.

use crmsync_cli::exit::{
    CliError, GUARD, REAUTHORIZE, RECORDS_FAILED, SUCCESS, USAGE, code_for_error, code_for_report,
    worst,
};
use crmsync_core::engine::{GuardTrip, RecordError, RunKind, SyncReport};
use crmsync_core::{Error, ErrorKind, Side};

#[test]
fn reauthorisation_is_exit_code_3() {
    let e = Error::new(
        ErrorKind::ReauthorizationRequired {
            cause: "Token has been expired or revoked.".into(),
        },
        "invalid_grant",
    );
    assert_eq!(code_for_error(&e), REAUTHORIZE);
    let cli = CliError::from_error("syncing the events", &e);
    assert_eq!(cli.code, 3);
    assert!(cli.to_string().contains("crmsync auth"));
}

#[test]
fn configuration_problems_are_exit_code_2() {
    for kind in [
        ErrorKind::InvalidInput,
        ErrorKind::CalendarNotFound { name: "x".into() },
        ErrorKind::CalendarNameMissing,
        ErrorKind::NoCalendars,
    ] {
        assert_eq!(code_for_error(&Error::new(kind, "x")), USAGE);
    }
    assert_eq!(
        code_for_error(&Error::new(ErrorKind::Transport, "x")),
        RECORDS_FAILED
    );
}

#[test]
fn reports_map_to_0_1_4() {
    let mut report = SyncReport::new(RunKind::Sync, "k".into(), chrono::Utc::now());
    assert_eq!(code_for_report(&report), SUCCESS);
    report.errors.push(RecordError::new(
        Side::Provider,
        Some("x".into()),
        &Error::new(ErrorKind::Provider, "boom"),
    ));
    assert_eq!(code_for_report(&report), RECORDS_FAILED);
    report.errors.push(RecordError::new(
        Side::Provider,
        Some("y".into()),
        &Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: "revoked".into(),
            },
            "invalid_grant",
        ),
    ));
    assert_eq!(code_for_report(&report), REAUTHORIZE);
    report.guard = Some(GuardTrip {
        side: Side::Crm,
        deletions: 9,
        linked: 10,
    });
    assert_eq!(code_for_report(&report), GUARD);
    assert_eq!(worst([SUCCESS, GUARD, REAUTHORIZE]), REAUTHORIZE);
}
