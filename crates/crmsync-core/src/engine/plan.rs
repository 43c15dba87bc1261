//! The planner: pure, no I/O. From what both sides reported, the state and the policy, it
//! decides per record what to do, as named, printable [`Action`]s.
//!
//! The decision for a linked pair is one exhaustive `match` over (CRM, provider) observations
//! with the baseline; a changed pair goes through the field-level three-way merge
//! ([`merge`](self)), where each field follows its [`FieldRule`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::policy::{
    ConflictStrategy, DeletionMode, FieldPolicy, FieldRule, ForbiddenEdit,
};
use crate::error::{Error, ErrorKind};
use crate::hash::ContentHash;
use crate::ids::{CrmId, ItemId, LinkKey, RemoteId, Version};
use crate::record::{CanonicalRecord, Direction, Field, FieldLoss, FieldValue, Record, RecordExt};
use crate::state::{Link, Side, StateKey};
use crate::store::{Capabilities, Stored, Window};

/// What one side shows of one item in this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed<R: Record> {
    /// Listed in this run: changed, or present in a full listing.
    Present {
        /// The item.
        item: Stored<R>,
        /// When the store says it was modified, if it says.
        modified: Option<DateTime<Utc>>,
    },
    /// Reported deleted (a tombstone, or verified gone after a full listing).
    Deleted,
}

/// Decides a field changed on both sides when the policy says [`ConflictStrategy::Callback`].
pub trait ConflictResolver<F: Field>: fmt::Debug + Send + Sync {
    /// Which side's value wins.
    fn resolve(
        &self,
        field: F,
        crm: &FieldValue,
        provider: &FieldValue,
        baseline: Option<&FieldValue>,
    ) -> Side;
}

/// Everything the planner looks at. Built by the engine's declare phase; tests and benches
/// build it by hand.
#[derive(Debug)]
pub struct PlanInput<R: Record> {
    /// The collection pair being planned.
    pub key: StateKey,
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// The sync window, if records are bound to time.
    pub window: Option<Window>,
    /// What the CRM reported, by id. Items not here are unchanged.
    pub crm: HashMap<ItemId, Observed<R>>,
    /// What the provider reported, by id. Items not here are unchanged.
    pub provider: HashMap<ItemId, Observed<R>>,
    /// The links of every item above (more are fine).
    pub links: Vec<Link>,
    /// How many links the collection has in all (for caps and the mass-deletion guard).
    pub linked_total: usize,
    /// What the CRM store can hold.
    pub crm_capabilities: Capabilities,
    /// What the provider store can hold.
    pub provider_capabilities: Capabilities,
    /// The policy.
    pub policy: FieldPolicy<R::Field>,
    /// The resolver for [`ConflictStrategy::Callback`].
    pub resolver: Option<Arc<dyn ConflictResolver<R::Field>>>,
    /// The guards.
    pub guards: Guards,
    /// Whether unlinked records are matched by natural key (first sync onto an account that
    /// already holds the same people).
    pub match_natural_keys: bool,
    /// Which sides may be written in this run (a pull writes only the CRM, a push only the
    /// provider). Actions that would write elsewhere are left for a full sync.
    pub writable: WritableSides,
}

/// Which sides a run may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableSides {
    /// The CRM may be written.
    pub crm: bool,
    /// The provider may be written.
    pub provider: bool,
}

impl WritableSides {
    /// Both sides.
    pub const BOTH: WritableSides = WritableSides {
        crm: true,
        provider: true,
    };

    fn allows(&self, side: Side) -> bool {
        match side {
            Side::Crm => self.crm,
            Side::Provider => self.provider,
        }
    }
}

/// Limits that stop a run from doing harm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guards {
    /// The most records a collection syncs (linked ones included); `None`: no cap.
    pub cap: Option<usize>,
    /// A run that would delete more than this share of a side's linked records stops
    /// before writing (0.5: half).
    pub mass_deletion_ratio: f64,
    /// Deletions below this count never trip the guard (deleting one of one record is fine).
    pub mass_deletion_min: usize,
    /// The guard was confirmed: deletions go ahead.
    pub mass_deletion_confirmed: bool,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            cap: None,
            mass_deletion_ratio: 0.5,
            mass_deletion_min: 2,
            mass_deletion_confirmed: false,
        }
    }
}

/// A write of some fields onto an existing item.
#[derive(Debug, Clone, PartialEq)]
pub struct Write<R: Record> {
    /// The item written.
    pub id: ItemId,
    /// The version the write is based on.
    pub expected: Version,
    /// The record holding the values.
    pub record: R,
    /// The fields written.
    pub fields: BTreeSet<R::Field>,
}

/// How an unlinked pair was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkedBy {
    /// One carries the other's id as its link key (a lost or reset state recovered).
    LinkKey,
    /// Both have the same natural key (e-mail, iCalUID, title and start).
    NaturalKey,
}

/// A field changed on both sides to different values, and how it was settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The field's name.
    pub field: String,
    /// The CRM's value.
    pub crm: FieldValue,
    /// The provider's value.
    pub provider: FieldValue,
    /// The side whose value was kept.
    pub winner: Side,
    /// The strategy that decided.
    pub strategy: ConflictStrategy,
}

/// An edit of a field the editing side does not own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForbiddenChange {
    /// The field's name.
    pub field: String,
    /// The side that edited it.
    pub edited_on: Side,
    /// What was done about it.
    pub handling: ForbiddenEdit,
}

/// Updates a linked pair (one side, both, or only the state), or links an unlinked pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge<R: Record> {
    /// The CRM record.
    pub crm_id: CrmId,
    /// The provider record.
    pub remote_id: RemoteId,
    /// `Some` when the pair was not linked before this run.
    pub linked_by: Option<LinkedBy>,
    /// The write to the CRM, if any.
    pub crm_write: Option<Write<R>>,
    /// The write to the provider, if any.
    pub provider_write: Option<Write<R>>,
    /// The CRM record's current version.
    pub crm_version: Version,
    /// The provider record's current version.
    pub remote_version: Version,
    /// The record as both sides hold it once the writes are done (CRM-side form).
    pub baseline: CanonicalRecord,
    /// Fields changed on both sides.
    pub conflicts: Vec<Conflict>,
    /// Edits of fields the editing side does not own.
    pub forbidden: Vec<ForbiddenChange>,
    /// What the provider could not hold.
    pub losses: Vec<FieldLoss>,
    /// The link as it was before this run; `None` for a pair linked in this run. When
    /// only one side's write succeeds, the executor records what that side now agrees on
    /// against this baseline, so the other side's edits are not mistaken for ours.
    pub previous: Option<Link>,
}

