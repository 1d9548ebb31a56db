//! Signaling messages (docs/protocol.md §2): JSON text frames between a client and the signaling
//! service. The server relays [`SignalData`] between members of one room and never interprets it.
//!
//! Decoding is two steps: read only `"type"`, then decode that message's own shape. That way an
//! unknown type is an [`DecodeError::UnknownType`] (answered with `bad_message`, connection kept)
//! rather than a generic parse failure, and the version of a `join` is checked before its fields.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use ts_rs::TS;

use crate::ids::{ClientKind, DisplayName, IdError, PeerId, RoomId};

/// The `v` a client sends in `join`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest `app_version` and `token` a client may send, in bytes.
pub const MAX_APP_VERSION_BYTES: usize = 64;
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The tokens of a token file's text, with their line numbers (from 1): one per line, trimmed;
/// blank lines and lines starting with `#` are skipped. Servers and clients read files alike.
pub fn token_file_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, token)| !token.is_empty() && !token.starts_with('#'))
}

/// Whether `token` can be an access token (docs/protocol.md, "Access tokens"): 1 to
/// [`MAX_TOKEN_BYTES`] bytes of printable ASCII without spaces. Servers and clients read token
/// files by this one rule.
pub fn check_access_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("an access token cannot be empty".into());
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("an access token is at most {MAX_TOKEN_BYTES} bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("an access token is printable ASCII without spaces".into());
    }
    Ok(())
}
/// Longest excerpt of a client's input that an error message quotes back.
const MAX_QUOTED_CHARS: usize = 120;

/// Client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Enter a room; must be the first message.
    Join(Join),
    /// Relay `data` to one peer of the same room.
    Signal {
        to: PeerId,
        #[ts(as = "SignalData")]
        data: SignalPayload,
    },
    /// Leave the room; the server closes the socket.
    Leave,
}

#[derive(Clone, PartialEq, Eq, Serialize, TS)]
pub struct Join {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u32,
    pub room: RoomId,
    pub name: DisplayName,
    pub client: ClientKind,
    pub app_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<String>,
}

impl fmt::Debug for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("v", &self.v)
            .field("room", &self.room)
            .field("name", &self.name)
            .field("client", &self.client)
            .field("app_version", &self.app_version)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What one peer relays to another: a session description, a trickled ICE candidate, or the end
/// of candidates (`{"candidate": null}`). The shapes are the browser's own JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum SignalData {
    Sdp {
        sdp: SessionDescription,
    },
    Candidate {
        /// `null` marks the end of candidates. The field itself is required.
        #[serde(deserialize_with = "Option::deserialize")]
        candidate: Option<IceCandidateInit>,
    },
}

/// The browser's `RTCSessionDescriptionInit`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpType,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SdpType {
    Offer,
    Answer,
}

/// The browser's `RTCIceCandidateInit` (what `RTCIceCandidate.toJSON()` gives).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct IceCandidateInit {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub sdp_m_line_index: Option<u16>,
    #[serde(rename = "usernameFragment", default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub username_fragment: Option<String>,
}

// SDP and candidates carry IP addresses: their Debug never shows them.
impl fmt::Debug for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionDescription({:?}, {} bytes)", self.kind, self.sdp.len())
    }
}
impl fmt::Debug for IceCandidateInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IceCandidateInit(<redacted>, mid {:?})", self.sdp_mid)
    }
}
impl fmt::Debug for SignalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sdp { sdp } => sdp.fmt(f),
            Self::Candidate { candidate: Some(c) } => c.fmt(f),
            Self::Candidate { candidate: None } => f.write_str("EndOfCandidates"),
        }
    }
}

/// `data` as it crosses the signaling service: the sender's exact JSON, checked once to have one
/// of the shapes of [`SignalData`]. The server relays the original text, so fields a newer peer
/// adds reach the other peer unchanged, and nothing is re-encoded on the way.
#[derive(Clone)]
pub struct SignalPayload {
    raw: Box<RawValue>,
    data: SignalData,
}

