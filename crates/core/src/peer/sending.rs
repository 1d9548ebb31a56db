//! Our local tracks on one connection: a transceiver per kind, made the first time the kind is
//! sent and kept for the connection's life (turning a track off makes it receive-only, turning
//! it on again reuses it, so m-lines do not pile up), and per sent track the task that feeds it
//! whole encoded frames from its shared [`TrackFeed`], with keyframes when the peer loses the
//! picture and a bitrate that follows the peer's loss reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::PayloadType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use tracing::{Instrument, debug};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpTransceiver};

use super::PeerError;
use crate::bitrate::LossBasedRate;
use crate::feed::{Codec, TrackFeed};
use crate::feedback::{Feedback, asks_for_keyframe, fraction_lost};
use crate::tracks::{TrackKind, TrackSet};

/// How often a connection whose track is not (yet) negotiated looks again; one that sends
/// re-reads its payload type ten times as seldom.
const NEGOTIATION_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Where [`Feedback`] sits in the interceptor chain: after all of webrtc's own.
const FEEDBACK_SLOT: usize = 14_000;
/// How many times a receiver asks for a missing packet, 100 ms apart: a retransmission lost
/// once may come on the second asking, and a packet still missing after that belongs to a
/// picture the receiver will ask a keyframe for.
const MAX_NACKS_PER_PACKET: u16 = 2;

/// Every codec a feed may be in, with NACK and picture-loss feedback and the RTCP reports; ids
/// as Chromium numbers them, though the answer decides (the sender looks the payload type up
/// by MIME type).
pub(super) fn media_engine() -> Result<(MediaEngine, Registry), PeerError> {
    let mut media_engine = MediaEngine::default();
    for (codec, payload_type) in [(Codec::Vp8, 96), (Codec::Opus, 111)] {
        let parameters = RTCRtpCodecParameters { rtp_codec: rtp_codec(codec), payload_type };
        media_engine
            .register_codec(parameters, media_kind(codec))
            .map_err(PeerError::stack("register a codec"))?;
    }
    // What `register_default_interceptors` sets up, except that a missing packet is asked for
    // again at most MAX_NACKS_PER_PACKET times, not every 100 ms for as long as it is missing:
    // behind a full link every retransmission is lost too, and a sender's traffic grew tenfold
    // while its video froze (crates/cli/tests/impaired.rs).
    for parameter in ["", "pli"] {
        let nack = RTCPFeedback { typ: "nack".to_owned(), parameter: parameter.to_owned() };
        media_engine.register_feedback(nack, RtpCodecKind::Video);
    }
    configure_simulcast_extension_headers(&mut media_engine)
        .map_err(PeerError::stack("set up RTP header extensions"))?;
    let generator = NackGeneratorBuilder::new().with_max_nacks_per_packet(MAX_NACKS_PER_PACKET);
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(Slot::NackGenerator, generator.build());
    let registry = configure_twcc_receiver_only(registry, &mut media_engine)
        .map_err(PeerError::stack("set up RTCP"))?;
    // Last, after every interceptor that reads RTCP.
    let interceptors =
        configure_rtcp_reports(registry).with(Slot::from(FEEDBACK_SLOT), Feedback::default());
    Ok((media_engine, interceptors))
}

fn rtp_codec(codec: Codec) -> RTCRtpCodec {
    match codec {
        Codec::Vp8 => RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            // NACK and PLI are added by the default interceptors.
            rtcp_feedback: vec![RTCPFeedback {
                typ: "ccm".to_owned(),
                parameter: "fir".to_owned(),
            }],
        },
        // As RFC 7587 writes Opus (always two channels in the SDP, whatever is sent), with
        // in-band FEC, as browsers offer it.
        Codec::Opus => RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
    }
}

fn media_kind(codec: Codec) -> RtpCodecKind {
    match codec {
        Codec::Vp8 => RtpCodecKind::Video,
        Codec::Opus => RtpCodecKind::Audio,
    }
}

/// Our side of one transceiver.
struct Local {
    transceiver: Arc<dyn RtpTransceiver>,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    codec: Codec,
    /// What it sends now, and the task feeding it; `None` while turned off.
    sending: Option<(TrackFeed, AbortOnDrop)>,
}

/// Our local tracks on one connection.
pub(super) struct LocalTracks {
    tracks: BTreeMap<TrackKind, Local>,
    /// Whether we take the peer's media: directions are `sendrecv`/`recvonly` if so,
    /// `sendonly`/`inactive` if not.
    receive: bool,
    connected: watch::Receiver<bool>,
}

