//! Whole frames from RTP packets, each released the moment its last packet arrives.
//!
//! `rtc`'s `SampleBuilder` holds a frame until a packet of the next one shows up (it wants the
//! next timestamp for the duration): a whole frame interval of delay, 33 ms at 30 fps and 20 ms
//! for Opus. Here a frame is complete when its packets run without a gap from one that starts a
//! frame to one that ends it (the marker bit for VP8; every Opus packet is both), all with one
//! timestamp. A gap waits for the missing packet a little; after that the frame is given up and
//! the next one that starts cleanly is released, counting what was lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::Packet;
use rtc::rtp::packetizer::Depacketizer;

use crate::tracks::IncomingFrame;

/// Packets held while one is missing, and for how long: a lost packet costs its frame (and
/// the wait), not everything after it.
const MAX_HELD_PACKETS: usize = 512;
const MAX_WAIT: Duration = Duration::from_millis(500);

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
    /// Whether `keyframe` holds for a frame's bytes.
    is_keyframe: fn(&[u8]) -> bool,
}

impl<D: Depacketizer> FrameAssembler<D> {
    pub(super) fn new(depacketizer: D, clock_rate: u32, is_keyframe: fn(&[u8]) -> bool) -> Self {
        Self {
            depacketizer,
            clock_rate,
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
            if let Some(frame) = self.complete_frame() {
                frames.push(frame);
                continue;
            }
            if !self.give_up_waiting(now) {
                return frames;
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
        let base = highest & !0xffff;
        let extended = [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b | u64::from(seq))
            .min_by_key(|candidate| candidate.abs_diff(highest))
            .unwrap_or(base | u64::from(seq));
        self.highest = Some(highest.max(extended));
        extended
    }

    /// The frame that starts where the next one should, if all of it is here.
    fn complete_frame(&mut self) -> Option<IncomingFrame> {
        let (&first, (head, _)) = self.held.first_key_value()?;
        let start = *self.next.get_or_insert(first);
        if first != start {
            return None;
        }
        if !self.depacketizer.is_partition_head(&head.payload) {
            if self.last_timestamp.is_some() {
                return None;
            }
            // Joined mid-frame: nothing before it will come; go on from the first whole frame,
            // and none of this counts as lost.
            self.skip_to_next_start(first, head.header.timestamp);
            self.lost = 0;
            return self.complete_frame();
        }
        let timestamp = head.header.timestamp;
        let mut end = start;
        loop {
            let (packet, _) = self.held.get(&end)?;
            if packet.header.timestamp != timestamp {
                // A new frame began before this one ended: this one cannot be completed.
                return None;
            }
            if self.depacketizer.is_partition_tail(packet.header.marker, &packet.payload) {
                break;
            }
            end += 1;
        }
        let mut data = BytesMut::new();
        let mut broken = false;
        for seq in start..=end {
            if let Some((packet, _)) = self.held.remove(&seq) {
                match self.depacketizer.depacketize(&packet.payload) {
                    Ok(part) => data.extend_from_slice(&part),
                    Err(_) => broken = true,
                }
            }
        }
        self.next = Some(end + 1);
        if broken {
            self.lost += end + 1 - start;
            return None;
        }
        let data: Bytes = data.freeze();
        let duration = self.last_timestamp.map_or(Duration::ZERO, |last| {
            let ticks = timestamp.wrapping_sub(last);
            Duration::from_secs_f64(f64::from(ticks) / f64::from(self.clock_rate))
        });
        self.last_timestamp = Some(timestamp);
        let lost_before = u16::try_from(std::mem::take(&mut self.lost)).unwrap_or(u16::MAX);
        Some(IncomingFrame {
            keyframe: (self.is_keyframe)(&data),
            data,
            rtp_timestamp: timestamp,
            duration,
            lost_before,
        })
    }

    /// When the frame at the front cannot complete and has waited too long (or too much is
    /// held), gives it up; returns whether a later frame may now be complete.
    fn give_up_waiting(&mut self, now: Instant) -> bool {
        let Some((&first, (head, arrived))) = self.held.first_key_value() else { return false };
        let waited = now.duration_since(*arrived) >= MAX_WAIT;
        if !waited && self.held.len() <= MAX_HELD_PACKETS {
            return false;
        }
        let stuck = head.header.timestamp;
        self.skip_to_next_start(first, stuck)
    }

    /// Drops what is held before the first packet that starts a frame with a timestamp other
    /// than `stuck`, counting the packets skipped (held or never seen) as lost; with none held,
    /// drops everything and starts on whatever comes next. Returns whether it found one.
    fn skip_to_next_start(&mut self, first: u64, stuck: u32) -> bool {
        let start = self.next.unwrap_or(first);
        let next_start = self
            .held
            .iter()
            .find(|(_, (p, _))| {
                p.header.timestamp != stuck && self.depacketizer.is_partition_head(&p.payload)
            })
            .map(|(&seq, _)| seq);
        let resume = next_start.or(self.highest.map(|h| h + 1)).unwrap_or(start);
        self.lost += resume.saturating_sub(start);
        self.held.retain(|&seq, _| seq >= resume);
        self.next = Some(resume);
        next_start.is_some()
    }
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

    fn assembler() -> FrameAssembler<Vp8Packet> {
        FrameAssembler::new(Vp8Packet::default(), 90_000, |_| false)
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
        let (mut a, t0) = (FrameAssembler::new(OpusPacket, 48_000, |_| true), Instant::now());
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
}
