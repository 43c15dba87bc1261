//! [`GoogleContacts`]: Google contacts (People API) as a [`ContactStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_core::{
    Capabilities, ChangePage, ChangesRequest, Clock, CollectionId, CollectionInfo, Contact,
    ContactField, ContactStore, Continuation, Cursor, Error, ErrorKind, Field, ItemId, LeftOut,
    LinkKey, Photo, Record, RecordStore, Removal, RemovalReason, Result, Stored, SystemClock,
    Unreadable, Upsert, Version, WriteOp, WriteOutcome,
};
use serde_json::{Map, Value, json};
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
/// `batchDeleteContacts` takes at most 500 resource names (G-PPL-15).
pub const MAX_CONTACT_DELETE_BATCH: usize = 500;
/// `connections.list` pages hold at most 1000 people (G-PPL-1).
pub const MAX_CONTACT_PAGE: usize = 1000;
/// The oldest full sync a People sync token is used after. Google kills sync tokens 7 days
/// after the full sync they descend from (G-PPL-5); a day of margin covers long runs and
/// clock skew, so a token is replaced by a reconciling full listing before it dies.
pub const SYNC_TOKEN_MAX_AGE: Duration = Duration::from_secs(6 * 24 * 3600);

/// The cursor of this store: `people1:<unix seconds of the full sync>:<nextSyncToken>`.
/// The full sync's time travels with the token, through every incremental listing, because
/// that is what Google's expiry counts from.
const CURSOR_PREFIX: &str = "people1:";

/// A contact group: its resource name and name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    resource_name: String,
    name: String,
}

/// The system group every contact belongs to, shown as "Contacts" in Google Contacts
/// (G-PPL-19).
pub const MY_CONTACTS: &str = "contactGroups/myContacts";
/// The system group of starred contacts (G-PPL-19); one of the two system groups contacts
/// can be added to.
pub const STARRED: &str = "contactGroups/starred";

/// Which contacts of a Google account are synced, from the configured name
/// ([`GoogleConfig::contact_group`](crate::GoogleConfig::contact_group)).
///
/// [`ContactSelection::from_name`] reads the name; [`GoogleContacts::selection`] and
/// [`GoogleContacts::existing_selection`] resolve it against the account. The sync, the
/// diagnostics and the CLI go through them, so they never disagree.
///
/// | name (without case) | selection |
/// |---|---|
/// | none, empty, `Contacts`, `My Contacts`, `myContacts`, `contactGroups/myContacts` | the whole address book: no filter, no group, no group request |
/// | `Starred`, `contactGroups/starred` | the starred contacts (system group, never created) |
/// | anything else | the members of the user contact group of that name (exact case) |
///
/// The system names win over a user group of the same name. The deprecated system groups
/// (friends, family, coworkers…) cannot receive contacts (G-PPL-19) and are not offered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactSelection {
    /// Every contact of the account (`people/me` connections).
    AddressBook,
    /// The members of one contact group.
    Group {
        /// The group's name as configured (a user group's exact name, or `starred`).
        name: String,
        /// Its resource name: known for a system group; for a user group, once resolved
        /// against the account (`None`: no group has that name yet).
        resource_name: Option<String>,
        /// Whether it is a system group (never created by the store).
        system: bool,
    },
}

impl ContactSelection {
    /// What a configured name selects, without asking Google (see the type's table).
    pub fn from_name(name: Option<&str>) -> ContactSelection {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return ContactSelection::AddressBook;
        };
        match name.to_ascii_lowercase().as_str() {
            "contacts" | "my contacts" | "mycontacts" | "contactgroups/mycontacts" => {
                ContactSelection::AddressBook
            }
            "starred" | "contactgroups/starred" => ContactSelection::Group {
                name: "starred".into(),
                resource_name: Some(STARRED.into()),
                system: true,
            },
            _ => ContactSelection::Group {
                name: name.to_owned(),
                resource_name: None,
                system: false,
            },
        }
    }

    /// The name of the synced set as a person reads it: "Contacts" for the whole address
    /// book, else the group's name.
    pub fn display_name(&self) -> &str {
        match self {
            ContactSelection::AddressBook => "Contacts",
            ContactSelection::Group { name, .. } => name,
        }
    }

    /// The user group whose name this selection names (to look up or create).
    fn user_group_name(&self) -> Option<&str> {
        match self {
            ContactSelection::Group {
                name,
                system: false,
                ..
            } => Some(name),
            _ => None,
        }
    }
}

impl std::fmt::Display for ContactSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContactSelection::AddressBook => {
                write!(f, "the whole address book (\"Contacts\", {MY_CONTACTS})")
            }
            ContactSelection::Group {
                name,
                resource_name: Some(rn),
                system: true,
            } => write!(f, "the {name} contacts (system group {rn})"),
            ContactSelection::Group {
                name,
                resource_name: Some(rn),
                ..
            } => write!(f, "the members of contact group {name:?} ({rn})"),
            ContactSelection::Group { name, .. } => {
                write!(f, "the members of contact group {name:?} (not created yet)")
            }
        }
    }
}

