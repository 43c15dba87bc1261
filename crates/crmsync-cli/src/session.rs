//! What a command opens: the state, the file CRM, and per account the provider and the
//! syncers of its collections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crmsync_core::engine::{ConfirmAll, Syncer};
use crmsync_core::{AccountId, CalendarStoreExt, Contact, Event, RunSummary, SyncState};
use crmsync_sqlite::SqliteState;

use crate::config::{AccountConfig, Collection, Config, Policies};
use crate::exit::CliError;
use crate::filecrm::FileCrm;
use crate::provider::{Provider, open_provider};

/// Options of the syncers a command builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    /// Confirm deletions the policy wants confirmed.
    pub confirm_deletions: bool,
    /// Let a run go ahead past the mass-deletion guard.
    pub allow_mass_deletion: bool,
}

/// The events and contacts of one file CRM folder.
type CrmPair = (FileCrm<Event>, FileCrm<Contact>);

/// The configuration, the state and the file CRMs, shared by the accounts of a command.
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// The policies from it.
    pub policies: Policies,
    state: Option<(SqliteState, Arc<dyn SyncState>)>,
    crms: Mutex<HashMap<PathBuf, CrmPair>>,
}

impl Context {
    /// A context for this configuration; the state is opened on first use.
    ///
    /// # Errors
    /// An invalid policy (exit code 2).
    pub fn new(config: Config) -> Result<Self, CliError> {
        let policies = config.policies()?;
        Ok(Context {
            config,
            policies,
            state: None,
            crms: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the state database.
    ///
    /// # Errors
    /// The database cannot be opened (exit code 1).
    pub async fn open_state(&mut self) -> Result<Arc<dyn SyncState>, CliError> {
        if let Some((_, shared)) = &self.state {
            return Ok(Arc::clone(shared));
        }
        let path = self.config.state_path();
        let state = SqliteState::open(&path).await.map_err(|e| {
            CliError::from_error(&format!("cannot open the state {}", path.display()), &e)
        })?;
        let shared: Arc<dyn SyncState> = Arc::new(state.clone());
        self.state = Some((state, Arc::clone(&shared)));
        Ok(shared)
    }

    /// The state opened by [`open_state`](Self::open_state).
    ///
    /// # Errors
    /// When it was not opened (a bug; exit code 1).
    pub fn state(&self) -> Result<Arc<dyn SyncState>, CliError> {
        self.state
            .as_ref()
            .map(|(_, shared)| Arc::clone(shared))
            .ok_or_else(|| CliError {
                code: crate::exit::RECORDS_FAILED,
                message: "the state was not opened".into(),
                remedy: None,
            })
    }

    /// The SQLite state itself (Google accounts keep their tokens in its database).
    pub fn sqlite(&self) -> Option<&SqliteState> {
        self.state.as_ref().map(|(state, _)| state)
    }

    /// Opens the provider of an account (tokens in the state's database).
    ///
    /// # Errors
    /// As [`open_provider`].
    pub fn provider(&self, account: &AccountConfig) -> Result<Arc<dyn Provider>, CliError> {
        open_provider(&self.config, account, self.sqlite())
    }

    /// Records that the account must sign in again, when `error` says so (failures before
    /// the engine runs, such as resolving the calendar, are not recorded by it).
    pub async fn note_reauthorization(&self, account: &AccountConfig, error: &crmsync_core::Error) {
        if let crmsync_core::ErrorKind::ReauthorizationRequired { cause } = error.kind()
            && let (Ok(state), Ok(id)) = (self.state(), AccountId::new(account.account_id()))
        {
            let status = crmsync_core::AccountStatus::NeedsReauthorization {
                cause: cause.clone(),
            };
            if let Err(e) = state.set_account_status(&id, status).await {
                tracing::warn!(error = %e, "could not record the account status");
            }
        }
    }

    /// Closes the state database cleanly.
    pub async fn close(&self) {
        if let Some((state, _)) = &self.state {
            state.close().await;
        }
    }

    /// The file CRM of an account (one instance per folder, so accounts sharing a folder
    /// take turns writing it).
    ///
    /// # Errors
    /// Never in practice (collection ids are fixed); kept for the signature's sake.
    pub fn crm(
        &self,
        account: &AccountConfig,
    ) -> Result<(FileCrm<Event>, FileCrm<Contact>), CliError> {
        let folder = self.config.crm_folder(account);
        let mut crms = self.crms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pair) = crms.get(&folder) {
            return Ok(pair.clone());
        }
        let pair = (open_crm::<Event>(&folder)?, open_crm::<Contact>(&folder)?);
        crms.insert(folder, pair.clone());
        Ok(pair)
    }

    /// The accounts named, or every account when none is named.
    ///
    /// # Errors
    /// An unknown name, or no account at all (exit code 2).
    pub fn accounts(&self, names: &[String]) -> Result<Vec<AccountConfig>, CliError> {
        if names.is_empty() {
            if self.config.accounts.is_empty() {
                return Err(CliError::config(format!(
                    "{} has no [[accounts]]",
                    self.config.path.display()
                )));
            }
            return Ok(self.config.accounts.clone());
        }
        names
            .iter()
            .map(|n| self.config.account(n).cloned())
            .collect()
    }

    /// Opens an account: its provider, and a syncer per collection it syncs.
    ///
    /// # Errors
    /// The provider is not available, a calendar or address book does not resolve, the
    /// state cannot be opened.
    pub async fn session(
        &self,
        account: &AccountConfig,
        flags: RunFlags,
    ) -> Result<Session, CliError> {
        let state = self.state()?;
        let provider = self.provider(account)?;
        let (crm_events, crm_contacts) = self.crm(account)?;
        let account_id = AccountId::new(account.account_id())
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let context = |what: &str| format!("account {:?}: {what}", account.name);
        let mut session = Session {
            account: account.clone(),
            account_id: account_id.clone(),
            state: Arc::clone(&state),
            provider: Arc::clone(&provider),
            crm_events: crm_events.clone(),
            crm_contacts: crm_contacts.clone(),
            events: None,
            contacts: None,
        };
        if account.syncs(Collection::Events) {
            let calendars = provider.calendars();
            let calendar = match calendars
                .calendar_by_name(account.calendar.as_deref().unwrap_or(""))
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    self.note_reauthorization(account, &e).await;
                    return Err(account_error(
                        account,
                        &context("resolving the calendar"),
                        &e,
                    ));
                }
            };
            let mut options = self.policies.event_options.clone();
            options.guards.mass_deletion_confirmed = flags.allow_mass_deletion;
            let mut syncer = Syncer::new(
                Arc::new(crm_events.clone()),
                crm_events.collection_id(),
                calendars,
                calendar.id,
                Arc::clone(&state),
                account_id.clone(),
                self.policies.events.clone(),
            )
            .with_options(options);
            if flags.confirm_deletions {
                syncer = syncer.with_deletion_gate(Arc::new(ConfirmAll));
            }
            session.events = Some(syncer);
        }
        if account.syncs(Collection::Contacts) {
            let book = match provider.address_book(account.contacts_name()).await {
                Ok(b) => b,
                Err(e) => {
                    self.note_reauthorization(account, &e).await;
                    return Err(account_error(
                        account,
                        &context("resolving the contact group"),
                        &e,
                    ));
                }
            };
            let mut options = self.policies.contact_options.clone();
            options.guards.mass_deletion_confirmed = flags.allow_mass_deletion;
            let mut syncer = Syncer::new(
                Arc::new(crm_contacts.clone()),
                crm_contacts.collection_id(),
                provider.contacts(),
                book.id,
                Arc::clone(&state),
                account_id,
                self.policies.contacts.clone(),
            )
            .with_options(options);
            if flags.confirm_deletions {
                syncer = syncer.with_deletion_gate(Arc::new(ConfirmAll));
            }
            session.contacts = Some(syncer);
        }
        Ok(session)
    }
}

