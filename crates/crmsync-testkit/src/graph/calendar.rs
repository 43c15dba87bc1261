//! Calendars (MS-CAL-1/2), events CRUD (MS-CAL-3/5/6/20/22), calendarView (MS-CAL-4/8/10/11),
//! calendarView delta (MS-CAL-13..18) and master categories (MS-CAL-21).

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::delta;
use super::query::{self, Ctx};
use super::schema;
use super::state::{Calendar, Category, Event, State, Tombstone, When};
use super::wire::{self, GErr, fmt_instant, fmt_local, ok};
use super::{Endpoint, Route};
use crate::wire::{Req, Resp};

/// Properties the server owns: accepted in bodies (they are in the schema) but never stored.
const READ_ONLY: &[&str] = &[
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "bodyPreview",
    "iCalUId",
    "type",
    "webLink",
    "seriesMasterId",
    "hasAttachments",
    "isCancelled",
    "isOrganizer",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "cancelledOccurrences",
    "responseStatus",
    "onlineMeetingUrl",
    "onlineMeeting",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
    "start",
    "end",
    "isAllDay",
];

pub(crate) fn handle(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    match route.endpoint {
        Endpoint::CalendarsList => {
            let items: Vec<Value> = st
                .mailbox(user)
                .calendars
                .iter()
                .map(|c| render_calendar(c, user))
                .collect();
            Ok(ok(
                200,
                &query::page(st, req, items, "users('me')/calendars")?,
            ))
        }
        Endpoint::CalendarGet => {
            let id = calendar_id(st, user, route)?;
            let mb = st.mailbox(user);
            let cal = mb.calendar(&id).ok_or_else(GErr::not_found)?;
            Ok(ok(200, &render_calendar(cal, user)))
        }
        Endpoint::CalendarCreate => create_calendar(st, user, req),
        Endpoint::EventsList => list_events(st, user, route, req),
        Endpoint::EventGet => {
            let ctx = Ctx::with_expand(req, "event")?;
            let id = route.id.clone().unwrap_or_default();
            // An occurrence of a series is read by its own id (MS-CAL-4).
            if route.calendar.is_none() && id.contains(OCCURRENCE_MARK) {
                let mb = st.mailbox(user);
                return render_any(mb, &id, user, &ctx)
                    .map(|v| ok(200, &v))
                    .ok_or_else(GErr::not_found);
            }
            let key = event_key(st, user, route)?;
            let ev = &st.mailbox(user).events[&key];
            Ok(ok(200, &render_event(ev, user, &ctx)))
        }
        Endpoint::EventCreate => create_event(st, user, route, req),
        Endpoint::EventUpdate => update_event(st, user, route, req),
        Endpoint::EventDelete => {
            let key = event_key(st, user, route)?;
            let ck = st.mailbox(user).events[&key].change_key.clone();
            query::check_if_match(req, &ck)?;
            remove_event(st, user, &key);
            Ok(Resp::empty(204))
        }
        Endpoint::CalendarView => calendar_view(st, user, route, req),
        Endpoint::CalendarViewDelta => delta::calendar_view_delta(st, user, route, req),
        Endpoint::MasterCategoriesList => {
            let items: Vec<Value> = st
                .mailbox(user)
                .categories
                .iter()
                .map(render_category)
                .collect();
            Ok(ok(
                200,
                &json!({
                    "@odata.context": format!("{}/v1.0/$metadata#users('me')/outlook/masterCategories", st.origin),
                    "value": items,
                }),
            ))
        }
        Endpoint::MasterCategoryGet => {
            let id = route.id.clone().unwrap_or_default();
            let mb = st.mailbox(user);
            let c = mb
                .categories
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(GErr::not_found)?;
            Ok(ok(200, &render_category(c)))
        }
        Endpoint::MasterCategoryCreate => create_category(st, user, req),
        Endpoint::MasterCategoryUpdate => {
            let body = query::body_object(req)?;
            schema::validate("outlookCategory", &Value::Object(body.clone()))?;
            let id = route.id.clone().unwrap_or_default();
            let mb = st.mailbox(user);
            let c = mb
                .categories
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(GErr::not_found)?;
            if let Some(name) = body.get("displayName").and_then(Value::as_str)
                && name != c.display_name
            {
                return Err(GErr::new(
                    400,
                    "ErrorInvalidRequest",
                    "The displayName of a category cannot be changed.",
                ));
            }
            if let Some(color) = body.get("color").and_then(Value::as_str) {
                c.color = color.to_owned();
            }
            Ok(ok(200, &render_category(c)))
        }
        Endpoint::MasterCategoryDelete => {
            let id = route.id.clone().unwrap_or_default();
            let mb = st.mailbox(user);
            let before = mb.categories.len();
            mb.categories.retain(|c| c.id != id);
            if mb.categories.len() == before {
                return Err(GErr::not_found());
            }
            Ok(Resp::empty(204))
        }
        _ => Err(GErr::new(400, "BadRequest", "Unsupported request.")),
    }
}

