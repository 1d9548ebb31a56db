//! The `sync` data channel (PROTOCOL.md §3) towards one peer, as a pure state machine: frames in,
//! frames out, no sockets. The mesh feeds it what arrives and sends what it returns; tests feed
//! it a simulated channel that drops, duplicates and reorders.
//!
//! Frames: `0x00` + an Automerge sync message; `0x01` + a chunk of a snapshot (`save()` bytes) and
//! `0x02` to end it, for a newcomer with an empty document (loading a snapshot is far cheaper than
//! syncing a long history change by change). A received snapshot is merged, never swapped in.
//!
//! ```
//! use automerge::ActorId;
//! use confab_core::{MeetingDoc, PeerSync};
//!
//! let mut a = MeetingDoc::new(ActorId::random());
//! let mut b = MeetingDoc::new(ActorId::random());
//! a.splice_notes(0, 0, "agenda").unwrap();
//! let (mut a_to_b, mut b_to_a) = (PeerSync::new(), PeerSync::new());
//! // Each side says what it has until neither has anything left to say.
//! loop {
//!     let mut quiet = true;
//!     while let Some(frame) = a_to_b.poll(&mut a) {
//!         b_to_a.receive(&mut b, &frame).unwrap();
//!         quiet = false;
//!     }
//!     while let Some(frame) = b_to_a.poll(&mut b) {
//!         a_to_b.receive(&mut a, &frame).unwrap();
//!         quiet = false;
//!     }
//!     if quiet { break; }
//! }
//! assert_eq!(b.notes(), "agenda");
//! ```

use automerge::sync::{self, SyncDoc};
use confab_proto::datachannel::{FrameError, SNAPSHOT_CHUNK_BYTES, SyncFrame};

use crate::document::{DocError, MeetingDoc};

/// Largest snapshot accepted from a peer. Meeting notes are kilobytes to a few megabytes; this
/// only keeps a hostile peer from filling memory.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// Why a frame from a peer is refused; each one closes that peer's connection.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("bad sync frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad Automerge sync message: {0}")]
    Message(String),
    #[error("a snapshot from the peer is over {MAX_SNAPSHOT_BYTES} bytes")]
    SnapshotTooLarge,
    #[error("the peer ended a snapshot it never started")]
    SnapshotNotStarted,
    #[error("the peer's changes cannot be applied: {0}")]
    Document(#[from] DocError),
}

/// What we know about syncing with one peer.
#[derive(Debug, Default)]
pub struct PeerSync {
    state: sync::State,
    /// A snapshot being received, chunk by chunk.
    incoming: Option<Vec<u8>>,
}

impl PeerSync {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts over, as on a new connection: what the peer had may have changed or been lost.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The frames of a snapshot of `doc`, for a peer whose `hello` asked for one.
    pub fn snapshot_frames(doc: &mut MeetingDoc) -> Vec<Vec<u8>> {
        let bytes = doc.save();
        let mut frames: Vec<Vec<u8>> = bytes
            .chunks(SNAPSHOT_CHUNK_BYTES)
            .map(|c| SyncFrame::SnapshotChunk(c).encode())
            .collect();
        frames.push(SyncFrame::SnapshotEnd.encode());
        frames
    }

    /// The next frame to send this peer, if there is anything it lacks. Call after connecting,
    /// after every local edit and after every received frame, until it answers `None`.
    pub fn poll(&mut self, doc: &mut MeetingDoc) -> Option<Vec<u8>> {
        let msg = doc.automerge().sync().generate_sync_message(&mut self.state)?;
        Some(SyncFrame::Sync(&msg.encode()).encode())
    }

    /// Handles one frame from this peer; `Ok(true)` when the document changed.
    pub fn receive(&mut self, doc: &mut MeetingDoc, frame: &[u8]) -> Result<bool, SyncError> {
        match SyncFrame::decode(frame)? {
            SyncFrame::Sync(bytes) => {
                let msg =
                    sync::Message::decode(bytes).map_err(|e| SyncError::Message(e.to_string()))?;
                let before = doc.heads();
                doc.automerge()
                    .sync()
                    .receive_sync_message(&mut self.state, msg)
                    .map_err(|e| SyncError::Document(e.into()))?;
                Ok(doc.heads() != before)
            }
            SyncFrame::SnapshotChunk(chunk) => {
                let incoming = self.incoming.get_or_insert_with(Vec::new);
                if incoming.len() + chunk.len() > MAX_SNAPSHOT_BYTES {
                    self.incoming = None;
                    return Err(SyncError::SnapshotTooLarge);
                }
                incoming.extend_from_slice(chunk);
                Ok(false)
            }
            SyncFrame::SnapshotEnd => {
                let bytes = self.incoming.take().ok_or(SyncError::SnapshotNotStarted)?;
                let before = doc.heads();
                doc.merge_bytes(&bytes)?;
                Ok(doc.heads() != before)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ActorId;

    fn doc(n: u8) -> MeetingDoc {
        MeetingDoc::new(ActorId::from([n; 16]))
    }

    #[test]
    fn a_snapshot_is_merged_not_swapped_in() {
        let mut old = doc(1);
        for i in 0..2000 {
            old.splice_notes(i, 0, "x").unwrap();
        }
        let mut newcomer = doc(2);
        newcomer.splice_notes(0, 0, "mine ").unwrap();
        let frames = PeerSync::snapshot_frames(&mut old);
        let mut from_old = PeerSync::new();
        let mut changed = false;
        for f in &frames {
            changed |= from_old.receive(&mut newcomer, f).unwrap();
        }
        assert!(changed);
        assert!(newcomer.notes().starts_with("mine ") || newcomer.notes().ends_with("mine "));
        assert_eq!(newcomer.notes_len(), 2005);
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut d = doc(1);
        let mut p = PeerSync::new();
        assert!(matches!(p.receive(&mut d, &[]), Err(SyncError::Frame(_))));
        assert!(matches!(p.receive(&mut d, &[9, 1]), Err(SyncError::Frame(_))));
        assert!(matches!(p.receive(&mut d, &[0, 1, 2, 3]), Err(SyncError::Message(_))));
        assert!(matches!(p.receive(&mut d, &[2]), Err(SyncError::SnapshotNotStarted)));
        assert!(p.receive(&mut d, &[1, 1, 2, 3]).is_ok());
        assert!(matches!(p.receive(&mut d, &[2]), Err(SyncError::Document(_))));
        assert_eq!(d.notes(), "", "nothing bad reached the document");
    }
}
