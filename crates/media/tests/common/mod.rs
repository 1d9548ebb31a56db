//! The harness confab-media's integration tests share.
// Each test file uses a part of the harness.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_media::{
    Captured, EncodedFrame, FrameSink, I420Frame, MediaError, Thumbnail, VideoSource,
};

/// The colour (RGB) of a thumbnail's pixel at `x, y`.
pub fn thumbnail_rgb(thumb: &Thumbnail, x: u32, y: u32) -> [u8; 3] {
    let at = ((y * thumb.width + x) * 4) as usize;
    [thumb.rgba[at], thumb.rgba[at + 1], thumb.rgba[at + 2]]
}

/// Captures from `source` into `picture` until a capture brings a new picture; fails the test,
/// naming `awaited`, if none comes within 20 s.
pub fn capture_until_changed(source: &mut dyn VideoSource, picture: &mut I420Frame, awaited: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.capture(picture).unwrap() == Captured::Unchanged {
        assert!(Instant::now() < deadline, "{awaited} never came");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pipeline's sink that sends every frame to the test; a failed pipeline fails the test.
pub struct ToTest(pub mpsc::Sender<EncodedFrame>);

impl FrameSink for ToTest {
    fn wanted(&self) -> bool {
        true
    }
    fn deliver(&mut self, frame: EncodedFrame) -> bool {
        self.0.send(frame).is_ok()
    }
    fn failed(&mut self, error: MediaError) {
        panic!("the pipeline failed: {error}");
    }
}

/// A private X server (Xvfb) for one test, on a display number it picks itself; stopped when
/// dropped.
#[cfg(target_os = "linux")]
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

#[cfg(target_os = "linux")]
impl Xvfb {
    pub fn start(width: u32, height: u32) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb (Debian's xvfb, installed by scripts/setup.sh)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let number: u32 = line.trim().parse().expect("Xvfb prints its display number");
        Self { child, display: format!(":{number}") }
    }

    /// Paints a rectangle of the root window in one colour (0xRRGGBB), as a moving window would.
    pub fn paint(&self, x: i16, y: i16, width: u16, height: u16, rgb: u32) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ConnectionExt, CreateGCAux, Rectangle};
        let (conn, screen) = x11rb::connect(Some(&self.display)).unwrap();
        let root = conn.setup().roots[screen].root;
        let gc = conn.generate_id().unwrap();
        conn.create_gc(gc, root, &CreateGCAux::new().foreground(rgb)).unwrap();
        conn.poly_fill_rectangle(root, gc, &[Rectangle { x, y, width, height }]).unwrap();
        conn.free_gc(gc).unwrap();
        x11rb::wrapper::ConnectionExt::sync(&conn).unwrap();
    }
}

#[cfg(target_os = "linux")]
impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PipeWire for one test (its own runtime directory and D-Bus session, with
/// WirePlumber to link streams, as a desktop session runs them), and video nodes on it made by
/// GStreamer; every process is stopped when dropped.
#[cfg(target_os = "linux")]
pub struct PipeWire {
    dir: tempfile::TempDir,
    children: Vec<std::process::Child>,
}

#[cfg(target_os = "linux")]
impl PipeWire {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut pipewire = Self { dir, children: Vec::new() };
        // WirePlumber needs a session bus; one that starts nothing on demand (see the file).
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-session-bus.conf");
        let bus = format!("unix:path={}", pipewire.dir.path().join("bus").display());
        pipewire.spawn(
            "dbus-daemon",
            &[&format!("--config-file={config}"), "--nofork", &format!("--address={bus}")],
        );
        pipewire.wait_until("the session bus", |p| p.dir.path().join("bus").exists());
        pipewire.spawn("pipewire", &[]);
        pipewire.wait_until("PipeWire's socket", |p| p.dir.path().join("pipewire-0").exists());
        pipewire.spawn("wireplumber", &[]);
        pipewire
    }

    /// A connection to this PipeWire, as the portal hands one over.
    pub fn connect(&self) -> std::os::fd::OwnedFd {
        std::os::unix::net::UnixStream::connect(self.dir.path().join("pipewire-0")).unwrap().into()
    }

    /// A node that sends `width × height` BGRx pictures of one colour (`0xAARRGGBB`) at 30 fps,
    /// as a screen cast does; its id.
    pub fn solid_video(&mut self, width: u32, height: u32, argb: u32) -> u32 {
        let name = format!("confab-test-{argb:08x}");
        let caps = format!("video/x-raw,format=BGRx,width={width},height={height},framerate=30/1");
        self.spawn(
            "gst-launch-1.0",
            &[
                "-q",
                "videotestsrc",
                "pattern=solid-color",
                &format!("foreground-color={argb:#x}"),
                "!",
                &caps,
                "!",
                "pipewiresink",
                "mode=provide",
                &format!("stream-properties=p,node.name={name}"),
            ],
        );
        let mut id = None;
        self.wait_until("the video node", |p| {
            id = p.node_id(&name);
            id.is_some()
        });
        id.unwrap()
    }

    /// The id of the node called `name`, as `pw-dump` lists it.
    fn node_id(&self, name: &str) -> Option<u32> {
        let out = self.command("pw-dump").output().ok()?;
        let objects: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        objects.as_array()?.iter().find_map(|o| {
            let named = o["info"]["props"]["node.name"] == name;
            named.then(|| o["id"].as_u64().and_then(|id| u32::try_from(id).ok())).flatten()
        })
    }

    fn command(&self, program: &str) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        let bus = format!("unix:path={}", self.dir.path().join("bus").display());
        command
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .env_remove("PIPEWIRE_REMOTE");
        command
    }

    fn spawn(&mut self, program: &str, args: &[&str]) {
        let child = self
            .command(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
        self.children.push(child);
    }

    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done(self) {
            assert!(std::time::Instant::now() < deadline, "no {what} within 20 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for PipeWire {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
