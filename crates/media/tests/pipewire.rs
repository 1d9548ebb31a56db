//! The capture behind Wayland screen sharing, against a real PipeWire: the portal hands over a
//! PipeWire connection and a node, and this is what happens after. (The portal's own handshake
//! is tested in confab-cli's `wayland` tests; on this machine no compositor can cast.)
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::{PipeWire, capture_until_changed};
use confab_media::{Captured, I420Frame, pipewire_video};

/// #d03030: in limited-range BT.601, luma about 98, red difference about 198, blue below 128.
const RED: u32 = 0xffd0_3030;

#[test]
fn a_pipewire_screen_arrives_at_its_size_in_its_colours_and_a_still_one_costs_nothing() {
    let mut pipewire = PipeWire::start();
    let node = pipewire.solid_video(640, 360, RED);
    let mut capture = pipewire_video(node, pipewire.connect()).unwrap();
    assert_eq!(capture.size(), (640, 360));

    let mut picture = I420Frame::black(640, 360).unwrap();
    capture_until_changed(capture.as_mut(), &mut picture, "a picture");
    let (luma, blue, red) = centre(&mut picture);
    assert!((88..=108).contains(&luma), "luma {luma}");
    assert!(red > 170 && blue < 128, "red difference {red}, blue difference {blue}: not red");

    // The same picture keeps coming, 30 times a second: none of it is converted again.
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(33));
        assert_eq!(capture.capture(&mut picture).unwrap(), Captured::Unchanged);
    }
}

/// The centre pixel's luma and colour differences (U, V).
fn centre(picture: &mut I420Frame) -> (u8, u8, u8) {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let (y, u, v) = picture.planes_mut();
    let at = (h / 4) * (w / 2) + w / 4;
    (y[(h / 2) * w + w / 2], u[at], v[at])
}
