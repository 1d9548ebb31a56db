//! Who is in the meeting and which connection stands for whom: connecting, replacing and
//! dropping connections, the rejoin, instance and re-key rules, and making a failed connection
//! again.

use confab_proto::{IceServer, PeerId, PeerInfo, SdpType, SignalData};

use super::{LinkCommand, LinkId, LinkSetup, MAX_RECONNECTS, Mesh, Peer, media_message};
use crate::api::{EngineEvent, MediaState};
use crate::sync::PeerSync;

impl Mesh {
    pub(super) fn connect(&mut self, remote: PeerId, offerer: bool) {
        let Some(me) = self.me.clone() else { return };
        // A newcomer with nothing asks exactly one peer (the first) for a snapshot.
        let want_snapshot = offerer && !self.asked_snapshot && self.doc_is_empty();
        self.asked_snapshot |= want_snapshot;
        let link = LinkId(self.next_link);
        self.next_link += 1;
        let setup = LinkSetup {
            me,
            remote: remote.clone(),
            offerer,
            want_snapshot,
            instance: self.instance.clone(),
            ice_servers: self.ice_servers.clone(),
        };
        self.tell(link, LinkCommand::Open(setup));
        let sync = if want_snapshot { PeerSync::awaiting_snapshot() } else { PeerSync::new() };
        let peer = Peer {
            link,
            sync,
            ready: false,
            connected: false,
            signaling_left: false,
            instance: None,
            remote_fingerprint: None,
            cursor: None,
            intake: super::intake::Intake::new(self.now_ms),
            pace: super::notes::Pace::new(self.now_ms),
        };
        self.links.insert(link, remote.clone());
        if let Some(old) = self.peers.insert(remote.clone(), peer) {
            self.links.remove(&old.link);
            self.tell(old.link, LinkCommand::Close);
            // Transfers ran on the old connection and end with it.
            self.fail_transfers_with(&remote);
        }
    }

    /// Forgets a peer's connection and tells the front end, once.
    pub(super) fn peer_gone(&mut self, id: &PeerId, failure: Option<String>) {
        self.drop_connection(id);
        self.fail_transfers_with(id);
        self.report_cursors();
        if self.shown.remove(id).is_some() {
            self.emit(match failure {
                Some(reason) => EngineEvent::PeerFailed { id: id.clone(), reason },
                None => EngineEvent::PeerLeft { id: id.clone() },
            });
        }
    }

    /// A connection that failed while signaling still has the peer is made again. Both ends
    /// offer (either may be the only one that knows the other's id now); when both do, perfect
    /// negotiation settles them on one connection. Each attempt takes up to the connect
    /// timeout; after [`MAX_RECONNECTS`] in a row the peer is left alone until signaling
    /// announces it again.
    pub(super) fn connect_again(&mut self, id: &PeerId) {
        let tries = self.reconnects.entry(id.clone()).or_default();
        *tries += 1;
        if *tries <= MAX_RECONNECTS
            && self.members.contains(id)
            && !self.peers.contains_key(id)
            && !self.flooders.contains(id)
        {
            self.connect(id.clone(), true);
        }
    }

    pub(super) fn drop_connection(&mut self, id: &PeerId) {
        if let Some(peer) = self.peers.remove(id) {
            self.links.remove(&peer.link);
            self.tell(peer.link, LinkCommand::Close);
        }
    }

    pub(super) fn joined(
        &mut self,
        you: PeerId,
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
    ) {
        self.former_ids.extend(self.me.replace(you.clone()));
        let peers: Vec<PeerInfo> =
            peers.into_iter().filter(|p| !self.former_ids.contains(&p.id)).collect();
        self.ice_servers = ice_servers;
        self.members = peers.iter().map(|p| p.id.clone()).collect();
        self.emit(EngineEvent::Joined { you: you.clone() });
        // Half-made connections lost their signaling with our old id: start over. Live ones
        // learn our new id, so what we signal them later reaches them.
        let half_made: Vec<PeerId> =
            self.peers.iter().filter(|(_, p)| !p.ready).map(|(id, _)| id.clone()).collect();
        for id in half_made {
            self.drop_connection(&id);
        }
        // Whoever we showed and neither is connected nor in the meeting any more has left.
        let gone: Vec<PeerId> = (self.shown.keys())
            .filter(|id| !self.peers.contains_key(*id) && !self.members.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.peer_gone(&id, None);
        }
        self.reconnects.clear();
        let live: Vec<LinkId> = self.peers.values().map(|p| p.link).collect();
        for link in live {
            self.tell(link, LinkCommand::Rekey(you.clone()));
        }
        // The newcomer offers to everyone already there that it is not connected to.
        for p in peers {
            self.shown.entry(p.id.clone()).or_insert(false);
            let (id, name, client) = (p.id.clone(), p.name.to_string(), p.client);
            self.emit(EngineEvent::PeerJoined { id, name, client });
            if !self.peers.contains_key(&p.id) {
                self.connect(p.id, true);
            }
        }
    }

