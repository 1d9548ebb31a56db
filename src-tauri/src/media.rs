//! The peers' tracks in the window. Video goes to the webview still encoded where it decodes the
//! codec itself (WebCodecs), and otherwise as pictures decoded here (the fallback path). Sound is
//! mixed and played here (audio stays in Rust).
//!
//! The webview receives binary messages on one channel (little-endian; `arrived` is when the
//! engine had the frame whole, in ms since the Unix epoch, so the window can tell the latency it
//! adds):
//! - `0, track u32, JSON {peer, streams, codec, screen, decoded}`: a video track started, its
//!   frames to come as pictures when `decoded`;
//! - `1, track u32, keyframe u8, timestamp_ms u32, arrived f64, frame…`: one whole encoded frame;
//! - `2, track u32`: the track ended;
//! - `3, track u32, width u32, height u32, arrived f64, RGBA…`: one decoded picture; the window
//!   answers `picture_shown` once it is drawn, and a track has at most [`PICTURES_IN_FLIGHT`]
//!   on their way.
//!
//! Track 0 is our own camera (`own` in its JSON), the frames the peers are sent, for its tile.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use confab_core::decode::{Decoded, TrackDecoder};
use confab_core::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};
use confab_core::{MediaState, TrackFeed, TrackKind};
use confab_media::{Playout, VoiceInput, convert};
use tauri::ipc::{Channel, InvokeResponseBody};

pub const TRACK_STARTED: u8 = 0;
pub const FRAME: u8 = 1;
pub const TRACK_ENDED: u8 = 2;
pub const PICTURE: u8 = 3;

/// Decoded pictures a track may have on their way to the window, not yet drawn. A 1080p picture
/// is 8 MB: sent faster than the window draws them, they would pile up without end. Pictures
/// beyond this are skipped (unlike an encoded frame, a decoded one can be).
const PICTURES_IN_FLIGHT: usize = 2;

/// The pictures each track has on their way to the window; the window says when it drew one.
#[derive(Debug, Clone, Default)]
pub struct PicturesInFlight(Arc<std::sync::Mutex<HashMap<u32, Arc<AtomicUsize>>>>);

impl PicturesInFlight {
    fn start(&self, track: u32) -> Arc<AtomicUsize> {
        let count = Arc::new(AtomicUsize::new(0));
        self.tracks().insert(track, count.clone());
        count
    }

    fn end(&self, track: u32) {
        self.tracks().remove(&track);
    }

