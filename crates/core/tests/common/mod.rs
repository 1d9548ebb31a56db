//! The harness every confab-core integration test shares: a real signaling service on
//! 127.0.0.1, engines as test participants ([`Node`]) on the machine's own address, a gate that
//! can cut a participant off from signaling, and waiting on events with a generous deadline.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use confab_core::decode::{Decoded, TrackDecoder};
use confab_core::engine::DEFAULT_MAX_FILE_BYTES;
use confab_core::tracks::{
    IncomingFrame, IncomingMedia, IncomingTrack, SyntheticSources, TrackSink,
};
use confab_core::{
    Engine, EngineConfig, EngineEvent, FileEvent, FileState, MediaState, TrackFeed, TrackKind,
    TrackSet, peer,
};
use confab_media::read_stamp;
use confab_proto::{ClientKind, DisplayName, MeetingKey, MeetingLink, PeerId, RoomId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Long enough for a loaded 2-core CI machine; waits end as soon as the event arrives.
pub const WAIT: Duration = Duration::from_secs(40);

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONFAB_TEST_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A real confab-signaling on 127.0.0.1.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start_on(addr: SocketAddr, config: confab_signaling::Config) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            confab_signaling::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, stop: Some(stop), task }
    }

    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), confab_signaling::Config::default()).await
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task).await.unwrap().unwrap();
    }

    /// A new meeting on this server.
    pub fn link(&self) -> MeetingLink {
        link_to(self.addr)
    }
}

pub fn link_to(addr: SocketAddr) -> MeetingLink {
    MeetingLink::new(&format!("http://{addr}"), RoomId::random(), MeetingKey::random()).unwrap()
}

/// The same meeting reached through another address (a [`Gate`]).
pub fn via(link: &MeetingLink, addr: SocketAddr) -> MeetingLink {
    MeetingLink::new(&format!("http://{addr}"), link.room().clone(), link.key().clone()).unwrap()
}

/// A TCP forwarder in front of the signaling server. Closing it cuts every connection through it
/// and refuses new ones, as a lost network does to signaling; peer-to-peer traffic does not pass
/// through it.
pub struct Gate {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
}

impl Gate {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, _) = watch::channel(true);
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut open = state.subscribe();
                if !*open.borrow() {
                    continue; // dropped: the connection is refused
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = open.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Self { addr, open }
    }

    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
}

/// How a [`Node`] starts.
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub download_dir: PathBuf,
    pub work_offline: bool,
    pub max_file_bytes: u64,
    /// Sent from the start.
    pub tracks: TrackSet,
    pub incoming: Option<Arc<dyn IncomingMedia>>,
}

/// One participant: an engine and what it has seen of the meeting.
pub struct Node {
    pub name: String,
    pub engine: Engine,
    pub events: tokio::sync::mpsc::UnboundedReceiver<EngineEvent>,
    pub me: Option<PeerId>,
    pub connected: HashMap<PeerId, String>,
    pub chat: Vec<String>,
    pub notes: String,
    pub files: Vec<FileEvent>,
    pub ended: Option<String>,
    pub reconnecting: usize,
    /// Every event, in order, for assertions on what a front end would have seen.
    pub log: Vec<EngineEvent>,
    _dirs: Option<Arc<tempfile::TempDir>>,
}

impl Node {
    /// A participant with fresh directories of its own.
    pub fn start(link: &MeetingLink, name: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut node = Self::start_with(link, name, Self::options_in(dir.path()));
        node._dirs = Some(dir);
        node
    }

    /// A participant sending the synthetic camera from the start and taking the peers' video
    /// (into a [`Recorder`]), as a desktop would.
    pub fn start_with_camera(link: &MeetingLink, name: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let options = NodeOptions {
            tracks: TrackSet::from([(TrackKind::Camera, TrackFeed::synthetic_camera().unwrap())]),
            incoming: Some(Arc::new(Recorder::default())),
            ..Self::options_in(dir.path())
        };
        let mut node = Self::start_with(link, name, options);
        node._dirs = Some(dir);
        node
    }

    /// Bytes received so far on the connection to `peer`, as its latest stats say.
    pub fn bytes_received_from(&self, peer: &PeerId) -> u64 {
        self.log
            .iter()
            .rev()
            .find_map(|e| match e {
                EngineEvent::Stats { id, stats } if id == peer => Some(stats.bytes_received),
                _ => None,
            })
            .unwrap_or(0)
    }

    pub fn options_in(dir: &Path) -> NodeOptions {
        NodeOptions {
            data_dir: dir.join("data"),
            download_dir: dir.join("downloads"),
            work_offline: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            tracks: TrackSet::new(),
            incoming: None,
        }
    }

    pub fn start_with(link: &MeetingLink, name: &str, options: NodeOptions) -> Self {
        let span = tracing::info_span!("peer", name);
        let _entered = span.enter();
        let (engine, events) = Engine::start(EngineConfig {
            link: link.clone(),
            name: DisplayName::new(name).unwrap(),
            client: ClientKind::Cli,
            app_version: "test".into(),
            data_dir: options.data_dir,
            download_dir: options.download_dir,
            max_file_bytes: options.max_file_bytes,
            auto_accept_files: true,
            work_offline: options.work_offline,
            author_id: format!("install-{name}"),
            bind: peer::own_address().unwrap(),
            relay_only: false,
            tracks: options.tracks,
            sources: Arc::new(SyntheticSources),
            incoming: options.incoming,
            trusted_certificate: None,
            access_token: None,
        })
        .unwrap();
        Self {
            name: name.into(),
            engine,
            events,
            me: None,
            connected: HashMap::new(),
            chat: vec![],
            notes: String::new(),
            files: vec![],
            ended: None,
            reconnecting: 0,
            log: vec![],
            _dirs: None,
        }
    }

