//! The bad-input catalogue: each case asserts the server's exact answer, and after each one (or
//! while it is going on) a second, healthy room must still relay both ways.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use confab_proto::{ErrorCode, PeerId, RoomId, ServerMessage};
use confab_signaling::Config;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// What the server must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An `error` with this code; the connection stays usable.
    Error(ErrorCode),
    /// An `error` with this code, then a close with this code.
    ErrorAndClose(ErrorCode, CloseCode),
    /// A close with this code and no error.
    Close(CloseCode),
}

struct Case {
    name: &'static str,
    joined: bool,
    send: Box<dyn Fn(&Ctx) -> Message>,
    expect: Expect,
}

/// What a case may refer to: a valid room, a peer in the healthy room, its own id.
struct Ctx {
    room: RoomId,
    foreign: PeerId,
    me: Option<PeerId>,
}

fn case(
    name: &'static str,
    joined: bool,
    expect: Expect,
    send: impl Fn(&Ctx) -> Message + 'static,
) -> Case {
    Case { name, joined, send: Box::new(send), expect }
}

fn join_with(ctx: &Ctx, field: &str, value: serde_json::Value) -> Message {
    let mut j = join_msg(&ctx.room, "x");
    j[field] = value;
    text(j.to_string())
}

fn join_without(ctx: &Ctx, field: &str) -> Message {
    let mut j = join_msg(&ctx.room, "x");
    j.as_object_mut().unwrap().remove(field);
    text(j.to_string())
}

fn signal_to(to: &str) -> Message {
    text(signal_msg(to, "bad").to_string())
}

fn signal_with_data(ctx: &Ctx, data: serde_json::Value) -> Message {
    let to = ctx.foreign.as_str();
    text(json!({"type": "signal", "to": to, "data": data}).to_string())
}

