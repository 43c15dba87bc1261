//! The [`SyncState`] of crmsync on SQLite: the embedded default.
//!
//! [`SqliteState`] keeps what the sync engine remembers between runs — links between CRM
//! records and their provider copies, each side's last version, the baseline (the record
//! as both sides agreed at the last sync), change-feed cursors, pending intents, deferred
//! items, account status and the last run's summary — in one SQLite file, compiled in
//! through [sqlx]: nothing to install or run beside your program.
//!
//! # Example
//!
//! ```
//! use chrono::Utc;
//! use crmsync_core::{
//!     AccountId, CollectionId, Contact, CrmId, Link, RecordExt, RemoteId, StateKey, StateOp,
//!     SyncState,
//! };
//! use crmsync_sqlite::SqliteState;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> crmsync_core::Result<()> {
//!     // `SqliteState::open("state/crmsync.db")` for a file that outlives the process.
//!     let state = SqliteState::in_memory().await?;
//!     let key = StateKey::new(
//!         AccountId::new("ann@example.com")?,
//!         "contact",
//!         CollectionId::new("people/me")?,
//!     );
//!     let link = Link {
//!         crm_id: CrmId::new("contact-42")?,
//!         remote_id: RemoteId::new("people/c7351")?,
//!         crm_version: None,
//!         remote_version: None,
//!         baseline: Contact::new("Ann Lee").canonical(),
//!         synced_at: Utc::now(),
//!         pending: Vec::new(),
//!     };
//!     // A batch of changes is committed in one transaction: all of it, or nothing.
//!     state.commit(&key, vec![StateOp::PutLink(link.clone())]).await?;
//!
//!     let found = state.links_by_remote(&key, &[link.remote_id.clone()]).await?;
//!     assert_eq!(found[0].crm_id, link.crm_id);
//!     Ok(())
//! }
//! ```
//!
//! # Opening
//!
//! - [`SqliteState::open`] opens a file (creating it and its folder), in WAL mode (readers
//!   do not block the writer), with `synchronous = NORMAL`, foreign keys on and a busy
//!   timeout of 10 seconds, on a pool of 4 connections. Several processes may open the
//!   same file; their commits take turns.
//! - [`SqliteState::in_memory`] is a private database for tests, on a single connection
//!   (SQLite's `:memory:` databases belong to one connection).
//! - [`SqliteState::from_pool`] uses a pool you configured.
//!
//! # Schema and migrations
//!
//! The schema is versioned by the SQL files in this crate's `migrations/` folder, embedded
//! at build time with [`sqlx::migrate!`] and applied, in order, by every constructor.
//! Applied migrations are recorded in the `_sqlx_migrations` table, so opening a database
//! again applies only what it lacks (nothing, usually); a database written by a newer
//! crmsync with migrations this version does not know is refused. Migrations are only
//! ever added, never edited.
//!
//! Every per-collection table is keyed by the [`StateKey`] columns
//! `(account, kind, collection)`:
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | `links` | linked pair; `UNIQUE (key, crm_id)`, `UNIQUE (key, remote_id)` | `crm_id`, `remote_id`, `crm_version`, `remote_version`, `baseline_kind`, `baseline` (the canonical record's fields as canonical JSON), `baseline_hash`, `field_hashes` (JSON, field → hex SHA-256), `synced_at` |
//! | `cursors` | key and side | `side`, `cursor`, `taken_at`, `window_start`, `window_end` |
//! | `intents` | key, target side and source id | `target`, `source_id`, `link_key`, `created_at` |
//! | `deferred` | key, side and item id | `side`, `item_id`, `reason` (`failed` / `deletion_pending`), `error`, `retryable`, `attempts`, `since` |
//! | `account_status` | account | `status` (`ok` / `needs_reauthorization` / `failing`), `detail` |
//! | `last_run` | account | `started_at`, `finished_at`, `written`, `conflicts`, `errors`, `text` |
//!
//! Times are RFC 3339 UTC text with nanoseconds (`2024-05-01T09:30:00.000000000Z`),
//! which sorts as text. Counts are SQLite integers, so at most `i64::MAX`.
//!
//! # Transactions
//!
//! [`commit`](crmsync_core::SyncState::commit) and [`reset`](crmsync_core::SyncState::reset) each run in one
//! `BEGIN IMMEDIATE` transaction: a batch is applied whole or not at all, and concurrent
//! writers wait for each other rather than fail. Lookups of many ids
//! ([`links_by_crm`](crmsync_core::SyncState::links_by_crm), [`links_by_remote`](crmsync_core::SyncState::links_by_remote))
//! bind 500 ids per query, all in one read transaction.
//!
//! # Errors
//!
//! Every failure is a [`crmsync_core::Error`] of kind
//! [`State`](crmsync_core::ErrorKind::State), with the SQLite error as its source; a value
//! SQLite cannot keep (a count above `i64::MAX`, a time outside the years 0–9999) is
//! [`InvalidInput`](crmsync_core::ErrorKind::InvalidInput).
//!
//! [`SyncState`]: crmsync_core::SyncState
//! [`StateKey`]: crmsync_core::StateKey

mod state;
mod token;

/// The sqlx version this crate is built on, to configure a pool for
/// [`SqliteState::from_pool`].
pub use sqlx;
pub use state::SqliteState;
pub use token::*;
