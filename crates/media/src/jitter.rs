//! The receive side of one voice: a jitter buffer that turns Opus packets, as the network
//! delivers them (late, out of order, some lost), into a steady 20 ms of sound every 20 ms.
//!
//! A pure state machine: [`JitterBuffer::push`] takes a packet and the time it arrived,
//! [`JitterBuffer::pull`] gives the next 20 ms. The Opus decoder lives inside (it is
//! deterministic), so tests in virtual time hear exactly what a listener would.
//!
//! - It holds sound back by a target delay that follows the measured arrival jitter
//!   (RFC 3550's estimator): short on a quiet network, longer on a jittery one.
//! - A missing packet is rebuilt from the next one's in-band FEC when that has arrived, and
//!   otherwise concealed by Opus's packet loss concealment; a packet that comes after its turn
//!   is dropped.
//! - When the network stops, it conceals briefly, then goes quiet and waits to fill up again,
//!   with a longer target; when too much piles up (a burst after a stall), it skips ahead so the
//!   delay does not stay long.
//!
//! We wrote our own rather than take the `neteq` crate: its 0.9 conceals with noise, never asks
//! the decoder for concealment or FEC, plays late packets out of order, and reads the wall clock
//! itself, so it cannot be tested in virtual time.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::MediaError;
use crate::audio::{FRAME_SAMPLES, OpusDecoder, SAMPLE_RATE};

/// The least and most the buffer holds sound back, in ms.
const MIN_TARGET_MS: f64 = 40.0;
const MAX_TARGET_MS: f64 = 300.0;
/// How many times the jitter estimate the target covers, on top of the least.
const JITTER_MULTIPLE: f64 = 3.0;
/// After a stall, the target grows by this much: the network just showed it can pause.
const STALL_PENALTY_MS: f64 = 20.0;
/// Concealment lasts this long once packets stop coming; then silence, until refilled.
const MAX_CONCEALED_FRAMES: u32 = 5;
/// Sound held beyond the target by more than this is skipped.
const EXCESS_MS: f64 = 80.0;
/// Samples per ms.
const PER_MS: f64 = SAMPLE_RATE as f64 / 1000.0;
/// One frame in RTP time (48 kHz).
const FRAME_TICKS: i64 = FRAME_SAMPLES as i64;
/// Opus's smallest frame, 2.5 ms: a packet within this of the cursor is the one to play.
const SNAP_TICKS: i64 = 120;
/// Packets kept at most: 10 s.
const MAX_PACKETS: usize = 500;
/// This many packets late in a row means the sender's clock jumped back: start again.
const RESYNC_AFTER_LATE: u32 = 25;

/// How one pulled frame was made, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Played {
    /// Decoded from its own packet.
    Decoded,
    /// Its packet was lost; rebuilt from the next packet's forward error correction.
    Recovered,
    /// Its packet was lost or late; Opus made up something that fits.
    Concealed,
    /// Nothing to play: not started, or waiting to refill after the network stopped.
    Silence,
}

/// What happened to the sound so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    pub decoded: u64,
    pub recovered: u64,
    pub concealed: u64,
    /// Packets that came after their turn, or twice.
    pub late: u64,
    /// Packets skipped to bring the delay back down.
    pub skipped: u64,
    /// Packets that would not decode (concealed instead).
    pub errors: u64,
    /// The delay the buffer aims at now, in ms.
    pub target_ms: f64,
    /// The network's arrival jitter (RFC 3550), in ms.
    pub jitter_ms: f64,
}

