//! Wire ⇄ model: Graph `event` JSON and [`Event`].
//!
//! Times are read in UTC (every request sends `Prefer: outlook.timezone="UTC"`) and turned
//! back into the event's own zone, `originalStartTimeZone`, a Windows zone name mapped to
//! IANA with the `windows-timezones` crate (an IANA name or `UTC` is accepted as well).
//! All-day events start and end at midnight, the end exclusive. One reminder
//! (`isReminderOn`, `reminderMinutesBeforeStart`); `sensitivity` `private` or `normal`;
//! `showAs` `tentative` for a tentative event, `isCancelled` for a cancelled one; the body
//! written as text and read back as text (HTML converted by
//! [`crmsync_core::normalize::text`]). The colour and category are read from the
//! `categories` of ours ([`crate::categories`]); writing them needs the event's current
//! categories, so the store does it. A series master's `recurrence` reads as RRULE lines
//! ([`recurrence_from_graph`]); an occurrence or exception carries its `seriesMasterId`.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use crmsync_core::model::{Event, EventField, EventStatus, Period, Recurrence, Zone};
use crmsync_core::{Error, Result};
use serde_json::{Map, Value, json};
use windows_timezones::WindowsTimezone;

/// The wire format of Graph's `dateTimeTimeZone.dateTime` when written.
const WIRE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The IANA zone of a Graph zone name: a Windows name (`Romance Standard Time`), `UTC`, or
/// an IANA name.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crmsync_core::ErrorKind::InvalidRecord) for a name that is
/// none of those.
pub fn zone_from_graph(name: &str) -> Result<Zone> {
    if name.eq_ignore_ascii_case("UTC") || name.is_empty() {
        return Ok(Zone::UTC);
    }
    if let Ok(windows) = WindowsTimezone::from_str(name) {
        return Ok(Zone(chrono_tz::Tz::from(windows)));
    }
    chrono_tz::Tz::from_str(name)
        .map(Zone)
        .map_err(|_| Error::invalid_record(Some("period"), format!("unknown time zone `{name}`")))
}

/// The Windows name of a zone, or its IANA name when Windows has none (Graph accepts both).
pub fn zone_to_graph(zone: &Zone) -> String {
    if zone.0 == chrono_tz::UTC {
        return "UTC".to_owned();
    }
    match WindowsTimezone::try_from(zone.0) {
        Ok(windows) => windows.name().to_owned(),
        Err(_) => zone.name().to_owned(),
    }
}

fn parse_wire(text: &str) -> Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|e| Error::invalid_record(Some("period"), format!("bad date-time `{text}`: {e}")))
}

