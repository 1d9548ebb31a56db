//! Where each editor's selection is in the notes. Ours goes to every peer as Automerge cursors,
//! which stay on their character while others type; the peers' are reported to the front end as
//! positions in the notes it last heard of, again whenever the notes change under them.

use confab_proto::text::{char_to_utf16, utf16_to_char};
use confab_proto::{CtlMessage, PeerId};

use super::{Done, LinkCommand, Mesh, refused};
use crate::api::{EngineError, EngineEvent, NotesSelection, RemoteCursor};

impl Mesh {
    /// Our selection moved (UTF-16 positions in the notes last reported), or left the notes.
    pub(super) fn set_cursor(
        &mut self,
        selection: Option<NotesSelection>,
    ) -> Result<Done, EngineError> {
        self.cursor = match selection {
            None => None,
            Some(NotesSelection { anchor, head }) => {
                let at = |utf16| {
                    utf16_to_char(&self.notes_seen, utf16)
                        .map(|pos| self.doc.notes_cursor(pos))
                        .map_err(|e| refused(&e.to_string()))
                };
                Some((at(anchor)?, at(head)?))
            }
        };
        let message = self.cursor_message();
        let ready: Vec<_> = self.peers.values().filter(|p| p.ready).map(|p| p.link).collect();
        for link in ready {
            self.tell(link, LinkCommand::SendCtl(message.clone()));
        }
        Ok(Done::Applied)
    }

    /// Our selection as the `cursor` message says it (both absent: not in the notes).
    pub(super) fn cursor_message(&self) -> CtlMessage {
        let (anchor, head) = self.cursor.clone().unzip();
        CtlMessage::Cursor { anchor, head }
    }

    pub(super) fn on_cursor(&mut self, id: &PeerId, anchor: Option<String>, head: Option<String>) {
        let Some(peer) = self.peers.get_mut(id) else { return };
        peer.cursor = anchor.zip(head);
        self.report_cursors();
    }

    /// Tells the front end where the others' selections are, if that changed since it was last
    /// told. A cursor on text not received yet waits for it; one that makes no sense is left out.
    pub(super) fn report_cursors(&mut self) {
        let resolve = |cursor: &str| {
            let pos = self.doc.notes_cursor_position(cursor)?;
            Some(char_to_utf16(&self.notes_seen, pos))
        };
        let cursors: Vec<RemoteCursor> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.ready)
            .filter_map(|(id, peer)| {
                let (anchor, head) = peer.cursor.as_ref()?;
                let (anchor, head) = (resolve(anchor)?, resolve(head)?);
                Some(RemoteCursor { peer: id.clone(), anchor, head })
            })
            .collect();
        if cursors != self.cursors_reported {
            self.cursors_reported.clone_from(&cursors);
            self.emit(EngineEvent::Cursors { cursors });
        }
    }
}
