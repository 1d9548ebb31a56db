//! The client side of docs/protocol.md §2: one WebSocket to the signaling service, kept joined.
//!
//! [`spawn`] connects, joins and hands back a [`Signaling`] handle (send signals, leave) and a
//! stream of [`SignalingEvent`]s. When the socket drops it reconnects with exponential backoff and
//! joins again (the server mints a new peer id; the mesh above keeps its document and its open
//! peer connections and offers to whoever is new). What cannot succeed by retrying is reported
//! once and ends the client: the first connection failing (unless `keep_trying`), a full room, a malformed room, an
//! unsupported protocol version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_proto::limits::{RECONNECT_FIRST_WAIT, RECONNECT_MAX_WAIT, SIGNALING_SILENCE};
use confab_proto::{
    ClientKind, ClientMessage, DisplayName, ErrorCode, IceServer, Join, Limits, MeetingLink,
    PROTOCOL_VERSION, PeerId, PeerInfo, ServerMessage, SignalPayload,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{Instrument, debug, info};

/// Largest frame we accept from the server (its own limit is 64 KiB).
const MAX_FRAME: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After this machine's addresses change, how long the server has to answer a ping before the
/// connection is taken as gone with the old address.
const NETWORK_CHECK_WAIT: Duration = Duration::from_secs(2);

/// An access token, for a server that asks one of whoever opens a meeting on it (`bad_token`).
/// Never shown in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The token in `text`, trimmed: printable ASCII without spaces, at most the protocol's
    /// 1024 bytes.
    pub fn new(text: &str) -> Result<Self, String> {
        let token = text.trim();
        confab_proto::signaling::check_access_token(token)?;
        Ok(Self(token.to_owned()))
    }

    /// The first token in a token file (one per line, `#` comments), as the server reads them.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
        let (_, line) = confab_proto::signaling::token_file_lines(&text)
            .next()
            .ok_or_else(|| format!("the token file {} holds no token", path.display()))?;
        Self::new(line).map_err(|e| format!("the token file {}: {e}", path.display()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Who joins which meeting.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    pub link: MeetingLink,
    pub name: DisplayName,
    pub client: ClientKind,
    pub app_version: String,
    /// Keep trying when even the first connection fails (a participant who starts offline
    /// still edits their notes); otherwise that failure ends the client at once.
    pub keep_trying: bool,
    /// A certificate trusted besides the public roots (DER): the self-signed one of a
    /// signaling service this program hosts itself.
    pub trusted_certificate: Option<Vec<u8>>,
    /// Sent with every join, for a server that asks one of whoever opens a meeting.
    pub access_token: Option<AccessToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalingEvent {
    /// Joined (again, after a reconnect): our id and who is here.
    Joined {
        you: PeerId,
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
        limits: Limits,
    },
    PeerJoined(PeerInfo),
    PeerLeft(PeerId),
    Signal {
        from: PeerId,
        data: SignalPayload,
    },
    /// The server refused something we sent; the connection goes on.
    Refused {
        code: ErrorCode,
        message: String,
    },
    /// The connection dropped; the next attempt is in `retry_in`.
    Reconnecting {
        retry_in: Duration,
        reason: String,
    },
    /// Nothing more will happen: retrying cannot help (`code`, when the server refused us),
    /// or we left.
    Ended {
        reason: String,
        code: Option<ErrorCode>,
    },
}

enum Command {
    Signal {
        to: PeerId,
        data: SignalPayload,
    },
    /// The network changed: make sure the connection still stands.
    CheckAlive,
    Leave,
}

/// Sends through the signaling connection. Dropping every handle leaves the meeting.
#[derive(Debug, Clone)]
pub struct Signaling {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signal { to, .. } => write!(f, "Signal(to {to})"),
            Self::CheckAlive => f.write_str("CheckAlive"),
            Self::Leave => f.write_str("Leave"),
        }
    }
}

impl Signaling {
    /// Relays `data` to peer `to` (dropped if the connection is down; the mesh renegotiates).
    pub fn signal(&self, to: PeerId, data: SignalPayload) {
        let _ = self.commands.send(Command::Signal { to, data });
    }

    /// This machine's addresses changed: a connection from an address that is gone hears
    /// nothing, and is replaced at once rather than after the usual silence.
    pub fn check_alive(&self) {
        let _ = self.commands.send(Command::CheckAlive);
    }

    pub fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
    }
}

/// The wait before reconnect attempt `attempt` (0-based): [`RECONNECT_FIRST_WAIT`] doubling to
/// at most [`RECONNECT_MAX_WAIT`], then scaled into [50%, 100%] by `jitter` in [0, 1) so that a
/// room whose server restarted does not come back all at the same instant.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = RECONNECT_FIRST_WAIT.saturating_mul(1u32 << attempt.min(10));
    base.min(RECONNECT_MAX_WAIT).mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// Starts the client; events arrive on the returned receiver until [`SignalingEvent::Ended`].
