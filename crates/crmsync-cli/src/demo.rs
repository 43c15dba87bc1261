//! `crmsync demo`: the quickstart scenario through the CLI's own commands, in a folder that
//! then works with every other command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate, NaiveTime, Utc};
use crmsync_core::{
    Contact, Event, Organization, Period, Record, RecordStoreExt, Result as CoreResult, Rgb, Usage,
    Zone,
};
use serde_json::Value;

use crate::cli::RunArgs;
use crate::commands;
use crate::config::Config;
use crate::exit::{self, CliError, worst};
use crate::filecrm::write_atomically;
use crate::provider::MemoryProvider;

const CONFIG: &str = r#"# Written by `crmsync demo`: a file CRM (./crm) synced with an in-memory "phone"
# (./phone) that behaves like Google Calendar and Google Contacts.
# Try: crmsync --config <this file> plan | sync | status | reset demo
state = "crmsync.db"

[crm]
folder = "crm"

[policy]
window = { months_before = 1, months_after = 12 }

[[accounts]]
name = "demo"
provider = "memory"
account_id = "sam@yourcrm.example"
calendar = "Work"
contacts = "Contacts"
snapshot_folder = "phone"
like = "google"
"#;

const MEETING: &str = "Quarterly review with Acme";

/// Runs the demo in `dir` (which must be empty or missing), or in a temporary folder.
///
/// # Errors
/// The folder is not empty (exit code 2); a step fails.
pub async fn demo(dir: Option<PathBuf>) -> Result<u8, CliError> {
    let temp;
    let folder = match dir {
        Some(d) => {
            if std::fs::read_dir(&d).is_ok_and(|mut entries| entries.next().is_some()) {
                return Err(CliError::usage(format!(
                    "{} is not empty; the demo needs an empty or new folder",
                    d.display()
                ))
                .with_remedy(format!(
                    "give another --dir, or keep using this one with `crmsync --config {} sync`",
                    d.join("crmsync.toml").display()
                )));
            }
            d
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("crmsync-demo-")
                .tempdir()
                .map_err(|e| CliError::usage(format!("cannot make a temporary folder: {e}")))?;
            temp.path().to_owned()
        }
    };
    let config_path = folder.join("crmsync.toml");
    let fail = |what: &str, e: crmsync_core::Error| CliError::from_error(what, &e);
    write_atomically(&config_path, CONFIG.as_bytes())
        .map_err(|e| fail("writing the demo configuration", e))?;
    let config = Config::load(&config_path)?;
    let account = config.account("demo")?.clone();
    seed_crm(&config.crm_folder(&account)).map_err(|e| fail("seeding the CRM", e))?;
    let phone = MemoryProvider::open(config.snapshot_folder(&account), &account)
        .map_err(|e| fail("opening the phone", e))?;
    seed_phone(&phone)
        .await
        .map_err(|e| fail("seeding the phone", e))?;

    println!("crmsync demo, in {}", folder.display());
    println!("A CRM (the files in crm/) and a phone (an in-memory Google-like account in phone/),");
    println!("with the configuration in crmsync.toml. Each step below is a crmsync command.");
    println!();
    let ctx = Arc::new(commands::open_context(Some(&config_path)).await?);
    let run = RunArgs {
        confirm_deletions: false,
        allow_mass_deletion: false,
    };
    let mut codes = Vec::new();

    println!("$ crmsync plan        # the dry run: nothing is written");
    codes.push(commands::plan(&ctx, None, false).await?);
    println!();
    println!("$ crmsync sync        # the first sync");
    codes.push(commands::sync(Arc::clone(&ctx), &[], false, run).await?);
    println!();
    println!("Chloé was linked by her e-mail address, not copied; the Dentist came from the phone");
    println!(
        "into the CRM (see its origin in crm/events.json), and the CRM's actions went to the phone."
    );
    println!();
    println!("$ crmsync sync        # again: neither side changed");
    codes.push(commands::sync(Arc::clone(&ctx), &[], false, run).await?);
    println!();

    println!("Now both sides edit the same records:");
    println!("  in the CRM (crm/events.json):   the meeting is renamed \"{MEETING} (v2)\"");
    println!("  on the phone:                   the meeting moves to \"Café Bellecour\"");
    println!(
        "  in the CRM (crm/contacts.json): Ann Lee's job title becomes \"Head of purchasing\""
    );
    println!(
        "  on the phone:                   Ann Lee's notes become \"Prefers calls after 3 pm.\""
    );
    edit_both_sides(&config, &account)
        .await
        .map_err(|e| fail("editing", e))?;
    println!();
    println!("$ crmsync sync");
    codes.push(commands::sync(Arc::clone(&ctx), &[], false, run).await?);
    println!();
    show_meeting(&config, &account)
        .await
        .map_err(|e| fail("reading back", e))?;
    println!("The title came from the CRM and the place from the phone: each field is merged");
    println!("against the version both sides agreed on last time, so neither edit is lost.");
    println!();
    println!("$ crmsync status");
    codes.push(commands::status(&ctx, false).await?);
    ctx.close().await;
    println!();
    if temp_is_kept(&folder) {
        println!(
            "Everything is in {}: try `crmsync --config {} plan`.",
            folder.display(),
            config_path.display()
        );
    } else {
        println!("(The temporary folder is removed now; `crmsync demo --dir <folder>` keeps one.)");
    }
    let code = worst(codes);
    Ok(if code == exit::SUCCESS {
        code
    } else {
        exit::RECORDS_FAILED
    })
}

