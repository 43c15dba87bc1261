//! The store checks: the contract of [`RecordStore`](crate::RecordStore), one `pub async fn` per rule.
//!
//! Each check creates its own records (and deletes them again), so it tolerates a
//! collection that already holds records; it asserts only on what it created. A broken
//! rule panics with ``store rule `NAME` broken: ...``; a check that needs a hook or a
//! capability the target lacks returns [`Outcome::Skipped`] with the reason.
//! [`run_store_suite`] runs them all.
//!
//! # Running the suite on your own store
//!
//! Implement [`Samples`] for your record type (or use [`Event`](crate::Event) and
//! [`Contact`](crate::Contact), which have it), make a collection for the test, and call
//! the suite from an async test. Add [`StoreHooks`](super::StoreHooks) if your store can
//! be acted on from outside (expire its cursors, edit or delete a record as a user would);
//! without them, the checks that need them are skipped.
//!
//! ```
//! use crmsync_core::conformance::{Samples, StoreTarget, run_store_suite};
//! use crmsync_core::{CollectionId, RecordStore};
//!
//! /// Call from a test: `check_my_store(&crm_store, test_collection).await`.
//! async fn check_my_store<R: Samples>(store: &dyn RecordStore<R>, collection: CollectionId) {
//!     let target = StoreTarget {
//!         store,
//!         collection,
//!         hooks: None,
//!     };
//!     let report = run_store_suite(&target).await; // panics on a broken rule
//!     report.print(); // "19 passed, 3 skipped" and why
//!     assert!(report.passed.contains(&"update_with_stale_version_is_precondition_failed"));
//! }
//! ```
//!
//! A single check runs the same way: `check_full_listing_pages_to_the_end(&target).await`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Outcome, Samples, StoreTarget, SuiteReport, sample_window};
use crate::error::{ErrorKind, Result};
use crate::ids::{Cursor, ItemId, LinkKey};
use crate::record::{Field, Record};
use crate::store::{
    Capabilities, ChangesRequest, Continuation, Removal, RemovalReason, Stored, Upsert, WriteOp,
    WriteOutcome,
};

/// Panics with the message every broken rule uses.
macro_rules! broken {
    ($rule:expr, $($msg:tt)+) => {
        panic!("store rule `{}` broken: {}", $rule, format!($($msg)+))
    };
}

/// Asserts a condition of a rule.
macro_rules! ensure {
    ($rule:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            broken!($rule, $($msg)+);
        }
    };
}

/// The most pages a listing may take before the suite calls it endless.
const MAX_PAGES: usize = 100_000;

/// The value of a call that must succeed.
#[track_caller]
fn ok<T>(rule: &str, what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => broken!(rule, "{what} failed: {e} (kind {:?})", e.kind()),
    }
}

/// The error of a call that must fail with a kind matching `want`.
#[track_caller]
fn fails<T: std::fmt::Debug>(
    rule: &str,
    what: &str,
    result: Result<T>,
    want: &str,
    matches: impl Fn(&ErrorKind) -> bool,
) {
    match result {
        Ok(value) => broken!(
            rule,
            "{what} must fail with {want}, but it succeeded: {value:?}"
        ),
        Err(e) => ensure!(
            rule,
            matches(e.kind()),
            "{what} must fail with {want}, but it failed with {:?}: {e}",
            e.kind()
        ),
    }
}

/// A link key no earlier run used: a per-process random nonce and a counter.
fn fresh_key(rule: &str) -> LinkKey {
    static NONCE: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = *NONCE.get_or_init(|| RandomState::new().hash_one(0x0063_726d_7379_6e63_u64));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    ok(
        rule,
        "making a link key",
        LinkKey::new(format!("crmsync-conformance-{nonce:016x}-{n}")),
    )
}

/// The fields the store says it holds.
fn supported<R: Record>(caps: &Capabilities) -> Vec<R::Field> {
    R::Field::ALL
        .iter()
        .copied()
        .filter(|&f| caps.supports(f))
        .collect()
}

/// The record as the store can hold it.
fn fitted<R: Record>(caps: &Capabilities, record: &R) -> R {
    record.fit(caps).record
}

/// Asserts that `got` equals `want` (as the store can hold it) on every supported field.
#[track_caller]
fn same_fields<R: Record>(rule: &str, what: &str, caps: &Capabilities, got: &R, want: &R) {
    let want = fitted(caps, want);
    for field in supported::<R>(caps) {
        let (g, w) = (got.comparable(field), want.comparable(field));
        ensure!(
            rule,
            g == w,
            "{what}: field `{}` must come back as written\n  got:  {g}\n  want: {w}",
            field.name()
        );
    }
}

async fn create<R: Samples>(target: &StoreTarget<'_, R>, rule: &str, n: usize) -> Stored<R> {
    let key = fresh_key(rule);
    ok(
        rule,
        "create",
        target
            .store
            .create(&target.collection, &R::sample(n), &key)
            .await,
    )
}

