//! Field tables of the request resources the fake accepts, written from the discovery documents
//! (`calendar.v3.json`, revision 20251028, and `people.v1.json`, revision 20240313), and the
//! validator that turns an unknown field or a wrongly typed value into a 400, as Google does.
//!
//! Each [`Schema`] lists *every* property of a discovery schema (so an unknown name is detected
//! exactly); sub-objects the fake does not model further are [`FieldType::Opaque`]. Inline objects
//! of the discovery document (e.g. `Event.reminders`) get a dotted name. The test
//! `tests/discovery_tables.rs` checks every entry against the discovery documents.

use serde_json::Value;

/// The JSON type of one property, as the discovery document declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A JSON string (any `format`: date, date-time, int64, byte, field mask ...).
    String,
    /// A JSON boolean.
    Boolean,
    /// A JSON integer (`int32` in the discovery documents).
    Integer,
    /// A JSON number.
    Number,
    /// An object described by another table of the same API, by name.
    Ref(&'static str),
    /// An array whose items have the given type.
    Array(&'static FieldType),
    /// An object with arbitrary keys whose values have the given type (`additionalProperties`).
    Map(&'static FieldType),
    /// A JSON object the fake does not model further (any object is accepted).
    Opaque,
}

/// One property of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The JSON name of the property.
    pub name: &'static str,
    /// Its JSON type.
    pub ty: FieldType,
}

/// The properties of one discovery schema (or of an inline object of one, with a dotted name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The discovery schema name, e.g. `Event`, or `Event.reminders` for an inline object.
    pub name: &'static str,
    /// All of its properties.
    pub fields: &'static [Field],
}

impl Schema {
    /// The property called `name`, if the schema has one.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Looks a schema up by name in one API's tables.
pub fn find_schema(tables: &'static [Schema], name: &str) -> Option<&'static Schema> {
    tables.iter().find(|s| s.name == name)
}

/// Why a request body does not match its schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// A property the schema does not have.
    UnknownField {
        /// Dotted path of the object holding it (e.g. `person.names[0]`).
        at: String,
        /// The unknown name.
        name: String,
    },
    /// A value of the wrong JSON type.
    WrongType {
        /// Dotted path of the value (e.g. `person.names[0].givenName`).
        at: String,
        /// The discovery type expected (`TYPE_STRING`, `TYPE_BOOL`, `TYPE_INT32`, ...).
        expected: &'static str,
        /// The offending value, rendered as JSON.
        value: String,
    },
}

impl Violation {
    /// The message Google's JSON front end gives for this violation (ESF wording, used by both
    /// fakes; see the crate docs for the evidence level).
    pub fn message(&self) -> String {
        match self {
            Violation::UnknownField { at, name } => {
                format!(
                    "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
                )
            }
            Violation::WrongType {
                at,
                expected,
                value,
            } => {
                format!(
                    "Invalid value at '{}' ({expected}), {value}",
                    snake_path(at)
                )
            }
        }
    }
}

fn snake_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Validates `value` against schema `root` of `tables`; `at` names the value in messages.
/// `null` is accepted for every property (it clears the field, as in Google's PATCH semantics).
pub fn validate(
    tables: &'static [Schema],
    root: &str,
    value: &Value,
    at: &str,
) -> Result<(), Violation> {
    check(tables, FieldType::Ref(leak_name(tables, root)), value, at)
}

fn leak_name(tables: &'static [Schema], name: &str) -> &'static str {
    find_schema(tables, name).map(|s| s.name).unwrap_or("")
}

fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "TYPE_STRING",
        FieldType::Boolean => "TYPE_BOOL",
        FieldType::Integer => "TYPE_INT32",
        FieldType::Number => "TYPE_DOUBLE",
        FieldType::Ref(_) | FieldType::Map(_) | FieldType::Opaque => "TYPE_MESSAGE",
        FieldType::Array(_) => "TYPE_LIST",
    }
}

fn wrong(ty: FieldType, value: &Value, at: &str) -> Violation {
    Violation::WrongType {
        at: at.to_owned(),
        expected: type_name(ty),
        value: value.to_string(),
    }
}

