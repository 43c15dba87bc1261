//! [`GraphCalendar`]: Outlook calendars and events as a [`CalendarStore`].
//!
//! - `changes`: calendarView delta over the window, with `Prefer: odata.maxpagesize`:
//!   `/me/calendarView/delta` for the mailbox's default calendar (the form v1.0
//!   documents, MS-CAL-13), `/me/calendars/{id}/calendarView/delta` for another (documented
//!   in beta, served by v1.0); `@odata.nextLink` is the page token and `@odata.deltaLink`
//!   the cursor; a round ending with neither is [`Continuation::DoneWithoutCursor`] (the
//!   engine lists in full next time); 410 `syncStateNotFound` is
//!   [`ErrorKind::CursorExpired`]. Graph reports an event that was deleted and one that
//!   only left the window alike (`@removed` with reason `deleted`), so removals carry
//!   [`RemovalReason::Unknown`] and the engine checks with [`RecordStore::get`]. Delta
//!   updates may be partial: [`Upsert::sent`] names the fields present.
//! - Series: calendarView lists occurrences and exceptions, not their series master
//!   (MS-CAL-4). The occurrences of a page are grouped by `seriesMasterId` and reported
//!   as **one** record, the series master read once (its `recurrence` as RRULE lines, its
//!   exceptions in [`Recurrence::exceptions`](crmsync_core::model::Recurrence)), so a
//!   series is never seen as many single events; the engine skips it while the policy
//!   skips recurrence.
//! - `create`: `POST …/events` with a `transactionId` derived from the link key (a
//!   resent create returns the first event, MS-CAL-6) and the link key as a
//!   single-value extended property; `find_by_link_key` filters on it and checks the
//!   property of what the server returns. Delta cannot expand extended properties
//!   (MS-CAL-18), so the `transactionId` carries the link key itself (`crmsync:key:{key}`,
//!   or a hash for a key too long): the echo of our creates in the next delta, in this
//!   process or another, needs no request to read its link key.
//! - `update`: `PATCH` of the requested fields only, with `If-Match` (MS-CAL-20);
//!   `delete` with `If-Match`.
//! - `write_batch`: creates, updates and deletes as `$batch` requests of up to 20
//!   ([`crate::batch`]); each answer is classified on its own (412
//!   `PreconditionFailed`, 404 `NotFound`, …), throttled members are sent again.
//! - Colour: written as a master category of ours in `categories`, next to the user's
//!   own categories ([`crate::categories`]); the master categories are listed once per
//!   store and created when missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crmsync_core::model::{Event, EventField, Recurrence};
use crmsync_core::record::{Field, Record};
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo,
    Continuation, Cursor, Error, ErrorKind, ItemId, LinkKey, PageToken, RecordStore, Removal,
    RemovalReason, Result, Stored, Unreadable, Upsert, Version, WriteOp, WriteOutcome,
};
use crmsync_http::ApiRequest;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::batch::{BatchAnswer, BatchRequest, MAX_BATCH};
use crate::categories::{self, MasterCategories, OurCategory};
use crate::client::MicrosoftClient;
use crate::mapping::{event_from_graph, event_to_graph, fields_present};

/// The single-value extended property holding the link key (a String property in a
/// crmsync namespace GUID).
pub const LINK_PROPERTY: &str = "String {5b0f4a8e-3c1d-4e7a-9b2f-6d8c0e1a2b3c} Name crmsync_link";

/// The largest page asked for (`Prefer: odata.maxpagesize`).
pub const MAX_PAGE_SIZE: usize = 100;

/// The window listed when the engine gives none: calendarView delta requires one.
const DEFAULT_WINDOW_DAYS: i64 = 365;

/// An event's `categories` as read, with the version they were read at.
type SeenCategories = (Version, Vec<String>);

