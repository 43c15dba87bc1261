//! crmsync in a few seconds, no account needed.
//!
//! A CRM (an in-memory store standing in for your CRM's tables) is synced with a phone
//! (an in-memory store that behaves like Google Calendar and Google Contacts), calendar and
//! contacts, with the sync state in a SQLite file.
//!
//! ```text
//! cargo run --example quickstart            # first run: the plan, then the first sync
//! cargo run --example quickstart            # later runs: nothing to do, then edits on both sides
//! cargo run --example quickstart -- my/dir  # keep everything in another folder
//! ```
//!
//! Everything lives in one folder (`target/quickstart` unless you give another): the sync
//! state (`state.db`) and the four stores, saved as JSON snapshots so the next run sees the
//! same data. Delete the folder to start over.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use crmsync::engine::{FieldPolicy, SyncOptions, SyncReport, Syncer, WindowSpec};
use crmsync::memory::{MemoryStore, like_google_calendar, like_google_contacts};
use crmsync::sqlite::SqliteState;
use crmsync::{
    AccountId, CollectionId, Contact, Event, ItemId, Organization, Period, Record, RecordStoreExt,
    Rgb, Stored, SyncState, Usage, Zone,
};

type BoxError = Box<dyn StdError + Send + Sync>;

const CRM_CALENDAR: &str = "CRM actions";
const CRM_ADDRESS_BOOK: &str = "CRM contacts";
const PHONE_CALENDAR: &str = "Work";
const PHONE_ADDRESS_BOOK: &str = "Contacts";
const MEETING: &str = "Quarterly review with Acme";

/// The four stores and their collections.
struct Stores {
    crm_events: MemoryStore<Event>,
    crm_calendar: CollectionId,
    phone_events: MemoryStore<Event>,
    phone_calendar: CollectionId,
    crm_contacts: MemoryStore<Contact>,
    crm_book: CollectionId,
    phone_contacts: MemoryStore<Contact>,
    phone_book: CollectionId,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/quickstart"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;

    let files = [
        "crm-events.json",
        "phone-events.json",
        "crm-contacts.json",
        "phone-contacts.json",
    ];
    let existing = files.iter().filter(|f| dir.join(f).exists()).count();
    if existing != 0 && existing != files.len() {
        return Err(format!(
            "{} holds only some of the quickstart's files; delete the folder to start over",
            dir.display()
        )
        .into());
    }
    let first_run = existing == 0;

    // The phone side says what it can hold: Google's batch sizes, its 11 event colours...
    let stores = Stores::open(&dir).await?;
    if first_run {
        stores.seed()?;
    }

    // The sync state: links, baselines, versions and cursors, in one SQLite file.
    let state = SqliteState::open(dir.join("state.db")).await?;
    let shared_state: Arc<dyn SyncState> = Arc::new(state.clone());
    let account = AccountId::new("sam@yourcrm.example")?;
    let options = SyncOptions {
        // Events from one month ago to a year ahead; contacts are not bound to time.
        window: Some(WindowSpec {
            months_before: 1,
            months_after: 12,
        }),
        ..SyncOptions::default()
    };
    let events = Syncer::new(
        Arc::new(stores.crm_events.clone()),
        stores.crm_calendar.clone(),
        Arc::new(stores.phone_events.clone()),
        stores.phone_calendar.clone(),
        Arc::clone(&shared_state),
        account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options.clone());
    let contacts = Syncer::new(
        Arc::new(stores.crm_contacts.clone()),
        stores.crm_book.clone(),
        Arc::new(stores.phone_contacts.clone()),
        stores.phone_book.clone(),
        shared_state,
        account,
        FieldPolicy::contact_defaults(),
    )
    .with_options(options);

