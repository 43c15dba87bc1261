//! [`FileCrm`]: a CRM kept in a folder of JSON files, so crmsync can be tried, scripted and
//! tested without a CRM.
//!
//! The folder holds `events.json` and `contacts.json`, each a JSON array of records in the
//! model's serde form plus an `id` (required, unique in the file) and, on records crmsync
//! created from a provider item, a `link_key`:
//!
//! ```json
//! [
//!   { "id": "act-1", "title": "Kickoff with Acme",
//!     "period": { "kind": "all_day", "first_day": "2026-06-20", "last_day": "2026-06-20" } }
//! ]
//! ```
//!
//! Versions and the change feed come from a journal kept beside them
//! (`.crmsync-journal-events.json`, `.crmsync-journal-contacts.json`): for each id, the
//! sequence number of its last change and a hash of its content. Every listing first compares
//! the files with the journal, so edits made by hand or by a script between runs show up in
//! the change feed like any other change, and a deleted entry becomes a tombstone. A cursor
//! is a position in the journal; deleting the journal expires every cursor (the next sync
//! reconciles a full listing, it never duplicates anything).
//!
//! Every write replaces the file atomically: the new content goes to a temporary file in the
//! same folder, which is then renamed over the old one, so a crash never leaves half a file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact,
    ContactStore, Continuation, Cursor, Error, ErrorKind, Event, ItemId, LinkKey, Record,
    RecordStore, Removal, RemovalReason, Result, Stored, Upsert, Version, WriteOp, WriteOutcome,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const CURSOR_PREFIX: &str = "file-crm:";

/// One entry of `events.json` / `contacts.json`: the record, flattened, with its id and
/// link key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "R: Record")]
struct Entry<R: Record> {
    id: ItemId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link_key: Option<LinkKey>,
    #[serde(flatten)]
    record: R,
}

/// What the journal remembers of one id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    /// The sequence number of its last change (its version is `v<seq>`).
    seq: u64,
    /// The hash of its content then; `None`: deleted (a tombstone).
    hash: Option<String>,
}

/// The journal: versions and the change feed of one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    /// Identifies this journal; cursors carry it, so a journal made again expires them.
    epoch: u64,
    /// The last sequence number handed out.
    clock: u64,
    /// The last id number handed out for records crmsync creates.
    next_id: u64,
    marks: BTreeMap<ItemId, Mark>,
}

impl Journal {
    fn new() -> Self {
        let epoch = chrono::Utc::now()
            .timestamp_nanos_opt()
            .map_or(1, |n| n.unsigned_abs());
        Journal {
            epoch,
            clock: 0,
            next_id: 0,
            marks: BTreeMap::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }
}

/// The loaded file and journal.
struct Loaded<R: Record> {
    items: BTreeMap<ItemId, (Option<LinkKey>, R)>,
    journal: Journal,
}

struct Inner<R: Record> {
    data_path: PathBuf,
    journal_path: PathBuf,
    collection: CollectionInfo,
    _kind: PhantomData<R>,
}

/// A CRM kept in a folder of JSON files (see the [module docs](self)): a real
/// [`RecordStore`] with versions, a change feed, link keys and atomic writes.
///
/// One collection per file: `events` ("CRM events") and `contacts` ("CRM contacts").
/// Clones share the store; concurrent calls in one process are serialised.
pub struct FileCrm<R: Record> {
    inner: Arc<Inner<R>>,
    lock: Arc<Mutex<()>>,
}

impl<R: Record> Clone for FileCrm<R> {
    fn clone(&self) -> Self {
        FileCrm {
            inner: Arc::clone(&self.inner),
            lock: Arc::clone(&self.lock),
        }
    }
}

impl<R: Record> fmt::Debug for FileCrm<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCrm")
            .field("kind", &R::KIND)
            .field("file", &self.inner.data_path)
            .finish()
    }
}

/// The file name of a record kind in a file CRM folder (`events.json`, `contacts.json`).
pub fn data_file_name(kind: &str) -> String {
    format!("{kind}s.json")
}

