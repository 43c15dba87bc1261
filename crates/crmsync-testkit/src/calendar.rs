//! Google Calendar v3 (section 1 of api-semantics.md).
//!
//! Evidence levels of messages: the 410/412/409/timeRangeEmpty/reminder/time-zone bodies are the
//! documented or observed ones; the message for a request body that does not match the discovery
//! schema (unknown field, wrong type) is Google's ESF wording, which Calendar is not on record
//! for (inference) — the status, 400, is what matters to a client.
//!
//! Recurring events: series are stored as Google stores them (a master with `recurrence`,
//! exceptions as separate events with `recurringEventId` and `originalStartTime`) and
//! expanded for `singleEvents=true`, for windows and for freeBusy. The expander knows
//! FREQ, INTERVAL, COUNT, UNTIL, BYDAY without ordinals and EXDATE; other RRULE parts are
//! ignored. Incremental listings with `singleEvents=true` return changed masters as they
//! are, and `events/{id}/instances` is not served.
//!
//! Server quirks (off by default, switched by the control API): the ways another server
//! answers where the documents leave room, or breaks them, so clients are tested against
//! them: timed `dateTime`s echoed as wall times without an offset
//! ([`GoogleFake::echo_wall_times`](crate::GoogleFake::echo_wall_times)), a last page
//! without `nextSyncToken`
//! ([`GoogleFake::omit_calendar_sync_tokens`](crate::GoogleFake::omit_calendar_sync_tokens)),
//! extended-property filters ignored
//! ([`GoogleFake::ignore_lookup_filters`](crate::GoogleFake::ignore_lookup_filters)).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::Endpoint;
use crate::schema::{CALENDAR_SCHEMAS, validate};
use crate::state::{Calendar, PageCursor, State, StoredEvent, SyncPoint, cut_page};
use crate::wire::{CalErr, Req, Resp};

pub(crate) fn route(method: &str, rest: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    match (method, rest) {
        ("GET", ["users", "me", "calendarList"]) => Some(CalendarListList),
        ("GET", ["users", "me", "calendarList", _]) => Some(CalendarListGet),
        ("GET", ["colors"]) => Some(Colors),
        ("POST", ["freeBusy"]) => Some(FreeBusy),
        ("GET", ["calendars", _, "events"]) => Some(EventsList),
        ("POST", ["calendars", _, "events"]) => Some(EventsInsert),
        ("GET", ["calendars", _, "events", _]) => Some(EventsGet),
        ("PATCH", ["calendars", _, "events", _]) => Some(EventsPatch),
        ("PUT", ["calendars", _, "events", _]) => Some(EventsUpdate),
        ("DELETE", ["calendars", _, "events", _]) => Some(EventsDelete),
        _ => None,
    }
}

pub(crate) fn handle(st: &mut State, user: &str, endpoint: Endpoint, req: &Req) -> Resp {
    let r = match endpoint {
        Endpoint::CalendarListList => calendar_list(st, user, req),
        Endpoint::CalendarListGet => calendar_list_get(st, user, req),
        Endpoint::Colors => Ok(Resp::json(200, &colors())),
        Endpoint::FreeBusy => free_busy(st, user, req),
        _ => events(st, user, endpoint, req),
    };
    r.unwrap_or_else(|e| e.resp())
}

type R = Result<Resp, CalErr>;

// ---------------------------------------------------------------- helpers

fn tz_of(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// RFC 3339 with a mandatory offset (G-CAL-4).
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// The instant an `EventDateTime` denotes (all-day dates at midnight in `cal_tz`).
fn edt_instant(edt: &Value, cal_tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(d) = edt.get("date").and_then(Value::as_str) {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
        let midnight = date.and_hms_opt(0, 0, 0)?;
        return cal_tz
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc));
    }
    let dt = edt.get("dateTime").and_then(Value::as_str)?;
    if let Some(i) = parse_instant(dt) {
        return Some(i);
    }
    let naive = parse_naive(dt)?;
    let tz = edt
        .get("timeZone")
        .and_then(Value::as_str)
        .and_then(tz_of)
        .unwrap_or(cal_tz);
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn event_bounds(ev: &Map<String, Value>, cal_tz: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((
        edt_instant(ev.get("start")?, cal_tz)?,
        edt_instant(ev.get("end")?, cal_tz)?,
    ))
}

fn cal_tz(cal: &Calendar) -> Tz {
    tz_of(&cal.time_zone).unwrap_or(Tz::UTC)
}

// ---------------------------------------------------------------- server quirks

/// A way a server other than Google answers (see the module docs), switched on per fake
/// (`State::quirks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Quirk {
    /// Timed `dateTime`s are echoed without offset, as wall times in their `timeZone`.
    WallTimes,
    /// Timed `dateTime`s are echoed without offset and without `timeZone`, as wall times in
    /// the calendar's zone.
    WallTimesWithoutZone,
    /// The last page of `events.list` has no `nextSyncToken`.
    NoCalendarSyncToken,
    /// The last page of `connections.list` and `contactGroups.list` has no `nextSyncToken`.
    NoPeopleSyncToken,
    /// `privateExtendedProperty` / `sharedExtendedProperty` filters are ignored: every
    /// event is answered.
    IgnoredLookupFilters,
}

/// Whether the fake has this quirk.
pub(crate) fn has_quirk(st: &State, quirk: Quirk) -> bool {
    st.quirks.contains(&quirk)
}

/// Switches a quirk on or off.
pub(crate) fn set_quirk(st: &mut State, quirk: Quirk, on: bool) {
    if on {
        st.quirks.insert(quirk);
    } else {
        st.quirks.remove(&quirk);
    }
}

/// Rewrites the timed `dateTime`s of a rendered event as wall times without offset when
/// the fake has [`Quirk::WallTimes`] or [`Quirk::WallTimesWithoutZone`] (G-CAL-25: "A time
/// zone offset is required unless a time zone is explicitly specified in `timeZone`"; an
/// event without `timeZone` is in the calendar's zone).
fn echo_wall_times(st: &State, cal: &Calendar, ev: &mut Value) {
    let without_zone = has_quirk(st, Quirk::WallTimesWithoutZone);
    if !without_zone && !has_quirk(st, Quirk::WallTimes) {
        return;
    }
    for which in ["start", "end", "originalStartTime"] {
        let Some(edt) = ev.get_mut(which).and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(instant) = edt
            .get("dateTime")
            .and_then(Value::as_str)
            .and_then(parse_instant)
        else {
            continue;
        };
        let zone = match edt.get("timeZone").and_then(Value::as_str).and_then(tz_of) {
            Some(zone) if !without_zone => zone,
            _ => cal_tz(cal),
        };
        let wall = instant.with_timezone(&zone).format("%Y-%m-%dT%H:%M:%S");
        edt.insert("dateTime".into(), json!(wall.to_string()));
        if without_zone {
            edt.remove("timeZone");
        }
    }
}

impl crate::GoogleFake {
    /// Echoes timed `dateTime`s without a UTC offset, as wall times in the `timeZone` beside
    /// them (`{"dateTime": "2026-06-20T10:00:00", "timeZone": "Europe/Paris"}`, the form
    /// crmsync sends), in every event the Calendar API answers. Google renders an offset
    /// (G-CAL-25, observed); the schema allows this form.
    pub fn echo_wall_times(&self, on: bool) {
        set_quirk(&mut self.shared.lock(), Quirk::WallTimes, on);
    }