/// One voice's jitter buffer and decoder.
#[derive(Debug)]
pub struct JitterBuffer {
    decoder: OpusDecoder,
    /// Waiting packets by their RTP timestamp, unwrapped.
    packets: BTreeMap<i64, Vec<u8>>,
    /// The newest timestamp seen, unwrapped, to unwrap the next.
    newest: Option<i64>,
    /// The timestamp to play next; `None` before the first packet plays.
    cursor: Option<i64>,
    /// Waiting for enough sound to start: at first, and after the network stopped.
    refilling: bool,
    /// Decoded samples not played yet (a packet longer than 20 ms leaves some).
    pending: Vec<i16>,
    /// For the jitter estimate: the previous packet's transit time, in ms.
    last_transit: Option<f64>,
    /// The origin of arrival times.
    epoch: Option<Instant>,
    concealed_in_a_row: u32,
    late_in_a_row: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new() -> Result<Self, MediaError> {
        Ok(Self {
            decoder: OpusDecoder::new()?,
            packets: BTreeMap::new(),
            newest: None,
            cursor: None,
            refilling: true,
            pending: Vec::new(),
            last_transit: None,
            epoch: None,
            concealed_in_a_row: 0,
            late_in_a_row: 0,
            stats: JitterStats { target_ms: MIN_TARGET_MS, ..JitterStats::default() },
        })
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// How much sound is waiting, in ms: from the next to play to the end of the newest.
    pub fn buffered_ms(&self) -> f64 {
        let Some((&first, _)) = self.packets.first_key_value() else { return 0.0 };
        let Some((&last, _)) = self.packets.last_key_value() else { return 0.0 };
        let from = match self.cursor {
            Some(cursor) if !self.refilling => cursor.min(first),
            _ => first,
        };
        (last + FRAME_TICKS - from) as f64 / PER_MS
    }

    /// A packet with RTP timestamp `timestamp` (48 kHz) arrived at `now`.
    pub fn push(&mut self, now: Instant, timestamp: u32, packet: &[u8]) {
        let at = self.unwrap(timestamp);
        if self.cursor.is_some_and(|cursor| at < cursor) || self.packets.contains_key(&at) {
            self.stats.late += 1;
            self.late_in_a_row += 1;
            if self.late_in_a_row < RESYNC_AFTER_LATE {
                return;
            }
            // Everything late for a while: the sender's clock jumped back (a new stream on the
            // same track). Start again from what comes now.
            self.cursor = None;
            self.refilling = true;
            self.packets.clear();
            self.pending.clear();
            // The old stream's timing says nothing about the new one's.
            self.last_transit = None;
            self.epoch = None;
            self.newest = None;
        }
        self.late_in_a_row = 0;
        let at = if self.newest.is_none() { self.unwrap(timestamp) } else { at };
        self.note_arrival(now, at);
        self.packets.insert(at, packet.to_vec());
        // Nobody pulling (a speaker that failed) must not make this grow without end.
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
        }
    }

