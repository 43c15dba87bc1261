//! The report of a run: what was written on each side, conflicts, skips, errors with
//! remedies, guards, totals and requests.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::plan::{Conflict, ForbiddenChange, GuardTrip, LimitReport, SkipReason};
use crate::error::Error;
use crate::record::FieldLoss;
use crate::state::Side;

/// What kind of run made a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A dry run: nothing written.
    Plan,
    /// A two-way sync.
    Sync,
    /// Provider to CRM only.
    Pull,
    /// Given CRM records to the provider only.
    Push,
    /// A reset of links.
    Reset,
}

/// Counts for one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideReport {
    /// Records created on this side.
    pub created: u64,
    /// Records updated on this side.
    pub updated: u64,
    /// Records deleted on this side.
    pub deleted: u64,
    /// Linked records left as they were on this side.
    pub unchanged: u64,
    /// Records this side reported in its listing or change feed.
    pub listed: u64,
    /// Store calls made to this side (a batch is one).
    pub requests: u64,
    /// Whether this side was listed in full (first sync, expired cursor, moved window).
    pub full_listing: bool,
    /// Whether this side's cursor had expired.
    pub cursor_expired: bool,
    /// Whether this side's listing ended without a cursor (a change feed whose last page
    /// gave neither a next page nor a sync token): nothing is lost, but the side is listed
    /// in full and reconciled against the links on every run until it gives one again.
    #[serde(default)]
    pub no_cursor: bool,
}

/// A conflict and the pair it happened on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictReport {
    /// The CRM record.
    pub crm_id: String,
    /// The provider record.
    pub remote_id: String,
    /// The conflict and how it was settled.
    #[serde(flatten)]
    pub conflict: Conflict,
}

/// An edit of a field the editing side does not own, and the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForbiddenReport {
    /// The CRM record.
    pub crm_id: String,
    /// The provider record.
    pub remote_id: String,
    /// What happened.
    #[serde(flatten)]
    pub change: ForbiddenChange,
}

/// A record left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReport {
    /// The side it lives on.
    pub side: Side,
    /// Its id.
    pub id: String,
    /// Why.
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// A record that failed, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// The side it lives on.
    pub side: Side,
    /// Its id, when known.
    pub id: Option<String>,
    /// The error kind, as text.
    pub kind: String,
    /// The message.
    pub message: String,
    /// What a person should do.
    pub remedy: String,
    /// Whether the next run may succeed on its own.
    pub retryable: bool,
}

impl RecordError {
    /// A report entry for an error.
    pub fn new(side: Side, id: Option<String>, error: &Error) -> Self {
        RecordError {
            side,
            id,
            kind: error.kind().as_str().to_owned(),
            message: error.to_string(),
            remedy: error.remedy().to_owned(),
            retryable: error.is_retryable(),
        }
    }
}

/// A value a side could not hold, and the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossReport {
    /// The record's id on the side it came from.
    pub id: String,
    /// The side that could not hold it.
    pub side: Side,
    /// What was lost.
    #[serde(flatten)]
    pub loss: FieldLoss,
}

/// A deletion waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeletion {
    /// The side the copy would be deleted from.
    pub target: Side,
    /// The pair's CRM id.
    pub crm_id: String,
    /// The pair's remote id.
    pub remote_id: String,
}

/// The report of one run over one collection pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    /// What the run was.
    pub kind: RunKind,
    /// The collection pair (`account/kind/collection`).
    pub key: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds (by the injected clock).
    pub duration_ms: u64,
    /// The CRM side.
    pub crm: SideReport,
    /// The provider side.
    pub provider: SideReport,
    /// Links made in this run (relinks and natural-key matches included).
    pub linked: u64,
    /// Links forgotten in this run.
    pub unlinked: u64,
    /// Conflicts and how they were settled.
    pub conflicts: Vec<ConflictReport>,
    /// Edits of fields the editing side does not own.
    pub forbidden: Vec<ForbiddenReport>,
    /// Records left alone.
    pub skipped: Vec<SkipReport>,
    /// Records that failed; the rest of the run completed.
    pub errors: Vec<RecordError>,
    /// Values a side could not hold.
    pub losses: Vec<LossReport>,
    /// Deletions waiting for confirmation.
    pub pending_deletions: Vec<PendingDeletion>,
    /// Set when a cap left records out (a warning, not a failure).
    pub limit: Option<LimitReport>,
    /// Set when the mass-deletion guard stopped the run before writing.
    pub guard: Option<GuardTrip>,
}

impl SyncReport {
    /// An empty report.
    pub fn new(kind: RunKind, key: String, started_at: DateTime<Utc>) -> Self {
        SyncReport {
            kind,
            key,
            started_at,
            duration_ms: 0,
            crm: SideReport::default(),
            provider: SideReport::default(),
            linked: 0,
            unlinked: 0,
            conflicts: Vec::new(),
            forbidden: Vec::new(),
            skipped: Vec::new(),
            errors: Vec::new(),
            losses: Vec::new(),
            pending_deletions: Vec::new(),
            limit: None,
            guard: None,
        }
    }

    /// The counts of a side.
    pub fn side(&self, side: Side) -> &SideReport {
        match side {
            Side::Crm => &self.crm,
            Side::Provider => &self.provider,
        }
    }

    /// The counts of a side, to update.
    pub fn side_mut(&mut self, side: Side) -> &mut SideReport {
        match side {
            Side::Crm => &mut self.crm,
            Side::Provider => &mut self.provider,
        }
    }