/// The account's Outlook calendars and events, for the sync engine. Cheap to clone.
#[derive(Clone)]
pub struct GraphCalendar {
    client: MicrosoftClient,
    /// The configured calendar, once found: looked up once per store.
    configured: Arc<Mutex<Option<CollectionInfo>>>,
    /// The link keys of the events this store created: their echo in the next delta needs
    /// no second request to read the link key.
    created: Arc<Mutex<HashMap<ItemId, LinkKey>>>,
    /// The id of the mailbox's default calendar, once read (`GET /me/calendar`).
    default_calendar: Arc<Mutex<Option<CollectionId>>>,
    /// The `categories` of events as last read, with the version read: an update of the
    /// colour keeps the user's own categories without reading the event again.
    seen_categories: Arc<Mutex<HashMap<ItemId, SeenCategories>>>,
    /// The mailbox's master categories (listed once, created when missing).
    masters: MasterCategories,
}

impl fmt::Debug for GraphCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphCalendar")
            .field("client", &self.client)
            .finish()
    }
}

fn provider(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Provider, message)
}

/// The prefix of our `transactionId`s: an event carrying one was created by crmsync.
const TRANSACTION_PREFIX: &str = "crmsync";

/// The prefix of a `transactionId` that carries the link key after it.
const TRANSACTION_KEY_PREFIX: &str = "crmsync:key:";

/// The longest link key a `transactionId` carries as it is (Graph documents no limit of the
/// property; longer keys are hashed, and their echo is read once to learn the key).
const MAX_KEY_IN_TRANSACTION: usize = 128;

