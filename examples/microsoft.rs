//! Signs in to Microsoft 365 / Outlook with the device-code flow, then syncs a named
//! calendar with an in-memory CRM seeded with sample events, and the default contact
//! folder (or the one named by `CRMSYNC_MS_CONTACT_FOLDER`) with sample contacts. The
//! events and contacts are created in the real mailbox: use a test account.
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
//! CRMSYNC_MS_CALENDAR=Work cargo run --example microsoft --features microsoft
//! ```

use std::sync::Arc;

use crmsync::engine::{FieldPolicy, SyncOptions, Syncer, WindowSpec};
use crmsync::http::HttpClient;
use crmsync::memory::{MemoryState, MemoryStore, MemoryTokenStore};
use crmsync::microsoft::{
    GraphCalendar, GraphContacts, MicrosoftAuth, MicrosoftClient, MicrosoftConfig, Tenant,
    mailbox_limiter,
};
use crmsync::{AccountId, Contact, Event, Period, Usage};

#[tokio::main]
async fn main() -> crmsync::Result<()> {
    let client_id = std::env::var("CRMSYNC_MS_CLIENT_ID")
        .map_err(|_| crmsync::Error::invalid_input("set CRMSYNC_MS_CLIENT_ID"))?;
    let tenant =
        Tenant::parse(&std::env::var("CRMSYNC_MS_TENANT").unwrap_or_else(|_| "common".to_owned()))?;
    let calendar = std::env::var("CRMSYNC_MS_CALENDAR").unwrap_or_else(|_| "Calendar".to_owned());
    let mut config = MicrosoftConfig::new(client_id)
        .with_tenant(tenant)
        .with_calendar_name(calendar);
    if let Ok(folder) = std::env::var("CRMSYNC_MS_CONTACT_FOLDER") {
        config = config.with_contact_folder(folder);
    }
    let http = HttpClient::builder().limiter(mailbox_limiter()).build()?;
    let auth = MicrosoftAuth::new(&config, http.clone(), Arc::new(MemoryTokenStore::new()));
    let account = AccountId::new("me")?;
    auth.sign_in_device_code(&account, |prompt| println!("{}", prompt.message))
        .await?;
    let client = MicrosoftClient::new(config, http, auth, account.clone());
    let store = Arc::new(GraphCalendar::new(client.clone()));
    let contacts = Arc::new(GraphContacts::new(client));
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
        account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options);
    let report = syncer.sync().await?;
    println!("{report}");

    // Contacts: two CRM contacts go to Outlook; Outlook's contacts come into the CRM.
    let folder = contacts.configured_folder().await?;
    println!("syncing contacts of {} ({})", folder.name, folder.id);
    let crm_contacts = MemoryStore::<Contact>::new();
    let book = crm_contacts.add_collection("CRM contacts");
    for (name, email, company) in [
        ("Ann Lee", "ann.lee@example.com", "Acme"),
        ("Bob Ray", "bob.ray@example.com", "Globex"),
    ] {
        let mut contact = Contact::new(name).with_email(email, Usage::Work)?;
        contact.organization.company = company.into();
        crm_contacts.seed(&book, contact)?;
    }
    let syncer = Syncer::new(
        Arc::new(crm_contacts.clone()),
        book.clone(),
        contacts,
        folder.id,
        Arc::new(MemoryState::new()),
        account,
        FieldPolicy::contact_defaults(),
    );
    println!("{}", syncer.sync().await?);
    println!(
        "The CRM now holds {} contacts.",
        crm_contacts.get_all(&book)?.len()
    );
    Ok(())
}
