//! How fast a video track may go to one peer, judged from the peer's loss reports: the
//! loss-based half of Google congestion control (draft-ietf-rmcat-gcc-02 §6), which is what a
//! peer that sends only receiver reports allows.
//!
//! A pure state machine: [`LossBasedRate::on_report`] takes the time and the share lost, and
//! returns the bitrate to aim at. Heavy loss (over 10%) means the path is full: the rate comes
//! down by half the loss. Over 20% the path is overflowing, and the cut starts from what the
//! track really sends when that is less than its aim (an easy picture sends far below its aim,
//! and cutting an aim it does not reach changes nothing); loss nearer 10% may be the path's own
//! (a radio link), and cutting from what is sent there would drag the picture to the floor. Light loss (under 2%) means there is room: it goes up 8% a second,
//! back to the track's own rate at most. Loss in between is the path's own, and changes nothing.

use std::time::{Duration, Instant};

/// Above this share lost, the rate comes down.
const CONGESTED: f64 = 0.10;
/// Above this share lost, the path is overflowing: the rate is cut from what is really sent.
const OVERFLOWING: f64 = 0.20;
/// Below it, the rate goes up.
const CLEAR: f64 = 0.02;
/// How much a second of clear reports raises the rate.
const INCREASE_PER_SECOND: f64 = 1.08;
/// Reports this close after a decrease are about the same loss (a report covers about a
/// second, and the encoder needs a moment to follow), so they do not cut the rate again.
const DECREASE_GAP: Duration = Duration::from_millis(700);
/// The least the rate comes down to: below it a picture is not worth sending.
const FLOOR_KBPS: u32 = 100;

/// The rate towards one peer.
#[derive(Debug, Clone)]
pub struct LossBasedRate {
    max_kbps: u32,
    kbps: f64,
    last_report: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl LossBasedRate {
    /// Starts at `max_kbps`, the track's own rate, which it never goes above.
    pub fn new(max_kbps: u32) -> Self {
        Self { max_kbps, kbps: f64::from(max_kbps), last_report: None, last_decrease: None }
    }

    /// The rate to aim at now, in kbit/s.
    pub fn kbps(&self) -> u32 {
        self.kbps.round() as u32
    }

    /// The peer reported `fraction_lost` (in 256ths, as RTCP carries it) at `now`, while the
    /// track sent `sent_kbps`; returns the rate to aim at from now on.
    pub fn on_report(&mut self, now: Instant, fraction_lost: u8, sent_kbps: u32) -> u32 {
        let lost = f64::from(fraction_lost) / 256.0;
        let since_last =
            self.last_report.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.last_report = Some(now);
        let floor = f64::from(FLOOR_KBPS.min(self.max_kbps));
        if lost > CONGESTED {
            let settled = self
                .last_decrease
                .is_none_or(|at| now.saturating_duration_since(at) >= DECREASE_GAP);
            if settled {
                let from = match lost > OVERFLOWING {
                    true => self.kbps.min(f64::from(sent_kbps)),
                    false => self.kbps,
                };
                self.kbps = (from * (1.0 - 0.5 * lost)).max(floor);
                self.last_decrease = Some(now);
            }
        } else if lost < CLEAR {
            // By the time since the last report, so frequent reports do not climb faster; a
            // long silence counts as one second at most.
            let seconds = since_last.min(Duration::from_secs(1)).as_secs_f64();
            self.kbps =
                (self.kbps * INCREASE_PER_SECOND.powf(seconds)).min(f64::from(self.max_kbps));
        }
        self.kbps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports once a second, as browsers and webrtc send them, each with `lost` 256ths.
    fn report_every_second(
        rate: &mut LossBasedRate,
        from: Instant,
        seconds: u64,
        lost: u8,
    ) -> Vec<u32> {
        (1..=seconds)
            .map(|s| rate.on_report(from + Duration::from_secs(s), lost, u32::MAX))
            .collect()
    }

    #[test]
    fn heavy_loss_halves_the_rate_within_a_few_seconds_and_never_below_the_floor() {
        let (mut rate, t0) = (LossBasedRate::new(2500), Instant::now());
        // 20% lost: each report takes off 10%.
        let rates = report_every_second(&mut rate, t0, 60, 51);
        assert_eq!(rates[0], 2251);
        assert!(rates[6] < 1250, "half the rate after 7 s of 20% loss: {rates:?}");
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(*rates.last().unwrap(), FLOOR_KBPS);
    }

    #[test]
    fn once_the_loss_clears_the_rate_climbs_back_8_percent_a_second_to_its_own_and_no_further() {
        let (mut rate, t0) = (LossBasedRate::new(2500), Instant::now());
        report_every_second(&mut rate, t0, 30, 128);
        assert_eq!(rate.kbps(), FLOOR_KBPS);
        let rates = report_every_second(&mut rate, t0 + Duration::from_secs(30), 60, 0);
        assert_eq!(rates[0], 108);
        let back = rates.iter().position(|&kbps| kbps == 2500).expect("back at its own rate");
        // 100 × 1.08ⁿ ≥ 2500 takes 42 seconds.
        assert_eq!(back, 41, "{rates:?}");
        assert!(rates.iter().all(|&kbps| kbps <= 2500));
    }

    #[test]
    fn loss_between_2_and_10_percent_holds_the_rate_where_it_is() {
        let (mut rate, t0) = (LossBasedRate::new(2500), Instant::now());
        report_every_second(&mut rate, t0, 3, 64);
        let held = rate.kbps();
        let rates = report_every_second(&mut rate, t0 + Duration::from_secs(3), 20, 13);
        assert!(rates.iter().all(|&kbps| kbps == held), "{held}: {rates:?}");
    }

    #[test]
    fn a_burst_of_reports_about_one_loss_cuts_the_rate_once_and_climbs_by_time_not_count() {
        let (mut rate, t0) = (LossBasedRate::new(1000), Instant::now());
        // Several peers' worth of reports within half a second, all 50% lost.
        let burst: Vec<_> = (0..5)
            .map(|i| rate.on_report(t0 + Duration::from_millis(100 * i), 128, u32::MAX))
            .collect();
        assert_eq!(burst, [750; 5]);
        // Ten clear reports in one second raise it by 8% in all, not ten times over.
        for i in 1..=10 {
            rate.on_report(t0 + Duration::from_millis(400 + 100 * i), 0, u32::MAX);
        }
        assert_eq!(rate.kbps(), 810);
    }

    #[test]
    fn a_track_whose_own_rate_is_below_the_floor_stays_at_its_own_rate() {
        let (mut rate, t0) = (LossBasedRate::new(32), Instant::now());
        assert_eq!(report_every_second(&mut rate, t0, 5, 200), [32; 5]);
    }

    #[test]
    fn a_picture_sending_far_below_its_aim_comes_down_from_what_it_sends() {
        let (mut rate, t0) = (LossBasedRate::new(2500), Instant::now());
        // It aims at 2500 but sends 500: an overflowing path (30% lost) cuts from 500.
        assert_eq!(rate.on_report(t0, 77, 500), 425);
        // Clear again, it climbs back towards its own aim as before.
        assert_eq!(rate.on_report(t0 + Duration::from_secs(1), 0, 425), 459);
        // Loss just over 10%, as a radio link's own, cuts the aim, not what is sent.
        let (mut rate, t0) = (LossBasedRate::new(2500), Instant::now());
        assert_eq!(rate.on_report(t0, 31, 500), 2349);
    }
}
