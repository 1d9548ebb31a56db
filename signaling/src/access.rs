//! Who may use a server. With access tokens configured (`--token-file`), only a holder of one
//! opens a meeting: by making it (`POST /api/meetings` with `Authorization: Bearer TOKEN`) or by
//! being the first to join its room with the token. While a meeting is open, anyone with its link
//! joins without a token, as before: joining by link needs no account. A meeting stays open while
//! anyone is in it and for [`OPEN_AFTER_USE`] after; then it takes a token again.
//!
//! Without tokens every room is open. Tokens are never logged, and are compared by their digests,
//! each against every configured one, so neither a token nor its length shows in the time taken.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use confab_proto::RoomId;
use sha1::{Digest, Sha1};

/// How long a meeting stays open once its last person has left (or since it was made).
pub const OPEN_AFTER_USE: Duration = Duration::from_secs(12 * 3600);
/// Why a joiner without a token is not let in.
pub const NOT_OPEN: &str = "this meeting is not open on this server: it opens when someone with \
     an access token starts it (then its link is enough)";
/// Why a joiner with a token is not let in.
pub const TOKEN_REFUSED: &str = "this server refused your access token";

/// Shortest token accepted in a token file: a guessable token opens the server to anyone.
pub const MIN_TOKEN_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the token file {path}, line {line}: {problem}")]
    Bad { path: String, line: usize, problem: String },
    #[error("the token file {path} holds no token")]
    Empty { path: String },
}

/// The tokens, and the meetings open now.
#[derive(Debug, Default)]
pub struct Access {
    /// Digests of the configured tokens; empty: no token is asked for.
    tokens: Vec<[u8; 20]>,
    /// Each open room, and until when it stays open with nobody in it.
    open: HashMap<RoomId, Instant>,
    /// Expired rooms are swept once `open` grows past this.
    sweep_at: usize,
}

impl Access {
    /// Tokens from a file: one per line; blank lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenFileError::Read { path: shown.clone(), source })?;
        let mut tokens = Vec::new();
        for (line, token) in confab_proto::signaling::token_file_lines(&text) {
            let bad = |problem: String| TokenFileError::Bad { path: shown.clone(), line, problem };
            confab_proto::signaling::check_access_token(token).map_err(bad)?;
            if token.len() < MIN_TOKEN_BYTES {
                return Err(bad(format!("a token must be at least {MIN_TOKEN_BYTES} bytes")));
            }
            tokens.push(digest(token));
        }
        if tokens.is_empty() {
            return Err(TokenFileError::Empty { path: shown });
        }
        Ok(Self { tokens, ..Self::default() })
    }

    /// Whether tokens are asked for at all.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether `token` is one of ours (always, when none are configured).
    pub fn accepts(&self, token: Option<&str>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(token) = token else { return false };
        let offered = digest(token);
        // Every token compared, every byte: no early way out to time.
        self.tokens.iter().fold(false, |found, ours| {
            found | (ours.iter().zip(&offered).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0)
        })
    }

    /// A meeting made with a token (`POST /api/meetings`): open for [`OPEN_AFTER_USE`].
    pub fn made(&mut self, now: Instant, room: RoomId) {
        if self.required() {
            self.keep_open(now, room);
        }
    }

    /// Whether someone may join `room` with `token`; `occupied` says whether anyone is in it.
    /// A join that is let in keeps the meeting open.
    pub fn may_join(
        &mut self,
        now: Instant,
        room: &RoomId,
        token: Option<&str>,
        occupied: bool,
    ) -> bool {
        if !self.required() {
            return true;
        }
        let open = occupied || self.open.get(room).is_some_and(|until| now < *until);
        if open || self.accepts(token) {
            self.keep_open(now, room.clone());
            return true;
        }
        false
    }

    /// Someone left `room`: it stays open for [`OPEN_AFTER_USE`] from now.
    pub fn left(&mut self, now: Instant, room: &RoomId) {
        if self.required() {
            self.keep_open(now, room.clone());
        }
    }

    /// Meetings open, with nobody in them counted too.
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.open.len()
    }

    fn keep_open(&mut self, now: Instant, room: RoomId) {
        self.open.insert(room, now + OPEN_AFTER_USE);
        if self.open.len() > self.sweep_at {
            self.open.retain(|_, until| now < *until);
            // Swept again only once it has doubled: the sweeps cost O(1) per meeting.
            self.sweep_at = (self.open.len() * 2).max(1024);
        }
    }
}

fn digest(token: &str) -> [u8; 20] {
    Sha1::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "a-long-enough-token-0001";

    fn with_token() -> Access {
        Access { tokens: vec![digest(TOKEN)], ..Access::default() }
    }

    fn token_file(text: &str) -> Result<Access, TokenFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        Access::from_file(&path)
    }

    #[test]
    fn without_tokens_every_room_is_open() {
        let mut access = Access::default();
        assert!(!access.required());
        assert!(access.may_join(Instant::now(), &RoomId::random(), None, false));
        assert_eq!(access.open_count(), 0, "nothing is remembered when nothing is asked");
    }

    #[test]
    fn a_room_is_opened_by_a_token_and_then_joined_by_link_alone() {
        let (mut access, now, room) = (with_token(), Instant::now(), RoomId::random());
        assert!(!access.may_join(now, &room, None, false), "an unopened room without a token");
        assert!(!access.may_join(now, &room, Some("a-long-enough-token-0002"), false));
        assert!(access.may_join(now, &room, Some(TOKEN), false));
        assert!(access.may_join(now, &room, None, true), "the link alone, while someone is in");
        access.left(now, &room);
        let later = now + OPEN_AFTER_USE - Duration::from_secs(1);
        assert!(access.may_join(later, &room, None, false), "still open after everyone left");
        access.left(later, &room);
        let much_later = later + OPEN_AFTER_USE;
        assert!(!access.may_join(much_later, &room, None, false), "closed after a long quiet");
    }

    #[test]
    fn a_meeting_made_with_a_token_is_open_to_its_link() {
        let (mut access, now, room) = (with_token(), Instant::now(), RoomId::random());
        access.made(now, room.clone());
        assert!(access.may_join(now + Duration::from_secs(60), &room, None, false));
        assert!(!access.may_join(now, &RoomId::random(), None, false), "another room is not");
    }

    #[test]
    fn forgotten_meetings_are_swept() {
        let (mut access, now) = (with_token(), Instant::now());
        for _ in 0..1500 {
            access.made(now, RoomId::random());
        }
        let later = now + OPEN_AFTER_USE;
        for _ in 0..1500 {
            access.made(later, RoomId::random());
        }
        assert!(access.open_count() <= 2048, "{} meetings remembered", access.open_count());
    }

    #[test]
    fn a_token_file_is_read_and_checked() {
        let access =
            token_file("# ours\n\n  a-long-enough-token-0001  \nanother-long-token-0002\n")
                .unwrap();
        assert!(access.accepts(Some(TOKEN)));
        assert!(access.accepts(Some("another-long-token-0002")));
        assert!(!access.accepts(Some("# ours")));
        assert!(!access.accepts(None));
        let problem = |text: &str| token_file(text).unwrap_err().to_string();
        assert!(problem("short\n").contains("line 1: a token must be at least 16 bytes"));
        assert!(problem("# only a comment\n").contains("holds no token"));
        assert!(problem("a token with spaces in\n").contains("printable ASCII"));
        let missing = Access::from_file(Path::new("/nonexistent/tokens")).unwrap_err();
        assert!(missing.to_string().contains("cannot read the token file"), "{missing}");
    }
}
