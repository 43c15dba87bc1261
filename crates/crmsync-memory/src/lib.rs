//! In-memory stores and sync state for crmsync.
//!
//! - [`MemoryStore`] is a real implementation of the store traits ([`RecordStore`],
//!   [`CalendarStore`], [`ContactStore`]) held in memory: versions that change on every
//!   write, a change feed whose cursors can be made to expire, short and empty pages, link
//!   keys, configurable capabilities, and an optional snapshot file. It stands in for a
//!   provider, and for the CRM, in tests and examples.
//! - [`FaultInjecting`] wraps any store and injects transport errors, rate limits, server
//!   errors, expired cursors, stale versions and lost responses, on a schedule or from a seed.
//! - [`MemoryState`] is a [`SyncState`] held in memory.
//! - [`MemoryTokenStore`] is a [`TokenStore`](crmsync_core::TokenStore) held in memory.
//!
//! [`RecordStore`]: crmsync_core::RecordStore
//! [`CalendarStore`]: crmsync_core::CalendarStore
//! [`ContactStore`]: crmsync_core::ContactStore
//! [`SyncState`]: crmsync_core::SyncState

mod fault;
mod state;
mod store;
mod token;

pub use fault::*;
pub use state::*;
pub use store::*;
pub use token::*;
