//! The state conformance suite on [`SqliteState`], in memory and on a file, plus what only
//! a database has: persistence across reopening, idempotent migrations, and refusing
//! corrupt rows without panicking.

use async_trait::async_trait;
use crmsync_core::conformance::{StateHooks, StateTarget, run_state_suite};
use crmsync_core::{
    AccountId, AccountStatus, CollectionId, Contact, CrmId, Cursor, CursorState, ErrorKind, Intent,
    ItemId, Link, LinkKey, RecordExt, RemoteId, ResetScope, RunSummary, Side, StateKey, StateOp,
    SyncState,
};
use crmsync_sqlite::SqliteState;

/// The sqlite state's testing hook, as the suite wants it.
struct Hooks(SqliteState);

#[async_trait]
impl StateHooks for Hooks {
    async fn fail_next_commit_after(&self, ops: usize) -> crmsync_core::Result<bool> {
        self.0.fail_next_commit_after(ops);
        Ok(true)
    }
}

async fn run_suite(state: &SqliteState) {
    let hooks = Hooks(state.clone());
    let report = run_state_suite(&StateTarget::new(state).with_hooks(&hooks)).await;
    report.print();
    assert!(report.skipped.is_empty(), "{report}");
    assert!(report.passed.len() >= 10, "{report}");
}

#[tokio::test]
async fn in_memory_state_passes_the_state_suite() {
    let state = SqliteState::in_memory().await.unwrap();
    run_suite(&state).await;
}

#[tokio::test]
async fn file_state_passes_the_state_suite_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.db");
    let state = SqliteState::open(&path).await.unwrap();
    run_suite(&state).await;
    state.close().await;
    // Again on the reopened file, which still holds the first run's data.
    let state = SqliteState::open(&path).await.unwrap();
    run_suite(&state).await;
    state.close().await;
}

fn key() -> StateKey {
    StateKey::new(
        AccountId::new("ann@example.com").unwrap(),
        "contact",
        CollectionId::new("people/me").unwrap(),
    )
}

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000 + secs, 123_000_000).unwrap()
}

