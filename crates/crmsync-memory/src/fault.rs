//! [`FaultInjecting`]: a store wrapper that makes calls fail the way real providers fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use crmsync_core::{
    CalendarStore, Capabilities, ChangePage, ChangesRequest, CollectionId, CollectionInfo,
    ContactStore, Error, ErrorKind, ItemId, LinkKey, Record, RecordStore, Result, Stored, Version,
    WriteOp, WriteOutcome,
};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The connection failed before an answer came ([`ErrorKind::Transport`]); nothing was
    /// applied.
    Transport,
    /// HTTP 429 ([`ErrorKind::RateLimited`]) with this `Retry-After`; nothing was applied.
    RateLimited {
        /// The wait the "provider" asks for.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx ([`ErrorKind::Provider`]); nothing was applied.
    Server,
    /// The cursor expired ([`ErrorKind::CursorExpired`]). Only fires on a change feed
    /// call with a cursor.
    CursorExpired,
    /// Someone else wrote the item first ([`ErrorKind::PreconditionFailed`]); nothing was
    /// applied. Only fires on updates and deletions (and batches holding some).
    StaleVersion,
    /// The call was applied by the wrapped store, then its response was lost: the caller
    /// sees [`ErrorKind::Transport`].
    LostResponse,
}

impl Fault {
    /// The fault's snake_case name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Transport => "transport",
            Fault::RateLimited { .. } => "rate_limited",
            Fault::Server => "server",
            Fault::CursorExpired => "cursor_expired",
            Fault::StaleVersion => "stale_version",
            Fault::LostResponse => "lost_response",
        }
    }

    /// The error the caller sees.
    pub fn error(&self, operation: Operation) -> Error {
        let op = operation.name();
        match self {
            Fault::Transport => Error::new(
                ErrorKind::Transport,
                format!("injected fault: the connection was reset during {op}"),
            ),
            Fault::RateLimited { retry_after } => Error::new(
                ErrorKind::RateLimited {
                    retry_after: *retry_after,
                },
                format!("injected fault: 429 Too Many Requests on {op}"),
            ),
            Fault::Server => Error::new(
                ErrorKind::Provider,
                format!("injected fault: 503 Service Unavailable on {op}"),
            ),
            Fault::CursorExpired => Error::new(
                ErrorKind::CursorExpired,
                format!("injected fault: the sync cursor expired ({op})"),
            ),
            Fault::StaleVersion => Error::new(
                ErrorKind::PreconditionFailed,
                format!("injected fault: 412 Precondition Failed on {op}"),
            ),
            Fault::LostResponse => Error::new(
                ErrorKind::Transport,
                format!("injected fault: {op} was applied but its response was lost"),
            ),
        }
    }

    /// Whether this fault can happen on a call: cursor expiry needs a change-feed call with
    /// a cursor, a stale version needs a write with a precondition.
    fn applies_to(&self, call: &Call) -> bool {
        match self {
            Fault::CursorExpired => call.has_cursor,
            Fault::StaleVersion => call.has_precondition,
            _ => true,
        }
    }
}

/// A store operation, as faults target them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `collections`, `calendars`, `address_books`.
    Collections,
    /// `groups`.
    Groups,
    /// `create_group`.
    CreateGroup,
    /// `changes`.
    Changes,
    /// `get`.
    Get,
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
    /// `find_by_link_key`.
    FindByLinkKey,
    /// `write_batch`.
    WriteBatch,
}

