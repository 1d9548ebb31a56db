//! Whole frames from RTP packets, each released the moment its last packet arrives.
//!
//! `rtc`'s `SampleBuilder` holds a frame until a packet of the next one shows up (it wants the
//! next timestamp for the duration): a whole frame interval of delay, 33 ms at 30 fps and 20 ms
//! for Opus. Here a frame is complete when its packets run without a gap from one that starts a
//! frame to one that ends it (the marker bit for VP8; every Opus packet is both), all with one
//! timestamp. A frame that can never be whole (its start or its end is known lost) is skipped
//! at once; a gap waits for the missing packet (a retransmission, or a reordered packet) up to
//! a limit the codec sets, then everything before the next frame start is given up. Either way
//! the next frame says how many packets were lost before it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::Packet;
use rtc::rtp::packetizer::Depacketizer;

use crate::tracks::IncomingFrame;

/// Packets held while one is missing: a lost packet costs its frame, not everything after it.
const MAX_HELD_PACKETS: usize = 512;

pub(super) struct FrameAssembler<D: Depacketizer> {
    depacketizer: D,
    clock_rate: u32,
    /// Packets not yet released, by sequence number extended past its 16-bit wrap, with when
    /// each arrived.
    held: BTreeMap<u64, (Packet, Instant)>,
    /// The extended sequence number of the highest packet seen.
    highest: Option<u64>,
    /// Where the next frame starts; packets before it are late and dropped.
    next: Option<u64>,
    /// Packets given up on since the last frame released.
    lost: u64,
    last_timestamp: Option<u32>,
    /// How long a missing packet is waited for: long enough for a retransmission where there
    /// is one (video), only for reordering where there is none (Opus).
    max_wait: Duration,
    /// Whether `keyframe` holds for a frame's bytes.
    is_keyframe: fn(&[u8]) -> bool,
}

impl<D: Depacketizer> FrameAssembler<D> {
    pub(super) fn new(
        depacketizer: D,
        clock_rate: u32,
        max_wait: Duration,
        is_keyframe: fn(&[u8]) -> bool,
    ) -> Self {
        Self {
            depacketizer,
            clock_rate,
            max_wait,
            held: BTreeMap::new(),
            highest: None,
            next: None,
            lost: 0,
            last_timestamp: None,
            is_keyframe,
        }
    }

    /// Takes one packet; returns the frames it completed (or that a give-up released).
    pub(super) fn push(&mut self, now: Instant, packet: Packet) -> Vec<IncomingFrame> {
        let seq = self.extend(packet.header.sequence_number);
        if self.next.is_some_and(|next| seq < next) {
            return Vec::new();
        }
        self.held.entry(seq).or_insert((packet, now));
        let mut frames = Vec::new();
        loop {
            match self.step() {
                Step::Frame(frame) => frames.push(frame),
                Step::Skipped => {}
                Step::Wait if self.give_up_waiting(now) => {}
                Step::Wait => return frames,
            }
        }
    }

