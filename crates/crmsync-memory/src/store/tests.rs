use std::collections::BTreeSet;

use crmsync_core::{
    ContactField, ContactStore, Continuation, Email, EmailAddress, Period, RecordStoreExt, Usage,
};

use super::*;

fn ann(n: usize) -> Contact {
    let mut c = Contact::new(format!("Ann {n}"));
    for i in 0..4 {
        c.emails.push(Email {
            address: EmailAddress::new(format!("ann{n}.{i}@example.com")).unwrap(),
            usage: Usage::Work,
        });
    }
    c
}

fn key(s: &str) -> LinkKey {
    LinkKey::new(s).unwrap()
}

fn all_day(title: &str, day: u32) -> Event {
    let d = chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
    Event::new(title, Period::all_day(d, d).unwrap())
}

#[tokio::test]
async fn versions_ids_and_link_keys() {
    let store = MemoryStore::<Contact>::new();
    let book = store.add_collection("Contacts");
    let a = store.create(&book, &ann(1), &key("crm-1")).await.unwrap();
    let b = store.create(&book, &ann(2), &key("crm-2")).await.unwrap();
    assert_eq!(a.id.as_str(), "mem-2");
    assert_eq!(a.version.as_str(), "v1");
    assert_eq!(b.version.as_str(), "v2");
    let found = store.find_by_link_key(&book, &key("crm-2")).await.unwrap();
    assert_eq!(found.unwrap().id, b.id);
    assert!(
        store
            .find_by_link_key(&book, &key("x"))
            .await
            .unwrap()
            .is_none()
    );
    let seeded = store.seed(&book, ann(3)).unwrap();
    assert_eq!(seeded.link_key, None);
    assert_eq!(store.get_all(&book).unwrap().len(), 3);
}

#[tokio::test]
async fn update_is_a_patch_with_a_precondition() {
    let store = MemoryStore::<Contact>::new();
    let book = store.add_collection("Contacts");
    let a = store.create(&book, &ann(1), &key("k")).await.unwrap();
    let mut other = ann(9);
    other.notes = "new notes".into();
    let fields = BTreeSet::from([ContactField::Notes]);
    let b = store
        .update(&book, &a.id, &a.version, &other, &fields)
        .await
        .unwrap();
    assert_eq!(b.record.notes, "new notes");
    assert_eq!(b.record.display_name, "Ann 1", "fields not named are kept");
    assert_ne!(b.version, a.version);
    let err = store
        .update(&book, &a.id, &a.version, &other, &fields)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PreconditionFailed);
    let err = store.delete(&book, &a.id, &a.version).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PreconditionFailed);
    store.delete(&book, &a.id, &b.version).await.unwrap();
    let err = store.delete(&book, &a.id, &b.version).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let missing = CollectionId::new("nope").unwrap();
    let err = store.get(&missing, &a.id).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn invalid_records_are_rejected_and_nothing_is_stored() {
    let store = MemoryStore::<Contact>::new();
    let book = store.add_collection("Contacts");
    let err = store
        .create(&book, &Contact::default(), &key("k"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidRecord { .. }));
    assert!(store.get_all(&book).unwrap().is_empty());
}

#[tokio::test]
async fn capabilities_limit_what_is_stored() {
    let store = MemoryStore::<Contact>::new().with_capabilities(like_outlook());
    let book = store.add_collection("Contacts");
    let a = store.create(&book, &ann(1), &key("k")).await.unwrap();
    assert_eq!(a.record.emails.len(), 3);
    assert_eq!(store.get_all(&book).unwrap()[0].record.emails.len(), 3);

    let calendar = MemoryStore::<Event>::new().with_capabilities(like_google_calendar());
    let cal = calendar.add_collection("Work");
    let mut e = all_day("x", 1);
    e.colour = Some(Rgb::new(0xff, 0, 0));
    e.reminder_minutes = Some(50_000);
    let stored = calendar.create(&cal, &e, &key("k")).await.unwrap();
    assert_eq!(stored.record.colour, Some(Rgb::new(0xdc, 0x21, 0x27)));
    assert_eq!(stored.record.reminder_minutes, Some(40320));
}

#[tokio::test]
async fn pages_are_short_and_empty_and_continue() {
    let store = MemoryStore::<Contact>::new()
        .with_page_size(2)
        .with_empty_pages(2)
        .with_short_pages();
    let book = store.add_collection("Contacts");
    for n in 0..5 {
        store.seed(&book, ann(n)).unwrap();
    }
    let mut sizes = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .changes(
                &book,
                ChangesRequest {
                    page_token: token.take(),
                    ..ChangesRequest::default()
                },
            )
            .await
            .unwrap();
        sizes.push(page.upserts.len());
        match page.next {
            Continuation::NextPage(t) => token = Some(t),
            Continuation::Done(_) => break,
            Continuation::DoneWithoutCursor => panic!("the memory store always gives a cursor"),
        }
    }
    // odd pages are short (1), even pages empty
    assert_eq!(sizes, [1, 0, 1, 0, 1, 0, 1, 0, 1]);
    let all = store.changes_to_end(&book, None, None).await.unwrap();
    assert_eq!(all.upserts.len(), 5);
}

