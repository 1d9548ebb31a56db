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

/// What a capture thread needs of scrap's capturer. X11 never fails the way DXGI does (a
/// timeout on a still screen, access lost when the desktop switches), so the tests play those
/// with a scripted twin.
trait Capture {
    fn size(&self) -> (u32, u32);
    /// Copies the next picture into `into`.
    fn read(&mut self, into: &mut Vec<u8>) -> io::Result<()>;
}

impl Capture for scrap::Capturer {
    fn size(&self) -> (u32, u32) {
        (self.width() as u32, self.height() as u32)
    }

    fn read(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
        let frame = self.frame()?;
        into.clear();
        into.extend_from_slice(&frame);
        Ok(())
    }
}

/// A capture of the display at `index` in scrap's list.
fn scrap_capture(index: usize) -> io::Result<scrap::Capturer> {
    let all = scrap::Display::all()?;
    let display = all
        .into_iter()
        .nth(index)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the display is gone"))?;
    scrap::Capturer::new(display)
}

/// Reads one picture into `buffer`: whether there was a new one. Where the system took the
/// screen away (DXGI loses it to a lock screen or an elevation prompt), the capture is opened
/// again, and the sharing goes on if the display kept its size.
fn read_next<C: Capture>(
    capture: &mut C,
    open: &impl Fn() -> io::Result<C>,
    buffer: &mut Vec<u8>,
) -> io::Result<bool> {
    match capture.read(buffer) {
        Ok(()) => Ok(true),
        // Nothing new since the last picture: Quartz's empty slot, DXGI's timeout.
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            let reopened = open()?;
            if reopened.size() != capture.size() {
                let (width, height) = reopened.size();
                return Err(io::Error::other(format!(
                    "the display is now {width}×{height}: share it again"
                )));
            }
            *capture = reopened;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The handle on one display's capture thread; the thread ends when this is dropped.
struct Grabber {
    requests: mpsc::Sender<Vec<u8>>,
    answers: mpsc::Receiver<Answer>,
    width: u32,
    height: u32,
}

impl Grabber {
    fn open(index: usize) -> Result<Self, MediaError> {
        Self::start(move || scrap_capture(index))
    }

    /// Starts a capture thread that opens its capture with `open`.
    fn start<C: Capture + 'static>(
        open: impl Fn() -> io::Result<C> + Send + 'static,
    ) -> Result<Self, MediaError> {
        let (requests, requested) = mpsc::channel::<Vec<u8>>();
        let (answer, answers) = mpsc::channel::<Answer>();
        let (opened, open_result) = mpsc::channel();
        std::thread::Builder::new().name("confab-screen".into()).spawn(move || {
            let mut capture = match open() {
                Ok(capture) => capture,
                Err(e) => {
                    let _ = opened.send(Err(e));
                    return;
                }
            };
            let _ = opened.send(Ok(capture.size()));
            for mut buffer in requested {
                let got = read_next(&mut capture, &open, &mut buffer);
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
    /// The last picture read (empty before the first), and the one being read now (BGRA, rows
    /// as the system gave them).
    last: Vec<u8>,
    current: Vec<u8>,
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
        // X11 (and DXGI after some events) hands over a picture even when nothing moved. Before
        // the first picture `last` is empty, so the first is always converted.
        if self.current == self.last {
            return Ok(Captured::Unchanged);
        }
        let stride = self.grabber.stride(&self.current)?;
        std::mem::swap(&mut self.current, &mut self.last);
        let (width, height) = (self.grabber.width, self.grabber.height);
        bgra_to_i420(&self.last, stride, width, height, self.scale, frame)?;
        Ok(Captured::Changed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A capture that answers from a script, as DXGI would: pictures (one byte each, so a
    /// 1×1 display's row is padded to 4), timeouts, lost access.
    struct Scripted {
        size: (u32, u32),
        script: Arc<Mutex<VecDeque<io::Result<u8>>>>,
    }

    impl Capture for Scripted {
        fn size(&self) -> (u32, u32) {
            self.size
        }

        fn read(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
            let next = self.script.lock().unwrap().pop_front().expect("the script ran out")?;
            *into = vec![next; 4];
            Ok(())
        }
    }

    /// A grabber on a scripted capture; each opening takes the next of `sizes`, and the count of
    /// openings is returned beside it.
    fn scripted(
        sizes: Vec<(u32, u32)>,
        script: Vec<io::Result<u8>>,
    ) -> (Grabber, Arc<AtomicUsize>) {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let openings = Arc::new(AtomicUsize::new(0));
        let counted = openings.clone();
        let grabber = Grabber::start(move || {
            let size = sizes[counted.fetch_add(1, Ordering::SeqCst)];
            Ok(Scripted { size, script: script.clone() })
        })
        .unwrap();
        (grabber, openings)
    }

    fn fails(kind: io::ErrorKind) -> io::Result<u8> {
        Err(io::Error::from(kind))
    }

    #[test]
    fn timeouts_are_a_still_screen_and_lost_access_reopens_the_capture() {
        use io::ErrorKind::*;
        let script = vec![Ok(1), fails(TimedOut), fails(WouldBlock), fails(ConnectionReset), Ok(2)];
        let (mut grabber, openings) = scripted(vec![(1, 1), (1, 1)], script);
        let mut picture = Vec::new();
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(grabber.grab(&mut picture).unwrap());
        }
        assert_eq!(got, [true, false, false, false, true]);
        assert_eq!(picture, [2; 4], "the picture after the reopening");
        assert_eq!(openings.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_display_that_changed_size_or_a_failed_read_ends_the_capture_with_the_reason() {
        use io::ErrorKind::*;
        let (mut grabber, _) = scripted(vec![(1, 1), (2, 2)], vec![fails(ConnectionReset)]);
        match grabber.grab(&mut Vec::new()) {
            Err(MediaError::Capture { detail, .. }) => {
                assert_eq!(detail, "the display is now 2×2: share it again")
            }
            other => panic!("expected a capture error, got {other:?}"),
        }
        let (mut grabber, _) = scripted(vec![(1, 1)], vec![fails(PermissionDenied)]);
        assert!(matches!(grabber.grab(&mut Vec::new()), Err(MediaError::Capture { .. })));
    }
}
