//! The meeting engine: one task that owns the stored document, one [`PeerSync`] and one
//! [`PeerLink`] per peer, the file transfers, and the signaling client, and turns what they
//! report into [`EngineEvent`]s for a front end. Front ends drive it through [`Engine`].
//!
//! Everything that changes the document happens in this task, in order: a local edit is on disk
//! (through [`StoredDoc`]) before it is reported, and changes from a peer are on disk before they
//! are passed on to the other peers or reported.
//!
//! Peers outlive signaling: when our signaling connection drops and comes back (with a new id),
//! or a peer's does, connections that are up stay up. A peer is reported gone when it says `bye`,
//! or when signaling says it left and its own connection is down too.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use automerge::{ActorId, ChangeHash};
use confab_proto::document::ChatMessage;
use confab_proto::{ClientKind, CtlMessage, DisplayName, MeetingLink, PeerId, SdpType, SignalData};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, info, warn};

use crate::document::NotesPatch;
use crate::peer::{self, PeerEvent, PeerLink, PeerSetup, PeerStats};
use crate::signaling_client::{self, Signaling, SignalingConfig, SignalingEvent};
use crate::store::{StoreError, StoredDoc};
use crate::sync::PeerSync;
use crate::transfer::{self, Expected, FileInfo, TransferUpdate};
use crate::video::VideoFeed;

/// How long leaving waits for every peer to acknowledge our `bye`.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The default for [`EngineConfig::max_file_bytes`]: 2 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub link: MeetingLink,
    pub name: DisplayName,
    pub client: ClientKind,
    pub app_version: String,
    /// Where meetings' documents are kept (`DATA_DIR/rooms/ROOM/`).
    pub data_dir: PathBuf,
    /// Where received files are saved.
    pub download_dir: PathBuf,
    /// Files larger than this are neither offered nor accepted.
    pub max_file_bytes: u64,
    /// Accept every file offered (within the limit) without asking the front end.
    pub auto_accept_files: bool,
    /// Start and keep retrying even if the signaling server cannot be reached at first (the
    /// notes work offline); otherwise an unreachable server ends the engine at once.
    pub work_offline: bool,
    /// Stable per-install id written as the author of chat messages.
    pub author_id: String,
    /// The local address ICE binds to.
    pub bind: IpAddr,
    /// Our camera, sent to every peer; announced as `cam` in our media state.
    pub camera: Option<VideoFeed>,
}

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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
    #[error("the engine has stopped")]
    Stopped,
}

type Reply<T = ()> = oneshot::Sender<Result<T, EngineError>>;

enum Command {
    Say(String, Reply),
    Splice { pos: usize, delete: usize, text: String, reply: Reply },
    SetTitle(String, Reply),
    Markdown(oneshot::Sender<String>),
    OfferFile(FileInfo, Reply<String>),
    AcceptFile(String, Reply),
    CancelFile(String),
    SetMedia(MediaState),
    Leave,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Say(..) => "Say",
            Self::Splice { .. } => "Splice",
            Self::SetTitle(..) => "SetTitle",
            Self::Markdown(_) => "Markdown",
            Self::OfferFile(..) => "OfferFile",
            Self::AcceptFile(..) => "AcceptFile",
            Self::CancelFile(_) => "CancelFile",
            Self::SetMedia(_) => "SetMedia",
            Self::Leave => "Leave",
        })
    }
}

/// The handle a front end holds.
#[derive(Debug, Clone)]
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
    max_file_bytes: u64,
}

