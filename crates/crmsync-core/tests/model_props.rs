//! Property tests of the model: serde round trips, normalisation idempotence, stable
//! hashes, typed errors (never panics) on bad input, and idempotent fitting.
//!
//! Each case is cheap, so proptest's default of 256 cases per property is kept.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{Datelike as _, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use crmsync_core::normalize;
use crmsync_core::{
    AccountId, Birthday, Capabilities, CollectionId, Contact, ContactField, ContentHash, CrmId,
    Cursor, Email, EmailAddress, ErrorKind, Event, EventField, EventStatus, Field, ImHandle,
    ItemId, LinkKey, Name, Organization, Origin, PageToken, Period, Phone, PhoneNumber, Photo,
    PostalAddress, Record, RecordExt, Recurrence, RemoteId, Rgb, Usage, Version, Zone,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// ----------------------------------------------------------------------------------------
// Strategies
// ----------------------------------------------------------------------------------------

/// Pieces of HTML bodies as Graph and People write them, and of broken ones.
const HTML_PIECES: &[&str] = &[
    "<p>",
    "</p>",
    "<P class=\"x\">",
    "<p\t>",
    "<pre>",
    "<div>",
    "</div>",
    "<br>",
    "<br/>",
    "<html>",
    "<!DOCTYPE html>",
    "<head><style>p{}</style></head>",
    "<body>",
    "</body></html>",
    "<meta charset=\"utf-8\">",
    "<li>",
    "</li>",
    "</h1>",
    "<script>x()</script>",
    "<style>",
    "</style>",
    "&amp;",
    "&lt;p&gt;",
    "&lt;div&gt;",
    "&amp;lt;p&amp;gt;",
    "&nbsp;",
    "&#x41;",
    "&#65;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&bogus;",
    "&",
    ";",
    "<",
    ">",
    "<p",
    "<div",
    "\r\n",
    "\r",
    "\n",
    " ",
    "  ",
    "\t",
    "\u{a0}",
    "\u{2028}",
    "\u{85}",
];

fn html_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => select(HTML_PIECES).prop_map(str::to_owned),
        2 => "[a-zA-Zé ]{0,6}",
        1 => any::<char>().prop_map(String::from),
    ];
    vec(piece, 0..24).prop_map(|v| v.concat())
}

/// HTML bodies whose text is itself HTML (escaped once or twice): a body quoting markup.
fn nested_html() -> impl Strategy<Value = String> {
    let opener = select(&["<p>", "<html><body>", "  <DIV class=x>", "<p\n>"][..]);
    (opener.clone(), opener, html_ish(), any::<bool>()).prop_map(|(outer, inner, body, twice)| {
        let once = format!("{outer}{}", escape_html(&format!("{inner}{body}")));
        if twice {
            format!("{outer}{}", escape_html(&once))
        } else {
            once
        }
    })
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Unicode text, whitespace-heavy text and HTML-ish text.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ a-zA-Z0-9éüß\u{a0}\u{3000}\t\r\n&;<>/#]{0,30}",
        html_ish(),
        nested_html(),
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        4 => (1900i32..2100, 1u32..=366),
        1 => (1i32..=9999, 1u32..=366),
    ]
    .prop_filter_map("no such ordinal", |(y, o)| NaiveDate::from_yo_opt(y, o))
}

fn wall_time() -> impl Strategy<Value = NaiveTime> {
    (
        0u32..86_400,
        prop_oneof![3 => Just(0u32), 1 => 0u32..1_000_000_000],
    )
        .prop_filter_map("no such time", |(s, n)| {
            NaiveTime::from_num_seconds_from_midnight_opt(s, n)
        })
}

fn zone() -> impl Strategy<Value = Zone> {
    select(&chrono_tz::TZ_VARIANTS[..]).prop_map(Zone)
}

fn all_day() -> impl Strategy<Value = Period> {
    (date(), 0u64..40).prop_filter_map("out of range", |(first, n)| {
        Period::all_day(first, first.checked_add_days(Days::new(n))?).ok()
    })
}

/// Timed periods in random IANA zones; wall times in a DST gap are skipped because
/// `Period::timed` refuses them.
fn timed() -> impl Strategy<Value = Period> {
    (date(), wall_time(), 0i64..3 * 86_400, zone()).prop_filter_map(
        "DST gap or out of range",
        |(d, t, len, z)| {
            let start = d.and_time(t);
            let end = start.checked_add_signed(TimeDelta::try_seconds(len)?)?;
            Period::timed(start, end, z).ok()
        },
    )
}

fn period() -> impl Strategy<Value = Period> {
    prop_oneof![all_day(), timed()]
}

