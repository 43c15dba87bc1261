//! The Graph fake's shared state: mailboxes (calendars, events, categories, contact folders,
//! contacts), delta tokens, identity-platform clients and tokens, faults, counters, recordings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::{Endpoint, Fault, FaultTarget};
use crate::RecordedRequest;

/// A calendar of a mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) color: String,
    pub(crate) change_key: String,
    pub(crate) is_default: bool,
}

/// When an event happens: a timed range (instants) or an all-day range (dates, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Timed(DateTime<Utc>, DateTime<Utc>),
    AllDay(NaiveDate, NaiveDate),
}

impl When {
    /// The range as UTC instants (all-day dates are taken at UTC midnight).
    pub(crate) fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match *self {
            When::Timed(s, e) => (s, e),
            When::AllDay(s, e) => (
                s.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
                e.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            ),
        }
    }

    /// Whether the item overlaps `[start, end)` (calendarView semantics).
    pub(crate) fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let (s, e) = self.range();
        s < end && (e > start || (s == e && s >= start))
    }
}

/// A stored event.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// The immutable id (`Prefer: IdType="ImmutableId"`); the map key.
    pub(crate) immutable_id: String,
    /// The regular id; changes when the event moves to another calendar (MS-CAL-19).
    pub(crate) rest_id: String,
    pub(crate) calendar_id: String,
    /// Writable properties other than start/end/isAllDay, as last written.
    pub(crate) props: Map<String, Value>,
    pub(crate) when: When,
    pub(crate) start_tz: String,
    pub(crate) end_tz: String,
    pub(crate) change_key: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
    pub(crate) seq: u64,
    /// The sequence number at which each property last changed (for partial delta updates).
    pub(crate) prop_seq: BTreeMap<String, u64>,
    pub(crate) ext: BTreeMap<String, String>,
    /// For a series master: the occurrences the user edited (by their original date), as
    /// PATCH bodies over the master's properties (MS-CAL-12).
    pub(crate) exceptions: BTreeMap<NaiveDate, Map<String, Value>>,
    /// For a series master: the occurrences the user deleted (`cancelledOccurrences`).
    pub(crate) cancelled: BTreeSet<NaiveDate>,
}

/// A contact folder (the default one has `default == true`).
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) parent_id: String,
}

/// A stored contact.
#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub(crate) id: String,
    pub(crate) folder_id: String,
    pub(crate) props: Map<String, Value>,
    pub(crate) change_key: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
    pub(crate) seq: u64,
    pub(crate) ext: BTreeMap<String, String>,
    pub(crate) photo: Option<(String, Vec<u8>)>,
}

/// A master category.
#[derive(Debug, Clone)]
pub(crate) struct Category {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) color: String,
}

/// The trace an item leaves in a collection it left (deleted, or moved away).
#[derive(Debug, Clone)]
pub(crate) struct Tombstone {
    /// Calendar id or contact folder id.
    pub(crate) collection: String,
    pub(crate) rest_id: String,
    pub(crate) immutable_id: String,
    pub(crate) seq: u64,
}

/// Everything of one mailbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mailbox {
    pub(crate) calendars: Vec<Calendar>,
    pub(crate) events: BTreeMap<String, Event>,
    pub(crate) event_tombstones: Vec<Tombstone>,
    pub(crate) categories: Vec<Category>,
    pub(crate) default_folder: String,
    pub(crate) folders: Vec<Folder>,
    pub(crate) contacts: BTreeMap<String, Contact>,
    pub(crate) contact_tombstones: Vec<Tombstone>,
    /// transactionId -> immutable id of the event it created (MS-CAL-6).
    pub(crate) transactions: HashMap<String, String>,
}

impl Mailbox {
    /// Finds an event by its regular or immutable id.
    pub(crate) fn event_key(&self, id: &str) -> Option<String> {
        if self.events.contains_key(id) {
            return Some(id.to_owned());
        }
        self.events
            .values()
            .find(|e| e.rest_id == id)
            .map(|e| e.immutable_id.clone())
    }

