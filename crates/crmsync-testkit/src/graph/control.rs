//! The control API of [`GraphFake`]: seed data, act as the user in Outlook (edits, deletes, moves),
//! drive the identity platform (device codes, consent, token errors), inject faults, hold requests
//! in flight, and read counters and recorded requests. Everything operates on
//! [`DEFAULT_MAILBOX`] unless a method says otherwise. Methods panic on invalid input: they are
//! for tests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::query::Ctx;
use super::state::{App, DeviceStatus, FaultRule};
use super::wire::Zone;
use super::{
    DEFAULT_MAILBOX, Endpoint, Fault, FaultTarget, GraphFake, SCOPE_CALENDARS, SCOPE_CONTACTS,
    SCOPE_OFFLINE_ACCESS, TokenError, calendar, contacts, delta, identity,
};
use crate::RecordedRequest;

/// Tokens issued directly by [`GraphFake::issue_tokens`].
#[derive(Clone, PartialEq, Eq)]
pub struct GraphTokens {
    /// The access token (`Authorization: Bearer …`).
    pub access_token: String,
    /// The refresh token (bound to [`super::PUBLIC_CLIENT_ID`]).
    pub refresh_token: String,
}

impl std::fmt::Debug for GraphTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphTokens { .. }")
    }
}

fn utc_ctx() -> Ctx {
    Ctx {
        zone_name: "UTC".into(),
        zone: Zone::Utc,
        immutable: false,
        expand: None,
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("expected a JSON object, got {other}"),
    }
}

impl GraphFake {
    // ------------------------------------------------------------ identity

    /// A valid access token of [`DEFAULT_MAILBOX`] with Calendars and Contacts scopes.
    pub fn access_token(&self) -> String {
        self.issue_tokens(DEFAULT_MAILBOX, &[SCOPE_CALENDARS, SCOPE_CONTACTS])
            .access_token
    }

