//! Requests a sync costs, counted by the fake (every endpoint): pushing 1,000 new events,
//! then a sync with nothing to do; and, in new processes over the same SQLite state, a
//! sync with nothing to do after pushing 1,500 events and 2,500 contacts. Printed for the
//! notes; the arithmetic asserted.

mod common;

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use crmsync_core::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync_core::{CalendarStoreExt, CollectionId, Contact, Event, ManualClock, Period, Usage};
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_sqlite::SqliteState;
use crmsync_testkit::Endpoint;

#[tokio::test]
async fn requests_to_push_1000_events_and_for_a_noop_sync() {
    let env = common::Env::new().await;
    let crm = MemoryStore::<Event>::new();
    let crm_col = crm.add_collection("CRM actions");
    for i in 0..1000u32 {
        let day = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
            + chrono::Duration::days(i64::from(i % 60));
        let start = day.and_hms_opt(8 + (i % 10), 0, 0).unwrap();
        let mut e = Event::new(
            format!("Action {i}"),
            Period::timed(
                start,
                start + chrono::Duration::minutes(30),
                "Europe/Paris".parse().unwrap(),
            )
            .unwrap(),
        );
        e.reminder_minutes = Some(10);
        crm.seed(&crm_col, e).unwrap();
    }
    let store = env.calendar();
    let calendar = store.configured_calendar().await.expect("calendar");
    let mut options = SyncOptions::for_record::<Event>();
    options.window = Some(WindowSpec {
        months_before: 1,
        months_after: 6,
    });
    let syncer = Syncer::new(
        Arc::new(crm.clone()),
        crm_col,
        store.clone(),
        calendar.id,
        Arc::new(MemoryState::new()),
        env.account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options)
    .with_clock(Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap(),
    )));

    env.fake.reset_counters();
    let report = syncer.sync().await.expect("first sync");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 1000, "{report}");
    let push = env.fake.request_counts();
    let http_requests = env.fake.total_http_requests();
    println!(
        "push 1,000 new events: {http_requests} HTTP requests; per endpoint (batch parts counted under their own endpoint too): {push:?}"
    );
    assert_eq!(
        push.get(&Endpoint::CalendarBatch),
        Some(&20),
        "1,000 creates in batches of 50"
    );
    assert_eq!(push.get(&Endpoint::EventsInsert), Some(&1000));
    assert_eq!(
        push.get(&Endpoint::Token),
        None,
        "a valid token is not refreshed"
    );
    assert_eq!(env.fake.live_event_count(common::CRM_CALENDAR), 1000);
    assert_eq!(http_requests, 21, "one full listing and 20 batches");

    env.fake.reset_counters();
    let report = syncer.sync().await.expect("no-op sync");
    assert_eq!(
        report.provider.created + report.provider.updated,
        0,
        "{report}"
    );
    let noop = env.fake.request_counts();
    println!(
        "no-op sync: {} HTTP request(s): {noop:?}",
        env.fake.total_http_requests()
    );
    assert_eq!(env.fake.total_http_requests(), 1);
    assert_eq!(noop.get(&Endpoint::EventsList), Some(&1));
}

/// The CRM's records (they outlive the processes of the sync, as the CRM's own tables do).
struct Crm {
    events: MemoryStore<Event>,
    events_col: CollectionId,
    contacts: MemoryStore<Contact>,
    contacts_col: CollectionId,
}

/// One process of the sync: new store clients over the fake (nothing cached), the state
/// opened from the SQLite file, the calendar found through the id the state remembers.
struct Process {
    state: Arc<SqliteState>,
    events: Syncer<Event>,
    contacts: Syncer<Contact>,
}

impl Process {
    async fn start(
        env: &common::Env,
        db: &std::path::Path,
        crm: &Crm,
        clock: &ManualClock,
    ) -> Self {
        let state = Arc::new(SqliteState::open(db).await.expect("open the state"));
        let calendar_store = env.calendar();
        let calendar = calendar_store
            .remembered_calendar(state.as_ref(), &env.account, "CRM")
            .await
            .expect("the calendar");
        // Caps raised above what is pushed (1,000 events and 2,000 contacts by default).
        let mut event_options = SyncOptions::for_record::<Event>();
        event_options.window = Some(WindowSpec {
            months_before: 1,
            months_after: 6,
        });
        event_options.guards.cap = Some(5_000);
        let events = Syncer::new(
            Arc::new(crm.events.clone()),
            crm.events_col.clone(),
            calendar_store,
            calendar,
            state.clone(),
            env.account.clone(),
            FieldPolicy::calendar_defaults(),
        )
        .with_options(event_options)
        .with_clock(Arc::new(clock.clone()));
        let contacts_store = env.contacts();
        let book = contacts_store.address_book();
        let mut contact_options = SyncOptions::for_record::<Contact>();
        contact_options.guards.cap = Some(5_000);
        let contacts = Syncer::new(
            Arc::new(crm.contacts.clone()),
            crm.contacts_col.clone(),
            contacts_store,
            book,
            state.clone(),
            env.account.clone(),
            FieldPolicy::contact_defaults(),
        )
        .with_options(contact_options)
        .with_clock(Arc::new(clock.clone()));
        Process {
            state,
            events,
            contacts,
        }
    }

