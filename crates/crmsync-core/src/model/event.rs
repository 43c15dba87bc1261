//! Calendar events.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::model::types::{Origin, Rgb, Zone};
use crate::normalize;
use crate::record::{
    Direction, Field, FieldLoss, FieldValue, Fitted, Record, from_field_value, to_field_value,
};
use crate::store::Capabilities;

/// When an event happens: whole days, or a span of wall-clock time in an IANA zone.
///
/// All-day periods hold their *inclusive* last day. Providers (Google, Graph, iCalendar)
/// use an exclusive end date; [`Period::all_day_from_exclusive`] and
/// [`Period::exclusive_end`] are the one place that converts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PeriodParts", into = "PeriodParts")]
pub enum Period {
    /// Whole days, from `first_day` to `last_day` inclusive.
    AllDay {
        /// The first day.
        first_day: NaiveDate,
        /// The last day (inclusive).
        last_day: NaiveDate,
    },
    /// Wall-clock times in a zone; compared as UTC instants.
    Timed {
        /// The wall-clock start.
        start: NaiveDateTime,
        /// The wall-clock end.
        end: NaiveDateTime,
        /// The zone of both.
        zone: Zone,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum PeriodParts {
    AllDay {
        first_day: NaiveDate,
        last_day: NaiveDate,
    },
    Timed {
        start: NaiveDateTime,
        end: NaiveDateTime,
        zone: Zone,
    },
}

impl Period {
    /// Whole days, `first_day` to `last_day` inclusive.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) on `period` when the
    /// last day is before the first, or a day is outside the years 1 to 9999.
    pub fn all_day(first_day: NaiveDate, last_day: NaiveDate) -> Result<Self> {
        check_year(first_day)?;
        check_year(last_day)?;
        if last_day < first_day {
            return Err(Error::invalid_record(
                Some("period"),
                format!("the last day {last_day} is before the first day {first_day}"),
            ));
        }
        Ok(Period::AllDay {
            first_day,
            last_day,
        })
    }

    /// Whole days from a start date and an *exclusive* end date, as providers write them.
    /// An end equal to the start (seen from some servers) is read as one day.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) on `period` when the
    /// end is before the start, or a day is outside the years 1 to 9999.
    pub fn all_day_from_exclusive(start: NaiveDate, end_exclusive: NaiveDate) -> Result<Self> {
        if end_exclusive < start {
            return Err(Error::invalid_record(
                Some("period"),
                format!("the end date {end_exclusive} is before the start date {start}"),
            ));
        }
        let last_day = end_exclusive
            .pred_opt()
            .filter(|d| *d >= start)
            .unwrap_or(start);
        Self::all_day(start, last_day)
    }

    /// Wall-clock times in a zone.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) on `period` when the end
    /// is before the start, a time does not exist in the zone (it falls in a DST gap), or a
    /// day is outside the years 1 to 9999.
    pub fn timed(start: NaiveDateTime, end: NaiveDateTime, zone: Zone) -> Result<Self> {
        check_year(start.date())?;
        check_year(end.date())?;
        let s = to_utc(start, zone)?;
        let e = to_utc(end, zone)?;
        if e < s {
            return Err(Error::invalid_record(
                Some("period"),
                format!("the end {end} is before the start {start} ({zone})"),
            ));
        }
        Ok(Period::Timed { start, end, zone })
    }

    /// The exclusive end date of an all-day period (the day after the last day).
    pub fn exclusive_end(&self) -> Option<NaiveDate> {
        match self {
            Period::AllDay { last_day, .. } => last_day.succ_opt(),
            Period::Timed { .. } => None,
        }
    }

    /// The span as UTC instants. All-day periods span their days in UTC.
    pub fn utc_span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Period::AllDay {
                first_day,
                last_day,
            } => {
                let start = first_day.and_time(NaiveTime::MIN).and_utc();
                let end = self
                    .exclusive_end()
                    .unwrap_or(*last_day)
                    .and_time(NaiveTime::MIN)
                    .and_utc();
                (start, end)
            }
            Period::Timed { start, end, zone } => (
                to_utc(*start, *zone).unwrap_or_else(|_| start.and_utc()),
                to_utc(*end, *zone).unwrap_or_else(|_| end.and_utc()),
            ),
        }
    }

