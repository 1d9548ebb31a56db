//! The meeting's decisions as a pure state machine: who is in the meeting, which connection
//! stands for which peer, what the notes and chat hold and who still lacks what, and how file
//! offers go. [`Mesh::handle`] takes one [`Input`] and returns the [`Output`]s to carry out, in
//! order; [`Mesh::command`] does the same for what a front end asks. No sockets, no clock, no
//! threads, randomness only from the seed it is made with, and ordered maps only (iteration
//! order decides the order of outputs), so every rule here is a plain test, and a run of many
//! meshes over a simulated network replays exactly from its seed.
//!
//! The driver ([`crate::engine`]) owns the sockets: it feeds in what signaling and the
//! connections report, and carries the outputs out. An [`Output::Persist`] must be on disk
//! before any output after it is carried out: that is how an edit is stored before it is
//! reported, and a peer's changes before they are passed on.
//!
//! The rules (docs/protocol.md §2–§3):
//! - The newcomer offers to everyone signaling lists in its welcome; peers already there wait
//!   for the offer. An offer from a peer signaling never announced is dropped.
//! - Connections outlive signaling. When we rejoin (with a new id), verified connections are
//!   kept and re-keyed, half-made ones are closed. A peer is gone when it says `bye`, when its
//!   connection fails, or when signaling says it left while its connection is down too.
//! - A verified hello naming an `instance` that another connection already has replaces that
//!   connection (both ends rejoined and connected again). An offer whose DTLS fingerprint differs
//!   from the live connection's is a new connection and replaces it.
//! - A connection whose hello fails to verify is dropped and reported as intercepted.
//! - A connection that fails while signaling still lists the peer is made again, from both ends
//!   (perfect negotiation settles the two offers), at most [`MAX_RECONNECTS`] times in a row.

mod cursors;
mod files;
mod intake;
mod membership;
mod notes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use confab_proto::document::ChatMessage;
use confab_proto::text::utf16_to_char;
use confab_proto::{CtlMessage, IceServer, PeerId, SignalData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::EngineError;
use crate::api::{self, EngineEvent, FileState, MediaState};
use crate::document::MeetingDoc;
use crate::peer::PeerEvent;
use crate::signaling_client::SignalingEvent;
use crate::sync::PeerSync;
use crate::transfer::{Expected, FileInfo};

use files::Files;

/// How many times in a row a failed connection to a peer that is still in the meeting is made
/// again (each attempt takes up to the connect timeout of 30 s).
pub const MAX_RECONNECTS: u32 = 5;

/// Names one connection for as long as it lives; never reused within a mesh. A peer's id can
/// change (it rejoins signaling) while its connection stays, so connections have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What the mesh needs to know of us.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub name: String,
    /// Stable per-install id written as the author of chat messages.
    pub author_id: String,
    /// Files larger than this are neither offered nor accepted.
    pub max_file_bytes: u64,
    /// Accept every file offered (within the limit) without asking the front end.
    pub auto_accept_files: bool,
    pub download_dir: PathBuf,
    /// What we send from the start.
    pub media: MediaState,
}

/// Everything that happens to the mesh.
#[derive(Debug)]
pub enum Input {
    Signaling(SignalingEvent),
    /// A connection reports.
    Link {
        link: LinkId,
        event: PeerEvent,
    },
    /// This machine's network addresses changed.
    NetworkChanged,
    /// The time a [`Output::FlushAt`] asked for has come.
    Flush,
}

/// What a front end asks.
#[derive(Debug)]
pub enum Command {
    /// A chat message, stamped with the time of the command.
    Say(String),
    /// Edits the notes: `delete` UTF-16 units at UTF-16 position `pos`, then `text` there.
    Splice {
        pos: usize,
        delete: usize,
        text: String,
    },
    /// Adds to the end of the notes.
    Append(String),
    SetTitle(String),
    /// Our selection in the notes moved, or left them.
    Cursor(Option<api::NotesSelection>),
    /// Offers a file (already inspected) to everyone connected.
    OfferFile(FileInfo),
    AcceptFile(String),
    DeclineFile(String),
    CancelFile(String),
    SetMedia(MediaState),
}

