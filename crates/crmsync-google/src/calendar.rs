//! [`GoogleCalendar`]: Google Calendar v3 events as a [`CalendarStore`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::SecondsFormat;
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Error,
    ErrorKind, Event, EventField, ItemId, LinkKey, Record, RecordStore, Removal, RemovalReason,
    Result, Stored, Unreadable, Upsert, Version, WriteOp, WriteOutcome, Zone,
};
use http::Method;
use serde_json::Value;
use url::Url;

use crate::client::{BatchAnswer, BatchPart, Call, GoogleClient};
use crate::error::classify;
use crate::mapping::{
    EVENT_PALETTE, LINK_PROPERTY, MAX_REMINDER_MINUTES, MAX_REMINDERS, WireEvent, event_from_wire,
    event_id_for, event_to_wire, id_of, is_cancelled, needs_calendar_zone,
};

/// The most parts one Calendar batch request carries: 50 is safe under both the older
/// documented limit (50) and the current one (1000) (G-CAL-38).
pub const MAX_BATCH: usize = 50;
/// The largest `maxResults` of `events.list` (G-CAL-3).
pub const MAX_PAGE_SIZE: usize = 2500;
/// How many client-chosen ids a create tries when earlier copies of the same link key
/// were deleted (their tombstones keep the ids).
const ID_GENERATIONS: u32 = 8;

/// The fields whose write merges with the remote value (reminders, private extended
/// properties), so a patch needs the current resource.
const MERGED_FIELDS: [EventField; 3] =
    [EventField::Reminder, EventField::Colour, EventField::Status];

/// Google Calendar events of one account, as a [`CalendarStore`].
///
/// - Collections are calendars; [`calendars`](CalendarStore::calendars) lists them once
///   and keeps the list ([`GoogleCalendar::forget_calendars`] drops it), so a sync with
///   nothing to do costs one request: the incremental `events.list`.
/// - The cursor is the listing's `nextSyncToken`; a 410 is
///   [`ErrorKind::CursorExpired`]. A listing whose last page has no `nextSyncToken` (a
///   server other than Google) ends with [`Continuation::DoneWithoutCursor`](crmsync_core::Continuation::DoneWithoutCursor):
///   the engine lists in full again on the next run.
/// - Creates use a client-chosen id derived from the link key, so a retried create
///   answers 409 and finds the copy it made; the link key is also kept in
///   `extendedProperties.private.crmsync_link`.
/// - Updates PATCH only the fields asked for, with `If-Match`; deletes carry `If-Match`;
///   every write sends `sendUpdates=none`.
/// - A `dateTime` without UTC offset is a wall time in its `timeZone`, or in the
///   calendar's zone when it has none (G-CAL-25); a wall time the clocks skip or repeat is
///   read as RFC 5545 says (see `wall_time_in` in the mapping). The calendar's zone is
///   taken from the listings (`events.list` and `calendarList` carry it) and, only when an
///   event needs it before any listing did, read once from `calendarList/{id}`.
pub struct GoogleCalendar {
    client: GoogleClient,
    calendars: Mutex<Option<Vec<CollectionInfo>>>,
    /// The time zone of each calendar, as far as known.
    zones: Mutex<HashMap<CollectionId, Zone>>,
    /// The last resource seen per item: a PATCH of reminders or private properties
    /// merges with it when its etag is the expected one (no extra read).
    seen: Mutex<HashMap<(CollectionId, ItemId), Value>>,
}

impl std::fmt::Debug for GoogleCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleCalendar")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stored(w: WireEvent) -> Stored<Event> {
    Stored {
        id: w.id,
        version: w.etag,
        link_key: w.link_key,
        record: w.record,
    }
}