fn catalogue() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::{Close, Error, ErrorAndClose};
    vec![
        // Frames that are not signaling messages at all.
        case("binary frame", false, Error(BadMessage), |_| Message::binary(vec![1, 2, 3])),
        case(
            "invalid UTF-8 in a text frame",
            false,
            ErrorAndClose(BadMessage, CloseCode::Invalid),
            |_| {
                Message::Frame(Frame::message(
                    vec![b'{', 0xff, 0xfe, b'}'],
                    OpCode::Data(Data::Text),
                    true,
                ))
            },
        ),
        case("not JSON", false, Error(BadMessage), |_| text("hello server")),
        case("empty text frame", false, Error(BadMessage), |_| text("")),
        case("JSON array", false, Error(BadMessage), |_| text("[1,2,3]")),
        case("JSON string", false, Error(BadMessage), |_| text("\"join\"")),
        case("JSON nested 10,000 deep", false, Error(BadMessage), |_| {
            text(format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)))
        }),
        case("unknown type", false, Error(BadMessage), |_| text(r#"{"type":"dance"}"#)),
        case("missing type", false, Error(BadMessage), |ctx| join_without(ctx, "type")),
        case("mistyped type", false, Error(BadMessage), |ctx| join_with(ctx, "type", json!(5))),
        // Joins that are wrong.
        case("join without room", false, Error(BadMessage), |ctx| join_without(ctx, "room")),
        case("join without name", false, Error(BadMessage), |ctx| join_without(ctx, "name")),
        case("join without v", false, Error(BadMessage), |ctx| join_without(ctx, "v")),
        case("join with numeric name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!(42))
        }),
        case("join with room as a number", false, Error(BadMessage), |ctx| {
            join_with(ctx, "room", json!(7))
        }),
        case("join with unknown client", false, Error(BadMessage), |ctx| {
            join_with(ctx, "client", json!("toaster"))
        }),
        case(
            "join with version 2",
            false,
            ErrorAndClose(UnsupportedVersion, CloseCode::Policy),
            |ctx| join_with(ctx, "v", json!(2)),
        ),
        case(
            "join with version \"1\"",
            false,
            ErrorAndClose(UnsupportedVersion, CloseCode::Policy),
            |ctx| join_with(ctx, "v", json!("1")),
        ),
        case(
            "join with a short room id",
            false,
            ErrorAndClose(BadRoom, CloseCode::Policy),
            |ctx| join_with(ctx, "room", json!("abc")),
        ),
        case(
            "join with a non-canonical room id",
            false,
            ErrorAndClose(BadRoom, CloseCode::Policy),
            |ctx| join_with(ctx, "room", json!("AAAAAAAAAAAAAAAAAAAAAB")),
        ),
        case(
            "join with a path in the room id",
            false,
            ErrorAndClose(BadRoom, CloseCode::Policy),
            |ctx| join_with(ctx, "room", json!("../../../../etc/passwd")),
        ),
        case("join with empty name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!(""))
        }),
        case("join with blank name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!("   "))
        }),
        case("join with 65-character name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!("n".repeat(65)))
        }),
        case("join with control character in name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!("Ada\u{7}Bell"))
        }),
        case("join with text-direction override in name", false, Error(BadMessage), |ctx| {
            join_with(ctx, "name", json!("Ada\u{202E}nimda"))
        }),
        case("join with overlong app_version", false, Error(BadMessage), |ctx| {
            join_with(ctx, "app_version", json!("1".repeat(200)))
        }),
        case("join with overlong token", false, Error(BadMessage), |ctx| {
            join_with(ctx, "token", json!("t".repeat(2000)))
        }),
        // Messages out of order.
        case("signal before join", false, Error(NotJoined), |ctx| signal_to(ctx.foreign.as_str())),
        case("leave before join", false, Close(CloseCode::Normal), |_| text(r#"{"type":"leave"}"#)),
        case("second join", true, Error(AlreadyJoined), |ctx| {
            text(join_msg(&ctx.room, "again").to_string())
        }),
        // Signals that go nowhere.
        case("signal to an unknown peer", true, Error(UnknownPeer), |_| {
            signal_to(PeerId::random().as_str())
        }),
        case("signal to a peer of another room", true, Error(UnknownPeer), |ctx| {
            signal_to(ctx.foreign.as_str())
        }),
        case("signal to oneself", true, Error(UnknownPeer), |ctx| {
            signal_to(ctx.me.as_ref().unwrap().as_str())
        }),
        case("signal to a malformed id", true, Error(BadMessage), |_| signal_to("not-an-id")),
        case("signal without data", true, Error(BadMessage), |ctx| {
            text(json!({"type": "signal", "to": ctx.foreign}).to_string())
        }),
        case("signal with empty data", true, Error(BadMessage), |ctx| {
            signal_with_data(ctx, json!({}))
        }),
        case("signal with sdp type rollback", true, Error(BadMessage), |ctx| {
            signal_with_data(ctx, json!({"sdp": {"type": "rollback", "sdp": ""}}))
        }),
        case("signal with numeric candidate", true, Error(BadMessage), |ctx| {
            signal_with_data(ctx, json!({"candidate": 5}))
        }),
        // Oversized frames.
        case("70 KB text frame", true, ErrorAndClose(TooLarge, CloseCode::Size), |_| {
            text("x".repeat(70_000))
        }),
        case("70 KB binary frame", false, ErrorAndClose(TooLarge, CloseCode::Size), |_| {
            Message::binary(vec![0u8; 70_000])
        }),
        case("1 MB SDP", true, ErrorAndClose(TooLarge, CloseCode::Size), |ctx| {
            signal_with_data(ctx, json!({"sdp": {"type": "offer", "sdp": "a".repeat(1 << 20)}}))
        }),
    ]
}

#[tokio::test]
async fn every_bad_message_gets_its_exact_answer_and_other_rooms_carry_on() {
    let server = TestServer::start(Config::default()).await;
    let mut healthy = server.healthy_pair().await;
    let cases = catalogue();
    assert!(cases.len() >= 30);
    for case in cases {
        let mut client = server.connect(case.name).await;
        let room = RoomId::random();
        let mut ctx = Ctx { room: room.clone(), foreign: healthy.a_id.clone(), me: None };
        if case.joined {
            ctx.me = Some(client.join(&room).await.you);
        }
        client.send((case.send)(&ctx)).await;
        match case.expect {
            Expect::Error(code) => {
                client.expect_error(code).await;
                // Still usable: a join (or a second join) gets its proper answer.
                client.send_json(join_msg(&room, "after")).await;
                match (case.joined, client.recv().await) {
                    (false, ServerMessage::Welcome { .. }) => {}
                    (true, ServerMessage::Error { code: ErrorCode::AlreadyJoined, .. }) => {}
                    (_, other) => panic!("{}: not usable afterwards: {other:?}", case.name),
                }
            }
            Expect::ErrorAndClose(code, close) => client.expect_error_and_close(code, close).await,
            Expect::Close(close) => {
                let texts = client.expect_close(close).await;
                assert!(texts.is_empty(), "{}: {texts:?}", case.name);
            }
        }
        healthy.assert_relays().await;
    }
    let metrics = server.metrics().await;
    for code in ["bad_message", "too_large", "unknown_peer", "bad_room", "unsupported_version"] {
        let line = metrics.lines().find(|l| l.contains(&format!("reason=\"{code}\""))).unwrap();
        assert!(!line.ends_with(" 0"), "{line}");
    }
}

