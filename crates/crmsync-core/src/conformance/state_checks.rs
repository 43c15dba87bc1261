//! The state half of the conformance suite: checks of the [`SyncState`] contract.
//!
//! Each check works under its own account (`conformance:<rule>`), which it resets first,
//! so the checks can share one state and be run again on a database that kept the data
//! of an earlier run. A broken rule panics with a message that starts with
//! ``SyncState rule `<rule>` broken``, naming the check.
//!
//! Times used by the checks are whole milliseconds: a state may drop anything finer
//! (PostgreSQL keeps microseconds), nothing coarser.
//!
//! Run every check with [`run_state_suite`]:
//!
//! ```
//! use crmsync_core::SyncState;
//! use crmsync_core::conformance::{StateTarget, run_state_suite};
//!
//! /// In your crate's tests: `check_my_state(&MyCrmState::connect(..).await?).await`.
//! async fn check_my_state(state: &dyn SyncState) {
//!     let report = run_state_suite(&StateTarget::new(state)).await;
//!     report.print();
//!     assert!(report.skipped.is_empty(), "{report}");
//! }
//! ```

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::{Outcome, StateTarget, SuiteReport};
use crate::error::Result;
use crate::hash::ContentHash;
use crate::ids::{AccountId, CollectionId, CrmId, Cursor, LinkKey, RemoteId, Version};
use crate::record::{CanonicalRecord, RecordExt};
use crate::state::{
    AccountStatus, CursorState, Deferred, DeferredReason, Intent, Link, PendingWrite, ResetCounts,
    ResetScope, RunSummary, Side, StateKey, StateOp, SyncState,
};
use crate::store::Window;

// ----------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------

/// Panics with the message every broken rule uses.
macro_rules! broken {
    ($rule:expr, $($msg:tt)+) => {
        panic!("SyncState rule `{}` broken: {}", $rule, format!($($msg)+))
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

/// Asserts that two values are equal, showing both.
macro_rules! ensure_eq {
    ($rule:expr, $got:expr, $want:expr, $($msg:tt)+) => {{
        let got = &$got;
        let want = &$want;
        if got != want {
            broken!($rule, "{}\n  got:  {:?}\n  want: {:?}", format!($($msg)+), got, want);
        }
    }};
}

/// The value of a call that must succeed.
#[track_caller]
fn ok<T>(rule: &str, what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => broken!(rule, "{what} failed: {e} ({e:?})"),
    }
}

/// A valid id from a literal of the suite.
#[track_caller]
fn id<T: std::str::FromStr<Err = crate::Error>>(text: &str) -> T {
    match text.parse() {
        Ok(id) => id,
        Err(e) => panic!("conformance suite bug: {text:?} is not a valid id: {e}"),
    }
}

fn account(rule: &str) -> AccountId {
    id(&format!("conformance:{rule}"))
}

fn key(account: &AccountId, kind: &str, collection: &str) -> StateKey {
    StateKey::new(account.clone(), kind, id::<CollectionId>(collection))
}

/// A time in whole milliseconds.
fn at(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + millis)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// A canonical record built from raw field values, with the hashes the core computes.
fn canonical(kind: &str, fields: BTreeMap<String, serde_json::Value>) -> CanonicalRecord {
    let field_hashes: BTreeMap<String, ContentHash> = fields
        .iter()
        .map(|(name, value)| (name.clone(), ContentHash::of_value(value)))
        .collect();
    let hash = CanonicalRecord::hash_of(&field_hashes);
    CanonicalRecord {
        kind: kind.to_owned(),
        fields,
        field_hashes,
        hash,
    }
}

/// The `n`-th baseline: every kind of JSON value a field may hold.
fn baseline(n: usize) -> CanonicalRecord {
    let mut fields = BTreeMap::new();
    fields.insert(
        "title".to_owned(),
        json!(format!("Meeting {n} with Zoë 😀")),
    );
    fields.insert(
        "description".to_owned(),
        json!("line one\nline \"two\"\t\\ end"),
    );
    fields.insert("private".to_owned(), json!(n.is_multiple_of(2)));
    fields.insert("minutes".to_owned(), json!(n as u64 * 15));
    fields.insert("offset".to_owned(), json!(-(n as i64) - 1));
    fields.insert("ratio".to_owned(), json!(0.1 + n as f64));
    fields.insert("big".to_owned(), json!(u64::MAX));
    fields.insert("none".to_owned(), serde_json::Value::Null);
    fields.insert("empty".to_owned(), json!(""));
    fields.insert(
        "emails".to_owned(),
        json!([{"address": format!("p{n}@example.com"), "usage": "work"}, {"usage": "home", "address": "x@example.org"}]),
    );
    fields.insert(
        "period".to_owned(),
        json!({"zone": "Europe/Paris", "start": "2024-03-31T01:30:00", "all_day": false, "nested": {"b": [], "a": {}}}),
    );
    canonical("event", fields)
}

fn link(n: usize) -> Link {
    Link {
        crm_id: id(&format!("crm-{n}")),
        remote_id: id(&format!("remote-{n}")),
        crm_version: Some(id(&format!("\"crm-v{n}\""))),
        remote_version: if n.is_multiple_of(3) {
            None
        } else {
            Some(id(&format!("W/\"remote-v{n}\"")))
        },
        baseline: baseline(n),
        synced_at: at(n as i64 * 1000 + 7),
        // Every other link carries writes awaiting their answer, which must survive too.
        pending: if n % 2 == 1 {
            vec![
                PendingWrite {
                    side: Side::Provider,
                    field: "title".into(),
                    hash: ContentHash::of_bytes(format!("title {n}").as_bytes()),
                },
                PendingWrite {
                    side: Side::Crm,
                    field: "location".into(),
                    hash: ContentHash::of_bytes(format!("location {n}").as_bytes()),
                },
            ]
        } else {
            Vec::new()
        },
    }
}

fn link_between(crm: &str, remote: &str, n: usize) -> Link {
    Link {
        crm_id: id(crm),
        remote_id: id(remote),
        ..link(n)
    }
}

fn intent(target: Side, source: &str, n: usize) -> Intent {
    Intent {
        target,
        source_id: id(source),
        link_key: id(&format!(
            "link-key-{n}-{}",
            ContentHash::of_bytes(source.as_bytes())
        )),
        created_at: at(n as i64),
    }
}

fn deferred(side: Side, item: &str, reason: DeferredReason, attempts: u32) -> Deferred {
    Deferred {
        side,
        id: id(item),
        reason,
        attempts,
        since: at(i64::from(attempts % 1000) * 60_000),
    }
}

fn cursor(text: &str, taken: i64, window: Option<(i64, i64)>) -> CursorState {
    CursorState {
        cursor: id(text),
        taken_at: at(taken),
        window: window.map(|(start, end)| Window {
            start: at(start),
            end: at(end),
        }),
    }
}

fn sorted_links(mut links: Vec<Link>) -> Vec<Link> {
    links.sort_by(|a, b| a.crm_id.cmp(&b.crm_id));
    links
}

fn sorted_intents(mut intents: Vec<Intent>) -> Vec<Intent> {
    intents.sort_by(|a, b| (a.target, &a.source_id).cmp(&(b.target, &b.source_id)));
    intents
}

fn sorted_deferred(mut deferred: Vec<Deferred>) -> Vec<Deferred> {
    deferred.sort_by(|a, b| (a.side, &a.id).cmp(&(b.side, &b.id)));
    deferred
}

/// Resets the check's account, so the check starts from nothing.
async fn fresh(state: &dyn SyncState, rule: &str) -> AccountId {
    let account = account(rule);
    ok(
        rule,
        "resetting the check's account before it starts",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: None,
                collection: None,
            })
            .await,
    );
    account
}

