//! Positions in the notes. Editors (CodeMirror, Automerge's JavaScript library) count UTF-16 code
//! units; Rust strings and confab-core's document count characters (Unicode scalar values). A
//! position crosses that border once, through these functions.
//!
//! ```
//! use confab_proto::text::{char_to_utf16, utf16_to_char};
//!
//! // "😀" is one character but two UTF-16 units: inserting after it is char position 1.
//! assert_eq!(utf16_to_char("😀", 2), Ok(1));
//! assert_eq!(char_to_utf16("😀", 1), 2);
//! assert!(utf16_to_char("😀", 1).is_err()); // between the halves of the surrogate pair
//! ```

/// Why a UTF-16 position does not name a place in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("position {pos} is past the end of the text ({len} UTF-16 units)")]
    PastEnd { pos: usize, len: usize },
    #[error("position {pos} falls inside a character (between the two halves of a surrogate pair)")]
    InsideCharacter { pos: usize },
}

/// The length of `text` in UTF-16 code units, as a browser's `string.length` counts it.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The character position at UTF-16 position `utf16_pos` of `text`.
pub fn utf16_to_char(text: &str, utf16_pos: usize) -> Result<usize, PositionError> {
    let mut units = 0;
    for (chars, c) in text.chars().enumerate() {
        if units == utf16_pos {
            return Ok(chars);
        }
        units += c.len_utf16();
        if units > utf16_pos {
            return Err(PositionError::InsideCharacter { pos: utf16_pos });
        }
    }
    if units == utf16_pos {
        Ok(text.chars().count())
    } else {
        Err(PositionError::PastEnd { pos: utf16_pos, len: units })
    }
}

/// The UTF-16 position of character position `char_pos` of `text`; past the end, the end.
pub fn char_to_utf16(text: &str, char_pos: usize) -> usize {
    text.chars().take(char_pos).map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_cross_between_units_and_characters() {
        let text = "a😀b";
        assert_eq!(utf16_len(text), 4);
        let pairs = [(0, 0), (1, 1), (3, 2), (4, 3)];
        for (utf16, chars) in pairs {
            assert_eq!(utf16_to_char(text, utf16), Ok(chars));
            assert_eq!(char_to_utf16(text, chars), utf16);
        }
        assert_eq!(utf16_to_char(text, 2), Err(PositionError::InsideCharacter { pos: 2 }));
        assert_eq!(utf16_to_char(text, 5), Err(PositionError::PastEnd { pos: 5, len: 4 }));
        assert_eq!(char_to_utf16(text, 99), 4);
        assert_eq!(utf16_to_char("", 0), Ok(0));
    }
}
