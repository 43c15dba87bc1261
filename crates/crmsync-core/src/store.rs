//! The store traits: what a side of a sync is.
//!
//! [`RecordStore`] is the sync contract for any [`Record`] type: list collections, list
//! changes since a cursor (or a full listing in a window), get, create carrying a link key,
//! update and delete with a version precondition, find by link key, and write a batch.
//! [`CalendarStore`] and [`ContactStore`] are that contract for [`Event`] and [`Contact`]
//! plus what is specific to them. Providers implement them; so does the CRM (the in-memory
//! store stands in for a CRM in tests). Conveniences live in [`RecordStoreExt`],
//! [`CalendarStoreExt`] and [`ContactStoreExt`], which you do not implement.

use std::collections::BTreeSet;
use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::ids::{AccountId, CollectionId, Cursor, ItemId, LinkKey, PageToken, Version};
use crate::model::{Contact, Event, Rgb};
use crate::record::{Field, Record};
use crate::state::SyncState;

/// What a store can do and hold, as data. Each provider returns a literal with comments
/// citing the vendor's documentation; the engine and the conformance suite read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// The store's name, for reports ("google", "microsoft", "memory", ...).
    pub name: String,
    /// Whether the store has a change feed ([`ChangesRequest::cursor`] works); without one
    /// every listing is a full listing.
    pub incremental: bool,
    /// The most operations [`RecordStore::write_batch`] sends in one request (1: no batching).
    pub max_batch: usize,
    /// The largest page the store returns, if it has a limit.
    pub max_page_size: Option<usize>,
    /// The fields the store can hold, by snake_case name; `None`: every field.
    pub fields: Option<BTreeSet<String>>,
    /// The most e-mail addresses a contact can hold (Outlook: 3).
    pub max_emails: Option<usize>,
    /// The most phone numbers a contact can hold.
    pub max_phones: Option<usize>,
    /// The most postal addresses a contact can hold (Outlook: home, business, other).
    pub max_addresses: Option<usize>,
    /// The most reminders an event can hold (Google: 5, Outlook: 1).
    pub max_reminders: Option<usize>,
    /// The longest reminder, in minutes before the start (Google: 40320, four weeks).
    pub max_reminder_minutes: Option<u32>,
    /// The colours the store can show; colours are snapped to the nearest. `None`: any RGB.
    pub palette: Option<Vec<Rgb>>,
    /// Whether a record can carry a link key (and be found by it).
    pub link_keys: bool,
    /// Whether the store applies a retry policy to its own calls (every HTTP provider does,
    /// through `crmsync-http`'s one policy, which honours `Retry-After`). The engine then
    /// never retries the store's calls itself, so no call is retried by two layers; a store
    /// that does not (a CRM over its own tables, the memory stores) is retried by the
    /// engine (`SyncOptions::max_retries`, waiting through the syncer's sleeper).
    pub retries_itself: bool,
}

impl Capabilities {
    /// A store that can hold everything, with no batching: a starting point for literals.
    pub fn unlimited(name: impl Into<String>) -> Self {
        Capabilities {
            name: name.into(),
            incremental: true,
            max_batch: 1,
            max_page_size: None,
            fields: None,
            max_emails: None,
            max_phones: None,
            max_addresses: None,
            max_reminders: None,
            max_reminder_minutes: None,
            palette: None,
            link_keys: true,
            retries_itself: false,
        }
    }

    /// Whether the store limits what it holds (fields, counts, palette): when it does not,
    /// a record fits as it is.
    pub fn restricts(&self) -> bool {
        self.fields.is_some()
            || self.max_emails.is_some()
            || self.max_phones.is_some()
            || self.max_addresses.is_some()
            || self.max_reminders.is_some()
            || self.max_reminder_minutes.is_some()
            || self.palette.is_some()
    }

    /// Whether the store can hold this field.
    pub fn supports<F: Field>(&self, field: F) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|fields| fields.contains(field.name()))
    }
}

/// A span of time: records overlapping it are inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The first instant inside the window.
    pub start: DateTime<Utc>,
    /// The first instant after the window.
    pub end: DateTime<Utc>,
}

impl Window {
    /// A window from `start` (inclusive) to `end` (exclusive).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `end` is not after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self> {
        if end <= start {
            return Err(Error::invalid_input(format!(
                "a window must end after it starts ({start} .. {end})"
            )));
        }
        Ok(Window { start, end })
    }

    /// Whether a record is inside: it overlaps the window, or it is not bound to time.
    pub fn contains<R: Record>(&self, record: &R) -> bool {
        match record.time_span() {
            None => true,
            Some((start, end)) => {
                start < self.end && (end > self.start || (start == end && start >= self.start))
            }
        }
    }
}

