//! Wire ⇄ model: Graph `contact` JSON and [`Contact`].
//!
//! | model | Graph `contact` |
//! |---|---|
//! | display name | `displayName` |
//! | name: prefix, given, middle, family, suffix | `title`, `givenName`, `middleName`, `surname`, `generation` |
//! | notes | `personalNotes` (plain text) |
//! | e-mail addresses | `emailAddresses` (Outlook's E-mail 1..3, no type: see below) |
//! | phones | `businessPhones` (work), `homePhones` (home), `mobilePhone` (one mobile) |
//! | postal addresses | `businessAddress`, `homeAddress`, `otherAddress` (lines joined in `street`) |
//! | organization | `companyName`, `jobTitle` |
//! | birthday | `birthday`, a `DateTimeOffset` at midnight UTC; a birthday without a year is written in 1604 (the year Outlook and vCard tools use for "no year") |
//! | instant messaging | `imAddresses`, `service:handle` |
//! | groups | `categories` |
//! | photo | not in the JSON: `…/contacts/{id}/photo/$value` (see `GraphContacts`) |
//!
//! Outlook keeps no type on e-mail addresses: they are written work first, then home,
//! then the others, and read by slot, E-mail 1 as work, 2 as home, 3 as other. Phones
//! other than work, home and one mobile (fax, other, a second mobile) are written as
//! business numbers. crmsync keeps the usages Outlook cannot hold in an extended property
//! of the contact ([`usages_to_graph`]) and gives them back on reading
//! ([`apply_usages`]); a value it does not name (added in Outlook) keeps its slot's. Graph fields the model does not hold (`nickName`, `department`,
//! `officeLocation`, …) are never written, so an update leaves them as they are.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Utc};
use crmsync_core::record::Field;
use crmsync_core::{
    Birthday, Contact, ContactField, Email, EmailAddress, Error, ImHandle, Name, Organization,
    Phone, PhoneNumber, PostalAddress, Result, Usage,
};
use serde_json::{Map, Value, json};

/// The year a birthday without a year is written in (a leap year, so February 29 fits).
pub const NO_YEAR: i32 = 1604;

/// The most e-mail addresses an Outlook contact holds (E-mail, E-mail 2, E-mail 3).
pub const MAX_EMAILS: usize = 3;

/// The usage of each e-mail slot, in order.
const EMAIL_SLOTS: [Usage; MAX_EMAILS] = [Usage::Work, Usage::Home, Usage::Other];

/// The Graph properties holding each field.
pub fn graph_properties(field: ContactField) -> &'static [&'static str] {
    match field {
        ContactField::DisplayName => &["displayName"],
        ContactField::Name => &["title", "givenName", "middleName", "surname", "generation"],
        ContactField::Notes => &["personalNotes"],
        ContactField::Emails => &["emailAddresses"],
        ContactField::Phones => &["businessPhones", "homePhones", "mobilePhone"],
        ContactField::Addresses => &["businessAddress", "homeAddress", "otherAddress"],
        ContactField::Organization => &["companyName", "jobTitle"],
        ContactField::Birthday => &["birthday"],
        ContactField::InstantMessaging => &["imAddresses"],
        ContactField::Groups => &["categories"],
        // `…/photo/$value`, never in the JSON.
        ContactField::Photo => &[],
    }
}

/// What a Graph object (a delta item may be partial) carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Present {
    /// The fields whose properties are all there.
    pub fields: BTreeSet<ContactField>,
    /// Whether some field has only part of its properties (it cannot be read alone).
    pub half: bool,
}

/// The fields of a contact a Graph object carries.
pub fn fields_present(value: &Value) -> Present {
    let mut present = Present::default();
    for &field in ContactField::ALL {
        let props = graph_properties(field);
        if props.is_empty() {
            continue;
        }
        let n = props.iter().filter(|p| value.get(**p).is_some()).count();
        if n == props.len() {
            present.fields.insert(field);
        } else if n > 0 {
            present.half = true;
        }
    }
    present
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(value: &Value, key: &str, field: ContactField) -> Result<Vec<String>> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    Error::invalid_record(Some(field.name()), format!("`{key}` holds {v}"))
                })
            })
            .collect(),
        Some(other) => Err(Error::invalid_record(
            Some(field.name()),
            format!("`{key}` is not a list: {other}"),
        )),
    }
}

