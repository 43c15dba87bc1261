//! OAuth tokens, the [`TokenStore`] trait, and the [`TokenKey`] that encrypts tokens at rest.
//!
//! - [`AccessToken`] and [`RefreshToken`] are secrets: newtypes over
//!   [`secrecy::SecretString`], zeroed on drop, printed as `[redacted]` by `Debug`, with no
//!   `Display` and no `Serialize`. Reading one takes an explicit
//!   [`secret`](AccessToken::secret) call, which is easy to find in a review.
//! - A [`TokenSet`] is what a token endpoint granted an account: the access token, the
//!   refresh token when there is one, when the access token expires, the scopes granted and
//!   the token type.
//! - A [`TokenStore`] keeps one token set per account. It lives here, in the core, so state
//!   backends implement it without any HTTP; the refresh helpers live in `crmsync-http`.
//! - A [`TokenKey`] is the 32-byte key, provided by the host, under which persistent stores
//!   encrypt token sets (XChaCha20-Poly1305, a random nonce per write, the account id as
//!   associated data so a row copied to another account does not decrypt).
//!
//! # Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use crmsync_core::{AccessToken, AccountId, RefreshToken, TokenKey, TokenSet};
//!
//! let tokens = TokenSet::new(
//!     AccessToken::new("ya29.example"),
//!     Some(RefreshToken::new("1//example")),
//!     Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
//! )
//! .with_scopes(["https://www.googleapis.com/auth/calendar"]);
//! assert!(!format!("{tokens:?}").contains("ya29"));
//!
//! let key = TokenKey::from_bytes([7; 32]);
//! let account = AccountId::new("ann@example.com")?;
//! let sealed = key.seal(&account, &tokens)?;
//! let opened = key.open(&account, &sealed)?;
//! assert_eq!(opened.access_token.secret(), "ya29.example");
//! # Ok::<(), crmsync_core::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use rand::TryRngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::ids::AccountId;

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(SecretString::from(secret.into()))
            }

            /// The secret itself. Call it only where the value is sent or stored.
            pub fn secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<SecretString> for $name {
            fn from(secret: SecretString) -> Self {
                Self(secret)
            }
        }
    };
}

secret_newtype!(
    /// A bearer access token: sent in the `Authorization` header, short-lived (about an hour
    /// at Google and Microsoft). Redacted in `Debug`; no `Display`, no `Serialize`.
    AccessToken
);
secret_newtype!(
    /// A refresh token: long-lived, exchanged for new access tokens. Redacted in `Debug`; no
    /// `Display`, no `Serialize`; encrypted at rest by persistent [`TokenStore`]s.
    RefreshToken
);

/// The tokens an account was granted.
#[derive(Clone, Debug)]
pub struct TokenSet {
    /// The current access token.
    pub access_token: AccessToken,
    /// The refresh token, when the provider issued one (Microsoft only with the
    /// `offline_access` scope). A refresh that returns none keeps the previous one.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The scopes granted, which may be fewer than those asked for (Google's granular
    /// consent lets users untick some).
    pub scopes: BTreeSet<String>,
    /// The token type, `Bearer` for every provider crmsync speaks to.
    pub token_type: String,
}

impl TokenSet {
    /// A `Bearer` token set with no scopes recorded.
    pub fn new(
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        TokenSet {
            access_token,
            refresh_token,
            expires_at,
            scopes: BTreeSet::new(),
            token_type: "Bearer".to_owned(),
        }
    }

    /// Records the scopes granted.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the access token is expired at `now`, or expires within `margin` of it.
    pub fn expires_within(&self, now: DateTime<Utc>, margin: std::time::Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        match now.checked_add_signed(margin) {
            Some(deadline) => self.expires_at <= deadline,
            None => true,
        }
    }

    /// The scopes of `required` that were not granted, in their order.
    pub fn missing_scopes<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        required
            .into_iter()
            .filter(|s| !self.scopes.contains(*s))
            .map(str::to_owned)
            .collect()
    }
}

