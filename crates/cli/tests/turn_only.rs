//! TURN as the only way through: two peers in two network namespaces, each with a link to this
//! machine and no route to the other, meet through the signaling service and a coturn relay on
//! this machine (`use-auth-secret`, Debian's coturn), under a relay-only policy. Chat, notes,
//! video and sound flow. It needs root (network namespaces) and coturn: without them it fails,
//! saying so, rather than passing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::relay::{free_port, start_coturn, start_signaling};
use common::{Confab, is, participant_args};
use confab_proto::{MeetingKey, RoomId};
use serde_json::{Value, json};

/// Runs `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("`ip` (iproute2) is needed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, each joined to this machine by a veth pair, in the range set aside for
/// network tests (RFC 2544): this machine is `198.18.N.1` towards the first (`198.18.N.2`) and
/// `198.19.N.1` towards the second (`198.19.N.2`). Neither has a route beyond its own link.
/// Removed on drop.
struct Namespaces {
    names: [String; 2],
    /// This machine's address on each link, and the namespace's.
    host: [Ipv4Addr; 2],
    inside: [Ipv4Addr; 2],
}

impl Namespaces {
    fn new() -> Self {
        let uid = Command::new("id").arg("-u").output().expect("id");
        assert!(
            uid.stdout.starts_with(b"0\n"),
            "this test makes network namespaces, which needs root (CI runs as root)"
        );
        let tag = std::process::id() % 250;
        let names = [format!("cfturn{tag}a"), format!("cfturn{tag}b")];
        let (mut host, mut inside) = ([Ipv4Addr::UNSPECIFIED; 2], [Ipv4Addr::UNSPECIFIED; 2]);
        for (i, ns) in names.iter().enumerate() {
            let (outer_link, inner_link) = (format!("cft{tag}h{i}"), format!("cft{tag}n{i}"));
            let subnet = 18 + i;
            ip(&["netns", "add", ns]);
            ip(&["link", "add", &outer_link, "type", "veth", "peer", "name", &inner_link]);
            ip(&["link", "set", &inner_link, "netns", ns]);
            ip(&["addr", "add", &format!("198.{subnet}.{tag}.1/24"), "dev", &outer_link]);
            ip(&["link", "set", &outer_link, "up"]);
            ip(&["-n", ns, "addr", "add", &format!("198.{subnet}.{tag}.2/24"), "dev", &inner_link]);
            ip(&["-n", ns, "link", "set", &inner_link, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            host[i] = format!("198.{subnet}.{tag}.1").parse().unwrap();
            inside[i] = format!("198.{subnet}.{tag}.2").parse().unwrap();
        }
        Self { names, host, inside }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth, and so the pair.
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A peer's report of a track it receives, once it is playing as asked.
fn playing(e: &Value, audio: bool, at_least: u64) -> bool {
    is(e, "track")
        && e["ended"] != true
        && e["audio"] == audio
        && e["frames_decoded"].as_u64().unwrap_or(0) >= at_least
        && (!audio || e["audio_level"].as_f64().unwrap_or(0.0) > 0.001)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_whose_only_way_to_each_other_is_coturn_talk_share_video_and_sound() {
    let net = Namespaces::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = "turn-test-secret";
    let turn_port = free_port(Ipv4Addr::UNSPECIFIED);
    let _coturn = start_coturn(&net.host, net.host[0], turn_port, secret, dir.path());
    let turn = net.host.map(|host| format!("turn:{host}:{turn_port}?transport=udp"));
    let port = free_port(Ipv4Addr::UNSPECIFIED);
    let _signaling = start_signaling(port, &turn, secret);

    // One meeting, reached by each namespace at this machine's address on its own link.
    let (room, key) = (RoomId::random(), MeetingKey::random());
    let link =
        |host: Ipv4Addr| format!("http://{host}:{port}/m/{}#k={}", room.as_str(), key.as_str());
    let media = ["--relay-only", "--synthetic-camera", "--synthetic-audio", "--receive-media"];
    let peer = |i: usize, name: &str| {
        let mut args =
            participant_args(&["join", &link(net.host[i])], name, &dir.path().join(name));
        args.extend(media.map(String::from));
        // No default route in there to find it by.
        args.extend(["--ice-address".into(), net.inside[i].to_string()]);
        Confab::spawn_in_namespace(&net.names[i], name, &args)
    };
    let mut ada = peer(0, "Ada");
    let mut bo = peer(1, "Bo");

    // Only the relay connects them: chat both ways, then the notes.
    ada.wait_for("Bo connected", |e| is(e, "peer_connected")).await;
    bo.wait_for("Ada connected", |e| is(e, "peer_connected")).await;
    ada.send(json!({"cmd": "say", "text": "through the relay"})).await;
    bo.wait_for("Ada's chat", |e| is(e, "chat") && e["text"] == "through the relay").await;
    bo.send(json!({"cmd": "notes_append", "text": "relayed notes"})).await;
    ada.wait_notes("Bo's notes", |t| t.contains("relayed notes")).await;

    // Each decodes the other's camera and hears the other's tone.
    for (who, peer) in [("Ada", &mut ada), ("Bo", &mut bo)] {
        peer.wait_for(&format!("video at {who}"), |e| playing(e, false, 30)).await;
        peer.wait_for(&format!("sound at {who}"), |e| playing(e, true, 50)).await;
    }
}
