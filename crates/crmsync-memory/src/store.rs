//! [`MemoryStore`]: a real store held in memory (see its docs for the behaviour), and the
//! capability presets that make it behave like Google, Outlook or a CalDAV server.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact,
    ContactStore, Continuation, Cursor, Error, ErrorKind, Event, ItemId, LinkKey, PageToken,
    Record, RecordStore, Removal, RemovalReason, Result, Rgb, Stored, Upsert, Version, WriteOp,
    WriteOutcome,
};
use serde::{Deserialize, Serialize};

/// The snapshot format written by [`MemoryStore::save_snapshot`].
const SNAPSHOT_FORMAT: &str = "crmsync-memory-store/1";
/// The page size when none is configured.
const DEFAULT_PAGE_SIZE: usize = 100;
const CURSOR_PREFIX: &str = "mem-cursor:";
const PAGE_PREFIX: &str = "mem-page:";

/// A store that can hold everything: every field, any colour, batches of up to 1000
/// operations, a change feed and link keys. The default of [`MemoryStore`].
pub fn memory_unlimited() -> Capabilities {
    let mut caps = Capabilities::unlimited("memory");
    caps.max_batch = 1000;
    caps
}

/// Google Calendar's limits: HTTP batches of at most 50 requests, at most 5 reminder
/// overrides of at most 40320 minutes (four weeks), and the 11 event colours of the
/// classic palette (`colors.get`, event colour ids 1 to 11).
pub fn like_google_calendar() -> Capabilities {
    const GOOGLE_CLASSIC: [Rgb; 11] = [
        Rgb::new(0xa4, 0xbd, 0xfc),
        Rgb::new(0x7a, 0xe7, 0xbf),
        Rgb::new(0xdb, 0xad, 0xff),
        Rgb::new(0xff, 0x88, 0x7c),
        Rgb::new(0xfb, 0xd7, 0x5b),
        Rgb::new(0xff, 0xb8, 0x78),
        Rgb::new(0x46, 0xd6, 0xdb),
        Rgb::new(0xe1, 0xe1, 0xe1),
        Rgb::new(0x54, 0x84, 0xed),
        Rgb::new(0x51, 0xb7, 0x49),
        Rgb::new(0xdc, 0x21, 0x27),
    ];
    let mut caps = Capabilities::unlimited("memory (like Google Calendar)");
    caps.max_batch = 50;
    caps.max_page_size = Some(2500);
    caps.max_reminders = Some(5);
    caps.max_reminder_minutes = Some(40320);
    caps.palette = Some(GOOGLE_CLASSIC.to_vec());
    caps
}

/// Google People's limits: `batchCreateContacts` / `batchUpdateContacts` take at most 200
/// contacts; `connections.list` pages hold at most 1000.
pub fn like_google_contacts() -> Capabilities {
    let mut caps = Capabilities::unlimited("memory (like Google Contacts)");
    caps.max_batch = 200;
    caps.max_page_size = Some(1000);
    caps
}

/// Outlook's limits (Microsoft Graph): a contact holds at most three e-mail addresses and
/// three postal addresses (home, business, other), an event one reminder, and `$batch`
/// takes at most 20 requests.
pub fn like_outlook() -> Capabilities {
    let mut caps = Capabilities::unlimited("memory (like Outlook)");
    caps.max_batch = 20;
    caps.max_emails = Some(3);
    caps.max_addresses = Some(3);
    caps.max_reminders = Some(1);
    caps
}

/// A CalDAV/CardDAV server: no batch requests (every write is its own request).
pub fn like_caldav() -> Capabilities {
    let mut caps = Capabilities::unlimited("memory (like CalDAV)");
    caps.max_batch = 1;
    caps
}

/// Requests a [`MemoryStore`] has served, per operation. A batch counts as one request
/// (when the store's capabilities allow batches).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Pages of listings and change feeds served.
    pub changes_pages: u64,
    /// `get` calls.
    pub get: u64,
    /// `create` calls (and creates of batches the store could not batch).
    pub create: u64,
    /// `update` calls (and updates of batches the store could not batch).
    pub update: u64,
    /// `delete` calls (and deletions of batches the store could not batch).
    pub delete: u64,
    /// `find_by_link_key` calls.
    pub find_by_link_key: u64,
    /// Batch requests (`write_batch` calls sent as one request).
    pub batch_calls: u64,
    /// Operations carried by those batch requests.
    pub batch_ops: u64,
    /// Listings of collections, calendars, address books and groups, and group creations.
    pub collections: u64,
    /// Every request, a batch counting as one.
    pub requests: u64,
}