    /// Records written on both sides.
    pub fn written(&self) -> u64 {
        [self.crm, self.provider]
            .iter()
            .map(|s| s.created + s.updated + s.deleted)
            .sum()
    }

    /// Whether the run wrote nothing, changed no link and found nothing wrong.
    pub fn nothing_to_do(&self) -> bool {
        self.written() == 0
            && self.linked == 0
            && self.unlinked == 0
            && self.errors.is_empty()
            && self.pending_deletions.is_empty()
            && self.guard.is_none()
    }

    /// Whether every record went through (no errors, no guard).
    pub fn is_success(&self) -> bool {
        self.errors.is_empty() && self.guard.is_none()
    }

    /// The report in one line, for status listings.
    pub fn one_line(&self) -> String {
        let mut line = format!(
            "{:?} of {}: crm +{} ~{} -{}, provider +{} ~{} -{}",
            self.kind,
            self.key,
            self.crm.created,
            self.crm.updated,
            self.crm.deleted,
            self.provider.created,
            self.provider.updated,
            self.provider.deleted
        );
        if !self.conflicts.is_empty() {
            line.push_str(&format!(", {} conflict(s)", self.conflicts.len()));
        }
        if !self.errors.is_empty() {
            line.push_str(&format!(", {} error(s)", self.errors.len()));
        }
        if !self.pending_deletions.is_empty() {
            line.push_str(&format!(
                ", {} deletion(s) to confirm",
                self.pending_deletions.len()
            ));
        }
        if self.guard.is_some() {
            line.push_str(", stopped by the mass-deletion guard");
        }
        line
    }

    /// Adds another report's counts and entries to this one (for several collections).
    pub fn absorb(&mut self, other: SyncReport) {
        for side in [Side::Crm, Side::Provider] {
            let o = *other.side(side);
            let s = self.side_mut(side);
            s.created += o.created;
            s.updated += o.updated;
            s.deleted += o.deleted;
            s.unchanged += o.unchanged;
            s.listed += o.listed;
            s.requests += o.requests;
            s.full_listing |= o.full_listing;
            s.cursor_expired |= o.cursor_expired;
            s.no_cursor |= o.no_cursor;
        }
        self.duration_ms += other.duration_ms;
        self.linked += other.linked;
        self.unlinked += other.unlinked;
        self.conflicts.extend(other.conflicts);
        self.forbidden.extend(other.forbidden);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
        self.losses.extend(other.losses);
        self.pending_deletions.extend(other.pending_deletions);
        self.limit = self.limit.take().or(other.limit);
        self.guard = self.guard.take().or(other.guard);
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:?} of {} ({} ms)",
            self.kind, self.key, self.duration_ms
        )?;
        writeln!(
            f,
            "  {:<9} {:>8} {:>8} {:>8} {:>9} {:>8}",
            "side", "created", "updated", "deleted", "unchanged", "requests"
        )?;
        for side in [Side::Crm, Side::Provider] {
            let s = self.side(side);
            writeln!(
                f,
                "  {:<9} {:>8} {:>8} {:>8} {:>9} {:>8}{}",
                side.as_str(),
                s.created,
                s.updated,
                s.deleted,
                s.unchanged,
                s.requests,
                if s.no_cursor {
                    "  (the store gave no cursor: listed in full, as every run will be until it gives one)"
                } else if s.cursor_expired {
                    "  (cursor expired: reconciled a full listing)"
                } else if s.full_listing {
                    "  (full listing)"
                } else {
                    ""
                }
            )?;
        }
        if self.linked > 0 || self.unlinked > 0 {
            writeln!(
                f,
                "  links: {} made, {} forgotten",
                self.linked, self.unlinked
            )?;
        }
        for c in &self.conflicts {
            writeln!(
                f,
                "  conflict: {} of crm {} <-> provider {}: kept the {}'s value ({:?})",
                c.conflict.field, c.crm_id, c.remote_id, c.conflict.winner, c.conflict.strategy
            )?;
        }
        for c in &self.forbidden {
            writeln!(
                f,
                "  {} edited `{}` of crm {} (not theirs to edit): {:?}",
                c.change.edited_on, c.change.field, c.crm_id, c.change.handling
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "  skipped: {}", self.skipped.len())?;
            for s in self.skipped.iter().take(10) {
                writeln!(f, "    {} {}: {}", s.side, s.id, s.reason)?;
            }
        }
        for l in &self.losses {
            writeln!(
                f,
                "  the {} cannot hold `{}` of {}: {}",
                l.side, l.loss.field, l.id, l.loss.detail
            )?;
        }
        for p in &self.pending_deletions {
            writeln!(
                f,
                "  awaiting confirmation: delete on {} (crm {} <-> provider {})",
                p.target, p.crm_id, p.remote_id
            )?;
        }
        if let Some(l) = &self.limit {
            writeln!(
                f,
                "  warning: cap of {} reached, {} new record(s) left out (raise the cap or narrow the window)",
                l.cap, l.left_out
            )?;
        }
        if let Some(g) = &self.guard {
            writeln!(f, "  STOPPED: {g}")?;
        }
        for e in &self.errors {
            writeln!(
                f,
                "  error: {} {}: {} -> {}",
                e.side,
                e.id.as_deref().unwrap_or("?"),
                e.message,
                e.remedy
            )?;
        }
        if self.nothing_to_do() {
            writeln!(f, "  nothing to do")?;
        }
        Ok(())
    }
}
