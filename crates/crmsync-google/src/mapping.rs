//! Google Calendar event resources ⇄ [`Event`].
//!
//! Reading never panics on wire data: a missing or malformed field is an
//! [`ErrorKind::InvalidRecord`](crmsync_core::ErrorKind::InvalidRecord) for that record
//! only. Writing builds only the fields asked for (PATCH), merging `reminders` and
//! `extendedProperties.private` with the current remote value so the user's own entries
//! survive.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use crmsync_core::{
    Birthday, Contact, ContactField, Email, EmailAddress, Error, Event, EventField, EventStatus,
    ImHandle, ItemId, LinkKey, Name, Organization, Period, Phone, PhoneNumber, PostalAddress,
    Recurrence, Result, Rgb, Usage, Version, Zone,
};
use serde_json::{Map, Value, json};

/// The private extended property holding the link key (G-CAL-27: private props are
/// visible only on this calendar's copy).
pub const LINK_PROPERTY: &str = "crmsync_link";
/// The private extended property holding the event's category (Google has none).
pub const CATEGORY_PROPERTY: &str = "crmsync_category";
/// The private extended property marking an event called off but kept (Google's own
/// `cancelled` status is a deletion).
pub const STATUS_PROPERTY: &str = "crmsync_status";

/// Google Calendar's event colours, `colorId` "1" to "11" (G-CAL-33, `GET colors`
/// `event` palette, fixed since 2012). Hard-coded: `colors` needs the full calendar
/// scope, and a no-op sync must not fetch it.
pub const EVENT_PALETTE: [Rgb; 11] = [
    Rgb::new(0xa4, 0xbd, 0xfc),
    Rgb::new(0x7a, 0xe7, 0xbf),
    Rgb::new(0xdb, 0xad, 0xff),
    Rgb::new(0xff, 0x88, 0x7c),
    Rgb::new(0xfb, 0xd7, 0x5b),
    Rgb::new(0xff, 0xb8, 0x78),
    Rgb::new(0x46, 0xd6, 0xdb),
    Rgb::new(0xe1, 0xe1, 0xe1),
    Rgb::new(0x54, 0x84, 0xed),
    Rgb::new(0x51, 0xb7, 0x49),
    Rgb::new(0xdc, 0x21, 0x27),
];

/// The most reminder overrides an event holds (G-CAL-26).
pub const MAX_REMINDERS: usize = 5;
/// The longest reminder, in minutes (four weeks, G-CAL-26).
pub const MAX_REMINDER_MINUTES: u32 = 40320;

/// An event resource read from the wire.
#[derive(Debug, Clone)]
pub(crate) struct WireEvent {
    pub(crate) id: ItemId,
    pub(crate) etag: Version,
    pub(crate) link_key: Option<LinkKey>,
    pub(crate) updated: Option<DateTime<Utc>>,
    pub(crate) record: Event,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::invalid_record(Some(field), why)
}

/// Whether the resource is a tombstone (`status: cancelled`, G-CAL-29).
pub(crate) fn is_cancelled(v: &Value) -> bool {
    text(v, "status") == Some("cancelled")
}

/// The resource's id, when it has a valid one.
pub(crate) fn id_of(v: &Value) -> Option<ItemId> {
    text(v, "id").and_then(|id| ItemId::new(id).ok())
}

/// The private extended properties of a resource.
pub(crate) fn private_properties(v: &Value) -> Map<String, Value> {
    v.get("extendedProperties")
        .and_then(|e| e.get("private"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Reads an event resource. `calendar_zone` is the zone of its calendar, in which a
/// `dateTime` without offset and without `timeZone` is read (see [`needs_calendar_zone`]).
pub(crate) fn event_from_wire(v: &Value, calendar_zone: Option<Zone>) -> Result<WireEvent> {
    if !v.is_object() {
        return Err(Error::invalid_record(
            None,
            "the event is not a JSON object",
        ));
    }
    let id = id_of(v).ok_or_else(|| bad("id", "missing or empty"))?;
    let etag = text(v, "etag")
        .and_then(|e| Version::new(e).ok())
        .ok_or_else(|| bad("etag", "missing or empty"))?;
    let private = private_properties(v);
    let prop = |k: &str| {
        private
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let link_key = prop(LINK_PROPERTY).and_then(|k| LinkKey::new(k).ok());
    let period = period_from_wire(v, calendar_zone)?;
    let mut event = Event::new(text(v, "summary").unwrap_or_default(), period);
    event.location = text(v, "location").unwrap_or_default().to_owned();
    event.description = text(v, "description").unwrap_or_default().to_owned();
    event.private = matches!(text(v, "visibility"), Some("private" | "confidential"));
    event.reminder_minutes = reminder_from_wire(v)?;
    event.colour = match v.get("colorId") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => c
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| EVENT_PALETTE.get(i))
            .copied(),
        Some(_) => return Err(bad("colour", "colorId is not a string")),
    };
    event.category = prop(CATEGORY_PROPERTY).map(str::to_owned);
    event.status = match (text(v, "status"), prop(STATUS_PROPERTY)) {
        (Some("tentative"), _) => EventStatus::Tentative,
        (_, Some("cancelled")) => EventStatus::Cancelled,
        _ => EventStatus::Confirmed,
    };
    event.recurrence = match v.get("recurrence") {
        None | Some(Value::Null) => None,
        Some(Value::Array(lines)) => {
            let rules: Vec<String> = lines
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("recurrence", "a line is not a string"))
                })
                .collect::<Result<_>>()?;
            (!rules.is_empty()).then_some(Recurrence {
                rules,
                exceptions: Vec::new(),
            })
        }
        Some(_) => return Err(bad("recurrence", "not an array")),
    };
    event.series_id = text(v, "recurringEventId").map(str::to_owned);
    event.ical_uid = text(v, "iCalUID").map(str::to_owned);
    let updated = text(v, "updated")
        .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
        .map(|u| u.with_timezone(&Utc));
    Ok(WireEvent {
        id,
        etag,
        link_key,
        updated,
        record: event,
    })
}