impl<R: Record> FileCrm<R> {
    /// The file CRM of `R` records in `folder` (`events.json` for events, `contacts.json`
    /// for contacts). The folder and the file are created on the first write; a missing
    /// file is an empty CRM.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the record kind has no valid collection id.
    pub fn open(folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref();
        let data_path = folder.join(data_file_name(R::KIND));
        let journal_path = folder.join(format!(".crmsync-journal-{}s.json", R::KIND));
        let collection = CollectionInfo {
            id: CollectionId::new(format!("{}s", R::KIND))?,
            name: format!("CRM {}s", R::KIND),
            writable: true,
            primary: true,
        };
        Ok(FileCrm {
            inner: Arc::new(Inner {
                data_path,
                journal_path,
                collection,
                _kind: PhantomData,
            }),
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// The id of the store's one collection.
    pub fn collection_id(&self) -> CollectionId {
        self.inner.collection.id.clone()
    }

    /// The data file (`events.json` or `contacts.json`).
    pub fn data_path(&self) -> &Path {
        &self.inner.data_path
    }

    /// Every record in the file, in id order, as the store holds it (reconciled with the
    /// journal first, so versions are current).
    ///
    /// # Errors
    /// The file cannot be read or is not valid.
    pub fn all(&self) -> Result<Vec<Stored<R>>> {
        let _guard = self.guard();
        let loaded = self.load_and_reconcile()?;
        Ok(loaded
            .items
            .iter()
            .filter_map(|(id, (key, record))| stored(&loaded.journal, id, key, record))
            .collect())
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own (the files are the data): a panic while
        // holding it leaves nothing half-done in memory.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_collection(&self, collection: &CollectionId) -> Result<()> {
        if *collection == self.inner.collection.id {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "the file CRM has no collection {collection} (only {})",
                    self.inner.collection.id
                ),
            ))
        }
    }

    /// Reads the file and the journal, and records in the journal every difference (an
    /// entry added, edited or removed behind our back).
    fn load_and_reconcile(&self) -> Result<Loaded<R>> {
        let path = &self.inner.data_path;
        let entries: Vec<Entry<R>> = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Vec::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid_input(format!(
                    "{} is not a valid file CRM file (a JSON array of {} records, each with an \"id\"): {e}",
                    path.display(),
                    R::KIND
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("read", path, e)),
        };
        let mut items = BTreeMap::new();
        for entry in entries {
            if items
                .insert(entry.id.clone(), (entry.link_key, entry.record))
                .is_some()
            {
                return Err(Error::invalid_input(format!(
                    "{} holds id {:?} twice; ids must be unique",
                    path.display(),
                    entry.id.as_str()
                )));
            }
        }
        let journal_path = &self.inner.journal_path;
        // A new journal is written even when it is empty: its epoch is what makes cursors
        // handed out from now on valid.
        let (mut journal, mut changed) = match std::fs::read(journal_path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(journal) => (journal, false),
                Err(e) => {
                    tracing::warn!(file = %journal_path.display(), error = %e, "unreadable journal: starting a new one (cursors expire)");
                    (Journal::new(), true)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Journal::new(), true),
            Err(e) => return Err(io_error("read", journal_path, e)),
        };
        for (id, (key, record)) in &items {
            let hash = content_hash(key, record)?;
            let same = journal
                .marks
                .get(id)
                .is_some_and(|m| m.hash.as_deref() == Some(hash.as_str()));
            if !same {
                let seq = journal.tick();
                journal.marks.insert(
                    id.clone(),
                    Mark {
                        seq,
                        hash: Some(hash),
                    },
                );
                changed = true;
            }
        }
        let gone: Vec<ItemId> = journal
            .marks
            .iter()
            .filter(|(id, m)| m.hash.is_some() && !items.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let seq = journal.tick();
            journal.marks.insert(id, Mark { seq, hash: None });
            changed = true;
        }
        if changed {
            write_atomically(journal_path, &to_json(&journal)?)?;
        }
        Ok(Loaded { items, journal })
    }

    /// Writes the file, then the journal, each atomically. A crash in between is healed by
    /// the next [`load_and_reconcile`](Self::load_and_reconcile).
    fn save(&self, loaded: &Loaded<R>) -> Result<()> {
        let entries: Vec<Entry<R>> = loaded
            .items
            .iter()
            .map(|(id, (key, record))| Entry {
                id: id.clone(),
                link_key: key.clone(),
                record: record.clone(),
            })
            .collect();
        write_atomically(&self.inner.data_path, &to_json(&entries)?)?;
        write_atomically(&self.inner.journal_path, &to_json(&loaded.journal)?)
    }

