//! Signaling can come and go without costing anyone their notes: a participant cut off from
//! signaling keeps its peer connections and joins again; one that leaves, edits offline and comes
//! back loses nothing, and the others get its edits.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Gate, Node, Server, until, via};
use confab_core::EngineEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_signaling_keeps_the_peer_connections() {
    common::init_logs();
    let server = Server::start().await;
    let link = server.link();
    let gate = Gate::start(server.addr).await;
    let mut nodes = vec![
        Node::start(&link, "Ada"),
        Node::start(&link, "Bo"),
        Node::start(&via(&link, gate.addr), "Cy"),
    ];
    until(&mut nodes, "everyone is connected", |n| n.iter().all(|x| x.connected.len() == 2)).await;
    let cy_first_id = nodes[2].me.clone().unwrap();

    gate.set_open(false);
    until(&mut nodes, "Cy notices signaling is gone", |n| n[2].reconnecting > 0).await;
    // Peer to peer, nothing changed: Cy's edits still reach the others.
    nodes[2].engine.splice_notes(0, 0, "typed while signaling was down").await.unwrap();
    until(&mut nodes, "the edit arrives", |n| {
        n.iter().all(|x| x.notes == "typed while signaling was down")
    })
    .await;

    gate.set_open(true);
    until(&mut nodes, "Cy joined again", |n| n[2].me.as_ref() != Some(&cy_first_id)).await;
    // Someone new finds all three, including Cy under its new id.
    nodes.push(Node::start(&link, "Di"));
    until(&mut nodes, "Di and Cy are connected to all", |n| {
        n[3].connected.len() == 3 && n[2].connected.len() == 3
    })
    .await;
    until(&mut nodes, "Di has the notes", |n| n[3].notes == "typed while signaling was down").await;
    let cy_id = nodes[2].me.clone().unwrap();
    for node in &nodes[..2] {
        // The same connection, re-keyed to Cy's new id: renamed, never connected anew.
        assert!(node.connected.contains_key(&cy_id), "{} is connected to Cy", node.name);
        assert!(
            node.log
                .iter()
                .any(|e| matches!(e, EngineEvent::PeerRenamed { old, .. } if *old == cy_first_id)),
            "{} kept its connection to Cy under the new id",
            node.name
        );
        assert!(
            !node
                .log
                .iter()
                .any(|e| matches!(e, EngineEvent::PeerConnected { id, .. } if *id == cy_id)),
            "{} made no second connection to Cy",
            node.name
        );
        assert!(
            !node.log.iter().any(|e| matches!(e, EngineEvent::PeerLeft { id } | EngineEvent::PeerFailed { id, .. } if *id == cy_first_id)),
            "{} was never told Cy left",
            node.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_leaves_and_edits_offline_loses_nothing() {
    common::init_logs();
    let server = Server::start().await;
    let link = server.link();
    let gate = Gate::start(server.addr).await;
    let bo_link = via(&link, gate.addr);
    let bo_dir = tempfile::tempdir().unwrap();
    let mut nodes = vec![
        Node::start(&link, "Ada"),
        Node::start_with(&bo_link, "Bo", Node::options_in(bo_dir.path())),
    ];
    until(&mut nodes, "Ada and Bo are connected", |n| n.iter().all(|x| x.connected.len() == 1))
        .await;
    nodes[0].engine.splice_notes(0, 0, "agenda\n").await.unwrap();
    nodes[1].engine.say("before leaving").await.unwrap();
    until(&mut nodes, "both hold the agenda and the chat", |n| {
        n.iter().all(|x| x.notes == "agenda\n" && x.chat.len() == 1)
    })
    .await;

    // Bo leaves and the network is gone.
    nodes[1].engine.leave();
    until(&mut nodes, "Ada sees Bo go", |n| n[0].connected.is_empty()).await;
    gate.set_open(false);
    nodes.pop();

    // Bo opens the meeting again offline: the notes are there, and it keeps editing.
    let mut options = Node::options_in(bo_dir.path());
    options.work_offline = true;
    nodes.push(Node::start_with(&bo_link, "Bo", options));
    until(&mut nodes, "Bo's notes come back from disk", |n| n[1].notes == "agenda\n").await;
    nodes[1].engine.splice_notes(7, 0, "- budget (from Bo, offline)\n").await.unwrap();
    nodes[1].engine.say("written offline").await.unwrap();
    // Meanwhile Ada edits too.
    nodes[0].engine.splice_notes(0, 0, "# Weekly\n").await.unwrap();

    gate.set_open(true);
    let want = "# Weekly\nagenda\n- budget (from Bo, offline)\n";
    until(&mut nodes, "both hold everything", |n| {
        n.iter().all(|x| x.notes == want && x.chat.len() >= 2)
    })
    .await;
    for node in &nodes {
        let mut chat = node.chat.clone();
        chat.sort();
        chat.dedup();
        assert_eq!(chat, ["before leaving", "written offline"], "{}", node.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_leaves_one_connection_per_pair() {
    common::init_logs();
    let server = Server::start().await;
    let (addr, link) = (server.addr, server.link());
    let mut nodes = vec![Node::start(&link, "Ada"), Node::start(&link, "Bo")];
    until(&mut nodes, "Ada and Bo are connected", |n| n.iter().all(|x| x.connected.len() == 1))
        .await;
    let first_ids: Vec<_> = nodes.iter().map(|n| n.me.clone().unwrap()).collect();

    // Both lose signaling at once and come back under new ids. Whoever is back first re-keys the
    // live connection (or, if both rejoin before hearing each other, they connect again and the
    // new connection replaces the old one): either way one connection, under the new ids.
    server.stop().await;
    until(&mut nodes, "both notice", |n| n.iter().all(|x| x.reconnecting > 0)).await;
    let _server = Server::start_on(addr, confab_signaling::Config::default()).await;
    until(&mut nodes, "each holds one connection, to the other's new id", |n| {
        let new_ids: Vec<_> = n.iter().map(|x| x.me.clone()).collect();
        n.iter().zip(new_ids.iter().rev()).zip(&first_ids).all(|((node, other), first)| {
            node.me.as_ref() != Some(first)
                && node.connected.len() == 1
                && other.as_ref().is_some_and(|o| node.connected.contains_key(o))
        })
    })
    .await;
    nodes[0].engine.say("after the restart").await.unwrap();
    until(&mut nodes, "chat still arrives once", |n| n[1].chat.len() == 1).await;
}