    /// Whether the period is whole days.
    pub fn is_all_day(&self) -> bool {
        matches!(self, Period::AllDay { .. })
    }
}

/// Providers and chrono disagree outside these years (RFC 3339 has four-digit years), and
/// no calendar holds such an event: a date there is a typo, reported as one.
fn check_year(day: NaiveDate) -> Result<()> {
    if (1..=9999).contains(&day.year()) {
        Ok(())
    } else {
        Err(Error::invalid_record(
            Some("period"),
            format!("{day} is outside the years 1 to 9999"),
        ))
    }
}

/// Converts a wall-clock time in a zone to UTC; in a DST fold the earlier instant is taken.
fn to_utc(wall: NaiveDateTime, zone: Zone) -> Result<DateTime<Utc>> {
    zone.0
        .from_local_datetime(&wall)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            Error::invalid_record(
                Some("period"),
                format!("{wall} does not exist in {zone} (it falls in a daylight-saving gap)"),
            )
        })
}

impl TryFrom<PeriodParts> for Period {
    type Error = Error;
    fn try_from(p: PeriodParts) -> Result<Self> {
        match p {
            PeriodParts::AllDay {
                first_day,
                last_day,
            } => Period::all_day(first_day, last_day),
            PeriodParts::Timed { start, end, zone } => Period::timed(start, end, zone),
        }
    }
}

impl From<Period> for PeriodParts {
    fn from(p: Period) -> Self {
        match p {
            Period::AllDay {
                first_day,
                last_day,
            } => PeriodParts::AllDay {
                first_day,
                last_day,
            },
            Period::Timed { start, end, zone } => PeriodParts::Timed { start, end, zone },
        }
    }
}

/// The status of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// It takes place.
    #[default]
    Confirmed,
    /// It may take place.
    Tentative,
    /// It was called off (kept, not deleted).
    Cancelled,
}

/// A recurring series: its rule lines and exceptions, kept opaque when not synced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Recurrence {
    /// `RRULE`, `EXRULE`, `RDATE` and `EXDATE` lines, as in RFC 5545.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The series' exceptions (moved or cancelled instances), in the form of the store they
    /// came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<serde_json::Value>,
}

/// A calendar event (a CRM "action": meeting, call, appointment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The title.
    pub title: String,
    /// Where.
    #[serde(default)]
    pub location: String,
    /// When.
    pub period: Period,
    /// Whether only the owner sees the details.
    #[serde(default)]
    pub private: bool,
    /// The reminder, in minutes before the start; `None`: no reminder.
    #[serde(default)]
    pub reminder_minutes: Option<u32>,
    /// The colour (from the CRM action type).
    #[serde(default)]
    pub colour: Option<Rgb>,
    /// The category (the action type's name).
    #[serde(default)]
    pub category: Option<String>,
    /// The description, as plain text.
    #[serde(default)]
    pub description: String,
    /// The series rule, for a recurring event.
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// For an instance of a series: the series' id in its store.
    #[serde(default)]
    pub series_id: Option<String>,
    /// The iCalendar UID, when the store has one.
    #[serde(default)]
    pub ical_uid: Option<String>,
    /// The status.
    #[serde(default)]
    pub status: EventStatus,
    /// Where the record came from, when crmsync created it from a provider item.
    #[serde(default)]
    pub origin: Option<Origin>,
}

impl Recurrence {
    /// Lines trimmed, blank lines dropped; `None` when nothing is left (no rule, no
    /// exception: not a series).
    fn normalized(&self) -> Option<Recurrence> {
        let r = Recurrence {
            rules: self
                .rules
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
            exceptions: self.exceptions.clone(),
        };
        (!r.rules.is_empty() || !r.exceptions.is_empty()).then_some(r)
    }
}