    /// Echoes timed `dateTime`s without a UTC offset and without `timeZone`: wall times in
    /// the calendar's zone (the zone of an event without one).
    pub fn echo_wall_times_without_zone(&self, on: bool) {
        set_quirk(&mut self.shared.lock(), Quirk::WallTimesWithoutZone, on);
    }

    /// Ends `events.list` listings with neither `nextPageToken` nor `nextSyncToken` on the
    /// last page, as a server without incremental sync does (Google documents a
    /// `nextSyncToken` there, G-CAL-12).
    pub fn omit_calendar_sync_tokens(&self, on: bool) {
        set_quirk(&mut self.shared.lock(), Quirk::NoCalendarSyncToken, on);
    }

    /// Ignores `privateExtendedProperty` and `sharedExtendedProperty` in `events.list`
    /// (G-CAL-8) and answers with every event, as a lax server does.
    pub fn ignore_lookup_filters(&self, on: bool) {
        set_quirk(&mut self.shared.lock(), Quirk::IgnoredLookupFilters, on);
    }
}

fn parse_body(req: &Req) -> Result<Value, CalErr> {
    serde_json::from_slice::<Value>(&req.body)
        .map_err(|_| CalErr::new(400, "global", "parseError", "Parse Error"))
}

fn check_schema(root: &str, body: &Value) -> Result<(), CalErr> {
    if !body.is_object() {
        return Err(CalErr::new(400, "global", "parseError", "Parse Error"));
    }
    validate(CALENDAR_SCHEMAS, root, body, "resource")
        .map_err(|v| CalErr::new(400, "global", "invalid", v.message()))
}

fn bool_param(req: &Req, name: &str) -> Result<Option<bool>, CalErr> {
    match req.q(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(CalErr::invalid(name)),
    }
}

fn int_param(req: &Req, name: &str, min: i64, max: i64) -> Result<Option<i64>, CalErr> {
    match req.q(name) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(CalErr::invalid(name)),
        },
    }
}

fn calendar_index(st: &State, user: &str, id: &str) -> Result<usize, CalErr> {
    st.calendar_index(user, id).ok_or_else(CalErr::not_found)
}

fn base32hex_id(n: u64, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{salt}:{n}"));
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    digest
        .iter()
        .take(26)
        .map(|b| ALPHABET[(*b as usize) % 32] as char)
        .collect()
}

/// G-CAL-22: base32hex (lower-case a-v, 0-9), 5 to 1024 characters.
pub(crate) fn valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

// ---------------------------------------------------------------- calendarList

fn list_entry(cal: &Calendar) -> Value {
    let mut v = json!({
        "kind": "calendar#calendarListEntry",
        "etag": cal.etag,
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
        "colorId": cal.color_id,
        "backgroundColor": "#9fe1e7",
        "foregroundColor": "#000000",
        "selected": true,
        "accessRole": cal.access_role,
        "defaultReminders": if cal.access_role == "owner" || cal.access_role == "writer" {
            json!([{"method": "popup", "minutes": 10}])
        } else { json!([]) },
    });
    if let Some(o) = &cal.summary_override {
        v["summaryOverride"] = json!(o);
    }
    if cal.primary {
        v["primary"] = json!(true);
    }
    if cal.hidden {
        v["hidden"] = json!(true);
    }
    v
}

fn role_rank(role: &str) -> u8 {
    match role {
        "freeBusyReader" => 1,
        "reader" => 2,
        "writer" => 3,
        "owner" => 4,
        _ => 0,
    }
}

/// G-CAL-11, G-CAL-34.
fn calendar_list(st: &mut State, user: &str, req: &Req) -> R {
    let max = int_param(req, "maxResults", 1, 250)?.unwrap_or(100) as usize;
    let fingerprint = format!("{user} {}", req.fingerprint());
    let mut cursor = if let Some(pt) = req.q("pageToken") {
        match st.page_cursors.get(pt) {
            Some(c) if c.fingerprint == fingerprint && c.user == user => c.clone(),
            _ => return Err(CalErr::invalid("pageToken")),
        }
    } else {
        let min_role = req.q("minAccessRole");
        if let Some(r) = min_role
            && role_rank(r) == 0
        {
            return Err(CalErr::invalid("minAccessRole"));
        }
        let show_hidden = bool_param(req, "showHidden")?.unwrap_or(false);
        let since = match req.q("syncToken") {
            Some(tok) => {
                if min_role.is_some() {
                    return Err(sync_restrictions());
                }
                match st.sync_tokens.get(tok) {
                    Some(p) if p.valid && p.user == user && p.collection == "calendarList" => {
                        Some(p.seq)
                    }
                    _ => return Err(full_sync_required()),
                }
            }
            None => None,
        };
        let u = st.users.get(user).cloned().unwrap_or_default();
        let items: Vec<Value> = u
            .calendars
            .iter()
            .filter(|c| since.is_none_or(|s| c.seq > s))
            .filter(|c| since.is_some() || show_hidden || !c.hidden)
            .filter(|c| min_role.is_none_or(|r| role_rank(&c.access_role) >= role_rank(r)))
            .map(list_entry)
            .collect();
        let point = SyncPoint {
            user: user.to_owned(),
            collection: "calendarList".into(),
            seq: st.seq,
            window: (None, None),
            fields: String::new(),
            full_sync_at: st.now(),
            valid: true,
        };
        let token = st.store_sync_token(point);
        PageCursor {
            user: user.to_owned(),
            fingerprint,
            total: items.len(),
            remaining: items,
            page_index: 0,
            page_size: max,
            next_sync_token: Some(token),
        }
    };
    let paging = st.paging;
    let (page, more) = cut_page(&paging, &mut cursor);
    let etag = st.new_etag();
    let mut body = json!({"kind": "calendar#calendarList", "etag": etag, "items": page});
    if more {
        body["nextPageToken"] = json!(st.store_cursor(cursor));
    } else if let Some(t) = cursor.next_sync_token {
        body["nextSyncToken"] = json!(t);
    }
    Ok(Resp::json(200, &body))
}

fn calendar_list_get(st: &mut State, user: &str, req: &Req) -> R {
    let id = req.segments.get(5).map(String::as_str).unwrap_or("");
    let ci = calendar_index(st, user, id)?;
    let cal = &st.users[user].calendars[ci];
    Ok(Resp::json(200, &list_entry(cal)))
}

// ---------------------------------------------------------------- colors

/// G-CAL-33: the palette as the API returns it.
pub(crate) fn colors() -> Value {
    const CAL: [&str; 24] = [
        "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765",
        "#7bd148", "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7",
        "#9a9cff", "#b99aff", "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
    ];
    const EVENT: [&str; 11] = [
        "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
        "#5484ed", "#51b749", "#dc2127",
    ];
    let mut calendar = Map::new();
    for (i, c) in CAL.iter().enumerate() {
        calendar.insert(
            (i + 1).to_string(),
            json!({"background": c, "foreground": "#1d1d1d"}),
        );
    }
    let mut event = Map::new();
    for (i, c) in EVENT.iter().enumerate() {
        event.insert(
            (i + 1).to_string(),
            json!({"background": c, "foreground": "#1d1d1d"}),
        );
    }
    json!({"kind": "calendar#colors", "updated": "2012-02-14T00:00:00.000Z", "calendar": calendar, "event": event})
}

