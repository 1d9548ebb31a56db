//! Screens: the displays a person can share, each with a thumbnail for the picker, and the
//! capture of one as a [`VideoSource`].
//!
//! [`screens`] picks the backend for the session: on Linux, in a Wayland session the
//! xdg-desktop-portal ScreenCast and PipeWire (with the `portal` feature), where the system's
//! dialog chooses the screen; otherwise X11 (through `x11rb`, with MIT-SHM and DAMAGE) where
//! there is an X display. On Windows and macOS, scrap (with the `scrap` feature): DXGI desktop
//! duplication and CGDisplayStream. Where none can work (a build without the portal in a
//! Wayland session, no display at all), sharing fails with [`MediaError::Unavailable`] saying
//! why.
//!
//! Capture is cheap while nothing moves: the X server reports damage, and a screen with none is
//! not read at all; a damaged one is read and compared with the last picture, and only a real
//! change is converted. The pipeline encodes an unchanged picture only while it refines it
//! after a change (or for a keyframe), then stops until the next one.

use crate::MediaError;
use crate::frame::I420Frame;
use crate::source::{Captured, VideoSource};

/// Widest and tallest picture we send of a screen; larger screens are scaled down to fit.
const MAX_SCREEN_SIZE: (u32, u32) = (1920, 1080);
/// Frames per second a screen is polled at: motion gets up to this, a still screen costs nothing.
const SCREEN_FPS: u32 = 30;
/// Width of a picker's thumbnail.
const THUMBNAIL_WIDTH: u32 = 320;

/// One display a person may share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    /// What [`ScreenSource::open`] takes: stable while the display layout does not change.
    pub id: String,
    /// What the person sees in the picker: the output's name and its size.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// The display the desktop calls primary.
    pub primary: bool,
    /// The system's own dialog chooses what is shared (the Wayland portal's): an app's picker
    /// has nothing to offer but this entry.
    pub chosen_by_system: bool,
}

/// A small picture of a display, for the picker: RGBA, `width × height × 4` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbnail({}×{})", self.width, self.height)
    }
}

/// Where screens come from on this machine.
pub trait ScreenSource: Send + Sync {
    /// Every display that can be shared, the primary first.
    fn displays(&self) -> Result<Vec<Display>, MediaError>;
    /// A small picture of one display as it is now.
    fn thumbnail(&self, id: &str) -> Result<Thumbnail, MediaError>;
    /// Starts capturing one display (`None`: the primary), at most [`MAX_SCREEN_SIZE`].
    fn open(&self, id: Option<&str>) -> Result<Box<dyn VideoSource>, MediaError>;
}

/// The screen source for this session (see the module's text); otherwise an error that says
/// what is missing.
pub fn screens() -> Result<Box<dyn ScreenSource>, MediaError> {
    #[cfg(not(target_os = "linux"))]
    {
        #[cfg(feature = "scrap")]
        return Ok(Box::new(ScrapScreens));
        #[cfg(not(feature = "scrap"))]
        return Err(MediaError::Unavailable(
            "this build of Confab was made without screen capture (the `scrap` feature)".into(),
        ));
    }
    #[cfg(target_os = "linux")]
    linux_screens()
}

#[cfg(target_os = "linux")]
fn linux_screens() -> Result<Box<dyn ScreenSource>, MediaError> {
    let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland");
    if wayland {
        #[cfg(all(target_os = "linux", feature = "portal"))]
        return Ok(Box::new(portal::PortalScreens));
        // X11 capture under XWayland sees only X windows, and black elsewhere: never pretend.
        #[cfg(not(all(target_os = "linux", feature = "portal")))]
        return Err(MediaError::Unavailable(
            "sharing a screen in a Wayland session needs the desktop portal, which this build \
             of Confab was made without (the `portal` feature); log in to an X11 session to \
             share your screen"
                .into(),
        ));
    }
    if std::env::var_os("DISPLAY").is_some() {
        return Ok(x11_display(None));
    }
    Err(MediaError::Unavailable("there is no display to share: DISPLAY is not set".into()))
}

/// The screens of one X display (`None`: the session's, from `DISPLAY`), such as a test's Xvfb.
#[cfg(target_os = "linux")]
pub fn x11_display(name: Option<&str>) -> Box<dyn ScreenSource> {
    Box::new(x11::X11Screens { display: name.map(str::to_owned) })
}

/// The size a `width × height` screen is sent at: itself if it fits [`MAX_SCREEN_SIZE`], else
/// shrunk by the smallest whole factor that fits (whole factors keep text's strokes even), and
/// made even, as I420 needs.
fn scaled_size(width: u32, height: u32) -> (u32, u32, u32) {
    let (max_w, max_h) = MAX_SCREEN_SIZE;
    let factor = width.div_ceil(max_w).max(height.div_ceil(max_h)).max(1);
    ((width / factor) & !1, (height / factor) & !1, factor)
}