    fn apply(&self, loaded: &mut Loaded<R>, op: WriteOp<R>) -> Result<WriteOutcome<R>> {
        match op {
            WriteOp::Create { record, link_key } => {
                record.validate()?;
                let id = loop {
                    loaded.journal.next_id = loaded.journal.next_id.saturating_add(1);
                    let id = ItemId::new(format!("crm-{}", loaded.journal.next_id))?;
                    if !loaded.journal.marks.contains_key(&id) && !loaded.items.contains_key(&id) {
                        break id;
                    }
                };
                let key = Some(link_key);
                self.mark(loaded, &id, &key, &record)?;
                loaded.items.insert(id.clone(), (key, record));
                written(loaded, &id)
            }
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => {
                check_version(loaded, &id, &expected)?;
                let (key, mut current) = loaded
                    .items
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| not_found(&id))?;
                for field in fields {
                    current.set_field(field, &record.field(field))?;
                }
                current.validate()?;
                self.mark(loaded, &id, &key, &current)?;
                loaded.items.insert(id.clone(), (key, current));
                written(loaded, &id)
            }
            WriteOp::Delete { id, expected } => {
                check_version(loaded, &id, &expected)?;
                loaded.items.remove(&id);
                let seq = loaded.journal.tick();
                loaded.journal.marks.insert(id, Mark { seq, hash: None });
                Ok(WriteOutcome::Deleted)
            }
        }
    }

    fn mark(
        &self,
        loaded: &mut Loaded<R>,
        id: &ItemId,
        key: &Option<LinkKey>,
        record: &R,
    ) -> Result<()> {
        let hash = content_hash(key, record)?;
        let seq = loaded.journal.tick();
        loaded.journal.marks.insert(
            id.clone(),
            Mark {
                seq,
                hash: Some(hash),
            },
        );
        Ok(())
    }

    fn write_all(&self, ops: Vec<WriteOp<R>>) -> Vec<Result<WriteOutcome<R>>> {
        let _guard = self.guard();
        let n = ops.len();
        let mut loaded = match self.load_and_reconcile() {
            Ok(l) => l,
            Err(e) => return (0..n).map(|_| Err(e.clone())).collect(),
        };
        let results: Vec<Result<WriteOutcome<R>>> = ops
            .into_iter()
            .map(|op| self.apply(&mut loaded, op))
            .collect();
        if results.iter().any(Result::is_ok)
            && let Err(e) = self.save(&loaded)
        {
            return (0..n).map(|_| Err(e.clone())).collect();
        }
        results
    }

    fn decode_cursor(&self, cursor: &Cursor, journal: &Journal) -> Result<u64> {
        let parsed = cursor
            .as_str()
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(epoch, seq)| Some((epoch.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
        let Some((epoch, seq)) = parsed else {
            return Err(Error::invalid_input(format!(
                "{:?} is not a cursor of the file CRM",
                cursor.as_str()
            )));
        };
        if epoch != journal.epoch || seq > journal.clock {
            return Err(Error::new(
                ErrorKind::CursorExpired,
                "the file CRM's journal was replaced; the collection is listed in full again",
            ));
        }
        Ok(seq)
    }
}

fn stored<R: Record>(
    journal: &Journal,
    id: &ItemId,
    key: &Option<LinkKey>,
    record: &R,
) -> Option<Stored<R>> {
    let seq = journal.marks.get(id)?.seq;
    Some(Stored {
        id: id.clone(),
        version: Version::new(format!("v{seq}")).ok()?,
        link_key: key.clone(),
        record: record.clone(),
    })
}

fn written<R: Record>(loaded: &Loaded<R>, id: &ItemId) -> Result<WriteOutcome<R>> {
    let (key, record) = loaded.items.get(id).ok_or_else(|| not_found(id))?;
    stored(&loaded.journal, id, key, record)
        .map(WriteOutcome::Written)
        .ok_or_else(|| not_found(id))
}

fn check_version<R: Record>(loaded: &Loaded<R>, id: &ItemId, expected: &Version) -> Result<()> {
    if !loaded.items.contains_key(id) {
        return Err(not_found(id));
    }
    let current = loaded.journal.marks.get(id).map(|m| format!("v{}", m.seq));
    if current.as_deref() == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "record {id} of the file CRM is at version {}, not {expected}",
                current.unwrap_or_default()
            ),
        ))
    }
}

