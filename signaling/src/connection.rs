//! One signaling WebSocket: reads frames, asks the [`Session`] whether they may pass, decodes
//! them, hands them to the [`Relay`] and writes what the relay queued for this peer. Every write
//! has a deadline, so a client that stops reading cannot hold the task forever.

use std::future::Future as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Instant, SystemTime};

use confab_proto::{ClientMessage, ErrorCode, PeerId, ServerMessage};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::sync::{Notify, mpsc};
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{debug, info};

use crate::relay::Mailbox;
use crate::server::State;
use crate::session::{Admission, Due, Session};
use crate::turn;

/// How long a join waits for the cluster to give it a seat.
const SEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a connection ends.
enum Ending {
    /// The peer went away (closed, reset, or stopped answering): nothing more to say to it.
    Gone,
    /// Tell the peer why, then close with `code`.
    Close { error: Option<(ErrorCode, String)>, code: CloseCode, reason: &'static str },
}

impl Ending {
    fn error(code: ErrorCode, message: impl Into<String>, close: CloseCode) -> Self {
        Self::Close { error: Some((code, message.into())), code: close, reason: code.as_str() }
    }
}

/// What handling one frame leads to.
enum Step {
    Continue,
    End(Ending),
}

struct Connection<S> {
    ws: WebSocketStream<S>,
    state: Arc<State>,
    session: Session,
    mailbox: Mailbox,
    member: Option<Membership>,
    /// The client's address: a key for the join limit, never logged.
    address: IpAddr,
}

/// This connection's seat in a room. Dropping it leaves the room, so a task that ends in any
/// way, a panic or a cancelled runtime included, never leaves a ghost holding a seat.
struct Membership {
    id: PeerId,
    state: Arc<State>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.state.relay.leave(&self.id, &self.state.metrics);
        debug!(peer = %self.id, "left");
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Serves one upgraded signaling socket until it ends.
pub async fn serve<S>(ws: WebSocketStream<S>, address: IpAddr, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The HTTP connection that upgraded has ended; this socket still counts as a connection.
    let _gauges = (state.metrics.connection(), state.metrics.websocket());
    let (queue, mut inbox) = mpsc::channel(state.config.send_queue.max(1));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let evicted = Arc::new(Notify::new());
    let mut shutdown = state.shutdown.clone();
    let mut conn = Connection {
        session: Session::new(now(), &state.config),
        mailbox: Mailbox { queue, queued_bytes: queued_bytes.clone(), evicted: evicted.clone() },
        ws,
        state: state.clone(),
        member: None,
        address,
    };
    // These wait across loop turns instead of being made anew per message: ten thousand sockets
    // re-registering with the one shutdown channel on every frame would contend on its lock.
    let stopping = async { drop(shutdown.wait_for(|&stop| stop).await) };
    let fell_behind = evicted.notified();
    let timer = sleep_until(tokio::time::Instant::from_std(conn.session.deadline()));
    tokio::pin!(stopping, fell_behind, timer);
    let ending = loop {
        let deadline = tokio::time::Instant::from_std(conn.session.deadline());
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            _ = &mut stopping => {
                break Ending::error(ErrorCode::ShuttingDown, "the server is restarting", CloseCode::Away);
            }
            _ = &mut fell_behind => {
                break Ending::error(
                    ErrorCode::TooSlow,
                    "this connection fell too far behind the meeting",
                    CloseCode::Again,
                );
            }
            Some(text) = inbox.recv() => {
                queued_bytes.fetch_sub(text.len(), Ordering::Relaxed);
                if conn.send(Message::text(text)).await.is_err() {
                    break Ending::Gone;
                }
            }
            frame = conn.ws.next() => match conn.on_frame(frame).await {
                Step::Continue => {}
                Step::End(ending) => break ending,
            },
            _ = &mut timer => match conn.on_timer().await {
                Step::Continue => {}
                Step::End(ending) => break ending,
            },
        }
    };
    // Leave before the goodbye, so the room hears of it without waiting for the closing handshake.
    drop(conn.member.take());
    conn.finish(ending).await;
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Writes one message. Almost every write completes at once; only one that has to wait for
    /// the socket is given a deadline, so the common path registers no timer.
    async fn send(&mut self, msg: Message) -> Result<(), ()> {
        let mut write = std::pin::pin!(self.ws.send(msg));
        let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        let done = match first {
            Poll::Ready(done) => done,
            Poll::Pending => match timeout(self.state.config.write_timeout, write).await {
                Ok(done) => done,
                Err(_) => return Err(()),
            },
        };
        done.map_err(|_| ())
    }

