//! Tables, JSON rows and progress bars.

use std::io::IsTerminal as _;
use std::sync::Arc;

use crmsync_core::engine::{Action, LinkedBy, Phase, Plan, Progress};
use crmsync_core::{Field as _, Record};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One row of a plan: side, operation, record, fields.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    /// The side written (`crm`, `provider`), or `-` for link changes.
    pub side: String,
    /// The operation (`create`, `update`, `link`, `delete`, `confirm-delete`, `unlink`,
    /// `forget`, `skip`, `postpone`, `fail`).
    pub operation: String,
    /// The record: ids and a short description.
    pub record: String,
    /// The fields written, or the reason.
    pub fields: String,
}

/// The rows of a plan (version-only refreshes left out, as the plan's `Display` does).
pub fn plan_rows<R: Record>(plan: &Plan<R>) -> Vec<PlanRow> {
    let mut rows = Vec::new();
    let row = |side: &str, op: &str, record: String, fields: String| PlanRow {
        side: side.to_owned(),
        operation: op.to_owned(),
        record,
        fields,
    };
    let describe = |ids: String, summary: String| {
        if summary.is_empty() {
            ids
        } else {
            format!("{ids} {summary:?}")
        }
    };
    for action in &plan.actions {
        match action {
            Action::Create { target, source, .. } => rows.push(row(
                target.as_str(),
                "create",
                describe(
                    format!("copy of {} {}", target.opposite(), source.id),
                    source.record.summary(),
                ),
                "all".into(),
            )),
            Action::Merge(m) => {
                let ids = format!("crm {} <-> provider {}", m.crm_id, m.remote_id);
                let summary = m
                    .crm_write
                    .as_ref()
                    .or(m.provider_write.as_ref())
                    .map(|w| w.record.summary())
                    .unwrap_or_default();
                let conflicts: Vec<String> = m
                    .conflicts
                    .iter()
                    .map(|c| format!("conflict on {} kept the {}'s value", c.field, c.winner))
                    .collect();
                let extra = if conflicts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", conflicts.join("; "))
                };
                if let Some(by) = m.linked_by {
                    let by = match by {
                        LinkedBy::LinkKey => "by link key",
                        LinkedBy::NaturalKey => "by natural key",
                    };
                    rows.push(row(
                        "-",
                        "link",
                        describe(ids.clone(), summary.clone()),
                        by.to_owned(),
                    ));
                }
                for (side, write) in [("crm", &m.crm_write), ("provider", &m.provider_write)] {
                    if let Some(w) = write {
                        let fields: Vec<&str> = w.fields.iter().map(|f| f.name()).collect();
                        rows.push(row(
                            side,
                            "update",
                            describe(ids.clone(), summary.clone()),
                            format!("{}{extra}", fields.join(", ")),
                        ));
                    }
                }
            }
            Action::Delete {
                target,
                crm_id,
                remote_id,
                ..
            } => rows.push(row(
                target.as_str(),
                "delete",
                format!("crm {crm_id} <-> provider {remote_id}"),
                String::new(),
            )),
            Action::ConfirmDeletion {
                target,
                crm_id,
                remote_id,
                ..
            } => rows.push(row(
                target.as_str(),
                "confirm-delete",
                format!("crm {crm_id} <-> provider {remote_id}"),
                "waits for --confirm-deletions".into(),
            )),
            Action::Unlink {
                crm_id,
                remote_id,
                reason,
            } => rows.push(row(
                "-",
                "unlink",
                format!("crm {crm_id} <-> provider {remote_id}"),
                reason.clone(),
            )),
            Action::Forget { crm_id, remote_id } => rows.push(row(
                "-",
                "forget",
                format!("crm {crm_id} <-> provider {remote_id}"),
                "gone on both sides".into(),
            )),
            Action::Skip { side, id, reason } => rows.push(row(
                side.as_str(),
                "skip",
                id.to_string(),
                reason.to_string(),
            )),
            Action::Postpone {
                crm_id,
                remote_id,
                reason,
            } => rows.push(row(
                "-",
                "postpone",
                format!("crm {crm_id} <-> provider {remote_id}"),
                reason.to_string(),
            )),
            Action::Fail { side, id, error } => rows.push(row(
                side.as_str(),
                "fail",
                id.to_string(),
                format!("{error} -> {}", error.remedy()),
            )),
        }
    }
    rows
}

/// A plain text table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            if last {
                out.push(' ');
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push(' ');
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 1));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Progress for a command: bars on a terminal, plain lines on stderr otherwise, nothing
/// with `--json` (stdout stays parseable).
#[derive(Clone)]
pub struct ProgressOutput {
    multi: Option<MultiProgress>,
    plain: bool,
}

impl ProgressOutput {
    /// Bars when stderr is a terminal; plain lines when not; `quiet`: neither.
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        ProgressOutput {
            multi: (terminal && !quiet)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            plain: !terminal && !quiet,
        }
    }

    /// A progress receiver for one account and collection.
    pub fn for_run(&self, label: String) -> (Arc<dyn Progress>, Option<ProgressBar>) {
        match &self.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<24} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(label);
                let b = bar.clone();
                let progress = move |phase: Phase, done: u64, total: Option<u64>| {
                    b.set_message(phase_text(phase, done, total));
                    b.tick();
                };
                (Arc::new(progress), Some(bar))
            }
            None => {
                let plain = self.plain;
                let progress = move |phase: Phase, done: u64, total: Option<u64>| {
                    // Plain lines only at phase boundaries: a log, not an animation.
                    if plain && (done == 0 || phase == Phase::Done) {
                        eprintln!("{label}: {}", phase_text(phase, done, total));
                    }
                };
                (Arc::new(progress), None)
            }
        }
    }
}

fn phase_text(phase: Phase, done: u64, total: Option<u64>) -> String {
    let count = match total {
        Some(t) => format!(" {done}/{t}"),
        None if done > 0 => format!(" {done}"),
        None => String::new(),
    };
    match phase {
        Phase::Listing(side) => format!("listing the {side}{count}"),
        Phase::Planning => "planning".into(),
        Phase::Writing => format!("writing{count}"),
        Phase::Done => "done".into(),
    }
}
