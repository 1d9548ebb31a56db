//! One peer connection of the mesh (docs/protocol.md §3): WebRTC negotiation over signaling, the
//! negotiated `sync` (id 0) and `ctl` (id 1) channels, and the `hello` that proves both ends hold
//! the meeting key.
//!
//! [`spawn`] starts a task for one remote peer. It reports [`PeerEvent`]s (signals to relay, the
//! verified hello, frames that arrive) and takes [`PeerLink`] commands (signals that arrived,
//! frames to send, close). Each side signs the pair of DTLS fingerprints its own connection sees
//! with the key (`fp_mac`); a signaling server that swapped a fingerprint to sit in the middle
//! cannot produce a matching MAC, and the connection is dropped as intercepted.
//!
//! Media: the connection sends exactly the local tracks in [`PeerSetup::tracks`] (camera,
//! microphone, screen), each turned on or off at any time, renegotiating from this side when
//! the set changes; the peer may renegotiate its own at any time too. The peer's tracks go to
//! [`PeerSetup::incoming`], or, with none, are declined in our answers so they cost nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use confab_proto::datachannel::MAX_CHANNEL_FRAME_BYTES;
use confab_proto::limits::HELLO_REPEAT;
use confab_proto::{
    ClientKind, CtlMessage, IceCandidateInit, IceServer, MeetingKey, PeerId, SdpType,
    SessionDescription, SignalData,
};
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{Instrument, debug};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder,
    StatsSelector,
};

use rtc::peer_connection::transport::RTCDtlsRole;
use webrtc::media_stream::track_remote::TrackRemote;

mod assembly;
mod channels;
mod error;
pub mod hello;
pub mod negotiation;
mod receiving;
pub mod recovery;
mod sending;

// A connection takes the mesh's commands for it as they are.
use crate::mesh::{LinkCommand as Command, LinkId};
use crate::tracks::{IncomingMedia, TrackSet};
use crate::transfer::{self, Expected, TransferUpdate};
use crate::udp_runtime;
pub(crate) use channels::fingerprint;
use channels::{
    Channel, convert, first_mid, hello, hello_verifies, open_channel, say_bye, send_offer,
};
pub use error::PeerError;
use hello::{GateInput, GateOutput, HelloGate, PeerHello};
use negotiation::{Negotiation, Step};
use recovery::Recovery;

/// How often a connected peer's stats are reported.
const STATS_EVERY: Duration = Duration::from_secs(2);
/// How long an intercepted connection stays open after our last hello, for it to be delivered.
const INTERCEPTED_LINGER: Duration = Duration::from_millis(500);
/// Per data channel: `send` waits while this much is queued, so a file transfer cannot fill
/// memory faster than the network drains it.
const SEND_BUFFER_LIMIT: usize = 1024 * 1024;
/// Pacing of ICE connectivity checks: RFC 8445's default Ta rather than webrtc's 200 ms. The
/// connection driver sends some handshake packets only on its next timer tick, so this pace
/// is also how long each step of connecting can wait (a join took 400 ms on loopback, now 250).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Checks per candidate pair: as long a window (1.4 s) as webrtc's default 7 × 200 ms.
const ICE_CHECKS: u16 = 28;
/// How often a connection's recovery is asked whether a restart is due.
const RECOVERY_TICK: Duration = Duration::from_millis(250);

/// Who we are and how to reach the peer.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    pub key: MeetingKey,
    /// Our own signaling id, and the remote peer's.
    pub me: PeerId,
    pub remote: PeerId,
    pub name: String,
    pub client: ClientKind,
    pub app_version: String,
    pub ice_servers: Vec<IceServer>,
    /// The local address ICE binds to. The wildcard gathers on every interface there is at each
    /// (re)start, so a restart follows a network change; a concrete address stays on it.
    pub bind: IpAddr,
    /// Only relayed candidates (TURN), never a direct path.
    pub relay_only: bool,
    /// The newcomer offers; peers already in the room wait for the offer.
    pub offerer: bool,
    pub want_snapshot: bool,
    /// This run of ours, named in the hello (see `CtlMessage::Hello::instance`).
    pub instance: String,
    /// The local tracks to send, as they change.
    pub tracks: watch::Receiver<TrackSet>,
    /// Where the peer's tracks go; `None` takes none.
    pub incoming: Option<Arc<dyn IncomingMedia>>,
}