async fn commit(state: &dyn SyncState, rule: &str, key: &StateKey, ops: Vec<StateOp>) {
    let n = ops.len();
    ok(
        rule,
        &format!("commit of {n} operations under {key}"),
        state.commit(key, ops).await,
    );
}

async fn links_of(state: &dyn SyncState, rule: &str, key: &StateKey) -> Vec<Link> {
    sorted_links(ok(rule, "links", state.links(key).await))
}

async fn by_crm(state: &dyn SyncState, rule: &str, key: &StateKey, ids: &[&str]) -> Vec<Link> {
    let ids: Vec<CrmId> = ids.iter().map(|i| id(i)).collect();
    sorted_links(ok(
        rule,
        "links_by_crm",
        state.links_by_crm(key, &ids).await,
    ))
}

async fn by_remote(state: &dyn SyncState, rule: &str, key: &StateKey, ids: &[&str]) -> Vec<Link> {
    let ids: Vec<RemoteId> = ids.iter().map(|i| id(i)).collect();
    sorted_links(ok(
        rule,
        "links_by_remote",
        state.links_by_remote(key, &ids).await,
    ))
}

/// Everything a key holds, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct KeyContents {
    links: Vec<Link>,
    intents: Vec<Intent>,
    deferred: Vec<Deferred>,
    crm_cursor: Option<CursorState>,
    provider_cursor: Option<CursorState>,
}

async fn contents(state: &dyn SyncState, rule: &str, key: &StateKey) -> KeyContents {
    KeyContents {
        links: links_of(state, rule, key).await,
        intents: sorted_intents(ok(rule, "intents", state.intents(key).await)),
        deferred: sorted_deferred(ok(rule, "deferred", state.deferred(key).await)),
        crm_cursor: ok(rule, "cursor", state.cursor(key, Side::Crm).await),
        provider_cursor: ok(rule, "cursor", state.cursor(key, Side::Provider).await),
    }
}

impl KeyContents {
    fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.intents.is_empty()
            && self.deferred.is_empty()
            && self.crm_cursor.is_none()
            && self.provider_cursor.is_none()
    }
}

/// Fills a key with `links` links, one intent, one deferred item and both cursors.
fn filling(links: usize, tag: &str) -> Vec<StateOp> {
    let mut ops: Vec<StateOp> = (0..links).map(|n| StateOp::PutLink(link(n))).collect();
    ops.push(StateOp::PutIntent(intent(
        Side::Provider,
        &format!("crm-{tag}"),
        1,
    )));
    ops.push(StateOp::PutDeferred(deferred(
        Side::Crm,
        &format!("item-{tag}"),
        DeferredReason::DeletionPending,
        1,
    )));
    ops.push(StateOp::SetCursor {
        side: Side::Crm,
        cursor: Some(cursor(&format!("crm-cursor-{tag}"), 1, None)),
    });
    ops.push(StateOp::SetCursor {
        side: Side::Provider,
        cursor: Some(cursor(
            &format!("provider-cursor-{tag}"),
            2,
            Some((0, 1000)),
        )),
    });
    ops
}

/// Compares two links field by field, naming the field that did not survive.
fn ensure_same_link(rule: &str, got: &Link, want: &Link) {
    ensure_eq!(rule, got.crm_id, want.crm_id, "the link's CRM id changed");
    ensure_eq!(
        rule,
        got.remote_id,
        want.remote_id,
        "the link's remote id changed"
    );
    ensure_eq!(
        rule,
        got.crm_version,
        want.crm_version,
        "the CRM version of {} changed",
        want.crm_id
    );
    ensure_eq!(
        rule,
        got.remote_version,
        want.remote_version,
        "the remote version of {} changed",
        want.crm_id
    );
    ensure_eq!(
        rule,
        got.baseline.kind,
        want.baseline.kind,
        "the baseline's kind of {} changed",
        want.crm_id
    );
    for (name, value) in &want.baseline.fields {
        ensure_eq!(
            rule,
            got.baseline.fields.get(name),
            Some(value),
            "baseline field `{name}` of {} did not survive",
            want.crm_id
        );
    }
    ensure_eq!(
        rule,
        got.baseline.fields.len(),
        want.baseline.fields.len(),
        "the baseline of {} gained fields",
        want.crm_id
    );
    ensure_eq!(
        rule,
        got.baseline.field_hashes,
        want.baseline.field_hashes,
        "the per-field hashes of {} changed",
        want.crm_id
    );
    ensure_eq!(
        rule,
        got.baseline.hash,
        want.baseline.hash,
        "the baseline hash of {} changed",
        want.crm_id
    );
    ensure_eq!(
        rule,
        got.synced_at,
        want.synced_at,
        "synced_at of {} changed",
        want.crm_id
    );
}

/// A future the suite can poll in place (boxed, since `unsafe` is forbidden here).
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Polls two futures in turn until both are done, so their steps interleave (the suite
/// needs no runtime of its own).
async fn join2<'a, A, B>(a: Boxed<'a, A>, b: Boxed<'a, B>) -> (A, B) {
    let mut a = Some(a);
    let mut b = Some(b);
    let mut out_a = None;
    let mut out_b = None;
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Some(future) = a.as_mut()
            && let Poll::Ready(value) = future.as_mut().poll(cx)
        {
            out_a = Some(value);
            a = None;
        }
        if let Some(future) = b.as_mut()
            && let Poll::Ready(value) = future.as_mut().poll(cx)
        {
            out_b = Some(value);
            b = None;
        }
        if a.is_none()
            && b.is_none()
            && let (Some(x), Some(y)) = (out_a.take(), out_b.take())
        {
            return Poll::Ready((x, y));
        }
        Poll::Pending
    })
    .await
}

/// A future that yields once, so another future joined with it runs.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

// ----------------------------------------------------------------------------------------
// Checks
// ----------------------------------------------------------------------------------------