/// Google contacts of one account, as a [`ContactStore`].
///
/// - One collection, [`ADDRESS_BOOK`] (`people/me`); contact groups are the contact's
///   `groups` (created on Google when missing), listed by
///   [`groups`](ContactStore::groups).
/// - [`GoogleConfig::contact_group`](crate::GoogleConfig::contact_group) selects the
///   synced contacts ([`ContactSelection`]): "Contacts" (or nothing) is the whole address
///   book; a group name syncs only that group's members: listings leave the others out
///   (counted: [`left_out`](GoogleContacts::left_out); a member that leaves the group is
///   reported as having left the synced set, never as deleted), contacts we create join
///   the group (a user group is created on Google when missing), and the group is not one
///   of the contact's `groups`.
/// - The cursor carries the `nextSyncToken` of `connections.list` (`requestSyncToken`)
///   and the time of the full sync it descends from. Google kills the token 7 days after
///   that full sync (400 `EXPIRED_SYNC_TOKEN`, G-PPL-5); from [`SYNC_TOKEN_MAX_AGE`] on, the
///   store answers [`ErrorKind::CursorExpired`] itself, without a request, so the engine
///   reconciles a full listing before the token dies. Deleted contacts come back as
///   `metadata.deleted` tombstones: removals. A listing whose last page has no
///   `nextSyncToken` (a server other than Google) ends with
///   [`Continuation::DoneWithoutCursor`]: the engine lists in full again on the next run.
/// - A contact whose resource name changed (`metadata.previousResourceNames`, G-PPL-4) is
///   still reached under its former names by [`get`](RecordStore::get), updates and
///   deletes.
/// - The link key lives in `clientData` (`crmsync_link`). People has no client-chosen
///   ids: an ambiguous create is recovered by [`find_by_link_key`](RecordStore::find_by_link_key),
///   which scans the connections.
/// - Updates send `updatePersonFields` listing only the fields asked for, with the
///   current etag (a stale one is 400 `FAILED_PRECONDITION`: [`ErrorKind::PreconditionFailed`]).
///   [`write_batch`](RecordStore::write_batch) uses `batchCreateContacts`,
///   `batchUpdateContacts` (one request per set of fields written) and
///   `batchDeleteContacts`, with a result per contact. Deletes have no precondition at
///   Google: the etag is checked by a read first.
/// - Photos are written with `updateContactPhoto` / `deleteContactPhoto` (JPEG or PNG
///   bytes; anything else is an [`ErrorKind::InvalidRecord`] of field `photo`). Google
///   serves back a resized copy, never the bytes written, so a person's own photo is
///   read as the photo this store wrote while Google still serves it at the same URL;
///   otherwise (written elsewhere, or before a restart) listings report the contact
///   without its photo field (the engine keeps the photo it last synced). A contact with
///   only Google's generated monogram has no photo.
/// - Every mutation of the account waits for the previous one, across the store
///   instances sharing one [`GoogleClient`] (G-PPL-9: "Mutate requests for the same user
///   should be sent sequentially").
pub struct GoogleContacts {
    client: GoogleClient,
    clock: Arc<dyn Clock>,
    groups: Mutex<Option<Vec<Group>>>,
    /// What the configuration selects (before it is resolved against the account).
    selection: ContactSelection,
    /// Contacts the last listing left out because they are outside the selection.
    left_out: std::sync::atomic::AtomicU64,
    /// The last person seen per resource name (for partial `names` writes and etag checks).
    seen: Mutex<HashMap<ItemId, (Value, Contact)>>,
    /// The photos this store wrote, with the URL Google served them at just after.
    photos: Mutex<HashMap<ItemId, (String, Photo)>>,
    /// Former resource names to current ones, from `metadata.previousResourceNames`.
    renamed: Mutex<HashMap<ItemId, ItemId>>,
    /// The etag a renamed contact had under its former name, to its etag once renamed,
    /// kept only when the rename changed nothing else we read: a write based on the old
    /// etag is then based on the renamed person too.
    renamed_versions: Mutex<HashMap<(ItemId, Version), Version>>,
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

fn changed_since(id: &ItemId, expected: &Version) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!("contact {id} changed since version {expected}"),
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

/// Wraps Google's sync token with the time of the full sync it descends from.
fn wrap_cursor(token: &Cursor, full_sync_at: DateTime<Utc>) -> Result<Cursor> {
    Cursor::new(format!(
        "{CURSOR_PREFIX}{}:{}",
        full_sync_at.timestamp(),
        token.as_str()
    ))
}

/// Google's sync token and the time of its full sync (unknown for a bare token).
fn unwrap_cursor(cursor: &Cursor) -> (&str, Option<DateTime<Utc>>) {
    let parsed = cursor
        .as_str()
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(secs, token)| {
            let at = DateTime::<Utc>::from_timestamp(secs.parse().ok()?, 0)?;
            Some((token, Some(at)))
        });
    parsed.unwrap_or((cursor.as_str(), None))
}

/// The photo write an update or create carries.
#[derive(Debug, Clone)]
enum PhotoWrite {
    /// `updateContactPhoto` with this photo.
    Set(Photo),
    /// `deleteContactPhoto`.
    Delete,
}

/// The photo write of `record`, checked: Google takes JPEG and PNG images only, and
/// looks at the bytes, not at a label (G-PPL-16).
fn photo_write(record: &Contact) -> Result<PhotoWrite> {
    let Some(photo) = &record.photo else {
        return Ok(PhotoWrite::Delete);
    };
    let bytes = photo.bytes();
    let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
    let png = bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
    if !jpeg && !png {
        return Err(Error::invalid_record(
            Some("photo"),
            format!(
                "Google contacts take JPEG or PNG photos; this one ({}) is neither: convert it \
                 in the CRM",
                photo.media_type()
            ),
        ));
    }
    Ok(PhotoWrite::Set(photo.clone()))
}

/// What is known of a listed person's photo.
enum PhotoState {
    /// No photo of its own.
    None,
    /// The photo this store wrote, still in place.
    Known(Photo),
    /// A photo whose bytes are not known (written elsewhere, or before a restart).
    Unknown,
}