// ---------------------------------------------------------------- freeBusy

/// The most calendars one freeBusy request is answered for (`calendarExpansionMax`).
const MAX_FREE_BUSY_CALENDARS: usize = 50;

/// G-CAL-35.
fn free_busy(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_body(req)?;
    check_schema("FreeBusyRequest", &body)?;
    let min = body.get("timeMin").and_then(Value::as_str);
    let max = body.get("timeMax").and_then(Value::as_str);
    let (Some(min_s), Some(max_s)) = (min, max) else {
        return Err(CalErr::new(400, "global", "required", "Required"));
    };
    let (Some(tmin), Some(tmax)) = (parse_instant(min_s), parse_instant(max_s)) else {
        return Err(CalErr::bad_request());
    };
    if tmax <= tmin {
        return Err(CalErr::new(
            400,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
        )
        .at("parameter", "timeMax"));
    }
    if tmax - tmin > chrono::Duration::days(92) {
        return Err(CalErr::new(
            400,
            "calendar",
            "timeRangeTooLong",
            "The requested time range is too long.",
        ));
    }
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut calendars = Map::new();
    for (n, item) in items.into_iter().enumerate() {
        let Some(id) = item.get("id").and_then(Value::as_str) else {
            continue;
        };
        // Beyond `calendarExpansionMax`'s maximum (50, discovery), calendars get a
        // per-calendar error, not an HTTP one (G-CAL-35).
        if n >= MAX_FREE_BUSY_CALENDARS {
            calendars.insert(
                id.to_owned(),
                json!({
                    "errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}],
                    "busy": []
                }),
            );
            continue;
        }
        match st.calendar_index(user, id) {
            Some(ci) if role_rank(&st.users[user].calendars[ci].access_role) >= 1 => {
                let cal = &st.users[user].calendars[ci];
                let tz = cal_tz(cal);
                // Every occurrence of a series is busy, moved ones where they moved to.
                let pool = expand_series(cal, tz, tmax, false);
                let mut busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = pool
                    .iter()
                    .filter(|e| !e.cancelled())
                    .filter(|e| {
                        e.resource.get("transparency").and_then(Value::as_str)
                            != Some("transparent")
                    })
                    .filter_map(|e| event_bounds(&e.resource, tz))
                    .filter(|(s, e)| *s < tmax && *e > tmin)
                    .map(|(s, e)| (s.max(tmin), e.min(tmax)))
                    .collect();
                busy.sort();
                let busy: Vec<Value> = busy
                    .into_iter()
                    .map(|(s, e)| {
                        json!({"start": s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                               "end": e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
                    })
                    .collect();
                calendars.insert(id.to_owned(), json!({ "busy": busy }));
            }
            _ => {
                calendars.insert(
                    id.to_owned(),
                    json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}),
                );
            }
        }
    }
    Ok(Resp::json(
        200,
        &json!({"kind": "calendar#freeBusy", "timeMin": min_s, "timeMax": max_s, "calendars": calendars}),
    ))
}

// ---------------------------------------------------------------- events

fn full_sync_required() -> CalErr {
    CalErr::new(
        410,
        "calendar",
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
    )
    .at("parameter", "syncToken")
}

fn sync_restrictions() -> CalErr {
    CalErr::new(
        400,
        "global",
        "syncTokenWithRequestRestrictions",
        "Sync token cannot be used with other request restrictions.",
    )
}

fn events(st: &mut State, user: &str, endpoint: Endpoint, req: &Req) -> R {
    let cal_id = req.segments.get(3).cloned().unwrap_or_default();
    let ci = calendar_index(st, user, &cal_id)?;
    if let Some(su) = req.q("sendUpdates")
        && !matches!(su, "all" | "externalOnly" | "none")
    {
        return Err(CalErr::invalid("sendUpdates"));
    }
    let writes = matches!(
        endpoint,
        Endpoint::EventsInsert
            | Endpoint::EventsPatch
            | Endpoint::EventsUpdate
            | Endpoint::EventsDelete
    );
    let role = st.users[user].calendars[ci].access_role.clone();
    if writes && role_rank(&role) < 3 {
        return Err(CalErr::new(
            403,
            "calendar",
            "requiredAccessLevel",
            "You need to have writer access to this calendar.",
        ));
    }
    if !writes && role_rank(&role) < 2 {
        return Err(CalErr::not_found());
    }
    match endpoint {
        Endpoint::EventsList => list_events(st, user, ci, req),
        Endpoint::EventsInsert => insert_event(st, user, ci, req),
        _ => {
            let event_id = req.segments.get(5).cloned().unwrap_or_default();
            let Some(stored) = st.users[user].calendars[ci].events.get(&event_id).cloned() else {
                return Err(CalErr::not_found());
            };
            match endpoint {
                Endpoint::EventsGet => {
                    if req.header("if-none-match") == Some(stored.etag()) {
                        return Ok(Resp::empty(304));
                    }
                    let cal = &st.users[user].calendars[ci];
                    let mut ev = render(&stored.resource, cal, req.q("timeZone"));
                    echo_wall_times(st, cal, &mut ev);
                    Ok(Resp::json(200, &ev))
                }
                Endpoint::EventsDelete => {
                    check_if_match(req, &stored)?;
                    if stored.cancelled() {
                        return Err(CalErr::new(
                            410,
                            "global",
                            "deleted",
                            "Resource has been deleted",
                        ));
                    }
                    let etag = st.new_etag();
                    let now = st.now_rfc3339();
                    let seq = st.next_seq();
                    let cal = &mut st.user_mut(user).calendars[ci];
                    if let Some(ev) = cal.events.get_mut(&event_id) {
                        ev.resource.insert("status".into(), json!("cancelled"));
                        ev.resource.insert("etag".into(), json!(etag));
                        ev.resource.insert("updated".into(), json!(now));
                        ev.seq = seq;
                    }
                    Ok(Resp::empty(204))
                }
                _ => modify_event(st, user, ci, stored, endpoint, req),
            }
        }
    }
}

fn check_if_match(req: &Req, stored: &StoredEvent) -> Result<(), CalErr> {
    match req.header("if-match") {
        Some(m) if m != "*" && m != stored.etag() => {
            Err(
                CalErr::new(412, "global", "conditionNotMet", "Precondition Failed")
                    .at("header", "If-Match"),
            )
        }
        _ => Ok(()),
    }
}

/// Fields the server owns; whatever the client sends for them is ignored.
const SERVER_FIELDS: &[&str] = &[
    "kind",
    "etag",
    "created",
    "updated",
    "htmlLink",
    "creator",
    "hangoutLink",
    "iCalUID",
];

fn strip_server_fields(body: &mut Map<String, Value>) {
    for f in SERVER_FIELDS {
        body.remove(*f);
    }
}

