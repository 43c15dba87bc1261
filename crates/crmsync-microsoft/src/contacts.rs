//! [`GraphContacts`]: Outlook contact folders and personal contacts as a [`ContactStore`].
//!
//! - Collections are contact folders: the default Contacts folder and its child folders
//!   (MS-CON-1). Only documented paths are used: the default folder is `/me/contacts`
//!   (its collection id is [`DEFAULT_CONTACT_FOLDER`], found without a request), a child
//!   folder `/me/contactFolders/{id}/contacts`; Graph v1.0 gives contact folders no
//!   well-known names, and a server may refuse `/me/contactFolders/contacts` (400).
//!   [`GraphContacts::configured_folder`] is the folder named by
//!   [`MicrosoftConfig::contact_folder`](crate::MicrosoftConfig::contact_folder), or the
//!   default folder; a name that matches no folder is [`ErrorKind::NotFound`], and
//!   [`GraphContacts::ensure_folder`] creates one.
//! - `changes`: `/me/contactFolders/{id}/contacts/delta` (`/me/contacts/delta` for the
//!   default folder, without query options on the first call) with
//!   `Prefer: odata.maxpagesize` (MS-CON-2); `@odata.nextLink` is the page token and
//!   `@odata.deltaLink` the cursor; a round ending with neither is
//!   [`Continuation::DoneWithoutCursor`] (the engine lists in full next time); 410
//!   `syncStateNotFound` is [`ErrorKind::CursorExpired`]. A `@removed` item with reason
//!   `deleted` is a deletion; any other reason (`changed`: moved to Deleted Items or to
//!   another folder) is checked with [`RecordStore::get`]. A partial object names the
//!   fields it carries in [`Upsert::sent`]; one carrying only part of a field (a given name
//!   without the surname) is read whole.
//! - The link key is a single-value extended property, [`CONTACT_LINK_PROPERTY`]; the
//!   usages Outlook cannot hold (of e-mail addresses, fax numbers…) another,
//!   [`USAGE_PROPERTY`].
//!   Delta does not return extended properties, so when a page holds contacts this store
//!   has not seen, one listing of the folder with both expanded (1,000 contacts a page)
//!   tells which of them carry what: a full listing of 2,000 contacts costs two requests
//!   more, a sync with nothing new none.
//! - `create`: `POST` with the link key; `update`: `PATCH` of the requested fields only,
//!   with `If-Match` (412: [`ErrorKind::PreconditionFailed`]); `delete` with `If-Match`.
//!   Graph has no `transactionId` for contacts: a create whose answer was lost is found
//!   again by its link key. `write_batch` sends them as `$batch` requests of up to 20
//!   (MS-GEN-1), each answer classified on its own; a write that needs a photo `PUT` goes
//!   on its own.
//! - The photo is `…/contacts/{id}/photo/$value` (MS-CON-4), synced only when asked for
//!   with [`GraphContacts::with_photos`]: Graph v1.0 documents `GET` and `PUT` of a
//!   contact photo but no way to remove one, so by default the photo is left out of the
//!   capabilities (the engine reports a CRM photo it cannot hold). With photos on, a
//!   written photo is `PUT` (then the contact is read again for its new `@odata.etag`),
//!   `get` reads it, listings never fetch it (their upserts leave it out of
//!   [`Upsert::sent`], so the engine keeps the last known photo), and removing a photo
//!   Outlook holds fails with [`ErrorKind::Unsupported`] before anything is written.
//! - Groups are Outlook categories: a contact's `groups` are its `categories`, and
//!   [`ContactStore::groups`] lists the mailbox's master categories (the same for every
//!   folder); [`ContactStore::create_group`] adds one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use crmsync_core::record::Field;
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Contact, ContactField,
    ContactStore, Continuation, Cursor, Error, ErrorKind, ItemId, LinkKey, PageToken, Photo,
    Record, RecordStore, Removal, RemovalReason, Result, Stored, Unreadable, Upsert, Version,
    WriteOp, WriteOutcome,
};
use crmsync_http::ApiRequest;
use serde_json::{Map, Value, json};
use url::Url;

use crate::batch::{BatchAnswer, BatchRequest, MAX_BATCH};
use crate::client::MicrosoftClient;
use crate::contact_mapping::{
    KeptUsages, MAX_EMAILS, apply_usages, contact_from_graph, contact_to_graph, fields_present,
    usages_from_graph, usages_to_graph,
};

/// The single-value extended property holding a contact's link key (a String property
/// in crmsync's namespace GUID, named apart from the events' one).
pub const CONTACT_LINK_PROPERTY: &str =
    "String {5b0f4a8e-3c1d-4e7a-9b2f-6d8c0e1a2b3c} Name crmsync_contact_link";

