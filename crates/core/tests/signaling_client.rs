//! The signaling client against a real confab-signaling on 127.0.0.1: joining, relaying,
//! surviving a server restart, giving up a server gone silent, and ending clearly when retrying
//! cannot help.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, WAIT};
use confab_core::signaling_client::{self, SignalingConfig, SignalingEvent};
use confab_proto::{ClientKind, DisplayName, MeetingLink, SignalData};
use tokio::sync::mpsc;

fn config(link: MeetingLink, name: &str) -> SignalingConfig {
    SignalingConfig {
        trusted_certificate: None,
        link,
        name: DisplayName::new(name).unwrap(),
        client: ClientKind::Cli,
        app_version: "test".into(),
        keep_trying: false,
        access_token: None,
    }
}

async fn next(events: &mut mpsc::UnboundedReceiver<SignalingEvent>) -> SignalingEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("events ended")
}

/// The next event that is not `Reconnecting`.
async fn next_settled(events: &mut mpsc::UnboundedReceiver<SignalingEvent>) -> SignalingEvent {
    loop {
        match next(events).await {
            SignalingEvent::Reconnecting { .. } => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn joins_relays_and_rejoins_after_a_server_restart() {
    let server = Server::start().await;
    let link = server.link();
    let (a, mut a_events) = signaling_client::spawn(config(link.clone(), "Ada"));
    let SignalingEvent::Joined { you: a_id, peers, .. } = next(&mut a_events).await else {
        panic!()
    };
    assert!(peers.is_empty());
    let (b, mut b_events) = signaling_client::spawn(config(link.clone(), "Bo"));
    let SignalingEvent::Joined { you: b_id, peers, .. } = next(&mut b_events).await else {
        panic!()
    };
    assert_eq!(peers[0].id, a_id);
    assert!(matches!(next(&mut a_events).await, SignalingEvent::PeerJoined(p) if p.id == b_id));

    b.signal(a_id.clone(), SignalData::Candidate { candidate: None }.into());
    match next(&mut a_events).await {
        SignalingEvent::Signal { from, data } => {
            assert_eq!(from, b_id);
            assert_eq!(data.raw_json(), r#"{"candidate":null}"#);
        }
        other => panic!("{other:?}"),
    }

    // The server goes away and comes back on the same address: both clients reconnect on their
    // own and join again, with new ids, and find each other.
    let addr = server.addr;
    server.stop().await;
    assert!(matches!(next(&mut a_events).await, SignalingEvent::Reconnecting { .. }));
    let _server = Server::start_on(addr, confab_signaling::Config::default()).await;
    let SignalingEvent::Joined { you: a2, .. } = next_settled(&mut a_events).await else {
        panic!()
    };
    assert_ne!(a2, a_id, "the server mints a fresh id");
    let joined_b = next_settled(&mut b_events).await;
    assert!(matches!(joined_b, SignalingEvent::Joined { .. }), "{joined_b:?}");

    a.leave();
    loop {
        match next(&mut a_events).await {
            SignalingEvent::Ended { reason, .. } => {
                assert!(reason.contains("left"), "{reason}");
                break;
            }
            SignalingEvent::PeerJoined(_) | SignalingEvent::PeerLeft(_) => {}
            other => panic!("{other:?}"),
        }
    }
    drop(b);
}

#[tokio::test]
async fn a_full_room_ends_the_client_once_without_retrying() {
    let config_of_two = confab_signaling::Config { max_peers: 2, ..Default::default() };
    let server = Server::start_on("127.0.0.1:0".parse().unwrap(), config_of_two).await;
    let link = server.link();
    let (_a, mut a_events) = signaling_client::spawn(config(link.clone(), "a"));
    let (_b, mut b_events) = signaling_client::spawn(config(link.clone(), "b"));
    assert!(matches!(next(&mut a_events).await, SignalingEvent::Joined { .. }));
    assert!(matches!(next(&mut b_events).await, SignalingEvent::Joined { .. }));
    let (_c, mut c_events) = signaling_client::spawn(config(link.clone(), "c"));
    match next(&mut c_events).await {
        SignalingEvent::Ended { reason, code } => {
            assert!(reason.contains("full"), "{reason}");
            // Front ends word it from the protocol's code.
            assert_eq!(code, Some(confab_proto::ErrorCode::RoomFull));
        }
        other => panic!("{other:?}"),
    }
    assert!(c_events.recv().await.is_none(), "nothing after Ended");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_not_retried_forever() {
    // A port with nothing behind it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let link = common::link_to(addr);
    let (_c, mut events) = signaling_client::spawn(config(link, "x"));
    match next(&mut events).await {
        SignalingEvent::Ended { reason, .. } => {
            assert!(reason.contains("cannot reach the signaling server"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// A server that takes the connection and the join, then goes silent without closing (its
/// machine left the network): the client's pings go unanswered, and it gives the socket up
/// after SIGNALING_SILENCE instead of waiting out TCP for minutes.
#[tokio::test]
async fn a_server_gone_silent_is_given_up_and_reconnected() {
    use confab_proto::limits::SIGNALING_SILENCE;
    use futures_util::StreamExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let link = common::link_to(listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let _join = ws.next().await;
        // Never read again, so never answer a ping; never close.
        std::future::pending::<()>().await;
        drop(ws);
    });
    let start = std::time::Instant::now();
    let (_c, mut events) = signaling_client::spawn(config(link, "x"));
    match next(&mut events).await {
        SignalingEvent::Reconnecting { reason, .. } => {
            assert!(reason.contains("went silent"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= SIGNALING_SILENCE && waited < SIGNALING_SILENCE * 2,
        "gave up after {waited:?}"
    );
    silent.abort();
}
