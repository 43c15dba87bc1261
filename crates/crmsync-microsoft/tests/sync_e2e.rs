//! End to end through the engine: an in-memory CRM, the Graph calendar store, the fake.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use crmsync_core::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, ErrorKind, Event,
    ItemId, LinkKey, ManualClock, Period, RecordStore, Result, Stored, Version,
};
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_microsoft::GraphCalendar;
use crmsync_testkit::graph::{Endpoint, Fault, FaultTarget};
use serde_json::{Value, json};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
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
            start + chrono::Duration::minutes(45),
            "Europe/Paris".parse().unwrap(),
        )
        .unwrap(),
    );
    e.reminder_minutes = Some(15);
    e.description = format!("About {title}");
    e
}

struct World {
    s: common::Setup,
    crm: MemoryStore<Event>,
    crm_col: CollectionId,
    state: MemoryState,
    calendar_id: CollectionId,
    store: Arc<GraphCalendar>,
}

impl World {
    async fn new() -> World {
        let s = common::setup().await;
        s.signed_in(false).await;
        let id = s.fake.add_calendar("CRM");
        let mut s = s;
        s.config = s.config.clone().with_calendar_name("CRM");
        let store = Arc::new(GraphCalendar::new(s.client()));
        let calendar = store.configured_calendar().await.expect("calendar by name");
        assert_eq!(calendar.id.as_str(), id);
        let crm = MemoryStore::<Event>::new();
        let crm_col = crm.add_collection("CRM actions");
        World {
            s,
            crm,
            crm_col,
            state: MemoryState::new(),
            calendar_id: calendar.id,
            store,
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
            self.calendar_id.clone(),
            Arc::new(self.state.clone()),
            self.s.account.clone(),
            FieldPolicy::calendar_defaults(),
        )
        .with_options(options)
        .with_clock(Arc::new(ManualClock::new(now())))
    }

    fn syncer(&self) -> Syncer<Event> {
        self.syncer_over(self.store.clone())
    }

    async fn sync(&self) -> SyncReport {
        let report = self.syncer().sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        report
    }

    fn graph_events(&self) -> Vec<Value> {
        self.s.fake.events(self.calendar_id.as_str())
    }