/// The photo's bytes in standard base64 (the People API's `bytes` format), as the
/// model serialises them.
fn photo_base64(photo: &Photo) -> Result<String> {
    serde_json::to_value(photo)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| Error::invalid_record(Some("photo"), "the photo cannot be encoded"))
}

/// An update ready to send: the person body and mask, and the photo write.
#[derive(Debug, Clone)]
struct PreparedUpdate {
    /// The contact's current resource name.
    id: ItemId,
    expected: Version,
    /// `updatePersonFields`; empty when only the photo (or nothing) is written.
    mask: String,
    body: Map<String, Value>,
    photo: Option<PhotoWrite>,
}

/// The error of one contact in a batch answer (`PersonResponse.status`, a google.rpc
/// status: 5 NOT_FOUND, 9 FAILED_PRECONDITION).
fn item_error(id: &str, status: &Value, what: &str) -> Error {
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no reason given");
    let kind = match status.get("code").and_then(Value::as_i64) {
        Some(5) => ErrorKind::NotFound,
        Some(9) => ErrorKind::PreconditionFailed,
        Some(3) => {
            return Error::invalid_record(None, format!("{what} refused contact {id}: {message}"));
        }
        _ => ErrorKind::Provider,
    };
    Error::new(kind, format!("{what} refused contact {id}: {message}"))
}

fn item_ok(item: &Value) -> bool {
    item.pointer("/status/code")
        .and_then(Value::as_i64)
        .is_none_or(|c| c == 0)
}

impl GoogleContacts {
    /// The contacts of `client`'s account.
    pub fn new(client: GoogleClient) -> Self {
        GoogleContacts {
            selection: ContactSelection::from_name(client.config().contact_group.as_deref()),
            client,
            clock: Arc::new(SystemClock),
            groups: Mutex::new(None),
            left_out: std::sync::atomic::AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
            photos: Mutex::new(HashMap::new()),
            renamed: Mutex::new(HashMap::new()),
            renamed_versions: Mutex::new(HashMap::new()),
        }
    }

    /// The clock the age of sync tokens is measured with (the engine's clock in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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

