//! Every number both ends of a connection must agree on: frame and chunk sizes, timers, caps.
//!
//! The web UI reads them from `ui/src/gen/constants.ts`, generated from this list (a duration
//! `NAME` becomes `NAME_MS` there), so a limit is written down once for Rust and the browser.
//! Add a constant to the `limits!` list below and run `make gen`.

use std::time::Duration;

/// A value the TypeScript generator knows how to write.
pub(crate) trait TsConstant {
    /// The TypeScript name and value of the constant `name`.
    fn typescript(&self, name: &str) -> (String, String);
}

// Every value here is below 2^53, so a JS number holds it exactly.
macro_rules! integer_constant {
    ($($ty:ty),+) => {$(
        impl TsConstant for $ty {
            fn typescript(&self, name: &str) -> (String, String) {
                (name.to_owned(), self.to_string())
            }
        }
    )+};
}
integer_constant!(u32, u64, usize);

impl TsConstant for Duration {
    fn typescript(&self, name: &str) -> (String, String) {
        (format!("{name}_MS"), self.as_millis().to_string())
    }
}

/// Declares the constants and the list the TypeScript generator walks, from one text.
macro_rules! limits {
    ($($(#[doc = $doc:literal])+ pub const $name:ident: $ty:ty = $value:expr;)+) => {
        $($(#[doc = $doc])+ pub const $name: $ty = $value;)+

        /// `(name, doc, value)` of every constant, in declaration order.
        pub(crate) fn all() -> Vec<(&'static str, &'static str, &'static dyn TsConstant)> {
            vec![$((stringify!($name), concat!($($doc, "\n"),+), &$name)),+]
        }
    };
}

limits! {
    /// Largest frame accepted on `sync` or `ctl`; a larger one closes the connection.
    pub const MAX_CHANNEL_FRAME_BYTES: usize = 1024 * 1024;
    /// The largest message a data channel carries (webrtc-rs's and browsers' default SCTP
    /// limit). A sync message that would not fit in one frame goes as a snapshot instead.
    pub const MAX_SYNC_FRAME_BYTES: usize = 65_536;
    /// Largest snapshot chunk sent in a `sync` frame (tag `0x01`). The protocol once said 64 KiB,
    /// but with its tag byte such a frame is one byte over MAX_SYNC_FRAME_BYTES and cannot be
    /// sent. A received chunk over this size is refused like any malformed frame.
    pub const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024 - 1;
    /// Largest snapshot accepted from a peer. Notes are kilobytes to a few megabytes; this only
    /// keeps a hostile peer from filling memory.
    pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;
    /// Largest chunk on a `file:UUID` channel.
    pub const FILE_CHUNK_BYTES: usize = 16 * 1024;
    /// Largest file a native peer (desktop, CLI) receives: it streams to disk.
    pub const NATIVE_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
    /// Largest file a browser receives: it holds the file in memory until it is saved.
    pub const BROWSER_MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
    /// Offers from one peer that may wait for an answer at once; more are cancelled, not listed.
    pub const MAX_WAITING_FILE_OFFERS: usize = 16;
    /// Longest chat message, in characters (Unicode scalar values).
    pub const MAX_CHAT_CHARS: usize = 4096;
    /// Longest display name, in characters (Unicode scalar values), after trimming.
    pub const MAX_NAME_CHARS: usize = 64;
    /// A `hello` sent before the other side's channel is open is lost, and neither side can know
    /// when it opens: the hello is repeated at this interval until the peer's is verified.
    pub const HELLO_REPEAT: Duration = Duration::from_millis(50);
    /// From the start of negotiation until a verified hello; then the connection has failed.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Frames that may arrive before the peer's hello is verified (held until then); one more
    /// fails the connection.
    pub const MAX_EARLY_FRAMES: usize = 256;
    /// How long a moved selection rests before its `cursor` message goes out, so a drag sends a
    /// few messages, not hundreds.
    pub const CURSOR_SEND_INTERVAL: Duration = Duration::from_millis(80);
    /// The longest `cursor` text taken from a peer (a counter, `@`, an actor id); longer, empty
    /// or non-ASCII ones are ignored before Automerge parses them (its parser panics on the
    /// last two).
    pub const MAX_CURSOR_BYTES: usize = 300;
    /// Messages (`sync` frames and `ctl` messages together) a peer may send us per second,
    /// sustained; typing sends a few dozen at most.
    pub const PEER_MESSAGES_PER_SECOND: u32 = 300;
    /// Messages a peer may send at once above the sustained rate (a late joiner's snapshot is a
    /// thousand chunks); one more and it is disconnected as flooding.
    pub const PEER_MESSAGE_BURST: u32 = 3000;
    /// Bytes a peer may send us per second on `sync` and `ctl`, sustained.
    pub const PEER_BYTES_PER_SECOND: u64 = 16 * 1024 * 1024;
    /// Bytes a peer may send at once above the sustained rate: the largest snapshot, and a
    /// little.
    pub const PEER_BYTE_BURST: u64 = 80 * 1024 * 1024;
    /// A peer sends each other peer at most this many sync messages a second, above a burst of
    /// SYNC_MESSAGE_BURST; what changes while it waits goes in the next message. Under
    /// PEER_MESSAGES_PER_SECOND and its burst, so a peer that passes on a third's flood of
    /// changes is never taken for a flooder itself, while typing is never held.
    pub const SYNC_MESSAGES_PER_SECOND: u32 = 200;
    /// Sync messages a peer sends another at once before SYNC_MESSAGES_PER_SECOND holds.
    pub const SYNC_MESSAGE_BURST: u32 = 1000;
    /// The first wait before reconnecting to signaling after a drop; each failed attempt
    /// doubles it, up to [`RECONNECT_MAX_WAIT`]. Every wait is jittered into [50%, 100%] of
    /// itself, so a room whose server restarted does not come back at one instant.
    pub const RECONNECT_FIRST_WAIT: Duration = Duration::from_millis(500);
    /// The longest wait between reconnect attempts: a client is back within this (and its
    /// connect) of the service returning, however long it was gone.
    pub const RECONNECT_MAX_WAIT: Duration = Duration::from_secs(4);
    /// A verified connection that stays `disconnected` this long restarts ICE: most drops that
    /// heal by themselves do so within it, and one that does not is not waited out to `failed`
    /// (which takes half a minute).
    pub const ICE_RESTART_AFTER: Duration = Duration::from_secs(2);
    /// While a connection is down, ICE is restarted again this often: the last restart's offer
    /// may have been lost with signaling, or gathered on a network that has changed since.
    pub const ICE_RESTART_EVERY: Duration = Duration::from_secs(5);
    /// A connection down this long, restarts and all, has failed: it is closed and the peer is
    /// connected again from scratch (see "Failed connections").
    pub const ICE_RESTART_GIVE_UP: Duration = Duration::from_secs(30);
    /// A signaling connection that hears nothing (not even a pong to our ping) for this long is
    /// dead and is replaced. Pings go at a third of it. A TCP connection whose local address has
    /// gone (a network change) would otherwise wait out the kernel's retransmissions for minutes.
    pub const SIGNALING_SILENCE: Duration = Duration::from_secs(6);
}
