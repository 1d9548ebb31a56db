//! File offers and transfers as the mesh keeps them: who was offered what, which offers wait
//! for the user, and the event each step makes. The bytes move in [`crate::transfer`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use confab_proto::PeerId;

use confab_proto::CtlMessage;
use confab_proto::datachannel::validate_file_offer;
use confab_proto::limits::MAX_WAITING_FILE_OFFERS;

use super::{Done, LinkCommand, Mesh, refused, uuid_v4};
use crate::api::EngineError;
use crate::api::{Direction, EngineEvent, FileEvent, FileState};
use crate::transfer::{self, Expected, FileInfo, TransferUpdate};

#[derive(Debug)]
struct Outgoing {
    info: FileInfo,
    peers: BTreeSet<PeerId>,
    /// Those of `peers` that accepted: the bytes are moving.
    sending: BTreeSet<PeerId>,
}

#[derive(Debug)]
struct Incoming {
    peer: PeerId,
    name: String,
    size: u64,
    sha256: String,
    /// We accepted; the bytes are (about to be) moving.
    accepted: bool,
}

#[derive(Debug, Default)]
pub(super) struct Files {
    outgoing: BTreeMap<String, Outgoing>,
    incoming: BTreeMap<String, Incoming>,
}

impl Files {
    /// We offer `info` to `peers` as transfer `file`; one `Offered` event per peer.
    pub fn offer(&mut self, file: &str, info: FileInfo, peers: Vec<PeerId>) -> Vec<FileEvent> {
        let events =
            peers.iter().map(|p| outgoing_event(file, p, &info, FileState::Offered)).collect();
        let peers = peers.into_iter().collect();
        self.outgoing.insert(file.to_owned(), Outgoing { info, peers, sending: BTreeSet::new() });
        events
    }

    /// A peer offers us a file. A refusal is the `Failed` event, whose reason the peer hears.
    pub fn offered(
        &mut self,
        peer: &PeerId,
        file: &str,
        name: &str,
        size: u64,
        sha256: &str,
        max_bytes: u64,
    ) -> Result<FileEvent, FileEvent> {
        let incoming = Incoming {
            peer: peer.clone(),
            name: transfer::safe_file_name(name),
            size,
            sha256: sha256.to_owned(),
            accepted: false,
        };
        // A peer cannot pile up offers without end: past this many waiting, more are declined.
        let waiting = self.incoming.values().filter(|i| i.peer == *peer && !i.accepted).count();
        let problem = if let Err(e) = validate_file_offer(file, sha256, size, max_bytes) {
            Some(e.to_string())
        } else if self.incoming.contains_key(file) || self.outgoing.contains_key(file) {
            Some("a transfer with that id is already under way".to_owned())
        } else if waiting >= MAX_WAITING_FILE_OFFERS {
            Some(format!("{MAX_WAITING_FILE_OFFERS} offers are already waiting for an answer"))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(incoming_event(file, &incoming, FileState::Failed { reason }));
        }
        let event = incoming_event(file, &incoming, FileState::Offered);
        self.incoming.insert(file.to_owned(), incoming);
        Ok(event)
    }

    /// We accept an offer: who sent it, and what its channel must bring.
    pub fn accept(
        &mut self,
        file: &str,
        download_dir: &Path,
    ) -> Result<(PeerId, Expected), EngineError> {
        let incoming = self
            .incoming
            .get_mut(file)
            .ok_or_else(|| EngineError::Refused(format!("no file {file} was offered")))?;
        if incoming.accepted {
            return Err(EngineError::Refused(format!("file {file} is already accepted")));
        }
        incoming.accepted = true;
        let expected = Expected {
            name: incoming.name.clone(),
            size: incoming.size,
            sha256: incoming.sha256.clone(),
            download_dir: download_dir.to_path_buf(),
        };
        Ok((incoming.peer.clone(), expected))
    }