fn content_hash<R: Record>(key: &Option<LinkKey>, record: &R) -> Result<String> {
    let json = serde_json::to_vec(&(key, record))
        .map_err(|e| Error::invalid_input(format!("a record cannot be serialised: {e}")))?;
    let digest = Sha256::digest(&json);
    Ok(digest.iter().take(12).map(|b| format!("{b:02x}")).collect())
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::invalid_input(format!("cannot serialise the file CRM: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn not_found(id: &ItemId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("the file CRM has no record {id}"),
    )
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Provider,
        format!("could not {action} the file CRM file {}", path.display()),
    )
    .with_source(e)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over `path`. The folder is created when missing.
///
/// # Errors
/// [`ErrorKind::Provider`] when the file cannot be written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error("create the folder of", path, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error("write", path, e))?;
    // Keep the permissions of the file being replaced (a new file stays private: 0600).
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
    }
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| io_error("write", path, e))?;
    temp.persist(path)
        .map_err(|e| io_error("replace", path, e.error))?;
    Ok(())
}

#[async_trait]
impl<R: Record> RecordStore<R> for FileCrm<R> {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::unlimited("file CRM");
        caps.max_batch = 1000;
        caps
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        Ok(vec![self.inner.collection.clone()])
    }

    /// One page: the whole listing or the whole change feed.
    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<R>> {
        self.check_collection(collection)?;
        let _guard = self.guard();
        let loaded = self.load_and_reconcile()?;
        let journal = &loaded.journal;
        let mut page = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next: Continuation::Done(Cursor::new(format!(
                "{CURSOR_PREFIX}{}:{}",
                journal.epoch, journal.clock
            ))?),
        };
        match &request.cursor {
            None => {
                for (id, (key, record)) in &loaded.items {
                    if request.window.is_none_or(|w| w.contains(record))
                        && let Some(item) = stored(journal, id, key, record)
                    {
                        page.upserts.push(Upsert::full(item));
                    }
                }
            }
            Some(cursor) => {
                let since = self.decode_cursor(cursor, journal)?;
                for (id, mark) in &journal.marks {
                    if mark.seq <= since {
                        continue;
                    }
                    match loaded.items.get(id) {
                        Some((key, record)) => {
                            if let Some(item) = stored(journal, id, key, record) {
                                page.upserts.push(Upsert::full(item));
                            }
                        }
                        None => page.removals.push(Removal {
                            id: id.clone(),
                            reason: RemovalReason::Deleted,
                        }),
                    }
                }
            }
        }
        Ok(page)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<R>>> {
        self.check_collection(collection)?;
        let _guard = self.guard();
        let loaded = self.load_and_reconcile()?;
        Ok(loaded
            .items
            .get(id)
            .and_then(|(key, record)| stored(&loaded.journal, id, key, record)))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &R,
        link_key: &LinkKey,
    ) -> Result<Stored<R>> {
        self.check_collection(collection)?;
        single(self.write_all(vec![WriteOp::Create {
            record: record.clone(),
            link_key: link_key.clone(),
        }]))
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>> {
        self.check_collection(collection)?;
        single(self.write_all(vec![WriteOp::Update {
            id: id.clone(),
            expected: expected.clone(),
            record: record.clone(),
            fields: fields.clone(),
        }]))
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        self.check_collection(collection)?;
        let result = self
            .write_all(vec![WriteOp::Delete {
                id: id.clone(),
                expected: expected.clone(),
            }])
            .pop()
            .unwrap_or_else(|| Err(not_found(id)));
        result.map(|_| ())
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<R>>> {
        self.check_collection(collection)?;
        let _guard = self.guard();
        let loaded = self.load_and_reconcile()?;
        Ok(loaded
            .items
            .iter()
            .find(|(_, (key, _))| key.as_ref() == Some(link_key))
            .and_then(|(id, (key, record))| stored(&loaded.journal, id, key, record)))
    }

    /// The whole batch is one read and one atomic write of the file.
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<R>>,
    ) -> Vec<Result<WriteOutcome<R>>> {
        if let Err(e) = self.check_collection(collection) {
            return ops.iter().map(|_| Err(e.clone())).collect();
        }
        self.write_all(ops)
    }
}

fn single<R: Record>(mut results: Vec<Result<WriteOutcome<R>>>) -> Result<Stored<R>> {
    match results.pop() {
        Some(Ok(WriteOutcome::Written(item))) => Ok(item),
        Some(Err(e)) => Err(e),
        Some(Ok(WriteOutcome::Deleted)) | None => Err(Error::new(
            ErrorKind::Provider,
            "the file CRM returned no record for a write",
        )),
    }
}

#[async_trait]
impl CalendarStore for FileCrm<Event> {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        self.collections().await
    }
}

#[async_trait]
impl ContactStore for FileCrm<Contact> {
    async fn address_books(&self) -> Result<Vec<CollectionInfo>> {
        self.collections().await
    }