/// A small RGBA copy of a BGRA picture, `THUMBNAIL_WIDTH` wide, by nearest sample.
fn thumbnail_of(bgra: &[u8], stride: usize, width: u32, height: u32) -> Thumbnail {
    let thumb_w = THUMBNAIL_WIDTH.min(width).max(1);
    let thumb_h = (u64::from(height) * u64::from(thumb_w) / u64::from(width)).max(1) as u32;
    let mut rgba = Vec::with_capacity((thumb_w * thumb_h * 4) as usize);
    for ty in 0..thumb_h {
        let y = (u64::from(ty) * u64::from(height) / u64::from(thumb_h)) as usize;
        for tx in 0..thumb_w {
            let x = (u64::from(tx) * u64::from(width) / u64::from(thumb_w)) as usize;
            let at = y * stride + x * 4;
            let [b, g, r] = [bgra[at], bgra[at + 1], bgra[at + 2]];
            rgba.extend_from_slice(&[r, g, b, 255]);
        }
    }
    Thumbnail { width: thumb_w, height: thumb_h, rgba }
}

#[cfg(all(target_os = "linux", feature = "portal"))]
mod portal;
#[cfg(feature = "scrap")]
mod scrap_screens;
#[cfg(all(target_os = "linux", feature = "portal"))]
pub use portal::pipewire_video;
#[cfg(feature = "scrap")]
pub use scrap_screens::ScrapScreens;

#[cfg(target_os = "linux")]
mod x11 {
    //! X11 through x11rb: RandR for the monitors, MIT-SHM for fast reads, DAMAGE to skip
    //! still screens.
    //!
    //! The shared memory is a private memfd handed to the X server, so no other process on the
    //! machine can read the screen through it (SysV segments, as scrap uses, are world-readable
    //! by default).

    use std::fs::File;
    use std::os::unix::fs::FileExt;

    use x11rb::connection::{Connection, RequestConnection};
    use x11rb::protocol::Event;
    use x11rb::protocol::damage::{self, ConnectionExt as _};
    use x11rb::protocol::randr::ConnectionExt as _;
    use x11rb::protocol::shm::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
    use x11rb::rust_connection::RustConnection;

    use super::*;
    use crate::convert::bgra_to_i420;

    fn failed(op: &'static str) -> impl Fn(&dyn std::fmt::Display) -> MediaError {
        move |e| MediaError::Capture { op, detail: e.to_string() }
    }

    /// A monitor's place on the root window.
    #[derive(Debug, Clone, Copy)]
    struct Area {
        x: i16,
        y: i16,
        width: u16,
        height: u16,
    }

    struct Server {
        conn: RustConnection,
        /// The X screen `DISPLAY` names (`:0.1` is screen 1), and its root window.
        screen: usize,
        root: Window,
    }

    impl Server {
        fn connect(display: Option<&str>) -> Result<Self, MediaError> {
            let (conn, screen) = x11rb::connect(display).map_err(|e| failed("connect to X")(&e))?;
            let root = conn.setup().roots[screen].root;
            let depth = conn.setup().roots[screen].root_depth;
            let bpp = conn.setup().pixmap_formats.iter().find(|f| f.depth == depth);
            if depth != 24 && depth != 32 || bpp.is_none_or(|f| f.bits_per_pixel != 32) {
                return Err(MediaError::Unavailable(format!(
                    "the X display is {depth} bits deep; screen sharing needs 24 or 32"
                )));
            }
            Ok(Self { conn, screen, root })
        }

        /// The monitors, primary first, each with its id (its index in RandR's list).
        fn monitors(&self) -> Result<Vec<(Display, Area)>, MediaError> {
            let reply = self
                .conn
                .randr_get_monitors(self.root, true)
                .map_err(|e| failed("list monitors")(&e))?
                .reply();
            let mut found = Vec::new();
            // A server without RandR 1.5 refuses: it has one monitor, the whole root window.
            if let Ok(reply) = reply {
                for (index, m) in reply.monitors.iter().enumerate() {
                    let name = self
                        .conn
                        .get_atom_name(m.name)
                        .ok()
                        .and_then(|c| c.reply().ok())
                        .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                        .unwrap_or_else(|| format!("Screen {}", index + 1));
                    let area = Area { x: m.x, y: m.y, width: m.width, height: m.height };
                    found.push((display(index, &name, area, m.primary), area));
                }
            }
            if found.is_empty() {
                let screen = &self.conn.setup().roots[self.screen];
                let area = Area {
                    x: 0,
                    y: 0,
                    width: screen.width_in_pixels,
                    height: screen.height_in_pixels,
                };
                found.push((display(0, "Screen", area, true), area));
            }
            // With no primary set (as on Xvfb), the first monitor is the default one.
            if !found.iter().any(|(d, _)| d.primary) {
                found[0].0.primary = true;
            }
            found.sort_by_key(|(d, _)| !d.primary);
            Ok(found)
        }