    /// The contact's current resource name: `id`, or the name it was renamed to.
    fn resolve(&self, id: &ItemId) -> ItemId {
        let renamed = lock(&self.renamed);
        let mut current = id;
        // Bounded: a cycle of renames must not hang.
        for _ in 0..8 {
            match renamed.get(current) {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        current.clone()
    }

    /// The contact's current resource name and the version `expected` stands for there
    /// (see `renamed_versions`).
    fn resolve_at(&self, id: &ItemId, expected: &Version) -> (ItemId, Version) {
        let current = self.resolve(id);
        if &current == id {
            return (current, expected.clone());
        }
        let version = lock(&self.renamed_versions)
            .get(&(id.clone(), expected.clone()))
            .cloned()
            .unwrap_or_else(|| expected.clone());
        (current, version)
    }

    // ------------------------------------------------------------------ groups

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

    /// What the configuration selects, resolved against the account: a user group's
    /// resource name is looked up (one `contactGroups` request, then kept); the whole
    /// address book and the system groups cost no request. A user group that does not
    /// exist yet has no resource name: nothing is in it, and the first contact this store
    /// creates creates it.
    ///
    /// # Errors
    /// The People API's errors when listing the groups.
    pub async fn selection(&self) -> Result<ContactSelection> {
        let Some(name) = self.selection.user_group_name() else {
            return Ok(self.selection.clone());
        };
        let found = self
            .group_list()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.resource_name);
        Ok(ContactSelection::Group {
            name: name.to_owned(),
            resource_name: found,
            system: false,
        })
    }

    /// [`selection`](Self::selection), where a user group that does not exist is an error:
    /// what a setup check wants (a typo would otherwise sync nothing).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the groups the account has; the People API's
    /// errors.
    pub async fn existing_selection(&self) -> Result<ContactSelection> {
        let selection = self.selection().await?;
        if let ContactSelection::Group {
            name,
            resource_name: None,
            ..
        } = &selection
        {
            let names: Vec<String> = self
                .group_list()
                .await?
                .iter()
                .map(|g| format!("{:?}", g.name))
                .collect();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no contact group named {name:?} (the account has: \"Contacts\" (every \
                     contact), \"Starred\"{}{}): set the name of an existing group, or \
                     \"Contacts\" for the whole address book",
                    if names.is_empty() { "" } else { ", " },
                    names.join(", ")
                ),
            ));
        }
        Ok(selection)
    }

    /// How many contacts the last listing (all its pages) left out because they are
    /// outside the selected group (0 when the whole address book is synced). The engine
    /// cannot report them in the plan and the report yet; they are logged (`info`).
    pub fn left_out(&self) -> u64 {
        self.left_out.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The listing scope: `None` for every contact, `Some(rn)` for a group's members
    /// (`Some(None)`: a group that does not exist yet, so nobody).
    async fn sync_group(&self) -> Result<Option<Option<String>>> {
        Ok(match self.selection().await? {
            ContactSelection::AddressBook => None,
            ContactSelection::Group { resource_name, .. } => Some(resource_name),
        })
    }

    /// The resource names of these group names plus the synced group, creating the
    /// missing groups. Call with the account's write turn held.
    async fn group_resources(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        match &self.selection {
            ContactSelection::AddressBook => {}
            ContactSelection::Group {
                resource_name: Some(rn),
                system: true,
                ..
            } => out.push(rn.clone()),
            ContactSelection::Group { name, .. } => {
                wanted.insert(name);
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut known = self.group_list().await?;
        for name in wanted {
            let found = known.iter().find(|g| g.name == name).cloned();
            let group = match found {
                Some(g) => g,
                None => {
                    let created = self.ensure_group_locked(name).await?;
                    known.push(created.clone());
                    created
                }
            };
            out.push(group.resource_name);
        }
        Ok(out)
    }

    /// Creates a group missing from the list read; when Google says the name is taken (409,
    /// made since by someone else), reads the list again and takes that group.
    async fn ensure_group_locked(&self, name: &str) -> Result<Group> {
        match self.create_group_locked(name).await {
            Err(e) if matches!(e.kind(), ErrorKind::Conflict) => {
                *lock(&self.groups) = None;
                self.group_list()
                    .await?
                    .into_iter()
                    .find(|g| g.name == name)
                    .ok_or(e)
            }
            other => other,
        }
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

    // ------------------------------------------------------------------ reading

    /// A person read from the wire, with its groups named.
    async fn read(&self, v: &Value) -> Result<Stored<Contact>> {
        let wire = contact_from_wire(v)?;
        self.stored(v, wire).await
    }

    async fn stored(&self, v: &Value, wire: WirePerson) -> Result<Stored<Contact>> {
        let previous = wire.previous.clone();
        let stored = self.named(wire).await?;
        let mut seen = lock(&self.seen);
        seen.insert(stored.id.clone(), (v.clone(), stored.record.clone()));
        let mut renamed = lock(&self.renamed);
        let mut versions = lock(&self.renamed_versions);
        let mut photos = lock(&self.photos);
        for old in previous.into_iter().filter(|old| old != &stored.id) {
            if let Some(photo) = photos.remove(&old) {
                photos.insert(stored.id.clone(), photo);
            }
            if let Some((old_v, old_record)) = seen.remove(&old)
                && old_record == stored.record
                && let Some(old_etag) = old_v
                    .get("etag")
                    .and_then(Value::as_str)
                    .and_then(|e| Version::new(e).ok())
            {
                versions.insert((old.clone(), old_etag), stored.version.clone());
            }
            renamed.insert(old, stored.id.clone());
        }
        Ok(stored)
    }

    /// What is known of a read person's photo.
    fn photo_state(&self, wire: &WirePerson) -> PhotoState {
        let Some(url) = &wire.photo_url else {
            return PhotoState::None;
        };
        match lock(&self.photos).get(&wire.id) {
            Some((written_at, photo)) if written_at == url => PhotoState::Known(photo.clone()),
            _ => PhotoState::Unknown,
        }
    }

    async fn named(&self, wire: WirePerson) -> Result<Stored<Contact>> {
        let photo = match self.photo_state(&wire) {
            PhotoState::Known(photo) => Some(photo),
            PhotoState::None | PhotoState::Unknown => None,
        };
        let mut record = wire.record;
        record.photo = photo;
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
            let sync = self.selection.user_group_name();
            record.groups = wire
                .group_resources
                .iter()
                .filter_map(|rn| groups.iter().find(|g| &g.resource_name == rn))
                .map(|g| g.name.clone())
                .filter(|name| Some(name.as_str()) != sync)
                .collect();
        }
        Ok(Stored {
            id: wire.id,
            version: wire.etag,
            link_key: wire.link_key,
            record,
        })
    }

    /// The person under `id` or the name it was renamed to; `None` when gone.
    async fn fetch(&self, id: &ItemId) -> Result<Option<Value>> {
        let current = self.resolve(id);
        let call =
            Call::get(self.person_url(&current, None)).query([("personFields", PERSON_FIELDS)]);
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
    async fn current_at(&self, id: &ItemId, expected: &Version) -> Result<Stored<Contact>> {
        let (id, expected) = self.resolve_at(id, expected);
        let expected = &expected;
        let seen = lock(&self.seen).get(&id).cloned();
        if let Some((v, record)) = seen
            && v.get("etag").and_then(Value::as_str) == Some(expected.as_str())
        {
            return Ok(Stored {
                id,
                version: expected.clone(),
                link_key: contact_from_wire(&v).ok().and_then(|w| w.link_key),
                record,
            });
        }
        let Some(v) = self.fetch(&id).await? else {
            return Err(not_found(&id));
        };
        let stored = self.read(&v).await?;
        if &stored.version != expected {
            return Err(changed_since(&id, expected));
        }
        Ok(stored)
    }

    /// Whether a listed person is in the synced set (the synced group's members, when
    /// contacts are chosen by group).
    fn in_scope(scope: &Option<Option<String>>, wire: &WirePerson) -> bool {
        match scope {
            None => true,
            Some(None) => false,
            Some(Some(rn)) => wire
                .group_resources
                .iter()
                .chain(&wire.system_groups)
                .any(|g| g == rn),
        }
    }

    /// Why a person outside the synced set is left out, for the plan and the report.
    fn left_out_reason(scope: &Option<Option<String>>) -> String {
        match scope {
            Some(Some(rn)) => format!("not a member of the synced contact group ({rn})"),
            _ => "the synced contact group does not exist yet".to_owned(),
        }
    }

    // ------------------------------------------------------------------ single writes

    async fn create_unlocked(
        &self,
        record: &Contact,
        link_key: &LinkKey,
    ) -> Result<Stored<Contact>> {
        record.validate()?;
        let photo = record
            .photo
            .as_ref()
            .map(|_| photo_write(record))
            .transpose()?;
        let groups = self.group_resources(&record.groups).await?;
        let body = contact_to_wire(record, None, None, &groups, Some(link_key));
        let call = Call::post(self.url("people:createContact"))
            .query([("personFields", PERSON_FIELDS)])
            .json(&body)?;
        let v = self.client.json(call, "creating a contact").await?;
        let created = self.read(&v).await?;
        match photo {
            Some(photo) => self.write_photo(&created.id, &photo).await,
            None => Ok(created),
        }
    }

    /// The body, mask and photo write of an update, checked.
    async fn prepare_update(
        &self,
        id: &ItemId,
        expected: &Version,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) -> Result<PreparedUpdate> {
        record.validate()?;
        let (id, expected) = self.resolve_at(id, expected);
        let expected = &expected;
        let photo = if fields.contains(&ContactField::Photo) {
            Some(photo_write(record)?)
        } else {
            None
        };
        let paths: BTreeSet<&str> = fields.iter().filter_map(|f| person_field(*f)).collect();
        if paths.is_empty() {
            return Ok(PreparedUpdate {
                id,
                expected: expected.clone(),
                mask: String::new(),
                body: Map::new(),
                photo,
            });
        }
        // A partial write of `names` keeps the other half (display name or parts).
        let partial_names =
            fields.contains(&ContactField::Name) != fields.contains(&ContactField::DisplayName);
        let current = if partial_names {
            Some(self.current_at(&id, expected).await?.record)
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
        Ok(PreparedUpdate {
            id,
            expected: expected.clone(),
            mask: paths.into_iter().collect::<Vec<_>>().join(","),
            body,
            photo,
        })
    }

    async fn update_unlocked(
        &self,
        id: &ItemId,
        expected: &Version,
        record: &Contact,
        fields: &BTreeSet<ContactField>,
    ) -> Result<Stored<Contact>> {
        let prepared = self.prepare_update(id, expected, record, fields).await?;
        let written = if prepared.mask.is_empty() {
            None
        } else {
            Some(self.update_contact(&prepared).await?)
        };
        self.finish_update(&prepared, written).await
    }

    /// The photo part of an update, after its person fields were written (`written`).
    async fn finish_update(
        &self,
        prepared: &PreparedUpdate,
        written: Option<Stored<Contact>>,
    ) -> Result<Stored<Contact>> {
        match (&prepared.photo, written) {
            (None, Some(stored)) => Ok(stored),
            // Nothing to write: the item as it is, if still at the expected version.
            (None, None) => self.current_at(&prepared.id, &prepared.expected).await,
            (Some(photo), written) => {
                // The photo calls have no precondition: check the etag first unless
                // updateContact just did.
                if written.is_none() {
                    self.current_at(&prepared.id, &prepared.expected).await?;
                }
                self.write_photo(&prepared.id, photo).await
            }
        }
    }

    /// `updateContact` with the prepared mask and body.
    async fn update_contact(&self, prepared: &PreparedUpdate) -> Result<Stored<Contact>> {
        let call = Call::patch(self.person_url(&prepared.id, Some("updateContact")))
            .query([
                ("updatePersonFields", prepared.mask.as_str()),
                ("personFields", PERSON_FIELDS),
            ])
            .json(&Value::Object(prepared.body.clone()))?;
        let response = self.client.send(call).await?;
        if response.status().is_success() {
            let v = parse_object(response.body(), "updating a contact")?;
            return self.read(&v).await;
        }
        match response.status().as_u16() {
            404 => Err(not_found(&prepared.id)),
            _ => Err(classify(&response, "updating a contact")),
        }
    }

    /// `updateContactPhoto` / `deleteContactPhoto` (G-PPL-16), returning the person after.
    async fn write_photo(&self, id: &ItemId, photo: &PhotoWrite) -> Result<Stored<Contact>> {
        let (call, what) = match photo {
            PhotoWrite::Set(photo) => (
                Call::patch(self.person_url(id, Some("updateContactPhoto"))).json(
                    &json!({"photoBytes": photo_base64(photo)?, "personFields": PERSON_FIELDS}),
                )?,
                "updating a contact's photo",
            ),
            PhotoWrite::Delete => (
                Call::delete(self.person_url(id, Some("deleteContactPhoto")))
                    .query([("personFields", PERSON_FIELDS)]),
                "deleting a contact's photo",
            ),
        };
        let response = self.client.send(call).await?;
        match response.status().as_u16() {
            s if (200..300).contains(&s) => {
                let v = parse_object(response.body(), what)?;
                match v.get("person") {
                    Some(person) => {
                        self.remember_photo(person, photo);
                        self.read(person).await
                    }
                    None => Err(Error::new(
                        ErrorKind::Provider,
                        format!("{what}: the answer holds no person"),
                    )),
                }
            }
            404 => Err(not_found(id)),
            _ => Err(classify(&response, what)),
        }
    }

    /// Remembers the photo just written, at the URL Google serves it from, so reading it
    /// back gives the photo written.
    fn remember_photo(&self, person: &Value, photo: &PhotoWrite) {
        let Some(id) = person_id(person) else { return };
        let url = contact_from_wire(person).ok().and_then(|w| w.photo_url);
        let mut photos = lock(&self.photos);
        match (photo, url) {
            (PhotoWrite::Set(photo), Some(url)) => {
                photos.insert(id, (url, photo.clone()));
            }
            _ => {
                photos.remove(&id);
            }
        }
    }

    /// Checks that the contact is still at `expected` before a deletion (deleteContact has
    /// no precondition); returns its current resource name.
    async fn check_delete(&self, id: &ItemId, expected: &Version) -> Result<ItemId> {
        let (current, expected) = self.resolve_at(id, expected);
        let Some(v) = self.fetch(&current).await? else {
            return Err(not_found(id));
        };
        if v.get("etag").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(changed_since(id, &expected));
        }
        Ok(person_id(&v).unwrap_or(current))
    }

    async fn delete_checked(&self, id: &ItemId) -> Result<()> {
        let call = Call::delete(self.person_url(id, Some("deleteContact")));
        let response = self.client.send(call).await?;
        lock(&self.seen).remove(id);
        lock(&self.photos).remove(id);
        match response.status().as_u16() {
            s if (200..300).contains(&s) => Ok(()),
            404 => Err(not_found(id)),
            _ => Err(classify(&response, "deleting a contact")),
        }
    }

    async fn delete_unlocked(&self, id: &ItemId, expected: &Version) -> Result<()> {
        let current = self.check_delete(id, expected).await?;
        self.delete_checked(&current).await
    }

    // ------------------------------------------------------------------ batches (G-PPL-15)

    /// Creates with `batchCreateContacts` (≤ 200 a request), then writes their photos;
    /// `None` where the batch failed as a whole (the caller writes those one by one).
    async fn batch_create(
        &self,
        creates: &[(&Contact, &LinkKey)],
    ) -> Vec<Option<Result<Stored<Contact>>>> {
        let mut out: Vec<Option<Result<Stored<Contact>>>> = Vec::with_capacity(creates.len());
        let mut bodies = Vec::new();
        let mut positions = Vec::new();
        for (i, (record, key)) in creates.iter().enumerate() {
            let checked = record.validate().and_then(|()| {
                record
                    .photo
                    .as_ref()
                    .map(|_| photo_write(record))
                    .transpose()
            });
            match checked {
                Err(e) => out.push(Some(Err(e))),
                Ok(_) => match self.group_resources(&record.groups).await {
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
            // Throttled or down until the client's policy gave up: creating one by one
            // would only be a second round of retries.
            Err(e) if e.is_retryable() => {
                for &i in &positions {
                    out[i] = Some(Err(e.clone()));
                }
                return out;
            }
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
            let result = match (item_ok(item), item.get("person")) {
                (true, Some(person)) => self.read(person).await,
                _ => Err(item_error(
                    "(new)",
                    item.get("status").unwrap_or(&Value::Null),
                    "batchCreateContacts",
                )),
            };
            let result = match (result, &creates[i].0.photo) {
                (Ok(stored), Some(_)) => match photo_write(creates[i].0) {
                    Ok(photo) => self.write_photo(&stored.id, &photo).await,
                    Err(e) => Err(e),
                },
                (result, _) => result,
            };
            out[i] = Some(result);
        }
        out
    }

    /// Updates with `batchUpdateContacts`: one request per set of person fields written
    /// (the mask is the batch's), at most 200 contacts each, then the photos. A batch that
    /// fails as a whole (one stale etag fails them all) is written one by one, so each
    /// contact gets its own result.
    async fn batch_update(
        &self,
        updates: Vec<(usize, PreparedUpdate)>,
    ) -> Vec<(usize, Result<Stored<Contact>>)> {
        let mut out = Vec::with_capacity(updates.len());
        let mut by_mask: BTreeMap<String, Vec<(usize, PreparedUpdate)>> = BTreeMap::new();
        for (i, p) in updates {
            by_mask.entry(p.mask.clone()).or_default().push((i, p));
        }
        for (mask, group) in by_mask {
            if mask.is_empty() {
                for (i, p) in group {
                    out.push((i, self.finish_update(&p, None).await));
                }
                continue;
            }
            for chunk in group.chunks(MAX_CONTACT_BATCH) {
                let written = self.update_chunk(&mask, chunk).await;
                for ((i, p), written) in chunk.iter().zip(written) {
                    let result = match written {
                        Ok(stored) => self.finish_update(p, Some(stored)).await,
                        Err(e) => Err(e),
                    };
                    out.push((*i, result));
                }
            }
        }
        out
    }

    /// One `batchUpdateContacts` request (or single updates when that is not possible).
    async fn update_chunk(
        &self,
        mask: &str,
        chunk: &[(usize, PreparedUpdate)],
    ) -> Vec<Result<Stored<Contact>>> {
        let distinct: BTreeSet<&str> = chunk.iter().map(|(_, p)| p.id.as_str()).collect();
        if chunk.len() >= 2 && distinct.len() == chunk.len() {
            let contacts: Map<String, Value> = chunk
                .iter()
                .map(|(_, p)| (p.id.to_string(), Value::Object(p.body.clone())))
                .collect();
            let body = json!({
                "contacts": contacts,
                "updateMask": mask,
                "readMask": PERSON_FIELDS,
                "sources": ["READ_SOURCE_TYPE_CONTACT"],
            });
            match Call::post(self.url("people:batchUpdateContacts")).json(&body) {
                Ok(call) => match self.client.json(call, "updating contacts in a batch").await {
                    Ok(answer) => return self.update_results(&answer, chunk).await,
                    // Already retried by the client's policy: not again one by one.
                    Err(e) if e.is_retryable() => return vec![Err(e); chunk.len()],
                    Err(e) => {
                        tracing::debug!(error = %e, "batchUpdateContacts failed; updating one by one");
                    }
                },
                Err(e) => tracing::debug!(error = %e, "batchUpdateContacts body not encodable"),
            }
        }
        let mut out = Vec::with_capacity(chunk.len());
        for (_, p) in chunk {
            out.push(self.update_contact(p).await);
        }
        out
    }

    /// The per-contact results of a `batchUpdateContacts` answer (`updateResult`, keyed by
    /// the resource names sent).
    async fn update_results(
        &self,
        answer: &Value,
        chunk: &[(usize, PreparedUpdate)],
    ) -> Vec<Result<Stored<Contact>>> {
        let results = answer.get("updateResult").and_then(Value::as_object);
        let mut out = Vec::with_capacity(chunk.len());
        for (_, p) in chunk {
            let item = results.and_then(|r| r.get(p.id.as_str()));
            out.push(match item {
                Some(item) if item_ok(item) => match item.get("person") {
                    Some(person) => self.read(person).await,
                    None => Err(Error::new(
                        ErrorKind::Provider,
                        format!("batchUpdateContacts returned no person for {}", p.id),
                    )),
                },
                Some(item) => Err(item_error(
                    p.id.as_str(),
                    item.get("status").unwrap_or(&Value::Null),
                    "batchUpdateContacts",
                )),
                None => Err(Error::new(
                    ErrorKind::Provider,
                    format!("batchUpdateContacts said nothing of {}", p.id),
                )),
            });
        }
        out
    }

    /// Deletes with `batchDeleteContacts` (≤ 500 a request) after checking each etag; a
    /// batch that fails as a whole is deleted one by one.
    async fn batch_delete(
        &self,
        deletes: Vec<(usize, ItemId, Version)>,
    ) -> Vec<(usize, Result<()>)> {
        let mut out = Vec::with_capacity(deletes.len());
        let mut checked: Vec<(usize, ItemId)> = Vec::new();
        for (i, id, expected) in deletes {
            match self.check_delete(&id, &expected).await {
                Ok(current) => checked.push((i, current)),
                Err(e) => out.push((i, Err(e))),
            }
        }
        for chunk in checked.chunks(MAX_CONTACT_DELETE_BATCH) {
            let distinct: BTreeSet<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            if chunk.len() >= 2 && distinct.len() == chunk.len() {
                let names: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
                let deleted = match Call::post(self.url("people:batchDeleteContacts"))
                    .json(&json!({"resourceNames": names}))
                {
                    Ok(call) => self
                        .client
                        .send_ok(call, "deleting contacts in a batch")
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                };
                match deleted {
                    Ok(()) => {
                        let mut seen = lock(&self.seen);
                        let mut photos = lock(&self.photos);
                        for (i, id) in chunk {
                            seen.remove(id);
                            photos.remove(id);
                            out.push((*i, Ok(())));
                        }
                        continue;
                    }
                    // Already retried by the client's policy: not again one by one.
                    Err(e) if e.is_retryable() => {
                        for (i, _) in chunk {
                            out.push((*i, Err(e.clone())));
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "batchDeleteContacts failed; deleting one by one");
                    }
                }
            }
            for (i, id) in chunk {
                out.push((*i, self.delete_checked(id).await));
            }
        }
        out
    }

    // ------------------------------------------------------------------ listing

    /// One `connections.list` page, as changes. `full_sync_at` is the time of the full
    /// sync the listing descends from (now, for a full listing).
    async fn list_page(
        &self,
        request: &ChangesRequest,
        token: Option<&str>,
        full_sync_at: DateTime<Utc>,
    ) -> Result<ChangePage<Contact>> {
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
        if let Some(token) = token {
            call = call.query([("syncToken", token)]);
        }
        if let Some(page) = &request.page_token {
            call = call.query([("pageToken", page.as_str())]);
        }
        let incremental = token.is_some();
        let what = if incremental {
            "the incremental listing of contacts"
        } else {
            "the full listing of contacts"
        };
        let page = self.client.json(call, what).await?;
        let next = match crate::client::continuation(&page, what)? {
            Continuation::Done(cursor) => Continuation::Done(wrap_cursor(&cursor, full_sync_at)?),
            more => more,
        };
        let mut out = ChangePage {
            upserts: Vec::new(),
            removals: Vec::new(),
            unreadable: Vec::new(),
            left_out: Vec::new(),
            next,
        };
        // `connections` is omitted on empty pages (G-PPL-2).
        let people = crate::client::array_field(&page, "connections", what)?;
        if request.page_token.is_none() {
            self.left_out.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        if people.is_empty() {
            // A sync with nothing to do costs the listing alone: no group lookup.
            return Ok(out);
        }
        let scope = self.sync_group().await?;
        for person in people {
            self.add_person(person, &scope, incremental, &mut out)
                .await?;
        }
        let left_out = self.left_out();
        if left_out > 0
            && matches!(
                out.next,
                Continuation::Done(_) | Continuation::DoneWithoutCursor
            )
        {
            tracing::info!(
                left_out,
                selection = %self.selection,
                "contacts outside the synced group left out of the listing"
            );
        }
        Ok(out)
    }

    /// Adds one listed person to the page: an upsert, a removal, or an unreadable record.
    async fn add_person(
        &self,
        person: &Value,
        scope: &Option<Option<String>>,
        incremental: bool,
        out: &mut ChangePage<Contact>,
    ) -> Result<()> {
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
            return Ok(());
        }
        let wire = match contact_from_wire(person) {
            Ok(wire) => wire,
            Err(error) => {
                out.unreadable.push(Unreadable {
                    id: person_id(person),
                    error,
                });
                return Ok(());
            }
        };
        if !Self::in_scope(scope, &wire) {
            // Out of the synced group: counted, and, in a change feed, it left the synced
            // set (not a deletion).
            self.left_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.left_out.push(LeftOut {
                id: wire.id.clone(),
                reason: Self::left_out_reason(scope),
            });
            if incremental {
                out.removals.push(Removal {
                    id: wire.id,
                    reason: RemovalReason::LeftWindow,
                });
            }
            return Ok(());
        }
        // A photo of the person's own that this store did not write is not read back (see
        // the type's docs): the field is left out, and the engine keeps the photo it last
        // synced.
        let unknown_photo = matches!(self.photo_state(&wire), PhotoState::Unknown);
        let sent = unknown_photo.then(|| {
            ContactField::ALL
                .iter()
                .copied()
                .filter(|f| *f != ContactField::Photo)
                .collect()
        });
        let modified = wire.updated;
        match self.stored(person, wire).await {
            Ok(item) => out.upserts.push(Upsert {
                item,
                sent,
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
        Ok(())
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
        // Every field, the photo included (updateContactPhoto, G-PPL-16).
        caps.fields = Some(
            ContactField::ALL
                .iter()
                .map(|f| f.name().to_owned())
                .collect(),
        );
        // clientData (G-PPL-18).
        caps.link_keys = true;
        // Every call goes through crmsync-http's one retry policy (Retry-After honoured).
        caps.retries_itself = true;
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
        let now = self.clock.now();
        let Some(cursor) = &request.cursor else {
            return self.list_page(&request, None, now).await;
        };
        let (token, full_sync_at) = unwrap_cursor(cursor);
        if let Some(at) = full_sync_at {
            let age = (now - at).to_std().unwrap_or_default();
            if age >= SYNC_TOKEN_MAX_AGE {
                return Err(Error::new(
                    ErrorKind::CursorExpired,
                    format!(
                        "the People sync token descends from a full sync {} hours old; Google \
                         kills it at 7 days (G-PPL-5), so a full listing is due",
                        age.as_secs() / 3600
                    ),
                ));
            }
        }
        self.list_page(&request, Some(token), full_sync_at.unwrap_or(now))
            .await
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
        // People cannot filter on clientData: scan the connections (whatever the synced
        // group, so a copy outside it is found rather than duplicated).
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
            for person in crate::client::array_field(&page, "connections", "finding a contact")? {
                if person_deleted(person) {
                    continue;
                }
                if let Ok(wire) = contact_from_wire(person)
                    && wire.link_key.as_ref() == Some(link_key)
                {
                    return self.stored(person, wire).await.map(Some);
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
        // Creates: batchCreateContacts, 200 a request.
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
        // Updates: batchUpdateContacts, one request per mask.
        let mut updates = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let WriteOp::Update {
                id,
                expected,
                record,
                fields,
            } = op
            {
                match self.prepare_update(id, expected, record, fields).await {
                    Ok(prepared) => updates.push((i, prepared)),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
        }
        for (i, result) in self.batch_update(updates).await {
            results[i] = Some(result.map(WriteOutcome::Written));
        }
        // Deletes: batchDeleteContacts, 500 a request.
        let deletes: Vec<(usize, ItemId, Version)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                WriteOp::Delete { id, expected } => Some((i, id.clone(), expected.clone())),
                _ => None,
            })
            .collect();
        for (i, result) in self.batch_delete(deletes).await {
            results[i] = Some(result.map(|()| WriteOutcome::Deleted));
        }
        // What the batches left (a create batch that failed as a whole): one by one.
        let mut out = Vec::with_capacity(ops.len());
        for (op, done) in ops.into_iter().zip(results) {
            out.push(match (done, op) {
                (Some(result), _) => result,
                (None, WriteOp::Create { record, link_key }) => self
                    .create_unlocked(&record, &link_key)
                    .await
                    .map(WriteOutcome::Written),
                (None, _) => Err(Error::new(
                    ErrorKind::Provider,
                    "the write was left without a result",
                )),
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
            name: self.selection.display_name().to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_carry_the_time_of_their_full_sync() {
        let at = DateTime::<Utc>::from_timestamp(1_781_000_000, 0).expect("time");
        let token = Cursor::new("EAEY:x:y").expect("cursor");
        let wrapped = wrap_cursor(&token, at).expect("wrapped");
        assert_eq!(unwrap_cursor(&wrapped), ("EAEY:x:y", Some(at)));
        // A bare token (from before this format) has no known age.
        assert_eq!(unwrap_cursor(&token), ("EAEY:x:y", None));
        let odd = Cursor::new("people1:soon:tok").expect("cursor");
        assert_eq!(unwrap_cursor(&odd), ("people1:soon:tok", None));
    }

    #[test]
    fn photos_must_be_jpeg_or_png() {
        let mut c = Contact::new("Ann");
        assert!(matches!(photo_write(&c), Ok(PhotoWrite::Delete)));
        c.photo = Some(Photo::new(vec![0xFF, 0xD8, 0xFF, 0xE0], "image/jpeg").expect("photo"));
        match photo_write(&c) {
            Ok(PhotoWrite::Set(p)) => assert_eq!(photo_base64(&p).expect("b64"), "/9j/4A=="),
            other => panic!("{other:?}"),
        }
        // Labelled PNG, but not a PNG: Google would refuse it.
        c.photo = Some(Photo::new(vec![1, 2, 3, 4], "image/png").expect("photo"));
        assert!(photo_write(&c).is_err());
        c.photo = Some(Photo::new(vec![b'G', b'I', b'F'], "image/gif").expect("photo"));
        let e = photo_write(&c).expect_err("gif");
        assert!(
            matches!(e.kind(), ErrorKind::InvalidRecord { field: Some(f), .. } if f == "photo"),
            "{e}"
        );
    }

    #[test]
    fn batch_item_statuses_are_typed() {
        let stale = json!({"code": 9, "message": "Request person.etag is different"});
        assert!(matches!(
            item_error("people/c1", &stale, "batchUpdateContacts").kind(),
            ErrorKind::PreconditionFailed
        ));
        assert!(matches!(
            item_error("people/c1", &json!({"code": 5}), "x").kind(),
            ErrorKind::NotFound
        ));
        assert!(item_ok(&json!({"status": {}})));
        assert!(!item_ok(&json!({"status": {"code": 9}})));
    }
}
