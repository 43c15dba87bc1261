//! [`diagnose`]: the "Test" button of a Microsoft account — what `crmsync doctor` prints.
//!
//! | check | passes when | fails as |
//! |---|---|---|
//! | `tokens` | tokens are stored for the account | `ReauthorizationRequired` |
//! | `token` | a valid access token is at hand (refreshed if needed) | `ReauthorizationRequired` with the AADSTS cause (`invalid_grant`, `interaction_required`, …) |
//! | `scopes` | the grant holds the configured scopes | an error without Calendars, a warning without Contacts or `offline_access` |
//! | `graph` | `GET /me/calendars` answers | the classified error |
//! | `calendar` | the configured calendar resolves (or the default one when none is named) | `CalendarNameMissing`, `CalendarNotFound`, `NoCalendars` |
//! | `contact_folder` | the configured contact folder is found as the contacts store finds it (name without case; the default folder, `/me/contacts`, when none is named) and answers a listing of one contact | `NotFound`, the classified error |
//!
//! The checks after a failed `tokens` or `token` are not run: they would all fail for the
//! same reason.

use crmsync_core::diagnostics::{Diagnosis, Finding};
use crmsync_core::{Error, ErrorKind};

use crate::calendar::GraphCalendar;
use crate::client::MicrosoftClient;
use crate::config::{SCOPE_CALENDARS, SCOPE_OFFLINE_ACCESS};

/// The last segment of a scope (`https://graph.microsoft.com/Calendars.ReadWrite` →
/// `calendars.readwrite`): the token endpoint may answer either form.
fn scope_key(scope: &str) -> String {
    scope
        .rsplit('/')
        .next()
        .unwrap_or(scope)
        .to_ascii_lowercase()
}

/// Runs the checks of `client`'s account and configuration, in order, and returns what
/// they found; it never fails: every failure is a [`Finding`] with its remedy.
pub async fn diagnose(client: &MicrosoftClient) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    let account = client.account();

    // 1. Tokens stored.
    let stored = match client.auth().token_store().load(account).await {
        Ok(Some(tokens)) => {
            diagnosis.push(Finding::ok(
                "tokens",
                format!("tokens are stored for {}", account.as_str()),
            ));
            tokens
        }
        Ok(None) => {
            diagnosis.push(Finding::from_error(
                "tokens",
                &Error::new(
                    ErrorKind::ReauthorizationRequired {
                        cause: "no tokens are stored for this account".into(),
                    },
                    format!("{} has never signed in (or was reset)", account.as_str()),
                ),
            ));
            return diagnosis;
        }
        Err(e) => {
            diagnosis.push(Finding::from_error("tokens", &e));
            return diagnosis;
        }
    };

    // 2. A valid access token (a refresh when it expired).
    if let Err(e) = client.auth().access_token(account).await {
        diagnosis.push(Finding::from_error("token", &e));
        return diagnosis;
    }
    diagnosis.push(Finding::ok("token", "the access token is valid"));

    // 3. Scopes granted (from the token set as saved after the last grant or refresh).
    let tokens = match client.auth().token_store().load(account).await {
        Ok(Some(tokens)) => tokens,
        _ => stored,
    };
    if tokens.scopes.is_empty() {
        diagnosis.push(Finding::warning(
            "scopes",
            "the identity platform did not say which scopes it granted",
            "if calendar or contact calls are refused, sign in again and consent to every permission",
        ));
    } else {
        let granted: Vec<String> = tokens.scopes.iter().map(|s| scope_key(s)).collect();
        let missing: Vec<&String> = client
            .config()
            .scopes
            .iter()
            .filter(|s| !granted.contains(&scope_key(s)))
            .collect();
        if missing.is_empty() {
            diagnosis.push(Finding::ok("scopes", "every configured scope is granted"));
        } else if missing
            .iter()
            .any(|s| scope_key(s) == scope_key(SCOPE_CALENDARS))
        {
            diagnosis.push(Finding::from_error(
                "scopes",
                &Error::new(
                    ErrorKind::AccessDenied,
                    format!("the grant lacks {missing:?}: calendars cannot be synced"),
                ),
            ));
        } else {
            let remedy = if missing.iter().any(|s| s.as_str() == SCOPE_OFFLINE_ACCESS) {
                "sign in again with offline_access, or the account stops syncing when the access token expires"
            } else {
                "sign in again and consent to the missing permission to sync contacts"
            };
            diagnosis.push(Finding::warning(
                "scopes",
                format!("the grant lacks {missing:?}"),
                remedy,
            ));
        }
    }

    // 4. Graph reachable, with the calendars.
    let store = GraphCalendar::new(client.clone());
    let calendars = match crmsync_core::CalendarStore::calendars(&store).await {
        Ok(calendars) => {
            diagnosis.push(Finding::ok(
                "graph",
                format!(
                    "Microsoft Graph answers; the mailbox has {} calendar(s)",
                    calendars.len()
                ),
            ));
            calendars
        }
        Err(e) => {
            diagnosis.push(Finding::from_error("graph", &e));
            return diagnosis;
        }
    };

    // 5. The configured calendar.
    match store.configured_calendar().await {
        Ok(found) => {
            let how = if client.config().calendar_name.is_some() {
                "the configured calendar"
            } else {
                "no calendar is named: the default calendar"
            };
            diagnosis.push(Finding::ok(
                "calendar",
                format!("{how} \"{}\" is used", found.name),
            ));
        }
        Err(e) => {
            let mut finding = Finding::from_error("calendar", &e);
            if matches!(e.kind(), ErrorKind::CalendarNotFound { .. }) {
                let names: Vec<&str> = calendars.iter().map(|c| c.name.as_str()).collect();
                finding.message = format!("{} (the mailbox has {names:?})", finding.message);
            }
            diagnosis.push(finding);
        }
    }

    // 6. The contact folder, found as the contacts store finds it (same matching).
    diagnosis.push(contact_folder(client).await);
    diagnosis
}

async fn contact_folder(client: &MicrosoftClient) -> Finding {
    let named = client.config().contact_folder.is_some();
    let contacts = crate::GraphContacts::new(client.clone());
    let found = match contacts.configured_folder().await {
        // The folder answers a listing of one contact (the default folder is found without
        // a request: this is where its access is checked).
        Ok(folder) => contacts.check_folder(&folder.id).await.map(|()| folder),
        Err(e) => Err(e),
    };
    match found {
        Ok(folder) if named => Finding::ok(
            "contact_folder",
            format!("the contact folder \"{}\" exists", folder.name),
        ),
        Ok(_) => Finding::ok(
            "contact_folder",
            "no contact folder is named: the default Contacts folder is used",
        ),
        Err(e) => {
            let mut finding = Finding::from_error("contact_folder", &e);
            if matches!(e.kind(), ErrorKind::NotFound) {
                finding.remedy = Some(
                    "create the contact folder in Outlook, fix its name in the configuration, or leave \
                     it unset to use the default Contacts folder"
                        .into(),
                );
            }
            finding
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compare_by_their_last_segment() {
        assert_eq!(scope_key(SCOPE_CALENDARS), "calendars.readwrite");
        assert_eq!(scope_key("Calendars.ReadWrite"), "calendars.readwrite");
        assert_eq!(scope_key("offline_access"), "offline_access");
    }
}
