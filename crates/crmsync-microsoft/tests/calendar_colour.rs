//! Colours as Outlook master categories (MS-CAL-21): the nearest preset, a category of
//! ours created once, the user's own categories kept.

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use crmsync_core::{CollectionId, Event, EventField, LinkKey, Period, RecordStore, Rgb};
use crmsync_microsoft::GraphCalendar;
use crmsync_microsoft::categories::PRESETS;
use crmsync_testkit::graph::Endpoint;
use serde_json::json;

fn coloured(title: &str, colour: &str) -> Event {
    let start = NaiveDate::from_ymd_opt(2026, 6, 3)
        .unwrap()
        .and_hms_opt(14, 0, 0)
        .unwrap();
    let mut e = Event::new(
        title,
        Period::timed(
            start,
            start + chrono::Duration::hours(1),
            "UTC".parse().unwrap(),
        )
        .unwrap(),
    );
    e.colour = Some(colour.parse().unwrap());
    e
}

fn categories(v: &serde_json::Value) -> Vec<String> {
    v["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn ms_cal_21_colour_is_a_master_category_created_once() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let calendar = CollectionId::new(s.fake.add_calendar("CRM")).unwrap();
    let store = GraphCalendar::new(s.client());
    let caps = store.capabilities();
    assert!(caps.supports(EventField::Colour));
    assert_eq!(caps.palette.as_ref().map(Vec::len), Some(25));
    assert_eq!(caps.max_reminders, Some(1));

    let red = store
        .create(
            &calendar,
            &coloured("Call", "#c0182a"),
            &LinkKey::new("c1").unwrap(),
        )
        .await
        .unwrap();
    let dark_red: Rgb = PRESETS[15].1;
    assert_eq!(red.record.colour, Some(dark_red));
    let wire = s.fake.event(red.id.as_str()).unwrap();
    assert_eq!(categories(&wire), ["crmsync Dark red"]);
    assert!(
        s.fake
            .categories()
            .contains(&("crmsync Dark red".to_owned(), "preset15".to_owned()))
    );
    // A second event of the same colour: no second listing, no second creation.
    store
        .create(
            &calendar,
            &coloured("Meeting", "#c11a25"),
            &LinkKey::new("c2").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.fake.requests(Endpoint::MasterCategoriesList), 1);
    assert_eq!(s.fake.requests(Endpoint::MasterCategoryCreate), 1);

    // The user adds a category of their own in Outlook; the CRM changes the colour.
    s.fake.edit_event(
        red.id.as_str(),
        json!({"categories": ["Red category", "crmsync Dark red"]}),
    );
    let current = store.get(&calendar, &red.id).await.unwrap().unwrap();
    let mut blue = current.record.clone();
    blue.colour = Some("#2858a5".parse().unwrap());
    blue.category = Some("Demo".into());
    let fields: BTreeSet<EventField> = [EventField::Colour].into();
    let updated = store
        .update(&calendar, &red.id, &current.version, &blue, &fields)
        .await
        .unwrap();
    assert_eq!(updated.record.colour, Some(PRESETS[22].1));
    assert_eq!(updated.record.category.as_deref(), Some("Demo"));
    let wire = s.fake.event(red.id.as_str()).unwrap();
    assert_eq!(
        categories(&wire),
        ["Red category", "Demo (crmsync Dark blue)"]
    );
    // No colour any more: ours goes, the user's stays.
    let mut plain = updated.record.clone();
    plain.colour = None;
    plain.category = None;
    let cleared = store
        .update(&calendar, &red.id, &updated.version, &plain, &fields)
        .await
        .unwrap();
    assert_eq!(cleared.record.colour, None);
    assert_eq!(
        categories(&s.fake.event(red.id.as_str()).unwrap()),
        ["Red category"]
    );
}