async fn get<R: Samples>(
    target: &StoreTarget<'_, R>,
    rule: &str,
    id: &ItemId,
) -> Option<Stored<R>> {
    ok(rule, "get", target.store.get(&target.collection, id).await)
}

/// Deletes what a check created, whatever its version; failures are ignored.
async fn cleanup<R: Samples>(target: &StoreTarget<'_, R>, ids: &[&ItemId]) {
    for id in ids {
        if let Ok(Some(item)) = target.store.get(&target.collection, id).await {
            let _ = target
                .store
                .delete(&target.collection, id, &item.version)
                .await;
        }
    }
}

/// Updates every supported field of an item from `record`.
async fn update_all<R: Samples>(
    target: &StoreTarget<'_, R>,
    item: &Stored<R>,
    record: &R,
) -> Result<Stored<R>> {
    let fields: BTreeSet<R::Field> = supported::<R>(&target.store.capabilities())
        .into_iter()
        .collect();
    target
        .store
        .update(&target.collection, &item.id, &item.version, record, &fields)
        .await
}

/// A listing or feed followed to its end.
struct Listing<R: Record> {
    upserts: Vec<Upsert<R>>,
    removals: Vec<Removal>,
    cursor: Cursor,
    pages: usize,
}

impl<R: Record> Listing<R> {
    fn upserts_of(&self, id: &ItemId) -> Vec<&Upsert<R>> {
        self.upserts.iter().filter(|u| &u.item.id == id).collect()
    }

    fn removals_of(&self, id: &ItemId) -> Vec<&Removal> {
        self.removals.iter().filter(|r| &r.id == id).collect()
    }
}

/// Follows every page of a listing (no cursor) or feed (with one), in the sample window.
async fn follow<R: Samples>(
    target: &StoreTarget<'_, R>,
    rule: &str,
    cursor: Option<Cursor>,
    page_size: Option<usize>,
) -> Listing<R> {
    let mut listing = Listing {
        upserts: Vec::new(),
        removals: Vec::new(),
        cursor: ok(rule, "making a cursor", Cursor::new("unset")),
        pages: 0,
    };
    let mut page_token = None;
    while listing.pages < MAX_PAGES {
        let what = if cursor.is_some() {
            "listing changes since a cursor"
        } else {
            "a full listing"
        };
        let page = ok(
            rule,
            what,
            target
                .store
                .changes(
                    &target.collection,
                    ChangesRequest {
                        cursor: cursor.clone(),
                        page_token: page_token.take(),
                        window: Some(sample_window()),
                        page_size,
                    },
                )
                .await,
        );
        listing.pages += 1;
        listing.upserts.extend(page.upserts);
        listing.removals.extend(page.removals);
        match page.next {
            Continuation::NextPage(token) => page_token = Some(token),
            Continuation::Done(cursor) => {
                listing.cursor = cursor;
                return listing;
            }
            Continuation::DoneWithoutCursor => broken!(
                rule,
                "the listing ended without a cursor (allowed, and survived by the engine, but a \
                 conforming store gives one so a sync with nothing to do costs one request)"
            ),
        }
    }
    broken!(rule, "the listing did not end after {MAX_PAGES} pages")
}

/// A cursor from a full listing, or the reason the feed checks cannot run.
async fn fresh_cursor<R: Samples>(
    target: &StoreTarget<'_, R>,
    rule: &str,
) -> std::result::Result<Cursor, Outcome> {
    if !target.store.capabilities().incremental {
        return Err(Outcome::Skipped(
            "the store has no change feed (capabilities: incremental = false)".into(),
        ));
    }
    Ok(follow(target, rule, None, None).await.cursor)
}

/// A hook that the target has and that works, or the reason to skip.
fn hooks<'a, R: Samples>(
    target: &StoreTarget<'a, R>,
) -> std::result::Result<&'a dyn super::StoreHooks<R>, Outcome> {
    target
        .hooks
        .ok_or_else(|| Outcome::Skipped("the target has no StoreHooks".into()))
}

/// `collections_listed`: the collection under test is among the store's collections.
pub async fn check_collections_listed<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "collections_listed";
    let collections = ok(RULE, "collections", target.store.collections().await);
    ensure!(
        RULE,
        collections.iter().any(|c| c.id == target.collection),
        "collections() must list the collection under test {}; it listed {:?}",
        target.collection,
        collections
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
    );
    Outcome::Passed
}

