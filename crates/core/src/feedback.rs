//! Lets the peer's feedback on our tracks reach their senders: keyframe requests for the
//! camera or screen, and loss reports for the bitrate.
//!
//! Inbound RTCP is for webrtc's interceptors (reports, NACK) and goes no further unless one of
//! them marks a packet for the application. This one, last in the chain, marks two kinds,
//! each in a message of its own because the stack routes a message to one track by the SSRC its
//! first part names:
//! - picture loss indications and full intra requests, one message per stream they ask of;
//! - every reception report block (from a receiver or a sender report), as a receiver report
//!   with that one block, so each reaches the track it is about.
//!
//! Everything else passes unchanged, for the end of the chain to deal with as it would without
//! this.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::TransportMessage;
use rtc::shared::error::Error;

/// Whether this RTCP packet asks for a keyframe.
pub(crate) fn asks_for_keyframe(packet: &dyn rtc::rtcp::Packet) -> bool {
    let packet = packet.as_any();
    packet.is::<PictureLossIndication>() || packet.is::<FullIntraRequest>()
}

/// The share of packets the peer lost of the stream `ssrc` since its last report, in 256ths,
/// if this packet reports on it.
pub(crate) fn fraction_lost(packet: &dyn rtc::rtcp::Packet, ssrc: u32) -> Option<u8> {
    let blocks = reception_reports(packet)?;
    blocks.iter().find(|block| block.ssrc == ssrc).map(|block| block.fraction_lost)
}

fn reception_reports(packet: &dyn rtc::rtcp::Packet) -> Option<&[ReceptionReport]> {
    let packet = packet.as_any();
    if let Some(report) = packet.downcast_ref::<ReceiverReport>() {
        return Some(&report.reports);
    }
    packet.downcast_ref::<SenderReport>().map(|report| report.reports.as_slice())
}

/// RTCP packets that travel together.
type Compound = Vec<Box<dyn rtc::rtcp::Packet>>;

/// The interceptor: keyframe requests and reception reports are marked for the application;
/// the rest passes as is.
#[derive(Default)]
pub(crate) struct Feedback {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Feedback {
    /// Passes `packets` on to the application, with what the chain learnt about `like`.
    fn deliver(&mut self, like: &TaggedPacket, packets: Compound) {
        let attributes = like.message.attributes.clone();
        let message = AttributedPacket { attributes, packet: Packet::Rtcp(packets) }
            .with(Attribute::DeliverToApplication);
        self.reads.push_back(TransportMessage {
            now: like.now,
            transport: like.transport,
            message,
        });
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Feedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        let Packet::Rtcp(packets) = &msg.message.packet else {
            self.reads.push_back(msg);
            return Ok(());
        };
        // Keyframe requests grouped by the stream they ask of (a compound may ask of the camera
        // and the screen at once).
        let mut requests: Vec<(Option<u32>, Compound)> = Vec::new();
        for request in packets.iter().filter(|p| asks_for_keyframe(p.as_ref())) {
            let ssrc = request.destination_ssrc().first().copied();
            match requests.iter_mut().find(|(of, _)| *of == ssrc) {
                Some((_, same)) => same.push(request.clone()),
                None => requests.push((ssrc, vec![request.clone()])),
            }
        }
        let mut reports = Vec::new();
        for packet in packets {
            for block in reception_reports(packet.as_ref()).unwrap_or_default() {
                let report = ReceiverReport { reports: vec![block.clone()], ..Default::default() };
                reports.push(vec![Box::new(report) as Box<dyn rtc::rtcp::Packet>]);
            }
        }
        if requests.is_empty() && reports.is_empty() {
            self.reads.push_back(msg);
            return Ok(());
        }
        for (_, same_stream) in requests {
            self.deliver(&msg, same_stream);
        }
        for report in reports {
            self.deliver(&msg, report);
        }
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

impl std::fmt::Debug for Feedback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feedback")
    }
}

impl Interceptor for Feedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(packet: Packet) -> TaggedPacket {
        TransportMessage {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(packet),
        }
    }

