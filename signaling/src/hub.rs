//! Rooms and relay as a pure state machine: [`Hub::handle`] takes one [`Input`] and returns what
//! must be sent to whom. No sockets, no clock, no randomness (peer ids come in with `Join`), so
//! every rule of room membership is a plain unit test.
//!
//! The rule that matters most: a message only ever reaches a member of the sender's own room.
//! A `to` that names a peer of another room is answered exactly like one that names nobody.
//!
//! ## Several instances
//! A hub made with [`Hub::clustered`] shares its rooms with other instances through a cluster
//! (Redis, in `cluster.rs`), which is one more input ([`ClusterInput`]) and output
//! ([`Command`]) of the same machine: rooms hold members of other instances beside local ones.
//! - A join takes a seat from the cluster first ([`Command::Seat`]), which alone can say whether
//!   the room is full across instances; the joiner is welcomed when the seat is given
//!   ([`ClusterInput::Seated`], with who was seated before it), or turned away.
//! - What a local member says to a remote one goes out as [`Command::Relay`]; the cluster tells
//!   of remote joins, leaves, signals and dead instances.
//! - The cluster's replies and its announcements arrive by different paths, so they may cross: a
//!   remote peer announced before our seat's reply is introduced after the welcome, and one that
//!   left before the reply is not introduced at all.
//! - While the cluster is down, rooms whose members are all here keep working; a join into any
//!   other room is refused as `unavailable` (it may have members elsewhere). When the cluster is
//!   back, every local member is seated again ([`Command::Reseat`]), and those who left meanwhile
//!   are unseated.

use std::collections::{HashMap, HashSet};
use std::fmt;

use confab_proto::{
    ClientKind, DisplayName, ErrorCode, PeerId, PeerInfo, RoomId, ServerMessage, SignalPayload,
};

/// One running instance of the service, among those sharing a cluster. A new one per process,
/// so an instance that dies and comes back never speaks for the peers it had.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn random() -> Self {
        Self(PeerId::random().as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for InstanceId {
    type Err = String;
    /// The same alphabet as peer ids: it goes into Redis keys and space-separated entries.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PeerId>().map(|id| Self(id.as_str().to_owned())).map_err(|e| e.to_string())
    }
}

#[derive(Debug)]
pub enum Input {
    Join {
        id: PeerId,
        room: RoomId,
        name: DisplayName,
        client: ClientKind,
        /// The joiner holds no access token and this instance does not know the meeting as
        /// open: only the cluster can say whether another instance does.
        needs_open: bool,
    },
    Signal {
        from: PeerId,
        to: PeerId,
        data: SignalPayload,
    },
    /// A peer left, timed out or was dropped. Leaving twice is harmless.
    Leave {
        id: PeerId,
    },
    /// A meeting was made by a holder of an access token: open to its link on every instance.
    Made {
        room: RoomId,
    },
    /// What the cluster says, in the order it said it.
    Cluster(ClusterInput),
}

/// A peer as the cluster knows it: who, and on which instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub instance: InstanceId,
    pub peer: PeerInfo,
}

#[derive(Debug)]
pub enum ClusterInput {
    /// Connected (again): every local member is seated anew.
    Up,
    /// Lost: only rooms with no member elsewhere keep working.
    Down,
    /// The local joiner `id` holds a seat in `room`; `before` were seated already (this
    /// instance's own included).
    Seated { id: PeerId, room: RoomId, before: Vec<Seat> },
    /// No seat for `id`: the room is full across instances.
    Full { id: PeerId },
    /// No seat for `id`: it needed the meeting open, and no instance has it open.
    Closed { id: PeerId },
    /// No seat for `id`: the cluster could not be asked.
    Unavailable { id: PeerId },
    /// A peer joined `room` on another instance.
    Joined { room: RoomId, seat: Seat },
    /// A peer of another instance left.
    Left { id: PeerId },
    /// A peer of another instance says `data` to a local one.
    Signal { from: PeerId, to: PeerId, data: SignalPayload },
    /// An instance stopped beating: its peers are gone.
    InstanceGone { instance: InstanceId },
}

