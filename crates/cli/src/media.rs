//! What the CLI does with the peers' tracks when asked to take them (`--receive-media`,
//! `--speaker`, `--record`): decode each picture, put each voice through its jitter buffer into
//! the mix that is played (to the speaker, or to nothing), and report each track once a second —
//! frames decoded and picture size for video, the level of the sound as played for audio — and
//! once more when it ends; and record the meeting to a WebM file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use confab_core::decode::{Decoded, TrackDecoder};
use confab_core::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};
use confab_media::audio::{BEEP_EVERY_MS, FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE};
use confab_media::{
    OpusEncoder, Playout, VoiceInput, WebmRecorder, read_stamp, vp8_keyframe_size,
    wall_clock_millis, wall_clock_ms,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How often a track is reported while it plays.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One report on one incoming track, as the `track` JSON line prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackReport {
    pub peer: String,
    /// The track's number in this run: a track the peer sends again (after a renegotiation or
    /// an ICE restart) is reported under a new one, its count of frames starting from zero.
    pub track: u64,
    pub streams: Vec<String>,
    pub codec: String,
    pub audio: bool,
    pub frames_decoded: u64,
    /// The last picture's size.
    pub size: Option<(u32, u32)>,
    /// The sound's RMS since the last report, 0 (silence) to 1 (full scale).
    pub audio_level: Option<f64>,
    /// Frames that did not decode.
    pub errors: u64,
    /// For pictures stamped by a synthetic camera (confab's, or a test's): how long each one
    /// decoded since the last report took from its capture, by the wall clock, in ms.
    pub stamp_delays_ms: Vec<i64>,
    /// For sound from a `--synthetic-beeps` sender on the same machine: how long each beep
    /// that began since the last report took from its start to its playout, in ms.
    pub beep_delays_ms: Vec<f64>,
    pub ended: bool,
}

impl TrackReport {
    pub fn to_json(&self) -> Value {
        json!({
            "event": "track",
            "id": self.peer,
            "track": self.track,
            "streams": self.streams,
            "codec": self.codec,
            "audio": self.audio,
            "frames_decoded": self.frames_decoded,
            "width": self.size.map(|(w, _)| w),
            "height": self.size.map(|(_, h)| h),
            "audio_level": self.audio_level,
            "errors": self.errors,
            "stamp_delays_ms": self.stamp_delays_ms,
            "beep_delays_ms": self.beep_delays_ms,
            "ended": self.ended,
        })
    }

    /// The line for people.
    pub fn human(&self, name: &str) -> String {
        let state = if self.ended { "ended" } else { "playing" };
        match (self.size, self.audio_level) {
            (_, Some(level)) => format!(
                "* {name}'s sound ({}): {state}, level {level:.2}, {} frames",
                self.codec, self.frames_decoded
            ),
            (Some((w, h)), None) => format!(
                "* {name}'s video ({}): {state}, {w}×{h}, {} frames",
                self.codec, self.frames_decoded
            ),
            (None, None) => format!("* {name}'s track ({}): {state}", self.codec),
        }
    }
}

/// What the sink tells the session.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaReport {
    Track(TrackReport),
    /// The recording began (on the first keyframe of a picture).
    RecordingStarted(PathBuf),
    /// The speaker stopped playing (unplugged, or the sound system went away).
    SpeakerFailed(String),
}

/// The meeting recorded to one WebM file: from the first picture's first keyframe on, that
/// picture as it arrived (never encoded again), and the meeting's sound as it is played: every
/// voice mixed, encoded once more in Opus (a mix cannot be copied).
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    state: Mutex<RecordingState>,
}

#[derive(Debug)]
enum RecordingState {
    Waiting,
    Writing {
        writer: WebmRecorder,
        started: Instant,
        /// The track whose pictures are recorded.
        video: u64,
        sound: OpusEncoder,
        /// When the last sound written arrived, from `started`.
        sound_at: Option<Duration>,
    },
    Failed(String),
    Finished,
}

/// The recorded mix: music-grade Opus, since it may hold several voices at once.
const RECORDING_KBPS: u32 = 64;
/// The mix's time falls behind the clock by this much (a stalled playout) before it jumps.
const MIX_SLACK: Duration = Duration::from_millis(100);