/// `create_then_get`: a created record can be read back, at the version the create
/// returned, with every supported field as written.
pub async fn check_create_then_get<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "create_then_get";
    let caps = target.store.capabilities();
    let created = create(target, RULE, 1).await;
    same_fields(
        RULE,
        "the create's answer",
        &caps,
        &created.record,
        &R::sample(1),
    );
    let got = get(target, RULE, &created.id).await;
    let Some(got) = got else {
        broken!(RULE, "get must find the item {} just created", created.id)
    };
    ensure!(
        RULE,
        got.version == created.version,
        "get must return the version the create returned ({} != {})",
        got.version,
        created.version
    );
    same_fields(RULE, "get after create", &caps, &got.record, &R::sample(1));
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `create_stores_link_key`: the link key given to create is on the item.
pub async fn check_create_stores_link_key<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "create_stores_link_key";
    if !target.store.capabilities().link_keys {
        return Outcome::Skipped("the store holds no link keys (capabilities)".into());
    }
    let key = fresh_key(RULE);
    let created = ok(
        RULE,
        "create",
        target
            .store
            .create(&target.collection, &R::sample(2), &key)
            .await,
    );
    ensure!(
        RULE,
        created.link_key.as_ref() == Some(&key),
        "the create's answer must carry the link key {key}; it carries {:?}",
        created.link_key
    );
    let got = get(target, RULE, &created.id).await;
    ensure!(
        RULE,
        got.as_ref().and_then(|g| g.link_key.as_ref()) == Some(&key),
        "get must return the link key {key} stored by create; it returned {:?}",
        got.map(|g| g.link_key)
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `find_by_link_key`: an item is found by the link key it was created with, and only by
/// it: another item listed first, or a server that ignores the lookup's filter and answers
/// with every item, never makes it return an item carrying another key. An unknown key
/// finds nothing.
pub async fn check_find_by_link_key<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "find_by_link_key";
    if !target.store.capabilities().link_keys {
        return Outcome::Skipped("the store holds no link keys (capabilities)".into());
    }
    // Created first, so a server ignoring the filter lists it before the one looked up.
    let other_key = fresh_key(RULE);
    let other = ok(
        RULE,
        "create",
        target
            .store
            .create(&target.collection, &R::sample(4), &other_key)
            .await,
    );
    let key = fresh_key(RULE);
    let created = ok(
        RULE,
        "create",
        target
            .store
            .create(&target.collection, &R::sample(3), &key)
            .await,
    );
    let found = ok(
        RULE,
        "find_by_link_key",
        target
            .store
            .find_by_link_key(&target.collection, &key)
            .await,
    );
    ensure!(
        RULE,
        found.as_ref().map(|f| &f.id) == Some(&created.id),
        "find_by_link_key({key}) must find item {}; it found {:?}",
        created.id,
        found.map(|f| f.id)
    );
    ensure!(
        RULE,
        found.as_ref().and_then(|f| f.link_key.as_ref()) == Some(&key),
        "find_by_link_key({key}) must return the item with its link key; it returned {:?}",
        found.and_then(|f| f.link_key)
    );
    let unknown = fresh_key(RULE);
    let found = ok(
        RULE,
        "find_by_link_key of an unknown key",
        target
            .store
            .find_by_link_key(&target.collection, &unknown)
            .await,
    );
    ensure!(
        RULE,
        found.is_none(),
        "find_by_link_key of a key no item carries must be None (a store must check the key \
         of what the server answers); it found {:?}",
        found.map(|f| f.id)
    );
    cleanup(target, &[&other.id, &created.id]).await;
    Outcome::Passed
}

