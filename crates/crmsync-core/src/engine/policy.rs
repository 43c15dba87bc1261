//! `FieldPolicy`: which way each field flows, which side may create, how deletions travel,
//! and how conflicts are settled.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::model::{ContactField, EventField};
use crate::record::{Direction, Field};
use crate::state::Side;

/// How one field is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldRule {
    /// Which way the field flows.
    pub direction: Direction,
    /// With a one-way direction: write the value only when the target's is empty (a
    /// provider photo fills an empty CRM photo, and never replaces one).
    pub fill_empty_only: bool,
}

impl FieldRule {
    /// A rule with this direction that always writes.
    pub const fn new(direction: Direction) -> Self {
        FieldRule {
            direction,
            fill_empty_only: false,
        }
    }

    /// A one-way rule that only fills an empty target.
    pub const fn fill_empty(direction: Direction) -> Self {
        FieldRule {
            direction,
            fill_empty_only: true,
        }
    }

    /// Whether values may flow from `from` to the other side.
    pub fn flows_from(&self, from: Side) -> bool {
        matches!(
            (self.direction, from),
            (Direction::Both, _)
                | (Direction::CrmToProvider, Side::Crm)
                | (Direction::ProviderToCrm, Side::Provider)
        )
    }
}

impl Serialize for FieldRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        if self.fill_empty_only {
            #[derive(Serialize)]
            struct Full {
                direction: Direction,
                fill_empty_only: bool,
            }
            Full {
                direction: self.direction,
                fill_empty_only: true,
            }
            .serialize(serializer)
        } else {
            self.direction.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for FieldRule {
    /// Either a direction (`"both"`) or `{ direction = "...", fill_empty_only = true }`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Direction(Direction),
            Full {
                direction: Direction,
                #[serde(default)]
                fill_empty_only: bool,
            },
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Direction(direction) => FieldRule::new(direction),
            Raw::Full {
                direction,
                fill_empty_only,
            } => FieldRule {
                direction,
                fill_empty_only,
            },
        })
    }
}

/// What happens to a deletion on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionMode {
    /// The copy on the other side is deleted too.
    Propagate,
    /// The deletion is put to the [`DeletionGate`](crate::engine::DeletionGate) with every
    /// other pending deletion of the run; unconfirmed ones wait for the next run.
    Confirm,
    /// The copy on the other side is kept and unlinked.
    Ignore,
}

/// How a field changed on both sides to different values is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// The CRM's value is kept and written to the provider.
    CrmWins,
    /// The provider's value is kept and written to the CRM.
    ProviderWins,
    /// The value of the side modified last (by the stores' modification order: the side
    /// whose change arrived in this run wins over a deferred one; on a tie, the CRM).
    Newest,
    /// The [`ConflictResolver`](crate::engine::ConflictResolver) given to the syncer decides.
    Callback,
}

/// What happens when a side edits a field the policy does not let it write (the provider
/// edits a field the CRM owns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForbiddenEdit {
    /// The owner's value is written back over the edit.
    Overwrite,
    /// The edit is left in place (and reported).
    Ignore,
}

/// Per-direction settings (CRM → provider, provider → CRM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PerDirection<T> {
    /// From the CRM to the provider.
    pub crm_to_provider: T,
    /// From the provider to the CRM.
    pub provider_to_crm: T,
}

impl<T: Copy> PerDirection<T> {
    /// The setting for changes coming from `from`.
    pub fn from_side(&self, from: Side) -> T {
        match from {
            Side::Crm => self.crm_to_provider,
            Side::Provider => self.provider_to_crm,
        }
    }
}

