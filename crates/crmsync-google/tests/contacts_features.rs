//! Google contacts through the engine, feature by feature: photos, batch updates and
//! deletes, the synced contact group, sync-token age, renamed contacts, unreadable people.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::Env;
use crmsync_core::engine::{FieldPolicy, SyncReport, Syncer};
use crmsync_core::{
    Contact, ContactField, ContactStore, Direction, ErrorKind, LinkKey, ManualClock, Photo,
    RecordStore, RecordStoreExt, Stored, Usage, WriteOp, WriteOutcome,
};
use crmsync_google::{GoogleClient, GoogleConfig, GoogleContacts};
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_testkit::Endpoint;
use serde_json::{Value, json};

const JPEG: [u8; 6] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
const PNG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

struct World {
    env: Env,
    crm: MemoryStore<Contact>,
    crm_col: crmsync_core::CollectionId,
    state: MemoryState,
    clock: ManualClock,
    store: Arc<GoogleContacts>,
}

impl World {
    async fn new() -> World {
        Self::with_config(|c| c).await
    }

    async fn with_config(configure: impl FnOnce(GoogleConfig) -> GoogleConfig) -> World {
        let env = Env::new().await;
        let crm = MemoryStore::<Contact>::new();
        let crm_col = crm.add_collection("CRM contacts");
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap());
        let client = GoogleClient::new(
            configure(env.config.clone()),
            env.http.clone(),
            env.auth(),
            env.account.clone(),
        )
        .with_sleeper(Arc::new(env.sleeper.clone()));
        let store = Arc::new(GoogleContacts::new(client).with_clock(Arc::new(clock.clone())));
        World {
            env,
            crm,
            crm_col,
            state: MemoryState::new(),
            clock,
            store,
        }
    }

    fn syncer(&self) -> Syncer<Contact> {
        self.syncer_with(self.store.clone())
    }

    /// A syncer on another store instance (as after a restart: nothing remembered).
    fn syncer_with(&self, store: Arc<GoogleContacts>) -> Syncer<Contact> {
        let policy = FieldPolicy::contact_defaults()
            .with_direction(ContactField::DisplayName, Direction::Both)
            .with_direction(ContactField::Organization, Direction::Both);
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            store.clone(),
            store.address_book(),
            Arc::new(self.state.clone()),
            self.env.account.clone(),
            policy,
        )
        .with_clock(Arc::new(self.clock.clone()))
    }

    async fn sync(&self) -> SyncReport {
        let report = self.syncer().sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        report
    }

    fn crm_all(&self) -> Vec<Stored<Contact>> {
        self.crm.get_all(&self.crm_col).unwrap()
    }

    fn crm_named(&self, name: &str) -> Stored<Contact> {
        let all: Vec<Stored<Contact>> = self
            .crm_all()
            .into_iter()
            .filter(|s| s.record.display_name == name)
            .collect();
        assert_eq!(all.len(), 1, "one CRM contact named {name:?}");
        all[0].clone()
    }

    fn google_with_email(&self, email: &str) -> Value {
        let found: Vec<Value> = self
            .env
            .fake
            .contacts()
            .into_iter()
            .filter(|p| p["emailAddresses"][0]["value"] == email)
            .collect();
        assert_eq!(found.len(), 1, "one Google contact with {email}");
        found[0].clone()
    }

    fn seed_crm(&self, name: &str, email: &str) -> Stored<Contact> {
        let c = Contact::new(name).with_email(email, Usage::Work).unwrap();
        self.crm.seed(&self.crm_col, c).unwrap()
    }

    fn writes(&self) -> u64 {
        let counts = self.env.fake.request_counts();
        counts
            .iter()
            .filter(|(e, _)| e.is_people_mutation())
            .map(|(_, n)| *n)
            .sum()
    }
}

fn hours(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n * 3600)
}

fn has_own_photo(person: &Value) -> bool {
    person["photos"][0]["default"] != true
}

