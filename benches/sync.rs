//! Whole syncs, end to end: in-memory CRM and provider stores (the provider shaped like
//! Google Calendar / Google Contacts) with the SQLite state in a temporary file.
//!
//! - `noop_sync/{1000,10000}`: the time of a `sync()` with nothing to do, over that many
//!   linked events (linked by a first full sync outside the measurement).
//! - Before measuring, a table of **store calls per scenario** is printed to stderr: a first
//!   sync of 1,000 events and 2,000 contacts, a sync with nothing to do, a sync after
//!   editing 1% of the records on each side, a push of 10 records, and a sync after the
//!   provider's cursor expired. DESIGN.md's target: a sync with nothing to do costs one
//!   request per collection and side.
//!
//! ```text
//! cargo bench --bench sync
//! cargo bench --bench sync -- --warm-up-time 1 --measurement-time 3
//! ```

use std::sync::Arc;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crmsync::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync::memory::{MemoryStore, StoreStats, like_google_calendar, like_google_contacts};
use crmsync::sqlite::SqliteState;
use crmsync::{
    AccountId, CollectionId, Contact, CrmId, Event, ManualClock, Organization, Period, Record,
    SyncState, Usage, Zone,
};
use tokio::runtime::Runtime;

/// "Now" for every run: the window (1 month before, 12 after) never moves between runs.
fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn event(i: usize) -> Event {
    let first = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let day = first.checked_add_days(Days::new((i % 300) as u64)).unwrap();
    let start = day.and_hms_opt(8 + (i % 10) as u32, 0, 0).unwrap();
    let end = start + chrono::Duration::minutes(45);
    let zone: Zone = "Europe/Paris".parse().unwrap();
    let mut e = Event::new(
        format!("Meeting #{i}"),
        Period::timed(start, end, zone).unwrap(),
    );
    e.location = format!("Room {}", i % 12);
    e.reminder_minutes = Some(15);
    e.description = "Agenda: renewal, volumes, next steps.".into();
    e
}

fn contact(i: usize) -> Contact {
    let mut c = Contact::new(format!("Person {i}"))
        .with_email(&format!("person{i}@example.com"), Usage::Work)
        .unwrap()
        .with_phone(&format!("+33 6 {:08}", i), Usage::Mobile)
        .unwrap();
    c.organization = Organization {
        company: format!("Company {}", i % 50),
        job_title: "Buyer".into(),
    };
    c
}

/// One collection pair: the CRM, the provider, and the syncer between them.
struct Pair<R: Record> {
    crm: MemoryStore<R>,
    crm_collection: CollectionId,
    provider: MemoryStore<R>,
    provider_collection: CollectionId,
    syncer: Syncer<R>,
}

impl<R: Record> Pair<R> {
    fn new(
        provider: MemoryStore<R>,
        records: impl Iterator<Item = R>,
        state: Arc<dyn SyncState>,
        policy: FieldPolicy<R::Field>,
    ) -> Self {
        // The CRM answers listings in pages of 500 rows.
        let crm = MemoryStore::<R>::new().with_page_size(500);
        let crm_collection = crm.add_collection("crm");
        let provider_collection = provider.add_collection("provider");
        for r in records {
            crm.seed(&crm_collection, r).unwrap();
        }
        let syncer = Syncer::new(
            Arc::new(crm.clone()),
            crm_collection.clone(),
            Arc::new(provider.clone()),
            provider_collection.clone(),
            state,
            AccountId::new("bench@example.com").unwrap(),
            policy,
        )
        .with_options(SyncOptions {
            window: Some(WindowSpec {
                months_before: 1,
                months_after: 12,
            }),
            ..SyncOptions::default()
        })
        .with_clock(Arc::new(clock()));
        Pair {
            crm,
            crm_collection,
            provider,
            provider_collection,
            syncer,
        }
    }

    fn reset_stats(&self) {
        self.crm.reset_stats();
        self.provider.reset_stats();
    }

    /// Edits every 100th record of each side (1%), different records on each side.
    fn edit_one_percent(&self, edit: impl Fn(&mut R)) {
        let crm = self.crm.get_all(&self.crm_collection).unwrap();
        for item in crm.iter().step_by(100) {
            self.crm
                .edit_item(&self.crm_collection, &item.id, &edit)
                .unwrap();
        }
        let provider = self.provider.get_all(&self.provider_collection).unwrap();
        for item in provider.iter().skip(50).step_by(100) {
            self.provider
                .edit_item(&self.provider_collection, &item.id, &edit)
                .unwrap();
        }
    }
}

