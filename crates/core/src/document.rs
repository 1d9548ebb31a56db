//! The meeting document (docs/protocol.md §4): title, notes and chat in one Automerge document that
//! every participant holds whole.
//!
//! Every replica starts from the same *genesis* change: a fixed actor and timestamp make its bytes,
//! and so its hash and its object ids, identical everywhere. Two people who open a meeting apart
//! therefore edit the same `notes` object; without that, each would create a `notes` of their own
//! and a merge would keep only one of them.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, ChangeHash, Cursor, CursorPosition, ObjId, ObjType, PatchAction, ReadDoc,
    ScalarValue, Value,
};
use confab_proto::document::{
    ChatError, ChatMessage, KEY_CHAT, KEY_NOTES, KEY_SCHEMA, KEY_TITLE, SCHEMA_VERSION,
};
use confab_proto::limits::MAX_CURSOR_BYTES;

/// Why a document operation was refused. None of these changes the document.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("position {pos} (deleting {delete}) is outside the notes' {len} characters")]
    OutOfRange { pos: usize, delete: usize, len: usize },
    #[error("chat message refused: {0}")]
    Chat(#[from] ChatError),
    #[error("not a meeting document: {0}")]
    Schema(&'static str),
    #[error("document data is corrupt: {0}")]
    Corrupt(Box<automerge::AutomergeError>),
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        // Boxed: Automerge's error is large, and every Result of this crate carries it.
        Self::Corrupt(Box::new(e))
    }
}

/// The actor of the genesis change. No participant ever edits as it.
const GENESIS_ACTOR: [u8; 16] = *b"confab-genesis-1";

fn genesis() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(GENESIS_ACTOR));
    // Infallible on a fresh document: every key is new and every object is made here.
    let _ = doc.put(automerge::ROOT, KEY_SCHEMA, SCHEMA_VERSION);
    let _ = doc.put_object(automerge::ROOT, KEY_TITLE, ObjType::Text);
    let _ = doc.put_object(automerge::ROOT, KEY_NOTES, ObjType::Text);
    let _ = doc.put_object(automerge::ROOT, KEY_CHAT, ObjType::List);
    doc.commit_with(CommitOptions::default().with_time(0));
    doc
}

/// One step of a change to the notes, in characters; applied in order, the steps turn the old
/// text into the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotesPatch {
    Insert { pos: usize, text: String },
    Delete { pos: usize, len: usize },
}

/// What changed in a document since it was last looked at ([`MeetingDoc::changes_since_last_look`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DocChanges {
    /// How the notes changed, in order.
    pub notes: Vec<NotesPatch>,
    pub title_changed: bool,
    /// Chat messages added or completed, in list order. Entries that are not well-formed
    /// messages are left out.
    pub chat: Vec<ChatMessage>,
}

/// One replica of a meeting's document.
#[derive(Debug, Clone)]
pub struct MeetingDoc {
    doc: AutoCommit,
    title: ObjId,
    notes: ObjId,
    chat: ObjId,
    /// The document was swapped for an adopted snapshot: what is unsaved is all of it.
    unsaved_whole: bool,
    /// The time written into our changes (Unix seconds); the system clock when `None`.
    clock: Option<i64>,
    /// Our heads at the last [`MeetingDoc::changes_since_last_look`]; empty before the first.
    looked_at: Vec<ChangeHash>,
}

impl MeetingDoc {
    /// A fresh document (just the genesis), edited as `actor`.
    pub fn new(actor: ActorId) -> Self {
        let mut doc = genesis();
        doc.set_actor(actor);
        // The genesis is a meeting document by construction.
        Self::from_automerge(doc).unwrap_or_else(|_| unreachable!("genesis has the schema"))
    }

