//! The I/O edge of the [`Hub`]: one lock around the hub and the connections' send queues, so that
//! what the hub decides is delivered in the same order it was decided.
//!
//! Delivery never waits. Each connection's queue is bounded in messages and in bytes; when a
//! queue is full its reader is too slow, and it is evicted on the spot (the room hears
//! `peer_left`) instead of stalling the sender and, through it, the room, or holding megabytes.
//!
//! Under the same lock, [`Access`] says who may join, from who is in each room.
//!
//! With a cluster, what the hub asks of it goes out on a bounded channel to `cluster.rs`, and
//! what the cluster says comes back in through [`Relay::hear_cluster`], under the same lock. A
//! join then waits for its seat: [`Relay::join`] hands back a receiver for the welcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use confab_proto::{ErrorCode, Join, PeerId, PeerInfo, RoomId, ServerMessage, SignalPayload};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::access::{self, Access};
use crate::hub::{ClusterInput, Command, Hub, Input, Output};
use crate::metrics::Metrics;

/// Where the relay delivers one connection's messages.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub queue: mpsc::Sender<String>,
    /// Bytes in `queue`; the connection subtracts what it takes out.
    pub queued_bytes: Arc<AtomicUsize>,
    /// Woken when the connection is evicted for falling behind.
    pub evicted: Arc<Notify>,
}

impl Mailbox {
    /// Queues `text` unless that would pass `max_bytes` or the queue's length; `false` means the
    /// reader has fallen behind.
    fn offer(&self, text: String, max_bytes: usize) -> bool {
        let len = text.len();
        // Counted before sending, so the reader's subtraction can never run ahead of it.
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len <= max_bytes && self.queue.try_send(text).is_ok() {
            return true;
        }
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        false
    }
}

/// An error for the connection whose input was refused.
pub type Refusal = (ErrorCode, String);

/// A joiner's answer: the peers already in the room, or why not.
type Answer = Result<Vec<PeerInfo>, Refusal>;
pub type Seating = oneshot::Receiver<Answer>;

#[derive(Debug)]
pub struct Relay {
    inner: Mutex<Inner>,
    max_queued_bytes: usize,
}

#[derive(Debug)]
struct Inner {
    hub: Hub,
    access: Access,
    mailboxes: HashMap<PeerId, Mailbox>,
    /// Joiners not yet welcomed: their mailbox, and where their answer goes.
    joining: HashMap<PeerId, (Mailbox, oneshot::Sender<Answer>)>,
    /// To the cluster, for a clustered hub.
    cluster: Option<mpsc::Sender<Command>>,
}

impl Relay {
    /// A relay for `hub`; a clustered hub's commands go to `cluster`.
    pub fn new(
        hub: Hub,
        max_queued_bytes: usize,
        access: Access,
        cluster: Option<mpsc::Sender<Command>>,
    ) -> Self {
        let inner =
            Inner { hub, access, mailboxes: HashMap::new(), joining: HashMap::new(), cluster };
        Self { inner: Mutex::new(inner), max_queued_bytes }
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

    /// Whether making a meeting takes an access token.
    pub fn tokens_required(&self) -> bool {
        self.lock().access.required()
    }

    /// A meeting is being made with `token`: `false` if the token is refused. A meeting made
    /// is open to its link.
    pub fn make(&self, room: &RoomId, token: Option<&str>, metrics: &Metrics) -> bool {
        let mut inner = self.lock();
        if !inner.access.accepts(token) {
            return false;
        }
        inner.access.made(Instant::now(), room.clone());
        if inner.access.required() {
            let outputs = inner.hub.handle(Input::Made { room: room.clone() });
            let _ = inner.deliver(outputs, self.max_queued_bytes, metrics);
        }
        true
    }

    /// Whether the cluster is reachable (always, without one).
    pub fn cluster_up(&self) -> bool {
        self.lock().hub.cluster_up()
    }

    /// The other instances this one has peers from.
    #[cfg(feature = "redis")]
    pub fn remote_instances(&self) -> Vec<crate::hub::InstanceId> {
        self.lock().hub.remote_instances()
    }

    /// The peers of other instances known here, with their rooms.
    #[cfg(feature = "redis")]
    pub fn remote_members(&self) -> Vec<(RoomId, PeerId)> {
        self.lock().hub.remote_members()
    }

    /// What the cluster says, in order, under one lock.
    #[cfg(feature = "redis")]
    pub fn hear_cluster(&self, inputs: impl IntoIterator<Item = ClusterInput>, metrics: &Metrics) {
        let mut inner = self.lock();
        for input in inputs {
            let outputs = inner.hub.handle(Input::Cluster(input));
            let _ = inner.deliver(outputs, self.max_queued_bytes, metrics);
        }
    }

    /// Joins `id` to the room of `join`. The answer comes on the returned receiver: at once
    /// without a cluster, when the cluster has given a seat with one.
    pub fn join(
        &self,
        id: PeerId,
        join: Join,
        mailbox: Mailbox,
        metrics: &Metrics,
    ) -> Result<Seating, Refusal> {
        let mut inner = self.lock();
        let occupied = inner.hub.is_occupied(&join.room);
        let token = join.token.as_deref();
        let mut needs_open = false;
        if !inner.access.may_join(Instant::now(), &join.room, token, occupied) {
            if token.is_some() {
                return Err((ErrorCode::BadToken, access::TOKEN_REFUSED.into()));
            }
            if !inner.hub.is_clustered() {
                return Err((ErrorCode::BadToken, access::NOT_OPEN.into()));
            }
            // Another instance may hold the meeting open: the cluster says.
            needs_open = true;
        }
        let (answer, seating) = oneshot::channel();
        inner.joining.insert(id.clone(), (mailbox, answer));
        let outputs = inner.hub.handle(Input::Join {
            id: id.clone(),
            room: join.room,
            name: join.name,
            client: join.client,
            needs_open,
        });
        let refused = inner.deliver(outputs, self.max_queued_bytes, metrics);
        if refused.is_err() {
            inner.joining.remove(&id);
        }
        refused.map(|()| seating)
    }

    pub fn signal(
        &self,
        from: PeerId,
        to: PeerId,
        data: SignalPayload,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let outputs = inner.hub.handle(Input::Signal { from, to, data });
        inner.deliver(outputs, self.max_queued_bytes, metrics)
    }

    pub fn leave(&self, id: &PeerId, metrics: &Metrics) {
        let mut inner = self.lock();
        inner.mailboxes.remove(id);
        inner.joining.remove(id);
        let outputs = inner.leave(id.clone());
        let _ = inner.deliver(outputs, self.max_queued_bytes, metrics);
    }
}

impl Inner {
    /// `id` leaves its room, which stays open to its link for a while.
    fn leave(&mut self, id: PeerId) -> Vec<Output> {
        if let Some(room) = self.hub.room_of(&id) {
            self.access.left(Instant::now(), &room.clone());
        }
        self.hub.handle(Input::Leave { id })
    }

