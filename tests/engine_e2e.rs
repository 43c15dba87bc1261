//! End-to-end scenarios of the engine through `Syncer`: an in-memory CRM and an in-memory
//! provider, with `MemoryState` or `SqliteState` on a temporary file, and a manual clock.
//!
//! Each test asserts concrete outcomes: records on both stores, report counts, store
//! request counts and the state's contents.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use crmsync::engine::{
    ConflictStrategy, DeletionGate, DeletionMode, FieldPolicy, Guards, LinkScope, PendingDeletion,
    Phase, SkipReason, SyncOptions, SyncReport, Syncer, WindowSpec,
};
use crmsync::memory::{
    Fault, FaultInjecting, FaultPlan, MemoryState, MemoryStore, Operation, like_outlook,
};
use crmsync::sqlite::SqliteState;
use crmsync::{
    AccountId, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact,
    DeferredReason, Error, ErrorKind, Event, EventField, Field, ItemId, LinkKey, ManualClock, Name,
    Period, Record, RecordStore, RecordingSleeper, RemovalReason, Result, Rgb, Side, Stored,
    SyncState, Unreadable, Usage, Version, WriteOp, WriteOutcome,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn june(day: u32) -> Period {
    let d = NaiveDate::from_ymd_opt(2026, 6, day).unwrap();
    Period::all_day(d, d).unwrap()
}

fn on(y: i32, m: u32, d: u32) -> Period {
    let d = NaiveDate::from_ymd_opt(y, m, d).unwrap();
    Period::all_day(d, d).unwrap()
}

fn event(title: &str, day: u32) -> Event {
    Event::new(title, june(day))
}

fn contact(name: &str, email: &str) -> Contact {
    Contact::new(name).with_email(email, Usage::Work).unwrap()
}

/// Both stores, their collections and the clock.
struct Pair<R: Record> {
    crm: MemoryStore<R>,
    crm_col: CollectionId,
    provider: MemoryStore<R>,
    col: CollectionId,
    clock: ManualClock,
}

impl<R: Record> Pair<R> {
    fn new() -> Self {
        Self::with_provider(MemoryStore::new())
    }

    fn with_provider(provider: MemoryStore<R>) -> Self {
        let crm = MemoryStore::<R>::new();
        let crm_col = crm.add_collection("CRM");
        let col = provider.add_collection("Work");
        Pair {
            crm,
            crm_col,
            provider,
            col,
            clock: ManualClock::new(now()),
        }
    }

    /// A syncer over the plain provider store.
    fn syncer(&self, state: Arc<dyn SyncState>, policy: FieldPolicy<R::Field>) -> Syncer<R> {
        self.syncer_over(Arc::new(self.provider.clone()), state, policy)
    }

    /// A syncer over a wrapper of the provider store.
    fn syncer_over(
        &self,
        provider: Arc<dyn RecordStore<R>>,
        state: Arc<dyn SyncState>,
        policy: FieldPolicy<R::Field>,
    ) -> Syncer<R> {
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            provider,
            self.col.clone(),
            state,
            AccountId::new("ann").unwrap(),
            policy,
        )
        .with_clock(Arc::new(self.clock.clone()))
        // Retries of the faulty memory stores are recorded, not waited for.
        .with_sleeper(Arc::new(RecordingSleeper::new()))
    }

    fn crm_all(&self) -> Vec<Stored<R>> {
        self.crm.get_all(&self.crm_col).unwrap()
    }

    fn provider_all(&self) -> Vec<Stored<R>> {
        self.provider.get_all(&self.col).unwrap()
    }

    fn reset_stats(&self) {
        self.crm.reset_stats();
        self.provider.reset_stats();
    }
}

impl Pair<Event> {
    fn crm_titled(&self, title: &str) -> Option<Stored<Event>> {
        self.crm_all().into_iter().find(|s| s.record.title == title)
    }
    fn provider_titled(&self, title: &str) -> Option<Stored<Event>> {
        self.provider_all()
            .into_iter()
            .find(|s| s.record.title == title)
    }
    fn crm_titles(&self) -> Vec<String> {
        let mut v: Vec<String> = self.crm_all().into_iter().map(|s| s.record.title).collect();
        v.sort();
        v
    }
    fn provider_titles(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .provider_all()
            .into_iter()
            .map(|s| s.record.title)
            .collect();
        v.sort();
        v
    }
}

fn titles(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn sqlite_state(dir: &tempfile::TempDir) -> SqliteState {
    SqliteState::open(dir.path().join("state.db"))
        .await
        .unwrap()
}

/// Asserts that every provider copy carrying a link key names a live CRM record, and no two
/// provider copies carry the same key.
fn assert_no_duplicates(pair: &Pair<Event>) {
    let crm_ids: BTreeSet<String> = pair.crm_all().iter().map(|s| s.id.to_string()).collect();
    let mut keys = BTreeSet::new();
    for p in pair.provider_all() {
        if let Some(k) = &p.link_key {
            assert!(keys.insert(k.to_string()), "two copies carry {k}");
            assert!(
                crm_ids.contains(k.as_str()),
                "copy {} carries {k}, not a CRM id",
                p.id
            );
        }
    }
    let t = pair.provider_titles();
    let mut d = t.clone();
    d.dedup();
    assert_eq!(t, d, "duplicate titles on the provider");
    let t = pair.crm_titles();
    let mut d = t.clone();
    d.dedup();
    assert_eq!(t, d, "duplicate titles on the CRM");
}

/// A deletion gate answering from a list, recording what it was asked.
#[derive(Debug, Default)]
struct ScriptedGate {
    answer: Mutex<Option<bool>>,
    asked: Mutex<Vec<Vec<PendingDeletion>>>,
}

impl ScriptedGate {
    fn answering(yes: bool) -> Arc<Self> {
        Arc::new(ScriptedGate {
            answer: Mutex::new(Some(yes)),
            asked: Mutex::default(),
        })
    }
}

#[async_trait]
impl DeletionGate for ScriptedGate {
    async fn confirm(&self, pending: &[PendingDeletion]) -> Vec<bool> {
        self.asked.lock().unwrap().push(pending.to_vec());
        let yes = self.answer.lock().unwrap().unwrap_or(false);
        vec![yes; pending.len()]
    }
}

// ---------------------------------------------------------------------------------------
// First sync, no-op
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn first_sync_both_ways_then_a_noop_costs_one_request_per_side() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::<Event>::new();
    let kickoff = pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Review", 21)).unwrap();
    let dentist = pair.provider.seed(&pair.col, event("Dentist", 22)).unwrap();
    let state = sqlite_state(&dir).await;
    let syncer = pair.syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults());

    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.created, 2, "{report}");
    assert_eq!(report.crm.created, 1, "{report}");
    assert_eq!(report.linked, 3);
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.crm.full_listing && report.provider.full_listing);
    assert_eq!(pair.crm_titles(), titles(&["Dentist", "Kickoff", "Review"]));
    assert_eq!(
        pair.provider_titles(),
        titles(&["Dentist", "Kickoff", "Review"])
    );
    // The provider copy carries the CRM id; the CRM copy carries the provider id and origin.
    let copy = pair.provider_titled("Kickoff").unwrap();
    assert_eq!(copy.link_key.unwrap().as_str(), kickoff.id.as_str());
    // (scoped to the account's collection: one CRM collection may sync with several).
    let crm_copy = pair.crm_titled("Dentist").unwrap();
    let scope = LinkScope::new(&AccountId::new("ann").unwrap(), &pair.col);
    assert_eq!(
        crm_copy.link_key.unwrap(),
        scope.scoped(&LinkKey::from(dentist.id.clone()))
    );
    assert_eq!(crm_copy.record.origin.unwrap().id, dentist.id.to_string());
    // The state holds the three links, both cursors, no intents and nothing deferred.
    let key = syncer.key();
    let links = state.links(&key).await.unwrap();
    assert_eq!(links.len(), 3);
    assert!(
        links
            .iter()
            .any(|l| l.crm_id.as_str() == kickoff.id.as_str())
    );
    assert!(state.intents(&key).await.unwrap().is_empty());
    assert!(state.deferred(&key).await.unwrap().is_empty());
    assert!(state.cursor(&key, Side::Crm).await.unwrap().is_some());
    assert!(state.cursor(&key, Side::Provider).await.unwrap().is_some());

    pair.reset_stats();
    let report = syncer.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    assert_eq!(
        pair.provider.stats().requests,
        1,
        "{:?}",
        pair.provider.stats()
    );
    assert_eq!(pair.crm.stats().requests, 1, "{:?}", pair.crm.stats());
    assert_eq!(pair.provider.stats().changes_pages, 1);
    assert_eq!(report.crm.requests, 1);
    assert_eq!(report.provider.requests, 1);
    assert_eq!(report.crm.unchanged, 3);
    assert!(!report.crm.full_listing && !report.provider.full_listing);

    // A fresh syncer over the reopened state file (a restart) is also a no-op.
    drop(syncer);
    state.close().await;
    let state = sqlite_state(&dir).await;
    let syncer = pair.syncer(Arc::new(state), FieldPolicy::calendar_defaults());
    pair.reset_stats();
    let report = syncer.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    assert_eq!(pair.provider.stats().requests, 1);
    assert_eq!(pair.crm.stats().requests, 1);
}