/// How pages are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Paging {
    page_size: usize,
    /// Every `n`-th page of a listing is empty (and continues).
    empty_every: Option<usize>,
    /// Odd pages hold half the page size.
    short_pages: bool,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            page_size: DEFAULT_PAGE_SIZE,
            empty_every: None,
            short_pages: false,
        }
    }
}

/// An item as the store keeps it: the record and the sequence number of its last write.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "R: Record")]
struct Item<R: Record> {
    stored: Stored<R>,
    seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "R: Record")]
struct Collection<R: Record> {
    info: CollectionInfo,
    items: BTreeMap<ItemId, Item<R>>,
    /// The compacted change log: each item (live or deleted) once, at the sequence number
    /// of its latest write. An id in the log but not in `items` was deleted.
    log: BTreeMap<u64, ItemId>,
    /// Contact groups (labels) of an address book.
    groups: Vec<CollectionInfo>,
}

/// Everything the snapshot holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "R: Record")]
struct Data<R: Record> {
    format: String,
    kind: String,
    capabilities: Capabilities,
    paging: Paging,
    /// Bumped by `expire_cursors`; cursors and page tokens carry it.
    epoch: u64,
    /// The last version / sequence number handed out.
    clock: u64,
    /// The last id number handed out.
    next_id: u64,
    collections: Vec<Collection<R>>,
}

impl<R: Record> Data<R> {
    fn new() -> Self {
        Data {
            format: SNAPSHOT_FORMAT.to_owned(),
            kind: R::KIND.to_owned(),
            capabilities: memory_unlimited(),
            paging: Paging::default(),
            epoch: 1,
            clock: 0,
            next_id: 0,
            collections: Vec::new(),
        }
    }

    fn tick(&mut self) -> Result<(u64, Version)> {
        let seq = self.clock.checked_add(1).ok_or_else(|| {
            Error::new(
                ErrorKind::LimitReached,
                "the memory store's version counter is exhausted",
            )
        })?;
        let version = Version::new(format!("v{seq}"))?;
        self.clock = seq;
        Ok((seq, version))
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id = self.next_id.saturating_add(1);
        format!("{prefix}-{}", self.next_id)
    }