/// Why a record is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum SkipReason {
    /// A recurring series (or an instance) while the policy skips recurrence.
    Recurring,
    /// Outside the sync window.
    OutsideWindow,
    /// The policy does not create this side's records on the other side.
    CreateNotAllowed,
    /// The collection's cap is reached.
    CapReached,
    /// A second copy carries the link key of a record already linked.
    DuplicateCopy(String),
    /// The side to write is not written in this run (push or pull).
    NotWrittenThisRun,
    /// A provider copy of ours whose CRM record was deleted while the policy kept the copy
    /// (or while the pair was not linked): it is not copied back over the deletion.
    CounterpartDeleted(String),
    /// The store leaves it out of the synced set by the configuration's choice (a contact
    /// outside the synced contact group); the reason says which.
    OutsideSelection(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Recurring => {
                f.write_str("recurring series, and the policy skips recurrence")
            }
            SkipReason::OutsideWindow => f.write_str("outside the sync window"),
            SkipReason::CreateNotAllowed => {
                f.write_str("the policy does not create it on the other side")
            }
            SkipReason::CapReached => f.write_str("the collection's cap is reached"),
            SkipReason::DuplicateCopy(of) => write!(f, "a second copy of linked record {of}"),
            SkipReason::CounterpartDeleted(of) => {
                write!(f, "a copy of crm {of}, which was deleted")
            }
            SkipReason::NotWrittenThisRun => {
                f.write_str("the other side is not written in this run")
            }
            SkipReason::OutsideSelection(why) => write!(f, "left out: {why}"),
        }
    }
}

/// One named operation of a plan.
#[derive(Debug, Clone)]
pub enum Action<R: Record> {
    /// Create a copy of `source` on `target`, carrying `link_key`.
    Create {
        /// The side written.
        target: Side,
        /// The record copied, as its side holds it.
        source: Stored<R>,
        /// What is written (fitted to the target).
        record: R,
        /// The key stored on the copy.
        link_key: LinkKey,
        /// The baseline once created (CRM-side form).
        baseline: CanonicalRecord,
        /// What the target could not hold.
        losses: Vec<FieldLoss>,
        /// For a copy made again over a deletion (the other side kept an edit): the id of
        /// the deleted copy on `target`, whose link this copy replaces. If the create fails,
        /// that id is read again next run so the deletion is not forgotten.
        replaces: Option<ItemId>,
    },
    /// Update or link a pair.
    Merge(Box<Merge<R>>),
    /// Delete the copy on `target` (its counterpart was deleted).
    Delete {
        /// The side written.
        target: Side,
        /// The pair's CRM id.
        crm_id: CrmId,
        /// The pair's remote id.
        remote_id: RemoteId,
        /// The version the deletion is based on.
        expected: Version,
    },
    /// A deletion the policy wants confirmed: it is put to the deletion gate.
    ConfirmDeletion {
        /// The side that would be written.
        target: Side,
        /// The pair's CRM id.
        crm_id: CrmId,
        /// The pair's remote id.
        remote_id: RemoteId,
        /// The version the deletion is based on.
        expected: Version,
    },
    /// Forget the link; both copies stay.
    Unlink {
        /// The pair's CRM id.
        crm_id: CrmId,
        /// The pair's remote id.
        remote_id: RemoteId,
        /// Why.
        reason: String,
    },
    /// Both copies are gone: forget the link.
    Forget {
        /// The pair's CRM id.
        crm_id: CrmId,
        /// The pair's remote id.
        remote_id: RemoteId,
    },
    /// Leave a linked pair for a later run; both sides are read again then.
    Postpone {
        /// The pair's CRM id.
        crm_id: CrmId,
        /// The pair's remote id.
        remote_id: RemoteId,
        /// Why.
        reason: SkipReason,
    },
    /// Leave a record alone.
    Skip {
        /// The side it lives on.
        side: Side,
        /// Its id.
        id: ItemId,
        /// Why.
        reason: SkipReason,
    },
    /// A record that cannot be planned (its stored baseline does not fit, it fails
    /// validation): reported with its id, the rest of the run goes on.
    Fail {
        /// The side it lives on.
        side: Side,
        /// Its id.
        id: ItemId,
        /// What is wrong.
        error: Error,
    },
}

impl<R: Record> Action<R> {
    /// The side this action writes to, if it writes a store.
    pub fn writes(&self) -> Vec<Side> {
        match self {
            Action::Create { target, .. } | Action::Delete { target, .. } => vec![*target],
            Action::Merge(m) => {
                let mut v = Vec::new();
                if m.crm_write.is_some() {
                    v.push(Side::Crm);
                }
                if m.provider_write.is_some() {
                    v.push(Side::Provider);
                }
                v
            }
            _ => Vec::new(),
        }
    }
}

