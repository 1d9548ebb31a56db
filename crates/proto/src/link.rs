//! Meeting links (docs/protocol.md §1).
//!
//! `http(s)://HOST[:PORT][/PREFIX]/m/ROOM#k=KEY[&n=NAME]` is what people share; the key stays in
//! the fragment, so the server that serves the page never learns it. The desktop app also takes
//! `confab://m/ROOM?h=HOST[:PORT][&p=/PREFIX][&s=http]#k=KEY[&n=NAME]`; its server is reached over
//! https unless `s=http` says otherwise, at the path prefix `p` if the server has one.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::ids::{DisplayName, MeetingKey, RoomId};

/// Why a string is not a meeting link. Each variant is a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this is not a meeting link")]
    NotALink,
    #[error("a meeting link starts with https://, http:// or confab://")]
    UnsupportedScheme,
    #[error("the link has no meeting in it (expected …/m/ROOM)")]
    NoRoom,
    #[error("the meeting id in the link is malformed")]
    BadRoom,
    #[error("the link lacks its meeting key (#k=…); ask for the whole link")]
    MissingKey,
    #[error("the meeting key in the link is malformed")]
    BadKey,
    #[error("the name in the link is not a valid display name")]
    BadName,
    #[error("the confab:// link does not say which server hosts the meeting (h=HOST)")]
    BadHost,
}

/// A parsed meeting link: which server, which room, the meeting key and optionally a name.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingLink {
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    server: String,
    room: RoomId,
    key: MeetingKey,
    name: Option<DisplayName>,
}

impl MeetingLink {
    /// A link to `room` on the server at `server` (`http(s)://host[:port][/prefix]`).
    pub fn new(server: &str, room: RoomId, key: MeetingKey) -> Result<Self, LinkError> {
        let url = Url::parse(server).map_err(|_| LinkError::NotALink)?;
        Ok(Self { server: server_base(&url, url.path())?, room, key, name: None })
    }

    pub fn with_name(mut self, name: DisplayName) -> Self {
        self.name = Some(name);
        self
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }
    pub fn key(&self) -> &MeetingKey {
        &self.key
    }
    pub fn name(&self) -> Option<&DisplayName> {
        self.name.as_ref()
    }
    /// `http(s)://host[:port][/prefix]` of the signaling service.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The signaling WebSocket URL: `ws(s)://host[:port][/prefix]/ws`.
    pub fn websocket_url(&self) -> String {
        let rest = self.server.strip_prefix("http").unwrap_or(&self.server);
        format!("ws{rest}/ws")
    }

    /// The `confab://` deep-link form of this link.
    pub fn to_deep_link(&self) -> String {
        let (scheme, rest) = self.server.split_once("://").unwrap_or(("https", &self.server));
        let (host, prefix) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("h", host);
        if !prefix.is_empty() {
            query.append_pair("p", prefix);
        }
        if scheme == "http" {
            query.append_pair("s", "http");
        }
        format!("confab://m/{}?{}#{}", self.room, query.finish(), self.fragment())
    }

    fn fragment(&self) -> String {
        let mut fragment = url::form_urlencoded::Serializer::new(String::new());
        fragment.append_pair("k", self.key.as_str());
        if let Some(name) = &self.name {
            fragment.append_pair("n", name.as_str());
        }
        fragment.finish()
    }
}

/// `scheme://host[:port][/prefix]` from a parsed URL and the path prefix to keep.
fn server_base(url: &Url, prefix: &str) -> Result<String, LinkError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(LinkError::UnsupportedScheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LinkError::BadHost);
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or(LinkError::BadHost)?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{}", prefix.trim_end_matches('/')))
}

/// The `k` and `n` parameters of a link's fragment.
fn parse_fragment(fragment: Option<&str>) -> Result<(MeetingKey, Option<DisplayName>), LinkError> {
    let mut key = None;
    let mut name = None;
    for (k, v) in url::form_urlencoded::parse(fragment.unwrap_or("").as_bytes()) {
        match &*k {
            "k" => key = Some(v.parse::<MeetingKey>().map_err(|_| LinkError::BadKey)?),
            "n" => name = Some(DisplayName::new(&v).map_err(|_| LinkError::BadName)?),
            _ => {}
        }
    }
    Ok((key.ok_or(LinkError::MissingKey)?, name))
}

