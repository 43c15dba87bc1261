//! [`GoogleContacts`]: Google contacts (People API) as a [`ContactStore`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact, ContactField,
    ContactStore, Error, ErrorKind, ItemId, LinkKey, Record, RecordStore, Removal, RemovalReason,
    Result, Stored, Unreadable, Upsert, Version, WriteOp, WriteOutcome,
};
use serde_json::{Value, json};
use url::Url;

use crate::client::{Call, GoogleClient, parse_object};
use crate::error::classify;
use crate::mapping::{
    PERSON_FIELDS, WirePerson, contact_from_wire, contact_to_wire, is_system_group, person_deleted,
    person_field, person_id,
};

/// The one address book of a Google account: its contacts (`people/me` connections).
pub const ADDRESS_BOOK: &str = "people/me";
/// `batchCreateContacts` / `batchUpdateContacts` take at most 200 contacts (G-PPL-15).
pub const MAX_CONTACT_BATCH: usize = 200;
/// `connections.list` pages hold at most 1000 people (G-PPL-1).
pub const MAX_CONTACT_PAGE: usize = 1000;

/// A contact group: its resource name and name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    resource_name: String,
    name: String,
}

/// Google contacts of one account, as a [`ContactStore`].
///
/// - One collection, [`ADDRESS_BOOK`] (`people/me`); contact groups are the contact's
///   `groups` (created on Google when missing), listed by
///   [`groups`](ContactStore::groups).
/// - The cursor is the `nextSyncToken` of `connections.list` (`requestSyncToken`); an
///   expired one (400 `EXPIRED_SYNC_TOKEN`, after 7 days) is [`ErrorKind::CursorExpired`].
///   Deleted contacts come back as `metadata.deleted` tombstones: removals.
/// - The link key lives in `clientData` (`crmsync_link`). People has no client-chosen
///   ids: an ambiguous create is recovered by [`find_by_link_key`](RecordStore::find_by_link_key),
///   which scans the connections.
/// - Updates send `updatePersonFields` listing only the fields asked for, with the
///   current etag (a stale one is 400 `FAILED_PRECONDITION`: [`ErrorKind::PreconditionFailed`]).
///   Deletes have no precondition at Google: the etag is checked by a read first.
/// - Every mutation of the account waits for the previous one, across the store
///   instances sharing one [`GoogleClient`] (G-PPL-9: "Mutate requests for the same user
///   should be sent sequentially").
/// - Photos are not synced yet (`photo` is not in the capabilities' fields).
pub struct GoogleContacts {
    client: GoogleClient,
    groups: Mutex<Option<Vec<Group>>>,
    /// The last person seen per resource name (for partial `names` writes and etag checks).
    seen: Mutex<HashMap<ItemId, (Value, Contact)>>,
}

impl std::fmt::Debug for GoogleContacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleContacts")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(id: &ItemId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("contact {id} does not exist (or was deleted)"),
    )
}

fn check_book(collection: &CollectionId) -> Result<()> {
    if collection.as_str() == ADDRESS_BOOK {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NotFound,
            format!("Google accounts have one address book, `{ADDRESS_BOOK}`; not `{collection}`"),
        ))
    }
}

