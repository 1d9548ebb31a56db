//! What the CLI does with the peers' tracks when asked to take them (`--receive-media`): decode
//! each one, and report it once a second — frames decoded and picture size for video, the
//! sound's level for audio — and once more when it ends.

use std::time::{Duration, Instant};

use confab_core::decode::{Decoded, TrackDecoder};
use confab_core::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How often a track is reported while it plays.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One report on one incoming track, as the `track` JSON line prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackReport {
    pub peer: String,
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
    pub ended: bool,
}

impl TrackReport {
    pub fn to_json(&self) -> Value {
        json!({
            "event": "track",
            "id": self.peer,
            "streams": self.streams,
            "codec": self.codec,
            "audio": self.audio,
            "frames_decoded": self.frames_decoded,
            "width": self.size.map(|(w, _)| w),
            "height": self.size.map(|(_, h)| h),
            "audio_level": self.audio_level,
            "errors": self.errors,
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

/// The sink: every track decoded, its reports sent to the session.
#[derive(Debug, Clone)]
pub struct Reporter {
    reports: mpsc::UnboundedSender<TrackReport>,
}

impl Reporter {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<TrackReport>) {
        let (reports, rx) = mpsc::unbounded_channel();
        (Self { reports }, rx)
    }
}

impl IncomingMedia for Reporter {
    fn track(&self, track: IncomingTrack) -> Box<dyn TrackSink> {
        let report = TrackReport {
            peer: track.peer.to_string(),
            streams: track.stream_ids.clone(),
            codec: track.mime_type.clone(),
            audio: track.audio,
            frames_decoded: 0,
            size: None,
            audio_level: None,
            errors: 0,
            ended: false,
        };
        Box::new(ReportedTrack {
            decoder: TrackDecoder::for_track(&track).ok(),
            report,
            squares: 0.0,
            samples: 0,
            reported: Instant::now(),
            reports: self.reports.clone(),
        })
    }
}

struct ReportedTrack {
    /// `None` for a codec we cannot decode: the track is still reported.
    decoder: Option<TrackDecoder>,
    report: TrackReport,
    /// The sound since the last report, for its level.
    squares: f64,
    samples: u64,
    reported: Instant,
    reports: mpsc::UnboundedSender<TrackReport>,
}

impl ReportedTrack {
    fn send(&mut self) {
        if self.samples > 0 {
            let rms = (self.squares / self.samples as f64).sqrt() / 32_768.0;
            self.report.audio_level = Some(rms);
            (self.squares, self.samples) = (0.0, 0);
        }
        self.reported = Instant::now();
        let _ = self.reports.send(self.report.clone());
    }
}

impl TrackSink for ReportedTrack {
    fn frame(&mut self, frame: IncomingFrame) {
        let Some(decoder) = &mut self.decoder else { return };
        match decoder.decode(&frame) {
            Ok(Some(Decoded::Picture(picture))) => {
                self.report.frames_decoded += 1;
                self.report.size = Some((picture.width(), picture.height()));
            }
            Ok(Some(Decoded::Sound(pcm))) => {
                self.report.frames_decoded += 1;
                self.squares += pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>();
                self.samples += pcm.len() as u64;
            }
            Ok(None) => {}
            Err(_) => self.report.errors += 1,
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
