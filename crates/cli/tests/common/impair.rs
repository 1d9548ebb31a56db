//! A userspace UDP impairment proxy (`tc netem` is not on this kernel): it stands in front of a
//! UDP server (coturn, here), forwards each client's datagrams through a socket of its own, and
//! impairs what clients send: loss, delay, jitter (and so reordering), duplication, and a
//! bandwidth cap (one link that all share) with a short queue. What the server sends back passes untouched, so a path
//! from one peer through a relay to another is impaired exactly once. Its settings change while
//! it runs; its randomness comes from a seed. It can also forget its mappings, as a NAT does
//! when it reboots or a phone changes network: each client then reaches the server from a new
//! address, and state the server kept for the old one (a TURN allocation) is lost.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Share of datagrams dropped, 0 to 1.
    pub loss: f64,
    pub delay: Duration,
    /// Up to this much more delay, uniformly: datagrams overtake each other.
    pub jitter: Duration,
    /// Share of datagrams sent twice.
    pub duplicate: f64,
    /// Everything the clients send leaves at most this fast, together (one bottleneck link);
    /// what would wait more than [`MAX_QUEUE`] behind the cap is dropped.
    pub bits_per_second: Option<u64>,
}

/// How long a datagram may wait behind the bandwidth cap before it is dropped instead.
const MAX_QUEUE: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct State {
    impairment: Impairment,
    rng: u64,
    /// When the queue behind the cap is empty again.
    queue_free: Option<Instant>,
    forwarded: u64,
    dropped: u64,
    /// Bytes each client sent, whatever became of them.
    offered: HashMap<SocketAddr, u64>,
    /// How many times the mappings were forgotten.
    rebinds: u64,
}

impl State {
    fn random(&mut self) -> f64 {
        // xorshift64*: enough for test traffic, and replayable from the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When each copy of a datagram of `len` bytes from `client` arriving `now` leaves (none:
    /// dropped).
    fn schedule(&mut self, client: SocketAddr, len: usize, now: Instant) -> Vec<Instant> {
        let imp = self.impairment;
        *self.offered.entry(client).or_default() += len as u64;
        if self.random() < imp.loss {
            self.dropped += 1;
            return Vec::new();
        }
        let mut leaves = now;
        if let Some(bits) = imp.bits_per_second {
            let free = self.queue_free.unwrap_or(now).max(now);
            if free - now > MAX_QUEUE {
                self.dropped += 1;
                return Vec::new();
            }
            leaves = free + Duration::from_secs_f64(len as f64 * 8.0 / bits as f64);
            self.queue_free = Some(leaves);
        }
        let copies = if self.random() < imp.duplicate { 2 } else { 1 };
        self.forwarded += 1;
        (0..copies).map(|_| leaves + imp.delay + imp.jitter.mul_f64(self.random())).collect()
    }
}

pub struct ImpairedUdp {
    /// Where clients send: the server, as far as they know.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImpairedUdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ImpairedUdp {
    /// Listens on `listen` (a free port) in front of `server`; starts with no impairment.
    pub async fn start(listen: IpAddr, server: SocketAddr, seed: u64) -> Self {
        let front = Arc::new(UdpSocket::bind((listen, 0)).await.unwrap());
        let addr = front.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { rng: seed | 1, ..State::default() }));
        let task = tokio::spawn(forward(front, server, state.clone()));
        Self { addr, state, task }
    }

    pub fn set(&self, impairment: Impairment) {
        self.state.lock().unwrap().impairment = impairment;
    }

    /// Forgets every client's mapping: from the next datagram on, each reaches the server from
    /// a new port, and what the server sends to the old ones goes nowhere.
    pub fn rebind(&self) {
        self.state.lock().unwrap().rebinds += 1;
    }

    /// The bytes the clients have sent so far, together, whatever became of them.
    pub fn offered(&self) -> u64 {
        self.state.lock().unwrap().offered.values().sum()
    }

    /// (datagrams forwarded, datagrams dropped) so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap();
        (state.forwarded, state.dropped)
    }
}

/// A client's own socket towards the server, and the task carrying the server's answers back.
struct Upstream {
    socket: Arc<UdpSocket>,
    back: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.back.abort();
    }
}

async fn forward(front: Arc<UdpSocket>, server: SocketAddr, state: Arc<Mutex<State>>) {
    let mut upstreams: HashMap<SocketAddr, Upstream> = HashMap::new();
    let mut rebinds = 0;
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((len, client)) = front.recv_from(&mut buf).await else { return };
        let now_rebinds = state.lock().unwrap().rebinds;
        if now_rebinds != rebinds {
            rebinds = now_rebinds;
            upstreams.clear();
        }
        let upstream = match upstreams.get(&client) {
            Some(upstream) => upstream.socket.clone(),
            None => {
                // A socket of the client's own, so the server sees one client per client.
                let socket = UdpSocket::bind((front.local_addr().unwrap().ip(), 0)).await.unwrap();
                socket.connect(server).await.unwrap();
                let socket = Arc::new(socket);
                let back = tokio::spawn(back(socket.clone(), front.clone(), client));
                upstreams.insert(client, Upstream { socket: socket.clone(), back });
                socket
            }
        };
        let leaves = state.lock().unwrap().schedule(client, len, Instant::now());
        for at in leaves {
            let (upstream, datagram) = (upstream.clone(), buf[..len].to_vec());
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = upstream.send(&datagram).await;
            });
        }
    }
}

/// What the server sends a client goes back to it untouched.
async fn back(upstream: Arc<UdpSocket>, front: Arc<UdpSocket>, client: SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(len) = upstream.recv(&mut buf).await {
        let _ = front.send_to(&buf[..len], client).await;
    }
}
