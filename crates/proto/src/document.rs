//! The shared meeting document (docs/protocol.md §4): key names and records. The document itself is
//! an Automerge document held by confab-core and the UI; this module only fixes its shape, so
//! both sides spell every key the same way.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Value of the root `schema` key.
pub const SCHEMA_VERSION: i64 = 1;
/// Root keys.
pub const KEY_SCHEMA: &str = "schema";
pub const KEY_TITLE: &str = "title";
pub const KEY_NOTES: &str = "notes";
pub const KEY_CHAT: &str = "chat";
pub use crate::limits::MAX_CHAT_CHARS;
/// Longest `author_id`, in bytes.
pub const MAX_AUTHOR_ID_BYTES: usize = 64;

/// One chat message, a map in the `chat` list. Messages are never edited in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChatMessage {
    /// UUID v4, lower-case hex with dashes.
    pub id: String,
    /// Stable per-install id of the author (not the per-room peer id).
    pub author_id: String,
    /// Display name at the time of writing.
    pub author: String,
    /// Milliseconds since the Unix epoch, by the sender's clock.
    pub at: i64,
    pub text: String,
}

/// Why a chat message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("a chat message must not be empty")]
    Empty,
    #[error("a chat message is at most {MAX_CHAT_CHARS} characters")]
    TooLong,
    #[error("chat message id must be a UUID v4")]
    BadId,
    #[error("author id must be 1 to {MAX_AUTHOR_ID_BYTES} bytes")]
    BadAuthorId,
}

impl ChatMessage {
    pub fn validate(&self) -> Result<(), ChatError> {
        if self.text.trim().is_empty() {
            return Err(ChatError::Empty);
        }
        if self.text.chars().count() > MAX_CHAT_CHARS {
            return Err(ChatError::TooLong);
        }
        if !is_uuid_v4(&self.id) {
            return Err(ChatError::BadId);
        }
        if self.author_id.is_empty() || self.author_id.len() > MAX_AUTHOR_ID_BYTES {
            return Err(ChatError::BadAuthorId);
        }
        Ok(())
    }
}

/// `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lower-case.
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> ChatMessage {
        ChatMessage {
            id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
            author_id: "install-1".into(),
            author: "Ada".into(),
            at: 1_700_000_000_000,
            text: text.into(),
        }
    }

    #[test]
    fn chat_messages_are_checked() {
        assert_eq!(msg("hi").validate(), Ok(()));
        assert_eq!(msg(&"é".repeat(4096)).validate(), Ok(()));
        assert_eq!(msg(&"é".repeat(4097)).validate(), Err(ChatError::TooLong));
        assert_eq!(msg("  ").validate(), Err(ChatError::Empty));
        let mut bad = msg("hi");
        bad.id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into();
        assert_eq!(bad.validate(), Err(ChatError::BadId));
    }
}
