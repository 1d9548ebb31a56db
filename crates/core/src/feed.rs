//! A local track as every connection sends it: one capture and one encoder for the whole mesh,
//! each encoded frame shared with every peer's track.
//!
//! Each connection subscribes, and asks for a keyframe once it can carry video, because a
//! decoder can only start on one; it asks again when the peer reports a lost picture (RTCP PLI
//! or FIR) or when it fell behind and skipped frames. While nobody subscribes, nothing is
//! captured or encoded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use confab_media::{
    AudioPipeline, AudioSource, Beeps, Content, EncodedFrame, FrameSink, MediaError, SineTone,
    SyntheticCamera, VideoCodec, VideoPipeline, VideoSource,
};
use tokio::sync::broadcast;

/// Frames a slow connection may fall behind before it skips to the next keyframe.
const FRAMES_BUFFERED: usize = 8;
/// The synthetic camera: 640×360 at 30 fps, about what a browser sends for a small tile.
const SYNTHETIC_SIZE: (u32, u32) = (640, 360);
const SYNTHETIC_FPS: u32 = 30;
const CAMERA_KBPS: u32 = 600;
/// The synthetic screen: 1280×720 at 15 fps, a shared window's worth of pixels.
const SYNTHETIC_SCREEN_SIZE: (u32, u32) = (1280, 720);
const SYNTHETIC_SCREEN_FPS: u32 = 15;
const SYNTHETIC_SCREEN_KBPS: u32 = 1500;
/// A real screen: 2.5 Mbit/s keeps 1080p text sharp (see `make bench-media`).
const SCREEN_KBPS: u32 = 2500;
/// The synthetic microphone: a 440 Hz tone at a voice's bitrate.
const SYNTHETIC_TONE_HZ: u32 = 440;
const MICROPHONE_KBPS: u32 = 32;

/// The codec a feed's frames are in; its MIME type picks the negotiated payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Vp8,
    Opus,
}

impl Codec {
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Vp8 => "video/VP8",
            Self::Opus => "audio/opus",
        }
    }

    /// The codec a negotiated MIME type names (in any case), if it is one of ours.
    pub fn from_mime_type(mime_type: &str) -> Option<Self> {
        [Self::Vp8, Self::Opus].into_iter().find(|c| c.mime_type().eq_ignore_ascii_case(mime_type))
    }
}

/// A running source, encoded, cheap to clone; the source stops when the last clone is dropped.
/// Two feeds are the same track only if one is a clone of the other ([`TrackFeed::same`]).
#[derive(Debug, Clone)]
pub struct TrackFeed {
    codec: Codec,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    frames: broadcast::Sender<Arc<EncodedFrame>>,
    pipeline: Pipeline,
    /// The track's own rate, in kbit/s.
    bitrate_kbps: u32,
    /// What each connection's network does, by [`Vote`]: for video the kbit/s it carries (the
    /// encoder follows the lowest), for audio the % of packets it loses (the encoder protects
    /// for the highest); one encoding goes to everyone.
    votes: Mutex<BTreeMap<u64, u32>>,
    next_vote: AtomicU64,
}

impl Inner {
    fn new(
        frames: broadcast::Sender<Arc<EncodedFrame>>,
        pipeline: Pipeline,
        bitrate_kbps: u32,
    ) -> Self {
        let (votes, next_vote) = (Mutex::default(), AtomicU64::new(0));
        Self { frames, pipeline, bitrate_kbps, votes, next_vote }
    }

    /// Video: aims the encoder at the lowest rate, or the track's own when nobody votes.
    /// Audio: protects the frames for the highest loss.
    fn follow_votes(&self, votes: &BTreeMap<u64, u32>) {
        match &self.pipeline {
            Pipeline::Video(pipeline) => {
                pipeline.set_bitrate(votes.values().copied().min().unwrap_or(self.bitrate_kbps));
            }
            Pipeline::Audio { running } => {
                let worst = votes.values().copied().max().unwrap_or(0);
                running.set_expected_loss(u8::try_from(worst).unwrap_or(100));
            }
        }
    }
}

/// One connection's say in how its track is encoded (see [`TrackFeed::vote`]); its say ends
/// when it is dropped.
#[derive(Debug)]
pub struct Vote {
    feed: Arc<Inner>,
    id: u64,
}

impl Vote {
    /// A video track: this connection carries `kbps` now.
    pub fn set_bitrate(&self, kbps: u32) {
        self.set(kbps);
    }