#[tokio::test]
async fn photos_are_written_changed_and_deleted_without_echo() {
    let w = World::new().await;
    assert!(
        w.store
            .capabilities()
            .fields
            .unwrap()
            .contains(ContactField::Photo.to_string().as_str())
    );
    let mut ann = Contact::new("Ann Lee")
        .with_email("ann@example.com", Usage::Work)
        .unwrap();
    ann.photo = Some(Photo::new(JPEG.to_vec(), "image/jpeg").unwrap());
    let ann = w.crm.seed(&w.crm_col, ann).unwrap();
    let mut gif = Contact::new("Gif Guy")
        .with_email("gif@example.com", Usage::Work)
        .unwrap();
    gif.photo = Some(Photo::new(b"GIF89a".to_vec(), "image/gif").unwrap());
    w.crm.seed(&w.crm_col, gif).unwrap();

    // A GIF is a per-record error with its field; the other contact is synced.
    let report = w.syncer().sync().await.expect("sync");
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(report.errors[0].message.contains("JPEG or PNG"), "{report}");
    let copy = w.google_with_email("ann@example.com");
    assert!(has_own_photo(&copy));
    assert_eq!(w.env.fake.requests(Endpoint::UpdateContactPhoto), 1);
    // The store reads back the photo it wrote.
    let rn = copy["resourceName"].as_str().unwrap().parse().unwrap();
    let got = w.store.get(&w.store.address_book(), &rn).await.unwrap();
    assert_eq!(got.unwrap().record.photo, ann.record.photo);

    // Google serves its own copy of the photo: reading it back is not an edit.
    w.crm
        .edit_item(&w.crm_col, &w.crm_named("Gif Guy").id, |c| c.photo = None)
        .unwrap();
    w.sync().await;
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.provider.updated + report.crm.updated, 0, "{report}");
    assert!(report.forbidden.is_empty(), "{report}");
    assert_eq!(w.writes(), 0);
    // After a restart the bytes are unknown: still no write.
    w.env.fake.edit_contact(
        copy["resourceName"].as_str().unwrap(),
        json!({"biographies": [{"value": "edited on the phone"}]}),
    );
    w.env.fake.reset_counters();
    let fresh = Arc::new(GoogleContacts::new(w.env.client()).with_clock(Arc::new(w.clock.clone())));
    let report = w.syncer_with(fresh).sync().await.expect("sync");
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.updated, 0, "{report}");
    assert!(report.forbidden.is_empty(), "{report}");
    assert_eq!(w.writes(), 0);
    assert!(w.crm_named("Ann Lee").record.photo.is_some());

    // A new photo, then none.
    w.crm
        .edit_item(&w.crm_col, &ann.id, |c| {
            c.photo = Some(Photo::new(PNG.to_vec(), "image/png").unwrap())
        })
        .unwrap();
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(w.env.fake.requests(Endpoint::UpdateContactPhoto), 1);
    assert_eq!(w.env.fake.requests(Endpoint::UpdateContact), 0);
    let body = w
        .env
        .fake
        .recorded_requests()
        .into_iter()
        .find(|r| r.url.contains(":updateContactPhoto"))
        .unwrap()
        .body;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["photoBytes"], "iVBORw0KGgo=");
    w.crm
        .edit_item(&w.crm_col, &ann.id, |c| c.photo = None)
        .unwrap();
    w.env.fake.reset_counters();
    w.sync().await;
    assert_eq!(w.env.fake.requests(Endpoint::DeleteContactPhoto), 1);
    assert!(!has_own_photo(&w.google_with_email("ann@example.com")));
    w.env.fake.reset_counters();
    w.sync().await;
    assert_eq!(w.writes(), 0);
}