    fn index(&self, id: &CollectionId) -> Result<usize> {
        self.collections
            .iter()
            .position(|c| &c.info.id == id)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("the memory store has no collection {id}"),
                )
            })
    }

    fn collection(&self, id: &CollectionId) -> Result<&Collection<R>> {
        let i = self.index(id)?;
        Ok(&self.collections[i])
    }

    /// Stores `record` as a new item (validated, then fitted to the capabilities).
    fn insert(
        &mut self,
        collection: &CollectionId,
        record: &R,
        link_key: Option<&LinkKey>,
    ) -> Result<Stored<R>> {
        let i = self.index(collection)?;
        record.validate()?;
        let record = record.fit(&self.capabilities).record;
        let link_key = link_key.filter(|_| self.capabilities.link_keys).cloned();
        let id = ItemId::new(self.fresh_id("mem"))?;
        let (seq, version) = self.tick()?;
        let stored = Stored {
            id: id.clone(),
            version,
            link_key,
            record,
        };
        let coll = &mut self.collections[i];
        coll.log.insert(seq, id.clone());
        coll.items.insert(
            id,
            Item {
                stored: stored.clone(),
                seq,
            },
        );
        Ok(stored)
    }

    /// Replaces an item's record with `change(record)` (validated, then fitted), giving it
    /// a new version. `expected`: the precondition, if any.
    fn modify(
        &mut self,
        collection: &CollectionId,
        id: &ItemId,
        expected: Option<&Version>,
        change: impl FnOnce(&mut R) -> Result<()>,
    ) -> Result<Stored<R>> {
        let i = self.index(collection)?;
        let caps = &self.capabilities;
        let item = self.collections[i]
            .items
            .get(id)
            .ok_or_else(|| not_found(collection, id))?;
        check_precondition(&item.stored, expected)?;
        let mut record = item.stored.record.clone();
        change(&mut record)?;
        record.validate()?;
        let record = record.fit(caps).record;
        let old_seq = item.seq;
        let (seq, version) = self.tick()?;
        let coll = &mut self.collections[i];
        let Some(item) = coll.items.get_mut(id) else {
            return Err(not_found(collection, id));
        };
        item.stored.record = record;
        item.stored.version = version;
        item.seq = seq;
        let stored = item.stored.clone();
        coll.log.remove(&old_seq);
        coll.log.insert(seq, id.clone());
        Ok(stored)
    }

    fn update(
        &mut self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>> {
        self.modify(collection, id, Some(expected), |stored| {
            for &field in fields {
                stored.set_field(field, &record.field(field))?;
            }
            Ok(())
        })
    }

    fn remove(
        &mut self,
        collection: &CollectionId,
        id: &ItemId,
        expected: Option<&Version>,
    ) -> Result<()> {
        let i = self.index(collection)?;
        let item = self.collections[i]
            .items
            .get(id)
            .ok_or_else(|| not_found(collection, id))?;
        check_precondition(&item.stored, expected)?;
        let old_seq = item.seq;
        let (seq, _) = self.tick()?;
        let coll = &mut self.collections[i];
        coll.items.remove(id);
        coll.log.remove(&old_seq);
        coll.log.insert(seq, id.clone());
        Ok(())
    }

    fn apply(&mut self, collection: &CollectionId, op: WriteOp<R>) -> Result<WriteOutcome<R>> {
        match op {
            WriteOp::Create { record, link_key } => self
                .insert(collection, &record, Some(&link_key))
                .map(WriteOutcome::Written),
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => self
                .update(collection, &id, &expected, &record, &fields)
                .map(WriteOutcome::Written),
            WriteOp::Delete { id, expected } => self
                .remove(collection, &id, Some(&expected))
                .map(|()| WriteOutcome::Deleted),
        }
    }

    fn changes(
        &self,
        collection: &CollectionId,
        request: &ChangesRequest,
    ) -> Result<ChangePage<R>> {
        let coll = self.collection(collection)?;
        let position = match (&request.page_token, &request.cursor) {
            (Some(token), _) => self.decode_token(token, collection)?,
            (None, Some(cursor)) => {
                if !self.capabilities.incremental {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "this memory store has no change feed (its capabilities say so)",
                    ));
                }
                let since = self.decode_cursor(cursor, collection)?;
                Position {
                    collection: collection.to_string(),
                    epoch: self.epoch,
                    mode: Mode::Feed,
                    to: self.clock,
                    after_id: None,
                    after_seq: since,
                    page: 0,
                }
            }
            (None, None) => Position {
                collection: collection.to_string(),
                epoch: self.epoch,
                mode: Mode::Full,
                to: self.clock,
                after_id: None,
                after_seq: 0,
                page: 0,
            },
        };
        let page = position.page.saturating_add(1);
        let mut size = [
            Some(self.paging.page_size),
            self.capabilities.max_page_size,
            request.page_size,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .max(1);
        if self.paging.short_pages && page % 2 == 1 {
            size = size.div_ceil(2);
        }
        let mut result = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next: Continuation::Done(self.encode_cursor(collection, position.to)?),
        };
        if self
            .paging
            .empty_every
            // `every >= 2` is also checked here: a snapshot file may say anything.
            .is_some_and(|every| every >= 2 && page.is_multiple_of(every as u64))
        {
            result.next = Continuation::NextPage(encode_token(&Position { page, ..position })?);
            return Ok(result);
        }
        match position.mode {
            Mode::Full => {
                let after = match &position.after_id {
                    Some(id) => Bound::Excluded(ItemId::new(id.as_str())?),
                    None => Bound::Unbounded,
                };
                let mut listed = coll
                    .items
                    .range((after, Bound::Unbounded))
                    .filter(|(_, item)| {
                        request
                            .window
                            .is_none_or(|w| w.contains(&item.stored.record))
                    });
                let mut last = None;
                for (id, item) in listed.by_ref().take(size) {
                    result.upserts.push(Upsert::full(item.stored.clone()));
                    last = Some(id.to_string());
                }
                if listed.next().is_some() {
                    result.next = Continuation::NextPage(encode_token(&Position {
                        after_id: last,
                        page,
                        ..position
                    })?);
                }
            }
            Mode::Feed => {
                let mut entries = coll.log.range((
                    Bound::Excluded(position.after_seq),
                    Bound::Included(position.to),
                ));
                let mut last = None;
                for (&seq, id) in entries.by_ref().take(size) {
                    match coll.items.get(id) {
                        Some(item) => result.upserts.push(Upsert::full(item.stored.clone())),
                        None => result.removals.push(Removal {
                            id: id.clone(),
                            reason: RemovalReason::Deleted,
                        }),
                    }
                    last = Some(seq);
                }
                if let (Some(after_seq), Some(_)) = (last, entries.next()) {
                    result.next = Continuation::NextPage(encode_token(&Position {
                        after_seq,
                        page,
                        ..position
                    })?);
                }
            }
        }
        Ok(result)
    }

    fn encode_cursor(&self, collection: &CollectionId, seq: u64) -> Result<Cursor> {
        let data = CursorData {
            collection: collection.to_string(),
            epoch: self.epoch,
            seq,
        };
        let json = serde_json::to_string(&data)
            .map_err(|e| Error::invalid_input(format!("cannot encode a cursor: {e}")))?;
        Cursor::new(format!("{CURSOR_PREFIX}{json}"))
    }

    fn decode_cursor(&self, cursor: &Cursor, collection: &CollectionId) -> Result<u64> {
        let data: CursorData = cursor
            .as_str()
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| {
                Error::invalid_input(format!("{cursor:?} is not a cursor of the memory store"))
            })?;
        if data.collection != collection.as_str() {
            return Err(Error::invalid_input(format!(
                "the cursor belongs to collection {:?}, not {collection}",
                data.collection
            )));
        }
        self.check_epoch(data.epoch)?;
        if data.seq > self.clock {
            return Err(Error::invalid_input(format!(
                "{cursor:?} points past the end of the change feed"
            )));
        }
        Ok(data.seq)
    }

    fn decode_token(&self, token: &PageToken, collection: &CollectionId) -> Result<Position> {
        let position: Position = token
            .as_str()
            .strip_prefix(PAGE_PREFIX)
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| {
                Error::invalid_input(format!("{token:?} is not a page token of the memory store"))
            })?;
        if position.collection != collection.as_str() {
            return Err(Error::invalid_input(format!(
                "the page token belongs to collection {:?}, not {collection}",
                position.collection
            )));
        }
        self.check_epoch(position.epoch)?;
        if position.to > self.clock || position.after_seq > position.to {
            return Err(Error::invalid_input(format!(
                "{token:?} points past the end of the change feed"
            )));
        }
        Ok(position)
    }

    fn check_epoch(&self, epoch: u64) -> Result<()> {
        if epoch == self.epoch {
            Ok(())
        } else if epoch < self.epoch {
            Err(Error::new(
                ErrorKind::CursorExpired,
                "the memory store's cursor expired; list the collection in full again",
            ))
        } else {
            Err(Error::invalid_input(
                "the cursor comes from a later epoch than the memory store's",
            ))
        }
    }
}