/// Google-like providers, with Google's page sizes (events 2,500, connections 1,000).
fn google_calendar() -> MemoryStore<Event> {
    MemoryStore::new()
        .with_capabilities(like_google_calendar())
        .with_page_size(2500)
}

fn google_contacts() -> MemoryStore<Contact> {
    MemoryStore::new()
        .with_capabilities(like_google_contacts())
        .with_page_size(1000)
}

/// One row of the store-call table: both pairs' calls, as the stores counted them.
struct Row {
    scenario: &'static str,
    calls: [StoreStats; 4],
    engine: [u64; 4],
    written: u64,
}

fn row(
    scenario: &'static str,
    events: &Pair<Event>,
    contacts: &Pair<Contact>,
    reports: &[&SyncReport; 2],
) -> Row {
    Row {
        scenario,
        calls: [
            events.crm.stats(),
            events.provider.stats(),
            contacts.crm.stats(),
            contacts.provider.stats(),
        ],
        engine: [
            reports[0].crm.requests,
            reports[0].provider.requests,
            reports[1].crm.requests,
            reports[1].provider.requests,
        ],
        written: reports.iter().map(|r| r.written()).sum(),
    }
}

fn calls(s: &StoreStats) -> String {
    let writes = s.batch_calls + s.create + s.update + s.delete;
    let reads = s.get + s.find_by_link_key;
    format!(
        "{:>5} ({}p {}r {}w)",
        s.requests, s.changes_pages, reads, writes
    )
}

/// Store calls per scenario, printed to stderr before the timings.
fn store_calls_per_scenario(rt: &Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn SyncState> = Arc::new(
        rt.block_on(SqliteState::open(dir.path().join("state.db")))
            .unwrap(),
    );
    let events = Pair::new(
        google_calendar(),
        (0..1_000).map(event),
        Arc::clone(&state),
        FieldPolicy::calendar_defaults(),
    );
    let contacts = Pair::new(
        google_contacts(),
        (0..2_000).map(contact),
        state,
        FieldPolicy::contact_defaults(),
    );
    let mut rows = Vec::new();
    let both = |rt: &Runtime| {
        let e = rt.block_on(events.syncer.sync()).unwrap();
        let c = rt.block_on(contacts.syncer.sync()).unwrap();
        assert!(e.is_success() && c.is_success(), "{e}\n{c}");
        (e, c)
    };

    let (e, c) = both(rt);
    assert_eq!(e.provider.created, 1_000);
    assert_eq!(c.provider.created, 2_000);
    rows.push(row(
        "first sync (1,000 events, 2,000 contacts)",
        &events,
        &contacts,
        &[&e, &c],
    ));

    events.reset_stats();
    contacts.reset_stats();
    let (e, c) = both(rt);
    assert!(e.nothing_to_do() && c.nothing_to_do(), "{e}\n{c}");
    rows.push(row(
        "no-op sync, right after it (reads its writes back)",
        &events,
        &contacts,
        &[&e, &c],
    ));

    events.reset_stats();
    contacts.reset_stats();
    let (e, c) = both(rt);
    assert!(e.nothing_to_do() && c.nothing_to_do(), "{e}\n{c}");
    rows.push(row("no-op sync", &events, &contacts, &[&e, &c]));

    events.edit_one_percent(|e: &mut Event| e.title.push_str(" (moved)"));
    contacts.edit_one_percent(|c: &mut Contact| c.notes.push_str("Called back."));
    events.reset_stats();
    contacts.reset_stats();
    let (e, c) = both(rt);
    assert_eq!(e.crm.updated + e.provider.updated, 20, "{e}");
    assert_eq!(c.crm.updated + c.provider.updated, 40, "{c}");
    rows.push(row(
        "1% edited on each side (10+10 events, 20+20 contacts)",
        &events,
        &contacts,
        &[&e, &c],
    ));

    // The CRM just changed 10 events: push them, no listing.
    let crm_events = events.crm.get_all(&events.crm_collection).unwrap();
    let mut pushed = Vec::new();
    for item in crm_events.iter().skip(7).step_by(100).take(10) {
        events
            .crm
            .edit_item(&events.crm_collection, &item.id, |e| {
                e.location = "Room 99".into()
            })
            .unwrap();
        pushed.push(CrmId::from(item.id.clone()));
    }
    events.reset_stats();
    contacts.reset_stats();
    let e = rt.block_on(events.syncer.push(&pushed)).unwrap();
    assert_eq!(e.provider.updated, 10, "{e}");
    let none = SyncReport::new(e.kind, String::new(), e.started_at);
    rows.push(row("push of 10 events", &events, &contacts, &[&e, &none]));

    // The next sync sees the pushed events in the CRM's feed: they are our own writes.
    events.reset_stats();
    contacts.reset_stats();
    let (e, c) = both(rt);
    assert_eq!(e.written() + c.written(), 0, "{e}\n{c}");
    rows.push(row(
        "sync after the push (the pushed edits come back)",
        &events,
        &contacts,
        &[&e, &c],
    ));

    events.provider.expire_cursors();
    contacts.provider.expire_cursors();
    events.reset_stats();
    contacts.reset_stats();
    let (e, c) = both(rt);
    assert_eq!(e.written() + c.written(), 0, "{e}\n{c}");
    rows.push(row(
        "provider cursors expired (full listing, reconciled)",
        &events,
        &contacts,
        &[&e, &c],
    ));

    eprintln!();
    eprintln!("store calls per scenario (SQLite state in a file; SyncOptions::default())");
    eprintln!(
        "  provider like Google: event pages of 2,500, write batches of 50; contact pages of 1,000,"
    );
    eprintln!(
        "  batches of 200; CRM pages of 500, batches of 1,000 (each store's own max_batch: SyncOptions::batch_size is None)"
    );
    eprintln!(
        "  each cell: store calls (p = change-feed/listing pages, r = reads, w = write requests)"
    );
    eprintln!(
        "  {:<54} {:>18} {:>18} {:>18} {:>18} {:>8}",
        "scenario",
        "events: crm",
        "events: provider",
        "contacts: crm",
        "contacts: provider",
        "written"
    );
    for r in &rows {
        eprintln!(
            "  {:<54} {:>18} {:>18} {:>18} {:>18} {:>8}",
            r.scenario,
            calls(&r.calls[0]),
            calls(&r.calls[1]),
            calls(&r.calls[2]),
            calls(&r.calls[3]),
            r.written
        );
        let store_side: Vec<u64> = r.calls.iter().map(|s| s.requests).collect();
        if store_side != r.engine {
            eprintln!(
                "    (the reports counted {:?}; the stores counted {store_side:?})",
                r.engine
            );
        }
    }
    eprintln!();
}

