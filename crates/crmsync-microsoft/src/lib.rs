//! The Microsoft provider of crmsync: Outlook calendars and events (Microsoft Graph v1.0)
//! as a [`CalendarStore`](crmsync_core::CalendarStore), and the Microsoft identity platform
//! (sign-in as a public client), and Outlook contact folders and personal contacts as a
//! [`ContactStore`](crmsync_core::ContactStore).
//!
//! # Vocabulary
//!
//! - [`MicrosoftConfig`]: the app registration (client id, no secret), the [`Tenant`],
//!   every endpoint (the Graph base and the login authority, overridable so a fake or a
//!   proxy can stand in), the calendar and contact folder names, and the scopes.
//! - [`MicrosoftAuth`]: sign-in and tokens. A web CRM calls
//!   [`MicrosoftAuth::authorization_request`] with its own redirect URL, then
//!   [`MicrosoftAuth::complete`] on the redirect; an installed app calls
//!   [`MicrosoftAuth::sign_in_loopback`]; a server without a browser calls
//!   [`MicrosoftAuth::sign_in_device_code`]. Refresh tokens rotate: each new one is saved
//!   in the host's [`TokenStore`](crmsync_core::TokenStore).
//! - [`MicrosoftClient`]: the raw REST client of one mailbox, with
//!   `Prefer: IdType="ImmutableId"` and `outlook.timezone="UTC"` on every request, at most
//!   4 requests in flight per mailbox ([`mailbox_limiter`]), and Graph's OData error
//!   envelope classified into [`crmsync_core::Error`].
//! - [`GraphCalendar`]: the mailbox's calendars and events, for the sync engine
//!   (calendarView delta over the window, the deltaLink as cursor, creates with a
//!   `transactionId` and the link key as an extended property, `If-Match` writes, all
//!   writes in `$batch` requests of up to [`MAX_BATCH`] whose throttled members are sent
//!   again). Colours are Outlook master categories of ours ([`categories`]), next to the
//!   user's own; a recurring series is one record, its master, never its occurrences.
//! - [`diagnose`]: the checks of an account and its configuration (tokens, scopes, Graph,
//!   calendar, contact folder), each with its remedy: what `crmsync doctor` prints.
//! - [`GraphContacts`]: the mailbox's contact folders and contacts, for the sync engine
//!   (contacts delta of one folder, the deltaLink as cursor, the link key as an extended
//!   property, `If-Match` writes, the photo through `photo/$value`, groups as Outlook
//!   categories). Outlook keeps three e-mail addresses and three postal addresses per
//!   contact: the capabilities say so, and the engine reports what does not fit.
//!
//! The skeleton is the one every provider crate shares: `config`, `auth`, `client`,
//! `mapping` (wire ⇄ model), `calendar`, `contact_mapping` (wire ⇄ model of contacts),
//! `contacts`, `error` (Graph's and the identity platform's errors classified in one
//! function).
//!
//! A sync with nothing to do costs one request per calendar: the calendarView delta with
//! the stored deltaLink. The calendar is looked up once per store; a valid access token is
//! not refreshed. The same holds for a contact folder: one contacts delta. Photos are never
//! fetched by listings, only by `get`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use crmsync_core::AccountId;
//! use crmsync_http::HttpClient;
//! use crmsync_memory::MemoryTokenStore;
//! use crmsync_microsoft::{
//!     MicrosoftAuth, MicrosoftClient, MicrosoftConfig, Tenant, mailbox_limiter,
//! };
//!
//! # async fn demo() -> crmsync_core::Result<()> {
//! let config = MicrosoftConfig::new("00000000-0000-0000-0000-000000000000")
//!     .with_tenant(Tenant::Organizations);
//! let http = HttpClient::builder().limiter(mailbox_limiter()).build()?;
//! let auth = MicrosoftAuth::new(&config, http.clone(), Arc::new(MemoryTokenStore::new()));
//! let account = AccountId::new("adele@contoso.example")?;
//! auth.sign_in_device_code(&account, |prompt| println!("{}", prompt.message))
//!     .await?;
//! let graph = MicrosoftClient::new(config, http, auth, account);
//! let calendars = graph.get_json(graph.url(["me", "calendars"]), "listing calendars").await?;
//! println!("{calendars}");
//! # Ok(())
//! # }
//! ```

mod auth;
mod batch;
mod calendar;
pub mod categories;
mod client;
mod config;
pub mod contact_mapping;
mod contacts;
mod diagnostics;
mod error;
pub mod mapping;

pub use auth::{DeviceCodePrompt, MicrosoftAuth};
pub use batch::MAX_BATCH;
pub use calendar::{GraphCalendar, LINK_PROPERTY, MAX_PAGE_SIZE};
pub use client::{MicrosoftClient, PREFER_ALWAYS, mailbox_limiter, prefer_header};
pub use config::{MicrosoftConfig, SCOPE_CALENDARS, SCOPE_CONTACTS, SCOPE_OFFLINE_ACCESS, Tenant};
pub use contacts::{
    CONTACT_LINK_PROPERTY, DEFAULT_CONTACT_FOLDER, GraphContacts, MAX_CONTACT_PAGE_SIZE,
    USAGE_PROPERTY,
};
pub use diagnostics::diagnose;
