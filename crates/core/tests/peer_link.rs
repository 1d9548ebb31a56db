//! Two real WebRTC peers in one process, their signals relayed in memory: the connection comes
//! up, the hellos verify, frames flow both ways; with different keys each side sees an
//! intercepted connection and drops it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use confab_core::mesh::{LinkCommand, LinkId};
use confab_core::peer::{self, PeerEvent, PeerLink, PeerSetup};
use confab_proto::{ClientKind, CtlMessage, MeetingKey, PeerId};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
/// The tags of a's link (to b) and of b's link (to a).
const A_LINK: LinkId = LinkId(0);
const B_LINK: LinkId = LinkId(1);

fn setup(me: &PeerId, remote: &PeerId, key: &MeetingKey, offerer: bool, name: &str) -> PeerSetup {
    PeerSetup {
        key: key.clone(),
        me: me.clone(),
        remote: remote.clone(),
        name: name.into(),
        client: ClientKind::Cli,
        app_version: "test".into(),
        ice_servers: vec![],
        bind: peer::own_address().unwrap(),
        relay_only: false,
        offerer,
        want_snapshot: offerer,
        instance: format!("run-{name}"),
        // No media: the sender is dropped at once, so the set never changes.
        tracks: tokio::sync::watch::channel(confab_core::TrackSet::new()).1,
        incoming: None,
    }
}

/// Two peers a (offers) and b, with signals passed between them until the test's own events.
struct Pair {
    a: PeerLink,
    b: PeerLink,
    events: mpsc::UnboundedReceiver<(LinkId, PeerEvent)>,
}

impl Pair {
    fn start(a_key: &MeetingKey, b_key: &MeetingKey) -> Self {
        let (a_id, b_id) = (PeerId::random(), PeerId::random());
        let (tx, events) = mpsc::unbounded_channel();
        let a = peer::spawn(setup(&a_id, &b_id, a_key, true, "Ada"), A_LINK, tx.clone());
        let b = peer::spawn(setup(&b_id, &a_id, b_key, false, "Bo"), B_LINK, tx);
        Self { a, b, events }
    }

    /// The next event that is not a signal (signals are relayed here, as signaling would) nor a
    /// path report.
    async fn next(&mut self) -> (LinkId, PeerEvent) {
        loop {
            let (link, event) = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("no peer event in time")
                .expect("peer events ended");
            match event {
                PeerEvent::Signal(data) if link == A_LINK => self.b.send(LinkCommand::Remote(data)),
                PeerEvent::Signal(data) => self.a.send(LinkCommand::Remote(data)),
                // Path state and stats come and go with timing; these tests look at what flows.
                PeerEvent::Connection(_) | PeerEvent::Stats(_) => {}
                other => return (link, other),
            }
        }
    }
}

#[tokio::test]
async fn peers_connect_verify_their_hellos_and_exchange_frames() {
    let key = MeetingKey::random();
    let mut pair = Pair::start(&key, &key);
    let mut ready = Vec::new();
    while ready.len() < 2 {
        match pair.next().await {
            (id, PeerEvent::Ready { name, want_snapshot, .. }) => {
                ready.push((id, name, want_snapshot))
            }
            other => panic!("{other:?}"),
        }
    }
    ready.sort_by(|x, y| x.1.cmp(&y.1));
    // a's link saw Bo's hello, b's link saw Ada's (who, as the newcomer, asked for a snapshot).
    assert_eq!(ready[0], (B_LINK, "Ada".into(), true));
    assert_eq!(ready[1], (A_LINK, "Bo".into(), false));

    let frame = vec![0u8, 1, 2, 3, 255];
    pair.a.send(LinkCommand::SendSync(frame.clone()));
    assert_eq!(pair.next().await, (B_LINK, PeerEvent::Sync(frame)));
    let media = CtlMessage::Media { mic: true, cam: false, screen: false, screen_track: None };
    pair.b.send(LinkCommand::SendCtl(media.clone()));
    assert_eq!(pair.next().await, (A_LINK, PeerEvent::Ctl(media)));
    // A frame of the largest size a data channel carries.
    let big = vec![7u8; 65_536];
    pair.b.send(LinkCommand::SendSync(big.clone()));
    assert_eq!(pair.next().await, (A_LINK, PeerEvent::Sync(big)));

    pair.a.send(LinkCommand::Close);
    assert_eq!(pair.next().await, (A_LINK, PeerEvent::Closed));
}

#[tokio::test]
async fn a_peer_with_another_key_is_dropped_as_intercepted() {
    let mut pair = Pair::start(&MeetingKey::random(), &MeetingKey::random());
    let mut ends = Vec::new();
    while ends.len() < 2 {
        match pair.next().await {
            // The side that drops first may close the other's channels before it has verified.
            (_, end @ (PeerEvent::Intercepted | PeerEvent::Failed(_))) => ends.push(end),
            other => panic!("a peer without the key got as far as {other:?}"),
        }
    }
    assert!(ends.contains(&PeerEvent::Intercepted), "nobody saw the interception: {ends:?}");
}