/// `update_changes_version`: every write gives the item a new version, and get returns it.
pub async fn check_update_changes_version<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "update_changes_version";
    let caps = target.store.capabilities();
    let created = create(target, RULE, 4).await;
    let mut edited = created.record.clone();
    edited.edit(4);
    let updated = ok(RULE, "update", update_all(target, &created, &edited).await);
    ensure!(
        RULE,
        updated.version != created.version,
        "every write must change the version: the update returned {} again",
        updated.version
    );
    let got = get(target, RULE, &created.id).await;
    let Some(got) = got else {
        broken!(RULE, "get must find the item {} just updated", created.id)
    };
    ensure!(
        RULE,
        got.version == updated.version,
        "get must return the version the update returned ({} != {})",
        got.version,
        updated.version
    );
    same_fields(RULE, "get after update", &caps, &got.record, &edited);
    let again = ok(
        RULE,
        "a second update",
        update_all(target, &got, &R::sample(5)).await,
    );
    ensure!(
        RULE,
        again.version != updated.version && again.version != created.version,
        "every write must change the version: the second update returned {}",
        again.version
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `update_writes_only_given_fields`: an update writes the fields it names and leaves the
/// others as the store has them (PATCH, not PUT).
pub async fn check_update_writes_only_given_fields<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "update_writes_only_given_fields";
    let caps = target.store.capabilities();
    let (a, b) = (R::sample(6), R::sample(7));
    let (fa, fb) = (fitted(&caps, &a), fitted(&caps, &b));
    let differing: Vec<R::Field> = supported::<R>(&caps)
        .into_iter()
        .filter(|&f| fa.comparable(f) != fb.comparable(f))
        .collect();
    if differing.len() < 2 {
        return Outcome::Skipped(
            "samples 6 and 7 differ in fewer than two fields the store holds".into(),
        );
    }
    let written: BTreeSet<R::Field> = differing.iter().copied().step_by(2).collect();
    let created = ok(
        RULE,
        "create",
        target
            .store
            .create(&target.collection, &a, &fresh_key(RULE))
            .await,
    );
    let updated = ok(
        RULE,
        "update",
        target
            .store
            .update(
                &target.collection,
                &created.id,
                &created.version,
                &b,
                &written,
            )
            .await,
    );
    let got = get(target, RULE, &created.id).await;
    let Some(got) = got else {
        broken!(RULE, "get must find the item {} just updated", created.id)
    };
    for (what, record) in [
        ("the update's answer", &updated.record),
        ("get", &got.record),
    ] {
        for field in supported::<R>(&caps) {
            let (want, why) = if written.contains(&field) {
                (
                    fb.comparable(field),
                    "was written and must hold the new value",
                )
            } else {
                (
                    fa.comparable(field),
                    "was not written and must keep its value",
                )
            };
            let have = record.comparable(field);
            ensure!(
                RULE,
                have == want,
                "{what}: field `{}` {why}\n  got:  {have}\n  want: {want}",
                field.name()
            );
        }
    }
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `update_with_stale_version_is_precondition_failed`: an update based on a version that
/// is no longer current fails with `PreconditionFailed` and changes nothing.
pub async fn check_update_with_stale_version_is_precondition_failed<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "update_with_stale_version_is_precondition_failed";
    let caps = target.store.capabilities();
    let created = create(target, RULE, 8).await;
    let mut first = created.record.clone();
    first.edit(8);
    let current = ok(RULE, "update", update_all(target, &created, &first).await);
    let stale = Stored {
        version: created.version.clone(),
        ..current.clone()
    };
    let mut second = created.record.clone();
    second.edit(9);
    fails(
        RULE,
        "an update with a stale version",
        update_all(target, &stale, &second).await,
        "PreconditionFailed",
        |k| *k == ErrorKind::PreconditionFailed,
    );
    let got = get(target, RULE, &created.id).await;
    let Some(got) = got else {
        broken!(RULE, "a failed update must not remove item {}", created.id)
    };
    ensure!(
        RULE,
        got.version == current.version,
        "a failed update must not change the version ({} became {})",
        current.version,
        got.version
    );
    same_fields(
        RULE,
        "after a failed update, the record",
        &caps,
        &got.record,
        &first,
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `delete_with_stale_version_is_precondition_failed`: a deletion based on a version that
/// is no longer current fails with `PreconditionFailed` and deletes nothing.
pub async fn check_delete_with_stale_version_is_precondition_failed<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "delete_with_stale_version_is_precondition_failed";
    let created = create(target, RULE, 10).await;
    let mut edited = created.record.clone();
    edited.edit(10);
    let current = ok(RULE, "update", update_all(target, &created, &edited).await);
    fails(
        RULE,
        "a deletion with a stale version",
        target
            .store
            .delete(&target.collection, &created.id, &created.version)
            .await,
        "PreconditionFailed",
        |k| *k == ErrorKind::PreconditionFailed,
    );
    let got = get(target, RULE, &created.id).await;
    ensure!(
        RULE,
        got.as_ref().map(|g| &g.version) == Some(&current.version),
        "a failed deletion must leave item {} at version {}; get returned {:?}",
        created.id,
        current.version,
        got.map(|g| g.version)
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `delete_then_get_is_none`: a deleted item is gone.
pub async fn check_delete_then_get_is_none<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "delete_then_get_is_none";
    let created = create(target, RULE, 11).await;
    ok(
        RULE,
        "delete at the current version",
        target
            .store
            .delete(&target.collection, &created.id, &created.version)
            .await,
    );
    let got = get(target, RULE, &created.id).await;
    ensure!(
        RULE,
        got.is_none(),
        "get of a deleted item must be None; it returned version {:?}",
        got.map(|g| g.version)
    );
    Outcome::Passed
}

/// `update_missing_is_not_found`: updating or deleting an item that no longer exists fails
/// with `NotFound`.
pub async fn check_update_missing_is_not_found<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "update_missing_is_not_found";
    let created = create(target, RULE, 12).await;
    ok(
        RULE,
        "delete",
        target
            .store
            .delete(&target.collection, &created.id, &created.version)
            .await,
    );
    fails(
        RULE,
        "an update of a deleted item",
        update_all(target, &created, &R::sample(13)).await,
        "NotFound",
        |k| *k == ErrorKind::NotFound,
    );
    fails(
        RULE,
        "a deletion of a deleted item",
        target
            .store
            .delete(&target.collection, &created.id, &created.version)
            .await,
        "NotFound",
        |k| *k == ErrorKind::NotFound,
    );
    let got = get(target, RULE, &created.id).await;
    ensure!(
        RULE,
        got.is_none(),
        "an update of a deleted item must not bring it back"
    );
    Outcome::Passed
}

/// `full_listing_pages_to_the_end`: a full listing, followed page by page (short and empty
/// pages included) to its cursor, holds every record exactly once.
pub async fn check_full_listing_pages_to_the_end<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "full_listing_pages_to_the_end";
    let mut created = Vec::new();
    for n in 20..25 {
        created.push(create(target, RULE, n).await);
    }
    let listing = follow(target, RULE, None, Some(2)).await;
    let mut seen: BTreeMap<&ItemId, usize> = BTreeMap::new();
    for upsert in &listing.upserts {
        *seen.entry(&upsert.item.id).or_insert(0) += 1;
    }
    for item in &created {
        let times = seen.get(&item.id).copied().unwrap_or(0);
        ensure!(
            RULE,
            times == 1,
            "a full listing must hold every record exactly once: item {} was listed {times} times in {} pages (did the client stop at a short or empty page, or the store end the listing early?)",
            item.id,
            listing.pages
        );
    }
    if let Some((id, times)) = seen.iter().find(|(_, t)| **t > 1) {
        broken!(
            RULE,
            "a full listing must hold every record once: item {id} was listed {times} times"
        );
    }
    let ids: Vec<&ItemId> = created.iter().map(|c| &c.id).collect();
    cleanup(target, &ids).await;
    Outcome::Passed
}