impl LocalTracks {
    pub(super) fn new(receive: bool, connected: watch::Receiver<bool>) -> Self {
        Self { tracks: BTreeMap::new(), receive, connected }
    }

    fn direction(&self, send: bool) -> RTCRtpTransceiverDirection {
        match (send, self.receive) {
            (true, true) => RTCRtpTransceiverDirection::Sendrecv,
            (true, false) => RTCRtpTransceiverDirection::Sendonly,
            (false, true) => RTCRtpTransceiverDirection::Recvonly,
            (false, false) => RTCRtpTransceiverDirection::Inactive,
        }
    }

    /// Sends exactly `wanted`; returns whether the connection must be renegotiated (a track
    /// turned on or off, not one feed swapped for another of the same kind and codec).
    pub(super) async fn apply(
        &mut self,
        pc: &Arc<dyn PeerConnection>,
        wanted: &TrackSet,
    ) -> Result<bool, PeerError> {
        let mut renegotiate = false;
        let (on, off) = (self.direction(true), self.direction(false));
        // Off first: what is no longer wanted, or now wanted in another codec.
        for (kind, local) in &mut self.tracks {
            let keep = wanted.get(kind).is_some_and(|feed| feed.codec() == local.codec);
            if local.sending.is_some() && !keep {
                local.sending = None;
                set_direction(&local.transceiver, off).await?;
                renegotiate = true;
            }
        }
        for (&kind, feed) in wanted {
            let reusable = self.tracks.get(&kind).is_some_and(|l| l.codec == feed.codec());
            if !reusable {
                // A kind sent for the first time, or in another codec: a transceiver of its own.
                let local = add(pc, kind, feed.codec(), on).await?;
                self.tracks.insert(kind, local);
                renegotiate = true;
            }
            let Some(local) = self.tracks.get_mut(&kind) else { continue };
            match &local.sending {
                Some((sent, _)) if sent.same(feed) => continue,
                Some(_) => {}
                None if reusable => {
                    set_direction(&local.transceiver, on).await?;
                    renegotiate = true;
                }
                None => {}
            }
            let sender = Sender {
                track: local.track.clone(),
                transceiver: local.transceiver.clone(),
                ssrc: local.ssrc,
                mime_type: local.codec.mime_type(),
                feed: feed.clone(),
                connected: self.connected.clone(),
            };
            let task = tokio::spawn(sender.run().in_current_span());
            local.sending = Some((feed.clone(), AbortOnDrop(task.abort_handle())));
        }
        Ok(renegotiate)
    }

    /// Whether a track we send has never been in a negotiation (the peer's offer had no
    /// m-line it could ride on): we must offer it ourselves.
    pub(super) async fn unnegotiated(&self) -> bool {
        for local in self.tracks.values().filter(|l| l.sending.is_some()) {
            if local.transceiver.mid().await.ok().flatten().is_none() {
                return true;
            }
        }
        false
    }
}

async fn set_direction(
    transceiver: &Arc<dyn RtpTransceiver>,
    direction: RTCRtpTransceiverDirection,
) -> Result<(), PeerError> {
    transceiver.set_direction(direction).await.map_err(PeerError::stack("turn a track on or off"))
}

/// A transceiver for our track of `kind`, in the stream named after the kind.
async fn add(
    pc: &Arc<dyn PeerConnection>,
    kind: TrackKind,
    codec: Codec,
    direction: RTCRtpTransceiverDirection,
) -> Result<Local, PeerError> {
    let ssrc = rand::random::<u32>();
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
        codec: rtp_codec(codec),
        ..Default::default()
    };
    let stream = kind.stream_id().to_owned();
    // Unique, as a browser's are: webrtc routes the peer's feedback on our track (keyframe
    // requests, loss reports) by track id, and gives it to a received track of the same id
    // first, which the peer's own camera would have if ids were named after the kind alone.
    let codec_name = codec.mime_type().to_ascii_lowercase().replace('/', "-");
    let description = MediaStreamTrack::new(
        stream.clone(),
        format!("{stream}-{codec_name}-{ssrc:08x}"),
        stream.clone(),
        media_kind(codec),
        vec![encoding.clone()],
    );
    let track = Arc::new(
        TrackLocalStaticSample::new(Instant::now(), description)
            .map_err(PeerError::stack("make a local track"))?,
    );
    let init =
        RTCRtpTransceiverInit { direction, streams: vec![stream], send_encodings: vec![encoding] };
    let transceiver = pc
        .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
        .await
        .map_err(PeerError::stack("add a local track"))?;
    Ok(Local { transceiver, track, ssrc, codec, sending: None })
}