fn render_calendar(c: &Calendar, user: &str) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "color": c.color,
        "hexColor": "",
        "isDefaultCalendar": c.is_default,
        "changeKey": c.change_key,
        "canShare": true,
        "canViewPrivateItems": true,
        "canEdit": true,
        "allowedOnlineMeetingProviders": [],
        "defaultOnlineMeetingProvider": "unknown",
        "isTallyingResponses": true,
        "isRemovable": !c.is_default,
        "owner": {"name": user.split('@').next().unwrap_or(user), "address": user},
    })
}

fn render_category(c: &Category) -> Value {
    json!({"id": c.id, "displayName": c.display_name, "color": c.color})
}

/// The calendar of the route (the default one when the path has none); 404 when unknown.
pub(crate) fn calendar_id(st: &mut State, user: &str, route: &Route) -> Result<String, GErr> {
    let mb = st.mailbox(user);
    match &route.calendar {
        None => Ok(mb.default_calendar_id()),
        Some(id) => mb
            .calendar(id)
            .map(|c| c.id.clone())
            .ok_or_else(GErr::not_found),
    }
}

fn event_key(st: &mut State, user: &str, route: &Route) -> Result<String, GErr> {
    let id = route.id.clone().unwrap_or_default();
    if id.len() < 8 {
        return Err(GErr::malformed_id());
    }
    let cal = match &route.calendar {
        Some(_) => Some(calendar_id(st, user, route)?),
        None => None,
    };
    let mb = st.mailbox(user);
    let key = mb.event_key(&id).ok_or_else(GErr::not_found)?;
    if let Some(c) = cal
        && mb.events[&key].calendar_id != c
    {
        return Err(GErr::not_found());
    }
    Ok(key)
}

fn create_calendar(st: &mut State, user: &str, req: &Req) -> Result<Resp, GErr> {
    let body = query::body_object(req)?;
    schema::validate("calendar", &Value::Object(body.clone()))?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            GErr::new(
                400,
                "ErrorInvalidParameter",
                "The calendar name is missing.",
            )
        })?
        .to_owned();
    if st
        .mailbox(user)
        .calendars
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case(&name))
    {
        return Err(GErr::new(
            409,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ));
    }
    let cal = Calendar {
        id: st.new_id("AAMkADcal"),
        name,
        color: body
            .get("color")
            .and_then(Value::as_str)
            .unwrap_or("auto")
            .to_owned(),
        change_key: st.new_change_key(),
        is_default: false,
    };
    let out = render_calendar(&cal, user);
    st.mailbox(user).calendars.push(cal);
    Ok(ok(201, &out))
}

fn create_category(st: &mut State, user: &str, req: &Req) -> Result<Resp, GErr> {
    let body = query::body_object(req)?;
    schema::validate("outlookCategory", &Value::Object(body.clone()))?;
    let name = body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            GErr::new(
                400,
                "ErrorInvalidParameter",
                "The displayName of the category is missing.",
            )
        })?
        .to_owned();
    if st
        .mailbox(user)
        .categories
        .iter()
        .any(|c| c.display_name.eq_ignore_ascii_case(&name))
    {
        return Err(GErr::new(
            409,
            "ErrorDuplicateCategory",
            "A category with the specified name already exists.",
        ));
    }
    let c = Category {
        id: st.new_guid(),
        display_name: name,
        color: body
            .get("color")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned(),
    };
    let out = render_category(&c);
    st.mailbox(user).categories.push(c);
    Ok(ok(201, &out))
}