/// `changes_after_create`: a record created by the store's own client shows in the feed
/// since the previous cursor.
pub async fn check_changes_after_create<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "changes_after_create";
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => return skip,
    };
    let created = create(target, RULE, 30).await;
    let feed = follow(target, RULE, Some(cursor), None).await;
    let upserts = feed.upserts_of(&created.id);
    ensure!(
        RULE,
        upserts
            .last()
            .is_some_and(|u| u.item.version == created.version),
        "the feed since the previous cursor must report the record created since (item {} at {}); it reported {:?}",
        created.id,
        created.version,
        upserts.iter().map(|u| &u.item.version).collect::<Vec<_>>()
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `changes_after_update`: an update by the store's own client shows in the feed since the
/// previous cursor, at the new version.
pub async fn check_changes_after_update<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "changes_after_update";
    let created = create(target, RULE, 31).await;
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => {
            cleanup(target, &[&created.id]).await;
            return skip;
        }
    };
    let mut edited = created.record.clone();
    edited.edit(31);
    let updated = ok(RULE, "update", update_all(target, &created, &edited).await);
    let feed = follow(target, RULE, Some(cursor), None).await;
    let upserts = feed.upserts_of(&created.id);
    ensure!(
        RULE,
        upserts
            .last()
            .is_some_and(|u| u.item.version == updated.version),
        "the feed since the previous cursor must report the update (item {} at {}); it reported {:?}",
        created.id,
        updated.version,
        upserts.iter().map(|u| &u.item.version).collect::<Vec<_>>()
    );
    if let Some(upsert) = upserts.last()
        && upsert.sent.is_none()
    {
        same_fields(
            RULE,
            "the updated record in the feed",
            &target.store.capabilities(),
            &upsert.item.record,
            &edited,
        );
    }
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `changes_after_delete`: a deletion by the store's own client shows in the feed since the
/// previous cursor as a removal (not "left the window").
pub async fn check_changes_after_delete<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "changes_after_delete";
    let created = create(target, RULE, 32).await;
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => {
            cleanup(target, &[&created.id]).await;
            return skip;
        }
    };
    ok(
        RULE,
        "delete",
        target
            .store
            .delete(&target.collection, &created.id, &created.version)
            .await,
    );
    let feed = follow(target, RULE, Some(cursor), None).await;
    let removals = feed.removals_of(&created.id);
    ensure!(
        RULE,
        !removals.is_empty(),
        "the feed since the previous cursor must report the deletion of item {} as a removal",
        created.id
    );
    ensure!(
        RULE,
        removals
            .iter()
            .all(|r| r.reason != RemovalReason::LeftWindow),
        "a deleted item must not be reported as having left the window"
    );
    ensure!(
        RULE,
        feed.upserts_of(&created.id).is_empty(),
        "the feed must not report a deleted item {} as an upsert",
        created.id
    );
    Outcome::Passed
}

/// `no_changes_means_empty_feed`: the feed right after a listing, with nothing written,
/// reports nothing; and so does the feed after that.
pub async fn check_no_changes_means_empty_feed<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "no_changes_means_empty_feed";
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => return skip,
    };
    let mut cursor = cursor;
    for round in ["the first", "the second"] {
        let feed = follow(target, RULE, Some(cursor), None).await;
        ensure!(
            RULE,
            feed.upserts.is_empty() && feed.removals.is_empty(),
            "{round} feed with nothing written since must be empty; it reported {} upserts ({:?}) and {} removals",
            feed.upserts.len(),
            feed.upserts.iter().map(|u| &u.item.id).collect::<Vec<_>>(),
            feed.removals.len()
        );
        cursor = feed.cursor;
    }
    Outcome::Passed
}

