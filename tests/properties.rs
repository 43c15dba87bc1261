//! Property tests of the engine: random sequences of operations on both sides (create,
//! edit random fields, delete, move in and out of the window, sync, push, pull), random
//! policies from the presets, random faults on both stores, and simulated crashes between
//! the remote writes and the state commit followed by a restart from the persisted state.
//!
//! After a final fault-free sync (and one more), the checker asserts: both sides equal
//! under the policy, no duplicates, no lost edit on an allowed direction, no resurrected
//! deletion, the state's links cover exactly the live linked pairs, and one more sync
//! plans nothing.
//!
//! Records are events. Each logical record carries a tag in its category (part of the
//! colour field, never edited by the operations) so its copies can be recognised.
//!
//! `PROPTEST_CASES` sets the number of cases (default 48, sized for CI in debug);
//! `PROPERTIES_SEED` picks the seed of the random test (by default a fresh one from the clock,
//! printed; the seeds that once failed run every time in their own test);
//! `PROPERTIES_TRACE` prints every run's report, to debug a shrunk case.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Duration as Days, NaiveDate, TimeZone, Utc};
use crmsync::engine::{
    ConfirmAll, ConflictStrategy, DeletionMode, FieldPolicy, Guards, SyncOptions, Syncer,
    WindowSpec,
};
use crmsync::memory::{Fault, FaultInjecting, FaultPlan, MemoryState, MemoryStore};
use crmsync::{
    AccountId, AccountStatus, CollectionId, CrmId, CursorState, Deferred, Direction, Error, Event,
    EventField, Field, Intent, Link, ManualClock, Period, Record, RecordingSleeper, RemoteId,
    ResetCounts, ResetScope, Result, Rgb, RunSummary, Side, StateKey, StateOp, Stored, SyncState,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// A state that crashes on a chosen commit
// ---------------------------------------------------------------------------------------

/// Forwards to a state; the armed commit fails without being applied, as a process that
/// died after the stores were written and before the state was would.
#[derive(Debug, Clone)]
struct CrashingState {
    inner: MemoryState,
    /// Commits to let through before the one that fails.
    crash_in: Arc<Mutex<Option<u32>>>,
    /// Fail the first commit that records a link (the one right after a write).
    crash_on_link: Arc<Mutex<bool>>,
}

impl CrashingState {
    fn new(inner: MemoryState) -> Self {
        CrashingState {
            inner,
            crash_in: Arc::default(),
            crash_on_link: Arc::default(),
        }
    }
}

#[async_trait]
impl SyncState for CrashingState {
    async fn links(&self, key: &StateKey) -> Result<Vec<Link>> {
        self.inner.links(key).await
    }
    async fn link_count(&self, key: &StateKey) -> Result<u64> {
        self.inner.link_count(key).await
    }
    async fn links_by_crm(&self, key: &StateKey, ids: &[CrmId]) -> Result<Vec<Link>> {
        self.inner.links_by_crm(key, ids).await
    }
    async fn links_by_remote(&self, key: &StateKey, ids: &[RemoteId]) -> Result<Vec<Link>> {
        self.inner.links_by_remote(key, ids).await
    }
    async fn cursor(&self, key: &StateKey, side: Side) -> Result<Option<CursorState>> {
        self.inner.cursor(key, side).await
    }
    async fn intents(&self, key: &StateKey) -> Result<Vec<Intent>> {
        self.inner.intents(key).await
    }
    async fn deferred(&self, key: &StateKey) -> Result<Vec<Deferred>> {
        self.inner.deferred(key).await
    }
    async fn commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
        {
            let mut on_link = self.crash_on_link.lock().unwrap();
            if *on_link && ops.iter().any(|op| matches!(op, StateOp::PutLink(_))) {
                *on_link = false;
                return Err(Error::state("simulated crash before the state commit"));
            }
        }
        {
            let mut slot = self.crash_in.lock().unwrap();
            match *slot {
                Some(0) => {
                    *slot = None;
                    return Err(Error::state("simulated crash before the state commit"));
                }
                Some(n) => *slot = Some(n - 1),
                None => {}
            }
        }
        self.inner.commit(key, ops).await
    }
    async fn account_status(&self, account: &AccountId) -> Result<AccountStatus> {
        self.inner.account_status(account).await
    }
    async fn set_account_status(&self, account: &AccountId, status: AccountStatus) -> Result<()> {
        self.inner.set_account_status(account, status).await
    }
    async fn last_run(&self, account: &AccountId) -> Result<Option<RunSummary>> {
        self.inner.last_run(account).await
    }
    async fn set_last_run(&self, account: &AccountId, summary: RunSummary) -> Result<()> {
        self.inner.set_last_run(account, summary).await
    }
    async fn keys(&self, account: &AccountId) -> Result<Vec<StateKey>> {
        self.inner.keys(account).await
    }
    async fn collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
    ) -> Result<Option<CollectionId>> {
        self.inner.collection_alias(account, kind, name).await
    }
    async fn set_collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
        id: Option<&CollectionId>,
    ) -> Result<()> {
        self.inner
            .set_collection_alias(account, kind, name, id)
            .await
    }
    async fn reset(&self, scope: &ResetScope) -> Result<ResetCounts> {
        self.inner.reset(scope).await
    }
}

// ---------------------------------------------------------------------------------------
// Operations and policies
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum EditKind {
    Title,
    Location,
    Description,
    Reminder,
    Private,
    Colour,
    /// A new day inside the window (days from now).
    Day(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        side: Side,
        day: i64,
    },
    Edit {
        side: Side,
        pick: usize,
        edit: EditKind,
    },
    Delete {
        side: Side,
        pick: usize,
    },
    MoveOut {
        side: Side,
        pick: usize,
    },
    MoveIn {
        side: Side,
        pick: usize,
    },
    Sync,
    /// A sync during which the state's `commit`-th commit of the run fails.
    Crash {
        commit: u32,
    },
    Push {
        pick: usize,
    },
    /// A push that dies after the write, before the link is committed.
    CrashPush {
        pick: usize,
    },
    Pull,
}