pub fn spawn(config: SignalingConfig) -> (Signaling, mpsc::UnboundedReceiver<SignalingEvent>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(config, command_rx, events).in_current_span());
    (Signaling { commands }, event_rx)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How one connection ended.
enum Outcome {
    Left,
    /// Retrying cannot help; `code` when the server said why.
    Fatal(String, Option<ErrorCode>),
    Dropped(String),
}

/// Whether an access token may be sent to the signaling server at `server` (`http(s)://host…`):
/// over TLS, or to this machine.
fn token_may_go_to(server: &str) -> bool {
    let Some(rest) = server.strip_prefix("http://") else { return server.starts_with("https://") };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn run(
    config: SignalingConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SignalingEvent>,
) {
    let mut attempt = 0u32;
    let mut ever_joined = false;
    if config.access_token.is_some() && !token_may_go_to(config.link.server()) {
        // Anyone on the path would read it: a link to a plain-http server is no place for it.
        let reason = format!(
            "an access token is sent only over https, or to this machine; this meeting's server \
             is {}",
            config.link.server()
        );
        let _ = events.send(SignalingEvent::Ended { reason, code: None });
        return;
    }
    let (reason, code) = loop {
        let outcome = match connect(&config).await {
            Ok(ws) => {
                session(ws, &config, &mut commands, &events, &mut ever_joined, &mut attempt).await
            }
            Err(e) if !ever_joined && !config.keep_trying => Outcome::Fatal(e, None),
            Err(e) => Outcome::Dropped(e),
        };
        let reason = match outcome {
            Outcome::Left => break (String::from("left the meeting"), None),
            Outcome::Fatal(reason, code) => break (reason, code),
            Outcome::Dropped(reason) => reason,
        };
        let retry_in = backoff(attempt, rand::random::<f64>());
        attempt = attempt.saturating_add(1);
        info!(%reason, ?retry_in, "signaling connection lost; reconnecting");
        let _ = events.send(SignalingEvent::Reconnecting { retry_in, reason });
        // Leaving while we wait ends it at once.
        let wait = tokio::time::sleep(retry_in);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Leave) => {
                        let reason = "left the meeting".into();
                        let _ = events.send(SignalingEvent::Ended { reason, code: None });
                        return;
                    }
                    // Nowhere to send it; not connected, so nothing to check.
                    Some(Command::Signal { .. } | Command::CheckAlive) => {}
                },
            }
        }
    };
    let _ = events.send(SignalingEvent::Ended { reason, code });
}

async fn connect(config: &SignalingConfig) -> Result<Socket, String> {
    let url = config.link.websocket_url();
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls_config(
        config.trusted_certificate.as_deref(),
    )));
    let attempt = tokio_tungstenite::connect_async_tls_with_config(
        &url,
        Some(ws_config),
        true,
        Some(connector),
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => {
            Err(format!("cannot reach the signaling server at {}: {e}", config.link.server()))
        }
        Err(_) => Err(format!("no answer from the signaling server at {}", config.link.server())),
    }
}

