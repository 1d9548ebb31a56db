//! The signaling client against a real confab-signaling on 127.0.0.1: joining, relaying,
//! surviving a server restart, and ending clearly when retrying cannot help.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use confab_core::signaling_client::{self, SignalingConfig, SignalingEvent};
use confab_proto::{ClientKind, DisplayName, MeetingKey, MeetingLink, RoomId, SignalData};
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(20);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start_on(addr: SocketAddr, config: confab_signaling::Config) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            confab_signaling::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, stop: Some(stop), task }
    }

    async fn start(config: confab_signaling::Config) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task).await.unwrap().unwrap();
    }

    fn link(&self, room: &RoomId) -> MeetingLink {
        MeetingLink::new(&format!("http://{}", self.addr), room.clone(), MeetingKey::random())
            .unwrap()
    }
}

fn config(link: MeetingLink, name: &str) -> SignalingConfig {
    SignalingConfig {
        link,
        name: DisplayName::new(name).unwrap(),
        client: ClientKind::Cli,
        app_version: "test".into(),
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
    let server = Server::start(confab_signaling::Config::default()).await;
    let room = RoomId::random();
    let (a, mut a_events) = signaling_client::spawn(config(server.link(&room), "Ada"));
    let SignalingEvent::Joined { you: a_id, peers, .. } = next(&mut a_events).await else {
        panic!()
    };
    assert!(peers.is_empty());
    let (b, mut b_events) = signaling_client::spawn(config(server.link(&room), "Bo"));
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
            SignalingEvent::Ended { reason } => {
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
    let server =
        Server::start(confab_signaling::Config { max_peers: 2, ..Default::default() }).await;
    let room = RoomId::random();
    let (_a, mut a_events) = signaling_client::spawn(config(server.link(&room), "a"));
    let (_b, mut b_events) = signaling_client::spawn(config(server.link(&room), "b"));
    assert!(matches!(next(&mut a_events).await, SignalingEvent::Joined { .. }));
    assert!(matches!(next(&mut b_events).await, SignalingEvent::Joined { .. }));
    let (_c, mut c_events) = signaling_client::spawn(config(server.link(&room), "c"));
    match next(&mut c_events).await {
        SignalingEvent::Ended { reason } => assert!(reason.contains("full"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(c_events.recv().await.is_none(), "nothing after Ended");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_not_retried_forever() {
    // A port with nothing behind it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let link = MeetingLink::new(&format!("http://{addr}"), RoomId::random(), MeetingKey::random())
        .unwrap();
    let (_c, mut events) = signaling_client::spawn(config(link, "x"));
    match next(&mut events).await {
        SignalingEvent::Ended { reason } => {
            assert!(reason.contains("cannot reach the signaling server"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
