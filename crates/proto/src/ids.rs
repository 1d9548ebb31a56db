//! Validated identifiers. Every id that crosses the wire is checked once, when it is decoded, so
//! the rest of the code can hold a [`RoomId`] or [`PeerId`] and trust its shape.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Characters in a 128-bit id written as unpadded base64url.
pub const ID_LEN: usize = 22;
pub use crate::limits::MAX_NAME_CHARS;

/// Why a string is not a valid identifier or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {ID_LEN} characters of base64url encoding 128 bits")]
    NotAnId,
    #[error("must be 1 to {MAX_NAME_CHARS} characters")]
    NameLength,
    #[error("must not contain control or text-direction characters")]
    NameCharacters,
}

/// Checks that `s` is the canonical unpadded base64url form of exactly 16 bytes. Canonical matters:
/// the 22nd character carries 4 spare bits, and two spellings of one id would split a room.
fn check_id128(s: &str) -> Result<(), IdError> {
    if s.len() != ID_LEN {
        return Err(IdError::NotAnId);
    }
    match URL_SAFE_NO_PAD.decode(s) {
        Ok(bytes) if bytes.len() == 16 => Ok(()),
        _ => Err(IdError::NotAnId),
    }
}

fn random_id128() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

macro_rules! id128 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
        #[serde(try_from = "String", into = "String")]
        #[ts(type = "string")]
        pub struct $name(String);

        impl $name {
            /// A fresh id from 128 random bits.
            pub fn random() -> Self {
                Self(random_id128())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_id128(&s)?;
                Ok(Self(s))
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id128! {
    /// A meeting room: 128 random bits, the path segment of a meeting link.
    RoomId
}
id128! {
    /// A participant within one room, minted by the signaling service and never reused.
    PeerId
}
id128! {
    /// The meeting secret. It lives in the link's fragment and never reaches the server; `Debug`
    /// and `Display` do not show it, so it cannot leak into a log line by accident.
    MeetingKey
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.0)
    }
}
impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}
impl fmt::Debug for MeetingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeetingKey(<redacted>)")
    }
}

impl MeetingKey {
    /// The 16 secret bytes (the HMAC key of `fp_mac`).
    pub fn bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // The constructor guarantees canonical base64url of exactly 16 bytes.
        if let Ok(v) = URL_SAFE_NO_PAD.decode(&self.0) {
            out.copy_from_slice(&v);
        }
        out
    }
}

/// A participant's display name: 1–64 characters after trimming surrounding white space, with no
/// control characters and none of the invisible or text-direction characters that could make a
/// name look empty or like another one in the participant list.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(try_from = "String", into = "String")]
#[ts(type = "string")]
pub struct DisplayName(String);

impl DisplayName {
    pub fn new(name: &str) -> Result<Self, IdError> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS {
            return Err(IdError::NameLength);
        }
        if name.chars().any(|c| c.is_control() || is_invisible_or_direction(c)) {
            return Err(IdError::NameCharacters);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Zero-width and filler characters, and the marks and overrides that change text direction.
pub fn is_invisible_or_direction(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

impl TryFrom<String> for DisplayName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(&s)
    }
}
impl From<DisplayName> for String {
    fn from(n: DisplayName) -> String {
        n.0
    }
}
impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Which program a participant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Desktop,
    Browser,
    Cli,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = RoomId::random();
        let b = RoomId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<RoomId>(), Ok(a.clone()));
    }

    #[test]
    fn ids_must_be_canonical_128_bit_base64url() {
        assert!("AAAAAAAAAAAAAAAAAAAAAA".parse::<RoomId>().is_ok());
        assert!("_-_-_-_-_-_-_-_-_-_-_w".parse::<RoomId>().is_ok());
        for bad in [
            "",
            "AAAAAAAAAAAAAAAAAAAAA",   // 21 chars
            "AAAAAAAAAAAAAAAAAAAAAAA", // 23 chars
            "AAAAAAAAAAAAAAAAAAAAAB",  // spare bits set: not canonical
            "AAAAAAAAAAAAAAAAAAAA+A",  // standard base64, not url-safe
            "AAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAA A",
            "ÄAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(bad.parse::<RoomId>(), Err(IdError::NotAnId), "{bad:?}");
        }
    }

    #[test]
    fn key_never_shows_in_debug() {
        let key = MeetingKey::random();
        assert!(!format!("{key:?}").contains(key.as_str()));
        assert_eq!(MeetingKey::try_from(key.as_str().to_owned()).unwrap().bytes().len(), 16);
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(DisplayName::new("  Ada  ").unwrap().as_str(), "Ada");
        assert_eq!(DisplayName::new(&"é".repeat(64)).unwrap().as_str().chars().count(), 64);
        assert_eq!(DisplayName::new(""), Err(IdError::NameLength));
        assert_eq!(DisplayName::new("   "), Err(IdError::NameLength));
        assert_eq!(DisplayName::new(&"x".repeat(65)), Err(IdError::NameLength));
        assert_eq!(DisplayName::new("a\u{0}b"), Err(IdError::NameCharacters));
        assert_eq!(DisplayName::new("a\nb"), Err(IdError::NameCharacters));
        assert_eq!(DisplayName::new("evil\u{202E}gnp.exe"), Err(IdError::NameCharacters));
        for invisible in ["\u{200B}", "\u{FEFF}", "\u{2060}", "\u{061C}", "\u{3164}"] {
            assert_eq!(DisplayName::new(&format!("Ada{invisible}")), Err(IdError::NameCharacters));
        }
        assert!(DisplayName::new("José Ñúñez 山田").is_ok());
    }
}
