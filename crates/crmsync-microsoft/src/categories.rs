//! Colours through Outlook master categories (MS-CAL-21).
//!
//! Outlook colours an event by its `categories` (display names of the mailbox's master
//! categories), each master category having one of 25 preset colours. An event's colour is
//! snapped to the nearest preset ([`PRESETS`], by CIEDE2000 through
//! [`crmsync_core::colour`]) and written as a category of ours:
//!
//! - `crmsync <colour>` for a colour alone (`crmsync Dark red`);
//! - `<category> (crmsync <colour>)` when the event also has a category (the CRM action
//!   type's name: `Meeting (crmsync Blue)`);
//! - `<category> (crmsync)` for a category without a colour (preset `none`).
//!
//! Display names are unique per mailbox and fix the colour, so every (category, colour) pair
//! has its own master category. The user's own categories are kept: a write replaces only
//! the categories that read as ours ([`merge`]). [`MasterCategories`] lists the master
//! categories once per store and creates the missing ones.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crmsync_core::model::Rgb;
use crmsync_core::{ErrorKind, Result};
use crmsync_http::ApiRequest;
use serde_json::{Value, json};

use crate::client::MicrosoftClient;

/// The presets `preset0` … `preset24`: their names in Outlook and the colours Outlook on the
/// desktop shows for them (other clients render them slightly differently; MS-CAL-21).
pub const PRESETS: [(&str, Rgb); 25] = [
    ("Red", Rgb::new(0xe7, 0xa1, 0xa2)),
    ("Orange", Rgb::new(0xf9, 0xba, 0x89)),
    ("Brown", Rgb::new(0xf7, 0xdd, 0x8f)),
    ("Yellow", Rgb::new(0xfc, 0xfa, 0x90)),
    ("Green", Rgb::new(0x78, 0xd1, 0x68)),
    ("Teal", Rgb::new(0x9f, 0xdc, 0xc9)),
    ("Olive", Rgb::new(0xc6, 0xd2, 0xb0)),
    ("Blue", Rgb::new(0x9d, 0xb7, 0xe8)),
    ("Purple", Rgb::new(0xb5, 0xa1, 0xe2)),
    ("Cranberry", Rgb::new(0xda, 0xae, 0xc2)),
    ("Steel", Rgb::new(0xda, 0xd9, 0xdc)),
    ("Dark steel", Rgb::new(0x6b, 0x79, 0x94)),
    ("Gray", Rgb::new(0xbf, 0xbf, 0xbf)),
    ("Dark gray", Rgb::new(0x6f, 0x6f, 0x6f)),
    ("Black", Rgb::new(0x4f, 0x4f, 0x4f)),
    ("Dark red", Rgb::new(0xc1, 0x1a, 0x25)),
    ("Dark orange", Rgb::new(0xe2, 0x62, 0x0d)),
    ("Dark brown", Rgb::new(0xc7, 0x99, 0x30)),
    ("Dark yellow", Rgb::new(0xb9, 0xb3, 0x00)),
    ("Dark green", Rgb::new(0x36, 0x8f, 0x2b)),
    ("Dark teal", Rgb::new(0x32, 0x9b, 0x7a)),
    ("Dark olive", Rgb::new(0x77, 0x8b, 0x45)),
    ("Dark blue", Rgb::new(0x28, 0x58, 0xa5)),
    ("Dark purple", Rgb::new(0x5c, 0x3f, 0xa3)),
    ("Dark cranberry", Rgb::new(0x93, 0x44, 0x6b)),
];

/// The marker of our categories' names.
const MARK: &str = "crmsync";

/// The preset colours, in preset order (the store's palette).
pub fn palette() -> Vec<Rgb> {
    PRESETS.iter().map(|(_, rgb)| *rgb).collect()
}

/// The index of the preset nearest to `colour` (`preset{index}`).
pub fn preset_index(colour: Rgb) -> usize {
    crmsync_core::colour::nearest_index(colour, &palette()).unwrap_or(0)
}

/// A master category of ours: its display name and its `color` (`presetN` or `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurCategory {
    /// The display name, as written in the event's `categories`.
    pub display_name: String,
    /// `preset0` … `preset24`, or `none`.
    pub color: String,
}

/// The category of ours for an event's colour and category; `None` when it has neither.
pub fn category_for(colour: Option<Rgb>, category: Option<&str>) -> Option<OurCategory> {
    let category = category.map(str::trim).filter(|c| !c.is_empty());
    let preset = colour.map(preset_index);
    let display_name = match (category, preset) {
        (None, None) => return None,
        (None, Some(i)) => format!("{MARK} {}", PRESETS[i].0),
        (Some(c), Some(i)) => format!("{c} ({MARK} {})", PRESETS[i].0),
        (Some(c), None) => format!("{c} ({MARK})"),
    };
    Some(OurCategory {
        display_name,
        color: preset.map_or_else(|| "none".to_owned(), |i| format!("preset{i}")),
    })
}

fn preset_named(name: &str) -> Option<Rgb> {
    PRESETS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, rgb)| *rgb)
}

/// The colour and category a category name of ours stands for; `None` for the user's own.
pub fn parse(name: &str) -> Option<(Option<Rgb>, Option<String>)> {
    if let Some(colour) = name.strip_prefix(MARK).and_then(|r| r.strip_prefix(' ')) {
        return preset_named(colour).map(|rgb| (Some(rgb), None));
    }
    let (category, tail) = name.strip_suffix(')')?.rsplit_once(" (")?;
    if category.trim().is_empty() {
        return None;
    }
    if tail == MARK {
        return Some((None, Some(category.to_owned())));
    }
    let colour = tail.strip_prefix(MARK)?.strip_prefix(' ')?;
    preset_named(colour).map(|rgb| (Some(rgb), Some(category.to_owned())))
}

