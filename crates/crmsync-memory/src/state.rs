//! [`MemoryState`]: a [`SyncState`] held in memory, optionally kept in a JSON snapshot file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use crmsync_core::{
    AccountId, AccountStatus, CollectionId, CrmId, CursorState, Deferred, Error, Intent, ItemId,
    Link, RemoteId, ResetCounts, ResetScope, Result, RunSummary, Side, StateKey, StateOp,
    SyncState,
};
use serde::{Deserialize, Serialize};

/// A [`SyncState`] held in memory.
///
/// Cloning a `MemoryState` shares it: every clone sees the same links, cursors and intents,
/// as connections to one database would. [`commit`](SyncState::commit) applies a batch
/// under one lock and undoes what it applied if anything fails, so a batch is seen whole
/// or not at all.
///
/// A state made with [`MemoryState::open`] is also kept in a JSON snapshot file, rewritten
/// (to a temporary file, then renamed over the old one) after every change, so two
/// processes in a row see the same state. The file is meant for examples and tests: every
/// write rewrites all of it. Use `crmsync-sqlite` for anything larger.
///
/// ```
/// use crmsync_core::{AccountId, AccountStatus, SyncState};
/// use crmsync_memory::MemoryState;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let state = MemoryState::new();
/// let account = AccountId::new("ann@example.com")?;
/// state.set_account_status(&account, AccountStatus::Ok).await?;
/// assert_eq!(state.clone().account_status(&account).await?, AccountStatus::Ok);
/// # Ok::<(), crmsync_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    data: Data,
    /// Where every change is saved, for a state made with [`MemoryState::open`].
    snapshot: Option<PathBuf>,
    /// Testing hook: the next commit fails after applying this many operations.
    fail_next_commit_after: Option<usize>,
}

#[derive(Debug, Default)]
struct Data {
    keys: BTreeMap<StateKey, KeyData>,
    accounts: BTreeMap<AccountId, AccountData>,
}

#[derive(Debug, Default, Clone)]
struct KeyData {
    links: BTreeMap<CrmId, Link>,
    /// Index of `links` by remote id. INVARIANT: holds exactly one entry per link.
    by_remote: HashMap<RemoteId, CrmId>,
    cursors: BTreeMap<Side, CursorState>,
    intents: BTreeMap<(Side, ItemId), Intent>,
    deferred: BTreeMap<(Side, ItemId), Deferred>,
}

impl KeyData {
    fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.cursors.is_empty()
            && self.intents.is_empty()
            && self.deferred.is_empty()
    }

    /// Sets the link slot of `crm` to `link` (or empties it), keeping the index in step,
    /// and returns what the slot held.
    fn set_slot(&mut self, crm: &CrmId, link: Option<Link>) -> Option<Link> {
        let old = self.links.remove(crm);
        if let Some(old) = &old
            && self.by_remote.get(&old.remote_id) == Some(crm)
        {
            self.by_remote.remove(&old.remote_id);
        }
        if let Some(link) = link {
            self.by_remote.insert(link.remote_id.clone(), crm.clone());
            self.links.insert(crm.clone(), link);
        }
        old
    }
}

#[derive(Debug, Default, Clone)]
struct AccountData {
    status: AccountStatus,
    last_run: Option<RunSummary>,
    /// Collection ids by (record kind, configured name).
    aliases: BTreeMap<(String, String), CollectionId>,
}

/// What undoes one applied operation.
enum Undo {
    Link(CrmId, Option<Link>),
    Cursor(Side, Option<CursorState>),
    Intent((Side, ItemId), Option<Intent>),
    Deferred((Side, ItemId), Option<Deferred>),
}