fn modified(item: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    item.get("lastModifiedDateTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The value of the link-key property of an event read with it expanded.
fn link_value(item: &Value) -> Option<&str> {
    item.get("singleValueExtendedProperties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .is_some_and(|i| i.eq_ignore_ascii_case(LINK_PROPERTY))
        })
        .and_then(|p| p.get("value").and_then(Value::as_str))
}

fn expand_link() -> String {
    format!("singleValueExtendedProperties($filter=id eq '{LINK_PROPERTY}')")
}

/// The `transactionId` of a create: derived from the link key, so a retried create is
/// recognised by Graph and returns the first event (MS-CAL-6). It holds the key itself when
/// the key is short enough, so a delta item tells its link key without a read
/// ([`link_key_of_transaction`]); else a hash of it (`crmsync-{hex}`).
fn transaction_id(link_key: &LinkKey) -> String {
    let key = link_key.as_str();
    if key.len() <= MAX_KEY_IN_TRANSACTION {
        return format!("{TRANSACTION_KEY_PREFIX}{key}");
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{TRANSACTION_PREFIX}-{hex}")
}

/// The link key a `transactionId` of ours carries, if it carries one (not a hashed one, not
/// one of another client).
fn link_key_of_transaction(item: &Value) -> Option<LinkKey> {
    item.get("transactionId")
        .and_then(Value::as_str)?
        .strip_prefix(TRANSACTION_KEY_PREFIX)
        .and_then(|key| LinkKey::new(key).ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The series an item of a calendarView belongs to: its `seriesMasterId` (an occurrence
/// or an exception), or its own id for a series master.
fn series_of(item: &Value) -> Option<String> {
    if let Some(master) = item.get("seriesMasterId").and_then(Value::as_str) {
        return Some(master.to_owned());
    }
    match item.get("type").and_then(Value::as_str) {
        Some("seriesMaster") => item.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// A write of a batch, ready to send, or settled without sending.
enum Prepared {
    Send(BatchRequest),
    Done(Result<WriteOutcome<Event>>),
}

impl GraphCalendar {
    /// The calendars and events of `client`'s mailbox.
    pub fn new(client: MicrosoftClient) -> Self {
        GraphCalendar {
            masters: MasterCategories::new(client.clone()),
            client,
            configured: Arc::new(Mutex::new(None)),
            created: Arc::new(Mutex::new(HashMap::new())),
            default_calendar: Arc::new(Mutex::new(None)),
            seen_categories: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The calendar to sync: the one named by
    /// [`MicrosoftConfig::calendar_name`](crate::MicrosoftConfig::calendar_name), or the
    /// mailbox's default calendar when none is named. Found once, then kept.
    ///
    /// # Errors
    /// [`ErrorKind::CalendarNotFound`], [`ErrorKind::CalendarNameMissing`] (a blank name)
    /// or [`ErrorKind::NoCalendars`], with their remedies; the listing's errors.
    pub async fn configured_calendar(&self) -> Result<CollectionInfo> {
        if let Some(found) = lock(&self.configured).clone() {
            return Ok(found);
        }
        let found = match &self.client.config().calendar_name {
            Some(name) => crmsync_core::CalendarStoreExt::calendar_by_name(self, name).await?,
            None => {
                let calendars = self.calendars().await?;
                match calendars.iter().find(|c| c.primary).or(calendars.first()) {
                    Some(primary) => primary.clone(),
                    None => {
                        return Err(Error::new(
                            ErrorKind::NoCalendars,
                            "the mailbox has no calendar",
                        ));
                    }
                }
            }
        };
        *lock(&self.configured) = Some(found.clone());
        Ok(found)
    }

    /// The client.
    pub fn client(&self) -> &MicrosoftClient {
        &self.client
    }

    /// Whether `collection` is the mailbox's default calendar: known from the configured
    /// calendar, or read once with `GET /me/calendar` (MS-CAL-1).
    async fn is_default_calendar(&self, collection: &CollectionId) -> Result<bool> {
        if let Some(found) = lock(&self.configured).as_ref()
            && &found.id == collection
        {
            return Ok(found.primary);
        }
        if let Some(id) = lock(&self.default_calendar).as_ref() {
            return Ok(id == collection);
        }
        let value = self
            .client
            .get_json(
                self.client.url(["me", "calendar"]),
                "reading the default calendar",
            )
            .await?;
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| provider("the default calendar has no id"))?;
        let id = CollectionId::new(id)?;
        let default = &id == collection;
        *lock(&self.default_calendar) = Some(id);
        Ok(default)
    }

    fn events_url(&self, collection: &CollectionId) -> Url {
        let mut url = self
            .client
            .url(["me", "calendars", collection.as_str(), "events"]);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        url
    }

    fn event_url(&self, id: &ItemId) -> Url {
        self.client.url(["me", "events", id.as_str()])
    }

    fn event_url_expanded(&self, id: &ItemId) -> Url {
        let mut url = self.event_url(id);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        url
    }

    /// The stored form of a full Graph event.
    fn stored(value: &Value) -> Result<Stored<Event>> {
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_record(None, "a Graph event without an id"))?;
        let version = value
            .get("@odata.etag")
            .and_then(Value::as_str)
            .ok_or_else(|| provider("an event without an @odata.etag"))?;
        let link_key = link_value(value).map(LinkKey::new).transpose()?;
        Ok(Stored {
            id: ItemId::new(id)?,
            version: Version::new(version)?,
            link_key,
            record: event_from_graph(value)?,
        })
    }

    /// [`GraphCalendar::stored`], remembering the event's categories at its version.
    fn read(&self, value: &Value) -> Result<Stored<Event>> {
        let stored = Self::stored(value)?;
        if value.get("categories").is_some() {
            lock(&self.seen_categories).insert(
                stored.id.clone(),
                (stored.version.clone(), categories::of_event(value)),
            );
        }
        Ok(stored)
    }

    fn capabilities_literal() -> Capabilities {
        let mut caps = Capabilities::unlimited("microsoft");
        // calendarView delta with a deltaLink (MS-CAL-13..17).
        caps.incremental = true;
        // JSON batching: at most 20 requests per `$batch` (MS-GEN-1).
        caps.max_batch = MAX_BATCH;
        // `Prefer: odata.maxpagesize` is honoured up to Graph's own page limits.
        caps.max_page_size = Some(MAX_PAGE_SIZE);
        caps.fields = Some(
            [
                EventField::Title,
                EventField::Location,
                EventField::Period,
                EventField::Private,
                EventField::Reminder,
                EventField::Colour,
                EventField::Description,
                EventField::Status,
            ]
            .iter()
            .map(|f| f.name().to_owned())
            .collect(),
        );
        // One reminder per event: `isReminderOn` and `reminderMinutesBeforeStart`
        // (Graph v1.0 `event` resource, MS-CAL-5/7).
        caps.max_reminders = Some(1);
        // Colours are master categories with one of 25 presets (`categoryColor`,
        // MS-CAL-21): colours snap to the nearest preset.
        caps.palette = Some(categories::palette());
        caps.link_keys = true;
        // Every call goes through crmsync-http's one retry policy (Retry-After honoured).
        caps.retries_itself = true;
        caps
    }

    /// Our category of `record`, created in the master list when missing.
    async fn ensure_category(&self, record: &Event) -> Result<Option<OurCategory>> {
        let ours = categories::category_for(record.colour, record.category.as_deref());
        if let Some(ours) = &ours {
            self.masters.ensure(ours).await?;
        }
        Ok(ours)
    }

    /// The event's current categories, as seen at `expected`, or read now.
    async fn current_categories(&self, id: &ItemId, expected: &Version) -> Result<Vec<String>> {
        if let Some((version, seen)) = lock(&self.seen_categories).get(id)
            && version == expected
        {
            return Ok(seen.clone());
        }
        let value = self
            .client
            .get_json(self.event_url(id), "reading an event's categories")
            .await?;
        Ok(categories::of_event(&value))
    }

    /// The body of a create.
    async fn create_body(&self, record: &Event, link_key: &LinkKey) -> Result<Value> {
        record.validate()?;
        let fields: BTreeSet<EventField> = <EventField as Field>::ALL.iter().copied().collect();
        let mut body = event_to_graph(record, &fields);
        if let Some(ours) = self.ensure_category(record).await? {
            body.insert("categories".into(), json!([ours.display_name]));
        }
        body.insert("transactionId".into(), json!(transaction_id(link_key)));
        body.insert(
            "singleValueExtendedProperties".into(),
            json!([{"id": LINK_PROPERTY, "value": link_key.as_str()}]),
        );
        Ok(Value::Object(body))
    }

    /// The body of an update of `fields`.
    async fn update_body(
        &self,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Map<String, Value>> {
        record.validate()?;
        let mut body = event_to_graph(record, fields);
        if fields.contains(&EventField::Colour) {
            let ours = self.ensure_category(record).await?;
            let current = self.current_categories(id, expected).await?;
            body.insert(
                "categories".into(),
                json!(categories::merge(&current, ours.as_ref())),
            );
        }
        Ok(body)
    }

    fn remember_created(&self, stored: &mut Stored<Event>, link_key: &LinkKey) {
        stored.link_key.get_or_insert_with(|| link_key.clone());
        lock(&self.created).insert(stored.id.clone(), link_key.clone());
    }

    /// A series: its master as one record, with the exceptions seen in `members`.
    async fn series_upsert(
        &self,
        collection: &CollectionId,
        master: &ItemId,
        members: &[Value],
    ) -> Result<Option<Upsert<Event>>> {
        let Some(mut stored) = self.get(collection, master).await? else {
            return Ok(None);
        };
        let recurrence = stored
            .record
            .recurrence
            .get_or_insert_with(Recurrence::default);
        recurrence.exceptions = members
            .iter()
            .filter(|m| m.get("type").and_then(Value::as_str) == Some("exception"))
            .cloned()
            .collect();
        if recurrence.rules.is_empty() && recurrence.exceptions.is_empty() {
            // A master without a readable rule still stands for a series.
            recurrence.rules.push("X-GRAPH-RECURRENCE:unknown".into());
        }
        Ok(Some(Upsert {
            item: stored,
            sent: None,
            modified: None,
        }))
    }

    /// Prepares one write of a batch: its request, or its outcome when it cannot be sent
    /// (an invalid record, a failed category lookup).
    async fn prepare(&self, collection: &CollectionId, op: &WriteOp<Event>) -> Prepared {
        let prepared = match op {
            WriteOp::Create { record, link_key } => {
                self.create_body(record, link_key)
                    .await
                    .map(|body| BatchRequest {
                        method: "POST",
                        url: self.events_url(collection),
                        if_match: None,
                        body: Some(body),
                    })
            }
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => self
                .update_body(id, expected, record, fields)
                .await
                .map(|body| BatchRequest {
                    method: "PATCH",
                    url: self.event_url_expanded(id),
                    if_match: Some(expected.as_str().to_owned()),
                    body: Some(Value::Object(body)),
                }),
            WriteOp::Delete { id, expected } => Ok(BatchRequest {
                method: "DELETE",
                url: self.event_url(id),
                if_match: Some(expected.as_str().to_owned()),
                body: None,
            }),
        };
        match prepared {
            Ok(request) => Prepared::Send(request),
            Err(e) => Prepared::Done(Err(e)),
        }
    }

    /// The outcome of a write from its batch answer.
    fn outcome(&self, op: &WriteOp<Event>, answer: &BatchAnswer) -> Result<WriteOutcome<Event>> {
        let what = match op {
            WriteOp::Create { .. } => "creating an event",
            WriteOp::Update { .. } => "updating an event",
            WriteOp::Delete { .. } => "deleting an event",
        };
        if !answer.is_success() {
            return Err(answer.error(what));
        }
        match op {
            WriteOp::Delete { .. } => Ok(WriteOutcome::Deleted),
            WriteOp::Create { link_key, .. } => {
                let mut stored = self.read(&answer.body)?;
                self.remember_created(&mut stored, link_key);
                Ok(WriteOutcome::Written(stored))
            }
            WriteOp::Update { .. } => self.read(&answer.body).map(WriteOutcome::Written),
        }
    }

    /// One `$batch` of at most [`MAX_BATCH`] writes.
    async fn write_chunk(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<Event>>,
    ) -> Vec<Result<WriteOutcome<Event>>> {
        let mut results: Vec<Option<Result<WriteOutcome<Event>>>> = Vec::with_capacity(ops.len());
        let mut requests = Vec::new();
        let mut sent = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.prepare(collection, op).await {
                Prepared::Done(result) => results.push(Some(result)),
                Prepared::Send(request) => {
                    results.push(None);
                    requests.push(request);
                    sent.push(i);
                }
            }
        }
        if !requests.is_empty() {
            match self.client.batch(requests).await {
                Ok(answers) => {
                    for (answer, &i) in answers.iter().zip(&sent) {
                        results[i] = Some(self.outcome(&ops[i], answer));
                    }
                }
                Err(e) => {
                    for &i in &sent {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(provider("a write of the batch got no outcome"))))
            .collect()
    }
}

#[async_trait]
impl RecordStore<Event> for GraphCalendar {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities_literal()
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.calendars().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Event>> {
        let url = match (&request.page_token, &request.cursor) {
            (Some(page), _) => Url::parse(page.as_str())
                .map_err(|_| Error::invalid_input("the page token is not a Graph nextLink"))?,
            (None, Some(cursor)) => Url::parse(cursor.as_str())
                .map_err(|_| Error::invalid_input("the cursor is not a Graph deltaLink"))?,
            (None, None) => {
                let (start, end) = match request.window {
                    Some(w) => (w.start, w.end),
                    None => {
                        let now = chrono::Utc::now();
                        let span = chrono::Duration::days(DEFAULT_WINDOW_DAYS);
                        (now - span, now + span)
                    }
                };
                let format =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                // MS-CAL-13: v1.0 documents the default calendar's form; another calendar
                // has only the per-calendar one.
                let mut url = if self.is_default_calendar(collection).await? {
                    self.client.url(["me", "calendarView", "delta"])
                } else {
                    self.client.url([
                        "me",
                        "calendars",
                        collection.as_str(),
                        "calendarView",
                        "delta",
                    ])
                };
                url.query_pairs_mut()
                    .append_pair("startDateTime", &format(start))
                    .append_pair("endDateTime", &format(end));
                url
            }
        };
        let size = request
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let prefer = format!("odata.maxpagesize={size}");
        let response = self
            .client
            .send(ApiRequest::get(url), &[&prefer], "listing calendar changes")
            .await?;
        let body: Value = crmsync_http::parse_json(&response)?;
        let mut page = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next: Continuation::Done(Cursor::new("pending")?),
        };
        let all_fields = Self::capabilities_literal().fields.map_or(0, |f| f.len());
        // Occurrences and exceptions, by series master, in the order first seen.
        let mut series: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut series_order: Vec<String> = Vec::new();
        let items = match body.get("value") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => {
                return Err(provider("a calendarView delta page without a `value` list"));
            }
        };
        for item in items {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .map(ItemId::new)
                .transpose();
            let id = match id {
                Ok(Some(id)) => id,
                _ => {
                    page.unreadable.push(Unreadable {
                        id: None,
                        error: Error::invalid_record(None, "a delta item without an id"),
                    });
                    continue;
                }
            };
            if !item.is_object() {
                page.unreadable.push(Unreadable {
                    id: Some(id),
                    error: Error::invalid_record(None, "a delta item that is not an object"),
                });
                continue;
            }
            if item.get("@removed").is_some() {
                // Graph says `deleted` both for deletions and for events that only left
                // the window: the engine checks with `get`.
                page.removals.push(Removal {
                    id,
                    reason: RemovalReason::Unknown,
                });
                continue;
            }
            let mut master = series_of(item);
            if master.is_none()
                && matches!(
                    item.get("type").and_then(Value::as_str),
                    Some("occurrence" | "exception")
                )
            {
                // An occurrence that does not say its series: read it whole.
                match self.get(collection, &id).await {
                    Ok(Some(whole)) => master = whole.record.series_id,
                    Ok(None) => {}
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(_) => {}
                }
                if master.is_none() {
                    page.unreadable.push(Unreadable {
                        id: Some(id),
                        error: Error::invalid_record(
                            None,
                            "an occurrence of a series without its seriesMasterId",
                        ),
                    });
                    continue;
                }
            }
            if let Some(master) = master {
                if !series.contains_key(&master) {
                    series_order.push(master.clone());
                }
                let members = series.entry(master.clone()).or_default();
                if master != id.as_str() {
                    members.push(item.clone());
                }
                continue;
            }
            let sent = fields_present(item);
            let partial = sent.len() < all_fields;
            let period_half = (item.get("start").is_some() || item.get("end").is_some())
                && !sent.contains(&EventField::Period);
            // Delta cannot expand extended properties: a full object that may carry a
            // link key (created with our transactionId, or Graph did not say) is read
            // whole. User-created events (transactionId null) need no second request.
            let may_carry_link = !partial
                && match item.get("transactionId") {
                    Some(Value::String(tx)) => tx.starts_with(TRANSACTION_PREFIX),
                    Some(_) => false,
                    None => true,
                };
            // Our creates say their link key in their transactionId (in any process);
            // hashed ones (long keys, older versions) only when this store made them.
            let known_link =
                link_key_of_transaction(item).or_else(|| lock(&self.created).get(&id).cloned());
            let read = if period_half || (may_carry_link && known_link.is_none()) {
                match self.get(collection, &id).await {
                    Ok(Some(stored)) => Ok(Upsert {
                        item: stored,
                        sent: None,
                        modified: modified(item),
                    }),
                    Ok(None) => {
                        page.removals.push(Removal {
                            id,
                            reason: RemovalReason::Unknown,
                        });
                        continue;
                    }
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => Err(e),
                }
            } else {
                self.read(item).map(|mut stored| {
                    if stored.link_key.is_none() {
                        stored.link_key = known_link;
                    }
                    Upsert {
                        item: stored,
                        sent: partial.then_some(sent),
                        modified: modified(item),
                    }
                })
            };
            match read {
                Ok(upsert) => page.upserts.push(upsert),
                Err(error) => page.unreadable.push(Unreadable {
                    id: Some(id),
                    error,
                }),
            }
        }
        for master in series_order {
            let members = series.remove(&master).unwrap_or_default();
            let id = match ItemId::new(master) {
                Ok(id) => id,
                Err(error) => {
                    page.unreadable.push(Unreadable { id: None, error });
                    continue;
                }
            };
            match self.series_upsert(collection, &id, &members).await {
                Ok(Some(upsert)) => page.upserts.push(upsert),
                Ok(None) => page.removals.push(Removal {
                    id,
                    reason: RemovalReason::Unknown,
                }),
                Err(e) if e.is_retryable() => return Err(e),
                Err(error) => page.unreadable.push(Unreadable {
                    id: Some(id),
                    error,
                }),
            }
        }
        let link = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        page.next = match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => Continuation::NextPage(PageToken::new(next)?),
            (None, Some(delta)) => Continuation::Done(Cursor::new(delta)?),
            // A round that ends without a link: nothing is lost, the engine lists in full
            // next time and says so.
            (None, None) => Continuation::DoneWithoutCursor,
        };
        Ok(page)
    }

    async fn get(&self, _collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        match self
            .client
            .get_json(self.event_url_expanded(id), "reading an event")
            .await
        {
            Ok(value) => self.read(&value).map(Some),
            Err(e) if e.kind() == &ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        let body = self.create_body(record, link_key).await?;
        // The transactionId makes a resent create return the first event.
        let request = ApiRequest::post(self.events_url(collection))
            .json(&body)?
            .idempotent(true);
        let response = self.client.send(request, &[], "creating an event").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        let mut stored = self.read(&value)?;
        self.remember_created(&mut stored, link_key);
        Ok(stored)
    }

    async fn update(
        &self,
        _collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        let body = self.update_body(id, expected, record, fields).await?;
        let request = ApiRequest::patch(self.event_url_expanded(id))
            .header("If-Match", expected.as_str())?
            .json(&body)?;
        let response = self.client.send(request, &[], "updating an event").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        self.read(&value)
    }

    async fn delete(
        &self,
        _collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        let request =
            ApiRequest::delete(self.event_url(id)).header("If-Match", expected.as_str())?;
        self.client
            .send(request, &[], "deleting an event")
            .await
            .map(|_| ())
    }

    /// Lists the calendar filtered on the link-key property and returns the event whose
    /// property holds exactly `link_key`: the server's answer is checked, not trusted (a
    /// server may ignore the filter and list every event, and Graph compares values
    /// without case), so a lookup never links a CRM record to another event.
    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        let key = link_key.as_str().replace('\'', "''");
        let filter = format!(
            "singleValueExtendedProperties/any(ep: ep/id eq '{LINK_PROPERTY}' and ep/value eq '{key}')"
        );
        let mut url = self.events_url(collection);
        url.query_pairs_mut().append_pair("$filter", &filter);
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let value = self
                .client
                .get_json(url, "finding an event by its link key")
                .await?;
            for item in value
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // Another event (a server ignoring the filter) is skipped unread: it may
                // be one this store cannot read, and it is not the one looked for.
                if link_value(item) == Some(link_key.as_str()) {
                    return self.read(item).map(Some);
                }
            }
            next = value
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(|l| {
                    Url::parse(l).map_err(|_| provider("an @odata.nextLink that is not a URL"))
                })
                .transpose()?;
        }
        Ok(None)
    }

    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<Event>>,
    ) -> Vec<Result<WriteOutcome<Event>>> {
        let mut results = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<WriteOp<Event>> = ops.by_ref().take(MAX_BATCH).collect();
            results.extend(self.write_chunk(collection, chunk).await);
        }
        results
    }
}

#[async_trait]
impl CalendarStore for GraphCalendar {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        let mut out = Vec::new();
        let mut next = Some(self.client.url(["me", "calendars"]));
        while let Some(url) = next.take() {
            let value = self.client.get_json(url, "listing calendars").await?;
            for c in value
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(name)) = (
                    c.get("id").and_then(Value::as_str),
                    c.get("name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                out.push(CollectionInfo {
                    id: CollectionId::new(id)?,
                    name: name.to_owned(),
                    writable: c.get("canEdit").and_then(Value::as_bool).unwrap_or(true),
                    primary: c
                        .get("isDefaultCalendar")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                });
            }
            // MS-CAL-1: follow @odata.nextLink.
            next = value
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .and_then(|l| Url::parse(l).ok());
        }
        Ok(out)
    }
}
