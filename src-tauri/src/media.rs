//! The peers' tracks in the window: video frames go to the webview still encoded (it decodes
//! them with WebCodecs), sound is mixed and played here (audio stays in Rust).
//!
//! The webview receives binary messages on one channel (little-endian):
//! - `0, track u32, JSON {peer, streams, codec, screen}`: a video track started;
//! - `1, track u32, keyframe u8, timestamp_ms u32, frame…`: one whole encoded frame;
//! - `2, track u32`: the track ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use confab_core::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};
use confab_core::{MediaState, TrackKind};
use confab_media::{Playout, VoiceInput};
use tauri::ipc::{Channel, InvokeResponseBody};

pub const TRACK_STARTED: u8 = 0;
pub const FRAME: u8 = 1;
pub const TRACK_ENDED: u8 = 2;

/// Where the peers' tracks go in the desktop app.
pub struct WindowMedia {
    video: Channel<InvokeResponseBody>,
    playout: Arc<Playout>,
    /// Says once that sound cannot be played, when the first voice arrives.
    report_error: Arc<dyn Fn(String) + Send + Sync>,
    speaker_problem: Option<String>,
    speaker_failure_told: Arc<AtomicBool>,
    next_track: AtomicU32,
}

impl std::fmt::Debug for WindowMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowMedia").finish_non_exhaustive()
    }
}

impl WindowMedia {
    /// `speaker_problem`: why the speaker could not be opened (the sound is mixed into nothing
    /// then), told once a voice arrives.
    pub fn new(
        video: Channel<InvokeResponseBody>,
        playout: Arc<Playout>,
        speaker_problem: Option<String>,
        report_error: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Self {
        Self {
            video,
            playout,
            report_error,
            speaker_problem,
            speaker_failure_told: Arc::new(AtomicBool::new(false)),
            next_track: AtomicU32::new(1),
        }
    }
}

impl IncomingMedia for WindowMedia {
    fn track(&self, track: IncomingTrack) -> Box<dyn TrackSink> {
        if track.audio {
            let voice = self.playout.add_voice(None);
            let problem = match &voice {
                Err(e) => Some(e.to_string()),
                Ok(_) => self.speaker_problem.clone(),
            };
            if let Some(problem) = problem
                && !self.speaker_failure_told.swap(true, Ordering::Relaxed)
            {
                (self.report_error)(format!("sound from the meeting cannot be played: {problem}"));
            }
            return Box::new(Voice {
                input: voice.ok(),
                playout: self.playout.clone(),
                report_error: self.report_error.clone(),
                failure_told: self.speaker_failure_told.clone(),
            });
        }
        let number = self.next_track.fetch_add(1, Ordering::Relaxed);
        // A native peer's screen is known by its stream; a browser's by what it announces,
        // which the window knows.
        let screen = track.kind(&MediaState::default()) == TrackKind::Screen;
        let description = serde_json::json!({
            "peer": track.peer.to_string(),
            "streams": track.stream_ids,
            "codec": track.mime_type,
            "screen": screen,
        });
        let mut message = header(TRACK_STARTED, number);
        message.extend_from_slice(description.to_string().as_bytes());
        let video = self.video.clone();
        send(&video, message);
        Box::new(Video { video, number, waiting_for_keyframe: true })
    }
}

fn header(kind: u8, track: u32) -> Vec<u8> {
    let mut message = Vec::with_capacity(16);
    message.push(kind);
    message.extend_from_slice(&track.to_le_bytes());
    message
}

fn send(channel: &Channel<InvokeResponseBody>, message: Vec<u8>) {
    if let Err(e) = channel.send(InvokeResponseBody::Raw(message)) {
        tracing::debug!(error = %e, "a video message could not reach the window");
    }
}

struct Video {
    video: Channel<InvokeResponseBody>,
    number: u32,
    /// After a loss, frames that build on the lost one are not sent: the picture holds still
    /// until the next keyframe instead of smearing.
    waiting_for_keyframe: bool,
}

impl TrackSink for Video {
    fn frame(&mut self, frame: IncomingFrame) {
        self.waiting_for_keyframe |= frame.lost_before > 0;
        if self.waiting_for_keyframe && !frame.keyframe {
            return;
        }
        self.waiting_for_keyframe = false;
        let mut message = header(FRAME, self.number);
        message.reserve(5 + frame.data.len());
        message.push(u8::from(frame.keyframe));
        // 90 kHz RTP time in ms: what a VideoDecoder needs is only an increasing timestamp.
        message.extend_from_slice(&(frame.rtp_timestamp / 90).to_le_bytes());
        message.extend_from_slice(&frame.data);
        send(&self.video, message);
    }

    fn ended(&mut self) {
        send(&self.video, header(TRACK_ENDED, self.number));
    }
}

struct Voice {
    input: Option<VoiceInput>,
    playout: Arc<Playout>,
    report_error: Arc<dyn Fn(String) + Send + Sync>,
    failure_told: Arc<AtomicBool>,
}

impl TrackSink for Voice {
    fn frame(&mut self, frame: IncomingFrame) {
        let Some(input) = &self.input else { return };
        input.push(frame.rtp_timestamp, &frame.data);
        if let Some(failure) = self.playout.failure()
            && !self.failure_told.swap(true, Ordering::Relaxed)
        {
            (self.report_error)(format!("the speaker stopped: {failure}"));
        }
    }

    fn ended(&mut self) {
        self.input = None;
    }
}
