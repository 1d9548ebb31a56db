//! Audio: the [`AudioSource`] trait every capture implements, [`SineTone`] (the synthetic
//! microphone), Opus through the system libopus, and [`AudioPipeline`], the thread that hands
//! a 20 ms Opus frame to a [`FrameSink`] every 20 ms.
//!
//! Everything is 48 kHz mono: what WebRTC's Opus runs at, and one voice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::MediaError;
use crate::pipeline::{EncodedFrame, FrameSink, Pacer};

pub const SAMPLE_RATE: u32 = 48_000;
/// One frame of audio: 20 ms, what browsers send.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Samples in one frame.
pub const FRAME_SAMPLES: usize = 960;
/// Enough for any 20 ms Opus frame (the format's own limit is 1275 bytes).
const MAX_OPUS_FRAME_BYTES: usize = 1500;

/// Something that produces sound: a microphone, or a synthetic twin.
pub trait AudioSource: Send {
    /// Fills `frame` ([`FRAME_SAMPLES`] samples) with the next 20 ms, 48 kHz mono.
    fn capture(&mut self, frame: &mut [i16]) -> Result<(), MediaError>;

    /// When the last sample of the frame `capture` gave was heard, where the source knows it
    /// (a device, whose samples may wait in a queue); `None` means just now.
    fn captured_at(&self) -> Option<Instant> {
        None
    }
}

/// A microphone for machines with none: a steady sine tone, which a listener or a test can
/// recognise after a lossy codec by its pitch.
#[derive(Debug, Clone)]
pub struct SineTone {
    hz: u32,
    amplitude: f64,
    /// Samples produced so far; the phase is computed from it, so it never drifts.
    sample: u64,
}

impl SineTone {
    /// A tone of `hz` (20 Hz to 20 kHz) at a quarter of full scale.
    pub fn new(hz: u32) -> Result<Self, MediaError> {
        if !(20..=20_000).contains(&hz) {
            return Err(MediaError::BadSetting(format!("a tone of {hz} Hz: must be 20 to 20000")));
        }
        Ok(Self { hz, amplitude: f64::from(i16::MAX) / 4.0, sample: 0 })
    }
}

impl AudioSource for SineTone {
    fn capture(&mut self, frame: &mut [i16]) -> Result<(), MediaError> {
        let step = std::f64::consts::TAU * f64::from(self.hz) / f64::from(SAMPLE_RATE);
        for out in frame.iter_mut() {
            // Whole seconds (whole cycles: the pitch is in whole hertz) are dropped first, so the
            // angle stays small and exact however long the tone runs.
            let within = self.sample % u64::from(SAMPLE_RATE);
            *out = (((within as f64) * step).sin() * self.amplitude) as i16;
            self.sample += 1;
        }
        Ok(())
    }
}

/// A microphone twin for measuring delay: a beep for the first [`BEEP_MS`] of every
/// [`BEEP_EVERY_MS`] of the wall clock, silence between. A listener on the same machine knows
/// when each beep began without being told: its delay is the time it starts hearing one,
/// modulo [`BEEP_EVERY_MS`].
///
/// Each beep is a tone with as much noise again: sound spread over many pitches, as a voice's
/// is. A pure tone repeats itself every cycle, so an echo canceller cannot tell its delay, and
/// would be judged on a sound no one makes.
#[derive(Debug, Clone)]
pub struct Beeps {
    tone: SineTone,
    /// The noise generator's state (xorshift32: any fixed sequence will do).
    noise: u32,
}

/// How often a beep starts, and how long it lasts, in wall-clock milliseconds.
pub const BEEP_EVERY_MS: f64 = 500.0;
pub const BEEP_MS: f64 = 100.0;

impl Beeps {
    /// Beeps at `hz` (20 Hz to 20 kHz).
    pub fn new(hz: u32) -> Result<Self, MediaError> {
        Ok(Self { tone: SineTone::new(hz)?, noise: 0x5eed_5eed })
    }
}

