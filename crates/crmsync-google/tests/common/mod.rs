//! Shared fixtures: a Google fake, a signed-in account and a Google calendar store on it.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use crmsync_core::{
    AccessToken, AccountId, CollectionId, RecordingSleeper, RefreshToken, TokenSet, TokenStore,
};
use crmsync_google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig};
use crmsync_http::{ClientSecret, HttpClient};
use crmsync_memory::MemoryTokenStore;
use crmsync_testkit::{
    CalendarSpec, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USER, GoogleFake,
    SCOPE_CALENDAR, SCOPE_CONTACTS,
};

/// The id of the calendar the tests sync.
pub const CRM_CALENDAR: &str = "crm-calendar@group.calendar.google.com";

pub struct Env {
    pub fake: GoogleFake,
    pub config: GoogleConfig,
    pub tokens: Arc<MemoryTokenStore>,
    pub account: AccountId,
    pub sleeper: RecordingSleeper,
    pub http: HttpClient,
    pub access_token: String,
    pub refresh_token: String,
}

impl Env {
    pub async fn new() -> Env {
        Self::with_secret(DEFAULT_CLIENT_SECRET).await
    }

    /// A fake whose OAuth client has `secret` (a sentinel for leak checks).
    pub async fn with_secret(secret: &str) -> Env {
        let fake = GoogleFake::start().await;
        if secret != DEFAULT_CLIENT_SECRET {
            fake.register_client(DEFAULT_CLIENT_ID, secret, &[]);
        }
        fake.add_calendar(CalendarSpec::new(CRM_CALENDAR, "CRM"));
        let config = GoogleConfig::new(DEFAULT_CLIENT_ID, ClientSecret::new(secret))
            .with_root_url(&fake.base_url())
            .expect("root url")
            .with_calendar_name("CRM");
        let issued = fake.issue_tokens(DEFAULT_USER, &[SCOPE_CALENDAR, SCOPE_CONTACTS]);
        let tokens = Arc::new(MemoryTokenStore::new());
        let account = AccountId::new(DEFAULT_USER).expect("account");
        tokens
            .save(
                &account,
                &TokenSet::new(
                    AccessToken::new(issued.access_token.clone()),
                    Some(RefreshToken::new(issued.refresh_token.clone())),
                    Utc::now() + Duration::minutes(59),
                )
                .with_scopes([SCOPE_CALENDAR, SCOPE_CONTACTS]),
            )
            .await
            .expect("save tokens");
        let http = HttpClient::builder().build().expect("http client");
        Env {
            fake,
            config,
            tokens,
            account,
            sleeper: RecordingSleeper::new(),
            http,
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
        }
    }

    pub fn auth(&self) -> GoogleAuth {
        GoogleAuth::new(&self.config, self.http.clone(), self.tokens.clone())
    }

    pub fn client(&self) -> GoogleClient {
        GoogleClient::new(
            self.config.clone(),
            self.http.clone(),
            self.auth(),
            self.account.clone(),
        )
        .with_sleeper(Arc::new(self.sleeper.clone()))
    }

    /// A new store (nothing cached), as after a restart.
    pub fn calendar(&self) -> Arc<GoogleCalendar> {
        Arc::new(GoogleCalendar::new(self.client()))
    }

    /// A new contacts store (nothing cached).
    pub fn contacts(&self) -> Arc<crmsync_google::GoogleContacts> {
        Arc::new(crmsync_google::GoogleContacts::new(self.client()))
    }

    pub fn collection(&self) -> CollectionId {
        CollectionId::new(CRM_CALENDAR).expect("collection")
    }
}
