//! Cleaning the microphone before it is sent: echo cancellation (what the speaker played, heard
//! again by the microphone, is taken out), noise suppression and a high-pass filter, by
//! `sonora`, a pure-Rust port of WebRTC's audio processing (AEC3), the same that browsers run.
//!
//! [`VoiceProcessing`] is shared by both ends: the speaker hands it what it plays, from the
//! device's own callback ([`VoiceProcessing::far_end`]), and [`CleanMicrophone`] runs each
//! captured frame through it.
//!
//! The canceller finds the delay from speaker to microphone by lining up the two streams as
//! they reach it, so they must reach it in step. The two devices' callbacks come in bursts at
//! unrelated moments, and the microphone is read later still; handed over as they came, the
//! streams slid against each other by tens of ms, and each slide cost the canceller seconds of
//! echo while it learnt the room again. So each 10 ms of the far end is stamped with when it
//! plays and held back until the microphone's sound of that moment (less a lead, see
//! [`FAR_END_LEAD`]) is processed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sonora::config::{EchoCanceller, MaxProcessingRate, NoiseSuppression, Pipeline};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::MediaError;
use crate::audio::{AudioSource, SAMPLE_RATE};

/// The processing works on 10 ms at a time.
pub(crate) const CHUNK: usize = SAMPLE_RATE as usize / 100;

/// The length of one chunk.
const CHUNK_DURATION: Duration = Duration::from_millis(10);
/// How long before the microphone's sound of the same moment the far end reaches the
/// canceller. The devices' reports of when they play and hear are only so exact: on a
/// PulseAudio loop the echo came at the very moment they gave, a little early as often as late,
/// and without a lead the canceller took a noise-like echo only 5 dB down (9 runs in 10 of the
/// CLI's room test); with 20 to 30 ms, 20 to 50 dB. (A simulated room with the same timing
/// errors is cancelled either way: what PulseAudio does differently is not understood.)
const FAR_END_LEAD: Duration = Duration::from_millis(20);
/// The most far end held for a microphone that is not being read (1 s); older goes unheard.
const FAR_END_LIMIT: usize = 100;

/// A chunk of the far end, and when it begins to play.
type Played = (Instant, [i16; CHUNK]);

/// One microphone's processing, shared with the speaker that feeds it the far end.
#[derive(Clone)]
pub struct VoiceProcessing {
    /// The far end not yet due. A lock of its own,
    /// held only to push or pop: the speaker's real-time callback never waits for the canceller.
    far_end: Arc<Mutex<VecDeque<Played>>>,
    processing: Arc<Mutex<AudioProcessing>>,
}

impl std::fmt::Debug for VoiceProcessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceProcessing")
    }
}

impl VoiceProcessing {
    /// Echo cancellation, noise suppression and the high-pass filter, at the full 48 kHz.
    pub fn new() -> Self {
        let config = Config {
            pipeline: Pipeline {
                maximum_internal_processing_rate: MaxProcessingRate::Rate48kHz,
                ..Default::default()
            },
            echo_canceller: Some(EchoCanceller::default()),
            noise_suppression: Some(NoiseSuppression::default()),
            ..Default::default()
        };
        let mono = StreamConfig::new(SAMPLE_RATE, 1);
        let processing = AudioProcessing::builder()
            .config(config)
            .capture_config(mono)
            .render_config(mono)
            .build();
        Self {
            far_end: Arc::new(Mutex::new(VecDeque::with_capacity(FAR_END_LIMIT))),
            processing: Arc::new(Mutex::new(processing)),
        }
    }

    /// What the speaker begins to play at `began_at` (48 kHz mono, whole 10 ms chunks). Only
    /// queued here: the speaker's callback never waits for the canceller.
    pub fn far_end(&self, played: &[i16], began_at: Instant) {
        let mut far_end = self.far_end.lock().unwrap_or_else(PoisonError::into_inner);
        for (n, chunk) in played.chunks_exact(CHUNK).enumerate() {
            if far_end.len() == FAR_END_LIMIT {
                far_end.pop_front();
            }
            let mut samples = [0i16; CHUNK];
            samples.copy_from_slice(chunk);
            far_end.push_back((began_at + CHUNK_DURATION * n as u32, samples));
        }
    }

    /// Cleans what the microphone heard (48 kHz mono, whole 10 ms chunks) in place; its last
    /// sample was heard at `heard_at`.
    pub fn near_end(&self, heard: &mut [i16], heard_at: Instant) -> Result<(), MediaError> {
        if !heard.len().is_multiple_of(CHUNK) {
            return Err(MediaError::BadSetting(format!(
                "{} samples to clean: must be whole 10 ms chunks",
                heard.len()
            )));
        }
        let chunks = heard.len() / CHUNK;
        let (mut clean, mut unused) = ([0i16; CHUNK], [0i16; CHUNK]);
        let mut processing = self.processing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due_now = Vec::new();
        for (n, chunk) in heard.chunks_exact_mut(CHUNK).enumerate() {
            let ends_at = heard_at.checked_sub(CHUNK_DURATION * (chunks - 1 - n) as u32);
            let due = ends_at.map(|end| end + FAR_END_LEAD);
            // The far end that began playing before this chunk was over (and a lead): what
            // this chunk can hold the echo of. Taken out first, so the queue's lock is brief.
            {
                let mut far_end = self.far_end.lock().unwrap_or_else(PoisonError::into_inner);
                while let Some((_, played)) =
                    far_end.pop_front_if(|(began, _)| due.is_some_and(|due| *began <= due))
                {
                    due_now.push(played);
                }
            }
            for played in due_now.drain(..) {
                // Fails only for a chunk of the wrong length, which cannot be.
                let _ = processing.process_render_i16(&played, &mut unused);
            }
            processing.process_capture_i16(chunk, &mut clean).map_err(|e| MediaError::Device {
                op: "clean the microphone's sound",
                detail: e.to_string(),
            })?;
            chunk.copy_from_slice(&clean);
        }
        Ok(())
    }
}

impl Default for VoiceProcessing {
    fn default() -> Self {
        Self::new()
    }
}

/// A microphone whose sound is cleaned before it is sent.
#[derive(Debug)]
pub struct CleanMicrophone<S> {
    source: S,
    processing: VoiceProcessing,
}

impl<S: AudioSource> CleanMicrophone<S> {
    pub fn new(source: S, processing: VoiceProcessing) -> Self {
        Self { source, processing }
    }
}

impl<S: AudioSource> AudioSource for CleanMicrophone<S> {
    fn capture(&mut self, frame: &mut [i16]) -> Result<(), MediaError> {
        self.source.capture(frame)?;
        let heard_at = self.source.captured_at().unwrap_or_else(Instant::now);
        self.processing.near_end(frame, heard_at)
    }

    fn captured_at(&self) -> Option<Instant> {
        self.source.captured_at()
    }
}
