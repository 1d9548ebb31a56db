//! What front ends receive from the engine: the events of a meeting and the states they carry.
//! The CLI, and later the desktop shell, read these; nothing here does I/O.

use std::path::PathBuf;
use std::time::Duration;

use confab_proto::PeerId;
use confab_proto::document::ChatMessage;

use crate::document::NotesPatch;
use crate::peer::PeerStats;

/// What a participant sends, as announced in `ctl` `media`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaState {
    pub mic: bool,
    pub cam: bool,
    pub screen: bool,
    pub screen_track: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sending,
    Receiving,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Offered (to us, or by us to this peer).
    Offered,
    /// Bytes moved so far.
    Progress(u64),
    /// Sent, or received, verified and saved at `path`.
    Done {
        path: Option<PathBuf>,
    },
    Failed(String),
    Cancelled(String),
}

/// One file transfer with one peer moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    pub id: String,
    pub peer: PeerId,
    pub name: String,
    pub size: u64,
    pub direction: Direction,
    pub state: FileState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// Joined (again, after a reconnect) with this id.
    Joined {
        you: PeerId,
    },
    /// Signaling dropped; peers already connected stay connected.
    Reconnecting {
        retry_in: Duration,
        reason: String,
    },
    /// Signaling says someone is in the meeting (connecting follows).
    PeerJoined {
        id: PeerId,
        name: String,
    },
    /// The peer proved it holds the key; notes and chat flow.
    PeerConnected {
        id: PeerId,
        name: String,
    },
    PeerLeft {
        id: PeerId,
    },
    /// A connected peer rejoined signaling: the same connection and person, now under `id`.
    PeerRenamed {
        old: PeerId,
        id: PeerId,
    },
    /// A connection to a peer could not be made or was lost.
    PeerFailed {
        id: PeerId,
        reason: String,
    },
    /// A peer's hello did not verify under the meeting key: the connection may be intercepted.
    Intercepted {
        id: PeerId,
    },
    /// A chat message, reported once, whoever wrote it.
    Chat(ChatMessage),
    /// The notes changed: the whole text, and the patches from the text last reported.
    Notes {
        text: String,
        patches: Vec<NotesPatch>,
    },
    Title(String),
    Media {
        id: PeerId,
        media: MediaState,
    },
    Stats {
        id: PeerId,
        stats: PeerStats,
    },
    File(FileEvent),
    /// Something went wrong that the user should know of; the meeting goes on.
    Error(String),
    /// Signaling is gone for good; the engine has stopped.
    Ended {
        reason: String,
    },
}