    fn graph_titled(&self, title: &str) -> Value {
        let found: Vec<Value> = self
            .graph_events()
            .into_iter()
            .filter(|e| e["subject"] == title)
            .collect();
        assert_eq!(found.len(), 1, "exactly one Graph event titled {title:?}");
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

    fn assert_mirrored(&self, n: usize) {
        let crm: Vec<String> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .map(|s| s.record.title)
            .collect();
        let graph: Vec<String> = self
            .graph_events()
            .into_iter()
            .map(|e| e["subject"].as_str().unwrap_or_default().to_owned())
            .collect();
        let (crm_set, graph_set): (BTreeSet<_>, BTreeSet<_>) = (
            crm.iter().cloned().collect(),
            graph.iter().cloned().collect(),
        );
        assert_eq!(crm.len(), n, "CRM: {crm:?}");
        assert_eq!(graph.len(), n, "Graph: {graph:?}");
        assert_eq!(crm_set, graph_set);
    }

    /// Three CRM events, two Outlook events, first sync done.
    async fn first_sync(&self) -> SyncReport {
        for (i, title) in ["Call Ann", "Demo for Bob", "Quarterly review"]
            .iter()
            .enumerate()
        {
            self.crm
                .seed(&self.crm_col, meeting(title, 16 + i as u32))
                .unwrap();
        }
        self.s.fake.seed_event(
            self.calendar_id.as_str(),
            json!({"subject": "Dentist", "isAllDay": true,
                   "start": {"dateTime": "2026-06-20T00:00:00", "timeZone": "UTC"},
                   "end": {"dateTime": "2026-06-21T00:00:00", "timeZone": "UTC"}}),
        );
        self.s.fake.seed_event(
            self.calendar_id.as_str(),
            json!({"subject": "Lunch with Carol",
                   "start": {"dateTime": "2026-06-22T12:00:00", "timeZone": "Romance Standard Time"},
                   "end": {"dateTime": "2026-06-22T13:30:00", "timeZone": "Romance Standard Time"},
                   "isReminderOn": true, "reminderMinutesBeforeStart": 30}),
        );
        let report = self.sync().await;
        self.assert_mirrored(5);
        report
    }

    /// Runs a sync with nothing to do; the fake's non-zero request counts.
    async fn noop_counts(&self) -> BTreeMap<Endpoint, u64> {
        self.s.fake.reset_counters();
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
        self.s
            .fake
            .request_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn one_delta() -> BTreeMap<Endpoint, u64> {
    [(Endpoint::CalendarViewDelta, 1)].into_iter().collect()
}

#[tokio::test]
async fn first_sync_links_both_sides_and_a_noop_sync_costs_one_request() {
    let w = World::new().await;
    let report = w.first_sync().await;
    assert_eq!(report.provider.created, 3, "{report}");
    assert_eq!(report.crm.created, 2, "{report}");
    // The copy carries the link key, the zone, the reminder, a transactionId.
    let call = w.graph_titled("Call Ann");
    let id = call["id"].as_str().unwrap();
    let props = w.s.fake.event_extended_properties(id);
    assert!(
        props.contains_key(crmsync_microsoft::LINK_PROPERTY)
            || props
                .keys()
                .any(|k| k.eq_ignore_ascii_case(crmsync_microsoft::LINK_PROPERTY)),
        "{props:?}"
    );
    assert_eq!(call["originalStartTimeZone"], "Romance Standard Time");
    assert_eq!(call["reminderMinutesBeforeStart"], 15);
    let lunch = w.crm_titled("Lunch with Carol");
    assert_eq!(lunch.record.reminder_minutes, Some(30));
    let counts = w.noop_counts().await;
    println!("no-op sync requests: {counts:?}");
    assert_eq!(counts, one_delta());
}

#[tokio::test]
async fn edits_on_both_sides_meet() {
    let w = World::new().await;
    w.first_sync().await;
    // Outlook side: the user renames the lunch (a partial delta update).
    let lunch = w.graph_titled("Lunch with Carol");
    w.s.fake.edit_event(
        lunch["id"].as_str().unwrap(),
        json!({"subject": "Lunch with Carol and Dan"}),
    );
    // CRM side: a new location.
    let demo = w.crm_titled("Demo for Bob");
    let mut edited = demo.record.clone();
    edited.location = "Room 7".into();
    w.crm
        .update(
            &w.crm_col,
            &demo.id,
            &demo.version,
            &edited,
            &[crmsync_core::EventField::Location].into_iter().collect(),
        )
        .await
        .unwrap();
    let report = w.sync().await;
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.updated, 1, "{report}");
    w.crm_titled("Lunch with Carol and Dan");
    assert_eq!(
        w.graph_titled("Demo for Bob")["location"]["displayName"],
        "Room 7"
    );
    // The partial update did not wipe the lunch's other fields in the CRM.
    let lunch = w.crm_titled("Lunch with Carol and Dan");
    assert_eq!(lunch.record.reminder_minutes, Some(30));
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn an_expired_delta_token_leads_to_a_reconciling_full_listing() {
    let w = World::new().await;
    w.first_sync().await;
    w.s.fake.expire_delta_tokens();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn a_410_in_the_middle_of_a_run_is_cursor_expired_then_recovered() {
    let w = World::new().await;
    w.first_sync().await;
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::SyncStateNotFound,
        1,
    );
    let err = w
        .store
        .changes(
            &w.calendar_id,
            ChangesRequest {
                cursor: Some(
                    crmsync_core::Cursor::new(format!(
                        "{}/me/calendars/x/calendarView/delta?$deltatoken=stale",
                        w.s.fake.base_url()
                    ))
                    .unwrap(),
                ),
                ..ChangesRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CursorExpired, "{err}");
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::SyncStateNotFound,
        1,
    );
    let report = w.sync().await;
    assert_eq!(report.provider.created + report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
}

#[tokio::test]
async fn a_throttling_storm_is_waited_out_without_sleeping() {
    let w = World::new().await;
    for i in 0..4 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 16 + i))
            .unwrap();
    }
    w.s.fake.inject(
        FaultTarget::Any,
        Fault::ApplicationThrottled {
            retry_after: Some(3),
        },
        3,
    );
    let report = w.sync().await;
    assert_eq!(report.provider.created, 4, "{report}");
    w.assert_mirrored(4);
    let waits = w.s.sleeper.delays();
    assert_eq!(waits, vec![std::time::Duration::from_secs(3); 3]);
}

#[tokio::test]
async fn a_crash_before_the_state_commit_leaves_no_duplicate() {
    let w = World::new().await;
    for i in 0..3 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 16 + i))
            .unwrap();
    }
    let crashing = Arc::new(common::CrashAfterCreate {
        inner: w.store.clone(),
        state: w.state.clone(),
    });
    let err = w
        .syncer_over(crashing)
        .sync()
        .await
        .expect_err("the state commit failed: the run stops");
    assert_eq!(err.kind(), &ErrorKind::State, "{err}");
    assert!(!w.graph_events().is_empty(), "writes reached Graph");
    // After a restart (a new store): re-linked by link key, not re-created.
    let restarted = Arc::new(GraphCalendar::new(w.s.client()));
    let report = w.syncer_over(restarted).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    w.assert_mirrored(3);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn reset_then_relink_duplicates_nothing() {
    let w = World::new().await;
    w.first_sync().await;
    w.syncer().reset(false).await.expect("reset");
    let report = w.sync().await;
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn sentinel_tokens_never_show_in_recorded_urls_or_reports() {
    let w = World::new().await;
    let tokens = w.s.signed_in(true).await;
    let report = w.first_sync().await;
    let text = format!("{report} {report:?} {:?}", w.store);
    let secrets = [
        tokens.access_token.secret().to_owned(),
        tokens.refresh_token.clone().unwrap().secret().to_owned(),
    ];
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()));
        for r in w.s.fake.recorded_requests() {
            assert!(!r.url.contains(secret.as_str()), "{}", r.url);
        }
    }
}

