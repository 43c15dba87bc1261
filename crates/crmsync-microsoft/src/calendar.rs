//! [`GraphCalendar`]: Outlook calendars and events as a [`CalendarStore`].
//!
//! - `changes`: `/me/calendars/{id}/calendarView/delta` over the window, with
//!   `Prefer: odata.maxpagesize`; `@odata.nextLink` is the page token and
//!   `@odata.deltaLink` the cursor; 410 `syncStateNotFound` is
//!   [`ErrorKind::CursorExpired`]. Graph reports an event that was deleted and one that
//!   only left the window alike (`@removed` with reason `deleted`), so removals carry
//!   [`RemovalReason::Unknown`] and the engine checks with [`RecordStore::get`]. Delta
//!   updates may be partial: [`Upsert::sent`] names the fields present.
//! - `create`: `POST …/events` with a `transactionId` derived from the link key (a
//!   resent create returns the first event, MS-CAL-6) and the link key as a
//!   single-value extended property; `find_by_link_key` filters on it.
//! - `update`: `PATCH` of the requested fields only, with `If-Match` (MS-CAL-20);
//!   `delete` with `If-Match`.
//! - Colour (master categories) and recurrence are not mapped yet: they are left out of
//!   the capabilities' fields, so the engine never expects them written.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crmsync_core::model::{Event, EventField};
use crmsync_core::record::Field;
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo,
    Continuation, Cursor, Error, ErrorKind, ItemId, LinkKey, PageToken, RecordStore, Removal,
    RemovalReason, Result, Stored, Unreadable, Upsert, Version,
};
use crmsync_http::ApiRequest;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::MicrosoftClient;
use crate::mapping::{event_from_graph, event_to_graph, fields_present};

/// The single-value extended property holding the link key (a String property in a
/// crmsync namespace GUID).
pub const LINK_PROPERTY: &str = "String {5b0f4a8e-3c1d-4e7a-9b2f-6d8c0e1a2b3c} Name crmsync_link";

/// The largest page asked for (`Prefer: odata.maxpagesize`).
pub const MAX_PAGE_SIZE: usize = 100;

/// The window listed when the engine gives none: calendarView delta requires one.
const DEFAULT_WINDOW_DAYS: i64 = 365;

