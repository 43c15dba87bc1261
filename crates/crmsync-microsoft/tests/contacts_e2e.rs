//! End to end through the engine: an in-memory CRM, the Graph contacts store, the fake.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use crmsync_core::engine::{FieldPolicy, SyncReport, Syncer};
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact, ContactField,
    Continuation, ErrorKind, ItemId, LinkKey, ManualClock, Photo, RecordStore, RecordingSleeper,
    Result, Side, Stored, Usage, Version,
};
use crmsync_http::{AccountLimiter, HttpClient, RateLimit};
use crmsync_memory::{MemoryState, MemoryStore};
use crmsync_microsoft::{CONTACT_LINK_PROPERTY, GraphContacts};
use crmsync_testkit::graph::{Endpoint, Fault, FaultTarget};
use serde_json::{Value, json};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn person(name: &str, emails: &[&str]) -> Contact {
    let mut c = Contact::new(name);
    let usages = [Usage::Work, Usage::Home, Usage::Other, Usage::Other];
    for (i, e) in emails.iter().enumerate() {
        c = c.with_email(e, usages[i.min(3)]).unwrap();
    }
    c.organization.company = "Acme".into();
    c.organization.job_title = "Buyer".into();
    c.notes = format!("About {name}");
    c
}

struct World {
    s: common::Setup,
    crm: MemoryStore<Contact>,
    crm_col: CollectionId,
    state: MemoryState,
    folder: CollectionId,
    store: Arc<GraphContacts>,
}

impl World {
    async fn new() -> World {
        World::with(|store| store).await
    }

    async fn with(adjust: impl Fn(GraphContacts) -> GraphContacts) -> World {
        let mut s = common::setup().await;
        s.signed_in(false).await;
        let id = s.fake.add_contact_folder("CRM");
        s.config = s.config.clone().with_contact_folder("crm");
        let store = Arc::new(adjust(GraphContacts::new(s.client())));
        let folder = store.configured_folder().await.expect("folder by name");
        assert_eq!(folder.id.as_str(), id);
        let crm = MemoryStore::<Contact>::new();
        let crm_col = crm.add_collection("CRM contacts");
        World {
            s,
            crm,
            crm_col,
            state: MemoryState::new(),
            folder: folder.id,
            store,
        }
    }

    fn syncer_over(&self, provider: Arc<dyn RecordStore<Contact>>) -> Syncer<Contact> {
        Syncer::new(
            Arc::new(self.crm.clone()),
            self.crm_col.clone(),
            provider,
            self.folder.clone(),
            Arc::new(self.state.clone()),
            self.s.account.clone(),
            FieldPolicy::contact_defaults(),
        )
        .with_clock(Arc::new(ManualClock::new(now())))
    }

    fn syncer(&self) -> Syncer<Contact> {
        self.syncer_over(self.store.clone())
    }

    async fn sync(&self) -> SyncReport {
        let report = self.syncer().sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        report
    }

    fn outlook(&self) -> Vec<Value> {
        self.s.fake.contacts_in(self.folder.as_str())
    }

    fn outlook_named(&self, name: &str) -> Value {
        let found: Vec<Value> = self
            .outlook()
            .into_iter()
            .filter(|c| c["displayName"] == name)
            .collect();
        assert_eq!(found.len(), 1, "exactly one Outlook contact named {name:?}");
        found[0].clone()
    }

    fn crm_named(&self, name: &str) -> Stored<Contact> {
        let found: Vec<Stored<Contact>> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .filter(|s| s.record.display_name == name)
            .collect();
        assert_eq!(found.len(), 1, "exactly one CRM contact named {name:?}");
        found[0].clone()
    }