fn rgb() -> impl Strategy<Value = Rgb> {
    any::<(u8, u8, u8)>().prop_map(|(r, g, b)| Rgb::new(r, g, b))
}

fn status() -> impl Strategy<Value = EventStatus> {
    select(
        &[
            EventStatus::Confirmed,
            EventStatus::Tentative,
            EventStatus::Cancelled,
        ][..],
    )
}

fn usage() -> impl Strategy<Value = Usage> {
    select(
        &[
            Usage::Work,
            Usage::Home,
            Usage::Mobile,
            Usage::Fax,
            Usage::Other,
        ][..],
    )
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        select(&["google", "microsoft", "memory"][..]),
        "[a-zA-Z0-9_-]{1,20}",
    )
        .prop_map(|(provider, id)| Origin {
            provider: provider.to_owned(),
            id,
        })
}

const RULES: &[&str] = &[
    "RRULE:FREQ=WEEKLY;BYDAY=MO",
    "RRULE:FREQ=DAILY;COUNT=5",
    "EXDATE;TZID=Europe/Paris:20260112T100000",
    "RDATE:20260301",
    "  ",
];

/// JSON without floats (whose text does not always round-trip through serde_json).
fn plain_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn recurrence() -> impl Strategy<Value = Option<Recurrence>> {
    option::of(
        (
            vec(
                prop_oneof![select(RULES).prop_map(str::to_owned), any_text()],
                0..4,
            ),
            vec(plain_json(), 0..2),
        )
            .prop_map(|(rules, exceptions)| Recurrence { rules, exceptions }),
    )
}

fn event() -> impl Strategy<Value = Event> {
    (
        (
            any_text(),
            any_text(),
            period(),
            any::<bool>(),
            option::of(prop_oneof![0u32..100_000, any::<u32>()]),
            option::of(rgb()),
            option::of(any_text()),
        ),
        (
            any_text(),
            recurrence(),
            option::of("[a-z0-9]{1,10}"),
            option::of("[a-z0-9@.]{1,20}"),
            status(),
            option::of(origin()),
        ),
    )
        .prop_map(
            |(
                (title, location, period, private, reminder_minutes, colour, category),
                (description, recurrence, series_id, ical_uid, status, origin),
            )| Event {
                title,
                location,
                period,
                private,
                reminder_minutes,
                colour,
                category,
                description,
                recurrence,
                series_id,
                ical_uid,
                status,
                origin,
            },
        )
}

/// Valid addresses: mostly ASCII in mixed case, sometimes Unicode.
fn email_address() -> impl Strategy<Value = EmailAddress> {
    prop_oneof![
        4 => (
            "[a-zA-Z0-9._%+-]{1,12}",
            "[a-zA-Z0-9][a-zA-Z0-9-]{0,9}(\\.[a-zA-Z]{2,4}){0,2}",
        )
            .prop_map(|(l, d)| format!("{l}@{d}")),
        1 => "\\PC{1,8}@\\PC{1,8}",
    ]
    .prop_filter_map("not an address", |a| EmailAddress::new(a).ok())
}

/// Phone numbers as people write them: `+cc (0)6 12 34 56 ext. 12`.
fn phone_number() -> impl Strategy<Value = PhoneNumber> {
    (
        option::of("\\+[1-9][0-9]{0,2}"),
        any::<bool>(),
        vec("[0-9]{1,4}", 1..5),
        option::of((
            select(&[" ext. ", " x", ";ext=", " ext "][..]),
            "[0-9]{1,4}",
        )),
    )
        .prop_map(|(cc, trunk, groups, ext)| {
            let mut parts: Vec<String> = Vec::new();
            parts.extend(cc);
            if trunk {
                parts.push("(0)".into());
            }
            parts.extend(groups);
            let mut s = parts.join(" ");
            if let Some((sep, digits)) = ext {
                s.push_str(sep);
                s.push_str(&digits);
            }
            s
        })
        .prop_filter_map("not a number", |s| PhoneNumber::new(s).ok())
}

fn birthday() -> impl Strategy<Value = Birthday> {
    (option::of(1i32..=9999), 1u32..=12, 1u32..=31)
        .prop_filter_map("no such day", |(y, m, d)| Birthday::new(y, m, d).ok())
}

fn photo() -> impl Strategy<Value = Photo> {
    (
        vec(any::<u8>(), 1..64),
        select(&["image/jpeg", "image/png", " IMAGE/GIF ", "image/svg+xml"][..]),
    )
        .prop_map(|(bytes, media_type)| Photo::new(bytes, media_type).expect("valid photo"))
}

