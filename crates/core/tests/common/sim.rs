//! A meeting in virtual time: several [`Mesh`]es, signaling's own pure [`Hub`] as the server,
//! and simulated connections between them, with no sockets and no clock. Every delay comes from
//! one seeded RNG, so a run replays exactly from its seed.
//!
//! What is simulated, and how faithfully:
//! - Signaling: one ordered connection per participant, delayed; dropping it (a cut, or the
//!   server restarting) tells the hub the participant left and the participant that it is
//!   reconnecting, and it joins again under a new id once it can.
//! - Connections: what `peer/mod.rs` does around a real `RTCPeerConnection`. The offerer's and the
//!   answerer's descriptions carry per-connection fingerprints; once both ends know each other's,
//!   the connection comes up (if the two can reach each other), each side sends its hello, and a
//!   hello verifies when it names the id the connection was made for. Channels are reliable and
//!   ordered, delayed; while the two cannot reach each other, frames wait (SCTP retransmits) and
//!   the connection is reported down after 3 s and failed after 15 s. Closing one end fails the
//!   other.
//! - Disk: every [`Output::Persist`] is appended to the participant's "disk"; a participant
//!   that leaves (or crashes) and comes back starts a new mesh from it, as a fresh actor, as the
//!   engine does. A crash comes right after a local edit was sent and before its disk sync, the
//!   one moment the engine lets the peers be ahead of the disk, so the disk lacks that edit.
#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use automerge::ActorId;
use confab_core::MeetingDoc;
use confab_core::api::{EngineEvent, MediaState, NotesPatch};
use confab_core::mesh::{Command, Input, LinkCommand, LinkId, Mesh, MeshConfig, Output};
use confab_core::peer::negotiation::{Negotiation, Step};
use confab_core::peer::{PeerError, PeerEvent};
use confab_core::signaling_client::SignalingEvent;
use confab_proto::{
    ClientKind, CtlMessage, DisplayName, Limits, PeerId, PeerInfo, RoomId, SdpType, ServerMessage,
    SessionDescription, SignalData,
};
use confab_signaling::hub::{self, Hub};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Up and down times of a simulated connection (virtual milliseconds).
const DOWN_AFTER_MS: u64 = 3_000;
const FAIL_AFTER_MS: u64 = 15_000;
/// A connection whose hello has not verified by then fails (as `peer/mod.rs` does).
const CONNECT_TIMEOUT_MS: u64 = 30_000;
/// How often held frames are tried again while the two ends cannot reach each other.
const RETRANSMIT_MS: u64 = 200;
/// More events than any run of these sizes needs: past it, something loops without end.
const MAX_EVENTS: u64 = 500_000;

/// A connection: its participant, that participant's run (link ids start again with each
/// run's mesh), and the mesh's link id.
type LinkKey = (usize, u32, LinkId);

#[derive(Debug)]
enum Ev {
    /// A client's message reaches the server, if that connection still stands.
    ToServer {
        from: usize,
        conn: u64,
        msg: ToServer,
    },
    /// The server's message reaches a client, if that connection still stands.
    ToClient {
        to: usize,
        conn: u64,
        event: SignalingEvent,
    },
    Reconnect {
        who: usize,
    },
    /// Both ends of a connection come up.
    LinkUp {
        a: LinkKey,
        b: LinkKey,
    },
    /// Deliver what is due on a connection's way from `from`.
    Pump {
        from: LinkKey,
    },
    /// Has a connection been cut off long enough to be down, or failed?
    CheckPath {
        link: LinkKey,
        epoch: u64,
    },
    ConnectDeadline {
        link: LinkKey,
    },
    /// The peer's end closed: its channels close here.
    RemoteClosed {
        link: LinkKey,
    },
    /// The time a participant's mesh asked to flush has come (if it still runs).
    Flush {
        who: usize,
        run: u32,
    },
}

#[derive(Debug)]
enum ToServer {
    Join,
    Signal { to: PeerId, data: SignalData },
}

/// What travels on a connection's data channels.
#[derive(Debug, Clone)]
enum Frame {
    /// `mac_ok`: whether the sender holds the meeting key (its `fp_mac` would verify).
    Hello {
        peer_id: PeerId,
        name: String,
        want_snapshot: bool,
        instance: String,
        mac_ok: bool,
    },
    Sync(Vec<u8>),
    Ctl(CtlMessage),
}

