//! The harness confab-media's integration tests share.

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
