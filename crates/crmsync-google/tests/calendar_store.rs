//! The Google calendar store's own rules, on the fake: calendars by name, idempotent
//! creates, PATCHes of the owned fields only, conditional writes, expired cursors.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::{CRM_CALENDAR, Env};
use crmsync_core::{
    CalendarStore, CalendarStoreExt, ChangesRequest, Continuation, ErrorKind, Event, EventField,
    LinkKey, Period, RecordStore, RecordStoreExt, Recurrence,
};
use crmsync_testkit::{CalendarSpec, Endpoint};
use serde_json::json;

fn all_day(m: u32, d: u32) -> Period {
    let d = NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    Period::all_day(d, d).unwrap()
}

#[tokio::test]
async fn calendars_are_found_by_name_once_with_typed_errors() {
    let env = Env::new().await;
    env.fake.add_calendar(
        CalendarSpec::new("shared@group.calendar.google.com", "Team (shared)")
            .summary_override("Sales team"),
    );
    env.fake.add_calendar(
        CalendarSpec::new("holidays@group.calendar.google.com", "Holidays").access_role("reader"),
    );
    let store = env.calendar();
    let calendars = store.calendars().await.unwrap();
    let names: BTreeSet<&str> = calendars.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains("Sales team"),
        "summaryOverride first: {names:?}"
    );
    assert!(calendars.iter().any(|c| c.primary && c.writable));
    assert!(
        !calendars
            .iter()
            .find(|c| c.name == "Holidays")
            .unwrap()
            .writable
    );

    assert_eq!(
        store.configured_calendar().await.unwrap().id.as_str(),
        CRM_CALENDAR
    );
    assert_eq!(
        store
            .calendar_by_name("Sales team")
            .await
            .unwrap()
            .id
            .as_str(),
        "shared@group.calendar.google.com"
    );
    let err = store.calendar_by_name("Holidays").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::CalendarNotFound { .. }),
        "read-only: {err}"
    );
    let err = store.calendar_by_name("Nope").await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::CalendarNotFound { .. }));
    assert!(err.remedy().contains("case-sensitive"));
    let err = store.calendar_by_name("  ").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CalendarNameMissing);
    // Listed once; kept until forgotten.
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 1);
    store.forget_calendars();
    store.calendars().await.unwrap();
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 2);
}

#[tokio::test]
async fn a_retried_create_finds_its_own_copy_and_a_recreate_after_deletion_gets_a_new_id() {
    let env = Env::new().await;
    let cal = env.collection();
    let key = LinkKey::new("crm-action-42").unwrap();
    let event = Event::new("Visit", all_day(6, 20));
    let first = env.calendar().create(&cal, &event, &key).await.unwrap();
    // The same create again (a retry after a lost answer, from a restarted process).
    let again = env.calendar().create(&cal, &event, &key).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.link_key.as_ref(), Some(&key));
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 1);
    assert_eq!(env.fake.requests(Endpoint::EventsInsert), 2);

    let store = env.calendar();
    store.delete(&cal, &first.id, &first.version).await.unwrap();
    let recreated = store.create(&cal, &event, &key).await.unwrap();
    assert_ne!(recreated.id, first.id, "the tombstone keeps the old id");
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 1);
    assert_eq!(
        store
            .find_by_link_key(&cal, &key)
            .await
            .unwrap()
            .map(|s| s.id),
        Some(recreated.id)
    );
}

#[tokio::test]
async fn updates_patch_only_the_fields_asked_with_if_match_and_no_invitations() {
    let env = Env::new().await;
    let cal = env.collection();
    let store = env.calendar();
    let mut event = Event::new("Weekly sync", all_day(6, 22));
    event.recurrence = Some(Recurrence {
        rules: vec!["RRULE:FREQ=WEEKLY;COUNT=4".into()],
        exceptions: Vec::new(),
    });
    let created = store
        .create(&cal, &event, &LinkKey::new("crm-7").unwrap())
        .await
        .unwrap();
    // The user invites someone in Google Calendar; we never touch attendees.
    env.fake.edit_event(
        CRM_CALENDAR,
        created.id.as_str(),
        json!({"attendees": [{"email": "guest@example.com"}]}),
    );
    let current = store.get(&cal, &created.id).await.unwrap().unwrap();
    env.fake.reset_counters();

    let mut changed = current.record.clone();
    changed.title = "Weekly sync (new room)".into();
    changed.recurrence = None; // not asked: must stay on Google
    let start = NaiveDate::from_ymd_opt(2026, 6, 23)
        .unwrap()
        .and_hms_opt(9, 30, 0)
        .unwrap();
    changed.period = Period::timed(
        start,
        start + chrono::Duration::hours(1),
        "Europe/Paris".parse().unwrap(),
    )
    .unwrap();
    let fields: BTreeSet<EventField> = [EventField::Title, EventField::Period].into();
    let updated = store
        .update(&cal, &current.id, &current.version, &changed, &fields)
        .await
        .unwrap();
    assert_eq!(updated.record.title, "Weekly sync (new room)");
    assert_eq!(
        updated.record.period, changed.period,
        "all-day became timed"
    );
    assert!(updated.record.recurrence.is_some(), "recurrence untouched");

    let recorded = env.fake.recorded_requests();
    assert_eq!(recorded.len(), 1, "no read before a PATCH of plain fields");
    let patch = &recorded[0];
    assert_eq!(patch.method, "PATCH");
    assert!(patch.url.contains("sendUpdates=none"), "{}", patch.url);
    assert!(
        patch
            .headers
            .iter()
            .any(|(k, v)| k == "if-match" && v == current.version.as_str())
    );
    let body: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["summary", "start", "end"]), "{body}");
    let google = env.fake.event(CRM_CALENDAR, created.id.as_str()).unwrap();
    assert_eq!(google["attendees"][0]["email"], "guest@example.com");
    assert_eq!(google["recurrence"][0], "RRULE:FREQ=WEEKLY;COUNT=4");

    // The old version is refused, and a deleted event is NotFound.
    let err = store
        .update(&cal, &current.id, &current.version, &changed, &fields)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PreconditionFailed);
    let err = store
        .delete(&cal, &current.id, &current.version)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PreconditionFailed);
    store
        .delete(&cal, &updated.id, &updated.version)
        .await
        .unwrap();
    let err = store
        .delete(&cal, &updated.id, &updated.version)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn an_invalidated_sync_token_is_cursor_expired_and_listings_page_to_the_end() {
    let env = Env::new().await;
    let cal = env.collection();
    let store = env.calendar();
    for day in 1..=7 {
        env.fake.seed_event(
            CRM_CALENDAR,
            json!({"summary": format!("Day {day}"), "start": {"date": format!("2026-06-{day:02}")},
                   "end": {"date": format!("2026-06-{:02}", day + 1)}}),
        );
    }
    env.fake.set_paging(crmsync_testkit::Paging {
        max_items_per_page: Some(3),
        empty_pages: true,
    });
    let full = store.changes_to_end(&cal, None, None).await.unwrap();
    assert_eq!(full.upserts.len(), 7);
    assert!(full.pages > 3, "short and empty pages: {}", full.pages);
    let cursor = full.cursor.unwrap();
    env.fake.invalidate_calendar_sync_tokens();
    let err = store
        .changes(
            &cal,
            ChangesRequest {
                cursor: Some(cursor),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CursorExpired);
    let page = store
        .changes(&cal, ChangesRequest::default())
        .await
        .unwrap();
    assert!(matches!(
        page.next,
        Continuation::NextPage(_) | Continuation::Done(_)
    ));
}
