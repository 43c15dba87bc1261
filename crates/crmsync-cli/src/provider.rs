//! The provider side of an account, behind one trait so that adding a provider is one more
//! arm in [`open_provider`]: the memory provider (snapshot files), Google (Calendar v3,
//! People API, Google OAuth) and Microsoft (Graph, the Microsoft identity platform), the
//! last two with their tokens in the state database, encrypted.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use crmsync_core::{
    AccountId, CalendarStore, CalendarStoreExt, CollectionInfo, Contact, ContactStore, Error,
    ErrorKind, Event, RecordStoreExt, Result, TokenKey, TokenStore,
};
use crmsync_google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig, GoogleContacts};
use crmsync_http::{ClientSecret, HttpClient};
use crmsync_memory::{
    MemoryStore, like_caldav, like_google_calendar, like_google_contacts, like_outlook,
    memory_unlimited,
};
use crmsync_microsoft::{
    GraphCalendar, GraphContacts, MicrosoftAuth, MicrosoftClient, MicrosoftConfig, Tenant,
    mailbox_limiter,
};
use crmsync_sqlite::{SqliteState, SqliteTokenStore};
use secrecy::{ExposeSecret as _, SecretString};

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

    /// The calendar to sync: the writable calendar named `name` (Microsoft: the mailbox's
    /// default calendar when no name is configured).
    ///
    /// # Errors
    /// [`ErrorKind::CalendarNameMissing`], [`ErrorKind::CalendarNotFound`],
    /// [`ErrorKind::NoCalendars`]; the listing's errors.
    async fn calendar(&self, name: &str) -> Result<CollectionInfo> {
        self.calendars().calendar_by_name(name).await
    }

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

    /// The Google side of the account, when it is a Google account (sign-in, tokens).
    fn as_google(&self) -> Option<&GoogleProvider> {
        None
    }

    /// The Microsoft side of the account, when it is a Microsoft account.
    fn as_microsoft(&self) -> Option<&MicrosoftProvider> {
        None
    }

    /// Where the account's tokens are kept, for providers that sign in.
    fn tokens(&self) -> Option<AccountTokens<'_>> {
        None
    }
}

/// The tokens of an account that signs in: the id they are kept under, and the store.
#[derive(Clone, Copy)]
pub struct AccountTokens<'a> {
    /// The account id the tokens are kept under.
    pub account: &'a AccountId,
    /// The token store (the state database, sealed under the account's token key).
    pub store: &'a Arc<dyn TokenStore>,
}

/// Opens the provider of an account. Google accounts keep their tokens in `state`'s
/// database (the state must be open for them).
///
/// # Errors
/// Exit code 2 for providers not in this build yet, a Google account whose client secret or
/// token key is missing or whose base URLs are invalid; a memory snapshot that cannot be
/// read.
pub fn open_provider(
    config: &Config,
    account: &AccountConfig,
    state: Option<&SqliteState>,
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
        ProviderKind::Google => {
            let state = state.ok_or_else(|| CliError {
                code: crate::exit::RECORDS_FAILED,
                message: "the state was not opened before the Google provider".into(),
                remedy: None,
            })?;
            Ok(Arc::new(GoogleProvider::open(config, account, state)?))
        }
        ProviderKind::Microsoft => {
            let state = state.ok_or_else(|| CliError {
                code: crate::exit::RECORDS_FAILED,
                message: "the state was not opened before the Microsoft provider".into(),
                remedy: None,
            })?;
            Ok(Arc::new(MicrosoftProvider::open(config, account, state)?))
        }
    }
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

/// The environment variable holding the token key when `token_key_env` is not given.
pub const DEFAULT_TOKEN_KEY_ENV: &str = "CRMSYNC_TOKEN_KEY";

/// The index of an account in the file, for messages naming its keys.
fn account_key(config: &Config, account: &AccountConfig, key: &str) -> String {
    let i = config
        .accounts
        .iter()
        .position(|a| a.name == account.name)
        .unwrap_or(0);
    format!("accounts[{i}].{key}")
}

/// Reads an environment variable into a secret type; `None` when unset or empty.
fn secret_from_env(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(SecretString::from)
}

