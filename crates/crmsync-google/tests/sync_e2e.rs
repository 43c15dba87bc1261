//! End to end through the engine: an in-memory CRM ⇄ the Google calendar store on the
//! Google fake. Request counts come from the fake's own counters, every endpoint included.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use common::{CRM_CALENDAR, Env};
use crmsync_core::engine::SkipReason;
use crmsync_core::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Event, EventField,
    ItemId, LinkKey, ManualClock, Period, RecordStore, Result, Stored, Version, WriteOp,
    WriteOutcome,
};
use crmsync_google::GoogleCalendar;
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_testkit::{Endpoint, Fault, FaultTarget, Paging};
use serde_json::{Value, json};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn june(day: u32) -> Period {
    let d = NaiveDate::from_ymd_opt(2026, 6, day).unwrap();
    Period::all_day(d, d).unwrap()
}

fn meeting(title: &str, day: u32) -> Event {
    let start = NaiveDate::from_ymd_opt(2026, 6, day)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut e = Event::new(
        title,
        Period::timed(
            start,
            start + chrono::Duration::hours(1),
            "Europe/Paris".parse().unwrap(),
        )
        .unwrap(),
    );
    e.reminder_minutes = Some(15);
    e.location = "Office".into();
    e
}

/// A wrapper of the Google store that can act between the engine's steps: edit an event
/// behind the store's back right before an update (a stale etag), lose the answers of a
/// batch (the writes happened), or make the next state commit fail (a crash).
struct Meddling {
    inner: Arc<GoogleCalendar>,
    before_update: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    after_batch: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Runs once, after the first page of an incremental listing came back.
    after_first_incremental_page: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    lose_answers: AtomicBool,
}