impl Recording {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), state: Mutex::new(RecordingState::Waiting) }
    }

    /// Takes one frame of the picture track number `track`; returns true if the recording
    /// began with it.
    fn picture(&self, track: u64, frame: &IncomingFrame) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        let mut began = false;
        if matches!(*state, RecordingState::Waiting)
            && let Some((width, height)) = vp8_keyframe_size(&frame.data)
        {
            let opened = WebmRecorder::create(&self.path, width, height)
                .and_then(|writer| Ok((writer, OpusEncoder::new(RECORDING_KBPS)?)));
            *state = match opened {
                Ok((writer, sound)) => {
                    began = true;
                    let started = Instant::now();
                    RecordingState::Writing { writer, started, video: track, sound, sound_at: None }
                }
                Err(e) => RecordingState::Failed(e.to_string()),
            };
        }
        if let RecordingState::Writing { writer, started, video, .. } = &mut *state
            && *video == track
            && let Err(e) = writer.video(&frame.data, started.elapsed(), frame.keyframe)
        {
            *state = RecordingState::Failed(e.to_string());
        }
        began
    }

    /// Takes the next 20 ms of the meeting's mixed sound, held back `held_back` in the jitter
    /// buffers: it is stamped with when it arrived, as the pictures are.
    pub fn mixed_sound(&self, pcm: &[i16], held_back: Duration) {
        let Ok(mut state) = self.state.lock() else { return };
        let RecordingState::Writing { writer, started, sound, sound_at, .. } = &mut *state else {
            return;
        };
        let arrived = started.elapsed().saturating_sub(held_back);
        // Evenly spaced, as the mix is made; after a stall, on to where the clock is.
        let at = match *sound_at {
            Some(last) if arrived <= last + FRAME_DURATION + MIX_SLACK => last + FRAME_DURATION,
            _ => arrived,
        };
        *sound_at = Some(at);
        if let Err(e) = sound.encode(pcm).and_then(|packet| writer.audio(&packet, at)) {
            *state = RecordingState::Failed(e.to_string());
        }
    }

    /// Closes the file; returns where it is and how long it lasts. Frames after this are not
    /// written.
    pub fn finish(&self) -> Result<(PathBuf, Duration), String> {
        let mut state = self.state.lock().map_err(|_| "the recording failed".to_owned())?;
        match std::mem::replace(&mut *state, RecordingState::Finished) {
            RecordingState::Writing { writer, started, .. } => {
                let length = started.elapsed();
                writer.finish().map_err(|e| e.to_string())?;
                Ok((self.path.clone(), length))
            }
            RecordingState::Waiting => Err("nothing was recorded: no video arrived".into()),
            RecordingState::Failed(reason) => Err(reason),
            RecordingState::Finished => Err("the recording was already finished".into()),
        }
    }
}

/// The sink: every track decoded (when reported), its reports sent to the session, and
/// recorded if asked.
#[derive(Debug)]
pub struct Reporter {
    reports: mpsc::UnboundedSender<MediaReport>,
    /// Whether pictures are decoded for their reports; a recording alone needs no decoding.
    decode: bool,
    /// Where voices are played.
    playout: Arc<Playout>,
    /// Whether the speaker's failure was reported (once is enough).
    speaker_failure_told: Arc<AtomicBool>,
    recording: Option<Arc<Recording>>,
    /// Numbers the tracks, for the recording and the reports to tell them apart.
    tracks: Arc<AtomicU64>,
}

impl Reporter {
    pub fn new(
        decode: bool,
        playout: Arc<Playout>,
        recording: Option<Arc<Recording>>,
    ) -> (Self, mpsc::UnboundedReceiver<MediaReport>) {
        let (reports, rx) = mpsc::unbounded_channel();
        let speaker_failure_told = Arc::default();
        (
            Self {
                reports,
                decode,
                playout,
                speaker_failure_told,
                recording,
                tracks: Arc::default(),
            },
            rx,
        )
    }
}

impl IncomingMedia for Reporter {
    fn track(&self, track: IncomingTrack) -> Box<dyn TrackSink> {
        let report = TrackReport {
            peer: track.peer.to_string(),
            track: self.tracks.fetch_add(1, Ordering::Relaxed),
            streams: track.stream_ids.clone(),
            codec: track.mime_type.clone(),
            audio: track.audio,
            frames_decoded: 0,
            size: None,
            audio_level: None,
            errors: 0,
            stamp_delays_ms: Vec::new(),
            beep_delays_ms: Vec::new(),
            ended: false,
        };
        let (decoder, voice) = if track.audio {
            let meter = Arc::new(Mutex::new(SoundMeter::default()));
            let heard = meter.clone();
            let listener = Box::new(move |pcm: &[i16; FRAME_SAMPLES], _| {
                heard.lock().unwrap_or_else(PoisonError::into_inner).hear(pcm, wall_clock_ms());
            });
            let input = self.playout.add_voice(Some(listener)).ok();
            let voice = input.map(|input| Voice {
                input,
                meter,
                playout: self.playout.clone(),
                failure_told: self.speaker_failure_told.clone(),
            });
            (None, voice)
        } else {
            (self.decode.then(|| TrackDecoder::for_track(&track).ok()).flatten(), None)
        };
        Box::new(ReportedTrack {
            recording: self.recording.clone(),
            decoder,
            voice,
            report,
            reported: Instant::now(),
            reports: self.reports.clone(),
        })
    }
}

