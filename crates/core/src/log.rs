//! Logs without addresses: what the front ends write their logs through, so that no IP address
//! and no ICE candidate reaches a log in plain text — ours never hold one, but the WebRTC stack
//! names both in its own errors and traces ("Failed to write packet to ADDRESS from ADDRESS").
//!
//! Front ends give [`RedactingStderr`] to their log formatter as the writer; every line is
//! scrubbed by [`redact_addresses`] before it is written.

use std::borrow::Cow;
use std::io::{self, Write};

/// What an address is replaced by.
const ADDRESS: &str = "<address>";
/// What follows `candidate:` is replaced by this, up to the end of the candidate.
const CANDIDATE: &str = "candidate:<redacted>";

/// Standard error, with every address and candidate in what is written replaced (see
/// [`redact_addresses`]). The log formatter writes each event in one call, so an address is
/// never split between two writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(redact_addresses(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `text` with each IPv4 and IPv6 address replaced by `<address>`, and each ICE candidate's
/// description (after `candidate:`) by `<redacted>`. Ports stay: they say nothing of where a
/// person is. Clock times, versions and Rust paths (`webrtc::ice`) are not addresses and stay.
pub fn redact_addresses(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    // Up to `copied`, `text` is in `out` already (redacted).
    let mut copied = 0;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        // Bytes, not `text[at..]`: `at` steps through every byte, inside characters too.
        if bytes[at..].starts_with(b"candidate:") {
            let end = candidate_end(text, at + "candidate:".len());
            out.push_str(&text[copied..at]);
            out.push_str(CANDIDATE);
            (copied, at) = (end, end);
            continue;
        }
        let starts_word = at == 0 || !is_word(bytes[at - 1]);
        if starts_word && is_address_char(bytes[at]) {
            let end = at + bytes[at..].iter().take_while(|&&b| is_address_char(b)).count();
            let ends_word = end == bytes.len() || !is_word(bytes[end]);
            if let Some(len) = address_len(&text[at..end]).filter(|_| ends_word) {
                out.push_str(&text[copied..at]);
                out.push_str(ADDRESS);
                copied = at + len;
            }
            at = end.max(at + 1);
            continue;
        }
        at += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where a candidate's description ends: at the end of its line, or of the quoted or escaped
/// string it sits in (an SDP in a debug print is one line with `\r\n` in it).
fn candidate_end(text: &str, from: usize) -> usize {
    text[from..].find(['\n', '\r', '"', '\\']).map_or(text.len(), |end| from + end)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_address_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// How much of a run of hex digits, colons and dots, from its start, is an IPv4 or IPv6
/// address: an IPv4 address may be followed by its port, which stays. A clock time
/// (`01:38:42.5`) has too few colons and no `::`; a version (`0.21.1`) too few parts.
fn address_len(run: &str) -> Option<usize> {
    let run = run.trim_end_matches(['.', ':']);
    let (host, port) = run.split_once(':').unwrap_or((run, ""));
    if is_v4(host) && port.bytes().all(|b| b.is_ascii_digit()) {
        return Some(host.len());
    }
    // IPv6 ends in hex groups, or in an IPv4 address (`::ffff:192.0.2.1`).
    let (groups, v4_tail) = match run.rsplit_once(':') {
        Some((head, tail)) if tail.contains('.') => (head, is_v4(tail)),
        _ => (run, true),
    };
    let is_v6 = v4_tail
        && !groups.contains('.')
        && groups.split(':').all(|g| g.len() <= 4)
        && (run.contains("::") || run.matches(':').count() == 7);
    is_v6.then_some(run.len())
}

fn is_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_replaced_wherever_they_stand() {
        let cases = [
            (
                "Failed to write packet to 192.0.2.2:47687 from 198.18.252.3:40287: unreachable",
                "Failed to write packet to <address>:47687 from <address>:40287: unreachable",
            ),
            ("bound to [2001:db8::1]:443", "bound to [<address>]:443"),
            ("via fe80::1c2d:3eff:fe4f:5a6b%eth0", "via <address>%eth0"),
            ("full 2001:0db8:0000:0000:0000:ff00:0042:8329.", "full <address>."),
            ("mapped ::ffff:203.0.113.9 here", "mapped <address> here"),
            ("addr=10.1.2.3,", "addr=<address>,"),
            ("Zoë→10.1.2.3 candidate:1 1 udp", "Zoë→<address> candidate:<redacted>"),
        ];
        for (text, redacted) in cases {
            assert_eq!(redact_addresses(text), redacted, "{text}");
        }
    }

    #[test]
    fn candidates_are_replaced_up_to_the_end_of_their_line_or_string() {
        let sdp = r#"offer: "a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=end""#;
        assert_eq!(redact_addresses(sdp), r#"offer: "a=candidate:<redacted>\r\na=end""#);
        let line = "adding candidate:2 1 udp 1 host-name.local 9 typ host\nnext";
        assert_eq!(redact_addresses(line), "adding candidate:<redacted>\nnext");
    }

    #[test]
    fn times_versions_paths_plain_words_and_other_scripts_stay() {
        for text in [
            "2026-12-03T01:38:42.555830Z ERROR webrtc::peer_connection::driver: dead beef",
            "webrtc 0.21.1, ice 1.2.3",
            "at 12:34:56:78:9a:bc (a MAC, not an IP), cafe:face",
            "room abcd-1234, peer 7f3a",
            "sharing Screen 1 (2560×1440) for Zoë, 会議 10.0.0",
        ] {
            assert!(matches!(redact_addresses(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
