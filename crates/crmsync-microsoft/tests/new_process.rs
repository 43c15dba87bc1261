//! Requests per run in a new process: a new HTTP client, sign-in and stores (nothing learnt
//! by the stores of the run before), the state reopened from the same SQLite file, the
//! calendar and the folder known by id (as the CLI remembers them). Token refreshes are not
//! counted.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use crmsync_core::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync_core::{CollectionId, Contact, Event, ManualClock, Period, SyncState, Usage};
use crmsync_http::HttpClient;
use crmsync_memory::MemoryStore;
use crmsync_microsoft::{
    DEFAULT_CONTACT_FOLDER, GraphCalendar, GraphContacts, MicrosoftAuth, MicrosoftClient,
    mailbox_limiter,
};
use crmsync_sqlite::SqliteState;
use crmsync_testkit::graph::Endpoint;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn event(i: usize) -> Event {
    let start = NaiveDate::from_ymd_opt(2026, 6, 16)
        .unwrap()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        + chrono::Duration::hours(i as i64);
    Event::new(
        format!("Task {i}"),
        Period::timed(
            start,
            start + chrono::Duration::minutes(30),
            "Europe/Paris".parse().unwrap(),
        )
        .unwrap(),
    )
}

fn contact(i: usize) -> Contact {
    Contact::new(format!("Person {i}"))
        .with_email(&format!("person{i}@acme.example"), Usage::Work)
        .unwrap()
}

/// The host's side, which outlives processes: the CRM, the Graph fake, the state file.
struct Host {
    s: common::Setup,
    crm_events: MemoryStore<Event>,
    crm_events_col: CollectionId,
    crm_contacts: MemoryStore<Contact>,
    crm_contacts_col: CollectionId,
    calendar: CollectionId,
    _dir: tempfile::TempDir,
    state_path: std::path::PathBuf,
}

/// One process: its own clients and stores, the state opened from the file.
struct Process {
    events: Syncer<Event>,
    contacts: Syncer<Contact>,
    state: Arc<SqliteState>,
}

