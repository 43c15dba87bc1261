//! Sync a Google calendar and Google contacts with an in-memory CRM, for real: sign in
//! with a browser, then a two-way sync of one named calendar and of the contacts.
//!
//! # Setting up a Google OAuth client (once)
//!
//! 1. In the Google Cloud console (<https://console.cloud.google.com/>), create or pick a
//!    project, then enable the **Google Calendar API** (APIs & Services > Library). Enable
//!    the **People API** too if you will sync contacts later.
//! 2. APIs & Services > OAuth consent screen: user type "External", add the scopes
//!    `https://www.googleapis.com/auth/calendar` and `https://www.googleapis.com/auth/contacts`,
//!    and, while the app is in **Testing**, add your Google account under **Test users**
//!    (others are shown "Error 403: access_denied" and never come back). Apps in Testing
//!    lose their refresh tokens after 7 days: publish the app to avoid weekly sign-ins.
//! 3. APIs & Services > Credentials > Create credentials > OAuth client ID > application
//!    type **Desktop app**. Desktop clients use a loopback redirect on 127.0.0.1 and still
//!    need their client secret at the token endpoint.
//!
//! # Running
//!
//! ```text
//! GOOGLE_CLIENT_ID=….apps.googleusercontent.com GOOGLE_CLIENT_SECRET=… \
//! GOOGLE_CALENDAR="CRM" cargo run --example google --features google
//! ```
//!
//! It prints a URL to open, waits for the redirect on 127.0.0.1, then syncs the calendar
//! named by `GOOGLE_CALENDAR` (default: "CRM"; create it in Google Calendar first) with a
//! CRM seeded with three sample actions, then the contacts with a CRM seeded with two
//! sample contacts, and prints the plans and the reports. The events and contacts are
//! created in the real account: use a test account.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use crmsync::engine::{FieldPolicy, SyncOptions, Syncer, WindowSpec};
use crmsync::google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig, GoogleContacts};
use crmsync::http::{ClientSecret, HttpClient};
use crmsync::memory::{MemoryState, MemoryStore, MemoryTokenStore};
use crmsync::{AccountId, Contact, Event, Period, Rgb, Usage};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set the environment variable {name}").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = GoogleConfig::new(
        env("GOOGLE_CLIENT_ID")?,
        ClientSecret::new(env("GOOGLE_CLIENT_SECRET")?),
    )
    .with_calendar_name(std::env::var("GOOGLE_CALENDAR").unwrap_or_else(|_| "CRM".into()));
    let account = AccountId::new("example-user")?;
    let http = HttpClient::builder().build()?;
    let tokens = Arc::new(MemoryTokenStore::new());
    let auth = GoogleAuth::new(&config, http.clone(), tokens);

    let signed_in = auth
        .sign_in_loopback(&account, Duration::from_secs(300), |url| {
            println!("Open this address in your browser and allow access:\n\n  {url}\n");
        })
        .await?;
    println!("Signed in; scopes granted: {:?}", signed_in.scopes);

    let client = GoogleClient::new(config, http, auth, account.clone());
    let calendar = Arc::new(GoogleCalendar::new(client.clone()));
    let contacts = Arc::new(GoogleContacts::new(client));
    let target = calendar
        .configured_calendar()
        .await
        .map_err(|e| format!("{e}\n  what to do: {}", e.remedy()))?;
    println!("Syncing calendar {:?} ({})", target.name, target.id);

    // The CRM: three actions next week.
    let crm = MemoryStore::<Event>::new();
    let crm_col = crm.add_collection("CRM actions");
    let today = Utc::now().date_naive();
    let monday =
        today + chrono::Duration::days(7 - i64::from(today.weekday().num_days_from_monday()));
    let samples = [
        (
            "Call with Ann Lee",
            0,
            10,
            Rgb::new(0xdc, 0x21, 0x27),
            "Call",
        ),
        (
            "Demo for Bob's team",
            1,
            14,
            Rgb::new(0x51, 0xb7, 0x49),
            "Meeting",
        ),
        (
            "Quarterly review",
            3,
            9,
            Rgb::new(0x54, 0x84, 0xed),
            "Review",
        ),
    ];
    for (title, day, hour, colour, category) in samples {
        let date: NaiveDate = monday + chrono::Duration::days(day);
        let start = date.and_hms_opt(hour, 0, 0).ok_or("bad time")?;
        let mut event = Event::new(
            title,
            Period::timed(
                start,
                start + chrono::Duration::hours(1),
                "Europe/Paris".parse()?,
            )?,
        );
        event.reminder_minutes = Some(15);
        event.colour = Some(colour);
        event.category = Some(category.into());
        crm.seed(&crm_col, event)?;
    }

    let mut options = SyncOptions::for_record::<Event>();
    options.window = Some(WindowSpec {
        months_before: 1,
        months_after: 3,
    });
    let syncer = Syncer::new(
        Arc::new(crm.clone()),
        crm_col.clone(),
        calendar,
        target.id,
        Arc::new(MemoryState::new()),
        account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options);
    println!("Plan:\n{}", syncer.plan().await?);
    let report = syncer.sync().await?;
    println!("{report}");
    println!(
        "The CRM now holds {} actions (its own and the calendar's).",
        crm.get_all(&crm_col)?.len()
    );

    // Contacts: two CRM contacts, pushed to Google; Google's contacts come into the CRM.
    let crm_contacts = MemoryStore::<Contact>::new();
    let crm_book = crm_contacts.add_collection("CRM contacts");
    for (given, family, email, company) in [
        ("Ann", "Lee", "ann.lee@example.com", "Acme"),
        ("Bob", "Ray", "bob.ray@example.com", "Globex"),
    ] {
        let mut contact =
            Contact::new(format!("{given} {family}")).with_email(email, Usage::Work)?;
        contact.name.given = given.into();
        contact.name.family = family.into();
        contact.organization.company = company.into();
        contact.groups.insert("CRM".into());
        crm_contacts.seed(&crm_book, contact)?;
    }
    let syncer = Syncer::new(
        Arc::new(crm_contacts.clone()),
        crm_book.clone(),
        contacts.clone(),
        contacts.address_book(),
        Arc::new(MemoryState::new()),
        account,
        FieldPolicy::contact_defaults(),
    );
    println!("Plan:\n{}", syncer.plan().await?);
    println!("{}", syncer.sync().await?);
    println!(
        "The CRM now holds {} contacts.",
        crm_contacts.get_all(&crm_book)?.len()
    );
    Ok(())
}
