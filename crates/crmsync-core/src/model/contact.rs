//! Contacts.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::model::types::{Birthday, EmailAddress, Origin, PhoneNumber, Photo};
use crate::normalize;
use crate::record::{
    Direction, Field, FieldLoss, FieldValue, Fitted, Record, from_field_value, to_field_value,
};
use crate::store::Capabilities;

/// The parts of a person's name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Name {
    /// Civility or honorific prefix ("Mrs", "Dr").
    pub prefix: String,
    /// Given name.
    pub given: String,
    /// Middle name.
    pub middle: String,
    /// Family name.
    pub family: String,
    /// Suffix ("Jr.").
    pub suffix: String,
}

impl Name {
    fn normalized(&self) -> Name {
        Name {
            prefix: normalize::line(&self.prefix),
            given: normalize::line(&self.given),
            middle: normalize::line(&self.middle),
            family: normalize::line(&self.family),
            suffix: normalize::line(&self.suffix),
        }
    }
}

/// What an e-mail address, a phone number or a postal address is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// Work.
    Work,
    /// Home.
    Home,
    /// A mobile phone (kept apart from work and home numbers).
    Mobile,
    /// A fax.
    Fax,
    /// Anything else.
    #[default]
    Other,
}

/// An e-mail address with its usage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Email {
    /// The address.
    pub address: EmailAddress,
    /// Its usage.
    #[serde(default)]
    pub usage: Usage,
}

/// A phone number with its usage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Phone {
    /// The number.
    pub number: PhoneNumber,
    /// Its usage ([`Usage::Mobile`] for a mobile).
    #[serde(default)]
    pub usage: Usage,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PostalAddress {
    /// Street lines.
    pub lines: Vec<String>,
    /// Postal code.
    pub postal_code: String,
    /// City.
    pub city: String,
    /// Region, state or province.
    pub region: String,
    /// Country.
    pub country: String,
    /// Its usage.
    pub usage: Usage,
}

impl PostalAddress {
    fn normalized(&self) -> PostalAddress {
        PostalAddress {
            lines: self
                .lines
                .iter()
                .map(|l| normalize::line(l))
                .filter(|l| !l.is_empty())
                .collect(),
            postal_code: normalize::line(&self.postal_code),
            city: normalize::line(&self.city),
            region: normalize::line(&self.region),
            country: normalize::line(&self.country),
            usage: self.usage,
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
            && self.postal_code.is_empty()
            && self.city.is_empty()
            && self.region.is_empty()
            && self.country.is_empty()
    }
}

/// An instant-messaging handle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImHandle {
    /// The service ("skype", "xmpp", "sip", ...), lower case.
    pub service: String,
    /// The handle on it.
    pub handle: String,
}

/// Company and job title.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Organization {
    /// The company.
    pub company: String,
    /// The job title.
    pub job_title: String,
}

/// A contact (a person in the CRM).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// The name as shown.
    pub display_name: String,
    /// The name's parts.
    pub name: Name,
    /// E-mail addresses, the preferred first.
    pub emails: Vec<Email>,
    /// Phone numbers, the preferred first.
    pub phones: Vec<Phone>,
    /// Postal addresses.
    pub addresses: Vec<PostalAddress>,
    /// Company and job title.
    pub organization: Organization,
    /// Notes (comment).
    pub notes: String,
    /// Birthday.
    pub birthday: Option<Birthday>,
    /// Instant-messaging handles.
    pub im: Vec<ImHandle>,
    /// Photo.
    pub photo: Option<Photo>,
    /// The names of the groups the contact belongs to.
    pub groups: BTreeSet<String>,
    /// Where the record came from, when crmsync created it from a provider item.
    pub origin: Option<Origin>,
}

impl Contact {
    /// A contact with a display name; everything else empty.
    pub fn new(display_name: impl Into<String>) -> Self {
        Contact {
            display_name: display_name.into(),
            ..Contact::default()
        }
    }

    /// Adds an e-mail address.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not an address.
    pub fn with_email(mut self, address: &str, usage: Usage) -> Result<Self> {
        self.emails.push(Email {
            address: EmailAddress::new(address)?,
            usage,
        });
        Ok(self)
    }