/// Everything the engine needs to know about which side owns what.
///
/// Built from a preset ([`FieldPolicy::calendar_defaults`], [`FieldPolicy::contact_defaults`],
/// [`FieldPolicy::one_way_from_provider`], [`FieldPolicy::two_way`]) and adjusted; checked
/// by [`FieldPolicy::validate`] (which the builder and deserialisation run), so a policy that
/// makes no sense never reaches the engine.
///
/// ```
/// use crmsync_core::engine::{FieldPolicy, FieldRule};
/// use crmsync_core::{ContactField, Direction};
///
/// let policy = FieldPolicy::contact_defaults()
///     .with(ContactField::Photo, FieldRule::fill_empty(Direction::ProviderToCrm))
///     .build()?;
/// assert!(policy.rule(ContactField::Photo).fill_empty_only);
/// # Ok::<(), crmsync_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPolicy<F: Field> {
    fields: BTreeMap<F, FieldRule>,
    /// Which side's new records are created on the other side.
    pub create: PerDirection<bool>,
    /// What happens to deletions, per direction.
    pub deletions: PerDirection<DeletionMode>,
    /// How conflicts are settled.
    pub conflicts: ConflictStrategy,
    /// What happens to edits of fields a side does not own.
    pub forbidden_edits: ForbiddenEdit,
}

impl<F: Field> FieldPolicy<F> {
    /// Every field in its default direction; both sides create; deletions propagate from
    /// the CRM and are confirmed from the provider; conflicts go to the CRM.
    pub fn defaults() -> Self {
        FieldPolicy {
            fields: F::ALL
                .iter()
                .map(|&f| (f, FieldRule::new(f.default_direction())))
                .collect(),
            create: PerDirection {
                crm_to_provider: true,
                provider_to_crm: true,
            },
            deletions: PerDirection {
                crm_to_provider: DeletionMode::Propagate,
                provider_to_crm: DeletionMode::Confirm,
            },
            conflicts: ConflictStrategy::CrmWins,
            forbidden_edits: ForbiddenEdit::Overwrite,
        }
    }

    /// Everything from the provider to the CRM, deletions included; the CRM creates nothing.
    pub fn one_way_from_provider() -> Self {
        let mut p = Self::defaults();
        for rule in p.fields.values_mut() {
            *rule = FieldRule::new(Direction::ProviderToCrm);
        }
        p.create = PerDirection {
            crm_to_provider: false,
            provider_to_crm: true,
        };
        p.deletions = PerDirection {
            crm_to_provider: DeletionMode::Ignore,
            provider_to_crm: DeletionMode::Propagate,
        };
        p.conflicts = ConflictStrategy::ProviderWins;
        p
    }

    /// Every field both ways, creates and deletions both ways.
    pub fn two_way() -> Self {
        let mut p = Self::defaults();
        for rule in p.fields.values_mut() {
            *rule = FieldRule::new(Direction::Both);
        }
        p.deletions = PerDirection {
            crm_to_provider: DeletionMode::Propagate,
            provider_to_crm: DeletionMode::Propagate,
        };
        p
    }

    /// The rule of a field.
    pub fn rule(&self, field: F) -> FieldRule {
        self.fields
            .get(&field)
            .copied()
            .unwrap_or(FieldRule::new(field.default_direction()))
    }

