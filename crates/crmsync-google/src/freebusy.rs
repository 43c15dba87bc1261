//! Free/busy of several calendars over a range (`POST freeBusy`, G-CAL-35).
//!
//! Google answers per calendar: a calendar it cannot read (unknown, not shared, too many
//! asked) carries `errors` inside the answer, not an HTTP error. So does
//! [`GoogleCalendar::free_busy`]: one `Result` per calendar asked for.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use crmsync_core::{CollectionId, Error, ErrorKind, Result};
use serde_json::{Value, json};

use crate::calendar::GoogleCalendar;
use crate::client::Call;

/// The longest range one `freeBusy` request covers. Google documents no limit, but
/// answers 400 `timeRangeTooLong` beyond about three months (G-CAL-35, observed): longer
/// ranges are asked for in pieces of at most 90 days.
pub const MAX_FREE_BUSY_DAYS: i64 = 90;
/// The most calendars one `freeBusy` request asks for (`calendarExpansionMax` ≤ 50,
/// discovery): more are asked for in several requests.
pub const MAX_FREE_BUSY_CALENDARS: usize = 50;

/// A time a calendar is busy: `start` inclusive, `end` exclusive (G-CAL-35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusyPeriod {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
}

/// The busy periods of each calendar asked for, or why Google could not tell.
pub type FreeBusy = BTreeMap<CollectionId, Result<Vec<BusyPeriod>>>;

