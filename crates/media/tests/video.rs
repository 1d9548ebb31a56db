//! The synthetic camera through the real libvpx encoder and decoder, and the pipeline thread.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::ToTest;
use confab_media::{
    Content, I420Frame, MediaError, SyntheticCamera, VideoCodec, VideoPipeline, VideoSource,
    VpxConfig, VpxDecoder, VpxEncoder, read_stamp,
};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u32 = 30;

fn encoder(bitrate_kbps: u32) -> VpxEncoder {
    VpxEncoder::new(VpxConfig::camera(WIDTH, HEIGHT, FPS, bitrate_kbps)).expect("encoder")
}

#[test]
fn stamps_survive_vp8_at_a_low_bitrate() {
    let mut camera = SyntheticCamera::new(WIDTH, HEIGHT, FPS).expect("camera");
    let mut encoder = encoder(300);
    let mut decoder = VpxDecoder::new(VideoCodec::Vp8).expect("decoder");
    let mut picture = I420Frame::black(WIDTH, HEIGHT).expect("picture");
    let mut decoded_stamps = Vec::new();
    for n in 0..60 {
        camera.capture(&mut picture).expect("capture");
        for frame in encoder.encode(&picture, false).expect("encode") {
            assert_eq!(frame.keyframe, n == 0, "only the first frame is a keyframe");
            let shown = decoder.decode(&frame.data).expect("decode").expect("a picture");
            assert_eq!((shown.width(), shown.height()), (WIDTH, HEIGHT));
            decoded_stamps.push(read_stamp(&shown).expect("the stamp is readable").frame);
        }
    }
    assert!(
        decoded_stamps.len() >= 55,
        "rate control dropped {} of 60 frames",
        60 - decoded_stamps.len()
    );
    assert!(
        decoded_stamps.windows(2).all(|w| w[0] < w[1]),
        "frame numbers go up: {decoded_stamps:?}"
    );
}

#[test]
fn a_keyframe_comes_when_asked_and_a_fresh_decoder_starts_from_it() {
    let mut camera = SyntheticCamera::new(WIDTH, HEIGHT, FPS).expect("camera");
    let mut encoder = encoder(500);
    let mut picture = I420Frame::black(WIDTH, HEIGHT).expect("picture");
    for _ in 0..10 {
        camera.capture(&mut picture).expect("capture");
        encoder.encode(&picture, false).expect("encode");
    }
    camera.capture(&mut picture).expect("capture");
    let frames = encoder.encode(&picture, true).expect("encode");
    let [frame] = frames.as_slice() else { panic!("one frame, got {}", frames.len()) };
    assert!(frame.keyframe);
    // A viewer joining now has none of the earlier frames.
    let shown = VpxDecoder::new(VideoCodec::Vp8)
        .expect("decoder")
        .decode(&frame.data)
        .expect("decode")
        .expect("a picture");
    assert_eq!(read_stamp(&shown).map(|s| s.frame), Some(10));
}

#[test]
fn a_lower_bitrate_mid_stream_makes_smaller_frames_that_still_decode() {
    let mut encoder = encoder(1200);
    let mut decoder = VpxDecoder::new(VideoCodec::Vp8).expect("decoder");
    let mut picture = I420Frame::black(WIDTH, HEIGHT).expect("picture");
    // Faint fresh noise in every frame: more detail than either bitrate carries, so the target
    // always binds.
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    // The bitrate of 2 s (60 frames), after 1 s to settle.
    let mut kbps_after_settling = |encoder: &mut VpxEncoder| {
        let mut bytes = 0;
        for n in 0..90 {
            let (luma, _, _) = picture.planes_mut();
            for pixel in luma.iter_mut() {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                *pixel = 120 + (noise % 4) as u8;
            }
            for frame in encoder.encode(&picture, false).expect("encode") {
                decoder.decode(&frame.data).expect("decodes across the change");
                if n >= 30 {
                    bytes += frame.data.len();
                }
            }
        }
        bytes * 8 / 2 / 1000
    };
    let high = kbps_after_settling(&mut encoder);
    encoder.set_bitrate(300).expect("a lower bitrate");
    assert_eq!(encoder.bitrate_kbps(), 300);
    let low = kbps_after_settling(&mut encoder);
    assert!(
        low * 2 < high && low <= 300 * 13 / 10,
        "{high} kbit/s at 1200, then {low} kbit/s at 300"
    );
    assert!(matches!(encoder.set_bitrate(0), Err(MediaError::BadSetting(_))));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut decoder = VpxDecoder::new(VideoCodec::Vp8).expect("decoder");
    for garbage in
        [&b""[..], b"\x00", &[0xff; 64], &[0x9d, 0x01, 0x2a, 0xff, 0xff, 0xff, 0xff, 0, 0, 0]]
    {
        if let Ok(Some(picture)) = decoder.decode(garbage) {
            panic!("{garbage:?} decoded to {picture:?}");
        }
    }
    assert!(matches!(
        VpxEncoder::new(VpxConfig::camera(641, 360, 30, 500)),
        Err(MediaError::BadSize(_))
    ));
    let mut encoder = encoder(500);
    let wrong = I420Frame::black(320, 180).expect("picture");
    assert!(matches!(encoder.encode(&wrong, false), Err(MediaError::BadSize(_))));
    assert!(I420Frame::from_planes(640, 360, vec![0; 10]).is_err());
}