fn postal_address() -> impl Strategy<Value = PostalAddress> {
    (
        vec(any_text(), 0..3),
        any_text(),
        any_text(),
        any_text(),
        any_text(),
        usage(),
    )
        .prop_map(
            |(lines, postal_code, city, region, country, usage)| PostalAddress {
                lines,
                postal_code,
                city,
                region,
                country,
                usage,
            },
        )
}

fn name() -> impl Strategy<Value = Name> {
    (any_text(), any_text(), any_text(), any_text(), any_text()).prop_map(
        |(prefix, given, middle, family, suffix)| Name {
            prefix,
            given,
            middle,
            family,
            suffix,
        },
    )
}

fn contact() -> impl Strategy<Value = Contact> {
    (
        (
            any_text(),
            name(),
            vec(
                (email_address(), usage()).prop_map(|(address, usage)| Email { address, usage }),
                0..4,
            ),
            vec(
                (phone_number(), usage()).prop_map(|(number, usage)| Phone { number, usage }),
                0..4,
            ),
            vec(postal_address(), 0..3),
            (any_text(), any_text())
                .prop_map(|(company, job_title)| Organization { company, job_title }),
        ),
        (
            any_text(),
            option::of(birthday()),
            vec(
                (select(&["skype", "XMPP", " sip ", ""][..]), any_text()).prop_map(
                    |(service, handle)| ImHandle {
                        service: service.to_owned(),
                        handle,
                    },
                ),
                0..3,
            ),
            option::of(photo()),
            btree_set(any_text(), 0..4),
            option::of(origin()),
        ),
    )
        .prop_map(
            |(
                (display_name, name, emails, phones, addresses, organization),
                (notes, birthday, im, photo, groups, origin),
            )| Contact {
                display_name,
                name,
                emails,
                phones,
                addresses,
                organization,
                notes,
                birthday,
                im,
                photo,
                groups,
                origin,
            },
        )
}

/// Google Calendar's classic event palette.
fn google_palette() -> Vec<Rgb> {
    [
        "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
        "#5484ed", "#51b749", "#dc2127",
    ]
    .iter()
    .map(|c| c.parse().expect("palette colour"))
    .collect()
}

fn field_names() -> Vec<&'static str> {
    EventField::ALL
        .iter()
        .map(|f| f.name())
        .chain(ContactField::ALL.iter().map(|f| f.name()))
        .collect()
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        option::of(0usize..4),
        option::of(0usize..4),
        option::of(0usize..3),
        option::of(0usize..3),
        option::of(0u32..100),
        any::<bool>(),
        option::of(btree_set(select(field_names()), 0..8)),
    )
        .prop_map(
            |(emails, phones, addresses, reminders, reminder_minutes, palette, fields)| {
                let mut caps = Capabilities::unlimited("generated");
                caps.max_emails = emails;
                caps.max_phones = phones;
                caps.max_addresses = addresses;
                caps.max_reminders = reminders;
                caps.max_reminder_minutes = reminder_minutes;
                caps.palette = palette.then(google_palette);
                caps.fields =
                    fields.map(|f| f.into_iter().map(str::to_owned).collect::<BTreeSet<_>>());
                caps
            },
        )
}

/// Strings that reach the parsers' interesting branches.
const INTERESTING_STRINGS: &[&str] = &[
    "",
    " ",
    "2026-02-30",
    "2026-03-01",
    "2026-03-29T02:30:00",
    "2026-06-01T10:00:00",
    "9999-12-31T23:59:60.5",
    "+262143-12-31",
    "-0001-01-01",
    "0000-01-01",
    "Europe/Paris",
    "europe/paris",
    "Mars/Olympus",
    "#ff0000",
    "#FFF",
    "all_day",
    "timed",
    "work",
    "mobile",
    "tentative",
    "image/png",
    "text/plain",
    "AAEC",
    "====",
    "+33 6 12 34 56 78",
    "ann@example.com",
    "@",
    "RRULE:FREQ=DAILY",
];

