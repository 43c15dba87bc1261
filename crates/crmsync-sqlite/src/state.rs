//! [`SqliteState`]: the [`SyncState`] on SQLite.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use crmsync_core::hash::canonical_json;
use crmsync_core::{
    AccountId, AccountStatus, CanonicalRecord, CollectionId, ContentHash, CrmId, CursorState,
    Deferred, DeferredReason, Error, Intent, Link, RemoteId, ResetCounts, ResetScope, Result,
    RunSummary, Side, StateKey, StateOp, SyncState, Window,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

/// The schema migrations, from this crate's `migrations/` folder.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a connection waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many ids one `IN (...)` lookup binds.
const LOOKUP_CHUNK: usize = 500;

/// Connections of a pool opened on a file (readers run beside the one writer in WAL mode).
const FILE_CONNECTIONS: u32 = 4;

/// A [`SyncState`] kept in a SQLite database.
///
/// Cloning a `SqliteState` shares its connection pool. Every
/// [`commit`](SyncState::commit) and [`reset`](SyncState::reset) runs in one
/// `BEGIN IMMEDIATE` transaction, so a batch is applied whole or not at all, writers wait
/// for each other (up to a busy timeout of 10 seconds) instead of failing, and readers —
/// which read multi-query answers in one transaction — never see half a batch.
#[derive(Debug, Clone)]
pub struct SqliteState {
    pool: SqlitePool,
    /// Testing hook: the next commit fails after applying this many operations.
    fail_next_commit_after: Arc<Mutex<Option<usize>>>,
}

fn sql_error(context: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| Error::state(format!("sqlite state: could not {context}")).with_source(e)
}

fn corrupt(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::state(format!(
        "sqlite state: a stored {what} is not valid ({reason})"
    ))
}

impl SqliteState {
    /// Opens (creating it, and its folder, when missing) the state database at `path`, in
    /// WAL mode with foreign keys on and a busy timeout, and brings its schema up to date.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when the folder or the file
    /// cannot be created or opened, or a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::state(format!(
                    "sqlite state: could not create the folder {}",
                    parent.display()
                ))
                .with_source(e)
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let context = format!("open the state database {}", path.display());
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(sql_error(&context))?;
        Self::from_pool(pool).await
    }

    /// A fresh state in memory, for tests. SQLite's `:memory:` databases belong to one
    /// connection, so the pool holds exactly one, never closed while the state lives;
    /// concurrent callers take turns.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when SQLite cannot open it.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(sql_error("configure an in-memory database"))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(sql_error("open an in-memory database"))?;
        Self::from_pool(pool).await
    }

    /// A state on a pool the host configured, with the schema brought up to date. The
    /// host's options apply as they are: enable foreign keys and a busy timeout on its
    /// connections, and WAL for a file shared with readers.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when a migration fails.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self> {
        MIGRATOR.run(&pool).await.map_err(|e| {
            Error::state("sqlite state: could not bring the schema up to date").with_source(e)
        })?;
        Ok(SqliteState {
            pool,
            fail_next_commit_after: Arc::new(Mutex::new(None)),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (checkpointing the WAL of a file database). Calls made
    /// afterwards fail with [`ErrorKind::State`](crmsync_core::ErrorKind::State).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// **Testing hook**: the next [`commit`](SyncState::commit) runs its first `ops`
    /// operations inside its transaction, then fails with
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) and rolls back, as a commit
    /// whose disk or connection failed would. The conformance suite uses it to check that
    /// such a batch leaves nothing behind. Later commits are not affected.
    pub fn fail_next_commit_after(&self, ops: usize) {
        if let Ok(mut slot) = self.fail_next_commit_after.lock() {
            *slot = Some(ops);
        }
    }

    fn take_fault(&self) -> Option<usize> {
        self.fail_next_commit_after
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }

    async fn lookup(&self, key: &StateKey, column: Column, ids: Vec<&str>) -> Result<Vec<Link>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::with_capacity(ids.len());
        let ids: Vec<&str> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
        // One read transaction: every chunk sees the same snapshot.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(sql_error("begin a lookup"))?;
        let mut links = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT {LINK_COLUMNS} FROM links \
                 WHERE account = ? AND kind = ? AND collection = ? AND {} IN ({placeholders})",
                column.name()
            );
            // Only placeholders are spliced in; every value is bound.
            let mut query = bind_key(sqlx::query(AssertSqlSafe(sql)), key);
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .map_err(sql_error("look links up"))?;
            for row in &rows {
                links.push(link_from_row(row)?);
            }
        }
        tx.commit().await.map_err(sql_error("end a lookup"))?;
        Ok(links)
    }
}