        fn monitor(&self, id: Option<&str>) -> Result<(Display, Area), MediaError> {
            let monitors = self.monitors()?;
            let Some(id) = id else { return Ok(monitors[0].clone()) };
            let known = monitors.iter().map(|(d, _)| d.id.as_str()).collect::<Vec<_>>().join(", ");
            monitors.into_iter().find(|(d, _)| d.id == id).ok_or_else(|| {
                MediaError::BadSetting(format!("no display {id:?}; this machine has: {known}"))
            })
        }

        /// One read through the socket, for thumbnails: slower than shared memory, but needs
        /// none.
        fn read(&self, area: Area) -> Result<Vec<u8>, MediaError> {
            let reply = self
                .conn
                .get_image(
                    ImageFormat::Z_PIXMAP,
                    self.root,
                    area.x,
                    area.y,
                    area.width,
                    area.height,
                    !0,
                )
                .map_err(|e| failed("read the screen")(&e))?
                .reply()
                .map_err(|e| failed("read the screen")(&e))?;
            Ok(reply.data)
        }
    }

    fn display(index: usize, name: &str, area: Area, primary: bool) -> Display {
        let (width, height) = (u32::from(area.width), u32::from(area.height));
        Display {
            id: index.to_string(),
            name: format!("{name} ({width}×{height})"),
            width,
            height,
            primary,
            chosen_by_system: false,
        }
    }

    pub(super) struct X11Screens {
        pub(super) display: Option<String>,
    }

    impl ScreenSource for X11Screens {
        fn displays(&self) -> Result<Vec<Display>, MediaError> {
            let server = Server::connect(self.display.as_deref())?;
            Ok(server.monitors()?.into_iter().map(|(d, _)| d).collect())
        }

        fn thumbnail(&self, id: &str) -> Result<Thumbnail, MediaError> {
            let server = Server::connect(self.display.as_deref())?;
            let (display, area) = server.monitor(Some(id))?;
            let bgra = server.read(area)?;
            Ok(thumbnail_of(&bgra, display.width as usize * 4, display.width, display.height))
        }

        fn open(&self, id: Option<&str>) -> Result<Box<dyn VideoSource>, MediaError> {
            Ok(Box::new(X11Capture::open(self.display.as_deref(), id)?))
        }
    }

    /// One monitor, captured through shared memory.
    struct X11Capture {
        server: Server,
        area: Area,
        size: (u32, u32),
        scale: u32,
        segment: shm::Seg,
        memory: File,
        damage: Option<damage::Damage>,
        /// The last picture read, and the one being read now (BGRA, no row padding).
        last: Vec<u8>,
        current: Vec<u8>,
        /// Nothing read yet: the first capture always reads.
        fresh: bool,
    }

    impl X11Capture {
        fn open(display: Option<&str>, id: Option<&str>) -> Result<Self, MediaError> {
            let server = Server::connect(display)?;
            let (_, area) = server.monitor(id)?;
            let conn = &server.conn;
            if conn.extension_information(shm::X11_EXTENSION_NAME).ok().flatten().is_none() {
                return Err(MediaError::Unavailable(
                    "the X server has no shared memory extension (MIT-SHM)".into(),
                ));
            }
            let bytes = usize::from(area.width) * usize::from(area.height) * 4;
            let memory: File =
                rustix::fs::memfd_create("confab-screen", rustix::fs::MemfdFlags::CLOEXEC)
                    .map_err(|e| failed("make shared memory")(&e))?
                    .into();
            memory.set_len(bytes as u64).map_err(|e| failed("make shared memory")(&e))?;
            let segment = conn.generate_id().map_err(|e| failed("make shared memory")(&e))?;
            let fd = memory.try_clone().map_err(|e| failed("make shared memory")(&e))?;
            conn.shm_attach_fd(segment, std::os::fd::OwnedFd::from(fd), false)
                .map_err(|e| failed("share memory with X")(&e))?
                .check()
                .map_err(|e| failed("share memory with X")(&e))?;
            // Without DAMAGE every poll reads and compares: still correct, only dearer.
            let damage = match conn.extension_information(damage::X11_EXTENSION_NAME) {
                Ok(Some(_)) => Self::watch_damage(&server).ok(),
                _ => None,
            };
            let (width, height, scale) =
                super::scaled_size(u32::from(area.width), u32::from(area.height));
            Ok(Self {
                server,
                area,
                size: (width, height),
                scale,
                segment,
                memory,
                damage,
                last: vec![0; bytes],
                current: vec![0; bytes],
                fresh: true,
            })
        }