/// What a command returns when it succeeds.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Applied,
    /// A file was offered under this transfer id.
    Offered(String),
}

/// What the driver carries out.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Store these document changes; nothing after this output may happen before they are.
    Persist(Vec<u8>),
    /// Relay through signaling.
    Signal {
        to: PeerId,
        data: SignalData,
    },
    /// Act on one connection.
    Link {
        link: LinkId,
        command: LinkCommand,
    },
    Event(EngineEvent),
    /// Give the mesh [`Input::Flush`] at this time (Unix ms): sync messages wait for the pace.
    FlushAt(i64),
}

/// What a connection is told to do.
#[derive(Debug, PartialEq)]
pub enum LinkCommand {
    /// Make the connection.
    Open(LinkSetup),
    /// A signal from the peer.
    Remote(SignalData),
    SendSync(Vec<u8>),
    SendCtl(CtlMessage),
    /// Take the `file:ID` channel the peer will open for an offer we accepted.
    ExpectFile {
        id: String,
        expected: Expected,
    },
    /// Open `file:ID` and stream the file.
    SendFile {
        id: String,
        path: PathBuf,
        size: u64,
    },
    CancelFile(String),
    /// We rejoined signaling under this id: tell the peer in a fresh hello.
    Rekey(PeerId),
    /// This machine's addresses changed: restart ICE on the ones it has now.
    NetworkChanged,
    /// The peer rejoined signaling before re-keying this connection, and is now this id: what
    /// we signalled its old id is lost.
    PeerRejoined(PeerId),
    /// Say `bye`, then close.
    Leave,
    Close,
}

/// A connection about to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSetup {
    pub me: PeerId,
    pub remote: PeerId,
    pub offerer: bool,
    pub want_snapshot: bool,
    pub instance: String,
    pub ice_servers: Vec<IceServer>,
}

#[derive(Debug)]
struct Peer {
    link: LinkId,
    sync: PeerSync,
    /// The peer's hello verified.
    ready: bool,
    /// The connection is up right now.
    connected: bool,
    /// Signaling said it left; it stays while its connection does.
    signaling_left: bool,
    /// The peer's run, from its hello.
    instance: Option<String>,
    /// The DTLS fingerprint of the peer's first description: an offer with another one is a
    /// new connection from the same peer, not a renegotiation of this one.
    remote_fingerprint: Option<String>,
    /// The peer's selection in the notes, as Automerge cursors (anchor, head).
    cursor: Option<(String, String)>,
    /// How much more the peer may send us now.
    intake: intake::Intake,
    /// How many sync messages we may send it now (see `notes::Pace`).
    pace: notes::Pace,
}

/// The meeting as one participant sees it.
#[derive(Debug)]
pub struct Mesh {
    config: MeshConfig,
    doc: MeetingDoc,
    rng: StdRng,
    /// This run of ours, named in our hellos.
    instance: String,
    me: Option<PeerId>,
    ice_servers: Vec<IceServer>,
    /// Who signaling says is in the meeting now (offers from anyone else are dropped).
    members: BTreeSet<PeerId>,
    peers: BTreeMap<PeerId, Peer>,
    /// Which peer each live connection stands for.
    links: BTreeMap<LinkId, PeerId>,
    next_link: u64,
    /// The ids the front end was told of (joined, connected, renamed to) and not yet told are
    /// gone: each going is reported once, and only for what was shown.
    /// `true` once shown as connected.
    shown: BTreeMap<PeerId, bool>,
    /// Whether we already asked one peer for a snapshot.
    asked_snapshot: bool,
    media: MediaState,
    files: Files,
    chat_seen: BTreeSet<String>,
    notes_seen: String,
    /// Our selection in the notes, as Automerge cursors (anchor, head).
    cursor: Option<(String, String)>,
    /// The others' selections as the front end was last told them.
    cursors_reported: Vec<crate::api::RemoteCursor>,
    /// Peers disconnected for flooding: no connection is made with them again under that id.
    flooders: BTreeSet<PeerId>,
    /// Our own earlier signaling ids: a server that has not yet noticed our old connection died
    /// still lists it, and it is not someone else.
    former_ids: BTreeSet<PeerId>,
    /// The [`Output::FlushAt`] outstanding, if any.
    flush_at: Option<i64>,
    title_seen: String,
    out: Vec<Output>,
    /// The time of the input being handled.
    now_ms: i64,
    /// Connections made again to each peer since it last connected.
    reconnects: BTreeMap<PeerId, u32>,
}