#[tokio::test]
async fn batch_updates_send_the_owned_fields_and_fail_per_contact() {
    let w = World::new().await;
    for i in 0..3 {
        w.seed_crm(&format!("Person {i}"), &format!("p{i}@example.com"));
    }
    w.sync().await;
    let book = w.store.address_book();
    let listed = w.store.changes_to_end(&book, None, None).await.unwrap();
    let mut items: Vec<Stored<Contact>> = listed.upserts.into_iter().map(|u| u.item).collect();
    items.sort_by(|a, b| a.record.display_name.cmp(&b.record.display_name));
    assert_eq!(items.len(), 3);
    let notes: BTreeSet<ContactField> = [ContactField::Notes].into_iter().collect();
    let update = |s: &Stored<Contact>, text: &str| {
        let mut record = s.record.clone();
        record.notes = text.into();
        WriteOp::Update {
            id: s.id.clone(),
            expected: s.version.clone(),
            record,
            fields: notes.clone(),
        }
    };

    // One batchUpdateContacts for the three, masked to the field written, with etags.
    w.env.fake.reset_counters();
    let ops = items.iter().map(|s| update(s, "first")).collect();
    let results = w.store.write_batch(&book, ops).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(w.env.fake.requests(Endpoint::BatchUpdateContacts), 1);
    assert_eq!(w.env.fake.requests(Endpoint::UpdateContact), 0);
    let sent: Value = serde_json::from_str(&w.env.fake.recorded_requests()[0].body).unwrap();
    assert_eq!(sent["updateMask"], "biographies");
    for s in &items {
        let person = &sent["contacts"][s.id.as_str()];
        assert_eq!(person["etag"], s.version.as_str());
        assert!(person.get("emailAddresses").is_none(), "{person}");
    }
    let written: Vec<Stored<Contact>> = results
        .into_iter()
        .map(|r| match r.unwrap() {
            WriteOutcome::Written(s) => s,
            WriteOutcome::Deleted => panic!("an update answered as a deletion"),
        })
        .collect();
    assert!(written.iter().all(|s| s.record.notes == "first"));

    // A stale etag fails that contact only.
    w.env.fake.reset_counters();
    let mut ops: Vec<WriteOp<Contact>> = written.iter().map(|s| update(s, "second")).collect();
    ops[1] = update(&items[1], "second");
    let results = w.store.write_batch(&book, ops).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let stale = results[1].as_ref().expect_err("stale etag");
    assert!(
        matches!(stale.kind(), ErrorKind::PreconditionFailed),
        "{stale}"
    );
    let google = w.google_with_email("p1@example.com");
    assert_eq!(google["biographies"][0]["value"], "first");
    assert_eq!(
        w.google_with_email("p2@example.com")["biographies"][0]["value"],
        "second"
    );

    // Deletes: one batchDeleteContacts; a stale one fails alone.
    let listed = w.store.changes_to_end(&book, None, None).await.unwrap();
    let current: Vec<Stored<Contact>> = listed.upserts.into_iter().map(|u| u.item).collect();
    w.env.fake.reset_counters();
    let mut ops: Vec<WriteOp<Contact>> = current
        .iter()
        .map(|s| WriteOp::Delete {
            id: s.id.clone(),
            expected: s.version.clone(),
        })
        .collect();
    let stale_at = current
        .iter()
        .position(|s| s.record.display_name == "Person 0")
        .unwrap();
    ops[stale_at] = WriteOp::Delete {
        id: items[0].id.clone(),
        expected: items[0].version.clone(),
    };
    let results = w.store.write_batch(&book, ops).await;
    for (i, r) in results.iter().enumerate() {
        if i == stale_at {
            assert!(
                matches!(
                    r.as_ref().unwrap_err().kind(),
                    ErrorKind::PreconditionFailed
                ),
                "{r:?}"
            );
        } else {
            assert!(matches!(r, Ok(WriteOutcome::Deleted)), "{r:?}");
        }
    }
    assert_eq!(w.env.fake.requests(Endpoint::BatchDeleteContacts), 1);
    assert_eq!(w.env.fake.requests(Endpoint::DeleteContact), 0);
    assert_eq!(w.env.fake.contacts().len(), 1);
}

