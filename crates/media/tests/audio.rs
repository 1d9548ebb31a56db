//! The synthetic microphone through the real libopus encoder and decoder, and the pipeline thread.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::ToTest;
use confab_media::audio::{FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE};
use confab_media::{
    AudioPipeline, AudioSource, EncodedFrame, MediaError, OpusDecoder, OpusEncoder, SineTone,
};

/// The pitch of `samples`, from how often the signal crosses zero upwards.
fn pitch_hz(samples: &[i16]) -> f64 {
    let upward = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    upward as f64 * f64::from(SAMPLE_RATE) / samples.len() as f64
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[test]
fn a_tone_keeps_its_pitch_and_loudness_through_opus() {
    let mut tone = SineTone::new(440).expect("tone");
    let mut encoder = OpusEncoder::new(32).expect("encoder");
    let mut decoder = OpusDecoder::new().expect("decoder");
    let (mut sent, mut heard) = (Vec::new(), Vec::new());
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut out = vec![0i16; FRAME_SAMPLES];
    for _ in 0..50 {
        tone.capture(&mut frame).expect("capture");
        sent.extend_from_slice(&frame);
        let packet = encoder.encode(&frame).expect("encode");
        assert!(packet.len() < 200, "32 kbit/s is 80 bytes a frame, not {}", packet.len());
        let n = decoder.decode(&packet, &mut out).expect("decode");
        assert_eq!(n, FRAME_SAMPLES);
        heard.extend_from_slice(&out[..n]);
    }
    assert!((pitch_hz(&sent) - 440.0).abs() < 5.0, "the tone is {} Hz", pitch_hz(&sent));
    // The codec's first frames ramp up; judge the last half second.
    let settled = &heard[heard.len() / 2..];
    assert!((pitch_hz(settled) - 440.0).abs() < 10.0, "heard {} Hz", pitch_hz(settled));
    let (loud, quiet) = (rms(&sent), rms(settled));
    assert!(quiet > loud * 0.7 && quiet < loud * 1.3, "sent RMS {loud}, heard {quiet}");
}

#[test]
fn bad_audio_settings_and_input_are_errors_not_panics() {
    assert!(matches!(SineTone::new(0), Err(MediaError::BadSetting(_))));
    assert!(matches!(OpusEncoder::new(1), Err(MediaError::BadSetting(_))));
    let mut encoder = OpusEncoder::new(32).expect("encoder");
    assert!(matches!(encoder.encode(&[0; 100]), Err(MediaError::BadSetting(_))));
    let mut decoder = OpusDecoder::new().expect("decoder");
    let mut out = vec![0i16; FRAME_SAMPLES];
    assert!(matches!(decoder.decode(&[0xff; 3], &mut out), Err(MediaError::Opus { .. })));
}

#[test]
fn the_pipeline_hands_over_a_20_ms_frame_each_20_ms() {
    let (tx, rx) = mpsc::channel();
    let tone = SineTone::new(440).expect("tone");
    let pipeline = AudioPipeline::start(Box::new(tone), 32, ToTest(tx)).expect("pipeline");
    let wait = Duration::from_secs(10);
    let frames: Vec<EncodedFrame> =
        (0..25).map(|_| rx.recv_timeout(wait).expect("a frame")).collect();
    assert!(
        frames.iter().all(|f| f.keyframe && f.duration == FRAME_DURATION && !f.data.is_empty())
    );
    // Paced, not as fast as the encoder goes: 24 intervals of 20 ms, whatever the load (a stall
    // skips frames rather than bursting them, so never less).
    let span = frames[24].captured_at - frames[0].captured_at;
    assert!(span >= Duration::from_millis(24 * 20 - 5), "25 frames within {span:?}");
    drop(pipeline);
    while rx.recv_timeout(wait).is_ok() {}
    assert!(matches!(rx.recv_timeout(Duration::ZERO), Err(mpsc::RecvTimeoutError::Disconnected)));
}
