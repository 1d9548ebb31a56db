//! How much a peer may send us on `sync` and `ctl`: a token bucket of messages and one of bytes,
//! on the mesh's clock. A peer over either is flooding: its connection is dropped, and not made
//! again while it keeps its signaling id; the others carry on.

use confab_proto::limits::{
    PEER_BYTE_BURST, PEER_BYTES_PER_SECOND, PEER_MESSAGE_BURST, PEER_MESSAGES_PER_SECOND,
};

#[derive(Debug, Clone)]
pub(super) struct Intake {
    messages: f64,
    bytes: f64,
    at_ms: i64,
}

impl Intake {
    pub(super) fn new(now_ms: i64) -> Self {
        Self {
            messages: f64::from(PEER_MESSAGE_BURST),
            bytes: PEER_BYTE_BURST as f64,
            at_ms: now_ms,
        }
    }

    /// Takes one message of `bytes`; `false` when the peer has sent more than it may.
    pub(super) fn take(&mut self, now_ms: i64, bytes: usize) -> bool {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.at_ms = self.at_ms.max(now_ms);
        self.messages = (self.messages + elapsed * f64::from(PEER_MESSAGES_PER_SECOND))
            .min(f64::from(PEER_MESSAGE_BURST));
        self.bytes =
            (self.bytes + elapsed * PEER_BYTES_PER_SECOND as f64).min(PEER_BYTE_BURST as f64);
        if self.messages < 1.0 || self.bytes < bytes as f64 {
            return false;
        }
        self.messages -= 1.0;
        self.bytes -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_more_is_refused_and_time_gives_some_back() {
        let mut intake = Intake::new(0);
        let burst = PEER_MESSAGE_BURST as usize;
        assert!((0..burst).all(|_| intake.take(0, 10)), "the whole burst at once");
        assert!(!intake.take(0, 10), "one more at the same instant");
        // A tenth of a second later, a tenth of a second's worth.
        let refilled = (0..burst).take_while(|_| intake.take(100, 10)).count();
        assert_eq!(refilled, PEER_MESSAGES_PER_SECOND as usize / 10);
    }

    #[test]
    fn bytes_are_limited_apart_from_messages() {
        let mut intake = Intake::new(0);
        let mib = 1024 * 1024;
        let frames = PEER_BYTE_BURST as usize / mib;
        assert!((0..frames).all(|_| intake.take(0, mib)), "a snapshot's worth at once");
        assert!(!intake.take(0, mib), "more than that is refused");
        assert!(intake.take(1000, mib), "after a second, a second's worth");
    }
}
