//! The core store conformance suite on the Graph contacts store, against the fake.

mod common;

use std::collections::BTreeSet;

use async_trait::async_trait;
use crmsync_core::conformance::{StoreHooks, StoreTarget, run_store_suite};
use crmsync_core::record::Field;
use crmsync_core::{CollectionId, Contact, ContactField, ContactStore, ItemId, Result};
use crmsync_microsoft::GraphContacts;
use crmsync_microsoft::contact_mapping::{contact_from_graph, contact_to_graph};
use crmsync_testkit::graph::GraphFake;

struct Hooks<'a> {
    fake: &'a GraphFake,
}

#[async_trait]
impl StoreHooks<Contact> for Hooks<'_> {
    async fn expire_cursors(&self) -> Result<bool> {
        self.fake.expire_delta_tokens();
        Ok(true)
    }

    async fn edit_behind_back(
        &self,
        _collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut Contact) + Send + Sync),
    ) -> Result<bool> {
        let Some(current) = self.fake.contact(id.as_str()) else {
            return Ok(false);
        };
        let mut contact = contact_from_graph(&current)?;
        edit(&mut contact);
        let fields: BTreeSet<ContactField> = ContactField::ALL.iter().copied().collect();
        self.fake
            .edit_contact(id.as_str(), contact_to_graph(&contact, &fields).into());
        Ok(true)
    }

    async fn delete_behind_back(&self, _collection: &CollectionId, id: &ItemId) -> Result<bool> {
        Ok(self.fake.delete_contact(id.as_str()))
    }
}

#[tokio::test]
async fn graph_contacts_pass_the_store_suite() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let store = GraphContacts::new(s.client());
    let folder = store.ensure_folder("Conformance").await.unwrap();
    assert!(
        store
            .address_books()
            .await
            .unwrap()
            .iter()
            .any(|b| b.id == folder.id),
    );
    let hooks = Hooks { fake: &s.fake };
    let target = StoreTarget {
        store: &store,
        collection: folder.id,
        hooks: Some(&hooks),
    };
    let report = run_store_suite(&target).await;
    println!("graph contacts: {report}");
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    // Contacts are not bound to time: the window check has nothing to check.
    assert_eq!(skipped, ["window_excludes_outside_records"], "{report}");
    assert!(
        s.sleeper.delays().is_empty(),
        "nothing is retried on a healthy fake"
    );
}

#[tokio::test]
async fn the_default_folder_is_the_primary_address_book() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let store = GraphContacts::new(s.client());
    let books = store.address_books().await.unwrap();
    assert_eq!(books.len(), 1, "{books:?}");
    assert!(books[0].primary);
    assert_eq!(books[0].id.as_str(), s.fake.default_contact_folder_id());
    assert_eq!(store.configured_folder().await.unwrap(), books[0]);
}