/// A library error met for `account`, as [`CliError::from_error`], with the account's
/// name in the remedy (`crmsync auth <account>` becomes `crmsync auth sam`).
pub fn account_error(
    account: &AccountConfig,
    context: &str,
    error: &crmsync_core::Error,
) -> CliError {
    let mut e = CliError::from_error(context, error);
    e.remedy = e.remedy.map(|r| r.replace("<account>", &account.name));
    e
}

fn open_crm<R: crmsync_core::Record>(folder: &Path) -> Result<FileCrm<R>, CliError> {
    FileCrm::open(folder).map_err(|e| {
        CliError::from_error(
            &format!("cannot open the file CRM {}", folder.display()),
            &e,
        )
    })
}

/// One account, opened.
pub struct Session {
    /// Its configuration.
    pub account: AccountConfig,
    /// Its id in the state.
    pub account_id: AccountId,
    /// The state.
    pub state: Arc<dyn SyncState>,
    /// The provider.
    pub provider: Arc<dyn Provider>,
    /// The file CRM's events.
    pub crm_events: FileCrm<Event>,
    /// The file CRM's contacts.
    pub crm_contacts: FileCrm<Contact>,
    /// The events syncer, when the account syncs events.
    pub events: Option<Syncer<Event>>,
    /// The contacts syncer, when the account syncs contacts.
    pub contacts: Option<Syncer<Contact>>,
}

impl Session {
    /// Saves what the provider holds (memory snapshots).
    ///
    /// # Errors
    /// Saving fails (exit code 1).
    pub fn persist(&self) -> Result<(), CliError> {
        self.provider.persist().map_err(|e| {
            CliError::from_error(
                &format!(
                    "account {:?}: cannot save the provider's data",
                    self.account.name
                ),
                &e,
            )
        })
    }

    /// Records one summary of the whole run (all collections) as the account's last run:
    /// the engine records one per collection, each replacing the previous.
    pub async fn record_last_run(&self, summary: RunSummary) {
        if let Err(e) = self.state.set_last_run(&self.account_id, summary).await {
            tracing::warn!(error = %e, "could not record the run summary");
        }
    }
}
