//! `make bench-core`: the meeting document against its references, side by side in one run.
//!
//! Replay of the editing trace in `../shared/data/editing-traces/` (one change per patch) through
//! - the raw `automerge` crate,
//! - confab-core's edit API (`MeetingDoc::splice_notes`),
//! - `@automerge/automerge` in Node,
//!
//! each in a process of its own (this program re-executes itself) so that peak memory is each
//! one's own; then saved size and load time. Also: how long an edit takes to be durable through
//! `StoredDoc` (written and synced to disk before it counts as applied).
//!
//! Then, over a real signaling service and real WebRTC on this machine's own address: how long
//! a late joiner takes to hold the whole trace's document, keystroke-to-remote and
//! chat-to-remote latency across a 3-peer mesh, and file transfer throughput.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc};
use confab_core::engine::DEFAULT_MAX_FILE_BYTES;
use confab_core::{Engine, EngineConfig, EngineEvent, FileState, MeetingDoc, StoredDoc, peer};
use confab_proto::{ClientKind, DisplayName, MeetingKey, MeetingLink, RoomId};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const ROLE: &str = "CONFAB_BENCH_REPLAY";

#[derive(serde::Deserialize)]
struct Trace {
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<Txn>,
}

#[derive(serde::Deserialize)]
struct Txn {
    patches: Vec<(usize, usize, String)>,
}

fn trace_path() -> PathBuf {
    std::env::var_os("CONFAB_TRACE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/editing-traces/automerge-paper.json.gz")
    })
}