    if first_run {
        first_sync(&stores, &events, &contacts).await?;
        stores.save()?;
        println!();
        println!(
            "Everything is saved in {}. Run the same command again to see what a",
            dir.display()
        );
        println!("sync with nothing to do costs, and edits made on both sides meet.");
    } else {
        nothing_to_do(&stores, &events, &contacts).await?;
        // Save now, so an edit round that fails leaves a consistent folder behind.
        stores.save()?;
        edit_both_sides(&stores, &events, &contacts).await?;
        stores.save()?;
        println!();
        println!(
            "Run it again for another round, or delete {} to start over.",
            dir.display()
        );
    }
    state.close().await;
    Ok(())
}

impl Stores {
    async fn open(dir: &Path) -> Result<Stores, BoxError> {
        let crm_events = MemoryStore::<Event>::open_snapshot(dir.join("crm-events.json"))?;
        let phone_events = MemoryStore::<Event>::open_snapshot(dir.join("phone-events.json"))?
            .with_capabilities(like_google_calendar());
        let crm_contacts = MemoryStore::<Contact>::open_snapshot(dir.join("crm-contacts.json"))?;
        let phone_contacts =
            MemoryStore::<Contact>::open_snapshot(dir.join("phone-contacts.json"))?
                .with_capabilities(like_google_contacts());
        let stores = Stores {
            crm_calendar: collection(&crm_events, CRM_CALENDAR).await?,
            phone_calendar: collection(&phone_events, PHONE_CALENDAR).await?,
            crm_book: collection(&crm_contacts, CRM_ADDRESS_BOOK).await?,
            phone_book: collection(&phone_contacts, PHONE_ADDRESS_BOOK).await?,
            crm_events,
            phone_events,
            crm_contacts,
            phone_contacts,
        };
        stores.reset_stats();
        Ok(stores)
    }

    /// What the CRM and the phone hold before they ever met.
    fn seed(&self) -> Result<(), BoxError> {
        let today = Utc::now().date_naive();
        let paris: Zone = "Europe/Paris".parse()?;
        let timed = |days: i64, hour: u32, minute: u32, minutes: u64| -> crmsync::Result<Period> {
            let start = day(today, days)
                .and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN));
            let end = start + std::time::Duration::from_secs(minutes * 60);
            Period::timed(start, end, paris)
        };

        // The CRM's actions: a meeting and a call coloured by their action type, an
        // all-day trade fair, and a workshop last week.
        let mut meeting = Event::new(MEETING, timed(3, 10, 0, 60)?);
        meeting.location = "Acme HQ, 12 rue de la République, Lyon".into();
        meeting.description = "Renewal, volumes for next year, meet the new buyer.".into();
        meeting.reminder_minutes = Some(15);
        meeting.category = Some("Meeting".into());
        meeting.colour = Some(Rgb::new(0x1e, 0x88, 0xe5));
        let mut call = Event::new("Call Bob Martin about the renewal", timed(1, 14, 30, 15)?);
        call.category = Some("Phone call".into());
        call.colour = Some(Rgb::new(0x43, 0xa0, 0x47));
        call.reminder_minutes = Some(5);
        let mut fair = Event::new(
            "Trade fair: Industrie Lyon",
            Period::all_day(day(today, 10), day(today, 12))?,
        );
        fair.location = "Eurexpo, Chassieu".into();
        let mut workshop = Event::new("Onboarding workshop at Globex", timed(-6, 9, 0, 120)?);
        workshop.location = "Globex, Paris".into();
        for e in [meeting, call, fair, workshop] {
            self.crm_events.seed(&self.crm_calendar, e)?;
        }

        // Made on the phone: the CRM has never seen it.
        let mut dentist = Event::new("Dentist", timed(5, 8, 30, 30)?);
        dentist.location = "4 place Bellecour, Lyon".into();
        dentist.private = true;
        self.phone_events.seed(&self.phone_calendar, dentist)?;

        let mut ann = Contact::new("Ann Lee")
            .with_email("ann.lee@acme.example", Usage::Work)?
            .with_phone("+33 4 72 00 00 01", Usage::Work)?
            .with_phone("+33 6 12 34 56 78", Usage::Mobile)?;
        ann.organization = organization("Acme", "Purchasing manager");
        ann.notes = "Decides on the renewal in March.".into();
        let mut bob = Contact::new("Bob Martin")
            .with_email("bob@martin-consulting.example", Usage::Work)?
            .with_phone("+33 6 98 76 54 32", Usage::Mobile)?;
        bob.organization = organization("Martin Consulting", "Founder");
        let mut chloe = Contact::new("Chloé Durand")
            .with_email("chloe.durand@globex.example", Usage::Work)?
            .with_phone("+33 1 40 00 00 02", Usage::Work)?;
        chloe.organization = organization("Globex", "Office manager");
        for c in [ann, bob, chloe] {
            self.crm_contacts.seed(&self.crm_book, c)?;
        }

        // On the phone: the dentist, and Chloé saved months ago under another name, with
        // the same e-mail address (written in capitals): matched, not duplicated.
        let dr_smith =
            Contact::new("Dr. Smith (dentist)").with_phone("04 78 00 00 03", Usage::Work)?;
        let chloe_on_phone = Contact::new("Chloe D.")
            .with_email("Chloe.Durand@globex.example", Usage::Work)?
            .with_phone("+33 1 40 00 00 02", Usage::Work)?;
        for c in [dr_smith, chloe_on_phone] {
            self.phone_contacts.seed(&self.phone_book, c)?;
        }
        Ok(())
    }

    fn reset_stats(&self) {
        self.crm_events.reset_stats();
        self.phone_events.reset_stats();
        self.crm_contacts.reset_stats();
        self.phone_contacts.reset_stats();
    }

    fn save(&self) -> crmsync::Result<()> {
        self.crm_events.save_snapshot()?;
        self.phone_events.save_snapshot()?;
        self.crm_contacts.save_snapshot()?;
        self.phone_contacts.save_snapshot()
    }
}