/// The master categories every new mailbox has (Outlook's defaults).
pub(crate) fn default_categories(st: &mut State) -> Vec<Category> {
    [
        ("Red category", "preset0"),
        ("Orange category", "preset1"),
        ("Yellow category", "preset3"),
        ("Green category", "preset4"),
        ("Blue category", "preset7"),
        ("Purple category", "preset8"),
    ]
    .iter()
    .map(|(n, c)| Category {
        id: st.new_guid(),
        display_name: (*n).to_owned(),
        color: (*c).to_owned(),
    })
    .collect()
}

fn list_events(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    let cal = calendar_id(st, user, route)?;
    let ctx = Ctx::with_expand(req, "event")?;
    let filter = query::ext_filter(st, req)?;
    let mb = st.mailbox(user);
    let items: Vec<Value> = mb
        .events
        .values()
        .filter(|e| e.calendar_id == cal)
        .filter(|e| {
            filter
                .as_ref()
                .is_none_or(|f| query::ext_matches(&e.ext, f))
        })
        .map(|e| render_event(e, user, &ctx))
        .collect();
    let mut resp = ok(200, &query::page(st, req, items, "users('me')/events")?);
    if ctx.zone_name != "UTC" {
        resp = resp.with_header(
            "preference-applied",
            &format!("outlook.timezone=\"{}\"", ctx.zone_name),
        );
    }
    Ok(resp)
}

/// The `startDateTime`/`endDateTime` window of a calendarView request (both required, MS-CAL-4).
pub(crate) fn window(
    req: &Req,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), GErr> {
    let get = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let missing = || {
        GErr::new(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    };
    let (Some(s), Some(e)) = (get("startDateTime"), get("endDateTime")) else {
        return Err(missing());
    };
    let parse = |name: &str, v: &str| {
        wire::parse_query_instant(v).ok_or_else(|| {
            GErr::new(
                400,
                "ErrorInvalidParameter",
                format!("The value '{v}' of parameter '{name}' is invalid."),
            )
        })
    };
    Ok((parse("StartDateTime", s)?, parse("EndDateTime", e)?))
}

fn calendar_view(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    let (start, end) = window(req)?;
    let cal = calendar_id(st, user, route)?;
    let ctx = Ctx::with_expand(req, "event")?;
    let mb = st.mailbox(user);
    // Single instances, and the occurrences and exceptions of series in place of their
    // masters (MS-CAL-4).
    let mut rendered: Vec<((chrono::DateTime<chrono::Utc>, String), Value)> = Vec::new();
    for e in mb.events.values().filter(|e| e.calendar_id == cal) {
        if is_series(e) {
            for (occ, exception) in instances(e, start, end) {
                rendered.push((
                    (occ.when.range().0, occ.immutable_id.clone()),
                    render_occurrence(e, &occ, exception, user, &ctx),
                ));
            }
        } else if e.when.overlaps(start, end) {
            rendered.push((
                (e.when.range().0, e.immutable_id.clone()),
                render_event(e, user, &ctx),
            ));
        }
    }
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<Value> = rendered.into_iter().map(|(_, v)| v).collect();
    Ok(ok(200, &query::page(st, req, items, "Collection(event)")?))
}

/// Renders an event as Graph returns it (MS-CAL-5, MS-CAL-8).
pub(crate) fn render_event(ev: &Event, user: &str, ctx: &Ctx) -> Value {
    let mut m = Map::new();
    let defaults = json!({
        "categories": [],
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": true,
        "subject": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isCancelled": false,
        "isOrganizer": true,
        "responseRequested": true,
        "seriesMasterId": null,
        "showAs": "busy",
        "onlineMeetingUrl": null,
        "isOnlineMeeting": false,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
        "hasAttachments": false,
        "recurrence": null,
        "onlineMeeting": null,
        "cancelledOccurrences": [],
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "text", "content": ""},
        "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {}},
        "locations": [],
        "attendees": [],
        "organizer": {"emailAddress": {"name": user.split('@').next().unwrap_or(user), "address": user}},
        "transactionId": null,
    });
    if let Value::Object(d) = defaults {
        m.extend(d);
    }
    for (k, v) in &ev.props {
        m.insert(k.clone(), v.clone());
    }
    let preview: String = m
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .map(strip_html)
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    let id = if ctx.immutable {
        &ev.immutable_id
    } else {
        &ev.rest_id
    };
    m.insert("@odata.etag".into(), json!(query::etag(&ev.change_key)));
    m.insert("id".into(), json!(id));
    m.insert("createdDateTime".into(), json!(fmt_instant(ev.created)));
    m.insert(
        "lastModifiedDateTime".into(),
        json!(fmt_instant(ev.modified)),
    );
    m.insert("changeKey".into(), json!(ev.change_key));
    m.insert("bodyPreview".into(), json!(preview));
    m.insert("originalStartTimeZone".into(), json!(ev.start_tz));
    m.insert("originalEndTimeZone".into(), json!(ev.end_tz));
    m.insert(
        "iCalUId".into(),
        json!(format!(
            "040000008200E00074C5B7101A82E008{}",
            hex_of(&ev.immutable_id)
        )),
    );
    m.insert(
        "type".into(),
        json!(
            if ev.props.get("recurrence").is_some_and(|r| !r.is_null()) {
                "seriesMaster"
            } else {
                "singleInstance"
            }
        ),
    );
    m.insert(
        "webLink".into(),
        json!(format!(
            "https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item",
            ev.rest_id
        )),
    );
    let (start, end, all_day) = match ev.when {
        When::Timed(s, e) => (ctx.zone.local(s), ctx.zone.local(e), false),
        When::AllDay(s, e) => (
            s.and_hms_opt(0, 0, 0).unwrap_or_default(),
            e.and_hms_opt(0, 0, 0).unwrap_or_default(),
            true,
        ),
    };
    m.insert("isAllDay".into(), json!(all_day));
    m.insert(
        "start".into(),
        json!({"dateTime": fmt_local(start), "timeZone": ctx.zone_name}),
    );
    m.insert(
        "end".into(),
        json!({"dateTime": fmt_local(end), "timeZone": ctx.zone_name}),
    );
    query::render_ext(&mut m, &ev.ext, ctx);
    Value::Object(m)
}