/// What the hub asks of the cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Take a seat for a local joiner, unless the room is full across instances (or, with
    /// `needs_open`, not open on any).
    Seat { room: RoomId, peer: PeerInfo, needs_open: bool },
    /// Seat a local member again after the cluster was lost; no limit (it is already in).
    Reseat { room: RoomId, peer: PeerInfo },
    /// Give up a local member's seat, and tell the instances in `tell` (and any the cluster
    /// knows in the room) that it left.
    Unseat { room: RoomId, id: PeerId, tell: Vec<InstanceId> },
    /// Keep a meeting made here open to its link on every instance.
    Open { room: RoomId },
    /// Carry a signal to a peer of `instance`.
    Relay { instance: InstanceId, from: PeerId, to: PeerId, data: SignalPayload },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The joiner is in: tell it who else is there (the I/O layer adds ICE servers and limits).
    Welcome {
        to: PeerId,
        peers: Vec<PeerInfo>,
    },
    /// Send `msg` to peer `to`.
    Send {
        to: PeerId,
        msg: ServerMessage,
    },
    /// Answer the sender of the input with an error.
    Refuse {
        code: ErrorCode,
        message: String,
    },
    /// A joiner waiting for its seat does not get one.
    TurnAway {
        to: PeerId,
        code: ErrorCode,
        message: String,
    },
    Cluster(Command),
}

#[derive(Debug)]
struct Member {
    room: RoomId,
    info: PeerInfo,
    /// The instance it is connected to; `None`: this one.
    home: Option<InstanceId>,
}

/// A clustered hub's view of the cluster.
#[derive(Debug)]
struct Cluster {
    me: InstanceId,
    up: bool,
    /// Local joiners waiting for their seat.
    waiting: HashMap<PeerId, (RoomId, PeerInfo)>,
    /// Remote peers that left while a seat was awaited: a seat's reply may still list them.
    departed: HashSet<PeerId>,
    /// Local members that left while the cluster was down, to unseat when it is back, with the
    /// instances that were in their room.
    left_while_down: Vec<(RoomId, PeerId, Vec<InstanceId>)>,
}

/// All rooms of one server.
#[derive(Debug)]
pub struct Hub {
    max_peers: usize,
    /// Members of each room, local and remote, in order of joining.
    rooms: HashMap<RoomId, Vec<PeerId>>,
    members: HashMap<PeerId, Member>,
    cluster: Option<Cluster>,
}

impl Hub {
    /// A hub that is the only instance.
    pub fn new(max_peers: usize) -> Self {
        Self { max_peers, rooms: HashMap::new(), members: HashMap::new(), cluster: None }
    }

    /// A hub that shares its rooms with other instances as `me`. It starts with the cluster
    /// down, until [`ClusterInput::Up`].
    pub fn clustered(max_peers: usize, me: InstanceId) -> Self {
        let cluster = Cluster {
            me,
            up: false,
            waiting: HashMap::new(),
            departed: HashSet::new(),
            left_while_down: Vec::new(),
        };
        Self { cluster: Some(cluster), ..Self::new(max_peers) }
    }

    /// Rooms with someone in them that this instance knows of.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Participants connected to this instance.
    pub fn peer_count(&self) -> usize {
        self.members.values().filter(|m| m.home.is_none()).count()
    }

    /// Whether anyone is in `room`, as far as this instance knows.
    pub fn is_occupied(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// The room `id` is in.
    pub fn room_of(&self, id: &PeerId) -> Option<&RoomId> {
        self.members.get(id).map(|m| &m.room)
    }

    /// Whether this hub shares its rooms with other instances.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Whether the cluster is up (always, for a hub that is the only instance).
    pub fn cluster_up(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.up)
    }

    /// The other instances this one has peers from, to check that they still beat.
    pub fn remote_instances(&self) -> Vec<InstanceId> {
        let homes: HashSet<&InstanceId> =
            self.members.values().filter_map(|m| m.home.as_ref()).collect();
        homes.into_iter().cloned().collect()
    }

