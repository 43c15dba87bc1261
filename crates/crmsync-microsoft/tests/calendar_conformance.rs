//! The core store conformance suite on the Graph calendar store, against the fake.

mod common;

use std::collections::BTreeSet;

use async_trait::async_trait;
use crmsync_core::conformance::{StoreHooks, StoreTarget, run_store_suite};
use crmsync_core::model::{Event, EventField};
use crmsync_core::record::Field;
use crmsync_core::{CollectionId, ItemId, Result};
use crmsync_microsoft::GraphCalendar;
use crmsync_microsoft::mapping::{event_from_graph, event_to_graph};
use crmsync_testkit::graph::GraphFake;

struct Hooks<'a> {
    fake: &'a GraphFake,
}

#[async_trait]
impl StoreHooks<Event> for Hooks<'_> {
    async fn expire_cursors(&self) -> Result<bool> {
        self.fake.expire_delta_tokens();
        Ok(true)
    }

    async fn edit_behind_back(
        &self,
        _collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut Event) + Send + Sync),
    ) -> Result<bool> {
        let Some(current) = self.fake.event(id.as_str()) else {
            return Ok(false);
        };
        let mut event = event_from_graph(&current)?;
        edit(&mut event);
        let fields: BTreeSet<EventField> = EventField::ALL.iter().copied().collect();
        self.fake
            .edit_event(id.as_str(), event_to_graph(&event, &fields).into());
        Ok(true)
    }

    async fn delete_behind_back(&self, _collection: &CollectionId, id: &ItemId) -> Result<bool> {
        Ok(self.fake.delete_event(id.as_str()))
    }
}

#[tokio::test]
async fn graph_calendar_passes_the_store_suite() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let collection = CollectionId::new(s.fake.add_calendar("Conformance")).unwrap();
    let store = GraphCalendar::new(s.client());
    let hooks = Hooks { fake: &s.fake };
    let target = StoreTarget {
        store: &store,
        collection,
        hooks: Some(&hooks),
    };
    let report = run_store_suite(&target).await;
    println!("graph calendar: {report}");
    assert!(report.skipped.is_empty(), "{report}");
    assert!(
        s.sleeper.delays().is_empty(),
        "nothing is retried on a healthy fake"
    );
}

/// Issue 10 item 6: a server that ignores the `$filter` of the link-key lookup and lists
/// every event (another one first) never makes the store return an event carrying another
/// key, and an unknown key finds nothing.
#[tokio::test]
async fn find_by_link_key_checks_the_key_when_the_server_ignores_the_filter() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let collection = CollectionId::new(s.fake.add_calendar("Conformance")).unwrap();
    let store = GraphCalendar::new(s.client());
    let hooks = Hooks { fake: &s.fake };
    let target = StoreTarget {
        store: &store,
        collection,
        hooks: Some(&hooks),
    };
    s.fake.ignore_link_key_filter(true);
    assert_eq!(
        crmsync_core::conformance::check_find_by_link_key(&target).await,
        crmsync_core::conformance::Outcome::Passed
    );
}
