//! What a command opens: the state, the file CRM, and per account the provider and the
//! syncers of its collections.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crmsync_core::engine::{ConfirmAll, Plan, Progress, SyncReport, Syncer};
use crmsync_core::{AccountId, Contact, CrmId, ErrorKind, Event, Record, RunSummary, SyncState};
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
    /// The calendar and the address book are found by name once, then through the id the
    /// state remembers for that name (a collection alias), so a sync with nothing to do
    /// lists no collections; [`Session::plan`] and [`Session::run`] find the name again
    /// when the remembered id is gone.
    ///
    /// # Errors
    /// A calendar or address book that does not resolve, the state cannot be opened, the
    /// provider's configuration is incomplete.
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
        let mut session = Session {
            account: account.clone(),
            account_id,
            state,
            provider,
            crm_events,
            crm_contacts,
            events: None,
            contacts: None,
            flags,
            aliased: BTreeSet::new(),
            progress: Vec::new(),
        };
        for collection in [Collection::Events, Collection::Contacts] {
            if !account.syncs(collection) {
                continue;
            }
            if let Err(e) = self.open_collection(&mut session, collection, true).await {
                self.note_reauthorization(account, &e).await;
                let what = match collection {
                    Collection::Events => "resolving the calendar",
                    Collection::Contacts => "resolving the contact group",
                };
                return Err(account_error(
                    account,
                    &format!("account {:?}: {what}", account.name),
                    &e,
                ));
            }
        }
        Ok(session)
    }

    /// Finds the provider collection of `collection` (through its alias when `use_alias`
    /// and the state has one, else by name, remembering the id found) and builds its
    /// syncer into the session.
    async fn open_collection(
        &self,
        session: &mut Session,
        collection: Collection,
        use_alias: bool,
    ) -> crmsync_core::Result<()> {
        let (kind, name) = configured_name(&session.account, collection);
        // An empty name is the provider's default collection (Outlook's default calendar):
        // remembered under the empty name like any other.
        let alias = if use_alias {
            match session
                .state
                .collection_alias(&session.account_id, kind, &name)
                .await
            {
                Ok(alias) => alias,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the collection alias");
                    None
                }
            }
        } else {
            None
        };
        let id = match alias {
            Some(id) => {
                tracing::debug!(kind, name, id = %id, "collection found through its alias");
                session.aliased.insert(collection);
                id
            }
            None => {
                session.aliased.remove(&collection);
                let info = match collection {
                    Collection::Events => session.provider.calendar(&name).await?,
                    Collection::Contacts => session.provider.address_book(&name).await?,
                };
                if let Err(e) = session
                    .state
                    .set_collection_alias(&session.account_id, kind, &name, Some(&info.id))
                    .await
                {
                    tracing::warn!(error = %e, "could not remember the collection alias");
                }
                info.id
            }
        };
        let flags = session.flags;
        match collection {
            Collection::Events => {
                let mut options = self.policies.event_options.clone();
                options.guards.mass_deletion_confirmed = flags.allow_mass_deletion;
                let mut syncer = Syncer::new(
                    Arc::new(session.crm_events.clone()),
                    session.crm_events.collection_id(),
                    session.provider.calendars(),
                    id,
                    Arc::clone(&session.state),
                    session.account_id.clone(),
                    self.policies.events.clone(),
                )
                .with_options(options);
                if flags.confirm_deletions {
                    syncer = syncer.with_deletion_gate(Arc::new(ConfirmAll));
                }
                if let Some(p) = session.progress_of(collection) {
                    syncer = syncer.with_progress(p);
                }
                session.events = Some(syncer);
            }
            Collection::Contacts => {
                let mut options = self.policies.contact_options.clone();
                options.guards.mass_deletion_confirmed = flags.allow_mass_deletion;
                let mut syncer = Syncer::new(
                    Arc::new(session.crm_contacts.clone()),
                    session.crm_contacts.collection_id(),
                    session.provider.contacts(),
                    id,
                    Arc::clone(&session.state),
                    session.account_id.clone(),
                    self.policies.contacts.clone(),
                )
                .with_options(options);
                if flags.confirm_deletions {
                    syncer = syncer.with_deletion_gate(Arc::new(ConfirmAll));
                }
                if let Some(p) = session.progress_of(collection) {
                    syncer = syncer.with_progress(p);
                }
                session.contacts = Some(syncer);
            }
        }
        Ok(())
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
    flags: RunFlags,
    /// The collections found through their alias (not listed this time).
    aliased: BTreeSet<Collection>,
    progress: Vec<(Collection, Arc<dyn Progress>)>,
}