    async fn sync(&self) -> (SyncReport, SyncReport) {
        let events = self.events.sync().await.expect("events sync");
        assert!(events.errors.is_empty(), "{events}");
        let contacts = self.contacts.sync().await.expect("contacts sync");
        assert!(contacts.errors.is_empty(), "{contacts}");
        (events, contacts)
    }

    async fn stop(self) {
        drop(self.events);
        drop(self.contacts);
        self.state.close().await;
    }
}

fn writes(report: &SyncReport) -> u64 {
    report.provider.created
        + report.provider.updated
        + report.provider.deleted
        + report.crm.created
        + report.crm.updated
        + report.crm.deleted
}

/// The API requests the fake received since the last reset, token refreshes left out.
fn api_requests(env: &common::Env) -> std::collections::BTreeMap<Endpoint, u64> {
    env.fake
        .request_counts()
        .into_iter()
        .filter(|(e, n)| *n > 0 && *e != Endpoint::Token)
        .collect()
}

/// The done-when of issue 10 (Google half): in a new process after pushing 1,500 events
/// and 2,500 contacts, a sync with nothing to do sends exactly 2 requests to Google, the
/// change feed of each collection.
#[tokio::test]
async fn a_noop_sync_in_a_new_process_after_pushing_1500_events_and_2500_contacts_costs_2_requests()
{
    let env = common::Env::new().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = dir.path().join("state.db");
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap());
    let (events, contacts) = (MemoryStore::<Event>::new(), MemoryStore::<Contact>::new());
    let crm = Crm {
        events_col: events.add_collection("CRM actions"),
        contacts_col: contacts.add_collection("CRM contacts"),
        events,
        contacts,
    };
    for i in 0..1500u32 {
        let day = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
            + chrono::Duration::days(i64::from(i % 90));
        let start = day.and_hms_opt(8 + (i % 10), 0, 0).unwrap();
        let mut e = Event::new(
            format!("Action {i}"),
            Period::timed(
                start,
                start + chrono::Duration::minutes(30),
                "Europe/Paris".parse().unwrap(),
            )
            .unwrap(),
        );
        e.reminder_minutes = Some(10);
        crm.events.seed(&crm.events_col, e).unwrap();
    }
    for i in 0..2500u32 {
        let c = Contact::new(format!("Contact {i}"))
            .with_email(&format!("c{i}@example.com"), Usage::Work)
            .unwrap();
        crm.contacts.seed(&crm.contacts_col, c).unwrap();
    }

    // Process 1: the push.
    let first = Process::start(&env, &db, &crm, &clock).await;
    let (events, contacts) = first.sync().await;
    assert_eq!(events.provider.created, 1500, "{events}");
    assert_eq!(contacts.provider.created, 2500, "{contacts}");
    first.stop().await;
    assert_eq!(env.fake.live_event_count(common::CRM_CALENDAR), 1500);
    assert_eq!(env.fake.contacts().len(), 2500);

    // Process 2: the change feeds hand back our own 4,000 writes (their tokens predate
    // them); reading them costs their pages and nothing else: no read per record, no
    // calendar or group lookup, no write.
    env.fake.reset_counters();
    let second = Process::start(&env, &db, &crm, &clock).await;
    let (events, contacts) = second.sync().await;
    assert_eq!(writes(&events) + writes(&contacts), 0, "{events}{contacts}");
    second.stop().await;
    let echo = api_requests(&env);
    println!("new process, the echo of 1,500 + 2,500 writes: {echo:?}");
    assert_eq!(
        echo,
        [(Endpoint::EventsList, 1), (Endpoint::ConnectionsList, 3)]
            .into_iter()
            .collect(),
        "one events page (maxResults 2,500) and three connections pages (pageSize 1,000)"
    );

    // Process 3: nothing to do costs one request per collection.
    env.fake.reset_counters();
    let third = Process::start(&env, &db, &crm, &clock).await;
    let (events, contacts) = third.sync().await;
    assert!(events.nothing_to_do(), "{events}");
    assert!(contacts.nothing_to_do(), "{contacts}");
    third.stop().await;
    let noop = api_requests(&env);
    println!("new process, a sync with nothing to do: {noop:?}");
    assert_eq!(
        noop,
        [(Endpoint::EventsList, 1), (Endpoint::ConnectionsList, 1)]
            .into_iter()
            .collect()
    );
    assert_eq!(noop.values().sum::<u64>(), 2);
}
