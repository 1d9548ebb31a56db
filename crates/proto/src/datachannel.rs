//! Peer-to-peer data channels (docs/protocol.md §3): `ctl` control messages, `sync` frames and the
//! `fp_mac` that binds a connection's DTLS fingerprints to the meeting key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use ts_rs::TS;

use crate::ids::{ClientKind, MeetingKey, PeerId};
use crate::signaling::DecodeError;

pub use crate::limits::{FILE_CHUNK_BYTES, MAX_CHANNEL_FRAME_BYTES, SNAPSHOT_CHUNK_BYTES};

/// A message on the `ctl` channel (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CtlMessage {
    /// First message on `ctl`: who I am, whether I want a snapshot, and proof that I hold the key.
    Hello {
        peer_id: PeerId,
        name: String,
        client: ClientKind,
        app_version: String,
        want_snapshot: bool,
        fp_mac: String,
        /// Random per run of a participant (an engine, a page load). After both ends rejoined
        /// signaling under new ids they connect again; a connection whose hello names an
        /// instance we already have a connection with replaces the older one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        instance: Option<String>,
    },
    /// What this peer sends.
    Media {
        mic: bool,
        cam: bool,
        screen: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        screen_track: Option<String>,
    },
    /// Where this peer's selection is in the notes, so others can show it: Automerge cursors
    /// into `notes` (the strings Automerge's JS and Rust libraries make, which stay on their
    /// character as others edit). Both absent when the peer is not in the notes.
    Cursor {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        anchor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        head: Option<String>,
    },
    FileOffer {
        id: String,
        name: String,
        size: u64,
        sha256: String,
    },
    FileAccept {
        id: String,
    },
    FileCancel {
        id: String,
        reason: String,
    },
    FileDone {
        id: String,
    },
    /// Leaving on purpose.
    Bye {},
}

const CTL_TYPES: [&str; 8] =
    ["hello", "media", "cursor", "file_offer", "file_accept", "file_cancel", "file_done", "bye"];

impl CtlMessage {
    /// Decodes one `ctl` frame; an unknown type is [`DecodeError::UnknownType`] (ignore it).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "type", default)]
            ty: Option<String>,
        }
        let tag: Tag = serde_json::from_str(text)
            .map_err(|e| DecodeError::NotAnObject(e.to_string().chars().take(120).collect()))?;
        let ty = tag.ty.ok_or(DecodeError::MissingType)?;
        let Some(&ty) = CTL_TYPES.iter().find(|&&t| t == ty) else {
            return Err(DecodeError::UnknownType(ty.chars().take(120).collect()));
        };
        serde_json::from_str(text).map_err(|e| DecodeError::Invalid {
            ty,
            reason: e.to_string().chars().take(120).collect(),
        })
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// One binary frame on the `sync` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFrame<'a> {
    /// Tag `0x00`: one Automerge sync message.
    Sync(&'a [u8]),
    /// Tag `0x01`: a chunk (≤ [`SNAPSHOT_CHUNK_BYTES`]) of a document snapshot.
    SnapshotChunk(&'a [u8]),
    /// Tag `0x02`: the snapshot is complete; load and merge it.
    SnapshotEnd,
}

/// Why a `sync` frame is rejected; each one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown sync frame tag {0:#04x}")]
    UnknownTag(u8),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("snapshot end frame carries a payload")]
    TrailingPayload,
}

impl<'a> SyncFrame<'a> {
    pub fn decode(frame: &'a [u8]) -> Result<Self, FrameError> {
        let (&tag, payload) = frame.split_first().ok_or(FrameError::Empty)?;
        match tag {
            _ if frame.len() > MAX_CHANNEL_FRAME_BYTES => Err(FrameError::TooLarge(frame.len())),
            0x00 => Ok(Self::Sync(payload)),
            0x01 if payload.len() > SNAPSHOT_CHUNK_BYTES => Err(FrameError::TooLarge(frame.len())),
            0x01 => Ok(Self::SnapshotChunk(payload)),
            0x02 if !payload.is_empty() => Err(FrameError::TrailingPayload),
            0x02 => Ok(Self::SnapshotEnd),
            other => Err(FrameError::UnknownTag(other)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, &[u8]) = match self {
            Self::Sync(p) => (0x00, p),
            Self::SnapshotChunk(p) => (0x01, p),
            Self::SnapshotEnd => (0x02, &[]),
        };
        let mut out = Vec::with_capacity(1 + payload.len());
        out.push(tag);
        out.extend_from_slice(payload);
        out
    }
}

/// The frames that carry a snapshot (a saved document) to a peer: chunks of at most
/// [`SNAPSHOT_CHUNK_BYTES`], each tagged `0x01`, then `0x02`. An empty snapshot is just `0x02`.
pub fn snapshot_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .chunks(SNAPSHOT_CHUNK_BYTES)
        .map(|c| SyncFrame::SnapshotChunk(c).encode())
        .chain([SyncFrame::SnapshotEnd.encode()])
        .collect()
}

