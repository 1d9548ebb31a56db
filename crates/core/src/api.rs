//! The one front-end API: the commands front ends send ([`Command`]) and the events they receive
//! ([`EngineEvent`]), as the CLI's `--json` mode reads and prints them and as the desktop shell
//! carries them over IPC. Both are serde types; `ui/src/gen/api.ts` is generated from them
//! ([`typescript_bindings`]), so their shape is written down once.
//!
//! Notes positions are UTF-16 code units here, as editors count them (`"😀"` is 2 long);
//! the engine converts them to the document's characters once, inside.

use std::path::PathBuf;
use std::time::Duration;

use confab_proto::document::ChatMessage;
use confab_proto::{ClientKind, ErrorCode, PeerId};
use serde::{Deserialize, Serialize};
use ts_rs::{Config, TS};

use crate::peer::PeerStats;
use crate::store::StoreError;
use crate::transfer::TransferError;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    File(#[from] TransferError),
    #[error(transparent)]
    Media(#[from] confab_media::MediaError),
    #[error("{0}")]
    Refused(String),
    #[error("the engine has stopped")]
    Stopped,
}

/// What a participant sends, as announced in `ctl` `media`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MediaState {
    pub mic: bool,
    pub cam: bool,
    pub screen: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub screen_track: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Sending,
    Receiving,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileState {
    /// Offered (to us, or by us to this peer).
    Offered,
    /// Bytes moved so far.
    Progress {
        bytes: u64,
    },
    /// Sent, or received, verified and saved at `path`.
    Done {
        #[ts(type = "string | null")]
        path: Option<PathBuf>,
    },
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

/// One file transfer with one peer moved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct FileEvent {
    pub id: String,
    pub peer: PeerId,
    pub name: String,
    pub size: u64,
    pub direction: Direction,
    #[serde(flatten)]
    pub state: FileState,
}

/// One step of a change to the notes, in UTF-16 units; applied in order, the steps turn the
/// text last reported into the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NotesPatch {
    Insert { pos: usize, text: String },
    Delete { pos: usize, len: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// Joined (again, after a reconnect) with this id.
    Joined {
        you: PeerId,
    },
    /// Signaling dropped; peers already connected stay connected.
    Reconnecting {
        #[serde(rename = "retry_in_ms", serialize_with = "millis")]
        #[ts(rename = "retry_in_ms", type = "number")]
        retry_in: Duration,
        reason: String,
    },
    /// Signaling says someone is in the meeting (connecting follows).
    PeerJoined {
        id: PeerId,
        name: String,
        client: ClientKind,
    },
    /// The peer proved it holds the key; notes and chat flow.
    PeerConnected {
        id: PeerId,
        name: String,
    },
    PeerLeft {
        id: PeerId,
    },
    /// A connected peer's connection lost its path (`up: false`: the stack is trying to get it
    /// back, and nothing reaches that peer meanwhile), or has it again (`up: true`).
    PeerConnection {
        id: PeerId,
        up: bool,
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
    /// A peer's hello did not verify under the meeting key: the connection may be intercepted,
    /// and it was closed.
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
    Title {
        text: String,
    },
    Media {
        id: PeerId,
        #[serde(flatten)]
        media: MediaState,
    },
    Stats {
        id: PeerId,
        #[serde(flatten)]
        stats: PeerStats,
    },
    File(FileEvent),
    /// Where the others' selections are in the notes, as positions in the text last reported;
    /// sent whenever one moves, or the notes change under them. Peers not in the notes are not
    /// listed.
    Cursors {
        cursors: Vec<RemoteCursor>,
    },
    /// Something went wrong that the user should know of; the meeting goes on.
    Error {
        message: String,
    },
    /// The meeting is over for us: signaling refused us (`code` says why, in the protocol's
    /// words) or is gone for good.
    Ended {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        code: Option<ErrorCode>,
    },
}

/// A peer's selection in the notes, in UTF-16 units (`anchor` where it started, `head` where the
/// caret is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RemoteCursor {
    pub peer: PeerId,
    pub anchor: usize,
    pub head: usize,
}

/// Our selection in the notes, in UTF-16 units of the text last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, TS)]
pub struct NotesSelection {
    pub anchor: usize,
    pub head: usize,
}

/// What a front end asks of the meeting. Any command may carry a `ref` beside `cmd` (the CLI
/// echoes it in its answer).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Say something in the chat.
    Say {
        text: String,
    },
    /// Show the notes as they are now.
    Notes {},
    /// Insert `text` at UTF-16 position `pos` of the notes.
    NotesInsert {
        pos: usize,
        text: String,
    },
    /// Add `text` at the end of the notes.
    NotesAppend {
        text: String,
    },
    /// Delete `len` UTF-16 units at `pos`.
    NotesDelete {
        pos: usize,
        len: usize,
    },
    Title {
        text: String,
    },
    /// Where our selection is in the notes (the others see it), or `null` when we left them.
    Cursor {
        selection: Option<NotesSelection>,
    },
    /// Offer a file to everyone connected.
    SendFile {
        #[ts(type = "string")]
        path: PathBuf,
    },
    AcceptFile {
        id: String,
    },
    DeclineFile {
        id: String,
    },
    /// Stop a transfer, either way, with everyone involved.
    CancelFile {
        id: String,
    },
    /// What we send: each kind turned on is opened and sent to every peer, each turned off
    /// stops, and every peer is told (`screen_track` is the engine's to set).
    SetMedia(MediaState),
    /// Title, notes and chat as Markdown, in the answer.
    Markdown {},
    /// Write title, notes and chat as Markdown.
    Export {
        #[ts(type = "string")]
        path: PathBuf,
    },
    Quit {},
}