/// What a peer task reports, tagged with the remote peer's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// Relay this to the peer through signaling.
    Signal(SignalData),
    /// The peer proved it holds the key; the channels are open.
    Ready {
        name: String,
        client: ClientKind,
        want_snapshot: bool,
        /// The peer's run, when it says.
        instance: Option<String>,
    },
    Sync(Vec<u8>),
    Ctl(CtlMessage),
    /// The peer rejoined signaling: its id there is now this (events keep the first id's tag).
    Rekeyed(PeerId),
    /// The connection went `connected` (true) or `disconnected` (false); it may come back.
    Connection(bool),
    Stats(PeerStats),
    /// A file transfer on this connection moved on (see [`PeerLink::send_file`]).
    Transfer {
        id: String,
        update: TransferUpdate,
    },
    /// The peer's hello did not verify: someone may sit between us. The connection is closed.
    Intercepted,
    /// The connection could not be made or was lost. The task has ended.
    Failed(PeerError),
    /// Closed on request. The task has ended.
    Closed,
}

/// The state of the path a connection uses, as the nominated ICE pair reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, ts_rs::TS)]
pub struct PeerStats {
    pub rtt_ms: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Media packets the peer reported lost (RTCP); data channels retransmit and lose none.
    pub packets_lost: u64,
}

impl Eq for PeerStats {}

/// Commands for one peer task. Dropping it closes the connection.
#[derive(Debug, Clone)]
pub struct PeerLink {
    commands: mpsc::UnboundedSender<Command>,
}

impl PeerLink {
    /// Any command for this connection, as the mesh gave it (`Open` is [`spawn`]'s, not this).
    /// Dropping every handle closes the connection.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }
}

/// Starts the connection to `setup.remote`; events arrive on `events` tagged with `link`.
pub fn spawn(
    setup: PeerSetup,
    link: LinkId,
    events: mpsc::UnboundedSender<(LinkId, PeerEvent)>,
) -> PeerLink {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let span_peer = setup.remote.clone();
    tokio::spawn(
        async move {
            let end = match run(setup, link, command_rx, &events).await {
                Ok(end) => end,
                Err(e) => PeerEvent::Failed(e),
            };
            let _ = events.send((link, end));
        }
        .instrument(tracing::debug_span!("link", peer = %span_peer)),
    );
    PeerLink { commands }
}

/// What the connection's own callbacks report.
enum Net {
    Candidate(RTCIceCandidateInit),
    State(RTCPeerConnectionState),
    /// An in-band channel the peer opened (a file transfer).
    Channel(Arc<dyn DataChannel>),
}

struct Handler {
    net: mpsc::UnboundedSender<Net>,
    /// Whether the connection is up (ICE and DTLS): media written before is lost.
    connected: watch::Sender<bool>,
    /// The peer's signaling id now: its tracks are announced under it.
    remote: watch::Receiver<PeerId>,
    incoming: Option<Arc<dyn IncomingMedia>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.net.send(Net::Candidate(init));
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connected.send_replace(state == RTCPeerConnectionState::Connected);
        let _ = self.net.send(Net::State(state));
    }
    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.net.send(Net::Channel(channel));
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        receiving::receive(track, self.remote.borrow().clone(), self.incoming.clone());
    }
}