/// What one voice sounded like as it was played, since the last report.
#[derive(Debug, Default)]
struct SoundMeter {
    squares: f64,
    samples: u64,
    /// Samples of silence in a row: a sound after enough of them is a beep beginning.
    quiet: usize,
    beep_delays_ms: Vec<f64>,
}

/// A sample this loud (of full scale) is sound; this much silence before it makes it a
/// beep's start (Opus's concealment and ringing stay far quieter).
const BEEP_LEVEL: i16 = i16::MAX / 20;
const SILENCE_BEFORE_BEEP: usize = SAMPLE_RATE as usize / 20;

impl SoundMeter {
    /// Takes `pcm`, whose first sample leaves for the speaker at `starts_ms` on the wall clock
    /// (the device's own queue, some 40 ms, comes after); notes the delay of each beep beginning
    /// in it, read from the wall clock as `Beeps` places them.
    fn hear(&mut self, pcm: &[i16], starts_ms: f64) {
        self.squares += pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>();
        self.samples += pcm.len() as u64;
        for (i, &sample) in pcm.iter().enumerate() {
            if sample.unsigned_abs() < BEEP_LEVEL.unsigned_abs() {
                self.quiet += 1;
                continue;
            }
            if self.quiet >= SILENCE_BEFORE_BEEP {
                let heard = starts_ms + i as f64 * 1000.0 / f64::from(SAMPLE_RATE);
                let delay = heard.rem_euclid(BEEP_EVERY_MS);
                self.beep_delays_ms.push((delay * 10.0).round() / 10.0);
            }
            self.quiet = 0;
        }
    }

    /// The RMS level since the last call (0 to 1), and the beeps heard.
    fn take(&mut self) -> (Option<f64>, Vec<f64>) {
        let level =
            (self.samples > 0).then(|| (self.squares / self.samples as f64).sqrt() / 32_768.0);
        (self.squares, self.samples) = (0.0, 0);
        (level, std::mem::take(&mut self.beep_delays_ms))
    }
}

/// One voice on its way to the speaker.
struct Voice {
    input: VoiceInput,
    meter: Arc<Mutex<SoundMeter>>,
    playout: Arc<Playout>,
    failure_told: Arc<AtomicBool>,
}

struct ReportedTrack {
    recording: Option<Arc<Recording>>,
    /// For pictures: `None` when not reported, or for a codec we cannot decode (the track is
    /// still reported).
    decoder: Option<TrackDecoder>,
    /// For sound: where it goes to be played, and what it sounded like.
    voice: Option<Voice>,
    report: TrackReport,
    reported: Instant,
    reports: mpsc::UnboundedSender<MediaReport>,
}

impl ReportedTrack {
    fn send(&mut self) {
        if let Some(Voice { input, meter, playout, failure_told }) = &self.voice {
            if let Some(reason) = playout.failure()
                && !failure_told.swap(true, Ordering::Relaxed)
            {
                let _ = self.reports.send(MediaReport::SpeakerFailed(reason));
            }
            let (level, beeps) = meter.lock().unwrap_or_else(PoisonError::into_inner).take();
            let stats = input.stats();
            self.report.frames_decoded = stats.decoded + stats.recovered;
            self.report.errors = stats.errors;
            self.report.audio_level = level;
            self.report.beep_delays_ms = beeps;
        }
        self.reported = Instant::now();
        let _ = self.reports.send(MediaReport::Track(self.report.clone()));
        self.report.stamp_delays_ms.clear();
        self.report.beep_delays_ms.clear();
    }
}

impl TrackSink for ReportedTrack {
    fn frame(&mut self, frame: IncomingFrame) {
        if let Some(recording) = &self.recording
            && !self.report.audio
            && recording.picture(self.report.track, &frame)
        {
            let _ = self.reports.send(MediaReport::RecordingStarted(recording.path.clone()));
        }
        if let Some(voice) = &self.voice {
            voice.input.push(frame.rtp_timestamp, &frame.data);
        } else if let Some(decoder) = &mut self.decoder {
            match decoder.decode(&frame) {
                Ok(Some(Decoded::Picture(picture))) => {
                    self.report.frames_decoded += 1;
                    self.report.size = Some((picture.width(), picture.height()));
                    if let Some(stamp) = read_stamp(&picture) {
                        // As i32: a stamp from a clock a little ahead gives a small negative
                        // delay.
                        let delay = wall_clock_millis().wrapping_sub(stamp.millis) as i32;
                        self.report.stamp_delays_ms.push(i64::from(delay));
                    }
                }
                Ok(Some(Decoded::Sound(_)) | None) => {}
                Err(_) => self.report.errors += 1,
            }
        }
        if self.reported.elapsed() >= REPORT_EVERY {
            self.send();
        }
    }

    fn ended(&mut self) {
        self.report.ended = true;
        self.send();
    }
}
