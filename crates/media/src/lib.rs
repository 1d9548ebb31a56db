//! # confab-media — frames in, encoded samples out
//!
//! Turns a video or audio source into whole encoded frames, paced at the source's rate, ready to
//! be written to a WebRTC track one frame per sample; and turns encoded frames back into pictures
//! and sound.
//!
//! ## Layout
//! - [`frame`]: [`I420Frame`], one picture in the planar YUV 4:2:0 layout the encoders take.
//! - [`source`]: the [`VideoSource`] trait every capture implements, and [`SyntheticCamera`],
//!   the twin of a real camera for machines with none: a moving test pattern that carries its
//!   frame number and capture time as a stamp [`read_stamp`] reads back, even after a lossy
//!   codec.
//! - `camera` (with the `camera` feature): `Camera`, a real camera through nokhwa, as a
//!   [`VideoSource`].
//! - [`screen`]: [`ScreenSource`], the displays a person can share (with thumbnails) and the
//!   capture of one; [`screens`] picks the backend for the session (X11, or the desktop portal
//!   in a Wayland session; scrap on Windows and macOS).
//! - [`convert`]: BGRA → I420 with SIMD, once per changed screen frame.
//! - [`vpx`]: [`VpxEncoder`] (libvpx in realtime mode, keyframes on request) and
//!   [`VpxDecoder`].
//! - [`pipeline`]: [`VideoPipeline`], a thread that captures, encodes and hands each frame to a
//!   [`FrameSink`] at the frame rate; the entry point for senders.
//! - [`audio`]: the [`AudioSource`] trait, [`SineTone`] (the synthetic microphone), Opus
//!   ([`OpusEncoder`], [`OpusDecoder`], against the system libopus) and [`AudioPipeline`], the
//!   same for sound in 20 ms frames.
//! - [`jitter`]: [`JitterBuffer`], one voice's packets, as the network delivers them, turned
//!   back into steady sound, with loss rebuilt (FEC) or concealed.
//! - [`playout`]: [`Playout`], every peer's voice through its jitter buffer, mixed, and played
//!   to an [`AudioSink`] every 20 ms.
//! - [`voice`]: [`VoiceProcessing`], echo cancellation and noise suppression for the microphone
//!   ([`CleanMicrophone`]), fed the far end by the speaker.
//! - [`device`]: real microphones ([`Microphone`]) and speakers ([`Speaker`]) through cpal.
//! - [`webm`]: [`WebmRecorder`], whole VP8 and Opus frames muxed into a WebM file as they are.
//!
//! ## What it never does
//! It knows nothing of meetings, peers or WebRTC (confab-core puts its frames on tracks), and
//! it never depends on tokio: the pipeline is a plain thread, because encoding is CPU work that
//! must not stall an async runtime.

pub mod audio;
#[cfg(feature = "camera")]
pub mod camera;
pub mod convert;
pub mod device;
pub mod frame;
pub mod jitter;
pub mod pipeline;
pub mod playout;
pub mod screen;
pub mod source;
pub mod voice;
pub mod vpx;
pub mod webm;

pub use audio::{
    AudioPipeline, AudioSource, Beeps, OpusDecoder, OpusEncoder, SineTone, tone_share,
    wall_clock_ms,
};
#[cfg(feature = "camera")]
pub use camera::{Camera, CameraDevice, cameras};
pub use device::{AudioDevice, Microphone, Speaker, microphones, speakers};
pub use frame::I420Frame;
pub use jitter::{JitterBuffer, JitterStats, Played};
pub use pipeline::{EncodedFrame, FrameSink, VideoPipeline};
pub use playout::{
    AudioSink, MixListener, Playout, Silent, SoundRecorder, VoiceInput, VoiceListener,
};
#[cfg(feature = "scrap")]
pub use screen::ScrapScreens;
#[cfg(all(target_os = "linux", feature = "portal"))]
pub use screen::pipewire_video;
#[cfg(target_os = "linux")]
pub use screen::x11_display;
pub use screen::{Display, ScreenSource, Thumbnail, screens};
pub use source::{Captured, Stamp, SyntheticCamera, VideoSource, read_stamp, wall_clock_millis};
pub use voice::{CleanMicrophone, VoiceProcessing};
pub use vpx::{Content, VideoCodec, VpxConfig, VpxDecoder, VpxEncoder, VpxFrame};
pub use webm::{WebmRecorder, vp8_keyframe_size};

/// What can go wrong turning frames into samples and back.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Odd, zero or absurd dimensions, or a frame whose size does not match them.
    #[error("bad video size: {0}")]
    BadSize(String),
    /// A frame rate or bitrate out of range.
    #[error("bad video setting: {0}")]
    BadSetting(String),
    /// libvpx (VP8 or VP9) refused an operation; `detail` is its own message.
    #[error("libvpx {op} failed: {detail}")]
    Codec { op: &'static str, detail: String },
    /// libopus refused an operation; `detail` is its own message.
    #[error("Opus {op} failed: {detail}")]
    Opus { op: &'static str, detail: String },
    /// A recording could not be written.
    #[error("cannot {op} the recording: {detail}")]
    Recording { op: &'static str, detail: String },
    /// The screen or a device refused a capture step; `detail` is its own message.
    #[error("screen capture: cannot {op}: {detail}")]
    Capture { op: &'static str, detail: String },
    /// A microphone, speaker or camera refused an operation, or sound processing failed; `op`
    /// says which ("open the microphone"), `detail` is the system's own message.
    #[error("cannot {op}: {detail}")]
    Device { op: &'static str, detail: String },
    /// A capture (camera, screen, microphone) stopped delivering.
    #[error("capture stopped: {0}")]
    SourceEnded(String),
    /// A source this machine or build cannot provide (no camera, no screen capture).
    #[error("{0}")]
    Unavailable(String),
    /// The operating system refused a thread for the pipeline.
    #[error("cannot start the media thread: {0}")]
    Thread(#[from] std::io::Error),
}