/// A cursor: a position in a collection's change log.
#[derive(Serialize, Deserialize)]
struct CursorData {
    #[serde(rename = "c")]
    collection: String,
    #[serde(rename = "e")]
    epoch: u64,
    #[serde(rename = "s")]
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Full,
    Feed,
}

/// A page token: where a listing or feed continues.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Position {
    #[serde(rename = "c")]
    collection: String,
    #[serde(rename = "e")]
    epoch: u64,
    #[serde(rename = "m")]
    mode: Mode,
    /// The end of the listing: the cursor handed out at its end.
    #[serde(rename = "t")]
    to: u64,
    /// Full listing: the last id listed.
    #[serde(rename = "i", default)]
    after_id: Option<String>,
    /// Feed: the last sequence number listed.
    #[serde(rename = "s", default)]
    after_seq: u64,
    /// The number of pages served so far.
    #[serde(rename = "p")]
    page: u64,
}

fn encode_token(position: &Position) -> Result<PageToken> {
    let json = serde_json::to_string(position)
        .map_err(|e| Error::invalid_input(format!("cannot encode a page token: {e}")))?;
    PageToken::new(format!("{PAGE_PREFIX}{json}"))
}

fn not_found(collection: &CollectionId, id: &ItemId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("no item {id} in collection {collection} of the memory store"),
    )
}