    /// `peer` accepted our offer `file`: the command that starts sending, and its event. A
    /// second accept from the same peer starts nothing.
    pub fn accepted(&mut self, file: &str, peer: &PeerId) -> Option<(LinkCommand, FileEvent)> {
        let out = self.outgoing.get_mut(file).filter(|o| o.peers.contains(peer))?;
        if !out.sending.insert(peer.clone()) {
            return None;
        }
        let command = LinkCommand::SendFile {
            id: file.to_owned(),
            path: out.info.path.clone(),
            size: out.info.size,
        };
        Some((command, outgoing_event(file, peer, &out.info, FileState::Progress { bytes: 0 })))
    }

    pub fn is_outgoing(&self, file: &str) -> bool {
        self.outgoing.contains_key(file)
    }

    pub fn incoming_peer(&self, file: &str) -> Option<PeerId> {
        self.incoming.get(file).map(|i| i.peer.clone())
    }

    /// Everyone a transfer is with, either way.
    pub fn peers_of(&self, file: &str) -> Vec<PeerId> {
        match (self.outgoing.get(file), self.incoming.get(file)) {
            (Some(out), _) => out.peers.iter().cloned().collect(),
            (None, Some(incoming)) => vec![incoming.peer.clone()],
            (None, None) => Vec::new(),
        }
    }

    /// The event for transfer `file` with `peer` in `state`, if there is such a transfer.
    pub fn event(&self, peer: &PeerId, file: &str, state: FileState) -> Option<FileEvent> {
        if let Some(out) = self.outgoing.get(file).filter(|o| o.peers.contains(peer)) {
            return Some(outgoing_event(file, peer, &out.info, state));
        }
        let incoming = self.incoming.get(file).filter(|i| &i.peer == peer)?;
        Some(incoming_event(file, incoming, state))
    }

    /// The last event of a transfer with `peer`; it is forgotten.
    pub fn end(&mut self, peer: &PeerId, file: &str, state: FileState) -> Option<FileEvent> {
        let event = self.event(peer, file, state)?;
        match event.direction {
            Direction::Receiving => {
                self.incoming.remove(file);
            }
            Direction::Sending => {
                if let Some(out) = self.outgoing.get_mut(file) {
                    out.peers.remove(peer);
                    out.sending.remove(peer);
                    if out.peers.is_empty() {
                        self.outgoing.remove(file);
                    }
                }
            }
        }
        Some(event)
    }

    /// Ends every transfer with `peer`, failed for `reason`.
    pub fn fail_all_with(&mut self, peer: &PeerId, reason: &str) -> Vec<FileEvent> {
        let files: Vec<String> = (self.outgoing.iter())
            .filter(|(_, o)| o.peers.contains(peer))
            .map(|(id, _)| id.clone())
            .chain(self.incoming.iter().filter(|(_, i)| &i.peer == peer).map(|(id, _)| id.clone()))
            .collect();
        files
            .iter()
            .filter_map(|file| {
                self.end(peer, file, FileState::Failed { reason: reason.to_owned() })
            })
            .collect()
    }

    /// The peer rejoined signaling: its transfers go on under its new id.
    pub fn rename_peer(&mut self, old: &PeerId, new: &PeerId) {
        for out in self.outgoing.values_mut() {
            if out.peers.remove(old) {
                out.peers.insert(new.clone());
            }
            if out.sending.remove(old) {
                out.sending.insert(new.clone());
            }
        }
        for incoming in self.incoming.values_mut().filter(|i| &i.peer == old) {
            incoming.peer = new.clone();
        }
    }
}