    /// Every field with its rule.
    pub fn rules(&self) -> impl Iterator<Item = (F, FieldRule)> + '_ {
        self.fields.iter().map(|(&f, &r)| (f, r))
    }

    /// Sets a field's rule.
    #[must_use]
    pub fn with(mut self, field: F, rule: FieldRule) -> Self {
        self.fields.insert(field, rule);
        self
    }

    /// Sets a field's direction (always writing).
    #[must_use]
    pub fn with_direction(self, field: F, direction: Direction) -> Self {
        self.with(field, FieldRule::new(direction))
    }

    /// Sets the conflict strategy.
    #[must_use]
    pub fn with_conflicts(mut self, strategy: ConflictStrategy) -> Self {
        self.conflicts = strategy;
        self
    }

    /// Sets the deletion modes.
    #[must_use]
    pub fn with_deletions(
        mut self,
        crm_to_provider: DeletionMode,
        provider_to_crm: DeletionMode,
    ) -> Self {
        self.deletions = PerDirection {
            crm_to_provider,
            provider_to_crm,
        };
        self
    }

    /// Sets which sides' new records are created on the other side.
    #[must_use]
    pub fn with_creates(mut self, crm_to_provider: bool, provider_to_crm: bool) -> Self {
        self.create = PerDirection {
            crm_to_provider,
            provider_to_crm,
        };
        self
    }

    /// Checks the policy and returns it.
    ///
    /// # Errors
    /// See [`validate`](Self::validate).
    pub fn build(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// Rejects a policy that makes no sense, with a message saying why:
    /// - every field skipped (nothing would ever sync);
    /// - "fill only when empty" on a field that is skipped or synced both ways (it needs
    ///   one direction);
    /// - a side allowed to create records on the other when no field flows that way (the
    ///   copies would be empty);
    /// - the conflict strategy favouring a side and no field going both ways is fine, but
    ///   deletions propagated towards a side that receives no field are not (deleting what
    ///   it never got).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) with the reason.
    pub fn validate(&self) -> Result<()> {
        let rules: Vec<(F, FieldRule)> = F::ALL.iter().map(|&f| (f, self.rule(f))).collect();
        if rules.iter().all(|(_, r)| r.direction == Direction::Skip) {
            return Err(Error::invalid_input(
                "the policy skips every field: nothing would ever sync",
            ));
        }
        for (f, r) in &rules {
            if r.fill_empty_only && matches!(r.direction, Direction::Skip | Direction::Both) {
                return Err(Error::invalid_input(format!(
                    "field `{}`: \"fill only when empty\" needs a one-way direction, not {:?}",
                    f.name(),
                    r.direction
                )));
            }
        }
        for from in [Side::Crm, Side::Provider] {
            let any_flows = rules.iter().any(|(_, r)| r.flows_from(from));
            if self.create.from_side(from) && !any_flows {
                return Err(Error::invalid_input(format!(
                    "records created on the {from} side are copied to the other side, but no field flows from the {from}: the copies would be empty"
                )));
            }
            if self.deletions.from_side(from) == DeletionMode::Propagate
                && !any_flows
                && !self.create.from_side(from)
            {
                return Err(Error::invalid_input(format!(
                    "deletions on the {from} side are propagated, but the {from} neither creates nor updates anything on the other side"
                )));
            }
        }
        Ok(())
    }
}

impl FieldPolicy<EventField> {
    /// The calendar defaults CRM users know (DESIGN.md's table): everything both ways but
    /// the colour (CRM → provider) and the recurrence (skipped).
    pub fn calendar_defaults() -> Self {
        Self::defaults()
    }
}

impl FieldPolicy<ContactField> {
    /// The contact defaults CRM users know (DESIGN.md's table): the CRM owns the display
    /// name, e-mails, phones, addresses, company and photo; name parts are skipped; notes,
    /// birthday, messaging and groups go both ways.
    pub fn contact_defaults() -> Self {
        Self::defaults()
    }
}

/// The serialised form: an optional preset name plus per-field overrides.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preset: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, FieldRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    create: Option<PerDirection<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deletions: Option<PerDirection<DeletionMode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conflicts: Option<ConflictStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forbidden_edits: Option<ForbiddenEdit>,
}

impl<F: Field> FieldPolicy<F> {
    /// The preset with this name: `defaults`, `one_way_from_provider` or `two_way`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an unknown name.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "defaults" | "default" => Ok(Self::defaults()),
            "one_way_from_provider" => Ok(Self::one_way_from_provider()),
            "two_way" => Ok(Self::two_way()),
            other => Err(Error::invalid_input(format!(
                "unknown policy preset {other:?}: expected \"defaults\", \"one_way_from_provider\" or \"two_way\""
            ))),
        }
    }
}

impl<F: Field> Serialize for FieldPolicy<F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        PolicyForm {
            preset: None,
            fields: self
                .fields
                .iter()
                .map(|(f, r)| (f.name().to_owned(), *r))
                .collect(),
            create: Some(self.create),
            deletions: Some(self.deletions),
            conflicts: Some(self.conflicts),
            forbidden_edits: Some(self.forbidden_edits),
        }
        .serialize(serializer)
    }
}

impl<'de, F: Field> Deserialize<'de> for FieldPolicy<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let form = PolicyForm::deserialize(deserializer)?;
        let mut policy = match &form.preset {
            Some(name) => Self::preset(name).map_err(D::Error::custom)?,
            None => Self::defaults(),
        };
        for (name, rule) in form.fields {
            let field = F::from_name(&name).ok_or_else(|| {
                let known: Vec<&str> = F::ALL.iter().map(|f| f.name()).collect();
                D::Error::custom(format!(
                    "unknown field {name:?}; the fields are: {}",
                    known.join(", ")
                ))
            })?;
            policy.fields.insert(field, rule);
        }
        if let Some(c) = form.create {
            policy.create = c;
        }
        if let Some(d) = form.deletions {
            policy.deletions = d;
        }
        if let Some(c) = form.conflicts {
            policy.conflicts = c;
        }
        if let Some(f) = form.forbidden_edits {
            policy.forbidden_edits = f;
        }
        policy.validate().map_err(D::Error::custom)?;
        Ok(policy)
    }
}

