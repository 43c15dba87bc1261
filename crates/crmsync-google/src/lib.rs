//! The Google provider of crmsync: Google Calendar v3 events as a
//! [`CalendarStore`](crmsync_core::CalendarStore), Google contacts (People API) as a
//! [`ContactStore`](crmsync_core::ContactStore), and Google OAuth.
//!
//! # Vocabulary
//!
//! - [`GoogleConfig`]: the OAuth client registration (id and secret), every endpoint
//!   (overridable, so a fake or a proxy can stand in), the calendar name and the scopes.
//! - [`GoogleAuth`]: sign-in and tokens. A web CRM calls
//!   [`GoogleAuth::authorization_request`] with its own redirect URL, then
//!   [`GoogleAuth::complete`] on the redirect; an installed app calls
//!   [`GoogleAuth::sign_in_loopback`] (or pastes the redirect,
//!   [`GoogleAuth::complete_from_pasted_redirect`]). Tokens go to the host's
//!   [`TokenStore`](crmsync_core::TokenStore).
//! - [`GoogleClient`]: the raw REST client of one account.
//! - [`GoogleCalendar`]: the account's calendars and events, for the sync engine.
//! - [`GoogleContacts`]: the account's contacts and contact groups.
//! - [`diagnose`]: the "Test" button — tokens, scopes, both APIs and the calendar name,
//!   each finding with its remedy.
//! - [`GoogleCalendar::free_busy`]: busy periods of several calendars, with one result
//!   per calendar (Google reports unknown calendars inside the answer).
//!
//! The skeleton is the one every provider crate shares: `config`, `auth`, `client` (raw
//! REST and the Calendar batch format), `mapping` (wire ⇄ model), `calendar`, `contacts`,
//! `error` (Google's error envelopes classified in one function).
//!
//! A sync with nothing to do costs one request per collection: the incremental listing
//! (`events.list` with a sync token, `connections.list` with a sync token). The calendar
//! list is read once per store and kept; the event palette is built in; a valid access
//! token is not refreshed.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use crmsync_core::{AccountId, CalendarStoreExt};
//! use crmsync_google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig};
//! use crmsync_http::{ClientSecret, HttpClient};
//! use crmsync_memory::MemoryTokenStore;
//!
//! # async fn demo() -> crmsync_core::Result<()> {
//! let config = GoogleConfig::new("id.apps.googleusercontent.com", ClientSecret::new("secret"))
//!     .with_calendar_name("Work");
//! let http = HttpClient::builder().build()?;
//! let auth = GoogleAuth::new(&config, http.clone(), Arc::new(MemoryTokenStore::new()));
//! let account = AccountId::new("ann@example.com")?;
//! auth.sign_in_loopback(&account, std::time::Duration::from_secs(300), |url| {
//!     println!("open {url}");
//! })
//! .await?;
//! let calendar = GoogleCalendar::new(GoogleClient::new(config, http, auth, account));
//! let work = calendar.configured_calendar().await?;
//! println!("syncing {} ({})", work.name, work.id);
//! # Ok(())
//! # }
//! ```

mod auth;
mod calendar;
mod client;
mod config;
mod contacts;
mod diagnostics;
mod error;
mod freebusy;
pub mod mapping;

pub use auth::GoogleAuth;
pub use calendar::{GoogleCalendar, MAX_BATCH, MAX_PAGE_SIZE};
pub use client::GoogleClient;
pub use config::{GoogleConfig, SCOPE_CALENDAR, SCOPE_CONTACTS};
pub use contacts::{
    ADDRESS_BOOK, ContactSelection, GoogleContacts, MAX_CONTACT_BATCH, MAX_CONTACT_DELETE_BATCH,
    MAX_CONTACT_PAGE, MY_CONTACTS, STARRED, SYNC_TOKEN_MAX_AGE,
};
pub use diagnostics::{checks, diagnose};
pub use freebusy::{BusyPeriod, FreeBusy, MAX_FREE_BUSY_CALENDARS, MAX_FREE_BUSY_DAYS};
