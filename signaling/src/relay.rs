//! The I/O edge of the [`Hub`]: one lock around the hub and the connections' send queues, so that
//! what the hub decides is delivered in the same order it was decided.
//!
//! Delivery never waits. Each connection has a bounded queue; when a queue is full its reader is
//! too slow, and it is evicted on the spot (the room hears `peer_left`) instead of stalling the
//! sender and, through it, the room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use confab_proto::{ErrorCode, Join, PeerId, PeerInfo, SignalData};
use tokio::sync::{Notify, mpsc};

use crate::hub::{Hub, Input, Output};
use crate::metrics::Metrics;

/// Where the relay delivers one connection's messages.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub queue: mpsc::Sender<String>,
    /// Woken when the connection is evicted for falling behind.
    pub evicted: Arc<Notify>,
}

/// An error for the connection whose input was refused.
pub type Refusal = (ErrorCode, String);

#[derive(Debug)]
pub struct Relay {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    hub: Hub,
    mailboxes: HashMap<PeerId, Mailbox>,
}

impl Relay {
    pub fn new(max_peers: usize) -> Self {
        Self { inner: Mutex::new(Inner { hub: Hub::new(max_peers), mailboxes: HashMap::new() }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent between hub steps, so a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rooms and participants, for metrics.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.hub.room_count(), inner.hub.peer_count())
    }

    /// Joins `id` to the room of `join`; on success, the peers already there.
    pub fn join(
        &self,
        id: PeerId,
        join: Join,
        mailbox: Mailbox,
        metrics: &Metrics,
    ) -> Result<Vec<PeerInfo>, Refusal> {
        let mut inner = self.lock();
        let outputs = inner.hub.handle(Input::Join {
            id: id.clone(),
            room: join.room,
            name: join.name,
            client: join.client,
        });
        let mut welcome = None;
        let mut rest = Vec::with_capacity(outputs.len());
        for out in outputs {
            match out {
                Output::Welcome { peers, .. } => welcome = Some(peers),
                Output::Refuse { code, message } => return Err((code, message)),
                other => rest.push(other),
            }
        }
        inner.mailboxes.insert(id, mailbox);
        let _ = inner.deliver(rest, metrics);
        welcome.ok_or_else(|| (ErrorCode::BadMessage, String::from("join was not accepted")))
    }

    pub fn signal(
        &self,
        from: PeerId,
        to: PeerId,
        data: SignalData,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let outputs = inner.hub.handle(Input::Signal { from, to, data });
        inner.deliver(outputs, metrics)
    }

    pub fn leave(&self, id: &PeerId, metrics: &Metrics) {
        let mut inner = self.lock();
        inner.mailboxes.remove(id);
        let outputs = inner.hub.handle(Input::Leave { id: id.clone() });
        let _ = inner.deliver(outputs, metrics);
    }
}

impl Inner {
    /// Delivers the hub's outputs; evicts any peer whose queue is full or gone, which may in turn
    /// produce `peer_left` messages to deliver. Returns the refusal meant for the caller, if any.
    fn deliver(&mut self, outputs: Vec<Output>, metrics: &Metrics) -> Result<(), Refusal> {
        let mut refusal = Ok(());
        let mut pending = outputs;
        while !pending.is_empty() {
            let mut evict = Vec::new();
            for out in pending.drain(..) {
                match out {
                    Output::Send { to, msg } => {
                        let Some(mailbox) = self.mailboxes.get(&to) else { continue };
                        let is_signal = matches!(msg, confab_proto::ServerMessage::Signal { .. });
                        match mailbox.queue.try_send(msg.encode()) {
                            Ok(()) if is_signal => metrics.relayed(),
                            Ok(()) => {}
                            Err(_) => evict.push(to),
                        }
                    }
                    Output::Refuse { code, message } => refusal = Err((code, message)),
                    Output::Welcome { .. } => {}
                }
            }
            for id in evict {
                if let Some(mailbox) = self.mailboxes.remove(&id) {
                    mailbox.evicted.notify_one();
                }
                pending.extend(self.hub.handle(Input::Leave { id }));
            }
        }
        refusal
    }
}
