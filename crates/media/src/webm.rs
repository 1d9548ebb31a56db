//! Recording: whole VP8 and Opus frames muxed into a WebM file as they are given, never encoded
//! again, so muxing costs no CPU beyond writing and keeps the quality that was sent.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use webm::mux::{
    AudioCodecId, AudioTrack, Segment, SegmentBuilder, VideoCodecId, VideoTrack, Writer,
};

use crate::MediaError;
use crate::audio::SAMPLE_RATE;

/// Samples an Opus decoder discards at the start (libopus's look-ahead at 48 kHz), as the
/// `OpusHead` in the file tells players.
const OPUS_PRE_SKIP: u16 = 312;

/// A WebM file with one VP8 track and one Opus track (48 kHz mono).
pub struct WebmRecorder {
    segment: Segment<BufWriter<File>>,
    video: VideoTrack,
    audio: AudioTrack,
    /// The last timestamp written: WebM needs them non-decreasing across both tracks.
    last: Duration,
    /// Frames not written yet, by time (and arrival, to keep equal times apart).
    pending: BTreeMap<(Duration, u64), Held>,
    queued: u64,
    /// The latest time given so far.
    newest: Duration,
}

/// One frame waiting to be written.
#[derive(Debug)]
struct Held {
    video: bool,
    data: Vec<u8>,
    keyframe: bool,
}

/// How far apart the two tracks' stamps may arrive out of order.
const REORDER_WINDOW: Duration = Duration::from_millis(500);

impl std::fmt::Debug for WebmRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebmRecorder").field("last", &self.last).finish_non_exhaustive()
    }
}

fn failed(op: &'static str) -> impl FnOnce(webm::mux::Error) -> MediaError {
    move |e| MediaError::Recording { op, detail: e.to_string() }
}

impl WebmRecorder {
    /// Creates `path`, for video of `width`×`height` and sound.
    pub fn create(path: &Path, width: u32, height: u32) -> Result<Self, MediaError> {
        let file = File::create(path).map_err(|e| MediaError::Recording {
            op: "create",
            detail: format!("{}: {e}", path.display()),
        })?;
        let builder = SegmentBuilder::new(Writer::new(BufWriter::new(file)))
            .map_err(failed("start"))?
            .set_writing_app("confab")
            .map_err(failed("start"))?;
        let (builder, video) = builder
            .add_video_track(width, height, VideoCodecId::VP8, None)
            .map_err(failed("add the video track"))?;
        let (builder, audio) = builder
            .add_audio_track(SAMPLE_RATE, 1, AudioCodecId::Opus, None)
            .map_err(failed("add the audio track"))?;
        // Opus in WebM carries its identification header (RFC 7845 §5.1) as the codec's
        // private data: version 1, one channel, the pre-skip, the input rate, no gain, mapping 0.
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1]);
        head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let builder = builder.set_codec_private(audio, &head).map_err(failed("describe Opus"))?;
        let (pending, queued, newest) = (BTreeMap::new(), 0, Duration::ZERO);
        Ok(Self {
            segment: builder.build(),
            video,
            audio,
            last: Duration::ZERO,
            pending,
            queued,
            newest,
        })
    }

    /// Writes one whole VP8 frame, `at` from the start of the recording.
    pub fn video(&mut self, frame: &[u8], at: Duration, keyframe: bool) -> Result<(), MediaError> {
        self.queue(Held { video: true, data: frame.to_vec(), keyframe }, at)
    }

    /// Writes one Opus packet, `at` from the start of the recording.
    pub fn audio(&mut self, packet: &[u8], at: Duration) -> Result<(), MediaError> {
        self.queue(Held { video: false, data: packet.to_vec(), keyframe: true }, at)
    }

    /// Holds `frame` until frames up to [`REORDER_WINDOW`] later have come, then writes what
    /// is old enough in time order: the two tracks' stamps interleave (sound is stamped when it
    /// arrived, but handed over after its jitter buffer).
    fn queue(&mut self, frame: Held, at: Duration) -> Result<(), MediaError> {
        self.pending.insert((at, self.queued), frame);
        self.queued += 1;
        self.newest = self.newest.max(at);
        while let Some(entry) = self.pending.first_entry()
            && entry.key().0 + REORDER_WINDOW <= self.newest
        {
            let ((at, _), frame) = entry.remove_entry();
            self.write(frame, at)?;
        }
        Ok(())
    }

    fn write(&mut self, frame: Held, at: Duration) -> Result<(), MediaError> {
        // One that came later than the window allows still goes in, at the file's clock.
        self.last = self.last.max(at);
        let at = nanos(self.last);
        if frame.video {
            self.segment.add_frame(self.video, &frame.data, at, frame.keyframe)
        } else {
            self.segment.add_frame(self.audio, &frame.data, at, true)
        }
        .map_err(failed(if frame.video { "write video" } else { "write audio" }))
    }

    /// Writes what is held, the index, and closes the file; a recording not finished may not
    /// play.
    pub fn finish(mut self) -> Result<(), MediaError> {
        while let Some(((at, _), frame)) = self.pending.pop_first() {
            self.write(frame, at)?;
        }
        let writer = self.segment.finalize(None).map_err(|_| MediaError::Recording {
            op: "finish",
            detail: "libwebm could not finalize the file (was nothing written?)".into(),
        })?;
        let mut file = writer.into_inner();
        std::io::Write::flush(&mut file)
            .map_err(|e| MediaError::Recording { op: "finish", detail: e.to_string() })
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// The picture size a VP8 keyframe declares (RFC 6386 §9.1); `None` for an interframe or
/// something that is not VP8.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    let header = frame.get(..10)?;
    let keyframe = header[0] & 1 == 0;
    if !keyframe || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((u32::from(width), u32::from(height)))
}
