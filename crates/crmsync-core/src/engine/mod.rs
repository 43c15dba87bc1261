//! The sync engine: declare → plan → execute.
//!
//! - **Declare**: a [`Syncer`] is given both stores, the state, the policy and options.
//! - **Plan**: [`Syncer::plan`] lists both sides (change feeds since their cursors, or full
//!   listings), loads the links and baselines they touch, and calls the pure planner
//!   ([`plan::plan`]), giving a [`Plan`] of named, printable actions: the dry run.
//! - **Execute**: [`Syncer::sync`] carries a plan out, batch by batch, recording each batch's
//!   results in the [`SyncState`] atomically, and returns a [`SyncReport`].
//!
//! The rules it keeps: an intent is recorded before every create and cleared after, so a
//! crash never creates twice; a cursor advances only when everything before it is recorded;
//! a record that fails, or a deletion awaiting confirmation, becomes a deferred item retried
//! on the next run; an expired cursor leads to a full listing reconciled against the links,
//! where only a linked item really gone from inside the window is a deletion.
//!
//! ```
//! # async fn demo(
//! #     crm: std::sync::Arc<dyn crmsync_core::RecordStore<crmsync_core::Event>>,
//! #     provider: std::sync::Arc<dyn crmsync_core::RecordStore<crmsync_core::Event>>,
//! #     state: std::sync::Arc<dyn crmsync_core::SyncState>,
//! # ) -> crmsync_core::Result<()> {
//! use crmsync_core::engine::{FieldPolicy, Syncer};
//! use crmsync_core::{AccountId, CollectionId};
//!
//! let syncer = Syncer::new(
//!     crm,
//!     CollectionId::new("crm-actions")?,
//!     provider,
//!     CollectionId::new("work-calendar")?,
//!     state,
//!     AccountId::new("ann@example.com")?,
//!     FieldPolicy::calendar_defaults(),
//! );
//! println!("{}", syncer.plan().await?); // the dry run
//! let report = syncer.sync().await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```

pub mod plan;
pub mod policy;
pub mod report;
mod scope;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

pub use plan::plan;
pub use plan::{
    Action, Conflict, ConflictResolver, ForbiddenChange, GuardTrip, Guards, LimitReport, LinkedBy,
    Merge, Observed, Plan, PlanInput, SkipReason, WritableSides, Write,
};
pub use policy::{
    ConflictStrategy, DeletionMode, FieldPolicy, FieldRule, ForbiddenEdit, PerDirection,
};
pub use report::{
    ConflictReport, ForbiddenReport, LossReport, PendingDeletion, RecordError, RunKind, SideReport,
    SkipReport, SyncReport,
};
pub use scope::LinkScope;

use crate::error::{Error, ErrorKind, Result};
use crate::ids::{AccountId, CollectionId, CrmId, Cursor, ItemId, RemoteId};
use crate::record::{CanonicalRecord, Field, Record, RecordExt};
use crate::state::{
    AccountStatus, CursorState, Deferred, DeferredReason, Intent, Link, PendingWrite, ResetCounts,
    ResetScope, RunSummary, Side, StateKey, StateOp, SyncState,
};
use crate::store::{
    ChangesRequest, Continuation, RecordStore, RemovalReason, Upsert, Window, WriteOp, WriteOutcome,
};
use crate::time::{Clock, Sleeper, SystemClock};

/// The sync window, relative to today: N months before and M months after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Months before today.
    pub months_before: u32,
    /// Months after today.
    pub months_after: u32,
}

impl WindowSpec {
    /// The window around `now`, from midnight UTC of the first day to midnight UTC after
    /// the last: it moves once a day, not at every run.
    pub fn at(&self, now: DateTime<Utc>) -> Window {
        let today = now.date_naive();
        let start = today
            .checked_sub_months(Months::new(self.months_before))
            .unwrap_or(today);
        let end = today
            .checked_add_months(Months::new(self.months_after))
            .unwrap_or(today)
            .succ_opt()
            .unwrap_or(today);
        let start = start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let end = end.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        Window {
            start,
            end: end.max(start + chrono::Duration::days(1)),
        }
    }
}

/// Options of a [`Syncer`] beyond the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncOptions {
    /// The sync window, for records bound to time; `None`: everything.
    pub window: Option<WindowSpec>,
    /// Caps and the mass-deletion guard.
    pub guards: Guards,
    /// Match unlinked records by natural key before creating copies.
    pub match_natural_keys: bool,
    /// The most operations per write batch; `None`: as many as each store takes in one
    /// request (its `max_batch`: Google People 200, Calendar 50, Graph 20).
    pub batch_size: Option<usize>,
    /// Retries of a listing call that failed with a retryable error.
    pub max_retries: u32,
    /// A cursor older than this is replaced by a reconciling full listing (People sync
    /// tokens die after 7 days).
    pub max_cursor_age: Option<Duration>,
    /// Test-only: do not record intents before creates. Exists so the property tests can
    /// show that intents are what prevents duplicates; never turn it off in production.
    #[doc(hidden)]
    pub disable_intents_for_tests: bool,
}

impl SyncOptions {
    /// The defaults, with the cap of the record type ([`Record::DEFAULT_CAP`]: 1,000 events,
    /// 2,000 contacts per collection). [`Syncer::new`] starts from these.
    pub fn for_record<R: Record>() -> Self {
        let mut options = SyncOptions::default();
        options.guards.cap = R::DEFAULT_CAP;
        options
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            window: None,
            guards: Guards::default(),
            match_natural_keys: true,
            batch_size: None,
            max_retries: 3,
            max_cursor_age: None,
            disable_intents_for_tests: false,
        }
    }
}

/// Confirms deletions the policy wants confirmed. Asked once per run with all of them, so
/// the CRM can ask its user once.
#[async_trait]
pub trait DeletionGate: fmt::Debug + Send + Sync {
    /// Which of these deletions may go ahead: one answer per deletion, in order. Those not
    /// confirmed wait for the next run.
    async fn confirm(&self, pending: &[PendingDeletion]) -> Vec<bool>;
}

/// A gate that confirms every deletion.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfirmAll;

#[async_trait]
impl DeletionGate for ConfirmAll {
    async fn confirm(&self, pending: &[PendingDeletion]) -> Vec<bool> {
        vec![true; pending.len()]
    }
}

/// The phase a run is in, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Listing a side.
    Listing(Side),
    /// Planning.
    Planning,
    /// Writing.
    Writing,
    /// Done.
    Done,
}

/// Receives progress: the phase, what is done, and the total when known.
pub trait Progress: Send + Sync {
    /// Called as the run moves on.
    fn update(&self, phase: Phase, done: u64, total: Option<u64>);
}

impl<F: Fn(Phase, u64, Option<u64>) + Send + Sync> Progress for F {
    fn update(&self, phase: Phase, done: u64, total: Option<u64>) {
        self(phase, done, total)
    }
}

/// Syncs one CRM collection with one provider collection, for records of type `R`.
pub struct Syncer<R: Record> {
    crm: Arc<dyn RecordStore<R>>,
    crm_collection: CollectionId,
    provider: Arc<dyn RecordStore<R>>,
    provider_collection: CollectionId,
    state: Arc<dyn SyncState>,
    account: AccountId,
    policy: FieldPolicy<R::Field>,
    options: SyncOptions,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    gate: Option<Arc<dyn DeletionGate>>,
    resolver: Option<Arc<dyn ConflictResolver<R::Field>>>,
    progress: Option<Arc<dyn Progress>>,
}

impl<R: Record> fmt::Debug for Syncer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("kind", &R::KIND)
            .field("account", &self.account)
            .field("crm_collection", &self.crm_collection)
            .field("provider_collection", &self.provider_collection)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Counts store calls per side.
#[derive(Default)]
struct Requests {
    crm: AtomicU64,
    provider: AtomicU64,
}

impl Requests {
    fn add(&self, side: Side, n: u64) {
        match side {
            Side::Crm => self.crm.fetch_add(n, Ordering::Relaxed),
            Side::Provider => self.provider.fetch_add(n, Ordering::Relaxed),
        };
    }
    fn get(&self, side: Side) -> u64 {
        match side {
            Side::Crm => self.crm.load(Ordering::Relaxed),
            Side::Provider => self.provider.load(Ordering::Relaxed),
        }
    }
}

/// What the declare phase gathered for one side.
struct Listing<R: Record> {
    observed: HashMap<ItemId, Observed<R>>,
    partial: HashMap<ItemId, BTreeSet<R::Field>>,
    cursor: Option<Cursor>,
    full: bool,
    expired: bool,
    /// The listing ended without a cursor: the stored one is dropped, so the next run
    /// lists in full.
    no_cursor: bool,
    listed: u64,
    errors: Vec<RecordError>,
    /// Records the store left out of the synced set (a contact-group filter).
    left_out: Vec<crate::store::LeftOut>,
}

impl<R: Record> Listing<R> {
    /// Nothing listed yet; `full` says whether it will be a full listing.
    fn empty(full: bool) -> Self {
        Listing {
            observed: HashMap::new(),
            partial: HashMap::new(),
            cursor: None,
            full,
            expired: false,
            no_cursor: false,
            listed: 0,
            errors: Vec::new(),
            left_out: Vec::new(),
        }
    }
}

