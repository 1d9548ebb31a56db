//! Our camera on one connection: the VP8 track, the task that feeds it whole encoded frames
//! from the shared [`VideoFeed`], and keyframes when the peer loses the picture.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::{Registry, Slot};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MediaEngine};
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
use crate::keyframe_requests::{KeyframeRequests, asks_for_keyframe};
use crate::video::VideoFeed;

/// How often a connection whose video is not (yet) negotiated looks again; one that sends
/// video re-reads its payload type ten times as seldom.
const NEGOTIATION_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Where [`KeyframeRequests`] sits in the interceptor chain: after all of webrtc's own.
const KEYFRAME_REQUESTS_SLOT: usize = 14_000;
/// The stream id our camera's track is announced under: browsers group tracks by it, and it
/// is never a `screen_track`.
const CAMERA_STREAM: &str = "confab-camera";

/// VP8 only, the codec every browser decodes, with NACK and picture-loss feedback and the
/// RTCP reports; ids as Chromium numbers them, though the answer decides (see
/// [`Camera::negotiated_vp8`]).
pub(super) fn video_media_engine() -> Result<(MediaEngine, Registry), PeerError> {
    let mut media_engine = MediaEngine::default();
    let vp8 = RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: 96 };
    media_engine
        .register_codec(vp8, RtpCodecKind::Video)
        .map_err(PeerError::stack("register VP8"))?;
    let interceptors = register_default_interceptors(Registry::new(), &mut media_engine)
        .map_err(PeerError::stack("set up RTCP"))?
        // Last, after every interceptor that reads RTCP.
        .with(Slot::from(KEYFRAME_REQUESTS_SLOT), KeyframeRequests::default());
    Ok((media_engine, interceptors))
}

fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        // NACK and PLI are added by the default interceptors.
        rtcp_feedback: vec![RTCPFeedback { typ: "ccm".to_owned(), parameter: "fir".to_owned() }],
    }
}

/// Stops a task when dropped.
pub(super) struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Adds the camera's track and starts the task that feeds it; returns its transceiver and
/// that task's guard.
pub(super) async fn add_camera_track(
    pc: &Arc<dyn PeerConnection>,
    feed: VideoFeed,
    connected: watch::Receiver<bool>,
) -> Result<(Arc<dyn RtpTransceiver>, AbortOnDrop), PeerError> {
    let ssrc = rand::random::<u32>();
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
        codec: vp8_codec(),
        ..Default::default()
    };
    let description = MediaStreamTrack::new(
        CAMERA_STREAM.to_owned(),
        "confab-camera-video".to_owned(),
        "camera".to_owned(),
        RtpCodecKind::Video,
        vec![encoding.clone()],
    );
    let track = Arc::new(
        TrackLocalStaticSample::new(Instant::now(), description)
            .map_err(PeerError::stack("make the camera's track"))?,
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendrecv,
        streams: vec![CAMERA_STREAM.to_owned()],
        send_encodings: vec![encoding],
    };
    let transceiver = pc
        .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
        .await
        .map_err(PeerError::stack("add the camera"))?;
    let sending = Camera { track, transceiver: transceiver.clone(), ssrc, feed, connected };
    let task = tokio::spawn(sending.run().in_current_span());
    Ok((transceiver, AbortOnDrop(task.abort_handle())))
}

/// Our camera on one connection.
struct Camera {
    track: Arc<TrackLocalStaticSample>,
    transceiver: Arc<dyn RtpTransceiver>,
    ssrc: u32,
    feed: VideoFeed,
    connected: watch::Receiver<bool>,
}

impl Camera {
    /// Sends the camera while the connection can carry it: whole frames, one per sample,
    /// each stretch starting on a keyframe. Subscribed only meanwhile, so a peer that is still
    /// connecting, or that declined video, costs the encoder nothing.
    async fn run(mut self) {
        while let Some(payload_type) = self.carried().await {
            self.stream(payload_type).await;
        }
    }

    /// Waits until the connection is up (SRTP keys come with DTLS: media written before is
    /// lost) and the peer has agreed to take VP8; `None` once the connection is gone.
    async fn carried(&mut self) -> Option<PayloadType> {
        loop {
            let connected = *self.connected.borrow_and_update();
            if connected && let Some(payload_type) = self.negotiated_vp8().await {
                return Some(payload_type);
            }
            // Negotiation has no event of its own here: it is looked at again shortly.
            tokio::select! {
                changed = self.connected.changed() => changed.ok()?,
                () = tokio::time::sleep(NEGOTIATION_CHECK_EVERY) => {}
            }
        }
    }

    /// Sends frames until the connection drops or the peer stops taking video.
    async fn stream(&mut self, mut payload_type: PayloadType) {
        let mut frames = self.feed.subscribe();
        // A decoder starts on a keyframe; the shared encoder spaces out what is asked of it.
        self.feed.request_keyframe();
        let mut waiting_for_keyframe = true;
        let mut checked = Instant::now();
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
                match self.negotiated_vp8().await {
                    Some(now_negotiated) => payload_type = now_negotiated,
                    None => return,
                }
            }
            if waiting_for_keyframe && !frame.keyframe {
                continue;
            }
            let sample = Sample {
                data: Bytes::copy_from_slice(&frame.data),
                duration: frame.duration,
                ..Sample::new(frame.captured_at)
            };
            // Fails only while the negotiated track is not yet bound to its transport.
            waiting_for_keyframe =
                self.track.write_sample(self.ssrc, payload_type, &sample, &[]).await.is_err();
            if waiting_for_keyframe {
                self.feed.request_keyframe();
            }
        }
    }

    /// The payload type negotiated for VP8, once the peer has agreed to take our video (a peer
    /// without video declines it, and is sent nothing).
    async fn negotiated_vp8(&self) -> Option<PayloadType> {
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
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
            .map(|c| c.payload_type)
    }
}