fn field_list<F: Field>(fields: &BTreeSet<F>) -> String {
    fields
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl<R: Record> fmt::Display for Action<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create {
                target,
                source,
                losses,
                ..
            } => {
                write!(
                    f,
                    "create on {target} a copy of {} {}",
                    target.opposite(),
                    source.id
                )?;
                let summary = source.record.summary();
                if !summary.is_empty() {
                    write!(f, " {summary:?}")?;
                }
                if !losses.is_empty() {
                    write!(f, " ({} value(s) the {target} cannot hold)", losses.len())?;
                }
                Ok(())
            }
            Action::Merge(m) => {
                let verb = if m.linked_by.is_some() {
                    "link"
                } else {
                    "update"
                };
                write!(f, "{verb} crm {} <-> provider {}", m.crm_id, m.remote_id)?;
                let summary = m
                    .crm_write
                    .as_ref()
                    .or(m.provider_write.as_ref())
                    .map(|w| w.record.summary())
                    .unwrap_or_default();
                if !summary.is_empty() {
                    write!(f, " {summary:?}")?;
                }
                if let Some(by) = m.linked_by {
                    write!(
                        f,
                        " (by {})",
                        match by {
                            LinkedBy::LinkKey => "link key",
                            LinkedBy::NaturalKey => "natural key",
                        }
                    )?;
                }
                if let Some(w) = &m.crm_write {
                    write!(f, "; crm <- {}", field_list(&w.fields))?;
                }
                if let Some(w) = &m.provider_write {
                    write!(f, "; provider <- {}", field_list(&w.fields))?;
                }
                if m.crm_write.is_none() && m.provider_write.is_none() && m.linked_by.is_none() {
                    f.write_str("; versions only")?;
                }
                for c in &m.conflicts {
                    write!(f, "; conflict on {} settled for the {}", c.field, c.winner)?;
                }
                Ok(())
            }
            Action::Delete {
                target,
                crm_id,
                remote_id,
                ..
            } => write!(
                f,
                "delete on {target} (crm {crm_id} <-> provider {remote_id})"
            ),
            Action::ConfirmDeletion {
                target,
                crm_id,
                remote_id,
                ..
            } => write!(
                f,
                "ask before deleting on {target} (crm {crm_id} <-> provider {remote_id})"
            ),
            Action::Unlink {
                crm_id,
                remote_id,
                reason,
            } => write!(f, "unlink crm {crm_id} <-> provider {remote_id}: {reason}"),
            Action::Forget { crm_id, remote_id } => {
                write!(
                    f,
                    "forget crm {crm_id} <-> provider {remote_id} (gone on both sides)"
                )
            }
            Action::Skip { side, id, reason } => write!(f, "skip {side} {id}: {reason}"),
            Action::Postpone {
                crm_id,
                remote_id,
                reason,
            } => write!(
                f,
                "postpone crm {crm_id} <-> provider {remote_id}: {reason}"
            ),
            Action::Fail { side, id, error } => write!(f, "fail {side} {id}: {error}"),
        }
    }
}

/// Why a run stopped before writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardTrip {
    /// The side that would lose records.
    pub side: Side,
    /// How many deletions were planned there.
    pub deletions: usize,
    /// How many linked records the collection has.
    pub linked: usize,
}

impl fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the run would delete {} of {} linked records on the {}; confirm to go ahead",
            self.deletions, self.linked, self.side
        )
    }
}

/// A cap reached: how many records were left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitReport {
    /// The cap.
    pub cap: usize,
    /// Linked records before this run.
    pub linked: usize,
    /// New records left out.
    pub left_out: usize,
}

/// The output of planning: what a sync would do. Printing it is the dry run.
#[derive(Debug, Clone)]
pub struct Plan<R: Record> {
    /// The collection pair.
    pub key: StateKey,
    /// The actions, in execution order.
    pub actions: Vec<Action<R>>,
    /// Set when the mass-deletion guard stops the run.
    pub guard: Option<GuardTrip>,
    /// Set when the cap left records out.
    pub limit: Option<LimitReport>,
}

impl<R: Record> Plan<R> {
    /// Whether the plan writes nothing to either store.
    pub fn is_empty(&self) -> bool {
        self.actions.iter().all(|a| a.writes().is_empty())
            && !self.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::Unlink { .. } | Action::Forget { .. } | Action::ConfirmDeletion { .. }
                ) || matches!(a, Action::Merge(m) if m.linked_by.is_some())
            })
    }

    /// The actions that write to a store or change links.
    pub fn changes(&self) -> impl Iterator<Item = &Action<R>> {
        self.actions.iter().filter(|a| {
            !matches!(a, Action::Skip { .. } | Action::Postpone { .. }) && !is_version_refresh(a)
        })
    }
}

fn is_version_refresh<R: Record>(a: &Action<R>) -> bool {
    matches!(a, Action::Merge(m) if m.linked_by.is_none() && m.crm_write.is_none() && m.provider_write.is_none() && m.conflicts.is_empty())
}

impl<R: Record> fmt::Display for Plan<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for {}:", self.key)?;
        let mut shown = 0;
        for a in self.changes() {
            writeln!(f, "  {a}")?;
            shown += 1;
        }
        let skipped = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Skip { .. } | Action::Postpone { .. }))
            .count();
        if shown == 0 {
            writeln!(f, "  nothing to do")?;
        }
        if skipped > 0 {
            writeln!(f, "  ({skipped} record(s) skipped)")?;
        }
        if let Some(limit) = &self.limit {
            writeln!(
                f,
                "  cap of {} reached: {} new record(s) left out",
                limit.cap, limit.left_out
            )?;
        }
        if let Some(guard) = &self.guard {
            writeln!(f, "  STOPPED: {guard}")?;
        }
        Ok(())
    }
}

/// Plans a run. Pure: the same input gives the same plan.
pub fn plan<R: Record>(input: &PlanInput<R>) -> Plan<R> {
    Planner::new(input).run()
}

struct Planner<'a, R: Record> {
    input: &'a PlanInput<R>,
    by_crm: HashMap<&'a str, &'a Link>,
    by_remote: HashMap<&'a str, &'a Link>,
    recurrence_skipped: bool,
}

/// Observations of one linked pair.
enum Obs<'a, R: Record> {
    Unchanged,
    Present(&'a Stored<R>, Option<DateTime<Utc>>),
    Deleted,
}

impl<'a, R: Record> Planner<'a, R> {
    fn new(input: &'a PlanInput<R>) -> Self {
        // Only the links this run touches are indexed: the ids observed, and the link keys
        // observed copies carry. With a change feed that is a few out of many.
        let mut wanted_crm: HashSet<&str> = input.crm.keys().map(ItemId::as_str).collect();
        let mut wanted_remote: HashSet<&str> = input.provider.keys().map(ItemId::as_str).collect();
        for obs in input.provider.values() {
            if let Observed::Present { item, .. } = obs
                && let Some(key) = &item.link_key
            {
                wanted_crm.insert(key.as_str());
            }
        }
        for obs in input.crm.values() {
            if let Observed::Present { item, .. } = obs
                && let Some(key) = &item.link_key
            {
                wanted_remote.insert(key.as_str());
            }
        }
        let mut by_crm = HashMap::with_capacity(wanted_crm.len());
        let mut by_remote = HashMap::with_capacity(wanted_remote.len());
        for link in &input.links {
            if wanted_crm.contains(link.crm_id.as_str())
                || wanted_remote.contains(link.remote_id.as_str())
            {
                by_crm.insert(link.crm_id.as_str(), link);
                by_remote.insert(link.remote_id.as_str(), link);
            }
        }
        let recurrence_skipped = R::recurrence_field()
            .is_some_and(|f| input.policy.rule(f).direction == Direction::Skip);
        Planner {
            input,
            by_crm,
            by_remote,
            recurrence_skipped,
        }
    }