    /// An audio track: this connection loses `percent` of the packets now.
    pub fn set_loss(&self, percent: u8) {
        self.set(u32::from(percent));
    }

    fn set(&self, value: u32) {
        let Ok(mut votes) = self.feed.votes.lock() else { return };
        if votes.insert(self.id, value) != Some(value) {
            self.feed.follow_votes(&votes);
        }
    }
}

impl Drop for Vote {
    fn drop(&mut self) {
        if let Ok(mut votes) = self.feed.votes.lock()
            && votes.remove(&self.id).is_some()
        {
            self.feed.follow_votes(&votes);
        }
    }
}

/// The thread that captures and encodes; it stops when dropped.
#[derive(Debug)]
enum Pipeline {
    Video(VideoPipeline),
    /// Every audio frame stands alone: there are no keyframes to ask for.
    Audio {
        running: AudioPipeline,
    },
}

/// Hands the pipeline's frames to every subscribed connection.
struct Broadcast(broadcast::Sender<Arc<EncodedFrame>>);

impl FrameSink for Broadcast {
    fn wanted(&self) -> bool {
        self.0.receiver_count() > 0
    }
    fn deliver(&mut self, frame: EncodedFrame) -> bool {
        // No receiver right now is not an end: someone may subscribe later.
        let _ = self.0.send(Arc::new(frame));
        true
    }
    fn failed(&mut self, error: MediaError) {
        tracing::warn!(%error, "a local track stopped");
    }
}

impl TrackFeed {
    /// Starts a video `source` showing `content`, encoded in VP8 at `bitrate_kbps`.
    pub fn video(
        source: Box<dyn VideoSource>,
        content: Content,
        bitrate_kbps: u32,
    ) -> Result<Self, MediaError> {
        let (frames, _) = broadcast::channel(FRAMES_BUFFERED);
        let sink = Broadcast(frames.clone());
        let pipeline = VideoPipeline::start(source, VideoCodec::Vp8, content, bitrate_kbps, sink)?;
        let pipeline = Pipeline::Video(pipeline);
        Ok(Self { codec: Codec::Vp8, inner: Arc::new(Inner::new(frames, pipeline, bitrate_kbps)) })
    }

    /// Starts an audio `source`, encoded in Opus at `bitrate_kbps`, in 20 ms frames.
    pub fn audio(source: Box<dyn AudioSource>, bitrate_kbps: u32) -> Result<Self, MediaError> {
        let (frames, _) = broadcast::channel(FRAMES_BUFFERED);
        let pipeline = AudioPipeline::start(source, bitrate_kbps, Broadcast(frames.clone()))?;
        let pipeline = Pipeline::Audio { running: pipeline };
        Ok(Self { codec: Codec::Opus, inner: Arc::new(Inner::new(frames, pipeline, bitrate_kbps)) })
    }

    /// A microphone (a real one, or any other source of a voice), at a voice's bitrate.
    pub fn microphone(source: Box<dyn AudioSource>) -> Result<Self, MediaError> {
        Self::audio(source, MICROPHONE_KBPS)
    }

    /// The twin of a microphone: a steady tone (confab-media's `SineTone`).
    pub fn synthetic_microphone() -> Result<Self, MediaError> {
        Self::microphone(Box::new(SineTone::new(SYNTHETIC_TONE_HZ)?))
    }

    /// A microphone twin for measuring delay: beeps on the wall clock's half seconds
    /// (confab-media's `Beeps`).
    pub fn synthetic_beeps() -> Result<Self, MediaError> {
        Self::microphone(Box::new(Beeps::new(SYNTHETIC_TONE_HZ)?))
    }

    /// The synthetic camera (a moving test pattern with a frame stamp), for machines without a
    /// camera, tests and benchmarks.
    pub fn synthetic_camera() -> Result<Self, MediaError> {
        let (width, height) = SYNTHETIC_SIZE;
        Self::synthetic_camera_of(width, height)
    }

    /// The synthetic camera at another size (a 1080p source for a receiver's benchmark), its
    /// bitrate grown with its pixels up to a screen's.
    pub fn synthetic_camera_of(width: u32, height: u32) -> Result<Self, MediaError> {
        let source = SyntheticCamera::new(width, height, SYNTHETIC_FPS)?;
        let pixels = u64::from(width) * u64::from(height);
        let default_pixels = u64::from(SYNTHETIC_SIZE.0 * SYNTHETIC_SIZE.1);
        let grown = u64::from(CAMERA_KBPS) * pixels / default_pixels;
        let kbps = grown.clamp(u64::from(CAMERA_KBPS), u64::from(SCREEN_KBPS)) as u32;
        Self::video(Box::new(source), Content::Camera, kbps)
    }

