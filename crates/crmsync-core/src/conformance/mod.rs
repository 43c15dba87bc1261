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
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ids::{CollectionId, ItemId};
use crate::record::Record;
use crate::state::SyncState;
use crate::store::{RecordStore, Window};

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
        // The explicit `for<'r>` keeps the closure higher-ranked: `async_trait` would
        // otherwise name the elided lifetime, and no implementor could call it.
        edit: &(dyn for<'r> Fn(&'r mut R) + Send + Sync),
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
    /// events fall inside [`sample_window`].
    fn sample(n: usize) -> Self;

    /// Changes a sample in a visible way (another value in at least one synced field).
    fn edit(&mut self, n: usize);

    /// A record that [`Record::validate`] rejects, for the check that stores refuse
    /// invalid records. `None` (the default): the type has no invalid records, and the
    /// check is skipped.
    fn invalid() -> Option<Self> {
        None
    }

    /// For records bound to time: the `n`-th sample lying wholly outside
    /// [`sample_window`], for the window checks. `None` (the default): the check is skipped.
    fn outside_window(n: usize) -> Option<Self> {
        let _ = n;
        None
    }
}

/// The window the event samples fall in: the year 2026, UTC. Fixed, so the suite never
/// reads the clock.
pub fn sample_window() -> Window {
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0); // 2026-01-01T00:00:00Z
    let end = DateTime::<Utc>::from_timestamp(1_798_761_600, 0); // 2027-01-01T00:00:00Z
    match (start, end) {
        (Some(start), Some(end)) => Window { start, end },
        _ => Window {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MAX_UTC,
        },
    }
}

/// What a suite run found: the checks that passed and the ones skipped, with why. A
/// failing check panics with a message naming the broken rule, so a report only exists
/// for a run without failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// The names of the checks that passed.
    pub passed: Vec<&'static str>,
    /// The names of the checks that were skipped, and why.
    pub skipped: Vec<(&'static str, String)>,
}

impl SuiteReport {
    /// Adds a check's outcome.
    pub fn record(&mut self, name: &'static str, outcome: Outcome) {
        match outcome {
            Outcome::Passed => self.passed.push(name),
            Outcome::Skipped(why) => self.skipped.push((name, why)),
        }
    }

    /// Prints the report (`N passed, M skipped` and why each was skipped) to stdout.
    pub fn print(&self) {
        println!("{self}");
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} skipped",
            self.passed.len(),
            self.skipped.len()
        )?;
        for (name, why) in &self.skipped {
            write!(f, "\n  skipped {name}: {why}")?;
        }
        Ok(())
    }
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

/// Hooks that act on a state from outside. A check whose hook the target cannot provide
/// reports itself skipped.
#[async_trait]
pub trait StateHooks: Send + Sync {
    /// Makes the next [`SyncState::commit`] fail after its storage has applied `ops`
    /// operations of the batch (as a disk, a connection or a process could), so a check can
    /// see whether the half-applied batch is undone. Later commits are not affected.
    /// Returns `false` when the state cannot.
    async fn fail_next_commit_after(&self, ops: usize) -> Result<bool>;
}

/// The state under test.
pub struct StateTarget<'a> {
    /// The state.
    pub state: &'a dyn SyncState,
    /// Hooks to act on the state from outside, when the target has them.
    pub hooks: Option<&'a dyn StateHooks>,
}

impl<'a> StateTarget<'a> {
    /// A target without hooks: the checks that need one report themselves skipped.
    pub fn new(state: &'a dyn SyncState) -> Self {
        StateTarget { state, hooks: None }
    }

    /// The target with hooks.
    #[must_use]
    pub fn with_hooks(mut self, hooks: &'a dyn StateHooks) -> Self {
        self.hooks = Some(hooks);
        self
    }
}

impl fmt::Debug for StateTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTarget")
            .field("state", &self.state)
            .field("hooks", &self.hooks.is_some())
            .finish()
    }
}

mod samples;
mod state_checks;
mod store_checks;

pub use state_checks::*;
pub use store_checks::*;
