//! The engine is generic: a CRM's own record type, synced one way into a messenger's user
//! directory.
//!
//! ```text
//! cargo run --example user_directory
//! ```
//!
//! - `CrmUser` is a host-defined record: four fields, each named by `UserField`.
//! - The directory is a store adapter (`DirectoryStore`) over an in-memory store. It has
//!   rules of its own, as real directories do: logins carry a domain suffix there
//!   (`alice` in the CRM is `alice@chat.example` in the directory), and an e-mail address
//!   may belong to one entry only.
//! - The policy sends every field from the CRM to the directory; the directory creates
//!   nothing in the CRM.
//!
//! Two CRM users share an e-mail address: the directory refuses the second, the report
//! names it with the reason, and every other user is synced. Once the CRM fixes the
//! address, the next run creates it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use crmsync::engine::{DeletionMode, FieldPolicy, Syncer};
use crmsync::memory::{MemoryState, MemoryStore};
use crmsync::record::from_field_value;
use crmsync::{
    AccountId, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo, Direction,
    Error, ErrorKind, Field, FieldValue, ItemId, LinkKey, Record, RecordStore, Result, Stored,
    Version, WriteOp, WriteOutcome,
};
use serde::{Deserialize, Serialize};

/// A CRM user, as the CRM keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CrmUser {
    login: String,
    display_name: String,
    email: String,
    messenger_access: bool,
}

impl CrmUser {
    fn new(login: &str, display_name: &str, email: &str, messenger_access: bool) -> Self {
        CrmUser {
            login: login.into(),
            display_name: display_name.into(),
            email: email.into(),
            messenger_access,
        }
    }
}

/// The fields of a [`CrmUser`]: what a policy names, in a config file too
/// (`{"fields": {"display_name": "skip"}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UserField {
    Login,
    DisplayName,
    Email,
    MessengerAccess,
}

impl fmt::Display for UserField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Field for UserField {
    const ALL: &'static [Self] = &[
        UserField::Login,
        UserField::DisplayName,
        UserField::Email,
        UserField::MessengerAccess,
    ];

    fn name(self) -> &'static str {
        match self {
            UserField::Login => "login",
            UserField::DisplayName => "display_name",
            UserField::Email => "email",
            UserField::MessengerAccess => "messenger_access",
        }
    }

    /// The CRM is the source of truth for its users.
    fn default_direction(self) -> Direction {
        Direction::CrmToProvider
    }
}

impl Record for CrmUser {
    type Field = UserField;
    const KIND: &'static str = "crm_user";

    fn field(&self, field: UserField) -> FieldValue {
        match field {
            UserField::Login => FieldValue::String(self.login.trim().to_owned()),
            UserField::DisplayName => FieldValue::String(self.display_name.trim().to_owned()),
            UserField::Email => FieldValue::String(self.email.trim().to_owned()),
            UserField::MessengerAccess => FieldValue::Bool(self.messenger_access),
        }
    }

    /// E-mail addresses and logins compare without case: `Ann@X` is no edit of `ann@x`.
    fn comparable(&self, field: UserField) -> FieldValue {
        match field {
            UserField::Login => FieldValue::String(self.login.trim().to_lowercase()),
            UserField::Email => FieldValue::String(self.email.trim().to_lowercase()),
            other => self.field(other),
        }
    }