/// Everything planning needs, gathered with I/O.
struct Declared<R: Record> {
    input: PlanInput<R>,
    crm_cursor: Option<Cursor>,
    provider_cursor: Option<Cursor>,
    /// Sides whose listing gave no cursor: their stored cursor is dropped after the run.
    without_cursor: Vec<Side>,
    /// Records left out by the cap in an earlier run and not read again in this one.
    cap_held: usize,
    /// Records the stores left out of the synced set, per side.
    left_out: Vec<(Side, crate::store::LeftOut)>,
    intents: Vec<Intent>,
    deferred: Vec<Deferred>,
    report: SyncReport,
}

impl<R: Record> Syncer<R> {
    /// A syncer with default options, the system clock and no deletion gate (deletions to
    /// confirm wait, listed in the report).
    pub fn new(
        crm: Arc<dyn RecordStore<R>>,
        crm_collection: CollectionId,
        provider: Arc<dyn RecordStore<R>>,
        provider_collection: CollectionId,
        state: Arc<dyn SyncState>,
        account: AccountId,
        policy: FieldPolicy<R::Field>,
    ) -> Self {
        // CRM link keys are written scoped to this account's collection (see `LinkScope`).
        let scope = LinkScope::new(&account, &provider_collection);
        Syncer {
            crm: Arc::new(scope::ScopedCrm::new(crm, scope)),
            crm_collection,
            provider,
            provider_collection,
            state,
            account,
            policy,
            options: SyncOptions::for_record::<R>(),
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(crate::time::ThreadSleeper),
            gate: None,
            resolver: None,
            progress: None,
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn with_options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// The options, to adjust.
    pub fn options_mut(&mut self) -> &mut SyncOptions {
        &mut self.options
    }

    /// Sets the clock ("now" for windows, cursors and reports).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the sleeper used between the engine's retries of a store that does not retry
    /// itself (default: a real wait, [`ThreadSleeper`](crate::ThreadSleeper)).
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Sets the deletion gate.
    #[must_use]
    pub fn with_deletion_gate(mut self, gate: Arc<dyn DeletionGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Sets the conflict resolver used by [`ConflictStrategy::Callback`].
    #[must_use]
    pub fn with_conflict_resolver(mut self, resolver: Arc<dyn ConflictResolver<R::Field>>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Sets the progress receiver.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The state key of this pair.
    pub fn key(&self) -> StateKey {
        StateKey::new(
            self.account.clone(),
            R::KIND,
            self.provider_collection.clone(),
        )
    }

    fn store(&self, side: Side) -> &dyn RecordStore<R> {
        match side {
            Side::Crm => self.crm.as_ref(),
            Side::Provider => self.provider.as_ref(),
        }
    }

    fn collection(&self, side: Side) -> &CollectionId {
        match side {
            Side::Crm => &self.crm_collection,
            Side::Provider => &self.provider_collection,
        }
    }

    fn progress(&self, phase: Phase, done: u64, total: Option<u64>) {
        if let Some(p) = &self.progress {
            p.update(phase, done, total);
        }
    }

    /// The dry run: what [`sync`](Self::sync) would do now. Writes nothing, not even to
    /// the state.
    ///
    /// # Errors
    /// A listing that fails after retries, or the state failing.
    pub async fn plan(&self) -> Result<Plan<R>> {
        let requests = Requests::default();
        let declared = self
            .declare(RunKind::Plan, None, WritableSides::BOTH, &requests)
            .await?;
        Ok(with_left_out(
            plan::plan(&declared.input),
            declared.left_out,
        ))
    }

    /// A two-way sync under the policy.
    ///
    /// # Errors
    /// Only what stops the whole run: a listing that fails after retries, the state
    /// failing, re-authorisation needed. Per-record failures are in the report.
    pub async fn sync(&self) -> Result<SyncReport> {
        self.run(RunKind::Sync, None, WritableSides::BOTH).await
    }

    /// Provider → CRM only, as at start-up: the provider's changes are applied to the CRM
    /// (deletions included, as the policy says); nothing is written to the provider.
    ///
    /// # Errors
    /// As [`sync`](Self::sync).
    pub async fn pull(&self) -> Result<SyncReport> {
        self.run(
            RunKind::Pull,
            None,
            WritableSides {
                crm: true,
                provider: false,
            },
        )
        .await
    }

    /// The CRM just changed these records: write them to the provider, one write each, no
    /// listing.
    ///
    /// # Errors
    /// As [`sync`](Self::sync).
    pub async fn push(&self, crm_ids: &[CrmId]) -> Result<SyncReport> {
        self.run(
            RunKind::Push,
            Some(crm_ids),
            WritableSides {
                crm: false,
                provider: true,
            },
        )
        .await
    }

    /// Forgets this pair's links, baselines, intents, deferred items and cursors; with
    /// `remove_remote_copies`, first deletes the provider copies crmsync made or linked.
    /// A later sync re-links by link key, so nothing is duplicated. A copy that could not
    /// be deleted (the provider failing, the account signed out) keeps its link, so running
    /// the reset again removes it.
    ///
    /// # Errors
    /// The state failing; per-record deletion failures are in the report.
    pub async fn reset(&self, remove_remote_copies: bool) -> Result<(SyncReport, ResetCounts)> {
        let key = self.key();
        let started = self.clock.now();
        let mut report = SyncReport::new(RunKind::Reset, key.to_string(), started);
        // Links whose copy could not be removed are kept: forgotten, the copy would stay
        // on the provider with nothing left to remove it (run the reset again).
        let mut kept: Vec<Link> = Vec::new();
        if remove_remote_copies {
            // Only the copies crmsync made: they carry the CRM id as their link key. A
            // provider record that was merely linked (the user's own event, matched by
            // natural key or copied into the CRM) is the user's data and stays.
            let requests = Requests::default();
            let mut ops: Vec<WriteOp<R>> = Vec::new();
            let mut targets: Vec<Link> = Vec::new();
            for link in self.state.links(&key).await? {
                let id: ItemId = link.remote_id.clone().into();
                let found = self
                    .retrying(Side::Provider, &requests, || {
                        self.provider.get(&self.provider_collection, &id)
                    })
                    .await;
                match found {
                    Ok(Some(item))
                        if item
                            .link_key
                            .as_ref()
                            .is_some_and(|k| k.as_str() == link.crm_id.as_str()) =>
                    {
                        ops.push(WriteOp::Delete {
                            id,
                            expected: item.version,
                        });
                        targets.push(link);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        report.errors.push(RecordError::new(
                            Side::Provider,
                            Some(id.to_string()),
                            &e,
                        ));
                        kept.push(link);
                    }
                }
            }
            let results = self.write_ops(Side::Provider, ops, &requests).await;
            for (link, result) in targets.into_iter().zip(results) {
                match result {
                    Ok(_) => report.provider.deleted += 1,
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound) => {}
                    Err(e) => {
                        report.errors.push(RecordError::new(
                            Side::Provider,
                            Some(link.remote_id.to_string()),
                            &e,
                        ));
                        kept.push(link);
                    }
                }
            }
            report.provider.requests = requests.get(Side::Provider);
        }
        let mut counts = self
            .state
            .reset(&ResetScope {
                account: self.account.clone(),
                kind: Some(R::KIND.to_owned()),
                collection: Some(self.provider_collection.clone()),
            })
            .await?;
        if !kept.is_empty() {
            counts.links -= kept.len() as u64;
            self.state
                .commit(&key, kept.into_iter().map(StateOp::PutLink).collect())
                .await?;
        }
        report.unlinked = counts.links;
        report.duration_ms = duration_ms(started, self.clock.now());
        Ok((report, counts))
    }

    /// Runs and records the outcome in the state: the account's status (ok, needs
    /// re-authorisation with the cause, or failing with the error) and the run's summary.
    async fn run(
        &self,
        kind: RunKind,
        push: Option<&[CrmId]>,
        writable: WritableSides,
    ) -> Result<SyncReport> {
        let result = self.run_once(kind, push, writable).await;
        let status = match &result {
            Ok(_) => AccountStatus::Ok,
            Err(e) => match e.kind() {
                ErrorKind::ReauthorizationRequired { cause } => {
                    AccountStatus::NeedsReauthorization {
                        cause: cause.clone(),
                    }
                }
                _ => AccountStatus::Failing {
                    last_error: e.to_string(),
                },
            },
        };
        // Recording the outcome must not hide the run's own error.
        if let Err(e) = self.state.set_account_status(&self.account, status).await {
            tracing::warn!(error = %e, "could not record the account status");
        }
        if let Ok(report) = &result {
            let summary = RunSummary {
                started_at: report.started_at,
                finished_at: self.clock.now(),
                written: report.written(),
                conflicts: report.conflicts.len() as u64,
                errors: report.errors.len() as u64,
                text: report.one_line(),
            };
            if let Err(e) = self.state.set_last_run(&self.account, summary).await {
                tracing::warn!(error = %e, "could not record the run summary");
            }
        }
        result
    }

    async fn run_once(
        &self,
        kind: RunKind,
        push: Option<&[CrmId]>,
        writable: WritableSides,
    ) -> Result<SyncReport> {
        let requests = Requests::default();
        let key = self.key();
        let declared = self.declare(kind, push, writable, &requests).await?;
        let Declared {
            input,
            crm_cursor,
            provider_cursor,
            without_cursor,
            cap_held,
            left_out,
            intents,
            deferred,
            mut report,
        } = declared;
        let window = input.window;
        let linked_total = input.linked_total;
        self.progress(Phase::Planning, 0, None);
        let plan = with_left_out(plan::plan(&input), left_out);
        report.limit = plan.limit.clone();
        if cap_held > 0
            && let Some(cap) = self.options.guards.cap
        {
            let limit = report.limit.get_or_insert(LimitReport {
                cap,
                linked: linked_total,
                left_out: 0,
            });
            limit.left_out += cap_held;
        }
        if let Some(trip) = &plan.guard {
            report.guard = Some(trip.clone());
            report.crm.requests = requests.get(Side::Crm);
            report.provider.requests = requests.get(Side::Provider);
            report.duration_ms = duration_ms(report.started_at, self.clock.now());
            return Ok(report);
        }
        let written = self
            .execute(&key, plan, &intents, &deferred, &mut report, &requests)
            .await?;

        // Everything up to the new cursors is recorded (written, linked or deferred): the
        // cursors may advance.
        let mut ops = Vec::new();
        for (side, cursor) in [(Side::Crm, crm_cursor), (Side::Provider, provider_cursor)] {
            if let Some(cursor) = cursor {
                ops.push(StateOp::SetCursor {
                    side,
                    cursor: Some(CursorState {
                        cursor,
                        taken_at: report.started_at,
                        window,
                    }),
                });
            }
        }
        for side in without_cursor {
            ops.push(StateOp::SetCursor { side, cursor: None });
        }
        if !ops.is_empty() {
            self.state.commit(&key, ops).await?;
        }
        for side in [Side::Crm, Side::Provider] {
            let touched = written.get(&side).copied().unwrap_or(0);
            report.side_mut(side).unchanged = (linked_total as u64).saturating_sub(touched);
            report.side_mut(side).requests = requests.get(side);
        }
        report.duration_ms = duration_ms(report.started_at, self.clock.now());
        self.progress(Phase::Done, 1, Some(1));
        Ok(report)
    }

    /// Calls a store, retrying retryable errors when the store does not retry its own calls
    /// (see [`Capabilities::retries_itself`](crate::store::Capabilities::retries_itself)):
    /// exactly one policy decides the retries of any call. Waits as the error asks
    /// (`Retry-After`), else backs off exponentially.
    async fn retrying<T, Fut>(
        &self,
        side: Side,
        requests: &Requests,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            requests.add(side, 1);
            match call().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.is_retryable()
                        && attempt < self.options.max_retries
                        && !self.store(side).capabilities().retries_itself =>
                {
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(500 * (1 << attempt.min(6))));
                    tracing::debug!(%side, attempt, ?wait, error = %e, "retrying");
                    self.sleeper.sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Lists one side: its change feed since the cursor, or a full listing in the window.
    async fn list(
        &self,
        side: Side,
        key: &StateKey,
        window: Option<Window>,
        now: DateTime<Utc>,
        requests: &Requests,
    ) -> Result<Listing<R>> {
        let store = self.store(side);
        let caps = store.capabilities();
        let stored = self.state.cursor(key, side).await?;
        let cursor = stored.as_ref().and_then(|c| {
            let too_old = self
                .options
                .max_cursor_age
                .is_some_and(|max| (now - c.taken_at).to_std().unwrap_or_default() > max);
            let window_moved = c.window != window;
            (caps.incremental && !too_old && !window_moved).then(|| c.cursor.clone())
        });
        let mut listing = Listing::empty(cursor.is_none());
        let mut current = cursor;
        let mut page_token = None;
        loop {
            self.progress(Phase::Listing(side), listing.listed, None);
            let request = ChangesRequest {
                cursor: current.clone(),
                page_token: page_token.clone(),
                window: if current.is_none() { window } else { None },
                page_size: None,
            };
            let page = match self
                .retrying(side, requests, || {
                    store.changes(self.collection(side), request.clone())
                })
                .await
            {
                Ok(page) => page,
                Err(e) if matches!(e.kind(), ErrorKind::CursorExpired) && current.is_some() => {
                    tracing::info!(%side, "cursor expired: reconciling a full listing");
                    listing = Listing {
                        expired: true,
                        ..Listing::empty(true)
                    };
                    current = None;
                    page_token = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for Upsert {
                item,
                sent,
                modified,
            } in page.upserts
            {
                listing.listed += 1;
                if let Some(fields) = sent {
                    listing.partial.insert(item.id.clone(), fields);
                } else {
                    listing.partial.remove(&item.id);
                }
                listing
                    .observed
                    .insert(item.id.clone(), Observed::Present { item, modified });
            }
            // Removals that do not say why are checked with a read, but only for linked
            // items: an item never linked has nothing to delete on the other side.
            let unknown: Vec<ItemId> = page
                .removals
                .iter()
                .filter(|r| r.reason == RemovalReason::Unknown)
                .map(|r| r.id.clone())
                .collect();
            let linked_unknown: HashSet<ItemId> = if unknown.is_empty() {
                HashSet::new()
            } else {
                match side {
                    Side::Crm => {
                        let ids: Vec<CrmId> = unknown.into_iter().map(CrmId::from).collect();
                        self.state
                            .links_by_crm(key, &ids)
                            .await?
                            .into_iter()
                            .map(|l| l.crm_id.into())
                            .collect()
                    }
                    Side::Provider => {
                        let ids: Vec<RemoteId> = unknown.into_iter().map(RemoteId::from).collect();
                        self.state
                            .links_by_remote(key, &ids)
                            .await?
                            .into_iter()
                            .map(|l| l.remote_id.into())
                            .collect()
                    }
                }
            };
            for removal in page.removals {
                match removal.reason {
                    RemovalReason::Deleted => {
                        listing.observed.insert(removal.id, Observed::Deleted);
                    }
                    // Leaving the window is not a deletion: the copy stays linked as it is.
                    RemovalReason::LeftWindow => {
                        listing.observed.remove(&removal.id);
                    }
                    RemovalReason::Unknown if !linked_unknown.contains(&removal.id) => {
                        listing.observed.remove(&removal.id);
                    }
                    RemovalReason::Unknown => {
                        let found = self
                            .retrying(side, requests, || {
                                store.get(self.collection(side), &removal.id)
                            })
                            .await?;
                        match found {
                            Some(item) => {
                                listing.observed.insert(
                                    removal.id,
                                    Observed::Present {
                                        item,
                                        modified: None,
                                    },
                                );
                            }
                            None => {
                                listing.observed.insert(removal.id, Observed::Deleted);
                            }
                        }
                    }
                }
            }
            listing.left_out.extend(page.left_out);
            for bad in page.unreadable {
                listing.errors.push(RecordError::new(
                    side,
                    bad.id.map(|i| i.to_string()),
                    &bad.error,
                ));
            }
            match page.next {
                Continuation::NextPage(token) => page_token = Some(token),
                Continuation::Done(cursor) => {
                    listing.cursor = Some(cursor);
                    return Ok(listing);
                }
                Continuation::DoneWithoutCursor => {
                    tracing::warn!(
                        %side,
                        "the listing ended without a cursor: the next run lists in full again"
                    );
                    listing.cursor = None;
                    listing.no_cursor = true;
                    return Ok(listing);
                }
            }
        }
    }

    /// Gathers what planning needs: listings, links, intents, deferred items.
    async fn declare(
        &self,
        kind: RunKind,
        push: Option<&[CrmId]>,
        writable: WritableSides,
        requests: &Requests,
    ) -> Result<Declared<R>> {
        let key = self.key();
        let now = self.clock.now();
        let window = self.options.window.map(|w| w.at(now));
        let mut report = SyncReport::new(kind, key.to_string(), now);

        // 1. Listings. A push lists nothing; a pull lists only the provider.
        let mut crm = Listing::empty(false);
        let mut provider = Listing::empty(false);
        match push {
            Some(ids) => {
                for id in ids {
                    let item_id: ItemId = id.clone().into();
                    let found = self
                        .retrying(Side::Crm, requests, || {
                            self.crm.get(&self.crm_collection, &item_id)
                        })
                        .await?;
                    let obs = match found {
                        Some(item) => Observed::Present {
                            item,
                            modified: None,
                        },
                        None => Observed::Deleted,
                    };
                    crm.observed.insert(item_id, obs);
                }
            }
            None => {
                if kind != RunKind::Pull {
                    crm = self.list(Side::Crm, &key, window, now, requests).await?;
                }
                provider = self
                    .list(Side::Provider, &key, window, now, requests)
                    .await?;
            }
        }

        // 2. Intents left by a crash between a create and its commit (or by a create whose
        // answer was lost): find the copy by its link key, so it is linked rather than
        // created again. A lookup or read that fails is that record's error, never the
        // run's: its intent stays and its source is held back from this run's plan, so no
        // second create goes out while the first may exist (the next run looks again).
        let mut intents = self.state.intents(&key).await?;
        let mut deferred = self.state.deferred(&key).await?;
        // In a fixed order, whatever order the state keeps them in (reproducible runs).
        intents.sort_by(|a, b| (a.target, &a.source_id).cmp(&(b.target, &b.source_id)));
        deferred.sort_by(|a, b| (a.side, &a.id).cmp(&(b.side, &b.id)));
        let mut held: Vec<Intent> = Vec::new();
        for intent in &intents {
            let source_side = intent.target.opposite();
            let found = match self
                .retrying(intent.target, requests, || {
                    self.store(intent.target)
                        .find_by_link_key(self.collection(intent.target), &intent.link_key)
                })
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    report.errors.push(RecordError::new(
                        source_side,
                        Some(intent.source_id.to_string()),
                        &e,
                    ));
                    held.push(intent.clone());
                    continue;
                }
            };
            // A store's lookup is checked here too: an item carrying another key is not
            // the copy (a server that ignored the lookup's filter).
            let found = found.filter(|item| item.link_key.as_ref() == Some(&intent.link_key));
            if let Some(item) = found {
                let target_listing = match intent.target {
                    Side::Crm => &mut crm,
                    Side::Provider => &mut provider,
                };
                target_listing
                    .observed
                    .entry(item.id.clone())
                    .or_insert(Observed::Present {
                        item,
                        modified: None,
                    });
            }
            let source_listing = match source_side {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            if !source_listing.observed.contains_key(&intent.source_id) {
                let found = self
                    .retrying(source_side, requests, || {
                        self.store(source_side)
                            .get(self.collection(source_side), &intent.source_id)
                    })
                    .await;
                match found {
                    Ok(Some(item)) => {
                        source_listing.observed.insert(
                            intent.source_id.clone(),
                            Observed::Present {
                                item,
                                modified: None,
                            },
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        report.errors.push(RecordError::new(
                            source_side,
                            Some(intent.source_id.to_string()),
                            &e,
                        ));
                        held.push(intent.clone());
                    }
                }
            }
        }
        // Held intents are not handed to the executor (which clears the intents it is
        // given): they stay in the state as they are.
        intents.retain(|i| !held.contains(i));

        // 3. Deferred items are read again and planned with the rest. One that cannot be
        // read now stays deferred as it is (it is not handed to the executor, which clears
        // the deferred items it was given).
        let mut unreadable_deferred: HashSet<(Side, ItemId)> = HashSet::new();
        // Records left out by the cap are read again only as far as the cap leaves room:
        // at the cap, a run reads none of them (they stay deferred as they are, and the
        // report still counts them as left out).
        let mut cap_room = match self.options.guards.cap {
            Some(cap)
                if deferred
                    .iter()
                    .any(|d| d.reason == DeferredReason::CapReached) =>
            {
                Some(cap.saturating_sub(self.linked_count(&key).await?))
            }
            _ => None,
        };
        let mut cap_held = 0usize;
        for d in &deferred {
            if d.reason == DeferredReason::CapReached
                && let Some(room) = cap_room.as_mut()
            {
                let listed = match d.side {
                    Side::Crm => crm.observed.contains_key(&d.id),
                    Side::Provider => provider.observed.contains_key(&d.id),
                };
                if !listed {
                    if *room == 0 {
                        cap_held += 1;
                        unreadable_deferred.insert((d.side, d.id.clone()));
                        continue;
                    }
                    *room -= 1;
                }
            }
            let listing = match d.side {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            if listing.observed.contains_key(&d.id) {
                continue;
            }
            let found = self
                .retrying(d.side, requests, || {
                    self.store(d.side).get(self.collection(d.side), &d.id)
                })
                .await;
            match found {
                Ok(Some(item)) => {
                    listing.observed.insert(
                        d.id.clone(),
                        Observed::Present {
                            item,
                            modified: None,
                        },
                    );
                }
                Ok(None) => {
                    listing.observed.insert(d.id.clone(), Observed::Deleted);
                }
                Err(e) => {
                    report
                        .errors
                        .push(RecordError::new(d.side, Some(d.id.to_string()), &e));
                    unreadable_deferred.insert((d.side, d.id.clone()));
                }
            }
        }
        deferred.retain(|d| !unreadable_deferred.contains(&(d.side, d.id.clone())));

        // 4. Links of everything observed (all of them after a full listing), including the
        // items read again for intents and deferred items above: a deferred deletion whose
        // link were not loaded would be forgotten.
        let linked_total;
        let mut links: HashMap<CrmId, Link> = HashMap::new();
        if crm.full || provider.full {
            for l in self.state.links(&key).await? {
                links.insert(l.crm_id.clone(), l);
            }
            linked_total = links.len();
        } else {
            let crm_ids: Vec<CrmId> = crm.observed.keys().cloned().map(CrmId::from).collect();
            let remote_ids: Vec<RemoteId> = provider
                .observed
                .keys()
                .cloned()
                .map(RemoteId::from)
                .collect();
            for l in self.state.links_by_crm(&key, &crm_ids).await? {
                links.insert(l.crm_id.clone(), l);
            }
            for l in self.state.links_by_remote(&key, &remote_ids).await? {
                links.insert(l.crm_id.clone(), l);
            }
            linked_total = self.linked_count(&key).await?;
        }

        // 4b. A crash after an edit kept a record alive by recreating its deleted copy, and
        // before the new link was committed: the intent's copy replaces the gone one in the
        // pair's link, or the next run would recreate it again (a duplicate).
        for intent in &intents {
            let target = intent.target;
            let copy = match target {
                Side::Crm => crm.observed.values().find_map(|o| match o {
                    Observed::Present { item, .. }
                        if item.link_key.as_ref() == Some(&intent.link_key) =>
                    {
                        Some(item.clone())
                    }
                    _ => None,
                }),
                Side::Provider => provider.observed.values().find_map(|o| match o {
                    Observed::Present { item, .. }
                        if item.link_key.as_ref() == Some(&intent.link_key) =>
                    {
                        Some(item.clone())
                    }
                    _ => None,
                }),
            };
            let Some(copy) = copy else { continue };
            let stale = links.values().find(|l| match target {
                Side::Crm => {
                    l.remote_id.as_str() == intent.source_id.as_str()
                        && l.crm_id.as_str() != copy.id.as_str()
                }
                Side::Provider => {
                    l.crm_id.as_str() == intent.source_id.as_str()
                        && l.remote_id.as_str() != copy.id.as_str()
                }
            });
            let Some(stale) = stale.cloned() else {
                // The copy was made, then its source was deleted before the link was
                // committed: it is an orphan of ours. Plan it as a linked pair whose source
                // is gone, so the deletion policy decides (rather than copying it back).
                let source_side = target.opposite();
                let source_gone = !matches!(
                    match source_side {
                        Side::Crm => crm.observed.get(&intent.source_id),
                        Side::Provider => provider.observed.get(&intent.source_id),
                    },
                    Some(Observed::Present { .. })
                );
                let copy_linked = links.values().any(|l| match target {
                    Side::Crm => l.crm_id.as_str() == copy.id.as_str(),
                    Side::Provider => l.remote_id.as_str() == copy.id.as_str(),
                });
                if source_gone && !copy_linked {
                    let (crm_id, remote_id, crm_version, remote_version): (
                        CrmId,
                        RemoteId,
                        Option<crate::ids::Version>,
                        Option<crate::ids::Version>,
                    ) = match target {
                        Side::Provider => (
                            intent.source_id.clone().into(),
                            copy.id.clone().into(),
                            None,
                            Some(copy.version.clone()),
                        ),
                        Side::Crm => (
                            copy.id.clone().into(),
                            intent.source_id.clone().into(),
                            Some(copy.version.clone()),
                            None,
                        ),
                    };
                    match source_side {
                        Side::Crm => crm
                            .observed
                            .insert(intent.source_id.clone(), Observed::Deleted),
                        Side::Provider => provider
                            .observed
                            .insert(intent.source_id.clone(), Observed::Deleted),
                    };
                    links.insert(
                        crm_id.clone(),
                        Link {
                            crm_id,
                            remote_id,
                            crm_version,
                            remote_version,
                            baseline: copy.record.canonical(),
                            synced_at: now,
                            pending: Vec::new(),
                        },
                    );
                }
                continue;
            };
            let old: ItemId = match target {
                Side::Crm => stale.crm_id.clone().into(),
                Side::Provider => stale.remote_id.clone().into(),
            };
            let target_listing = match target {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            let gone = match target_listing.observed.get(&old) {
                Some(Observed::Deleted) => true,
                Some(Observed::Present { .. }) => false,
                None => self
                    .retrying(target, requests, || {
                        self.store(target).get(self.collection(target), &old)
                    })
                    .await?
                    .is_none(),
            };
            if !gone {
                continue;
            }
            target_listing.observed.remove(&old);
            links.remove(stale.crm_id.as_str());
            let mut link = stale;
            match target {
                Side::Crm => {
                    link.crm_id = copy.id.clone().into();
                    link.crm_version = None;
                }
                Side::Provider => {
                    link.remote_id = copy.id.clone().into();
                    link.remote_version = None;
                }
            }
            links.insert(link.crm_id.clone(), link);
        }

        // 5. Unlinked copies carrying a link key whose counterpart was not listed: read the
        // counterpart, so the pair is relinked rather than duplicated.
        for (side, other) in [(Side::Provider, Side::Crm), (Side::Crm, Side::Provider)] {
            let (this, that) = match side {
                Side::Provider => (&provider, &mut crm),
                Side::Crm => (&crm, &mut provider),
            };
            let mut wanted: Vec<ItemId> = Vec::new();
            let linked_remote: HashSet<&str> =
                links.values().map(|l| l.remote_id.as_str()).collect();
            for obs in this.observed.values() {
                if let Observed::Present { item, .. } = obs {
                    let linked = match side {
                        Side::Provider => linked_remote.contains(item.id.as_str()),
                        Side::Crm => links.contains_key(item.id.as_str()),
                    };
                    if let (false, Some(key)) = (linked, &item.link_key)
                        && let Ok(id) = ItemId::new(key.as_str())
                        && !that.observed.contains_key(&id)
                    {
                        wanted.push(id);
                    }
                }
            }
            // In id order, so a run's calls (and a test's injected faults) do not depend on
            // a hash map's order.
            wanted.sort();
            wanted.dedup();
            for id in wanted {
                // Linked elsewhere? Then the copy is a duplicate; the planner says so.
                let existing = match other {
                    Side::Crm => {
                        self.state
                            .links_by_crm(&key, &[CrmId::from(id.clone())])
                            .await?
                    }
                    Side::Provider => {
                        self.state
                            .links_by_remote(&key, &[RemoteId::from(id.clone())])
                            .await?
                    }
                };
                if let Some(l) = existing.into_iter().next() {
                    links.insert(l.crm_id.clone(), l);
                    continue;
                }
                let found = self
                    .retrying(other, requests, || {
                        self.store(other).get(self.collection(other), &id)
                    })
                    .await?;
                // Gone: the planner must not copy the record back over a deletion.
                let observed = match found {
                    Some(item) => Observed::Present {
                        item,
                        modified: None,
                    },
                    None => Observed::Deleted,
                };
                that.observed.insert(id, observed);
            }
        }

        // 6. After a full listing, a linked item missing from it is either deleted or out
        // of the window: a deletion only if it was inside the window and is really gone.
        for side in [Side::Crm, Side::Provider] {
            let listing = match side {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            if !listing.full {
                continue;
            }
            let mut missing: Vec<(ItemId, bool)> = Vec::new();
            for l in links.values() {
                let id: ItemId = match side {
                    Side::Crm => l.crm_id.clone().into(),
                    Side::Provider => l.remote_id.clone().into(),
                };
                if !listing.observed.contains_key(&id) {
                    // Without a time span in the baseline (a contact), a record is inside.
                    let inside = match (window, R::canonical_time_span(&l.baseline)) {
                        (Some(w), Some((start, end))) => start < w.end && end > w.start,
                        _ => true,
                    };
                    missing.push((id, inside));
                }
            }
            missing.sort();
            for (id, inside) in missing {
                if !inside {
                    continue;
                }
                let found = self
                    .retrying(side, requests, || {
                        self.store(side).get(self.collection(side), &id)
                    })
                    .await?;
                match found {
                    Some(item) => {
                        listing.observed.insert(
                            id,
                            Observed::Present {
                                item,
                                modified: None,
                            },
                        );
                    }
                    None => {
                        listing.observed.insert(id, Observed::Deleted);
                    }
                }
            }
        }

        // 6b. An unlinked copy carrying a pair's link key, while the pair's linked copy on
        // that side is gone, is the same record under a new id (People merges contacts
        // and renames them, listing `previousResourceNames`; a user restores a copy). The
        // link moves to it, so the pair is neither deleted nor duplicated.
        for side in [Side::Crm, Side::Provider] {
            let listing = match side {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            let linked_here: HashSet<String> = links
                .values()
                .map(|l| match side {
                    Side::Crm => l.crm_id.to_string(),
                    Side::Provider => l.remote_id.to_string(),
                })
                .collect();
            let mut moves: Vec<(CrmId, ItemId, ItemId)> = Vec::new();
            for obs in listing.observed.values() {
                let Observed::Present { item, .. } = obs else {
                    continue;
                };
                let Some(key) = &item.link_key else { continue };
                if linked_here.contains(item.id.as_str()) {
                    continue;
                }
                let pair = match side {
                    // A provider copy's key is the CRM id; a CRM copy's, the remote id.
                    Side::Provider => links.get(key.as_str()),
                    Side::Crm => links
                        .values()
                        .find(|l| l.remote_id.as_str() == key.as_str()),
                };
                if let Some(link) = pair {
                    let old: ItemId = match side {
                        Side::Crm => link.crm_id.clone().into(),
                        Side::Provider => link.remote_id.clone().into(),
                    };
                    moves.push((link.crm_id.clone(), old, item.id.clone()));
                }
            }
            moves.sort();
            for (crm_id, old, new) in moves {
                let gone = match listing.observed.get(&old) {
                    Some(Observed::Deleted) => true,
                    Some(Observed::Present { .. }) => false,
                    // A store that follows renames answers for the old id with the new item.
                    None => self
                        .retrying(side, requests, || {
                            self.store(side).get(self.collection(side), &old)
                        })
                        .await?
                        .is_none_or(|found| found.id != old),
                };
                if !gone {
                    continue;
                }
                let Some(mut link) = links.remove(crm_id.as_str()) else {
                    continue;
                };
                tracing::info!(%side, %old, %new, "the linked copy has a new id: relinking");
                listing.observed.remove(&old);
                match side {
                    Side::Crm => {
                        link.crm_id = new.into();
                        link.crm_version = None;
                    }
                    Side::Provider => {
                        link.remote_id = new.into();
                        link.remote_version = None;
                    }
                }
                links.insert(link.crm_id.clone(), link);
            }
        }

        // 7. Partial upserts are merged with the last known copy (the baseline, as the side
        // holds it) before planning.
        for side in [Side::Crm, Side::Provider] {
            let caps = self.store(side).capabilities();
            let listing = match side {
                Side::Crm => &mut crm,
                Side::Provider => &mut provider,
            };
            let partial = std::mem::take(&mut listing.partial);
            // Partial copies with no link have nothing to be merged with: read them whole.
            let mut unlinked: Vec<ItemId> = Vec::new();
            for (id, fields) in partial {
                let link = match side {
                    Side::Crm => links.get(id.as_str()),
                    Side::Provider => links.values().find(|l| l.remote_id.as_str() == id.as_str()),
                };
                let Some(Observed::Present { item, .. }) = listing.observed.get_mut(&id) else {
                    continue;
                };
                let Some(link) = link else {
                    unlinked.push(id);
                    continue;
                };
                match R::from_canonical(&link.baseline, item.record.clone()) {
                    Ok(base) => {
                        let mut full = base.fit(&caps).record;
                        let mut failed = None;
                        for &f in R::Field::ALL {
                            if fields.contains(&f)
                                && let Err(e) = full.set_field(f, &item.record.field(f))
                            {
                                failed = Some(e);
                            }
                        }
                        match failed {
                            None => item.record = full,
                            Some(e) => {
                                report
                                    .errors
                                    .push(RecordError::new(side, Some(id.to_string()), &e))
                            }
                        }
                    }
                    Err(e) => report
                        .errors
                        .push(RecordError::new(side, Some(id.to_string()), &e)),
                }
            }
            unlinked.sort();
            for id in unlinked {
                let found = self
                    .retrying(side, requests, || {
                        self.store(side).get(self.collection(side), &id)
                    })
                    .await?;
                match (found, listing.observed.get_mut(&id)) {
                    (Some(whole), Some(Observed::Present { item, .. })) => *item = whole,
                    (None, _) => {
                        listing.observed.insert(id, Observed::Deleted);
                    }
                    _ => {}
                }
            }
        }

        for (side, listing) in [(Side::Crm, &crm), (Side::Provider, &provider)] {
            let s = report.side_mut(side);
            s.listed = listing.listed;
            s.full_listing =
                listing.full && push.is_none() && !(kind == RunKind::Pull && side == Side::Crm);
            s.cursor_expired = listing.expired;
            s.no_cursor = listing.no_cursor;
        }
        report.errors.append(&mut crm.errors);
        report.errors.append(&mut provider.errors);

        // Records whose intent could not be resolved wait for the next run, untouched: the
        // source, its linked counterpart if it has one (a deleted copy being recreated), any
        // copy carrying the intent's key, and their deferred items, which stay in the state
        // as they are (the executor clears only the deferred items it is given, so a
        // deletion observed through one is not forgotten).
        for intent in &held {
            let source_side = intent.target.opposite();
            let source = intent.source_id.as_str();
            // The pair the source belongs to, if linked: its CRM id and the counterpart.
            let pair: Option<(CrmId, ItemId)> = links
                .values()
                .find(|l| match intent.target {
                    Side::Provider => l.crm_id.as_str() == source,
                    Side::Crm => l.remote_id.as_str() == source,
                })
                .map(|l| {
                    let counterpart = match intent.target {
                        Side::Provider => l.remote_id.clone().into(),
                        Side::Crm => l.crm_id.clone().into(),
                    };
                    (l.crm_id.clone(), counterpart)
                });
            let counterpart = pair.as_ref().map(|(_, c)| c);
            let (source_listing, target_listing) = match intent.target {
                Side::Crm => (&mut provider, &mut crm),
                Side::Provider => (&mut crm, &mut provider),
            };
            source_listing.observed.remove(&intent.source_id);
            if let Some(c) = counterpart {
                target_listing.observed.remove(c);
            }
            target_listing.observed.retain(|_, o| match o {
                Observed::Present { item, .. } => item.link_key.as_ref() != Some(&intent.link_key),
                Observed::Deleted => true,
            });
            deferred.retain(|d| {
                !((d.side == source_side && d.id == intent.source_id)
                    || (d.side == intent.target && Some(&d.id) == counterpart))
            });
            if let Some((crm_id, _)) = &pair {
                links.remove(crm_id);
            }
        }

        let left_out = {
            let mut all = Vec::new();
            let remote_linked: HashSet<&str> = if provider.left_out.is_empty() {
                HashSet::new()
            } else {
                links.values().map(|l| l.remote_id.as_str()).collect()
            };
            for (side, listing) in [(Side::Crm, &mut crm), (Side::Provider, &mut provider)] {
                let linked = |id: &ItemId| match side {
                    Side::Crm => links.contains_key(id.as_str()),
                    Side::Provider => remote_linked.contains(id.as_str()),
                };
                for l in std::mem::take(&mut listing.left_out) {
                    if !listing.observed.contains_key(&l.id) && !linked(&l.id) {
                        all.push((side, l));
                    }
                }
            }
            all
        };

        let input = PlanInput {
            key: key.clone(),
            now,
            window,
            crm: crm.observed,
            provider: provider.observed,
            links: links.into_values().collect(),
            linked_total,
            crm_capabilities: self.crm.capabilities(),
            provider_capabilities: self.provider.capabilities(),
            policy: self.policy.clone(),
            resolver: self.resolver.clone(),
            guards: self.options.guards,
            match_natural_keys: self.options.match_natural_keys,
            writable,
        };
        Ok(Declared {
            input,
            cap_held,
            left_out,
            without_cursor: [
                (Side::Crm, crm.no_cursor),
                (Side::Provider, provider.no_cursor),
            ]
            .into_iter()
            .filter_map(|(side, none)| none.then_some(side))
            .collect(),
            crm_cursor: crm.cursor,
            provider_cursor: provider.cursor,
            intents,
            deferred,
            report,
        })
    }

    async fn linked_count(&self, key: &StateKey) -> Result<usize> {
        Ok(usize::try_from(self.state.link_count(key).await?).unwrap_or(usize::MAX))
    }

    /// Writes operations to one side in batches no larger than the store takes.
    async fn write_ops(
        &self,
        side: Side,
        ops: Vec<WriteOp<R>>,
        requests: &Requests,
    ) -> Vec<Result<WriteOutcome<R>>> {
        let store = self.store(side);
        let max = store.capabilities().max_batch.max(1);
        let max = self.options.batch_size.map_or(max, |b| max.min(b.max(1)));
        let mut results = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<WriteOp<R>> = ops.by_ref().take(max).collect();
            let n = chunk.len();
            requests.add(side, 1);
            let mut r = store.write_batch(self.collection(side), chunk).await;
            if r.len() != n {
                // A store that answers with the wrong number of results: none can be trusted.
                r = (0..n)
                    .map(|_| Err(Error::new(ErrorKind::Provider, format!("the {side} store answered a batch of {n} with a different number of results"))))
                    .collect();
            }
            results.extend(r);
        }
        results
    }

    /// Carries out a plan, batch by batch. Returns how many linked records were written per
    /// side.
    async fn execute(
        &self,
        key: &StateKey,
        plan: Plan<R>,
        intents: &[Intent],
        deferred: &[Deferred],
        report: &mut SyncReport,
        requests: &Requests,
    ) -> Result<HashMap<Side, u64>> {
        let now = self.clock.now();
        let mut actions = plan.actions;

        // Deletions to confirm go to the gate together, once.
        let pending: Vec<(usize, PendingDeletion)> = actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::ConfirmDeletion {
                    target,
                    crm_id,
                    remote_id,
                    ..
                } => Some((
                    i,
                    PendingDeletion {
                        target: *target,
                        crm_id: crm_id.to_string(),
                        remote_id: remote_id.to_string(),
                    },
                )),
                _ => None,
            })
            .collect();
        let mut awaiting: Vec<Deferred> = Vec::new();
        if !pending.is_empty() {
            let list: Vec<PendingDeletion> = pending.iter().map(|(_, p)| p.clone()).collect();
            let answers = match &self.gate {
                Some(gate) => gate.confirm(&list).await,
                None => vec![false; list.len()],
            };
            for ((i, p), yes) in pending
                .into_iter()
                .zip(answers.into_iter().chain(std::iter::repeat(false)))
            {
                if let Action::ConfirmDeletion {
                    target,
                    crm_id,
                    remote_id,
                    expected,
                } = actions[i].clone()
                {
                    if yes {
                        actions[i] = Action::Delete {
                            target,
                            crm_id,
                            remote_id,
                            expected,
                        };
                    } else {
                        let (side, id): (Side, ItemId) = match target {
                            Side::Provider => (Side::Crm, crm_id.into()),
                            Side::Crm => (Side::Provider, remote_id.into()),
                        };
                        awaiting.push(Deferred {
                            side,
                            id,
                            reason: DeferredReason::DeletionPending,
                            attempts: 1,
                            since: now,
                        });
                        report.pending_deletions.push(p);
                    }
                }
            }
        }

        // Deferred items read again in this run are cleared unless deferred again.
        let mut resolved_deferred: HashSet<(Side, ItemId)> =
            deferred.iter().map(|d| (d.side, d.id.clone())).collect();
        let previous_attempts: HashMap<(Side, ItemId), (u32, DateTime<Utc>)> = deferred
            .iter()
            .map(|d| ((d.side, d.id.clone()), (d.attempts, d.since)))
            .collect();
        let mut state_ops: Vec<StateOp> = Vec::new();
        for d in awaiting {
            resolved_deferred.remove(&(d.side, d.id.clone()));
            let attempts = previous_attempts
                .get(&(d.side, d.id.clone()))
                .map_or(1, |(a, _)| a + 1);
            let since = previous_attempts
                .get(&(d.side, d.id.clone()))
                .map_or(now, |(_, s)| *s);
            state_ops.push(StateOp::PutDeferred(Deferred {
                attempts,
                since,
                ..d
            }));
        }
        let defer_as = |side: Side,
                        id: ItemId,
                        reason: DeferredReason,
                        ops: &mut Vec<StateOp>,
                        resolved: &mut HashSet<(Side, ItemId)>| {
            resolved.remove(&(side, id.clone()));
            let (attempts, since) = previous_attempts
                .get(&(side, id.clone()))
                .map_or((1, now), |(a, s)| (a + 1, *s));
            ops.push(StateOp::PutDeferred(Deferred {
                side,
                id,
                reason,
                attempts,
                since,
            }));
        };
        let defer = |side: Side,
                     id: ItemId,
                     error: &Error,
                     ops: &mut Vec<StateOp>,
                     resolved: &mut HashSet<(Side, ItemId)>| {
            let reason = DeferredReason::Failed {
                error: error.to_string(),
                retryable: error.is_retryable(),
            };
            defer_as(side, id, reason, ops, resolved);
        };

        // Intents of this run's creates are written before the creates are sent.
        let leftover_intents: HashSet<(Side, ItemId)> = intents
            .iter()
            .map(|i| (i.target, i.source_id.clone()))
            .collect();
        // Once a pair is settled (linked, deleted, unlinked), an intent left for it by a
        // crash is resolved.
        let clear_intents = |crm_id: &CrmId, remote_id: &RemoteId, ops: &mut Vec<StateOp>| {
            for (target, source_id) in [
                (Side::Provider, ItemId::from(crm_id.clone())),
                (Side::Crm, ItemId::from(remote_id.clone())),
            ] {
                if leftover_intents.contains(&(target, source_id.clone())) {
                    ops.push(StateOp::ClearIntent { target, source_id });
                }
            }
        };
        let mut written: HashMap<Side, u64> = HashMap::new();
        let total = actions.len() as u64;
        // Actions are written and committed to the state in chunks as large as the larger
        // side's batch, so each chunk is one request per side and one state commit.
        let chunk_size = self
            .options
            .batch_size
            .unwrap_or_else(|| {
                self.crm
                    .capabilities()
                    .max_batch
                    .max(self.provider.capabilities().max_batch)
            })
            .clamp(1, 1000);
        let mut done = 0u64;
        let mut actions = actions.into_iter().peekable();
        while actions.peek().is_some() {
            let chunk: Vec<Action<R>> = actions.by_ref().take(chunk_size).collect();
            self.progress(Phase::Writing, done, Some(total));
            done += chunk.len() as u64;

            // Before anything is sent: an intent per create, and per update of a linked pair
            // the values about to be written, so that after a crash or a lost answer our own
            // writes are recognised rather than read as edits (or created twice).
            if !self.options.disable_intents_for_tests {
                let before_ops: Vec<StateOp> = chunk
                    .iter()
                    .filter_map(|a| match a {
                        Action::Create {
                            target,
                            source,
                            link_key,
                            ..
                        } => Some(StateOp::PutIntent(Intent {
                            target: *target,
                            source_id: source.id.clone(),
                            link_key: link_key.clone(),
                            created_at: now,
                        })),
                        Action::Merge(m) => {
                            let previous = m.previous.as_ref()?;
                            let pending = pending_writes(m);
                            (!pending.is_empty()).then(|| {
                                // Added to the pending writes of earlier runs, which may
                                // have landed as well.
                                StateOp::PutLink(Link {
                                    pending: merge_pending(
                                        previous.pending.iter().cloned(),
                                        pending,
                                    ),
                                    ..previous.clone()
                                })
                            })
                        }
                        _ => None,
                    })
                    .collect();
                if !before_ops.is_empty() {
                    self.state.commit(key, before_ops).await?;
                }
            }

            // Gather each side's writes, remembering which action each belongs to.
            let mut side_ops: HashMap<Side, Vec<(usize, WriteOp<R>)>> = HashMap::new();
            for (i, a) in chunk.iter().enumerate() {
                match a {
                    Action::Create {
                        target,
                        record,
                        link_key,
                        ..
                    } => side_ops.entry(*target).or_default().push((
                        i,
                        WriteOp::Create {
                            record: record.clone(),
                            link_key: link_key.clone(),
                        },
                    )),
                    Action::Merge(m) => {
                        for (side, w) in [
                            (Side::Crm, &m.crm_write),
                            (Side::Provider, &m.provider_write),
                        ] {
                            if let Some(w) = w {
                                side_ops.entry(side).or_default().push((
                                    i,
                                    WriteOp::Update {
                                        id: w.id.clone(),
                                        expected: w.expected.clone(),
                                        record: w.record.clone(),
                                        fields: w.fields.clone(),
                                    },
                                ));
                            }
                        }
                    }
                    Action::Delete {
                        target,
                        crm_id,
                        remote_id,
                        expected,
                    } => {
                        let id: ItemId = match target {
                            Side::Crm => crm_id.clone().into(),
                            Side::Provider => remote_id.clone().into(),
                        };
                        side_ops.entry(*target).or_default().push((
                            i,
                            WriteOp::Delete {
                                id,
                                expected: expected.clone(),
                            },
                        ));
                    }
                    _ => {}
                }
            }
            let mut outcomes: HashMap<(usize, Side), Result<WriteOutcome<R>>> = HashMap::new();
            for side in [Side::Provider, Side::Crm] {
                if let Some(list) = side_ops.remove(&side) {
                    let (idx, ops): (Vec<usize>, Vec<WriteOp<R>>) = list.into_iter().unzip();
                    let results = self.write_ops(side, ops, requests).await;
                    for (i, r) in idx.into_iter().zip(results) {
                        outcomes.insert((i, side), r);
                    }
                }
            }

            // A create that failed ambiguously (a lost response, a timeout) may have been
            // applied: look the copy up by its link key now, so it is linked with the
            // baseline this run knows rather than relinked later without one (where edits
            // made to the copy in between would read as conflicts).
            for (i, a) in chunk.iter().enumerate() {
                if let Action::Create {
                    target, link_key, ..
                } = a
                    && let Some(Err(e)) = outcomes.get(&(i, *target))
                    && matches!(
                        e.kind(),
                        ErrorKind::Transport | ErrorKind::Provider | ErrorKind::RateLimited { .. }
                    )
                    && self.store(*target).capabilities().link_keys
                    && let Ok(Some(found)) = self
                        .retrying(*target, requests, || {
                            self.store(*target)
                                .find_by_link_key(self.collection(*target), link_key)
                        })
                        .await
                {
                    outcomes.insert((i, *target), Ok(WriteOutcome::Written(found)));
                }
            }

            // Record each action's result.
            for (i, action) in chunk.into_iter().enumerate() {
                match action {
                    Action::Create {
                        target,
                        source,
                        baseline,
                        losses,
                        replaces,
                        link_key: _,
                        record: _,
                    } => {
                        let source_side = target.opposite();
                        // A copy made again over a deletion that did not get made: the
                        // deleted copy's id is read again next run, or the deletion (already
                        // past the cursor) would be forgotten.
                        if let (Some(gone), Some(Err(e))) = (&replaces, outcomes.get(&(i, target)))
                        {
                            let e = e.clone();
                            defer(
                                target,
                                gone.clone(),
                                &e,
                                &mut state_ops,
                                &mut resolved_deferred,
                            );
                        }
                        match outcomes.remove(&(i, target)) {
                            Some(Ok(WriteOutcome::Written(created))) => {
                                let (crm_id, remote_id, crm_version, remote_version) = match target
                                {
                                    Side::Provider => (
                                        source.id.clone().into(),
                                        created.id.clone().into(),
                                        source.version.clone(),
                                        created.version.clone(),
                                    ),
                                    Side::Crm => (
                                        created.id.clone().into(),
                                        source.id.clone().into(),
                                        created.version.clone(),
                                        source.version.clone(),
                                    ),
                                };
                                state_ops.push(StateOp::PutLink(Link {
                                    crm_id,
                                    remote_id,
                                    crm_version: Some(crm_version),
                                    remote_version: Some(remote_version),
                                    baseline,
                                    synced_at: now,
                                    pending: Vec::new(),
                                }));
                                state_ops.push(StateOp::ClearIntent {
                                    target,
                                    source_id: source.id.clone(),
                                });
                                report.side_mut(target).created += 1;
                                report.linked += 1;
                                for loss in losses {
                                    report.losses.push(LossReport {
                                        id: source.id.to_string(),
                                        side: target,
                                        loss,
                                    });
                                }
                            }
                            Some(Ok(WriteOutcome::Deleted)) | None => {
                                let e = Error::new(
                                    ErrorKind::Provider,
                                    "a create was answered as a deletion",
                                );
                                report.errors.push(RecordError::new(
                                    source_side,
                                    Some(source.id.to_string()),
                                    &e,
                                ));
                                defer(
                                    source_side,
                                    source.id.clone(),
                                    &e,
                                    &mut state_ops,
                                    &mut resolved_deferred,
                                );
                            }
                            Some(Err(e)) => {
                                // The create may have happened (a lost response): the intent
                                // stays, so the next run looks the copy up by its link key.
                                // Only a refusal that cannot have created anything clears
                                // it. An invalid record is not one: a server may have stored
                                // the copy and sent an answer we cannot read (a time without
                                // offset, a field out of range), and it is the same error
                                // kind as a refusal. Keeping the intent costs one lookup next
                                // run; clearing it wrongly costs a duplicate every run.
                                let definite = matches!(
                                    e.kind(),
                                    ErrorKind::Unsupported
                                        | ErrorKind::AccessDenied
                                        | ErrorKind::InvalidInput
                                );
                                if definite {
                                    state_ops.push(StateOp::ClearIntent {
                                        target,
                                        source_id: source.id.clone(),
                                    });
                                }
                                report.errors.push(RecordError::new(
                                    source_side,
                                    Some(source.id.to_string()),
                                    &e,
                                ));
                                defer(
                                    source_side,
                                    source.id.clone(),
                                    &e,
                                    &mut state_ops,
                                    &mut resolved_deferred,
                                );
                            }
                        }
                    }
                    Action::Merge(m) => {
                        let m = *m;
                        let mut crm_version = m.crm_version.clone();
                        let mut remote_version = m.remote_version.clone();
                        let mut failed: Vec<(Side, Error)> = Vec::new();
                        for side in [Side::Crm, Side::Provider] {
                            let planned = match side {
                                Side::Crm => m.crm_write.is_some(),
                                Side::Provider => m.provider_write.is_some(),
                            };
                            if !planned {
                                continue;
                            }
                            match outcomes.remove(&(i, side)) {
                                Some(Ok(WriteOutcome::Written(stored))) => {
                                    match side {
                                        Side::Crm => crm_version = stored.version,
                                        Side::Provider => remote_version = stored.version,
                                    }
                                    report.side_mut(side).updated += 1;
                                    *written.entry(side).or_default() += 1;
                                }
                                Some(Ok(WriteOutcome::Deleted)) | None => failed.push((
                                    side,
                                    Error::new(
                                        ErrorKind::Provider,
                                        "an update was answered as a deletion",
                                    ),
                                )),
                                Some(Err(e)) => failed.push((side, e)),
                            }
                        }
                        if failed.is_empty() {
                            state_ops.push(StateOp::PutLink(Link {
                                crm_id: m.crm_id.clone(),
                                remote_id: m.remote_id.clone(),
                                crm_version: Some(crm_version),
                                remote_version: Some(remote_version),
                                baseline: m.baseline,
                                synced_at: now,
                                pending: Vec::new(),
                            }));
                            if m.linked_by.is_some() {
                                report.linked += 1;
                            }
                            // A pair linked with a copy found by an intent's link key (a
                            // relink, or a link substituted in declare) resolves the intent.
                            for target in [Side::Crm, Side::Provider] {
                                let source_id: ItemId = match target {
                                    Side::Provider => m.crm_id.clone().into(),
                                    Side::Crm => m.remote_id.clone().into(),
                                };
                                if leftover_intents.contains(&(target, source_id.clone())) {
                                    state_ops.push(StateOp::ClearIntent { target, source_id });
                                }
                            }
                            for c in m.conflicts {
                                report.conflicts.push(ConflictReport {
                                    crm_id: m.crm_id.to_string(),
                                    remote_id: m.remote_id.to_string(),
                                    conflict: c,
                                });
                            }
                            for f in m.forbidden {
                                report.forbidden.push(ForbiddenReport {
                                    crm_id: m.crm_id.to_string(),
                                    remote_id: m.remote_id.to_string(),
                                    change: f,
                                });
                            }
                            for loss in m.losses {
                                report.losses.push(LossReport {
                                    id: m.crm_id.to_string(),
                                    side: Side::Provider,
                                    loss,
                                });
                            }
                        } else {
                            // Part of the pair was written. The fields whose write succeeded
                            // now agree on both sides: the baseline takes them, so they do not
                            // read as edits of that side next run. Versions stay as they were,
                            // so both sides are compared again against that baseline.
                            if let Some(previous) = &m.previous {
                                // Everything but the fields whose write failed is agreed now;
                                // a failed write whose answer was lost may still have landed,
                                // so its values are kept as pending writes.
                                let mut baseline = m.baseline.clone();
                                let mut pending = Vec::new();
                                for (side, write) in [
                                    (Side::Crm, &m.crm_write),
                                    (Side::Provider, &m.provider_write),
                                ] {
                                    let Some(write) = write else { continue };
                                    let Some((_, error)) = failed.iter().find(|(s, _)| *s == side)
                                    else {
                                        continue;
                                    };
                                    for f in &write.fields {
                                        let name = f.name();
                                        match (
                                            previous.baseline.fields.get(name),
                                            previous.baseline.field_hashes.get(name),
                                        ) {
                                            (Some(v), Some(h)) => {
                                                baseline.fields.insert(name.to_owned(), v.clone());
                                                baseline.field_hashes.insert(name.to_owned(), *h);
                                            }
                                            _ => {
                                                baseline.fields.remove(name);
                                                baseline.field_hashes.remove(name);
                                            }
                                        }
                                        if answer_lost(error) {
                                            pending.push(PendingWrite {
                                                side,
                                                field: name.to_owned(),
                                                hash: write.record.field_hash(*f),
                                            });
                                        }
                                    }
                                }
                                // Earlier writes of the fields still not agreed may have
                                // landed too (a lost answer, then this failure): their values
                                // stay recognised as ours.
                                let failed_fields: Vec<(Side, &str)> = failed
                                    .iter()
                                    .filter_map(|(side, _)| {
                                        let w = match side {
                                            Side::Crm => m.crm_write.as_ref(),
                                            Side::Provider => m.provider_write.as_ref(),
                                        }?;
                                        Some(w.fields.iter().map(move |f| (*side, f.name())))
                                    })
                                    .flatten()
                                    .collect();
                                let earlier = previous.pending.iter().filter(|w| {
                                    failed_fields.contains(&(w.side, w.field.as_str()))
                                });
                                let pending = merge_pending(earlier.cloned(), pending);
                                baseline.hash = CanonicalRecord::hash_of(&baseline.field_hashes);
                                state_ops.push(StateOp::PutLink(Link {
                                    baseline,
                                    synced_at: now,
                                    pending,
                                    ..previous.clone()
                                }));
                            }
                            for (side, e) in &failed {
                                let id: ItemId = match side {
                                    Side::Crm => m.crm_id.clone().into(),
                                    Side::Provider => m.remote_id.clone().into(),
                                };
                                report.errors.push(RecordError::new(
                                    *side,
                                    Some(id.to_string()),
                                    e,
                                ));
                            }
                            let e = &failed[0].1;
                            defer(
                                Side::Crm,
                                m.crm_id.clone().into(),
                                e,
                                &mut state_ops,
                                &mut resolved_deferred,
                            );
                            defer(
                                Side::Provider,
                                m.remote_id.clone().into(),
                                e,
                                &mut state_ops,
                                &mut resolved_deferred,
                            );
                        }
                    }
                    Action::Delete {
                        target,
                        crm_id,
                        remote_id,
                        ..
                    } => match outcomes.remove(&(i, target)) {
                        Some(Ok(_)) => {
                            report.side_mut(target).deleted += 1;
                            *written.entry(target).or_default() += 1;
                            report.unlinked += 1;
                            state_ops.push(StateOp::RemoveLink(crm_id.clone()));
                            clear_intents(&crm_id, &remote_id, &mut state_ops);
                        }
                        Some(Err(e)) if matches!(e.kind(), ErrorKind::NotFound) => {
                            report.unlinked += 1;
                            state_ops.push(StateOp::RemoveLink(crm_id.clone()));
                            clear_intents(&crm_id, &remote_id, &mut state_ops);
                        }
                        Some(Err(e)) => {
                            let deleted_side = target.opposite();
                            let (id, survivor): (ItemId, ItemId) = match deleted_side {
                                Side::Crm => (crm_id.into(), remote_id.into()),
                                Side::Provider => (remote_id.into(), crm_id.into()),
                            };
                            report
                                .errors
                                .push(RecordError::new(target, Some(id.to_string()), &e));
                            defer(deleted_side, id, &e, &mut state_ops, &mut resolved_deferred);
                            // The survivor is read again next run: the link's version of it
                            // may be stale (it was edited, or the failure was a 412), and a
                            // deletion retried on that version would fail forever.
                            defer(target, survivor, &e, &mut state_ops, &mut resolved_deferred);
                        }
                        None => {}
                    },
                    Action::Unlink {
                        crm_id, remote_id, ..
                    }
                    | Action::Forget { crm_id, remote_id } => {
                        report.unlinked += 1;
                        state_ops.push(StateOp::RemoveLink(crm_id.clone()));
                        clear_intents(&crm_id, &remote_id, &mut state_ops);
                    }
                    Action::ConfirmDeletion { .. } => {
                        // Turned into a deletion or a deferred item above.
                    }
                    Action::Skip { side, id, reason } => {
                        // Records left out for now (cap, side not written this run) are
                        // kept as deferred items so nothing is forgotten.
                        if reason == SkipReason::CapReached {
                            defer_as(
                                side,
                                id.clone(),
                                DeferredReason::CapReached,
                                &mut state_ops,
                                &mut resolved_deferred,
                            );
                        } else if reason == SkipReason::NotWrittenThisRun {
                            let e = Error::new(ErrorKind::LimitReached, reason.to_string());
                            defer(side, id.clone(), &e, &mut state_ops, &mut resolved_deferred);
                        }
                        report.skipped.push(SkipReport {
                            side,
                            id: id.to_string(),
                            reason,
                        });
                    }
                    Action::Postpone {
                        crm_id,
                        remote_id,
                        reason,
                    } => {
                        let e = Error::new(ErrorKind::LimitReached, reason.to_string());
                        defer(
                            Side::Crm,
                            crm_id.clone().into(),
                            &e,
                            &mut state_ops,
                            &mut resolved_deferred,
                        );
                        defer(
                            Side::Provider,
                            remote_id.into(),
                            &e,
                            &mut state_ops,
                            &mut resolved_deferred,
                        );
                        report.skipped.push(SkipReport {
                            side: Side::Crm,
                            id: crm_id.to_string(),
                            reason,
                        });
                    }
                    Action::Fail { side, id, error } => {
                        report
                            .errors
                            .push(RecordError::new(side, Some(id.to_string()), &error));
                        defer(side, id, &error, &mut state_ops, &mut resolved_deferred);
                    }
                }
            }
            if !state_ops.is_empty() {
                self.state
                    .commit(key, std::mem::take(&mut state_ops))
                    .await?;
            }
        }
        let mut final_ops: Vec<StateOp> = std::mem::take(&mut state_ops);
        for (side, id) in resolved_deferred {
            final_ops.push(StateOp::ClearDeferred { side, id });
        }
        if !final_ops.is_empty() {
            self.state.commit(key, final_ops).await?;
        }
        Ok(written)
    }
}

/// The plan with a skip for each record a store left out of the synced set, so the dry
/// run and the report count them.
fn with_left_out<R: Record>(
    mut plan: Plan<R>,
    left_out: Vec<(Side, crate::store::LeftOut)>,
) -> Plan<R> {
    for (side, l) in left_out {
        plan.actions.push(Action::Skip {
            side,
            id: l.id,
            reason: SkipReason::OutsideSelection(l.reason),
        });
    }
    plan
}

/// The values a merge is about to write, per side and field.
fn pending_writes<R: Record>(m: &Merge<R>) -> Vec<PendingWrite> {
    let mut pending = Vec::new();
    for (side, write) in [
        (Side::Crm, &m.crm_write),
        (Side::Provider, &m.provider_write),
    ] {
        if let Some(write) = write {
            for &f in &write.fields {
                pending.push(PendingWrite {
                    side,
                    field: f.name().to_owned(),
                    hash: write.record.field_hash(f),
                });
            }
        }
    }
    pending
}

/// Pending writes of earlier runs followed by new ones, without repeats, keeping the latest
/// few values per side and field (a field failing run after run does not grow the link).
fn merge_pending(
    earlier: impl Iterator<Item = PendingWrite>,
    new: Vec<PendingWrite>,
) -> Vec<PendingWrite> {
    const PER_FIELD: usize = 4;
    let mut all: Vec<PendingWrite> = earlier.collect();
    for w in new {
        all.retain(|e| e != &w);
        all.push(w);
    }
    // Keep the last PER_FIELD of each (side, field), in order.
    let mut kept: Vec<PendingWrite> = Vec::with_capacity(all.len());
    for (i, w) in all.iter().enumerate() {
        let later = all[i + 1..]
            .iter()
            .filter(|e| e.side == w.side && e.field == w.field)
            .count();
        if later < PER_FIELD {
            kept.push(w.clone());
        }
    }
    kept
}

/// Whether a failed write may have been applied all the same (its answer was lost on the
/// way, or the server failed after acting): only then are its values kept as pending.
fn answer_lost(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Transport | ErrorKind::Provider)
}

fn duration_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

#[cfg(test)]
mod tests;