/// Every field of a link survives a commit and a read: both ids, both versions (and their
/// absence), the baseline's kind, every field value (strings with quotes, newlines and
/// emoji, large and negative integers, floats, null, nested objects and lists), the
/// per-field hashes, the record hash and `synced_at`.
pub async fn check_link_round_trip(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "link_round_trip";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");

    let contact = crate::Contact::new("Ann Lee");
    let mut wanted = vec![link(1), link(2), link(3)];
    wanted.push(Link {
        crm_id: id("crm-contact"),
        remote_id: id("people/c123"),
        crm_version: None,
        remote_version: None,
        baseline: contact.canonical(),
        synced_at: at(0),
        pending: Vec::new(),
    });
    commit(
        state,
        RULE,
        &key,
        wanted.iter().cloned().map(StateOp::PutLink).collect(),
    )
    .await;

    let got = links_of(state, RULE, &key).await;
    let wanted = sorted_links(wanted);
    ensure_eq!(
        RULE,
        got.len(),
        wanted.len(),
        "links() must return every link committed"
    );
    for (got, want) in got.iter().zip(&wanted) {
        ensure_same_link(RULE, got, want);
    }
    for want in &wanted {
        let one = by_crm(state, RULE, &key, &[want.crm_id.as_str()]).await;
        ensure_eq!(RULE, one.len(), 1, "links_by_crm must find {}", want.crm_id);
        ensure_same_link(RULE, &one[0], want);
        let one = by_remote(state, RULE, &key, &[want.remote_id.as_str()]).await;
        ensure_eq!(
            RULE,
            one.len(),
            1,
            "links_by_remote must find {}",
            want.remote_id
        );
        ensure_same_link(RULE, &one[0], want);
    }
    Outcome::Passed
}

/// `links_by_crm` and `links_by_remote` take lists, return the links of the ids that have
/// one and ignore the others; an empty list gives nothing.
pub async fn check_links_by_crm_and_by_remote(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "links_by_crm_and_by_remote";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    commit(
        state,
        RULE,
        &key,
        (0..10).map(|n| StateOp::PutLink(link(n))).collect(),
    )
    .await;

    let got = by_crm(
        state,
        RULE,
        &key,
        &["crm-2", "crm-missing", "crm-5", "crm-9"],
    )
    .await;
    let ids: Vec<&str> = got.iter().map(|l| l.crm_id.as_str()).collect();
    ensure_eq!(
        RULE,
        ids,
        vec!["crm-2", "crm-5", "crm-9"],
        "links_by_crm must return the links of the ids that have one, and ignore the rest"
    );
    ensure_eq!(RULE, got[1], link(5), "links_by_crm returned another link");

    let got = by_remote(
        state,
        RULE,
        &key,
        &["remote-0", "remote-7", "remote-missing"],
    )
    .await;
    let ids: Vec<&str> = got.iter().map(|l| l.crm_id.as_str()).collect();
    ensure_eq!(
        RULE,
        ids,
        vec!["crm-0", "crm-7"],
        "links_by_remote must return the links of the ids that have one, and ignore the rest"
    );
    ensure_eq!(
        RULE,
        got[1],
        link(7),
        "links_by_remote returned another link"
    );

    // A remote id is not a CRM id and the other way round.
    ensure!(
        RULE,
        by_crm(state, RULE, &key, &["remote-1"]).await.is_empty(),
        "links_by_crm must look up CRM ids only"
    );
    ensure!(
        RULE,
        by_remote(state, RULE, &key, &["crm-1"]).await.is_empty(),
        "links_by_remote must look up remote ids only"
    );
    ensure!(
        RULE,
        by_crm(state, RULE, &key, &[]).await.is_empty(),
        "links_by_crm of no ids must return nothing"
    );
    ensure!(
        RULE,
        by_remote(state, RULE, &key, &[]).await.is_empty(),
        "links_by_remote of no ids must return nothing"
    );
    Outcome::Passed
}

/// A `PutLink` replaces the link holding its CRM id and the link holding its remote id, so
/// each id belongs to at most one link; also inside one batch.
pub async fn check_put_link_replaces_by_either_id(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "put_link_replaces_by_either_id";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "contact", "address-book");
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutLink(link_between("crm-a", "rem-a", 1)),
            StateOp::PutLink(link_between("crm-b", "rem-b", 2)),
        ],
    )
    .await;

    // Same CRM id, new remote id: the old remote id is free again.
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutLink(link_between("crm-a", "rem-a2", 3))],
    )
    .await;
    ensure!(
        RULE,
        by_remote(state, RULE, &key, &["rem-a"]).await.is_empty(),
        "re-linking crm-a to rem-a2 must free rem-a"
    );
    ensure_eq!(
        RULE,
        by_crm(state, RULE, &key, &["crm-a"]).await,
        vec![link_between("crm-a", "rem-a2", 3)],
        "crm-a must hold the new link"
    );

    // Same remote id, new CRM id: the old CRM id loses its link.
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutLink(link_between("crm-c", "rem-b", 4))],
    )
    .await;
    ensure!(
        RULE,
        by_crm(state, RULE, &key, &["crm-b"]).await.is_empty(),
        "linking rem-b to crm-c must remove the link of crm-b"
    );
    ensure_eq!(
        RULE,
        by_remote(state, RULE, &key, &["rem-b"]).await,
        vec![link_between("crm-c", "rem-b", 4)],
        "rem-b must belong to crm-c"
    );
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await.len(),
        2,
        "two links must remain (crm-a, crm-c)"
    );

    // Both ids taken by two different links: both are replaced by one.
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutLink(link_between("crm-a", "rem-b", 5))],
    )
    .await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await,
        vec![link_between("crm-a", "rem-b", 5)],
        "a link taking a CRM id from one link and a remote id from another must replace both"
    );

    // Inside one batch, the later link wins.
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutLink(link_between("crm-x", "rem-x", 6)),
            StateOp::PutLink(link_between("crm-y", "rem-x", 7)),
        ],
    )
    .await;
    ensure!(
        RULE,
        by_crm(state, RULE, &key, &["crm-x"]).await.is_empty(),
        "in one batch, a later link taking rem-x must replace the earlier one"
    );
    ensure_eq!(
        RULE,
        by_remote(state, RULE, &key, &["rem-x"]).await,
        vec![link_between("crm-y", "rem-x", 7)],
        "rem-x must belong to crm-y"
    );
    Outcome::Passed
}

/// `link_count` counts the links of its key, and only those, as links come and go.
pub async fn check_link_count_follows_links(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "link_count_follows_links";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let other = key(&account, "contact", "calendar");
    let key = key(&account, "event", "calendar");
    ensure_eq!(
        RULE,
        ok(RULE, "count links", state.link_count(&key).await),
        0,
        "an empty key has no links"
    );
    commit(
        state,
        RULE,
        &key,
        (0..5).map(|n| StateOp::PutLink(link(n))).collect(),
    )
    .await;
    commit(state, RULE, &other, vec![StateOp::PutLink(link(9))]).await;
    ensure_eq!(
        RULE,
        ok(RULE, "count links", state.link_count(&key).await),
        5,
        "five links were put under the key"
    );
    commit(state, RULE, &key, vec![StateOp::RemoveLink(id("crm-1"))]).await;
    ensure_eq!(
        RULE,
        ok(RULE, "count links", state.link_count(&key).await),
        4,
        "a removed link is no longer counted"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "count links", state.link_count(&key).await) as usize,
        links_of(state, RULE, &key).await.len(),
        "the count must equal the number of links read"
    );
    Outcome::Passed
}

