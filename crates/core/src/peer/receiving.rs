//! The peer's tracks on one connection: each is reassembled from RTP into whole frames and
//! handed to the sink the front end chose, or, for a program that takes no media, declined in
//! our answers so the peer sends nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_proto::PeerId;
use rtc::media::io::sample_builder::SampleBuilder;
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{Instrument, debug};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RTCRtpTransceiverDirection;

use super::PeerError;
use crate::feed::Codec;
use crate::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};

/// Packets a frame may wait for a missing one, and for how long at most: a lost packet costs
/// its frame, not everything after it.
const MAX_LATE_PACKETS: u16 = 512;
const MAX_LATE: Duration = Duration::from_millis(500);

/// Turns every transceiver the peer's offer would have us receive on into one that does not,
/// before we answer it: `recvonly` becomes `inactive`, `sendrecv` becomes `sendonly`.
pub(super) async fn decline_incoming(pc: &Arc<dyn PeerConnection>) -> Result<(), PeerError> {
    for transceiver in pc.get_transceivers().await {
        let declined = match transceiver.direction().await {
            Ok(RTCRtpTransceiverDirection::Recvonly) => RTCRtpTransceiverDirection::Inactive,
            Ok(RTCRtpTransceiverDirection::Sendrecv) => RTCRtpTransceiverDirection::Sendonly,
            _ => continue,
        };
        transceiver
            .set_direction(declined)
            .await
            .map_err(PeerError::stack("decline the peer's media"))?;
    }
    Ok(())
}

/// Reassembles one track's RTP packets into whole frames.
enum Assembler {
    Vp8(SampleBuilder<Vp8Packet>),
    Opus(SampleBuilder<OpusPacket>),
}

impl Assembler {
    /// For a codec we send too; `None` for any other (its packets are dropped).
    fn for_mime_type(mime_type: &str) -> Option<Self> {
        let is = |codec: Codec| mime_type.eq_ignore_ascii_case(codec.mime_type());
        if is(Codec::Vp8) {
            let builder = SampleBuilder::new(MAX_LATE_PACKETS, Vp8Packet::default(), 90_000);
            Some(Self::Vp8(builder.with_max_time_delay(MAX_LATE)))
        } else if is(Codec::Opus) {
            let builder = SampleBuilder::new(MAX_LATE_PACKETS, OpusPacket, 48_000);
            Some(Self::Opus(builder.with_max_time_delay(MAX_LATE)))
        } else {
            None
        }
    }

    /// Takes one packet; returns the frames it completed.
    fn push(&mut self, now: Instant, packet: rtc::rtp::Packet) -> Vec<IncomingFrame> {
        match self {
            Self::Vp8(builder) => drain(builder, now, packet, |data| {
                // VP8's payload header: the P bit (the lowest of the first byte) is 0 on a
                // keyframe (RFC 6386 §9.1).
                data.first().is_some_and(|b| b & 1 == 0)
            }),
            Self::Opus(builder) => drain(builder, now, packet, |_| true),
        }
    }
}

fn drain<T: Depacketizer>(
    builder: &mut SampleBuilder<T>,
    now: Instant,
    packet: rtc::rtp::Packet,
    keyframe: impl Fn(&[u8]) -> bool,
) -> Vec<IncomingFrame> {
    builder.push(now, packet);
    let mut frames = Vec::new();
    while let Some(sample) = builder.pop(now) {
        frames.push(IncomingFrame {
            keyframe: keyframe(&sample.data),
            data: sample.data,
            rtp_timestamp: sample.packet_timestamp,
            duration: sample.duration,
            lost_before: sample.prev_dropped_packets,
        });
    }
    frames
}

/// Hands `track`'s frames to a sink from `incoming` (a fresh one each time the track opens
/// again), or reads and drops its packets when we take no media: unread, they fill the track's
/// queue and the stack logs every packet.
pub(super) fn receive(
    track: Arc<dyn TrackRemote>,
    peer: PeerId,
    incoming: Option<Arc<dyn IncomingMedia>>,
) {
    let task = async move {
        let mut sink: Option<(Box<dyn TrackSink>, Assembler)> = None;
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnOpen(init) => {
                    let Some(incoming) = &incoming else { continue };
                    let audio = track.kind().await == RtpCodecKind::Audio;
                    let mime_type =
                        track.codec(init.ssrc).await.map(|c| c.mime_type).unwrap_or_default();
                    let Some(assembler) = Assembler::for_mime_type(&mime_type) else {
                        debug!(mime_type, "dropping a track in a codec we do not take");
                        continue;
                    };
                    let opened = IncomingTrack {
                        peer: peer.clone(),
                        audio,
                        stream_ids: init.stream_ids,
                        mime_type,
                    };
                    if let Some((mut old, _)) = sink.replace((incoming.track(opened), assembler)) {
                        old.ended();
                    }
                }
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    if let Some((sink, assembler)) = &mut sink {
                        for frame in assembler.push(Instant::now(), packet) {
                            sink.frame(frame);
                        }
                    }
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
        if let Some((mut sink, _)) = sink {
            sink.ended();
        }
    };
    tokio::spawn(task.in_current_span());
}
