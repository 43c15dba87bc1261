//! The providers on their fakes: requests a sync costs, and the time of a sync with nothing
//! to do over loopback HTTP.
//!
//! Before measuring, a table of **HTTP requests per scenario**, counted by the fakes
//! (every endpoint, the token endpoint included), is printed to stderr:
//!
//! - Google: push 1,000 new events (Calendar batch, 50 per request), push 2,000 new contacts
//!   (People batchCreateContacts, 200 per request);
//! - Microsoft: push 1,000 new events and 2,000 new contacts (Graph `$batch`, 20 per
//!   request);
//!
//! each followed by the next run, which reads back the change feed's echo of those writes
//! (a page per 1,000 People connections, per 100 Graph delta items), and by a sync with
//! nothing to do.
//!
//! DESIGN.md's target for a sync with nothing to do: one request per collection.
//!
//! Then criterion times `noop_sync/{google,microsoft}_events_1000`: a `sync()` of 1,000
//! linked events with nothing to do, through the provider store and the fake's HTTP server.
//!
//! ```text
//! cargo bench --bench providers --features google,microsoft
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use crmsync::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync::google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig, GoogleContacts};
use crmsync::http::{ClientSecret, HttpClient};
use crmsync::memory::{MemoryState, MemoryStore, MemoryTokenStore};
use crmsync::microsoft::{
    GraphCalendar, GraphContacts, MicrosoftAuth, MicrosoftClient, MicrosoftConfig, mailbox_limiter,
};
use crmsync::{
    AccessToken, AccountId, CollectionId, Contact, Event, ManualClock, Organization, Period,
    Record, RecordStore, RefreshToken, TokenSet, TokenStore, Usage, Zone,
};
use crmsync_testkit::graph::{DEFAULT_MAILBOX, GraphFake, PUBLIC_CLIENT_ID};
use crmsync_testkit::{
    CalendarSpec, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USER, GoogleFake,
    SCOPE_CALENDAR, SCOPE_CONTACTS,
};
use tokio::runtime::Runtime;