    fn assert_mirrored(&self, n: usize) {
        let crm: Vec<String> = self
            .crm
            .get_all(&self.crm_col)
            .unwrap()
            .into_iter()
            .map(|s| s.record.display_name)
            .collect();
        let outlook: Vec<String> = self
            .outlook()
            .into_iter()
            .map(|c| c["displayName"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(crm.len(), n, "CRM: {crm:?}");
        assert_eq!(outlook.len(), n, "Outlook: {outlook:?}");
        let (a, b): (BTreeSet<_>, BTreeSet<_>) =
            (crm.into_iter().collect(), outlook.into_iter().collect());
        assert_eq!(a, b);
    }

    /// Three CRM contacts, two Outlook contacts, first sync done.
    async fn first_sync(&self) -> SyncReport {
        let mut ann = person("Ann Lee", &["ann@acme.example", "ann@home.example"]);
        ann = ann.with_phone("+33 1 23 45 67 89", Usage::Work).unwrap();
        ann = ann.with_phone("+33 6 12 34 56 78", Usage::Mobile).unwrap();
        self.crm.seed(&self.crm_col, ann).unwrap();
        self.crm
            .seed(&self.crm_col, person("Bob Stone", &["bob@acme.example"]))
            .unwrap();
        self.crm
            .seed(&self.crm_col, person("Chen Wu", &["chen@acme.example"]))
            .unwrap();
        self.s.fake.seed_contact(
            Some(self.folder.as_str()),
            json!({"displayName": "Dora Diaz", "givenName": "Dora", "surname": "Diaz",
                   "emailAddresses": [{"address": "dora@example.org", "name": "Dora"}],
                   "businessPhones": ["+1 425 555 0100"], "mobilePhone": "+1 425 555 0101",
                   "birthday": "1985-03-14T00:00:00Z", "personalNotes": "Met at the fair",
                   "categories": ["VIP"], "companyName": "Fabrikam", "jobTitle": "CTO"}),
        );
        self.s.fake.seed_contact(
            Some(self.folder.as_str()),
            json!({"displayName": "Evan Kim", "emailAddresses": [{"address": "evan@example.org"}],
                   "homeAddress": {"street": "1 Main St\nApt 2", "city": "Seattle",
                                   "state": "WA", "postalCode": "98101", "countryOrRegion": "USA"}}),
        );
        let report = self.sync().await;
        self.assert_mirrored(5);
        report
    }

    /// Runs a sync with nothing to do; the fake's non-zero request counts, all endpoints
    /// (the token endpoint included).
    async fn noop_counts(&self) -> BTreeMap<Endpoint, u64> {
        self.s.fake.reset_counters();
        let report = self.sync().await;
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
        self.s
            .fake
            .request_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn one_delta() -> BTreeMap<Endpoint, u64> {
    [(Endpoint::ContactsDelta, 1)].into_iter().collect()
}

#[tokio::test]
async fn first_sync_links_both_sides_and_a_noop_sync_costs_one_request() {
    let w = World::new().await;
    let report = w.first_sync().await;
    assert_eq!(report.provider.created, 3, "{report}");
    assert_eq!(report.crm.created, 2, "{report}");
    // The copy carries the link key and the CRM's values.
    let ann = w.outlook_named("Ann Lee");
    let crm_ann = w.crm_named("Ann Lee");
    let props =
        w.s.fake
            .contact_extended_properties(ann["id"].as_str().unwrap());
    assert_eq!(
        props.get(CONTACT_LINK_PROPERTY).map(String::as_str),
        Some(crm_ann.id.as_str()),
        "{props:?}"
    );
    assert_eq!(
        ann["emailAddresses"],
        json!([{"address": "ann@acme.example", "name": "ann@acme.example"},
               {"address": "ann@home.example", "name": "ann@home.example"}])
    );
    assert_eq!(ann["businessPhones"], json!(["+33 1 23 45 67 89"]));
    assert_eq!(ann["mobilePhone"], "+33 6 12 34 56 78");
    assert_eq!(ann["companyName"], "Acme");
    // The Outlook contacts came over whole.
    let dora = w.crm_named("Dora Diaz").record;
    assert_eq!(
        dora.birthday.map(|b| (b.year(), b.month(), b.day())),
        Some((Some(1985), 3, 14))
    );
    assert_eq!(dora.groups, BTreeSet::from(["VIP".to_owned()]));
    assert_eq!(dora.phones.len(), 2);
    assert_eq!(dora.organization.company, "Fabrikam");
    let evan = w.crm_named("Evan Kim").record;
    assert_eq!(evan.addresses[0].lines, ["1 Main St", "Apt 2"]);
    assert_eq!(evan.addresses[0].usage, Usage::Home);
    let counts = w.noop_counts().await;
    println!("no-op sync requests: {counts:?}");
    assert_eq!(counts, one_delta());
}

#[tokio::test]
async fn edits_on_both_sides_meet_and_patches_write_only_owned_fields() {
    let w = World::new().await;
    w.first_sync().await;
    // Outlook side: notes (synced both ways) and a nickname (not modelled).
    let dora = w.outlook_named("Dora Diaz");
    w.s.fake.edit_contact(
        dora["id"].as_str().unwrap(),
        json!({"personalNotes": "Wants a demo"}),
    );
    let bob = w.outlook_named("Bob Stone");
    w.s.fake
        .edit_contact(bob["id"].as_str().unwrap(), json!({"nickName": "Bobby"}));
    // CRM side: Bob's job title.
    let crm_bob = w.crm_named("Bob Stone");
    let mut edited = crm_bob.record.clone();
    edited.organization.job_title = "Head of purchasing".into();
    w.crm
        .update(
            &w.crm_col,
            &crm_bob.id,
            &crm_bob.version,
            &edited,
            &[ContactField::Organization].into_iter().collect(),
        )
        .await
        .unwrap();
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.crm.updated, 1, "{report}");
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(w.crm_named("Dora Diaz").record.notes, "Wants a demo");
    let bob = w.outlook_named("Bob Stone");
    assert_eq!(bob["jobTitle"], "Head of purchasing");
    assert_eq!(
        bob["nickName"], "Bobby",
        "the PATCH left Outlook's own field alone"
    );
    assert_eq!(bob["personalNotes"], "About Bob Stone");
    let counts = w.s.fake.request_counts();
    assert_eq!(counts.get(&Endpoint::ContactUpdate), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&Endpoint::ContactsList), None, "{counts:?}");
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn an_expired_delta_token_leads_to_a_reconciling_full_listing() {
    let w = World::new().await;
    w.first_sync().await;
    w.s.fake.expire_delta_tokens();
    let report = w.sync().await;
    assert!(report.provider.cursor_expired, "{report}");
    assert_eq!(report.provider.created + report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
    assert_eq!(w.noop_counts().await, one_delta());
}

/// The Graph store, with every delta token expiring once the first page of a listing was
/// served: the next page gets 410 `syncStateNotFound`.
#[derive(Debug)]
struct ExpireAfterFirstPage {
    inner: Arc<GraphContacts>,
    fake: Arc<crmsync_testkit::graph::GraphFake>,
    armed: AtomicBool,
}

#[async_trait]
impl RecordStore<Contact> for ExpireAfterFirstPage {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }
    async fn changes(&self, c: &CollectionId, r: ChangesRequest) -> Result<ChangePage<Contact>> {
        let page = self.inner.changes(c, r).await?;
        if matches!(page.next, Continuation::NextPage(_))
            && self.armed.swap(false, Ordering::SeqCst)
        {
            self.fake.expire_delta_tokens();
        }
        Ok(page)
    }
    async fn get(&self, c: &CollectionId, id: &ItemId) -> Result<Option<Stored<Contact>>> {
        self.inner.get(c, id).await
    }
    async fn create(&self, c: &CollectionId, r: &Contact, k: &LinkKey) -> Result<Stored<Contact>> {
        self.inner.create(c, r, k).await
    }
    async fn update(
        &self,
        c: &CollectionId,
        id: &ItemId,
        v: &Version,
        r: &Contact,
        f: &BTreeSet<ContactField>,
    ) -> Result<Stored<Contact>> {
        self.inner.update(c, id, v, r, f).await
    }
    async fn delete(&self, c: &CollectionId, id: &ItemId, v: &Version) -> Result<()> {
        self.inner.delete(c, id, v).await
    }
    async fn find_by_link_key(
        &self,
        c: &CollectionId,
        k: &LinkKey,
    ) -> Result<Option<Stored<Contact>>> {
        self.inner.find_by_link_key(c, k).await
    }
}

#[tokio::test]
async fn a_410_in_the_middle_of_a_delta_round_is_recovered_without_duplicates() {
    let w = World::with(|store| store.with_page_size(2)).await;
    w.first_sync().await;
    // Five Outlook edits: the next round takes three pages of two.
    for c in w.outlook() {
        let id = c["id"].as_str().unwrap();
        w.s.fake
            .edit_contact(id, json!({"personalNotes": format!("Edited {id}")}));
    }
    let flaky = Arc::new(ExpireAfterFirstPage {
        inner: w.store.clone(),
        fake: w.s.fake.clone(),
        armed: AtomicBool::new(true),
    });
    w.s.fake.reset_counters();
    let report = w.syncer_over(flaky).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.provider.cursor_expired, "{report}");
    assert_eq!(report.provider.created + report.crm.created, 0, "{report}");
    assert_eq!(report.crm.updated, 5, "{report}");
    w.assert_mirrored(5);
    // The 410 itself was answered once.
    assert!(w.s.fake.requests(Endpoint::ContactsDelta) >= 4);
    // The store's own injection point works too: a 410 on the cursor is CursorExpired.
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::ContactsDelta),
        Fault::SyncStateNotFound,
        1,
    );
    let err = w
        .store
        .changes(
            &w.folder,
            ChangesRequest {
                cursor: Some(
                    crmsync_core::Cursor::new(format!(
                        "{}/me/contactFolders/{}/contacts/delta?$deltatoken=stale",
                        w.s.fake.base_url(),
                        w.folder
                    ))
                    .unwrap(),
                ),
                ..ChangesRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CursorExpired, "{err}");
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn a_fourth_email_address_is_reported_as_lost_not_dropped_silently() {
    let w = World::new().await;
    let four = person(
        "Fay Four",
        &[
            "fay@acme.example",
            "fay@home.example",
            "fay@other.example",
            "fay@fourth.example",
        ],
    );
    let fay = w.crm.seed(&w.crm_col, four).unwrap();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(report.losses.len(), 1, "{report}");
    let loss = &report.losses[0];
    assert_eq!(loss.id, fay.id.as_str());
    assert_eq!(loss.side, Side::Provider);
    assert_eq!(loss.loss.field, "emails");
    assert!(loss.loss.detail.contains("fay@fourth.example"), "{loss:?}");
    let outlook = w.outlook_named("Fay Four");
    let addresses: Vec<&str> = outlook["emailAddresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["fay@acme.example", "fay@home.example", "fay@other.example"]
    );
    // The CRM keeps its four; nothing is rewritten on the next runs.
    assert_eq!(w.crm_named("Fay Four").record.emails.len(), 4);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn an_unreadable_outlook_contact_is_reported_and_the_run_goes_on() {
    let w = World::new().await;
    let bad = w.s.fake.seed_contact(
        Some(w.folder.as_str()),
        json!({"displayName": "Broken", "emailAddresses": [{"address": "not an address"}]}),
    );
    w.s.fake.seed_contact(
        Some(w.folder.as_str()),
        json!({"displayName": "Fine", "emailAddresses": [{"address": "fine@example.org"}]}),
    );
    let report = w.syncer().sync().await.expect("the run completes");
    assert_eq!(report.crm.created, 1, "{report}");
    assert_eq!(report.errors.len(), 1, "{report}");
    let error = &report.errors[0];
    assert_eq!(error.side, Side::Provider);
    assert_eq!(error.id.as_deref(), bad["id"].as_str());
    assert!(error.message.contains("emails"), "{error:?}");
    w.crm_named("Fine");
    // Fixed in Outlook: it comes over on the next run.
    w.s.fake.edit_contact(
        bad["id"].as_str().unwrap(),
        json!({"emailAddresses": [{"address": "broken@example.org"}]}),
    );
    let report = w.sync().await;
    assert_eq!(report.crm.created, 1, "{report}");
    w.crm_named("Broken");
}

#[tokio::test]
async fn a_crash_before_the_state_commit_leaves_no_duplicate() {
    let w = World::new().await;
    w.first_sync().await;
    // After a first sync (a cursor is stored), two more CRM contacts; the commit of the
    // run creating them fails.
    for name in ["Gus Grant", "Hana Ito"] {
        let email = format!(
            "{}@acme.example",
            name.split(' ').next().unwrap().to_lowercase()
        );
        w.crm
            .seed(&w.crm_col, person(name, &[email.as_str()]))
            .unwrap();
    }
    let crashing = Arc::new(common::CrashAfterCreate {
        inner: w.store.clone(),
        state: w.state.clone(),
    });
    let err = w
        .syncer_over(crashing)
        .sync()
        .await
        .expect_err("the state commit failed: the run stops");
    assert_eq!(err.kind(), &ErrorKind::State, "{err}");
    assert!(w.outlook().len() > 5, "writes reached Graph");
    // After a restart (a new store that has seen nothing): re-linked by link key.
    let restarted = Arc::new(GraphContacts::new(w.s.client()));
    let report = w.syncer_over(restarted).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    w.assert_mirrored(7);
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn reset_then_relink_duplicates_nothing() {
    let w = World::new().await;
    w.first_sync().await;
    w.syncer().reset(false).await.expect("reset");
    // A restarted process: nothing known about link keys.
    let restarted = Arc::new(GraphContacts::new(w.s.client()));
    let report = w.syncer_over(restarted.clone()).sync().await.expect("sync");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 0, "{report}");
    assert_eq!(report.crm.created, 0, "{report}");
    w.assert_mirrored(5);
    assert_eq!(w.noop_counts().await, one_delta());
}

/// The Graph limiter on a manual clock: its pacing is recorded, not slept.
fn paced_world_client(w: &mut World) -> Arc<RecordingSleeper> {
    let clock = ManualClock::new(now());
    let pacing = Arc::new(RecordingSleeper::advancing(clock.clone()));
    w.s.http = HttpClient::builder()
        .limiter(AccountLimiter::new(
            RateLimit::GRAPH_MAILBOX,
            Arc::new(clock),
            pacing.clone(),
        ))
        .build()
        .unwrap();
    w.store = Arc::new(GraphContacts::new(w.s.client()));
    pacing
}

#[tokio::test]
async fn pushing_two_thousand_new_contacts_takes_a_hundred_batches() {
    let mut w = World::new().await;
    let pacing = paced_world_client(&mut w);
    for i in 0..2000 {
        w.crm
            .seed(
                &w.crm_col,
                person(&format!("Lead {i:04}"), &[&format!("lead{i}@example.com")]),
            )
            .unwrap();
    }
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 2000, "{report}");
    assert!(report.limit.is_none(), "{report}");
    assert_eq!(w.outlook().len(), 2000);
    let counts = w.s.fake.request_counts();
    let paced: std::time::Duration = pacing.delays().iter().sum();
    println!(
        "first sync of 2,000 CRM contacts: {} HTTP requests, {counts:?}; paced {paced:?}",
        w.s.fake.total_http_requests()
    );
    // One delta (an empty folder), 100 `$batch` of 20 creates: the members count under
    // ContactCreate, the envelopes under Batch.
    assert_eq!(w.s.fake.total_http_requests(), 101);
    assert_eq!(
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        [
            (Endpoint::Batch, 100),
            (Endpoint::ContactCreate, 2000),
            (Endpoint::ContactsDelta, 1),
        ]
    );
    // Within the mailbox's burst: next to no waiting (one by one it was 114 s).
    assert!(paced < std::time::Duration::from_secs(1), "{paced:?}");
    // The next run reads the echo of the creates: 20 delta pages, no extra reads.
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(
        report.provider.updated + report.crm.created + report.crm.updated,
        0,
        "{report}"
    );
    let counts = w.s.fake.request_counts();
    println!("the echo of 2,000 creates: {counts:?}");
    assert_eq!(
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        [(Endpoint::ContactsDelta, 20)]
    );
    assert_eq!(w.noop_counts().await, one_delta());
}

fn png(seed: u8) -> Photo {
    let mut bytes = vec![0x89, b'P', b'N', b'G'];
    bytes.extend((0..32).map(|i| i ^ seed));
    Photo::new(bytes, "image/png").unwrap()
}

#[tokio::test]
async fn photos_go_to_outlook_without_costing_a_noop_sync_anything() {
    let w = World::with(GraphContacts::with_photos).await;
    let mut ivy = person("Ivy Photo", &["ivy@acme.example"]);
    ivy.photo = Some(png(1));
    w.crm.seed(&w.crm_col, ivy).unwrap();
    let report = w.sync().await;
    assert_eq!(report.provider.created, 1, "{report}");
    let id = w.outlook_named("Ivy Photo")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.s.fake.contact_photo(&id),
        Some(("image/png".to_owned(), png(1).bytes().to_vec()))
    );
    assert_eq!(w.noop_counts().await, one_delta());
    // A new photo in the CRM replaces Outlook's.
    let crm_ivy = w.crm_named("Ivy Photo");
    let mut edited = crm_ivy.record.clone();
    edited.photo = Some(png(2));
    w.crm
        .update(
            &w.crm_col,
            &crm_ivy.id,
            &crm_ivy.version,
            &edited,
            &[ContactField::Photo].into_iter().collect(),
        )
        .await
        .unwrap();
    let report = w.sync().await;
    assert_eq!(report.provider.updated, 1, "{report}");
    assert_eq!(w.s.fake.contact_photo(&id).unwrap().1, png(2).bytes());
    assert_eq!(w.noop_counts().await, one_delta());
    // Removing it cannot be done through Graph: reported, nothing written.
    let crm_ivy = w.crm_named("Ivy Photo");
    let mut edited = crm_ivy.record.clone();
    edited.photo = None;
    w.crm
        .update(
            &w.crm_col,
            &crm_ivy.id,
            &crm_ivy.version,
            &edited,
            &[ContactField::Photo].into_iter().collect(),
        )
        .await
        .unwrap();
    let report = w.syncer().sync().await.expect("the run completes");
    assert_eq!(report.errors.len(), 1, "{report}");
    assert_eq!(report.errors[0].kind, ErrorKind::Unsupported.as_str());
    assert!(
        report.errors[0].message.contains("remove it in Outlook"),
        "{report}"
    );
    assert_eq!(w.s.fake.contact_photo(&id).unwrap().1, png(2).bytes());
}

#[tokio::test]
async fn sentinel_tokens_never_show_in_recorded_urls_or_reports() {
    let w = World::new().await;
    let tokens = w.s.signed_in(true).await;
    let report = w.first_sync().await;
    let text = format!("{report} {report:?} {:?}", w.store);
    let secrets = [
        tokens.access_token.secret().to_owned(),
        tokens.refresh_token.clone().unwrap().secret().to_owned(),
    ];
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()));
        for r in w.s.fake.recorded_requests() {
            assert!(!r.url.contains(secret.as_str()), "{}", r.url);
        }
    }
}

