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
