//! The core store conformance suite on the Graph contacts store, against the fake.

mod common;

use std::collections::BTreeSet;

use async_trait::async_trait;
use crmsync_core::conformance::{StoreHooks, StoreTarget, run_store_suite};
use crmsync_core::record::Field;
use crmsync_core::{CollectionId, Contact, ContactField, ContactStore, ItemId, Result};
use crmsync_microsoft::contact_mapping::{contact_from_graph, contact_to_graph};
use crmsync_microsoft::{DEFAULT_CONTACT_FOLDER, GraphContacts};
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

/// Issue 10 item 5: the default folder is `/me/contacts` (MS-CON-1/2), never
/// `/me/contactFolders/contacts`, which the fake (as a strict server would) refuses with 400.
#[tokio::test]
async fn the_default_folder_is_the_primary_address_book_through_documented_paths() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let store = GraphContacts::new(s.client());
    let books = store.address_books().await.unwrap();
    assert_eq!(books.len(), 1, "{books:?}");
    assert!(books[0].primary);
    assert_eq!(books[0].id.as_str(), DEFAULT_CONTACT_FOLDER);
    assert_eq!(store.configured_folder().await.unwrap(), books[0]);
    // The whole store contract on the default folder.
    let hooks = Hooks { fake: &s.fake };
    let target = StoreTarget {
        store: &store,
        collection: books[0].id.clone(),
        hooks: Some(&hooks),
    };
    let report = run_store_suite(&target).await;
    let skipped: Vec<&str> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(skipped, ["window_excludes_outside_records"], "{report}");
    let recorded = s.fake.recorded_requests();
    assert!(
        recorded
            .iter()
            .any(|r| r.url.starts_with("/v1.0/me/contacts/delta")),
        "the default folder's delta is /me/contacts/delta"
    );
    for r in &recorded {
        assert!(
            !r.url
                .to_ascii_lowercase()
                .contains("/contactfolders/contacts"),
            "an undocumented path: {} {}",
            r.method,
            r.url
        );
        assert!(
            !r.body
                .to_ascii_lowercase()
                .contains("/contactfolders/contacts"),
            "an undocumented path in a $batch: {}",
            r.body
        );
    }
    assert!(
        s.sleeper.delays().is_empty(),
        "nothing is retried on a healthy fake"
    );
}

/// Issue 10 item 6: a server that ignores the `$filter` of the link-key lookup and lists
/// every contact (another one first) never makes the store return a contact carrying
/// another key, and an unknown key finds nothing; in a child folder and the default one.
#[tokio::test]
async fn find_by_link_key_checks_the_key_when_the_server_ignores_the_filter() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let store = GraphContacts::new(s.client());
    let hooks = Hooks { fake: &s.fake };
    s.fake.ignore_link_key_filter(true);
    let child = store.ensure_folder("Conformance").await.unwrap();
    for collection in [child.id, CollectionId::new(DEFAULT_CONTACT_FOLDER).unwrap()] {
        let target = StoreTarget {
            store: &store,
            collection,
            hooks: Some(&hooks),
        };
        assert_eq!(
            crmsync_core::conformance::check_find_by_link_key(&target).await,
            crmsync_core::conformance::Outcome::Passed
        );
    }
}