// ---------------------------------------------------------------------------------------
// Merge and conflicts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn edits_to_different_fields_merge_and_the_same_field_conflicts_per_strategy() {
    let pair = Pair::<Event>::new();
    let c = pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Other", 21)).unwrap();
    let state = MemoryState::new();
    let syncer = pair.syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults());
    syncer.sync().await.unwrap();
    let p = pair.provider_titled("Kickoff").unwrap();

    // Different fields: both edits survive on both sides, no conflict.
    pair.crm
        .edit_item(&pair.crm_col, &c.id, |e| e.title = "Kickoff v2".into())
        .unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| e.location = "Room 4".into())
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert!(report.conflicts.is_empty(), "{report}");
    assert_eq!(report.crm.updated, 1);
    assert_eq!(report.provider.updated, 1);
    for r in [
        pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap(),
        pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap(),
    ] {
        assert_eq!(r.record.title, "Kickoff v2");
        assert_eq!(r.record.location, "Room 4");
    }
    assert!(syncer.sync().await.unwrap().nothing_to_do());

    // Same field, default strategy (CRM wins): the CRM's value everywhere, reported.
    pair.crm
        .edit_item(&pair.crm_col, &c.id, |e| e.description = "crm notes".into())
        .unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| {
            e.description = "provider notes".into()
        })
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report}");
    let conflict = &report.conflicts[0];
    assert_eq!(conflict.conflict.field, "description");
    assert_eq!(conflict.conflict.winner, Side::Crm);
    assert_eq!(conflict.conflict.strategy, ConflictStrategy::CrmWins);
    assert_eq!(conflict.crm_id, c.id.to_string());
    assert_eq!(conflict.remote_id, p.id.to_string());
    let pv = pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap();
    assert_eq!(pv.record.description, "crm notes");
    assert!(syncer.sync().await.unwrap().nothing_to_do());

    // Same field, provider wins.
    let syncer = pair.syncer(
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults().with_conflicts(ConflictStrategy::ProviderWins),
    );
    pair.crm
        .edit_item(&pair.crm_col, &c.id, |e| e.location = "Room A".into())
        .unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| e.location = "Room B".into())
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.conflicts.len(), 1, "{report}");
    assert_eq!(report.conflicts[0].conflict.winner, Side::Provider);
    let cv = pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap();
    let pv = pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap();
    assert_eq!(cv.record.location, "Room B");
    assert_eq!(pv.record.location, "Room B");
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn provider_edits_of_crm_owned_fields_are_overwritten_and_reported() {
    // Events: the colour comes from the CRM's action type.
    let pair = Pair::<Event>::new();
    let mut e = event("Call", 20);
    e.colour = Some(Rgb::new(0x10, 0x20, 0x30));
    let c = pair.crm.seed(&pair.crm_col, e).unwrap();
    let syncer = pair.syncer(
        Arc::new(MemoryState::new()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    let p = pair.provider_titled("Call").unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| {
            e.colour = Some(Rgb::new(0xff, 0, 0));
            e.location = "Phone".into();
        })
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.forbidden.len(), 1, "{report}");
    assert_eq!(report.forbidden[0].change.field, "colour");
    assert_eq!(report.forbidden[0].change.edited_on, Side::Provider);
    assert_eq!(report.forbidden[0].crm_id, c.id.to_string());
    let pv = pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap();
    let cv = pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap();
    assert_eq!(pv.record.colour, Some(Rgb::new(0x10, 0x20, 0x30)));
    assert_eq!(cv.record.colour, Some(Rgb::new(0x10, 0x20, 0x30)));
    // The allowed edit in the same write travelled.
    assert_eq!(cv.record.location, "Phone");
    assert!(syncer.sync().await.unwrap().nothing_to_do());

    // Contacts: e-mail addresses belong to the CRM.
    let pair = Pair::<Contact>::new();
    let c = pair
        .crm
        .seed(&pair.crm_col, contact("Ann Lee", "ann@crm.example"))
        .unwrap();
    let syncer = pair.syncer(
        Arc::new(MemoryState::new()),
        FieldPolicy::contact_defaults(),
    );
    syncer.sync().await.unwrap();
    let p = pair.provider_all().pop().unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |c| {
            c.emails = contact("x", "ann@phone.example").emails;
            c.notes = "met at the fair".into();
        })
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.forbidden.len(), 1, "{report}");
    assert_eq!(report.forbidden[0].change.field, "emails");
    let pv = pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap();
    let cv = pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap();
    assert_eq!(pv.record.emails[0].address.as_str(), "ann@crm.example");
    assert_eq!(cv.record.emails[0].address.as_str(), "ann@crm.example");
    assert_eq!(cv.record.notes, "met at the fair");
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

// ---------------------------------------------------------------------------------------
// Expired cursors and the window
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_cursor_mid_run_reconciles_a_full_listing() {
    let pair = Pair::<Event>::with_provider(MemoryStore::new().with_page_size(1));
    for (i, t) in ["A", "B", "C", "D", "E"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let faulty = FaultInjecting::new(pair.provider.clone(), FaultPlan::none());
    let state = MemoryState::new();
    let syncer = pair
        .syncer_over(
            Arc::new(faulty.clone()),
            Arc::new(state.clone()),
            FieldPolicy::calendar_defaults(),
        )
        .with_deletion_gate(ScriptedGate::answering(true));
    syncer.sync().await.unwrap();
    assert_eq!(pair.provider_all().len(), 5);

    // Two provider changes, so the feed has two pages; the cursor dies on the second page.
    let b = pair.provider_titled("B").unwrap();
    let d = pair.provider_titled("D").unwrap();
    pair.provider
        .edit_item(&pair.col, &b.id, |e| e.location = "moved room".into())
        .unwrap();
    pair.provider.remove_item(&pair.col, &d.id).unwrap();
    let first = faulty.calls();
    faulty.set_plan(FaultPlan::script(vec![(first + 1, Fault::CursorExpired)]));
    let report = syncer.sync().await.unwrap();
    assert_eq!(faulty.fired().len(), 1);
    assert!(report.provider.cursor_expired, "{report}");
    assert!(report.provider.full_listing);
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.created, 0);
    assert_eq!(report.provider.created, 0);
    // D was deleted while its cursor was expired: confirmed and deleted on the CRM.
    assert_eq!(report.crm.deleted, 1, "{report}");
    assert_eq!(pair.crm_titles(), titles(&["A", "B", "C", "E"]));
    assert_eq!(pair.provider_titles(), titles(&["A", "B", "C", "E"]));
    assert_eq!(pair.crm_titled("B").unwrap().record.location, "moved room");
    assert_no_duplicates(&pair);
    assert_eq!(state.links(&syncer.key()).await.unwrap().len(), 4);
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn a_deletion_while_the_cursor_was_expired_propagates_under_two_way() {
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B", "C", "D"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let syncer = pair.syncer(Arc::new(MemoryState::new()), FieldPolicy::two_way());
    syncer.sync().await.unwrap();
    let c = pair.provider_titled("C").unwrap();
    pair.provider.expire_cursors();
    pair.provider.remove_item(&pair.col, &c.id).unwrap();
    let report = syncer.sync().await.unwrap();
    assert!(report.provider.cursor_expired);
    assert_eq!(report.crm.deleted, 1, "{report}");
    assert_eq!(report.provider.created + report.crm.created, 0);
    assert_eq!(pair.crm_titles(), titles(&["A", "B", "D"]));
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn an_event_moved_outside_the_window_on_the_provider_is_not_deleted_on_the_crm() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Stays", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Leaves", 21)).unwrap();
    pair.crm
        .seed(&pair.crm_col, event("Leaves too", 22))
        .unwrap();
    let options = SyncOptions {
        window: Some(WindowSpec {
            months_before: 1,
            months_after: 2,
        }),
        ..SyncOptions::default()
    };
    let state = MemoryState::new();
    let syncer = pair
        .syncer(Arc::new(state.clone()), FieldPolicy::two_way())
        .with_options(options);
    syncer.sync().await.unwrap();

    // Through the change feed: the move is an edit of the period.
    let leaves = pair.provider_titled("Leaves").unwrap();
    pair.provider
        .edit_item(&pair.col, &leaves.id, |e| e.period = on(2027, 3, 1))
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
    assert_eq!(pair.crm_all().len(), 3);
    assert_eq!(
        pair.crm_titled("Leaves").unwrap().record.period,
        on(2027, 3, 1)
    );

    // Through a full listing (expired cursor): an item missing from it because it left
    // the window is not a deletion either.
    let too = pair.provider_titled("Leaves too").unwrap();
    pair.provider
        .edit_item(&pair.col, &too.id, |e| e.period = on(2025, 1, 10))
        .unwrap();
    pair.provider.expire_cursors();
    let report = syncer.sync().await.unwrap();
    assert!(report.provider.cursor_expired);
    assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
    assert!(report.pending_deletions.is_empty());
    assert_eq!(pair.crm_all().len(), 3);
    assert_eq!(pair.provider_all().len(), 3);
    assert_eq!(state.links(&syncer.key()).await.unwrap().len(), 3);
    // Once outside, an item missing from another full listing is unknown, not deleted.
    pair.provider.expire_cursors();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
    assert_eq!(pair.crm_all().len(), 3);
}