/// G-CAL-25, G-CAL-26 and the enum fields of G-CAL-24: validates (and normalises) an event as it
/// would be stored.
fn validate_event(ev: &mut Map<String, Value>, cal: &Calendar) -> Result<(), CalErr> {
    let tz = cal_tz(cal);
    let recurring = ev
        .get("recurrence")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    let mut kinds = Vec::new();
    for which in ["start", "end"] {
        let Some(edt) = ev.get(which).filter(|v| !v.is_null()) else {
            return Err(CalErr::new(
                400,
                "global",
                "required",
                format!("Missing {which} time."),
            ));
        };
        let date = edt.get("date").filter(|v| !v.is_null());
        let date_time = edt.get("dateTime").filter(|v| !v.is_null());
        let zone = edt.get("timeZone").and_then(Value::as_str);
        if let Some(z) = zone
            && tz_of(z).is_none()
        {
            return Err(CalErr::new(
                400,
                "global",
                "invalid",
                format!("Invalid time zone definition for {which} time."),
            ));
        }
        match (date, date_time) {
            (Some(_), Some(_)) | (None, None) => return Err(CalErr::bad_request()),
            (Some(d), None) => {
                let ok = d
                    .as_str()
                    .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok());
                if !ok {
                    return Err(CalErr::bad_request());
                }
                kinds.push("date");
            }
            (None, Some(dt)) => {
                let s = dt.as_str().unwrap_or("");
                let has_offset = parse_instant(s).is_some();
                if !has_offset && parse_naive(s).is_none() {
                    return Err(CalErr::bad_request());
                }
                if !has_offset && zone.is_none() {
                    return Err(CalErr::new(
                        400,
                        "global",
                        "required",
                        format!("Missing time zone definition for {which} time."),
                    ));
                }
                kinds.push("dateTime");
            }
        }
        if recurring && zone.is_none() {
            return Err(CalErr::new(
                400,
                "global",
                "required",
                format!("Missing time zone definition for {which} time."),
            ));
        }
    }
    if kinds[0] != kinds[1] {
        return Err(CalErr::new(
            400,
            "global",
            "invalid",
            "Start and end times must either both be date or both be dateTime.",
        ));
    }
    if let Some((s, e)) = event_bounds(ev, tz)
        && e < s
    {
        return Err(CalErr::new(
            400,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
        ));
    }
    if recurring {
        let lines = ev
            .get("recurrence")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for l in lines {
            let ok = l.as_str().is_some_and(|s| {
                ["RRULE:", "EXRULE:", "RDATE", "EXDATE"]
                    .iter()
                    .any(|p| s.starts_with(p))
            });
            if !ok {
                return Err(CalErr::new(
                    400,
                    "global",
                    "invalid",
                    "Invalid recurrence rule.",
                ));
            }
        }
    }
    for (field, allowed) in [
        (
            "visibility",
            &["default", "public", "private", "confidential"][..],
        ),
        ("transparency", &["opaque", "transparent"][..]),
        ("status", &["confirmed", "tentative", "cancelled"][..]),
        (
            "colorId",
            &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"][..],
        ),
    ] {
        if let Some(v) = ev.get(field).filter(|v| !v.is_null())
            && !v.as_str().is_some_and(|s| allowed.contains(&s))
        {
            return Err(CalErr::invalid(field));
        }
    }
    // Reminders (G-CAL-26).
    if let Some(rem) = ev.get_mut("reminders").filter(|v| !v.is_null()) {
        let use_default = rem
            .get("useDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let overrides = rem
            .get("overrides")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if use_default && !overrides.is_empty() {
            return Err(CalErr::new(
                400,
                "calendar",
                "cannotUseDefaultRemindersAndSpecifyOverride",
                "Cannot specify both default reminders and overrides at the same time.",
            ));
        }
        if overrides.len() > 5 {
            return Err(CalErr::new(
                400,
                "calendar",
                "eventRemindersCountExceedsLimit",
                "The number of reminders exceeds the limit.",
            ));
        }
        let mut kept = Vec::new();
        for o in overrides {
            let Some(method) = o.get("method").and_then(Value::as_str) else {
                return Err(CalErr::new(
                    400,
                    "global",
                    "required",
                    "Missing reminder method.",
                ));
            };
            if !matches!(method, "email" | "popup") {
                continue; // unknown methods are dropped silently (observed)
            }
            let Some(minutes) = o.get("minutes").and_then(Value::as_i64) else {
                return Err(CalErr::new(
                    400,
                    "global",
                    "required",
                    "Missing reminder minutes.",
                ));
            };
            kept.push(json!({"method": method, "minutes": minutes.clamp(0, 40320)}));
        }
        // Overrides come back reordered (observed): sort by minutes, then method.
        kept.sort_by_key(|o| {
            (
                o["minutes"].as_i64().unwrap_or(0),
                o["method"].as_str().unwrap_or("").to_owned(),
            )
        });
        *rem = json!({"useDefault": use_default, "overrides": kept});
    }
    Ok(())
}

/// The event as the API returns it (G-CAL-25 rendering, G-CAL-26 reminder read-back).
fn render(resource: &Map<String, Value>, cal: &Calendar, zone: Option<&str>) -> Value {
    let mut ev = resource.clone();
    let render_tz = zone.and_then(tz_of).unwrap_or_else(|| cal_tz(cal));
    for which in ["start", "end", "originalStartTime"] {
        let Some(edt) = ev.get(which).cloned() else {
            continue;
        };
        let mut out = Map::new();
        if let Some(d) = edt.get("date").filter(|v| !v.is_null()) {
            out.insert("date".into(), d.clone());
        } else if let Some(i) = edt_instant(&edt, cal_tz(cal)) {
            out.insert(
                "dateTime".into(),
                json!(
                    i.with_timezone(&render_tz)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            );
        }
        let tzname = edt
            .get("timeZone")
            .and_then(Value::as_str)
            .unwrap_or(&cal.time_zone);
        out.insert("timeZone".into(), json!(tzname));
        ev.insert(which.into(), Value::Object(out));
    }
    match ev.get("reminders").filter(|v| !v.is_null()).cloned() {
        None => {
            ev.insert("reminders".into(), json!({"useDefault": true}));
        }
        Some(r) => {
            let overrides = r
                .get("overrides")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let use_default = r
                .get("useDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut out = json!({ "useDefault": use_default });
            if !overrides.is_empty() {
                out["overrides"] = json!(overrides);
            }
            ev.insert("reminders".into(), out);
        }
    }
    ev.retain(|_, v| !v.is_null());
    ev.insert("kind".into(), json!("calendar#event"));
    Value::Object(ev)
}

// ---------------------------------------------------------------- recurrence

/// How often a series repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// The parts of an RRULE the fake expands (RFC 5545): FREQ, INTERVAL, COUNT, UNTIL and
/// BYDAY without ordinals. Other parts (BYMONTHDAY, BYSETPOS, ordinal BYDAY…) are
/// ignored: such a series expands as FREQ/INTERVAL alone — a limitation of the fake.
#[derive(Debug, Clone)]
struct Rule {
    freq: Freq,
    interval: u32,
    count: Option<u32>,
    until: Option<DateTime<Utc>>,
    by_day: Vec<chrono::Weekday>,
}

/// The most occurrences the fake expands of one series.
const MAX_OCCURRENCES: usize = 3000;

fn parse_rule(line: &str, zone: Tz) -> Option<Rule> {
    let body = line.strip_prefix("RRULE:")?;
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_day: Vec::new(),
    };
    let mut freq = None;
    for part in body.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "FREQ" => {
                freq = Some(match v {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    "YEARLY" => Freq::Yearly,
                    _ => return None,
                });
            }
            "INTERVAL" => rule.interval = v.parse().ok().filter(|n| *n > 0)?,
            "COUNT" => rule.count = Some(v.parse().ok()?),
            "UNTIL" => rule.until = Some(parse_ical_time(v, zone, true)?),
            "BYDAY" => {
                for d in v.split(',') {
                    rule.by_day.push(match d {
                        "MO" => chrono::Weekday::Mon,
                        "TU" => chrono::Weekday::Tue,
                        "WE" => chrono::Weekday::Wed,
                        "TH" => chrono::Weekday::Thu,
                        "FR" => chrono::Weekday::Fri,
                        "SA" => chrono::Weekday::Sat,
                        "SU" => chrono::Weekday::Sun,
                        _ => continue,
                    });
                }
            }
            _ => {}
        }
    }
    rule.freq = freq?;
    Some(rule)
}

