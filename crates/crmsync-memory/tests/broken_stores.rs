//! The suite bites: deliberately broken stores fail the checks of the rules they break,
//! with a panic naming the rule.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use crmsync_core::conformance::{
    StoreHooks, StoreTarget, check_create_then_get,
    check_delete_with_stale_version_is_precondition_failed, check_full_listing_pages_to_the_end,
    check_update_changes_version, check_update_with_stale_version_is_precondition_failed,
};
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Continuation, Event,
    EventField, ItemId, LinkKey, RecordStore, Result, Stored, Version,
};
use crmsync_memory::MemoryStore;

#[derive(Debug, Clone, Copy)]
enum Bug {
    /// Writes do not change the version the client sees.
    FrozenVersion,
    /// Updates and deletions ignore the `expected` version.
    IgnoresPrecondition,
    /// A listing ends at the first empty page.
    StopsAtEmptyPage,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryStore<Event>,
    bug: Bug,
    /// FrozenVersion: the version each item was created at, reported forever.
    frozen: Mutex<HashMap<ItemId, Version>>,
}

impl Broken {
    fn new(bug: Bug) -> Self {
        let inner = match bug {
            Bug::StopsAtEmptyPage => MemoryStore::new().with_page_size(1).with_empty_pages(2),
            _ => MemoryStore::new(),
        };
        Broken {
            inner,
            bug,
            frozen: Mutex::new(HashMap::new()),
        }
    }

    fn freeze(&self, mut item: Stored<Event>) -> Stored<Event> {
        if let Bug::FrozenVersion = self.bug {
            let mut frozen = self.frozen.lock().unwrap();
            item.version = frozen
                .entry(item.id.clone())
                .or_insert(item.version)
                .clone();
        }
        item
    }

    /// The version to send to the real store.
    async fn real_version(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Version {
        let current = self
            .inner
            .get(collection, id)
            .await
            .ok()
            .flatten()
            .map(|s| s.version);
        match (self.bug, current) {
            (Bug::IgnoresPrecondition, Some(current)) => current,
            (Bug::FrozenVersion, Some(current))
                if self.frozen.lock().unwrap().get(id) == Some(expected) =>
            {
                current
            }
            _ => expected.clone(),
        }
    }
}

#[async_trait]
impl RecordStore<Event> for Broken {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Event>> {
        let mut page = self.inner.changes(collection, request.clone()).await?;
        if let Bug::StopsAtEmptyPage = self.bug
            && page.upserts.is_empty()
            && page.removals.is_empty()
        {
            // "An empty page means the end": skip to the cursor, dropping what follows.
            while let Continuation::NextPage(token) = page.next {
                let next = ChangesRequest {
                    page_token: Some(token),
                    ..request.clone()
                };
                page.next = self.inner.changes(collection, next).await?.next;
            }
        }
        page.upserts = page
            .upserts
            .into_iter()
            .map(|mut u| {
                u.item = self.freeze(u.item);
                u
            })
            .collect();
        Ok(page)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Event>>> {
        Ok(self
            .inner
            .get(collection, id)
            .await?
            .map(|s| self.freeze(s)))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &Event,
        link_key: &LinkKey,
    ) -> Result<Stored<Event>> {
        Ok(self.freeze(self.inner.create(collection, record, link_key).await?))
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Event,
        fields: &BTreeSet<EventField>,
    ) -> Result<Stored<Event>> {
        let expected = self.real_version(collection, id, expected).await;
        Ok(self.freeze(
            self.inner
                .update(collection, id, &expected, record, fields)
                .await?,
        ))
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        let expected = self.real_version(collection, id, expected).await;
        self.inner.delete(collection, id, &expected).await
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Event>>> {
        Ok(self
            .inner
            .find_by_link_key(collection, link_key)
            .await?
            .map(|s| self.freeze(s)))
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// Runs one check on a broken store in its own task and asserts it panicked naming `rule`.
macro_rules! assert_breaks {
    ($bug:expr, $check:ident, $rule:literal) => {{
        let handle = tokio::spawn(async move {
            let store = Broken::new($bug);
            let collection = store.inner.add_collection("broken");
            let target = StoreTarget {
                store: &store,
                collection,
                hooks: Some(&store.inner as &dyn StoreHooks<Event>),
            };
            $check(&target).await
        });
        match handle.await {
            Ok(outcome) => panic!(
                "{} must fail on a store with {:?}; it returned {outcome:?}",
                stringify!($check),
                $bug
            ),
            Err(err) => {
                assert!(err.is_panic(), "{err}");
                let message = panic_message(err.into_panic());
                assert!(
                    message.contains(concat!("store rule `", $rule, "` broken")),
                    "the panic must name the rule {}: {message}",
                    $rule
                );
            }
        }
    }};
}

/// Runs one check on a broken store and asserts it passes: each broken store breaks
/// only its own rule, so the failures above are not noise.
macro_rules! assert_passes {
    ($bug:expr, $check:ident) => {{
        let store = Broken::new($bug);
        let collection = store.inner.add_collection("broken");
        let target = StoreTarget {
            store: &store,
            collection,
            hooks: None,
        };
        $check(&target).await;
    }};
}

#[tokio::test]
async fn a_store_whose_version_never_changes_fails_update_changes_version() {
    assert_breaks!(
        Bug::FrozenVersion,
        check_update_changes_version,
        "update_changes_version"
    );
    assert_passes!(Bug::FrozenVersion, check_create_then_get);
}

#[tokio::test]
async fn a_store_ignoring_preconditions_fails_the_precondition_checks() {
    assert_breaks!(
        Bug::IgnoresPrecondition,
        check_update_with_stale_version_is_precondition_failed,
        "update_with_stale_version_is_precondition_failed"
    );
    assert_breaks!(
        Bug::IgnoresPrecondition,
        check_delete_with_stale_version_is_precondition_failed,
        "delete_with_stale_version_is_precondition_failed"
    );
    assert_passes!(Bug::IgnoresPrecondition, check_update_changes_version);
    assert_passes!(
        Bug::IgnoresPrecondition,
        check_full_listing_pages_to_the_end
    );
}

#[tokio::test]
async fn a_store_stopping_at_an_empty_page_fails_full_listing_pages_to_the_end() {
    assert_breaks!(
        Bug::StopsAtEmptyPage,
        check_full_listing_pages_to_the_end,
        "full_listing_pages_to_the_end"
    );
    assert_passes!(
        Bug::StopsAtEmptyPage,
        check_update_with_stale_version_is_precondition_failed
    );
}