#[test]
fn the_pipeline_paces_frames_and_starts_each_viewer_on_a_keyframe() {
    let (tx, rx) = mpsc::channel();
    let camera = SyntheticCamera::new(WIDTH, HEIGHT, FPS).expect("camera");
    let pipeline =
        VideoPipeline::start(Box::new(camera), VideoCodec::Vp8, Content::Camera, 500, ToTest(tx))
            .expect("pipeline");
    let wait = Duration::from_secs(10);
    let first = rx.recv_timeout(wait).expect("a first frame");
    assert!(first.keyframe, "a viewer starts on a keyframe");
    assert_eq!(first.duration, Duration::from_secs(1) / FPS);
    let mut decoder = VpxDecoder::new(VideoCodec::Vp8).expect("decoder");
    let start =
        decoder.decode(&first.data).expect("decode").and_then(|p| read_stamp(&p)).expect("stamp");
    let mut last = start;
    for _ in 0..15 {
        let frame = rx.recv_timeout(wait).expect("a frame");
        let stamp = decoder
            .decode(&frame.data)
            .expect("decode")
            .and_then(|p| read_stamp(&p))
            .expect("stamp");
        assert!(stamp.frame > last.frame && stamp.millis >= last.millis, "{last:?} then {stamp:?}");
        last = stamp;
    }
    // Paced at the frame rate, not as fast as the encoder goes: 15 frame intervals are 500 ms
    // of the camera's own clock (its stamps), however loaded the machine.
    let span = last.millis - start.millis;
    assert!(span >= 400, "15 frame intervals within {span} ms");

    pipeline.request_keyframe();
    let keyframe_within =
        (0..10).map(|_| rx.recv_timeout(wait).expect("a frame")).position(|f| f.keyframe);
    assert!(keyframe_within.is_some(), "a requested keyframe arrives within a few frames");

    // Asked on every frame (a storm of picture-loss reports), keyframes stay the exception:
    // at least 300 ms of capture time apart. Judged by when each frame was captured, not by a
    // count per 30 frames: on a loaded machine 30 frames can span far more than one second.
    let mut keyframes_at = Vec::new();
    for _ in 0..30 {
        pipeline.request_keyframe();
        let frame = rx.recv_timeout(wait).expect("a frame");
        if frame.keyframe {
            keyframes_at.push(frame.captured_at);
        }
    }
    assert!(!keyframes_at.is_empty(), "a storm of requests still brings a keyframe");
    for pair in keyframes_at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(300), "keyframes only {gap:?} apart");
    }

    drop(pipeline);
    // Once stopped, the channel drains and closes (the thread drops its sink).
    while rx.recv_timeout(wait).is_ok() {}
    assert!(matches!(rx.recv_timeout(Duration::ZERO), Err(mpsc::RecvTimeoutError::Disconnected)));
}

#[cfg(feature = "camera")]
#[test]
fn a_camera_that_is_not_there_is_a_clear_error_not_a_panic() {
    let listed = confab_media::cameras().expect("listing cameras works with or without any");
    assert!(!listed.iter().any(|c| c.id == "97"), "{listed:?}");
    let refused = confab_media::Camera::open(Some("97")).expect_err("there is no camera 97");
    assert!(matches!(&refused, MediaError::Unavailable(m) if m.contains("camera 97")), "{refused}");
}