const EVENTS: usize = 1_000;
const CONTACTS: usize = 2_000;
const GOOGLE_CALENDAR: &str = "crm-calendar@group.calendar.google.com";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap(),
    ))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn event(i: usize) -> Event {
    let first = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
    let day = first.checked_add_days(Days::new((i % 150) as u64)).unwrap();
    let start = day.and_hms_opt(8 + (i % 10) as u32, 0, 0).unwrap();
    let zone: Zone = "Europe/Paris".parse().unwrap();
    let mut e = Event::new(
        format!("Meeting #{i}"),
        Period::timed(start, start + chrono::Duration::minutes(45), zone).unwrap(),
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
        .with_phone(&format!("+33 6 {i:08}"), Usage::Mobile)
        .unwrap();
    c.organization = Organization {
        company: format!("Company {}", i % 40),
        job_title: "Buyer".into(),
    };
    c
}

fn crm_with<R: Record>(n: usize, make: fn(usize) -> R) -> (MemoryStore<R>, CollectionId) {
    let crm = MemoryStore::<R>::new();
    let col = crm.add_collection("CRM");
    for i in 0..n {
        crm.seed(&col, make(i)).unwrap();
    }
    (crm, col)
}

fn syncer<R: Record>(
    crm: &MemoryStore<R>,
    crm_col: &CollectionId,
    provider: Arc<dyn RecordStore<R>>,
    provider_col: CollectionId,
    account: &AccountId,
    policy: FieldPolicy<R::Field>,
) -> Syncer<R> {
    let mut options = SyncOptions::for_record::<R>();
    options.window = Some(WindowSpec {
        months_before: 1,
        months_after: 12,
    });
    Syncer::new(
        Arc::new(crm.clone()),
        crm_col.clone(),
        provider,
        provider_col,
        Arc::new(MemoryState::new()),
        account.clone(),
        policy,
    )
    .with_options(options)
    .with_clock(clock())
}

/// One row of the request table.
struct Row {
    scenario: String,
    requests: usize,
    detail: String,
}

/// Runs a sync and counts the requests the fake saw.
async fn counted<R: Record, E: Debug>(
    syncer: &Syncer<R>,
    reset: impl Fn(),
    count: impl Fn() -> (usize, E),
    scenario: &str,
    expect_created: u64,
) -> Row {
    reset();
    let report: SyncReport = syncer.sync().await.expect(scenario);
    assert!(report.errors.is_empty(), "{scenario}: {report}");
    assert_eq!(
        report.provider.created, expect_created,
        "{scenario}: {report}"
    );
    let (requests, detail) = count();
    Row {
        scenario: scenario.to_owned(),
        requests,
        detail: format!("{detail:?}"),
    }
}

// ---- Google -----------------------------------------------------------------------------

struct GoogleWorld {
    fake: GoogleFake,
    client: GoogleClient,
    account: AccountId,
}

async fn google_world() -> GoogleWorld {
    let fake = GoogleFake::start().await;
    fake.add_calendar(CalendarSpec::new(GOOGLE_CALENDAR, "CRM"));
    let config = GoogleConfig::new(DEFAULT_CLIENT_ID, ClientSecret::new(DEFAULT_CLIENT_SECRET))
        .with_root_url(&fake.base_url())
        .unwrap()
        .with_calendar_name("CRM");
    let issued = fake.issue_tokens(DEFAULT_USER, &[SCOPE_CALENDAR, SCOPE_CONTACTS]);
    let tokens = Arc::new(MemoryTokenStore::new());
    let account = AccountId::new(DEFAULT_USER).unwrap();
    tokens
        .save(
            &account,
            &TokenSet::new(
                AccessToken::new(issued.access_token),
                Some(RefreshToken::new(issued.refresh_token)),
                Utc::now() + chrono::Duration::minutes(59),
            )
            .with_scopes([SCOPE_CALENDAR, SCOPE_CONTACTS]),
        )
        .await
        .unwrap();
    let http = HttpClient::builder().build().unwrap();
    let auth = GoogleAuth::new(&config, http.clone(), tokens);
    let client = GoogleClient::new(config, http, auth, account.clone());
    GoogleWorld {
        fake,
        client,
        account,
    }
}

impl GoogleWorld {
    fn reset(&self) {
        self.fake.reset_counters();
    }

    fn count(&self) -> (usize, BTreeMap<crmsync_testkit::Endpoint, u64>) {
        (self.fake.total_http_requests(), self.fake.request_counts())
    }
}

async fn google_rows(rows: &mut Vec<Row>) -> (GoogleWorld, Syncer<Event>) {
    let world = google_world().await;
    let calendar = Arc::new(GoogleCalendar::new(world.client.clone()));
    let cal = calendar.configured_calendar().await.unwrap();
    let (crm, col) = crm_with(EVENTS, event);
    let events = syncer(
        &crm,
        &col,
        calendar,
        cal.id,
        &world.account,
        FieldPolicy::calendar_defaults(),
    );
    let (r, c) = (|| world.reset(), || world.count());
    rows.push(
        counted(
            &events,
            r,
            c,
            "google: push 1,000 new events",
            EVENTS as u64,
        )
        .await,
    );
    rows.push(counted(&events, r, c, "google: events, reading back our writes", 0).await);
    rows.push(counted(&events, r, c, "google: events, nothing to do", 0).await);

    let contacts_store = Arc::new(GoogleContacts::new(world.client.clone()));
    let book = contacts_store.address_book();
    let (crm, col) = crm_with(CONTACTS, contact);
    let contacts = syncer(
        &crm,
        &col,
        contacts_store,
        book,
        &world.account,
        FieldPolicy::contact_defaults(),
    );
    rows.push(
        counted(
            &contacts,
            r,
            c,
            "google: push 2,000 new contacts",
            CONTACTS as u64,
        )
        .await,
    );
    rows.push(
        counted(
            &contacts,
            r,
            c,
            "google: contacts, reading back our writes",
            0,
        )
        .await,
    );
    rows.push(counted(&contacts, r, c, "google: contacts, nothing to do", 0).await);
    (world, events)
}

// ---- Microsoft --------------------------------------------------------------------------

struct GraphWorld {
    fake: GraphFake,
    client: MicrosoftClient,
    account: AccountId,
}

async fn graph_world() -> GraphWorld {
    let fake = GraphFake::start().await;
    fake.add_calendar("CRM");
    let config = MicrosoftConfig::new(PUBLIC_CLIENT_ID)
        .with_graph_url(&fake.base_url())
        .unwrap()
        .with_authority_url(&fake.login_url())
        .unwrap()
        .with_calendar_name("CRM");
    let scopes = [
        crmsync::microsoft::SCOPE_CALENDARS,
        crmsync::microsoft::SCOPE_CONTACTS,
    ];
    let issued = fake.issue_tokens(DEFAULT_MAILBOX, &scopes);
    let tokens = Arc::new(MemoryTokenStore::new());
    let account = AccountId::new(DEFAULT_MAILBOX).unwrap();
    tokens
        .save(
            &account,
            &TokenSet::new(
                AccessToken::new(issued.access_token),
                Some(RefreshToken::new(issued.refresh_token)),
                Utc::now() + chrono::Duration::hours(1),
            )
            .with_scopes(scopes),
        )
        .await
        .unwrap();
    let http = HttpClient::builder()
        .limiter(mailbox_limiter())
        .build()
        .unwrap();
    let auth = MicrosoftAuth::new(&config, http.clone(), tokens);
    let client = MicrosoftClient::new(config, http, auth, account.clone());
    GraphWorld {
        fake,
        client,
        account,
    }
}

impl GraphWorld {
    fn reset(&self) {
        self.fake.reset_counters();
    }

    fn count(&self) -> (usize, BTreeMap<crmsync_testkit::graph::Endpoint, u64>) {
        (self.fake.total_http_requests(), self.fake.request_counts())
    }
}

async fn graph_rows(rows: &mut Vec<Row>) -> (GraphWorld, Syncer<Event>) {
    let world = graph_world().await;
    let calendar = Arc::new(GraphCalendar::new(world.client.clone()));
    let cal = calendar.configured_calendar().await.unwrap();
    let (crm, col) = crm_with(EVENTS, event);
    let events = syncer(
        &crm,
        &col,
        calendar,
        cal.id,
        &world.account,
        FieldPolicy::calendar_defaults(),
    );
    let (r, c) = (|| world.reset(), || world.count());
    rows.push(
        counted(
            &events,
            r,
            c,
            "microsoft: push 1,000 new events",
            EVENTS as u64,
        )
        .await,
    );
    rows.push(
        counted(
            &events,
            r,
            c,
            "microsoft: events, reading back our writes",
            0,
        )
        .await,
    );
    rows.push(counted(&events, r, c, "microsoft: events, nothing to do", 0).await);

    let contacts_store = Arc::new(GraphContacts::new(world.client.clone()));
    let folder = contacts_store.configured_folder().await.unwrap();
    let (crm, col) = crm_with(CONTACTS, contact);
    let contacts = syncer(
        &crm,
        &col,
        contacts_store,
        folder.id,
        &world.account,
        FieldPolicy::contact_defaults(),
    );
    rows.push(
        counted(
            &contacts,
            r,
            c,
            "microsoft: push 2,000 new contacts",
            CONTACTS as u64,
        )
        .await,
    );
    rows.push(
        counted(
            &contacts,
            r,
            c,
            "microsoft: contacts, reading back our writes",
            0,
        )
        .await,
    );
    rows.push(counted(&contacts, r, c, "microsoft: contacts, nothing to do", 0).await);
    (world, events)
}

fn print_rows(rows: &[Row]) {
    eprintln!("\nHTTP requests per scenario, counted by the fakes (every endpoint):");
    eprintln!("{:<46} {:>9}  per endpoint", "scenario", "requests");
    for row in rows {
        eprintln!("{:<46} {:>9}  {}", row.scenario, row.requests, row.detail);
    }
    eprintln!();
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let mut rows = Vec::new();
    let (google, google_events) = rt.block_on(google_rows(&mut rows));
    let (graph, graph_events) = rt.block_on(graph_rows(&mut rows));
    print_rows(&rows);

    let mut group = c.benchmark_group("noop_sync");
    group.sample_size(20);
    group.bench_function("google_events_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let report = google_events.sync().await.unwrap();
            assert_eq!(report.provider.created + report.provider.updated, 0);
        })
    });
    group.bench_function("microsoft_events_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let report = graph_events.sync().await.unwrap();
            assert_eq!(report.provider.created + report.provider.updated, 0);
        })
    });
    group.finish();
    drop((google, graph));
}

criterion_group!(benches, bench);
criterion_main!(benches);
