//! [`Samples`] for [`Event`] and [`Contact`]: distinct records that differ in every field
//! the stores may hold, built without the clock and without anything that can fail.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::Samples;
use crate::model::{
    Birthday, Contact, Email, EmailAddress, Event, EventStatus, ImHandle, Name, Organization,
    Period, Phone, PhoneNumber, Photo, PostalAddress, Recurrence, Rgb, Usage, Zone,
};

/// Zones the event samples use: wall times at 10:00 or 14:30 never fall in a DST gap.
const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::Europe::Paris,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Tokyo,
    chrono_tz::UTC,
];

/// Colours on and off Google's palette, so fitting to a palette is exercised.
const COLOURS: [Rgb; 5] = [
    Rgb::new(0xdc, 0x21, 0x27),
    Rgb::new(0x12, 0x34, 0x56),
    Rgb::new(0x51, 0xb7, 0x49),
    Rgb::new(0xff, 0x99, 0x00),
    Rgb::new(0x80, 0x00, 0x80),
];

fn day(year: i32, ordinal: u32) -> NaiveDate {
    NaiveDate::from_yo_opt(year, ordinal).unwrap_or(NaiveDate::MIN)
}

/// An event on day `1 + 5 + n % 300` of `year` (so 2026 samples stay inside the window
/// whatever their zone).
fn event_in(year: i32, n: usize) -> Event {
    let first = day(year, 6 + (n % 300) as u32);
    let period = if n % 4 == 3 {
        let last = first.succ_opt().unwrap_or(first);
        Period::AllDay {
            first_day: first,
            last_day: if n % 8 == 7 { last } else { first },
        }
    } else {
        let (h, m) = if n.is_multiple_of(2) {
            (10, 0)
        } else {
            (14, 30)
        };
        let start = NaiveDateTime::new(first, NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default());
        Period::Timed {
            start,
            end: start + Duration::minutes(30 + 15 * (n % 5) as i64),
            zone: Zone(ZONES[n % ZONES.len()]),
        }
    };
    let mut event = Event::new(format!("Sample meeting {n}"), period);
    event.location = format!("Room {}", 100 + n);
    event.private = n % 2 == 1;
    event.reminder_minutes = if n % 6 == 5 {
        None
    } else {
        Some(5 + 5 * (n % 12) as u32)
    };
    event.colour = Some(COLOURS[n % COLOURS.len()]);
    event.category = Some(format!("Action type {}", n % 3));
    event.description = format!("Agenda for sample {n}\nSecond line: é ü ✓");
    event.status = if n % 3 == 2 {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    };
    if n % 5 == 4 {
        event.recurrence = Some(Recurrence {
            rules: vec![format!("RRULE:FREQ=WEEKLY;COUNT={}", 2 + n % 4)],
            exceptions: Vec::new(),
        });
    }
    event
}

impl Samples for Event {
    fn sample(n: usize) -> Self {
        event_in(2026, n)
    }

    fn edit(&mut self, n: usize) {
        self.title = format!("{} (edited {n})", self.title);
        self.location = format!("Room {} (moved)", 500 + n);
        self.reminder_minutes = Some(10 + (n % 5) as u32);
        self.description = format!("Edited agenda {n}");
    }

    fn invalid() -> Option<Self> {
        // The last day before the first: `Period`'s fields are public, so only
        // `validate` can catch it.
        let mut event = Event::sample(0);
        event.period = Period::AllDay {
            first_day: day(2026, 20),
            last_day: day(2026, 10),
        };
        Some(event)
    }

    fn outside_window(n: usize) -> Option<Self> {
        let mut event = event_in(2020, n);
        event.title = format!("Sample meeting {n} outside the window");
        Some(event)
    }
}

fn email(local: &str, usage: Usage) -> Option<Email> {
    EmailAddress::new(format!("{local}@example.com"))
        .ok()
        .map(|address| Email { address, usage })
}

fn phone(number: String, usage: Usage) -> Option<Phone> {
    PhoneNumber::new(number)
        .ok()
        .map(|number| Phone { number, usage })
}

const USAGES: [Usage; 4] = [Usage::Work, Usage::Home, Usage::Other, Usage::Work];

