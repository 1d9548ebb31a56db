//! A meeting through an impaired network: three CLI peers, relay-only, so every packet between
//! them passes the userspace impairment proxy in front of coturn (`common::impair`). At 10% loss
//! and 100 ms delay chat arrives exactly once, 1280×720 video at 30 fps keeps at least 15, sound
//! goes on, and once the network heals the notes converge within 2 s. Under a 500 kbit/s cap the
//! sender's bitrate comes down and the video goes on.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::impair::Impairment;
use common::is;
use common::meeting::{Meeting, chat_counts, fps, is_back, notes, run_for, video_reports};
use serde_json::{Value, json};

/// One meeting at a time: two would share two cores, and each measures its frame rate.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn meeting() -> (tokio::sync::MutexGuard<'static, ()>, Meeting) {
    let alone = ONE_AT_A_TIME.lock().await;
    (alone, Meeting::start().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_at_ten_percent_loss_and_100_ms_delay_keeps_going() {
    let (_alone, Meeting { proxy, mut peers, ada, relay: _relay }) = meeting().await;
    // Six reports (one a second) of her video at each, for a rate over five seconds.
    for peer in peers[1..].iter_mut() {
        peer.wait_until("six reports of Ada's video", |events| video_reports(events, &ada) >= 6)
            .await;
    }
    for peer in &peers[1..] {
        println!("{} shows Ada's video at {:.1} fps before", peer.name, fps(peer, &ada, 5));
    }

    // The network goes bad: every packet has a 10% chance of loss and takes 100 ms more.
    proxy.set(Impairment {
        loss: 0.10,
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(10),
        ..Impairment::default()
    });
    for (i, peer) in peers.iter_mut().enumerate() {
        for n in 0..10 {
            peer.send(json!({"cmd": "say", "text": format!("{i}:{n}")})).await;
            peer.send(json!({"cmd": "notes_append", "text": format!("<{i}.{n}>")})).await;
        }
    }
    run_for(&mut peers, 8.0).await;
    for peer in &peers[1..] {
        let shown = fps(peer, &ada, 5);
        println!("{} shows Ada's video at {shown:.1} fps at 10% loss", peer.name);
        assert!(shown >= 15.0, "{} shows Ada's video at {shown:.1} fps at 10% loss", peer.name);
        let heard = peer
            .events()
            .iter()
            .rev()
            .find(|e| is(e, "track") && e["audio"] == true && e["id"] == ada.as_str());
        let level = heard.and_then(|e| e["audio_level"].as_f64()).unwrap_or(0.0);
        assert!(level > 0.001, "{} still hears Ada at 10% loss (level {level})", peer.name);
    }

    // Healed: the notes are the same everywhere within 2 s, every chat message there once.
    proxy.set(Impairment::default());
    let healed = Instant::now();
    let everything =
        |text: &str| (0..3).all(|i| (0..10).all(|n| text.contains(&format!("<{i}.{n}>"))));
    for peer in peers.iter_mut() {
        peer.wait_notes("every edit", everything).await;
    }
    let converged = healed.elapsed();
    let texts: Vec<String> = peers.iter().map(notes).collect();
    assert!(texts.iter().all(|t| *t == texts[0]), "the notes differ: {texts:?}");
    println!("the notes converged {converged:?} after the network healed");
    assert!(converged <= Duration::from_secs(2), "converged {converged:?} after healing");
    for peer in peers.iter_mut() {
        peer.wait_until("all 30 messages", |events: &[Value]| {
            events.iter().filter(|e| is(e, "chat")).count() >= 30
        })
        .await;
        let counts = chat_counts(peer);
        assert_eq!(counts.len(), 30, "{}: every message", peer.name);
        assert!(counts.values().all(|&n| n == 1), "{}: each once", peer.name);
    }

    let (forwarded, dropped) = proxy.counts();
    println!("impaired proxy: {forwarded} datagrams forwarded, {dropped} dropped");
}

/// The senders come down from what they really send (an easy picture sends far below its aim),
/// and the camera's rate control follows a lowered aim within a second, coding the picture
/// smaller when it must: so the video goes on behind the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_500_kbit_link_the_senders_come_down_and_video_goes_on() {
    let (_alone, Meeting { proxy, mut peers, ada, relay: _relay }) = meeting().await;
    // A 500 kbit/s link that every peer's traffic shares: they send more than that, and must
    // come down to it; Ada's video goes on meanwhile.
    let offered_kbps =
        |from: u64, to: u64, seconds: u64| (to - from) as f64 * 8.0 / 1000.0 / seconds as f64;
    let start = proxy.offered();
    run_for(&mut peers, 3.0).await;
    let uncapped = offered_kbps(start, proxy.offered(), 3);
    proxy.set(Impairment { bits_per_second: Some(500_000), ..Impairment::default() });
    run_for(&mut peers, 10.0).await;
    let settled = proxy.offered();
    run_for(&mut peers, 5.0).await;
    let capped = offered_kbps(settled, proxy.offered(), 5);
    println!(
        "the peers send {uncapped:.0} kbit/s together, {capped:.0} kbit/s behind a 500 kbit/s link"
    );
    assert!(
        uncapped > 700.0,
        "the test needs more traffic than the link carries ({uncapped:.0} kbit/s)"
    );
    for peer in &peers[1..] {
        let shown = fps(peer, &ada, 5);
        println!("{} shows Ada's video at {shown:.1} fps behind the link", peer.name);
        assert!(shown >= 5.0, "{} shows Ada's video at {shown:.1} fps behind the link", peer.name);
    }
    assert!(capped < 650.0, "the senders did not come down: {capped:.0} kbit/s behind 500");
}

