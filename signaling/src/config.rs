//! Configuration: [`Config`] is what [`crate::run`] takes; [`ServeArgs`] is the command line
//! (`confab-signaling`, and `confab serve` which embeds it) with a `CONFAB_*` environment
//! variable behind every flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use confab_proto::Limits;

/// Everything the server can be told. `Config::default()` is what the binary runs with when
/// given no flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL people reach this service at (`https://meet.example.org`). It makes the meeting
    /// links and is the origin browsers must come from. Unset: taken from each request's `Host`.
    pub public_url: Option<String>,
    /// Extra origins allowed to open `/ws`, besides our own and the desktop app's.
    pub allow_origins: Vec<String>,
    pub max_peers: usize,
    /// Open TCP connections (HTTP and WebSocket). Beyond it, requests get 503.
    pub max_connections: usize,
    /// Largest WebSocket frame or message; a larger one closes the socket with 1009.
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection (0: no limit), and the burst allowed above it.
    pub messages_per_second: u32,
    pub burst_messages: u32,
    /// Joins, and meetings made, per minute from one client address (0: no limit; loopback is
    /// never limited).
    pub joins_per_minute: u32,
    pub meetings_per_minute: u32,
    /// Access tokens, one per line: with them, only a holder opens a meeting (see
    /// [`crate::access`]). Unset: anyone who reaches the server may.
    pub token_file: Option<PathBuf>,
    /// Redis shared with other instances (`redis://…`): with it, rooms span instances.
    pub redis_url: Option<Secret>,
    /// An instance that has not beaten in Redis for this long is dead, and its peers gone.
    pub cluster_expiry: Duration,
    /// The first message (`join`) must arrive within this.
    pub join_timeout: Duration,
    pub ping_interval: Duration,
    /// A socket that sends nothing (not even a pong) for this long is dropped.
    pub idle_timeout: Duration,
    /// Messages, and bytes, queued for one connection; a reader that falls this far behind is
    /// dropped.
    pub send_queue: usize,
    pub send_queue_bytes: usize,
    /// How long one write to a socket may take before the reader is deemed gone.
    pub write_timeout: Duration,
    pub stun_urls: Vec<String>,
    pub turn: Option<TurnConfig>,
    pub ui_dir: PathBuf,
    pub tls: Option<TlsFiles>,
}

#[derive(Clone)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig").field("urls", &self.urls).field("ttl", &self.ttl).finish()
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            allow_origins: Vec::new(),
            max_peers: 8,
            max_connections: 10_000,
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            burst_messages: 200,
            joins_per_minute: 60,
            meetings_per_minute: 20,
            token_file: None,
            redis_url: None,
            cluster_expiry: Duration::from_secs(8),
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            send_queue: 256,
            send_queue_bytes: 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            stun_urls: Vec::new(),
            turn: None,
            ui_dir: PathBuf::from("ui/dist"),
            tls: None,
        }
    }
}

impl Config {
    /// Refuses settings that cannot work together.
    pub fn validate(&self) -> Result<(), String> {
        let problems = [
            (self.max_peers < 2, "max_peers must be at least 2"),
            (self.max_connections == 0, "max_connections must be at least 1"),
            (self.max_message_bytes < 1024, "max_message_bytes must be at least 1024"),
            (self.send_queue == 0, "send_queue must be at least 1"),
            (
                // Relayed messages are a little larger than the frames they came in.
                self.send_queue_bytes < 2 * self.max_message_bytes,
                "send_queue_bytes must hold at least two messages of max_message_bytes",
            ),
            (
                self.idle_timeout <= self.ping_interval,
                "idle_timeout must be longer than ping_interval, or live clients are dropped",
            ),
            (self.write_timeout.is_zero(), "write_timeout must not be zero"),
            (
                self.cluster_expiry < Duration::from_millis(400),
                "cluster_expiry must be at least 0.4 s (instances beat four times per expiry)",
            ),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err((*why).to_owned()),
            None => Ok(()),
        }
    }

    /// The limits a client is told in `welcome`.
    pub fn limits(&self) -> Limits {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Limits {
            max_message_bytes: clamp(self.max_message_bytes),
            max_peers: clamp(self.max_peers),
            max_messages_per_second: self.messages_per_second,
            burst_messages: self.burst_messages,
            idle_timeout_secs: clamp(self.idle_timeout.as_secs() as usize),
        }
    }
}