    /// Issues an access and a refresh token for `user` (mailbox created if unknown) with `scopes`
    /// (plus `offline_access`), as if the user had signed in to [`super::PUBLIC_CLIENT_ID`].
    pub fn issue_tokens(&self, user: &str, scopes: &[&str]) -> GraphTokens {
        let mut st = self.shared.lock();
        let scopes = format!("{} {SCOPE_OFFLINE_ACCESS}", scopes.join(" "));
        let body = identity::issue(&mut st, user, super::PUBLIC_CLIENT_ID, &scopes);
        GraphTokens {
            access_token: body["access_token"].as_str().unwrap_or_default().to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Registers an application: public when `secret` is `None`. Loopback redirect URIs
    /// (`http://localhost`, `http://127.0.0.1`, any port) are always accepted (MS-OA-3).
    pub fn register_app(&self, client_id: &str, secret: Option<&str>, redirect_uris: &[&str]) {
        self.shared.lock().apps.insert(
            client_id.to_owned(),
            App {
                secret: secret.map(str::to_owned),
                redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    }

    /// Who signs in at the authorization endpoint and approves device codes.
    pub fn set_browser_user(&self, user: &str) {
        let mut st = self.shared.lock();
        st.ensure_mailbox(user);
        st.browser_user = user.to_owned();
    }

    /// Whether the user consents at the authorization endpoint (else `error=access_denied`).
    pub fn set_consent(&self, granted: bool) {
        self.shared.lock().consent_granted = granted;
    }

    /// Makes the next `times` token requests fail with `error`.
    pub fn fail_token_requests(&self, error: TokenError, times: usize) {
        let mut st = self.shared.lock();
        st.token_errors.extend(std::iter::repeat_n(error, times));
    }

    /// Expires every access token (the next Graph call gets 401).
    pub fn expire_access_tokens(&self) {
        let mut st = self.shared.lock();
        let past = st.now() - chrono::Duration::seconds(1);
        for t in st.access_tokens.values_mut() {
            t.expires_at = past;
        }
    }

    /// Revokes every refresh token (`invalid_grant` AADSTS50173 on use).
    pub fn revoke_refresh_tokens(&self) {
        for t in self.shared.lock().refresh_tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Marks every refresh token expired for inactivity (`invalid_grant` AADSTS700082).
    pub fn expire_refresh_tokens(&self) {
        for t in self.shared.lock().refresh_tokens.values_mut() {
            t.inactive = true;
        }
    }

    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> bool {
        let mut st = self.shared.lock();
        let browser = st.browser_user.clone();
        match st
            .device_codes
            .values_mut()
            .find(|d| d.user_code == user_code)
        {
            Some(d) => {
                d.status = status;
                d.user = browser;
                true
            }
            None => false,
        }
    }

    /// The user enters `user_code` and approves: the next poll returns tokens (MS-OA-8).
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Approved)
    }

    /// The user declines: polls return `authorization_declined`.
    pub fn decline_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Declined)
    }

    /// The code expires: polls return `expired_token`.
    pub fn expire_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Expired)
    }

    /// The next poll returns `slow_down` (then `authorization_pending` again).
    pub fn slow_down_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::SlowDown)
    }

    /// Moves the fake clock forward (token and code lifetimes).
    pub fn advance_clock(&self, by: Duration) {
        let mut st = self.shared.lock();
        st.clock_offset += chrono::Duration::from_std(by).unwrap_or_default();
    }

    // ------------------------------------------------------------ calendars and events

    /// The id of the default calendar ("Calendar").
    pub fn default_calendar_id(&self) -> String {
        self.shared
            .lock()
            .mailbox(DEFAULT_MAILBOX)
            .default_calendar_id()
    }

    /// Adds a calendar (as the user would in Outlook) and returns its id.
    pub fn add_calendar(&self, name: &str) -> String {
        let mut st = self.shared.lock();
        let id = st.new_id("AAMkADcal");
        let change_key = st.new_change_key();
        st.mailbox(DEFAULT_MAILBOX)
            .calendars
            .push(super::state::Calendar {
                id: id.clone(),
                name: name.to_owned(),
                color: "auto".into(),
                change_key,
                is_default: false,
            });
        id
    }

    /// Creates an event in `calendar_id` from a Graph event body (validated as a POST would be)
    /// and returns it as Graph renders it (UTC, regular id).
    pub fn seed_event(&self, calendar_id: &str, event: Value) -> Value {
        let mut st = self.shared.lock();
        if let Err(e) = super::schema::validate("event", &event) {
            panic!("seed_event: {}", e.message);
        }
        let key = calendar::insert_event(&mut st, DEFAULT_MAILBOX, calendar_id, &object(event))
            .unwrap_or_else(|e| panic!("seed_event: {}", e.message));
        calendar::render_event(
            &st.mailbox(DEFAULT_MAILBOX).events[&key],
            DEFAULT_MAILBOX,
            &utc_ctx(),
        )
    }

    /// Edits an event as the user would in Outlook (a PATCH body); returns the new rendering.
    pub fn edit_event(&self, id: &str, patch: Value) -> Value {
        let mut st = self.shared.lock();
        let key = st
            .mailbox(DEFAULT_MAILBOX)
            .event_key(id)
            .unwrap_or_else(|| panic!("edit_event: no event {id}"));
        calendar::patch_event(&mut st, DEFAULT_MAILBOX, &key, &object(patch))
            .unwrap_or_else(|e| panic!("edit_event: {}", e.message));
        calendar::render_event(
            &st.mailbox(DEFAULT_MAILBOX).events[&key],
            DEFAULT_MAILBOX,
            &utc_ctx(),
        )
    }

    /// Edits one occurrence of a series as the user would in Outlook (a PATCH body over the
    /// series' properties): it becomes an exception. `date` is the occurrence's original date
    /// (UTC). `false` when `master_id` is not a series master.
    pub fn edit_occurrence(&self, master_id: &str, date: chrono::NaiveDate, patch: Value) -> bool {
        let mut st = self.shared.lock();
        let Some(key) = st.mailbox(DEFAULT_MAILBOX).event_key(master_id) else {
            return false;
        };
        calendar::change_occurrence(&mut st, DEFAULT_MAILBOX, &key, date, Some(&object(patch)))
    }

    /// Deletes one occurrence of a series as the user would (`cancelledOccurrences`).
    pub fn cancel_occurrence(&self, master_id: &str, date: chrono::NaiveDate) -> bool {
        let mut st = self.shared.lock();
        let Some(key) = st.mailbox(DEFAULT_MAILBOX).event_key(master_id) else {
            return false;
        };
        calendar::change_occurrence(&mut st, DEFAULT_MAILBOX, &key, date, None)
    }

    /// Deletes an event as the user would; `false` when unknown.
    pub fn delete_event(&self, id: &str) -> bool {
        let mut st = self.shared.lock();
        match st.mailbox(DEFAULT_MAILBOX).event_key(id) {
            Some(key) => calendar::remove_event(&mut st, DEFAULT_MAILBOX, &key),
            None => false,
        }
    }

    /// Moves an event to another calendar as the user would; returns its new regular id (its
    /// immutable id is kept, MS-CAL-19).
    pub fn move_event(&self, id: &str, to_calendar: &str) -> Option<String> {
        let mut st = self.shared.lock();
        let key = st.mailbox(DEFAULT_MAILBOX).event_key(id)?;
        calendar::move_event(&mut st, DEFAULT_MAILBOX, &key, to_calendar)
            .then(|| st.mailbox(DEFAULT_MAILBOX).events[&key].rest_id.clone())
    }

    /// The immutable id of an event (given either id).
    pub fn immutable_id(&self, id: &str) -> Option<String> {
        self.shared.lock().mailbox(DEFAULT_MAILBOX).event_key(id)
    }

    /// An event as Graph renders it (UTC, regular id, extended properties not expanded).
    pub fn event(&self, id: &str) -> Option<Value> {
        let mut st = self.shared.lock();
        let mb = st.mailbox(DEFAULT_MAILBOX);
        let key = mb.event_key(id)?;
        Some(calendar::render_event(
            &mb.events[&key],
            DEFAULT_MAILBOX,
            &utc_ctx(),
        ))
    }

    /// The single-value extended properties of an event (id → value).
    pub fn event_extended_properties(&self, id: &str) -> BTreeMap<String, String> {
        let mut st = self.shared.lock();
        let mb = st.mailbox(DEFAULT_MAILBOX);
        mb.event_key(id)
            .map(|k| mb.events[&k].ext.clone())
            .unwrap_or_default()
    }

    /// Every event of a calendar, rendered.
    pub fn events(&self, calendar_id: &str) -> Vec<Value> {
        let mut st = self.shared.lock();
        let mb = st.mailbox(DEFAULT_MAILBOX);
        mb.events
            .values()
            .filter(|e| e.calendar_id == calendar_id)
            .map(|e| calendar::render_event(e, DEFAULT_MAILBOX, &utc_ctx()))
            .collect()
    }

    /// The master categories (`displayName`, `color`).
    pub fn categories(&self) -> Vec<(String, String)> {
        let mut st = self.shared.lock();
        st.mailbox(DEFAULT_MAILBOX)
            .categories
            .iter()
            .map(|c| (c.display_name.clone(), c.color.clone()))
            .collect()
    }

    // ------------------------------------------------------------ contacts

    /// The id of the default Contacts folder.
    pub fn default_contact_folder_id(&self) -> String {
        self.shared
            .lock()
            .mailbox(DEFAULT_MAILBOX)
            .default_folder
            .clone()
    }

    /// Adds a child contact folder of the default folder and returns its id.
    pub fn add_contact_folder(&self, name: &str) -> String {
        let mut st = self.shared.lock();
        let id = st.new_id("AAMkADfld");
        let parent = st.mailbox(DEFAULT_MAILBOX).default_folder.clone();
        st.mailbox(DEFAULT_MAILBOX)
            .folders
            .push(super::state::Folder {
                id: id.clone(),
                display_name: name.to_owned(),
                parent_id: parent,
            });
        id
    }

    /// Creates a contact in `folder_id` (the default folder when `None`) from a Graph contact body;
    /// returns its rendering.
    pub fn seed_contact(&self, folder_id: Option<&str>, contact: Value) -> Value {
        let mut st = self.shared.lock();
        if let Err(e) = super::schema::validate("contact", &contact) {
            panic!("seed_contact: {}", e.message);
        }
        let folder = folder_id
            .map(str::to_owned)
            .unwrap_or_else(|| st.mailbox(DEFAULT_MAILBOX).default_folder.clone());
        let id = contacts::insert_contact(&mut st, DEFAULT_MAILBOX, &folder, &object(contact))
            .unwrap_or_else(|e| panic!("seed_contact: {}", e.message));
        contacts::render_contact(&st.mailbox(DEFAULT_MAILBOX).contacts[&id], &utc_ctx())
    }

    /// Edits a contact as the user would.
    pub fn edit_contact(&self, id: &str, patch: Value) -> Value {
        let mut st = self.shared.lock();
        contacts::patch_contact(&mut st, DEFAULT_MAILBOX, id, &object(patch))
            .unwrap_or_else(|e| panic!("edit_contact: {}", e.message));
        contacts::render_contact(&st.mailbox(DEFAULT_MAILBOX).contacts[id], &utc_ctx())
    }

    /// Deletes a contact as the user would; `false` when unknown.
    pub fn delete_contact(&self, id: &str) -> bool {
        contacts::remove_contact(&mut self.shared.lock(), DEFAULT_MAILBOX, id)
    }

    /// A contact as Graph renders it.
    pub fn contact(&self, id: &str) -> Option<Value> {
        let mut st = self.shared.lock();
        st.mailbox(DEFAULT_MAILBOX)
            .contacts
            .get(id)
            .map(|c| contacts::render_contact(c, &utc_ctx()))
    }

    /// Number of contacts in all folders.
    pub fn contact_count(&self) -> usize {
        self.shared.lock().mailbox(DEFAULT_MAILBOX).contacts.len()
    }

    // ------------------------------------------------------------ delta, faults, concurrency

    /// Invalidates every delta token and page cursor: the next use gets `410 syncStateNotFound`
    /// with a `Location` header (MS-CAL-17).
    pub fn expire_delta_tokens(&self) {
        delta::expire_all(&mut self.shared.lock());
    }

    /// Makes the next `times` requests matching `target` fail with `fault`.
    pub fn inject(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.shared.lock().faults.push(FaultRule {
            target,
            fault,
            remaining: times,
        });
    }

    /// Adds raw items (malformed, partial, with unknown zones or impossible dates: whatever
    /// a misbehaving server could send) to the next calendarView delta page served.
    pub fn inject_delta_items(&self, items: Vec<Value>) {
        self.shared.lock().injected_delta_items.extend(items);
    }

    /// While `on`, link-key lookups (a `$filter` on `singleValueExtendedProperties`, of
    /// events or contacts) are answered with every item of the collection, as a server that
    /// ignores the filter would: a client must check the key of what it gets.
    pub fn ignore_link_key_filter(&self, on: bool) {
        self.shared.lock().knobs.ignore_link_key_filter = on;
    }

    /// While `on`, link-key lookups are refused with 400 `ErrorInvalidUrlQueryFilter` "The
    /// query filter contains one or more invalid nodes." (Graph's envelope).
    pub fn refuse_link_key_filter(&self, on: bool) {
        self.shared.lock().knobs.refuse_link_key_filter = on;
    }

    /// While `on`, the last page of every delta round (calendarView and contacts) carries
    /// neither `@odata.nextLink` nor `@odata.deltaLink`: the client has no cursor to keep.
    pub fn end_delta_without_links(&self, on: bool) {
        self.shared.lock().knobs.delta_without_links = on;
    }

    /// Disarms every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Adds `latency` to every request after it is counted in flight (tokio time).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Changes the per-mailbox concurrency limit (4 by default, MS-GEN-2).
    pub fn set_concurrency_limit(&self, limit: usize) {
        self.shared.lock().concurrency_limit = limit;
    }

    /// Holds every request once it is counted in flight, until [`GraphFake::release_requests`].
    /// Requests over the concurrency limit are still rejected at once.
    pub fn hold_requests(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Lets held requests proceed.
    pub fn release_requests(&self) {
        self.shared.gate.send_replace(true);
    }

    /// Requests of [`DEFAULT_MAILBOX`] in flight now.
    pub fn in_flight(&self) -> usize {
        self.shared
            .lock()
            .in_flight
            .get(DEFAULT_MAILBOX)
            .copied()
            .unwrap_or(0)
    }

    /// The largest number of requests of one mailbox seen in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.lock().peak_in_flight
    }

    /// Waits (up to 5 s) until `n` requests of [`DEFAULT_MAILBOX`] are in flight.
    ///
    /// # Panics
    /// When they never are.
    pub async fn wait_in_flight(&self, n: usize) {
        for _ in 0..5000 {
            if self.in_flight() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!(
            "{n} requests never were in flight (now {})",
            self.in_flight()
        );
    }

    /// Requests received by `endpoint` (failed ones included; `$batch` members included).
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.shared
            .lock()
            .counters
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received per endpoint.
    pub fn request_counts(&self) -> BTreeMap<Endpoint, u64> {
        self.shared.lock().counters.clone()
    }

    /// HTTP requests received in all (a `$batch` counts once).
    pub fn total_http_requests(&self) -> usize {
        self.shared.lock().recorded.len()
    }

    /// Resets the counters and the recorded requests.
    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.counters.clear();
        st.recorded.clear();
    }

    /// Every HTTP request received, in order (URLs, headers, bodies) — for secret-leak checks.
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().recorded.clone()
    }
}