impl Samples for Contact {
    fn sample(n: usize) -> Self {
        let given = ["Ann", "Bruno", "Chloé", "Dmitri", "Eun-ji", "Farid"][n % 6];
        let family = format!("Sample{n}");
        let emails = (0..1 + n % 4)
            .filter_map(|i| email(&format!("{}.{n}.{i}", given.to_lowercase()), USAGES[i]))
            .collect();
        let mut phones: Vec<Phone> = phone(
            format!("+33 1 23 45 {:02} {:02}", n % 100, 10 + n % 90),
            Usage::Work,
        )
        .into_iter()
        .collect();
        if n.is_multiple_of(2) {
            phones.extend(phone(
                format!("+1 (555) 010-{:04}", n % 10_000),
                Usage::Mobile,
            ));
        }
        let addresses = (0..1 + n % 4)
            .map(|i| PostalAddress {
                lines: vec![
                    format!("{} Sample Street", 10 + n + i),
                    format!("Floor {i}"),
                ],
                postal_code: format!("{:05}", 75_000 + n % 1000),
                city: ["Paris", "Lyon", "Boston", "Osaka"][i].into(),
                region: if i == 2 { "MA".into() } else { String::new() },
                country: ["France", "France", "USA", "Japan"][i].into(),
                usage: USAGES[i],
            })
            .collect();
        let birthday = if n.is_multiple_of(3) {
            Birthday::new(None, 1 + (n % 12) as u32, 1 + (n % 28) as u32).ok()
        } else {
            Birthday::new(
                Some(1960 + (n % 40) as i32),
                1 + (n % 12) as u32,
                1 + (n % 28) as u32,
            )
            .ok()
        };
        let photo = if n % 3 == 1 {
            // A real PNG (providers check the format), one pixel whose colour depends on n.
            Photo::new(
                png_pixel([n as u8, (n * 7) as u8, (n * 13) as u8]),
                "image/png",
            )
            .ok()
        } else {
            None
        };
        Contact {
            display_name: format!("{given} {family}"),
            name: Name {
                prefix: if n.is_multiple_of(2) {
                    "Dr".into()
                } else {
                    "Mrs".into()
                },
                given: given.into(),
                middle: if n.is_multiple_of(3) {
                    "Marie".into()
                } else {
                    String::new()
                },
                family,
                suffix: String::new(),
            },
            emails,
            phones,
            addresses,
            organization: Organization {
                company: format!("Company {}", n % 5),
                job_title: ["Buyer", "CEO", "Engineer"][n % 3].into(),
            },
            notes: format!("Notes about sample {n}\nMet at the fair."),
            birthday,
            im: vec![ImHandle {
                service: "xmpp".into(),
                handle: format!("sample{n}@chat.example"),
            }],
            photo,
            groups: BTreeSet::from([format!("Group {}", n % 3)]),
            origin: None,
        }
    }

    fn edit(&mut self, n: usize) {
        self.display_name = format!("{} (edited {n})", self.display_name);
        self.notes = format!("Edited notes {n}");
        self.organization.job_title = format!("Title {n}");
    }

    fn invalid() -> Option<Self> {
        // No name, no e-mail address, no company.
        Some(Contact::default())
    }
}

/// A valid 1×1 RGB PNG of this colour (uncompressed deflate, checksums computed).
fn png_pixel(rgb: [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    // One scanline: filter type 0, then the pixel.
    let raw = [0, rgb[0], rgb[1], rgb[2]];
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01, 4, 0, !4u8, 0xff];
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sample_png_has_a_valid_signature_and_checksums() {
        let png = super::png_pixel([1, 2, 3]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IEND's CRC is a known constant.
        assert_eq!(&png[png.len() - 4..], &[0xae, 0x42, 0x60, 0x82]);
        assert_ne!(super::png_pixel([1, 2, 3]), super::png_pixel([3, 2, 1]));
        // The bytes Python's zlib (level 0) and struct produce for the same image.
        let expected = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de\
                        0000000f494441547801010400fbff00010203000e00072da233ec0000000049454e44\
                        ae426082";
        let hex: String = png.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected.replace(' ', ""));
    }
}
