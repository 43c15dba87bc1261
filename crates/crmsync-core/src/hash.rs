//! Content hashes that are stable across Rust releases and machines.
//!
//! Hashes are persisted in the sync state (baselines, per-field hashes), so they are computed
//! from canonical bytes with SHA-256, never with `std::hash`: the canonical bytes of a field
//! value are its JSON text with object keys sorted and no whitespace, written by
//! [`canonical_json`] here rather than by a serializer whose key order depends on features.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 digest, shown and stored as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The SHA-256 of these bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ContentHash(Sha256::digest(bytes).into())
    }

    /// The SHA-256 of the canonical JSON text of this value.
    pub fn of_value(value: &serde_json::Value) -> Self {
        let mut out = Vec::with_capacity(64);
        canonical_json(value, &mut out);
        Self::of_bytes(&out)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the text is not 64
    /// hex digits.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(Error::invalid_input(format!(
                "a content hash is 64 hex digits, got {} characters",
                text.len()
            )));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            out[i] = hi << 4 | lo;
        }
        Ok(ContentHash(out))
    }
}

fn hex_digit(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::invalid_input(format!(
            "{:?} is not a hex digit",
            c as char
        ))),
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl TryFrom<String> for ContentHash {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::from_hex(&value)
    }
}

impl From<ContentHash> for String {
    fn from(value: ContentHash) -> String {
        value.to_string()
    }
}

/// Writes the canonical JSON text of a value: object keys sorted by their UTF-8 bytes, no
/// whitespace, strings escaped as serde_json escapes them.
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                canonical_json(&map[key], out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": 1, "a": [true, null, "x\n"]}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[true,null,"x\n"],"b":1}"#
        );
    }

    /// Bug: backspace and form feed were written as `\u0008` and `\u000c` where serde_json
    /// writes `\b` and `\f`, so the canonical bytes were not serde_json's as documented.
    #[test]
    fn canonical_json_escapes_strings_as_serde_json() {
        let s: String = (0u32..0x80).filter_map(char::from_u32).collect::<String>() + "é\u{2028}😀";
        let value = json!([s, {"\u{8}key\u{c}": [1, -2, 1.5]}]);
        let mut out = Vec::new();
        canonical_json(&value, &mut out);
        assert_eq!(out, serde_json::to_vec(&value).unwrap());
    }

    /// Hashes are persisted: this golden value must never change.
    #[test]
    fn golden_hash() {
        let h = ContentHash::of_value(&json!({"title": "Kickoff", "private": false}));
        assert_eq!(
            h.to_string(),
            ContentHash::of_bytes(br#"{"private":false,"title":"Kickoff"}"#).to_string()
        );
        assert_eq!(
            ContentHash::of_bytes(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trip() {
        let h = ContentHash::of_bytes(b"abc");
        assert_eq!(ContentHash::from_hex(&h.to_string()).unwrap(), h);
        assert!(ContentHash::from_hex("zz").is_err());
        assert!(ContentHash::from_hex(&"g".repeat(64)).is_err());
    }
}
