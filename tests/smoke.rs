//! A first end-to-end pass: in-memory CRM <-> in-memory provider, memory state.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use crmsync::engine::{FieldPolicy, Syncer};
use crmsync::memory::{MemoryState, MemoryStore};
use crmsync::{AccountId, Event, ManualClock, Period, RecordStore};

fn event(title: &str, day: u32) -> Event {
    let d = NaiveDate::from_ymd_opt(2026, 6, day).unwrap();
    Event::new(title, Period::all_day(d, d).unwrap())
}

#[tokio::test]
async fn first_sync_then_noop_then_edits() {
    let crm = MemoryStore::<Event>::new();
    let crm_cal = crm.add_collection("CRM actions");
    let provider = MemoryStore::<Event>::new();
    let cal = provider.add_collection("Work");
    crm.seed(&crm_cal, event("Kickoff", 20)).unwrap();
    crm.seed(&crm_cal, event("Review", 21)).unwrap();
    provider.seed(&cal, event("Dentist", 22)).unwrap();
    let state = MemoryState::new();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap());
    let syncer = Syncer::new(
        Arc::new(crm.clone()),
        crm_cal.clone(),
        Arc::new(provider.clone()),
        cal.clone(),
        Arc::new(state.clone()),
        AccountId::new("ann").unwrap(),
        FieldPolicy::calendar_defaults(),
    )
    .with_clock(Arc::new(clock.clone()));

    let report = syncer.sync().await.unwrap();
    println!("{report}");
    assert_eq!(report.provider.created, 2);
    assert_eq!(report.crm.created, 1);
    assert!(report.errors.is_empty());
    assert_eq!(crm.get_all(&crm_cal).unwrap().len(), 3);
    assert_eq!(provider.get_all(&cal).unwrap().len(), 3);

    crm.reset_stats();
    provider.reset_stats();
    let report = syncer.sync().await.unwrap();
    println!("{report}");
    assert!(report.nothing_to_do(), "{report}");
    assert_eq!(provider.stats().requests, 1, "{:?}", provider.stats());
    assert_eq!(crm.stats().requests, 1, "{:?}", crm.stats());

    // Edit both sides.
    let p = provider.get_all(&cal).unwrap();
    let kickoff = p.iter().find(|s| s.record.title == "Kickoff").unwrap();
    provider
        .edit_item(&cal, &kickoff.id, |e| e.location = "Room 4".into())
        .unwrap();
    let c = crm.get_all(&crm_cal).unwrap();
    let kickoff_crm = c.iter().find(|s| s.record.title == "Kickoff").unwrap();
    crm.edit_item(&crm_cal, &kickoff_crm.id, |e| e.title = "Kickoff v2".into())
        .unwrap();
    let report = syncer.sync().await.unwrap();
    println!("{report}");
    let c = crm.get(&crm_cal, &kickoff_crm.id).await.unwrap().unwrap();
    let p = provider.get(&cal, &kickoff.id).await.unwrap().unwrap();
    assert_eq!(
        (c.record.title.as_str(), c.record.location.as_str()),
        ("Kickoff v2", "Room 4")
    );
    assert_eq!(
        (p.record.title.as_str(), p.record.location.as_str()),
        ("Kickoff v2", "Room 4")
    );

    let report = syncer.sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
}

/// A provider whose authorisation was revoked: every call says so.
#[derive(Debug)]
struct Revoked;

fn revoked() -> crmsync::Error {
    crmsync::Error::new(
        crmsync::ErrorKind::ReauthorizationRequired {
            cause: "Token has been expired or revoked.".into(),
        },
        "the refresh token was refused",
    )
}

