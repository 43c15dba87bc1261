//! Delta queries: calendarView delta (MS-CAL-13..18) and contacts delta (MS-CON-2), with
//! `Prefer: odata.maxpagesize`, absolute `@odata.nextLink`/`@odata.deltaLink`, `@removed`
//! tombstones, partial updates and `410 syncStateNotFound`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::calendar::{self, render_event};
use super::contacts::render_contact;
use super::query::Ctx;
use super::state::{DeltaCursor, DeltaItem, DeltaPoint, DeltaScope, State};
use super::wire::{self, GErr, ok};
use super::{Route, fault_error, fresh_delta_url};
use crate::wire::{Req, Resp};

/// Default page size of a delta round when `Prefer: odata.maxpagesize` is absent (an inference;
/// Graph documents no figure for Outlook delta pages).
const DEFAULT_PAGE: usize = 10;

/// Query options calendarView delta does not support (MS-CAL-14).
const UNSUPPORTED: &[&str] = &[
    "$select", "$expand", "$filter", "$orderby", "$search", "$top",
];

fn gone(st: &State, req: &Req) -> GErr {
    fault_error(&super::Fault::SyncStateNotFound).header("location", &fresh_delta_url(st, req))
}

pub(crate) fn calendar_view_delta(
    st: &mut State,
    user: &str,
    route: &Route,
    req: &Req,
) -> Result<Resp, GErr> {
    if let Some((k, _)) = req
        .query
        .iter()
        .find(|(k, _)| UNSUPPORTED.iter().any(|u| u.eq_ignore_ascii_case(k)))
    {
        return Err(GErr::new(
            400,
            "ErrorInvalidUrlQuery",
            format!(
                "The following parameters are not supported with change tracking over the 'CalendarView' resource: '{k}'."
            ),
        ));
    }
    let ctx = Ctx::of(req)?;
    if let Some(resp) = continue_round(st, user, req, &ctx)? {
        return Ok(resp);
    }
    let (start, end) = calendar::window(req)?;
    let calendar_id = calendar::calendar_id(st, user, route)?;
    let point = DeltaPoint {
        user: user.to_owned(),
        scope: DeltaScope::CalendarView {
            calendar_id,
            start,
            end,
        },
        path: route.path.clone(),
        seq: 0,
        known: BTreeSet::new(),
        valid: true,
    };
    let (items, next) = compute_round(st, &point, true);
    serve(st, req, &ctx, items, next)
}

pub(crate) fn contacts_delta(
    st: &mut State,
    user: &str,
    route: &Route,
    req: &Req,
    folder_id: String,
) -> Result<Resp, GErr> {
    let ctx = Ctx::of(req)?;
    if let Some(resp) = continue_round(st, user, req, &ctx)? {
        return Ok(resp);
    }
    let point = DeltaPoint {
        user: user.to_owned(),
        scope: DeltaScope::Contacts { folder_id },
        path: route.path.clone(),
        seq: 0,
        known: BTreeSet::new(),
        valid: true,
    };
    let (items, next) = compute_round(st, &point, true);
    serve(st, req, &ctx, items, next)
}

/// Serves a `$skiptoken` page or starts a round from a `$deltatoken`; `None` for an initial call.
fn continue_round(st: &mut State, user: &str, req: &Req, ctx: &Ctx) -> Result<Option<Resp>, GErr> {
    if let Some(skip) = req.q("$skiptoken") {
        let Some(cursor) = st.delta_cursors.get(skip).cloned() else {
            return Err(gone(st, req));
        };
        if !cursor.valid || cursor.next.user != user {
            return Err(gone(st, req));
        }
        st.delta_cursors.remove(skip);
        return serve(st, req, ctx, cursor.items, cursor.next).map(Some);
    }
    if let Some(token) = req.q("$deltatoken") {
        let Some(point) = st.delta_points.get(token).cloned() else {
            return Err(gone(st, req));
        };
        if !point.valid || point.user != user {
            return Err(gone(st, req));
        }
        let (items, next) = compute_round(st, &point, false);
        return serve(st, req, ctx, items, next).map(Some);
    }
    Ok(None)
}

