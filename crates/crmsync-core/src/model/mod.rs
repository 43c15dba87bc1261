//! The records crmsync syncs out of the box: [`Event`] and [`Contact`], and the validated
//! value types they are made of.

mod contact;
mod event;
mod types;

pub use contact::{
    Contact, ContactField, Email, ImHandle, Name, Organization, Phone, PostalAddress, Usage,
};
pub use event::{Event, EventField, EventStatus, Period, Recurrence};
pub use types::{Birthday, EmailAddress, Origin, PhoneNumber, Photo, Rgb, Zone};