    /// The window drew one of `track`'s pictures.
    pub fn shown(&self, track: u32) {
        if let Some(count) = self.tracks().get(&track) {
            // Never below zero, whatever the window says.
            let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    fn tracks(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<AtomicUsize>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The track number of our own camera; the peers' start at 1.
const OWN_CAMERA: u32 = 0;

/// Shows our own camera in the window, from the frames `camera` sends the peers, until it stops.
pub fn show_own_camera(video: Channel<InvokeResponseBody>, camera: &TrackFeed) {
    let mut frames = camera.preview();
    let description = serde_json::json!({
        "own": true,
        "peer": "",
        "streams": [],
        "codec": camera.codec().mime_type(),
        "screen": false,
        "decoded": false,
    });
    let mut started = header(TRACK_STARTED, OWN_CAMERA);
    started.extend_from_slice(description.to_string().as_bytes());
    send(&video, started);
    tauri::async_runtime::spawn(async move {
        let start = std::time::Instant::now();
        // After frames were missed, the next ones build on them: wait for a keyframe.
        let mut waiting_for_keyframe = true;
        loop {
            let frame = match frames.recv().await {
                Ok(frame) => frame,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    waiting_for_keyframe = true;
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            waiting_for_keyframe &= !frame.keyframe;
            if waiting_for_keyframe {
                continue;
            }
            let at = frame.captured_at.saturating_duration_since(start).as_millis();
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            send(&video, frame_message(OWN_CAMERA, frame.keyframe, at, &frame.data));
        }
        send(&video, header(TRACK_ENDED, OWN_CAMERA));
    });
}

/// Where the peers' tracks go in the desktop app.
pub struct WindowMedia {
    video: Channel<InvokeResponseBody>,
    playout: Arc<Playout>,
    /// Says once that sound cannot be played, when the first voice arrives.
    report_error: Arc<dyn Fn(String) + Send + Sync>,
    speaker_problem: Option<String>,
    speaker_failure_told: Arc<AtomicBool>,
    next_track: AtomicU32,
    /// The video codecs (MIME types) the webview decodes itself.
    decoded_in_window: Vec<String>,
    in_flight: PicturesInFlight,
}

impl std::fmt::Debug for WindowMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowMedia").finish_non_exhaustive()
    }
}

impl WindowMedia {
    /// `speaker_problem`: why the speaker could not be opened (the sound is mixed into nothing
    /// then), told once a voice arrives. `decoded_in_window`: the video codecs the webview
    /// decodes; the others are decoded here.
    pub fn new(
        video: Channel<InvokeResponseBody>,
        playout: Arc<Playout>,
        speaker_problem: Option<String>,
        report_error: Arc<dyn Fn(String) + Send + Sync>,
        decoded_in_window: Vec<String>,
        in_flight: PicturesInFlight,
    ) -> Self {
        Self {
            video,
            playout,
            report_error,
            speaker_problem,
            speaker_failure_told: Arc::new(AtomicBool::new(false)),
            next_track: AtomicU32::new(1),
            decoded_in_window,
            in_flight,
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
        let in_window =
            self.decoded_in_window.iter().any(|c| c.eq_ignore_ascii_case(&track.mime_type));
        let decoder = if in_window {
            None
        } else {
            match TrackDecoder::for_track(&track) {
                Ok(decoder) => Some(decoder),
                Err(e) => {
                    (self.report_error)(format!("a video cannot be shown here: {e}"));
                    return Box::new(Unshown);
                }
            }
        };
        let description = serde_json::json!({
            "peer": track.peer.to_string(),
            "streams": track.stream_ids,
            "codec": track.mime_type,
            "screen": screen,
            "decoded": decoder.is_some(),
        });
        let mut message = header(TRACK_STARTED, number);
        message.extend_from_slice(description.to_string().as_bytes());
        let video = self.video.clone();
        send(&video, message);
        match decoder {
            None => Box::new(Video { video, number, waiting_for_keyframe: true }),
            Some(decoder) => Box::new(DecodedVideo {
                in_window: self.in_flight.start(number),
                in_flight: self.in_flight.clone(),
                video,
                number,
                decoder,
                rgba: Vec::new(),
                report_error: self.report_error.clone(),
                failure_told: false,
            }),
        }
    }
}

/// Now, in ms since the Unix epoch: the clock the webview's `performance.timeOrigin` reads.
fn now_millis() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A whole encoded frame of `track`, stamped with now as its arrival; `timestamp_ms` only has to
/// increase.
fn frame_message(track: u32, keyframe: bool, timestamp_ms: u32, data: &[u8]) -> Vec<u8> {
    let mut message = header(FRAME, track);
    message.reserve(13 + data.len());
    message.push(u8::from(keyframe));
    message.extend_from_slice(&timestamp_ms.to_le_bytes());
    message.extend_from_slice(&now_millis().to_le_bytes());
    message.extend_from_slice(data);
    message
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
        // 90 kHz RTP time in ms: what a VideoDecoder needs is only an increasing timestamp.
        let at = frame.rtp_timestamp / 90;
        send(&self.video, frame_message(self.number, frame.keyframe, at, &frame.data));
    }

    fn ended(&mut self) {
        send(&self.video, header(TRACK_ENDED, self.number));
    }
}

/// A video the webview cannot decode: decoded here, sent as RGBA pictures.
struct DecodedVideo {
    video: Channel<InvokeResponseBody>,
    number: u32,
    decoder: TrackDecoder,
    /// The last picture's pixels, reused for the next.
    rgba: Vec<u8>,
    report_error: Arc<dyn Fn(String) + Send + Sync>,
    /// A track that does not decode says so once, not at every frame.
    failure_told: bool,
    /// This track's pictures on their way to the window.
    in_window: Arc<AtomicUsize>,
    in_flight: PicturesInFlight,
}

impl DecodedVideo {
    fn picture(
        &mut self,
        frame: &IncomingFrame,
    ) -> Result<Option<Vec<u8>>, confab_media::MediaError> {
        let arrived = now_millis();
        // Every frame is decoded (the next ones build on it); only those the window has room
        // for are converted and sent.
        let Some(Decoded::Picture(picture)) = self.decoder.decode(frame)? else {
            return Ok(None);
        };
        if self.in_window.load(Ordering::Relaxed) >= PICTURES_IN_FLIGHT {
            return Ok(None);
        }
        convert::i420_to_rgba(&picture, &mut self.rgba)?;
        // Counted once it is sure to be sent: one that is not would never be answered.
        self.in_window.fetch_add(1, Ordering::Relaxed);
        let mut message = header(PICTURE, self.number);
        message.reserve(16 + self.rgba.len());
        message.extend_from_slice(&picture.width().to_le_bytes());
        message.extend_from_slice(&picture.height().to_le_bytes());
        message.extend_from_slice(&arrived.to_le_bytes());
        message.extend_from_slice(&self.rgba);
        Ok(Some(message))
    }
}

impl Drop for DecodedVideo {
    fn drop(&mut self) {
        self.in_flight.end(self.number);
    }
}

impl TrackSink for DecodedVideo {
    fn frame(&mut self, frame: IncomingFrame) {
        match self.picture(&frame) {
            Ok(Some(message)) => send(&self.video, message),
            Ok(None) => {}
            Err(e) if !self.failure_told => {
                self.failure_told = true;
                (self.report_error)(format!("a video could not be decoded: {e}"));
            }
            Err(_) => {}
        }
    }

    fn ended(&mut self) {
        send(&self.video, header(TRACK_ENDED, self.number));
    }
}

/// A video that cannot be shown (the user was told why).
struct Unshown;

impl TrackSink for Unshown {
    fn frame(&mut self, _: IncomingFrame) {}
    fn ended(&mut self) {}
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