impl GoogleCalendar {
    /// The calendars of `client`'s account.
    pub fn new(client: GoogleClient) -> Self {
        GoogleCalendar {
            client,
            calendars: Mutex::new(None),
            zones: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The REST client.
    pub fn client(&self) -> &GoogleClient {
        &self.client
    }

    /// Drops the kept calendar list: the next [`calendars`](CalendarStore::calendars)
    /// asks Google again.
    pub fn forget_calendars(&self) {
        *lock(&self.calendars) = None;
    }

    /// The writable calendar named in the configuration
    /// ([`GoogleConfig::calendar_name`](crate::GoogleConfig::calendar_name)).
    ///
    /// # Errors
    /// [`ErrorKind::CalendarNameMissing`], [`ErrorKind::NoCalendars`] or
    /// [`ErrorKind::CalendarNotFound`], with their remedies; the listing's errors.
    pub async fn configured_calendar(&self) -> Result<CollectionInfo> {
        let name = self
            .client
            .config()
            .calendar_name
            .clone()
            .unwrap_or_default();
        crmsync_core::CalendarStoreExt::calendar_by_name(self, &name).await
    }

    fn events_url(&self, calendar: &CollectionId) -> Url {
        self.client
            .config()
            .calendar_url
            .join_segments(["calendars", calendar.as_str(), "events"])
    }

    fn event_url(&self, calendar: &CollectionId, id: &str) -> Url {
        self.client.config().calendar_url.join_segments([
            "calendars",
            calendar.as_str(),
            "events",
            id,
        ])
    }

    fn write_url(&self, calendar: &CollectionId, id: Option<&str>) -> Url {
        let mut url = match id {
            Some(id) => self.event_url(calendar, id),
            None => self.events_url(calendar),
        };
        // No invitations or cancellations to attendees (G-CAL-32).
        url.query_pairs_mut().append_pair("sendUpdates", "none");
        url
    }

    fn remember(&self, calendar: &CollectionId, id: &ItemId, resource: &Value) {
        lock(&self.seen).insert((calendar.clone(), id.clone()), resource.clone());
    }

    fn forget(&self, calendar: &CollectionId, id: &ItemId) {
        lock(&self.seen).remove(&(calendar.clone(), id.clone()));
    }

    /// The resource last seen at `expected`, if any.
    fn seen_at(&self, calendar: &CollectionId, id: &ItemId, expected: &Version) -> Option<Value> {
        lock(&self.seen)
            .get(&(calendar.clone(), id.clone()))
            .filter(|v| v.get("etag").and_then(Value::as_str) == Some(expected.as_str()))
            .cloned()
    }

    /// Keeps the zone a calendar listing or entry gives (`timeZone`, G-CAL-12, G-CAL-34).
    fn learn_zone(&self, calendar: &CollectionId, listing: &Value) {
        if let Some(zone) = listing
            .get("timeZone")
            .and_then(Value::as_str)
            .and_then(|z| z.parse::<Zone>().ok())
        {
            lock(&self.zones).insert(calendar.clone(), zone);
        }
    }

    /// The calendar's time zone: known from a listing, else read from its calendarList
    /// entry (G-CAL-34) and kept.
    async fn calendar_zone(&self, calendar: &CollectionId) -> Result<Zone> {
        if let Some(zone) = lock(&self.zones).get(calendar).copied() {
            return Ok(zone);
        }
        let url = self.client.config().calendar_url.join_segments([
            "users",
            "me",
            "calendarList",
            calendar.as_str(),
        ]);
        let entry = self
            .client
            .json(Call::get(url), "reading the time zone of the calendar")
            .await?;
        self.learn_zone(calendar, &entry);
        lock(&self.zones).get(calendar).copied().ok_or_else(|| {
            Error::new(
                ErrorKind::Provider,
                format!("calendar {calendar} has no valid timeZone"),
            )
        })
    }

    /// Reads an event resource, with its calendar's zone when the resource needs it.
    async fn read(&self, calendar: &CollectionId, resource: &Value) -> Result<WireEvent> {
        let zone = if needs_calendar_zone(resource) {
            Some(self.calendar_zone(calendar).await?)
        } else {
            None
        };
        event_from_wire(resource, zone)
    }

    /// Reads a written or fetched resource, remembering it.
    async fn accept(&self, calendar: &CollectionId, resource: &Value) -> Result<Stored<Event>> {
        let wire = self.read(calendar, resource).await?;
        self.remember(calendar, &wire.id, resource);
        Ok(stored(wire))
    }

    /// The raw resource (tombstones included); `None` when Google does not know it.
    async fn fetch(&self, calendar: &CollectionId, id: &str) -> Result<Option<Value>> {
        let response = self
            .client
            .send(Call::get(self.event_url(calendar, id)))
            .await?;
        match response.status().as_u16() {
            404 | 410 => Ok(None),
            s if (200..300).contains(&s) => {
                crate::client::parse_object(response.body(), "reading an event").map(Some)
            }
            _ => Err(classify(&response, "reading an event")),
        }
    }

    /// Why a conditional write was refused: the item is gone ([`ErrorKind::NotFound`]) or
    /// it moved on ([`ErrorKind::PreconditionFailed`]).
    async fn refused(&self, calendar: &CollectionId, id: &ItemId, error: Error) -> Error {
        match self.fetch(calendar, id.as_str()).await {
            Ok(None) => not_found(id),
            Ok(Some(v)) if is_cancelled(&v) => not_found(id),
            Ok(Some(_)) => match error.kind() {
                ErrorKind::PreconditionFailed => error,
                _ => Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("event {id} changed since it was read ({error})"),
                ),
            },
            Err(e) => e,
        }
    }

    /// The current resource at `expected`, for a merging PATCH.
    async fn current_at(
        &self,
        calendar: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<Value> {
        if let Some(v) = self.seen_at(calendar, id, expected) {
            return Ok(v);
        }
        match self.fetch(calendar, id.as_str()).await? {
            None => Err(not_found(id)),
            Some(v) if is_cancelled(&v) => Err(not_found(id)),
            Some(v) => {
                if v.get("etag").and_then(Value::as_str) != Some(expected.as_str()) {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        format!("event {id} changed since version {expected}"),
                    ));
                }
                self.remember(calendar, id, &v);
                Ok(v)
            }
        }
    }