/// The NAT in front of everyone forgets its mappings (a router reboots, a phone changes
/// network): each peer now reaches the relay from a new address, so its TURN allocation, and
/// with it every path, is gone for good. ICE restarts gather new relays, and the meeting comes
/// back by itself, the same people in it, with nothing lost on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_path_is_lost_ice_restarts_bring_the_meeting_back() {
    let (_alone, Meeting { proxy, mut peers, ada, relay: _relay }) = meeting().await;
    run_for(&mut peers, 2.0).await;
    let before: Vec<usize> = peers.iter().map(|p| p.events().len()).collect();
    proxy.rebind();
    let lost = Instant::now();
    // Sent while the paths are gone: it must arrive once they are back, and only once.
    peers[1].send(json!({"cmd": "say", "text": "said while the paths were gone"})).await;
    peers[2].send(json!({"cmd": "notes_append", "text": "<written meanwhile>"})).await;

    // Each peer shows the other two as reconnecting, then as back.
    let mut back_after = Vec::new();
    for peer in peers.iter_mut() {
        peer.wait_for_n("both others reconnecting", 2, |e| {
            is(e, "peer_connection") && e["up"] == false
        })
        .await;
        peer.wait_for_n("both others back", 2, is_back).await;
        back_after.push(lost.elapsed());
    }
    println!("back after {back_after:?} (ICE gives a path up as disconnected after 5 s)");
    for peer in peers.iter_mut() {
        peer.wait_notes("the edit made meanwhile", |t| t.contains("<written meanwhile>")).await;
    }
    for peer in peers.iter_mut() {
        peer.wait_for("the message said meanwhile", |e| {
            is(e, "chat") && e["text"] == "said while the paths were gone"
        })
        .await;
    }
    run_for(&mut peers, 3.0).await;
    for (peer, before) in peers.iter().zip(&before) {
        let after = &peer.events()[*before..];
        let churn: Vec<&Value> = after
            .iter()
            .filter(|e| ["peer_failed", "peer_left", "peer_connected"].iter().any(|k| is(e, k)))
            .collect();
        assert!(
            churn.is_empty(),
            "{}: the same connections came back, not new ones: {churn:?}",
            peer.name
        );
        let said = after.iter().filter(|e| is(e, "chat")).count();
        assert_eq!(said, 1, "{}: the message once", peer.name);
    }
    // Ada's video plays again.
    for peer in &peers[1..] {
        let shown = fps(peer, &ada, 2);
        assert!(
            shown >= 15.0,
            "{} shows Ada's video at {shown:.1} fps after the restart",
            peer.name
        );
    }
}
