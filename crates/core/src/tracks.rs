//! The media a participant sends and receives, as a set: which local tracks go to every peer
//! ([`TrackSet`], changed at any time through the engine), where local tracks come from when a
//! front end turns one on ([`TrackSources`]), and where the tracks peers send us go, as whole
//! encoded frames ([`IncomingMedia`]).
//!
//! Tracks travel in named streams: camera and microphone together in `confab-camera` (a person's
//! face and voice, one stream as browsers send them, so a browser plays the voice with the
//! picture), the screen in `confab-screen`. Stream ids survive the SDP unchanged, so a receiver
//! knows a screen from a camera (docs/protocol.md §3, Media).

use std::collections::BTreeMap;

use confab_media::MediaError;
use confab_proto::PeerId;

use crate::api::MediaState;
use crate::feed::TrackFeed;

/// One of the tracks a participant may send; at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKind {
    Camera,
    Microphone,
    Screen,
}

impl TrackKind {
    pub const ALL: [Self; 3] = [Self::Camera, Self::Microphone, Self::Screen];

    /// The stream our track of this kind is announced in.
    pub fn stream_id(self) -> &'static str {
        match self {
            Self::Camera | Self::Microphone => "confab-camera",
            Self::Screen => "confab-screen",
        }
    }

    /// Whether `media` says this kind is sent.
    pub fn in_media(self, media: &MediaState) -> bool {
        match self {
            Self::Camera => media.cam,
            Self::Microphone => media.mic,
            Self::Screen => media.screen,
        }
    }
}

/// The local tracks sent to every peer.
pub type TrackSet = BTreeMap<TrackKind, TrackFeed>;

/// What `media` announces for `tracks`.
pub fn media_of(tracks: &TrackSet) -> MediaState {
    let screen = tracks.contains_key(&TrackKind::Screen);
    MediaState {
        mic: tracks.contains_key(&TrackKind::Microphone),
        cam: tracks.contains_key(&TrackKind::Camera),
        screen,
        screen_track: screen.then(|| TrackKind::Screen.stream_id().to_owned()),
    }
}

/// Where a local track comes from when a front end turns it on (`set_media`): the real capture
/// on a desktop, synthetic twins in tests and on machines without devices.
pub trait TrackSources: Send + Sync + std::fmt::Debug {
    /// Starts capturing and encoding `kind`.
    fn open(&self, kind: TrackKind) -> Result<TrackFeed, MediaError>;
}

/// No capture at all: turning a track on is refused with a clear reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSources;

impl TrackSources for NoSources {
    fn open(&self, kind: TrackKind) -> Result<TrackFeed, MediaError> {
        let what = match kind {
            TrackKind::Camera => "camera",
            TrackKind::Microphone => "microphone",
            TrackKind::Screen => "screen capture",
        };
        Err(MediaError::Unavailable(format!("this program has no {what}")))
    }
}

/// The synthetic twins, for machines without devices and for tests: the synthetic camera,
/// screen and microphone (a tone).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyntheticSources;

impl TrackSources for SyntheticSources {
    fn open(&self, kind: TrackKind) -> Result<TrackFeed, MediaError> {
        match kind {
            TrackKind::Camera => TrackFeed::synthetic_camera(),
            TrackKind::Screen => TrackFeed::synthetic_screen(),
            TrackKind::Microphone => TrackFeed::synthetic_microphone(),
        }
    }
}

/// This machine's own devices: a screen, a microphone cleaned of what the speaker plays
/// through `echo`, and (with the `camera` feature) a camera; each the one chosen, else the
/// primary or default one.
#[derive(Debug, Clone, Default)]
pub struct DeviceSources {
    /// The display to share, as `confab_media::ScreenSource::displays` names it.
    pub screen: Option<String>,
    /// The microphone and camera, by the ids their lists give; none: the system's default.
    pub microphone: Option<String>,
    pub camera: Option<String>,
    /// Shared with the speaker, so its sound is taken out of the microphone's.
    pub echo: confab_media::VoiceProcessing,
}