async fn run(
    setup: PeerSetup,
    link: LinkId,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: &mpsc::UnboundedSender<(LinkId, PeerEvent)>,
) -> Result<PeerEvent, PeerError> {
    let emit = |event: PeerEvent| events.send((link, event)).is_ok();
    let ice_servers = setup
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let (net_tx, mut net) = mpsc::unbounded_channel();
    let (connected_tx, connected) = watch::channel(false);
    let (remote_tx, remote) = watch::channel(setup.remote.clone());
    // Every codec, always: a track may be turned on at any time. A program that takes no media
    // declines the peer's tracks in its answers instead.
    let (media_engine, interceptors) = sending::media_engine()?;
    let handler =
        Handler { net: net_tx, connected: connected_tx, remote, incoming: setup.incoming.clone() };
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media_engine)
            .with_interceptor_registry(interceptors)
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .with_ice_transport_policy(if setup.relay_only {
                        RTCIceTransportPolicy::Relay
                    } else {
                        RTCIceTransportPolicy::All
                    })
                    .build(),
            )
            .with_handler(Arc::new(handler))
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_CHECKS))
                    // webrtc answers every offer, renegotiations too, with this role rather than
                    // the one the connection already has. Browsers answer `active`, so when we
                    // answer we take `passive` and stay the DTLS server through the browser's
                    // later offers (which add its camera or screen); the default `active`
                    // conflicts with the first answer and the browser drops the connection.
                    .with_answering_dtls_role(RTCDtlsRole::Server)
                    .with_multicast_dns_mode(mdns_mode())
                    // An ICE restart binds new sockets and gathers again: the addresses the old
                    // ones had may be gone (a network change), and so may their relays.
                    .with_discard_local_candidates_during_ice_restart(true)
                    .build(),
            )
            .with_runtime(udp_runtime::runtime())
            .with_udp_addrs(vec![SocketAddr::new(setup.bind, 0)])
            .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
            .build()
            .await
            .map_err(PeerError::stack("create the peer connection"))?,
    );
    let mut local = sending::LocalTracks::new(setup.incoming.is_some(), connected);
    let result =
        negotiate_and_carry(&setup, &pc, &mut local, &mut commands, &mut net, &emit, &remote_tx)
            .await;
    // The tracks' tasks are stopped here, or by their guards if this task is cut short.
    drop(local);
    if matches!(result, Ok(PeerEvent::Intercepted)) {
        // Closing at once could drop our last hello still in the send buffer; the peer needs
        // it to say why the connection ended.
        tokio::time::sleep(INTERCEPTED_LINGER).await;
    }
    let _ = pc.close().await;
    result
}

/// A file transfer running (or about to) on this connection.
enum Transfer {
    /// We accepted the offer; the peer has yet to open the channel.
    Expecting(Expected),
    /// `part` is the partial download to remove if it is stopped.
    Running { task: AbortHandle, part: Option<PathBuf> },
}

impl Transfer {
    fn stop(self) {
        if let Self::Running { task, part } = self {
            task.abort();
            if let Some(part) = part {
                let _ = std::fs::remove_file(part);
            }
        }
    }
}

/// The transfers on one connection by id; those still under way when the connection ends
/// (or its task is cut short) are stopped with it.
#[derive(Default)]
struct Transfers(HashMap<String, Transfer>);

impl Drop for Transfers {
    fn drop(&mut self) {
        for (_, transfer) in self.0.drain() {
            transfer.stop();
        }
    }
}

