//! How often one client address may make meetings or join them: a token bucket per address,
//! as a pure state machine (time comes in). Without it anyone who reaches a public server could
//! mint rooms and TURN credentials as fast as it answers.
//!
//! Addresses are only keys here: they are never logged or kept beyond the bucket, which is
//! forgotten once full again. Loopback is not limited: it is this machine, or a reverse proxy on
//! it, which must limit by the real address itself (README, "Behind a reverse proxy").

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// At most this many addresses are tracked at once; past it, the buckets that are full again
/// are forgotten first, then a newcomer is refused until some are (a flood from many addresses
/// must not grow memory without bound).
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct AddressLimit {
    /// Tokens per second; zero turns the limit off.
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl AddressLimit {
    /// `per_minute` actions from one address, with bursts of as many; 0: no limit.
    pub fn per_minute(per_minute: u32) -> Self {
        let burst = f64::from(per_minute);
        Self { rate: burst / 60.0, burst, buckets: HashMap::new() }
    }

    /// Whether `address` may act at `now` (and counts it if so).
    pub fn allow(&mut self, now: Instant, address: IpAddr) -> bool {
        if self.rate == 0.0 || address.is_loopback() {
            return true;
        }
        if self.buckets.len() >= MAX_ADDRESSES && !self.buckets.contains_key(&address) {
            self.forget_full(now);
            if self.buckets.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.buckets.entry(address).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }

    /// How long until `address` may act again (for `Retry-After`).
    pub fn retry_after(&self) -> Duration {
        if self.rate == 0.0 { Duration::ZERO } else { Duration::from_secs_f64(1.0 / self.rate) }
    }

    /// Drops the buckets that have refilled: they hold nothing worth keeping.
    fn forget_full(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn address(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn an_address_gets_its_burst_then_one_action_per_share_of_a_minute() {
        let t0 = Instant::now();
        let mut limit = AddressLimit::per_minute(6);
        for _ in 0..6 {
            assert!(limit.allow(t0, address(1)));
        }
        assert!(!limit.allow(t0, address(1)), "the burst is spent");
        assert!(limit.allow(t0, address(2)), "another address is not affected");
        assert!(!limit.allow(t0 + Duration::from_secs(9), address(1)));
        assert!(limit.allow(t0 + Duration::from_secs(10), address(1)), "one back every 10 s");
        assert_eq!(limit.retry_after(), Duration::from_secs(10));
    }

    #[test]
    fn loopback_and_a_zero_limit_are_never_limited() {
        let t0 = Instant::now();
        let mut limit = AddressLimit::per_minute(1);
        for _ in 0..100 {
            assert!(limit.allow(t0, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        let mut off = AddressLimit::per_minute(0);
        for _ in 0..100 {
            assert!(off.allow(t0, address(1)));
        }
        assert_eq!(limit.buckets.len() + off.buckets.len(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let t0 = Instant::now();
        let mut limit = AddressLimit::per_minute(60);
        for n in 0..MAX_ADDRESSES as u32 {
            assert!(limit.allow(t0, address(n)));
        }
        assert!(!limit.allow(t0, address(u32::MAX >> 8)), "full, and none refilled yet");
        assert_eq!(limit.buckets.len(), MAX_ADDRESSES);
        // A second later every bucket has its token back: they are forgotten for the newcomer.
        assert!(limit.allow(t0 + Duration::from_secs(1), address(u32::MAX >> 8)));
        assert_eq!(limit.buckets.len(), 1);
    }
}