    /// Takes one event into the node's view of the meeting.
    pub fn absorb(&mut self, event: EngineEvent) {
        self.log.push(event.clone());
        match event {
            EngineEvent::Joined { you } => self.me = Some(you),
            EngineEvent::PeerConnected { id, name } => {
                self.connected.insert(id, name);
            }
            EngineEvent::PeerLeft { id } | EngineEvent::PeerFailed { id, .. } => {
                self.connected.remove(&id);
            }
            EngineEvent::PeerRenamed { old, id } => {
                if let Some(name) = self.connected.remove(&old) {
                    self.connected.insert(id, name);
                }
            }
            EngineEvent::Chat(m) => self.chat.push(m.text),
            EngineEvent::Notes { text, .. } => self.notes = text,
            EngineEvent::File(f) => self.files.push(f),
            EngineEvent::Ended { reason, .. } => self.ended = Some(reason),
            EngineEvent::Reconnecting { .. } => self.reconnecting += 1,
            _ => {}
        }
    }

    /// Whether a file transfer ended in `Done` here.
    pub fn file_done(&self, id: &str) -> Option<&FileEvent> {
        self.files.iter().find(|f| f.id == id && matches!(f.state, FileState::Done { .. }))
    }

    pub fn file_ended(&self, id: &str) -> Option<&FileEvent> {
        self.files.iter().find(|f| {
            f.id == id
                && matches!(
                    f.state,
                    FileState::Done { .. } | FileState::Failed { .. } | FileState::Cancelled { .. }
                )
        })
    }
}

/// Processes events of all nodes until `done` holds for the whole set.
pub async fn until(nodes: &mut [Node], what: &str, done: impl Fn(&[Node]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(nodes) {
        let mut progressed = false;
        for node in nodes.iter_mut() {
            while let Ok(event) = node.events.try_recv() {
                node.absorb(event);
                progressed = true;
            }
            if let Some(reason) = &node.ended {
                panic!("{} ended while waiting until {what}: {reason}", node.name);
            }
        }
        if !progressed {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            // Events arrive from other tasks; a short nap lets them run (no outcome depends on
            // its length, only on the deadline above).
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub mod sim;

/// What a [`Recorder`] saw of one incoming track, decoded as a front end would.
#[derive(Debug, Clone)]
pub struct ReceivedTrack {
    pub track: IncomingTrack,
    pub frames: u64,
    pub last_frame: Option<std::time::Instant>,
    /// The synthetic camera's frame numbers, read from each decoded picture, in order.
    pub frame_numbers: Vec<u32>,
    /// Decoded sound, 48 kHz mono.
    pub pcm: Vec<i16>,
    pub ended: bool,
}

/// A front end's sink for incoming tracks that decodes and records what arrives, for
/// assertions.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    tracks: Arc<std::sync::Mutex<Vec<ReceivedTrack>>>,
}

impl Recorder {
    /// Every track received so far, oldest first.
    pub fn tracks(&self) -> Vec<ReceivedTrack> {
        self.tracks.lock().unwrap().clone()
    }

    /// Frames received from `peer`'s track of `kind`, over every time it opened.
    pub fn frames(&self, peer: &PeerId, kind: TrackKind) -> u64 {
        self.from(peer, kind).map(|t| t.frames).sum()
    }

    /// When the last frame from `peer`'s track of `kind` arrived.
    pub fn last_frame(&self, peer: &PeerId, kind: TrackKind) -> Option<std::time::Instant> {
        self.from(peer, kind).filter_map(|t| t.last_frame).max()
    }

    /// `peer`'s tracks of `kind`, as a native peer names them (a browser's screen is known
    /// only by what it announced).
    pub fn from(&self, peer: &PeerId, kind: TrackKind) -> impl Iterator<Item = ReceivedTrack> {
        let peer = peer.clone();
        self.tracks()
            .into_iter()
            .filter(move |t| t.track.peer == peer && t.track.kind(&MediaState::default()) == kind)
    }
}

impl IncomingMedia for Recorder {
    fn track(&self, track: IncomingTrack) -> Box<dyn TrackSink> {
        let mut tracks = self.tracks.lock().unwrap();
        let decoder = TrackDecoder::for_track(&track).unwrap();
        tracks.push(ReceivedTrack {
            track,
            frames: 0,
            last_frame: None,
            frame_numbers: vec![],
            pcm: vec![],
            ended: false,
        });
        Box::new(RecordedTrack { tracks: self.tracks.clone(), index: tracks.len() - 1, decoder })
    }
}

struct RecordedTrack {
    tracks: Arc<std::sync::Mutex<Vec<ReceivedTrack>>>,
    index: usize,
    decoder: TrackDecoder,
}

impl TrackSink for RecordedTrack {
    fn frame(&mut self, frame: IncomingFrame) {
        let mut tracks = self.tracks.lock().unwrap();
        let received = &mut tracks[self.index];
        received.frames += 1;
        received.last_frame = Some(std::time::Instant::now());
        match self.decoder.decode(&frame).unwrap() {
            Some(Decoded::Picture(picture)) => {
                if let Some(stamp) = read_stamp(&picture) {
                    received.frame_numbers.push(stamp.frame);
                }
            }
            Some(Decoded::Sound(pcm)) => received.pcm.extend_from_slice(&pcm),
            None => {}
        }
    }
    fn ended(&mut self) {
        self.tracks.lock().unwrap()[self.index].ended = true;
    }
}
