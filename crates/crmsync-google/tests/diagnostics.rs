//! The "Test" button ([`crmsync_google::diagnose`]) against the Google fake.

mod common;

use chrono::{Duration, Utc};
use common::Env;
use crmsync_core::diagnostics::{Diagnosis, Finding, Severity};
use crmsync_core::{AccessToken, ErrorKind, RefreshToken, TokenSet, TokenStore};
use crmsync_google::{GoogleClient, GoogleConfig, checks, diagnose};
use crmsync_testkit::{DEFAULT_USER, Endpoint, SCOPE_CALENDAR, SCOPE_CONTACTS};

fn client_with(env: &Env, config: GoogleConfig) -> GoogleClient {
    GoogleClient::new(config, env.http.clone(), env.auth(), env.account.clone())
}

fn finding<'a>(d: &'a Diagnosis, check: &str) -> &'a Finding {
    d.findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no `{check}` finding in:\n{d}"))
}

fn checks_of(d: &Diagnosis) -> Vec<&str> {
    d.findings.iter().map(|f| f.check.as_str()).collect()
}

/// Replaces the stored tokens by a fresh grant of `scopes`.
async fn grant(env: &Env, scopes: &[&str]) {
    let issued = env.fake.issue_tokens(DEFAULT_USER, scopes);
    env.tokens
        .save(
            &env.account,
            &TokenSet::new(
                AccessToken::new(issued.access_token),
                Some(RefreshToken::new(issued.refresh_token)),
                Utc::now() + Duration::minutes(59),
            )
            .with_scopes(scopes.iter().copied()),
        )
        .await
        .expect("save tokens");
}

#[tokio::test]
async fn a_healthy_account_passes_every_check_and_no_secret_is_shown() {
    let env = Env::new().await;
    env.fake.reset_counters();
    let d = diagnose(&env.client()).await;
    assert_eq!(
        checks_of(&d),
        [
            checks::TOKEN,
            checks::SCOPES,
            checks::CALENDAR_API,
            checks::PEOPLE_API,
            checks::CONTACTS,
            checks::CALENDAR
        ],
        "{d}"
    );
    assert!(d.findings.iter().all(|f| f.severity == Severity::Ok), "{d}");
    assert!(d.findings.iter().all(|f| f.remedy.is_none()), "{d}");
    assert!(finding(&d, checks::CALENDAR).message.contains("CRM"), "{d}");
    assert!(
        finding(&d, checks::CONTACTS)
            .message
            .contains("whole address book"),
        "{d}"
    );
    assert_eq!(env.fake.requests(Endpoint::ContactGroupsList), 0);
    // One refresh, one calendar list (kept for the name check), one People read.
    assert_eq!(env.fake.requests(Endpoint::Token), 1);
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 1);
    assert_eq!(env.fake.requests(Endpoint::ConnectionsList), 1);
    let shown = format!("{d}{d:?}{}", serde_json::to_string(&d).unwrap());
    assert!(!shown.contains(&env.refresh_token), "{shown}");
    assert!(!shown.contains(&env.access_token), "{shown}");
    assert!(!shown.contains(crmsync_testkit::DEFAULT_CLIENT_SECRET));
}

#[tokio::test]
async fn a_wrong_or_missing_calendar_name_says_what_to_do() {
    let env = Env::new().await;
    let d = diagnose(&client_with(
        &env,
        env.config.clone().with_calendar_name("Sales"),
    ))
    .await;
    let calendar = finding(&d, checks::CALENDAR);
    assert_eq!(calendar.severity, Severity::Error, "{d}");
    assert_eq!(
        calendar.kind.as_deref(),
        Some(
            ErrorKind::CalendarNotFound {
                name: String::new()
            }
            .as_str()
        )
    );
    assert!(calendar.message.contains("Sales"), "{d}");
    assert!(
        calendar.remedy.as_deref().is_some_and(|r| !r.is_empty()),
        "{d}"
    );
    assert!(!calendar.needs_reauthorization());
    // Everything else is fine.
    assert_eq!(d.errors().count(), 1, "{d}");

    let mut unnamed = env.config.clone();
    unnamed.calendar_name = None;
    let d = diagnose(&client_with(&env, unnamed)).await;
    let calendar = finding(&d, checks::CALENDAR);
    assert_eq!(
        calendar.kind.as_deref(),
        Some(ErrorKind::CalendarNameMissing.as_str()),
        "{d}"
    );
    assert!(calendar.remedy.is_some());
}

#[tokio::test]
async fn a_read_only_calendar_is_not_a_calendar_to_sync() {
    let env = Env::new().await;
    env.fake.add_calendar(
        crmsync_testkit::CalendarSpec::new("holidays@group.calendar.google.com", "Holidays")
            .access_role("reader"),
    );
    let d = diagnose(&client_with(
        &env,
        env.config.clone().with_calendar_name("Holidays"),
    ))
    .await;
    let calendar = finding(&d, checks::CALENDAR);
    assert_eq!(
        calendar.kind.as_deref(),
        Some(
            ErrorKind::CalendarNotFound {
                name: String::new()
            }
            .as_str()
        ),
        "a read-only calendar is not a calendar to sync: {d}"
    );
}

#[tokio::test]
async fn a_revoked_grant_needs_reauthorization_with_its_cause() {
    let env = Env::new().await;
    env.fake.revoke_refresh_tokens();
    env.fake.reset_counters();
    let d = diagnose(&env.client()).await;
    // The access token has not expired yet; the refresh finds the revocation anyway.
    let token = finding(&d, checks::TOKEN);
    assert!(token.needs_reauthorization(), "{d}");
    assert!(
        token.message.contains("Testing"),
        "the likely cause is named: {d}"
    );
    assert!(token.remedy.is_some());
    assert_eq!(
        checks_of(&d),
        [checks::TOKEN],
        "nothing else can be checked: {d}"
    );
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 0);
    assert!(!d.is_healthy());
}

