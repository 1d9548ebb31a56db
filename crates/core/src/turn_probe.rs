//! Whether the TURN relays signaling hands out take the credentials that come with them.
//!
//! A relay refuses expired or forged credentials, but webrtc 0.21 never says so (its ICE
//! candidate error event is never raised): peers that could meet only through the relay would
//! just never connect, unexplained. So on each welcome the engine asks each UDP relay for an
//! allocation with the credentials given, gives it back at once, and tells the person when a
//! relay refuses them or does not answer ([`probe`], [`RelayProblem::explain`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};

/// How long a relay has to answer (its retransmissions included).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a relay cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayProblem {
    /// It refused the credentials (or the allocation), with its reason.
    Refused(String),
    /// Nothing came back within [`PROBE_TIMEOUT`].
    Unanswered,
    /// Its address could not be resolved or reached from here.
    Unreachable(String),
}

impl RelayProblem {
    /// What to tell the person about the relay `url`.
    pub fn explain(&self, url: &str) -> String {
        let unusable = "peers that can meet only through it will not connect";
        match self {
            Self::Refused(why) if why.contains("401") => format!(
                "the relay {url} refused this meeting's credentials ({why}): they have expired, or \
                 the signaling server's TURN secret is not the relay's; {unusable}"
            ),
            Self::Refused(why) => {
                format!("the relay {url} refused to relay for us ({why}); {unusable}")
            }
            Self::Unanswered => format!(
                "the relay {url} did not answer within {} s; {unusable}",
                PROBE_TIMEOUT.as_secs()
            ),
            Self::Unreachable(why) => {
                format!("the relay {url} cannot be reached ({why}); {unusable}")
            }
        }
    }
}

/// The `host:port` of a `turn:` URL reached over UDP, the only kind probed; `None` for any
/// other (`turns:`, `?transport=tcp`, `stun:`).
pub fn udp_relay_address(url: &str) -> Option<String> {
    let rest = url.strip_prefix("turn:")?;
    let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.split('&').any(|p| p.eq_ignore_ascii_case("transport=tcp")) || host_port.is_empty() {
        return None;
    }
    // An IPv6 literal is bracketed; a port follows the last colon outside brackets.
    let has_port = host_port.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
    }) && (!host_port.starts_with('[') || host_port.contains("]:"));
    Some(if has_port { host_port.to_owned() } else { format!("{host_port}:3478") })
}

/// Asks the relay at `address` (`host:port`, UDP) for an allocation with these credentials,
/// and gives it back at once.
pub async fn probe(address: &str, username: &str, credential: &str) -> Result<(), RelayProblem> {
    let unreachable = |e: &dyn std::fmt::Display| RelayProblem::Unreachable(e.to_string());
    let server = tokio::net::lookup_host(address)
        .await
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| RelayProblem::Unreachable("no address".into()))?;
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .unwrap_or_else(|_| unreachable!("literal addresses"));
    let socket = tokio::net::UdpSocket::bind(any).await.map_err(|e| unreachable(&e))?;
    let local = socket.local_addr().map_err(|e| unreachable(&e))?;
    let crypto = rtc::crypto::default_provider().map_err(|e| unreachable(&e))?;
    let config = ClientConfig {
        turn_serv_addr: server.to_string(),
        local_addr: local,
        transport_protocol: TransportProtocol::UDP,
        username: username.to_owned(),
        password: credential.to_owned(),
        software: "confab relay check".into(),
        ..ClientConfig::default()
    };
    let mut client = Client::new(config, crypto).map_err(|e| unreachable(&e))?;
    client.allocate(Instant::now()).map_err(|e| unreachable(&e))?;
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, run(&socket, local, &mut client, server))
        .await
        .unwrap_or(Err(RelayProblem::Unanswered));
    if let Ok(relayed) = outcome {
        // Given back, so a check costs the relay nothing; a lost release expires by itself.
        if let Ok(mut relay) = client.relay(relayed) {
            let _ = relay.close(Instant::now());
        }
        flush(&socket, &mut client).await;
    }
    outcome.map(|_| ())
}

/// Drives the client until the allocation succeeds (its relayed address) or fails.
async fn run(
    socket: &tokio::net::UdpSocket,
    local: SocketAddr,
    client: &mut Client,
    server: SocketAddr,
) -> Result<SocketAddr, RelayProblem> {
    let mut buffer = vec![0u8; 2048];
    loop {
        flush(socket, client).await;
        while let Some(event) = client.poll_event() {
            match event {
                Event::AllocateResponse(_, relayed) => return Ok(relayed),
                Event::AllocateError(_, e) => return Err(RelayProblem::Refused(e.to_string())),
                Event::TransactionTimeout(_) => return Err(RelayProblem::Unanswered),
                _ => {}
            }
        }
        let wake = client.poll_timeout().unwrap_or_else(|| Instant::now() + PROBE_TIMEOUT);
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let Ok((n, from)) = received else { continue };
                // Only the relay's answers; anything else on this port is noise.
                if from != server {
                    continue;
                }
                let message = TransportMessage {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: BytesMut::from(&buffer[..n]),
                };
                // A malformed answer is ignored, as a lost one would be.
                let _ = client.handle_read(message);
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let _ = client.handle_timeout(Instant::now());
            }
        }
    }
}

async fn flush(socket: &tokio::net::UdpSocket, client: &mut Client) {
    while let Some(out) = client.poll_write() {
        let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_turn_over_udp_is_probed_and_the_port_defaults() {
        let cases = [
            ("turn:192.0.2.7:3479?transport=udp", Some("192.0.2.7:3479")),
            ("turn:relay.example.org", Some("relay.example.org:3478")),
            ("turn:[2001:db8::1]:5000", Some("[2001:db8::1]:5000")),
            ("turn:[2001:db8::1]", Some("[2001:db8::1]:3478")),
            ("turn:relay.example.org:3478?transport=tcp", None),
            ("turns:relay.example.org:5349", None),
            ("stun:stun.example.org:3478", None),
            ("turn:", None),
        ];
        for (url, want) in cases {
            assert_eq!(udp_relay_address(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn refused_credentials_are_explained_as_such() {
        let refused =
            RelayProblem::Refused("Allocate error response (error 401: Unauthorized)".into());
        let text = refused.explain("turn:192.0.2.7:3478");
        assert!(text.contains("refused this meeting's credentials"), "{text}");
        assert!(text.contains("will not connect"), "{text}");
        assert!(RelayProblem::Unanswered.explain("turn:x").contains("did not answer"));
    }
}