/// What changed in a scope since `point`.
fn compute_round(
    st: &mut State,
    point: &DeltaPoint,
    initial: bool,
) -> (Vec<DeltaItem>, DeltaPoint) {
    let seq = st.seq;
    let mut known = point.known.clone();
    let mut items = Vec::new();
    let mb = st.mailbox(&point.user);
    match &point.scope {
        DeltaScope::CalendarView {
            calendar_id,
            start,
            end,
        } => {
            let mut evs: Vec<_> = mb
                .events
                .values()
                .filter(|e| &e.calendar_id == calendar_id && (initial || e.seq > point.seq))
                .collect();
            evs.sort_by_key(|e| (e.seq, e.immutable_id.clone()));
            let mut changes: Vec<(u64, DeltaItem)> = Vec::new();
            for e in evs {
                let id = e.immutable_id.clone();
                if calendar::is_series(e) {
                    // MS-CAL-4: a series shows as its occurrences and exceptions in the
                    // window, each in full; occurrences gone since the last round (cancelled,
                    // moved away) are @removed.
                    let prefix = format!("{id}{}", calendar::OCCURRENCE_MARK);
                    let mut current = BTreeSet::new();
                    for (occ, _) in calendar::instances(e, *start, *end) {
                        current.insert(occ.immutable_id.clone());
                        known.insert(occ.immutable_id.clone());
                        changes.push((e.seq, DeltaItem::Full(occ.immutable_id)));
                    }
                    let gone: Vec<String> = point
                        .known
                        .iter()
                        .filter(|k| k.starts_with(&prefix) && !current.contains(*k))
                        .cloned()
                        .collect();
                    for occ_id in gone {
                        known.remove(&occ_id);
                        let suffix = &occ_id[id.len()..];
                        changes.push((
                            e.seq,
                            DeltaItem::Removed {
                                rest_id: format!("{}{suffix}", e.rest_id),
                                immutable_id: occ_id,
                            },
                        ));
                    }
                    continue;
                }
                if e.when.overlaps(*start, *end) {
                    let item = if !initial && point.known.contains(&id) {
                        DeltaItem::Partial(id.clone(), point.seq)
                    } else {
                        DeltaItem::Full(id.clone())
                    };
                    known.insert(id);
                    changes.push((e.seq, item));
                } else if !initial {
                    // MS-CAL-15: changed items outside the window come as @removed, whether they
                    // left it or were never in it.
                    known.remove(&id);
                    changes.push((
                        e.seq,
                        DeltaItem::Removed {
                            rest_id: e.rest_id.clone(),
                            immutable_id: id,
                        },
                    ));
                }
            }
            if !initial {
                for t in mb
                    .event_tombstones
                    .iter()
                    .filter(|t| &t.collection == calendar_id && t.seq > point.seq)
                {
                    // A deleted series takes its occurrences with it.
                    let prefix = format!("{}{}", t.immutable_id, calendar::OCCURRENCE_MARK);
                    let occurrences: Vec<String> = point
                        .known
                        .iter()
                        .filter(|k| k.starts_with(&prefix))
                        .cloned()
                        .collect();
                    let was_series = !occurrences.is_empty();
                    for occ_id in occurrences {
                        known.remove(&occ_id);
                        let suffix = &occ_id[t.immutable_id.len()..];
                        changes.push((
                            t.seq,
                            DeltaItem::Removed {
                                rest_id: format!("{}{suffix}", t.rest_id),
                                immutable_id: occ_id,
                            },
                        ));
                    }
                    if was_series && !point.known.contains(&t.immutable_id) {
                        // Only its occurrences were ever reported.
                        continue;
                    }
                    known.remove(&t.immutable_id);
                    changes.push((
                        t.seq,
                        DeltaItem::Removed {
                            rest_id: t.rest_id.clone(),
                            immutable_id: t.immutable_id.clone(),
                        },
                    ));
                }
            }
            changes.sort_by_key(|(s, _)| *s);
            items.extend(changes.into_iter().map(|(_, i)| i));
        }
        DeltaScope::Contacts { folder_id } => {
            let mut changes: Vec<(u64, DeltaItem)> = mb
                .contacts
                .values()
                .filter(|c| &c.folder_id == folder_id && (initial || c.seq > point.seq))
                .map(|c| (c.seq, DeltaItem::Full(c.id.clone())))
                .collect();
            if !initial {
                changes.extend(
                    mb.contact_tombstones
                        .iter()
                        .filter(|t| &t.collection == folder_id && t.seq > point.seq)
                        .map(|t| {
                            (
                                t.seq,
                                DeltaItem::Removed {
                                    rest_id: t.rest_id.clone(),
                                    immutable_id: t.immutable_id.clone(),
                                },
                            )
                        }),
                );
            }
            changes.sort_by_key(|(s, _)| *s);
            items.extend(changes.into_iter().map(|(_, i)| i));
        }
    }
    let next = DeltaPoint {
        seq,
        known,
        ..point.clone()
    };
    (items, next)
}

