//! `make bench-signaling`: load on the signaling service, side by side with a bare
//! tokio-tungstenite echo server as the reference, and with two instances sharing rooms through
//! one `redis-server`, in one run.
//!
//! In the two-instance row every room has half its clients on each instance and each client's
//! partner on the other one, so every relayed message crosses Redis.
//!
//! All servers run as child processes (so their peak RSS is theirs alone) with the same client
//! load from this process: N WebSocket clients (in rooms of `ROOM_SIZE` for the signaling
//! service) held open, then
//! - a paced phase at `RATE` messages/s in total, measuring delivery latency (relay: sender →
//!   server → another peer; echo: sender → server → sender, the same number of hops), and
//! - a saturation phase where every client keeps `WINDOW` messages circulating, measuring
//!   delivered messages per second.
//!
//! The paced clients follow a fixed open-loop schedule and stamp each message with its scheduled
//! send time, so a late client counts against the latency instead of hiding it, and clients never
//! bunch into bursts after a hiccup.
//!
//! Writes `bench/results/signaling.json` and prints a table. Knobs (environment):
//! `CONFAB_BENCH_CLIENTS` (10000), `CONFAB_BENCH_ROOM_SIZE` (4), `CONFAB_BENCH_RATE` (20000),
//! `CONFAB_BENCH_SECS` (10).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const ECHO_ROLE: &str = "CONFAB_BENCH_ECHO_LISTEN";
/// Messages each client keeps in flight in the saturation phase.
const WINDOW: usize = 4;
/// Parallel connection attempts while opening the clients.
const CONNECTING: usize = 256;
/// Source addresses the clients spread over, so ten thousand sockets per run never run short of
/// ephemeral ports (127.0.0.0/8 is all loopback).
const SOURCE_ADDRS: u8 = 16;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    if let Ok(addr) = std::env::var(ECHO_ROLE) {
        return echo_server(addr.parse().expect("echo address"));
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let params = Params {
        clients: env_or("CONFAB_BENCH_CLIENTS", 10_000) as usize,
        room_size: env_or("CONFAB_BENCH_ROOM_SIZE", 4).max(2) as usize,
        rate: env_or("CONFAB_BENCH_RATE", 20_000),
        secs: env_or("CONFAB_BENCH_SECS", 10),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let signaling = runtime.block_on(run_target(Target::Signaling, &params));
    let cluster = runtime.block_on(run_target(Target::Cluster, &params));
    let echo = runtime.block_on(run_target(Target::Echo, &params));
    report(&params, &signaling, &cluster, &echo);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Signaling,
    /// Two signaling instances over one Redis.
    Cluster,
    Echo,
}

struct Params {
    clients: usize,
    room_size: usize,
    rate: u64,
    secs: u64,
}

#[derive(Debug, Default)]
struct Outcome {
    connections_held: usize,
    connect_secs: f64,
    paced_rate: f64,
    /// Server CPU use during the paced window, in cores.
    paced_cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    saturated_rate: f64,
    /// Resident memory with every client connected and nothing sent yet.
    idle_rss_mb: f64,
    peak_rss_mb: f64,
    /// Each server process's peak (one per instance).
    peak_rss_each_mb: Vec<f64>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The processes under test: the servers clients connect to, and the Redis they share.
struct Servers {
    children: Vec<Child>,
    addrs: Vec<SocketAddr>,
    redis: Option<Child>,
}

impl Servers {
    fn start(target: Target) -> Self {
        let addr = || SocketAddr::from(([127, 0, 0, 1], free_port()));
        match target {
            Target::Signaling => {
                let a = addr();
                Self { children: vec![start_signaling(a, None)], addrs: vec![a], redis: None }
            }
            Target::Cluster => {
                let port = free_port();
                let redis = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--dir", &std::env::temp_dir().to_string_lossy()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (scripts/setup.sh installs it)");
                let url = format!("redis://127.0.0.1:{port}/");
                let addrs = vec![addr(), addr()];
                let children = addrs.iter().map(|&a| start_signaling(a, Some(&url))).collect();
                Self { children, addrs, redis: Some(redis) }
            }
            Target::Echo => {
                let a = addr();
                let echo = Command::new(std::env::current_exe().unwrap())
                    .env(ECHO_ROLE, a.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start the echo server");
                Self { children: vec![echo], addrs: vec![a], redis: None }
            }
        }
    }

    /// CPU used by the servers, Redis included.
    fn cpu_seconds(&self) -> f64 {
        self.children.iter().chain(self.redis.as_ref()).map(|c| cpu_seconds(c.id())).sum()
    }

    fn stop(mut self) {
        for child in self.children.iter_mut().chain(self.redis.as_mut()) {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

fn start_signaling(addr: SocketAddr, redis: Option<&str>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_confab-signaling"));
    c.args(["--listen", &addr.to_string(), "--max-connections", "15000"]);
    c.args(["--max-message-rate", "0", "--ui-dir", "/nonexistent"]);
    if let Some(url) = redis {
        c.args(["--redis-url", url]);
    }
    c.env("RUST_LOG", "warn");
    c.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("start confab-signaling")
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// A memory figure of /proc/PID/status (`VmRSS:` now, `VmHWM:` the peak), in MiB.
fn memory_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The phase every client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Paced,
    Saturate,
    Done,
}

struct Shared {
    started: Instant,
    delivered: AtomicU64,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

async fn connect(
    addr: SocketAddr,
    i: usize,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    for attempt in 0..50 {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % SOURCE_ADDRS as usize) as u8);
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        if let Ok(stream) = socket.connect(addr).await {
            let _ = stream.set_nodelay(true);
            let url = format!("ws://{addr}/ws");
            if let Ok((ws, _)) =
                tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await
            {
                return ws;
            }
        }
        tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
    }
    panic!("client {i} could not connect");
}

/// The message a client sends: a candidate-shaped signal carrying its send time (µs since the
/// start of the run).
fn payload(to: &str, sent: Duration) -> String {
    let us = sent.as_micros();
    format!(
        r#"{{"type":"signal","to":"{to}","data":{{"candidate":{{"candidate":"candidate:{us} 1 udp 2122260223 192.0.2.1 50000 typ host generation 0 ufrag abcd network-id 1","sdpMid":"0","sdpMLineIndex":0}}}}}}"#
    )
}

fn sent_at_us(text: &str) -> Option<u64> {
    let start = text.find("candidate:")? + "candidate:".len();
    let digits = &text[start..];
    let end = digits.find(' ')?;
    digits[..end].parse().ok()
}

async fn run_target(target: Target, params: &Params) -> Outcome {
    let servers = Servers::start(target);
    // Wait for the servers to listen (and, with Redis, to be connected to it).
    let deadline = Instant::now() + Duration::from_secs(30);
    for &addr in &servers.addrs {
        while !ready(target, addr).await {
            assert!(Instant::now() < deadline, "{target:?} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let addrs = servers.addrs.clone();
    println!("{target:?}: opening {} connections…", params.clients);

    let shared = Arc::new(Shared { started: Instant::now(), delivered: AtomicU64::new(0) });
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<Vec<u32>>();
    let connecting = Arc::new(Semaphore::new(CONNECTING));
    let rooms: Vec<String> = (0..params.clients.div_ceil(params.room_size))
        .map(|_| confab_proto::RoomId::random().to_string())
        .collect();

    // Open and join every client. For the signaling server, the clients of a room learn each
    // other's ids from welcome/peer_joined; client k talks to its partner k^1 in the same room.
    let connect_start = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<(usize, String)>();
    let mut streams = Vec::with_capacity(params.clients);
    let mut handles = Vec::new();
    for i in 0..params.clients {
        let permit = connecting.clone().acquire_owned().await.unwrap();
        let room = rooms[i / params.room_size].clone();
        let ready_tx = ready_tx.clone();
        // With two instances, alternate clients (so each partner pair) are on different ones.
        let addr = addrs[i % addrs.len()];
        handles.push(tokio::spawn(async move {
            let mut ws = connect(addr, i).await;
            let mut id = String::new();
            if target != Target::Echo {
                let join = json!({"type": "join", "v": 1, "room": room, "name": format!("c{i}"), "client": "cli", "app_version": "bench"});
                ws.send(Message::text(join.to_string())).await.unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        assert_eq!(v["type"], "welcome", "{t}");
                        id = v["you"].as_str().unwrap().to_owned();
                        break;
                    }
                }
            }
            drop(permit);
            let _ = ready_tx.send((i, id));
            ws
        }));
    }
    drop(ready_tx);
    let mut ids = vec![String::new(); params.clients];
    while let Some((i, id)) = ready_rx.recv().await {
        ids[i] = id;
    }
    for h in handles {
        streams.push(h.await.unwrap());
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let idle_rss_mb = servers.children.iter().map(|c| memory_mb(c.id(), "VmRSS:")).sum();
    println!("{target:?}: {} connections open in {connect_secs:.1} s", streams.len());

    // Each client's partner (its own id for the echo server, which only answers the sender).
    let per_client_interval = Duration::from_secs_f64(params.clients as f64 / params.rate as f64);
    let mut tasks = Vec::with_capacity(params.clients);
    for (i, ws) in streams.into_iter().enumerate() {
        let partner = if target == Target::Echo {
            String::new()
        } else {
            ids[(i ^ 1).min(params.clients - 1)].clone()
        };
        let phase = phase_rx.clone();
        let shared = shared.clone();
        let latency_tx = latency_tx.clone();
        let offset = per_client_interval.mul_f64(i as f64 / params.clients as f64);
        tasks.push(tokio::spawn(client(
            ws,
            partner,
            phase,
            shared,
            latency_tx,
            per_client_interval,
            offset,
        )));
    }
    drop(latency_tx);
    // Discard whatever peer_joined traffic is still in flight before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let warmup = Duration::from_secs(2);
    let window = Duration::from_secs(params.secs);
    phase_tx.send(Phase::Paced).unwrap();
    tokio::time::sleep(warmup).await;
    let before = shared.delivered.load(Ordering::Relaxed);
    let cpu_before = servers.cpu_seconds();
    let t = Instant::now();
    // Measuring: latencies are recorded only inside this window (the clients check the clock).
    MEASURE.store(1, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    MEASURE.store(0, Ordering::Relaxed);
    let paced_rate =
        (shared.delivered.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64();
    let paced_cpu = (servers.cpu_seconds() - cpu_before) / t.elapsed().as_secs_f64();

    phase_tx.send(Phase::Saturate).unwrap();
    tokio::time::sleep(warmup).await;
    let before = shared.delivered.load(Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let saturated_rate =
        (shared.delivered.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64();

    let connections_held = if target == Target::Echo {
        tasks.iter().filter(|t| !t.is_finished()).count()
    } else {
        let mut held = 0;
        for &addr in &servers.addrs {
            held += metric(addr, "confab_websockets").await as usize;
        }
        held
    };
    let peak_rss_each_mb: Vec<f64> =
        servers.children.iter().map(|c| memory_mb(c.id(), "VmHWM:")).collect();
    phase_tx.send(Phase::Done).unwrap();
    for task in tasks {
        let _ = task.await;
    }
    let mut latencies: Vec<u32> = Vec::new();
    while let Some(mut l) = latency_rx.recv().await {
        latencies.append(&mut l);
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies[idx]) / 1000.0
    };
    servers.stop();
    Outcome {
        connections_held,
        connect_secs,
        paced_rate,
        paced_cpu,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        saturated_rate,
        idle_rss_mb,
        peak_rss_mb: peak_rss_each_mb.iter().sum(),
        peak_rss_each_mb,
    }
}

/// Whether the server at `addr` is ready for clients: listening, and for an instance with
/// Redis, connected to it.
async fn ready(target: Target, addr: SocketAddr) -> bool {
    match target {
        Target::Cluster => metric(addr, "confab_redis_up").await == 1.0,
        _ => tokio::net::TcpStream::connect(addr).await.is_ok(),
    }
}

static MEASURE: AtomicU64 = AtomicU64::new(0);

/// One figure of the server's `/metrics` (0 when it cannot be read).
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return 0.0 };
    let request = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut body = String::new();
    if s.write_all(request).await.is_err() || s.read_to_string(&mut body).await.is_err() {
        return 0.0;
    }
    let prefix = format!("{name} ");
    body.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn client(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    partner: String,
    mut phase: watch::Receiver<Phase>,
    shared: Arc<Shared>,
    latency_tx: mpsc::UnboundedSender<Vec<u32>>,
    interval: Duration,
    offset: Duration,
) {
    let (mut sink, mut stream) = ws.split();
    let mut latencies = Vec::new();
    // A fixed open-loop schedule: a late tick is caught up at once and the grid never drifts, so
    // clients never bunch up. Each message carries its scheduled time, so any lateness on the
    // client side counts against the measured latency rather than hiding it.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut current = *phase.borrow();
    loop {
        // Wait for the next phase in a future kept across turns: making one per message would
        // have every client contend on the shared channel's waiter list.
        let changed = {
            let next_phase = phase.changed();
            tokio::pin!(next_phase);
            loop {
                tokio::select! {
                    changed = &mut next_phase => break changed,
                    scheduled = ticker.tick(), if current == Phase::Paced => {
                        let at = scheduled.into_std().saturating_duration_since(shared.started);
                        if sink.send(Message::text(payload(&partner, at))).await.is_err() { return; }
                    }
                    msg = stream.next() => {
                        let Some(Ok(msg)) = msg else { return };
                        let Message::Text(text) = msg else { continue };
                        let Some(sent) = sent_at_us(&text) else { continue };
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        if MEASURE.load(Ordering::Relaxed) == 1 && current == Phase::Paced {
                            let now = shared.started.elapsed().as_micros() as u64;
                            latencies.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                        }
                        // Saturation: every delivery sends the next message, so `WINDOW` keep circulating.
                        if current == Phase::Saturate
                            && sink.send(Message::text(payload(&partner, shared.started.elapsed()))).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        if changed.is_err() {
            break;
        }
        current = *phase.borrow_and_update();
        match current {
            Phase::Saturate => {
                for _ in 0..WINDOW {
                    if sink
                        .send(Message::text(payload(&partner, shared.started.elapsed())))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Phase::Done => break,
            _ => {}
        }
    }
    let _ = latency_tx.send(latencies);
    let _ = sink.close().await;
}

/// The reference: a bare tokio-tungstenite server that sends every text frame straight back.
fn echo_server(addr: SocketAddr) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn report(params: &Params, signaling: &Outcome, cluster: &Outcome, echo: &Outcome) {
    let ratio = signaling.saturated_rate / echo.saturated_rate.max(1.0);
    let cluster_ratio = cluster.saturated_rate / signaling.saturated_rate.max(1.0);
    let targets = json!({
        "connections_10000_under_300_mb": signaling.connections_held >= 10_000 && signaling.peak_rss_mb < 300.0,
        "relay_p99_under_10_ms_at_20000_per_s": signaling.p99_ms < 10.0 && signaling.paced_rate >= 0.95 * 20_000.0,
        "throughput_at_least_60_percent_of_echo": ratio >= 0.6,
        "two_instances_p99_under_15_ms_at_20000_per_s": cluster.p99_ms < 15.0 && cluster.paced_rate >= 0.95 * 20_000.0,
        "two_instances_throughput_at_least_70_percent_of_one": cluster_ratio >= 0.7,
    });
    println!();
    println!(
        "| server | connections | connect s | paced msg/s | server CPU | p50 ms | p99 ms | max ms | saturated msg/s | idle RSS MB | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let rows = [
        ("confab-signaling (relay)", signaling),
        ("2 × confab-signaling over Redis", cluster),
        ("bare echo (reference)", echo),
    ];
    for (name, o) in rows {
        println!(
            "| {name} | {} | {:.1} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} |",
            o.connections_held,
            o.connect_secs,
            o.paced_rate,
            o.paced_cpu * 100.0,
            o.p50_ms,
            o.p99_ms,
            o.max_ms,
            o.saturated_rate,
            o.idle_rss_mb,
            o.peak_rss_mb
        );
    }
    println!("\nrelay throughput / echo throughput: {:.0}%", ratio * 100.0);
    println!(
        "two instances / one instance throughput: {:.0}%; each instance's peak RSS: {:?} MB",
        cluster_ratio * 100.0,
        cluster.peak_rss_each_mb.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>()
    );
    println!("targets: {targets}");
    let outcome = |o: &Outcome| {
        json!({
            "connections_held": o.connections_held,
            "connect_seconds": o.connect_secs,
            "paced_messages_per_second": o.paced_rate,
            "paced_server_cpu_cores": o.paced_cpu,
            "latency_ms": {"p50": o.p50_ms, "p99": o.p99_ms, "max": o.max_ms},
            "saturated_messages_per_second": o.saturated_rate,
            "server_idle_rss_mb": o.idle_rss_mb,
            "server_peak_rss_mb": o.peak_rss_mb,
            "server_peak_rss_mb_each": o.peak_rss_each_mb,
        })
    };
    let result = json!({
        "benchmark": "signaling",
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "parameters": {
            "clients": params.clients,
            "room_size": params.room_size,
            "paced_total_messages_per_second": params.rate,
            "window_seconds": params.secs,
            "saturation_in_flight_per_client": WINDOW,
        },
        "signaling": outcome(signaling),
        "two_instances_over_redis": outcome(cluster),
        "two_instances_throughput_ratio": cluster_ratio,
        "echo_reference": outcome(echo),
        "throughput_ratio": ratio,
        "targets_met": targets,
    });
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signaling.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
    println!("wrote {}", path.display());
}
