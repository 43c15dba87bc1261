//! [`MemoryTokenStore`]: a [`TokenStore`] held in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crmsync_core::{AccountId, Result, TokenSet, TokenStore};

/// A [`TokenStore`] held in memory, for tests and for hosts that keep tokens elsewhere.
///
/// Nothing is written anywhere, so nothing is encrypted: the token sets live in this
/// process only, their secrets zeroed when dropped. Clones share the same tokens.
#[derive(Clone, Default)]
pub struct MemoryTokenStore {
    tokens: Arc<Mutex<HashMap<AccountId, TokenSet>>>,
}

impl std::fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts = self.tokens.lock().map(|t| t.len()).unwrap_or_default();
        f.debug_struct("MemoryTokenStore")
            .field("accounts", &accounts)
            .finish()
    }
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, TokenSet>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, account: &AccountId) -> Result<Option<TokenSet>> {
        Ok(self.lock().get(account).cloned())
    }

    async fn save(&self, account: &AccountId, tokens: &TokenSet) -> Result<()> {
        self.lock().insert(account.clone(), tokens.clone());
        Ok(())
    }

    async fn purge(&self, account: &AccountId) -> Result<()> {
        self.lock().remove(account);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use crmsync_core::{AccessToken, RefreshToken};

    #[tokio::test]
    async fn save_load_purge() {
        let store = MemoryTokenStore::new();
        let ann = AccountId::new("ann").unwrap();
        assert!(store.load(&ann).await.unwrap().is_none());
        let tokens = TokenSet::new(
            AccessToken::new("SENTINEL-a"),
            Some(RefreshToken::new("SENTINEL-r")),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        );
        store.save(&ann, &tokens).await.unwrap();
        let back = store.load(&ann).await.unwrap().unwrap();
        assert_eq!(back.refresh_token.unwrap().secret(), "SENTINEL-r");
        assert!(
            !format!("{store:?} {back:?}", back = store.load(&ann).await.unwrap())
                .contains("SENTINEL")
        );
        store.purge(&ann).await.unwrap();
        store.purge(&ann).await.unwrap();
        assert!(store.load(&ann).await.unwrap().is_none());
    }
}
