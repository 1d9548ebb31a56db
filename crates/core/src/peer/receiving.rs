//! The peer's tracks on one connection: each is reassembled from RTP into whole frames and
//! handed to the sink the front end chose, or, for a program that takes no media, declined in
//! our answers so the peer sends nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_media::vp8_keyframe_size;
use confab_proto::PeerId;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{Instrument, debug};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RTCRtpTransceiverDirection;

use super::PeerError;
use super::assembly::FrameAssembler;
use crate::feed::Codec;
use crate::tracks::{IncomingFrame, IncomingMedia, IncomingTrack, TrackSink};

/// How long a missing packet is waited for: video may get it retransmitted (NACK); lost sound
/// is not resent, so it waits only for packets arriving out of order.
const VIDEO_MAX_WAIT: Duration = Duration::from_millis(500);
const SOUND_MAX_WAIT: Duration = Duration::from_millis(60);

/// While a picture cannot be decoded (before its first keyframe, after a loss), we ask the
/// sender for a keyframe this often: a sender may otherwise not send one for a long time.
const KEYFRAME_ASK_EVERY: Duration = Duration::from_millis(500);

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
    Vp8(FrameAssembler<Vp8Packet>),
    Opus(FrameAssembler<OpusPacket>),
}

impl Assembler {
    /// For a codec we send too; `None` for any other (its packets are dropped).
    fn for_mime_type(mime_type: &str) -> Option<Self> {
        Some(match Codec::from_mime_type(mime_type)? {
            Codec::Vp8 => Self::Vp8(FrameAssembler::new(
                Vp8Packet::default(),
                90_000,
                VIDEO_MAX_WAIT,
                |data| vp8_keyframe_size(data).is_some(),
            )),
            Codec::Opus => {
                Self::Opus(FrameAssembler::new(OpusPacket, 48_000, SOUND_MAX_WAIT, |_| true))
            }
        })
    }

    /// Takes one packet; returns the frames it completed.
    fn push(&mut self, now: Instant, packet: rtc::rtp::Packet) -> Vec<IncomingFrame> {
        match self {
            Self::Vp8(assembler) => assembler.push(now, packet),
            Self::Opus(assembler) => assembler.push(now, packet),
        }
    }
}

/// Asks for keyframes while a video track cannot be decoded: from its start until the first
/// keyframe, and after a frame was lost until the next.
struct KeyframeAsker {
    ssrc: u32,
    wanted: bool,
    asked: Option<Instant>,
}

impl KeyframeAsker {
    fn new(ssrc: u32) -> Self {
        Self { ssrc, wanted: true, asked: None }
    }

    /// Takes note of a frame; returns the request to send now, if one is due.
    fn after(&mut self, frame: &IncomingFrame, now: Instant) -> Option<PictureLossIndication> {
        if frame.keyframe {
            self.wanted = false;
        } else if frame.lost_before > 0 {
            self.wanted = true;
        }
        let due = self.wanted && self.asked.is_none_or(|at| now - at >= KEYFRAME_ASK_EVERY);
        due.then(|| {
            self.asked = Some(now);
            PictureLossIndication { sender_ssrc: 0, media_ssrc: self.ssrc }
        })
    }
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
        let mut keyframes: Option<KeyframeAsker> = None;
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnOpen(init) => {
                    let Some(incoming) = &incoming else { continue };
                    let audio = track.kind().await == RtpCodecKind::Audio;
                    let mime_type =
                        track.codec(init.ssrc).await.map(|c| c.mime_type).unwrap_or_default();
                    let Some(assembler) = Assembler::for_mime_type(&mime_type) else {
                        debug!(mime_type, "dropping a track in a codec we do not take");
                        // Reopened in it: what was playing has ended.
                        if let Some((mut old, _)) = sink.take() {
                            old.ended();
                        }
                        continue;
                    };
                    let opened = IncomingTrack {
                        peer: peer.clone(),
                        audio,
                        stream_ids: init.stream_ids,
                        mime_type,
                    };
                    keyframes = (!audio).then(|| KeyframeAsker::new(init.ssrc));
                    if let Some((mut old, _)) = sink.replace((incoming.track(opened), assembler)) {
                        old.ended();
                    }
                }
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    if let Some((sink, assembler)) = &mut sink {
                        let now = Instant::now();
                        for frame in assembler.push(now, packet) {
                            let ask = keyframes.as_mut().and_then(|k| k.after(&frame, now));
                            sink.frame(frame);
                            if let Some(ask) = ask {
                                // A request that cannot be sent is repeated when the next one is due.
                                let _ = track.write_rtcp(vec![Box::new(ask)]).await;
                            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(keyframe: bool, lost_before: u16) -> IncomingFrame {
        IncomingFrame {
            data: bytes::Bytes::new(),
            rtp_timestamp: 0,
            duration: Duration::ZERO,
            keyframe,
            lost_before,
        }
    }

    #[test]
    fn keyframes_are_asked_for_until_one_comes_and_again_after_a_loss() {
        let t0 = Instant::now();
        let mut asker = KeyframeAsker::new(7);
        let ask = asker.after(&frame(false, 0), t0).expect("no keyframe yet: ask");
        assert_eq!(ask.media_ssrc, 7);
        assert!(
            asker.after(&frame(false, 0), t0 + KEYFRAME_ASK_EVERY / 2).is_none(),
            "not so soon"
        );
        assert!(asker.after(&frame(false, 0), t0 + KEYFRAME_ASK_EVERY).is_some(), "again");
        assert!(asker.after(&frame(true, 0), t0 + KEYFRAME_ASK_EVERY * 3).is_none(), "it came");
        assert!(asker.after(&frame(false, 0), t0 + KEYFRAME_ASK_EVERY * 4).is_none());
        assert!(asker.after(&frame(false, 2), t0 + KEYFRAME_ASK_EVERY * 5).is_some(), "a loss");
    }
}
