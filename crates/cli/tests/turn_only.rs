//! TURN as the only way through: two peers in two network namespaces, each with a link to this
//! machine and no route to the other, meet through the signaling service and a coturn relay on
//! this machine (`use-auth-secret`, Debian's coturn), under a relay-only policy. Chat, notes,
//! video and sound flow. Then one peer's address changes under it, as on a network handover, and
//! the meeting carries on over the new one. These need root (network namespaces) and coturn:
//! without them they fail, saying so, rather than passing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::meeting::current_id;
use common::relay::{Process, free_port, free_tcp_port, start_coturn, start_signaling};
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
    /// The namespace's end of each veth.
    inner_links: [String; 2],
    /// The third number of every address here.
    tag: u32,
}

impl Namespaces {
    /// Moves namespace `i` from its address to `new` (on the same link), as a handover would.
    fn readdress(&mut self, i: usize, new: Ipv4Addr) {
        let ns = &self.names[i];
        let link = self.inner_links[i].clone();
        // Without this, removing the subnet's first address takes the second with it. (Written
        // to /proc directly: a minimal machine may have no `sysctl`.)
        let promote = format!("echo 1 > /proc/sys/net/ipv4/conf/{link}/promote_secondaries");
        let set = Command::new("ip").args(["netns", "exec", ns, "sh", "-c", &promote]).status();
        assert!(set.is_ok_and(|s| s.success()), "{promote} in {ns}");
        ip(&["-n", ns, "addr", "add", &format!("{new}/24"), "dev", &link]);
        ip(&["-n", ns, "addr", "del", &format!("{}/24", self.inside[i]), "dev", &link]);
        self.inside[i] = new;
    }

    fn new() -> Self {
        let uid = Command::new("id").arg("-u").output().expect("id");
        assert!(
            uid.stdout.starts_with(b"0\n"),
            "this test makes network namespaces, which needs root (CI runs as root)"
        );
        // Apart from other runs, and from the other test of this run.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = std::process::id() % 120 * 2 + made % 2;
        let names = [format!("cfturn{tag}a"), format!("cfturn{tag}b")];
        let (mut host, mut inside) = ([Ipv4Addr::UNSPECIFIED; 2], [Ipv4Addr::UNSPECIFIED; 2]);
        let mut inner_links = [String::new(), String::new()];
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
            inner_links[i] = inner_link;
        }
        Self { names, host, inside, inner_links, tag }
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

/// coturn and the signaling service on this machine, which each namespace reaches at this
/// machine's address on its own link, and one meeting on them. Stopped on drop.
struct Relay {
    _coturn: Process,
    _signaling: Process,
    dir: tempfile::TempDir,
    port: u16,
    room: RoomId,
    key: MeetingKey,
}

impl Relay {
    fn start(net: &Namespaces, secret: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let turn_port = free_port(Ipv4Addr::UNSPECIFIED);
        let _coturn = start_coturn(&net.host, net.host[0], turn_port, secret, dir.path());
        let turn = net.host.map(|host| format!("turn:{host}:{turn_port}?transport=udp"));
        let port = free_tcp_port(Ipv4Addr::UNSPECIFIED);
        let _signaling = start_signaling(port, &turn, secret);
        Self { _coturn, _signaling, dir, port, room: RoomId::random(), key: MeetingKey::random() }
    }

    /// The meeting's link as namespace `i` of `net` reaches it.
    fn link(&self, net: &Namespaces, i: usize) -> String {
        let (host, port) = (net.host[i], self.port);
        format!("http://{host}:{port}/m/{}#k={}", self.room.as_str(), self.key.as_str())
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
    let relay = Relay::start(&net, "turn-test-secret");
    let media = ["--relay-only", "--synthetic-camera", "--synthetic-audio", "--receive-media"];
    let peer = |i: usize, name: &str| {
        let mut args =
            participant_args(&["join", &relay.link(&net, i)], name, &relay.dir.path().join(name));
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

/// Ada's address changes mid-meeting (a handover: the old address is gone, a new one is there).
/// Her engine sees it, restarts ICE on the new address with a new relay, rejoins signaling from
/// it, and the meeting goes on: Bo shows her reconnecting, then back, the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_address_changes_comes_back_on_its_new_one() {
    let mut net = Namespaces::new();
    let relay = Relay::start(&net, "handover-secret");
    // No address given: each binds to whatever its namespace has, as it changes.
    let peer = |i: usize, name: &str| {
        let mut args =
            participant_args(&["join", &relay.link(&net, i)], name, &relay.dir.path().join(name));
        args.extend(["--relay-only", "--synthetic-camera", "--receive-media"].map(String::from));
        Confab::spawn_in_namespace(&net.names[i], name, &args)
    };
    let mut ada = peer(0, "Ada");
    let mut bo = peer(1, "Bo");
    ada.wait_for("Bo connected", |e| is(e, "peer_connected")).await;
    bo.wait_for("Ada connected", |e| is(e, "peer_connected")).await;
    bo.wait_for("Ada's video", |e| playing(e, false, 30)).await;
    let before = bo.events().len();

    let new_address = format!("198.18.{}.3", net.tag).parse().unwrap();
    net.readdress(0, new_address);
    let moved = std::time::Instant::now();
    ada.send(json!({"cmd": "say", "text": "from my new address"})).await;

    bo.wait_for("Ada reconnecting", |e| is(e, "peer_connection") && e["up"] == false).await;
    bo.wait_for("Ada back", |e| is(e, "peer_connection") && e["up"] == true).await;
    println!("Ada was back {:?} after her address changed", moved.elapsed());
    bo.wait_for("Ada's chat", |e| is(e, "chat") && e["text"] == "from my new address").await;
    bo.send(json!({"cmd": "notes_append", "text": "seen at your new address"})).await;
    ada.wait_notes("Bo's notes", |t| t.contains("seen at your new address")).await;
    // The video comes through the new relay: more frames than before the move.
    let decoded = |events: &[Value]| {
        let last = events.iter().rev().find(|e| playing(e, false, 0));
        last.map_or(0, |e| e["frames_decoded"].as_u64().unwrap())
    };
    let at_move = decoded(&bo.events()[..before]);
    bo.wait_for("Ada's video again", |e| playing(e, false, at_move + 30)).await;
    let churn: Vec<Value> = (bo.events()[before..].iter())
        .filter(|e| is(e, "peer_failed") || is(e, "peer_connected"))
        .cloned()
        .collect();
    assert!(churn.is_empty(), "the same connection came back, not a new one: {churn:?}");

    // A track Ada starts now is announced under the id she rejoined with.
    let (ada_first, ada_now) = (first_id(&ada), current_id(&ada));
    assert_ne!(ada_first, ada_now, "Ada rejoined signaling from her new address");
    ada.send(json!({"cmd": "set_media", "mic": false, "cam": false, "screen": true})).await;
    bo.wait_for("Ada's screen, under her new id", |e| {
        is(e, "track") && e["id"] == ada_now.as_str() && playing(e, false, 1)
    })
    .await;
}

/// `who`'s first signaling id.
fn first_id(who: &Confab) -> String {
    let first = who.events().iter().find(|e| is(e, "joined")).unwrap();
    first["you"].as_str().unwrap().to_owned()
}
