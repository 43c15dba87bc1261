//! Signs in to Microsoft 365 / Outlook with the device-code flow, then syncs a named
//! calendar with an in-memory CRM seeded with sample events.
//!
//! Contacts are not synced: this crate has no Graph contacts store yet.
//!
//! # Registering the app
//!
//! 1. In the Microsoft Entra admin centre (<https://entra.microsoft.com>), *App
//!    registrations* → *New registration*; supported account types as you need (any
//!    organisation and personal accounts for the `common` tenant).
//! 2. *Authentication* → *Advanced settings* → **Allow public client flows: Yes** (the
//!    device-code and loopback flows use no secret). Add the platform *Mobile and desktop
//!    applications* with the redirect URI `http://localhost` for the loopback flow.
//! 3. *API permissions* → Microsoft Graph → *Delegated*: **Calendars.ReadWrite**,
//!    **Contacts.ReadWrite** and **offline_access** (refresh tokens).
//!
//! # Running
//!
//! ```text
//! CRMSYNC_MS_CLIENT_ID=<application id> CRMSYNC_MS_TENANT=common \
//! CRMSYNC_MS_CALENDAR=Work cargo run -p crmsync-microsoft --example microsoft
//! ```

use std::sync::Arc;

use crmsync_core::engine::{FieldPolicy, SyncOptions, Syncer, WindowSpec};
use crmsync_core::{AccountId, Event, Period};
use crmsync_http::HttpClient;
use crmsync_memory::{MemoryState, MemoryStore, MemoryTokenStore};
use crmsync_microsoft::{
    GraphCalendar, MicrosoftAuth, MicrosoftClient, MicrosoftConfig, Tenant, mailbox_limiter,
};

#[tokio::main]
async fn main() -> crmsync_core::Result<()> {
    let client_id = std::env::var("CRMSYNC_MS_CLIENT_ID")
        .map_err(|_| crmsync_core::Error::invalid_input("set CRMSYNC_MS_CLIENT_ID"))?;
    let tenant =
        Tenant::parse(&std::env::var("CRMSYNC_MS_TENANT").unwrap_or_else(|_| "common".to_owned()))?;
    let calendar = std::env::var("CRMSYNC_MS_CALENDAR").unwrap_or_else(|_| "Calendar".to_owned());
    let config = MicrosoftConfig::new(client_id)
        .with_tenant(tenant)
        .with_calendar_name(calendar);
    let http = HttpClient::builder().limiter(mailbox_limiter()).build()?;
    let auth = MicrosoftAuth::new(&config, http.clone(), Arc::new(MemoryTokenStore::new()));
    let account = AccountId::new("me")?;
    auth.sign_in_device_code(&account, |prompt| println!("{}", prompt.message))
        .await?;
    let store = Arc::new(GraphCalendar::new(MicrosoftClient::new(
        config,
        http,
        auth,
        account.clone(),
    )));
    let outlook = store.configured_calendar().await?;
    println!("syncing {} ({})", outlook.name, outlook.id);

    // The CRM: in memory, with a few sample actions next week.
    let crm = MemoryStore::<Event>::new();
    let actions = crm.add_collection("CRM actions");
    let monday = chrono::Utc::now().date_naive() + chrono::Duration::days(7);
    for (i, title) in ["Call Ann", "Demo for Bob", "Quarterly review"]
        .iter()
        .enumerate()
    {
        let start = (monday + chrono::Duration::days(i as i64))
            .and_hms_opt(10, 0, 0)
            .unwrap_or_default();
        let mut event = Event::new(
            *title,
            Period::timed(
                start,
                start + chrono::Duration::minutes(45),
                "Europe/Paris".parse()?,
            )?,
        );
        event.reminder_minutes = Some(15);
        crm.seed(&actions, event)?;
    }

    let mut options = SyncOptions::for_record::<Event>();
    options.window = Some(WindowSpec {
        months_before: 1,
        months_after: 3,
    });
    let syncer = Syncer::new(
        Arc::new(crm),
        actions,
        store,
        outlook.id,
        Arc::new(MemoryState::new()),
        account,
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options);
    let report = syncer.sync().await?;
    println!("{report}");
    Ok(())
}
