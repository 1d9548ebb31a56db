//! One connection's timers and rate limit as a pure state machine. The connection task feeds it
//! the time of each frame and wakes at [`Session::deadline`]; everything time-dependent (join
//! deadline, pings, idle drop, the token bucket) is decided here and tested with made-up
//! instants.

use std::time::{Duration, Instant};

use crate::Config;

/// What to do with a frame that just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Pass,
    /// Over the rate limit: drop it. `notify` is true at most once a second, so the `rate_limited`
    /// answers cannot themselves become a flood.
    Drop {
        notify: bool,
    },
    /// The client kept sending long after being told to slow down.
    Kick,
}

/// What a timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Ping,
    JoinTimeout,
    Idle,
}

#[derive(Debug)]
pub struct Session {
    join_deadline: Option<Instant>,
    last_heard: Instant,
    next_ping: Instant,
    ping_interval: Duration,
    idle_timeout: Duration,
    /// Messages per second, and the bucket's size. Zero rate: unlimited.
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    dropped_in_a_row: u32,
    last_notice: Option<Instant>,
}

impl Session {
    pub fn new(now: Instant, config: &Config) -> Self {
        let burst = f64::from(config.burst_messages.max(1));
        Self {
            join_deadline: Some(now + config.join_timeout),
            last_heard: now,
            next_ping: now + config.ping_interval,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            rate: f64::from(config.messages_per_second),
            burst,
            tokens: burst,
            refilled: now,
            dropped_in_a_row: 0,
            last_notice: None,
        }
    }

    pub fn joined(&mut self) {
        self.join_deadline = None;
    }

    /// Any frame, pongs included, shows the peer is alive.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Rate-limits one client message.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.rate <= 0.0 {
            return Admission::Pass;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.dropped_in_a_row = 0;
            return Admission::Pass;
        }
        self.dropped_in_a_row += 1;
        if f64::from(self.dropped_in_a_row) > self.burst {
            return Admission::Kick;
        }
        let notify = self.last_notice.is_none_or(|t| now >= t + Duration::from_secs(1));
        if notify {
            self.last_notice = Some(now);
        }
        Admission::Drop { notify }
    }

    /// When the connection task must wake up next and call [`Session::poll`].
    pub fn deadline(&self) -> Instant {
        let idle = self.last_heard + self.idle_timeout;
        let soonest = idle.min(self.next_ping);
        self.join_deadline.map_or(soonest, |j| j.min(soonest))
    }

    /// What is due at `now`, most severe first. Call again until it answers `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Due> {
        if self.join_deadline.is_some_and(|d| now >= d) {
            return Some(Due::JoinTimeout);
        }
        if now >= self.last_heard + self.idle_timeout {
            return Some(Due::Idle);
        }
        if now >= self.next_ping {
            self.next_ping = now + self.ping_interval;
            return Some(Due::Ping);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            messages_per_second: 10,
            burst_messages: 20,
            ..Config::default()
        }
    }
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn join_must_come_in_time() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, &config());
        assert_eq!(s.deadline(), t0 + 10 * S);
        assert_eq!(s.poll(t0 + 9 * S), None);
        assert_eq!(s.poll(t0 + 10 * S), Some(Due::JoinTimeout));
        let mut s = Session::new(t0, &config());
        s.joined();
        assert_eq!(s.poll(t0 + 10 * S), None);
    }

    #[test]
    fn pings_every_interval_and_drops_the_silent() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, &config());
        s.joined();
        assert_eq!(s.deadline(), t0 + 15 * S);
        assert_eq!(s.poll(t0 + 15 * S), Some(Due::Ping));
        assert_eq!(s.poll(t0 + 15 * S), None);
        assert_eq!(s.deadline(), t0 + 30 * S);
        s.heard(t0 + 20 * S); // the pong
        assert_eq!(s.poll(t0 + 30 * S), Some(Due::Ping));
        assert_eq!(s.poll(t0 + 45 * S), Some(Due::Ping));
        assert_eq!(s.deadline(), t0 + 60 * S);
        assert_eq!(s.poll(t0 + 64 * S), Some(Due::Ping));
        assert_eq!(s.deadline(), t0 + 65 * S, "idle 45 s after the last frame heard");
        assert_eq!(s.poll(t0 + 65 * S), Some(Due::Idle));
    }

    #[test]
    fn bursts_pass_floods_are_dropped_then_kicked() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, &config());
        for _ in 0..20 {
            assert_eq!(s.admit(t0), Admission::Pass);
        }
        assert_eq!(s.admit(t0), Admission::Drop { notify: true });
        assert_eq!(s.admit(t0), Admission::Drop { notify: false });
        // A tenth of a second later one token has come back.
        assert_eq!(s.admit(t0 + S / 10), Admission::Pass);
        let mut last = Admission::Pass;
        for _ in 0..25 {
            last = s.admit(t0 + S / 10);
        }
        assert_eq!(last, Admission::Kick);
    }

    #[test]
    fn sustained_rate_under_the_limit_always_passes() {
        let t0 = Instant::now();
        let mut s = Session::new(t0, &config());
        for i in 0..1000 {
            assert_eq!(s.admit(t0 + S * i / 10), Admission::Pass, "message {i}");
        }
    }
}