async fn first_sync(
    stores: &Stores,
    events: &Syncer<Event>,
    contacts: &Syncer<Contact>,
) -> Result<(), BoxError> {
    println!("First run: a CRM and a phone that have never been synced.");
    println!();
    println!("The CRM's calendar ({CRM_CALENDAR}):");
    list_events(&stores.crm_events, &stores.crm_calendar)?;
    println!("The phone's calendar ({PHONE_CALENDAR}, behaves like Google Calendar):");
    list_events(&stores.phone_events, &stores.phone_calendar)?;
    println!("The CRM's contacts:");
    list_contacts(&stores.crm_contacts, &stores.crm_book)?;
    println!("The phone's contacts (behaves like Google Contacts):");
    list_contacts(&stores.phone_contacts, &stores.phone_book)?;

    println!();
    println!("== The plan (a dry run: nothing is written yet) ==");
    print!("{}", events.plan().await?);
    print!("{}", contacts.plan().await?);
    println!();
    println!("Chloé is linked by her e-mail address rather than copied: no duplicate. On a");
    println!("first link, the fields the CRM owns take the CRM's values (here her name and");
    println!("company); the report lists them as edits the phone may not make.");

    println!();
    println!("== The first sync ==");
    let ev = events.sync().await?;
    let co = contacts.sync().await?;
    print!("{ev}");
    print!("{co}");
    ensure_clean(&ev)?;
    ensure_clean(&co)?;

    println!();
    println!(
        "Now both sides hold {} events and {} contacts.",
        stores.crm_events.get_all(&stores.crm_calendar)?.len(),
        stores.crm_contacts.get_all(&stores.crm_book)?.len()
    );
    for e in stores.crm_events.get_all(&stores.crm_calendar)? {
        if let Some(origin) = &e.record.origin {
            println!(
                "\"{}\" was created in the CRM from the phone; it carries its origin ({} id {}), so the CRM can tag it.",
                e.record.title, origin.provider, origin.id
            );
        }
    }
    for e in stores.phone_events.get_all(&stores.phone_calendar)? {
        if e.record.title == MEETING {
            println!(
                "The meeting's colour #1e88e5 (the CRM's \"Meeting\" action type) became {} on the phone: the nearest of Google's 11 event colours.",
                e.record
                    .colour
                    .map_or_else(|| "none".to_owned(), |c| c.to_string())
            );
        }
    }
    Ok(())
}

