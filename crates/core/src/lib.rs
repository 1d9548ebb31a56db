//! # confab-core — the meeting engine
//!
//! Everything a meeting is, without a GUI: the shared notes-and-chat document, its persistence
//! and its sync between peers, the signaling client, the WebRTC mesh, file transfer, and the
//! event stream for front ends. Start at [`Engine::start`].
//!
//! ## Layout
//! - [`document`]: [`MeetingDoc`], one replica of the meeting's Automerge document — edit API,
//!   chat, Markdown export.
//! - [`store`]: [`StoredDoc`], the document with the files that keep it; an edit is on disk
//!   before it is reported as applied.
//! - [`sync`]: [`PeerSync`], the `sync` data channel towards one peer as a pure state machine.
//! - [`signaling_client`]: one WebSocket to the signaling service, kept joined across drops.
//! - [`peer`]: one WebRTC peer connection with its `sync` and `ctl` channels and the verified
//!   `hello`.
//! - [`transfer`]: moving one file over a `file:ID` channel, hashed, verified, and saved only
//!   inside the download directory.
//! - [`video`]: [`VideoFeed`], our camera encoded once and shared by every connection's track
//!   (capture and codecs are confab-media's).
//! - [`engine`]: [`Engine`], the task that ties them together — the entry point for front ends.
//!
//! ## What it never does
//! It never depends on tauri, on a GUI toolkit, or on `confab-signaling` (its tests run a real
//! signaling service, as a dev-dependency only).

pub mod document;
pub mod engine;
mod keyframe_requests;
pub mod peer;
pub mod signaling_client;
pub mod store;
pub mod sync;
pub mod transfer;
mod udp_runtime;
pub mod video;

pub use document::{DocError, MeetingDoc, NotesPatch};
pub use engine::{
    Direction, Engine, EngineConfig, EngineError, EngineEvent, FileEvent, FileState, MediaState,
};
pub use store::{StoreError, StoredDoc};
pub use sync::{PeerSync, SyncError};
pub use video::VideoFeed;