/// `RemoveLink` removes the link (both lookups forget it) and only it; removing a CRM id
/// that has no link is not an error.
pub async fn check_remove_link(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "remove_link";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    commit(
        state,
        RULE,
        &key,
        (0..3).map(|n| StateOp::PutLink(link(n))).collect(),
    )
    .await;
    commit(state, RULE, &key, vec![StateOp::RemoveLink(id("crm-1"))]).await;
    ensure!(
        RULE,
        by_crm(state, RULE, &key, &["crm-1"]).await.is_empty(),
        "a removed link must not be found by its CRM id"
    );
    ensure!(
        RULE,
        by_remote(state, RULE, &key, &["remote-1"]).await.is_empty(),
        "a removed link must not be found by its remote id"
    );
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await,
        vec![link(0), link(2)],
        "removing one link must leave the others"
    );
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::RemoveLink(id("crm-never"))],
    )
    .await;
    // The remote id of a removed link can be linked again.
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutLink(link_between("crm-9", "remote-1", 9))],
    )
    .await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await.len(),
        3,
        "the remote id of a removed link must be free to link again"
    );
    Outcome::Passed
}

/// Each side has its own cursor, with its `taken_at` and window; setting one replaces it,
/// `None` forgets it, and the other side's is untouched.
pub async fn check_cursor_per_side_round_trip(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "cursor_per_side_round_trip";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Crm).await),
        None,
        "a key never written has no cursor"
    );

    // Graph delta links are long URLs.
    let long = format!(
        "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken={}",
        "a".repeat(4000)
    );
    let crm = cursor("crm-cursor-1", 10, Some((-86_400_000, 86_400_000)));
    let provider = cursor(&long, 20, None);
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::SetCursor {
                side: Side::Crm,
                cursor: Some(crm.clone()),
            },
            StateOp::SetCursor {
                side: Side::Provider,
                cursor: Some(provider.clone()),
            },
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Crm).await),
        Some(crm),
        "the CRM cursor (with its taken_at and window) must round-trip"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Provider).await),
        Some(provider.clone()),
        "the provider cursor (long, without a window) must round-trip"
    );

    let crm2 = cursor("crm-cursor-2", 30, Some((0, 1)));
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::SetCursor {
            side: Side::Crm,
            cursor: Some(crm2.clone()),
        }],
    )
    .await;
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Crm).await),
        Some(crm2),
        "setting a cursor must replace the old one"
    );
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::SetCursor {
            side: Side::Crm,
            cursor: None,
        }],
    )
    .await;
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Crm).await),
        None,
        "setting a cursor to None must forget it"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Provider).await),
        Some(provider),
        "forgetting one side's cursor must keep the other side's"
    );
    Outcome::Passed
}

/// Intents are kept per target side and source id: written, replaced, listed and cleared
/// one by one. A state that loses an intent lets a crash create a duplicate.
pub async fn check_intents_round_trip_and_clear(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "intents_round_trip_and_clear";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    let to_provider = intent(Side::Provider, "crm-1", 1);
    let to_crm = intent(Side::Crm, "remote-1", 2);
    // Same source id, other target: a different intent.
    let same_source = intent(Side::Crm, "crm-1", 3);
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutIntent(to_provider.clone()),
            StateOp::PutIntent(to_crm.clone()),
            StateOp::PutIntent(same_source.clone()),
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_intents(ok(RULE, "intents", state.intents(&key).await)),
        sorted_intents(vec![
            to_provider.clone(),
            to_crm.clone(),
            same_source.clone()
        ]),
        "every intent written must be listed, with its link key and created_at"
    );

    let replaced = Intent {
        link_key: id::<LinkKey>("another-link-key"),
        created_at: at(99),
        ..to_provider.clone()
    };
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutIntent(replaced.clone())],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_intents(ok(RULE, "intents", state.intents(&key).await)),
        sorted_intents(vec![replaced, to_crm.clone(), same_source.clone()]),
        "an intent with the same target and source must replace the old one"
    );

    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::ClearIntent {
                target: Side::Provider,
                source_id: id("crm-1"),
            },
            StateOp::ClearIntent {
                target: Side::Provider,
                source_id: id("never-written"),
            },
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_intents(ok(RULE, "intents", state.intents(&key).await)),
        sorted_intents(vec![to_crm, same_source]),
        "clearing an intent must clear it and only it (clearing an unknown one is no error)"
    );
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::ClearIntent {
                target: Side::Crm,
                source_id: id("remote-1"),
            },
            StateOp::ClearIntent {
                target: Side::Crm,
                source_id: id("crm-1"),
            },
        ],
    )
    .await;
    ensure!(
        RULE,
        ok(RULE, "intents", state.intents(&key).await).is_empty(),
        "clearing every intent must leave none"
    );
    Outcome::Passed
}

/// Deferred items are kept per side and id, with their reason (each variant), attempts and
/// `since`; written, replaced, listed and cleared one by one.
pub async fn check_deferred_round_trip_and_clear(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "deferred_round_trip_and_clear";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "contact", "address-book");
    let failed = deferred(
        Side::Provider,
        "people/c1",
        DeferredReason::Failed {
            error: "rate limited: \"quota\" exceeded\nretry later — ünïcode".to_owned(),
            retryable: true,
        },
        0,
    );
    let fatal = deferred(
        Side::Crm,
        "crm-7",
        DeferredReason::Failed {
            error: "invalid field `birthday`".to_owned(),
            retryable: false,
        },
        u32::MAX,
    );
    let pending = deferred(Side::Crm, "crm-8", DeferredReason::DeletionPending, 3);
    // Same id, other side: a different item.
    let other_side = deferred(Side::Provider, "crm-8", DeferredReason::DeletionPending, 1);
    let over_cap = deferred(Side::Crm, "crm-9", DeferredReason::CapReached, 2);
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutDeferred(failed.clone()),
            StateOp::PutDeferred(fatal.clone()),
            StateOp::PutDeferred(pending.clone()),
            StateOp::PutDeferred(other_side.clone()),
            StateOp::PutDeferred(over_cap.clone()),
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_deferred(ok(RULE, "deferred", state.deferred(&key).await)),
        sorted_deferred(vec![
            failed.clone(),
            fatal.clone(),
            pending.clone(),
            other_side.clone(),
            over_cap.clone()
        ]),
        "every deferred item must be listed with its reason, attempts and since"
    );
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::ClearDeferred {
            side: over_cap.side,
            id: over_cap.id.clone(),
        }],
    )
    .await;

    let retried = Deferred {
        attempts: 1,
        reason: DeferredReason::DeletionPending,
        ..failed.clone()
    };
    commit(
        state,
        RULE,
        &key,
        vec![StateOp::PutDeferred(retried.clone())],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_deferred(ok(RULE, "deferred", state.deferred(&key).await)),
        sorted_deferred(vec![
            retried,
            fatal.clone(),
            pending.clone(),
            other_side.clone()
        ]),
        "a deferred item with the same side and id must replace the old one"
    );

    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::ClearDeferred {
                side: Side::Provider,
                id: id("people/c1"),
            },
            StateOp::ClearDeferred {
                side: Side::Crm,
                id: id("crm-8"),
            },
            StateOp::ClearDeferred {
                side: Side::Crm,
                id: id("never-written"),
            },
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        sorted_deferred(ok(RULE, "deferred", state.deferred(&key).await)),
        sorted_deferred(vec![fatal, other_side]),
        "clearing a deferred item must clear it and only it (clearing an unknown one is no error)"
    );
    Outcome::Passed
}