fn check_precondition<R: Record>(stored: &Stored<R>, expected: Option<&Version>) -> Result<()> {
    match expected {
        Some(expected) if *expected != stored.version => Err(Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "item {} is at version {}, not {expected}",
                stored.id, stored.version
            ),
        )),
        _ => Ok(()),
    }
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Provider,
        format!(
            "could not {action} the memory store snapshot {}",
            path.display()
        ),
    )
    .with_source(e)
}

struct Shared<R: Record> {
    data: Data<R>,
    stats: StoreStats,
    snapshot_path: Option<PathBuf>,
}

/// A real store held in memory: the in-memory provider of tests and examples, and the
/// stand-in for a CRM.
///
/// Clones share the store (like two clients of one account); [`fork`](MemoryStore::fork)
/// copies it. It implements [`RecordStore`] for any record type, [`CalendarStore`] for
/// events and [`ContactStore`] for contacts (address books are its collections), and,
/// with the `conformance` feature (on by default), the conformance suite's `StoreHooks`.
///
/// # Behaviour
/// - Versions (`v17`) come from a per-store counter and change on every write; ids
///   (`mem-5`) are deterministic. Updates write only the fields given (PATCH).
/// - Records are validated, then fitted to the capabilities ([`Record::fit`]) and stored
///   as fitted: a store made [`like_outlook`] really keeps three e-mail addresses.
/// - The change feed is kept compacted: each item appears once in a per-collection log, at
///   the sequence number of its latest write (or of its deletion). A cursor is a position
///   in that log, so it stays valid across snapshots; [`expire_cursors`](Self::expire_cursors)
///   moves the store to a new epoch, and every cursor and page token of the old epoch then
///   fails with [`ErrorKind::CursorExpired`]. A garbled cursor or page token, or one of
///   another collection, is [`ErrorKind::InvalidInput`].
/// - Pages hold at most the smallest of the configured page size, the capabilities'
///   `max_page_size` and the request's `page_size`; [`with_empty_pages`](Self::with_empty_pages)
///   and [`with_short_pages`](Self::with_short_pages) make pages that clients must follow.
/// - [`stats`](Self::stats) counts requests; a batch is one request.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::collections::BTreeSet;
/// use crmsync_core::{Contact, ContactField, LinkKey, RecordStore, RecordStoreExt};
/// use crmsync_memory::{MemoryStore, like_outlook};
///
/// let store = MemoryStore::<Contact>::new().with_capabilities(like_outlook());
/// let book = store.add_collection("Contacts");
/// let ann = Contact::new("Ann Lee").with_email("ann@example.com", Default::default())?;
/// let created = store.create(&book, &ann, &LinkKey::new("crm-42")?).await?;
///
/// let mut edit = ann.clone();
/// edit.notes = "met at the fair".into();
/// let fields = BTreeSet::from([ContactField::Notes]);
/// let updated = store.update(&book, &created.id, &created.version, &edit, &fields).await?;
/// assert_ne!(updated.version, created.version);
///
/// let listing = store.changes_to_end(&book, None, None).await?;
/// assert_eq!(listing.upserts.len(), 1);
/// assert_eq!(store.stats().requests, 2 + listing.pages as u64);
/// # Ok::<(), crmsync_core::Error>(())
/// # }).unwrap();
/// ```
pub struct MemoryStore<R: Record> {
    shared: Arc<Mutex<Shared<R>>>,
}