/// The token key of an account, from the variable `token_key_env` names.
///
/// # Errors
/// Exit code 2 when the variable is unset or does not hold a base64 32-byte key (the
/// message never repeats its value).
pub fn token_key(config: &Config, account: &AccountConfig) -> Result<TokenKey, CliError> {
    let env = account
        .token_key_env
        .as_deref()
        .unwrap_or(DEFAULT_TOKEN_KEY_ENV);
    let key_name = account_key(config, account, "token_key_env");
    let Some(value) = secret_from_env(env) else {
        return Err(CliError::config(format!(
            "invalid configuration in {}: account {:?}: the environment variable {env} (the token encryption key, key `{key_name}`) is not set",
            config.path.display(),
            account.name
        ))
        .with_remedy(format!(
            "create a key once with `openssl rand -base64 32`, keep it safe, and export {env}=<that key> before running crmsync (tokens saved under one key cannot be read under another)"
        )));
    };
    TokenKey::from_base64(value.expose_secret()).map_err(|e| {
        CliError::config(format!(
            "invalid configuration in {}: account {:?}: the environment variable {env} (key `{key_name}`): {}",
            config.path.display(),
            account.name,
            e.message()
        ))
        .with_remedy("expected 32 random bytes in base64, as `openssl rand -base64 32` prints them")
    })
}

/// The [`GoogleConfig`] of an account: its client, calendar and contact group, and the
/// base URL overrides (`api_base_url` moves the Calendar, batch and People endpoints,
/// `auth_base_url` the OAuth ones, each laid out under its root as Google's paths are).
///
/// # Errors
/// Exit code 2 naming the key at fault.
pub fn google_config(config: &Config, account: &AccountConfig) -> Result<GoogleConfig, CliError> {
    let bad = |key: &str, what: String| {
        CliError::config(format!(
            "invalid configuration in {}: key `{}`: {what}",
            config.path.display(),
            account_key(config, account, key)
        ))
    };
    let client_id = account
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "client_id",
                "a Google account needs the OAuth client id (`….apps.googleusercontent.com`)"
                    .into(),
            )
        })?;
    let env = account.client_secret_env.as_deref().ok_or_else(|| {
        bad(
            "client_secret_env",
            "a Google account needs the NAME of the environment variable holding its OAuth client secret".into(),
        )
    })?;
    let secret = secret_from_env(env).ok_or_else(|| {
        CliError::config(format!(
            "invalid configuration in {}: account {:?}: the environment variable {env} (the OAuth client secret, key `{}`) is not set",
            config.path.display(),
            account.name,
            account_key(config, account, "client_secret_env")
        ))
        .with_remedy(format!(
            "export {env}=<the client secret of the Google Cloud OAuth client> before running crmsync"
        ))
    })?;
    let mut google =
        GoogleConfig::new(client_id.clone(), ClientSecret::new(secret.expose_secret()));
    if let Some(api) = &account.api_base_url {
        let rooted = GoogleConfig::new(client_id.clone(), google.client_secret.clone())
            .with_root_url(api)
            .map_err(|e| bad("api_base_url", e.message().to_owned()))?;
        google.calendar_url = rooted.calendar_url;
        google.batch_url = rooted.batch_url;
        google.people_url = rooted.people_url;
    }
    if let Some(auth) = &account.auth_base_url {
        let rooted = GoogleConfig::new(client_id, google.client_secret.clone())
            .with_root_url(auth)
            .map_err(|e| bad("auth_base_url", e.message().to_owned()))?;
        google.authorize_url = rooted.authorize_url;
        google.token_url = rooted.token_url;
        google.revoke_url = rooted.revoke_url;
    }
    if let Some(calendar) = &account.calendar {
        google = google.with_calendar_name(calendar.clone());
    }
    if let Some(group) = &account.contacts {
        google = google.with_contact_group(group.clone());
    }
    Ok(google)
}

/// A Google account: Calendar v3 events, People API contacts, OAuth with its tokens in the
/// state database (sealed under the account's token key).
pub struct GoogleProvider {
    config: GoogleConfig,
    account: AccountId,
    auth: GoogleAuth,
    client: GoogleClient,
    calendar: Arc<GoogleCalendar>,
    contacts: Arc<GoogleContacts>,
}