fn a_link() -> Link {
    Link {
        crm_id: CrmId::new("contact-42").unwrap(),
        remote_id: RemoteId::new("people/c7351").unwrap(),
        crm_version: Some("\"v1\"".parse().unwrap()),
        remote_version: Some("etag-9".parse().unwrap()),
        baseline: Contact::new("Ann Lee")
            .with_email("ann@example.com", crmsync_core::Usage::Work)
            .unwrap()
            .canonical(),
        synced_at: at(0),
        pending: Vec::new(),
    }
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let account = key().account;
    let cursor = CursorState {
        cursor: Cursor::new("sync-token-1").unwrap(),
        taken_at: at(5),
        window: None,
    };
    let intent = Intent {
        target: Side::Provider,
        source_id: ItemId::new("contact-43").unwrap(),
        link_key: LinkKey::new("contact-43").unwrap(),
        created_at: at(6),
    };
    let summary = RunSummary {
        started_at: at(10),
        finished_at: at(12),
        written: 3,
        conflicts: 1,
        errors: 0,
        text: "3 written, 1 conflict".into(),
    };
    {
        let state = SqliteState::open(&path).await.unwrap();
        state
            .commit(
                &key(),
                vec![
                    StateOp::PutLink(a_link()),
                    StateOp::SetCursor {
                        side: Side::Provider,
                        cursor: Some(cursor.clone()),
                    },
                    StateOp::PutIntent(intent.clone()),
                ],
            )
            .await
            .unwrap();
        state
            .set_account_status(
                &account,
                AccountStatus::NeedsReauthorization {
                    cause: "invalid_grant".into(),
                },
            )
            .await
            .unwrap();
        state.set_last_run(&account, summary.clone()).await.unwrap();
        state.close().await;
    }
    for _ in 0..2 {
        let state = SqliteState::open(&path).await.unwrap();
        assert_eq!(state.links(&key()).await.unwrap(), vec![a_link()]);
        assert_eq!(
            state.cursor(&key(), Side::Provider).await.unwrap(),
            Some(cursor.clone())
        );
        assert_eq!(state.intents(&key()).await.unwrap(), vec![intent.clone()]);
        assert_eq!(
            state.account_status(&account).await.unwrap(),
            AccountStatus::NeedsReauthorization {
                cause: "invalid_grant".into()
            }
        );
        assert_eq!(
            state.last_run(&account).await.unwrap(),
            Some(summary.clone())
        );
        assert_eq!(state.keys(&account).await.unwrap(), vec![key()]);
        // Each migration is recorded once, however often the file is opened.
        let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(state.pool())
            .await
            .unwrap();
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .count();
        assert_eq!(applied, migrations as i64);
        state.close().await;
    }
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_foreign_keys_on() {
    let dir = tempfile::tempdir().unwrap();
    let state = SqliteState::open(dir.path().join("state.db"))
        .await
        .unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(state.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(state.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    state.close().await;
}

#[tokio::test]
async fn two_handles_on_one_file_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let first = SqliteState::open(&path).await.unwrap();
    let second = SqliteState::open(&path).await.unwrap();
    let writes = (0..20).map(|n| {
        let state = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move {
            let link = Link {
                crm_id: CrmId::new(format!("crm-{n}")).unwrap(),
                remote_id: RemoteId::new(format!("remote-{n}")).unwrap(),
                ..a_link()
            };
            state.commit(&key(), vec![StateOp::PutLink(link)]).await
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap().unwrap();
    }
    assert_eq!(first.links(&key()).await.unwrap().len(), 20);
    assert_eq!(second.links(&key()).await.unwrap().len(), 20);
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn corrupt_rows_are_state_errors_not_panics() {
    let state = SqliteState::in_memory().await.unwrap();
    state
        .commit(&key(), vec![StateOp::PutLink(a_link())])
        .await
        .unwrap();
    for (sql, what) in [
        ("UPDATE links SET baseline = '{not json'", "baseline"),
        ("UPDATE links SET baseline_hash = 'xyz'", "baseline hash"),
        ("UPDATE links SET synced_at = 'yesterday'", "time"),
        ("UPDATE links SET crm_id = ''", "id"),
    ] {
        let fresh = SqliteState::in_memory().await.unwrap();
        fresh
            .commit(&key(), vec![StateOp::PutLink(a_link())])
            .await
            .unwrap();
        sqlx::query(sql).execute(fresh.pool()).await.unwrap();
        let err = fresh.links(&key()).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::State, "{sql}: {err}");
        assert!(err.to_string().contains(what), "{sql}: {err}");
    }
    let account = key().account;
    let summary = RunSummary {
        started_at: at(0),
        finished_at: at(1),
        written: 1,
        conflicts: 0,
        errors: 0,
        text: String::new(),
    };
    state.set_last_run(&account, summary).await.unwrap();
    sqlx::query("UPDATE last_run SET written = -1")
        .execute(state.pool())
        .await
        .unwrap();
    let err = state.last_run(&account).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::State, "{err}");
}

#[tokio::test]
async fn values_sqlite_cannot_keep_are_refused_not_truncated() {
    let state = SqliteState::in_memory().await.unwrap();
    let account = key().account;
    let err = state
        .set_last_run(
            &account,
            RunSummary {
                started_at: at(0),
                finished_at: at(1),
                written: u64::MAX,
                conflicts: 0,
                errors: 0,
                text: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(state.last_run(&account).await.unwrap(), None);

    // A time SQLite's text form cannot hold fails the whole batch.
    let far = Link {
        synced_at: chrono::DateTime::<chrono::Utc>::MAX_UTC,
        pending: Vec::new(),
        ..a_link()
    };
    let err = state
        .commit(
            &key(),
            vec![
                StateOp::PutIntent(Intent {
                    target: Side::Crm,
                    source_id: ItemId::new("x").unwrap(),
                    link_key: LinkKey::new("x").unwrap(),
                    created_at: at(0),
                }),
                StateOp::PutLink(far),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert!(state.intents(&key()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_closed_state_reports_errors() {
    let state = SqliteState::in_memory().await.unwrap();
    state.close().await;
    let err = state.links(&key()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::State);
    let err = state
        .reset(&ResetScope {
            account: key().account,
            kind: None,
            collection: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::State);
}