#[tokio::test]
async fn non_websocket_requests_to_ws_are_refused_clearly() {
    let server = TestServer::start(Config::default()).await;
    let mut healthy = server.healthy_pair().await;

    let plain = http(server.addr, "GET", "/ws", &[], b"").await;
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("upgrade").as_deref(), Some("websocket"));
    assert!(plain.body_text().contains("WebSocket"), "{}", plain.body_text());
    healthy.assert_relays().await;

    let post = http(server.addr, "POST", "/ws", &[], b"{}").await;
    assert_eq!(post.status, 426);
    healthy.assert_relays().await;

    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut old = upgrade.to_vec();
    old.push(("Sec-WebSocket-Version", "8"));
    let resp = http(server.addr, "GET", "/ws", &old, b"").await;
    assert_eq!((resp.status, resp.header("sec-websocket-version").as_deref()), (426, Some("13")));
    healthy.assert_relays().await;

    let mut no_key = upgrade[..2].to_vec();
    no_key.push(("Sec-WebSocket-Version", "13"));
    assert_eq!(http(server.addr, "GET", "/ws", &no_key, b"").await.status, 400);
    healthy.assert_relays().await;
}

async fn connect_with_origin(server: &TestServer, origin: &str) -> Result<(), u16> {
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{origin}: {e}"),
    }
}

#[tokio::test]
async fn only_allowed_origins_may_open_the_socket() {
    let server = TestServer::start(Config {
        allow_origins: vec!["https://intranet.example".into()],
        ..Config::default()
    })
    .await;
    let mut healthy = server.healthy_pair().await;
    for foreign in ["https://evil.example", "null", "http://localhost.evil.example", "file://"] {
        assert_eq!(connect_with_origin(&server, foreign).await, Err(403), "{foreign}");
        healthy.assert_relays().await;
    }
    let own = format!("http://{}", server.addr);
    for allowed in
        [own.as_str(), "tauri://localhost", "http://tauri.localhost", "https://intranet.example"]
    {
        assert_eq!(connect_with_origin(&server, allowed).await, Ok(()), "{allowed}");
    }
}