    /// A camera (a real one, or any video source showing people), encoded as a camera.
    pub fn camera(source: Box<dyn VideoSource>) -> Result<Self, MediaError> {
        Self::video(source, Content::Camera, CAMERA_KBPS)
    }

    /// A shared screen (from confab-media's `ScreenSource`), encoded for sharp text.
    pub fn screen(source: Box<dyn VideoSource>) -> Result<Self, MediaError> {
        Self::video(source, Content::Screen, SCREEN_KBPS)
    }

    /// The twin of a shared screen, as [`TrackFeed::synthetic_camera`] is of a camera.
    pub fn synthetic_screen() -> Result<Self, MediaError> {
        let (width, height) = SYNTHETIC_SCREEN_SIZE;
        let source = SyntheticCamera::new(width, height, SYNTHETIC_SCREEN_FPS)?;
        Self::video(Box::new(source), Content::Screen, SYNTHETIC_SCREEN_KBPS)
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The track's own rate, in kbit/s: what it sends while every connection carries it.
    pub fn bitrate_kbps(&self) -> u32 {
        self.inner.bitrate_kbps
    }

    /// The rate the encoder aims at now, in kbit/s: the lowest any connection carries.
    pub fn target_kbps(&self) -> u32 {
        match &self.inner.pipeline {
            Pipeline::Video(pipeline) => pipeline.bitrate_kbps(),
            Pipeline::Audio { .. } => self.inner.bitrate_kbps,
        }
    }

    /// For audio, the loss its frames are protected for, in %: the most any connection loses.
    pub fn expected_loss(&self) -> u8 {
        match &self.inner.pipeline {
            Pipeline::Audio { running } => running.expected_loss(),
            Pipeline::Video(_) => 0,
        }
    }

    /// A say for one connection in how the track is encoded: video aims at the lowest rate any
    /// connection carries, audio is protected for the most any loses.
    pub fn vote(&self) -> Vote {
        let id = self.inner.next_vote.fetch_add(1, Ordering::Relaxed);
        Vote { feed: self.inner.clone(), id }
    }

    /// Whether both are the same running source.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The frames from now on, for a preview of our own: a keyframe is asked for, so that it
    /// starts at once. The frames end when the track does (the receiver is not a holder).
    pub fn preview(&self) -> broadcast::Receiver<Arc<EncodedFrame>> {
        let frames = self.subscribe();
        self.request_keyframe();
        frames
    }

    /// Frames from now on; a subscriber that needs a keyframe asks for one.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<EncodedFrame>> {
        self.inner.frames.subscribe()
    }

    pub(crate) fn request_keyframe(&self) {
        if let Pipeline::Video(pipeline) = &self.inner.pipeline {
            pipeline.request_keyframe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_encoding_for_everyone_follows_the_slowest_connection_and_recovers_when_it_leaves() {
        let feed = TrackFeed::synthetic_screen().unwrap();
        assert_eq!(feed.target_kbps(), SYNTHETIC_SCREEN_KBPS);
        let (fast, slow) = (feed.vote(), feed.vote());
        fast.set_bitrate(1400);
        slow.set_bitrate(400);
        assert_eq!(feed.target_kbps(), 400);
        slow.set_bitrate(900);
        assert_eq!(feed.target_kbps(), 900);
        drop(slow);
        assert_eq!(feed.target_kbps(), 1400);
        drop(fast);
        assert_eq!(feed.target_kbps(), SYNTHETIC_SCREEN_KBPS);
    }

    #[test]
    fn one_voice_for_everyone_is_protected_for_the_lossiest_connection() {
        let feed = TrackFeed::synthetic_microphone().unwrap();
        assert_eq!(feed.expected_loss(), 0, "no redundancy before anyone loses anything");
        let (clear, lossy) = (feed.vote(), feed.vote());
        clear.set_loss(1);
        lossy.set_loss(20);
        assert_eq!(feed.expected_loss(), 20);
        drop(lossy);
        assert_eq!(feed.expected_loss(), 1);
    }
}