/// The single-value extended property holding the usages Outlook cannot hold: of e-mail
/// addresses, of fax and other numbers (see
/// [`usages_to_graph`](crate::contact_mapping::usages_to_graph)).
pub const USAGE_PROPERTY: &str =
    "String {5b0f4a8e-3c1d-4e7a-9b2f-6d8c0e1a2b3c} Name crmsync_usages";

/// The largest delta page asked for (`Prefer: odata.maxpagesize`).
pub const MAX_CONTACT_PAGE_SIZE: usize = 100;

/// The page size of the link-key listing (`$top`; Outlook lists at most 1,000 items a page).
const SCAN_PAGE_SIZE: usize = 1000;

/// The collection id of the default Contacts folder, addressed as `/me/contacts` (MS-CON-1).
/// Not a Graph id: Graph ids of folders are long opaque strings, never this word. A folder
/// remembered by its Graph id (as earlier versions did for the default folder) is still
/// served, through `/me/contactFolders/{id}`.
pub const DEFAULT_CONTACT_FOLDER: &str = "contacts";

/// The display name of the default folder (Outlook may show it translated).
const DEFAULT_FOLDER_NAME: &str = "Contacts";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn provider(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Provider, message)
}

/// The `$expand` reading both of crmsync's extended properties.
fn expand_link() -> String {
    format!(
        "singleValueExtendedProperties($filter=id eq '{CONTACT_LINK_PROPERTY}' or id eq '{USAGE_PROPERTY}')"
    )
}

/// The value of one expanded extended property.
fn extended<'a>(value: &'a Value, property: &str) -> Option<&'a str> {
    value
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .is_some_and(|i| i.eq_ignore_ascii_case(property))
        })
        .and_then(|p| p.get("value").and_then(Value::as_str))
}

/// What this store learnt of a contact from its extended properties.
#[derive(Debug, Clone, Default)]
struct Seen {
    link_key: Option<LinkKey>,
    /// The usages Outlook cannot hold, when crmsync wrote them.
    usages: Option<KeptUsages>,
}

fn seen_of(value: &Value) -> Seen {
    Seen {
        // A malformed link key is no link key: the contact is then the user's own.
        link_key: extended(value, CONTACT_LINK_PROPERTY).and_then(|k| LinkKey::new(k).ok()),
        usages: extended(value, USAGE_PROPERTY).map(usages_from_graph),
    }
}

fn usages_written(fields: &BTreeSet<ContactField>) -> bool {
    fields.contains(&ContactField::Emails) || fields.contains(&ContactField::Phones)
}

/// The extended properties a write carries: the link key on a create, the usages whenever
/// the e-mail addresses or the phone numbers are written.
fn extended_properties(
    link_key: Option<&LinkKey>,
    record: &Contact,
    fields: &BTreeSet<ContactField>,
) -> Option<Value> {
    let mut props = Vec::new();
    if let Some(key) = link_key {
        props.push(json!({"id": CONTACT_LINK_PROPERTY, "value": key.as_str()}));
    }
    if usages_written(fields) {
        props.push(json!({"id": USAGE_PROPERTY, "value": usages_to_graph(record)}));
    }
    (!props.is_empty()).then_some(Value::Array(props))
}

