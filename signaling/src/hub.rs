//! Rooms and relay as a pure state machine: [`Hub::handle`] takes one [`Input`] and returns what
//! must be sent to whom. No sockets, no clock, no randomness (peer ids come in with `Join`), so
//! every rule of room membership is a plain unit test.
//!
//! The rule that matters most: a message only ever reaches a member of the sender's own room.
//! A `to` that names a peer of another room is answered exactly like one that names nobody.

use std::collections::HashMap;

use confab_proto::{
    ClientKind, DisplayName, ErrorCode, PeerId, PeerInfo, RoomId, ServerMessage, SignalPayload,
};

#[derive(Debug)]
pub enum Input {
    Join {
        id: PeerId,
        room: RoomId,
        name: DisplayName,
        client: ClientKind,
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
}

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The joiner is in: tell it who else is there (the I/O layer adds ICE servers and limits).
    Welcome { to: PeerId, peers: Vec<PeerInfo> },
    /// Send `msg` to peer `to`.
    Send { to: PeerId, msg: ServerMessage },
    /// Answer the sender of the input with an error.
    Refuse { code: ErrorCode, message: String },
}

#[derive(Debug)]
struct Member {
    room: RoomId,
    info: PeerInfo,
}

/// All rooms of one server.
#[derive(Debug)]
pub struct Hub {
    max_peers: usize,
    /// Members of each room, in order of joining.
    rooms: HashMap<RoomId, Vec<PeerId>>,
    members: HashMap<PeerId, Member>,
}

impl Hub {
    pub fn new(max_peers: usize) -> Self {
        Self { max_peers, rooms: HashMap::new(), members: HashMap::new() }
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.members.len()
    }

    /// Whether anyone is in `room`.
    pub fn is_occupied(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// The room `id` is in.
    pub fn room_of(&self, id: &PeerId) -> Option<&RoomId> {
        self.members.get(id).map(|m| &m.room)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Join { id, room, name, client } => self.join(id, room, name, client),
            Input::Signal { from, to, data } => self.signal(from, to, data),
            Input::Leave { id } => self.leave(&id),
        }
    }

    fn join(
        &mut self,
        id: PeerId,
        room: RoomId,
        name: DisplayName,
        client: ClientKind,
    ) -> Vec<Output> {
        if self.members.contains_key(&id) {
            return vec![refuse(ErrorCode::AlreadyJoined, "this connection has already joined")];
        }
        let ids = self.rooms.entry(room.clone()).or_default();
        if ids.len() >= self.max_peers {
            let max = self.max_peers;
            return vec![refuse(
                ErrorCode::RoomFull,
                format!("this meeting is full ({max} people)"),
            )];
        }
        let info = PeerInfo { id: id.clone(), name, client };
        let mut out = Vec::with_capacity(ids.len() + 1);
        let mut peers = Vec::with_capacity(ids.len());
        for other in ids.iter() {
            if let Some(m) = self.members.get(other) {
                peers.push(m.info.clone());
                out.push(Output::Send {
                    to: other.clone(),
                    msg: ServerMessage::PeerJoined { peer: info.clone() },
                });
            }
        }
        ids.push(id.clone());
        self.members.insert(id.clone(), Member { room, info });
        out.insert(0, Output::Welcome { to: id, peers });
        out
    }

    fn signal(&mut self, from: PeerId, to: PeerId, data: SignalPayload) -> Vec<Output> {
        let Some(sender) = self.members.get(&from) else {
            return vec![refuse(ErrorCode::NotJoined, "join a room before sending signals")];
        };
        let same_room = self.members.get(&to).is_some_and(|m| m.room == sender.room);
        if !same_room || to == from {
            return vec![refuse(ErrorCode::UnknownPeer, format!("no peer {to} in this meeting"))];
        }
        vec![Output::Send { to, msg: ServerMessage::Signal { from, data } }]
    }

    fn leave(&mut self, id: &PeerId) -> Vec<Output> {
        let Some(member) = self.members.remove(id) else { return Vec::new() };
        let Some(ids) = self.rooms.get_mut(&member.room) else { return Vec::new() };
        ids.retain(|p| p != id);
        if ids.is_empty() {
            self.rooms.remove(&member.room);
            return Vec::new();
        }
        ids.iter()
            .map(|to| Output::Send {
                to: to.clone(),
                msg: ServerMessage::PeerLeft { id: id.clone() },
            })
            .collect()
    }
}

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
}