#[tokio::test]
async fn an_account_that_never_signed_in_needs_authorization() {
    let env = Env::new().await;
    env.tokens.purge(&env.account).await.unwrap();
    let d = diagnose(&env.client()).await;
    assert!(finding(&d, checks::TOKEN).needs_reauthorization(), "{d}");
    assert_eq!(d.findings.len(), 1);
}

/// Decision: a Contacts scope left unticked is a warning (calendars sync; the People
/// check is not run), a Calendar scope left unticked is an error.
#[tokio::test]
async fn a_missing_contacts_scope_is_a_warning_and_a_missing_calendar_scope_an_error() {
    let env = Env::new().await;
    grant(&env, &[SCOPE_CALENDAR]).await;
    env.fake.reset_counters();
    let d = diagnose(&env.client()).await;
    let scopes = finding(&d, checks::SCOPES);
    assert_eq!(scopes.severity, Severity::Warning, "{d}");
    assert!(scopes.message.contains(SCOPE_CONTACTS), "{d}");
    assert!(scopes.remedy.is_some());
    assert_eq!(finding(&d, checks::PEOPLE_API).severity, Severity::Warning);
    assert_eq!(env.fake.requests(Endpoint::ConnectionsList), 0);
    assert_eq!(finding(&d, checks::CALENDAR).severity, Severity::Ok, "{d}");
    assert!(d.is_healthy(), "{d}");
    assert_eq!(d.worst(), Severity::Warning);

    grant(&env, &[SCOPE_CONTACTS]).await;
    let d = diagnose(&env.client()).await;
    let scopes = finding(&d, checks::SCOPES);
    assert_eq!(scopes.severity, Severity::Error, "{d}");
    assert_eq!(
        scopes.kind.as_deref(),
        Some(ErrorKind::AccessDenied.as_str())
    );
    assert!(scopes.message.contains(SCOPE_CALENDAR), "{d}");
    // Google refuses the calendar list too: 403 insufficient scopes.
    assert_eq!(
        finding(&d, checks::CALENDAR_API).kind.as_deref(),
        Some(ErrorKind::AccessDenied.as_str()),
        "{d}"
    );
    assert_eq!(
        finding(&d, checks::PEOPLE_API).severity,
        Severity::Ok,
        "{d}"
    );
    assert!(!d.is_healthy());
}

#[tokio::test]
async fn a_calendar_only_configuration_does_not_check_the_people_api() {
    let env = Env::new().await;
    grant(&env, &[SCOPE_CALENDAR]).await;
    let config = env.config.clone().with_scopes([SCOPE_CALENDAR]);
    let auth = crmsync_google::GoogleAuth::new(&config, env.http.clone(), env.tokens.clone());
    let client = GoogleClient::new(config, env.http.clone(), auth, env.account.clone());
    let d = diagnose(&client).await;
    assert_eq!(
        checks_of(&d),
        [
            checks::TOKEN,
            checks::SCOPES,
            checks::CALENDAR_API,
            checks::CALENDAR
        ],
        "{d}"
    );
    assert!(d.findings.iter().all(|f| f.severity == Severity::Ok), "{d}");
}

/// The CLI and hosts await these from multi-threaded runtimes: their futures are `Send`.
#[tokio::test]
async fn diagnose_and_free_busy_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let env = Env::new().await;
    let client = env.client();
    let diagnosis = diagnose(&client);
    assert_send(&diagnosis);
    let store = env.calendar();
    let now = Utc::now();
    let busy = store.free_busy(&[], now, now + Duration::hours(1));
    assert_send(&busy);
}

/// Issue 10, item 4: "Contacts" is the whole address book, resolved by the same function
/// as the sync (no group, no request); a group name must name a group.
#[tokio::test]
async fn contacts_resolve_as_the_sync_resolves_them() {
    let env = Env::new().await;
    env.fake.add_contact_group("Customers");
    for (name, expect) in [
        ("Contacts", "whole address book"),
        ("My Contacts", "whole address book"),
        ("myContacts", "whole address book"),
        ("Starred", "contactGroups/starred"),
    ] {
        env.fake.reset_counters();
        let config = env.config.clone().with_contact_group(name);
        let d = diagnose(&client_with(&env, config)).await;
        let contacts = finding(&d, checks::CONTACTS);
        assert_eq!(contacts.severity, Severity::Ok, "{name}: {d}");
        assert!(contacts.message.contains(expect), "{name}: {d}");
        assert_eq!(
            env.fake.requests(Endpoint::ContactGroupsList),
            0,
            "{name}: no group request"
        );
    }
    let d = diagnose(&client_with(
        &env,
        env.config.clone().with_contact_group("Customers"),
    ))
    .await;
    let contacts = finding(&d, checks::CONTACTS);
    assert_eq!(contacts.severity, Severity::Ok, "{d}");
    assert!(contacts.message.contains("\"Customers\""), "{d}");

    let d = diagnose(&client_with(
        &env,
        env.config.clone().with_contact_group("Custmers"),
    ))
    .await;
    let contacts = finding(&d, checks::CONTACTS);
    assert_eq!(contacts.severity, Severity::Error, "{d}");
    assert_eq!(
        contacts.kind.as_deref(),
        Some(ErrorKind::InvalidInput.as_str())
    );
    assert!(contacts.message.contains("\"Customers\""), "{d}");
    assert!(
        contacts
            .remedy
            .as_deref()
            .unwrap_or("")
            .contains("Contacts"),
        "{d}"
    );
    // Checking created nothing.
    assert_eq!(env.fake.requests(Endpoint::ContactGroupsCreate), 0);
}
