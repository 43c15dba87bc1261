//! `SyncState`: where the engine remembers what it agreed with both sides.
//!
//! Per account, record kind and collection ([`StateKey`]) the state keeps the links
//! (CRM id ⇄ remote id), each side's last version, the baseline (the record as both sides
//! agreed at the last sync, in canonical form with per-field hashes), a cursor per side,
//! pending intents (written before a remote create is sent and cleared after) and deferred
//! items (a failed record or a deletion awaiting confirmation, retried next run). Per
//! account it keeps a status and the last run's summary.
//!
//! The state is record-agnostic: baselines are [`CanonicalRecord`]s, so one backend keeps
//! events, contacts and host-defined records alike. Changes are committed per batch with
//! [`SyncState::commit`], atomically: all of a batch or none of it.
//!
//! Implementations: `crmsync_memory::MemoryState`, `crmsync_sqlite::SqliteState`; a host
//! may implement the trait over its own tables and check it with the conformance suite.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{AccountId, CollectionId, CrmId, Cursor, ItemId, LinkKey, RemoteId, Version};
use crate::record::CanonicalRecord;
use crate::store::Window;

/// The two sides of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The CRM's store.
    Crm,
    /// The provider's store (Google, Microsoft, CalDAV, ...).
    Provider,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Crm => Side::Provider,
            Side::Provider => Side::Crm,
        }
    }

    /// `"crm"` or `"provider"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Crm => "crm",
            Side::Provider => "provider",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a part of the state belongs to: an account, a record kind and the provider
/// collection synced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateKey {
    /// The account.
    pub account: AccountId,
    /// The record kind ([`Record::KIND`](crate::Record::KIND)).
    pub kind: String,
    /// The provider collection (calendar, address book).
    pub collection: CollectionId,
}

impl StateKey {
    /// The key of an account's collection of records of `kind`.
    pub fn new(account: AccountId, kind: impl Into<String>, collection: CollectionId) -> Self {
        StateKey {
            account,
            kind: kind.into(),
            collection,
        }
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.account, self.kind, self.collection)
    }
}

/// A linked pair and what was agreed about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The CRM record.
    pub crm_id: CrmId,
    /// The provider record.
    pub remote_id: RemoteId,
    /// The CRM record's version at the last sync.
    pub crm_version: Option<Version>,
    /// The provider record's version at the last sync.
    pub remote_version: Option<Version>,
    /// The record as both sides agreed at the last sync.
    pub baseline: CanonicalRecord,
    /// When the pair was last synced.
    pub synced_at: DateTime<Utc>,
    /// Writes sent to a side whose answer was not seen (a crash, a lost response): the
    /// value each field was written with. A side that shows exactly that value has our
    /// write, not an edit of its own. Cleared when the pair is next recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingWrite>,
}

/// A field written to a side without a seen answer (see [`Link::pending`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// The side written.
    pub side: Side,
    /// The field's snake_case name.
    pub field: String,
    /// The hash of the comparable value written.
    pub hash: crate::hash::ContentHash,
}

/// A write the engine is about to send and has not yet seen answered. Written before a
/// create is sent and cleared after its result is recorded; a leftover intent means a crash
/// happened in between, and the engine looks the copy up by link key instead of creating it
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The side the create is sent to.
    pub target: Side,
    /// The id of the source record on the other side.
    pub source_id: ItemId,
    /// The link key the created copy carries.
    pub link_key: LinkKey,
    /// When the intent was written.
    pub created_at: DateTime<Utc>,
}

/// Why an item was deferred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeferredReason {
    /// Syncing it failed; it is retried next run.
    Failed {
        /// The error, as text.
        error: String,
        /// Whether the error was retryable.
        retryable: bool,
    },
    /// Its deletion awaits confirmation through the deletion gate.
    DeletionPending,
    /// A new record left out because the collection's cap was reached: read again only
    /// when the cap leaves room, so a run at the cap costs no read per left-out record.
    CapReached,
}

/// An item the cursor moved past without syncing it: kept here so nothing is forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    /// The side the item lives on.
    pub side: Side,
    /// The item's id on that side.
    pub id: ItemId,
    /// Why it was deferred.
    pub reason: DeferredReason,
    /// How many runs tried it.
    pub attempts: u32,
    /// When it was first deferred.
    pub since: DateTime<Utc>,
}

/// A change-feed position of one side, with what it was taken under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    /// The cursor.
    pub cursor: Cursor,
    /// When the listing that gave it started (some cursors die after a while: People sync
    /// tokens after 7 days).
    pub taken_at: DateTime<Utc>,
    /// The window of the full listing the feed started from (provider sync tokens freeze the
    /// window they started with; when it has moved, a reconciling full listing is due).
    pub window: Option<Window>,
}

/// The health of an account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum AccountStatus {
    /// Syncing works (or has not been tried).
    #[default]
    Ok,
    /// The user must sign in again.
    NeedsReauthorization {
        /// Why, as the provider said.
        cause: String,
    },
    /// Runs fail.
    Failing {
        /// The last error, as text.
        last_error: String,
    },
}