/// The operations of a batch apply in order: a later operation sees the effect of an
/// earlier one. An empty batch is accepted.
pub async fn check_commit_applies_ops_in_order(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "commit_applies_ops_in_order";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    commit(state, RULE, &key, Vec::new()).await;
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutLink(link(1)),
            StateOp::RemoveLink(id("crm-1")),
            StateOp::RemoveLink(id("crm-2")),
            StateOp::PutLink(link(2)),
            StateOp::PutIntent(intent(Side::Provider, "crm-3", 1)),
            StateOp::ClearIntent {
                target: Side::Provider,
                source_id: id("crm-3"),
            },
            StateOp::SetCursor {
                side: Side::Crm,
                cursor: Some(cursor("c1", 1, None)),
            },
            StateOp::SetCursor {
                side: Side::Crm,
                cursor: None,
            },
            StateOp::SetCursor {
                side: Side::Provider,
                cursor: None,
            },
            StateOp::SetCursor {
                side: Side::Provider,
                cursor: Some(cursor("p2", 2, None)),
            },
            StateOp::PutDeferred(deferred(Side::Crm, "d", DeferredReason::DeletionPending, 1)),
            StateOp::ClearDeferred {
                side: Side::Crm,
                id: id("d"),
            },
            StateOp::PutDeferred(deferred(Side::Crm, "d", DeferredReason::DeletionPending, 2)),
        ],
    )
    .await;
    let got = contents(state, RULE, &key).await;
    ensure_eq!(
        RULE,
        got,
        KeyContents {
            links: vec![link(2)],
            intents: Vec::new(),
            deferred: vec![deferred(Side::Crm, "d", DeferredReason::DeletionPending, 2)],
            crm_cursor: None,
            provider_cursor: Some(cursor("p2", 2, None)),
        },
        "operations of one batch must apply in their order"
    );
    Outcome::Passed
}

/// A commit whose storage fails midway reports the error and leaves nothing of the batch
/// behind; the same batch committed afterwards shows all of its effects. Needs the
/// [`StateHooks::fail_next_commit_after`](super::StateHooks::fail_next_commit_after) hook.
pub async fn check_commit_is_all_or_nothing(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "commit_is_all_or_nothing";
    let Some(hooks) = target.hooks else {
        return Outcome::Skipped("needs StateHooks::fail_next_commit_after".to_owned());
    };
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    commit(state, RULE, &key, filling(3, "before")).await;
    let before = contents(state, RULE, &key).await;

    let batch = vec![
        StateOp::PutLink(link(10)),
        StateOp::PutLink(link_between("crm-0", "remote-new", 11)),
        StateOp::RemoveLink(id("crm-1")),
        StateOp::PutIntent(intent(Side::Crm, "remote-10", 5)),
        StateOp::ClearIntent {
            target: Side::Provider,
            source_id: id("crm-before"),
        },
        StateOp::SetCursor {
            side: Side::Crm,
            cursor: Some(cursor("crm-cursor-after", 50, None)),
        },
        StateOp::SetCursor {
            side: Side::Provider,
            cursor: None,
        },
        StateOp::PutDeferred(deferred(
            Side::Provider,
            "after",
            DeferredReason::DeletionPending,
            1,
        )),
        StateOp::ClearDeferred {
            side: Side::Crm,
            id: id("item-before"),
        },
    ];
    for fail_after in [1, batch.len() / 2, batch.len()] {
        if !ok(
            RULE,
            "arming the fail_next_commit_after hook",
            hooks.fail_next_commit_after(fail_after).await,
        ) {
            return Outcome::Skipped("the state cannot fail a commit on demand".to_owned());
        }
        let result = state.commit(&key, batch.clone()).await;
        ensure!(
            RULE,
            result.is_err(),
            "a commit whose storage failed after {fail_after} of {} operations must report an error",
            batch.len()
        );
        ensure_eq!(
            RULE,
            contents(state, RULE, &key).await,
            before,
            "a commit that failed after {fail_after} of {} operations must leave nothing behind",
            batch.len()
        );
    }
    commit(state, RULE, &key, batch).await;
    let after = contents(state, RULE, &key).await;
    ensure_eq!(
        RULE,
        after,
        KeyContents {
            links: sorted_links(vec![
                link_between("crm-0", "remote-new", 11),
                link(2),
                link(10)
            ]),
            intents: vec![intent(Side::Crm, "remote-10", 5)],
            deferred: vec![deferred(
                Side::Provider,
                "after",
                DeferredReason::DeletionPending,
                1
            )],
            crm_cursor: Some(cursor("crm-cursor-after", 50, None)),
            provider_cursor: None,
        },
        "a batch committed after a failed attempt must show all of its effects (the hook fails one commit only)"
    );
    Outcome::Passed
}

/// While a batch commits, a reader sees all of it or none of it.
pub async fn check_readers_never_see_half_a_batch(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "readers_never_see_half_a_batch";
    const BATCH: usize = 300;
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    let done = Cell::new(false);
    let writer: Boxed<'_, ()> = Box::pin(async {
        commit(
            state,
            RULE,
            &key,
            (0..BATCH).map(|n| StateOp::PutLink(link(n))).collect(),
        )
        .await;
        done.set(true);
    });
    let reader: Boxed<'_, usize> = Box::pin(async {
        let mut reads = 0;
        loop {
            let finished = done.get();
            let seen = ok(RULE, "links", state.links(&key).await).len();
            reads += 1;
            ensure!(
                RULE,
                seen == 0 || seen == BATCH,
                "a reader saw {seen} of the {BATCH} links of a batch being committed"
            );
            if finished {
                return reads;
            }
            YieldNow(false).await;
        }
    });
    join2(writer, reader).await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await.len(),
        BATCH,
        "every link of the batch must be there once it committed"
    );
    Outcome::Passed
}

