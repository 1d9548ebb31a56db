//! Several `confab-signaling` instances sharing rooms through a real `redis-server`: peers on
//! different instances meet, `room_full` holds across them, a killed instance's peers are
//! announced as gone, and Redis stopped and restarted mid-meeting is survived.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use confab_proto::{ErrorCode, PeerId, RoomId, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Instances in these tests take each other for dead after this long without a beat.
const EXPIRY_SECS: u64 = 2;

/// One instance sharing rooms through `redis`.
fn instance(redis: &Redis, extra: &[&str]) -> Program {
    let (url, expiry) = (redis.url(), EXPIRY_SECS.to_string());
    let mut args = vec!["--redis-url", &url, "--redis-expiry", &expiry];
    args.extend_from_slice(extra);
    Program::start(&args, &[])
}

/// Waits until `program` says it is connected to Redis (`up`) or not.
async fn until_redis(program: &Program, up: bool) {
    let want = if up { "confab_redis_up 1" } else { "confab_redis_up 0" };
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = http(program.addr(), "GET", "/metrics", &[], b"").await.body_text();
        if metrics.lines().any(|line| line == want) {
            return;
        }
        assert!(Instant::now() < deadline, "no '{want}' in {WAIT:?}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health(program: &Program) -> String {
    http(program.addr(), "GET", "/healthz", &[], b"").await.body_text()
}

/// The next message must announce `id` as joined.
async fn expect_joined(client: &mut Client, id: &PeerId) {
    match client.recv().await {
        ServerMessage::PeerJoined { peer } if peer.id == *id => {}
        other => panic!("{}: expected {id} to join, got {other:?}", client.name),
    }
}

async fn expect_left(client: &mut Client, id: &PeerId) {
    match client.recv().await {
        ServerMessage::PeerLeft { id: gone } if gone == *id => {}
        other => panic!("{}: expected {id} to leave, got {other:?}", client.name),
    }
}

#[tokio::test]
async fn peers_of_one_room_on_different_instances_meet_and_signal_each_other() {
    let redis = Redis::start().await;
    let (one, two, three) = (instance(&redis, &[]), instance(&redis, &[]), instance(&redis, &[]));
    for program in [&one, &two, &three] {
        until_redis(program, true).await;
        assert_eq!(health(program).await, "ok\n");
    }
    let room = RoomId::random();
    let mut ada = one.connect("ada").await;
    let ada_id = ada.join(&room).await.you;
    let mut bo = two.connect("bo").await;
    let bo_welcome = bo.join(&room).await;
    let names: Vec<_> =
        bo_welcome.peers.iter().map(|p| (p.id.clone(), p.name.as_str().to_owned())).collect();
    assert_eq!(
        names,
        vec![(ada_id.clone(), "ada".to_owned())],
        "bo sees ada, on the other instance"
    );
    expect_joined(&mut ada, &bo_welcome.you).await;

    // The newcomer offers; candidates follow in order; the answer comes back.
    bo.signal(&ada_id, "offer-1").await;
    bo.signal(&ada_id, "candidate-2").await;
    ada.expect_signal(&bo_welcome.you, "offer-1").await;
    ada.expect_signal(&bo_welcome.you, "candidate-2").await;
    ada.signal(&bo_welcome.you, "answer-3").await;
    bo.expect_signal(&ada_id, "answer-3").await;

    // A third instance: its joiner is welcomed with both, and both hear of it.
    let mut cy = three.connect("cy").await;
    let cy_welcome = cy.join(&room).await;
    let mut seen: Vec<PeerId> = cy_welcome.peers.iter().map(|p| p.id.clone()).collect();
    seen.sort();
    let mut want = vec![ada_id.clone(), bo_welcome.you.clone()];
    want.sort();
    assert_eq!(seen, want);
    expect_joined(&mut ada, &cy_welcome.you).await;
    expect_joined(&mut bo, &cy_welcome.you).await;

    // A peer of another room, on another instance, is as unknown as a peer that never was.
    let (mut stranger, _) = {
        let mut s = three.connect("stranger").await;
        let w = s.join(&RoomId::random()).await;
        (s, w)
    };
    stranger.signal(&ada_id, "intrusion").await;
    stranger.expect_error(ErrorCode::UnknownPeer).await;

    // Leaving is heard on every instance.
    drop(bo);
    expect_left(&mut ada, &bo_welcome.you).await;
    expect_left(&mut cy, &bo_welcome.you).await;
}

#[tokio::test]
async fn room_full_holds_when_joins_race_on_different_instances() {
    let redis = Redis::start().await;
    let instances: Vec<Program> = (0..3).map(|_| instance(&redis, &["--max-peers", "3"])).collect();
    for program in &instances {
        until_redis(program, true).await;
    }
    for round in 0..5 {
        let room = RoomId::random();
        // Nine joins at once, three on each instance, for three seats.
        let mut clients = Vec::new();
        for i in 0..9 {
            let mut c = instances[i % 3].connect(&format!("r{round}-{i}")).await;
            c.send_json(join_msg(&room, &c.name.clone())).await;
            clients.push(c);
        }
        let mut welcomed = 0;
        let mut full = 0;
        for c in &mut clients {
            match c.recv().await {
                ServerMessage::Welcome { .. } => welcomed += 1,
                ServerMessage::Error { code: ErrorCode::RoomFull, .. } => full += 1,
                other => panic!("{}: {other:?}", c.name),
            }
        }
        assert_eq!((welcomed, full), (3, 6), "round {round}");
    }
}

#[tokio::test]
async fn a_killed_instance_is_announced_as_left_and_never_comes_back_to_life() {
    let redis = Redis::start().await;
    let one = instance(&redis, &[]);
    let mut two = instance(&redis, &[]);
    until_redis(&one, true).await;
    until_redis(&two, true).await;
    let room = RoomId::random();
    let mut ada = one.connect("ada").await;
    let ada_id = ada.join(&room).await.you;
    let mut bo = two.connect("bo").await;
    let bo_id = bo.join(&room).await.you;
    expect_joined(&mut ada, &bo_id).await;

    let killed = Instant::now();
    two.kill();
    // Its beat expires after EXPIRY_SECS; one more beat of the survivor notices.
    let message = ada.recv_within(Duration::from_secs(EXPIRY_SECS * 3)).await;
    assert!(matches!(&message, ServerMessage::PeerLeft { id } if *id == bo_id), "{message:?}");
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(EXPIRY_SECS) * 2, "bo was announced gone after {took:?}");
    drop(bo);

    // The instance comes back (a new process): it speaks for nobody it had before.
    let two = instance(&redis, &[]);
    until_redis(&two, true).await;
    let mut cy = two.connect("cy").await;
    let cy_welcome = cy.join(&room).await;
    let ids: Vec<&PeerId> = cy_welcome.peers.iter().map(|p| &p.id).collect();
    assert_eq!(ids, vec![&ada_id], "only ada is left in the room");
    expect_joined(&mut ada, &cy_welcome.you).await;
}

