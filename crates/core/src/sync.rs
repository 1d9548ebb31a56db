//! The `sync` data channel (docs/protocol.md §3) towards one peer, as a pure state machine: frames
//! in, frames out, no sockets. The mesh feeds it what arrives and sends what it returns; tests feed
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

use std::collections::VecDeque;

use automerge::ChangeHash;
use automerge::sync::{self, SyncDoc};
use confab_proto::datachannel::{
    FrameError, SnapshotAssembly, SnapshotError, SyncFrame, snapshot_frames,
};
use confab_proto::limits::{MAX_SNAPSHOT_BYTES, MAX_SYNC_FRAME_BYTES};

use crate::document::{DocError, MeetingDoc};

/// Why a frame from a peer is refused; each one closes that peer's connection.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("bad sync frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad Automerge sync message: {0}")]
    Message(String),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the peer's changes cannot be applied: {0}")]
    Document(#[from] DocError),
}

/// Whether we hold our sync messages back until the peer's snapshot has arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    #[default]
    No,
    /// We asked for a snapshot; the peer's first frame tells whether one is coming.
    FirstFrame,
    SnapshotEnd,
}

/// What we know about syncing with one peer.
#[derive(Debug)]
pub struct PeerSync {
    state: sync::State,
    /// A snapshot being received, chunk by chunk.
    incoming: SnapshotAssembly,
    /// Frames of a snapshot that replaces a sync message too large for one frame.
    outgoing: VecDeque<Vec<u8>>,
    waiting: Waiting,
    /// Our heads when we last made a sync message, until the peer next sends a frame. Without
    /// anything new on either side there is nothing new to say, and automerge, asked again,
    /// can repeat itself without end (a reset for a peer whose `have` names changes we lack).
    said_at: Option<Vec<ChangeHash>>,
}

impl Default for PeerSync {
    fn default() -> Self {
        Self {
            state: sync::State::new(),
            incoming: SnapshotAssembly::new(MAX_SNAPSHOT_BYTES),
            outgoing: VecDeque::new(),
            waiting: Waiting::No,
            said_at: None,
        }
    }
}

impl PeerSync {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sync towards a peer we asked for a snapshot. Until the snapshot has arrived our own sync
    /// messages are held back: sent from an empty document, they would ask the peer for its
    /// whole history change by change, which is what the snapshot is there to avoid. (A peer
    /// that sends a sync message first is not sending a snapshot, and sync starts at once.)
    pub fn awaiting_snapshot() -> Self {
        Self { waiting: Waiting::FirstFrame, ..Self::default() }
    }

    /// Starts over, as on a new connection: what the peer had may have changed or been lost.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The frames of a snapshot of `doc`, for a peer whose `hello` asked for one. From here on
    /// the peer counts as holding what the snapshot holds, so sync starts from there rather than
    /// from nothing.
    pub fn send_snapshot(&mut self, doc: &mut MeetingDoc) -> Vec<Vec<u8>> {
        self.state.shared_heads = doc.heads();
        snapshot_frames(&doc.save())
    }

    /// The next frame to send this peer, if there is anything it lacks. Call after connecting,
    /// after every local edit and after every received frame, until it answers `None`.
    pub fn poll(&mut self, doc: &mut MeetingDoc) -> Option<Vec<u8>> {
        if let Some(frame) = self.outgoing.pop_front() {
            return Some(frame);
        }
        if self.waiting != Waiting::No {
            return None;
        }
        let heads = doc.heads();
        if self.said_at.as_ref() == Some(&heads) {
            return None;
        }
        let msg = doc.automerge().sync().generate_sync_message(&mut self.state)?;
        self.said_at = Some(heads);
        let frame = SyncFrame::Sync(&msg.encode()).encode();
        if frame.len() <= MAX_SYNC_FRAME_BYTES {
            return Some(frame);
        }
        // Too many changes for one frame (a long offline stretch, say): the whole document goes
        // as a snapshot instead. The peer merges it, and its next message shows what it holds.
        let frames = self.send_snapshot(doc);
        self.outgoing.extend(frames);
        self.outgoing.pop_front()
    }

    /// Handles one frame from this peer; `Ok(true)` when the document changed.
    pub fn receive(&mut self, doc: &mut MeetingDoc, frame: &[u8]) -> Result<bool, SyncError> {
        let decoded = SyncFrame::decode(frame)?;
        self.said_at = None;
        self.waiting = match (self.waiting, &decoded) {
            (Waiting::FirstFrame, SyncFrame::SnapshotChunk(_)) => Waiting::SnapshotEnd,
            (Waiting::SnapshotEnd, SyncFrame::SnapshotChunk(_)) => Waiting::SnapshotEnd,
            _ => Waiting::No,
        };
        match decoded {
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
                self.incoming.push(chunk)?;
                Ok(false)
            }
            SyncFrame::SnapshotEnd => {
                let bytes = self.incoming.finish()?;
                let before = doc.heads();
                // The peer holds what it sent: our sync starts from there.
                self.state.shared_heads = doc.merge_bytes(&bytes)?;
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
        let frames = PeerSync::new().send_snapshot(&mut old);
        let mut from_old = PeerSync::new();
        let mut changed = false;
        for f in &frames {
            changed |= from_old.receive(&mut newcomer, f).unwrap();
        }
        assert!(changed);
        assert!(newcomer.notes().starts_with("mine ") || newcomer.notes().ends_with("mine "));
        assert_eq!(newcomer.notes_len(), 2005);
    }

    /// Syncs two replicas until neither has anything to say; returns every frame sent.
    fn sync_pair(
        a: &mut MeetingDoc,
        a_sync: &mut PeerSync,
        b: &mut MeetingDoc,
        b_sync: &mut PeerSync,
    ) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        loop {
            let mut quiet = true;
            while let Some(frame) = a_sync.poll(a) {
                b_sync.receive(b, &frame).unwrap();
                sent.push(frame);
                quiet = false;
            }
            while let Some(frame) = b_sync.poll(b) {
                a_sync.receive(a, &frame).unwrap();
                sent.push(frame);
                quiet = false;
            }
            if quiet {
                return sent;
            }
        }
    }