    pub(super) fn on_signal(&mut self, from: PeerId, data: SignalData) {
        let fingerprint = match &data {
            SignalData::Sdp { sdp } => crate::peer::fingerprint(&sdp.sdp),
            SignalData::Candidate { .. } => None,
        };
        let is_offer = matches!(&data, SignalData::Sdp { sdp } if sdp.kind == SdpType::Offer);
        if is_offer && !self.peers.contains_key(&from) && !self.members.contains(&from) {
            // Signaling relays only within the room, and announces everyone before relaying
            // for them: an offer from someone it never announced is not to be trusted.
            return;
        }
        if self.flooders.contains(&from) {
            return;
        }
        if is_offer && !self.peers.contains_key(&from) {
            // A peer that rejoined signaling, and restarts ICE on our connection before its
            // re-keying hello could reach us over it, offers under its new id with the
            // fingerprint we already verified. Only the holder of that certificate can carry the
            // connection on, so the offer is that connection's.
            let same_connection = (self.peers.iter())
                .find(|(_, p)| {
                    p.ready && fingerprint.is_some() && p.remote_fingerprint == fingerprint
                })
                .map(|(id, _)| id.clone());
            if let Some(old) = same_connection {
                self.rekeyed(old, from.clone());
                if let Some(peer) = self.peers.get(&from) {
                    self.tell(peer.link, LinkCommand::PeerRejoined(from.clone()));
                }
            }
        }
        let new_connection = is_offer
            && self.peers.get(&from).is_some_and(|p| {
                p.remote_fingerprint.is_some()
                    && fingerprint.is_some()
                    && p.remote_fingerprint != fingerprint
            });
        if new_connection {
            // Both of us rejoined signaling and the peer, not knowing us under our new id,
            // started a new connection: it replaces this one.
            self.connect(from.clone(), false);
        }
        if !self.peers.contains_key(&from) {
            if !is_offer {
                // Trailing candidates of a connection already gone.
                return;
            }
            self.connect(from.clone(), false);
        }
        let Some(peer) = self.peers.get_mut(&from) else { return };
        if peer.remote_fingerprint.is_none() {
            peer.remote_fingerprint = fingerprint;
        }
        let link = peer.link;
        self.tell(link, LinkCommand::Remote(data));
    }

    pub(super) fn rekeyed(&mut self, id: PeerId, new_id: PeerId) {
        if id == new_id {
            // Its offer under the new id told us first.
            return;
        }
        if self.peers.contains_key(&new_id) {
            // A newer connection to the same peer is already under way (both of us rejoined):
            // it wins.
            self.peer_gone(&id, None);
            return;
        }
        let Some(mut peer) = self.peers.remove(&id) else { return };
        peer.signaling_left = false;
        self.links.insert(peer.link, new_id.clone());
        self.peers.insert(new_id.clone(), peer);
        self.files.rename_peer(&id, &new_id);
        self.shown.remove(&id);
        self.shown.insert(new_id.clone(), true);
        self.emit(EngineEvent::PeerRenamed { old: id, id: new_id });
        self.report_cursors();
    }

    pub(super) fn ready(
        &mut self,
        id: PeerId,
        name: String,
        want_snapshot: bool,
        instance: Option<String>,
    ) {
        // Both ends rejoined signaling under new ids and connected again: this connection
        // replaces the older one with the same run of the same peer.
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
        let link = peer.link;
        let snapshot = if want_snapshot { peer.sync.send_snapshot(&mut self.doc) } else { vec![] };
        for frame in snapshot {
            self.tell(link, LinkCommand::SendSync(frame));
        }
        if self.media != MediaState::default() {
            self.tell(link, LinkCommand::SendCtl(media_message(&self.media)));
        }
        if self.cursor.is_some() {
            self.tell(link, LinkCommand::SendCtl(self.cursor_message()));
        }
        self.reconnects.remove(&id);
        // A connection that replaced another one to the same peer is no news.
        if self.shown.insert(id.clone(), true) != Some(true) {
            self.emit(EngineEvent::PeerConnected { id: id.clone(), name });
        }
        self.flush(Some(&id));
    }
}