/// Stops a task when dropped.
pub(super) struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a track really sent over the last [`SENT_WINDOW`], as its loss-based rate needs.
#[derive(Debug, Default)]
struct SentRate {
    frames: std::collections::VecDeque<(Instant, usize)>,
    bytes: usize,
}

/// How far back [`SentRate`] looks: long enough to span a keyframe and the frames after it.
const SENT_WINDOW: Duration = Duration::from_secs(2);

impl SentRate {
    fn add(&mut self, now: Instant, bytes: usize) {
        self.frames.push_back((now, bytes));
        self.bytes += bytes;
        self.forget(now);
    }

    /// Kbit/s over the window. A track that started less than a window ago reads low: a cut
    /// from it goes deeper than needed, and the rate climbs back once the loss clears.
    fn kbps(&mut self, now: Instant) -> u32 {
        self.forget(now);
        let bits = self.bytes as f64 * 8.0;
        (bits / SENT_WINDOW.as_secs_f64() / 1000.0).round() as u32
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&(at, bytes)) = self.frames.front() {
            if now.saturating_duration_since(at) <= SENT_WINDOW {
                break;
            }
            self.frames.pop_front();
            self.bytes -= bytes;
        }
    }
}

/// Where a video track's RTP clock (90 kHz) stands against the capture clock: the ticks the
/// packetizer has been moved since the first frame's capture. Counted in whole ticks from one
/// origin, so rounding never accumulates into drift against the sound.
#[derive(Debug, Default)]
struct VideoClock {
    origin: Option<Instant>,
    ticks: u64,
}

impl VideoClock {
    const RATE: u64 = 90_000;

    /// The sample duration that moves the packetizer to `captured_at`, and how many ticks that
    /// is (zero for the first frame, or a capture that is not later).
    fn gap_to(&mut self, captured_at: Instant) -> (Duration, u64) {
        let origin = *self.origin.get_or_insert(captured_at);
        let since = captured_at.saturating_duration_since(origin);
        let target = (since.as_nanos() * u128::from(Self::RATE) / 1_000_000_000) as u64;
        let ticks = target.saturating_sub(self.ticks);
        // Rounded up to whole nanoseconds, so that the packetizer's `duration × rate`, rounded
        // down, is exactly `ticks`.
        let nanos = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(Self::RATE));
        (Duration::from_nanos(nanos as u64), ticks)
    }

    /// The packetizer was moved by `ticks`.
    fn moved(&mut self, ticks: u64) {
        self.ticks += ticks;
    }
}

/// One local track on one connection.
struct Sender {
    track: Arc<TrackLocalStaticSample>,
    transceiver: Arc<dyn RtpTransceiver>,
    ssrc: u32,
    mime_type: &'static str,
    feed: TrackFeed,
    connected: watch::Receiver<bool>,
}

impl Sender {
    /// Sends the track while the connection can carry it: whole frames, one per sample,
    /// each stretch starting on a keyframe. Subscribed only meanwhile, so a peer that is still
    /// connecting, or that declined the track, costs the encoder nothing.
    async fn run(mut self) {
        while let Some(payload_type) = self.carried().await {
            self.stream(payload_type).await;
        }
    }

    /// Waits until the connection is up (SRTP keys come with DTLS: media written before is
    /// lost) and the peer has agreed to take the track; `None` once the connection is gone.
    async fn carried(&mut self) -> Option<PayloadType> {
        loop {
            let connected = *self.connected.borrow_and_update();
            if connected && let Some(payload_type) = self.negotiated().await {
                return Some(payload_type);
            }
            // Negotiation has no event of its own here: it is looked at again shortly.
            tokio::select! {
                changed = self.connected.changed() => changed.ok()?,
                () = tokio::time::sleep(NEGOTIATION_CHECK_EVERY) => {}
            }
        }
    }

