//! The hello gate of one connection (docs/protocol.md §3) as a pure state machine: when our
//! `hello` goes out and is repeated, when the peer's counts as verified, what happens to frames
//! that arrive before it, and when the connection is given up. The socket loop in
//! [`super`] reads the channels and the DTLS fingerprints and does what this decides.

use std::time::Instant;

pub use confab_proto::limits::{CONNECT_TIMEOUT, MAX_EARLY_FRAMES};
use confab_proto::{ClientKind, PeerId};

use super::{PeerError, PeerEvent};

/// The peer's `hello`, with what our connection makes of its `fp_mac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    pub peer_id: PeerId,
    pub name: String,
    pub client: ClientKind,
    pub want_snapshot: bool,
    pub instance: Option<String>,
    /// Its `fp_mac` verified over the fingerprints our connection sees.
    pub mac_ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateInput {
    /// Both negotiated channels are open: a hello can be heard now.
    ChannelsOpen,
    /// The repeat timer (or any timer) fired.
    Tick,
    /// We rejoined signaling under a new id.
    Rekeyed,
    Hello(PeerHello),
    /// A `sync` or `ctl` frame other than a hello.
    Frame(PeerEvent),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutput {
    /// Send our hello (made afresh: our id may have changed).
    SendHello,
    /// Report this to the mesh.
    Emit(PeerEvent),
    /// Give up: the task ends with this event.
    End(PeerEvent),
}

#[derive(Debug)]
pub struct HelloGate {
    /// The id signaling gave the peer; its hello must name it.
    remote: PeerId,
    deadline: Instant,
    channels_open: bool,
    verified: bool,
    /// What arrived before the peer's hello verified, in order.
    early: Vec<PeerEvent>,
}

impl HelloGate {
    pub fn new(now: Instant, remote: PeerId) -> Self {
        Self {
            remote,
            deadline: now + CONNECT_TIMEOUT,
            channels_open: false,
            verified: false,
            early: Vec::new(),
        }
    }

    pub fn verified(&self) -> bool {
        self.verified
    }

    pub fn handle(&mut self, now: Instant, input: GateInput) -> Vec<GateOutput> {
        match input {
            GateInput::ChannelsOpen if !self.channels_open => {
                self.channels_open = true;
                vec![GateOutput::SendHello]
            }
            GateInput::ChannelsOpen => vec![],
            GateInput::Tick if self.verified => vec![],
            GateInput::Tick if now >= self.deadline => {
                vec![GateOutput::End(PeerEvent::Failed(PeerError::Timeout))]
            }
            // A hello sent before the peer's channel opened is lost, and nobody can tell when
            // it did: repeat ours until the peer's has verified.
            GateInput::Tick | GateInput::Rekeyed if self.channels_open => {
                vec![GateOutput::SendHello]
            }
            GateInput::Tick | GateInput::Rekeyed => vec![],
            GateInput::Hello(hello) => self.on_hello(hello),
            GateInput::Frame(event) if self.verified => vec![GateOutput::Emit(event)],
            GateInput::Frame(event) if self.early.len() < MAX_EARLY_FRAMES => {
                self.early.push(event);
                vec![]
            }
            GateInput::Frame(_) => {
                vec![GateOutput::End(PeerEvent::Failed(PeerError::TooMuchBeforeHello))]
            }
        }
    }

    fn on_hello(&mut self, hello: PeerHello) -> Vec<GateOutput> {
        if self.verified && hello.peer_id != self.remote {
            // The peer rejoined signaling under a new id; the connection is already proven.
            self.remote = hello.peer_id.clone();
            return vec![GateOutput::Emit(PeerEvent::Rekeyed(hello.peer_id))];
        }
        if self.verified {
            // The peer repeats its hello: it has not heard ours yet.
            return vec![GateOutput::SendHello];
        }
        if hello.peer_id != self.remote || !hello.mac_ok {
            // Ours goes out once more first: the first one may have been lost (sent before the
            // peer's channel opened), and without it the peer sees only a dropped connection
            // instead of learning, from our MAC, that it is intercepted too.
            let last_word = self.channels_open.then_some(GateOutput::SendHello);
            return last_word
                .into_iter()
                .chain([GateOutput::End(PeerEvent::Intercepted)])
                .collect();
        }
        self.verified = true;
        let ready = PeerEvent::Ready {
            name: hello.name,
            client: hello.client,
            want_snapshot: hello.want_snapshot,
            instance: hello.instance,
        };
        let mut out = vec![GateOutput::Emit(ready)];
        out.extend(self.early.drain(..).map(GateOutput::Emit));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(first: char) -> PeerId {
        format!("{first}AAAAAAAAAAAAAAAAAAAAA").parse().unwrap()
    }

    fn hello(peer_id: PeerId, mac_ok: bool) -> GateInput {
        GateInput::Hello(PeerHello {
            peer_id,
            name: "Bo".into(),
            client: ClientKind::Cli,
            want_snapshot: false,
            instance: Some("run".into()),
            mac_ok,
        })
    }

    fn ready() -> GateOutput {
        GateOutput::Emit(PeerEvent::Ready {
            name: "Bo".into(),
            client: ClientKind::Cli,
            want_snapshot: false,
            instance: Some("run".into()),
        })
    }

    #[test]
    fn frames_before_the_hello_wait_for_it_in_order() {
        let t0 = Instant::now();
        let mut gate = HelloGate::new(t0, peer('B'));
        assert_eq!(
            gate.handle(t0, GateInput::Tick),
            vec![],
            "nothing to repeat before the channels open"
        );
        assert_eq!(gate.handle(t0, GateInput::ChannelsOpen), vec![GateOutput::SendHello]);
        assert_eq!(gate.handle(t0, GateInput::Tick), vec![GateOutput::SendHello]);
        let (one, two) = (PeerEvent::Sync(vec![1]), PeerEvent::Sync(vec![2]));
        assert_eq!(gate.handle(t0, GateInput::Frame(one.clone())), vec![]);
        assert_eq!(gate.handle(t0, GateInput::Frame(two.clone())), vec![]);
        let out = gate.handle(t0, hello(peer('B'), true));
        assert_eq!(out, vec![ready(), GateOutput::Emit(one), GateOutput::Emit(two)]);
        assert_eq!(gate.handle(t0, GateInput::Tick), vec![], "no repeats once verified");
        // The peer has not heard us yet: answer its repeat.
        assert_eq!(gate.handle(t0, hello(peer('B'), true)), vec![GateOutput::SendHello]);
    }

    #[test]
    fn a_failed_mac_or_another_id_is_an_interception() {
        let t0 = Instant::now();
        for bad in [hello(peer('B'), false), hello(peer('C'), true)] {
            let mut gate = HelloGate::new(t0, peer('B'));
            gate.handle(t0, GateInput::ChannelsOpen);
            let out = gate.handle(t0, bad.clone());
            // Our hello goes once more, so the peer can tell it is intercepted too.
            assert_eq!(out, vec![GateOutput::SendHello, GateOutput::End(PeerEvent::Intercepted)]);
            assert!(!gate.verified());
            // Before our channels are open there is nothing to send it on.
            let mut early = HelloGate::new(t0, peer('B'));
            assert_eq!(early.handle(t0, bad), vec![GateOutput::End(PeerEvent::Intercepted)]);
        }
    }

    #[test]
    fn a_verified_peer_that_names_a_new_id_has_rejoined() {
        let t0 = Instant::now();
        let mut gate = HelloGate::new(t0, peer('B'));
        gate.handle(t0, GateInput::ChannelsOpen);
        gate.handle(t0, hello(peer('B'), true));
        // The MAC is not checked again: the connection itself is proven already.
        let out = gate.handle(t0, hello(peer('D'), false));
        assert_eq!(out, vec![GateOutput::Emit(PeerEvent::Rekeyed(peer('D')))]);
        // And we tell the peer our own new id the same way.
        assert_eq!(gate.handle(t0, GateInput::Rekeyed), vec![GateOutput::SendHello]);
    }

    #[test]
    fn the_connection_is_given_up_without_a_hello_in_time() {
        let t0 = Instant::now();
        let mut gate = HelloGate::new(t0, peer('B'));
        gate.handle(t0, GateInput::ChannelsOpen);
        assert_eq!(
            gate.handle(t0 + CONNECT_TIMEOUT / 2, GateInput::Tick),
            vec![GateOutput::SendHello]
        );
        let out = gate.handle(t0 + CONNECT_TIMEOUT, GateInput::Tick);
        assert_eq!(out, vec![GateOutput::End(PeerEvent::Failed(PeerError::Timeout))]);
    }

    #[test]
    fn a_flood_before_the_hello_ends_the_connection() {
        let t0 = Instant::now();
        let mut gate = HelloGate::new(t0, peer('B'));
        for _ in 0..MAX_EARLY_FRAMES {
            assert_eq!(gate.handle(t0, GateInput::Frame(PeerEvent::Sync(vec![0]))), vec![]);
        }
        let out = gate.handle(t0, GateInput::Frame(PeerEvent::Sync(vec![0])));
        assert_eq!(out, vec![GateOutput::End(PeerEvent::Failed(PeerError::TooMuchBeforeHello))]);
    }
}