/// `cursor_expiry_is_cursor_expired`: an expired cursor fails with `CursorExpired`, and a
/// full listing then gives a cursor that works.
pub async fn check_cursor_expiry_is_cursor_expired<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "cursor_expiry_is_cursor_expired";
    let hooks = match hooks(target) {
        Ok(h) => h,
        Err(skip) => return skip,
    };
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => return skip,
    };
    if !ok(
        RULE,
        "the expire_cursors hook",
        hooks.expire_cursors().await,
    ) {
        return Outcome::Skipped("the store cannot expire its cursors".into());
    }
    let result = target
        .store
        .changes(
            &target.collection,
            ChangesRequest {
                cursor: Some(cursor),
                window: Some(sample_window()),
                ..ChangesRequest::default()
            },
        )
        .await;
    fails(
        RULE,
        "the feed since an expired cursor",
        result.map(|page| (page.upserts.len(), page.removals.len())),
        "CursorExpired",
        |k| *k == ErrorKind::CursorExpired,
    );
    let relisted = follow(target, RULE, None, None).await;
    let feed = follow(target, RULE, Some(relisted.cursor), None).await;
    ensure!(
        RULE,
        feed.upserts.is_empty() && feed.removals.is_empty(),
        "the cursor of the full listing after an expiry must work and report nothing new"
    );
    Outcome::Passed
}

/// `edit_behind_back_shows_in_feed`: a record changed from outside (in the provider's own
/// app) shows in the feed with a new version and the new values.
pub async fn check_edit_behind_back_shows_in_feed<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "edit_behind_back_shows_in_feed";
    let hooks = match hooks(target) {
        Ok(h) => h,
        Err(skip) => return skip,
    };
    let created = create(target, RULE, 33).await;
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => {
            cleanup(target, &[&created.id]).await;
            return skip;
        }
    };
    let edit = |record: &mut R| record.edit(77);
    if !ok(
        RULE,
        "the edit_behind_back hook",
        hooks
            .edit_behind_back(&target.collection, &created.id, &edit)
            .await,
    ) {
        cleanup(target, &[&created.id]).await;
        return Outcome::Skipped("the store cannot be edited from outside".into());
    }
    let mut expected = created.record.clone();
    expected.edit(77);
    let feed = follow(target, RULE, Some(cursor), None).await;
    let upserts = feed.upserts_of(&created.id);
    let Some(upsert) = upserts.last() else {
        broken!(
            RULE,
            "the feed must report item {} edited from outside",
            created.id
        )
    };
    ensure!(
        RULE,
        upsert.item.version != created.version,
        "an edit from outside must give the item a new version; the feed reported {} again",
        created.version
    );
    if upsert.sent.is_none() {
        same_fields(
            RULE,
            "the record edited from outside, in the feed",
            &target.store.capabilities(),
            &upsert.item.record,
            &expected,
        );
    }
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// `delete_behind_back_is_removal`: a record deleted from outside shows in the feed as a
/// removal, and get no longer finds it.
pub async fn check_delete_behind_back_is_removal<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "delete_behind_back_is_removal";
    let hooks = match hooks(target) {
        Ok(h) => h,
        Err(skip) => return skip,
    };
    let created = create(target, RULE, 34).await;
    let cursor = match fresh_cursor(target, RULE).await {
        Ok(cursor) => cursor,
        Err(skip) => {
            cleanup(target, &[&created.id]).await;
            return skip;
        }
    };
    if !ok(
        RULE,
        "the delete_behind_back hook",
        hooks
            .delete_behind_back(&target.collection, &created.id)
            .await,
    ) {
        cleanup(target, &[&created.id]).await;
        return Outcome::Skipped("the store cannot be changed from outside".into());
    }
    let feed = follow(target, RULE, Some(cursor), None).await;
    let removals = feed.removals_of(&created.id);
    ensure!(
        RULE,
        !removals.is_empty()
            && removals
                .iter()
                .all(|r| r.reason != RemovalReason::LeftWindow),
        "the feed must report item {} deleted from outside as a removal (not as left the window); it reported {:?}",
        created.id,
        removals
    );
    ensure!(
        RULE,
        get(target, RULE, &created.id).await.is_none(),
        "get must not find item {} deleted from outside",
        created.id
    );
    Outcome::Passed
}

