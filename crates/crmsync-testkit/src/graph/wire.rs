//! Graph wire helpers: the OData error envelope (MS-GEN-4), `Prefer` header parsing
//! (MS-CAL-8, MS-CAL-14, MS-CAL-19) and `dateTimeTimeZone` rendering and parsing (MS-CAL-8/9).

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::{Value, json};

use super::state::State;
use crate::wire::{Req, Resp};

/// A Graph error before it gets its `innerError` (which needs the state for ids and the date).
#[derive(Debug, Clone)]
pub(crate) struct GErr {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) headers: Vec<(String, String)>,
    /// An `innerError.code` (the 429 body carries `"code":"429"`, MS-GEN-3).
    pub(crate) inner_code: Option<String>,
}

impl GErr {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> GErr {
        GErr {
            status,
            code: code.to_owned(),
            message: message.into(),
            headers: Vec::new(),
            inner_code: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> GErr {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// 404 `ErrorItemNotFound` (MS-CAL-3).
    pub(crate) fn not_found() -> GErr {
        GErr::new(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    /// 400 `ErrorInvalidIdMalformed` (MS-GEN-4).
    pub(crate) fn malformed_id() -> GErr {
        GErr::new(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    }

    /// 400 `ErrorPropertyValidationFailure` (observed for an all-day event with bad dates).
    pub(crate) fn validation() -> GErr {
        GErr::new(
            400,
            "ErrorPropertyValidationFailure",
            "At least one property failed validation.",
        )
    }

    /// 400 `RequestBodyRead` for a body that is not a JSON object.
    pub(crate) fn unreadable() -> GErr {
        GErr::new(
            400,
            "RequestBodyRead",
            "Invalid JSON. A token was not recognized in the JSON content.",
        )
    }

    /// Renders the envelope `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
    pub(crate) fn render(&self, st: &mut State, req: &Req) -> Resp {
        let request_id = st.new_guid();
        let client_request_id = req
            .header("client-request-id")
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.clone());
        let mut inner = json!({
            "date": st.now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": client_request_id,
        });
        if let Some(c) = &self.inner_code {
            inner["code"] = json!(c);
        }
        let mut resp = Resp::json(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message, "innerError": inner}}),
        )
        .with_header("request-id", &request_id)
        .with_header("client-request-id", &client_request_id);
        for (k, v) in &self.headers {
            resp = resp.with_header(k, v);
        }
        resp
    }
}

/// A JSON response with Graph's content type.
pub(crate) fn ok(status: u16, value: &Value) -> Resp {
    let mut r = Resp::json(status, value);
    r.headers = vec![(
        "content-type".into(),
        "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8".into(),
    )];
    r
}

/// The options of the `Prefer` header(s), comma-separated (MS-CAL-19), as lower-case keys.
pub(crate) fn prefer(req: &Req) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in &req.headers {
        if k != "prefer" {
            continue;
        }
        for part in split_prefer(v) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim().trim_matches('"')),
                None => (part.trim(), ""),
            };
            out.push((key.to_ascii_lowercase(), value.to_owned()));
        }
    }
    out
}

/// Splits on commas that are not inside double quotes.
fn split_prefer(v: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

pub(crate) fn prefer_value(req: &Req, key: &str) -> Option<String> {
    prefer(req)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Whether the request asked for immutable ids (`Prefer: IdType="ImmutableId"`).
pub(crate) fn immutable_ids(req: &Req) -> bool {
    prefer_value(req, "idtype").is_some_and(|v| v.eq_ignore_ascii_case("ImmutableId"))
}

/// `Prefer: odata.maxpagesize=N`.
pub(crate) fn max_page_size(req: &Req) -> Option<usize> {
    prefer_value(req, "odata.maxpagesize").and_then(|v| v.parse().ok())
}

/// The zone responses are rendered in: `Prefer: outlook.timezone="…"` or UTC.
pub(crate) fn output_zone(req: &Req) -> Result<(String, Zone), GErr> {
    match prefer_value(req, "outlook.timezone") {
        Some(name) => Ok((name.clone(), parse_zone(&name)?)),
        None => Ok(("UTC".into(), Zone::Utc)),
    }
}

/// A time zone Graph accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    Utc,
    Tz(chrono_tz::Tz),
}

/// Windows zone ids the fake knows (a subset of CLDR windowsZones, MS-CAL-9).
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Mountain Standard Time", "America/Denver"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("China Standard Time", "Asia/Shanghai"),
    ("India Standard Time", "Asia/Calcutta"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Arabian Standard Time", "Asia/Dubai"),
];

/// Parses a Windows zone id, `UTC`, or an IANA name (MS-CAL-9); anything else is
/// `TimeZoneNotSupportedException` (wording as commonly reported by Graph users; not in the
/// stored reference, so an inference).
pub(crate) fn parse_zone(name: &str) -> Result<Zone, GErr> {
    if name.eq_ignore_ascii_case("UTC") || name == "Coordinated Universal Time" {
        return Ok(Zone::Utc);
    }
    if let Some((_, iana)) = WINDOWS_ZONES.iter().find(|(w, _)| *w == name)
        && let Ok(tz) = iana.parse::<chrono_tz::Tz>()
    {
        return Ok(Zone::Tz(tz));
    }
    if name.contains('/')
        && let Ok(tz) = name.parse::<chrono_tz::Tz>()
    {
        return Ok(Zone::Tz(tz));
    }
    Err(GErr::new(
        400,
        "TimeZoneNotSupportedException",
        format!(
            "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'."
        ),
    ))
}

impl Zone {
    /// The UTC instant of a local wall time (the earlier one when ambiguous).
    pub(crate) fn to_utc(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Utc => Some(local.and_utc()),
            Zone::Tz(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.with_timezone(&Utc)),
        }
    }

    /// The wall time of an instant in this zone.
    pub(crate) fn local(self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Utc => at.naive_utc(),
            Zone::Tz(tz) => at.with_timezone(&tz).naive_local(),
        }
    }
}

/// `2016-12-09T20:30:00.0000000`: Graph's 7 fractional digits, no offset (MS-CAL-8).
pub(crate) fn fmt_local(t: NaiveDateTime) -> String {
    format!(
        "{}.{:07}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() / 100
    )
}

/// `2026-03-02T10:00:00.1234567Z`: DateTimeOffset properties (createdDateTime ...).
pub(crate) fn fmt_instant(t: DateTime<Utc>) -> String {
    format!("{}Z", fmt_local(t.naive_utc()))
}

/// Parses a `dateTimeTimeZone.dateTime`: a local time without offset, optional fraction.
pub(crate) fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

/// Parses a `startDateTime`/`endDateTime` query value (ISO 8601, with or without offset; without
/// an offset it is UTC). A `+` that was not percent-encoded arrives as a space and fails
/// (MS-CAL-11).
pub(crate) fn parse_query_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    parse_local(s).map(|l| l.and_utc())
}