#[tokio::test]
async fn the_configured_contact_group_is_the_synced_set() {
    let w = World::with_config(|c| c.with_contact_group("CRM")).await;
    // A contact outside the group stays out; the group does not exist yet.
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Out", "familyName": "Sider"}],
        "emailAddresses": [{"value": "out@example.com"}],
    }));
    let mut ann = Contact::new("Ann Lee")
        .with_email("ann@example.com", Usage::Work)
        .unwrap();
    ann.groups.insert("Customers".into());
    w.crm.seed(&w.crm_col, ann).unwrap();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    assert_eq!(w.crm_all().len(), 1);
    // Our copy joined the group, created for it, and its own group.
    let group = w
        .store
        .groups(&w.store.address_book())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == "CRM")
        .expect("group created");
    let copy = w.google_with_email("ann@example.com");
    let memberships: Vec<&str> = copy["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["contactGroupMembership"]["contactGroupResourceName"].as_str())
        .collect();
    assert!(memberships.contains(&group.id.as_str()), "{memberships:?}");
    assert_eq!(memberships.len(), 3, "myContacts, CRM, Customers");

    // A member added on Google is synced; the synced group is not one of its groups.
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Bob", "familyName": "Ray"}],
        "emailAddresses": [{"value": "bob@example.com"}],
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": group.id.as_str()}}],
    }));
    let report = w.sync().await;
    assert_eq!(report.crm.created, 1, "{report}");
    assert!(w.crm_named("Bob Ray").record.groups.is_empty());
    assert_eq!(
        w.crm_named("Ann Lee").record.groups,
        ["Customers".to_owned()].into_iter().collect()
    );

    // A member that leaves the group is not a deletion.
    let bob = w.google_with_email("bob@example.com");
    w.env.fake.edit_contact(
        bob["resourceName"].as_str().unwrap(),
        json!({"memberships": [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}]}),
    );
    let report = w.sync().await;
    assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
    assert_eq!(w.crm_all().len(), 2);
    assert_eq!(w.env.fake.contacts().len(), 3);

    // After a restart (a new store, no group list kept), a sync with nothing to do costs
    // the listing alone: the group is looked up only when people are listed.
    let restarted = Arc::new(
        GoogleContacts::new(
            GoogleClient::new(
                w.env.config.clone().with_contact_group("CRM"),
                w.env.http.clone(),
                w.env.auth(),
                w.env.account.clone(),
            )
            .with_sleeper(Arc::new(w.env.sleeper.clone())),
        )
        .with_clock(Arc::new(w.clock.clone())),
    );
    w.env.fake.reset_counters();
    let report = w.syncer_with(restarted).sync().await.unwrap();
    assert!(report.nothing_to_do(), "{report}");
    assert_eq!(
        w.env.fake.total_http_requests(),
        1,
        "{:?}",
        w.env.fake.request_counts()
    );
}

#[tokio::test]
async fn a_sync_token_near_seven_days_is_replaced_by_a_reconciling_full_listing() {
    let w = World::new().await;
    for i in 0..3 {
        w.seed_crm(&format!("Person {i}"), &format!("p{i}@example.com"));
    }
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Carol", "familyName": "Diaz"}],
        "emailAddresses": [{"value": "carol@example.com"}],
    }));
    w.sync().await;
    let incremental = |r: &SyncReport| !r.provider.full_listing;

    // 5.9 days after the full sync: the token is used.
    w.clock.advance(hours(5 * 24 + 22));
    let report = w.sync().await;
    assert!(incremental(&report), "{report}");

    // 6.9 days: a full listing, reconciled without a duplicate, a deletion or a write,
    // even when Google's first full-sync page is over quota once (429, retried).
    w.clock.advance(hours(24));
    w.env.fake.exhaust_full_sync_quota(1);
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert!(report.provider.full_listing, "{report}");
    assert!(report.provider.cursor_expired, "{report}");
    assert_eq!(report.provider.listed, 4, "{report}");
    assert_eq!(report.written(), 0, "{report}");
    assert_eq!(w.writes(), 0);
    assert_eq!(
        w.env.fake.requests(Endpoint::ConnectionsList),
        2,
        "429, then the page"
    );
    assert_eq!(w.crm_all().len(), 4);
    assert_eq!(w.env.fake.contacts().len(), 4);

    // The new token counts from the new full sync: incremental again, one request.
    w.clock.advance(hours(24));
    w.env.fake.reset_counters();
    let report = w.sync().await;
    assert!(incremental(&report), "{report}");
    assert_eq!(w.env.fake.total_http_requests(), 1);
}