fn load_trace() -> Trace {
    let path = trace_path();
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open the trace {}: {e}", path.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut json).unwrap();
    serde_json::from_str(&json).unwrap()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One replay, in this process; prints its figures as one JSON line.
fn replay(role: &str) {
    let trace = load_trace();
    let patches: Vec<&(usize, usize, String)> =
        trace.txns.iter().flat_map(|t| &t.patches).collect();
    let start = Instant::now();
    let (text, saved, load_secs) = match role {
        "raw" => {
            let mut doc = AutoCommit::new();
            let notes = doc.put_object(automerge::ROOT, "notes", ObjType::Text).unwrap();
            doc.commit();
            for (pos, del, ins) in &patches {
                doc.splice_text(&notes, *pos, *del as isize, ins).unwrap();
                doc.commit();
            }
            let replay = start.elapsed();
            let text = doc.text(&notes).unwrap();
            let saved = doc.save();
            let t = Instant::now();
            let loaded = AutoCommit::load(&saved).unwrap();
            let load_secs = t.elapsed().as_secs_f64();
            assert_eq!(loaded.text(&notes).unwrap(), text);
            print_replay(replay.as_secs_f64(), patches.len(), &saved, load_secs);
            (text, saved, load_secs)
        }
        "core" => {
            let mut doc = MeetingDoc::new(ActorId::random());
            for (pos, del, ins) in &patches {
                doc.splice_notes(*pos, *del, ins).unwrap();
            }
            let replay = start.elapsed();
            let text = doc.notes();
            let saved = doc.save();
            let t = Instant::now();
            let loaded = MeetingDoc::load(&saved, ActorId::random()).unwrap();
            let load_secs = t.elapsed().as_secs_f64();
            assert_eq!(loaded.notes(), text);
            print_replay(replay.as_secs_f64(), patches.len(), &saved, load_secs);
            (text, saved, load_secs)
        }
        other => panic!("unknown replay {other}"),
    };
    assert_eq!(text, trace.end_content, "{role}: replay did not reproduce endContent");
    let _ = (saved, load_secs);
}

fn print_replay(replay_secs: f64, patches: usize, saved: &[u8], load_secs: f64) {
    println!(
        "{}",
        json!({
            "patches": patches,
            "replay_seconds": replay_secs,
            "peak_rss_mb": peak_rss_mb(),
            "saved_bytes": saved.len(),
            "load_seconds": load_secs,
        })
    );
}

fn run_child(mut cmd: Command) -> Value {
    let out = cmd.output().expect("start replay");
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("replay output")
}

/// Time for one edit to be durable, over `n` single-character edits.
fn durable_edits(n: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut store = StoredDoc::open(dir.path(), ActorId::random()).unwrap();
    let mut micros = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        store.edit(|d| d.splice_notes(i, 0, "x")).unwrap().unwrap();
        micros.push(t.elapsed().as_micros() as f64);
    }
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| micros[((micros.len() - 1) as f64 * p) as usize] / 1000.0;
    json!({"edits": n, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0)})
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        return replay(&role);
    }
    let exe = std::env::current_exe().unwrap();
    let mut results = serde_json::Map::new();
    for role in ["raw", "core"] {
        println!("replaying the trace through {role}…");
        let mut cmd = Command::new(&exe);
        cmd.env(ROLE, role);
        results.insert(role.into(), run_child(cmd));
    }
    println!("replaying the trace through @automerge/automerge in Node…");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/automerge-replay.mjs");
    let mut node = Command::new("node");
    node.arg(script).arg(trace_path());
    results.insert("js".into(), run_child(node));
    println!("durable edits through StoredDoc…");
    let durable = durable_edits(2000);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("late joiner over a real data channel…");
    let late = runtime.block_on(late_joiner(&load_trace()));
    println!("keystroke and chat latency across a 3-peer mesh…");
    let latency = runtime.block_on(mesh_latency(300));
    println!("file transfer on loopback…");
    let file = runtime.block_on(file_throughput(256 * 1024 * 1024));

    let get = |role: &str, key: &str| results[role][key].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "| replay of {} patches | time s | peak RSS MB | saved bytes | load s |",
        results["raw"]["patches"]
    );
    println!("|---|---|---|---|---|");
    for (role, name) in [
        ("raw", "automerge (Rust, raw)"),
        ("core", "confab-core MeetingDoc"),
        ("js", "@automerge/automerge (Node)"),
    ] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.0} | {:.3} |",
            get(role, "replay_seconds"),
            get(role, "peak_rss_mb"),
            get(role, "saved_bytes"),
            get(role, "load_seconds")
        );
    }
    let overhead = get("core", "replay_seconds") / get("raw", "replay_seconds") - 1.0;
    println!("\nconfab-core over raw automerge: {:+.1}% (target at most +20%)", overhead * 100.0);
    println!("durable edit (StoredDoc, synced to disk): {durable}");
    println!();
    println!("| over real WebRTC | figure | target |");
    println!("|---|---|---|");
    println!(
        "| late joiner holds the whole document | {:.0} ms from start ({:.0} ms after connecting) | < 1000 ms |",
        late["from_start_ms"].as_f64().unwrap_or(f64::NAN),
        late["after_connected_ms"].as_f64().unwrap_or(f64::NAN)
    );
    for kind in ["keystroke", "chat"] {
        println!(
            "| {kind} to both remotes, p50 / p99 | {:.2} / {:.2} ms | p99 < 30 ms |",
            latency[kind]["p50_ms"].as_f64().unwrap_or(f64::NAN),
            latency[kind]["p99_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "| file transfer, {} MiB | {:.0} MB/s | >= 50 MB/s |",
        file["bytes"].as_u64().unwrap_or(0) >> 20,
        file["mb_per_s"].as_f64().unwrap_or(f64::NAN)
    );

    let result = json!({
        "benchmark": "core",
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "replay": {
            "trace": "automerge-paper (one change per patch)",
            "automerge_rust_raw": results["raw"],
            "confab_core": results["core"],
            "automerge_js": results["js"],
            "core_overhead_over_raw": overhead,
            "target_met": overhead <= 0.20,
        },
        "durable_edit": durable,
        "late_joiner": late,
        "mesh_latency": latency,
        "file_transfer": file,
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("core.json"), serde_json::to_string_pretty(&result).unwrap() + "\n")
        .unwrap();
    println!("wrote bench/results/core.json");
}

/// An in-process signaling service on 127.0.0.1, for the rest of the run.
async fn signaling() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(confab_signaling::run(
        listener,
        confab_signaling::Config::default(),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

fn start_engine(
    link: &MeetingLink,
    name: &str,
    dir: &std::path::Path,
) -> (Engine, UnboundedReceiver<EngineEvent>) {
    Engine::start(EngineConfig {
        link: link.clone(),
        name: DisplayName::new(name).unwrap(),
        client: ClientKind::Cli,
        app_version: "bench".into(),
        data_dir: dir.join("data"),
        download_dir: dir.join("downloads"),
        max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        auto_accept_files: true,
        work_offline: false,
        author_id: format!("bench-{name}"),
        bind: peer::own_address().unwrap(),
        relay_only: false,
        tracks: confab_core::TrackSet::new(),
        sources: std::sync::Arc::new(confab_core::tracks::NoSources),
        incoming: None,
        trusted_certificate: None,
        access_token: None,
    })
    .unwrap()
}

/// Waits (up to a minute) for the first event `pick` accepts.
async fn next_matching<T>(
    events: &mut UnboundedReceiver<EngineEvent>,
    mut pick: impl FnMut(EngineEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let event = events.recv().await.expect("engine stopped");
            if let EngineEvent::Ended { reason, .. } = &event {
                panic!("engine ended: {reason}");
            }
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out")
}

/// A participant holds the whole trace; a newcomer with nothing joins and receives it.
async fn late_joiner(trace: &Trace) -> Value {
    let server = signaling().await;
    let link = MeetingLink::new(&server, RoomId::random(), MeetingKey::random()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The holder's stored document is the trace replayed through the edit API.
    let mut doc = MeetingDoc::new(ActorId::random());
    for (pos, del, ins) in trace.txns.iter().flat_map(|t| &t.patches) {
        doc.splice_notes(*pos, *del, ins).unwrap();
    }
    let room_dir = dir.path().join("ada/data/rooms").join(link.room().as_str());
    std::fs::create_dir_all(&room_dir).unwrap();
    let saved = doc.save();
    std::fs::write(room_dir.join("notes.automerge"), &saved).unwrap();
    let (_ada, mut ada_events) = start_engine(&link, "Ada", &dir.path().join("ada"));
    next_matching(&mut ada_events, |e| matches!(e, EngineEvent::Joined { .. }).then_some(())).await;

    let start = Instant::now();
    let (_di, mut di_events) = start_engine(&link, "Di", &dir.path().join("di"));
    let mut connected_at = None;
    next_matching(&mut di_events, |e| match e {
        EngineEvent::PeerConnected { .. } => {
            connected_at = Some(start.elapsed());
            None
        }
        EngineEvent::Notes { text, .. } if text == trace.end_content => Some(()),
        _ => None,
    })
    .await;
    let total = start.elapsed();
    let connected = connected_at.unwrap_or_default();
    json!({
        "document_saved_bytes": saved.len(),
        "from_start_ms": total.as_secs_f64() * 1000.0,
        "connected_ms": connected.as_secs_f64() * 1000.0,
        "after_connected_ms": (total - connected).as_secs_f64() * 1000.0,
        "target_met": total.as_secs_f64() < 1.0,
        "met_once_connected": (total - connected).as_secs_f64() < 1.0,
    })
}

fn percentiles(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p) as usize];
    json!({"samples": ms.len(), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0)})
}

/// Ada types (or chats) one thing at a time; each sample is the time until both Bo and Cy
/// report it.
async fn mesh_latency(samples: usize) -> Value {
    let server = signaling().await;
    let link = MeetingLink::new(&server, RoomId::random(), MeetingKey::random()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut peers = Vec::new();
    for name in ["Ada", "Bo", "Cy"] {
        peers.push(start_engine(&link, name, &dir.path().join(name)));
        let events = &mut peers.last_mut().unwrap().1;
        next_matching(events, |e| matches!(e, EngineEvent::Joined { .. }).then_some(())).await;
    }
    for (_, events) in peers.iter_mut() {
        let mut n = 0;
        next_matching(events, |e| {
            n += usize::from(matches!(e, EngineEvent::PeerConnected { .. }));
            (n == 2).then_some(())
        })
        .await;
    }
    let (ada, _) = &peers[0];
    let ada = ada.clone();
    let mut keystrokes = Vec::with_capacity(samples);
    let mut chats = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        ada.splice_notes(i, 0, "k").await.unwrap();
        for (_, events) in peers[1..].iter_mut() {
            next_matching(events, |e| {
                matches!(e, EngineEvent::Notes { text, .. } if text.len() == i + 1).then_some(())
            })
            .await;
        }
        keystrokes.push(start.elapsed().as_secs_f64() * 1000.0);

        let text = format!("message {i}");
        let start = Instant::now();
        ada.say(&text).await.unwrap();
        for (_, events) in peers[1..].iter_mut() {
            next_matching(events, |e| {
                matches!(&e, EngineEvent::Chat(m) if m.text == text).then_some(())
            })
            .await;
        }
        chats.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    json!({"peers": 3, "keystroke": percentiles(keystrokes), "chat": percentiles(chats)})
}

/// One file from Ada to Bo: from the offer (after hashing) until Bo has it saved and verified.
async fn file_throughput(bytes: usize) -> Value {
    let server = signaling().await;
    let link = MeetingLink::new(&server, RoomId::random(), MeetingKey::random()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    let mut x = 0x2545_f491u32;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&path, &data).unwrap();
    drop(data);
    let (ada, mut ada_events) = start_engine(&link, "Ada", &dir.path().join("ada"));
    next_matching(&mut ada_events, |e| matches!(e, EngineEvent::Joined { .. }).then_some(())).await;
    let (_bo, mut bo_events) = start_engine(&link, "Bo", &dir.path().join("bo"));
    next_matching(&mut bo_events, |e| matches!(e, EngineEvent::PeerConnected { .. }).then_some(()))
        .await;
    next_matching(&mut ada_events, |e| {
        matches!(e, EngineEvent::PeerConnected { .. }).then_some(())
    })
    .await;

    let hashing = Instant::now();
    let id = ada.send_file(&path).await.unwrap();
    let hash_secs = hashing.elapsed().as_secs_f64();
    let start = Instant::now();
    let saved = next_matching(&mut bo_events, |e| match e {
        EngineEvent::File(f) if f.id == id => match f.state {
            FileState::Done { path } => Some(path),
            FileState::Failed { reason } | FileState::Cancelled { reason } => {
                panic!("transfer failed: {reason}")
            }
            _ => None,
        },
        _ => None,
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(std::fs::metadata(saved.unwrap()).unwrap().len(), bytes as u64);
    let mb_per_s = bytes as f64 / 1e6 / secs;
    json!({
        "bytes": bytes,
        "seconds": secs,
        "mb_per_s": mb_per_s,
        "hashing_before_offer_seconds": hash_secs,
        "target_met": mb_per_s >= 50.0,
    })
}
