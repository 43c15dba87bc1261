//! Property tables of the Graph resources the fake accepts in request bodies, written from the
//! schema subset `graph-v1.0-calendar-contacts-subset.csdl.xml` (extracted from
//! `msgraph-metadata` `schemas/v1.0-Prod.csdl`), and the validator that turns an unknown property
//! or a wrongly typed value into a 400.
//!
//! Each [`Type`] lists *every* structural property of the CSDL type, inherited ones included
//! (`entity.id`, `outlookItem.categories` ...), so an unknown name is detected exactly; navigation
//! properties appear only when a client may write them (`singleValueExtendedProperties`,
//! `multiValueExtendedProperties`). `tests/graph_schema_tables.rs` checks every entry against the
//! CSDL when `../shared/reference/api/` is present.
//!
//! Errors: an unknown property is `400 RequestBodyRead` "The property '…' does not exist on type
//! 'Microsoft.OutlookServices.…'. Make sure to only use property names that are defined by the type
//! or mark the type as open type." (wording reported by Graph users); a wrongly typed value is
//! `400 RequestBodyRead` with the OData reader's wording (an inference: the exact text is not in the
//! stored reference). `event` and `contact` are `OpenType` in the CSDL, but Outlook rejects unknown
//! properties on them, as reported; the fake does too.

use serde_json::Value;

use super::wire::GErr;

