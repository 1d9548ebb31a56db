//! Real cameras through `nokhwa` (V4L2 on Linux, AVFoundation on macOS, Media Foundation on
//! Windows), behind the same [`VideoSource`] trait as the synthetic camera.
//!
//! Built only with the `camera` feature (the desktop build turns it on): on Linux, nokhwa's
//! V4L2 bindings are generated at build time and need libclang. Pictures are asked for in YUYV,
//! which nearly every camera offers uncompressed and which converts to I420 without decoding;
//! a camera that offers only MJPEG is refused with a clear message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::Duration;

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use crate::MediaError;
use crate::convert::yuyv_to_i420;
use crate::frame::I420Frame;
use crate::source::{Captured, VideoSource};

/// What a camera is asked for: 640×480 at 30 fps, a meeting tile's worth.
const WANTED: (u32, u32, u32) = (640, 480, 30);

/// A camera this machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraDevice {
    /// What [`Camera::open`] takes.
    pub id: String,
    /// What to show a person.
    pub name: String,
}

fn camera_error(op: &'static str) -> impl Fn(nokhwa::NokhwaError) -> MediaError {
    move |e| MediaError::Device { op, detail: e.to_string() }
}

/// The cameras this machine has.
pub fn cameras() -> Result<Vec<CameraDevice>, MediaError> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(camera_error("list the cameras"))?;
    Ok(found
        .into_iter()
        .map(|info| CameraDevice { id: info.index().to_string(), name: info.human_name() })
        .collect())
}

/// A real camera, delivering I420 pictures. nokhwa's camera cannot move between threads, so it
/// lives on a thread of its own, which converts each picture and hands over the latest. (That
/// thread notices it should stop when its next picture comes: a camera that stops delivering
/// keeps it, and the device, until then.)
pub struct Camera {
    latest: Arc<Latest>,
    /// Whether a picture was taken yet: the first may take a camera a while.
    started: bool,
    stop: Arc<AtomicBool>,
    width: u32,
    height: u32,
    fps: u32,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .finish_non_exhaustive()
    }
}

/// A camera this slow to deliver has stopped; the first picture may take longer.
const CAMERA_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_PICTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// The newest picture (or the camera's failure), replaced as each comes: a reader that fell
/// behind gets the latest, never an old one.
#[derive(Default)]
struct Latest {
    picture: Mutex<Option<Result<I420Frame, MediaError>>>,
    arrived: Condvar,
}

impl Camera {
    /// Opens the camera `id` (see [`cameras`]), or the first one, at the YUYV format closest to
    /// 640×480 at 30 fps.
    pub fn open(id: Option<&str>) -> Result<Self, MediaError> {
        let index = match id {
            None => CameraIndex::Index(0),
            Some(id) => {
                id.parse().map_or_else(|_| CameraIndex::String(id.to_owned()), CameraIndex::Index)
            }
        };
        let name = id.unwrap_or("0").to_owned();
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let latest = Arc::new(Latest::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, newest) = (stop.clone(), latest.clone());
        std::thread::Builder::new().name("confab-camera".into()).spawn(move || {
            let mut camera = match start(index, &name) {
                Ok((camera, size)) => {
                    let _ = opened_tx.send(Ok(size));
                    camera
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            while !stopped.load(Ordering::Relaxed) {
                let picture = capture(&mut camera);
                let failed = picture.is_err();
                *newest.picture.lock().unwrap_or_else(PoisonError::into_inner) = Some(picture);
                newest.arrived.notify_all();
                if failed {
                    break;
                }
            }
            let _ = camera.stop_stream();
        })?;
        let (width, height, fps) = opened
            .recv()
            .map_err(|_| MediaError::SourceEnded("the camera thread stopped".into()))??;
        Ok(Self { latest, started: false, stop, width, height, fps })
    }
}

/// Opens and starts the camera; returns it and its picture size and rate.
fn start(index: CameraIndex, name: &str) -> Result<(nokhwa::Camera, (u32, u32, u32)), MediaError> {
    let (width, height, fps) = WANTED;
    let wanted = CameraFormat::new(Resolution::new(width, height), FrameFormat::YUYV, fps);
    let request =
        RequestedFormat::with_formats(RequestedFormatType::Closest(wanted), &[FrameFormat::YUYV]);
    let mut camera = nokhwa::Camera::new(index, request)
        .map_err(|e| MediaError::Unavailable(format!("cannot open the camera {name}: {e}")))?;
    let format = camera.camera_format();
    if format.format() != FrameFormat::YUYV {
        return Err(MediaError::Unavailable(format!(
            "the camera {name} offers {} only; Confab takes YUYV",
            format.format()
        )));
    }
    camera.open_stream().map_err(camera_error("start the camera"))?;
    let resolution = format.resolution();
    // I420 halves both sides of the colour planes: an odd side loses its last pixel.
    let size = (resolution.width() & !1, resolution.height() & !1, format.frame_rate().max(1));
    Ok((camera, size))
}

fn capture(camera: &mut nokhwa::Camera) -> Result<I420Frame, MediaError> {
    let buffer = camera.frame().map_err(|e| MediaError::SourceEnded(e.to_string()))?;
    let resolution = buffer.resolution();
    let mut picture = I420Frame::black(resolution.width() & !1, resolution.height() & !1)?;
    yuyv_to_i420(buffer.buffer(), resolution.width() as usize * 2, &mut picture)?;
    Ok(picture)
}

impl VideoSource for Camera {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn frame_rate(&self) -> u32 {
        self.fps
    }

    fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError> {
        let timeout = if self.started { CAMERA_TIMEOUT } else { FIRST_PICTURE_TIMEOUT };
        let slot = self.latest.picture.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut slot, _) = self
            .latest
            .arrived
            .wait_timeout_while(slot, timeout, |picture| picture.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        let picture = slot.take().ok_or_else(|| {
            MediaError::SourceEnded("the camera stopped delivering pictures".into())
        })??;
        drop(slot);
        self.started = true;
        if (picture.width(), picture.height()) != (frame.width(), frame.height()) {
            return Err(MediaError::BadSize(format!(
                "the camera changed its picture to {}×{}",
                picture.width(),
                picture.height()
            )));
        }
        *frame = picture;
        Ok(Captured::Changed)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
