//! The meeting engine: one task that owns the stored document, one [`PeerSync`] and one
//! [`PeerLink`] per peer, and the signaling client, and turns what they report into
//! [`EngineEvent`]s for a front end. Front ends drive it through [`Engine`].
//!
//! Everything that changes the document happens in this task, in order: a local edit is on disk
//! (through [`StoredDoc`]) before it is reported, and changes from a peer are on disk before they
//! are passed on to the other peers or reported.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use automerge::ActorId;
use confab_proto::document::ChatMessage;
use confab_proto::{ClientKind, CtlMessage, DisplayName, MeetingLink, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::peer::{self, PeerEvent, PeerLink, PeerSetup};
use crate::signaling_client::{self, Signaling, SignalingConfig, SignalingEvent};
use crate::store::{StoreError, StoredDoc};
use crate::sync::PeerSync;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub link: MeetingLink,
    pub name: DisplayName,
    pub client: ClientKind,
    pub app_version: String,
    /// Where meetings' documents are kept (`DATA_DIR/rooms/ROOM/`).
    pub data_dir: PathBuf,
    /// Stable per-install id written as the author of chat messages.
    pub author_id: String,
    /// The local address ICE binds to.
    pub bind: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    Joined {
        you: PeerId,
    },
    PeerConnected {
        id: PeerId,
        name: String,
    },
    PeerLeft {
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
    /// The notes changed; the whole text.
    Notes(String),
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

enum Command {
    Say(String, oneshot::Sender<Result<(), EngineError>>),
    Splice {
        pos: usize,
        delete: usize,
        text: String,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
    Markdown(oneshot::Sender<String>),
    Leave,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Say(..) => "Say",
            Self::Splice { .. } => "Splice",
            Self::Markdown(_) => "Markdown",
            Self::Leave => "Leave",
        })
    }
}

/// The handle a front end holds.
#[derive(Debug, Clone)]
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
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
        tokio::spawn(run(config, store, command_rx, events));
        Ok((Self { commands }, event_rx))
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

    /// Title, notes and chat transcript as Markdown.
    pub async fn markdown(&self) -> Result<String, EngineError> {
        self.ask(Command::Markdown).await
    }

    pub fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
    }
}

struct Peer {
    link: PeerLink,
    sync: PeerSync,
    ready: bool,
}

struct State {
    config: EngineConfig,
    store: StoredDoc,
    signaling: Signaling,
    me: Option<PeerId>,
    ice_servers: Vec<confab_proto::IceServer>,
    peers: HashMap<PeerId, Peer>,
    peer_events: mpsc::UnboundedSender<(PeerId, PeerEvent)>,
    events: mpsc::UnboundedSender<EngineEvent>,
    /// Whether we already asked one peer for a snapshot.
    asked_snapshot: bool,
    chat_seen: HashSet<String>,
    notes_seen: String,
}

async fn run(
    config: EngineConfig,
    store: StoredDoc,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<EngineEvent>,
) {
    let (signaling, mut signaling_events) = signaling_client::spawn(SignalingConfig {
        link: config.link.clone(),
        name: config.name.clone(),
        client: config.client,
        app_version: config.app_version.clone(),
    });
    let (peer_events, mut peer_rx) = mpsc::unbounded_channel();
    let mut state = State {
        config,
        store,
        signaling,
        me: None,
        ice_servers: Vec::new(),
        peers: HashMap::new(),
        peer_events,
        events,
        asked_snapshot: false,
        chat_seen: HashSet::new(),
        notes_seen: String::new(),
    };
    // What is stored already counts as seen: report only what is new from here on.
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
    for peer in state.peers.values() {
        peer.link.send_ctl(CtlMessage::Bye {});
        peer.link.close();
    }
    state.signaling.leave();
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
        };
        let link = peer::spawn(setup, self.peer_events.clone());
        if let Some(old) =
            self.peers.insert(remote, Peer { link, sync: PeerSync::new(), ready: false })
        {
            old.link.close();
        }
    }

    fn on_signaling(&mut self, event: SignalingEvent) {
        match event {
            SignalingEvent::Joined { you, peers, ice_servers, .. } => {
                info!(peers = peers.len(), "joined the meeting");
                self.me = Some(you.clone());
                self.ice_servers = ice_servers;
                self.emit(EngineEvent::Joined { you });
                // The newcomer offers to everyone already there that it is not connected to.
                for p in peers {
                    if !self.peers.get(&p.id).is_some_and(|peer| peer.ready) {
                        self.connect(p.id, true);
                    }
                }
            }
            SignalingEvent::PeerJoined(p) => self.connect(p.id, false),
            SignalingEvent::PeerLeft(id) => {
                if let Some(peer) = self.peers.remove(&id) {
                    peer.link.close();
                }
                self.emit(EngineEvent::PeerLeft { id });
            }
            SignalingEvent::Signal { from, data } => match self.peers.get(&from) {
                Some(peer) => peer.link.remote_signal(data.data().clone()),
                None => warn!(peer = %from, "signal from a peer we do not know"),
            },
            SignalingEvent::Refused { code, message } => {
                warn!(%code, %message, "signaling refused a message")
            }
            SignalingEvent::Reconnecting { .. } | SignalingEvent::Ended { .. } => {}
        }
    }

    fn on_peer(&mut self, id: PeerId, event: PeerEvent) {
        match event {
            PeerEvent::Signal(data) => self.signaling.signal(id, data.into()),
            PeerEvent::Ready { name, want_snapshot, .. } => {
                let Some(peer) = self.peers.get_mut(&id) else { return };
                peer.ready = true;
                if want_snapshot {
                    for frame in PeerSync::snapshot_frames(self.store.doc_mut()) {
                        peer.link.send_sync(frame);
                    }
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
                            }
                            self.report_changes();
                            self.flush(None);
                        } else {
                            self.flush(Some(&id));
                        }
                    }
                    Err(e) => {
                        let reason = format!("the peer sent a bad sync frame: {e}");
                        self.drop_peer(&id, reason);
                    }
                }
            }
            PeerEvent::Ctl(CtlMessage::Bye {}) => {
                if let Some(peer) = self.peers.remove(&id) {
                    peer.link.close();
                }
            }
            PeerEvent::Ctl(_) => {}
            PeerEvent::Intercepted => {
                self.peers.remove(&id);
                self.emit(EngineEvent::Intercepted { id });
            }
            PeerEvent::Failed(reason) => {
                if self.peers.remove(&id).is_some() {
                    self.emit(EngineEvent::PeerFailed { id, reason });
                }
            }
            PeerEvent::Closed => {}
        }
    }

    fn drop_peer(&mut self, id: &PeerId, reason: String) {
        if let Some(peer) = self.peers.remove(id) {
            peer.link.close();
            self.emit(EngineEvent::PeerFailed { id: id.clone(), reason });
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

    /// Reports chat messages not reported before, and the notes if they changed.
    fn report_changes(&mut self) {
        for msg in self.store.doc().chat() {
            if self.chat_seen.insert(msg.id.clone()) {
                self.emit(EngineEvent::Chat(msg));
            }
        }
        let notes = self.store.doc().notes();
        if notes != self.notes_seen {
            self.notes_seen = notes.clone();
            self.emit(EngineEvent::Notes(notes));
        }
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
            Command::Markdown(reply) => {
                let _ = reply.send(self.store.doc().to_markdown());
            }
            Command::Leave => {}
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random UUID v4 in its usual text form.
fn new_uuid() -> String {
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