    /// Adds a phone number.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not a number.
    pub fn with_phone(mut self, number: &str, usage: Usage) -> Result<Self> {
        self.phones.push(Phone {
            number: PhoneNumber::new(number)?,
            usage,
        });
        Ok(self)
    }
}

/// The fields of a [`Contact`], one per row of the contact policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    /// [`Contact::display_name`].
    DisplayName,
    /// [`Contact::name`]: prefix (civility), given, middle, family, suffix.
    Name,
    /// [`Contact::notes`].
    Notes,
    /// [`Contact::emails`].
    Emails,
    /// [`Contact::phones`]: work and mobile.
    Phones,
    /// [`Contact::addresses`].
    Addresses,
    /// [`Contact::organization`]: company and job title.
    Organization,
    /// [`Contact::photo`].
    Photo,
    /// [`Contact::birthday`].
    Birthday,
    /// [`Contact::im`].
    InstantMessaging,
    /// [`Contact::groups`].
    Groups,
}

impl fmt::Display for ContactField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Field for ContactField {
    const ALL: &'static [Self] = &[
        ContactField::DisplayName,
        ContactField::Name,
        ContactField::Notes,
        ContactField::Emails,
        ContactField::Phones,
        ContactField::Addresses,
        ContactField::Organization,
        ContactField::Photo,
        ContactField::Birthday,
        ContactField::InstantMessaging,
        ContactField::Groups,
    ];

    fn name(self) -> &'static str {
        match self {
            ContactField::DisplayName => "display_name",
            ContactField::Name => "name",
            ContactField::Notes => "notes",
            ContactField::Emails => "emails",
            ContactField::Phones => "phones",
            ContactField::Addresses => "addresses",
            ContactField::Organization => "organization",
            ContactField::Photo => "photo",
            ContactField::Birthday => "birthday",
            ContactField::InstantMessaging => "instant_messaging",
            ContactField::Groups => "groups",
        }
    }

    /// The defaults of vendor Google-sync guides: the CRM owns identity and coordinates,
    /// name parts are not synced, notes, birthday, messaging and groups go both ways.
    fn default_direction(self) -> Direction {
        match self {
            ContactField::Name => Direction::Skip,
            ContactField::Notes
            | ContactField::Birthday
            | ContactField::InstantMessaging
            | ContactField::Groups => Direction::Both,
            ContactField::DisplayName
            | ContactField::Emails
            | ContactField::Phones
            | ContactField::Addresses
            | ContactField::Organization
            | ContactField::Photo => Direction::CrmToProvider,
        }
    }
}

fn normalized_im(im: &[ImHandle]) -> Vec<ImHandle> {
    im.iter()
        .map(|h| ImHandle {
            service: normalize::line(&h.service).to_lowercase(),
            handle: normalize::line(&h.handle),
        })
        .filter(|h| !h.handle.is_empty())
        .collect()
}