#[tokio::test]
async fn redis_stopped_and_restarted_mid_meeting_is_survived() {
    let mut redis = Redis::start().await;
    let one = instance(&redis, &[]);
    let two = instance(&redis, &[]);
    until_redis(&one, true).await;
    until_redis(&two, true).await;
    // A meeting across the instances, and one all on instance one.
    let shared = RoomId::random();
    let mut ada = one.connect("ada").await;
    let ada_id = ada.join(&shared).await.you;
    let mut bo = two.connect("bo").await;
    let bo_id = bo.join(&shared).await.you;
    expect_joined(&mut ada, &bo_id).await;
    let mut bea = two.connect("bea").await;
    let bea_id = bea.join(&shared).await.you;
    expect_joined(&mut ada, &bea_id).await;
    expect_joined(&mut bo, &bea_id).await;
    let local = RoomId::random();
    let mut cy = one.connect("cy").await;
    let cy_id = cy.join(&local).await.you;

    redis.stop();
    until_redis(&one, false).await;
    until_redis(&two, false).await;
    assert_eq!(health(&one).await, "degraded: Redis is unreachable\n");

    // The room all on this instance goes on: a joiner is welcomed and signals pass.
    let mut dee = one.connect("dee").await;
    let dee_welcome = dee.join(&local).await;
    assert_eq!(dee_welcome.peers.len(), 1);
    expect_joined(&mut cy, &dee_welcome.you).await;
    dee.signal(&cy_id, "offer-local").await;
    cy.expect_signal(&dee_welcome.you, "offer-local").await;
    // A join into the shared room cannot be seated now: refused, to be tried again.
    let mut eve = one.connect("eve").await;
    eve.send_json(join_msg(&shared, "eve")).await;
    eve.expect_error_and_close(ErrorCode::Unavailable, CloseCode::Again).await;
    // Bea leaves while nobody can be told.
    drop(bea);
    expect_left(&mut bo, &bea_id).await;

    redis.restart().await;
    until_redis(&one, true).await;
    until_redis(&two, true).await;
    // Signals cross again, and ada hears that bea left (missed while Redis was away).
    ada.signal(&bo_id, "offer-after").await;
    bo.expect_signal(&ada_id, "offer-after").await;
    expect_left(&mut ada, &bea_id).await;
    // A newcomer finds the meeting as it is: ada and bo (seated again), not bea.
    let mut fay = two.connect("fay").await;
    let fay_welcome = fay.join(&shared).await;
    let mut ids: Vec<PeerId> = fay_welcome.peers.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    let mut want = vec![ada_id.clone(), bo_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // Nobody heard a peer twice: the next thing each hears is fay.
    expect_joined(&mut ada, &fay_welcome.you).await;
    expect_joined(&mut bo, &fay_welcome.you).await;
    assert_eq!(health(&one).await, "ok\n");
}

#[tokio::test]
async fn with_access_tokens_a_meeting_open_on_one_instance_is_open_on_all() {
    let redis = Redis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "team-token-0123456789\n").unwrap();
    let tokens = tokens.to_str().unwrap();
    let one = instance(&redis, &["--token-file", tokens]);
    let two = instance(&redis, &["--token-file", tokens]);
    until_redis(&one, true).await;
    until_redis(&two, true).await;

    // Made with the token on one instance: a guest without a token joins it on the other.
    let bearer = [("Authorization", "Bearer team-token-0123456789")];
    let made = http(one.addr(), "POST", "/api/meetings", &bearer, b"").await;
    assert_eq!(made.status, 200);
    let made: serde_json::Value = serde_json::from_slice(&made.body).unwrap();
    let room: RoomId = made["room"].as_str().unwrap().parse().unwrap();
    let mut guest = two.connect("guest").await;
    guest.join(&room).await;

    // Opened by a holder joining on one instance: a guest on the other is let in too.
    let opened = RoomId::random();
    let mut holder = one.connect("holder").await;
    let mut with_token = join_msg(&opened, "holder");
    with_token["token"] = "team-token-0123456789".into();
    holder.send_json(with_token).await;
    assert!(matches!(holder.recv().await, ServerMessage::Welcome { .. }));
    let mut second = two.connect("second").await;
    second.join(&opened).await;

    // A room nobody opened stays closed on every instance, with the words for it; a guest who
    // gave up before being seated did not open it either.
    let unopened = RoomId::random();
    for program in [&one, &two] {
        let mut stranger = program.connect("stranger").await;
        stranger.send_json(join_msg(&unopened, "stranger")).await;
        let why = stranger.expect_error(ErrorCode::BadToken).await;
        assert!(why.contains("not open"), "{why}");
    }
    let mut quitter = two.connect("quitter").await;
    quitter.send_json(join_msg(&unopened, "quitter")).await;
    drop(quitter);
    let mut stranger = two.connect("stranger").await;
    stranger.send_json(join_msg(&unopened, "stranger")).await;
    stranger.expect_error(ErrorCode::BadToken).await;
}
