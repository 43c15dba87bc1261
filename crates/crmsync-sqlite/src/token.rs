//! [`SqliteTokenStore`]: a [`TokenStore`] in the state database, encrypted at rest.

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use crmsync_core::{AccountId, Error, Result, TokenKey, TokenSet, TokenStore};
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;

use crate::SqliteState;

/// The schema migrations (the same as [`SqliteState`]'s; applying them twice is a no-op).
static MIGRATOR: Migrator = sqlx::migrate!();

/// A [`TokenStore`] in the `tokens` table of a SQLite database, usually the state's.
///
/// Each account's token set is sealed with its [`TokenKey`] (XChaCha20-Poly1305, a random
/// nonce per write, the account id as associated data), so neither the access token nor
/// the refresh token is ever written in clear: not in the database file, not in its WAL,
/// not in an error message. Only the access token's expiry and the time of the last write
/// are kept in clear, for operators.
///
/// Reading tokens written under another key fails with
/// [`ErrorKind::State`](crmsync_core::ErrorKind::State) (decryption is authenticated: a
/// wrong key never yields garbage tokens); the message says to supply the original key or
/// sign the account in again. Saving new tokens under the new key replaces the row.
///
/// Resetting an account should purge its tokens: call [`TokenStore::purge`] beside
/// [`SyncState::reset`](crmsync_core::SyncState::reset).
#[derive(Clone)]
pub struct SqliteTokenStore {
    pool: SqlitePool,
    key: TokenKey,
}

impl std::fmt::Debug for SqliteTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTokenStore")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn sql_error(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::state(format!("sqlite token store: could not {context}")).with_source(e)
}

impl SqliteTokenStore {
    /// A token store on the state's database (sharing its connection pool).
    pub fn new(state: &SqliteState, key: TokenKey) -> Self {
        SqliteTokenStore {
            pool: state.pool().clone(),
            key,
        }
    }

    /// A token store on a pool the host configured, with the schema brought up to date.
    ///
    /// # Errors
    /// [`ErrorKind::State`](crmsync_core::ErrorKind::State) when a migration fails.
    pub async fn from_pool(pool: SqlitePool, key: TokenKey) -> Result<Self> {
        MIGRATOR.run(&pool).await.map_err(|e| {
            Error::state("sqlite token store: could not bring the schema up to date").with_source(e)
        })?;
        Ok(SqliteTokenStore { pool, key })
    }
}

#[async_trait]
impl TokenStore for SqliteTokenStore {
    async fn load(&self, account: &AccountId) -> Result<Option<TokenSet>> {
        let row = sqlx::query("SELECT sealed FROM tokens WHERE account = ?")
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_error("read tokens"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("sealed").map_err(sql_error("read tokens"))?;
        self.key.open(account, &sealed).map(Some)
    }

    async fn save(&self, account: &AccountId, tokens: &TokenSet) -> Result<()> {
        let sealed = self.key.seal(account, tokens)?;
        sqlx::query(
            "INSERT INTO tokens (account, sealed, expires_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (account) DO UPDATE SET sealed = excluded.sealed, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at",
        )
        .bind(account.as_str())
        .bind(sealed)
        .bind(
            tokens
                .expires_at
                .to_rfc3339_opts(SecondsFormat::Nanos, true),
        )
        .bind(Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true))
        .execute(&self.pool)
        .await
        .map_err(sql_error("save tokens"))?;
        Ok(())
    }

    async fn purge(&self, account: &AccountId) -> Result<()> {
        sqlx::query("DELETE FROM tokens WHERE account = ?")
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(sql_error("purge tokens"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crmsync_core::{AccessToken, ErrorKind, RefreshToken};

    const SENTINEL_REFRESH: &str = "SENTINEL-refresh-7c1e";
    const SENTINEL_ACCESS: &str = "SENTINEL-access-41aa";

    fn tokens() -> TokenSet {
        TokenSet::new(
            AccessToken::new(SENTINEL_ACCESS),
            Some(RefreshToken::new(SENTINEL_REFRESH)),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        )
        .with_scopes(["https://www.googleapis.com/auth/calendar"])
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn tokens_are_encrypted_in_the_file_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let ann = AccountId::new("ann@example.com").unwrap();
        let key = TokenKey::from_bytes([42; 32]);
        {
            let state = SqliteState::open(&path).await.unwrap();
            let store = SqliteTokenStore::new(&state, key.clone());
            store.save(&ann, &tokens()).await.unwrap();
            // Overwrite once, so an old page could hold an older copy too.
            store.save(&ann, &tokens()).await.unwrap();
            let back = store.load(&ann).await.unwrap().unwrap();
            assert_eq!(back.refresh_token.unwrap().secret(), SENTINEL_REFRESH);
            assert_eq!(back.access_token.secret(), SENTINEL_ACCESS);
            assert_eq!(back.scopes, tokens().scopes);
            assert!(!format!("{store:?}").contains("42"));
            state.close().await;
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!contains(&bytes, SENTINEL_REFRESH));
            assert!(!contains(&bytes, SENTINEL_ACCESS));
            assert!(!contains(&bytes, "SENTINEL"));
        }
        // Reopened with the same key, the tokens are still there.
        let state = SqliteState::open(&path).await.unwrap();
        let store = SqliteTokenStore::new(&state, key);
        assert!(store.load(&ann).await.unwrap().is_some());
        state.close().await;
    }

    #[tokio::test]
    async fn a_wrong_key_is_a_clear_state_error() {
        let state = SqliteState::in_memory().await.unwrap();
        let ann = AccountId::new("ann@example.com").unwrap();
        SqliteTokenStore::new(&state, TokenKey::from_bytes([1; 32]))
            .save(&ann, &tokens())
            .await
            .unwrap();
        let other = SqliteTokenStore::new(&state, TokenKey::from_bytes([2; 32]));
        let err = other.load(&ann).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::State);
        assert!(err.to_string().contains("another token key"), "{err}");
        assert!(!format!("{err} {err:?}").contains("SENTINEL"));
        // Signing in again under the new key replaces the row.
        other.save(&ann, &tokens()).await.unwrap();
        assert!(other.load(&ann).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn purge_forgets_and_is_idempotent() {
        let state = SqliteState::in_memory().await.unwrap();
        let store =
            SqliteTokenStore::from_pool(state.pool().clone(), TokenKey::from_bytes([1; 32]))
                .await
                .unwrap();
        let ann = AccountId::new("ann@example.com").unwrap();
        let bob = AccountId::new("bob@example.com").unwrap();
        store.save(&ann, &tokens()).await.unwrap();
        store.save(&bob, &tokens()).await.unwrap();
        store.purge(&ann).await.unwrap();
        store.purge(&ann).await.unwrap();
        assert!(store.load(&ann).await.unwrap().is_none());
        assert!(store.load(&bob).await.unwrap().is_some());
    }
}