fn noop_sync(c: &mut Criterion) {
    let rt = runtime();
    store_calls_per_scenario(&rt);

    // Linked by a first full sync, then one no-op sync so the provider's change feed no
    // longer holds the echo of those creates: every measured run reads empty feeds.
    let fixtures: Vec<(usize, tempfile::TempDir, Pair<Event>)> = [1_000usize, 10_000]
        .into_iter()
        .map(|n| {
            let dir = tempfile::tempdir().unwrap();
            let state: Arc<dyn SyncState> = Arc::new(
                rt.block_on(SqliteState::open(dir.path().join("state.db")))
                    .unwrap(),
            );
            let pair = Pair::new(
                google_calendar(),
                (0..n).map(event),
                state,
                FieldPolicy::calendar_defaults(),
            );
            let first = rt.block_on(pair.syncer.sync()).unwrap();
            assert_eq!(first.provider.created, n as u64, "{first}");
            let echo = rt.block_on(pair.syncer.sync()).unwrap();
            assert!(echo.nothing_to_do(), "{echo}");
            (n, dir, pair)
        })
        .collect();

    let mut group = c.benchmark_group("noop_sync");
    group.sample_size(10);
    for (n, _, pair) in &fixtures {
        group.throughput(Throughput::Elements(*n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), pair, |b, pair| {
            b.to_async(&rt).iter(|| async {
                let report = pair.syncer.sync().await.unwrap();
                assert!(report.nothing_to_do(), "{report}");
                report
            })
        });
    }
    group.finish();

    // Where a no-op sync's time goes: the engine reads every link of the collection (to
    // count them, for the cap and the mass-deletion guard).
    let mut group = c.benchmark_group("sqlite_state_links");
    group.sample_size(10);
    for (n, dir, pair) in &fixtures {
        let key = pair.syncer.key();
        let state = rt
            .block_on(SqliteState::open(dir.path().join("state.db")))
            .unwrap();
        group.throughput(Throughput::Elements(*n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &key, |b, key| {
            b.to_async(&rt).iter(|| async {
                let links = state.links(key).await.unwrap();
                assert_eq!(links.len(), *n);
                links
            })
        });
    }
    group.finish();
}

criterion_group!(benches, noop_sync);
criterion_main!(benches);