impl Engine {
    /// Opens the meeting's stored document and joins the meeting.
    pub fn start(
        config: EngineConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<EngineEvent>), EngineError> {
        let dir = config.data_dir.join("rooms").join(config.link.room().as_str());
        let store = StoredDoc::open(&dir, ActorId::random())?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let max_file_bytes = config.max_file_bytes;
        // The caller's span (a participant's, say) labels everything the engine logs.
        tokio::spawn(run(config, store, command_rx, events).in_current_span());
        Ok((Self { commands, max_file_bytes }, event_rx))
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Posts a chat message; returns once it is stored.
    pub async fn say(&self, text: &str) -> Result<(), EngineError> {
        let text = text.to_owned();
        self.ask(|reply| Command::Say(text, reply)).await?
    }

    /// Edits the notes; returns once the edit is stored.
    pub async fn splice_notes(
        &self,
        pos: usize,
        delete: usize,
        text: &str,
    ) -> Result<(), EngineError> {
        let text = text.to_owned();
        self.ask(|reply| Command::Splice { pos, delete, text, reply }).await?
    }

    pub async fn set_title(&self, title: &str) -> Result<(), EngineError> {
        let title = title.to_owned();
        self.ask(|reply| Command::SetTitle(title, reply)).await?
    }

    /// Title, notes and chat transcript as Markdown.
    pub async fn markdown(&self) -> Result<String, EngineError> {
        self.ask(Command::Markdown).await
    }

    /// Offers a file to everyone connected; returns the transfer id. The file is read once here
    /// to hash it, then again for each peer that accepts.
    pub async fn send_file(&self, path: &Path) -> Result<String, EngineError> {
        let info =
            transfer::inspect(path, self.max_file_bytes).await.map_err(EngineError::Refused)?;
        self.ask(|reply| Command::OfferFile(info, reply)).await?
    }

    /// Accepts a file a peer offered (not needed with `auto_accept_files`).
    pub async fn accept_file(&self, id: &str) -> Result<(), EngineError> {
        let id = id.to_owned();
        self.ask(|reply| Command::AcceptFile(id, reply)).await?
    }

    /// Stops a transfer, sending or receiving, with every peer involved.
    pub fn cancel_file(&self, id: &str) {
        let _ = self.commands.send(Command::CancelFile(id.to_owned()));
    }

    /// Announces what we send (mic, camera, screen) to every peer, now and on connecting.
    pub fn set_media(&self, media: MediaState) {
        let _ = self.commands.send(Command::SetMedia(media));
    }

    pub fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
    }
}

struct Peer {
    link: PeerLink,
    sync: PeerSync,
    ready: bool,
    /// The ICE connection is up right now.
    connected: bool,
    /// Signaling said it left; it stays while its connection does.
    signaling_left: bool,
    /// The peer's run, from its hello.
    instance: Option<String>,
    /// The DTLS fingerprint of the peer's first description: an offer with another one is a
    /// new connection from the same peer, not a renegotiation of this one.
    remote_fingerprint: Option<String>,
}

struct Outgoing {
    info: FileInfo,
    peers: HashSet<PeerId>,
}

struct Incoming {
    peer: PeerId,
    name: String,
    size: u64,
    sha256: String,
}

struct State {
    config: EngineConfig,
    store: StoredDoc,
    signaling: Signaling,
    me: Option<PeerId>,
    ice_servers: Vec<confab_proto::IceServer>,
    peers: HashMap<PeerId, Peer>,
    /// Peers already reported gone (ids are never reused).
    gone: HashSet<PeerId>,
    peer_events: mpsc::UnboundedSender<(PeerId, PeerEvent)>,
    events: mpsc::UnboundedSender<EngineEvent>,
    /// Whether we already asked one peer for a snapshot.
    asked_snapshot: bool,
    /// This run of the engine, named in our hellos.
    instance: String,
    /// A link's tag (the peer's id when it connected) → the peer's id now, for peers that
    /// rejoined signaling while connected.
    aliases: HashMap<PeerId, PeerId>,
    chat_seen: HashSet<String>,
    notes_seen: String,
    title_seen: String,
    heads_seen: Vec<ChangeHash>,
    media: MediaState,
    outgoing: HashMap<String, Outgoing>,
    incoming: HashMap<String, Incoming>,
}