/// Keeps the first of the items with the same key, in order.
fn dedup_by_key<T, K: Ord>(list: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen = BTreeSet::new();
    list.retain(|item| seen.insert(key(item)));
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

impl Record for Contact {
    type Field = ContactField;
    const KIND: &'static str = "contact";
    /// CRM sync guides cap contacts at 2,000 per user.
    const DEFAULT_CAP: Option<usize> = Some(2000);

    fn summary(&self) -> String {
        let name = normalize::line(&self.display_name);
        if name.is_empty() {
            self.emails
                .first()
                .map(|e| e.address.to_string())
                .unwrap_or_default()
        } else {
            name
        }
    }

    fn field(&self, field: ContactField) -> FieldValue {
        match field {
            ContactField::DisplayName => json!(normalize::line(&self.display_name)),
            ContactField::Name => to_field_value(&self.name.normalized()),
            ContactField::Notes => json!(normalize::text(&self.notes)),
            ContactField::Emails => to_field_value(&self.emails),
            ContactField::Phones => to_field_value(&self.phones),
            ContactField::Addresses => to_field_value(
                &self
                    .addresses
                    .iter()
                    .map(PostalAddress::normalized)
                    .filter(|a| !a.is_empty())
                    .collect::<Vec<_>>(),
            ),
            ContactField::Organization => to_field_value(&Organization {
                company: normalize::line(&self.organization.company),
                job_title: normalize::line(&self.organization.job_title),
            }),
            ContactField::Photo => to_field_value(&self.photo),
            ContactField::Birthday => to_field_value(&self.birthday),
            ContactField::InstantMessaging => to_field_value(&normalized_im(&self.im)),
            ContactField::Groups => to_field_value(
                &self
                    .groups
                    .iter()
                    .map(|g| normalize::line(g))
                    .filter(|g| !g.is_empty())
                    .collect::<BTreeSet<_>>(),
            ),
        }
    }

    fn comparable(&self, field: ContactField) -> FieldValue {
        match field {
            // Lists compare without their order and punctuation: providers reorder and
            // reformat them.
            ContactField::Emails => json!(sorted(
                self.emails
                    .iter()
                    .map(|e| (e.address.comparable(), e.usage))
                    .collect()
            )),
            ContactField::Phones => json!(sorted(
                self.phones
                    .iter()
                    .map(|p| (p.number.comparable(), p.usage))
                    .collect()
            )),
            ContactField::Addresses => {
                let mut v: Vec<FieldValue> = match self.field(field) {
                    FieldValue::Array(items) => items,
                    other => vec![other],
                };
                v.sort_by_key(|a| a.to_string());
                FieldValue::Array(v)
            }
            ContactField::InstantMessaging => to_field_value(&sorted(normalized_im(&self.im))),
            // Paragraphs and reflowed spaces are what HTML editors change on their own.
            ContactField::Notes => json!(normalize::text_comparable(&self.notes)),
            // Compared by content hash: the bytes are what matter, not their encoding.
            ContactField::Photo => json!(self.photo.as_ref().map(|p| p.hash().to_string())),
            _ => self.field(field),
        }
    }

    fn set_field(&mut self, field: ContactField, value: &FieldValue) -> Result<()> {
        let name = field.name();
        match field {
            ContactField::DisplayName => {
                self.display_name = normalize::line(
                    &from_field_value::<Option<String>>(name, value)?.unwrap_or_default(),
                );
            }
            ContactField::Name => {
                self.name = from_field_value::<Option<Name>>(name, value)?
                    .unwrap_or_default()
                    .normalized()
            }
            ContactField::Notes => {
                self.notes = normalize::text(
                    &from_field_value::<Option<String>>(name, value)?.unwrap_or_default(),
                );
            }
            ContactField::Emails => {
                self.emails = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
            ContactField::Phones => {
                self.phones = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
            ContactField::Addresses => {
                self.addresses = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
            ContactField::Organization => {
                self.organization = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
            ContactField::Photo => self.photo = from_field_value(name, value)?,
            ContactField::Birthday => self.birthday = from_field_value(name, value)?,
            ContactField::InstantMessaging => {
                self.im = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
            ContactField::Groups => {
                self.groups = from_field_value::<Option<_>>(name, value)?.unwrap_or_default()
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.display_name.trim().is_empty()
            && self.name.given.trim().is_empty()
            && self.name.family.trim().is_empty()
            && self.emails.is_empty()
            && self.organization.company.trim().is_empty()
        {
            return Err(Error::invalid_record(
                Some("display_name"),
                "a contact needs a name, an e-mail address or a company",
            ));
        }
        Ok(())
    }

    fn fit(&self, caps: &Capabilities) -> Fitted<Self> {
        let mut record = self.clone();
        let mut losses = Vec::new();
        fn cap<T: fmt::Debug>(
            list: &mut Vec<T>,
            max: Option<usize>,
            field: &str,
            losses: &mut Vec<FieldLoss>,
        ) {
            if let Some(max) = max
                && list.len() > max
            {
                let dropped = list.split_off(max);
                losses.push(FieldLoss {
                    field: field.into(),
                    detail: format!("only {max} kept; dropped {dropped:?}"),
                });
            }
        }
        // Duplicates (same comparable value) and empty addresses are no content: they must
        // not take the place of a real value under a cap.
        dedup_by_key(&mut record.emails, |e| (e.address.comparable(), e.usage));
        dedup_by_key(&mut record.phones, |p| (p.number.comparable(), p.usage));
        record.addresses = record
            .addresses
            .iter()
            .map(PostalAddress::normalized)
            .filter(|a| !a.is_empty())
            .collect();
        cap(&mut record.emails, caps.max_emails, "emails", &mut losses);
        cap(&mut record.phones, caps.max_phones, "phones", &mut losses);
        cap(
            &mut record.addresses,
            caps.max_addresses,
            "addresses",
            &mut losses,
        );
        for &f in ContactField::ALL {
            if !caps.supports(f) {
                let empty = Contact::default();
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

    fn set_origin(&mut self, provider: &str, id: &str) {
        self.origin = Some(Origin {
            provider: provider.to_owned(),
            id: id.to_owned(),
        });
    }

    fn natural_key(&self) -> Option<String> {
        self.emails
            .first()
            .map(|e| format!("email:{}", e.address.comparable()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordExt;

    fn ann() -> Contact {
        Contact::new("Ann Lee")
            .with_email("ann@example.com", Usage::Work)
            .unwrap()
            .with_email("ann.lee@home.example", Usage::Home)
            .unwrap()
            .with_phone("+33 6 12 34 56 78", Usage::Mobile)
            .unwrap()
    }

    #[test]
    fn reordered_and_reformatted_lists_are_no_change() {
        let a = ann();
        let mut b = ann();
        b.emails.reverse();
        b.emails[0].address = EmailAddress::new("ANN.LEE@home.example").unwrap();
        b.phones[0].number = PhoneNumber::new("+33612345678").unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn fitting_three_emails_reports_the_rest() {
        let mut c = ann();
        for i in 0..3 {
            c.emails.push(Email {
                address: EmailAddress::new(format!("x{i}@example.com")).unwrap(),
                usage: Usage::Other,
            });
        }
        let mut caps = Capabilities::unlimited("outlook");
        caps.max_emails = Some(3);
        let fitted = c.fit(&caps);
        assert_eq!(fitted.record.emails.len(), 3);
        assert_eq!(fitted.losses.len(), 1);
        assert_eq!(fitted.losses[0].field, "emails");
    }

    /// Bug: a duplicate address (same comparable value) or an empty postal address counted
    /// against a store's cap and pushed a real value out.
    #[test]
    fn duplicates_and_empty_values_do_not_count_against_caps() {
        let mut c = ann();
        c.emails.insert(
            1,
            Email {
                address: EmailAddress::new("ANN@example.com").unwrap(),
                usage: Usage::Work,
            },
        );
        c.addresses = vec![
            PostalAddress::default(),
            PostalAddress {
                city: "Lyon".into(),
                ..PostalAddress::default()
            },
        ];
        let mut caps = Capabilities::unlimited("outlook");
        caps.max_emails = Some(2);
        caps.max_addresses = Some(1);
        let fitted = c.fit(&caps);
        assert_eq!(fitted.losses, Vec::new());
        assert_eq!(fitted.record.emails, ann().emails);
        assert_eq!(fitted.record.addresses[0].city, "Lyon");
        assert_eq!(fitted.record.content_hash(), c.content_hash());
    }

    /// Bug: notes edited in an HTML editor (paragraphs, reflowed spaces) read as an edit.
    #[test]
    fn html_notes_compare_equal_to_their_text() {
        let mut a = ann();
        a.notes = "Met at the fair.\n\nWants  a demo.".into();
        let mut b = ann();
        b.notes = "<html><body><p>Met at the fair.</p><p>Wants a demo.</p></body></html>".into();
        assert_eq!(
            a.field_hash(ContactField::Notes),
            b.field_hash(ContactField::Notes)
        );
    }

    #[test]
    fn fields_round_trip() {
        let a = ann();
        let mut b = Contact::default();
        for &f in ContactField::ALL {
            b.set_field(f, &a.field(f)).unwrap();
        }
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn invalid_email_value_is_a_typed_error() {
        let mut c = ann();
        let err = c
            .set_field(
                ContactField::Emails,
                &json!([{"address": "not an address"}]),
            )
            .unwrap_err();
        assert!(
            matches!(err.kind(), crate::ErrorKind::InvalidRecord { field: Some(f), .. } if f == "emails")
        );
        assert_eq!(c, ann());
    }
}