    /// A create, trying the link key's ids in turn. A 409 on an id whose event is live
    /// and carries the link key is our own earlier create: it is returned.
    async fn create_one(
        &self,
        calendar: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        record.validate()?;
        for generation in 0..ID_GENERATIONS {
            let id = event_id_for(link_key, generation);
            let mut body = event_to_wire(record, None, None, Some(link_key));
            body["id"] = Value::String(id.clone());
            let request = Call::post(self.write_url(calendar, None))
                .json(&body)?
                // A second copy of this request cannot make a second event: same id.
                .idempotent(true);
            let response = self.client.send(request).await?;
            let status = response.status().as_u16();
            if response.status().is_success() {
                let v = crate::client::parse_object(response.body(), "creating an event")?;
                return self.accept(calendar, &v).await;
            }
            if status != 409 {
                return Err(classify(&response, "creating an event"));
            }
            match self.existing_copy(calendar, &id, link_key).await? {
                Some(found) => return Ok(found),
                None => continue,
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("every id reserved for link key {link_key} is taken by a deleted event"),
        ))
    }

    /// After a 409 on `id`: our earlier copy, `None` when the id holds a tombstone (try
    /// the next generation), or a conflict when it holds someone else's event.
    async fn existing_copy(
        &self,
        calendar: &CollectionId,
        id: &str,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        let Some(v) = self.fetch(calendar, id).await? else {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("Google says event id {id} exists but cannot read it"),
            ));
        };
        if is_cancelled(&v) {
            return Ok(None);
        }
        let found = self.accept(calendar, &v).await?;
        if found.link_key.as_ref() == Some(link_key) {
            Ok(Some(found))
        } else {
            Err(Error::new(
                ErrorKind::Conflict,
                format!("event id {id} is taken by an event without link key {link_key}"),
            ))
        }
    }

    fn patch_request(
        &self,
        calendar: &CollectionId,
        id: &ItemId,
        expected: &Version,
        body: &Value,
    ) -> Result<Call> {
        Call::patch(self.write_url(calendar, Some(id.as_str())))
            .header("if-match", expected.as_str())?
            .json(body)
    }

    /// The PATCH body of an update, reading the current resource only when a merged field
    /// is written and it was not seen at `expected`.
    async fn patch_body(
        &self,
        calendar: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Value> {
        let current = if MERGED_FIELDS.iter().any(|f| fields.contains(f)) {
            Some(self.current_at(calendar, id, expected).await?)
        } else {
            None
        };
        Ok(event_to_wire(record, Some(fields), current.as_ref(), None))
    }

    /// What one batch answer means for its operation; `None`: redo the operation alone
    /// (a 409 on create: the single create finds our earlier copy or takes the next id).
    /// A refused precondition is read to tell why, as the single write does, never sent
    /// again; a rate limit or an outage left in the part was already retried by the
    /// client's policy ([`GoogleClient::batch`](crate::GoogleClient)) and is the result.
    async fn batch_outcome(
        &self,
        calendar: &CollectionId,
        op: &WriteOp<Event>,
        answer: &BatchAnswer,
    ) -> Option<Result<WriteOutcome<Event>>> {
        let what = match op {
            WriteOp::Create { .. } => "creating an event",
            WriteOp::Update { .. } => "updating an event",
            WriteOp::Delete { .. } => "deleting an event",
        };
        if answer.is_success() {
            return Some(match op {
                WriteOp::Delete { id, .. } => {
                    self.forget(calendar, id);
                    Ok(WriteOutcome::Deleted)
                }
                _ => match crate::client::parse_object(&answer.body, what) {
                    Ok(v) => self.accept(calendar, &v).await.map(WriteOutcome::Written),
                    Err(e) => Err(e),
                },
            });
        }
        let error = answer.error(what);
        Some(Err(match (op, answer.status) {
            (WriteOp::Create { .. }, 409) => return None,
            (WriteOp::Update { id, .. }, 404 | 410) | (WriteOp::Delete { id, .. }, 404) => {
                not_found(id)
            }
            (WriteOp::Update { id, .. }, 412) | (WriteOp::Delete { id, .. }, 410 | 412) => {
                self.refused(calendar, id, error).await
            }
            (WriteOp::Delete { id, .. }, 403) if !error.is_retryable() => {
                self.refused(calendar, id, error).await
            }
            _ => error,
        }))
    }

    async fn write_one(
        &self,
        calendar: &CollectionId,
        op: WriteOp<Event>,
    ) -> Result<WriteOutcome<Event>> {
        match op {
            WriteOp::Create { record, link_key } => self
                .create(calendar, &record, &link_key)
                .await
                .map(WriteOutcome::Written),
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => self
                .update(calendar, &id, &expected, &record, &fields)
                .await
                .map(WriteOutcome::Written),
            WriteOp::Delete { id, expected } => self
                .delete(calendar, &id, &expected)
                .await
                .map(|()| WriteOutcome::Deleted),
        }
    }

    /// One batch of at most [`MAX_BATCH`] operations.
    async fn write_chunk(
        &self,
        calendar: &CollectionId,
        ops: Vec<WriteOp<Event>>,
    ) -> Vec<Result<WriteOutcome<Event>>> {
        let mut results: Vec<Option<Result<WriteOutcome<Event>>>> = Vec::with_capacity(ops.len());
        let mut parts = Vec::new();
        let mut in_batch = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let part = match op {
                WriteOp::Create { record, link_key } => match record.validate() {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let mut body = event_to_wire(record, None, None, Some(link_key));
                        body["id"] = Value::String(event_id_for(link_key, 0));
                        Ok(Some(BatchPart {
                            method: Method::POST,
                            url: self.write_url(calendar, None),
                            if_match: None,
                            body: Some(body),
                        }))
                    }
                },
                WriteOp::Update {
                    id,
                    expected,
                    record,
                    fields,
                } => match record.validate() {
                    Err(e) => Err(e),
                    // A merge needs the current resource: unless it was seen at the
                    // expected version, the update goes alone (it reads first).
                    Ok(())
                        if MERGED_FIELDS.iter().any(|f| fields.contains(f))
                            && self.seen_at(calendar, id, expected).is_none() =>
                    {
                        Ok(None)
                    }
                    Ok(()) => {
                        let current = self.seen_at(calendar, id, expected);
                        Ok(Some(BatchPart {
                            method: Method::PATCH,
                            url: self.write_url(calendar, Some(id.as_str())),
                            if_match: Some(expected.as_str().to_owned()),
                            body: Some(event_to_wire(record, Some(fields), current.as_ref(), None)),
                        }))
                    }
                },
                WriteOp::Delete { id, expected } => Ok(Some(BatchPart {
                    method: Method::DELETE,
                    url: self.write_url(calendar, Some(id.as_str())),
                    if_match: Some(expected.as_str().to_owned()),
                    body: None,
                })),
            };
            match part {
                Err(e) => results.push(Some(Err(e))),
                Ok(None) => results.push(None),
                Ok(Some(part)) => {
                    results.push(None);
                    parts.push(part);
                    in_batch.push(i);
                }
            }
        }
        if parts.len() > 1 {
            match self.client.batch(&parts).await {
                Ok(answers) => {
                    for (answer, &i) in answers.iter().zip(&in_batch) {
                        results[i] = self.batch_outcome(calendar, &ops[i], answer).await;
                    }
                }
                // Throttled or down until the policy gave up: the same writes one by one
                // would only be a second round of retries.
                Err(e) if e.is_retryable() => {
                    for &i in &in_batch {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "calendar batch failed; writing one by one");
                }
            }
        }
        let mut out = Vec::with_capacity(ops.len());
        for (op, result) in ops.into_iter().zip(results) {
            out.push(match result {
                Some(done) => done,
                None => self.write_one(calendar, op).await,
            });
        }
        out
    }
}

