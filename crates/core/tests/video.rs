//! A peer with a camera sends it to every peer that takes video, whoever offers; a peer without
//! one declines video, and still connects, talks and types with everyone.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Node, Server, until};
use confab_core::EngineEvent;
use confab_proto::PeerId;

/// Received from a camera within a few seconds; an idle meeting's data channels carry a few
/// kilobytes.
const VIDEO_BYTES: u64 = 100_000;

fn announced_camera(node: &Node, peer: &PeerId) -> bool {
    node.log
        .iter()
        .any(|e| matches!(e, EngineEvent::Media { id, media } if id == peer && media.cam))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_reaches_the_peers_that_take_video_and_costs_the_others_nothing() {
    common::init_logs();
    let server = Server::start().await;
    let link = server.link();
    // Ada (camera) is there first. Bo (no camera) offers her a connection without video: she
    // answers, then offers her camera, which Bo declines. Cy (camera) offers his with his own.
    let mut nodes = vec![Node::start_with_camera(&link, "Ada")];
    until(&mut nodes, "Ada joined", |n| n[0].me.is_some()).await;
    nodes.push(Node::start(&link, "Bo"));
    until(&mut nodes, "Bo joined", |n| n[1].me.is_some()).await;
    nodes.push(Node::start_with_camera(&link, "Cy"));
    until(&mut nodes, "everyone is connected to everyone", |n| {
        n.iter().all(|x| x.connected.len() == 2)
    })
    .await;
    let [ada, bo, cy] = [0, 1, 2].map(|i| nodes[i].me.clone().unwrap());

    nodes[1].engine.say("Bo here").await.unwrap();
    until(&mut nodes, "Bo's chat reaches both", |n| {
        n.iter().all(|x| x.chat.iter().any(|c| c == "Bo here"))
    })
    .await;
    until(&mut nodes, "the cameras are announced", |n| {
        announced_camera(&n[1], &ada)
            && announced_camera(&n[2], &ada)
            && announced_camera(&n[0], &cy)
    })
    .await;
    until(&mut nodes, "Ada's and Cy's video flows between them", |n| {
        n[2].bytes_received_from(&ada) > VIDEO_BYTES && n[0].bytes_received_from(&cy) > VIDEO_BYTES
    })
    .await;
    let (bo_from_ada, cy_from_ada) =
        (nodes[1].bytes_received_from(&ada), nodes[2].bytes_received_from(&ada));
    assert!(
        bo_from_ada * 5 < cy_from_ada,
        "Bo declined the video: {bo_from_ada} bytes, Cy took {cy_from_ada}"
    );
    assert!(!announced_camera(&nodes[0], &bo), "Bo has no camera");
}