fn invalid(field: ContactField, e: &Error) -> Error {
    Error::invalid_record(Some(field.name()), e.to_string())
}

fn email_from(value: &Value, slot: usize) -> Result<Option<Email>> {
    let address = match value {
        Value::Null => return Ok(None),
        Value::Object(_) => text(value, "address"),
        other => {
            return Err(Error::invalid_record(
                Some(ContactField::Emails.name()),
                format!("an e-mail entry is not an object: {other}"),
            ));
        }
    };
    if address.trim().is_empty() {
        return Ok(None);
    }
    let address = EmailAddress::new(address).map_err(|e| invalid(ContactField::Emails, &e))?;
    Ok(Some(Email {
        address,
        usage: EMAIL_SLOTS.get(slot).copied().unwrap_or(Usage::Other),
    }))
}

fn phone(number: &str, usage: Usage) -> Result<Option<Phone>> {
    if number.trim().is_empty() {
        return Ok(None);
    }
    let number = PhoneNumber::new(number).map_err(|e| invalid(ContactField::Phones, &e))?;
    Ok(Some(Phone { number, usage }))
}

fn address_from(value: &Value, key: &str, usage: Usage) -> Result<Option<PostalAddress>> {
    let a = match value.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(a @ Value::Object(_)) => a,
        Some(other) => {
            return Err(Error::invalid_record(
                Some(ContactField::Addresses.name()),
                format!("`{key}` is not an address: {other}"),
            ));
        }
    };
    let address = PostalAddress {
        lines: text(a, "street")
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect(),
        postal_code: text(a, "postalCode").trim().to_owned(),
        city: text(a, "city").trim().to_owned(),
        region: text(a, "state").trim().to_owned(),
        country: text(a, "countryOrRegion").trim().to_owned(),
        usage,
    };
    let empty = address.lines.is_empty()
        && address.postal_code.is_empty()
        && address.city.is_empty()
        && address.region.is_empty()
        && address.country.is_empty();
    Ok((!empty).then_some(address))
}

/// The birthday of Graph's `DateTimeOffset`: the nearest midnight in UTC (Outlook may store
/// a birthday at the local midnight of the mailbox's zone), the year 1604 read as none.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crmsync_core::ErrorKind::InvalidRecord) when it is not a
/// date-time.
pub fn birthday_from_graph(text: &str) -> Result<Birthday> {
    let bad = |why: String| {
        Error::invalid_record(
            Some(ContactField::Birthday.name()),
            format!("`{text}` is not a birthday: {why}"),
        )
    };
    let at = DateTime::parse_from_rfc3339(text).map_err(|e| bad(e.to_string()))?;
    let day = (at.with_timezone(&Utc) + Duration::hours(12)).date_naive();
    let year = (day.year() != NO_YEAR).then_some(day.year());
    Birthday::new(year, day.month(), day.day()).map_err(|e| bad(e.to_string()))
}

/// Graph's `birthday` of a birthday: midnight UTC, in 1604 when the year is unknown.
pub fn birthday_to_graph(birthday: &Birthday) -> String {
    format!(
        "{:04}-{:02}-{:02}T00:00:00Z",
        birthday.year().unwrap_or(NO_YEAR),
        birthday.month(),
        birthday.day()
    )
}

fn im_from(text: &str) -> Option<ImHandle> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.split_once(':') {
        Some((service, handle))
            if !service.is_empty()
                && service.len() <= 16
                && !handle.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Some(ImHandle {
                service: service.to_ascii_lowercase(),
                handle: handle.to_owned(),
            })
        }
        _ => Some(ImHandle {
            service: String::new(),
            handle: text.to_owned(),
        }),
    }
}