fn modified(item: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    item.get("lastModifiedDateTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The stored form of a Graph contact (without its photo).
fn stored(value: &Value) -> Result<Stored<Contact>> {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| provider("a contact without an id"))?;
    let version = value
        .get("@odata.etag")
        .and_then(Value::as_str)
        .ok_or_else(|| provider("a contact without an @odata.etag"))?;
    let mut record = contact_from_graph(value)?;
    if let Some(usages) = extended(value, USAGE_PROPERTY) {
        apply_usages(&mut record, &usages_from_graph(usages));
    }
    Ok(Stored {
        id: ItemId::new(id)?,
        version: Version::new(version)?,
        link_key: seen_of(value).link_key,
        record,
    })
}

fn folder_info(value: &Value, primary: bool) -> Result<Option<CollectionInfo>> {
    let (Some(id), Some(name)) = (
        value.get("id").and_then(Value::as_str),
        value.get("displayName").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    Ok(Some(CollectionInfo {
        id: CollectionId::new(id)?,
        name: name.to_owned(),
        writable: true,
        primary,
    }))
}

/// The items of a Graph collection page.
fn items(body: &Value) -> impl Iterator<Item = &Value> {
    body.get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn next_link(body: &Value) -> Result<Option<Url>> {
    body.get("@odata.nextLink")
        .and_then(Value::as_str)
        .map(|l| Url::parse(l).map_err(|_| provider("an @odata.nextLink that is not a URL")))
        .transpose()
}

/// How one write of a batch goes.
enum Planned {
    /// In the `$batch`.
    Batched(BatchRequest),
    /// On its own (it writes a photo, or its answer needs one read).
    Alone,
    /// Refused before sending (an invalid record).
    Failed(Error),
}

/// The account's Outlook contact folders and contacts, for the sync engine. Cheap to
/// clone; clones share what they learnt (the configured folder, the link keys seen).
#[derive(Clone)]
pub struct GraphContacts {
    client: MicrosoftClient,
    page_size: usize,
    /// Whether photos are synced (see [`GraphContacts::with_photos`]).
    photos: bool,
    /// The configured folder, once found.
    configured: Arc<Mutex<Option<CollectionInfo>>>,
    /// The contacts seen with their extended properties read: their link key and kept
    /// usages, if any. A delta page holding a contact not in here triggers one listing of
    /// the extended properties.
    known: Arc<Mutex<HashMap<ItemId, Seen>>>,
}

impl fmt::Debug for GraphContacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphContacts")
            .field("client", &self.client)
            .field("page_size", &self.page_size)
            .field("photos", &self.photos)
            .finish_non_exhaustive()
    }
}

impl GraphContacts {
    /// The contact folders and contacts of `client`'s mailbox.
    pub fn new(client: MicrosoftClient) -> Self {
        GraphContacts {
            client,
            page_size: MAX_CONTACT_PAGE_SIZE,
            photos: false,
            configured: Arc::new(Mutex::new(None)),
            known: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Asks for delta pages of at most `size` contacts (1 to [`MAX_CONTACT_PAGE_SIZE`];
    /// the default is the maximum) when the engine asks for no size.
    #[must_use]
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.clamp(1, MAX_CONTACT_PAGE_SIZE);
        self
    }

    /// Syncs photos too: the capabilities then hold the photo field, creates and updates
    /// `PUT` it (one request, and one more to read the new `@odata.etag`), and `get` reads
    /// it (one more request). Graph cannot remove a contact photo: an update removing a
    /// photo Outlook holds fails with [`ErrorKind::Unsupported`] and writes nothing, so
    /// the person is told to remove it in Outlook.
    #[must_use]
    pub fn with_photos(mut self) -> Self {
        self.photos = true;
        self
    }

    /// The client.
    pub fn client(&self) -> &MicrosoftClient {
        &self.client
    }

    /// The default Contacts folder: `/me/contacts`, with the collection id
    /// [`DEFAULT_CONTACT_FOLDER`]. Costs no request (Graph documents no read of the default
    /// folder itself; [`check_folder`](GraphContacts::check_folder) tells whether it answers).
    ///
    /// # Errors
    /// None today; kept fallible for a folder that must be read.
    pub async fn default_folder(&self) -> Result<CollectionInfo> {
        Ok(CollectionInfo {
            id: CollectionId::new(DEFAULT_CONTACT_FOLDER)?,
            name: DEFAULT_FOLDER_NAME.to_owned(),
            writable: true,
            primary: true,
        })
    }

    /// Reads one contact of `folder` (`$top=1`): whether the folder answers, for the
    /// diagnostics.
    ///
    /// # Errors
    /// The request's errors ([`ErrorKind::NotFound`] for a folder that is gone).
    pub async fn check_folder(&self, folder: &CollectionId) -> Result<()> {
        let mut url = self.contacts_url(folder);
        url.query_pairs_mut()
            .append_pair("$select", "id")
            .append_pair("$top", "1");
        self.client
            .get_json(url, "reading the contact folder")
            .await
            .map(|_| ())
    }

    /// The child folders of the default folder, every page.
    async fn child_folders(&self) -> Result<Vec<CollectionInfo>> {
        let mut out = Vec::new();
        let mut url = Some(self.client.url(["me", "contactFolders"]));
        while let Some(next) = url.take() {
            let body = self
                .client
                .get_json(next, "listing contact folders")
                .await?;
            for folder in items(&body) {
                out.extend(folder_info(folder, false)?);
            }
            url = next_link(&body)?;
        }
        Ok(out)
    }

    /// The folder to sync: the one named by
    /// [`MicrosoftConfig::contact_folder`](crate::MicrosoftConfig::contact_folder)
    /// (compared without case, as Outlook does), or the default folder when none is named.
    /// Found once, then kept.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no folder has the configured name (create it in
    /// Outlook, or with [`ensure_folder`](GraphContacts::ensure_folder));
    /// [`ErrorKind::InvalidInput`] for an empty name; the listing's errors.
    pub async fn configured_folder(&self) -> Result<CollectionInfo> {
        if let Some(found) = lock(&self.configured).clone() {
            return Ok(found);
        }
        let found = match &self.client.config().contact_folder {
            None => self.default_folder().await?,
            Some(name) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(Error::invalid_input(
                        "the configured contact folder name is empty: name a folder or \
                         leave it unset for the default Contacts folder",
                    ));
                }
                self.folder_by_name(name).await?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no contact folder is named {name:?}: create it in Outlook (or \
                             with GraphContacts::ensure_folder), or fix the configured name"
                        ),
                    )
                })?
            }
        };
        *lock(&self.configured) = Some(found.clone());
        Ok(found)
    }

    async fn folder_by_name(&self, name: &str) -> Result<Option<CollectionInfo>> {
        Ok(self
            .address_books()
            .await?
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case(name)))
    }

    /// The folder with this name, created (as a child of the default folder) when missing.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty name; the requests' errors.
    pub async fn ensure_folder(&self, name: &str) -> Result<CollectionInfo> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid_input("a contact folder needs a name"));
        }
        if let Some(found) = self.folder_by_name(name).await? {
            return Ok(found);
        }
        let request = ApiRequest::post(self.client.url(["me", "contactFolders"]))
            .json(&json!({ "displayName": name }))?;
        match self
            .client
            .send(request, &[], "creating a contact folder")
            .await
        {
            Ok(response) => {
                let value: Value = crmsync_http::parse_json(&response)?;
                folder_info(&value, false)?
                    .ok_or_else(|| provider("the created contact folder has no id or name"))
            }
            // Created meanwhile by someone else (409 ErrorFolderExists).
            Err(e) if e.kind() == &ErrorKind::Conflict => self.folder_by_name(name).await?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// The path of a folder's contacts, and `tail` under it: `/me/contacts/…` for the
    /// default folder, `/me/contactFolders/{id}/contacts/…` for another (MS-CON-1/2/4).
    fn folder_url(&self, folder: &CollectionId, tail: &[&str]) -> Url {
        let head: Vec<&str> = if folder.as_str() == DEFAULT_CONTACT_FOLDER {
            vec!["me", "contacts"]
        } else {
            vec!["me", "contactFolders", folder.as_str(), "contacts"]
        };
        self.client
            .url(head.into_iter().chain(tail.iter().copied()))
    }

    fn contacts_url(&self, folder: &CollectionId) -> Url {
        self.folder_url(folder, &[])
    }

    fn contact_url(&self, folder: &CollectionId, id: &ItemId) -> Url {
        self.folder_url(folder, &[id.as_str()])
    }

    fn photo_url(&self, folder: &CollectionId, id: &ItemId) -> Url {
        self.folder_url(folder, &[id.as_str(), "photo", "$value"])
    }

    /// Remembers what a contact's expanded extended properties say.
    fn remember(&self, id: &ItemId, value: &Value) {
        lock(&self.known).insert(id.clone(), seen_of(value));
    }

    /// After a write answered with `value`: remembers what the contact carries now (what
    /// the answer's extended properties say, else what was written, else what was known),
    /// and gives the answer's record its e-mail usages and link key.
    fn remember_write(
        &self,
        item: &mut Stored<Contact>,
        value: &Value,
        link_key: Option<&LinkKey>,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) {
        let answered = seen_of(value);
        let written = usages_written(fields).then(|| usages_from_graph(&usages_to_graph(record)));
        let mut known = lock(&self.known);
        let entry = known.entry(item.id.clone()).or_default();
        if let Some(key) = answered.link_key.or_else(|| link_key.cloned()) {
            entry.link_key = Some(key);
        }
        if let Some(usages) = answered.usages.or(written) {
            entry.usages = Some(usages);
        }
        if let Some(usages) = &entry.usages {
            apply_usages(&mut item.record, usages);
        }
        if item.link_key.is_none() {
            item.link_key = entry.link_key.clone();
        }
    }

    /// The contact with its link key, without its photo; `None` when it is not in the folder.
    async fn read(&self, folder: &CollectionId, id: &ItemId) -> Result<Option<Stored<Contact>>> {
        let mut url = self.contact_url(folder, id);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        match self.client.get_json(url, "reading a contact").await {
            Ok(value) => {
                let item = stored(&value)?;
                self.remember(&item.id, &value);
                Ok(Some(item))
            }
            Err(e) if e.kind() == &ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The contact's photo; `None` when it has none (404).
    async fn read_photo(&self, folder: &CollectionId, id: &ItemId) -> Result<Option<Photo>> {
        let request = ApiRequest::get(self.photo_url(folder, id));
        let response = match self
            .client
            .send(request, &[], "reading a contact photo")
            .await
        {
            Ok(response) => response,
            Err(e) if e.kind() == &ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let media_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_else(|| "image/jpeg".to_owned());
        Photo::new(response.body().clone(), media_type)
            .map(Some)
            .map_err(|e| Error::invalid_record(Some(ContactField::Photo.name()), e.to_string()))
    }

    async fn write_photo(&self, folder: &CollectionId, id: &ItemId, photo: &Photo) -> Result<()> {
        let request = ApiRequest::put(self.photo_url(folder, id))
            .body(photo.media_type(), photo.bytes().to_vec())?;
        self.client
            .send(request, &[], "writing a contact photo")
            .await
            .map(|_| ())
    }

    /// After a photo write (which gives the contact a new change key): the contact read
    /// again, carrying `photo`.
    async fn reread_with(
        &self,
        folder: &CollectionId,
        id: &ItemId,
        photo: Option<Photo>,
    ) -> Result<Stored<Contact>> {
        let mut item = self.read(folder, id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("contact {id} disappeared while its photo was written"),
            )
        })?;
        item.record.photo = photo;
        Ok(item)
    }

    /// Lists the folder with the link-key property expanded and remembers every
    /// contact's link key.
    async fn learn_link_keys(&self, folder: &CollectionId) -> Result<()> {
        let mut url = self.contacts_url(folder);
        url.query_pairs_mut()
            .append_pair("$select", "id")
            .append_pair("$expand", &expand_link())
            .append_pair("$top", &SCAN_PAGE_SIZE.to_string());
        let mut next = Some(url);
        let mut learnt = Vec::new();
        while let Some(url) = next.take() {
            let body = self
                .client
                .get_json(url, "listing the link keys of contacts")
                .await?;
            for item in items(&body) {
                let Some(id) = item.get("id").and_then(Value::as_str) else {
                    continue;
                };
                learnt.push((ItemId::new(id)?, seen_of(item)));
            }
            next = next_link(&body)?;
        }
        lock(&self.known).extend(learnt);
        Ok(())
    }

    /// How one write of a batch is sent.
    fn plan_write(&self, collection: &CollectionId, op: &WriteOp<Contact>) -> Planned {
        let caps = self.capabilities();
        match op {
            WriteOp::Create { record, link_key } => {
                if let Err(e) = record.validate() {
                    return Planned::Failed(e);
                }
                let record = record.fit(&caps).record;
                if self.photos && record.photo.is_some() {
                    return Planned::Alone;
                }
                let body = Self::create_body(&record, link_key);
                let mut url = self.contacts_url(collection);
                url.query_pairs_mut().append_pair("$expand", &expand_link());
                Planned::Batched(BatchRequest {
                    method: "POST",
                    url,
                    if_match: None,
                    body: Some(Value::Object(body)),
                })
            }
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => {
                if let Err(e) = record.validate() {
                    return Planned::Failed(e);
                }
                // With photos, the answer needs the photo read (or written) as well.
                if self.photos {
                    return Planned::Alone;
                }
                let record = record.fit(&caps).record;
                let body = Self::update_body(&record, fields);
                let mut url = self.contact_url(collection, id);
                url.query_pairs_mut().append_pair("$expand", &expand_link());
                Planned::Batched(BatchRequest {
                    method: "PATCH",
                    url,
                    if_match: Some(expected.as_str().to_owned()),
                    body: Some(Value::Object(body)),
                })
            }
            WriteOp::Delete { id, expected } => Planned::Batched(BatchRequest {
                method: "DELETE",
                url: self.contact_url(collection, id),
                if_match: Some(expected.as_str().to_owned()),
                body: None,
            }),
        }
    }

    /// The outcome of one write from its `$batch` answer.
    fn batch_outcome(
        &self,
        op: &WriteOp<Contact>,
        answer: &BatchAnswer,
    ) -> Result<WriteOutcome<Contact>> {
        let what = match op {
            WriteOp::Create { .. } => "creating a contact",
            WriteOp::Update { .. } => "updating a contact",
            WriteOp::Delete { .. } => "deleting a contact",
        };
        if !answer.is_success() {
            return Err(answer.error(what));
        }
        match op {
            WriteOp::Create { record, link_key } => {
                let mut item = stored(&answer.body)?;
                let record = record.fit(&self.capabilities()).record;
                let all = ContactField::ALL.iter().copied().collect();
                self.remember_write(&mut item, &answer.body, Some(link_key), &record, &all);
                Ok(WriteOutcome::Written(item))
            }
            WriteOp::Update { record, fields, .. } => {
                let mut item = stored(&answer.body)?;
                let record = record.fit(&self.capabilities()).record;
                self.remember_write(&mut item, &answer.body, None, &record, fields);
                Ok(WriteOutcome::Written(item))
            }
            WriteOp::Delete { id, .. } => {
                lock(&self.known).remove(id);
                Ok(WriteOutcome::Deleted)
            }
        }
    }

    /// One write on its own, through the single-write methods.
    async fn write_alone(
        &self,
        collection: &CollectionId,
        op: &WriteOp<Contact>,
    ) -> Result<WriteOutcome<Contact>> {
        match op {
            WriteOp::Create { record, link_key } => self
                .create(collection, record, link_key)
                .await
                .map(WriteOutcome::Written),
            WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } => self
                .update(collection, id, expected, record, fields)
                .await
                .map(WriteOutcome::Written),
            WriteOp::Delete { id, expected } => self
                .delete(collection, id, expected)
                .await
                .map(|()| WriteOutcome::Deleted),
        }
    }

    /// At most [`MAX_BATCH`] writes: one `$batch` for those that fit in one, the others
    /// on their own.
    async fn write_chunk(
        &self,
        collection: &CollectionId,
        ops: &[WriteOp<Contact>],
    ) -> Vec<Result<WriteOutcome<Contact>>> {
        let mut results: Vec<Option<Result<WriteOutcome<Contact>>>> = Vec::new();
        let mut requests = Vec::new();
        let mut batched = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.plan_write(collection, op) {
                Planned::Failed(e) => results.push(Some(Err(e))),
                Planned::Alone => results.push(Some(self.write_alone(collection, op).await)),
                Planned::Batched(request) => {
                    results.push(None);
                    requests.push(request);
                    batched.push(i);
                }
            }
        }
        if !requests.is_empty() {
            match self.client.batch(requests).await {
                Ok(answers) => {
                    for (answer, &i) in answers.iter().zip(&batched) {
                        results[i] = Some(self.batch_outcome(&ops[i], answer));
                    }
                }
                Err(e) => {
                    for &i in &batched {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(provider("a write of the batch got no outcome"))))
            .collect()
    }

    fn capabilities_literal(photos: bool) -> Capabilities {
        let mut caps = Capabilities::unlimited("microsoft");
        // Contacts delta with a deltaLink (MS-CON-2).
        caps.incremental = true;
        // JSON batching: 20 requests per `$batch` (MS-GEN-1).
        caps.max_batch = MAX_BATCH;
        caps.max_page_size = Some(MAX_CONTACT_PAGE_SIZE);
        // Every field of the model has a Graph home (see `contact_mapping`); the photo
        // through `photo/$value` (MS-CON-4), only when asked for: it cannot be removed.
        caps.fields = Some(
            ContactField::ALL
                .iter()
                .filter(|f| photos || **f != ContactField::Photo)
                .map(|f| f.name().to_owned())
                .collect(),
        );
        // Outlook keeps E-mail 1..3 (MS-CON-3, commonly reported): the engine reports the
        // others instead of Graph dropping them silently.
        caps.max_emails = Some(MAX_EMAILS);
        // homeAddress, businessAddress, otherAddress (MS-CON-3).
        caps.max_addresses = Some(3);
        // singleValueExtendedProperties on contacts (MS-CON-5, MS-CAL-22).
        caps.link_keys = true;
        // Every call goes through crmsync-http's one retry policy (Retry-After honoured).
        caps.retries_itself = true;
        caps
    }

    /// The body of a create: every field, the link key and the usages.
    fn create_body(record: &Contact, link_key: &LinkKey) -> Map<String, Value> {
        let all: BTreeSet<ContactField> = ContactField::ALL.iter().copied().collect();
        let mut body = contact_to_graph(record, &Self::json_fields(&all));
        if let Some(props) = extended_properties(Some(link_key), record, &all) {
            body.insert("singleValueExtendedProperties".into(), props);
        }
        body
    }

    /// The body of an update: the fields asked for (and the usages with the addresses and
    /// numbers).
    fn update_body(record: &Contact, fields: &BTreeSet<ContactField>) -> Map<String, Value> {
        let mut body = contact_to_graph(record, &Self::json_fields(fields));
        if let Some(props) = extended_properties(None, record, fields) {
            body.insert("singleValueExtendedProperties".into(), props);
        }
        body
    }

    /// The fields written as JSON (all but the photo).
    fn json_fields(fields: &BTreeSet<ContactField>) -> BTreeSet<ContactField> {
        fields
            .iter()
            .copied()
            .filter(|f| *f != ContactField::Photo)
            .collect()
    }
}

#[async_trait]
impl RecordStore<Contact> for GraphContacts {
    fn capabilities(&self) -> Capabilities {
        Self::capabilities_literal(self.photos)
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.address_books().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<Contact>> {
        let url = match (&request.page_token, &request.cursor) {
            (Some(page), _) => Url::parse(page.as_str())
                .map_err(|_| Error::invalid_input("the page token is not a Graph nextLink"))?,
            (None, Some(cursor)) => Url::parse(cursor.as_str())
                .map_err(|_| Error::invalid_input("the cursor is not a Graph deltaLink"))?,
            // No query options on the first call: `/me/contacts/delta` was seen refusing
            // them (MS-CON-2).
            (None, None) => self.folder_url(collection, &["delta"]),
        };
        let size = request
            .page_size
            .unwrap_or(self.page_size)
            .clamp(1, MAX_CONTACT_PAGE_SIZE);
        let prefer = format!("odata.maxpagesize={size}");
        let response = self
            .client
            .send(ApiRequest::get(url), &[&prefer], "listing contact changes")
            .await?;
        let body: Value = crmsync_http::parse_json(&response)?;

        // Delta carries no extended properties: learn the link keys of contacts not seen
        // yet, with one listing of the folder.
        let unseen = {
            let known = lock(&self.known);
            items(&body).any(|item| {
                item.get("@removed").is_none()
                    && item
                        .get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| ItemId::new(id).is_ok_and(|id| !known.contains_key(&id)))
            })
        };
        if unseen {
            self.learn_link_keys(collection).await?;
        }

        let mut page = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next: Continuation::Done(Cursor::new("pending")?),
        };
        for item in items(&body) {
            let id = match item.get("id").and_then(Value::as_str).map(ItemId::new) {
                Some(Ok(id)) => id,
                _ => {
                    page.unreadable.push(Unreadable {
                        id: None,
                        error: Error::invalid_record(None, "a delta item without an id"),
                    });
                    continue;
                }
            };
            if let Some(removed) = item.get("@removed") {
                let reason = match removed.get("reason").and_then(Value::as_str) {
                    Some("deleted") => {
                        lock(&self.known).remove(&id);
                        RemovalReason::Deleted
                    }
                    // `changed`: moved to Deleted Items or to another folder; `get` tells.
                    _ => RemovalReason::Unknown,
                };
                page.removals.push(Removal { id, reason });
                continue;
            }
            let present = fields_present(item);
            let read = if present.half {
                match self.get(collection, &id).await {
                    Ok(Some(item)) => Ok(Upsert::full(item)),
                    Ok(None) => {
                        page.removals.push(Removal {
                            id,
                            reason: RemovalReason::Unknown,
                        });
                        continue;
                    }
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => Err(e),
                }
            } else {
                stored(item).map(|mut stored| {
                    // Delta carries no extended properties: what was learnt of them.
                    if let Some(seen) = lock(&self.known).get(&id) {
                        stored.link_key = stored.link_key.take().or_else(|| seen.link_key.clone());
                        if let Some(usages) = &seen.usages {
                            apply_usages(&mut stored.record, usages);
                        }
                    }
                    // Never the photo: listings do not fetch it.
                    let whole = !self.photos && present.fields.len() + 1 == ContactField::ALL.len();
                    Upsert {
                        item: stored,
                        sent: (!whole).then_some(present.fields),
                        modified: modified(item),
                    }
                })
            };
            match read {
                Ok(upsert) => page.upserts.push(upsert),
                Err(error) => page.unreadable.push(Unreadable {
                    id: Some(id),
                    error,
                }),
            }
        }
        let link = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        page.next = match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => Continuation::NextPage(PageToken::new(next)?),
            (None, Some(delta)) => Continuation::Done(Cursor::new(delta)?),
            // A round that ends without a link: nothing is lost, the engine lists in full
            // next time and says so.
            (None, None) => Continuation::DoneWithoutCursor,
        };
        Ok(page)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<Contact>>> {
        let Some(mut item) = self.read(collection, id).await? else {
            return Ok(None);
        };
        if self.photos {
            item.record.photo = self.read_photo(collection, id).await?;
        }
        Ok(Some(item))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &Contact,
        link_key: &LinkKey,
    ) -> Result<Stored<Contact>> {
        record.validate()?;
        let record = record.fit(&self.capabilities()).record;
        let body = Self::create_body(&record, link_key);
        let mut url = self.contacts_url(collection);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        let request = ApiRequest::post(url).json(&body)?;
        let response = self.client.send(request, &[], "creating a contact").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        let mut item = stored(&value)?;
        let all = ContactField::ALL.iter().copied().collect();
        self.remember_write(&mut item, &value, Some(link_key), &record, &all);
        if let (true, Some(photo)) = (self.photos, &record.photo) {
            self.write_photo(collection, &item.id, photo).await?;
            item = self
                .reread_with(collection, &item.id, Some(photo.clone()))
                .await?;
        }
        Ok(item)
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) -> Result<Stored<Contact>> {
        record.validate()?;
        let record = record.fit(&self.capabilities()).record;
        let photo_written = self.photos && fields.contains(&ContactField::Photo);
        if photo_written
            && record.photo.is_none()
            && self.read_photo(collection, id).await?.is_some()
        {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "Microsoft Graph cannot remove the photo of contact {id}: remove it in \
                     Outlook, or sync without photos"
                ),
            ));
        }
        // An empty PATCH still checks If-Match, so a photo-only write has its precondition.
        let body = Self::update_body(&record, fields);
        let mut url = self.contact_url(collection, id);
        url.query_pairs_mut().append_pair("$expand", &expand_link());
        let request = ApiRequest::patch(url)
            .header("If-Match", expected.as_str())?
            .json(&body)?;
        let response = self.client.send(request, &[], "updating a contact").await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        let mut item = stored(&value)?;
        self.remember_write(&mut item, &value, None, &record, fields);
        if !self.photos {
            return Ok(item);
        }
        match (&record.photo, photo_written) {
            (Some(photo), true) => {
                self.write_photo(collection, id, photo).await?;
                item = self
                    .reread_with(collection, id, Some(photo.clone()))
                    .await?;
            }
            _ => item.record.photo = self.read_photo(collection, id).await?,
        }
        Ok(item)
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        let request = ApiRequest::delete(self.contact_url(collection, id))
            .header("If-Match", expected.as_str())?;
        self.client.send(request, &[], "deleting a contact").await?;
        lock(&self.known).remove(id);
        Ok(())
    }

    /// Lists the folder filtered on the link-key property and returns the contact whose
    /// property holds exactly `link_key`: the server's answer is checked, not trusted (a
    /// server may ignore the filter and list every contact, and Graph compares values
    /// without case), so a lookup never links a CRM record to another contact.
    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<Contact>>> {
        let key = link_key.as_str().replace('\'', "''");
        let filter = format!(
            "singleValueExtendedProperties/any(ep: ep/id eq '{CONTACT_LINK_PROPERTY}' and ep/value eq '{key}')"
        );
        let mut url = self.contacts_url(collection);
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$expand", &expand_link());
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let body = self
                .client
                .get_json(url, "finding a contact by its link key")
                .await?;
            let found = items(&body)
                .find(|item| extended(item, CONTACT_LINK_PROPERTY) == Some(link_key.as_str()));
            if let Some(found) = found {
                let mut item = stored(found)?;
                self.remember(&item.id, found);
                if self.photos {
                    item.record.photo = self.read_photo(collection, &item.id).await?;
                }
                return Ok(Some(item));
            }
            next = next_link(&body)?;
        }
        Ok(None)
    }

    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<Contact>>,
    ) -> Vec<Result<WriteOutcome<Contact>>> {
        let mut results = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(MAX_BATCH) {
            results.extend(self.write_chunk(collection, chunk).await);
        }
        results
    }
}