fn date_time_of(value: &Value, key: &str) -> Result<NaiveDateTime> {
    let text = value
        .get(key)
        .and_then(|v| v.get("dateTime"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_record(Some("period"), format!("`{key}` has no dateTime")))?;
    parse_wire(text)
}

fn zone_of(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(|v| v.get("timeZone"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The period of a Graph event read with `outlook.timezone="UTC"`.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crmsync_core::ErrorKind::InvalidRecord) for missing or
/// impossible times, an unknown zone, an all-day event not at midnight.
pub fn period_from_graph(value: &Value) -> Result<Period> {
    let start = date_time_of(value, "start")?;
    let end = date_time_of(value, "end")?;
    if value
        .get("isAllDay")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let midnight = |t: NaiveDateTime| t.time() == chrono::NaiveTime::MIN;
        if !midnight(start) || !midnight(end) {
            return Err(Error::invalid_record(
                Some("period"),
                "an all-day event must start and end at midnight",
            ));
        }
        return Period::all_day_from_exclusive(start.date(), end.date());
    }
    // Times come in the zone the request preferred (UTC); the event's own zone is
    // `originalStartTimeZone`.
    let wire_zone = zone_from_graph(&zone_of(value, "start").unwrap_or_default())?;
    let zone = match value.get("originalStartTimeZone").and_then(Value::as_str) {
        Some(name) => zone_from_graph(name)?,
        None => wire_zone,
    };
    let local = |t: NaiveDateTime| -> Result<NaiveDateTime> {
        let instant = wire_zone
            .0
            .from_local_datetime(&t)
            .single()
            .ok_or_else(|| {
                Error::invalid_record(Some("period"), format!("`{t}` does not exist"))
            })?;
        Ok(instant.with_timezone(&zone.0).naive_local())
    };
    Ok(Period::Timed {
        start: local(start)?,
        end: local(end)?,
        zone,
    })
}

/// The `start`, `end` and `isAllDay` of a period.
pub fn period_to_graph(period: &Period, out: &mut Map<String, Value>) {
    match period {
        Period::AllDay { first_day, .. } => {
            let end = period.exclusive_end().unwrap_or(*first_day);
            let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN);
            out.insert(
                "start".into(),
                json!({"dateTime": midnight(*first_day).format(WIRE_FORMAT).to_string(), "timeZone": "UTC"}),
            );
            out.insert(
                "end".into(),
                json!({"dateTime": midnight(end).format(WIRE_FORMAT).to_string(), "timeZone": "UTC"}),
            );
            out.insert("isAllDay".into(), json!(true));
        }
        Period::Timed { start, end, zone } => {
            let zone = zone_to_graph(zone);
            out.insert(
                "start".into(),
                json!({"dateTime": start.format(WIRE_FORMAT).to_string(), "timeZone": zone}),
            );
            out.insert(
                "end".into(),
                json!({"dateTime": end.format(WIRE_FORMAT).to_string(), "timeZone": zone}),
            );
            out.insert("isAllDay".into(), json!(false));
        }
    }
}

/// The fields of an event a Graph object carries (a delta update may carry only some).
pub fn fields_present(value: &Value) -> BTreeSet<EventField> {
    let has = |k: &str| value.get(k).is_some();
    let mut fields = BTreeSet::new();
    if has("subject") {
        fields.insert(EventField::Title);
    }
    if has("location") {
        fields.insert(EventField::Location);
    }
    if has("start") && has("end") {
        fields.insert(EventField::Period);
    }
    if has("sensitivity") {
        fields.insert(EventField::Private);
    }
    if has("isReminderOn") {
        fields.insert(EventField::Reminder);
    }
    if has("body") {
        fields.insert(EventField::Description);
    }
    if has("categories") {
        fields.insert(EventField::Colour);
    }
    if has("recurrence") {
        fields.insert(EventField::Recurrence);
    }
    if has("showAs") || has("isCancelled") {
        fields.insert(EventField::Status);
    }
    fields
}

/// The event of a Graph object; fields it does not carry keep [`Event::new`]'s values
/// (a partial object's missing period is the Unix epoch's day).
///
/// # Errors
/// As [`period_from_graph`] when the object carries a period.
pub fn event_from_graph(value: &Value) -> Result<Event> {
    let text = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let period = if value.get("start").is_some() && value.get("end").is_some() {
        period_from_graph(value)?
    } else {
        Period::AllDay {
            first_day: NaiveDate::default(),
            last_day: NaiveDate::default(),
        }
    };
    let mut event = Event::new(text("subject"), period);
    event.location = value
        .get("location")
        .and_then(|l| l.get("displayName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    event.private = matches!(
        value.get("sensitivity").and_then(Value::as_str),
        Some("private" | "confidential")
    );
    event.reminder_minutes = if value.get("isReminderOn").and_then(Value::as_bool) == Some(true) {
        value
            .get("reminderMinutesBeforeStart")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
    } else {
        None
    };
    event.description = value
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
        .map(crmsync_core::normalize::text)
        .unwrap_or_default();
    event.status = if value.get("isCancelled").and_then(Value::as_bool) == Some(true) {
        EventStatus::Cancelled
    } else if value.get("showAs").and_then(Value::as_str) == Some("tentative") {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    };
    let (colour, category) = crate::categories::read(&crate::categories::of_event(value));
    event.colour = colour;
    event.category = category;
    event.recurrence = recurrence_from_graph(value);
    event.series_id = value
        .get("seriesMasterId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    event.ical_uid = value
        .get("iCalUId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(event)
}

/// The Graph properties of `fields` of an event (all of them for a create). Colour
/// (`categories`, merged with the event's current ones by the store) and recurrence (not
/// in the store's capabilities) are not written here; a cancelled status is written as
/// busy, since `isCancelled` is read-only (cancel by deleting).
pub fn event_to_graph(event: &Event, fields: &BTreeSet<EventField>) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        match field {
            EventField::Title => {
                out.insert("subject".into(), json!(event.title));
            }
            EventField::Location => {
                out.insert("location".into(), json!({"displayName": event.location}));
            }
            EventField::Period => period_to_graph(&event.period, &mut out),
            EventField::Private => {
                let sensitivity = if event.private { "private" } else { "normal" };
                out.insert("sensitivity".into(), json!(sensitivity));
            }
            EventField::Reminder => {
                out.insert(
                    "isReminderOn".into(),
                    json!(event.reminder_minutes.is_some()),
                );
                if let Some(minutes) = event.reminder_minutes {
                    out.insert("reminderMinutesBeforeStart".into(), json!(minutes));
                }
            }
            EventField::Description => {
                out.insert(
                    "body".into(),
                    json!({"contentType": "text", "content": event.description}),
                );
            }
            EventField::Status => {
                let show_as = match event.status {
                    EventStatus::Tentative => "tentative",
                    EventStatus::Confirmed | EventStatus::Cancelled => "busy",
                };
                out.insert("showAs".into(), json!(show_as));
            }
            _ => {}
        }
    }
    out
}

/// The RRULE day of a Graph `dayOfWeek`.
fn rrule_day(day: &str) -> Option<&'static str> {
    Some(match day.to_ascii_lowercase().as_str() {
        "monday" => "MO",
        "tuesday" => "TU",
        "wednesday" => "WE",
        "thursday" => "TH",
        "friday" => "FR",
        "saturday" => "SA",
        "sunday" => "SU",
        _ => return None,
    })
}

/// The recurrence of a series master (`recurrence`, a `patternedRecurrence`, MS-CAL-12)
/// as one RRULE line; `None` for an event that is not a series master. A pattern this
/// conversion does not know is kept as an `X-GRAPH-RECURRENCE` line holding its JSON, so
/// the event still reads as recurring.
pub fn recurrence_from_graph(value: &Value) -> Option<Recurrence> {
    let recurrence = value.get("recurrence").filter(|r| r.is_object())?;
    let rule = rrule_of(recurrence).unwrap_or_else(|| format!("X-GRAPH-RECURRENCE:{recurrence}"));
    Some(Recurrence {
        rules: vec![rule],
        exceptions: Vec::new(),
    })
}

fn rrule_of(recurrence: &Value) -> Option<String> {
    let pattern = recurrence.get("pattern")?;
    let range = recurrence.get("range");
    let interval = pattern.get("interval").and_then(Value::as_u64).unwrap_or(1);
    let days: Option<Vec<&str>> = pattern
        .get("daysOfWeek")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .filter_map(rrule_day)
                .collect()
        });
    let index = match pattern
        .get("index")
        .and_then(Value::as_str)
        .unwrap_or("first")
    {
        "first" => "1",
        "second" => "2",
        "third" => "3",
        "fourth" => "4",
        "last" => "-1",
        _ => return None,
    };
    let number = |k: &str| pattern.get(k).and_then(Value::as_u64);
    let relative_days = || -> Option<String> {
        let days = days.as_ref().filter(|d| !d.is_empty())?;
        Some(
            days.iter()
                .map(|d| format!("{index}{d}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    let mut rule = match pattern.get("type").and_then(Value::as_str)? {
        "daily" => format!("RRULE:FREQ=DAILY;INTERVAL={interval}"),
        "weekly" => {
            let days = days.as_ref().filter(|d| !d.is_empty())?.join(",");
            format!("RRULE:FREQ=WEEKLY;INTERVAL={interval};BYDAY={days}")
        }
        "absoluteMonthly" => format!(
            "RRULE:FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={}",
            number("dayOfMonth")?
        ),
        "relativeMonthly" => {
            format!(
                "RRULE:FREQ=MONTHLY;INTERVAL={interval};BYDAY={}",
                relative_days()?
            )
        }
        "absoluteYearly" => format!(
            "RRULE:FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYMONTHDAY={}",
            number("month")?,
            number("dayOfMonth")?
        ),
        "relativeYearly" => format!(
            "RRULE:FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYDAY={}",
            number("month")?,
            relative_days()?
        ),
        _ => return None,
    };
    match range.and_then(|r| r.get("type")).and_then(Value::as_str) {
        Some("endDate") => {
            let end = range?.get("endDate").and_then(Value::as_str)?;
            let end = NaiveDate::parse_from_str(end, "%Y-%m-%d").ok()?;
            rule.push_str(&format!(";UNTIL={}", end.format("%Y%m%d")));
        }
        Some("numbered") => {
            let count = range?.get("numberOfOccurrences").and_then(Value::as_u64)?;
            rule.push_str(&format!(";COUNT={count}"));
        }
        _ => {}
    }
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_zones_both_ways() {
        let paris = zone_from_graph("Romance Standard Time").unwrap();
        assert_eq!(paris.name(), "Europe/Paris");
        assert_eq!(zone_to_graph(&paris), "Romance Standard Time");
        assert_eq!(zone_from_graph("UTC").unwrap(), Zone::UTC);
        assert!(zone_from_graph("Mars Standard Time").is_err());
    }

    #[test]
    fn utc_times_come_back_in_the_original_zone() {
        let wire = json!({
            "start": {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-05T09:30:00.0000000", "timeZone": "UTC"},
            "isAllDay": false,
            "originalStartTimeZone": "Romance Standard Time",
        });
        match period_from_graph(&wire).unwrap() {
            Period::Timed { start, zone, .. } => {
                assert_eq!(start.format(WIRE_FORMAT).to_string(), "2026-01-05T10:00:00");
                assert_eq!(zone.name(), "Europe/Paris");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn patterned_recurrences_read_as_rrules() {
        let weekly = json!({"recurrence": {
            "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "thursday"], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": "2026-06-01", "numberOfOccurrences": 10},
        }});
        assert_eq!(
            recurrence_from_graph(&weekly).unwrap().rules,
            vec!["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;COUNT=10"]
        );
        let monthly = json!({"recurrence": {
            "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            "range": {"type": "endDate", "startDate": "2026-06-01", "endDate": "2026-12-31"},
        }});
        assert_eq!(
            recurrence_from_graph(&monthly).unwrap().rules,
            vec!["RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=-1FR;UNTIL=20261231"]
        );
        let odd = json!({"recurrence": {"pattern": {"type": "hourly"}}});
        assert!(recurrence_from_graph(&odd).unwrap().rules[0].starts_with("X-GRAPH-RECURRENCE:"));
        assert_eq!(recurrence_from_graph(&json!({"recurrence": null})), None);
    }

    #[test]
    fn reminder_privacy_and_colour_are_read_and_written() {
        let wire = json!({
            "subject": "Review",
            "start": {"dateTime": "2026-01-05T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-06T00:00:00.0000000", "timeZone": "UTC"},
            "isAllDay": true,
            "isReminderOn": true,
            "reminderMinutesBeforeStart": 1440,
            "sensitivity": "private",
            "categories": ["Red category", "crmsync Dark blue"],
        });
        let event = event_from_graph(&wire).unwrap();
        assert!(event.private);
        assert_eq!(event.reminder_minutes, Some(1440));
        assert_eq!(event.colour, Some(crate::categories::PRESETS[22].1));
        assert!(event.period.is_all_day());
        let fields: BTreeSet<EventField> = [
            EventField::Reminder,
            EventField::Private,
            EventField::Period,
        ]
        .into_iter()
        .collect();
        let out = event_to_graph(&event, &fields);
        assert_eq!(out["isReminderOn"], true);
        assert_eq!(out["reminderMinutesBeforeStart"], 1440);
        assert_eq!(out["sensitivity"], "private");
        assert_eq!(out["start"]["dateTime"], "2026-01-05T00:00:00");
        assert_eq!(out["end"]["dateTime"], "2026-01-06T00:00:00");
        let mut off = event.clone();
        off.reminder_minutes = None;
        off.private = false;
        let out = event_to_graph(&off, &fields);
        assert_eq!(out["isReminderOn"], false);
        assert!(out.get("reminderMinutesBeforeStart").is_none());
        assert_eq!(out["sensitivity"], "normal");
        let off_wire = json!({"isReminderOn": false, "reminderMinutesBeforeStart": 15});
        assert_eq!(event_from_graph(&off_wire).unwrap().reminder_minutes, None);
    }

    #[test]
    fn all_day_end_is_exclusive() {
        let period = Period::all_day_from_exclusive(
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
        )
        .unwrap();
        let mut out = Map::new();
        period_to_graph(&period, &mut out);
        assert_eq!(out["end"]["dateTime"], "2026-03-03T00:00:00");
        assert_eq!(period_from_graph(&Value::Object(out)).unwrap(), period);
    }
}
