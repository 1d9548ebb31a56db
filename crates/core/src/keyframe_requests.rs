//! Lets the peer's keyframe requests reach the camera.
//!
//! Inbound RTCP is for webrtc's interceptors (reports, NACK) and goes no further unless one of
//! them marks a packet for the application. This one, last in the chain, marks the packets
//! that carry picture loss indications or full intra requests, cut down to just those: the
//! stack routes a packet by the SSRC its first part names, so the requests then reach our
//! camera's track, where [`crate::peer`] reads them. Everything else passes unchanged, for the
//! end of the chain to deal with as it would without this.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Whether this RTCP packet asks for a keyframe.
pub(crate) fn asks_for_keyframe(packet: &dyn rtc::rtcp::Packet) -> bool {
    let packet = packet.as_any();
    packet.is::<PictureLossIndication>() || packet.is::<FullIntraRequest>()
}

/// The interceptor: keyframe requests are marked for the application; the rest passes as is.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<_> =
                packets.iter().filter(|p| asks_for_keyframe(p.as_ref())).cloned().collect();
            if !requests.is_empty() {
                msg.message.packet = Packet::Rtcp(requests);
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl std::fmt::Debug for KeyframeRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyframeRequests")
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::TransportMessage;

    use super::*;

    fn inbound(packet: Packet) -> TaggedPacket {
        TransportMessage {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(packet),
        }
    }

    #[test]
    fn keyframe_requests_are_marked_for_the_application_and_other_rtcp_is_not() {
        let mut interceptor = KeyframeRequests::default();
        let report: Box<dyn rtc::rtcp::Packet> = Box::new(ReceiverReport::default());
        let lost: Box<dyn rtc::rtcp::Packet> =
            Box::new(PictureLossIndication { sender_ssrc: 1, media_ssrc: 2 });
        interceptor.handle_read(inbound(Packet::Rtcp(vec![report.clone()]))).unwrap();
        interceptor.handle_read(inbound(Packet::Rtcp(vec![report, lost]))).unwrap();

        let report_alone = interceptor.poll_read().expect("the report, passed on");
        assert!(!report_alone.message.has(&Attribute::DeliverToApplication));
        let delivered = interceptor.poll_read().expect("the keyframe request");
        assert!(delivered.message.has(&Attribute::DeliverToApplication));
        let Packet::Rtcp(packets) = &delivered.message.packet else { panic!("not RTCP") };
        assert_eq!(packets.len(), 1, "only the request, not the report beside it");
        assert!(asks_for_keyframe(packets[0].as_ref()));
        assert!(interceptor.poll_read().is_none());
    }
}