fn temp_is_kept(folder: &Path) -> bool {
    !folder
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("crmsync-demo-"))
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

fn timed(days: i64, hour: u32, minute: u32, minutes: u64) -> CoreResult<Period> {
    let today = Utc::now().date_naive();
    let paris: Zone = "Europe/Paris".parse()?;
    let start = day(today, days)
        .and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN));
    let end = start + std::time::Duration::from_secs(minutes * 60);
    Period::timed(start, end, paris)
}

fn with_id<R: Record>(id: &str, record: &R) -> CoreResult<Value> {
    let mut value = serde_json::to_value(record)
        .map_err(|e| crmsync_core::Error::invalid_input(e.to_string()))?;
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), Value::String(id.into()));
    }
    Ok(value)
}

fn write_json(path: &Path, value: &Value) -> CoreResult<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crmsync_core::Error::invalid_input(e.to_string()))?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
}

fn organization(company: &str, job_title: &str) -> Organization {
    Organization {
        company: company.into(),
        job_title: job_title.into(),
    }
}

/// The CRM's actions and contacts, as `events.json` and `contacts.json`.
fn seed_crm(folder: &Path) -> CoreResult<()> {
    let today = Utc::now().date_naive();
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
    let events = Value::Array(vec![
        with_id("act-1", &meeting)?,
        with_id("act-2", &call)?,
        with_id("act-3", &fair)?,
        with_id("act-4", &workshop)?,
    ]);

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
    let contacts = Value::Array(vec![
        with_id("ct-1", &ann)?,
        with_id("ct-2", &bob)?,
        with_id("ct-3", &chloe)?,
    ]);
    write_json(&folder.join("events.json"), &events)?;
    write_json(&folder.join("contacts.json"), &contacts)
}