/// `window_excludes_outside_records`: a full listing in a window holds the records inside
/// it and not those outside (for records bound to time).
pub async fn check_window_excludes_outside_records<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "window_excludes_outside_records";
    let Some(outside) = R::outside_window(35) else {
        return Outcome::Skipped("the record type has no samples outside the window".into());
    };
    let Some((start, end)) = outside.time_span() else {
        return Outcome::Skipped("the record type is not bound to time".into());
    };
    let window = sample_window();
    ensure!(
        RULE,
        !window.contains(&outside),
        "Samples::outside_window(35) ({start} .. {end}) must lie outside the sample window"
    );
    let inside = create(target, RULE, 36).await;
    let out = ok(
        RULE,
        "create a record outside the window",
        target
            .store
            .create(&target.collection, &outside, &fresh_key(RULE))
            .await,
    );
    let listing = follow(target, RULE, None, None).await;
    ensure!(
        RULE,
        listing.upserts_of(&inside.id).len() == 1,
        "a full listing in a window must hold the record {} inside it",
        inside.id
    );
    ensure!(
        RULE,
        listing.upserts_of(&out.id).is_empty(),
        "a full listing in the window {} .. {} must not hold record {} ({start} .. {end})",
        window.start,
        window.end,
        out.id
    );
    cleanup(target, &[&inside.id, &out.id]).await;
    Outcome::Passed
}

/// `batch_results_per_item`: a batch returns one result per operation, in order, and a
/// failed operation does not stop the others. Batches are cut at the store's `max_batch`.
pub async fn check_batch_results_per_item<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "batch_results_per_item";
    let caps = target.store.capabilities();
    let stale_item = create(target, RULE, 40).await;
    let mut edited = stale_item.record.clone();
    edited.edit(40);
    let current = ok(
        RULE,
        "update",
        update_all(target, &stale_item, &edited).await,
    );
    let missing = create(target, RULE, 41).await;
    ok(
        RULE,
        "delete",
        target
            .store
            .delete(&target.collection, &missing.id, &missing.version)
            .await,
    );
    let key = fresh_key(RULE);
    let ops = vec![
        WriteOp::Create {
            record: R::sample(42),
            link_key: key,
        },
        WriteOp::Update {
            id: stale_item.id.clone(),
            expected: stale_item.version.clone(),
            record: R::sample(43),
            fields: supported::<R>(&caps).into_iter().collect(),
        },
        WriteOp::Delete {
            id: missing.id.clone(),
            expected: missing.version.clone(),
        },
    ];
    let n = ops.len();
    let mut results = Vec::new();
    let mut pending = ops.into_iter().peekable();
    while pending.peek().is_some() {
        let chunk: Vec<WriteOp<R>> = pending.by_ref().take(caps.max_batch.max(1)).collect();
        let len = chunk.len();
        let answers = target.store.write_batch(&target.collection, chunk).await;
        ensure!(
            RULE,
            answers.len() == len,
            "a batch of {len} operations must return {len} results; it returned {}",
            answers.len()
        );
        results.extend(answers);
    }
    ensure!(RULE, results.len() == n, "one result per operation");
    let mut results = results.into_iter();
    let created = match results.next() {
        Some(Ok(WriteOutcome::Written(stored))) => stored,
        other => broken!(
            RULE,
            "the batch's create (first) must succeed with the item written; it returned {other:?}"
        ),
    };
    same_fields(
        RULE,
        "the batch's create",
        &caps,
        &created.record,
        &R::sample(42),
    );
    ensure!(
        RULE,
        get(target, RULE, &created.id).await.is_some(),
        "the item created by the batch must exist"
    );
    fails(
        RULE,
        "the batch's update with a stale version (second)",
        results.next().unwrap_or_else(|| Ok(WriteOutcome::Deleted)),
        "PreconditionFailed",
        |k| *k == ErrorKind::PreconditionFailed,
    );
    fails(
        RULE,
        "the batch's deletion of a missing item (third)",
        results.next().unwrap_or_else(|| Ok(WriteOutcome::Deleted)),
        "NotFound",
        |k| *k == ErrorKind::NotFound,
    );
    let after = get(target, RULE, &stale_item.id).await;
    ensure!(
        RULE,
        after.as_ref().map(|a| &a.version) == Some(&current.version),
        "the failed update of a batch must change nothing (item {} should stay at {})",
        stale_item.id,
        current.version
    );
    cleanup(target, &[&created.id, &stale_item.id]).await;
    Outcome::Passed
}