#[tokio::test]
async fn a_full_listing_learns_link_keys_with_one_request_per_thousand_contacts() {
    let w = World::new().await;
    for i in 0..250 {
        w.s.fake.seed_contact(
            Some(w.folder.as_str()),
            json!({"displayName": format!("Outlook {i:03}"),
                   "emailAddresses": [{"address": format!("o{i}@example.org")}]}),
        );
    }
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.crm.created, 250, "{report}");
    let counts: Vec<(Endpoint, u64)> =
        w.s.fake
            .request_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
    // Three delta pages of 100, one listing of the link keys; no contact read one by one.
    assert_eq!(
        counts,
        [(Endpoint::ContactsList, 1), (Endpoint::ContactsDelta, 3)]
    );
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn an_unknown_folder_name_is_not_found_with_its_remedy() {
    let mut s = common::setup().await;
    s.signed_in(false).await;
    s.config = s.config.clone().with_contact_folder("Clients");
    let store = GraphContacts::new(s.client());
    let err = store.configured_folder().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("ensure_folder"), "{err}");
    let made = store.ensure_folder("Clients").await.unwrap();
    assert!(!made.primary);
    assert_eq!(store.configured_folder().await.unwrap(), made);
    // Groups are the mailbox's categories.
    let group = crmsync_core::ContactStoreExt::ensure_group(&store, &made.id, "VIP")
        .await
        .unwrap();
    assert_eq!(group.name, "VIP");
    assert!(
        s.fake
            .categories()
            .iter()
            .any(|(name, colour)| name == "VIP" && colour == "none")
    );
    let err = crmsync_core::ContactStore::create_group(&store, &made.id, "VIP")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict, "{err}");
}

