//! Why a connection ended or could not be made.

/// A connection's end, as the mesh and the person see it. The WebRTC stack's own errors are
/// kept as their text (`detail`): they hold no address, and the events that carry this must
/// stay comparable and cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The WebRTC stack refused a step of ours (creating the connection, a channel, an offer).
    #[error("cannot {step}: {detail}")]
    Stack { step: &'static str, detail: String },
    #[error("the peer's description was refused: {0}")]
    RemoteDescription(String),
    /// A description or candidate that does not convert between signaling and the stack.
    #[error("a malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the {channel} channel failed: {detail}")]
    Channel { channel: &'static str, detail: String },
    #[error("no DTLS fingerprints in the descriptions")]
    NoFingerprints,
    #[error("the connection could not be established in time")]
    Timeout,
    #[error("the peer sent too much before its hello")]
    TooMuchBeforeHello,
    #[error("the peer sent an oversized frame")]
    OversizedFrame,
    #[error("the connection failed (no usable network path)")]
    NoPath,
    #[error("the connection closed")]
    ConnectionClosed,
    #[error("a data channel closed")]
    ChannelClosed,
}

impl PeerError {
    /// A refused step of ours, with the stack's reason.
    pub(crate) fn stack(step: &'static str) -> impl FnOnce(webrtc::error::Error) -> Self {
        move |e| Self::Stack { step, detail: e.to_string() }
    }
}