// ---------------------------------------------------------------------------------------
// Deletions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn deletion_modes_propagate_confirm_and_ignore() {
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let state = MemoryState::new();
    // Defaults: CRM deletions propagate, provider deletions need confirmation.
    let syncer = pair.syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults());
    syncer.sync().await.unwrap();
    let key = syncer.key();

    // Propagate: a CRM deletion deletes the provider copy.
    let a = pair.crm_titled("A").unwrap();
    pair.crm.remove_item(&pair.crm_col, &a.id).unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.deleted, 1, "{report}");
    assert!(pair.provider_titled("A").is_none());
    assert_eq!(state.links(&key).await.unwrap().len(), 5);

    // Confirm without a gate: listed, kept, deferred; nothing forgotten on later runs.
    let b = pair.provider_titled("B").unwrap();
    pair.provider.remove_item(&pair.col, &b.id).unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.pending_deletions.len(), 1, "{report}");
    assert_eq!(report.pending_deletions[0].target, Side::Crm);
    assert_eq!(report.pending_deletions[0].remote_id, b.id.to_string());
    assert_eq!(report.crm.deleted, 0);
    assert!(pair.crm_titled("B").is_some());
    let deferred = state.deferred(&key).await.unwrap();
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].reason, DeferredReason::DeletionPending);
    // Still pending on the next run, though the feed no longer reports the deletion.
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.pending_deletions.len(), 1, "{report}");
    assert_eq!(state.deferred(&key).await.unwrap()[0].attempts, 2);
    // A gate that says no keeps it pending; one that says yes applies it.
    let no = ScriptedGate::answering(false);
    let s = pair
        .syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults())
        .with_deletion_gate(no.clone());
    let report = s.sync().await.unwrap();
    assert_eq!(report.pending_deletions.len(), 1);
    assert_eq!(no.asked.lock().unwrap().len(), 1);
    let yes = ScriptedGate::answering(true);
    let s = pair
        .syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults())
        .with_deletion_gate(yes.clone());
    let report = s.sync().await.unwrap();
    assert_eq!(report.crm.deleted, 1, "{report}");
    assert!(report.pending_deletions.is_empty());
    assert!(pair.crm_titled("B").is_none());
    assert!(state.deferred(&key).await.unwrap().is_empty());
    assert_eq!(state.links(&key).await.unwrap().len(), 4);
    assert!(s.sync().await.unwrap().nothing_to_do());

    // Ignore: the link is forgotten, the other copy stays.
    let s = pair.syncer(
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults().with_deletions(DeletionMode::Ignore, DeletionMode::Ignore),
    );
    let c = pair.provider_titled("C").unwrap();
    pair.provider.remove_item(&pair.col, &c.id).unwrap();
    let report = s.sync().await.unwrap();
    assert_eq!(report.crm.deleted, 0, "{report}");
    assert_eq!(report.unlinked, 1);
    assert!(pair.crm_titled("C").is_some());
    assert_eq!(state.links(&key).await.unwrap().len(), 3);
    let report = s.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    assert!(pair.provider_titled("C").is_none(), "not recreated");
}

#[tokio::test]
async fn the_mass_deletion_guard_stops_before_writing() {
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B", "C", "D"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let state = MemoryState::new();
    let syncer = pair.syncer(Arc::new(state.clone()), FieldPolicy::two_way());
    syncer.sync().await.unwrap();
    for t in ["A", "B", "C"] {
        let id = pair.crm_titled(t).unwrap().id;
        pair.crm.remove_item(&pair.crm_col, &id).unwrap();
    }
    // An unrelated edit is not written either: the run stops before any write.
    let d = pair.crm_titled("D").unwrap();
    pair.crm
        .edit_item(&pair.crm_col, &d.id, |e| e.location = "x".into())
        .unwrap();
    pair.reset_stats();
    let report = syncer.sync().await.unwrap();
    let guard = report.guard.clone().expect("the guard trips");
    assert_eq!(guard.side, Side::Provider);
    assert_eq!(guard.deletions, 3);
    assert_eq!(guard.linked, 4);
    assert!(!report.is_success());
    let stats = pair.provider.stats();
    assert_eq!(
        stats.create + stats.update + stats.delete + stats.batch_calls,
        0,
        "{stats:?}"
    );
    assert_eq!(pair.crm.stats().batch_calls, 0);
    assert_eq!(pair.provider_all().len(), 4);
    assert_eq!(state.links(&syncer.key()).await.unwrap().len(), 4);
    // Still stopped on the next run (the cursor did not move past the deletions).
    let report = syncer.sync().await.unwrap();
    assert!(report.guard.is_some());
    // Confirmed: the deletions go ahead.
    let options = SyncOptions {
        guards: Guards {
            mass_deletion_confirmed: true,
            ..Guards::default()
        },
        ..SyncOptions::default()
    };
    let syncer = pair
        .syncer(Arc::new(state.clone()), FieldPolicy::two_way())
        .with_options(options);
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.deleted, 3, "{report}");
    assert_eq!(report.provider.updated, 1);
    assert_eq!(pair.provider_titles(), titles(&["D"]));
    assert_eq!(pair.provider_titled("D").unwrap().record.location, "x");
}