    /// Delivers the hub's outputs; evicts any peer whose queue is full or gone, which may in turn
    /// produce `peer_left` messages to deliver. Returns the refusal meant for the caller, if any.
    fn deliver(
        &mut self,
        outputs: Vec<Output>,
        max_bytes: usize,
        metrics: &Metrics,
    ) -> Result<(), Refusal> {
        let mut refusal = Ok(());
        let mut pending = outputs;
        while !pending.is_empty() {
            let mut evict = Vec::new();
            let mut next = Vec::new();
            for out in pending.drain(..) {
                match out {
                    Output::Send { to, msg } => {
                        let Some(mailbox) = self.mailboxes.get(&to) else { continue };
                        let is_signal = matches!(msg, ServerMessage::Signal { .. });
                        if !mailbox.offer(msg.encode(), max_bytes) {
                            evict.push(to);
                        } else if is_signal {
                            metrics.relayed();
                        }
                    }
                    Output::Refuse { code, message } => refusal = Err((code, message)),
                    Output::Welcome { to, peers } => {
                        if let Some((mailbox, answer)) = self.joining.remove(&to) {
                            self.mailboxes.insert(to, mailbox);
                            let _ = answer.send(Ok(peers));
                        }
                    }
                    Output::TurnAway { to, code, message } => {
                        if let Some((_, answer)) = self.joining.remove(&to) {
                            let _ = answer.send(Err((code, message)));
                        }
                    }
                    Output::Cluster(command) => {
                        let Some(cluster) = &self.cluster else { continue };
                        if let Err(e) = cluster.try_send(command) {
                            metrics.cluster_dropped();
                            // A seat asked for and never given would leave its joiner waiting.
                            if let Command::Seat { peer, .. } = e.into_inner() {
                                let input = ClusterInput::Unavailable { id: peer.id };
                                next.extend(self.hub.handle(Input::Cluster(input)));
                            }
                        }
                    }
                }
            }
            pending.extend(next);
            for id in evict {
                if let Some(mailbox) = self.mailboxes.remove(&id) {
                    metrics.rejected(ErrorCode::TooSlow);
                    mailbox.evicted.notify_one();
                }
                pending.extend(self.leave(id));
            }
        }
        refusal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_holds_at_most_its_byte_budget() {
        let (queue, mut inbox) = mpsc::channel(256);
        let mailbox = Mailbox {
            queue,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            evicted: Arc::new(Notify::new()),
        };
        let big = "x".repeat(60_000);
        let mut accepted = 0;
        while mailbox.offer(big.clone(), 1024 * 1024) {
            accepted += 1;
            assert!(accepted < 256, "the byte budget was never reached");
        }
        assert_eq!(accepted, 17, "17 × 60 kB fit in 1 MiB, the 18th does not");
        assert_eq!(mailbox.queued_bytes.load(Ordering::Relaxed), 17 * 60_000);
        // The reader takes one out: there is room for one more, and no more than that.
        let taken = inbox.try_recv().unwrap();
        mailbox.queued_bytes.fetch_sub(taken.len(), Ordering::Relaxed);
        assert!(mailbox.offer(big.clone(), 1024 * 1024));
        assert!(!mailbox.offer(big, 1024 * 1024));
    }

    #[test]
    fn a_mailbox_also_holds_at_most_its_message_count() {
        let (queue, _inbox) = mpsc::channel(4);
        let mailbox = Mailbox {
            queue,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            evicted: Arc::new(Notify::new()),
        };
        for _ in 0..4 {
            assert!(mailbox.offer("m".into(), 1024));
        }
        assert!(!mailbox.offer("m".into(), 1024));
        assert_eq!(
            mailbox.queued_bytes.load(Ordering::Relaxed),
            4,
            "a refused message is not counted"
        );
    }
}