impl TrackSources for DeviceSources {
    fn open(&self, kind: TrackKind) -> Result<TrackFeed, MediaError> {
        match kind {
            TrackKind::Screen => confab_media::screens()
                .and_then(|screens| screens.open(self.screen.as_deref()))
                .and_then(TrackFeed::screen),
            TrackKind::Microphone => confab_media::Microphone::open(self.microphone.as_deref())
                .map(|mic| confab_media::CleanMicrophone::new(mic, self.echo.clone()))
                .and_then(|mic| TrackFeed::microphone(Box::new(mic))),
            #[cfg(feature = "camera")]
            TrackKind::Camera => confab_media::Camera::open(self.camera.as_deref())
                .and_then(|camera| TrackFeed::camera(Box::new(camera))),
            #[cfg(not(feature = "camera"))]
            TrackKind::Camera => NoSources.open(kind),
        }
    }
}

/// A track a peer started sending us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTrack {
    /// The peer, under the id its events carry.
    pub peer: PeerId,
    pub audio: bool,
    /// The streams it is announced in (`a=msid`).
    pub stream_ids: Vec<String>,
    /// Its codec, as negotiated (`video/VP8`).
    pub mime_type: String,
}

impl IncomingTrack {
    /// What it is, given what the peer announced (browsers name their screen's stream in
    /// `screen_track`; native peers use the kinds' stream ids).
    pub fn kind(&self, announced: &MediaState) -> TrackKind {
        if self.audio {
            return TrackKind::Microphone;
        }
        let screen = self.stream_ids.iter().any(|id| {
            id == TrackKind::Screen.stream_id() || announced.screen_track.as_ref() == Some(id)
        });
        if screen { TrackKind::Screen } else { TrackKind::Camera }
    }
}

/// One whole encoded frame of an incoming track, reassembled from its RTP packets: a VP8 frame
/// for a decoder or WebCodecs, or a 20 ms Opus packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingFrame {
    pub data: bytes::Bytes,
    /// Its RTP timestamp (90 kHz for video, 48 kHz for Opus).
    pub rtp_timestamp: u32,
    /// The RTP time since the frame before (zero for the first).
    pub duration: std::time::Duration,
    /// A decoder can start here (every Opus packet can).
    pub keyframe: bool,
    /// Packets given up on since the frame before (lost, or too late): a video decoder should
    /// wait for the next keyframe.
    pub lost_before: u16,
}

/// Where incoming tracks go, chosen by the front end. A program with no sink receives no media
/// at all: its answers decline every track, so peers spend nothing sending to it.
pub trait IncomingMedia: Send + Sync + std::fmt::Debug {
    /// A peer started sending `track`; its frames go to what this returns.
    fn track(&self, track: IncomingTrack) -> Box<dyn TrackSink>;
}

/// One incoming track's frames, whole, in order.
pub trait TrackSink: Send {
    fn frame(&mut self, frame: IncomingFrame);
    /// The track ended (the peer stopped sending it, or the connection is gone).
    fn ended(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_sources_turning_a_track_on_says_what_is_missing() {
        let refused = NoSources.open(TrackKind::Microphone).unwrap_err();
        assert_eq!(refused.to_string(), "this program has no microphone");
    }

    #[test]
    fn media_names_our_screen_stream_and_a_receiver_tells_screen_from_camera() {
        let media = MediaState { screen: true, ..MediaState::default() };
        let tracks = TrackSet::new();
        assert_eq!(media_of(&tracks), MediaState::default());
        let track = |audio, stream: &str| IncomingTrack {
            peer: "AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap(),
            audio,
            stream_ids: vec![stream.to_owned()],
            mime_type: String::new(),
        };
        assert_eq!(track(false, "confab-screen").kind(&MediaState::default()), TrackKind::Screen);
        assert_eq!(track(false, "confab-camera").kind(&media), TrackKind::Camera);
        // A browser names its screen's stream in `screen_track`.
        let browser = MediaState { screen_track: Some("{abc}".into()), ..media };
        assert_eq!(track(false, "{abc}").kind(&browser), TrackKind::Screen);
        assert_eq!(track(false, "{def}").kind(&browser), TrackKind::Camera);
        assert_eq!(track(true, "{def}").kind(&browser), TrackKind::Microphone);
    }
}
