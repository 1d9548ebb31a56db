//! The shared document as the mesh handles it: frames from peers, what each peer still lacks,
//! storing changes before they count, and reporting them to the front end in UTF-16 units.

use confab_proto::PeerId;
use confab_proto::limits::{SYNC_MESSAGE_BURST, SYNC_MESSAGES_PER_SECOND};

use super::{Done, LinkCommand, Mesh, Output};
use crate::api::{self, EngineError, EngineEvent};
use crate::document::{MeetingDoc, NotesPatch};

/// How many sync messages we may send one peer: `SYNC_MESSAGES_PER_SECOND` above a burst of
/// `SYNC_MESSAGE_BURST`, below what the peer takes before it calls us a flooder. A flood of a
/// third peer's changes, passed on, becomes fewer, larger messages; typing never waits.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    tokens: f64,
    at_ms: i64,
}

impl Pace {
    pub(super) fn new(now_ms: i64) -> Self {
        Self { tokens: f64::from(SYNC_MESSAGE_BURST), at_ms: now_ms }
    }

    /// `Ok` when a message may go now, else the time (Unix ms) when one may.
    fn ready(&mut self, now_ms: i64) -> Result<(), i64> {
        let rate = f64::from(SYNC_MESSAGES_PER_SECOND) / 1000.0;
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        self.at_ms = self.at_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(SYNC_MESSAGE_BURST));
        if self.tokens >= 1.0 {
            return Ok(());
        }
        Err(self.at_ms + ((1.0 - self.tokens) / rate).ceil() as i64)
    }

    fn sent(&mut self) {
        self.tokens -= 1.0;
    }
}

impl Mesh {
    pub(super) fn on_sync(&mut self, id: PeerId, frame: &[u8]) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        match peer.sync.receive(&mut self.doc, frame) {
            Ok(true) => {
                self.persist();
                self.report_changes();
                self.flush(None);
            }
            Ok(false) => self.flush(Some(&id)),
            Err(e) => self.peer_gone(&id, Some(format!("the peer sent a bad sync frame: {e}"))),
        }
    }

    /// Sends each ready peer (or just `only`) whatever it lacks.
    /// Paced (see [`Pace`]): past a burst, what changes while a peer's next message waits goes
    /// in that one message, not one message per change.
    pub(super) fn flush(&mut self, only: Option<&PeerId>) {
        let now = self.now_ms;
        let mut wake: Option<i64> = None;
        for (id, peer) in self.peers.iter_mut() {
            if !peer.ready || only.is_some_and(|o| o != id) {
                continue;
            }
            loop {
                if let Err(due) = peer.pace.ready(now) {
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                    break;
                }
                let Some(frame) = peer.sync.poll(&mut self.doc) else { break };
                peer.pace.sent();
                let command = LinkCommand::SendSync(frame);
                self.out.push(Output::Link { link: peer.link, command });
            }
        }
        if let Some(at) = wake
            && self.flush_at.is_none_or(|t| at < t)
        {
            self.flush_at = Some(at);
            self.out.push(Output::FlushAt(at));
        }
    }

    /// Asks the driver to store what changed since the last time.
    pub(super) fn persist(&mut self) {
        let changes = self.doc.take_unsaved();
        if !changes.is_empty() {
            self.out.push(Output::Persist(changes));
        }
    }

    /// Reports chat messages not reported before, and the title and notes if they changed.
    pub(super) fn report_changes(&mut self) {
        let changes = self.doc.changes_since_last_look();
        for msg in changes.chat {
            if self.chat_seen.insert(msg.id.clone()) {
                self.emit(EngineEvent::Chat(msg));
            }
        }
        if changes.title_changed {
            let title = self.doc.title();
            if title != self.title_seen {
                self.title_seen.clone_from(&title);
                self.emit(EngineEvent::Title { text: title });
            }
        }
        if !changes.notes.is_empty() {
            let notes = self.doc.notes();
            if notes != self.notes_seen {
                let patches = utf16_patches(&self.notes_seen, changes.notes);
                self.notes_seen.clone_from(&notes);
                self.emit(EngineEvent::Notes { text: notes, patches });
                self.report_cursors();
            }
        }
    }

    /// A local edit: sent to the peers, then stored, then reported. A refused edit changes
    /// nothing.
    ///
    /// Sent before its disk sync, so a slow sync never holds typing up on the others' screens.
    /// That is safe because every engine edits as a fresh actor: a change sent and then lost
    /// here to a crash comes back from the peers, and is never reissued differently under the
    /// same number. Reported only once stored, so a front end's "saved" is true.
    pub(super) fn edit(
        &mut self,
        edit: impl FnOnce(&mut MeetingDoc) -> Result<(), crate::DocError>,
    ) -> Result<Done, EngineError> {
        edit(&mut self.doc).map_err(|e| EngineError::Refused(e.to_string()))?;
        self.flush(None);
        self.persist();
        self.report_changes();
        Ok(Done::Applied)
    }
}

/// Patches in characters, from `old`, as the same patches in UTF-16 units.
fn utf16_patches(old: &str, patches: Vec<NotesPatch>) -> Vec<api::NotesPatch> {
    let mut text: Vec<char> = old.chars().collect();
    let units = |chars: &[char]| chars.iter().map(|c| c.len_utf16()).sum::<usize>();
    patches
        .into_iter()
        .map(|patch| match patch {
            NotesPatch::Insert { pos, text: inserted } => {
                let pos = pos.min(text.len());
                let at = units(&text[..pos]);
                text.splice(pos..pos, inserted.chars());
                api::NotesPatch::Insert { pos: at, text: inserted }
            }
            NotesPatch::Delete { pos, len } => {
                let pos = pos.min(text.len());
                let end = (pos + len).min(text.len());
                let at = units(&text[..pos]);
                let len = units(&text[pos..end]);
                text.drain(pos..end);
                api::NotesPatch::Delete { pos: at, len }
            }
        })
        .collect()
}
