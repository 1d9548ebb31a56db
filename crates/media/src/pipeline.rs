//! The sending side of one video source: capture, encode, hand over, at the frame rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::MediaError;
use crate::frame::I420Frame;
use crate::source::{Captured, VideoSource};
use crate::vpx::{Content, VideoCodec, VpxConfig, VpxEncoder};

/// The least time between two keyframes made on request.
const KEYFRAME_MIN_GAP: Duration = Duration::from_millis(300);
/// After a screen stops changing, the still picture is encoded this long more: each frame
/// refines it (CBR spends the bits the changes no longer need), so text ends up crisp.
const REFINE_FOR: Duration = Duration::from_secs(1);
/// A screen still for this long is polled only every [`IDLE_POLL_EVERY`] frames, so a static
/// slide costs almost nothing; the first change after it waits at most that many frames.
const IDLE_AFTER: Duration = Duration::from_secs(2);
const IDLE_POLL_EVERY: u32 = 3;

/// One whole encoded frame, ready for one `write_sample`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// When the picture was captured.
    pub captured_at: Instant,
    /// How long it is shown: one frame interval.
    pub duration: Duration,
}

/// Where a pipeline's frames go.
pub trait FrameSink: Send + 'static {
    /// Whether anyone wants frames now; while not, nothing is captured or encoded.
    fn wanted(&self) -> bool;
    /// Takes one frame; returning `false` stops the pipeline for good.
    fn deliver(&mut self, frame: EncodedFrame) -> bool;
    /// The pipeline stopped because capture or encoding failed.
    fn failed(&mut self, error: MediaError);
}

/// Paces a capture thread: [`Pacer::wait`] returns once per interval.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    pub(crate) fn new(interval: Duration) -> Self {
        Self { interval, next: Instant::now() }
    }

    /// Waits for the next deadline. Paced by deadline, not by sleeping a fixed interval, so
    /// encoding time does not slow the rate; after a stall it skips ahead rather than bursts.
    pub(crate) fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > self.interval {
            self.next = now;
        }
        self.next += self.interval;
    }
}

/// A running source → VP8 or VP9 → sink thread. Dropping it stops the thread within a frame.
#[derive(Debug)]
pub struct VideoPipeline {
    keyframe_wanted: Arc<AtomicBool>,
    /// The bitrate the encoder should aim at, in kbit/s; the thread applies a change before
    /// the next frame.
    bitrate_kbps: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl VideoPipeline {
    /// Starts capturing from `source` and encoding its `content` in `codec` at `bitrate_kbps`.
    pub fn start(
        mut source: Box<dyn VideoSource>,
        codec: VideoCodec,
        content: Content,
        bitrate_kbps: u32,
        mut sink: impl FrameSink,
    ) -> Result<Self, MediaError> {
        let (width, height) = source.size();
        let fps = source.frame_rate();
        let config = VpxConfig { codec, content, width, height, fps, bitrate_kbps };
        let mut encoder = VpxEncoder::new(config)?;
        let mut picture = I420Frame::black(width, height)?;
        let keyframe_wanted = Arc::new(AtomicBool::new(true));
        let bitrate = Arc::new(AtomicU32::new(bitrate_kbps));
        let stop = Arc::new(AtomicBool::new(false));
        let (keyframe, target_kbps, stopped) =
            (keyframe_wanted.clone(), bitrate.clone(), stop.clone());
        let interval = Duration::from_secs(1) / fps;
        std::thread::Builder::new().name("confab-video".into()).spawn(move || {
            let mut pacer = Pacer::new(interval);
            let mut last_keyframe: Option<Instant> = None;
            let mut last_change = Instant::now();
            let mut idle_ticks = 0;
            while !stopped.load(Ordering::Relaxed) {
                pacer.wait();
                if !sink.wanted() {
                    // A viewer who arrives later must start from a keyframe.
                    keyframe.store(true, Ordering::Relaxed);
                    continue;
                }
                let captured_at = Instant::now();
                let idle = captured_at - last_change;
                idle_ticks = (idle_ticks + 1) % IDLE_POLL_EVERY;
                let keyframe_asked = keyframe.load(Ordering::Relaxed);
                if idle >= IDLE_AFTER && idle_ticks != 0 && !keyframe_asked {
                    continue;
                }
                // Requests that come too soon after a keyframe wait for the gap to pass: every
                // viewer gets each keyframe, and a storm of requests (or one peer asking on
                // every frame) must not turn the stream into keyframes only.
                let force_keyframe = last_keyframe
                    .is_none_or(|at| captured_at - at >= KEYFRAME_MIN_GAP)
                    && keyframe.swap(false, Ordering::Relaxed);
                let target = target_kbps.load(Ordering::Relaxed);
                if target != encoder.bitrate_kbps() && encoder.set_bitrate(target).is_err() {
                    // Refused: the picture goes on at the rate it had; not asked again, unless
                    // a new rate came meanwhile.
                    let had = encoder.bitrate_kbps();
                    let _ = target_kbps.compare_exchange(
                        target,
                        had,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                let frames = source.capture(&mut picture).and_then(|captured| {
                    if captured == Captured::Changed {
                        last_change = captured_at;
                    } else if idle >= REFINE_FOR && !force_keyframe {
                        // Still, and already refined: nothing to send.
                        return Ok(Vec::new());
                    }
                    encoder.encode(&picture, force_keyframe)
                });
                let frames = match frames {
                    Ok(frames) => frames,
                    Err(e) => {
                        sink.failed(e);
                        return;
                    }
                };
                for frame in frames {
                    if frame.keyframe {
                        last_keyframe = Some(captured_at);
                        // A keyframe is made within one frame's bits, so on a still screen it
                        // is refined again like a change would be: a viewer who joins during a
                        // still slide sees its text sharpen, not stay blurred.
                        last_change = captured_at;
                    }
                    let frame = EncodedFrame {
                        data: frame.data,
                        keyframe: frame.keyframe,
                        captured_at,
                        duration: interval,
                    };
                    if !sink.deliver(frame) {
                        return;
                    }
                }
            }
        })?;
        Ok(Self { keyframe_wanted, bitrate_kbps: bitrate, stop })
    }

    /// The bitrate the frames aim at, in kbit/s.
    pub fn bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps.load(Ordering::Relaxed)
    }

    /// Aims the following frames at `bitrate_kbps`; zero is taken as 1.
    pub fn set_bitrate(&self, bitrate_kbps: u32) {
        self.bitrate_kbps.store(bitrate_kbps.max(1), Ordering::Relaxed);
    }

    /// The next frame will be a keyframe (a viewer joined, or lost the picture).
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Relaxed);
    }
}

impl Drop for VideoPipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