#[tokio::test]
async fn a_renamed_contact_keeps_its_link() {
    let w = World::new().await;
    let ann = w.seed_crm("Ann Lee", "ann@example.com");
    w.sync().await;
    let old = w.google_with_email("ann@example.com")["resourceName"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = w.env.fake.rename_contact(&old);

    // The rename is listed: no duplicate on either side.
    let report = w.sync().await;
    assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
    assert_eq!(w.crm_all().len(), 1);
    assert_eq!(w.env.fake.contacts().len(), 1);

    // CRM edits reach the contact under its new name.
    w.crm
        .edit_item(&w.crm_col, &ann.id, |c| {
            c.notes = "Renamed on Google".into()
        })
        .unwrap();
    let report = w.sync().await;
    assert_eq!(report.provider.updated, 1, "{report}");
    let copy = w.env.fake.contact(&new).expect("renamed contact");
    assert_eq!(copy["biographies"][0]["value"], "Renamed on Google");

    // A reconciling full listing neither duplicates nor deletes it.
    w.env.fake.expire_people_sync_tokens();
    let report = w.sync().await;
    assert!(report.provider.cursor_expired, "{report}");
    assert_eq!(report.written(), 0, "{report}");
    assert_eq!(w.crm_all().len(), 1);
    assert_eq!(w.env.fake.contacts().len(), 1);

    // The store reaches it under either name.
    let book = w.store.address_book();
    let by_old = w.store.get(&book, &old.parse().unwrap()).await.unwrap();
    assert_eq!(by_old.unwrap().id.as_str(), new);
    let key = LinkKey::new(ann.id.as_str()).unwrap();
    let found = w.store.find_by_link_key(&book, &key).await.unwrap();
    assert_eq!(found.unwrap().id.as_str(), new);
}

#[tokio::test]
async fn unreadable_people_are_reported_and_the_run_goes_on() {
    let w = World::new().await;
    let bad = w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Feb", "familyName": "Thirty"}],
        "birthdays": [{"date": {"month": 2, "day": 30}}],
    }));
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Good", "familyName": "One"}],
        "emailAddresses": [{"value": "good@example.com"}],
    }));
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Bad", "familyName": "Mail"}],
        "emailAddresses": [{"value": "not an address"}],
    }));
    w.seed_crm("Ann Lee", "ann@example.com");
    let report = w.syncer().sync().await.expect("the run goes on");
    assert_eq!(report.crm.created, 1, "{report}");
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(report.errors.len(), 2, "{report}");
    let feb = report
        .errors
        .iter()
        .find(|e| e.id.as_deref() == Some(bad.as_str()))
        .expect("the impossible birthday");
    assert_eq!(feb.kind, "invalid record", "{feb:?}");
    assert!(feb.message.contains("birthday"), "{feb:?}");
    assert_eq!(w.crm_named("Good One").record.emails.len(), 1);
}

#[tokio::test]
async fn a_group_made_elsewhere_meanwhile_is_joined_not_duplicated() {
    let w = World::with_config(|c| c.with_contact_group("CRM")).await;
    // The store reads the groups (no "CRM" yet) while listing a person outside the group,
    // then someone makes the group.
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Out", "familyName": "Sider"}],
        "emailAddresses": [{"value": "out@example.com"}],
    }));
    w.sync().await;
    assert_eq!(w.env.fake.requests(Endpoint::ContactGroupsList), 1);
    let made = w.env.fake.add_contact_group("CRM");
    w.seed_crm("Ann Lee", "ann@example.com");
    let report = w.sync().await;
    assert_eq!(report.provider.created, 1, "{report}");
    let copy = w.google_with_email("ann@example.com");
    let memberships: Vec<&str> = copy["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["contactGroupMembership"]["contactGroupResourceName"].as_str())
        .collect();
    assert!(memberships.contains(&made.as_str()), "{memberships:?}");
    let named_crm = w
        .store
        .groups(&w.store.address_book())
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.name == "CRM")
        .count();
    assert_eq!(named_crm, 1);
    assert_eq!(
        w.env.fake.requests(Endpoint::ContactGroupsCreate),
        1,
        "the 409"
    );
}

