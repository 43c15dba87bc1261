//! The provider side of an account, behind one trait so that adding Google or Microsoft is
//! one more arm in [`open_provider`].

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use crmsync_core::{
    CalendarStore, CollectionInfo, Contact, ContactStore, Error, ErrorKind, Event, RecordStoreExt,
    Result,
};
use crmsync_memory::{
    MemoryStore, like_caldav, like_google_calendar, like_google_contacts, like_outlook,
    memory_unlimited,
};

use crate::config::{AccountConfig, Config, MemoryLike, ProviderKind};
use crate::exit::CliError;

/// An opened provider account: its calendar and contact stores.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Where it is, for messages (a folder, a base URL).
    fn location(&self) -> String;

    /// The calendar store.
    fn calendars(&self) -> Arc<dyn CalendarStore>;

    /// The contact store.
    fn contacts(&self) -> Arc<dyn ContactStore>;

    /// The contact group or folder with this name.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming what exists when there is none by that name.
    async fn address_book(&self, name: &str) -> Result<CollectionInfo>;

    /// Keeps what was written (the memory provider saves its snapshots); a no-op for
    /// providers that write through to a server.
    ///
    /// # Errors
    /// When saving fails.
    fn persist(&self) -> Result<()>;
}

/// Opens the provider of an account.
///
/// # Errors
/// Exit code 2 for providers not in this build yet, or a memory snapshot that cannot be
/// read.
pub fn open_provider(
    config: &Config,
    account: &AccountConfig,
) -> Result<Arc<dyn Provider>, CliError> {
    match account.provider {
        ProviderKind::Memory => Ok(Arc::new(
            MemoryProvider::open(config.snapshot_folder(account), account).map_err(|e| {
                CliError::from_error(
                    &format!(
                        "account {:?}: cannot open the memory provider",
                        account.name
                    ),
                    &e,
                )
            })?,
        )),
        kind @ (ProviderKind::Google | ProviderKind::Microsoft) => Err(not_available(kind)),
    }
}

/// The error for a provider the configuration accepts but this build cannot use yet.
pub fn not_available(kind: ProviderKind) -> CliError {
    CliError::usage(format!(
        "the {kind} provider is not available in this build yet"
    ))
    .with_remedy(
        "use provider = \"memory\" to try crmsync now; Google and Microsoft arrive with their provider crates",
    )
}

/// The in-memory provider, kept in snapshot files (`events.json`, `contacts.json`) in a
/// folder, so every command sees what the previous one left.
pub struct MemoryProvider {
    folder: PathBuf,
    events: MemoryStore<Event>,
    contacts: MemoryStore<Contact>,
}

impl MemoryProvider {
    /// Opens (or starts) the snapshots in `folder`. A new snapshot gets the account's
    /// calendars (`calendars`, else `calendar`) and its address book (`contacts`).
    ///
    /// # Errors
    /// A snapshot that is not valid.
    pub fn open(folder: PathBuf, account: &AccountConfig) -> Result<Self> {
        let (event_caps, contact_caps) = match account.like {
            MemoryLike::Google => (like_google_calendar(), like_google_contacts()),
            MemoryLike::Outlook => (like_outlook(), like_outlook()),
            MemoryLike::Caldav => (like_caldav(), like_caldav()),
            MemoryLike::Unlimited => (memory_unlimited(), memory_unlimited()),
        };
        let events_path = folder.join("events.json");
        let contacts_path = folder.join("contacts.json");
        let new_events = !events_path.exists();
        let new_contacts = !contacts_path.exists();
        let events =
            MemoryStore::<Event>::open_snapshot(&events_path)?.with_capabilities(event_caps);
        let contacts =
            MemoryStore::<Contact>::open_snapshot(&contacts_path)?.with_capabilities(contact_caps);
        if new_events {
            let names = account
                .calendars
                .clone()
                .unwrap_or_else(|| account.calendar.iter().cloned().collect());
            for name in names {
                events.add_collection(&name);
            }
        }
        if new_contacts {
            contacts.add_collection(account.contacts_name());
        }
        Ok(MemoryProvider {
            folder,
            events,
            contacts,
        })
    }

    /// The events snapshot store (shared with the provider).
    pub fn event_store(&self) -> &MemoryStore<Event> {
        &self.events
    }

    /// The contacts snapshot store (shared with the provider).
    pub fn contact_store(&self) -> &MemoryStore<Contact> {
        &self.contacts
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Memory
    }

    fn location(&self) -> String {
        format!("memory snapshots in {}", self.folder.display())
    }

    fn calendars(&self) -> Arc<dyn CalendarStore> {
        Arc::new(self.events.clone())
    }

    fn contacts(&self) -> Arc<dyn ContactStore> {
        Arc::new(self.contacts.clone())
    }

    async fn address_book(&self, name: &str) -> Result<CollectionInfo> {
        match self.contacts.collection_by_name(name).await? {
            Some(info) => Ok(info),
            None => {
                let names: Vec<String> = self
                    .contacts
                    .address_books()
                    .await?
                    .into_iter()
                    .map(|c| format!("{:?}", c.name))
                    .collect();
                Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "no address book named {name:?} (the account has: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                ))
            }
        }
    }

    fn persist(&self) -> Result<()> {
        std::fs::create_dir_all(&self.folder).map_err(|e| {
            Error::new(
                ErrorKind::Provider,
                format!(
                    "cannot create the snapshot folder {}",
                    self.folder.display()
                ),
            )
            .with_source(e)
        })?;
        self.events.save_snapshot()?;
        self.contacts.save_snapshot()
    }
}
