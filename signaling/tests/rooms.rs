//! Rooms, relay, departures and TURN credentials, with real WebSocket clients against a real
//! server on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use confab_proto::{ErrorCode, PeerId, RoomId, ServerMessage};
use confab_signaling::{Config, TurnConfig};
use hmac::Mac as _;
use rand::{Rng, SeedableRng};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn peers_join_and_relay_both_ways() {
    let server = TestServer::start(Config {
        stun_urls: vec!["stun:stun.test:3478".into()],
        ..Config::default()
    })
    .await;
    let room = RoomId::random();
    let (mut ada, wa) = server.join(&room, "Ada").await;
    assert!(wa.peers.is_empty());
    let (mut bo, wb) = server.join(&room, "Bo").await;
    assert_eq!(wb.peers.len(), 1);
    assert_eq!((wb.peers[0].id.clone(), wb.peers[0].name.as_str()), (wa.you.clone(), "Ada"));
    let ServerMessage::Welcome { ice_servers, limits, .. } = &wb.raw else { unreachable!() };
    assert_eq!(ice_servers[0].urls, vec!["stun:stun.test:3478".to_string()]);
    assert_eq!((limits.max_message_bytes, limits.max_peers), (65536, 8));
    match ada.recv().await {
        ServerMessage::PeerJoined { peer } => {
            assert_eq!((peer.id, peer.name.as_str()), (wb.you.clone(), "Bo"))
        }
        other => panic!("{other:?}"),
    }
    // The newcomer offers; the answer and candidates flow back.
    let offer = serde_json::json!({"type": "signal", "to": wa.you, "data": {"sdp": {"type": "offer", "sdp": "v=0\r\n"}}});
    bo.send_json(offer).await;
    match ada.recv().await {
        ServerMessage::Signal { from, data } => {
            assert_eq!(from, wb.you);
            assert_eq!(
                serde_json::to_value(&data).unwrap(),
                serde_json::json!({"sdp": {"type": "offer", "sdp": "v=0\r\n"}})
            );
        }
        other => panic!("{other:?}"),
    }
    ada.signal(&wb.you, "answer-cand").await;
    bo.expect_signal(&wa.you, "answer-cand").await;
    let end = serde_json::json!({"type": "signal", "to": wb.you, "data": {"candidate": null}});
    ada.send_json(end).await;
    match bo.recv().await {
        ServerMessage::Signal { data, .. } => {
            assert!(matches!(data.data(), confab_proto::SignalData::Candidate { candidate: None }))
        }
        other => panic!("{other:?}"),
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("confab_messages_relayed_total 3"), "{metrics}");
    assert!(metrics.contains("confab_rooms 1"), "{metrics}");
    assert!(metrics.contains("confab_peers 2"), "{metrics}");
}

#[tokio::test]
async fn peer_left_on_close_and_on_leave() {
    let server = TestServer::start(Config::default()).await;
    let room = RoomId::random();
    let (mut a, wa) = server.join(&room, "a").await;
    let (b, wb) = server.join(&room, "b").await;
    let (mut c, _) = server.join(&room, "c").await;
    for _ in 0..2 {
        assert!(matches!(a.recv().await, ServerMessage::PeerJoined { .. }));
    }
    // b's socket just drops.
    drop(b);
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { id: wb.you.clone() });
    c.recv().await; // c saw nothing but b's departure
    // a leaves on purpose and gets a normal close.
    a.send_json(serde_json::json!({"type": "leave"})).await;
    a.expect_close(CloseCode::Normal).await;
    assert_eq!(c.recv().await, ServerMessage::PeerLeft { id: wa.you });
}

#[tokio::test]
async fn silent_peer_is_dropped_after_the_idle_timeout() {
    let server = TestServer::start(Config {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(1200),
        ..Config::default()
    })
    .await;
    let room = RoomId::random();
    let (mut watcher, _) = server.join(&room, "watcher").await;
    let (silent, ws) = server.join(&room, "silent").await;
    assert!(matches!(watcher.recv().await, ServerMessage::PeerJoined { .. }));
    // `silent` is never polled again, so it never answers a ping. The watcher is polled (inside
    // recv) and answers them, so it stays.
    let started = std::time::Instant::now();
    assert_eq!(watcher.recv().await, ServerMessage::PeerLeft { id: ws.you });
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "dropped too early: {:?}",
        started.elapsed()
    );
    drop(silent);
    // The watcher, answering pings, outlived the silent peer's idle period; the server still
    // serves a new room.
    let mut healthy = server.healthy_pair().await;
    healthy.assert_relays().await;
}