/// Object keys the model's types use, so arbitrary objects hit real fields.
const KEYS: &[&str] = &[
    "title",
    "location",
    "period",
    "kind",
    "first_day",
    "last_day",
    "start",
    "end",
    "zone",
    "private",
    "reminder_minutes",
    "colour",
    "category",
    "description",
    "recurrence",
    "rules",
    "exceptions",
    "status",
    "origin",
    "provider",
    "id",
    "address",
    "usage",
    "number",
    "media_type",
    "data",
    "year",
    "month",
    "day",
    "prefix",
    "given",
    "family",
    "lines",
    "city",
    "company",
    "job_title",
    "service",
    "handle",
    "display_name",
    "emails",
    "phones",
    "addresses",
    "organization",
    "notes",
    "birthday",
    "im",
    "photo",
    "groups",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any_text().prop_map(Value::String),
        select(INTERESTING_STRINGS).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            3 => select(KEYS).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces one part of a JSON value (a key of an object, an element of an array, at some
/// depth) with another value: almost-valid input, which reaches deeper than random JSON.
fn mutate(value: &mut Value, path: &[usize], replacement: Value) {
    match (value, path.split_first()) {
        (Value::Object(map), Some((&i, rest))) if !map.is_empty() => {
            let key = map.keys().nth(i % map.len()).cloned().unwrap_or_default();
            if let Some(v) = map.get_mut(&key) {
                mutate(v, rest, replacement);
            }
        }
        (Value::Array(items), Some((&i, rest))) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[i % n], rest, replacement);
        }
        (v, _) => *v = replacement,
    }
}

fn serde_round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let text = serde_json::to_string(value).expect("serialises");
    let back: T = serde_json::from_str(&text).expect("deserialises");
    assert_eq!(&back, value, "{text}");
    let back: T =
        serde_json::from_value(serde_json::to_value(value).expect("to value")).expect("from value");
    assert_eq!(&back, value);
}

fn is_invalid_input<T: std::fmt::Debug>(result: &crmsync_core::Result<T>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => e.kind() == &ErrorKind::InvalidInput,
    }
}

fn is_invalid_field<T: std::fmt::Debug>(result: &crmsync_core::Result<T>, field: &str) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::InvalidRecord { field: Some(f), .. } if f == field
        ),
    }
}

/// Any date chrono can hold, and any time including leap seconds.
fn any_date_time() -> impl Strategy<Value = NaiveDateTime> {
    (
        NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce(),
        0u32..86_400,
        0u32..2_000_000_000,
    )
        .prop_filter_map("not a date-time", |(days, s, n)| {
            let d = NaiveDate::from_num_days_from_ce_opt(days)?;
            Some(d.and_time(NaiveTime::from_num_seconds_from_midnight_opt(s, n)?))
        })
}

// ----------------------------------------------------------------------------------------
// (a) serde round trips
// ----------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn events_round_trip_through_serde(e in event()) {
        serde_round_trip(&e);
        serde_round_trip(&e.period);
        serde_round_trip(&e.status);
        serde_round_trip(&e.recurrence);
        prop_assert!(e.validate().is_ok() || e.title.chars().count() > 1024);
    }

    #[test]
    fn contacts_round_trip_through_serde(c in contact()) {
        serde_round_trip(&c);
        for email in &c.emails {
            serde_round_trip(email);
            serde_round_trip(&email.address);
        }
        for phone in &c.phones {
            serde_round_trip(phone);
            serde_round_trip(&phone.number);
        }
        serde_round_trip(&c.birthday);
        serde_round_trip(&c.photo);
        serde_round_trip(&c.addresses);
        serde_round_trip(&c.name);
    }

    #[test]
    fn value_types_round_trip_through_serde(
        colour in rgb(),
        z in zone(),
        p in period(),
        b in birthday(),
        ph in photo(),
        id in "\\PC{1,40}",
    ) {
        serde_round_trip(&colour);
        prop_assert_eq!(colour.to_string().parse::<Rgb>().unwrap(), colour);
        serde_round_trip(&z);
        prop_assert_eq!(z.name().parse::<Zone>().unwrap(), z);
        serde_round_trip(&p);
        serde_round_trip(&b);
        serde_round_trip(&ph);
        prop_assert_eq!(ph.hash(), ContentHash::of_bytes(ph.bytes()));
        serde_round_trip(&ContentHash::of_bytes(id.as_bytes()));
        serde_round_trip(&ItemId::new(id.clone()).unwrap());
        serde_round_trip(&CrmId::new(id.clone()).unwrap());
        serde_round_trip(&RemoteId::new(id.clone()).unwrap());
        serde_round_trip(&CollectionId::new(id.clone()).unwrap());
        serde_round_trip(&LinkKey::new(id.clone()).unwrap());
        serde_round_trip(&Version::new(id.clone()).unwrap());
        serde_round_trip(&Cursor::new(id.clone()).unwrap());
        serde_round_trip(&PageToken::new(id.clone()).unwrap());
        if id.len() <= AccountId::MAX_LEN {
            serde_round_trip(&AccountId::new(id.clone()).unwrap());
        }
    }

    #[test]
    fn canonical_records_round_trip_through_serde(e in event(), c in contact()) {
        serde_round_trip(&e.canonical());
        serde_round_trip(&c.canonical());
    }
}

