//! Cleaning the microphone before it is sent: echo cancellation (what the speaker played, heard
//! again by the microphone, is taken out), noise suppression and a high-pass filter, by
//! `sonora`, a pure-Rust port of WebRTC's audio processing (AEC3), the same that browsers run.
//!
//! [`VoiceProcessing`] is shared by both ends: the speaker hands it what it plays, from the
//! device's own callback ([`VoiceProcessing::far_end`]), and [`CleanMicrophone`] runs each
//! captured frame through it.

use std::sync::{Arc, Mutex, PoisonError};

use sonora::config::{EchoCanceller, MaxProcessingRate, NoiseSuppression, Pipeline};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::MediaError;
use crate::audio::{AudioSource, SAMPLE_RATE};

/// The processing works on 10 ms at a time.
pub(crate) const CHUNK: usize = SAMPLE_RATE as usize / 100;

/// One microphone's processing, shared with the speaker that feeds it the far end.
#[derive(Clone)]
pub struct VoiceProcessing {
    inner: Arc<Mutex<AudioProcessing>>,
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
        Self { inner: Arc::new(Mutex::new(processing)) }
    }

    /// What the speaker is about to play (48 kHz mono, whole 10 ms chunks).
    pub fn far_end(&self, played: &[i16]) {
        let mut unused = [0i16; CHUNK];
        for chunk in played.chunks_exact(CHUNK) {
            // Locked per chunk, so the speaker's callback never waits for a whole frame of the
            // microphone's processing.
            let mut processing = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            // Fails only for a chunk of the wrong length, which `chunks_exact` rules out.
            let _ = processing.process_render_i16(chunk, &mut unused);
        }
    }

    /// Cleans what the microphone heard (48 kHz mono, whole 10 ms chunks), in place.
    pub fn near_end(&self, heard: &mut [i16]) -> Result<(), MediaError> {
        if !heard.len().is_multiple_of(CHUNK) {
            return Err(MediaError::BadSetting(format!(
                "{} samples to clean: must be whole 10 ms chunks",
                heard.len()
            )));
        }
        let mut clean = [0i16; CHUNK];
        for chunk in heard.chunks_exact_mut(CHUNK) {
            let mut processing = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
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
        self.processing.near_end(frame)
    }
}
