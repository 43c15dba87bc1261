//! The state conformance suite on [`MemoryState`], plus its snapshot file.

use async_trait::async_trait;
use crmsync_core::conformance::{StateHooks, StateTarget, run_state_suite};
use crmsync_core::{
    AccountId, AccountStatus, CollectionId, CrmId, ErrorKind, Link, RecordExt, RemoteId, StateKey,
    StateOp, SyncState,
};
use crmsync_memory::MemoryState;

/// The memory state's testing hook, as the suite wants it.
struct Hooks(MemoryState);

#[async_trait]
impl StateHooks for Hooks {
    async fn fail_next_commit_after(&self, ops: usize) -> crmsync_core::Result<bool> {
        self.0.fail_next_commit_after(ops);
        Ok(true)
    }
}

#[tokio::test]
async fn memory_state_passes_the_state_suite() {
    let state = MemoryState::new();
    let hooks = Hooks(state.clone());
    let report = run_state_suite(&StateTarget::new(&state).with_hooks(&hooks)).await;
    report.print();
    assert!(report.skipped.is_empty(), "{report}");
    assert!(report.passed.len() >= 10, "{report}");
}

#[tokio::test]
async fn without_hooks_the_atomicity_check_is_skipped() {
    let state = MemoryState::new();
    let report = run_state_suite(&StateTarget::new(&state)).await;
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert_eq!(report.skipped[0].0, "commit_is_all_or_nothing");
}

fn key() -> StateKey {
    StateKey::new(
        AccountId::new("ann").unwrap(),
        "contact",
        CollectionId::new("book").unwrap(),
    )
}

fn a_link() -> Link {
    Link {
        crm_id: CrmId::new("crm-1").unwrap(),
        remote_id: RemoteId::new("people/c1").unwrap(),
        crm_version: None,
        remote_version: None,
        baseline: crmsync_core::Contact::new("Ann Lee").canonical(),
        synced_at: chrono::DateTime::UNIX_EPOCH,
        pending: Vec::new(),
    }
}

#[tokio::test]
async fn snapshot_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state.json");
    let state = MemoryState::open(&path).unwrap();
    state
        .commit(&key(), vec![StateOp::PutLink(a_link())])
        .await
        .unwrap();
    let account = AccountId::new("ann").unwrap();
    let status = AccountStatus::NeedsReauthorization {
        cause: "revoked".into(),
    };
    state
        .set_account_status(&account, status.clone())
        .await
        .unwrap();
    drop(state);

    let again = MemoryState::open(&path).unwrap();
    assert_eq!(again.links(&key()).await.unwrap(), vec![a_link()]);
    assert_eq!(again.account_status(&account).await.unwrap(), status);
    assert_eq!(again.keys(&account).await.unwrap(), vec![key()]);

    // An explicit snapshot of an in-memory state reads back the same.
    let copy = dir.path().join("copy.json");
    again.save_to(&copy).unwrap();
    let third = MemoryState::open(&copy).unwrap();
    assert_eq!(
        third
            .links_by_remote(&key(), &[a_link().remote_id])
            .await
            .unwrap(),
        vec![a_link()]
    );
}

#[tokio::test]
async fn a_bad_snapshot_is_a_state_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("garbage.json", "{not json"),
        (
            "future.json",
            r#"{"version": 99, "keys": [], "accounts": []}"#,
        ),
        (
            "bad-id.json",
            r#"{"version": 1, "keys": [{"key": {"account": "", "kind": "k", "collection": "c"}, "links": [], "cursors": [], "intents": [], "deferred": []}], "accounts": []}"#,
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = MemoryState::open(&path).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::State, "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_failed_save_rolls_the_commit_back() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    let state = MemoryState::open(folder.join("state.json")).unwrap();
    // The snapshot's folder becomes a file: every save fails.
    std::fs::write(&folder, "x").unwrap();
    let err = state
        .commit(&key(), vec![StateOp::PutLink(a_link())])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::State);
    assert!(state.links(&key()).await.unwrap().is_empty());
    assert!(state.keys(&key().account).await.unwrap().is_empty());
}