#[tokio::test]
async fn a_series_and_its_exception_are_one_skipped_record_never_copied() {
    let w = World::new().await;
    w.first_sync().await;
    // A weekly series in the window, with one occurrence moved (an exception) and one
    // cancelled, as the user would make them in Outlook.
    let master = w.s.fake.seed_event(
        w.calendar_id.as_str(),
        json!({"subject": "Team standup",
               "start": {"dateTime": "2026-06-16T07:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-06-16T07:15:00", "timeZone": "UTC"},
               "recurrence": {
                   "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
                   "range": {"type": "numbered", "startDate": "2026-06-16", "numberOfOccurrences": 8}}}),
    );
    let master_id = master["id"].as_str().unwrap().to_owned();
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    assert!(w.s.fake.edit_occurrence(
        &master_id,
        day(6, 23),
        json!({"subject": "Team standup (long)",
               "end": {"dateTime": "2026-06-23T08:00:00", "timeZone": "UTC"}})
    ));
    assert!(w.s.fake.cancel_occurrence(&master_id, day(6, 30)));
    let report = w.sync().await;
    assert_eq!(report.crm.created, 0, "{report}");
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| s.reason == crmsync_core::engine::SkipReason::Recurring)
        .collect();
    assert_eq!(
        skipped.len(),
        1,
        "one record for the whole series: {report}"
    );
    assert_eq!(
        w.s.fake.immutable_id(&skipped[0].id),
        w.s.fake.immutable_id(&master_id)
    );
    // The series' master was read once, and the CRM holds no piece of it.
    assert!(
        w.crm
            .get_all(&w.crm_col)
            .unwrap()
            .iter()
            .all(|s| !s.record.title.starts_with("Team standup"))
    );
    // The store reports it as recurring, with its rule and its exception.
    let store = GraphCalendar::new(w.s.client());
    let page = crmsync_core::RecordStoreExt::changes_to_end(
        &store,
        &w.calendar_id,
        None,
        Some(crmsync_core::Window::new(now(), now() + chrono::Duration::days(60)).unwrap()),
    )
    .await
    .unwrap();
    let series: Vec<_> = page
        .upserts
        .iter()
        .filter(|u| u.item.record.title.starts_with("Team standup"))
        .collect();
    assert_eq!(series.len(), 1);
    let recurrence = series[0].item.record.recurrence.clone().unwrap();
    assert_eq!(
        recurrence.rules,
        ["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=8"]
    );
    assert_eq!(recurrence.exceptions.len(), 1);
    assert!(crmsync_core::Record::is_recurring(&series[0].item.record));
    // Another edit of one occurrence: still one skipped record, nothing copied.
    w.s.fake.edit_occurrence(
        &master_id,
        day(7, 7),
        json!({"subject": "Team standup (remote)"}),
    );
    let report = w.sync().await;
    assert_eq!(report.crm.created + report.crm.updated, 0, "{report}");
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert_eq!(w.crm.get_all(&w.crm_col).unwrap().len(), 5);
    assert_eq!(
        w.graph_events().len(),
        6,
        "five singles and the series master"
    );
}

