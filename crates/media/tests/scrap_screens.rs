//! The screen backend of Windows and macOS builds (scrap), run here through scrap's X11 capture
//! against Xvfb: the picker's list and thumbnail, captures that report a still screen, the
//! change that follows, scaling, and a clear error for an unknown display.
//!
//! scrap finds its X server only through `DISPLAY`, which this one test sets for the whole
//! process: keep it the only test in this file.
#![cfg(target_os = "linux")]

mod common;

use common::{Xvfb, capture_until_changed, thumbnail_rgb};
use confab_media::{Captured, I420Frame, MediaError, ScrapScreens, ScreenSource};

const RED: u32 = 0xff0000;
const WHITE: u32 = 0xffffff;

#[test]
fn scrap_lists_thumbnails_and_captures_a_screen_and_sees_it_change() {
    let x = Xvfb::start(2560, 1440);
    // SAFETY: the only test in this binary sets it before any thread that could read it.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("DISPLAY", &x.display)
    };
    x.paint(0, 0, 1280, 1440, RED);
    let screens = ScrapScreens;

    let displays = screens.displays().unwrap();
    assert_eq!(displays.len(), 1, "{displays:?}");
    let display = &displays[0];
    assert_eq!((display.width, display.height), (2560, 1440));
    assert!(display.primary && display.name == "Screen 1 (2560×1440)", "{display:?}");

    let thumb = screens.thumbnail(&display.id).unwrap();
    assert_eq!((thumb.width, thumb.height), (320, 180));
    assert_eq!(thumbnail_rgb(&thumb, 10, 90), [255, 0, 0], "the red half");
    assert_eq!(thumbnail_rgb(&thumb, 300, 90), [0, 0, 0], "the black half");

    // 2560×1440 is shrunk by the whole factor 2.
    let mut capture = screens.open(None).unwrap();
    assert_eq!(capture.size(), (1280, 720));
    let mut picture = I420Frame::black(1280, 720).unwrap();
    capture_until_changed(capture.as_mut(), &mut picture, "a first picture");
    assert_eq!(picture.luma(100, 360), 81, "the red half");
    assert_eq!(picture.luma(1000, 360), 16, "the black half");
    // scrap's X11 capture hands over a picture every time: a still one must still be seen as one.
    for _ in 0..5 {
        assert_eq!(capture.capture(&mut picture).unwrap(), Captured::Unchanged);
    }

    x.paint(1280, 0, 1280, 1440, WHITE);
    capture_until_changed(capture.as_mut(), &mut picture, "the change");
    assert_eq!(picture.luma(1000, 360), 235, "the white half");

    match screens.open(Some("7")) {
        Err(MediaError::BadSetting(why)) => {
            assert!(why.contains("\"7\"") && why.ends_with("this machine has: 0"), "{why}")
        }
        other => panic!("expected a bad setting, got {:?}", other.map(|_| ())),
    }
}
