//! Real microphones and speakers, through `cpal` (ALSA on Linux, and through it PulseAudio or
//! PipeWire; CoreAudio on macOS; WASAPI on Windows).
//!
//! [`Microphone`] is an [`AudioSource`] and [`Speaker`] an [`AudioSink`], the same traits as
//! their twins ([`crate::SineTone`], [`crate::SoundRecorder`]). Each device runs its own
//! callback thread; between it and us sits a short queue of samples, kept short on purpose: a
//! microphone read late, or a speaker fed early, must not add delay that stays.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, Device, SampleFormat, StreamConfig, SupportedBufferSize};

use crate::MediaError;
use crate::audio::{AudioSource, SAMPLE_RATE};
use crate::playout::AudioSink;
use crate::voice::{CHUNK, VoiceProcessing};

/// Samples per ms.
const PER_MS: usize = SAMPLE_RATE as usize / 1000;
/// The period asked of a device: 10 ms.
const PERIOD: u32 = 10 * PER_MS as u32;
/// The most either queue holds; beyond it the oldest sound goes.
const QUEUE_LIMIT: usize = 200 * PER_MS;
/// A microphone read after a pause keeps only this much of what piled up.
const MICROPHONE_BACKLOG: usize = 40 * PER_MS;
/// A speaker starts (and starts again after running dry) once it holds this much.
const SPEAKER_PREFILL: usize = 40 * PER_MS;
/// A speaker holding this much more than it starts with (sound that came in a burst after a
/// stall) drops back to the start level, so the delay does not stay long.
const SPEAKER_EXCESS: usize = 60 * PER_MS;
/// A speaker that asks for nothing for this long has stopped.
const SPEAKER_TIMEOUT: Duration = Duration::from_secs(2);
/// A microphone silent for this long has stopped.
const MICROPHONE_TIMEOUT: Duration = Duration::from_secs(2);

/// A microphone or speaker this machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDevice {
    /// What to pass to `open` (on Linux, the ALSA name: `default`, `pulse`, `hw:CARD=0,DEV=0`).
    pub id: String,
    /// What to show a person.
    pub name: String,
}

/// Which way a device carries sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

impl Direction {
    fn what(self) -> &'static str {
        match self {
            Self::Input => "microphone",
            Self::Output => "speaker",
        }
    }
}

fn device_error(op: &'static str) -> impl Fn(cpal::Error) -> MediaError {
    move |e| MediaError::Device { op, detail: e.to_string() }
}

fn devices(direction: Direction) -> Result<Vec<(AudioDevice, Device)>, MediaError> {
    let host = cpal::default_host();
    let all = host.devices().map_err(device_error("list the sound devices"))?;
    Ok(all
        .filter(|device| match direction {
            Direction::Input => device.supports_input(),
            Direction::Output => device.supports_output(),
        })
        .filter_map(|device| {
            let id = device.id().ok()?.id().to_owned();
            let name = device.description().map_or_else(|_| id.clone(), |d| d.name().to_owned());
            Some((AudioDevice { id, name }, device))
        })
        .collect())
}

/// The microphones this machine has.
pub fn microphones() -> Result<Vec<AudioDevice>, MediaError> {
    Ok(devices(Direction::Input)?.into_iter().map(|(about, _)| about).collect())
}

/// The speakers this machine has.
pub fn speakers() -> Result<Vec<AudioDevice>, MediaError> {
    Ok(devices(Direction::Output)?.into_iter().map(|(about, _)| about).collect())
}

/// The device called `id` (or named so), or the system's default; an unknown one is refused
/// with the list of those there are.
fn find(direction: Direction, id: Option<&str>) -> Result<(AudioDevice, Device), MediaError> {
    let what = direction.what();
    let Some(id) = id else {
        let host = cpal::default_host();
        let device = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        let device = device.ok_or_else(|| {
            MediaError::Unavailable(format!(
                "this machine has no {what} (no default {what} device)"
            ))
        })?;
        let id = device.id().map_or_else(|_| "default".to_owned(), |id| id.id().to_owned());
        let name = device.description().map_or_else(|_| id.clone(), |d| d.name().to_owned());
        return Ok((AudioDevice { id, name }, device));
    };
    let mut all = devices(direction)?;
    let known: Vec<String> = all.iter().map(|(about, _)| about.id.clone()).collect();
    let at = all.iter().position(|(about, _)| about.id == id || about.name == id);
    match at {
        Some(at) => Ok(all.swap_remove(at)),
        None => Err(MediaError::Unavailable(format!(
            "no {what} called {id:?}; there are: {}",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ))),
    }
}