/// The Graph store, whose delta rounds expire after their first page (tenant maintenance in
/// the middle of a run, MS-CAL-17).
#[derive(Debug)]
struct ExpiresBetweenPages {
    inner: Arc<GraphCalendar>,
    fake: Arc<crmsync_testkit::graph::GraphFake>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl RecordStore<Event> for ExpiresBetweenPages {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(&self, c: &CollectionId, r: ChangesRequest) -> Result<ChangePage<Event>> {
        let page = self.inner.changes(c, r).await?;
        if matches!(page.next, crmsync_core::Continuation::NextPage(_))
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.fake.expire_delta_tokens();
        }
        Ok(page)
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
        f: &BTreeSet<crmsync_core::EventField>,
    ) -> Result<Stored<Event>> {
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
}

#[tokio::test]
async fn a_delta_round_expiring_between_its_pages_restarts_as_a_full_listing() {
    let w = World::new().await;
    w.first_sync().await;
    // More changes than one page holds (100), made in Outlook.
    for i in 0..120u32 {
        w.s.fake.seed_event(
            w.calendar_id.as_str(),
            json!({"subject": format!("Booked {i}"),
                   "start": {"dateTime": format!("2026-07-{:02}T{:02}:00:00", 1 + i / 10, 8 + i % 10), "timeZone": "UTC"},
                   "end": {"dateTime": format!("2026-07-{:02}T{:02}:30:00", 1 + i / 10, 8 + i % 10), "timeZone": "UTC"}}),
        );
    }
    let lunch = w.graph_titled("Lunch with Carol");
    w.s.fake.edit_event(
        lunch["id"].as_str().unwrap(),
        json!({"subject": "Lunch with Carol, moved"}),
    );
    let expiring = Arc::new(ExpiresBetweenPages {
        inner: w.store.clone(),
        fake: w.s.fake.clone(),
        armed: std::sync::atomic::AtomicBool::new(true),
    });
    let report = w.syncer_over(expiring).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.provider.cursor_expired, "{report}");
    assert!(report.provider.full_listing, "{report}");
    assert_eq!(report.crm.created, 120, "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.created, 0, "{report}");
    w.crm_titled("Lunch with Carol, moved");
    w.assert_mirrored(125);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn a_storm_of_429s_and_mailbox_concurrency_refusals_is_waited_out() {
    let w = World::new().await;
    for i in 0..30u32 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 16 + i % 14))
            .unwrap();
    }
    w.s.fake.inject(
        FaultTarget::Any,
        Fault::TooManyRequests {
            retry_after: Some(2),
        },
        2,
    );
    w.s.fake.inject(
        FaultTarget::Any,
        Fault::ApplicationThrottled {
            retry_after: Some(1),
        },
        2,
    );
    // Four refusals in a row stay within the one retry policy's five attempts of a call
    // (more would end the call: the policy, not a second loop, bounds the attempts).
    let report = w.sync().await;
    assert_eq!(report.provider.created, 30, "{report}");
    w.assert_mirrored(30);
    let waits = w.s.sleeper.delays();
    assert!(!waits.is_empty());
    assert!(
        waits
            .iter()
            .all(|d| *d == std::time::Duration::from_secs(2)
                || *d == std::time::Duration::from_secs(1)),
        "only the waits Graph asked for: {waits:?}"
    );
    // Our own limiter never let more than 4 requests of the mailbox be in flight.
    assert!(w.s.fake.peak_in_flight() <= 4);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn pushing_a_thousand_events_then_a_noop_sync() {
    let w = World::new().await;
    for i in 0..1000u32 {
        let start = NaiveDate::from_ymd_opt(2026, 6, 16)
            .unwrap()
            .and_hms_opt(6, 0, 0)
            .unwrap()
            + chrono::Duration::hours(i64::from(i));
        let mut e = Event::new(
            format!("Task {i}"),
            Period::timed(
                start,
                start + chrono::Duration::minutes(30),
                "UTC".parse().unwrap(),
            )
            .unwrap(),
        );
        // Not a preset: snapped to Dark blue, and read back as such without an echo.
        e.colour = Some(crmsync_core::Rgb::new(0x30, 0x60, 0xb0));
        w.crm.seed(&w.crm_col, e).unwrap();
    }
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 1000, "{report}");
    let http = w.s.fake.total_http_requests();
    println!(
        "pushing 1,000 events: {http} HTTP requests {:?}",
        w.s.fake.request_counts()
    );
    // One delta listing, one master-category listing and creation, 50 batches.
    assert_eq!(w.s.fake.requests(Endpoint::Batch), 50);
    assert_eq!(http, 53);
    // The next run reads the echo of our 1,000 writes (ten delta pages of 100) and writes
    // nothing back; after it, a sync with nothing to do is one request.
    let echo = w.noop_counts().await;
    println!("sync reading the echo of the push: {echo:?}");
    assert_eq!(
        echo,
        [(Endpoint::CalendarViewDelta, 10)].into_iter().collect()
    );
    let counts = w.noop_counts().await;
    println!("no-op sync: {counts:?}");
    assert_eq!(counts, one_delta());
}

