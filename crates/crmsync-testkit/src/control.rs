//! The control API of [`GoogleFake`]: what tests use to seed data, act as the user in Google's own
//! apps, inject faults and read what happened. Everything operates on [`DEFAULT_USER`] unless a
//! method says otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::state::{Calendar, FaultRule, StoredEvent};
use crate::{
    DEFAULT_USER, Endpoint, Fault, FaultTarget, GoogleFake, Paging, RecordedRequest,
    SCOPE_CALENDAR, SCOPE_CONTACTS, oauth, people,
};

/// A calendar to add to the default user's calendar list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    /// The calendar id (an email-like string for secondary calendars).
    pub id: String,
    /// Its title (`summary`).
    pub summary: String,
    /// The user's own name for it (`summaryOverride`), if any.
    pub summary_override: Option<String>,
    /// `freeBusyReader`, `reader`, `writer` or `owner`.
    pub access_role: String,
    /// IANA time zone of the calendar.
    pub time_zone: String,
    /// Hidden from the list unless `showHidden=true`.
    pub hidden: bool,
}

impl CalendarSpec {
    /// A secondary calendar owned by the user, in `Europe/Paris`.
    pub fn new(id: &str, summary: &str) -> CalendarSpec {
        CalendarSpec {
            id: id.to_owned(),
            summary: summary.to_owned(),
            summary_override: None,
            access_role: "owner".into(),
            time_zone: "Europe/Paris".into(),
            hidden: false,
        }
    }

    /// Sets `summaryOverride`.
    pub fn summary_override(mut self, name: &str) -> CalendarSpec {
        self.summary_override = Some(name.to_owned());
        self
    }

    /// Sets the access role.
    pub fn access_role(mut self, role: &str) -> CalendarSpec {
        self.access_role = role.to_owned();
        self
    }

    /// Sets the time zone.
    pub fn time_zone(mut self, tz: &str) -> CalendarSpec {
        self.time_zone = tz.to_owned();
        self
    }

    /// Marks the calendar hidden.
    pub fn hidden(mut self) -> CalendarSpec {
        self.hidden = true;
        self
    }
}