/// One `EventDateTime`: a date, or an instant with the zone it is written in.
enum When {
    Date(NaiveDate),
    Instant(DateTime<FixedOffset>, Option<Zone>),
}

/// Whether the `dateTime` of `start` or `end` has no UTC offset and no `timeZone` beside
/// it: such a time is a wall time in the calendar's zone, which the reader must know.
pub(crate) fn needs_calendar_zone(v: &Value) -> bool {
    ["start", "end"].iter().any(|which| {
        v.get(*which).is_some_and(|edt| {
            text(edt, "date").is_none()
                && text(edt, "timeZone").is_none()
                && text(edt, "dateTime").is_some_and(|dt| DateTime::parse_from_rfc3339(dt).is_err())
        })
    })
}

/// The instant a wall time stands for in `zone`, never failing (RFC 5545 §3.3.5, which
/// Google's recurrence rules follow too): a time that occurs twice (the clocks go back) is
/// the first occurrence; a time that does not occur (the clocks go forward) is read with
/// the offset in force before the gap, so 02:30 on the night Paris goes from +01:00 to
/// +02:00 is 01:30 UTC, shown as 03:30.
pub(crate) fn wall_time_in(wall: NaiveDateTime, zone: Zone) -> DateTime<FixedOffset> {
    use chrono::{Offset, TimeZone};
    if let Some(t) = zone.0.from_local_datetime(&wall).earliest() {
        return t.fixed_offset();
    }
    // In a gap: the offset of the last wall time before it. Gaps last at most a day (Samoa
    // skipped 30 December 2011), so stepping back by 15 minutes finds one.
    let offset = (1..=4 * 26)
        .map(|quarters| wall - chrono::Duration::minutes(15 * quarters))
        .find_map(|before| zone.0.from_local_datetime(&before).latest())
        .map_or_else(|| chrono::Utc.fix(), |t| t.offset().fix());
    DateTime::<FixedOffset>::from_naive_utc_and_offset(wall - offset, offset)
}

fn when(v: &Value, which: &str, calendar_zone: Option<Zone>) -> Result<When> {
    let edt = v
        .get(which)
        .filter(|e| e.is_object())
        .ok_or_else(|| bad("period", format!("`{which}` is missing")))?;
    if let Some(d) = text(edt, "date") {
        return NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(When::Date)
            .map_err(|_| bad("period", format!("`{which}.date` {d:?} is not a date")));
    }
    let dt = text(edt, "dateTime")
        .ok_or_else(|| bad("period", format!("`{which}` has neither date nor dateTime")))?;
    let zone = match text(edt, "timeZone") {
        None => None,
        Some(z) => Some(z.parse::<Zone>().map_err(|_| {
            bad(
                "period",
                format!("`{which}.timeZone` {z:?} is not an IANA time zone"),
            )
        })?),
    };
    if let Ok(instant) = DateTime::parse_from_rfc3339(dt) {
        return Ok(When::Instant(instant, zone));
    }
    // No offset: a wall time in `timeZone`, or in the calendar's zone when the event has
    // none ("A time zone offset is required unless a time zone is explicitly specified in
    // timeZone", G-CAL-25).
    let wall = NaiveDateTime::parse_from_str(dt, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
        bad(
            "period",
            format!("`{which}.dateTime` {dt:?} is not an RFC 3339 date and time"),
        )
    })?;
    let zone = zone.or(calendar_zone).ok_or_else(|| {
        bad(
            "period",
            format!(
                "`{which}.dateTime` {dt:?} has no UTC offset, and neither the event nor its \
                 calendar gives a time zone"
            ),
        )
    })?;
    Ok(When::Instant(wall_time_in(wall, zone), Some(zone)))
}

fn period_from_wire(v: &Value, calendar_zone: Option<Zone>) -> Result<Period> {
    match (
        when(v, "start", calendar_zone)?,
        when(v, "end", calendar_zone)?,
    ) {
        // All-day ends are exclusive (G-CAL-25): the one conversion is in the core.
        (When::Date(start), When::Date(end)) => Period::all_day_from_exclusive(start, end),
        (When::Instant(start, zone), When::Instant(end, _)) => {
            // The wall clock in the event's zone; without one, in UTC (the instant is
            // what periods compare).
            let zone = zone.unwrap_or(Zone::UTC);
            let wall = |t: DateTime<FixedOffset>| -> NaiveDateTime {
                t.with_timezone(&zone.0).naive_local()
            };
            Period::timed(wall(start), wall(end), zone)
        }
        _ => Err(bad("period", "one end is a date and the other a time")),
    }
}

