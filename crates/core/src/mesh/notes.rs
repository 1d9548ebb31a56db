//! The shared document as the mesh handles it: frames from peers, what each peer still lacks,
//! storing changes before they count, and reporting them to the front end in UTF-16 units.

use confab_proto::PeerId;
use confab_proto::limits::SYNC_PACE;

use super::{Done, LinkCommand, Mesh, Output};
use crate::api::{self, EngineError, EngineEvent};
use crate::document::{MeetingDoc, NotesPatch};

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
    /// At most one message per peer per `SYNC_PACE`: a burst of changes (a paste, a peer
    /// passing on a third's) goes out as one message per pace, not one per change.
    pub(super) fn flush(&mut self, only: Option<&PeerId>) {
        let now = self.now_ms;
        let pace = i64::try_from(SYNC_PACE.as_millis()).unwrap_or(i64::MAX);
        let mut wake: Option<i64> = None;
        for (id, peer) in self.peers.iter_mut() {
            if !peer.ready || only.is_some_and(|o| o != id) {
                continue;
            }
            let due = peer.last_sync_ms.saturating_add(pace);
            if now < due {
                wake = Some(wake.map_or(due, |w| w.min(due)));
                continue;
            }
            while let Some(frame) = peer.sync.poll(&mut self.doc) {
                peer.last_sync_ms = now;
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

    /// A local edit: stored first, then reported and sent to the peers. A refused edit
    /// changes nothing.
    pub(super) fn edit(
        &mut self,
        edit: impl FnOnce(&mut MeetingDoc) -> Result<(), crate::DocError>,
    ) -> Result<Done, EngineError> {
        edit(&mut self.doc).map_err(|e| EngineError::Refused(e.to_string()))?;
        self.persist();
        self.report_changes();
        self.flush(None);
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