#[derive(Debug)]
struct SimLink {
    me: PeerId,
    remote: PeerId,
    want_snapshot: bool,
    instance: String,
    local_fp: String,
    remote_fp: Option<String>,
    /// The real perfect-negotiation rules: when both ends offer at once, one gives way.
    negotiation: Negotiation,
    /// The other end, once connected.
    peer: Option<LinkKey>,
    up: bool,
    /// Reported down to the mesh (cut off for a while).
    down: bool,
    hello_sent: bool,
    verified: bool,
    early: Vec<PeerEvent>,
    closed: bool,
    /// Frames on their way to the peer, with the time each may arrive.
    outbox: VecDeque<(u64, Frame)>,
    /// Bumped whenever the path changes, so that stale checks do nothing.
    path_epoch: u64,
}

/// What a front end would show, built from the events only.
#[derive(Debug, Default)]
pub struct View {
    pub me: Option<PeerId>,
    pub connected: BTreeMap<PeerId, String>,
    pub chat_ids: Vec<String>,
    pub notes: String,
    pub title: String,
    /// The most peers it ever showed at once.
    pub most_shown: usize,
}

#[derive(Debug)]
pub struct Participant {
    pub name: String,
    pub mesh: Option<Mesh>,
    /// Every change it stored, in order.
    disk: Vec<u8>,
    /// The disk's length before its last write, when that write was of a local edit (sent
    /// already): what a crash leaves.
    unsynced: Option<usize>,
    /// The current signaling connection: its serial and, once welcomed, our id on it.
    conn: Option<(u64, Option<PeerId>)>,
    /// How many times its engine started.
    run: u32,
    reconnect_scheduled: bool,
    pub view: View,
    /// Every event it reported, in order.
    pub log: Vec<EngineEvent>,
    /// It holds another key than everyone else (its hellos fail to verify).
    pub wrong_key: bool,
    /// Problems seen as events arrived (a chat message reported twice, say).
    pub violations: Vec<String>,
    /// When it sent each sync message, and to whom.
    pub sync_sent: Vec<(u64, usize)>,
}

