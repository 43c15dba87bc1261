//! Writes through `$batch` (MS-GEN-1): 20 per request, answers matched by id, each
//! classified on its own, throttled members sent again after their own `Retry-After`.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use crmsync_core::{
    CollectionId, ErrorKind, Event, LinkKey, Period, RecordStore, Version, WriteOp, WriteOutcome,
};
use crmsync_microsoft::{GraphCalendar, MAX_BATCH};
use crmsync_testkit::graph::{Endpoint, Fault, FaultTarget};
use serde_json::Value;

fn event(n: usize) -> Event {
    let start = NaiveDate::from_ymd_opt(2026, 6, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        + chrono::Duration::hours(n as i64);
    let mut e = Event::new(
        format!("Visit {n}"),
        Period::timed(
            start,
            start + chrono::Duration::minutes(30),
            "UTC".parse().unwrap(),
        )
        .unwrap(),
    );
    e.reminder_minutes = Some(10);
    e
}

fn creates(range: std::ops::Range<usize>) -> Vec<WriteOp<Event>> {
    range
        .map(|n| WriteOp::Create {
            record: event(n),
            link_key: LinkKey::new(format!("crm-{n}")).unwrap(),
        })
        .collect()
}

async fn store() -> (common::Setup, GraphCalendar, CollectionId) {
    let s = common::setup().await;
    s.signed_in(false).await;
    let calendar = CollectionId::new(s.fake.add_calendar("CRM")).unwrap();
    let store = GraphCalendar::new(s.client());
    (s, store, calendar)
}

fn written(r: &crmsync_core::Result<WriteOutcome<Event>>) -> crmsync_core::Stored<Event> {
    match r {
        Ok(WriteOutcome::Written(s)) => s.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ms_gen_1_writes_go_twenty_per_batch_and_member_errors_are_typed() {
    let (s, store, calendar) = store().await;
    assert_eq!(store.capabilities().max_batch, MAX_BATCH);
    let results = store.write_batch(&calendar, creates(0..45)).await;
    assert_eq!(results.len(), 45);
    let stored: Vec<_> = results.iter().map(written).collect();
    for (n, s) in stored.iter().enumerate() {
        assert_eq!(
            s.record.title,
            format!("Visit {n}"),
            "results keep the order"
        );
        assert_eq!(s.link_key.as_ref().unwrap().as_str(), format!("crm-{n}"));
    }
    // Members carry their own `Prefer`: immutable ids, times in UTC.
    assert_eq!(
        s.fake.immutable_id(stored[0].id.as_str()).as_deref(),
        Some(stored[0].id.as_str())
    );
    assert_eq!(s.fake.requests(Endpoint::Batch), 3);
    assert_eq!(s.fake.requests(Endpoint::EventCreate), 45);
    assert_eq!(s.fake.events(calendar.as_str()).len(), 45);
    // Updates (one stale), deletes (one already gone): each answer on its own.
    s.fake.delete_event(stored[3].id.as_str());
    let mut renamed = stored[0].record.clone();
    renamed.title = "Visit zero".into();
    let title: std::collections::BTreeSet<_> = [crmsync_core::EventField::Title].into();
    let ops = vec![
        WriteOp::Update {
            id: stored[0].id.clone(),
            expected: stored[0].version.clone(),
            record: renamed.clone(),
            fields: title.clone(),
        },
        WriteOp::Update {
            id: stored[1].id.clone(),
            expected: Version::new("W/\"stale\"").unwrap(),
            record: renamed,
            fields: title,
        },
        WriteOp::Delete {
            id: stored[2].id.clone(),
            expected: stored[2].version.clone(),
        },
        WriteOp::Delete {
            id: stored[3].id.clone(),
            expected: stored[3].version.clone(),
        },
    ];
    let results = store.write_batch(&calendar, ops).await;
    assert_eq!(written(&results[0]).record.title, "Visit zero");
    assert_eq!(
        results[1].as_ref().unwrap_err().kind(),
        &ErrorKind::PreconditionFailed
    );
    assert!(matches!(results[2], Ok(WriteOutcome::Deleted)));
    assert_eq!(
        results[3].as_ref().unwrap_err().kind(),
        &ErrorKind::NotFound
    );
    assert_eq!(s.fake.requests(Endpoint::Batch), 4);
    assert!(s.sleeper.delays().is_empty());
    // An invalid record is refused before sending, the others go.
    let mut bad = event(99);
    bad.title = "x".repeat(2000);
    let mut ops = creates(50..52);
    ops.insert(
        1,
        WriteOp::Create {
            record: bad,
            link_key: LinkKey::new("crm-bad").unwrap(),
        },
    );
    let results = store.write_batch(&calendar, ops).await;
    assert!(matches!(
        results[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidRecord { .. }
    ));
    written(&results[0]);
    written(&results[2]);
}

#[tokio::test]
async fn inner_429s_are_sent_again_alone_after_their_retry_after() {
    let (s, store, calendar) = store().await;
    s.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventCreate),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        2,
    );
    s.fake.reset_counters();
    let results = store.write_batch(&calendar, creates(0..5)).await;
    for r in &results {
        written(r);
    }
    assert_eq!(s.sleeper.delays(), vec![Duration::from_secs(7)]);
    assert_eq!(s.fake.requests(Endpoint::Batch), 2);
    assert_eq!(s.fake.requests(Endpoint::EventCreate), 7);
    // The second batch carried only the two throttled members.
    let batches: Vec<Value> = s
        .fake
        .recorded_requests()
        .into_iter()
        .filter(|r| r.url.ends_with("/$batch"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(batches[0]["requests"].as_array().unwrap().len(), 5);
    assert_eq!(batches[1]["requests"].as_array().unwrap().len(), 2);
    assert_eq!(s.fake.events(calendar.as_str()).len(), 5, "no duplicate");
}

#[tokio::test]
async fn members_still_throttled_when_the_policy_gives_up_are_rate_limited() {
    let (s, store, calendar) = store().await;
    s.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventCreate),
        Fault::TooManyRequests {
            retry_after: Some(3),
        },
        1000,
    );
    let results = store.write_batch(&calendar, creates(0..3)).await;
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap_err().kind(),
            &ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
    }
    // The default policy: 5 attempts, so 4 waits, each the one Graph asked for.
    assert_eq!(s.sleeper.delays(), vec![Duration::from_secs(3); 4]);
    s.fake.clear_faults();
}

#[tokio::test]
async fn pushing_a_thousand_events_costs_fifty_requests() {
    let (s, store, calendar) = store().await;
    s.fake.reset_counters();
    let mut results = Vec::new();
    let mut ops = creates(0..1000).into_iter().peekable();
    while ops.peek().is_some() {
        let chunk: Vec<_> = ops.by_ref().take(100).collect();
        results.extend(store.write_batch(&calendar, chunk).await);
    }
    assert!(results.iter().all(Result::is_ok));
    println!(
        "pushing 1,000 events: {} HTTP requests ({:?})",
        s.fake.total_http_requests(),
        s.fake.request_counts()
    );
    assert_eq!(s.fake.total_http_requests(), 50);
}
