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
//! Not yet measured, until the mesh exists: late joiner over a real data channel, keystroke and
//! chat latency across a 3-peer mesh, file transfer throughput. The JSON says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc};
use confab_core::{MeetingDoc, StoredDoc};
use serde_json::{Value, json};

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
        "not_measured_yet": [
            "late joiner over a real data channel",
            "keystroke-to-remote and chat-to-remote latency across a 3-peer mesh",
            "file transfer throughput",
        ],
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("core.json"), serde_json::to_string_pretty(&result).unwrap() + "\n")
        .unwrap();
    println!("wrote bench/results/core.json");
}