/// An iCalendar DATE or DATE-TIME (`20260303`, `20260303T090000`, `20260303T080000Z`) as
/// an instant; a floating or date value is read in `zone` (a date's end of day when
/// `end_of_day`, as UNTIL is inclusive).
fn parse_ical_time(v: &str, zone: Tz, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Some(utc) = v.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(Utc.from_utc_datetime(&t));
    }
    let local = match NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S") {
        Ok(t) => t,
        Err(_) => {
            let d = NaiveDate::parse_from_str(v, "%Y%m%d").ok()?;
            if end_of_day {
                d.and_hms_opt(23, 59, 59)?
            } else {
                d.and_hms_opt(0, 0, 0)?
            }
        }
    };
    zone.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The `EXDATE` instants of a series.
fn exdates(lines: &[Value], zone: Tz) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    for line in lines.iter().filter_map(Value::as_str) {
        let Some(rest) = line.strip_prefix("EXDATE") else {
            continue;
        };
        let Some((params, values)) = rest.split_once(':') else {
            continue;
        };
        let tz = params
            .split(';')
            .find_map(|p| p.strip_prefix("TZID="))
            .and_then(tz_of)
            .unwrap_or(zone);
        out.extend(
            values
                .split(',')
                .filter_map(|v| parse_ical_time(v.trim(), tz, false)),
        );
    }
    out
}

