//! Golden hashes of a fixed event and a fixed contact.
//!
//! Content hashes are persisted in state databases (baselines and their per-field hashes).
//! **Changing any value below is a breaking change to stored state**: every stored baseline
//! would read as changed on the next sync. If a change to normalisation, to a comparable
//! form or to the canonical JSON makes these tests fail, either undo it or ship it with a
//! state migration and a release note, and only then update the literals.

use chrono::NaiveDate;
use crmsync_core::{
    Birthday, Contact, ContactField, EmailAddress, Event, EventField, EventStatus, ImHandle, Name,
    Organization, Origin, Period, Phone, PhoneNumber, Photo, PostalAddress, Record, RecordExt,
    Recurrence, Rgb, Usage, Zone,
};

fn golden_event() -> Event {
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    let period = Period::timed(
        day.and_hms_opt(10, 0, 0).expect("time"),
        day.and_hms_opt(11, 30, 0).expect("time"),
        "Europe/Paris".parse::<Zone>().expect("zone"),
    )
    .expect("period");
    Event {
        title: "  Kick-off  with ACME ".into(),
        location: "Salle 2, 10 rue de la Paix".into(),
        period,
        private: true,
        reminder_minutes: Some(15),
        colour: Some(Rgb::new(0x33, 0xaa, 0x33)),
        category: Some("Meeting".into()),
        description:
            "<html><body><p>Agenda: budget &amp; hiring</p><p>Bring the Q1 deck</p></body></html>"
                .into(),
        recurrence: Some(Recurrence {
            rules: vec!["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4".into()],
            exceptions: vec![],
        }),
        series_id: None,
        ical_uid: Some("kickoff-2026@example.com".into()),
        status: EventStatus::Confirmed,
        origin: Some(Origin {
            provider: "google".into(),
            id: "abc123".into(),
        }),
    }
}

fn golden_all_day_event() -> Event {
    let first = NaiveDate::from_ymd_opt(2026, 7, 14).expect("date");
    Event::new(
        "Fête nationale",
        Period::all_day(first, first).expect("period"),
    )
}

fn golden_contact() -> Contact {
    Contact {
        display_name: "Dr Ann Lee".into(),
        name: Name {
            prefix: "Dr".into(),
            given: "Ann".into(),
            middle: String::new(),
            family: "Lee".into(),
            suffix: String::new(),
        },
        emails: vec![
            crmsync_core::Email {
                address: EmailAddress::new("Ann.Lee@Example.com").expect("email"),
                usage: Usage::Work,
            },
            crmsync_core::Email {
                address: EmailAddress::new("ann@home.example").expect("email"),
                usage: Usage::Home,
            },
        ],
        phones: vec![
            Phone {
                number: PhoneNumber::new("+33 (0)6 12 34 56 78").expect("phone"),
                usage: Usage::Mobile,
            },
            Phone {
                number: PhoneNumber::new("+33 1 23 45 67 89 ext. 12").expect("phone"),
                usage: Usage::Work,
            },
        ],
        addresses: vec![PostalAddress {
            lines: vec!["10 rue de la Paix".into()],
            postal_code: "75002".into(),
            city: "Paris".into(),
            region: String::new(),
            country: "France".into(),
            usage: Usage::Work,
        }],
        organization: Organization {
            company: "ACME".into(),
            job_title: "Head of Sales".into(),
        },
        notes: "Met at the fair.\n\nWants a demo.".into(),
        birthday: Some(Birthday::new(None, 2, 29).expect("birthday")),
        im: vec![ImHandle {
            service: "skype".into(),
            handle: "ann.lee".into(),
        }],
        photo: Some(Photo::new(vec![0x89, b'P', b'N', b'G', 1, 2, 3], "image/png").expect("photo")),
        groups: ["Customers".to_owned(), "VIP".to_owned()].into(),
        origin: None,
    }
}

// Breaking change to stored state if any of these changes: see the module docs. The
// period, title, birthday and photo values were also checked by hand: SHA-256 of the
// canonical JSON texts asserted in `canonical_texts_are_pinned`, computed outside Rust.
const EVENT_HASH: &str = "fd9d620ff4104175f5080e32d0e2911d15c5e534bda06d181f5f3d4c099b751e";
const EVENT_TITLE_HASH: &str = "510c9c7718b3a3a6cd182740c00c91426163b8756e25ae47b661dd14bca65487";
const EVENT_PERIOD_HASH: &str = "4569f37fb064653dc29e6a0f174822a7b70a8b7ccf20112b364341f366d4623e";
const EVENT_DESCRIPTION_HASH: &str =
    "d0e554984aed7421d10a67f83c89494f269af95ae69f63ec2546268fcc99c760";
const ALL_DAY_EVENT_HASH: &str = "fd8e0f1ba424e88e2ce5bd1d9c68d7e1dda952f0ab557e18d90792b5c58e40eb";
const ALL_DAY_PERIOD_HASH: &str =
    "523cbfc7e7bc74ca0009af5f1acebeba65268fe025ee392fe2aa68a16142a43a";