    fn set_field(&mut self, field: UserField, value: &FieldValue) -> Result<()> {
        let name = field.name();
        match field {
            UserField::Login => self.login = text(name, value)?,
            UserField::DisplayName => self.display_name = text(name, value)?,
            UserField::Email => self.email = text(name, value)?,
            UserField::MessengerAccess => {
                self.messenger_access =
                    from_field_value::<Option<bool>>(name, value)?.unwrap_or(false)
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.login.trim().is_empty() || self.login.contains(char::is_whitespace) {
            return Err(Error::invalid_record(
                Some("login"),
                format!("{:?} is not a login", self.login),
            ));
        }
        if !self.email.contains('@') {
            return Err(Error::invalid_record(
                Some("email"),
                format!("{:?} is not an e-mail address", self.email),
            ));
        }
        Ok(())
    }

    /// A first sync onto a directory that already lists some users links them by login.
    fn natural_key(&self) -> Option<String> {
        Some(format!("login:{}", self.login.trim().to_lowercase()))
    }
}

fn text(field: &str, value: &FieldValue) -> Result<String> {
    Ok(from_field_value::<Option<String>>(field, value)?.unwrap_or_default())
}

/// The messenger's user directory, as a store the engine can sync into.
///
/// It wraps the directory's own storage (here a [`MemoryStore`]) and applies the
/// directory's rules, so the engine compares like with like:
/// - a directory login is the CRM login plus [`Self::SUFFIX`]: added on every write,
///   stripped on every read;
/// - an e-mail address belongs to one entry: a create or update that would give an entry
///   an address another entry has fails with [`ErrorKind::Conflict`] naming the address.
#[derive(Debug, Clone)]
struct DirectoryStore {
    inner: MemoryStore<CrmUser>,
}

impl DirectoryStore {
    const SUFFIX: &'static str = "@chat.example";

    /// The record as the directory stores it.
    fn to_directory(user: &CrmUser) -> CrmUser {
        let mut stored = user.clone();
        stored.login = format!("{}{}", user.login.trim(), Self::SUFFIX);
        stored
    }

    /// The record as the CRM sees it.
    fn from_directory(mut item: Stored<CrmUser>) -> Stored<CrmUser> {
        if let Some(login) = item.record.login.strip_suffix(Self::SUFFIX) {
            item.record.login = login.to_owned();
        }
        item
    }

    /// Fails when another entry (not `except`) already has `email`.
    fn check_unique_email(
        &self,
        collection: &CollectionId,
        email: &str,
        except: Option<&ItemId>,
    ) -> Result<()> {
        let wanted = email.trim().to_lowercase();
        let taken_by = self.inner.get_all(collection)?.into_iter().find(|entry| {
            Some(&entry.id) != except && entry.record.email.trim().to_lowercase() == wanted
        });
        match taken_by {
            Some(entry) => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the e-mail address {email} is already used by directory entry {} ({})",
                    entry.id, entry.record.login
                ),
            )),
            None => Ok(()),
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl RecordStore<CrmUser> for DirectoryStore {
    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        caps.name = "directory".into();
        caps
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<CrmUser>> {
        let mut page = self.inner.changes(collection, request).await?;
        for upsert in &mut page.upserts {
            upsert.item = Self::from_directory(upsert.item.clone());
        }
        Ok(page)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<CrmUser>>> {
        Ok(self
            .inner
            .get(collection, id)
            .await?
            .map(Self::from_directory))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &CrmUser,
        link_key: &LinkKey,
    ) -> Result<Stored<CrmUser>> {
        self.check_unique_email(collection, &record.email, None)?;
        let stored = self
            .inner
            .create(collection, &Self::to_directory(record), link_key)
            .await?;
        Ok(Self::from_directory(stored))
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &CrmUser,
        fields: &BTreeSet<UserField>,
    ) -> Result<Stored<CrmUser>> {
        if fields.contains(&UserField::Email) {
            self.check_unique_email(collection, &record.email, Some(id))?;
        }
        let stored = self
            .inner
            .update(
                collection,
                id,
                expected,
                &Self::to_directory(record),
                fields,
            )
            .await?;
        Ok(Self::from_directory(stored))
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        self.inner.delete(collection, id, expected).await
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<CrmUser>>> {
        Ok(self
            .inner
            .find_by_link_key(collection, link_key)
            .await?
            .map(Self::from_directory))
    }

    /// One by one through the rules above: the uniqueness check must see every earlier
    /// write of the batch, so the inner store's batch is not used.
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<CrmUser>>,
    ) -> Vec<Result<WriteOutcome<CrmUser>>> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                WriteOp::Create { record, link_key } => self
                    .create(collection, &record, &link_key)
                    .await
                    .map(WriteOutcome::Written),
                WriteOp::Update {
                    id,
                    expected,
                    record,
                    fields,
                } => self
                    .update(collection, &id, &expected, &record, &fields)
                    .await
                    .map(WriteOutcome::Written),
                WriteOp::Delete { id, expected } => self
                    .delete(collection, &id, &expected)
                    .await
                    .map(|()| WriteOutcome::Deleted),
            });
        }
        results
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The CRM's users. Carol and Dave were given the same address by mistake.
    let crm = MemoryStore::<CrmUser>::new();
    let users = crm.add_collection("users");
    for user in [
        CrmUser::new("alice", "Alice Moreau", "alice@acme.example", true),
        CrmUser::new("bob", "Bob Martin", "bob@acme.example", true),
        CrmUser::new("carol", "Carol Petit", "carol@acme.example", true),
        CrmUser::new("dave", "Dave Roux", "carol@acme.example", true),
        CrmUser::new("erin", "Erin Blanc", "erin@acme.example", false),
    ] {
        crm.seed(&users, user)?;
    }
    let storage = MemoryStore::<CrmUser>::new();
    let people = storage.add_collection("people");
    let directory = DirectoryStore {
        inner: storage.clone(),
    };