impl GoogleContacts {
    /// The contacts of `client`'s account.
    pub fn new(client: GoogleClient) -> Self {
        GoogleContacts {
            client,
            groups: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The address book's id, [`ADDRESS_BOOK`].
    pub fn address_book(&self) -> CollectionId {
        CollectionId::new(ADDRESS_BOOK).expect("static id")
    }

    fn url(&self, path: &str) -> Url {
        self.client
            .config()
            .people_url
            .join_segments(path.split('/'))
    }

    /// `people/c1:verb` under the People base.
    fn person_url(&self, id: &ItemId, verb: Option<&str>) -> Url {
        let last = id.as_str().trim_start_matches("people/");
        let last = match verb {
            Some(verb) => format!("{last}:{verb}"),
            None => last.to_owned(),
        };
        self.client
            .config()
            .people_url
            .join_segments(["people", last.as_str()])
    }

    /// The contact groups, listed once and kept.
    async fn group_list(&self) -> Result<Vec<Group>> {
        if let Some(known) = lock(&self.groups).clone() {
            return Ok(known);
        }
        let mut all = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut call = Call::get(self.url("contactGroups")).query([("pageSize", "1000")]);
            if let Some(token) = &page_token {
                call = call.query([("pageToken", token.as_str())]);
            }
            let page = self.client.json(call, "listing contact groups").await?;
            for g in page
                .get("contactGroups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(rn), Some(name)) = (
                    g.get("resourceName").and_then(Value::as_str),
                    g.get("name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if g.get("groupType").and_then(Value::as_str) == Some("USER_CONTACT_GROUP") {
                    all.push(Group {
                        resource_name: rn.to_owned(),
                        name: name.to_owned(),
                    });
                }
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => page_token = Some(t.to_owned()),
                _ => break,
            }
        }
        *lock(&self.groups) = Some(all.clone());
        Ok(all)
    }

    /// The resource names of these group names, creating the missing groups.
    async fn group_resources(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut known = self.group_list().await?;
        let mut out = Vec::new();
        for name in names {
            let found = known.iter().find(|g| &g.name == name).cloned();
            let group = match found {
                Some(g) => g,
                None => {
                    let created = self.create_group_locked(name).await?;
                    known.push(created.clone());
                    created
                }
            };
            out.push(group.resource_name);
        }
        Ok(out)
    }

    async fn create_group_locked(&self, name: &str) -> Result<Group> {
        let call =
            Call::post(self.url("contactGroups")).json(&json!({"contactGroup": {"name": name}}))?;
        let v = self.client.json(call, "creating a contact group").await?;
        let rn = v
            .get("resourceName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Provider,
                    "the new contact group has no resourceName",
                )
            })?;
        let group = Group {
            resource_name: rn.to_owned(),
            name: name.to_owned(),
        };
        if let Some(list) = lock(&self.groups).as_mut() {
            list.push(group.clone());
        }
        Ok(group)
    }

    /// A person read from the wire, with its groups named.
    async fn read(&self, v: &Value) -> Result<Stored<Contact>> {
        let wire = contact_from_wire(v)?;
        let stored = self.named(wire).await?;
        lock(&self.seen).insert(stored.id.clone(), (v.clone(), stored.record.clone()));
        Ok(stored)
    }

    async fn named(&self, wire: WirePerson) -> Result<Stored<Contact>> {
        let mut record = wire.record;
        if !wire.group_resources.is_empty() {
            let mut groups = self.group_list().await?;
            if wire
                .group_resources
                .iter()
                .any(|rn| !groups.iter().any(|g| &g.resource_name == rn))
            {
                // A group made since the list was read.
                *lock(&self.groups) = None;
                groups = self.group_list().await?;
            }
            record.groups = wire
                .group_resources
                .iter()
                .filter_map(|rn| groups.iter().find(|g| &g.resource_name == rn))
                .map(|g| g.name.clone())
                .collect();
        }
        Ok(Stored {
            id: wire.id,
            version: wire.etag,
            link_key: wire.link_key,
            record,
        })
    }

    async fn fetch(&self, id: &ItemId) -> Result<Option<Value>> {
        let call = Call::get(self.person_url(id, None)).query([("personFields", PERSON_FIELDS)]);
        let response = self.client.send(call).await?;
        match response.status().as_u16() {
            404 => Ok(None),
            s if (200..300).contains(&s) => {
                parse_object(response.body(), "reading a contact").map(Some)
            }
            _ => Err(classify(&response, "reading a contact")),
        }
    }

    /// The current contact, checked to be at `expected`.
    async fn current_at(&self, id: &ItemId, expected: &Version) -> Result<Contact> {
        let seen = lock(&self.seen).get(id).cloned();
        if let Some((v, contact)) = seen
            && v.get("etag").and_then(Value::as_str) == Some(expected.as_str())
        {
            return Ok(contact);
        }
        let Some(v) = self.fetch(id).await? else {
            return Err(not_found(id));
        };
        let stored = self.read(&v).await?;
        if &stored.version != expected {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!("contact {id} changed since version {expected}"),
            ));
        }
        Ok(stored.record)
    }

    async fn create_unlocked(
        &self,
        record: &Contact,
        link_key: &LinkKey,
    ) -> Result<Stored<Contact>> {
        record.validate()?;
        let groups = self.group_resources(&record.groups).await?;
        let body = contact_to_wire(record, None, None, &groups, Some(link_key));
        let call = Call::post(self.url("people:createContact"))
            .query([("personFields", PERSON_FIELDS)])
            .json(&body)?;
        let v = self.client.json(call, "creating a contact").await?;
        self.read(&v).await
    }

    async fn update_unlocked(
        &self,
        id: &ItemId,
        expected: &Version,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) -> Result<Stored<Contact>> {
        record.validate()?;
        let paths: BTreeSet<&str> = fields.iter().filter_map(|f| person_field(*f)).collect();
        if paths.is_empty() {
            let Some(v) = self.fetch(id).await? else {
                return Err(not_found(id));
            };
            let stored = self.read(&v).await?;
            if &stored.version != expected {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("contact {id} changed"),
                ));
            }
            return Ok(stored);
        }
        // A partial write of `names` keeps the other half (display name or parts).
        let partial_names =
            fields.contains(&ContactField::Name) != fields.contains(&ContactField::DisplayName);
        let current = if partial_names {
            Some(self.current_at(id, expected).await?)
        } else {
            None
        };
        let groups = if fields.contains(&ContactField::Groups) {
            self.group_resources(&record.groups).await?
        } else {
            Vec::new()
        };
        let mut body = contact_to_wire(record, Some(fields), current.as_ref(), &groups, None);
        body.insert("etag".into(), json!(expected.as_str()));
        let mask = paths.into_iter().collect::<Vec<_>>().join(",");
        let call = Call::patch(self.person_url(id, Some("updateContact")))
            .query([
                ("updatePersonFields", mask.as_str()),
                ("personFields", PERSON_FIELDS),
            ])
            .json(&Value::Object(body))?;
        let response = self.client.send(call).await?;
        if response.status().is_success() {
            let v = parse_object(response.body(), "updating a contact")?;
            return self.read(&v).await;
        }
        match response.status().as_u16() {
            404 => Err(not_found(id)),
            _ => Err(classify(&response, "updating a contact")),
        }
    }

    async fn delete_unlocked(&self, id: &ItemId, expected: &Version) -> Result<()> {
        // deleteContact has no precondition: check the etag first.
        let Some(v) = self.fetch(id).await? else {
            return Err(not_found(id));
        };
        if v.get("etag").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!("contact {id} changed since version {expected}"),
            ));
        }
        let call = Call::delete(self.person_url(id, Some("deleteContact")));
        let response = self.client.send(call).await?;
        lock(&self.seen).remove(id);
        match response.status().as_u16() {
            s if (200..300).contains(&s) => Ok(()),
            404 => Err(not_found(id)),
            _ => Err(classify(&response, "deleting a contact")),
        }
    }

    /// Creates with `batchCreateContacts` (≤ 200 a request); `None` where the batch failed
    /// as a whole (the caller writes those one by one).
    async fn batch_create(
        &self,
        creates: &[(&Contact, &LinkKey)],
    ) -> Vec<Option<Result<Stored<Contact>>>> {
        let mut out: Vec<Option<Result<Stored<Contact>>>> = Vec::with_capacity(creates.len());
        let mut bodies = Vec::new();
        let mut positions = Vec::new();
        for (i, (record, key)) in creates.iter().enumerate() {
            match record.validate() {
                Err(e) => out.push(Some(Err(e))),
                Ok(()) => match self.group_resources(&record.groups).await {
                    Err(e) => out.push(Some(Err(e))),
                    Ok(groups) => {
                        out.push(None);
                        bodies.push(json!({"contactPerson": contact_to_wire(record, None, None, &groups, Some(key))}));
                        positions.push(i);
                    }
                },
            }
        }
        if bodies.len() < 2 {
            return out;
        }
        let call = match Call::post(self.url("people:batchCreateContacts"))
            .json(&json!({"contacts": bodies, "readMask": PERSON_FIELDS, "sources": ["READ_SOURCE_TYPE_CONTACT"]}))
        {
            Ok(call) => call,
            Err(_) => return out,
        };
        // Not retried blindly: a lost answer is recovered through the link keys.
        let answer = match self.client.json(call, "creating contacts in a batch").await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "batchCreateContacts failed; creating one by one");
                return out;
            }
        };
        let created = answer
            .get("createdPeople")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if created.len() != positions.len() {
            return out;
        }
        for (item, &i) in created.iter().zip(&positions) {
            let ok = item
                .pointer("/status/code")
                .and_then(Value::as_i64)
                .is_none_or(|c| c == 0);
            out[i] = Some(match (ok, item.get("person")) {
                (true, Some(person)) => self.read(person).await,
                _ => Err(Error::new(
                    ErrorKind::Provider,
                    format!(
                        "batchCreateContacts refused a contact: {}",
                        item.pointer("/status/message")
                            .and_then(Value::as_str)
                            .unwrap_or("no reason given")
                    ),
                )),
            });
        }
        out
    }
}

