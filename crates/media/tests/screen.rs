//! Screen capture against a real X server (Xvfb): the picker's list and thumbnails, captures
//! that skip a still screen, scaling of large screens, and clear errors.
#![cfg(target_os = "linux")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ToTest, Xvfb, capture_until_changed, thumbnail_rgb};
use confab_media::{
    Captured, Content, I420Frame, MediaError, VideoCodec, VideoPipeline, x11_display,
};

const RED: u32 = 0xff0000;
const WHITE: u32 = 0xffffff;
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_picker_lists_the_display_with_its_name_size_and_a_thumbnail() {
    let x = Xvfb::start(1280, 720);
    x.paint(0, 0, 640, 720, RED);
    let screens = x11_display(Some(&x.display));
    let displays = screens.displays().unwrap();
    assert_eq!(displays.len(), 1, "{displays:?}");
    let display = &displays[0];
    assert_eq!((display.width, display.height), (1280, 720));
    assert!(display.primary && display.name.contains("1280×720"), "{display:?}");

    let thumb = screens.thumbnail(&display.id).unwrap();
    assert_eq!((thumb.width, thumb.height), (320, 180));
    assert_eq!(thumbnail_rgb(&thumb, 10, 90), [255, 0, 0], "the red half");
    assert_eq!(thumbnail_rgb(&thumb, 300, 90), [0, 0, 0], "the black half");
}

#[test]
fn a_still_screen_is_not_read_again_and_a_change_is_seen() {
    let x = Xvfb::start(640, 480);
    let mut capture = x11_display(Some(&x.display)).open(None).unwrap();
    assert_eq!(capture.size(), (640, 480));
    let mut picture = I420Frame::black(640, 480).unwrap();
    assert_eq!(capture.capture(&mut picture).unwrap(), Captured::Changed, "the first picture");
    for _ in 0..5 {
        assert_eq!(capture.capture(&mut picture).unwrap(), Captured::Unchanged);
    }

    x.paint(100, 100, 200, 100, WHITE);
    capture_until_changed(capture.as_mut(), &mut picture, "the change");
    assert_eq!(picture.luma(200, 150), 235, "the white rectangle");
    assert_eq!(picture.luma(20, 20), 16, "the black around it");
}

#[test]
fn a_still_screen_stops_costing_frames_once_its_picture_is_refined() {
    let x = Xvfb::start(640, 480);
    x.paint(0, 0, 320, 240, WHITE);
    let capture = x11_display(Some(&x.display)).open(None).unwrap();
    let (tx, frames) = mpsc::channel();
    let _pipeline =
        VideoPipeline::start(capture, VideoCodec::Vp8, Content::Screen, 1000, ToTest(tx)).unwrap();
    let first = frames.recv_timeout(WAIT).expect("a first frame");
    assert!(first.keyframe, "the first frame is a keyframe");

    // Once the picture has been refined for a while, a still screen sends nothing.
    let started = Instant::now();
    let mut last = Instant::now();
    while let Ok(frame) = frames.recv_timeout(Duration::from_millis(1500)) {
        last = frame.captured_at;
        assert!(started.elapsed() < WAIT, "frames keep coming from a still screen");
    }
    let refined_for = last - first.captured_at;
    assert!(refined_for <= Duration::from_secs(2), "refined for {refined_for:?}");

    // A change is sent at once.
    x.paint(320, 240, 320, 240, RED);
    let changed = frames.recv_timeout(WAIT).expect("the change is sent");
    assert!(changed.captured_at > last);
}

#[test]
fn a_screen_larger_than_1080p_is_scaled_to_fit() {
    let x = Xvfb::start(3840, 2160);
    let capture = x11_display(Some(&x.display)).open(None).unwrap();
    assert_eq!(capture.size(), (1920, 1080));
}

#[test]
fn an_unknown_display_or_a_missing_server_is_a_clear_error() {
    let x = Xvfb::start(640, 480);
    let screens = x11_display(Some(&x.display));
    match screens.open(Some("7")) {
        Err(MediaError::BadSetting(why)) => {
            assert!(why.contains("\"7\"") && why.ends_with("this machine has: 0"), "{why}")
        }
        other => panic!("expected a bad setting, got {:?}", other.map(|_| ())),
    }
    drop(x);
    let gone = x11_display(Some(":9999"));
    match gone.displays() {
        Err(MediaError::Capture { op, .. }) => assert_eq!(op, "connect to X"),
        other => panic!("expected a capture error, got {other:?}"),
    }
}
