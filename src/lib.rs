//! crmsync keeps a CRM's calendar and contacts in sync with Google, Microsoft 365 and
//! CalDAV/CardDAV: no duplicates, no lost edits, every field synced in the direction the
//! CRM chose.
//!
//! This facade re-exports the parts: [`core`] (model, policy, store and state traits,
//! engine), [`memory`] (in-memory stores and state, fault injection) and, with the
//! `sqlite` feature (on by default), [`sqlite`] (the embedded state). The providers are
//! features: `google` (`crmsync::google`: Calendar v3, People API, Google OAuth) and
//! `microsoft` (`crmsync::microsoft`: Graph calendars and contacts, Microsoft identity
//! platform); either brings `crmsync::http` (the HTTP client, retries, rate limits and
//! OAuth plumbing they share). `cargo run --example google --features google` and
//! `cargo run --example microsoft --features microsoft` sync a real account.
//!
//! Start with [`engine::Syncer`]; `cargo run --example quickstart` runs a whole sync in
//! memory, no account needed.

pub use crmsync_core as core;
pub use crmsync_core::*;
#[cfg(feature = "google")]
pub use crmsync_google as google;
#[cfg(any(feature = "google", feature = "microsoft"))]
pub use crmsync_http as http;
pub use crmsync_memory as memory;
#[cfg(feature = "microsoft")]
pub use crmsync_microsoft as microsoft;
#[cfg(feature = "sqlite")]
pub use crmsync_sqlite as sqlite;