/// 48 kHz in 32-bit float or 16-bit integers, mono if the device has it, else stereo (mixed
/// down or copied); 10 ms periods, or as near as the device allows.
fn stream_config(
    device: &Device,
    direction: Direction,
    name: &str,
) -> Result<(StreamConfig, SampleFormat), MediaError> {
    let ranges: Vec<_> = match direction {
        Direction::Input => device.supported_input_configs().map(Iterator::collect),
        Direction::Output => device.supported_output_configs().map(Iterator::collect),
    }
    .map_err(device_error("read what the sound device supports"))?;
    let chosen = [SampleFormat::F32, SampleFormat::I16].iter().find_map(|&format| {
        [1u16, 2].iter().find_map(|&channels| {
            ranges
                .iter()
                .filter(|r| r.sample_format() == format && r.channels() == channels)
                .find_map(|r| r.try_with_sample_rate(SAMPLE_RATE))
        })
    });
    let Some(supported) = chosen else {
        let offered: Vec<String> = ranges
            .iter()
            .map(|r| {
                let (min, max) = (r.min_sample_rate(), r.max_sample_rate());
                format!("{} ch {} {min}–{max} Hz", r.channels(), r.sample_format())
            })
            .collect();
        return Err(MediaError::Unavailable(format!(
            "the {} {name:?} cannot run at 48 kHz in mono or stereo, as 32-bit float or 16-bit \
             samples; it offers {}",
            direction.what(),
            if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") }
        )));
    };
    // Short periods: little delay, and above all a delay that does not wander, which the echo
    // canceller would have to learn again.
    let buffer_size = match supported.buffer_size() {
        SupportedBufferSize::Range { min, max } => BufferSize::Fixed(PERIOD.clamp(*min, *max)),
        SupportedBufferSize::Unknown => BufferSize::Default,
    };
    let format = supported.sample_format();
    Ok((StreamConfig { buffer_size, ..supported.config() }, format))
}

/// The samples between a device's callback and us.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    samples: VecDeque<i16>,
    /// What the device reported when it failed.
    failed: Option<String>,
    /// For a speaker: playing (not waiting to fill up).
    playing: bool,
    /// When the device last took or gave sound.
    last_callback: Option<Instant>,
    /// For a microphone: when the newest sample in the queue was heard.
    newest_heard_at: Option<Instant>,
    /// For a microphone: when the last sample taken from the queue was heard.
    taken_heard_at: Option<Instant>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The device reported `error`. Only a device that went away is the end: cpal recovers
    /// from the rest itself (an underrun or overrun costs a moment of sound).
    fn error(&self, error: &cpal::Error) {
        if error.kind() == cpal::ErrorKind::DeviceNotAvailable {
            self.lock().failed = Some(error.to_string());
            self.changed.notify_all();
        }
    }
}

fn push_limited(samples: &mut VecDeque<i16>, new: impl IntoIterator<Item = i16>) {
    samples.extend(new);
    let excess = samples.len().saturating_sub(QUEUE_LIMIT);
    samples.drain(..excess);
}

/// How long `samples` play.
fn duration_of(samples: usize) -> Duration {
    Duration::from_micros(samples as u64 * 1000 / PER_MS as u64)
}

fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
}

/// A real microphone, 48 kHz mono.
pub struct Microphone {
    name: String,
    queue: Arc<Queue>,
    _stream: cpal::Stream,
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microphone").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Microphone {
    /// Opens the microphone `id` (see [`microphones`]), or the default one.
    pub fn open(id: Option<&str>) -> Result<Self, MediaError> {
        let (about, device) = find(Direction::Input, id)?;
        let (config, format) = stream_config(&device, Direction::Input, &about.name)?;
        let queue = Arc::new(Queue::default());
        let stream = match format {
            SampleFormat::I16 => input_stream::<i16>(&device, config, &queue),
            _ => input_stream::<f32>(&device, config, &queue),
        }?;
        stream.play().map_err(device_error("start the microphone"))?;
        Ok(Self { name: about.name, queue, _stream: stream })
    }
}

/// A microphone's stream in samples of `T`, mixed down to mono into `queue`.
fn input_stream<T>(
    device: &Device,
    config: StreamConfig,
    queue: &Arc<Queue>,
) -> Result<cpal::Stream, MediaError>
where
    T: cpal::SizedSample,
    f32: cpal::FromSample<T>,
{
    let channels = usize::from(config.channels);
    let (filled, failed) = (queue.clone(), queue.clone());
    device
        .build_input_stream(
            config,
            move |data: &[T], info: &cpal::InputCallbackInfo| {
                let mono = data.chunks_exact(channels).map(|frame| {
                    let sum: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum();
                    to_i16(sum / channels as f32)
                });
                let mut state = filled.lock();
                push_limited(&mut state.samples, mono);
                // The device says when the first of these samples was heard; the last came a
                // period later.
                let stamp = info.timestamp();
                let waited = stamp.callback.duration_since(stamp.capture);
                let period = duration_of(data.len() / channels);
                state.newest_heard_at = Instant::now().checked_sub(waited).map(|at| at + period);
                drop(state);
                filled.changed.notify_all();
            },
            move |error| failed.error(&error),
            None,
        )
        .map_err(device_error("open the microphone"))
}