fn im_to(handle: &ImHandle) -> String {
    if handle.service.trim().is_empty() {
        handle.handle.clone()
    } else {
        format!("{}:{}", handle.service.trim(), handle.handle)
    }
}

/// The contact of a Graph object. The fields it does not carry stay empty; the photo is
/// never in the JSON.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crmsync_core::ErrorKind::InvalidRecord), naming the field,
/// for a value Graph should not hold (an e-mail address without `@`, a birthday that is
/// not a date, a list that is not one).
pub fn contact_from_graph(value: &Value) -> Result<Contact> {
    if !value.is_object() {
        return Err(Error::invalid_record(
            None,
            "a contact is not a JSON object",
        ));
    }
    let mut contact = Contact::new(text(value, "displayName"));
    contact.name = Name {
        prefix: text(value, "title").to_owned(),
        given: text(value, "givenName").to_owned(),
        middle: text(value, "middleName").to_owned(),
        family: text(value, "surname").to_owned(),
        suffix: text(value, "generation").to_owned(),
    };
    contact.notes = text(value, "personalNotes").to_owned();
    match value.get("emailAddresses") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (slot, item) in items.iter().enumerate() {
                contact.emails.extend(email_from(item, slot)?);
            }
        }
        Some(other) => {
            return Err(Error::invalid_record(
                Some(ContactField::Emails.name()),
                format!("`emailAddresses` is not a list: {other}"),
            ));
        }
    }
    for number in strings(value, "businessPhones", ContactField::Phones)? {
        contact.phones.extend(phone(&number, Usage::Work)?);
    }
    for number in strings(value, "homePhones", ContactField::Phones)? {
        contact.phones.extend(phone(&number, Usage::Home)?);
    }
    contact
        .phones
        .extend(phone(text(value, "mobilePhone"), Usage::Mobile)?);
    for (key, usage) in [
        ("businessAddress", Usage::Work),
        ("homeAddress", Usage::Home),
        ("otherAddress", Usage::Other),
    ] {
        contact.addresses.extend(address_from(value, key, usage)?);
    }
    contact.organization = Organization {
        company: text(value, "companyName").to_owned(),
        job_title: text(value, "jobTitle").to_owned(),
    };
    contact.birthday = match value.get("birthday") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(birthday_from_graph(s)?),
        Some(other) => {
            return Err(Error::invalid_record(
                Some(ContactField::Birthday.name()),
                format!("`birthday` is not a date-time: {other}"),
            ));
        }
    };
    contact.im = strings(value, "imAddresses", ContactField::InstantMessaging)?
        .iter()
        .filter_map(|s| im_from(s))
        .collect();
    contact.groups = strings(value, "categories", ContactField::Groups)?
        .into_iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    Ok(contact)
}

fn optional(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        Value::Null
    } else {
        json!(text)
    }
}

fn usage_rank(usage: Usage) -> usize {
    EMAIL_SLOTS
        .iter()
        .position(|u| *u == usage)
        .unwrap_or(EMAIL_SLOTS.len())
}

fn address_to_graph(a: &PostalAddress) -> Value {
    json!({
        "street": a.lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"),
        "city": a.city.trim(),
        "state": a.region.trim(),
        "postalCode": a.postal_code.trim(),
        "countryOrRegion": a.country.trim(),
    })
}

/// The three address slots of the addresses: each in the slot of its usage (work:
/// business, home: home, anything else: other), or in the first free slot when that one
/// is taken. Addresses beyond three are left out (the store's capabilities say three, so
/// the engine reports them).
fn address_slots(addresses: &[PostalAddress]) -> [Option<&PostalAddress>; 3] {
    const KEYS: [Usage; 3] = [Usage::Work, Usage::Home, Usage::Other];
    let mut slots: [Option<&PostalAddress>; 3] = [None, None, None];
    let mut rest = Vec::new();
    for a in addresses {
        let wanted = KEYS.iter().position(|u| *u == a.usage).unwrap_or(2);
        if slots[wanted].is_none() {
            slots[wanted] = Some(a);
        } else {
            rest.push(a);
        }
    }
    for a in rest {
        if let Some(free) = [2, 0, 1].into_iter().find(|&i| slots[i].is_none()) {
            slots[free] = Some(a);
        }
    }
    slots
}

