//! The "Test" button of a Google account: [`diagnose`] runs the checks a person needs
//! before the first sync (or after one failed) and says, for each, what to do.
//!
//! See [`diagnose`] for the checks.

use std::sync::Arc;

use crmsync_core::diagnostics::{Diagnosis, Finding};
use crmsync_core::{CalendarStore, CalendarStoreExt, Error, ErrorKind, TokenSet};

use crate::calendar::GoogleCalendar;
use crate::client::{Call, GoogleClient};
use crate::contacts::GoogleContacts;

/// Check names, stable for hosts that match on them.
pub mod checks {
    /// Stored tokens, and whether Google still accepts the refresh token.
    pub const TOKEN: &str = "token";
    /// Granted scopes against the configured ones.
    pub const SCOPES: &str = "scopes";
    /// Calendar API reachable with the account's token.
    pub const CALENDAR_API: &str = "calendar_api";
    /// People API reachable with the account's token.
    pub const PEOPLE_API: &str = "people_api";
    /// The configured calendar name resolves to a writable calendar.
    pub const CALENDAR: &str = "calendar";
    /// The configured contacts (the whole address book, or a contact group) resolve.
    pub const CONTACTS: &str = "contacts";
}

/// Whether a scope gives access to Calendar data.
fn is_calendar_scope(scope: &str) -> bool {
    scope.starts_with("https://www.googleapis.com/auth/calendar")
}

/// Whether a scope gives access to contacts (People API).
fn is_contacts_scope(scope: &str) -> bool {
    scope.starts_with("https://www.googleapis.com/auth/contacts")
}

/// Runs the checks of `client`'s account and returns one finding per check run, in
/// order. Never fails: a failed check is a finding with the typed error's kind and
/// remedy.
///
/// | check | what it does | when it fails |
/// |---|---|---|
/// | `token` | loads the stored tokens and refreshes them now (a refresh token Google no longer accepts is found before the access token expires) | `ReauthorizationRequired`, with the cause (`invalid_grant`: "Testing" apps lose their refresh tokens after 7 days) |
/// | `scopes` | compares the granted scopes with the configured ones | a missing Calendar scope is an error (`AccessDenied`); a missing Contacts scope is a **warning**: calendar sync works, contact sync is refused until the user signs in again and ticks it |
/// | `calendar_api` | lists the calendars (`calendarList`) | the API's error (disabled API, network, rights) |
/// | `people_api` | reads one contact (`people/me/connections`) | the API's error; only checked when a Contacts scope is configured, and a warning (not checked) when it was not granted |
/// | `calendar` | finds the configured calendar among the writable ones | `CalendarNameMissing`, `NoCalendars` or `CalendarNotFound`, with their remedies |
/// | `contacts` | resolves the configured contacts as the sync does ([`GoogleContacts::existing_selection`]): "Contacts" is the whole address book, "Starred" the starred contacts, another name a contact group; only checked when the People API answered | `InvalidInput` when no contact group has that name, naming the ones the account has |
///
/// When the `token` check fails, the others are not run: every one of them would fail
/// the same way. The checks cost one token request and at most three API requests (the
/// third, `contactGroups`, only when a user contact group is configured).
///
/// ```no_run
/// # async fn demo(client: crmsync_google::GoogleClient) {
/// let diagnosis = crmsync_google::diagnose(&client).await;
/// print!("{diagnosis}");
/// if diagnosis.findings.iter().any(|f| f.needs_reauthorization()) {
///     // send the user through sign-in again
/// }
/// # }
/// ```
pub async fn diagnose(client: &GoogleClient) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    let tokens = match check_tokens(client).await {
        Ok((tokens, message)) => {
            diagnosis.push(Finding::ok(checks::TOKEN, message));
            tokens
        }
        Err(e) => {
            diagnosis.push(Finding::from_error(checks::TOKEN, &e));
            return diagnosis;
        }
    };

    let contacts_configured = client.config().scopes.iter().any(|s| is_contacts_scope(s));
    let contacts_granted = scopes_finding(client, &tokens, &mut diagnosis);

    let calendar = GoogleCalendar::new(client.clone());
    let listed = calendar.calendars().await;
    match &listed {
        Ok(list) => diagnosis.push(Finding::ok(
            checks::CALENDAR_API,
            format!(
                "the Calendar API answers: {} calendar(s), {} writable",
                list.len(),
                list.iter().filter(|c| c.writable).count()
            ),
        )),
        Err(e) => diagnosis.push(Finding::from_error(checks::CALENDAR_API, e)),
    }

    if contacts_configured {
        if contacts_granted {
            match people_reachable(client).await {
                Ok(()) => {
                    diagnosis.push(Finding::ok(checks::PEOPLE_API, "the People API answers"));
                    let contacts = GoogleContacts::new(client.clone());
                    diagnosis.push(match contacts.existing_selection().await {
                        Ok(selection) => Finding::ok(
                            checks::CONTACTS,
                            format!("contacts resolve: {selection} is synced"),
                        ),
                        Err(e) => {
                            let mut finding = Finding::from_error(checks::CONTACTS, &e);
                            if matches!(e.kind(), ErrorKind::InvalidInput) {
                                finding.remedy = Some(
                                    "name an existing contact group (`contacts` in crmsync.toml, \
                                     GoogleConfig::contact_group), or \"Contacts\" for the whole \
                                     address book"
                                        .into(),
                                );
                            }
                            finding
                        }
                    });
                }
                Err(e) => diagnosis.push(Finding::from_error(checks::PEOPLE_API, &e)),
            }
        } else {
            diagnosis.push(Finding::warning(
                checks::PEOPLE_API,
                "not checked: the Contacts scope is not granted",
                "sign in again and tick the Contacts permission on Google's consent screen",
            ));
        }
    }

    if listed.is_ok() {
        let name = client.config().calendar_name.clone().unwrap_or_default();
        // The list is kept by the store: no second request.
        diagnosis.push(match calendar.calendar_by_name(&name).await {
            Ok(found) => Finding::ok(
                checks::CALENDAR,
                format!("calendar {:?} found ({})", found.name, found.id),
            ),
            Err(e) => Finding::from_error(checks::CALENDAR, &e),
        });
    }
    diagnosis
}