async fn nothing_to_do(
    stores: &Stores,
    events: &Syncer<Event>,
    contacts: &Syncer<Contact>,
) -> Result<(), BoxError> {
    println!("== Sync again: neither side changed since the last run ==");
    stores.reset_stats();
    let ev = events.sync().await?;
    let co = contacts.sync().await?;
    print!("{ev}");
    print!("{co}");
    ensure_clean(&ev)?;
    ensure_clean(&co)?;

    println!();
    println!("Store calls made (with a real provider, each is one HTTP request):");
    let rows = [
        (
            "CRM calendar",
            stores.crm_events.stats(),
            ev.crm.full_listing,
        ),
        (
            "phone calendar",
            stores.phone_events.stats(),
            ev.provider.full_listing,
        ),
        (
            "CRM contacts",
            stores.crm_contacts.stats(),
            co.crm.full_listing,
        ),
        (
            "phone contacts",
            stores.phone_contacts.stats(),
            co.provider.full_listing,
        ),
    ];
    for (name, stats, full) in &rows {
        println!(
            "  {name:<15} {} call(s): {} change-feed page(s), {} read(s), {} write(s){}",
            stats.requests,
            stats.changes_pages,
            stats.get + stats.find_by_link_key,
            stats.batch_calls + stats.create + stats.update + stats.delete,
            if *full { " (full listing)" } else { "" }
        );
    }
    if ev.nothing_to_do() && co.nothing_to_do() {
        if rows.iter().all(|(_, s, _)| s.requests == 1) {
            println!("Nothing to do, and it cost one change-feed request per collection and side.");
        } else if rows.iter().any(|(_, _, full)| *full) {
            // The window is anchored on today's date: on a new day the change feeds, which
            // froze the old window, are replaced by a full listing reconciled against the links.
            println!(
                "Nothing to do. The sync window moved since the last run (a new day), so each side was listed in full once; the next run uses the change feeds again."
            );
        } else {
            println!("Nothing to do.");
        }
    } else {
        println!("Something was left to do (see the reports above).");
    }
    Ok(())
}