fn hex_of(s: &str) -> String {
    s.bytes().take(16).map(|b| format!("{b:02X}")).collect()
}

fn strip_html(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses one `dateTimeTimeZone` of a body: (wall time, zone name, zone).
fn parse_dttz(v: &Value) -> Result<(chrono::NaiveDateTime, String, wire::Zone), GErr> {
    let dt = v
        .get("dateTime")
        .and_then(Value::as_str)
        .ok_or_else(GErr::validation)?;
    let tz = v
        .get("timeZone")
        .and_then(Value::as_str)
        .ok_or_else(GErr::validation)?;
    let zone = wire::parse_zone(tz)?;
    let local = wire::parse_local(dt).ok_or_else(|| {
        GErr::new(
            400,
            "RequestBodyRead",
            format!("Cannot convert the literal '{dt}' to the expected type 'Edm.DateTime'."),
        )
    })?;
    Ok((local, tz.to_owned(), zone))
}

/// Computes start/end/all-day of an event from a body over the current values (MS-CAL-10).
fn resolve_when(
    body: &Map<String, Value>,
    current: Option<&Event>,
) -> Result<Option<(When, String, String)>, GErr> {
    let touches = ["start", "end", "isAllDay"]
        .iter()
        .any(|k| body.get(*k).is_some_and(|v| !v.is_null()));
    if !touches {
        return match current {
            Some(_) => Ok(None),
            None => Err(GErr::validation()),
        };
    }
    let all_day = match body.get("isAllDay").and_then(Value::as_bool) {
        Some(b) => b,
        None => matches!(current.map(|e| e.when), Some(When::AllDay(..))),
    };
    let current_side = |is_start: bool| -> Option<Value> {
        let ev = current?;
        let (tz, at) = if is_start {
            (ev.start_tz.clone(), ev.when.range().0)
        } else {
            (ev.end_tz.clone(), ev.when.range().1)
        };
        let zone = wire::parse_zone(&tz).ok()?;
        let local = match ev.when {
            When::AllDay(..) => at.naive_utc(),
            When::Timed(..) => zone.local(at),
        };
        Some(json!({"dateTime": fmt_local(local), "timeZone": tz}))
    };
    let start_v = match body.get("start").filter(|v| !v.is_null()) {
        Some(v) => v.clone(),
        None => current_side(true).ok_or_else(GErr::validation)?,
    };
    let end_v = match body.get("end").filter(|v| !v.is_null()) {
        Some(v) => v.clone(),
        None => current_side(false).ok_or_else(GErr::validation)?,
    };
    let (sl, stz, sz) = parse_dttz(&start_v)?;
    let (el, etz, ez) = parse_dttz(&end_v)?;
    if all_day {
        let midnight = |t: chrono::NaiveDateTime| t.time() == chrono::NaiveTime::MIN;
        if !midnight(sl) || !midnight(el) || stz != etz || el.date() <= sl.date() {
            return Err(GErr::validation());
        }
        return Ok(Some((When::AllDay(sl.date(), el.date()), stz, etz)));
    }
    let s = sz.to_utc(sl).ok_or_else(GErr::validation)?;
    let e = ez.to_utc(el).ok_or_else(GErr::validation)?;
    if e < s {
        return Err(GErr::validation());
    }
    Ok(Some((When::Timed(s, e), stz, etz)))
}

/// Applies a create/PATCH body to an event; returns the changed property names.
fn apply(ev: &mut Event, body: &Map<String, Value>, seq: u64) -> Result<(), GErr> {
    if let Some((when, stz, etz)) = resolve_when(body, Some(&*ev).filter(|e| e.seq > 0))? {
        if when != ev.when || stz != ev.start_tz {
            ev.prop_seq.insert("start".into(), seq);
        }
        if when != ev.when || etz != ev.end_tz {
            ev.prop_seq.insert("end".into(), seq);
        }
        if std::mem::discriminant(&when) != std::mem::discriminant(&ev.when) || ev.seq == 0 {
            ev.prop_seq.insert("isAllDay".into(), seq);
        }
        ev.when = when;
        ev.start_tz = stz;
        ev.end_tz = etz;
    }
    if query::write_ext(&mut ev.ext, body)? {
        ev.prop_seq
            .insert("singleValueExtendedProperties".into(), seq);
    }
    for (k, v) in body {
        if READ_ONLY.contains(&k.as_str()) || k.starts_with("@odata.") {
            continue;
        }
        if k == "transactionId" && ev.seq > 0 {
            continue;
        }
        if ev.props.get(k) != Some(v) {
            ev.props.insert(k.clone(), v.clone());
            ev.prop_seq.insert(k.clone(), seq);
            if k == "location" && body.get("locations").is_none() {
                let has_name = v
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                let locs = if has_name { json!([v]) } else { json!([]) };
                ev.props.insert("locations".into(), locs);
                ev.prop_seq.insert("locations".into(), seq);
            }
            if k == "body" {
                ev.prop_seq.insert("bodyPreview".into(), seq);
            }
        }
    }
    Ok(())
}

/// Creates an event in `calendar_id` from a validated body (shared with the control API).
pub(crate) fn insert_event(
    st: &mut State,
    user: &str,
    calendar_id: &str,
    body: &Map<String, Value>,
) -> Result<String, GErr> {
    let seq = st.next_seq();
    let now = st.now();
    let mut ev = Event {
        immutable_id: st.new_id("AAkALgAA"),
        rest_id: st.new_id("AAMkADev"),
        calendar_id: calendar_id.to_owned(),
        props: Map::new(),
        when: When::Timed(now, now),
        start_tz: "UTC".into(),
        end_tz: "UTC".into(),
        change_key: st.new_change_key(),
        created: now,
        modified: now,
        seq: 0,
        prop_seq: Default::default(),
        ext: Default::default(),
        exceptions: Default::default(),
        cancelled: Default::default(),
    };
    apply(&mut ev, body, seq)?;
    ev.seq = seq;
    let key = ev.immutable_id.clone();
    let mb = st.mailbox(user);
    if let Some(tx) = ev.props.get("transactionId").and_then(Value::as_str) {
        mb.transactions.insert(tx.to_owned(), key.clone());
    }
    mb.events.insert(key.clone(), ev);
    Ok(key)
}

fn create_event(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    let cal = calendar_id(st, user, route)?;
    let body = query::body_object(req)?;
    schema::validate("event", &Value::Object(body.clone()))?;
    let ctx = Ctx::of(req)?;
    // MS-CAL-6: a second POST with the same transactionId returns the existing event.
    if let Some(tx) = body.get("transactionId").and_then(Value::as_str) {
        let mb = st.mailbox(user);
        if let Some(key) = mb.transactions.get(tx)
            && let Some(ev) = mb.events.get(key)
        {
            return Ok(ok(201, &render_event(ev, user, &ctx)));
        }
    }
    let key = insert_event(st, user, &cal, &body)?;
    let origin = st.origin.clone();
    let ev = &st.mailbox(user).events[&key];
    let resp = ok(201, &render_event(ev, user, &ctx));
    let location = format!(
        "{}/v1.0/me/events/{}",
        origin,
        if ctx.immutable {
            &ev.immutable_id
        } else {
            &ev.rest_id
        }
    );
    Ok(resp.with_header("location", &location))
}

/// Applies a PATCH body to a stored event (shared with the control API's user edits).
pub(crate) fn patch_event(
    st: &mut State,
    user: &str,
    key: &str,
    body: &Map<String, Value>,
) -> Result<(), GErr> {
    let seq = st.next_seq();
    let now = st.now();
    let ck = st.new_change_key();
    let mb = st.mailbox(user);
    let Some(ev) = mb.events.get_mut(key) else {
        return Err(GErr::not_found());
    };
    if let Some(tx) = body.get("transactionId")
        && !tx.is_null()
        && ev.props.get("transactionId") != Some(tx)
    {
        return Err(GErr::new(
            400,
            "ErrorInvalidRequest",
            "The transactionId of an event cannot be changed after it is set.",
        ));
    }
    let mut copy = ev.clone();
    apply(&mut copy, body, seq)?;
    copy.seq = seq;
    copy.modified = now;
    copy.change_key = ck;
    *ev = copy;
    Ok(())
}

fn update_event(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    let key = event_key(st, user, route)?;
    let body = query::body_object(req)?;
    schema::validate("event", &Value::Object(body.clone()))?;
    let ctx = Ctx::of(req)?;
    let ck = st.mailbox(user).events[&key].change_key.clone();
    query::check_if_match(req, &ck)?;
    patch_event(st, user, &key, &body)?;
    let ev = &st.mailbox(user).events[&key];
    Ok(ok(200, &render_event(ev, user, &ctx)))
}

/// Deletes an event, leaving a tombstone for delta.
pub(crate) fn remove_event(st: &mut State, user: &str, key: &str) -> bool {
    let seq = st.next_seq();
    let mb = st.mailbox(user);
    let Some(ev) = mb.events.remove(key) else {
        return false;
    };
    mb.event_tombstones.push(Tombstone {
        collection: ev.calendar_id,
        rest_id: ev.rest_id,
        immutable_id: ev.immutable_id,
        seq,
    });
    true
}

/// Moves an event to another calendar: a tombstone in the old one, a new regular id, the same
/// immutable id (MS-CAL-19).
pub(crate) fn move_event(st: &mut State, user: &str, key: &str, to_calendar: &str) -> bool {
    let seq = st.next_seq();
    let new_rest = st.new_id("AAMkADev");
    let ck = st.new_change_key();
    let now = st.now();
    let mb = st.mailbox(user);
    if mb.calendar(to_calendar).is_none() {
        return false;
    }
    let Some(ev) = mb.events.get_mut(key) else {
        return false;
    };
    let tomb = Tombstone {
        collection: ev.calendar_id.clone(),
        rest_id: ev.rest_id.clone(),
        immutable_id: ev.immutable_id.clone(),
        seq,
    };
    ev.calendar_id = to_calendar.to_owned();
    ev.rest_id = new_rest;
    ev.seq = seq;
    ev.change_key = ck;
    ev.modified = now;
    for v in ev.prop_seq.values_mut() {
        *v = seq;
    }
    mb.event_tombstones.push(tomb);
    true
}

// ------------------------------------------------------------ recurring series (MS-CAL-4/12)

/// Joins a series master's id and an occurrence's original date into the occurrence's id.
pub(crate) const OCCURRENCE_MARK: &str = "_OCC";

/// The most occurrences a series is expanded into.
const MAX_OCCURRENCES: usize = 2000;

/// Whether an event is a series master.
pub(crate) fn is_series(ev: &Event) -> bool {
    ev.props.get("recurrence").is_some_and(Value::is_object)
}

fn weekday_of(name: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => Mon,
        "tuesday" => Tue,
        "wednesday" => Wed,
        "thursday" => Thu,
        "friday" => Fri,
        "saturday" => Sat,
        "sunday" => Sun,
        _ => return None,
    })
}