#[async_trait]
impl ContactStore for GraphContacts {
    /// The default Contacts folder (primary) and its child folders.
    async fn address_books(&self) -> Result<Vec<CollectionInfo>> {
        let mut out = vec![self.default_folder().await?];
        out.extend(self.child_folders().await?);
        Ok(out)
    }

    /// The mailbox's master categories (`/me/outlook/masterCategories`): the groups a
    /// contact's `categories` name. The same for every folder.
    async fn groups(&self, _address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        let mut out = Vec::new();
        let mut url = Some(self.client.url(["me", "outlook", "masterCategories"]));
        while let Some(next) = url.take() {
            let body = self.client.get_json(next, "listing categories").await?;
            for category in items(&body) {
                let (Some(id), Some(name)) = (
                    category.get("id").and_then(Value::as_str),
                    category.get("displayName").and_then(Value::as_str),
                ) else {
                    continue;
                };
                out.push(CollectionInfo {
                    id: CollectionId::new(id)?,
                    name: name.to_owned(),
                    writable: true,
                    primary: false,
                });
            }
            url = next_link(&body)?;
        }
        Ok(out)
    }

    /// Adds a master category without a colour.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when the mailbox has a category of that name.
    async fn create_group(
        &self,
        _address_book: &CollectionId,
        name: &str,
    ) -> Result<CollectionInfo> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid_input("a category needs a name"));
        }
        let request = ApiRequest::post(self.client.url(["me", "outlook", "masterCategories"]))
            .json(&json!({"displayName": name, "color": "none"}))?;
        let response = self
            .client
            .send(request, &[], "creating a category")
            .await?;
        let value: Value = crmsync_http::parse_json(&response)?;
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| provider("a created category without an id"))?;
        Ok(CollectionInfo {
            id: CollectionId::new(id)?,
            name: name.to_owned(),
            writable: true,
            primary: false,
        })
    }
}