impl KeyData {
    fn apply(&mut self, op: StateOp, undo: &mut Vec<Undo>) {
        match op {
            StateOp::PutLink(link) => {
                // A remote id belongs to at most one link: free it first.
                if let Some(holder) = self.by_remote.get(&link.remote_id).cloned()
                    && holder != link.crm_id
                {
                    let old = self.set_slot(&holder, None);
                    undo.push(Undo::Link(holder, old));
                }
                let crm = link.crm_id.clone();
                let old = self.set_slot(&crm, Some(link));
                undo.push(Undo::Link(crm, old));
            }
            StateOp::RemoveLink(crm) => {
                let old = self.set_slot(&crm, None);
                undo.push(Undo::Link(crm, old));
            }
            StateOp::PutIntent(intent) => {
                let id = (intent.target, intent.source_id.clone());
                let old = self.intents.insert(id.clone(), intent);
                undo.push(Undo::Intent(id, old));
            }
            StateOp::ClearIntent { target, source_id } => {
                let id = (target, source_id);
                let old = self.intents.remove(&id);
                undo.push(Undo::Intent(id, old));
            }
            StateOp::SetCursor { side, cursor } => {
                let old = match cursor {
                    Some(cursor) => self.cursors.insert(side, cursor),
                    None => self.cursors.remove(&side),
                };
                undo.push(Undo::Cursor(side, old));
            }
            StateOp::PutDeferred(deferred) => {
                let id = (deferred.side, deferred.id.clone());
                let old = self.deferred.insert(id.clone(), deferred);
                undo.push(Undo::Deferred(id, old));
            }
            StateOp::ClearDeferred { side, id } => {
                let id = (side, id);
                let old = self.deferred.remove(&id);
                undo.push(Undo::Deferred(id, old));
            }
        }
    }

    /// Undoes applied operations, newest first.
    fn roll_back(&mut self, undo: Vec<Undo>) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Link(crm, old) => {
                    self.set_slot(&crm, old);
                }
                Undo::Cursor(side, old) => {
                    match old {
                        Some(cursor) => self.cursors.insert(side, cursor),
                        None => self.cursors.remove(&side),
                    };
                }
                Undo::Intent(id, old) => {
                    match old {
                        Some(intent) => self.intents.insert(id, intent),
                        None => self.intents.remove(&id),
                    };
                }
                Undo::Deferred(id, old) => {
                    match old {
                        Some(deferred) => self.deferred.insert(id, deferred),
                        None => self.deferred.remove(&id),
                    };
                }
            }
        }
    }
}

impl MemoryState {
    /// An empty state, kept in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A state kept in the JSON snapshot file at `path`: loaded from it when it exists
    /// (empty otherwise), and saved to it after every change.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when the file exists but cannot
    /// be read or is not a valid snapshot.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let data = match fs::read(path) {
            Ok(bytes) => Snapshot::decode(&bytes).map_err(|e| {
                Error::state(format!(
                    "could not load the state snapshot {}: {}",
                    path.display(),
                    e.message()
                ))
                .with_source(e)
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => {
                return Err(Error::state(format!(
                    "could not read the state snapshot {}",
                    path.display()
                ))
                .with_source(e));
            }
        };
        Ok(MemoryState {
            shared: Arc::new(Mutex::new(Shared {
                data,
                snapshot: Some(path.to_owned()),
                fail_next_commit_after: None,
            })),
        })
    }

    /// Writes the whole state to a JSON snapshot file at `path`, atomically: to a
    /// temporary file next to it, then renamed over it. [`MemoryState::open`] reads it back.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when the file cannot be written.
    pub fn save_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let shared = self.lock()?;
        write_snapshot(&shared.data, path.as_ref())
    }

    /// **Testing hook**: the next [`commit`](SyncState::commit) applies its first `ops`
    /// operations, then fails with [`ErrorKind::State`](crmsync_core::ErrorKind::State),
    /// as a state whose storage fails mid-batch would. The conformance suite uses it to
    /// check that such a batch leaves nothing behind. Later commits are not affected.
    pub fn fail_next_commit_after(&self, ops: usize) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.fail_next_commit_after = Some(ops);
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Shared>> {
        self.shared
            .lock()
            .map_err(|_| Error::state("the in-memory state's lock is poisoned (a writer panicked)"))
    }
}

impl Shared {
    /// Saves the snapshot, if the state has one.
    fn persist(&self) -> Result<()> {
        match &self.snapshot {
            Some(path) => write_snapshot(&self.data, path),
            None => Ok(()),
        }
    }
}