// ----------------------------------------------------------------------------------------
// (b) normalisation is idempotent
// ----------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn normalising_twice_is_normalising_once(s in any_text()) {
        let l = normalize::line(&s);
        prop_assert_eq!(normalize::line(&l), l);
        let t = normalize::text(&s);
        prop_assert!(!normalize::looks_like_html(&t), "{:?} -> {:?}", s, t);
        prop_assert_eq!(normalize::text(&t), t.clone());
        let tc = normalize::text_comparable(&s);
        prop_assert_eq!(normalize::text_comparable(&tc), tc.clone());
        prop_assert_eq!(normalize::text_comparable(&t), tc);
        let p = normalize::phone_digits(&s);
        prop_assert_eq!(normalize::phone_digits(&p), p);
        let e = normalize::email(&s);
        prop_assert_eq!(normalize::email(&e), e);
    }

    #[test]
    fn event_fields_survive_set_field(a in event(), b in event()) {
        for &f in EventField::ALL {
            // Onto itself: nothing changes.
            let mut same = a.clone();
            same.set_field(f, &a.field(f)).unwrap();
            prop_assert_eq!(same.field(f), a.field(f), "{}", f);
            prop_assert_eq!(same.comparable(f), a.comparable(f), "{}", f);
            // Onto another record: the two become equal on that field.
            let mut other = b.clone();
            other.set_field(f, &a.field(f)).unwrap();
            prop_assert_eq!(other.field(f), a.field(f), "{}", f);
            prop_assert_eq!(other.comparable(f), a.comparable(f), "{}", f);
            prop_assert_eq!(other.field_hash(f), a.field_hash(f), "{}", f);
        }
        let rebuilt = Event::from_canonical(&a.canonical(), b.clone()).unwrap();
        prop_assert_eq!(rebuilt.canonical(), a.canonical());
    }

    #[test]
    fn contact_fields_survive_set_field(a in contact(), b in contact()) {
        for &f in ContactField::ALL {
            let mut same = a.clone();
            same.set_field(f, &a.field(f)).unwrap();
            prop_assert_eq!(same.field(f), a.field(f), "{}", f);
            prop_assert_eq!(same.comparable(f), a.comparable(f), "{}", f);
            let mut other = b.clone();
            other.set_field(f, &a.field(f)).unwrap();
            prop_assert_eq!(other.field(f), a.field(f), "{}", f);
            prop_assert_eq!(other.comparable(f), a.comparable(f), "{}", f);
        }
        let rebuilt = Contact::from_canonical(&a.canonical(), b.clone()).unwrap();
        prop_assert_eq!(rebuilt.canonical(), a.canonical());
    }

    #[test]
    fn value_types_are_canonical_on_construction(
        e in email_address(),
        p in phone_number(),
        ph in photo(),
    ) {
        prop_assert_eq!(&EmailAddress::new(e.as_str()).unwrap(), &e);
        prop_assert_eq!(normalize::email(&e.comparable()), e.comparable());
        prop_assert_eq!(&PhoneNumber::new(p.as_str()).unwrap(), &p);
        prop_assert_eq!(normalize::phone_digits(&p.comparable()), p.comparable());
        prop_assert_eq!(&Photo::new(ph.bytes().to_vec(), ph.media_type()).unwrap(), &ph);
    }
}

// ----------------------------------------------------------------------------------------
// (c) hashes are stable and blind to provider noise
// ----------------------------------------------------------------------------------------

/// A plain text as HTML, the way Graph returns a body: paragraphs, entities, a head.
fn as_html(text: &str) -> String {
    let mut html = String::from(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><style>p{margin:0}</style></head><body>",
    );
    for line in text.lines() {
        let escaped = escape_html(line);
        html.push_str("<p>");
        html.push_str(&escaped.replace("  ", " &nbsp;"));
        html.push_str("</p>\r\n");
    }
    html.push_str("</body></html>");
    html
}