// ---------------------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_cap_syncs_the_nearest_first_and_defers_the_rest() {
    let pair = Pair::<Event>::new();
    // Now is June 15th: nearest first means 16, 14, 18, then 25, 30.
    for (t, d) in [
        ("d30", 30),
        ("d16", 16),
        ("d25", 25),
        ("d14", 14),
        ("d18", 18),
    ] {
        pair.crm.seed(&pair.crm_col, event(t, d)).unwrap();
    }
    let state = MemoryState::new();
    let with_cap = |cap| {
        pair.syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults())
            .with_options(SyncOptions {
                guards: Guards {
                    cap: Some(cap),
                    ..Guards::default()
                },
                ..SyncOptions::default()
            })
    };
    let report = with_cap(3).sync().await.unwrap();
    let limit = report.limit.clone().expect("the cap is reported");
    assert_eq!((limit.cap, limit.linked, limit.left_out), (3, 0, 2));
    assert_eq!(report.provider.created, 3);
    assert_eq!(
        report
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::CapReached)
            .count(),
        2
    );
    assert_eq!(pair.provider_titles(), titles(&["d14", "d16", "d18"]));

    // Same cap: nothing more, still reported, and the records left out cost no read
    // (issue 10 item 9: each was read again one by one on every run).
    let report = with_cap(3).sync().await.unwrap();
    assert_eq!(report.provider.created, 0);
    assert_eq!(
        report.limit.as_ref().map(|l| l.left_out),
        Some(2),
        "{report}"
    );
    assert_eq!(report.crm.requests, 1, "the CRM's feed alone: {report}");
    // Room for one: only one left-out record is read again, and it is created.
    let report = with_cap(4).sync().await.unwrap();
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(report.crm.requests, 2, "the feed and one read: {report}");
    assert_eq!(
        report.limit.as_ref().map(|l| l.left_out),
        Some(1),
        "{report}"
    );
    // Raised cap: the deferred records are created, though the CRM feed moved past them.
    let report = with_cap(10).sync().await.unwrap();
    assert_eq!(report.provider.created, 1, "{report}");
    assert!(report.limit.is_none());
    assert_eq!(
        pair.provider_titles(),
        titles(&["d14", "d16", "d18", "d25", "d30"])
    );
    assert!(
        state
            .deferred(&with_cap(10).key())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(with_cap(10).sync().await.unwrap().nothing_to_do());
}

// ---------------------------------------------------------------------------------------
// Crash recovery, reset
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_lost_create_response_is_relinked_after_a_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B", "C"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let faulty = FaultInjecting::new(
        pair.provider.clone(),
        // The response of the create batch is lost, and so are the look-ups the engine
        // makes right after (with their retries): only a later run can find the copies.
        FaultPlan::none()
            .fail_next(Operation::WriteBatch, 1, Fault::LostResponse)
            .fail_next(Operation::FindByLinkKey, 12, Fault::Transport),
    );
    let state = sqlite_state(&dir).await;
    let syncer = pair.syncer_over(
        Arc::new(faulty.clone()),
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults(),
    );
    let key = syncer.key();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.errors.len(), 3, "{report}");
    assert!(report.errors.iter().all(|e| e.retryable && e.id.is_some()));
    assert_eq!(report.provider.created, 0);
    // The creates happened; their intents are kept.
    assert_eq!(pair.provider_all().len(), 3);
    assert_eq!(state.intents(&key).await.unwrap().len(), 3);
    assert!(state.links(&key).await.unwrap().is_empty());
    drop(syncer);
    state.close().await;

    // Restart: a fresh syncer over the reopened state.
    let state = sqlite_state(&dir).await;
    let syncer = pair.syncer_over(
        Arc::new(faulty.clone()),
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults(),
    );
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.linked, 3);
    assert_eq!(pair.provider_all().len(), 3);
    assert_no_duplicates(&pair);
    assert!(state.intents(&key).await.unwrap().is_empty());
    assert!(state.deferred(&key).await.unwrap().is_empty());
    assert_eq!(state.links(&key).await.unwrap().len(), 3);
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_link_key_in_the_same_run() {
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let faulty = FaultInjecting::new(
        pair.provider.clone(),
        FaultPlan::none().fail_next(Operation::WriteBatch, 1, Fault::LostResponse),
    );
    let state = MemoryState::new();
    let syncer = pair.syncer_over(
        Arc::new(faulty.clone()),
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults(),
    );
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 2);
    assert_eq!(pair.provider.stats().find_by_link_key, 2);
    assert!(state.intents(&syncer.key()).await.unwrap().is_empty());
    assert_eq!(state.links(&syncer.key()).await.unwrap().len(), 2);
    assert_no_duplicates(&pair);
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn reset_then_sync_relinks_everything_and_reset_with_removal_removes_our_copies() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Review", 21)).unwrap();
    // Natural-key matching is off, so relinking can only come from link keys.
    let options = SyncOptions {
        match_natural_keys: false,
        ..SyncOptions::default()
    };
    pair.provider.seed(&pair.col, event("Dentist", 22)).unwrap();
    let state = MemoryState::new();
    let syncer = pair
        .syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults())
        .with_options(options.clone());
    let key = syncer.key();
    syncer.sync().await.unwrap();

    let (report, counts) = syncer.reset(false).await.unwrap();
    assert_eq!(counts.links, 3);
    assert_eq!(report.unlinked, 3);
    assert!(state.links(&key).await.unwrap().is_empty());
    assert!(state.cursor(&key, Side::Crm).await.unwrap().is_none());
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.linked, 3, "{report}");
    assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
    assert_eq!(pair.crm_all().len(), 3);
    assert_eq!(pair.provider_all().len(), 3);
    assert_no_duplicates(&pair);
    assert!(syncer.sync().await.unwrap().nothing_to_do());

    // With removal: our copies on the provider go; the provider's own event stays.
    let (report, _) = syncer.reset(true).await.unwrap();
    assert_eq!(report.provider.deleted, 2, "{report}");
    assert_eq!(pair.provider_titles(), titles(&["Dentist"]));
    assert_eq!(pair.crm_all().len(), 3);
    // A sync afterwards makes the copies again and relinks the provider's event.
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.created, 2, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    assert_eq!(pair.provider_all().len(), 3);
    assert_no_duplicates(&pair);
}

/// A reset that cannot delete one of our copies (the provider failing) keeps that copy's
/// link, so running it again removes it; the others are forgotten.
#[tokio::test]
async fn a_reset_keeps_the_links_of_copies_it_could_not_remove() {
    let pair = Pair::<Event>::new();
    for (t, d) in [("A", 20), ("B", 21), ("C", 22)] {
        pair.crm.seed(&pair.crm_col, event(t, d)).unwrap();
    }
    let faulty = FaultInjecting::new(pair.provider.clone(), FaultPlan::none());
    let state = MemoryState::new();
    let mut options = SyncOptions::for_record::<Event>();
    options.max_retries = 0;
    let syncer = pair
        .syncer_over(
            Arc::new(faulty.clone()),
            Arc::new(state.clone()),
            FieldPolicy::calendar_defaults(),
        )
        .with_options(options);
    let key = syncer.key();
    syncer.sync().await.unwrap();
    assert_eq!(pair.provider_all().len(), 3);

    faulty.set_plan(FaultPlan::none().fail_next(Operation::Get, 1, Fault::Server));
    let (report, counts) = syncer.reset(true).await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    assert_eq!(report.provider.deleted, 2, "{report}");
    assert_eq!(counts.links, 2);
    let kept = state.links(&key).await.unwrap();
    assert_eq!(kept.len(), 1, "the copy still there keeps its link");
    assert_eq!(pair.provider_all().len(), 1);
    assert_eq!(
        pair.provider_all()[0].id.as_str(),
        kept[0].remote_id.as_str()
    );

    let (report, counts) = syncer.reset(true).await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.deleted, 1, "{report}");
    assert_eq!(counts.links, 1);
    assert!(pair.provider_all().is_empty());
    assert!(state.links(&key).await.unwrap().is_empty());
    assert_eq!(pair.crm_all().len(), 3, "the CRM keeps its records");
}

