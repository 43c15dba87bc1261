//! Link keys on the CRM side, scoped to the account and collection they came from.
//!
//! A CRM record made from a provider record carries that record's id as its link key, so
//! a crash between the create and the state commit is repaired by finding the copy again.
//! One CRM collection may be synced with several accounts (a user's Google and Outlook
//! calendars): a bare remote id from account A means nothing to account B, and B's run
//! must not take it for a copy of one of its own records (it would look for the "source"
//! on B, not find it, and take the record for the copy of a deletion).
//!
//! So the engine writes CRM link keys as `{scope}/{remote id}`, where `scope` is 12 hex
//! digits of the SHA-256 of the account and the provider collection, and reads them back
//! through [`ScopedCrm`]: a key of this run's scope is seen as the bare remote id, a key
//! of another scope as no key at all (the record is the CRM's own as far as this run is
//! concerned), and a key without a scope (written before scoping) as it is.
//!
//! The CRM store never needs to know: it stores and returns the key it was given.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::hash::ContentHash;
use crate::ids::{AccountId, CollectionId, ItemId, LinkKey, Version};
use crate::record::Record;
use crate::store::{
    Capabilities, ChangePage, ChangesRequest, CollectionInfo, RecordStore, Stored, WriteOp,
    WriteOutcome,
};

/// Hex digits of the scope.
const SCOPE_LEN: usize = 12;

/// The scope of CRM link keys written for one account's provider collection.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkScope(String);

impl LinkScope {
    /// The scope of `account`'s `collection`.
    pub fn new(account: &AccountId, collection: &CollectionId) -> Self {
        let digest = ContentHash::of_bytes(
            format!("{}\n{}", account.as_str(), collection.as_str()).as_bytes(),
        )
        .to_string();
        LinkScope(digest[..SCOPE_LEN].to_owned())
    }

    /// The key a CRM copy of the provider record `key` (its id) carries.
    pub fn scoped(&self, key: &LinkKey) -> LinkKey {
        if split(key.as_str()).is_some() {
            // Already scoped (a key read through this scope and written back).
            return key.clone();
        }
        LinkKey::new(format!("{}/{}", self.0, key.as_str())).unwrap_or_else(|_| key.clone())
    }

    /// The provider record a CRM link key names in this scope: `Some(bare key)` for a key
    /// of this scope or one without a scope, `None` for another scope's key.
    pub fn unscoped(&self, key: &LinkKey) -> Option<LinkKey> {
        match split(key.as_str()) {
            Some((scope, rest)) if scope == self.0 => LinkKey::new(rest).ok(),
            Some(_) => None,
            None => Some(key.clone()),
        }
    }
}

impl fmt::Debug for LinkScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkScope({})", self.0)
    }
}

/// `(scope, rest)` when the key starts with 12 lowercase hex digits and a slash.
fn split(key: &str) -> Option<(&str, &str)> {
    let (scope, rest) = key.split_at_checked(SCOPE_LEN)?;
    let rest = rest.strip_prefix('/')?;
    (scope
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !rest.is_empty())
    .then_some((scope, rest))
}

/// The CRM store as one run sees it: link keys written scoped, read back bare (or not at
/// all, when another account's).
pub(crate) struct ScopedCrm<R: Record> {
    inner: Arc<dyn RecordStore<R>>,
    scope: LinkScope,
}

impl<R: Record> ScopedCrm<R> {
    pub(crate) fn new(inner: Arc<dyn RecordStore<R>>, scope: LinkScope) -> Self {
        ScopedCrm { inner, scope }
    }

    fn read(&self, stored: Stored<R>) -> Stored<R> {
        let mut stored = stored;
        stored.link_key = stored.link_key.and_then(|k| self.scope.unscoped(&k));
        stored
    }
}

impl<R: Record> fmt::Debug for ScopedCrm<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedCrm")
            .field("inner", &self.inner)
            .field("scope", &self.scope)
            .finish()
    }
}

#[async_trait]
impl<R: Record> RecordStore<R> for ScopedCrm<R> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.collections().await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<R>> {
        let mut page = self.inner.changes(collection, request).await?;
        for upsert in &mut page.upserts {
            upsert.item.link_key = upsert
                .item
                .link_key
                .take()
                .and_then(|k| self.scope.unscoped(&k));
        }
        Ok(page)
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<R>>> {
        Ok(self.inner.get(collection, id).await?.map(|s| self.read(s)))
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &R,
        link_key: &LinkKey,
    ) -> Result<Stored<R>> {
        let stored = self
            .inner
            .create(collection, record, &self.scope.scoped(link_key))
            .await?;
        Ok(self.read(stored))
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>> {
        let stored = self
            .inner
            .update(collection, id, expected, record, fields)
            .await?;
        Ok(self.read(stored))
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
    ) -> Result<Option<Stored<R>>> {
        let scoped = self.scope.scoped(link_key);
        if let Some(found) = self.inner.find_by_link_key(collection, &scoped).await? {
            return Ok(Some(self.read(found)));
        }
        // A copy written before link keys were scoped carries the bare key.
        if scoped != *link_key
            && let Some(found) = self.inner.find_by_link_key(collection, link_key).await?
        {
            return Ok(Some(self.read(found)));
        }
        Ok(None)
    }

    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<R>>,
    ) -> Vec<Result<WriteOutcome<R>>> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Create { record, link_key } => WriteOp::Create {
                    record,
                    link_key: self.scope.scoped(&link_key),
                },
                other => other,
            })
            .collect();
        self.inner
            .write_batch(collection, ops)
            .await
            .into_iter()
            .map(|r| {
                r.map(|outcome| match outcome {
                    WriteOutcome::Written(stored) => WriteOutcome::Written(self.read(stored)),
                    WriteOutcome::Deleted => WriteOutcome::Deleted,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(account: &str, collection: &str) -> LinkScope {
        LinkScope::new(
            &AccountId::new(account).unwrap(),
            &CollectionId::new(collection).unwrap(),
        )
    }

    #[test]
    fn keys_round_trip_in_their_scope_only() {
        let a = scope("ann@example.com", "work");
        let b = scope("ann@example.com", "home");
        let bare = LinkKey::new("evt_123/with:colons").unwrap();
        let scoped = a.scoped(&bare);
        assert_ne!(scoped, bare);
        assert!(scoped.as_str().ends_with("/evt_123/with:colons"));
        assert_eq!(a.unscoped(&scoped), Some(bare.clone()));
        assert_eq!(
            b.unscoped(&scoped),
            None,
            "another collection's key is not ours"
        );
        assert_eq!(a.scoped(&scoped), scoped, "scoping is idempotent");
        assert_eq!(
            b.unscoped(&bare),
            Some(bare.clone()),
            "legacy keys read as they are"
        );
    }

    #[test]
    fn the_scope_depends_on_account_and_collection() {
        assert_eq!(scope("a", "c"), scope("a", "c"));
        assert_ne!(scope("a", "c"), scope("b", "c"));
        assert_ne!(scope("a", "c"), scope("a", "d"));
    }

    #[test]
    fn ids_that_only_look_scoped_are_legacy_keys() {
        let s = scope("a", "c");
        for raw in [
            "0123456789ab/",
            "0123456789AB/x",
            "0123456789a/xx",
            "/calendars/x",
        ] {
            let key = LinkKey::new(raw).unwrap();
            assert_eq!(s.unscoped(&key), Some(key.clone()), "{raw}");
        }
    }
}