/// What providers do to a record without anyone editing it.
fn noisy_event(e: &Event, zone: Zone, plain_description: &str) -> (Event, Event) {
    let mut clean = e.clone();
    clean.description = plain_description.to_owned();
    let mut noisy = clean.clone();
    noisy.title = format!(" \t{}  ", e.title.replace(' ', "   "));
    noisy.location = format!("{}\n", e.location);
    noisy.description = as_html(plain_description);
    noisy.category = e
        .category
        .as_deref()
        .map(|c| format!("  {c} "))
        .or(Some(String::new()));
    if let Some(r) = noisy.recurrence.as_mut() {
        r.rules.reverse();
        r.rules.push(" ".into());
    }
    // The same instants written in another zone.
    if let Period::Timed { .. } = e.period {
        let (s, t) = e.period.utc_span();
        let other = Period::timed(
            s.with_timezone(&zone.0).naive_local(),
            t.with_timezone(&zone.0).naive_local(),
            zone,
        );
        if let Ok(p) = other
            && p.utc_span() == (s, t)
        {
            noisy.period = p;
        }
    }
    (clean, noisy)
}

fn noisy_contact(c: &Contact, plain_notes: &str, separator: &str) -> (Contact, Contact) {
    let mut clean = c.clone();
    clean.notes = plain_notes.to_owned();
    let mut noisy = clean.clone();
    noisy.display_name = format!("  {}\u{a0}", c.display_name);
    noisy.name.given = format!("{} ", c.name.given);
    noisy.notes = as_html(plain_notes);
    noisy.emails.reverse();
    for e in &mut noisy.emails {
        e.address = EmailAddress::new(format!(" {} ", e.address.as_str().to_ascii_uppercase()))
            .expect("still an address");
    }
    if let Some(first) = c.emails.first() {
        noisy.emails.push(first.clone());
    }
    noisy.phones.reverse();
    for p in &mut noisy.phones {
        p.number =
            PhoneNumber::new(p.number.as_str().replace(' ', separator)).expect("still a number");
    }
    noisy.addresses.reverse();
    noisy.addresses.push(PostalAddress::default());
    noisy.im.reverse();
    for h in &mut noisy.im {
        h.service = h.service.to_uppercase();
    }
    noisy.groups = c.groups.iter().map(|g| format!(" {g}\t")).collect();
    noisy.groups.insert(String::new());
    if let Some(p) = &c.photo {
        // Same bytes, labelled differently by another provider.
        noisy.photo = Some(Photo::new(p.bytes().to_vec(), "image/x-other").unwrap());
    }
    (clean, noisy)
}

proptest! {
    #[test]
    fn event_hashes_are_stable_and_blind_to_noise(
        e in event(),
        z in zone(),
        plain in "[a-zA-Z0-9éü&.,! ]{0,12}(\n{1,3}[a-zA-Z0-9éü&.,! ]{0,12}){0,3}",
    ) {
        prop_assert_eq!(e.content_hash(), e.clone().content_hash());
        prop_assert_eq!(e.canonical().hash, e.content_hash());
        for &f in EventField::ALL {
            prop_assert_eq!(e.field_hash(f), ContentHash::of_value(&e.comparable(f)));
        }
        let (clean, noisy) = noisy_event(&e, z, &plain);
        for &f in EventField::ALL {
            prop_assert_eq!(
                clean.comparable(f), noisy.comparable(f), "{}: {:?} vs {:?}", f,
                clean.field(f), noisy.field(f)
            );
        }
        prop_assert_eq!(clean.content_hash(), noisy.content_hash());
    }

    #[test]
    fn contact_hashes_are_stable_and_blind_to_noise(
        c in contact(),
        plain in "[a-zA-Z0-9éü&.,! ]{0,12}(\n{1,3}[a-zA-Z0-9éü&.,! ]{0,12}){0,3}",
        separator in select(&["", "-", ".", "  "][..]),
    ) {
        prop_assert_eq!(c.canonical().hash, c.content_hash());
        let (clean, noisy) = noisy_contact(&c, &plain, separator);
        for &f in ContactField::ALL {
            prop_assert_eq!(
                clean.comparable(f), noisy.comparable(f), "{}: {:?} vs {:?}", f,
                clean.field(f), noisy.field(f)
            );
        }
        prop_assert_eq!(clean.content_hash(), noisy.content_hash());
    }
}