/// Tokens issued directly by [`GoogleFake::issue_tokens`].
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token (`Authorization: Bearer …`).
    pub access_token: String,
    /// The refresh token, bound to [`crate::DEFAULT_CLIENT_ID`].
    pub refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl GoogleFake {
    // ------------------------------------------------------------ OAuth

    /// A valid access token of [`DEFAULT_USER`] with Calendar and Contacts scopes (no refresh
    /// token). Each call issues a new one.
    pub fn access_token(&self) -> String {
        self.issue_tokens(DEFAULT_USER, &[SCOPE_CALENDAR, SCOPE_CONTACTS])
            .access_token
    }

    /// Issues an access and a refresh token for `user` (created if unknown) with `scopes`, as if
    /// the user had consented to [`crate::DEFAULT_CLIENT_ID`].
    pub fn issue_tokens(&self, user: &str, scopes: &[&str]) -> Tokens {
        let mut st = self.shared.lock();
        let (at, rt) = oauth::issue(
            &mut st,
            user,
            crate::DEFAULT_CLIENT_ID,
            &scopes.join(" "),
            true,
        );
        Tokens {
            access_token: at,
            refresh_token: rt.unwrap_or_default(),
        }
    }

    /// Registers an OAuth client. Loopback redirect URIs (`http://127.0.0.1:<any port>`) are
    /// always accepted, as for Google's desktop clients; `redirect_uris` adds exact web redirects.
    pub fn register_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str]) {
        self.shared.lock().clients.insert(
            client_id.to_owned(),
            crate::state::OAuthClient {
                secret: client_secret.to_owned(),
                redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    }

    /// Restricts sign-in to these test users (an app in "Testing"); `None` lifts the restriction.
    /// A user not on the list sees an error page and is never redirected (G-OA-7).
    pub fn set_test_users(&self, users: Option<&[&str]>) {
        self.shared.lock().test_users = users.map(|u| u.iter().map(|s| (*s).to_owned()).collect());
    }

    /// The Google account signed in "in the browser" that visits the authorization endpoint.
    pub fn set_browser_user(&self, user: &str) {
        let mut st = self.shared.lock();
        st.ensure_user(user);
        st.browser_user = user.to_owned();
    }

    /// Whether the user clicks "Allow" (default) or "Cancel" (redirect with `error=access_denied`).
    pub fn set_consent(&self, granted: bool) {
        self.shared.lock().consent_granted = granted;
    }

    /// The scopes the user grants (granular consent); `None` grants what was asked.
    pub fn set_granted_scopes(&self, scopes: Option<&[&str]>) {
        self.shared.lock().granted_scopes = scopes.map(|s| s.join(" "));
    }

    /// Expires every access token issued so far (401 on the next API call).
    pub fn expire_access_tokens(&self) {
        let mut st = self.shared.lock();
        let past = st.now() - chrono::Duration::seconds(1);
        for t in st.access_tokens.values_mut() {
            t.expires_at = past;
        }
    }

    /// Revokes (or expires: the answer is the same) every refresh token and the access tokens
    /// minted from them: the next refresh gets `invalid_grant` "Token has been expired or revoked."
    pub fn revoke_refresh_tokens(&self) {
        let mut st = self.shared.lock();
        for t in st.refresh_tokens.values_mut() {
            t.revoked = true;
        }
        for t in st.access_tokens.values_mut() {
            if t.refresh.is_some() {
                t.revoked = true;
            }
        }
    }

    /// Moves the fake's clock forward (access tokens expire after 3599 s, People sync tokens 7
    /// days after their full sync, authorization codes after 10 minutes).
    pub fn advance_clock(&self, by: Duration) {
        let mut st = self.shared.lock();
        st.clock_offset += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
    }

    // ------------------------------------------------------------ Calendar

    /// Adds a calendar to the default user's calendar list.
    pub fn add_calendar(&self, spec: CalendarSpec) {
        let mut st = self.shared.lock();
        let etag = st.new_etag();
        let seq = st.next_seq();
        let user = st.user_mut(DEFAULT_USER);
        user.calendars.retain(|c| c.id != spec.id);
        user.calendars.push(Calendar {
            id: spec.id,
            summary: spec.summary,
            summary_override: spec.summary_override,
            access_role: spec.access_role,
            primary: false,
            hidden: spec.hidden,
            time_zone: spec.time_zone,
            color_id: "15".into(),
            etag,
            seq,
            events: BTreeMap::new(),
        });
    }

    /// The id of the default user's primary calendar.
    pub fn primary_calendar_id(&self) -> String {
        DEFAULT_USER.to_owned()
    }

    /// Creates an event as the user would in Google Calendar (through the same validation as
    /// `events.insert`); returns the stored event as the API renders it.
    ///
    /// # Panics
    /// When the event is invalid or the calendar unknown (a test bug).
    pub fn seed_event(&self, calendar_id: &str, event: Value) -> Value {
        let resp = self.call_internal(
            "POST",
            &format!("/calendar/v3/calendars/{}/events", enc(calendar_id)),
            &event,
        );
        match resp {
            Ok(v) => v,
            Err(e) => panic!("seed_event rejected: {e}"),
        }
    }

    /// Changes one occurrence of the recurring event `master_id` as the user would in Google
    /// Calendar ("this event" only): Google keeps the master with its `recurrence` and adds
    /// the occurrence as a separate event with `recurringEventId`, `originalStartTime` (the
    /// `EventDateTime` the occurrence had in the series) and the master's `iCalUID`, listed
    /// beside the master when instances are not expanded (G-CAL-28). `changes` is applied
    /// with PATCH semantics to the occurrence (same duration as the series unless `start` /
    /// `end` are given); `{"status": "cancelled"}` removes the occurrence (G-CAL-29).
    /// Returns the occurrence as the API renders it.
    ///
    /// # Panics
    /// When the master is unknown, not recurring, or the result invalid (a test bug).
    pub fn seed_recurring_exception(
        &self,
        calendar_id: &str,
        master_id: &str,
        original_start: Value,
        changes: Value,
    ) -> Value {
        let mut st = self.shared.lock();
        match crate::calendar::seed_exception(
            &mut st,
            DEFAULT_USER,
            calendar_id,
            master_id,
            &original_start,
            &changes,
        ) {
            Ok(v) => v,
            Err(e) => panic!(
                "seed_recurring_exception rejected: {}",
                String::from_utf8_lossy(&e.resp().body)
            ),
        }
    }

    /// Stores `event` as is, bypassing every validation, with a fresh etag: data as a buggy
    /// or future Google could send it (an impossible date, an unknown time zone), to test
    /// that clients report such a record and go on. The event needs an `id`.
    ///
    /// # Panics
    /// When the calendar is unknown or `event` has no string `id` (a test bug).
    pub fn seed_raw_event(&self, calendar_id: &str, event: Value) {
        let mut st = self.shared.lock();
        let Some(ci) = st.calendar_index(DEFAULT_USER, calendar_id) else {
            panic!("seed_raw_event: unknown calendar {calendar_id}");
        };
        let Some(mut resource) = event.as_object().cloned() else {
            panic!("seed_raw_event: the event is not an object");
        };
        let Some(id) = resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            panic!("seed_raw_event: the event has no id");
        };
        let etag = st.new_etag();
        let seq = st.next_seq();
        resource.insert("etag".into(), json!(etag));
        st.user_mut(DEFAULT_USER).calendars[ci]
            .events
            .insert(id, StoredEvent { resource, seq });
    }

    /// Edits an event as the user would (PATCH semantics, no precondition): etag and sequence move,
    /// so the change shows up in the next incremental sync.
    ///
    /// # Panics
    /// When the edit is invalid or the event unknown (a test bug).
    pub fn edit_event(&self, calendar_id: &str, event_id: &str, patch: Value) -> Value {
        let path = format!(
            "/calendar/v3/calendars/{}/events/{}",
            enc(calendar_id),
            enc(event_id)
        );
        match self.call_internal("PATCH", &path, &patch) {
            Ok(v) => v,
            Err(e) => panic!("edit_event rejected: {e}"),
        }
    }

    /// Deletes an event as the user would: it becomes a `cancelled` tombstone with a new etag.
    /// Returns false when there was no live event.
    pub fn delete_event(&self, calendar_id: &str, event_id: &str) -> bool {
        let path = format!(
            "/calendar/v3/calendars/{}/events/{}",
            enc(calendar_id),
            enc(event_id)
        );
        self.call_internal("DELETE", &path, &Value::Null).is_ok()
    }

    /// The stored event (cancelled ones included) as `events.get` renders it.
    pub fn event(&self, calendar_id: &str, event_id: &str) -> Option<Value> {
        let path = format!(
            "/calendar/v3/calendars/{}/events/{}",
            enc(calendar_id),
            enc(event_id)
        );
        self.call_internal("GET", &path, &Value::Null).ok()
    }

    /// Every event of a calendar (cancelled ones included), as the API renders them.
    pub fn events(&self, calendar_id: &str) -> Vec<Value> {
        let ids: Vec<String> = {
            let st = self.shared.lock();
            match st.calendar_index(DEFAULT_USER, calendar_id) {
                Some(ci) => st.users[DEFAULT_USER].calendars[ci]
                    .events
                    .keys()
                    .cloned()
                    .collect(),
                None => Vec::new(),
            }
        };
        ids.iter()
            .filter_map(|id| self.event(calendar_id, id))
            .collect()
    }

    /// Live (not cancelled) events of a calendar.
    pub fn live_event_count(&self, calendar_id: &str) -> usize {
        let st = self.shared.lock();
        st.calendar_index(DEFAULT_USER, calendar_id)
            .map(|ci| {
                st.users[DEFAULT_USER].calendars[ci]
                    .events
                    .values()
                    .filter(|e: &&StoredEvent| !e.cancelled())
                    .count()
            })
            .unwrap_or(0)
    }

    /// Invalidates every Calendar sync token issued so far: the next incremental list answers 410
    /// `fullSyncRequired` (G-CAL-15).
    pub fn invalidate_calendar_sync_tokens(&self) {
        let mut st = self.shared.lock();
        for p in st.sync_tokens.values_mut() {
            if p.collection != "connections" && p.collection != "contactGroups" {
                p.valid = false;
            }
        }
    }

    /// Accepts at most `limit` parts per `/batch/calendar/v3` request (default 50; the current
    /// Calendar guide says 1000).
    pub fn set_batch_limit(&self, limit: usize) {
        self.shared.lock().batch_limit = limit;
    }

    /// How listings are cut into pages (short and empty pages, G-CAL-3).
    pub fn set_paging(&self, paging: Paging) {
        self.shared.lock().paging = paging;
    }

    // ------------------------------------------------------------ People

    /// Creates a contact as the user would (validated against the Person schema); returns its
    /// resource name.
    ///
    /// # Panics
    /// When the person is invalid (a test bug).
    pub fn seed_contact(&self, person: Value) -> String {
        let mut st = self.shared.lock();
        match people::seed(&mut st, DEFAULT_USER, &person) {
            Ok(rn) => rn,
            Err(e) => panic!("seed_contact rejected: {e}"),
        }
    }

    /// Replaces the given fields of a contact as the user would (etag moves).
    ///
    /// # Panics
    /// When the edit is invalid or the contact unknown (a test bug).
    pub fn edit_contact(&self, resource_name: &str, fields: Value) {
        let mut st = self.shared.lock();
        if let Err(e) = people::edit(&mut st, DEFAULT_USER, resource_name, &fields) {
            panic!("edit_contact rejected: {e}");
        }
    }

    /// Deletes a contact as the user would (a `metadata.deleted` tombstone in the next sync).
    pub fn delete_contact(&self, resource_name: &str) -> bool {
        let mut st = self.shared.lock();
        people::remove(&mut st, DEFAULT_USER, resource_name)
    }

    /// The contact with every field, as `people.get` renders it (`None` when unknown or deleted).
    pub fn contact(&self, resource_name: &str) -> Option<Value> {
        let st = self.shared.lock();
        st.users
            .get(DEFAULT_USER)
            .and_then(|u| u.people.get(resource_name))
            .filter(|p| !p.deleted)
            .map(people::render_all)
    }

    /// Every live contact, with every field.
    pub fn contacts(&self) -> Vec<Value> {
        let st = self.shared.lock();
        st.users
            .get(DEFAULT_USER)
            .map(|u| {
                u.people
                    .values()
                    .filter(|p| !p.deleted)
                    .map(people::render_all)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates a user contact group; returns its resource name.
    ///
    /// # Panics
    /// When the name is taken (a test bug).
    pub fn add_contact_group(&self, name: &str) -> String {
        let mut st = self.shared.lock();
        match people::add_group(&mut st, DEFAULT_USER, name) {
            Ok(v) => v["resourceName"].as_str().unwrap_or_default().to_owned(),
            Err(_) => panic!("contact group {name:?} already exists"),
        }
    }

    /// Expires every People sync token issued so far: the next incremental list answers 400
    /// `EXPIRED_SYNC_TOKEN` (G-PPL-5). (Advancing the clock by 7 days does the same.)
    pub fn expire_people_sync_tokens(&self) {
        let mut st = self.shared.lock();
        for p in st.sync_tokens.values_mut() {
            if p.collection == "connections" || p.collection == "contactGroups" {
                p.valid = false;
            }
        }
    }

    /// Turns on the failure mode for concurrent People mutations of one user (G-PPL-9): while a
    /// mutation is in flight, another one of the same user fails with 409 `ABORTED`. Mutations
    /// are held for `latency` so overlaps are observable (20 ms is plenty).
    pub fn fail_concurrent_people_mutations(&self, on: bool, latency: Duration) {
        let mut st = self.shared.lock();
        st.fail_concurrent_people = on;
        st.people_latency = latency;
    }

    /// The largest number of People mutations of one user seen in flight at once.
    pub fn peak_concurrent_people_mutations(&self) -> usize {
        self.shared.lock().people_peak
    }

    // ------------------------------------------------------------ faults, counters, recordings

    /// Makes the next `times` requests matching `target` fail with `fault` (after authentication,
    /// before any state change). Batch parts are matched individually.
    pub fn inject(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.shared.lock().faults.push(FaultRule {
            target,
            fault,
            remaining: times,
        });
    }

    /// Disarms every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Requests received by `endpoint` (every request counts, failed ones included).
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

    /// HTTP requests received in all (batch parts not counted separately; the batch counts once).
    pub fn total_http_requests(&self) -> usize {
        self.shared.lock().recorded.len()
    }

    /// Resets the counters and the recorded requests.
    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.counters.clear();
        st.recorded.clear();
    }

    /// Stamps every request from now on with `clock` (a test's manual clock, the one its
    /// retry policy reads and its sleeper advances), and forgets the earlier stamps.
    pub fn set_request_clock(
        &self,
        clock: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static,
    ) {
        self.shared.times.set_clock(std::sync::Arc::new(clock));
    }

    /// Every request received since [`GoogleFake::set_request_clock`] (or the start), with
    /// when it arrived; a batch is one request.
    pub fn timed_requests(&self) -> Vec<crate::TimedRequest> {
        self.shared.times.all()
    }

    /// Every HTTP request received, in order (URLs, headers, bodies) — for secret-leak checks.
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().recorded.clone()
    }

    /// Runs a request through the handlers with a fresh all-scopes token, without counting or
    /// recording it, and returns the JSON body or the error body.
    fn call_internal(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        let mut st = self.shared.lock();
        let (token, _) = oauth::issue(
            &mut st,
            DEFAULT_USER,
            crate::DEFAULT_CLIENT_ID,
            &format!("{SCOPE_CALENDAR} {SCOPE_CONTACTS}"),
            false,
        );
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let req = crate::wire::Req::new(
            method,
            path,
            vec![("authorization".into(), format!("Bearer {token}"))],
            bytes,
        );
        let saved_faults = std::mem::take(&mut st.faults);
        let counters = st.counters.clone();
        let resp = match crate::route(&req) {
            Some(e) => crate::dispatch(&mut st, e, &req),
            None => crate::wire::Resp::empty(404),
        };
        st.faults = saved_faults;
        st.counters = counters;
        st.access_tokens.remove(&token);
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        if resp.status < 300 {
            Ok(serde_json::from_str(&text).unwrap_or(json!({})))
        } else {
            Err(format!("{} {text}", resp.status))
        }
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