/// One occurrence of a series: the `originalStartTime` it has, and its span.
struct Occurrence {
    original: Value,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// The occurrences of the series `master` starting before `horizon`, in order (RRULE
/// with EXDATE; a series without an RRULE is its first occurrence).
fn occurrences(master: &Map<String, Value>, cal_tz: Tz, horizon: DateTime<Utc>) -> Vec<Occurrence> {
    let Some((first_start, first_end)) = event_bounds(master, cal_tz) else {
        return Vec::new();
    };
    let start_edt = master.get("start").cloned().unwrap_or(Value::Null);
    let all_day = start_edt.get("date").is_some_and(|d| !d.is_null());
    let zone_name = start_edt
        .get("timeZone")
        .and_then(Value::as_str)
        .filter(|z| tz_of(z).is_some())
        .map(str::to_owned);
    let zone = zone_name.as_deref().and_then(tz_of).unwrap_or(cal_tz);
    let first_local = if all_day {
        first_start.with_timezone(&cal_tz).naive_local()
    } else {
        first_start.with_timezone(&zone).naive_local()
    };
    let lines: Vec<Value> = master
        .get("recurrence")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rule = lines
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| parse_rule(l, zone));
    let excluded = exdates(&lines, zone);
    let span = first_end - first_start;
    let days = (first_end - first_start).num_days();
    let occurrence = |local: NaiveDateTime| -> Option<Occurrence> {
        if all_day {
            let date = local.date();
            let start = cal_tz
                .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
                .earliest()?
                .with_timezone(&Utc);
            let end_date = date + chrono::Duration::days(days);
            let end = cal_tz
                .from_local_datetime(&end_date.and_hms_opt(0, 0, 0)?)
                .earliest()?
                .with_timezone(&Utc);
            return Some(Occurrence {
                original: json!({"date": date.format("%Y-%m-%d").to_string()}),
                start,
                end,
            });
        }
        let start = zone.from_local_datetime(&local).earliest()?;
        let mut original = json!({
            "dateTime": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        if let Some(z) = &zone_name {
            original["timeZone"] = json!(z);
        }
        let start = start.with_timezone(&Utc);
        Some(Occurrence {
            original,
            start,
            end: start + span,
        })
    };
    let Some(rule) = rule else {
        return occurrence(first_local).into_iter().collect();
    };
    // Candidate local starts, in order.
    let interval = i64::from(rule.interval);
    let candidates: Box<dyn Iterator<Item = NaiveDateTime>> = match rule.freq {
        Freq::Daily => {
            Box::new((0..).map(move |k| first_local + chrono::Duration::days(k * interval)))
        }
        Freq::Weekly if rule.by_day.is_empty() => {
            Box::new((0..).map(move |k| first_local + chrono::Duration::days(7 * k * interval)))
        }
        Freq::Weekly => {
            use chrono::Datelike;
            let monday = first_local
                - chrono::Duration::days(i64::from(first_local.weekday().num_days_from_monday()));
            let mut by_day: Vec<i64> = rule
                .by_day
                .iter()
                .map(|d| i64::from(d.num_days_from_monday()))
                .collect();
            by_day.sort_unstable();
            by_day.dedup();
            Box::new(
                (0..)
                    .flat_map(move |w: i64| {
                        let by_day = by_day.clone();
                        by_day
                            .into_iter()
                            .map(move |d| monday + chrono::Duration::days(7 * w * interval + d))
                    })
                    .filter(move |t| *t >= first_local),
            )
        }
        Freq::Monthly | Freq::Yearly => {
            let months = if rule.freq == Freq::Monthly { 1 } else { 12 };
            Box::new((0..).filter_map(move |k: u32| {
                first_local
                    .checked_add_months(chrono::Months::new(k * rule.interval * months))
                    .filter(|t| {
                        use chrono::Datelike;
                        // RFC 5545: a month without the day has no occurrence.
                        t.day() == first_local.day()
                    })
            }))
        }
    };
    let mut out = Vec::new();
    for (n, local) in candidates.enumerate() {
        if n >= MAX_OCCURRENCES || rule.count.is_some_and(|c| n >= c as usize) {
            break;
        }
        let Some(occ) = occurrence(local) else {
            continue;
        };
        if rule.until.is_some_and(|u| occ.start > u) || occ.start >= horizon {
            break;
        }
        if !excluded.contains(&occ.start) {
            out.push(occ);
        }
    }
    out
}

/// The events of `cal` with every live series replaced by its instances up to `horizon`
/// (exceptions in place of the occurrences they change), as `singleEvents=true` lists
/// them (G-CAL-5, G-CAL-28). Cancelled occurrences only when `include_deleted`; masters
/// never.
fn expand_series(
    cal: &Calendar,
    cal_tz: Tz,
    horizon: DateTime<Utc>,
    include_deleted: bool,
) -> Vec<StoredEvent> {
    let is_master = |e: &StoredEvent| {
        e.resource
            .get("recurrence")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
    };
    let mut out = Vec::new();
    for e in cal.events.values() {
        if e.resource.get("recurringEventId").is_some() {
            // An exception: listed as the instance it is.
            if include_deleted || !e.cancelled() {
                out.push(e.clone());
            }
            continue;
        }
        if !is_master(e) {
            out.push(e.clone());
            continue;
        }
        if e.cancelled() {
            continue;
        }
        let master_id = e.resource.get("id").and_then(Value::as_str).unwrap_or("");
        let changed: Vec<DateTime<Utc>> = cal
            .events
            .values()
            .filter(|x| {
                x.resource.get("recurringEventId").and_then(Value::as_str) == Some(master_id)
            })
            .filter_map(|x| x.resource.get("originalStartTime"))
            .filter_map(|o| edt_instant(o, cal_tz))
            .collect();
        for occ in occurrences(&e.resource, cal_tz, horizon) {
            if changed.contains(&occ.start) {
                continue;
            }
            let Some(id) = instance_id(master_id, &occ.original, cal_tz) else {
                continue;
            };
            let mut instance = e.resource.clone();
            instance.remove("recurrence");
            let edt = |t: DateTime<Utc>| {
                if occ.original.get("date").is_some() {
                    json!({"date": t.with_timezone(&cal_tz).format("%Y-%m-%d").to_string()})
                } else {
                    let mut v =
                        json!({"dateTime": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
                    if let Some(z) = occ.original.get("timeZone") {
                        v["timeZone"] = z.clone();
                    }
                    v
                }
            };
            instance.insert("start".into(), edt(occ.start));
            instance.insert("end".into(), edt(occ.end));
            instance.insert("id".into(), json!(id));
            instance.insert("recurringEventId".into(), json!(master_id));
            instance.insert("originalStartTime".into(), occ.original.clone());
            out.push(StoredEvent {
                resource: instance,
                seq: e.seq,
            });
        }
    }
    out
}

/// Whether `e` is a cancelled instance of a recurring event whose master is live.
fn is_cancelled_exception(cal: &Calendar, e: &StoredEvent) -> bool {
    e.cancelled()
        && e.resource
            .get("recurringEventId")
            .and_then(Value::as_str)
            .and_then(|m| cal.events.get(m))
            .is_some_and(|m| !m.cancelled())
}

/// The id of the instance of `master` that starts at `original` (G-CAL-28:
/// `<masterId>_<YYYYMMDDTHHMMSSZ>`, or `<masterId>_<YYYYMMDD>` for all-day series).
fn instance_id(master: &str, original: &Value, cal_tz: Tz) -> Option<String> {
    if let Some(d) = original.get("date").and_then(Value::as_str) {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
        return Some(format!("{master}_{}", date.format("%Y%m%d")));
    }
    let at = edt_instant(original, cal_tz)?;
    Some(format!("{master}_{}", at.format("%Y%m%dT%H%M%SZ")))
}

/// Stores an exception of the recurring event `master_id`: its instance at `original`
/// (an `EventDateTime`), changed by `changes` (PATCH semantics; `{"status":
/// "cancelled"}` cancels the occurrence). The instance carries `recurringEventId`,
/// `originalStartTime` and the master's `iCalUID`, no `recurrence` (G-CAL-23, G-CAL-28).
pub(crate) fn seed_exception(
    st: &mut State,
    user: &str,
    calendar_id: &str,
    master_id: &str,
    original: &Value,
    changes: &Value,
) -> Result<Value, CalErr> {
    let ci = calendar_index(st, user, calendar_id)?;
    let cal = st.users[user].calendars[ci].clone();
    let tz = cal_tz(&cal);
    let master = cal
        .events
        .get(master_id)
        .filter(|m| !m.cancelled() && m.resource.get("recurrence").is_some())
        .ok_or_else(CalErr::not_found)?
        .resource
        .clone();
    let id = instance_id(master_id, original, tz).ok_or_else(CalErr::bad_request)?;
    let mut ev = master.clone();
    for k in ["recurrence", "etag", "created", "updated", "htmlLink"] {
        ev.remove(k);
    }
    // The occurrence keeps the series' duration unless `changes` moves it.
    let (start, end) = event_bounds(&master, tz).ok_or_else(CalErr::bad_request)?;
    let first = edt_instant(original, tz).ok_or_else(CalErr::bad_request)?;
    let zone = master
        .get("start")
        .and_then(|s| s.get("timeZone"))
        .cloned()
        .unwrap_or_else(|| json!(cal.time_zone));
    let timed = |t: DateTime<Utc>| {
        let at = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        json!({"dateTime": at, "timeZone": zone})
    };
    if original.get("date").is_some() {
        let days = (end - start).num_days();
        let day =
            |t: DateTime<Utc>| json!({"date": t.with_timezone(&tz).format("%Y-%m-%d").to_string()});
        ev.insert("start".into(), day(first));
        ev.insert("end".into(), day(first + chrono::Duration::days(days)));
    } else {
        ev.insert("start".into(), timed(first));
        ev.insert("end".into(), timed(first + (end - start)));
    }
    if let Some(changes) = changes.as_object() {
        let mut changes = changes.clone();
        strip_server_fields(&mut changes);
        merge(&mut ev, &changes, true);
    }
    for which in ["start", "end"] {
        if let Some(Value::Object(edt)) = ev.get_mut(which) {
            edt.retain(|_, v| !v.is_null());
        }
    }
    ev.insert("id".into(), json!(id));
    ev.insert("recurringEventId".into(), json!(master_id));
    ev.insert("originalStartTime".into(), original.clone());
    if let Some(uid) = master.get("iCalUID") {
        ev.insert("iCalUID".into(), uid.clone());
    }
    validate_event(&mut ev, &cal)?;
    let now = st.now_rfc3339();
    let etag = st.new_etag();
    let seq = st.next_seq();
    ev.insert("etag".into(), json!(etag));
    ev.insert("created".into(), json!(now));
    ev.insert("updated".into(), json!(now));
    ev.retain(|_, v| !v.is_null());
    let cal = &mut st.user_mut(user).calendars[ci];
    cal.events.insert(
        id,
        StoredEvent {
            resource: ev.clone(),
            seq,
        },
    );
    Ok(render(&ev, cal, None))
}

fn tombstone(resource: &Map<String, Value>) -> Value {
    let mut t = json!({
        "kind": "calendar#event",
        "etag": resource.get("etag").cloned().unwrap_or(Value::Null),
        "id": resource.get("id").cloned().unwrap_or(Value::Null),
        "status": "cancelled",
    });
    for k in ["recurringEventId", "originalStartTime"] {
        if let Some(v) = resource.get(k) {
            t[k] = v.clone();
        }
    }
    t
}

fn insert_event(st: &mut State, user: &str, ci: usize, req: &Req) -> R {
    let body = parse_body(req)?;
    check_schema("Event", &body)?;
    let mut ev = body.as_object().cloned().unwrap_or_default();
    strip_server_fields(&mut ev);
    let id = match ev.get("id").filter(|v| !v.is_null()) {
        Some(Value::String(id)) => {
            if !valid_event_id(id) {
                return Err(CalErr::new(
                    400,
                    "global",
                    "invalid",
                    "Invalid resource id value.",
                ));
            }
            if st.users[user].calendars[ci].events.contains_key(id) {
                return Err(CalErr::new(
                    409,
                    "global",
                    "duplicate",
                    "The requested identifier already exists.",
                ));
            }
            id.clone()
        }
        _ => {
            let n = st.next();
            base32hex_id(n, user)
        }
    };
    ev.insert("id".into(), json!(id));
    ev.entry("status").or_insert(json!("confirmed"));
    ev.entry("eventType").or_insert(json!("default"));
    ev.entry("sequence").or_insert(json!(0));
    validate_event(&mut ev, &st.users[user].calendars[ci])?;
    let now = st.now_rfc3339();
    let etag = st.new_etag();
    let seq = st.next_seq();
    ev.insert("etag".into(), json!(etag));
    ev.insert("created".into(), json!(now));
    ev.insert("updated".into(), json!(now));
    ev.insert("iCalUID".into(), json!(format!("{id}@google.com")));
    ev.insert(
        "htmlLink".into(),
        json!(format!("https://www.google.com/calendar/event?eid={id}")),
    );
    ev.insert("creator".into(), json!({"email": user, "self": true}));
    ev.entry("organizer")
        .or_insert(json!({"email": st.users[user].calendars[ci].id, "self": true}));
    let cal = &mut st.user_mut(user).calendars[ci];
    cal.events.insert(
        id,
        StoredEvent {
            resource: ev.clone(),
            seq,
        },
    );
    let cal = &st.users[user].calendars[ci];
    let mut answer = render(&ev, cal, None);
    echo_wall_times(st, cal, &mut answer);
    Ok(Resp::json(200, &answer))
}

/// JSON merge as PATCH does it: objects merged recursively, `null` removes, arrays and scalars
/// replaced; `reminders` is replaced as a whole (observed, G-CAL-26).
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>, top: bool) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.insert(k.clone(), Value::Null);
            }
            Value::Object(p) if !(top && k == "reminders") => {
                let entry = target.entry(k.clone()).or_insert_with(|| json!({}));
                if !entry.is_object() {
                    *entry = json!({});
                }
                if let Some(t) = entry.as_object_mut() {
                    merge(t, p, false);
                }
            }
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

fn without_volatile(ev: &Map<String, Value>) -> Map<String, Value> {
    let mut m = ev.clone();
    for k in ["etag", "updated", "reminders"] {
        m.remove(k);
    }
    m.retain(|_, v| !v.is_null());
    m
}

fn modify_event(
    st: &mut State,
    user: &str,
    ci: usize,
    stored: StoredEvent,
    endpoint: Endpoint,
    req: &Req,
) -> R {
    check_if_match(req, &stored)?;
    let body = parse_body(req)?;
    check_schema("Event", &body)?;
    let mut patch = body.as_object().cloned().unwrap_or_default();
    strip_server_fields(&mut patch);
    let id = stored
        .resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(new_id) = patch.get("id").and_then(Value::as_str)
        && new_id != id
    {
        return Err(CalErr::invalid("id"));
    }
    let mut ev = if endpoint == Endpoint::EventsPatch {
        let mut ev = stored.resource.clone();
        merge(&mut ev, &patch, true);
        ev
    } else {
        // PUT replaces the whole event (G-CAL-31); server fields survive.
        let mut ev = patch.clone();
        for k in SERVER_FIELDS
            .iter()
            .chain(["id", "organizer", "eventType", "sequence"].iter())
        {
            if let Some(v) = stored.resource.get(*k) {
                ev.insert((*k).to_owned(), v.clone());
            }
        }
        ev.entry("status").or_insert(json!("confirmed"));
        ev
    };
    for which in ["start", "end"] {
        if let Some(Value::Object(edt)) = ev.get_mut(which) {
            edt.retain(|_, v| !v.is_null());
        }
    }
    validate_event(&mut ev, &st.users[user].calendars[ci])?;
    let reminders_only = without_volatile(&ev) == without_volatile(&stored.resource);
    let etag = st.new_etag();
    let seq = st.next_seq();
    ev.insert("etag".into(), json!(etag));
    if !reminders_only {
        ev.insert("updated".into(), json!(st.now_rfc3339()));
    }
    ev.retain(|_, v| !v.is_null());
    let cal = &mut st.user_mut(user).calendars[ci];
    cal.events.insert(
        id,
        StoredEvent {
            resource: ev.clone(),
            seq,
        },
    );
    let cal = &st.users[user].calendars[ci];
    let mut answer = render(&ev, cal, None);
    echo_wall_times(st, cal, &mut answer);
    Ok(Resp::json(200, &answer))
}

const FORBIDDEN_WITH_SYNC: &[&str] = &[
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

fn ext_filter(ev: &Map<String, Value>, kind: &str, filters: &[&str]) -> bool {
    filters.iter().all(|f| {
        let Some((k, v)) = f.split_once('=') else {
            return false;
        };
        ev.get("extendedProperties")
            .and_then(|e| e.get(kind))
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            == Some(v)
    })
}

/// G-CAL-3..9, G-CAL-12..17.
fn list_events(st: &mut State, user: &str, ci: usize, req: &Req) -> R {
    let max = int_param(req, "maxResults", 1, 2500)?.unwrap_or(250) as usize;
    let single = bool_param(req, "singleEvents")?.unwrap_or(false);
    let show_deleted = bool_param(req, "showDeleted")?;
    let fingerprint = format!("{user} {}", req.fingerprint());
    if let Some(z) = req.q("timeZone")
        && tz_of(z).is_none()
    {
        return Err(CalErr::invalid("timeZone"));
    }
    let mut cursor = if let Some(pt) = req.q("pageToken") {
        // The next page of an incremental listing repeats the sync token (G-CAL-13): one
        // invalidated since the first page answers 410 like the first page would have
        // (G-CAL-15).
        if let Some(tok) = req.q("syncToken")
            && !st.sync_tokens.get(tok).is_some_and(|p| p.valid)
        {
            return Err(full_sync_required());
        }
        match st.page_cursors.get(pt) {
            Some(c) if c.fingerprint == fingerprint && c.user == user => c.clone(),
            _ => return Err(CalErr::invalid("pageToken")),
        }
    } else {
        let cal = st.users[user].calendars[ci].clone();
        let tz = cal_tz(&cal);
        let zone = req.q("timeZone");
        if let Some(tok) = req.q("syncToken") {
            if FORBIDDEN_WITH_SYNC.iter().any(|p| req.q(p).is_some()) || show_deleted == Some(false)
            {
                return Err(sync_restrictions());
            }
            let point = match st.sync_tokens.get(tok) {
                Some(p) if p.valid && p.user == user && p.collection == cal.id => p.clone(),
                _ => return Err(full_sync_required()),
            };
            let mut changed: Vec<&StoredEvent> =
                cal.events.values().filter(|e| e.seq > point.seq).collect();
            changed.sort_by_key(|e| e.seq);
            let items: Vec<Value> = changed
                .into_iter()
                .filter(|e| in_window(&e.resource, tz, point.window))
                .map(|e| {
                    if e.cancelled() {
                        tombstone(&e.resource)
                    } else {
                        let mut ev = render(&e.resource, &cal, zone);
                        echo_wall_times(st, &cal, &mut ev);
                        ev
                    }
                })
                .collect();
            let next = SyncPoint {
                seq: st.seq,
                ..point
            };
            let token = st.store_sync_token(next);
            new_cursor(user, fingerprint, items, max, token)
        } else {
            let tmin = time_param(req, "timeMin")?;
            let tmax = time_param(req, "timeMax")?;
            if let (Some(a), Some(b)) = (tmin, tmax)
                && b <= a
            {
                return Err(CalErr::new(
                    400,
                    "calendar",
                    "timeRangeEmpty",
                    "The specified time range is empty.",
                )
                .at("parameter", "timeMax"));
            }
            let updated_min = time_param(req, "updatedMin")?;
            let order = req.q("orderBy");
            match order {
                None | Some("updated") => {}
                Some("startTime") if single => {}
                Some("startTime") => {
                    return Err(CalErr::new(
                        400,
                        "global",
                        "badRequest",
                        "The requested ordering is not available for the particular query.",
                    ));
                }
                Some(_) => return Err(CalErr::invalid("orderBy")),
            }
            let lax_filters = has_quirk(st, Quirk::IgnoredLookupFilters);
            let private = req.q_all("privateExtendedProperty");
            let shared = req.q_all("sharedExtendedProperty");
            let text = req.q("q").map(str::to_lowercase);
            let ical = req.q("iCalUID");
            let include_deleted = show_deleted == Some(true) || updated_min.is_some();
            // singleEvents=true: series become their instances, masters are not returned
            // (G-CAL-5); unbounded series are expanded two years past now or to timeMax.
            let pool: Vec<StoredEvent> = if single {
                let horizon = tmax.unwrap_or_else(|| st.now() + chrono::Duration::days(730));
                expand_series(&cal, tz, horizon, include_deleted)
            } else {
                cal.events.values().cloned().collect()
            };
            let mut evs: Vec<&StoredEvent> = pool
                .iter()
                // Cancelled instances of a recurring event are listed even without
                // showDeleted when instances are not expanded (G-CAL-6).
                .filter(|e| {
                    include_deleted
                        || !e.cancelled()
                        || (!single && is_cancelled_exception(&cal, e))
                })
                .filter(|e| in_window(&e.resource, tz, (tmin, tmax)))
                .filter(|e| {
                    lax_filters
                        || (ext_filter(&e.resource, "private", &private)
                            && ext_filter(&e.resource, "shared", &shared))
                })
                .filter(|e| {
                    text.as_ref().is_none_or(|t| {
                        ["summary", "description", "location"].iter().any(|f| {
                            e.resource
                                .get(*f)
                                .and_then(Value::as_str)
                                .is_some_and(|s| s.to_lowercase().contains(t))
                        })
                    })
                })
                .filter(|e| {
                    ical.is_none_or(|u| {
                        e.resource.get("iCalUID").and_then(Value::as_str) == Some(u)
                    })
                })
                .filter(|e| {
                    updated_min.is_none_or(|m| {
                        e.resource
                            .get("updated")
                            .and_then(Value::as_str)
                            .and_then(parse_instant)
                            .is_some_and(|u| u >= m)
                    })
                })
                .collect();
            match order {
                Some("startTime") => {
                    evs.sort_by_key(|e| event_bounds(&e.resource, tz).map(|b| b.0));
                }
                Some("updated") => {
                    evs.sort_by_key(|e| {
                        e.resource
                            .get("updated")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    });
                }
                _ => evs.sort_by_key(|e| e.seq),
            }
            // A cancelled event lists as its tombstone in full listings too (G-CAL-29).
            let items: Vec<Value> = evs
                .into_iter()
                .map(|e| {
                    if e.cancelled() {
                        tombstone(&e.resource)
                    } else {
                        let mut ev = render(&e.resource, &cal, zone);
                        echo_wall_times(st, &cal, &mut ev);
                        ev
                    }
                })
                .collect();
            let point = SyncPoint {
                user: user.to_owned(),
                collection: cal.id.clone(),
                seq: st.seq,
                window: (tmin, tmax),
                fields: String::new(),
                full_sync_at: st.now(),
                valid: true,
            };
            let token = st.store_sync_token(point);
            new_cursor(user, fingerprint, items, max, token)
        }
    };
    let paging = st.paging;
    let (page, more) = cut_page(&paging, &mut cursor);
    let cal = st.users[user].calendars[ci].clone();
    let etag = st.new_etag();
    let mut body = json!({
        "kind": "calendar#events",
        "etag": etag,
        "summary": cal.summary_override.clone().unwrap_or(cal.summary.clone()),
        "updated": st.now_rfc3339(),
        "timeZone": cal.time_zone,
        "accessRole": cal.access_role,
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": page,
    });
    if more {
        body["nextPageToken"] = json!(st.store_cursor(cursor));
    } else if let Some(t) = cursor.next_sync_token
        && !has_quirk(st, Quirk::NoCalendarSyncToken)
    {
        body["nextSyncToken"] = json!(t);
    }
    Ok(Resp::json(200, &body))
}

fn new_cursor(
    user: &str,
    fingerprint: String,
    items: Vec<Value>,
    max: usize,
    token: String,
) -> PageCursor {
    PageCursor {
        user: user.to_owned(),
        fingerprint,
        total: items.len(),
        remaining: items,
        page_index: 0,
        page_size: max,
        next_sync_token: Some(token),
    }
}

fn time_param(req: &Req, name: &str) -> Result<Option<DateTime<Utc>>, CalErr> {
    match req.q(name) {
        None => Ok(None),
        Some(s) => parse_instant(s)
            .map(Some)
            .ok_or_else(|| CalErr::bad_request().at("parameter", name)),
    }
}

/// G-CAL-4: `timeMin` bounds the end (exclusive), `timeMax` the start (exclusive).
fn in_window(
    ev: &Map<String, Value>,
    tz: Tz,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> bool {
    if window.0.is_none() && window.1.is_none() {
        return true;
    }
    let overlaps = |start: DateTime<Utc>, end: DateTime<Utc>| {
        window.0.is_none_or(|m| end > m) && window.1.is_none_or(|m| start < m)
    };
    // A series is in the window when one of its occurrences is.
    if ev
        .get("recurrence")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        let horizon = match window {
            (_, Some(max)) => max,
            (Some(min), None) => min + chrono::Duration::days(3 * 366),
            (None, None) => return true,
        };
        return occurrences(ev, tz, horizon)
            .iter()
            .any(|o| overlaps(o.start, o.end));
    }
    let Some((start, end)) = event_bounds(ev, tz) else {
        return true;
    };
    overlaps(start, end)
}