    fn delivered(interceptor: &mut Feedback) -> Vec<Box<dyn rtc::rtcp::Packet>> {
        let message = interceptor.poll_read().expect("a message");
        assert!(message.message.has(&Attribute::DeliverToApplication));
        let Packet::Rtcp(packets) = message.message.packet else { panic!("not RTCP") };
        packets
    }

    fn block(ssrc: u32, fraction_lost: u8) -> ReceptionReport {
        ReceptionReport { ssrc, fraction_lost, ..Default::default() }
    }

    #[test]
    fn keyframe_requests_are_marked_for_the_application_and_other_rtcp_is_not() {
        let mut interceptor = Feedback::default();
        let empty_report: Box<dyn rtc::rtcp::Packet> = Box::new(ReceiverReport::default());
        let lost: Box<dyn rtc::rtcp::Packet> =
            Box::new(PictureLossIndication { sender_ssrc: 1, media_ssrc: 2 });
        interceptor.handle_read(inbound(Packet::Rtcp(vec![empty_report.clone()]))).unwrap();
        interceptor.handle_read(inbound(Packet::Rtcp(vec![empty_report, lost]))).unwrap();

        let report_alone = interceptor.poll_read().expect("the report, passed on");
        assert!(!report_alone.message.has(&Attribute::DeliverToApplication));
        let packets = delivered(&mut interceptor);
        assert_eq!(packets.len(), 1, "only the request, not the report beside it");
        assert!(asks_for_keyframe(packets[0].as_ref()));
        assert!(interceptor.poll_read().is_none());
    }

    #[test]
    fn keyframe_requests_for_two_streams_reach_each_stream() {
        let mut interceptor = Feedback::default();
        let ask = |media_ssrc| -> Box<dyn rtc::rtcp::Packet> {
            Box::new(PictureLossIndication { sender_ssrc: 9, media_ssrc })
        };
        let compound = vec![ask(100), ask(200), ask(100)];
        interceptor.handle_read(inbound(Packet::Rtcp(compound))).unwrap();
        for (ssrc, count) in [(100, 2), (200, 1)] {
            let packets = delivered(&mut interceptor);
            assert_eq!(packets.len(), count);
            assert!(packets.iter().all(|p| p.destination_ssrc().first() == Some(&ssrc)));
        }
        assert!(interceptor.poll_read().is_none());
    }

    #[test]
    fn each_reception_report_reaches_the_stream_it_is_about_on_its_own() {
        let mut interceptor = Feedback::default();
        // A compound as Chromium sends it while it also sends media: a sender report with a
        // block for each of our streams, and a receiver report for a third.
        let sender_report: Box<dyn rtc::rtcp::Packet> = Box::new(SenderReport {
            ssrc: 9,
            reports: vec![block(100, 26), block(200, 0)],
            ..Default::default()
        });
        let receiver_report: Box<dyn rtc::rtcp::Packet> = Box::new(ReceiverReport {
            ssrc: 9,
            reports: vec![block(300, 128)],
            ..Default::default()
        });
        interceptor
            .handle_read(inbound(Packet::Rtcp(vec![sender_report, receiver_report])))
            .unwrap();
        for (ssrc, lost) in [(100, 26), (200, 0), (300, 128)] {
            let packets = delivered(&mut interceptor);
            let [packet] = packets.as_slice() else { panic!("one packet per message") };
            // The stack routes by the first SSRC the message names: this block's stream.
            assert_eq!(packet.destination_ssrc().first(), Some(&ssrc));
            assert_eq!(fraction_lost(packet.as_ref(), ssrc), Some(lost));
            assert_eq!(fraction_lost(packet.as_ref(), ssrc + 1), None);
        }
        assert!(interceptor.poll_read().is_none());
    }
}
