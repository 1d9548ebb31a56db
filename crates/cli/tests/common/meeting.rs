//! The impaired meeting the reliability tests and benchmark share: three CLI peers, relay-only,
//! so that every packet between them passes the impairment proxy in front of coturn
//! (`super::impair`); Ada sends 1280×720 video at 30 fps, everyone a tone. The signaling service
//! can be taken away and brought back on the same port.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use confab_proto::{MeetingKey, RoomId};
use serde_json::Value;

use super::impair::ImpairedUdp;
use super::relay::{Process, free_port, free_tcp_port, start_coturn, start_signaling};
use super::{Confab, is, participant_args};

/// Whether `e` reports the video `from` sends, still playing.
fn is_video_from(e: &Value, from: &str) -> bool {
    is(e, "track") && e["id"] == from && e["audio"] == false && e["ended"] != true
}

/// The reports of the newest video track `from` sends: the one shown. A track sent again
/// (after a renegotiation or an ICE restart) counts its frames from zero, and the old one may
/// still report for a while.
fn newest_video<'a>(events: &'a [Value], from: &str) -> Vec<&'a Value> {
    let reports: Vec<&Value> = events.iter().filter(|e| is_video_from(e, from)).collect();
    let newest = reports.iter().filter_map(|e| e["track"].as_u64()).max();
    reports.into_iter().filter(|e| e["track"].as_u64() == newest).collect()
}

/// How many reports of `from`'s newest video track `events` hold.
pub fn video_reports(events: &[Value], from: &str) -> usize {
    newest_video(events, from).len()
}

/// Frames decoded per second of the video `who` shows from `from` (its newest track), over the
/// last `reports` reports (one a second).
pub fn fps(who: &Confab, from: &str, reports: usize) -> f64 {
    let events = who.events();
    let decoded: Vec<u64> = (newest_video(events, from).into_iter())
        .map(|e| e["frames_decoded"].as_u64().unwrap())
        .collect();
    assert!(
        decoded.len() > reports,
        "{}: too few reports of {from}'s video: {:#?}",
        who.name,
        events.iter().filter(|e| is(e, "track")).collect::<Vec<_>>()
    );
    let last = &decoded[decoded.len() - reports - 1..];
    (last[reports] - last[0]) as f64 / reports as f64
}

/// Chat messages `who` reported, by text: each must be there once.
pub fn chat_counts(who: &Confab) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in who.events().iter().filter(|e| is(e, "chat")) {
        *counts.entry(e["text"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

/// The notes as `who` last reported them.
pub fn notes(who: &Confab) -> String {
    let last = who.events().iter().rev().find(|e| is(e, "notes"));
    last.map(|e| e["text"].as_str().unwrap().to_owned()).unwrap_or_default()
}

/// `who`'s signaling id now (it changes when it rejoins).
pub fn current_id(who: &Confab) -> String {
    let last = who.events().iter().rev().find(|e| is(e, "joined"));
    last.map(|e| e["you"].as_str().unwrap().to_owned()).unwrap_or_default()
}

/// Waits `seconds` of meeting time while the peers' reports come in.
pub async fn run_for(peers: &mut [Confab], seconds: f64) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        for peer in peers.iter_mut() {
            peer.drain();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What runs under a meeting: coturn, the signaling service, their files.
pub struct Relay {
    _coturn: Process,
    signaling: Option<Process>,
    port: u16,
    turn: Vec<String>,
    secret: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// The signaling service goes away (SIGKILL: no goodbye to anyone).
    pub fn stop_signaling(&mut self) {
        self.signaling = None;
    }

    /// The signaling service comes back on the same port, knowing nobody.
    pub fn start_signaling(&mut self) {
        self.signaling = Some(start_signaling(self.port, &self.turn, &self.secret));
    }
}

pub struct Meeting {
    pub proxy: ImpairedUdp,
    pub peers: Vec<Confab>,
    /// Ada's first signaling id.
    pub ada: String,
    pub relay: Relay,
}

impl Meeting {
    /// Starts the relay and the three peers, and waits until each shows Ada's video.
    pub async fn start() -> Self {
        let IpAddr::V4(own) = confab_core::peer::own_address().unwrap() else { panic!("IPv4") };
        let dir = tempfile::tempdir().unwrap();
        let secret = "impaired-secret".to_owned();
        let turn_port = free_port(own);
        let coturn = start_coturn(&[own], own, turn_port, &secret, dir.path());
        let proxy = ImpairedUdp::start(own.into(), SocketAddr::from((own, turn_port)), 7).await;
        let port = free_tcp_port(Ipv4Addr::UNSPECIFIED);
        let turn = vec![format!("turn:{}?transport=udp", proxy.addr)];
        let signaling = start_signaling(port, &turn, &secret);
        let link = format!(
            "http://127.0.0.1:{port}/m/{}#k={}",
            RoomId::random().as_str(),
            MeetingKey::random().as_str()
        );
        let media = ["--relay-only", "--synthetic-audio", "--receive-media"];
        let mut peers: Vec<Confab> = ["Ada", "Bo", "Cy"]
            .iter()
            .map(|name| {
                let mut args = participant_args(&["join", &link], name, &dir.path().join(name));
                args.extend(media.map(String::from));
                if *name == "Ada" {
                    // What she shares: 1280×720 at 30 fps (the synthetic screen twin runs at 15).
                    args.push("--synthetic-camera=1280x720".into());
                }
                Confab::spawn(name, &args)
            })
            .collect();
        let joined = peers[0].wait_for("Ada joined", |e| is(e, "joined")).await;
        let ada = joined["you"].as_str().unwrap().to_owned();
        for peer in peers.iter_mut() {
            peer.wait_for_n("both others connected", 2, |e| is(e, "peer_connected")).await;
        }
        for peer in peers[1..].iter_mut() {
            peer.wait_for("Ada's video", |e| {
                is(e, "track")
                    && e["id"] == ada.as_str()
                    && e["audio"] == false
                    && e["frames_decoded"].as_u64() > Some(30)
            })
            .await;
        }
        let relay =
            Relay { _coturn: coturn, signaling: Some(signaling), port, turn, secret, _dir: dir };
        Meeting { proxy, peers, ada, relay }
    }
}

/// Whether `e` reports a peer's connection as back.
pub fn is_back(e: &Value) -> bool {
    is(e, "peer_connection") && e["up"] == true
}