#[tokio::test]
async fn the_feed_reports_each_item_once_at_its_latest_state() {
    let store = MemoryStore::<Contact>::new().with_page_size(1);
    let book = store.add_collection("Contacts");
    let a = store.create(&book, &ann(1), &key("a")).await.unwrap();
    let b = store.create(&book, &ann(2), &key("b")).await.unwrap();
    let cursor = store
        .changes_to_end(&book, None, None)
        .await
        .unwrap()
        .cursor
        .unwrap();
    let a2 = store
        .edit_item(&book, &a.id, |c| c.notes = "one".into())
        .unwrap();
    let a3 = store
        .edit_item(&book, &a.id, |c| c.notes = "two".into())
        .unwrap();
    assert_ne!(a2.version, a3.version);
    store.remove_item(&book, &b.id).unwrap();
    let feed = store
        .changes_to_end(&book, Some(cursor.clone()), None)
        .await
        .unwrap();
    assert_eq!(feed.upserts.len(), 1);
    assert_eq!(feed.upserts[0].item.version, a3.version);
    assert_eq!(
        feed.removals,
        vec![Removal {
            id: b.id.clone(),
            reason: RemovalReason::Deleted
        }]
    );
    let next = feed.cursor.unwrap();
    let empty = store.changes_to_end(&book, Some(next), None).await.unwrap();
    assert!(empty.upserts.is_empty() && empty.removals.is_empty());
}

#[tokio::test]
async fn cursors_and_tokens_are_checked() {
    let store = MemoryStore::<Contact>::new().with_page_size(1);
    let book = store.add_collection("A");
    let other = store.add_collection("B");
    store.seed(&book, ann(1)).unwrap();
    store.seed(&book, ann(2)).unwrap();
    let cursor = store
        .changes_to_end(&book, None, None)
        .await
        .unwrap()
        .cursor
        .unwrap();
    let ask = |cursor: Option<Cursor>, token: Option<&str>| ChangesRequest {
        cursor,
        page_token: token.map(|t| PageToken::new(t).unwrap()),
        ..ChangesRequest::default()
    };
    let err = store
        .changes(&other, ask(Some(cursor.clone()), None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let garbled = Cursor::new("mem-cursor:{nonsense").unwrap();
    let err = store
        .changes(&book, ask(Some(garbled), None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = store
        .changes(&book, ask(None, Some("garbage")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    let first = store.changes(&book, ask(None, None)).await.unwrap();
    let Continuation::NextPage(token) = first.next else {
        panic!("two records, page size 1: a next page")
    };
    store.expire_cursors();
    let err = store
        .changes(&book, ask(Some(cursor), None))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CursorExpired);
    let err = store
        .changes(&book, ask(None, Some(token.as_str())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CursorExpired);
    assert!(store.changes_to_end(&book, None, None).await.is_ok());
}

#[tokio::test]
async fn the_window_filters_full_listings() {
    let store = MemoryStore::<Event>::new();
    let cal = store.add_collection("Work");
    store.seed(&cal, all_day("in", 10)).unwrap();
    store.seed(&cal, all_day("out", 20)).unwrap();
    let day = |d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    };
    let window = crmsync_core::Window::new(day(9), day(15)).unwrap();
    let listing = store
        .changes_to_end(&cal, None, Some(window))
        .await
        .unwrap();
    assert_eq!(listing.upserts.len(), 1);
    assert_eq!(listing.upserts[0].item.record.title, "in");
}

#[tokio::test]
async fn batches_count_as_one_request_and_honour_the_limit() {
    let store = MemoryStore::<Contact>::new().with_capabilities(like_outlook());
    let book = store.add_collection("Contacts");
    let ops = |n: usize| -> Vec<WriteOp<Contact>> {
        (0..n)
            .map(|i| WriteOp::Create {
                record: ann(i),
                link_key: key(&format!("k{i}")),
            })
            .collect()
    };
    let results = store.write_batch(&book, ops(20)).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = store.stats();
    assert_eq!(
        (stats.requests, stats.batch_calls, stats.batch_ops),
        (1, 1, 20)
    );
    let results = store.write_batch(&book, ops(21)).await;
    assert_eq!(results.len(), 21);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(e) if e.kind() == &ErrorKind::LimitReached))
    );
    assert_eq!(store.get_all(&book).unwrap().len(), 20);
    store.reset_stats();
    assert_eq!(store.stats(), StoreStats::default());

    let caldav = MemoryStore::<Contact>::new().with_capabilities(like_caldav());
    let book = caldav.add_collection("Contacts");
    let results = caldav.write_batch(&book, ops(3)).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = caldav.stats();
    assert_eq!((stats.requests, stats.create, stats.batch_calls), (3, 3, 0));
}

#[tokio::test]
async fn groups_and_collections() {
    let store = MemoryStore::<Contact>::new();
    let book = store.add_collection("Contacts");
    let second = store.add_collection("Other");
    let books = store.address_books().await.unwrap();
    assert_eq!(books.len(), 2);
    assert!(books[0].primary && !books[1].primary);
    let g = store.create_group(&book, "VIP").await.unwrap();
    let err = store.create_group(&book, "VIP").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict);
    assert!(store.create_group(&second, "VIP").await.is_ok());
    assert_eq!(store.groups(&book).await.unwrap(), vec![g]);
    let err = store.create_group(&book, "  ").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn clones_share_and_forks_copy() {
    let store = MemoryStore::<Contact>::new();
    let book = store.add_collection("Contacts");
    let clone = store.clone();
    let fork = store.fork();
    clone.seed(&book, ann(1)).unwrap();
    assert_eq!(store.get_all(&book).unwrap().len(), 1);
    assert!(fork.get_all(&book).unwrap().is_empty());
}

#[tokio::test]
async fn snapshots_round_trip_and_cursors_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let (book, cursor, a) = {
        let store = MemoryStore::<Contact>::open_snapshot(&path).unwrap();
        assert_eq!(store.snapshot_path().as_deref(), Some(path.as_path()));
        let book = store.add_collection("Contacts");
        let a = store.create(&book, &ann(1), &key("crm-1")).await.unwrap();
        store.seed(&book, ann(2)).unwrap();
        let cursor = store
            .changes_to_end(&book, None, None)
            .await
            .unwrap()
            .cursor
            .unwrap();
        store.save_snapshot().unwrap();
        (book, cursor, a)
    };
    // The second process.
    let store = MemoryStore::<Contact>::open_snapshot(&path).unwrap();
    assert_eq!(store.get_all(&book).unwrap().len(), 2);
    let got = store.get(&book, &a.id).await.unwrap().unwrap();
    assert_eq!(got, a);
    let found = store.find_by_link_key(&book, &key("crm-1")).await.unwrap();
    assert_eq!(found.unwrap().id, a.id);
    let feed = store
        .changes_to_end(&book, Some(cursor.clone()), None)
        .await
        .unwrap();
    assert!(feed.upserts.is_empty(), "nothing changed since the cursor");
    let b = store.create(&book, &ann(3), &key("crm-3")).await.unwrap();
    assert_ne!(b.id, a.id);
    assert_ne!(b.version, a.version);
    let feed = store
        .changes_to_end(&book, Some(cursor), None)
        .await
        .unwrap();
    assert_eq!(feed.upserts.len(), 1);
    assert_eq!(feed.upserts[0].item.id, b.id);
    // No temporary file is left behind.
    store.save_snapshot().unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("store.json")]);
}