// ---------------------------------------------------------------------------------------
// Faults: stale versions, 429
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stale_version_defers_the_write_and_the_next_run_succeeds() {
    let pair = Pair::<Event>::new();
    let c = pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    let faulty = FaultInjecting::new(pair.provider.clone(), FaultPlan::none());
    let state = MemoryState::new();
    let syncer = pair.syncer_over(
        Arc::new(faulty.clone()),
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    pair.crm
        .edit_item(&pair.crm_col, &c.id, |e| e.title = "Kickoff v2".into())
        .unwrap();
    faulty.set_plan(FaultPlan::none().fail_next(Operation::WriteBatch, 1, Fault::StaleVersion));
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    assert_eq!(
        report.errors[0].id.as_deref(),
        Some(pair.provider_all()[0].id.as_str())
    );
    assert_eq!(report.provider.updated, 0);
    assert_eq!(pair.provider_all()[0].record.title, "Kickoff");
    assert!(!state.deferred(&syncer.key()).await.unwrap().is_empty());
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.updated, 1);
    assert_eq!(pair.provider_all()[0].record.title, "Kickoff v2");
    assert!(state.deferred(&syncer.key()).await.unwrap().is_empty());
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

#[tokio::test]
async fn a_429_storm_on_listing_is_retried_with_the_waits_asked() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    let rl = |s| Fault::RateLimited {
        retry_after: Some(Duration::from_secs(s)),
    };
    let faulty = FaultInjecting::new(
        pair.provider.clone(),
        FaultPlan::none()
            .fail_next(Operation::Changes, 1, rl(7))
            .fail_next(Operation::Changes, 1, rl(2))
            .fail_next(Operation::Changes, 1, rl(30)),
    );
    let sleeper = RecordingSleeper::new();
    let syncer = pair
        .syncer_over(
            Arc::new(faulty.clone()),
            Arc::new(MemoryState::new()),
            FieldPolicy::calendar_defaults(),
        )
        .with_sleeper(Arc::new(sleeper.clone()));
    let report = syncer.sync().await.unwrap();
    assert_eq!(
        sleeper.delays(),
        vec![
            Duration::from_secs(7),
            Duration::from_secs(2),
            Duration::from_secs(30)
        ]
    );
    assert_eq!(faulty.fired_counts().get("rate_limited"), Some(&3));
    assert!(report.is_success(), "{report}");
    assert_eq!(report.provider.created, 1);
    // Four listing calls (three refused) and one write.
    assert_eq!(report.provider.requests, 5, "{report}");
}

// ---------------------------------------------------------------------------------------
// Partial upserts, lossy providers
// ---------------------------------------------------------------------------------------

/// A store that, like Graph delta, sends only some fields of a changed item: the others
/// come blank. Optionally, its change pages report an item it could not read.
#[derive(Debug, Clone)]
struct PartialFeed {
    inner: MemoryStore<Event>,
    sent: BTreeSet<EventField>,
    unreadable: Arc<Mutex<Option<String>>>,
    /// Removals say no reason (as CalDAV's sync-collection 404s do not).
    vague_removals: bool,
}

fn blank_except(e: &Event, sent: &BTreeSet<EventField>) -> Event {
    let mut blank = Event::new("", e.period.clone());
    for &f in sent {
        blank.set_field(f, &e.field(f)).unwrap();
    }
    blank
}

#[async_trait]
impl RecordStore<Event> for PartialFeed {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Event>> {
        let feed = request.cursor.is_some();
        let mut page = self.inner.changes(collection, request).await?;
        if feed {
            for u in &mut page.upserts {
                u.item.record = blank_except(&u.item.record, &self.sent);
                u.sent = Some(self.sent.clone());
            }
        }
        if self.vague_removals {
            for r in &mut page.removals {
                r.reason = RemovalReason::Unknown;
            }
        }
        if let Some(id) = self.unreadable.lock().unwrap().take() {
            page.unreadable.push(Unreadable {
                id: Some(ItemId::new(id).unwrap()),
                error: Error::invalid_record(Some("period"), "the end is before the start"),
            });
        }
        Ok(page)
    }
    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        self.inner.get(collection, id).await
    }
    async fn create(
        &self,
        collection: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        self.inner.create(collection, record, link_key).await
    }
    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        self.inner
            .update(collection, id, expected, record, fields)
            .await
    }
    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        self.inner.delete(collection, id, expected).await
    }
    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        self.inner.find_by_link_key(collection, link_key).await
    }
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<Event>>,
    ) -> Vec<Result<WriteOutcome<Event>>> {
        self.inner.write_batch(collection, ops).await
    }
}

#[tokio::test]
async fn partial_upserts_are_merged_with_the_last_known_copy() {
    let pair = Pair::<Event>::new();
    let mut e = event("Kickoff", 20);
    e.description = "agenda".into();
    e.reminder_minutes = Some(15);
    let c = pair.crm.seed(&pair.crm_col, e).unwrap();
    let partial = PartialFeed {
        inner: pair.provider.clone(),
        sent: BTreeSet::from([EventField::Location]),
        unreadable: Arc::default(),
        vague_removals: false,
    };
    let syncer = pair.syncer_over(
        Arc::new(partial),
        Arc::new(MemoryState::new()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    let p = pair.provider_all().pop().unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| e.location = "Room 4".into())
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.updated, 0, "{report}");
    for r in [
        pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap(),
        pair.provider.get(&pair.col, &p.id).await.unwrap().unwrap(),
    ] {
        assert_eq!(r.record.title, "Kickoff");
        assert_eq!(r.record.location, "Room 4");
        assert_eq!(r.record.description, "agenda");
        assert_eq!(r.record.reminder_minutes, Some(15));
    }
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

/// Removals that give no reason are read back, but only for linked items: a record the
/// user made and deleted on the provider between two runs costs nothing.
#[tokio::test]
async fn removals_without_a_reason_are_read_back_only_when_linked() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Review", 21)).unwrap();
    let vague = PartialFeed {
        inner: pair.provider.clone(),
        sent: EventField::ALL.iter().copied().collect(),
        unreadable: Arc::default(),
        vague_removals: true,
    };
    let syncer = pair
        .syncer_over(
            Arc::new(vague),
            Arc::new(MemoryState::new()),
            FieldPolicy::calendar_defaults(),
        )
        .with_deletion_gate(ScriptedGate::answering(true));
    syncer.sync().await.unwrap();
    let own = pair.provider.seed(&pair.col, event("Own", 22)).unwrap();
    pair.provider.remove_item(&pair.col, &own.id).unwrap();
    let review = pair.provider_titled("Review").unwrap();
    pair.provider.remove_item(&pair.col, &review.id).unwrap();
    pair.reset_stats();
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(
        pair.provider.stats().get,
        1,
        "only the linked removal is read back"
    );
    assert_eq!(report.crm.created, 0, "{report}");
    // The linked copy's deletion is handled as a deletion (here: recreated, the CRM owns it,
    // or deleted on the CRM, as the policy says); never ignored.
    assert_eq!(report.crm.deleted + report.provider.created, 1, "{report}");
}

/// A partial upsert of a record never linked (created on the provider after the first
/// sync) has nothing to be merged with: it is read whole before it is copied.
#[tokio::test]
async fn a_partial_upsert_of_a_new_record_is_read_whole() {
    let pair = Pair::<Event>::new();
    let partial = PartialFeed {
        inner: pair.provider.clone(),
        sent: BTreeSet::from([EventField::Location]),
        unreadable: Arc::default(),
        vague_removals: false,
    };
    let syncer = pair.syncer_over(
        Arc::new(partial),
        Arc::new(MemoryState::new()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    let mut e = event("Site visit", 23);
    e.location = "Lyon".into();
    e.description = "bring the samples".into();
    pair.provider.seed(&pair.col, e).unwrap();
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.created, 1, "{report}");
    let copy = pair
        .crm_titled("Site visit")
        .expect("copied whole, title included");
    assert_eq!(copy.record.location, "Lyon");
    assert_eq!(copy.record.description, "bring the samples");
}

#[tokio::test]
async fn a_lossy_provider_reports_its_losses_once_and_never_reads_them_as_edits() {
    let pair = Pair::<Contact>::with_provider(MemoryStore::new().with_capabilities(like_outlook()));
    let mut ann = Contact::new("Ann Lee");
    for i in 0..5 {
        ann = ann
            .with_email(&format!("ann{i}@example.com"), Usage::Work)
            .unwrap();
    }
    let c = pair.crm.seed(&pair.crm_col, ann).unwrap();
    let syncer = pair.syncer(
        Arc::new(MemoryState::new()),
        FieldPolicy::contact_defaults(),
    );
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.created, 1);
    assert!(
        report.losses.iter().any(|l| l.loss.field == "emails"
            && l.side == Side::Provider
            && l.id == c.id.to_string()),
        "{report}"
    );
    let p = pair.provider_all().pop().unwrap();
    assert_eq!(p.record.emails.len(), 3);

    pair.reset_stats();
    let report = syncer.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    assert_eq!(pair.provider.stats().requests, 1);
    assert_eq!(
        pair.crm
            .get(&pair.crm_col, &c.id)
            .await
            .unwrap()
            .unwrap()
            .record
            .emails
            .len(),
        5
    );

    // An edit of another field on the provider travels; the e-mails stay five on the CRM.
    pair.provider
        .edit_item(&pair.col, &p.id, |c| c.notes = "VIP".into())
        .unwrap();
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.crm.updated, 1, "{report}");
    assert!(report.forbidden.is_empty(), "{report}");
    let cv = pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap();
    assert_eq!(cv.record.emails.len(), 5);
    assert_eq!(cv.record.notes, "VIP");
    assert!(syncer.sync().await.unwrap().nothing_to_do());
    // Also under a two-way policy, where e-mails could flow back.
    let syncer = pair.syncer(Arc::new(MemoryState::new()), FieldPolicy::two_way());
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
    let report = syncer.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    let cv = pair.crm.get(&pair.crm_col, &c.id).await.unwrap().unwrap();
    assert_eq!(cv.record.emails.len(), 5);
}

