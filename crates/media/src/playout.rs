//! What the listener hears: every peer's voice through its own [`JitterBuffer`], mixed, and
//! handed to an [`AudioSink`] (the speaker, or a twin) every 20 ms by one thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::MediaError;
use crate::audio::{FRAME_DURATION, FRAME_SAMPLES};
use crate::jitter::{JitterBuffer, JitterStats, Played};
use crate::pipeline::Pacer;

/// Where the mixed sound goes: a speaker, or a twin.
pub trait AudioSink: Send {
    /// Plays the next 20 ms ([`FRAME_SAMPLES`] samples, 48 kHz mono).
    fn play(&mut self, frame: &[i16]) -> Result<(), MediaError>;
}

/// A speaker for machines with none, and for tests: it keeps what it was given.
#[derive(Debug, Clone, Default)]
pub struct SoundRecorder {
    played: Arc<Mutex<Vec<i16>>>,
}

impl SoundRecorder {
    /// Everything played so far.
    pub fn played(&self) -> Vec<i16> {
        self.played.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl AudioSink for SoundRecorder {
    fn play(&mut self, frame: &[i16]) -> Result<(), MediaError> {
        self.played.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(frame);
        Ok(())
    }
}

/// A speaker that plays nothing: the sound is still paced and mixed, so what each voice would
/// sound like can be measured (see [`Playout::add_voice`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl AudioSink for Silent {
    fn play(&mut self, _frame: &[i16]) -> Result<(), MediaError> {
        Ok(())
    }
}

/// Told about each 20 ms of one voice as it goes to the mix: the samples, and how they were
/// made.
pub type VoiceListener = Box<dyn FnMut(&[i16; FRAME_SAMPLES], Played) + Send>;

/// Told about each 20 ms of the whole mix as it goes to the speaker (for a recording), and how
/// long its sound was held back in the voices' buffers (the longest target among them).
pub type MixListener = Box<dyn FnMut(&[i16; FRAME_SAMPLES], Duration) + Send>;

struct Voice {
    buffer: JitterBuffer,
    listener: Option<VoiceListener>,
}

#[derive(Default)]
struct Shared {
    voices: Mutex<BTreeMap<u64, Voice>>,
    mix_listener: Mutex<Option<MixListener>>,
    next_voice: AtomicU64,
    /// Why the sink stopped, if it did.
    failure: Mutex<Option<String>>,
}

/// The running playout thread; dropping it stops the thread within 20 ms.
pub struct Playout {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Playout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playout").finish_non_exhaustive()
    }
}

impl Playout {
    /// Starts mixing into `sink`.
    pub fn start(mut sink: Box<dyn AudioSink>) -> Result<Self, MediaError> {
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (mixing, stopped) = (shared.clone(), stop.clone());
        std::thread::Builder::new().name("confab-playout".into()).spawn(move || {
            let mut pacer = Pacer::new(FRAME_DURATION);
            let mut voice = [0i16; FRAME_SAMPLES];
            let mut mix = [0i32; FRAME_SAMPLES];
            let mut out = [0i16; FRAME_SAMPLES];
            while !stopped.load(Ordering::Relaxed) {
                pacer.wait();
                mix.fill(0);
                let mut held_back_ms: f64 = 0.0;
                {
                    let mut voices = mixing.voices.lock().unwrap_or_else(PoisonError::into_inner);
                    for each in voices.values_mut() {
                        let played = each.buffer.pull(&mut voice);
                        if let Some(listener) = &mut each.listener {
                            listener(&voice, played);
                        }
                        for (sum, &sample) in mix.iter_mut().zip(&voice) {
                            *sum += i32::from(sample);
                        }
                        held_back_ms = held_back_ms.max(each.buffer.stats().target_ms);
                    }
                }
                for (out, &sum) in out.iter_mut().zip(&mix) {
                    *out = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                }
                if let Some(listener) =
                    &mut *mixing.mix_listener.lock().unwrap_or_else(PoisonError::into_inner)
                {
                    listener(&out, Duration::from_secs_f64(held_back_ms / 1000.0));
                }
                if let Err(e) = sink.play(&out) {
                    *mixing.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(e.to_string());
                    // Mixing goes on into nothing: the voices' buffers keep draining, and
                    // what they sound like is still reported.
                    sink = Box::new(Silent);
                }
            }
        })?;
        Ok(Self { shared, stop })
    }

    /// A new voice in the mix; `listener`, if given, hears it alone.
    pub fn add_voice(&self, listener: Option<VoiceListener>) -> Result<VoiceInput, MediaError> {
        let id = self.shared.next_voice.fetch_add(1, Ordering::Relaxed);
        let voice = Voice { buffer: JitterBuffer::new()?, listener };
        self.shared.voices.lock().unwrap_or_else(PoisonError::into_inner).insert(id, voice);
        Ok(VoiceInput { shared: self.shared.clone(), id })
    }

    /// From now on `listener` hears the whole mix, every 20 ms.
    pub fn listen_to_mix(&self, listener: MixListener) {
        *self.shared.mix_listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
    }

    /// Why the speaker stopped playing, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Playout {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Where one voice's packets go; the voice leaves the mix when this is dropped.
pub struct VoiceInput {
    shared: Arc<Shared>,
    id: u64,
}

impl std::fmt::Debug for VoiceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceInput").field("id", &self.id).finish()
    }
}

impl VoiceInput {
    /// An Opus packet with RTP timestamp `timestamp` arrived now.
    pub fn push(&self, timestamp: u32, packet: &[u8]) {
        let mut voices = self.shared.voices.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(voice) = voices.get_mut(&self.id) {
            voice.buffer.push(Instant::now(), timestamp, packet);
        }
    }

    pub fn stats(&self) -> JitterStats {
        let voices = self.shared.voices.lock().unwrap_or_else(PoisonError::into_inner);
        voices.get(&self.id).map(|voice| voice.buffer.stats()).unwrap_or_default()
    }
}

impl Drop for VoiceInput {
    fn drop(&mut self) {
        self.shared.voices.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}