/// Nothing written under one key shows under another (other collection, other kind, other
/// account), and the same ids may be linked under each key independently.
pub async fn check_keys_are_independent(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "keys_are_independent";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let other_account = fresh(state, "keys_are_independent.other").await;
    let k1 = key(&account, "event", "cal-1");
    let others = [
        key(&account, "event", "cal-2"),
        key(&account, "contact", "cal-1"),
        key(&other_account, "event", "cal-1"),
    ];
    commit(state, RULE, &k1, filling(2, "k1")).await;
    let k1_contents = contents(state, RULE, &k1).await;
    for other in &others {
        ensure!(
            RULE,
            contents(state, RULE, other).await.is_empty(),
            "what was written under {k1} must not show under {other}"
        );
        ensure!(
            RULE,
            by_crm(state, RULE, other, &["crm-0", "crm-1"])
                .await
                .is_empty(),
            "links_by_crm under {other} must not find links of {k1}"
        );
        ensure!(
            RULE,
            by_remote(state, RULE, other, &["remote-0"])
                .await
                .is_empty(),
            "links_by_remote under {other} must not find links of {k1}"
        );
    }
    // The same ids, linked differently under the other keys, leave k1 alone.
    for (i, other) in others.iter().enumerate() {
        commit(
            state,
            RULE,
            other,
            vec![
                StateOp::PutLink(link_between("crm-0", &format!("other-remote-{i}"), 20 + i)),
                StateOp::PutLink(link_between(&format!("other-crm-{i}"), "remote-1", 30 + i)),
                StateOp::PutIntent(intent(Side::Provider, "crm-k1", 9)),
                StateOp::SetCursor {
                    side: Side::Crm,
                    cursor: None,
                },
                StateOp::ClearDeferred {
                    side: Side::Crm,
                    id: id("item-k1"),
                },
            ],
        )
        .await;
        commit(state, RULE, other, vec![StateOp::RemoveLink(id("crm-1"))]).await;
        ensure_eq!(
            RULE,
            links_of(state, RULE, other).await.len(),
            2,
            "under {other}, the two links just written must be there"
        );
    }
    ensure_eq!(
        RULE,
        contents(state, RULE, &k1).await,
        k1_contents,
        "writes under other keys must not change {k1}"
    );
    Outcome::Passed
}

/// `keys` lists exactly the keys of the account that hold something (a link, a cursor, an
/// intent or a deferred item), and stops listing a key once it holds nothing.
pub async fn check_keys_list_what_holds_anything(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "keys_list_what_holds_anything";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let other_account = fresh(state, "keys_list_what_holds_anything.other").await;
    ensure!(
        RULE,
        ok(RULE, "keys", state.keys(&account).await).is_empty(),
        "an account never written has no keys"
    );
    let with_link = key(&account, "event", "links-only");
    let with_cursor = key(&account, "event", "cursor-only");
    let with_intent = key(&account, "contact", "intent-only");
    let with_deferred = key(&account, "contact", "deferred-only");
    commit(state, RULE, &with_link, vec![StateOp::PutLink(link(1))]).await;
    commit(
        state,
        RULE,
        &with_cursor,
        vec![StateOp::SetCursor {
            side: Side::Provider,
            cursor: Some(cursor("c", 1, None)),
        }],
    )
    .await;
    commit(
        state,
        RULE,
        &with_intent,
        vec![StateOp::PutIntent(intent(Side::Provider, "crm-1", 1))],
    )
    .await;
    commit(
        state,
        RULE,
        &with_deferred,
        vec![StateOp::PutDeferred(deferred(
            Side::Crm,
            "x",
            DeferredReason::DeletionPending,
            1,
        ))],
    )
    .await;
    commit(
        state,
        RULE,
        &key(&other_account, "event", "elsewhere"),
        vec![StateOp::PutLink(link(1))],
    )
    .await;
    let mut got = ok(RULE, "keys", state.keys(&account).await);
    got.sort();
    let mut want = vec![
        with_link.clone(),
        with_cursor.clone(),
        with_intent.clone(),
        with_deferred.clone(),
    ];
    want.sort();
    ensure_eq!(
        RULE,
        got,
        want,
        "keys must list every key holding a link, a cursor, an intent or a deferred item, and only this account's"
    );

    commit(
        state,
        RULE,
        &with_link,
        vec![StateOp::RemoveLink(id("crm-1"))],
    )
    .await;
    commit(
        state,
        RULE,
        &with_cursor,
        vec![StateOp::SetCursor {
            side: Side::Provider,
            cursor: None,
        }],
    )
    .await;
    commit(
        state,
        RULE,
        &with_intent,
        vec![StateOp::ClearIntent {
            target: Side::Provider,
            source_id: id("crm-1"),
        }],
    )
    .await;
    let got = ok(RULE, "keys", state.keys(&account).await);
    ensure_eq!(
        RULE,
        got,
        vec![with_deferred],
        "a key that holds nothing any more must not be listed"
    );
    Outcome::Passed
}

/// `reset` removes the links, intents, deferred items and cursors of its scope (an
/// account; or one kind, one collection, or both of it), counts them right, touches
/// nothing outside its scope, keeps the account's status and last run, and the ids it
/// freed can be linked again.
pub async fn check_reset_scope_purges_only_its_scope(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "reset_scope_purges_only_its_scope";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let other_account = fresh(state, "reset_scope_purges_only_its_scope.other").await;
    let events_1 = key(&account, "event", "cal-1");
    let events_2 = key(&account, "event", "cal-2");
    let contacts_1 = key(&account, "contact", "cal-1");
    let elsewhere = key(&other_account, "event", "cal-1");
    for (k, tag) in [
        (&events_1, "e1"),
        (&events_2, "e2"),
        (&contacts_1, "c1"),
        (&elsewhere, "x"),
    ] {
        commit(state, RULE, k, filling(2, tag)).await;
    }
    let status = AccountStatus::Failing {
        last_error: "boom".to_owned(),
    };
    ok(
        RULE,
        "set_account_status",
        state.set_account_status(&account, status.clone()).await,
    );
    let summary = run_summary(1);
    ok(
        RULE,
        "set_last_run",
        state.set_last_run(&account, summary.clone()).await,
    );
    let untouched_elsewhere = contents(state, RULE, &elsewhere).await;
    let untouched_events_2 = contents(state, RULE, &events_2).await;
    let one_key = ResetCounts {
        links: 2,
        intents: 1,
        deferred: 1,
        cursors: 2,
    };

    let counts = ok(
        RULE,
        "reset of one kind and collection",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: Some("event".to_owned()),
                collection: Some(id("cal-1")),
            })
            .await,
    );
    ensure_eq!(RULE, counts, one_key, "reset counts of {events_1}");
    ensure!(
        RULE,
        contents(state, RULE, &events_1).await.is_empty(),
        "reset must purge {events_1}"
    );
    ensure_eq!(
        RULE,
        contents(state, RULE, &events_2).await,
        untouched_events_2,
        "reset of {events_1} must not touch {events_2}"
    );
    ensure_eq!(
        RULE,
        contents(state, RULE, &contacts_1).await.links.len(),
        2,
        "reset of {events_1} must not touch {contacts_1}"
    );

    let counts = ok(
        RULE,
        "reset of one collection, every kind",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: None,
                collection: Some(id("cal-1")),
            })
            .await,
    );
    ensure_eq!(RULE, counts, one_key, "reset counts of collection cal-1");
    ensure!(
        RULE,
        contents(state, RULE, &contacts_1).await.is_empty(),
        "reset of collection cal-1 must purge {contacts_1}"
    );
    ensure_eq!(
        RULE,
        contents(state, RULE, &events_2).await,
        untouched_events_2,
        "reset of collection cal-1 must not touch {events_2}"
    );

    let counts = ok(
        RULE,
        "reset of a kind",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: Some("contact".to_owned()),
                collection: None,
            })
            .await,
    );
    ensure_eq!(
        RULE,
        counts,
        ResetCounts::default(),
        "reset of a kind with nothing left must count nothing"
    );

    let counts = ok(
        RULE,
        "reset of an account",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: None,
                collection: None,
            })
            .await,
    );
    ensure_eq!(RULE, counts, one_key, "reset counts of the whole account");
    ensure!(
        RULE,
        ok(RULE, "keys", state.keys(&account).await).is_empty(),
        "after a reset of the account, it has no keys"
    );
    ensure_eq!(
        RULE,
        contents(state, RULE, &elsewhere).await,
        untouched_elsewhere,
        "reset of one account must not touch another"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "account_status", state.account_status(&account).await),
        status,
        "reset must keep the account's status"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "last_run", state.last_run(&account).await),
        Some(summary),
        "reset must keep the account's last run"
    );

    // Re-linking after a reset works (the ids are free).
    commit(state, RULE, &events_1, filling(2, "e1")).await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &events_1).await,
        vec![link(0), link(1)],
        "the ids a reset freed must link again"
    );
    Outcome::Passed
}

