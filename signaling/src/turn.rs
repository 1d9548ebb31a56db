//! Time-limited TURN credentials in coturn's `use-auth-secret` scheme (the "TURN REST API"):
//! `username = "<unix expiry>:<peer id>"`, `credential = base64(HMAC-SHA1(secret, username))`.
//! coturn recomputes the same HMAC from its `static-auth-secret` and refuses expired usernames.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use confab_proto::{IceServer, PeerId};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::Config;

/// The username and credential that let `peer` use the TURN server until `expiry`.
pub fn credentials(secret: &str, peer: &PeerId, expiry: SystemTime) -> (String, String) {
    let expiry = expiry.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let username = format!("{expiry}:{peer}");
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The `ice_servers` of a `welcome` for `peer`: the STUN URLs, and TURN with fresh credentials.
pub fn ice_servers(config: &Config, peer: &PeerId, now: SystemTime) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !config.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let Some(turn) = config.turn.as_ref().filter(|t| !t.urls.is_empty()) {
        let (username, credential) = credentials(&turn.secret, peer, now + turn.ttl);
        servers.push(IceServer {
            urls: turn.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independently_computed_vector() {
        let peer: PeerId = "AAECAwQFBgcICQoLDA0ODw".parse().unwrap();
        let (user, cred) =
            credentials("s3cret", &peer, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(user, "1700000000:AAECAwQFBgcICQoLDA0ODw");
        // printf %s '1700000000:AAECAwQFBgcICQoLDA0ODw' | openssl dgst -sha1 -hmac s3cret -binary | base64
        assert_eq!(cred, "DwCnglhaBpaq/IDqFy5TQTBvF08=");
    }
}
