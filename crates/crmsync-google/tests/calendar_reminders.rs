//! Writing our reminder merges with the event's reminders on Google (G-CAL-26): the
//! user's email reminders survive, `useDefault` is written `false` with explicit
//! overrides, never more than five.

mod common;

use std::collections::BTreeSet;

use common::{CRM_CALENDAR, Env};
use crmsync_core::{EventField, ItemId, RecordStore};
use serde_json::{Value, json};

fn timed_with(reminders: Option<Value>) -> Value {
    let mut e = json!({"summary": "Visit",
        "start": {"dateTime": "2026-06-16T10:00:00+02:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2026-06-16T11:00:00+02:00", "timeZone": "Europe/Paris"}});
    if let Some(r) = reminders {
        e["reminders"] = r;
    }
    e
}

/// Sets our reminder on the event through a new store (nothing seen: it reads the event
/// first) and returns the event as Google keeps it.
async fn set_reminder(env: &Env, id: &str, minutes: Option<u32>) -> Value {
    let store = env.calendar();
    let col = env.collection();
    let item = ItemId::new(id).unwrap();
    let current = store.get(&col, &item).await.unwrap().expect("event");
    let mut record = current.record.clone();
    record.reminder_minutes = minutes;
    store
        .update(
            &col,
            &item,
            &current.version,
            &record,
            &BTreeSet::from([EventField::Reminder]),
        )
        .await
        .expect("update");
    env.fake.event(CRM_CALENDAR, id).unwrap()
}

fn last_patch_body(env: &Env) -> Value {
    let patch = env
        .fake
        .recorded_requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH was sent");
    serde_json::from_str(&patch.body).unwrap()
}

#[tokio::test]
async fn calendar_defaults_become_explicit_overrides_with_use_default_false() {
    let env = Env::new().await;
    let seeded = env.fake.seed_event(CRM_CALENDAR, timed_with(None));
    assert_eq!(seeded["reminders"], json!({"useDefault": true}));
    let id = seeded["id"].as_str().unwrap();
    let after = set_reminder(&env, id, Some(30)).await;
    assert_eq!(
        after["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 30}]})
    );
    // Both keys are always sent (G-CAL-26).
    assert_eq!(
        last_patch_body(&env)["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 30}]})
    );
}

#[tokio::test]
async fn the_users_email_reminders_survive_ours_being_changed_or_removed() {
    let env = Env::new().await;
    let seeded = env.fake.seed_event(
        CRM_CALENDAR,
        timed_with(Some(json!({"useDefault": false, "overrides": [
            {"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}]}))),
    );
    let id = seeded["id"].as_str().unwrap();
    let after = set_reminder(&env, id, Some(5)).await;
    let overrides: BTreeSet<String> = after["reminders"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(
        overrides,
        [
            json!({"method": "email", "minutes": 1440}).to_string(),
            json!({"method": "popup", "minutes": 5}).to_string()
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(after["reminders"]["useDefault"], false);

    // Our reminder removed: the email stays, no popup, and not the calendar defaults.
    let after = set_reminder(&env, id, None).await;
    assert_eq!(
        after["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "email", "minutes": 1440}]})
    );
}

#[tokio::test]
async fn five_reminders_of_the_user_leave_room_for_ours_and_google_accepts_it() {
    let env = Env::new().await;
    let emails: Vec<Value> = [60, 120, 240, 480, 960]
        .iter()
        .map(|m| json!({"method": "email", "minutes": m}))
        .collect();
    let seeded = env.fake.seed_event(
        CRM_CALENDAR,
        timed_with(Some(json!({"useDefault": false, "overrides": emails}))),
    );
    let id = seeded["id"].as_str().unwrap();
    let after = set_reminder(&env, id, Some(15)).await;
    let overrides = after["reminders"]["overrides"].as_array().unwrap().clone();
    assert_eq!(overrides.len(), 5, "at most five (G-CAL-26): {overrides:?}");
    assert!(overrides.contains(&json!({"method": "popup", "minutes": 15})));
    assert_eq!(
        overrides.iter().filter(|o| o["method"] == "email").count(),
        4
    );
    assert_eq!(after["reminders"]["useDefault"], false);

    // Our reminder is read back as the shortest popup.
    let store = env.calendar();
    let read = store
        .get(&env.collection(), &ItemId::new(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.record.reminder_minutes, Some(15));
}