#[derive(Clone, Copy)]
enum Column {
    Crm,
    Remote,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Crm => "crm_id",
            Column::Remote => "remote_id",
        }
    }
}

const LINK_COLUMNS: &str = "crm_id, remote_id, crm_version, remote_version, baseline_kind, \
                            baseline, baseline_hash, field_hashes, synced_at, pending";

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_key<'q>(query: Query<'q>, key: &StateKey) -> Query<'q> {
    query
        .bind(key.account.as_str().to_owned())
        .bind(key.kind.clone())
        .bind(key.collection.as_str().to_owned())
}

// ---- encoding ------------------------------------------------------------------------

/// RFC 3339 UTC with nanoseconds: fixed width, so it sorts as text.
fn encode_time(time: &DateTime<Utc>) -> Result<String> {
    if !(0..=9999).contains(&time.year()) {
        return Err(Error::invalid_input(format!(
            "the sqlite state keeps times of the years 0 to 9999; {time} is outside"
        )));
    }
    Ok(time.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

fn decode_time(what: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(what, format_args!("time {text:?}: {e}")))
}

fn decode_side(what: &str, text: &str) -> Result<Side> {
    match text {
        "crm" => Ok(Side::Crm),
        "provider" => Ok(Side::Provider),
        other => Err(corrupt(what, format_args!("side {other:?}"))),
    }
}

fn decode_id<T: FromStr<Err = Error>>(what: &str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|e: Error| corrupt(what, format_args!("id {text:?}: {}", e.message())))
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(|e| {
        Error::state(format!("sqlite state: could not read column {column}")).with_source(e)
    })
}

/// The baseline's fields as canonical JSON (sorted keys, no whitespace).
fn encode_fields(fields: &BTreeMap<String, serde_json::Value>) -> String {
    let mut out = Vec::with_capacity(64 * fields.len() + 2);
    out.push(b'{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        canonical_json(&serde_json::Value::String(name.clone()), &mut out);
        out.push(b':');
        canonical_json(value, &mut out);
    }
    out.push(b'}');
    // Canonical JSON of valid strings is valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

fn encode_field_hashes(hashes: &BTreeMap<String, ContentHash>) -> Result<String> {
    serde_json::to_string(hashes).map_err(|e| {
        Error::state("sqlite state: could not encode the per-field hashes").with_source(e)
    })
}

fn link_from_row(row: &SqliteRow) -> Result<Link> {
    let what = "link";
    let crm_version: Option<String> = get(row, "crm_version")?;
    let remote_version: Option<String> = get(row, "remote_version")?;
    let fields: String = get(row, "baseline")?;
    let field_hashes: String = get(row, "field_hashes")?;
    let hash: String = get(row, "baseline_hash")?;
    let baseline = CanonicalRecord {
        kind: get(row, "baseline_kind")?,
        fields: serde_json::from_str(&fields)
            .map_err(|e| corrupt(what, format_args!("baseline: {e}")))?,
        field_hashes: serde_json::from_str(&field_hashes)
            .map_err(|e| corrupt(what, format_args!("field hashes: {e}")))?,
        hash: ContentHash::from_hex(&hash)
            .map_err(|e| corrupt(what, format_args!("baseline hash: {}", e.message())))?,
    };
    Ok(Link {
        crm_id: decode_id(what, &get::<String>(row, "crm_id")?)?,
        remote_id: decode_id(what, &get::<String>(row, "remote_id")?)?,
        crm_version: crm_version.map(|v| decode_id(what, &v)).transpose()?,
        remote_version: remote_version.map(|v| decode_id(what, &v)).transpose()?,
        baseline,
        synced_at: decode_time(what, &get::<String>(row, "synced_at")?)?,
        pending: serde_json::from_str(&get::<String>(row, "pending")?)
            .map_err(|e| corrupt(what, format_args!("pending writes: {e}")))?,
    })
}

fn u64_to_sql(what: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        Error::invalid_input(format!(
            "{what} is {value}; the sqlite state keeps at most {}",
            i64::MAX
        ))
    })
}