/// Issue 10, item 4: `contacts = "Contacts"` (and its other spellings) is the whole address
/// book, not a user group named "Contacts": every phone contact reaches the CRM, no group
/// is created, and a sync with nothing to do costs what it costs without a name.
#[tokio::test]
async fn contacts_named_contacts_is_the_whole_address_book() {
    for name in ["Contacts", "My Contacts", "myContacts"] {
        let w = World::with_config(|c| c.with_contact_group(name)).await;
        for i in 0..100 {
            w.env.fake.seed_contact(json!({
                "names": [{"givenName": format!("Phone{i}"), "familyName": "Contact"}],
                "emailAddresses": [{"value": format!("phone{i}@example.com")}],
            }));
        }
        w.env.fake.reset_counters();
        let plan = w.syncer().plan().await.expect("plan");
        let creates_to_crm = plan
            .actions
            .iter()
            .filter(|a| {
                matches!(a, crmsync_core::engine::Action::Create { target, .. }
                    if *target == crmsync_core::Side::Crm)
            })
            .count();
        assert_eq!(creates_to_crm, 100, "{name}: {plan}");
        assert_eq!(w.store.left_out(), 0, "{name}");
        let report = w.sync().await;
        assert_eq!(report.crm.created, 100, "{name}: {report}");
        assert_eq!(w.crm_all().len(), 100);
        assert_eq!(
            w.env.fake.requests(Endpoint::ContactGroupsCreate),
            0,
            "{name}: no group is created"
        );
        assert_eq!(
            w.env.fake.requests(Endpoint::ContactGroupsList),
            0,
            "{name}: no group is looked up"
        );
        // A CRM contact sent to Google joins no group but My Contacts.
        w.seed_crm("Ann Lee", "ann@example.com");
        let report = w.sync().await;
        assert_eq!(report.provider.created, 1, "{name}: {report}");
        let ann = w.google_with_email("ann@example.com");
        let groups: Vec<&str> = ann["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["contactGroupMembership"]["contactGroupResourceName"].as_str())
            .collect();
        assert_eq!(groups, ["contactGroups/myContacts"], "{name}");
        w.sync().await;
        w.env.fake.reset_counters();
        let report = w.sync().await;
        assert!(report.nothing_to_do(), "{report}");
        assert_eq!(
            w.env.fake.request_counts(),
            [(Endpoint::ConnectionsList, 1)].into_iter().collect(),
            "{name}"
        );
        assert_eq!(w.store.address_books().await.unwrap()[0].name, "Contacts");
    }
}

/// A contact left out by a group filter is counted: a skip in the plan and the report.
#[tokio::test]
async fn contacts_outside_the_synced_group_are_counted() {
    let w = World::with_config(|c| c.with_contact_group("CRM")).await;
    let group = w.env.fake.add_contact_group("CRM");
    for i in 0..100 {
        let mut person = json!({
            "names": [{"givenName": format!("Phone{i}"), "familyName": "Contact"}],
            "emailAddresses": [{"value": format!("phone{i}@example.com")}],
        });
        if i % 5 == 0 {
            person["memberships"] = json!([
                {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}},
                {"contactGroupMembership": {"contactGroupResourceName": group}},
            ]);
        }
        w.env.fake.seed_contact(person);
    }
    let outside = |reason: &crmsync_core::engine::SkipReason| matches!(reason, crmsync_core::engine::SkipReason::OutsideSelection(why) if why.contains(&group));
    let plan = w.syncer().plan().await.unwrap();
    let skipped = plan
        .actions
        .iter()
        .filter(
            |a| matches!(a, crmsync_core::engine::Action::Skip { reason, .. } if outside(reason)),
        )
        .count();
    assert_eq!(skipped, 80, "{plan}");
    let report = w.sync().await;
    assert_eq!(report.crm.created, 20, "{report}");
    assert_eq!(w.store.left_out(), 80);
    assert_eq!(
        report.skipped.iter().filter(|s| outside(&s.reason)).count(),
        80,
        "{report}"
    );
    // Starred: a system group, never created, no group request.
    let w = World::with_config(|c| c.with_contact_group("Starred")).await;
    w.env.fake.seed_contact(json!({
        "names": [{"givenName": "Star"}],
        "memberships": [
            {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}},
            {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/starred"}},
        ],
    }));
    w.env
        .fake
        .seed_contact(json!({"names": [{"givenName": "Plain"}]}));
    w.seed_crm("Ann Lee", "ann@example.com");
    let report = w.sync().await;
    assert_eq!(
        (report.crm.created, report.provider.created),
        (1, 1),
        "{report}"
    );
    assert_eq!(w.store.left_out(), 1);
    let ann = w.google_with_email("ann@example.com");
    assert!(
        ann["memberships"]
            .to_string()
            .contains("contactGroups/starred"),
        "{ann}"
    );
    assert_eq!(w.env.fake.requests(Endpoint::ContactGroupsCreate), 0);
}