const CONTACT_HASH: &str = "f7a8890cb7d2e0d2bef76f4ac5698d676e1b7dc80207a1e65f7a859f5964e13e";
const CONTACT_EMAILS_HASH: &str =
    "962171066514f707db5cae140ddde8fd180fce7babf3ea0bffc3e735a88f50df";
const CONTACT_PHONES_HASH: &str =
    "ba200c9bc10d6f6efd054f0170ae2cdfa33d28fa3093f46b2f46ff34bd72b4a7";
const CONTACT_PHOTO_HASH: &str = "5da108569d0356056d51e871fd70286dd40a08eca18a5592da8ef3fd1ac7d1f9";
const CONTACT_BIRTHDAY_HASH: &str =
    "be2fbd01e7fb7bfe58bc5f1a4facf231c80ce7fc9bd52a1f818d9630e93a5641";

#[test]
fn event_hashes_are_pinned() {
    let e = golden_event();
    assert_eq!(e.content_hash().to_string(), EVENT_HASH);
    assert_eq!(e.canonical().hash.to_string(), EVENT_HASH);
    assert_eq!(
        e.field_hash(EventField::Title).to_string(),
        EVENT_TITLE_HASH
    );
    assert_eq!(
        e.field_hash(EventField::Period).to_string(),
        EVENT_PERIOD_HASH
    );
    assert_eq!(
        e.field_hash(EventField::Description).to_string(),
        EVENT_DESCRIPTION_HASH
    );
    let a = golden_all_day_event();
    assert_eq!(a.content_hash().to_string(), ALL_DAY_EVENT_HASH);
    assert_eq!(
        a.field_hash(EventField::Period).to_string(),
        ALL_DAY_PERIOD_HASH
    );
}

#[test]
fn contact_hashes_are_pinned() {
    let c = golden_contact();
    assert_eq!(c.content_hash().to_string(), CONTACT_HASH);
    assert_eq!(c.canonical().hash.to_string(), CONTACT_HASH);
    assert_eq!(
        c.field_hash(ContactField::Emails).to_string(),
        CONTACT_EMAILS_HASH
    );
    assert_eq!(
        c.field_hash(ContactField::Phones).to_string(),
        CONTACT_PHONES_HASH
    );
    assert_eq!(
        c.field_hash(ContactField::Photo).to_string(),
        CONTACT_PHOTO_HASH
    );
    assert_eq!(
        c.field_hash(ContactField::Birthday).to_string(),
        CONTACT_BIRTHDAY_HASH
    );
}

/// The canonical JSON text behind some of the pinned hashes, so a failure says what moved.
#[test]
fn canonical_texts_are_pinned() {
    fn text(v: &serde_json::Value) -> String {
        let mut out = Vec::new();
        crmsync_core::hash::canonical_json(v, &mut out);
        String::from_utf8(out).expect("utf-8")
    }
    let e = golden_event();
    assert_eq!(
        text(&e.comparable(EventField::Title)),
        r#""Kick-off with ACME""#
    );
    // 2026-03-02 10:00 and 11:30 in Paris (UTC+1), as Unix seconds.
    assert_eq!(
        text(&e.comparable(EventField::Period)),
        r#"{"end":1772447400,"start":1772442000}"#
    );
    assert_eq!(
        text(&e.comparable(EventField::Description)),
        r#""Agenda: budget & hiring\nBring the Q1 deck""#
    );
    let a = golden_all_day_event();
    assert_eq!(
        text(&a.comparable(EventField::Period)),
        r#"{"first_day":"2026-07-14","last_day":"2026-07-14"}"#
    );
    let c = golden_contact();
    assert_eq!(
        text(&c.comparable(ContactField::Emails)),
        r#"[["ann.lee@example.com","work"],["ann@home.example","home"]]"#
    );
    assert_eq!(
        text(&c.comparable(ContactField::Phones)),
        r#"[["+33123456789;ext=12","work"],["+33612345678","mobile"]]"#
    );
    assert_eq!(
        text(&c.comparable(ContactField::Birthday)),
        r#"{"day":29,"month":2}"#
    );
}

/// The same event as a provider returns it (in UTC, HTML reflowed, fields reformatted)
/// hashes the same: the pinned values are not tied to one spelling.
#[test]
fn a_provider_copy_hashes_the_same() {
    let mut copy = golden_event();
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    copy.period = Period::timed(
        day.and_hms_opt(9, 0, 0).expect("time"),
        day.and_hms_opt(10, 30, 0).expect("time"),
        Zone::UTC,
    )
    .expect("period");
    copy.title = "Kick-off with ACME".into();
    copy.description = "Agenda: budget & hiring\n\nBring the Q1 deck\n".into();
    copy.category = Some(" Meeting ".into());
    assert_eq!(copy.content_hash().to_string(), EVENT_HASH);

    let mut copy = golden_contact();
    copy.emails.reverse();
    copy.phones[0].number = PhoneNumber::new("+33612345678").expect("phone");
    copy.notes = "<p>Met at the fair.</p><p>Wants a demo.</p>".into();
    copy.groups = ["VIP ".to_owned(), " Customers".to_owned()].into();
    assert_eq!(copy.content_hash().to_string(), CONTACT_HASH);
    assert_eq!(
        Record::field(&copy, ContactField::Notes),
        "Met at the fair.\nWants a demo."
    );
}
