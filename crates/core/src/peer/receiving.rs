//! The peer's tracks on one connection: each goes to the sink the front end chose, or, for a
//! program that takes no media, is declined in our answers so the peer sends nothing.

use std::sync::Arc;

use confab_proto::PeerId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::Instrument;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RTCRtpTransceiverDirection;

use super::PeerError;
use crate::tracks::{IncomingMedia, IncomingTrack, RtpPacket, TrackSink};

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

/// Hands `track`'s packets to a sink from `incoming` (a fresh one each time the track opens
/// again), or reads and drops them when we take no media: unread, they fill the track's queue
/// and the stack logs every packet.
pub(super) fn receive(
    track: Arc<dyn TrackRemote>,
    peer: PeerId,
    incoming: Option<Arc<dyn IncomingMedia>>,
) {
    let task = async move {
        let mut sink: Option<Box<dyn TrackSink>> = None;
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnOpen(init) => {
                    let Some(incoming) = &incoming else { continue };
                    let audio = track.kind().await == RtpCodecKind::Audio;
                    let mime_type =
                        track.codec(init.ssrc).await.map(|c| c.mime_type).unwrap_or_default();
                    let opened = IncomingTrack {
                        peer: peer.clone(),
                        audio,
                        stream_ids: init.stream_ids,
                        mime_type,
                    };
                    if let Some(mut old) = sink.replace(incoming.track(opened)) {
                        old.ended();
                    }
                }
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    if let Some(sink) = &mut sink {
                        sink.packet(RtpPacket {
                            sequence_number: packet.header.sequence_number,
                            timestamp: packet.header.timestamp,
                            marker: packet.header.marker,
                            payload: packet.payload,
                        });
                    }
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
        if let Some(mut sink) = sink {
            sink.ended();
        }
    };
    tokio::spawn(task.in_current_span());
}