#[tokio::test]
async fn bad_items_from_graph_are_per_record_errors_and_the_run_goes_on() {
    let w = World::new().await;
    w.first_sync().await;
    let lunch = w.graph_titled("Lunch with Carol");
    w.s.fake.edit_event(
        lunch["id"].as_str().unwrap(),
        json!({"subject": "Lunch at noon"}),
    );
    let when = |d: &str| json!({"dateTime": d, "timeZone": "UTC"});
    w.s.fake.inject_delta_items(vec![
        // A partial object without an id.
        json!({"@odata.type": "#microsoft.graph.event", "subject": "who am I"}),
        // An unknown Windows zone.
        json!({"@odata.type": "#microsoft.graph.event", "id": "AAkALgAAbadzone0", "subject": "Zone",
               "@odata.etag": "W/\"x1\"", "start": when("2026-06-25T10:00:00.0000000"),
               "end": when("2026-06-25T11:00:00.0000000"), "originalStartTimeZone": "Mars Standard Time"}),
        // An impossible date.
        json!({"@odata.type": "#microsoft.graph.event", "id": "AAkALgAAbaddate0", "subject": "Date",
               "@odata.etag": "W/\"x2\"", "start": when("2026-02-30T10:00:00.0000000"),
               "end": when("2026-02-30T11:00:00.0000000")}),
        // Malformed: times that are not dateTimeTimeZone objects.
        json!({"@odata.type": "#microsoft.graph.event", "id": "AAkALgAAbadjson0", "subject": 42,
               "@odata.etag": "W/\"x3\"", "start": "tomorrow", "end": ["soon"]}),
    ]);
    let report = w.syncer().sync().await.expect("the run goes on");
    println!("{report}");
    assert_eq!(report.errors.len(), 4, "{report}");
    assert!(
        report.errors.iter().all(|e| e.kind == "invalid record"),
        "{report}"
    );
    for id in ["AAkALgAAbadzone0", "AAkALgAAbaddate0", "AAkALgAAbadjson0"] {
        assert!(
            report.errors.iter().any(|e| e.id.as_deref() == Some(id)),
            "{id}: {report}"
        );
    }
    assert_eq!(
        report.crm.updated, 1,
        "the good change went through: {report}"
    );
    w.crm_titled("Lunch at noon");
    w.assert_mirrored(5);
}

#[tokio::test]
async fn a_cut_short_page_is_a_typed_error_read_again() {
    let w = World::new().await;
    w.first_sync().await;
    let lunch = w.graph_titled("Lunch with Carol");
    w.s.fake.edit_event(
        lunch["id"].as_str().unwrap(),
        json!({"subject": "Lunch, late"}),
    );
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::MalformedJson,
        1,
    );
    // The store reports the page as a typed provider error, never a panic or a guess.
    let cursor_page = w
        .store
        .changes(
            &w.calendar_id,
            ChangesRequest {
                window: Some(
                    crmsync_core::Window::new(now(), now() + chrono::Duration::days(30)).unwrap(),
                ),
                ..ChangesRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(cursor_page.kind(), &ErrorKind::Provider, "{cursor_page}");
    assert!(
        cursor_page.to_string().contains("not the JSON expected"),
        "{cursor_page}"
    );
    // In a run, a malformed page is a protocol violation: never sent again at once (one
    // retry policy, which retries no permanent error), the run fails with the typed
    // error and writes nothing; the next run reads the page again, nothing lost or doubled.
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::MalformedJson,
        1,
    );
    let failed = w.syncer().sync().await.unwrap_err();
    assert_eq!(failed.kind(), &ErrorKind::Provider, "{failed}");
    w.crm_titled("Lunch with Carol");
    let report = w.sync().await;
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.requests, 1, "{report}");
    w.crm_titled("Lunch, late");
    w.assert_mirrored(5);
}

