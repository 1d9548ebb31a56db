//! # confab-core — the meeting engine
//!
//! Everything a meeting is, without a GUI: the shared notes-and-chat document, its persistence
//! and its sync between peers, the signaling client, the WebRTC mesh, file transfer, and the
//! event stream for front ends. Start at [`Engine::start`].
//!
//! ## Layout
//! Decisions and I/O live apart, as in confab-signaling's `hub`:
//! - [`mesh`]: [`mesh::Mesh`], the meeting's decisions as a pure state machine — membership,
//!   the rejoin, instance and re-key rules, sync towards each peer, file offers. Inputs in,
//!   outputs out, no I/O and no clock; tested in virtual time (`tests/simulation.rs`).
//! - [`engine`]: [`Engine`], the driver around the mesh — signaling, connections, the store,
//!   timers — and the entry point for front ends.
//! - [`api`]: the one front-end API — [`api::Command`]s in, [`api::Answer`]s and
//!   [`EngineEvent`]s out, serde types with TypeScript generated into `ui/src/gen/api.ts`.
//! - [`document`]: [`MeetingDoc`], one replica of the meeting's Automerge document — edit API,
//!   chat, Markdown export.
//! - [`store`]: [`store::ChangeLog`], the files that keep a document; [`StoredDoc`] pairs the
//!   two for callers that edit and store in one place.
//! - [`sync`]: [`PeerSync`], the `sync` data channel towards one peer as a pure state machine.
//! - [`signaling_client`]: one WebSocket to the signaling service, kept joined across drops.
//! - [`peer`]: one WebRTC peer connection with its `sync` and `ctl` channels, around three pure
//!   state machines: the hello gate ([`peer::hello`]), perfect negotiation
//!   ([`peer::negotiation`]) and ICE restarts ([`peer::recovery`]). `network` tells the engine
//!   when this machine's addresses change.
//! - [`transfer`]: moving one file over a `file:ID` channel, hashed, verified, and saved only
//!   inside the download directory.
//! - [`turn_probe`]: whether each TURN relay takes the credentials signaling handed out, so a
//!   refusal is told to the person (webrtc 0.21 reports none).
//! - [`tracks`]: media as a set — the local tracks we send ([`tracks::TrackSet`]), where they
//!   come from ([`tracks::TrackSources`]) and where the peers' tracks go
//!   ([`tracks::IncomingMedia`]).
//! - [`feed`]: [`TrackFeed`], one local track encoded once and shared by every connection
//!   (capture and codecs are confab-media's).
//! - [`bitrate`]: [`bitrate::LossBasedRate`], how fast a video track may go to one peer, from
//!   its loss reports, as a pure state machine.
//! - [`decode`]: [`decode::TrackDecoder`], incoming frames decoded to pictures and sound, for
//!   front ends that cannot decode themselves.
//! - [`setup`]: what front ends share before starting an engine — default directories, the
//!   install's author id, the link of a meeting hosted here.
//! - [`log`]: [`log::RedactingStderr`], where front ends write their logs, so no address or
//!   ICE candidate (the WebRTC stack names both) is logged in plain text.
//!
//! ## What it never does
//! It never depends on tauri, on a GUI toolkit, or on `confab-signaling` (its tests run a real
//! signaling service, as a dev-dependency only).

pub mod api;
pub mod bitrate;
pub mod decode;
pub mod document;
pub mod engine;
pub mod feed;
mod feedback;
pub mod log;
pub mod mesh;
mod network;
pub mod peer;
pub mod setup;
pub mod signaling_client;
pub mod store;
pub mod sync;
pub mod tracks;
pub mod transfer;
pub mod turn_probe;
mod udp_runtime;

pub use api::{Direction, EngineError, EngineEvent, FileEvent, FileState, MediaState};
pub use document::{DocError, MeetingDoc, NotesPatch};
pub use engine::{Engine, EngineConfig};
pub use feed::TrackFeed;
pub use store::{StoreError, StoredDoc};
pub use sync::{PeerSync, SyncError};
pub use tracks::{TrackKind, TrackSet};