    /// The sequence number, extended to 64 bits as the one closest to the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Room below for packets that arrive a little out of order.
            let first = (1 << 16) + u64::from(seq);
            self.highest = Some(first);
            return first;
        };
        // The signed distance from the highest, as 16-bit sequence numbers wrap.
        let ahead = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let extended = highest.saturating_add_signed(ahead);
        self.highest = Some(highest.max(extended));
        extended
    }

    /// Releases the frame that starts where the next one should, if all of it is here; skips
    /// it at once if it can never be whole.
    fn step(&mut self) -> Step {
        let Some((&first, (head, _))) = self.held.first_key_value() else { return Step::Wait };
        let start = *self.next.get_or_insert(first);
        if first != start {
            return Step::Wait;
        }
        if !self.depacketizer.is_partition_head(&head.payload) {
            // This frame's start was before `next`, dropped or never seen: it cannot be whole.
            // Before any frame was released we joined mid-frame, and that is no loss.
            let joined = self.last_timestamp.is_none();
            self.skip_to_next_head(start);
            if joined {
                self.lost = 0;
            }
            return Step::Skipped;
        }
        let timestamp = head.header.timestamp;
        let mut end = start;
        loop {
            let Some((packet, _)) = self.held.get(&end) else { return Step::Wait };
            if packet.header.timestamp != timestamp {
                // The next frame began right after this one's last packet here: its tail is
                // lost for good.
                self.skip_to(start, end);
                return Step::Skipped;
            }
            if self.depacketizer.is_partition_tail(packet.header.marker, &packet.payload) {
                break;
            }
            end += 1;
        }
        let payloads: Vec<Bytes> = (start..=end)
            .filter_map(|seq| self.held.remove(&seq))
            .map(|(p, _)| p.payload)
            .collect();
        self.next = Some(end + 1);
        let mut data = BytesMut::with_capacity(payloads.iter().map(Bytes::len).sum());
        for payload in &payloads {
            match self.depacketizer.depacketize(payload) {
                Ok(part) => data.extend_from_slice(&part),
                Err(_) => {
                    self.lost += end + 1 - start;
                    return Step::Skipped;
                }
            }
        }
        let data: Bytes = data.freeze();
        let duration = self.last_timestamp.map_or(Duration::ZERO, |last| {
            let ticks = timestamp.wrapping_sub(last);
            Duration::from_secs_f64(f64::from(ticks) / f64::from(self.clock_rate))
        });
        self.last_timestamp = Some(timestamp);
        let lost_before = u16::try_from(std::mem::take(&mut self.lost)).unwrap_or(u16::MAX);
        Step::Frame(IncomingFrame {
            keyframe: (self.is_keyframe)(&data),
            data,
            rtp_timestamp: timestamp,
            duration,
            lost_before,
        })
    }

    /// When the oldest packet held has waited `max_wait` for a missing one (or too much is
    /// held), gives the missing packets up; returns whether it did.
    fn give_up_waiting(&mut self, now: Instant) -> bool {
        let Some((&first, (_, arrived))) = self.held.first_key_value() else { return false };
        if now.duration_since(*arrived) < self.max_wait && self.held.len() <= MAX_HELD_PACKETS {
            return false;
        }
        self.skip_to_next_head(self.next.unwrap_or(first));
        true
    }

    /// Goes on from the first packet held after `start` that starts a frame; with none, from
    /// whatever comes next.
    fn skip_to_next_head(&mut self, start: u64) {
        let head = self
            .held
            .range(start + 1..)
            .find(|(_, (p, _))| self.depacketizer.is_partition_head(&p.payload))
            .map(|(&seq, _)| seq);
        let resume = head.or(self.highest.map(|h| h + 1)).unwrap_or(start + 1);
        self.skip_to(start, resume);
    }

    /// Drops what is held before `resume`, counting the packets from `start` on as lost.
    fn skip_to(&mut self, start: u64, resume: u64) {
        self.lost += resume.saturating_sub(start);
        self.held.retain(|&seq, _| seq >= resume);
        self.next = Some(resume);
    }
}

enum Step {
    Frame(IncomingFrame),
    /// Packets were given up; something behind them may now be whole.
    Skipped,
    /// A packet is missing.
    Wait,
}

#[cfg(test)]
mod tests {
    use rtc::rtp::Header;
    use rtc::rtp::codec::opus::OpusPacket;
    use rtc::rtp::codec::vp8::Vp8Packet;

    use super::*;

    /// A VP8 packet: its payload descriptor (S set on a frame's first packet), then `byte` and
    /// two zeros (a VP8 payload is at least 4 bytes long).
    fn vp8(seq: u16, timestamp: u32, first: bool, last: bool, byte: u8) -> Packet {
        let descriptor = if first { 0x10 } else { 0x00 };
        Packet {
            header: Header { sequence_number: seq, timestamp, marker: last, ..Header::default() },
            payload: Bytes::from(vec![descriptor, byte, 0, 0]),
        }
    }

    const MAX_WAIT: Duration = Duration::from_millis(500);

    fn assembler() -> FrameAssembler<Vp8Packet> {
        FrameAssembler::new(Vp8Packet::default(), 90_000, MAX_WAIT, |_| false)
    }

    /// Each frame's data, as the `byte`s of its packets.
    fn data(frames: &[IncomingFrame]) -> Vec<Vec<u8>> {
        frames.iter().map(|f| f.data.iter().step_by(3).copied().collect()).collect()
    }

