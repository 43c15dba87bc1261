//! The core of crmsync: the model, the store and state traits, the errors and the sync
//! engine shared by every provider.
//!
//! # Vocabulary
//!
//! - A **record** is a set of named fields ([`Record`]): an [`Event`], a [`Contact`], or a
//!   host's own entity. Each record type has a field enum ([`EventField`], [`ContactField`]).
//! - A **store** is one side of a sync ([`RecordStore`], [`CalendarStore`],
//!   [`ContactStore`]): the CRM, or a provider (Google, Microsoft, CalDAV, the in-memory
//!   store). It holds **items** (records with an [`ItemId`] and a [`Version`]) in
//!   **collections** (calendars, address books).
//! - A **link** pairs a CRM record with its provider copy. The **baseline** is the record
//!   as both sides agreed at the last sync; a field changed on one side only is a change to
//!   carry over, a field changed on both is a conflict.
//! - A **link key** is stored on every copy (the CRM id on provider copies, the origin on
//!   CRM records created from the provider), so a lost state is re-linked, never duplicated.
//! - A **cursor** is a change-feed position (sync token, delta link); it can expire.
//! - The **sync state** ([`SyncState`]) remembers links, baselines, versions, cursors,
//!   intents and deferred items.
//!
//! # Example
//!
//! ```
//! use crmsync_core::{Contact, ContactField, Record, RecordExt, Usage};
//!
//! let crm = Contact::new("Ann Lee").with_email("ann@example.com", Usage::Work)?;
//! let mut provider = crm.clone();
//! // Providers reformat; normalisation keeps that from reading as an edit.
//! provider.display_name = "  Ann   Lee ".into();
//! assert_eq!(crm.content_hash(), provider.content_hash());
//! assert_eq!(crm.field(ContactField::DisplayName), "Ann Lee");
//! # Ok::<(), crmsync_core::Error>(())
//! ```

pub mod colour;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod diagnostics;
pub mod engine;
mod error;
pub mod hash;
mod ids;
pub mod model;
pub mod normalize;
pub mod record;
pub mod state;
pub mod store;
pub mod time;
pub mod token;

pub use error::{Error, ErrorKind, Result};
pub use hash::ContentHash;
pub use ids::{
    AccountId, CollectionId, CrmId, Cursor, ItemId, LinkKey, PageToken, RemoteId, Version,
};
pub use model::{
    Birthday, Contact, ContactField, Email, EmailAddress, Event, EventField, EventStatus, ImHandle,
    Name, Organization, Origin, Period, Phone, PhoneNumber, Photo, PostalAddress, Recurrence, Rgb,
    Usage, Zone,
};
pub use record::{
    CanonicalRecord, Direction, Field, FieldLoss, FieldValue, Fitted, Record, RecordExt,
};
pub use state::{
    AccountStatus, CursorState, Deferred, DeferredReason, Intent, Link, PendingWrite, ResetCounts,
    ResetScope, RunSummary, Side, StateKey, StateOp, SyncState,
};
pub use store::{
    CalendarStore, CalendarStoreExt, Capabilities, ChangePage, ChangesRequest, CollectionInfo,
    ContactStore, ContactStoreExt, Continuation, FullChanges, LeftOut, RecordStore, RecordStoreExt,
    Removal, RemovalReason, Stored, Unreadable, Upsert, Window, WriteOp, WriteOutcome,
};
pub use time::{Clock, ManualClock, RecordingSleeper, Sleeper, SystemClock, ThreadSleeper};
pub use token::{AccessToken, RefreshToken, TokenKey, TokenSet, TokenStore};