/// The stored tokens, refreshed now when a refresh token is stored; the tokens as saved
/// after the refresh (their scopes are the grant's current ones).
async fn check_tokens(client: &GoogleClient) -> Result<(TokenSet, String), Error> {
    let account = client.account();
    let store: &Arc<dyn crmsync_core::TokenStore> = client.auth().token_store();
    let Some(stored) = store.load(account).await? else {
        return Err(Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: "no tokens are stored for this account".into(),
            },
            format!("account `{}` has never signed in", account.as_str()),
        ));
    };
    if stored.refresh_token.is_none() {
        // Nothing to refresh: the access token is checked by the API calls that follow.
        client.auth().access_token(account).await?;
        return Ok((
            stored,
            "an access token is stored, without a refresh token: sign in again when it expires"
                .into(),
        ));
    }
    client.auth().force_refresh(account).await?;
    let fresh = store.load(account).await?.ok_or_else(|| {
        Error::state(format!(
            "the tokens of `{}` vanished from the token store after a refresh",
            account.as_str()
        ))
    })?;
    Ok((
        fresh,
        "the stored tokens are valid: Google accepted the refresh token".into(),
    ))
}

/// Pushes the `scopes` finding; returns whether every configured Contacts scope is
/// granted.
fn scopes_finding(client: &GoogleClient, tokens: &TokenSet, diagnosis: &mut Diagnosis) -> bool {
    let configured = &client.config().scopes;
    let missing = tokens.missing_scopes(configured.iter().map(String::as_str));
    let (calendar, contacts): (Vec<&String>, Vec<&String>) = (
        missing.iter().filter(|s| is_calendar_scope(s)).collect(),
        missing.iter().filter(|s| is_contacts_scope(s)).collect(),
    );
    let others: Vec<&String> = missing
        .iter()
        .filter(|s| !is_calendar_scope(s) && !is_contacts_scope(s))
        .collect();
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    if missing.is_empty() {
        diagnosis.push(Finding::ok(
            checks::SCOPES,
            format!(
                "every configured scope is granted ({})",
                configured.join(", ")
            ),
        ));
    } else if !calendar.is_empty() || !others.is_empty() {
        let mut not_granted = calendar.clone();
        not_granted.extend(others.iter().copied());
        not_granted.extend(contacts.iter().copied());
        diagnosis.push(Finding::from_error(
            checks::SCOPES,
            &Error::new(
                ErrorKind::AccessDenied,
                format!(
                    "the sign-in did not grant {}: the calendar cannot be synced",
                    list(&not_granted)
                ),
            ),
        ));
    } else {
        diagnosis.push(Finding::warning(
            checks::SCOPES,
            format!(
                "the sign-in did not grant {}: calendars sync, contacts do not",
                list(&contacts)
            ),
            "sign in again and tick the Contacts permission on Google's consent screen",
        ));
    }
    contacts.is_empty()
}

/// One small People API read.
async fn people_reachable(client: &GoogleClient) -> Result<(), Error> {
    let url = client
        .config()
        .people_url
        .join_segments(["people", "me", "connections"]);
    let call = Call::get(url).query([("pageSize", "1"), ("personFields", "metadata")]);
    client
        .json(call, "reading contacts (People API)")
        .await
        .map(drop)
}
