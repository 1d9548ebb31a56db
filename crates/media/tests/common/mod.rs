//! The harness confab-media's integration tests share.
// Each test file uses a part of the harness.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::mpsc;

use confab_media::{EncodedFrame, FrameSink, MediaError};

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