// ---------------------------------------------------------------------------------------
// Push and pull
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn push_writes_only_the_given_record_and_pull_writes_only_the_crm() {
    let pair = Pair::<Event>::new();
    let a = pair.crm.seed(&pair.crm_col, event("A", 20)).unwrap();
    let b = pair.crm.seed(&pair.crm_col, event("B", 21)).unwrap();
    let state = MemoryState::new();
    let syncer = pair.syncer(Arc::new(state.clone()), FieldPolicy::calendar_defaults());
    syncer.sync().await.unwrap();

    pair.crm
        .edit_item(&pair.crm_col, &a.id, |e| e.title = "A v2".into())
        .unwrap();
    pair.crm
        .edit_item(&pair.crm_col, &b.id, |e| e.title = "B v2".into())
        .unwrap();
    pair.reset_stats();
    let report = syncer.push(&[a.id.clone().into()]).await.unwrap();
    assert_eq!(report.provider.updated, 1, "{report}");
    assert!(report.errors.is_empty(), "{report}");
    let stats = pair.provider.stats();
    assert_eq!(stats.requests, 1, "{stats:?}");
    assert_eq!(stats.changes_pages, 0);
    assert_eq!(pair.crm.stats().changes_pages, 0);
    assert_eq!(pair.provider_titles(), titles(&["A v2", "B"]));

    // A new CRM record pushed: one create.
    let n = pair.crm.seed(&pair.crm_col, event("New", 22)).unwrap();
    pair.reset_stats();
    let report = syncer.push(&[n.id.clone().into()]).await.unwrap();
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(pair.provider.stats().requests, 1);
    assert_eq!(pair.provider.stats().changes_pages, 0);

    // The next sync writes B only (A and New are not echoed back).
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.crm.updated + report.crm.created, 0, "{report}");
    assert_eq!(pair.provider_titles(), titles(&["A v2", "B v2", "New"]));
    assert_no_duplicates(&pair);

    // Pull: provider changes land on the CRM; nothing is written to the provider.
    let pa = pair.provider_titled("A v2").unwrap();
    pair.provider
        .edit_item(&pair.col, &pa.id, |e| e.location = "Room 9".into())
        .unwrap();
    pair.provider
        .seed(&pair.col, event("From phone", 23))
        .unwrap();
    let nb = pair.crm_titled("B v2").unwrap();
    pair.crm
        .edit_item(&pair.crm_col, &nb.id, |e| e.title = "B v3".into())
        .unwrap();
    pair.reset_stats();
    let report = syncer.pull().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.crm.created, 1, "{report}");
    let stats = pair.provider.stats();
    assert_eq!(
        stats.create + stats.update + stats.delete + stats.batch_calls,
        0,
        "{stats:?}"
    );
    assert_eq!(
        pair.crm.stats().changes_pages,
        0,
        "a pull lists only the provider"
    );
    assert_eq!(pair.crm_titled("A v2").unwrap().record.location, "Room 9");
    assert!(pair.crm_titled("From phone").is_some());
    assert!(pair.provider_titled("B v2").is_some(), "the CRM edit waits");
    // A full sync then brings the CRM edit over, and nothing else.
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(
        report.crm.created + report.crm.updated + report.crm.deleted,
        0
    );
    assert_eq!(
        pair.provider_titles(),
        titles(&["A v2", "B v3", "From phone", "New"])
    );
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

// ---------------------------------------------------------------------------------------
// Invalid records
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_record_is_reported_with_its_id_and_the_rest_completes() {
    // A provider contact known only by its given name: the name is not synced by default,
    // so its CRM copy would have no name at all, and fails validation.
    let pair = Pair::<Contact>::new();
    let nameless = pair
        .provider
        .seed(
            &pair.col,
            Contact {
                name: Name {
                    given: "Bob".into(),
                    ..Name::default()
                },
                ..Contact::default()
            },
        )
        .unwrap();
    pair.provider
        .seed(&pair.col, contact("Cleo", "cleo@example.com"))
        .unwrap();
    pair.crm
        .seed(&pair.crm_col, contact("Ann", "ann@example.com"))
        .unwrap();
    let syncer = pair.syncer(
        Arc::new(MemoryState::new()),
        FieldPolicy::contact_defaults(),
    );
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    let e = &report.errors[0];
    assert_eq!(e.id.as_deref(), Some(nameless.id.as_str()));
    assert_eq!(e.side, Side::Provider);
    assert_eq!(e.kind, "invalid record");
    assert!(e.message.contains("display_name"), "{}", e.message);
    assert_eq!(report.crm.created, 1);
    assert_eq!(report.provider.created, 1);
    assert_eq!(pair.crm_all().len(), 2);
    assert_eq!(pair.provider_all().len(), 3);
}

#[tokio::test]
async fn an_unreadable_entry_of_a_change_page_is_reported_and_the_rest_completes() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.provider.seed(&pair.col, event("Dentist", 22)).unwrap();
    let partial = PartialFeed {
        inner: pair.provider.clone(),
        sent: <EventField as Field>::ALL.iter().copied().collect(),
        unreadable: Arc::new(Mutex::new(Some("broken-7".into()))),
        vague_removals: false,
    };
    let syncer = pair.syncer_over(
        Arc::new(partial),
        Arc::new(MemoryState::new()),
        FieldPolicy::calendar_defaults(),
    );
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    assert_eq!(report.errors[0].id.as_deref(), Some("broken-7"));
    assert_eq!(report.errors[0].side, Side::Provider);
    assert!(report.errors[0].message.contains("period"));
    assert_eq!(report.crm.created, 1);
    assert_eq!(report.provider.created, 1);
    assert_eq!(pair.crm_all().len(), 2);
    assert_eq!(pair.provider_all().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Progress and the report
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn progress_receives_the_phases_and_the_report_round_trips_through_json() {
    let pair = Pair::<Event>::new();
    pair.crm.seed(&pair.crm_col, event("Kickoff", 20)).unwrap();
    pair.provider.seed(&pair.col, event("Dentist", 22)).unwrap();
    type Seen = Arc<Mutex<Vec<(Phase, u64, Option<u64>)>>>;
    let phases: Seen = Arc::default();
    let sink = phases.clone();
    let syncer = pair
        .syncer(
            Arc::new(MemoryState::new()),
            FieldPolicy::calendar_defaults(),
        )
        .with_progress(Arc::new(move |p: Phase, done: u64, total: Option<u64>| {
            sink.lock().unwrap().push((p, done, total));
        }));
    let report: SyncReport = syncer.sync().await.unwrap();
    let seen = phases.lock().unwrap().clone();
    for wanted in [
        Phase::Listing(Side::Crm),
        Phase::Listing(Side::Provider),
        Phase::Planning,
        Phase::Writing,
        Phase::Done,
    ] {
        assert!(
            seen.iter().any(|(p, _, _)| *p == wanted),
            "{wanted:?} in {seen:?}"
        );
    }
    assert_eq!(seen.last().map(|s| s.0), Some(Phase::Done));
    assert!(
        seen.iter()
            .any(|(p, _, total)| *p == Phase::Writing && total.is_some())
    );

    let json = serde_json::to_string(&report).unwrap();
    let back: SyncReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["provider"]["created"], 1);
    assert_eq!(value["crm"]["created"], 1);
    assert_eq!(value["kind"], "sync");
}

