//! Requests a sync costs, counted by the fake (every endpoint): pushing 1,000 new events,
//! then a sync with nothing to do. Printed for the notes; the batch arithmetic asserted.

mod common;

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use crmsync_core::engine::{FieldPolicy, SyncOptions, Syncer, WindowSpec};
use crmsync_core::{Event, ManualClock, Period};
use crmsync_memory::{MemoryState, MemoryStore};
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