/// Negotiates, verifies the hello, then carries frames until the end.
async fn negotiate_and_carry(
    setup: &PeerSetup,
    pc: &Arc<dyn PeerConnection>,
    local: &mut sending::LocalTracks,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    net: &mut mpsc::UnboundedReceiver<Net>,
    emit: &impl Fn(PeerEvent) -> bool,
    remote: &watch::Sender<PeerId>,
) -> Result<PeerEvent, PeerError> {
    let mut transfers = Transfers::default();
    let transfers = &mut transfers.0;
    let (channel_tx, mut channel_events) = mpsc::unbounded_channel();
    let sync = open_channel(pc, "sync", 0, Channel::Sync, channel_tx.clone()).await?;
    let ctl = open_channel(pc, "ctl", 1, Channel::Ctl, channel_tx).await?;
    let (transfer_tx, mut transfer_updates) = mpsc::unbounded_channel::<(String, TransferUpdate)>();
    let mut negotiation = Negotiation::new(&setup.me, &setup.remote);

    // Candidates that arrive before the remote description, and our own mid for ours.
    let mut early_candidates: Option<Vec<RTCIceCandidateInit>> = Some(Vec::new());
    let mut mid: Option<String> = None;
    // Our tracks go in before any offer or answer, so the first negotiation carries them
    // whichever side offers.
    let mut tracks = setup.tracks.clone();
    let wanted = tracks.borrow_and_update().clone();
    local.apply(pc, &wanted).await?;
    let mut tracks_open = true;
    if setup.offerer {
        mid = send_offer(pc, emit, false).await?;
        negotiation.offered();
    }

    let mut open = (false, false);
    // Our signaling id: it changes when we rejoin signaling.
    let mut me = setup.me.clone();
    let mut gate = HelloGate::new(Instant::now(), setup.remote.clone());
    let mut repeat = tokio::time::interval(HELLO_REPEAT);
    let mut stats = tokio::time::interval(STATS_EVERY);
    let mut recovery = Recovery::default();
    let mut recovery_tick = tokio::time::interval(RECOVERY_TICK);
    // Carries out what the gate decided; `Some` when the connection ends.
    let pass = async |gate: &mut HelloGate,
                      me: &PeerId,
                      input: GateInput|
           -> Result<Option<PeerEvent>, PeerError> {
        for output in gate.handle(Instant::now(), input) {
            match output {
                GateOutput::SendHello => {
                    let hello = hello(setup, me, pc).await?.encode();
                    ctl.send_text(&hello).await.map_err(channel_failed("ctl"))?;
                }
                GateOutput::Emit(event) => {
                    if let PeerEvent::Rekeyed(id) = &event {
                        remote.send_replace(id.clone());
                    }
                    emit(event);
                }
                GateOutput::End(event) => return Ok(Some(event)),
            }
        }
        Ok(None)
    };
    // Carries out what recovery decided; `Some` when the connection is given up.
    let recover = async |recovery: &mut Recovery,
                         negotiation: &mut Negotiation,
                         input: recovery::Input|
           -> Result<Option<PeerEvent>, PeerError> {
        match recovery.handle(Instant::now(), input) {
            None => Ok(None),
            Some(recovery::Action::GiveUp) => Ok(Some(PeerEvent::Failed(PeerError::NoPath))),
            Some(recovery::Action::Restart) => {
                debug!(peer = %setup.remote, ?input, "restarting ICE");
                // An offer of ours still unanswered (lost with signaling, say) is replaced.
                send_offer(pc, emit, true).await?;
                negotiation.offered();
                Ok(None)
            }
        }
    };
    loop {
        tokio::select! {
            _ = recovery_tick.tick(), if recovery.reconnecting() => {
                if let Some(end) = recover(&mut recovery, &mut negotiation, recovery::Input::Tick).await? {
                    return Ok(end);
                }
            }
            _ = repeat.tick(), if !gate.verified() => {
                if let Some(end) = pass(&mut gate, &me, GateInput::Tick).await? {
                    return Ok(end);
                }
            }
            _ = stats.tick(), if gate.verified() => {
                emit(PeerEvent::Stats(read_stats(pc).await));
            }
            changed = tracks.changed(), if tracks_open => {
                if changed.is_err() {
                    // The engine is going: the connection closes on its command.
                    tracks_open = false;
                    continue;
                }
                let wanted = tracks.borrow_and_update().clone();
                // Before the first exchange the newcomer offers; our tracks ride on its offer
                // or follow our answer.
                let described = setup.offerer || pc.remote_description().await.is_some();
                if local.apply(pc, &wanted).await? && described && negotiation.wants_offer() {
                    mid = send_offer(pc, emit, false).await?;
                    negotiation.offered();
                }
            }
            command = commands.recv() => match command {
                None | Some(Command::Close) => return Ok(PeerEvent::Closed),
                // This connection is open already: `spawn` made it.
                Some(Command::Open(_)) => {}
                Some(Command::Leave) => {
                    if gate.verified() {
                        say_bye(&ctl).await;
                    }
                    return Ok(PeerEvent::Closed);
                }
                Some(Command::Rekey(new_me)) => {
                    me = new_me;
                    if let Some(end) = pass(&mut gate, &me, GateInput::Rekeyed).await? {
                        return Ok(end);
                    }
                    if let Some(end) = recover(&mut recovery, &mut negotiation, recovery::Input::SignalingBack).await? {
                        return Ok(end);
                    }
                }
                Some(Command::PeerRejoined(id)) => {
                    remote.send_replace(id);
                    if negotiation.offer_lost() {
                        let rollback = RTCSessionDescription::rollback(None).map_err(PeerError::stack("roll back our offer"))?;
                        pc.set_local_description(rollback).await.map_err(PeerError::stack("roll back our offer"))?;
                    }
                }
                Some(Command::NetworkChanged) => {
                    if let Some(end) = recover(&mut recovery, &mut negotiation, recovery::Input::NetworkChanged).await? {
                        return Ok(end);
                    }
                }
                Some(Command::Remote(SignalData::Sdp { sdp })) => {
                    match negotiation.remote(sdp.kind) {
                        Step::Ignore(why) => {
                            debug!(peer = %setup.remote, why, "ignoring a description");
                            continue;
                        }
                        Step::Apply { rollback_first: true } => {
                            let rollback = RTCSessionDescription::rollback(None).map_err(PeerError::stack("roll back our offer"))?;
                            pc.set_local_description(rollback).await.map_err(PeerError::stack("roll back our offer"))?;
                        }
                        Step::Apply { rollback_first: false } => {}
                    }
                    let desc: RTCSessionDescription = convert("description", &sdp)?;
                    let offer = sdp.kind == SdpType::Offer;
                    pc.set_remote_description(desc).await.map_err(|e| PeerError::RemoteDescription(e.to_string()))?;
                    for c in early_candidates.take().unwrap_or_default() {
                        let _ = pc.add_ice_candidate(c).await;
                    }
                    if offer && setup.incoming.is_none() {
                        receiving::decline_incoming(pc).await?;
                    }
                    if offer {
                        let answer = pc.create_answer(None).await.map_err(PeerError::stack("create an answer"))?;
                        pc.set_local_description(answer.clone()).await.map_err(PeerError::stack("set our answer"))?;
                        mid = first_mid(&answer.sdp);
                        let sdp: SessionDescription = convert("description", &answer)?;
                        emit(PeerEvent::Signal(SignalData::Sdp { sdp }));
                    }
                    // A track of ours the peer's offer had no m-line for (it sends no video,
                    // say), or a change held back while an offer was out: offer it now. Once a
                    // track has been in an offer it has an m-line (even if the peer declined
                    // it), so this stops.
                    let due = negotiation.offer_due();
                    if due || (offer && local.unnegotiated().await) {
                        send_offer(pc, emit, false).await?;
                        negotiation.offered();
                    }
                }
                Some(Command::Remote(SignalData::Candidate { candidate: Some(c) })) => {
                    let init: RTCIceCandidateInit = convert("candidate", &c)?;
                    match early_candidates.as_mut() {
                        Some(queue) => queue.push(init),
                        // A candidate the connection cannot use is not a reason to drop it.
                        None => { let _ = pc.add_ice_candidate(init).await; }
                    }
                }
                Some(Command::Remote(SignalData::Candidate { candidate: None })) => {}
                Some(Command::SendSync(frame)) => {
                    sync.send(BytesMut::from(&frame[..])).await.map_err(channel_failed("sync"))?;
                }
                Some(Command::SendCtl(msg)) => {
                    ctl.send_text(&msg.encode()).await.map_err(channel_failed("ctl"))?;
                }
                Some(Command::ExpectFile { id, expected }) => {
                    transfers.insert(id, Transfer::Expecting(expected));
                }
                Some(Command::SendFile { id, path, size }) => {
                    let init = RTCDataChannelInit { ordered: true, ..Default::default() };
                    let channel = pc
                        .create_data_channel(&format!("file:{id}"), Some(init))
                        .await
                        .map_err(PeerError::stack("open a file channel"))?;
                    let report = reporter(&transfer_tx, &id);
                    let task = tokio::spawn(transfer::stream(channel, path, size, report).in_current_span());
                    transfers.insert(id, Transfer::Running { task: task.abort_handle(), part: None });
                }
                Some(Command::CancelFile(id)) => {
                    if let Some(transfer) = transfers.remove(&id) {
                        transfer.stop();
                    }
                }
            },
            Some((id, update)) = transfer_updates.recv() => {
                if matches!(update, TransferUpdate::Done(_) | TransferUpdate::Failed(_)) {
                    transfers.remove(&id);
                }
                emit(PeerEvent::Transfer { id, update });
            }
            Some(event) = net.recv() => match event {
                Net::Candidate(mut c) => {
                    if c.sdp_mid.as_deref().is_none_or(str::is_empty) {
                        c.sdp_mid = mid.clone();
                    }
                    let candidate: IceCandidateInit = convert("candidate", &c)?;
                    emit(PeerEvent::Signal(SignalData::Candidate { candidate: Some(candidate) }));
                }
                Net::State(RTCPeerConnectionState::Failed) => {
                    emit(PeerEvent::Connection(false));
                    if let Some(end) = recover(&mut recovery, &mut negotiation, recovery::Input::Failed).await? {
                        return Ok(end);
                    }
                }
                Net::State(RTCPeerConnectionState::Closed) => return Ok(PeerEvent::Failed(PeerError::ConnectionClosed)),
                Net::State(RTCPeerConnectionState::Connected) => {
                    debug!(peer = %setup.remote, "connection up");
                    recovery.handle(Instant::now(), recovery::Input::Up);
                    emit(PeerEvent::Connection(true));
                }
                // `connecting` again is a restart under way, whose offer may yet be lost.
                Net::State(state @ (RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Connecting)) => {
                    debug!(peer = %setup.remote, ?state, "connection state");
                    recovery.handle(Instant::now(), recovery::Input::Down);
                    if recovery.reconnecting() {
                        emit(PeerEvent::Connection(false));
                    }
                }
                Net::State(state) => debug!(peer = %setup.remote, ?state, "connection state"),
                Net::Channel(channel) => {
                    let label = channel.label().await.unwrap_or_default();
                    let id = label.strip_prefix("file:").unwrap_or_default().to_owned();
                    let Some(Transfer::Expecting(expected)) = transfers.get(&id) else {
                        debug!(peer = %setup.remote, "closing a channel we did not agree to");
                        let _ = channel.close().await;
                        continue;
                    };
                    let expected = expected.clone();
                    let part = transfer::part_path(&expected.download_dir, &id);
                    let report = reporter(&transfer_tx, &id);
                    let task = tokio::spawn(
                        transfer::receive(channel, part.clone(), expected, report).in_current_span(),
                    );
                    transfers.insert(id, Transfer::Running { task: task.abort_handle(), part: Some(part) });
                }
            },
            Some((which, event)) = channel_events.recv() => match event {
                DataChannelEvent::OnOpen => {
                    match which { Channel::Sync => open.0 = true, Channel::Ctl => open.1 = true }
                    if open == (true, true)
                        && let Some(end) = pass(&mut gate, &me, GateInput::ChannelsOpen).await?
                    {
                        return Ok(end);
                    }
                }
                DataChannelEvent::OnMessage(m) if m.data.len() > MAX_CHANNEL_FRAME_BYTES => {
                    return Ok(PeerEvent::Failed(PeerError::OversizedFrame));
                }
                DataChannelEvent::OnMessage(m) => {
                    let input = match which {
                        Channel::Sync => GateInput::Frame(PeerEvent::Sync(m.data.to_vec())),
                        Channel::Ctl => match CtlMessage::decode(&String::from_utf8_lossy(&m.data)) {
                            Ok(CtlMessage::Hello { peer_id, name, client, fp_mac, want_snapshot, instance, .. }) => {
                                let mac_ok = !gate.verified() && hello_verifies(setup, pc, &fp_mac).await;
                                GateInput::Hello(PeerHello { peer_id, name, client, want_snapshot, instance, mac_ok })
                            }
                            Ok(msg) => GateInput::Frame(PeerEvent::Ctl(msg)),
                            Err(e) => {
                                debug!(peer = %setup.remote, error = %e, "ignoring a ctl message");
                                continue;
                            }
                        },
                    };
                    if let Some(end) = pass(&mut gate, &me, input).await? {
                        return Ok(end);
                    }
                }
                DataChannelEvent::OnClose => return Ok(PeerEvent::Failed(PeerError::ChannelClosed)),
                _ => {}
            },
        }
    }
}