/// Issue 10 item 3 (Graph half): a calendarView delta round whose last page has neither
/// `@odata.nextLink` nor `@odata.deltaLink` is a listing without a cursor: two runs
/// succeed and say so, nothing is duplicated or deleted, and an Outlook edit made
/// meanwhile comes over; once the links are back, a run with nothing to do is one delta.
#[tokio::test]
async fn a_delta_round_without_a_link_degrades_to_full_listings() {
    let w = World::new().await;
    w.first_sync().await;
    w.s.fake.end_delta_without_links(true);
    for round in 0..2 {
        if round == 1 {
            let lunch = w.graph_titled("Lunch with Carol");
            w.s.fake.edit_event(
                lunch["id"].as_str().unwrap(),
                json!({"subject": "Lunch with Carol and Dan"}),
            );
        }
        let report = w.sync().await;
        assert!(report.provider.no_cursor, "{report}");
        assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
        assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
        w.assert_mirrored(5);
    }
    w.crm_titled("Lunch with Carol and Dan");
    w.s.fake.end_delta_without_links(false);
    let report = w.sync().await;
    assert!(!report.provider.no_cursor, "{report}");
    assert_eq!(w.noop_counts().await, one_delta());
}

/// Issue 10 item 6, events: after a failed `$batch` of creates, a lookup on a server that
/// ignores the filter (and lists every event of the calendar) links nothing it should not:
/// the events are created and carry their link keys.
#[tokio::test]
async fn after_a_failed_batch_a_lookup_ignoring_its_filter_still_gets_events_to_outlook() {
    let w = World::new().await;
    w.first_sync().await;
    for i in 0..3 {
        w.crm
            .seed(&w.crm_col, meeting(&format!("Visit {i}"), 24 + i))
            .unwrap();
    }
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::Batch),
        Fault::ServerError(500),
        1,
    );
    let failed = w
        .syncer()
        .sync()
        .await
        .expect("a failed batch fails its records only");
    assert_eq!(failed.errors.len(), 3, "{failed}");
    assert_eq!(w.graph_events().len(), 5, "nothing reached Outlook");
    w.s.fake.ignore_link_key_filter(true);
    let report = w.sync().await;
    assert_eq!(report.provider.created, 3, "{report}");
    w.assert_mirrored(8);
    for i in 0..3 {
        let title = format!("Visit {i}");
        let event = w.graph_titled(&title);
        let props =
            w.s.fake
                .event_extended_properties(event["id"].as_str().unwrap());
        assert!(
            props
                .values()
                .any(|v| v == w.crm_titled(&title).id.as_str()),
            "{title}: {props:?}"
        );
    }
}

/// Issue 10 item 7 (provider half): the link-key lookup of one pending create (a crash
/// before the state commit left its intent) is refused with 400 `ErrorInvalidUrlQueryFilter`.
/// The run goes on: the other records sync, the run returns Ok with that record's error;
/// once the server answers again, the next run links the copy made before the crash
/// instead of creating a second one.
#[tokio::test]
async fn a_refused_link_key_lookup_is_one_records_error_then_relinked() {
    let w = World::new().await;
    w.crm.seed(&w.crm_col, meeting("Pending", 16)).unwrap();
    let crashing = Arc::new(common::CrashAfterCreate {
        inner: w.store.clone(),
        state: w.state.clone(),
    });
    let err = w
        .syncer_over(crashing)
        .sync()
        .await
        .expect_err("the state commit failed: the run stops");
    assert_eq!(err.kind(), &ErrorKind::State, "{err}");
    assert_eq!(w.graph_events().len(), 1, "the create reached Graph");
    for (i, title) in ["Other A", "Other B"].iter().enumerate() {
        w.crm
            .seed(&w.crm_col, meeting(title, 20 + i as u32))
            .unwrap();
    }
    w.s.fake.refuse_link_key_filter(true);
    let report = w
        .syncer()
        .sync()
        .await
        .expect("a failed lookup is one record's error, not the run's");
    println!("{report}");
    assert_eq!(report.errors.len(), 1, "{report}");
    assert_eq!(report.provider.created, 2, "{report}");
    w.graph_titled("Other A");
    w.graph_titled("Other B");
    w.s.fake.refuse_link_key_filter(false);
    let report = w.sync().await;
    assert_eq!(
        report.provider.created, 0,
        "linked, not created again: {report}"
    );
    w.assert_mirrored(3);
    assert_eq!(w.noop_counts().await, one_delta());
}