    pub(crate) fn calendar(&self, id: &str) -> Option<&Calendar> {
        self.calendars.iter().find(|c| c.id == id)
    }

    pub(crate) fn default_calendar_id(&self) -> String {
        self.calendars
            .iter()
            .find(|c| c.is_default)
            .map(|c| c.id.clone())
            .unwrap_or_default()
    }
}

/// What a delta token was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeltaScope {
    /// calendarView/delta of one calendar over a window.
    CalendarView {
        calendar_id: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// contacts/delta of one folder.
    Contacts { folder_id: String },
}

/// Where a delta round restarts.
#[derive(Debug, Clone)]
pub(crate) struct DeltaPoint {
    pub(crate) user: String,
    pub(crate) scope: DeltaScope,
    /// The request path the round was started on (links are built on it).
    pub(crate) path: String,
    pub(crate) seq: u64,
    /// Ids (immutable) reported as present in the scope by the rounds so far.
    pub(crate) known: BTreeSet<String>,
    pub(crate) valid: bool,
}

/// One item of a delta page, rendered when the page is served.
#[derive(Debug, Clone)]
pub(crate) enum DeltaItem {
    Full(String),
    Partial(String, u64),
    Removed {
        rest_id: String,
        immutable_id: String,
    },
}

/// The rest of a delta round.
#[derive(Debug, Clone)]
pub(crate) struct DeltaCursor {
    pub(crate) items: Vec<DeltaItem>,
    /// The point the final deltaLink will carry.
    pub(crate) next: DeltaPoint,
    pub(crate) valid: bool,
}

/// A registered application.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// `None` for a public client (mobile & desktop): it must not send a secret.
    pub(crate) secret: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<(String, String)>,
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
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) user: String,
    pub(crate) client_id: String,
    pub(crate) scopes: String,
    pub(crate) revoked: bool,
    pub(crate) inactive: bool,
}

/// The state of a device code (MS-OA-8), driven by the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    SlowDown,
    Approved,
    Declined,
    Expired,
    Redeemed,
}

/// An issued device code.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    pub(crate) user_code: String,
    pub(crate) client_id: String,
    pub(crate) scopes: String,
    pub(crate) status: DeviceStatus,
    pub(crate) user: String,
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
    /// `http://127.0.0.1:<port>` (links are absolute).
    pub(crate) origin: String,
    pub(crate) clock_offset: chrono::Duration,
    pub(crate) counter: u64,
    pub(crate) seq: u64,
    pub(crate) mailboxes: BTreeMap<String, Mailbox>,
    pub(crate) delta_points: HashMap<String, DeltaPoint>,
    pub(crate) delta_cursors: HashMap<String, DeltaCursor>,
    pub(crate) apps: HashMap<String, App>,
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) access_tokens: HashMap<String, AccessToken>,
    pub(crate) refresh_tokens: HashMap<String, RefreshToken>,
    pub(crate) device_codes: HashMap<String, DeviceCode>,
    pub(crate) browser_user: String,
    pub(crate) consent_granted: bool,
    /// Errors the token endpoint returns for the next calls (control API).
    pub(crate) token_errors: Vec<super::TokenError>,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) counters: BTreeMap<Endpoint, u64>,
    pub(crate) recorded: Vec<RecordedRequest>,
    pub(crate) in_flight: HashMap<String, usize>,
    pub(crate) peak_in_flight: usize,
    pub(crate) concurrency_limit: usize,
    pub(crate) latency: std::time::Duration,
    /// Raw items added to the next calendarView delta page served (bad-input tests).
    pub(crate) injected_delta_items: Vec<Value>,
    /// Knobs of misbehaving servers (control API).
    pub(crate) knobs: Knobs,
}

/// Ways the fake can misbehave on purpose, set through the control API: a server that is
/// stricter or sloppier than the documented one, where a client must still be right.
#[derive(Debug, Clone, Default)]
pub(crate) struct Knobs {
    /// Link-key lookups (`$filter` on `singleValueExtendedProperties`) are answered with
    /// every item of the collection, as if the filter were not there.
    pub(crate) ignore_link_key_filter: bool,
    /// Link-key lookups are refused with 400 `ErrorInvalidUrlQueryFilter`.
    pub(crate) refuse_link_key_filter: bool,
    /// The last page of a delta round carries neither `@odata.nextLink` nor
    /// `@odata.deltaLink`.
    pub(crate) delta_without_links: bool,
}