    /// The next 20 ms into `out`; says how they were made (the worst, if several packets).
    pub fn pull(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Played {
        if !self.start_or_wait() {
            out.fill(0);
            return Played::Silence;
        }
        self.skip_excess();
        let mut played = Played::Decoded;
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            if self.pending.is_empty() {
                match self.next_frame() {
                    Some(made) => played = played.max(made),
                    None => {
                        out[filled..].fill(0);
                        return if filled == 0 { Played::Silence } else { played };
                    }
                }
            }
            let n = self.pending.len().min(FRAME_SAMPLES - filled);
            out[filled..filled + n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            filled += n;
            if let Some(cursor) = &mut self.cursor {
                *cursor += n as i64;
            }
        }
        played
    }

    /// Decodes, rebuilds or conceals the sound at the cursor into `pending`; `None` when the
    /// network has stopped and the buffer goes quiet to refill.
    fn next_frame(&mut self) -> Option<Played> {
        let cursor = self.cursor?;
        // Whatever the cursor has passed (a packet a little early, or covered by concealment)
        // will not be played.
        while self.packets.first_key_value().is_some_and(|(&at, _)| at < cursor) {
            self.packets.pop_first();
        }
        // A packet that starts a little after the cursor (timestamps not on 20 ms steps) is
        // the one to play.
        let due = self.packets.range(cursor..cursor + SNAP_TICKS).next().map(|(&at, _)| at);
        if let Some(at) = due {
            self.cursor = Some(at);
            let packet = self.packets.remove(&at).unwrap_or_default();
            return Some(self.decode(&packet, false, FRAME_SAMPLES));
        }
        let Some((&next, _)) = self.packets.range(cursor..).next() else {
            self.concealed_in_a_row += 1;
            if self.concealed_in_a_row > MAX_CONCEALED_FRAMES {
                // The network stopped: quiet until it refills, and hold back more next time.
                self.refilling = true;
                self.concealed_in_a_row = 0;
                self.raise_target(STALL_PENALTY_MS);
                return None;
            }
            return Some(self.conceal(FRAME_SAMPLES));
        };
        // What is missing before the next packet, in whole 2.5 ms steps (Opus's unit).
        let gap = ((next - cursor) as usize / SNAP_TICKS as usize * SNAP_TICKS as usize)
            .clamp(SNAP_TICKS as usize, FRAME_SAMPLES);
        if next - cursor <= FRAME_TICKS {
            let packet = self.packets.get(&next).cloned().unwrap_or_default();
            Some(self.decode(&packet, true, gap))
        } else {
            Some(self.conceal(gap))
        }
    }

    /// Where to play from: the cursor, or, once enough has piled up after a (re)fill, the
    /// oldest packet. False while filling.
    fn start_or_wait(&mut self) -> bool {
        if !self.refilling {
            return self.cursor.is_some();
        }
        if self.buffered_ms() < self.stats.target_ms {
            return false;
        }
        let Some((&first, _)) = self.packets.first_key_value() else { return false };
        self.refilling = false;
        self.cursor = Some(self.cursor.map_or(first, |cursor| cursor.max(first)));
        true
    }

    /// After a burst, drops the oldest packets until the delay is near the target again.
    fn skip_excess(&mut self) {
        let Some(mut cursor) = self.cursor else { return };
        let limit = self.stats.target_ms + EXCESS_MS;
        while let Some((&last, _)) = self.packets.last_key_value()
            && (last + FRAME_TICKS - cursor) as f64 / PER_MS > limit
        {
            let Some((first, _)) = self.packets.pop_first() else { break };
            self.stats.skipped += 1;
            self.pending.clear();
            cursor = self.packets.first_key_value().map_or(first + FRAME_TICKS, |(&at, _)| at);
        }
        self.cursor = Some(cursor);
    }

    /// Decodes `packet` (or, with `fec`, the `lost` samples before it from its FEC data) into
    /// `pending`.
    fn decode(&mut self, packet: &[u8], fec: bool, lost: usize) -> Played {
        let mut pcm = vec![0i16; if fec { lost } else { MAX_PACKET_SAMPLES }];
        let decoded = if fec {
            self.decoder.recover(packet, &mut pcm)
        } else {
            self.decoder.decode(packet, &mut pcm)
        };
        match decoded {
            Ok(n) if n > 0 => {
                pcm.truncate(n);
                self.pending = pcm;
                self.concealed_in_a_row = 0;
                if fec {
                    self.stats.recovered += 1;
                    Played::Recovered
                } else {
                    self.stats.decoded += 1;
                    Played::Decoded
                }
            }
            _ => {
                self.stats.errors += 1;
                self.conceal(lost)
            }
        }
    }

    /// Has Opus make up `samples` (a whole number of 2.5 ms) into `pending`.
    fn conceal(&mut self, samples: usize) -> Played {
        let mut pcm = vec![0i16; samples];
        let n = self.decoder.conceal(&mut pcm).unwrap_or(0);
        // A decoder that cannot conceal still owes the time: silence.
        pcm.truncate(if n == 0 { samples } else { n });
        self.pending = pcm;
        self.stats.concealed += 1;
        Played::Concealed
    }

    fn unwrap(&mut self, timestamp: u32) -> i64 {
        let at = match self.newest {
            None => i64::from(timestamp),
            Some(newest) => newest + i64::from(timestamp.wrapping_sub(newest as u32) as i32),
        };
        self.newest = Some(self.newest.map_or(at, |newest| newest.max(at)));
        at
    }

    /// RFC 3550's jitter: how much the transit time (arrival minus RTP time) varies, smoothed
    /// over 16 packets; the target follows it.
    fn note_arrival(&mut self, now: Instant, at: i64) {
        let epoch = *self.epoch.get_or_insert(now);
        let transit =
            now.saturating_duration_since(epoch).as_secs_f64() * 1000.0 - at as f64 / PER_MS;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.stats.jitter_ms += (d - self.stats.jitter_ms) / 16.0;
        }
        self.last_transit = Some(transit);
        let wanted = (MIN_TARGET_MS + JITTER_MULTIPLE * self.stats.jitter_ms).min(MAX_TARGET_MS);
        // Up at once, down slowly: one calm packet does not undo a jittery stretch.
        self.stats.target_ms = if wanted > self.stats.target_ms {
            wanted
        } else {
            self.stats.target_ms + (wanted - self.stats.target_ms) / 64.0
        };
    }

    fn raise_target(&mut self, by_ms: f64) {
        self.stats.target_ms = (self.stats.target_ms + by_ms).min(MAX_TARGET_MS);
    }
}

/// The most one Opus packet decodes to: 120 ms.
const MAX_PACKET_SAMPLES: usize = 5760;