/// A transport that sends the items of incremental contacts delta pages as Graph may
/// (MS-CAL-16): a contact it sent before comes back as its id, its version and only the
/// properties that changed since.
#[derive(Debug)]
struct PartialDelta {
    inner: Arc<dyn crmsync_http::HttpService>,
    last_sent: std::sync::Mutex<BTreeMap<String, serde_json::Map<String, Value>>>,
}

#[async_trait]
impl crmsync_http::HttpService for PartialDelta {
    async fn call(
        &self,
        request: crmsync_http::HttpRequest,
        timeout: std::time::Duration,
    ) -> std::result::Result<crmsync_http::HttpResponse, crmsync_http::TransportError> {
        let delta = request.method() == http::Method::GET
            && request.uri().path().ends_with("/contacts/delta");
        let mut response = self.inner.call(request, timeout).await?;
        if !delta || response.status() != 200 {
            return Ok(response);
        }
        let mut body: Value = serde_json::from_slice(response.body()).unwrap();
        let mut last_sent = self.last_sent.lock().unwrap();
        for item in body["value"].as_array_mut().into_iter().flatten() {
            let Some(object) = item.as_object_mut() else {
                continue;
            };
            if object.contains_key("@removed") {
                continue;
            }
            let id = object["id"].as_str().unwrap().to_owned();
            let full = object.clone();
            if let Some(before) = last_sent.get(&id) {
                object.retain(|k, v| {
                    k.starts_with('@')
                        || ["id", "changeKey", "lastModifiedDateTime"].contains(&k.as_str())
                        || before.get(k) != Some(v)
                });
            }
            last_sent.insert(id, full);
        }
        *response.body_mut() = serde_json::to_vec(&body).unwrap();
        Ok(response)
    }
}