impl AudioSource for Beeps {
    fn capture(&mut self, frame: &mut [i16]) -> Result<(), MediaError> {
        self.tone.capture(frame)?;
        for sample in frame.iter_mut() {
            self.noise ^= self.noise << 13;
            self.noise ^= self.noise >> 17;
            self.noise ^= self.noise << 5;
            // 12 bits, centred, to the tone's own strength.
            let noise = ((self.noise >> 20) as i16 - 2048) * 2;
            *sample = (*sample / 2).saturating_add(noise);
        }
        // The frame is the last 20 ms, as a microphone delivers it: it ends now.
        silence_between_beeps(frame, wall_clock_ms());
        Ok(())
    }
}

/// Silences the samples of `frame`, which ends at `ends_ms` on the wall clock, that fall
/// outside a beep.
fn silence_between_beeps(frame: &mut [i16], ends_ms: f64) {
    let ms_per_sample = 1000.0 / f64::from(SAMPLE_RATE);
    let starts = ends_ms - frame.len() as f64 * ms_per_sample;
    for (i, sample) in frame.iter_mut().enumerate() {
        if (starts + i as f64 * ms_per_sample).rem_euclid(BEEP_EVERY_MS) >= BEEP_MS {
            *sample = 0;
        }
    }
}

/// The UNIX time in milliseconds, with its fraction.
pub fn wall_clock_ms() -> f64 {
    let since_epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs_f64() * 1000.0
}

/// How much of `samples`' energy is at `hz` (Goertzel's algorithm): about 1 for a pure tone at
/// that pitch, about 0 for anything else. `hz` should fall on a whole bin of the window.
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let n = samples.len() as f64;
    let coeff = 2.0 * (std::f64::consts::TAU * hz / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    let mut energy = 0.0;
    for &x in samples {
        let x = f64::from(x);
        let s0 = x + coeff * s1 - s2;
        (s2, s1) = (s1, s0);
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if energy == 0.0 { 0.0 } else { power / (n / 2.0 * energy) }
}

/// libopus's encoder in VoIP mode, with in-band FEC so a lost packet can be rebuilt.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: opus::Encoder,
}

fn opus_error(op: &'static str) -> impl FnOnce(opus::Error) -> MediaError {
    move |e| MediaError::Opus { op, detail: e.to_string() }
}

impl OpusEncoder {
    /// `bitrate_kbps` from 6 to 510, Opus's range.
    pub fn new(bitrate_kbps: u32) -> Result<Self, MediaError> {
        if !(6..=510).contains(&bitrate_kbps) {
            return Err(MediaError::BadSetting(format!(
                "{bitrate_kbps} kbit/s for Opus: must be 6 to 510"
            )));
        }
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(opus_error("create the encoder"))?;
        let bits = i32::try_from(bitrate_kbps * 1000).unwrap_or(i32::MAX);
        inner.set_bitrate(opus::Bitrate::Bits(bits)).map_err(opus_error("set the bitrate"))?;
        inner.set_inband_fec(true).map_err(opus_error("turn on FEC"))?;
        Ok(Self { inner })
    }

    /// The share of packets the receivers lose, 0 to 100 %: libopus puts that much redundancy
    /// (in-band FEC) in each packet for the next to rebuild it from, and none at 0.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), MediaError> {
        let percent = i32::from(percent.min(100));
        self.inner.set_packet_loss_perc(percent).map_err(opus_error("set the expected loss"))
    }

    /// Encodes one 20 ms frame ([`FRAME_SAMPLES`] samples).
    pub fn encode(&mut self, frame: &[i16]) -> Result<Vec<u8>, MediaError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(MediaError::BadSetting(format!(
                "an audio frame of {} samples: must be {FRAME_SAMPLES}",
                frame.len()
            )));
        }
        self.encode_any(frame)
    }

    /// Encodes a frame of any length Opus takes (2.5 to 60 ms), as other senders may use.
    pub fn encode_any(&mut self, frame: &[i16]) -> Result<Vec<u8>, MediaError> {
        self.inner.encode_vec(frame, MAX_OPUS_FRAME_BYTES).map_err(opus_error("encode"))
    }
}