/// Why a received snapshot is refused; each one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("a snapshot from the peer is over {max} bytes")]
    TooLarge { max: usize },
    #[error("the peer ended a snapshot it never started")]
    NotStarted,
}

/// A snapshot being received: the chunks of `0x01` frames, until `0x02` ends it.
#[derive(Debug, Clone)]
pub struct SnapshotAssembly {
    /// `None` until the first chunk: an end without one is a protocol error, not an empty doc.
    bytes: Option<Vec<u8>>,
    max_bytes: usize,
}

impl SnapshotAssembly {
    /// Refuses snapshots over `max_bytes` ([`crate::limits::MAX_SNAPSHOT_BYTES`] between peers).
    pub fn new(max_bytes: usize) -> Self {
        Self { bytes: None, max_bytes }
    }

    /// Whether a snapshot has started and not yet ended.
    pub fn in_progress(&self) -> bool {
        self.bytes.is_some()
    }

    /// Adds the payload of a `0x01` frame. Past the limit, what was received is dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SnapshotError> {
        let bytes = self.bytes.get_or_insert_with(Vec::new);
        if bytes.len() + chunk.len() > self.max_bytes {
            self.bytes = None;
            return Err(SnapshotError::TooLarge { max: self.max_bytes });
        }
        bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Handles a `0x02` frame: the whole snapshot, and the assembly is ready for the next one.
    pub fn finish(&mut self) -> Result<Vec<u8>, SnapshotError> {
        self.bytes.take().ok_or(SnapshotError::NotStarted)
    }
}

/// Why a `file_offer` is cancelled rather than shown. The text is the `reason` of the
/// `file_cancel` the sender receives and shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileOfferError {
    #[error("the transfer id is not a UUID")]
    BadId,
    #[error("the sha256 is not 64 lower-case hex digits")]
    BadSha256,
    #[error("the file is {size} bytes; the limit is {max}")]
    TooLarge { size: u64, max: u64 },
}

/// Checks an offer's fields: `id` a lower-case UUID v4, `sha256` 64 lower-case hex digits, `size`
/// at most `max_bytes` (this receiver's limit: [`crate::limits::NATIVE_MAX_FILE_BYTES`] or
/// [`crate::limits::BROWSER_MAX_FILE_BYTES`]). Checked in that order.
pub fn validate_file_offer(
    id: &str,
    sha256: &str,
    size: u64,
    max_bytes: u64,
) -> Result<(), FileOfferError> {
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if !crate::document::is_uuid_v4(id) {
        Err(FileOfferError::BadId)
    } else if sha256.len() != 64 || !sha256.bytes().all(is_hex) {
        Err(FileOfferError::BadSha256)
    } else if size > max_bytes {
        Err(FileOfferError::TooLarge { size, max: max_bytes })
    } else {
        Ok(())
    }
}

fn fp_hmac(key: &MeetingKey, sender_fp: &str, receiver_fp: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"confab-v1|");
    mac.update(sender_fp.as_bytes());
    mac.update(b"|");
    mac.update(receiver_fp.as_bytes());
    mac
}

/// The `fp_mac` a peer puts in its `hello`: unpadded base64url of
/// HMAC-SHA256(the key's 16 bytes, `"confab-v1|" + own fingerprint + "|" + peer's fingerprint`),
/// fingerprints written as the SDP `a=fingerprint` value (`sha-256 AB:CD:…`).
pub fn fp_mac(key: &MeetingKey, own_fp: &str, peer_fp: &str) -> String {
    URL_SAFE_NO_PAD.encode(fp_hmac(key, own_fp, peer_fp).finalize().into_bytes())
}