/// What [`RecordStore::changes`] is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangesRequest {
    /// The cursor of the last completed listing; `None` asks for a full listing.
    pub cursor: Option<Cursor>,
    /// The page to continue from, as returned by the previous page.
    pub page_token: Option<PageToken>,
    /// For a full listing: only records inside this window. Change feeds may report
    /// records outside it; the engine filters them.
    pub window: Option<Window>,
    /// The page size wanted; stores may return fewer (short and even empty pages).
    pub page_size: Option<usize>,
}

/// A record as a store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Record")]
pub struct Stored<R> {
    /// The item's id in this store.
    pub id: ItemId,
    /// Its current version.
    pub version: Version,
    /// The link key it carries, if any.
    pub link_key: Option<LinkKey>,
    /// The record.
    pub record: R,
}

/// A record reported by a change feed or listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Upsert<R: Record> {
    /// The record as stored.
    pub item: Stored<R>,
    /// Which fields the store actually sent, when it sent only some (Graph delta sends
    /// partial objects). `None`: all of them. The engine merges a partial upsert with the
    /// last known copy before planning.
    pub sent: Option<BTreeSet<R::Field>>,
    /// When the store says the record was last modified, if it says (used by the
    /// "newest wins" conflict strategy).
    pub modified: Option<DateTime<Utc>>,
}

impl<R: Record> Upsert<R> {
    /// A whole record, with no modification time.
    pub fn full(item: Stored<R>) -> Self {
        Upsert {
            item,
            sent: None,
            modified: None,
        }
    }
}

/// Why an item left a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// It was deleted.
    Deleted,
    /// It still exists but is no longer inside the window (Graph reports such items as
    /// `@removed`). Never a deletion.
    LeftWindow,
    /// The store does not say.
    Unknown,
}

/// An item reported gone by a change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The item's id.
    pub id: ItemId,
    /// Why, when known.
    pub reason: RemovalReason,
}

/// A record a store could not read (malformed JSON, an impossible date, an unknown zone):
/// reported per record, never fatal to the listing.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The item's id, when it could be read.
    pub id: Option<ItemId>,
    /// What is wrong.
    pub error: Error,
}

/// A record a store listed but leaves out of the synced set, by the configuration's choice
/// (a contact outside the contact group the account syncs): counted in the plan and the
/// report as skipped, never synced, never read as a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The item's id.
    pub id: ItemId,
    /// Why, for people ("not in contact group \"CRM\"").
    pub reason: String,
}

/// What comes after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// More pages follow: ask again with this token.
    NextPage(PageToken),
    /// The listing is complete: this cursor resumes from here next time.
    Done(Cursor),
    /// The listing is complete, but the store gave no cursor to resume from (a change feed
    /// whose last page has neither a next page nor a sync token). Nothing is lost: the
    /// engine lists everything again on the next run and reconciles it against the links,
    /// and says so in the report.
    DoneWithoutCursor,
}

/// One page of a listing or change feed.
#[derive(Debug, Clone)]
pub struct ChangePage<R: Record> {
    /// Records created or changed (all records, in a full listing).
    pub upserts: Vec<Upsert<R>>,
    /// Items gone.
    pub removals: Vec<Removal>,
    /// Records that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Records listed but left out of the synced set by the configuration.
    pub left_out: Vec<LeftOut>,
    /// What follows this page.
    pub next: Continuation,
}

/// A collection of a store: a calendar, an address book, a contact group or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionInfo {
    /// Its id.
    pub id: CollectionId,
    /// Its name as the user sees it.
    pub name: String,
    /// Whether the user may write to it.
    pub writable: bool,
    /// Whether it is the account's default (the primary calendar, the default folder).
    pub primary: bool,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp<R: Record> {
    /// Create a record carrying this link key.
    Create {
        /// The record.
        record: R,
        /// The link key stored on it.
        link_key: LinkKey,
    },
    /// Write these fields of the record, if the item is still at `expected`.
    Update {
        /// The item.
        id: ItemId,
        /// The version the write is based on.
        expected: Version,
        /// The record holding the new values.
        record: R,
        /// The fields to write; the others are left as they are on the store.
        fields: BTreeSet<R::Field>,
    },
    /// Delete the item, if it is still at `expected`.
    Delete {
        /// The item.
        id: ItemId,
        /// The version the deletion is based on.
        expected: Version,
    },
}