impl AudioSource for Microphone {
    fn capture(&mut self, frame: &mut [i16]) -> Result<(), MediaError> {
        let deadline = Instant::now() + MICROPHONE_TIMEOUT;
        let mut state = self.queue.lock();
        loop {
            if let Some(failed) = &state.failed {
                return Err(MediaError::SourceEnded(format!("the microphone failed: {failed}")));
            }
            if state.samples.len() >= frame.len() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(MediaError::SourceEnded(format!(
                    "the microphone {:?} stopped delivering sound",
                    self.name
                )));
            }
            state = self
                .queue
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // What piled up while nobody read is old: only the latest is sent.
        let stale = state.samples.len().saturating_sub(frame.len() + MICROPHONE_BACKLOG);
        state.samples.drain(..stale);
        let wanted = frame.len();
        for (out, sample) in frame.iter_mut().zip(state.samples.drain(..wanted)) {
            *out = sample;
        }
        // Those still queued were heard after ours.
        let queued = duration_of(state.samples.len());
        state.taken_heard_at = state.newest_heard_at.and_then(|at| at.checked_sub(queued));
        Ok(())
    }

    fn captured_at(&self) -> Option<Instant> {
        self.queue.lock().taken_heard_at
    }
}

/// A real speaker, 48 kHz mono (copied to every channel). What it plays is handed, as the
/// device takes it, to the echo canceller of the microphone beside it.
pub struct Speaker {
    name: String,
    queue: Arc<Queue>,
    _stream: cpal::Stream,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Speaker {
    /// Opens the speaker `id` (see [`speakers`]), or the default one; what it plays is the
    /// far end of `echo`, when given.
    pub fn open(id: Option<&str>, echo: Option<VoiceProcessing>) -> Result<Self, MediaError> {
        let (about, device) = find(Direction::Output, id)?;
        let (config, format) = stream_config(&device, Direction::Output, &about.name)?;
        let queue = Arc::new(Queue::default());
        let stream = match format {
            SampleFormat::I16 => output_stream::<i16>(&device, config, &queue, echo),
            _ => output_stream::<f32>(&device, config, &queue, echo),
        }?;
        stream.play().map_err(device_error("start the speaker"))?;
        Ok(Self { name: about.name, queue, _stream: stream })
    }
}

/// A speaker's stream in samples of `T`, each of `queue`'s copied to every channel; what it
/// plays goes to `echo` as the far end.
fn output_stream<T>(
    device: &Device,
    config: StreamConfig,
    queue: &Arc<Queue>,
    echo: Option<VoiceProcessing>,
) -> Result<cpal::Stream, MediaError>
where
    T: cpal::SizedSample + cpal::FromSample<f32>,
{
    let channels = usize::from(config.channels);
    let (drained, failed) = (queue.clone(), queue.clone());
    let mut played = Vec::with_capacity(CHUNK * 4);
    device
        .build_output_stream(
            config,
            move |data: &mut [T], info: &cpal::OutputCallbackInfo| {
                let mut state = drained.lock();
                let now = Instant::now();
                state.last_callback = Some(now);
                // The device says how long until this call's sound plays; what is left of the
                // last call's sound plays before it.
                let stamp = info.timestamp();
                let plays_at = now + stamp.playback.duration_since(stamp.callback);

                let began_at = plays_at.checked_sub(duration_of(played.len())).unwrap_or(now);
                // Starts once a little is in hand, so a late frame does not break the sound.
                state.playing |= state.samples.len() >= SPEAKER_PREFILL;
                for frame in data.chunks_exact_mut(channels) {
                    let sample = if state.playing { state.samples.pop_front() } else { None };
                    if sample.is_none() {
                        state.playing = false;
                    }
                    let sample = sample.unwrap_or(0);
                    played.push(sample);
                    frame.fill(T::from_sample(f32::from(sample) / f32::from(i16::MAX)));
                }
                drop(state);
                let whole = played.len() - played.len() % CHUNK;
                if let Some(echo) = &echo {
                    echo.far_end(&played[..whole], began_at);
                }
                played.drain(..whole);
            },
            move |error| failed.error(&error),
            None,
        )
        .map_err(device_error("open the speaker"))
}

impl AudioSink for Speaker {
    fn play(&mut self, frame: &[i16]) -> Result<(), MediaError> {
        let mut state = self.queue.lock();
        if let Some(failed) = &state.failed {
            return Err(MediaError::Device { op: "play sound", detail: failed.clone() });
        }
        // A stream that died without saying so stops asking for sound. (Not timed before its
        // first request: a device may take a while to start.)
        if state.last_callback.is_some_and(|at| at.elapsed() > SPEAKER_TIMEOUT) {
            let detail = format!("{:?} has not asked for sound for 2 s", self.name);
            return Err(MediaError::Device { op: "play sound", detail });
        }
        push_limited(&mut state.samples, frame.iter().copied());
        if state.samples.len() > SPEAKER_PREFILL + SPEAKER_EXCESS {
            let excess = state.samples.len() - SPEAKER_PREFILL;
            state.samples.drain(..excess);
        }
        Ok(())
    }
}