    /// A document from saved bytes (a snapshot, optionally followed by incremental changes).
    /// Strict: bytes that are not a whole Automerge document are an error.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, DocError> {
        let mut doc = AutoCommit::load(bytes)?;
        doc.set_actor(actor);
        Self::from_automerge(doc)
    }

    fn from_automerge(doc: AutoCommit) -> Result<Self, DocError> {
        let object = |key: &str, kind: ObjType| match doc.get(automerge::ROOT, key) {
            Ok(Some((Value::Object(k), id))) if k == kind => Ok(id),
            _ => Err(DocError::Schema("a root object is missing or of the wrong kind")),
        };
        let (title, notes, chat) = (
            object(KEY_TITLE, ObjType::Text)?,
            object(KEY_NOTES, ObjType::Text)?,
            object(KEY_CHAT, ObjType::List)?,
        );
        match doc.get(automerge::ROOT, KEY_SCHEMA) {
            Ok(Some((Value::Scalar(s), _))) if s.as_i64() == Some(SCHEMA_VERSION) => {}
            _ => return Err(DocError::Schema("unknown schema version")),
        }
        Ok(Self {
            doc,
            title,
            notes,
            chat,
            unsaved_whole: false,
            clock: None,
            looked_at: Vec::new(),
        })
    }

    pub fn notes(&self) -> String {
        self.doc.text(&self.notes).unwrap_or_default()
    }

    pub fn title(&self) -> String {
        self.doc.text(&self.title).unwrap_or_default()
    }

    /// Notes length in characters (Unicode code points, Automerge's unit in Rust).
    pub fn notes_len(&self) -> usize {
        self.doc.length(&self.notes)
    }

    /// Deletes `delete` characters at `pos` and inserts `insert` there, as one change.
    pub fn splice_notes(
        &mut self,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<(), DocError> {
        let len = self.notes_len();
        if pos > len || delete > len - pos {
            return Err(DocError::OutOfRange { pos, delete, len });
        }
        let del = isize::try_from(delete).map_err(|_| DocError::OutOfRange { pos, delete, len })?;
        self.doc.splice_text(&self.notes, pos, del, insert)?;
        self.commit();
        Ok(())
    }

    pub fn set_title(&mut self, title: &str) -> Result<(), DocError> {
        let old = self.doc.length(&self.title);
        let del = isize::try_from(old).unwrap_or(isize::MAX);
        self.doc.splice_text(&self.title, 0, del, title)?;
        self.commit();
        Ok(())
    }

    /// Appends a chat message; it is checked first and never edited afterwards.
    pub fn post_chat(&mut self, msg: &ChatMessage) -> Result<(), DocError> {
        msg.validate()?;
        let at = self.doc.length(&self.chat);
        let map = self.doc.insert_object(&self.chat, at, ObjType::Map)?;
        self.doc.put(&map, "id", msg.id.as_str())?;
        self.doc.put(&map, "author_id", msg.author_id.as_str())?;
        self.doc.put(&map, "author", msg.author.as_str())?;
        self.doc.put(&map, "at", msg.at)?;
        self.doc.put(&map, "text", msg.text.as_str())?;
        self.commit();
        Ok(())
    }

    /// The chat in list order. Entries that are not well-formed messages (a peer may write
    /// anything) are skipped rather than shown half.
    pub fn chat(&self) -> Vec<ChatMessage> {
        let len = self.doc.length(&self.chat);
        (0..len)
            .filter_map(|i| match self.doc.get(&self.chat, i) {
                Ok(Some((Value::Object(ObjType::Map), id))) => self.chat_message(&id),
                _ => None,
            })
            .collect()
    }

    fn chat_message(&self, map: &ObjId) -> Option<ChatMessage> {
        let scalar = |key: &str| match self.doc.get(map, key) {
            Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
            _ => None,
        };
        let string = |key: &str| match scalar(key)? {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        };
        let msg = ChatMessage {
            id: string("id")?,
            author_id: string("author_id")?,
            author: string("author")?,
            at: match scalar("at")? {
                ScalarValue::Int(n) | ScalarValue::Timestamp(n) => n,
                _ => return None,
            },
            text: string("text")?,
        };
        msg.validate().ok().map(|()| msg)
    }

    /// An Automerge cursor (its text form, as the JS library makes it) on character `pos` of the
    /// notes; at or past the end, the end, which stays the end as others type.
    pub fn notes_cursor(&self, pos: usize) -> String {
        let position =
            if pos >= self.notes_len() { CursorPosition::End } else { CursorPosition::Index(pos) };
        self.doc
            .get_cursor(&self.notes, position, None)
            .map_or_else(|_| "e".to_owned(), |c| c.to_string())
    }

    /// Where a cursor from a peer (text form) is in the notes now, in characters; `None` for one
    /// that is malformed, or on a character this replica has not received yet.
    pub fn notes_cursor_position(&self, cursor: &str) -> Option<usize> {
        // Automerge slices the text at byte 1 unchecked: only non-empty ASCII (all its cursors
        // are) may reach it.
        if cursor.is_empty() || !cursor.is_ascii() || cursor.len() > MAX_CURSOR_BYTES {
            return None;
        }
        let cursor = Cursor::try_from(cursor).ok()?;
        self.doc.get_cursor_position(&self.notes, &cursor, None).ok()
    }

    /// Stamps the changes made from now on with this time (Unix seconds) rather than the
    /// system clock's. A change's time is part of its hash: the mesh sets its own notion of now
    /// so that a simulated meeting replays exactly.
    pub fn set_time(&mut self, unix_secs: i64) {
        self.clock = Some(unix_secs);
    }

    fn commit(&mut self) {
        let time = self.clock.unwrap_or_else(now_secs);
        self.doc.commit_with(CommitOptions::default().with_time(time));
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// What changed since the last call; the first call reports the whole document as changes
    /// from nothing.
    ///
    /// Cheap on every keystroke: from the second call on, Automerge logs patches as changes are
    /// applied, so this reads only what changed. (A diff between two arbitrary heads scans every
    /// op of the document, and reading the whole chat costs milliseconds per hundred messages.)
    pub fn changes_since_last_look(&mut self) -> DocChanges {
        let heads = self.doc.get_heads();
        // Indexed (not a scan) whenever `looked_at` is Automerge's diff cursor, which it is from
        // the second call on, unless a snapshot was adopted since.
        let patches = self.doc.diff(&self.looked_at, &heads);
        self.doc.update_diff_cursor();
        self.looked_at = heads;

        let mut changes = DocChanges::default();
        // In the order first touched, each once (a first look may touch thousands).
        let (mut messages, mut touched) = (Vec::new(), std::collections::HashSet::new());
        let mut touch = |map: &ObjId| {
            if touched.insert(map.clone()) {
                messages.push(map.clone());
            }
        };
        for patch in patches {
            if patch.obj == self.title {
                changes.title_changed = true;
            } else if patch.obj == self.notes {
                match patch.action {
                    PatchAction::SpliceText { index, value, .. } => changes
                        .notes
                        .push(NotesPatch::Insert { pos: index, text: value.make_string() }),
                    PatchAction::DeleteSeq { index, length } => {
                        changes.notes.push(NotesPatch::Delete { pos: index, len: length })
                    }
                    _ => {}
                }
            } else if patch.obj == self.chat {
                if let PatchAction::Insert { values, .. } = &patch.action {
                    for (value, id, _) in values.iter() {
                        if matches!(value, Value::Object(ObjType::Map)) {
                            touch(id);
                        }
                    }
                }
            } else if let Some(at) = patch.path.iter().position(|(parent, _)| *parent == self.chat)
            {
                // Inside a message (the path runs from the root): it may have become well-formed.
                touch(patch.path.get(at + 1).map_or(&patch.obj, |(map, _)| map));
            }
        }
        changes.chat = messages.iter().filter_map(|map| self.chat_message(map)).collect();
        changes
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Changes made or received since the last `save`/`take_unsaved`, to append to storage.
    pub fn take_unsaved(&mut self) -> Vec<u8> {
        if std::mem::take(&mut self.unsaved_whole) {
            // A whole saved document also loads incrementally, so storage replays it alike.
            return self.doc.save();
        }
        self.doc.save_incremental()
    }

    /// Merges a saved document from elsewhere (a peer's snapshot): loads it whole, strictly, and
    /// merges it in; never loses what is here. Returns the snapshot's heads.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<Vec<ChangeHash>, DocError> {
        let mut other = AutoCommit::load(bytes)?;
        let their_heads = other.get_heads();
        let ours = self.doc.get_heads();
        if ours.iter().all(|h| other.get_change_by_hash(h).is_some()) {
            // The snapshot already holds everything we have (a newcomer's case): the merge would
            // be the snapshot itself, and adopting it skips replaying its history change by
            // change.
            let actor = self.doc.get_actor().clone();
            let looked_at = std::mem::take(&mut self.looked_at);
            *self = Self::from_automerge(other.with_actor(actor))?;
            self.unsaved_whole = true;
            // The snapshot holds those heads, so the next look diffs from them.
            self.looked_at = looked_at;
        } else {
            self.doc.merge(&mut other)?;
        }
        Ok(their_heads)
    }

    /// The Automerge document, for the sync protocol.
    pub(crate) fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// Applies changes this replica saved with [`MeetingDoc::take_unsaved`] earlier (replaying
    /// its own storage, whose records are checksummed).
    pub fn apply_saved_changes(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    /// Title, notes and chat transcript as Markdown.
    pub fn to_markdown(&self) -> String {
        let title = self.title();
        let title = if title.trim().is_empty() { "Meeting notes" } else { title.trim() };
        let mut out = format!("# {title}\n\n");
        let notes = self.notes();
        if !notes.trim().is_empty() {
            out.push_str(notes.trim_end());
            out.push_str("\n\n");
        }
        let chat = self.chat();
        if !chat.is_empty() {
            out.push_str("## Chat\n\n");
            for m in chat {
                let text = m.text.replace('\n', "\n  ");
                out.push_str(&format!("- **{}** ({}): {text}\n", m.author, utc_timestamp(m.at)));
            }
        }
        out
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD HH:MM UTC` for milliseconds since the Unix epoch.
fn utc_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16])
    }

    /// The web UI builds the same genesis with @automerge/automerge and pins the same hash
    /// (`ui/src/link/document.ts`); if either changes, browsers and native peers would hold two
    /// different `notes` objects.
    #[test]
    fn the_genesis_hash_is_the_one_the_web_ui_pins() {
        let heads = MeetingDoc::new(actor(1)).heads();
        assert_eq!(
            heads.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["b3910fbc6e266ee68c00702e145e187f44f7f5d81be79bad0d2bc3b62c86d01c"]
        );
    }

    /// Applies patches to the old text the way a front end would.
    fn apply(text: &str, patches: &[NotesPatch]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for patch in patches {
            match patch {
                NotesPatch::Insert { pos, text } => {
                    chars.splice(*pos..*pos, text.chars());
                }
                NotesPatch::Delete { pos, len } => {
                    chars.drain(*pos..*pos + *len);
                }
            }
        }
        chars.into_iter().collect()
    }

    #[test]
    fn patches_turn_the_old_notes_into_the_merged_ones() {
        let mut a = MeetingDoc::new(actor(1));
        a.splice_notes(0, 0, "héllo wörld").unwrap();
        let mut b = a.clone();
        b.doc.set_actor(actor(2));
        let first = a.changes_since_last_look();
        assert_eq!(apply("", &first.notes), "héllo wörld", "the first look is from nothing");
        a.splice_notes(5, 0, " dear").unwrap();
        b.splice_notes(0, 5, "HÉLLO").unwrap();
        b.splice_notes(b.notes_len(), 0, "!").unwrap();
        a.merge_bytes(&b.save()).unwrap();
        let changes = a.changes_since_last_look();
        assert_eq!(apply("héllo wörld", &changes.notes), a.notes());
        assert_eq!(a.notes(), "HÉLLO dear wörld!");
        assert_eq!(a.changes_since_last_look(), DocChanges::default(), "nothing new since");
    }

    #[test]
    fn a_look_reports_the_chat_messages_and_title_that_came_since() {
        let mut a = MeetingDoc::new(actor(1));
        a.post_chat(&chat("before", 1)).unwrap();
        let first = a.changes_since_last_look();
        assert_eq!(first.chat, [chat("before", 1)]);
        assert!(!first.title_changed);

        let mut b = a.clone();
        b.doc.set_actor(actor(2));
        b.post_chat(&chat("from b", 2)).unwrap();
        b.set_title("Plans").unwrap();
        a.post_chat(&chat("from a", 3)).unwrap();
        a.merge_bytes(&b.save()).unwrap();
        let changes = a.changes_since_last_look();
        let mut texts: Vec<_> = changes.chat.iter().map(|m| m.text.as_str()).collect();
        texts.sort_unstable();
        assert_eq!(texts, ["from a", "from b"], "only the new ones, each once");
        assert!(changes.title_changed && changes.notes.is_empty());
    }

    /// A peer may write a message in steps; it is reported once it is whole, not before.
    #[test]
    fn a_chat_message_written_in_steps_is_reported_when_whole() {
        let mut a = MeetingDoc::new(actor(1));
        a.changes_since_last_look();
        let msg = chat("late text", 4);
        let map = a.doc.insert_object(&a.chat, 0, ObjType::Map).unwrap();
        for (key, value) in
            [("id", &msg.id), ("author_id", &msg.author_id), ("author", &msg.author)]
        {
            a.doc.put(&map, key, value.as_str()).unwrap();
        }
        a.doc.put(&map, "at", msg.at).unwrap();
        a.commit();
        assert_eq!(a.changes_since_last_look().chat, []);
        a.doc.put(&map, "text", msg.text.as_str()).unwrap();
        a.commit();
        assert_eq!(a.changes_since_last_look().chat, [msg]);
    }

    /// A newcomer adopts a snapshot in place of its own document; the next look still reports
    /// what the snapshot added as patches to what was seen.
    #[test]
    fn a_look_after_adopting_a_snapshot_reports_what_it_brought() {
        let mut old = MeetingDoc::new(actor(1));
        old.splice_notes(0, 0, "agenda").unwrap();
        old.post_chat(&chat("hello", 5)).unwrap();
        let mut newcomer = MeetingDoc::new(actor(2));
        assert_eq!(newcomer.changes_since_last_look().notes, []);
        newcomer.merge_bytes(&old.save()).unwrap();
        let changes = newcomer.changes_since_last_look();
        assert_eq!(apply("", &changes.notes), "agenda");
        assert_eq!(changes.chat, [chat("hello", 5)]);
        newcomer.splice_notes(6, 0, "!").unwrap();
        assert_eq!(
            newcomer.changes_since_last_look().notes,
            [NotesPatch::Insert { pos: 6, text: "!".into() }]
        );
    }

    #[test]
    fn a_cursor_stays_on_its_character_while_others_type() {
        let mut a = MeetingDoc::new(actor(1));
        a.splice_notes(0, 0, "hello world").unwrap();
        let on_w = a.notes_cursor(6);
        let end = a.notes_cursor(11);
        let mut b = a.clone();
        b.doc.set_actor(actor(2));
        b.splice_notes(0, 0, ">> ").unwrap();
        b.splice_notes(b.notes_len(), 0, "!").unwrap();
        assert_eq!(b.notes_cursor_position(&on_w), Some(9));
        assert_eq!(b.notes_cursor_position(&end), Some(15), "the end stays the end");
        for hostile in
            ["", "é@ab", "x", "1@zz", "-", &"9".repeat(400), "99@0123456789abcdef0123456789abcdef"]
        {
            assert_eq!(b.notes_cursor_position(hostile), None, "{hostile:?}");
        }
    }

    fn chat(text: &str, at: i64) -> ChatMessage {
        ChatMessage {
            id: format!("1b4e28ba-2fa1-41d2-883f-0016d3cca4{:02}", at % 100),
            author_id: "install-a".into(),
            author: "Ada".into(),
            at,
            text: text.into(),
        }
    }

    #[test]
    fn documents_made_apart_share_their_objects_and_merge_without_loss() {
        let mut a = MeetingDoc::new(actor(1));
        let mut b = MeetingDoc::new(actor(2));
        a.splice_notes(0, 0, "from a").unwrap();
        b.splice_notes(0, 0, "from b").unwrap();
        a.post_chat(&chat("hi from a", 1)).unwrap();
        b.post_chat(&chat("hi from b", 2)).unwrap();
        let a_bytes = a.save();
        b.merge_bytes(&a_bytes).unwrap();
        let notes = b.notes();
        assert!(notes.contains("from a") && notes.contains("from b"), "{notes}");
        assert_eq!(b.chat().len(), 2);
    }

    #[test]
    fn edits_are_checked_before_they_touch_the_document() {
        let mut d = MeetingDoc::new(actor(1));
        d.splice_notes(0, 0, "héllo").unwrap();
        assert_eq!(d.notes_len(), 5, "lengths count characters");
        assert!(matches!(d.splice_notes(6, 0, "x"), Err(DocError::OutOfRange { .. })));
        assert!(matches!(d.splice_notes(2, 4, ""), Err(DocError::OutOfRange { .. })));
        assert!(matches!(d.splice_notes(usize::MAX, 1, ""), Err(DocError::OutOfRange { .. })));
        d.splice_notes(1, 1, "e").unwrap();
        assert_eq!(d.notes(), "hello");
        assert!(matches!(d.post_chat(&chat("", 1)), Err(DocError::Chat(ChatError::Empty))));
        assert!(d.chat().is_empty());
    }

    #[test]
    fn saved_documents_load_and_foreign_bytes_are_refused() {
        let mut d = MeetingDoc::new(actor(1));
        d.set_title("Weekly sync").unwrap();
        d.splice_notes(0, 0, "- item").unwrap();
        let bytes = d.save();
        let loaded = MeetingDoc::load(&bytes, actor(2)).unwrap();
        assert_eq!((loaded.title(), loaded.notes()), ("Weekly sync".into(), "- item".into()));
        assert!(matches!(MeetingDoc::load(b"not automerge", actor(2)), Err(DocError::Corrupt(_))));
    }

    #[test]
    fn markdown_export_has_title_notes_and_transcript() {
        let mut d = MeetingDoc::new(actor(1));
        d.set_title("Launch review").unwrap();
        d.splice_notes(0, 0, "Decisions:\n- ship it\n").unwrap();
        d.post_chat(&chat("sounds good\nsee you", 1_700_000_000_000)).unwrap();
        assert_eq!(
            d.to_markdown(),
            "# Launch review\n\nDecisions:\n- ship it\n\n## Chat\n\n\
             - **Ada** (2023-11-14 22:13 UTC): sounds good\n  see you\n"
        );
        assert_eq!(MeetingDoc::new(actor(1)).to_markdown(), "# Meeting notes\n\n");
    }

    #[test]
    fn timestamps_convert_to_civil_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc_timestamp(-60_000), "1969-12-31 23:59 UTC");
    }
}