    /// Sends frames until the connection drops or the peer stops taking the track.
    async fn stream(&mut self, mut payload_type: PayloadType) {
        let mut frames = self.feed.subscribe();
        // A decoder starts on a keyframe; the shared encoder spaces out what is asked of it.
        self.feed.request_keyframe();
        let mut waiting_for_keyframe = true;
        let mut checked = Instant::now();
        let video = self.feed.codec() == Codec::Vp8;
        let mut clock = VideoClock::default();
        // Video follows what this peer's network carries, by its loss reports; audio is
        // protected (in-band FEC) for what it loses.
        let vote = self.feed.vote();
        let mut rate = video.then(|| LossBasedRate::new(self.feed.bitrate_kbps()));
        let mut sent = SentRate::default();
        loop {
            let frame = tokio::select! {
                received = frames.recv() => match received {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        waiting_for_keyframe = true;
                        self.feed.request_keyframe();
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some(TrackLocalEvent::OnRtcpPacket(packets)) = self.track.poll(), if !waiting_for_keyframe => {
                    if packets.iter().any(|p| asks_for_keyframe(p.as_ref())) {
                        debug!("the peer lost the picture: sending a keyframe");
                        self.feed.request_keyframe();
                    }
                    if let Some(lost) = packets.iter().find_map(|p| fraction_lost(p.as_ref(), self.ssrc)) {
                        match &mut rate {
                            Some(rate) => {
                                let before = rate.kbps();
                                let sent_kbps = sent.kbps(Instant::now());
                                let kbps = rate.on_report(Instant::now(), lost, sent_kbps);
                                if kbps != before {
                                    debug!(kbps, sent_kbps, lost_in_256ths = lost, "the peer's losses move our bitrate");
                                }
                                vote.set_bitrate(kbps);
                            }
                            None => vote.set_loss((u32::from(lost) * 100).div_ceil(256) as u8),
                        }
                    }
                    continue;
                }
                changed = self.connected.changed() => {
                    if changed.is_err() || !*self.connected.borrow_and_update() {
                        return;
                    }
                    continue;
                }
            };
            // A renegotiation may move the payload type, or the peer may stop taking video.
            if checked.elapsed() >= NEGOTIATION_CHECK_EVERY * 10 {
                checked = Instant::now();
                match self.negotiated().await {
                    Some(now_negotiated) => payload_type = now_negotiated,
                    None => return,
                }
            }
            if waiting_for_keyframe && !frame.keyframe {
                continue;
            }
            // A video frame's RTP timestamp is its capture time. The packetizer only adds each
            // sample's duration to the clock, so the clock is moved to the capture time first,
            // with a sample that has no data (it sends nothing), and the frame takes no time of
            // its own. A receiver paces playout by these timestamps: a nominal 1/30 s step for
            // a capture that came a few ms late reads as network jitter and grows its buffer,
            // and a still screen's pause of seconds would read as a frame delayed by all of it.
            if video {
                let (gap, ticks) = clock.gap_to(frame.captured_at);
                if ticks > 0 {
                    let move_on = Sample {
                        data: Bytes::new(),
                        duration: gap,
                        ..Sample::new(frame.captured_at)
                    };
                    if self.track.write_sample(self.ssrc, payload_type, &move_on, &[]).await.is_ok()
                    {
                        clock.moved(ticks);
                    }
                }
            }
            let sample = Sample {
                data: Bytes::copy_from_slice(&frame.data),
                duration: if video { Duration::ZERO } else { frame.duration },
                ..Sample::new(frame.captured_at)
            };
            sent.add(Instant::now(), frame.data.len());
            // Fails only while the negotiated track is not yet bound to its transport.
            waiting_for_keyframe =
                self.track.write_sample(self.ssrc, payload_type, &sample, &[]).await.is_err();
            if waiting_for_keyframe {
                self.feed.request_keyframe();
            }
        }
    }

    /// The payload type negotiated for our codec, once the peer has agreed to take the track
    /// (a peer that takes no media declines it, and is sent nothing).
    async fn negotiated(&self) -> Option<PayloadType> {
        let direction = self.transceiver.current_direction().await.ok()?;
        if !matches!(
            direction,
            RTCRtpTransceiverDirection::Sendrecv | RTCRtpTransceiverDirection::Sendonly
        ) {
            return None;
        }
        let parameters = self.transceiver.sender().await.ok()??.get_parameters().await.ok()?;
        parameters
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(self.mime_type))
            .map(|c| c.payload_type)
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn an_hour_of_video_keeps_its_rtp_clock_on_the_capture_clock() {
        let (mut clock, t0) = (VideoClock::default(), Instant::now());
        let mut moved = 0u64;
        for frame in 0..30 * 3600u64 {
            // 30 fps, captures a few ms late, and a 10 s still pause every 10,000 frames.
            let jitter = Duration::from_micros(frame * 7919 % 5000);
            let pauses = Duration::from_secs(10 * (frame / 10_000));
            let at = t0 + Duration::from_nanos(frame * 1_000_000_000 / 30) + jitter + pauses;
            let (gap, ticks) = clock.gap_to(at);
            // What the packetizer does with a sample's duration.
            assert_eq!((gap.as_secs_f64() * 90_000.0) as u64, ticks);
            clock.moved(ticks);
            moved += ticks;
            let exact = (at - t0).as_nanos() * 90_000 / 1_000_000_000;
            assert!(u128::from(moved) <= exact && exact - u128::from(moved) <= 1);
        }
    }
}