/// Our reminder: the shortest popup override (email reminders are the user's own).
/// `useDefault: true` reads as no reminder of ours: the calendar's defaults are not ours.
fn reminder_from_wire(v: &Value) -> Result<Option<u32>> {
    let Some(reminders) = v.get("reminders").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let overrides = match reminders.get("overrides") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(o)) => o,
        Some(_) => return Err(bad("reminder", "overrides is not an array")),
    };
    let mut shortest: Option<u32> = None;
    for o in overrides {
        if text(o, "method") != Some("popup") {
            continue;
        }
        let minutes = o
            .get("minutes")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| bad("reminder", "an override has no minutes"))?;
        shortest = Some(shortest.map_or(minutes, |s| s.min(minutes)));
    }
    Ok(shortest)
}

/// How to write an `EventDateTime` pair. On a PATCH the other form is sent as `null`: a
/// patch cannot leave both `date` and `dateTime` set (G-CAL-25).
fn period_to_wire(period: &Period, patch: bool) -> (Value, Value) {
    match period {
        Period::AllDay { first_day, .. } => {
            let end = period.exclusive_end().unwrap_or(*first_day);
            // A series needs a zone even for dates ("Missing time zone definition for
            // start time.", G-CAL-25); dates are the same days in every zone.
            let edt = |d: NaiveDate| {
                let mut m = json!({ "date": d.format("%Y-%m-%d").to_string(), "timeZone": "UTC" });
                if patch {
                    m["dateTime"] = Value::Null;
                }
                m
            };
            (edt(*first_day), edt(end))
        }
        Period::Timed { start, end, zone } => {
            // Wall clock plus IANA zone: Google needs the zone for series (G-CAL-25).
            let edt = |t: &NaiveDateTime| {
                let mut m = json!({
                    "dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "timeZone": zone.name(),
                });
                if patch {
                    m["date"] = Value::Null;
                }
                m
            };
            (edt(start), edt(end))
        }
    }
}

/// The nearest palette colour's `colorId`.
pub(crate) fn colour_id(colour: Rgb) -> Option<String> {
    crmsync_core::colour::nearest_index(colour, &EVENT_PALETTE).map(|i| (i + 1).to_string())
}