/// What the phone holds before it ever met the CRM.
async fn seed_phone(phone: &MemoryProvider) -> CoreResult<()> {
    let work = phone
        .event_store()
        .collection_by_name("Work")
        .await?
        .ok_or_else(|| crmsync_core::Error::invalid_input("the phone has no Work calendar"))?;
    let mut dentist = Event::new("Dentist", timed(5, 8, 30, 30)?);
    dentist.location = "4 place Bellecour, Lyon".into();
    dentist.private = true;
    phone.event_store().seed(&work.id, dentist)?;
    let book = phone
        .contact_store()
        .collection_by_name("Contacts")
        .await?
        .ok_or_else(|| crmsync_core::Error::invalid_input("the phone has no address book"))?;
    let dr_smith = Contact::new("Dr. Smith (dentist)").with_phone("04 78 00 00 03", Usage::Work)?;
    let chloe_on_phone = Contact::new("Chloe D.")
        .with_email("Chloe.Durand@globex.example", Usage::Work)?
        .with_phone("+33 1 40 00 00 02", Usage::Work)?;
    phone.contact_store().seed(&book.id, dr_smith)?;
    phone.contact_store().seed(&book.id, chloe_on_phone)?;
    use crate::provider::Provider as _;
    phone.persist()
}

/// Edits the CRM's files as a person or a script would, and the phone as its app would.
async fn edit_both_sides(
    config: &Config,
    account: &crate::config::AccountConfig,
) -> CoreResult<()> {
    let crm = config.crm_folder(account);
    edit_entry(&crm.join("events.json"), "act-1", |e| {
        e["title"] = Value::String(format!("{MEETING} (v2)"));
    })?;
    edit_entry(&crm.join("contacts.json"), "ct-1", |c| {
        c["organization"]["job_title"] = Value::String("Head of purchasing".into());
    })?;
    let phone = MemoryProvider::open(config.snapshot_folder(account), account)?;
    let work = phone
        .event_store()
        .collection_by_name("Work")
        .await?
        .ok_or_else(|| crmsync_core::Error::invalid_input("the phone has no Work calendar"))?;
    let book = phone
        .contact_store()
        .collection_by_name("Contacts")
        .await?
        .ok_or_else(|| crmsync_core::Error::invalid_input("the phone has no address book"))?;
    for item in phone.event_store().get_all(&work.id)? {
        if item
            .link_key
            .as_ref()
            .is_some_and(|k| k.as_str() == "act-1")
        {
            phone
                .event_store()
                .edit_item(&work.id, &item.id, |e| e.location = "Café Bellecour".into())?;
        }
    }
    for item in phone.contact_store().get_all(&book.id)? {
        if item.link_key.as_ref().is_some_and(|k| k.as_str() == "ct-1") {
            phone.contact_store().edit_item(&book.id, &item.id, |c| {
                c.notes = "Prefers calls after 3 pm.".into();
            })?;
        }
    }
    use crate::provider::Provider as _;
    phone.persist()
}

fn edit_entry(path: &Path, id: &str, edit: impl FnOnce(&mut Value)) -> CoreResult<()> {
    let bytes = std::fs::read(path).map_err(|e| {
        crmsync_core::Error::invalid_input(format!("cannot read {}: {e}", path.display()))
    })?;
    let mut value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| crmsync_core::Error::invalid_input(format!("{}: {e}", path.display())))?;
    if let Some(entry) = value
        .as_array_mut()
        .and_then(|a| a.iter_mut().find(|e| e["id"] == id))
    {
        edit(entry);
    }
    write_json(path, &value)
}

async fn show_meeting(config: &Config, account: &crate::config::AccountConfig) -> CoreResult<()> {
    let crm = crate::filecrm::FileCrm::<Event>::open(config.crm_folder(account))?;
    let phone = MemoryProvider::open(config.snapshot_folder(account), account)?;
    let work = phone
        .event_store()
        .collection_by_name("Work")
        .await?
        .ok_or_else(|| crmsync_core::Error::invalid_input("the phone has no Work calendar"))?;
    println!("The meeting, as each side now holds it:");
    for item in crm.all()? {
        if item.id.as_str() == "act-1" {
            println!(
                "  CRM    \"{}\" at {}",
                item.record.title, item.record.location
            );
        }
    }
    for item in phone.event_store().get_all(&work.id)? {
        if item
            .link_key
            .as_ref()
            .is_some_and(|k| k.as_str() == "act-1")
        {
            println!(
                "  phone  \"{}\" at {}",
                item.record.title, item.record.location
            );
        }
    }
    Ok(())
}