/// The result of one write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome<R: Record> {
    /// The item as stored after a create or update.
    Written(Stored<R>),
    /// The item was deleted.
    Deleted,
}

/// The sync contract of a store of records of type `R`.
///
/// # Contract
/// - Every write changes the item's [`Version`]; an update or delete whose `expected`
///   version is not current fails with [`ErrorKind::PreconditionFailed`] and changes nothing.
/// - [`changes`](RecordStore::changes) without a cursor lists every record inside the
///   window, page by page. Pages may be short or empty and still be followed by more; the
///   last page gives a cursor. With a cursor, it lists what changed since, including the
///   store's own writes; an expired cursor fails with [`ErrorKind::CursorExpired`].
/// - [`create`](RecordStore::create) stores the link key on the item;
///   [`find_by_link_key`](RecordStore::find_by_link_key) finds it again, so a crash
///   between a create and the state commit is recovered without a duplicate.
/// - An item that does not exist is [`ErrorKind::NotFound`] for update and delete, and
///   `Ok(None)` for [`get`](RecordStore::get).
///
/// # Errors
/// Every method reports failures as [`Error`] with a kind from [`ErrorKind`]; transport
/// and rate-limit errors are retryable ([`Error::is_retryable`]).
///
/// # Note for implementors
/// Implement only these methods. [`write_batch`](RecordStore::write_batch) has a default
/// that writes one by one; override it where the provider has a batch endpoint.
/// Conveniences belong in [`RecordStoreExt`].
#[async_trait]
pub trait RecordStore<R: Record>: Debug + Send + Sync {
    /// What the store can do and hold.
    fn capabilities(&self) -> Capabilities;

    /// The collections of the store.
    async fn collections(&self) -> Result<Vec<CollectionInfo>>;

    /// One page of changes since `request.cursor`, or of a full listing without one.
    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<R>>;

    /// The item with this id, if it exists.
    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<R>>>;

    /// Creates a record carrying `link_key`.
    async fn create(
        &self,
        collection: &CollectionId,
        record: &R,
        link_key: &LinkKey,
    ) -> Result<Stored<R>>;

    /// Writes `fields` of `record` onto the item, if it is still at `expected`; the other
    /// fields are left as the store has them.
    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>>;

    /// Deletes the item, if it is still at `expected`.
    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()>;

    /// The item carrying this link key, if there is one.
    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<R>>>;

    /// Writes a batch, with one result per operation in the same order. The default writes
    /// one by one; providers override it with their batch endpoints. A failed operation
    /// never stops the others.
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<R>>,
    ) -> Vec<Result<WriteOutcome<R>>> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                WriteOp::Create { record, link_key } => self
                    .create(collection, &record, &link_key)
                    .await
                    .map(WriteOutcome::Written),
                WriteOp::Update {
                    id,
                    expected,
                    record,
                    fields,
                } => self
                    .update(collection, &id, &expected, &record, &fields)
                    .await
                    .map(WriteOutcome::Written),
                WriteOp::Delete { id, expected } => self
                    .delete(collection, &id, &expected)
                    .await
                    .map(|()| WriteOutcome::Deleted),
            });
        }
        results
    }
}

/// Conveniences on every [`RecordStore`]. You do not implement this trait.
#[async_trait]
pub trait RecordStoreExt<R: Record>: RecordStore<R> {
    /// Follows every page of a listing or change feed and returns the whole of it.
    async fn changes_to_end(
        &self,
        collection: &CollectionId,
        cursor: Option<Cursor>,
        window: Option<Window>,
    ) -> Result<FullChanges<R>> {
        let mut all = FullChanges {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            cursor: None,
            pages: 0,
        };
        let mut page_token = None;
        loop {
            let page = self
                .changes(
                    collection,
                    ChangesRequest {
                        cursor: cursor.clone(),
                        page_token: page_token.take(),
                        window,
                        page_size: None,
                    },
                )
                .await?;
            all.pages += 1;
            all.upserts.extend(page.upserts);
            all.removals.extend(page.removals);
            all.unreadable.extend(page.unreadable);
            match page.next {
                Continuation::NextPage(token) => page_token = Some(token),
                Continuation::Done(cursor) => {
                    all.cursor = Some(cursor);
                    return Ok(all);
                }
                Continuation::DoneWithoutCursor => {
                    all.cursor = None;
                    return Ok(all);
                }
            }
        }
    }

