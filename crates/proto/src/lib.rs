//! # confab-proto — the wire protocol every Confab peer speaks
//!
//! This crate is the one Rust implementation of `docs/protocol.md`: the meeting link (§1), the
//! signaling messages between clients and the signaling service (§2), the data-channel frames
//! between peers (§3) and the schema of the shared meeting document (§4). The UI's TypeScript
//! types are generated from these types ([`typescript_bindings`], written to `ui/src/gen/`), so
//! a message shape is written down exactly once.
//!
//! ## Layout
//! - [`ids`]: validated identifiers — [`RoomId`], [`PeerId`], [`MeetingKey`] (redacted in
//!   `Debug`), [`DisplayName`].
//! - [`link`]: [`MeetingLink`] parse/format, for `http(s)://HOST/m/ROOM#k=KEY` and the
//!   `confab://` deep link.
//! - [`signaling`]: [`ClientMessage`] and [`ServerMessage`]. Decoding goes through
//!   [`ClientMessage::decode`] / [`ServerMessage::decode`], which never panic and turn every bad
//!   input into a [`DecodeError`] that knows its protocol [`ErrorCode`].
//! - [`datachannel`]: `ctl` messages ([`CtlMessage`]), `sync` frames ([`SyncFrame`]) and the
//!   `fp_mac` that authenticates a peer connection with the meeting key.
//!   Also the pure parts of snapshots and file offers ([`datachannel::snapshot_frames`],
//!   [`datachannel::SnapshotAssembly`], [`datachannel::validate_file_offer`]).
//! - [`document`]: key names and records of the Automerge meeting document.
//! - [`limits`]: every size, cap and timer both peers must agree on; generated into the UI's
//!   `ui/src/gen/constants.ts`.
//! - [`text`]: UTF-16 ↔ character positions in the notes (editors count UTF-16 units).
//!
//! ## Using it
//! ```
//! use confab_proto::{ClientMessage, MeetingLink};
//!
//! let link: MeetingLink = "https://meet.example/m/AAAAAAAAAAAAAAAAAAAAAA#k=BBBBBBBBBBBBBBBBBBBBBA"
//!     .parse()
//!     .unwrap();
//! assert_eq!(link.room().as_str(), "AAAAAAAAAAAAAAAAAAAAAA");
//!
//! let msg = ClientMessage::decode(r#"{"type":"leave"}"#).unwrap();
//! assert_eq!(msg, ClientMessage::Leave);
//! ```
//!
//! ## What it never does
//! No I/O, no async runtime, no logging: it is plain data and pure functions, so the signaling
//! service, the engine, the CLI and tests can all share it. It must never depend on another
//! Confab crate.

pub mod datachannel;
pub mod document;
pub mod ids;
pub mod limits;
pub mod link;
pub mod signaling;
pub mod text;
mod typescript;

pub use datachannel::{CtlMessage, SyncFrame, fp_mac};
pub use ids::{ClientKind, DisplayName, IdError, MeetingKey, PeerId, RoomId};
pub use link::{LinkError, MeetingLink};
pub use signaling::{
    ClientMessage, DecodeError, ErrorCode, IceCandidateInit, IceServer, Join, Limits,
    PROTOCOL_VERSION, PeerInfo, SdpType, ServerMessage, SessionDescription, SignalData,
    SignalPayload,
};
pub use typescript::{typescript_bindings, typescript_constants};