/// The EDM type of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdmType {
    /// `Edm.String`.
    String,
    /// `Edm.Boolean`.
    Boolean,
    /// `Edm.Int32`.
    Int32,
    /// `Edm.Double`.
    Double,
    /// `Edm.DateTimeOffset` (a JSON string).
    DateTimeOffset,
    /// `Edm.Date` (a JSON string, `yyyy-mm-dd`).
    Date,
    /// `Edm.TimeOfDay` (a JSON string).
    TimeOfDay,
    /// `graph.<name>` enum with its members.
    Enum(&'static str, &'static [&'static str]),
    /// `graph.<name>` complex or entity type described by another table.
    Complex(&'static str),
    /// `graph.<name>` type the fake does not model further (any JSON object is accepted).
    Opaque(&'static str),
    /// `Collection(...)`.
    Collection(&'static EdmType),
}

/// One property of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// The JSON name.
    pub name: &'static str,
    /// Its type.
    pub ty: EdmType,
    /// A navigation property (`NavigationProperty` in the CSDL) rather than a structural one.
    pub navigation: bool,
}

/// The properties of one CSDL type (inherited ones included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type {
    /// The CSDL name, e.g. `event`.
    pub name: &'static str,
    /// Every structural property, plus the writable navigation properties.
    pub properties: &'static [Property],
}

impl Type {
    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// `Microsoft.OutlookServices.Event` for `event`: the type name Outlook's errors use.
    pub fn outlook_name(&self) -> std::string::String {
        let mut c = self.name.chars();
        match c.next() {
            Some(f) => format!(
                "Microsoft.OutlookServices.{}{}",
                f.to_ascii_uppercase(),
                c.as_str()
            ),
            None => std::string::String::new(),
        }
    }
}

const fn p(name: &'static str, ty: EdmType) -> Property {
    Property {
        name,
        ty,
        navigation: false,
    }
}

const fn nav(name: &'static str, ty: EdmType) -> Property {
    Property {
        name,
        ty,
        navigation: true,
    }
}

use EdmType::*;

const STR: EdmType = String;
const STRINGS: EdmType = Collection(&String);

/// `graph.bodyType`.
pub const BODY_TYPE: &[&str] = &["text", "html"];
/// `graph.calendarColor`.
pub const CALENDAR_COLOR: &[&str] = &[
    "auto",
    "lightBlue",
    "lightGreen",
    "lightOrange",
    "lightGray",
    "lightYellow",
    "lightTeal",
    "lightPink",
    "lightBrown",
    "lightRed",
    "maxColor",
];
/// `graph.categoryColor`: `none` and `preset0` … `preset24` (MS-CAL-21).
pub const CATEGORY_COLOR: &[&str] = &[
    "none", "preset0", "preset1", "preset2", "preset3", "preset4", "preset5", "preset6", "preset7",
    "preset8", "preset9", "preset10", "preset11", "preset12", "preset13", "preset14", "preset15",
    "preset16", "preset17", "preset18", "preset19", "preset20", "preset21", "preset22", "preset23",
    "preset24",
];
/// `graph.dayOfWeek`.
pub const DAY_OF_WEEK: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
/// `graph.eventType`.
pub const EVENT_TYPE: &[&str] = &["singleInstance", "occurrence", "exception", "seriesMaster"];
/// `graph.freeBusyStatus`.
pub const FREE_BUSY_STATUS: &[&str] = &[
    "unknown",
    "free",
    "tentative",
    "busy",
    "oof",
    "workingElsewhere",
];
/// `graph.importance`.
pub const IMPORTANCE: &[&str] = &["low", "normal", "high"];
/// `graph.locationType`.
pub const LOCATION_TYPE: &[&str] = &[
    "default",
    "conferenceRoom",
    "homeAddress",
    "businessAddress",
    "geoCoordinates",
    "streetAddress",
    "hotel",
    "restaurant",
    "localBusiness",
    "postalAddress",
];
/// `graph.locationUniqueIdType`.
pub const LOCATION_UNIQUE_ID_TYPE: &[&str] =
    &["unknown", "locationStore", "directory", "private", "bing"];
/// `graph.onlineMeetingProviderType`.
pub const ONLINE_MEETING_PROVIDER: &[&str] = &[
    "unknown",
    "skypeForBusiness",
    "skypeForConsumer",
    "teamsForBusiness",
];
/// `graph.recurrencePatternType`.
pub const RECURRENCE_PATTERN_TYPE: &[&str] = &[
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
];
/// `graph.recurrenceRangeType`.
pub const RECURRENCE_RANGE_TYPE: &[&str] = &["endDate", "noEnd", "numbered"];
/// `graph.responseType`.
pub const RESPONSE_TYPE: &[&str] = &[
    "none",
    "organizer",
    "tentativelyAccepted",
    "accepted",
    "declined",
    "notResponded",
];
/// `graph.sensitivity`.
pub const SENSITIVITY: &[&str] = &["normal", "personal", "private", "confidential"];
/// `graph.weekIndex`.
pub const WEEK_INDEX: &[&str] = &["first", "second", "third", "fourth", "last"];
/// `graph.attendeeType`.
pub const ATTENDEE_TYPE: &[&str] = &["required", "optional", "resource"];

const SVEP: EdmType = Collection(&Complex("singleValueLegacyExtendedProperty"));
const MVEP: EdmType = Collection(&Complex("multiValueLegacyExtendedProperty"));
const ADDRESS: EdmType = Complex("physicalAddress");
const DTTZ: EdmType = Complex("dateTimeTimeZone");

/// Every type the fake validates request bodies against.
pub const GRAPH_TYPES: &[Type] = &[
    Type {
        name: "event",
        properties: &[
            p("id", STR),
            p("categories", STRINGS),
            p("changeKey", STR),
            p("createdDateTime", DateTimeOffset),
            p("lastModifiedDateTime", DateTimeOffset),
            p("allowNewTimeProposals", Boolean),
            p("attendees", Collection(&Complex("attendee"))),
            p("body", Complex("itemBody")),
            p("bodyPreview", STR),
            p("cancelledOccurrences", STRINGS),
            p("end", DTTZ),
            p("hasAttachments", Boolean),
            p("hideAttendees", Boolean),
            p("iCalUId", STR),
            p("importance", Enum("importance", IMPORTANCE)),
            p("isAllDay", Boolean),
            p("isCancelled", Boolean),
            p("isDraft", Boolean),
            p("isOnlineMeeting", Boolean),
            p("isOrganizer", Boolean),
            p("isReminderOn", Boolean),
            p("location", Complex("location")),
            p("locations", Collection(&Complex("location"))),
            p("onlineMeeting", Opaque("onlineMeetingInfo")),
            p(
                "onlineMeetingProvider",
                Enum("onlineMeetingProviderType", ONLINE_MEETING_PROVIDER),
            ),
            p("onlineMeetingUrl", STR),
            p("organizer", Complex("recipient")),
            p("originalEndTimeZone", STR),
            p("originalStart", DateTimeOffset),
            p("originalStartTimeZone", STR),
            p("recurrence", Complex("patternedRecurrence")),
            p("reminderMinutesBeforeStart", Int32),
            p("responseRequested", Boolean),
            p("responseStatus", Complex("responseStatus")),
            p("sensitivity", Enum("sensitivity", SENSITIVITY)),
            p("seriesMasterId", STR),
            p("showAs", Enum("freeBusyStatus", FREE_BUSY_STATUS)),
            p("start", DTTZ),
            p("subject", STR),
            p("transactionId", STR),
            p("type", Enum("eventType", EVENT_TYPE)),
            p("webLink", STR),
            nav("singleValueExtendedProperties", SVEP),
            nav("multiValueExtendedProperties", MVEP),
        ],
    },
    Type {
        name: "calendar",
        properties: &[
            p("id", STR),
            p(
                "allowedOnlineMeetingProviders",
                Collection(&Enum("onlineMeetingProviderType", ONLINE_MEETING_PROVIDER)),
            ),
            p("canEdit", Boolean),
            p("canShare", Boolean),
            p("canViewPrivateItems", Boolean),
            p("changeKey", STR),
            p("color", Enum("calendarColor", CALENDAR_COLOR)),
            p(
                "defaultOnlineMeetingProvider",
                Enum("onlineMeetingProviderType", ONLINE_MEETING_PROVIDER),
            ),
            p("hexColor", STR),
            p("isDefaultCalendar", Boolean),
            p("isRemovable", Boolean),
            p("isTallyingResponses", Boolean),
            p("name", STR),
            p("owner", Complex("emailAddress")),
            nav("singleValueExtendedProperties", SVEP),
            nav("multiValueExtendedProperties", MVEP),
        ],
    },
    Type {
        name: "contact",
        properties: &[
            p("id", STR),
            p("categories", STRINGS),
            p("changeKey", STR),
            p("createdDateTime", DateTimeOffset),
            p("lastModifiedDateTime", DateTimeOffset),
            p("assistantName", STR),
            p("birthday", DateTimeOffset),
            p("businessAddress", ADDRESS),
            p("businessHomePage", STR),
            p("businessPhones", STRINGS),
            p("children", STRINGS),
            p("companyName", STR),
            p("department", STR),
            p("displayName", STR),
            p("emailAddresses", Collection(&Complex("emailAddress"))),
            p("fileAs", STR),
            p("generation", STR),
            p("givenName", STR),
            p("homeAddress", ADDRESS),
            p("homePhones", STRINGS),
            p("imAddresses", STRINGS),
            p("initials", STR),
            p("jobTitle", STR),
            p("manager", STR),
            p("middleName", STR),
            p("mobilePhone", STR),
            p("nickName", STR),
            p("officeLocation", STR),
            p("otherAddress", ADDRESS),
            p("parentFolderId", STR),
            p("personalNotes", STR),
            p("primaryEmailAddress", Complex("emailAddress")),
            p("profession", STR),
            p("secondaryEmailAddress", Complex("emailAddress")),
            p("spouseName", STR),
            p("surname", STR),
            p("tertiaryEmailAddress", Complex("emailAddress")),
            p("title", STR),
            p("yomiCompanyName", STR),
            p("yomiGivenName", STR),
            p("yomiSurname", STR),
            nav("singleValueExtendedProperties", SVEP),
            nav("multiValueExtendedProperties", MVEP),
        ],
    },
    Type {
        name: "contactFolder",
        properties: &[
            p("id", STR),
            p("displayName", STR),
            p("parentFolderId", STR),
            nav("singleValueExtendedProperties", SVEP),
            nav("multiValueExtendedProperties", MVEP),
        ],
    },
    Type {
        name: "outlookCategory",
        properties: &[
            p("id", STR),
            p("color", Enum("categoryColor", CATEGORY_COLOR)),
            p("displayName", STR),
        ],
    },
    Type {
        name: "singleValueLegacyExtendedProperty",
        properties: &[p("id", STR), p("value", STR)],
    },
    Type {
        name: "multiValueLegacyExtendedProperty",
        properties: &[p("id", STR), p("value", STRINGS)],
    },
    Type {
        name: "dateTimeTimeZone",
        properties: &[p("dateTime", STR), p("timeZone", STR)],
    },
    Type {
        name: "itemBody",
        properties: &[
            p("content", STR),
            p("contentType", Enum("bodyType", BODY_TYPE)),
        ],
    },
    Type {
        name: "location",
        properties: &[
            p("address", ADDRESS),
            p("coordinates", Complex("outlookGeoCoordinates")),
            p("displayName", STR),
            p("locationEmailAddress", STR),
            p("locationType", Enum("locationType", LOCATION_TYPE)),
            p("locationUri", STR),
            p("uniqueId", STR),
            p(
                "uniqueIdType",
                Enum("locationUniqueIdType", LOCATION_UNIQUE_ID_TYPE),
            ),
        ],
    },
    Type {
        name: "outlookGeoCoordinates",
        properties: &[
            p("accuracy", Double),
            p("altitude", Double),
            p("altitudeAccuracy", Double),
            p("latitude", Double),
            p("longitude", Double),
        ],
    },
    Type {
        name: "physicalAddress",
        properties: &[
            p("city", STR),
            p("countryOrRegion", STR),
            p("postalCode", STR),
            p("state", STR),
            p("street", STR),
        ],
    },
    Type {
        name: "emailAddress",
        properties: &[p("address", STR), p("name", STR)],
    },
    Type {
        name: "recipient",
        properties: &[p("emailAddress", Complex("emailAddress"))],
    },
    Type {
        name: "attendee",
        properties: &[
            p("emailAddress", Complex("emailAddress")),
            p("type", Enum("attendeeType", ATTENDEE_TYPE)),
            p("proposedNewTime", Complex("timeSlot")),
            p("status", Complex("responseStatus")),
        ],
    },
    Type {
        name: "timeSlot",
        properties: &[p("end", DTTZ), p("start", DTTZ)],
    },
    Type {
        name: "responseStatus",
        properties: &[
            p("response", Enum("responseType", RESPONSE_TYPE)),
            p("time", DateTimeOffset),
        ],
    },
    Type {
        name: "patternedRecurrence",
        properties: &[
            p("pattern", Complex("recurrencePattern")),
            p("range", Complex("recurrenceRange")),
        ],
    },
    Type {
        name: "recurrencePattern",
        properties: &[
            p("dayOfMonth", Int32),
            p("daysOfWeek", Collection(&Enum("dayOfWeek", DAY_OF_WEEK))),
            p("firstDayOfWeek", Enum("dayOfWeek", DAY_OF_WEEK)),
            p("index", Enum("weekIndex", WEEK_INDEX)),
            p("interval", Int32),
            p("month", Int32),
            p(
                "type",
                Enum("recurrencePatternType", RECURRENCE_PATTERN_TYPE),
            ),
        ],
    },
    Type {
        name: "recurrenceRange",
        properties: &[
            p("endDate", Date),
            p("numberOfOccurrences", Int32),
            p("recurrenceTimeZone", STR),
            p("startDate", Date),
            p("type", Enum("recurrenceRangeType", RECURRENCE_RANGE_TYPE)),
        ],
    },
];

/// Looks a type up by CSDL name.
pub fn find_type(name: &str) -> Option<&'static Type> {
    GRAPH_TYPES.iter().find(|t| t.name == name)
}

/// Validates a request body against type `root`. `null` is accepted for every property (it
/// clears the property on PATCH).
pub(crate) fn validate(root: &str, value: &Value) -> Result<(), GErr> {
    check(Complex(leak(root)), value)
}

fn leak(name: &str) -> &'static str {
    find_type(name).map(|t| t.name).unwrap_or("")
}