impl SignalPayload {
    pub fn new(data: SignalData) -> Self {
        // Strings, numbers and options only: serialising cannot fail.
        let raw = serde_json::value::to_raw_value(&data).expect("SignalData serialises");
        Self { raw, data }
    }

    /// The typed view.
    pub fn data(&self) -> &SignalData {
        &self.data
    }

    /// The JSON as the sender wrote it.
    pub fn raw_json(&self) -> &str {
        self.raw.get()
    }
}

impl From<SignalData> for SignalPayload {
    fn from(data: SignalData) -> Self {
        Self::new(data)
    }
}

impl PartialEq for SignalPayload {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get()
    }
}
impl Eq for SignalPayload {}

impl fmt::Debug for SignalPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.data.fmt(f)
    }
}

impl Serialize for SignalPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignalPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let data = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Self { raw, data })
    }
}

/// Server → client. Decode with [`ServerMessage::decode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Joined: who you are, who is here, how to reach them, and the server's limits.
    Welcome {
        you: PeerId,
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
        limits: Limits,
    },
    /// Someone joined; they will send the offer.
    PeerJoined {
        peer: PeerInfo,
    },
    /// Someone left or timed out.
    PeerLeft {
        id: PeerId,
    },
    /// Relayed from a peer of the same room.
    Signal {
        from: PeerId,
        #[ts(as = "SignalData")]
        data: SignalPayload,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: DisplayName,
    pub client: ClientKind,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub credential: Option<String>,
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The server's limits, as configured; a client reads them from `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Limits {
    /// Largest frame the server accepts; a larger one closes the socket with 1009.
    pub max_message_bytes: u32,
    pub max_peers: u32,
    /// Sustained messages per second per connection; bursts up to `burst_messages` pass.
    #[serde(default)]
    pub max_messages_per_second: u32,
    #[serde(default)]
    pub burst_messages: u32,
    /// A socket silent for this long is dropped (the server pings well before).
    #[serde(default)]
    pub idle_timeout_secs: u32,
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    TooLarge,
    NotJoined,
    AlreadyJoined,
    BadRoom,
    RoomFull,
    BadToken,
    UnknownPeer,
    RateLimited,
    UnsupportedVersion,
    /// The connection could not keep up with what the room sends it.
    TooSlow,
    /// The server is shutting down.
    ShuttingDown,
    /// No `join` arrived in time.
    JoinTimeout,
    /// The server cannot reach the rest of its cluster to serve this now; try again.
    Unavailable,
    /// A code this build does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends, for metrics and tests.
    pub const ALL: [ErrorCode; 14] = [
        Self::BadMessage,
        Self::TooLarge,
        Self::NotJoined,
        Self::AlreadyJoined,
        Self::BadRoom,
        Self::RoomFull,
        Self::BadToken,
        Self::UnknownPeer,
        Self::RateLimited,
        Self::UnsupportedVersion,
        Self::TooSlow,
        Self::ShuttingDown,
        Self::JoinTimeout,
        Self::Unavailable,
    ];

    /// The wire spelling, e.g. `bad_message`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMessage => "bad_message",
            Self::TooLarge => "too_large",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::BadRoom => "bad_room",
            Self::RoomFull => "room_full",
            Self::BadToken => "bad_token",
            Self::UnknownPeer => "unknown_peer",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedVersion => "unsupported_version",
            Self::TooSlow => "too_slow",
            Self::ShuttingDown => "shutting_down",
            Self::JoinTimeout => "join_timeout",
            Self::Unavailable => "unavailable",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame is not a valid message. [`DecodeError::code`] is the protocol's answer to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    #[error("the message has no \"type\"")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("bad {ty} message: {reason}")]
    Invalid { ty: &'static str, reason: String },
    #[error("protocol version {0} is not supported; this server speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion(String),
    #[error("room must be {} characters of base64url (a 128-bit id)", crate::ids::ID_LEN)]
    BadRoom,
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Self::BadRoom => ErrorCode::BadRoom,
            _ => ErrorCode::BadMessage,
        }
    }

    fn invalid(ty: &'static str, reason: impl fmt::Display) -> Self {
        Self::Invalid { ty, reason: quote_limited(&reason.to_string()) }
    }
}