/// Checks a received `fp_mac` against the fingerprints this side's own connection sees, in
/// constant time. `false` means someone between the peers swapped a fingerprint (or the peer
/// does not hold the key): drop the connection.
pub fn verify_fp_mac(key: &MeetingKey, mac: &str, remote_fp: &str, local_fp: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(mac) {
        Ok(bytes) => fp_hmac(key, remote_fp, local_fp).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_frames_round_trip_and_reject_bad_tags() {
        for f in
            [SyncFrame::Sync(b"abc"), SyncFrame::SnapshotChunk(&[0; 10]), SyncFrame::SnapshotEnd]
        {
            assert_eq!(SyncFrame::decode(&f.encode()), Ok(f));
        }
        assert_eq!(SyncFrame::decode(&[]), Err(FrameError::Empty));
        assert_eq!(SyncFrame::decode(&[7, 1]), Err(FrameError::UnknownTag(7)));
        assert_eq!(SyncFrame::decode(&[2, 1]), Err(FrameError::TrailingPayload));
        let big = vec![1u8; SNAPSHOT_CHUNK_BYTES + 2];
        assert!(matches!(SyncFrame::decode(&big), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn snapshots_are_chunked_and_reassembled() {
        let bytes: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 2 + 1).map(|i| i as u8).collect();
        let frames = snapshot_frames(&bytes);
        let lengths: Vec<usize> = frames.iter().map(Vec::len).collect();
        assert_eq!(lengths, [SNAPSHOT_CHUNK_BYTES + 1, SNAPSHOT_CHUNK_BYTES + 1, 2, 1]);
        let mut assembly = SnapshotAssembly::new(bytes.len());
        for frame in &frames[..3] {
            let Ok(SyncFrame::SnapshotChunk(chunk)) = SyncFrame::decode(frame) else {
                panic!("not a chunk: {:?}", &frame[..1]);
            };
            assembly.push(chunk).unwrap();
        }
        assert_eq!(assembly.finish(), Ok(bytes));
        assert!(!assembly.in_progress());
        assert_eq!(assembly.finish(), Err(SnapshotError::NotStarted));
        assert_eq!(snapshot_frames(&[]), [vec![2u8]]);
    }

    #[test]
    fn a_snapshot_over_the_limit_is_refused_and_dropped() {
        let mut assembly = SnapshotAssembly::new(4);
        assembly.push(b"abc").unwrap();
        assert_eq!(assembly.push(b"de"), Err(SnapshotError::TooLarge { max: 4 }));
        assert!(!assembly.in_progress(), "what was received is let go");
        assert_eq!(assembly.finish(), Err(SnapshotError::NotStarted));
    }

    #[test]
    fn file_offers_are_checked_in_order() {
        let id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
        let sha = "ab".repeat(32);
        assert_eq!(validate_file_offer(id, &sha, 10, 10), Ok(()));
        assert_eq!(validate_file_offer("x", "x", 11, 10), Err(FileOfferError::BadId));
        assert_eq!(
            validate_file_offer(id, &"AB".repeat(32), 1, 10),
            Err(FileOfferError::BadSha256)
        );
        let too_large = validate_file_offer(id, &sha, 11, 10).unwrap_err();
        assert_eq!(too_large.to_string(), "the file is 11 bytes; the limit is 10");
    }

    #[test]
    fn ctl_messages_round_trip() {
        let hello = CtlMessage::Hello {
            peer_id: PeerId::random(),
            name: "Ada".into(),
            client: ClientKind::Cli,
            app_version: "0.1.0".into(),
            want_snapshot: true,
            fp_mac: "x".into(),
            instance: Some("run-1".into()),
        };
        assert_eq!(CtlMessage::decode(&hello.encode()), Ok(hello));
        assert_eq!(CtlMessage::Bye {}.encode(), r#"{"type":"bye"}"#);
        assert_eq!(CtlMessage::decode(r#"{"type":"bye"}"#), Ok(CtlMessage::Bye {}));
        assert!(matches!(
            CtlMessage::decode(r#"{"type":"wave"}"#),
            Err(DecodeError::UnknownType(_))
        ));
    }

    #[test]
    fn fp_mac_matches_known_vector_and_verifies_one_way_only() {
        let key: MeetingKey = "AAECAwQFBgcICQoLDA0ODw".parse().unwrap(); // bytes 0..=15
        let a = "sha-256 AA:BB";
        let b = "sha-256 CC:DD";
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // print(base64.urlsafe_b64encode(hmac.new(bytes(range(16)),
        // b'confab-v1|sha-256 AA:BB|sha-256 CC:DD', hashlib.sha256).digest()).rstrip(b'='))"
        assert_eq!(fp_mac(&key, a, b), "1giBEYh6-jteJ2lbktsLIX6uOEV4wSKqDgQSKD29bmo");
        let mac = fp_mac(&key, a, b);
        assert!(verify_fp_mac(&key, &mac, a, b));
        assert!(!verify_fp_mac(&key, &mac, b, a), "a swapped direction must not verify");
        assert!(!verify_fp_mac(&key, &mac, a, "sha-256 EE:FF"));
        assert!(!verify_fp_mac(&MeetingKey::random(), &mac, a, b));
        assert!(!verify_fp_mac(&key, "not base64!", a, b));
    }
}