/// The same with the default timers (ping every 15 s, silence for 45 s), in paused time: the test
/// takes no real time, and the drop lands exactly when the silent peer's 45 s run out.
#[tokio::test(start_paused = true)]
async fn with_default_timers_a_silent_peer_goes_after_45_seconds_in_paused_time() {
    let server = TestServer::start(Config::default()).await;
    let room = RoomId::random();
    let (mut watcher, _) = server.join(&room, "watcher").await;
    let (silent, ws) = server.join(&room, "silent").await;
    let joined = tokio::time::Instant::now();
    assert!(matches!(watcher.recv().await, ServerMessage::PeerJoined { .. }));
    // The watcher answers three pings on the way (at 15, 30 and 45 s) and stays.
    let left = watcher.recv_within(Duration::from_secs(120)).await;
    assert_eq!(left, ServerMessage::PeerLeft { id: ws.you });
    let waited = joined.elapsed();
    assert!(
        (Duration::from_secs(45)..Duration::from_secs(46)).contains(&waited),
        "dropped after {waited:?}"
    );
    drop(silent);
    // The watcher waits in a task of its own (answering pings) through 100 more seconds; then a
    // newcomer finds it still in the room.
    let waiting = tokio::spawn(async move {
        let joined = watcher.recv_within(Duration::from_secs(300)).await;
        (watcher, joined)
    });
    tokio::time::sleep(Duration::from_secs(100)).await;
    let (mut late, wl) = server.join(&room, "late").await;
    assert_eq!(wl.peers.len(), 1, "the watcher is still there");
    let (mut watcher, joined) = waiting.await.unwrap();
    assert!(matches!(joined, ServerMessage::PeerJoined { .. }), "{joined:?}");
    late.signal(&wl.peers[0].id, "still-here").await;
    watcher.expect_signal(&wl.you, "still-here").await;
}

#[tokio::test]
async fn full_room_refuses_and_frees_a_seat_on_leave() {
    let server = TestServer::start(Config { max_peers: 2, ..Config::default() }).await;
    let room = RoomId::random();
    let (mut a, _) = server.join(&room, "a").await;
    let (b, _) = server.join(&room, "b").await;
    let mut c = server.connect("c").await;
    c.send_json(join_msg(&room, "c")).await;
    c.expect_error_and_close(ErrorCode::RoomFull, CloseCode::Policy).await;
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined { .. }));
    drop(b);
    assert!(matches!(a.recv().await, ServerMessage::PeerLeft { .. }));
    let (_d, wd) = server.join(&room, "d").await;
    assert_eq!(wd.peers.len(), 1);
}

