//! Media over real connections: a camera reaches every peer that takes video, whoever offers,
//! while a peer that takes none declines it and still talks and types with everyone; and tracks
//! come and go on a live connection from either side.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Node, NodeOptions, Recorder, Server, until};
use confab_core::{EngineEvent, MediaState, TrackFeed, TrackKind};
use confab_media::tone_share;
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
    // Ada (camera, shows video) is there first. Bo (a terminal: no camera, shows no video)
    // offers her a connection without video: she answers, then offers her camera, which Bo
    // declines. Cy (camera, shows video) offers his with his own.
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

/// Whole frames of a track received within a few seconds (the camera sends 30 a second, the
/// screen 15, the microphone 50).
const SOME_FRAMES: u64 = 45;

fn media_of(node: &Node, peer: &PeerId) -> Option<MediaState> {
    node.log.iter().rev().find_map(|e| match e {
        EngineEvent::Media { id, media } if id == peer => Some(media.clone()),
        _ => None,
    })
}

/// Tracks as a set: each side turns its camera and screen on and off at any time, the
/// connection renegotiates from whichever side changed, every change is announced, and the
/// tracks that arrive reach the front end's sink under their kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracks_come_and_go_on_a_live_connection_from_either_side() {
    common::init_logs();
    let server = Server::start().await;
    let link = server.link();
    let (ada_sees, bo_sees) = (Recorder::default(), Recorder::default());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let with_sink = |dir: &tempfile::TempDir, sink: &Recorder| NodeOptions {
        incoming: Some(Arc::new(sink.clone())),
        ..Node::options_in(dir.path())
    };
    let mut nodes = vec![Node::start_with(&link, "Ada", with_sink(&dirs[0], &ada_sees))];
    until(&mut nodes, "Ada joined", |n| n[0].me.is_some()).await;
    nodes.push(Node::start_with(&link, "Bo", with_sink(&dirs[1], &bo_sees)));
    until(&mut nodes, "Ada and Bo are connected", |n| n.iter().all(|x| x.connected.len() == 1))
        .await;
    let [ada, bo] = [0, 1].map(|i| nodes[i].me.clone().unwrap());
    assert!(ada_sees.tracks().is_empty() && bo_sees.tracks().is_empty(), "nobody sends yet");

    // Bo, who answered Ada's offer, turns his camera on: he offers.
    let camera = TrackFeed::synthetic_camera().unwrap();
    nodes[1].engine.set_track(TrackKind::Camera, Some(camera)).await.unwrap();
    until(&mut nodes, "Bo's camera reaches Ada", |_| {
        ada_sees.frames(&bo, TrackKind::Camera) > SOME_FRAMES
    })
    .await;
    // Reassembled and decoded as a front end would: on loopback, without loss, every frame
    // from the first keyframe on arrives, in order.
    let numbers = ada_sees.from(&bo, TrackKind::Camera).next().unwrap().frame_numbers;
    assert!(numbers.len() as u64 > SOME_FRAMES / 2, "{} pictures decoded", numbers.len());
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "frames missing: {numbers:?}");
    until(&mut nodes, "Bo's camera is announced", |n| {
        media_of(&n[0], &bo).is_some_and(|m| m.cam && !m.screen)
    })
    .await;

    // Bo shares his screen as well, through the front-end API (the synthetic screen).
    let both = MediaState { cam: true, screen: true, ..MediaState::default() };
    nodes[1].engine.set_media(both).await.unwrap();
    until(&mut nodes, "Bo's screen reaches Ada beside his camera", |_| {
        ada_sees.frames(&bo, TrackKind::Screen) > SOME_FRAMES
    })
    .await;
    let bo_media = media_of(&nodes[0], &bo).unwrap();
    let screen = ada_sees.from(&bo, TrackKind::Screen).next().unwrap();
    assert_eq!(screen.track.stream_ids, ["confab-screen"]);
    assert_eq!(screen.track.kind(&bo_media), TrackKind::Screen, "announced: {bo_media:?}");
    assert_eq!(screen.track.mime_type.to_ascii_lowercase(), "video/vp8");
    assert!(!screen.track.audio);

    // Ada, the first offerer, turns her camera on while Bo's tracks flow.
    nodes[0].engine.set_media(MediaState { cam: true, ..MediaState::default() }).await.unwrap();
    until(&mut nodes, "Ada's camera reaches Bo", |_| {
        bo_sees.frames(&ada, TrackKind::Camera) > SOME_FRAMES
    })
    .await;

    // Bo stops his camera and keeps sharing: the camera stops, the screen goes on.
    nodes[1].engine.set_track(TrackKind::Camera, None).await.unwrap();
    until(&mut nodes, "Bo's camera is announced off", |n| {
        media_of(&n[0], &bo).is_some_and(|m| !m.cam && m.screen)
    })
    .await;
    let off_at = std::time::Instant::now();
    let quiet = std::time::Duration::from_secs(1);
    until(&mut nodes, "Bo's camera stops reaching Ada", |_| {
        ada_sees.last_frame(&bo, TrackKind::Camera).is_some_and(|t| t.elapsed() > quiet)
    })
    .await;
    let screen_before = ada_sees.frames(&bo, TrackKind::Screen);
    until(&mut nodes, "Bo's screen still reaches Ada", |_| {
        ada_sees.frames(&bo, TrackKind::Screen) > screen_before + SOME_FRAMES
    })
    .await;
    assert!(
        ada_sees.last_frame(&bo, TrackKind::Camera).unwrap() < off_at + quiet,
        "no camera packet after it went quiet"
    );

    // And turns it on again: the same connection carries it once more.
    let camera_before = ada_sees.frames(&bo, TrackKind::Camera);
    let camera = TrackFeed::synthetic_camera().unwrap();
    nodes[1].engine.set_track(TrackKind::Camera, Some(camera)).await.unwrap();
    until(&mut nodes, "Bo's camera is back", |_| {
        ada_sees.frames(&bo, TrackKind::Camera) > camera_before + SOME_FRAMES
    })
    .await;

    // His microphone joins them (the synthetic tone), as Opus audio.
    let all = MediaState { mic: true, cam: true, screen: true, ..MediaState::default() };
    nodes[1].engine.set_media(all).await.unwrap();
    until(&mut nodes, "Bo's microphone reaches Ada", |_| {
        ada_sees.frames(&bo, TrackKind::Microphone) > SOME_FRAMES
    })
    .await;
    // In the camera's stream: one stream for a face and a voice, as browsers send them.
    let mic = ada_sees.from(&bo, TrackKind::Microphone).next().unwrap();
    assert!(mic.track.audio);
    assert_eq!(mic.track.stream_ids, ["confab-camera"]);
    assert_eq!(mic.track.mime_type.to_ascii_lowercase(), "audio/opus");
    until(&mut nodes, "Bo's microphone is announced", |n| {
        media_of(&n[0], &bo).is_some_and(|m| m.mic && m.cam && m.screen)
    })
    .await;
    // And Ada's, the other way. Each hears the other's tone at its pitch: over the last half
    // second decoded, nearly all the energy is at 440 Hz, none at 660.
    nodes[0]
        .engine
        .set_media(MediaState { mic: true, cam: true, ..MediaState::default() })
        .await
        .unwrap();
    let half_second = 24_000;
    let heard = |sink: &Recorder, from: &PeerId| {
        // The track as it is now (a renegotiation may have opened it afresh).
        let pcm = sink.from(from, TrackKind::Microphone).last().map(|t| t.pcm).unwrap_or_default();
        (pcm.len() >= 2 * half_second).then(|| pcm[pcm.len() - half_second..].to_vec())
    };
    until(&mut nodes, "a second of each other's sound", |_| {
        heard(&ada_sees, &bo).is_some() && heard(&bo_sees, &ada).is_some()
    })
    .await;
    for (who, pcm) in
        [("Ada", heard(&ada_sees, &bo).unwrap()), ("Bo", heard(&bo_sees, &ada).unwrap())]
    {
        let (at_440, at_660) = (tone_share(&pcm, 440.0), tone_share(&pcm, 660.0));
        assert!(
            at_440 > 0.8 && at_660 < 0.05,
            "{who} hears 440 Hz at {at_440}, 660 Hz at {at_660}"
        );
    }
    assert_eq!(nodes.iter().map(|n| n.connected.len()).sum::<usize>(), 2, "still connected");
}