#[tokio::test]
async fn partial_delta_items_are_merged_and_half_fields_are_read_whole() {
    let mut w = World::new().await;
    let inner = HttpClient::builder().build().unwrap().service().clone();
    w.s.http = HttpClient::builder()
        .service(Arc::new(PartialDelta {
            inner,
            last_sent: Default::default(),
        }))
        .build()
        .unwrap();
    w.store = Arc::new(GraphContacts::new(w.s.client()));
    w.first_sync().await;
    // The echo of the first sync's writes.
    w.sync().await;
    // Notes come alone (a whole field): merged with what is known, nothing else wiped.
    let dora = w.outlook_named("Dora Diaz");
    let dora_id = dora["id"].as_str().unwrap().to_owned();
    w.s.fake
        .edit_contact(&dora_id, json!({"personalNotes": "Call back in May"}));
    // The company comes without the job title (half of the organization): read whole.
    let evan = w.outlook_named("Evan Kim");
    w.s.fake.edit_contact(
        evan["id"].as_str().unwrap(),
        json!({"companyName": "Contoso"}),
    );
    w.s.fake.reset_counters();
    let report = w.sync().await;
    assert_eq!(report.crm.updated, 1, "{report}");
    let dora = w.crm_named("Dora Diaz").record;
    assert_eq!(dora.birthday.map(|b| b.month()), Some(3));
    assert_eq!(dora.notes, "Call back in May");
    assert_eq!(dora.emails.len(), 1, "the partial item wiped nothing");
    assert_eq!(dora.organization.company, "Fabrikam");
    assert_eq!(dora.groups, BTreeSet::from(["VIP".to_owned()]));
    let counts = w.s.fake.request_counts();
    assert_eq!(counts.get(&Endpoint::ContactGet), Some(&1), "{counts:?}");
    // The company is the CRM's to own (CrmToProvider): Evan's stays as the CRM has it.
    assert_eq!(w.crm_named("Evan Kim").record.organization.company, "");
    assert_eq!(w.outlook_named("Evan Kim")["companyName"], Value::Null);
    // The echo of that write (half an organization again: one read), then nothing.
    w.sync().await;
    assert_eq!(w.noop_counts().await, one_delta());
}