/// The mesh's side of file transfers: offers on `ctl`, and what the connections report.
impl Mesh {
    pub(super) fn on_file_offer(
        &mut self,
        peer: PeerId,
        file: String,
        name: String,
        size: u64,
        sha: String,
    ) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let max = self.config.max_file_bytes;
        match self.files.offered(&peer, &file, &name, size, &sha, max) {
            Err(event) => {
                let FileState::Failed { reason } = &event.state else { return };
                let cancel = CtlMessage::FileCancel { id: file, reason: reason.clone() };
                self.tell_peer(&peer, LinkCommand::SendCtl(cancel));
                self.emit(EngineEvent::File(event));
            }
            Ok(event) => {
                self.emit(EngineEvent::File(event));
                if self.config.auto_accept_files
                    && let Err(e) = self.accept_file(&file)
                {
                    self.emit(EngineEvent::Error { message: e.to_string() });
                }
            }
        }
    }

    pub(super) fn accept_file(&mut self, file: &str) -> Result<Done, EngineError> {
        let (peer, expected) = self.files.accept(file, &self.config.download_dir)?;
        let link =
            self.peers.get(&peer).map(|p| p.link).ok_or_else(|| refused("the sender has left"))?;
        // The expectation reaches the connection before the peer can hear our accept.
        self.tell(link, LinkCommand::ExpectFile { id: file.to_owned(), expected });
        let accept = CtlMessage::FileAccept { id: file.to_owned() };
        self.tell(link, LinkCommand::SendCtl(accept));
        Ok(Done::Applied)
    }

    pub(super) fn on_transfer(&mut self, peer: PeerId, file: String, update: TransferUpdate) {
        match update {
            TransferUpdate::Progress(bytes) => {
                if let Some(event) = self.files.event(&peer, &file, FileState::Progress { bytes }) {
                    self.emit(EngineEvent::File(event));
                }
            }
            TransferUpdate::Done(path) => {
                if self.files.is_outgoing(&file) {
                    let done = CtlMessage::FileDone { id: file.clone() };
                    self.tell_peer(&peer, LinkCommand::SendCtl(done));
                }
                self.end_transfer(&peer, &file, FileState::Done { path });
            }
            TransferUpdate::Failed(error) => {
                let reason = error.to_string();
                let cancel = CtlMessage::FileCancel { id: file.clone(), reason: reason.clone() };
                self.tell_peer(&peer, LinkCommand::SendCtl(cancel));
                self.end_transfer(&peer, &file, FileState::Failed { reason });
            }
        }
    }

    /// Reports a transfer's last state and forgets it.
    pub(super) fn end_transfer(&mut self, peer: &PeerId, file: &str, state: FileState) {
        if let Some(event) = self.files.end(peer, file, state) {
            self.emit(EngineEvent::File(event));
        }
    }

    pub(super) fn fail_transfers_with(&mut self, peer: &PeerId) {
        for event in self.files.fail_all_with(peer, "the peer left") {
            self.emit(EngineEvent::File(event));
        }
    }

    pub(super) fn offer_file(&mut self, info: FileInfo) -> Result<Done, EngineError> {
        let ready: Vec<PeerId> = self.connected_peers().cloned().collect();
        if ready.is_empty() {
            return Err(refused("nobody is connected to send the file to"));
        }
        let file = uuid_v4(&mut self.rng);
        let offer = CtlMessage::FileOffer {
            id: file.clone(),
            name: info.name.clone(),
            size: info.size,
            sha256: info.sha256.clone(),
        };
        for id in &ready {
            self.tell_peer(id, LinkCommand::SendCtl(offer.clone()));
        }
        for event in self.files.offer(&file, info, ready) {
            self.emit(EngineEvent::File(event));
        }
        Ok(Done::Offered(file))
    }

    /// Stops a transfer with each of `peers`, telling them why.
    pub(super) fn stop_file(&mut self, file: &str, peers: Vec<PeerId>, reason: &str) {
        for id in peers {
            self.tell_peer(&id, LinkCommand::CancelFile(file.to_owned()));
            let cancel = CtlMessage::FileCancel { id: file.to_owned(), reason: reason.to_owned() };
            self.tell_peer(&id, LinkCommand::SendCtl(cancel));
            self.end_transfer(&id, file, FileState::Cancelled { reason: reason.to_owned() });
        }
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
