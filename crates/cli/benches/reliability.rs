//! The real program through the faults of a meeting's worst minute, with figures.
//!
//! `make bench-reliability` (`cargo bench -p confab-cli --bench reliability`): three relay-only
//! CLI peers (`tests/common/meeting.rs`) go through a signaling restart, a NAT that forgets every
//! mapping (only an ICE restart recovers), and 10% loss with 100 ms delay, `CONFAB_BENCH_RUNS`
//! times (3); a peer floods another with chat; and every decoder that reads peer input is fed
//! garbage. It prints a table and writes `bench/results/reliability.json`.
//!
//! `make soak MINUTES=30` (`CONFAB_SOAK_MINUTES`): the same meeting for that long, the peers
//! chatting and editing all the while, with a random fault every 20–40 s; it reports divergence,
//! lost and doubled messages, and how the peers' memory and open files grew, to
//! `bench/results/soak.json`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::impair::Impairment;
use common::meeting::{
    Meeting, chat_counts, current_id, fps, is_back, notes, run_for, video_reports,
};
use common::relay::{free_port, start_signaling};
use common::{Confab, is, participant_args};
use confab_proto::{ClientMessage, CtlMessage, MeetingKey, RoomId, ServerMessage, SyncFrame};
use serde_json::{Value, json};

/// How long a peer may take to come back from a fault before the fault counts as not survived.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// A small seeded generator (xorshift64*): the same faults and garbage on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// What the runs found, by kind of fault.
#[derive(Default)]
struct Figures {
    /// Fault kind → (injected, survived).
    faults: BTreeMap<&'static str, (u32, u32)>,
    signaling_back_ms: Vec<f64>,
    ice_back_ms: Vec<f64>,
    convergence_ms: Vec<f64>,
    share_fps: Vec<f64>,
    messages_sent: usize,
    messages_lost: usize,
    messages_doubled: usize,
    diverged_runs: usize,
}