fn not_found(id: &ItemId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("event {id} does not exist (or was deleted)"),
    )
}

#[async_trait]
impl RecordStore<Event> for GoogleCalendar {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::unlimited("google");
        // syncToken / nextSyncToken (Calendar sync guide; G-CAL-12..17).
        caps.incremental = true;
        // Calendar HTTP batch: 50 parts (G-CAL-38: 50 in the older guide, 1000 now).
        caps.max_batch = MAX_BATCH;
        // events.list maxResults: at most 2500 (discovery, G-CAL-3).
        caps.max_page_size = Some(MAX_PAGE_SIZE);
        // Event.reminders.overrides: at most 5; minutes 0..=40320 (discovery, G-CAL-26).
        caps.max_reminders = Some(MAX_REMINDERS);
        caps.max_reminder_minutes = Some(MAX_REMINDER_MINUTES);
        // colors.get `event`: the 11 classic colours, `colorId` "1".."11" (G-CAL-33).
        caps.palette = Some(EVENT_PALETTE.to_vec());
        // extendedProperties.private + privateExtendedProperty filter (G-CAL-27).
        caps.link_keys = true;
        // Every call goes through crmsync-http's one retry policy (Retry-After honoured).
        caps.retries_itself = true;
        caps
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.calendars().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Event>> {
        let page_size = request
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE)
            .to_string();
        let mut api = Call::get(self.events_url(collection)).query([
            ("maxResults", page_size.as_str()),
            // Tombstones in full listings too; `showDeleted=false` is refused with a
            // sync token, and the token's query must repeat the first one (G-CAL-9).
            ("showDeleted", "true"),
        ]);
        let (time_min, time_max);
        match (&request.cursor, &request.window) {
            // No window parameters with a sync token (G-CAL-9): the engine filters.
            (Some(cursor), _) => api = api.query([("syncToken", cursor.as_str())]),
            (None, Some(window)) => {
                time_min = window.start.to_rfc3339_opts(SecondsFormat::Secs, true);
                time_max = window.end.to_rfc3339_opts(SecondsFormat::Secs, true);
                api = api.query([
                    ("timeMin", time_min.as_str()),
                    ("timeMax", time_max.as_str()),
                ]);
            }
            (None, None) => {}
        }
        if let Some(token) = &request.page_token {
            api = api.query([("pageToken", token.as_str())]);
        }
        let what = if request.cursor.is_some() {
            "the incremental listing of events"
        } else {
            "the full listing of events"
        };
        let page = self.client.json(api, what).await?;
        self.learn_zone(collection, &page);
        let mut out = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next: crate::client::continuation(&page, what)?,
        };
        let items = crate::client::array_field(&page, "items", what)?;
        for item in items {
            if is_cancelled(item) {
                match id_of(item) {
                    Some(id) => {
                        self.forget(collection, &id);
                        out.removals.push(Removal {
                            id,
                            reason: RemovalReason::Deleted,
                        });
                    }
                    None => out.unreadable.push(Unreadable {
                        id: None,
                        error: Error::invalid_record(Some("id"), "a cancelled event has no id"),
                    }),
                }
                continue;
            }
            match self.read(collection, item).await {
                Ok(wire) => {
                    self.remember(collection, &wire.id, item);
                    let modified = wire.updated;
                    out.upserts.push(Upsert {
                        item: stored(wire),
                        sent: None,
                        modified,
                    });
                }
                Err(error) if matches!(error.kind(), ErrorKind::InvalidRecord { .. }) => {
                    out.unreadable.push(Unreadable {
                        id: id_of(item),
                        error,
                    });
                }
                // Reading the calendar's zone failed: the listing's error, not the record's.
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        match self.fetch(collection, id.as_str()).await? {
            None => Ok(None),
            Some(v) if is_cancelled(&v) => {
                self.forget(collection, id);
                Ok(None)
            }
            Some(v) => self.accept(collection, &v).await.map(Some),
        }
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        self.create_one(collection, record, link_key).await
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        record.validate()?;
        if fields.is_empty() {
            return match self.get(collection, id).await? {
                None => Err(not_found(id)),
                Some(s) if &s.version != expected => Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("event {id} changed since version {expected}"),
                )),
                Some(s) => Ok(s),
            };
        }
        let body = self
            .patch_body(collection, id, expected, record, fields)
            .await?;
        let response = self
            .client
            .send(self.patch_request(collection, id, expected, &body)?)
            .await?;
        if response.status().is_success() {
            let v = crate::client::parse_object(response.body(), "updating an event")?;
            return self.accept(collection, &v).await;
        }
        let error = classify(&response, "updating an event");
        match response.status().as_u16() {
            404 | 410 => Err(not_found(id)),
            412 => Err(self.refused(collection, id, error).await),
            _ => Err(error),
        }
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        let request = Call::delete(self.write_url(collection, Some(id.as_str())))
            .header("if-match", expected.as_str())?;
        let response = self.client.send(request).await?;
        if response.status().is_success() {
            self.forget(collection, id);
            return Ok(());
        }
        let error = classify(&response, "deleting an event");
        match response.status().as_u16() {
            404 => Err(not_found(id)),
            // 410 `deleted`, and in practice sometimes 403, for an event already deleted
            // (G-CAL-30); 412 when it moved on, or when its tombstone has a new etag
            // (G-CAL-21): read it to tell which.
            410 | 412 => Err(self.refused(collection, id, error).await),
            403 if !error.is_retryable() => Err(self.refused(collection, id, error).await),
            _ => Err(error),
        }
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        let filter = format!("{LINK_PROPERTY}={}", link_key.as_str());
        let mut page_token: Option<String> = None;
        loop {
            let mut api = Call::get(self.events_url(collection)).query([
                ("privateExtendedProperty", filter.as_str()),
                ("maxResults", "50"),
            ]);
            if let Some(token) = &page_token {
                api = api.query([("pageToken", token.as_str())]);
            }
            let page = self
                .client
                .json(api, "finding an event by link key")
                .await?;
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                for item in items.iter().filter(|i| !is_cancelled(i)) {
                    if let Ok(found) = self.accept(collection, item).await
                        && found.link_key.as_ref() == Some(link_key)
                    {
                        return Ok(Some(found));
                    }
                }
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => page_token = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
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
impl CalendarStore for GoogleCalendar {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        if let Some(known) = lock(&self.calendars).clone() {
            return Ok(known);
        }
        let url = self
            .client
            .config()
            .calendar_url
            .join_segments(["users", "me", "calendarList"]);
        let mut all = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut api = Call::get(url.clone()).query([("maxResults", "250")]);
            if let Some(token) = &page_token {
                api = api.query([("pageToken", token.as_str())]);
            }
            let page = self.client.json(api, "listing calendars").await?;
            for entry in page
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = |k: &str| {
                    entry
                        .get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                let (Some(id), Some(name)) = (
                    text("id"),
                    text("summaryOverride").or_else(|| text("summary")),
                ) else {
                    continue;
                };
                if entry.get("deleted").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let Ok(id) = CollectionId::new(id) else {
                    continue;
                };
                self.learn_zone(&id, entry);
                all.push(CollectionInfo {
                    id,
                    name: name.to_owned(),
                    writable: matches!(text("accessRole"), Some("writer" | "owner")),
                    primary: entry.get("primary").and_then(Value::as_bool) == Some(true),
                });
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => page_token = Some(token.to_owned()),
                _ => break,
            }
        }
        *lock(&self.calendars) = Some(all.clone());
        Ok(all)
    }
}