/// Shortens text that may quote a client's input, so an error never echoes a large frame back.
fn quote_limited(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// The `"type"` of a message, read without decoding the rest.
fn message_type(text: &str) -> Result<Cow<'_, str>, DecodeError> {
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow, default)]
        ty: Option<Cow<'a, str>>,
    }
    let tag: Tag<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::NotAnObject(quote_limited(&e.to_string())))?;
    tag.ty.ok_or(DecodeError::MissingType)
}

/// `join` as it arrives, before its fields are checked one by one so that each failure gets its
/// own error code.
#[derive(Deserialize)]
struct WireJoin {
    room: String,
    name: String,
    client: ClientKind,
    app_version: String,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
struct WireSignal {
    to: String,
    data: SignalPayload,
}

impl ClientMessage {
    /// Decodes one text frame. Never panics; every failure is a [`DecodeError`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let ty = message_type(text)?;
        match &*ty {
            "join" => decode_join(text).map(ClientMessage::Join),
            "signal" => {
                let wire: WireSignal =
                    serde_json::from_str(text).map_err(|e| DecodeError::invalid("signal", e))?;
                let to = wire.to.parse().map_err(|e: IdError| {
                    DecodeError::invalid("signal", format_args!("to: {e}"))
                })?;
                Ok(ClientMessage::Signal { to, data: wire.data })
            }
            "leave" => Ok(ClientMessage::Leave),
            other => Err(DecodeError::UnknownType(quote_limited(other))),
        }
    }

    pub fn encode(&self) -> String {
        encode(self)
    }
}

fn decode_join(text: &str) -> Result<Join, DecodeError> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        v: serde_json::Value,
    }
    let version: Version =
        serde_json::from_str(text).map_err(|e| DecodeError::invalid("join", e))?;
    match version.v.as_u64() {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        _ if version.v.is_null() => return Err(DecodeError::invalid("join", "missing field `v`")),
        _ => return Err(DecodeError::UnsupportedVersion(quote_limited(&version.v.to_string()))),
    }
    let wire: WireJoin = serde_json::from_str(text).map_err(|e| DecodeError::invalid("join", e))?;
    let room = wire.room.parse().map_err(|_| DecodeError::BadRoom)?;
    let name = DisplayName::new(&wire.name)
        .map_err(|e| DecodeError::invalid("join", format_args!("name {e}")))?;
    if wire.app_version.len() > MAX_APP_VERSION_BYTES
        || wire.app_version.chars().any(char::is_control)
    {
        return Err(DecodeError::invalid(
            "join",
            format_args!("app_version must be at most {MAX_APP_VERSION_BYTES} printable bytes"),
        ));
    }
    if wire.token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
        return Err(DecodeError::invalid(
            "join",
            format_args!("token must be at most {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    Ok(Join {
        v: PROTOCOL_VERSION,
        room,
        name,
        client: wire.client,
        app_version: wire.app_version,
        token: wire.token,
    })
}

const SERVER_TYPES: [&str; 5] = ["welcome", "peer_joined", "peer_left", "signal", "error"];