/// The Graph properties of `fields` of a contact (all of them for a create). The photo is
/// written apart; fields Graph has no property for are not written.
pub fn contact_to_graph(contact: &Contact, fields: &BTreeSet<ContactField>) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        match field {
            ContactField::DisplayName => {
                out.insert("displayName".into(), json!(contact.display_name.trim()));
            }
            ContactField::Name => {
                let n = &contact.name;
                out.insert("title".into(), optional(&n.prefix));
                out.insert("givenName".into(), optional(&n.given));
                out.insert("middleName".into(), optional(&n.middle));
                out.insert("surname".into(), optional(&n.family));
                out.insert("generation".into(), optional(&n.suffix));
            }
            ContactField::Notes => {
                out.insert("personalNotes".into(), json!(contact.notes));
            }
            ContactField::Emails => {
                let mut emails: Vec<&Email> = contact.emails.iter().collect();
                emails.sort_by_key(|e| usage_rank(e.usage));
                let list: Vec<Value> = emails
                    .iter()
                    .map(|e| json!({"address": e.address.as_str(), "name": e.address.as_str()}))
                    .collect();
                out.insert("emailAddresses".into(), Value::Array(list));
            }
            ContactField::Phones => {
                let mut business = Vec::new();
                let mut home = Vec::new();
                let mut mobile = None;
                for p in &contact.phones {
                    match p.usage {
                        Usage::Home => home.push(p.number.as_str()),
                        Usage::Mobile if mobile.is_none() => mobile = Some(p.number.as_str()),
                        _ => business.push(p.number.as_str()),
                    }
                }
                out.insert("businessPhones".into(), json!(business));
                out.insert("homePhones".into(), json!(home));
                out.insert("mobilePhone".into(), json!(mobile));
            }
            ContactField::Addresses => {
                let slots = address_slots(&contact.addresses);
                for (key, slot) in ["businessAddress", "homeAddress", "otherAddress"]
                    .into_iter()
                    .zip(slots)
                {
                    let value = slot.map_or_else(|| json!({}), address_to_graph);
                    out.insert(key.into(), value);
                }
            }
            ContactField::Organization => {
                out.insert(
                    "companyName".into(),
                    optional(&contact.organization.company),
                );
                out.insert("jobTitle".into(), optional(&contact.organization.job_title));
            }
            ContactField::Birthday => {
                out.insert(
                    "birthday".into(),
                    contact
                        .birthday
                        .as_ref()
                        .map_or(Value::Null, |b| json!(birthday_to_graph(b))),
                );
            }
            ContactField::InstantMessaging => {
                let list: Vec<String> = contact
                    .im
                    .iter()
                    .filter(|h| !h.handle.trim().is_empty())
                    .map(im_to)
                    .collect();
                out.insert("imAddresses".into(), json!(list));
            }
            ContactField::Groups => {
                let list: Vec<&str> = contact
                    .groups
                    .iter()
                    .map(|g| g.trim())
                    .filter(|g| !g.is_empty())
                    .collect();
                out.insert("categories".into(), json!(list));
            }
            ContactField::Photo => {}
        }
    }
    out
}

fn usage_name(usage: Usage) -> &'static str {
    match usage {
        Usage::Work => "work",
        Usage::Home => "home",
        Usage::Mobile => "mobile",
        Usage::Fax => "fax",
        Usage::Other => "other",
    }
}

fn usage_named(name: &str) -> Option<Usage> {
    Some(match name {
        "work" => Usage::Work,
        "home" => Usage::Home,
        "mobile" => Usage::Mobile,
        "fax" => Usage::Fax,
        "other" => Usage::Other,
        _ => return None,
    })
}