    /// The collection with this name (the first, if several share it).
    async fn collection_by_name(&self, name: &str) -> Result<Option<CollectionInfo>> {
        Ok(self
            .collections()
            .await?
            .into_iter()
            .find(|c| c.name == name))
    }
}

impl<R: Record, S: RecordStore<R> + ?Sized> RecordStoreExt<R> for S {}

/// A listing or change feed followed to its end by [`RecordStoreExt::changes_to_end`].
#[derive(Debug, Clone)]
pub struct FullChanges<R: Record> {
    /// Every upsert, in order.
    pub upserts: Vec<Upsert<R>>,
    /// Every removal, in order.
    pub removals: Vec<Removal>,
    /// Every unreadable record.
    pub unreadable: Vec<Unreadable>,
    /// The cursor of the last page.
    pub cursor: Option<Cursor>,
    /// How many pages it took.
    pub pages: usize,
}

/// The sync contract for events, plus what is specific to calendars.
#[async_trait]
pub trait CalendarStore: RecordStore<Event> {
    /// The calendars of the account, with what the user may do in each.
    async fn calendars(&self) -> Result<Vec<CollectionInfo>>;
}

/// Conveniences on every [`CalendarStore`]. You do not implement this trait.
#[async_trait]
pub trait CalendarStoreExt: CalendarStore {
    /// The writable calendar with this name, or the typed error with its remedy:
    /// [`ErrorKind::CalendarNameMissing`] for an empty name, [`ErrorKind::NoCalendars`]
    /// when the account has no writable calendar, [`ErrorKind::CalendarNotFound`] otherwise.
    async fn calendar_by_name(&self, name: &str) -> Result<CollectionInfo> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::new(
                ErrorKind::CalendarNameMissing,
                "no calendar name is configured",
            ));
        }
        let writable: Vec<CollectionInfo> = self
            .calendars()
            .await?
            .into_iter()
            .filter(|c| c.writable)
            .collect();
        if writable.is_empty() {
            return Err(Error::new(
                ErrorKind::NoCalendars,
                "the account has no calendar the user may write to",
            ));
        }
        writable
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::CalendarNotFound {
                        name: name.to_owned(),
                    },
                    format!("no writable calendar is named {name:?}"),
                )
            })
    }

    /// The id of the writable calendar with this name, remembered in the state
    /// ([`SyncState::collection_alias`]) so that later runs do not list the account's
    /// calendars again: a sync with nothing to do then costs its change feed alone. When
    /// a sync answers [`ErrorKind::NotFound`] for the id (the calendar was deleted or
    /// renamed), forget it with `state.set_collection_alias(account, "event", name, None)`
    /// and call this again.
    ///
    /// # Errors
    /// As [`calendar_by_name`](CalendarStoreExt::calendar_by_name); the state's errors.
    async fn remembered_calendar(
        &self,
        state: &dyn SyncState,
        account: &AccountId,
        name: &str,
    ) -> Result<CollectionId> {
        let name = name.trim();
        if let Some(id) = state.collection_alias(account, Event::KIND, name).await? {
            return Ok(id);
        }
        let found = self.calendar_by_name(name).await?;
        state
            .set_collection_alias(account, Event::KIND, name, Some(&found.id))
            .await?;
        Ok(found.id)
    }
}

impl<S: CalendarStore + ?Sized> CalendarStoreExt for S {}

/// The sync contract for contacts, plus address books and groups.
#[async_trait]
pub trait ContactStore: RecordStore<Contact> {
    /// The address books (or contact folders) of the account.
    async fn address_books(&self) -> Result<Vec<CollectionInfo>>;

    /// The contact groups (labels, categories) of an address book.
    async fn groups(&self, address_book: &CollectionId) -> Result<Vec<CollectionInfo>>;

    /// Creates a contact group.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when a group with that name exists; [`ErrorKind::Unsupported`]
    /// when the store has no groups.
    async fn create_group(&self, address_book: &CollectionId, name: &str)
    -> Result<CollectionInfo>;
}

/// Conveniences on every [`ContactStore`]. You do not implement this trait.
#[async_trait]
pub trait ContactStoreExt: ContactStore {
    /// The group with this name, created when missing.
    async fn ensure_group(
        &self,
        address_book: &CollectionId,
        name: &str,
    ) -> Result<CollectionInfo> {
        if let Some(group) = self
            .groups(address_book)
            .await?
            .into_iter()
            .find(|g| g.name == name)
        {
            return Ok(group);
        }
        self.create_group(address_book, name).await
    }
}

impl<S: ContactStore + ?Sized> ContactStoreExt for S {}
