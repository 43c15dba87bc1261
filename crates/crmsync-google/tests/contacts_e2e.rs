//! Contacts end to end through the engine: an in-memory CRM ⇄ Google People on the fake.

mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::Env;
use crmsync_core::engine::{FieldPolicy, SyncReport, Syncer};
use crmsync_core::{Contact, ContactField, Direction, ManualClock, RecordStore, Stored, Usage};
use crmsync_google::GoogleContacts;
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_testkit::Endpoint;
use serde_json::json;

struct World {
    env: Env,
    crm: MemoryStore<Contact>,
    crm_col: crmsync_core::CollectionId,
    state: MemoryState,
    store: Arc<GoogleContacts>,
}

impl World {
    async fn new() -> World {
        let env = Env::new().await;
        let crm = MemoryStore::<Contact>::new();
        let crm_col = crm.add_collection("CRM contacts");
        let store = env.contacts();
        World {
            env,
            crm,
            crm_col,
            state: MemoryState::new(),
            store,
        }
    }

    fn syncer(&self) -> Syncer<Contact> {
        // Two-way for names and notes, so edits on both sides are exercised.
        let policy = FieldPolicy::contact_defaults()
            .with_direction(ContactField::DisplayName, Direction::Both)
            .with_direction(ContactField::Organization, Direction::Both);
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            self.store.clone(),
            self.store.address_book(),
            Arc::new(self.state.clone()),
            self.env.account.clone(),
            policy,
        )
        .with_clock(Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap(),
        )))
    }

    async fn sync(&self) -> SyncReport {
        let report = self.syncer().sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        report
    }

    fn crm_named(&self, name: &str) -> Stored<Contact> {
        let all: Vec<Stored<Contact>> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .filter(|s| s.record.display_name == name)
            .collect();
        assert_eq!(all.len(), 1, "one CRM contact named {name:?}");
        all[0].clone()
    }

    fn assert_mirrored(&self, n: usize) {
        assert_eq!(self.crm.get_all(&self.crm_col).unwrap().len(), n);
        assert_eq!(self.env.fake.contacts().len(), n);
    }
}

#[tokio::test]
async fn contacts_first_sync_edits_expired_token_and_a_one_request_noop() {
    let w = World::new().await;
    for (name, email) in [
        ("Ann Lee", "ann@example.com"),
        ("Bob Ray", "bob@example.com"),
    ] {
        let mut c = Contact::new(name).with_email(email, Usage::Work).unwrap();
        c.name.given = name.split(' ').next().unwrap().into();
        c.name.family = name.split(' ').nth(1).unwrap().into();
        c.organization.company = "Acme".into();
        c.groups.insert("Customers".into());
        w.crm.seed(&w.crm_col, c).unwrap();
    }
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Carol", "familyName": "Diaz"}],
        "emailAddresses": [{"value": "carol@example.com", "type": "home"}],
    }));
    let report = w.sync().await;
    assert_eq!(report.provider.created, 2, "{report}");
    assert_eq!(report.crm.created, 1, "{report}");
    w.assert_mirrored(3);
    assert_eq!(
        w.crm_named("Carol Diaz").record.emails[0].usage,
        Usage::Home
    );
    let ann = w
        .env
        .fake
        .contacts()
        .into_iter()
        .find(|p| p["emailAddresses"][0]["value"] == "ann@example.com")
        .unwrap();
    assert_eq!(ann["clientData"][0]["key"], "crmsync_link");

    // No-op: one request, the incremental connections listing.
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(
        report.provider.created + report.provider.updated,
        0,
        "{report}"
    );
    let counts: Vec<(Endpoint, u64)> = w
        .env
        .fake
        .request_counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    println!("contacts no-op sync: {counts:?}");
    assert_eq!(counts, [(Endpoint::ConnectionsList, 1)]);

    // Edits on both sides.
    let bob = w.crm_named("Bob Ray");
    w.crm
        .edit_item(&w.crm_col, &bob.id, |c| c.notes = "Prefers mornings".into())
        .unwrap();
    let rn = ann["resourceName"].as_str().unwrap();
    w.env.fake.edit_contact(
        rn,
        json!({"organizations": [{"name": "Acme", "title": "Head of purchasing"}]}),
    );
    let report = w.sync().await;
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(
        w.crm_named("Ann Lee").record.organization.job_title,
        "Head of purchasing"
    );
    let bob_google = w
        .env
        .fake
        .contacts()
        .into_iter()
        .find(|p| p["emailAddresses"][0]["value"] == "bob@example.com")
        .unwrap();
    assert_eq!(bob_google["biographies"][0]["value"], "Prefers mornings");

    // People sync tokens die after 7 days: a reconciling full listing, no duplicates.
    w.env.fake.expire_people_sync_tokens();
    let report = w.sync().await;
    assert!(report.provider.cursor_expired, "{report}");
    w.assert_mirrored(3);
    assert_eq!(w.env.fake.peak_concurrent_people_mutations(), 1);
}

