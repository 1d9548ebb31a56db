//! Peers send whatever they like: the decoders that read their media (VP8, VP9, Opus) take
//! garbage, and real frames with bytes flipped or cut short, and answer `Ok` or `Err`. A panic, or
//! libvpx or libopus reading out of bounds (the test process would die), is a bug.

use confab_media::{
    I420Frame, OpusDecoder, OpusEncoder, SyntheticCamera, VideoCodec, VideoSource, VpxConfig,
    VpxDecoder, VpxEncoder,
};
use proptest::prelude::*;

const WIDTH: u32 = 320;
const HEIGHT: u32 = 180;

/// A real keyframe and the frame after it, in `codec`, to mutate.
fn real_frames(codec: VideoCodec) -> Vec<Vec<u8>> {
    let mut camera = SyntheticCamera::new(WIDTH, HEIGHT, 30).expect("camera");
    let config = match codec {
        VideoCodec::Vp8 => VpxConfig::camera(WIDTH, HEIGHT, 30, 300),
        VideoCodec::Vp9 => VpxConfig::screen(codec, WIDTH, HEIGHT, 30, 300),
    };
    let mut encoder = VpxEncoder::new(config).expect("encoder");
    let mut picture = I420Frame::black(WIDTH, HEIGHT).expect("picture");
    let mut frames = Vec::new();
    while frames.len() < 2 {
        camera.capture(&mut picture).expect("capture");
        frames.extend(
            encoder
                .encode(&picture, frames.is_empty())
                .expect("encode")
                .into_iter()
                .map(|f| f.data),
        );
    }
    frames
}

/// A frame with `flips` (position, xor) applied and cut to `keep` of its length.
fn mutate(frame: &[u8], flips: &[(usize, u8)], keep: f64) -> Vec<u8> {
    let mut out = frame.to_vec();
    for &(at, xor) in flips {
        let len = out.len();
        out[at % len] ^= xor;
    }
    out.truncate(((out.len() as f64) * keep).ceil() as usize);
    out
}

fn video_survives(
    codec: VideoCodec,
    frames: &[Vec<u8>],
    garbage: &[u8],
    flips: &[(usize, u8)],
    keep: f64,
) {
    let mut decoder = VpxDecoder::new(codec).expect("decoder");
    let _ = decoder.decode(garbage);
    for frame in frames {
        let _ = decoder.decode(&mutate(frame, flips, keep));
    }
    // It still decodes a good keyframe afterwards: garbage does not wedge it.
    let shown = decoder.decode(&frames[0]).expect("a good keyframe after garbage");
    assert!(shown.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn vp8_and_vp9_take_garbage_and_damaged_frames(
        codec in prop_oneof![Just(VideoCodec::Vp8), Just(VideoCodec::Vp9)],
        garbage in prop::collection::vec(any::<u8>(), 0..2048),
        flips in prop::collection::vec((any::<usize>(), 1u8..), 1..16),
        keep in 0.0f64..=1.0,
    ) {
        thread_local!(static FRAMES: [Vec<Vec<u8>>; 2] =
            [real_frames(VideoCodec::Vp8), real_frames(VideoCodec::Vp9)]);
        let which = usize::from(codec == VideoCodec::Vp9);
        FRAMES.with(|frames| video_survives(codec, &frames[which], &garbage, &flips, keep));
    }

    #[test]
    fn opus_takes_garbage_and_damaged_packets(
        garbage in prop::collection::vec(any::<u8>(), 0..1500),
        flips in prop::collection::vec((any::<usize>(), 1u8..), 1..8),
        keep in 0.0f64..=1.0,
    ) {
        let mut encoder = OpusEncoder::new(32).expect("encoder");
        let tone: Vec<i16> = (0..960).map(|i| ((i as f64 * 0.06).sin() * 8000.0) as i16).collect();
        let packet = encoder.encode(&tone).expect("encode");
        let mut decoder = OpusDecoder::new().expect("decoder");
        let mut out = vec![0i16; 5760];
        let _ = decoder.decode(&garbage, &mut out);
        let _ = decoder.recover(&garbage, &mut out);
        let damaged = mutate(&packet, &flips, keep);
        let _ = decoder.decode(&damaged, &mut out);
        let _ = decoder.recover(&damaged, &mut out);
        let _ = decoder.conceal(&mut out);
        prop_assert!(decoder.decode(&packet, &mut out).is_ok(), "a good packet after garbage");
    }
}