impl GoogleProvider {
    /// Opens the account: reads its client secret and token key from the environment.
    ///
    /// # Errors
    /// Exit code 2 when the configuration or the environment is incomplete.
    pub fn open(
        config: &Config,
        account: &AccountConfig,
        state: &SqliteState,
    ) -> Result<Self, CliError> {
        let google = google_config(config, account)?;
        let key = token_key(config, account)?;
        let tokens: Arc<dyn TokenStore> = Arc::new(SqliteTokenStore::new(state, key));
        let http = HttpClient::builder()
            .build()
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let account_id = AccountId::new(account.account_id())
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let auth = GoogleAuth::new(&google, http.clone(), tokens);
        let client = GoogleClient::new(google.clone(), http, auth.clone(), account_id.clone());
        Ok(GoogleProvider {
            calendar: Arc::new(GoogleCalendar::new(client.clone())),
            contacts: Arc::new(GoogleContacts::new(client.clone())),
            client,
            config: google,
            account: account_id,
            auth,
        })
    }

    /// Sign-in, tokens and revocation.
    pub fn auth(&self) -> &GoogleAuth {
        &self.auth
    }

    /// The account id the tokens are kept under.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The Google configuration (no secret in its `Debug`).
    pub fn config(&self) -> &GoogleConfig {
        &self.config
    }

    /// The REST client of the account.
    pub fn client(&self) -> &GoogleClient {
        &self.client
    }

    /// The contact groups of the account (a People API request).
    ///
    /// # Errors
    /// The People API's errors.
    pub async fn contact_groups(&self) -> Result<Vec<CollectionInfo>> {
        self.contacts.groups(&self.contacts.address_book()).await
    }
}

#[async_trait]
impl Provider for GoogleProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Google
    }

    fn location(&self) -> String {
        format!(
            "Google (Calendar {}, People {})",
            self.config.calendar_url.as_url(),
            self.config.people_url.as_url()
        )
    }

    fn calendars(&self) -> Arc<dyn CalendarStore> {
        self.calendar.clone()
    }

    fn contacts(&self) -> Arc<dyn ContactStore> {
        self.contacts.clone()
    }

    /// Google has one address book. `contacts` selects what of it is synced, resolved by
    /// the function the sync uses ([`GoogleContacts::existing_selection`]): "Contacts"
    /// (also "My Contacts", "myContacts") is the whole address book, "Starred" the starred
    /// contacts, another name a contact group, which must exist. `name` is the
    /// configuration's, the one the store was opened with.
    async fn address_book(&self, name: &str) -> Result<CollectionInfo> {
        let book = self
            .contacts
            .address_books()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::Provider, "Google listed no address book"))?;
        let configured = crmsync_google::ContactSelection::from_name(Some(name));
        let opened =
            crmsync_google::ContactSelection::from_name(self.config.contact_group.as_deref());
        if configured != opened {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the Google account was opened for {opened}, not for {configured} ({name:?})"
                ),
            ));
        }
        self.contacts.existing_selection().await?;
        Ok(book)
    }

    fn persist(&self) -> Result<()> {
        Ok(())
    }

    fn as_google(&self) -> Option<&GoogleProvider> {
        Some(self)
    }

    fn tokens(&self) -> Option<AccountTokens<'_>> {
        Some(AccountTokens {
            account: &self.account,
            store: self.auth.token_store(),
        })
    }
}

/// The [`MicrosoftConfig`] of an account: its app registration and tenant, calendar and
/// contact folder, and the base URL overrides (`api_base_url` is the Graph base, as
/// `https://graph.microsoft.com/v1.0/`; `auth_base_url` the login authority, as
/// `https://login.microsoftonline.com/`, under which `<tenant>/oauth2/v2.0/...` lie).
///
/// # Errors
/// Exit code 2 naming the key at fault.
pub fn microsoft_config(
    config: &Config,
    account: &AccountConfig,
) -> Result<MicrosoftConfig, CliError> {
    let bad = |key: &str, what: String| {
        CliError::config(format!(
            "invalid configuration in {}: key `{}`: {what}",
            config.path.display(),
            account_key(config, account, key)
        ))
    };
    let client_id = account
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "client_id",
                "a Microsoft account needs the application (client) id of its app registration"
                    .into(),
            )
        })?;
    let mut microsoft = MicrosoftConfig::new(client_id);
    if let Some(tenant) = &account.tenant {
        let tenant = Tenant::parse(tenant).map_err(|e| bad("tenant", e.message().to_owned()))?;
        microsoft = microsoft.with_tenant(tenant);
    }
    if let Some(api) = &account.api_base_url {
        microsoft = microsoft
            .with_graph_url(api)
            .map_err(|e| bad("api_base_url", e.message().to_owned()))?;
    }
    if let Some(auth) = &account.auth_base_url {
        microsoft = microsoft
            .with_authority_url(auth)
            .map_err(|e| bad("auth_base_url", e.message().to_owned()))?;
    }
    if let Some(calendar) = &account.calendar {
        microsoft = microsoft.with_calendar_name(calendar.clone());
    }
    if let Some(folder) = &account.contacts {
        microsoft = microsoft.with_contact_folder(folder.clone());
    }
    Ok(microsoft)
}