fn run_summary(n: u64) -> RunSummary {
    RunSummary {
        started_at: at(n as i64 * 1000),
        finished_at: at(n as i64 * 1000 + 999),
        written: 1_000_000_007 * n,
        conflicts: n,
        errors: 0,
        text: format!("run {n}: 7 written, «ok»\nsecond line"),
    }
}

/// The account status (each variant) and the last run summary round-trip per account; an
/// account never written is `Ok` with no last run.
pub async fn check_account_status_and_last_run_round_trip(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "account_status_and_last_run_round_trip";
    let state = target.state;
    let account = account(RULE);
    let other: AccountId = id("conformance:account_status_and_last_run_round_trip.never");
    ensure_eq!(
        RULE,
        ok(RULE, "account_status", state.account_status(&other).await),
        AccountStatus::Ok,
        "an account never written is Ok"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "last_run", state.last_run(&other).await),
        None,
        "an account never written has no last run"
    );
    for status in [
        AccountStatus::NeedsReauthorization {
            cause: "Token has been expired or revoked.".to_owned(),
        },
        AccountStatus::Failing {
            last_error: "503 from the provider\n'quoted' \"twice\"".to_owned(),
        },
        AccountStatus::Ok,
    ] {
        ok(
            RULE,
            "set_account_status",
            state.set_account_status(&account, status.clone()).await,
        );
        ensure_eq!(
            RULE,
            ok(RULE, "account_status", state.account_status(&account).await),
            status,
            "the account status must round-trip"
        );
    }
    for n in [1, 2] {
        ok(
            RULE,
            "set_last_run",
            state.set_last_run(&account, run_summary(n)).await,
        );
        ensure_eq!(
            RULE,
            ok(RULE, "last_run", state.last_run(&account).await),
            Some(run_summary(n)),
            "the last run summary must round-trip (and replace the previous one)"
        );
    }
    ensure_eq!(
        RULE,
        ok(RULE, "last_run", state.last_run(&other).await),
        None,
        "one account's last run must not show under another"
    );
    Outcome::Passed
}

/// A collection alias round-trips per account, kind and name; setting it again replaces
/// it; `None` forgets it; a reset of the account leaves it alone.
pub async fn check_collection_alias_round_trip(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "collection_alias_round_trip";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let other = fresh(state, "collection_alias_round_trip.other").await;
    let name = "Work «CRM» 😀";
    let first: CollectionId = id("c_abc123@group.calendar.google.com");
    let second: CollectionId = id("AAMkAGI2=");
    // A reset keeps aliases: forget those an earlier run on a persistent state left.
    for (who, kind) in [
        (&account, "event"),
        (&account, "contact"),
        (&other, "event"),
    ] {
        ok(
            RULE,
            "set_collection_alias(None)",
            state.set_collection_alias(who, kind, name, None).await,
        );
    }
    ensure_eq!(
        RULE,
        ok(
            RULE,
            "collection_alias",
            state.collection_alias(&account, "event", name).await
        ),
        None,
        "a name never set has no alias"
    );
    ok(
        RULE,
        "set_collection_alias",
        state
            .set_collection_alias(&account, "event", name, Some(&first))
            .await,
    );
    ensure_eq!(
        RULE,
        ok(
            RULE,
            "collection_alias",
            state.collection_alias(&account, "event", name).await
        ),
        Some(first.clone()),
        "the alias must round-trip"
    );
    for (who, kind, label) in [
        (&account, "contact", "another kind"),
        (&other, "event", "another account"),
    ] {
        ensure_eq!(
            RULE,
            ok(
                RULE,
                "collection_alias",
                state.collection_alias(who, kind, name).await
            ),
            None,
            "an alias must not show under {label}"
        );
    }
    ensure_eq!(
        RULE,
        ok(
            RULE,
            "collection_alias",
            state.collection_alias(&account, "event", "work").await
        ),
        None,
        "names are compared exactly"
    );
    ok(
        RULE,
        "set_collection_alias",
        state
            .set_collection_alias(&account, "event", name, Some(&second))
            .await,
    );
    ok(
        RULE,
        "reset",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: None,
                collection: None,
            })
            .await,
    );
    ensure_eq!(
        RULE,
        ok(
            RULE,
            "collection_alias",
            state.collection_alias(&account, "event", name).await
        ),
        Some(second),
        "setting an alias again replaces it, and a reset keeps it"
    );
    ok(
        RULE,
        "set_collection_alias(None)",
        state
            .set_collection_alias(&account, "event", name, None)
            .await,
    );
    ensure_eq!(
        RULE,
        ok(
            RULE,
            "collection_alias",
            state.collection_alias(&account, "event", name).await
        ),
        None,
        "`None` must forget the alias"
    );
    Outcome::Passed
}

