//! The core store conformance suite on the Google calendar store, against the fake.

mod common;

use async_trait::async_trait;
use crmsync_core::conformance::{
    Outcome, StoreHooks, StoreTarget, check_find_by_link_key, run_store_suite,
};
use crmsync_core::{CollectionId, Event, ItemId, RecordStore, Result};
use crmsync_google::GoogleCalendar;
use crmsync_testkit::{GoogleFake, Paging};
use serde_json::json;

struct Hooks<'a> {
    fake: &'a GoogleFake,
    store: &'a GoogleCalendar,
}

#[async_trait]
impl StoreHooks<Event> for Hooks<'_> {
    async fn expire_cursors(&self) -> Result<bool> {
        self.fake.invalidate_calendar_sync_tokens();
        Ok(true)
    }

    async fn edit_behind_back(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut Event) + Send + Sync),
    ) -> Result<bool> {
        let Some(mut item) = self.store.get(collection, id).await? else {
            return Ok(false);
        };
        edit(&mut item.record);
        let e = &item.record;
        let overrides = match e.reminder_minutes {
            Some(m) => json!([{"method": "popup", "minutes": m}]),
            None => json!([]),
        };
        // As the user would in Google Calendar: the fields the samples edit.
        self.fake.edit_event(
            collection.as_str(),
            id.as_str(),
            json!({
                "summary": e.title,
                "location": e.location,
                "description": e.description,
                "visibility": if e.private { "private" } else { "default" },
                "reminders": {"useDefault": false, "overrides": overrides},
            }),
        );
        Ok(true)
    }

    async fn delete_behind_back(&self, collection: &CollectionId, id: &ItemId) -> Result<bool> {
        Ok(self.fake.delete_event(collection.as_str(), id.as_str()))
    }
}

async fn suite(paging: Paging) {
    let env = common::Env::new().await;
    env.fake.set_paging(paging);
    let store = env.calendar();
    let hooks = Hooks {
        fake: &env.fake,
        store: &store,
    };
    let target = StoreTarget {
        store: store.as_ref(),
        collection: env.collection(),
        hooks: Some(&hooks),
    };
    let report = run_store_suite(&target).await;
    println!("google calendar: {report}");
    assert!(report.skipped.is_empty(), "{report}");
    assert!(report.passed.len() >= 22, "{report}");
    assert!(
        env.sleeper.delays().is_empty(),
        "nothing is retried on a healthy fake"
    );
}

#[tokio::test]
async fn google_calendar_passes_the_store_suite() {
    suite(Paging::default()).await;
}

#[tokio::test]
async fn google_calendar_passes_the_store_suite_with_short_and_empty_pages() {
    suite(Paging {
        max_items_per_page: Some(2),
        empty_pages: true,
    })
    .await;
}

struct ContactHooks<'a> {
    fake: &'a GoogleFake,
    store: &'a crmsync_google::GoogleContacts,
}

#[async_trait]
impl StoreHooks<crmsync_core::Contact> for ContactHooks<'_> {
    async fn expire_cursors(&self) -> Result<bool> {
        self.fake.expire_people_sync_tokens();
        Ok(true)
    }

    async fn edit_behind_back(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut crmsync_core::Contact) + Send + Sync),
    ) -> Result<bool> {
        let Some(mut item) = self.store.get(collection, id).await? else {
            return Ok(false);
        };
        edit(&mut item.record);
        let c = &item.record;
        // As the user would in Google Contacts: the fields the samples edit.
        self.fake.edit_contact(
            id.as_str(),
            json!({
                "names": [{"givenName": c.name.given, "familyName": c.name.family,
                           "middleName": c.name.middle, "honorificPrefix": c.name.prefix,
                           "unstructuredName": c.display_name}],
                "biographies": [{"value": c.notes, "contentType": "TEXT_PLAIN"}],
                "organizations": [{"name": c.organization.company, "title": c.organization.job_title}],
            }),
        );
        Ok(true)
    }

    async fn delete_behind_back(&self, _collection: &CollectionId, id: &ItemId) -> Result<bool> {
        Ok(self.fake.delete_contact(id.as_str()))
    }
}

#[tokio::test]
async fn google_contacts_pass_the_store_suite() {
    let env = common::Env::new().await;
    env.fake.set_paging(Paging {
        max_items_per_page: Some(3),
        empty_pages: true,
    });
    let store = env.contacts();
    let hooks = ContactHooks {
        fake: &env.fake,
        store: &store,
    };
    let target = StoreTarget {
        store: store.as_ref(),
        collection: store.address_book(),
        hooks: Some(&hooks),
    };
    let report = run_store_suite(&target).await;
    println!("google contacts: {report}");
    let skipped: Vec<&str> = report.skipped.iter().map(|(n, _)| *n).collect();
    assert_eq!(skipped, ["window_excludes_outside_records"], "{report}");
    assert!(report.passed.len() >= 21, "{report}");
    assert_eq!(
        env.fake.peak_concurrent_people_mutations(),
        1,
        "People writes are sequential"
    );
}

/// Issue 10, item 6 (Google half): a server that ignores the lookup filter answers with
/// every event; the store returns only an event carrying the key asked for, and `None`
/// for a key no event carries.
#[tokio::test]
async fn google_calendar_checks_the_link_key_of_what_a_lax_server_answers() {
    let env = common::Env::new().await;
    env.fake.ignore_lookup_filters(true);
    env.fake.set_paging(Paging {
        max_items_per_page: Some(2),
        empty_pages: true,
    });
    // The user's own events, without link keys, come first in every answer.
    for i in 0..3 {
        env.fake.seed_event(
            common::CRM_CALENDAR,
            json!({"summary": format!("Own {i}"), "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}}),
        );
    }
    let store = env.calendar();
    let target = StoreTarget {
        store: store.as_ref(),
        collection: env.collection(),
        hooks: None,
    };
    assert!(matches!(
        check_find_by_link_key(&target).await,
        Outcome::Passed
    ));
}

/// People cannot filter on `clientData`: the store reads the connections and checks the
/// key of each, which the same check proves, among contacts without keys.
#[tokio::test]
async fn google_contacts_check_the_link_key_of_what_they_find() {
    let env = common::Env::new().await;
    env.fake.set_paging(Paging {
        max_items_per_page: Some(2),
        empty_pages: true,
    });
    for i in 0..3 {
        env.fake
            .seed_contact(json!({"names": [{"givenName": format!("Own{i}")}]}));
    }
    let store = env.contacts();
    let target = StoreTarget {
        store: store.as_ref(),
        collection: store.address_book(),
        hooks: None,
    };
    assert!(matches!(
        check_find_by_link_key(&target).await,
        Outcome::Passed
    ));
}
