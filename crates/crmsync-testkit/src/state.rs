//! The fake's shared state.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{Endpoint, Fault, FaultTarget, Paging, RecordedRequest};

/// A stored calendar (with its calendarList entry fields).
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub(crate) id: String,
    pub(crate) summary: String,
    pub(crate) summary_override: Option<String>,
    pub(crate) access_role: String,
    pub(crate) primary: bool,
    pub(crate) hidden: bool,
    pub(crate) time_zone: String,
    pub(crate) color_id: String,
    pub(crate) etag: String,
    /// Change sequence of the calendarList entry.
    pub(crate) seq: u64,
    pub(crate) events: BTreeMap<String, StoredEvent>,
}

/// A stored event: the resource as the client wrote it (plus server fields), and bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) resource: Map<String, Value>,
    pub(crate) seq: u64,
}

impl StoredEvent {
    pub(crate) fn cancelled(&self) -> bool {
        self.resource.get("status").and_then(Value::as_str) == Some("cancelled")
    }
    pub(crate) fn etag(&self) -> &str {
        self.resource
            .get("etag")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// A stored contact: user-writable fields plus bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct StoredPerson {
    pub(crate) resource_name: String,
    pub(crate) etag: String,
    pub(crate) fields: Map<String, Value>,
    pub(crate) photo_url: Option<String>,
    pub(crate) deleted: bool,
    pub(crate) seq: u64,
    pub(crate) update_time: String,
}

/// A contact group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) resource_name: String,
    pub(crate) name: String,
    pub(crate) system: bool,
    pub(crate) etag: String,
    pub(crate) seq: u64,
    pub(crate) deleted: bool,
}

/// Where a sync token restarts.
#[derive(Debug, Clone)]
pub(crate) struct SyncPoint {
    pub(crate) user: String,
    /// Calendar id, `calendarList`, `connections` or `contactGroups`.
    pub(crate) collection: String,
    pub(crate) seq: u64,
    /// For Calendar: the window of the initial full sync (kept implicitly, G-CAL-10).
    pub(crate) window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    /// For People: the `personFields` of the first call (G-PPL-3) and when the full sync ran.
    pub(crate) fields: String,
    pub(crate) full_sync_at: DateTime<Utc>,
    pub(crate) valid: bool,
}

/// The remaining items of a paged listing.
#[derive(Debug, Clone)]
pub(crate) struct PageCursor {
    pub(crate) user: String,
    pub(crate) fingerprint: String,
    pub(crate) remaining: Vec<Value>,
    pub(crate) page_index: usize,
    pub(crate) page_size: usize,
    /// The sync token to hand out on the last page, if any.
    pub(crate) next_sync_token: Option<String>,
    pub(crate) total: usize,
}

/// Everything of one Google account.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserData {
    pub(crate) calendars: Vec<Calendar>,
    pub(crate) people: BTreeMap<String, StoredPerson>,
    pub(crate) groups: BTreeMap<String, Group>,
}

/// A registered OAuth client.
#[derive(Debug, Clone)]
pub(crate) struct OAuthClient {
    pub(crate) secret: String,
    pub(crate) redirect_uris: Vec<String>,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<String>,
    pub(crate) user: String,
    pub(crate) scopes: String,
    pub(crate) used: bool,
    pub(crate) issued_at: DateTime<Utc>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) user: String,
    pub(crate) scopes: String,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) refresh: Option<String>,
    pub(crate) revoked: bool,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) user: String,
    pub(crate) client_id: String,
    pub(crate) scopes: String,
    pub(crate) revoked: bool,
}

/// An armed fault.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub(crate) target: FaultTarget,
    pub(crate) fault: Fault,
    pub(crate) remaining: u32,
}

/// The whole state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) clock_offset: chrono::Duration,
    pub(crate) counter: u64,
    pub(crate) seq: u64,
    pub(crate) users: BTreeMap<String, UserData>,
    pub(crate) sync_tokens: HashMap<String, SyncPoint>,
    pub(crate) page_cursors: HashMap<String, PageCursor>,
    pub(crate) clients: HashMap<String, OAuthClient>,
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) access_tokens: HashMap<String, AccessToken>,
    pub(crate) refresh_tokens: HashMap<String, RefreshToken>,
    pub(crate) test_users: Option<Vec<String>>,
    pub(crate) browser_user: String,
    pub(crate) consent_granted: bool,
    pub(crate) granted_scopes: Option<String>,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) counters: BTreeMap<Endpoint, u64>,
    pub(crate) recorded: Vec<RecordedRequest>,
    pub(crate) paging: Paging,
    pub(crate) batch_limit: usize,
    pub(crate) fail_concurrent_people: bool,
    pub(crate) people_latency: std::time::Duration,
    pub(crate) people_in_flight: HashMap<String, usize>,
    pub(crate) people_peak: usize,
    /// Server behaviours the documentation allows and Google itself does not show (see
    /// `calendar::Quirk`), switched on by tests.
    pub(crate) quirks: std::collections::HashSet<crate::calendar::Quirk>,
}