    /// The peers of other instances this one knows, with their rooms: after the cluster was
    /// lost, each is checked against it, since a leave announced meanwhile was missed.
    pub fn remote_members(&self) -> Vec<(RoomId, PeerId)> {
        let remote = self.members.iter().filter(|(_, m)| m.home.is_some());
        remote.map(|(id, m)| (m.room.clone(), id.clone())).collect()
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Join { id, room, name, client, needs_open } => {
                self.join(id, room, name, client, needs_open)
            }
            Input::Signal { from, to, data } => self.signal(from, to, data),
            Input::Leave { id } => self.leave(&id),
            Input::Made { room } => match self.cluster {
                Some(_) => vec![Output::Cluster(Command::Open { room })],
                None => Vec::new(),
            },
            Input::Cluster(input) => self.hear_cluster(input),
        }
    }

    fn join(
        &mut self,
        id: PeerId,
        room: RoomId,
        name: DisplayName,
        client: ClientKind,
        needs_open: bool,
    ) -> Vec<Output> {
        let waiting = self.cluster.as_ref().is_some_and(|c| c.waiting.contains_key(&id));
        if self.members.contains_key(&id) || waiting {
            return vec![refuse(ErrorCode::AlreadyJoined, "this connection has already joined")];
        }
        let here = self.ids_in(&room).len();
        if here >= self.max_peers {
            return vec![refuse(ErrorCode::RoomFull, self.full_message())];
        }
        let info = PeerInfo { id: id.clone(), name, client };
        let Some(cluster) = self.cluster.as_mut() else {
            let before = self.room_peers(&room);
            return self.seat(room, info, before);
        };
        if cluster.up {
            cluster.waiting.insert(id, (room.clone(), info.clone()));
            return vec![Output::Cluster(Command::Seat { room, peer: info, needs_open })];
        }
        // Down: only a room whose members are all here is known to hold nobody elsewhere.
        let ids = self.ids_in(&room);
        let all_local = !ids.is_empty() && ids.iter().all(|p| self.is_local(p));
        if !all_local {
            return vec![refuse(ErrorCode::Unavailable, UNAVAILABLE)];
        }
        let before = self.room_peers(&room);
        self.seat(room, info, before)
    }

    fn full_message(&self) -> String {
        format!("this meeting is full ({} people)", self.max_peers)
    }

    /// Everyone in `room`, in order of joining.
    fn room_peers(&self, room: &RoomId) -> Vec<PeerInfo> {
        let ids = self.ids_in(room);
        ids.iter().filter_map(|id| self.members.get(id)).map(|m| m.info.clone()).collect()
    }

    /// Who is in `room` (local and remote), in order of joining.
    fn ids_in(&self, room: &RoomId) -> &[PeerId] {
        self.rooms.get(room).map(Vec::as_slice).unwrap_or_default()
    }

    fn is_local(&self, id: &PeerId) -> bool {
        self.members.get(id).is_some_and(|m| m.home.is_none())
    }

    /// The local joiner `info` takes its seat: welcomed with `before`, announced to the local
    /// members; remote members known here but not in `before` came later and are introduced.
    fn seat(&mut self, room: RoomId, info: PeerInfo, before: Vec<PeerInfo>) -> Vec<Output> {
        let id = info.id.clone();
        let announced = self.tell_locals(&room, &ServerMessage::PeerJoined { peer: info.clone() });
        let ids = self.ids_in(&room);
        let later: Vec<PeerInfo> = ids
            .iter()
            .filter_map(|other| self.members.get(other))
            .filter(|m| m.home.is_some() && !before.iter().any(|p| p.id == m.info.id))
            .map(|m| m.info.clone())
            .collect();
        self.rooms.entry(room.clone()).or_default().push(id.clone());
        self.members.insert(id.clone(), Member { room, info, home: None });
        let mut out = vec![Output::Welcome { to: id.clone(), peers: before }];
        out.extend(announced);
        out.extend(
            later.into_iter().map(|peer| Output::Send {
                to: id.clone(),
                msg: ServerMessage::PeerJoined { peer },
            }),
        );
        out
    }

    fn signal(&mut self, from: PeerId, to: PeerId, data: SignalPayload) -> Vec<Output> {
        let Some(sender) = self.members.get(&from).filter(|m| m.home.is_none()) else {
            return vec![refuse(ErrorCode::NotJoined, "join a room before sending signals")];
        };
        let Some(receiver) = self.members.get(&to).filter(|m| m.room == sender.room && to != from)
        else {
            return vec![refuse(ErrorCode::UnknownPeer, format!("no peer {to} in this meeting"))];
        };
        match (&receiver.home, &self.cluster) {
            (None, _) => vec![Output::Send { to, msg: ServerMessage::Signal { from, data } }],
            (Some(_), Some(cluster)) if !cluster.up => {
                vec![refuse(ErrorCode::Unavailable, UNAVAILABLE)]
            }
            (Some(instance), _) => {
                let instance = instance.clone();
                vec![Output::Cluster(Command::Relay { instance, from, to, data })]
            }
        }
    }

    fn leave(&mut self, id: &PeerId) -> Vec<Output> {
        if let Some(cluster) = self.cluster.as_mut()
            && let Some((room, _)) = cluster.waiting.remove(id)
        {
            // Its seat may have been given already; giving it up is harmless either way.
            self.forget_departed();
            self.forget_unattended(&room);
            return vec![Output::Cluster(Command::Unseat { room, id: id.clone(), tell: vec![] })];
        }
        if !self.is_local(id) {
            return Vec::new();
        }
        let Some(member) = self.remove(id) else { return Vec::new() };
        let mut out = self.tell_left(&member.room, id);
        let tell = self.instances_in(&member.room);
        if let Some(cluster) = self.cluster.as_mut() {
            let (room, id) = (member.room.clone(), id.clone());
            if cluster.up {
                out.push(Output::Cluster(Command::Unseat { room, id, tell }));
            } else {
                cluster.left_while_down.push((room, id, tell));
            }
        }
        self.forget_unattended(&member.room);
        out
    }

    /// Removes a member from its room; empty rooms vanish.
    fn remove(&mut self, id: &PeerId) -> Option<Member> {
        let member = self.members.remove(id)?;
        if let Some(ids) = self.rooms.get_mut(&member.room) {
            ids.retain(|p| p != id);
            if ids.is_empty() {
                self.rooms.remove(&member.room);
            }
        }
        Some(member)
    }

    /// `msg` to each local member of `room`.
    fn tell_locals(&self, room: &RoomId, msg: &ServerMessage) -> Vec<Output> {
        let ids = self.ids_in(room);
        ids.iter()
            .filter(|p| self.is_local(p))
            .map(|to| Output::Send { to: to.clone(), msg: msg.clone() })
            .collect()
    }

    /// `peer_left` for `id` to the local members of `room`.
    fn tell_left(&self, room: &RoomId, id: &PeerId) -> Vec<Output> {
        self.tell_locals(room, &ServerMessage::PeerLeft { id: id.clone() })
    }

    /// Whether this instance follows `room`: a local member is in it, or a local joiner waits
    /// for a seat in it.
    fn is_attended(&self, room: &RoomId) -> bool {
        let ids = self.ids_in(room);
        ids.iter().any(|p| self.is_local(p))
            || self.cluster.as_ref().is_some_and(|c| c.waiting.values().any(|(r, _)| r == room))
    }

    /// The other instances with members in `room`.
    fn instances_in(&self, room: &RoomId) -> Vec<InstanceId> {
        let ids = self.ids_in(room);
        let mut homes: Vec<InstanceId> =
            ids.iter().filter_map(|p| self.members.get(p)?.home.clone()).collect();
        homes.sort();
        homes.dedup();
        homes
    }

    /// A room with no local member and no local joiner is no longer told of here, so its
    /// remote members are forgotten rather than kept stale.
    fn forget_unattended(&mut self, room: &RoomId) {
        if !self.is_attended(room) {
            for id in self.rooms.remove(room).unwrap_or_default() {
                self.members.remove(&id);
            }
        }
    }

    /// With no seat awaited, no reply can list a departed peer any more.
    fn forget_departed(&mut self) {
        if let Some(cluster) = self.cluster.as_mut()
            && cluster.waiting.is_empty()
        {
            cluster.departed.clear();
        }
    }

    fn hear_cluster(&mut self, input: ClusterInput) -> Vec<Output> {
        let Some(cluster) = self.cluster.as_mut() else { return Vec::new() };
        match input {
            ClusterInput::Up => {
                cluster.up = true;
                let mut out: Vec<Output> = std::mem::take(&mut cluster.left_while_down)
                    .into_iter()
                    .map(|(room, id, tell)| Output::Cluster(Command::Unseat { room, id, tell }))
                    .collect();
                let local = self.members.values().filter(|m| m.home.is_none());
                out.extend(local.map(|m| {
                    Output::Cluster(Command::Reseat { room: m.room.clone(), peer: m.info.clone() })
                }));
                out
            }
            ClusterInput::Down => {
                cluster.up = false;
                let waiting: Vec<PeerId> = cluster.waiting.keys().cloned().collect();
                waiting
                    .into_iter()
                    .flat_map(|id| self.turn_away(id, ErrorCode::Unavailable))
                    .collect()
            }
            ClusterInput::Seated { id, room, before } => self.seated(id, room, before),
            ClusterInput::Full { id } => self.turn_away(id, ErrorCode::RoomFull),
            ClusterInput::Closed { id } => self.turn_away(id, ErrorCode::BadToken),
            ClusterInput::Unavailable { id } => self.turn_away(id, ErrorCode::Unavailable),
            ClusterInput::Joined { room, seat } => self.remote_joined(room, seat),
            ClusterInput::Left { id } => {
                if self.members.get(&id).is_some_and(|m| m.home.is_some()) {
                    return self.remote_left(&id);
                }
                if !cluster.waiting.is_empty() {
                    cluster.departed.insert(id);
                }
                Vec::new()
            }
            ClusterInput::Signal { from, to, data } => {
                let (Some(sender), Some(receiver)) =
                    (self.members.get(&from), self.members.get(&to))
                else {
                    return Vec::new();
                };
                if sender.home.is_none() || receiver.home.is_some() || sender.room != receiver.room
                {
                    return Vec::new();
                }
                vec![Output::Send { to, msg: ServerMessage::Signal { from, data } }]
            }
            ClusterInput::InstanceGone { instance } => {
                let gone: Vec<PeerId> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.home.as_ref() == Some(&instance))
                    .map(|(id, _)| id.clone())
                    .collect();
                gone.iter().flat_map(|id| self.remote_left(id)).collect()
            }
        }
    }

    fn seated(&mut self, id: PeerId, room: RoomId, before: Vec<Seat>) -> Vec<Output> {
        let Some(cluster) = self.cluster.as_mut() else { return Vec::new() };
        let Some((_, info)) = cluster.waiting.remove(&id) else {
            // Gone while its seat was being taken.
            return vec![Output::Cluster(Command::Unseat { room, id, tell: vec![] })];
        };
        let me = cluster.me.clone();
        let (local, remote): (Vec<Seat>, Vec<Seat>) =
            before.into_iter().partition(|seat| seat.instance == me);
        let remote: Vec<Seat> =
            remote.into_iter().filter(|seat| !cluster.departed.contains(&seat.peer.id)).collect();
        let mut peers = Vec::new();
        for seat in local {
            // Local members seated before: the ones still here.
            if self.is_local(&seat.peer.id) {
                peers.push(seat.peer);
            }
        }
        for seat in remote {
            peers.push(seat.peer.clone());
            self.add_remote(&room, seat);
        }
        let out = self.seat(room, info, peers);
        self.forget_departed();
        out
    }

    fn remote_joined(&mut self, room: RoomId, seat: Seat) -> Vec<Output> {
        let Some(cluster) = self.cluster.as_ref() else { return Vec::new() };
        let id = &seat.peer.id;
        let known = self.members.contains_key(id) || cluster.departed.contains(id);
        if known || seat.instance == cluster.me || !self.is_attended(&room) {
            return Vec::new();
        }
        let out = self.tell_locals(&room, &ServerMessage::PeerJoined { peer: seat.peer.clone() });
        self.add_remote(&room, seat);
        out
    }

    fn add_remote(&mut self, room: &RoomId, seat: Seat) {
        let id = seat.peer.id.clone();
        if self.members.contains_key(&id) {
            return;
        }
        self.rooms.entry(room.clone()).or_default().push(id.clone());
        let member = Member { room: room.clone(), info: seat.peer, home: Some(seat.instance) };
        self.members.insert(id, member);
    }

    fn remote_left(&mut self, id: &PeerId) -> Vec<Output> {
        let Some(member) = self.remove(id) else { return Vec::new() };
        self.tell_left(&member.room, id)
    }

    fn turn_away(&mut self, id: PeerId, code: ErrorCode) -> Vec<Output> {
        let Some(cluster) = self.cluster.as_mut() else { return Vec::new() };
        let Some((room, _)) = cluster.waiting.remove(&id) else { return Vec::new() };
        let message = match code {
            ErrorCode::RoomFull => self.full_message(),
            ErrorCode::BadToken => crate::access::NOT_OPEN.to_owned(),
            _ => UNAVAILABLE.to_owned(),
        };
        self.forget_unattended(&room);
        self.forget_departed();
        vec![Output::TurnAway { to: id, code, message }]
    }
}