/// TLS with the Mozilla roots (and `trusted`) and the ring provider (the one the rest of the
/// stack uses).
fn tls_config(trusted: Option<&[u8]>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(der) = trusted
        && let Err(e) = roots.add(rustls::pki_types::CertificateDer::from(der.to_vec()))
    {
        tracing::warn!(error = %e, "a certificate to trust that is none");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
}

async fn session(
    mut ws: Socket,
    config: &SignalingConfig,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    events: &mpsc::UnboundedSender<SignalingEvent>,
    ever_joined: &mut bool,
    attempt: &mut u32,
) -> Outcome {
    let join = ClientMessage::Join(Join {
        v: PROTOCOL_VERSION,
        room: config.link.room().clone(),
        name: config.name.clone(),
        client: config.client,
        app_version: config.app_version.clone(),
        token: config.access_token.as_ref().map(|t| t.as_str().to_owned()),
    });
    if let Err(e) = ws.send(Message::text(join.encode())).await {
        return Outcome::Dropped(format!("sending join failed: {e}"));
    }
    // An error the server sends just before closing; it explains the close.
    let mut closing: Option<String> = None;
    let dropped = |closing: &Option<String>, what: String| {
        Outcome::Dropped(closing.as_ref().map_or(what.clone(), |why| format!("{why} ({what})")))
    };
    // A connection that went quiet is dead (its network is gone) even if TCP has not noticed:
    // we ping, and anything at all from the server proves it alive.
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval(SIGNALING_SILENCE / 3);
    // Since when an answer to our check is awaited.
    let mut checking: Option<Instant> = None;
    loop {
        let check_due = checking.map(|since| since + NETWORK_CHECK_WAIT);
        tokio::select! {
            _ = tokio::time::sleep_until(check_due.unwrap_or_else(Instant::now).into()), if check_due.is_some() => {
                if checking.is_some_and(|since| heard < since) {
                    return dropped(&closing, "no answer from the server after a network change".into());
                }
                checking = None;
            }
            _ = ping.tick() => {
                if heard.elapsed() >= SIGNALING_SILENCE {
                    return dropped(&closing, "the server went silent".into());
                }
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    return Outcome::Dropped(format!("sending failed: {e}"));
                }
            }
            cmd = commands.recv() => match cmd {
                None | Some(Command::Leave) => {
                    let _ = ws.send(Message::text(ClientMessage::Leave.encode())).await;
                    let _ = ws.close(None).await;
                    return Outcome::Left;
                }
                Some(Command::Signal { to, data }) => {
                    let msg = ClientMessage::Signal { to, data };
                    if let Err(e) = ws.send(Message::text(msg.encode())).await {
                        return Outcome::Dropped(format!("sending failed: {e}"));
                    }
                }
                Some(Command::CheckAlive) => {
                    checking.get_or_insert_with(Instant::now);
                    if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                        return Outcome::Dropped(format!("sending failed: {e}"));
                    }
                }
            },
            frame = ws.next() => {
                heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(String::new, |f| f.reason.to_string());
                        return dropped(&closing, format!("the server closed the connection: {why}"));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return dropped(&closing, e.to_string()),
                    None => return dropped(&closing, "the connection closed".into()),
                };
                let event = match ServerMessage::decode(&text) {
                    Ok(ServerMessage::Welcome { you, peers, ice_servers, limits }) => {
                        *ever_joined = true;
                        *attempt = 0;
                        info!(peer = %you, peers = peers.len(), "joined");
                        SignalingEvent::Joined { you, peers, ice_servers, limits }
                    }
                    Ok(ServerMessage::PeerJoined { peer }) => SignalingEvent::PeerJoined(peer),
                    Ok(ServerMessage::PeerLeft { id }) => SignalingEvent::PeerLeft(id),
                    Ok(ServerMessage::Signal { from, data }) => SignalingEvent::Signal { from, data },
                    Ok(ServerMessage::Error { code, message }) => match code {
                        // Once in: a restarted server with access tokens has forgotten that the
                        // meeting was open, until someone with a token is back. Wait for them.
                        ErrorCode::BadToken if *ever_joined => {
                            closing = Some(message);
                            continue;
                        }
                        ErrorCode::RoomFull | ErrorCode::BadRoom | ErrorCode::UnsupportedVersion | ErrorCode::BadToken => {
                            let reason = format!("the server refused to let us in: {message} ({code})");
                            return Outcome::Fatal(reason, Some(code));
                        }
                        ErrorCode::ShuttingDown
                        | ErrorCode::TooSlow
                        | ErrorCode::JoinTimeout
                        | ErrorCode::Unavailable => {
                            closing = Some(message);
                            continue;
                        }
                        _ => SignalingEvent::Refused { code, message },
                    },
                    // A newer server's message type, or garbage: ignore it and carry on.
                    Err(e) => {
                        debug!(error = %e, "ignoring a server message");
                        continue;
                    }
                };
                if events.send(event).is_err() {
                    return Outcome::Left; // nobody listens any more
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_goes_only_over_tls_or_to_this_machine() {
        let allowed = [
            "https://meet.example.org",
            "http://127.0.0.1:8787",
            "http://localhost",
            "http://[::1]:80/x",
        ];
        for server in allowed {
            assert!(token_may_go_to(server), "{server}");
        }
        for server in
            ["http://meet.example.org", "http://192.0.2.7:8787", "http://127.0.0.1.example.org"]
        {
            assert!(!token_may_go_to(server), "{server}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter_below() {
        let secs = |a, j| backoff(a, j).as_secs_f64();
        assert_eq!(secs(0, 0.999_999).round(), 0.0);
        assert!((secs(0, 1.0) - 0.5).abs() < 1e-9);
        assert!((secs(0, 0.0) - 0.25).abs() < 1e-9);
        assert!((secs(2, 1.0) - 2.0).abs() < 1e-9);
        assert!((secs(3, 1.0) - 4.0).abs() < 1e-9);
        assert!((secs(10, 1.0) - 4.0).abs() < 1e-9, "back within 4 s of the server's return");
        assert!((secs(u32::MAX, 0.0) - 2.0).abs() < 1e-9, "huge attempts stay capped");
    }
}