/// Keeps the tokens of each account.
///
/// # Contract
///
/// - [`save`](TokenStore::save) replaces the whole token set of the account, atomically:
///   a later [`load`](TokenStore::load) returns it, or the previous one, never a mix. A
///   rotated refresh token (Microsoft issues a new one on every refresh) must be saved at
///   once, because the provider may invalidate the old one.
/// - [`load`](TokenStore::load) returns `None` for an account with no tokens (never
///   signed in, or purged).
/// - [`purge`](TokenStore::purge) forgets the account's tokens; purging an account with
///   none is not an error. Resetting an account purges its tokens.
/// - Persistent implementations encrypt token sets at rest under a [`TokenKey`] the host
///   provides, and never put a secret in an error message, a log line or `Debug` output.
///
/// # Errors
///
/// Every method returns [`ErrorKind::State`] when the storage cannot be read or written,
/// or when stored tokens cannot be decrypted (a different [`TokenKey`], or a damaged row).
#[async_trait]
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// The account's tokens, if any.
    async fn load(&self, account: &AccountId) -> Result<Option<TokenSet>>;

    /// Stores the account's tokens, replacing any.
    async fn save(&self, account: &AccountId, tokens: &TokenSet) -> Result<()>;

    /// Forgets the account's tokens.
    async fn purge(&self, account: &AccountId) -> Result<()>;
}

/// The length of a [`TokenKey`] in bytes.
pub const TOKEN_KEY_LEN: usize = 32;

/// The first byte of a sealed token set: the format version.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// The 32-byte key under which token sets are encrypted at rest (XChaCha20-Poly1305).
///
/// The host provides it (from a secrets manager, an environment variable, a key file) and
/// must keep it: tokens sealed under one key cannot be read under another, and the only
/// way back is signing in again. Zeroed on drop; `Debug` prints `TokenKey([redacted])`.
#[derive(Clone)]
pub struct TokenKey(Zeroizing<[u8; TOKEN_KEY_LEN]>);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

/// The plaintext layout of a sealed token set (JSON, zeroed after use).
#[derive(Serialize, Deserialize)]
struct SealedLayout<'a> {
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    expires_at: DateTime<Utc>,
    scopes: BTreeSet<String>,
    token_type: &'a str,
}