impl Mesh {
    /// A mesh over `doc` (what is stored already); `seed` drives every id it makes. Its first
    /// outputs report the stored document, whole, so a front end starts from it.
    pub fn new(config: MeshConfig, doc: MeetingDoc, seed: u64) -> (Self, Vec<Output>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let instance = uuid_v4(&mut rng);
        let media = config.media.clone();
        let mut mesh = Self {
            config,
            doc,
            rng,
            instance,
            me: None,
            ice_servers: Vec::new(),
            members: BTreeSet::new(),
            peers: BTreeMap::new(),
            links: BTreeMap::new(),
            next_link: 0,
            shown: BTreeMap::new(),
            asked_snapshot: false,
            media,
            files: Files::default(),
            chat_seen: BTreeSet::new(),
            notes_seen: String::new(),
            cursor: None,
            cursors_reported: Vec::new(),
            flooders: BTreeSet::new(),
            former_ids: BTreeSet::new(),
            flush_at: None,
            title_seen: String::new(),
            out: Vec::new(),
            now_ms: 0,
            reconnects: BTreeMap::new(),
        };
        mesh.report_changes();
        let out = std::mem::take(&mut mesh.out);
        (mesh, out)
    }

    pub fn doc(&self) -> &MeetingDoc {
        &self.doc
    }

    /// The whole document as `save()` bytes (to compact the store).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Our id in signaling, once joined.
    pub fn me(&self) -> Option<&PeerId> {
        self.me.as_ref()
    }