// ---------------------------------------------------------------------------------------
// Regressions found by the property tests
// ---------------------------------------------------------------------------------------

/// A pull cannot overwrite a forbidden provider edit (it writes only the CRM) and moves
/// the provider cursor past it: the provider item must be kept as a deferred item, or the
/// edit is never overwritten.
#[tokio::test]
async fn a_forbidden_provider_edit_seen_by_a_pull_is_overwritten_by_the_next_sync() {
    let pair = Pair::<Event>::new();
    let mut e = event("Call", 20);
    e.colour = Some(Rgb::new(0x10, 0x20, 0x30));
    pair.crm.seed(&pair.crm_col, e).unwrap();
    let syncer = pair.syncer(
        Arc::new(MemoryState::new()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    let p = pair.provider_titled("Call").unwrap();
    pair.provider
        .edit_item(&pair.col, &p.id, |e| e.colour = Some(Rgb::new(0xff, 0, 0)))
        .unwrap();
    let report = syncer.pull().await.unwrap();
    assert_eq!(report.skipped.len(), 1, "{report}");
    // The pair is postponed as a whole: both sides are read again by the next sync.
    assert_eq!(
        report.skipped[0].reason,
        crmsync::engine::SkipReason::NotWrittenThisRun
    );
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(
        pair.provider_titled("Call").unwrap().record.colour,
        Some(Rgb::new(0x10, 0x20, 0x30))
    );
    assert!(syncer.sync().await.unwrap().nothing_to_do());
}

/// A deletion that fails once (a 5xx) is retried next run on the survivor's current
/// version, read again, not on the link's stale one.
#[tokio::test]
async fn a_failed_deletion_is_retried_on_the_survivors_current_version() {
    let pair = Pair::<Event>::new();
    for (i, t) in ["A", "B", "C"].iter().enumerate() {
        pair.crm
            .seed(&pair.crm_col, event(t, 16 + i as u32))
            .unwrap();
    }
    let faulty = FaultInjecting::new(pair.provider.clone(), FaultPlan::none());
    let state = MemoryState::new();
    let syncer = pair.syncer_over(
        Arc::new(faulty.clone()),
        Arc::new(state.clone()),
        FieldPolicy::calendar_defaults(),
    );
    syncer.sync().await.unwrap();
    // The provider copy's colour is edited (a field it may not write, so no reason to keep
    // it), then the CRM record is deleted; the first deletion attempt fails.
    let a = pair.provider_titled("A").unwrap();
    pair.provider
        .edit_item(&pair.col, &a.id, |e| e.colour = Some(Rgb::new(1, 2, 3)))
        .unwrap();
    let crm_a = pair.crm_titled("A").unwrap();
    pair.crm.remove_item(&pair.crm_col, &crm_a.id).unwrap();
    faulty.set_plan(FaultPlan::none().fail_next(Operation::WriteBatch, 1, Fault::Server));
    let report = syncer.sync().await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.deleted, 1, "{report}");
    assert!(pair.provider_titled("A").is_none());
    assert!(state.deferred(&syncer.key()).await.unwrap().is_empty());
    assert_eq!(state.links(&syncer.key()).await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------
// One CRM collection, two accounts
// ---------------------------------------------------------------------------------------

/// A user's CRM calendar synced with two accounts (say Google and Outlook): what comes from
/// one account reaches the other through the CRM, once, and each account's copies are
/// recognised only by their own runs.
#[tokio::test]
async fn one_crm_collection_synced_with_two_accounts_relays_without_duplicates() {
    let crm = MemoryStore::<Event>::new();
    let crm_col = crm.add_collection("CRM");
    let a = MemoryStore::<Event>::new();
    let a_col = a.add_collection("Work");
    let b = MemoryStore::<Event>::new();
    let b_col = b.add_collection("Work");
    let clock = ManualClock::new(now());
    let state: Arc<dyn SyncState> = Arc::new(MemoryState::new());
    let syncer = |provider: &MemoryStore<Event>, col: &CollectionId, account: &str| {
        let mut options = SyncOptions::for_record::<Event>();
        options.window = Some(WindowSpec {
            months_before: 1,
            months_after: 12,
        });
        Syncer::new(
            Arc::new(crm.clone()),
            crm_col.clone(),
            Arc::new(provider.clone()),
            col.clone(),
            state.clone(),
            AccountId::new(account).unwrap(),
            FieldPolicy::calendar_defaults()
                .with_direction(EventField::Title, crmsync::Direction::Both),
        )
        .with_options(options)
        .with_clock(Arc::new(clock.clone()))
    };
    let to_a = syncer(&a, &a_col, "ann@gmail.example");
    let to_b = syncer(&b, &b_col, "ann@outlook.example");

    crm.seed(&crm_col, event("From the CRM", 20)).unwrap();
    a.seed(&a_col, event("From Google", 21)).unwrap();
    b.seed(&b_col, event("From Outlook", 22)).unwrap();

    for _ in 0..2 {
        for s in [&to_a, &to_b] {
            let report = s.sync().await.unwrap();
            assert!(report.errors.is_empty(), "{report}");
            assert!(report.skipped.is_empty(), "nothing is skipped: {report}");
        }
    }
    let sorted = |store: &MemoryStore<Event>, col: &CollectionId| {
        let mut t: Vec<String> = store
            .get_all(col)
            .unwrap()
            .into_iter()
            .map(|s| s.record.title)
            .collect();
        t.sort();
        t
    };
    let all = titles(&["From Google", "From Outlook", "From the CRM"]);
    assert_eq!(sorted(&crm, &crm_col), all);
    assert_eq!(sorted(&a, &a_col), all, "Outlook's event reached Google");
    assert_eq!(sorted(&b, &b_col), all, "Google's event reached Outlook");

    // The CRM copy of Google's event carries a key of Google's run, not a bare id.
    let from_google = crm
        .get_all(&crm_col)
        .unwrap()
        .into_iter()
        .find(|s| s.record.title == "From Google")
        .unwrap();
    let google_id = a
        .get_all(&a_col)
        .unwrap()
        .into_iter()
        .find(|s| s.record.title == "From Google")
        .unwrap()
        .id;
    let key = from_google.link_key.expect("a CRM copy carries a link key");
    assert_ne!(key.as_str(), google_id.as_str());
    assert!(key.as_str().ends_with(google_id.as_str()), "{key}");

    // An edit on Outlook of Google's event travels through the CRM to Google.
    let on_b = b
        .get_all(&b_col)
        .unwrap()
        .into_iter()
        .find(|s| s.record.title == "From Google")
        .unwrap();
    b.edit_item(&b_col, &on_b.id, |e| {
        e.title = "From Google, renamed on Outlook".into();
    })
    .unwrap();
    to_b.sync().await.unwrap();
    to_a.sync().await.unwrap();
    assert!(
        a.get_all(&a_col)
            .unwrap()
            .iter()
            .any(|s| s.record.title == "From Google, renamed on Outlook")
    );
    assert_eq!(a.get_all(&a_col).unwrap().len(), 3);
    assert_eq!(b.get_all(&b_col).unwrap().len(), 3);
    assert_eq!(crm.get_all(&crm_col).unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------
// A linked copy under a new id
// ---------------------------------------------------------------------------------------

/// Replaces the provider copy titled `title` by an identical one under a new id.
async fn rename(pair: &Pair<Event>, title: &str) -> Stored<Event> {
    let old = pair.provider_titled(title).unwrap();
    pair.provider.remove_item(&pair.col, &old.id).unwrap();
    let new = pair
        .provider
        .create(&pair.col, &old.record, old.link_key.as_ref().unwrap())
        .await
        .unwrap();
    assert_ne!(new.id, old.id);
    new
}

/// The provider gives a linked copy a new id (People renames merged contacts, listing
/// `previousResourceNames`): the old id is gone, a copy carrying the pair's link key shows
/// up. In a change feed and in a full listing alike, the link moves to it; nothing is
/// deleted or duplicated, and edits keep flowing both ways.
#[tokio::test]
async fn a_linked_copy_under_a_new_id_keeps_the_pair() {
    let pair = Pair::<Event>::new();
    let state = MemoryState::new();
    let policy = FieldPolicy::calendar_defaults()
        .with_direction(EventField::Title, crmsync::Direction::Both);
    let mut options = SyncOptions::for_record::<Event>();
    options.max_cursor_age = Some(Duration::from_secs(3600));
    let syncer = pair
        .syncer(Arc::new(state.clone()), policy)
        .with_options(options)
        .with_deletion_gate(ScriptedGate::answering(true));
    pair.crm.seed(&pair.crm_col, event("Renewal", 20)).unwrap();
    pair.crm.seed(&pair.crm_col, event("Audit", 21)).unwrap();
    syncer.sync().await.unwrap();

    // In the change feed (the old id's tombstone and the new copy).
    let renamed = rename(&pair, "Renewal").await;
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.deleted + report.crm.created, 0, "{report}");
    assert_eq!(
        report.provider.created + report.provider.deleted,
        0,
        "{report}"
    );
    assert!(report.skipped.is_empty(), "not a duplicate: {report}");
    let crm_id = pair.crm_titled("Renewal").unwrap().id;
    let link = state
        .links_by_crm(&syncer.key(), &[crm_id.clone().into()])
        .await
        .unwrap();
    assert_eq!(link[0].remote_id.as_str(), renamed.id.as_str());

    // An edit of the renamed copy reaches the CRM.
    pair.provider
        .edit_item(&pair.col, &renamed.id, |e| e.title = "Renewal 2027".into())
        .unwrap();
    syncer.sync().await.unwrap();
    assert_eq!(pair.crm_titles(), titles(&["Audit", "Renewal 2027"]));

    // In a full listing (the cursor is too old), the old id simply missing.
    let renamed = rename(&pair, "Audit").await;
    pair.clock.advance(Duration::from_secs(2 * 3600));
    let report = syncer.sync().await.unwrap();
    assert!(report.provider.full_listing, "{report}");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.crm.deleted + report.crm.created, 0, "{report}");
    assert_eq!(
        report.provider.created + report.provider.deleted,
        0,
        "{report}"
    );
    pair.crm
        .edit_item(&pair.crm_col, &pair.crm_titled("Audit").unwrap().id, |e| {
            e.title = "Audit (moved)".into()
        })
        .unwrap();
    syncer.sync().await.unwrap();
    assert_eq!(
        pair.provider.get_all(&pair.col).unwrap().len(),
        2,
        "no copy was made"
    );
    assert_eq!(
        pair.provider_titled("Audit (moved)").unwrap().id,
        renamed.id,
        "the CRM edit reached the renamed copy"
    );
    assert_no_duplicates(&pair);
}

// ---------------------------------------------------------------------------------------
// Servers that answer badly (issue 10 items 2 and 7)
// ---------------------------------------------------------------------------------------

/// A store that stores what it is sent but may answer a create with something we cannot
/// read (as a server echoing a time without offset did), and whose link-key lookup may
/// be refused (as a server answering the `$filter` with 400 did).
#[derive(Debug, Clone)]
struct AwkwardServer {
    inner: MemoryStore<Event>,
    unreadable_create_answers: Arc<Mutex<bool>>,
    refuse_lookups: Arc<Mutex<bool>>,
    creates_sent: Arc<Mutex<Vec<LinkKey>>>,
}

impl AwkwardServer {
    fn new(inner: MemoryStore<Event>) -> Self {
        AwkwardServer {
            inner,
            unreadable_create_answers: Arc::default(),
            refuse_lookups: Arc::default(),
            creates_sent: Arc::default(),
        }
    }
}

#[async_trait]
impl RecordStore<Event> for AwkwardServer {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Event>> {
        self.inner.changes(collection, request).await
    }
    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        self.inner.get(collection, id).await
    }
    async fn create(
        &self,
        collection: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        self.creates_sent.lock().unwrap().push(link_key.clone());
        let stored = self.inner.create(collection, record, link_key).await?;
        if *self.unreadable_create_answers.lock().unwrap() {
            return Err(Error::invalid_record(
                Some("start"),
                "dateTime \"2026-06-16T09:00:00\" has no UTC offset",
            ));
        }
        Ok(stored)
    }
    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        self.inner
            .update(collection, id, expected, record, fields)
            .await
    }
    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        self.inner.delete(collection, id, expected).await
    }
    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        if *self.refuse_lookups.lock().unwrap() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "400 ErrorInvalidUrlQueryFilter: the $filter is not supported",
            ));
        }
        self.inner.find_by_link_key(collection, link_key).await
    }
}

