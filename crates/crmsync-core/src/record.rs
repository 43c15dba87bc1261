//! The generic record abstraction: a record is a set of named fields that can be read,
//! written, compared and hashed.
//!
//! [`Event`](crate::Event) and [`Contact`](crate::Contact) implement [`Record`]; so can a
//! host's own entity (a CRM user synced into a directory). The engine only ever speaks to
//! records through this trait, so one engine syncs them all.
//!
//! Field values travel as [`FieldValue`] (a JSON value). Two readings of a field exist:
//! [`Record::field`] is the whole value, used to copy the field to the other side, and
//! [`Record::comparable`] is its canonical form, used to decide whether it changed (a phone
//! number without its punctuation, a list without its order, a period as UTC instants).
//! Hashes are taken over the comparable form.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::hash::Hash;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::store::Capabilities;

/// A field's value, as JSON. Objects are compared and hashed with sorted keys.
pub type FieldValue = serde_json::Value;

/// Which way a field flows between the CRM and the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Edits on either side are carried to the other; edits on both are a conflict.
    Both,
    /// The CRM owns the field: its value is written to the provider, provider edits are
    /// overwritten (or ignored, as the policy says).
    CrmToProvider,
    /// The provider owns the field.
    ProviderToCrm,
    /// The field is not synced at all.
    Skip,
}

/// The field enum of a record type (`EventField`, `ContactField`, ...): one variant per
/// row of the policy table, each serialised as its snake_case name (they appear in
/// configuration files).
pub trait Field:
    Copy + Eq + Ord + Hash + Debug + Display + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Every variant, in a stable order.
    const ALL: &'static [Self];

    /// The snake_case name, as in configuration files and the state.
    fn name(self) -> &'static str;

    /// The direction used when the policy does not say.
    fn default_direction(self) -> Direction;

    /// The variant with this snake_case name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// A record the engine can sync.
///
/// # Contract
/// - [`field`](Record::field) and [`set_field`](Record::set_field) round-trip: setting a
///   field to the value read from another record makes the two equal on that field.
/// - [`comparable`](Record::comparable) is a function of [`field`](Record::field): two
///   records with the same field value have the same comparable value, and normalising
///   twice is normalising once.
/// - [`set_field`](Record::set_field) rejects a value it cannot hold with
///   [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field, and
///   leaves the record unchanged.
pub trait Record:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The record's field enum.
    type Field: Field;

    /// The kind of record, as stored in the state (`"event"`, `"contact"`, ...).
    const KIND: &'static str;

    /// The most records of this kind a collection syncs unless configured otherwise; a run
    /// that reaches it syncs the nearest records and reports the rest. `None`: no cap.
    const DEFAULT_CAP: Option<usize> = None;

    /// A short human description of the record for plans and reports (a title, a name).
    fn summary(&self) -> String {
        String::new()
    }

    /// The whole value of a field, in normalised form.
    fn field(&self, field: Self::Field) -> FieldValue;

    /// The canonical form of a field used for comparison and hashing. Provider noise
    /// (whitespace, formatting, order) must not show in it.
    fn comparable(&self, field: Self::Field) -> FieldValue {
        self.field(field)
    }

    /// Writes a field from a value produced by [`field`](Record::field).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field when
    /// the value does not fit.
    fn set_field(&mut self, field: Self::Field, value: &FieldValue) -> Result<()>;

    /// Checks the record as a whole (e.g. an end before the start).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) with the field at fault.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The record as a store with these capabilities can hold it (three e-mails, one
    /// reminder, colours snapped to a palette), and what was lost on the way. The engine
    /// compares a side through what it can represent, so a lossy copy never reads as an edit.
    fn fit(&self, capabilities: &Capabilities) -> Fitted<Self> {
        let _ = capabilities;
        Fitted {
            record: self.clone(),
            losses: Vec::new(),
        }
    }

    /// The span of time the record occupies, for sync windows. `None`: the record is not
    /// bound to time and is always inside the window (contacts).
    fn time_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        None
    }

    /// The time span of a record in canonical form (a baseline), as
    /// [`time_span`](Record::time_span) would give it. Used to tell a linked record that
    /// left the window from one that was deleted. `None`: not bound to time.
    fn canonical_time_span(canonical: &CanonicalRecord) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let _ = canonical;
        None
    }

    /// A key identifying the same real-world thing on both sides before they are linked
    /// (an e-mail for a contact; an iCalUID, or title and start, for an event), used by the
    /// optional first-sync matching. `None`: the record cannot be matched.
    fn natural_key(&self) -> Option<String> {
        None
    }

    /// Whether the record is part of a recurring series (a master or an instance).
    fn is_recurring(&self) -> bool {
        false
    }

    /// The field that carries the series rule, for record types that have series. When the
    /// policy skips it, recurring records are left alone on both sides.
    fn recurrence_field() -> Option<Self::Field> {
        None
    }

    /// Marks the record as created from a provider item (events and contacts keep it in
    /// their `origin`). The default keeps nothing.
    fn set_origin(&mut self, provider: &str, id: &str) {
        let _ = (provider, id);
    }
}