impl GoogleCalendar {
    /// The busy periods of `calendars` between `start` and `end`, merged and sorted per
    /// calendar. Cancelled and transparent ("free") events are not busy.
    ///
    /// Ranges longer than [`MAX_FREE_BUSY_DAYS`] and more than
    /// [`MAX_FREE_BUSY_CALENDARS`] calendars cost several requests.
    ///
    /// # Errors
    /// - The outer `Result`: [`ErrorKind::InvalidInput`] when `end` is not after `start`;
    ///   the request's own failure (token, transport, an HTTP error).
    /// - Per calendar: [`ErrorKind::NotFound`] when Google reports `notFound` (unknown,
    ///   or not shared with the account), [`ErrorKind::LimitReached`] for
    ///   `tooManyCalendarsRequested` / `groupTooBig`, [`ErrorKind::Provider`] for other
    ///   reasons or a calendar missing from the answer.
    pub async fn free_busy(
        &self,
        calendars: &[CollectionId],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<FreeBusy> {
        if end <= start {
            return Err(Error::invalid_input(format!(
                "the free/busy range is empty: {start} is not before {end}"
            )));
        }
        let mut busy: BTreeMap<CollectionId, Vec<BusyPeriod>> = BTreeMap::new();
        let mut failed: BTreeMap<CollectionId, Error> = BTreeMap::new();
        let mut unique: Vec<CollectionId> = calendars.to_vec();
        unique.sort();
        unique.dedup();
        let mut from = start;
        while from < end {
            let to = (from + chrono::Duration::days(MAX_FREE_BUSY_DAYS)).min(end);
            for chunk in unique.chunks(MAX_FREE_BUSY_CALENDARS) {
                let pending: Vec<&CollectionId> =
                    chunk.iter().filter(|c| !failed.contains_key(*c)).collect();
                if pending.is_empty() {
                    continue;
                }
                let answer = self.free_busy_request(&pending, from, to).await?;
                for id in pending {
                    match calendar_answer(&answer, id) {
                        Ok(periods) => busy.entry(id.clone()).or_default().extend(periods),
                        Err(e) => {
                            busy.remove(id);
                            failed.insert(id.clone(), e);
                        }
                    }
                }
            }
            from = to;
        }
        let mut out = FreeBusy::new();
        for id in unique {
            let result = match failed.remove(&id) {
                Some(e) => Err(e),
                None => Ok(merged(busy.remove(&id).unwrap_or_default())),
            };
            out.insert(id, result);
        }
        Ok(out)
    }

    async fn free_busy_request(
        &self,
        calendars: &[&CollectionId],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Value> {
        let url = self
            .client()
            .config()
            .calendar_url
            .join_segments(["freeBusy"]);
        let items: Vec<Value> = calendars
            .iter()
            .map(|c| json!({ "id": c.as_str() }))
            .collect();
        let body = json!({
            "timeMin": from.to_rfc3339_opts(SecondsFormat::Secs, true),
            "timeMax": to.to_rfc3339_opts(SecondsFormat::Secs, true),
            "timeZone": "UTC",
            "items": items,
        });
        // A query: sending it twice is harmless, so outages are retried.
        let call = Call::post(url).json(&body)?.idempotent(true);
        self.client().json(call, "asking for free/busy").await
    }
}

/// One calendar's part of a `freeBusy` answer.
fn calendar_answer(answer: &Value, id: &CollectionId) -> Result<Vec<BusyPeriod>> {
    let Some(entry) = answer
        .get("calendars")
        .and_then(|c| c.get(id.as_str()))
        .filter(|e| e.is_object())
    else {
        return Err(Error::new(
            ErrorKind::Provider,
            format!("Google's free/busy answer says nothing of calendar {id}"),
        ));
    };
    if let Some(error) = entry
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let reason = error.get("reason").and_then(Value::as_str).unwrap_or("");
        let kind = match reason {
            "notFound" => ErrorKind::NotFound,
            "tooManyCalendarsRequested" | "groupTooBig" => ErrorKind::LimitReached,
            _ => ErrorKind::Provider,
        };
        return Err(Error::new(
            kind,
            format!("Google cannot tell the free/busy of calendar {id}: {reason}"),
        ));
    }
    let unreadable = |why: &str| {
        Error::new(
            ErrorKind::Provider,
            format!("the free/busy of calendar {id} cannot be read: {why}"),
        )
    };
    let mut out = Vec::new();
    for period in entry
        .get("busy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = |k: &str| {
            period
                .get(k)
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        match (at("start"), at("end")) {
            (Some(start), Some(end)) if start <= end => out.push(BusyPeriod { start, end }),
            _ => return Err(unreadable("a busy period has no valid start and end")),
        }
    }
    Ok(out)
}

/// Sorted, with overlapping or touching periods joined (pieces of a long range meet at
/// their boundary).
fn merged(mut periods: Vec<BusyPeriod>) -> Vec<BusyPeriod> {
    periods.sort();
    let mut out: Vec<BusyPeriod> = Vec::with_capacity(periods.len());
    for p in periods {
        match out.last_mut() {
            Some(last) if p.start <= last.end => last.end = last.end.max(p.end),
            _ => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap()
    }

    #[test]
    fn periods_are_sorted_and_joined() {
        let p = |a, b| BusyPeriod {
            start: at(a),
            end: at(b),
        };
        assert_eq!(
            merged(vec![p(10, 11), p(8, 9), p(9, 10), p(12, 14), p(13, 15)]),
            vec![p(8, 11), p(12, 15)]
        );
    }

    #[test]
    fn per_calendar_errors_are_typed() {
        let answer = json!({"calendars": {
            "a": {"busy": [{"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T09:00:00Z"}]},
            "b": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []},
            "c": {"errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}]},
            "d": {"busy": [{"start": "soon"}]}
        }});
        let id = |s| CollectionId::new(s).unwrap();
        assert_eq!(
            calendar_answer(&answer, &id("a")).unwrap(),
            vec![BusyPeriod {
                start: at(8),
                end: at(9)
            }]
        );
        assert_eq!(
            calendar_answer(&answer, &id("b")).unwrap_err().kind(),
            &ErrorKind::NotFound
        );
        assert_eq!(
            calendar_answer(&answer, &id("c")).unwrap_err().kind(),
            &ErrorKind::LimitReached
        );
        assert_eq!(
            calendar_answer(&answer, &id("d")).unwrap_err().kind(),
            &ErrorKind::Provider
        );
        assert_eq!(
            calendar_answer(&answer, &id("e")).unwrap_err().kind(),
            &ErrorKind::Provider
        );
    }
}