#[tokio::test]
async fn usages_outlook_cannot_hold_survive_outlook_edits_and_restarts() {
    let w = World::new().await;
    let mut ada = Contact::new("Ada Home")
        .with_email("ada@home.example", Usage::Home)
        .unwrap()
        .with_email("ada@fax.example", Usage::Other)
        .unwrap()
        .with_phone("+33 1 00 00 00 09", Usage::Fax)
        .unwrap();
    ada.notes = "First".into();
    w.crm.seed(&w.crm_col, ada.clone()).unwrap();
    w.sync().await;
    let id = w.outlook_named("Ada Home")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.s.fake
            .contact_extended_properties(&id)
            .get(crmsync_microsoft::USAGE_PROPERTY)
            .map(String::as_str),
        Some("email home ada@home.example\nemail other ada@fax.example\nphone fax +33100000009")
    );
    // The same store, then a restarted one, see an Outlook edit: the addresses read with
    // their usages, so nothing but the notes changed.
    for (round, store) in [
        (1, w.store.clone()),
        (2, Arc::new(GraphContacts::new(w.s.client()))),
    ] {
        w.s.fake
            .edit_contact(&id, json!({"personalNotes": format!("Edit {round}")}));
        let report = w.syncer_over(store).sync().await.expect("sync");
        assert!(report.errors.is_empty(), "{report}");
        assert_eq!(report.crm.updated, 1, "{report}");
        assert_eq!(report.provider.updated, 0, "{report}");
        assert!(report.forbidden.is_empty(), "{report}");
        let crm = w.crm_named("Ada Home").record;
        assert_eq!(crm.notes, format!("Edit {round}"));
        assert_eq!(crm.emails, ada.emails);
        assert_eq!(crm.phones, ada.phones);
    }
    assert_eq!(w.noop_counts().await, one_delta());
}