/// Builds an event body: every field for a create (`fields: None`), only `fields` for a
/// PATCH. `current` is the remote resource the patch applies to, whose `reminders` and
/// private extended properties are merged with ours.
pub(crate) fn event_to_wire(
    event: &Event,
    fields: Option<&BTreeSet<EventField>>,
    current: Option<&Value>,
    link_key: Option<&LinkKey>,
) -> Value {
    let patch = fields.is_some();
    let wants = |f: EventField| fields.is_none_or(|set| set.contains(&f));
    let mut body = Map::new();
    let mut private = current.map(private_properties).unwrap_or_default();
    let private_before = private.clone();
    if let Some(key) = link_key {
        private.insert(LINK_PROPERTY.into(), json!(key.as_str()));
    }
    if wants(EventField::Title) {
        body.insert("summary".into(), json!(event.title));
    }
    if wants(EventField::Location) {
        body.insert("location".into(), json!(event.location));
    }
    if wants(EventField::Description) {
        body.insert("description".into(), json!(event.description));
    }
    if wants(EventField::Period) {
        let (start, end) = period_to_wire(&event.period, patch);
        body.insert("start".into(), start);
        body.insert("end".into(), end);
    }
    if wants(EventField::Private) {
        let visibility = if event.private { "private" } else { "default" };
        body.insert("visibility".into(), json!(visibility));
    }
    if wants(EventField::Reminder) {
        // Always both keys (G-CAL-26); the user's email reminders are kept, our popup
        // replaces the popups.
        let mut overrides: Vec<Value> = current
            .and_then(|c| c.get("reminders"))
            .and_then(|r| r.get("overrides"))
            .and_then(Value::as_array)
            .map(|o| {
                o.iter()
                    .filter(|x| text(x, "method").is_some_and(|m| m != "popup"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // At most five overrides (G-CAL-26): room for ours is made by dropping the user's
        // last ones (Google returns them sorted by minutes: the longest go).
        let room = MAX_REMINDERS - usize::from(event.reminder_minutes.is_some());
        overrides.truncate(room);
        if let Some(minutes) = event.reminder_minutes {
            overrides
                .push(json!({"method": "popup", "minutes": minutes.min(MAX_REMINDER_MINUTES)}));
        }
        body.insert(
            "reminders".into(),
            json!({"useDefault": false, "overrides": overrides}),
        );
    }
    if wants(EventField::Colour) {
        match event.colour.and_then(colour_id) {
            Some(id) => {
                body.insert("colorId".into(), json!(id));
            }
            None if patch => {
                body.insert("colorId".into(), Value::Null);
            }
            None => {}
        }
        let category = event.category.as_deref().map(str::trim).unwrap_or("");
        // An emptied category is written as "" rather than removed: whether a PATCH
        // replaces or merges the map is not documented (G-CAL-27).
        if !category.is_empty() || private.contains_key(CATEGORY_PROPERTY) {
            private.insert(CATEGORY_PROPERTY.into(), json!(category));
        }
    }
    if wants(EventField::Status) {
        let (status, mark) = match event.status {
            EventStatus::Confirmed => ("confirmed", ""),
            EventStatus::Tentative => ("tentative", ""),
            EventStatus::Cancelled => ("confirmed", "cancelled"),
        };
        body.insert("status".into(), json!(status));
        if !mark.is_empty() || private.contains_key(STATUS_PROPERTY) {
            private.insert(STATUS_PROPERTY.into(), json!(mark));
        }
    }
    if wants(EventField::Recurrence) {
        match event.recurrence.as_ref().filter(|r| !r.rules.is_empty()) {
            Some(r) => {
                let lines: Vec<&str> = r
                    .rules
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .collect();
                body.insert("recurrence".into(), json!(lines));
            }
            None if patch => {
                body.insert("recurrence".into(), Value::Null);
            }
            None => {}
        }
    }
    if !patch || private != private_before {
        // The whole private map: ours merged into the user's (G-CAL-27).
        body.insert("extendedProperties".into(), json!({ "private": private }));
    }
    Value::Object(body)
}

/// The client-chosen id of the copy of `link_key` (G-CAL-22): base32hex (`0-9a-v`) of
/// the SHA-256 of the key, so a retried create hits the same id and answers 409.
/// `generation` moves on when an earlier copy was deleted (its tombstone keeps the id).
pub(crate) fn event_id_for(link_key: &LinkKey, generation: u32) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut hasher = Sha256::new();
    hasher.update(b"crmsync event id\0");
    hasher.update(link_key.as_str().as_bytes());
    if generation > 0 {
        hasher.update(generation.to_be_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(52);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in digest {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

// ---------------------------------------------------------------------------------------
// People API persons ⇄ Contact
// ---------------------------------------------------------------------------------------

/// The `clientData` key holding the link key (G-PPL-18).
pub const CONTACT_LINK_KEY: &str = "crmsync_link";

/// The person fields read (`personFields`, `readMask`).
pub(crate) const PERSON_FIELDS: &str = "names,emailAddresses,phoneNumbers,addresses,organizations,biographies,birthdays,imClients,memberships,clientData,photos,metadata";

/// Contact groups every account has (`groupType: SYSTEM_CONTACT_GROUP`): never one of
/// the contact's groups in our model.
pub(crate) fn is_system_group(resource_name: &str) -> bool {
    matches!(
        resource_name.trim_start_matches("contactGroups/"),
        "myContacts"
            | "starred"
            | "friends"
            | "family"
            | "coworkers"
            | "chatBuddies"
            | "all"
            | "blocked"
    )
}

/// A person read from the wire.
#[derive(Debug, Clone)]
pub(crate) struct WirePerson {
    pub(crate) id: ItemId,
    pub(crate) etag: Version,
    pub(crate) link_key: Option<LinkKey>,
    pub(crate) updated: Option<DateTime<Utc>>,
    pub(crate) record: Contact,
    /// The user groups the person belongs to, by resource name.
    pub(crate) group_resources: Vec<String>,
    /// The system groups the person belongs to (`contactGroups/myContacts`, …).
    pub(crate) system_groups: Vec<String>,
    /// The URL of the person's own photo (not Google's generated monogram). Its bytes are
    /// not read (the URL serves a resized copy, never the bytes written), so such a
    /// person's [`Contact::photo`] is unknown unless the store wrote it.
    pub(crate) photo_url: Option<String>,
    /// The person's former resource names (`metadata.previousResourceNames`, G-PPL-4).
    pub(crate) previous: Vec<ItemId>,
}

/// Whether the person is a deletion tombstone (`metadata.deleted`, G-PPL-4).
pub(crate) fn person_deleted(v: &Value) -> bool {
    v.pointer("/metadata/deleted").and_then(Value::as_bool) == Some(true)
}

/// The person's resource name, when valid.
pub(crate) fn person_id(v: &Value) -> Option<ItemId> {
    text(v, "resourceName")
        .filter(|r| r.starts_with("people/"))
        .and_then(|r| ItemId::new(r).ok())
}

fn items<'a>(v: &'a Value, key: &str) -> Result<&'a [Value]> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Error::invalid_record(Some(key), "not an array")),
    }
}

fn usage_from(kind: Option<&str>) -> Usage {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("work") => Usage::Work,
        Some("home") => Usage::Home,
        Some("mobile" | "workmobile") => Usage::Mobile,
        Some("workfax" | "homefax" | "otherfax") => Usage::Fax,
        _ => Usage::Other,
    }
}

fn email_type(usage: Usage) -> &'static str {
    match usage {
        Usage::Work => "work",
        Usage::Home => "home",
        _ => "other",
    }
}

fn phone_type(usage: Usage) -> &'static str {
    match usage {
        Usage::Work => "work",
        Usage::Home => "home",
        Usage::Mobile => "mobile",
        Usage::Fax => "workFax",
        Usage::Other => "other",
    }
}

/// Reads a person. `metadata` and output-only fields (`displayName`, `formattedType`,
/// `canonicalForm`) are never part of the record (G-PPL-17), but the display name we
/// wrote is read back from `names[0].unstructuredName`.
pub(crate) fn contact_from_wire(v: &Value) -> Result<WirePerson> {
    if !v.is_object() {
        return Err(Error::invalid_record(
            None,
            "the person is not a JSON object",
        ));
    }
    let id = person_id(v).ok_or_else(|| bad("resource_name", "missing or not people/…"))?;
    let etag = text(v, "etag")
        .and_then(|e| Version::new(e).ok())
        .ok_or_else(|| bad("etag", "missing or empty"))?;
    let mut contact = Contact::default();
    if let Some(n) = items(v, "names")?.first() {
        let part = |k: &str| text(n, k).unwrap_or_default().to_owned();
        contact.name = Name {
            prefix: part("honorificPrefix"),
            given: part("givenName"),
            middle: part("middleName"),
            family: part("familyName"),
            suffix: part("honorificSuffix"),
        };
        contact.display_name = text(n, "unstructuredName")
            .filter(|s| !s.trim().is_empty())
            .or_else(|| text(n, "displayName"))
            .unwrap_or_default()
            .to_owned();
    }
    for e in items(v, "emailAddresses")? {
        let Some(value) = text(e, "value").filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        let address = EmailAddress::new(value)
            .map_err(|_| bad("emails", format!("{value:?} is not an e-mail address")))?;
        contact.emails.push(Email {
            address,
            usage: usage_from(text(e, "type")),
        });
    }
    for p in items(v, "phoneNumbers")? {
        let Some(value) = text(p, "value").filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        let number = PhoneNumber::new(value)
            .map_err(|_| bad("phones", format!("{value:?} is not a phone number")))?;
        contact.phones.push(Phone {
            number,
            usage: usage_from(text(p, "type")),
        });
    }
    for a in items(v, "addresses")? {
        let part = |k: &str| text(a, k).unwrap_or_default().to_owned();
        contact.addresses.push(PostalAddress {
            lines: part("streetAddress")
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.trim().is_empty())
                .collect(),
            postal_code: part("postalCode"),
            city: part("city"),
            region: part("region"),
            country: part("country"),
            usage: usage_from(text(a, "type")),
        });
    }
    if let Some(o) = items(v, "organizations")?.first() {
        contact.organization = Organization {
            company: text(o, "name").unwrap_or_default().to_owned(),
            job_title: text(o, "title").unwrap_or_default().to_owned(),
        };
    }
    if let Some(b) = items(v, "biographies")?.first() {
        contact.notes = text(b, "value").unwrap_or_default().to_owned();
    }
    if let Some(b) = items(v, "birthdays")?.first()
        && let Some(date) = b.get("date").filter(|d| d.is_object())
    {
        let num = |k: &str| date.get(k).and_then(Value::as_i64).unwrap_or(0);
        let year = i32::try_from(num("year")).ok().filter(|y| *y > 0);
        let (month, day) = (num("month"), num("day"));
        contact.birthday = Some(
            Birthday::new(
                year,
                u32::try_from(month).unwrap_or(0),
                u32::try_from(day).unwrap_or(0),
            )
            .map_err(|_| bad("birthday", format!("{month}-{day} is not a date")))?,
        );
    }
    for im in items(v, "imClients")? {
        let Some(handle) = text(im, "username").filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        contact.im.push(ImHandle {
            service: text(im, "protocol").unwrap_or_default().to_owned(),
            handle: handle.to_owned(),
        });
    }
    let (mut group_resources, mut system_groups) = (Vec::new(), Vec::new());
    for m in items(v, "memberships")? {
        if let Some(rn) = m
            .pointer("/contactGroupMembership/contactGroupResourceName")
            .and_then(Value::as_str)
        {
            if is_system_group(rn) {
                system_groups.push(rn.to_owned());
            } else {
                group_resources.push(rn.to_owned());
            }
        }
    }
    let link_key = items(v, "clientData")?
        .iter()
        .find(|c| text(c, "key") == Some(CONTACT_LINK_KEY))
        .and_then(|c| text(c, "value"))
        .and_then(|k| LinkKey::new(k).ok());
    let photo_url = items(v, "photos")?
        .iter()
        .find(|p| p.get("default").and_then(Value::as_bool) != Some(true))
        .map(|p| text(p, "url").unwrap_or_default().to_owned());
    let previous = match v.pointer("/metadata/previousResourceNames") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| r.starts_with("people/"))
            .filter_map(|r| ItemId::new(r).ok())
            .collect(),
        Some(_) => {
            return Err(bad(
                "resource_name",
                "previousResourceNames is not an array",
            ));
        }
    };
    let updated = v
        .pointer("/metadata/sources/0/updateTime")
        .and_then(Value::as_str)
        .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
        .map(|u| u.with_timezone(&Utc));
    Ok(WirePerson {
        id,
        etag,
        link_key,
        updated,
        record: contact,
        group_resources,
        system_groups,
        photo_url,
        previous,
    })
}