    /// A document with a history far too long for one sync frame.
    fn long_history() -> MeetingDoc {
        let mut old = doc(1);
        // Text that does not compress, as sync messages are compressed.
        let mut x = 0x2545_f491u32;
        for _ in 0..5_000 {
            let line: String = (0..31)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    char::from(b'a' + (x % 26) as u8)
                })
                .collect();
            old.splice_notes(0, 0, &line).unwrap();
        }
        old
    }

    #[test]
    fn a_history_too_large_for_one_frame_goes_as_a_snapshot() {
        let mut old = long_history();
        let mut newcomer = doc(2);
        newcomer.splice_notes(0, 0, "offline ").unwrap();
        let sent = sync_pair(&mut old, &mut PeerSync::new(), &mut newcomer, &mut PeerSync::new());
        assert!(sent.iter().all(|f| f.len() <= MAX_SYNC_FRAME_BYTES), "every frame fits");
        assert!(sent.iter().any(|f| f[0] == 1), "the history went as a snapshot");
        assert_eq!(old.notes(), newcomer.notes());
        assert_eq!(old.heads(), newcomer.heads());
        assert_eq!(old.notes_len(), 5_000 * 31 + 8);
    }

    #[test]
    fn a_newcomer_that_asked_for_a_snapshot_waits_for_it() {
        let mut old = long_history();
        let mut newcomer = doc(2);
        let (mut old_sync, mut new_sync) = (PeerSync::new(), PeerSync::awaiting_snapshot());
        assert_eq!(new_sync.poll(&mut newcomer), None, "nothing before the snapshot");
        for frame in old_sync.send_snapshot(&mut old) {
            new_sync.receive(&mut newcomer, &frame).unwrap();
        }
        let sent = sync_pair(&mut old, &mut old_sync, &mut newcomer, &mut new_sync);
        assert!(sent.iter().all(|f| f[0] == 0), "after the snapshot, sync messages only");
        assert_eq!(old.heads(), newcomer.heads());
        assert_eq!(old.notes(), newcomer.notes());
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut d = doc(1);
        let mut p = PeerSync::new();
        assert!(matches!(p.receive(&mut d, &[]), Err(SyncError::Frame(_))));
        assert!(matches!(p.receive(&mut d, &[9, 1]), Err(SyncError::Frame(_))));
        assert!(matches!(p.receive(&mut d, &[0, 1, 2, 3]), Err(SyncError::Message(_))));
        assert!(matches!(
            p.receive(&mut d, &[2]),
            Err(SyncError::Snapshot(SnapshotError::NotStarted))
        ));
        assert!(p.receive(&mut d, &[1, 1, 2, 3]).is_ok());
        assert!(matches!(p.receive(&mut d, &[2]), Err(SyncError::Document(_))));
        assert_eq!(d.notes(), "", "nothing bad reached the document");
    }

    /// A peer may believe we share changes we never got (it sent us a snapshot on a connection
    /// that went down, say). Automerge then answers every call with a reset; asked until it
    /// says nothing, it never would, and the engine hung. Now each frame is answered once.
    #[test]
    fn a_peer_that_believes_we_have_more_gets_one_answer_not_endless_ones() {
        let (mut ours, mut theirs) = (doc(1), doc(2));
        theirs.splice_notes(0, 0, "only theirs").unwrap();
        let mut their_sync = PeerSync::new();
        // The snapshot never arrives, but from here on they count on us holding it.
        let _lost = their_sync.send_snapshot(&mut theirs);
        let frame = their_sync.poll(&mut theirs).expect("they have something to say");
        let mut our_sync = PeerSync::new();
        our_sync.receive(&mut ours, &frame).unwrap();
        let answers: Vec<_> = std::iter::from_fn(|| our_sync.poll(&mut ours)).take(10).collect();
        assert_eq!(answers.len(), 1, "one answer to one frame");
        // And the two still converge from there.
        their_sync.receive(&mut theirs, &answers[0]).unwrap();
        sync_pair(&mut ours, &mut our_sync, &mut theirs, &mut their_sync);
        assert_eq!(ours.notes(), "only theirs");
    }
}