impl TokenKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_KEY_LEN]) -> Self {
        TokenKey(Zeroizing::new(bytes))
    }

    /// A key from its base64 text (standard or URL-safe alphabet, padded or not), as
    /// `openssl rand -base64 32` prints it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the text is not base64 or does not decode to
    /// exactly 32 bytes. The message never repeats the text.
    pub fn from_base64(text: &str) -> Result<Self> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let text = text.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Zeroizing::new)
            .ok_or_else(|| Error::invalid_input("the token key is not valid base64"))?;
        let bytes: [u8; TOKEN_KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::invalid_input(format!(
                "the token key must be {TOKEN_KEY_LEN} bytes; this one is {}",
                decoded.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key from the operating system's generator, for hosts that create and
    /// then store their key.
    ///
    /// # Errors
    /// [`ErrorKind::State`] when the operating system's generator fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_KEY_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|e| Error::state("could not draw a random token key").with_source(e))?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The key as standard base64, to store it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.0[..]))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(*self.0))
    }

    /// Encrypts `tokens` for `account`: a version byte, a random 24-byte nonce and the
    /// ciphertext with its tag. The account id is authenticated with it, so the result
    /// only opens for the same account.
    ///
    /// # Errors
    /// [`ErrorKind::State`] when the random generator or the encryption fails.
    pub fn seal(&self, account: &AccountId, tokens: &TokenSet) -> Result<Vec<u8>> {
        let layout = SealedLayout {
            access_token: tokens.access_token.secret(),
            refresh_token: tokens.refresh_token.as_ref().map(RefreshToken::secret),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.clone(),
            token_type: &tokens.token_type,
        };
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&layout)
                .map_err(|_| Error::state("could not encode a token set for encryption"))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| Error::state("could not draw a random nonce").with_source(e))?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: account.as_str().as_bytes(),
                },
            )
            .map_err(|_| Error::state("could not encrypt a token set"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`seal`](TokenKey::seal) produced for `account`.
    ///
    /// # Errors
    /// [`ErrorKind::State`] when the bytes were sealed under another key or for another
    /// account, or are damaged: decryption is authenticated, so a wrong key never yields
    /// garbage tokens. The remedy is in the message: supply the key the tokens were
    /// written with, or sign the account in again to replace them.
    pub fn open(&self, account: &AccountId, sealed: &[u8]) -> Result<TokenSet> {
        let undecryptable = || {
            Error::new(
                ErrorKind::State,
                format!(
                    "the stored tokens of account `{}` cannot be decrypted: they were written \
                     under another token key, or are damaged; supply the token key they were \
                     written with, or sign the account in again to replace them",
                    account.as_str()
                ),
            )
        };
        let (version, rest) = sealed.split_first().ok_or_else(undecryptable)?;
        if *version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| undecryptable())?;
        let plaintext = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: account.as_str().as_bytes(),
                    },
                )
                .map_err(|_| undecryptable())?,
        );
        let layout: SealedLayout<'_> =
            serde_json::from_slice(&plaintext).map_err(|_| undecryptable())?;
        Ok(TokenSet {
            access_token: AccessToken::new(layout.access_token),
            refresh_token: layout.refresh_token.map(RefreshToken::new),
            expires_at: layout.expires_at,
            scopes: layout.scopes,
            token_type: layout.token_type.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SENTINEL: &str = "SENTINEL-9f2c-refresh";

    fn tokens() -> TokenSet {
        TokenSet::new(
            AccessToken::new("SENTINEL-access"),
            Some(RefreshToken::new(SENTINEL)),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        )
        .with_scopes(["a", "b"])
    }

    #[test]
    fn debug_is_redacted() {
        let text = format!("{:?} {:?}", tokens(), TokenKey::from_bytes([1; 32]));
        assert!(!text.contains("SENTINEL"), "{text}");
        assert!(text.contains("[redacted]"));
        assert!(!text.contains("1, 1"));
    }

    #[test]
    fn seal_round_trips_and_hides_the_secret() {
        let key = TokenKey::from_bytes([3; 32]);
        let account = AccountId::new("ann@example.com").unwrap();
        let sealed = key.seal(&account, &tokens()).unwrap();
        assert!(
            !sealed
                .windows(SENTINEL.len())
                .any(|w| w == SENTINEL.as_bytes())
        );
        let opened = key.open(&account, &sealed).unwrap();
        assert_eq!(opened.refresh_token.unwrap().secret(), SENTINEL);
        assert_eq!(opened.scopes.len(), 2);
        // A fresh nonce on every seal.
        assert_ne!(sealed, key.seal(&account, &tokens()).unwrap());
    }

    #[test]
    fn wrong_key_or_account_is_a_clear_state_error() {
        let account = AccountId::new("ann@example.com").unwrap();
        let sealed = TokenKey::from_bytes([3; 32])
            .seal(&account, &tokens())
            .unwrap();
        let err = TokenKey::from_bytes([4; 32])
            .open(&account, &sealed)
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::State);
        assert!(err.to_string().contains("another token key"));
        assert!(!format!("{err} {err:?}").contains("SENTINEL"));
        let other = AccountId::new("bob@example.com").unwrap();
        assert!(TokenKey::from_bytes([3; 32]).open(&other, &sealed).is_err());
        assert!(TokenKey::from_bytes([3; 32]).open(&account, &[]).is_err());
    }

    #[test]
    fn base64_keys() {
        let key = TokenKey::from_bytes([9; 32]);
        let text = key.to_base64();
        let back = TokenKey::from_base64(&text).unwrap();
        assert_eq!(*back.0, *key.0);
        let err = TokenKey::from_base64("c2hvcnQ=").unwrap_err();
        assert!(err.to_string().contains("32 bytes"));
        let err = TokenKey::from_base64("not base64 at all!").unwrap_err();
        assert!(!err.to_string().contains("at all"));
        assert!(TokenKey::generate().is_ok());
    }

    #[test]
    fn expiry_margin_and_scopes() {
        let t = tokens();
        let before = Utc.with_ymd_and_hms(2029, 12, 31, 23, 58, 0).unwrap();
        assert!(!t.expires_within(before, std::time::Duration::from_secs(60)));
        assert!(t.expires_within(before, std::time::Duration::from_secs(120)));
        assert_eq!(t.missing_scopes(["a", "c"]), vec!["c".to_owned()]);
    }
}
