//! `GoogleCalendar::free_busy` against the fake's `POST freeBusy` (G-CAL-35).

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{CRM_CALENDAR, Env};
use crmsync_core::{CollectionId, ErrorKind};
use crmsync_google::{BusyPeriod, MAX_FREE_BUSY_CALENDARS};
use crmsync_testkit::{CalendarSpec, Endpoint};
use serde_json::json;

const TEAM: &str = "team@group.calendar.google.com";

fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
}

fn id(s: &str) -> CollectionId {
    CollectionId::new(s).unwrap()
}

fn timed(summary: &str, start: &str, end: &str) -> serde_json::Value {
    json!({"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

#[tokio::test]
async fn busy_periods_per_calendar_with_per_calendar_errors() {
    let env = Env::new().await;
    env.fake.add_calendar(CalendarSpec::new(TEAM, "Team"));
    let fake = &env.fake;
    fake.seed_event(
        CRM_CALENDAR,
        timed("a", "2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z"),
    );
    fake.seed_event(
        CRM_CALENDAR,
        timed("b", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
    );
    let mut free = timed("free", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z");
    free["transparency"] = json!("transparent");
    fake.seed_event(CRM_CALENDAR, free);
    let gone = fake.seed_event(
        CRM_CALENDAR,
        timed("gone", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z"),
    );
    fake.delete_event(CRM_CALENDAR, gone["id"].as_str().unwrap());
    fake.seed_event(
        TEAM,
        timed("team", "2026-03-02T16:00:00Z", "2026-03-02T17:30:00Z"),
    );

    let store = env.calendar();
    fake.reset_counters();
    let answer = store
        .free_busy(
            &[id(CRM_CALENDAR), id(TEAM), id("nobody@example.com")],
            utc(3, 2, 0),
            utc(3, 3, 0),
        )
        .await
        .expect("free/busy");
    assert_eq!(fake.requests(Endpoint::FreeBusy), 1);
    assert_eq!(answer.len(), 3);
    // Touching periods are joined; free and cancelled events are not busy.
    assert_eq!(
        answer[&id(CRM_CALENDAR)].as_ref().unwrap(),
        &vec![BusyPeriod {
            start: utc(3, 2, 8),
            end: utc(3, 2, 10)
        }]
    );
    assert_eq!(
        answer[&id(TEAM)].as_ref().unwrap(),
        &vec![BusyPeriod {
            start: utc(3, 2, 16),
            end: utc(3, 2, 17) + chrono::Duration::minutes(30)
        }]
    );
    let unknown = answer[&id("nobody@example.com")].as_ref().unwrap_err();
    assert_eq!(unknown.kind(), &ErrorKind::NotFound, "{unknown}");
    assert!(unknown.to_string().contains("nobody@example.com"));
}

#[tokio::test]
async fn long_ranges_and_many_calendars_are_asked_for_in_pieces() {
    let env = Env::new().await;
    let fake = &env.fake;
    // 200 days: three requests of at most 90 days; events in the second and third piece
    // and one across the boundary of the first two.
    fake.seed_event(
        CRM_CALENDAR,
        timed("across", "2026-03-31T22:00:00Z", "2026-04-01T02:00:00Z"),
    );
    fake.seed_event(
        CRM_CALENDAR,
        timed("late", "2026-07-10T08:00:00Z", "2026-07-10T09:00:00Z"),
    );
    let store = env.calendar();
    fake.reset_counters();
    let start = utc(1, 1, 0);
    let end = start + chrono::Duration::days(200);
    let answer = store
        .free_busy(&[id(CRM_CALENDAR)], start, end)
        .await
        .expect("free/busy");
    assert_eq!(fake.requests(Endpoint::FreeBusy), 3);
    assert_eq!(
        answer[&id(CRM_CALENDAR)].as_ref().unwrap(),
        &vec![
            BusyPeriod {
                start: utc(3, 31, 22),
                end: utc(4, 1, 2)
            },
            BusyPeriod {
                start: utc(7, 10, 8),
                end: utc(7, 10, 9)
            },
        ],
        "the period cut at the boundary of two pieces is one period again"
    );

    // 60 calendars: two requests, and no calendar gets "too many calendars".
    let mut many: Vec<CollectionId> = (0..59)
        .map(|i| id(&format!("c{i:02}@example.com")))
        .collect();
    many.push(id(CRM_CALENDAR));
    fake.reset_counters();
    let answer = store
        .free_busy(&many, utc(7, 10, 0), utc(7, 11, 0))
        .await
        .expect("free/busy");
    assert!(many.len() > MAX_FREE_BUSY_CALENDARS);
    assert_eq!(fake.requests(Endpoint::FreeBusy), 2);
    assert_eq!(answer.len(), 60);
    assert_eq!(answer[&id(CRM_CALENDAR)].as_ref().unwrap().len(), 1);
    assert!(
        answer
            .iter()
            .filter(|(k, _)| k.as_str() != CRM_CALENDAR)
            .all(|(_, v)| v.as_ref().is_err_and(|e| e.kind() == &ErrorKind::NotFound))
    );
}

#[tokio::test]
async fn an_empty_range_is_refused_without_a_request() {
    let env = Env::new().await;
    let store = env.calendar();
    env.fake.reset_counters();
    let err = store
        .free_busy(&[id(CRM_CALENDAR)], utc(3, 2, 10), utc(3, 2, 10))
        .await
        .expect_err("empty range");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(env.fake.total_http_requests(), 0);
}
