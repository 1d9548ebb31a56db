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
//! echo while it learnt the room again. So each 10 ms of the far end is stamped with when it was
//! played and held back until the microphone's sound of that moment is processed.

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
/// canceller. An echo that reaches it before the sound that caused it cannot be taken out, and
/// the devices' reports of when they play and hear are only so exact: on a PulseAudio loop the
/// echo came at the very moment they gave, and a little early as often as late.
const FAR_END_LEAD: Duration = Duration::from_millis(30);
/// The most far end held for a microphone that is not being read (1 s); older goes unheard.
const FAR_END_LIMIT: usize = 100;

/// One microphone's processing, shared with the speaker that feeds it the far end.
#[derive(Clone)]
pub struct VoiceProcessing {
    inner: Arc<Mutex<Aligned>>,
}

/// The canceller, and the far end played but not yet due.
struct Aligned {
    processing: AudioProcessing,
    /// Each chunk of the far end with when it began to play.
    far_end: VecDeque<(Instant, [i16; CHUNK])>,
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
        let aligned = Aligned { processing, far_end: VecDeque::with_capacity(FAR_END_LIMIT) };
        Self { inner: Arc::new(Mutex::new(aligned)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aligned> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the speaker begins to play at `began_at` (48 kHz mono, whole 10 ms chunks). Only
    /// kept here: the speaker's callback never waits for the canceller.
    pub fn far_end(&self, played: &[i16], began_at: Instant) {
        let mut aligned = self.lock();
        for (n, chunk) in played.chunks_exact(CHUNK).enumerate() {
            if aligned.far_end.len() == FAR_END_LIMIT {
                aligned.far_end.pop_front();
            }
            let mut samples = [0i16; CHUNK];
            samples.copy_from_slice(chunk);
            aligned.far_end.push_back((began_at + CHUNK_DURATION * n as u32, samples));
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
        for (n, chunk) in heard.chunks_exact_mut(CHUNK).enumerate() {
            let ends_at = heard_at.checked_sub(CHUNK_DURATION * (chunks - 1 - n) as u32);
            let due = ends_at.map(|end| end + FAR_END_LEAD);
            // Locked per chunk, so the speaker's callback never waits for a whole frame.
            let mut aligned = self.lock();
            let Aligned { processing, far_end } = &mut *aligned;
            // The far end that began playing before this chunk was over (and a lead): what
            // this chunk can hold the echo of.
            while let Some((_, played)) =
                far_end.pop_front_if(|(began, _)| due.is_some_and(|due| *began <= due))
            {
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
