//! Validated value types shared by the model: colours, zones, e-mail addresses, phone
//! numbers, birthdays, photos, origins.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::normalize;

/// An RGB colour, written `#rrggbb`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb {
    /// A colour from its components.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Rgb { r, g, b }
    }
}

impl FromStr for Rgb {
    type Err = Error;
    /// Parses `#rrggbb` (the `#` is optional, hex digits in either case).
    fn from_str(s: &str) -> Result<Self> {
        let hex = s.trim().strip_prefix('#').unwrap_or(s.trim());
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid_input(format!(
                "{s:?} is not a colour: expected #rrggbb"
            )));
        }
        let part = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
        Ok(Rgb::new(part(0), part(2), part(4)))
    }
}

impl TryFrom<String> for Rgb {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Rgb> for String {
    fn from(c: Rgb) -> String {
        c.to_string()
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

impl fmt::Debug for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rgb({self})")
    }
}

/// An IANA time zone ("Europe/Paris"), written as its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone(pub chrono_tz::Tz);

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone(chrono_tz::UTC);

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for Zone {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<chrono_tz::Tz>()
            .map(Zone)
            .map_err(|_| Error::invalid_input(format!("{s:?} is not an IANA time zone")))
    }
}

impl TryFrom<String> for Zone {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Zone> for String {
    fn from(z: Zone) -> String {
        z.name().to_owned()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

/// An e-mail address: one `@` with something on both sides, no whitespace. Kept as given
/// (trimmed); compared case-insensitively.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks and wraps an address.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not an address.
    pub fn new(address: impl Into<String>) -> Result<Self> {
        let address = address.into();
        let a = address.trim();
        let bad = |why: &str| {
            Err(Error::invalid_input(format!(
                "{a:?} is not an e-mail address: {why}"
            )))
        };
        if a.len() > 320 {
            return bad("longer than 320 bytes");
        }
        if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains a space or a control character");
        }
        let Some((local, domain)) = a.rsplit_once('@') else {
            return bad("no @");
        };
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return bad("nothing before or after the @");
        }
        Ok(EmailAddress(a.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparable form (lower case).
    pub fn comparable(&self) -> String {
        normalize::email(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

/// A phone number as the user wrote it (whitespace collapsed): at least one digit, and
/// only digits, spaces and `+ - ( ) . /`, with an optional extension. Compared by digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Checks and wraps a number.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is not a number.
    pub fn new(number: impl Into<String>) -> Result<Self> {
        let number = normalize::line(&number.into());
        let lower = number.to_ascii_lowercase();
        let main = lower
            .split_once("ext")
            .or_else(|| lower.split_once(';'))
            .or_else(|| lower.split_once('x'))
            .map_or(lower.as_str(), |(m, _)| m);
        if number.len() > 64
            || !main.chars().any(|c| c.is_ascii_digit())
            || !main
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().//".contains(c))
        {
            return Err(Error::invalid_input(format!(
                "{number:?} is not a phone number"
            )));
        }
        Ok(PhoneNumber(number))
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparable form: digits, a leading `+`, an extension.
    pub fn comparable(&self) -> String {
        normalize::phone_digits(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({:?})", self.0)
    }
}

/// A birthday whose year may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "BirthdayParts", into = "BirthdayParts")]
pub struct Birthday {
    year: Option<i32>,
    month: u32,
    day: u32,
}

#[derive(Serialize, Deserialize)]
struct BirthdayParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    year: Option<i32>,
    month: u32,
    day: u32,
}

impl Birthday {
    /// A birthday; without a year, February 29 is allowed.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an impossible date.
    pub fn new(year: Option<i32>, month: u32, day: u32) -> Result<Self> {
        let check_year = year.unwrap_or(2000); // a leap year: Feb 29 is a valid yearless birthday
        if !(1..=9999).contains(&check_year)
            || NaiveDate::from_ymd_opt(check_year, month, day).is_none()
        {
            return Err(Error::invalid_input(format!(
                "{}-{month:02}-{day:02} is not a date",
                year.map_or("--".to_owned(), |y| y.to_string())
            )));
        }
        Ok(Birthday { year, month, day })
    }

    /// The year, when known.
    pub fn year(&self) -> Option<i32> {
        self.year
    }
    /// The month, 1 to 12.
    pub fn month(&self) -> u32 {
        self.month
    }
    /// The day of the month.
    pub fn day(&self) -> u32 {
        self.day
    }
}

impl TryFrom<BirthdayParts> for Birthday {
    type Error = Error;
    fn try_from(p: BirthdayParts) -> Result<Self> {
        Birthday::new(p.year, p.month, p.day)
    }
}

impl From<Birthday> for BirthdayParts {
    fn from(b: Birthday) -> Self {
        BirthdayParts {
            year: b.year,
            month: b.month,
            day: b.day,
        }
    }
}

/// A contact photo: its bytes, their media type and their SHA-256.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PhotoParts", into = "PhotoParts")]
pub struct Photo {
    bytes: Vec<u8>,
    media_type: String,
    hash: ContentHash,
}

#[derive(Serialize, Deserialize)]
struct PhotoParts {
    media_type: String,
    /// Base64 (standard alphabet, padded).
    data: String,
}

impl Photo {
    /// A photo from its bytes and media type (`image/jpeg`, `image/png`, ...).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for empty bytes or a
    /// media type that is not an image type (`image/` and an RFC 6838 subtype name).
    pub fn new(bytes: Vec<u8>, media_type: impl Into<String>) -> Result<Self> {
        let media_type = media_type.into().trim().to_ascii_lowercase();
        if bytes.is_empty() {
            return Err(Error::invalid_input("a photo needs at least one byte"));
        }
        // RFC 6838 restricted names: `image/png`, `image/svg+xml`, `image/vnd.microsoft.icon`.
        let subtype_ok = media_type.strip_prefix("image/").is_some_and(|sub| {
            (1..=127).contains(&sub.len())
                && sub.starts_with(|c: char| c.is_ascii_alphanumeric())
                && sub
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        });
        if !subtype_ok {
            return Err(Error::invalid_input(format!(
                "{media_type:?} is not an image media type"
            )));
        }
        let hash = ContentHash::of_bytes(&bytes);
        Ok(Photo {
            bytes,
            media_type,
            hash,
        })
    }

    /// The image bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }
    /// The SHA-256 of the bytes.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }
}

impl fmt::Debug for Photo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Photo")
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .field("hash", &self.hash)
            .finish()
    }
}

impl TryFrom<PhotoParts> for Photo {
    type Error = Error;
    fn try_from(p: PhotoParts) -> Result<Self> {
        Photo::new(base64_decode(&p.data)?, p.media_type)
    }
}

impl From<Photo> for PhotoParts {
    fn from(p: Photo) -> Self {
        PhotoParts {
            data: base64_encode(&p.bytes),
            media_type: p.media_type,
        }
    }
}

use base64::Engine as _;

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 (whitespace ignored).
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| Error::invalid_input(format!("the photo is not valid base64: {e}")))
}

/// Where a record came from: the provider and the id it had there. Records the engine
/// creates on the CRM from a provider item carry their origin, so the CRM can tag the source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The provider (`"google"`, `"microsoft"`, `"memory"`, ...).
    pub provider: String,
    /// The item's id there.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(
            "#A4BDFC".parse::<Rgb>().unwrap(),
            Rgb::new(0xa4, 0xbd, 0xfc)
        );
        assert_eq!(Rgb::new(1, 2, 255).to_string(), "#0102ff");
        assert!("#12345".parse::<Rgb>().is_err());
        assert!("#12345g".parse::<Rgb>().is_err());
    }

    #[test]
    fn zones() {
        assert_eq!(
            "Europe/Paris".parse::<Zone>().unwrap().name(),
            "Europe/Paris"
        );
        assert!("Mars/Olympus".parse::<Zone>().is_err());
    }

    #[test]
    fn emails() {
        assert!(EmailAddress::new("ann@example.com").is_ok());
        for bad in ["", "ann", "@x", "ann@", "a b@x.y", "ann@.com"] {
            assert!(EmailAddress::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(PhoneNumber::new("+33 (0)6 12 34 56 78").is_ok());
        assert!(PhoneNumber::new("+1 555 0100 ext. 12").is_ok());
        assert!(PhoneNumber::new("call me").is_err());
        assert!(PhoneNumber::new("").is_err());
    }

    #[test]
    fn birthdays() {
        assert!(Birthday::new(None, 2, 29).is_ok());
        assert!(Birthday::new(Some(2023), 2, 29).is_err());
        assert!(Birthday::new(Some(1990), 13, 1).is_err());
        let b: Birthday = serde_json::from_str(r#"{"month":7,"day":14}"#).unwrap();
        assert_eq!(b.year(), None);
        assert!(serde_json::from_str::<Birthday>(r#"{"month":4,"day":31}"#).is_err());
    }

    #[test]
    fn base64_round_trip() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
    }

    #[test]
    fn photos() {
        let p = Photo::new(vec![1, 2, 3], "image/PNG").unwrap();
        assert_eq!(p.media_type(), "image/png");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Photo>(&json).unwrap(), p);
        assert!(Photo::new(vec![], "image/png").is_err());
        assert!(Photo::new(vec![1], "text/plain").is_err());
    }

    /// Bug: any text after `image/` was accepted as a media type, control characters and
    /// spaces included, and would have been sent to providers as a header value.
    #[test]
    fn photo_media_types_are_checked() {
        assert!(Photo::new(vec![1], "image/svg+xml").is_ok());
        assert!(Photo::new(vec![1], " IMAGE/JPEG ").is_ok());
        for bad in [
            "image/",
            "image/ png",
            "image/png\r\nX-Evil: 1",
            "image/<b>",
            "image//",
        ] {
            let err = Photo::new(vec![1], bad).unwrap_err();
            assert_eq!(err.kind(), &crate::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