/// Item 2: a create the server stored but answered in a form we cannot read is "applied,
/// answer lost": its intent stays, the next run finds the copy by its link key and links
/// it. Before, the intent was cleared and every run created the event again.
#[tokio::test]
async fn a_create_whose_answer_cannot_be_read_is_linked_not_created_again() {
    let pair = Pair::<Event>::new();
    for (t, d) in [("a", 16), ("b", 17), ("c", 18)] {
        pair.crm.seed(&pair.crm_col, event(t, d)).unwrap();
    }
    let server = AwkwardServer::new(pair.provider.clone());
    *server.unreadable_create_answers.lock().unwrap() = true;
    let state = MemoryState::new();
    let syncer = || {
        pair.syncer_over(
            Arc::new(server.clone()),
            Arc::new(state.clone()),
            FieldPolicy::calendar_defaults(),
        )
    };
    let report = syncer().sync().await.unwrap();
    assert_eq!(report.errors.len(), 3, "{report}");
    assert_eq!(pair.provider_all().len(), 3);
    // The answers are still unreadable: the copies are found by link key, not re-created.
    for _ in 0..3 {
        let report = syncer().sync().await.unwrap();
        assert_eq!(report.provider.created, 0, "{report}");
        assert_eq!(pair.provider_all().len(), 3, "{report}");
    }
    assert_eq!(server.creates_sent.lock().unwrap().len(), 3);
    assert!(state.intents(&syncer().key()).await.unwrap().is_empty());
    assert_eq!(state.links(&syncer().key()).await.unwrap().len(), 3);
    assert!(syncer().sync().await.unwrap().nothing_to_do());
}

/// Item 7: a link-key lookup refused for one record is that record's error: the run
/// goes on (other records sync), the record is not created a second time while its
/// intent is unresolved, and it is linked once lookups work again.
#[tokio::test]
async fn a_refused_link_key_lookup_is_one_records_error() {
    let pair = Pair::<Event>::new();
    pair.crm
        .seed(&pair.crm_col, event("lost answer", 16))
        .unwrap();
    let server = AwkwardServer::new(pair.provider.clone());
    *server.unreadable_create_answers.lock().unwrap() = true;
    let state = MemoryState::new();
    let syncer = || {
        pair.syncer_over(
            Arc::new(server.clone()),
            Arc::new(state.clone()),
            FieldPolicy::calendar_defaults(),
        )
    };
    syncer().sync().await.unwrap();
    *server.unreadable_create_answers.lock().unwrap() = false;
    *server.refuse_lookups.lock().unwrap() = true;
    pair.crm.seed(&pair.crm_col, event("new one", 17)).unwrap();
    for _ in 0..2 {
        let report = syncer()
            .sync()
            .await
            .expect("a refused lookup never fails the run");
        assert_eq!(report.errors.len(), 1, "{report}");
        assert!(
            report.errors[0]
                .message
                .contains("ErrorInvalidUrlQueryFilter"),
            "{report}"
        );
    }
    assert_eq!(pair.provider_titles(), titles(&["lost answer", "new one"]));
    assert_eq!(server.creates_sent.lock().unwrap().len(), 2);
    *server.refuse_lookups.lock().unwrap() = false;
    let report = syncer().sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(state.links(&syncer().key()).await.unwrap().len(), 2);
    assert_eq!(pair.provider_titles(), titles(&["lost answer", "new one"]));
    assert!(syncer().sync().await.unwrap().nothing_to_do());
}