async fn edit_both_sides(
    stores: &Stores,
    events: &Syncer<Event>,
    contacts: &Syncer<Contact>,
) -> Result<(), BoxError> {
    const ROOMS: [&str; 3] = ["Room 4, Acme HQ", "Acme HQ, 3rd floor", "Café Bellecour"];
    // Indexed by the round (2, 3, 4, ...): each round changes the value.
    const JOBS: [&str; 3] = [
        "Purchasing director",
        "Purchasing manager",
        "Head of purchasing",
    ];

    let meeting_crm = find(&stores.crm_events, &stores.crm_calendar, |e: &Event| {
        e.title.starts_with(MEETING)
    })?;
    let meeting_phone = copy_of(
        &stores.phone_events,
        &stores.phone_calendar,
        &meeting_crm.id,
    )?;
    let ann_crm = find(&stores.crm_contacts, &stores.crm_book, |c: &Contact| {
        c.display_name == "Ann Lee"
    })?;
    let ann_phone = copy_of(&stores.phone_contacts, &stores.phone_book, &ann_crm.id)?;
    // The round number lives in the meeting's title, so every run edits something new.
    let round = next_round(&meeting_crm.record.title);
    let new_title = format!("{MEETING} (v{round})");
    let new_room = ROOMS[round % ROOMS.len()];
    let new_job = JOBS[round % JOBS.len()];
    let new_notes = format!("Prefers calls after 3 pm. (typed on the phone, round {round})");

    println!();
    println!("== Round {round}: both sides edit the same records ==");
    println!("  in the CRM:     the meeting is renamed \"{new_title}\"");
    println!("  on the phone:   the meeting moves to \"{new_room}\"");
    println!("  in the CRM:     Ann Lee's job title becomes \"{new_job}\"");
    println!("  on the phone:   Ann Lee's notes become \"{new_notes}\"");
    println!(
        "  on the phone:   Ann Lee's e-mail is changed to ann@home.example (the CRM owns e-mails)"
    );
    stores
        .crm_events
        .edit_item(&stores.crm_calendar, &meeting_crm.id, |e| {
            e.title = new_title.clone()
        })?;
    stores
        .phone_events
        .edit_item(&stores.phone_calendar, &meeting_phone.id, |e| {
            e.location = new_room.into()
        })?;
    stores
        .crm_contacts
        .edit_item(&stores.crm_book, &ann_crm.id, |c| {
            c.organization.job_title = new_job.into()
        })?;
    let home = Contact::new("").with_email("ann@home.example", Usage::Home)?;
    stores
        .phone_contacts
        .edit_item(&stores.phone_book, &ann_phone.id, |c| {
            c.notes = new_notes.clone();
            c.emails = home.emails.clone();
        })?;

    println!();
    println!("== Sync ==");
    let ev = events.sync().await?;
    let co = contacts.sync().await?;
    print!("{ev}");
    print!("{co}");
    ensure_clean(&ev)?;
    ensure_clean(&co)?;

    println!();
    println!("The meeting, merged field by field, as each side now holds it:");
    let crm = stores
        .crm_events
        .get_all(&stores.crm_calendar)?
        .into_iter()
        .find(|s| s.id == meeting_crm.id);
    let phone = stores
        .phone_events
        .get_all(&stores.phone_calendar)?
        .into_iter()
        .find(|s| s.id == meeting_phone.id);
    for (side, item) in [("CRM", crm), ("phone", phone)] {
        if let Some(item) = item {
            println!("  {side:<6} {}", describe_event(&item.record));
        }
    }
    println!("Ann Lee, as each side now holds her:");
    let crm = stores
        .crm_contacts
        .get_all(&stores.crm_book)?
        .into_iter()
        .find(|s| s.id == ann_crm.id);
    let phone = stores
        .phone_contacts
        .get_all(&stores.phone_book)?
        .into_iter()
        .find(|s| s.id == ann_phone.id);
    for (side, item) in [("CRM", crm), ("phone", phone)] {
        if let Some(item) = item {
            println!("  {side:<6} {}", describe_contact(&item.record));
        }
    }
    println!();
    println!("The title came from the CRM and the place from the phone: each field is merged");
    println!("against the version both sides agreed on last time, so neither edit is lost.");
    println!("Ann's notes go both ways and came from the phone; her e-mail belongs to the CRM");
    println!("(the default contact policy), so the phone's change was overwritten and reported.");
    Ok(())
}

/// Fails the example when a run reported per-record errors or stopped on a guard: the
/// quickstart is also a test, run by CI.
fn ensure_clean(report: &SyncReport) -> Result<(), BoxError> {
    if report.is_success() {
        Ok(())
    } else {
        Err(format!("the run on {} did not complete cleanly", report.key).into())
    }
}

/// The collection with this name, made on the first run.
async fn collection<R: Record>(
    store: &MemoryStore<R>,
    name: &str,
) -> crmsync::Result<CollectionId> {
    Ok(match store.collection_by_name(name).await? {
        Some(info) => info.id,
        None => store.add_collection(name),
    })
}

fn find<R: Record>(
    store: &MemoryStore<R>,
    collection: &CollectionId,
    wanted: impl Fn(&R) -> bool,
) -> Result<Stored<R>, BoxError> {
    store
        .get_all(collection)?
        .into_iter()
        .find(|s| wanted(&s.record))
        .ok_or_else(|| {
            "a record of the quickstart is missing; delete the folder to start over".into()
        })
}