/// A send on one of the two negotiated channels failed.
fn channel_failed(channel: &'static str) -> impl FnOnce(webrtc::error::Error) -> PeerError {
    move |e| PeerError::Channel { channel, detail: e.to_string() }
}

/// Turns a transfer task's updates into tagged ones for the connection's loop.
fn reporter(
    tx: &mpsc::UnboundedSender<(String, TransferUpdate)>,
    id: &str,
) -> impl Fn(TransferUpdate) + Send + Sync + 'static {
    let (tx, id) = (tx.clone(), id.to_owned());
    move |update| {
        let _ = tx.send((id.clone(), update));
    }
}

async fn read_stats(pc: &Arc<dyn PeerConnection>) -> PeerStats {
    let mut stats = PeerStats::default();
    for entry in pc.get_stats(Instant::now(), StatsSelector::None).await.iter() {
        match entry {
            RTCStatsReportEntry::IceCandidatePair(pair) if pair.nominated => {
                stats.rtt_ms = pair.current_round_trip_time * 1000.0;
                stats.bytes_sent = pair.bytes_sent;
                stats.bytes_received = pair.bytes_received;
            }
            RTCStatsReportEntry::RemoteInboundRtp(remote) => {
                let lost = remote.received_rtp_stream_stats.packets_lost;
                stats.packets_lost += u64::try_from(lost).unwrap_or(0);
            }
            _ => {}
        }
    }
    stats
}

/// Browsers hide their host addresses behind mDNS names, which we resolve where this machine
/// can join the mDNS group. Where it cannot (a network namespace, or a host with no default
/// route), opening the mDNS socket would fail the whole connection: then names from browsers are
/// dropped and every other candidate still works.
fn mdns_mode() -> MulticastDnsMode {
    const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
    let joins = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| socket.join_multicast_v4(&MDNS_GROUP, &Ipv4Addr::UNSPECIFIED));
    if joins.is_ok() { MulticastDnsMode::QueryOnly } else { MulticastDnsMode::Disabled }
}

/// This machine's own non-loopback IPv4 address, to bind ICE to (loopback is skipped by ICE,
/// and a wildcard bind skips it too). Connecting a UDP socket sends nothing; it only picks the
/// route.
pub fn own_address() -> std::io::Result<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket.connect("192.0.2.1:9")?;
    Ok(socket.local_addr()?.ip())
}