impl std::fmt::Debug for Meddling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meddling")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Meddling {
    fn new(inner: Arc<GoogleCalendar>) -> Self {
        Meddling {
            inner,
            before_update: Mutex::new(None),
            after_batch: Mutex::new(None),
            after_first_incremental_page: Mutex::new(None),
            lose_answers: AtomicBool::new(false),
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl RecordStore<Event> for Meddling {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(&self, c: &CollectionId, r: ChangesRequest) -> Result<ChangePage<Event>> {
        let first_incremental = r.cursor.is_some() && r.page_token.is_none();
        let page = self.inner.changes(c, r).await;
        if first_incremental {
            let hook = self.after_first_incremental_page.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        page
    }
    async fn get(&self, c: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        self.inner.get(c, id).await
    }
    async fn create(&self, c: &CollectionId, r: &Event, k: &LinkKey) -> Result<Stored<Event>> {
        self.inner.create(c, r, k).await
    }
    async fn update(
        &self,
        c: &CollectionId,
        id: &ItemId,
        v: &Version,
        r: &Event,
        f: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        let hook = self.before_update.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.inner.update(c, id, v, r, f).await
    }
    async fn delete(&self, c: &CollectionId, id: &ItemId, v: &Version) -> Result<()> {
        self.inner.delete(c, id, v).await
    }
    async fn find_by_link_key(
        &self,
        c: &CollectionId,
        k: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        self.inner.find_by_link_key(c, k).await
    }
    async fn write_batch(
        &self,
        c: &CollectionId,
        ops: Vec<WriteOp<Event>>,
    ) -> Vec<Result<WriteOutcome<Event>>> {
        if ops.iter().any(|op| matches!(op, WriteOp::Update { .. })) {
            let hook = self.before_update.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        let results = self.inner.write_batch(c, ops).await;
        let hook = self.after_batch.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        if self.lose_answers.swap(false, Ordering::SeqCst) {
            return results
                .into_iter()
                .map(|_| {
                    Err(crmsync_core::Error::new(
                        crmsync_core::ErrorKind::Transport,
                        "the connection broke before the answer came",
                    ))
                })
                .collect();
        }
        results
    }
}

/// The CRM, the state, the Google store and a syncer factory.
struct World {
    env: Arc<Env>,
    crm: MemoryStore<Event>,
    crm_col: CollectionId,
    state: MemoryState,
    store: Arc<GoogleCalendar>,
    clock: ManualClock,
}

impl World {
    async fn new() -> World {
        let env = Arc::new(Env::new().await);
        let crm = MemoryStore::<Event>::new();
        let crm_col = crm.add_collection("CRM actions");
        let store = env.calendar();
        World {
            env,
            crm,
            crm_col,
            state: MemoryState::new(),
            store,
            clock: ManualClock::new(now()),
        }
    }

    fn syncer_over(&self, provider: Arc<dyn RecordStore<Event>>) -> Syncer<Event> {
        let mut options = SyncOptions::for_record::<Event>();
        options.window = Some(WindowSpec {
            months_before: 1,
            months_after: 3,
        });
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            provider,
            self.env.collection(),
            Arc::new(self.state.clone()),
            self.env.account.clone(),
            FieldPolicy::calendar_defaults(),
        )
        .with_options(options)
        .with_clock(Arc::new(self.clock.clone()))
    }

    fn syncer(&self) -> Syncer<Event> {
        self.syncer_over(self.store.clone())
    }

    async fn sync(&self) -> SyncReport {
        let report = self.syncer().sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        report
    }

    fn google_live(&self) -> Vec<Value> {
        self.env
            .fake
            .events(CRM_CALENDAR)
            .into_iter()
            .filter(|e| e["status"] != "cancelled")
            .collect()
    }

    fn google_titled(&self, title: &str) -> Value {
        let found: Vec<Value> = self
            .google_live()
            .into_iter()
            .filter(|e| e["summary"] == title)
            .collect();
        assert_eq!(found.len(), 1, "exactly one Google event titled {title:?}");
        found[0].clone()
    }

    fn crm_titled(&self, title: &str) -> Stored<Event> {
        let found: Vec<Stored<Event>> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .filter(|s| s.record.title == title)
            .collect();
        assert_eq!(found.len(), 1, "exactly one CRM event titled {title:?}");
        found[0].clone()
    }

    /// Both sides hold `n` events, with the same titles, each once.
    fn assert_mirrored(&self, n: usize) {
        let crm: Vec<String> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .map(|s| s.record.title)
            .collect();
        let google: Vec<String> = self
            .google_live()
            .into_iter()
            .map(|e| e["summary"].as_str().unwrap_or_default().to_owned())
            .collect();
        let (crm_set, google_set): (BTreeSet<_>, BTreeSet<_>) = (
            crm.iter().cloned().collect(),
            google.iter().cloned().collect(),
        );
        assert_eq!(crm.len(), n, "CRM: {crm:?}");
        assert_eq!(google.len(), n, "Google: {google:?}");
        assert_eq!(crm_set.len(), n, "duplicates in the CRM: {crm:?}");
        assert_eq!(google_set.len(), n, "duplicates on Google: {google:?}");
        assert_eq!(crm_set, google_set);
    }

    /// Three CRM events, two Google events, resolved calendar, first sync done.
    async fn first_sync(&self) -> SyncReport {
        for (i, title) in ["Call Ann", "Demo for Bob", "Quarterly review"]
            .iter()
            .enumerate()
        {
            let mut e = meeting(title, 16 + i as u32);
            e.colour = Some(crmsync_core::Rgb::new(0xd0, 0x20, 0x20));
            e.category = Some("Call".into());
            self.crm.seed(&self.crm_col, e).unwrap();
        }
        self.env.fake.seed_event(
            CRM_CALENDAR,
            json!({"summary": "Dentist", "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}}),
        );
        self.env.fake.seed_event(
            CRM_CALENDAR,
            json!({"summary": "Lunch with Carol",
                   "start": {"dateTime": "2026-06-22T12:00:00+02:00", "timeZone": "Europe/Paris"},
                   "end": {"dateTime": "2026-06-22T13:30:00+02:00", "timeZone": "Europe/Paris"},
                   "reminders": {"useDefault": false, "overrides": [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 30}]}}),
        );
        let calendar = self
            .store
            .configured_calendar()
            .await
            .expect("calendar by name");
        assert_eq!(calendar.id.as_str(), CRM_CALENDAR);
        let report = self.sync().await;
        self.assert_mirrored(5);
        report
    }

    /// Runs a sync with nothing to do and returns the fake's request counts.
    async fn noop_counts(&self) -> std::collections::BTreeMap<Endpoint, u64> {
        self.env.fake.reset_counters();
        let report = self.sync().await;
        assert_eq!(
            report.provider.created + report.provider.updated + report.provider.deleted,
            0,
            "{report}"
        );
        assert_eq!(
            report.crm.created + report.crm.updated + report.crm.deleted,
            0,
            "{report}"
        );
        self.env
            .fake
            .request_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[tokio::test]
async fn first_sync_links_both_sides_and_a_noop_sync_costs_one_request() {
    let w = World::new().await;
    let report = w.first_sync().await;
    assert_eq!(report.provider.created, 3, "{report}");
    assert_eq!(report.crm.created, 2, "{report}");

    // Copies carry the link key, the nearest palette colour, our popup reminder only.
    let call = w.google_titled("Call Ann");
    assert!(
        call["extendedProperties"]["private"]["crmsync_link"].is_string(),
        "{call}"
    );
    assert_eq!(
        call["extendedProperties"]["private"]["crmsync_category"],
        "Call"
    );
    assert_eq!(call["colorId"], "11");
    assert_eq!(
        call["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 15}]})
    );
    assert_eq!(call["start"]["timeZone"], "Europe/Paris");
    // The all-day event reads back with its inclusive last day.
    let dentist = w.crm_titled("Dentist");
    assert_eq!(dentist.record.period, june(20));
    assert_eq!(
        w.crm_titled("Lunch with Carol").record.reminder_minutes,
        Some(30)
    );

    let counts = w.noop_counts().await;
    println!("no-op sync requests per endpoint: {counts:?}");
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
    assert_eq!(w.env.fake.total_http_requests(), 1);
}

#[tokio::test]
async fn edits_on_both_sides_meet_and_the_users_email_reminder_survives() {
    let w = World::new().await;
    w.first_sync().await;
    // CRM: new title and reminder of "Call Ann"; Google: new location of "Demo for Bob".
    let call = w.crm_titled("Call Ann");
    w.crm
        .edit_item(&w.crm_col, &call.id, |e| {
            e.title = "Call Ann (moved)".into();
            e.reminder_minutes = Some(5);
        })
        .unwrap();
    let demo = w.google_titled("Demo for Bob");
    let demo_id = demo["id"].as_str().unwrap().to_owned();
    w.env
        .fake
        .edit_event(CRM_CALENDAR, &demo_id, json!({"location": "Room 12"}));
    // The user adds an email reminder to "Call Ann" in Google Calendar.
    let call_google = w.google_titled("Call Ann");
    let call_id = call_google["id"].as_str().unwrap().to_owned();
    w.env.fake.edit_event(
        CRM_CALENDAR,
        &call_id,
        json!({"reminders": {"useDefault": false, "overrides": [
            {"method": "popup", "minutes": 15}, {"method": "email", "minutes": 60}]}}),
    );

    let report = w.sync().await;
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(w.crm_titled("Demo for Bob").record.location, "Room 12");
    let call_google = w.google_titled("Call Ann (moved)");
    let overrides = call_google["reminders"]["overrides"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        overrides.contains(&json!({"method": "email", "minutes": 60})),
        "{overrides:?}"
    );
    assert!(
        overrides.contains(&json!({"method": "popup", "minutes": 5})),
        "{overrides:?}"
    );
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert_eq!(
        call_google["extendedProperties"]["private"]["crmsync_category"],
        "Call"
    );
    w.assert_mirrored(5);

    // The echo of our own write is no change.
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

#[tokio::test]
async fn an_expired_sync_token_leads_to_a_reconciling_full_listing() {
    let w = World::new().await;
    w.first_sync().await;
    w.env.fake.invalidate_calendar_sync_tokens();
    let lunch = w.google_titled("Lunch with Carol");
    w.env.fake.edit_event(
        CRM_CALENDAR,
        lunch["id"].as_str().unwrap(),
        json!({"description": "Bring the contract"}),
    );
    let report = w.sync().await;
    assert!(report.provider.cursor_expired, "{report}");
    assert!(report.provider.full_listing, "{report}");
    assert_eq!(
        w.crm_titled("Lunch with Carol").record.description,
        "Bring the contract"
    );
    w.assert_mirrored(5);
    // And the new cursor works.
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

#[tokio::test]
async fn a_stale_etag_is_no_lost_edit() {
    let w = World::new().await;
    w.first_sync().await;
    let call = w.crm_titled("Call Ann");
    w.crm
        .edit_item(&w.crm_col, &call.id, |e| e.title = "Call Ann (CRM)".into())
        .unwrap();
    // Between the listing and the write, the user edits the same event in Google.
    let meddling = Arc::new(Meddling::new(w.store.clone()));
    let env = w.env.clone();
    let id = w.google_titled("Call Ann")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    *meddling.before_update.lock().unwrap() = Some(Box::new(move || {
        env.fake
            .edit_event(CRM_CALENDAR, &id, json!({"location": "Google's room"}));
    }));
    let report = w.syncer_over(meddling.clone()).sync().await.expect("sync");
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(report.errors[0].message.contains("412"), "{report}");
    // The next run merges both edits.
    w.sync().await;
    let google = w.google_titled("Call Ann (CRM)");
    assert_eq!(google["location"], "Google's room");
    assert_eq!(
        w.crm_titled("Call Ann (CRM)").record.location,
        "Google's room"
    );
    w.assert_mirrored(5);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_without_sleeping() {
    let w = World::new().await;
    // calendarList: two 429s with Retry-After, then a 403 rateLimitExceeded.
    w.env.fake.inject(
        FaultTarget::Calendar,
        Fault::TooManyRequests {
            retry_after: Some(2),
        },
        2,
    );
    w.env
        .fake
        .inject(FaultTarget::Calendar, Fault::UserRateLimitExceeded, 1);
    // Two batch parts are rate limited (redone alone), and a listing meets a 503.
    w.env.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsInsert),
        Fault::RateLimitExceeded,
        2,
    );
    w.env.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::ServerError(503),
        1,
    );
    let started = std::time::Instant::now();
    w.first_sync().await;
    let delays = w.env.sleeper.delays();
    assert!(delays.len() >= 3, "{delays:?}");
    assert!(
        delays.contains(&Duration::from_secs(2)),
        "Retry-After honoured: {delays:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "nothing really slept"
    );
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

#[tokio::test]
async fn lost_answers_and_a_crash_before_the_state_commit_leave_no_duplicate() {
    let w = World::new().await;
    for i in 0..4 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 16 + i))
            .unwrap();
    }
    // Run 1: the batch reaches Google, but its answers are lost: the engine finds the
    // copies by their link keys at once.
    let meddling = Arc::new(Meddling::new(w.store.clone()));
    meddling.lose_answers.store(true, Ordering::SeqCst);
    let report = w.syncer_over(meddling).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 4, "{report}");
    w.assert_mirrored(4);

    // Run 2: two new CRM events; the writes succeed, then the process "dies" before the
    // state commit of their results.
    for i in 4..6 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 16 + i))
            .unwrap();
    }
    let meddling = Arc::new(Meddling::new(env_store(&w)));
    let state = w.state.clone();
    *meddling.after_batch.lock().unwrap() = Some(Box::new(move || state.fail_next_commit_after(0)));
    let crashed = w.syncer_over(meddling).sync().await;
    let err = crashed.expect_err("the state commit failed: the run stops");
    assert_eq!(err.kind(), &crmsync_core::ErrorKind::State, "{err}");
    assert_eq!(w.google_live().len(), 6, "the two writes reached Google");

    // Run 3, after a restart (a new store, nothing cached): no duplicates anywhere.
    let restarted = World {
        env: w.env.clone(),
        crm: w.crm.clone(),
        crm_col: w.crm_col.clone(),
        state: w.state.clone(),
        store: w.env.calendar(),
        clock: w.clock.clone(),
    };
    let report = restarted.sync().await;
    assert_eq!(
        report.provider.created, 0,
        "re-linked, not re-created: {report}"
    );
    restarted.assert_mirrored(6);
    let counts = restarted.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

fn env_store(w: &World) -> Arc<GoogleCalendar> {
    w.store.clone()
}

#[tokio::test]
async fn reset_then_relink_duplicates_nothing() {
    let w = World::new().await;
    w.first_sync().await;
    // Forget the links, keep the copies: the next run re-links by link key.
    w.syncer().reset(false).await.expect("reset");
    let report = w.sync().await;
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
    // Forget the links and remove our copies: the next run makes new ones (new ids: the
    // old ones are tombstones), once.
    w.syncer().reset(true).await.expect("reset");
    assert_eq!(w.google_live().len(), 2, "only the user's own events stay");
    let report = w.sync().await;
    assert_eq!(report.provider.created, 3, "{report}");
    w.assert_mirrored(5);
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

#[tokio::test]
async fn malformed_events_are_unreadable_per_record_and_the_page_goes_on() {
    use crmsync_http::testing::{Scripted, ScriptedService};
    let env = Env::new().await;
    let page = json!({
        "kind": "calendar#events",
        "items": [
            {"id": "good00001", "etag": "\"1\"", "status": "confirmed", "summary": "Fine",
             "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}},
            {"id": "badzone01", "etag": "\"2\"", "summary": "Unknown zone",
             "start": {"dateTime": "2026-06-20T10:00:00Z", "timeZone": "Mars/Olympus_Mons"},
             "end": {"dateTime": "2026-06-20T11:00:00Z", "timeZone": "Mars/Olympus_Mons"}},
            {"id": "baddate01", "etag": "\"3\"", "summary": "Impossible date",
             "start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}},
            {"id": "gone00001", "etag": "\"4\"", "status": "cancelled"},
            "not an event"
        ],
        "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU="
    });
    let transport = ScriptedService::new([Scripted::status(200, &page.to_string())]);
    let http = crmsync_http::HttpClient::builder()
        .service(Arc::new(transport.clone()))
        .build()
        .unwrap();
    let auth = crmsync_google::GoogleAuth::new(&env.config, http.clone(), env.tokens.clone());
    let client =
        crmsync_google::GoogleClient::new(env.config.clone(), http, auth, env.account.clone());
    let store = GoogleCalendar::new(client);
    let page = store
        .changes(&env.collection(), ChangesRequest::default())
        .await
        .expect("the page is read");
    assert_eq!(page.upserts.len(), 1);
    assert_eq!(page.upserts[0].item.record.title, "Fine");
    assert_eq!(page.removals.len(), 1);
    assert_eq!(page.unreadable.len(), 3);
    assert!(page.unreadable.iter().all(|u| matches!(
        u.error.kind(),
        crmsync_core::ErrorKind::InvalidRecord { .. }
    )));
    let ids: Vec<Option<String>> = page
        .unreadable
        .iter()
        .map(|u| u.id.as_ref().map(|i| i.as_str().to_owned()))
        .collect();
    assert_eq!(
        ids,
        [Some("badzone01".into()), Some("baddate01".into()), None]
    );
    assert!(matches!(page.next, crmsync_core::Continuation::Done(_)));
    assert_eq!(transport.sent().len(), 1);
}

#[tokio::test]
async fn a_410_between_two_pages_of_the_incremental_listing_recovers_without_duplicates() {
    let w = World::new().await;
    w.first_sync().await;
    // Four changes on Google, two per page: the token dies after the first page.
    for (title, patch) in [
        (
            "Lunch with Carol",
            json!({"description": "Bring the contract"}),
        ),
        ("Dentist", json!({"location": "Dr. Who"})),
        ("Call Ann", json!({"location": "Phone"})),
    ] {
        let id = w.google_titled(title)["id"].as_str().unwrap().to_owned();
        w.env.fake.edit_event(CRM_CALENDAR, &id, patch);
    }
    let demo = w.google_titled("Demo for Bob")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.env.fake.delete_event(CRM_CALENDAR, &demo));
    w.env.fake.set_paging(Paging {
        max_items_per_page: Some(2),
        empty_pages: false,
    });
    let meddling = Arc::new(Meddling::new(w.store.clone()));
    let env = w.env.clone();
    *meddling.after_first_incremental_page.lock().unwrap() =
        Some(Box::new(move || env.fake.invalidate_calendar_sync_tokens()));
    w.env.fake.reset_counters();
    let report = w.syncer_over(meddling).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.provider.cursor_expired, "{report}");
    assert!(report.provider.full_listing, "{report}");
    // The second page was refused, then the full listing ran from its first page.
    let list_calls = w.env.fake.requests(Endpoint::EventsList);
    assert!(
        list_calls >= 4,
        "two incremental pages and a paged full listing: {list_calls}"
    );

    // Nothing created, nothing deleted on either side; every edit arrived.
    assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
    assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
    assert_eq!(report.crm.updated, 3, "{report}");
    assert_eq!(
        w.crm_titled("Lunch with Carol").record.description,
        "Bring the contract"
    );
    assert_eq!(w.crm_titled("Dentist").record.location, "Dr. Who");
    assert_eq!(w.crm_titled("Call Ann").record.location, "Phone");
    // The deletion seen on the refused run's first page is not lost: the full listing
    // carries its tombstone, and it waits for confirmation (the default policy).
    assert_eq!(report.pending_deletions.len(), 1, "{report}");
    assert_eq!(w.crm.get_all(&w.crm_col).unwrap().len(), 5);
    assert_eq!(w.google_live().len(), 4);
    let titles: BTreeSet<String> = w
        .crm
        .get_all(&w.crm_col)
        .unwrap()
        .into_iter()
        .map(|s| s.record.title)
        .collect();
    assert_eq!(titles.len(), 5, "no duplicate in the CRM: {titles:?}");

    // The new cursor works: a quiet run lists once, and reads the deletion still waiting
    // for confirmation (a deferred item is looked at again, never forgotten).
    w.env.fake.set_paging(Paging::default());
    let counts = w.noop_counts().await;
    assert_eq!(
        counts,
        [(Endpoint::EventsList, 1), (Endpoint::EventsGet, 1)]
            .into_iter()
            .collect()
    );
}

#[tokio::test]
async fn a_recurring_series_and_its_exceptions_are_skipped_and_never_copied() {
    let w = World::new().await;
    let master = w.env.fake.seed_event(
        CRM_CALENDAR,
        json!({"summary": "Weekly standup",
               "start": {"dateTime": "2026-06-16T09:00:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2026-06-16T09:15:00", "timeZone": "Europe/Paris"},
               "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=8"]}),
    );
    let master_id = master["id"].as_str().unwrap().to_owned();
    // One occurrence moved and renamed, one cancelled: Google lists both beside the
    // master when instances are not expanded.
    let moved = w.env.fake.seed_recurring_exception(
        CRM_CALENDAR,
        &master_id,
        json!({"dateTime": "2026-06-23T09:00:00+02:00", "timeZone": "Europe/Paris"}),
        json!({"summary": "Weekly standup (moved)",
               "start": {"dateTime": "2026-06-23T11:00:00+02:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2026-06-23T11:15:00+02:00", "timeZone": "Europe/Paris"}}),
    );
    let moved_id = moved["id"].as_str().unwrap().to_owned();
    assert_eq!(moved["recurringEventId"], master_id.as_str());
    assert!(moved.get("recurrence").is_none(), "{moved}");
    w.env.fake.seed_recurring_exception(
        CRM_CALENDAR,
        &master_id,
        json!({"dateTime": "2026-06-30T09:00:00+02:00", "timeZone": "Europe/Paris"}),
        json!({"status": "cancelled"}),
    );
    w.env.fake.seed_event(
        CRM_CALENDAR,
        json!({"summary": "Dentist", "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}}),
    );
    w.crm.seed(&w.crm_col, meeting("Call Ann", 17)).unwrap();

    let report = w.sync().await;
    assert_eq!(report.crm.created, 1, "only the single event: {report}");
    assert_eq!(report.provider.created, 1, "{report}");
    let skipped: Vec<(String, SkipReason)> = report
        .skipped
        .iter()
        .map(|s| (s.id.clone(), s.reason.clone()))
        .collect();
    assert!(
        skipped.contains(&(master_id.clone(), SkipReason::Recurring)),
        "{report}"
    );
    assert!(
        skipped.contains(&(moved_id.clone(), SkipReason::Recurring)),
        "{report}"
    );
    let titles: BTreeSet<String> = w
        .crm
        .get_all(&w.crm_col)
        .unwrap()
        .into_iter()
        .map(|s| s.record.title)
        .collect();
    assert_eq!(
        titles,
        ["Call Ann", "Dentist"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // The series is untouched on Google.
    assert_eq!(
        w.env.fake.event(CRM_CALENDAR, &master_id).unwrap()["etag"],
        master["etag"]
    );

    // The user edits the series and the moved occurrence: still skipped, still not copied.
    w.env
        .fake
        .edit_event(CRM_CALENDAR, &master_id, json!({"location": "Room 1"}));
    w.env
        .fake
        .edit_event(CRM_CALENDAR, &moved_id, json!({"location": "Room 2"}));
    let report = w.sync().await;
    assert_eq!(report.crm.created + report.crm.updated, 0, "{report}");
    assert_eq!(
        report.provider.created + report.provider.updated,
        0,
        "{report}"
    );
    assert_eq!(
        report
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Recurring)
            .count(),
        2,
        "{report}"
    );
    assert_eq!(w.crm.get_all(&w.crm_col).unwrap().len(), 2);
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
}

#[tokio::test]
async fn impossible_dates_and_unknown_zones_from_google_are_record_errors_and_the_run_goes_on() {
    let w = World::new().await;
    w.env.fake.seed_raw_event(
        CRM_CALENDAR,
        json!({"id": "baddate01", "kind": "calendar#event", "status": "confirmed",
               "summary": "Impossible date",
               "start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}}),
    );
    w.env.fake.seed_raw_event(
        CRM_CALENDAR,
        json!({"id": "badzone01", "kind": "calendar#event", "status": "confirmed",
               "summary": "Unknown zone",
               "start": {"dateTime": "2026-06-20T10:00:00Z", "timeZone": "Mars/Olympus_Mons"},
               "end": {"dateTime": "2026-06-20T11:00:00Z", "timeZone": "Mars/Olympus_Mons"}}),
    );
    w.env.fake.seed_event(
        CRM_CALENDAR,
        json!({"summary": "Dentist", "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}}),
    );
    w.crm.seed(&w.crm_col, meeting("Call Ann", 17)).unwrap();

    let report = w.syncer().sync().await.expect("the run completes");
    let invalid = crmsync_core::ErrorKind::InvalidRecord {
        field: None,
        reason: String::new(),
    };
    let mut failed: Vec<(Option<String>, String)> = report
        .errors
        .iter()
        .map(|e| (e.id.clone(), e.kind.clone()))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            (Some("baddate01".into()), invalid.as_str().to_owned()),
            (Some("badzone01".into()), invalid.as_str().to_owned()),
        ],
        "{report}"
    );
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.side == crmsync_core::Side::Provider && !e.remedy.is_empty())
    );
    // The readable records synced both ways.
    assert_eq!(report.crm.created, 1, "{report}");
    assert_eq!(report.provider.created, 1, "{report}");
    w.crm_titled("Dentist");
    w.google_titled("Call Ann");
}

/// Issue 10, item 2 (provider half): a server that stores our events but echoes
/// `start.dateTime` without UTC offset (`"2026-06-20T10:00:00"`, `timeZone` beside it: the
/// form crmsync sends) used to make every answer an invalid record, so no link was recorded
/// and each run created the events again. The wall time is read in its `timeZone`, or in
/// the calendar's zone when the server drops that too.
#[tokio::test]
async fn date_times_echoed_without_offset_are_linked_and_never_duplicated() {
    for without_zone in [false, true] {
        let w = World::new().await;
        if without_zone {
            w.env.fake.echo_wall_times_without_zone(true);
        } else {
            w.env.fake.echo_wall_times(true);
        }
        for i in 0..10 {
            w.crm
                .seed(&w.crm_col, meeting(&format!("Meeting {i}"), 16 + i))
                .unwrap();
        }
        let report = w.sync().await;
        assert_eq!(report.provider.created, 10, "{report}");
        let sample = w.google_titled("Meeting 3");
        let echoed = w
            .store
            .get(
                &w.env.collection(),
                &ItemId::new(sample["id"].as_str().unwrap()).unwrap(),
            )
            .await
            .expect("read back");
        assert!(echoed.is_some());
        for run in [2, 3] {
            let report = w.sync().await;
            assert_eq!(
                report.provider.created + report.crm.created,
                0,
                "run {run} (without zone: {without_zone}): {report}"
            );
            assert_eq!(report.provider.updated + report.crm.updated, 0, "{report}");
        }
        assert_eq!(w.env.fake.live_event_count(CRM_CALENDAR), 10);
        w.assert_mirrored(10);
        let counts = w.noop_counts().await;
        assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
        // The CRM keeps the wall time it wrote.
        let Period::Timed { start, .. } = w.crm_titled("Meeting 3").record.period else {
            panic!("timed expected")
        };
        assert_eq!(start.format("%d %H:%M").to_string(), "19 10:00");

        if without_zone {
            // A store that has listed nothing yet reads the calendar's zone once, from its
            // calendarList entry, to read such an event.
            let fresh = w.env.calendar();
            let id = ItemId::new(sample["id"].as_str().unwrap()).unwrap();
            w.env.fake.reset_counters();
            for _ in 0..2 {
                let got = fresh.get(&w.env.collection(), &id).await.expect("get");
                assert_eq!(got.expect("live").record.title, "Meeting 3");
            }
            assert_eq!(w.env.fake.requests(Endpoint::CalendarListGet), 1);
            assert_eq!(w.env.fake.requests(Endpoint::EventsGet), 2);
        }
    }
}

/// Issue 10, item 3 (Google half): a listing whose last page has neither `nextPageToken`
/// nor `nextSyncToken` used to fail the whole run. It ends without a cursor: each run lists
/// in full and reconciles against the links, says so, deletes nothing, duplicates nothing.
#[tokio::test]
async fn a_listing_without_a_sync_token_is_listed_in_full_every_run() {
    let w = World::new().await;
    w.env.fake.omit_calendar_sync_tokens(true);
    let report = w.first_sync().await;
    assert!(report.provider.no_cursor, "{report}");
    assert_eq!(report.provider.created, 3, "{report}");
    assert_eq!(report.crm.created, 2, "{report}");

    // Edits on both sides still flow.
    let call = w.crm_titled("Call Ann");
    w.crm
        .edit_item(&w.crm_col, &call.id, |e| e.location = "Room 4".into())
        .unwrap();
    let lunch = w.google_titled("Lunch with Carol");
    w.env.fake.edit_event(
        CRM_CALENDAR,
        lunch["id"].as_str().unwrap(),
        json!({"description": "Bring the contract"}),
    );
    let report = w.sync().await;
    assert!(report.provider.no_cursor, "{report}");
    assert!(report.provider.full_listing, "{report}");
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.deleted + report.crm.deleted, 0, "{report}");
    assert_eq!(w.google_titled("Call Ann")["location"], "Room 4");
    assert_eq!(
        w.crm_titled("Lunch with Carol").record.description,
        "Bring the contract"
    );
    w.assert_mirrored(5);

    // Nothing to do: still a full listing (one page here), nothing written or deleted.
    let counts = w.noop_counts().await;
    assert_eq!(counts, [(Endpoint::EventsList, 1)].into_iter().collect());
    w.assert_mirrored(5);
}