impl ServerMessage {
    /// Decodes one text frame from the server. A type this build does not know is
    /// [`DecodeError::UnknownType`], which a client should ignore (newer servers may add types).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let ty = message_type(text)?;
        let Some(&ty) = SERVER_TYPES.iter().find(|&&t| t == ty) else {
            return Err(DecodeError::UnknownType(quote_limited(&ty)));
        };
        let invalid = |e| DecodeError::invalid(ty, e);
        // `signal` holds raw JSON, which serde cannot buffer inside an internally tagged enum;
        // it gets a struct of its own, the rest share one.
        if ty == "signal" {
            #[derive(Deserialize)]
            struct Signal {
                from: PeerId,
                data: SignalPayload,
            }
            let Signal { from, data } = serde_json::from_str(text).map_err(invalid)?;
            return Ok(Self::Signal { from, data });
        }
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Wire {
            Welcome {
                you: PeerId,
                peers: Vec<PeerInfo>,
                ice_servers: Vec<IceServer>,
                limits: Limits,
            },
            PeerJoined {
                peer: PeerInfo,
            },
            PeerLeft {
                id: PeerId,
            },
            Error {
                code: ErrorCode,
                message: String,
            },
        }
        Ok(match serde_json::from_str(text).map_err(invalid)? {
            Wire::Welcome { you, peers, ice_servers, limits } => {
                Self::Welcome { you, peers, ice_servers, limits }
            }
            Wire::PeerJoined { peer } => Self::PeerJoined { peer },
            Wire::PeerLeft { id } => Self::PeerLeft { id },
            Wire::Error { code, message } => Self::Error { code, message },
        })
    }

    pub fn encode(&self) -> String {
        encode(self)
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into() }
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    // Every field is a string, number, bool, list or struct with string keys: serialising cannot
    // fail, and an empty object would still be a frame the peer rejects cleanly.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOM: &str = "q83vEjRWeJCrze8SNFZ4kA";
    const PEER: &str = "AAECAwQFBgcICQoLDA0ODw";

    fn decode(v: serde_json::Value) -> Result<ClientMessage, DecodeError> {
        ClientMessage::decode(&v.to_string())
    }

    fn join(overrides: serde_json::Value) -> serde_json::Value {
        let mut j = json!({"type":"join","v":1,"room":ROOM,"name":"Ada","client":"browser","app_version":"0.1.0"});
        for (k, v) in overrides.as_object().unwrap() {
            j[k] = v.clone();
        }
        j
    }

    #[test]
    fn join_decodes_and_round_trips() {
        let msg = decode(join(json!({"extra": "ignored"}))).unwrap();
        let ClientMessage::Join(j) = &msg else { panic!("{msg:?}") };
        assert_eq!(j.room.as_str(), ROOM);
        assert_eq!(j.client, ClientKind::Browser);
        assert_eq!(ClientMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn join_errors_have_their_own_codes() {
        let code = |v| decode(v).unwrap_err().code();
        assert_eq!(code(join(json!({"v": 2}))), ErrorCode::UnsupportedVersion);
        assert_eq!(code(join(json!({"v": "1"}))), ErrorCode::UnsupportedVersion);
        assert_eq!(code(join(json!({"room": "nope"}))), ErrorCode::BadRoom);
        assert_eq!(code(join(json!({"name": ""}))), ErrorCode::BadMessage);
        assert_eq!(code(join(json!({"client": "toaster"}))), ErrorCode::BadMessage);
        assert_eq!(code(join(json!({"app_version": "x".repeat(65)}))), ErrorCode::BadMessage);
        let mut no_v = join(json!({}));
        no_v.as_object_mut().unwrap().remove("v");
        assert_eq!(code(no_v), ErrorCode::BadMessage);
    }

    #[test]
    fn browser_shaped_signals_round_trip() {
        // Exactly what Chromium's RTCSessionDescription / RTCIceCandidate toJSON() produce.
        let offer = format!(
            r#"{{"type":"signal","to":"{PEER}","data":{{"sdp":{{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}}}}}"#
        );
        let cand = format!(
            r#"{{"type":"signal","to":"{PEER}","data":{{"candidate":{{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}}}}"#
        );
        let end = format!(r#"{{"type":"signal","to":"{PEER}","data":{{"candidate":null}}}}"#);
        for text in [&offer, &cand, &end] {
            let msg = ClientMessage::decode(text).unwrap();
            let again: serde_json::Value = serde_json::from_str(&msg.encode()).unwrap();
            let orig: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(again, orig, "{text}");
        }
        // Firefox may send null for the optional fields.
        let nulls = format!(
            r#"{{"type":"signal","to":"{PEER}","data":{{"candidate":{{"candidate":"c","sdpMid":null,"sdpMLineIndex":null}}}}}}"#
        );
        assert!(ClientMessage::decode(&nulls).is_ok());
    }

    #[test]
    fn data_is_relayed_exactly_as_the_sender_wrote_it() {
        // A newer peer's extra fields, and the sender's own spacing, reach the other peer as they
        // were; the server checks the shape but never rewrites it.
        let data = r#"{"sdp": {"type":"offer","sdp":"v=0\r\n","future":1}, "restart": true}"#;
        let text = format!(r#"{{"type":"signal","to":"{PEER}","data":{data}}}"#);
        let ClientMessage::Signal { data: payload, .. } = ClientMessage::decode(&text).unwrap()
        else {
            panic!()
        };
        assert_eq!(payload.raw_json(), data);
        assert!(matches!(payload.data(), SignalData::Sdp { sdp } if sdp.kind == SdpType::Offer));
        let relayed = ServerMessage::Signal { from: PEER.parse().unwrap(), data: payload }.encode();
        assert!(relayed.ends_with(&format!(r#""data":{data}}}"#)), "{relayed}");
        let ServerMessage::Signal { data: back, .. } = ServerMessage::decode(&relayed).unwrap()
        else {
            panic!()
        };
        assert_eq!(back.raw_json(), data);
    }

    #[test]
    fn bad_signals_are_rejected() {
        for data in [
            json!({}),
            json!({"sdp": {"type": "rollback", "sdp": ""}}),
            json!({"sdp": "v=0"}),
            json!({"candidate": 5}),
            json!(null),
        ] {
            let err = decode(json!({"type":"signal","to":PEER,"data":data})).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{data}");
        }
        let err = decode(json!({"type":"signal","to":"x","data":{"candidate":null}})).unwrap_err();
        assert!(err.to_string().contains("to:"), "{err}");
    }

    #[test]
    fn unknown_and_malformed_messages() {
        assert_eq!(decode(json!({"type":"dance"})), Err(DecodeError::UnknownType("dance".into())));
        assert_eq!(decode(json!({"typ":"join"})), Err(DecodeError::MissingType));
        assert!(matches!(ClientMessage::decode("[1,2]"), Err(DecodeError::NotAnObject(_))));
        assert!(matches!(ClientMessage::decode("{"), Err(DecodeError::NotAnObject(_))));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(ClientMessage::decode(&deep), Err(DecodeError::NotAnObject(_))));
    }

    #[test]
    fn errors_never_echo_much_input() {
        let err = decode(join(json!({"client": "x".repeat(100_000)}))).unwrap_err();
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
    }

    #[test]
    fn server_messages_round_trip_and_unknown_types_are_typed() {
        let welcome = ServerMessage::Welcome {
            you: PEER.parse().unwrap(),
            peers: vec![PeerInfo {
                id: ROOM.parse().unwrap(),
                name: DisplayName::new("Bo").unwrap(),
                client: ClientKind::Cli,
            }],
            ice_servers: vec![IceServer {
                urls: vec!["stun:stun.example:3478".into()],
                username: None,
                credential: None,
            }],
            limits: Limits {
                max_message_bytes: 65536,
                max_peers: 8,
                max_messages_per_second: 50,
                burst_messages: 200,
                idle_timeout_secs: 45,
            },
        };
        assert_eq!(ServerMessage::decode(&welcome.encode()).unwrap(), welcome);
        assert!(matches!(
            ServerMessage::decode(r#"{"type":"future_thing"}"#),
            Err(DecodeError::UnknownType(_))
        ));
        let err = ServerMessage::decode(r#"{"type":"error","code":"new_code","message":"m"}"#);
        assert_eq!(err.unwrap(), ServerMessage::error(ErrorCode::Unknown, "m"));
    }

    #[test]
    fn secrets_and_addresses_stay_out_of_debug() {
        let c = IceCandidateInit {
            candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        assert!(!format!("{c:?}").contains("192.0.2.1"));
        let s =
            IceServer { urls: vec![], username: Some("u".into()), credential: Some("pw".into()) };
        assert!(!format!("{s:?}").contains("pw"));
    }
}
