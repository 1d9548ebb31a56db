//! The accept loop: TLS (optional), the connection limit, HTTP/1.1 with upgrades, and a graceful
//! shutdown that closes every socket with 1001 and waits for the tasks to finish.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::access::Access;
use crate::admission::AddressLimit;
#[cfg(feature = "redis")]
use crate::cluster;
use crate::config::Secret;
use crate::hub::{Command, Hub, InstanceId};
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::{Config, Error, http, tls};

/// A request must arrive whole within this; also the TLS handshake's limit.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections over the limit that are still answered with a 503 before being closed; past this,
/// sockets are closed at once.
const REFUSAL_SLOTS: usize = 64;
/// How long shutdown waits for connections to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest request head.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Commands waiting for Redis; past this, the hub is told a seat cannot be had, and relayed
/// signals are dropped (and counted).
const CLUSTER_QUEUE: usize = 64 * 1024;

/// What every connection task shares.
#[derive(Debug)]
pub struct State {
    pub config: Config,
    /// Per client address; the lock is held for a lookup only.
    pub joins: Mutex<AddressLimit>,
    pub meetings: Mutex<AddressLimit>,
    pub relay: Relay,
    pub metrics: Metrics,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    pub secure: bool,
    /// Whether this instance shares its rooms through Redis.
    pub clustered: bool,
}

impl State {
    /// Whether Redis is reachable, for an instance that shares its rooms through it.
    pub fn cluster_up(&self) -> Option<bool> {
        self.clustered.then(|| self.relay.cluster_up())
    }
}

/// What reaches the Redis that instances share: nothing, in a build without the `redis` feature.
#[cfg(feature = "redis")]
type RedisClient = redis::Client;
#[cfg(not(feature = "redis"))]
type RedisClient = std::convert::Infallible;

fn redis_client(url: &Secret) -> Result<RedisClient, Error> {
    #[cfg(feature = "redis")]
    return redis::Client::open(url.expose())
        .map_err(|e| Error::Config(format!("--redis-url: {e}")));
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err(Error::Config(
            "--redis-url: this build has no Redis support (confab-signaling's `redis` feature)"
                .into(),
        ))
    }
}

/// Shares this instance's rooms with the others through Redis until `stopped`.
#[cfg(feature = "redis")]
fn share_rooms(
    client: RedisClient,
    me: InstanceId,
    state: Arc<State>,
    commands: mpsc::Receiver<Command>,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let expiry = state.config.cluster_expiry;
    tokio::spawn(cluster::run(client, me, expiry, state, commands, stopped))
}

#[cfg(not(feature = "redis"))]
fn share_rooms(
    client: RedisClient,
    _: InstanceId,
    _: Arc<State>,
    _: mpsc::Receiver<Command>,
    _: watch::Receiver<bool>,
) -> JoinHandle<()> {
    match client {}
}

/// Serves Confab signaling, the API and the web UI on `listener` until `shutdown` completes.
///
/// On shutdown it stops accepting, tells every WebSocket `shutting_down` and closes it with 1001,
/// lets open HTTP exchanges finish, and returns once all connections are gone (or after a grace
/// period of a few seconds).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate().map_err(Error::Config)?;
    let access = match &config.token_file {
        Some(path) => Access::from_file(path).map_err(|e| Error::Config(e.to_string()))?,
        None => Access::default(),
    };
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let redis = config.redis_url.as_ref().map(redis_client).transpose()?;
    let (stop, stopped) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSAL_SLOTS));
    let me = InstanceId::random();
    let (hub, cluster_commands) = match redis {
        Some(_) => {
            let (send, receive) = mpsc::channel(CLUSTER_QUEUE);
            (Hub::clustered(config.max_peers, me.clone()), Some((send, receive)))
        }
        None => (Hub::new(config.max_peers), None),
    };
    let (cluster_send, cluster_receive) = cluster_commands.unzip();
    let state = Arc::new(State {
        joins: Mutex::new(AddressLimit::per_minute(config.joins_per_minute)),
        meetings: Mutex::new(AddressLimit::per_minute(config.meetings_per_minute)),
        relay: Relay::new(hub, config.send_queue_bytes, access, cluster_send),
        metrics: Metrics::default(),
        shutdown: stopped,
        secure: acceptor.is_some(),
        clustered: redis.is_some(),
        config,
    });
    info!(max_connections = state.config.max_connections, tls = state.secure, "serving");
    // The cluster outlives the connections, to give up their seats when they are gone.
    let (stop_cluster, cluster_stopped) = watch::channel(false);
    let cluster = redis.zip(cluster_receive).map(|(client, commands)| {
        info!(instance = %me, "sharing rooms through Redis");
        share_rooms(client, me, state.clone(), commands, cluster_stopped)
    });

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, address) = match accepted {
            Ok((stream, peer)) => (stream, peer.ip()),
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => match refusals.clone().try_acquire_owned() {
                // Over the limit: answer 503 on a refusal slot.
                Ok(slot) => {
                    let (state, acceptor) = (state.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        let refuse = serve_tcp(stream, address, acceptor, state, None);
                        let _ = tokio::time::timeout(HEADER_TIMEOUT, refuse).await;
                        drop(slot);
                    });
                    continue;
                }
                // Far over the limit: close at once.
                Err(_) => continue,
            },
        };
        tokio::spawn(serve_tcp(stream, address, acceptor.clone(), state.clone(), permit));
    }

    drop(listener);
    let _ = stop.send(true);
    // Every connection task, WebSockets included, holds a permit or a refusal slot until it ends:
    // holding all of them again means every connection is gone.
    let all_gone = async {
        let _all = permits.acquire_many(permits_u32(state.config.max_connections)).await;
        let _slots = refusals.acquire_many(permits_u32(REFUSAL_SLOTS)).await;
    };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, all_gone).await;
    let _ = stop_cluster.send(true);
    if let Some(cluster) = cluster {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, cluster).await;
    }
    info!("stopped");
    Ok(())
}

fn permits_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Serves one TCP connection. Without a `permit` every request is answered 503.
async fn serve_tcp(
    stream: tokio::net::TcpStream,
    address: IpAddr,
    acceptor: Option<TlsAcceptor>,
    state: Arc<State>,
    permit: Option<OwnedSemaphorePermit>,
) {
    match acceptor {
        None => serve_io(stream, address, state, permit).await,
        Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
        {
            Ok(Ok(tls)) => serve_io(tls, address, state, permit).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
}

async fn serve_io<I>(
    io: I,
    address: IpAddr,
    state: Arc<State>,
    permit: Option<OwnedSemaphorePermit>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _gauge = state.metrics.connection();
    let mut stopped = state.shutdown.clone();
    // Shared with any WebSocket this connection upgrades to, which outlives the HTTP exchange.
    let permit = permit.map(Arc::new);
    let service = {
        let state = state.clone();
        service_fn(move |req| http::route(req, address, state.clone(), permit.clone()))
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { drop(stopped.wait_for(|&s| s).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
