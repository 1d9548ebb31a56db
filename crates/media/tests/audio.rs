//! The synthetic microphone through the real libopus encoder and decoder, and the pipeline thread.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ToTest;
use confab_media::audio::{FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE};
use confab_media::{
    AudioPipeline, AudioSource, EncodedFrame, JitterBuffer, MediaError, OpusDecoder, OpusEncoder,
    Played, Playout, SineTone, SoundRecorder, VoiceProcessing, tone_share,
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

/// A voice as the network would carry it: `n` Opus packets of a 440 Hz tone, 20 ms each, with
/// in-band FEC, and RTP timestamps from `first_timestamp`.
fn voice_packets(n: usize, first_timestamp: u32) -> Vec<(u32, Vec<u8>)> {
    let mut tone = SineTone::new(440).expect("tone");
    let mut encoder = OpusEncoder::new(32).expect("encoder");
    // As a sender whose receivers report loss: each packet carries the one before it.
    encoder.set_expected_loss(10).expect("expected loss");
    let mut frame = vec![0i16; FRAME_SAMPLES];
    (0..n)
        .map(|i| {
            tone.capture(&mut frame).expect("capture");
            let timestamp = first_timestamp.wrapping_add((i * FRAME_SAMPLES) as u32);
            (timestamp, encoder.encode(&frame).expect("encode"))
        })
        .collect()
}

/// A small seeded generator, so a failing run can be replayed.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The first 20 ms pulled that was not silence.
fn first_sound(how: &[Played]) -> usize {
    how.iter().position(|&p| p != Played::Silence).expect("it plays")
}

/// The tone is heard: at least `share` of the sound in the 20 ms `frames` is at 440 Hz.
fn assert_mostly_440(heard: &[i16], frames: std::ops::Range<usize>, share: f64) {
    let voice = &heard[frames.start * FRAME_SAMPLES..frames.end * FRAME_SAMPLES];
    let at_440 = tone_share(voice, 440.0);
    assert!(at_440 > share, "a 440 Hz share of {at_440} in frames {frames:?}");
}

/// Plays a voice through a jitter buffer in virtual time: packet `i` arrives at
/// `arrival_ms(i)` (never, for `None`), and the listener pulls 20 ms every 20 ms for
/// `listen_ms`. Returns what was heard and how each frame was made.
fn listen(
    packets: &[(u32, Vec<u8>)],
    arrival_ms: impl Fn(usize) -> Option<u64>,
    listen_ms: u64,
) -> (JitterBuffer, Vec<i16>, Vec<Played>) {
    let t0 = Instant::now();
    let mut arrivals: Vec<(u64, usize)> =
        (0..packets.len()).filter_map(|i| arrival_ms(i).map(|at| (at, i))).collect();
    arrivals.sort();
    let mut buffer = JitterBuffer::new().expect("buffer");
    let (mut heard, mut how) = (Vec::new(), Vec::new());
    let mut next = arrivals.into_iter().peekable();
    let mut out = [0i16; FRAME_SAMPLES];
    for tick in 0..listen_ms / 20 {
        let now_ms = tick * 20;
        while let Some((_, i)) = next.next_if(|&(at, _)| at <= now_ms) {
            let (timestamp, data) = &packets[i];
            buffer.push(
                t0 + Duration::from_millis(arrival_ms(i).unwrap_or(now_ms)),
                *timestamp,
                data,
            );
        }
        how.push(buffer.pull(&mut out));
        heard.extend_from_slice(&out);
    }
    (buffer, heard, how)
}

#[test]
fn a_steady_voice_plays_every_frame_once_after_a_short_delay() {
    let packets = voice_packets(150, 123_456);
    // Listened to until the last frame, and no further: the silence after it would be concealed.
    let (buffer, heard, how) = listen(&packets, |i| Some(i as u64 * 20), 3020);
    let started = first_sound(&how);
    // Held back until 40 ms of sound is in hand (the least target), then played without a gap.
    assert_eq!(started, 1, "{how:?}");
    assert!(how[started..started + 150].iter().all(|&p| p == Played::Decoded), "{how:?}");
    let stats = buffer.stats();
    assert_eq!((stats.decoded, stats.concealed, stats.late, stats.skipped), (150, 0, 0, 0));
    assert_mostly_440(&heard, started + 10..started + 140, 0.9);
}

#[test]
fn at_10_percent_loss_the_voice_goes_on_rebuilt_from_fec_or_concealed() {
    let seed = 0x5eed_0001;
    let mut random = Seeded(seed);
    let lost: Vec<bool> = (0..250).map(|_| random.below(10) == 0).collect();
    let packets = voice_packets(250, 0);
    let (buffer, heard, how) = listen(&packets, |i| (!lost[i]).then_some(i as u64 * 20), 5200);
    let started = first_sound(&how);
    let playing = &how[started..started + 250];
    assert!(!playing.contains(&Played::Silence), "no gap (seed {seed:#x}): {how:?}");
    let stats = buffer.stats();
    let lost_count = lost.iter().filter(|&&l| l).count() as u64;
    assert!(lost_count >= 15, "seed {seed:#x} loses {lost_count}");
    let made_up = playing.iter().filter(|&&p| matches!(p, Played::Recovered | Played::Concealed));
    assert_eq!(made_up.count() as u64, lost_count, "each lost frame made up once: {how:?}");
    // A lost packet whose successor came is rebuilt from that successor's FEC.
    let rebuildable = (0..249).filter(|&i| lost[i] && !lost[i + 1]).count() as u64;
    assert_eq!(stats.recovered, rebuildable, "{stats:?}");
    assert_mostly_440(&heard, started + 10..started + 240, 0.8);
}

#[test]
fn reordered_packets_play_in_order_and_one_after_its_turn_is_dropped() {
    let packets = voice_packets(100, u32::MAX - 10 * FRAME_SAMPLES as u32);
    // Pairs swapped by 5 ms; packet 50 arrives half a second late. The timestamps wrap at 10.
    let arrival = |i: usize| {
        let base = i as u64 * 20 + if i.is_multiple_of(2) { 25 } else { 0 };
        Some(if i == 50 { base + 500 } else { base })
    };
    let (buffer, heard, how) = listen(&packets, arrival, 2400);
    let started = first_sound(&how);
    let stats = buffer.stats();
    assert_eq!((stats.decoded, stats.late), (99, 1), "{stats:?}");
    assert_eq!(stats.recovered, 1, "the late one was rebuilt from its successor in time");
    assert!(!how[started..started + 100].contains(&Played::Silence), "{how:?}");
    assert_mostly_440(&heard, started + 5..started + 95, 0.9);
}

#[test]
fn jitter_lengthens_the_delay_and_after_a_stall_it_refills_then_comes_back_down() {
    let seed = 0x5eed_0002;
    let mut random = Seeded(seed);
    let jitter: Vec<u64> = (0..400).map(|_| random.below(60)).collect();
    let packets = voice_packets(400, 0);
    // Jittery for 4 s; then nothing for a second, and the second's packets all at once.
    let arrival = |i: usize| match i {
        0..200 => Some(i as u64 * 20 + jitter[i]),
        200..250 => Some(5000),
        _ => Some(i as u64 * 20 + jitter[i]),
    };
    let (buffer, _, how) = listen(&packets, arrival, 8400);
    let stats = buffer.stats();
    assert!(stats.jitter_ms > 10.0, "jitter {:.1} ms (seed {seed:#x})", stats.jitter_ms);
    assert!(
        (70.0..=250.0).contains(&stats.target_ms),
        "the target follows the jitter: {:.0} ms for {:.1} ms (seed {seed:#x})",
        stats.target_ms,
        stats.jitter_ms
    );
    // The stall: concealed briefly, then quiet rather than made up for a whole second.
    let stall = &how[(4000 / 20)..(5000 / 20)];
    let concealed = stall.iter().filter(|&&p| p == Played::Concealed).count();
    assert!(concealed <= 6 && stall.ends_with(&[Played::Silence; 10]), "{stall:?}");
    // The burst is mostly skipped, not played a second late, and what follows plays whole.
    assert!(stats.skipped >= 30, "{stats:?}");
    let after = &how[(5300 / 20)..(8000 / 20)];
    let made_up = after.iter().filter(|&&p| p != Played::Decoded).count();
    assert!(made_up <= 2, "after the burst (seed {seed:#x}): {after:?}");
}

#[test]
fn ten_ms_packets_play_without_gaps() {
    let mut tone = SineTone::new(440).expect("tone");
    let mut encoder = OpusEncoder::new(32).expect("encoder");
    let mut frame = vec![0i16; FRAME_SAMPLES / 2];
    let packets: Vec<(u32, Vec<u8>)> = (0..300u32)
        .map(|i| {
            tone.capture(&mut frame).expect("capture");
            (i * 480, encoder.encode_any(&frame).expect("encode"))
        })
        .collect();
    let (buffer, heard, how) = listen(&packets, |i| Some(i as u64 * 10), 3020);
    let started = first_sound(&how);
    assert!(how[started..started + 140].iter().all(|&p| p == Played::Decoded), "{how:?}");
    assert_eq!(buffer.stats().concealed, 0);
    assert_mostly_440(&heard, started + 10..started + 140, 0.9);
}

#[test]
fn a_sender_whose_clock_jumps_back_is_heard_again_within_a_second() {
    let first = voice_packets(100, 5_000_000);
    let again = voice_packets(100, 1_000);
    let packets: Vec<_> = first.into_iter().chain(again).collect();
    let (_, _, how) = listen(&packets, |i| Some(i as u64 * 20), 4200);
    // The second stream starts at 2 s; within a second it plays again.
    let later = &how[(3000 / 20)..(4000 / 20)];
    assert!(later.iter().all(|&p| p == Played::Decoded), "{later:?}");
}

#[test]
fn garbage_packets_are_concealed_not_a_panic() {
    let mut buffer = JitterBuffer::new().expect("buffer");
    let t0 = Instant::now();
    let mut out = [0i16; FRAME_SAMPLES];
    for i in 0..10u32 {
        buffer.push(t0 + Duration::from_millis(u64::from(i) * 20), i * 960, &[0xff; 3]);
        buffer.pull(&mut out);
    }
    let stats = buffer.stats();
    assert!(stats.errors >= 5 && stats.decoded == 0, "{stats:?}");
}

#[test]
fn the_playout_mixes_every_voice_and_a_voice_that_leaves_leaves_the_mix() {
    let speaker = SoundRecorder::default();
    let playout = Playout::start(Box::new(speaker.clone())).expect("playout");
    let voices: Vec<_> = [440, 660]
        .into_iter()
        .map(|hz| {
            let mut tone = SineTone::new(hz).expect("tone");
            let mut encoder = OpusEncoder::new(32).expect("encoder");
            (playout.add_voice(None).expect("a voice"), move |frame: &mut Vec<i16>| {
                tone.capture(frame).expect("capture");
                encoder.encode(frame).expect("encode")
            })
        })
        .collect();
    let mut voices = voices;
    let mut frame = vec![0i16; FRAME_SAMPLES];
    // Packets at the pace a peer sends them, for 1.5 s from both, then 1.5 s from the first.
    let start = Instant::now();
    for n in 0..150u32 {
        if n == 75 {
            voices.truncate(1);
        }
        for (input, next_packet) in &mut voices {
            let packet = next_packet(&mut frame);
            input.push(n * FRAME_SAMPLES as u32, &packet);
        }
        let due = start + FRAME_DURATION * (n + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    drop(voices);
    drop(playout);
    let played = speaker.played();
    // What played in the middle of each stretch: both tones, then the first alone.
    let second = |at: f64| &played[(at * 48_000.0) as usize..((at + 0.5) * 48_000.0) as usize];
    assert!(played.len() >= 140 * FRAME_SAMPLES, "{} samples played", played.len());
    let (both, one) = (second(0.5), second(2.2));
    let shares = |s: &[i16]| (tone_share(s, 440.0), tone_share(s, 660.0));
    let (a, b) = shares(both);
    assert!(a > 0.3 && b > 0.3, "both voices in the mix: {a:.2} at 440 Hz, {b:.2} at 660 Hz");
    let (a, b) = shares(one);
    assert!(a > 0.9 && b < 0.05, "the first alone: {a:.2} at 440 Hz, {b:.2} at 660 Hz");
}

#[test]
fn echo_cancellation_takes_the_speaker_out_of_the_microphone_and_keeps_the_voice() {
    let processing = VoiceProcessing::new();
    let mut random = Seeded(0x5eed_0003);
    let mut voice = SineTone::new(660).expect("tone");
    // The room: the microphone hears the speaker 30 ms late at half strength.
    let delay = 30 * 48;
    let mut played: Vec<i16> = vec![0; delay];
    let (mut echo_in, mut echo_out, mut voice_in, mut voice_out) = (vec![], vec![], vec![], vec![]);
    let mut near = vec![0i16; FRAME_SAMPLES];
    let start = Instant::now();
    for n in 0..400 {
        let now = start + FRAME_DURATION * n;
        // A far end with a voice's spread of pitches: band-limited noise.
        let far: Vec<i16> =
            (0..FRAME_SAMPLES).map(|_| (random.below(8000) as i32 - 4000) as i16).collect();
        processing.far_end(&far, now);
        played.extend_from_slice(&far);
        let echo: Vec<i16> = played.drain(..FRAME_SAMPLES).map(|s| s / 2).collect();
        // The last second, the person near the microphone talks too.
        let talking = n >= 350;
        voice.capture(&mut near).expect("capture");
        let mut heard: Vec<i16> = echo
            .iter()
            .zip(&near)
            .map(|(&e, &v)| e.saturating_add(if talking { v / 2 } else { 0 }))
            .collect();
        let before = heard.clone();
        processing.near_end(&mut heard, now + FRAME_DURATION).expect("process");
        if (250..350).contains(&n) {
            echo_in.extend_from_slice(&before);
            echo_out.extend_from_slice(&heard);
        } else if talking {
            voice_in.extend_from_slice(&before);
            voice_out.extend_from_slice(&heard);
        }
    }
    let db = |out: &[i16], inp: &[i16]| 20.0 * (rms(out) / rms(inp)).log10();
    let echo_reduction = db(&echo_out, &echo_in);
    assert!(echo_reduction < -20.0, "echo only {echo_reduction:.1} dB quieter");
    // While both talk, the near voice comes through: most of what is sent is its pitch.
    assert!(tone_share(&voice_out, 660.0) > 0.5, "the voice: {:.2}", tone_share(&voice_out, 660.0));
    assert!(rms(&voice_out) > rms(&voice_in) * 0.1);
}

#[test]
fn a_lost_frame_is_rebuilt_from_fec_only_once_a_loss_is_expected() {
    // How close the frame rebuilt from the next packet comes to what was lost, in dB (signal
    // to error), for a voice encoded expecting `percent` loss.
    let rebuilt_snr = |percent: u8| {
        // A new pitch every frame, as speech moves: what concealment, which continues the frame
        // before, cannot guess.
        let mut pitches = Seeded(0x5eed_0004);
        let mut encoder = OpusEncoder::new(32).expect("encoder");
        encoder.set_expected_loss(percent).expect("expected loss");
        let mut reference = OpusDecoder::new().expect("decoder");
        let mut listener = OpusDecoder::new().expect("decoder");
        let (mut frame, mut out) = (vec![0i16; FRAME_SAMPLES], vec![0i16; FRAME_SAMPLES]);
        let packets: Vec<Vec<u8>> = (0..50)
            .map(|_| {
                let mut voice = SineTone::new(300 + pitches.below(900) as u32).expect("tone");
                voice.capture(&mut frame).expect("capture");
                encoder.encode(&frame).expect("encode")
            })
            .collect();
        let (mut signal, mut error) = (0.0, 0.0);
        for (i, packet) in packets.iter().enumerate() {
            let mut heard = vec![0i16; FRAME_SAMPLES];
            reference.decode(packet, &mut out).expect("decode");
            if i > 0 && i % 10 == 0 {
                // Lost: rebuilt from the packet after it.
                listener.recover(&packets[i + 1], &mut heard).expect("recover");
                for (&want, &got) in out.iter().zip(&heard) {
                    signal += f64::from(want).powi(2);
                    error += (f64::from(want) - f64::from(got)).powi(2);
                }
            } else {
                listener.decode(packet, &mut heard).expect("decode");
            }
        }
        10.0 * (signal / error).log10()
    };
    let (none, expected) = (rebuilt_snr(0), rebuilt_snr(20));
    // Measured: 5.4 dB against 0.5 dB.
    assert!(expected > none + 3.0, "rebuilt at {expected:.1} dB expecting loss, {none:.1} dB not");
}
