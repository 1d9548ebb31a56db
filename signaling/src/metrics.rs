//! Counters behind `GET /metrics`, rendered as Prometheus text. Plain atomics: the hot path
//! (relaying a signal) adds one relaxed increment.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use confab_proto::ErrorCode;

#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicI64,
    websockets: AtomicI64,
    relayed: AtomicU64,
    cluster_dropped: AtomicU64,
    rejected: [AtomicU64; ErrorCode::ALL.len()],
}

/// Decrements its gauge when dropped, so a task that ends in any way is counted out.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn connection(&self) -> GaugeGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(&self.connections)
    }

    pub fn websocket(&self) -> GaugeGuard<'_> {
        self.websockets.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(&self.websockets)
    }

    pub fn relayed(&self) {
        self.relayed.fetch_add(1, Ordering::Relaxed);
    }

    /// A command for the cluster that could not be queued.
    pub fn cluster_dropped(&self) {
        self.cluster_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `cluster_up`: whether Redis is reachable, for an instance that has one.
    pub fn render(&self, rooms: usize, peers: usize, cluster_up: Option<bool>) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "confab_connections",
            "gauge",
            "Open TCP connections (HTTP and WebSocket).",
            self.connections.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "confab_websockets",
            "gauge",
            "Open signaling WebSockets.",
            self.websockets.load(Ordering::Relaxed).to_string(),
        );
        metric("confab_rooms", "gauge", "Rooms with at least one participant.", rooms.to_string());
        metric("confab_peers", "gauge", "Participants in all rooms.", peers.to_string());
        metric(
            "confab_messages_relayed_total",
            "counter",
            "Signal messages relayed from one peer to another.",
            self.relayed.load(Ordering::Relaxed).to_string(),
        );
        if let Some(up) = cluster_up {
            metric(
                "confab_redis_up",
                "gauge",
                "1 while Redis, shared with the other instances, is reachable; 0: degraded.",
                u8::from(up).to_string(),
            );
            metric(
                "confab_cluster_dropped_total",
                "counter",
                "Messages for other instances dropped because the queue to Redis was full.",
                self.cluster_dropped.load(Ordering::Relaxed).to_string(),
            );
        }
        let _ = writeln!(
            out,
            "# HELP confab_messages_rejected_total Client messages answered with an error, by code.\n\
             # TYPE confab_messages_rejected_total counter"
        );
        for (code, count) in ErrorCode::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "confab_messages_rejected_total{{reason=\"{code}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out
    }
}