impl Command {
    /// The command's `cmd`, as written.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Say { .. } => "say",
            Self::Notes {} => "notes",
            Self::NotesInsert { .. } => "notes_insert",
            Self::NotesAppend { .. } => "notes_append",
            Self::NotesDelete { .. } => "notes_delete",
            Self::Title { .. } => "title",
            Self::Cursor { .. } => "cursor",
            Self::SendFile { .. } => "send_file",
            Self::AcceptFile { .. } => "accept_file",
            Self::DeclineFile { .. } => "decline_file",
            Self::CancelFile { .. } => "cancel_file",
            Self::SetMedia(_) => "set_media",
            Self::Markdown {} => "markdown",
            Self::Export { .. } => "export",
            Self::Quit {} => "quit",
        }
    }
}

/// What a command that succeeded answers, beside "applied".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(untagged)]
pub enum Answer {
    Applied {},
    /// A file was offered under this transfer id.
    Offered {
        id: String,
    },
    /// The notes, for `notes`.
    Notes {
        text: String,
    },
    /// Title, notes and chat as Markdown, for `markdown`.
    Markdown {
        markdown: String,
    },
    /// Where an export was written.
    Exported {
        #[ts(type = "string")]
        path: PathBuf,
    },
}

fn millis<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// The contents of `ui/src/gen/api.ts`.
pub fn typescript_bindings() -> String {
    // Sizes and timestamps fit a JS number exactly (< 2^53).
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated by confab-core (crates/core/src/api.rs). Do not edit: run `make gen`.\n\n\
         import type { ChatMessage, ClientKind, ErrorCode, PeerId } from \"./protocol\";\n\n",
    );
    let mut declare = |docs: Option<String>, decl: String| {
        out.push_str(&docs.unwrap_or_default());
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    };
    declare(Command::docs(), Command::decl(&cfg));
    declare(Answer::docs(), Answer::decl(&cfg));
    declare(EngineEvent::docs(), EngineEvent::decl(&cfg));
    declare(MediaState::docs(), MediaState::decl(&cfg));
    declare(PeerStats::docs(), PeerStats::decl(&cfg));
    declare(NotesPatch::docs(), NotesPatch::decl(&cfg));
    declare(RemoteCursor::docs(), RemoteCursor::decl(&cfg));
    declare(NotesSelection::docs(), NotesSelection::decl(&cfg));
    declare(FileEvent::docs(), FileEvent::decl(&cfg));
    declare(FileState::docs(), FileState::decl(&cfg));
    declare(Direction::docs(), Direction::decl(&cfg));
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
