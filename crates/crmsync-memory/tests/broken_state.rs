//! The state suite bites: deliberately broken states fail the named checks.

use std::any::Any;
use std::sync::Mutex;

use async_trait::async_trait;
use crmsync_core::conformance::{
    Outcome, StateHooks, StateTarget, check_commit_is_all_or_nothing,
    check_intents_round_trip_and_clear,
};
use crmsync_core::{
    AccountId, AccountStatus, CollectionId, CrmId, CursorState, Deferred, Error, Intent, Link,
    RemoteId, ResetCounts, ResetScope, Result, RunSummary, Side, StateKey, StateOp, SyncState,
};
use crmsync_memory::MemoryState;

/// Implements `SyncState` for a wrapper by forwarding every method to its `inner`
/// [`MemoryState`], except `commit`, which goes to the wrapper's `broken_commit`.
macro_rules! broken_state {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl SyncState for $ty {
            async fn commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
                self.broken_commit(key, ops).await
            }
            async fn links(&self, key: &StateKey) -> Result<Vec<Link>> {
                self.inner.links(key).await
            }
            async fn link_count(&self, key: &StateKey) -> Result<u64> {
                self.inner.link_count(key).await
            }
            async fn links_by_crm(&self, key: &StateKey, ids: &[CrmId]) -> Result<Vec<Link>> {
                self.inner.links_by_crm(key, ids).await
            }
            async fn links_by_remote(&self, key: &StateKey, ids: &[RemoteId]) -> Result<Vec<Link>> {
                self.inner.links_by_remote(key, ids).await
            }
            async fn cursor(&self, key: &StateKey, side: Side) -> Result<Option<CursorState>> {
                self.inner.cursor(key, side).await
            }
            async fn intents(&self, key: &StateKey) -> Result<Vec<Intent>> {
                self.inner.intents(key).await
            }
            async fn deferred(&self, key: &StateKey) -> Result<Vec<Deferred>> {
                self.inner.deferred(key).await
            }
            async fn account_status(&self, account: &AccountId) -> Result<AccountStatus> {
                self.inner.account_status(account).await
            }
            async fn set_account_status(
                &self,
                account: &AccountId,
                status: AccountStatus,
            ) -> Result<()> {
                self.inner.set_account_status(account, status).await
            }
            async fn last_run(&self, account: &AccountId) -> Result<Option<RunSummary>> {
                self.inner.last_run(account).await
            }
            async fn set_last_run(&self, account: &AccountId, summary: RunSummary) -> Result<()> {
                self.inner.set_last_run(account, summary).await
            }
            async fn keys(&self, account: &AccountId) -> Result<Vec<StateKey>> {
                self.inner.keys(account).await
            }
            async fn collection_alias(
                &self,
                account: &AccountId,
                kind: &str,
                name: &str,
            ) -> Result<Option<CollectionId>> {
                self.inner.collection_alias(account, kind, name).await
            }
            async fn set_collection_alias(
                &self,
                account: &AccountId,
                kind: &str,
                name: &str,
                id: Option<&CollectionId>,
            ) -> Result<()> {
                self.inner
                    .set_collection_alias(account, kind, name, id)
                    .await
            }
            async fn reset(&self, scope: &ResetScope) -> Result<ResetCounts> {
                self.inner.reset(scope).await
            }
        }
    };
}

/// A state that loses intents: it drops every `PutIntent` of a batch. After a crash, the
/// engine would not know a create was in flight, and would create a duplicate.
#[derive(Debug, Default)]
struct LosesIntents {
    inner: MemoryState,
}

impl LosesIntents {
    async fn broken_commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
        let kept = ops
            .into_iter()
            .filter(|op| !matches!(op, StateOp::PutIntent(_)))
            .collect();
        self.inner.commit(key, kept).await
    }
}

broken_state!(LosesIntents);

/// A state that is not atomic: it commits a batch one operation at a time, so a failure
/// midway leaves the first half applied.
#[derive(Debug, Default)]
struct NotAtomic {
    inner: MemoryState,
    fail_after: Mutex<Option<usize>>,
}

impl NotAtomic {
    async fn broken_commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
        let fail_after = self.fail_after.lock().unwrap().take();
        for (applied, op) in ops.into_iter().enumerate() {
            if fail_after == Some(applied) {
                return Err(Error::state("disk full"));
            }
            self.inner.commit(key, vec![op]).await?;
        }
        match fail_after {
            Some(_) => Err(Error::state("disk full")),
            None => Ok(()),
        }
    }
}

broken_state!(NotAtomic);

#[async_trait]
impl StateHooks for NotAtomic {
    async fn fail_next_commit_after(&self, ops: usize) -> Result<bool> {
        *self.fail_after.lock().unwrap() = Some(ops);
        Ok(true)
    }
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_state_that_loses_intents_fails_the_intent_check() {
    let handle = tokio::spawn(async {
        let state = LosesIntents::default();
        check_intents_round_trip_and_clear(&StateTarget::new(&state)).await
    });
    let err = handle
        .await
        .expect_err("the check must fail on a state that loses intents");
    assert!(err.is_panic());
    let text = panic_text(err.into_panic());
    assert!(
        text.contains("SyncState rule `intents_round_trip_and_clear` broken"),
        "{text}"
    );
}

#[tokio::test]
async fn a_state_that_is_not_atomic_fails_the_atomicity_check() {
    let handle = tokio::spawn(async {
        let state = NotAtomic::default();
        check_commit_is_all_or_nothing(&StateTarget::new(&state).with_hooks(&state)).await
    });
    let err = handle
        .await
        .expect_err("the check must fail on a state that is not atomic");
    assert!(err.is_panic());
    let text = panic_text(err.into_panic());
    assert!(
        text.contains("SyncState rule `commit_is_all_or_nothing` broken"),
        "{text}"
    );
    assert!(text.contains("must leave nothing behind"), "{text}");
}

/// The wrappers above are faithful apart from what they break: the same checks pass on
/// the state they wrap.
#[tokio::test]
async fn the_same_checks_pass_on_the_unbroken_state() {
    let state = MemoryState::new();
    assert_eq!(
        check_intents_round_trip_and_clear(&StateTarget::new(&state)).await,
        Outcome::Passed
    );
    struct Hooks(MemoryState);
    #[async_trait]
    impl StateHooks for Hooks {
        async fn fail_next_commit_after(&self, ops: usize) -> Result<bool> {
            self.0.fail_next_commit_after(ops);
            Ok(true)
        }
    }
    let hooks = Hooks(state.clone());
    assert_eq!(
        check_commit_is_all_or_nothing(&StateTarget::new(&state).with_hooks(&hooks)).await,
        Outcome::Passed
    );
}