    // One way, CRM -> directory: every field is the CRM's (`UserField::default_direction`),
    // the directory creates nothing in the CRM, and a directory entry deleted by hand only
    // unlinks. `build` rejects a policy that makes no sense: with the defaults (both sides
    // create) it would say that directory entries would be copied with no field to fill.
    let policy = FieldPolicy::<UserField>::defaults()
        .with_creates(true, false)
        .with_deletions(DeletionMode::Propagate, DeletionMode::Ignore)
        .build()?;
    let syncer = Syncer::new(
        Arc::new(crm.clone()),
        users.clone(),
        Arc::new(directory),
        people.clone(),
        Arc::new(MemoryState::new()),
        AccountId::new("acme")?,
        policy,
    );

    println!("The CRM's users:");
    for item in crm.get_all(&users)? {
        println!("  {:<6} {}", item.id, describe(&item.record));
    }

    println!();
    println!("== Sync CRM -> directory ==");
    let report = syncer.sync().await?;
    print!("{report}");
    println!();
    for e in &report.errors {
        println!(
            "Not synced: CRM user {} ({}): {}. It is kept as a deferred item and tried again next run.",
            e.id.as_deref().unwrap_or("?"),
            e.kind,
            e.message,
        );
    }
    print_directory(&storage, &people)?;

    // The CRM fixes Dave's address and renames Bob; the next run retries Dave (a deferred
    // item) and carries Bob's new name.
    let all = crm.get_all(&users)?;
    for item in &all {
        match item.record.login.as_str() {
            "dave" => {
                crm.edit_item(&users, &item.id, |u| u.email = "dave@acme.example".into())?;
            }
            "bob" => {
                crm.edit_item(&users, &item.id, |u| {
                    u.display_name = "Robert Martin".into()
                })?;
            }
            _ => {}
        }
    }
    println!();
    println!("== The CRM fixes Dave's e-mail and renames Bob; sync again ==");
    let report = syncer.sync().await?;
    print!("{report}");
    print_directory(&storage, &people)?;

    if !report.is_success() {
        return Err("the second run should have synced every user".into());
    }
    Ok(())
}

fn describe(user: &CrmUser) -> String {
    format!(
        "{:<22} {:<15} {:<20} messenger: {}",
        user.login,
        user.display_name,
        user.email,
        if user.messenger_access { "yes" } else { "no" }
    )
}

/// The directory as it stores its entries (logins with their suffix).
fn print_directory(storage: &MemoryStore<CrmUser>, people: &CollectionId) -> Result<()> {
    println!();
    println!("The directory now lists:");
    for item in storage.get_all(people)? {
        println!("  {:<6} {}", item.id, describe(&item.record));
    }
    Ok(())
}