/// The summary of an account's last run, as kept in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Records created, updated and deleted on both sides.
    pub written: u64,
    /// Conflicts settled.
    pub conflicts: u64,
    /// Records that failed.
    pub errors: u64,
    /// A one-line summary for status listings.
    pub text: String,
}

/// One change to the state, applied with others in one atomic [`SyncState::commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    /// Inserts or replaces the link of `link.crm_id` (and of `link.remote_id`: a CRM id and
    /// a remote id each belong to at most one link; a link holding either is replaced).
    PutLink(Link),
    /// Removes the link of this CRM record.
    RemoveLink(CrmId),
    /// Records an intent (replacing one with the same target and source).
    PutIntent(Intent),
    /// Clears the intent with this target and source.
    ClearIntent {
        /// The side the create was sent to.
        target: Side,
        /// The id of the source record.
        source_id: ItemId,
    },
    /// Sets (or, with `None`, forgets) a side's cursor.
    SetCursor {
        /// The side.
        side: Side,
        /// The new cursor.
        cursor: Option<CursorState>,
    },
    /// Records a deferred item (replacing one with the same side and id).
    PutDeferred(Deferred),
    /// Clears the deferred item with this side and id.
    ClearDeferred {
        /// The side.
        side: Side,
        /// The item.
        id: ItemId,
    },
}

/// What a reset forgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetScope {
    /// The account.
    pub account: AccountId,
    /// Only this record kind; `None`: every kind.
    pub kind: Option<String>,
    /// Only this collection; `None`: every collection.
    pub collection: Option<CollectionId>,
}

impl ResetScope {
    /// Whether a key falls inside the scope.
    pub fn contains(&self, key: &StateKey) -> bool {
        key.account == self.account
            && self.kind.as_ref().is_none_or(|k| *k == key.kind)
            && self
                .collection
                .as_ref()
                .is_none_or(|c| *c == key.collection)
    }
}

/// What a reset removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetCounts {
    /// Links (with their baselines) removed.
    pub links: u64,
    /// Intents removed.
    pub intents: u64,
    /// Deferred items removed.
    pub deferred: u64,
    /// Cursors removed.
    pub cursors: u64,
}

/// Where the engine remembers links, baselines, versions, cursors, intents, deferred items,
/// account status and run summaries.
///
/// # Contract
/// - [`commit`](SyncState::commit) applies all of its operations or none of them, in
///   order; readers never see half a batch.
/// - A CRM id and a remote id each belong to at most one link per key.
/// - [`reset`](SyncState::reset) removes links, baselines, intents, deferred items and
///   cursors of its scope and nothing else.
/// - Keys are independent: nothing written under one key shows under another.
///
/// # Errors
/// Failures to read or write are [`ErrorKind::State`](crate::ErrorKind::State).
#[async_trait]
pub trait SyncState: fmt::Debug + Send + Sync {
    /// Every link of a key.
    async fn links(&self, key: &StateKey) -> Result<Vec<Link>>;

    /// How many links a key has (without reading them: a sync with nothing to do needs
    /// the count for its guards, not the baselines).
    async fn link_count(&self, key: &StateKey) -> Result<u64>;

    /// The links of these CRM ids (those that have one), in any order.
    async fn links_by_crm(&self, key: &StateKey, ids: &[CrmId]) -> Result<Vec<Link>>;

    /// The links of these remote ids (those that have one), in any order.
    async fn links_by_remote(&self, key: &StateKey, ids: &[RemoteId]) -> Result<Vec<Link>>;

    /// A side's cursor.
    async fn cursor(&self, key: &StateKey, side: Side) -> Result<Option<CursorState>>;

    /// The pending intents of a key.
    async fn intents(&self, key: &StateKey) -> Result<Vec<Intent>>;

    /// The deferred items of a key.
    async fn deferred(&self, key: &StateKey) -> Result<Vec<Deferred>>;

    /// Applies a batch of changes atomically.
    async fn commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()>;

    /// The account's status.
    async fn account_status(&self, account: &AccountId) -> Result<AccountStatus>;

    /// Sets the account's status.
    async fn set_account_status(&self, account: &AccountId, status: AccountStatus) -> Result<()>;

    /// The summary of the account's last run.
    async fn last_run(&self, account: &AccountId) -> Result<Option<RunSummary>>;

    /// Records the summary of the account's last run.
    async fn set_last_run(&self, account: &AccountId, summary: RunSummary) -> Result<()>;

    /// The keys that hold anything for this account.
    async fn keys(&self, account: &AccountId) -> Result<Vec<StateKey>>;

    /// The collection id remembered for a configured collection name (a calendar or an
    /// address book, `kind` being the record kind), so a sync with nothing to do need not
    /// list the account's collections to find it again.
    async fn collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
    ) -> Result<Option<CollectionId>>;

    /// Remembers (or, with `None`, forgets) the collection id of a configured name. A reset
    /// leaves aliases alone: they name the provider's collections, not our links.
    async fn set_collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
        id: Option<&CollectionId>,
    ) -> Result<()>;

    /// Forgets links, baselines, intents, deferred items and cursors of a scope.
    async fn reset(&self, scope: &ResetScope) -> Result<ResetCounts>;
}