/// The service's command line. Every flag can also come from the environment variable named
/// beside it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Public URL of this service (makes meeting links; the origin browsers must come from).
    #[arg(long, env = "CONFAB_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Most participants in one meeting.
    #[arg(long, env = "CONFAB_MAX_PEERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub max_peers: u32,
    /// Most open connections.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Sustained signaling messages per second per connection (0: no limit).
    #[arg(long, env = "CONFAB_MAX_MESSAGE_RATE", default_value_t = 50)]
    pub max_message_rate: u32,
    /// Joins per minute from one client address, in bursts of as many (0: no limit). Loopback
    /// is never limited: behind a reverse proxy, limit in the proxy.
    #[arg(long, env = "CONFAB_JOINS_PER_MINUTE", default_value_t = 60)]
    pub joins_per_minute: u32,
    /// Meetings made (`POST /api/meetings`) per minute from one client address (0: no limit).
    #[arg(long, env = "CONFAB_MEETINGS_PER_MINUTE", default_value_t = 20)]
    pub meetings_per_minute: u32,
    /// Access tokens, one per line (`#` comments): only a holder may make a meeting or be the
    /// first to join one; anyone with the link joins it while it is in use. Read at start.
    #[arg(long, env = "CONFAB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Redis shared by several instances of this service (`redis://HOST:PORT/DB`, with
    /// `redis://:PASSWORD@…` or `rediss://` as needed): rooms then span instances behind any
    /// load balancer. Without it this instance is alone.
    #[arg(long, env = "CONFAB_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// Seconds after which an instance that stopped beating in Redis is taken as dead, and its
    /// participants as gone.
    #[arg(long, env = "CONFAB_REDIS_EXPIRY", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub redis_expiry: u64,
    /// Largest signaling frame, in bytes; a larger one closes the socket with 1009.
    #[arg(long, env = "CONFAB_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=1024 * 1024))]
    pub max_message_bytes: u32,
    /// Seconds a new connection has to send `join`.
    #[arg(long, env = "CONFAB_JOIN_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub join_timeout: u64,
    /// Seconds between pings.
    #[arg(long, env = "CONFAB_PING_INTERVAL", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_interval: u64,
    /// Seconds of silence after which a connection is dropped.
    #[arg(long, env = "CONFAB_IDLE_TIMEOUT", default_value_t = 45, value_parser = clap::value_parser!(u64).range(2..))]
    pub idle_timeout: u64,
    /// STUN server URL handed to clients (repeatable, or comma-separated).
    #[arg(long = "stun-url", env = "CONFAB_STUN_URL", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// TURN server URL handed to clients with time-limited credentials (repeatable).
    #[arg(
        long = "turn-url",
        env = "CONFAB_TURN_URL",
        value_delimiter = ',',
        requires = "turn_secret"
    )]
    pub turn_urls: Vec<String>,
    /// Shared secret of the TURN server (coturn `static-auth-secret`).
    #[arg(long, env = "CONFAB_TURN_SECRET", hide_env_values = true, requires = "turn_urls")]
    pub turn_secret: Option<Secret>,
    /// Lifetime of TURN credentials, in seconds.
    #[arg(long, env = "CONFAB_TURN_TTL", default_value_t = 6 * 3600)]
    pub turn_ttl: u64,
    /// Extra origin allowed to open the signaling WebSocket (repeatable).
    #[arg(long = "allow-origin", env = "CONFAB_ALLOW_ORIGIN", value_delimiter = ',')]
    pub allow_origins: Vec<String>,
    /// Directory of the built web UI.
    #[arg(long, env = "CONFAB_UI_DIR", default_value = "ui/dist")]
    pub ui_dir: PathBuf,
    /// TLS certificate chain (PEM). Serve https/wss directly, without a proxy.
    #[arg(long, env = "CONFAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CONFAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    pub fn into_config(self) -> Config {
        let turn = self.turn_secret.map(|secret| TurnConfig {
            urls: self.turn_urls,
            secret: secret.0,
            ttl: Duration::from_secs(self.turn_ttl),
        });
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };
        Config {
            public_url: self.public_url,
            allow_origins: self.allow_origins,
            max_peers: self.max_peers as usize,
            max_connections: self.max_connections,
            messages_per_second: self.max_message_rate,
            burst_messages: self.max_message_rate.saturating_mul(4),
            joins_per_minute: self.joins_per_minute,
            meetings_per_minute: self.meetings_per_minute,
            token_file: self.token_file,
            redis_url: self.redis_url,
            cluster_expiry: Duration::from_secs(self.redis_expiry),
            max_message_bytes: self.max_message_bytes as usize,
            join_timeout: Duration::from_secs(self.join_timeout),
            ping_interval: Duration::from_secs(self.ping_interval),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            stun_urls: self.stun_urls,
            turn,
            ui_dir: self.ui_dir,
            tls,
            ..Config::default()
        }
    }
}

/// A secret from the command line or environment, kept out of `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_contradictions_are_refused() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = Config { idle_timeout: Duration::from_secs(10), ..Config::default() };
        assert!(bad.validate().unwrap_err().contains("idle_timeout"));
        let bad = Config { send_queue_bytes: 1000, ..Config::default() };
        assert!(bad.validate().unwrap_err().contains("send_queue_bytes"));
    }

    #[test]
    fn the_turn_secret_never_shows_in_debug() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli = Cli::parse_from([
            "x",
            "--turn-url",
            "turn:t.test",
            "--turn-secret",
            "hunter2",
            "--redis-url",
            "redis://:hunter2@redis.test/",
        ]);
        assert!(!format!("{cli:?}").contains("hunter2"));
        assert!(!format!("{:?}", cli.serve.into_config()).contains("hunter2"));
    }
}