/// The phone copy of a CRM record: crmsync stores the CRM id on every copy it makes (its
/// link key), which is also how a lost state is re-linked without duplicates.
fn copy_of<R: Record>(
    store: &MemoryStore<R>,
    collection: &CollectionId,
    crm_id: &ItemId,
) -> Result<Stored<R>, BoxError> {
    store
        .get_all(collection)?
        .into_iter()
        .find(|s| {
            s.link_key
                .as_ref()
                .is_some_and(|k| k.as_str() == crm_id.as_str())
        })
        .ok_or_else(|| "a phone copy is missing; delete the folder to start over".into())
}

fn next_round(title: &str) -> usize {
    title
        .strip_prefix(MEETING)
        .and_then(|rest| rest.trim().strip_prefix("(v"))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(2, |n| n + 1)
}

fn day(today: NaiveDate, offset: i64) -> NaiveDate {
    let days = Days::new(offset.unsigned_abs());
    let moved = if offset < 0 {
        today.checked_sub_days(days)
    } else {
        today.checked_add_days(days)
    };
    moved.unwrap_or(today)
}

fn organization(company: &str, job_title: &str) -> Organization {
    Organization {
        company: company.into(),
        job_title: job_title.into(),
    }
}

fn list_events(store: &MemoryStore<Event>, collection: &CollectionId) -> Result<(), BoxError> {
    for item in store.get_all(collection)? {
        println!("  {:<7} {}", item.id, describe_event(&item.record));
    }
    Ok(())
}

fn list_contacts(store: &MemoryStore<Contact>, collection: &CollectionId) -> Result<(), BoxError> {
    for item in store.get_all(collection)? {
        println!("  {:<7} {}", item.id, describe_contact(&item.record));
    }
    Ok(())
}

fn describe_event(e: &Event) -> String {
    let when = match &e.period {
        Period::AllDay {
            first_day,
            last_day,
        } if first_day == last_day => format!("{}, all day", first_day.format("%a %-d %b")),
        Period::AllDay {
            first_day,
            last_day,
        } => format!(
            "{} to {}, all day",
            first_day.format("%a %-d %b"),
            last_day.format("%a %-d %b")
        ),
        Period::Timed { start, end, zone } => format!(
            "{}-{} ({zone})",
            start.format("%a %-d %b %H:%M"),
            time_of(end)
        ),
    };
    let mut text = format!("\"{}\", {when}", e.title);
    if !e.location.is_empty() {
        text.push_str(&format!(", at {}", e.location));
    }
    if let Some(category) = &e.category {
        text.push_str(&format!(", {category}"));
    }
    if let Some(colour) = e.colour {
        text.push_str(&format!(" {colour}"));
    }
    if e.private {
        text.push_str(", private");
    }
    text
}

fn time_of(t: &NaiveDateTime) -> String {
    t.format("%H:%M").to_string()
}

fn describe_contact(c: &Contact) -> String {
    let mut parts = vec![format!("\"{}\"", c.display_name)];
    let emails: Vec<&str> = c.emails.iter().map(|e| e.address.as_str()).collect();
    if !emails.is_empty() {
        parts.push(emails.join(", "));
    }
    let phones: Vec<&str> = c.phones.iter().map(|p| p.number.as_str()).collect();
    if !phones.is_empty() {
        parts.push(phones.join(", "));
    }
    let org = &c.organization;
    match (org.company.is_empty(), org.job_title.is_empty()) {
        (false, false) => parts.push(format!("{}, {}", org.job_title, org.company)),
        (false, true) => parts.push(org.company.clone()),
        (true, false) => parts.push(org.job_title.clone()),
        (true, true) => {}
    }
    if !c.notes.is_empty() {
        parts.push(format!("notes: \"{}\"", c.notes));
    }
    parts.join(" | ")
}