// ----------------------------------------------------------------------------------------
// (d) bad input never panics and gives a typed error
// ----------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_strings_give_values_or_invalid_input(
        s in prop_oneof![
            any::<String>(),
            any_text(),
            select(INTERESTING_STRINGS).prop_map(str::to_owned),
            "#?[0-9a-fA-FgG]{5,7}",
            "[a-zA-Z+()0-9 .;x-]{0,20}",
            "[a-z0-9.@ ]{0,12}",
            select(&chrono_tz::TZ_VARIANTS[..]).prop_map(|z| format!(" {} ", z.name())),
        ],
    ) {
        let email = EmailAddress::new(s.clone());
        prop_assert!(is_invalid_input(&email));
        if let Ok(a) = &email {
            prop_assert_eq!(&EmailAddress::new(a.as_str()).unwrap(), a);
        }
        let phone = PhoneNumber::new(s.clone());
        prop_assert!(is_invalid_input(&phone));
        if let Ok(p) = &phone {
            prop_assert_eq!(&PhoneNumber::new(p.as_str()).unwrap(), p);
            prop_assert!(p.comparable().chars().any(|c| c.is_ascii_digit()));
        }
        let colour = Rgb::from_str(&s);
        prop_assert!(is_invalid_input(&colour));
        let zone = Zone::from_str(&s);
        prop_assert!(is_invalid_input(&zone));
        prop_assert!(is_invalid_input(&ContentHash::from_hex(&s)));
        prop_assert!(is_invalid_input(&ItemId::new(s.clone())));
        prop_assert!(is_invalid_input(&CrmId::new(s.clone())));
        prop_assert!(is_invalid_input(&RemoteId::new(s.clone())));
        prop_assert!(is_invalid_input(&CollectionId::new(s.clone())));
        prop_assert!(is_invalid_input(&AccountId::new(s.clone())));
        prop_assert!(is_invalid_input(&LinkKey::new(s.clone())));
        prop_assert!(is_invalid_input(&Version::new(s.clone())));
        prop_assert!(is_invalid_input(&Cursor::new(s.clone())));
        prop_assert!(is_invalid_input(&PageToken::new(s.clone())));
        prop_assert!(is_invalid_input(&Photo::new(s.clone().into_bytes(), s.clone())));
        prop_assert!(is_invalid_input(&Photo::new(vec![1, 2, 3], s.clone())));
        // Through serde, the same checks apply.
        let _ = serde_json::from_value::<EmailAddress>(json!(s));
        let _ = serde_json::from_value::<PhoneNumber>(json!(s));
        let _ = serde_json::from_value::<Rgb>(json!(s));
        let _ = serde_json::from_value::<Zone>(json!(s));
        let _ = serde_json::from_value::<Photo>(json!({"media_type": "image/png", "data": s}));
    }

    #[test]
    fn arbitrary_birthdays_and_photos_give_values_or_invalid_input(
        year in option::of(any::<i32>()),
        month in prop_oneof![any::<u32>(), 0u32..14],
        day in prop_oneof![any::<u32>(), 0u32..33],
        bytes in vec(any::<u8>(), 0..8),
        media_type in prop_oneof![any::<String>(), "image/[a-z+.-]{0,6}"],
    ) {
        let b = Birthday::new(year, month, day);
        prop_assert!(is_invalid_input(&b));
        if let Ok(b) = b {
            serde_round_trip(&b);
        }
        let p = Photo::new(bytes, media_type);
        prop_assert!(is_invalid_input(&p));
        if let Ok(p) = p {
            serde_round_trip(&p);
        }
    }

    #[test]
    fn arbitrary_dates_give_periods_or_invalid_period(
        a in any_date_time(),
        b in any_date_time(),
        near in (date(), wall_time(), -86_400i64..3 * 86_400),
        z in zone(),
    ) {
        let all_day = Period::all_day(a.date(), b.date());
        prop_assert!(is_invalid_field(&all_day, "period"));
        prop_assert!(is_invalid_field(&Period::all_day_from_exclusive(a.date(), b.date()), "period"));
        prop_assert!(is_invalid_field(&Period::timed(a, b, z), "period"));
        // Near each other (and near DST changes), so some are valid.
        let (d, t, len) = near;
        let start = d.and_time(t);
        let end = start + TimeDelta::seconds(len);
        for p in [
            Period::timed(start, end, z),
            Period::all_day(d, end.date()),
            Period::all_day_from_exclusive(d, end.date()),
        ] {
            prop_assert!(is_invalid_field(&p, "period"));
            if let Ok(p) = p {
                serde_round_trip(&p);
                let (s, e) = p.utc_span();
                prop_assert!(s <= e);
                if let Some(x) = p.exclusive_end() {
                    let Period::AllDay { first_day, .. } = &p else { unreachable!() };
                    prop_assert_eq!(Period::all_day_from_exclusive(*first_day, x).unwrap(), p);
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_model(v in arb_json()) {
        if let Ok(e) = serde_json::from_value::<Event>(v.clone()) {
            let _ = e.validate();
            let _ = e.canonical();
        }
        if let Ok(c) = serde_json::from_value::<Contact>(v.clone()) {
            let _ = c.validate();
            let _ = c.canonical();
        }
        let _ = serde_json::from_value::<Period>(v.clone());
        let _ = serde_json::from_value::<Birthday>(v.clone());
        let _ = serde_json::from_value::<Photo>(v.clone());
        let _ = serde_json::from_value::<Recurrence>(v.clone());
        let _ = serde_json::from_value::<ContentHash>(v.clone());
        let _ = serde_json::from_value::<CrmId>(v);
    }

    #[test]
    fn almost_valid_json_never_panics_the_model(
        e in event(),
        c in contact(),
        path in vec(any::<usize>(), 1..4),
        replacement in arb_json(),
    ) {
        let mut ev = serde_json::to_value(&e).unwrap();
        mutate(&mut ev, &path, replacement.clone());
        if let Ok(e) = serde_json::from_value::<Event>(ev) {
            let _ = e.validate();
            let _ = e.canonical();
        }
        let mut cv = serde_json::to_value(&c).unwrap();
        mutate(&mut cv, &path, replacement);
        if let Ok(c) = serde_json::from_value::<Contact>(cv) {
            let _ = c.validate();
            let _ = c.canonical();
        }
    }

    #[test]
    fn set_field_rejects_bad_values_with_the_field_named_and_changes_nothing(
        e in event(),
        c in contact(),
        ef in select(EventField::ALL),
        cf in select(ContactField::ALL),
        path in vec(any::<usize>(), 0..4),
        replacement in arb_json(),
        almost in any::<bool>(),
    ) {
        let mut value = if almost { e.field(ef) } else { Value::Null };
        mutate(&mut value, &path, replacement.clone());
        let mut target = e.clone();
        let result = target.set_field(ef, &value);
        prop_assert!(is_invalid_field(&result, ef.name()), "{:?}", result);
        if result.is_err() {
            prop_assert_eq!(&target, &e);
        } else {
            // Whatever was accepted reads back as a fixed point.
            let mut again = target.clone();
            again.set_field(ef, &target.field(ef)).unwrap();
            prop_assert_eq!(again.comparable(ef), target.comparable(ef));
        }

        let mut value = if almost { c.field(cf) } else { Value::Null };
        mutate(&mut value, &path, replacement);
        let mut target = c.clone();
        let result = target.set_field(cf, &value);
        prop_assert!(is_invalid_field(&result, cf.name()), "{:?}", result);
        if result.is_err() {
            prop_assert_eq!(&target, &c);
        } else {
            let mut again = target.clone();
            again.set_field(cf, &target.field(cf)).unwrap();
            prop_assert_eq!(again.comparable(cf), target.comparable(cf));
        }
    }
}

// ----------------------------------------------------------------------------------------
// (e) fitting is idempotent
// ----------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn fitting_an_event_twice_loses_nothing_more(e in event(), caps in capabilities()) {
        let once = e.fit(&caps);
        let twice = once.record.fit(&caps);
        prop_assert_eq!(&twice.record, &once.record);
        prop_assert_eq!(twice.losses, Vec::new());
        prop_assert_eq!(twice.record.content_hash(), once.record.content_hash());
        if caps.fields.is_none() && caps.max_reminders != Some(0) && caps.max_reminder_minutes.is_none() {
            prop_assert_eq!(once.losses, Vec::new());
        }
    }

    #[test]
    fn fitting_a_contact_twice_loses_nothing_more(c in contact(), caps in capabilities()) {
        let once = c.fit(&caps);
        let twice = once.record.fit(&caps);
        prop_assert_eq!(&twice.record, &once.record);
        prop_assert_eq!(twice.losses, Vec::new());
        if let Some(max) = caps.max_emails {
            prop_assert!(once.record.emails.len() <= max);
        }
        if caps.fields.is_none()
            && caps.max_emails.is_none()
            && caps.max_phones.is_none()
            && caps.max_addresses.is_none()
        {
            // Nothing to lose: the fitted record compares equal to the original.
            prop_assert_eq!(once.losses, Vec::new());
            prop_assert_eq!(once.record.content_hash(), c.content_hash());
        }
    }
}

// ----------------------------------------------------------------------------------------
// Field enums
// ----------------------------------------------------------------------------------------

#[test]
fn field_names_are_their_serde_names() {
    for &f in EventField::ALL {
        assert_eq!(serde_json::to_value(f).unwrap(), json!(f.name()));
        assert_eq!(EventField::from_name(f.name()), Some(f));
        assert_eq!(f.to_string(), f.name());
    }
    for &f in ContactField::ALL {
        assert_eq!(serde_json::to_value(f).unwrap(), json!(f.name()));
        assert_eq!(ContactField::from_name(f.name()), Some(f));
        assert_eq!(f.to_string(), f.name());
    }
}