async fn run(
    config: EngineConfig,
    mut store: StoredDoc,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<EngineEvent>,
) {
    let (signaling, mut signaling_events) = signaling_client::spawn(SignalingConfig {
        link: config.link.clone(),
        name: config.name.clone(),
        client: config.client,
        app_version: config.app_version.clone(),
        keep_trying: config.work_offline,
    });
    let (peer_events, mut peer_rx) = mpsc::unbounded_channel();
    let heads_seen = store.doc_mut().heads();
    let camera_on = config.camera.is_some();
    let mut state = State {
        config,
        store,
        signaling,
        me: None,
        ice_servers: Vec::new(),
        peers: HashMap::new(),
        gone: HashSet::new(),
        peer_events,
        events,
        asked_snapshot: false,
        instance: new_uuid(),
        aliases: HashMap::new(),
        chat_seen: HashSet::new(),
        notes_seen: String::new(),
        title_seen: String::new(),
        heads_seen,
        media: MediaState { cam: camera_on, ..MediaState::default() },
        outgoing: HashMap::new(),
        incoming: HashMap::new(),
    };
    // What is stored already is reported once, whole, so a front end starts from it.
    state.report_changes();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Leave) => break,
                Some(command) => state.on_command(command),
            },
            Some(event) = signaling_events.recv() => {
                if let SignalingEvent::Ended { reason } = event {
                    let _ = state.events.send(EngineEvent::Ended { reason });
                    break;
                }
                state.on_signaling(event);
            }
            Some((id, event)) = peer_rx.recv() => state.on_peer(id, event),
        }
    }
    state.signaling.leave();
    // Each connection says bye; wait for them (briefly) so the peers hear we left.
    let mut leaving: HashSet<PeerId> = state.peers.keys().cloned().collect();
    for peer in state.peers.values() {
        peer.link.leave();
    }
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
        while !leaving.is_empty() {
            match peer_rx.recv().await {
                Some((id, PeerEvent::Closed | PeerEvent::Failed(_))) => leaving.remove(&id),
                Some(_) => false,
                None => break,
            };
        }
    })
    .await;
}

impl State {
    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    fn doc_is_empty(&self) -> bool {
        let doc = self.store.doc();
        doc.notes().is_empty() && doc.title().is_empty() && doc.chat().is_empty()
    }

    fn connect(&mut self, remote: PeerId, offerer: bool) {
        let Some(me) = self.me.clone() else { return };
        // A newcomer with nothing asks exactly one peer (the first) for a snapshot.
        let want_snapshot = offerer && !self.asked_snapshot && self.doc_is_empty();
        self.asked_snapshot |= want_snapshot;
        let setup = PeerSetup {
            key: self.config.link.key().clone(),
            me,
            remote: remote.clone(),
            name: self.config.name.to_string(),
            client: self.config.client,
            app_version: self.config.app_version.clone(),
            ice_servers: self.ice_servers.clone(),
            bind: self.config.bind,
            offerer,
            want_snapshot,
            instance: self.instance.clone(),
            camera: self.config.camera.clone(),
        };
        let link = peer::spawn(setup, self.peer_events.clone());
        let sync = if want_snapshot { PeerSync::awaiting_snapshot() } else { PeerSync::new() };
        let peer = Peer {
            link,
            sync,
            ready: false,
            connected: false,
            signaling_left: false,
            instance: None,
            remote_fingerprint: None,
        };
        if let Some(old) = self.peers.insert(remote, peer) {
            old.link.close();
        }
    }

    /// Forgets a peer and tells the front end, once.
    fn peer_gone(&mut self, id: &PeerId, failure: Option<String>) {
        if let Some(peer) = self.peers.remove(id) {
            peer.link.close();
        }
        self.fail_transfers_with(id);
        if self.gone.insert(id.clone()) {
            self.emit(match failure {
                Some(reason) => EngineEvent::PeerFailed { id: id.clone(), reason },
                None => EngineEvent::PeerLeft { id: id.clone() },
            });
        }
    }