impl State {
    pub(crate) fn new(origin: String, default_user: &str) -> State {
        let mut s = State {
            origin,
            clock_offset: chrono::Duration::zero(),
            counter: 0,
            seq: 0,
            mailboxes: BTreeMap::new(),
            delta_points: HashMap::new(),
            delta_cursors: HashMap::new(),
            apps: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            device_codes: HashMap::new(),
            browser_user: default_user.to_owned(),
            consent_granted: true,
            token_errors: Vec::new(),
            faults: Vec::new(),
            counters: BTreeMap::new(),
            recorded: Vec::new(),
            in_flight: HashMap::new(),
            peak_in_flight: 0,
            concurrency_limit: 4,
            latency: std::time::Duration::ZERO,
            injected_delta_items: Vec::new(),
            knobs: Knobs::default(),
        };
        s.ensure_mailbox(default_user);
        s
    }

    /// The fake clock: real time plus the offset tests advanced it by.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// An Exchange-like opaque id: `prefix` + 40 base64url-ish characters, ending in `=`.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        use base64::Engine as _;
        use sha2::{Digest, Sha256};
        let n = self.next();
        let digest = Sha256::digest(format!("{prefix}:{n}:{}", self.origin).as_bytes());
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24]);
        format!("{prefix}{b}=")
    }

    /// A fresh changeKey (base64, like Exchange's).
    pub(crate) fn new_change_key(&mut self) -> String {
        use base64::Engine as _;
        let n = self.next();
        let bytes = [b"crmsync-".as_slice(), &n.to_be_bytes()].concat();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A GUID-shaped id (request ids, category ids).
    pub(crate) fn new_guid(&mut self) -> String {
        let n = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            n.wrapping_mul(2_654_435_761) & 0xffff_ffff,
            n & 0xffff,
            (n >> 4) & 0xfff,
            (n >> 8) & 0xfff,
            n
        )
    }

    pub(crate) fn ensure_mailbox(&mut self, user: &str) {
        if self.mailboxes.contains_key(user) {
            return;
        }
        let cal_id = self.new_id("AAMkADcal");
        let ck = self.new_change_key();
        let folder = self.new_id("AAMkADfld");
        let mut mb = Mailbox {
            default_folder: folder,
            categories: super::calendar::default_categories(self),
            ..Mailbox::default()
        };
        mb.calendars.push(Calendar {
            id: cal_id,
            name: "Calendar".into(),
            color: "auto".into(),
            change_key: ck,
            is_default: true,
        });
        self.mailboxes.insert(user.to_owned(), mb);
    }

    pub(crate) fn mailbox(&mut self, user: &str) -> &mut Mailbox {
        self.ensure_mailbox(user);
        self.mailboxes.entry(user.to_owned()).or_default()
    }

    pub(crate) fn count(&mut self, endpoint: Endpoint) {
        *self.counters.entry(endpoint).or_insert(0) += 1;
    }

    /// Takes one armed fault aimed at the `$batch` envelope itself
    /// (`FaultTarget::Endpoint(Endpoint::Batch)`; `FaultTarget::Any` is matched by the members).
    pub(crate) fn take_envelope_fault(&mut self) -> Option<Fault> {
        let idx = self
            .faults
            .iter()
            .position(|r| r.remaining > 0 && r.target == FaultTarget::Endpoint(Endpoint::Batch))?;
        let rule = &mut self.faults[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    /// Takes one armed fault matching `endpoint`.
    pub(crate) fn take_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let idx = self.faults.iter().position(|r| {
            r.remaining > 0
                && match r.target {
                    FaultTarget::Any => !endpoint.is_identity(),
                    FaultTarget::Endpoint(e) => e == endpoint,
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
}