/// What [`Record::fit`] returns: the record as the store can hold it, and the losses.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted<R> {
    /// The record reduced to what the store can represent.
    pub record: R,
    /// What could not be represented, field by field.
    pub losses: Vec<FieldLoss>,
}

/// A value a store could not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldLoss {
    /// The field's snake_case name.
    pub field: String,
    /// What was dropped or changed, for the report.
    pub detail: String,
}

/// Conveniences on every [`Record`]. You do not implement this trait: it has a blanket
/// implementation.
pub trait RecordExt: Record {
    /// The hash of one field's comparable value.
    fn field_hash(&self, field: Self::Field) -> ContentHash {
        ContentHash::of_value(&self.comparable(field))
    }

    /// The record in canonical form: every field's whole value, the per-field hashes of
    /// their comparable values, and the hash of the record.
    fn canonical(&self) -> CanonicalRecord {
        let mut fields = BTreeMap::new();
        let mut field_hashes = BTreeMap::new();
        for &f in Self::Field::ALL {
            fields.insert(f.name().to_owned(), self.field(f));
            field_hashes.insert(f.name().to_owned(), self.field_hash(f));
        }
        let hash = CanonicalRecord::hash_of(&field_hashes);
        CanonicalRecord {
            kind: Self::KIND.to_owned(),
            fields,
            field_hashes,
            hash,
        }
    }

    /// The hash of the whole record (over its per-field hashes).
    fn content_hash(&self) -> ContentHash {
        let hashes: BTreeMap<String, ContentHash> = Self::Field::ALL
            .iter()
            .map(|&f| (f.name().to_owned(), self.field_hash(f)))
            .collect();
        CanonicalRecord::hash_of(&hashes)
    }

    /// Rebuilds a record from its canonical form, on top of `base` (fields missing from
    /// the canonical form keep `base`'s values).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) when a field does not fit.
    fn from_canonical(canonical: &CanonicalRecord, base: Self) -> Result<Self> {
        if canonical.kind != Self::KIND {
            return Err(Error::invalid_record(
                None,
                format!(
                    "a {} record cannot be read as a {}",
                    canonical.kind,
                    Self::KIND
                ),
            ));
        }
        let mut record = base;
        for (name, value) in &canonical.fields {
            if let Some(field) = Self::Field::from_name(name) {
                record.set_field(field, value)?;
            }
        }
        Ok(record)
    }
}

impl<R: Record> RecordExt for R {}

/// A record as stored in the sync state: record-agnostic, so any state backend can keep
/// baselines of any record type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalRecord {
    /// [`Record::KIND`] of the record.
    pub kind: String,
    /// Every field's whole value, by snake_case name.
    pub fields: BTreeMap<String, FieldValue>,
    /// Every field's hash of its comparable value, by snake_case name.
    pub field_hashes: BTreeMap<String, ContentHash>,
    /// The hash of the record (over the per-field hashes).
    pub hash: ContentHash,
}

impl CanonicalRecord {
    /// The record hash over a set of per-field hashes.
    pub fn hash_of(field_hashes: &BTreeMap<String, ContentHash>) -> ContentHash {
        let mut bytes = Vec::with_capacity(field_hashes.len() * 80);
        for (name, hash) in field_hashes {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(hash.as_bytes());
        }
        ContentHash::of_bytes(&bytes)
    }

    /// The whole value of a field, if the record has it.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }

    /// The hash of a field's comparable value, if the record has it.
    pub fn field_hash(&self, name: &str) -> Option<ContentHash> {
        self.field_hashes.get(name).copied()
    }
}

/// Reads a field value into a typed value, naming the field in the error.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field.
pub fn from_field_value<T: DeserializeOwned>(field: &str, value: &FieldValue) -> Result<T> {
    T::deserialize(value).map_err(|e| Error::invalid_record(Some(field), e.to_string()))
}

/// Writes a typed value as a field value.
pub fn to_field_value<T: Serialize>(value: &T) -> FieldValue {
    // Model types serialise to JSON without failing: no maps with non-string keys, no
    // floats that are not finite.
    serde_json::to_value(value).unwrap_or(FieldValue::Null)
}