impl Operation {
    /// The operation's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Collections => "collections",
            Operation::Groups => "groups",
            Operation::CreateGroup => "create_group",
            Operation::Changes => "changes",
            Operation::Get => "get",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::FindByLinkKey => "find_by_link_key",
            Operation::WriteBatch => "write_batch",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredFault {
    /// The index of the call (0 for the wrapper's first call).
    pub call: u64,
    /// The operation called.
    pub operation: Operation,
    /// The fault.
    pub fault: Fault,
}

#[derive(Debug, Clone)]
struct FailNext {
    operation: Option<Operation>,
    remaining: usize,
    fault: Fault,
}

#[derive(Debug, Clone)]
struct RandomFaults {
    rng: ChaCha8Rng,
    probability: f64,
    allowed: Vec<Fault>,
}

/// Which calls fail, and how. Sources combine; for each call the script is asked first,
/// then the "next N calls" rules in the order they were added, then the random source.
/// A fault that cannot happen on a call (a cursor expiry on a call without a cursor, a
/// stale version on a read) does not fire there: a scripted one is dropped, a "next N" rule
/// waits for a call it applies to, and the random source picks among the faults that apply.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    script: BTreeMap<u64, Fault>,
    rules: Vec<FailNext>,
    random: Option<RandomFaults>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// A fixed script: the call with index `i` (counting every call on the wrapper from
    /// 0) fails with the fault paired with `i`.
    pub fn script(faults: Vec<(u64, Fault)>) -> Self {
        FaultPlan {
            script: faults.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Seeded random faults: each call fails with `probability` (0 to 1) with one of the
    /// `allowed` faults, chosen uniformly among those that apply to the call. The same
    /// seed and the same sequence of calls give the same faults.
    pub fn random(seed: u64, probability: f64, allowed: Vec<Fault>) -> Self {
        FaultPlan {
            random: Some(RandomFaults {
                rng: ChaCha8Rng::seed_from_u64(seed),
                probability: if probability.is_nan() {
                    0.0
                } else {
                    probability.clamp(0.0, 1.0)
                },
                allowed,
            }),
            ..Self::default()
        }
    }

    /// Adds a rule: the next `count` calls of `operation` fail with `fault`.
    #[must_use]
    pub fn fail_next(mut self, operation: Operation, count: usize, fault: Fault) -> Self {
        self.rules.push(FailNext {
            operation: Some(operation),
            remaining: count,
            fault,
        });
        self
    }

    /// Adds a rule: the next `count` calls, whatever their operation, fail with `fault`.
    #[must_use]
    pub fn fail_next_calls(mut self, count: usize, fault: Fault) -> Self {
        self.rules.push(FailNext {
            operation: None,
            remaining: count,
            fault,
        });
        self
    }

    /// Adds a scripted fault for the call with index `call`.
    #[must_use]
    pub fn at(mut self, call: u64, fault: Fault) -> Self {
        self.script.insert(call, fault);
        self
    }

    fn pick(&mut self, index: u64, call: &Call) -> Option<Fault> {
        if let Some(fault) = self.script.remove(&index)
            && fault.applies_to(call)
        {
            return Some(fault);
        }
        for rule in &mut self.rules {
            if rule.remaining > 0
                && rule.operation.is_none_or(|op| op == call.operation)
                && rule.fault.applies_to(call)
            {
                rule.remaining -= 1;
                return Some(rule.fault);
            }
        }
        if let Some(random) = &mut self.random {
            // Two draws per call, whatever happens, so one call's outcome never shifts
            // the faults of the calls after it.
            let roll: f64 = random.rng.random();
            let choice: u64 = random.rng.random();
            let candidates: Vec<Fault> = random
                .allowed
                .iter()
                .copied()
                .filter(|f| f.applies_to(call))
                .collect();
            if roll < random.probability && !candidates.is_empty() {
                let i = (choice % candidates.len() as u64) as usize;
                return Some(candidates[i]);
            }
        }
        None
    }
}

/// What the plan is told about a call.
struct Call {
    operation: Operation,
    has_cursor: bool,
    has_precondition: bool,
}

impl Call {
    fn plain(operation: Operation) -> Self {
        Call {
            operation,
            has_cursor: false,
            has_precondition: false,
        }
    }
}

#[derive(Debug, Default)]
struct FaultState {
    plan: FaultPlan,
    calls: u64,
    fired: Vec<FiredFault>,
}

/// A store wrapper that makes calls fail the way real providers fail. Clones share the
/// plan and the record of fired faults.
///
/// It wraps any store and implements the same traits ([`RecordStore`], and
/// [`CalendarStore`] / [`ContactStore`] when the wrapped store implements them). A
/// [`FaultPlan`] says which calls fail and how: a fixed script by call index, "the next
/// N calls of this operation", or seeded random faults (reproducible: the same seed and
/// the same calls give the same faults). Every fault is a typed [`Error`] with the kind and
/// retryability the real failure has, and every fault that fired is recorded
/// ([`FaultInjecting::fired`], [`FaultInjecting::fired_counts`]).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use crmsync_core::{Contact, ErrorKind, LinkKey, RecordStore};
/// use crmsync_memory::{Fault, FaultInjecting, FaultPlan, MemoryStore, Operation};
///
/// let memory = MemoryStore::<Contact>::new();
/// let book = memory.add_collection("Contacts");
/// let plan = FaultPlan::none().fail_next(Operation::Create, 1, Fault::LostResponse);
/// let store = FaultInjecting::new(memory.clone(), plan);
///
/// let err = store
///     .create(&book, &Contact::new("Ann"), &LinkKey::new("crm-1")?)
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::Transport);
/// // The response was lost, but the write happened: find it by its link key.
/// assert!(store.find_by_link_key(&book, &LinkKey::new("crm-1")?).await?.is_some());
/// assert_eq!(store.fired().len(), 1);
/// # Ok::<(), crmsync_core::Error>(())
/// # }).unwrap();
/// ```
pub struct FaultInjecting<S> {
    inner: S,
    state: Arc<Mutex<FaultState>>,
}

impl<S: Clone> Clone for FaultInjecting<S> {
    fn clone(&self) -> Self {
        FaultInjecting {
            inner: self.inner.clone(),
            state: Arc::clone(&self.state),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultInjecting<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FaultInjecting")
            .field("inner", &self.inner)
            .field("calls", &state.calls)
            .field("fired", &state.fired.len())
            .finish()
    }
}

impl<S> FaultInjecting<S> {
    /// Wraps `inner`, failing calls as `plan` says.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        FaultInjecting {
            inner,
            state: Arc::new(Mutex::new(FaultState {
                plan,
                calls: 0,
                fired: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Replaces the plan (the call count and the record of fired faults are kept).
    pub fn set_plan(&self, plan: FaultPlan) {
        self.lock().plan = plan;
    }

    /// How many calls the wrapper has received.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Every fault that fired, in order.
    pub fn fired(&self) -> Vec<FiredFault> {
        self.lock().fired.clone()
    }

    /// How often each fault fired, by [`Fault::name`].
    pub fn fired_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for fired in &self.lock().fired {
            *counts.entry(fired.fault.name()).or_insert(0) += 1;
        }
        counts
    }

    /// Counts the call and decides its fault.
    fn next_fault(&self, call: Call) -> Option<Fault> {
        let mut state = self.lock();
        let index = state.calls;
        state.calls += 1;
        let fault = state.plan.pick(index, &call)?;
        state.fired.push(FiredFault {
            call: index,
            operation: call.operation,
            fault,
        });
        Some(fault)
    }

    /// Runs a call under the plan: a fault other than a lost response fails it without
    /// calling the wrapped store; a lost response calls it and drops its answer.
    async fn run<T, F>(&self, call: Call, f: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let operation = call.operation;
        match self.next_fault(call) {
            None => f.await,
            Some(Fault::LostResponse) => {
                let _ = f.await;
                Err(Fault::LostResponse.error(operation))
            }
            Some(fault) => Err(fault.error(operation)),
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<R: Record, S: RecordStore<R>> RecordStore<R> for FaultInjecting<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>> {
        self.run(
            Call::plain(Operation::Collections),
            self.inner.collections(),
        )
        .await
    }

    async fn changes(
        &self,
        collection: &CollectionId,
        request: ChangesRequest,
    ) -> Result<ChangePage<R>> {
        let call = Call {
            operation: Operation::Changes,
            has_cursor: request.cursor.is_some(),
            has_precondition: false,
        };
        self.run(call, self.inner.changes(collection, request))
            .await
    }

    async fn get(&self, collection: &CollectionId, id: &ItemId) -> Result<Option<Stored<R>>> {
        self.run(Call::plain(Operation::Get), self.inner.get(collection, id))
            .await
    }

    async fn create(
        &self,
        collection: &CollectionId,
        record: &R,
        link_key: &LinkKey,
    ) -> Result<Stored<R>> {
        self.run(
            Call::plain(Operation::Create),
            self.inner.create(collection, record, link_key),
        )
        .await
    }

    async fn update(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
        record: &R,
        fields: &BTreeSet<R::Field>,
    ) -> Result<Stored<R>> {
        let call = Call {
            operation: Operation::Update,
            has_cursor: false,
            has_precondition: true,
        };
        self.run(
            call,
            self.inner.update(collection, id, expected, record, fields),
        )
        .await
    }

    async fn delete(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        expected: &Version,
    ) -> Result<()> {
        let call = Call {
            operation: Operation::Delete,
            has_cursor: false,
            has_precondition: true,
        };
        self.run(call, self.inner.delete(collection, id, expected))
            .await
    }

    async fn find_by_link_key(
        &self,
        collection: &CollectionId,
        link_key: &LinkKey,
    ) -> Result<Option<Stored<R>>> {
        self.run(
            Call::plain(Operation::FindByLinkKey),
            self.inner.find_by_link_key(collection, link_key),
        )
        .await
    }

    /// The batch is one call: a transport, rate-limit or server fault fails every
    /// operation; a lost response applies the batch and fails every operation with
    /// [`ErrorKind::Transport`]; a stale version fails the updates and deletions of the
    /// batch and sends the rest.
    async fn write_batch(
        &self,
        collection: &CollectionId,
        ops: Vec<WriteOp<R>>,
    ) -> Vec<Result<WriteOutcome<R>>> {
        let has_precondition = ops
            .iter()
            .any(|op| matches!(op, WriteOp::Update { .. } | WriteOp::Delete { .. }));
        let call = Call {
            operation: Operation::WriteBatch,
            has_cursor: false,
            has_precondition,
        };
        let n = ops.len();
        let fail_all = |fault: Fault| -> Vec<Result<WriteOutcome<R>>> {
            (0..n)
                .map(|_| Err(fault.error(Operation::WriteBatch)))
                .collect()
        };
        match self.next_fault(call) {
            None => self.inner.write_batch(collection, ops).await,
            Some(Fault::LostResponse) => {
                let _ = self.inner.write_batch(collection, ops).await;
                fail_all(Fault::LostResponse)
            }
            Some(Fault::StaleVersion) => {
                let mut sent = Vec::new();
                let mut stale = Vec::with_capacity(n);
                for op in ops {
                    let is_stale = matches!(op, WriteOp::Update { .. } | WriteOp::Delete { .. });
                    stale.push(is_stale);
                    if !is_stale {
                        sent.push(op);
                    }
                }
                let mut answers = if sent.is_empty() {
                    Vec::new()
                } else {
                    self.inner.write_batch(collection, sent).await
                }
                .into_iter();
                stale
                    .into_iter()
                    .map(|is_stale| {
                        if is_stale {
                            Err(Fault::StaleVersion.error(Operation::WriteBatch))
                        } else {
                            answers.next().unwrap_or_else(|| {
                                Err(Error::new(
                                    ErrorKind::Provider,
                                    "the wrapped store returned fewer results than operations",
                                ))
                            })
                        }
                    })
                    .collect()
            }
            Some(fault) => fail_all(fault),
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<S: CalendarStore> CalendarStore for FaultInjecting<S> {
    async fn calendars(&self) -> Result<Vec<CollectionInfo>> {
        self.run(Call::plain(Operation::Collections), self.inner.calendars())
            .await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<S: ContactStore> ContactStore for FaultInjecting<S> {
    async fn address_books(&self) -> Result<Vec<CollectionInfo>> {
        self.run(
            Call::plain(Operation::Collections),
            self.inner.address_books(),
        )
        .await
    }

    async fn groups(&self, address_book: &CollectionId) -> Result<Vec<CollectionInfo>> {
        self.run(
            Call::plain(Operation::Groups),
            self.inner.groups(address_book),
        )
        .await
    }

    async fn create_group(
        &self,
        address_book: &CollectionId,
        name: &str,
    ) -> Result<CollectionInfo> {
        self.run(
            Call::plain(Operation::CreateGroup),
            self.inner.create_group(address_book, name),
        )
        .await
    }
}

/// Hooks act on the wrapped store directly, never faulted.
#[cfg(feature = "conformance")]
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<R: Record, S: crmsync_core::conformance::StoreHooks<R>>
    crmsync_core::conformance::StoreHooks<R> for FaultInjecting<S>
{
    async fn expire_cursors(&self) -> Result<bool> {
        self.inner.expire_cursors().await
    }

    async fn edit_behind_back(
        &self,
        collection: &CollectionId,
        id: &ItemId,
        edit: &(dyn for<'r> Fn(&'r mut R) + Send + Sync),
    ) -> Result<bool> {
        self.inner.edit_behind_back(collection, id, edit).await
    }

    async fn delete_behind_back(&self, collection: &CollectionId, id: &ItemId) -> Result<bool> {
        self.inner.delete_behind_back(collection, id).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crmsync_core::{ChangesRequest, Contact, ContactField, LinkKey, RecordStoreExt, WriteOp};

    use super::*;
    use crate::MemoryStore;

    fn setup(
        plan: FaultPlan,
    ) -> (
        MemoryStore<Contact>,
        CollectionId,
        FaultInjecting<MemoryStore<Contact>>,
    ) {
        let memory = MemoryStore::<Contact>::new();
        let book = memory.add_collection("Contacts");
        let store = FaultInjecting::new(memory.clone(), plan);
        (memory, book, store)
    }

    fn key(n: usize) -> LinkKey {
        LinkKey::new(format!("crm-{n}")).unwrap()
    }

    fn notes() -> BTreeSet<ContactField> {
        BTreeSet::from([ContactField::Notes])
    }

    #[tokio::test]
    async fn scripted_faults_fire_at_their_call_and_are_typed() {
        let plan = FaultPlan::script(vec![
            (1, Fault::Transport),
            (
                2,
                Fault::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                },
            ),
            (3, Fault::Server),
        ]);
        let (_, book, store) = setup(plan);
        assert!(store.collections().await.is_ok()); // call 0
        let e = store.collections().await.unwrap_err(); // 1
        assert_eq!(e.kind(), &ErrorKind::Transport);
        assert!(e.is_retryable());
        let e = store
            .get(&book, &ItemId::new("x").unwrap())
            .await
            .unwrap_err(); // 2
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_retryable());
        let e = store
            .create(&book, &Contact::new("A"), &key(1))
            .await
            .unwrap_err(); // 3
        assert_eq!(e.kind(), &ErrorKind::Provider);
        assert!(e.is_retryable());
        assert!(
            store.inner().get_all(&book).unwrap().is_empty(),
            "a 5xx applies nothing"
        );
        assert!(store.collections().await.is_ok()); // 4
        let fired: Vec<(u64, &str)> = store
            .fired()
            .iter()
            .map(|f| (f.call, f.fault.name()))
            .collect();
        assert_eq!(
            fired,
            [(1, "transport"), (2, "rate_limited"), (3, "server")]
        );
        assert_eq!(store.calls(), 5);
    }

    #[tokio::test]
    async fn the_next_n_calls_of_an_operation_fail() {
        let plan = FaultPlan::none().fail_next(Operation::Update, 2, Fault::StaleVersion);
        let (memory, book, store) = setup(plan);
        let a = store
            .create(&book, &Contact::new("A"), &key(1))
            .await
            .unwrap();
        for _ in 0..2 {
            let e = store
                .update(&book, &a.id, &a.version, &Contact::new("B"), &notes())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::PreconditionFailed);
            assert!(!e.is_retryable());
        }
        assert_eq!(
            memory.get_all(&book).unwrap()[0].version,
            a.version,
            "nothing written"
        );
        assert!(store.get(&book, &a.id).await.unwrap().is_some());
        assert!(
            store
                .update(&book, &a.id, &a.version, &Contact::new("B"), &notes())
                .await
                .is_ok()
        );
        assert_eq!(store.fired_counts().get("stale_version"), Some(&2));
    }

    #[tokio::test]
    async fn a_lost_response_applies_the_write() {
        let plan = FaultPlan::none()
            .fail_next(Operation::Create, 1, Fault::LostResponse)
            .fail_next(Operation::Delete, 1, Fault::LostResponse);
        let (memory, book, store) = setup(plan);
        let e = store
            .create(&book, &Contact::new("A"), &key(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Transport);
        let stored = store
            .find_by_link_key(&book, &key(1))
            .await
            .unwrap()
            .unwrap();
        let e = store
            .delete(&book, &stored.id, &stored.version)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Transport);
        assert!(
            memory.get_all(&book).unwrap().is_empty(),
            "the deletion happened"
        );
    }

    #[tokio::test]
    async fn cursor_expiry_fires_only_on_feeds_with_a_cursor() {
        let plan = FaultPlan::none().fail_next(Operation::Changes, 1, Fault::CursorExpired);
        let (_, book, store) = setup(plan);
        let listing = store.changes_to_end(&book, None, None).await.unwrap();
        assert!(
            store.fired().is_empty(),
            "a full listing has no cursor to expire"
        );
        let e = store
            .changes(
                &book,
                ChangesRequest {
                    cursor: listing.cursor.clone(),
                    ..ChangesRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::CursorExpired);
        assert!(
            store
                .changes_to_end(&book, listing.cursor, None)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn batches_fail_as_a_whole_or_per_stale_item() {
        let plan = FaultPlan::script(vec![(1, Fault::StaleVersion), (2, Fault::Server)]);
        let (memory, book, store) = setup(plan);
        let a = store
            .create(&book, &Contact::new("A"), &key(1))
            .await
            .unwrap(); // 0
        let ops = vec![
            WriteOp::Create {
                record: Contact::new("B"),
                link_key: key(2),
            },
            WriteOp::Update {
                id: a.id.clone(),
                expected: a.version.clone(),
                record: Contact::new("A2"),
                fields: notes(),
            },
        ];
        let results = store.write_batch(&book, ops.clone()).await; // 1
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().kind(),
            &ErrorKind::PreconditionFailed
        );
        assert_eq!(memory.get_all(&book).unwrap().len(), 2);
        let results = store.write_batch(&book, ops).await; // 2
        assert!(results.iter().all(|r| r.is_err()));
        assert_eq!(memory.get_all(&book).unwrap().len(), 2);
    }

    async fn random_run(seed: u64) -> Vec<FiredFault> {
        let allowed = vec![
            Fault::Transport,
            Fault::Server,
            Fault::RateLimited { retry_after: None },
            Fault::StaleVersion,
            Fault::LostResponse,
        ];
        let (_, book, store) = setup(FaultPlan::random(seed, 0.3, allowed));
        for n in 0..200 {
            if let Ok(s) = store.create(&book, &Contact::new("A"), &key(n)).await {
                let _ = store
                    .update(&book, &s.id, &s.version, &Contact::new("B"), &notes())
                    .await;
            }
            let _ = store.collections().await;
        }
        store.fired()
    }

    #[tokio::test]
    async fn seeded_random_faults_are_reproducible() {
        let a = random_run(42).await;
        let b = random_run(42).await;
        let c = random_run(43).await;
        assert_eq!(a, b);
        assert_ne!(a, c);
        let calls = 200 + 200 + 200; // at most
        assert!(a.len() > 50 && a.len() < calls / 2, "{} faults", a.len());
        assert!(
            a.iter()
                .filter(|f| f.fault == Fault::StaleVersion)
                .all(|f| f.operation == Operation::Update),
            "stale versions only fire on writes with a precondition"
        );
        let kinds: BTreeSet<&str> = a.iter().map(|f| f.fault.name()).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
    }

    #[tokio::test]
    async fn contact_store_calls_are_forwarded_and_faulted() {
        let plan = FaultPlan::none().fail_next(Operation::CreateGroup, 1, Fault::Transport);
        let (_, book, store) = setup(plan);
        assert!(store.create_group(&book, "VIP").await.is_err());
        assert!(store.create_group(&book, "VIP").await.is_ok());
        assert_eq!(store.groups(&book).await.unwrap().len(), 1);
        assert_eq!(store.address_books().await.unwrap().len(), 1);
    }
}