        fn watch_damage(server: &Server) -> Result<damage::Damage, MediaError> {
            let conn = &server.conn;
            conn.damage_query_version(1, 1)
                .map_err(|e| failed("watch the screen")(&e))?
                .reply()
                .map_err(|e| failed("watch the screen")(&e))?;
            let id = conn.generate_id().map_err(|e| failed("watch the screen")(&e))?;
            conn.damage_create(id, server.root, damage::ReportLevel::NON_EMPTY)
                .map_err(|e| failed("watch the screen")(&e))?
                .check()
                .map_err(|e| failed("watch the screen")(&e))?;
            Ok(id)
        }

        /// Whether the X server reported any change since the last call (and clears it).
        fn damaged(&self) -> Result<bool, MediaError> {
            let Some(damage) = self.damage else { return Ok(true) };
            let conn = &self.server.conn;
            let mut any = false;
            while let Some(event) =
                conn.poll_for_event().map_err(|e| failed("watch the screen")(&e))?
            {
                any |= matches!(event, Event::DamageNotify(_));
            }
            if any {
                // Clear it before reading, so a change made during the read is reported again.
                conn.damage_subtract(damage, x11rb::NONE, x11rb::NONE)
                    .map_err(|e| failed("watch the screen")(&e))?;
                conn.flush().map_err(|e| failed("watch the screen")(&e))?;
            }
            Ok(any)
        }
    }

    impl VideoSource for X11Capture {
        fn size(&self) -> (u32, u32) {
            self.size
        }

        fn frame_rate(&self) -> u32 {
            SCREEN_FPS
        }

        fn capture(&mut self, frame: &mut I420Frame) -> Result<Captured, MediaError> {
            if !self.damaged()? && !self.fresh {
                return Ok(Captured::Unchanged);
            }
            let Area { x, y, width, height } = self.area;
            self.server
                .conn
                .shm_get_image(
                    self.server.root,
                    x,
                    y,
                    width,
                    height,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    self.segment,
                    0,
                )
                .map_err(|e| failed("read the screen")(&e))?
                .reply()
                .map_err(|e| failed("read the screen")(&e))?;
            self.memory
                .read_exact_at(&mut self.current, 0)
                .map_err(|e| failed("read the screen")(&e))?;
            if !self.fresh && self.current == self.last {
                return Ok(Captured::Unchanged);
            }
            self.fresh = false;
            std::mem::swap(&mut self.current, &mut self.last);
            let stride = usize::from(width) * 4;
            bgra_to_i420(
                &self.last,
                stride,
                u32::from(width),
                u32::from(height),
                self.scale,
                frame,
            )?;
            Ok(Captured::Changed)
        }
    }

    impl Drop for X11Capture {
        fn drop(&mut self) {
            let conn = &self.server.conn;
            if let Some(damage) = self.damage {
                let _ = conn.damage_destroy(damage);
            }
            let _ = conn.shm_detach(self.segment);
            let _ = conn.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_larger_than_1080p_are_scaled_by_whole_factors() {
        assert_eq!(scaled_size(1920, 1080), (1920, 1080, 1));
        assert_eq!(scaled_size(1280, 800), (1280, 800, 1));
        assert_eq!(scaled_size(3840, 2160), (1920, 1080, 2));
        assert_eq!(scaled_size(2560, 1440), (1280, 720, 2));
        assert_eq!(scaled_size(5120, 2880), (1706, 960, 3));
        assert_eq!(scaled_size(1366, 768), (1366, 768, 1));
    }

    #[test]
    fn a_thumbnail_keeps_the_aspect_and_the_colours() {
        // 640×360, red on the left half, blue on the right (BGRA).
        let (w, h) = (640u32, 360u32);
        let mut bgra = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                bgra.extend_from_slice(if x < w / 2 {
                    &[0, 0, 255, 255]
                } else {
                    &[255, 0, 0, 255]
                });
            }
        }
        let thumb = thumbnail_of(&bgra, w as usize * 4, w, h);
        assert_eq!((thumb.width, thumb.height), (320, 180));
        assert_eq!(&thumb.rgba[..4], &[255, 0, 0, 255]);
        let last = thumb.rgba.len() - 4;
        assert_eq!(&thumb.rgba[last..], &[0, 0, 255, 255]);
    }
}