impl<F: Field> fmt::Display for FieldPolicy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (field, rule) in &self.fields {
            write!(f, "{field}: {:?}", rule.direction)?;
            if rule.fill_empty_only {
                f.write_str(" (fill empty only)")?;
            }
            f.write_str("\n")?;
        }
        write!(
            f,
            "create: crm->provider {}, provider->crm {}\ndeletions: crm->provider {:?}, provider->crm {:?}\nconflicts: {:?}\n",
            self.create.crm_to_provider,
            self.create.provider_to_crm,
            self.deletions.crm_to_provider,
            self.deletions.provider_to_crm,
            self.conflicts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_design_table() {
        let cal = FieldPolicy::calendar_defaults();
        assert_eq!(
            cal.rule(EventField::Colour).direction,
            Direction::CrmToProvider
        );
        assert_eq!(cal.rule(EventField::Recurrence).direction, Direction::Skip);
        assert_eq!(cal.rule(EventField::Title).direction, Direction::Both);
        let con = FieldPolicy::contact_defaults();
        assert_eq!(con.rule(ContactField::Name).direction, Direction::Skip);
        assert_eq!(
            con.rule(ContactField::Emails).direction,
            Direction::CrmToProvider
        );
        assert_eq!(con.rule(ContactField::Groups).direction, Direction::Both);
        for p in [
            FieldPolicy::<EventField>::defaults(),
            FieldPolicy::one_way_from_provider(),
            FieldPolicy::two_way(),
        ] {
            p.validate().unwrap();
        }
        let one_way = FieldPolicy::<ContactField>::one_way_from_provider();
        assert_eq!(one_way.deletions.provider_to_crm, DeletionMode::Propagate);
        assert!(!one_way.create.crm_to_provider);
    }

    #[test]
    fn nonsense_is_rejected() {
        let mut all_skip = FieldPolicy::<EventField>::defaults();
        for &f in EventField::ALL {
            all_skip = all_skip.with_direction(f, Direction::Skip);
        }
        assert!(
            all_skip
                .build()
                .unwrap_err()
                .to_string()
                .contains("skips every field")
        );
        let bad_fill = FieldPolicy::<EventField>::defaults()
            .with(EventField::Title, FieldRule::fill_empty(Direction::Both));
        assert!(
            bad_fill
                .build()
                .unwrap_err()
                .to_string()
                .contains("one-way")
        );
        let empty_copies =
            FieldPolicy::<EventField>::one_way_from_provider().with_creates(true, true);
        assert!(
            empty_copies
                .build()
                .unwrap_err()
                .to_string()
                .contains("copies would be empty")
        );
    }

    #[test]
    fn serde_from_a_config_file() {
        let json = r#"{"preset": "two_way", "fields": {"photo": {"direction": "provider_to_crm", "fill_empty_only": true}, "notes": "skip"}, "conflicts": "provider_wins"}"#;
        let p: FieldPolicy<ContactField> = serde_json::from_str(json).unwrap();
        assert_eq!(
            p.rule(ContactField::Photo),
            FieldRule::fill_empty(Direction::ProviderToCrm)
        );
        assert_eq!(p.rule(ContactField::Notes).direction, Direction::Skip);
        assert_eq!(p.rule(ContactField::Emails).direction, Direction::Both);
        assert_eq!(p.conflicts, ConflictStrategy::ProviderWins);
        let back: FieldPolicy<ContactField> =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let err =
            serde_json::from_str::<FieldPolicy<ContactField>>(r#"{"fields": {"phone": "both"}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown field \"phone\""));
        assert!(
            serde_json::from_str::<FieldPolicy<ContactField>>(r#"{"preset": "nope"}"#).is_err()
        );
    }
}