#[async_trait::async_trait]
impl RecordStore<Event> for Revoked {
    fn capabilities(&self) -> crmsync::Capabilities {
        crmsync::Capabilities::unlimited("revoked")
    }
    async fn collections(&self) -> crmsync::Result<Vec<crmsync::CollectionInfo>> {
        Err(revoked())
    }
    async fn changes(
        &self,
        _: &crmsync::CollectionId,
        _: crmsync::ChangesRequest,
    ) -> crmsync::Result<crmsync::ChangePage<Event>> {
        Err(revoked())
    }
    async fn get(
        &self,
        _: &crmsync::CollectionId,
        _: &crmsync::ItemId,
    ) -> crmsync::Result<Option<crmsync::Stored<Event>>> {
        Err(revoked())
    }
    async fn create(
        &self,
        _: &crmsync::CollectionId,
        _: &Event,
        _: &crmsync::LinkKey,
    ) -> crmsync::Result<crmsync::Stored<Event>> {
        Err(revoked())
    }
    async fn update(
        &self,
        _: &crmsync::CollectionId,
        _: &crmsync::ItemId,
        _: &crmsync::Version,
        _: &Event,
        _: &std::collections::BTreeSet<crmsync::EventField>,
    ) -> crmsync::Result<crmsync::Stored<Event>> {
        Err(revoked())
    }
    async fn delete(
        &self,
        _: &crmsync::CollectionId,
        _: &crmsync::ItemId,
        _: &crmsync::Version,
    ) -> crmsync::Result<()> {
        Err(revoked())
    }
    async fn find_by_link_key(
        &self,
        _: &crmsync::CollectionId,
        _: &crmsync::LinkKey,
    ) -> crmsync::Result<Option<crmsync::Stored<Event>>> {
        Err(revoked())
    }
}

#[tokio::test]
async fn the_account_status_and_last_run_are_recorded() {
    use crmsync::{AccountStatus, SyncState};
    let crm = MemoryStore::<Event>::new();
    let crm_cal = crm.add_collection("CRM actions");
    crm.seed(&crm_cal, event("Kickoff", 20)).unwrap();
    let provider = MemoryStore::<Event>::new();
    let cal = provider.add_collection("Work");
    let state = MemoryState::new();
    let account = AccountId::new("ann").unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap(),
    ));
    let ok = Syncer::new(
        Arc::new(crm.clone()),
        crm_cal.clone(),
        Arc::new(provider),
        cal.clone(),
        Arc::new(state.clone()),
        account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_clock(clock.clone());
    ok.sync().await.unwrap();
    assert_eq!(
        state.account_status(&account).await.unwrap(),
        AccountStatus::Ok
    );
    let last = state.last_run(&account).await.unwrap().expect("a summary");
    assert_eq!(last.written, 1);
    assert!(last.text.contains("provider +1"), "{}", last.text);

    let broken = Syncer::new(
        Arc::new(crm),
        crm_cal,
        Arc::new(Revoked),
        cal,
        Arc::new(state.clone()),
        account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_clock(clock);
    let err = broken.sync().await.unwrap_err();
    assert!(matches!(
        err.kind(),
        crmsync::ErrorKind::ReauthorizationRequired { .. }
    ));
    assert_eq!(
        state.account_status(&account).await.unwrap(),
        AccountStatus::NeedsReauthorization {
            cause: "Token has been expired or revoked.".into()
        }
    );
    // The last successful run's summary stays.
    assert_eq!(state.last_run(&account).await.unwrap(), Some(last));
}

/// A calendar found by name is remembered in the state: the next run (a new process) asks
/// the state, not the account; a forgotten alias is found again by name.
#[tokio::test]
async fn a_calendar_found_by_name_is_remembered_in_the_state() {
    use crmsync::CalendarStoreExt;
    let phone = crmsync::memory::MemoryStore::<crmsync::Event>::new();
    phone.add_collection("Home");
    let work = phone.add_collection("Work");
    let state = crmsync::memory::MemoryState::new();
    let account = crmsync::AccountId::new("sam@example.com").unwrap();
    let id = phone
        .remembered_calendar(&state, &account, "Work")
        .await
        .unwrap();
    assert_eq!(id, work);
    assert_eq!(phone.stats().collections, 1);
    let again = phone
        .remembered_calendar(&state, &account, " Work ")
        .await
        .unwrap();
    assert_eq!(again, work);
    assert_eq!(
        phone.stats().collections,
        1,
        "the second lookup lists nothing"
    );
    let missing = phone
        .remembered_calendar(&state, &account, "Holidays")
        .await
        .unwrap_err();
    assert!(matches!(
        missing.kind(),
        crmsync::ErrorKind::CalendarNotFound { .. }
    ));
    use crmsync::SyncState;
    state
        .set_collection_alias(&account, "event", "Work", None)
        .await
        .unwrap();
    phone
        .remembered_calendar(&state, &account, "Work")
        .await
        .unwrap();
    assert_eq!(
        phone.stats().collections,
        3,
        "forgotten, it is listed again"
    );
}