/// libopus's decoder, 48 kHz mono.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, MediaError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
            .map_err(opus_error("create the decoder"))?;
        Ok(Self { inner })
    }

    /// Decodes one packet into `out` (room for at least [`FRAME_SAMPLES`]); returns how many
    /// samples it wrote.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        self.inner.decode(packet, out, false).map_err(opus_error("decode"))
    }

    /// The frame before `next_packet`, which was lost, rebuilt from `next_packet`'s in-band
    /// FEC (or concealed, if it carries none) into `out`, whose length says how much was lost.
    pub fn recover(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, MediaError> {
        self.inner.decode(next_packet, out, true).map_err(opus_error("recover a lost frame"))
    }

    /// Sound that fits after what was decoded, for a packet that never came, filling `out`
    /// (a multiple of 2.5 ms).
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, MediaError> {
        self.inner.decode(&[], out, false).map_err(opus_error("conceal a lost frame"))
    }
}

/// A running source → Opus → sink thread. Dropping it stops the thread within a frame.
#[derive(Debug)]
pub struct AudioPipeline {
    /// The loss the receivers report, in %; the thread hands a change to the encoder.
    expected_loss: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
}

impl AudioPipeline {
    /// Starts capturing from `source` and encoding at `bitrate_kbps`. Every frame stands on
    /// its own, so each is marked a keyframe: a listener can start anywhere.
    pub fn start(
        mut source: Box<dyn AudioSource>,
        bitrate_kbps: u32,
        mut sink: impl FrameSink,
    ) -> Result<Self, MediaError> {
        let mut encoder = OpusEncoder::new(bitrate_kbps)?;
        let stop = Arc::new(AtomicBool::new(false));
        let expected_loss = Arc::new(AtomicU8::new(0));
        let (stopped, loss) = (stop.clone(), expected_loss.clone());
        std::thread::Builder::new().name("confab-audio".into()).spawn(move || {
            let mut pacer = Pacer::new(FRAME_DURATION);
            let mut samples = vec![0i16; FRAME_SAMPLES];
            let mut told_loss = 0;
            while !stopped.load(Ordering::Relaxed) {
                pacer.wait();
                if !sink.wanted() {
                    continue;
                }
                let expected = loss.load(Ordering::Relaxed);
                // A refused change leaves the encoder as it was; it is asked again next frame.
                if expected != told_loss && encoder.set_expected_loss(expected).is_ok() {
                    told_loss = expected;
                }
                let captured_at = Instant::now();
                let encoded = source.capture(&mut samples).and_then(|()| encoder.encode(&samples));
                let data = match encoded {
                    Ok(data) => data,
                    Err(e) => {
                        sink.failed(e);
                        return;
                    }
                };
                let frame =
                    EncodedFrame { data, keyframe: true, captured_at, duration: FRAME_DURATION };
                if !sink.deliver(frame) {
                    return;
                }
            }
        })?;
        Ok(Self { expected_loss, stop })
    }

    /// The receivers lose `percent` of the packets: that much redundancy goes in each.
    pub fn set_expected_loss(&self, percent: u8) {
        self.expected_loss.store(percent.min(100), Ordering::Relaxed);
    }

    /// The loss the frames are protected for, in %.
    pub fn expected_loss(&self) -> u8 {
        self.expected_loss.load(Ordering::Relaxed)
    }
}

impl Drop for AudioPipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beep_sounds_for_the_first_100_ms_of_each_half_second_of_the_wall_clock() {
        let mut tone = SineTone::new(440).unwrap();
        let mut frame = vec![0i16; FRAME_SAMPLES];
        tone.capture(&mut frame).unwrap();
        // This frame spans 490 to 510 ms past a whole second: silent, then the beep begins.
        silence_between_beeps(&mut frame, 1_700_000_000_510.0);
        let first_sound = frame.iter().position(|&s| s != 0).unwrap();
        assert!((479..=481).contains(&first_sound), "the beep starts at sample {first_sound}");
        assert!(frame[..first_sound].iter().all(|&s| s == 0));
        // One spanning 90 to 110 ms: sound, then silence after 100 ms.
        let mut frame = vec![0i16; FRAME_SAMPLES];
        tone.capture(&mut frame).unwrap();
        silence_between_beeps(&mut frame, 1_700_000_000_110.0);
        let last_sound = frame.iter().rposition(|&s| s != 0).unwrap();
        assert!((478..=480).contains(&last_sound), "the beep ends at sample {last_sound}");
    }
}