/// The person fields (`updatePersonFields` paths) a contact field is written to.
pub(crate) fn person_field(field: ContactField) -> Option<&'static str> {
    match field {
        ContactField::DisplayName | ContactField::Name => Some("names"),
        ContactField::Emails => Some("emailAddresses"),
        ContactField::Phones => Some("phoneNumbers"),
        ContactField::Addresses => Some("addresses"),
        ContactField::Organization => Some("organizations"),
        ContactField::Notes => Some("biographies"),
        ContactField::Birthday => Some("birthdays"),
        ContactField::InstantMessaging => Some("imClients"),
        ContactField::Groups => Some("memberships"),
        // Photos are read-only on a person: updateContactPhoto / deleteContactPhoto
        // (G-PPL-16).
        ContactField::Photo => None,
    }
}

/// Builds a person body: every field for a create (`fields: None`), else the person
/// fields that `fields` map to, wholesale (G-PPL-11). `current` supplies what a partial
/// write of `names` keeps (the display name, or the name parts). `groups` are the
/// resource names of the contact's groups.
pub(crate) fn contact_to_wire(
    contact: &Contact,
    fields: Option<&BTreeSet<ContactField>>,
    current: Option<&Contact>,
    groups: &[String],
    link_key: Option<&LinkKey>,
) -> Map<String, Value> {
    let wants = |f: ContactField| fields.is_none_or(|set| set.contains(&f));
    let mut body = Map::new();
    if wants(ContactField::Name) || wants(ContactField::DisplayName) {
        let source = |f: ContactField| match current {
            Some(c) if !wants(f) => c,
            _ => contact,
        };
        let name = &source(ContactField::Name).name;
        let display = &source(ContactField::DisplayName).display_name;
        let mut n = Map::new();
        for (k, v) in [
            ("honorificPrefix", &name.prefix),
            ("givenName", &name.given),
            ("middleName", &name.middle),
            ("familyName", &name.family),
            ("honorificSuffix", &name.suffix),
            ("unstructuredName", display),
        ] {
            if !v.trim().is_empty() {
                n.insert(k.into(), json!(v));
            }
        }
        body.insert(
            "names".into(),
            if n.is_empty() { json!([]) } else { json!([n]) },
        );
    }
    if wants(ContactField::Emails) {
        let v: Vec<Value> = contact
            .emails
            .iter()
            .map(|e| json!({"value": e.address.as_str(), "type": email_type(e.usage)}))
            .collect();
        body.insert("emailAddresses".into(), json!(v));
    }
    if wants(ContactField::Phones) {
        let v: Vec<Value> = contact
            .phones
            .iter()
            .map(|p| json!({"value": p.number.as_str(), "type": phone_type(p.usage)}))
            .collect();
        body.insert("phoneNumbers".into(), json!(v));
    }
    if wants(ContactField::Addresses) {
        let v: Vec<Value> = contact
            .addresses
            .iter()
            .map(|a| {
                json!({
                    "streetAddress": a.lines.join("\n"),
                    "postalCode": a.postal_code,
                    "city": a.city,
                    "region": a.region,
                    "country": a.country,
                    "type": email_type(a.usage),
                })
            })
            .collect();
        body.insert("addresses".into(), json!(v));
    }
    if wants(ContactField::Organization) {
        let o = &contact.organization;
        let v = if o.company.trim().is_empty() && o.job_title.trim().is_empty() {
            json!([])
        } else {
            json!([{"name": o.company, "title": o.job_title}])
        };
        body.insert("organizations".into(), v);
    }
    if wants(ContactField::Notes) {
        let v = if contact.notes.trim().is_empty() {
            json!([])
        } else {
            json!([{"value": contact.notes, "contentType": "TEXT_PLAIN"}])
        };
        body.insert("biographies".into(), v);
    }
    if wants(ContactField::Birthday) {
        // "Clients should always set the date field when mutating birthdays".
        let v = match contact.birthday {
            Some(b) => {
                let mut date = json!({"month": b.month(), "day": b.day()});
                if let Some(y) = b.year() {
                    date["year"] = json!(y);
                }
                json!([{ "date": date }])
            }
            None => json!([]),
        };
        body.insert("birthdays".into(), v);
    }
    if wants(ContactField::InstantMessaging) {
        let v: Vec<Value> = contact
            .im
            .iter()
            .map(|im| json!({"username": im.handle, "protocol": im.service}))
            .collect();
        body.insert("imClients".into(), json!(v));
    }
    if wants(ContactField::Groups) {
        // Every contact stays in "My contacts" (G-PPL-13: at least one membership).
        let mut v = vec![
            json!({"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}),
        ];
        v.extend(
            groups
                .iter()
                .map(|rn| json!({"contactGroupMembership": {"contactGroupResourceName": rn}})),
        );
        body.insert("memberships".into(), json!(v));
    }
    if let Some(key) = link_key {
        body.insert(
            "clientData".into(),
            json!([{"key": CONTACT_LINK_KEY, "value": key.as_str()}]),
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).expect("date")
    }

    #[test]
    fn all_day_end_is_exclusive_on_the_wire() {
        let event = Event::new("x", Period::all_day(d(1, 6), d(1, 6)).expect("period"));
        let body = event_to_wire(&event, None, None, None);
        assert_eq!(
            body["start"],
            json!({"date": "2026-01-06", "timeZone": "UTC"})
        );
        assert_eq!(
            body["end"],
            json!({"date": "2026-01-07", "timeZone": "UTC"})
        );
        let mut wire = body.clone();
        wire["id"] = json!("abcde");
        wire["etag"] = json!("\"1\"");
        let back = event_from_wire(&wire, None).expect("read");
        assert_eq!(back.record.period, event.period);
    }

    #[test]
    fn timed_events_keep_their_zone() {
        let wire = json!({
            "id": "abcde", "etag": "\"1\"", "summary": "Call",
            "start": {"dateTime": "2026-03-01T10:00:00+01:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-01T11:00:00+01:00", "timeZone": "America/New_York"},
        });
        let e = event_from_wire(&wire, None).expect("read").record;
        let Period::Timed { start, zone, .. } = e.period else {
            panic!("timed expected")
        };
        assert_eq!(zone.name(), "America/New_York");
        assert_eq!(start.format("%H:%M").to_string(), "04:00");
    }

    fn wall(day: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        day.and_hms_opt(h, m, 0).expect("time")
    }

    #[test]
    fn offsetless_date_times_are_wall_times_in_their_zone() {
        let paris: Zone = "Europe/Paris".parse().expect("zone");
        let start = wall(d(6, 20), 10, 0);
        let event = Event::new(
            "Call",
            Period::timed(start, wall(d(6, 20), 11, 0), paris).expect("period"),
        );
        // The form crmsync sends, echoed as it was sent: the same period.
        let mut echo = event_to_wire(&event, None, None, None);
        echo["id"] = json!("abcde");
        echo["etag"] = json!("\"1\"");
        assert_eq!(
            echo["start"],
            json!({"dateTime": "2026-06-20T10:00:00", "timeZone": "Europe/Paris"})
        );
        assert!(!needs_calendar_zone(&echo));
        let back = event_from_wire(&echo, None).expect("read").record;
        assert_eq!(back.period, event.period);

        // Without `timeZone`: the calendar's zone.
        let bare = json!({"id": "abcde", "etag": "\"1\"",
            "start": {"dateTime": "2026-06-20T10:00:00"},
            "end": {"dateTime": "2026-06-20T11:00:00.000"}});
        assert!(needs_calendar_zone(&bare));
        let new_york: Zone = "America/New_York".parse().expect("zone");
        let back = event_from_wire(&bare, Some(new_york)).expect("read").record;
        assert_eq!(
            back.period,
            Period::timed(start, wall(d(6, 20), 11, 0), new_york).expect("period")
        );
        // Without it and without the calendar's: a record error, never a guess.
        let e = event_from_wire(&bare, None).expect_err("no zone");
        assert!(
            matches!(e.kind(), crmsync_core::ErrorKind::InvalidRecord { .. }),
            "{e}"
        );
        // A zone given beside an offset-less time wins over the calendar's.
        let mut zoned = bare.clone();
        zoned["start"]["timeZone"] = json!("Europe/Paris");
        zoned["end"]["timeZone"] = json!("Europe/Paris");
        assert!(!needs_calendar_zone(&zoned));
        let back = event_from_wire(&zoned, Some(new_york))
            .expect("read")
            .record;
        assert_eq!(back.period, event.period);
    }

    #[test]
    fn skipped_and_repeated_wall_times_resolve_as_rfc_5545_says() {
        let paris: Zone = "Europe/Paris".parse().expect("zone");
        let utc = |t: DateTime<FixedOffset>| t.with_timezone(&Utc).naive_utc();
        // 29 March 2026, 02:00 → 03:00: 02:30 does not exist. Read with the offset before
        // the gap (+01:00): 01:30 UTC, which Paris shows as 03:30.
        let gap = wall(d(3, 29), 2, 30);
        assert_eq!(utc(wall_time_in(gap, paris)), wall(d(3, 29), 1, 30));
        // 25 October 2026, 03:00 → 02:00: 02:30 happens twice. The first one (+02:00).
        let twice = wall(d(10, 25), 2, 30);
        assert_eq!(utc(wall_time_in(twice, paris)), wall(d(10, 25), 0, 30));
        // Neither fails a record: the event reads, and reads the same every time.
        let wire = json!({"id": "abcde", "etag": "\"1\"",
            "start": {"dateTime": "2026-03-29T02:30:00", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2026-03-29T03:30:00", "timeZone": "Europe/Paris"}});
        let first = event_from_wire(&wire, None).expect("read").record.period;
        let Period::Timed { start, end, zone } = first.clone() else {
            panic!("timed expected")
        };
        assert_eq!(
            (start, end, zone),
            (wall(d(3, 29), 3, 30), wall(d(3, 29), 3, 30), paris)
        );
        assert_eq!(
            event_from_wire(&wire, None).expect("read").record.period,
            first
        );
        // A zone whose gap is a whole day (Samoa, 30 December 2011) resolves too.
        let apia: Zone = "Pacific/Apia".parse().expect("zone");
        let skipped = NaiveDate::from_ymd_opt(2011, 12, 30).expect("date");
        let t = wall_time_in(wall(skipped, 12, 0), apia);
        assert_eq!(t.offset().local_minus_utc(), -10 * 3600);
    }

    #[test]
    fn malformed_resources_are_invalid_records() {
        for wire in [
            json!({"id": "abcde", "etag": "\"1\""}),
            json!({"id": "abcde", "etag": "\"1\"", "start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}}),
            json!({"id": "abcde", "etag": "\"1\"", "start": {"dateTime": "2026-02-01T10:00:00Z", "timeZone": "Mars/Base"}, "end": {"dateTime": "2026-02-01T11:00:00Z"}}),
            json!({"id": "abcde", "etag": "\"1\"", "start": {"date": "2026-03-02"}, "end": {"date": "2026-03-01"}}),
            json!({"id": "abcde", "etag": "\"1\"", "start": {"dateTime": "2026-02-30T10:00:00", "timeZone": "Europe/Paris"}, "end": {"dateTime": "2026-03-01T11:00:00", "timeZone": "Europe/Paris"}}),
            json!([1, 2]),
        ] {
            let e = event_from_wire(&wire, Some(Zone::UTC)).expect_err("must fail");
            assert!(
                matches!(e.kind(), crmsync_core::ErrorKind::InvalidRecord { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn reminders_keep_the_users_email_reminders() {
        let current = json!({"reminders": {"useDefault": false, "overrides": [
            {"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 30}]},
            "extendedProperties": {"private": {"mine": "1"}}});
        let mut event = Event::new("x", Period::all_day(d(1, 6), d(1, 6)).expect("period"));
        event.reminder_minutes = Some(10);
        event.category = Some("Call".into());
        let fields = [EventField::Reminder, EventField::Colour]
            .into_iter()
            .collect();
        let body = event_to_wire(&event, Some(&fields), Some(&current), None);
        assert_eq!(
            body["reminders"],
            json!({"useDefault": false, "overrides": [
                {"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}]})
        );
        assert_eq!(body["extendedProperties"]["private"]["mine"], "1");
        assert_eq!(
            body["extendedProperties"]["private"][CATEGORY_PROPERTY],
            "Call"
        );
        assert!(body.get("summary").is_none());
    }

    #[test]
    fn ids_are_base32hex_and_deterministic() {
        let key = LinkKey::new("crm-42").expect("key");
        let id = event_id_for(&key, 0);
        assert_eq!(id, event_id_for(&key, 0));
        assert_ne!(id, event_id_for(&key, 1));
        assert!(id.len() >= 5 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='v')));
    }

    #[test]
    fn persons_round_trip() {
        let mut c = Contact::new("Dr Ann Lee (Acme)")
            .with_email("ann@example.com", Usage::Work)
            .expect("email")
            .with_phone("+33 1 23 45 67 89", Usage::Mobile)
            .expect("phone");
        c.name.given = "Ann".into();
        c.name.family = "Lee".into();
        c.addresses.push(PostalAddress {
            lines: vec!["1 Main St".into(), "Floor 2".into()],
            postal_code: "75001".into(),
            city: "Paris".into(),
            region: String::new(),
            country: "France".into(),
            usage: Usage::Home,
        });
        c.birthday = Some(Birthday::new(None, 2, 29).expect("birthday"));
        c.notes = "Met at the fair".into();
        let key = LinkKey::new("crm-1").expect("key");
        let mut body = Value::Object(contact_to_wire(&c, None, None, &[], Some(&key)));
        body["resourceName"] = json!("people/c1");
        body["etag"] = json!("%E1");
        let back = contact_from_wire(&body).expect("read");
        assert_eq!(back.record, c);
        assert_eq!(back.link_key, Some(key));
        // A partial write of the name keeps the display name we hold for it.
        let fields = [ContactField::Name].into_iter().collect();
        let partial = contact_to_wire(&Contact::new("other"), Some(&fields), Some(&c), &[], None);
        assert_eq!(partial["names"][0]["unstructuredName"], "Dr Ann Lee (Acme)");
        assert!(partial.get("emailAddresses").is_none());
        // Malformed data is a typed per-record error.
        let bad = json!({"resourceName": "people/c2", "etag": "x", "birthdays": [{"date": {"month": 2, "day": 31}}]});
        assert!(contact_from_wire(&bad).is_err());
        assert!(contact_from_wire(&json!({"etag": "x"})).is_err());
    }

    #[test]
    fn persons_say_whose_photo_and_former_names_they_have() {
        let own = json!({"resourceName": "people/c2", "etag": "e",
            "photos": [{"url": "https://lh3.example/p", "metadata": {"primary": true}}],
            "metadata": {"previousResourceNames": ["people/c1", "not-a-person"]}});
        let wire = contact_from_wire(&own).expect("read");
        assert_eq!(wire.photo_url.as_deref(), Some("https://lh3.example/p"));
        assert_eq!(wire.previous, [ItemId::new("people/c1").expect("id")]);
        assert_eq!(wire.record.photo, None);
        let monogram = json!({"resourceName": "people/c3", "etag": "e",
            "photos": [{"url": "https://lh3.example/m", "default": true}]});
        let wire = contact_from_wire(&monogram).expect("read");
        assert_eq!(wire.photo_url, None);
        assert!(wire.previous.is_empty());
        let bad = json!({"resourceName": "people/c4", "etag": "e",
            "metadata": {"previousResourceNames": "people/c1"}});
        assert!(contact_from_wire(&bad).is_err());
        // Photos are not a person field: updateContactPhoto writes them.
        assert_eq!(person_field(ContactField::Photo), None);
        assert!(PERSON_FIELDS.split(',').any(|f| f == "photos"));
    }

    #[test]
    fn colours_snap_to_the_palette() {
        assert_eq!(colour_id(Rgb::new(0xdc, 0x21, 0x27)).as_deref(), Some("11"));
        assert_eq!(colour_id(Rgb::new(0xa4, 0xbd, 0xfc)).as_deref(), Some("1"));
    }
}