/// The colour and category of an event's `categories`: from the first category of ours.
pub fn read(categories: &[String]) -> (Option<Rgb>, Option<String>) {
    categories
        .iter()
        .find_map(|c| parse(c))
        .unwrap_or((None, None))
}

/// The event's new `categories`: the user's own ones from `current`, in their order, then
/// ours (if any).
pub fn merge(current: &[String], ours: Option<&OurCategory>) -> Vec<String> {
    current
        .iter()
        .filter(|c| parse(c).is_none())
        .cloned()
        .chain(ours.map(|o| o.display_name.clone()))
        .collect()
}

/// The `categories` of a Graph event as strings (absent: none).
pub fn of_event(value: &Value) -> Vec<String> {
    value
        .get("categories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The mailbox's master categories, listed once and then kept; missing ones are created.
/// Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct MasterCategories {
    client: MicrosoftClient,
    /// The display names known to exist (lower-cased: Outlook compares them so).
    known: Arc<Mutex<Option<HashSet<String>>>>,
}

impl MasterCategories {
    /// The master categories of `client`'s mailbox.
    pub fn new(client: MicrosoftClient) -> Self {
        MasterCategories {
            client,
            known: Arc::new(Mutex::new(None)),
        }
    }

    fn is_known(&self, name: &str) -> Option<bool> {
        let known = self.known.lock().ok()?;
        known.as_ref().map(|k| k.contains(&name.to_lowercase()))
    }

    fn remember(&self, name: &str) {
        if let Ok(mut known) = self.known.lock() {
            known
                .get_or_insert_with(HashSet::new)
                .insert(name.to_lowercase());
        }
    }

    async fn list(&self) -> Result<()> {
        let mut url = Some(self.client.url(["me", "outlook", "masterCategories"]));
        let mut names = HashSet::new();
        while let Some(next) = url.take() {
            let page = self
                .client
                .get_json(next, "listing the master categories")
                .await?;
            for c in page
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = c.get("displayName").and_then(Value::as_str) {
                    names.insert(name.to_lowercase());
                }
            }
            url = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .and_then(|l| url::Url::parse(l).ok());
        }
        if let Ok(mut known) = self.known.lock() {
            let merged = known.get_or_insert_with(HashSet::new);
            merged.extend(names);
        }
        Ok(())
    }

    /// Makes sure the master category exists: lists the master categories on first use,
    /// creates it when missing (one that appeared meanwhile, 409, counts as existing).
    ///
    /// # Errors
    /// The listing's and the creation's errors.
    pub async fn ensure(&self, category: &OurCategory) -> Result<()> {
        if self.is_known(&category.display_name).is_none() {
            self.list().await?;
        }
        if self.is_known(&category.display_name) == Some(true) {
            return Ok(());
        }
        let request = ApiRequest::post(self.client.url(["me", "outlook", "masterCategories"]))
            .json(&json!({"displayName": category.display_name, "color": category.color}))?;
        match self
            .client
            .send(request, &[], "creating a master category")
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == &ErrorKind::Conflict => {}
            Err(e) => return Err(e),
        }
        self.remember(&category.display_name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_maps_to_itself_and_reads_back() {
        for (i, (_, rgb)) in PRESETS.iter().enumerate() {
            assert_eq!(preset_index(*rgb), i);
            let ours = category_for(Some(*rgb), None).unwrap();
            assert_eq!(ours.color, format!("preset{i}"));
            assert_eq!(read(&[ours.display_name]), (Some(*rgb), None));
        }
    }

    #[test]
    fn crm_colours_snap_to_the_expected_preset() {
        let name = |hex: &str| {
            category_for(Some(hex.parse().unwrap()), None)
                .unwrap()
                .display_name
        };
        assert_eq!(name("#b81c28"), "crmsync Dark red");
        assert_eq!(name("#ffb0b0"), "crmsync Red");
        assert_eq!(name("#2a5aa8"), "crmsync Dark blue");
        assert_eq!(name("#35902a"), "crmsync Dark green");
    }

    #[test]
    fn a_category_with_and_without_colour_round_trips() {
        let blue = PRESETS[7].1;
        let ours = category_for(Some(blue), Some("Meeting")).unwrap();
        assert_eq!(ours.display_name, "Meeting (crmsync Blue)");
        assert_eq!(
            read(&["Vacation".into(), ours.display_name]),
            (Some(blue), Some("Meeting".into()))
        );
        let plain = category_for(None, Some("Call")).unwrap();
        assert_eq!(plain.color, "none");
        assert_eq!(read(&[plain.display_name]), (None, Some("Call".into())));
        assert_eq!(category_for(None, Some("  ")), None);
    }

    #[test]
    fn the_users_own_categories_are_kept() {
        let current = vec![
            "Red category".to_owned(),
            "crmsync Blue".to_owned(),
            "Holiday (trip)".to_owned(),
        ];
        let ours = category_for(Some(PRESETS[4].1), None).unwrap();
        assert_eq!(
            merge(&current, Some(&ours)),
            vec!["Red category", "Holiday (trip)", "crmsync Green"]
        );
        assert_eq!(
            merge(&current, None),
            vec!["Red category", "Holiday (trip)"]
        );
        assert_eq!(parse("crmsync Mauve"), None);
        assert_eq!(read(&["Red category".into()]), (None, None));
    }
}