#[derive(Debug, Clone)]
struct Scenario {
    preset: &'static str,
    conflicts: ConflictStrategy,
    deletions: (DeletionMode, DeletionMode),
    /// Seeds of the random faults of the CRM and the provider, and their probability.
    seeds: (u64, u64),
    fault_probability: f64,
    ops: Vec<Op>,
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Crm), Just(Side::Provider)]
}

fn edit_kind() -> impl Strategy<Value = EditKind> {
    prop_oneof![
        Just(EditKind::Title),
        Just(EditKind::Location),
        Just(EditKind::Description),
        Just(EditKind::Reminder),
        Just(EditKind::Private),
        Just(EditKind::Colour),
        (-20i64..50).prop_map(EditKind::Day),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (side(), -20i64..50).prop_map(|(side, day)| Op::Create { side, day }),
        6 => (side(), any::<usize>(), edit_kind())
            .prop_map(|(side, pick, edit)| Op::Edit { side, pick, edit }),
        2 => (side(), any::<usize>()).prop_map(|(side, pick)| Op::Delete { side, pick }),
        1 => (side(), any::<usize>()).prop_map(|(side, pick)| Op::MoveOut { side, pick }),
        1 => (side(), any::<usize>()).prop_map(|(side, pick)| Op::MoveIn { side, pick }),
        4 => Just(Op::Sync),
        1 => (0u32..5).prop_map(|commit| Op::Crash { commit }),
        1 => any::<usize>().prop_map(|pick| Op::Push { pick }),
        1 => any::<usize>().prop_map(|pick| Op::CrashPush { pick }),
        1 => Just(Op::Pull),
    ]
}

fn deletion_mode() -> impl Strategy<Value = DeletionMode> {
    prop_oneof![
        Just(DeletionMode::Propagate),
        Just(DeletionMode::Confirm),
        Just(DeletionMode::Ignore)
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![
            Just("defaults"),
            Just("two_way"),
            Just("one_way_from_provider")
        ],
        prop_oneof![
            Just(ConflictStrategy::CrmWins),
            Just(ConflictStrategy::ProviderWins),
            Just(ConflictStrategy::Newest),
        ],
        (deletion_mode(), deletion_mode()),
        (any::<u64>(), any::<u64>()),
        prop_oneof![Just(0.0), Just(0.05), Just(0.15), Just(0.3)],
        proptest::collection::vec(op(), 1..40),
    )
        .prop_map(
            |(preset, conflicts, deletions, seeds, fault_probability, ops)| Scenario {
                preset,
                conflicts,
                deletions,
                seeds,
                fault_probability,
                ops,
            },
        )
}

fn policy_of(s: &Scenario) -> FieldPolicy<EventField> {
    let base = FieldPolicy::<EventField>::preset(s.preset)
        .unwrap()
        .with_conflicts(s.conflicts);
    // A combination the policy rejects (propagating deletions of a side that writes
    // nothing) keeps the preset's deletion modes.
    base.clone()
        .with_deletions(s.deletions.0, s.deletions.1)
        .build()
        .unwrap_or(base)
}

fn all_faults() -> Vec<Fault> {
    vec![
        Fault::Transport,
        Fault::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        },
        Fault::Server,
        Fault::CursorExpired,
        Fault::StaleVersion,
        Fault::LostResponse,
    ]
}

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn day(offset: i64) -> Period {
    let d: NaiveDate = (now() + Days::days(offset)).date_naive();
    Period::all_day(d, d).unwrap()
}

const WINDOW: WindowSpec = WindowSpec {
    months_before: 1,
    months_after: 2,
};

/// What the model knows of one logical record (a record and its copies).
#[derive(Debug, Clone)]
struct Logical {
    initial: Event,
    /// Edits in order: the side, the field and the comparable value written.
    edits: Vec<(Side, EventField, serde_json::Value)>,
    left_window: bool,
    /// Edited on a side since the last clean sync.
    dirty: [bool; 2],
    /// Deleted on this side; `true` when it must stay deleted (the deletion propagates
    /// and the other side had no unsynced edit that could keep it alive).
    deleted: Option<(Side, bool)>,
    /// The side that created it.
    creator: Side,
    /// A clean sync ran since it was created.
    clean: bool,
    /// A crash happened before it was ever synced cleanly.
    crash_exposed: bool,
    /// A push of it crashed after the write and before the link was recorded, and no
    /// clean sync has happened since: the engine cannot tell that write from an edit made
    /// on the provider, so a deletion may meet it as an edit and be undone.
    push_crashed: bool,
}

fn si(side: Side) -> usize {
    match side {
        Side::Crm => 0,
        Side::Provider => 1,
    }
}

struct Machine {
    crm_mem: MemoryStore<Event>,
    crm: FaultInjecting<MemoryStore<Event>>,
    crm_col: CollectionId,
    provider_mem: MemoryStore<Event>,
    provider: FaultInjecting<MemoryStore<Event>>,
    col: CollectionId,
    state: CrashingState,
    dir: tempfile::TempDir,
    restarts: u32,
    clock: ManualClock,
    policy: FieldPolicy<EventField>,
    options: SyncOptions,
    model: BTreeMap<String, Logical>,
    counter: u64,
    faults: (FaultPlan, FaultPlan),
    probability: f64,
    crashes: u32,
}