#[derive(Debug)]
pub struct Sim {
    pub seed: u64,
    pub rng: StdRng,
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Ev>,
    hub: Hub,
    room: RoomId,
    /// Which participant and connection each server-side id belongs to.
    server_ids: HashMap<PeerId, (usize, u64)>,
    /// Seats whose connection died without the server noticing yet.
    unnoticed: Vec<PeerId>,
    next_conn: u64,
    pub parts: Vec<Participant>,
    links: BTreeMap<LinkKey, SimLink>,
    /// Pairs (low, high) of participants that cannot reach each other.
    cut: BTreeSet<(usize, usize)>,
    /// Participants that cannot reach the signaling server.
    off_signaling: BTreeSet<usize>,
    server_up: bool,
    /// When the last message on each signaling connection is due, each way: a WebSocket keeps
    /// its messages in order.
    signaling_due: HashMap<(u64, bool), u64>,
    /// The last things that happened, to show with a failure.
    pub trace: VecDeque<String>,
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let room = random_id(&mut rng).as_str().parse().unwrap();
        Self {
            seed,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            hub: Hub::new(8),
            room,
            server_ids: HashMap::new(),
            unnoticed: Vec::new(),
            next_conn: 0,
            parts: Vec::new(),
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            off_signaling: BTreeSet::new(),
            server_up: true,
            signaling_due: HashMap::new(),
            trace: VecDeque::new(),
        }
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>7} ms  {what}", self.now));
    }

    fn at(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    fn delay(&mut self, low: u64, high: u64) -> u64 {
        self.rng.random_range(low..=high)
    }

    /// Sends on a signaling connection (`up`: to the server), in order behind what it carries.
    fn on_signaling(&mut self, conn: u64, up: bool, ev: Ev) {
        let delay = self.delay(5, 40);
        let last = self.signaling_due.get(&(conn, up)).copied().unwrap_or(0);
        let due = (self.now + delay).max(last);
        self.signaling_due.insert((conn, up), due);
        self.at(due - self.now, ev);
    }

    /// Virtual milliseconds since the start.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// A new participant with an empty document; it joins at once.
    pub fn add(&mut self, name: &str) -> usize {
        self.parts.push(Participant {
            name: name.to_owned(),
            mesh: None,
            disk: Vec::new(),
            unsynced: None,
            conn: None,
            run: 0,
            reconnect_scheduled: false,
            view: View::default(),
            log: Vec::new(),
            wrong_key: false,
            violations: Vec::new(),
            sync_sent: Vec::new(),
        });
        let who = self.parts.len() - 1;
        self.start(who);
        who
    }

    /// Starts (or restarts) a participant's engine from what its disk holds.
    pub fn start(&mut self, who: usize) {
        let mut actor = [0u8; 16];
        self.rng.fill(&mut actor);
        let part = &self.parts[who];
        // As the store replays its log: what was stored is not stored again.
        let mut doc = MeetingDoc::new(ActorId::from(actor));
        doc.apply_saved_changes(&part.disk).unwrap();
        doc.take_unsaved();
        let config = MeshConfig {
            name: part.name.clone(),
            author_id: format!("install-{}", part.name),
            max_file_bytes: 1 << 20,
            auto_accept_files: false,
            download_dir: PathBuf::from("/nonexistent"),
            media: MediaState::default(),
        };
        let seed = self.rng.random();
        let (mesh, first) = Mesh::new(config, doc, seed);
        let part = &mut self.parts[who];
        part.mesh = Some(mesh);
        part.run += 1;
        part.view = View::default();
        self.note(format!("{} starts", self.parts[who].name));
        self.carry(who, first);
        self.connect_signaling(who);
    }

    pub fn online(&self, who: usize) -> bool {
        self.parts[who].mesh.is_some()
    }

    /// The participant leaves the meeting: `bye` on every connection, signaling closed.
    pub fn leave(&mut self, who: usize) {
        let Some(mesh) = self.parts[who].mesh.take() else { return };
        self.note(format!("{} leaves", self.parts[who].name));
        let links: Vec<LinkId> = mesh.links().collect();
        for link in links {
            self.link_command(who, link, LinkCommand::Leave);
        }
        self.drop_signaling(who, false);
    }

    /// The participant's process dies right after sending its last local edit, before that
    /// edit's disk sync: no `bye`, its connections fail at the other ends (what they had sent
    /// still arrives), and its disk lacks the edit.
    pub fn crash(&mut self, who: usize) {
        let part = &mut self.parts[who];
        let Some(mesh) = part.mesh.take() else { return };
        if let Some(synced) = part.unsynced.take() {
            part.disk.truncate(synced);
        }
        let run = part.run;
        self.note(format!("{} crashes", self.parts[who].name));
        for link in mesh.links() {
            self.close_link((who, run, link));
        }
        self.drop_signaling(who, false);
    }

    pub fn command(&mut self, who: usize, command: Command) {
        let Some(mesh) = self.parts[who].mesh.as_mut() else { return };
        let (_, outputs) = mesh.command(self.now as i64, command);
        let before = self.parts[who].disk.len();
        self.carry(who, outputs);
        if self.parts[who].disk.len() > before {
            self.parts[who].unsynced = Some(before);
        }
    }

    /// `from` sends `to` `count` `ctl` messages at once, as a flooding peer would.
    pub fn flood(&mut self, from: usize, to: usize, count: usize) {
        self.note(format!("{from} floods {to} with {count} messages"));
        let link = self.links.iter().find(|(key, l)| {
            key.0 == from && l.up && !l.closed && l.peer.is_some_and(|peer| peer.0 == to)
        });
        let Some((&key, _)) = link else { return };
        for i in 0..count {
            let anchor = Some(format!("{i}@00"));
            self.send(key, Frame::Ctl(CtlMessage::Cursor { anchor, head: None }));
        }
    }

    pub fn restart_server(&mut self) {
        self.note("the signaling server restarts".into());
        self.hub = Hub::new(8);
        self.server_ids.clear();
        for who in 0..self.parts.len() {
            self.drop_signaling(who, true);
        }
    }

    /// `who`'s signaling connection dies without the server noticing (its address went away):
    /// `who` reconnects under a new id while the server still seats the old one, until
    /// [`Sim::server_notices_dead_connections`].
    pub fn lose_signaling_unnoticed(&mut self, who: usize) {
        self.note(format!("{} loses signaling, unnoticed by the server", self.parts[who].name));
        let Some((_, id)) = self.parts[who].conn.take() else { return };
        self.unnoticed.extend(id);
        let retry_in = Duration::from_millis(500);
        let event = SignalingEvent::Reconnecting { retry_in, reason: "silent".into() };
        self.input(who, Input::Signaling(event));
        self.schedule_reconnect(who);
    }

    /// The server's idle timeout ends the connections that died unnoticed.
    pub fn server_notices_dead_connections(&mut self) {
        for id in std::mem::take(&mut self.unnoticed) {
            self.server_ids.remove(&id);
            let outputs = self.hub.handle(hub::Input::Leave { id });
            self.carry_hub(outputs);
        }
    }

    pub fn set_signaling_cut(&mut self, who: usize, cut: bool) {
        if cut {
            self.note(format!("{} loses signaling", self.parts[who].name));
            self.off_signaling.insert(who);
            self.drop_signaling(who, true);
        } else {
            self.off_signaling.remove(&who);
        }
    }

    /// Nobody in `side` can reach anybody outside it.
    pub fn partition(&mut self, side: &[usize]) {
        self.note(format!("partition {side:?} from the rest"));
        for a in 0..self.parts.len() {
            for b in a + 1..self.parts.len() {
                if side.contains(&a) != side.contains(&b) {
                    self.cut.insert((a, b));
                }
            }
        }
        self.paths_changed();
    }

    pub fn heal(&mut self) {
        self.note("the network heals".into());
        self.cut.clear();
        self.off_signaling.clear();
        self.paths_changed();
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Runs events until virtual time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(&Reverse((time, seq))) = self.queue.peek() {
            if time > until {
                break;
            }
            self.queue.pop();
            self.now = time;
            assert!(
                seq < MAX_EVENTS,
                "seed {}: runaway, {MAX_EVENTS} events by {time} ms; last steps:\n{}",
                self.seed,
                self.trace.iter().cloned().collect::<Vec<_>>().join("\n")
            );
            if let Some(ev) = self.pending.remove(&seq) {
                self.step(ev);
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::ToServer { from, conn, msg } => self.at_server(from, conn, msg),
            Ev::ToClient { to, conn, event } => {
                if self.parts[to].conn.as_ref().map(|c| c.0) != Some(conn) {
                    return;
                }
                if let SignalingEvent::Joined { you, .. } = &event
                    && let Some(c) = self.parts[to].conn.as_mut()
                {
                    c.1 = Some(you.clone());
                }
                self.input(to, Input::Signaling(event));
            }
            Ev::Flush { who, run } => {
                if self.parts[who].run == run {
                    self.input(who, Input::Flush);
                }
            }
            Ev::Reconnect { who } => {
                self.parts[who].reconnect_scheduled = false;
                self.connect_signaling(who);
            }
            Ev::LinkUp { a, b } => {
                let both = [a, b].iter().all(|k| self.links.get(k).is_some_and(|l| !l.closed));
                if !both || !self.reachable(a.0, b.0) {
                    // Closed meanwhile, or cut: tried again when the paths change.
                    return;
                }
                for (this, other) in [(a, b), (b, a)] {
                    let link = self.links.get_mut(&this).unwrap();
                    link.peer = Some(other);
                    link.up = true;
                }
                for key in [a, b] {
                    self.link_event(key, PeerEvent::Connection(true));
                    self.send_hello(key);
                }
            }
            Ev::Pump { from } => self.pump(from),
            Ev::CheckPath { link, epoch } => self.check_path(link, epoch),
            Ev::ConnectDeadline { link } => {
                if self.links.get(&link).is_some_and(|l| !l.closed && !l.verified) {
                    self.end_link(link, PeerEvent::Failed(PeerError::Timeout));
                }
            }
            Ev::RemoteClosed { link } => {
                if self.links.get(&link).is_some_and(|l| !l.closed) {
                    self.end_link(link, PeerEvent::Failed(PeerError::ChannelClosed));
                }
            }
        }
    }

    fn connect_signaling(&mut self, who: usize) {
        if !self.online(who) || self.parts[who].conn.is_some() {
            return;
        }
        if self.off_signaling.contains(&who) || !self.server_up {
            self.schedule_reconnect(who);
            return;
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        self.parts[who].conn = Some((conn, None));
        self.on_signaling(conn, true, Ev::ToServer { from: who, conn, msg: ToServer::Join });
    }

    fn schedule_reconnect(&mut self, who: usize) {
        if !self.parts[who].reconnect_scheduled {
            self.parts[who].reconnect_scheduled = true;
            let delay = self.delay(300, 2_000);
            self.at(delay, Ev::Reconnect { who });
        }
    }

    /// The participant's signaling connection is gone; the server notices too.
    fn drop_signaling(&mut self, who: usize, retry: bool) {
        let Some((_, id)) = self.parts[who].conn.take() else { return };
        if let Some(id) = id {
            self.server_ids.remove(&id);
            let outputs = self.hub.handle(hub::Input::Leave { id });
            self.carry_hub(outputs);
        }
        if retry && self.online(who) {
            let retry_in = Duration::from_millis(500);
            let event = SignalingEvent::Reconnecting { retry_in, reason: "cut".into() };
            self.input(who, Input::Signaling(event));
            self.schedule_reconnect(who);
        }
    }

    fn at_server(&mut self, from: usize, conn: u64, msg: ToServer) {
        if self.parts[from].conn.as_ref().map(|c| c.0) != Some(conn) {
            return;
        }
        match msg {
            ToServer::Join => {
                let id = random_id(&mut self.rng);
                self.server_ids.insert(id.clone(), (from, conn));
                let outputs = self.hub.handle(hub::Input::Join {
                    id,
                    room: self.room.clone(),
                    name: DisplayName::new(&self.parts[from].name).unwrap(),
                    client: ClientKind::Cli,
                    needs_open: false,
                });
                self.carry_hub(outputs);
            }
            ToServer::Signal { to, data } => {
                let Some(Some(from_id)) = self.parts[from].conn.as_ref().map(|c| c.1.clone())
                else {
                    return;
                };
                let outputs =
                    self.hub.handle(hub::Input::Signal { from: from_id, to, data: data.into() });
                self.carry_hub(outputs);
            }
        }
    }

    fn carry_hub(&mut self, outputs: Vec<hub::Output>) {
        for output in outputs {
            let (to, event) = match output {
                hub::Output::Welcome { to, peers } => {
                    let event = SignalingEvent::Joined {
                        you: to.clone(),
                        peers,
                        ice_servers: vec![],
                        limits: limits(),
                    };
                    (to, event)
                }
                hub::Output::Send { to, msg } => match msg {
                    ServerMessage::PeerJoined { peer } => (to, SignalingEvent::PeerJoined(peer)),
                    ServerMessage::PeerLeft { id } => (to, SignalingEvent::PeerLeft(id)),
                    ServerMessage::Signal { from, data } => {
                        (to, SignalingEvent::Signal { from, data })
                    }
                    other => panic!("the hub sent {other:?}"),
                },
                // Refusals (a signal to someone who just left) change nothing here.
                hub::Output::Refuse { .. } => continue,
                hub::Output::TurnAway { .. } | hub::Output::Cluster(_) => {
                    unreachable!("a hub alone neither waits for seats nor asks a cluster")
                }
            };
            let Some(&(who, conn)) = self.server_ids.get(&to) else { continue };
            self.on_signaling(conn, false, Ev::ToClient { to: who, conn, event });
        }
    }

    fn input(&mut self, who: usize, input: Input) {
        let Some(mesh) = self.parts[who].mesh.as_mut() else { return };
        let outputs = mesh.handle(self.now as i64, input);
        self.carry(who, outputs);
    }

    fn carry(&mut self, who: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(changes) => {
                    self.parts[who].unsynced = None;
                    self.parts[who].disk.extend_from_slice(&changes);
                }
                Output::Signal { to, data } => {
                    let Some((conn, Some(_))) = self.parts[who].conn.clone() else { continue };
                    let msg = ToServer::Signal { to, data };
                    self.on_signaling(conn, true, Ev::ToServer { from: who, conn, msg });
                }
                Output::Link { link, command } => self.link_command(who, link, command),
                Output::Event(event) => self.absorb(who, event),
                Output::FlushAt(at) => {
                    let run = self.parts[who].run;
                    self.at(
                        u64::try_from(at).unwrap_or(0).saturating_sub(self.now),
                        Ev::Flush { who, run },
                    );
                }
            }
        }
    }

    fn absorb(&mut self, who: usize, event: EngineEvent) {
        let part = &mut self.parts[who];
        part.log.push(event.clone());
        let view = &mut part.view;
        match event {
            EngineEvent::Joined { you } => view.me = Some(you),
            EngineEvent::PeerConnected { id, name } => {
                if view.connected.insert(id.clone(), name).is_some() {
                    part.violations.push(format!("{id} was reported connected twice"));
                }
                view.most_shown = view.most_shown.max(view.connected.len());
            }
            EngineEvent::PeerLeft { id }
            | EngineEvent::PeerFailed { id, .. }
            | EngineEvent::Intercepted { id } => {
                view.connected.remove(&id);
            }
            EngineEvent::PeerRenamed { old, id } => {
                if let Some(name) = view.connected.remove(&old)
                    && view.connected.insert(id.clone(), name).is_some()
                {
                    part.violations.push(format!("{id} was shown twice after a rename"));
                }
            }
            EngineEvent::Chat(msg) => {
                if view.chat_ids.contains(&msg.id) {
                    part.violations.push(format!("chat {} was reported twice", msg.id));
                }
                view.chat_ids.push(msg.id);
            }
            EngineEvent::Notes { text, patches } => {
                // Front ends apply the patches, in UTF-16 units, to what they were shown.
                let mut units: Vec<u16> = view.notes.encode_utf16().collect();
                for patch in &patches {
                    let fits = match patch {
                        NotesPatch::Insert { pos, text } => {
                            let fits = *pos <= units.len();
                            if fits {
                                units.splice(*pos..*pos, text.encode_utf16());
                            }
                            fits
                        }
                        NotesPatch::Delete { pos, len } => {
                            let fits = pos + len <= units.len();
                            if fits {
                                units.drain(*pos..pos + len);
                            }
                            fits
                        }
                    };
                    if !fits {
                        part.violations.push(format!("patch {patch:?} is outside the notes"));
                    }
                }
                if String::from_utf16(&units).ok().as_ref() != Some(&text) {
                    part.violations.push("the patches do not give the notes' text".into());
                }
                view.notes = text;
            }
            EngineEvent::Title { text: title } => view.title = title,
            _ => {}
        }
    }

    fn link_command(&mut self, who: usize, link: LinkId, command: LinkCommand) {
        let key = (who, self.parts[who].run, link);
        match command {
            LinkCommand::Open(setup) => {
                let local_fp = format!("sha-256 {who}:{}:{}", key.1, link.0);
                let mut negotiation = Negotiation::new(&setup.me, &setup.remote);
                if setup.offerer {
                    negotiation.offered();
                }
                let link_state = SimLink {
                    negotiation,
                    me: setup.me,
                    remote: setup.remote,
                    want_snapshot: setup.want_snapshot,
                    instance: setup.instance,
                    local_fp: local_fp.clone(),
                    remote_fp: None,
                    peer: None,
                    up: false,
                    down: false,
                    hello_sent: false,
                    verified: false,
                    early: Vec::new(),
                    closed: false,
                    outbox: VecDeque::new(),
                    path_epoch: 0,
                };
                self.links.insert(key, link_state);
                self.at(CONNECT_TIMEOUT_MS, Ev::ConnectDeadline { link: key });
                if setup.offerer {
                    let offer = description(SdpType::Offer, &local_fp);
                    self.link_event(key, PeerEvent::Signal(offer));
                }
            }
            LinkCommand::Remote(SignalData::Sdp { sdp }) => {
                let Some(l) = self.links.get_mut(&key).filter(|l| !l.closed) else { return };
                let Some(fp) = sdp.sdp.strip_prefix("a=fingerprint:") else { return };
                if let Step::Ignore(_) = l.negotiation.remote(sdp.kind) {
                    return;
                }
                // A renegotiation carries the same fingerprint; the first one counts.
                if l.remote_fp.is_none() {
                    l.remote_fp = Some(fp.to_owned());
                }
                if sdp.kind == SdpType::Offer {
                    let answer = description(SdpType::Answer, &l.local_fp.clone());
                    self.link_event(key, PeerEvent::Signal(answer));
                }
                self.try_connect(key);
            }
            LinkCommand::Remote(SignalData::Candidate { .. }) => {}
            LinkCommand::SendSync(frame) => {
                if let Some(to) = self.links.get(&key).and_then(|l| l.peer) {
                    self.parts[who].sync_sent.push((self.now, to.0));
                }
                self.send(key, Frame::Sync(frame));
            }
            LinkCommand::SendCtl(msg) => self.send(key, Frame::Ctl(msg)),
            LinkCommand::Rekey(me) => {
                let Some(l) = self.links.get_mut(&key) else { return };
                l.me = me;
                if l.hello_sent {
                    self.send_hello(key);
                }
            }
            // The simulation's paths do not depend on addresses, so no restart is needed.
            LinkCommand::NetworkChanged => {}
            LinkCommand::PeerRejoined(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.negotiation.offer_lost();
                }
            }
            // No files move in the simulation.
            LinkCommand::ExpectFile { .. }
            | LinkCommand::SendFile { .. }
            | LinkCommand::CancelFile(_) => {}
            LinkCommand::Leave => {
                if self.links.get(&key).is_some_and(|l| l.verified) {
                    self.send(key, Frame::Ctl(CtlMessage::Bye {}));
                }
                self.close_link(key);
            }
            LinkCommand::Close => {
                self.close_link(key);
                self.link_event(key, PeerEvent::Closed);
            }
        }
    }

    /// Brings a connection up once both ends know each other's fingerprints.
    fn try_connect(&mut self, key: LinkKey) {
        let Some(l) = self.links.get(&key).filter(|l| !l.closed && !l.up) else { return };
        let Some(remote_fp) = l.remote_fp.clone() else { return };
        let local_fp = l.local_fp.clone();
        let other = self.links.iter().find_map(|(k, o)| {
            (!o.closed && o.local_fp == remote_fp && o.remote_fp.as_deref() == Some(&local_fp))
                .then_some(*k)
        });
        if let Some(other) = other
            && self.reachable(key.0, other.0)
        {
            let delay = self.delay(20, 300);
            self.at(delay, Ev::LinkUp { a: key, b: other });
        }
    }

    fn send_hello(&mut self, key: LinkKey) {
        let name = self.parts[key.0].name.clone();
        let mac_ok = !self.parts[key.0].wrong_key;
        let Some(l) = self.links.get_mut(&key) else { return };
        l.hello_sent = true;
        let hello = Frame::Hello {
            peer_id: l.me.clone(),
            name,
            want_snapshot: l.want_snapshot,
            instance: l.instance.clone(),
            mac_ok,
        };
        self.send(key, hello);
    }

    fn send(&mut self, key: LinkKey, frame: Frame) {
        let delay = self.delay(1, 30);
        let Some(l) = self.links.get_mut(&key).filter(|l| l.up && !l.closed) else { return };
        // Ordered: never before the frame ahead of it.
        let due = (self.now + delay).max(l.outbox.back().map_or(0, |f| f.0));
        l.outbox.push_back((due, frame));
        if l.outbox.len() == 1 {
            self.at(due - self.now, Ev::Pump { from: key });
        }
    }

    fn pump(&mut self, from: LinkKey) {
        let Some(l) = self.links.get(&from) else { return };
        let Some(to) = l.peer else { return };
        if !self.reachable(from.0, to.0) {
            self.at(RETRANSMIT_MS, Ev::Pump { from });
            return;
        }
        loop {
            let Some(l) = self.links.get_mut(&from) else { return };
            match l.outbox.front() {
                Some((due, _)) if *due <= self.now => {
                    let (_, frame) = l.outbox.pop_front().unwrap();
                    self.receive(to, frame);
                }
                Some((due, _)) => {
                    let wait = due - self.now;
                    self.at(wait, Ev::Pump { from });
                    return;
                }
                None => return,
            }
        }
    }

    /// What the receiving end's hello gate does with a frame.
    fn receive(&mut self, key: LinkKey, frame: Frame) {
        let Some(l) = self.links.get_mut(&key).filter(|l| !l.closed) else { return };
        let event = match frame {
            Frame::Hello { peer_id, name, want_snapshot, instance, mac_ok } => {
                if l.verified && peer_id != l.remote {
                    l.remote = peer_id.clone();
                    self.link_event(key, PeerEvent::Rekeyed(peer_id));
                    return;
                }
                if l.verified {
                    return;
                }
                if peer_id != l.remote || !mac_ok {
                    self.end_link(key, PeerEvent::Intercepted);
                    return;
                }
                l.verified = true;
                let early = std::mem::take(&mut l.early);
                let client = ClientKind::Cli;
                let instance = Some(instance);
                self.link_event(key, PeerEvent::Ready { name, client, want_snapshot, instance });
                for event in early {
                    self.link_event(key, event);
                }
                return;
            }
            Frame::Sync(bytes) => PeerEvent::Sync(bytes),
            Frame::Ctl(msg) => PeerEvent::Ctl(msg),
        };
        if l.verified {
            self.link_event(key, event);
        } else {
            l.early.push(event);
        }
    }

    /// Closes our end; the other end's channels close a moment later, after what is already
    /// on its way (a `bye` first of all).
    fn close_link(&mut self, key: LinkKey) {
        let now = self.now;
        let Some(l) = self.links.get_mut(&key).filter(|l| !l.closed) else { return };
        l.closed = true;
        let last = l.outbox.back().map_or(now, |f| f.0);
        if let Some(peer) = l.peer {
            self.at(last.saturating_sub(now) + 5, Ev::RemoteClosed { link: peer });
        }
    }

    /// The connection's task ends with `event`.
    fn end_link(&mut self, key: LinkKey, event: PeerEvent) {
        self.close_link(key);
        self.link_event(key, event);
    }

    fn link_event(&mut self, key: LinkKey, event: PeerEvent) {
        // A connection of an earlier run reports to nobody.
        if self.parts[key.0].run == key.1 {
            self.input(key.0, Input::Link { link: key.2, event });
        }
    }

    /// Reachability changed: check every connection's path, and connect those that wait.
    fn paths_changed(&mut self) {
        let keys: Vec<LinkKey> = self.links.keys().copied().collect();
        for key in keys {
            let Some(l) = self.links.get_mut(&key).filter(|l| !l.closed) else { continue };
            l.path_epoch += 1;
            let epoch = l.path_epoch;
            match l.peer {
                Some(peer) if l.up => {
                    let reachable = self.reachable(key.0, peer.0);
                    if reachable && self.links[&key].down {
                        self.links.get_mut(&key).unwrap().down = false;
                        self.link_event(key, PeerEvent::Connection(true));
                    } else if !reachable {
                        self.at(DOWN_AFTER_MS, Ev::CheckPath { link: key, epoch });
                        self.at(FAIL_AFTER_MS, Ev::CheckPath { link: key, epoch });
                    }
                }
                _ => self.try_connect(key),
            }
        }
    }

    fn check_path(&mut self, key: LinkKey, epoch: u64) {
        let Some(l) = self.links.get(&key).filter(|l| !l.closed && l.path_epoch == epoch) else {
            return;
        };
        let Some(peer) = l.peer else { return };
        if self.reachable(key.0, peer.0) {
            return;
        }
        if !l.down {
            self.links.get_mut(&key).unwrap().down = true;
            self.link_event(key, PeerEvent::Connection(false));
        } else {
            self.end_link(key, PeerEvent::Failed(PeerError::NoPath));
        }
    }

    /// The signaling id of each online participant that is joined.
    pub fn ids(&self) -> HashMap<usize, PeerId> {
        (self.parts.iter().enumerate())
            .filter_map(|(i, p)| Some((i, p.conn.as_ref()?.1.clone()?)))
            .collect()
    }

    /// Everything that should hold once the network has healed and everything settled; an
    /// empty list when all is well.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let ids = self.ids();
        let online: Vec<usize> = (0..self.parts.len()).filter(|&i| self.online(i)).collect();
        let mut reference: Option<(usize, String, String, Vec<String>)> = None;
        for &i in &online {
            let part = &self.parts[i];
            let name = &part.name;
            problems.extend(part.violations.iter().map(|v| format!("{name}: {v}")));
            let mesh = part.mesh.as_ref().unwrap();
            let Some(me) = ids.get(&i) else {
                problems.push(format!("{name} is not joined"));
                continue;
            };
            let doc = mesh.doc();
            let chat: Vec<String> = doc.chat().into_iter().map(|m| m.id).collect();
            let unique: HashSet<&String> = chat.iter().collect();
            if unique.len() != chat.len() {
                problems.push(format!("{name}'s document holds a chat message twice"));
            }
            let (notes, title) = (doc.notes(), doc.title());
            if part.view.notes != notes || part.view.title != title {
                problems.push(format!("{name} shows notes or a title its document does not hold"));
            }
            let shown: HashSet<&String> = part.view.chat_ids.iter().collect();
            if shown != unique {
                problems.push(format!("{name} shows other chat messages than it holds"));
            }
            match &reference {
                None => reference = Some((i, notes, title, chat)),
                Some((r, rn, rt, rc)) => {
                    let other = &self.parts[*r].name;
                    if *rn != notes || *rt != title {
                        problems.push(format!("{name} and {other} hold different notes"));
                    }
                    let (mut a, mut b) = (rc.clone(), chat.clone());
                    a.sort();
                    b.sort();
                    if a != b {
                        problems.push(format!("{name} and {other} hold different chat"));
                    }
                }
            }
            let want: BTreeSet<PeerId> =
                (online.iter()).filter(|&&j| j != i).filter_map(|j| ids.get(j).cloned()).collect();
            let have: BTreeSet<PeerId> = mesh.connected_peers().cloned().collect();
            if have != want {
                problems.push(format!("{name} ({me}) is connected to {have:?}, not {want:?}"));
            }
            let shown: BTreeSet<PeerId> = part.view.connected.keys().cloned().collect();
            if shown != want {
                problems.push(format!("{name} shows {shown:?} as here, not {want:?}"));
            }
        }
        problems
    }
}

fn description(kind: SdpType, fingerprint: &str) -> SignalData {
    SignalData::Sdp {
        sdp: SessionDescription { kind, sdp: format!("a=fingerprint:{fingerprint}") },
    }
}

fn limits() -> Limits {
    Limits {
        max_message_bytes: 65_536,
        max_peers: 8,
        max_messages_per_second: 0,
        burst_messages: 0,
        idle_timeout_secs: 45,
    }
}

/// A server-minted id, from the simulation's RNG.
fn random_id(rng: &mut StdRng) -> PeerId {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id: String = (0..21).map(|_| ALPHABET[rng.random_range(0..64)] as char).collect();
    // The last of 22 base64url characters carries 2 bits, so it is one of 4.
    id.push(['A', 'Q', 'g', 'w'][rng.random_range(0..4)]);
    id.parse().unwrap()
}

/// What a participant info looks like for a name (tests that talk to one mesh directly).
pub fn info(id: &PeerId, name: &str) -> PeerInfo {
    PeerInfo { id: id.clone(), name: DisplayName::new(name).unwrap(), client: ClientKind::Cli }
}