    fn on_signaling(&mut self, event: SignalingEvent) {
        match event {
            SignalingEvent::Joined { you, peers, ice_servers, .. } => {
                info!(peers = peers.len(), "joined the meeting");
                self.me = Some(you.clone());
                self.ice_servers = ice_servers;
                self.emit(EngineEvent::Joined { you: you.clone() });
                // Half-made connections lost their signaling with our old id: start over. Live
                // ones learn our new id, so what we signal them later reaches them.
                self.peers.retain(|_, peer| {
                    if peer.ready {
                        peer.link.rekey(you.clone());
                    } else {
                        peer.link.close();
                    }
                    peer.ready
                });
                // The newcomer offers to everyone already there that it is not connected to.
                for p in peers {
                    self.emit(EngineEvent::PeerJoined {
                        id: p.id.clone(),
                        name: p.name.to_string(),
                    });
                    if !self.peers.contains_key(&p.id) {
                        self.connect(p.id, true);
                    }
                }
            }
            SignalingEvent::PeerJoined(p) => {
                // It offers; its connection is made when the offer arrives.
                self.emit(EngineEvent::PeerJoined { id: p.id, name: p.name.into() });
            }
            SignalingEvent::PeerLeft(id) => match self.peers.get_mut(&id) {
                Some(peer) if peer.ready && peer.connected => peer.signaling_left = true,
                _ => self.peer_gone(&id, None),
            },
            SignalingEvent::Signal { from, data } => {
                let data = data.data().clone();
                let fingerprint = match &data {
                    SignalData::Sdp { sdp } => peer::fingerprint(&sdp.sdp),
                    _ => None,
                };
                let new_connection = matches!(&data, SignalData::Sdp { sdp } if sdp.kind == SdpType::Offer)
                    && self.peers.get(&from).is_some_and(|p| {
                        p.remote_fingerprint.is_some()
                            && fingerprint.is_some()
                            && p.remote_fingerprint != fingerprint
                    });
                if new_connection {
                    // Both of us rejoined signaling and the peer, not knowing us under our new
                    // id, started a new connection: it replaces this one.
                    self.connect(from.clone(), false);
                }
                if !self.peers.contains_key(&from) {
                    match &data {
                        SignalData::Sdp { sdp } if sdp.kind == SdpType::Offer => {
                            self.connect(from.clone(), false);
                        }
                        // Trailing candidates of a connection already gone.
                        _ => return,
                    }
                }
                if let Some(peer) = self.peers.get_mut(&from) {
                    if peer.remote_fingerprint.is_none() {
                        peer.remote_fingerprint = fingerprint;
                    }
                    peer.link.remote_signal(data);
                }
            }
            SignalingEvent::Refused { code, message } => {
                warn!(%code, %message, "signaling refused a message")
            }
            SignalingEvent::Reconnecting { retry_in, reason } => {
                self.emit(EngineEvent::Reconnecting { retry_in, reason });
            }
            SignalingEvent::Ended { .. } => {}
        }
    }

    fn on_peer(&mut self, tag: PeerId, event: PeerEvent) {
        // A link tags its events with the peer's first id; the peer may have rejoined since.
        let id = self.aliases.get(&tag).cloned().unwrap_or(tag.clone());
        match event {
            PeerEvent::Signal(data) => self.signaling.signal(id, data.into()),
            PeerEvent::Rekeyed(new_id) => {
                if self.peers.contains_key(&new_id) {
                    // A newer connection to the same peer is already under way (both of us
                    // rejoined): it wins.
                    self.peer_gone(&id, None);
                    return;
                }
                let Some(mut peer) = self.peers.remove(&id) else { return };
                peer.signaling_left = false;
                self.peers.insert(new_id.clone(), peer);
                self.aliases.insert(tag, new_id.clone());
                for out in self.outgoing.values_mut() {
                    if out.peers.remove(&id) {
                        out.peers.insert(new_id.clone());
                    }
                }
                for incoming in self.incoming.values_mut() {
                    if incoming.peer == id {
                        incoming.peer = new_id.clone();
                    }
                }
                self.emit(EngineEvent::PeerRenamed { old: id, id: new_id });
            }
            PeerEvent::Ready { name, want_snapshot, instance, .. } => {
                // Both ends rejoined signaling under new ids and connected again: this
                // connection replaces the older one with the same run of the same peer.
                if let Some(instance) = &instance {
                    let older: Vec<PeerId> = (self.peers.iter())
                        .filter(|(other, p)| **other != id && p.instance.as_ref() == Some(instance))
                        .map(|(other, _)| other.clone())
                        .collect();
                    for old in older {
                        self.peer_gone(&old, None);
                    }
                }
                let Some(peer) = self.peers.get_mut(&id) else { return };
                peer.instance = instance;
                peer.ready = true;
                peer.connected = true;
                if want_snapshot {
                    for frame in peer.sync.send_snapshot(self.store.doc_mut()) {
                        peer.link.send_sync(frame);
                    }
                }
                if self.media != MediaState::default() {
                    peer.link.send_ctl(media_message(&self.media));
                }
                self.emit(EngineEvent::PeerConnected { id: id.clone(), name });
                self.flush(Some(&id));
            }
            PeerEvent::Sync(frame) => {
                let Some(peer) = self.peers.get_mut(&id) else { return };
                match peer.sync.receive(self.store.doc_mut(), &frame) {
                    Ok(changed) => {
                        if changed {
                            if let Err(e) = self.store.persist() {
                                warn!(error = %e, "cannot store changes from a peer");
                                self.emit(EngineEvent::Error(format!(
                                    "cannot store changes from a peer: {e}"
                                )));
                            }
                            self.report_changes();
                            self.flush(None);
                        } else {
                            self.flush(Some(&id));
                        }
                    }
                    Err(e) => {
                        let reason = format!("the peer sent a bad sync frame: {e}");
                        self.peer_gone(&id, Some(reason));
                    }
                }
            }
            PeerEvent::Ctl(msg) => self.on_ctl(id, msg),
            PeerEvent::Connection(up) => {
                let Some(peer) = self.peers.get_mut(&id) else { return };
                peer.connected = up;
                if !up && peer.signaling_left {
                    self.peer_gone(&id, None);
                }
            }
            PeerEvent::Stats(stats) => self.emit(EngineEvent::Stats { id, stats }),
            PeerEvent::Transfer { id: file, update } => self.on_transfer(id, file, update),
            PeerEvent::Intercepted => {
                self.peers.remove(&id);
                self.fail_transfers_with(&id);
                self.emit(EngineEvent::Intercepted { id });
            }
            PeerEvent::Failed(reason) => {
                let left = self.peers.get(&id).is_some_and(|p| p.signaling_left);
                if self.peers.contains_key(&id) {
                    self.peer_gone(&id, (!left).then_some(reason));
                }
            }
            PeerEvent::Closed => {}
        }
    }