#[tokio::test]
async fn message_flood_is_rate_limited_then_cut_off() {
    let server = TestServer::start(Config {
        messages_per_second: 20,
        burst_messages: 40,
        ..Config::default()
    })
    .await;
    let mut healthy = server.healthy_pair().await;
    let room = RoomId::random();
    let (mut flooder, _) = server.join(&room, "flooder").await;
    let (mut target, wt) = server.join(&room, "target").await;
    assert!(matches!(flooder.recv().await, ServerMessage::PeerJoined { .. }));
    // Far more than the burst, as fast as the socket takes them.
    let burst: Vec<Message> = (0..200)
        .map(|n| text(signal_msg(wt.you.as_str(), &format!("flood-{n}")).to_string()))
        .collect();
    for msg in burst {
        if tokio::time::timeout(WAIT, futures_util::SinkExt::send(&mut flooder.ws, msg))
            .await
            .unwrap()
            .is_err()
        {
            break; // the server may already have cut us off
        }
    }
    let first_error = flooder.recv().await;
    assert!(
        matches!(first_error, ServerMessage::Error { code: ErrorCode::RateLimited, .. }),
        "{first_error:?}"
    );
    flooder.expect_error_and_close(ErrorCode::RateLimited, CloseCode::Policy).await;
    // The target got the burst's worth, in order, then the flooder's departure.
    let mut got = 0;
    loop {
        match target.recv().await {
            ServerMessage::Signal { .. } => got += 1,
            ServerMessage::PeerLeft { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    // At least the burst (40, one of them spent on `join`) passed, plus whatever refilled while
    // the flood went on; far from all of it did.
    assert!((39..150).contains(&got), "{got} of 200 signals passed the limiter");
    healthy.assert_relays().await;
}

#[tokio::test]
async fn a_reader_that_never_reads_is_dropped_without_stalling_its_room() {
    let server = TestServer::start(Config {
        messages_per_second: 0,
        send_queue: 8,
        write_timeout: Duration::from_secs(2),
        ..Config::default()
    })
    .await;
    let mut healthy = server.healthy_pair().await;
    let room = RoomId::random();
    let (mut sender, _) = server.join(&room, "sender").await;
    let (mut watcher, _) = server.join(&room, "watcher").await;
    let (stuck, ws) = server.join(&room, "never-reads").await;
    for _ in 0..2 {
        assert!(matches!(sender.recv().await, ServerMessage::PeerJoined { .. }));
    }
    assert!(matches!(watcher.recv().await, ServerMessage::PeerJoined { .. }));
    // 50 KB signals to the peer that never reads. The sender is never held up (each send goes
    // through well within the write timeout the stuck socket is given); the room learns that the
    // stuck peer is gone.
    let big = "c".repeat(50_000);
    let mut sent = 0;
    let dropped = loop {
        let send = sender.signal(&ws.you, &big);
        tokio::time::timeout(Duration::from_secs(1), send).await.expect("the sender was held up");
        sent += 1;
        if sent % 50 == 0 {
            healthy.assert_relays().await;
        }
        if sent > 5_000 {
            panic!("the stuck reader was never dropped");
        }
        // Without waiting: has the watcher been told?
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::ZERO, futures_util::StreamExt::next(&mut watcher.ws))
                .await
        {
            break ServerMessage::decode(&t).unwrap();
        }
    };
    assert_eq!(dropped, ServerMessage::PeerLeft { id: ws.you.clone() }, "after {sent} signals");
    // The sender hears it too, and its next signal to the stuck peer is refused.
    loop {
        match sender.recv().await {
            ServerMessage::PeerLeft { id } if id == ws.you => break,
            ServerMessage::Error { code: ErrorCode::UnknownPeer, .. } => {}
            other => panic!("{other:?}"),
        }
    }
    drop(stuck);
    healthy.assert_relays().await;
    // It was evicted for falling behind, not dropped by the write timeout.
    let metrics = server.metrics().await;
    assert!(metrics.contains("confab_messages_rejected_total{reason=\"too_slow\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_client_that_never_joins_is_closed_after_the_join_timeout() {
    let server =
        TestServer::start(Config { join_timeout: Duration::from_millis(800), ..Config::default() })
            .await;
    let mut healthy = server.healthy_pair().await;
    let mut lurker = server.connect("lurker").await;
    let started = std::time::Instant::now();
    // The healthy room relays while the lurker waits out its deadline.
    healthy.assert_relays().await;
    lurker.expect_error_and_close(ErrorCode::JoinTimeout, CloseCode::Policy).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    healthy.assert_relays().await;
}

#[tokio::test]
async fn a_silent_socket_is_dropped_and_its_room_told() {
    let server = TestServer::start(Config {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(1000),
        // The healthy room relays in a tight loop meanwhile.
        messages_per_second: 0,
        ..Config::default()
    })
    .await;
    let mut healthy = server.healthy_pair().await;
    let room = RoomId::random();
    let (mut watcher, _) = server.join(&room, "watcher").await;
    let (silent, ws) = server.join(&room, "silent").await;
    assert!(matches!(watcher.recv().await, ServerMessage::PeerJoined { .. }));
    // The watcher waits (answering pings) in a task of its own, while the healthy room relays
    // over and over, which keeps its peers answering pings too.
    let waiting = tokio::spawn(async move { watcher.recv().await });
    while !waiting.is_finished() {
        healthy.assert_relays().await;
    }
    assert_eq!(waiting.await.unwrap(), ServerMessage::PeerLeft { id: ws.you });
    drop(silent);
    healthy.assert_relays().await;
}

#[tokio::test]
async fn a_connection_storm_over_the_limit_gets_503_and_the_server_recovers() {
    let server = TestServer::start(Config { max_connections: 12, ..Config::default() }).await;
    let mut healthy = server.healthy_pair().await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        match tokio_tungstenite::connect_async(server.ws_url()).await {
            Ok((ws, _)) => held.push(ws),
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((held.len(), refused), (10, 30), "12 allowed, 2 of them held by the healthy room");
    let busy = http(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((busy.status, busy.header("retry-after").as_deref()), (503, Some("5")));
    healthy.assert_relays().await;
    drop(held);
    // Once the storm's sockets are gone, newcomers get in again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(server.ws_url()).await {
            drop(ws);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the server never recovered");
        tokio::task::yield_now().await;
    }
    let (_late, _) = server.join(&RoomId::random(), "late").await;
    healthy.assert_relays().await;
}