/// A Microsoft 365 / Outlook account: Graph events and personal contacts, the identity
/// platform's sign-in (a public client: no secret) with its tokens in the state database
/// (sealed under the account's token key), at most 4 requests in flight per mailbox.
pub struct MicrosoftProvider {
    account: AccountId,
    auth: MicrosoftAuth,
    client: MicrosoftClient,
    calendar: Arc<GraphCalendar>,
    contacts: Arc<GraphContacts>,
}

impl MicrosoftProvider {
    /// Opens the account: reads its token key from the environment.
    ///
    /// # Errors
    /// Exit code 2 when the configuration or the environment is incomplete.
    pub fn open(
        config: &Config,
        account: &AccountConfig,
        state: &SqliteState,
    ) -> Result<Self, CliError> {
        let microsoft = microsoft_config(config, account)?;
        let key = token_key(config, account)?;
        let tokens: Arc<dyn TokenStore> = Arc::new(SqliteTokenStore::new(state, key));
        let http = HttpClient::builder()
            .limiter(mailbox_limiter())
            .build()
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let account_id = AccountId::new(account.account_id())
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let auth = MicrosoftAuth::new(&microsoft, http.clone(), tokens);
        let client = MicrosoftClient::new(microsoft, http, auth.clone(), account_id.clone());
        Ok(MicrosoftProvider {
            calendar: Arc::new(GraphCalendar::new(client.clone())),
            contacts: Arc::new(GraphContacts::new(client.clone())),
            client,
            account: account_id,
            auth,
        })
    }

    /// Sign-in and tokens.
    pub fn auth(&self) -> &MicrosoftAuth {
        &self.auth
    }

    /// The account id the tokens are kept under.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The REST client of the mailbox.
    pub fn client(&self) -> &MicrosoftClient {
        &self.client
    }

    /// The Microsoft configuration.
    pub fn config(&self) -> &MicrosoftConfig {
        self.client.config()
    }
}

#[async_trait]
impl Provider for MicrosoftProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Microsoft
    }

    fn location(&self) -> String {
        format!(
            "Microsoft Graph {} (sign-in {}, tenant {})",
            self.config().graph_url.as_url(),
            self.config().authority_url.as_url(),
            self.config().tenant.as_str()
        )
    }

    fn calendars(&self) -> Arc<dyn CalendarStore> {
        self.calendar.clone()
    }

    /// The configured calendar (`calendar` names it; the default calendar when unset).
    async fn calendar(&self, _name: &str) -> Result<CollectionInfo> {
        self.calendar.configured_calendar().await
    }

    fn contacts(&self) -> Arc<dyn ContactStore> {
        self.contacts.clone()
    }

    /// The configured contact folder (`contacts`, compared without case as Outlook does),
    /// or the default folder when `contacts` is not set.
    async fn address_book(&self, name: &str) -> Result<CollectionInfo> {
        match self.contacts.configured_folder().await {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound) => {
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
                        "no contact folder named {name:?} (the mailbox has: {})",
                        names.join(", ")
                    ),
                ))
            }
            other => other,
        }
    }

    fn persist(&self) -> Result<()> {
        Ok(())
    }

    fn as_microsoft(&self) -> Option<&MicrosoftProvider> {
        Some(self)
    }

    fn tokens(&self) -> Option<AccountTokens<'_>> {
        Some(AccountTokens {
            account: &self.account,
            store: self.auth.token_store(),
        })
    }
}
