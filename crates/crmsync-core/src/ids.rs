//! Identifiers, versions and cursors.
//!
//! Each is a newtype over a string whose invariants are checked at construction, so a value
//! of one of these types is always usable: never empty, never longer than its limit, never
//! holding control characters (which would corrupt logs, URLs or the state database).
//! They are opaque: crmsync compares them, stores them and hands them back, nothing more.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn validate(type_name: &str, value: &str, max_len: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_input(format!(
            "{type_name} must not be empty"
        )));
    }
    if value.len() > max_len {
        return Err(Error::invalid_input(format!(
            "{type_name} is {} bytes long; at most {max_len} are allowed",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::invalid_input(format!(
            "{type_name} contains the control character {c:?}"
        )));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, max = $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(
            // INVARIANT: non-empty, at most `Self::MAX_LEN` bytes, no control characters.
            String,
        );

        impl $name {
            /// The longest value accepted, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Checks the invariants and wraps the value.
            ///
            /// # Errors
            /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the value is
            /// empty, too long or holds a control character.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                validate(stringify!($name), &value, $max)?;
                Ok(Self(value))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_newtype!(
    /// The id of an item inside a store (a Google event id, a Graph id, a CRM row id).
    /// Stores speak in `ItemId`s; the engine tells the sides apart with [`CrmId`] and
    /// [`RemoteId`].
    ItemId,
    max = 2048
);
string_newtype!(
    /// The id of a record on the CRM side of a pair.
    CrmId,
    max = 2048
);
string_newtype!(
    /// The id of a record on the provider side of a pair (Google event id, People
    /// resource name, Graph immutable id, CalDAV href).
    RemoteId,
    max = 2048
);
string_newtype!(
    /// A collection inside a store: a calendar, an address book, a contact group or folder.
    CollectionId,
    max = 2048
);
string_newtype!(
    /// A connected account (one user's Google or Microsoft account, as named by the host).
    AccountId,
    max = 512
);
string_newtype!(
    /// The key stored on a copy that says which record it was made from: on a provider copy,
    /// the CRM id (Google `extendedProperties.private`, People `clientData`, Graph extended
    /// property); on a CRM record created from the provider, its origin (the remote id).
    /// A lost or reset state is recovered by finding copies by this key.
    LinkKey,
    max = 1024
);
string_newtype!(
    /// The version of an item as its store reports it (an etag, a change key). Any write
    /// to the item changes it; writes may be made conditional on it.
    Version,
    max = 1024
);
string_newtype!(
    /// A change-feed position: a Google sync token, a Graph delta link, a CalDAV sync token.
    /// Opaque, and may expire ([`ErrorKind::CursorExpired`](crate::ErrorKind::CursorExpired)).
    Cursor,
    max = 16384
);
string_newtype!(
    /// A token for the next page of a listing or change feed.
    PageToken,
    max = 16384
);

impl From<CrmId> for ItemId {
    fn from(id: CrmId) -> ItemId {
        ItemId(id.0)
    }
}
impl From<RemoteId> for ItemId {
    fn from(id: RemoteId) -> ItemId {
        ItemId(id.0)
    }
}
impl From<ItemId> for CrmId {
    fn from(id: ItemId) -> CrmId {
        CrmId(id.0)
    }
}
impl From<ItemId> for RemoteId {
    fn from(id: ItemId) -> RemoteId {
        RemoteId(id.0)
    }
}
impl From<CrmId> for LinkKey {
    /// A CRM id is the link key of the provider copies made from it. Ids are at most
    /// 2048 bytes and link keys 1024; a longer id is kept whole by hashing it.
    fn from(id: CrmId) -> LinkKey {
        link_key_of(id.0)
    }
}
impl From<RemoteId> for LinkKey {
    /// A remote id is the link key (the origin) of the CRM records made from it.
    fn from(id: RemoteId) -> LinkKey {
        link_key_of(id.0)
    }
}
impl From<ItemId> for LinkKey {
    fn from(id: ItemId) -> LinkKey {
        link_key_of(id.0)
    }
}

fn link_key_of(id: String) -> LinkKey {
    if id.len() <= LinkKey::MAX_LEN {
        LinkKey(id)
    } else {
        LinkKey(format!(
            "sha256:{}",
            crate::hash::ContentHash::of_bytes(id.as_bytes())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_control() {
        assert!(CrmId::new("").is_err());
        assert!(CrmId::new("a\nb").is_err());
        assert!(AccountId::new("x".repeat(513)).is_err());
        assert_eq!(CrmId::new("42").unwrap().as_str(), "42");
    }

    #[test]
    fn serde_checks_invariants() {
        assert!(serde_json::from_str::<Version>("\"\"").is_err());
        let v: Version = serde_json::from_str("\"\\\"abc\\\"\"").unwrap();
        assert_eq!(v.as_str(), "\"abc\"");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"\\\"abc\\\"\"");
    }

    #[test]
    fn long_ids_make_valid_link_keys() {
        let id = CrmId::new("x".repeat(2000)).unwrap();
        let key = LinkKey::from(id.clone());
        assert!(key.as_str().starts_with("sha256:"));
        assert_eq!(key, LinkKey::from(id));
    }
}
