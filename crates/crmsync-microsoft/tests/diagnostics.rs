//! `crmsync_microsoft::diagnose`: the checks `crmsync doctor` prints, against the fake.

mod common;

use crmsync_core::diagnostics::Severity;
use crmsync_core::{ErrorKind, TokenStore};
use crmsync_microsoft::{MicrosoftClient, diagnose};

fn checks(d: &crmsync_core::diagnostics::Diagnosis) -> Vec<(&str, Severity)> {
    d.findings
        .iter()
        .map(|f| (f.check.as_str(), f.severity))
        .collect()
}

fn client(s: &common::Setup, calendar: Option<&str>, folder: Option<&str>) -> MicrosoftClient {
    let mut config = s.config.clone();
    config.calendar_name = calendar.map(str::to_owned);
    config.contact_folder = folder.map(str::to_owned);
    MicrosoftClient::new(config, s.http.clone(), s.auth.clone(), s.account.clone())
}

#[tokio::test]
async fn a_healthy_account_passes_every_check() {
    let s = common::setup().await;
    s.signed_in(false).await;
    s.fake.add_calendar("CRM");
    s.fake.add_contact_folder("Clients");
    let d = diagnose(&client(&s, Some("CRM"), Some("Clients"))).await;
    println!("{d}");
    assert_eq!(
        checks(&d),
        [
            ("tokens", Severity::Ok),
            ("token", Severity::Ok),
            ("scopes", Severity::Ok),
            ("graph", Severity::Ok),
            ("calendar", Severity::Ok),
            ("contact_folder", Severity::Ok),
        ]
    );
    assert!(d.is_healthy());
    // Default calendar and folder when none is named: the folder is `/me/contacts`
    // (MS-CON-1), which the check reads; `/me/contactFolders/contacts` is no documented
    // path, and a strict server (the fake) refuses it with 400 (issue 10 item 5).
    s.fake.reset_counters();
    let d = diagnose(&client(&s, None, None)).await;
    assert_eq!(d.worst(), Severity::Ok, "{d}");
    assert!(d.findings[4].message.contains("\"Calendar\""), "{d}");
    let urls: Vec<String> = s
        .fake
        .recorded_requests()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(
        urls.iter().any(|u| u.starts_with("/v1.0/me/contacts?")),
        "{urls:?}"
    );
    assert!(
        urls.iter()
            .all(|u| !u.to_ascii_lowercase().contains("contactfolders/contacts")),
        "{urls:?}"
    );
    // The folder is found as the contacts store finds it: without case.
    let d = diagnose(&client(&s, Some("CRM"), Some("clients"))).await;
    assert_eq!(d.worst(), Severity::Ok, "{d}");
}

#[tokio::test]
async fn a_wrong_calendar_name_says_what_exists_and_what_to_do() {
    let s = common::setup().await;
    s.signed_in(false).await;
    s.fake.add_calendar("CRM");
    let d = diagnose(&client(&s, Some("Crm actions"), Some("Suppliers"))).await;
    println!("{d}");
    let calendar = d.findings.iter().find(|f| f.check == "calendar").unwrap();
    assert_eq!(calendar.severity, Severity::Error);
    assert_eq!(
        calendar.kind.as_deref(),
        Some(
            ErrorKind::CalendarNotFound {
                name: String::new()
            }
            .as_str()
        )
    );
    assert!(calendar.message.contains("\"CRM\""), "{}", calendar.message);
    assert!(calendar.remedy.is_some());
    let folder = d
        .findings
        .iter()
        .find(|f| f.check == "contact_folder")
        .unwrap();
    assert_eq!(folder.severity, Severity::Error);
    assert!(folder.remedy.as_deref().unwrap().contains("contact folder"));
    // A blank name is a missing name.
    let d = diagnose(&client(&s, Some("  "), None)).await;
    let calendar = d.findings.iter().find(|f| f.check == "calendar").unwrap();
    assert_eq!(
        calendar.kind.as_deref(),
        Some(ErrorKind::CalendarNameMissing.as_str())
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_a_new_sign_in_with_its_cause() {
    let s = common::setup().await;
    s.signed_in(true).await;
    s.fake.revoke_refresh_tokens();
    let d = diagnose(&client(&s, None, None)).await;
    println!("{d}");
    assert_eq!(
        checks(&d),
        [("tokens", Severity::Ok), ("token", Severity::Error)],
        "the checks after a refused token are not run"
    );
    let token = &d.findings[1];
    assert!(token.needs_reauthorization(), "{token}");
    assert!(token.message.contains("invalid_grant"), "{}", token.message);
    assert!(token.message.contains("AADSTS"), "{}", token.message);
    // Never signed in.
    s.tokens.purge(&s.account).await.unwrap();
    let d = diagnose(&client(&s, None, None)).await;
    assert_eq!(checks(&d), [("tokens", Severity::Error)]);
    assert!(d.findings[0].needs_reauthorization());
}

#[tokio::test]
async fn a_grant_without_contacts_is_a_warning_without_calendars_an_error() {
    let s = common::setup().await;
    let set = s.signed_in(false).await;
    let calendars_only = set
        .clone()
        .with_scopes([crmsync_microsoft::SCOPE_CALENDARS, "offline_access"]);
    s.tokens.save(&s.account, &calendars_only).await.unwrap();
    let d = diagnose(&client(&s, None, None)).await;
    let scopes = d.findings.iter().find(|f| f.check == "scopes").unwrap();
    assert_eq!(scopes.severity, Severity::Warning, "{d}");
    let contacts_only = set.with_scopes(["Contacts.ReadWrite", "offline_access"]);
    s.tokens.save(&s.account, &contacts_only).await.unwrap();
    let d = diagnose(&client(&s, None, None)).await;
    let scopes = d.findings.iter().find(|f| f.check == "scopes").unwrap();
    assert_eq!(scopes.severity, Severity::Error, "{d}");
}