/// Issue 10 item 6: a contacts `$batch` fails (the whole envelope: nothing reached Outlook);
/// the next run looks the pending creates up by link key on a server that ignores the
/// filter and lists every contact of the folder. The store checks the link property of
/// what it gets: nothing carries the keys, so the contacts are created, and reach Outlook.
/// Before, the first contact listed was taken for each: "3 created, 0 errors", and the
/// contacts never reached Outlook.
#[tokio::test]
async fn after_a_failed_batch_a_lookup_ignoring_its_filter_still_gets_contacts_to_outlook() {
    let w = World::new().await;
    // The user's own contacts: what a filter-ignoring lookup lists first.
    for name in ["Dora Diaz", "Evan Kim"] {
        w.s.fake
            .seed_contact(Some(w.folder.as_str()), json!({"displayName": name}));
    }
    w.sync().await;
    w.assert_mirrored(2);
    for name in ["Ann Lee", "Bob Stone", "Chen Wu"] {
        w.crm
            .seed(
                &w.crm_col,
                person(name, &[&format!("{}@acme.example", &name[..3])]),
            )
            .unwrap();
    }
    w.s.fake.inject(
        FaultTarget::Endpoint(Endpoint::Batch),
        Fault::ServerError(500),
        1,
    );
    let failed = w
        .syncer()
        .sync()
        .await
        .expect("a failed batch fails its records only");
    assert_eq!(failed.errors.len(), 3, "{failed}");
    assert_eq!(w.outlook().len(), 2, "nothing reached Outlook");

    w.s.fake.ignore_link_key_filter(true);
    w.s.fake.reset_counters();
    let report = w.sync().await;
    let lookups =
        w.s.fake
            .recorded_requests()
            .into_iter()
            .filter(|r| r.url.contains("%24filter=") || r.url.contains("$filter="))
            .count();
    println!("{report}\nlink-key lookups: {lookups}");
    assert_eq!(report.provider.created, 3, "{report}");
    w.assert_mirrored(5);
    for name in ["Ann Lee", "Bob Stone", "Chen Wu"] {
        let outlook = w.outlook_named(name);
        let props =
            w.s.fake
                .contact_extended_properties(outlook["id"].as_str().unwrap());
        assert_eq!(
            props.get(CONTACT_LINK_PROPERTY).map(String::as_str),
            Some(w.crm_named(name).id.as_str()),
            "{name}: {props:?}"
        );
    }
    // The user's contacts were not taken for copies of ours.
    for name in ["Dora Diaz", "Evan Kim"] {
        let outlook = w.outlook_named(name);
        assert!(
            w.s.fake
                .contact_extended_properties(outlook["id"].as_str().unwrap())
                .is_empty()
        );
    }
    assert_eq!(w.noop_counts().await, one_delta());
}