impl<R: Record> Clone for MemoryStore<R> {
    fn clone(&self) -> Self {
        MemoryStore {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R: Record> Default for MemoryStore<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Record> fmt::Debug for MemoryStore<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("MemoryStore")
            .field("kind", &R::KIND)
            .field("capabilities", &shared.data.capabilities.name)
            .field("collections", &shared.data.collections.len())
            .field(
                "items",
                &shared
                    .data
                    .collections
                    .iter()
                    .map(|c| c.items.len())
                    .sum::<usize>(),
            )
            .field("version_clock", &shared.data.clock)
            .field("epoch", &shared.data.epoch)
            .finish()
    }
}

impl<R: Record> MemoryStore<R> {
    /// An empty store with no collections, [`memory_unlimited`] capabilities and pages of
    /// 100 records.
    pub fn new() -> Self {
        Self::from_data(Data::new(), None)
    }

    fn from_data(data: Data<R>, snapshot_path: Option<PathBuf>) -> Self {
        MemoryStore {
            shared: Arc::new(Mutex::new(Shared {
                data,
                stats: StoreStats::default(),
                snapshot_path,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<R>> {
        // A panic while holding the lock cannot leave the data half-written (every write
        // is checked before it is applied), so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what the store can do and hold. Records written afterwards are fitted to them
    /// (a store that holds three e-mails stores three).
    #[must_use]
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        self.lock().data.capabilities = capabilities;
        self
    }

    /// Sets the largest page the store returns (at least 1).
    #[must_use]
    pub fn with_page_size(self, page_size: usize) -> Self {
        self.lock().data.paging.page_size = page_size.max(1);
        self
    }

    /// Makes every `every`-th page of a listing or change feed empty, yet followed by more
    /// (as Google and Graph do), so clients must follow pages to the end. `every` is at
    /// least 2; 0 turns empty pages off.
    #[must_use]
    pub fn with_empty_pages(self, every: usize) -> Self {
        self.lock().data.paging.empty_every = (every != 0).then_some(every.max(2));
        self
    }

    /// Makes every other page short (half the page size), yet followed by more.
    #[must_use]
    pub fn with_short_pages(self) -> Self {
        self.lock().data.paging.short_pages = true;
        self
    }

    /// Adds a writable collection (a calendar, an address book) and returns its id; the
    /// first one is the primary.
    pub fn add_collection(&self, name: &str) -> CollectionId {
        let mut shared = self.lock();
        let data = &mut shared.data;
        let id = data.fresh_id("col");
        #[allow(clippy::expect_used)]
        let id = CollectionId::new(id).expect("`col-<digits>` is a valid collection id");
        let primary = data.collections.is_empty();
        data.collections.push(Collection {
            info: CollectionInfo {
                id: id.clone(),
                name: name.to_owned(),
                writable: true,
                primary,
            },
            items: BTreeMap::new(),
            log: BTreeMap::new(),
            groups: Vec::new(),
        });
        id
    }

    /// A deep copy of the store, independent from now on (statistics start at zero, and
    /// the copy has no snapshot file).
    pub fn fork(&self) -> Self {
        let data = self.lock().data.clone();
        Self::from_data(data, None)
    }

    /// Makes every cursor and page token handed out so far fail with
    /// [`ErrorKind::CursorExpired`] (Google's 410, Graph's `syncStateNotFound`).
    pub fn expire_cursors(&self) {
        let mut shared = self.lock();
        shared.data.epoch = shared.data.epoch.saturating_add(1);
    }

    /// Creates a record as a user would in the store's own app: validated, fitted to the
    /// capabilities, without a link key, and not counted as a request.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown collection; the record's own validation error.
    pub fn seed(&self, collection: &CollectionId, record: R) -> Result<Stored<R>> {
        self.lock().data.insert(collection, &record, None)
    }

    /// Every item of a collection, in id order (not counted as a request).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown collection.
    pub fn get_all(&self, collection: &CollectionId) -> Result<Vec<Stored<R>>> {
        let shared = self.lock();
        Ok(shared
            .data
            .collection(collection)?
            .items
            .values()
            .map(|item| item.stored.clone())
            .collect())
    }

    /// Changes a record as a user would in the store's own app: a new version and an entry
    /// in the change feed, no precondition, not counted as a request.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown collection or item; the record's validation
    /// error if the edit makes it invalid (nothing is changed then).
    pub fn edit_item(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: impl FnOnce(&mut R),
    ) -> Result<Stored<R>> {
        self.lock().data.modify(collection, id, None, |record| {
            edit(record);
            Ok(())
        })
    }

    /// Deletes an item as a user would in the store's own app (no precondition, not
    /// counted as a request).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown collection or item.
    pub fn remove_item(&self, collection: &CollectionId, id: &ItemId) -> Result<()> {
        self.lock().data.remove(collection, id, None)
    }

    /// The requests served since the store was made or [`reset_stats`](Self::reset_stats).
    pub fn stats(&self) -> StoreStats {
        self.lock().stats.clone()
    }

    /// Sets the request counters back to zero.
    pub fn reset_stats(&self) {
        self.lock().stats = StoreStats::default();
    }

    /// Opens the store saved in a snapshot file, or an empty store if the file does not
    /// exist yet; [`save_snapshot`](Self::save_snapshot) writes it back there. Everything
    /// is kept (records, versions, link keys, counters, the change feed), so cursors handed
    /// out by the previous process still work.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the file is not a snapshot of a store of `R`
    /// records; [`ErrorKind::Provider`] when it cannot be read.
    pub fn open_snapshot(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let data = match std::fs::read(path) {
            Ok(bytes) => {
                let data: Data<R> = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid_input(format!(
                        "{} is not a memory store snapshot: {e}",
                        path.display()
                    ))
                })?;
                if data.format != SNAPSHOT_FORMAT || data.kind != R::KIND {
                    return Err(Error::invalid_input(format!(
                        "{} is a snapshot of format {:?} holding {} records; expected {SNAPSHOT_FORMAT:?} holding {} records",
                        path.display(),
                        data.format,
                        data.kind,
                        R::KIND
                    )));
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::new(),
            Err(e) => return Err(io_error("read", path, e)),
        };
        Ok(Self::from_data(data, Some(path.to_owned())))
    }

    /// The snapshot file of a store made by [`open_snapshot`](Self::open_snapshot).
    pub fn snapshot_path(&self) -> Option<PathBuf> {
        self.lock().snapshot_path.clone()
    }

    /// Writes the store to the file it was opened from, atomically.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the store was not opened from a snapshot;
    /// [`ErrorKind::Provider`] when the file cannot be written.
    pub fn save_snapshot(&self) -> Result<()> {
        let path = self.snapshot_path().ok_or_else(|| {
            Error::invalid_input(
                "this memory store has no snapshot file; open it with MemoryStore::open_snapshot or use save_snapshot_to",
            )
        })?;
        self.save_snapshot_to(path)
    }

    /// Writes the store to `path` atomically (a temporary file renamed over it), as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Provider`] when the file cannot be written.
    pub fn save_snapshot_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = {
            let shared = self.lock();
            serde_json::to_vec(&shared.data).map_err(|e| {
                Error::invalid_input(format!("the memory store cannot be serialised: {e}"))
            })?
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| {
                Error::invalid_input(format!("{} does not name a file", path.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let temp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io_error("write", path, e)
        })
    }

    fn count(&self, bump: impl FnOnce(&mut StoreStats)) {
        let mut shared = self.lock();
        shared.stats.requests += 1;
        bump(&mut shared.stats);
    }

    fn groups_of(&self, address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        self.count(|s| s.collections += 1);
        let shared = self.lock();
        Ok(shared.data.collection(address_book)?.groups.clone())
    }

    fn add_group(&self, address_book: &CollectionId, name: &str) -> Result<CollectionInfo> {
        self.count(|s| s.collections += 1);
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid_input("a group needs a name"));
        }
        let mut shared = self.lock();
        let data = &mut shared.data;
        let i = data.index(address_book)?;
        if data.collections[i].groups.iter().any(|g| g.name == name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("address book {address_book} already has a group named {name:?}"),
            ));
        }
        let id = CollectionId::new(data.fresh_id("grp"))?;
        let group = CollectionInfo {
            id,
            name: name.to_owned(),
            writable: true,
            primary: false,
        };
        data.collections[i].groups.push(group.clone());
        Ok(group)
    }
}

#[async_trait]
impl<R: Record> RecordStore<R> for MemoryStore<R> {
    fn capabilities(&self) -> Capabilities {
        self.lock().data.capabilities.clone()
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.count(|s| s.collections += 1);
        Ok(self
            .lock()
            .data
            .collections
            .iter()
            .map(|c| c.info.clone())
            .collect())
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<R>> {
        self.count(|s| s.changes_pages += 1);
        self.lock().data.changes(collection, &request)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<R>>> {
        self.count(|s| s.get += 1);
        let shared = self.lock();
        Ok(shared
            .data
            .collection(collection)?
            .items
            .get(id)
            .map(|item| item.stored.clone()))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &R,
        link_key: &LinkKey,
    ) -> Result<Stored<R>> {
        self.count(|s| s.create += 1);
        self.lock().data.insert(collection, record, Some(link_key))
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>> {
        self.count(|s| s.update += 1);
        self.lock()
            .data
            .update(collection, id, expected, record, fields)
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        self.count(|s| s.delete += 1);
        self.lock().data.remove(collection, id, Some(expected))
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<R>>> {
        self.count(|s| s.find_by_link_key += 1);
        let shared = self.lock();
        if !shared.data.capabilities.link_keys {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "this memory store holds no link keys (its capabilities say so)",
            ));
        }
        Ok(shared
            .data
            .collection(collection)?
            .items
            .values()
            .find(|item| item.stored.link_key.as_ref() == Some(link_key))
            .map(|item| item.stored.clone()))
    }

    /// Sends the batch as one request when the capabilities allow batches
    /// (`max_batch > 1`); a batch larger than `max_batch` fails as a whole, each operation
    /// with [`ErrorKind::LimitReached`]. Without batches, each operation is its own request.
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<R>>,
    ) -> Vec<Result<WriteOutcome<R>>> {
        let mut shared = self.lock();
        let max_batch = shared.data.capabilities.max_batch;
        if max_batch <= 1 {
            return ops
                .into_iter()
                .map(|op| {
                    shared.stats.requests += 1;
                    match &op {
                        WriteOp::Create { .. } => shared.stats.create += 1,
                        WriteOp::Update { .. } => shared.stats.update += 1,
                        WriteOp::Delete { .. } => shared.stats.delete += 1,
                    }
                    shared.data.apply(collection, op)
                })
                .collect();
        }
        shared.stats.requests += 1;
        shared.stats.batch_calls += 1;
        shared.stats.batch_ops += ops.len() as u64;
        if ops.len() > max_batch {
            let n = ops.len();
            return (0..n)
                .map(|_| {
                    Err(Error::new(
                        ErrorKind::LimitReached,
                        format!("a batch holds at most {max_batch} operations; this one had {n}"),
                    ))
                })
                .collect();
        }
        ops.into_iter()
            .map(|op| shared.data.apply(collection, op))
            .collect()
    }
}

#[async_trait]
impl CalendarStore for MemoryStore<Event> {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        self.collections().await
    }
}

#[async_trait]
impl ContactStore for MemoryStore<Contact> {
    async fn address_books(&self) -> Result<Vec<CollectionInfo>> {
        self.collections().await
    }

    async fn groups(&self, address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        self.groups_of(address_book)
    }

    async fn create_group(
        &self,
        address_book: &CollectionId,
        name: &str,
    ) -> Result<CollectionInfo> {
        self.add_group(address_book, name)
    }
}

#[cfg(feature = "conformance")]
#[async_trait]
impl<R: Record> crmsync_core::conformance::StoreHooks<R> for MemoryStore<R> {
    async fn expire_cursors(&self) -> Result<bool> {
        MemoryStore::expire_cursors(self);
        Ok(true)
    }

    async fn edit_behind_back(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut R) + Send + Sync),
    ) -> Result<bool> {
        self.edit_item(collection, id, edit).map(|_| true)
    }

    async fn delete_behind_back(&self, collection: &CollectionId, id: &ItemId) -> Result<bool> {
        self.remove_item(collection, id).map(|()| true)
    }
}

#[cfg(test)]
mod tests;
