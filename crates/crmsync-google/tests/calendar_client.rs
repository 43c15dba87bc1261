//! The Google client sends through `HttpClient::send`: the retry module of crmsync-http
//! decides (429/503 always, 5xx only for idempotent requests, `Retry-After` honoured), the
//! sleeper and the limiter given to the client are the ones used.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use common::Env;
use crmsync_core::{
    CalendarStore, Event, EventField, ItemId, LinkKey, ManualClock, Period, RecordStore,
    RecordingSleeper, Version,
};
use crmsync_google::{GoogleAuth, GoogleCalendar, GoogleClient};
use crmsync_http::testing::{Scripted, ScriptedService};
use crmsync_http::{AccountLimiter, HttpClient, RateLimit};

fn answer(status: u16, retry_after: Option<&str>, body: &str) -> Scripted {
    Scripted::Response {
        status,
        headers: retry_after
            .map(|s| vec![("Retry-After".to_owned(), s.to_owned())])
            .unwrap_or_default(),
        body: body.as_bytes().to_vec(),
    }
}

/// A store of `env`'s account on a scripted transport, with a recording retry sleeper.
fn store_on(env: &Env, transport: &ScriptedService) -> (GoogleCalendar, RecordingSleeper) {
    let http = HttpClient::builder()
        .service(Arc::new(transport.clone()))
        .build()
        .unwrap();
    let auth = GoogleAuth::new(&env.config, http.clone(), env.tokens.clone());
    let sleeper = RecordingSleeper::new();
    let client = GoogleClient::new(env.config.clone(), http, auth, env.account.clone())
        .with_sleeper(Arc::new(sleeper.clone()));
    (GoogleCalendar::new(client), sleeper)
}

const CALENDAR_LIST: &str = r#"{"kind": "calendar#calendarList", "items": [
    {"id": "c1@group.calendar.google.com", "summary": "CRM", "accessRole": "owner"}],
    "nextSyncToken": "x"}"#;

#[tokio::test]
async fn retries_wait_as_asked_through_the_clients_sleeper_and_each_attempt_takes_a_slot() {
    let env = Env::new().await;
    let transport = ScriptedService::new([
        answer(429, Some("3"), ""),
        answer(503, Some("1"), ""),
        answer(200, None, CALENDAR_LIST),
    ]);
    let http = HttpClient::builder()
        .service(Arc::new(transport.clone()))
        .build()
        .unwrap();
    let auth = GoogleAuth::new(&env.config, http.clone(), env.tokens.clone());
    let retry_sleeper = RecordingSleeper::new();
    let limit_sleeper = RecordingSleeper::new();
    // One request a minute on a clock that stands still: the n-th attempt waits n-1 minutes.
    let limiter = AccountLimiter::new(
        RateLimit::new(1, Duration::from_secs(60), 1),
        Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap(),
        )),
        Arc::new(limit_sleeper.clone()),
    );
    // The sleeper first, then the limiter: neither undoes the other.
    let client = GoogleClient::new(env.config.clone(), http, auth, env.account.clone())
        .with_sleeper(Arc::new(retry_sleeper.clone()))
        .with_limiter(limiter);
    let store = GoogleCalendar::new(client);
    let calendars = store.calendars().await.expect("listed after two retries");
    assert_eq!(calendars.len(), 1);
    assert_eq!(transport.sent().len(), 3);
    assert_eq!(
        retry_sleeper.delays(),
        vec![Duration::from_secs(3), Duration::from_secs(1)],
        "Retry-After honoured"
    );
    assert_eq!(
        limit_sleeper.delays(),
        vec![Duration::from_secs(60), Duration::from_secs(120)],
        "every attempt is made under the account's limits"
    );
}

#[tokio::test]
async fn an_outage_is_retried_for_a_create_with_our_id_but_not_for_a_patch() {
    let env = Env::new().await;
    let created = r#"{"kind": "calendar#event", "id": "abcde12345", "etag": "\"2\"",
        "status": "confirmed", "summary": "Visit",
        "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}}"#;
    let transport = ScriptedService::new([
        // The create: a 500, then its success (same client-chosen id: safe to resend).
        answer(
            500,
            None,
            r#"{"error": {"code": 500, "message": "Backend Error"}}"#,
        ),
        answer(200, None, created),
        // The PATCH: a 500 is not retried (its first copy may have been applied).
        answer(
            500,
            None,
            r#"{"error": {"code": 500, "message": "Backend Error"}}"#,
        ),
    ]);
    let (store, sleeper) = store_on(&env, &transport);
    let col = env.collection();
    let day = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
    let event = Event::new("Visit", Period::all_day(day, day).unwrap());
    let stored = store
        .create(&col, &event, &LinkKey::new("crm-1").unwrap())
        .await
        .expect("created after one retry");
    assert_eq!(stored.id.as_str(), "abcde12345");
    assert_eq!(sleeper.delays().len(), 1);

    let mut edited = event.clone();
    edited.title = "Visit (moved)".into();
    let err = store
        .update(
            &col,
            &ItemId::new("abcde12345").unwrap(),
            &Version::new("\"2\"").unwrap(),
            &edited,
            &BTreeSet::from([EventField::Title]),
        )
        .await
        .expect_err("a 500 on a PATCH is returned");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(transport.sent().len(), 3, "the PATCH was sent once");
    assert_eq!(sleeper.delays().len(), 1);
}
