//! The shared harness of confab-signaling's integration tests: a real server on `127.0.0.1:0`
//! per test, real WebSocket clients, and named helpers for what a test waits on. Every wait has a
//! generous deadline and fails with a message, never a hang.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use confab_proto::{ErrorCode, PeerId, PeerInfo, RoomId, ServerMessage};
use confab_signaling::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument;

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A signaling server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), confab_signaling::Error>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_on(config, std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// The same, listening on `ip` (the wildcard: reached from this machine's own address too).
    pub async fn start_on(config: Config, ip: std::net::IpAddr) -> Self {
        init_logs();
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            confab_signaling::run(listener, config, async {
                let _ = stopped.await;
            })
            .instrument(tracing::info_span!("server")),
        );
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Shuts the server down and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task).await.expect("server did not stop").unwrap().unwrap();
    }

    pub async fn connect(&self, name: &str) -> Client {
        Client::connect(self, name, None).await
    }

    /// Connects and joins `room`; returns the client with its peer id and the welcome.
    pub async fn join(&self, room: &RoomId, name: &str) -> (Client, Welcome) {
        let mut c = self.connect(name).await;
        let w = c.join(room).await;
        (c, w)
    }

    /// Two peers in a fresh room, used to show that a room keeps working while another is abused.
    pub async fn healthy_pair(&self) -> HealthyPair {
        let room = RoomId::random();
        let (mut a, _) = self.join(&room, "healthy-a").await;
        let (b, wb) = self.join(&room, "healthy-b").await;
        let joined = a.recv().await;
        assert!(matches!(joined, ServerMessage::PeerJoined { .. }), "{joined:?}");
        HealthyPair { a_id: wb.peers[0].id.clone(), b_id: wb.you.clone(), a, b, round: 0 }
    }

    pub async fn metrics(&self) -> String {
        http(self.addr, "GET", "/metrics", &[], b"").await.body_text()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct Welcome {
    pub you: PeerId,
    pub peers: Vec<PeerInfo>,
    pub raw: ServerMessage,
}

/// One WebSocket client with a tracing span of its own name.
pub struct Client {
    pub name: String,
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub span: tracing::Span,
}

impl Client {
    pub async fn connect(server: &TestServer, name: &str, origin: Option<&str>) -> Self {
        Self::connect_url(&server.ws_url(), name, origin).await
    }

    /// The same, to the WebSocket at `url`.
    pub async fn connect_url(url: &str, name: &str, origin: Option<&str>) -> Self {
        let mut req = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            req.headers_mut().insert("origin", origin.parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Self { name: name.to_owned(), ws, span: tracing::info_span!("peer", name) }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(Message::text(v.to_string())).await;
    }

    pub async fn send(&mut self, msg: Message) {
        tokio::time::timeout(WAIT, self.ws.send(msg))
            .instrument(self.span.clone())
            .await
            .unwrap_or_else(|_| panic!("{}: send timed out", self.name))
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.name));
    }

    pub async fn join(&mut self, room: &RoomId) -> Welcome {
        let name = self.name.clone();
        self.send_json(join_msg(room, &name)).await;
        match self.recv().await {
            raw @ ServerMessage::Welcome { .. } => {
                let ServerMessage::Welcome { you, peers, .. } = raw.clone() else { unreachable!() };
                Welcome { you, peers, raw }
            }
            other => panic!("{}: expected welcome, got {other:?}", self.name),
        }
    }

    /// The next text frame, decoded. Pings are answered by tungstenite while we wait.
    pub async fn recv(&mut self) -> ServerMessage {
        let text = self.recv_text().await;
        ServerMessage::decode(&text)
            .unwrap_or_else(|e| panic!("{}: undecodable {text}: {e}", self.name))
    }

    pub async fn recv_text(&mut self) -> String {
        self.recv_text_within(WAIT).await
    }

    /// The next message, waiting up to `limit` (for waits longer than [`WAIT`], in paused time).
    pub async fn recv_within(&mut self, limit: Duration) -> ServerMessage {
        let text = self.recv_text_within(limit).await;
        ServerMessage::decode(&text)
            .unwrap_or_else(|e| panic!("{}: undecodable {text}: {e}", self.name))
    }

    async fn recv_text_within(&mut self, limit: Duration) -> String {
        let name = self.name.clone();
        let next = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => return t.to_string(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("{name}: expected a text frame, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(limit, next.instrument(self.span.clone()))
            .await
            .unwrap_or_else(|_| panic!("{}: nothing received in {limit:?}", self.name))
    }

    /// The next message must be an `error` with `code`; returns its text.
    pub async fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv().await {
            ServerMessage::Error { code: got, message } if got == code => message,
            other => panic!("{}: expected error {code}, got {other:?}", self.name),
        }
    }

    /// The server must close the socket with `code` (text frames before it are returned).
    pub async fn expect_close(&mut self, code: CloseCode) -> Vec<String> {
        let name = self.name.clone();
        let mut texts = Vec::new();
        let wait = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
                    Some(Ok(Message::Close(Some(frame)))) => {
                        assert_eq!(frame.code, code, "{name}: close code");
                        return;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    other => panic!("{name}: expected close {code}, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("{}: no close in {WAIT:?}", self.name));
        texts
    }

    /// The server must send `error` with `code` and then close with `close`.
    pub async fn expect_error_and_close(&mut self, code: ErrorCode, close: CloseCode) {
        let texts = self.expect_close(close).await;
        let errors: Vec<_> = texts
            .iter()
            .filter_map(|t| match ServerMessage::decode(t) {
                Ok(ServerMessage::Error { code, .. }) => Some(code),
                _ => None,
            })
            .collect();
        assert_eq!(errors.last(), Some(&code), "{}: errors before close: {texts:?}", self.name);
    }

    pub async fn signal(&mut self, to: &PeerId, tag: &str) {
        self.send_json(signal_msg(to.as_str(), tag)).await;
    }

    /// The next message must be a signal from `from` carrying `tag`.
    pub async fn expect_signal(&mut self, from: &PeerId, tag: &str) {
        match self.recv().await {
            ServerMessage::Signal { from: f, data } if &f == from => {
                let text = serde_json::to_string(&data).unwrap();
                assert!(text.contains(tag), "{}: signal {text} lacks {tag}", self.name);
            }
            other => panic!("{}: expected signal {tag} from {from}, got {other:?}", self.name),
        }
    }
}

/// Two joined peers of one room.
pub struct HealthyPair {
    pub a: Client,
    pub b: Client,
    pub a_id: PeerId,
    pub b_id: PeerId,
    round: u32,
}

impl HealthyPair {
    /// A signal goes a → b and another b → a.
    pub async fn assert_relays(&mut self) {
        self.round += 1;
        let tag = format!("healthy-{}", self.round);
        self.a.signal(&self.b_id, &tag).await;
        self.b.expect_signal(&self.a_id, &tag).await;
        self.b.signal(&self.a_id, &tag).await;
        self.a.expect_signal(&self.b_id, &tag).await;
    }
}

pub fn join_msg(room: &RoomId, name: &str) -> Value {
    json!({"type": "join", "v": 1, "room": room, "name": name, "client": "cli", "app_version": "test"})
}

/// A signal whose candidate text carries `tag`, so the receiver can tell signals apart.
pub fn signal_msg(to: &str, tag: &str) -> Value {
    json!({"type": "signal", "to": to, "data": {"candidate": {
        "candidate": format!("candidate:{tag} 1 udp 2122260223 192.0.2.1 9 typ host"),
        "sdpMid": "0", "sdpMLineIndex": 0}}})
}

pub fn text(s: impl Into<String>) -> Message {
    Message::Text(Utf8Bytes::from(s.into()))
}

pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), read to the end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("HTTP response timed out")
        .unwrap();
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("no status");
    HttpResponse { status, head, body: raw[split + 4..].to_vec() }
}

/// The `confab-signaling` program, run as a child process on an ephemeral port (what a test
/// that kills or restarts an instance needs).
pub struct Program {
    pub child: std::process::Child,
    pub port: u16,
    /// Its stderr, line by line (JSON logs).
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl Program {
    /// Starts the program with `args` and `env`, and reads its port from its JSON log.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab-signaling"))
            .args(["--listen", "127.0.0.1:0", "--log-json"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, logs) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let port = loop {
            let line = logs.recv_timeout(WAIT).expect("no 'listening' log line");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["fields"]["message"] == "listening" {
                break v["fields"]["port"].as_u64().unwrap() as u16;
            }
        };
        Self { child, port, logs }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub async fn connect(&self, name: &str) -> Client {
        Client::connect_url(&format!("ws://{}/ws", self.addr()), name, None).await
    }

    /// `kill -9`: no goodbye to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` of the test's own, on a free port, keeping nothing on disk.
pub struct Redis {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None, dir: tempfile::tempdir().unwrap() };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it again on the same port, empty (as a restarted Redis without persistence).
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is not installed (scripts/setup.sh installs it)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = async {
            loop {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    let mut reply = [0u8; 7];
                    if s.write_all(b"PING\r\n").await.is_ok()
                        && s.read_exact(&mut reply).await.is_ok()
                        && &reply == b"+PONG\r\n"
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, ready).await.expect("redis-server did not start");
    }

    /// Stops it at once (SIGKILL: it keeps nothing anyway).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