#[tokio::test]
async fn requests_to_push_2000_contacts() {
    let w = World::new().await;
    for i in 0..2000 {
        let c = Contact::new(format!("Contact {i}"))
            .with_email(&format!("c{i}@example.com"), Usage::Work)
            .unwrap();
        w.crm.seed(&w.crm_col, c).unwrap();
    }
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 2000, "{report}");
    let counts = w.env.fake.request_counts();
    println!(
        "push 2,000 new contacts: {} HTTP requests: {counts:?}",
        w.env.fake.total_http_requests()
    );
    assert_eq!(counts.get(&Endpoint::BatchCreateContacts), Some(&10));
    assert_eq!(w.env.fake.contacts().len(), 2000);
    // The next run reads the echo of our 2,000 writes (two pages of 1,000) and writes
    // nothing; after that a no-op costs one request.
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(
        report.provider.created + report.provider.updated,
        0,
        "{report}"
    );
    assert_eq!(report.crm.created + report.crm.updated, 0, "{report}");
    let echo = w.env.fake.total_http_requests();
    println!("the run after the push (our own writes echoed): {echo} requests");
    assert_eq!(echo, 2);
    w.env.fake.reset_counters();
    w.sync().await;
    assert_eq!(w.env.fake.total_http_requests(), 1);
    assert_eq!(w.store.capabilities().max_batch, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_writes_of_one_account_are_sequential_across_store_instances() {
    let env = Env::new().await;
    env.fake
        .fail_concurrent_people_mutations(true, std::time::Duration::from_millis(20));
    let client = env.client();
    let (a, b) = (
        Arc::new(GoogleContacts::new(client.clone())),
        Arc::new(GoogleContacts::new(client)),
    );
    let book = a.address_book();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let book = book.clone();
        tasks.push(tokio::spawn(async move {
            let c = Contact::new(format!("Parallel {i}"))
                .with_email(&format!("p{i}@example.com"), Usage::Work)
                .unwrap();
            let key = crmsync_core::LinkKey::new(format!("crm-{i}")).unwrap();
            store.create(&book, &c, &key).await
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("no ABORTED: writes waited for each other");
    }
    assert_eq!(env.fake.peak_concurrent_people_mutations(), 1);
    assert_eq!(env.fake.contacts().len(), 6);
}

/// Issue 10, item 3 (Google half): a `connections.list` whose last page has no
/// `nextSyncToken` used to fail the run. Each run lists in full, says so, and still links,
/// updates both ways, deletes nothing and duplicates nothing.
#[tokio::test]
async fn a_people_listing_without_a_sync_token_is_listed_in_full_every_run() {
    let w = World::new().await;
    w.env.fake.omit_people_sync_tokens(true);
    for (name, email) in [
        ("Ann Lee", "ann@example.com"),
        ("Bob Ray", "bob@example.com"),
    ] {
        let c = Contact::new(name).with_email(email, Usage::Work).unwrap();
        w.crm.seed(&w.crm_col, c).unwrap();
    }
    let carol = w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Carol", "familyName": "Diaz"}],
        "emailAddresses": [{"value": "carol@example.com", "type": "home"}],
    }));
    let report = w.sync().await;
    assert!(report.provider.no_cursor, "{report}");
    assert_eq!(
        (report.provider.created, report.crm.created),
        (2, 1),
        "{report}"
    );
    w.assert_mirrored(3);

    let bob = w.crm_named("Bob Ray");
    w.crm
        .edit_item(&w.crm_col, &bob.id, |c| c.notes = "Prefers mornings".into())
        .unwrap();
    w.env.fake.edit_contact(
        &carol,
        json!({"organizations": [{"name": "Acme", "title": "Buyer"}]}),
    );
    let report = w.sync().await;
    assert!(report.provider.no_cursor, "{report}");
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.deleted + report.crm.deleted, 0, "{report}");
    assert_eq!(
        w.crm_named("Carol Diaz").record.organization.job_title,
        "Buyer"
    );
    w.assert_mirrored(3);

    let report = w.sync().await;
    assert!(report.provider.no_cursor, "{report}");
    assert_eq!(
        report.provider.created + report.provider.updated + report.provider.deleted,
        0,
        "{report}"
    );
    assert_eq!(
        report.crm.created + report.crm.updated + report.crm.deleted,
        0,
        "{report}"
    );
    w.assert_mirrored(3);
}