/// `round_trip_every_supported_field`: every field the capabilities claim comes back as
/// written (as the store can hold it: after [`Record::fit`]), through create, get, update
/// and a full listing.
pub async fn check_round_trip_every_supported_field<R: Samples>(
    target: &StoreTarget<'_, R>,
) -> Outcome {
    const RULE: &str = "round_trip_every_supported_field";
    let caps = target.store.capabilities();
    let mut ids = Vec::new();
    for n in 50..56 {
        let created = create(target, RULE, n).await;
        let Some(got) = get(target, RULE, &created.id).await else {
            broken!(RULE, "get must find item {} just created", created.id)
        };
        same_fields(
            RULE,
            &format!("sample {n} after create"),
            &caps,
            &got.record,
            &R::sample(n),
        );
        let replacement = R::sample(n + 10);
        let updated = ok(RULE, "update", update_all(target, &got, &replacement).await);
        let Some(got) = get(target, RULE, &updated.id).await else {
            broken!(RULE, "get must find item {} just updated", updated.id)
        };
        same_fields(
            RULE,
            &format!("sample {} written over sample {n}", n + 10),
            &caps,
            &got.record,
            &replacement,
        );
        ids.push((created.id, replacement));
    }
    let listing = follow(target, RULE, None, None).await;
    for (id, record) in &ids {
        let upserts = listing.upserts_of(id);
        let Some(upsert) = upserts.first() else {
            broken!(RULE, "a full listing must hold item {id}")
        };
        if upsert.sent.is_none() {
            same_fields(
                RULE,
                "in a full listing",
                &caps,
                &upsert.item.record,
                record,
            );
        }
    }
    let ids: Vec<&ItemId> = ids.iter().map(|(id, _)| id).collect();
    cleanup(target, &ids).await;
    Outcome::Passed
}

/// `invalid_record_is_rejected`: a record its own validation rejects is refused with
/// `InvalidRecord`, by create (nothing stored) and by update (nothing changed).
pub async fn check_invalid_record_is_rejected<R: Samples>(target: &StoreTarget<'_, R>) -> Outcome {
    const RULE: &str = "invalid_record_is_rejected";
    let Some(invalid) = R::invalid() else {
        return Outcome::Skipped("the record type has no invalid samples".into());
    };
    if invalid.validate().is_ok() {
        return Outcome::Skipped("Samples::invalid returned a record that validates".into());
    }
    let is_invalid = |k: &ErrorKind| matches!(k, ErrorKind::InvalidRecord { .. });
    let key = fresh_key(RULE);
    fails(
        RULE,
        "a create of an invalid record",
        target
            .store
            .create(&target.collection, &invalid, &key)
            .await,
        "InvalidRecord",
        is_invalid,
    );
    if target.store.capabilities().link_keys {
        let found = ok(
            RULE,
            "find_by_link_key",
            target
                .store
                .find_by_link_key(&target.collection, &key)
                .await,
        );
        ensure!(
            RULE,
            found.is_none(),
            "a rejected create must store nothing; item {:?} carries its link key",
            found.map(|f| f.id)
        );
    }
    let created = create(target, RULE, 60).await;
    fails(
        RULE,
        "an update making a record invalid",
        update_all(target, &created, &invalid).await,
        "InvalidRecord",
        is_invalid,
    );
    let got = get(target, RULE, &created.id).await;
    ensure!(
        RULE,
        got.as_ref().map(|g| &g.version) == Some(&created.version),
        "a rejected update must change nothing (item {} should stay at {})",
        created.id,
        created.version
    );
    cleanup(target, &[&created.id]).await;
    Outcome::Passed
}

/// Runs every store check, in order, and reports which passed and which were skipped. A
/// broken rule panics with its name.
pub async fn run_store_suite<R: Samples>(target: &StoreTarget<'_, R>) -> SuiteReport {
    let mut report = SuiteReport::default();
    macro_rules! run {
        ($($name:literal => $check:ident),+ $(,)?) => {
            $( report.record($name, $check(target).await); )+
        };
    }
    run! {
        "collections_listed" => check_collections_listed,
        "create_then_get" => check_create_then_get,
        "create_stores_link_key" => check_create_stores_link_key,
        "find_by_link_key" => check_find_by_link_key,
        "update_changes_version" => check_update_changes_version,
        "update_writes_only_given_fields" => check_update_writes_only_given_fields,
        "update_with_stale_version_is_precondition_failed" => check_update_with_stale_version_is_precondition_failed,
        "delete_with_stale_version_is_precondition_failed" => check_delete_with_stale_version_is_precondition_failed,
        "delete_then_get_is_none" => check_delete_then_get_is_none,
        "update_missing_is_not_found" => check_update_missing_is_not_found,
        "full_listing_pages_to_the_end" => check_full_listing_pages_to_the_end,
        "changes_after_create" => check_changes_after_create,
        "changes_after_update" => check_changes_after_update,
        "changes_after_delete" => check_changes_after_delete,
        "no_changes_means_empty_feed" => check_no_changes_means_empty_feed,
        "cursor_expiry_is_cursor_expired" => check_cursor_expiry_is_cursor_expired,
        "edit_behind_back_shows_in_feed" => check_edit_behind_back_shows_in_feed,
        "delete_behind_back_is_removal" => check_delete_behind_back_is_removal,
        "window_excludes_outside_records" => check_window_excludes_outside_records,
        "batch_results_per_item" => check_batch_results_per_item,
        "round_trip_every_supported_field" => check_round_trip_every_supported_field,
        "invalid_record_is_rejected" => check_invalid_record_is_rejected,
    }
    report
}