impl Event {
    /// An event with a title and a period; everything else empty.
    pub fn new(title: impl Into<String>, period: Period) -> Self {
        Event {
            title: title.into(),
            location: String::new(),
            period,
            private: false,
            reminder_minutes: None,
            colour: None,
            category: None,
            description: String::new(),
            recurrence: None,
            series_id: None,
            ical_uid: None,
            status: EventStatus::Confirmed,
            origin: None,
        }
    }
}

/// The fields of an [`Event`], one per row of the calendar policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventField {
    /// [`Event::title`].
    Title,
    /// [`Event::location`].
    Location,
    /// [`Event::period`]: start, end, all-day, time zone.
    Period,
    /// [`Event::private`].
    Private,
    /// [`Event::reminder_minutes`]: on/off and minutes before.
    Reminder,
    /// [`Event::colour`] and [`Event::category`].
    Colour,
    /// [`Event::description`].
    Description,
    /// [`Event::recurrence`].
    Recurrence,
    /// [`Event::status`].
    Status,
}

impl fmt::Display for EventField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Field for EventField {
    const ALL: &'static [Self] = &[
        EventField::Title,
        EventField::Location,
        EventField::Period,
        EventField::Private,
        EventField::Reminder,
        EventField::Colour,
        EventField::Description,
        EventField::Recurrence,
        EventField::Status,
    ];

    fn name(self) -> &'static str {
        match self {
            EventField::Title => "title",
            EventField::Location => "location",
            EventField::Period => "period",
            EventField::Private => "private",
            EventField::Reminder => "reminder",
            EventField::Colour => "colour",
            EventField::Description => "description",
            EventField::Recurrence => "recurrence",
            EventField::Status => "status",
        }
    }

    /// The defaults CRM users know from vendor Google-sync guides: everything both ways but
    /// the colour (the CRM's action type decides it) and the recurrence (not synced).
    fn default_direction(self) -> Direction {
        match self {
            EventField::Colour => Direction::CrmToProvider,
            EventField::Recurrence => Direction::Skip,
            _ => Direction::Both,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct ColourValue {
    colour: Option<Rgb>,
    category: Option<String>,
}

impl Record for Event {
    type Field = EventField;
    const KIND: &'static str = "event";
    /// CRM sync guides cap calendars at 1,000 events per period.
    const DEFAULT_CAP: Option<usize> = Some(1000);

    fn summary(&self) -> String {
        normalize::line(&self.title)
    }

    fn field(&self, field: EventField) -> FieldValue {
        match field {
            EventField::Title => json!(normalize::line(&self.title)),
            EventField::Location => json!(normalize::line(&self.location)),
            EventField::Period => to_field_value(&self.period),
            EventField::Private => json!(self.private),
            EventField::Reminder => json!(self.reminder_minutes),
            EventField::Colour => to_field_value(&ColourValue {
                colour: self.colour,
                category: self
                    .category
                    .as_deref()
                    .map(normalize::line)
                    .filter(|c| !c.is_empty()),
            }),
            EventField::Description => json!(normalize::text(&self.description)),
            EventField::Recurrence => {
                to_field_value(&self.recurrence.as_ref().and_then(Recurrence::normalized))
            }
            EventField::Status => to_field_value(&self.status),
        }
    }

    fn comparable(&self, field: EventField) -> FieldValue {
        match field {
            // Compared as UTC instants: the same meeting written in another zone is no edit.
            EventField::Period => match &self.period {
                Period::AllDay {
                    first_day,
                    last_day,
                } => json!({"first_day": first_day, "last_day": last_day}),
                Period::Timed { .. } => {
                    let (s, e) = self.period.utc_span();
                    json!({"start": s.timestamp(), "end": e.timestamp()})
                }
            },
            // Paragraphs and reflowed spaces are what HTML editors change on their own.
            EventField::Description => json!(normalize::text_comparable(&self.description)),
            // The lines of a rule set are a set: providers reorder them.
            EventField::Recurrence => {
                let r = self.recurrence.as_ref().and_then(Recurrence::normalized);
                to_field_value(&r.map(|mut r| {
                    r.rules.sort();
                    r.rules.dedup();
                    r
                }))
            }
            _ => self.field(field),
        }
    }

    fn set_field(&mut self, field: EventField, value: &FieldValue) -> Result<()> {
        let name = field.name();
        match field {
            EventField::Title => {
                self.title = normalize::line(
                    &from_field_value::<Option<String>>(name, value)?.unwrap_or_default(),
                );
            }
            EventField::Location => {
                self.location = normalize::line(
                    &from_field_value::<Option<String>>(name, value)?.unwrap_or_default(),
                );
            }
            EventField::Period => self.period = from_field_value(name, value)?,
            EventField::Private => {
                self.private = from_field_value::<Option<bool>>(name, value)?.unwrap_or(false)
            }
            EventField::Reminder => self.reminder_minutes = from_field_value(name, value)?,
            EventField::Colour => {
                let c = from_field_value::<Option<ColourValue>>(name, value)?.unwrap_or_default();
                self.colour = c.colour;
                self.category = c
                    .category
                    .as_deref()
                    .map(normalize::line)
                    .filter(|c| !c.is_empty());
            }
            EventField::Description => {
                self.description = normalize::text(
                    &from_field_value::<Option<String>>(name, value)?.unwrap_or_default(),
                );
            }
            EventField::Recurrence => self.recurrence = from_field_value(name, value)?,
            EventField::Status => {
                self.status = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if normalize::line(&self.title).chars().count() > 1024 {
            return Err(Error::invalid_record(
                Some("title"),
                "longer than 1024 characters",
            ));
        }
        // Re-check the period's invariants: its fields are public.
        match &self.period {
            Period::AllDay {
                first_day,
                last_day,
            } => Period::all_day(*first_day, *last_day).map(drop),
            Period::Timed { start, end, zone } => Period::timed(*start, *end, *zone).map(drop),
        }
    }

    fn fit(&self, caps: &Capabilities) -> Fitted<Self> {
        let mut record = self.clone();
        let mut losses = Vec::new();
        if let (Some(max), Some(minutes)) = (caps.max_reminder_minutes, record.reminder_minutes)
            && minutes > max
        {
            record.reminder_minutes = Some(max);
            losses.push(FieldLoss {
                field: "reminder".into(),
                detail: format!("{minutes} minutes is beyond the limit; {max} kept"),
            });
        }
        if caps.max_reminders == Some(0) && record.reminder_minutes.is_some() {
            record.reminder_minutes = None;
            losses.push(FieldLoss {
                field: "reminder".into(),
                detail: "the store holds no reminders".into(),
            });
        }
        if let (Some(palette), Some(colour)) = (&caps.palette, record.colour)
            && let Some(nearest) = crate::colour::nearest(colour, palette)
        {
            record.colour = Some(nearest);
        }
        for &f in EventField::ALL {
            if !caps.supports(f) {
                let empty = Event::new(String::new(), record.period.clone());
                if record.field(f) != empty.field(f) {
                    losses.push(FieldLoss {
                        field: f.name().into(),
                        detail: format!("{} does not hold this field", caps.name),
                    });
                }
                let _ = record.set_field(f, &empty.field(f));
            }
        }
        Fitted { record, losses }
    }

    fn time_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some(self.period.utc_span())
    }

    fn natural_key(&self) -> Option<String> {
        if let Some(uid) = self.ical_uid.as_deref().filter(|u| !u.is_empty()) {
            return Some(format!("uid:{uid}"));
        }
        let title = normalize::line(&self.title).to_lowercase();
        if title.is_empty() {
            return None;
        }
        Some(format!(
            "title:{title}@{}",
            self.period.utc_span().0.timestamp()
        ))
    }

    fn is_recurring(&self) -> bool {
        self.recurrence
            .as_ref()
            .and_then(Recurrence::normalized)
            .is_some()
            || self.series_id.is_some()
    }

    fn recurrence_field() -> Option<EventField> {
        Some(EventField::Recurrence)
    }

    fn set_origin(&mut self, provider: &str, id: &str) {
        self.origin = Some(Origin {
            provider: provider.to_owned(),
            id: id.to_owned(),
        });
    }

    fn canonical_time_span(
        canonical: &crate::record::CanonicalRecord,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let period = canonical.field(EventField::Period.name())?;
        serde_json::from_value::<Period>(period.clone())
            .ok()
            .map(|p| p.utc_span())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordExt;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn exclusive_end_conversion_round_trips() {
        let p = Period::all_day_from_exclusive(d(2026, 3, 1), d(2026, 3, 2)).unwrap();
        assert_eq!(p, Period::all_day(d(2026, 3, 1), d(2026, 3, 1)).unwrap());
        assert_eq!(p.exclusive_end(), Some(d(2026, 3, 2)));
        assert!(Period::all_day_from_exclusive(d(2026, 3, 2), d(2026, 3, 1)).is_err());
    }

    #[test]
    fn timed_periods_compare_as_instants() {
        let paris: Zone = "Europe/Paris".parse().unwrap();
        let wall = d(2026, 6, 1).and_hms_opt(10, 0, 0).unwrap();
        let a = Event::new(
            "x",
            Period::timed(wall, wall + chrono::Duration::hours(1), paris).unwrap(),
        );
        let utc_wall = d(2026, 6, 1).and_hms_opt(8, 0, 0).unwrap();
        let b = Event::new(
            "x",
            Period::timed(utc_wall, utc_wall + chrono::Duration::hours(1), Zone::UTC).unwrap(),
        );
        assert_eq!(
            a.field_hash(EventField::Period),
            b.field_hash(EventField::Period)
        );
        assert_ne!(a.field(EventField::Period), b.field(EventField::Period));
    }

    #[test]
    fn dst_gap_is_an_error() {
        let paris: Zone = "Europe/Paris".parse().unwrap();
        let gap = d(2026, 3, 29).and_hms_opt(2, 30, 0).unwrap();
        let err = Period::timed(gap, gap + chrono::Duration::hours(1), paris).unwrap_err();
        assert!(err.to_string().contains("daylight-saving gap"));
    }

    #[test]
    fn fields_round_trip() {
        let mut a = Event::new(
            "  Kick  off ",
            Period::all_day(d(2026, 1, 5), d(2026, 1, 6)).unwrap(),
        );
        a.colour = Some(Rgb::new(1, 2, 3));
        a.reminder_minutes = Some(15);
        let mut b = Event::new("", Period::all_day(d(2020, 1, 1), d(2020, 1, 1)).unwrap());
        for &f in EventField::ALL {
            b.set_field(f, &a.field(f)).unwrap();
        }
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(b.title, "Kick off");
    }

    /// Bug: `null` for the title, the colour or the status (a provider leaving the value
    /// out) was an error, where it means the empty value as for the other fields.
    #[test]
    fn null_means_empty() {
        let mut e = Event::new("x", Period::all_day(d(2026, 1, 5), d(2026, 1, 6)).unwrap());
        e.colour = Some(Rgb::new(1, 2, 3));
        e.category = Some("Call".into());
        e.status = EventStatus::Tentative;
        for &f in EventField::ALL {
            if f == EventField::Period {
                assert!(e.clone().set_field(f, &FieldValue::Null).is_err());
                continue;
            }
            let mut cleared = e.clone();
            cleared.set_field(f, &FieldValue::Null).unwrap();
            let empty = Event::new("", e.period.clone());
            assert_eq!(cleared.comparable(f), empty.comparable(f), "{f}");
        }
    }

    /// Bug: the category was stored as given by `set_field` (untrimmed, `Some("")`).
    #[test]
    fn colour_category_is_normalised_on_write() {
        let mut e = Event::new("x", Period::all_day(d(2026, 1, 5), d(2026, 1, 6)).unwrap());
        e.set_field(EventField::Colour, &json!({"category": "  "}))
            .unwrap();
        assert_eq!(e.category, None);
        e.set_field(EventField::Colour, &json!({"category": " Sales  call "}))
            .unwrap();
        assert_eq!(e.category.as_deref(), Some("Sales call"));
    }

    /// Bug: an empty rule set read differently from no recurrence, and reordered rule
    /// lines read as an edit.
    #[test]
    fn recurrence_noise_is_no_change() {
        let p = Period::all_day(d(2026, 1, 5), d(2026, 1, 5)).unwrap();
        let none = Event::new("x", p.clone());
        let mut empty = none.clone();
        empty.recurrence = Some(Recurrence {
            rules: vec!["  ".into()],
            exceptions: vec![],
        });
        assert_eq!(none.canonical(), empty.canonical());
        assert!(!empty.is_recurring());
        let mut a = none.clone();
        a.recurrence = Some(Recurrence {
            rules: vec!["RRULE:FREQ=WEEKLY".into(), "EXDATE:20260112".into()],
            exceptions: vec![],
        });
        let mut b = a.clone();
        b.recurrence.as_mut().unwrap().rules.reverse();
        b.recurrence.as_mut().unwrap().rules[0].push(' ');
        assert_eq!(a.content_hash(), b.content_hash());
        assert!(a.is_recurring());
    }

    /// Bug: a body edited in an HTML editor (Graph returns HTML) read as an edit of the
    /// plain-text description.
    #[test]
    fn html_description_compares_equal_to_its_text() {
        let p = Period::all_day(d(2026, 1, 5), d(2026, 1, 5)).unwrap();
        let mut text = Event::new("x", p.clone());
        text.description = "Agenda:\n\nbudget  review".into();
        let mut html = Event::new("x", p);
        html.description =
            "<html><head><meta charset=\"utf-8\"></head><body><p>Agenda:</p><p>budget review</p></body></html>"
                .into();
        assert_eq!(
            text.field_hash(EventField::Description),
            html.field_hash(EventField::Description)
        );
    }

    /// Bug: years chrono accepts but no calendar (nor RFC 3339) holds were accepted, and
    /// the last representable day had no exclusive end.
    #[test]
    fn dates_outside_years_1_to_9999_are_typed_errors() {
        let far = NaiveDate::MAX;
        let err = Period::all_day(far, far).unwrap_err();
        assert!(
            matches!(err.kind(), crate::ErrorKind::InvalidRecord { field: Some(f), .. } if f == "period")
        );
        assert!(Period::all_day(d(0, 12, 31), d(1, 1, 1)).is_err());
        let wall = d(10000, 1, 1).and_hms_opt(0, 0, 0).unwrap();
        assert!(Period::timed(wall, wall, Zone::UTC).is_err());
        let last = Period::all_day(d(9999, 12, 31), d(9999, 12, 31)).unwrap();
        assert_eq!(last.exclusive_end(), Some(d(10000, 1, 1)));
        assert_eq!(
            last.utc_span().1,
            d(10000, 1, 1).and_hms_opt(0, 0, 0).unwrap().and_utc()
        );
    }

    #[test]
    fn bad_field_values_name_the_field() {
        let mut e = Event::new("x", Period::all_day(d(2026, 1, 5), d(2026, 1, 6)).unwrap());
        let err = e
            .set_field(
                EventField::Period,
                &json!({"kind": "all_day", "first_day": "2026-02-30", "last_day": "2026-03-01"}),
            )
            .unwrap_err();
        assert!(
            matches!(err.kind(), crate::ErrorKind::InvalidRecord { field: Some(f), .. } if f == "period")
        );
        assert_eq!(e.title, "x");
    }
}
