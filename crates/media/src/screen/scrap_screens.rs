//! Screens through `scrap`, for Windows (DXGI desktop duplication) and macOS (CGDisplayStream).
//! Linux captures through x11rb instead (see the `x11` module for why); the tests build this
//! backend on Linux too, where scrap reads X11, so its code runs under Xvfb.
//!
//! scrap's capturers stay on the thread that made them (they hold COM objects, a dispatch
//! queue's callback, or an `Rc`), so each capture runs on a thread of its own that owns its
//! capturer and answers one request per frame.

use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::convert::bgra_to_i420;

/// The longest a display may take to hand over a picture before the capture is called stuck.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn failed(op: &'static str) -> impl Fn(io::Error) -> MediaError {
    move |e| MediaError::Capture { op, detail: e.to_string() }
}

/// The displays scrap finds. It lists the main display first on Windows and macOS, and gives no
/// names: the picker shows each by its number and size.
#[derive(Debug)]
pub struct ScrapScreens;

impl ScreenSource for ScrapScreens {
    fn displays(&self) -> Result<Vec<Display>, MediaError> {
        let found = scrap::Display::all().map_err(failed("list the displays"))?;
        if found.is_empty() {
            return Err(MediaError::Unavailable("this machine shows no display to share".into()));
        }
        Ok(found
            .iter()
            .enumerate()
            .map(|(index, d)| {
                let (width, height) = (d.width() as u32, d.height() as u32);
                Display {
                    id: index.to_string(),
                    name: format!("Screen {} ({width}×{height})", index + 1),
                    width,
                    height,
                    primary: index == 0,
                    chosen_by_system: false,
                }
            })
            .collect())
    }

    fn thumbnail(&self, id: &str) -> Result<Thumbnail, MediaError> {
        let mut grabber = Grabber::open(self.index(Some(id))?)?;
        let deadline = Instant::now() + ANSWER_WITHIN;
        let mut picture = Vec::new();
        // A display hands over its first picture when it has one: poll until it does.
        while !grabber.grab(&mut picture)? {
            if Instant::now() > deadline {
                return Err(MediaError::Capture {
                    op: "read the screen",
                    detail: "the display gave no picture".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let stride = grabber.stride(&picture)?;
        Ok(thumbnail_of(&picture, stride, grabber.width, grabber.height))
    }

    fn open(&self, id: Option<&str>) -> Result<Box<dyn VideoSource>, MediaError> {
        let grabber = Grabber::open(self.index(id)?)?;
        let (width, height, scale) = scaled_size(grabber.width, grabber.height);
        Ok(Box::new(ScrapCapture {
            grabber,
            size: (width, height),
            scale,
            last: Vec::new(),
            current: Vec::new(),
            fresh: true,
        }))
    }
}

impl ScrapScreens {
    /// The position in scrap's list of the display `id` names (`None`: the main one).
    fn index(&self, id: Option<&str>) -> Result<usize, MediaError> {
        let Some(id) = id else { return Ok(0) };
        let displays = self.displays()?;
        displays.iter().position(|d| d.id == id).ok_or_else(|| {
            let known = displays.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ");
            MediaError::BadSetting(format!("no display {id:?}; this machine has: {known}"))
        })
    }
}

/// A capture thread's answer to one request: the buffer sent (holding the picture if there
/// was a new one), and whether there was.
type Answer = (Vec<u8>, io::Result<bool>);

/// The handle on one display's capture thread; the thread ends when this is dropped.
struct Grabber {
    requests: mpsc::Sender<Vec<u8>>,
    answers: mpsc::Receiver<Answer>,
    width: u32,
    height: u32,
}

impl Grabber {
    fn open(index: usize) -> Result<Self, MediaError> {
        let (requests, requested) = mpsc::channel::<Vec<u8>>();
        let (answer, answers) = mpsc::channel::<Answer>();
        let (opened, open_result) = mpsc::channel();
        std::thread::Builder::new().name("confab-screen".into()).spawn(move || {
            let capturer = scrap::Display::all().and_then(|all| {
                let display = all.into_iter().nth(index).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the display is gone")
                })?;
                scrap::Capturer::new(display)
            });
            let mut capturer = match capturer {
                Ok(capturer) => capturer,
                Err(e) => {
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            let _ = opened.send(Ok((capturer.width() as u32, capturer.height() as u32)));
            for mut buffer in requested {
                let got = match capturer.frame() {
                    Ok(frame) => {
                        buffer.clear();
                        buffer.extend_from_slice(&frame);
                        Ok(true)
                    }
                    // Nothing new on the screen since the last picture (DXGI, Quartz).
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                    Err(e) => Err(e),
                };
                if answer.send((buffer, got)).is_err() {
                    break;
                }
            }
        })?;
        let (width, height) = open_result
            .recv_timeout(ANSWER_WITHIN)
            .map_err(|_| stuck())?
            .map_err(failed("start capturing the screen"))?;
        if width == 0 || height == 0 {
            return Err(MediaError::Unavailable(format!(
                "the display is {width}×{height}: there is nothing to share"
            )));
        }
        Ok(Self { requests, answers, width, height })
    }

    /// Reads the display into `picture` if it changed since the last read; false if it did not.
    fn grab(&mut self, picture: &mut Vec<u8>) -> Result<bool, MediaError> {
        self.requests.send(std::mem::take(picture)).map_err(|_| stuck())?;
        let (buffer, got) = self.answers.recv_timeout(ANSWER_WITHIN).map_err(|_| stuck())?;
        *picture = buffer;
        got.map_err(failed("read the screen"))
    }

    /// The distance between rows of a picture this display handed over: the system may pad
    /// rows, so it is the picture's length over its height.
    fn stride(&self, picture: &[u8]) -> Result<usize, MediaError> {
        let stride = picture.len() / self.height as usize;
        if stride < self.width as usize * 4 {
            return Err(MediaError::Capture {
                op: "read the screen",
                detail: format!(
                    "a picture of {} bytes is too short for {}×{}",
                    picture.len(),
                    self.width,
                    self.height
                ),
            });
        }
        Ok(stride)
    }
}

fn stuck() -> MediaError {
    MediaError::SourceEnded("the screen capture stopped answering".into())
}

/// One display, captured on its own thread.
struct ScrapCapture {
    grabber: Grabber,
    size: (u32, u32),
    scale: u32,
    /// The last picture read, and the one being read now (BGRA, rows as the system gave them).
    last: Vec<u8>,
    current: Vec<u8>,
    /// Nothing read yet: the first picture is always converted.
    fresh: bool,
}

impl VideoSource for ScrapCapture {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn frame_rate(&self) -> u32 {
        SCREEN_FPS
    }

    fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError> {
        if !self.grabber.grab(&mut self.current)? {
            return Ok(Captured::Unchanged);
        }
        // X11 (and DXGI after some events) hands over a picture even when nothing moved.
        if !self.fresh && self.current == self.last {
            return Ok(Captured::Unchanged);
        }
        let stride = self.grabber.stride(&self.current)?;
        self.fresh = false;
        std::mem::swap(&mut self.current, &mut self.last);
        let (width, height) = (self.grabber.width, self.grabber.height);
        bgra_to_i420(&self.last, stride, width, height, self.scale, frame)?;
        Ok(Captured::Changed)
    }
}