    async fn send_error(&mut self, code: ErrorCode, message: String) -> Step {
        self.state.metrics.rejected(code);
        match self.send(Message::text(ServerMessage::error(code, message).encode())).await {
            Ok(()) => Step::Continue,
            Err(()) => Step::End(Ending::Gone),
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Step {
        let msg = match frame {
            None => return Step::End(Ending::Gone),
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Step::End(ending_for(e, &self.state)),
        };
        self.session.heard(now());
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            match self.session.admit(now()) {
                Admission::Pass => {}
                Admission::Drop { notify: false } => return Step::Continue,
                Admission::Drop { notify: true } => {
                    let limits = self.state.config.limits();
                    let message = format!(
                        "too many messages: at most {} per second (bursts of {}); messages are being dropped",
                        limits.max_messages_per_second, limits.burst_messages
                    );
                    return self.send_error(ErrorCode::RateLimited, message).await;
                }
                Admission::Kick => {
                    self.state.metrics.rejected(ErrorCode::RateLimited);
                    return Step::End(Ending::error(
                        ErrorCode::RateLimited,
                        "kept flooding after being told to slow down",
                        CloseCode::Policy,
                    ));
                }
            }
        }
        match msg {
            Message::Text(text) => self.on_text(text).await,
            Message::Binary(_) => {
                let msg = "binary frames are not part of the signaling protocol; send JSON text";
                self.send_error(ErrorCode::BadMessage, msg.into()).await
            }
            Message::Close(_) => Step::End(Ending::Gone),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Step::Continue,
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Step {
        let msg = match ClientMessage::decode(&text) {
            Ok(msg) => msg,
            Err(e) => {
                let code = e.code();
                return match code {
                    // A join that can never succeed on this socket ends it.
                    ErrorCode::UnsupportedVersion | ErrorCode::BadRoom => {
                        self.state.metrics.rejected(code);
                        Step::End(Ending::error(code, e.to_string(), CloseCode::Policy))
                    }
                    _ => self.send_error(code, e.to_string()).await,
                };
            }
        };
        match (msg, self.member.as_ref().map(|m| m.id.clone())) {
            (ClientMessage::Join(_), Some(_)) => {
                self.send_error(
                    ErrorCode::AlreadyJoined,
                    "this connection has already joined".into(),
                )
                .await
            }
            (ClientMessage::Join(join), None) => self.join(join).await,
            (ClientMessage::Signal { .. }, None) => {
                self.send_error(ErrorCode::NotJoined, "send join before anything else".into()).await
            }
            (ClientMessage::Signal { to, data }, Some(me)) => {
                match self.state.relay.signal(me, to, data, &self.state.metrics) {
                    Ok(()) => Step::Continue,
                    Err((code, message)) => self.send_error(code, message).await,
                }
            }
            (ClientMessage::Leave, _) => {
                Step::End(Ending::Close { error: None, code: CloseCode::Normal, reason: "left" })
            }
        }
    }

    async fn join(&mut self, join: confab_proto::Join) -> Step {
        let joins = &self.state.joins;
        let allowed = joins.lock().unwrap_or_else(|e| e.into_inner()).allow(now(), self.address);
        if !allowed {
            self.state.metrics.rejected(ErrorCode::RateLimited);
            let message = "too many joins from your address; try again in a minute";
            return Step::End(Ending::error(ErrorCode::RateLimited, message, CloseCode::Policy));
        }
        let id = PeerId::random();
        let room = join.room.clone();
        let client = join.client;
        let state = self.state.clone();
        let seated = match state.relay.join(id.clone(), join, self.mailbox.clone(), &state.metrics)
        {
            Ok(seating) => {
                // Seated before waiting: however the wait ends, the seat is given up.
                self.member = Some(Membership { id: id.clone(), state: state.clone() });
                match timeout(SEAT_TIMEOUT, seating).await {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(_)) | Err(_) => Err((
                        ErrorCode::Unavailable,
                        "this server could not get you a seat from the other servers in time; try again"
                            .into(),
                    )),
                }
            }
            Err(refusal) => Err(refusal),
        };
        match seated {
            Ok(peers) => {
                self.session.joined();
                info!(peer = %id, room = %short(room.as_str()), ?client, peers = peers.len(), "joined");
                let welcome = ServerMessage::Welcome {
                    ice_servers: turn::ice_servers(&state.config, &id, SystemTime::now()),
                    you: id,
                    peers,
                    limits: state.config.limits(),
                };
                match self.send(Message::text(welcome.encode())).await {
                    Ok(()) => Step::Continue,
                    Err(()) => Step::End(Ending::Gone),
                }
            }
            Err((code, message)) => {
                drop(self.member.take());
                state.metrics.rejected(code);
                let close = if code == ErrorCode::Unavailable {
                    CloseCode::Again
                } else {
                    CloseCode::Policy
                };
                Step::End(Ending::error(code, message, close))
            }
        }
    }

    async fn on_timer(&mut self) -> Step {
        while let Some(due) = self.session.poll(now()) {
            match due {
                Due::Ping => {
                    if self.send(Message::Ping(Default::default())).await.is_err() {
                        return Step::End(Ending::Gone);
                    }
                }
                Due::JoinTimeout => {
                    self.state.metrics.rejected(ErrorCode::JoinTimeout);
                    return Step::End(Ending::error(
                        ErrorCode::JoinTimeout,
                        format!(
                            "no join within {} s of connecting",
                            self.state.config.join_timeout.as_secs_f32()
                        ),
                        CloseCode::Policy,
                    ));
                }
                Due::Idle => {
                    debug!(peer = ?self.member.as_ref().map(|m| &m.id), "silent for too long; dropping");
                    return Step::End(Ending::Gone);
                }
            }
        }
        Step::Continue
    }

    /// Says goodbye properly: the error, then a close frame, then reads whatever the client still
    /// sends (its close reply, or the rest of an oversized frame) so that closing the socket does
    /// not reset it before the client has read our last words.
    async fn finish(mut self, ending: Ending) {
        let grace = self.state.config.write_timeout.min(std::time::Duration::from_secs(2));
        match ending {
            Ending::Gone => {
                let _ = timeout(grace, self.ws.close(None)).await;
            }
            Ending::Close { error, code, reason } => {
                let _ = timeout(grace, async {
                    if let Some((code, message)) = error {
                        self.ws
                            .send(Message::text(ServerMessage::error(code, message).encode()))
                            .await?;
                    }
                    let frame = CloseFrame { code, reason: reason.into() };
                    self.ws.send(Message::Close(Some(frame))).await
                })
                .await;
                // On the heap and only now: an array here would sit inside every connection's
                // future for its whole life (16 KiB per idle socket).
                let mut sink = vec![0u8; 16 * 1024];
                let _ = timeout(grace, async {
                    let stream = self.ws.get_mut();
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
            }
        }
    }
}

/// How a read error ends the connection.
fn ending_for(e: WsError, state: &State) -> Ending {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            state.metrics.rejected(ErrorCode::TooLarge);
            let max = state.config.max_message_bytes;
            Ending::error(
                ErrorCode::TooLarge,
                format!("frames are limited to {max} bytes"),
                CloseCode::Size,
            )
        }
        WsError::Utf8(_) => {
            state.metrics.rejected(ErrorCode::BadMessage);
            Ending::error(
                ErrorCode::BadMessage,
                "text frame is not valid UTF-8",
                CloseCode::Invalid,
            )
        }
        WsError::Protocol(p) => {
            state.metrics.rejected(ErrorCode::BadMessage);
            Ending::error(
                ErrorCode::BadMessage,
                format!("WebSocket protocol error: {p}"),
                CloseCode::Protocol,
            )
        }
        _ => Ending::Gone,
    }
}

/// Enough of a room id to follow one meeting through the logs without printing its whole id.
fn short(id: &str) -> &str {
    id.get(..6).unwrap_or(id)
}