#[test]
fn bad_snapshots_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    std::fs::write(&path, b"{not json").unwrap();
    let err = MemoryStore::<Contact>::open_snapshot(&path).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    let events = MemoryStore::<Event>::new();
    events.add_collection("Work");
    events.save_snapshot_to(&path).unwrap();
    let err = MemoryStore::<Contact>::open_snapshot(&path).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert!(MemoryStore::<Event>::open_snapshot(&path).is_ok());

    let err = MemoryStore::<Event>::new().save_snapshot().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[test]
fn presets() {
    assert_eq!(like_google_calendar().palette.map(|p| p.len()), Some(11));
    assert_eq!(like_google_calendar().max_batch, 50);
    assert_eq!(like_google_contacts().max_batch, 200);
    let outlook = like_outlook();
    assert_eq!(
        (
            outlook.max_emails,
            outlook.max_reminders,
            outlook.max_addresses,
            outlook.max_batch
        ),
        (Some(3), Some(1), Some(3), 20)
    );
    assert_eq!(like_caldav().max_batch, 1);
    assert!(memory_unlimited().fields.is_none());
}

#[tokio::test]
async fn a_hand_edited_snapshot_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let store = MemoryStore::<Contact>::new().with_empty_pages(2);
    let book = store.add_collection("Contacts");
    store.seed(&book, ann(1)).unwrap();
    store.save_snapshot_to(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["paging"]["empty_every"] = 0.into();
    json["paging"]["page_size"] = 0.into();
    json["clock"] = u64::MAX.into();
    json["next_id"] = u64::MAX.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let store = MemoryStore::<Contact>::open_snapshot(&path).unwrap();
    let listing = store.changes_to_end(&book, None, None).await.unwrap();
    assert_eq!(listing.upserts.len(), 1);
    let err = store.create(&book, &ann(2), &key("k")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::LimitReached);
    store.expire_cursors();
}