impl Figures {
    fn fault(&mut self, kind: &'static str, survived: bool) {
        let entry = self.faults.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += u32::from(survived);
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Reads `key` (in kB) from /proc/PID/status, in MiB.
fn memory_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

fn count_events(who: &Confab, kind: &str) -> usize {
    who.events().iter().filter(|e| is(e, kind)).count()
}

/// Waits until `done` holds for every peer, reading their reports; false if `within` passed.
async fn wait_all(
    peers: &mut [Confab],
    within: Duration,
    done: impl Fn(usize, &Confab) -> bool,
) -> Vec<Option<Duration>> {
    let start = Instant::now();
    let mut when = vec![None; peers.len()];
    while start.elapsed() < within && when.iter().any(Option::is_none) {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.drain();
            if when[i].is_none() && done(i, peer) {
                when[i] = Some(start.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    when
}

fn millis(times: &[Option<Duration>]) -> Vec<f64> {
    times.iter().flatten().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// Every peer says something about `what`, each its own text and never one said before (so a
/// text seen twice is a message doubled), and the texts go on `said`.
async fn everyone_says(peers: &mut [Confab], said: &mut Vec<String>, what: &str) {
    for (i, peer) in peers.iter_mut().enumerate() {
        let text = format!("{what} from {i} (#{})", said.len());
        peer.send(json!({"cmd": "say", "text": text})).await;
        said.push(text);
    }
}

/// The signaling service dies and comes back on its port a second later. Connections stay
/// up meanwhile, so chat goes on; every peer must be back in the room, with nobody lost.
async fn signaling_restart(m: &mut Meeting, said: &mut Vec<String>, figures: &mut Figures) {
    let joins: Vec<usize> = m.peers.iter().map(|p| count_events(p, "joined")).collect();
    let failures: Vec<usize> = m.peers.iter().map(|p| count_events(p, "peer_failed")).collect();
    m.relay.stop_signaling();
    everyone_says(&mut m.peers, said, "said while signaling was away").await;
    run_for(&mut m.peers, 1.0).await;
    m.relay.start_signaling();
    let back =
        wait_all(&mut m.peers, BACK_WITHIN, |i, p| count_events(p, "joined") > joins[i]).await;
    run_for(&mut m.peers, 1.0).await;
    let nobody_lost =
        m.peers.iter().zip(&failures).all(|(p, n)| count_events(p, "peer_failed") == *n);
    figures.fault("signaling restart", back.iter().all(Option::is_some) && nobody_lost);
    figures.signaling_back_ms.extend(millis(&back));
}

/// The NAT forgets every mapping: every relay allocation is lost, and only ICE restarts bring
/// the connections back.
async fn nat_rebind(m: &mut Meeting, said: &mut Vec<String>, figures: &mut Figures) {
    let ups: Vec<usize> =
        (m.peers.iter()).map(|p| p.events().iter().filter(|e| is_back(e)).count()).collect();
    m.proxy.rebind();
    everyone_says(&mut m.peers, said, "said while the paths were gone").await;
    let back = wait_all(&mut m.peers, BACK_WITHIN, |i, p| {
        p.events().iter().filter(|e| is_back(e)).count() >= ups[i] + 2
    })
    .await;
    figures.fault("every path lost (NAT rebinding)", back.iter().all(Option::is_some));
    figures.ice_back_ms.extend(millis(&back));
}

/// 10% loss and 100 ms delay for 8 s while everyone chats and edits; then the network heals
/// and the notes must converge.
async fn lossy_network(m: &mut Meeting, said: &mut Vec<String>, run: usize, figures: &mut Figures) {
    m.proxy.set(Impairment {
        loss: 0.10,
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(10),
        ..Impairment::default()
    });
    let mut marks = Vec::new();
    for (i, peer) in m.peers.iter_mut().enumerate() {
        for n in 0..10 {
            let text = format!("run {run}: {i}:{n} at 10% loss");
            peer.send(json!({"cmd": "say", "text": text})).await;
            said.push(text);
            let mark = format!("<{run}.{i}.{n}>");
            peer.send(json!({"cmd": "notes_append", "text": mark})).await;
            marks.push(mark);
        }
    }
    run_for(&mut m.peers, 8.0).await;
    let shown: Vec<f64> = m.peers[1..].iter().map(video_fps).collect();
    m.proxy.set(Impairment::default());
    let converged = wait_all(&mut m.peers, BACK_WITHIN, |_, p| {
        let text = notes(p);
        marks.iter().all(|mark| text.contains(mark.as_str()))
    })
    .await;
    let all = converged.iter().all(Option::is_some);
    figures.fault("10% loss, 100 ms delay", all && shown.iter().all(|f| *f >= 15.0));
    if all {
        let slowest = converged.iter().flatten().max().unwrap();
        figures.convergence_ms.push(slowest.as_secs_f64() * 1000.0);
    }
    figures.share_fps.extend(shown);
}

/// The frame rate of the video `who` shows now, over the last 5 reports (0 with fewer). Only
/// Ada sends video; her track is reported under the id its connection began with, and a
/// connection made anew after a signaling restart begins another.
fn video_fps(who: &Confab) -> f64 {
    let events = who.events();
    let latest = events.iter().rev().find(|e| is(e, "track") && e["audio"] == false);
    let Some(id) = latest.and_then(|e| e["id"].as_str()) else { return 0.0 };
    if video_reports(events, id) > 5 { fps(who, id, 5) } else { 0.0 }
}

/// After the faults: every message said reaches everyone once, and the notes are the same.
async fn count_messages(m: &mut Meeting, said: &[String], figures: &mut Figures) {
    let expected: HashSet<&str> = said.iter().map(String::as_str).collect();
    wait_all(&mut m.peers, BACK_WITHIN, |_, p| {
        let counts = chat_counts(p);
        expected.iter().all(|t| counts.contains_key(*t))
    })
    .await;
    figures.messages_sent += said.len() * m.peers.len();
    for peer in &m.peers {
        let counts = chat_counts(peer);
        for text in &expected {
            match counts.get(*text).copied().unwrap_or(0) {
                0 => figures.messages_lost += 1,
                1 => {}
                n => figures.messages_doubled += n - 1,
            }
        }
    }
    let texts: Vec<String> = m.peers.iter().map(notes).collect();
    figures.diverged_runs += usize::from(texts.iter().any(|t| *t != texts[0]));
}

/// One peer floods another with chat far past what a meeting needs: the flooder is cut off,
/// the third peer carries on, and the victim's memory stays bounded.
async fn flood() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(std::net::Ipv4Addr::UNSPECIFIED);
    let _signaling = start_signaling(port, &[], "");
    let link = format!(
        "http://127.0.0.1:{port}/m/{}#k={}",
        RoomId::random().as_str(),
        MeetingKey::random().as_str()
    );
    let mut peers: Vec<Confab> = ["Bo", "Cy", "Eve"]
        .iter()
        .map(|name| {
            Confab::spawn(name, &participant_args(&["join", &link], name, &dir.path().join(name)))
        })
        .collect();
    for peer in peers.iter_mut() {
        peer.wait_for_n("both others connected", 2, |e| is(e, "peer_connected")).await;
    }
    let eve = current_id(&peers[2]);
    let bo_pid = peers[0].pid().unwrap();
    run_for(&mut peers, 1.0).await;
    let before = memory_mib(bo_pid, "VmRSS:");
    const FLOOD: usize = 20_000;
    let lines = (0..FLOOD).map(|n| json!({"cmd": "say", "text": format!("flood {n}")}).to_string());
    peers[2].feed(lines.collect());
    let start = Instant::now();
    let mut peak = before;
    let mut cut_off = None;
    while start.elapsed() < Duration::from_secs(20) {
        peers[0].drain();
        peak = peak.max(memory_mib(bo_pid, "VmRSS:"));
        if cut_off.is_none()
            && peers[0].events().iter().any(|e| is(e, "peer_failed") && e["id"] == eve.as_str())
        {
            cut_off = Some(start.elapsed());
        }
        if cut_off.is_some_and(|t| start.elapsed() > t + Duration::from_secs(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peers[1].send(json!({"cmd": "say", "text": "after the flood"})).await;
    let carried_on = wait_all(&mut peers[..1], BACK_WITHIN, |_, p| {
        p.events().iter().any(|e| is(e, "chat") && e["text"] == "after the flood")
    })
    .await[0]
        .is_some();
    let after = memory_mib(bo_pid, "VmRSS:");
    let lost: Vec<Value> = peers[0].events().iter()
        .filter(|e| is(e, "peer_failed") || is(e, "peer_left"))
        .map(|e| json!({"who": if e["id"] == eve.as_str() { "the flooder" } else { "another" }, "why": e["reason"]}))
        .collect();
    let received = count_events(&peers[0], "chat");
    json!({
        "messages_flooded": FLOOD,
        "flood_messages_the_victim_took": received.saturating_sub(1),
        "flooder_cut_off_after_ms": cut_off.map(|t| t.as_millis() as u64),
        "others_carried_on": carried_on,
        "the_victim_lost": lost,
        "victim_rss_mib": { "before": before, "peak": peak, "after": after },
    })
}

/// Feeds every decoder of peer input garbage, and valid input damaged; counts the panics.
fn bad_inputs() -> (BTreeMap<&'static str, (u64, u64)>, u64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tried: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut attempt = |name: &'static str, f: &mut dyn FnMut()| {
        let entry = tried.entry(name).or_default();
        entry.0 += 1;
        if catch_unwind(AssertUnwindSafe(f)).is_err() {
            entry.1 += 1;
        }
    };
    let valid = [
        r#"{"type":"join","v":1,"room":"abcdef","name":"Ada","client":"cli","app_version":"1"}"#,
        r#"{"type":"signal","to":"AAAAAAAAAAAAAAAAAAAAAA","data":{"candidate":null}}"#,
        r#"{"type":"file_offer","id":"1b4e28ba-2fa1-41d2-883f-0016d3cca427","name":"a","size":1,"sha256":"00"}"#,
        r#"{"type":"cursor","anchor":"2@abcd","head":"2@abcd"}"#,
    ];
    for n in 0..100_000u64 {
        let text = if n % 2 == 0 {
            String::from_utf8_lossy(&rng.bytes(300)).into_owned()
        } else {
            // A valid message with a few characters changed or cut short.
            let mut chars: Vec<char> =
                valid[rng.below(valid.len() as u64) as usize].chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(chars.len() as u64) as usize;
                chars[at] = char::from_u32(rng.below(0x80) as u32).unwrap_or('x');
            }
            chars.truncate(rng.below(chars.len() as u64 + 1) as usize);
            chars.into_iter().collect()
        };
        attempt("signaling: client messages", &mut || drop(ClientMessage::decode(&text)));
        attempt("signaling: server messages", &mut || drop(ServerMessage::decode(&text)));
        attempt("ctl messages", &mut || drop(CtlMessage::decode(&text)));
        let bytes = rng.bytes(2000);
        attempt("sync frames", &mut || drop(SyncFrame::decode(&bytes)));
    }
    let mut doc = confab_core::MeetingDoc::new(automerge::ActorId::from([7u8; 16]));
    doc.splice_notes(0, 0, "agenda").unwrap();
    for _ in 0..5_000 {
        let mut frame = vec![rng.below(3) as u8];
        frame.extend(rng.bytes(1000));
        attempt("sync: Automerge messages and snapshots", &mut || {
            let mut sync = confab_core::PeerSync::new();
            let _ = sync.receive(&mut doc, &frame);
        });
    }
    let mut vp8 = confab_media::VpxDecoder::new(confab_media::VideoCodec::Vp8).unwrap();
    let mut vp9 = confab_media::VpxDecoder::new(confab_media::VideoCodec::Vp9).unwrap();
    let mut opus = confab_media::OpusDecoder::new().unwrap();
    let mut pcm = vec![0i16; 5760 * 2];
    for _ in 0..5_000 {
        let frame = rng.bytes(4000);
        attempt("VP8 frames", &mut || drop(vp8.decode(&frame)));
        attempt("VP9 frames", &mut || drop(vp9.decode(&frame)));
        let packet = rng.bytes(400);
        attempt("Opus packets", &mut || drop(opus.decode(&packet, &mut pcm)));
    }
    let panics = tried.values().map(|(_, p)| p).sum();
    (tried, panics)
}

fn write(name: &str, value: &Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    println!("wrote bench/results/{name}");
}

async fn bench() {
    let runs: usize =
        std::env::var("CONFAB_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut figures = Figures::default();
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        let mut m = Meeting::start().await;
        let mut said = Vec::new();
        signaling_restart(&mut m, &mut said, &mut figures).await;
        nat_rebind(&mut m, &mut said, &mut figures).await;
        lossy_network(&mut m, &mut said, run, &mut figures).await;
        count_messages(&mut m, &said, &mut figures).await;
    }
    eprintln!("flood");
    let flood = flood().await;
    eprintln!("bad inputs");
    let (tried, panics) = bad_inputs();

    println!("\n{:<40} {:>9} {:>9}", "fault", "injected", "survived");
    for (kind, (injected, survived)) in &figures.faults {
        println!("{kind:<40} {injected:>9} {survived:>9}");
    }
    let row = |what: &str, values: &[f64], unit: &str| {
        println!(
            "{what:<40} p50 {:>7.0} {unit}  max {:>7.0} {unit}  ({} samples)",
            percentile(values, 0.5),
            values.iter().copied().fold(f64::NAN, f64::max),
            values.len()
        );
    };
    println!();
    row("back in the room after signaling restart", &figures.signaling_back_ms, "ms");
    row("connected again after every path was lost", &figures.ice_back_ms, "ms");
    row("notes converged after heal (10% loss)", &figures.convergence_ms, "ms");
    println!(
        "{:<40} min {:>7.1} fps  p50 {:>7.1} fps",
        "video at 10% loss, 100 ms",
        figures.share_fps.iter().copied().fold(f64::NAN, f64::min),
        percentile(&figures.share_fps, 0.5)
    );
    println!(
        "{:<40} {} deliveries due, {} lost, {} doubled; {} of {runs} runs diverged",
        "chat messages",
        figures.messages_sent,
        figures.messages_lost,
        figures.messages_doubled,
        figures.diverged_runs
    );
    let bad_total: u64 = tried.values().map(|(n, _)| n).sum();
    println!("{:<40} {bad_total} tried, {panics} panics", "bad inputs");
    println!("{:<40} {flood}", "flooding peer");

    let faults: serde_json::Map<String, Value> = (figures.faults.iter())
        .map(|(k, (i, s))| ((*k).to_owned(), json!({"injected": i, "survived": s})))
        .collect();
    let inputs: serde_json::Map<String, Value> = (tried.iter())
        .map(|(k, (n, p))| ((*k).to_owned(), json!({"tried": n, "panics": p})))
        .collect();
    let summary = |values: &[f64]| {
        json!({
            "p50": percentile(values, 0.5),
            "max": values.iter().copied().fold(f64::NAN, f64::max),
            "samples": values,
        })
    };
    write(
        "reliability.json",
        &json!({
            "about": "crates/cli/benches/reliability.rs: three relay-only CLI peers through a signaling restart, a NAT forgetting every mapping, and 10% loss with 100 ms delay, per run; a flooding peer; garbage to every decoder of peer input",
            "runs": runs,
            "faults": faults,
            "bad_inputs": { "by_decoder": inputs, "tried": bad_total, "panics": panics },
            "messages": {
                "expected_deliveries": figures.messages_sent,
                "lost": figures.messages_lost,
                "doubled": figures.messages_doubled,
            },
            "diverged_runs": figures.diverged_runs,
            "reconnect_ms": {
                "after_signaling_restart": summary(&figures.signaling_back_ms),
                "after_every_path_lost_ice_restart": summary(&figures.ice_back_ms),
            },
            "convergence_after_heal_ms_at_10pct_loss": summary(&figures.convergence_ms),
            "share_fps_at_10pct_loss_100ms": summary(&figures.share_fps),
            "flooding_peer": flood,
        }),
    );
}

/// The meeting for `minutes`, with random faults; reports what drifted.
async fn soak(minutes: f64) {
    let mut rng =
        Rng(std::env::var("CONFAB_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1) | 1);
    let mut figures = Figures::default();
    let mut m = Meeting::start().await;
    let pids: Vec<u32> = m.peers.iter().map(|p| p.pid().unwrap()).collect();
    let start_rss: Vec<f64> = pids.iter().map(|p| memory_mib(*p, "VmRSS:")).collect();
    let start_fds: Vec<usize> = pids.iter().map(|p| open_files(*p)).collect();
    let mut said = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut n = 0u64;
    let mut next_fault = Instant::now() + Duration::from_secs(20 + rng.below(20));
    while Instant::now() < end {
        // Everyone keeps talking and writing.
        let who = rng.below(3) as usize;
        let text = format!("soak message {n}");
        m.peers[who].send(json!({"cmd": "say", "text": text})).await;
        said.push(text);
        m.peers[rng.below(3) as usize]
            .send(json!({"cmd": "notes_append", "text": format!("<{n}>")}))
            .await;
        n += 1;
        run_for(&mut m.peers, 0.5).await;
        if Instant::now() >= next_fault {
            match rng.below(3) {
                0 => signaling_restart(&mut m, &mut said, &mut figures).await,
                1 => nat_rebind(&mut m, &mut said, &mut figures).await,
                _ => {
                    m.proxy.set(Impairment {
                        loss: 0.10,
                        delay: Duration::from_millis(100),
                        ..Impairment::default()
                    });
                    run_for(&mut m.peers, 5.0).await;
                    m.proxy.set(Impairment::default());
                    figures.fault("5 s of 10% loss", true);
                }
            }
            next_fault = Instant::now() + Duration::from_secs(20 + rng.below(20));
        }
    }
    count_messages(&mut m, &said, &mut figures).await;
    let end_rss: Vec<f64> = pids.iter().map(|p| memory_mib(*p, "VmRSS:")).collect();
    let end_fds: Vec<usize> = pids.iter().map(|p| open_files(*p)).collect();
    let per_peer: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "name": m.peers[i].name,
                "rss_mib": { "start": start_rss[i], "end": end_rss[i] },
                "open_files": { "start": start_fds[i], "end": end_fds[i] },
            })
        })
        .collect();
    let faults: serde_json::Map<String, Value> = (figures.faults.iter())
        .map(|(k, (i, s))| ((*k).to_owned(), json!({"injected": i, "survived": s})))
        .collect();
    let report = json!({
        "minutes": minutes,
        "faults": faults,
        "messages": { "said": said.len(), "lost": figures.messages_lost, "doubled": figures.messages_doubled },
        "notes_diverged": figures.diverged_runs > 0,
        "peers": per_peer,
        "reconnect_ms": {
            "after_signaling_restart": figures.signaling_back_ms,
            "after_every_path_lost_ice_restart": figures.ice_back_ms,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    write("soak.json", &report);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match std::env::var("CONFAB_SOAK_MINUTES").ok().and_then(|m| m.parse::<f64>().ok()) {
        Some(minutes) => runtime.block_on(soak(minutes)),
        None => runtime.block_on(bench()),
    }
}
