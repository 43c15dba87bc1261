//! Recurring series read from calendarView delta (MS-CAL-4/12): occurrences and exceptions
//! are grouped under their series master, which is reported once, as recurring.

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use crmsync_core::{CollectionId, Record, RecordStoreExt, Window};
use crmsync_microsoft::GraphCalendar;
use crmsync_testkit::graph::Endpoint;
use serde_json::{Value, json};

#[tokio::test]
async fn occurrences_are_grouped_under_one_series_master() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let calendar = s.fake.add_calendar("CRM");
    let master = s.fake.seed_event(
        &calendar,
        json!({"subject": "Monthly review",
               "start": {"dateTime": "2026-06-05T15:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-06-05T16:00:00", "timeZone": "UTC"},
               "recurrence": {
                   "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 5},
                   "range": {"type": "noEnd", "startDate": "2026-06-05"}}}),
    );
    let master_id = master["id"].as_str().unwrap();
    s.fake.edit_occurrence(
        master_id,
        NaiveDate::from_ymd_opt(2026, 7, 5).unwrap(),
        json!({"location": {"displayName": "Room 2"}}),
    );
    s.fake.seed_event(
        &calendar,
        json!({"subject": "One-off",
               "start": {"dateTime": "2026-06-09T10:00:00", "timeZone": "UTC"},
               "end": {"dateTime": "2026-06-09T11:00:00", "timeZone": "UTC"}}),
    );
    // A misbehaving page: an occurrence that does not name its series.
    let occurrence_id = format!("{}_OCC20260805", s.fake.immutable_id(master_id).unwrap());
    s.fake.inject_delta_items(vec![json!({
        "@odata.type": "#microsoft.graph.event", "id": occurrence_id, "type": "occurrence",
        "@odata.etag": "W/\"occ\"", "subject": "Monthly review",
    })]);
    let store = GraphCalendar::new(s.client());
    let window = Window::new(
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
    )
    .unwrap();
    s.fake.reset_counters();
    let all = store
        .changes_to_end(&CollectionId::new(&calendar).unwrap(), None, Some(window))
        .await
        .unwrap();
    assert!(all.unreadable.is_empty(), "{:?}", all.unreadable);
    let titles: Vec<&str> = all
        .upserts
        .iter()
        .map(|u| u.item.record.title.as_str())
        .collect();
    assert_eq!(
        titles,
        ["One-off", "Monthly review"],
        "one record per series"
    );
    let series = &all.upserts[1].item;
    assert_eq!(
        Some(series.id.as_str()),
        s.fake.immutable_id(master_id).as_deref()
    );
    assert!(series.record.is_recurring());
    let recurrence = series.record.recurrence.as_ref().unwrap();
    assert_eq!(
        recurrence.rules,
        ["RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=5"]
    );
    let exceptions: Vec<&Value> = recurrence.exceptions.iter().collect();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0]["location"]["displayName"], "Room 2");
    assert!(!all.upserts[0].item.record.is_recurring());
    // One listing page, one read of the master, one of the occurrence without its series.
    assert_eq!(s.fake.requests(Endpoint::CalendarViewDelta), 1);
    assert_eq!(s.fake.requests(Endpoint::EventGet), 2);
}