fn edm_name(ty: EdmType) -> std::string::String {
    match ty {
        String => "Edm.String".into(),
        Boolean => "Edm.Boolean".into(),
        Int32 => "Edm.Int32".into(),
        Double => "Edm.Double".into(),
        DateTimeOffset => "Edm.DateTimeOffset".into(),
        Date => "Edm.Date".into(),
        TimeOfDay => "Edm.TimeOfDay".into(),
        Enum(n, _) | Complex(n) | Opaque(n) => format!("microsoft.graph.{n}"),
        Collection(inner) => format!("Collection({})", edm_name(*inner)),
    }
}

fn literal(value: &Value) -> std::string::String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn convert_error(ty: EdmType, value: &Value) -> GErr {
    GErr::new(
        400,
        "RequestBodyRead",
        format!(
            "Cannot convert the literal '{}' to the expected type '{}'.",
            literal(value),
            edm_name(ty)
        ),
    )
}

fn node_error(expected: &str) -> GErr {
    GErr::new(
        400,
        "RequestBodyRead",
        format!(
            "An unexpected 'PrimitiveValue' node was found when reading from the JSON reader. A '{expected}' node was expected."
        ),
    )
}

fn check(ty: EdmType, value: &Value) -> Result<(), GErr> {
    if value.is_null() {
        return Ok(());
    }
    match ty {
        String | DateTimeOffset | Date | TimeOfDay => {
            let s = value.as_str().ok_or_else(|| convert_error(ty, value))?;
            let ok = match ty {
                DateTimeOffset => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                _ => true,
            };
            ok.then_some(()).ok_or_else(|| convert_error(ty, value))
        }
        Boolean => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| convert_error(ty, value)),
        Int32 => match value.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            _ => Err(convert_error(ty, value)),
        },
        Double => value
            .is_number()
            .then_some(())
            .ok_or_else(|| convert_error(ty, value)),
        Enum(name, members) => match value.as_str() {
            Some(s) if members.contains(&s) => Ok(()),
            _ => Err(GErr::new(
                400,
                "RequestBodyRead",
                format!(
                    "The value '{}' is not a valid member of the enum type 'microsoft.graph.{name}'.",
                    literal(value)
                ),
            )),
        },
        Opaque(_) => value
            .is_object()
            .then_some(())
            .ok_or_else(|| node_error("StartObject")),
        Collection(item) => {
            let items = value.as_array().ok_or_else(|| node_error("StartArray"))?;
            items.iter().try_for_each(|v| check(*item, v))
        }
        Complex(name) => {
            let map = value.as_object().ok_or_else(|| node_error("StartObject"))?;
            let Some(t) = find_type(name) else {
                return Ok(());
            };
            for (k, v) in map {
                if k.starts_with("@odata.") {
                    continue;
                }
                let prop = t.property(k).ok_or_else(|| {
                    GErr::new(
                        400,
                        "RequestBodyRead",
                        format!(
                            "The property '{k}' does not exist on type '{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                            t.outlook_name()
                        ),
                    )
                })?;
                check(prop.ty, v)?;
            }
            Ok(())
        }
    }
}