    #[test]
    fn a_frame_is_released_by_its_last_packet_not_by_the_next_frame() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert!(a.push(t0, vp8(10, 3000, true, false, 1)).is_empty());
        assert!(a.push(t0, vp8(11, 3000, false, false, 2)).is_empty());
        let frames = a.push(t0, vp8(12, 3000, false, true, 3));
        assert_eq!(data(&frames), [vec![1, 2, 3]]);
        assert_eq!((frames[0].rtp_timestamp, frames[0].lost_before), (3000, 0));
        let next = a.push(t0, vp8(13, 6000, true, true, 4));
        assert_eq!(data(&next), [vec![4]]);
        assert_eq!(next[0].duration, Duration::from_secs_f64(3000.0 / 90_000.0));
    }

    #[test]
    fn every_opus_packet_is_a_frame_at_once() {
        let opus = FrameAssembler::new(OpusPacket, 48_000, Duration::from_millis(60), |_| true);
        let (mut a, t0) = (opus, Instant::now());
        for (i, seq) in (500..503).enumerate() {
            let packet = Packet {
                header: Header {
                    sequence_number: seq,
                    timestamp: 960 * i as u32,
                    ..Header::default()
                },
                payload: Bytes::from(vec![i as u8; 3]),
            };
            let frames = a.push(t0, packet);
            assert_eq!(data(&frames), [vec![i as u8]]);
            assert!(frames[0].keyframe);
        }
    }

    #[test]
    fn packets_out_of_order_still_make_the_frame() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert!(a.push(t0, vp8(1, 90, true, false, 1)).is_empty());
        assert!(a.push(t0, vp8(3, 90, false, true, 3)).is_empty());
        assert_eq!(data(&a.push(t0, vp8(2, 90, false, false, 2))), [vec![1, 2, 3]]);
        // A late copy of a released packet is dropped.
        assert!(a.push(t0, vp8(2, 90, false, false, 2)).is_empty());
    }

    #[test]
    fn a_lost_packet_costs_its_frame_and_is_counted_once_the_wait_is_over() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert_eq!(data(&a.push(t0, vp8(1, 90, true, true, 1))), [vec![1]]);
        // Packet 3 of the frame at 180 is lost; the frame at 270 waits behind it.
        assert!(a.push(t0, vp8(2, 180, true, false, 2)).is_empty());
        assert!(a.push(t0, vp8(4, 180, false, true, 4)).is_empty());
        assert!(a.push(t0, vp8(5, 270, true, true, 5)).is_empty());
        let later = t0 + MAX_WAIT;
        let frames = a.push(later, vp8(6, 360, true, true, 6));
        assert_eq!(data(&frames), [vec![5], vec![6]]);
        assert_eq!(frames[0].lost_before, 3, "packets 2 to 4 given up");
        assert_eq!(frames[1].lost_before, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert!(a.push(t0, vp8(65534, 90, true, false, 1)).is_empty());
        assert!(a.push(t0, vp8(65535, 90, false, false, 2)).is_empty());
        assert_eq!(data(&a.push(t0, vp8(0, 90, false, true, 3))), [vec![1, 2, 3]]);
        assert_eq!(data(&a.push(t0, vp8(1, 180, true, true, 4))), [vec![4]]);
    }

    #[test]
    fn joining_mid_frame_starts_on_the_next_whole_one_without_counting_a_loss() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert!(a.push(t0, vp8(7, 90, false, true, 9)).is_empty());
        let frames = a.push(t0, vp8(8, 180, true, true, 1));
        assert_eq!(data(&frames), [vec![1]]);
        assert_eq!(frames[0].lost_before, 0);
    }

    #[test]
    fn a_whole_lost_frame_costs_only_itself() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert_eq!(data(&a.push(t0, vp8(1, 90, true, true, 1))), [vec![1]]);
        // Packet 2, a frame on its own, never comes.
        assert!(a.push(t0, vp8(3, 270, true, true, 3)).is_empty());
        let frames = a.push(t0 + MAX_WAIT, vp8(4, 360, true, true, 4));
        assert_eq!(data(&frames), [vec![3], vec![4]]);
        assert_eq!(frames[0].lost_before, 1);
    }

    #[test]
    fn a_frame_known_to_be_broken_is_skipped_without_waiting() {
        let (mut a, t0) = (assembler(), Instant::now());
        assert_eq!(data(&a.push(t0, vp8(1, 90, true, true, 1))), [vec![1]]);
        // The frame at 180 lost its last packet (3): packet 4 already starts the next frame.
        assert!(a.push(t0, vp8(2, 180, true, false, 2)).is_empty());
        let frames = a.push(t0, vp8(3, 270, true, true, 3));
        assert_eq!(data(&frames), [vec![3]]);
        assert_eq!(frames[0].lost_before, 1);
        // The frame at 360 (packets 4 to 7) loses packet 5 and is given up while its packet 7
        // is still on the way; when 7 comes, it is skipped at once, and 8 is not held behind it.
        assert!(a.push(t0, vp8(4, 360, true, false, 4)).is_empty());
        let later = t0 + MAX_WAIT;
        assert!(a.push(later, vp8(6, 360, false, false, 6)).is_empty());
        assert!(a.push(later, vp8(7, 360, false, true, 7)).is_empty());
        let frames = a.push(later, vp8(8, 450, true, true, 8));
        assert_eq!(data(&frames), [vec![8]]);
        assert_eq!(frames[0].lost_before, 4, "packets 4 to 7");
    }

    #[test]
    fn lost_sound_is_given_up_after_a_short_wait() {
        let wait = Duration::from_millis(60);
        let (mut a, t0) = (FrameAssembler::new(OpusPacket, 48_000, wait, |_| true), Instant::now());
        let opus = |seq: u16, at: u32| Packet {
            header: Header { sequence_number: seq, timestamp: at * 960, ..Header::default() },
            payload: Bytes::from(vec![seq as u8; 3]),
        };
        assert_eq!(a.push(t0, opus(1, 1)).len(), 1);
        // Packet 2 is lost; 3 waits for it, but only as long as reordering could take.
        assert!(a.push(t0, opus(3, 3)).is_empty());
        let frames = a.push(t0 + wait, opus(4, 4));
        assert_eq!(data(&frames), [vec![3], vec![4]]);
        assert_eq!(frames[0].lost_before, 1);
    }

    /// What a hostile or broken sender can do: any sequence numbers (wrapping, repeated,
    /// jumping), timestamps, markers and payloads, arriving at any pace.
    fn any_packets()
    -> impl proptest::strategy::Strategy<Value = Vec<(u16, u32, bool, Vec<u8>, u64)>> {
        use proptest::prelude::*;
        prop::collection::vec(
            (
                any::<u16>(),
                0u32..8,
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..24),
                0u64..200,
            ),
            0..1200,
        )
    }

    /// Pushes `packets`; the assembler never holds more than its limit, and never releases more
    /// bytes than it was given.
    fn survives<D: Depacketizer>(
        mut a: FrameAssembler<D>,
        packets: Vec<(u16, u32, bool, Vec<u8>, u64)>,
    ) {
        let t0 = Instant::now();
        let (mut given, mut released, mut at) = (0, 0, t0);
        for (seq, ts, marker, payload, after_ms) in packets {
            at += Duration::from_millis(after_ms);
            given += payload.len();
            let header =
                Header { sequence_number: seq, timestamp: ts * 3000, marker, ..Header::default() };
            for frame in a.push(at, Packet { header, payload: Bytes::from(payload) }) {
                released += frame.data.len();
            }
            assert!(a.held.len() <= MAX_HELD_PACKETS + 1, "held {}", a.held.len());
        }
        assert!(released <= given, "released {released} bytes of {given}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn any_vp8_packets_are_taken_without_a_panic_or_unbounded_holding(packets in any_packets()) {
            survives(assembler(), packets);
        }

        #[test]
        fn any_opus_packets_are_taken_without_a_panic_or_unbounded_holding(packets in any_packets()) {
            survives(FrameAssembler::new(OpusPacket, 48_000, Duration::from_millis(60), |_| true), packets);
        }
    }
}