fn tag_of(e: &Event) -> Option<String> {
    e.category.clone()
}

impl Machine {
    fn new(s: &Scenario, options: SyncOptions) -> Self {
        let crm_mem = MemoryStore::<Event>::new();
        let crm_col = crm_mem.add_collection("CRM");
        let provider_mem = MemoryStore::<Event>::new().with_page_size(7);
        let col = provider_mem.add_collection("Work");
        let faults = (
            FaultPlan::random(s.seeds.0, s.fault_probability, all_faults()),
            FaultPlan::random(s.seeds.1, s.fault_probability, all_faults()),
        );
        Machine {
            crm: FaultInjecting::new(crm_mem.clone(), FaultPlan::none()),
            crm_mem,
            crm_col,
            provider: FaultInjecting::new(provider_mem.clone(), FaultPlan::none()),
            provider_mem,
            col,
            state: CrashingState::new(MemoryState::new()),
            dir: tempfile::tempdir().unwrap(),
            restarts: 0,
            clock: ManualClock::new(now()),
            policy: policy_of(s),
            options,
            model: BTreeMap::new(),
            counter: 0,
            faults,
            probability: s.fault_probability,
            crashes: 0,
        }
    }

    fn syncer(&self) -> Syncer<Event> {
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            Arc::new(self.provider.clone()),
            self.col.clone(),
            Arc::new(self.state.clone()),
            AccountId::new("ann").unwrap(),
            self.policy.clone(),
        )
        .with_options(self.options.clone())
        .with_clock(Arc::new(self.clock.clone()))
        // Retries of the faulty memory stores are recorded, not waited for.
        .with_sleeper(Arc::new(RecordingSleeper::new()))
        .with_deletion_gate(Arc::new(ConfirmAll))
    }

    fn mem(&self, side: Side) -> (&MemoryStore<Event>, &CollectionId) {
        match side {
            Side::Crm => (&self.crm_mem, &self.crm_col),
            Side::Provider => (&self.provider_mem, &self.col),
        }
    }

    fn all(&self, side: Side) -> Vec<Stored<Event>> {
        let (m, c) = self.mem(side);
        m.get_all(c).unwrap()
    }

    /// A live item of a side whose logical record is still in play.
    fn pick(&self, side: Side, pick: usize) -> Option<Stored<Event>> {
        let items: Vec<Stored<Event>> = self
            .all(side)
            .into_iter()
            .filter(|s| {
                tag_of(&s.record)
                    .and_then(|t| self.model.get(&t))
                    .is_some_and(|l| l.deleted.is_none())
            })
            .collect();
        (!items.is_empty()).then(|| items[pick % items.len()].clone())
    }

    fn fresh(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn set_faults(&self, on: bool) {
        if on {
            self.crm.set_plan(self.faults.0.clone());
            self.provider.set_plan(self.faults.1.clone());
        } else {
            self.crm.set_plan(FaultPlan::none());
            self.provider.set_plan(FaultPlan::none());
        }
    }

    /// Keeps the random sources going from where they were between runs.
    fn save_faults(&mut self) {
        // FaultPlan has no getter of its position; a plan is replaced per run, and a new
        // seed derived from the counter keeps runs different.
        let n = self.fresh();
        let p = self.probability;
        self.faults = (
            FaultPlan::random(n.wrapping_mul(0x9e37_79b9), p, all_faults()),
            FaultPlan::random(n.wrapping_mul(0x85eb_ca6b), p, all_faults()),
        );
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Create { side, day: d } => {
                let n = self.fresh();
                let tag = format!("L{n}");
                let mut e = Event::new(format!("t{n}"), day(*d));
                e.category = Some(tag.clone());
                let (m, c) = self.mem(*side);
                m.seed(c, e.clone()).unwrap();
                self.model.insert(
                    tag,
                    Logical {
                        initial: e,
                        edits: Vec::new(),
                        left_window: false,
                        dirty: [false; 2],
                        deleted: None,
                        creator: *side,
                        clean: false,
                        crash_exposed: false,
                        push_crashed: false,
                    },
                );
            }
            Op::Edit { side, pick, edit } => {
                let Some(item) = self.pick(*side, *pick) else {
                    return;
                };
                let n = self.fresh();
                let edit = *edit;
                let (m, c) = self.mem(*side);
                let stored = m
                    .edit_item(c, &item.id, |e| match edit {
                        EditKind::Title => e.title = format!("t{n}"),
                        EditKind::Location => e.location = format!("l{n}"),
                        EditKind::Description => e.description = format!("d{n}"),
                        EditKind::Reminder => e.reminder_minutes = Some((n % 1000) as u32),
                        EditKind::Private => e.private = !e.private,
                        EditKind::Colour => {
                            e.colour = Some(Rgb::new((n % 251) as u8, (n % 241) as u8, 7))
                        }
                        EditKind::Day(d) => e.period = day(d),
                    })
                    .unwrap();
                let field = match edit {
                    EditKind::Title => EventField::Title,
                    EditKind::Location => EventField::Location,
                    EditKind::Description => EventField::Description,
                    EditKind::Reminder => EventField::Reminder,
                    EditKind::Private => EventField::Private,
                    EditKind::Colour => EventField::Colour,
                    EditKind::Day(_) => EventField::Period,
                };
                let tag = tag_of(&stored.record).unwrap();
                let l = self.model.get_mut(&tag).unwrap();
                l.edits
                    .push((*side, field, stored.record.comparable(field)));
                l.dirty[si(*side)] = true;
            }
            Op::MoveOut { side, pick } | Op::MoveIn { side, pick } => {
                let Some(item) = self.pick(*side, *pick) else {
                    return;
                };
                let out = matches!(op, Op::MoveOut { .. });
                let (m, c) = self.mem(*side);
                let stored = m
                    .edit_item(c, &item.id, |e| {
                        e.period = if out { day(200) } else { day(3) }
                    })
                    .unwrap();
                let tag = tag_of(&stored.record).unwrap();
                let l = self.model.get_mut(&tag).unwrap();
                l.left_window = true;
                l.dirty[si(*side)] = true;
            }
            Op::Delete { side, pick } => {
                let Some(item) = self.pick(*side, *pick) else {
                    return;
                };
                let (m, c) = self.mem(*side);
                m.remove_item(c, &item.id).unwrap();
                let tag = tag_of(&item.record).unwrap();
                let mode = self.policy.deletions.from_side(*side);
                let l = self.model.get_mut(&tag).unwrap();
                let other_dirty = l.dirty[si(side.opposite())];
                // A copy made in a run that crashed before linking it is unknown to the
                // engine: deleting that copy before the next run cannot be told from the
                // create never having happened, so it may be made again.
                let unknown_copy = l.crash_exposed && l.creator != *side;
                // An edit of this side not yet synced cleanly may have been written to the
                // other side by a run whose answer was lost: the engine keeps no record of
                // unacknowledged updates, so it meets that write as an edit there, and the
                // edit wins over the deletion (a known gap: update intents would close it).
                let own_write_pending = l.dirty[si(*side)];
                let must_stay = mode != DeletionMode::Ignore
                    && !own_write_pending
                    && !other_dirty
                    && !l.left_window
                    && !unknown_copy
                    && !l.push_crashed;
                l.deleted = Some((*side, must_stay));
            }
            Op::Sync => {
                self.set_faults(true);
                let result = self.syncer().sync().await;
                self.set_faults(false);
                trace("sync", &result);
                self.after_run(
                    result
                        .as_ref()
                        .is_ok_and(|r| r.is_success() && r.pending_deletions.is_empty()),
                );
            }
            Op::Crash { commit } => {
                *self.state.crash_in.lock().unwrap() = Some(*commit);
                self.set_faults(true);
                let result = self.syncer().sync().await;
                self.set_faults(false);
                let crashed = self.state.crash_in.lock().unwrap().is_none();
                *self.state.crash_in.lock().unwrap() = None;
                if crashed && result.is_err() {
                    self.crashes += 1;
                    self.restart();
                    self.crash_exposed();
                }
                self.after_run(false);
            }
            Op::Push { pick } => {
                let Some(item) = self.pick(Side::Crm, *pick) else {
                    return;
                };
                self.set_faults(true);
                let _ = self.syncer().push(&[item.id.clone().into()]).await;
                self.set_faults(false);
            }
            Op::CrashPush { pick } => {
                let Some(item) = self.pick(Side::Crm, *pick) else {
                    return;
                };
                *self.state.crash_on_link.lock().unwrap() = true;
                self.set_faults(true);
                let result = self.syncer().push(&[item.id.clone().into()]).await;
                self.set_faults(false);
                let crashed = !*self.state.crash_on_link.lock().unwrap();
                *self.state.crash_on_link.lock().unwrap() = false;
                if crashed && result.is_err() {
                    self.crashes += 1;
                    self.restart();
                    self.crash_exposed();
                    if let Some(l) = tag_of(&item.record).and_then(|t| self.model.get_mut(&t)) {
                        l.push_crashed = true;
                    }
                }
            }
            Op::Pull => {
                self.set_faults(true);
                let result = self.syncer().pull().await;
                self.set_faults(false);
                trace("pull", &result);
            }
        }
    }

    /// A restart: the state is saved (it is what was committed) and opened again as a new
    /// process would.
    fn restart(&mut self) {
        self.restarts += 1;
        let path = self
            .dir
            .path()
            .join(format!("state-{}.json", self.restarts));
        self.state.inner.save_to(&path).unwrap();
        let reopened = MemoryState::open(&path).unwrap();
        self.state = CrashingState::new(reopened);
    }

    /// Records never synced cleanly may have been created and not linked: they are
    /// relinked by link key later, without a baseline (see the note in `check`).
    fn crash_exposed(&mut self) {
        for l in self.model.values_mut() {
            if !l.clean {
                l.crash_exposed = true;
            }
        }
    }

    fn after_run(&mut self, clean: bool) {
        self.save_faults();
        if clean {
            for l in self.model.values_mut() {
                l.dirty = [false; 2];
                l.clean = true;
                l.push_crashed = false;
            }
        }
    }

    fn fired(&self) -> BTreeMap<&'static str, usize> {
        let mut all = self.crm.fired_counts();
        for (k, v) in self.provider.fired_counts() {
            *all.entry(k).or_default() += v;
        }
        all
    }

    /// The final fault-free syncs and the checks. `Err` names the first broken property.
    async fn finish(&mut self) -> std::result::Result<(), String> {
        self.set_faults(false);
        let syncer = self.syncer();
        for _ in 0..2 {
            if std::env::var_os("PROPERTIES_TRACE").is_some()
                && let Ok(plan) = syncer.plan().await
            {
                eprintln!("--- final plan:\n{plan}");
            }
            let result = syncer.sync().await;
            trace("final sync", &result);
            result.map_err(|e| format!("a fault-free sync failed: {e}"))?;
        }
        if std::env::var_os("PROPERTIES_TRACE").is_some() {
            let links = self.state.links(&syncer.key()).await.unwrap_or_default();
            for l in links {
                eprintln!("link crm {} <-> provider {}", l.crm_id, l.remote_id);
            }
            for side in [Side::Crm, Side::Provider] {
                for item in self.all(side) {
                    eprintln!(
                        "{side} {} {:?} key {:?}",
                        item.id, item.record.title, item.link_key
                    );
                }
            }
        }
        self.check().await?;
        let plan = syncer.plan().await.map_err(|e| e.to_string())?;
        if plan.changes().count() != 0 {
            return Err(format!("one more sync would still plan:\n{plan}"));
        }
        let report = syncer.sync().await.map_err(|e| e.to_string())?;
        if !report.nothing_to_do() {
            return Err(format!("one more sync was not a no-op:\n{report}"));
        }
        Ok(())
    }

    async fn check(&self) -> std::result::Result<(), String> {
        let crm = self.all(Side::Crm);
        let provider = self.all(Side::Provider);
        let crm_by_id: HashMap<&str, &Stored<Event>> =
            crm.iter().map(|s| (s.id.as_str(), s)).collect();
        let provider_by_id: HashMap<&str, &Stored<Event>> =
            provider.iter().map(|s| (s.id.as_str(), s)).collect();
        let key = self.syncer().key();
        let links = self.state.links(&key).await.map_err(|e| e.to_string())?;
        let caps = crmsync::RecordStore::capabilities(&self.provider_mem);
        let window = WINDOW.at(now());

        // No duplicates: each tag at most once per side.
        for (side, items) in [(Side::Crm, &crm), (Side::Provider, &provider)] {
            let mut seen = BTreeSet::new();
            for s in items.iter() {
                let t = tag_of(&s.record).ok_or("a record without its tag")?;
                if !seen.insert(t.clone()) {
                    return Err(format!("duplicate of {t} on the {side}"));
                }
            }
        }
        // Links: both items live, same logical record, each id once.
        let mut linked_crm = BTreeSet::new();
        let mut linked_remote = BTreeSet::new();
        for l in &links {
            // A record deleted while outside the window is not seen by a full listing in
            // the window (a change feed would show it, but an expired one does not): its
            // link stays until the record comes back into the window. Not a defect.
            let (c, p) = (
                crm_by_id.get(l.crm_id.as_str()),
                provider_by_id.get(l.remote_id.as_str()),
            );
            match (c, p) {
                (Some(c), None) if !window.contains(&c.record) => continue,
                (None, Some(p)) if !window.contains(&p.record) => continue,
                _ => {}
            }
            let c = c.ok_or_else(|| format!("link of a gone CRM record {}", l.crm_id))?;
            let p = p.ok_or_else(|| format!("link of a gone provider record {}", l.remote_id))?;
            if tag_of(&c.record) != tag_of(&p.record) {
                return Err(format!("{} linked to a copy of another record", l.crm_id));
            }
            if !linked_crm.insert(l.crm_id.to_string())
                || !linked_remote.insert(l.remote_id.to_string())
            {
                return Err("an id in two links".into());
            }
            // Both sides equal under the policy.
            if window.contains(&c.record) && window.contains(&p.record) {
                for &f in EventField::ALL {
                    if self.policy.rule(f).direction == Direction::Skip {
                        continue;
                    }
                    let cf = c.record.fit(&caps).record;
                    if cf.comparable(f) != p.record.comparable(f) {
                        return Err(format!(
                            "{f} differs on {}: crm {} vs provider {}",
                            tag_of(&c.record).unwrap_or_default(),
                            cf.comparable(f),
                            p.record.comparable(f)
                        ));
                    }
                }
            }
        }
        // A record present on both sides is linked (to itself); no unlinked copy carries
        // the link key of a linked record.
        let crm_tags: HashMap<String, &Stored<Event>> = crm
            .iter()
            .map(|s| (tag_of(&s.record).unwrap_or_default(), s))
            .collect();
        for p in &provider {
            let t = tag_of(&p.record).unwrap_or_default();
            if let Some(c) = crm_tags.get(&t) {
                let linked = links.iter().any(|l| {
                    l.crm_id.as_str() == c.id.as_str() && l.remote_id.as_str() == p.id.as_str()
                });
                let l = &self.model[&t];
                let out = !window.contains(&c.record) || !window.contains(&p.record);
                if !linked && !out && !l.left_window {
                    return Err(format!("{t} is on both sides but not linked"));
                }
            }
            if let Some(k) = &p.link_key
                && linked_crm.contains(k.as_str())
                && !linked_remote.contains(p.id.as_str())
            {
                return Err(format!("unlinked copy {} of linked crm {k}", p.id));
            }
        }
        for c in &crm {
            if let Some(k) = &c.link_key
                && linked_remote.contains(k.as_str())
                && !linked_crm.contains(c.id.as_str())
            {
                return Err(format!("unlinked copy {} of linked provider {k}", c.id));
            }
        }
        // No resurrected deletion; no lost edit.
        for (t, l) in &self.model {
            let on_crm = crm_tags.get(t);
            let on_provider = provider
                .iter()
                .find(|p| tag_of(&p.record).as_deref() == Some(t.as_str()));
            if let Some((side, true)) = l.deleted
                && (on_crm.is_some() || on_provider.is_some())
            {
                return Err(format!(
                    "{t} was deleted on the {side} and is back (crm: {}, provider: {})",
                    on_crm.is_some(),
                    on_provider.is_some()
                ));
            }
            let (Some(c), Some(p)) = (on_crm, on_provider) else {
                continue;
            };
            if l.left_window || l.deleted.is_some() {
                continue;
            }
            for &f in EventField::ALL {
                let rule = self.policy.rule(f);
                if rule.direction == Direction::Skip {
                    continue;
                }
                let allowed: Vec<&(Side, EventField, serde_json::Value)> = l
                    .edits
                    .iter()
                    .filter(|(s, ef, _)| *ef == f && rule.flows_from(*s))
                    .collect();
                let last = |side: Side| {
                    allowed
                        .iter()
                        .rev()
                        .find(|(s, _, _)| *s == side)
                        .map(|(_, _, v)| v.clone())
                };
                let mut expected: Vec<serde_json::Value> =
                    match (last(Side::Crm), last(Side::Provider)) {
                        // No allowed edit: the value the record was first copied with, which
                        // is its creator's at the first sync (an edit made before it counts).
                        (None, None) => std::iter::once(l.initial.comparable(f))
                            .chain(
                                l.edits
                                    .iter()
                                    .filter(|(s, ef, _)| *ef == f && *s == l.creator)
                                    .map(|(_, _, v)| v.clone()),
                            )
                            .collect(),
                        // Edited on one side only: the last edit wins, exactly.
                        (Some(v), None) | (None, Some(v)) => vec![v],
                        // Tolerated ambiguity 1: edited on both sides between two agreements.
                        // Why: that is a conflict, settled by the policy's strategy, and the
                        // checker does not model the stores' modification times that
                        // `Newest` reads, so either side's last value may win. What a user
                        // sees: the report lists the conflict, the field and the winner.
                        (Some(a), Some(b)) => vec![a, b],
                    };
                if l.crash_exposed {
                    // Tolerated ambiguity 2: a crash between a create and its link leaves
                    // no baseline for the pair (intents do not carry one). Why: the next run
                    // relinks the copy by its link key as a first link, where neither value
                    // is an edit, so an edit of either copy made before the relink is
                    // settled as a first-link conflict (a filled value beats an empty one,
                    // then the strategy). Any value written to the field is accepted then.
                    // What a user sees: the report lists that conflict and its winner.
                    expected.push(l.initial.comparable(f));
                    expected.extend(
                        l.edits
                            .iter()
                            .filter(|(_, ef, _)| *ef == f)
                            .map(|(_, _, v)| v.clone()),
                    );
                }
                for (side, r) in [(Side::Crm, &c.record), (Side::Provider, &p.record)] {
                    let got = r.comparable(f);
                    if !expected.contains(&got) {
                        return Err(format!(
                            "lost edit of {f} on {t} ({side}): got {got}, expected one of {expected:?}; edits {:?}",
                            l.edits
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Running cases
// ---------------------------------------------------------------------------------------

fn options(disable_intents: bool) -> SyncOptions {
    SyncOptions {
        window: Some(WINDOW),
        guards: Guards {
            // The guard is tested on its own; here random deletions must go through.
            mass_deletion_confirmed: true,
            ..Guards::default()
        },
        disable_intents_for_tests: disable_intents,
        ..SyncOptions::default()
    }
}

struct Outcome {
    result: std::result::Result<(), String>,
    fired: BTreeMap<&'static str, usize>,
    crashes: u32,
}

fn run_case(s: &Scenario, options: SyncOptions) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut m = Machine::new(s, options);
        for op in &s.ops {
            m.apply(op).await;
        }
        let result = m.finish().await;
        Outcome {
            result,
            fired: m.fired(),
            crashes: m.crashes,
        }
    })
}

/// With `PROPERTIES_TRACE` set, prints each run's report (to debug a shrunk case).
fn trace(what: &str, result: &crmsync::Result<crmsync::engine::SyncReport>) {
    if std::env::var_os("PROPERTIES_TRACE").is_some() {
        match result {
            Ok(report) => eprintln!("--- {what}:\n{report}"),
            Err(e) => eprintln!("--- {what} failed: {e}"),
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// Seeds that once failed at 10,000 cases, and the old default: run at every test run
/// (their shrunk cases are also regression tests below).
const FIXED_SEEDS: [u64; 7] = [
    0x00c0_ffee,
    1,
    2,
    3,
    42,
    987_654_321,
    1_796_678_244_114_825_907,
];

/// Runs the random scenarios from one seed; panics naming the seed on a failure.
fn run_random(seed: u64) {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    };
    let fired: Mutex<BTreeMap<&'static str, usize>> = Mutex::default();
    let crashes = Mutex::new(0u32);
    let started = std::time::Instant::now();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &seed_bytes,
    );
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&scenario(), |s| {
        let outcome = run_case(&s, options(false));
        {
            let mut f = fired.lock().unwrap();
            for (k, v) in &outcome.fired {
                *f.entry(k).or_default() += v;
            }
            *crashes.lock().unwrap() += outcome.crashes;
        }
        if std::env::var_os("PROPERTIES_DEBUG").is_some()
            && let Err(e) = &outcome.result
        {
            eprintln!("case failed: {e}\n{s:?}");
        }
        outcome.result.map_err(TestCaseError::fail)
    });
    eprintln!(
        "properties: seed {seed}: {} cases in {:.1?}; faults fired: {:?}; simulated crashes: {}",
        cases(),
        started.elapsed(),
        fired.lock().unwrap(),
        crashes.lock().unwrap()
    );
    if let Err(e) = result {
        panic!(
            "PROPERTIES_SEED={seed} fails (add its shrunk case as a regression test and the \
             seed to FIXED_SEEDS): {e}"
        );
    }
}

/// A fresh seed each run (`PROPERTIES_SEED=<n>` picks one), printed so a failure can be
/// replayed.
#[test]
fn random_operations_policies_faults_and_crashes_keep_the_invariants() {
    let seed: u64 = std::env::var("PROPERTIES_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    println!("PROPERTIES_SEED={seed}");
    eprintln!("PROPERTIES_SEED={seed}");
    run_random(seed);
}

/// The seeds that once failed, every time.
#[test]
fn the_seeds_that_once_failed_keep_the_invariants() {
    for seed in FIXED_SEEDS {
        run_random(seed);
    }
}

/// A scripted scenario: a CRM record is pushed, the provider applies the create and the
/// process dies before the link is committed; after the restart the record is pushed
/// again (a push lists nothing, so only the intent can find the first copy), then synced.
fn lost_push_scenario() -> (Scenario, FaultPlan) {
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::CrmWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Confirm),
        seeds: (0, 0),
        fault_probability: 0.0,
        ops: vec![
            Op::Create {
                side: Side::Crm,
                day: 1,
            },
            Op::Create {
                side: Side::Crm,
                day: 2,
            },
            Op::Sync,
            Op::Create {
                side: Side::Crm,
                day: 3,
            },
            Op::CrashPush { pick: 2 },
            Op::Push { pick: 2 },
            Op::Sync,
        ],
    };
    (s, FaultPlan::none())
}

fn run_scripted(s: &Scenario, provider_faults: FaultPlan, options: SyncOptions) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut m = Machine::new(s, options);
        for op in &s.ops {
            if matches!(op, Op::Push { .. }) && m.provider.fired().is_empty() {
                // The first push meets the lost response.
                m.faults.1 = provider_faults.clone();
            } else {
                m.faults = (FaultPlan::none(), FaultPlan::none());
            }
            m.apply(op).await;
            m.faults = (FaultPlan::none(), FaultPlan::none());
        }
        let result = m.finish().await;
        Outcome {
            result,
            fired: m.fired(),
            crashes: m.crashes,
        }
    })
}