impl Host {
    async fn new(events: usize, contacts: usize) -> Host {
        let s = common::setup().await;
        s.signed_in(false).await;
        let calendar = CollectionId::new(s.fake.add_calendar("CRM")).unwrap();
        let crm_events = MemoryStore::<Event>::new();
        let crm_events_col = crm_events.add_collection("CRM actions");
        for i in 0..events {
            crm_events.seed(&crm_events_col, event(i)).unwrap();
        }
        let crm_contacts = MemoryStore::<Contact>::new();
        let crm_contacts_col = crm_contacts.add_collection("CRM contacts");
        for i in 0..contacts {
            crm_contacts.seed(&crm_contacts_col, contact(i)).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let state_path = dir.path().join("state.db");
        Host {
            s,
            crm_events,
            crm_events_col,
            crm_contacts,
            crm_contacts_col,
            calendar,
            _dir: dir,
            state_path,
        }
    }

    async fn process(&self) -> Process {
        let http = HttpClient::builder()
            .limiter(mailbox_limiter())
            .build()
            .unwrap();
        let auth = MicrosoftAuth::new(&self.s.config, http.clone(), self.s.tokens.clone());
        let client =
            MicrosoftClient::new(self.s.config.clone(), http, auth, self.s.account.clone());
        let state = Arc::new(SqliteState::open(&self.state_path).await.unwrap());
        let dyn_state: Arc<dyn SyncState> = state.clone();
        let clock = Arc::new(ManualClock::new(now()));
        let mut event_options = SyncOptions::for_record::<Event>();
        event_options.window = Some(WindowSpec {
            months_before: 1,
            months_after: 12,
        });
        event_options.guards.cap = Some(10_000);
        let mut contact_options = SyncOptions::for_record::<Contact>();
        contact_options.guards.cap = Some(10_000);
        let events = Syncer::new(
            Arc::new(self.crm_events.clone()),
            self.crm_events_col.clone(),
            Arc::new(GraphCalendar::new(client.clone())),
            self.calendar.clone(),
            dyn_state.clone(),
            self.s.account.clone(),
            FieldPolicy::calendar_defaults(),
        )
        .with_options(event_options)
        .with_clock(clock.clone());
        let contacts = Syncer::new(
            Arc::new(self.crm_contacts.clone()),
            self.crm_contacts_col.clone(),
            Arc::new(GraphContacts::new(client)),
            CollectionId::new(DEFAULT_CONTACT_FOLDER).unwrap(),
            dyn_state,
            self.s.account.clone(),
            FieldPolicy::contact_defaults(),
        )
        .with_options(contact_options)
        .with_clock(clock);
        Process {
            events,
            contacts,
            state,
        }
    }

    /// Runs both syncs in a new process; the reports and the requests Graph received, per
    /// endpoint (the token endpoint left out).
    async fn run(&self) -> (SyncReport, SyncReport, BTreeMap<Endpoint, u64>) {
        let p = self.process().await;
        self.s.fake.reset_counters();
        let events = p.events.sync().await.expect("events sync");
        let contacts = p.contacts.sync().await.expect("contacts sync");
        assert!(events.errors.is_empty(), "{events}");
        assert!(contacts.errors.is_empty(), "{contacts}");
        p.state.close().await;
        let counts = self
            .s
            .fake
            .request_counts()
            .into_iter()
            .filter(|(e, n)| *n > 0 && !e.is_identity())
            .collect();
        (events, contacts, counts)
    }
}

fn written(r: &SyncReport) -> u64 {
    r.crm.created
        + r.crm.updated
        + r.crm.deleted
        + r.provider.created
        + r.provider.updated
        + r.provider.deleted
}

/// Issue 10 item 8: after a run that created 30 events (and 30 contacts), the next run in a
/// new process read each event back (`GET /me/events/{id}`: the store learnt link keys only
/// of the events it created itself). The events' `transactionId` now carries the link key:
/// the echo costs the delta page alone.
#[tokio::test]
async fn the_echo_of_our_creates_costs_no_read_in_a_new_process() {
    let host = Host::new(30, 30).await;
    let (events, contacts, _) = host.run().await;
    assert_eq!(events.provider.created, 30, "{events}");
    assert_eq!(contacts.provider.created, 30, "{contacts}");
    let (events, contacts, counts) = host.run().await;
    println!("the run after the creates, in a new process: {counts:?}");
    assert_eq!(
        written(&events) + written(&contacts),
        0,
        "{events}\n{contacts}"
    );
    assert_eq!(counts.get(&Endpoint::EventGet), None, "{counts:?}");
    assert_eq!(
        counts.get(&Endpoint::CalendarViewDelta),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(counts.get(&Endpoint::ContactsDelta), Some(&1), "{counts:?}");
    // Left: the contacts store learns the link keys of contacts it has not seen in this
    // process with one listing of the folder (delta carries no extended property and
    // contacts have no transactionId); the engine would have to ask only for unlinked
    // items (see the note of issue 10).
    assert_eq!(counts.get(&Endpoint::ContactsList), Some(&1), "{counts:?}");
    assert_eq!(counts.len(), 3, "{counts:?}");
    let (_, _, counts) = host.run().await;
    assert_eq!(
        counts,
        [
            (Endpoint::CalendarViewDelta, 1),
            (Endpoint::ContactsDelta, 1)
        ]
        .into_iter()
        .collect(),
    );
}

/// Issue 10, done when: after pushing 1,500 events and 2,500 contacts (caps raised above
/// them), a sync with nothing to do in a new process sends exactly 2 requests to Graph:
/// one events delta and one contacts delta.
#[tokio::test]
async fn after_pushing_1500_events_and_2500_contacts_a_noop_sync_is_two_requests() {
    let host = Host::new(1500, 2500).await;
    let (events, contacts, counts) = host.run().await;
    println!("push: {counts:?}");
    assert_eq!(events.provider.created, 1500, "{events}");
    assert_eq!(contacts.provider.created, 2500, "{contacts}");
    // The next process reads the echo of the push: delta pages (100 items each) and no read
    // of any event; the contacts' link keys once, by a listing of 1,000 a page.
    let (events, contacts, counts) = host.run().await;
    println!("echo: {counts:?}");
    assert_eq!(
        written(&events) + written(&contacts),
        0,
        "{events}\n{contacts}"
    );
    assert_eq!(
        counts,
        [
            (Endpoint::CalendarViewDelta, 15),
            (Endpoint::ContactsDelta, 25),
            (Endpoint::ContactsList, 3),
        ]
        .into_iter()
        .collect(),
    );
    let (events, contacts, counts) = host.run().await;
    println!("nothing to do: {counts:?}");
    assert_eq!(
        written(&events) + written(&contacts),
        0,
        "{events}\n{contacts}"
    );
    assert_eq!(
        counts,
        [
            (Endpoint::CalendarViewDelta, 1),
            (Endpoint::ContactsDelta, 1)
        ]
        .into_iter()
        .collect(),
    );
    assert_eq!(host.s.fake.total_http_requests(), 2);
}