/// Why a join or a signal that needs the other instances cannot be served now.
const UNAVAILABLE: &str =
    "this server cannot reach the other servers of this service right now; try again shortly";

fn refuse(code: ErrorCode, message: impl Into<String>) -> Output {
    Output::Refuse { code, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        let mut s = "AAAAAAAAAAAAAAAAAAAAAA".to_owned();
        s.replace_range(0..1, &((b'A' + n) as char).to_string());
        s.parse().unwrap()
    }
    fn room(n: u8) -> RoomId {
        peer(n).as_str().parse().unwrap()
    }
    fn join(hub: &mut Hub, id: u8, r: u8) -> Vec<Output> {
        hub.handle(Input::Join {
            id: peer(id),
            room: room(r),
            name: DisplayName::new(&format!("p{id}")).unwrap(),
            client: ClientKind::Cli,
            needs_open: false,
        })
    }
    fn end() -> SignalPayload {
        confab_proto::SignalData::Candidate { candidate: None }.into()
    }
    fn codes(out: &[Output]) -> Vec<ErrorCode> {
        out.iter()
            .filter_map(|o| match o {
                Output::Refuse { code, .. } => Some(*code),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn joiner_is_welcomed_and_others_are_told() {
        let mut hub = Hub::new(8);
        assert_eq!(join(&mut hub, 1, 0), vec![Output::Welcome { to: peer(1), peers: vec![] }]);
        let out = join(&mut hub, 2, 0);
        let Output::Welcome { to, peers } = &out[0] else { panic!("{out:?}") };
        assert_eq!((to, peers.len(), peers[0].id.clone()), (&peer(2), 1, peer(1)));
        assert!(matches!(&out[1], Output::Send { to, msg: ServerMessage::PeerJoined { peer: p } }
            if *to == peer(1) && p.id == peer(2)));
        assert_eq!(hub.room_count(), 1);
    }

    #[test]
    fn signals_stay_inside_their_room() {
        let mut hub = Hub::new(8);
        join(&mut hub, 1, 0);
        join(&mut hub, 2, 0);
        join(&mut hub, 3, 1);
        let out = hub.handle(Input::Signal { from: peer(1), to: peer(2), data: end() });
        assert_eq!(
            out,
            vec![Output::Send {
                to: peer(2),
                msg: ServerMessage::Signal { from: peer(1), data: end() }
            }]
        );
        for to in [peer(3), peer(9), peer(1)] {
            let out = hub.handle(Input::Signal { from: peer(1), to, data: end() });
            assert_eq!(codes(&out), vec![ErrorCode::UnknownPeer]);
        }
        // The two refusals read the same, so a foreign id cannot be told from a missing one.
        let foreign = hub.handle(Input::Signal { from: peer(1), to: peer(3), data: end() });
        let missing = hub.handle(Input::Signal { from: peer(1), to: peer(9), data: end() });
        let msg = |o: &[Output]| match &o[0] {
            Output::Refuse { message, .. } => {
                message.replace(peer(3).as_str(), "X").replace(peer(9).as_str(), "X")
            }
            _ => String::new(),
        };
        assert_eq!(msg(&foreign), msg(&missing));
    }

    #[test]
    fn full_room_and_double_join_are_refused() {
        let mut hub = Hub::new(2);
        join(&mut hub, 1, 0);
        join(&mut hub, 2, 0);
        assert_eq!(codes(&join(&mut hub, 3, 0)), vec![ErrorCode::RoomFull]);
        assert_eq!(codes(&join(&mut hub, 1, 1)), vec![ErrorCode::AlreadyJoined]);
        hub.handle(Input::Leave { id: peer(2) });
        assert!(codes(&join(&mut hub, 3, 0)).is_empty(), "a freed seat can be taken");
    }

    #[test]
    fn leaving_tells_the_rest_and_empty_rooms_vanish() {
        let mut hub = Hub::new(8);
        join(&mut hub, 1, 0);
        join(&mut hub, 2, 0);
        let out = hub.handle(Input::Leave { id: peer(1) });
        assert_eq!(
            out,
            vec![Output::Send { to: peer(2), msg: ServerMessage::PeerLeft { id: peer(1) } }]
        );
        assert!(hub.handle(Input::Leave { id: peer(1) }).is_empty(), "leaving twice is harmless");
        hub.handle(Input::Leave { id: peer(2) });
        assert_eq!((hub.room_count(), hub.peer_count()), (0, 0));
        let out = hub.handle(Input::Signal { from: peer(2), to: peer(1), data: end() });
        assert_eq!(codes(&out), vec![ErrorCode::NotJoined]);
    }

    // Several instances. This hub is instance `X`; `Y` and `Z` are others.
    fn instance(c: char) -> InstanceId {
        format!("{c}AAAAAAAAAAAAAAAAAAAAA").parse().unwrap()
    }
    fn clustered() -> Hub {
        let mut hub = Hub::clustered(3, instance('X'));
        assert!(!hub.cluster_up(), "a clustered hub starts with the cluster down");
        hub.handle(Input::Cluster(ClusterInput::Up));
        hub
    }
    fn info(id: u8) -> PeerInfo {
        PeerInfo {
            id: peer(id),
            name: DisplayName::new(&format!("p{id}")).unwrap(),
            client: ClientKind::Cli,
        }
    }
    fn seat_on(c: char, id: u8) -> Seat {
        Seat { instance: instance(c), peer: info(id) }
    }
    fn cluster(hub: &mut Hub, input: ClusterInput) -> Vec<Output> {
        hub.handle(Input::Cluster(input))
    }
    fn joined(to: u8, who: u8) -> Output {
        Output::Send { to: peer(to), msg: ServerMessage::PeerJoined { peer: info(who) } }
    }
    fn left(to: u8, who: u8) -> Output {
        Output::Send { to: peer(to), msg: ServerMessage::PeerLeft { id: peer(who) } }
    }
    fn welcome(to: u8, peers: &[u8]) -> Output {
        Output::Welcome { to: peer(to), peers: peers.iter().map(|&p| info(p)).collect() }
    }
    /// Local peer `id` joins room 0 and is seated after `before`.
    fn join_seated(hub: &mut Hub, id: u8, before: Vec<Seat>) -> Vec<Output> {
        seated_in(hub, id, 0, before)
    }
    fn seated_in(hub: &mut Hub, id: u8, r: u8, before: Vec<Seat>) -> Vec<Output> {
        let out = join(hub, id, r);
        let seat = Command::Seat { room: room(r), peer: info(id), needs_open: false };
        assert_eq!(out, vec![Output::Cluster(seat)]);
        cluster(hub, ClusterInput::Seated { id: peer(id), room: room(r), before })
    }

    #[test]
    fn a_join_is_welcomed_once_the_cluster_gives_it_a_seat_and_signals_cross_instances() {
        let mut hub = clustered();
        let out = join_seated(&mut hub, 1, vec![seat_on('Y', 2)]);
        assert_eq!(out, vec![welcome(1, &[2])]);
        // Another local joiner hears of the first and of the remote peer in its welcome.
        let out = join_seated(&mut hub, 3, vec![seat_on('Y', 2), seat_on('X', 1)]);
        assert_eq!(out, vec![welcome(3, &[1, 2]), joined(1, 3)]);
        assert_eq!((hub.peer_count(), hub.remote_instances()), (2, vec![instance('Y')]));
        let relay = hub.handle(Input::Signal { from: peer(1), to: peer(2), data: end() });
        assert_eq!(
            relay,
            vec![Output::Cluster(Command::Relay {
                instance: instance('Y'),
                from: peer(1),
                to: peer(2),
                data: end()
            })]
        );
        let heard =
            cluster(&mut hub, ClusterInput::Signal { from: peer(2), to: peer(1), data: end() });
        assert_eq!(
            heard,
            vec![Output::Send {
                to: peer(1),
                msg: ServerMessage::Signal { from: peer(2), data: end() }
            }]
        );
        // A remote peer cannot speak for a local one, nor reach another room.
        let forged =
            cluster(&mut hub, ClusterInput::Signal { from: peer(1), to: peer(3), data: end() });
        assert!(forged.is_empty());
    }

    #[test]
    fn a_room_full_across_instances_turns_the_joiner_away_and_it_may_try_again() {
        let mut hub = clustered();
        join(&mut hub, 1, 0);
        let out = cluster(&mut hub, ClusterInput::Full { id: peer(1) });
        assert_eq!(
            out,
            vec![Output::TurnAway {
                to: peer(1),
                code: ErrorCode::RoomFull,
                message: hub.full_message()
            }]
        );
        assert_eq!((hub.peer_count(), hub.room_count()), (0, 0));
        assert_eq!(join(&mut hub, 1, 0).len(), 1, "turned away is not joined");
        // A room this instance already knows to be full is refused without asking.
        let mut hub = clustered();
        join_seated(&mut hub, 1, vec![seat_on('Y', 2), seat_on('Z', 3)]);
        assert_eq!(codes(&join(&mut hub, 4, 0)), vec![ErrorCode::RoomFull]);
    }

    #[test]
    fn announcements_that_cross_a_seats_reply_are_neither_lost_nor_resurrected() {
        // Peer 3 on Z was seated after our joiner (its announcement came first): introduced
        // after the welcome. Peer 2 on Y left after our seat was taken: not introduced at all.
        let mut hub = clustered();
        join(&mut hub, 1, 0);
        assert!(
            cluster(&mut hub, ClusterInput::Joined { room: room(0), seat: seat_on('Z', 3) })
                .is_empty()
        );
        assert!(cluster(&mut hub, ClusterInput::Left { id: peer(2) }).is_empty());
        let out = cluster(
            &mut hub,
            ClusterInput::Seated { id: peer(1), room: room(0), before: vec![seat_on('Y', 2)] },
        );
        assert_eq!(out, vec![welcome(1, &[]), joined(1, 3)]);
        assert_eq!(hub.remote_members(), vec![(room(0), peer(3))]);
        // Announced twice (a reseat after Redis came back): nobody hears it twice.
        assert!(
            cluster(&mut hub, ClusterInput::Joined { room: room(0), seat: seat_on('Z', 3) })
                .is_empty()
        );
        // A room with nobody here is not ours to follow.
        assert!(
            cluster(&mut hub, ClusterInput::Joined { room: room(5), seat: seat_on('Z', 6) })
                .is_empty()
        );
        assert_eq!(hub.room_count(), 1);
    }

    #[test]
    fn leaving_gives_up_the_seat_and_a_dead_instance_takes_its_peers_along() {
        let mut hub = clustered();
        join_seated(&mut hub, 1, vec![seat_on('Y', 2)]);
        join_seated(&mut hub, 3, vec![seat_on('Y', 2), seat_on('X', 1)]);
        assert_eq!(
            cluster(&mut hub, ClusterInput::InstanceGone { instance: instance('Y') }),
            vec![left(1, 2), left(3, 2)]
        );
        assert!(hub.remote_instances().is_empty());
        assert!(
            cluster(&mut hub, ClusterInput::Joined { room: room(0), seat: seat_on('Z', 4) }).len()
                == 2
        );
        let out = hub.handle(Input::Leave { id: peer(3) });
        assert_eq!(
            out,
            vec![
                left(1, 3),
                Output::Cluster(Command::Unseat {
                    room: room(0),
                    id: peer(3),
                    tell: vec![instance('Z')]
                })
            ]
        );
        // The last one here leaves: the room's remote members are no longer followed.
        hub.handle(Input::Leave { id: peer(1) });
        assert_eq!((hub.room_count(), hub.remote_members().len()), (0, 0));
        // A joiner that leaves while waiting gives up the seat it may have been given.
        join(&mut hub, 7, 0);
        let out = hub.handle(Input::Leave { id: peer(7) });
        assert_eq!(
            out,
            vec![Output::Cluster(Command::Unseat { room: room(0), id: peer(7), tell: vec![] })]
        );
        let late =
            cluster(&mut hub, ClusterInput::Seated { id: peer(7), room: room(0), before: vec![] });
        assert_eq!(
            late,
            vec![Output::Cluster(Command::Unseat { room: room(0), id: peer(7), tell: vec![] })]
        );
    }

    #[test]
    fn while_the_cluster_is_down_only_rooms_all_here_go_on_and_all_is_seated_again_after() {
        let mut hub = clustered();
        join_seated(&mut hub, 1, vec![]);
        join(&mut hub, 9, 2);
        seated_in(&mut hub, 3, 3, vec![]);
        cluster(&mut hub, ClusterInput::Joined { room: room(0), seat: seat_on('Y', 4) });
        seated_in(&mut hub, 5, 1, vec![]);

        let out = cluster(&mut hub, ClusterInput::Down);
        assert_eq!(out.len(), 1, "the joiner waiting for a seat is turned away: {out:?}");
        assert!(
            matches!(&out[0], Output::TurnAway { to, code: ErrorCode::Unavailable, .. } if *to == peer(9))
        );
        assert!(!hub.cluster_up());
        // Room 1 is all here: a join goes on. Room 0 has a peer elsewhere; room 2 is unknown.
        let out = join(&mut hub, 6, 1);
        assert_eq!(out, vec![welcome(6, &[5]), joined(5, 6)]);
        assert_eq!(codes(&join(&mut hub, 7, 0)), vec![ErrorCode::Unavailable]);
        assert_eq!(codes(&join(&mut hub, 8, 2)), vec![ErrorCode::Unavailable]);
        let out = hub.handle(Input::Signal { from: peer(1), to: peer(4), data: end() });
        assert_eq!(codes(&out), vec![ErrorCode::Unavailable]);
        let out = hub.handle(Input::Signal { from: peer(5), to: peer(6), data: end() });
        assert!(matches!(&out[..], [Output::Send { .. }]), "local signals still flow");
        assert_eq!(hub.handle(Input::Leave { id: peer(5) }), vec![left(6, 5)]);

        let mut out = cluster(&mut hub, ClusterInput::Up);
        let unseat = out.remove(0);
        assert_eq!(
            unseat,
            Output::Cluster(Command::Unseat { room: room(1), id: peer(5), tell: vec![] })
        );
        let mut reseated: Vec<PeerId> = out
            .iter()
            .map(|o| match o {
                Output::Cluster(Command::Reseat { peer, .. }) => peer.id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        reseated.sort();
        assert_eq!(reseated, vec![peer(1), peer(3), peer(6)]);
    }

    #[test]
    fn a_meeting_no_instance_holds_open_turns_a_joiner_without_a_token_away() {
        let mut hub = clustered();
        let out = hub.handle(Input::Join {
            id: peer(1),
            room: room(0),
            name: DisplayName::new("p1").unwrap(),
            client: ClientKind::Cli,
            needs_open: true,
        });
        let seat = Command::Seat { room: room(0), peer: info(1), needs_open: true };
        assert_eq!(out, vec![Output::Cluster(seat)]);
        let out = cluster(&mut hub, ClusterInput::Closed { id: peer(1) });
        let message = crate::access::NOT_OPEN.to_owned();
        assert_eq!(out, vec![Output::TurnAway { to: peer(1), code: ErrorCode::BadToken, message }]);
        // A meeting made here is opened for every instance; alone, there is nobody to tell.
        let made = hub.handle(Input::Made { room: room(2) });
        assert_eq!(made, vec![Output::Cluster(Command::Open { room: room(2) })]);
        assert!(Hub::new(8).handle(Input::Made { room: room(2) }).is_empty());
    }
}