    fn on_ctl(&mut self, id: PeerId, msg: CtlMessage) {
        match msg {
            CtlMessage::Bye {} => self.peer_gone(&id, None),
            CtlMessage::Media { mic, cam, screen, screen_track } => {
                let media = MediaState { mic, cam, screen, screen_track };
                self.emit(EngineEvent::Media { id, media });
            }
            CtlMessage::FileOffer { id: file, name, size, sha256 } => {
                self.on_file_offer(id, file, name, size, sha256)
            }
            CtlMessage::FileAccept { id: file } => {
                let Some(out) = self.outgoing.get(&file) else { return };
                let Some(peer) = self.peers.get(&id).filter(|_| out.peers.contains(&id)) else {
                    return;
                };
                peer.link.send_file(file.clone(), out.info.path.clone(), out.info.size);
                let event = outgoing_event(&file, &id, &out.info, FileState::Progress(0));
                self.emit(EngineEvent::File(event));
            }
            CtlMessage::FileCancel { id: file, reason } => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.link.cancel_file(file.clone());
                }
                self.end_transfer(&id, &file, FileState::Cancelled(reason));
            }
            // The receiver finishes on the bytes and hash; `file_done` adds nothing for us.
            CtlMessage::FileDone { .. } => {}
            // Front ends of the engine show no other editors' cursors yet.
            CtlMessage::Hello { .. } | CtlMessage::Cursor { .. } => {}
        }
    }

    fn on_file_offer(&mut self, peer: PeerId, file: String, name: String, size: u64, sha: String) {
        let Some(link) = self.peers.get(&peer).map(|p| p.link.clone()) else { return };
        let incoming = Incoming { peer, name: transfer::safe_file_name(&name), size, sha256: sha };
        let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let max = self.config.max_file_bytes;
        let problem = if !confab_proto::document::is_uuid_v4(&file) {
            Some("the transfer id is not a UUID".to_owned())
        } else if incoming.sha256.len() != 64 || !is_hex(&incoming.sha256) {
            Some("the sha256 is not 64 lower-case hex digits".to_owned())
        } else if size > max {
            Some(format!("the file is {size} bytes; the limit is {max}"))
        } else if self.incoming.contains_key(&file) {
            Some("a transfer with that id is already under way".to_owned())
        } else {
            None
        };
        if let Some(reason) = problem {
            link.send_ctl(CtlMessage::FileCancel { id: file.clone(), reason: reason.clone() });
            self.emit(EngineEvent::File(incoming_event(
                &file,
                &incoming,
                FileState::Failed(reason),
            )));
            return;
        }
        self.emit(EngineEvent::File(incoming_event(&file, &incoming, FileState::Offered)));
        self.incoming.insert(file.clone(), incoming);
        if self.config.auto_accept_files
            && let Err(e) = self.accept_file(&file)
        {
            self.emit(EngineEvent::Error(e.to_string()));
        }
    }

    fn accept_file(&mut self, file: &str) -> Result<(), EngineError> {
        let incoming = self
            .incoming
            .get(file)
            .ok_or_else(|| EngineError::Refused(format!("no file {file} was offered")))?;
        let peer = self
            .peers
            .get(&incoming.peer)
            .ok_or_else(|| EngineError::Refused("the sender has left".into()))?;
        let expected = Expected {
            name: incoming.name.clone(),
            size: incoming.size,
            sha256: incoming.sha256.clone(),
            download_dir: self.config.download_dir.clone(),
        };
        // The expectation reaches the connection before the peer can hear our accept.
        peer.link.expect_file(file.to_owned(), expected);
        peer.link.send_ctl(CtlMessage::FileAccept { id: file.to_owned() });
        Ok(())
    }

    fn on_transfer(&mut self, peer: PeerId, file: String, update: TransferUpdate) {
        match update {
            TransferUpdate::Progress(bytes) => {
                if let Some(event) = self.file_event(&peer, &file, FileState::Progress(bytes)) {
                    self.emit(EngineEvent::File(event));
                }
            }
            TransferUpdate::Done(path) => {
                if self.outgoing.contains_key(&file)
                    && let Some(p) = self.peers.get(&peer)
                {
                    p.link.send_ctl(CtlMessage::FileDone { id: file.clone() });
                }
                self.end_transfer(&peer, &file, FileState::Done { path });
            }
            TransferUpdate::Failed(reason) => {
                if let Some(p) = self.peers.get(&peer) {
                    p.link.send_ctl(CtlMessage::FileCancel {
                        id: file.clone(),
                        reason: reason.clone(),
                    });
                }
                self.end_transfer(&peer, &file, FileState::Failed(reason));
            }
        }
    }

    fn file_event(&self, peer: &PeerId, file: &str, state: FileState) -> Option<FileEvent> {
        if let Some(out) = self.outgoing.get(file).filter(|o| o.peers.contains(peer)) {
            return Some(outgoing_event(file, peer, &out.info, state));
        }
        let incoming = self.incoming.get(file).filter(|i| &i.peer == peer)?;
        Some(incoming_event(file, incoming, state))
    }

    /// Reports a transfer's last state and forgets it.
    fn end_transfer(&mut self, peer: &PeerId, file: &str, state: FileState) {
        let Some(event) = self.file_event(peer, file, state) else { return };
        match event.direction {
            Direction::Receiving => {
                self.incoming.remove(file);
            }
            Direction::Sending => {
                if let Some(out) = self.outgoing.get_mut(file) {
                    out.peers.remove(peer);
                    if out.peers.is_empty() {
                        self.outgoing.remove(file);
                    }
                }
            }
        }
        self.emit(EngineEvent::File(event));
    }

    fn fail_transfers_with(&mut self, peer: &PeerId) {
        let files: Vec<String> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.peers.contains(peer))
            .map(|(id, _)| id.clone())
            .chain(self.incoming.iter().filter(|(_, i)| &i.peer == peer).map(|(id, _)| id.clone()))
            .collect();
        for file in files {
            self.end_transfer(peer, &file, FileState::Failed("the peer left".into()));
        }
    }

    /// Sends each ready peer (or just `only`) whatever it lacks.
    fn flush(&mut self, only: Option<&PeerId>) {
        let doc = self.store.doc_mut();
        for (id, peer) in self.peers.iter_mut() {
            if !peer.ready || only.is_some_and(|o| o != id) {
                continue;
            }
            while let Some(frame) = peer.sync.poll(doc) {
                peer.link.send_sync(frame);
            }
        }
    }

    /// Reports chat messages not reported before, and the title and notes if they changed.
    fn report_changes(&mut self) {
        for msg in self.store.doc().chat() {
            if self.chat_seen.insert(msg.id.clone()) {
                self.emit(EngineEvent::Chat(msg));
            }
        }
        let title = self.store.doc().title();
        if title != self.title_seen {
            self.title_seen.clone_from(&title);
            self.emit(EngineEvent::Title(title));
        }
        let notes = self.store.doc().notes();
        if notes != self.notes_seen {
            let patches = if self.notes_seen.is_empty() {
                // From nothing (a newcomer's snapshot): one insert, no need to diff a history.
                vec![NotesPatch::Insert { pos: 0, text: notes.clone() }]
            } else {
                self.store.doc_mut().notes_patches_since(&self.heads_seen)
            };
            self.notes_seen.clone_from(&notes);
            self.emit(EngineEvent::Notes { text: notes, patches });
        }
        self.heads_seen = self.store.doc_mut().heads();
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Say(text, reply) => {
                let msg = ChatMessage {
                    id: new_uuid(),
                    author_id: self.config.author_id.clone(),
                    author: self.config.name.to_string(),
                    at: now_ms(),
                    text,
                };
                let _ = reply.send(self.edit(|doc| doc.post_chat(&msg)));
            }
            Command::Splice { pos, delete, text, reply } => {
                let _ = reply.send(self.edit(|doc| doc.splice_notes(pos, delete, &text)));
            }
            Command::SetTitle(title, reply) => {
                let _ = reply.send(self.edit(|doc| doc.set_title(&title)));
            }
            Command::Markdown(reply) => {
                let _ = reply.send(self.store.doc().to_markdown());
            }
            Command::OfferFile(info, reply) => {
                let _ = reply.send(self.offer_file(info));
            }
            Command::AcceptFile(file, reply) => {
                let _ = reply.send(self.accept_file(&file));
            }
            Command::CancelFile(file) => self.cancel_file(&file),
            Command::SetMedia(media) => {
                let msg = media_message(&media);
                for peer in self.peers.values().filter(|p| p.ready) {
                    peer.link.send_ctl(msg.clone());
                }
                self.media = media;
            }
            Command::Leave => {}
        }
    }

    fn offer_file(&mut self, info: FileInfo) -> Result<String, EngineError> {
        let ready: HashSet<PeerId> =
            self.peers.iter().filter(|(_, p)| p.ready).map(|(id, _)| id.clone()).collect();
        if ready.is_empty() {
            return Err(EngineError::Refused("nobody is connected to send the file to".into()));
        }
        let file = new_uuid();
        let offer = CtlMessage::FileOffer {
            id: file.clone(),
            name: info.name.clone(),
            size: info.size,
            sha256: info.sha256.clone(),
        };
        for id in &ready {
            if let Some(peer) = self.peers.get(id) {
                peer.link.send_ctl(offer.clone());
            }
            self.emit(EngineEvent::File(outgoing_event(&file, id, &info, FileState::Offered)));
        }
        self.outgoing.insert(file.clone(), Outgoing { info, peers: ready });
        Ok(file)
    }

    fn cancel_file(&mut self, file: &str) {
        let peers: Vec<PeerId> = match (self.outgoing.get(file), self.incoming.get(file)) {
            (Some(out), _) => out.peers.iter().cloned().collect(),
            (None, Some(incoming)) => vec![incoming.peer.clone()],
            (None, None) => return,
        };
        let reason = "cancelled by the user".to_owned();
        for id in peers {
            if let Some(peer) = self.peers.get(&id) {
                peer.link.cancel_file(file.to_owned());
                peer.link.send_ctl(CtlMessage::FileCancel {
                    id: file.to_owned(),
                    reason: reason.clone(),
                });
            }
            self.end_transfer(&id, file, FileState::Cancelled(reason.clone()));
        }
    }

    /// A local edit: stored first, then reported and sent to the peers.
    fn edit(
        &mut self,
        edit: impl FnOnce(&mut crate::MeetingDoc) -> Result<(), crate::DocError>,
    ) -> Result<(), EngineError> {
        self.store.edit(edit)?.map_err(|e| EngineError::Refused(e.to_string()))?;
        self.report_changes();
        self.flush(None);
        Ok(())
    }
}

fn media_message(media: &MediaState) -> CtlMessage {
    CtlMessage::Media {
        mic: media.mic,
        cam: media.cam,
        screen: media.screen,
        screen_track: media.screen_track.clone(),
    }
}

fn incoming_event(file: &str, incoming: &Incoming, state: FileState) -> FileEvent {
    FileEvent {
        id: file.to_owned(),
        peer: incoming.peer.clone(),
        name: incoming.name.clone(),
        size: incoming.size,
        direction: Direction::Receiving,
        state,
    }
}

fn outgoing_event(file: &str, peer: &PeerId, info: &FileInfo, state: FileState) -> FileEvent {
    FileEvent {
        id: file.to_owned(),
        peer: peer.clone(),
        name: info.name.clone(),
        size: info.size,
        direction: Direction::Sending,
        state,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random UUID v4 in its usual text form.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_v4() {
        for _ in 0..100 {
            assert!(confab_proto::document::is_uuid_v4(&super::new_uuid()));
        }
    }
}