#[test]
fn the_checker_bites_without_intents() {
    let (s, plan) = lost_push_scenario();
    let with = run_scripted(&s, plan.clone(), options(false));
    assert_eq!(with.crashes, 1);
    assert_eq!(with.result, Ok(()), "with intents, no duplicate");
    let without = run_scripted(&s, plan, options(true));
    assert_eq!(without.crashes, 1);
    let err = without
        .result
        .expect_err("without intents, a duplicate is made");
    assert!(err.contains("duplicate"), "{err}");
}

/// The shrunk case of a bug found at 1,000 cases (a CRM title edit never reached the
/// provider after a failed write and a pull), kept as a regression test.
#[test]
fn regression_title_edit_after_failed_write_and_pull() {
    use Op::*;
    let c = || Create {
        side: Side::Crm,
        day: 0,
    };
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::CrmWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (0, 0),
        fault_probability: 0.05,
        ops: vec![
            Sync,
            Sync,
            Sync,
            c(),
            Sync,
            c(),
            Sync,
            c(),
            c(),
            Sync,
            Sync,
            c(),
            c(),
            Sync,
            Sync,
            c(),
            c(),
            Sync,
            Sync,
            Edit {
                side: Side::Crm,
                pick: 0,
                edit: EditKind::Title,
            },
            Sync,
            Pull,
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// A shrunk case: a link outlived its CRM record after deletions under provider faults.
#[test]
fn regression_link_of_a_gone_crm_record() {
    use Op::*;
    let c = |side| Create { side, day: 0 };
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::CrmWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (0, 9525765721470406019),
        fault_probability: 0.3,
        ops: vec![
            c(Side::Crm),
            c(Side::Crm),
            c(Side::Crm),
            Sync,
            c(Side::Crm),
            c(Side::Crm),
            c(Side::Crm),
            Sync,
            Delete {
                side: Side::Crm,
                pick: 0,
            },
            c(Side::Crm),
            Delete {
                side: Side::Crm,
                pick: 0,
            },
            Edit {
                side: Side::Crm,
                pick: 0,
                edit: EditKind::Title,
            },
            c(Side::Crm),
            c(Side::Provider),
            c(Side::Provider),
            Sync,
            Sync,
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// A shrunk case: a record pushed in a run that crashed before linking, then deleted on
/// the CRM, must not come back.
#[test]
fn regression_deleted_after_a_crashed_push() {
    use Op::*;
    let c = || Create {
        side: Side::Crm,
        day: 0,
    };
    let title = |pick| Edit {
        side: Side::Crm,
        pick,
        edit: EditKind::Title,
    };
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::CrmWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (0, 0),
        fault_probability: 0.0,
        ops: vec![
            c(),
            c(),
            title(0),
            c(),
            title(0),
            Sync,
            title(1203470443585017220),
            Delete {
                side: Side::Crm,
                pick: 4623149632820717307,
            },
            CrashPush {
                pick: 2602998551015111564,
            },
            Delete {
                side: Side::Crm,
                pick: 590183803706781510,
            },
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// The shrunk case of a bug found at 10,000 cases: a crash left our own write on the
/// provider unrecorded, so the CRM's next edit of the same field met it as a conflict and
/// lost under "provider wins". Pending writes in the link fix it.
#[test]
fn regression_own_write_after_a_crash_is_not_a_conflict() {
    use Op::*;
    let c = |side| Create { side, day: 0 };
    let edit = |side, pick, edit| Edit { side, pick, edit };
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::ProviderWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (51157566700107, 855725855450),
        fault_probability: 0.15,
        ops: vec![
            c(Side::Provider),
            edit(Side::Provider, 0, EditKind::Title),
            c(Side::Crm),
            Pull,
            Sync,
            c(Side::Crm),
            c(Side::Crm),
            Push { pick: 0 },
            c(Side::Crm),
            Sync,
            edit(Side::Crm, 8101700369629688654, EditKind::Location),
            Sync,
            edit(Side::Crm, 0, EditKind::Title),
            Crash { commit: 0 },
            edit(Side::Crm, 4057813961293692739, EditKind::Location),
            c(Side::Crm),
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// The shrunk case of a bug found at 10,000 cases: a link outlived its provider record.
#[test]
fn regression_link_of_a_gone_provider_record() {
    use Op::*;
    let c = |side| Create { side, day: 0 };
    let title = |side, pick| Edit {
        side,
        pick,
        edit: EditKind::Title,
    };
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::ProviderWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (2835388679233744859, 65045848),
        fault_probability: 0.3,
        ops: vec![
            c(Side::Provider),
            title(Side::Provider, 0),
            title(Side::Provider, 0),
            c(Side::Crm),
            title(Side::Crm, 0),
            Sync,
            MoveOut {
                side: Side::Provider,
                pick: 2157022148377932164,
            },
            c(Side::Crm),
            title(Side::Crm, 0),
            title(Side::Crm, 0),
            title(Side::Crm, 0),
            title(Side::Crm, 0),
            title(Side::Crm, 0),
            Push { pick: 0 },
            title(Side::Crm, 463633451618249459),
            Sync,
            Delete {
                side: Side::Provider,
                pick: 4336780393850131272,
            },
            Sync,
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// The shrunk case of a bug found at 10,000 cases: a provider deletion met a CRM edit,
/// the copy made again over it failed, and the deletion (already past the cursor) was
/// forgotten. The deleted copy's id is now kept as a deferred item.
#[test]
fn regression_failed_recreate_keeps_the_deletion() {
    use Op::*;
    let s = Scenario {
        preset: "defaults",
        conflicts: ConflictStrategy::ProviderWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (0, 0),
        fault_probability: 0.3,
        ops: vec![
            Sync,
            Sync,
            Create {
                side: Side::Provider,
                day: 0,
            },
            Create {
                side: Side::Crm,
                day: 0,
            },
            Pull,
            Edit {
                side: Side::Crm,
                pick: 0,
                edit: EditKind::Title,
            },
            MoveOut {
                side: Side::Provider,
                pick: 0,
            },
            Sync,
            Delete {
                side: Side::Provider,
                pick: 5552110492475269364,
            },
            MoveOut {
                side: Side::Crm,
                pick: 0,
            },
            Edit {
                side: Side::Provider,
                pick: 0,
                edit: EditKind::Day(1),
            },
            Delete {
                side: Side::Crm,
                pick: 0,
            },
            Sync,
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// Seed 42 at 10,000 cases (issue 10): a colour edited twice on the CRM under `two_way`
/// with 30% faults kept the first value.
#[test]
fn regression_colour_edited_twice_under_faults() {
    use Op::*;
    let crm = |day| Create {
        side: Side::Crm,
        day,
    };
    let edit = |pick, edit| Edit {
        side: Side::Crm,
        pick,
        edit,
    };
    let s = Scenario {
        preset: "two_way",
        conflicts: ConflictStrategy::ProviderWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (0, 0),
        fault_probability: 0.3,
        ops: vec![
            Sync,
            crm(0),
            Sync,
            crm(0),
            edit(0, EditKind::Title),
            Sync,
            crm(0),
            edit(7948750159145526718, EditKind::Colour),
            edit(0, EditKind::Title),
            edit(0, EditKind::Title),
            Sync,
            edit(6786979634472552898, EditKind::Colour),
            Sync,
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}

/// Seed 2 at 10,000 cases (issue 10): the CRM edits `private`, a sync writes it to the
/// provider and crashes before the state commit, the CRM edits it back; the final sync
/// must keep the CRM's last value, not the provider's copy of the first.
#[test]
fn regression_field_changed_back_around_a_crash() {
    use Op::*;
    for conflicts in [
        ConflictStrategy::ProviderWins,
        ConflictStrategy::CrmWins,
        ConflictStrategy::Newest,
    ] {
        let s = Scenario {
            preset: "defaults",
            conflicts,
            deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
            seeds: (0, 0),
            fault_probability: 0.0,
            ops: vec![
                Create {
                    side: Side::Crm,
                    day: 0,
                },
                Sync,
                Create {
                    side: Side::Crm,
                    day: 0,
                },
                Create {
                    side: Side::Provider,
                    day: 0,
                },
                Edit {
                    side: Side::Crm,
                    pick: 0,
                    edit: EditKind::Private,
                },
                Crash { commit: 1 },
                Edit {
                    side: Side::Crm,
                    pick: 0,
                    edit: EditKind::Private,
                },
            ],
        };
        let outcome = run_case(&s, options(false));
        assert_eq!(outcome.result, Ok(()), "conflicts = {conflicts:?}");
    }
}

/// Seed 1796678244114825907 at 10,000 cases (issue 10): a link outlived its provider copy
/// under CRM faults.
#[test]
fn regression_link_of_a_gone_provider_record_under_crm_faults() {
    use Op::*;
    let crm = || Create {
        side: Side::Crm,
        day: 0,
    };
    let s = Scenario {
        preset: "two_way",
        conflicts: ConflictStrategy::CrmWins,
        deletions: (DeletionMode::Propagate, DeletionMode::Propagate),
        seeds: (1_367_627_181_823_950_322, 0),
        fault_probability: 0.3,
        ops: vec![
            crm(),
            Sync,
            crm(),
            crm(),
            Edit {
                side: Side::Crm,
                pick: 0,
                edit: EditKind::Title,
            },
            Edit {
                side: Side::Crm,
                pick: 0,
                edit: EditKind::Private,
            },
            Edit {
                side: Side::Provider,
                pick: 0,
                edit: EditKind::Location,
            },
            Sync,
            Delete {
                side: Side::Provider,
                pick: 8_401_430_302_264_224_093,
            },
            Create {
                side: Side::Provider,
                day: 0,
            },
            Sync,
            Sync,
            crm(),
            Sync,
            crm(),
            crm(),
        ],
    };
    let outcome = run_case(&s, options(false));
    assert_eq!(outcome.result, Ok(()));
}