impl FromStr for MeetingLink {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<Self, LinkError> {
        let url = Url::parse(s.trim()).map_err(|_| LinkError::NotALink)?;
        match url.scheme() {
            "http" | "https" => {
                let path = url.path().trim_end_matches('/');
                let (prefix, room) = path.rsplit_once("/m/").ok_or(LinkError::NoRoom)?;
                if room.contains('/') {
                    return Err(LinkError::NoRoom);
                }
                let room = room.parse::<RoomId>().map_err(|_| LinkError::BadRoom)?;
                let (key, name) = parse_fragment(url.fragment())?;
                Ok(Self { server: server_base(&url, prefix)?, room, key, name })
            }
            "confab" => {
                if url.host_str() != Some("m") {
                    return Err(LinkError::NoRoom);
                }
                let room = url.path().trim_start_matches('/').trim_end_matches('/');
                let room = room.parse::<RoomId>().map_err(|_| LinkError::BadRoom)?;
                let mut host = None;
                let mut prefix = String::new();
                let mut scheme = "https";
                for (k, v) in url.query_pairs() {
                    match &*k {
                        "h" => host = Some(v.into_owned()),
                        "p" => prefix = v.into_owned(),
                        "s" if v == "http" => scheme = "http",
                        _ => {}
                    }
                }
                let host = host.filter(|h| !h.contains(['/', '?', '#', '@', '\\']));
                let host = host.ok_or(LinkError::BadHost)?;
                let plain_prefix = prefix.is_empty()
                    || (prefix.starts_with('/') && !prefix.contains(['?', '#', '@', '\\']));
                if !plain_prefix {
                    return Err(LinkError::BadHost);
                }
                let server = Url::parse(&format!("{scheme}://{host}{prefix}"))
                    .map_err(|_| LinkError::BadHost)?;
                let (key, name) = parse_fragment(url.fragment())?;
                Ok(Self { server: server_base(&server, server.path())?, room, key, name })
            }
            _ => Err(LinkError::UnsupportedScheme),
        }
    }
}

impl fmt::Display for MeetingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/m/{}#{}", self.server, self.room, self.fragment())
    }
}

impl fmt::Debug for MeetingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeetingLink")
            .field("server", &self.server)
            .field("room", &self.room)
            .field("key", &self.key)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "q83vEjRWeJCrze8SNFZ4kA";
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODw";

    fn link(s: &str) -> Result<MeetingLink, LinkError> {
        s.parse()
    }

    #[test]
    fn https_link_round_trips() {
        let text = format!("https://meet.example.org/m/{ROOM}#k={KEY}");
        let l = link(&text).unwrap();
        assert_eq!(l.server(), "https://meet.example.org");
        assert_eq!(l.room().as_str(), ROOM);
        assert_eq!(l.key().as_str(), KEY);
        assert_eq!(l.name(), None);
        assert_eq!(l.to_string(), text);
        assert_eq!(l.websocket_url(), "wss://meet.example.org/ws");
    }

    #[test]
    fn http_link_with_port_prefix_and_name() {
        let l = link(&format!("http://127.0.0.1:8787/confab/m/{ROOM}#k={KEY}&n=Ada%20L%C3%B6"))
            .unwrap();
        assert_eq!(l.server(), "http://127.0.0.1:8787/confab");
        assert_eq!(l.name().unwrap().as_str(), "Ada Lö");
        assert_eq!(l.websocket_url(), "ws://127.0.0.1:8787/confab/ws");
        assert_eq!(link(&l.to_string()).unwrap(), l);
    }

    #[test]
    fn deep_link_round_trips_both_ways() {
        let l = link(&format!("confab://m/{ROOM}?h=meet.example.org%3A8443#k={KEY}")).unwrap();
        assert_eq!(l.server(), "https://meet.example.org:8443");
        assert_eq!(link(&l.to_deep_link()).unwrap(), l);
        let prefixed =
            link(&format!("https://meet.example.org/teams/confab/m/{ROOM}#k={KEY}")).unwrap();
        assert_eq!(link(&prefixed.to_deep_link()).unwrap(), prefixed);
        let plain = link(&format!("confab://m/{ROOM}?h=localhost:8787&s=http#k={KEY}")).unwrap();
        assert_eq!(plain.to_string(), format!("http://localhost:8787/m/{ROOM}#k={KEY}"));
        assert_eq!(link(&plain.to_deep_link()).unwrap(), plain);
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        let cases = [
            ("", LinkError::NotALink),
            ("not a link", LinkError::NotALink),
            ("ftp://x/m/a#k=b", LinkError::UnsupportedScheme),
            (&format!("https://h/{ROOM}#k={KEY}"), LinkError::NoRoom),
            (&format!("https://h/m/{ROOM}/extra#k={KEY}"), LinkError::NoRoom),
            (&format!("https://h/m/short#k={KEY}"), LinkError::BadRoom),
            (&format!("https://h/m/{ROOM}"), LinkError::MissingKey),
            (&format!("https://h/m/{ROOM}#n=Ada"), LinkError::MissingKey),
            (&format!("https://h/m/{ROOM}#k=nope"), LinkError::BadKey),
            (&format!("https://h/m/{ROOM}#k={KEY}&n="), LinkError::BadName),
            (&format!("https://user:pw@h/m/{ROOM}#k={KEY}"), LinkError::BadHost),
            (&format!("confab://m/{ROOM}#k={KEY}"), LinkError::BadHost),
            (&format!("confab://m/{ROOM}?h=evil.com/x#k={KEY}"), LinkError::BadHost),
            (&format!("confab://m/{ROOM}?h=h&p=no-slash#k={KEY}"), LinkError::BadHost),
            (&format!("confab://m/{ROOM}?h=h&p=/x%3Fy#k={KEY}"), LinkError::BadHost),
            (&format!("confab://x/{ROOM}?h=h#k={KEY}"), LinkError::NoRoom),
        ];
        for (text, want) in cases {
            assert_eq!(link(text), Err(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn key_is_redacted_in_debug() {
        let l = link(&format!("https://h/m/{ROOM}#k={KEY}")).unwrap();
        assert!(!format!("{l:?}").contains(KEY));
    }
}