/// The `index`-th `weekday` of a month (`last` is -1).
fn nth_weekday(year: i32, month: u32, weekday: chrono::Weekday, index: i32) -> Option<NaiveDate> {
    use chrono::Datelike;
    let days: Vec<NaiveDate> = (1..=31)
        .filter_map(|d| NaiveDate::from_ymd_opt(year, month, d))
        .filter(|d| d.weekday() == weekday)
        .collect();
    if index < 0 {
        days.last().copied()
    } else {
        days.get(usize::try_from(index - 1).ok()?).copied()
    }
}

/// The original dates of a series' occurrences, up to `until` (the range's end, count and
/// [`MAX_OCCURRENCES`] also stop it). Dates are the master's start date in UTC stepped by
/// the pattern; daylight-saving shifts of the wall time are not modelled.
pub(crate) fn series_dates(ev: &Event, until: NaiveDate) -> Vec<NaiveDate> {
    use chrono::{Datelike, Months};
    let Some(rec) = ev.props.get("recurrence") else {
        return Vec::new();
    };
    let pattern = &rec["pattern"];
    let range = &rec["range"];
    let first = range["startDate"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or_else(|| ev.when.range().0.date_naive());
    let end = match range["type"].as_str() {
        Some("endDate") => range["endDate"]
            .as_str()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map_or(until, |d| d.min(until)),
        _ => until,
    };
    let count = match range["type"].as_str() {
        Some("numbered") => range["numberOfOccurrences"]
            .as_u64()
            .map_or(MAX_OCCURRENCES, |n| (n as usize).min(MAX_OCCURRENCES)),
        _ => MAX_OCCURRENCES,
    };
    let interval = pattern["interval"].as_u64().unwrap_or(1).max(1) as u32;
    let days: Vec<chrono::Weekday> = pattern["daysOfWeek"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(weekday_of)
        .collect();
    let index = match pattern["index"].as_str().unwrap_or("first") {
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        _ => 1,
    };
    let day_of_month = pattern["dayOfMonth"].as_u64().unwrap_or(1) as u32;
    let month = pattern["month"].as_u64().unwrap_or(1) as u32;
    let mut out = Vec::new();
    let push = |d: NaiveDate, out: &mut Vec<NaiveDate>| {
        if d >= first && d <= end && out.len() < count {
            out.push(d);
        }
    };
    let kind = pattern["type"].as_str().unwrap_or("daily");
    let mut step = 0u32;
    loop {
        if out.len() >= count || step as usize > MAX_OCCURRENCES * 7 {
            break;
        }
        let n = step * interval;
        let stop = match kind {
            "weekly" => {
                let week = first
                    - chrono::Duration::days(first.weekday().num_days_from_sunday().into())
                    + chrono::Duration::weeks(n.into());
                for w in 0..7 {
                    let d = week + chrono::Duration::days(w);
                    if days.contains(&d.weekday()) {
                        push(d, &mut out);
                    }
                }
                week > end
            }
            "absoluteMonthly" | "relativeMonthly" => {
                let Some(base) = first
                    .with_day(1)
                    .and_then(|d| d.checked_add_months(Months::new(n)))
                else {
                    break;
                };
                let d = if kind == "absoluteMonthly" {
                    NaiveDate::from_ymd_opt(base.year(), base.month(), day_of_month)
                } else {
                    days.first()
                        .and_then(|w| nth_weekday(base.year(), base.month(), *w, index))
                };
                if let Some(d) = d {
                    push(d, &mut out);
                }
                base > end
            }
            "absoluteYearly" | "relativeYearly" => {
                let year = first.year() + n as i32;
                let d = if kind == "absoluteYearly" {
                    NaiveDate::from_ymd_opt(year, month, day_of_month)
                } else {
                    days.first()
                        .and_then(|w| nth_weekday(year, month, *w, index))
                };
                if let Some(d) = d {
                    push(d, &mut out);
                }
                NaiveDate::from_ymd_opt(year, 1, 1).is_none_or(|y| y > end)
            }
            _ => {
                let d = first + chrono::Duration::days(n.into());
                push(d, &mut out);
                d > end
            }
        };
        if stop {
            break;
        }
        step += 1;
    }
    out
}

/// One occurrence of a series master (with its exception applied, if any), as an event
/// whose ids are the occurrence's; `None` when it was cancelled or the body is invalid.
pub(crate) fn occurrence(master: &Event, date: NaiveDate) -> Option<(Event, bool)> {
    if master.cancelled.contains(&date) {
        return None;
    }
    let mut occ = master.clone();
    let suffix = format!("{OCCURRENCE_MARK}{}", date.format("%Y%m%d"));
    occ.immutable_id = format!("{}{suffix}", master.immutable_id);
    occ.rest_id = format!("{}{suffix}", master.rest_id);
    occ.props.remove("recurrence");
    occ.props.remove("cancelledOccurrences");
    occ.exceptions.clear();
    occ.cancelled.clear();
    occ.when = match master.when {
        When::Timed(s, e) => {
            let shift = date - s.date_naive();
            When::Timed(s + shift, e + shift)
        }
        When::AllDay(s, e) => When::AllDay(date, date + (e - s)),
    };
    let exception = master.exceptions.get(&date);
    if let Some(body) = exception {
        if let Ok(Some((when, stz, etz))) = resolve_when(body, Some(&occ)) {
            occ.when = when;
            occ.start_tz = stz;
            occ.end_tz = etz;
        }
        for (k, v) in body {
            if !READ_ONLY.contains(&k.as_str()) {
                occ.props.insert(k.clone(), v.clone());
            }
        }
        occ.change_key = format!("{}{}", master.change_key, date.format("%Y%m%d"));
    }
    Some((occ, exception.is_some()))
}

/// The occurrences of a series overlapping `[start, end)`, in date order.
pub(crate) fn instances(
    master: &Event,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Vec<(Event, bool)> {
    // Exceptions may have moved an occurrence by days: expand a week beyond the window.
    let until = (end + chrono::Duration::days(7)).date_naive();
    series_dates(master, until)
        .into_iter()
        .filter_map(|d| occurrence(master, d))
        .filter(|(o, _)| o.when.overlaps(start, end))
        .collect()
}

/// Renders an occurrence or exception as calendarView does: `type`, `seriesMasterId`, no
/// `recurrence` (MS-CAL-4/5).
pub(crate) fn render_occurrence(
    master: &Event,
    occ: &Event,
    exception: bool,
    user: &str,
    ctx: &Ctx,
) -> Value {
    let mut v = render_event(occ, user, ctx);
    v["type"] = json!(if exception { "exception" } else { "occurrence" });
    v["seriesMasterId"] = json!(if ctx.immutable {
        &master.immutable_id
    } else {
        &master.rest_id
    });
    v["recurrence"] = Value::Null;
    v
}

/// The master key and original date of an occurrence id (either id form).
pub(crate) fn occurrence_of(mb: &super::state::Mailbox, id: &str) -> Option<(String, NaiveDate)> {
    let (master, date) = id.rsplit_once(OCCURRENCE_MARK)?;
    let date = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    let key = mb.event_key(master)?;
    is_series(&mb.events[&key]).then_some((key, date))
}

/// Renders an event, or an occurrence given its id; `None` when neither exists.
pub(crate) fn render_any(
    mb: &super::state::Mailbox,
    id: &str,
    user: &str,
    ctx: &Ctx,
) -> Option<Value> {
    if let Some(key) = mb.event_key(id) {
        return Some(render_event(&mb.events[&key], user, ctx));
    }
    let (key, date) = occurrence_of(mb, id)?;
    let master = &mb.events[&key];
    let (occ, exception) = occurrence(master, date)?;
    Some(render_occurrence(master, &occ, exception, user, ctx))
}

/// Applies a change to one occurrence of a series, as the user would in Outlook: an edit
/// makes it an exception, `None` cancels it. The master changes (a new changeKey), so the
/// next delta round reports the series' occurrences again.
pub(crate) fn change_occurrence(
    st: &mut State,
    user: &str,
    master_key: &str,
    date: NaiveDate,
    patch: Option<&Map<String, Value>>,
) -> bool {
    let seq = st.next_seq();
    let now = st.now();
    let ck = st.new_change_key();
    let mb = st.mailbox(user);
    let Some(master) = mb.events.get_mut(master_key) else {
        return false;
    };
    if !is_series(master) {
        return false;
    }
    match patch {
        Some(body) => {
            master
                .exceptions
                .entry(date)
                .or_default()
                .extend(body.clone());
        }
        None => {
            master.cancelled.insert(date);
            let cancelled: Vec<Value> = master
                .cancelled
                .iter()
                .map(|d| {
                    json!(format!(
                        "OID.{}.{}",
                        master.immutable_id,
                        d.format("%Y-%m-%d")
                    ))
                })
                .collect();
            master
                .props
                .insert("cancelledOccurrences".into(), Value::Array(cancelled));
        }
    }
    master.seq = seq;
    master.modified = now;
    master.change_key = ck;
    true
}