/// Clients in several rooms send signals to ids they invent or have seen in other rooms; not one
/// message may ever reach a peer of another room. Seeded, so a failure can be replayed.
#[tokio::test]
async fn rooms_are_isolated_whatever_ids_clients_invent() {
    let seed: u64 =
        std::env::var("CONFAB_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let server = TestServer::start(Config { messages_per_second: 0, ..Config::default() }).await;
    let rooms: Vec<RoomId> = (0..3).map(|_| RoomId::random()).collect();
    let mut clients = Vec::new();
    let mut room_of: HashMap<PeerId, usize> = HashMap::new();
    for i in 0..9 {
        let r = i % 3;
        let (c, w) = server.join(&rooms[r], &format!("p{i}")).await;
        room_of.insert(w.you.clone(), r);
        clients.push((c, w.you, r));
    }
    let all_ids: Vec<PeerId> = room_of.keys().cloned().collect();
    // Each client sends 30 signals to a mix of everyone's ids and invented ones; the harness
    // reads every client's stream afterwards.
    let mut expected: HashMap<PeerId, usize> = HashMap::new();
    let mut refusals: HashMap<PeerId, usize> = HashMap::new();
    for (c, me, r) in clients.iter_mut() {
        for n in 0..30 {
            let to = if rng.random_bool(0.2) {
                PeerId::random()
            } else {
                all_ids[rng.random_range(0..all_ids.len())].clone()
            };
            c.signal(&to, &format!("from-{me}-{n}")).await;
            if room_of.get(&to) == Some(r) && &to != me {
                *expected.entry(to).or_default() += 1;
            } else {
                *refusals.entry(me.clone()).or_default() += 1;
            }
        }
    }
    let joined_after: Vec<usize> = (0..clients.len())
        .map(|i| (i + 1..clients.len()).filter(|j| j % 3 == i % 3).count())
        .collect();
    for (i, (c, me, r)) in clients.iter_mut().enumerate() {
        let mut signals = 0;
        let mut errors = 0;
        let mut joins = 0;
        let want_signals = expected.get(me).copied().unwrap_or(0);
        let want_errors = refusals.get(me).copied().unwrap_or(0);
        // Peers that joined after `me` were announced to it.
        let want_joins = joined_after[i];
        while signals < want_signals || errors < want_errors || joins < want_joins {
            match c.recv().await {
                ServerMessage::Signal { from, data } => {
                    assert_eq!(room_of[&from], *r, "a signal crossed rooms");
                    let text = serde_json::to_string(&data).unwrap();
                    assert!(text.contains(&format!("from-{from}-")), "{text}");
                    signals += 1;
                }
                ServerMessage::Error { code, .. } => {
                    assert_eq!(code, ErrorCode::UnknownPeer);
                    errors += 1;
                }
                ServerMessage::PeerJoined { peer } => {
                    assert_eq!(room_of[&peer.id], *r, "a join was announced across rooms");
                    joins += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((signals, errors), (want_signals, want_errors), "seed {seed}");
    }
    // Everything sent above was delivered before these markers: if anything had leaked into
    // another room, it would stand in some client's stream ahead of its marker.
    let count = clients.len();
    for i in 0..count {
        let partner = (i + 3) % count; // same room (rooms are i % 3)
        let (from, to) = (clients[i].1.clone(), clients[partner].1.clone());
        clients[i].0.signal(&to, "marker").await;
        clients[partner].0.expect_signal(&from, "marker").await;
    }
}

#[tokio::test]
async fn turn_credentials_follow_coturns_shared_secret_scheme() {
    let secret = "turn-shared-secret";
    let server = TestServer::start(Config {
        turn: Some(TurnConfig {
            urls: vec!["turn:turn.test:3478?transport=udp".into(), "turns:turn.test:5349".into()],
            secret: secret.into(),
            ttl: Duration::from_secs(6 * 3600),
        }),
        ..Config::default()
    })
    .await;
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (_c, w) = server.join(&RoomId::random(), "t").await;
    let ServerMessage::Welcome { ice_servers, .. } = w.raw else { unreachable!() };
    let turn = ice_servers.iter().find(|s| s.urls[0].starts_with("turn:")).expect("a TURN entry");
    assert_eq!(turn.urls.len(), 2);
    let username = turn.username.clone().unwrap();
    let (expiry, peer) = username.split_once(':').unwrap();
    assert_eq!(peer, w.you.as_str());
    let expiry: u64 = expiry.parse().unwrap();
    assert!((before + 6 * 3600..=before + 6 * 3600 + 5).contains(&expiry), "expiry {expiry}");
    // coturn computes base64(HMAC-SHA1(static-auth-secret, username)) and compares.
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn.credential.as_deref(), Some(want.as_str()));
}

#[tokio::test]
async fn shutdown_tells_every_socket_and_returns() {
    let server = TestServer::start(Config::default()).await;
    let room = RoomId::random();
    let (mut a, _) = server.join(&room, "a").await;
    let mut idle = server.connect("not-joined").await;
    server.stop().await;
    a.expect_error_and_close(ErrorCode::ShuttingDown, CloseCode::Away).await;
    idle.expect_error_and_close(ErrorCode::ShuttingDown, CloseCode::Away).await;
}