impl State {
    pub(crate) fn new(default_user: &str) -> State {
        let mut s = State {
            clock_offset: chrono::Duration::zero(),
            counter: 0,
            seq: 0,
            users: BTreeMap::new(),
            sync_tokens: HashMap::new(),
            page_cursors: HashMap::new(),
            clients: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            test_users: None,
            browser_user: default_user.to_owned(),
            consent_granted: true,
            granted_scopes: None,
            faults: Vec::new(),
            counters: BTreeMap::new(),
            recorded: Vec::new(),
            paging: Paging::default(),
            batch_limit: 50,
            fail_concurrent_people: false,
            people_latency: std::time::Duration::ZERO,
            people_in_flight: HashMap::new(),
            people_peak: 0,
            quirks: std::collections::HashSet::new(),
        };
        s.ensure_user(default_user);
        s
    }

    /// The fake clock: real time plus the offset tests advanced it by.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// RFC 3339 with milliseconds and `Z`, as Google renders `updated`.
    pub(crate) fn now_rfc3339(&self) -> String {
        self.now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh quoted etag like Google's `"3236593796465000"`.
    pub(crate) fn new_etag(&mut self) -> String {
        let n = self.next();
        let micros = u64::try_from(self.now().timestamp_micros()).unwrap_or(0);
        format!("\"{}\"", micros * 10 + n % 10)
    }

    /// A fresh People-style etag (opaque base64).
    pub(crate) fn new_people_etag(&mut self) -> String {
        format!("%{}", self.opaque("etag"))
    }

    /// An opaque, unguessable-looking token.
    pub(crate) fn opaque(&mut self, kind: &str) -> String {
        let n = self.next();
        let digest = Sha256::digest(format!(
            "{kind}:{n}:{}",
            self.now().timestamp_nanos_opt().unwrap_or(0)
        ));
        base64::engine::general_purpose::STANDARD.encode(&digest[..18])
    }

    /// A URL-safe opaque token (codes, OAuth tokens, page tokens).
    pub(crate) fn opaque_url(&mut self, kind: &str) -> String {
        let n = self.next();
        let digest = Sha256::digest(format!(
            "{kind}:{n}:{}",
            self.now().timestamp_nanos_opt().unwrap_or(0)
        ));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
    }

    pub(crate) fn ensure_user(&mut self, email: &str) {
        if self.users.contains_key(email) {
            return;
        }
        let etag = self.new_etag();
        let seq = self.next_seq();
        let mut user = UserData::default();
        user.calendars.push(Calendar {
            id: email.to_owned(),
            summary: email.to_owned(),
            summary_override: None,
            access_role: "owner".into(),
            primary: true,
            hidden: false,
            time_zone: "Europe/Paris".into(),
            color_id: "14".into(),
            etag,
            seq,
            events: BTreeMap::new(),
        });
        for (id, name) in [("myContacts", "myContacts"), ("starred", "starred")] {
            let etag = self.new_people_etag();
            let seq = self.next_seq();
            user.groups.insert(
                format!("contactGroups/{id}"),
                Group {
                    resource_name: format!("contactGroups/{id}"),
                    name: name.into(),
                    system: true,
                    etag,
                    seq,
                    deleted: false,
                },
            );
        }
        self.users.insert(email.to_owned(), user);
    }

    pub(crate) fn user_mut(&mut self, email: &str) -> &mut UserData {
        self.ensure_user(email);
        self.users.entry(email.to_owned()).or_default()
    }

    /// Index of a calendar by id (or `primary`).
    pub(crate) fn calendar_index(&self, user: &str, id: &str) -> Option<usize> {
        let u = self.users.get(user)?;
        if id == "primary" {
            return u.calendars.iter().position(|c| c.primary);
        }
        u.calendars.iter().position(|c| c.id == id)
    }

    /// Takes one armed fault matching `endpoint`, if any.
    pub(crate) fn take_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let idx = self.faults.iter().position(|r| {
            r.remaining > 0
                && match r.target {
                    FaultTarget::Any => true,
                    FaultTarget::Endpoint(e) => e == endpoint,
                    FaultTarget::Calendar => endpoint.api() == crate::Api::Calendar,
                    FaultTarget::People => endpoint.api() == crate::Api::People,
                }
        })?;
        let rule = &mut self.faults[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    pub(crate) fn count(&mut self, endpoint: Endpoint) {
        *self.counters.entry(endpoint).or_insert(0) += 1;
    }

    /// Stores a page cursor and returns its token.
    pub(crate) fn store_cursor(&mut self, cursor: PageCursor) -> String {
        let token = self.opaque_url("page");
        self.page_cursors.insert(token.clone(), cursor);
        token
    }

    /// Issues a sync token for `point`.
    pub(crate) fn store_sync_token(&mut self, point: SyncPoint) -> String {
        let token = self.opaque("sync");
        self.sync_tokens.insert(token.clone(), point);
        token
    }
}

/// Cuts the next page out of `cursor`: returns the page's items, and whether more remain.
pub(crate) fn cut_page(paging: &Paging, cursor: &mut PageCursor) -> (Vec<Value>, bool) {
    let index = cursor.page_index;
    cursor.page_index += 1;
    if paging.empty_pages && index.is_multiple_of(2) && !cursor.remaining.is_empty() {
        return (Vec::new(), true);
    }
    let mut size = cursor.page_size.max(1);
    if let Some(cap) = paging.max_items_per_page {
        size = size.min(cap.max(1));
    }
    let take = size.min(cursor.remaining.len());
    let page: Vec<Value> = cursor.remaining.drain(..take).collect();
    let more = !cursor.remaining.is_empty();
    (page, more)
}