fn write_snapshot(data: &Data, path: &Path) -> Result<()> {
    let bytes = Snapshot::encode(data)?;
    let fail = |what: &str, e: std::io::Error| {
        Error::state(format!(
            "could not {what} the state snapshot {}",
            path.display()
        ))
        .with_source(e)
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| fail("create the folder of", e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(&bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

/// The snapshot file's format.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// The format version, 1.
    version: u32,
    keys: Vec<KeySnapshot>,
    accounts: Vec<AccountSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct KeySnapshot {
    key: StateKey,
    links: Vec<Link>,
    cursors: Vec<(Side, CursorState)>,
    intents: Vec<Intent>,
    deferred: Vec<Deferred>,
}

#[derive(Serialize, Deserialize)]
struct AccountSnapshot {
    account: AccountId,
    status: AccountStatus,
    last_run: Option<RunSummary>,
    /// (kind, name, collection id); absent in snapshots written before aliases existed.
    #[serde(default)]
    aliases: Vec<(String, String, CollectionId)>,
}

impl Snapshot {
    const VERSION: u32 = 1;

    fn encode(data: &Data) -> Result<Vec<u8>> {
        let snapshot = Snapshot {
            version: Self::VERSION,
            keys: data
                .keys
                .iter()
                .filter(|(_, d)| !d.is_empty())
                .map(|(key, d)| KeySnapshot {
                    key: key.clone(),
                    links: d.links.values().cloned().collect(),
                    cursors: d.cursors.iter().map(|(s, c)| (*s, c.clone())).collect(),
                    intents: d.intents.values().cloned().collect(),
                    deferred: d.deferred.values().cloned().collect(),
                })
                .collect(),
            accounts: data
                .accounts
                .iter()
                .map(|(account, a)| AccountSnapshot {
                    account: account.clone(),
                    status: a.status.clone(),
                    last_run: a.last_run.clone(),
                    aliases: a
                        .aliases
                        .iter()
                        .map(|((kind, name), id)| (kind.clone(), name.clone(), id.clone()))
                        .collect(),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&snapshot)
            .map_err(|e| Error::state("could not encode the state snapshot").with_source(e))
    }

    fn decode(bytes: &[u8]) -> Result<Data> {
        let snapshot: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| Error::state("not a valid state snapshot").with_source(e))?;
        if snapshot.version != Self::VERSION {
            return Err(Error::state(format!(
                "snapshot format {} is not supported (this version reads format {})",
                snapshot.version,
                Self::VERSION
            )));
        }
        let mut data = Data::default();
        for k in snapshot.keys {
            let mut d = KeyData::default();
            for link in k.links {
                if d.links.contains_key(&link.crm_id) || d.by_remote.contains_key(&link.remote_id) {
                    return Err(Error::state(format!(
                        "the snapshot links {} or {} twice under {}",
                        link.crm_id, link.remote_id, k.key
                    )));
                }
                let crm = link.crm_id.clone();
                d.set_slot(&crm, Some(link));
            }
            d.cursors = k.cursors.into_iter().collect();
            d.intents = k
                .intents
                .into_iter()
                .map(|i| ((i.target, i.source_id.clone()), i))
                .collect();
            d.deferred = k
                .deferred
                .into_iter()
                .map(|i| ((i.side, i.id.clone()), i))
                .collect();
            data.keys.insert(k.key, d);
        }
        for a in snapshot.accounts {
            data.accounts.insert(
                a.account,
                AccountData {
                    status: a.status,
                    last_run: a.last_run,
                    aliases: a
                        .aliases
                        .into_iter()
                        .map(|(kind, name, id)| ((kind, name), id))
                        .collect(),
                },
            );
        }
        Ok(data)
    }
}

#[async_trait]
impl SyncState for MemoryState {
    async fn links(&self, key: &StateKey) -> Result<Vec<Link>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .get(key)
            .map(|d| d.links.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn link_count(&self, key: &StateKey) -> Result<u64> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .get(key)
            .map_or(0, |d| d.links.len() as u64))
    }

    async fn links_by_crm(&self, key: &StateKey, ids: &[CrmId]) -> Result<Vec<Link>> {
        let shared = self.lock()?;
        let Some(d) = shared.data.keys.get(key) else {
            return Ok(Vec::new());
        };
        let mut seen = std::collections::HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| d.links.get(id).cloned())
            .collect())
    }

    async fn links_by_remote(&self, key: &StateKey, ids: &[RemoteId]) -> Result<Vec<Link>> {
        let shared = self.lock()?;
        let Some(d) = shared.data.keys.get(key) else {
            return Ok(Vec::new());
        };
        let mut seen = std::collections::HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| d.by_remote.get(id))
            .filter_map(|crm| d.links.get(crm).cloned())
            .collect())
    }

    async fn cursor(&self, key: &StateKey, side: Side) -> Result<Option<CursorState>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .get(key)
            .and_then(|d| d.cursors.get(&side).cloned()))
    }

    async fn intents(&self, key: &StateKey) -> Result<Vec<Intent>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .get(key)
            .map(|d| d.intents.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn deferred(&self, key: &StateKey) -> Result<Vec<Deferred>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .get(key)
            .map(|d| d.deferred.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
        let mut shared = self.lock()?;
        let fail_after = shared.fail_next_commit_after.take();
        let shared = &mut *shared;
        let d = shared.data.keys.entry(key.clone()).or_default();
        let mut undo = Vec::with_capacity(ops.len());
        let mut failure = None;
        for (applied, op) in ops.into_iter().enumerate() {
            if fail_after == Some(applied) {
                failure = Some(applied);
                break;
            }
            d.apply(op, &mut undo);
        }
        if failure.is_none() && fail_after.is_some() {
            // The hook asked to fail after at least every operation of the batch.
            failure = fail_after;
        }
        let result = match failure {
            Some(applied) => Err(Error::state(format!(
                "injected failure after {applied} operations of a commit (testing hook)"
            ))),
            None => shared.persist(),
        };
        if result.is_err()
            && let Some(d) = shared.data.keys.get_mut(key)
        {
            d.roll_back(undo);
        }
        if shared.data.keys.get(key).is_some_and(KeyData::is_empty) {
            shared.data.keys.remove(key);
        }
        result
    }

    async fn account_status(&self, account: &AccountId) -> Result<AccountStatus> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .accounts
            .get(account)
            .map(|a| a.status.clone())
            .unwrap_or_default())
    }

    async fn set_account_status(&self, account: &AccountId, status: AccountStatus) -> Result<()> {
        let mut shared = self.lock()?;
        let entry = shared.data.accounts.entry(account.clone()).or_default();
        let old = std::mem::replace(&mut entry.status, status);
        let result = shared.persist();
        if result.is_err()
            && let Some(a) = shared.data.accounts.get_mut(account)
        {
            a.status = old;
        }
        result
    }

    async fn last_run(&self, account: &AccountId) -> Result<Option<RunSummary>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .accounts
            .get(account)
            .and_then(|a| a.last_run.clone()))
    }

    async fn set_last_run(&self, account: &AccountId, summary: RunSummary) -> Result<()> {
        let mut shared = self.lock()?;
        let entry = shared.data.accounts.entry(account.clone()).or_default();
        let old = entry.last_run.replace(summary);
        let result = shared.persist();
        if result.is_err()
            && let Some(a) = shared.data.accounts.get_mut(account)
        {
            a.last_run = old;
        }
        result
    }

    async fn keys(&self, account: &AccountId) -> Result<Vec<StateKey>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .keys
            .iter()
            .filter(|(key, d)| key.account == *account && !d.is_empty())
            .map(|(key, _)| key.clone())
            .collect())
    }

    async fn collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
    ) -> Result<Option<CollectionId>> {
        let shared = self.lock()?;
        Ok(shared
            .data
            .accounts
            .get(account)
            .and_then(|a| a.aliases.get(&(kind.to_owned(), name.to_owned())))
            .cloned())
    }

    async fn set_collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
        id: Option<&CollectionId>,
    ) -> Result<()> {
        let mut shared = self.lock()?;
        let slot = (kind.to_owned(), name.to_owned());
        let entry = shared.data.accounts.entry(account.clone()).or_default();
        let old = match id {
            Some(id) => entry.aliases.insert(slot.clone(), id.clone()),
            None => entry.aliases.remove(&slot),
        };
        let result = shared.persist();
        if result.is_err()
            && let Some(a) = shared.data.accounts.get_mut(account)
        {
            match old {
                Some(old) => a.aliases.insert(slot, old),
                None => a.aliases.remove(&slot),
            };
        }
        result
    }

    async fn reset(&self, scope: &ResetScope) -> Result<ResetCounts> {
        let mut shared = self.lock()?;
        let doomed: Vec<StateKey> = shared
            .data
            .keys
            .keys()
            .filter(|key| scope.contains(key))
            .cloned()
            .collect();
        let mut counts = ResetCounts::default();
        let mut removed = Vec::with_capacity(doomed.len());
        for key in doomed {
            if let Some(d) = shared.data.keys.remove(&key) {
                counts.links += d.links.len() as u64;
                counts.intents += d.intents.len() as u64;
                counts.deferred += d.deferred.len() as u64;
                counts.cursors += d.cursors.len() as u64;
                removed.push((key, d));
            }
        }
        if let Err(e) = shared.persist() {
            shared.data.keys.extend(removed);
            return Err(e);
        }
        Ok(counts)
    }
}