/// Issue 10 item 3 (Graph half): a contacts delta round whose last page has neither
/// `@odata.nextLink` nor `@odata.deltaLink` is a listing without a cursor: the run
/// succeeds and says so, the next run lists in full again, nothing is duplicated or
/// deleted, and an Outlook edit made meanwhile comes over.
#[tokio::test]
async fn a_delta_round_without_a_link_degrades_to_full_listings() {
    let w = World::new().await;
    w.first_sync().await;
    w.s.fake.end_delta_without_links(true);
    for round in 0..2 {
        if round == 1 {
            let dora = w.outlook_named("Dora Diaz");
            w.s.fake.edit_contact(
                dora["id"].as_str().unwrap(),
                json!({"personalNotes": "Met again"}),
            );
        }
        let report = w.sync().await;
        assert!(report.provider.no_cursor, "{report}");
        assert_eq!(report.crm.created + report.provider.created, 0, "{report}");
        assert_eq!(report.crm.deleted + report.provider.deleted, 0, "{report}");
        w.assert_mirrored(5);
    }
    assert_eq!(w.crm_named("Dora Diaz").record.notes, "Met again");
    w.s.fake.end_delta_without_links(false);
    let report = w.sync().await;
    assert!(!report.provider.no_cursor, "{report}");
    assert_eq!(w.noop_counts().await, one_delta());
}