    /// The peers whose hello verified, by their current id.
    pub fn connected_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.iter().filter(|(_, p)| p.ready).map(|(id, _)| id)
    }

    /// The live connections (to close them all on leaving).
    pub fn links(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.links.keys().copied()
    }

    /// Handles what happened at `now_ms` (Unix milliseconds, or virtual ones in a simulation).
    pub fn handle(&mut self, now_ms: i64, input: Input) -> Vec<Output> {
        self.set_time(now_ms);
        match input {
            Input::Signaling(event) => self.on_signaling(event),
            Input::Link { link, event } => self.on_link(link, event),
            Input::Flush => {
                self.flush_at = None;
                self.flush(None);
            }
            Input::NetworkChanged => {
                let links: Vec<LinkId> = self.links.keys().copied().collect();
                for link in links {
                    self.tell(link, LinkCommand::NetworkChanged);
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Carries out what a front end asked at `now_ms`.
    pub fn command(
        &mut self,
        now_ms: i64,
        command: Command,
    ) -> (Result<Done, EngineError>, Vec<Output>) {
        self.set_time(now_ms);
        let result = self.on_command(command);
        (result, std::mem::take(&mut self.out))
    }

    fn set_time(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        self.doc.set_time(now_ms.div_euclid(1000));
    }

    fn emit(&mut self, event: EngineEvent) {
        self.out.push(Output::Event(event));
    }

    fn tell(&mut self, link: LinkId, command: LinkCommand) {
        self.out.push(Output::Link { link, command });
    }

    /// Tells the connection of peer `id`, if there is one.
    fn tell_peer(&mut self, id: &PeerId, command: LinkCommand) {
        if let Some(link) = self.peers.get(id).map(|p| p.link) {
            self.tell(link, command);
        }
    }

    fn doc_is_empty(&self) -> bool {
        self.doc.notes().is_empty() && self.doc.title().is_empty() && self.doc.chat().is_empty()
    }

    fn on_signaling(&mut self, event: SignalingEvent) {
        match event {
            SignalingEvent::Joined { you, peers, ice_servers, .. } => {
                self.joined(you, peers, ice_servers)
            }
            SignalingEvent::PeerJoined(p) if self.former_ids.contains(&p.id) => {}
            SignalingEvent::PeerJoined(p) => {
                // It offers; its connection is made when the offer arrives.
                self.members.insert(p.id.clone());
                self.reconnects.remove(&p.id);
                self.shown.entry(p.id.clone()).or_insert(false);
                self.emit(EngineEvent::PeerJoined {
                    id: p.id,
                    name: p.name.into(),
                    client: p.client,
                });
            }
            SignalingEvent::PeerLeft(id) => {
                self.members.remove(&id);
                match self.peers.get_mut(&id) {
                    Some(peer) if peer.ready && peer.connected => peer.signaling_left = true,
                    _ => self.peer_gone(&id, None),
                }
            }
            SignalingEvent::Signal { from, data } => self.on_signal(from, data.data().clone()),
            SignalingEvent::Reconnecting { retry_in, reason } => {
                self.emit(EngineEvent::Reconnecting { retry_in, reason });
            }
            // The driver logs refusals and ends on `Ended`.
            SignalingEvent::Refused { .. } | SignalingEvent::Ended { .. } => {}
        }
    }

    fn on_link(&mut self, link: LinkId, event: PeerEvent) {
        // A connection that was replaced or closed may still report on its way out.
        let Some(id) = self.links.get(&link).cloned() else { return };
        match event {
            PeerEvent::Signal(data) => self.out.push(Output::Signal { to: id, data }),
            PeerEvent::Rekeyed(new_id) => self.rekeyed(id, new_id),
            PeerEvent::Ready { name, want_snapshot, instance, .. } => {
                self.ready(id, name, want_snapshot, instance)
            }
            PeerEvent::Sync(frame) => {
                if self.admit(&id, frame.len()) {
                    self.on_sync(id, &frame);
                }
            }
            PeerEvent::Ctl(msg) => {
                if self.admit(&id, msg.encode().len()) {
                    self.on_ctl(id, msg);
                }
            }
            PeerEvent::Connection(up) => {
                let Some(peer) = self.peers.get_mut(&id) else { return };
                let changed = peer.connected != up;
                peer.connected = up;
                if !up && peer.signaling_left {
                    self.peer_gone(&id, None);
                } else if changed && peer.ready && self.shown.contains_key(&id) {
                    self.emit(EngineEvent::PeerConnection { id, up });
                }
            }
            PeerEvent::Stats(stats) => self.emit(EngineEvent::Stats { id, stats }),
            PeerEvent::Transfer { id: file, update } => self.on_transfer(id, file, update),
            PeerEvent::Intercepted => {
                self.drop_connection(&id);
                self.fail_transfers_with(&id);
                self.shown.remove(&id);
                self.emit(EngineEvent::Intercepted { id });
            }
            PeerEvent::Failed(reason) => {
                let left = self.peers.get(&id).is_some_and(|p| p.signaling_left);
                self.peer_gone(&id, (!left).then(|| reason.to_string()));
                self.connect_again(&id);
            }
            PeerEvent::Closed => {
                self.links.remove(&link);
            }
        }
    }

    /// Whether a message of `bytes` from peer `id` is within what it may send; a flooding peer
    /// is disconnected, and the others carry on.
    fn admit(&mut self, id: &PeerId, bytes: usize) -> bool {
        let now = self.now_ms;
        let Some(peer) = self.peers.get_mut(id) else { return false };
        if peer.intake.take(now, bytes) {
            return true;
        }
        self.flooders.insert(id.clone());
        let why = "it sent far more than a meeting needs, and was disconnected";
        self.peer_gone(id, Some(why.into()));
        false
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
                let Some(link) = self.peers.get(&id).map(|p| p.link) else { return };
                if let Some((command, event)) = self.files.accepted(&file, &id) {
                    self.tell(link, command);
                    self.emit(EngineEvent::File(event));
                }
            }
            CtlMessage::FileCancel { id: file, reason } => {
                self.tell_peer(&id, LinkCommand::CancelFile(file.clone()));
                self.end_transfer(&id, &file, FileState::Cancelled { reason });
            }
            // The receiver finishes on the bytes and hash; `file_done` adds nothing for us.
            CtlMessage::FileDone { .. } => {}
            CtlMessage::Cursor { anchor, head } => self.on_cursor(&id, anchor, head),
            // Hellos are the connection's to verify; one arriving later changes nothing.
            CtlMessage::Hello { .. } => {}
        }
    }

    fn on_command(&mut self, command: Command) -> Result<Done, EngineError> {
        match command {
            Command::Say(text) => {
                let msg = ChatMessage {
                    id: uuid_v4(&mut self.rng),
                    author_id: self.config.author_id.clone(),
                    author: self.config.name.clone(),
                    at: self.now_ms,
                    text,
                };
                self.edit(|doc| doc.post_chat(&msg))
            }
            Command::Splice { pos, delete, text } => {
                // The text last reported is the document's: every change is reported at once.
                let notes = &self.notes_seen;
                let at = |utf16| utf16_to_char(notes, utf16).map_err(|e| refused(&e.to_string()));
                let start = at(pos)?;
                let end =
                    at(pos.checked_add(delete).ok_or_else(|| refused("too long a delete"))?)?;
                self.edit(|doc| doc.splice_notes(start, end - start, &text))
            }
            Command::Append(text) => {
                let end = self.doc.notes_len();
                self.edit(|doc| doc.splice_notes(end, 0, &text))
            }
            Command::SetTitle(title) => self.edit(|doc| doc.set_title(&title)),
            Command::Cursor(selection) => self.set_cursor(selection),
            Command::OfferFile(info) => self.offer_file(info),
            Command::AcceptFile(file) => self.accept_file(&file),
            Command::DeclineFile(file) => {
                let peer = self.files.incoming_peer(&file).ok_or_else(|| no_offer(&file))?;
                self.stop_file(&file, vec![peer], "declined");
                Ok(Done::Applied)
            }
            Command::CancelFile(file) => {
                let peers = self.files.peers_of(&file);
                if peers.is_empty() {
                    return Err(no_offer(&file));
                }
                self.stop_file(&file, peers, "cancelled by the user");
                Ok(Done::Applied)
            }
            Command::SetMedia(media) => {
                let msg = media_message(&media);
                let ready: Vec<LinkId> =
                    self.peers.values().filter(|p| p.ready).map(|p| p.link).collect();
                for link in ready {
                    self.tell(link, LinkCommand::SendCtl(msg.clone()));
                }
                self.media = media;
                Ok(Done::Applied)
            }
        }
    }
}

fn refused(why: &str) -> EngineError {
    EngineError::Refused(why.to_owned())
}

fn no_offer(file: &str) -> EngineError {
    EngineError::Refused(format!("no transfer {file} is under way"))
}

pub(crate) fn media_message(media: &MediaState) -> CtlMessage {
    CtlMessage::Media {
        mic: media.mic,
        cam: media.cam,
        screen: media.screen,
        screen_track: media.screen_track.clone(),
    }
}

/// A random UUID v4 in its usual text form.
pub(crate) fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
