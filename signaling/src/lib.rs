//! # confab-signaling — introduces Confab peers to each other
//!
//! The signaling service of `docs/protocol.md` §1–§2: people create meetings
//! (`POST /api/meetings`), open them (`GET /m/ROOM` serves the web UI), and every participant
//! holds one WebSocket (`/ws`) over which the service tells it who else is in the room and relays
//! session descriptions and ICE candidates between them. It also hands out STUN/TURN servers, with
//! time-limited TURN credentials in coturn's shared-secret scheme.
//!
//! ## Entry point
//! [`run`] takes an already-bound listener, a [`Config`] and a shutdown future, so tests bind
//! port 0 and run many servers in one process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), confab_signaling::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(confab_signaling::Error::Io)?;
//! confab_signaling::run(listener, confab_signaling::Config::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//! [`ServeArgs`] is the command line (with `CONFAB_*` environment equivalents) shared by the
//! `confab-signaling` binary and `confab serve`.
//!
//! ## Layout
//! - [`hub`]: rooms and relay as a pure state machine (`Hub::handle(input) -> outputs`); public
//!   so that other crates can test against the real room rules in virtual time.
//! - `session`: one connection's join deadline, pings, idle drop and rate limit, pure too.
//! - `relay`, `connection`, `http`, `ui`, `server`, `tls`: the I/O around them.
//! - `cluster`: with `--redis-url`, rooms shared with other instances through Redis, as one
//!   more input and output of the hub (the `redis` feature, on by default).
//! - `turn`: TURN credentials; `metrics`: Prometheus counters; `admission`: how often one client
//!   address may join or make meetings (pure); [`access`]: with access tokens configured, who
//!   may open a meeting (pure, time passed in).
//!
//! ## Limits and what it refuses
//! Every limit is in [`Config`] and reported to clients in `welcome`: frame size (bigger closes
//! with 1009), peers per room, connections (beyond: HTTP 503), messages per second, a join within
//! 10 s, a ping every 15 s and a drop after 45 s of silence, and a bounded send queue per socket
//! (a reader that falls behind is dropped; it never stalls its room). Bad input gets an `error`
//! with a protocol code, never a panic.
//!
//! ## What it never does
//! It never interprets SDP or candidates, never sees a meeting key (it stays in the link's
//! fragment), and never logs an IP address: it does not even read the peer's address. It depends
//! on `confab-proto` only, never on `confab-core`.

pub mod access;
mod admission;
#[cfg(feature = "redis")]
mod cluster;
mod config;
mod connection;
mod http;
pub mod hub;
mod metrics;
mod relay;
mod serve;
mod server;
mod session;
mod tls;
pub mod turn;
mod ui;

pub use config::{Config, Secret, ServeArgs, TlsFiles, TurnConfig};
pub use serve::{serve, shutdown_signal};
pub use server::run;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}