fn sql_to_u64(what: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(what, format_args!("negative count {value}")))
}

// ---- writing -------------------------------------------------------------------------

async fn apply(conn: &mut SqliteConnection, key: &StateKey, op: &StateOp) -> Result<()> {
    match op {
        StateOp::PutLink(link) => {
            // A CRM id and a remote id each belong to at most one link: free both.
            bind_key(
                sqlx::query(
                    "DELETE FROM links WHERE account = ? AND kind = ? AND collection = ? \
                     AND (crm_id = ? OR remote_id = ?)",
                ),
                key,
            )
            .bind(link.crm_id.as_str().to_owned())
            .bind(link.remote_id.as_str().to_owned())
            .execute(&mut *conn)
            .await
            .map_err(sql_error("replace a link"))?;
            bind_key(
                sqlx::query(
                    "INSERT INTO links (account, kind, collection, crm_id, remote_id, \
                     crm_version, remote_version, baseline_kind, baseline, baseline_hash, \
                     field_hashes, synced_at, pending) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ),
                key,
            )
            .bind(link.crm_id.as_str().to_owned())
            .bind(link.remote_id.as_str().to_owned())
            .bind(link.crm_version.as_ref().map(|v| v.as_str().to_owned()))
            .bind(link.remote_version.as_ref().map(|v| v.as_str().to_owned()))
            .bind(link.baseline.kind.clone())
            .bind(encode_fields(&link.baseline.fields))
            .bind(link.baseline.hash.to_string())
            .bind(encode_field_hashes(&link.baseline.field_hashes)?)
            .bind(encode_time(&link.synced_at)?)
            .bind(serde_json::to_string(&link.pending).map_err(|e| {
                Error::state("sqlite state: could not encode the pending writes").with_source(e)
            })?)
            .execute(&mut *conn)
            .await
            .map_err(sql_error("write a link"))?;
        }
        StateOp::RemoveLink(crm_id) => {
            bind_key(
                sqlx::query(
                    "DELETE FROM links WHERE account = ? AND kind = ? AND collection = ? \
                     AND crm_id = ?",
                ),
                key,
            )
            .bind(crm_id.as_str().to_owned())
            .execute(&mut *conn)
            .await
            .map_err(sql_error("remove a link"))?;
        }
        StateOp::PutIntent(intent) => {
            bind_key(
                sqlx::query(
                    "INSERT OR REPLACE INTO intents (account, kind, collection, target, \
                     source_id, link_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ),
                key,
            )
            .bind(intent.target.as_str())
            .bind(intent.source_id.as_str().to_owned())
            .bind(intent.link_key.as_str().to_owned())
            .bind(encode_time(&intent.created_at)?)
            .execute(&mut *conn)
            .await
            .map_err(sql_error("write an intent"))?;
        }
        StateOp::ClearIntent { target, source_id } => {
            bind_key(
                sqlx::query(
                    "DELETE FROM intents WHERE account = ? AND kind = ? AND collection = ? \
                     AND target = ? AND source_id = ?",
                ),
                key,
            )
            .bind(target.as_str())
            .bind(source_id.as_str().to_owned())
            .execute(&mut *conn)
            .await
            .map_err(sql_error("clear an intent"))?;
        }
        StateOp::SetCursor { side, cursor: None } => {
            bind_key(
                sqlx::query(
                    "DELETE FROM cursors WHERE account = ? AND kind = ? AND collection = ? \
                     AND side = ?",
                ),
                key,
            )
            .bind(side.as_str())
            .execute(&mut *conn)
            .await
            .map_err(sql_error("forget a cursor"))?;
        }
        StateOp::SetCursor {
            side,
            cursor: Some(cursor),
        } => {
            let (start, end) = match &cursor.window {
                Some(w) => (Some(encode_time(&w.start)?), Some(encode_time(&w.end)?)),
                None => (None, None),
            };
            bind_key(
                sqlx::query(
                    "INSERT OR REPLACE INTO cursors (account, kind, collection, side, cursor, \
                     taken_at, window_start, window_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ),
                key,
            )
            .bind(side.as_str())
            .bind(cursor.cursor.as_str().to_owned())
            .bind(encode_time(&cursor.taken_at)?)
            .bind(start)
            .bind(end)
            .execute(&mut *conn)
            .await
            .map_err(sql_error("write a cursor"))?;
        }
        StateOp::PutDeferred(deferred) => {
            let (reason, error, retryable) = match &deferred.reason {
                DeferredReason::Failed { error, retryable } => {
                    ("failed", Some(error.clone()), Some(*retryable))
                }
                DeferredReason::DeletionPending => ("deletion_pending", None, None),
                DeferredReason::CapReached => ("cap_reached", None, None),
            };
            bind_key(
                sqlx::query(
                    "INSERT OR REPLACE INTO deferred (account, kind, collection, side, item_id, \
                     reason, error, retryable, attempts, since) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ),
                key,
            )
            .bind(deferred.side.as_str())
            .bind(deferred.id.as_str().to_owned())
            .bind(reason)
            .bind(error)
            .bind(retryable)
            .bind(i64::from(deferred.attempts))
            .bind(encode_time(&deferred.since)?)
            .execute(&mut *conn)
            .await
            .map_err(sql_error("write a deferred item"))?;
        }
        StateOp::ClearDeferred { side, id } => {
            bind_key(
                sqlx::query(
                    "DELETE FROM deferred WHERE account = ? AND kind = ? AND collection = ? \
                     AND side = ? AND item_id = ?",
                ),
                key,
            )
            .bind(side.as_str())
            .bind(id.as_str().to_owned())
            .execute(&mut *conn)
            .await
            .map_err(sql_error("clear a deferred item"))?;
        }
    }
    Ok(())
}

#[async_trait]
impl SyncState for SqliteState {
    async fn links(&self, key: &StateKey) -> Result<Vec<Link>> {
        let rows = bind_key(
            sqlx::query(
                "SELECT crm_id, remote_id, crm_version, remote_version, baseline_kind, \
                 baseline, baseline_hash, field_hashes, synced_at, pending FROM links \
                 WHERE account = ? AND kind = ? AND collection = ?",
            ),
            key,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error("read links"))?;
        rows.iter().map(link_from_row).collect()
    }

    async fn link_count(&self, key: &StateKey) -> Result<u64> {
        let row = bind_key(
            sqlx::query(
                "SELECT COUNT(*) FROM links WHERE account = ? AND kind = ? AND collection = ?",
            ),
            key,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(sql_error("count links"))?;
        let count: i64 = row.try_get(0).map_err(sql_error("count links"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn links_by_crm(&self, key: &StateKey, ids: &[CrmId]) -> Result<Vec<Link>> {
        let ids = ids.iter().map(CrmId::as_str).collect();
        self.lookup(key, Column::Crm, ids).await
    }

    async fn links_by_remote(&self, key: &StateKey, ids: &[RemoteId]) -> Result<Vec<Link>> {
        let ids = ids.iter().map(RemoteId::as_str).collect();
        self.lookup(key, Column::Remote, ids).await
    }

    async fn cursor(&self, key: &StateKey, side: Side) -> Result<Option<CursorState>> {
        let row = bind_key(
            sqlx::query(
                "SELECT cursor, taken_at, window_start, window_end FROM cursors \
                 WHERE account = ? AND kind = ? AND collection = ? AND side = ?",
            ),
            key,
        )
        .bind(side.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_error("read a cursor"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let what = "cursor";
        let start: Option<String> = get(&row, "window_start")?;
        let end: Option<String> = get(&row, "window_end")?;
        let window = match (start, end) {
            (Some(start), Some(end)) => Some(Window {
                start: decode_time(what, &start)?,
                end: decode_time(what, &end)?,
            }),
            _ => None,
        };
        Ok(Some(CursorState {
            cursor: decode_id(what, &get::<String>(&row, "cursor")?)?,
            taken_at: decode_time(what, &get::<String>(&row, "taken_at")?)?,
            window,
        }))
    }

    async fn intents(&self, key: &StateKey) -> Result<Vec<Intent>> {
        let rows = bind_key(
            sqlx::query(
                "SELECT target, source_id, link_key, created_at FROM intents \
                 WHERE account = ? AND kind = ? AND collection = ?",
            ),
            key,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error("read intents"))?;
        let what = "intent";
        rows.iter()
            .map(|row| {
                Ok(Intent {
                    target: decode_side(what, &get::<String>(row, "target")?)?,
                    source_id: decode_id(what, &get::<String>(row, "source_id")?)?,
                    link_key: decode_id(what, &get::<String>(row, "link_key")?)?,
                    created_at: decode_time(what, &get::<String>(row, "created_at")?)?,
                })
            })
            .collect()
    }

    async fn deferred(&self, key: &StateKey) -> Result<Vec<Deferred>> {
        let rows = bind_key(
            sqlx::query(
                "SELECT side, item_id, reason, error, retryable, attempts, since FROM deferred \
                 WHERE account = ? AND kind = ? AND collection = ?",
            ),
            key,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error("read deferred items"))?;
        let what = "deferred item";
        rows.iter()
            .map(|row| {
                let reason = match get::<String>(row, "reason")?.as_str() {
                    "deletion_pending" => DeferredReason::DeletionPending,
                    "cap_reached" => DeferredReason::CapReached,
                    "failed" => DeferredReason::Failed {
                        error: get::<Option<String>>(row, "error")?.unwrap_or_default(),
                        retryable: get::<Option<bool>>(row, "retryable")?.unwrap_or(false),
                    },
                    other => return Err(corrupt(what, format_args!("reason {other:?}"))),
                };
                let attempts: i64 = get(row, "attempts")?;
                Ok(Deferred {
                    side: decode_side(what, &get::<String>(row, "side")?)?,
                    id: decode_id(what, &get::<String>(row, "item_id")?)?,
                    reason,
                    attempts: u32::try_from(attempts)
                        .map_err(|_| corrupt(what, format_args!("attempts {attempts}")))?,
                    since: decode_time(what, &get::<String>(row, "since")?)?,
                })
            })
            .collect()
    }

    async fn commit(&self, key: &StateKey, ops: Vec<StateOp>) -> Result<()> {
        let fail_after = self.take_fault();
        // IMMEDIATE takes the write lock now: two writers queue on the busy timeout
        // instead of one failing when it upgrades a read lock.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_error("begin a commit"))?;
        for (applied, op) in ops.iter().enumerate() {
            if fail_after == Some(applied) {
                break;
            }
            // On error, dropping `tx` rolls the batch back.
            apply(&mut tx, key, op).await?;
        }
        if let Some(applied) = fail_after {
            let applied = applied.min(ops.len());
            tx.rollback()
                .await
                .map_err(sql_error("roll a failed commit back"))?;
            return Err(Error::state(format!(
                "sqlite state: injected failure after {applied} operations of a commit \
                 (testing hook)"
            )));
        }
        tx.commit().await.map_err(sql_error("commit"))
    }

    async fn account_status(&self, account: &AccountId) -> Result<AccountStatus> {
        let row = sqlx::query("SELECT status, detail FROM account_status WHERE account = ?")
            .bind(account.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_error("read an account status"))?;
        let Some(row) = row else {
            return Ok(AccountStatus::Ok);
        };
        let detail = get::<Option<String>>(&row, "detail")?.unwrap_or_default();
        match get::<String>(&row, "status")?.as_str() {
            "ok" => Ok(AccountStatus::Ok),
            "needs_reauthorization" => Ok(AccountStatus::NeedsReauthorization { cause: detail }),
            "failing" => Ok(AccountStatus::Failing { last_error: detail }),
            other => Err(corrupt("account status", format_args!("status {other:?}"))),
        }
    }

    async fn set_account_status(&self, account: &AccountId, status: AccountStatus) -> Result<()> {
        let (name, detail) = match status {
            AccountStatus::Ok => ("ok", None),
            AccountStatus::NeedsReauthorization { cause } => ("needs_reauthorization", Some(cause)),
            AccountStatus::Failing { last_error } => ("failing", Some(last_error)),
        };
        sqlx::query(
            "INSERT OR REPLACE INTO account_status (account, status, detail) VALUES (?, ?, ?)",
        )
        .bind(account.as_str().to_owned())
        .bind(name)
        .bind(detail)
        .execute(&self.pool)
        .await
        .map_err(sql_error("write an account status"))?;
        Ok(())
    }

    async fn last_run(&self, account: &AccountId) -> Result<Option<RunSummary>> {
        let row = sqlx::query(
            "SELECT started_at, finished_at, written, conflicts, errors, text FROM last_run \
             WHERE account = ?",
        )
        .bind(account.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_error("read the last run"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let what = "last run";
        Ok(Some(RunSummary {
            started_at: decode_time(what, &get::<String>(&row, "started_at")?)?,
            finished_at: decode_time(what, &get::<String>(&row, "finished_at")?)?,
            written: sql_to_u64(what, get(&row, "written")?)?,
            conflicts: sql_to_u64(what, get(&row, "conflicts")?)?,
            errors: sql_to_u64(what, get(&row, "errors")?)?,
            text: get(&row, "text")?,
        }))
    }

    async fn set_last_run(&self, account: &AccountId, summary: RunSummary) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO last_run (account, started_at, finished_at, written, \
             conflicts, errors, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(account.as_str().to_owned())
        .bind(encode_time(&summary.started_at)?)
        .bind(encode_time(&summary.finished_at)?)
        .bind(u64_to_sql("the written count", summary.written)?)
        .bind(u64_to_sql("the conflict count", summary.conflicts)?)
        .bind(u64_to_sql("the error count", summary.errors)?)
        .bind(summary.text)
        .execute(&self.pool)
        .await
        .map_err(sql_error("write the last run"))?;
        Ok(())
    }

    async fn keys(&self, account: &AccountId) -> Result<Vec<StateKey>> {
        let rows = sqlx::query(
            "SELECT kind, collection FROM links WHERE account = ?1 \
             UNION SELECT kind, collection FROM cursors WHERE account = ?1 \
             UNION SELECT kind, collection FROM intents WHERE account = ?1 \
             UNION SELECT kind, collection FROM deferred WHERE account = ?1 \
             ORDER BY kind, collection",
        )
        .bind(account.as_str().to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(sql_error("list an account's keys"))?;
        rows.iter()
            .map(|row| {
                let collection: CollectionId =
                    decode_id("key", &get::<String>(row, "collection")?)?;
                Ok(StateKey::new(
                    account.clone(),
                    get::<String>(row, "kind")?,
                    collection,
                ))
            })
            .collect()
    }

    async fn collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
    ) -> Result<Option<CollectionId>> {
        let row = sqlx::query(
            "SELECT collection FROM collection_aliases WHERE account = ? AND kind = ? AND name = ?",
        )
        .bind(account.as_str().to_owned())
        .bind(kind.to_owned())
        .bind(name.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_error("read a collection alias"))?;
        row.map(|row| decode_id("collection alias", &get::<String>(&row, "collection")?))
            .transpose()
    }

    async fn set_collection_alias(
        &self,
        account: &AccountId,
        kind: &str,
        name: &str,
        id: Option<&CollectionId>,
    ) -> Result<()> {
        let query = match id {
            Some(id) => sqlx::query(
                "INSERT OR REPLACE INTO collection_aliases (account, kind, name, collection) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(account.as_str().to_owned())
            .bind(kind.to_owned())
            .bind(name.to_owned())
            .bind(id.as_str().to_owned()),
            None => sqlx::query(
                "DELETE FROM collection_aliases WHERE account = ? AND kind = ? AND name = ?",
            )
            .bind(account.as_str().to_owned())
            .bind(kind.to_owned())
            .bind(name.to_owned()),
        };
        query
            .execute(&self.pool)
            .await
            .map_err(sql_error("write a collection alias"))?;
        Ok(())
    }

    async fn reset(&self, scope: &ResetScope) -> Result<ResetCounts> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_error("begin a reset"))?;
        let mut removed = [0u64; 4];
        for (i, table) in ["links", "intents", "deferred", "cursors"]
            .iter()
            .enumerate()
        {
            let sql = format!(
                "DELETE FROM {table} WHERE account = ?1 \
                 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR collection = ?3)"
            );
            // `table` comes from the list above; every value is bound.
            let done = sqlx::query(AssertSqlSafe(sql))
                .bind(scope.account.as_str().to_owned())
                .bind(scope.kind.clone())
                .bind(scope.collection.as_ref().map(|c| c.as_str().to_owned()))
                .execute(&mut *tx)
                .await
                .map_err(sql_error("reset"))?;
            removed[i] = done.rows_affected();
        }
        tx.commit().await.map_err(sql_error("commit a reset"))?;
        let [links, intents, deferred, cursors] = removed;
        Ok(ResetCounts {
            links,
            intents,
            deferred,
            cursors,
        })
    }
}