/// One commit of 2,000 links, then lookups of 1,000 ids by each side, then a batch
/// replacing all 2,000, and a reset counting them.
pub async fn check_large_batch(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "large_batch";
    const LINKS: usize = 2000;
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "contact", "address-book");
    commit(
        state,
        RULE,
        &key,
        (0..LINKS).map(|n| StateOp::PutLink(link(n))).collect(),
    )
    .await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await.len(),
        LINKS,
        "every link of a large batch must be kept"
    );
    // 900 linked ids and 100 unknown ones.
    let crm_ids: Vec<CrmId> = (0..900)
        .map(|n| id(&format!("crm-{}", n * 2)))
        .chain((0..100).map(|n| id(&format!("crm-unknown-{n}"))))
        .collect();
    let got = ok(
        RULE,
        "links_by_crm",
        state.links_by_crm(&key, &crm_ids).await,
    );
    ensure_eq!(
        RULE,
        got.len(),
        900,
        "links_by_crm of 1,000 ids (900 linked) must find the 900"
    );
    ensure!(
        RULE,
        got.iter()
            .all(|l| l.remote_id.as_str() == l.crm_id.as_str().replace("crm-", "remote-")),
        "links_by_crm of many ids returned mismatched links"
    );
    let remote_ids: Vec<RemoteId> = (1000..LINKS).map(|n| id(&format!("remote-{n}"))).collect();
    let got = ok(
        RULE,
        "links_by_remote",
        state.links_by_remote(&key, &remote_ids).await,
    );
    ensure_eq!(
        RULE,
        got.len(),
        1000,
        "links_by_remote of 1,000 linked ids must find them all"
    );
    ensure!(
        RULE,
        got.iter()
            .all(|l| l.crm_id.as_str() == l.remote_id.as_str().replace("remote-", "crm-")),
        "links_by_remote of many ids returned mismatched links"
    );

    commit(
        state,
        RULE,
        &key,
        (0..LINKS)
            .map(|n| {
                StateOp::PutLink(Link {
                    crm_version: Some(id("\"v2\"")),
                    ..link(n)
                })
            })
            .collect(),
    )
    .await;
    let got = links_of(state, RULE, &key).await;
    ensure!(
        RULE,
        got.len() == LINKS && got.iter().all(|l| l.crm_version == Some(id("\"v2\""))),
        "a large batch replacing every link must leave {LINKS} updated links, found {}",
        got.len()
    );
    let counts = ok(
        RULE,
        "reset",
        state
            .reset(&ResetScope {
                account: account.clone(),
                kind: None,
                collection: None,
            })
            .await,
    );
    ensure_eq!(
        RULE,
        counts.links,
        LINKS as u64,
        "reset must count every link"
    );
    Outcome::Passed
}

/// Commits from two writers running at the same time are all kept: no write is lost.
pub async fn check_concurrent_commits_keep_every_write(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "concurrent_commits_keep_every_write";
    const COMMITS: usize = 25;
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = key(&account, "event", "calendar");
    let writer = |offset: usize| -> Boxed<'_, ()> {
        let key = &key;
        Box::pin(async move {
            for n in offset..offset + COMMITS {
                commit(
                    state,
                    RULE,
                    key,
                    vec![
                        StateOp::PutLink(link(n)),
                        StateOp::PutIntent(intent(Side::Provider, &format!("crm-{n}"), n)),
                    ],
                )
                .await;
                YieldNow(false).await;
            }
        })
    };
    join2(writer(0), writer(1000)).await;
    ensure_eq!(
        RULE,
        links_of(state, RULE, &key).await.len(),
        2 * COMMITS,
        "links committed by two concurrent writers must all be kept"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "intents", state.intents(&key).await).len(),
        2 * COMMITS,
        "intents committed by two concurrent writers must all be kept"
    );
    Outcome::Passed
}

/// Ids, versions and cursors at their longest, and texts that look like SQL or hold
/// quotes and non-ASCII characters, are stored and found like any other.
pub async fn check_awkward_values_round_trip(target: &StateTarget<'_>) -> Outcome {
    const RULE: &str = "awkward_values_round_trip";
    let state = target.state;
    let account = fresh(state, RULE).await;
    let key = StateKey::new(
        account.clone(),
        "event'; DROP TABLE links; --",
        id::<CollectionId>("calendar \"primary\" % _ ü"),
    );
    let long_crm = format!("crm-{}", "é".repeat((CrmId::MAX_LEN - 4) / 2));
    let long_remote = "r".repeat(RemoteId::MAX_LEN);
    let awkward = Link {
        crm_id: id(&long_crm),
        remote_id: id(&long_remote),
        crm_version: Some(id(&"v".repeat(Version::MAX_LEN))),
        remote_version: Some(id("' OR 1=1 --")),
        baseline: baseline(1),
        synced_at: at(-1_700_000_000_000),
        pending: Vec::new(),
    };
    let sql_like = link_between("x' OR '1'='1", "%", 2);
    let long_cursor = cursor(&"c".repeat(Cursor::MAX_LEN), 0, None);
    commit(
        state,
        RULE,
        &key,
        vec![
            StateOp::PutLink(awkward.clone()),
            StateOp::PutLink(sql_like.clone()),
            StateOp::SetCursor {
                side: Side::Provider,
                cursor: Some(long_cursor.clone()),
            },
            StateOp::PutIntent(intent(Side::Provider, &long_crm, 1)),
        ],
    )
    .await;
    ensure_eq!(
        RULE,
        by_crm(state, RULE, &key, &[&long_crm]).await,
        vec![awkward.clone()],
        "a link with ids and versions at their longest must round-trip"
    );
    ensure_eq!(
        RULE,
        by_remote(state, RULE, &key, &["%", "_"]).await,
        vec![sql_like],
        "remote ids are matched exactly, never as patterns"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "cursor", state.cursor(&key, Side::Provider).await),
        Some(long_cursor),
        "a cursor at its longest must round-trip"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "keys", state.keys(&account).await),
        vec![key.clone()],
        "a key with quotes and non-ASCII characters must be listed as written"
    );
    ensure_eq!(
        RULE,
        ok(RULE, "intents", state.intents(&key).await).len(),
        1,
        "an intent with a long source id must be kept"
    );
    Outcome::Passed
}

// ----------------------------------------------------------------------------------------
// The suite
// ----------------------------------------------------------------------------------------

/// Runs every state check on the target, in order, and reports which passed and which
/// were skipped. A broken rule panics, naming the rule.
pub async fn run_state_suite(target: &StateTarget<'_>) -> SuiteReport {
    let mut report = SuiteReport::default();
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $(
                report.record(
                    stringify!($check).trim_start_matches("check_"),
                    $check(target).await,
                );
            )*
        };
    }
    run!(
        check_link_round_trip,
        check_links_by_crm_and_by_remote,
        check_put_link_replaces_by_either_id,
        check_remove_link,
        check_link_count_follows_links,
        check_cursor_per_side_round_trip,
        check_intents_round_trip_and_clear,
        check_deferred_round_trip_and_clear,
        check_commit_applies_ops_in_order,
        check_commit_is_all_or_nothing,
        check_readers_never_see_half_a_batch,
        check_keys_are_independent,
        check_keys_list_what_holds_anything,
        check_reset_scope_purges_only_its_scope,
        check_account_status_and_last_run_round_trip,
        check_collection_alias_round_trip,
        check_large_batch,
        check_concurrent_commits_keep_every_write,
        check_awkward_values_round_trip,
    );
    report
}