/// Serves one page of a round, storing the rest behind a skiptoken or the end behind a
/// deltatoken.
fn serve(
    st: &mut State,
    req: &Req,
    ctx: &Ctx,
    mut items: Vec<DeltaItem>,
    next: DeltaPoint,
) -> Result<Resp, GErr> {
    let size = wire::max_page_size(req).unwrap_or(DEFAULT_PAGE).max(1);
    let rest = if items.len() > size {
        items.split_off(size)
    } else {
        Vec::new()
    };
    let mut value: Vec<Value> = items
        .iter()
        .map(|i| render_item(st, &next, i, ctx))
        .collect();
    if matches!(next.scope, DeltaScope::CalendarView { .. }) {
        value.append(&mut st.injected_delta_items);
    }
    let kind = match next.scope {
        DeltaScope::CalendarView { .. } => "event",
        DeltaScope::Contacts { .. } => "contact",
    };
    let mut out = json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection({kind})", st.origin),
        "value": value,
    });
    let base = format!("{}{}", st.origin, next.path);
    if rest.is_empty() && st.knobs.delta_without_links {
        // A round that ends without a link: nothing to continue from.
    } else if rest.is_empty() {
        let token = st.new_id("dt");
        let token = token.trim_end_matches('=').to_owned();
        st.delta_points.insert(token.clone(), next);
        out["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={token}"));
    } else {
        let token = st.new_id("sk");
        let token = token.trim_end_matches('=').to_owned();
        st.delta_cursors.insert(
            token.clone(),
            DeltaCursor {
                items: rest,
                next,
                valid: true,
            },
        );
        out["@odata.nextLink"] = json!(format!("{base}?$skiptoken={token}"));
    }
    let mut resp = ok(200, &out);
    if ctx.zone_name != "UTC" {
        resp = resp.with_header(
            "preference-applied",
            &format!("outlook.timezone=\"{}\"", ctx.zone_name),
        );
    }
    Ok(resp)
}

fn removed(kind: &str, id: &str) -> Value {
    json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id, "@removed": {"reason": "deleted"}})
}

fn render_item(st: &mut State, point: &DeltaPoint, item: &DeltaItem, ctx: &Ctx) -> Value {
    let user = point.user.clone();
    let mb = st.mailbox(&user);
    match (&point.scope, item) {
        (
            _,
            DeltaItem::Removed {
                rest_id,
                immutable_id,
            },
        ) => {
            let kind = match point.scope {
                DeltaScope::CalendarView { .. } => "event",
                DeltaScope::Contacts { .. } => "contact",
            };
            let id = if ctx.immutable { immutable_id } else { rest_id };
            removed(kind, id)
        }
        (DeltaScope::CalendarView { .. }, DeltaItem::Full(id)) => {
            match calendar::render_any(mb, id, &user, ctx) {
                Some(mut v) => {
                    v["@odata.type"] = json!("#microsoft.graph.event");
                    v
                }
                None => removed("event", id),
            }
        }
        (DeltaScope::CalendarView { .. }, DeltaItem::Partial(id, since)) => match mb.events.get(id)
        {
            Some(ev) => {
                // MS-CAL-16: id plus the properties that changed since the last round.
                let full = render_event(ev, &user, ctx);
                let mut m = Map::new();
                m.insert("@odata.type".into(), json!("#microsoft.graph.event"));
                for k in ["@odata.etag", "id", "changeKey", "lastModifiedDateTime"] {
                    m.insert(k.into(), full[k].clone());
                }
                for (k, s) in &ev.prop_seq {
                    if s > since
                        && k != "singleValueExtendedProperties"
                        && let Some(v) = full.get(k)
                    {
                        m.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(m)
            }
            None => removed("event", id),
        },
        (DeltaScope::Contacts { .. }, DeltaItem::Full(id) | DeltaItem::Partial(id, _)) => {
            match mb.contacts.get(id) {
                Some(c) => {
                    let mut v = render_contact(c, ctx);
                    v["@odata.type"] = json!("#microsoft.graph.contact");
                    v
                }
                None => removed("contact", id),
            }
        }
    }
}

/// Invalidates every delta token and cursor (the next use gets 410 `syncStateNotFound`).
pub(crate) fn expire_all(st: &mut State) {
    for p in st.delta_points.values_mut() {
        p.valid = false;
    }
    for c in st.delta_cursors.values_mut() {
        c.valid = false;
    }
}