    async fn groups(&self, _address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        Ok(Vec::new())
    }

    async fn create_group(
        &self,
        _address_book: &CollectionId,
        _name: &str,
    ) -> Result<CollectionInfo> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "the file CRM has no contact groups",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_core::RecordStoreExt;
    use crmsync_core::conformance::{StoreTarget, run_store_suite};

    /// Acts on the files as a person or a script would: edits and deletions straight in
    /// the JSON file, and a deleted journal.
    struct Hooks<R: Record>(FileCrm<R>);

    impl<R: Record> Hooks<R> {
        fn rewrite(&self, change: impl FnOnce(&mut Vec<serde_json::Value>)) -> Result<bool> {
            let path = self.0.data_path();
            let mut entries: Vec<serde_json::Value> =
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            change(&mut entries);
            write_atomically(path, &serde_json::to_vec(&entries).unwrap())?;
            Ok(true)
        }
    }

    #[async_trait]
    impl<R: Record> crmsync_core::conformance::StoreHooks<R> for Hooks<R> {
        async fn expire_cursors(&self) -> Result<bool> {
            std::fs::remove_file(&self.0.inner.journal_path).unwrap();
            Ok(true)
        }

        async fn edit_behind_back(
            &self,
            _collection: &CollectionId,
            id: &ItemId,
            edit: &(dyn for<'r> Fn(&'r mut R) + Send + Sync),
        ) -> Result<bool> {
            self.rewrite(|entries| {
                for e in entries.iter_mut().filter(|e| e["id"] == id.as_str()) {
                    let mut entry: Entry<R> = serde_json::from_value(e.clone()).unwrap();
                    edit(&mut entry.record);
                    *e = serde_json::to_value(&entry).unwrap();
                }
            })
        }

        async fn delete_behind_back(
            &self,
            _collection: &CollectionId,
            id: &ItemId,
        ) -> Result<bool> {
            self.rewrite(|entries| entries.retain(|e| e["id"] != id.as_str()))
        }
    }

    #[tokio::test]
    async fn the_file_crm_keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let events = FileCrm::<Event>::open(dir.path()).unwrap();
        let hooks = Hooks(events.clone());
        let target = StoreTarget {
            store: &events,
            collection: events.collection_id(),
            hooks: Some(&hooks),
        };
        run_store_suite::<Event>(&target).await.print();
        let contacts = FileCrm::<Contact>::open(dir.path()).unwrap();
        let hooks = Hooks(contacts.clone());
        let target = StoreTarget {
            store: &contacts,
            collection: contacts.collection_id(),
            hooks: Some(&hooks),
        };
        run_store_suite::<Contact>(&target).await.print();
    }

    #[tokio::test]
    async fn edits_behind_its_back_show_in_the_change_feed() {
        let dir = tempfile::tempdir().unwrap();
        let crm = FileCrm::<Contact>::open(dir.path()).unwrap();
        let c = crm.collection_id();
        std::fs::write(
            dir.path().join("contacts.json"),
            r#"[{"id": "a", "display_name": "Ann"}, {"id": "b", "display_name": "Bob"}]"#,
        )
        .unwrap();
        let full = crm.changes_to_end(&c, None, None).await.unwrap();
        assert_eq!(full.upserts.len(), 2);
        let again = crm
            .changes_to_end(&c, full.cursor.clone(), None)
            .await
            .unwrap();
        assert!(again.upserts.is_empty() && again.removals.is_empty());
        std::fs::write(
            dir.path().join("contacts.json"),
            r#"[{"id": "a", "display_name": "Ann Lee"}]"#,
        )
        .unwrap();
        let feed = crm.changes_to_end(&c, full.cursor, None).await.unwrap();
        assert_eq!(feed.upserts.len(), 1);
        assert_eq!(feed.upserts[0].item.record.display_name, "Ann Lee");
        assert_eq!(feed.removals.len(), 1);
        assert_eq!(feed.removals[0].id.as_str(), "b");
        // A journal made again expires the old cursors.
        std::fs::remove_file(dir.path().join(".crmsync-journal-contacts.json")).unwrap();
        let err = crm.changes_to_end(&c, feed.cursor, None).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::CursorExpired));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("contacts.json"),
            r#"[{"id": "a", "display_name": "Ann"}, {"id": "a", "display_name": "Bob"}]"#,
        )
        .unwrap();
        let crm = FileCrm::<Contact>::open(dir.path()).unwrap();
        assert!(crm.all().unwrap_err().to_string().contains("twice"));
    }
}