/// What a run does with a syncer (see [`Session::run`]).
#[derive(Debug, Clone, Copy)]
pub enum RunOp<'a> {
    /// Two-way sync.
    Sync,
    /// Provider → CRM only.
    Pull,
    /// These CRM records, to the provider now.
    Push(&'a [CrmId]),
}

/// A record kind a session syncs: which collection it is, and its syncer.
pub trait Synced: Record {
    /// The collection of this kind.
    const COLLECTION: Collection;
    /// The session's syncer of this kind, when it has one.
    fn syncer(session: &Session) -> Option<&Syncer<Self>>;
}

impl Synced for Event {
    const COLLECTION: Collection = Collection::Events;
    fn syncer(session: &Session) -> Option<&Syncer<Event>> {
        session.events.as_ref()
    }
}

impl Synced for Contact {
    const COLLECTION: Collection = Collection::Contacts;
    fn syncer(session: &Session) -> Option<&Syncer<Contact>> {
        session.contacts.as_ref()
    }
}

impl Session {
    /// Shows the progress of `collection`'s runs (kept when its syncer is rebuilt).
    pub fn set_progress(&mut self, collection: Collection, progress: Arc<dyn Progress>) {
        self.progress.retain(|(c, _)| *c != collection);
        self.progress.push((collection, Arc::clone(&progress)));
        match collection {
            Collection::Events => {
                self.events = self.events.take().map(|s| s.with_progress(progress));
            }
            Collection::Contacts => {
                self.contacts = self.contacts.take().map(|s| s.with_progress(progress));
            }
        }
    }

    fn progress_of(&self, collection: Collection) -> Option<Arc<dyn Progress>> {
        self.progress
            .iter()
            .find(|(c, _)| *c == collection)
            .map(|(_, p)| Arc::clone(p))
    }

    /// The plan of `R`'s collection; `None` when the account does not sync it.
    pub async fn plan<R: Synced>(
        &mut self,
        ctx: &Context,
    ) -> Option<crmsync_core::Result<Plan<R>>> {
        let first = R::syncer(self)?.plan().await;
        Some(match first {
            Err(e) => match self.recover(ctx, R::COLLECTION, &e).await {
                Ok(true) => R::syncer(self)?.plan().await,
                Ok(false) => Err(e),
                Err(again) => Err(again),
            },
            ok => ok,
        })
    }

    /// Runs `op` on `R`'s collection; `None` when the account does not sync it.
    pub async fn run<R: Synced>(
        &mut self,
        ctx: &Context,
        op: RunOp<'_>,
    ) -> Option<crmsync_core::Result<SyncReport>> {
        let first = run_op(R::syncer(self)?, op).await;
        Some(match first {
            Err(e) => match self.recover(ctx, R::COLLECTION, &e).await {
                Ok(true) => run_op(R::syncer(self)?, op).await,
                Ok(false) => Err(e),
                Err(again) => Err(again),
            },
            ok => ok,
        })
    }

    /// After `error` on `collection`: when the collection was found through its alias and
    /// the provider says it is not there, forgets the alias and finds the collection by
    /// name again (true: run again). A calendar deleted and made again gets a new id.
    async fn recover(
        &mut self,
        ctx: &Context,
        collection: Collection,
        error: &crmsync_core::Error,
    ) -> crmsync_core::Result<bool> {
        if !self.aliased.contains(&collection)
            || !matches!(
                error.kind(),
                ErrorKind::NotFound | ErrorKind::CalendarNotFound { .. }
            )
        {
            return Ok(false);
        }
        let (kind, name) = configured_name(&self.account, collection);
        tracing::info!(kind, name, error = %error, "the remembered collection is gone: finding it by name again");
        self.state
            .set_collection_alias(&self.account_id, kind, &name, None)
            .await?;
        ctx.open_collection(self, collection, false).await?;
        Ok(true)
    }

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

async fn run_op<R: Record>(syncer: &Syncer<R>, op: RunOp<'_>) -> crmsync_core::Result<SyncReport> {
    match op {
        RunOp::Sync => syncer.sync().await,
        RunOp::Pull => syncer.pull().await,
        RunOp::Push(ids) => syncer.push(ids).await,
    }
}

/// The record kind of a collection and the name the account configures for it (the alias's
/// key in the state).
fn configured_name(account: &AccountConfig, collection: Collection) -> (&'static str, String) {
    match collection {
        Collection::Events => (Event::KIND, account.calendar.clone().unwrap_or_default()),
        Collection::Contacts => (Contact::KIND, account.contacts_name().to_owned()),
    }
}