/// The usages Outlook cannot hold (of e-mail addresses; of fax, other and second mobile
/// numbers, written as business numbers), as crmsync keeps them next to a contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptUsages {
    /// Comparable e-mail address and its usage.
    pub emails: Vec<(String, Usage)>,
    /// Comparable phone number and its usage.
    pub phones: Vec<(String, Usage)>,
}

/// The kept usages of a contact: one `email <usage> <address>` or `phone <usage>
/// <number>` line per value, in comparable form.
pub fn usages_to_graph(contact: &Contact) -> String {
    let emails = contact
        .emails
        .iter()
        .map(|e| format!("email {} {}", usage_name(e.usage), e.address.comparable()));
    let phones = contact
        .phones
        .iter()
        .map(|p| format!("phone {} {}", usage_name(p.usage), p.number.comparable()));
    emails.chain(phones).collect::<Vec<_>>().join("\n")
}

/// The usages kept by [`usages_to_graph`]; lines it cannot read are skipped.
pub fn usages_from_graph(text: &str) -> KeptUsages {
    let mut kept = KeptUsages::default();
    for line in text.lines() {
        let mut parts = line.trim().splitn(3, ' ');
        let (Some(kind), Some(usage), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(usage) = usage_named(usage) else {
            continue;
        };
        let entry = (value.trim().to_owned(), usage);
        match kind {
            "email" => kept.emails.push(entry),
            "phone" => kept.phones.push(entry),
            _ => {}
        }
    }
    kept
}

/// Gives each e-mail address and phone number the usage kept for it, when Outlook's slot
/// agrees with it (a number the user moved to another slot in Outlook keeps the slot's).
pub fn apply_usages(contact: &mut Contact, kept: &KeptUsages) {
    for email in &mut contact.emails {
        let key = email.address.comparable();
        if let Some((_, usage)) = kept.emails.iter().find(|(a, _)| *a == key) {
            email.usage = *usage;
        }
    }
    for phone in &mut contact.phones {
        let key = phone.number.comparable();
        let Some((_, usage)) = kept.phones.iter().find(|(n, _)| *n == key) else {
            continue;
        };
        // The usage read is the slot's: business numbers read as work.
        let fits = match (phone.usage, usage) {
            (Usage::Work, _) => *usage != Usage::Home,
            (slot, kept) => slot == *kept,
        };
        if fits {
            phone.usage = *usage;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_core::{Record, RecordExt};

    fn all() -> BTreeSet<ContactField> {
        ContactField::ALL.iter().copied().collect()
    }

    #[test]
    fn a_contact_round_trips_through_graph_json() {
        let mut c = Contact::new("Ann Lee")
            .with_email("ann@work.example", Usage::Work)
            .unwrap()
            .with_email("ann@home.example", Usage::Home)
            .unwrap()
            .with_phone("+33 1 23 45 67 89", Usage::Work)
            .unwrap()
            .with_phone("+33 6 12 34 56 78", Usage::Mobile)
            .unwrap();
        c.name.given = "Ann".into();
        c.name.family = "Lee".into();
        c.addresses.push(PostalAddress {
            lines: vec!["1 Main St".into(), "Floor 2".into()],
            city: "Lyon".into(),
            country: "France".into(),
            usage: Usage::Home,
            ..PostalAddress::default()
        });
        c.birthday = Some(Birthday::new(None, 2, 29).unwrap());
        c.im.push(ImHandle {
            service: "sip".into(),
            handle: "ann@work.example".into(),
        });
        c.groups.insert("VIP".into());
        let wire = Value::Object(contact_to_graph(&c, &all()));
        assert_eq!(wire["birthday"], "1604-02-29T00:00:00Z");
        assert_eq!(wire["homeAddress"]["street"], "1 Main St\nFloor 2");
        assert_eq!(wire["imAddresses"], json!(["sip:ann@work.example"]));
        let back = contact_from_graph(&wire).unwrap();
        assert_eq!(back.content_hash(), c.content_hash());
    }

    #[test]
    fn usages_outlook_cannot_hold_are_kept_beside_it() {
        let c = Contact::new("x")
            .with_email("Home@Example.com", Usage::Home)
            .unwrap()
            .with_email("fax@example.com", Usage::Fax)
            .unwrap()
            .with_phone("+33 1 00 00 00 01", Usage::Fax)
            .unwrap()
            .with_phone("+33 6 00 00 00 02", Usage::Mobile)
            .unwrap()
            .with_phone("+33 6 00 00 00 03", Usage::Mobile)
            .unwrap();
        let wire = Value::Object(contact_to_graph(
            &c,
            &[ContactField::Emails, ContactField::Phones]
                .into_iter()
                .collect(),
        ));
        let mut back = contact_from_graph(&wire).unwrap();
        assert_eq!(back.emails[0].usage, Usage::Work, "slot 1 reads as work");
        assert_eq!(back.phones[0].usage, Usage::Work, "a fax reads as business");
        let kept = usages_to_graph(&c);
        assert_eq!(
            kept,
            "email home home@example.com\nemail fax fax@example.com\nphone fax +33100000001\n\
             phone mobile +33600000002\nphone mobile +33600000003"
        );
        apply_usages(&mut back, &usages_from_graph(&kept));
        for field in [ContactField::Emails, ContactField::Phones] {
            assert_eq!(back.comparable(field), c.comparable(field), "{field}");
        }
        // A number the user moved to the home slot in Outlook keeps the slot's usage.
        let mut moved = back.clone();
        moved.phones[0].usage = Usage::Home;
        apply_usages(&mut moved, &usages_from_graph(&kept));
        assert_eq!(moved.phones[0].usage, Usage::Home);
    }

    #[test]
    fn a_birthday_stored_at_a_local_midnight_keeps_its_day() {
        // Midnight in Paris is 22:00 UTC the day before.
        let b = birthday_from_graph("1990-04-30T22:00:00Z").unwrap();
        assert_eq!((b.year(), b.month(), b.day()), (Some(1990), 5, 1));
        let b = birthday_from_graph("2016-10-19T10:37:00Z").unwrap();
        assert_eq!((b.year(), b.month(), b.day()), (Some(2016), 10, 19));
        assert!(birthday_from_graph("19 May").is_err());
    }

    #[test]
    fn bad_wire_values_are_invalid_records_naming_the_field() {
        for (wire, field) in [
            (
                json!({"emailAddresses": [{"address": "no at sign"}]}),
                "emails",
            ),
            (json!({"birthday": "tomorrow"}), "birthday"),
            (json!({"businessPhones": "+33 1"}), "phones"),
            (json!({"mobilePhone": "call me"}), "phones"),
        ] {
            match contact_from_graph(&wire).unwrap_err().kind() {
                crmsync_core::ErrorKind::InvalidRecord { field: Some(f), .. } => {
                    assert_eq!(f, field, "{wire}")
                }
                other => panic!("{wire}: {other:?}"),
            }
        }
    }

    #[test]
    fn partial_objects_name_their_fields() {
        let p = fields_present(&json!({"id": "x", "displayName": "A", "jobTitle": "CEO"}));
        assert_eq!(p.fields, [ContactField::DisplayName].into_iter().collect());
        assert!(p.half, "organization is half there");
        let p = fields_present(&json!({"companyName": null, "jobTitle": "CEO"}));
        assert_eq!(p.fields, [ContactField::Organization].into_iter().collect());
        assert!(!p.half);
    }

    #[test]
    fn addresses_fill_free_slots() {
        let a = |city: &str, usage| PostalAddress {
            city: city.into(),
            usage,
            ..PostalAddress::default()
        };
        let c = Contact {
            addresses: vec![
                a("A", Usage::Work),
                a("B", Usage::Work),
                a("C", Usage::Home),
            ],
            ..Contact::new("x")
        };
        let wire = contact_to_graph(&c, &[ContactField::Addresses].into_iter().collect());
        assert_eq!(wire["businessAddress"]["city"], "A");
        assert_eq!(wire["otherAddress"]["city"], "B");
        assert_eq!(wire["homeAddress"]["city"], "C");
    }
}
