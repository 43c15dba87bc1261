//! The conformance suite: checks that a store or a state implementation keeps the contract
//! the engine relies on.
//!
//! Enabled by the `conformance` feature. Each check is a plain `pub async fn` that takes a
//! target, asserts (panicking with a message naming the broken rule) and returns an
//! [`Outcome`]: passed, or skipped because the target lacks a hook the check needs.
//! [`run_store_suite`] and [`run_state_suite`] run every check and print passed / skipped
//! counts.
//!
//! **The suite writes to and deletes from the collection it is given**: point it at a
//! collection made for the test. It is not part of the semver-stable API.

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{CollectionId, ItemId};
use crate::record::Record;
use crate::state::SyncState;
use crate::store::RecordStore;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target passed.
    Passed,
    /// The check could not run: the target lacks what it needs (a hook, a capability).
    Skipped(String),
}

/// Hooks that act on a store from outside, as another client would. A check whose hook
/// the target cannot provide reports itself skipped.
#[async_trait]
pub trait StoreHooks<R: Record>: Send + Sync {
    /// Makes every cursor handed out so far expire. Returns `false` when the store cannot.
    async fn expire_cursors(&self) -> Result<bool>;

    /// Changes a record behind the back of the store's client (as the user would in the
    /// provider's own app), giving it a new version. Returns `false` when the store cannot.
    async fn edit_behind_back(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn Fn(&mut R) + Send + Sync),
    ) -> Result<bool>;

    /// Deletes a record behind the back of the store's client. Returns `false` when the
    /// store cannot.
    async fn delete_behind_back(&self, collection: &CollectionId, id: &ItemId) -> Result<bool>;
}

/// Records the suite can make and edit. Implemented for [`Event`](crate::Event) and
/// [`Contact`](crate::Contact); a host implements it for its own record type to run the
/// suite on its store.
pub trait Samples: Record {
    /// The `n`-th sample: distinct samples differ in every field the store may hold, and
    /// events fall inside [`sample_window`](crate::conformance::sample_window).
    fn sample(n: usize) -> Self;

    /// Changes a sample in a visible way (another value in at least one synced field).
    fn edit(&mut self, n: usize);
}

/// The store under test.
pub struct StoreTarget<'a, R: Record> {
    /// The store.
    pub store: &'a dyn RecordStore<R>,
    /// A collection the suite may fill and empty.
    pub collection: CollectionId,
    /// Hooks to act on the store from outside, when the target has them.
    pub hooks: Option<&'a dyn StoreHooks<R>>,
}

impl<R: Record> fmt::Debug for StoreTarget<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTarget")
            .field("store", &self.store)
            .field("collection", &self.collection)
            .field("hooks", &self.hooks.is_some())
            .finish()
    }
}

/// The state under test.
pub struct StateTarget<'a> {
    /// The state.
    pub state: &'a dyn SyncState,
}

impl fmt::Debug for StateTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTarget").field("state", &self.state).finish()
    }
}
