//! Shared set-up: a Graph fake, a client on it, no real sleeps.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};
use crmsync_core::{
    AccessToken, AccountId, ManualClock, RecordingSleeper, RefreshToken, TokenSet, TokenStore,
};
use crmsync_http::{HttpClient, NoJitter, RetryPolicy};
use crmsync_memory::MemoryTokenStore;
use crmsync_microsoft::{MicrosoftAuth, MicrosoftClient, MicrosoftConfig, mailbox_limiter};
use crmsync_testkit::graph::{DEFAULT_MAILBOX, GraphFake, PUBLIC_CLIENT_ID};

pub struct Setup {
    pub fake: Arc<GraphFake>,
    pub config: MicrosoftConfig,
    pub http: HttpClient,
    pub sleeper: Arc<RecordingSleeper>,
    pub tokens: Arc<MemoryTokenStore>,
    pub auth: MicrosoftAuth,
    pub account: AccountId,
}

pub async fn setup() -> Setup {
    let fake = Arc::new(GraphFake::start().await);
    let config = MicrosoftConfig::new(PUBLIC_CLIENT_ID)
        .with_graph_url(&fake.base_url())
        .unwrap()
        .with_authority_url(&fake.login_url())
        .unwrap();
    // Waits are recorded, and move the clock the retry policy reads (and its
    // `Retry-After` gate with it), as a real wait would.
    let clock = ManualClock::new(Utc::now());
    let sleeper = Arc::new(RecordingSleeper::advancing(clock.clone()));
    let http = HttpClient::builder()
        .retry(
            RetryPolicy::default()
                .with_clock(Arc::new(clock))
                .with_sleeper(sleeper.clone())
                .with_jitter(Arc::new(NoJitter)),
        )
        .limiter(mailbox_limiter())
        .build()
        .unwrap();
    let tokens = Arc::new(MemoryTokenStore::new());
    let auth =
        MicrosoftAuth::new(&config, http.clone(), tokens.clone()).with_sleeper(sleeper.clone());
    Setup {
        fake,
        config,
        http,
        sleeper,
        tokens,
        auth,
        account: AccountId::new(DEFAULT_MAILBOX).unwrap(),
    }
}

impl Setup {
    /// Tokens of the default mailbox, saved; `expired` makes the next use refresh.
    pub async fn signed_in(&self, expired: bool) -> TokenSet {
        let issued = self.fake.issue_tokens(
            DEFAULT_MAILBOX,
            &[
                crmsync_microsoft::SCOPE_CALENDARS,
                crmsync_microsoft::SCOPE_CONTACTS,
            ],
        );
        let expires_at = if expired {
            Utc::now() - ChronoDuration::minutes(1)
        } else {
            Utc::now() + ChronoDuration::hours(1)
        };
        let set = TokenSet::new(
            AccessToken::new(issued.access_token),
            Some(RefreshToken::new(issued.refresh_token)),
            expires_at,
        )
        .with_scopes([
            crmsync_microsoft::SCOPE_CALENDARS,
            crmsync_microsoft::SCOPE_CONTACTS,
            crmsync_microsoft::SCOPE_OFFLINE_ACCESS,
        ]);
        self.tokens.save(&self.account, &set).await.unwrap();
        set
    }

    pub fn client(&self) -> MicrosoftClient {
        MicrosoftClient::new(
            self.config.clone(),
            self.http.clone(),
            self.auth.clone(),
            self.account.clone(),
        )
    }
}

/// A store with a "crash" (a failing state commit) after each create: the write reached
/// the provider, the link was never saved.
#[derive(Debug)]
pub struct CrashAfterCreate<R: crmsync_core::Record> {
    pub inner: Arc<dyn crmsync_core::RecordStore<R>>,
    pub state: crmsync_memory::MemoryState,
}

#[async_trait::async_trait]
impl<R: crmsync_core::Record> crmsync_core::RecordStore<R> for CrashAfterCreate<R> {
    fn capabilities(&self) -> crmsync_core::Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> crmsync_core::Result<Vec<crmsync_core::CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(
        &self,
        c: &crmsync_core::CollectionId,
        r: crmsync_core::ChangesRequest,
    ) -> crmsync_core::Result<crmsync_core::ChangePage<R>> {
        self.inner.changes(c, r).await
    }
    async fn get(
        &self,
        c: &crmsync_core::CollectionId,
        id: &crmsync_core::ItemId,
    ) -> crmsync_core::Result<Option<crmsync_core::Stored<R>>> {
        self.inner.get(c, id).await
    }
    async fn create(
        &self,
        c: &crmsync_core::CollectionId,
        r: &R,
        k: &crmsync_core::LinkKey,
    ) -> crmsync_core::Result<crmsync_core::Stored<R>> {
        let created = self.inner.create(c, r, k).await;
        self.state.fail_next_commit_after(0);
        created
    }
    async fn update(
        &self,
        c: &crmsync_core::CollectionId,
        id: &crmsync_core::ItemId,
        v: &crmsync_core::Version,
        r: &R,
        f: &std::collections::BTreeSet<R::Field>,
    ) -> crmsync_core::Result<crmsync_core::Stored<R>> {
        self.inner.update(c, id, v, r, f).await
    }
    async fn delete(
        &self,
        c: &crmsync_core::CollectionId,
        id: &crmsync_core::ItemId,
        v: &crmsync_core::Version,
    ) -> crmsync_core::Result<()> {
        self.inner.delete(c, id, v).await
    }
    async fn find_by_link_key(
        &self,
        c: &crmsync_core::CollectionId,
        k: &crmsync_core::LinkKey,
    ) -> crmsync_core::Result<Option<crmsync_core::Stored<R>>> {
        self.inner.find_by_link_key(c, k).await
    }
}
