//! Noticing that this machine's addresses changed (a Wi-Fi handover, a VPN coming up, a cable
//! pulled), so the engine restarts ICE at once rather than waiting for connections to time out.
//! There is no portable change notification, so the addresses are read once a second: one
//! `getifaddrs` call.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use rtc::shared::ifaces::{Kind, ifaces};
use tokio::sync::mpsc;
use tracing::{Instrument, debug};

const POLL_EVERY: Duration = Duration::from_secs(1);

/// The addresses a connection could use: not loopback, not link-local (as ICE gathers them).
fn usable_addresses() -> BTreeSet<IpAddr> {
    let Ok(interfaces) = ifaces() else { return BTreeSet::new() };
    (interfaces.into_iter())
        .filter(|i| matches!(i.kind, Kind::Ipv4 | Kind::Ipv6))
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip))
        .collect()
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// A message each time the set of usable addresses changes, until the receiver is dropped.
pub fn watch() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    let task = async move {
        let mut known = usable_addresses();
        let mut poll = tokio::time::interval(POLL_EVERY);
        loop {
            poll.tick().await;
            let now = usable_addresses();
            if now == known {
                continue;
            }
            // How many, never which: addresses are not logged.
            debug!(before = known.len(), after = now.len(), "this machine's addresses changed");
            known = now;
            // A change not yet taken covers this one too.
            if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                return;
            }
        }
    };
    tokio::spawn(task.in_current_span());
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usable_addresses_leave_out_loopback_and_link_local() {
        let addresses = usable_addresses();
        assert!(addresses.iter().all(|ip| !ip.is_loopback() && !is_link_local(ip)));
        // This machine reaches the rest of the world from one of them.
        let own = crate::peer::own_address().unwrap();
        assert!(
            addresses.contains(&own),
            "{} addresses, without the default route's",
            addresses.len()
        );
    }
}