#[async_trait]
impl RecordStore<Contact> for GoogleContacts {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::unlimited("google");
        // connections.list with requestSyncToken / syncToken (G-PPL-1..5).
        caps.incremental = true;
        // batchCreateContacts / batchUpdateContacts: 200 (batchDeleteContacts: 500), G-PPL-15.
        caps.max_batch = MAX_CONTACT_BATCH;
        // connections.list pageSize: 1..=1000 (G-PPL-1).
        caps.max_page_size = Some(MAX_CONTACT_PAGE);
        // Every field but the photo (updateContactPhoto is not wired yet).
        caps.fields = Some(
            <ContactField as crmsync_core::Field>::ALL
                .iter()
                .filter(|f| **f != ContactField::Photo)
                .map(|f| crmsync_core::Field::name(*f).to_owned())
                .collect(),
        );
        // clientData (G-PPL-18).
        caps.link_keys = true;
        caps
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.address_books().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Contact>> {
        check_book(collection)?;
        let page_size = request
            .page_size
            .unwrap_or(MAX_CONTACT_PAGE)
            .clamp(1, MAX_CONTACT_PAGE)
            .to_string();
        // The same parameters on every page and every incremental call (G-PPL-3).
        let mut call = Call::get(self.url("people/me/connections")).query([
            ("personFields", PERSON_FIELDS),
            ("pageSize", page_size.as_str()),
            ("requestSyncToken", "true"),
        ]);
        if let Some(cursor) = &request.cursor {
            call = call.query([("syncToken", cursor.as_str())]);
        }
        if let Some(token) = &request.page_token {
            call = call.query([("pageToken", token.as_str())]);
        }
        let what = if request.cursor.is_some() {
            "the incremental listing of contacts"
        } else {
            "the full listing of contacts"
        };
        let page = self.client.json(call, what).await?;
        let mut out = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            next: crate::client::continuation(&page, what)?,
        };
        // `connections` is omitted on empty pages (G-PPL-2).
        let people = crate::client::array_field(&page, "connections", what)?;
        for person in people {
            if person_deleted(person) {
                match person_id(person) {
                    Some(id) => {
                        lock(&self.seen).remove(&id);
                        out.removals.push(Removal {
                            id,
                            reason: RemovalReason::Deleted,
                        });
                    }
                    None => out.unreadable.push(Unreadable {
                        id: None,
                        error: Error::invalid_record(
                            Some("resource_name"),
                            "a deleted contact has no resourceName",
                        ),
                    }),
                }
                continue;
            }
            let modified = contact_from_wire(person).ok().and_then(|w| w.updated);
            match self.read(person).await {
                Ok(item) => out.upserts.push(Upsert {
                    item,
                    sent: None,
                    modified,
                }),
                Err(error) if matches!(error.kind(), ErrorKind::InvalidRecord { .. }) => {
                    out.unreadable.push(Unreadable {
                        id: person_id(person),
                        error,
                    })
                }
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Contact>>> {
        check_book(collection)?;
        match self.fetch(id).await? {
            None => Ok(None),
            Some(v) if person_deleted(&v) => Ok(None),
            Some(v) => self.read(&v).await.map(Some),
        }
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &Contact,
        link_key: &LinkKey,
    ) -> Result<Stored<Contact>> {
        check_book(collection)?;
        let _turn = self.client.people_write_turn().await;
        self.create_unlocked(record, link_key).await
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) -> Result<Stored<Contact>> {
        check_book(collection)?;
        let _turn = self.client.people_write_turn().await;
        self.update_unlocked(id, expected, record, fields).await
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        check_book(collection)?;
        let _turn = self.client.people_write_turn().await;
        self.delete_unlocked(id, expected).await
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Contact>>> {
        check_book(collection)?;
        // People cannot filter on clientData: scan the connections.
        let mut page_token: Option<String> = None;
        loop {
            let mut call = Call::get(self.url("people/me/connections"))
                .query([("personFields", PERSON_FIELDS), ("pageSize", "1000")]);
            if let Some(token) = &page_token {
                call = call.query([("pageToken", token.as_str())]);
            }
            let page = self
                .client
                .json(call, "finding a contact by link key")
                .await?;
            for person in page
                .get("connections")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if person_deleted(person) {
                    continue;
                }
                if let Ok(wire) = contact_from_wire(person)
                    && wire.link_key.as_ref() == Some(link_key)
                {
                    return self.read(person).await.map(Some);
                }
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => page_token = Some(t.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<Contact>>,
    ) -> Vec<Result<WriteOutcome<Contact>>> {
        if let Err(e) = check_book(collection) {
            return ops.iter().map(|_| Err(e.clone())).collect();
        }
        let _turn = self.client.people_write_turn().await;
        let mut results: Vec<Option<Result<WriteOutcome<Contact>>>> =
            ops.iter().map(|_| None).collect();
        // Creates in batches of 200; updates and deletes one by one (batchUpdateContacts
        // takes one mask for all and fails as a whole on one stale etag; deletes need an
        // etag check each).
        let creates: Vec<(usize, &Contact, &LinkKey)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                WriteOp::Create { record, link_key } => Some((i, record, link_key)),
                _ => None,
            })
            .collect();
        for chunk in creates.chunks(MAX_CONTACT_BATCH) {
            let pairs: Vec<(&Contact, &LinkKey)> = chunk.iter().map(|(_, r, k)| (*r, *k)).collect();
            let answers = self.batch_create(&pairs).await;
            for ((i, _, _), answer) in chunk.iter().zip(answers) {
                results[*i] = answer.map(|r| r.map(WriteOutcome::Written));
            }
        }
        let mut out = Vec::with_capacity(ops.len());
        for (op, done) in ops.into_iter().zip(results) {
            out.push(match done {
                Some(result) => result,
                None => match op {
                    WriteOp::Create { record, link_key } => self
                        .create_unlocked(&record, &link_key)
                        .await
                        .map(WriteOutcome::Written),
                    WriteOp::Update {
                        id,
                        expected,
                        record,
                        fields,
                    } => self
                        .update_unlocked(&id, &expected, &record, &fields)
                        .await
                        .map(WriteOutcome::Written),
                    WriteOp::Delete { id, expected } => self
                        .delete_unlocked(&id, &expected)
                        .await
                        .map(|()| WriteOutcome::Deleted),
                },
            });
        }
        out
    }
}

#[async_trait]
impl ContactStore for GoogleContacts {
    async fn address_books(&self) -> Result<Vec<CollectionInfo>> {
        Ok(vec![CollectionInfo {
            id: self.address_book(),
            name: "Contacts".into(),
            writable: true,
            primary: true,
        }])
    }

    async fn groups(&self, address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        check_book(address_book)?;
        let groups = self.group_list().await?;
        groups
            .into_iter()
            .filter(|g| !is_system_group(&g.resource_name))
            .map(|g| {
                Ok(CollectionInfo {
                    id: CollectionId::new(g.resource_name)?,
                    name: g.name,
                    writable: true,
                    primary: false,
                })
            })
            .collect()
    }

    async fn create_group(
        &self,
        address_book: &CollectionId,
        name: &str,
    ) -> Result<CollectionInfo> {
        check_book(address_book)?;
        let _turn = self.client.people_write_turn().await;
        if self.group_list().await?.iter().any(|g| g.name == name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a contact group is already named {name:?}"),
            ));
        }
        let group = self.create_group_locked(name).await?;
        Ok(CollectionInfo {
            id: CollectionId::new(group.resource_name)?,
            name: group.name,
            writable: true,
            primary: false,
        })
    }
}