fn check(
    tables: &'static [Schema],
    ty: FieldType,
    value: &Value,
    at: &str,
) -> Result<(), Violation> {
    if value.is_null() {
        return Ok(());
    }
    match ty {
        FieldType::String => value
            .is_string()
            .then_some(())
            .ok_or_else(|| wrong(ty, value, at)),
        FieldType::Boolean => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| wrong(ty, value, at)),
        FieldType::Integer => match value.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            _ => Err(wrong(ty, value, at)),
        },
        FieldType::Number => value
            .is_number()
            .then_some(())
            .ok_or_else(|| wrong(ty, value, at)),
        FieldType::Opaque => value
            .is_object()
            .then_some(())
            .ok_or_else(|| wrong(ty, value, at)),
        FieldType::Array(item) => {
            let items = value.as_array().ok_or_else(|| wrong(ty, value, at))?;
            for (i, v) in items.iter().enumerate() {
                check(tables, *item, v, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        FieldType::Map(item) => {
            let map = value.as_object().ok_or_else(|| wrong(ty, value, at))?;
            for (k, v) in map {
                check(tables, *item, v, &format!("{at}[{k}]"))?;
            }
            Ok(())
        }
        FieldType::Ref(name) => {
            let map = value.as_object().ok_or_else(|| wrong(ty, value, at))?;
            let Some(schema) = find_schema(tables, name) else {
                return Ok(());
            };
            for (k, v) in map {
                let field = schema.field(k).ok_or_else(|| Violation::UnknownField {
                    at: at.to_owned(),
                    name: k.clone(),
                })?;
                check(tables, field.ty, v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
    }
}

/// Calendar v3 request schemas the fake validates (from `calendar.v3.json`).
pub const CALENDAR_SCHEMAS: &[Schema] = &[
    Schema {
        name: "Event",
        fields: &[
            Field {
                name: "anyoneCanAddSelf",
                ty: FieldType::Boolean,
            },
            Field {
                name: "attachments",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "attendees",
                ty: FieldType::Array(&FieldType::Ref("EventAttendee")),
            },
            Field {
                name: "attendeesOmitted",
                ty: FieldType::Boolean,
            },
            Field {
                name: "birthdayProperties",
                ty: FieldType::Opaque,
            },
            Field {
                name: "colorId",
                ty: FieldType::String,
            },
            Field {
                name: "conferenceData",
                ty: FieldType::Opaque,
            },
            Field {
                name: "created",
                ty: FieldType::String,
            },
            Field {
                name: "creator",
                ty: FieldType::Ref("Event.creator"),
            },
            Field {
                name: "description",
                ty: FieldType::String,
            },
            Field {
                name: "end",
                ty: FieldType::Ref("EventDateTime"),
            },
            Field {
                name: "endTimeUnspecified",
                ty: FieldType::Boolean,
            },
            Field {
                name: "etag",
                ty: FieldType::String,
            },
            Field {
                name: "eventType",
                ty: FieldType::String,
            },
            Field {
                name: "extendedProperties",
                ty: FieldType::Ref("Event.extendedProperties"),
            },
            Field {
                name: "focusTimeProperties",
                ty: FieldType::Opaque,
            },
            Field {
                name: "gadget",
                ty: FieldType::Opaque,
            },
            Field {
                name: "guestsCanInviteOthers",
                ty: FieldType::Boolean,
            },
            Field {
                name: "guestsCanModify",
                ty: FieldType::Boolean,
            },
            Field {
                name: "guestsCanSeeOtherGuests",
                ty: FieldType::Boolean,
            },
            Field {
                name: "hangoutLink",
                ty: FieldType::String,
            },
            Field {
                name: "htmlLink",
                ty: FieldType::String,
            },
            Field {
                name: "iCalUID",
                ty: FieldType::String,
            },
            Field {
                name: "id",
                ty: FieldType::String,
            },
            Field {
                name: "kind",
                ty: FieldType::String,
            },
            Field {
                name: "location",
                ty: FieldType::String,
            },
            Field {
                name: "locked",
                ty: FieldType::Boolean,
            },
            Field {
                name: "organizer",
                ty: FieldType::Ref("Event.organizer"),
            },
            Field {
                name: "originalStartTime",
                ty: FieldType::Ref("EventDateTime"),
            },
            Field {
                name: "outOfOfficeProperties",
                ty: FieldType::Opaque,
            },
            Field {
                name: "privateCopy",
                ty: FieldType::Boolean,
            },
            Field {
                name: "recurrence",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "recurringEventId",
                ty: FieldType::String,
            },
            Field {
                name: "reminders",
                ty: FieldType::Ref("Event.reminders"),
            },
            Field {
                name: "sequence",
                ty: FieldType::Integer,
            },
            Field {
                name: "source",
                ty: FieldType::Ref("Event.source"),
            },
            Field {
                name: "start",
                ty: FieldType::Ref("EventDateTime"),
            },
            Field {
                name: "status",
                ty: FieldType::String,
            },
            Field {
                name: "summary",
                ty: FieldType::String,
            },
            Field {
                name: "transparency",
                ty: FieldType::String,
            },
            Field {
                name: "updated",
                ty: FieldType::String,
            },
            Field {
                name: "visibility",
                ty: FieldType::String,
            },
            Field {
                name: "workingLocationProperties",
                ty: FieldType::Opaque,
            },
        ],
    },
    Schema {
        name: "Event.creator",
        fields: &[
            Field {
                name: "displayName",
                ty: FieldType::String,
            },
            Field {
                name: "email",
                ty: FieldType::String,
            },
            Field {
                name: "id",
                ty: FieldType::String,
            },
            Field {
                name: "self",
                ty: FieldType::Boolean,
            },
        ],
    },
    Schema {
        name: "Event.organizer",
        fields: &[
            Field {
                name: "displayName",
                ty: FieldType::String,
            },
            Field {
                name: "email",
                ty: FieldType::String,
            },
            Field {
                name: "id",
                ty: FieldType::String,
            },
            Field {
                name: "self",
                ty: FieldType::Boolean,
            },
        ],
    },
    Schema {
        name: "Event.source",
        fields: &[
            Field {
                name: "title",
                ty: FieldType::String,
            },
            Field {
                name: "url",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Event.reminders",
        fields: &[
            Field {
                name: "overrides",
                ty: FieldType::Array(&FieldType::Ref("EventReminder")),
            },
            Field {
                name: "useDefault",
                ty: FieldType::Boolean,
            },
        ],
    },
    Schema {
        name: "Event.extendedProperties",
        fields: &[
            Field {
                name: "private",
                ty: FieldType::Map(&FieldType::String),
            },
            Field {
                name: "shared",
                ty: FieldType::Map(&FieldType::String),
            },
        ],
    },
    Schema {
        name: "EventDateTime",
        fields: &[
            Field {
                name: "date",
                ty: FieldType::String,
            },
            Field {
                name: "dateTime",
                ty: FieldType::String,
            },
            Field {
                name: "timeZone",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "EventReminder",
        fields: &[
            Field {
                name: "method",
                ty: FieldType::String,
            },
            Field {
                name: "minutes",
                ty: FieldType::Integer,
            },
        ],
    },
    Schema {
        name: "EventAttendee",
        fields: &[
            Field {
                name: "additionalGuests",
                ty: FieldType::Integer,
            },
            Field {
                name: "comment",
                ty: FieldType::String,
            },
            Field {
                name: "displayName",
                ty: FieldType::String,
            },
            Field {
                name: "email",
                ty: FieldType::String,
            },
            Field {
                name: "id",
                ty: FieldType::String,
            },
            Field {
                name: "optional",
                ty: FieldType::Boolean,
            },
            Field {
                name: "organizer",
                ty: FieldType::Boolean,
            },
            Field {
                name: "resource",
                ty: FieldType::Boolean,
            },
            Field {
                name: "responseStatus",
                ty: FieldType::String,
            },
            Field {
                name: "self",
                ty: FieldType::Boolean,
            },
        ],
    },
    Schema {
        name: "FreeBusyRequest",
        fields: &[
            Field {
                name: "calendarExpansionMax",
                ty: FieldType::Integer,
            },
            Field {
                name: "groupExpansionMax",
                ty: FieldType::Integer,
            },
            Field {
                name: "items",
                ty: FieldType::Array(&FieldType::Ref("FreeBusyRequestItem")),
            },
            Field {
                name: "timeMax",
                ty: FieldType::String,
            },
            Field {
                name: "timeMin",
                ty: FieldType::String,
            },
            Field {
                name: "timeZone",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "FreeBusyRequestItem",
        fields: &[Field {
            name: "id",
            ty: FieldType::String,
        }],
    },
];

/// People v1 request schemas the fake validates (from `people.v1.json`).
pub const PEOPLE_SCHEMAS: &[Schema] = &[
    Schema {
        name: "Person",
        fields: &[
            Field {
                name: "addresses",
                ty: FieldType::Array(&FieldType::Ref("Address")),
            },
            Field {
                name: "ageRange",
                ty: FieldType::String,
            },
            Field {
                name: "ageRanges",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "biographies",
                ty: FieldType::Array(&FieldType::Ref("Biography")),
            },
            Field {
                name: "birthdays",
                ty: FieldType::Array(&FieldType::Ref("Birthday")),
            },
            Field {
                name: "braggingRights",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "calendarUrls",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "clientData",
                ty: FieldType::Array(&FieldType::Ref("ClientData")),
            },
            Field {
                name: "coverPhotos",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "emailAddresses",
                ty: FieldType::Array(&FieldType::Ref("EmailAddress")),
            },
            Field {
                name: "etag",
                ty: FieldType::String,
            },
            Field {
                name: "events",
                ty: FieldType::Array(&FieldType::Ref("Event")),
            },
            Field {
                name: "externalIds",
                ty: FieldType::Array(&FieldType::Ref("ExternalId")),
            },
            Field {
                name: "fileAses",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "genders",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "imClients",
                ty: FieldType::Array(&FieldType::Ref("ImClient")),
            },
            Field {
                name: "interests",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "locales",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "locations",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "memberships",
                ty: FieldType::Array(&FieldType::Ref("Membership")),
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("PersonMetadata"),
            },
            Field {
                name: "miscKeywords",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "names",
                ty: FieldType::Array(&FieldType::Ref("Name")),
            },
            Field {
                name: "nicknames",
                ty: FieldType::Array(&FieldType::Ref("Nickname")),
            },
            Field {
                name: "occupations",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "organizations",
                ty: FieldType::Array(&FieldType::Ref("Organization")),
            },
            Field {
                name: "phoneNumbers",
                ty: FieldType::Array(&FieldType::Ref("PhoneNumber")),
            },
            Field {
                name: "photos",
                ty: FieldType::Array(&FieldType::Ref("Photo")),
            },
            Field {
                name: "relations",
                ty: FieldType::Array(&FieldType::Ref("Relation")),
            },
            Field {
                name: "relationshipInterests",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "relationshipStatuses",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "residences",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "resourceName",
                ty: FieldType::String,
            },
            Field {
                name: "sipAddresses",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "skills",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "taglines",
                ty: FieldType::Array(&FieldType::Opaque),
            },
            Field {
                name: "urls",
                ty: FieldType::Array(&FieldType::Ref("Url")),
            },
            Field {
                name: "userDefined",
                ty: FieldType::Array(&FieldType::Ref("UserDefined")),
            },
        ],
    },
    Schema {
        name: "PersonMetadata",
        fields: &[
            Field {
                name: "deleted",
                ty: FieldType::Boolean,
            },
            Field {
                name: "linkedPeopleResourceNames",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "objectType",
                ty: FieldType::String,
            },
            Field {
                name: "previousResourceNames",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "sources",
                ty: FieldType::Array(&FieldType::Ref("Source")),
            },
        ],
    },
    Schema {
        name: "Source",
        fields: &[
            Field {
                name: "etag",
                ty: FieldType::String,
            },
            Field {
                name: "id",
                ty: FieldType::String,
            },
            Field {
                name: "profileMetadata",
                ty: FieldType::Opaque,
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "updateTime",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "FieldMetadata",
        fields: &[
            Field {
                name: "primary",
                ty: FieldType::Boolean,
            },
            Field {
                name: "source",
                ty: FieldType::Ref("Source"),
            },
            Field {
                name: "sourcePrimary",
                ty: FieldType::Boolean,
            },
            Field {
                name: "verified",
                ty: FieldType::Boolean,
            },
        ],
    },
    Schema {
        name: "Name",
        fields: &[
            Field {
                name: "displayName",
                ty: FieldType::String,
            },
            Field {
                name: "displayNameLastFirst",
                ty: FieldType::String,
            },
            Field {
                name: "familyName",
                ty: FieldType::String,
            },
            Field {
                name: "givenName",
                ty: FieldType::String,
            },
            Field {
                name: "honorificPrefix",
                ty: FieldType::String,
            },
            Field {
                name: "honorificSuffix",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "middleName",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticFamilyName",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticFullName",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticGivenName",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticHonorificPrefix",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticHonorificSuffix",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticMiddleName",
                ty: FieldType::String,
            },
            Field {
                name: "unstructuredName",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "EmailAddress",
        fields: &[
            Field {
                name: "displayName",
                ty: FieldType::String,
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "PhoneNumber",
        fields: &[
            Field {
                name: "canonicalForm",
                ty: FieldType::String,
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Address",
        fields: &[
            Field {
                name: "city",
                ty: FieldType::String,
            },
            Field {
                name: "country",
                ty: FieldType::String,
            },
            Field {
                name: "countryCode",
                ty: FieldType::String,
            },
            Field {
                name: "extendedAddress",
                ty: FieldType::String,
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "formattedValue",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "poBox",
                ty: FieldType::String,
            },
            Field {
                name: "postalCode",
                ty: FieldType::String,
            },
            Field {
                name: "region",
                ty: FieldType::String,
            },
            Field {
                name: "streetAddress",
                ty: FieldType::String,
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Organization",
        fields: &[
            Field {
                name: "costCenter",
                ty: FieldType::String,
            },
            Field {
                name: "current",
                ty: FieldType::Boolean,
            },
            Field {
                name: "department",
                ty: FieldType::String,
            },
            Field {
                name: "domain",
                ty: FieldType::String,
            },
            Field {
                name: "endDate",
                ty: FieldType::Ref("Date"),
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "fullTimeEquivalentMillipercent",
                ty: FieldType::Integer,
            },
            Field {
                name: "jobDescription",
                ty: FieldType::String,
            },
            Field {
                name: "location",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "name",
                ty: FieldType::String,
            },
            Field {
                name: "phoneticName",
                ty: FieldType::String,
            },
            Field {
                name: "startDate",
                ty: FieldType::Ref("Date"),
            },
            Field {
                name: "symbol",
                ty: FieldType::String,
            },
            Field {
                name: "title",
                ty: FieldType::String,
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Biography",
        fields: &[
            Field {
                name: "contentType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Birthday",
        fields: &[
            Field {
                name: "date",
                ty: FieldType::Ref("Date"),
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "text",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Date",
        fields: &[
            Field {
                name: "day",
                ty: FieldType::Integer,
            },
            Field {
                name: "month",
                ty: FieldType::Integer,
            },
            Field {
                name: "year",
                ty: FieldType::Integer,
            },
        ],
    },
    Schema {
        name: "ImClient",
        fields: &[
            Field {
                name: "formattedProtocol",
                ty: FieldType::String,
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "protocol",
                ty: FieldType::String,
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "username",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "ClientData",
        fields: &[
            Field {
                name: "key",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "ExternalId",
        fields: &[
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Membership",
        fields: &[
            Field {
                name: "contactGroupMembership",
                ty: FieldType::Ref("ContactGroupMembership"),
            },
            Field {
                name: "domainMembership",
                ty: FieldType::Ref("DomainMembership"),
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
        ],
    },
    Schema {
        name: "ContactGroupMembership",
        fields: &[
            Field {
                name: "contactGroupId",
                ty: FieldType::String,
            },
            Field {
                name: "contactGroupResourceName",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "DomainMembership",
        fields: &[Field {
            name: "inViewerDomain",
            ty: FieldType::Boolean,
        }],
    },
    Schema {
        name: "Photo",
        fields: &[
            Field {
                name: "default",
                ty: FieldType::Boolean,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "url",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Url",
        fields: &[
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "UserDefined",
        fields: &[
            Field {
                name: "key",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Nickname",
        fields: &[
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Event",
        fields: &[
            Field {
                name: "date",
                ty: FieldType::Ref("Date"),
            },
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "Relation",
        fields: &[
            Field {
                name: "formattedType",
                ty: FieldType::String,
            },
            Field {
                name: "metadata",
                ty: FieldType::Ref("FieldMetadata"),
            },
            Field {
                name: "person",
                ty: FieldType::String,
            },
            Field {
                name: "type",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "ContactGroup",
        fields: &[
            Field {
                name: "clientData",
                ty: FieldType::Array(&FieldType::Ref("GroupClientData")),
            },
            Field {
                name: "etag",
                ty: FieldType::String,
            },
            Field {
                name: "formattedName",
                ty: FieldType::String,
            },
            Field {
                name: "groupType",
                ty: FieldType::String,
            },
            Field {
                name: "memberCount",
                ty: FieldType::Integer,
            },
            Field {
                name: "memberResourceNames",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "metadata",
                ty: FieldType::Opaque,
            },
            Field {
                name: "name",
                ty: FieldType::String,
            },
            Field {
                name: "resourceName",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "GroupClientData",
        fields: &[
            Field {
                name: "key",
                ty: FieldType::String,
            },
            Field {
                name: "value",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "CreateContactGroupRequest",
        fields: &[
            Field {
                name: "contactGroup",
                ty: FieldType::Ref("ContactGroup"),
            },
            Field {
                name: "readGroupFields",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "ModifyContactGroupMembersRequest",
        fields: &[
            Field {
                name: "resourceNamesToAdd",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "resourceNamesToRemove",
                ty: FieldType::Array(&FieldType::String),
            },
        ],
    },
    Schema {
        name: "BatchCreateContactsRequest",
        fields: &[
            Field {
                name: "contacts",
                ty: FieldType::Array(&FieldType::Ref("ContactToCreate")),
            },
            Field {
                name: "readMask",
                ty: FieldType::String,
            },
            Field {
                name: "sources",
                ty: FieldType::Array(&FieldType::String),
            },
        ],
    },
    Schema {
        name: "ContactToCreate",
        fields: &[Field {
            name: "contactPerson",
            ty: FieldType::Ref("Person"),
        }],
    },
    Schema {
        name: "BatchUpdateContactsRequest",
        fields: &[
            Field {
                name: "contacts",
                ty: FieldType::Map(&FieldType::Ref("Person")),
            },
            Field {
                name: "readMask",
                ty: FieldType::String,
            },
            Field {
                name: "sources",
                ty: FieldType::Array(&FieldType::String),
            },
            Field {
                name: "updateMask",
                ty: FieldType::String,
            },
        ],
    },
    Schema {
        name: "BatchDeleteContactsRequest",
        fields: &[Field {
            name: "resourceNames",
            ty: FieldType::Array(&FieldType::String),
        }],
    },
    Schema {
        name: "UpdateContactPhotoRequest",
        fields: &[
            Field {
                name: "personFields",
                ty: FieldType::String,
            },
            Field {
                name: "photoBytes",
                ty: FieldType::String,
            },
            Field {
                name: "sources",
                ty: FieldType::Array(&FieldType::String),
            },
        ],
    },
];