    fn observed(map: &'a HashMap<ItemId, Observed<R>>, id: &str) -> Obs<'a, R> {
        // ItemId borrows as str through its Hash/Eq on the inner string.
        match map.get(id) {
            None => Obs::Unchanged,
            Some(Observed::Present { item, modified }) => Obs::Present(item, *modified),
            Some(Observed::Deleted) => Obs::Deleted,
        }
    }

    fn run(self) -> Plan<R> {
        let input = self.input;
        let mut actions: Vec<Action<R>> = Vec::new();

        // 1. Linked pairs touched by this run, each once, in a stable order.
        let mut pairs: Vec<&Link> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for id in input.crm.keys() {
            if let Some(link) = self.by_crm.get(id.as_str())
                && seen.insert(link.crm_id.as_str())
            {
                pairs.push(link);
            }
        }
        for id in input.provider.keys() {
            if let Some(link) = self.by_remote.get(id.as_str())
                && seen.insert(link.crm_id.as_str())
            {
                pairs.push(link);
            }
        }
        pairs.sort_by(|a, b| a.crm_id.cmp(&b.crm_id));
        for link in pairs {
            let crm = Self::observed(&input.crm, link.crm_id.as_str());
            let provider = Self::observed(&input.provider, link.remote_id.as_str());
            if let Some(action) = self.plan_pair(link, crm, provider) {
                actions.push(action);
            }
        }

        // 2. Unlinked records present on one side.
        let mut crm_new: Vec<&Stored<R>> = Vec::new();
        let mut provider_new: Vec<&Stored<R>> = Vec::new();
        for (id, obs) in &input.crm {
            if let Observed::Present { item, .. } = obs
                && !self.by_crm.contains_key(id.as_str())
            {
                crm_new.push(item);
            }
        }
        for (id, obs) in &input.provider {
            if let Observed::Present { item, .. } = obs
                && !self.by_remote.contains_key(id.as_str())
            {
                provider_new.push(item);
            }
        }
        crm_new.sort_by(|a, b| a.id.cmp(&b.id));
        provider_new.sort_by(|a, b| a.id.cmp(&b.id));
        self.plan_unlinked(crm_new, provider_new, &mut actions);

        let mut plan = Plan {
            key: input.key.clone(),
            actions,
            guard: None,
            limit: None,
        };
        self.apply_cap(&mut plan);
        self.apply_deletion_guard(&mut plan);
        plan
    }

    fn skip_if_recurring(&self, side: Side, item: &Stored<R>) -> Option<Action<R>> {
        (self.recurrence_skipped && item.record.is_recurring()).then(|| Action::Skip {
            side,
            id: item.id.clone(),
            reason: SkipReason::Recurring,
        })
    }

    /// The one exhaustive match over a linked pair's observations.
    fn plan_pair(&self, link: &Link, crm: Obs<'a, R>, provider: Obs<'a, R>) -> Option<Action<R>> {
        // A listed item whose version is the one recorded is our own write coming back, or
        // an unchanged item in a full listing: no change.
        let crm = match crm {
            Obs::Present(item, _) if Some(&item.version) == link.crm_version.as_ref() => {
                Obs::Unchanged
            }
            other => other,
        };
        let provider = match provider {
            Obs::Present(item, _) if Some(&item.version) == link.remote_version.as_ref() => {
                Obs::Unchanged
            }
            other => other,
        };
        match (crm, provider) {
            (Obs::Unchanged, Obs::Unchanged) => None,
            (Obs::Deleted, Obs::Deleted) => Some(Action::Forget {
                crm_id: link.crm_id.clone(),
                remote_id: link.remote_id.clone(),
            }),
            (Obs::Deleted, Obs::Unchanged) => Some(self.deletion(link, Side::Crm, None)),
            (Obs::Unchanged, Obs::Deleted) => Some(self.deletion(link, Side::Provider, None)),
            (Obs::Deleted, Obs::Present(p, _)) => Some(self.deletion(link, Side::Crm, Some(p))),
            (Obs::Present(c, _), Obs::Deleted) => {
                Some(self.deletion(link, Side::Provider, Some(c)))
            }
            (Obs::Present(c, cm), Obs::Unchanged) => {
                if let Some(skip) = self.skip_if_recurring(Side::Crm, c) {
                    return Some(skip);
                }
                Some(self.merge_linked(link, Some((c, cm)), None))
            }
            (Obs::Unchanged, Obs::Present(p, pm)) => {
                if let Some(skip) = self.skip_if_recurring(Side::Provider, p) {
                    return Some(skip);
                }
                Some(self.merge_linked(link, None, Some((p, pm))))
            }
            (Obs::Present(c, cm), Obs::Present(p, pm)) => {
                if let Some(skip) = self
                    .skip_if_recurring(Side::Crm, c)
                    .or_else(|| self.skip_if_recurring(Side::Provider, p))
                {
                    return Some(skip);
                }
                Some(self.merge_linked(link, Some((c, cm)), Some((p, pm))))
            }
        }
    }

    /// `deleted_on` lost its copy; `survivor` is the other side's copy if it changed.
    fn deletion(&self, link: &Link, deleted_on: Side, survivor: Option<&Stored<R>>) -> Action<R> {
        let target = deleted_on.opposite();
        // A survivor edited in fields that flow towards the deleted side keeps its edit:
        // the copy is recreated rather than the edit lost.
        if let Some(item) = survivor {
            let edited_towards_deleted = match self.baseline_record(link, &item.record) {
                Ok(base) => R::Field::ALL.iter().any(|&f| {
                    self.input.policy.rule(f).flows_from(target)
                        && item.record.field_hash(f) != self.side_form(target, &base).field_hash(f)
                }),
                Err(_) => true,
            };
            if edited_towards_deleted && self.input.policy.create.from_side(target) {
                let deleted_id: ItemId = match deleted_on {
                    Side::Crm => link.crm_id.clone().into(),
                    Side::Provider => link.remote_id.clone().into(),
                };
                return self.create_action(deleted_on, item, Some(deleted_id));
            }
        }
        let expected = match (target, survivor) {
            (_, Some(item)) => Some(item.version.clone()),
            (Side::Crm, None) => link.crm_version.clone(),
            (Side::Provider, None) => link.remote_version.clone(),
        };
        let mode = self.input.policy.deletions.from_side(deleted_on);
        let Some(expected) = expected else {
            return Action::Unlink {
                crm_id: link.crm_id.clone(),
                remote_id: link.remote_id.clone(),
                reason: format!(
                    "deleted on the {deleted_on}; no version known for the {target} copy"
                ),
            };
        };
        if !self.input.writable.allows(target) && mode != DeletionMode::Ignore {
            return Action::Skip {
                side: deleted_on,
                id: match deleted_on {
                    Side::Crm => link.crm_id.clone().into(),
                    Side::Provider => link.remote_id.clone().into(),
                },
                reason: SkipReason::NotWrittenThisRun,
            };
        }
        match mode {
            DeletionMode::Propagate => Action::Delete {
                target,
                crm_id: link.crm_id.clone(),
                remote_id: link.remote_id.clone(),
                expected,
            },
            DeletionMode::Confirm => Action::ConfirmDeletion {
                target,
                crm_id: link.crm_id.clone(),
                remote_id: link.remote_id.clone(),
                expected,
            },
            DeletionMode::Ignore => Action::Unlink {
                crm_id: link.crm_id.clone(),
                remote_id: link.remote_id.clone(),
                reason: format!("deleted on the {deleted_on}; the policy keeps the {target} copy"),
            },
        }
    }

    /// The baseline as a record, built on top of `template` (any record of the pair).
    fn baseline_record(&self, link: &Link, template: &R) -> Result<R, Error> {
        R::from_canonical(&link.baseline, template.clone())
    }

    /// A CRM-side record as `side` holds it (fitted to that side's capabilities).
    fn side_form(&self, side: Side, record: &R) -> R {
        self.side_form_ref(side, record).into_owned()
    }

    /// As [`side_form`](Self::side_form), without a copy when the side holds everything.
    fn side_form_ref<'r>(&self, side: Side, record: &'r R) -> Cow<'r, R> {
        let caps = self.caps(side);
        if caps.restricts() {
            Cow::Owned(record.fit(caps).record)
        } else {
            Cow::Borrowed(record)
        }
    }

    fn caps(&self, side: Side) -> &Capabilities {
        match side {
            Side::Crm => &self.input.crm_capabilities,
            Side::Provider => &self.input.provider_capabilities,
        }
    }

    fn merge_linked(
        &self,
        link: &Link,
        crm: Option<(&Stored<R>, Option<DateTime<Utc>>)>,
        provider: Option<(&Stored<R>, Option<DateTime<Utc>>)>,
    ) -> Action<R> {
        let template = crm.or(provider).map(|(s, _)| &s.record);
        let Some(template) = template else {
            // plan_pair only calls this with at least one side present.
            return Action::Fail {
                side: Side::Crm,
                id: link.crm_id.clone().into(),
                error: Error::state("a merge with neither side present"),
            };
        };
        let base = match self.baseline_record(link, template) {
            Ok(b) => b,
            Err(e) => {
                return Action::Fail {
                    side: Side::Crm,
                    id: link.crm_id.clone().into(),
                    error: Error::new(
                        ErrorKind::State,
                        format!(
                            "the stored baseline of crm {} cannot be read: {e}",
                            link.crm_id
                        ),
                    ),
                };
            }
        };
        let (crm_record, crm_version, crm_modified) = match crm {
            Some((s, m)) => (s.record.clone(), s.version.clone(), m),
            None => match &link.crm_version {
                Some(v) => (base.clone(), v.clone(), None),
                None => {
                    return Action::Fail {
                        side: Side::Crm,
                        id: link.crm_id.clone().into(),
                        error: Error::state("the link has no CRM version"),
                    };
                }
            },
        };
        let (provider_record, remote_version, provider_modified) = match provider {
            Some((s, m)) => (s.record.clone(), s.version.clone(), m),
            None => match &link.remote_version {
                Some(v) => (self.side_form(Side::Provider, &base), v.clone(), None),
                None => {
                    return Action::Fail {
                        side: Side::Provider,
                        id: link.remote_id.clone().into(),
                        error: Error::state("the link has no provider version"),
                    };
                }
            },
        };
        self.merge(MergeIn {
            crm_id: link.crm_id.clone(),
            remote_id: link.remote_id.clone(),
            linked_by: None,
            crm: crm_record,
            crm_version,
            crm_modified,
            provider: provider_record,
            remote_version,
            provider_modified,
            base: Some(base),
            base_hashes: Some(&link.baseline),
            previous: Some(link),
        })
    }

    /// The field-level three-way merge of one pair.
    fn merge(&self, m: MergeIn<'_, R>) -> Action<R> {
        let policy = &self.input.policy;
        // Forms of each record as the other side can hold it; when a side holds everything
        // they are the records themselves and their hashes are not computed twice.
        let provider_restricts = self.caps(Side::Provider).restricts();
        let crm_restricts = self.caps(Side::Crm).restricts();
        let crm_fit = self.side_form_ref(Side::Provider, &m.crm);
        let provider_in_crm = self.side_form_ref(Side::Crm, &m.provider);
        let base_fit = m
            .base
            .as_ref()
            .map(|b| self.side_form_ref(Side::Provider, b));
        let mut merged = m.crm.clone();
        let mut to_crm: BTreeSet<R::Field> = BTreeSet::new();
        let mut to_provider: BTreeSet<R::Field> = BTreeSet::new();
        let mut conflicts = Vec::new();
        let mut forbidden = Vec::new();
        let mut errors: Vec<Error> = Vec::new();

        for &f in R::Field::ALL {
            let rule = policy.rule(f);
            if rule.direction == Direction::Skip {
                continue;
            }
            let c_hash = m.crm.field_hash(f);
            let p_hash = m.provider.field_hash(f);
            let crm_fit_hash = if provider_restricts {
                crm_fit.field_hash(f)
            } else {
                c_hash
            };
            if crm_fit_hash == p_hash {
                continue;
            }
            // The baseline's hashes are stored with it: no need to hash it again.
            let base_hash = m.base.as_ref().map(|b| {
                m.base_hashes
                    .and_then(|c| c.field_hash(f.name()))
                    .unwrap_or_else(|| b.field_hash(f))
            });
            // A side showing the value of a write of ours whose answer was lost holds our
            // write, not an edit of its own.
            let ours = |side: Side, hash: ContentHash| {
                m.previous.is_some_and(|l| {
                    l.pending
                        .iter()
                        .any(|w| w.side == side && w.field == f.name() && w.hash == hash)
                })
            };
            // And when one side shows our write, that write landed: the value it carried is
            // what both sides agreed on then (the baseline whose commit a crash or a lost
            // answer prevented), so the other side's value is judged against it. Without
            // this, a field changed and changed back around a crash keeps the first value.
            let c_ours = ours(Side::Crm, c_hash);
            let p_ours = ours(Side::Provider, p_hash);
            let base_fit_hash = match (&base_fit, provider_restricts) {
                (Some(b), true) => Some(b.field_hash(f)),
                (Some(_), false) => base_hash,
                (None, _) => None,
            };
            let (c_changed, p_changed) = match (c_ours, p_ours) {
                // The values differ (equal ones were passed over above).
                (false, true) => (true, false),
                (true, false) => (false, true),
                (true, true) => (false, false),
                (false, false) => (
                    base_hash.is_none_or(|b| b != c_hash),
                    base_fit_hash.is_none_or(|b| b != p_hash),
                ),
            };
            // Also no edit when the provider's value, read back into the CRM's form, is
            // what the CRM holds (a lossy copy is not an edit).
            let p_in_crm_hash = if crm_restricts {
                provider_in_crm.field_hash(f)
            } else {
                p_hash
            };
            let p_changed = p_changed && p_in_crm_hash != c_hash;
            let winner = self.decide(
                f,
                rule,
                c_changed,
                p_changed,
                &m,
                &mut conflicts,
                &mut forbidden,
            );
            match winner {
                Some(Side::Crm) => {
                    if rule.fill_empty_only && !is_empty(&m.provider.field(f)) {
                        continue;
                    }
                    to_provider.insert(f);
                }
                Some(Side::Provider) => {
                    if rule.fill_empty_only && !is_empty(&m.crm.field(f)) {
                        continue;
                    }
                    if let Err(e) = merged.set_field(f, &m.provider.field(f)) {
                        errors.push(e);
                        continue;
                    }
                    to_crm.insert(f);
                }
                None => {}
            }
        }
        if let Some(error) = errors.into_iter().next() {
            return Action::Fail {
                side: Side::Provider,
                id: m.remote_id.into(),
                error,
            };
        }
        if !to_crm.is_empty()
            && let Err(error) = merged.validate()
        {
            return Action::Fail {
                side: Side::Provider,
                id: m.remote_id.into(),
                error,
            };
        }
        let fitted = merged.fit(&self.input.provider_capabilities);
        let losses = if to_provider.is_empty() {
            Vec::new()
        } else {
            fitted
                .losses
                .into_iter()
                .filter(|l| to_provider.iter().any(|f| f.name() == l.field))
                .collect()
        };
        let crm_write = (!to_crm.is_empty()).then(|| Write {
            id: m.crm_id.clone().into(),
            expected: m.crm_version.clone(),
            record: merged.clone(),
            fields: to_crm,
        });
        let provider_write = (!to_provider.is_empty()).then(|| Write {
            id: m.remote_id.clone().into(),
            expected: m.remote_version.clone(),
            record: fitted.record,
            fields: to_provider,
        });
        // Writes a run may not make are left for a full sync: the pair stays as it was.
        if (crm_write.is_some() && !self.input.writable.crm)
            || (provider_write.is_some() && !self.input.writable.provider)
        {
            // Both sides become deferred items, read again next run: either may hold the
            // change that waits (a pull moves the provider's cursor past a provider edit,
            // and an earlier failed run may have left a CRM edit deferred).
            return Action::Postpone {
                crm_id: m.crm_id,
                remote_id: m.remote_id,
                reason: SkipReason::NotWrittenThisRun,
            };
        }
        Action::Merge(Box::new(Merge {
            crm_id: m.crm_id,
            remote_id: m.remote_id,
            linked_by: m.linked_by,
            crm_write,
            provider_write,
            crm_version: m.crm_version,
            remote_version: m.remote_version,
            baseline: merged.canonical(),
            conflicts,
            forbidden,
            losses,
            previous: m.previous.cloned(),
        }))
    }

    /// Which side's value of a field that differs wins, under the field's rule.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        f: R::Field,
        rule: FieldRule,
        c_changed: bool,
        p_changed: bool,
        m: &MergeIn<'_, R>,
        conflicts: &mut Vec<Conflict>,
        forbidden: &mut Vec<ForbiddenChange>,
    ) -> Option<Side> {
        let policy = &self.input.policy;
        let owner = match rule.direction {
            Direction::CrmToProvider => Some(Side::Crm),
            Direction::ProviderToCrm => Some(Side::Provider),
            Direction::Both | Direction::Skip => None,
        };
        if m.base.is_none() {
            // A first link (by link key or natural key): neither value is an edit. An empty
            // value never wipes a filled one, whatever the direction: the filled side wins.
            match (is_empty(&m.crm.field(f)), is_empty(&m.provider.field(f))) {
                (true, false) => return Some(Side::Provider),
                (false, true) => return Some(Side::Crm),
                _ => {}
            }
            if let Some(owner) = owner {
                return Some(owner);
            }
        }
        if let Some(owner) = owner {
            let other_changed = match owner {
                Side::Crm => p_changed,
                Side::Provider => c_changed,
            };
            if other_changed {
                forbidden.push(ForbiddenChange {
                    field: f.name().to_owned(),
                    edited_on: owner.opposite(),
                    handling: policy.forbidden_edits,
                });
                if policy.forbidden_edits == ForbiddenEdit::Ignore {
                    return None;
                }
            }
            return Some(owner);
        }
        match (c_changed, p_changed) {
            (true, false) => Some(Side::Crm),
            (false, true) => Some(Side::Provider),
            // Changed on both (or no baseline: a first link), to different values.
            _ => {
                let crm_value = m.crm.field(f);
                let provider_value = m.provider.field(f);
                let winner = match policy.conflicts {
                    ConflictStrategy::CrmWins => Side::Crm,
                    ConflictStrategy::ProviderWins => Side::Provider,
                    ConflictStrategy::Newest => match (m.crm_modified, m.provider_modified) {
                        (Some(c), Some(p)) if p > c => Side::Provider,
                        (None, Some(_)) => Side::Provider,
                        _ => Side::Crm,
                    },
                    ConflictStrategy::Callback => match &self.input.resolver {
                        Some(r) => {
                            let base = m.base.as_ref().map(|b| b.field(f));
                            r.resolve(f, &crm_value, &provider_value, base.as_ref())
                        }
                        None => Side::Crm,
                    },
                };
                conflicts.push(Conflict {
                    field: f.name().to_owned(),
                    crm: crm_value,
                    provider: provider_value,
                    winner,
                    strategy: policy.conflicts,
                });
                Some(winner)
            }
        }
    }

    fn create_action(
        &self,
        target: Side,
        source: &Stored<R>,
        replaces: Option<ItemId>,
    ) -> Action<R> {
        let source_side = target.opposite();
        let policy = &self.input.policy;
        // The copy holds every synced field; skipped fields stay empty on the target.
        let mut record = source.record.clone();
        let empty_from = |f: R::Field| -> bool { policy.rule(f).direction == Direction::Skip };
        let cleared: Vec<R::Field> = R::Field::ALL
            .iter()
            .copied()
            .filter(|&f| empty_from(f))
            .collect();
        if !cleared.is_empty() {
            // A record with skipped fields blanked: take them from a default-like copy of
            // the source by writing JSON null (every field accepts null as "empty").
            for f in cleared {
                if record.set_field(f, &FieldValue::Null).is_err() {
                    // Fields that have no empty form keep the source's value.
                }
            }
        }
        if source_side == Side::Provider {
            record.set_origin(&self.input.provider_capabilities.name, source.id.as_str());
        }
        if let Err(error) = record.validate() {
            return Action::Fail {
                side: source_side,
                id: source.id.clone(),
                error,
            };
        }
        let caps = match target {
            Side::Crm => &self.input.crm_capabilities,
            Side::Provider => &self.input.provider_capabilities,
        };
        let fitted = record.fit(caps);
        // The baseline is the CRM-side form: for a copy made on the provider, the CRM
        // record itself (skipped fields are never compared); for a copy made on the CRM,
        // what was written there.
        let baseline = match target {
            Side::Provider => source.record.canonical(),
            Side::Crm => fitted.record.canonical(),
        };
        Action::Create {
            target,
            link_key: LinkKey::from(source.id.clone()),
            record: fitted.record,
            source: source.clone(),
            baseline,
            losses: fitted.losses,
            replaces,
        }
    }

    fn plan_unlinked(
        &self,
        crm_new: Vec<&'a Stored<R>>,
        provider_new: Vec<&'a Stored<R>>,
        actions: &mut Vec<Action<R>>,
    ) {
        let input = self.input;
        let mut crm_left: Vec<&Stored<R>> = Vec::new();
        let mut provider_left: Vec<&Stored<R>> = Vec::new();
        let crm_by_id: HashMap<&str, &Stored<R>> =
            crm_new.iter().map(|s| (s.id.as_str(), *s)).collect();
        let mut crm_taken: HashSet<&str> = HashSet::new();

        // Recurring records are left alone before any matching.
        let crm_new: Vec<&Stored<R>> = crm_new
            .into_iter()
            .filter(|s| match self.skip_if_recurring(Side::Crm, s) {
                Some(skip) => {
                    actions.push(skip);
                    crm_taken.insert(s.id.as_str());
                    false
                }
                None => true,
            })
            .collect();

        // Relink by link key: a provider copy carrying a CRM id, or a CRM record carrying
        // its origin (a remote id).
        let provider_by_id: HashMap<&str, &Stored<R>> =
            provider_new.iter().map(|s| (s.id.as_str(), *s)).collect();
        let mut provider_taken: HashSet<&str> = HashSet::new();
        for p in &provider_new {
            if let Some(skip) = self.skip_if_recurring(Side::Provider, p) {
                actions.push(skip);
                provider_taken.insert(p.id.as_str());
                continue;
            }
            let Some(key) = &p.link_key else { continue };
            if let Some(link) = self.by_crm.get(key.as_str()) {
                // The CRM record is linked to another copy: this one is a duplicate.
                if link.remote_id.as_str() != p.id.as_str() {
                    actions.push(Action::Skip {
                        side: Side::Provider,
                        id: p.id.clone(),
                        reason: SkipReason::DuplicateCopy(link.crm_id.to_string()),
                    });
                    provider_taken.insert(p.id.as_str());
                }
                continue;
            }
            if matches!(input.crm.get(key.as_str()), Some(Observed::Deleted)) {
                actions.push(Action::Skip {
                    side: Side::Provider,
                    id: p.id.clone(),
                    reason: SkipReason::CounterpartDeleted(key.to_string()),
                });
                provider_taken.insert(p.id.as_str());
                continue;
            }
            if let Some(c) = crm_by_id.get(key.as_str())
                && crm_taken.insert(c.id.as_str())
            {
                provider_taken.insert(p.id.as_str());
                actions.push(self.link_pair(c, p, LinkedBy::LinkKey));
            }
        }
        for c in &crm_new {
            if crm_taken.contains(c.id.as_str()) {
                continue;
            }
            let Some(key) = &c.link_key else { continue };
            if let Some(link) = self.by_remote.get(key.as_str()) {
                if link.crm_id.as_str() != c.id.as_str() {
                    actions.push(Action::Skip {
                        side: Side::Crm,
                        id: c.id.clone(),
                        reason: SkipReason::DuplicateCopy(link.remote_id.to_string()),
                    });
                    crm_taken.insert(c.id.as_str());
                }
                continue;
            }
            if let Some(p) = provider_by_id.get(key.as_str())
                && !provider_taken.contains(p.id.as_str())
            {
                provider_taken.insert(p.id.as_str());
                crm_taken.insert(c.id.as_str());
                actions.push(self.link_pair(c, p, LinkedBy::LinkKey));
            }
        }
        for c in &crm_new {
            if !crm_taken.contains(c.id.as_str()) {
                crm_left.push(c);
            }
        }
        for p in &provider_new {
            if !provider_taken.contains(p.id.as_str()) {
                provider_left.push(p);
            }
        }

        // First-sync matching by natural key, one to one; ambiguous keys do not match.
        if input.match_natural_keys {
            let mut crm_keys: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, c) in crm_left.iter().enumerate() {
                if let Some(k) = c.record.natural_key() {
                    crm_keys.entry(k).or_default().push(i);
                }
            }
            let mut provider_keys: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, p) in provider_left.iter().enumerate() {
                if let Some(k) = p.record.natural_key() {
                    provider_keys.entry(k).or_default().push(i);
                }
            }
            let mut crm_matched = vec![false; crm_left.len()];
            let mut provider_matched = vec![false; provider_left.len()];
            let mut keys: Vec<&String> = crm_keys.keys().collect();
            keys.sort();
            for k in keys {
                if let (Some(ci), Some(pi)) = (crm_keys.get(k), provider_keys.get(k))
                    && ci.len() == 1
                    && pi.len() == 1
                {
                    crm_matched[ci[0]] = true;
                    provider_matched[pi[0]] = true;
                    actions.push(self.link_pair(
                        crm_left[ci[0]],
                        provider_left[pi[0]],
                        LinkedBy::NaturalKey,
                    ));
                }
            }
            crm_left = crm_left
                .into_iter()
                .zip(crm_matched)
                .filter_map(|(c, m)| (!m).then_some(c))
                .collect();
            provider_left = provider_left
                .into_iter()
                .zip(provider_matched)
                .filter_map(|(p, m)| (!m).then_some(p))
                .collect();
        }

        // What is left is new: created on the other side where the policy allows.
        for (side, items) in [(Side::Crm, crm_left), (Side::Provider, provider_left)] {
            for item in items {
                let target = side.opposite();
                if let Some(window) = &input.window
                    && !window.contains(&item.record)
                {
                    actions.push(Action::Skip {
                        side,
                        id: item.id.clone(),
                        reason: SkipReason::OutsideWindow,
                    });
                    continue;
                }
                if !input.policy.create.from_side(side) {
                    actions.push(Action::Skip {
                        side,
                        id: item.id.clone(),
                        reason: SkipReason::CreateNotAllowed,
                    });
                    continue;
                }
                if !input.writable.allows(target) {
                    actions.push(Action::Skip {
                        side,
                        id: item.id.clone(),
                        reason: SkipReason::NotWrittenThisRun,
                    });
                    continue;
                }
                actions.push(self.create_action(target, item, None));
            }
        }
    }

    fn link_pair(&self, crm: &Stored<R>, provider: &Stored<R>, by: LinkedBy) -> Action<R> {
        self.merge(MergeIn {
            crm_id: crm.id.clone().into(),
            remote_id: provider.id.clone().into(),
            linked_by: Some(by),
            crm: crm.record.clone(),
            crm_version: crm.version.clone(),
            crm_modified: None,
            provider: provider.record.clone(),
            remote_version: provider.version.clone(),
            provider_modified: None,
            base: None,
            base_hashes: None,
            previous: None,
        })
    }

    /// Keeps new records within the cap, nearest in time first, and reports the rest.
    fn apply_cap(&self, plan: &mut Plan<R>) {
        let Some(cap) = self.input.guards.cap else {
            return;
        };
        let now = self.input.now;
        let room = cap.saturating_sub(self.input.linked_total);
        let mut creates: Vec<(usize, i64)> = plan
            .actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::Create { source, .. } => {
                    let distance = source
                        .record
                        .time_span()
                        .map_or(0, |(start, _)| (start - now).num_seconds().abs());
                    Some((i, distance))
                }
                _ => None,
            })
            .collect();
        if creates.len() <= room {
            return;
        }
        creates.sort_by_key(|&(i, d)| (d, i));
        let left_out: HashSet<usize> = creates[room..].iter().map(|&(i, _)| i).collect();
        for &i in &left_out {
            if let Action::Create { source, target, .. } = &plan.actions[i] {
                plan.actions[i] = Action::Skip {
                    side: target.opposite(),
                    id: source.id.clone(),
                    reason: SkipReason::CapReached,
                };
            }
        }
        plan.limit = Some(LimitReport {
            cap,
            linked: self.input.linked_total,
            left_out: left_out.len(),
        });
    }

    fn apply_deletion_guard(&self, plan: &mut Plan<R>) {
        let guards = &self.input.guards;
        if guards.mass_deletion_confirmed {
            return;
        }
        let linked = self.input.linked_total;
        for side in [Side::Crm, Side::Provider] {
            let deletions = plan
                .actions
                .iter()
                .filter(|a| matches!(a, Action::Delete { target, .. } | Action::ConfirmDeletion { target, .. } if *target == side))
                .count();
            if deletions < guards.mass_deletion_min.max(1) || linked == 0 {
                continue;
            }
            let ratio = deletions as f64 / linked as f64;
            if ratio > guards.mass_deletion_ratio || deletions >= linked {
                plan.guard = Some(GuardTrip {
                    side,
                    deletions,
                    linked,
                });
                return;
            }
        }
    }
}

struct MergeIn<'b, R: Record> {
    crm_id: CrmId,
    remote_id: RemoteId,
    linked_by: Option<LinkedBy>,
    crm: R,
    crm_version: Version,
    crm_modified: Option<DateTime<Utc>>,
    provider: R,
    remote_version: Version,
    provider_modified: Option<DateTime<Utc>>,
    base: Option<R>,
    /// The stored baseline, whose per-field hashes spare hashing `base` again.
    base_hashes: Option<&'b CanonicalRecord>,
    /// The link as it was, for an existing pair.
    previous: Option<&'b Link>,
}

/// Whether a field value is empty: null, an empty string, list or object, or an object
/// whose values are all empty.
pub fn is_empty(value: &FieldValue) -> bool {
    match value {
        FieldValue::Null => true,
        FieldValue::String(s) => s.is_empty(),
        FieldValue::Array(a) => a.is_empty(),
        FieldValue::Object(o) => o.values().all(is_empty),
        FieldValue::Bool(_) | FieldValue::Number(_) => false,
    }
}