/// The account's Outlook calendars and events, for the sync engine. Cheap to clone.
#[derive(Clone)]
pub struct GraphCalendar {
    client: MicrosoftClient,
    /// The configured calendar, once found: looked up once per store.
    configured: Arc<Mutex<Option<CollectionInfo>>>,
    /// Link keys of the events this store created: their echo in the next delta needs
    /// no second request to read the link key.
    created: Arc<Mutex<HashMap<ItemId, LinkKey>>>,
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
const TRANSACTION_PREFIX: &str = "crmsync-";

fn modified(item: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    item.get("lastModifiedDateTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn expand_link() -> String {
    format!("singleValueExtendedProperties($filter=id eq '{LINK_PROPERTY}')")
}

/// The `transactionId` of a create: derived from the link key, so a retried create is
/// recognised by Graph and returns the first event.
fn transaction_id(link_key: &LinkKey) -> String {
    let digest = Sha256::digest(link_key.as_str().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{TRANSACTION_PREFIX}{hex}")
}

impl GraphCalendar {
    /// The calendars and events of `client`'s mailbox.
    pub fn new(client: MicrosoftClient) -> Self {
        GraphCalendar {
            client,
            configured: Arc::new(Mutex::new(None)),
            created: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The calendar to sync: the one named by
    /// [`MicrosoftConfig::calendar_name`](crate::MicrosoftConfig::calendar_name), or the
    /// mailbox's default calendar when none is named. Found once, then kept.
    ///
    /// # Errors
    /// [`ErrorKind::CalendarNotFound`] or [`ErrorKind::NoCalendars`], with their remedies;
    /// the listing's errors.
    pub async fn configured_calendar(&self) -> Result<CollectionInfo> {
        if let Some(found) = self.configured.lock().ok().and_then(|c| c.clone()) {
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
        if let Ok(mut cached) = self.configured.lock() {
            *cached = Some(found.clone());
        }
        Ok(found)
    }

    /// The client.
    pub fn client(&self) -> &MicrosoftClient {
        &self.client
    }

    fn events_url(&self, collection: &CollectionId) -> Url {
        self.client
            .url(["me", "calendars", collection.as_str(), "events"])
    }

    fn event_url(&self, id: &ItemId) -> Url {
        self.client.url(["me", "events", id.as_str()])
    }

    /// The stored form of a full Graph event.
    fn stored(value: &Value) -> Result<Stored<Event>> {
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| provider("an event without an id"))?;
        let version = value
            .get("@odata.etag")
            .and_then(Value::as_str)
            .ok_or_else(|| provider("an event without an @odata.etag"))?;
        let link_key = value
            .get("singleValueExtendedProperties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| {
                p.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.eq_ignore_ascii_case(LINK_PROPERTY))
            })
            .and_then(|p| p.get("value").and_then(Value::as_str))
            .map(LinkKey::new)
            .transpose()?;
        Ok(Stored {
            id: ItemId::new(id)?,
            version: Version::new(version)?,
            link_key,
            record: event_from_graph(value)?,
        })
    }

    fn capabilities_literal() -> Capabilities {
        let mut caps = Capabilities::unlimited("microsoft");
        caps.incremental = true;
        // Writes go one by one for now ($batch is not used yet).
        caps.max_batch = 1;
        // `Prefer: odata.maxpagesize` is honoured up to Graph's own page limits.
        caps.max_page_size = Some(MAX_PAGE_SIZE);
        caps.fields = Some(
            [
                EventField::Title,
                EventField::Location,
                EventField::Period,
                EventField::Private,
                EventField::Reminder,
                EventField::Description,
                EventField::Status,
            ]
            .iter()
            .map(|f| f.name().to_owned())
            .collect(),
        );
        // One reminder per event: `isReminderOn` and `reminderMinutesBeforeStart`
        // (Graph v1.0 `event` resource).
        caps.max_reminders = Some(1);
        caps.link_keys = true;
        caps
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
                let mut url = self.client.url([
                    "me",
                    "calendars",
                    collection.as_str(),
                    "calendarView",
                    "delta",
                ]);
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
            next: Continuation::Done(Cursor::new("pending")?),
        };
        for item in body
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
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
            if item.get("@removed").is_some() {
                // Graph says `deleted` both for deletions and for events that only left
                // the window: the engine checks with `get`.
                page.removals.push(Removal {
                    id,
                    reason: RemovalReason::Unknown,
                });
                continue;
            }
            let sent = fields_present(item);
            let partial = sent.len() < Self::capabilities_literal().fields.map_or(0, |f| f.len());
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
            let known_link = self
                .created
                .lock()
                .ok()
                .and_then(|created| created.get(&id).cloned());
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
                Self::stored(item).map(|mut stored| {
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
        let link = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        page.next = match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => Continuation::NextPage(PageToken::new(next)?),
            (None, Some(delta)) => Continuation::Done(Cursor::new(delta)?),
            (None, None) => {
                return Err(provider(
                    "a calendarView delta page with neither @odata.nextLink nor @odata.deltaLink",
                ));
            }
        };
        Ok(page)
    }

    async fn get(&self, _collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        let mut url = self.event_url(id);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        match self.client.get_json(url, "reading an event").await {
            Ok(value) => Self::stored(&value).map(Some),
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
        let fields: BTreeSet<EventField> = <EventField as Field>::ALL.iter().copied().collect();
        let mut body = event_to_graph(record, &fields);
        body.insert("transactionId".into(), json!(transaction_id(link_key)));
        body.insert(
            "singleValueExtendedProperties".into(),
            json!([{"id": LINK_PROPERTY, "value": link_key.as_str()}]),
        );
        let mut url = self.events_url(collection);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        // The transactionId makes a resent create return the first event.
        let request = ApiRequest::post(url).json(&body)?.idempotent(true);
        let response = self.client.send(request, &[], "creating an event").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        let mut stored = Self::stored(&value)?;
        stored.link_key.get_or_insert_with(|| link_key.clone());
        if let Ok(mut created) = self.created.lock() {
            created.insert(stored.id.clone(), link_key.clone());
        }
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
        let body = event_to_graph(record, fields);
        let mut url = self.event_url(id);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        let request = ApiRequest::patch(url)
            .header("If-Match", expected.as_str())?
            .json(&body)?;
        let response = self.client.send(request, &[], "updating an event").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        Self::stored(&value)
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
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$expand", &expand_link());
        let value = self
            .client
            .get_json(url, "finding an event by its link key")
            .await?;
        match value
            .get("value")
            .and_then(Value::as_array)
            .and_then(|v| v.first())
        {
            Some(first) => Self::stored(first).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl CalendarStore for GraphCalendar {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        let value = self
            .client
            .get_json(self.client.url(["me", "calendars"]), "listing calendars")
            .await?;
        let mut out = Vec::new();
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
        Ok(out)
    }
}
